/* wigeon: one error convention for every layer.
 * Functions return int: 0 on success, else an errno-style code (EINVAL, EPROTO, ENOTSUP, ENOMEM,
 * ESPIPE, ENODATA). The optional struct wg_error (last parameter, may be NULL) carries a message
 * that names what is wrong and the numbers involved. */
#ifndef WG_COMMON_ERROR_H
#define WG_COMMON_ERROR_H

#include <errno.h>
#include <stdint.h>

/* Reserved for authentication (nothing returns them yet; the gRPC mapping is in rpc/status.c):
 *   WG_EUNAUTHENTICATED  no credentials, or credentials refused      -> UNAUTHENTICATED
 *   EACCES               a caller without the role the call needs    -> PERMISSION_DENIED
 * EPERM is not a permission error here: it is FAILED_PRECONDITION (constraints, the remote SQL
 * sandbox), as it always was. */
#ifdef ENOKEY
#define WG_EUNAUTHENTICATED ENOKEY
#else
#define WG_EUNAUTHENTICATED 126 /* Linux's ENOKEY */
#endif

struct wg_error {
  char message[512];
};

/* Formats the message into err (if not NULL) and returns code, so callers can write
 * `return wg_error_set(err, EPROTO, "...", ...)`. */
int wg_error_set(struct wg_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "context: " to an existing message; returns code. */
int wg_error_prefix(struct wg_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A short name for a status code ("EPROTO"), for logs and tests. */
const char *wg_status_name(int code);

#define WG_RETURN_NOT_OK(expr)                                                                     \
  do {                                                                                             \
    int wg__rc = (expr);                                                                           \
    if (wg__rc != 0) return wg__rc;                                                                \
  } while (0)

#endif
