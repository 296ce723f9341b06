/* wigeon: what the engine's files share: the pool and connection structs, DuckDB error capture
 * and the engine's own statements (sql.c), the disk guards (disk.c), the SQL guard (guard.c),
 * and refcounted slices of a struct array (slice.c) that let one DuckDB chunk or one ingest
 * batch be handed out in pieces without copying. The ingest files share ingest_internal.h.
 * Calls between the files go one way (engine.c at the top, sql.c, slice.c, disk.c, guard.c at
 * the bottom); no two files call each other. Internal to src/engine. */
#ifndef WG_ENGINE_INTERNAL_H
#define WG_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "arrow/array.h"
#include "engine/arrow_duck.h"
#include "engine/engine.h"

struct wg_engine_conn {
  struct wg_engine *engine;
  duckdb_connection conn;
  bool in_use;             /* guarded by engine->mu */
  bool detached;           /* out of the pool (wg_engine_conn_detach): closed on release */
  int budget;              /* WG__POOL_CALLS, _RESERVED or _SESSIONS: whose connection it is */
  bool counted;            /* in its holder thread's count of calls' connections (pool.c) */
  pthread_t holder;        /* the thread that acquired it, while counted */
  bool txn_maybe;          /* client SQL or an ingest may have left a transaction open */
  bool session_txn;        /* a session's transaction is open on it (wg_engine_conn_session_txn):
                              client SQL runs inside it and may not BEGIN, COMMIT or ROLLBACK */
  bool session_wrote;      /* wg_engine_conn_session_wrote */
  bool session_dirty;      /* client SQL may have left session state (temp tables, SET, variables,
                              prepared statements): the connection is replaced on release */
  atomic_bool interrupted; /* set by wg_engine_interrupt until the next acquire: sticky, because
                              DuckDB forgets an interrupt that lands before a query begins */
  const void *stream;      /* the open query stream, if any: DuckDB ends a streaming result silently
                              (no error, just no more chunks) when its connection runs anything else */
};

/* LOCK ORDER. The engine's mutexes, each declared below:
 *   mu         the pool (acquire, detach, release); a leaf: nothing else is taken under it
 *   create_mu  creating missing tables and the open-table registry (tables.c); a leaf, held over
 *              DuckDB calls (CREATE TABLE, DROP TABLE), never over another engine lock
 *   plan_mu    the ingest plan cache (plans.c); a leaf
 *   commit_mu  commit events (events.c): held from a put's COMMIT to its last subscriber; under it
 *              only fatal_mu (wg__engine_note_failure after a failed COMMIT) is taken. Also held
 *              by wg_engine_tail_begin (tail.c), taken with no other engine lock held, over the
 *              snapshot's BEGIN and prepare (client SQL on a connection the caller acquired
 *              before: no pool lock) and the caller's at_point; nothing else under it
 *   fatal_mu   the fatal state's message (disk.c); a leaf
 *   unkept_mu  the puts in flight without batches (events.c); a leaf
 * So the only nesting is commit_mu -> fatal_mu; never two of mu, create_mu, plan_mu at once.
 * commit_mu is never taken from inside a DuckDB call: DuckDB's locks nest under it, not around it. */
struct wg_engine {
  duckdb_database db;
  bool is_file;
  bool sandboxed; /* allow_external_access false: client SQL goes through the guard (guard.c) */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_mutex_t create_mu; /* serializes creating missing tables (see ingest.c) */
  /* Tables with ingests open (guarded by create_mu): a failed ingest drops the table it created
   * only when no other ingest is using it. */
  struct wg__open_table {
    char *key;
    int n;
  } * open_tables;
  int n_open_tables, cap_open_tables;
  /* Ingest plans (ingest.c): per (table, Arrow schema), the table column each incoming column goes
   * to, reused while `ddl_epoch` is unchanged. The epoch is bumped after every statement that may
   * change a table (wg__engine_tables_may_change); a plan made before a bump is never used. */
  atomic_uint_fast64_t ddl_epoch;
  pthread_mutex_t plan_mu;
  struct wg__ingest_plan *plans; /* a small array, guarded by plan_mu */
  int n_plans;
  /* The pool (pool.c), guarded by mu. conns are the calls' connections, made at open; detached
   * ones are no longer here. The reserved and sessions budgets hold no connections of their own:
   * theirs are made when taken and closed when given back, only counted here. */
  struct wg_engine_conn **conns;
  int n_conns;
  int n_free;
  int waiting;            /* callers in wg_engine_acquire */
  int max_waiting;        /* more are refused with EBUSY */
  int64_t acquire_timeout_ms; /* < 0: no limit */
  struct wg__pool_budget {
    int limit, in_use;
  } budgets[3]; /* indexed by WG__POOL_*; budgets[WG__POOL_CALLS].limit = n_conns */
  /* The disk guards (disk.c). */
  char *wal_path, *dir_path; /* file databases only */
  int64_t disk_reserve;      /* bytes kept free beyond a write and its checkpoint; 0 = no check */
  atomic_bool fatal;         /* set once; then writes are refused */
  pthread_mutex_t fatal_mu;
  char fatal_message[404], fatal_time[32];
  /* Commit events (events.c), guarded by commit_mu: the subscribers, and each table's last
   * sequence number. n_subs is also read without the lock (does anyone listen?). */
  pthread_mutex_t commit_mu;
  struct wg__commit_sub *subs;
  int cap_subs;
  atomic_int n_subs;
  struct wg__table_seq *seqs;
  int n_seqs, cap_seqs;
  uint64_t seq_base;            /* wg_engine_sequence_base; set at open, then only read */
  int64_t events_max_put_bytes; /* set at open */
  /* Puts in flight that keep no batches (begun while nobody subscribed), per table key, guarded
   * by unkept_mu (see wg__engine_events_put_begin); unkept_any: those whose key is unknown
   * (ENOMEM), which count for every table. */
  pthread_mutex_t unkept_mu;
  struct wg__unkept_table *unkept;
  int n_unkept, cap_unkept;
  int unkept_any;
  struct wg__inputs *inputs; /* the streams of queries over them (exchange.c); DuckDB frees it */
};

/* The pool (pool.c). init, at open before the database: locks, limits and timeout from the
 * options (EINVAL for an oversized pool); connect, once the database is open: the calls'
 * connections; free, at close: disconnects them unless the database is broken (see
 * wg_engine_close), frees them and the locks. Safe after a failed or partial init. */
enum { WG__POOL_CALLS, WG__POOL_RESERVED, WG__POOL_SESSIONS };
int wg__engine_pool_init(struct wg_engine *e, const struct wg_engine_options *o,
                         struct wg_error *err);
int wg__engine_pool_connect(struct wg_engine *e, struct wg_error *err);
void wg__engine_pool_free(struct wg_engine *e, bool broken);

/* The disk guards (disk.c): init at open (reserve in bytes), free at close; note_failure after a
 * failed engine operation sets the fatal state when the failure says DuckDB can no longer be
 * trusted (a FATAL error; ENOSPC or EIO while committing or checkpointing), logging it once. */
int wg__engine_disk_init(struct wg_engine *e, const char *path, int64_t reserve);
void wg__engine_disk_free(struct wg_engine *e);
void wg__engine_note_failure(struct wg_engine *e, int code, bool committing,
                             const struct wg_error *err);

/* What a client text holds that its statements' types do not show (guard.c's lexer, so that
 * literals, quoted names and comments are read as DuckDB reads them), for the access levels
 * (access.c). A name counts quoted or not, in any case. */
struct wg__sql_traits {
  bool sequence;   /* nextval( or setval(: a SELECT that writes a sequence */
  bool checkpoint; /* CHECKPOINT / FORCE CHECKPOINT, or a call of checkpoint( force_checkpoint( */
  bool analyze;    /* the word ANALYZE/ANALYSE anywhere: an EXPLAIN may run its statement */
  bool merge;      /* a statement starting MERGE (which the C API types INVALID) */
  bool setting;    /* a statement starting SET, RESET or PRAGMA other than SET/RESET VARIABLE or
                      of search_path/schema: it may change a setting, global ones too */
};
void wg__engine_sql_traits(const char *sql, size_t len, struct wg__sql_traits *out);
/* 0 when the thread's access level (wg_engine_thread_access) allows a statement of `type` in a
 * text with `traits`; else EACCES naming the statement, the level it needs and the thread's. */
int wg__engine_access_refused(duckdb_statement_type type, const struct wg__sql_traits *traits,
                              struct wg_error *err);
enum wg_engine_access wg__engine_access_needed(duckdb_statement_type type,
                                               const struct wg__sql_traits *traits);

/* Client SQL: every statement a client sends runs through wg__engine_client_sql (sql.c), so that
 * each one takes the same steps in the same order:
 *   guard        no open stream on c (wg__engine_conn_idle); the sandbox's SQL guard on the text
 *   prepare      the text (one statement), or each statement of it in turn (each_statement)
 *   before_run   the caller's own check of the prepared statement (may be NULL)
 *   write checks anything but SELECT: not into a fatal database, not onto a full disk
 *                (skipped for prepare_only)
 *   refusals     the sandbox's statement types (COPY, EXPORT, ATTACH, DETACH)
 *   run          the caller's: execute and discard (wg_engine_execute), stream (query.c), or read
 *                the prepared schema (wg_engine_query_schema)
 *   done         wg__engine_statement_done(c, type, ran), once per prepared statement, whatever
 *                happened (not for prepare_only: nothing ran)
 * With each_statement, it stops at the first failure; a failure in prepare, refusals or run of a
 * text of several statements is prefixed "statement i of n (none of them took effect)". */
enum wg__client_stage {
  WG__CLIENT_GUARD,
  WG__CLIENT_PREPARE,
  WG__CLIENT_BEFORE_RUN,
  WG__CLIENT_WRITE_CHECKS,
  WG__CLIENT_REFUSED,
  WG__CLIENT_RUN,
};
struct wg__client_sql {
  const char *sql;
  bool each_statement; /* extract the text's statements and run each in turn */
  bool prepare_only;   /* run only reads the prepared statement: no write checks, no done */
  /* A SELECT on a connection in autocommit is prepared and run in one transaction of its own
   * (own_txn), which the caller ends (wg__engine_own_txn_end) once the result is read or dropped.
   * DuckDB 1.4.4 plans a statement with the table statistics of its prepare and does not rebind a
   * statement without parameters when only data changed: prepared in its own autocommit
   * transaction, `WHERE batch_id = 200` on a table holding only batch 200 loses its filter
   * (statistics propagation: always true), and run in a later transaction, after other rows were
   * committed, counts those too (duckdb/duckdb#23704, fixed after 1.4 by #24696). */
  bool snapshot; /* each_statement: the first statement, when a query or DML (sql.c) */
  int (*before_run)(void *ctx, idx_t i, idx_t n, duckdb_prepared_statement p,
                    struct wg_error *err);
  /* Runs the checked statement; may take *p (set it to NULL), else it is destroyed after. */
  int (*run)(void *ctx, struct wg_engine_conn *c, duckdb_prepared_statement *p,
             struct wg_error *err);
  void *ctx;
  /* out */
  duckdb_statement_type type;      /* of the last statement prepared (INVALID: none) */
  idx_t n, failed;                 /* statements in the text; the one that failed */
  enum wg__client_stage failed_at; /* the step of a failure (the last step reached on success) */
  struct wg__sql_traits traits;    /* of the text, for the access check (set here) */
  bool own_txn; /* snapshot: the statement runs in a transaction begun for it, still open */
};
/* ROLLBACK, once more if it failed (an interrupt may land on it); 0 when one of them worked. */
int wg__engine_rollback(struct wg_engine_conn *c);
/* BEGIN TRANSACTION on a connection with none open; 0 and txn_maybe set when it began. A BEGIN that
 * fails may still have begun one: DuckDB 1.4.4 opens the transaction and then fails an interrupted
 * BEGIN ("INTERRUPT Error"), leaving it open and aborted, so every later statement on the
 * connection fails with "Current transaction is aborted". Such a failure is rolled back here (or,
 * if that fails too, left to release: txn_maybe). */
int wg__engine_begin(struct wg_engine_conn *c, struct wg_error *err);
int wg__engine_client_sql(struct wg_engine_conn *c, struct wg__client_sql *q,
                          struct wg_error *err);

/* Ends the transaction wg__engine_client_sql began for a statement (own_txn): COMMIT when its
 * result was read to the end, else ROLLBACK. */
void wg__engine_own_txn_end(struct wg_engine_conn *c, bool commit);

/* The chunk source of a query, for a caller that runs the checked statement its own way (params.c:
 * once per parameter row): takes *p (sets it to NULL) and fills `chunks` with DuckDB's chunks,
 * as wg_engine_query_arrow_stream_prepared does; on error *p is destroyed. */
typedef int (*wg__engine_chunks_fn)(void *ctx, struct wg_engine_conn *c,
                                    duckdb_prepared_statement *p, struct ArrowArrayStream *chunks,
                                    struct wg_error *err);
/* wg_engine_query_open_early with that chunk source (NULL: the statement's own result). */
int wg__engine_query_open_chunks(struct wg_engine_conn *c, const char *sql, int64_t target_rows,
                                 int64_t target_bytes, wg_engine_schema_cb on_schema, void *ctx,
                                 wg__engine_chunks_fn open_chunks, void *open_ctx,
                                 struct ArrowArrayStream *out, struct wg_error *err);

/* After any statement that may create, drop, rename or alter a table, or end a transaction that
 * did: cached ingest plans made before it are no longer used. */
static inline void wg__engine_tables_may_change(struct wg_engine *e) {
  atomic_fetch_add_explicit(&e->ddl_epoch, 1, memory_order_acq_rel);
}
/* Whether a statement of this type leaves every table's columns as they were: SELECT, INSERT,
 * UPDATE, DELETE. Everything else (DDL, transaction statements, ATTACH, EXECUTE, EXPLAIN, which
 * may be EXPLAIN ANALYZE of DDL ...) counts as a possible change. */
bool wg__engine_statement_keeps_tables(duckdb_statement_type type);
/* After client SQL of this type was run on c (ran: it executed without error; failed or refused
 * statements may still have been prepared and started): a transaction statement may have left a
 * transaction open (rolled back on release); anything that may change a table retires the ingest
 * plans; one that ran may have left session state (the connection is replaced on release). */
void wg__engine_statement_done(struct wg_engine_conn *c, duckdb_statement_type type, bool ran);
/* The SQL guard of a sandboxed engine (guard.c): EPERM, naming what is refused, when the text of
 * client SQL calls a function or pragma that changes DuckDB's global state (logging), reads files
 * the configuration lock leaves readable (the database's WAL and temp files), names the server's
 * paths (settings, database list) or runs SQL built at run time (query(), query_table()); else 0.
 * Literals and comments are skipped; names match case-insensitively, quoted or not. */
int wg__engine_sql_refused(const char *sql, size_t len, struct wg_error *err);
/* EPERM for prepared statement types that reach files (COPY, EXPORT, ATTACH, DETACH), else 0. */
int wg__engine_statement_refused(duckdb_statement_type type, struct wg_error *err);
/* Both, for client SQL on c: 0 when c's engine is not sandboxed. */
int wg__engine_guard(struct wg_engine_conn *c, const char *sql, struct wg_error *err);

/* Commit events (events.c): init at open (the sequence base from the clock, the cap per put:
 * max_put_bytes 0 = the default), free at close. */
void wg__engine_events_init(struct wg_engine *e, int64_t max_put_bytes);
void wg__engine_events_free(struct wg_engine *e);
/* At the begin of a put that commits on its own (not in the caller's transaction) into table
 * *key (wg__engine_table_key; NULL: unknown): true when someone subscribed, and the put keeps
 * its batches for them; false when nobody did, and the put counts among table *key's puts in
 * flight without batches until it calls wg__engine_events_put_end(e, *key) once it has committed
 * or rolled back (*key is set to NULL when it was counted for every table, for lack of memory).
 * unkept: how many such puts of table `key` are in flight, those of unknown tables included.
 * Either the put sees the subscriber or the tail sees the put: the put reads n_subs and counts
 * itself under unkept_mu; a subscriber stores n_subs (wg_engine_on_commit) before its tail takes
 * unkept_mu to read the count. If the tail's lock comes first, the store happens before the put's
 * read; if the put's comes first, the count is there for the tail. */
bool wg__engine_events_put_begin(struct wg_engine *e, const char **key);
void wg__engine_events_put_end(struct wg_engine *e, const char *key);
int wg__engine_events_unkept(struct wg_engine *e, const char *key);
/* The last sequence given to table `key` (wg__engine_table_key), the base when none; the caller
 * holds commit_mu. */
uint64_t wg__engine_last_sequence(struct wg_engine *e, const char *key);
/* A committed put, for wg__engine_commit_notify: its batches are owners (slice.c) whose whole
 * batch is handed to each subscriber as a fresh slice. */
struct wg__committed_put {
  const char *schema_name, *table;
  const char *key; /* wg__engine_table_key: the sequence's table */
  const struct ArrowSchema *schema;
  struct wg__slice_owner *const *batches;
  int64_t n_batches, rows;
  bool dropped; /* over events_max_put_bytes: no batches kept (n_batches 0) */
};
/* commit_lock before the COMMIT of puts with events (then commit_mu is held), notify once per
 * committed put (in commit order), unlock after the last. */
void wg__engine_commit_lock(struct wg_engine *e);
void wg__engine_commit_notify(struct wg_engine *e, const struct wg__committed_put *put);
void wg__engine_commit_unlock(struct wg_engine *e);

/* Registers __wg_input(), the table function that reads the stream of wg_engine_query_over
 * (exchange.c), on the database of c, at open. 0, ENOMEM or EIO. */
int wg__engine_inputs_register(struct wg_engine *e, struct wg_engine_conn *c,
                               struct wg_error *err);

/* Frees the ingest plan cache (plans.c) and the open-table registry (tables.c) at engine close. */
void wg__engine_plans_free(struct wg_engine *e);
void wg__engine_open_tables_free(struct wg_engine *e);

/* Set err from a failed duckdb_result / prepared statement (error data: wg_engine_take_error_data), with
 * DuckDB's message as is; return the mapped code (wg_engine_error_code). */
int wg__engine_result_error(duckdb_result *r, struct wg_error *err);
int wg__engine_prepare_error(duckdb_prepared_statement p, struct wg_error *err);

/* Idempotency keys (put_keys.c): the table, created at open; a key recorded inside the caller's
 * open transaction (EEXIST when the key is there already). */
int wg__engine_put_keys_init(struct wg_engine_conn *c, struct wg_error *err);
/* The sequence base past the one the database recorded for its last run, then recorded (events.c;
 * after put_keys_init, which makes the schema). */
int wg__engine_events_settle_base(struct wg_engine_conn *c, struct wg_error *err);
int wg__engine_put_key_record(struct wg_engine_conn *c, const char *key, int64_t rows,
                              const char *schema_name, const char *table, struct wg_error *err);

/* EINVAL while a query stream is open on c (see wg_engine_conn.stream), else 0. */
int wg__engine_conn_idle(struct wg_engine_conn *c, struct wg_error *err);

/* Runs `sql`, discarding the result. 0 or the mapped code. */
int wg__engine_exec(struct wg_engine_conn *c, const char *sql, struct wg_error *err);

/* The Arrow schema of a statement's result from its prepared form (never executed), converted
 * with the connection's Arrow options. */
int wg__engine_prepared_schema(struct wg_engine_conn *c, const char *sql, struct ArrowSchema *out,
                               struct wg_error *err);
/* The Arrow schema (a struct) of result columns [first, first + n) of a prepared statement,
 * converted with the connection's Arrow options; names[i] (NULL: the statement's own) names
 * column first + i. The caller owns *out on success; it is released on error. */
int wg__engine_prepared_columns_schema(struct wg_engine_conn *c, duckdb_prepared_statement p,
                                       idx_t first, idx_t n, char *const *names,
                                       struct ArrowSchema *out, struct wg_error *err);
/* The SQL name of a DuckDB type ("DECIMAL(18,3)", "STRUCT(\"a\" INTEGER[])"); malloc'ed. */
char *wg__engine_type_name(duckdb_logical_type t);
/* Sets Flight SQL's ARROW:FLIGHT:SQL:TYPE_NAME (DuckDB's spelling), PRECISION and SCALE
 * (decimals) on each field of *schema from the n column types (columns.c); *schema becomes our own
 * copy. Nothing done when the counts differ or schema is released. On error *schema is as it was. */
int wg__engine_describe_columns(duckdb_logical_type *types, idx_t n, struct ArrowSchema *schema,
                                struct wg_error *err);

/* "schema"."table" (schema NULL = just "table"); malloc'ed, NULL on ENOMEM. */
char *wg__engine_qualified(const char *schema_name, const char *table);

/* A struct array shared by several slices. Each slice is a new root whose children are shallow
 * copies of the batch's children with offset/length narrowed; the grandchildren and buffers stay
 * the batch's own. The batch is released when the owner and every slice are gone. */
struct wg__slice_owner;
/* Takes `batch` (moved; released on error too). NULL on ENOMEM. The caller holds one reference. */
struct wg__slice_owner *wg__slice_owner_create(struct ArrowArray *batch);
void wg__slice_owner_unref(struct wg__slice_owner *o);
void wg__slice_owner_ref(struct wg__slice_owner *o);
const struct ArrowArray *wg__slice_owner_batch(const struct wg__slice_owner *o);
/* out = rows [start, start+len) of the batch (relative to the batch's own offset), holding one
 * reference on o until released; `schema` (the batch's struct schema) tells which children have
 * validity bitmaps, so that null counts are exact. 0, EINVAL (child count differs) or ENOMEM. */
int wg__slice(struct wg__slice_owner *o, const struct ArrowSchema *schema, int64_t start,
              int64_t len, struct ArrowArray *out);

#endif
