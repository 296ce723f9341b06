/* wigeon: the Flight service's lifecycle and dispatch. Starting opens the engine (one DuckDB
 * connection per base worker thread) and then the gRPC server; every call lands in dispatch() on a
 * worker thread, which routes it by method name to its handler. Stopping reverses the order:
 * no new calls, in-flight calls finish within the grace period, then checkpoint and close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"
#include "server/internal.h"

static void dispatch(struct wg_rpc_call *call, void *ctx) {
  struct wg_server *s = ctx;
  wg_engine_thread_serves_calls(); /* a call holds one DuckDB connection at a time */
  const char *m = wg_rpc_call_method(call);
  atomic_fetch_add_explicit(&s->stats.calls, 1, memory_order_relaxed);
  size_t prefix = strlen(WG_FLIGHT_SERVICE);
  if (m == NULL || strncmp(m, WG_FLIGHT_SERVICE, prefix) != 0) {
    struct wg_error err;
    wg_error_set(&err, ENOTSUP, "unknown method %.200s: this is an Arrow Flight server",
                 m ? m : "(none)");
    wg__server_finish(s, call, ENOTSUP, &err);
    return;
  }
  const char *name = m + prefix;
  static const struct {
    const char *name;
    void (*fn)(struct wg_server *, struct wg_rpc_call *);
  } routes[] = {
      {"DoGet", wg__server_do_get},
      {"DoPut", wg__server_do_put},
      {"GetFlightInfo", wg__server_get_flight_info},
      {"PollFlightInfo", wg__server_poll_flight_info},
      {"GetSchema", wg__server_get_schema},
      {"ListFlights", wg__server_list_flights},
      {"DoAction", wg__server_do_action},
      {"ListActions", wg__server_list_actions},
      {"Handshake", wg__server_handshake},
  };
  for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
    if (strcmp(name, routes[i].name) == 0) {
      routes[i].fn(s, call);
      return;
    }
  }
  struct wg_error err;
  if (strcmp(name, "DoExchange") == 0)
    wg_error_set(&err, ENOTSUP, "DoExchange is not supported by this server yet");
  else
    wg_error_set(&err, ENOTSUP, "unknown Flight method %.200s", name);
  wg__server_finish(s, call, ENOTSUP, &err);
}

void wg__server_finish_with(struct wg_server *s, struct wg_rpc_call *call, grpc_byte_buffer *last,
                            int code, const struct wg_error *err) {
  if (code != 0) atomic_fetch_add_explicit(&s->stats.errors, 1, memory_order_relaxed);
  wg_rpc_call_finish_with(call, last, wg_rpc_status_from_errno(code),
                          code != 0 && err != NULL ? err->message : NULL);
}

void wg__server_finish(struct wg_server *s, struct wg_rpc_call *call, int code,
                       const struct wg_error *err) {
  wg__server_finish_with(s, call, NULL, code, err);
}

int wg__server_recv_request(struct wg_rpc_call *call, const ProtobufCMessageDescriptor *d,
                            ProtobufCMessage **out, struct wg_error *err) {
  grpc_byte_buffer *bb = NULL;
  int rc = wg_rpc_call_recv(call, &bb);
  if (rc != 0) return wg_error_set(err, rc, "call cancelled before its request arrived");
  if (bb == NULL) return wg_error_set(err, EINVAL, "no %s in the request", d->short_name);
  rc = wg_flight_unpack(d, bb, out, err);
  grpc_byte_buffer_destroy(bb);
  return rc;
}

int wg__server_send_message(struct wg_rpc_call *call, const ProtobufCMessage *m,
                            struct wg_error *err) {
  grpc_byte_buffer *bb;
  WG_RETURN_NOT_OK(wg_flight_pack(m, &bb, err));
  int rc = wg_rpc_call_send(call, bb);
  if (rc != 0) return wg_error_set(err, rc, "client went away");
  return 0;
}

char *wg__server_json_take(cJSON *value) {
  if (value == NULL) return NULL;
  char *text = cJSON_PrintUnformatted(value);
  cJSON_Delete(value);
  return text;
}

void wg__server_json_int(cJSON *object, const char *name, int64_t value) {
  char text[24];
  snprintf(text, sizeof(text), "%lld", (long long)value);
  if (object != NULL) cJSON_AddRawToObject(object, name, text);
}

int wg__server_sql_text(const struct wg_server *s, const uint8_t *data, size_t len,
                        const char *what, char **out, struct wg_error *err) {
  *out = NULL;
  if (len == 0) return wg_error_set(err, EINVAL, "empty %s: expected SQL text", what);
  if ((uint64_t)len > (uint64_t)s->options.max_sql_bytes)
    return wg_error_set(err, EBUSY,
                        "%s of %zu bytes is over this server's limit for SQL text of %lld bytes "
                        "(--max-sql-bytes)",
                        what, len, (long long)s->options.max_sql_bytes);
  if (memchr(data, 0, len) != NULL)
    return wg_error_set(err, EINVAL, "%s holds a NUL byte: expected SQL text", what);
  if (!wg_utf8_valid(data, len))
    return wg_error_set(err, EINVAL, "%s is not valid UTF-8: expected SQL text", what);
  char *sql = malloc(len + 1);
  if (sql == NULL) return wg_error_set(err, ENOMEM, "out of memory for %zu bytes of SQL", len);
  memcpy(sql, data, len);
  sql[len] = '\0';
  *out = sql;
  return 0;
}

void wg__server_interrupt_hook(void *conn) {
  wg_engine_interrupt(conn);
}

int wg__server_table_ref(const Arrow__Flight__Protocol__FlightDescriptor *d,
                         struct wg__table_ref *out, struct wg_error *err) {
  if (d == NULL) return wg_error_set(err, EINVAL, "missing flight descriptor");
  if (d->type != ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__PATH)
    return wg_error_set(err, EINVAL, "expected a PATH descriptor ([table] or [schema, table])");
  if (d->n_path == 1) {
    out->schema_name = NULL;
    out->table = d->path[0];
  } else if (d->n_path == 2) {
    out->schema_name = d->path[0];
    out->table = d->path[1];
  } else {
    return wg_error_set(err, EINVAL,
                        "descriptor path has %zu parts; expected [table] or "
                        "[schema, table]",
                        d->n_path);
  }
  if (out->table == NULL || out->table[0] == '\0')
    return wg_error_set(err, EINVAL, "empty table name in the descriptor path");
  if (out->schema_name != NULL && out->schema_name[0] == '\0')
    return wg_error_set(err, EINVAL,
                        "empty schema name in the descriptor path: send [table] for the default "
                        "schema, or [schema, table]");
  return 0;
}

char *wg__server_table_sql(const struct wg__table_ref *t) {
  char *schema = t->schema_name ? wg_engine_quote_ident(t->schema_name) : NULL;
  char *table = wg_engine_quote_ident(t->table);
  char *sql = NULL;
  if (table != NULL && (t->schema_name == NULL || schema != NULL)) {
    size_t n = strlen(table) + (schema ? strlen(schema) : 0) + 32;
    sql = malloc(n);
    if (sql != NULL) {
      if (schema != NULL)
        snprintf(sql, n, "SELECT * FROM %s.%s", schema, table);
      else
        snprintf(sql, n, "SELECT * FROM %s", table);
    }
  }
  free(schema);
  free(table);
  return sql;
}

int wg_server_start(struct wg_server **out, const struct wg_server_options *options, int *port,
                    struct wg_error *err) {
  struct wg_server *s = calloc(1, sizeof(*s));
  if (s == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  s->options = *options;
  if (s->options.db_path == NULL) s->options.db_path = "wigeon.duckdb";
  if (s->options.listen == NULL) s->options.listen = "127.0.0.1:8815";
  if (s->options.threads <= 0) s->options.threads = 8;
  if (s->options.queue_limit <= 0) s->options.queue_limit = 64;
  if (s->options.batch_rows <= 0) s->options.batch_rows = 65536;
  if (s->options.max_message_bytes <= 0)
    s->options.max_message_bytes = WG_RPC_DEFAULT_MAX_MESSAGE_BYTES;
  if (s->options.batch_bytes <= 0) s->options.batch_bytes = WG_ENGINE_DEFAULT_BATCH_BYTES;
  if (s->options.batch_bytes > s->options.max_message_bytes / 2)
    s->options.batch_bytes = s->options.max_message_bytes / 2; /* room for the estimate's slack */
  if (s->options.grace_ms < 0) s->options.grace_ms = 0;
  if (s->options.committers <= 0) s->options.committers = 1;
  if (s->options.acquire_timeout_ms == 0) s->options.acquire_timeout_ms = 30000;
  if (s->options.max_sql_bytes <= 0) s->options.max_sql_bytes = WG_DEFAULT_MAX_SQL_BYTES;
  if (s->options.max_columns <= 0) s->options.max_columns = WG_DEFAULT_MAX_COLUMNS;
  if (s->options.committers > WG_MAX_COMMITTERS) {
    free(s);
    return wg_error_set(err, EINVAL, "at most %d group committers", WG_MAX_COMMITTERS);
  }
  struct wg_engine_options eo = {
      .path = s->options.db_path,
      /* Each user of the pool declares its own budget: a call's worker takes one of `threads`,
       * each committer one reserved for it, so neither can starve the other. */
      .connections = s->options.threads,
      .reserved_connections = s->options.committers,
      .allow_external_access = s->options.allow_external_access,
      .memory_limit = s->options.memory_limit,
      .duckdb_threads = s->options.duckdb_threads,
      .disk_reserve = s->options.disk_reserve == 0  ? (int64_t)64 << 20
                      : s->options.disk_reserve < 0 ? 0
                                                    : s->options.disk_reserve,
      /* DuckDB's 16 MB default checkpoints so often under many small puts that rewriting the
       * last row groups costs ~20% of the CPU and 100+ ms stalls (docs/performance.md). */
      .checkpoint_threshold =
          s->options.checkpoint_threshold ? s->options.checkpoint_threshold : "256MB",
      /* Workers are plentiful (the rpc layer starts more while all are busy), connections are
       * not: the line for one is where calls queue, and a full line is RESOURCE_EXHAUSTED. */
      .max_waiting = s->options.queue_limit,
      .acquire_timeout_ms = s->options.acquire_timeout_ms,
  };
  int rc = wg_engine_open(&s->engine, &eo, err);
  if (rc != 0) {
    wg_error_prefix(err, rc, "cannot open database %.300s", s->options.db_path);
    free(s);
    return rc;
  }
  struct wg_rpc_server_options ro = {
      .listen = s->options.listen,
      .threads = s->options.threads,
      .queue_limit = s->options.queue_limit,
      .max_connections = s->options.max_connections,
      .max_workers = s->options.max_workers,
      .idle_timeout_ms = s->options.idle_timeout_ms,
      .max_message_bytes = s->options.max_message_bytes,
      .handler = dispatch,
      .ctx = s,
  };
  if (s->options.group_commit_bytes == 0) s->options.group_commit_bytes = (int64_t)8 << 20;
  if (s->options.idempotency_window_s == 0) s->options.idempotency_window_s = 24 * 3600;
  rc = wg__committer_start(&s->committer, s->engine, s->options.committers,
                           s->options.idempotency_window_s, s->options.group_commit_bytes, err);
  if (rc == 0) rc = wg_rpc_server_start(&s->rpc, &ro, port, err);
  if (rc != 0) {
    wg__committer_stop(&s->committer);
    wg_engine_close(s->engine);
    free(s);
    return rc;
  }
  *out = s;
  return 0;
}

int wg_server_stop(struct wg_server *s, struct wg_error *err) {
  if (s == NULL) return 0;
  wg_rpc_server_shutdown(s->rpc, s->options.grace_ms);
  wg_rpc_server_destroy(s->rpc);
  wg__committer_stop(&s->committer); /* after the handlers, which may be waiting on it */
  /* The checkpoint is skipped (and said so) when the disk has no room for it or DuckDB had a
   * fatal error; the WAL keeps every commit and the next start replays it. */
  int rc = wg_engine_checkpoint(s->engine, err);
  if (rc == ENOSPC) {
    fprintf(stderr, "wigeon serve: no checkpoint at shutdown: %s\n", err->message);
    rc = 0;
  } else if (rc == ENOTRECOVERABLE) {
    wg_error_prefix(err, rc, "stopped without a checkpoint; restart to recover from the WAL");
  }
  wg_engine_close(s->engine);
  free(s);
  return rc;
}
