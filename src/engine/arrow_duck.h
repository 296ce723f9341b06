/* wigeon: the DuckDB side of Arrow, over DuckDB's C API only (duckdb.h, 1.4).
 * Query export: a streaming DuckDB result exposed as an ArrowArrayStream (one DuckDB chunk, up to
 * 2048 rows, per Arrow batch; gathering is the caller's business). Ingest: an ArrowArrayStream
 * scanned into a table through DuckDB's arrow_scan. Both block and run on the calling thread;
 * never call them on a gRPC completion-queue thread. DuckDB errors become errno-style codes. */
#ifndef WG_ENGINE_ARROW_DUCK_H
#define WG_ENGINE_ARROW_DUCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <duckdb.h>

#include "arrow/abi.h"
#include "common/error.h"

/* The one mapping of DuckDB errors to wigeon status codes (the list in engine/engine.h): looks at
 * the error type and, where the type alone is ambiguous, at DuckDB's message (`message` may be
 * NULL): constraint -> EEXIST for primary key / unique, else EPERM; catalog -> ENOENT, or EEXIST
 * for "already exists"; parser, binder, conversion, invalid input -> EINVAL; transaction -> EAGAIN
 * (a conflict: retry), except a transaction statement out of place (COMMIT or ROLLBACK with no
 * transaction active, BEGIN inside one) -> EPERM; out of memory, and any error whose message
 * names std::bad_alloc (the parser's) -> ENOMEM; interrupt -> ECANCELED; permission errors and
 * anything "disabled by configuration" or refused because "the configuration has been locked"
 * -> EPERM; else EIO. */
int wg_engine_error_code(duckdb_error_type type, const char *message);

/* Sets err from a DuckDB error and returns its code: the one place DuckDB's messages enter
 * wigeon. type DUCKDB_ERROR_INVALID: taken from the message's prefix (for the calls that give a
 * message only). The message is DuckDB's own, except that a "LINE n:" context DuckDB 1.4 appends
 * twice (duckdb/duckdb#19070: parser errors through prepare) appears once. message NULL:
 * `fallback` is the message and the code comes from the type alone. */
int wg_engine_error_set(struct wg_error *err, duckdb_error_type type, const char *message,
                        const char *fallback);
/* The same from a duckdb_error_data, which it destroys: 0 when it holds no error. `what` (may be
 * NULL) is the fallback message. */
int wg_engine_take_error_data(duckdb_error_data *ed, struct wg_error *err, const char *what);

/* duckdb_to_arrow_schema of n columns into `out`, with a message naming the column (and its DuckDB
 * type) when DuckDB has no Arrow form for one (TIME_NS in 1.4). Returns 0 (the caller owns out)
 * or the mapped DuckDB code (out released). Thread-safe as DuckDB's call is. */
int wg_engine_to_arrow_schema(duckdb_arrow_options options, duckdb_logical_type *types,
                              const char **names, idx_t n, struct ArrowSchema *out,
                              struct wg_error *err);

/* The error type named by the prefix of a DuckDB message ("Parser Error: ..."), for the calls
 * that give a message only (duckdb_prepare_error); DUCKDB_ERROR_INVALID when unknown. */
duckdb_error_type wg_engine_error_type_of_message(const char *message);

/* Runs `sql` (one statement) on `conn` as a streaming query and initializes `out` as an
 * ArrowArrayStream over its result. The schema comes from duckdb_to_arrow_schema with the
 * result's Arrow options; each get_next converts one DuckDB chunk with duckdb_data_chunk_to_arrow
 * (a struct array, one child per column, that owns copies of the data) and returns a released
 * array at the end. get_next returns an errno-style code on a DuckDB error and get_last_error
 * then names it.
 * Returns 0, or EINVAL (parse/bind errors, bad arguments), ENOMEM, or the mapped DuckDB code;
 * err says why. Prepare, bind and planning errors surface here, execution errors from get_next.
 * Ownership: on success the caller owns `out` (release it); on error `out` is left released
 * (release == NULL). The stream borrows `conn`: the connection must outlive the stream, and
 * nothing else may run on the connection until the stream has been released (DuckDB closes an
 * open streaming result when the connection runs another query, and get_next then reports a
 * clean end of stream, not an error: the rows are silently cut short).
 * Thread safety: the stream may move between threads but is used by one at a time. */
/* As above, and if *interrupted (may be NULL) is set once DuckDB has begun the query, the query is
 * abandoned with ECANCELED: an interrupt that arrived before DuckDB started it (DuckDB clears its
 * own flag when a query begins) is not lost. *type (may be NULL) gets the statement's type once it
 * is prepared (DUCKDB_STATEMENT_TYPE_INVALID before): a transaction statement (BEGIN, COMMIT ...)
 * may leave a transaction open, and DDL may change tables. before_run (may be NULL) sees the
 * prepared statement (borrowed; and ctx) once it is prepared and before it runs: non-zero refuses
 * it with that code. */
int wg_engine_query_arrow_stream_flag(duckdb_connection conn, const char *sql,
                                      const atomic_bool *interrupted, duckdb_statement_type *type,
                                      int (*before_run)(void *ctx, duckdb_prepared_statement,
                                                        struct wg_error *),
                                      void *ctx,
                                      struct ArrowArrayStream *out, struct wg_error *err);
/* The run half of the above, for a statement the caller prepared (and checked): takes *p (set to
 * NULL; destroyed on error, kept by the stream on success). */
int wg_engine_query_arrow_stream_prepared(duckdb_connection conn, duckdb_prepared_statement *p,
                                          const atomic_bool *interrupted,
                                          struct ArrowArrayStream *out, struct wg_error *err);

/* Ends a query that DuckDB has begun (duckdb_pending_prepared_streaming succeeded) without
 * running it, and destroys *pending. Destroying a pending result alone leaves its tasks, already
 * scheduled on DuckDB's threads, running: the connection's next statement then waits in
 * DuckDB's cleanup until they finish (minutes, for a big query). So the query is interrupted
 * (honoured now that it has begun) and executed, which fails at once and cleans up. */
void wg_engine_pending_abandon(duckdb_connection conn, duckdb_pending_result *pending);
int wg_engine_query_arrow_stream(duckdb_connection conn, const char *sql,
                                 struct ArrowArrayStream *out, struct wg_error *err);

/* What ingest does when the table exists or not. */
enum wg_engine_ingest_mode {
  WG_ENGINE_INGEST_CREATE_OR_APPEND = 0, /* create when missing, else append */
  WG_ENGINE_INGEST_CREATE = 1,           /* create; EEXIST if it exists */
  WG_ENGINE_INGEST_APPEND = 2,           /* append; ENOENT if it is missing */
  WG_ENGINE_INGEST_REPLACE = 3,          /* CREATE OR REPLACE */
};

/* Scans `stream` into table `table` of the connection's default schema; `table` is one
 * identifier (quoted here, so any characters are fine; no "schema.table"). Creating uses
 * CREATE TABLE ... AS with the column types DuckDB derives from the Arrow schema; appending uses
 * INSERT INTO ... BY NAME (columns matched by name, missing ones get their defaults). The work
 * runs in its own transaction when the connection has none open (all rows or none); inside a
 * caller's transaction it joins it and the caller commits or rolls back. duckdb_arrow_scan
 * registers the stream as a view "__wg_ingest_<address>" in the default schema; it is dropped
 * before returning (and, in our own transaction, never visible to other connections).
 * *rows (may be NULL) receives the number of rows read from the stream.
 * Returns 0; EEXIST/ENOENT per mode; the stream's own status (e.g. EPROTO from an IPC reader)
 * when its get_schema or get_next fails; otherwise the mapped DuckDB code. err says why.
 * The stream must not read from a streaming result of the same connection (ingest runs
 * statements on it, which closes such a result): materialize first or use another connection.
 * Ownership: the call takes the stream, on success and on error: on return stream->release is
 * NULL. Arrays the stream produced are released by DuckDB (possibly on its worker threads, one
 * at a time), so their release callbacks must be thread-safe in that sense. */
int wg_engine_ingest_arrow_stream_mode(duckdb_connection conn, const char *table,
                                       enum wg_engine_ingest_mode mode,
                                       struct ArrowArrayStream *stream, int64_t *rows,
                                       struct wg_error *err);

/* wg_engine_ingest_arrow_stream_mode with WG_ENGINE_INGEST_CREATE_OR_APPEND, rows not reported. */
int wg_engine_ingest_arrow_stream(duckdb_connection conn, const char *table,
                                  struct ArrowArrayStream *stream, struct wg_error *err);

/* Runs one statement that returns no rows the caller wants (DDL, SET, BEGIN, ...). Returns 0 or
 * the mapped DuckDB code with err set. Blocking. */
int wg_engine_exec(duckdb_connection conn, const char *sql, struct wg_error *err);

/* The DuckDB column types and names DuckDB's Arrow scan gives a struct `schema` (borrowed), found
 * by preparing a scan of it on conn (a view made and dropped at once: run it inside the caller's
 * transaction). 0, the caller owning *types and *names (n each; wg_engine_arrow_types_free), or
 * EINVAL (a type DuckDB cannot read) / ENOMEM, all three left empty. */
int wg_engine_arrow_types(duckdb_connection conn, const struct ArrowSchema *schema,
                          duckdb_logical_type **types, char ***names, idx_t *n,
                          struct wg_error *err);
void wg_engine_arrow_types_free(duckdb_logical_type *types, char **names, idx_t n);

#endif
