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
    char prefix[256];
    char old[sizeof(err->message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    snprintf(err->message, sizeof(err->message), "%s: %s", prefix, old);
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
  default:
    return "E?";
  }
}
