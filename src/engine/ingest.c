/* wigeon: all-or-nothing streaming ingest of Arrow batches through DuckDB's appender (see
 * engine.h); types.c, tables.c and plans.c do the type rules, the table lookups and the plan
 * cache, group.c the group commit.
 *
 *   begin ----> OPEN --append--> OPEN --commit--> (freed)
 *                 |                |  \--error--> FAILED --abort--> (freed)
 *                 +----abort-------+-----------------------> (freed)
 *   begin:  BEGIN; CREATE TABLE when missing; compare columns; appender on the incoming columns
 *           (no column list when they are the table's in order; wide other orders: an INSERT)
 *   append: 2048-row zero-copy slices -> duckdb_data_chunk_from_arrow -> duckdb_append_data_chunk
 *   commit: flush and destroy the appender, COMMIT
 *   abort:  destroy the appender, ROLLBACK
 * Incoming DuckDB types come from converting an empty array of the schema (wg_arrow_concat of
 * nothing), so they are exactly what the appended chunks will carry. */
#include "arrow/array.h"
#include "arrow/concat.h"
#include "arrow/format.h"
#include "common/sql.h"
#include "common/text.h"
#include "engine/ingest_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SLICE_ROWS 2048 /* DuckDB's vector size: duckdb_data_chunk_from_arrow's maximum */

static void kept_release(struct wg_engine_ingest *ing, bool dropped);

/* ---------------------------------------------------------------------------------------------
 * Begin, append, commit, abort */

/* ECANCELED once the connection was interrupted (its call was cancelled): checked between the
 * expensive steps of a wide put, which DuckDB's own interrupt reaches only inside a statement. */
static int check_interrupted(const struct wg_engine_conn *c, struct wg_error *err) {
  if (c != NULL && atomic_load(&((struct wg_engine_conn *)c)->interrupted))
    return wg_error_set(err, ECANCELED, "put interrupted: its call was cancelled");
  return 0;
}


/* The DuckDB types the stream's batches convert to: an empty array of the schema through
 * duckdb_data_chunk_from_arrow. */
static int incoming_columns(struct wg_engine_ingest *ing, const struct ArrowSchema *schema,
                            struct wg__columns *cols, struct wg_error *err) {
  struct ArrowArray empty;
  WG_RETURN_NOT_OK(wg_arrow_concat(schema, NULL, 0, &empty, err));
  duckdb_data_chunk chunk = NULL;
  duckdb_error_data ed = duckdb_data_chunk_from_arrow(ing->c->conn, &empty, ing->converted, &chunk);
  int rc = wg_engine_take_error_data(&ed, err, NULL);
  if (empty.release != NULL) empty.release(&empty);
  if (rc != 0) {
    wg_error_prefix(err, rc, "converting the ingest schema");
    return wg__engine_name_refused_column(ing->c->conn, schema, rc, err);
  }
  idx_t n = duckdb_data_chunk_get_column_count(chunk);
  if ((int64_t)n != schema->n_children)
    rc = wg_error_set(err, EIO, "DuckDB made %llu columns of %lld fields", (unsigned long long)n,
                      (long long)schema->n_children);
  if (rc == 0 && wg__columns_alloc(cols, n) != 0) rc = wg_error_set(err, ENOMEM, "out of memory");
  for (idx_t i = 0; i < n && rc == 0; i++) {
    const char *name = schema->children[i]->name ? schema->children[i]->name : "";
    cols->names[i] = duckdb_malloc(strlen(name) + 1);
    if (cols->names[i] == NULL) {
      rc = wg_error_set(err, ENOMEM, "out of memory");
      break;
    }
    strcpy(cols->names[i], name);
    cols->types[i] = duckdb_vector_get_column_type(duckdb_data_chunk_get_vector(chunk, i));
    /* refused alike for a new table and an old one */
    if (wg__engine_type_has_null(cols->types[i], 0)) {
      const char *f = schema->children[i]->format ? schema->children[i]->format : "";
      bool nested = strcmp(f, "n") != 0;
      char shown[WG_TEXT_SHOWN];
      rc = wg_error_set(err, EINVAL,
                        "column \"%s\": the Arrow null type%s%s%s has no DuckDB column type; "
                        "send a typed column (e.g. int32 or utf8 with every value null)",
                        wg_text_shown(name, shown, sizeof(shown)), nested ? " (inside Arrow type \"" : "", nested ? f : "",
                        nested ? "\")" : "");
    }
  }
  duckdb_destroy_data_chunk(&chunk);
  return rc;
}


/* A put of more columns than this, not the table's all in order, appends through an INSERT
 * (a query appender) rather than an appender with a column list, which costs O(columns^2). */
#define LIST_COLUMNS_MAX 64

/* *out = a query appender on `conn` that runs INSERT INTO table (the ingest's columns) SELECT *
 * FROM the appended chunks, which carry the incoming types (the INSERT casts them to the table's,
 * the widenings type_accepts allowed). Linear in the column count. */
static int open_insert_appender(const struct wg_engine_ingest *ing, duckdb_connection conn,
                                duckdb_appender *out, struct wg_error *err) {
  *out = NULL;
  struct ArrowArray empty;
  WG_RETURN_NOT_OK(wg_arrow_concat(&ing->schema, NULL, 0, &empty, err));
  duckdb_data_chunk chunk = NULL;
  duckdb_error_data ed = duckdb_data_chunk_from_arrow(conn, &empty, ing->converted, &chunk);
  int rc = wg_engine_take_error_data(&ed, err, NULL);
  wg_array_release(&empty);
  if (rc != 0) return wg_error_prefix(err, rc, "converting the ingest schema");
  idx_t n = duckdb_data_chunk_get_column_count(chunk);
  duckdb_logical_type *types = calloc(n ? n : 1, sizeof(*types));
  char *qualified = wg__engine_qualified(ing->schema_name, ing->table);
  struct wg_buf sql;
  wg_buf_init(&sql);
  if (types == NULL || qualified == NULL || n != (idx_t)ing->n_columns) rc = ENOMEM;
  if (rc == 0) rc = wg__put(&sql, "INSERT INTO ");
  if (rc == 0) rc = wg__put(&sql, qualified);
  if (rc == 0) rc = wg__put(&sql, " (");
  for (idx_t i = 0; i < n && rc == 0; i++) {
    types[i] = duckdb_vector_get_column_type(duckdb_data_chunk_get_vector(chunk, i));
    if (i > 0) rc = wg__put(&sql, ", ");
    if (rc == 0) rc = wg_sql_append_ident(&sql, ing->cols[i]);
  }
  if (rc == 0) rc = wg__put(&sql, ") SELECT * FROM appended_data");
  if (rc == 0) rc = wg_buf_append(&sql, "", 1);
  if (rc != 0) {
    rc = wg_error_set(err, ENOMEM, "out of memory for an appender");
  } else if (duckdb_appender_create_query(conn, (const char *)sql.data, n, types, NULL, NULL,
                                          out) != DuckDBSuccess) {
    ed = duckdb_appender_error_data(*out);
    rc = wg_engine_take_error_data(&ed, err, NULL);
    if (rc == 0) rc = wg_error_set(err, EIO, "cannot create an appender for %s", ing->table);
    duckdb_appender_destroy(out);
    *out = NULL;
  }
  for (idx_t i = 0; types != NULL && i < n; i++)
    if (types[i] != NULL) duckdb_destroy_logical_type(&types[i]);
  free(types);
  free(qualified);
  wg_buf_reset(&sql);
  duckdb_destroy_data_chunk(&chunk);
  return rc;
}

/* *out = an appender on `conn` for the ingest's table and incoming columns (NULL on error). */
int wg__ingest_open_appender(const struct wg_engine_ingest *ing, duckdb_connection conn,
                             duckdb_appender *out, struct wg_error *err) {
  if (!ing->whole_table && ing->n_columns > LIST_COLUMNS_MAX)
    return open_insert_appender(ing, conn, out, err);
  int rc = 0;
  duckdb_appender app = NULL;
  const char *catalog = ing->opts.temporary ? "temp" : NULL;
  if (duckdb_appender_create_ext(conn, catalog, ing->schema_name, ing->table, &app) !=
      DuckDBSuccess) {
    duckdb_error_data ed = duckdb_appender_error_data(app);
    rc = wg_engine_take_error_data(&ed, err, NULL);
    if (rc == 0) rc = wg_error_set(err, EIO, "cannot create an appender for %s", ing->table);
  }
  /* All the table's columns in order: the default column list is the incoming one (checked, in
   * case the table has columns the appender does not take, as generated ones). */
  bool whole = rc == 0 && ing->whole_table &&
               duckdb_appender_column_count(app) == (idx_t)ing->n_columns;
  for (int64_t i = 0; i < ing->n_columns && rc == 0 && !whole; i++) {
    if (duckdb_appender_add_column(app, ing->cols[i]) != DuckDBSuccess) {
      duckdb_error_data ed = duckdb_appender_error_data(app);
      rc = wg_engine_take_error_data(&ed, err, NULL);
      if (rc == 0) rc = wg_error_set(err, EIO, "appender refused column \"%s\"", ing->cols[i]);
    }
  }
  if (rc != 0 && app != NULL) duckdb_appender_destroy(&app);
  *out = rc == 0 ? app : NULL;
  return rc;
}

/* Whether two ingests append to the same table's same columns, in the same order: then one
 * appender takes both. */
bool wg__ingest_same_target(const struct wg_engine_ingest *a, const struct wg_engine_ingest *b) {
  if (a->key == NULL || b->key == NULL || strcmp(a->key, b->key) != 0) return false;
  if (a->n_columns != b->n_columns) return false;
  for (int64_t i = 0; i < a->n_columns; i++)
    if (strcmp(a->cols[i], b->cols[i]) != 0) return false;
  return true;
}

void wg__ingest_free(struct wg_engine_ingest *ing) {
  if (ing->key != NULL && ing->engine != NULL) {
    pthread_mutex_lock(&ing->engine->create_mu);
    wg__engine_open_table_ref(ing->engine, ing->key, -1);
    pthread_mutex_unlock(&ing->engine->create_mu);
  }
  kept_release(ing, false);
  free(ing->kept);
  if (ing->unkept) /* it has committed or rolled back */
    wg__engine_events_put_end(ing->engine, ing->unkept_key);
  free(ing->key);
  free(ing->idem_key);
  free(ing->created);
  free(ing->schema_name);
  free(ing->table);
  for (int64_t i = 0; ing->cols != NULL && i < ing->n_columns; i++)
    free(ing->cols[i]);
  free(ing->cols);
  for (int64_t i = 0; i < ing->n_pending; i++)
    wg_array_release(&ing->pending[i]);
  free(ing->pending);
  if (ing->appender != NULL) duckdb_appender_destroy(&ing->appender);
  if (ing->converted != NULL) duckdb_destroy_arrow_converted_schema(&ing->converted);
  wg_schema_release(&ing->schema);
  free(ing);
}

static int begin_transaction(struct wg_engine_conn *c, bool *in_txn, struct wg_error *err) {
  WG_RETURN_NOT_OK(wg__engine_begin(c, err));
  *in_txn = true;
  return 0;
}

/* Works out ing->cols the long way: the incoming DuckDB types, the table (created when
 * missing), the type checks. For a streaming ingest, also opens its transaction (*in_txn). */
static int plan_columns(struct wg_engine_ingest *ing, const char *qualified,
                        const struct ArrowSchema *schema, bool *in_txn, struct wg_error *err) {
  struct wg_engine_conn *c = ing->c;
  struct wg__columns tc = {0}, in = {0};
  int rc = incoming_columns(ing, schema, &in, err);
  if (rc != 0) goto done;

  /* A missing table is created in its own short transaction, one creator at a time: two puts that
   * create the same table inside their data transactions would conflict, and one would fail. If
   * this ingest then fails, the table it created is dropped again (when still empty). The table's
   * columns are read once when it exists: inside the ingest's own transaction when it streams,
   * then no concurrent change can slip in between (a wide table's read costs ~15 us a column). */
  struct wg_error lookup;
  /* tc is as this ingest's transaction (or, deferred, the catalog now) sees it */
  bool have = false;
  if (!ing->deferred) rc = begin_transaction(c, in_txn, err);
  if (rc == 0) rc = check_interrupted(c, err);
  if (rc != 0) goto done;
  rc = wg__engine_table_columns(c, qualified, &tc, &lookup);
  if (rc == 0 && ing->opts.if_exists == WG_ENGINE_IF_EXISTS_FAIL) {
    rc = wg__engine_table_present(ing->table, err);
  } else if (rc == 0) {
    have = true;
  } else if (rc == ENOENT && ing->opts.fail_if_missing) {
    rc = wg__engine_table_missing(ing->table, err);
  } else if (rc == ENOENT) {
    if (*in_txn) { /* the failed lookup ended it; the table is created outside of it */
      if (wg__engine_rollback(c) == 0) c->txn_maybe = false;
      *in_txn = false;
    }
    pthread_mutex_lock(&c->engine->create_mu);
    rc = wg__engine_table_columns(c, qualified, &tc, &lookup);
    if (rc == ENOENT) {
      rc = check_interrupted(c, err);
      if (rc == 0) rc = wg__engine_create_table(c, qualified, &in, err);
      wg__engine_tables_may_change(c->engine);
      if (rc == 0 && (ing->created = strdup(qualified)) == NULL)
        rc = wg_error_set(err, ENOMEM, "out of memory");
    } else if (rc == 0 && ing->opts.if_exists == WG_ENGINE_IF_EXISTS_FAIL) {
      rc = wg__engine_table_present(ing->table, err); /* another put created it first */
    } else if (rc == 0) {
      have = ing->deferred;
    } else {
      *err = lookup;
    }
    pthread_mutex_unlock(&c->engine->create_mu);
  } else {
    *err = lookup;
  }
  if (rc == 0 && ing->created == NULL)
    rc = wg__engine_check_base_table(c, ing->schema_name, ing->table, err);
  if (rc == 0 && !ing->deferred && !*in_txn) rc = begin_transaction(c, in_txn, err);
  if (rc == 0 && !have) {
    wg__columns_reset(&tc);
    rc = wg__engine_table_columns(c, qualified, &tc, err);
  }
  if (rc == 0)
    rc = wg__engine_match_columns(ing->table, &tc, &in, ing->cols, &ing->whole_table, err);
done:
  wg__columns_reset(&tc);
  wg__columns_reset(&in);
  return rc;
}

/* The table inside one transaction: the ingest's own, opened here (REPLACE), or the caller's
 * (in_txn). REPLACE drops and creates it; otherwise the options decide on what the catalog says,
 * read without a failing statement (which would abort the caller's transaction). */
static int txn_columns(struct wg_engine_ingest *ing, const char *qualified,
                       const struct ArrowSchema *schema, bool *in_txn, struct wg_error *err) {
  struct wg_engine_conn *c = ing->c;
  const struct wg_engine_ingest_opts *o = &ing->opts;
  struct wg__columns tc = {0}, in = {0};
  int rc = incoming_columns(ing, schema, &in, err);
  if (rc == 0 && !o->in_txn) rc = begin_transaction(c, in_txn, err);
  bool exists = false;
  if (rc == 0 && o->if_exists == WG_ENGINE_IF_EXISTS_REPLACE) {
    rc = wg__engine_replace_table(c, ing->schema_name, ing->table, qualified, &in, o, err);
  } else if (rc == 0) {
    rc = wg__engine_table_exists(c, ing->schema_name, ing->table, o->temporary, &exists, err);
    if (rc == 0 && exists && o->if_exists == WG_ENGINE_IF_EXISTS_FAIL)
      rc = wg__engine_table_present(ing->table, err);
    else if (rc == 0 && !exists && o->fail_if_missing)
      rc = wg__engine_table_missing(ing->table, err);
    else if (rc == 0 && !exists)
      rc = wg__engine_create_table_temp(c, qualified, &in, o->temporary, err);
    if (!exists) wg__engine_tables_may_change(c->engine);
    if (rc == 0 && !o->temporary)
      rc = wg__engine_check_base_table(c, ing->schema_name, ing->table, err);
  }
  if (rc == 0) rc = wg__engine_table_columns(c, qualified, &tc, err);
  if (rc == 0)
    rc = wg__engine_match_columns(ing->table, &tc, &in, ing->cols, &ing->whole_table, err);
  wg__columns_reset(&tc);
  wg__columns_reset(&in);
  return rc;
}

/* After a failure of an ingest in the caller's transaction: that transaction is aborted (DuckDB
 * refuses its statements until ROLLBACK, and its COMMIT keeps nothing), so that no part of the
 * ingest can commit. Errors are ignored: the failing statement is the point. */
static void abort_callers_transaction(struct wg_engine_conn *c) {
  wg__engine_exec(c, "SELECT error('an ingest in this transaction failed: the transaction is "
                     "aborted, roll it back')", NULL);
}

static int ingest_begin(struct wg_engine_conn *c, const char *schema_name, const char *table,
                        const struct ArrowSchema *schema, const struct wg_engine_ingest_opts *o,
                        struct wg_engine_ingest **out, struct wg_error *err) {
  bool deferred = o->deferred && o->if_exists != WG_ENGINE_IF_EXISTS_REPLACE && !o->in_txn;
  if (c->session_txn) c->session_wrote = true;
  if (o->temporary && (!o->in_txn || (schema_name != NULL && schema_name[0] != '\0')))
    return wg_error_set(err, EINVAL, "ingest: a temporary table needs the caller's transaction "
                                     "and no schema name");
  *out = NULL;
  if (c == NULL || table == NULL || schema == NULL || schema->release == NULL)
    return wg_error_set(err, EINVAL, "ingest: NULL connection, table or schema");
  if (schema->format == NULL || strcmp(schema->format, "+s") != 0)
    return wg_error_set(err, EINVAL, "ingest: schema is not a struct (format \"%s\")",
                        schema->format ? schema->format : "(null)");
  WG_RETURN_NOT_OK(wg__engine_refuse_day_time_intervals(schema, err));
  WG_RETURN_NOT_OK(wg__engine_conn_idle(c, err));
  WG_RETURN_NOT_OK(wg_engine_fatal(c->engine, err));
  struct wg_engine *e = c->engine;
  /* read before any lookup: a plan is kept only if no table changed while it was worked out */
  uint64_t epoch = atomic_load(&e->ddl_epoch);
  struct wg_engine_ingest *ing = calloc(1, sizeof(*ing));
  char *qualified = wg__engine_qualified(schema_name, table);
  struct ArrowSchema copy = {0};
  struct wg_buf shape;
  wg_buf_init(&shape);
  bool in_txn = false;
  int rc = 0;
  if (ing == NULL || qualified == NULL) {
    rc = wg_error_set(err, ENOMEM, "out of memory for an ingest");
    goto fail;
  }
  ing->c = c;
  ing->engine = e;
  ing->deferred = deferred;
  ing->opts = *o;
  ing->opts.deferred = deferred;
  ing->key = wg__engine_table_key(schema_name, table);
  if (ing->key != NULL) {
    pthread_mutex_lock(&e->create_mu);
    if (wg__engine_open_table_ref(e, ing->key, +1) < 0) {
      free(ing->key);
      ing->key = NULL;
    }
    pthread_mutex_unlock(&e->create_mu);
  }
  if (!o->in_txn) { /* in_txn: the caller commits, and no event comes */
    ing->unkept_key = ing->key;
    ing->events = wg__engine_events_put_begin(e, &ing->unkept_key);
    ing->unkept = !ing->events;
  }
  ing->n_columns = schema->n_children;
  ing->table = strdup(table);
  ing->schema_name = schema_name ? strdup(schema_name) : NULL;
  ing->cols = calloc((size_t)(schema->n_children > 0 ? schema->n_children : 1), sizeof(char *));
  if (ing->table == NULL || ing->cols == NULL || (schema_name && ing->schema_name == NULL)) {
    rc = wg_error_set(err, ENOMEM, "out of memory for an ingest");
    goto fail;
  }
  rc = wg_schema_deep_copy(schema, &copy, err);
  if (rc == 0) rc = wg_schema_deep_copy(schema, &ing->schema, err);
  if (rc != 0) goto fail;
  duckdb_error_data ed = duckdb_schema_from_arrow(c->conn, &copy, &ing->converted);
  rc = wg_engine_take_error_data(&ed, err, NULL);
  if (rc != 0) {
    wg_error_prefix(err, rc, "ingest schema");
    wg__engine_name_refused_column(c->conn, schema, rc, err);
    goto fail;
  }
  /* a kept plan says the table existed: good for APPEND, not for FAIL or REPLACE */
  bool replace = o->if_exists == WG_ENGINE_IF_EXISTS_REPLACE;
  bool in_one_txn = replace || o->in_txn; /* the table's changes go with the rows */
  bool planned = !in_one_txn && o->if_exists != WG_ENGINE_IF_EXISTS_FAIL && ing->key != NULL &&
                 wg_schema_fingerprint(schema, &shape) == 0 &&
                 wg__engine_plan_find(e, ing->key, &shape, ing->n_columns, ing->cols,
                                      &ing->whole_table);
  if (!planned) {
    for (int64_t i = 0; i < ing->n_columns; i++) { /* a partial copy from plan_find */
      free(ing->cols[i]);
      ing->cols[i] = NULL;
    }
    rc = in_one_txn ? txn_columns(ing, qualified, schema, &in_txn, err)
                    : plan_columns(ing, qualified, schema, &in_txn, err);
    if (rc != 0) goto fail;
    if (!in_one_txn && ing->key != NULL && shape.size > 0)
      wg__engine_plan_keep(e, ing->key, &shape, epoch, ing->n_columns, ing->cols, ing->whole_table);
  } else if (!deferred) {
    rc = wg__engine_begin(c, err);
    if (rc != 0) goto fail;
    in_txn = true;
  }
  if (!deferred) rc = wg__ingest_open_appender(ing, c->conn, &ing->appender, err);
  if (rc != 0) goto fail;
  wg_buf_reset(&shape);
  wg_schema_release(&copy);
  free(qualified);
  *out = ing;
  return 0;
fail:
  if (in_txn && wg__engine_rollback(c) == 0) c->txn_maybe = false;
  if (o->in_txn) abort_callers_transaction(c);
  if (ing != NULL) {
    wg__engine_drop_if_created(c, ing->created, ing->key);
    wg__ingest_free(ing);
  }
  wg_buf_reset(&shape);
  wg_schema_release(&copy);
  free(qualified);
  return rc;
}

int wg_engine_ingest_begin(struct wg_engine_conn *c, const char *schema_name, const char *table,
                           const struct ArrowSchema *schema, struct wg_engine_ingest **out,
                           struct wg_error *err) {
  struct wg_engine_ingest_opts o = {.deferred = false};
  return ingest_begin(c, schema_name, table, schema, &o, out, err);
}

int wg_engine_ingest_begin_deferred(struct wg_engine_conn *c, const char *schema_name,
                                    const char *table, const struct ArrowSchema *schema,
                                    struct wg_engine_ingest **out, struct wg_error *err) {
  struct wg_engine_ingest_opts o = {.deferred = true};
  return ingest_begin(c, schema_name, table, schema, &o, out, err);
}

int wg_engine_ingest_begin_opts(struct wg_engine_conn *c, const char *schema_name,
                                const char *table, const struct ArrowSchema *schema,
                                const struct wg_engine_ingest_opts *opts,
                                struct wg_engine_ingest **out, struct wg_error *err) {
  struct wg_engine_ingest_opts o = {.deferred = false};
  return ingest_begin(c, schema_name, table, schema, opts != NULL ? opts : &o, out, err);
}

int wg__ingest_appender_error(duckdb_appender app, struct wg_error *err, const char *what) {
  duckdb_error_data ed = duckdb_appender_error_data(app);
  int rc = wg_engine_take_error_data(&ed, err, NULL);
  return rc != 0 ? rc : wg_error_set(err, EIO, "%s failed", what);
}

/* Lets every kept batch go: past the cap (dropped), or before a retry of a group's puts. */
static void kept_release(struct wg_engine_ingest *ing, bool dropped) {
  for (int64_t i = 0; i < ing->n_kept; i++)
    wg__slice_owner_unref(ing->kept[i]);
  ing->n_kept = 0;
  ing->kept_bytes = 0;
  ing->dropped = dropped;
}

/* Keeps a reference on a batch's owner for the commit event, up to events_max_put_bytes for the
 * put (buffer sizes: wg_arrow_range_bytes; a layout it cannot size counts nothing). */
static int keep_batch(struct wg_engine_ingest *ing, struct wg__slice_owner *owner,
                      struct wg_error *err) {
  if (ing->dropped) return 0;
  const struct ArrowArray *b = wg__slice_owner_batch(owner);
  int64_t bytes = wg_arrow_range_bytes(&ing->schema, b, 0, b->length);
  if (bytes > 0) ing->kept_bytes += bytes;
  if (ing->kept_bytes > ing->engine->events_max_put_bytes) {
    kept_release(ing, true);
    return 0;
  }
  if (ing->n_kept == ing->cap_kept) {
    int64_t cap = ing->cap_kept ? ing->cap_kept * 2 : 8;
    struct wg__slice_owner **k = realloc(ing->kept, (size_t)cap * sizeof(*k));
    if (k == NULL) return wg_error_set(err, ENOMEM, "out of memory keeping a batch");
    ing->kept = k;
    ing->cap_kept = cap;
  }
  wg__slice_owner_ref(owner);
  ing->kept[ing->n_kept++] = owner;
  return 0;
}

void wg__ingest_notify(struct wg_engine_ingest *ing) {
  if (!ing->events) return;
  char *key = ing->key != NULL ? NULL : wg__engine_table_key(ing->schema_name, ing->table);
  struct wg__committed_put put = {
      .schema_name = ing->schema_name,
      .table = ing->table,
      .key = ing->key != NULL ? ing->key : key,
      .schema = &ing->schema,
      .batches = ing->kept,
      .n_batches = ing->n_kept,
      .rows = ing->rows,
      .dropped = ing->dropped,
  };
  wg__engine_commit_notify(ing->engine, &put);
  free(key);
}

/* Appends one batch (consumed) of `ing` through `app`, converting on `conn`; stops between slices
 * once `watch` (may be NULL) is interrupted. */
static int append_batch(struct wg_engine_ingest *ing, const struct wg_engine_conn *watch,
                        duckdb_connection conn, duckdb_appender app, struct ArrowArray *batch,
                        struct wg_error *err) {
  int64_t length = batch->length;
  struct wg__slice_owner *owner = wg__slice_owner_create(batch);
  if (owner == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  int rc = ing->events ? keep_batch(ing, owner, err) : 0;
  for (int64_t start = 0; start < length && rc == 0; start += SLICE_ROWS) {
    int64_t n = length - start < SLICE_ROWS ? length - start : SLICE_ROWS;
    if ((rc = check_interrupted(watch, err)) != 0) break;
    struct ArrowArray slice;
    if (wg__slice(owner, &ing->schema, start, n, &slice) != 0) {
      rc = wg_error_set(err, ENOMEM, "out of memory slicing a batch");
      break;
    }
    duckdb_data_chunk chunk = NULL;
    duckdb_error_data ed = duckdb_data_chunk_from_arrow(conn, &slice, ing->converted, &chunk);
    rc = wg_engine_take_error_data(&ed, err, NULL);
    wg_array_release(&slice); /* if DuckDB did not take it */
    if (rc == 0 && duckdb_append_data_chunk(app, chunk) != DuckDBSuccess)
      rc = wg__ingest_appender_error(app, err, "append");
    if (chunk != NULL) duckdb_destroy_data_chunk(&chunk);
  }
  wg__slice_owner_unref(owner);
  return rc;
}

int wg_engine_ingest_append(struct wg_engine_ingest *ing, struct ArrowArray *batch,
                            struct wg_error *err) {
  if (ing == NULL || batch == NULL || batch->release == NULL) {
    wg_array_release(batch);
    return wg_error_set(err, EINVAL, "ingest append: NULL ingest or batch");
  }
  if (ing->failed != 0) {
    wg_array_release(batch);
    return wg_error_set(err, ing->failed, "ingest append after a failure");
  }
  if (batch->n_children != ing->n_columns) {
    int64_t nc = batch->n_children;
    wg_array_release(batch);
    return ing->failed = wg_error_set(err, EINVAL, "ingest batch has %lld columns, schema %lld",
                                      (long long)nc, (long long)ing->n_columns);
  }
  int64_t length = batch->length;
  if (ing->deferred) {
    if (ing->n_pending == ing->cap_pending) {
      int64_t cap = ing->cap_pending ? ing->cap_pending * 2 : 8;
      struct ArrowArray *p = realloc(ing->pending, (size_t)cap * sizeof(*p));
      if (p == NULL) {
        wg_array_release(batch);
        return ing->failed = wg_error_set(err, ENOMEM, "out of memory");
      }
      ing->pending = p;
      ing->cap_pending = cap;
    }
    wg_array_move(batch, &ing->pending[ing->n_pending++]);
    ing->rows += length;
    return 0;
  }
  int rc = append_batch(ing, ing->c, ing->c->conn, ing->appender, batch, err);
  if (rc == 0)
    ing->rows += length;
  else
    ing->failed = rc;
  return rc;
}

/* Appends the kept batches of a deferred ingest through `app` on `conn`, inside the transaction the
 * caller has open. The batches stay (shared views are appended) unless `consume`, so that a failed
 * group can be retried put by put. */
int wg__ingest_append_pending(struct wg_engine_ingest *ing, const struct wg_engine_conn *watch,
                              duckdb_connection conn, duckdb_appender app, bool consume,
                              struct wg_error *err) {
  kept_release(ing, false); /* a failed group's attempt kept them too */
  int rc = 0;
  for (int64_t i = 0; i < ing->n_pending && rc == 0; i++) {
    struct ArrowArray b;
    if (consume) {
      wg_array_move(&ing->pending[i], &b);
    } else if (wg_array_share(&ing->pending[i], &b) != 0) {
      rc = wg_error_set(err, ENOMEM, "out of memory sharing a batch");
      break;
    }
    rc = append_batch(ing, watch, conn, app, &b, err);
  }
  return rc;
}

int wg_engine_ingest_stream(struct wg_engine_ingest *ing, struct wg_error *err) {
  if (ing == NULL || !ing->deferred) return 0;
  if (ing->failed != 0) return wg_error_set(err, ing->failed, "ingest stream after a failure");
  struct wg_engine_conn *c = ing->c;
  int rc = wg__engine_begin(c, err);
  if (rc == 0) {
    ing->deferred = false;
    rc = wg__ingest_open_appender(ing, c->conn, &ing->appender, err);
  }
  if (rc == 0) rc = wg__ingest_append_pending(ing, c, c->conn, ing->appender, true, err);
  for (int64_t i = 0; i < ing->n_pending; i++)
    wg_array_release(&ing->pending[i]);
  ing->n_pending = 0;
  if (rc != 0) ing->failed = rc;
  return rc;
}

int64_t wg_engine_ingest_rows(const struct wg_engine_ingest *ing) {
  return ing ? ing->rows : 0;
}

int wg_engine_ingest_commit(struct wg_engine_ingest *ing, int64_t *rows, struct wg_error *err) {
  if (rows != NULL) *rows = 0;
  if (ing == NULL) return wg_error_set(err, EINVAL, "ingest commit: NULL ingest");
  if (ing->failed != 0) {
    int failed = ing->failed;
    wg_engine_ingest_abort(ing);
    return wg_error_set(err, failed, "ingest commit after a failure");
  }
  int rc = 0;
  if (duckdb_appender_flush(ing->appender) != DuckDBSuccess)
    rc = wg__ingest_appender_error(ing->appender, err, "flush");
  if (rc == 0) {
    duckdb_appender_destroy(&ing->appender);
    ing->appender = NULL;
    if (ing->idem_key != NULL)
      rc = wg__engine_put_key_record(ing->c, ing->idem_key, ing->rows, ing->schema_name,
                                     ing->table, err);
  }
  if (rc == 0) rc = wg_engine_fatal(ing->engine, err);
  if (rc == 0 && ing->opts.in_txn) { /* the rows are the caller's transaction's now */
    if (rows != NULL) *rows = ing->rows;
    wg__ingest_free(ing);
    return 0;
  }
  if (rc == 0) {
    if (ing->events) wg__engine_commit_lock(ing->engine);
    rc = wg__engine_exec(ing->c, "COMMIT", err);
    wg__engine_note_failure(ing->engine, rc, true, err);
    /* plans made from the old table while the REPLACE was open go */
    if (ing->opts.if_exists == WG_ENGINE_IF_EXISTS_REPLACE)
      wg__engine_tables_may_change(ing->engine);
    if (rc == 0) wg__ingest_notify(ing);
    if (ing->events) wg__engine_commit_unlock(ing->engine);
  }
  if (rc != 0) { /* commit consumes the ingest either way */
    wg_engine_ingest_abort(ing);
    return rc;
  }
  ing->c->txn_maybe = false;
  if (rows != NULL) *rows = ing->rows;
  wg__ingest_free(ing);
  return 0;
}

int wg_engine_ingest_set_key(struct wg_engine_ingest *ing, const char *key,
                             struct wg_error *err) {
  if (ing == NULL || key == NULL || key[0] == '\0')
    return wg_error_set(err, EINVAL, "empty idempotency key");
  if (strlen(key) > WG_ENGINE_MAX_KEY_BYTES)
    return wg_error_set(err, EINVAL, "idempotency key of %zu bytes: at most %d", strlen(key),
                        WG_ENGINE_MAX_KEY_BYTES);
  char *k = strdup(key);
  if (k == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  free(ing->idem_key);
  ing->idem_key = k;
  return 0;
}

void wg_engine_ingest_fail(struct wg_engine_ingest *ing, int code) {
  if (ing != NULL && ing->failed == 0) ing->failed = code;
}

void wg_engine_ingest_abort(struct wg_engine_ingest *ing) {
  if (ing == NULL) return;
  struct wg_engine_conn *c = ing->c;
  if (ing->appender != NULL) {
    duckdb_appender_destroy(&ing->appender);
    ing->appender = NULL;
  }
  if (ing->opts.in_txn) {
    abort_callers_transaction(c);
    wg__ingest_free(ing);
    return;
  }
  if (wg__engine_rollback(c) == 0) c->txn_maybe = false;
  if (ing->opts.if_exists == WG_ENGINE_IF_EXISTS_REPLACE) wg__engine_tables_may_change(c->engine);
  wg__engine_drop_if_created(c, ing->created, ing->key);
  wg__ingest_free(ing);
}
