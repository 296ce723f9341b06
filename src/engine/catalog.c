/* wigeon: catalog lookups (see engine.h): base tables from duckdb_tables() with exact row counts
 * (count(*) per table: estimated_size is not exact), table schemas from a prepared
 * SELECT * (never executed), DROP TABLE. Identifiers are always quoted. */
#include "engine/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wg_engine_tables_free(struct wg_engine_table *t, int64_t n) {
  if (t == NULL) return;
  for (int64_t i = 0; i < n; i++) {
    free(t[i].schema_name);
    free(t[i].table_name);
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

int wg_engine_list_tables(struct wg_engine_conn *c, const char *filter,
                          struct wg_engine_table **out, int64_t *n, struct wg_error *err) {
  *out = NULL;
  *n = 0;
  if (c == NULL) return wg_error_set(err, EINVAL, "list tables: NULL connection");
  WG_RETURN_NOT_OK(wg__engine_conn_idle(c, err));
  static const char *sql =
      "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary AND NOT internal"
      " AND database_name = current_database() AND schema_name <> 'wigeon_internal'"
      " AND strpos(table_name, $1) > 0"
      " ORDER BY schema_name, table_name";
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
  struct wg_engine_table *t = calloc(rows ? rows : 1, sizeof(*t));
  if (t == NULL) {
    rc = wg_error_set(err, ENOMEM, "out of memory for %llu tables", (unsigned long long)rows);
    goto done;
  }
  for (idx_t i = 0; i < rows && rc == 0; i++) {
    t[i].schema_name = dup_value(&r, 0, i);
    t[i].table_name = dup_value(&r, 1, i);
    if (t[i].schema_name == NULL || t[i].table_name == NULL)
      rc = wg_error_set(err, ENOMEM, "out of memory");
    else
      rc = count_rows(c, t[i].schema_name, t[i].table_name, &t[i].rows, err);
  }
  if (rc != 0) {
    wg_engine_tables_free(t, (int64_t)rows);
    goto done;
  }
  *out = t;
  *n = (int64_t)rows;
done:
  if (have_result) duckdb_destroy_result(&r);
  duckdb_destroy_prepare(&p);
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
