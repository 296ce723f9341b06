/* wigeon: Flight SQL's metadata commands (src/server/fsql_meta.c) through a real server on
 * loopback: each CommandGet* packed from the protobuf-c structs, GetFlightInfo, then DoGet of its
 * ticket; the result schemas checked field by field against FlightSql.proto, the rows against
 * DuckDB's own information_schema, the filters (LIKE, table types, quotes), the keys, SqlInfo and
 * XdbcTypeInfo. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/array.h"
#include "flight/flight.h"
#include "proto/flight.pb-c.h"
#include "proto/flight_sql.pb-c.h"
#include "rpc/rpc.h"
#include "support/server_fixture.h"
#include "test.h"

#define SQLM(x) Arrow__Flight__Protocol__Sql__##x
#define INIT(x) ARROW__FLIGHT__PROTOCOL__SQL__##x##__INIT

/* ---- the wire -------------------------------------------------------------------------------- */
/* m packed as a google.protobuf.Any (type_url 1, value 2: the wire form of Flight's Action). */
static size_t pack_any(const ProtobufCMessage *m, uint8_t **out) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *v = malloc(n + 1);
  protobuf_c_message_pack(m, v);
  char url[160];
  snprintf(url, sizeof(url), "type.googleapis.com/%s", m->descriptor->name);
  Arrow__Flight__Protocol__Action any = ARROW__FLIGHT__PROTOCOL__ACTION__INIT;
  any.type = url;
  any.body.data = v;
  any.body.len = n;
  size_t len = arrow__flight__protocol__action__get_packed_size(&any);
  *out = malloc(len);
  arrow__flight__protocol__action__pack(&any, *out);
  free(v);
  return len;
}

/* GetFlightInfo of cmd: the FlightInfo (owned by the caller), or the call's errno. */
static int flight_info(const char *uri, const ProtobufCMessage *cmd,
                       Arrow__Flight__Protocol__FlightInfo **out, struct wg_error *err) {
  *out = NULL;
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
  d.cmd.len = pack_any(cmd, &d.cmd.data);
  struct wg_rpc_channel *ch;
  int rc = wg_rpc_channel_create(&ch, uri, err);
  struct wg_rpc_client_call *call = NULL;
  if (rc == 0)
    rc = wg_rpc_client_call_start(ch, WG_FLIGHT_SERVICE "GetFlightInfo", 10000, NULL, &call, err);
  if (rc == 0) {
    grpc_byte_buffer *bb;
    if (wg_flight_pack(&d.base, &bb, err) == 0) wg_rpc_client_call_send(call, bb);
    wg_rpc_client_call_close_send(call);
    grpc_byte_buffer *r = NULL;
    if (wg_rpc_client_call_recv(call, &r) == 0 && r != NULL) {
      ProtobufCMessage *m = NULL;
      if (wg_flight_unpack(&arrow__flight__protocol__flight_info__descriptor, r, &m, err) == 0)
        *out = (Arrow__Flight__Protocol__FlightInfo *)m;
      grpc_byte_buffer_destroy(r);
    }
    grpc_status_code code;
    rc = wg_rpc_client_call_finish(call, &code, err);
    wg_rpc_client_call_destroy(call);
  }
  if (rc == 0) wg_rpc_channel_destroy(ch);
  else if (ch != NULL) wg_rpc_channel_destroy(ch);
  free(d.cmd.data);
  if (rc == 0 && *out == NULL) rc = wg_error_set(err, EPROTO, "no FlightInfo");
  if (rc != 0 && *out != NULL) {
    protobuf_c_message_free_unpacked(&(*out)->base, NULL);
    *out = NULL;
  }
  return rc;
}

/* A command's result: the FlightInfo's schema, and the rows of DoGet of its ticket (one batch;
 * the tests' results are small), whose schema must be the FlightInfo's. */
struct result {
  struct ArrowSchema info_schema, schema;
  struct ArrowArray batch; /* release NULL: no rows */
};

static void result_reset(struct result *r) {
  wg_schema_release(&r->info_schema);
  wg_schema_release(&r->schema);
  wg_array_release(&r->batch);
}

static int run(const char *uri, wg_client *c, const ProtobufCMessage *cmd, struct result *out,
               struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  Arrow__Flight__Protocol__FlightInfo *fi;
  WG_RETURN_NOT_OK(flight_info(uri, cmd, &fi, err));
  struct wg_bytes sb = {fi->schema.data, (int64_t)fi->schema.len};
  int rc = wg_flight_schema_parse(sb, &out->info_schema, err);
  if (rc == 0 && (fi->n_endpoint != 1 || fi->endpoint[0]->ticket == NULL))
    rc = wg_error_set(err, EPROTO, "%zu endpoints", fi->n_endpoint);
  struct wg_status st;
  struct ArrowArrayStream s = {0};
  if (rc == 0 && wg_do_get(c, fi->endpoint[0]->ticket->ticket.data,
                           fi->endpoint[0]->ticket->ticket.len, &s, &st) != 0)
    rc = wg_error_set(err, st.sys_errno ? st.sys_errno : EIO, "%s", st.message);
  protobuf_c_message_free_unpacked(&fi->base, NULL);
  int code = 0;
  if (rc == 0 && (code = s.get_schema(&s, &out->schema)) != 0)
    rc = wg_error_set(err, wg_fx_stream_failed(&s, code, &st), "get_schema: %s", st.message);
  if (rc == 0 && (code = s.get_next(&s, &out->batch)) != 0)
    rc = wg_error_set(err, wg_fx_stream_failed(&s, code, &st), "get_next: %s", st.message);
  if (rc == 0 && out->batch.release != NULL) {
    struct ArrowArray more;
    if (s.get_next(&s, &more) != 0 || more.release != NULL) {
      wg_array_release(&more);
      rc = wg_error_set(err, EPROTO, "more than one batch");
    }
  }
  if (rc == 0 && !wg_schema_same(&out->info_schema, &out->schema))
    rc = wg_error_set(err, EPROTO, "DoGet's schema is not GetFlightInfo's");
  wg_stream_release(&s);
  if (rc != 0) result_reset(out);
  return rc;
}

static int64_t rows_of(const struct result *r) { return r->batch.release ? r->batch.length : 0; }

/* Cell i of a utf8/binary column (NULL for a null; *n its length). */
static const char *str_at(const struct ArrowArray *a, int64_t i, int64_t *n) {
  i += a->offset;
  const uint8_t *valid = a->buffers[0];
  if (valid != NULL && !wg_bit_get(valid, i)) return NULL;
  int32_t o0, o1;
  memcpy(&o0, (const uint8_t *)a->buffers[1] + 4 * i, 4);
  memcpy(&o1, (const uint8_t *)a->buffers[1] + 4 * (i + 1), 4);
  if (n != NULL) *n = o1 - o0;
  return (const char *)a->buffers[2] + o0;
}

/* Cell i as a NUL-terminated copy in buf ("<null>" for a null). */
static const char *text(const struct ArrowArray *a, int64_t i, char *buf, size_t size) {
  int64_t n = 0;
  const char *p = str_at(a, i, &n);
  if (p == NULL) return "<null>";
  snprintf(buf, size, "%.*s", (int)n, p);
  return buf;
}

static int32_t i32_at(const struct ArrowArray *a, int64_t i) {
  int32_t v;
  memcpy(&v, (const uint8_t *)a->buffers[1] + 4 * (i + a->offset), 4);
  return v;
}

/* ---- expected schemas (FlightSql.proto) ------------------------------------------------------- */
struct field {
  const char *name, *format;
  bool nullable;
};

static void check_fields(const struct ArrowSchema *s, const struct field *f, int n) {
  ASSERT_STREQ(s->format, "+s");
  ASSERT_EQ(s->n_children, n);
  for (int i = 0; i < n; i++) {
    const struct ArrowSchema *c = s->children[i];
    if (strcmp(c->name, f[i].name) != 0 || strcmp(c->format, f[i].format) != 0 ||
        ((c->flags & ARROW_FLAG_NULLABLE) != 0) != f[i].nullable) {
      TEST_FAIL_("field %d: got %s %s %s, want %s %s %s", i, c->name, c->format,
                 c->flags & ARROW_FLAG_NULLABLE ? "null" : "not null", f[i].name, f[i].format,
                 f[i].nullable ? "null" : "not null");
      return;
    }
  }
}

static const struct field catalogs_f[] = {{"catalog_name", "u", false}};
static const struct field schemas_f[] = {{"catalog_name", "u", true},
                                         {"db_schema_name", "u", false}};
static const struct field tables_f[] = {{"catalog_name", "u", true},
                                        {"db_schema_name", "u", true},
                                        {"table_name", "u", false},
                                        {"table_type", "u", false},
                                        {"table_schema", "z", false}};
static const struct field types_f[] = {{"table_type", "u", false}};
static const struct field pk_f[] = {{"catalog_name", "u", true}, {"db_schema_name", "u", true},
                                    {"table_name", "u", false},  {"column_name", "u", false},
                                    {"key_sequence", "i", false}, {"key_name", "u", true}};
static const struct field fk_f[] = {
    {"pk_catalog_name", "u", true}, {"pk_db_schema_name", "u", true},
    {"pk_table_name", "u", false},  {"pk_column_name", "u", false},
    {"fk_catalog_name", "u", true}, {"fk_db_schema_name", "u", true},
    {"fk_table_name", "u", false},  {"fk_column_name", "u", false},
    {"key_sequence", "i", false},   {"fk_key_name", "u", true},
    {"pk_key_name", "u", true},     {"update_rule", "C", false},
    {"delete_rule", "C", false}};
static const struct field info_f[] = {{"info_name", "I", false},
                                      {"value", "+ud:0,1,2,3,4,5", false}};
static const struct field union_f[] = {
    {"string_value", "u", false}, {"bool_value", "b", false},   {"bigint_value", "l", false},
    {"int32_bitmask", "i", false}, {"string_list", "+l", false},
    {"int32_to_int32_list_map", "+m", false}};
static const struct field xdbc_f[] = {
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
#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- the database ------------------------------------------------------------------------------ */
struct db {
  char dir[256];
  struct wg_fx_server fx;
  wg_client *c;
};

static const char *const setup_sql[] = {
    "CREATE SCHEMA s2",
    "CREATE TABLE t1 (a INTEGER, b VARCHAR)",
    "CREATE TABLE t2 (x DOUBLE)",
    "CREATE TABLE tx1 (y INTEGER)",
    "CREATE TABLE \"a_b\" (z INTEGER)",
    "CREATE TABLE \"axb\" (z INTEGER)",
    "CREATE TABLE s2.t3 (d DECIMAL(10, 2), ts TIMESTAMP, l INTEGER[])",
    "CREATE VIEW v1 AS SELECT a FROM t1",
    "CREATE TABLE p (id INTEGER, k INTEGER, name VARCHAR, PRIMARY KEY (id, k))",
    "CREATE TABLE f (x INTEGER, y INTEGER, FOREIGN KEY (x, y) REFERENCES p (id, k))",
    "CREATE TABLE u (id INTEGER PRIMARY KEY)",
    "CREATE TABLE g (uid INTEGER REFERENCES u (id))",
};

static int db_open(struct db *d) {
  if (wg_fx_tmpdir(d->dir, sizeof(d->dir)) != 0) return EIO;
  char path[320];
  snprintf(path, sizeof(path), "%s/meta.duckdb", d->dir);
  struct wg_server_options o = {.db_path = path, .threads = 2};
  if (wg_fx_server_start(&d->fx, &o) != 0) return EIO;
  struct wg_status st;
  if (wg_fx_connect(&d->c, d->fx.uri, &st) != 0) return EIO;
  for (int i = 0; i < N(setup_sql); i++) {
    int64_t rows, batches;
    int rc = wg_fx_query_count(d->c, setup_sql[i], &rows, &batches, &st);
    if (rc != 0) {
      fprintf(stderr, "%s: %s\n", setup_sql[i], st.message);
      return rc;
    }
  }
  return 0;
}

static void db_close(struct db *d) {
  wg_disconnect(d->c);
  wg_fx_server_stop(&d->fx);
  wg_fx_rmdir(d->dir);
}

/* ---- tests ------------------------------------------------------------------------------------- */
static void every_command_answers_the_spec_schema(void) {
  struct db d;
  ASSERT_EQ(db_open(&d), 0);
  struct wg_error err;
  struct result r;
  SQLM(CommandGetCatalogs) cat = INIT(COMMAND_GET_CATALOGS);
  ASSERT_OK(run(d.fx.uri, d.c, &cat.base, &r, &err), &err);
  check_fields(&r.schema, catalogs_f, N(catalogs_f));
  ASSERT_EQ(rows_of(&r), 1);
  char buf[256];
  ASSERT_STREQ(text(r.batch.children[0], 0, buf, sizeof(buf)), "meta"); /* the file's stem */
  result_reset(&r);
  SQLM(CommandGetDbSchemas) sch = INIT(COMMAND_GET_DB_SCHEMAS);
  ASSERT_OK(run(d.fx.uri, d.c, &sch.base, &r, &err), &err);
  check_fields(&r.schema, schemas_f, N(schemas_f));
  result_reset(&r);
  SQLM(CommandGetTables) tab = INIT(COMMAND_GET_TABLES);
  ASSERT_OK(run(d.fx.uri, d.c, &tab.base, &r, &err), &err);
  check_fields(&r.schema, tables_f, 4);
  result_reset(&r);
  tab.has_include_schema = 1;
  tab.include_schema = 1;
  ASSERT_OK(run(d.fx.uri, d.c, &tab.base, &r, &err), &err);
  check_fields(&r.schema, tables_f, 5);
  result_reset(&r);
  SQLM(CommandGetTableTypes) tt = INIT(COMMAND_GET_TABLE_TYPES);
  ASSERT_OK(run(d.fx.uri, d.c, &tt.base, &r, &err), &err);
  check_fields(&r.schema, types_f, 1);
  ASSERT_EQ(rows_of(&r), 3); /* information_schema.tables' kinds */
  ASSERT_STREQ(text(r.batch.children[0], 0, buf, sizeof(buf)), "BASE TABLE");
  ASSERT_STREQ(text(r.batch.children[0], 1, buf, sizeof(buf)), "LOCAL TEMPORARY");
  ASSERT_STREQ(text(r.batch.children[0], 2, buf, sizeof(buf)), "VIEW");
  result_reset(&r);
  SQLM(CommandGetPrimaryKeys) pk = INIT(COMMAND_GET_PRIMARY_KEYS);
  pk.table = "p";
  ASSERT_OK(run(d.fx.uri, d.c, &pk.base, &r, &err), &err);
  check_fields(&r.schema, pk_f, N(pk_f));
  result_reset(&r);
  SQLM(CommandGetExportedKeys) ek = INIT(COMMAND_GET_EXPORTED_KEYS);
  ek.table = "p";
  ASSERT_OK(run(d.fx.uri, d.c, &ek.base, &r, &err), &err);
  check_fields(&r.schema, fk_f, N(fk_f));
  result_reset(&r);
  SQLM(CommandGetImportedKeys) ik = INIT(COMMAND_GET_IMPORTED_KEYS);
  ik.table = "f";
  ASSERT_OK(run(d.fx.uri, d.c, &ik.base, &r, &err), &err);
  check_fields(&r.schema, fk_f, N(fk_f));
  result_reset(&r);
  SQLM(CommandGetCrossReference) xr = INIT(COMMAND_GET_CROSS_REFERENCE);
  xr.pk_table = "p";
  xr.fk_table = "f";
  ASSERT_OK(run(d.fx.uri, d.c, &xr.base, &r, &err), &err);
  check_fields(&r.schema, fk_f, N(fk_f));
  result_reset(&r);
  SQLM(CommandGetSqlInfo) si = INIT(COMMAND_GET_SQL_INFO);
  ASSERT_OK(run(d.fx.uri, d.c, &si.base, &r, &err), &err);
  check_fields(&r.schema, info_f, N(info_f));
  const struct ArrowSchema *u = r.schema.children[1];
  ASSERT_EQ(u->n_children, 6);
  for (int i = 0; i < 6; i++) {
    ASSERT_STREQ(u->children[i]->name, union_f[i].name);
    ASSERT_STREQ(u->children[i]->format, union_f[i].format);
  }
  ASSERT_STREQ(u->children[4]->children[0]->format, "u");
  const struct ArrowSchema *entries = u->children[5]->children[0];
  ASSERT_STREQ(entries->format, "+s");
  ASSERT_STREQ(entries->children[0]->name, "key");
  ASSERT_STREQ(entries->children[0]->format, "i");
  ASSERT_EQ(entries->children[0]->flags & ARROW_FLAG_NULLABLE, 0);
  ASSERT_STREQ(entries->children[1]->name, "value");
  ASSERT_STREQ(entries->children[1]->format, "+l");
  ASSERT_STREQ(entries->children[1]->children[0]->format, "i");
  result_reset(&r);
  SQLM(CommandGetXdbcTypeInfo) xt = INIT(COMMAND_GET_XDBC_TYPE_INFO);
  ASSERT_OK(run(d.fx.uri, d.c, &xt.base, &r, &err), &err);
  check_fields(&r.schema, xdbc_f, N(xdbc_f));
  ASSERT_STREQ(r.schema.children[5]->children[0]->format, "u");
  ASSERT_EQ(r.schema.children[5]->children[0]->flags & ARROW_FLAG_NULLABLE, 0);
  result_reset(&r);
  db_close(&d);
}

/* GetTables with no filter is information_schema.tables of the database, row for row. */
static void get_tables_is_information_schema_tables(void) {
  struct db d;
  ASSERT_EQ(db_open(&d), 0);
  struct wg_error err;
  struct result r;
  SQLM(CommandGetTables) tab = INIT(COMMAND_GET_TABLES);
  ASSERT_OK(run(d.fx.uri, d.c, &tab.base, &r, &err), &err);
  struct ArrowArrayStream s;
  struct wg_status st;
  ASSERT_OK(wg_query(d.c,
                     "SELECT table_catalog || '|' || table_schema || '|' || table_name || '|' || "
                     "table_type FROM information_schema.tables WHERE table_catalog NOT IN "
                     "('system', 'temp') AND table_schema <> 'wigeon_internal' ORDER BY table_catalog, table_schema, table_name",
                     &s, &st),
            st.message);
  struct ArrowArray want;
  ASSERT_EQ(s.get_next(&s, &want), 0);
  ASSERT_EQ(rows_of(&r), want.length);
  ASSERT_EQ(want.length, (int64_t)N(setup_sql) - 1); /* every table and the view */
  for (int64_t i = 0; i < want.length; i++) {
    char got[512], a[4][128], w[512];
    snprintf(got, sizeof(got), "%s|%s|%s|%s", text(r.batch.children[0], i, a[0], 128),
             text(r.batch.children[1], i, a[1], 128), text(r.batch.children[2], i, a[2], 128),
             text(r.batch.children[3], i, a[3], 128));
    ASSERT_STREQ(got, text(want.children[0], i, w, sizeof(w)));
  }
  wg_array_release(&want);
  s.release(&s);
  result_reset(&r);
  db_close(&d);
}

/* The table names GetTables answers for these filters, comma-separated, into out. */
static int table_names(struct db *d, const char *schema, const char *table, char **types,
                       size_t n_types, char *out, size_t size, struct wg_error *err) {
  SQLM(CommandGetTables) tab = INIT(COMMAND_GET_TABLES);
  tab.db_schema_filter_pattern = (char *)schema;
  tab.table_name_filter_pattern = (char *)table;
  tab.table_types = types;
  tab.n_table_types = n_types;
  struct result r;
  WG_RETURN_NOT_OK(run(d->fx.uri, d->c, &tab.base, &r, err));
  out[0] = '\0';
  for (int64_t i = 0; i < rows_of(&r); i++) {
    char b[128];
    size_t len = strlen(out);
    snprintf(out + len, size - len, "%s%s", i ? "," : "", text(r.batch.children[2], i, b, 128));
  }
  result_reset(&r);
  return 0;
}

static void get_tables_filters_are_like_patterns_and_types(void) {
  struct db d;
  ASSERT_EQ(db_open(&d), 0);
  struct wg_error err;
  char got[1024];
  ASSERT_OK(table_names(&d, NULL, "t_", NULL, 0, got, sizeof(got), &err), &err);
  ASSERT_STREQ(got, "t1,t2,t3"); /* every schema's */
  ASSERT_OK(table_names(&d, NULL, "t%", NULL, 0, got, sizeof(got), &err), &err);
  ASSERT_STREQ(got, "t1,t2,tx1,t3");
  ASSERT_OK(table_names(&d, "s%", NULL, NULL, 0, got, sizeof(got), &err), &err);
  ASSERT_STREQ(got, "t3");
  ASSERT_OK(table_names(&d, "main", "a\\_b", NULL, 0, got, sizeof(got), &err), &err);
  ASSERT_STREQ(got, "a_b"); /* the escaped _ is itself, not any character */
  ASSERT_OK(table_names(&d, "main", "a_b", NULL, 0, got, sizeof(got), &err), &err);
  ASSERT_STREQ(got, "a_b,axb");
  char *view[] = {"VIEW"};
  ASSERT_OK(table_names(&d, NULL, NULL, view, 1, got, sizeof(got), &err), &err);
  ASSERT_STREQ(got, "v1");
  char *both[] = {"VIEW", "BASE TABLE"};
  ASSERT_OK(table_names(&d, NULL, "%1", both, 2, got, sizeof(got), &err), &err);
  ASSERT_STREQ(got, "t1,tx1,v1");
  /* a filter is data: quotes match nothing and run nothing */
  ASSERT_OK(table_names(&d, NULL, "%'; DROP TABLE t1; --", NULL, 0, got, sizeof(got), &err),
            &err);
  ASSERT_STREQ(got, "");
  ASSERT_OK(table_names(&d, "main' OR '1'='1", NULL, NULL, 0, got, sizeof(got), &err), &err);
  ASSERT_STREQ(got, "");
  ASSERT_OK(table_names(&d, NULL, "t1", NULL, 0, got, sizeof(got), &err), &err);
  ASSERT_STREQ(got, "t1");
  /* schemas: LIKE too, and the catalog exactly */
  SQLM(CommandGetDbSchemas) sch = INIT(COMMAND_GET_DB_SCHEMAS);
  struct result r;
  ASSERT_OK(run(d.fx.uri, d.c, &sch.base, &r, &err), &err);
  ASSERT_EQ(rows_of(&r), 2); /* main, s2: no system, temp or wigeon_internal */
  char b[128];
  ASSERT_STREQ(text(r.batch.children[1], 0, b, 128), "main");
  ASSERT_STREQ(text(r.batch.children[1], 1, b, 128), "s2");
  result_reset(&r);
  sch.db_schema_filter_pattern = "s_";
  ASSERT_OK(run(d.fx.uri, d.c, &sch.base, &r, &err), &err);
  ASSERT_EQ(rows_of(&r), 1);
  ASSERT_STREQ(text(r.batch.children[0], 0, b, 128), "meta");
  result_reset(&r);
  sch.catalog = "other";
  ASSERT_OK(run(d.fx.uri, d.c, &sch.base, &r, &err), &err);
  ASSERT_EQ(rows_of(&r), 0);
  result_reset(&r);
  db_close(&d);
}

/* Field f's metadata value for key as a NUL-terminated copy in buf, or NULL when absent. */
static const char *md(const struct ArrowSchema *f, const char *key, char *buf, size_t size) {
  struct wg_metadata_reader r;
  struct wg_bytes k, v;
  wg_metadata_reader_init(&r, f->metadata);
  while (wg_metadata_reader_next(&r, &k, &v) == 1) {
    if (k.size == (int64_t)strlen(key) && memcmp(k.data, key, (size_t)k.size) == 0) {
      snprintf(buf, size, "%.*s", (int)v.size, (const char *)v.data);
      return buf;
    }
  }
  return NULL;
}
#define FSQL_KEY "ARROW:FLIGHT:SQL:"

/* include_schema: each table_schema has the names and types of the schema Flight's own
 * GetFlightInfo of the table gives (whose fields are all nullable, as its DoGet streams them),
 * plus each column's nullability and Flight SQL's column metadata: where it lives, its type. */
static void include_schema_decodes_to_the_tables_schema(void) {
  struct db d;
  ASSERT_EQ(db_open(&d), 0);
  struct wg_error err;
  SQLM(CommandGetTables) tab = INIT(COMMAND_GET_TABLES);
  tab.has_include_schema = 1;
  tab.include_schema = 1;
  tab.table_name_filter_pattern = "t%";
  struct result r;
  ASSERT_OK(run(d.fx.uri, d.c, &tab.base, &r, &err), &err);
  ASSERT_EQ(rows_of(&r), 4);
  for (int64_t i = 0; i < rows_of(&r); i++) {
    char cn[128], sn[128], tn[128], b[128];
    int64_t n = 0;
    const char *p = str_at(r.batch.children[4], i, &n);
    ASSERT_TRUE(p != NULL);
    struct wg_bytes bytes = {(const uint8_t *)p, n};
    struct ArrowSchema got;
    ASSERT_OK(wg_flight_schema_parse(bytes, &got, &err), &err);
    struct wg_flight_info fi;
    struct wg_status st;
    ASSERT_OK(wg_flight_info(d.c, text(r.batch.children[1], i, sn, 128),
                             text(r.batch.children[2], i, tn, 128), NULL, &fi, &st),
              st.message);
    text(r.batch.children[0], i, cn, 128);
    ASSERT_EQ(got.n_children, fi.schema.n_children);
    for (int64_t j = 0; j < got.n_children; j++) {
      const struct ArrowSchema *g = got.children[j], *w = fi.schema.children[j];
      ASSERT_STREQ(g->name, w->name);
      ASSERT_STREQ(g->format, w->format);
      ASSERT_TRUE((w->flags & ARROW_FLAG_NULLABLE) != 0); /* plain Flight: as DoGet streams it */
      ASSERT_TRUE((g->flags & ARROW_FLAG_NULLABLE) != 0); /* no NOT NULL column in t% */
      ASSERT_EQ(g->n_children, w->n_children);
      for (int64_t k = 0; k < g->n_children; k++)
        ASSERT_TRUE(wg_schema_same(g->children[k], w->children[k]));
      ASSERT_STREQ(md(g, FSQL_KEY "CATALOG_NAME", b, 128), cn);
      ASSERT_STREQ(md(g, FSQL_KEY "DB_SCHEMA_NAME", b, 128), sn);
      ASSERT_STREQ(md(g, FSQL_KEY "TABLE_NAME", b, 128), tn);
      ASSERT_STREQ(md(g, FSQL_KEY "IS_AUTO_INCREMENT", b, 128), "0");
      ASSERT_TRUE(md(g, FSQL_KEY "TYPE_NAME", b, 128) != NULL);
    }
    if (strcmp(tn, "t3") == 0) {
      ASSERT_EQ(got.n_children, 3);
      ASSERT_STREQ(got.children[0]->format, "d:10,2");
      ASSERT_STREQ(got.children[2]->format, "+l");
      ASSERT_STREQ(md(got.children[0], FSQL_KEY "TYPE_NAME", b, 128), "DECIMAL(10,2)");
      ASSERT_STREQ(md(got.children[0], FSQL_KEY "PRECISION", b, 128), "10");
      ASSERT_STREQ(md(got.children[0], FSQL_KEY "SCALE", b, 128), "2");
      ASSERT_STREQ(md(got.children[1], FSQL_KEY "TYPE_NAME", b, 128), "TIMESTAMP");
      ASSERT_TRUE(md(got.children[1], FSQL_KEY "PRECISION", b, 128) == NULL);
      ASSERT_STREQ(md(got.children[2], FSQL_KEY "TYPE_NAME", b, 128), "INTEGER[]");
    }
    if (strcmp(tn, "t1") == 0)
      ASSERT_STREQ(md(got.children[1], FSQL_KEY "TYPE_NAME", b, 128), "VARCHAR");
    wg_schema_release(&got);
    wg_flight_info_reset(&fi);
  }
  result_reset(&r);
  db_close(&d);
}

/* A table_schema field is nullable exactly when its column is (PRIMARY KEY columns are NOT NULL);
 * a view's columns are all nullable. */
static void table_schema_fields_have_the_columns_nullability(void) {
  struct db d;
  ASSERT_EQ(db_open(&d), 0);
  struct wg_error err;
  SQLM(CommandGetTables) tab = INIT(COMMAND_GET_TABLES);
  tab.has_include_schema = 1;
  tab.include_schema = 1;
  const char *names[] = {"p", "u", "v1"};
  const char *want[] = {"001", "0", "1"}; /* per field: 1 nullable */
  for (int t = 0; t < 3; t++) {
    tab.table_name_filter_pattern = (char *)names[t];
    struct result r;
    ASSERT_OK(run(d.fx.uri, d.c, &tab.base, &r, &err), &err);
    ASSERT_EQ(rows_of(&r), 1);
    int64_t n = 0;
    const char *p = str_at(r.batch.children[4], 0, &n);
    ASSERT_TRUE(p != NULL);
    struct wg_bytes bytes = {(const uint8_t *)p, n};
    struct ArrowSchema got;
    ASSERT_OK(wg_flight_schema_parse(bytes, &got, &err), &err);
    ASSERT_EQ(got.n_children, (int64_t)strlen(want[t]));
    for (int64_t j = 0; j < got.n_children; j++) {
      char b[64];
      ASSERT_EQ((got.children[j]->flags & ARROW_FLAG_NULLABLE) != 0, want[t][j] == '1');
      ASSERT_STREQ(md(got.children[j], FSQL_KEY "TABLE_NAME", b, 64), names[t]);
    }
    wg_schema_release(&got);
    result_reset(&r);
  }
  db_close(&d);
}

static void keys_come_from_the_constraints(void) {
  struct db d;
  ASSERT_EQ(db_open(&d), 0);
  struct wg_error err;
  struct result r;
  char b[128];
  SQLM(CommandGetPrimaryKeys) pk = INIT(COMMAND_GET_PRIMARY_KEYS);
  pk.table = "p";
  ASSERT_OK(run(d.fx.uri, d.c, &pk.base, &r, &err), &err);
  ASSERT_EQ(rows_of(&r), 2);
  ASSERT_STREQ(text(r.batch.children[0], 0, b, 128), "meta");
  ASSERT_STREQ(text(r.batch.children[1], 0, b, 128), "main");
  ASSERT_STREQ(text(r.batch.children[3], 0, b, 128), "id");
  ASSERT_STREQ(text(r.batch.children[3], 1, b, 128), "k");
  ASSERT_EQ(i32_at(r.batch.children[4], 0), 1);
  ASSERT_EQ(i32_at(r.batch.children[4], 1), 2);
  ASSERT_STREQ(text(r.batch.children[5], 0, b, 128), "p_id_k_pkey");
  result_reset(&r);
  pk.table = "t1"; /* no primary key */
  ASSERT_OK(run(d.fx.uri, d.c, &pk.base, &r, &err), &err);
  ASSERT_EQ(rows_of(&r), 0);
  result_reset(&r);
  pk.table = NULL;
  Arrow__Flight__Protocol__FlightInfo *fi;
  ASSERT_EQ(flight_info(d.fx.uri, &pk.base, &fi, &err), 0); /* the schema needs no table */
  protobuf_c_message_free_unpacked(&fi->base, NULL);
  ASSERT_NE(run(d.fx.uri, d.c, &pk.base, &r, &err), 0);  /* the rows do */
  /* f (x, y) -> p (id, k) */
  SQLM(CommandGetImportedKeys) ik = INIT(COMMAND_GET_IMPORTED_KEYS);
  ik.table = "f";
  ASSERT_OK(run(d.fx.uri, d.c, &ik.base, &r, &err), &err);
  ASSERT_EQ(rows_of(&r), 2);
  const char *want[2][4] = {{"p", "id", "f", "x"}, {"p", "k", "f", "y"}};
  for (int i = 0; i < 2; i++) {
    ASSERT_STREQ(text(r.batch.children[2], i, b, 128), want[i][0]);
    ASSERT_STREQ(text(r.batch.children[3], i, b, 128), want[i][1]);
    ASSERT_STREQ(text(r.batch.children[6], i, b, 128), want[i][2]);
    ASSERT_STREQ(text(r.batch.children[7], i, b, 128), want[i][3]);
    ASSERT_EQ(i32_at(r.batch.children[8], i), i + 1);
    ASSERT_STREQ(text(r.batch.children[10], i, b, 128), "p_id_k_pkey");
    const uint8_t *upd = r.batch.children[11]->buffers[1], *del = r.batch.children[12]->buffers[1];
    ASSERT_EQ(upd[i], 3); /* NO ACTION */
    ASSERT_EQ(del[i], 3);
  }
  ASSERT_TRUE(strstr(text(r.batch.children[9], 0, b, 128), "fkey") != NULL);
  result_reset(&r);
  SQLM(CommandGetExportedKeys) ek = INIT(COMMAND_GET_EXPORTED_KEYS);
  ek.table = "u";
  ASSERT_OK(run(d.fx.uri, d.c, &ek.base, &r, &err), &err);
  ASSERT_EQ(rows_of(&r), 1);
  ASSERT_STREQ(text(r.batch.children[6], 0, b, 128), "g");
  ASSERT_STREQ(text(r.batch.children[7], 0, b, 128), "uid");
  ASSERT_STREQ(text(r.batch.children[3], 0, b, 128), "id");
  result_reset(&r);
  SQLM(CommandGetCrossReference) xr = INIT(COMMAND_GET_CROSS_REFERENCE);
  xr.pk_table = "p";
  xr.fk_table = "f";
  ASSERT_OK(run(d.fx.uri, d.c, &xr.base, &r, &err), &err);
  ASSERT_EQ(rows_of(&r), 2);
  result_reset(&r);
  xr.fk_table = "g"; /* g references u, not p */
  ASSERT_OK(run(d.fx.uri, d.c, &xr.base, &r, &err), &err);
  ASSERT_EQ(rows_of(&r), 0);
  result_reset(&r);
  ik.table = NULL; /* the keys of which table? */
  ASSERT_EQ(run(d.fx.uri, d.c, &ik.base, &r, &err), EINVAL);
  ASSERT_TRUE(strstr(err.message, "CommandGetImportedKeys: table required") != NULL);
  db_close(&d);
}

/* Row i of a SqlInfo result: its id, type id and the offset into that child. */
static void info_row(const struct result *r, int64_t i, uint32_t *id, int8_t *type, int32_t *at) {
  memcpy(id, (const uint8_t *)r->batch.children[0]->buffers[1] + 4 * i, 4);
  const struct ArrowArray *u = r->batch.children[1];
  *type = ((const int8_t *)u->buffers[0])[i];
  memcpy(at, (const uint8_t *)u->buffers[1] + 4 * i, 4);
}

static void sql_info_answers_the_ids_asked_and_all(void) {
  struct db d;
  ASSERT_EQ(db_open(&d), 0);
  struct wg_error err;
  struct result r;
  char b[256];
  SQLM(CommandGetSqlInfo) si = INIT(COMMAND_GET_SQL_INFO);
  uint32_t ids[] = {504, 0, 8, 508, 9999, 562};
  si.info = ids;
  si.n_info = 6;
  ASSERT_OK(run(d.fx.uri, d.c, &si.base, &r, &err), &err);
  ASSERT_EQ(rows_of(&r), 5); /* 9999 is no id: left out */
  const struct ArrowArray *u = r.batch.children[1];
  uint32_t id;
  int8_t type;
  int32_t at;
  info_row(&r, 0, &id, &type, &at);
  ASSERT_EQ(id, 504);
  ASSERT_EQ(type, 0);
  ASSERT_STREQ(text(u->children[0], at, b, sizeof(b)), "\"");
  info_row(&r, 1, &id, &type, &at);
  ASSERT_EQ(id, 0);
  ASSERT_STREQ(text(u->children[0], at, b, sizeof(b)), "wigeon");
  info_row(&r, 2, &id, &type, &at);
  ASSERT_EQ(id, 8);
  ASSERT_EQ(type, 3);
  ASSERT_EQ(i32_at(u->children[3], at), 1); /* SQL_SUPPORTED_TRANSACTION_TRANSACTION */
  info_row(&r, 3, &id, &type, &at);
  ASSERT_EQ(id, 508);
  ASSERT_EQ(type, 4);
  const struct ArrowArray *list = u->children[4];
  int32_t o0 = i32_at(list, at), o1;
  memcpy(&o1, (const uint8_t *)list->buffers[1] + 4 * (at + 1), 4);
  ASSERT_TRUE(o1 - o0 > 100); /* DuckDB's keywords */
  bool select = false;
  for (int32_t k = o0; k < o1; k++)
    select = select || strcmp(text(list->children[0], k, b, sizeof(b)), "SELECT") == 0;
  ASSERT_TRUE(select);
  info_row(&r, 4, &id, &type, &at);
  ASSERT_EQ(id, 562);
  ASSERT_EQ(type, 2); /* bigint, as JDBC reads it */
  result_reset(&r);
  /* the function lists: DuckDB's functions of each kind */
  uint32_t fn_ids[] = {509, 510, 511, 512};
  const char *fn_want[] = {"ABS", "LOWER", "CURRENT_DATABASE", "DATE_PART"};
  si.info = fn_ids;
  si.n_info = 4;
  ASSERT_OK(run(d.fx.uri, d.c, &si.base, &r, &err), &err);
  ASSERT_EQ(rows_of(&r), 4);
  u = r.batch.children[1];
  list = u->children[4];
  for (int i = 0; i < 4; i++) {
    info_row(&r, i, &id, &type, &at);
    ASSERT_EQ(type, 4);
    o0 = i32_at(list, at);
    memcpy(&o1, (const uint8_t *)list->buffers[1] + 4 * (at + 1), 4);
    bool found = false;
    for (int32_t k = o0; k < o1; k++)
      found = found || strcmp(text(list->children[0], k, b, sizeof(b)), fn_want[i]) == 0;
    if (!found) TEST_FAIL_("SqlInfo %u has no %s", id, fn_want[i]);
  }
  result_reset(&r);
  si.n_info = 0; /* all */
  ASSERT_OK(run(d.fx.uri, d.c, &si.base, &r, &err), &err);
  bool seen[600] = {false};
  for (int64_t i = 0; i < rows_of(&r); i++) {
    info_row(&r, i, &id, &type, &at);
    ASSERT_TRUE(id < 600 && !seen[id]);
    seen[id] = true;
    ASSERT_TRUE(type >= 0 && type <= 5);
  }
  /* the union child of each id is the type FlightSql.proto gives it (drivers cast by it), but
   * 562, a bigint as JDBC reads it (drivers.md) */
  static const uint32_t strs[] = {0, 1, 2, 504, 513, 514, 529, 530, 531};
  static const uint32_t i32s[] = {8,   100, 101, 503, 505, 507, 522, 525, 526, 528,
                                  533, 534, 535, 538, 540, 564, 567, 568, 569, 570, 571};
  static const uint32_t lists[] = {508, 509, 510, 511, 512};
  int8_t want_type[600];
  memset(want_type, 1, sizeof(want_type)); /* the rest are booleans */
  for (uint32_t i = 541; i <= 562; i++)
    want_type[i] = i == 556 ? 1 : 2;
  for (int i = 0; i < N(strs); i++)
    want_type[strs[i]] = 0;
  for (int i = 0; i < N(i32s); i++)
    want_type[i32s[i]] = 3;
  for (int i = 0; i < N(lists); i++)
    want_type[lists[i]] = 4;
  want_type[517] = 5;
  for (int64_t i = 0; i < rows_of(&r); i++) {
    info_row(&r, i, &id, &type, &at);
    if (type != want_type[id]) {
      TEST_FAIL_("SqlInfo %u: type id %d, want %d", id, type, want_type[id]);
      return;
    }
  }
  uint32_t must[] = {0, 1, 2, 3, 4, 5, 8, 9, 100, 101};
  for (int i = 0; i < N(must); i++)
    ASSERT_TRUE(seen[must[i]]);
  for (uint32_t i = 500; i <= 576; i++)
    ASSERT_TRUE(seen[i]);
  result_reset(&r);
  db_close(&d);
}

static void xdbc_type_info_lists_duckdb_types_and_filters_by_data_type(void) {
  struct db d;
  ASSERT_EQ(db_open(&d), 0);
  struct wg_error err;
  struct result r;
  char b[128];
  SQLM(CommandGetXdbcTypeInfo) xt = INIT(COMMAND_GET_XDBC_TYPE_INFO);
  ASSERT_OK(run(d.fx.uri, d.c, &xt.base, &r, &err), &err);
  ASSERT_TRUE(rows_of(&r) >= 15);
  bool varchar = false;
  for (int64_t i = 0; i < rows_of(&r); i++) {
    if (i > 0) ASSERT_TRUE(i32_at(r.batch.children[1], i - 1) <= i32_at(r.batch.children[1], i));
    varchar = varchar || strcmp(text(r.batch.children[0], i, b, 128), "VARCHAR") == 0;
  }
  ASSERT_TRUE(varchar);
  result_reset(&r);
  xt.has_data_type = 1;
  xt.data_type = 4; /* XDBC_INTEGER */
  ASSERT_OK(run(d.fx.uri, d.c, &xt.base, &r, &err), &err);
  ASSERT_EQ(rows_of(&r), 2);
  ASSERT_STREQ(text(r.batch.children[0], 0, b, 128), "INTEGER");
  ASSERT_STREQ(text(r.batch.children[0], 1, b, 128), "UINTEGER");
  result_reset(&r);
  xt.data_type = 3; /* XDBC_DECIMAL: create_params precision, scale */
  ASSERT_OK(run(d.fx.uri, d.c, &xt.base, &r, &err), &err);
  ASSERT_EQ(rows_of(&r), 1);
  const struct ArrowArray *cp = r.batch.children[5];
  ASSERT_EQ(i32_at(cp, 1) - i32_at(cp, 0), 2);
  ASSERT_STREQ(text(cp->children[0], 0, b, 128), "precision");
  result_reset(&r);
  xt.data_type = 777;
  ASSERT_OK(run(d.fx.uri, d.c, &xt.base, &r, &err), &err);
  ASSERT_EQ(rows_of(&r), 0);
  result_reset(&r);
  db_close(&d);
}

int main(void) {
  RUN_TEST(every_command_answers_the_spec_schema);
  RUN_TEST(get_tables_is_information_schema_tables);
  RUN_TEST(get_tables_filters_are_like_patterns_and_types);
  RUN_TEST(include_schema_decodes_to_the_tables_schema);
  RUN_TEST(table_schema_fields_have_the_columns_nullability);
  RUN_TEST(keys_come_from_the_constraints);
  RUN_TEST(sql_info_answers_the_ids_asked_and_all);
  RUN_TEST(xdbc_type_info_lists_duckdb_types_and_filters_by_data_type);
  return TEST_SUMMARY();
}
