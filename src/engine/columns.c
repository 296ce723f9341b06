/* wigeon: the column details Flight SQL drivers read from Arrow field metadata (FlightSql.proto's
 * ARROW:FLIGHT:SQL:* keys): JDBC's getColumns and ResultSetMetaData, ADBC's column info take the
 * type name, precision and scale from there and nothing else. Two sources: a table's columns in
 * duckdb_columns() (nullability, DuckDB's type text, where the column lives), and a prepared
 * statement's result columns (their logical types). The schemas here are our own copies
 * (wg_schema_deep_copy), so metadata can be set on their fields; a field's other metadata stays. */
#include "engine/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "ARROW:FLIGHT:SQL:"

/* What one field says; NULL strings and negative numbers are left out. */
struct column_facts {
  const char *catalog, *schema_name, *table, *type_name;
  int64_t precision, scale;
  const char *auto_increment; /* "0", or NULL when unknown */
};

static int put(struct wg_buf *b, const char *key, const char *value) {
  if (value == NULL) return 0;
  return wg_metadata_append(b, key, (int32_t)strlen(key), value, (int32_t)strlen(value));
}

static int put_int(struct wg_buf *b, const char *key, int64_t v) {
  if (v < 0) return 0;
  char text[24];
  snprintf(text, sizeof(text), "%lld", (long long)v);
  return put(b, key, text);
}

/* f's metadata: its own pairs but ours, then the facts. */
static int set_facts(struct ArrowSchema *f, const struct column_facts *k, struct wg_error *err) {
  struct wg_buf b;
  wg_buf_init(&b);
  struct wg_metadata_reader r;
  struct wg_bytes key, value;
  int rc = 0;
  wg_metadata_reader_init(&r, f->metadata);
  while (rc == 0 && wg_metadata_reader_next(&r, &key, &value) == 1) {
    if (key.size >= (int64_t)strlen(KEY) && memcmp(key.data, KEY, strlen(KEY)) == 0) continue;
    rc = wg_metadata_append(&b, (const char *)key.data, (int32_t)key.size,
                            (const char *)value.data, (int32_t)value.size);
  }
  if (rc == 0) rc = put(&b, KEY "CATALOG_NAME", k->catalog);
  if (rc == 0) rc = put(&b, KEY "DB_SCHEMA_NAME", k->schema_name);
  if (rc == 0) rc = put(&b, KEY "TABLE_NAME", k->table);
  if (rc == 0) rc = put(&b, KEY "TYPE_NAME", k->type_name);
  if (rc == 0) rc = put_int(&b, KEY "PRECISION", k->precision);
  if (rc == 0) rc = put_int(&b, KEY "SCALE", k->scale);
  if (rc == 0) rc = put(&b, KEY "IS_AUTO_INCREMENT", k->auto_increment);
  if (rc == 0 && b.size > 0) rc = wg_schema_set_metadata(f, (const char *)b.data);
  wg_buf_reset(&b);
  return rc == 0 ? 0 : wg_error_set(err, ENOMEM, "out of memory for column metadata");
}

static int64_t number_or_none(const char *s) { return s != NULL ? strtoll(s, NULL, 10) : -1; }

int wg_engine_table_schema_described(struct wg_engine_conn *c, const char *catalog,
                                     const char *schema_name, const char *table,
                                     struct ArrowSchema *out, struct wg_error *err) {
  if (out != NULL) memset(out, 0, sizeof(*out));
  if (out == NULL) return wg_error_set(err, EINVAL, "table schema: NULL argument");
  struct ArrowSchema duck = {0};
  WG_RETURN_NOT_OK(wg_engine_table_schema(c, schema_name, table, &duck, NULL, err));
  int rc = wg_schema_deep_copy(&duck, out, err);
  wg_schema_release(&duck);
  struct wg_engine_rows r = {0};
  const char *p[3] = {catalog, schema_name, table};
  if (rc == 0) rc = wg_engine_meta(c, WG_ENGINE_META_COLUMNS, p, 3, &r, err);
  /* a table altered between the two statements: its schema without details */
  bool same = rc == 0 && r.n_rows == out->n_children;
  for (int64_t i = 0; same && i < r.n_rows; i++) {
    const char *name = wg_engine_rows_at(&r, i, 0);
    same = name != NULL && out->children[i]->name != NULL &&
           strcmp(name, out->children[i]->name) == 0;
  }
  for (int64_t i = 0; same && rc == 0 && i < r.n_rows; i++) {
    struct ArrowSchema *f = out->children[i];
    const char *nullable = wg_engine_rows_at(&r, i, 2);
    if (nullable != NULL && strcmp(nullable, "0") == 0) f->flags &= ~ARROW_FLAG_NULLABLE;
    else f->flags |= ARROW_FLAG_NULLABLE;
    struct column_facts k = {
        .catalog = wg_engine_rows_at(&r, i, 5),
        .schema_name = wg_engine_rows_at(&r, i, 6),
        .table = wg_engine_rows_at(&r, i, 7),
        .type_name = wg_engine_rows_at(&r, i, 1),
        .precision = number_or_none(wg_engine_rows_at(&r, i, 3)),
        .scale = number_or_none(wg_engine_rows_at(&r, i, 4)),
        .auto_increment = "0",
    };
    rc = set_facts(f, &k, err);
  }
  wg_engine_rows_reset(&r);
  if (rc != 0) wg_schema_release(out);
  return rc;
}

int wg__engine_describe_columns(duckdb_logical_type *types, idx_t n, struct ArrowSchema *schema,
                                struct wg_error *err) {
  if (schema == NULL || schema->release == NULL || (idx_t)schema->n_children != n) return 0;
  struct ArrowSchema own = {0};
  WG_RETURN_NOT_OK(wg_schema_deep_copy(schema, &own, err));
  int rc = 0;
  for (idx_t i = 0; i < n && rc == 0; i++) {
    if (types[i] == NULL) continue;
    char *name = wg__engine_type_name(types[i]);
    if (name == NULL) {
      rc = wg_error_set(err, ENOMEM, "out of memory for a type name");
      break;
    }
    bool dec = duckdb_get_type_id(types[i]) == DUCKDB_TYPE_DECIMAL;
    struct column_facts k = {
        .type_name = name,
        .precision = dec ? (int64_t)duckdb_decimal_width(types[i]) : -1,
        .scale = dec ? (int64_t)duckdb_decimal_scale(types[i]) : -1,
    };
    rc = set_facts(own.children[i], &k, err);
    free(name);
  }
  if (rc != 0) {
    wg_schema_release(&own);
    return rc;
  }
  wg_schema_release(schema);
  wg_schema_move(&own, schema);
  return 0;
}
