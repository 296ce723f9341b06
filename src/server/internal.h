/* wigeon: what the service's files share: the server state, the handlers, and helpers to finish a
 * call from a status code. Not for use outside src/server. */
#ifndef WG_SERVER_INTERNAL_H
#define WG_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <cjson/cJSON.h>

#include "engine/engine.h"
#include "flight/flight.h"
#include "rpc/rpc.h"
#include "server/request.h"
#include "server/server.h"

/* Counters for the `stats` action: all relaxed atomics, read without a lock. */
struct wg_server_stats {
  atomic_llong calls, errors;
  atomic_llong rows_in, rows_out, bytes_in, bytes_out;
  atomic_llong puts, gets;
  atomic_llong stalled_gets; /* DoGets whose connection left the pool: the client stopped reading */
};

/* The group committers (group_commit.c): threads, each with its own DuckDB connection, taking
 * whatever puts are waiting when they come round. One by default: on 2 cores a second one made
 * groups smaller and throughput lower (docs/performance.md). */
#define WG_MAX_COMMITTERS 8
/* A put of more columns streams in its own transaction instead (DuckDB's flush of a wide
 * appender costs ~40 us a column); a group takes puts of at most WG_GROUP_BUDGET_COLUMNS columns
 * and the server's group_commit_bytes in all, so that no group takes long and the puts behind
 * it wait little (docs/server.md, "Wide puts"). */
#define WG_GROUP_MAX_COLUMNS 256
/* --max-columns: a 10,000-column put is answered in under a second (docs/server.md) */
#define WG_DEFAULT_MAX_COLUMNS 10000
#define WG_GROUP_BUDGET_COLUMNS 4096
struct wg__commit_entry;
struct wg__committer {
  struct wg_engine *engine;
  struct wg__commit_lane {
    pthread_t thread;
    struct wg_engine_conn *conn;
    struct wg__committer *cm;
  } lanes[WG_MAX_COMMITTERS];
  int n_lanes;
  bool started, stopping;
  pthread_mutex_t mu;
  pthread_cond_t work_cv;
  struct wg__commit_entry *head, *tail;
  int64_t groups, grouped_puts; /* guarded by mu; for stats */
  int64_t key_window_s;          /* idempotency keys older than this are pruned (0: never) */
  int64_t budget_bytes;          /* a group's puts' bytes at most (but one put is always taken) */
};
/* Starts n committer lanes; the first also prunes idempotency keys older than key_window_s
 * seconds, at most once a minute. */
int wg__committer_start(struct wg__committer *cm, struct wg_engine *engine, int n,
                        int64_t key_window_s, int64_t budget_bytes, struct wg_error *err);
void wg__committer_stop(struct wg__committer *cm);
/* Commits a deferred ingest (consumed) of `bytes` received and `columns` columns together with
 * whatever else is waiting (within a group's budget); blocks until committed. Returns its status;
 * *rows the rows committed. ECANCELED, committing nothing, when `call` (may be NULL) is cancelled
 * by the time its group commits; ENOSPC, committing nothing, when the disk has no room for the
 * group (wg_engine_check_room). */
int wg__committer_commit(struct wg__committer *cm, struct wg_engine_ingest *ing,
                         const struct wg_rpc_call *call, int64_t bytes, int64_t columns,
                         int64_t *rows, struct wg_error *err);

struct wg_server {
  struct wg_server_options options;
  struct wg_engine *engine;
  struct wg_rpc_server *rpc;
  struct wg_server_stats stats;
  struct wg__committer committer;
  struct wg__fsql *fsql; /* Flight SQL's state: transactions, prepared statements (fsql.h) */
  struct wg__auth *auth; /* users, tokens, failed logins (auth.c); NULL without a users file */
  struct wg__limits *limits; /* per-user calls, query timeouts (limits.c) */
  struct wg__tail_hub *tail; /* live tails (tail.h) */
};

/* The gRPC header a put may carry its idempotency key in (besides app_metadata, see do_put.c). */
#define WG_SERVER_KEY_HEADER "wigeon-idempotency-key"
/* The gRPC header a DoGet may carry to ask for compressed record batches: zstd, lz4 or none. */
#define WG_SERVER_COMPRESSION_HEADER "wigeon-compression"

/* Handlers: each receives its request, does its work and finishes the call. */
void wg__server_do_get(struct wg_server *s, struct wg_rpc_call *call);
void wg__server_do_put(struct wg_server *s, struct wg_rpc_call *call);
void wg__server_get_flight_info(struct wg_server *s, struct wg_rpc_call *call);
void wg__server_poll_flight_info(struct wg_server *s, struct wg_rpc_call *call);
void wg__server_get_schema(struct wg_server *s, struct wg_rpc_call *call);
void wg__server_list_flights(struct wg_server *s, struct wg_rpc_call *call);
void wg__server_do_action(struct wg_server *s, struct wg_rpc_call *call);
void wg__server_list_actions(struct wg_server *s, struct wg_rpc_call *call);
void wg__server_handshake(struct wg_server *s, struct wg_rpc_call *call);
void wg__server_do_exchange(struct wg_server *s, struct wg_rpc_call *call);
/* Sends `stream` (borrowed; read to its end or first error) to the call as DoGet sends a result
 * (schema first, batches bounded by the server's batch options, the wigeon-compression header
 * honoured), each message started at once rather than held for the next (do_get.c): a DoExchange
 * client may wait for one result before it sends more. 0 or the stream's or the send's code. */
int wg__server_send_stream(struct wg_server *s, struct wg_rpc_call *call,
                           struct ArrowArrayStream *stream, struct wg_error *err);

/* Finishes the call with the gRPC status for `code` (0 = OK) and err's message, counting errors. */
void wg__server_finish(struct wg_server *s, struct wg_rpc_call *call, int code,
                       const struct wg_error *err);
/* The same, sending `last` (taken; may be NULL) in the status's batch. */
void wg__server_finish_with(struct wg_server *s, struct wg_rpc_call *call, grpc_byte_buffer *last,
                            int code, const struct wg_error *err);

/* Receives the single request message of a unary or server-streaming call and unpacks it. */
int wg__server_recv_request(struct wg_rpc_call *call, const ProtobufCMessageDescriptor *d,
                            ProtobufCMessage **out, struct wg_error *err);
/* Packs and sends one protobuf message. */
int wg__server_send_message(struct wg_rpc_call *call, const ProtobufCMessage *m,
                            struct wg_error *err);

/* Prints a JSON value compactly and deletes it (NULL ok, e.g. after a failed create): the text is
 * the caller's, freed with cJSON_free; NULL when out of memory. Every JSON body the server sends
 * (acknowledgements, action results) is made with cJSON, so names come out exactly. */
char *wg__server_json_take(cJSON *value);
/* Adds an exact integer (cJSON's numbers are doubles, inexact past 2^53). NULL object ok. */
void wg__server_json_int(cJSON *object, const char *name, int64_t value);
/* --max-sql-bytes by default (request.c checks SQL text against it) */
#define WG_DEFAULT_MAX_SQL_BYTES ((int64_t)1 << 20)
/* Cancel hook that interrupts the query on a connection (arg: struct wg_engine_conn *). */
void wg__server_interrupt_hook(void *conn);

#endif
