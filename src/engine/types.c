/* wigeon: DuckDB types on the ingest path: their SQL names (messages and CREATE TABLE), the Arrow
 * types refused before they reach DuckDB (interval[day_time], the null type), naming the column
 * DuckDB cannot store, and the widening rules (which incoming type a table column takes).
 * Pure functions over DuckDB logical types; no engine state. */
#include "arrow/array.h"
#include "arrow/concat.h"
#include "arrow/format.h"
#include "common/sql.h"
#include "common/text.h"
#include "engine/ingest_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    int rc = wg__put(b, alias);
    duckdb_free(alias);
    return rc;
  }
  duckdb_type id = duckdb_get_type_id(t);
  const char *simple = simple_name(id);
  if (simple != NULL) return wg__put(b, simple);
  char tmp[64];
  int rc = 0;
  switch (id) {
  case DUCKDB_TYPE_DECIMAL:
    snprintf(tmp, sizeof(tmp), "DECIMAL(%u,%u)", duckdb_decimal_width(t), duckdb_decimal_scale(t));
    return wg__put(b, tmp);
  case DUCKDB_TYPE_ENUM: {
    rc = wg__put(b, "ENUM(");
    uint32_t n = duckdb_enum_dictionary_size(t);
    for (uint32_t i = 0; i < n && rc == 0; i++) {
      char *v = duckdb_enum_dictionary_value(t, i);
      if (i > 0) rc = wg__put(b, ", ");
      if (rc == 0) rc = wg_sql_append_literal(b, v ? v : "");
      duckdb_free(v);
    }
    return rc == 0 ? wg__put(b, ")") : rc;
  }
  case DUCKDB_TYPE_LIST:
  case DUCKDB_TYPE_ARRAY: {
    duckdb_logical_type ch =
        id == DUCKDB_TYPE_LIST ? duckdb_list_type_child_type(t) : duckdb_array_type_child_type(t);
    rc = type_name_into(ch, b, depth + 1);
    duckdb_destroy_logical_type(&ch);
    if (rc != 0) return rc;
    if (id == DUCKDB_TYPE_LIST) return wg__put(b, "[]");
    snprintf(tmp, sizeof(tmp), "[%llu]", (unsigned long long)duckdb_array_type_array_size(t));
    return wg__put(b, tmp);
  }
  case DUCKDB_TYPE_MAP: {
    duckdb_logical_type k = duckdb_map_type_key_type(t), v = duckdb_map_type_value_type(t);
    rc = wg__put(b, "MAP(");
    if (rc == 0) rc = type_name_into(k, b, depth + 1);
    if (rc == 0) rc = wg__put(b, ", ");
    if (rc == 0) rc = type_name_into(v, b, depth + 1);
    if (rc == 0) rc = wg__put(b, ")");
    duckdb_destroy_logical_type(&k);
    duckdb_destroy_logical_type(&v);
    return rc;
  }
  case DUCKDB_TYPE_STRUCT:
  case DUCKDB_TYPE_UNION: {
    bool is_struct = id == DUCKDB_TYPE_STRUCT;
    idx_t n = is_struct ? duckdb_struct_type_child_count(t) : duckdb_union_type_member_count(t);
    rc = wg__put(b, is_struct ? "STRUCT(" : "UNION(");
    for (idx_t i = 0; i < n && rc == 0; i++) {
      char *name =
          is_struct ? duckdb_struct_type_child_name(t, i) : duckdb_union_type_member_name(t, i);
      duckdb_logical_type ch =
          is_struct ? duckdb_struct_type_child_type(t, i) : duckdb_union_type_member_type(t, i);
      if (i > 0) rc = wg__put(b, ", ");
      if (rc == 0) rc = wg_sql_append_ident(b, name ? name : "");
      if (rc == 0) rc = wg__put(b, " ");
      if (rc == 0) rc = type_name_into(ch, b, depth + 1);
      duckdb_free(name);
      duckdb_destroy_logical_type(&ch);
    }
    return rc == 0 ? wg__put(b, ")") : rc;
  }
  default:
    snprintf(tmp, sizeof(tmp), "TYPE_%d", (int)id);
    return wg__put(b, tmp);
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

int wg__engine_refuse_day_time_intervals(const struct ArrowSchema *schema, struct wg_error *err) {
  for (int64_t i = 0; i < schema->n_children; i++) {
    const struct ArrowSchema *f = schema->children[i];
    if (!has_day_time_interval(f, 0)) continue;
    const char *fmt = f->format ? f->format : "";
    bool nested = strcmp(fmt, "tiD") != 0;
    char name[WG_TEXT_SHOWN];
    return wg_error_set(err, EINVAL,
                        "column \"%s\": Arrow interval[day_time]%s%s%s is not accepted: DuckDB "
                        "reads its days and milliseconds as one count of milliseconds; send "
                        "interval[month_day_nano] or a duration",
                        wg_text_shown(f->name, name, sizeof(name)),
                        nested ? " (inside Arrow type \"" : "",
                        nested ? fmt : "", nested ? "\")" : "");
  }
  return 0;
}

/* Whether a type is, or holds, DuckDB's NULL type (what the Arrow null type 'n' converts to):
 * it has no SQL name a table column can take ("NULL" does not parse in CREATE TABLE). */
bool wg__engine_type_has_null(duckdb_logical_type t, int depth) {
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
      found = wg__engine_type_has_null(c, depth + 1);
      duckdb_destroy_logical_type(&c);
    }
    return found;
  }
  default:
    return false;
  }
  for (int i = 0; i < 2; i++) {
    if (ch[i] == NULL) continue;
    found = found || wg__engine_type_has_null(ch[i], depth + 1);
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
bool wg__engine_type_accepts(duckdb_logical_type table, duckdb_logical_type in,
                             const char *table_name, const char *in_name) {
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


/* After DuckDB refused the ingest schema or its empty batch with `err`: converts each column
 * alone (schema, then an empty batch, as ingest does) and, at the first one DuckDB refuses,
 * rewrites err to name that column and its Arrow type. DuckDB's own message names neither
 * ("Unsupported Internal Arrow Type e"). Leaves err when every column alone converts. Error
 * path only; returns rc. */
int wg__engine_name_refused_column(duckdb_connection conn, const struct ArrowSchema *schema, int rc,
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
    int bad = wg_engine_take_error_data(&ed, &why, NULL);
    struct ArrowArray empty;
    if (bad == 0 && wg_arrow_concat(&one, NULL, 0, &empty, NULL) == 0) {
      duckdb_data_chunk chunk = NULL;
      ed = duckdb_data_chunk_from_arrow(conn, &empty, conv, &chunk);
      bad = wg_engine_take_error_data(&ed, &why, NULL);
      wg_array_release(&empty);
      if (chunk != NULL) duckdb_destroy_data_chunk(&chunk);
    }
    if (conv != NULL) duckdb_destroy_arrow_converted_schema(&conv);
    wg_schema_release(&one);
    if (bad != 0) {
      char type[160], name[WG_TEXT_SHOWN];
      wg_text_shown(schema->children[i]->name, name, sizeof(name));
      return wg_error_set(err, EINVAL, "column \"%s\": DuckDB cannot store Arrow type %s (%s)",
                          name, wg_arrow_schema_describe(schema->children[i], type, sizeof(type)),
                          why.message);
    }
  }
  return rc;
}
