/* wigeon: the public client library (include/wigeon.h) against an in-process server, through the
 * public header only: connect, query, put with acknowledgements, list, schemas, actions; errors
 * with their gRPC code and the server's message; eight threads on one client; and the installed
 * library (cmake --install, then a program built with pkg-config, shared and static). */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support/server_fixture.h"
#include "test.h"
#include "wigeon.h"

static struct wg_fx_server fx;

#define ASSERT_WG_OK(expr, st)                                                                     \
  do {                                                                                             \
    int wg_code_ = (expr);                                                                         \
    if (wg_code_ != 0) {                                                                           \
      TEST_FAIL_("%s: %s (%d): %s", #expr, wg_status_code_name(wg_code_), wg_code_,                \
                 (st)->message);                                                                   \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

static int connect_fx(wg_client **c, struct wg_status *st) {
  char uri[96];
  snprintf(uri, sizeof(uri), "grpc://%s", fx.uri);
  return wg_connect(uri, NULL, c, st);
}

/* Reads a whole stream: rows, and the first column of the first row as int64 (BIGINT). Returns
 * the stream's error code. */
static int read_stream(struct ArrowArrayStream *s, int64_t *rows, int64_t *first) {
  struct ArrowSchema schema;
  *rows = 0;
  *first = -1;
  int rc = s->get_schema(s, &schema);
  if (rc != 0) return rc;
  bool is_i64 = schema.n_children > 0 && strcmp(schema.children[0]->format, "l") == 0;
  schema.release(&schema);
  for (;;) {
    struct ArrowArray a;
    rc = s->get_next(s, &a);
    if (rc != 0 || a.release == NULL) return rc;
    if (*rows == 0 && a.length > 0 && is_i64) {
      const struct ArrowArray *col = a.children[0];
      memcpy(first, (const int64_t *)col->buffers[1] + col->offset + a.offset, sizeof(*first));
    }
    *rows += a.length;
    a.release(&a);
  }
}

/* Runs SQL whose first column is BIGINT; *value from the first row. Returns the gRPC code. */
static int query_i64(wg_client *c, const char *sql, int64_t *value, struct wg_status *st) {
  struct ArrowArrayStream s;
  int code = wg_query(c, sql, &s, st);
  if (code != 0) return code;
  int64_t rows;
  read_stream(&s, &rows, value);
  code = wg_stream_status(&s, st);
  s.release(&s);
  return code;
}

struct acks {
  int n;
  int64_t rows;
  char table[64];
  bool json;
};

static void on_ack(void *ctx, const struct wg_put_ack *ack) {
  struct acks *a = ctx;
  a->n++;
  a->rows += ack->rows;
  snprintf(a->table, sizeof(a->table), "%s", ack->table);
  a->json = ack->app_metadata_len > 2 && ack->app_metadata[0] == '{';
}

static void connect_query_put_list_schema_action_through_public_header(void) {
  struct wg_status st;
  wg_client *c;
  ASSERT_WG_OK(connect_fx(&c, &st), &st);
  ASSERT_EQ(st.code, 0);
  ASSERT_STREQ(st.message, "");
  ASSERT_TRUE(strlen(wg_version()) > 0);

  struct ArrowArrayStream in;
  ASSERT_EQ(wg_fx_seed_stream(0, 3, 1000, true, &in), 0);
  struct acks acks = {0};
  int64_t rows = -1;
  ASSERT_WG_OK(wg_put(c, NULL, "lib_kv", &in, on_ack, &acks, &rows, &st), &st);
  ASSERT_TRUE(in.release == NULL); /* consumed */
  ASSERT_EQ(rows, 3000);
  ASSERT_EQ(acks.n, 1);
  ASSERT_EQ(acks.rows, 3000);
  ASSERT_STREQ(acks.table, "lib_kv");
  ASSERT_TRUE(acks.json);

  ASSERT_EQ(wg_fx_seed_stream(10, 2, 500, false, &in), 0);
  ASSERT_WG_OK(wg_put(c, "main", "lib_seed", &in, NULL, NULL, &rows, &st), &st);
  ASSERT_EQ(rows, 1000);

  int64_t v = 0;
  ASSERT_WG_OK(query_i64(c, "SELECT count(*)::BIGINT, sum(id)::BIGINT FROM lib_kv", &v, &st), &st);
  ASSERT_EQ(v, 3000);
  struct ArrowArrayStream s;
  ASSERT_WG_OK(wg_query(c, "SELECT * FROM range(100000) t(i)", &s, &st), &st);
  int64_t n = 0;
  ASSERT_EQ(read_stream(&s, &n, &v), 0);
  ASSERT_EQ(n, 100000);
  ASSERT_EQ(v, 0);
  ASSERT_EQ(wg_stream_status(&s, &st), 0);
  s.release(&s);

  struct wg_table_info *tables;
  int64_t nt;
  ASSERT_WG_OK(wg_list_tables(c, NULL, &tables, &nt, &st), &st);
  bool found = false;
  for (int64_t i = 0; i < nt; i++) {
    if (strcmp(tables[i].table_name, "lib_kv") != 0) continue;
    found = true;
    ASSERT_STREQ(tables[i].schema_name, "main");
    ASSERT_EQ(tables[i].rows, 3000);
    ASSERT_EQ(tables[i].schema.n_children, 2);
    ASSERT_STREQ(tables[i].schema.children[0]->name, "id");
  }
  wg_table_info_free(tables, nt);
  ASSERT_TRUE(found);
  ASSERT_WG_OK(wg_list_tables(c, "seed", &tables, &nt, &st), &st);
  ASSERT_EQ(nt, 1);
  ASSERT_STREQ(tables[0].table_name, "lib_seed");
  ASSERT_EQ(tables[0].rows, 1000);
  wg_table_info_free(tables, nt);

  struct ArrowSchema schema;
  ASSERT_WG_OK(wg_table_schema(c, NULL, "lib_seed", &schema, &st), &st);
  ASSERT_EQ(schema.n_children, 4);
  ASSERT_STREQ(schema.children[3]->name, "category");
  schema.release(&schema);
  ASSERT_WG_OK(wg_table_schema(c, "main", "lib_kv", &schema, &st), &st);
  ASSERT_EQ(schema.n_children, 2);
  schema.release(&schema);
  ASSERT_WG_OK(wg_query_schema(c, "SELECT 1::BIGINT AS x, 'a' AS y", &schema, &st), &st);
  ASSERT_EQ(schema.n_children, 2);
  ASSERT_STREQ(schema.children[0]->name, "x");
  ASSERT_STREQ(schema.children[0]->format, "l");
  ASSERT_STREQ(schema.children[1]->name, "y");
  schema.release(&schema);

  struct wg_action_result r;
  const char *sql = "CREATE TABLE lib_act AS SELECT range AS i FROM range(7)";
  ASSERT_WG_OK(wg_action(c, "execute", sql, strlen(sql), &r, &st), &st);
  ASSERT_EQ(r.n, 1);
  ASSERT_TRUE(strstr(r.bodies[0].data, "rows_changed") != NULL);
  ASSERT_EQ(strlen(r.bodies[0].data), r.bodies[0].size);
  wg_action_result_reset(&r);
  wg_action_result_reset(&r); /* twice is fine */
  ASSERT_WG_OK(wg_action(c, "stats", NULL, 0, &r, &st), &st);
  ASSERT_EQ(r.n, 1);
  ASSERT_TRUE(strstr(r.bodies[0].data, "\"calls\"") != NULL);
  wg_action_result_reset(&r);
  ASSERT_WG_OK(wg_action(c, "drop_table", "lib_act", 7, NULL, &st), &st);
  ASSERT_WG_OK(query_i64(c, "SELECT count(*)::BIGINT FROM lib_seed", &v, &st), &st);
  ASSERT_EQ(v, 1000);
  wg_disconnect(c);
  wg_disconnect(NULL);
}

static void errors_carry_grpc_code_and_server_message(void) {
  struct wg_status st;
  wg_client *c;
  ASSERT_WG_OK(connect_fx(&c, &st), &st);

  /* A syntax error shows on the stream: errno from get_schema, the status from wg_stream_status. */
  struct ArrowArrayStream s;
  ASSERT_WG_OK(wg_query(c, "SELEC 1", &s, &st), &st);
  struct ArrowSchema schema;
  ASSERT_EQ(s.get_schema(&s, &schema), EINVAL);
  ASSERT_TRUE(strstr(s.get_last_error(&s), "Parser Error") != NULL);
  ASSERT_EQ(wg_stream_status(&s, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_EQ(st.code, 3);
  ASSERT_EQ(st.sys_errno, EINVAL);
  ASSERT_TRUE(strstr(st.message, "Parser Error") != NULL);
  s.release(&s);

  int64_t v;
  ASSERT_EQ(query_i64(c, "SELECT * FROM no_such_table", &v, &st), WG_STATUS_NOT_FOUND);
  ASSERT_TRUE(strstr(st.message, "no_such_table") != NULL);
  ASSERT_EQ(wg_query_schema(c, "SELEC 1", &schema, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_TRUE(strstr(st.message, "Parser Error") != NULL);
  ASSERT_EQ(wg_table_schema(c, NULL, "no_such_table", &schema, &st), WG_STATUS_NOT_FOUND);
  ASSERT_EQ(st.sys_errno, ENOENT);
  ASSERT_EQ(wg_action(c, "no_such_action", NULL, 0, NULL, &st), WG_STATUS_UNIMPLEMENTED);
  ASSERT_TRUE(strstr(st.message, "execute") != NULL); /* names the actions there are */

  const char *ddl = "CREATE TABLE lib_pk (k BIGINT PRIMARY KEY)";
  ASSERT_WG_OK(wg_action(c, "execute", ddl, strlen(ddl), NULL, &st), &st);
  const char *ins = "INSERT INTO lib_pk VALUES (1)";
  ASSERT_WG_OK(wg_action(c, "execute", ins, strlen(ins), NULL, &st), &st);
  ASSERT_EQ(wg_action(c, "execute", ins, strlen(ins), NULL, &st), WG_STATUS_ALREADY_EXISTS);
  ASSERT_TRUE(strstr(st.message, "Constraint Error") != NULL);

  /* Arguments, URIs and NULL status. */
  ASSERT_EQ(wg_query(c, NULL, &s, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_EQ(wg_query(c, NULL, &s, NULL), WG_STATUS_INVALID_ARGUMENT);
  wg_client *bad = (wg_client *)&st;
  ASSERT_EQ(wg_connect("http://127.0.0.1:1", NULL, &bad, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_TRUE(bad == NULL);
  ASSERT_TRUE(strstr(st.message, "http://") != NULL);
  ASSERT_EQ(wg_connect("", NULL, &bad, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_EQ(wg_connect("grpc+tls://127.0.0.1:1", NULL, &bad, &st), WG_STATUS_UNAVAILABLE);
  const char *odd[] = {"x-key", NULL, NULL};
  struct wg_client_options o;
  wg_client_options_init(&o);
  o.headers = odd;
  ASSERT_EQ(wg_connect(fx.uri, &o, &bad, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_STREQ(wg_status_code_name(14), "UNAVAILABLE");
  ASSERT_STREQ(wg_status_code_name(99), "UNKNOWN");
  wg_disconnect(c);
}

/* A port nothing listens on: bound, then closed. */
static int dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

static void unreachable_server_is_unavailable(void) {
  int port = dead_port();
  ASSERT_TRUE(port > 0);
  char uri[64];
  snprintf(uri, sizeof(uri), "grpc://127.0.0.1:%d", port);
  struct wg_status st;
  wg_client *c = NULL;
  ASSERT_EQ(wg_connect(uri, NULL, &c, &st), WG_STATUS_UNAVAILABLE);
  ASSERT_EQ(st.code, 14);
  ASSERT_EQ(st.sys_errno, ECONNREFUSED);
  ASSERT_TRUE(st.message[0] != '\0');
  ASSERT_TRUE(c == NULL);

  /* Lazily: the first call says it. */
  struct wg_client_options o;
  wg_client_options_init(&o);
  o.lazy_connect = true;
  ASSERT_WG_OK(wg_connect(uri, &o, &c, &st), &st);
  struct ArrowArrayStream s;
  int code = wg_query(c, "SELECT 1", &s, &st);
  if (code == 0) { /* or from the stream, when the call could start */
    struct ArrowSchema schema;
    ASSERT_NE(s.get_schema(&s, &schema), 0);
    code = wg_stream_status(&s, &st);
    s.release(&s);
  }
  ASSERT_EQ(code, WG_STATUS_UNAVAILABLE);
  struct wg_table_info *t;
  int64_t n;
  ASSERT_EQ(wg_list_tables(c, NULL, &t, &n, &st), WG_STATUS_UNAVAILABLE);
  ASSERT_TRUE(t == NULL);
  struct ArrowArrayStream in;
  ASSERT_EQ(wg_fx_seed_stream(0, 1, 10, true, &in), 0);
  ASSERT_EQ(wg_put(c, NULL, "x", &in, NULL, NULL, NULL, &st), WG_STATUS_UNAVAILABLE);
  ASSERT_TRUE(in.release == NULL);
  wg_disconnect(c);
}

/* An input stream that fails on its second batch. */
struct failing {
  struct ArrowArrayStream inner;
  int calls;
};
static int failing_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct failing *f = s->private_data;
  return f->inner.get_schema(&f->inner, out);
}
static int failing_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct failing *f = s->private_data;
  if (++f->calls == 2) return EIO;
  return f->inner.get_next(&f->inner, out);
}
static const char *failing_error(struct ArrowArrayStream *s) {
  return "disk went away";
}
static void failing_release(struct ArrowArrayStream *s) {
  struct failing *f = s->private_data;
  f->inner.release(&f->inner);
  free(f);
  s->release = NULL;
}

static void put_reports_input_error_and_keeps_nothing(void) {
  struct wg_status st;
  wg_client *c;
  ASSERT_WG_OK(connect_fx(&c, &st), &st);
  struct failing *f = calloc(1, sizeof(*f));
  ASSERT_EQ(wg_fx_seed_stream(0, 5, 100, true, &f->inner), 0);
  struct ArrowArrayStream in = {failing_schema, failing_next, failing_error, failing_release, f};
  int64_t rows = -1;
  ASSERT_EQ(wg_put(c, NULL, "lib_fail", &in, NULL, NULL, &rows, &st), WG_STATUS_INTERNAL);
  ASSERT_EQ(st.sys_errno, EIO);
  ASSERT_TRUE(strstr(st.message, "disk went away") != NULL);
  ASSERT_EQ(rows, 0);
  ASSERT_TRUE(in.release == NULL);
  /* The put was cancelled: the server rolls back (and drops the table it created) when it sees
   * the cancellation, which may be just after wg_put returned. */
  int64_t v = -1;
  for (int i = 0; i < 100 && v != 0; i++) {
    if (i > 0) usleep(50000);
    ASSERT_WG_OK(query_i64(c,
                           "SELECT count(*)::BIGINT FROM information_schema.tables "
                           "WHERE table_name = 'lib_fail'",
                           &v, &st),
                 &st);
  }
  ASSERT_EQ(v, 0);
  wg_disconnect(c);
}

static void deadline_is_deadline_exceeded(void) {
  struct wg_client_options o;
  wg_client_options_init(&o);
  o.timeout_ms = 300;
  const char *headers[] = {"x-wigeon-test", "1", NULL};
  o.headers = headers;
  struct wg_status st;
  wg_client *c;
  ASSERT_WG_OK(wg_connect(fx.uri, &o, &c, &st), &st);
  int64_t v;
  ASSERT_EQ(query_i64(c, "SELECT count(*)::BIGINT FROM range(100000000000) t(i) WHERE i % 7 = 3",
                      &v, &st),
            WG_STATUS_DEADLINE_EXCEEDED);
  ASSERT_WG_OK(query_i64(c, "SELECT 5::BIGINT", &v, &st), &st);
  ASSERT_EQ(v, 5);
  wg_disconnect(c);
}

struct worker {
  wg_client *c;
  int id;
  int failures;
  char message[256];
};

static void *worker_main(void *arg) {
  struct worker *w = arg;
  struct wg_status st;
  char table[32], sql[128];
  snprintf(table, sizeof(table), "lib_thread_%d", w->id);
  for (int round = 0; round < 5; round++) {
    struct ArrowArrayStream in;
    int64_t rows = 0;
    struct acks acks = {0};
    wg_fx_seed_stream(round * 2, 2, 250, true, &in);
    if (wg_put(w->c, NULL, table, &in, on_ack, &acks, &rows, &st) != 0 || rows != 500 ||
        acks.n != 1 || strcmp(acks.table, table) != 0)
      goto fail;
    int64_t v = -1;
    snprintf(sql, sizeof(sql), "SELECT count(*)::BIGINT FROM %s", table);
    if (query_i64(w->c, sql, &v, &st) != 0 || v != 500 * (round + 1)) goto fail;
    struct wg_table_info *t;
    int64_t n;
    if (wg_list_tables(w->c, table, &t, &n, &st) != 0 || n != 1) goto fail;
    wg_table_info_free(t, n);
    struct ArrowSchema schema;
    if (wg_table_schema(w->c, NULL, table, &schema, &st) != 0) goto fail;
    schema.release(&schema);
    struct wg_action_result r;
    if (wg_action(w->c, "stats", NULL, 0, &r, &st) != 0 || r.n != 1) goto fail;
    wg_action_result_reset(&r);
    continue;
  fail:
    w->failures++;
    snprintf(w->message, sizeof(w->message), "round %d: %s", round, st.message);
  }
  return NULL;
}

static void eight_threads_share_one_client(void) {
  struct wg_status st;
  wg_client *c;
  ASSERT_WG_OK(connect_fx(&c, &st), &st);
  pthread_t th[8];
  struct worker w[8];
  for (int i = 0; i < 8; i++) {
    w[i] = (struct worker){c, i, 0, ""};
    ASSERT_EQ(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
  }
  for (int i = 0; i < 8; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < 8; i++) {
    if (w[i].failures != 0)
      TEST_FAIL_("thread %d: %d failures, %s", i, w[i].failures, w[i].message);
  }
  for (int i = 0; i < 8; i++) {
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT count(*)::BIGINT FROM lib_thread_%d", i);
    int64_t v = 0;
    ASSERT_WG_OK(query_i64(c, sql, &v, &st), &st);
    ASSERT_EQ(v, 2500);
  }
  wg_disconnect(c);
}

#ifndef WG_CMAKE_COMMAND
#define WG_CMAKE_COMMAND "cmake"
#endif
#ifndef WG_C_COMPILER
#define WG_C_COMPILER "cc"
#endif
#ifndef WG_INSTALL_LIBDIR
#define WG_INSTALL_LIBDIR "lib"
#endif
#ifndef WG_TEST_CFLAGS
#define WG_TEST_CFLAGS ""
#endif
#ifndef WG_BUILD_DIR_DEFAULT
#define WG_BUILD_DIR_DEFAULT "build"
#endif

/* The build folder: WG_BUILD_DIR from ctest, else the one this test was built in. */
static const char *build_dir(void) {
  const char *d = getenv("WG_BUILD_DIR");
  return d != NULL ? d : WG_BUILD_DIR_DEFAULT;
}

static void shared_library_exports_only_the_public_api(void) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/libwigeon.so", build_dir());
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) TEST_FAIL_("dlopen %s: %s", path, dlerror());
  ASSERT_TRUE(h != NULL);
  const char *public_api[] = {"wg_connect",
                              "wg_disconnect",
                              "wg_query",
                              "wg_stream_status",
                              "wg_put",
                              "wg_list_tables",
                              "wg_table_info_free",
                              "wg_table_schema",
                              "wg_query_schema",
                              "wg_action",
                              "wg_action_result_reset",
                              "wg_version",
                              "wg_status_code_name",
                              "wg_client_options_init",
                              "wg_put_idempotent",
                              "wg_do_get",
                              "wg_flight_info",
                              "wg_flight_info_reset",
                              "wg_list_actions",
                              "wg_action_types_free"};
  for (size_t i = 0; i < sizeof(public_api) / sizeof(public_api[0]); i++) {
    if (dlsym(h, public_api[i]) == NULL) TEST_FAIL_("%s is not exported", public_api[i]);
  }
  const char *internal[] = {"wg__client_finish",     "wg_rpc_channel_create", "wg_error_set",
                            "wg_ipc_decoder_create", "wg__client_start",
                            "wg_uri_parse",          "wg__local_code"};
  for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++) {
    if (dlsym(h, internal[i]) != NULL) TEST_FAIL_("%s is exported", internal[i]);
  }
  dlclose(h);
}

static const char *consumer_program =
    "#include <stdio.h>\n"
    "#include <string.h>\n"
    "#include <wigeon.h>\n"
    "int main(int argc, char **argv) {\n"
    "  struct wg_status st;\n"
    "  wg_client *c;\n"
    "  if (wg_connect(argv[1], NULL, &c, &st) != 0) { printf(\"connect: %s\\n\", st.message); "
    "return 1; }\n"
    "  struct ArrowArrayStream s;\n"
    "  if (wg_query(c, \"SELECT 42::BIGINT AS answer\", &s, &st) != 0) return 2;\n"
    "  struct ArrowSchema schema;\n"
    "  struct ArrowArray a;\n"
    "  if (s.get_schema(&s, &schema) != 0 || s.get_next(&s, &a) != 0 || a.release == NULL) {\n"
    "    wg_stream_status(&s, &st);\n"
    "    printf(\"query: %d %s\\n\", st.code, st.message);\n"
    "    return 3;\n"
    "  }\n"
    "  long long v = ((const long long *)a.children[0]->buffers[1])[0];\n"
    "  printf(\"%s %lld %s\\n\", schema.children[0]->name, v, wg_version());\n"
    "  a.release(&a);\n"
    "  schema.release(&schema);\n"
    "  s.release(&s);\n"
    "  int code = wg_table_schema(c, NULL, \"no_such_table\", &schema, &st);\n"
    "  wg_disconnect(c);\n"
    "  return v == 42 && code == WG_STATUS_NOT_FOUND ? 0 : 4;\n"
    "}\n";

/* Runs a shell command, printing it and its output when it fails. */
static int run(const char *cmd, const char *log) {
  char full[8192];
  snprintf(full, sizeof(full), "(%s) > %s 2>&1", cmd, log);
  int rc = system(full);
  if (rc != 0) {
    fprintf(stderr, "  command failed (%d): %s\n", rc, cmd);
    char show[1200];
    snprintf(show, sizeof(show), "tail -n 30 %s >&2", log);
    if (system(show) != 0) fprintf(stderr, "  (no output)\n");
  }
  return rc;
}

static void installed_library_builds_with_pkg_config(void) {
  const char *build = build_dir();
  char dir[256];
  ASSERT_EQ(wg_fx_tmpdir(dir, sizeof(dir)), 0);
  char cmd[4096], log[512], src[512], pc[512];
  snprintf(log, sizeof(log), "%s/log.txt", dir);
  snprintf(src, sizeof(src), "%s/consumer.c", dir);
  snprintf(pc, sizeof(pc), "PKG_CONFIG_PATH=%s/prefix/%s/pkgconfig pkg-config", dir,
           WG_INSTALL_LIBDIR);
  FILE *f = fopen(src, "w");
  ASSERT_TRUE(f != NULL);
  fputs(consumer_program, f);
  fclose(f);

  snprintf(cmd, sizeof(cmd), "'%s' --install '%s' --prefix '%s/prefix'", WG_CMAKE_COMMAND, build,
           dir);
  int rc = run(cmd, log);
  char uri[96];
  snprintf(uri, sizeof(uri), "grpc://%s", fx.uri);
  /* Shared: the consumer finds libwigeon.so through its rpath. */
  if (rc == 0) {
    snprintf(cmd, sizeof(cmd),
             "'%s' %s -std=c11 -Wall -Werror -o %s/consumer %s $(%s --cflags --libs wigeon) "
             "-Wl,-rpath,%s/prefix/%s && %s/consumer %s && "
             "%s/consumer %s | grep -q '^answer 42 ' && "
             "ldd %s/consumer | grep -q '%s/prefix/%s/libwigeon.so'",
             WG_C_COMPILER, WG_TEST_CFLAGS, dir, src, pc, dir, WG_INSTALL_LIBDIR, dir, uri, dir,
             uri, dir, dir, WG_INSTALL_LIBDIR);
    rc = run(cmd, log);
  }
  /* Static: libwigeon.a and its private dependencies from pkg-config --static. */
  if (rc == 0) {
    snprintf(cmd, sizeof(cmd),
             "'%s' %s -std=c11 -Wall -Werror -o %s/consumer_static %s "
             "$(%s --cflags --static --libs wigeon | sed 's/-lwigeon /-l:libwigeon.a /') && "
             "! ldd %s/consumer_static | grep -q libwigeon && %s/consumer_static %s",
             WG_C_COMPILER, WG_TEST_CFLAGS, dir, src, pc, dir, dir, uri);
    rc = run(cmd, log);
  }
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "  cannot remove %s\n", dir);
  ASSERT_EQ(rc, 0);
}

/* Every URI form wg_connect takes, against the real server; the refused ones and why. */
static void connect_takes_every_uri_form(void) {
  const char *forms[] = {"grpc://%s", "grpc+tcp://%s", "%s"};
  for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
    char uri[96];
    snprintf(uri, sizeof(uri), forms[i], fx.uri);
    struct wg_status st;
    wg_client *c = NULL;
    ASSERT_WG_OK(wg_connect(uri, NULL, &c, &st), &st);
    int64_t v = 0;
    ASSERT_WG_OK(query_i64(c, "SELECT 11::BIGINT", &v, &st), &st);
    ASSERT_EQ(v, 11);
    wg_disconnect(c);
  }
  /* IPv6 in brackets is accepted (nothing listens on ::1 here: lazily, the call says so) */
  int port = dead_port();
  ASSERT_TRUE(port > 0);
  char v6[64];
  snprintf(v6, sizeof(v6), "grpc://[::1]:%d", port);
  struct wg_client_options o;
  wg_client_options_init(&o);
  o.lazy_connect = true;
  struct wg_status st;
  wg_client *c = NULL;
  ASSERT_WG_OK(wg_connect(v6, &o, &c, &st), &st);
  int64_t v;
  ASSERT_EQ(query_i64(c, "SELECT 1::BIGINT", &v, &st), WG_STATUS_UNAVAILABLE);
  wg_disconnect(c);
  /* TLS: the files are read at connect (a missing one named), a certificate needs its key;
   * nothing listens on port 1, so the first call is UNAVAILABLE (tests/interop/python/test_tls.py
   * runs the real TLS cases) */
  o.tls_ca_file = "/nonexistent/ca.pem";
  ASSERT_EQ(wg_connect("grpc+tls://127.0.0.1:1", &o, &c, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_TRUE(strstr(st.message, "/nonexistent/ca.pem") != NULL);
  ASSERT_TRUE(c == NULL);
  o.tls_ca_file = NULL;
  o.tls_cert_file = "/nonexistent/client.pem";
  ASSERT_EQ(wg_connect("grpc+tls://127.0.0.1:1", &o, &c, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_TRUE(strstr(st.message, "tls_key_file") != NULL);
  o.tls_cert_file = NULL;
  ASSERT_WG_OK(wg_connect("grpc+tls://127.0.0.1:1", &o, &c, &st), &st);
  ASSERT_EQ(query_i64(c, "SELECT 1::BIGINT", &v, &st), WG_STATUS_UNAVAILABLE);
  wg_disconnect(c);
  c = NULL;
  const char *bad[] = {"grpc://127.0.0.1",      "grpc://[::1:8815",   "grpc://::1:8815",
                       "grpc://127.0.0.1:70000", "grpc://h:1/path",   "ftp://h:1",
                       "grpc://:8815",           "grpc://127.0.0.1:x"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    c = (wg_client *)&st;
    int code = wg_connect(bad[i], &o, &c, &st);
    TEST_RECORD(code == WG_STATUS_INVALID_ARGUMENT && c == NULL &&
                    strstr(st.message, "bad server URI") != NULL,
                "%s: %s: %s", bad[i], wg_status_code_name(code), st.message);
  }
}

/* options.headers go with every call: the server reads wigeon-compression on DoGet and
 * wigeon-idempotency-key on DoPut, so both prove the headers arrive. */
static void extra_headers_reach_the_server(void) {
  char uri[96];
  snprintf(uri, sizeof(uri), "grpc://%s", fx.uri);
  struct wg_client_options o;
  wg_client_options_init(&o);
  const char *bogus[] = {"wigeon-compression", "gzip", NULL};
  o.headers = bogus;
  struct wg_status st;
  wg_client *c;
  ASSERT_WG_OK(wg_connect(uri, &o, &c, &st), &st);
  int64_t v = 0;
  ASSERT_EQ(query_i64(c, "SELECT 3::BIGINT", &v, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_TRUE(strstr(st.message, "wigeon-compression") != NULL);
  ASSERT_TRUE(strstr(st.message, "gzip") != NULL);
  wg_disconnect(c);

  const char *zstd[] = {"wigeon-compression", "zstd", NULL};
  o.headers = zstd;
  ASSERT_WG_OK(wg_connect(uri, &o, &c, &st), &st);
  ASSERT_WG_OK(query_i64(c, "SELECT sum(i)::BIGINT FROM range(100000) t(i)", &v, &st), &st);
  ASSERT_EQ(v, 4999950000LL);
  wg_disconnect(c);

  /* a plain wg_put (no key in its app_metadata) with the key in a header: the second lands
   * as a duplicate and appends nothing */
  const char *keyed[] = {"wigeon-idempotency-key", "lib-header-key-1", NULL};
  o.headers = keyed;
  ASSERT_WG_OK(wg_connect(uri, &o, &c, &st), &st);
  for (int i = 0; i < 2; i++) {
    struct ArrowArrayStream in;
    ASSERT_EQ(wg_fx_seed_stream(0, 1, 100, true, &in), 0);
    int64_t rows = -1;
    ASSERT_WG_OK(wg_put(c, NULL, "lib_header_put", &in, NULL, NULL, &rows, &st), &st);
    ASSERT_EQ(rows, 100);
  }
  ASSERT_WG_OK(query_i64(c, "SELECT count(*)::BIGINT FROM lib_header_put", &v, &st), &st);
  ASSERT_EQ(v, 100);
  wg_disconnect(c);
}

/* Credentials are sent as authorization (Basic or Bearer); the server does not check them yet
 * (issue 13) and every call still works. Conflicting ones are refused at connect. */
static void credentials_are_accepted_and_conflicts_refused(void) {
  char uri[96];
  snprintf(uri, sizeof(uri), "grpc://%s", fx.uri);
  struct wg_client_options o;
  wg_client_options_init(&o);
  o.username = "alice";
  o.password = "s3cret:with colon";
  struct wg_status st;
  wg_client *c;
  ASSERT_WG_OK(wg_connect(uri, &o, &c, &st), &st);
  int64_t v = 0;
  ASSERT_WG_OK(query_i64(c, "SELECT 21::BIGINT", &v, &st), &st);
  ASSERT_EQ(v, 21);
  wg_disconnect(c);

  wg_client_options_init(&o);
  o.token = "tok-123";
  ASSERT_WG_OK(wg_connect(uri, &o, &c, &st), &st);
  ASSERT_WG_OK(query_i64(c, "SELECT 22::BIGINT", &v, &st), &st);
  ASSERT_EQ(v, 22);
  wg_disconnect(c);

  o.username = "alice";
  c = (wg_client *)&st;
  ASSERT_EQ(wg_connect(uri, &o, &c, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_TRUE(c == NULL);
  ASSERT_TRUE(strstr(st.message, "exclusive") != NULL);
  o.username = NULL;
  const char *auth[] = {"authorization", "Bearer other", NULL};
  o.headers = auth;
  ASSERT_EQ(wg_connect(uri, &o, &c, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_TRUE(strstr(st.message, "authorization") != NULL);
  o.token = "";
  o.headers = NULL;
  ASSERT_EQ(wg_connect(uri, &o, &c, &st), WG_STATUS_INVALID_ARGUMENT);
}

/* GetFlightInfo, its ticket through wg_do_get, and ListActions. */
static void flight_info_ticket_and_actions(void) {
  struct wg_status st;
  wg_client *c;
  ASSERT_WG_OK(connect_fx(&c, &st), &st);
  const char *ddl = "CREATE TABLE lib_info AS SELECT range AS i FROM range(7)";
  ASSERT_WG_OK(wg_action(c, "execute", ddl, strlen(ddl), NULL, &st), &st);
  struct wg_flight_info info;
  ASSERT_WG_OK(wg_flight_info(c, NULL, "lib_info", NULL, &info, &st), &st);
  ASSERT_EQ(info.total_records, 7);
  ASSERT_EQ(info.schema.n_children, 1);
  ASSERT_STREQ(info.schema.children[0]->name, "i");
  ASSERT_TRUE(info.ticket != NULL && info.ticket_len > 0);
  struct ArrowArrayStream s;
  ASSERT_WG_OK(wg_do_get(c, info.ticket, info.ticket_len, &s, &st), &st);
  int64_t rows = 0, first = 0;
  ASSERT_EQ(read_stream(&s, &rows, &first), 0);
  ASSERT_EQ(rows, 7);
  s.release(&s);
  wg_flight_info_reset(&info);
  wg_flight_info_reset(&info); /* twice is fine */
  ASSERT_TRUE(info.ticket == NULL);
  ASSERT_EQ(wg_flight_info(c, NULL, "lib_no_such_table", NULL, &info, &st), WG_STATUS_NOT_FOUND);
  ASSERT_EQ(wg_flight_info(c, NULL, NULL, NULL, &info, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_WG_OK(wg_flight_info(c, NULL, NULL, "SELECT 1 AS a, 'x' AS b", &info, &st), &st);
  ASSERT_EQ(info.schema.n_children, 2);
  wg_flight_info_reset(&info);

  struct wg_action_type *types = NULL;
  int64_t n = 0;
  ASSERT_WG_OK(wg_list_actions(c, &types, &n, &st), &st);
  bool has_execute = false;
  for (int64_t i = 0; i < n; i++)
    has_execute = has_execute || strcmp(types[i].type, "execute") == 0;
  ASSERT_TRUE(has_execute);
  ASSERT_TRUE(types[0].description != NULL);
  wg_action_types_free(types, n);
  ASSERT_EQ(wg_list_actions(c, NULL, &n, &st), WG_STATUS_INVALID_ARGUMENT);
  wg_disconnect(c);
}

int main(void) {
  struct wg_server_options o = {0};
  if (wg_fx_server_start(&fx, &o) != 0) return 1;
  RUN_TEST(connect_query_put_list_schema_action_through_public_header);
  RUN_TEST(errors_carry_grpc_code_and_server_message);
  RUN_TEST(unreachable_server_is_unavailable);
  RUN_TEST(put_reports_input_error_and_keeps_nothing);
  RUN_TEST(deadline_is_deadline_exceeded);
  RUN_TEST(eight_threads_share_one_client);
  RUN_TEST(connect_takes_every_uri_form);
  RUN_TEST(extra_headers_reach_the_server);
  RUN_TEST(credentials_are_accepted_and_conflicts_refused);
  RUN_TEST(flight_info_ticket_and_actions);
  RUN_TEST(shared_library_exports_only_the_public_api);
  RUN_TEST(installed_library_builds_with_pkg_config);
  wg_fx_server_stop(&fx);
  return TEST_SUMMARY();
}
