/* wigeon: SQL over an Arrow stream. Engine level (wg_engine_query_over): filter, join with a
 * table, aggregate, upsert with its count, the sandbox, a failing input, early release, access
 * levels. Through the real server with the C client (wg_client_exchange): round trips, errors in
 * mid-stream, per-batch mode. Inputs are DuckDB's own results on a second connection. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <unistd.h>

#include "arrow/array.h"
#include "engine/engine.h"
#include "test.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers */

static struct wg_engine *open_engine(void) {
  struct wg_engine_options o = {0};
  o.path = ":memory:";
  o.connections = 4;
  struct wg_engine *e = NULL;
  struct wg_error err = {{0}};
  if (wg_engine_open(&e, &o, &err) != 0) fprintf(stderr, "  open: %s\n", err.message);
  return e;
}

static int64_t q64(struct wg_engine_conn *c, const char *sql) {
  duckdb_result r;
  int64_t v = -1;
  if (duckdb_query(wg_engine_conn_duckdb(c), sql, &r) != DuckDBSuccess)
    fprintf(stderr, "  query failed: %s\n  sql: %s\n", duckdb_result_error(&r), sql);
  else
    v = duckdb_value_int64(&r, 0, 0);
  duckdb_destroy_result(&r);
  return v;
}

/* A stream over another stream that fails with EPROTO after `fail_after` batches (< 0: never). */
struct failing {
  struct ArrowArrayStream inner;
  int fail_after, served;
};
static int failing_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct failing *f = s->private_data;
  return f->inner.get_schema(&f->inner, out);
}
static int failing_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct failing *f = s->private_data;
  if (f->fail_after >= 0 && f->served >= f->fail_after) {
    out->release = NULL;
    return EPROTO;
  }
  f->served++;
  return f->inner.get_next(&f->inner, out);
}
static const char *failing_error(struct ArrowArrayStream *s) {
  (void)s;
  return "the test's input broke on purpose";
}
static void failing_release(struct ArrowArrayStream *s) {
  struct failing *f = s->private_data;
  wg_stream_release(&f->inner);
  free(f);
  s->release = NULL;
}

/* The rows of `sql` on `src` as a stream (batches of `batch` rows), optionally failing. */
static int input_of(struct wg_engine_conn *src, const char *sql, int64_t batch, int fail_after,
                    struct ArrowArrayStream *out, struct wg_error *err) {
  struct failing *f = calloc(1, sizeof(*f));
  if (f == NULL) return ENOMEM;
  f->fail_after = fail_after;
  int rc = wg_engine_query_open(src, sql, batch, &f->inner, err);
  if (rc != 0) {
    free(f);
    return rc;
  }
  *out = (struct ArrowArrayStream){failing_schema, failing_next, failing_error, failing_release, f};
  return 0;
}

/* Reads a stream to its end: rows, and the sum of column `col` (BIGINT, no nulls; -1: none). */
static int drain(struct ArrowArrayStream *s, int col, int64_t *rows, int64_t *sum,
                 struct wg_error *err) {
  *rows = 0;
  if (sum != NULL) *sum = 0;
  for (;;) {
    struct ArrowArray a;
    int rc = s->get_next(s, &a);
    if (rc != 0) {
      const char *m = s->get_last_error(s);
      wg_stream_release(s);
      return wg_error_set(err, rc, "%s", m ? m : "(no message)");
    }
    if (a.release == NULL) break;
    *rows += a.length;
    if (col >= 0 && sum != NULL) {
      const struct ArrowArray *ch = a.children[col];
      const int64_t *v = ch->buffers[1];
      for (int64_t i = 0; i < ch->length; i++)
        *sum += v[ch->offset + i];
    }
    a.release(&a);
  }
  wg_stream_release(s);
  return 0;
}

#define RANGE_SQL(n) "SELECT range::BIGINT AS id, range % 10 AS k FROM range(" #n ")"

struct fx {
  struct wg_engine *e;
  struct wg_engine_conn *c, *src;
};
static int fx_open(struct fx *f) {
  struct wg_error err = {{0}};
  memset(f, 0, sizeof(*f));
  f->e = open_engine();
  if (f->e == NULL) return EIO;
  if (wg_engine_acquire(f->e, &f->c, &err) != 0 || wg_engine_acquire(f->e, &f->src, &err) != 0)
    return EIO;
  return 0;
}
static void fx_close(struct fx *f) {
  if (f->c) wg_engine_release(f->e, f->c);
  if (f->src) wg_engine_release(f->e, f->src);
  wg_engine_close(f->e);
}

/* ---------------------------------------------------------------------------------------------
 * Engine */

static void over_filters_a_stream(void) {
  struct fx f;
  ASSERT_OK(fx_open(&f), NULL);
  struct wg_error err = {{0}};
  struct ArrowArrayStream in, out;
  ASSERT_OK(input_of(f.src, RANGE_SQL(100000), 5000, -1, &in, &err), &err);
  ASSERT_OK(wg_engine_query_over(f.c, "input", &in, "SELECT id FROM input WHERE k = 3", 0, 0, &out,
                                 &err),
            &err);
  ASSERT_TRUE(in.release == NULL);
  int64_t rows, sum;
  ASSERT_OK(drain(&out, 0, &rows, &sum, &err), &err);
  ASSERT_EQ(rows, 10000);
  ASSERT_EQ(sum, (int64_t)10000 * 3 + (int64_t)10 * (9999 * 10000 / 2));
  /* the view is gone and the connection is free again */
  struct wg_error e2 = {{0}};
  ASSERT_EQ(wg_engine_execute(f.c, "SELECT * FROM input", NULL, &e2), ENOENT);
  ASSERT_EQ(q64(f.c, "SELECT 42"), 42);
  fx_close(&f);
}

static void over_joins_with_a_table(void) {
  struct fx f;
  ASSERT_OK(fx_open(&f), NULL);
  struct wg_error err = {{0}};
  ASSERT_OK(wg_engine_execute(f.c, "CREATE TABLE dim AS SELECT range AS k, range * 100 AS w "
                                   "FROM range(5)",
                              NULL, &err),
            &err);
  struct ArrowArrayStream in, out;
  ASSERT_OK(input_of(f.src, RANGE_SQL(50000), 4096, -1, &in, &err), &err);
  ASSERT_OK(wg_engine_query_over(f.c, "input", &in,
                                 "SELECT d.w FROM input i JOIN dim d ON i.k = d.k", 0, 0, &out,
                                 &err),
            &err);
  int64_t rows, sum;
  ASSERT_OK(drain(&out, 0, &rows, &sum, &err), &err);
  ASSERT_EQ(rows, 25000);
  ASSERT_EQ(sum, (int64_t)5000 * (0 + 100 + 200 + 300 + 400));
  fx_close(&f);
}

static void over_aggregates_the_whole_input(void) {
  struct fx f;
  ASSERT_OK(fx_open(&f), NULL);
  struct wg_error err = {{0}};
  struct ArrowArrayStream in, out;
  ASSERT_OK(input_of(f.src, RANGE_SQL(200000), 3000, -1, &in, &err), &err);
  ASSERT_OK(wg_engine_query_over(f.c, "input", &in, "SELECT sum(id)::BIGINT AS s FROM input", 0, 0,
                                 &out, &err),
            &err);
  int64_t rows, sum;
  ASSERT_OK(drain(&out, 0, &rows, &sum, &err), &err);
  ASSERT_EQ(rows, 1);
  ASSERT_EQ(sum, (int64_t)199999 * 200000 / 2);
  fx_close(&f);
}

static void over_upserts_and_counts(void) {
  struct fx f;
  ASSERT_OK(fx_open(&f), NULL);
  struct wg_error err = {{0}};
  ASSERT_OK(wg_engine_execute(f.c, "CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT); "
                                   "INSERT INTO t SELECT range, 0 FROM range(10)",
                              NULL, &err),
            &err);
  struct ArrowArrayStream in, out;
  ASSERT_OK(input_of(f.src, RANGE_SQL(30), 7, -1, &in, &err), &err);
  ASSERT_OK(wg_engine_query_over(f.c, "input", &in,
                                 "INSERT INTO t SELECT id, 1 FROM input "
                                 "ON CONFLICT (id) DO UPDATE SET v = excluded.v",
                                 0, 0, &out, &err),
            &err);
  struct ArrowSchema sc;
  ASSERT_OK(out.get_schema(&out, &sc), NULL);
  ASSERT_EQ(sc.n_children, 1);
  ASSERT_STREQ(sc.children[0]->name, "Count");
  ASSERT_STREQ(sc.children[0]->format, "l");
  sc.release(&sc);
  int64_t rows, sum;
  ASSERT_OK(drain(&out, 0, &rows, &sum, &err), &err);
  ASSERT_EQ(rows, 1);
  ASSERT_EQ(sum, 30);
  ASSERT_EQ(q64(f.src, "SELECT count(*) FROM t"), 30); /* committed: another connection sees it */
  ASSERT_EQ(q64(f.src, "SELECT sum(v) FROM t"), 30);
  fx_close(&f);
}

static void over_keeps_the_sandbox(void) {
  struct fx f;
  ASSERT_OK(fx_open(&f), NULL);
  const char *bad[] = {
      "COPY (SELECT * FROM input) TO '/tmp/wg_exchange_copy.csv'",
      "SELECT * FROM input, read_csv('/etc/passwd')",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct wg_error err = {{0}};
    struct ArrowArrayStream in, out;
    ASSERT_OK(input_of(f.src, RANGE_SQL(10), 0, -1, &in, &err), &err);
    int rc = wg_engine_query_over(f.c, "input", &in, bad[i], 0, 0, &out, &err);
    if (rc != EPERM) fprintf(stderr, "  %s: %d %s\n", bad[i], rc, err.message);
    ASSERT_EQ(rc, EPERM);
    ASSERT_TRUE(in.release == NULL && out.release == NULL);
  }
  ASSERT_EQ(access("/tmp/wg_exchange_copy.csv", F_OK), -1);
  ASSERT_EQ(q64(f.c, "SELECT 7"), 7);
  fx_close(&f);
}

static void over_reports_a_failing_input(void) {
  struct fx f;
  ASSERT_OK(fx_open(&f), NULL);
  struct wg_error err = {{0}};
  ASSERT_OK(wg_engine_execute(f.c, "CREATE TABLE t (id BIGINT, k BIGINT)", NULL, &err), &err);
  /* a streaming query: the failure comes from the open (DuckDB runs ahead) or get_next */
  struct ArrowArrayStream in, out;
  ASSERT_OK(input_of(f.src, RANGE_SQL(100000), 2048, 3, &in, &err), &err);
  int64_t rows = 0;
  int rc = wg_engine_query_over(f.c, "input", &in, "SELECT * FROM input", 2048, 0, &out, &err);
  if (rc == 0) rc = drain(&out, -1, &rows, NULL, &err);
  ASSERT_EQ(rc, EPROTO);
  ASSERT_TRUE(strstr(err.message, "input stream") != NULL);
  ASSERT_TRUE(strstr(err.message, "broke on purpose") != NULL);
  ASSERT_TRUE(rows <= 3 * 2048);
  /* an INSERT reads its input in the open: the failure is the open's, and nothing stays */
  ASSERT_OK(input_of(f.src, RANGE_SQL(100000), 2048, 3, &in, &err), &err);
  rc = wg_engine_query_over(f.c, "input", &in, "INSERT INTO t SELECT * FROM input", 0, 0, &out,
                            &err);
  ASSERT_EQ(rc, EPROTO);
  ASSERT_TRUE(strstr(err.message, "broke on purpose") != NULL);
  ASSERT_EQ(q64(f.src, "SELECT count(*) FROM t"), 0);
  ASSERT_EQ(q64(f.c, "SELECT count(*) FROM t"), 0);
  fx_close(&f);
}

static void over_released_early_rolls_back(void) {
  struct fx f;
  ASSERT_OK(fx_open(&f), NULL);
  struct wg_error err = {{0}};
  ASSERT_OK(wg_engine_execute(f.c, "CREATE TABLE t (id BIGINT, k BIGINT)", NULL, &err), &err);
  struct ArrowArrayStream in, out;
  ASSERT_OK(input_of(f.src, RANGE_SQL(10000), 1000, -1, &in, &err), &err);
  ASSERT_OK(wg_engine_query_over(f.c, "input", &in, "INSERT INTO t SELECT * FROM input", 0, 0,
                                 &out, &err),
            &err);
  out.release(&out); /* the count never read: rolled back */
  ASSERT_EQ(q64(f.src, "SELECT count(*) FROM t"), 0);
  ASSERT_EQ(q64(f.c, "SELECT count(*) FROM t"), 0);
  /* and read to the end it commits */
  ASSERT_OK(input_of(f.src, RANGE_SQL(10000), 1000, -1, &in, &err), &err);
  ASSERT_OK(wg_engine_query_over(f.c, "input", &in, "INSERT INTO t SELECT * FROM input", 0, 0,
                                 &out, &err),
            &err);
  int64_t rows, sum;
  ASSERT_OK(drain(&out, 0, &rows, &sum, &err), &err);
  ASSERT_EQ(sum, 10000);
  ASSERT_EQ(q64(f.src, "SELECT count(*) FROM t"), 10000);
  fx_close(&f);
}

static void over_checks_the_access_level(void) {
  struct fx f;
  ASSERT_OK(fx_open(&f), NULL);
  struct wg_error err = {{0}};
  ASSERT_OK(wg_engine_execute(f.c, "CREATE TABLE t (id BIGINT, k BIGINT)", NULL, &err), &err);
  wg_engine_thread_set_access(WG_ENGINE_ACCESS_READ);
  struct ArrowArrayStream in, out;
  int rc = input_of(f.src, RANGE_SQL(100), 0, -1, &in, &err);
  if (rc == 0)
    rc = wg_engine_query_over(f.c, "input", &in, "INSERT INTO t SELECT * FROM input", 0, 0, &out,
                              &err);
  int64_t rows = -1;
  int rc2 = -1;
  if (rc == EACCES) { /* a read may still select */
    ASSERT_OK(input_of(f.src, RANGE_SQL(100), 0, -1, &in, &err), &err);
    rc2 = wg_engine_query_over(f.c, "input", &in, "SELECT * FROM input", 0, 0, &out, &err);
    if (rc2 == 0) rc2 = drain(&out, -1, &rows, NULL, &err);
  }
  wg_engine_thread_set_access(WG_ENGINE_ACCESS_ALL);
  ASSERT_EQ(rc, EACCES);
  ASSERT_OK(rc2, &err);
  ASSERT_EQ(rows, 100);
  ASSERT_EQ(q64(f.c, "SELECT count(*) FROM t"), 0);
  fx_close(&f);
}

static void over_refuses_two_statements_and_a_busy_connection(void) {
  struct fx f;
  ASSERT_OK(fx_open(&f), NULL);
  struct wg_error err = {{0}};
  struct ArrowArrayStream in, out, in2, out2;
  ASSERT_OK(input_of(f.src, RANGE_SQL(10), 0, -1, &in, &err), &err);
  int rc = wg_engine_query_over(f.c, "input", &in, "SELECT 1; SELECT 2", 0, 0, &out, &err);
  ASSERT_NE(rc, 0);
  ASSERT_TRUE(in.release == NULL);
  ASSERT_OK(input_of(f.src, RANGE_SQL(10), 0, -1, &in, &err), &err);
  ASSERT_OK(wg_engine_query_over(f.c, "input", &in, "SELECT * FROM input", 0, 0, &out, &err),
            &err);
  struct wg_engine_conn *third = NULL;
  ASSERT_OK(wg_engine_acquire(f.e, &third, &err), &err);
  rc = input_of(third, RANGE_SQL(10), 0, -1, &in2, &err);
  if (rc == 0) /* c is busy with out: refused, in2 released */
    rc = wg_engine_query_over(f.c, "input", &in2, "SELECT * FROM input", 0, 0, &out2, &err);
  wg_engine_release(f.e, third);
  ASSERT_EQ(rc, EINVAL);
  int64_t rows;
  ASSERT_OK(drain(&out, -1, &rows, NULL, &err), &err);
  ASSERT_EQ(rows, 10);
  fx_close(&f);
}

int main(void) {
  RUN_TEST(over_filters_a_stream);
  RUN_TEST(over_joins_with_a_table);
  RUN_TEST(over_aggregates_the_whole_input);
  RUN_TEST(over_upserts_and_counts);
  RUN_TEST(over_keeps_the_sandbox);
  RUN_TEST(over_reports_a_failing_input);
  RUN_TEST(over_released_early_rolls_back);
  RUN_TEST(over_checks_the_access_level);
  RUN_TEST(over_refuses_two_statements_and_a_busy_connection);
  TEST_SUMMARY();
}
