/* wigeon: all-or-nothing ingest of Arrow batches through DuckDB's appender (see engine.h), and
 * the SQL names of DuckDB types used in its messages and DDL.
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
#include "common/buf.h"
#include "common/sql.h"
#include "engine/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SLICE_ROWS 2048 /* DuckDB's vector size: duckdb_data_chunk_from_arrow's maximum */

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
  char *idem_key; /* recorded in the commit's transaction, NULL for none */
  /* Deferred (group commit): batches are kept here until wg_engine_ingest_commit_group or
   * wg_engine_ingest_stream appends them; no transaction is open meanwhile. */
  bool deferred;
  struct ArrowArray *pending;
  int64_t n_pending, cap_pending, pending_bytes;
};

/* ---------------------------------------------------------------------------------------------
 * Type names */

static int put(struct wg_buf *b, const char *s) {
  return wg_buf_append(b, s, (int64_t)strlen(s));
}

static const char *simple_name(duckdb_type t) {
  switch (t) {
  case DUCKDB_TYPE_BOOLEAN:
    return "BOOLEAN";
  case DUCKDB_TYPE_TINYINT:
    return "TINYINT";
  case DUCKDB_TYPE_SMALLINT:
    return "SMALLINT";
  case DUCKDB_TYPE_INTEGER:
    return "INTEGER";
  case DUCKDB_TYPE_BIGINT:
    return "BIGINT";
  case DUCKDB_TYPE_UTINYINT:
    return "UTINYINT";
  case DUCKDB_TYPE_USMALLINT:
    return "USMALLINT";
  case DUCKDB_TYPE_UINTEGER:
    return "UINTEGER";
  case DUCKDB_TYPE_UBIGINT:
    return "UBIGINT";
  case DUCKDB_TYPE_HUGEINT:
    return "HUGEINT";
  case DUCKDB_TYPE_UHUGEINT:
    return "UHUGEINT";
  case DUCKDB_TYPE_FLOAT:
    return "FLOAT";
  case DUCKDB_TYPE_DOUBLE:
    return "DOUBLE";
  case DUCKDB_TYPE_TIMESTAMP:
    return "TIMESTAMP";
  case DUCKDB_TYPE_TIMESTAMP_S:
    return "TIMESTAMP_S";
  case DUCKDB_TYPE_TIMESTAMP_MS:
    return "TIMESTAMP_MS";
  case DUCKDB_TYPE_TIMESTAMP_NS:
    return "TIMESTAMP_NS";
  case DUCKDB_TYPE_TIMESTAMP_TZ:
    return "TIMESTAMP WITH TIME ZONE";
  case DUCKDB_TYPE_DATE:
    return "DATE";
  case DUCKDB_TYPE_TIME:
    return "TIME";
  case DUCKDB_TYPE_TIME_NS:
    return "TIME_NS";
  case DUCKDB_TYPE_TIME_TZ:
    return "TIME WITH TIME ZONE";
  case DUCKDB_TYPE_INTERVAL:
    return "INTERVAL";
  case DUCKDB_TYPE_VARCHAR:
    return "VARCHAR";
  case DUCKDB_TYPE_BLOB:
    return "BLOB";
  case DUCKDB_TYPE_UUID:
    return "UUID";
  case DUCKDB_TYPE_BIT:
    return "BIT";
  case DUCKDB_TYPE_BIGNUM:
    return "BIGNUM";
  case DUCKDB_TYPE_SQLNULL:
    return "NULL";
  default:
    return NULL;
  }
}

static int type_name_into(duckdb_logical_type t, struct wg_buf *b, int depth) {
  if (depth > 64) return EINVAL;
  char *alias = duckdb_logical_type_get_alias(t);
  if (alias != NULL) {
    int rc = put(b, alias);
    duckdb_free(alias);
    return rc;
  }
  duckdb_type id = duckdb_get_type_id(t);
  const char *simple = simple_name(id);
  if (simple != NULL) return put(b, simple);
  char tmp[64];
  int rc = 0;
  switch (id) {
  case DUCKDB_TYPE_DECIMAL:
    snprintf(tmp, sizeof(tmp), "DECIMAL(%u,%u)", duckdb_decimal_width(t), duckdb_decimal_scale(t));
    return put(b, tmp);
  case DUCKDB_TYPE_ENUM: {
    rc = put(b, "ENUM(");
    uint32_t n = duckdb_enum_dictionary_size(t);
    for (uint32_t i = 0; i < n && rc == 0; i++) {
      char *v = duckdb_enum_dictionary_value(t, i);
      if (i > 0) rc = put(b, ", ");
      if (rc == 0) rc = wg_sql_append_literal(b, v ? v : "");
      duckdb_free(v);
    }
    return rc == 0 ? put(b, ")") : rc;
  }
  case DUCKDB_TYPE_LIST:
  case DUCKDB_TYPE_ARRAY: {
    duckdb_logical_type ch =
        id == DUCKDB_TYPE_LIST ? duckdb_list_type_child_type(t) : duckdb_array_type_child_type(t);
    rc = type_name_into(ch, b, depth + 1);
    duckdb_destroy_logical_type(&ch);
    if (rc != 0) return rc;
    if (id == DUCKDB_TYPE_LIST) return put(b, "[]");
    snprintf(tmp, sizeof(tmp), "[%llu]", (unsigned long long)duckdb_array_type_array_size(t));
    return put(b, tmp);
  }
  case DUCKDB_TYPE_MAP: {
    duckdb_logical_type k = duckdb_map_type_key_type(t), v = duckdb_map_type_value_type(t);
    rc = put(b, "MAP(");
    if (rc == 0) rc = type_name_into(k, b, depth + 1);
    if (rc == 0) rc = put(b, ", ");
    if (rc == 0) rc = type_name_into(v, b, depth + 1);
    if (rc == 0) rc = put(b, ")");
    duckdb_destroy_logical_type(&k);
    duckdb_destroy_logical_type(&v);
    return rc;
  }
  case DUCKDB_TYPE_STRUCT:
  case DUCKDB_TYPE_UNION: {
    bool is_struct = id == DUCKDB_TYPE_STRUCT;
    idx_t n = is_struct ? duckdb_struct_type_child_count(t) : duckdb_union_type_member_count(t);
    rc = put(b, is_struct ? "STRUCT(" : "UNION(");
    for (idx_t i = 0; i < n && rc == 0; i++) {
      char *name =
          is_struct ? duckdb_struct_type_child_name(t, i) : duckdb_union_type_member_name(t, i);
      duckdb_logical_type ch =
          is_struct ? duckdb_struct_type_child_type(t, i) : duckdb_union_type_member_type(t, i);
      if (i > 0) rc = put(b, ", ");
      if (rc == 0) rc = wg_sql_append_ident(b, name ? name : "");
      if (rc == 0) rc = put(b, " ");
      if (rc == 0) rc = type_name_into(ch, b, depth + 1);
      duckdb_free(name);
      duckdb_destroy_logical_type(&ch);
    }
    return rc == 0 ? put(b, ")") : rc;
  }
  default:
    snprintf(tmp, sizeof(tmp), "TYPE_%d", (int)id);
    return put(b, tmp);
  }
}

/* Whether an Arrow type is, or holds (children, dictionary values), an interval[day_time] ("tiD":
 * int32 days, int32 milliseconds). DuckDB 1.4.4's Arrow import reads that as one int64 count of
 * milliseconds (3 days 4 ms became 198 days 20:11:09.187), so such a put is refused rather than
 * stored wrong. */
static bool has_day_time_interval(const struct ArrowSchema *s, int depth) {
  if (s == NULL || depth > 64) return false;
  if (s->format != NULL && strcmp(s->format, "tiD") == 0) return true;
  for (int64_t i = 0; i < s->n_children; i++)
    if (has_day_time_interval(s->children[i], depth + 1)) return true;
  return has_day_time_interval(s->dictionary, depth + 1);
}

static int refuse_day_time_intervals(const struct ArrowSchema *schema, struct wg_error *err) {
  for (int64_t i = 0; i < schema->n_children; i++) {
    const struct ArrowSchema *f = schema->children[i];
    if (!has_day_time_interval(f, 0)) continue;
    const char *fmt = f->format ? f->format : "";
    bool nested = strcmp(fmt, "tiD") != 0;
    return wg_error_set(err, EINVAL,
                        "column \"%s\": Arrow interval[day_time]%s%s%s is not accepted: DuckDB "
                        "reads its days and milliseconds as one count of milliseconds; send "
                        "interval[month_day_nano] or a duration",
                        f->name ? f->name : "", nested ? " (inside Arrow type \"" : "",
                        nested ? fmt : "", nested ? "\")" : "");
  }
  return 0;
}

/* Whether a type is, or holds, DuckDB's NULL type (what the Arrow null type 'n' converts to):
 * it has no SQL name a table column can take ("NULL" does not parse in CREATE TABLE). */
static bool has_null_type(duckdb_logical_type t, int depth) {
  duckdb_type id = duckdb_get_type_id(t);
  if (id == DUCKDB_TYPE_SQLNULL) return true;
  if (depth > 64) return false;
  duckdb_logical_type ch[2] = {NULL, NULL};
  bool found = false;
  switch (id) {
  case DUCKDB_TYPE_LIST:
    ch[0] = duckdb_list_type_child_type(t);
    break;
  case DUCKDB_TYPE_ARRAY:
    ch[0] = duckdb_array_type_child_type(t);
    break;
  case DUCKDB_TYPE_MAP:
    ch[0] = duckdb_map_type_key_type(t);
    ch[1] = duckdb_map_type_value_type(t);
    break;
  case DUCKDB_TYPE_STRUCT:
  case DUCKDB_TYPE_UNION: {
    bool is_struct = id == DUCKDB_TYPE_STRUCT;
    idx_t n = is_struct ? duckdb_struct_type_child_count(t) : duckdb_union_type_member_count(t);
    for (idx_t i = 0; i < n && !found; i++) {
      duckdb_logical_type c =
          is_struct ? duckdb_struct_type_child_type(t, i) : duckdb_union_type_member_type(t, i);
      found = has_null_type(c, depth + 1);
      duckdb_destroy_logical_type(&c);
    }
    return found;
  }
  default:
    return false;
  }
  for (int i = 0; i < 2; i++) {
    if (ch[i] == NULL) continue;
    found = found || has_null_type(ch[i], depth + 1);
    duckdb_destroy_logical_type(&ch[i]);
  }
  return found;
}

/* The SQL name of a DuckDB type ("DECIMAL(18,3)", "STRUCT(\"a\" INTEGER[])"); malloc'ed, NULL on
 * ENOMEM. */
char *wg__engine_type_name(duckdb_logical_type t) {
  struct wg_buf b;
  wg_buf_init(&b);
  if (type_name_into(t, &b, 0) != 0 || wg_buf_append(&b, "", 1) != 0) {
    wg_buf_reset(&b);
    return NULL;
  }
  return (char *)wg_buf_detach(&b);
}

/* ---------------------------------------------------------------------------------------------
 * Type compatibility: the table's type, or a lossless widening of it. */

static bool int_info(duckdb_type t, int *bits, bool *is_signed) {
  switch (t) {
  case DUCKDB_TYPE_TINYINT:
    *bits = 8, *is_signed = true;
    return true;
  case DUCKDB_TYPE_SMALLINT:
    *bits = 16, *is_signed = true;
    return true;
  case DUCKDB_TYPE_INTEGER:
    *bits = 32, *is_signed = true;
    return true;
  case DUCKDB_TYPE_BIGINT:
    *bits = 64, *is_signed = true;
    return true;
  case DUCKDB_TYPE_HUGEINT:
    *bits = 128, *is_signed = true;
    return true;
  case DUCKDB_TYPE_UTINYINT:
    *bits = 8, *is_signed = false;
    return true;
  case DUCKDB_TYPE_USMALLINT:
    *bits = 16, *is_signed = false;
    return true;
  case DUCKDB_TYPE_UINTEGER:
    *bits = 32, *is_signed = false;
    return true;
  case DUCKDB_TYPE_UBIGINT:
    *bits = 64, *is_signed = false;
    return true;
  case DUCKDB_TYPE_UHUGEINT:
    *bits = 128, *is_signed = false;
    return true;
  default:
    return false;
  }
}

/* Decimal digits needed for every value of an integer type. */
static int int_digits(int bits, bool is_signed) {
  switch (bits) {
  case 8:
    return 3;
  case 16:
    return 5;
  case 32:
    return 10;
  case 64:
    return is_signed ? 19 : 20;
  default:
    return 39;
  }
}

static bool is_timestamp(duckdb_type t) {
  return t == DUCKDB_TYPE_TIMESTAMP || t == DUCKDB_TYPE_TIMESTAMP_S ||
         t == DUCKDB_TYPE_TIMESTAMP_MS || t == DUCKDB_TYPE_TIMESTAMP_NS ||
         t == DUCKDB_TYPE_TIMESTAMP_TZ;
}

/* Whether a column of type `table` takes values of type `in` without loss: the same SQL type
 * name; integer to a wider integer (unsigned to signed only when strictly wider, signed never to
 * unsigned); integers of up to 32 bits to DOUBLE and up to 16 bits to FLOAT (exact in the
 * mantissa; BIGINT -> DOUBLE is refused as lossy); FLOAT to DOUBLE; integer to a DECIMAL with
 * enough integer digits; DECIMAL to a DECIMAL with at least the scale and integer digits; any
 * TIMESTAMP variant (s, ms, us, ns, with time zone) to any other. */
static bool type_accepts(duckdb_logical_type table, duckdb_logical_type in, const char *table_name,
                         const char *in_name) {
  if (strcmp(table_name, in_name) == 0) return true;
  duckdb_type t = duckdb_get_type_id(table), s = duckdb_get_type_id(in);
  int tb, sb;
  bool ts, ss;
  bool t_int = int_info(t, &tb, &ts), s_int = int_info(s, &sb, &ss);
  if (t_int && s_int) return ts ? (ss ? tb >= sb : tb > sb) : (!ss && tb >= sb);
  if (s_int && t == DUCKDB_TYPE_DOUBLE) return sb <= 32; /* exact in a 53-bit mantissa */
  if (s_int && t == DUCKDB_TYPE_FLOAT) return sb <= 16;  /* exact in a 24-bit mantissa */
  if (s == DUCKDB_TYPE_FLOAT && t == DUCKDB_TYPE_DOUBLE) return true;
  if (s_int && t == DUCKDB_TYPE_DECIMAL)
    return duckdb_decimal_width(table) - duckdb_decimal_scale(table) >= int_digits(sb, ss);
  if (s == DUCKDB_TYPE_DECIMAL && t == DUCKDB_TYPE_DECIMAL) {
    int w1 = duckdb_decimal_width(in), s1 = duckdb_decimal_scale(in);
    int w2 = duckdb_decimal_width(table), s2 = duckdb_decimal_scale(table);
    return s2 >= s1 && w2 - s2 >= w1 - s1;
  }
  if (is_timestamp(s) && is_timestamp(t)) return true;
  return false;
}

/* ---------------------------------------------------------------------------------------------
 * Begin, append, commit, abort */

/* ECANCELED once the connection was interrupted (its call was cancelled): checked between the
 * expensive steps of a wide put, which DuckDB's own interrupt reaches only inside a statement. */
static int check_interrupted(const struct wg_engine_conn *c, struct wg_error *err) {
  if (c != NULL && atomic_load(&((struct wg_engine_conn *)c)->interrupted))
    return wg_error_set(err, ECANCELED, "put interrupted: its call was cancelled");
  return 0;
}

struct columns {
  idx_t n;
  char **names;               /* duckdb_free'd */
  duckdb_logical_type *types; /* destroyed */
};

static void columns_reset(struct columns *cols) {
  for (idx_t i = 0; i < cols->n; i++) {
    if (cols->names) duckdb_free(cols->names[i]);
    if (cols->types && cols->types[i]) duckdb_destroy_logical_type(&cols->types[i]);
  }
  free(cols->names);
  free(cols->types);
  memset(cols, 0, sizeof(*cols));
}

static int columns_alloc(struct columns *cols, idx_t n) {
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
static int table_columns(struct wg_engine_conn *c, const char *qualified, struct columns *cols,
                         struct wg_error *err) {
  struct wg_buf sql;
  wg_buf_init(&sql);
  int rc = put(&sql, "SELECT * FROM ");
  if (rc == 0) rc = put(&sql, qualified);
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
  if (rc == 0 && columns_alloc(cols, n) != 0) rc = wg_error_set(err, ENOMEM, "out of memory");
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
static int check_base_table(struct wg_engine_conn *c, const char *schema_name, const char *table,
                            struct wg_error *err) {
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

/* After DuckDB refused the ingest schema or its empty batch with `err`: converts each column
 * alone (schema, then an empty batch, as ingest does) and, at the first one DuckDB refuses,
 * rewrites err to name that column and its Arrow type. DuckDB's own message names neither
 * ("Unsupported Internal Arrow Type e"). Leaves err when every column alone converts. Error
 * path only; returns rc. */
static int name_refused_column(duckdb_connection conn, const struct ArrowSchema *schema, int rc,
                               struct wg_error *err) {
  for (int64_t i = 0; i < schema->n_children; i++) {
    struct ArrowSchema one;
    struct wg_error why = {{0}};
    if (wg_schema_node_init(&one, "+s", 1, NULL) != 0) return rc;
    if (wg_schema_deep_copy(schema->children[i], one.children[0], NULL) != 0) {
      wg_schema_release(&one);
      return rc;
    }
    duckdb_arrow_converted_schema conv = NULL;
    duckdb_error_data ed = duckdb_schema_from_arrow(conn, &one, &conv);
    int bad = wg__engine_take_error_data(&ed, &why);
    struct ArrowArray empty;
    if (bad == 0 && wg_arrow_concat(&one, NULL, 0, &empty, NULL) == 0) {
      duckdb_data_chunk chunk = NULL;
      ed = duckdb_data_chunk_from_arrow(conn, &empty, conv, &chunk);
      bad = wg__engine_take_error_data(&ed, &why);
      wg_array_release(&empty);
      if (chunk != NULL) duckdb_destroy_data_chunk(&chunk);
    }
    if (conv != NULL) duckdb_destroy_arrow_converted_schema(&conv);
    wg_schema_release(&one);
    if (bad != 0) {
      char type[160];
      const char *name = schema->children[i]->name ? schema->children[i]->name : "";
      return wg_error_set(err, EINVAL, "column \"%s\": DuckDB cannot store Arrow type %s (%s)",
                          name, wg_arrow_schema_describe(schema->children[i], type, sizeof(type)),
                          why.message);
    }
  }
  return rc;
}

/* The DuckDB types the stream's batches convert to: an empty array of the schema through
 * duckdb_data_chunk_from_arrow. */
static int incoming_columns(struct wg_engine_ingest *ing, const struct ArrowSchema *schema,
                            struct columns *cols, struct wg_error *err) {
  struct ArrowArray empty;
  WG_RETURN_NOT_OK(wg_arrow_concat(schema, NULL, 0, &empty, err));
  duckdb_data_chunk chunk = NULL;
  duckdb_error_data ed = duckdb_data_chunk_from_arrow(ing->c->conn, &empty, ing->converted, &chunk);
  int rc = wg__engine_take_error_data(&ed, err);
  if (empty.release != NULL) empty.release(&empty);
  if (rc != 0) {
    wg_error_prefix(err, rc, "converting the ingest schema");
    return name_refused_column(ing->c->conn, schema, rc, err);
  }
  idx_t n = duckdb_data_chunk_get_column_count(chunk);
  if ((int64_t)n != schema->n_children)
    rc = wg_error_set(err, EIO, "DuckDB made %llu columns of %lld fields", (unsigned long long)n,
                      (long long)schema->n_children);
  if (rc == 0 && columns_alloc(cols, n) != 0) rc = wg_error_set(err, ENOMEM, "out of memory");
  for (idx_t i = 0; i < n && rc == 0; i++) {
    const char *name = schema->children[i]->name ? schema->children[i]->name : "";
    cols->names[i] = duckdb_malloc(strlen(name) + 1);
    if (cols->names[i] == NULL) {
      rc = wg_error_set(err, ENOMEM, "out of memory");
      break;
    }
    strcpy(cols->names[i], name);
    cols->types[i] = duckdb_vector_get_column_type(duckdb_data_chunk_get_vector(chunk, i));
    if (has_null_type(cols->types[i], 0)) { /* refused alike for a new table and an old one */
      const char *f = schema->children[i]->format ? schema->children[i]->format : "";
      bool nested = strcmp(f, "n") != 0;
      rc = wg_error_set(err, EINVAL,
                        "column \"%s\": the Arrow null type%s%s%s has no DuckDB column type; "
                        "send a typed column (e.g. int32 or utf8 with every value null)",
                        name, nested ? " (inside Arrow type \"" : "", nested ? f : "",
                        nested ? "\")" : "");
    }
  }
  duckdb_destroy_data_chunk(&chunk);
  return rc;
}

static int create_table(struct wg_engine_conn *c, const char *qualified, const struct columns *in,
                        struct wg_error *err) {
  struct wg_buf sql;
  wg_buf_init(&sql);
  int rc = put(&sql, "CREATE TABLE IF NOT EXISTS ");
  if (rc == 0) rc = put(&sql, qualified);
  if (rc == 0) rc = put(&sql, " (");
  for (idx_t i = 0; i < in->n && rc == 0; i++) {
    char *tn = wg__engine_type_name(in->types[i]);
    if (i > 0) rc = put(&sql, ", ");
    if (rc == 0) rc = wg_sql_append_ident(&sql, in->names[i]);
    if (rc == 0) rc = put(&sql, " ");
    if (rc == 0) rc = tn ? put(&sql, tn) : ENOMEM;
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

static int name_index_build(struct name_index *ix, const struct columns *tc) {
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
static idx_t name_index_find(const struct name_index *ix, const struct columns *tc,
                             const char *name) {
  for (uint64_t h = name_hash(name) & ix->mask; ix->slots[h] != 0; h = (h + 1) & ix->mask) {
    idx_t k = (idx_t)(ix->slots[h] - 1);
    if (strcasecmp(tc->names[k], name) == 0) return k;
  }
  return tc->n;
}

/* Checks every incoming column against the table and records the table column it goes to, and
 * whether the stream carries exactly the table's columns in the table's order (then the appender
 * needs no column list: duckdb_appender_add_column rebuilds its chunk each time, quadratic in the
 * column count). Linear: the usual case (same position) costs one comparison, others a hash
 * lookup; a column appearing twice is a table column taken twice (table names are unique). */
static int match_columns(struct wg_engine_ingest *ing, const char *table, const struct columns *tc,
                         const struct columns *in, struct wg_error *err) {
  struct name_index ix = {0, NULL};
  uint8_t *taken = calloc(tc->n ? tc->n : 1, 1);
  if (taken == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  bool in_order = in->n == tc->n;
  int rc = 0;
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
                        in->names[i], table);
      break;
    }
    if (taken[k]) {
      rc = wg_error_set(err, EINVAL, "column \"%s\" appears twice in the stream", in->names[i]);
      break;
    }
    taken[k] = 1;
    char *tn = wg__engine_type_name(tc->types[k]), *sn = wg__engine_type_name(in->types[i]);
    if (tn == NULL || sn == NULL)
      rc = wg_error_set(err, ENOMEM, "out of memory");
    else if (!type_accepts(tc->types[k], in->types[i], tn, sn))
      rc = wg_error_set(err, EINVAL, "column \"%s\": table has %s, stream has %s", in->names[i], tn,
                        sn);
    free(tn);
    free(sn);
    if (rc == 0 && (ing->cols[i] = strdup(tc->names[k])) == NULL)
      rc = wg_error_set(err, ENOMEM, "out of memory");
  }
  free(ix.slots);
  free(taken);
  ing->whole_table = rc == 0 && in_order;
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
  int rc = wg__engine_take_error_data(&ed, err);
  wg_array_release(&empty);
  if (rc != 0) return wg_error_prefix(err, rc, "converting the ingest schema");
  idx_t n = duckdb_data_chunk_get_column_count(chunk);
  duckdb_logical_type *types = calloc(n ? n : 1, sizeof(*types));
  char *qualified = wg__engine_qualified(ing->schema_name, ing->table);
  struct wg_buf sql;
  wg_buf_init(&sql);
  if (types == NULL || qualified == NULL || n != (idx_t)ing->n_columns) rc = ENOMEM;
  if (rc == 0) rc = put(&sql, "INSERT INTO ");
  if (rc == 0) rc = put(&sql, qualified);
  if (rc == 0) rc = put(&sql, " (");
  for (idx_t i = 0; i < n && rc == 0; i++) {
    types[i] = duckdb_vector_get_column_type(duckdb_data_chunk_get_vector(chunk, i));
    if (i > 0) rc = put(&sql, ", ");
    if (rc == 0) rc = wg_sql_append_ident(&sql, ing->cols[i]);
  }
  if (rc == 0) rc = put(&sql, ") SELECT * FROM appended_data");
  if (rc == 0) rc = wg_buf_append(&sql, "", 1);
  if (rc != 0) {
    rc = wg_error_set(err, ENOMEM, "out of memory for an appender");
  } else if (duckdb_appender_create_query(conn, (const char *)sql.data, n, types, NULL, NULL,
                                          out) != DuckDBSuccess) {
    ed = duckdb_appender_error_data(*out);
    rc = wg__engine_take_error_data(&ed, err);
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
static int open_appender(const struct wg_engine_ingest *ing, duckdb_connection conn,
                         duckdb_appender *out, struct wg_error *err) {
  if (!ing->whole_table && ing->n_columns > LIST_COLUMNS_MAX)
    return open_insert_appender(ing, conn, out, err);
  int rc = 0;
  duckdb_appender app = NULL;
  if (duckdb_appender_create_ext(conn, NULL, ing->schema_name, ing->table, &app) != DuckDBSuccess) {
    duckdb_error_data ed = duckdb_appender_error_data(app);
    rc = wg__engine_take_error_data(&ed, err);
    if (rc == 0) rc = wg_error_set(err, EIO, "cannot create an appender for %s", ing->table);
  }
  /* All the table's columns in order: the default column list is the incoming one (checked, in
   * case the table has columns the appender does not take, as generated ones). */
  bool whole = rc == 0 && ing->whole_table &&
               duckdb_appender_column_count(app) == (idx_t)ing->n_columns;
  for (int64_t i = 0; i < ing->n_columns && rc == 0 && !whole; i++) {
    if (duckdb_appender_add_column(app, ing->cols[i]) != DuckDBSuccess) {
      duckdb_error_data ed = duckdb_appender_error_data(app);
      rc = wg__engine_take_error_data(&ed, err);
      if (rc == 0) rc = wg_error_set(err, EIO, "appender refused column \"%s\"", ing->cols[i]);
    }
  }
  if (rc != 0 && app != NULL) duckdb_appender_destroy(&app);
  *out = rc == 0 ? app : NULL;
  return rc;
}

/* Whether two ingests append to the same table's same columns, in the same order: then one
 * appender takes both. */
static bool same_target(const struct wg_engine_ingest *a, const struct wg_engine_ingest *b) {
  if (a->key == NULL || b->key == NULL || strcmp(a->key, b->key) != 0) return false;
  if (a->n_columns != b->n_columns) return false;
  for (int64_t i = 0; i < a->n_columns; i++)
    if (strcmp(a->cols[i], b->cols[i]) != 0) return false;
  return true;
}

/* ---------------------------------------------------------------------------------------------
 * Ingest plans: what begin works out for one (table, Arrow schema) pair (the table column of each
 * incoming column, after the type checks), kept in the engine while no statement that may change
 * a table has run since (engine->ddl_epoch). A put of a known shape then costs no catalog query:
 * the per-put lookups (two prepares and a conversion) were a sixth of a small put's CPU. */

#define MAX_PLANS 64

struct wg__ingest_plan {
  char *key;      /* table_key */
  uint8_t *shape; /* wg_schema_fingerprint of the stream's schema */
  int64_t shape_size;
  uint64_t epoch; /* engine->ddl_epoch read before the lookups it came from */
  int64_t n_columns;
  char **cols;
  bool whole_table;
};

static void plan_reset(struct wg__ingest_plan *p) {
  free(p->key);
  free(p->shape);
  for (int64_t i = 0; p->cols != NULL && i < p->n_columns; i++)
    free(p->cols[i]);
  free(p->cols);
  memset(p, 0, sizeof(*p));
}

void wg__engine_plans_free(struct wg_engine *e) {
  for (int i = 0; i < e->n_plans; i++)
    plan_reset(&e->plans[i]);
  free(e->plans);
  e->plans = NULL;
  e->n_plans = 0;
}

/* Whether entry p is the one for (key, shape); empty entries have no key. */
static bool same_plan(const struct wg__ingest_plan *p, const char *key,
                      const struct wg_buf *shape) {
  return p->key != NULL && p->shape_size == shape->size && strcmp(p->key, key) == 0 &&
         memcmp(p->shape, shape->data, (size_t)shape->size) == 0;
}

/* Copies a current plan's columns into ing->cols; false when there is none. Current means made
 * in the epoch that is current now, not when this put began: a table changed since then retires
 * the plans made before the change. */
static bool plan_find(struct wg_engine *e, const char *key, const struct wg_buf *shape,
                      struct wg_engine_ingest *ing) {
  bool found = false;
  pthread_mutex_lock(&e->plan_mu);
  uint64_t epoch = atomic_load(&e->ddl_epoch);
  for (int i = 0; i < e->n_plans; i++) {
    struct wg__ingest_plan *p = &e->plans[i];
    if (!same_plan(p, key, shape) || p->epoch != epoch || p->n_columns != ing->n_columns) continue;
    found = true;
    ing->whole_table = p->whole_table;
    for (int64_t j = 0; j < p->n_columns && found; j++) {
      if ((ing->cols[j] = strdup(p->cols[j])) == NULL) found = false;
    }
    break; /* a pair has one entry at most */
  }
  pthread_mutex_unlock(&e->plan_mu);
  return found;
}

/* Remembers ing's columns for (key, shape) as of `epoch`, replacing the entry of the same pair, or
 * else an outdated or empty one, or else one picked by the key's hash. Kept only if no table
 * changed since `epoch`. Best effort: without memory, nothing is kept. */
static void plan_keep(struct wg_engine *e, const char *key, struct wg_buf *shape, uint64_t epoch,
                      const struct wg_engine_ingest *ing) {
  struct wg__ingest_plan p = {0};
  p.key = strdup(key);
  p.shape = malloc((size_t)(shape->size > 0 ? shape->size : 1));
  p.cols = calloc((size_t)(ing->n_columns > 0 ? ing->n_columns : 1), sizeof(char *));
  p.n_columns = ing->n_columns;
  p.whole_table = ing->whole_table;
  p.shape_size = shape->size;
  p.epoch = epoch;
  bool ok = p.key != NULL && p.shape != NULL && p.cols != NULL;
  if (ok) memcpy(p.shape, shape->data, (size_t)shape->size);
  for (int64_t i = 0; i < p.n_columns && ok; i++)
    ok = (p.cols[i] = strdup(ing->cols[i])) != NULL;
  pthread_mutex_lock(&e->plan_mu);
  if (ok && epoch != atomic_load(&e->ddl_epoch)) ok = false; /* a table may have changed */
  if (ok && e->plans == NULL && (e->plans = calloc(MAX_PLANS, sizeof(*e->plans))) == NULL)
    ok = false;
  int slot = -1;
  for (int i = 0; ok && i < e->n_plans && slot < 0; i++)
    if (same_plan(&e->plans[i], key, shape)) slot = i;
  for (int i = 0; ok && i < e->n_plans && slot < 0; i++)
    if (e->plans[i].epoch != epoch) slot = i; /* outdated or empty */
  if (ok && slot < 0) {
    uint32_t h = 2166136261u; /* FNV-1a of the key: which full slot to replace */
    for (const char *c = key; *c; c++)
      h = (h ^ (uint8_t)*c) * 16777619u;
    slot = e->n_plans < MAX_PLANS ? e->n_plans++ : (int)(h % MAX_PLANS);
  }
  if (ok) {
    plan_reset(&e->plans[slot]);
    e->plans[slot] = p;
  }
  pthread_mutex_unlock(&e->plan_mu);
  if (!ok) plan_reset(&p);
}

/* Counts ingests open on a table (delta +1 / -1), under engine->create_mu; returns the count. */
static int open_table_ref(struct wg_engine *e, const char *key, int delta) {
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
static char *table_key(const char *schema_name, const char *table) {
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
static void drop_if_created(struct wg_engine_conn *c, struct wg_engine_ingest *ing) {
  if (ing->created == NULL) return;
  pthread_mutex_lock(&c->engine->create_mu);
  bool others = ing->key != NULL && open_table_ref(c->engine, ing->key, 0) > 1;
  pthread_mutex_unlock(&c->engine->create_mu);
  if (others) return;
  struct wg_buf sql;
  wg_buf_init(&sql);
  duckdb_result r;
  if (put(&sql, "SELECT count(*) FROM ") == 0 && put(&sql, ing->created) == 0 &&
      wg_buf_append(&sql, "", 1) == 0 &&
      duckdb_query(c->conn, (const char *)sql.data, &r) == DuckDBSuccess) {
    int64_t n = duckdb_value_int64(&r, 0, 0);
    duckdb_destroy_result(&r);
    sql.size = 0;
    if (n == 0 && put(&sql, "DROP TABLE IF EXISTS ") == 0 && put(&sql, ing->created) == 0 &&
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

static void ingest_free(struct wg_engine_ingest *ing) {
  if (ing->key != NULL && ing->engine != NULL) {
    pthread_mutex_lock(&ing->engine->create_mu);
    open_table_ref(ing->engine, ing->key, -1);
    pthread_mutex_unlock(&ing->engine->create_mu);
  }
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
  WG_RETURN_NOT_OK(wg__engine_exec(c, "BEGIN TRANSACTION", err));
  *in_txn = true;
  c->txn_maybe = true;
  return 0;
}

/* Works out ing->cols the long way: the incoming DuckDB types, the table (created when
 * missing), the type checks. For a streaming ingest, also opens its transaction (*in_txn). */
static int plan_columns(struct wg_engine_ingest *ing, const char *qualified,
                        const struct ArrowSchema *schema, bool *in_txn, struct wg_error *err) {
  struct wg_engine_conn *c = ing->c;
  struct columns tc = {0}, in = {0};
  int rc = incoming_columns(ing, schema, &in, err);
  if (rc != 0) goto done;

  /* A missing table is created in its own short transaction, one creator at a time: two puts that
   * create the same table inside their data transactions would conflict, and one would fail. If
   * this ingest then fails, the table it created is dropped again (when still empty). The table's
   * columns are read once when it exists: inside the ingest's own transaction when it streams,
   * then no concurrent change can slip in between (a wide table's read costs ~15 us a column). */
  struct wg_error lookup;
  bool have = false; /* tc is as this ingest's transaction (or, deferred, the catalog now) sees it */
  if (!ing->deferred) rc = begin_transaction(c, in_txn, err);
  if (rc == 0) rc = check_interrupted(c, err);
  if (rc != 0) goto done;
  rc = table_columns(c, qualified, &tc, &lookup);
  if (rc == 0) {
    have = true;
  } else if (rc == ENOENT) {
    if (*in_txn) { /* the failed lookup ended it; the table is created outside of it */
      wg__engine_exec(c, "ROLLBACK", NULL);
      *in_txn = false;
      c->txn_maybe = false;
    }
    pthread_mutex_lock(&c->engine->create_mu);
    rc = table_columns(c, qualified, &tc, &lookup);
    if (rc == ENOENT) {
      rc = check_interrupted(c, err);
      if (rc == 0) rc = create_table(c, qualified, &in, err);
      wg__engine_tables_may_change(c->engine);
      if (rc == 0 && (ing->created = strdup(qualified)) == NULL)
        rc = wg_error_set(err, ENOMEM, "out of memory");
    } else if (rc == 0) {
      have = ing->deferred;
    } else {
      *err = lookup;
    }
    pthread_mutex_unlock(&c->engine->create_mu);
  } else {
    *err = lookup;
  }
  if (rc == 0 && ing->created == NULL) rc = check_base_table(c, ing->schema_name, ing->table, err);
  if (rc == 0 && !ing->deferred && !*in_txn) rc = begin_transaction(c, in_txn, err);
  if (rc == 0 && !have) {
    columns_reset(&tc);
    rc = table_columns(c, qualified, &tc, err);
  }
  if (rc == 0) rc = match_columns(ing, ing->table, &tc, &in, err);
done:
  columns_reset(&tc);
  columns_reset(&in);
  return rc;
}

static int ingest_begin(struct wg_engine_conn *c, const char *schema_name, const char *table,
                        const struct ArrowSchema *schema, bool deferred,
                        struct wg_engine_ingest **out, struct wg_error *err) {
  *out = NULL;
  if (c == NULL || table == NULL || schema == NULL || schema->release == NULL)
    return wg_error_set(err, EINVAL, "ingest: NULL connection, table or schema");
  if (schema->format == NULL || strcmp(schema->format, "+s") != 0)
    return wg_error_set(err, EINVAL, "ingest: schema is not a struct (format \"%s\")",
                        schema->format ? schema->format : "(null)");
  WG_RETURN_NOT_OK(refuse_day_time_intervals(schema, err));
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
  ing->key = table_key(schema_name, table);
  if (ing->key != NULL) {
    pthread_mutex_lock(&e->create_mu);
    if (open_table_ref(e, ing->key, +1) < 0) {
      free(ing->key);
      ing->key = NULL;
    }
    pthread_mutex_unlock(&e->create_mu);
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
  rc = wg__engine_take_error_data(&ed, err);
  if (rc != 0) {
    wg_error_prefix(err, rc, "ingest schema");
    name_refused_column(c->conn, schema, rc, err);
    goto fail;
  }
  bool planned = ing->key != NULL && wg_schema_fingerprint(schema, &shape) == 0 &&
                 plan_find(e, ing->key, &shape, ing);
  if (!planned) {
    for (int64_t i = 0; i < ing->n_columns; i++) { /* a partial copy from plan_find */
      free(ing->cols[i]);
      ing->cols[i] = NULL;
    }
    rc = plan_columns(ing, qualified, schema, &in_txn, err);
    if (rc != 0) goto fail;
    if (ing->key != NULL && shape.size > 0) plan_keep(e, ing->key, &shape, epoch, ing);
  } else if (!deferred) {
    rc = wg__engine_exec(c, "BEGIN TRANSACTION", err);
    if (rc != 0) goto fail;
    in_txn = true;
    c->txn_maybe = true;
  }
  if (!deferred) rc = open_appender(ing, c->conn, &ing->appender, err);
  if (rc != 0) goto fail;
  wg_buf_reset(&shape);
  wg_schema_release(&copy);
  free(qualified);
  *out = ing;
  return 0;
fail:
  if (in_txn) {
    wg__engine_exec(c, "ROLLBACK", NULL);
    c->txn_maybe = false;
  }
  if (ing != NULL) {
    drop_if_created(c, ing);
    ingest_free(ing);
  }
  wg_buf_reset(&shape);
  wg_schema_release(&copy);
  free(qualified);
  return rc;
}

int wg_engine_ingest_begin(struct wg_engine_conn *c, const char *schema_name, const char *table,
                           const struct ArrowSchema *schema, struct wg_engine_ingest **out,
                           struct wg_error *err) {
  return ingest_begin(c, schema_name, table, schema, false, out, err);
}

int wg_engine_ingest_begin_deferred(struct wg_engine_conn *c, const char *schema_name,
                                    const char *table, const struct ArrowSchema *schema,
                                    struct wg_engine_ingest **out, struct wg_error *err) {
  return ingest_begin(c, schema_name, table, schema, true, out, err);
}

static int appender_error(duckdb_appender app, struct wg_error *err, const char *what) {
  duckdb_error_data ed = duckdb_appender_error_data(app);
  int rc = wg__engine_take_error_data(&ed, err);
  return rc != 0 ? rc : wg_error_set(err, EIO, "%s failed", what);
}

/* Appends one batch (consumed) of `ing` through `app`, converting on `conn`; stops between slices
 * once `watch` (may be NULL) is interrupted. */
static int append_batch(struct wg_engine_ingest *ing, const struct wg_engine_conn *watch,
                        duckdb_connection conn, duckdb_appender app, struct ArrowArray *batch,
                        struct wg_error *err) {
  int64_t length = batch->length;
  struct wg__slice_owner *owner = wg__slice_owner_create(batch);
  if (owner == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  int rc = 0;
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
    rc = wg__engine_take_error_data(&ed, err);
    wg_array_release(&slice); /* if DuckDB did not take it */
    if (rc == 0 && duckdb_append_data_chunk(app, chunk) != DuckDBSuccess)
      rc = appender_error(app, err, "append");
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
static int append_pending(struct wg_engine_ingest *ing, const struct wg_engine_conn *watch,
                          duckdb_connection conn, duckdb_appender app, bool consume,
                          struct wg_error *err) {
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
  int rc = wg__engine_exec(c, "BEGIN TRANSACTION", err);
  if (rc == 0) {
    c->txn_maybe = true;
    ing->deferred = false;
    rc = open_appender(ing, c->conn, &ing->appender, err);
  }
  if (rc == 0) rc = append_pending(ing, c, c->conn, ing->appender, true, err);
  for (int64_t i = 0; i < ing->n_pending; i++)
    wg_array_release(&ing->pending[i]);
  ing->n_pending = 0;
  if (rc != 0) ing->failed = rc;
  return rc;
}

/* One transaction for a whole group: BEGIN, every put's batches, COMMIT. Puts into the same table
 * and columns share one appender (one flush: DuckDB runs an insert plan per flush). */
static int commit_together(struct wg_engine_conn *c, struct wg_engine_ingest **ings, int64_t n,
                           bool consume, struct wg_error *err) {
  WG_RETURN_NOT_OK(wg__engine_exec(c, "BEGIN TRANSACTION", err));
  int rc = 0;
  uint8_t stack_done[64];
  uint8_t *done = n <= 64 ? stack_done : calloc((size_t)n, 1);
  if (done == NULL) rc = wg_error_set(err, ENOMEM, "out of memory");
  if (done == stack_done) memset(done, 0, sizeof(stack_done));
  for (int64_t i = 0; i < n && rc == 0; i++) {
    if (done[i]) continue;
    duckdb_appender app = NULL;
    int64_t failed_at = i;
    rc = open_appender(ings[i], c->conn, &app, err);
    for (int64_t j = i; j < n && rc == 0; j++) {
      if (done[j] || (j > i && !same_target(ings[i], ings[j]))) continue;
      done[j] = 1;
      failed_at = j;
      rc = append_pending(ings[j], NULL, c->conn, app, consume, err);
    }
    if (rc == 0 && duckdb_appender_flush(app) != DuckDBSuccess)
      rc = appender_error(app, err, "flush");
    if (app != NULL) duckdb_appender_destroy(&app);
    if (rc != 0) wg_error_prefix(err, rc, "table %s", ings[failed_at]->table);
  }
  if (done != stack_done) free(done);
  for (int64_t i = 0; i < n && rc == 0; i++) {
    if (ings[i]->idem_key != NULL)
      rc = wg__engine_put_key_record(c, ings[i]->idem_key, ings[i]->rows, ings[i]->schema_name,
                                     ings[i]->table, err);
  }
  if (rc == 0) {
    rc = wg_engine_fatal(c->engine, err);
    if (rc == 0) {
      rc = wg__engine_exec(c, "COMMIT", err);
      wg__engine_note_failure(c->engine, rc, true, err);
    }
  }
  if (rc != 0) wg__engine_exec(c, "ROLLBACK", NULL);
  return rc;
}

void wg_engine_ingest_commit_group(struct wg_engine_conn *c, struct wg_engine_ingest **ings,
                                   int64_t n, int *status, int64_t *rows, struct wg_error *errs) {
  int64_t live = 0;
  for (int64_t i = 0; i < n; i++) { /* failed ones drop out at once */
    rows[i] = 0;
    status[i] = ings[i]->failed;
    if (status[i] != 0) {
      wg_error_set(&errs[i], status[i], "put failed before its commit");
      drop_if_created(c, ings[i]);
      ingest_free(ings[i]);
    } else {
      ings[live++] = ings[i];
    }
  }
  struct wg_error group_err;
  int rc = live > 0 ? commit_together(c, ings, live, live == 1, &group_err) : 0;
  if (rc == 0) {
    for (int64_t i = 0, j = 0; i < n; i++) {
      if (status[i] != 0) continue;
      rows[i] = ings[j]->rows;
      ingest_free(ings[j++]);
    }
    return;
  }
  /* The group failed: each put alone, so that one bad put fails only itself. */
  for (int64_t i = 0, j = 0; i < n; i++) {
    if (status[i] != 0) continue;
    struct wg_engine_ingest *ing = ings[j++];
    if (live == 1) {
      status[i] = rc;
      errs[i] = group_err;
    } else {
      status[i] = commit_together(c, &ing, 1, true, &errs[i]);
    }
    if (status[i] == 0)
      rows[i] = ing->rows;
    else
      drop_if_created(c, ing);
    ingest_free(ing);
  }
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
    rc = appender_error(ing->appender, err, "flush");
  if (rc == 0) {
    duckdb_appender_destroy(&ing->appender);
    ing->appender = NULL;
    if (ing->idem_key != NULL)
      rc = wg__engine_put_key_record(ing->c, ing->idem_key, ing->rows, ing->schema_name,
                                     ing->table, err);
  }
  if (rc == 0) rc = wg_engine_fatal(ing->engine, err);
  if (rc == 0) {
    rc = wg__engine_exec(ing->c, "COMMIT", err);
    wg__engine_note_failure(ing->engine, rc, true, err);
  }
  if (rc != 0) { /* commit consumes the ingest either way */
    wg_engine_ingest_abort(ing);
    return rc;
  }
  ing->c->txn_maybe = false;
  if (rows != NULL) *rows = ing->rows;
  ingest_free(ing);
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
  wg__engine_exec(c, "ROLLBACK", NULL);
  c->txn_maybe = false;
  drop_if_created(c, ing);
  ingest_free(ing);
}
