/* wigeon: Flight SQL's metadata commands (CommandGet*). Each answers GetFlightInfo/GetSchema with
 * the result schema the spec (FlightSql.proto, as arrow-go's schema_ref spells it: names, types,
 * nullability, list item names) and, as ticket, the command itself packed as an Any; DoGet of that
 * ticket builds the rows here, in C (arrow/build.h), from the engine's catalog queries
 * (wg_engine_meta, names bound as parameters, never spliced into SQL) on a connection of the pool
 * that is given back before the rows are sent: the result is one ready batch, holding no
 * connection. The catalogs are the database's own (DuckDB's system and temp catalogs are never
 * listed, nor the wigeon_internal schema), the same in every command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/array.h"
#include "arrow/build.h"
#include "common/version.h"
#include "server/fsql.h"

#define SQL(x) Arrow__Flight__Protocol__Sql__##x
#define IS(cmd, x) ((cmd)->descriptor == &arrow__flight__protocol__sql__##x##__descriptor)

/* A field of a flat result: name, Arrow format, nullable. */
struct fspec {
  const char *name, *format;
  bool nullable;
};
static const struct fspec catalogs_f[] = {{"catalog_name", "u", false}};
static const struct fspec schemas_f[] = {{"catalog_name", "u", true},
                                         {"db_schema_name", "u", false}};
static const struct fspec tables_f[] = {{"catalog_name", "u", true},
                                        {"db_schema_name", "u", true},
                                        {"table_name", "u", false},
                                        {"table_type", "u", false},
                                        {"table_schema", "z", false}};
static const struct fspec table_types_f[] = {{"table_type", "u", false}};
/* column order of the spec; the engine's query has key_sequence last (see pk_src) */
static const struct fspec pk_f[] = {{"catalog_name", "u", true}, {"db_schema_name", "u", true},
                                    {"table_name", "u", false},  {"column_name", "u", false},
                                    {"key_sequence", "i", false}, {"key_name", "u", true}};
static const int pk_src[] = {0, 1, 2, 3, 5, 4};
static const struct fspec fk_f[] = {
    {"pk_catalog_name", "u", true}, {"pk_db_schema_name", "u", true},
    {"pk_table_name", "u", false},  {"pk_column_name", "u", false},
    {"fk_catalog_name", "u", true}, {"fk_db_schema_name", "u", true},
    {"fk_table_name", "u", false},  {"fk_column_name", "u", false},
    {"key_sequence", "i", false},   {"fk_key_name", "u", true},
    {"pk_key_name", "u", true},     {"update_rule", "C", false},
    {"delete_rule", "C", false}};
#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The top-level struct of n flat fields. */
static int flat_schema(const struct fspec *f, int n, struct ArrowSchema *out,
                       struct wg_error *err) {
  WG_RETURN_NOT_OK(wg_field_init(out, "+s", "", false, n, err));
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++)
    rc = wg_field_init(out->children[i], f[i].format, f[i].name, f[i].nullable, 0, err);
  if (rc != 0) wg_schema_release(out);
  return rc;
}

static int oom(struct wg_error *err) { return wg_error_set(err, ENOMEM, "out of memory"); }

/* One flat column from text cells (column src of rows, those with keep[row]): utf8, int32 or
 * uint8 as f says; a NULL cell in a NOT NULL column is the type's empty value. */
static int text_column(const struct fspec *f, const struct wg_engine_rows *r, int src,
                       const bool *keep, struct ArrowArray *out, struct wg_error *err) {
  struct wg_col c;
  bool text = f->format[0] == 'u';
  wg_col_init(&c, text ? WG_COL_VAR : WG_COL_FIXED, f->format[0] == 'i' ? 4 : 1);
  int rc = 0;
  for (int64_t i = 0; i < r->n_rows && rc == 0; i++) {
    if (keep != NULL && !keep[i]) continue;
    const char *v = wg_engine_rows_at(r, i, src);
    if (v == NULL && f->nullable)
      rc = wg_col_null(&c);
    else if (text)
      rc = wg_col_str(&c, v != NULL ? v : "");
    else if (f->format[0] == 'i')
      rc = wg_col_i32(&c, v != NULL ? (int32_t)strtol(v, NULL, 10) : 0);
    else
      rc = wg_col_u8(&c, v != NULL ? (uint8_t)strtol(v, NULL, 10) : 0);
  }
  if (rc == 0) rc = wg_col_finish(&c, NULL, 0, out, err);
  else rc = oom(err);
  wg_col_reset(&c);
  return rc;
}

/* The batch: struct of n_cols children, the first n_text from text cells (src[i], or i when src
 * is NULL), then `extra` (already built, moved in). */
static int struct_batch(const struct fspec *f, int n_text, const struct wg_engine_rows *r,
                        const int *src, const bool *keep, struct ArrowArray *extra, int n_extra,
                        struct ArrowArray *out, struct wg_error *err) {
  struct ArrowArray kids[16];
  memset(kids, 0, sizeof(kids));
  if (n_text + n_extra > N(kids))
    return wg_error_set(err, EINVAL, "%d columns in a metadata result", n_text + n_extra);
  int rc = 0;
  for (int i = 0; i < n_text && rc == 0; i++)
    rc = text_column(&f[i], r, src != NULL ? src[i] : i, keep, &kids[i], err);
  for (int i = 0; i < n_extra; i++)
    wg_array_move(&extra[i], &kids[n_text + i]);
  struct wg_col s;
  wg_col_init(&s, WG_COL_STRUCT, 0);
  int64_t rows = 0;
  for (int64_t i = 0; i < r->n_rows; i++)
    rows += keep == NULL || keep[i];
  for (int64_t i = 0; i < rows && rc == 0; i++)
    if (wg_col_struct_row(&s) != 0) rc = oom(err);
  if (rc == 0) rc = wg_col_finish(&s, kids, n_text + n_extra, out, err);
  wg_col_reset(&s);
  for (int i = 0; i < n_text + n_extra; i++)
    wg_array_release(&kids[i]);
  return rc;
}

/* ---- running a catalog query on a connection of the pool -------------------------------------- */
static int meta_rows(struct wg_server *s, struct wg_rpc_call *call, enum wg_engine_meta q,
                     const char *const *params, int n, struct wg_engine_rows *out,
                     struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  struct wg__fsql_conn c = {0};
  ProtobufCBinaryData none = {0, NULL};
  WG_RETURN_NOT_OK(wg__fsql_conn_acquire(s, call, false, none, &c, err));
  int rc = wg_engine_meta(c.conn, q, params, n, out, err);
  wg__fsql_conn_release(s, &c);
  return rc;
}

/* ---- GetTables' table_schema column ------------------------------------------------------------ */
/* Each field with its column's nullability and Flight SQL's column metadata (JDBC's getColumns
 * reads NULLABLE, TYPE_NAME, COLUMN_SIZE, DECIMAL_DIGITS from here): unlike plain Flight's
 * GetFlightInfo of the table, whose schema is the one its DoGet streams (all nullable). */
static int table_schemas(struct wg_server *s, struct wg_rpc_call *call,
                         const struct wg_engine_rows *r, const bool *keep, struct ArrowArray *out,
                         struct wg_error *err) {
  struct wg__fsql_conn c = {0};
  ProtobufCBinaryData none = {0, NULL};
  WG_RETURN_NOT_OK(wg__fsql_conn_acquire(s, call, false, none, &c, err));
  struct wg_col col;
  wg_col_init(&col, WG_COL_VAR, 0);
  struct wg_buf bytes;
  wg_buf_init(&bytes);
  int rc = 0;
  for (int64_t i = 0; i < r->n_rows && rc == 0; i++) {
    if (!keep[i]) continue;
    struct ArrowSchema sch = {0};
    rc = wg_engine_table_schema_described(c.conn, wg_engine_rows_at(r, i, 0),
                                          wg_engine_rows_at(r, i, 1), wg_engine_rows_at(r, i, 2),
                                          &sch, err);
    /* A view that no longer binds (its table was dropped) or a table dropped since the listing:
     * a schema of no fields for that row, not a failure of the whole listing. */
    if (rc != 0 && rc != ENOMEM && rc != ECANCELED && rc != ETIMEDOUT) {
      wg_schema_release(&sch);
      rc = wg_schema_node_init(&sch, "+s", 0, err);
    }
    bytes.size = 0;
    if (rc == 0) rc = wg_flight_schema_bytes(&sch, &bytes, err);
    wg_schema_release(&sch);
    if (rc == 0 && wg_col_bytes(&col, bytes.data, bytes.size) != 0) rc = oom(err);
  }
  wg__fsql_conn_release(s, &c);
  if (rc == 0) rc = wg_col_finish(&col, NULL, 0, out, err);
  wg_col_reset(&col);
  wg_buf_reset(&bytes);
  return rc;
}

/* ---- the flat commands -------------------------------------------------------------------------- */
/* The table types DuckDB's information_schema.tables names (GetTables' table_type). */
static const char *const table_types[] = {"BASE TABLE", "LOCAL TEMPORARY", "VIEW"};

static bool type_wanted(const SQL(CommandGetTables) * t, const char *type) {
  if (t->n_table_types == 0) return true;
  for (size_t i = 0; i < t->n_table_types; i++)
    if (t->table_types[i] != NULL && type != NULL && strcmp(t->table_types[i], type) == 0)
      return true;
  return false;
}

static int tables_batch(struct wg_server *s, struct wg_rpc_call *call, const SQL(CommandGetTables) * t,
                        struct ArrowArray *out, struct wg_error *err) {
  const char *p[3] = {t->catalog, t->db_schema_filter_pattern, t->table_name_filter_pattern};
  struct wg_engine_rows r;
  WG_RETURN_NOT_OK(meta_rows(s, call, WG_ENGINE_META_TABLES, p, 3, &r, err));
  bool *keep = calloc(r.n_rows ? (size_t)r.n_rows : 1, sizeof(bool));
  int rc = keep == NULL ? oom(err) : 0;
  for (int64_t i = 0; i < r.n_rows && rc == 0; i++)
    keep[i] = type_wanted(t, wg_engine_rows_at(&r, i, 3));
  struct ArrowArray extra = {0};
  bool with = t->has_include_schema && t->include_schema;
  if (rc == 0 && with) rc = table_schemas(s, call, &r, keep, &extra, err);
  if (rc == 0) rc = struct_batch(tables_f, 4, &r, NULL, keep, &extra, with ? 1 : 0, out, err);
  wg_array_release(&extra);
  free(keep);
  wg_engine_rows_reset(&r);
  return rc;
}

static int table_types_batch(struct ArrowArray *out, struct wg_error *err) {
  struct wg_engine_rows r = {N(table_types), 1, (char **)table_types};
  return struct_batch(table_types_f, 1, &r, NULL, NULL, NULL, 0, out, err);
}

/* Rows of a query whose columns are the spec's in order (src NULL) or reordered by src. */
static int query_batch(struct wg_server *s, struct wg_rpc_call *call, enum wg_engine_meta q,
                       const char *const *p, int n_p, const struct fspec *f, int n_f,
                       const int *src, struct ArrowArray *out, struct wg_error *err) {
  struct wg_engine_rows r;
  WG_RETURN_NOT_OK(meta_rows(s, call, q, p, n_p, &r, err));
  int rc = struct_batch(f, n_f, &r, src, NULL, NULL, 0, out, err);
  wg_engine_rows_reset(&r);
  return rc;
}

/* ---- GetSqlInfo ---------------------------------------------------------------------------------
 * info_name uint32 NOT NULL, value dense_union<string_value utf8, bool_value bool, bigint_value
 * int64, int32_bitmask int32, string_list list<item: utf8>, int32_to_int32_list_map
 * map<int32, list<item: int32>>> NOT NULL, type ids 0..5 in that order. */
enum { V_STR, V_BOOL, V_I64, V_I32, V_LIST, V_MAP };
struct sql_info {
  uint32_t id;
  int8_t type;
  int64_t v;       /* V_BOOL, V_I64, V_I32 */
  const char *s;   /* V_STR; V_LIST: the engine's function categories, or NULL for keywords */
};
/* DuckDB's answers (FlightSql.proto's enums in the comments); sorted by id. */
static const struct sql_info sql_infos[] = {
    {0, V_STR, 0, "wigeon"},
    {1, V_STR, 0, WG_VERSION_STRING},
    {2, V_STR, 0, "1.5.0"}, /* the Arrow columnar format version our IPC speaks */
    {3, V_BOOL, 0, NULL},   /* read only */
    {4, V_BOOL, 1, NULL},   /* SQL */
    {5, V_BOOL, 0, NULL},   /* Substrait */
    {8, V_I32, 1, NULL},    /* SQL_SUPPORTED_TRANSACTION_TRANSACTION (no savepoints) */
    {9, V_BOOL, 1, NULL},   /* CancelFlightInfo */
    {10, V_BOOL, 1, NULL},  /* CommandStatementIngest */
    {11, V_BOOL, 0, NULL},  /* ingest inside a transaction */
    {100, V_I32, 0, NULL},  /* statement timeout: none */
    {101, V_I32, 0, NULL},  /* transaction timeout: none */
    {500, V_BOOL, 0, NULL}, /* CREATE/DROP catalogs: ATTACH is not for clients */
    {501, V_BOOL, 1, NULL},
    {502, V_BOOL, 1, NULL},
    {503, V_I32, 1, NULL}, /* SQL_CASE_SENSITIVITY_CASE_INSENSITIVE */
    {504, V_STR, 0, "\""},
    {505, V_I32, 1, NULL}, /* quoted identifiers too: DuckDB matches them case-insensitively */
    {506, V_BOOL, 1, NULL},
    {507, V_I32, 3, NULL}, /* SQL_NULLS_SORTED_AT_END: DuckDB's default_null_order nulls_last */
    {508, V_LIST, 0, NULL},
    {509, V_LIST, 0, "numeric"},
    {510, V_LIST, 0, "string"},
    {511, V_LIST, 0, "system"},
    {512, V_LIST, 0, "datetime"},
    {513, V_STR, 0, "\\"}, /* LIKE ... ESCAPE '\' in every filter pattern */
    {514, V_STR, 0, ""},
    {515, V_BOOL, 1, NULL},
    {516, V_BOOL, 1, NULL},
    {517, V_MAP, 0, NULL},
    {518, V_BOOL, 1, NULL},
    {519, V_BOOL, 0, NULL},
    {520, V_BOOL, 1, NULL},
    {521, V_BOOL, 1, NULL},
    {522, V_I32, 3, NULL}, /* GROUP BY unrelated | beyond select */
    {523, V_BOOL, 1, NULL},
    {524, V_BOOL, 1, NULL},
    {525, V_I32, 7, NULL}, /* minimum | core | extended grammar */
    {526, V_I32, 3, NULL}, /* ANSI92 entry | intermediate */
    {527, V_BOOL, 1, NULL},
    {528, V_I32, 2, NULL}, /* SQL_FULL_OUTER_JOINS */
    {529, V_STR, 0, "schema"},
    {530, V_STR, 0, "procedure"},
    {531, V_STR, 0, "catalog"},
    {532, V_BOOL, 1, NULL},
    {533, V_I32, 2, NULL}, /* schemas in index definitions */
    {534, V_I32, 2, NULL},
    {535, V_I32, 0, NULL},
    {536, V_BOOL, 0, NULL},
    {537, V_BOOL, 0, NULL},
    {538, V_I32, 15, NULL}, /* subqueries in comparisons, EXISTS, IN, quantifieds */
    {539, V_BOOL, 1, NULL},
    {540, V_I32, 3, NULL}, /* UNION, UNION ALL */
    {541, V_I64, 0, NULL}, /* 541..561: 0, no limit known */
    {542, V_I64, 0, NULL},
    {543, V_I64, 0, NULL},
    {544, V_I64, 0, NULL},
    {545, V_I64, 0, NULL},
    {546, V_I64, 0, NULL},
    {547, V_I64, 0, NULL},
    {548, V_I64, 0, NULL},
    {549, V_I64, 0, NULL},
    {550, V_I64, 0, NULL},
    {551, V_I64, 0, NULL},
    {552, V_I64, 0, NULL},
    {553, V_I64, 0, NULL},
    {554, V_I64, 0, NULL},
    {555, V_I64, 0, NULL},
    {556, V_BOOL, 0, NULL},
    {557, V_I64, 0, NULL},
    {558, V_I64, 0, NULL},
    {559, V_I64, 0, NULL},
    {560, V_I64, 0, NULL},
    {561, V_I64, 0, NULL},
    /* SQL_TRANSACTION_REPEATABLE_READ (DuckDB: snapshot isolation); bigint, as JDBC reads it */
    {562, V_I64, 3, NULL},
    {563, V_BOOL, 1, NULL},
    {564, V_I32, 1 << 3, NULL},
    {565, V_BOOL, 0, NULL},
    {566, V_BOOL, 0, NULL},
    {567, V_I32, 1 << 1, NULL}, /* forward only */
    {568, V_I32, 1 << 1, NULL}, /* read only */
    {569, V_I32, 1 << 1, NULL},
    {570, V_I32, 0, NULL},
    {571, V_I32, 0, NULL},
    {572, V_BOOL, 1, NULL},
    {573, V_BOOL, 0, NULL},
    {574, V_BOOL, 0, NULL},
    {575, V_BOOL, 0, NULL},
    {576, V_BOOL, 0, NULL},
};

/* SQL_SUPPORTS_CONVERT: from (SqlSupportsConvert) -> the types CAST takes it to. */
#define CV_NUM 0, 5, 6, 7, 12, 13, 14, 17
static const int32_t cv_num[] = {CV_NUM, 2, 3, 11, 19};
static const int32_t cv_char[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
static const int32_t cv_date[] = {3, 4, 11, 16, 19};
static const int32_t cv_time[] = {3, 11, 15, 19};
static const int32_t cv_ts[] = {3, 4, 11, 15, 16, 19};
static const int32_t cv_bin[] = {1, 3, 10, 11, 18, 19};
static const int32_t cv_ival[] = {3, 8, 9, 11, 19};
static const struct {
  int32_t from;
  const int32_t *to;
  int n;
} converts[] = {
    {0, cv_num, N(cv_num)},   {1, cv_bin, N(cv_bin)},   {2, cv_num, N(cv_num)},
    {3, cv_char, N(cv_char)}, {4, cv_date, N(cv_date)}, {5, cv_num, N(cv_num)},
    {6, cv_num, N(cv_num)},   {7, cv_num, N(cv_num)},   {8, cv_ival, N(cv_ival)},
    {9, cv_ival, N(cv_ival)}, {10, cv_bin, N(cv_bin)},  {11, cv_char, N(cv_char)},
    {12, cv_num, N(cv_num)},  {13, cv_num, N(cv_num)},  {14, cv_num, N(cv_num)},
    {15, cv_time, N(cv_time)}, {16, cv_ts, N(cv_ts)},   {17, cv_num, N(cv_num)},
    {18, cv_bin, N(cv_bin)},  {19, cv_char, N(cv_char)},
};

static int sql_info_schema(struct ArrowSchema *out, struct wg_error *err) {
  WG_RETURN_NOT_OK(wg_field_init(out, "+s", "", false, 2, err));
  int rc = wg_field_init(out->children[0], "I", "info_name", false, 0, err);
  struct ArrowSchema *u = out->children[1];
  if (rc == 0) rc = wg_field_init(u, "+ud:0,1,2,3,4,5", "value", false, 6, err);
  if (rc == 0) rc = wg_field_init(u->children[0], "u", "string_value", false, 0, err);
  if (rc == 0) rc = wg_field_init(u->children[1], "b", "bool_value", false, 0, err);
  if (rc == 0) rc = wg_field_init(u->children[2], "l", "bigint_value", false, 0, err);
  if (rc == 0) rc = wg_field_init(u->children[3], "i", "int32_bitmask", false, 0, err);
  if (rc == 0) rc = wg_field_init(u->children[4], "+l", "string_list", false, 1, err);
  if (rc == 0) rc = wg_field_init(u->children[4]->children[0], "u", "item", true, 0, err);
  struct ArrowSchema *m = u->children[5];
  if (rc == 0) rc = wg_field_init(m, "+m", "int32_to_int32_list_map", false, 1, err);
  if (rc == 0) rc = wg_field_init(m->children[0], "+s", "entries", false, 2, err);
  if (rc == 0) rc = wg_field_init(m->children[0]->children[0], "i", "key", false, 0, err);
  if (rc == 0) rc = wg_field_init(m->children[0]->children[1], "+l", "value", true, 1, err);
  if (rc == 0)
    rc = wg_field_init(m->children[0]->children[1]->children[0], "i", "item", true, 0, err);
  if (rc != 0) wg_schema_release(out);
  return rc;
}

/* The union's children while rows are appended. */
struct info_cols {
  struct wg_col names, types, str, boolean, i64, i32, list, list_items, map, keys, values,
      value_items, entries;
};

static void info_cols_init(struct info_cols *c) {
  wg_col_init(&c->names, WG_COL_FIXED, 4);
  wg_col_init(&c->types, WG_COL_UNION, 0);
  wg_col_init(&c->str, WG_COL_VAR, 0);
  wg_col_init(&c->boolean, WG_COL_BOOL, 0);
  wg_col_init(&c->i64, WG_COL_FIXED, 8);
  wg_col_init(&c->i32, WG_COL_FIXED, 4);
  wg_col_init(&c->list, WG_COL_LIST, 0);
  wg_col_init(&c->list_items, WG_COL_VAR, 0);
  wg_col_init(&c->map, WG_COL_LIST, 0);
  wg_col_init(&c->entries, WG_COL_STRUCT, 0);
  wg_col_init(&c->keys, WG_COL_FIXED, 4);
  wg_col_init(&c->values, WG_COL_LIST, 0);
  wg_col_init(&c->value_items, WG_COL_FIXED, 4);
}

static void info_cols_reset(struct info_cols *c) {
  struct wg_col *all[] = {&c->names, &c->types, &c->str,  &c->boolean, &c->i64,
                          &c->i32,   &c->list,  &c->list_items, &c->map, &c->keys,
                          &c->values, &c->value_items, &c->entries};
  for (int i = 0; i < N(all); i++)
    wg_col_reset(all[i]);
}

/* One row: its id, and its value in the child its type says. */
static int info_row(struct wg_server *s, struct wg_rpc_call *call, const struct sql_info *e,
                    struct info_cols *c, struct wg_error *err) {
  int rc = wg_col_u32(&c->names, e->id);
  switch (e->type) {
  case V_STR:
    if (rc == 0) rc = wg_col_union(&c->types, V_STR, (int32_t)c->str.length);
    return rc != 0 ? oom(err) : wg_col_str(&c->str, e->s) != 0 ? oom(err) : 0;
  case V_BOOL:
    if (rc == 0) rc = wg_col_union(&c->types, V_BOOL, (int32_t)c->boolean.length);
    if (rc == 0) rc = wg_col_bool(&c->boolean, e->v != 0);
    return rc != 0 ? oom(err) : 0;
  case V_I64:
    if (rc == 0) rc = wg_col_union(&c->types, V_I64, (int32_t)c->i64.length);
    if (rc == 0) rc = wg_col_i64(&c->i64, e->v);
    return rc != 0 ? oom(err) : 0;
  case V_I32:
    if (rc == 0) rc = wg_col_union(&c->types, V_I32, (int32_t)c->i32.length);
    if (rc == 0) rc = wg_col_i32(&c->i32, (int32_t)e->v);
    return rc != 0 ? oom(err) : 0;
  case V_LIST: {
    if (rc == 0) rc = wg_col_union(&c->types, V_LIST, (int32_t)c->list.length);
    if (rc != 0) return oom(err);
    struct wg_engine_rows r;
    const char *p[1] = {e->s};
    WG_RETURN_NOT_OK(meta_rows(s, call, e->s ? WG_ENGINE_META_FUNCTIONS : WG_ENGINE_META_KEYWORDS,
                               p, e->s ? 1 : 0, &r, err));
    for (int64_t i = 0; i < r.n_rows && rc == 0; i++)
      rc = wg_col_str(&c->list_items, wg_engine_rows_at(&r, i, 0));
    wg_engine_rows_reset(&r);
    if (rc == 0) rc = wg_col_list_end(&c->list, c->list_items.length);
    return rc != 0 ? oom(err) : 0;
  }
  default: /* V_MAP */
    if (rc == 0) rc = wg_col_union(&c->types, V_MAP, (int32_t)c->map.length);
    for (int i = 0; i < N(converts) && rc == 0; i++) {
      rc = wg_col_i32(&c->keys, converts[i].from);
      for (int j = 0; j < converts[i].n && rc == 0; j++)
        rc = wg_col_i32(&c->value_items, converts[i].to[j]);
      if (rc == 0) rc = wg_col_list_end(&c->values, c->value_items.length);
      if (rc == 0) rc = wg_col_struct_row(&c->entries);
    }
    if (rc == 0) rc = wg_col_list_end(&c->map, c->entries.length);
    return rc != 0 ? oom(err) : 0;
  }
}

/* The finished arrays of the columns: the struct of info_name and the union. */
static int info_finish(struct info_cols *c, struct ArrowArray *out, struct wg_error *err) {
  struct ArrowArray a[10];
  memset(a, 0, sizeof(a));
  /* a[0..5] the union's children, a[6] list items, a[7] value items, a[8] values, a[9] keys */
  int rc = wg_col_finish(&c->str, NULL, 0, &a[0], err);
  if (rc == 0) rc = wg_col_finish(&c->boolean, NULL, 0, &a[1], err);
  if (rc == 0) rc = wg_col_finish(&c->i64, NULL, 0, &a[2], err);
  if (rc == 0) rc = wg_col_finish(&c->i32, NULL, 0, &a[3], err);
  if (rc == 0) rc = wg_col_finish(&c->list_items, NULL, 0, &a[6], err);
  if (rc == 0) rc = wg_col_finish(&c->list, &a[6], 1, &a[4], err);
  if (rc == 0) rc = wg_col_finish(&c->value_items, NULL, 0, &a[7], err);
  if (rc == 0) rc = wg_col_finish(&c->values, &a[7], 1, &a[8], err);
  if (rc == 0) rc = wg_col_finish(&c->keys, NULL, 0, &a[9], err);
  struct ArrowArray kv[2] = {{0}, {0}}, entries = {0}, top[2] = {{0}, {0}};
  if (rc == 0) {
    wg_array_move(&a[9], &kv[0]);
    wg_array_move(&a[8], &kv[1]);
    rc = wg_col_finish(&c->entries, kv, 2, &entries, err);
  }
  if (rc == 0) rc = wg_col_finish(&c->map, &entries, 1, &a[5], err);
  if (rc == 0) rc = wg_col_finish(&c->names, NULL, 0, &top[0], err);
  if (rc == 0) rc = wg_col_finish(&c->types, a, 6, &top[1], err);
  struct wg_col st;
  wg_col_init(&st, WG_COL_STRUCT, 0);
  for (int64_t i = 0; rc == 0 && i < top[0].length; i++)
    if (wg_col_struct_row(&st) != 0) rc = oom(err);
  if (rc == 0) rc = wg_col_finish(&st, top, 2, out, err);
  wg_col_reset(&st);
  for (int i = 0; i < 10; i++)
    wg_array_release(&a[i]);
  for (int i = 0; i < 2; i++) {
    wg_array_release(&kv[i]);
    wg_array_release(&top[i]);
  }
  wg_array_release(&entries);
  return rc;
}

static const struct sql_info *find_info(uint32_t id) {
  for (int i = 0; i < N(sql_infos); i++)
    if (sql_infos[i].id == id) return &sql_infos[i];
  return NULL;
}

/* The ids asked for, in the order asked (ids this server has no answer for are left out), or
 * all of them for an empty list. */
static int sql_info_batch(struct wg_server *s, struct wg_rpc_call *call,
                          const SQL(CommandGetSqlInfo) * q, struct ArrowArray *out,
                          struct wg_error *err) {
  struct info_cols c;
  info_cols_init(&c);
  int rc = 0;
  size_t n = q->n_info ? q->n_info : (size_t)N(sql_infos);
  for (size_t i = 0; i < n && rc == 0; i++) {
    const struct sql_info *e = q->n_info ? find_info(q->info[i]) : &sql_infos[i];
    if (e != NULL) rc = info_row(s, call, e, &c, err);
  }
  if (rc == 0) rc = info_finish(&c, out, err);
  info_cols_reset(&c);
  return rc;
}

/* ---- GetXdbcTypeInfo: DuckDB's types ------------------------------------------------------------ */
static const struct fspec type_f[] = {
    {"type_name", "u", false},       {"data_type", "i", false},
    {"column_size", "i", true},      {"literal_prefix", "u", true},
    {"literal_suffix", "u", true},   {"create_params", "+l", true},
    {"nullable", "i", false},        {"case_sensitive", "b", false},
    {"searchable", "i", false},      {"unsigned_attribute", "b", true},
    {"fixed_prec_scale", "b", false}, {"auto_increment", "b", true},
    {"local_type_name", "u", true},  {"minimum_scale", "i", true},
    {"maximum_scale", "i", true},    {"sql_data_type", "i", false},
    {"datetime_subcode", "i", true}, {"num_prec_radix", "i", true},
    {"interval_precision", "i", true}};
enum { NO = -1 }; /* a NULL int32 / bool */
struct xdbc_type {
  const char *name;
  int32_t data_type, size;
  const char *prefix, *suffix, *params; /* params: comma-separated create_params, or NULL */
  int case_sensitive, searchable, unsign, auto_inc;
  int32_t min_scale, max_scale, sql_type, subcode, radix;
};
/* ordered by data_type, then type_name (the spec's order) */
static const struct xdbc_type xdbc_types[] = {
    {"BOOLEAN", -7, 1, NULL, NULL, NULL, 0, 2, NO, NO, NO, NO, -7, NO, NO},
    {"TINYINT", -6, 3, NULL, NULL, NULL, 0, 2, 0, 0, 0, 0, -6, NO, 10},
    {"UTINYINT", -6, 3, NULL, NULL, NULL, 0, 2, 1, 0, 0, 0, -6, NO, 10},
    {"BIGINT", -5, 19, NULL, NULL, NULL, 0, 2, 0, 0, 0, 0, -5, NO, 10},
    {"UBIGINT", -5, 20, NULL, NULL, NULL, 0, 2, 1, 0, 0, 0, -5, NO, 10},
    {"BLOB", -3, NO, "'", "'::BLOB", NULL, 0, 2, NO, NO, NO, NO, -3, NO, NO},
    {"HUGEINT", 2, 39, NULL, NULL, NULL, 0, 2, 0, 0, 0, 0, 2, NO, 10},
    {"UHUGEINT", 2, 39, NULL, NULL, NULL, 0, 2, 1, 0, 0, 0, 2, NO, 10},
    {"DECIMAL", 3, 38, NULL, NULL, "precision,scale", 0, 2, 0, 0, 0, 38, 3, NO, 10},
    {"INTEGER", 4, 10, NULL, NULL, NULL, 0, 2, 0, 0, 0, 0, 4, NO, 10},
    {"UINTEGER", 4, 10, NULL, NULL, NULL, 0, 2, 1, 0, 0, 0, 4, NO, 10},
    {"SMALLINT", 5, 5, NULL, NULL, NULL, 0, 2, 0, 0, 0, 0, 5, NO, 10},
    {"USMALLINT", 5, 5, NULL, NULL, NULL, 0, 2, 1, 0, 0, 0, 5, NO, 10},
    {"FLOAT", 7, 24, NULL, NULL, NULL, 0, 2, 0, 0, NO, NO, 7, NO, 2},
    {"DOUBLE", 8, 53, NULL, NULL, NULL, 0, 2, 0, 0, NO, NO, 8, NO, 2},
    {"INTERVAL", 10, NO, "INTERVAL '", "'", NULL, 0, 2, NO, NO, NO, NO, 10, 0, NO},
    {"VARCHAR", 12, NO, "'", "'", NULL, 1, 3, NO, NO, NO, NO, 12, NO, NO},
    {"DATE", 91, 10, "DATE '", "'", NULL, 0, 2, NO, NO, NO, NO, 9, 1, NO},
    {"TIME", 92, 15, "TIME '", "'", NULL, 0, 2, NO, NO, 0, 6, 9, 2, NO},
    {"TIMESTAMP", 93, 26, "TIMESTAMP '", "'", NULL, 0, 2, NO, NO, 0, 6, 9, 3, NO},
    {"TIMESTAMP WITH TIME ZONE", 93, 32, "TIMESTAMPTZ '", "'", NULL, 0, 2, NO, NO, 0, 6, 9, 5,
     NO},
};

static int type_info_schema(struct ArrowSchema *out, struct wg_error *err) {
  WG_RETURN_NOT_OK(wg_field_init(out, "+s", "", false, N(type_f), err));
  int rc = 0;
  for (int i = 0; i < N(type_f) && rc == 0; i++)
    rc = wg_field_init(out->children[i], type_f[i].format, type_f[i].name, type_f[i].nullable,
                       type_f[i].format[0] == '+' ? 1 : 0, err);
  if (rc == 0) rc = wg_field_init(out->children[5]->children[0], "u", "item", false, 0, err);
  if (rc != 0) wg_schema_release(out);
  return rc;
}

static int put_i32_or_null(struct wg_col *c, int32_t v) {
  return v == NO ? wg_col_null(c) : wg_col_i32(c, v);
}
static int put_bool_or_null(struct wg_col *c, int v) {
  return v == NO ? wg_col_null(c) : wg_col_bool(c, v != 0);
}

/* One type's row into the 19 columns (cols[5] the create_params list, items its child). */
static int type_row(const struct xdbc_type *t, struct wg_col *cols, struct wg_col *items) {
  int rc = wg_col_str(&cols[0], t->name);
  if (rc == 0) rc = wg_col_i32(&cols[1], t->data_type);
  if (rc == 0) rc = put_i32_or_null(&cols[2], t->size);
  if (rc == 0) rc = wg_col_str(&cols[3], t->prefix);
  if (rc == 0) rc = wg_col_str(&cols[4], t->suffix);
  if (rc == 0 && t->params == NULL) rc = wg_col_null(&cols[5]);
  for (const char *p = t->params; rc == 0 && p != NULL;) {
    const char *comma = strchr(p, ',');
    int64_t len = comma ? comma - p : (int64_t)strlen(p);
    rc = wg_col_bytes(items, p, len);
    p = comma ? comma + 1 : NULL;
  }
  if (rc == 0 && t->params != NULL) rc = wg_col_list_end(&cols[5], items->length);
  if (rc == 0) rc = wg_col_i32(&cols[6], 1); /* NULLABILITY_NULLABLE */
  if (rc == 0) rc = wg_col_bool(&cols[7], t->case_sensitive != 0);
  if (rc == 0) rc = wg_col_i32(&cols[8], t->searchable);
  if (rc == 0) rc = put_bool_or_null(&cols[9], t->unsign);
  if (rc == 0) rc = wg_col_bool(&cols[10], false);
  if (rc == 0) rc = put_bool_or_null(&cols[11], t->auto_inc);
  if (rc == 0) rc = wg_col_null(&cols[12]);
  if (rc == 0) rc = put_i32_or_null(&cols[13], t->min_scale);
  if (rc == 0) rc = put_i32_or_null(&cols[14], t->max_scale);
  if (rc == 0) rc = wg_col_i32(&cols[15], t->sql_type);
  if (rc == 0) rc = put_i32_or_null(&cols[16], t->subcode);
  if (rc == 0) rc = put_i32_or_null(&cols[17], t->radix);
  if (rc == 0) rc = wg_col_null(&cols[18]);
  return rc;
}

static int type_info_batch(const SQL(CommandGetXdbcTypeInfo) * q, struct ArrowArray *out,
                           struct wg_error *err) {
  enum { NT = N(type_f) };
  struct wg_col cols[NT], items, st;
  for (int i = 0; i < NT; i++) {
    char f = type_f[i].format[0];
    wg_col_init(&cols[i], f == 'u' ? WG_COL_VAR : f == 'b' ? WG_COL_BOOL : f == '+' ? WG_COL_LIST
                                                                                  : WG_COL_FIXED,
                4);
  }
  wg_col_init(&items, WG_COL_VAR, 0);
  wg_col_init(&st, WG_COL_STRUCT, 0);
  int rc = 0;
  for (int i = 0; i < N(xdbc_types) && rc == 0; i++) {
    if (q->has_data_type && xdbc_types[i].data_type != q->data_type) continue;
    rc = type_row(&xdbc_types[i], cols, &items);
    if (rc == 0) rc = wg_col_struct_row(&st);
  }
  if (rc != 0) rc = oom(err);
  struct ArrowArray kids[NT], item_arr = {0};
  memset(kids, 0, sizeof(kids));
  if (rc == 0) rc = wg_col_finish(&items, NULL, 0, &item_arr, err);
  for (int i = 0; i < NT && rc == 0; i++)
    rc = wg_col_finish(&cols[i], i == 5 ? &item_arr : NULL, i == 5 ? 1 : 0, &kids[i], err);
  if (rc == 0) rc = wg_col_finish(&st, kids, NT, out, err);
  for (int i = 0; i < NT; i++) {
    wg_col_reset(&cols[i]);
    wg_array_release(&kids[i]);
  }
  wg_col_reset(&items);
  wg_col_reset(&st);
  wg_array_release(&item_arr);
  return rc;
}

/* The result schema of a metadata command. */
static int meta_schema(const ProtobufCMessage *cmd, struct ArrowSchema *out, struct wg_error *err) {
  if (IS(cmd, command_get_catalogs)) return flat_schema(catalogs_f, N(catalogs_f), out, err);
  if (IS(cmd, command_get_db_schemas)) return flat_schema(schemas_f, N(schemas_f), out, err);
  if (IS(cmd, command_get_tables)) {
    const SQL(CommandGetTables) *t = (const SQL(CommandGetTables) *)cmd;
    return flat_schema(tables_f, t->has_include_schema && t->include_schema ? 5 : 4, out, err);
  }
  if (IS(cmd, command_get_table_types))
    return flat_schema(table_types_f, N(table_types_f), out, err);
  if (IS(cmd, command_get_primary_keys)) return flat_schema(pk_f, N(pk_f), out, err);
  if (IS(cmd, command_get_exported_keys) || IS(cmd, command_get_imported_keys) ||
      IS(cmd, command_get_cross_reference))
    return flat_schema(fk_f, N(fk_f), out, err);
  if (IS(cmd, command_get_sql_info)) return sql_info_schema(out, err);
  if (IS(cmd, command_get_xdbc_type_info)) return type_info_schema(out, err);
  return wg_error_set(err, ENOTSUP, "Flight SQL %s: not a metadata command",
                      cmd->descriptor->short_name);
}

/* The keys commands: which query, its six parameters (pk catalog, schema, table, then fk's). */
static int keys_batch(struct wg_server *s, struct wg_rpc_call *call, const ProtobufCMessage *cmd,
                      struct ArrowArray *out, struct wg_error *err) {
  const char *p[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
  enum wg_engine_meta q;
  if (IS(cmd, command_get_cross_reference)) {
    const SQL(CommandGetCrossReference) *x = (const SQL(CommandGetCrossReference) *)cmd;
    const char *v[6] = {x->pk_catalog, x->pk_db_schema, x->pk_table,
                        x->fk_catalog, x->fk_db_schema, x->fk_table};
    memcpy(p, v, sizeof(p));
    q = WG_ENGINE_META_CROSS_REFERENCE;
    if (p[2] == NULL || p[5] == NULL)
      return wg_error_set(err, EINVAL, "Flight SQL CommandGetCrossReference: pk_table and "
                                       "fk_table required");
  } else {
    /* CommandGetImportedKeys and CommandGetExportedKeys have the same fields */
    const SQL(CommandGetExportedKeys) *k = (const SQL(CommandGetExportedKeys) *)cmd;
    int at = IS(cmd, command_get_imported_keys) ? 3 : 0; /* imported: the table is the fk's */
    p[at] = k->catalog;
    p[at + 1] = k->db_schema;
    p[at + 2] = k->table;
    q = at ? WG_ENGINE_META_IMPORTED_KEYS : WG_ENGINE_META_EXPORTED_KEYS;
    if (k->table == NULL)
      return wg_error_set(err, EINVAL, "Flight SQL %s: table required",
                          cmd->descriptor->short_name);
  }
  return query_batch(s, call, q, p, 6, fk_f, N(fk_f), NULL, out, err);
}

/* The rows of a metadata command: one batch. */
static int meta_batch(struct wg_server *s, struct wg_rpc_call *call, const ProtobufCMessage *cmd,
                      struct ArrowArray *out, struct wg_error *err) {
  if (IS(cmd, command_get_catalogs))
    return query_batch(s, call, WG_ENGINE_META_CATALOGS, NULL, 0, catalogs_f, 1, NULL, out, err);
  if (IS(cmd, command_get_db_schemas)) {
    const SQL(CommandGetDbSchemas) *d = (const SQL(CommandGetDbSchemas) *)cmd;
    const char *p[2] = {d->catalog, d->db_schema_filter_pattern};
    return query_batch(s, call, WG_ENGINE_META_SCHEMAS, p, 2, schemas_f, 2, NULL, out, err);
  }
  if (IS(cmd, command_get_tables))
    return tables_batch(s, call, (const SQL(CommandGetTables) *)cmd, out, err);
  if (IS(cmd, command_get_table_types)) return table_types_batch(out, err);
  if (IS(cmd, command_get_primary_keys)) {
    const SQL(CommandGetPrimaryKeys) *k = (const SQL(CommandGetPrimaryKeys) *)cmd;
    if (k->table == NULL)
      return wg_error_set(err, EINVAL, "Flight SQL CommandGetPrimaryKeys: table required");
    const char *p[3] = {k->catalog, k->db_schema, k->table};
    return query_batch(s, call, WG_ENGINE_META_PRIMARY_KEYS, p, 3, pk_f, N(pk_f), pk_src, out,
                       err);
  }
  if (IS(cmd, command_get_sql_info))
    return sql_info_batch(s, call, (const SQL(CommandGetSqlInfo) *)cmd, out, err);
  if (IS(cmd, command_get_xdbc_type_info))
    return type_info_batch((const SQL(CommandGetXdbcTypeInfo) *)cmd, out, err);
  return keys_batch(s, call, cmd, out, err);
}

int wg__fsql_meta_info(struct wg_server *s, struct wg_rpc_call *call, const ProtobufCMessage *cmd,
                       struct wg__fsql_info *out, struct wg_error *err) {
  (void)s;
  (void)call;
  struct ArrowSchema schema;
  WG_RETURN_NOT_OK(meta_schema(cmd, &schema, err));
  int rc = wg_flight_schema_bytes(&schema, &out->schema, err);
  wg_schema_release(&schema);
  if (rc == 0) rc = wg__fsql_pack_any(cmd, &out->ticket, err);
  out->rows = -1;
  return rc;
}

int wg__fsql_meta_get(struct wg_server *s, struct wg_rpc_call *call, const ProtobufCMessage *cmd,
                      struct wg__fsql_result *out, struct wg_error *err) {
  struct ArrowSchema schema;
  WG_RETURN_NOT_OK(meta_schema(cmd, &schema, err));
  struct ArrowArray batch = {0};
  int rc = meta_batch(s, call, cmd, &batch, err);
  if (rc == 0) rc = wg_stream_single(&schema, &batch, &out->stream, err);
  wg_schema_release(&schema);
  wg_array_release(&batch);
  return rc;
}
