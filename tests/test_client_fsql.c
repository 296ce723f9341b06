/* wigeon: the Flight SQL client calls of include/wigeon.h against a real server on loopback,
 * every command, each result compared with DuckDB's own answer to the same question asked as
 * plain SQL through the plain Flight path (information_schema, duckdb_constraints(),
 * duckdb_types(), the same SELECT): values rendered to text by one small renderer for both sides.
 * Requests are built by the library from proto/flight_sql.proto's structs. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arrow/array.h"
#include "client/internal.h" /* wg__do_get_all: several endpoints, which wigeon never gives */
#include "common/buf.h"
#include "flight/flight.h"
#include "support/server_fixture.h"
#include "test.h"
#include "wigeon.h"

static struct wg_fx_server fx;
static char dir[256];
static wg_client *c;

#define ASSERT_WG_OK(expr, st)                                                                     \
  do {                                                                                             \
    int wg_code_ = (expr);                                                                         \
    if (wg_code_ != 0) {                                                                           \
      TEST_FAIL_("%s: %s (%d): %s", #expr, wg_status_code_name(wg_code_), wg_code_,                \
                 (st)->message);                                                                   \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

/* ---- rendering Arrow values as text, the same way for both sides ---- */

static bool valid(const struct ArrowArray *a, int64_t i) {
  const uint8_t *bits = a->n_buffers > 0 ? a->buffers[0] : NULL;
  return a->null_count == 0 || bits == NULL || (bits[i >> 3] >> (i & 7)) & 1;
}

static void cell(struct wg_buf *b, const struct ArrowSchema *s, const struct ArrowArray *a,
                 int64_t row);

static void cell_int(struct wg_buf *b, const char *f, const struct ArrowArray *a, int64_t i) {
  char t[32];
  const void *p = a->buffers[1];
  long long v = 0;
  unsigned long long u = 0;
  switch (f[0]) {
  case 'c': v = ((const int8_t *)p)[i]; break;
  case 's': v = ((const int16_t *)p)[i]; break;
  case 'i': v = ((const int32_t *)p)[i]; break;
  case 'l': v = ((const int64_t *)p)[i]; break;
  case 'C': u = ((const uint8_t *)p)[i]; break;
  case 'S': u = ((const uint16_t *)p)[i]; break;
  case 'I': u = ((const uint32_t *)p)[i]; break;
  default: u = ((const uint64_t *)p)[i]; break;
  }
  if (strchr("csil", f[0]) != NULL)
    snprintf(t, sizeof(t), "%lld", v);
  else
    snprintf(t, sizeof(t), "%llu", u);
  wg_buf_append(b, t, (int64_t)strlen(t));
}

/* Lists, maps, structs, dense unions. */
static void cell_nested(struct wg_buf *b, const struct ArrowSchema *s, const struct ArrowArray *a,
                        int64_t i) {
  const char *f = s->format;
  if (strcmp(f, "+l") == 0 || strcmp(f, "+m") == 0) {
    const int32_t *off = a->buffers[1];
    wg_buf_append(b, "[", 1);
    for (int32_t j = off[i]; j < off[i + 1]; j++) {
      if (j > off[i]) wg_buf_append(b, ",", 1);
      cell(b, s->children[0], a->children[0], j);
    }
    wg_buf_append(b, "]", 1);
  } else if (strcmp(f, "+s") == 0) {
    wg_buf_append(b, "{", 1);
    for (int64_t k = 0; k < s->n_children; k++) {
      if (k > 0) wg_buf_append(b, ",", 1);
      cell(b, s->children[k], a->children[k], i);
    }
    wg_buf_append(b, "}", 1);
  } else { /* "+ud:ids": type ids name the children in the order the format lists them */
    int8_t id = ((const int8_t *)a->buffers[0])[i];
    int32_t off = ((const int32_t *)a->buffers[1])[i];
    int64_t child = -1, k = 0;
    for (const char *p = f + 4; *p != '\0'; k++) {
      if (atoi(p) == id) child = k;
      while (*p != '\0' && *p != ',')
        p++;
      if (*p == ',') p++;
    }
    if (child < 0 || child >= s->n_children) {
      wg_buf_append(b, "?union", 6);
      return;
    }
    cell(b, s->children[child], a->children[child], off);
  }
}

static void cell(struct wg_buf *b, const struct ArrowSchema *s, const struct ArrowArray *a,
                 int64_t row) {
  const char *f = s->format;
  int64_t i = a->offset + row;
  if (strncmp(f, "+u", 2) == 0) {
    cell_nested(b, s, a, i);
    return;
  }
  if (!valid(a, i)) {
    wg_buf_append(b, "NULL", 4);
    return;
  }
  if (strcmp(f, "u") == 0 || strcmp(f, "U") == 0) {
    int64_t lo, hi;
    if (f[0] == 'u') {
      lo = ((const int32_t *)a->buffers[1])[i], hi = ((const int32_t *)a->buffers[1])[i + 1];
    } else {
      lo = ((const int64_t *)a->buffers[1])[i], hi = ((const int64_t *)a->buffers[1])[i + 1];
    }
    wg_buf_append(b, (const char *)a->buffers[2] + lo, hi - lo);
  } else if (strcmp(f, "z") == 0) {
    const int32_t *off = a->buffers[1];
    char t[32];
    snprintf(t, sizeof(t), "<%d bytes>", off[i + 1] - off[i]);
    wg_buf_append(b, t, (int64_t)strlen(t));
  } else if (strcmp(f, "b") == 0) {
    bool v = (((const uint8_t *)a->buffers[1])[i >> 3] >> (i & 7)) & 1;
    wg_buf_append(b, v ? "true" : "false", v ? 4 : 5);
  } else if (strlen(f) == 1 && strchr("csilCSIL", f[0]) != NULL) {
    cell_int(b, f, a, i);
  } else if (f[0] == '+') {
    cell_nested(b, s, a, i);
  } else {
    char t[32];
    snprintf(t, sizeof(t), "?%s", f);
    wg_buf_append(b, t, (int64_t)strlen(t));
  }
}

static int cmp_lines(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Reads the whole stream (released here) into `out`: one line per row, the columns named in
 * cols (NULL-terminated; NULL: all) joined by '|', lines sorted. Returns the stream's errno (its
 * status in *st). *rows (may be NULL) the row count. */
static int render(struct ArrowArrayStream *s, const char *const *cols, struct wg_buf *out,
                  int64_t *rows, struct wg_status *st) {
  struct ArrowSchema schema;
  char **lines = NULL;
  int64_t n = 0, cap = 0;
  int rc = s->get_schema(s, &schema);
  bool have_schema = rc == 0;
  int64_t pick[32], n_pick = 0;
  if (rc == 0) {
    for (int64_t k = 0; k < schema.n_children && n_pick < 32; k++) {
      bool want = cols == NULL;
      for (int j = 0; cols != NULL && cols[j] != NULL; j++)
        want = want || strcmp(cols[j], schema.children[k]->name) == 0;
      if (want) pick[n_pick++] = k;
    }
  }
  while (rc == 0) {
    struct ArrowArray a;
    rc = s->get_next(s, &a);
    if (rc != 0 || a.release == NULL) break;
    for (int64_t r = 0; r < a.length; r++) {
      struct wg_buf line;
      wg_buf_init(&line);
      for (int64_t k = 0; k < n_pick; k++) {
        if (k > 0) wg_buf_append(&line, "|", 1);
        cell(&line, schema.children[pick[k]], a.children[pick[k]], r);
      }
      wg_buf_append_zeros(&line, 1);
      if (n == cap) lines = realloc(lines, (size_t)(cap = cap ? cap * 2 : 64) * sizeof(*lines));
      lines[n++] = (char *)wg_buf_detach(&line);
    }
    a.release(&a);
  }
  if (rc != 0) wg_fx_stream_failed(s, rc, st);
  if (have_schema) schema.release(&schema);
  s->release(s);
  if (n > 0) qsort(lines, (size_t)n, sizeof(*lines), cmp_lines);
  for (int64_t i = 0; i < n; i++) {
    wg_buf_append(out, lines[i], (int64_t)strlen(lines[i]));
    wg_buf_append(out, "\n", 1);
    free(lines[i]);
  }
  free(lines);
  wg_buf_append_zeros(out, 1);
  out->size--;
  if (rows != NULL) *rows = n;
  return rc;
}

/* A Flight SQL command's result, rendered. Returns the gRPC code (run) or errno (stream). */
static int fsql_text(const struct wg_fsql_command *cmd, const char *const *cols,
                     struct wg_buf *out, int64_t *rows, struct wg_status *st) {
  struct ArrowArrayStream s;
  int code = wg_fsql_run(c, cmd, &s, st);
  if (code != 0) return code;
  return render(&s, cols, out, rows, st);
}

/* The same question as plain SQL through the plain Flight path (DoGet of the SQL text). */
static int plain_text(const char *sql, struct wg_buf *out, int64_t *rows, struct wg_status *st) {
  struct ArrowArrayStream s;
  int code = wg_query(c, sql, &s, st);
  if (code != 0) return code;
  return render(&s, NULL, out, rows, st);
}

/* Asserts that the command's columns `cols` equal the rows of `sql`, and that there are some. */
#define ASSERT_SAME(cmd, cols, sql, min_rows)                                                      \
  do {                                                                                             \
    struct wg_buf got_, want_;                                                                     \
    wg_buf_init(&got_);                                                                            \
    wg_buf_init(&want_);                                                                           \
    int64_t n_got_ = 0, n_want_ = 0;                                                               \
    struct wg_status st_;                                                                          \
    int rc_ = plain_text((sql), &want_, &n_want_, &st_);                                           \
    if (rc_ != 0) TEST_FAIL_("reference %s: %s", (sql), st_.message);                             \
    if (rc_ == 0) rc_ = fsql_text((cmd), (cols), &got_, &n_got_, &st_);                           \
    if (rc_ != 0) TEST_FAIL_("Flight SQL for %s: %d: %s", (sql), rc_, st_.message);               \
    if (rc_ == 0 && (n_want_ < (min_rows) || strcmp((char *)got_.data, (char *)want_.data) != 0)) \
      TEST_FAIL_("for %s\n  Flight SQL (%lld rows):\n%s  DuckDB (%lld rows, at least %d):\n%s",    \
                 (sql), (long long)n_got_, (char *)got_.data, (long long)n_want_, (min_rows),      \
                 (char *)want_.data);                                                              \
    wg_buf_reset(&got_);                                                                           \
    wg_buf_reset(&want_);                                                                          \
    if (rc_ != 0 || wg_test_current_failed) return;                                                \
  } while (0)

static int execute(const char *sql) {
  struct wg_status st;
  int rc = wg_fx_action(c, "execute", sql, strlen(sql), NULL, &st);
  if (rc != 0) fprintf(stderr, "setup %s: %s\n", sql, st.message);
  return rc;
}

static int64_t count_of(const char *sql) {
  int64_t v = -1;
  struct wg_status st;
  if (wg_fx_query_i64(c, sql, &v, &st) != 0) return -1000000 - (int64_t)st.sys_errno;
  return v;
}

/* ---- statements ---- */

static void statement_query_equals_plain_doget(void) {
  const char *sql = "SELECT i, i * 2 AS d, 'x' || i AS s, i % 3 = 0 AS b FROM range(5000) t(i)";
  struct wg_fsql_command cmd = {.kind = WG_FSQL_STATEMENT, .sql = sql};
  ASSERT_SAME(&cmd, NULL, sql, 5000);
  /* the FlightInfo's schema is the result's */
  struct wg_status st;
  wg_fsql_info *info;
  ASSERT_WG_OK(wg_fsql_flight_info(c, &cmd, &info, &st), &st);
  struct ArrowSchema schema;
  int64_t endpoints = 0;
  ASSERT_WG_OK(wg_fsql_info_schema(info, &schema, NULL, &endpoints, &st), &st);
  ASSERT_EQ(schema.n_children, 4);
  ASSERT_STREQ(schema.children[2]->name, "s");
  ASSERT_TRUE(endpoints >= 1);
  schema.release(&schema);
  wg_fsql_info_free(info);
}

/* A FlightInfo with several endpoints (other servers give them) is read as one stream: here
 * plain SQL tickets stand for the endpoints' tickets. */
static void several_endpoints_read_as_one_stream(void) {
  struct wg_status st;
  /* one schema for all, as a FlightInfo's endpoints have */
  struct wg_bytes t[3] = {{(const uint8_t *)"SELECT 1::BIGINT AS x", 21},
                          {(const uint8_t *)"SELECT 2::BIGINT AS x", 21},
                          {(const uint8_t *)"SELECT x FROM range(3, 5) r(x)", 30}};
  struct ArrowArrayStream s;
  struct wg_bytes none = {NULL, 0};
  ASSERT_WG_OK(wg__do_get_all(c, t, 3, none, &s, &st), &st);
  struct wg_buf out;
  wg_buf_init(&out);
  ASSERT_OK(render(&s, NULL, &out, NULL, &st), st.message);
  ASSERT_STREQ((char *)out.data, "1\n2\n3\n4\n");
  out.size = 0;
  /* the second one fails: the stream ends with its error */
  t[1] = (struct wg_bytes){(const uint8_t *)"SELEC 2", 7};
  ASSERT_WG_OK(wg__do_get_all(c, t, 3, none, &s, &st), &st);
  ASSERT_TRUE(render(&s, NULL, &out, NULL, &st) != 0);
  ASSERT_EQ(st.code, WG_STATUS_INVALID_ARGUMENT);
  ASSERT_TRUE(strstr(st.message, "syntax error") != NULL);
  out.size = 0;
  /* none: the FlightInfo's schema, no rows */
  struct ArrowSchema schema;
  ASSERT_WG_OK(wg_query_schema(c, "SELECT 1 AS only", &schema, &st), &st);
  struct wg_buf sb;
  wg_buf_init(&sb);
  struct wg_error err = {""};
  ASSERT_OK(wg_flight_schema_bytes(&schema, &sb, &err), &err);
  schema.release(&schema);
  ASSERT_WG_OK(wg__do_get_all(c, t, 0, (struct wg_bytes){sb.data, sb.size}, &s, &st), &st);
  wg_buf_reset(&sb);
  ASSERT_EQ(s.get_schema(&s, &schema), 0);
  ASSERT_EQ(schema.n_children, 1);
  ASSERT_STREQ(schema.children[0]->name, "only");
  schema.release(&schema);
  struct ArrowArray a;
  ASSERT_EQ(s.get_next(&s, &a), 0);
  ASSERT_TRUE(a.release == NULL);
  s.release(&s);
  wg_buf_reset(&out);
}

static void statement_error_carries_duckdbs_message(void) {
  struct wg_fsql_command cmd = {.kind = WG_FSQL_STATEMENT, .sql = "SELEC 1"};
  struct wg_buf out;
  wg_buf_init(&out);
  struct wg_status st;
  int rc = fsql_text(&cmd, NULL, &out, NULL, &st);
  wg_buf_reset(&out);
  ASSERT_TRUE(rc != 0);
  ASSERT_EQ(st.code, WG_STATUS_INVALID_ARGUMENT);
  ASSERT_TRUE(strstr(st.message, "syntax error") != NULL);
  struct wg_fsql_command missing = {.kind = WG_FSQL_STATEMENT, .sql = "SELECT * FROM fq_nope"};
  wg_buf_init(&out);
  rc = fsql_text(&missing, NULL, &out, NULL, &st);
  wg_buf_reset(&out);
  ASSERT_TRUE(rc != 0);
  ASSERT_EQ(st.code, WG_STATUS_NOT_FOUND);
  /* the library refuses an incomplete command itself */
  struct wg_fsql_command none = {.kind = WG_FSQL_STATEMENT};
  wg_fsql_info *info;
  ASSERT_EQ(wg_fsql_flight_info(c, &none, &info, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_TRUE(info == NULL);
}

static void statement_update_returns_the_record_count(void) {
  struct wg_status st;
  int64_t n = -2;
  ASSERT_WG_OK(wg_fsql_update(c, "CREATE TABLE fq_upd(x INTEGER)", NULL, &n, &st), &st);
  ASSERT_WG_OK(wg_fsql_update(c, "INSERT INTO fq_upd SELECT * FROM range(7)", NULL, &n, &st),
               &st);
  ASSERT_EQ(n, 7);
  ASSERT_WG_OK(wg_fsql_update(c, "DELETE FROM fq_upd WHERE x < 3", NULL, &n, &st), &st);
  ASSERT_EQ(n, 3);
  ASSERT_EQ(count_of("SELECT count(*) FROM fq_upd"), 4);
  ASSERT_EQ(wg_fsql_update(c, "INSERT INTO fq_nope VALUES (1)", NULL, &n, &st),
            WG_STATUS_NOT_FOUND);
}

/* ---- metadata ---- */

/* The server lists the database's own catalog, not DuckDB's system and temp catalogs, nor its own
 * wigeon_internal schema (src/server/fsql_meta.c); the references ask DuckDB the same. */
#define OWN_SCHEMATA                                                                               \
  "FROM information_schema.schemata WHERE catalog_name = current_database() "                      \
  "AND schema_name <> 'wigeon_internal'"
#define OWN_TABLES                                                                                 \
  "SELECT table_catalog, table_schema, table_name, table_type FROM information_schema.tables "     \
  "WHERE table_catalog = current_database() AND table_schema <> 'wigeon_internal'"

static void catalogs_equal_information_schema(void) {
  struct wg_fsql_command cmd = {.kind = WG_FSQL_CATALOGS};
  ASSERT_SAME(&cmd, NULL, "SELECT DISTINCT catalog_name " OWN_SCHEMATA, 1);
}

static void db_schemas_equal_information_schema(void) {
  struct wg_fsql_command cmd = {.kind = WG_FSQL_DB_SCHEMAS};
  ASSERT_SAME(&cmd, NULL, "SELECT catalog_name, schema_name " OWN_SCHEMATA, 2);
  cmd.db_schema = "fq%";
  ASSERT_SAME(&cmd, NULL,
              "SELECT catalog_name, schema_name " OWN_SCHEMATA " AND schema_name LIKE 'fq%'", 1);
}

static void tables_equal_information_schema_with_every_filter(void) {
  static const char *const cols[] = {"catalog_name", "db_schema_name", "table_name", "table_type",
                                     NULL};
  struct wg_fsql_command cmd = {.kind = WG_FSQL_TABLES};
  ASSERT_SAME(&cmd, cols, OWN_TABLES, 6);
  cmd.db_schema = "fq_s";
  ASSERT_SAME(&cmd, cols, OWN_TABLES " AND table_schema LIKE 'fq_s'", 1);
  cmd.db_schema = NULL;
  cmd.table = "fq\\_pair%";
  ASSERT_SAME(&cmd, cols, OWN_TABLES " AND table_name LIKE 'fq\\_pair%' ESCAPE '\\'", 2);
  static const char *const views[] = {"VIEW", NULL};
  cmd.table = NULL;
  cmd.table_types = views;
  ASSERT_SAME(&cmd, cols, OWN_TABLES " AND table_type = 'VIEW'", 1);
}

static void tables_include_schema_is_the_tables_arrow_schema(void) {
  struct wg_fsql_command cmd = {.kind = WG_FSQL_TABLES, .table = "fq_parent",
                                .include_schema = true};
  struct ArrowArrayStream s;
  struct wg_status st;
  ASSERT_WG_OK(wg_fsql_run(c, &cmd, &s, &st), &st);
  struct ArrowSchema schema;
  ASSERT_EQ(s.get_schema(&s, &schema), 0);
  int64_t col = -1;
  for (int64_t k = 0; k < schema.n_children; k++)
    if (strcmp(schema.children[k]->name, "table_schema") == 0) col = k;
  ASSERT_TRUE(col >= 0);
  ASSERT_STREQ(schema.children[col]->format, "z");
  struct ArrowArray a;
  ASSERT_EQ(s.get_next(&s, &a), 0);
  ASSERT_TRUE(a.release != NULL);
  ASSERT_EQ(a.length, 1);
  const struct ArrowArray *bin = a.children[col];
  const int32_t *off = bin->buffers[1];
  int64_t i = bin->offset + a.offset;
  struct wg_buf bytes;
  wg_buf_init(&bytes);
  wg_buf_append(&bytes, (const uint8_t *)bin->buffers[2] + off[i], off[i + 1] - off[i]);
  a.release(&a);
  schema.release(&schema);
  s.release(&s);
  /* The bytes are an IPC schema: the one GetSchema gives for the table. */
  struct ArrowSchema got, want;
  struct wg_error err = {""};
  ASSERT_OK(wg_flight_schema_parse((struct wg_bytes){bytes.data, bytes.size}, &got, &err), &err);
  wg_buf_reset(&bytes);
  ASSERT_WG_OK(wg_table_schema(c, NULL, "fq_parent", &want, &st), &st);
  ASSERT_EQ(got.n_children, 2);
  ASSERT_EQ(want.n_children, 2);
  for (int64_t k = 0; k < 2; k++) {
    ASSERT_STREQ(got.children[k]->name, want.children[k]->name);
    ASSERT_STREQ(got.children[k]->format, want.children[k]->format);
  }
  got.release(&got);
  want.release(&want);
}

static void table_types_cover_information_schema(void) {
  struct wg_fsql_command cmd = {.kind = WG_FSQL_TABLE_TYPES};
  struct wg_buf got, want;
  wg_buf_init(&got);
  wg_buf_init(&want);
  struct wg_status st;
  int64_t n = 0;
  ASSERT_OK(plain_text("SELECT DISTINCT table_type FROM information_schema.tables", &want, &n, &st),
            st.message);
  ASSERT_TRUE(n >= 2); /* BASE TABLE and VIEW */
  ASSERT_OK(fsql_text(&cmd, NULL, &got, NULL, &st), st.message);
  for (char *line = strtok((char *)want.data, "\n"); line != NULL; line = strtok(NULL, "\n")) {
    char needle[128];
    snprintf(needle, sizeof(needle), "%s\n", line);
    if (strstr((char *)got.data, needle) == NULL)
      TEST_FAIL_("GetTableTypes lacks %s: it says\n%s", line, (char *)got.data);
  }
  wg_buf_reset(&got);
  wg_buf_reset(&want);
}

#define PK_REF                                                                                     \
  "SELECT k.table_catalog, k.table_schema, k.table_name, k.column_name, k.ordinal_position "      \
  "FROM information_schema.key_column_usage k JOIN information_schema.table_constraints t "       \
  "ON k.constraint_name = t.constraint_name AND k.table_schema = t.table_schema "                 \
  "AND k.table_name = t.table_name WHERE t.constraint_type = 'PRIMARY KEY' AND k.table_name = "
#define FK_REF                                                                                     \
  "SELECT database_name, schema_name, referenced_table, unnest(referenced_column_names), "         \
  "database_name, schema_name, table_name, unnest(constraint_column_names), "                      \
  "generate_subscripts(constraint_column_names, 1) FROM duckdb_constraints() "                    \
  "WHERE constraint_type = 'FOREIGN KEY' AND "

static void keys_equal_duckdbs_constraints(void) {
  static const char *const pk_cols[] = {"catalog_name", "db_schema_name", "table_name",
                                        "column_name", "key_sequence", NULL};
  static const char *const fk_cols[] = {"pk_catalog_name", "pk_db_schema_name", "pk_table_name",
                                        "pk_column_name", "fk_catalog_name", "fk_db_schema_name",
                                        "fk_table_name", "fk_column_name", "key_sequence", NULL};
  struct wg_fsql_command cmd = {.kind = WG_FSQL_PRIMARY_KEYS, .table = "fq_pair"};
  ASSERT_SAME(&cmd, pk_cols, PK_REF "'fq_pair'", 2);
  cmd.table = "fq_parent";
  ASSERT_SAME(&cmd, pk_cols, PK_REF "'fq_parent'", 1);
  cmd.kind = WG_FSQL_EXPORTED_KEYS;
  cmd.table = "fq_pair";
  ASSERT_SAME(&cmd, fk_cols, FK_REF "referenced_table = 'fq_pair'", 2);
  cmd.kind = WG_FSQL_IMPORTED_KEYS;
  cmd.table = "fq_child";
  ASSERT_SAME(&cmd, fk_cols, FK_REF "table_name = 'fq_child'", 1);
  cmd.kind = WG_FSQL_CROSS_REFERENCE;
  cmd.table = "fq_pair";
  cmd.fk_table = "fq_pair_ref";
  ASSERT_SAME(&cmd, fk_cols,
              FK_REF "referenced_table = 'fq_pair' AND table_name = 'fq_pair_ref'", 2);
  cmd.fk_table = "fq_child"; /* no foreign key from fq_child to fq_pair */
  struct wg_buf out;
  wg_buf_init(&out);
  struct wg_status st;
  int64_t n = -1;
  ASSERT_OK(fsql_text(&cmd, fk_cols, &out, &n, &st), st.message);
  wg_buf_reset(&out);
  ASSERT_EQ(n, 0);
}

static void sql_info_answers_the_ids_asked_with_true_values(void) {
  static const char *const name_col[] = {"info_name", NULL};
  static const char *const all_cols[] = {"info_name", "value", NULL};
  static const uint32_t ids[] = {0, 1};
  struct wg_fsql_command cmd = {.kind = WG_FSQL_SQL_INFO, .info = ids, .n_info = 2};
  struct wg_buf out;
  wg_buf_init(&out);
  struct wg_status st;
  ASSERT_OK(fsql_text(&cmd, name_col, &out, NULL, &st), st.message);
  ASSERT_STREQ((char *)out.data, "0\n1\n");
  out.size = 0;
  ASSERT_OK(fsql_text(&cmd, all_cols, &out, NULL, &st), st.message);
  char want[256];
  snprintf(want, sizeof(want), "0|wigeon\n1|%s\n", wg_version()); /* server name, version */
  ASSERT_STREQ((char *)out.data, want);
  out.size = 0;
  struct wg_fsql_command all = {.kind = WG_FSQL_SQL_INFO};
  int64_t n = 0;
  ASSERT_OK(fsql_text(&all, name_col, &out, &n, &st), st.message);
  ASSERT_TRUE(n > 2);
  ASSERT_TRUE(strncmp((char *)out.data, "0\n1\n", 4) == 0);
  wg_buf_reset(&out);
}

static void xdbc_type_info_lists_duckdb_types(void) {
  static const char *const name_col[] = {"type_name", NULL};
  struct wg_fsql_command cmd = {.kind = WG_FSQL_XDBC_TYPE_INFO};
  struct wg_buf got, types;
  wg_buf_init(&got);
  wg_buf_init(&types);
  struct wg_status st;
  int64_t n = 0;
  ASSERT_OK(fsql_text(&cmd, name_col, &got, &n, &st), st.message);
  ASSERT_TRUE(n >= 10);
  wg_buf_append(&types, "\n", 1); /* every name between newlines */
  ASSERT_OK(plain_text("SELECT upper(type_name) FROM duckdb_types() "
                       "UNION SELECT logical_type FROM duckdb_types()",
                       &types, NULL, &st),
            st.message);
  for (char *line = strtok((char *)got.data, "\n"); line != NULL; line = strtok(NULL, "\n")) {
    char needle[160];
    snprintf(needle, sizeof(needle), "\n%s\n", line);
    for (char *p = needle; *p; p++)
      *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    if (strstr((char *)types.data, needle) == NULL)
      TEST_FAIL_("GetXdbcTypeInfo names %s, which duckdb_types() does not", line);
    if (wg_test_current_failed) break;
  }
  got.size = 0;
  /* SQL_BIGINT (-5): only BIGINT's rows */
  static const char *const cols[] = {"type_name", "data_type", NULL};
  cmd.has_data_type = true;
  cmd.data_type = -5;
  ASSERT_OK(fsql_text(&cmd, cols, &got, &n, &st), st.message);
  ASSERT_TRUE(n >= 1);
  for (char *q = (char *)got.data; *q; q++)
    *q = (char)(*q >= 'a' && *q <= 'z' ? *q - 32 : *q);
  ASSERT_TRUE(strstr((char *)got.data, "BIGINT|-5\n") != NULL);
  for (char *line = strtok((char *)got.data, "\n"); line != NULL; line = strtok(NULL, "\n"))
    ASSERT_TRUE(strstr(line, "|-5") != NULL);
  wg_buf_reset(&got);
  wg_buf_reset(&types);
}

/* ---- prepared statements ---- */

/* Parameter batches: the result of a plain query (an ArrowArrayStream like any other). */
static int params(const char *sql, struct ArrowArrayStream *out, struct wg_status *st) {
  return wg_query(c, sql, out, st);
}

static void prepared_query_with_parameters_equals_plain(void) {
  struct wg_status st;
  wg_fsql_prepared *p;
  ASSERT_WG_OK(wg_fsql_prepare(c, "SELECT $1::BIGINT + i AS v FROM range(3) t(i)", NULL, &p, &st),
               &st);
  struct ArrowSchema ds, ps;
  bool upd = true;
  ASSERT_WG_OK(wg_fsql_prepared_schemas(p, &ds, &ps, &upd, &st), &st);
  ASSERT_TRUE(ds.release != NULL && ps.release != NULL);
  ASSERT_EQ(ds.n_children, 1);
  ASSERT_STREQ(ds.children[0]->name, "v");
  ASSERT_EQ(ps.n_children, 1);
  ASSERT_TRUE(!upd);
  ds.release(&ds);
  ps.release(&ps);
  struct ArrowArrayStream in;
  ASSERT_WG_OK(params("SELECT 10::BIGINT AS p", &in, &st), &st);
  ASSERT_WG_OK(wg_fsql_bind(c, p, &in, &st), &st);
  struct wg_fsql_command cmd = {.kind = WG_FSQL_PREPARED, .prepared = p};
  ASSERT_SAME(&cmd, NULL, "SELECT 10 + i AS v FROM range(3) t(i)", 3);
  /* three parameter rows: the statement once per row */
  ASSERT_WG_OK(params("SELECT * FROM (VALUES (100::BIGINT), (200), (300)) t(p)", &in, &st), &st);
  ASSERT_WG_OK(wg_fsql_bind(c, p, &in, &st), &st);
  ASSERT_SAME(&cmd, NULL, "SELECT p + i FROM (VALUES (100), (200), (300)) a(p), range(3) t(i)", 9);
  ASSERT_WG_OK(wg_fsql_close(c, p, &st), &st);
}

static void prepared_update_counts_every_parameter_row(void) {
  struct wg_status st;
  ASSERT_EQ(execute("CREATE TABLE fq_pu(x BIGINT)"), 0);
  wg_fsql_prepared *p;
  ASSERT_WG_OK(wg_fsql_prepare(c, "INSERT INTO fq_pu VALUES ($1)", NULL, &p, &st), &st);
  bool upd = false;
  ASSERT_WG_OK(wg_fsql_prepared_schemas(p, NULL, NULL, &upd, &st), &st);
  ASSERT_TRUE(upd);
  struct ArrowArrayStream in;
  ASSERT_WG_OK(params("SELECT i::BIGINT AS x FROM range(5) t(i)", &in, &st), &st);
  int64_t n = -2;
  ASSERT_WG_OK(wg_fsql_prepared_update(c, p, &in, &n, &st), &st);
  ASSERT_EQ(n, 5);
  ASSERT_WG_OK(wg_fsql_close(c, p, &st), &st);
  ASSERT_WG_OK(wg_fsql_prepare(c, "DELETE FROM fq_pu WHERE x >= 3", NULL, &p, &st), &st);
  ASSERT_WG_OK(wg_fsql_prepared_update(c, p, NULL, &n, &st), &st);
  ASSERT_EQ(n, 2);
  ASSERT_WG_OK(wg_fsql_close(c, p, &st), &st);
  ASSERT_EQ(count_of("SELECT sum(x) FROM fq_pu"), 0 + 1 + 2);
}

static void prepare_refuses_bad_sql_and_runs_without_parameters(void) {
  struct wg_status st;
  wg_fsql_prepared *p;
  ASSERT_EQ(wg_fsql_prepare(c, "SELEC 1", NULL, &p, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_TRUE(strstr(st.message, "syntax error") != NULL);
  ASSERT_TRUE(p == NULL);
  ASSERT_WG_OK(wg_fsql_prepare(c, "SELECT id, name FROM fq_parent", NULL, &p, &st), &st);
  struct ArrowSchema ps;
  ASSERT_WG_OK(wg_fsql_prepared_schemas(p, NULL, &ps, NULL, &st), &st);
  ASSERT_TRUE(ps.release == NULL || ps.n_children == 0);
  if (ps.release != NULL) ps.release(&ps);
  struct wg_fsql_command cmd = {.kind = WG_FSQL_PREPARED, .prepared = p};
  ASSERT_SAME(&cmd, NULL, "SELECT id, name FROM fq_parent", 2);
  ASSERT_SAME(&cmd, NULL, "SELECT id, name FROM fq_parent", 2); /* and again */
  ASSERT_WG_OK(wg_fsql_close(c, p, &st), &st);
}

/* ---- ingest ---- */

static void ingest_creates_appends_replaces_and_fails_as_told(void) {
  struct wg_status st;
  struct ArrowArrayStream in;
  int64_t n = -2;
  struct wg_fsql_ingest_options o = {.if_not_exist = WG_FSQL_IF_NOT_EXIST_CREATE,
                                     .if_exists = WG_FSQL_IF_EXISTS_APPEND};
  ASSERT_EQ(wg_fx_seed_stream(0, 2, 500, true, &in), 0);
  ASSERT_WG_OK(wg_fsql_ingest(c, "fq_ing", &o, &in, &n, &st), &st);
  ASSERT_EQ(n, 1000);
  ASSERT_EQ(wg_fx_seed_stream(2, 1, 300, true, &in), 0);
  ASSERT_WG_OK(wg_fsql_ingest(c, "fq_ing", &o, &in, &n, &st), &st);
  ASSERT_EQ(n, 300);
  ASSERT_EQ(count_of("SELECT count(*) FROM fq_ing"), 1300);
  o.if_exists = WG_FSQL_IF_EXISTS_REPLACE;
  ASSERT_EQ(wg_fx_seed_stream(3, 1, 40, true, &in), 0);
  ASSERT_WG_OK(wg_fsql_ingest(c, "fq_ing", &o, &in, &n, &st), &st);
  ASSERT_EQ(count_of("SELECT count(*) FROM fq_ing"), 40);
  o.if_exists = WG_FSQL_IF_EXISTS_FAIL;
  ASSERT_EQ(wg_fx_seed_stream(4, 1, 10, true, &in), 0);
  ASSERT_TRUE(wg_fsql_ingest(c, "fq_ing", &o, &in, &n, &st) != 0);
  ASSERT_EQ(count_of("SELECT count(*) FROM fq_ing"), 40);
  o.if_not_exist = WG_FSQL_IF_NOT_EXIST_FAIL;
  o.if_exists = WG_FSQL_IF_EXISTS_APPEND;
  ASSERT_EQ(wg_fx_seed_stream(5, 1, 10, true, &in), 0);
  ASSERT_TRUE(wg_fsql_ingest(c, "fq_ing_missing", &o, &in, &n, &st) != 0);
  ASSERT_TRUE(count_of("SELECT count(*) FROM fq_ing_missing") < 0);
  /* into another schema */
  struct wg_fsql_ingest_options in_schema = {.schema_name = "fq_s",
                                             .if_not_exist = WG_FSQL_IF_NOT_EXIST_CREATE,
                                             .if_exists = WG_FSQL_IF_EXISTS_FAIL};
  ASSERT_EQ(wg_fx_seed_stream(6, 1, 25, false, &in), 0);
  ASSERT_WG_OK(wg_fsql_ingest(c, "fq_ing2", &in_schema, &in, &n, &st), &st);
  ASSERT_EQ(n, 25);
  ASSERT_EQ(count_of("SELECT count(*) FROM fq_s.fq_ing2"), 25);
}

/* ---- transactions ---- */

static void transactions_commit_and_rollback_every_kind_of_write(void) {
  struct wg_status st;
  ASSERT_EQ(execute("CREATE TABLE fq_tx(x BIGINT)"), 0);
  wg_fsql_txn *t;
  ASSERT_WG_OK(wg_fsql_begin(c, &t, &st), &st);
  int64_t n;
  ASSERT_WG_OK(wg_fsql_update(c, "INSERT INTO fq_tx VALUES (1), (2)", t, &n, &st), &st);
  ASSERT_EQ(n, 2);
  /* inside, the rows are there; outside, not yet */
  struct wg_fsql_command in_txn = {.kind = WG_FSQL_STATEMENT, .sql = "SELECT x FROM fq_tx",
                                   .txn = t};
  struct wg_buf out;
  wg_buf_init(&out);
  ASSERT_OK(fsql_text(&in_txn, NULL, &out, &n, &st), st.message);
  wg_buf_reset(&out);
  ASSERT_EQ(n, 2);
  ASSERT_EQ(count_of("SELECT count(*) FROM fq_tx"), 0);
  ASSERT_WG_OK(wg_fsql_rollback(c, t, &st), &st);
  ASSERT_EQ(count_of("SELECT count(*) FROM fq_tx"), 0);

  ASSERT_WG_OK(wg_fsql_begin(c, &t, &st), &st);
  ASSERT_WG_OK(wg_fsql_update(c, "INSERT INTO fq_tx VALUES (10)", t, &n, &st), &st);
  wg_fsql_prepared *p;
  ASSERT_WG_OK(wg_fsql_prepare(c, "INSERT INTO fq_tx VALUES ($1)", t, &p, &st), &st);
  struct ArrowArrayStream in;
  ASSERT_WG_OK(params("SELECT 20::BIGINT AS x", &in, &st), &st);
  ASSERT_WG_OK(wg_fsql_prepared_update(c, p, &in, &n, &st), &st);
  ASSERT_WG_OK(wg_fsql_close(c, p, &st), &st);
  struct wg_fsql_ingest_options o = {.if_not_exist = WG_FSQL_IF_NOT_EXIST_FAIL,
                                     .if_exists = WG_FSQL_IF_EXISTS_APPEND, .txn = t};
  ASSERT_WG_OK(params("SELECT 30::BIGINT AS x", &in, &st), &st);
  int code = wg_fsql_ingest(c, "fq_tx", &o, &in, &n, &st);
  if (code != 0) {
    TEST_FAIL_("ingest in a transaction: %s (%d): %s", wg_status_code_name(code), code,
               st.message);
    wg_fsql_rollback(c, t, NULL);
    return;
  }
  ASSERT_EQ(count_of("SELECT count(*) FROM fq_tx"), 0);
  ASSERT_WG_OK(wg_fsql_commit(c, t, &st), &st);
  ASSERT_EQ(count_of("SELECT sum(x) FROM fq_tx"), 60);
  /* an empty transaction */
  ASSERT_WG_OK(wg_fsql_begin(c, &t, &st), &st);
  ASSERT_WG_OK(wg_fsql_commit(c, t, &st), &st);
}

/* ---- cancel ---- */

struct fetcher {
  const wg_fsql_info *info;
  int rc;
  struct wg_status st;
};

static void *fetch_main(void *arg) {
  struct fetcher *f = arg;
  struct ArrowArrayStream s;
  f->rc = wg_fsql_fetch(c, f->info, &s, &f->st);
  if (f->rc != 0) return NULL;
  struct wg_buf out;
  wg_buf_init(&out);
  f->rc = render(&s, NULL, &out, NULL, &f->st);
  wg_buf_reset(&out);
  return NULL;
}

static void cancel_flight_info_stops_its_query(void) {
  struct wg_status st;
  struct wg_fsql_command cmd = {.kind = WG_FSQL_STATEMENT,
                                .sql = "SELECT max(hash(i)) FROM range(100000000000000) t(i)"};
  wg_fsql_info *info;
  ASSERT_WG_OK(wg_fsql_flight_info(c, &cmd, &info, &st), &st);
  struct fetcher f = {.info = info};
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, fetch_main, &f), 0);
  usleep(500 * 1000);
  int cs = -1;
  int code = wg_fsql_cancel(c, info, &cs, &st);
  pthread_join(th, NULL);
  wg_fsql_info_free(info);
  ASSERT_WG_OK(code, &st);
  ASSERT_TRUE(cs == 1 || cs == 2);
  ASSERT_TRUE(f.rc != 0);
  ASSERT_EQ(f.st.code, WG_STATUS_CANCELLED);
}

static const char *const setup[] = {
    "CREATE SCHEMA fq_s",
    "CREATE TABLE fq_parent(id INTEGER PRIMARY KEY, name VARCHAR)",
    "CREATE TABLE fq_child(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES fq_parent(id))",
    "CREATE TABLE fq_pair(a INTEGER, b INTEGER, PRIMARY KEY (a, b))",
    "CREATE TABLE fq_pair_ref(x INTEGER, y INTEGER, FOREIGN KEY (x, y) REFERENCES fq_pair(a, b))",
    "CREATE TABLE fq_s.fq_other(a BIGINT, b DOUBLE)",
    "CREATE VIEW fq_view AS SELECT id FROM fq_parent",
    "INSERT INTO fq_parent VALUES (1, 'a'), (2, 'b')",
    NULL,
};

int main(void) {
  char db[300];
  if (wg_fx_tmpdir(dir, sizeof(dir)) != 0) return 1;
  snprintf(db, sizeof(db), "%s/fsql.duckdb", dir);
  struct wg_server_options o = {.db_path = db};
  if (wg_fx_server_start(&fx, &o) != 0) return 1;
  struct wg_status st;
  if (wg_fx_connect_timeout(&c, fx.uri, 60000, &st) != 0) return 1;
  for (int i = 0; setup[i] != NULL; i++)
    if (execute(setup[i]) != 0) return 1;
  RUN_TEST(statement_query_equals_plain_doget);
  RUN_TEST(several_endpoints_read_as_one_stream);
  RUN_TEST(statement_error_carries_duckdbs_message);
  RUN_TEST(statement_update_returns_the_record_count);
  RUN_TEST(catalogs_equal_information_schema);
  RUN_TEST(db_schemas_equal_information_schema);
  RUN_TEST(tables_equal_information_schema_with_every_filter);
  RUN_TEST(tables_include_schema_is_the_tables_arrow_schema);
  RUN_TEST(table_types_cover_information_schema);
  RUN_TEST(keys_equal_duckdbs_constraints);
  RUN_TEST(sql_info_answers_the_ids_asked_with_true_values);
  RUN_TEST(xdbc_type_info_lists_duckdb_types);
  RUN_TEST(prepared_query_with_parameters_equals_plain);
  RUN_TEST(prepared_update_counts_every_parameter_row);
  RUN_TEST(prepare_refuses_bad_sql_and_runs_without_parameters);
  RUN_TEST(ingest_creates_appends_replaces_and_fails_as_told);
  RUN_TEST(transactions_commit_and_rollback_every_kind_of_write);
  RUN_TEST(cancel_flight_info_stops_its_query);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
  wg_fx_rmdir(dir);
  return TEST_SUMMARY();
}
