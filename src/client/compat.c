/* wigeon: the errno-flavoured adapters of client.h over include/wigeon.h, for the older tests.
 * No operation is implemented here: each function calls its wigeon.h twin and copies
 * wg_status.sys_errno and its message out. */
#include "client/client.h"

#include <stdio.h>
#include <string.h>

#include "client/internal.h"

/* The status as the errno flavour: its errno value, its message into err. */
static int from_status(const struct wg_status *st, struct wg_error *err) {
  if (st->sys_errno != 0 && err != NULL)
    snprintf(err->message, sizeof(err->message), "%s", st->message);
  return st->sys_errno;
}

int wg_client_connect(struct wg_client **out, const char *uri, struct wg_error *err) {
  struct wg_client_options o;
  wg_client_options_init(&o);
  o.lazy_connect = true;
  struct wg_status st;
  wg_connect(uri, &o, out, &st);
  return from_status(&st, err);
}

void wg_client_close(struct wg_client *c) {
  wg_disconnect(c);
}

void wg_client_set_timeout(struct wg_client *c, int64_t timeout_ms) {
  wg__client_set_timeout(c, timeout_ms);
}

int wg_client_query(struct wg_client *c, const char *sql, struct ArrowArrayStream *out,
                    struct wg_error *err) {
  struct wg_status st;
  wg_query(c, sql, out, &st);
  return from_status(&st, err);
}

int wg_client_do_get(struct wg_client *c, const void *ticket, size_t len,
                     struct ArrowArrayStream *out, struct wg_error *err) {
  struct wg_status st;
  wg_do_get(c, ticket, len, out, &st);
  return from_status(&st, err);
}

int wg_client_stream_status(struct ArrowArrayStream *stream) {
  struct wg_status st;
  wg_stream_status(stream, &st);
  return st.sys_errno;
}

int wg_client_put(struct wg_client *c, const char *schema_name, const char *table,
                  struct ArrowArrayStream *in, int64_t *rows, struct wg_error *err) {
  return wg_client_put_keyed(c, schema_name, table, NULL, in, NULL, NULL, rows, err);
}

int wg_client_put_keyed(struct wg_client *c, const char *schema_name, const char *table,
                        const char *idempotency_key, struct ArrowArrayStream *in,
                        wg_put_ack_fn on_ack, void *ack_ctx, int64_t *rows, struct wg_error *err) {
  struct wg_status st;
  if (idempotency_key == NULL)
    wg_put(c, schema_name, table, in, on_ack, ack_ctx, rows, &st);
  else
    wg_put_idempotent(c, schema_name, table, idempotency_key, in, on_ack, ack_ctx, rows, &st);
  return from_status(&st, err);
}

int wg_client_action(struct wg_client *c, const char *type, const void *body, size_t len,
                     struct wg_buf *result, struct wg_error *err) {
  struct wg_status st;
  struct wg_action_result r;
  wg_action(c, type, body, len, result ? &r : NULL, &st);
  int rc = from_status(&st, err);
  for (int64_t i = 0; rc == 0 && result != NULL && i < r.n; i++)
    if (wg_buf_append(result, r.bodies[i].data, (int64_t)r.bodies[i].size) != 0)
      rc = wg_error_set(err, ENOMEM, "out of memory for a %zu-byte action result",
                        r.bodies[i].size);
  if (result != NULL) wg_action_result_reset(&r);
  if (rc == 0 && result != NULL && wg_buf_append(result, "", 1) == 0) result->size--;
  return rc;
}

int wg_client_flight_info(struct wg_client *c, const char *schema_name, const char *table,
                          const char *sql, struct wg_flight_info *out, struct wg_error *err) {
  struct wg_status st;
  wg_flight_info(c, schema_name, table, sql, out, &st);
  return from_status(&st, err);
}

int wg_client_list_tables(struct wg_client *c, const char *filter, struct wg_table_info **out,
                          int64_t *n, struct wg_error *err) {
  struct wg_status st;
  wg_list_tables(c, filter, out, n, &st);
  return from_status(&st, err);
}
