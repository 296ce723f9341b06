/* wigeon: catalog lookups (see engine.h): table lists, table schemas from a prepared
 * SELECT * (never executed), exact row counts (count(*): duckdb_tables().estimated_size still
 * counts deleted rows), DROP TABLE. Identifiers are always quoted.
 * Listing all tables takes a fixed handful of statements, not one per table (ListFlights over
 * thousands of tables): one catalog query for every table and column, count(*) of up to
 * LIST_COUNT_GROUP tables per UNION ALL statement (DuckDB's parser nests a UNION ALL chain, so
 * beyond 1000 it fails with "max expression depth", and per table it costs more past ~100), and
 * the column types from one prepared (never run) SELECT of typed NULLs per LIST_TYPE_GROUP
 * columns, all in one read-only transaction so that the parts agree. */
#include "engine/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wg_engine_tables_free(struct wg_engine_table *t, int64_t n) {
  if (t == NULL) return;
  for (int64_t i = 0; i < n; i++) {
    free(t[i].schema_name);
    free(t[i].table_name);
    wg_schema_release(&t[i].schema);
  }
  free(t);
}

static char *dup_value(duckdb_result *r, idx_t col, idx_t row) {
  duckdb_string s = duckdb_value_string(r, col, row);
  char *d = malloc(s.size + 1);
  if (d != NULL) {
    memcpy(d, s.data ? s.data : "", s.size);
    d[s.size] = '\0';
  }
  duckdb_free(s.data);
  return d;
}

static int count_rows(struct wg_engine_conn *c, const char *schema_name, const char *table,
                      int64_t *rows, struct wg_error *err) {
  char *q = wg__engine_qualified(schema_name, table);
  char *sql = q ? malloc(strlen(q) + 32) : NULL;
  if (sql == NULL) {
    free(q);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  sprintf(sql, "SELECT count(*) FROM %s", q);
  duckdb_result r;
  memset(&r, 0, sizeof(r));
  int rc = 0;
  if (duckdb_query(c->conn, sql, &r) != DuckDBSuccess)
    rc = wg__engine_result_error(&r, err);
  else
    *rows = duckdb_value_int64(&r, 0, 0);
  duckdb_destroy_result(&r);
  free(sql);
  free(q);
  return rc;
}

/* Tables per count(*) statement, and columns per typed-NULL statement. */
#define LIST_COUNT_GROUP 64
#define LIST_TYPE_GROUP 2048

/* What the catalog query gives: the tables (t[0..n)), and every column of them in order
 * (names/types[0..n_all)); table i's columns are [first_col[i], first_col[i] + n_cols[i]). */
struct listing {
  struct wg_engine_table *t;
  int64_t n;
  int64_t *first_col, *n_cols;
  char **names, **types; /* column names and DuckDB type names (duckdb_columns().data_type) */
  int64_t n_all;
};

static void listing_reset(struct listing *l) {
  wg_engine_tables_free(l->t, l->n);
  for (int64_t i = 0; i < l->n_all; i++) {
    free(l->names[i]);
    free(l->types[i]);
  }
  free(l->first_col);
  free(l->n_cols);
  free(l->names);
  free(l->types);
  memset(l, 0, sizeof(*l));
}

/* Every listed table with its columns, in one query. */
static int list_catalog(struct wg_engine_conn *c, const char *filter, struct listing *l,
                        struct wg_error *err) {
  static const char *sql =
      "SELECT t.schema_name, t.table_name, c.column_name, c.data_type"
      " FROM duckdb_tables() t JOIN duckdb_columns() c ON c.table_oid = t.table_oid"
      " WHERE NOT t.temporary AND NOT t.internal AND t.database_name = current_database()"
      " AND t.schema_name <> 'wigeon_internal' AND contains(lower(t.table_name), lower($1))"
      " ORDER BY t.schema_name, t.table_name, c.column_index";
  duckdb_prepared_statement p = NULL;
  duckdb_result r;
  memset(&r, 0, sizeof(r));
  bool have_result = false;
  int rc = 0;
  if (duckdb_prepare(c->conn, sql, &p) != DuckDBSuccess) {
    rc = wg__engine_prepare_error(p, err);
    goto done;
  }
  duckdb_bind_varchar(p, 1, filter ? filter : "");
  have_result = true;
  if (duckdb_execute_prepared(p, &r) != DuckDBSuccess) {
    rc = wg__engine_result_error(&r, err);
    goto done;
  }
  idx_t rows = duckdb_row_count(&r);
  size_t cap = rows ? rows : 1; /* every table has a column: rows bounds the tables too */
  l->t = calloc(cap, sizeof(*l->t));
  l->first_col = calloc(cap, sizeof(int64_t));
  l->n_cols = calloc(cap, sizeof(int64_t));
  l->names = calloc(cap, sizeof(char *));
  l->types = calloc(cap, sizeof(char *));
  if (l->t == NULL || l->first_col == NULL || l->n_cols == NULL || l->names == NULL ||
      l->types == NULL) {
    rc = wg_error_set(err, ENOMEM, "out of memory for %llu columns", (unsigned long long)rows);
    goto done;
  }
  for (idx_t i = 0; i < rows && rc == 0; i++) {
    char *schema_name = dup_value(&r, 0, i), *table = dup_value(&r, 1, i);
    l->names[i] = dup_value(&r, 2, i);
    l->types[i] = dup_value(&r, 3, i);
    l->n_all = (int64_t)i + 1;
    struct wg_engine_table *last = l->n > 0 ? &l->t[l->n - 1] : NULL;
    if (schema_name == NULL || table == NULL || l->names[i] == NULL || l->types[i] == NULL) {
      rc = wg_error_set(err, ENOMEM, "out of memory");
    } else if (last != NULL && strcmp(last->schema_name, schema_name) == 0 &&
               strcmp(last->table_name, table) == 0) {
      l->n_cols[l->n - 1]++;
    } else {
      l->t[l->n].schema_name = schema_name;
      l->t[l->n].table_name = table;
      schema_name = table = NULL;
      l->first_col[l->n] = (int64_t)i;
      l->n_cols[l->n] = 1;
      l->n++;
    }
    free(schema_name);
    free(table);
  }
done:
  if (have_result) duckdb_destroy_result(&r);
  duckdb_destroy_prepare(&p);
  return rc;
}

/* Exact row counts of tables [from, to): one UNION ALL statement of count(*) per table. */
static int count_group(struct wg_engine_conn *c, struct listing *l, int64_t from, int64_t to,
                       struct wg_error *err) {
  struct wg_buf sql;
  wg_buf_init(&sql);
  int rc = 0;
  for (int64_t i = from; i < to && rc == 0; i++) {
    char *q = wg__engine_qualified(l->t[i].schema_name, l->t[i].table_name);
    char head[64];
    int hl = snprintf(head, sizeof(head), "%sSELECT %lld::BIGINT, count(*) FROM ",
                      i > from ? " UNION ALL " : "", (long long)i);
    rc = q == NULL ? ENOMEM : wg_buf_append(&sql, head, hl);
    if (rc == 0) rc = wg_buf_append(&sql, q, (int64_t)strlen(q));
    free(q);
  }
  if (rc == 0) rc = wg_buf_append(&sql, "", 1);
  if (rc != 0) {
    wg_buf_reset(&sql);
    return wg_error_set(err, ENOMEM, "out of memory building the row count query");
  }
  duckdb_result r;
  memset(&r, 0, sizeof(r));
  if (duckdb_query(c->conn, (const char *)sql.data, &r) != DuckDBSuccess) {
    rc = wg__engine_result_error(&r, err);
  } else {
    idx_t rows = duckdb_row_count(&r);
    for (idx_t k = 0; k < rows; k++) {
      int64_t i = duckdb_value_int64(&r, 0, k);
      if (i >= from && i < to) l->t[i].rows = duckdb_value_int64(&r, 1, k);
    }
    if (rows != (idx_t)(to - from))
      rc = wg_error_set(err, EIO, "row count query gave %llu rows for %lld tables",
                        (unsigned long long)rows, (long long)(to - from));
  }
  duckdb_destroy_result(&r);
  wg_buf_reset(&sql);
  return rc;
}

/* The schemas of tables [from, to) from one prepared, never executed, statement whose result
 * columns are CAST(NULL AS type) of each of their columns: the same logical types, so the same
 * Arrow schema as wg_engine_table_schema gives. EINVAL when DuckDB cannot take its own type name
 * back (a type name it prints but cannot bind here): the caller asks table by table. */
static int type_group(struct wg_engine_conn *c, struct listing *l, int64_t from, int64_t to,
                      struct wg_error *err) {
  struct wg_buf sql;
  wg_buf_init(&sql);
  int64_t first = l->first_col[from];
  int64_t n = l->first_col[to - 1] + l->n_cols[to - 1] - first;
  int rc = wg_buf_append(&sql, "SELECT ", 7);
  for (int64_t k = first; k < first + n && rc == 0; k++) {
    rc = wg_buf_append(&sql, k > first ? ", CAST(NULL AS " : "CAST(NULL AS ", k > first ? 15 : 13);
    if (rc == 0) rc = wg_buf_append(&sql, l->types[k], (int64_t)strlen(l->types[k]));
    if (rc == 0) rc = wg_buf_append(&sql, ")", 1);
  }
  if (rc == 0) rc = wg_buf_append(&sql, "", 1);
  if (rc != 0) {
    wg_buf_reset(&sql);
    return wg_error_set(err, ENOMEM, "out of memory building the column type query");
  }
  duckdb_prepared_statement p = NULL;
  if (duckdb_prepare(c->conn, (const char *)sql.data, &p) != DuckDBSuccess) {
    rc = wg__engine_prepare_error(p, err);
    if (rc != ENOMEM) rc = EINVAL;
  } else if (duckdb_prepared_statement_column_count(p) != (idx_t)n) {
    rc = wg_error_set(err, EINVAL, "column type query gave %llu columns for %lld",
                      (unsigned long long)duckdb_prepared_statement_column_count(p),
                      (long long)n);
  }
  for (int64_t i = from; i < to && rc == 0; i++)
    rc = wg__engine_prepared_columns_schema(c, p, (idx_t)(l->first_col[i] - first),
                                            (idx_t)l->n_cols[i], &l->names[l->first_col[i]],
                                            &l->t[i].schema, err);
  duckdb_destroy_prepare(&p);
  wg_buf_reset(&sql);
  return rc;
}

/* One table's schema the long way: its prepared SELECT *. */
static int table_prepared_schema(struct wg_engine_conn *c, struct wg_engine_table *t,
                                 struct wg_error *err) {
  char *q = wg__engine_qualified(t->schema_name, t->table_name);
  char *sql = q ? malloc(strlen(q) + 32) : NULL;
  int rc;
  if (sql == NULL) {
    rc = wg_error_set(err, ENOMEM, "out of memory");
  } else {
    sprintf(sql, "SELECT * FROM %s", q);
    rc = wg__engine_prepared_schema(c, sql, &t->schema, err);
  }
  free(sql);
  free(q);
  return rc;
}

static int list_all(struct wg_engine_conn *c, const char *filter, struct listing *l,
                    struct wg_error *err) {
  WG_RETURN_NOT_OK(list_catalog(c, filter, l, err));
  for (int64_t from = 0; from < l->n; from += LIST_COUNT_GROUP) {
    int64_t to = from + LIST_COUNT_GROUP < l->n ? from + LIST_COUNT_GROUP : l->n;
    WG_RETURN_NOT_OK(count_group(c, l, from, to, err));
  }
  for (int64_t from = 0, to; from < l->n; from = to) {
    int64_t cols = l->n_cols[from];
    for (to = from + 1; to < l->n && cols + l->n_cols[to] <= LIST_TYPE_GROUP; to++)
      cols += l->n_cols[to];
    int rc = type_group(c, l, from, to, err);
    if (rc == EINVAL) {
      for (int64_t i = from; i < to; i++) {
        wg_schema_release(&l->t[i].schema);
        WG_RETURN_NOT_OK(table_prepared_schema(c, &l->t[i], err));
      }
    } else if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

int wg_engine_list_tables(struct wg_engine_conn *c, const char *filter,
                          struct wg_engine_table **out, int64_t *n, struct wg_error *err) {
  *out = NULL;
  *n = 0;
  if (c == NULL) return wg_error_set(err, EINVAL, "list tables: NULL connection");
  WG_RETURN_NOT_OK(wg__engine_conn_idle(c, err));
  /* One snapshot: a table dropped or altered meanwhile is listed as it was when this began. */
  WG_RETURN_NOT_OK(wg__engine_begin(c, err));
  struct listing l;
  memset(&l, 0, sizeof(l));
  int rc = list_all(c, filter, &l, err);
  if (wg__engine_rollback(c) == 0) c->txn_maybe = false; /* read only: nothing to commit */
  if (rc == 0) {
    *out = l.t;
    *n = l.n;
    l.t = NULL;
    l.n = 0;
  }
  listing_reset(&l);
  return rc;
}

int wg_engine_table_schema(struct wg_engine_conn *c, const char *schema_name, const char *table,
                           struct ArrowSchema *out, int64_t *rows, struct wg_error *err) {
  if (out != NULL) memset(out, 0, sizeof(*out));
  if (c == NULL || table == NULL || out == NULL)
    return wg_error_set(err, EINVAL, "table schema: NULL argument");
  WG_RETURN_NOT_OK(wg__engine_conn_idle(c, err));
  char *q = wg__engine_qualified(schema_name, table);
  char *sql = q ? malloc(strlen(q) + 32) : NULL;
  if (sql == NULL) {
    free(q);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  sprintf(sql, "SELECT * FROM %s", q);
  int rc = wg__engine_prepared_schema(c, sql, out, err);
  if (rc == 0 && rows != NULL) {
    rc = count_rows(c, schema_name, table, rows, err);
    if (rc != 0) wg_schema_release(out);
  }
  free(sql);
  free(q);
  return rc;
}

int wg_engine_drop_table(struct wg_engine_conn *c, const char *schema_name, const char *table,
                         struct wg_error *err) {
  if (c == NULL || table == NULL) return wg_error_set(err, EINVAL, "drop table: NULL argument");
  WG_RETURN_NOT_OK(wg__engine_conn_idle(c, err));
  char *q = wg__engine_qualified(schema_name, table);
  char *sql = q ? malloc(strlen(q) + 16) : NULL;
  if (sql == NULL) {
    free(q);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  sprintf(sql, "DROP TABLE %s", q);
  int rc = wg__engine_exec(c, sql, err);
  wg__engine_tables_may_change(c->engine); /* ingest plans of the table go, failed or not */
  free(sql);
  free(q);
  return rc;
}
