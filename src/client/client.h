/* wigeon: the errno flavour of the client, for the tests written before include/wigeon.h was the
 * one client API. Each function is a thin adapter over its wigeon.h call (compat.c): the same
 * operation, with the project's errno-style code (wg_status.sys_errno) and the message in a
 * struct wg_error. Nothing in src/ uses it (the CLI is on wigeon.h); tests move to wigeon.h one
 * by one and this header goes when the last one has. */
#ifndef WG_CLIENT_CLIENT_H
#define WG_CLIENT_CLIENT_H

#include <stdint.h>

#include "arrow/abi.h"
#include "common/buf.h"
#include "common/error.h"
#include "wigeon.h"

/* wg_connect with lazy_connect: an unreachable server shows on the first call (ECONNREFUSED). */
int wg_client_connect(struct wg_client **out, const char *uri, struct wg_error *err);
void wg_client_close(struct wg_client *c);
/* Per-call deadline in milliseconds for the calls that follow (0 = none, the default). */
void wg_client_set_timeout(struct wg_client *c, int64_t timeout_ms);

int wg_client_query(struct wg_client *c, const char *sql, struct ArrowArrayStream *out,
                    struct wg_error *err);
int wg_client_do_get(struct wg_client *c, const void *ticket, size_t len,
                     struct ArrowArrayStream *out, struct wg_error *err);
/* wg_stream_status's sys_errno. */
int wg_client_stream_status(struct ArrowArrayStream *stream);

int wg_client_put(struct wg_client *c, const char *schema_name, const char *table,
                  struct ArrowArrayStream *in, int64_t *rows, struct wg_error *err);
/* wg_put_idempotent, or wg_put when idempotency_key is NULL. */
int wg_client_put_keyed(struct wg_client *c, const char *schema_name, const char *table,
                        const char *idempotency_key, struct ArrowArrayStream *in,
                        wg_put_ack_fn on_ack, void *ack_ctx, int64_t *rows, struct wg_error *err);

/* wg_action with the Result bodies appended to `result` (may be NULL), NUL-terminated. */
int wg_client_action(struct wg_client *c, const char *type, const void *body, size_t len,
                     struct wg_buf *result, struct wg_error *err);

int wg_client_flight_info(struct wg_client *c, const char *schema_name, const char *table,
                          const char *sql, struct wg_flight_info *out, struct wg_error *err);
int wg_client_list_tables(struct wg_client *c, const char *filter, struct wg_table_info **out,
                          int64_t *n, struct wg_error *err);

#endif
