/* wigeon: error message formatting (see error.h). */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int wg_error_set(struct wg_error *err, int code, const char *fmt, ...) {
  if (err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
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
    if (n > (int)sizeof(joined) / 2 - 1) n = (int)sizeof(joined) / 2 - 1;
    size_t old_len = strnlen(err->message, sizeof(err->message) - 1);
    memcpy(joined + n, ": ", 2);
    memcpy(joined + n + 2, err->message, old_len);
    joined[n + 2 + old_len] = '\0';
    size_t total = (size_t)n + 2 + old_len;
    if (total > sizeof(err->message) - 1) total = sizeof(err->message) - 1;
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
