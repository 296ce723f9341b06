/* wigeon: the Flight service's lifecycle and dispatch. Starting opens the engine (one DuckDB
 * connection per base worker thread) and then the gRPC server; every call lands in dispatch() on a
 * worker thread, which routes it by method name to its handler. Stopping reverses the order:
 * no new calls, in-flight calls finish within the grace period, then checkpoint and close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth.h"
#include "server/fsql.h"
#include "server/roles.h"
#include "server/tail.h"

/* Who the caller is and whether the per-user limits let it in, before the handler takes a DuckDB
 * connection (auth.h); the principal stays with the call while its handler runs. */
static void admitted(struct wg_server *s, struct wg_rpc_call *call,
                     void (*fn)(struct wg_server *, struct wg_rpc_call *)) {
  struct wg__principal who;
  struct wg_error err;
  int rc = wg__auth_admit(s, call, &who, &err);
  if (rc == 0) rc = wg__limits_enter(s, &who, &err);
  if (rc != 0) {
    wg__server_finish(s, call, rc, &err);
    return;
  }
  wg_rpc_call_set_user_data(call, &who);
  fn(s, call);
  wg_rpc_call_set_user_data(call, NULL);
  wg__limits_leave(s, &who);
}

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
      {"DoExchange", wg__server_do_exchange},
  };
  for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
    if (strcmp(name, routes[i].name) == 0) {
      admitted(s, call, routes[i].fn);
      return;
    }
  }
  struct wg_error err;
  wg_error_set(&err, ENOTSUP, "unknown Flight method %.200s", name);
  wg__server_finish(s, call, ENOTSUP, &err);
}

void wg_server_options_default(struct wg_server_options *o) {
  *o = (struct wg_server_options){
      .db_path = "wigeon.duckdb",
      .listen = "127.0.0.1:8815",
      .threads = 8,
      .queue_limit = 64,
      .max_connections = 0, /* the open-file limit less 128, at most 4096 (rpc layer) */
      .max_workers = 0,     /* threads + max_connections */
      .acquire_timeout_ms = 30000,
      .batch_rows = 65536,
      .batch_bytes = WG_ENGINE_DEFAULT_BATCH_BYTES,
      .max_message_bytes = WG_RPC_DEFAULT_MAX_MESSAGE_BYTES,
      .grace_ms = 10000,
      .idle_timeout_ms = 60000,
      .keepalive_ms = 30000,
      .allow_external_access = false,
      .group_commit_bytes = (int64_t)8 << 20,
      .committers = 1,
      .disk_reserve = (int64_t)64 << 20,
      .idempotency_window_s = 24 * 3600,
      /* DuckDB's 16 MB default checkpoints so often under many small puts that rewriting the
       * last row groups costs ~20% of the CPU and 100+ ms stalls (docs/performance.md). */
      .checkpoint_threshold = "256MB",
      .memory_limit = NULL,
      .duckdb_threads = 0,
      .max_sql_bytes = WG_DEFAULT_MAX_SQL_BYTES,
      .max_columns = WG_DEFAULT_MAX_COLUMNS,
      .max_sessions = 16,
      .session_idle_timeout_ms = 300000,
      .token_ttl_s = 3600,
      .tail_buffer_bytes = WG_TAIL_DEFAULT_BUFFER_BYTES,
      .tail_history_bytes = WG_TAIL_DEFAULT_HISTORY_BYTES,
      .max_tails = WG_TAIL_DEFAULT_MAX,
  };
}

/* Fills the fields of o left unset (0 or NULL; <= 0 where a negative value means nothing) with
 * the defaults of wg_server_options_default. */
static void fill_defaults(struct wg_server_options *o) {
  struct wg_server_options d;
  wg_server_options_default(&d);
  if (o->db_path == NULL) o->db_path = d.db_path;
  if (o->listen == NULL) o->listen = d.listen;
  if (o->threads <= 0) o->threads = d.threads;
  if (o->queue_limit <= 0) o->queue_limit = d.queue_limit;
  if (o->batch_rows <= 0) o->batch_rows = d.batch_rows;
  if (o->max_message_bytes <= 0) o->max_message_bytes = d.max_message_bytes;
  if (o->batch_bytes <= 0) o->batch_bytes = d.batch_bytes;
  if (o->batch_bytes > o->max_message_bytes / 2)
    o->batch_bytes = o->max_message_bytes / 2; /* room for the estimate's slack */
  if (o->grace_ms < 0) o->grace_ms = 0;
  if (o->idle_timeout_ms == 0) o->idle_timeout_ms = d.idle_timeout_ms;
  if (o->keepalive_ms == 0) o->keepalive_ms = d.keepalive_ms;
  if (o->committers <= 0) o->committers = d.committers;
  if (o->acquire_timeout_ms == 0) o->acquire_timeout_ms = d.acquire_timeout_ms;
  if (o->max_sql_bytes <= 0) o->max_sql_bytes = d.max_sql_bytes;
  if (o->max_columns <= 0) o->max_columns = d.max_columns;
  if (o->max_sessions <= 0) o->max_sessions = d.max_sessions;
  if (o->session_idle_timeout_ms <= 0) o->session_idle_timeout_ms = d.session_idle_timeout_ms;
  if (o->group_commit_bytes == 0) o->group_commit_bytes = d.group_commit_bytes;
  if (o->idempotency_window_s == 0) o->idempotency_window_s = d.idempotency_window_s;
  if (o->disk_reserve == 0) o->disk_reserve = d.disk_reserve;
  if (o->checkpoint_threshold == NULL) o->checkpoint_threshold = d.checkpoint_threshold;
  if (o->token_ttl_s <= 0) o->token_ttl_s = d.token_ttl_s;
  if (o->tail_buffer_bytes <= 0) o->tail_buffer_bytes = d.tail_buffer_bytes;
  if (o->tail_history_bytes <= 0) o->tail_history_bytes = d.tail_history_bytes;
  if (o->max_tails <= 0) o->max_tails = d.max_tails;
}

int wg_server_start(struct wg_server **out, const struct wg_server_options *options, int *port,
                    struct wg_error *err) {
  struct wg_server *s = calloc(1, sizeof(*s));
  if (s == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  s->options = *options;
  fill_defaults(&s->options);
  if (s->options.committers > WG_MAX_COMMITTERS) {
    free(s);
    return wg_error_set(err, EINVAL, "at most %d group committers", WG_MAX_COMMITTERS);
  }
  struct wg_engine_options eo = {
      .path = s->options.db_path,
      /* Each user of the pool declares its own budget: a call's worker takes one of `threads`,
       * each committer one reserved for it, so neither can starve the other. */
      .connections = s->options.threads,
      .reserved_connections = s->options.committers + 1, /* + the live tail's hub */
      .max_sessions = s->options.max_sessions, /* Flight SQL transactions (fsql_txn.c) */
      .allow_external_access = s->options.allow_external_access,
      .memory_limit = s->options.memory_limit,
      .duckdb_threads = s->options.duckdb_threads,
      .disk_reserve = s->options.disk_reserve < 0 ? 0 : s->options.disk_reserve, /* 0: no check */
      .checkpoint_threshold = s->options.checkpoint_threshold,
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
      .keepalive_ms = s->options.keepalive_ms,
      .max_message_bytes = s->options.max_message_bytes,
      .handler = dispatch,
      .admit = wg__auth_early,
      .ctx = s,
      .tls_cert_file = s->options.tls_cert_file,
      .tls_key_file = s->options.tls_key_file,
      .tls_client_ca_file = s->options.tls_client_ca_file,
  };
  rc = wg__committer_start(&s->committer, s->engine, s->options.committers,
                           s->options.idempotency_window_s, s->options.group_commit_bytes, err);
  if (rc == 0) rc = wg__fsql_start(s, err);
  if (rc == 0) rc = wg__auth_start(s, err);
  if (rc == 0) rc = wg__limits_start(s, err);
  if (rc == 0) rc = wg__tail_create(s, &s->tail, err);
  if (rc == 0) rc = wg_rpc_server_start(&s->rpc, &ro, port, err);
  if (rc != 0) {
    wg__tail_destroy(s->tail);
    wg__limits_stop(s);
    wg__auth_stop(s);
    wg__fsql_stop(s);
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
  wg__tail_destroy(s->tail); /* after the rpc server: every parked tail has ended */
  wg__fsql_stop(s); /* open transactions roll back; after the handlers, which use them */
  wg__auth_stop(s);
  wg__limits_stop(s); /* after the handlers, which leave their limits */
  wg__committer_stop(&s->committer); /* after the handlers, which may be waiting on it */
  /* The checkpoint is skipped (and said so) when the disk has no room for it or DuckDB had a
   * fatal error; the WAL keeps every commit and the next start replays it. */
  struct wg_error own = {""};
  if (err == NULL) err = &own; /* the convention allows NULL; the message is printed below */
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

int wg_server_reload(struct wg_server *s, struct wg_error *err) {
  /* Each part on its own: a bad users file does not hold back a new certificate. */
  int rc = wg__auth_reload(s, err);
  struct wg_error tls_err = {""};
  int tls_rc = wg_rpc_server_tls_reload(s->rpc, &tls_err); /* new handshakes: new certificate */
  if (tls_rc != 0 && rc == 0) rc = wg_error_set(err, tls_rc, "%s", tls_err.message);
  return rc;
}
