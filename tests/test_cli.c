/* wigeon tests: the `wigeon` command line, run as a child process ($WG_BUILD_DIR/wigeon) against
 * a real server in this process on 127.0.0.1 (ephemeral port, external access allowed so that
 * the server's own read_csv/read_parquet can compare what was put with the files). Files live in
 * a temporary directory and are written by an embedded DuckDB. Every child gets a time limit. */
#include <duckdb.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arrow/array.h"
#include "arrow/ipc.h"
#include "engine/arrow_duck.h"
#include "support/server_fixture.h"
#include "test.h"
#include "wigeon.h"

static struct wg_fx_server fx;
static wg_client *client;
static char dir[256];
static char server_flag[96];

struct run {
  int code; /* exit status, or -1 when killed (signal or time limit) */
  char *out, *err;
};

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return strdup("");
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  size_t got = fread(s, 1, (size_t)n, f);
  s[got] = '\0';
  fclose(f);
  return s;
}

static void run_free(struct run *r) {
  free(r->out);
  free(r->err);
}

/* Runs wigeon with args (NULL-terminated), stdin from `in` (NULL: /dev/null), WIGEON_SERVER set
 * to `env_server` (NULL: unset), killed after `limit_s` seconds. */
static struct run run_env(const char *in, const char *env_server, int limit_s,
                          const char *const *args) {
  const char *build = getenv("WG_BUILD_DIR");
  char bin[1024], out_path[512], err_path[512];
  snprintf(bin, sizeof(bin), "%s/wigeon", build ? build : "build");
  snprintf(out_path, sizeof(out_path), "%s/stdout.txt", dir);
  snprintf(err_path, sizeof(err_path), "%s/stderr.txt", dir);
  struct run r = {-1, NULL, NULL};
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fi = open(in ? in : "/dev/null", O_RDONLY);
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fi, 0);
    dup2(fo, 1);
    dup2(fe, 2);
    if (env_server)
      setenv("WIGEON_SERVER", env_server, 1);
    else
      unsetenv("WIGEON_SERVER");
    const char *argv[64] = {bin};
    int n = 1;
    for (int i = 0; args[i] != NULL && n < 63; i++)
      argv[n++] = args[i];
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  int st = 0;
  for (int i = 0; i < limit_s * 100; i++) {
    if (waitpid(pid, &st, WNOHANG) == pid) {
      r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      pid = 0;
      break;
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (pid != 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    fprintf(stderr, "  wigeon %s: killed after %d s\n", args[0], limit_s);
  }
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

#define WIGEON(...) run_env(NULL, NULL, 60, (const char *const[]){__VA_ARGS__, NULL})
#define WIGEON_IN(in, ...) run_env(in, NULL, 60, (const char *const[]){__VA_ARGS__, NULL})

#define ASSERT_CONTAINS(hay, needle)                                                               \
  do {                                                                                             \
    if (strstr((hay), (needle)) == NULL) {                                                         \
      TEST_FAIL_("expected \"%s\" in:\n%s", (needle), (hay));                                      \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

/* The first column of the first row of SQL run on the server. */
static int64_t server_i64(const char *sql) {
  int64_t v = -1;
  struct wg_status ws;
  if (wg_fx_query_i64(client, sql, &v, &ws) != 0) {
    fprintf(stderr, "  query failed: %s\n  %s\n", sql, ws.message);
    return -999;
  }
  return v;
}

static char *path_in(const char *name) {
  static char paths[8][512];
  static int k;
  char *p = paths[k++ % 8];
  snprintf(p, 512, "%s/%s", dir, name);
  return p;
}

/* Runs SQL in a fresh embedded DuckDB (to write the input files). */
static int local_exec(const char *sql) {
  duckdb_database db;
  duckdb_connection c;
  if (duckdb_open(NULL, &db) != DuckDBSuccess) return -1;
  duckdb_connect(db, &c);
  duckdb_result r;
  int rc = duckdb_query(c, sql, &r) == DuckDBSuccess ? 0 : -1;
  if (rc != 0) fprintf(stderr, "  local DuckDB: %s\n", duckdb_result_error(&r));
  duckdb_destroy_result(&r);
  duckdb_disconnect(&c);
  duckdb_close(&db);
  return rc;
}

/* Rows in one and not the other, both ways, as a multiset: 0 when equal. */
static int64_t server_diff(const char *a, const char *b) {
  char sql[2048];
  snprintf(sql, sizeof(sql),
           "SELECT (SELECT count(*) FROM (%s EXCEPT ALL %s)) + "
           "(SELECT count(*) FROM (%s EXCEPT ALL %s))",
           a, b, b, a);
  return server_i64(sql);
}

static const char *csv_source =
    "SELECT range AS id, 'name, \"' || range || '\"' AS name, range * 0.5 AS x, "
    "DATE '2024-01-01' + (range % 1000)::INT AS d, "
    "CASE WHEN range % 7 = 0 THEN NULL ELSE range % 3 END AS maybe FROM range(50000)";

static const char *parquet_source =
    "SELECT range AS id, range::INTEGER AS i32, 'ünïcødé ' || range AS s, range / 7.0 AS dbl, "
    "(range * 1.5)::DECIMAL(18,3) AS dec, TIMESTAMP '2024-03-01 12:00:00' + "
    "to_microseconds(range * 1000) AS ts, range % 2 = 0 AS flag, "
    "CASE WHEN range % 5 = 0 THEN NULL ELSE 'line\nbreak' END AS nullable_text, "
    "[range % 3, range % 5]::INTEGER[] AS list FROM range(70000)";

/* ---- usage, help and exit codes ---- */

static void help_lists_every_command_and_each_command_has_help(void) {
  const char *cmds[] = {"serve",  "query",  "put",     "load",  "watch", "tail",
                        "demo",   "tables", "schema",  "actions", "stats"};
  struct run r = WIGEON("help");
  ASSERT_EQ(r.code, 0);
  for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
    char needle[32];
    snprintf(needle, sizeof(needle), "  %s ", cmds[i]);
    ASSERT_CONTAINS(r.out, needle);
  }
  run_free(&r);
  for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
    r = WIGEON(cmds[i], "--help");
    ASSERT_EQ(r.code, 0);
    char needle[64];
    snprintf(needle, sizeof(needle), "usage: wigeon %s", cmds[i]);
    ASSERT_CONTAINS(r.out, needle);
    run_free(&r);
  }
}

static void wrong_flags_or_missing_arguments_exit_1_with_usage_on_stderr(void) {
  struct {
    const char *args[6];
    const char *usage;
  } cases[] = {
      {{"query", "--bogus", "SELECT 1"}, "usage: wigeon query"},
      {{"query"}, "usage: wigeon query"},
      {{"query", "--format", "xml", "SELECT 1"}, "usage: wigeon query"},
      {{"query", "--format", "parquet", "SELECT 1"}, "usage: wigeon query"},
      {{"put", "somefile.csv"}, "usage: wigeon put"},
      {{"put", "--table", "t"}, "usage: wigeon put"},
      {{"load", "--rows", "many"}, "usage: wigeon load"},
      {{"load", "--shape", "cube"}, "usage: wigeon load"},
      {{"watch", "--interval", "soon", "SELECT 1"}, "usage: wigeon watch"},
      {{"demo", "--duration"}, "usage: wigeon demo"},
      {{"schema"}, "usage: wigeon schema"},
      {{"tables", "extra"}, "usage: wigeon tables"},
      {{"stats", "--server"}, "usage: wigeon stats"},
      {{"nonsense"}, "usage: wigeon <command>"},
      /* --listen goes through the one URI parser: a bad address, and a grpc+tls address (TLS
       * is --tls-cert/--tls-key; never plaintext on a grpc+tls address) */
      {{"serve", "--listen", "nohost"}, "no :PORT"},
      {{"serve", "--listen", "::1:8815"}, "needs brackets"},
      {{"serve", "--listen", "grpc+tls://127.0.0.1:0"}, "give --tls-cert and --tls-key"},
      {{"serve", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *args[8] = {0};
    int n = 0;
    for (; n < 6 && cases[i].args[n]; n++)
      args[n] = cases[i].args[n];
    struct run r = run_env(NULL, NULL, 30, args);
    if (r.code != 1 || strstr(r.err, cases[i].usage) == NULL || r.out[0] != '\0') {
      TEST_FAIL_("case %zu (%s %s): exit %d, stderr:\n%s", i, args[0], args[1] ? args[1] : "",
                 r.code, r.err);
      run_free(&r);
      return;
    }
    run_free(&r);
  }
  /* A file that is not there is the user's mistake too. */
  struct run r = WIGEON("put", server_flag, "--table", "t", path_in("missing.csv"));
  ASSERT_EQ(r.code, 1);
  ASSERT_CONTAINS(r.err, "missing.csv");
  run_free(&r);
}

static void unreachable_server_exits_3_naming_the_server(void) {
  /* A port nobody listens on: bind one, note it, close it. */
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ASSERT_EQ(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(s, (struct sockaddr *)&a, &len);
  close(s);
  char flag[96], uri[96];
  snprintf(flag, sizeof(flag), "--server=127.0.0.1:%d", ntohs(a.sin_port));
  snprintf(uri, sizeof(uri), "cannot connect to grpc://127.0.0.1:%d", ntohs(a.sin_port));
  const char *cmds[][3] = {{"query", "SELECT 1", NULL}, {"tables", NULL, NULL},
                           {"stats", NULL, NULL},       {"actions", NULL, NULL},
                           {"schema", "t", NULL},       {"load", "--batches", "1"}};
  for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
    const char *args[6] = {cmds[i][0], flag, cmds[i][1], cmds[i][2], NULL};
    struct run r = run_env(NULL, NULL, 30, args);
    if (r.code != 3 || strstr(r.err, uri) == NULL) {
      TEST_FAIL_("%s: exit %d, stderr:\n%s", cmds[i][0], r.code, r.err);
      run_free(&r);
      return;
    }
    run_free(&r);
  }
  /* WIGEON_SERVER is used when --server is not given. */
  struct run r = run_env(NULL, flag + strlen("--server="), 30,
                         (const char *const[]){"query", "SELECT 1", NULL});
  ASSERT_EQ(r.code, 3);
  ASSERT_CONTAINS(r.err, uri);
  run_free(&r);
  r = run_env(NULL, fx.uri, 30, (const char *const[]){"query", "SELECT 1234 AS n", NULL});
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "1234");
  run_free(&r);
}

static void sql_error_exits_2_with_duckdbs_message(void) {
  struct run r = WIGEON("query", server_flag, "SELECT * FROM no_such_table_here");
  ASSERT_EQ(r.code, 2);
  ASSERT_CONTAINS(r.err, "Catalog Error");
  ASSERT_CONTAINS(r.err, "no_such_table_here");
  ASSERT_EQ(r.out[0], '\0');
  run_free(&r);
  r = WIGEON("query", server_flag, "--format", "csv", "SELEC 1");
  ASSERT_EQ(r.code, 2);
  ASSERT_CONTAINS(r.err, "Parser Error");
  run_free(&r);
  /* An error during execution, after the schema, is reported the same way. */
  r = WIGEON("query", server_flag,
             "SELECT CASE WHEN range < 100000 THEN range ELSE "
             "error('boom at the end') END FROM range(200000)");
  ASSERT_EQ(r.code, 2);
  ASSERT_CONTAINS(r.err, "boom at the end");
  run_free(&r);
  /* A put into a schema that does not exist is the server's error too. */
  char sql[1024];
  snprintf(sql, sizeof(sql), "COPY (SELECT 1 AS a) TO '%s' (HEADER)", path_in("one.csv"));
  ASSERT_EQ(local_exec(sql), 0);
  r = WIGEON("put", server_flag, "--schema", "no_such_schema", "--table", "t", path_in("one.csv"));
  ASSERT_EQ(r.code, 2);
  ASSERT_CONTAINS(r.err, "no_such_schema");
  run_free(&r);
}

/* ---- put and query: data read back equal ---- */

static void csv_put_reads_back_equal_to_duckdbs_read_csv(void) {
  char sql[2048], a[1024], b[1024];
  snprintf(sql, sizeof(sql), "COPY (%s) TO '%s' (HEADER)", csv_source, path_in("in.csv"));
  ASSERT_EQ(local_exec(sql), 0);
  struct run r =
      WIGEON("put", server_flag, "--table", "csv_t", "--batch-rows", "10000", path_in("in.csv"));
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "put 50,000 rows into csv_t");
  run_free(&r);
  ASSERT_EQ(server_i64("SELECT count(*) FROM csv_t"), 50000);
  snprintf(b, sizeof(b), "SELECT * FROM read_csv('%s')", path_in("in.csv"));
  ASSERT_EQ(server_diff("SELECT * FROM csv_t", b), 0);

  /* query --format csv writes what read_csv reads back equal to the original file */
  r = WIGEON("query", server_flag, "--format", "csv", "-o", path_in("out.csv"),
             "SELECT * FROM csv_t");
  ASSERT_EQ(r.code, 0);
  run_free(&r);
  snprintf(a, sizeof(a), "SELECT * FROM read_csv('%s')", path_in("out.csv"));
  ASSERT_EQ(server_i64("SELECT count(*) FROM csv_t"), 50000);
  ASSERT_EQ(server_diff(a, b), 0);

  /* the same file through stdin ('-', spooled) */
  r = WIGEON_IN(path_in("in.csv"), "put", server_flag, "--table", "csv_stdin", "-");
  ASSERT_EQ(r.code, 0);
  run_free(&r);
  ASSERT_EQ(server_diff("SELECT * FROM csv_stdin", b), 0);

  /* json and ndjson output read back by read_json_auto */
  r = WIGEON("query", server_flag, "--format", "json", "-o", path_in("out.json"),
             "SELECT id, name, x, maybe FROM csv_t");
  ASSERT_EQ(r.code, 0);
  run_free(&r);
  r = WIGEON("query", server_flag, "--format", "ndjson", "-o", path_in("out.ndjson"),
             "SELECT id, name, x, maybe FROM csv_t");
  ASSERT_EQ(r.code, 0);
  run_free(&r);
  snprintf(a, sizeof(a), "SELECT id, name, x, maybe FROM read_json_auto('%s')",
           path_in("out.json"));
  ASSERT_EQ(server_diff(a, "SELECT id, name, x, maybe FROM csv_t"), 0);
  snprintf(a, sizeof(a), "SELECT id, name, x, maybe FROM read_json_auto('%s')",
           path_in("out.ndjson"));
  ASSERT_EQ(server_diff(a, "SELECT id, name, x, maybe FROM csv_t"), 0);
  /* and json files can be put too */
  r = WIGEON("put", server_flag, "--table", "json_t", path_in("out.ndjson"));
  ASSERT_EQ(r.code, 0);
  run_free(&r);
  ASSERT_EQ(
      server_diff("SELECT id, name, x, maybe FROM json_t", "SELECT id, name, x, maybe FROM csv_t"),
      0);
}

/* wigeon put sends an idempotency key: the same run repeated with its key appends nothing */
static void put_repeated_with_its_idempotency_key_appends_once(void) {
  for (int i = 0; i < 2; i++) {
    struct run r = WIGEON("put", server_flag, "--table", "keyed_t", "--idempotency-key",
                          "nightly-2026-12-07", path_in("in.csv"), path_in("in.csv"));
    ASSERT_EQ(r.code, 0);
    run_free(&r);
    ASSERT_EQ(server_i64("SELECT count(*) FROM keyed_t"), 100000);
  }
  /* without a key, each run is a new put */
  struct run r = WIGEON("put", server_flag, "--table", "keyed_t", path_in("in.csv"));
  ASSERT_EQ(r.code, 0);
  run_free(&r);
  ASSERT_EQ(server_i64("SELECT count(*) FROM keyed_t"), 150000);
}

static void parquet_put_reads_back_equal_to_duckdbs_read_parquet(void) {
  char sql[2048], b[1024], a[1024];
  snprintf(sql, sizeof(sql), "COPY (%s) TO '%s' (FORMAT parquet)", parquet_source,
           path_in("in.parquet"));
  ASSERT_EQ(local_exec(sql), 0);
  struct run r = WIGEON("put", server_flag, "--table", "pq_t", path_in("in.parquet"));
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "put 70,000 rows into pq_t");
  run_free(&r);
  snprintf(b, sizeof(b), "SELECT * FROM read_parquet('%s')", path_in("in.parquet"));
  ASSERT_EQ(server_i64("SELECT count(*) FROM pq_t"), 70000);
  ASSERT_EQ(server_diff("SELECT * FROM pq_t", b), 0);

  /* query --format parquet (written by the client's own DuckDB) reads back equal */
  r = WIGEON("query", server_flag, "--format", "parquet", "-o", path_in("out.parquet"),
             "SELECT * FROM pq_t");
  ASSERT_EQ(r.code, 0);
  run_free(&r);
  snprintf(a, sizeof(a), "SELECT * FROM read_parquet('%s')", path_in("out.parquet"));
  ASSERT_EQ(server_diff(a, b), 0);

  /* two files in one command: one put each, rows add up */
  r = WIGEON("put", server_flag, "--table", "pq_twice", path_in("in.parquet"),
             path_in("out.parquet"));
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "put 140,000 rows into pq_twice");
  run_free(&r);
}

static void arrow_output_reads_back_in_duckdb_with_equal_content(void) {
  char b[1024];
  snprintf(b, sizeof(b), "SELECT * FROM read_parquet('%s')", path_in("in.parquet"));
  ASSERT_EQ(server_i64("SELECT count(*) FROM pq_t"), 70000); /* from the parquet test */
  struct run r = WIGEON("query", server_flag, "--format", "arrow", "-o", path_in("out.arrow"),
                        "SELECT * FROM pq_t");
  ASSERT_EQ(r.code, 0);
  run_free(&r);

  /* Our reader + DuckDB's arrow scan (through the engine's ingest) in a DuckDB of our own. */
  int fd = open(path_in("out.arrow"), O_RDONLY);
  ASSERT_TRUE(fd >= 0);
  struct stat st;
  fstat(fd, &st);
  uint8_t *data = malloc((size_t)st.st_size);
  ASSERT_EQ(read(fd, data, (size_t)st.st_size), st.st_size);
  close(fd);
  ASSERT_EQ(wg_load_u32(data), 0xFFFFFFFFu); /* an IPC stream starts with a continuation */
  struct wg_shared *shared = wg_shared_take(data, st.st_size);
  struct ArrowArrayStream s;
  ASSERT_EQ(wg_ipc_stream_reader_init(&s, shared, NULL), 0);
  wg_shared_unref(shared);
  duckdb_database db;
  duckdb_connection c;
  ASSERT_EQ(duckdb_open(NULL, &db), DuckDBSuccess);
  duckdb_connect(db, &c);
  struct wg_error err = {""};
  int64_t rows = 0;
  int rc = wg_engine_ingest_arrow_stream_mode(c, "back", WG_ENGINE_INGEST_CREATE, &s, &rows, &err);
  char sql[2048];
  snprintf(sql, sizeof(sql),
           "SELECT (SELECT count(*) FROM (SELECT * FROM back EXCEPT ALL %s)) + "
           "(SELECT count(*) FROM (%s EXCEPT ALL SELECT * FROM back))",
           b, b);
  duckdb_result res;
  duckdb_state q = duckdb_query(c, sql, &res);
  int64_t diff = q == DuckDBSuccess ? duckdb_value_int64(&res, 0, 0) : -1;
  if (q != DuckDBSuccess) fprintf(stderr, "  %s\n", duckdb_result_error(&res));
  duckdb_destroy_result(&res);
  duckdb_disconnect(&c);
  duckdb_close(&db);
  ASSERT_OK(rc, &err);
  ASSERT_EQ(rows, 70000);
  ASSERT_EQ(diff, 0);

  /* and `wigeon put` of the Arrow file gives the server the same table again */
  r = WIGEON("put", server_flag, "--table", "arrow_t", path_in("out.arrow"));
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "put 70,000 rows into arrow_t");
  run_free(&r);
  ASSERT_EQ(server_diff("SELECT * FROM arrow_t", "SELECT * FROM pq_t"), 0);
  /* arrow to stdout when it is not a terminal: byte for byte the file */
  r = WIGEON("query", server_flag, "--format", "arrow", "SELECT * FROM pq_t ORDER BY id LIMIT 10");
  ASSERT_EQ(r.code, 0);
  run_free(&r);
}

static void table_output_shows_names_types_and_elides_the_middle_of_big_results(void) {
  struct run r = WIGEON("query", server_flag, "SELECT 42 AS answer, 'hi' AS greeting");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "answer");
  ASSERT_CONTAINS(r.out, "greeting");
  ASSERT_CONTAINS(r.out, "int32");
  ASSERT_CONTAINS(r.out, "varchar");
  ASSERT_CONTAINS(r.out, "│     42 │ hi       │");
  ASSERT_TRUE(strstr(r.out, "shown") == NULL);
  ASSERT_EQ(r.err[0], '\0'); /* stderr is not a terminal: no row count there */
  run_free(&r);

  r = WIGEON("query", server_flag, "--max-rows", "10",
             "SELECT range AS i, 'row ' || range AS label FROM range(100000)");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "100,000 rows");
  ASSERT_CONTAINS(r.out, "(10 shown)");
  ASSERT_CONTAINS(r.out, "│     0 │ row 0 ");
  ASSERT_CONTAINS(r.out, "│     4 │ row 4 ");
  ASSERT_CONTAINS(r.out, "│ 99999 │ row 99999 ");
  ASSERT_CONTAINS(r.out, "│ 99995 │ row 99995 ");
  ASSERT_CONTAINS(r.out, "│     · │ ·");
  ASSERT_TRUE(strstr(r.out, "row 5 ") == NULL);
  ASSERT_TRUE(strstr(r.out, "row 99994 ") == NULL);
  run_free(&r);

  /* Just above --max-rows: the last rows still sit among the first ones kept. */
  r = WIGEON("query", server_flag, "--max-rows", "10", "SELECT range AS i FROM range(13)");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "13 rows");
  ASSERT_CONTAINS(r.out, " 4 │");
  ASSERT_CONTAINS(r.out, " 8 │");
  ASSERT_CONTAINS(r.out, " 12 │");
  ASSERT_TRUE(strstr(r.out, " 5 │") == NULL);
  ASSERT_TRUE(strstr(r.out, " 7 │") == NULL);
  run_free(&r);

  r = WIGEON("query", server_flag, "--max-width", "10", "--ascii",
             "SELECT repeat('x', 100) AS wide");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "| xxxxxxxxx… |");
  ASSERT_TRUE(strstr(r.out, "xxxxxxxxxxx") == NULL);
  run_free(&r);

  r = WIGEON("query", server_flag, "SELECT 1 AS a WHERE false");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "0 rows");
  run_free(&r);
}

/* ---- load, watch, demo ---- */

static void load_5_batches_by_2_writers_puts_exactly_10000_rows(void) {
  struct run r = WIGEON("load", server_flag, "--table", "load_t", "--batches", "5", "--writers",
                        "2", "--rows", "1000");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "loaded 10,000 rows (10 batches, 2 writers) into load_t");
  run_free(&r);
  ASSERT_EQ(server_i64("SELECT count(*) FROM load_t"), 10000);
  ASSERT_EQ(server_i64("SELECT count(DISTINCT batch_id) FROM load_t"), 10);
  ASSERT_EQ(server_i64("SELECT count(*) FROM load_t WHERE value < 0 OR value >= 1000 OR "
                       "category IS NULL OR timestamp::TIMESTAMP IS NULL"),
            0);

  r = WIGEON("load", server_flag, "--shape", "kv", "--batches", "3", "--writers", "3",
             "--batches-per-put", "2", "--rows", "500", "--quiet");
  ASSERT_EQ(r.code, 0);
  run_free(&r);
  ASSERT_EQ(server_i64("SELECT count(DISTINCT id) FROM kv"), 4500);
}

static void load_for_a_duration_prints_a_line_a_second_then_stops(void) {
  struct run r =
      WIGEON("load", server_flag, "--table", "load_d", "--duration", "2.5", "--rows", "100");
  ASSERT_EQ(r.code, 0);
  int lines = 0;
  for (const char *p = r.out; (p = strstr(p, " rows/s\n")) != NULL; p++)
    lines++;
  ASSERT_TRUE(lines >= 2); /* one a second */
  ASSERT_CONTAINS(r.out, "loaded ");
  run_free(&r);
  ASSERT_TRUE(server_i64("SELECT count(*) FROM load_d") > 0);
}

static void watch_count_2_prints_two_timestamped_results(void) {
  struct run r =
      WIGEON("watch", server_flag, "--count", "2", "--interval", "100ms", "SELECT 7 AS seven");
  ASSERT_EQ(r.code, 0);
  int n = 0;
  for (const char *p = r.out; (p = strstr(p, "every 0.1s: SELECT 7 AS seven")) != NULL; p++)
    n++;
  ASSERT_EQ(n, 2);
  n = 0;
  for (const char *p = r.out; (p = strstr(p, "│     7 │")) != NULL; p++)
    n++;
  ASSERT_EQ(n, 2);
  ASSERT_TRUE(strstr(r.out, "\033[2J") == NULL); /* not a terminal: no clearing */
  run_free(&r);
  r = WIGEON("watch", server_flag, "--count", "3", "SELECT * FROM not_there");
  ASSERT_EQ(r.code, 2);
  run_free(&r);
}

static void demo_for_3_seconds_prints_rising_counts_and_cleans_up(void) {
  struct run r = run_env(NULL, NULL, 60, (const char *const[]){"demo", "--duration", "3", NULL});
  ASSERT_EQ(r.code, 0);
  /* before strtok cuts the output into lines */
  ASSERT_CONTAINS(r.out, "demo: the live tail saw ");
  ASSERT_CONTAINS(r.out, ": every row put, once\n");
  int64_t counts[16];
  int n = 0;
  for (char *line = strtok(r.out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
    if (strncmp(line, "demo: server stopped, ", 22) == 0) {
      char removed[512];
      snprintf(removed, sizeof(removed), "%s", line + 22);
      char *sp = strstr(removed, " removed");
      ASSERT_TRUE(sp != NULL);
      *sp = '\0';
      struct stat st;
      ASSERT_TRUE(stat(removed, &st) != 0); /* the temporary database is gone */
    }
    const char *c = strstr(line, " s  count ");
    if (c == NULL || n == 16) continue;
    int64_t v = 0;
    for (c += 10; *c == ',' || (*c >= '0' && *c <= '9'); c++)
      if (*c != ',') v = v * 10 + (*c - '0');
    counts[n++] = v;
  }
  ASSERT_TRUE(n >= 2);
  for (int i = 1; i < n; i++)
    ASSERT_TRUE(counts[i] >= counts[i - 1]);
  ASSERT_TRUE(counts[n - 1] > counts[0]);
  ASSERT_TRUE(counts[0] > 0);
  run_free(&r);
}

/* ---- describing the server ---- */

static void tables_schema_actions_and_stats_print_what_the_server_has(void) {
  ASSERT_EQ(server_i64("SELECT count(*) FROM (SELECT 1) WHERE EXISTS (SELECT 1)"), 1);
  struct wg_status st;
  const char *ddl = "CREATE TABLE described (id BIGINT NOT NULL, name VARCHAR, created TIMESTAMP, "
                    "amount DECIMAL(10,2))";
  ASSERT_OK(wg_action(client, "execute", ddl, strlen(ddl), NULL, &st), st.message);
  const char *ins = "INSERT INTO described VALUES (1, 'a', NULL, 1.5), (2, 'b', NULL, 2.5)";
  ASSERT_OK(wg_action(client, "execute", ins, strlen(ins), NULL, &st), st.message);

  struct run r = WIGEON("tables", server_flag);
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "described");
  ASSERT_CONTAINS(r.out, "id, name, created, amount");
  run_free(&r);
  r = WIGEON("tables", server_flag, "--filter", "describ");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "described");
  ASSERT_TRUE(strstr(r.out, "csv_t") == NULL);
  run_free(&r);

  r = WIGEON("schema", server_flag, "described");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "main.described: 2 rows");
  ASSERT_CONTAINS(r.out, "int64");
  ASSERT_CONTAINS(r.out, "BIGINT");
  ASSERT_CONTAINS(r.out, "TIMESTAMP");
  ASSERT_CONTAINS(r.out, "DECIMAL(10,2)");
  ASSERT_CONTAINS(r.out, "decimal(10,2)");
  ASSERT_CONTAINS(r.out, "utf8");
  run_free(&r);
  r = WIGEON("schema", server_flag, "main.not_a_table");
  ASSERT_EQ(r.code, 2);
  ASSERT_CONTAINS(r.err, "not_a_table");
  run_free(&r);

  r = WIGEON("actions", server_flag);
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "execute ");
  ASSERT_CONTAINS(r.out, "drop_table ");
  ASSERT_CONTAINS(r.out, "checkpoint ");
  ASSERT_CONTAINS(r.out, "stats ");
  run_free(&r);

  r = WIGEON("stats", server_flag);
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "rows_in ");
  ASSERT_CONTAINS(r.out, "puts ");
  ASSERT_CONTAINS(r.out, "calls ");
  run_free(&r);
  r = WIGEON("stats", server_flag, "--json");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "\"rows_in\":");
  run_free(&r);
}

/* ---- Flight SQL (--flight-sql, --meta) ---- */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The text with its lines after the first (a CSV header) sorted, in place. */
static char *sort_body(char *text) {
  char *lines[4096];
  int n = 0;
  char *body = strchr(text, '\n');
  if (body == NULL) return text;
  for (char *save = NULL, *l = strtok_r(body + 1, "\n", &save); l != NULL && n < 4096;
       l = strtok_r(NULL, "\n", &save))
    lines[n++] = l;
  qsort(lines, (size_t)n, sizeof(*lines), cmp_str);
  struct wg_buf b;
  wg_buf_init(&b);
  wg_buf_append(&b, text, body - text + 1);
  for (int i = 0; i < n; i++) {
    wg_buf_append(&b, lines[i], (int64_t)strlen(lines[i]));
    wg_buf_append(&b, "\n", 1);
  }
  memcpy(text, b.data, (size_t)b.size);
  text[b.size] = '\0';
  wg_buf_reset(&b);
  return text;
}

static void lower(char *s) {
  for (; *s; s++)
    *s = (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
}

static void flight_sql_query_prints_what_plain_query_prints(void) {
  const char *sql = "SELECT i, 'v' || i AS s, i % 2 = 0 AS even FROM range(2500) t(i)";
  const char *formats[] = {"csv", "json", "table"};
  for (int k = 0; k < 3; k++) {
    struct run plain = WIGEON("query", server_flag, "-f", formats[k], sql);
    struct run fsql = WIGEON("query", server_flag, "--flight-sql", "-f", formats[k], sql);
    ASSERT_EQ(plain.code, 0);
    ASSERT_EQ(fsql.code, 0);
    ASSERT_TRUE(strlen(plain.out) > 100);
    ASSERT_STREQ(fsql.out, plain.out);
    run_free(&plain);
    run_free(&fsql);
  }
  struct run r = WIGEON("query", server_flag, "--flight-sql", "SELEC 1");
  ASSERT_EQ(r.code, 2);
  ASSERT_CONTAINS(r.err, "syntax error");
  run_free(&r);
  r = WIGEON("query", server_flag, "--flight-sql", "SELECT * FROM fqc_missing");
  ASSERT_EQ(r.code, 2);
  ASSERT_CONTAINS(r.err, "fqc_missing");
  run_free(&r);
  r = WIGEON("query", "--server=grpc://127.0.0.1:1", "--flight-sql", "SELECT 1");
  ASSERT_EQ(r.code, 3);
  run_free(&r);
}

/* --meta KIND's CSV equals the plain query's (rows compared in sorted order). */
#define ASSERT_META_IS(sql, ...)                                                                   \
  do {                                                                                             \
    struct run m_ = WIGEON("query", server_flag, "-f", "csv", "--meta", __VA_ARGS__);              \
    struct run p_ = WIGEON("query", server_flag, "-f", "csv", (sql));                              \
    ASSERT_EQ(p_.code, 0);                                                                         \
    if (m_.code != 0) TEST_FAIL_("--meta exit %d: %s", m_.code, m_.err);                           \
    if (m_.code == 0 && strcmp(sort_body(m_.out), sort_body(p_.out)) != 0)                         \
      TEST_FAIL_("--meta:\n%s\nDuckDB (%s):\n%s", m_.out, (sql), p_.out);                          \
    run_free(&m_);                                                                                 \
    run_free(&p_);                                                                                 \
    if (wg_test_current_failed) return;                                                            \
  } while (0)

static void flight_sql_meta_reaches_every_metadata_command(void) {
  struct wg_status st;
  const char *ddl[] = {"CREATE TABLE fqc_parent(id INTEGER PRIMARY KEY, name VARCHAR)",
                       ("CREATE TABLE fqc_child(id INTEGER, parent_id INTEGER REFERENCES "
                        "fqc_parent(id))"),
                       "CREATE VIEW fqc_view AS SELECT id FROM fqc_parent"};
  for (int i = 0; i < 3; i++)
    ASSERT_OK(wg_action(client, "execute", ddl[i], strlen(ddl[i]), NULL, &st), st.message);
  /* the database's own catalog, without wigeon_internal, as the server lists it */
  ASSERT_META_IS("SELECT DISTINCT catalog_name FROM information_schema.schemata "
                 "WHERE catalog_name = current_database()",
                 "catalogs");
  ASSERT_META_IS("SELECT catalog_name, schema_name AS db_schema_name "
                 "FROM information_schema.schemata WHERE catalog_name = current_database() "
                 "AND schema_name <> 'wigeon_internal'",
                 "schemas");
  ASSERT_META_IS("SELECT table_catalog AS catalog_name, table_schema AS db_schema_name, "
                 "table_name, table_type FROM information_schema.tables "
                 "WHERE table_name LIKE 'fqc%'",
                 "tables", "fqc%");
  ASSERT_META_IS("SELECT table_catalog AS catalog_name, table_schema AS db_schema_name, "
                 "table_name, table_type FROM information_schema.tables "
                 "WHERE table_name LIKE 'fqc%' AND table_type = 'VIEW'",
                 "tables", "--table=fqc%", "--table-type", "VIEW");

  struct run r = WIGEON("query", server_flag, "-f", "csv", "--meta", "table-types");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "\nBASE TABLE\n");
  ASSERT_CONTAINS(r.out, "\nVIEW\n");
  run_free(&r);
  r = WIGEON("query", server_flag, "-f", "csv", "--meta", "sql-info", "--info", "0,1");
  ASSERT_EQ(r.code, 0);
  char info[128]; /* the value column is a dense union, printed as text */
  snprintf(info, sizeof(info), "info_name,value\n0,wigeon\n1,%s\n", wg_version());
  ASSERT_STREQ(r.out, info);
  run_free(&r);
  r = WIGEON("query", server_flag, "-f", "csv", "--meta", "primary-keys", "fqc_parent");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, ",fqc_parent,id,");
  run_free(&r);
  r = WIGEON("query", server_flag, "-f", "csv", "--meta", "exported-keys", "fqc_parent");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, ",fqc_child,parent_id,");
  run_free(&r);
  r = WIGEON("query", server_flag, "-f", "csv", "--meta", "imported-keys", "--table", "fqc_child");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, ",fqc_parent,id,");
  run_free(&r);
  r = WIGEON("query", server_flag, "-f", "csv", "--meta", "cross-reference", "fqc_parent",
             "--fk-table", "fqc_child");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, ",fqc_child,parent_id,");
  run_free(&r);
  r = WIGEON("query", server_flag, "-f", "csv", "--meta", "type-info", "--data-type=-5");
  ASSERT_EQ(r.code, 0);
  lower(r.out);
  ASSERT_CONTAINS(r.out, "bigint");
  ASSERT_TRUE(strstr(r.out, "varchar") == NULL);
  run_free(&r);

  r = WIGEON("query", server_flag, "--meta", "primary-keys");
  ASSERT_EQ(r.code, 1);
  ASSERT_CONTAINS(r.err, "needs a table");
  run_free(&r);
  r = WIGEON("query", server_flag, "--meta", "cross-reference", "fqc_parent");
  ASSERT_EQ(r.code, 1);
  ASSERT_CONTAINS(r.err, "--fk-table");
  run_free(&r);
  r = WIGEON("query", server_flag, "--meta", "everything");
  ASSERT_EQ(r.code, 1);
  ASSERT_CONTAINS(r.err, "unknown --meta 'everything'");
  run_free(&r);
  r = WIGEON("query", "--help");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, "--flight-sql");
  ASSERT_CONTAINS(r.out, "cross-reference, type-info");
  run_free(&r);
}

/* ---- wigeon tail: the live tail, with puts by another process (`wigeon put`) meanwhile ---- */

/* A wigeon child running in the background, its output in files of its own. */
struct bg {
  pid_t pid;
  char out_path[512], err_path[512];
};

static void bg_start(struct bg *b, const char *name, const char *const *args) {
  const char *build = getenv("WG_BUILD_DIR");
  char bin[1024];
  snprintf(bin, sizeof(bin), "%s/wigeon", build ? build : "build");
  snprintf(b->out_path, sizeof(b->out_path), "%s/%s.out", dir, name);
  snprintf(b->err_path, sizeof(b->err_path), "%s/%s.err", dir, name);
  fflush(NULL);
  b->pid = fork();
  if (b->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fi = open("/dev/null", O_RDONLY);
    int fo = open(b->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(b->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fi, 0);
    dup2(fo, 1);
    dup2(fe, 2);
    unsetenv("WIGEON_SERVER");
    const char *argv[64] = {bin};
    int n = 1;
    for (int i = 0; args[i] != NULL && n < 63; i++)
      argv[n++] = args[i];
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    _exit(127);
  }
}

/* Waits (limit_s at most) until the child's stderr holds `needle`; false if it never does. */
static bool bg_wait_err(struct bg *b, const char *needle, int limit_s) {
  for (int i = 0; i < limit_s * 100; i++) {
    char *e = slurp(b->err_path);
    bool found = strstr(e, needle) != NULL;
    free(e);
    if (found) return true;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return false;
}

/* Waits (limit_s at most, then kills it) for the child's end: its exit code and output. */
static struct run bg_end(struct bg *b, int limit_s) {
  struct run r = {-1, NULL, NULL};
  int st = 0;
  for (int i = 0; i < limit_s * 100 && b->pid != 0; i++) {
    if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
      r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      b->pid = 0;
      break;
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (b->pid != 0) {
    kill(b->pid, SIGKILL);
    waitpid(b->pid, &st, 0);
    fprintf(stderr, "  background wigeon: killed after %d s\n", limit_s);
  }
  r.out = slurp(b->out_path);
  r.err = slurp(b->err_path);
  return r;
}

/* Writes text to dir/name and puts it into table tl with `wigeon put` (a process of its own). */
static int put_csv(const char *name, const char *text) {
  FILE *f = fopen(path_in(name), "w");
  if (f == NULL) return -1;
  fputs(text, f);
  fclose(f);
  struct run r = WIGEON("put", server_flag, "--table", "tl", "--format", "csv", path_in(name));
  int code = r.code;
  if (code != 0) fprintf(stderr, "  put %s: %s", name, r.err);
  run_free(&r);
  return code;
}

static uint64_t tail_start_sequence; /* from the first test's "live:" line */

static void tail_count_prints_the_snapshot_then_the_rows_put_meanwhile_as_exact_csv(void) {
  ASSERT_EQ(put_csv("tl_a.csv", "id,name,amount\n1,ann,1.5\n2,bob,2.5\n"), 0);
  struct bg b;
  bg_start(&b, "tail_csv",
           (const char *const[]){"tail", server_flag, "tl", "--format", "csv", "--count", "4",
                                 NULL});
  ASSERT_TRUE(bg_wait_err(&b, "live: 2 rows in the snapshot, following from sequence ", 30));
  ASSERT_EQ(put_csv("tl_b.csv", "id,name,amount\n3,cy,3.5\n4,\"d,e\",4.5\n"), 0);
  struct run r = bg_end(&b, 30);
  ASSERT_EQ(r.code, 0);
  ASSERT_STREQ(r.out, "id,name,amount\n1,ann,1.5\n2,bob,2.5\n3,cy,3.5\n4,\"d,e\",4.5\n");
  const char *s = strstr(r.err, "following from sequence ");
  ASSERT_TRUE(s != NULL);
  tail_start_sequence = strtoull(s + 24, NULL, 10);
  ASSERT_TRUE(tail_start_sequence > 0);
  run_free(&r);
}

static void tail_from_now_with_where_and_columns_prints_only_matching_new_rows_as_json(void) {
  struct bg b;
  bg_start(&b, "tail_json",
           (const char *const[]){"tail", server_flag, "tl", "--from", "now", "--where",
                                 "amount > 4", "--columns", "name,id", "--format", "json",
                                 "--count", "2", NULL});
  ASSERT_TRUE(bg_wait_err(&b, "live: 0 rows in the snapshot", 30));
  ASSERT_EQ(put_csv("tl_c.csv", "id,name,amount\n5,eve,5.5\n6,fay,0.5\n7,gus,7.5\n"), 0);
  struct run r = bg_end(&b, 30);
  ASSERT_EQ(r.code, 0);
  ASSERT_STREQ(r.out, "{\"name\":\"eve\",\"id\":5}\n{\"name\":\"gus\",\"id\":7}\n");
  run_free(&r);
}

static void tail_from_a_sequence_resumes_with_every_later_put_and_no_other(void) {
  ASSERT_TRUE(tail_start_sequence > 0);
  char from[32];
  snprintf(from, sizeof(from), "%llu", (unsigned long long)tail_start_sequence);
  /* the puts after the first one: tl_b's 2 rows and tl_c's 3, and nothing of tl_a */
  struct run r = WIGEON("tail", server_flag, "tl", "--from", from, "--format", "csv", "--count",
                        "5");
  ASSERT_EQ(r.code, 0);
  ASSERT_STREQ(r.out, "id,name,amount\n3,cy,3.5\n4,\"d,e\",4.5\n5,eve,5.5\n6,fay,0.5\n7,gus,7.5\n");
  run_free(&r);
}

static void tail_table_format_shows_each_batch_as_a_table(void) {
  struct run r = WIGEON("tail", server_flag, "tl", "--where", "id = 2", "--ascii", "--count", "1");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.out, " id ");
  ASSERT_CONTAINS(r.out, "| bob");
  ASSERT_CONTAINS(r.out, "int64");
  ASSERT_TRUE(strstr(r.out, "ann") == NULL);
  run_free(&r);
}

static void tail_errors_exit_with_the_servers_message_and_code(void) {
  struct run r = WIGEON("tail", server_flag, "tl", "--where", "no_such_column > 1");
  ASSERT_EQ(r.code, 2);
  ASSERT_CONTAINS(r.err, "wigeon tail: ");
  ASSERT_CONTAINS(r.err, "no_such_column");
  ASSERT_STREQ(r.out, "");
  run_free(&r);
  r = WIGEON("tail", server_flag, "tl", "--where", "amount >");
  ASSERT_EQ(r.code, 2);
  ASSERT_CONTAINS(r.err, "wigeon tail: ");
  run_free(&r);
  r = WIGEON("tail", server_flag, "no_such_table");
  ASSERT_EQ(r.code, 2);
  ASSERT_CONTAINS(r.err, "no_such_table");
  run_free(&r);
  r = WIGEON("tail", server_flag, "tl", "--columns", "id,nope");
  ASSERT_EQ(r.code, 2);
  ASSERT_CONTAINS(r.err, "nope");
  run_free(&r);
  r = WIGEON("tail", server_flag, "tl", "--from", "yesterday");
  ASSERT_EQ(r.code, 1);
  ASSERT_CONTAINS(r.err, "--from wants beginning, now or a sequence number");
  run_free(&r);
  r = WIGEON("tail", server_flag, "tl", "--format", "parquet");
  ASSERT_EQ(r.code, 1);
  run_free(&r);
  r = WIGEON("tail", "--server=grpc://127.0.0.1:1", "tl");
  ASSERT_EQ(r.code, 3);
  run_free(&r);
}

static void tail_ends_with_exit_0_on_timeout_and_on_ctrl_c(void) {
  double t0 = (double)time(NULL);
  struct run r = WIGEON("tail", server_flag, "tl", "--from", "now", "--timeout", "1");
  ASSERT_EQ(r.code, 0);
  ASSERT_CONTAINS(r.err, "live: 0 rows in the snapshot");
  ASSERT_TRUE((double)time(NULL) - t0 >= 1);
  run_free(&r);
  struct bg b;
  bg_start(&b, "tail_int", (const char *const[]){"tail", server_flag, "tl", "--from", "now", NULL});
  ASSERT_TRUE(bg_wait_err(&b, "live: 0 rows in the snapshot", 30));
  kill(b.pid, SIGINT);
  r = bg_end(&b, 10);
  ASSERT_EQ(r.code, 0);
  ASSERT_STREQ(r.out, "");
  run_free(&r);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  if (wg_fx_tmpdir(dir, sizeof(dir)) != 0) return 1;
  struct wg_server_options o = {.threads = 4, .allow_external_access = true};
  if (wg_fx_server_start(&fx, &o) != 0) return 1;
  snprintf(server_flag, sizeof(server_flag), "--server=grpc://%s", fx.uri);
  if (wg_connect(fx.uri, NULL, &client, NULL) != 0) return 1;

  RUN_TEST(help_lists_every_command_and_each_command_has_help);
  RUN_TEST(wrong_flags_or_missing_arguments_exit_1_with_usage_on_stderr);
  RUN_TEST(unreachable_server_exits_3_naming_the_server);
  RUN_TEST(sql_error_exits_2_with_duckdbs_message);
  RUN_TEST(csv_put_reads_back_equal_to_duckdbs_read_csv);
  RUN_TEST(put_repeated_with_its_idempotency_key_appends_once);
  RUN_TEST(parquet_put_reads_back_equal_to_duckdbs_read_parquet);
  RUN_TEST(arrow_output_reads_back_in_duckdb_with_equal_content);
  RUN_TEST(table_output_shows_names_types_and_elides_the_middle_of_big_results);
  RUN_TEST(load_5_batches_by_2_writers_puts_exactly_10000_rows);
  RUN_TEST(load_for_a_duration_prints_a_line_a_second_then_stops);
  RUN_TEST(watch_count_2_prints_two_timestamped_results);
  RUN_TEST(demo_for_3_seconds_prints_rising_counts_and_cleans_up);
  RUN_TEST(tables_schema_actions_and_stats_print_what_the_server_has);
  RUN_TEST(flight_sql_query_prints_what_plain_query_prints);
  RUN_TEST(flight_sql_meta_reaches_every_metadata_command);
  RUN_TEST(tail_count_prints_the_snapshot_then_the_rows_put_meanwhile_as_exact_csv);
  RUN_TEST(tail_from_now_with_where_and_columns_prints_only_matching_new_rows_as_json);
  RUN_TEST(tail_from_a_sequence_resumes_with_every_later_put_and_no_other);
  RUN_TEST(tail_table_format_shows_each_batch_as_a_table);
  RUN_TEST(tail_errors_exit_with_the_servers_message_and_code);
  RUN_TEST(tail_ends_with_exit_0_on_timeout_and_on_ctrl_c);

  wg_disconnect(client);
  wg_fx_server_stop(&fx);
  wg_fx_rmdir(dir);
  return TEST_SUMMARY();
}
