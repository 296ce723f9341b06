/* wigeon: error message formatting (see error.h). */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A message cut at `len` bytes may end inside a UTF-8 character (a long non-ASCII name): cut back
 * to the start of that character, so that the gRPC status stays valid UTF-8. */
static size_t utf8_cut(const char *s, size_t len) {
  size_t lead = len;
  while (lead > 0 && len - lead < 4 && ((unsigned char)s[lead - 1] & 0xC0) == 0x80) lead--;
  if (lead == 0) return len;
  unsigned char c = (unsigned char)s[lead - 1];
  size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
  return len - (lead - 1) < need ? lead - 1 : len;
}

int wg_error_set(struct wg_error *err, int code, const char *fmt, ...) {
  if (err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(err->message)) {
      size_t len = sizeof(err->message) - 1;
      err->message[utf8_cut(err->message, len)] = '\0';
    }
  }
  return code;
}

int wg_error_prefix(struct wg_error *err, int code, const char *fmt, ...) {
  if (err != NULL) {
    char joined[sizeof(err->message) * 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(joined, sizeof(joined) / 2, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n > (int)sizeof(joined) / 2 - 1) n = (int)utf8_cut(joined, sizeof(joined) / 2 - 1);
    size_t old_len = strnlen(err->message, sizeof(err->message) - 1);
    memcpy(joined + n, ": ", 2);
    memcpy(joined + n + 2, err->message, old_len);
    joined[n + 2 + old_len] = '\0';
    size_t total = (size_t)n + 2 + old_len;
    if (total > sizeof(err->message) - 1) total = utf8_cut(joined, sizeof(err->message) - 1);
    memcpy(err->message, joined, total);
    err->message[total] = '\0';
  }
  return code;
}

const char *wg_status_name(int code) {
  switch (code) {
  case 0:
    return "OK";
  case EINVAL:
    return "EINVAL";
  case EPROTO:
    return "EPROTO";
  case ENOTSUP:
    return "ENOTSUP";
  case ENOMEM:
    return "ENOMEM";
  case ESPIPE:
    return "ESPIPE";
  case ENODATA:
    return "ENODATA";
  case EOVERFLOW:
    return "EOVERFLOW";
  case EACCES:
    return "EACCES";
  case WG_EUNAUTHENTICATED:
    return "EUNAUTHENTICATED";
  default:
    return "E?";
  }
}
