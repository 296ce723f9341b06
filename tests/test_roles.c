/* wigeon: the access levels of client SQL (engine.h, enum wg_engine_access), on a real DuckDB
 * database: each statement of a text is classified after prepare and refused above the calling
 * thread's level with EACCES, before it runs, on every client SQL path (execute, query streams,
 * prepared statements at creation and at execution); the sneaky cases (a write after a SELECT,
 * EXPLAIN ANALYZE, PREPARE/EXECUTE, CTEs, nextval, CALL/PRAGMA, CHECKPOINT, TEMP tables, SET,
 * transaction statements) one by one; and the sandbox still refuses files and settings to ALL. */
#include <stdio.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "test.h"

static struct wg_engine *open_engine(bool external) {
  struct wg_engine_options o = {.path = ":memory:", .connections = 2,
                                .allow_external_access = external};
  struct wg_engine *e = NULL;
  struct wg_error err = {""};
  if (wg_engine_open(&e, &o, &err) != 0) fprintf(stderr, "  open: %s\n", err.message);
  return e;
}

/* Runs sql with wg_engine_execute at level a; the status, with the message in err. */
static int exec_at(struct wg_engine *e, enum wg_engine_access a, const char *sql,
                   struct wg_error *err) {
  struct wg_engine_conn *c;
  int rc = wg_engine_acquire(e, &c, err);
  if (rc != 0) return rc;
  wg_engine_thread_set_access(a);
  rc = wg_engine_execute(c, sql, NULL, err);
  wg_engine_thread_set_access(WG_ENGINE_ACCESS_ALL);
  wg_engine_release(e, c);
  return rc;
}

/* Opens sql as a query stream at level a and reads it to the end. */
static int query_at(struct wg_engine *e, enum wg_engine_access a, const char *sql,
                    struct wg_error *err) {
  struct wg_engine_conn *c;
  int rc = wg_engine_acquire(e, &c, err);
  if (rc != 0) return rc;
  wg_engine_thread_set_access(a);
  struct ArrowArrayStream s;
  memset(&s, 0, sizeof(s));
  rc = wg_engine_query_open(c, sql, 0, &s, err);
  while (rc == 0) {
    struct ArrowArray b;
    if (s.get_next(&s, &b) != 0) {
      rc = EIO;
      snprintf(err->message, sizeof(err->message), "%s", s.get_last_error(&s));
      break;
    }
    if (b.release == NULL) break;
    b.release(&b);
  }
  if (s.release != NULL) s.release(&s);
  wg_engine_thread_set_access(WG_ENGINE_ACCESS_ALL);
  wg_engine_release(e, c);
  return rc;
}

static int64_t count_rows(struct wg_engine *e, const char *sql) {
  struct wg_engine_conn *c;
  struct wg_error err;
  if (wg_engine_acquire(e, &c, &err) != 0) return -1;
  duckdb_result r;
  memset(&r, 0, sizeof(r));
  int64_t n = -1;
  if (duckdb_query(wg_engine_conn_duckdb(c), sql, &r) == DuckDBSuccess)
    n = duckdb_value_int64(&r, 0, 0);
  duckdb_destroy_result(&r);
  wg_engine_release(e, c);
  return n;
}

static void setup(struct wg_engine *e) {
  struct wg_error err = {""};
  int rc = exec_at(e, WG_ENGINE_ACCESS_ALL,
                   "CREATE TABLE t(a INTEGER); CREATE SEQUENCE seq; INSERT INTO t VALUES (1)", &err);
  if (rc != 0) fprintf(stderr, "  setup: %s\n", err.message);
}

/* The level each statement needs: the lowest at which execute lets it through, and EACCES
 * below it (one below naming that level). Each row runs on a fresh database. */
static void each_statement_needs_its_level(void) {
  static const struct {
    const char *sql;
    enum wg_engine_access need;
  } cases[] = {
      {"SELECT * FROM t", WG_ENGINE_ACCESS_READ},
      {"FROM t", WG_ENGINE_ACCESS_READ},
      {"WITH x AS (SELECT a FROM t) SELECT * FROM x", WG_ENGINE_ACCESS_READ},
      {"SHOW TABLES", WG_ENGINE_ACCESS_READ},
      {"DESCRIBE t", WG_ENGINE_ACCESS_READ},
      {"PRAGMA table_info('t')", WG_ENGINE_ACCESS_READ},
      {"CALL pragma_table_info('t')", WG_ENGINE_ACCESS_READ},
      {"EXPLAIN SELECT * FROM t", WG_ENGINE_ACCESS_READ},
      {"EXPLAIN INSERT INTO t VALUES (2)", WG_ENGINE_ACCESS_READ}, /* plans only */
      {"SELECT currval('seq')", WG_ENGINE_ACCESS_READ},
      {"SELECT 'nextval(' AS s, \"checkpoint\" FROM (SELECT 1 AS \"checkpoint\")",
       WG_ENGINE_ACCESS_READ}, /* literals and column names are not calls */
      {"BEGIN; SELECT 1; COMMIT", WG_ENGINE_ACCESS_READ},
      {"SET VARIABLE v = 1", WG_ENGINE_ACCESS_READ},
      {"RESET VARIABLE v", WG_ENGINE_ACCESS_READ},
      {"SET search_path = 'main'", WG_ENGINE_ACCESS_READ},
      {"USE memory", WG_ENGINE_ACCESS_READ},
      {"INSERT INTO t VALUES (2)", WG_ENGINE_ACCESS_WRITE},
      {"INSERT INTO t VALUES (2) RETURNING a", WG_ENGINE_ACCESS_WRITE},
      {"WITH x AS (SELECT 5 AS a) INSERT INTO t SELECT a FROM x", WG_ENGINE_ACCESS_WRITE},
      {"UPDATE t SET a = 3", WG_ENGINE_ACCESS_WRITE},
      {"DELETE FROM t", WG_ENGINE_ACCESS_WRITE},
      {"TRUNCATE t", WG_ENGINE_ACCESS_WRITE},
      {"MERGE INTO t USING (SELECT 7 AS a) s ON t.a = s.a WHEN NOT MATCHED THEN INSERT "
       "VALUES (s.a)",
       WG_ENGINE_ACCESS_WRITE},
      {"SELECT nextval('seq')", WG_ENGINE_ACCESS_WRITE},
      {"SELECT * FROM t; INSERT INTO t VALUES (2)", WG_ENGINE_ACCESS_WRITE},
      {"CREATE TABLE u(a INTEGER)", WG_ENGINE_ACCESS_ALL},
      {"CREATE TEMP TABLE tt(a INTEGER)", WG_ENGINE_ACCESS_ALL},
      {"CREATE VIEW v AS SELECT * FROM t", WG_ENGINE_ACCESS_ALL},
      {"CREATE MACRO m() AS 1", WG_ENGINE_ACCESS_ALL},
      {"ALTER TABLE t ADD COLUMN b INTEGER", WG_ENGINE_ACCESS_ALL},
      {"DROP TABLE t", WG_ENGINE_ACCESS_ALL},
      {"COMMENT ON TABLE t IS 'x'", WG_ENGINE_ACCESS_ALL},
      {"INSERT INTO t VALUES (2); DROP TABLE t", WG_ENGINE_ACCESS_ALL},
      {"EXPLAIN ANALYZE SELECT * FROM t", WG_ENGINE_ACCESS_ALL},
      {"EXPLAIN ANALYZE INSERT INTO t VALUES (2)", WG_ENGINE_ACCESS_ALL},
      {"PREPARE p AS SELECT 1", WG_ENGINE_ACCESS_ALL},
      {"PREPARE p AS INSERT INTO t VALUES (2); EXECUTE p", WG_ENGINE_ACCESS_ALL},
      {"CHECKPOINT", WG_ENGINE_ACCESS_ALL},
      {"FORCE CHECKPOINT", WG_ENGINE_ACCESS_ALL},
      {"CALL checkpoint()", WG_ENGINE_ACCESS_ALL},
      {"SELECT * FROM checkpoint()", WG_ENGINE_ACCESS_ALL},
      {"VACUUM", WG_ENGINE_ACCESS_ALL},
      {"ANALYZE", WG_ENGINE_ACCESS_ALL},
      {"SET threads = 1", WG_ENGINE_ACCESS_ALL},
      {"RESET threads", WG_ENGINE_ACCESS_ALL},
      {"PRAGMA threads = 1", WG_ENGINE_ACCESS_ALL},
      {"SET GLOBAL search_path = 'main'", WG_ENGINE_ACCESS_ALL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    for (int a = WG_ENGINE_ACCESS_READ; a <= WG_ENGINE_ACCESS_ALL; a++) {
      struct wg_engine *e = open_engine(true); /* the sandbox would refuse SET threads */
      ASSERT_TRUE(e != NULL);
      setup(e);
      struct wg_error err = {""};
      int rc = exec_at(e, (enum wg_engine_access)a, cases[i].sql, &err);
      bool allowed = a >= (int)cases[i].need;
      if (allowed ? rc == EACCES : rc != EACCES) {
        fprintf(stderr, "  %s at %s: rc %d (%s), expected %s\n", cases[i].sql,
                wg_engine_access_name((enum wg_engine_access)a), rc, err.message,
                allowed ? "allowed" : "EACCES");
        wg_test_current_failed = 1;
      }
      if (a + 1 == (int)cases[i].need && rc == EACCES && /* below, an earlier one may fail */
          strstr(err.message, wg_engine_access_name(cases[i].need)) == NULL) {
        fprintf(stderr, "  %s: the refusal does not name the role needed: %s\n", cases[i].sql,
                err.message);
        wg_test_current_failed = 1;
      }
      wg_engine_close(e);
    }
  }
}

/* A refused write takes nothing with it: the SELECT before it in the same text, the INSERT
 * before a DROP, the sequence; the refusal says which statement and the caller's role. */
static void refused_texts_change_nothing(void) {
  struct wg_engine *e = open_engine(false);
  ASSERT_TRUE(e != NULL);
  setup(e);
  struct wg_error err = {""};
  ASSERT_EQ(exec_at(e, WG_ENGINE_ACCESS_READ, "SELECT 1; INSERT INTO t VALUES (2)", &err), EACCES);
  ASSERT_TRUE(strstr(err.message, "statement 2 of 2") != NULL);
  ASSERT_TRUE(strstr(err.message, "INSERT needs the write role") != NULL);
  ASSERT_TRUE(strstr(err.message, "has the read role") != NULL);
  ASSERT_EQ(exec_at(e, WG_ENGINE_ACCESS_WRITE, "INSERT INTO t VALUES (2); DROP TABLE t", &err),
            EACCES);
  ASSERT_EQ(count_rows(e, "SELECT count(*) FROM t"), 1);
  ASSERT_EQ(exec_at(e, WG_ENGINE_ACCESS_READ, "SELECT nextval('seq')", &err), EACCES);
  ASSERT_EQ(exec_at(e, WG_ENGINE_ACCESS_READ, "EXPLAIN ANALYZE INSERT INTO t VALUES (3)", &err),
            EACCES);
  ASSERT_EQ(count_rows(e, "SELECT count(*) FROM t"), 1);
  ASSERT_EQ(count_rows(e, "SELECT nextval('seq')"), 1); /* never advanced before */
  wg_engine_close(e);
}

/* Query streams (DoGet's path) are checked the same way, and a stream of an INSERT ... RETURNING
 * is a write. */
static void query_streams_are_checked(void) {
  struct wg_engine *e = open_engine(false);
  ASSERT_TRUE(e != NULL);
  setup(e);
  struct wg_error err = {""};
  ASSERT_EQ(query_at(e, WG_ENGINE_ACCESS_READ, "SELECT * FROM t", &err), 0);
  ASSERT_EQ(query_at(e, WG_ENGINE_ACCESS_READ, "INSERT INTO t VALUES (9) RETURNING a", &err),
            EACCES);
  ASSERT_EQ(query_at(e, WG_ENGINE_ACCESS_READ, "SELECT nextval('seq')", &err), EACCES);
  ASSERT_EQ(query_at(e, WG_ENGINE_ACCESS_WRITE, "INSERT INTO t VALUES (9) RETURNING a", &err), 0);
  ASSERT_EQ(query_at(e, WG_ENGINE_ACCESS_WRITE, "CREATE TABLE w AS SELECT 1", &err), EACCES);
  ASSERT_EQ(count_rows(e, "SELECT count(*) FROM t"), 2);
  wg_engine_close(e);
}

/* A prepared statement is checked when it is made (describe) and again when it runs, on the
 * thread that runs it: made at ALL, run at READ, refused. */
static void prepared_statements_are_checked_at_creation_and_execution(void) {
  struct wg_engine *e = open_engine(false);
  ASSERT_TRUE(e != NULL);
  setup(e);
  struct wg_engine_conn *c;
  struct wg_error err = {""};
  ASSERT_OK(wg_engine_acquire(e, &c, &err), err.message);
  struct ArrowSchema params, result;
  memset(&params, 0, sizeof(params));
  memset(&result, 0, sizeof(result));
  enum wg_engine_sql_kind kind;
  const char *ins = "INSERT INTO t VALUES (42)";
  wg_engine_thread_set_access(WG_ENGINE_ACCESS_READ);
  int rc = wg_engine_prepare_describe(c, ins, &params, &result, &kind, &err);
  ASSERT_EQ(rc, EACCES);
  wg_engine_thread_set_access(WG_ENGINE_ACCESS_ALL);
  ASSERT_OK(wg_engine_prepare_describe(c, ins, &params, &result, &kind, &err), err.message);
  if (params.release != NULL) params.release(&params);
  if (result.release != NULL) result.release(&result);
  wg_engine_thread_set_access(WG_ENGINE_ACCESS_READ);
  int64_t changed = -1;
  rc = wg_engine_execute_params(c, ins, NULL, false, &changed, &err);
  wg_engine_thread_set_access(WG_ENGINE_ACCESS_ALL);
  ASSERT_EQ(rc, EACCES);
  wg_engine_release(e, c);
  ASSERT_EQ(count_rows(e, "SELECT count(*) FROM t"), 1);
  wg_engine_close(e);
}

/* The sandbox holds at ALL: COPY to a file, ATTACH, INSTALL/LOAD and settings stay refused. */
static void the_sandbox_holds_for_all(void) {
  struct wg_engine *e = open_engine(false);
  ASSERT_TRUE(e != NULL);
  setup(e);
  static const char *const refused[] = {
      "COPY t TO '/tmp/wg_roles_copy.csv'", "ATTACH '/tmp/wg_roles_x.duckdb' AS x",
      "INSTALL httpfs", "LOAD httpfs", "SET threads = 1", "SET enable_external_access = true",
      "SELECT * FROM read_csv('/etc/passwd')",
  };
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    struct wg_error err = {""};
    int rc = exec_at(e, WG_ENGINE_ACCESS_ALL, refused[i], &err);
    if (rc == 0 || rc == EACCES) {
      fprintf(stderr, "  %s at admin: rc %d (%s)\n", refused[i], rc, err.message);
      wg_test_current_failed = 1;
    }
  }
  wg_engine_close(e);
}

int main(void) {
  RUN_TEST(each_statement_needs_its_level);
  RUN_TEST(refused_texts_change_nothing);
  RUN_TEST(query_streams_are_checked);
  RUN_TEST(prepared_statements_are_checked_at_creation_and_execution);
  RUN_TEST(the_sandbox_holds_for_all);
  TEST_SUMMARY();
}
