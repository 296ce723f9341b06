/* wigeon: the live tail (tail.c, tail_call.c; docs/tail.md). A DoGet whose ticket is JSON
 * {"tail": TABLE, ...} subscribes to the table: it gets the rows there are now (unless "from"
 * says otherwise), then every put committed to the table after them, as it commits, filtered and
 * projected on the server, until the client cancels or its deadline passes.
 *
 * The hub (tail.c) is one commit subscriber of the engine (wg_engine_on_commit) and one thread
 * with a reserved DuckDB connection. Each committed put becomes a shared event in a bounded
 * history (--tail-history-mb); the hub thread brings every live subscriber up to date from it,
 * evaluating the subscriber's WHERE and columns with DuckDB over the put's batches
 * (wg_engine_query_over), and queues the encoded messages on the subscriber's parked call
 * (wg_rpc_call_park: no worker thread, no DuckDB connection while it waits). A subscriber whose
 * queue passes --tail-buffer-mb is cut off with RESOURCE_EXHAUSTED; writers never wait for it.
 * Not for use outside src/server. */
#ifndef WG_SERVER_TAIL_H
#define WG_SERVER_TAIL_H

#include <stdint.h>

#include "server/internal.h"

/* Defaults of the tail's options (struct wg_server_options). */
#define WG_TAIL_DEFAULT_BUFFER_BYTES ((int64_t)16 << 20)
#define WG_TAIL_DEFAULT_HISTORY_BYTES ((int64_t)64 << 20)
#define WG_TAIL_DEFAULT_MAX 1024

/* The schema metadata every tail stream carries (docs/tail.md). */
#define WG_TAIL_META_TABLE "wigeon.tail.table"
#define WG_TAIL_META_START "wigeon.tail.start_sequence"
#define WG_TAIL_META_DELIVERS "wigeon.tail.delivers"
#define WG_TAIL_DELIVERS                                                                        \
  "puts only (DoPut, Flight SQL ingest); rows changed by SQL (INSERT, UPDATE, DELETE, COPY) are " \
  "not delivered"

struct wg__tail_hub;
struct wg__tail_sub;

/* The hub, idle: its thread and commit subscription start with the first subscriber. */
int wg__tail_create(struct wg_server *s, struct wg__tail_hub **out, struct wg_error *err);
/* After the rpc server has shut down (every parked call done): stops the thread, unsubscribes,
 * frees the history. NULL ok. */
void wg__tail_destroy(struct wg__tail_hub *h);
/* The longest a tail's snapshot query (its WHERE) may take to plan before it is refused. */
#define WG_TAIL_PLAN_MS 250

/* Subscribers now (for stats). */
int64_t wg__tail_subscribers(struct wg__tail_hub *h);
/* DuckDB queries the hub has run to filter or project puts for subscribers (for stats). */
int64_t wg__tail_filter_queries(struct wg__tail_hub *h);

/* DoGet of a TAIL request (tail_call.c): subscribes, sends the start and parks the call. Finishes
 * the call itself on error. */
void wg__server_tail(struct wg_server *s, struct wg_rpc_call *call, struct wg__request *req);

/* What tail_call.c asks of the hub (tail.c). */
/* The hub's key of a table: lower-case "schema.table" (NULL schema: main); NULL on ENOMEM. */
char *wg__tail_table_key(const char *schema_name, const char *table);
/* Starts the hub's thread and commit subscription if they are not running. */
int wg__tail_hub_start(struct wg__tail_hub *h, struct wg_error *err);
/* A subscriber of `table_key` (lower-case "schema.table") on `call` whose stream has `schema`
 * (copied) and whose rows are selected by `select_list` and `where` (NULL: all rows) over the
 * table's columns names[i] of DuckDB type types[i] (n of them; copied); `table_alias` the quoted
 * table name (no schema) the WHERE may qualify columns with. Not yet known to the hub. */
int wg__tail_sub_create(struct wg__tail_hub *h, struct wg_rpc_call *call, const char *table_key,
                        const char *table_alias, const char *select_list, const char *where,
                        bool all_columns, char **names, char **types, int n,
                        const struct ArrowSchema *schema, struct wg__tail_sub **out,
                        struct wg_error *err);
/* Called under the engine's commit lock (wg_engine_tail_begin's at_point): registers the
 * subscriber at `sequence` (the table's newest), or, for a resume (`resume`), at from_sequence
 * when the history still holds every put after it; otherwise the subscriber gets an error for
 * wg__tail_sub_registered. */
void wg__tail_sub_register(struct wg__tail_sub *sub, uint64_t sequence, bool resume,
                           uint64_t from_sequence, uint64_t run_base);
/* 0 once registered, or the error registration met (err filled). */
int wg__tail_sub_registered(struct wg__tail_sub *sub, struct wg_error *err);
/* The sequence the subscriber starts after. */
uint64_t wg__tail_sub_cursor(const struct wg__tail_sub *sub);
/* Encodes `batch` (taken) with app_metadata {"seq": seq, "more": more} for the subscriber's
 * stream into byte buffers appended to *out (n_out of cap); the schema message first when
 * `with_schema`. */
int wg__tail_sub_encode(struct wg__tail_sub *sub, struct ArrowArray *batch, uint64_t seq,
                        bool more, grpc_byte_buffer ***out, int64_t *n_out, int64_t *cap,
                        struct wg_error *err);
int wg__tail_sub_encode_schema(struct wg__tail_sub *sub, grpc_byte_buffer **out,
                               struct wg_error *err);
/* An empty batch of the subscriber's schema (the start marker). */
int wg__tail_sub_empty_batch(struct wg__tail_sub *sub, struct ArrowArray *out, struct wg_error *err);
/* Parks the subscriber's call and makes it live: the hub brings it up to date from here. After
 * this the caller must not touch the call. On error (the call could not be parked) the subscriber
 * is removed and the caller finishes the call. */
int wg__tail_sub_go_live(struct wg__tail_sub *sub, struct wg_error *err);
/* Removes a subscriber that never went live (an error before it) and drops the caller's
 * reference. */
void wg__tail_sub_abandon(struct wg__tail_sub *sub);

#endif
