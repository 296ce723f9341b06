/* wigeon: the tables an ingest writes to: reading a table's columns, refusing views, creating a
 * missing table, matching incoming columns to the table's (names case-insensitively, types by
 * types.c's widening rules), and the open-table registry (engine->open_tables under create_mu)
 * that lets a failed ingest drop the table it created only when no other ingest uses it. */
#include "common/sql.h"
#include "common/text.h"
#include "engine/ingest_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void wg__columns_reset(struct wg__columns *cols) {
  for (idx_t i = 0; i < cols->n; i++) {
    if (cols->names) duckdb_free(cols->names[i]);
    if (cols->types && cols->types[i]) duckdb_destroy_logical_type(&cols->types[i]);
  }
  free(cols->names);
  free(cols->types);
  memset(cols, 0, sizeof(*cols));
}

int wg__columns_alloc(struct wg__columns *cols, idx_t n) {
  cols->names = calloc(n ? n : 1, sizeof(char *));
  cols->types = calloc(n ? n : 1, sizeof(duckdb_logical_type));
  if (cols->names == NULL || cols->types == NULL) return ENOMEM;
  cols->n = n;
  return 0;
}

/* Beyond this many columns a table's columns are read from the executed statement's result:
 * duckdb_prepared_statement_column_logical_type copies every column's type on each call, which is
 * quadratic (10,000 columns: 1e8 type copies); below it, the prepared statement is not executed. */
#define PREPARED_COLUMNS_MAX 64

/* The table's columns, or ENOENT when it does not exist. */
int wg__engine_table_columns(struct wg_engine_conn *c, const char *qualified,
                             struct wg__columns *cols, struct wg_error *err) {
  struct wg_buf sql;
  wg_buf_init(&sql);
  int rc = wg__put(&sql, "SELECT * FROM ");
  if (rc == 0) rc = wg__put(&sql, qualified);
  if (rc == 0) rc = wg_buf_append(&sql, " LIMIT 0", 9);
  if (rc != 0) {
    wg_buf_reset(&sql);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  duckdb_prepared_statement p = NULL;
  duckdb_result r;
  memset(&r, 0, sizeof(r));
  bool executed = false;
  idx_t n = 0;
  if (duckdb_prepare(c->conn, (const char *)sql.data, &p) != DuckDBSuccess) {
    rc = wg__engine_prepare_error(p, err);
  } else if ((n = duckdb_prepared_statement_column_count(p)) > PREPARED_COLUMNS_MAX) {
    executed = true;
    if (duckdb_execute_prepared(p, &r) != DuckDBSuccess) rc = wg__engine_result_error(&r, err);
  }
  if (rc == 0 && wg__columns_alloc(cols, n) != 0) rc = wg_error_set(err, ENOMEM, "out of memory");
  for (idx_t i = 0; i < n && rc == 0; i++) {
    if (!executed) {
      cols->names[i] = (char *)duckdb_prepared_statement_column_name(p, i);
      cols->types[i] = duckdb_prepared_statement_column_logical_type(p, i);
      continue;
    }
    const char *name = duckdb_column_name(&r, i);
    size_t len = strlen(name ? name : "");
    if ((cols->names[i] = duckdb_malloc(len + 1)) == NULL) {
      rc = wg_error_set(err, ENOMEM, "out of memory");
      break;
    }
    memcpy(cols->names[i], name ? name : "", len + 1);
    cols->types[i] = duckdb_column_logical_type(&r, i);
  }
  if (executed) duckdb_destroy_result(&r);
  duckdb_destroy_prepare(&p);
  wg_buf_reset(&sql);
  return rc;
}

/* Whether the name an ingest resolved is a base table of the database: a view (duckdb_tables and
 * the other system views resolve by name too) takes no appends. */
int wg__engine_check_base_table(struct wg_engine_conn *c, const char *schema_name,
                                const char *table, struct wg_error *err) {
  const char *sql = "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()"
                    " AND lower(schema_name) = lower(coalesce(?, current_schema()))"
                    " AND lower(table_name) = lower(?)";
  duckdb_prepared_statement p = NULL;
  int rc = 0;
  if (duckdb_prepare(c->conn, sql, &p) != DuckDBSuccess) {
    rc = wg__engine_prepare_error(p, err);
    duckdb_destroy_prepare(&p);
    return rc;
  }
  if (schema_name != NULL)
    duckdb_bind_varchar(p, 1, schema_name);
  else
    duckdb_bind_null(p, 1);
  duckdb_bind_varchar(p, 2, table);
  duckdb_result r;
  if (duckdb_execute_prepared(p, &r) != DuckDBSuccess) {
    rc = wg__engine_result_error(&r, err);
  } else if (duckdb_value_int64(&r, 0, 0) == 0) {
    rc = wg_error_set(err, EINVAL,
                      "\"%s\" is a view or a system table, not a table of this database: puts "
                      "append only to tables",
                      table);
  }
  duckdb_destroy_result(&r);
  duckdb_destroy_prepare(&p);
  return rc;
}

int wg__engine_table_exists(struct wg_engine_conn *c, const char *schema_name, const char *table,
                            bool temporary, bool *exists, struct wg_error *err) {
  const char *sql = temporary
                        ? "SELECT count(*) FROM duckdb_tables() WHERE temporary AND"
                          " coalesce(?, 'main') = schema_name AND lower(table_name) = lower(?)"
                        : "SELECT count(*) FROM duckdb_tables() WHERE database_name ="
                          " current_database() AND lower(schema_name) ="
                          " lower(coalesce(?, current_schema())) AND lower(table_name) = lower(?)";
  *exists = false;
  duckdb_prepared_statement p = NULL;
  int rc = 0;
  if (duckdb_prepare(c->conn, sql, &p) != DuckDBSuccess) {
    rc = wg__engine_prepare_error(p, err);
    duckdb_destroy_prepare(&p);
    return rc;
  }
  if (schema_name != NULL)
    duckdb_bind_varchar(p, 1, schema_name);
  else
    duckdb_bind_null(p, 1);
  duckdb_bind_varchar(p, 2, table);
  duckdb_result r;
  if (duckdb_execute_prepared(p, &r) != DuckDBSuccess)
    rc = wg__engine_result_error(&r, err);
  else
    *exists = duckdb_value_int64(&r, 0, 0) > 0;
  duckdb_destroy_result(&r);
  duckdb_destroy_prepare(&p);
  return rc;
}

int wg__engine_table_missing(const char *table, struct wg_error *err) {
  char shown[WG_TEXT_SHOWN];
  return wg_error_set(err, ENOENT, "table \"%s\" does not exist (the ingest asked to fail if it "
                      "does not)", wg_text_shown(table, shown, sizeof(shown)));
}

int wg__engine_table_present(const char *table, struct wg_error *err) {
  char shown[WG_TEXT_SHOWN];
  return wg_error_set(err, EEXIST, "table \"%s\" already exists (the ingest asked to fail if it "
                      "does)", wg_text_shown(table, shown, sizeof(shown)));
}

int wg__engine_replace_table(struct wg_engine_conn *c, const char *schema_name, const char *table,
                             const char *qualified, const struct wg__columns *in,
                             const struct wg_engine_ingest_opts *o, struct wg_error *err) {
  bool exists = false;
  WG_RETURN_NOT_OK(wg__engine_table_exists(c, schema_name, table, o->temporary, &exists, err));
  if (!exists && o->fail_if_missing) return wg__engine_table_missing(table, err);
  int rc = 0;
  if (exists) {
    struct wg_buf sql;
    wg_buf_init(&sql);
    rc = wg__put(&sql, "DROP TABLE ");
    if (rc == 0) rc = wg__put(&sql, qualified);
    if (rc == 0) rc = wg_buf_append(&sql, "", 1);
    if (rc != 0) rc = wg_error_set(err, ENOMEM, "out of memory");
    if (rc == 0) rc = wg__engine_exec(c, (const char *)sql.data, err);
    wg_buf_reset(&sql);
  }
  if (rc == 0) rc = wg__engine_create_table_temp(c, qualified, in, o->temporary, err);
  /* IF NOT EXISTS took a view of that name as done: it is not a table to fill */
  if (rc == 0 && !o->temporary) rc = wg__engine_check_base_table(c, schema_name, table, err);
  wg__engine_tables_may_change(c->engine);
  return rc;
}

int wg__engine_create_table(struct wg_engine_conn *c, const char *qualified,
                            const struct wg__columns *in, struct wg_error *err) {
  return wg__engine_create_table_temp(c, qualified, in, false, err);
}

int wg__engine_create_table_temp(struct wg_engine_conn *c, const char *qualified,
                                 const struct wg__columns *in, bool temporary,
                                 struct wg_error *err) {
  struct wg_buf sql;
  wg_buf_init(&sql);
  int rc = wg__put(&sql, temporary ? "CREATE TEMP TABLE IF NOT EXISTS "
                                   : "CREATE TABLE IF NOT EXISTS ");
  if (rc == 0) rc = wg__put(&sql, qualified);
  if (rc == 0) rc = wg__put(&sql, " (");
  for (idx_t i = 0; i < in->n && rc == 0; i++) {
    char *tn = wg__engine_type_name(in->types[i]);
    if (i > 0) rc = wg__put(&sql, ", ");
    if (rc == 0) rc = wg_sql_append_ident(&sql, in->names[i]);
    if (rc == 0) rc = wg__put(&sql, " ");
    if (rc == 0) rc = tn ? wg__put(&sql, tn) : ENOMEM;
    free(tn);
  }
  if (rc == 0) rc = wg_buf_append(&sql, ")", 2);
  if (rc != 0) rc = wg_error_set(err, ENOMEM, "out of memory building CREATE TABLE");
  if (rc == 0) rc = wg__engine_exec(c, (const char *)sql.data, err);
  wg_buf_reset(&sql);
  return rc;
}

/* ASCII case-folded FNV-1a: DuckDB's identifiers compare case-insensitively (as strcasecmp). */
static uint64_t name_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch >= 'A' && ch <= 'Z') ch = (unsigned char)(ch - 'A' + 'a');
    h = (h ^ ch) * 1099511628211ull;
  }
  return h;
}

/* An open-addressing index of the table's column names: a wide put's lookups stay linear. */
struct name_index {
  uint64_t mask;
  int64_t *slots; /* column index + 1, 0 for empty */
};

static int name_index_build(struct name_index *ix, const struct wg__columns *tc) {
  uint64_t cap = 16;
  while (cap < (uint64_t)tc->n * 2)
    cap <<= 1;
  ix->mask = cap - 1;
  ix->slots = calloc(cap, sizeof(int64_t));
  if (ix->slots == NULL) return ENOMEM;
  for (idx_t k = 0; k < tc->n; k++) {
    uint64_t h = name_hash(tc->names[k]) & ix->mask;
    while (ix->slots[h] != 0)
      h = (h + 1) & ix->mask;
    ix->slots[h] = (int64_t)k + 1;
  }
  return 0;
}

/* The table column named `name` (case-insensitively), or tc->n when there is none. */
static idx_t name_index_find(const struct name_index *ix, const struct wg__columns *tc,
                             const char *name) {
  for (uint64_t h = name_hash(name) & ix->mask; ix->slots[h] != 0; h = (h + 1) & ix->mask) {
    idx_t k = (idx_t)(ix->slots[h] - 1);
    if (strcasecmp(tc->names[k], name) == 0) return k;
  }
  return tc->n;
}

/* Checks every incoming column against the table and records the table column it goes to (cols),
 * and
 * whether the stream carries exactly the table's columns in the table's order (then the appender
 * needs no column list: duckdb_appender_add_column rebuilds its chunk each time, quadratic in the
 * column count). Linear: the usual case (same position) costs one comparison, others a hash
 * lookup; a column appearing twice is a table column taken twice (table names are unique). */
int wg__engine_match_columns(const char *table, const struct wg__columns *tc,
                             const struct wg__columns *in, char **cols, bool *whole_table,
                             struct wg_error *err) {
  struct name_index ix = {0, NULL};
  uint8_t *taken = calloc(tc->n ? tc->n : 1, 1);
  if (taken == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  bool in_order = in->n == tc->n;
  int rc = 0;
  char shown[WG_TEXT_SHOWN];
  for (idx_t i = 0; i < in->n && rc == 0; i++) {
    idx_t k = tc->n;
    if (i < tc->n && strcasecmp(tc->names[i], in->names[i]) == 0) {
      k = i;
    } else {
      in_order = false;
      if (ix.slots == NULL && name_index_build(&ix, tc) != 0) {
        rc = wg_error_set(err, ENOMEM, "out of memory");
        break;
      }
      k = name_index_find(&ix, tc, in->names[i]);
    }
    if (k == tc->n) {
      rc = wg_error_set(err, EINVAL, "column \"%s\": table \"%s\" has no such column",
                        wg_text_shown(in->names[i], shown, sizeof(shown)), table);
      break;
    }
    if (taken[k]) {
      rc = wg_error_set(err, EINVAL, "column \"%s\" appears twice in the stream",
                        wg_text_shown(in->names[i], shown, sizeof(shown)));
      break;
    }
    taken[k] = 1;
    char *tn = wg__engine_type_name(tc->types[k]), *sn = wg__engine_type_name(in->types[i]);
    if (tn == NULL || sn == NULL)
      rc = wg_error_set(err, ENOMEM, "out of memory");
    else if (!wg__engine_type_accepts(tc->types[k], in->types[i], tn, sn))
      rc = wg_error_set(err, EINVAL, "column \"%s\": table has %s, stream has %s",
                        wg_text_shown(in->names[i], shown, sizeof(shown)), tn, sn);
    free(tn);
    free(sn);
    if (rc == 0 && (cols[i] = strdup(tc->names[k])) == NULL)
      rc = wg_error_set(err, ENOMEM, "out of memory");
  }
  free(ix.slots);
  free(taken);
  *whole_table = rc == 0 && in_order;
  return rc;
}
/* Counts ingests open on a table (delta +1 / -1), under engine->create_mu; returns the count. */
int wg__engine_open_table_ref(struct wg_engine *e, const char *key, int delta) {
  for (int i = 0; i < e->n_open_tables; i++) {
    if (strcmp(e->open_tables[i].key, key) != 0) continue;
    int n = e->open_tables[i].n += delta;
    if (n <= 0) {
      free(e->open_tables[i].key);
      e->open_tables[i] = e->open_tables[--e->n_open_tables];
    }
    return n;
  }
  if (delta <= 0) return 0;
  if (e->n_open_tables == e->cap_open_tables) {
    int cap = e->cap_open_tables ? e->cap_open_tables * 2 : 8;
    struct wg__open_table *t = realloc(e->open_tables, (size_t)cap * sizeof(*t));
    if (t == NULL) return -1;
    e->open_tables = t;
    e->cap_open_tables = cap;
  }
  char *k = strdup(key);
  if (k == NULL) return -1;
  e->open_tables[e->n_open_tables++] = (struct wg__open_table){k, delta};
  return delta;
}

/* "schema.table", lower case: DuckDB's identifiers are case-insensitive. */
char *wg__engine_table_key(const char *schema_name, const char *table) {
  size_t n = strlen(schema_name ? schema_name : "main") + strlen(table) + 2;
  char *k = malloc(n);
  if (k == NULL) return NULL;
  snprintf(k, n, "%s.%s", schema_name ? schema_name : "main", table);
  for (char *p = k; *p; p++)
    if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
  return k;
}

/* After a failed ingest that created its table: drop it if it is still empty and no other ingest
 * has it open (another put may be about to fill it; then it stays). Errors are ignored. */
void wg__engine_drop_if_created(struct wg_engine_conn *c, const char *created, const char *key) {
  if (created == NULL) return;
  pthread_mutex_lock(&c->engine->create_mu);
  bool others = key != NULL && wg__engine_open_table_ref(c->engine, key, 0) > 1;
  pthread_mutex_unlock(&c->engine->create_mu);
  if (others) return;
  struct wg_buf sql;
  wg_buf_init(&sql);
  duckdb_result r;
  if (wg__put(&sql, "SELECT count(*) FROM ") == 0 && wg__put(&sql, created) == 0 &&
      wg_buf_append(&sql, "", 1) == 0 &&
      duckdb_query(c->conn, (const char *)sql.data, &r) == DuckDBSuccess) {
    int64_t n = duckdb_value_int64(&r, 0, 0);
    duckdb_destroy_result(&r);
    sql.size = 0;
    if (n == 0 && wg__put(&sql, "DROP TABLE IF EXISTS ") == 0 && wg__put(&sql, created) == 0 &&
        wg_buf_append(&sql, "", 1) == 0) {
      pthread_mutex_lock(&c->engine->create_mu);
      wg__engine_exec(c, (const char *)sql.data, NULL);
      wg__engine_tables_may_change(c->engine);
      pthread_mutex_unlock(&c->engine->create_mu);
    }
  } else {
    duckdb_destroy_result(&r);
  }
  wg_buf_reset(&sql);
}


void wg__engine_open_tables_free(struct wg_engine *e) {
  for (int i = 0; i < e->n_open_tables; i++)
    free(e->open_tables[i].key);
  free(e->open_tables);
  e->open_tables = NULL;
  e->n_open_tables = e->cap_open_tables = 0;
}

int wg_engine_database_name(struct wg_engine_conn *c, char **out, struct wg_error *err) {
  *out = NULL;
  duckdb_result r;
  memset(&r, 0, sizeof(r));
  int rc = 0;
  if (duckdb_query(c->conn, "SELECT current_database()", &r) != DuckDBSuccess) {
    rc = wg__engine_result_error(&r, err);
  } else {
    char *v = duckdb_value_varchar(&r, 0, 0);
    if (v == NULL || (*out = strdup(v)) == NULL) rc = wg_error_set(err, ENOMEM, "out of memory");
    duckdb_free(v);
  }
  duckdb_destroy_result(&r);
  return rc;
}
