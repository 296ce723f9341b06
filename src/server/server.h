/* wigeon: the Flight service: a DuckDB database (engine/) served over Arrow Flight (flight/) on
 * the gRPC transport (rpc/). One handler per RPC, each in its own file; this header is what the
 * command line needs to run a server. */
#ifndef WG_SERVER_SERVER_H
#define WG_SERVER_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

struct wg_server_options {
  const char *db_path;        /* database file or ":memory:" (default "wigeon.duckdb") */
  const char *listen;         /* "host:port" (default "127.0.0.1:8815"); port 0 = any free */
  int threads;                /* DuckDB connections, and workers always running (default 8) */
  int queue_limit;            /* calls waiting for a connection (or, all max_workers busy, for a
                                 worker) before RESOURCE_EXHAUSTED (64) */
  int max_connections;        /* TCP connections at once, more are refused (0: open-file limit
                                 less 128, at most 4096) */
  int max_workers;            /* worker threads at most (0: threads + max_connections) */
  int64_t acquire_timeout_ms; /* a call waits this long for a DuckDB connection (30000; <0 ever) */
  int64_t batch_rows;         /* target rows per DoGet record batch (65536) */
  int64_t batch_bytes;        /* and bytes at most: wider rows make shorter batches (64 MiB; at
                                 most max_message_bytes / 2); a row bigger goes alone */
  int64_t max_message_bytes;  /* largest gRPC message either way (0 = 256 MiB) */
  int grace_ms;               /* time in-flight calls get on shutdown (10000) */
  int64_t idle_timeout_ms;    /* cancel a call whose client is idle this long (60000; <0 never) */
  int64_t keepalive_ms;       /* HTTP/2 PING interval and answer timeout (30000; <0 no pings) */
  bool allow_external_access; /* let SQL reach files, extensions, configuration */
  int64_t group_commit_bytes; /* puts up to this size are committed in groups (8 MiB; <0 off) */
  int committers;             /* group committer threads, each with its own connection (1) */
  int64_t disk_reserve;       /* bytes kept free beyond a write and its checkpoint (0 = 64 MiB;
                                 <0 no check) */
  int64_t idempotency_window_s; /* idempotency keys are kept this long (0 = 24 h; <0 forever) */
  const char *checkpoint_threshold; /* WAL size that triggers a checkpoint ("256MB") */
  const char *memory_limit;         /* DuckDB memory_limit, NULL = DuckDB's default */
  int duckdb_threads;               /* DuckDB's own worker threads, 0 = DuckDB's default (cores) */
  int64_t max_sql_bytes; /* longest SQL text a call may send (1 MiB; 0 = default): longer is
                            RESOURCE_EXHAUSTED before DuckDB parses it (its parser takes ~80x) */
  int64_t max_columns; /* fields a put's schema may have, nested ones included (10000; 0 =
                          default): more is RESOURCE_EXHAUSTED before the fields are decoded */
  int max_sessions; /* Flight SQL transactions open at once, each on a pinned connection (16; 0 =
                       default): one more is RESOURCE_EXHAUSTED */
  int64_t session_idle_timeout_ms; /* a transaction no call used for this long is rolled back
                                      (300000; 0 = default) */
  const char *users_path; /* users file (docs/security.md): NULL = no authentication, everyone
                             the anonymous admin, and then only a loopback address may be bound */
  int64_t token_ttl_s;    /* a bearer token lives this long (3600; 0 = default) */
  bool insecure_no_auth;  /* without users_path, bind a non-loopback address anyway */
  const char *tls_cert_file;      /* PEM certificate chain and key: TLS on (both NULL: off) */
  const char *tls_key_file;       /* (re-read by wg_server_reload) */
  const char *tls_client_ca_file; /* PEM CAs: mutual TLS, clients need a certificate from one */
  int64_t query_timeout_ms; /* a call running client SQL longer is ended with DEADLINE_EXCEEDED
                               and its query interrupted (0 = no limit) */
  int max_calls_per_user;   /* calls one user may have running at once; one more is
                               RESOURCE_EXHAUSTED (0 = no limit; the anonymous user is one user) */
  int64_t tail_buffer_bytes;  /* a live tail's subscriber that falls this far behind is cut off
                                 with RESOURCE_EXHAUSTED (16 MiB; 0 = default) */
  int64_t tail_history_bytes; /* committed puts kept for subscribers catching up and resuming
                                 (64 MiB; 0 = default) */
  int max_tails;              /* live tail subscribers at once (1024; 0 = default) */
};

/* The defaults, in one place: every field as the server uses it when nothing is said (the
 * `wigeon serve` command starts from these and prints them in --help). wg_server_start takes a
 * field left 0 (NULL) as its default here, except grace_ms (0: no grace), and the fields whose
 * default is 0: max_connections, max_workers, duckdb_threads (computed at start) and
 * memory_limit (NULL: DuckDB's). */
void wg_server_options_default(struct wg_server_options *o);

struct wg_server;

/* Opens the database and starts serving. *port (may be NULL) gets the bound port. */
int wg_server_start(struct wg_server **out, const struct wg_server_options *options, int *port,
                    struct wg_error *err);
/* Re-reads what the server can change without a restart (SIGHUP in `wigeon serve`): the users
 * file, the TLS certificate and key. On error the old state stays and err says why. */
int wg_server_reload(struct wg_server *s, struct wg_error *err);
/* Stops accepting calls, lets in-flight calls finish within the grace period (then cancels
 * them), checkpoints and closes the database, frees the server. NULL ok. Returns 0 or the
 * checkpoint's error. */
int wg_server_stop(struct wg_server *s, struct wg_error *err);

#endif
