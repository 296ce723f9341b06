/* wigeon: the catalog queries of Flight SQL's metadata commands (see engine.h, wg_engine_meta):
 * fixed SQL over information_schema and duckdb_*() with every name from the wire bound as a
 * parameter, results as rows of text that the server lays out in the spec's schemas. */
#include "engine/engine_internal.h"

#include <stdlib.h>
#include <string.h>

/* What every listing leaves out: DuckDB's system and temp catalogs, wigeon's own schema. */
#define OURS(cat, sch) cat " NOT IN ('system', 'temp') AND " sch " <> 'wigeon_internal'"
/* An optional filter on parameter n: exact, or LIKE with backslash escapes. */
#define EQ(col, n) " AND (CAST($" #n " AS VARCHAR) IS NULL OR " col " = $" #n ")"
#define LIKE(col, n) " AND (CAST($" #n " AS VARCHAR) IS NULL OR " col " LIKE $" #n " ESCAPE '\\')"
#define RULE(x)                                                                                    \
  "CASE " x " WHEN 'CASCADE' THEN 0 WHEN 'RESTRICT' THEN 1 WHEN 'SET NULL' THEN 2"                 \
  " WHEN 'SET DEFAULT' THEN 4 ELSE 3 END"
/* Foreign keys, one row per column, with the referential rules; ORDER BY follows. */
#define FOREIGN_KEYS                                                                               \
  "WITH fk AS (SELECT database_name AS fk_cat, schema_name AS fk_sch, table_name AS fk_tab,"       \
  " constraint_name AS fk_name, referenced_table AS pk_tab,"                                       \
  " unnest(constraint_column_names) AS fk_col, unnest(referenced_column_names) AS pk_col,"         \
  " unnest(range(1, len(constraint_column_names) + 1)) AS seq"                                     \
  " FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY'),"                             \
  " k AS (SELECT fk.fk_cat AS pk_cat, coalesce(rc.unique_constraint_schema, fk.fk_sch) AS pk_sch," \
  " fk.pk_tab, fk.pk_col, fk.fk_cat, fk.fk_sch, fk.fk_tab, fk.fk_col, fk.seq, fk.fk_name,"         \
  " rc.unique_constraint_name AS pk_name, " RULE("rc.update_rule") " AS upd, "                     \
  RULE("rc.delete_rule") " AS del"                                                                 \
  " FROM fk LEFT JOIN information_schema.referential_constraints rc"                               \
  " ON rc.constraint_catalog = fk.fk_cat AND rc.constraint_schema = fk.fk_sch"                     \
  " AND rc.constraint_name = fk.fk_name)"                                                          \
  " SELECT * FROM k WHERE " OURS("fk_cat", "fk_sch") EQ("pk_cat", 1) EQ("pk_sch", 2)              \
  EQ("pk_tab", 3) EQ("fk_cat", 4) EQ("fk_sch", 5) EQ("fk_tab", 6)

/* Scalar functions by kind: DuckDB's own categories where it has them (few functions have), else
 * by the kinds of their parameter and return types: numeric (numbers in, a number out), string
 * (text, maybe with numbers), datetime (a date, time, timestamp or interval anywhere); system:
 * the session's and server's facts (current_database(), version()...). Named functions only
 * (no operators, internals or the ICU collations). */
#define KIND_OF_TYPE                                                                               \
  "CASE WHEN t IN ('TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'UTINYINT',"             \
  " 'USMALLINT', 'UINTEGER', 'UBIGINT', 'UHUGEINT', 'FLOAT', 'DOUBLE') OR t LIKE 'DECIMAL%'"       \
  " THEN 'numeric' WHEN t = 'VARCHAR' THEN 'string' WHEN t IN ('DATE', 'TIME', 'TIMESTAMP',"       \
  " 'TIMESTAMP WITH TIME ZONE', 'TIME WITH TIME ZONE', 'INTERVAL', 'TIMESTAMP_S', 'TIMESTAMP_MS',"  \
  " 'TIMESTAMP_NS') THEN 'datetime' ELSE 'other' END"
#define FUNCTIONS                                                                                  \
  "SELECT DISTINCT upper(function_name) FROM (SELECT function_name, categories, parameter_types," \
  " list_transform(list_append(parameter_types, return_type), t -> " KIND_OF_TYPE ") AS kinds"    \
  " FROM duckdb_functions() WHERE function_type = 'scalar'"                                        \
  " AND regexp_matches(function_name, '^[a-z][a-z0-9_]*$')"                                        \
  " AND NOT starts_with(function_name, 'icu_collate_'))"                                           \
  " WHERE CASE $1 WHEN 'numeric' THEN list_contains(categories, 'numeric') OR"                     \
  " (len(parameter_types) > 0 AND list_bool_and(list_transform(kinds, k -> k = 'numeric')))"      \
  " WHEN 'string' THEN list_contains(categories, 'string') OR (len(parameter_types) > 0 AND"       \
  " list_contains(kinds, 'string') AND"                                                            \
  " list_bool_and(list_transform(kinds, k -> k IN ('string', 'numeric'))))"                        \
  " WHEN 'datetime' THEN list_has_any(categories, ['date', 'timestamp']) OR"                       \
  " list_contains(kinds, 'datetime')"                                                              \
  " WHEN 'system' THEN (function_name LIKE 'current\\_%' ESCAPE '\\' AND"                          \
  " NOT list_contains(kinds, 'datetime')) OR function_name IN ('version', 'typeof', 'user',"       \
  " 'session_user', 'txid_current')"                                                               \
  " ELSE false END ORDER BY 1"

static const struct {
  int n_params;
  const char *sql;
} queries[] = {
    [WG_ENGINE_META_CATALOGS] =
        {0, "SELECT DISTINCT catalog_name FROM information_schema.schemata WHERE " OURS(
                "catalog_name", "schema_name") " ORDER BY 1"},
    [WG_ENGINE_META_SCHEMAS] = {2, "SELECT catalog_name, schema_name FROM "
                                   "information_schema.schemata WHERE " OURS(
                                       "catalog_name", "schema_name") EQ("catalog_name", 1)
                                       LIKE("schema_name", 2) " ORDER BY 1, 2"},
    [WG_ENGINE_META_TABLES] = {3, "SELECT table_catalog, table_schema, table_name, table_type "
                                  "FROM information_schema.tables WHERE " OURS(
                                      "table_catalog", "table_schema") EQ("table_catalog", 1)
                                      LIKE("table_schema", 2) LIKE("table_name", 3) " ORDER BY "
                                                                                    "1, 2, 3, 4"},
    [WG_ENGINE_META_PRIMARY_KEYS] =
        {3, "SELECT * FROM (SELECT database_name AS cat, schema_name AS sch, table_name AS tab,"
            " unnest(constraint_column_names) AS col, constraint_name AS name,"
            " unnest(range(1, len(constraint_column_names) + 1)) AS seq"
            " FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY')"
            " WHERE " OURS("cat", "sch") EQ("cat", 1) EQ("sch", 2) EQ("tab", 3)
                " ORDER BY 1, 2, 3, 6"},
    [WG_ENGINE_META_IMPORTED_KEYS] = {6, FOREIGN_KEYS " ORDER BY 1, 2, 3, 9"},
    [WG_ENGINE_META_EXPORTED_KEYS] = {6, FOREIGN_KEYS " ORDER BY 5, 6, 7, 9"},
    [WG_ENGINE_META_CROSS_REFERENCE] = {6, FOREIGN_KEYS " ORDER BY 5, 6, 7, 9"},
    [WG_ENGINE_META_KEYWORDS] = {0, "SELECT DISTINCT upper(keyword_name) FROM duckdb_keywords() "
                                    "ORDER BY 1"},
    [WG_ENGINE_META_FUNCTIONS] = {1, FUNCTIONS},
};
enum { N_QUERIES = sizeof(queries) / sizeof(queries[0]) };

void wg_engine_rows_reset(struct wg_engine_rows *r) {
  if (r->cells != NULL)
    for (int64_t i = 0; i < r->n_rows * r->n_cols; i++)
      free(r->cells[i]);
  free(r->cells);
  memset(r, 0, sizeof(*r));
}

/* The result's cells as text into out. */
static int take_rows(duckdb_result *res, struct wg_engine_rows *out, struct wg_error *err) {
  idx_t rows = duckdb_row_count(res), cols = duckdb_column_count(res);
  out->cells = calloc(rows * cols ? rows * cols : 1, sizeof(char *));
  if (out->cells == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  out->n_rows = (int64_t)rows;
  out->n_cols = (int64_t)cols;
  for (idx_t r = 0; r < rows; r++) {
    for (idx_t c = 0; c < cols; c++) {
      if (duckdb_value_is_null(res, c, r)) continue;
      duckdb_string s = duckdb_value_string(res, c, r);
      char *d = malloc(s.size + 1);
      if (d != NULL) {
        memcpy(d, s.data ? s.data : "", s.size);
        d[s.size] = '\0';
      }
      duckdb_free(s.data);
      if (d == NULL) return wg_error_set(err, ENOMEM, "out of memory");
      out->cells[r * cols + c] = d;
    }
  }
  return 0;
}

int wg_engine_meta(struct wg_engine_conn *c, enum wg_engine_meta q, const char *const *params,
                   int n_params, struct wg_engine_rows *out, struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  if (c == NULL || (int)q < 0 || (int)q >= N_QUERIES || queries[q].n_params != n_params)
    return wg_error_set(err, EINVAL, "catalog query %d with %d parameters", (int)q, n_params);
  WG_RETURN_NOT_OK(wg__engine_conn_idle(c, err));
  duckdb_prepared_statement p = NULL;
  duckdb_result res;
  memset(&res, 0, sizeof(res));
  int rc = 0;
  if (duckdb_prepare(c->conn, queries[q].sql, &p) != DuckDBSuccess) {
    rc = wg__engine_prepare_error(p, err);
    duckdb_destroy_prepare(&p);
    return rc;
  }
  for (int i = 0; i < n_params; i++) {
    duckdb_state st = params[i] != NULL ? duckdb_bind_varchar(p, (idx_t)i + 1, params[i])
                                        : duckdb_bind_null(p, (idx_t)i + 1);
    if (st != DuckDBSuccess) {
      duckdb_destroy_prepare(&p);
      return wg_error_set(err, EINVAL, "catalog query: parameter %d does not bind", i + 1);
    }
  }
  if (duckdb_execute_prepared(p, &res) != DuckDBSuccess)
    rc = wg__engine_result_error(&res, err);
  else
    rc = take_rows(&res, out, err);
  duckdb_destroy_result(&res);
  duckdb_destroy_prepare(&p);
  if (rc != 0) wg_engine_rows_reset(out);
  return rc;
}
