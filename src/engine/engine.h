/* wigeon: the DuckDB engine behind the Flight service, over DuckDB's C API only. One database, a
 * pool of connections (one per worker: a call holds one connection at a time), streaming queries
 * as Arrow record batches gathered to a target size, all-or-nothing ingest of Arrow batches,
 * catalog lookups, and the classification of DuckDB errors into wigeon status codes.
 * Knows nothing of Flight or gRPC.
 *
 * Status codes (errno-style, see common/error.h) returned by every function here:
 *   EINVAL     parser, binder, conversion errors; schema mismatch on ingest
 *   ENOENT     missing catalog entry (table, schema, column, function)
 *   EEXIST     duplicate key / unique or primary key constraint, object already exists
 *   EPERM      other constraint violations (NOT NULL, CHECK, foreign key); refused by the
 *              security settings (external access, configuration lock); a transaction
 *              statement out of place (ROLLBACK or COMMIT with no transaction active)
 *   EAGAIN     transaction conflict (retry may succeed)
 *   ENOMEM     out of memory
 *   ENOSPC     the disk is full ("No space left on device", or refused by wg_engine_check_room)
 *   ENOTRECOVERABLE  DuckDB reported a fatal error: the database needs a restart
 *   ECANCELED  interrupted (wg_engine_interrupt)
 *   EIO        anything else (DuckDB internal, I/O)
 * and the message is DuckDB's own. */
#ifndef WG_ENGINE_ENGINE_H
#define WG_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include <duckdb.h>

#include "arrow/abi.h"
#include "common/error.h"

struct wg_engine;
struct wg_engine_conn;

struct wg_engine_options {
  const char *path;                 /* database file, or ":memory:" (NULL = ":memory:") */
  /* The pool's users each declare their connections here, at open, and draw only from their
   * own budget, so that none can starve another (pool.c). */
  int connections;                  /* calls (wg_engine_acquire): the shared pool (default 8) */
  int reserved_connections;         /* long-lived owners (wg_engine_acquire_reserved: the group
                                       committers), default 0 */
  int max_sessions;                 /* pinned sessions (wg_engine_acquire_pinned), default 0 */
  bool allow_external_access;       /* false: no file system, extensions or configuration changes */
  const char *memory_limit;         /* DuckDB memory_limit, NULL = DuckDB's default */
  int duckdb_threads;               /* DuckDB worker threads, 0 = DuckDB's default */
  const char *checkpoint_threshold; /* WAL size that triggers a checkpoint, NULL = DuckDB's 16MB */
  int64_t disk_reserve;             /* bytes kept free (see wg_engine_check_room); 0 = no check */
  int max_waiting;                  /* callers that may wait in acquire at once (0 = no limit) */
  int64_t acquire_timeout_ms;       /* how long acquire waits at most (0 = 30 s, < 0: no limit) */
  int64_t events_max_put_bytes;     /* bytes of batches a put keeps for its commit event, at most
                                       (0 = WG_ENGINE_DEFAULT_EVENTS_MAX_PUT_BYTES): "Commit events" */
};
#define WG_ENGINE_DEFAULT_ACQUIRE_TIMEOUT_MS 30000

/* Opens (or creates) the database and the connection pool. By default (allow_external_access
 * false) the database is configured so that SQL cannot reach the file system (read_csv, COPY,
 * ATTACH, EXPORT), install or load extensions, or change that configuration (SET ... is refused
 * for locked settings). Returns 0, EIO/EINVAL with DuckDB's message. The caller owns *out. */
int wg_engine_open(struct wg_engine **out, const struct wg_engine_options *options,
                   struct wg_error *err);
/* Checkpoints (file databases) and closes. Every connection must have been released. NULL ok.
 * A database that can no longer run any statement is not closed (DuckDB would abort the process
 * from its destructors): its DuckDB objects stay until the process exits. */
void wg_engine_close(struct wg_engine *e);
int wg_engine_checkpoint(struct wg_engine *e, struct wg_error *err);

/* The connection pool (pool.c). Three users, each with its own budget fixed at open:
 *   calls      wg_engine_acquire / wg_engine_release: `connections` made at open, shared by the
 *              calls; a caller waits while all are in use.
 *   reserved   wg_engine_acquire_reserved: `reserved_connections`, each made when taken and held
 *              for long (a group committer's, for the server's life); never waits.
 *   sessions   wg_engine_acquire_pinned / wg_engine_release_pinned: `max_sessions`, each made
 *              when taken, pinned to one client session across calls, closed on release; never
 *              waits.
 * No budget lends to another: a put's committer finds its connection however many calls hold
 * theirs, and pinned sessions cannot take the calls' connections.
 *
 * Takes a connection from the calls' pool, waiting while all are in use: EBUSY ("server busy")
 * at once when max_waiting callers already wait, or after acquire_timeout_ms ("no DuckDB
 * connection free after 30 s (8 in use)"). The connection is the caller's until
 * wg_engine_release. A thread that declared wg_engine_thread_serves_calls holds at most one
 * calls' connection at a time: a second acquire aborts in debug builds (WG_DCHECK). Thread-safe. */
int wg_engine_acquire(struct wg_engine *e, struct wg_engine_conn **out, struct wg_error *err);
/* Declares that the calling thread runs calls (an RPC worker): from now on it may hold at most one
 * of the calls' connections at a time (a call that waited for a second while holding one could
 * deadlock the pool), checked in debug builds. Costs nothing otherwise. */
void wg_engine_thread_serves_calls(void);
/* Access levels of client SQL (docs/security.md "Roles"), each allowing what the one below does
 * and more: READ queries, metadata, transaction control and session variables; WRITE also DML
 * (INSERT, UPDATE, DELETE, MERGE, COPY FROM) and nextval/setval; ALL also DDL and everything else
 * (CREATE, DROP, ALTER, PREPARE/EXECUTE as SQL, PRAGMA, SET of settings, CHECKPOINT...). Every
 * statement of a client text is classified after prepare, before it runs; one above the level is
 * refused with EACCES naming the level it needs. The sandbox holds at every level. */
enum wg_engine_access {
  WG_ENGINE_ACCESS_READ = 1,
  WG_ENGINE_ACCESS_WRITE = 2,
  WG_ENGINE_ACCESS_ALL = 3,
};
/* The level of the client SQL the calling thread runs from now on (a thread's default is ALL):
 * set by the server around each call from its caller's role. Prepared statements and pinned
 * sessions' connections are checked on the thread that runs them, at creation and at execution. */
void wg_engine_thread_set_access(enum wg_engine_access a);
enum wg_engine_access wg_engine_thread_access(void);
/* "read", "write", "admin" (the role names the levels stand for). */
const char *wg_engine_access_name(enum wg_engine_access a);
/* A fresh connection of the reserved budget, for a long-lived owner (one group committer): EBUSY
 * at once when all reserved_connections are taken, EIO/ENOMEM. Given back with
 * wg_engine_release, which closes it. Not counted against the calling thread. Thread-safe. */
int wg_engine_acquire_reserved(struct wg_engine *e, struct wg_engine_conn **out,
                               struct wg_error *err);
/* A fresh connection for a pinned session (a transaction or other state that spans calls, see
 * docs/server.md "Sessions and the connection pool"): EBUSY ("N pinned sessions already open")
 * at once when max_sessions are open, EIO/ENOMEM. Not counted against the calling thread: the
 * session, not a thread, holds it, and any thread may use it (one at a time) and release it. */
int wg_engine_acquire_pinned(struct wg_engine *e, struct wg_engine_conn **out,
                             struct wg_error *err);
/* Ends a pinned session: closes its connection (DuckDB rolls back an open transaction) and gives
 * its place in the sessions' budget back. NULL ok. Thread-safe. */
void wg_engine_release_pinned(struct wg_engine *e, struct wg_engine_conn *c);
/* Pinned sessions open now. */
int wg_engine_pinned_count(struct wg_engine *e);
/* Takes an acquired connection out of the pool for good, for a caller about to hold it idle for
 * long (a query stream whose client stopped reading): the pool gets a fresh connection in its
 * place, so other callers never wait for this one; release then disconnects it. 0, or EIO/ENOMEM
 * (c stays in the pool, still acquired). Detaching twice is a no-op. A detached connection no
 * longer counts as its thread's one connection (it holds no place in the pool). Thread-safe. */
int wg_engine_conn_detach(struct wg_engine *e, struct wg_engine_conn *c, struct wg_error *err);
/* Returns a calls' connection; any open transaction is rolled back first, and a connection on
 * which SQL other than SELECT, INSERT, UPDATE or DELETE ran (which may leave temp tables, SET
 * search_path, variables) is replaced by a fresh one, so that no session state passes to the next caller. A detached,
 * reserved or pinned connection is closed instead. Thread-safe. */
void wg_engine_release(struct wg_engine *e, struct wg_engine_conn *c);
duckdb_connection wg_engine_conn_duckdb(struct wg_engine_conn *c);
/* Interrupts whatever runs on the connection (callable from any thread, e.g. on cancel). */
void wg_engine_interrupt(struct wg_engine_conn *c);
/* Forgets an interrupt, for a connection kept across calls (a pinned session's): the calls'
 * connections forget theirs when acquired. Call it before the next call uses the connection. */
void wg_engine_interrupt_clear(struct wg_engine_conn *c);
/* Marks a pinned connection as holding a session's transaction (open true, after its BEGIN) or
 * not (before its COMMIT or ROLLBACK): meanwhile client SQL runs inside that transaction (several
 * statements too, without a transaction of their own) and transaction control as SQL is refused
 * with EPERM. Not thread-safe with a statement running on c. */
void wg_engine_conn_session_txn(struct wg_engine_conn *c, bool open);
/* Whether anything but a SELECT was run (or tried) on c, or an ingest begun, since its session's
 * transaction was opened: a transaction that has only read can be given up with nothing lost. */
bool wg_engine_conn_session_wrote(const struct wg_engine_conn *c);

/* Runs one query and streams its result as Arrow record batches of about target_rows rows
 * (DuckDB's 2048-row chunks gathered; 0 = 65536) and WG_ENGINE_DEFAULT_BATCH_BYTES bytes at most
 * (see the _bounded form): every batch has exactly target_rows rows except the last and those the
 * byte bound cut short. Memory stays bounded by one gathered batch plus DuckDB's own buffers
 * whatever the result size. `out` is owned by the caller; it borrows the connection, which must
 * stay acquired until the stream is released; meanwhile every other call on the connection fails
 * with EINVAL (DuckDB would silently cut the stream short). Errors during execution come from get_next with
 * get_last_error (the code in wg_engine_stream_status). */
int wg_engine_query_open(struct wg_engine_conn *c, const char *sql, int64_t target_rows,
                         struct ArrowArrayStream *out, struct wg_error *err);
/* The same with a byte bound: a batch also ends before the row that would take its buffers
 * (wg_arrow_range_bytes) past target_bytes, so that batches fit a message size limit whatever the
 * width of the rows; a single row bigger than target_bytes is a batch of its own (the caller
 * decides whether it can send it). target_bytes 0 = WG_ENGINE_DEFAULT_BATCH_BYTES, < 0 = rows
 * only. */
#define WG_ENGINE_DEFAULT_BATCH_BYTES ((int64_t)64 << 20)
int wg_engine_query_open_bounded(struct wg_engine_conn *c, const char *sql, int64_t target_rows,
                                 int64_t target_bytes, struct ArrowArrayStream *out,
                                 struct wg_error *err);
/* The same, telling the result's schema before the query runs: on_schema (may be NULL) is called
 * once, on this thread, after prepare and before execution, with the schema (borrowed for the
 * call) of a SELECT of at most WG_ENGINE_EARLY_SCHEMA_COLUMNS columns, so a caller can send it
 * while DuckDB works (a long aggregate gives no row for a long time). Non-zero from on_schema
 * stops the query with that code. Without a call (a write, a wider result), the schema is only
 * the stream's. When the executed result's schema differs from the one told (a table altered
 * between prepare and run), the open fails with EAGAIN. */
#define WG_ENGINE_EARLY_SCHEMA_COLUMNS 256
typedef int (*wg_engine_schema_cb)(void *ctx, const struct ArrowSchema *schema,
                                   struct wg_error *err);
int wg_engine_query_open_early(struct wg_engine_conn *c, const char *sql, int64_t target_rows,
                               int64_t target_bytes, wg_engine_schema_cb on_schema, void *ctx,
                               struct ArrowArrayStream *out, struct wg_error *err);
/* The status code of a stream's last failure (as above), 0 if none. */
int wg_engine_stream_status(struct ArrowArrayStream *stream);

/* The result schema of a query without running it (prepare only). */
int wg_engine_query_schema(struct wg_engine_conn *c, const char *sql, struct ArrowSchema *out,
                           struct wg_error *err);

/* What a client's SQL text is, prepared and not run (the sandbox's refusals apply):
 * WG_ENGINE_SQL_ROWS: one statement whose result is rows (SELECT, EXPLAIN, PRAGMA, CALL, DML with
 * RETURNING): its schema is in *out, and wg_engine_query_open runs it. WG_ENGINE_SQL_CHANGE: DDL,
 * DML, SET, transaction control, or several statements (later ones may bind only after earlier
 * ones ran): *out is left empty; run it with wg_engine_execute. */
enum wg_engine_sql_kind { WG_ENGINE_SQL_ROWS = 1, WG_ENGINE_SQL_CHANGE = 2 };
int wg_engine_query_describe(struct wg_engine_conn *c, const char *sql, struct ArrowSchema *out,
                             enum wg_engine_sql_kind *kind, struct wg_error *err);

/* Executes one statement (DDL or DML); *rows_changed gets the rows changed (0 for DDL). */
int wg_engine_execute(struct wg_engine_conn *c, const char *sql, int64_t *rows_changed,
                      struct wg_error *err);

/* Prepared statements with parameters from Arrow (params.c). Every statement goes through the
 * client-SQL path (the sandbox, the write checks), prepared again on the connection that runs it.
 *
 * Parameter rows: a refcounted set of Arrow struct batches of one schema (one column per
 * parameter), e.g. what a Flight SQL client bound to a prepared statement. create copies schema;
 * add takes batch (released by the call on error too); ref/unref are thread-safe, and the batches
 * are only read once added, so several executions may share one set. */
struct wg_engine_params;
int wg_engine_params_create(const struct ArrowSchema *schema, struct wg_engine_params **out,
                            struct wg_error *err);
int wg_engine_params_add(struct wg_engine_params *p, struct ArrowArray *batch,
                         struct wg_error *err);
int64_t wg_engine_params_rows(const struct wg_engine_params *p); /* 0 for NULL */
int64_t wg_engine_params_bytes(const struct wg_engine_params *p);
struct wg_engine_params *wg_engine_params_ref(struct wg_engine_params *p); /* NULL ok */
void wg_engine_params_unref(struct wg_engine_params *p);                   /* NULL ok */

/* What a prepared statement is, prepared and not run (the sandbox's refusals apply): its kind as
 * wg_engine_query_describe says, the schema of its result (*dataset: a struct of no fields for
 * WG_ENGINE_SQL_CHANGE) and of its parameters (*params: a struct with one nullable field per
 * parameter, in order, named by DuckDB's name when it has one ($name) and by position "0".."n-1"
 * otherwise, typed as DuckDB infers: utf8 where DuckDB cannot tell, timestamp[ms] for TIMESTAMP
 * and TIMESTAMP WITH TIME ZONE (JDBC's setTimestamp writes milliseconds whatever the field's
 * unit)). Several statements are
 * CHANGE with no parameters. A query whose result types only its bound values tell (SELECT ?) has
 * no dataset schema (release NULL) but is ROWS. The caller owns the schemas on success; both
 * are released on error. */
int wg_engine_prepare_describe(struct wg_engine_conn *c, const char *sql,
                               struct ArrowSchema *dataset, struct ArrowSchema *params,
                               enum wg_engine_sql_kind *kind, struct wg_error *err);
/* Runs `sql` once per parameter row (params NULL or no rows: once, with none bound, as
 * wg_engine_execute does, several statements allowed), all rows in one transaction: all or
 * nothing; in_txn: the connection is inside the caller's transaction, which it joins (a failure
 * then leaves that transaction for the caller to roll back). *rows_changed: the sum. Parameter
 * columns bind by position, or by name when a column's name is not a number and the statement
 * has a parameter of that name; EINVAL when the counts differ, ENOTSUP for a type that cannot
 * bind (nested types), "row N" named in the error of the row that failed. */
int wg_engine_execute_params(struct wg_engine_conn *c, const char *sql,
                             struct wg_engine_params *params, bool in_txn,
                             int64_t *rows_changed, struct wg_error *err);
/* Runs the query once per parameter row and streams all results in row order, gathered into
 * batches as wg_engine_query_open_bounded does (same ownership: the stream borrows c and holds a
 * reference on params). Every row's result must have the first row's column types (EINVAL
 * otherwise: an untyped parameter bound NULL in one row and a value in another). params with
 * no rows: the query runs once with none bound. */
int wg_engine_query_open_params(struct wg_engine_conn *c, const char *sql,
                                struct wg_engine_params *params, int64_t target_rows,
                                int64_t target_bytes, struct ArrowArrayStream *out,
                                struct wg_error *err);

/* Ingest: all batches of one stream in one transaction, all or nothing.
 *   begin   BEGIN; creates `table` from the Arrow schema when it does not exist (in schema
 *           `schema_name`, NULL = main); checks that every incoming column exists in the table
 *           (matched by name, case-insensitively) with a type it can take, else EINVAL naming
 *           the column, the table's type and the incoming type.
 *   append  appends one struct array matching the schema (consumed: released by the call).
 *   commit  COMMIT; *rows = rows of this ingest. Consumes the ingest whatever the outcome (on
 *           failure it has been rolled back).
 *   abort   ROLLBACK; nothing of the ingest stays; consumes the ingest.
 * After an error in begin (nothing to free) or append, call abort. */
struct wg_engine_ingest;
int wg_engine_ingest_begin(struct wg_engine_conn *c, const char *schema_name, const char *table,
                           const struct ArrowSchema *schema, struct wg_engine_ingest **out,
                           struct wg_error *err);
int wg_engine_ingest_append(struct wg_engine_ingest *ing, struct ArrowArray *batch,
                            struct wg_error *err);
int64_t wg_engine_ingest_rows(const struct wg_engine_ingest *ing);
int wg_engine_ingest_commit(struct wg_engine_ingest *ing, int64_t *rows, struct wg_error *err);
void wg_engine_ingest_abort(struct wg_engine_ingest *ing);

/* Group commit (many small puts, one transaction, one fsync):
 *   begin_deferred  like begin (creates the table, checks the columns) but opens no transaction:
 *                   append then only keeps the batches (which must be arrays made by this project,
 *                   e.g. by the IPC decoder, so that they can be shared for a retry).
 *   stream          turns a deferred ingest into a normal one (BEGIN, append what was kept):
 *                   for a put that grew too big to keep.
 *   commit_group    on connection c: BEGIN, every ingest's batches, COMMIT. If that fails, each
 *                   ingest is committed alone, so one bad put fails only itself. status[i], rows[i]
 *                   and errs[i] get each one's outcome. Consumes every ingest (the array itself
 *                   is reordered). */
int wg_engine_ingest_begin_deferred(struct wg_engine_conn *c, const char *schema_name,
                                    const char *table, const struct ArrowSchema *schema,
                                    struct wg_engine_ingest **out, struct wg_error *err);
int wg_engine_ingest_stream(struct wg_engine_ingest *ing, struct wg_error *err);
void wg_engine_ingest_commit_group(struct wg_engine_conn *c, struct wg_engine_ingest **ings,
                                   int64_t n, int *status, int64_t *rows, struct wg_error *errs);
/* What an ingest does with the table it names (Flight SQL's CommandStatementIngest options; a
 * plain put is {create when missing, append when it exists}, what begin and begin_deferred do).
 *   fail_if_missing  ENOENT naming the table instead of creating it.
 *   if_exists        APPEND: as a plain put; FAIL: EEXIST naming it (also when another put
 *                    creates it first); REPLACE: in the ingest's own transaction the table is
 *                    dropped and created again from the stream's schema, so the old rows and the
 *                    new commit (or roll back) together: a reader sees the old table or the new.
 *   deferred         as begin_deferred (kept for the group committer); never for REPLACE, whose
 *                    DROP and CREATE must share the data's transaction (it streams).
 *   in_txn           the connection holds the caller's open transaction (a pinned session's):
 *                    the ingest opens and commits none of its own (commit flushes, records the
 *                    idempotency key, and leaves the rows to the caller's COMMIT; no commit
 *                    event), creates or replaces its table inside that transaction, and a
 *                    failure (in begin, append, commit, or an abort) aborts that transaction:
 *                    DuckDB then refuses its further statements and its COMMIT keeps nothing,
 *                    so a failed ingest never commits part of its rows.
 *   temporary        (in_txn only) the table is the connection's temporary table (schema_name
 *                    must be NULL): CREATE TEMP TABLE when missing; it lives as long as the
 *                    connection. */
enum wg_engine_if_exists {
  WG_ENGINE_IF_EXISTS_APPEND = 0,
  WG_ENGINE_IF_EXISTS_FAIL = 1,
  WG_ENGINE_IF_EXISTS_REPLACE = 2,
};
struct wg_engine_ingest_opts {
  bool fail_if_missing;
  enum wg_engine_if_exists if_exists;
  bool deferred;
  bool in_txn;
  bool temporary;
};
int wg_engine_ingest_begin_opts(struct wg_engine_conn *c, const char *schema_name,
                                const char *table, const struct ArrowSchema *schema,
                                const struct wg_engine_ingest_opts *opts,
                                struct wg_engine_ingest **out, struct wg_error *err);
/* The name of the database (its catalog, DuckDB's current_database()) into *out (malloc'ed). */
int wg_engine_database_name(struct wg_engine_conn *c, char **out, struct wg_error *err);
/* Marks a deferred ingest as failed with `code` (ECANCELED: its client went away) before it
 * reaches commit_group, which then drops it like any failed put: nothing of it is committed. For
 * the group committer, which owns the ingest but not the connection it was begun on. */
void wg_engine_ingest_fail(struct wg_engine_ingest *ing, int code);

/* Commit events: a put's commit told to whoever subscribed (events.c).
 * Fired after the COMMIT of every put that committed: a streaming ingest (wg_engine_ingest_commit)
 * and each put of a group (wg_engine_ingest_commit_group, its put-by-put fallback too). Never for
 * a put that failed, was aborted or rolled back, nor for a put begun while nobody subscribed (its
 * batches were not kept; wg_engine_tail_begin waits for those), nor for a put inside the caller's
 * transaction (wg_engine_ingest_opts.in_txn). Client SQL that modifies data (wg_engine_execute, a
 * query stream of INSERT/UPDATE/DELETE/COPY ...) fires NO event.
 * sequence: per table (schema.table, case-insensitively; NULL schema = "main"), base+1, base+2 ...
 * in commit order, where base = wg_engine_sequence_base (the unix time in seconds at
 * wg_engine_open, shifted left by 20 bits), so that numbers stay unique across server runs as long
 * as a run averages under 2^20 (about a million) commits per table per second of its uptime, and
 * below 2^53 (exact in JSON) until the year 2242. A database file records each run's base
 * (wigeon_internal.runs): a run whose clock is behind the last one's starts 2^32 past that base.
 * The counters are in memory only; kept across DROP and re-CREATE of the same name (0 only if the
 * engine ran out of memory).
 * Delivery: on the committing thread, in commit order per table (and across tables), each
 * subscriber in registration order, exactly once per put. The engine holds commit_mu for the
 * call (held from COMMIT to the last subscriber, so that commits and their events stay in order;
 * none of the pool, table, plan or fatal locks): a subscriber must be quick and must not commit a
 * put, subscribe or unsubscribe from inside the call.
 * Memory: while someone subscribes, a put keeps (references, no copy) every batch it appends until
 * its COMMIT, up to events_max_put_bytes (counted with wg_arrow_range_bytes); past it the put lets
 * them go at once and its event comes dropped: no batches, rows still set. */
#define WG_ENGINE_DEFAULT_EVENTS_MAX_PUT_BYTES ((int64_t)256 << 20)
struct wg_engine_commit_event {
  const char *schema_name;          /* as the put named it; NULL = main */
  const char *table;                /* as the put named it */
  uint64_t sequence;                /* see above */
  const struct ArrowSchema *schema; /* the put's Arrow schema (a struct), borrowed for the call */
  /* The put's batches, in append order: refcounted struct arrays over the put's own buffers (no
   * copy). They are the subscriber's for the call: to keep one, move it out (copy the struct, set
   * the original's release to NULL); the engine releases the others after the call. */
  struct ArrowArray *batches;
  int64_t n_batches;
  int64_t rows; /* rows committed (the sum of the batches' lengths) */
  /* The rows were committed but their batches are not here (batches NULL, n_batches 0): the put
   * kept more than events_max_put_bytes, or there was no memory to share them. A subscriber that
   * promised every row must give up (tell its client) rather than skip them. */
  bool dropped;
};
typedef void (*wg_engine_commit_cb)(void *ctx, struct wg_engine_commit_event *event);
/* Subscribes cb(ctx, event) to commit events. 0, or ENOMEM. Thread-safe (waits while an event is
 * being delivered). The same (cb, ctx) twice is two subscriptions. */
int wg_engine_on_commit(struct wg_engine *e, wg_engine_commit_cb cb, void *ctx,
                        struct wg_error *err);
/* Removes one subscription of (cb, ctx) (no-op when there is none). Once it returns, cb is not
 * running and will not be called again for it. Thread-safe. */
void wg_engine_on_commit_remove(struct wg_engine *e, wg_engine_commit_cb cb, void *ctx);
/* This run's sequence base (see above; fixed at open). The last sequence given to a table in this
 * run (schema_name NULL = main; case-insensitive), the base when none was given yet or on ENOMEM.
 * table_sequence takes commit_mu (waits while an event is being delivered). Thread-safe. */
uint64_t wg_engine_sequence_base(struct wg_engine *e);
uint64_t wg_engine_table_sequence(struct wg_engine *e, const char *schema_name, const char *table);

/* Live tail (tail.c): the start of a subscriber's view of one table at one commit point, so that
 * "the rows that match now, then every put committed after them" holds exactly once each.
 * The caller has a commit subscriber registered already (wg_engine_on_commit; EINVAL when nobody
 * subscribed), so every put that begins from now on keeps its batches. wg_engine_tail_begin
 *   1. waits, up to wait_ms (0: not at all, < 0: no limit), until every put into the table that
 *      began without keeping its batches (before the first subscription) has ended, else
 *      ETIMEDOUT "a put begun before the subscription is still running" naming the table;
 *   2. takes commit_mu (no put commits meanwhile; with no other engine lock held) and there:
 *      with snapshot_sql, begins a transaction on conn and prepares snapshot_sql in it through the
 *      client-SQL path (the sandbox, the thread's access level; a SELECT only, else EINVAL): DuckDB
 *      takes a transaction's snapshot at its first catalog access, not at BEGIN, so preparing a
 *      query that reads the table fixes it here; snapshot_sql must read the table;
 *      then at_point(ctx, sequence), sequence = the table's last sequence
 *      (wg_engine_table_sequence): the caller registers its subscriber there (quick, no engine
 *      calls, and no put is committing);
 *   3. releases commit_mu and, with snapshot_sql, starts the query: *snapshot is a streaming query
 *      exactly like wg_engine_query_open_bounded's (target_rows, target_bytes the same; conn stays
 *      the stream's until it is released, which ends the transaction).
 * Every put committed at or before `sequence` is in the snapshot; every put committed after it is
 * delivered as an event with a larger sequence. Without snapshot_sql (a tail "from now" or from a
 * sequence) only 1, 2 (at_point) and 3 (release) happen.
 * conn: acquired by the caller, no stream or transaction open on it (EINVAL); NULL without
 * snapshot_sql. Returns 0 or an error code; at_point runs at most once, and on an error after it
 * ran (the query failed to start) the caller undoes what it did there. *snapshot is the caller's
 * on success, released on error. Thread-safe. */
struct wg_engine_tail_start {
  const char *schema_name; /* NULL = main */
  const char *table;
  struct wg_engine_conn *conn; /* acquired by the caller; NULL when snapshot_sql is NULL */
  const char *snapshot_sql;    /* NULL: no snapshot (a tail "from now" or from a sequence) */
  int64_t target_rows, target_bytes;
  int64_t wait_ms;
  void (*at_point)(void *ctx, uint64_t sequence);
  void *ctx;
};
int wg_engine_tail_begin(struct wg_engine *e, const struct wg_engine_tail_start *s,
                         struct ArrowArrayStream *snapshot, struct wg_error *err);

/* The disk guards (disk.c). check_room: 0, or ENOSPC (a message saying the disk is full) when
 * the database's file system has less free than `incoming` bytes (the write) + the WAL with the
 * write (which the next checkpoint copies into the database file) + the reserve; always 0 for
 * ":memory:" or a reserve of 0. fatal: 0, or ENOTRECOVERABLE once DuckDB reported a fatal error
 * or a commit or checkpoint failed for space or I/O: from then on every write is refused (the
 * engine's own write paths check it) and the shutdown checkpoint is skipped. Thread-safe. */
int wg_engine_check_room(struct wg_engine *e, int64_t incoming, struct wg_error *err);
int wg_engine_fatal(struct wg_engine *e, struct wg_error *err);
bool wg_engine_is_fatal(struct wg_engine *e);

/* Idempotency keys (put_keys.c). A put may carry a key (1 to WG_ENGINE_MAX_KEY_BYTES bytes of
 * UTF-8): set_key before commit records it, with the put's row count, in the commit's own
 * transaction (wigeon_internal.put_keys), on the streaming and the group path alike. A commit
 * whose key is already recorded fails with EEXIST and keeps nothing; find tells the count the key
 * was first committed with. prune deletes keys committed more than max_age_seconds ago. */
#define WG_ENGINE_MAX_KEY_BYTES 256
int wg_engine_ingest_set_key(struct wg_engine_ingest *ing, const char *key, struct wg_error *err);
int wg_engine_put_key_find(struct wg_engine_conn *c, const char *key, int64_t *rows, bool *found,
                           struct wg_error *err);
int wg_engine_put_keys_prune(struct wg_engine_conn *c, int64_t max_age_seconds, int64_t *deleted,
                             struct wg_error *err);

/* Catalog metadata for Flight SQL (meta.c): fixed queries over DuckDB's catalog views, whose
 * parameters are bound (never spliced into the SQL), giving rows of text. The database's own
 * catalog only: the system and temp catalogs and the wigeon_internal schema are never listed.
 * Patterns are SQL LIKE patterns (% and _, escaped with a backslash); a NULL parameter is no
 * filter. Parameters and columns of each query:
 *   CATALOGS        ()                              catalog
 *   SCHEMAS         (catalog, schema LIKE)          catalog, schema
 *   TABLES          (catalog, schema LIKE, table LIKE) catalog, schema, table, table_type
 *                   (table_type as information_schema.tables: BASE TABLE, VIEW, LOCAL TEMPORARY)
 *   PRIMARY_KEYS    (catalog, schema, table)        catalog, schema, table, column, key_name,
 *                                                   key_sequence (1-based)
 *   IMPORTED_KEYS / EXPORTED_KEYS / CROSS_REFERENCE
 *                   (pk catalog, pk schema, pk table, fk catalog, fk schema, fk table)
 *                   pk catalog, pk schema, pk table, pk column, fk catalog, fk schema, fk table,
 *                   fk column, key_sequence, fk key name, pk key name, update rule, delete rule
 *                   (the rules as Flight SQL's UpdateDeleteRules: 0 CASCADE .. 4 SET DEFAULT);
 *                   ordered by the pk table (IMPORTED) or the fk table (the others)
 *   KEYWORDS        ()                              keyword (duckdb_keywords())
 *   FUNCTIONS       (kind: numeric, string, datetime or system)  function name, upper case
 *   COLUMNS         (catalog, schema, table)        column, DuckDB's type text, nullable ("1"
 *                                                   or "0"), precision and scale (decimals only,
 *                                                   else NULL), catalog, schema, table; in order */
enum wg_engine_meta {
  WG_ENGINE_META_CATALOGS,
  WG_ENGINE_META_SCHEMAS,
  WG_ENGINE_META_TABLES,
  WG_ENGINE_META_PRIMARY_KEYS,
  WG_ENGINE_META_IMPORTED_KEYS,
  WG_ENGINE_META_EXPORTED_KEYS,
  WG_ENGINE_META_CROSS_REFERENCE,
  WG_ENGINE_META_KEYWORDS,
  WG_ENGINE_META_FUNCTIONS,
  WG_ENGINE_META_COLUMNS,
};
/* Rows of text: cell (row, col) is cells[row * n_cols + col], NULL for SQL NULL. */
struct wg_engine_rows {
  int64_t n_rows, n_cols;
  char **cells;
};
/* Runs query q with params (n_params must be the query's count: EINVAL otherwise), on c. *out is
 * the caller's (wg_engine_rows_reset), also on error (then empty). */
int wg_engine_meta(struct wg_engine_conn *c, enum wg_engine_meta q, const char *const *params,
                   int n_params, struct wg_engine_rows *out, struct wg_error *err);
void wg_engine_rows_reset(struct wg_engine_rows *r);
static inline const char *wg_engine_rows_at(const struct wg_engine_rows *r, int64_t row,
                                            int64_t col) {
  return r->cells[row * r->n_cols + col];
}

/* Catalog. */
struct wg_engine_table {
  char *schema_name;
  char *table_name;
  int64_t rows;              /* exact count */
  struct ArrowSchema schema; /* the same as wg_engine_table_schema's */
};
/* Every base table of every schema (temp and system schemas excluded), optionally only those
 * whose name contains `filter`, case-insensitively (NULL or "" = all), with exact row counts and
 * Arrow schemas, all from one snapshot, in a handful of statements whatever the number of tables (catalog.c).
 * *out is an array the caller frees with wg_engine_tables_free. */
int wg_engine_list_tables(struct wg_engine_conn *c, const char *filter,
                          struct wg_engine_table **out, int64_t *n, struct wg_error *err);
void wg_engine_tables_free(struct wg_engine_table *t, int64_t n);
/* The Arrow schema of a table and its row count (ENOENT when missing). */
int wg_engine_table_schema(struct wg_engine_conn *c, const char *schema_name, const char *table,
                           struct ArrowSchema *out, int64_t *rows, struct wg_error *err);
/* The table's schema as wg_engine_table_schema gives it (a copy of ours), each field with the
 * column's own nullability (NOT NULL, PRIMARY KEY: not nullable) and Flight SQL's column metadata
 * (FlightSql.proto): ARROW:FLIGHT:SQL:CATALOG_NAME, DB_SCHEMA_NAME, TABLE_NAME, TYPE_NAME (DuckDB's
 * type text, duckdb_columns().data_type), PRECISION and SCALE (decimals), IS_AUTO_INCREMENT ("0")
 * (columns.c). For GetTables' table_schema only: plain Flight's schemas stay all nullable like the
 * results DuckDB gives. A table altered meanwhile keeps its fields without details. catalog NULL:
 * any. The caller owns *out on success; released on error. */
int wg_engine_table_schema_described(struct wg_engine_conn *c, const char *catalog,
                                     const char *schema_name, const char *table,
                                     struct ArrowSchema *out, struct wg_error *err);
/* DROP TABLE (ENOENT when missing). */
int wg_engine_drop_table(struct wg_engine_conn *c, const char *schema_name, const char *table,
                         struct wg_error *err);
/* Quotes an identifier for SQL ("a""b"); returns a malloc'ed string or NULL on ENOMEM. */
char *wg_engine_quote_ident(const char *name);

/* SQL over an Arrow stream (exchange.c). Runs `sql` on c with the Arrow stream `input` (taken:
 * released by the engine, on error too) visible to it as a relation named `name` (e.g. "input": a
 * temporary view on c's DuckDB connection, replacing one of that name, gone when the returned
 * stream ends or is released), as a streaming query like wg_engine_query_open_bounded
 * (target_rows, target_bytes the same; `out` borrows c). The SQL goes through the client-SQL path
 * (the sandbox, the thread's access level: a read user's INSERT is refused with EACCES), exactly
 * one statement. DuckDB pulls input as it needs it: input's get_next may run on a DuckDB thread
 * (never two at once), and the view is read once (a query that scans it twice, a self-join, sees
 * in its second scan what the first left). A query that needs the whole input (an aggregate,
 * ORDER BY) reads it all before its first batch; one that streams (a filter, a projection, a join
 * with a table) gives batches while input still arrives, but DuckDB reads ahead: a batch may wait
 * for further input (or its end), so a caller that feeds input only after reading output must
 * use one call per input batch.
 * The statement runs in one transaction of its own (unless c holds a session's transaction, which
 * it joins), prepared inside it: committed when `out` reaches its end (a failed COMMIT is the
 * stream's error), rolled back when it fails or is released early. A statement that changes rows
 * (INSERT INTO t SELECT * FROM input ...) gives one row with a BIGINT column "Count" (DuckDB's own
 * result), after reading all of input.
 * Errors: those of wg_engine_query_open_bounded; a failure of input's get_next is the stream's
 * error with input's own code and message ("input stream: ..."); name empty or NULL: EINVAL.
 * Releasing `out` while input's get_next is blocked waits for it: end or fail input first. */
int wg_engine_query_over(struct wg_engine_conn *c, const char *name,
                         struct ArrowArrayStream *input, const char *sql, int64_t target_rows,
                         int64_t target_bytes, struct ArrowArrayStream *out,
                         struct wg_error *err);

#endif
