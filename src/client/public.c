/* wigeon: the public client API (include/wigeon.h) over the client's operations (internal.h).
 * Its only work is the edge: checking arguments, and turning an errno-style code, the gRPC code
 * and the message into one struct wg_status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/array.h"
#include "client/internal.h"
#include "rpc/rpc.h"
#include "wigeon.h"

/* Fills *st (may be NULL) and returns the gRPC code: 0 when rc is 0. */
static int status_set(struct wg_status *st, int rc, int grpc, const char *message) {
  int code = rc == 0 ? 0 : grpc != 0 ? grpc : (int)wg_rpc_status_from_errno(rc);
  if (st != NULL) {
    st->code = code;
    st->sys_errno = rc;
    snprintf(st->message, sizeof(st->message), "%s", rc != 0 && message ? message : "");
  }
  return code;
}

static int invalid(struct wg_status *st, const char *what) {
  char m[128];
  snprintf(m, sizeof(m), "invalid argument: %s", what);
  return status_set(st, EINVAL, 0, m);
}

const char *wg_status_code_name(int code) {
  static const char *const names[] = {"OK",
                                      "CANCELLED",
                                      "UNKNOWN",
                                      "INVALID_ARGUMENT",
                                      "DEADLINE_EXCEEDED",
                                      "NOT_FOUND",
                                      "ALREADY_EXISTS",
                                      "PERMISSION_DENIED",
                                      "RESOURCE_EXHAUSTED",
                                      "FAILED_PRECONDITION",
                                      "ABORTED",
                                      "OUT_OF_RANGE",
                                      "UNIMPLEMENTED",
                                      "INTERNAL",
                                      "UNAVAILABLE",
                                      "DATA_LOSS",
                                      "UNAUTHENTICATED"};
  return code >= 0 && code <= 16 ? names[code] : "UNKNOWN";
}

void wg_client_options_init(struct wg_client_options *options) {
  if (options != NULL) memset(options, 0, sizeof(*options));
}

int wg_connect(const char *uri, const struct wg_client_options *options, wg_client **out,
               struct wg_status *status) {
  if (out == NULL) return invalid(status, "out is NULL");
  *out = NULL;
  struct wg_client_options defaults;
  wg_client_options_init(&defaults);
  const struct wg_client_options *o = options ? options : &defaults;
  if (o->timeout_ms < 0 || o->connect_timeout_ms < 0) return invalid(status, "negative timeout");
  struct wg_error err = {""};
  struct wg_client *c = NULL;
  int rc = wg_client_connect(&c, uri, &err);
  if (rc == 0) rc = wg_client_set_headers(c, o->headers, &err);
  int grpc = 0;
  if (rc == 0) {
    wg_client_set_timeout(c, o->timeout_ms);
    if (!o->lazy_connect) {
      int64_t t = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
      rc = wg__client_handshake(c, t, &err, &grpc);
      if (rc != 0 && grpc == WG_STATUS_UNIMPLEMENTED) rc = grpc = 0; /* reachable all the same */
      if (rc != 0 && err.message[0] == '\0')
        snprintf(err.message, sizeof(err.message), "cannot reach %s", uri);
    }
  }
  if (rc != 0) {
    wg_client_close(c);
    return status_set(status, rc, grpc, err.message);
  }
  *out = c;
  return status_set(status, 0, 0, NULL);
}

void wg_disconnect(wg_client *client) {
  wg_client_close(client);
}

int wg_query(wg_client *client, const char *sql, struct ArrowArrayStream *out,
             struct wg_status *status) {
  if (client == NULL || sql == NULL || out == NULL)
    return invalid(status, "wg_query needs a client, SQL and an output stream");
  struct wg_error err = {""};
  int grpc = 0;
  int rc = wg__client_do_get(client, sql, strlen(sql), out, &err, &grpc);
  return status_set(status, rc, grpc, err.message);
}

int wg_stream_status(struct ArrowArrayStream *stream, struct wg_status *status) {
  int grpc;
  const char *message;
  int rc = wg__client_stream_error(stream, &grpc, &message);
  return status_set(status, rc, grpc, message);
}

int wg_put(wg_client *client, const char *schema_name, const char *table,
           struct ArrowArrayStream *in, wg_put_ack_fn on_ack, void *ack_ctx, int64_t *rows,
           struct wg_status *status) {
  if (rows != NULL) *rows = 0;
  if (in == NULL || in->release == NULL) return invalid(status, "wg_put needs an input stream");
  if (client == NULL || table == NULL || table[0] == '\0') {
    wg_stream_release(in);
    return invalid(status, "wg_put needs a client and a table name");
  }
  struct wg_error err = {""};
  int grpc = 0;
  int rc = wg__client_put(client, schema_name, table, NULL, in, on_ack, ack_ctx, rows, &err, &grpc);
  return status_set(status, rc, grpc, err.message);
}

int wg_put_idempotent(wg_client *client, const char *schema_name, const char *table,
                      const char *idempotency_key, struct ArrowArrayStream *in,
                      wg_put_ack_fn on_ack, void *ack_ctx, int64_t *rows,
                      struct wg_status *status) {
  if (rows != NULL) *rows = 0;
  if (in == NULL || in->release == NULL)
    return invalid(status, "wg_put_idempotent needs an input stream");
  if (client == NULL || table == NULL || table[0] == '\0' || idempotency_key == NULL ||
      idempotency_key[0] == '\0') {
    wg_stream_release(in);
    return invalid(status, "wg_put_idempotent needs a client, a table name and a key");
  }
  struct wg_error err = {""};
  int grpc = 0;
  int rc = wg__client_put(client, schema_name, table, idempotency_key, in, on_ack, ack_ctx, rows,
                          &err, &grpc);
  return status_set(status, rc, grpc, err.message);
}

int wg_list_tables(wg_client *client, const char *filter, struct wg_table_info **tables, int64_t *n,
                   struct wg_status *status) {
  if (tables != NULL) *tables = NULL;
  if (n != NULL) *n = 0;
  if (client == NULL || tables == NULL || n == NULL)
    return invalid(status, "wg_list_tables needs a client, tables and n");
  struct wg_error err = {""};
  int grpc = 0;
  int rc = wg__client_list_tables(client, filter, tables, n, &err, &grpc);
  return status_set(status, rc, grpc, err.message);
}

void wg_table_info_free(struct wg_table_info *tables, int64_t n) {
  wg__table_info_free(tables, n);
}

int wg_table_schema(wg_client *client, const char *schema_name, const char *table,
                    struct ArrowSchema *out, struct wg_status *status) {
  if (client == NULL || table == NULL || out == NULL)
    return invalid(status, "wg_table_schema needs a client, a table and an output schema");
  struct wg_error err = {""};
  int grpc = 0;
  int rc = wg__client_get_schema(client, schema_name, table, NULL, out, &err, &grpc);
  return status_set(status, rc, grpc, err.message);
}

int wg_query_schema(wg_client *client, const char *sql, struct ArrowSchema *out,
                    struct wg_status *status) {
  if (client == NULL || sql == NULL || out == NULL)
    return invalid(status, "wg_query_schema needs a client, SQL and an output schema");
  struct wg_error err = {""};
  int grpc = 0;
  int rc = wg__client_get_schema(client, NULL, NULL, sql, out, &err, &grpc);
  return status_set(status, rc, grpc, err.message);
}

static int add_body(void *ctx, const uint8_t *data, size_t size, struct wg_error *err) {
  struct wg_action_result *r = ctx;
  struct wg_action_body *grown = realloc(r->bodies, (size_t)(r->n + 1) * sizeof(*grown));
  char *copy = malloc(size + 1);
  if (grown != NULL) r->bodies = grown;
  if (grown == NULL || copy == NULL) {
    free(copy);
    return wg_error_set(err, ENOMEM, "out of memory for a %zu-byte action result", size);
  }
  if (size > 0) memcpy(copy, data, size);
  copy[size] = '\0';
  r->bodies[r->n].data = copy;
  r->bodies[r->n].size = size;
  r->n++;
  return 0;
}

int wg_action(wg_client *client, const char *type, const void *body, size_t body_len,
              struct wg_action_result *result, struct wg_status *status) {
  if (result != NULL) memset(result, 0, sizeof(*result));
  if (client == NULL || type == NULL || (body == NULL && body_len > 0))
    return invalid(status, "wg_action needs a client, a type and a body (or body_len 0)");
  struct wg_error err = {""};
  int grpc = 0;
  int rc = wg__client_action(client, type, body, body_len, result ? add_body : NULL, result, &err,
                             &grpc);
  if (rc != 0) wg_action_result_reset(result);
  return status_set(status, rc, grpc, err.message);
}

void wg_action_result_reset(struct wg_action_result *result) {
  if (result == NULL) return;
  for (int64_t i = 0; i < result->n; i++)
    free(result->bodies[i].data);
  free(result->bodies);
  result->bodies = NULL;
  result->n = 0;
}
