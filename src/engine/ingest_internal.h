/* wigeon: what the ingest files share, one section per concern, each file owning one:
 *   types.c   SQL names of DuckDB types, the Arrow types refused, the widening rules
 *   tables.c  table lookup and creation, column matching, the open-table registry
 *   plans.c   the ingest plan cache (its own lock, plan_mu)
 *   ingest.c  streaming ingest: begin, append, commit, abort, appenders
 *   group.c   group commit (many deferred puts, one transaction)
 * (events.c, commit events, is shared with the rest of the engine: engine_internal.h; tail.c
 * uses tables.c's table keys.)
 * Calls go one way: group -> ingest -> {plans, events, tables -> types}; none back.
 * Internal to src/engine. */
#ifndef WG_ENGINE_INGEST_INTERNAL_H
#define WG_ENGINE_INGEST_INTERNAL_H

#include "common/buf.h"
#include "engine/engine_internal.h"

#include <string.h>

static inline int wg__put(struct wg_buf *b, const char *s) {
  return wg_buf_append(b, s, (int64_t)strlen(s));
}

/* ---------------------------------------------------------------------------------------------
 * types.c (wg__engine_type_name is in engine_internal.h) */

/* EINVAL naming the column when a field is, or holds, an Arrow interval[day_time] (DuckDB 1.4.4
 * reads it wrong), else 0. */
int wg__engine_refuse_day_time_intervals(const struct ArrowSchema *schema, struct wg_error *err);
/* Whether a type is, or holds, DuckDB's NULL type (no column can have it). */
bool wg__engine_type_has_null(duckdb_logical_type t, int depth);
/* Whether a column of type `table` takes values of type `in` without loss (names: their SQL
 * names, wg__engine_type_name). */
bool wg__engine_type_accepts(duckdb_logical_type table, duckdb_logical_type in,
                             const char *table_name, const char *in_name);
/* After DuckDB refused an ingest schema with err: names the first column DuckDB refuses alone.
 * Returns rc. */
int wg__engine_name_refused_column(duckdb_connection conn, const struct ArrowSchema *schema, int rc,
                                   struct wg_error *err);

/* ---------------------------------------------------------------------------------------------
 * tables.c */

/* Column names and types of a table or of an incoming stream. */
struct wg__columns {
  idx_t n;
  char **names;               /* duckdb_free'd */
  duckdb_logical_type *types; /* destroyed */
};
void wg__columns_reset(struct wg__columns *cols);
int wg__columns_alloc(struct wg__columns *cols, idx_t n);
/* The table's columns, or ENOENT when it does not exist (qualified: wg__engine_qualified). */
int wg__engine_table_columns(struct wg_engine_conn *c, const char *qualified,
                             struct wg__columns *cols, struct wg_error *err);
/* EINVAL when the name resolves to a view or a system table, not a base table. */
int wg__engine_check_base_table(struct wg_engine_conn *c, const char *schema_name,
                                const char *table, struct wg_error *err);
/* CREATE [TEMP] TABLE IF NOT EXISTS qualified with the incoming columns. */
int wg__engine_create_table(struct wg_engine_conn *c, const char *qualified,
                            const struct wg__columns *in, struct wg_error *err);
int wg__engine_create_table_temp(struct wg_engine_conn *c, const char *qualified,
                                 const struct wg__columns *in, bool temporary,
                                 struct wg_error *err);
/* Whether schema_name.table (NULL schema: the current one) is a base table, read from the
 * catalog without a failing statement (which would end the caller's transaction). */
int wg__engine_table_exists(struct wg_engine_conn *c, const char *schema_name, const char *table,
                            bool temporary, bool *exists, struct wg_error *err);
/* An ingest's REPLACE, inside the transaction the caller has open: DROP TABLE when it exists
 * (ENOENT naming it when it does not and fail_if_missing), then CREATE TABLE from `in`. */
int wg__engine_replace_table(struct wg_engine_conn *c, const char *schema_name, const char *table,
                             const char *qualified, const struct wg__columns *in,
                             const struct wg_engine_ingest_opts *o, struct wg_error *err);
/* The errors of an ingest's table options, naming the table. */
int wg__engine_table_missing(const char *table, struct wg_error *err);
int wg__engine_table_present(const char *table, struct wg_error *err);
/* Checks every incoming column against the table's (tc): cols[i] = strdup of the table column
 * incoming column i goes to; *whole_table: the incoming columns are the table's, in order. */
int wg__engine_match_columns(const char *table, const struct wg__columns *tc,
                             const struct wg__columns *in, char **cols, bool *whole_table,
                             struct wg_error *err);
/* The open-table registry (engine->open_tables, guarded by create_mu, which the caller holds):
 * counts ingests open on a table key (delta +1 / -1, 0 to read); the count, -1 on ENOMEM. */
int wg__engine_open_table_ref(struct wg_engine *e, const char *key, int delta);
/* "schema.table", lower case; malloc'ed, NULL on ENOMEM. */
char *wg__engine_table_key(const char *schema_name, const char *table);
/* After a failed ingest that created table `created` (qualified; NULL: none): drops it when still
 * empty and no other ingest has `key` open. Takes create_mu. */
void wg__engine_drop_if_created(struct wg_engine_conn *c, const char *created, const char *key);

/* ---------------------------------------------------------------------------------------------
 * plans.c (wg__engine_plans_free is in engine_internal.h) */

bool wg__engine_plan_find(struct wg_engine *e, const char *key, const struct wg_buf *shape,
                          int64_t n_columns, char **cols, bool *whole_table);
void wg__engine_plan_keep(struct wg_engine *e, const char *key, const struct wg_buf *shape,
                          uint64_t epoch, int64_t n_columns, char *const *cols,
                          bool whole_table);

/* ---------------------------------------------------------------------------------------------
 * ingest.c: the ingest itself, for group.c */

struct wg_engine_ingest {
  struct wg_engine_conn *c;
  duckdb_arrow_converted_schema converted;
  struct ArrowSchema schema; /* the stream's, to slice batches */
  duckdb_appender appender;
  int64_t n_columns;
  int64_t rows;
  int failed;    /* sticky: append refuses after a failure, commit too */
  char *created; /* the table this ingest created (qualified), dropped again if it fails */
  char *key;     /* its entry in engine->open_tables */
  struct wg_engine *engine;
  char *schema_name, *table;
  char **cols; /* the table's column for each incoming column, in incoming order */
  bool whole_table; /* cols are all the table's columns in its order: no appender column list */
  struct wg_engine_ingest_opts opts; /* what it does with its table (engine.h) */
  char *idem_key; /* recorded in the commit's transaction, NULL for none */
  /* Deferred (group commit): batches are kept here until wg_engine_ingest_commit_group or
   * wg_engine_ingest_stream appends them; no transaction is open meanwhile. */
  bool deferred;
  struct ArrowArray *pending;
  int64_t n_pending, cap_pending, pending_bytes;
  /* Commit events (events.c): when someone subscribed at begin, every batch appended is kept
   * (a reference on its slice owner, no copy) until the ingest is freed, for the event; past
   * engine->events_max_put_bytes of them (kept_bytes) none is kept any more (dropped). When
   * nobody subscribed at begin (and it commits on its own), the put counts among the puts in
   * flight without batches (unkept) until it is freed. */
  bool events, dropped, unkept;
  const char *unkept_key; /* ing->key, or NULL: counted for every table (events.c) */
  struct wg__slice_owner **kept;
  int64_t n_kept, cap_kept, kept_bytes;
};
/* *out = an appender on conn for the ingest's table and columns (NULL on error). */
int wg__ingest_open_appender(const struct wg_engine_ingest *ing, duckdb_connection conn,
                             duckdb_appender *out, struct wg_error *err);
/* Whether two ingests append to the same table's same columns in the same order. */
bool wg__ingest_same_target(const struct wg_engine_ingest *a, const struct wg_engine_ingest *b);
/* Appends a deferred ingest's kept batches through app (shared views unless consume). */
int wg__ingest_append_pending(struct wg_engine_ingest *ing, const struct wg_engine_conn *watch,
                              duckdb_connection conn, duckdb_appender app, bool consume,
                              struct wg_error *err);
/* The appender's error (what failed: "flush", "append"). */
int wg__ingest_appender_error(duckdb_appender app, struct wg_error *err, const char *what);
/* After the COMMIT of ing (commit_mu held when ing->events): its commit event. */
void wg__ingest_notify(struct wg_engine_ingest *ing);
/* Frees an ingest (its open-table reference too; takes create_mu). */
void wg__ingest_free(struct wg_engine_ingest *ing);

#endif
