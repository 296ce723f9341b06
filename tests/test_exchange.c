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
#include "arrow/ipc.h"
#include "engine/engine.h"
#include "flight/flight.h"
#include "rpc/rpc.h"
#include "support/server_fixture.h"
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

/* ---------------------------------------------------------------------------------------------
 * Through the server, with the C client (wg_exchange) */

/* Reads a result: rows and the sum of BIGINT column col (-1: none); the stream's status into st
 * on failure. Returns the errno value (0 OK). Releases s. */
static int read_result(struct ArrowArrayStream *s, int col, int64_t *rows, int64_t *sum,
                       struct wg_status *st) {
  struct ArrowSchema sc;
  int rc = s->get_schema(s, &sc);
  if (rc == 0) sc.release(&sc);
  *rows = 0;
  if (sum != NULL) *sum = 0;
  for (; rc == 0;) {
    struct ArrowArray a;
    rc = s->get_next(s, &a);
    if (rc != 0 || a.release == NULL) break;
    *rows += a.length;
    if (col >= 0 && sum != NULL) {
      const struct ArrowArray *ch = a.children[col];
      const int64_t *v = ch->buffers[1];
      for (int64_t i = 0; i < ch->length; i++)
        *sum += v[ch->offset + i];
    }
    a.release(&a);
  }
  if (rc != 0) wg_stream_status(s, st);
  wg_stream_release(s);
  return rc;
}

struct sfx {
  struct wg_fx_server fx;
  struct wg_client *c;
};
static int sfx_start(struct sfx *f) {
  struct wg_server_options o = {.threads = 4};
  struct wg_status st;
  if (wg_fx_server_start(&f->fx, &o) != 0) return EIO;
  return wg_fx_connect(&f->c, f->fx.uri, &st) == 0 ? 0 : EIO;
}
static void sfx_stop(struct sfx *f) {
  wg_disconnect(f->c);
  wg_fx_server_stop(&f->fx);
}

static void client_exchange_filters_a_stream(void) {
  struct sfx f;
  ASSERT_OK(sfx_start(&f), NULL);
  struct wg_status st;
  struct ArrowArrayStream in, out;
  ASSERT_OK(wg_fx_seed_stream(1, 20, 1000, true, &in), NULL); /* (id BIGINT, value DOUBLE) */
  ASSERT_OK(wg_exchange(f.c, "SELECT id FROM input WHERE id % 100 = 7", &in, &out, &st),
            st.message);
  ASSERT_TRUE(in.release == NULL);
  int64_t rows, sum;
  ASSERT_OK(read_result(&out, 0, &rows, &sum, &st), st.message);
  int64_t want_rows = 0, want_sum = 0, id_sum = 0;
  ASSERT_OK(wg_fx_seed_stream(1, 20, 1000, true, &in), NULL);
  for (;;) { /* the same rows, filtered here */
    struct ArrowArray a;
    ASSERT_OK(in.get_next(&in, &a), NULL);
    if (a.release == NULL) break;
    const int64_t *v = a.children[0]->buffers[1];
    for (int64_t i = 0; i < a.length; i++) {
      id_sum += v[i];
      if (v[i] % 100 == 7) want_rows++, want_sum += v[i];
    }
    a.release(&a);
  }
  in.release(&in);
  ASSERT_TRUE(want_rows > 0);
  ASSERT_EQ(rows, want_rows);
  ASSERT_EQ(sum, want_sum);
  /* an aggregate over all of it, then once per batch */
  ASSERT_OK(wg_fx_seed_stream(1, 20, 1000, true, &in), NULL);
  ASSERT_OK(wg_exchange(f.c, "SELECT sum(id)::BIGINT AS s FROM input", &in, &out, &st),
            st.message);
  ASSERT_OK(read_result(&out, 0, &rows, &sum, &st), st.message);
  ASSERT_EQ(rows, 1);
  ASSERT_EQ(sum, id_sum);
  ASSERT_OK(wg_fx_seed_stream(1, 20, 1000, true, &in), NULL);
  ASSERT_OK(wg_exchange(f.c, "{\"sql\": \"SELECT count(*) AS n FROM input\", \"per_batch\": true}",
                        &in, &out, &st),
            st.message);
  ASSERT_OK(read_result(&out, 0, &rows, &sum, &st), st.message);
  ASSERT_EQ(rows, 20);
  ASSERT_EQ(sum, 20000);
  sfx_stop(&f);
}

static void client_exchange_upserts_with_its_count(void) {
  struct sfx f;
  ASSERT_OK(sfx_start(&f), NULL);
  struct wg_status st;
  const char *ddl = "CREATE TABLE t (id BIGINT PRIMARY KEY, value DOUBLE)";
  ASSERT_OK(wg_fx_action(f.c, "execute", ddl, strlen(ddl), NULL, &st), st.message);
  struct ArrowArrayStream in, out;
  for (int round = 0; round < 2; round++) { /* the second updates every row */
    ASSERT_OK(wg_fx_seed_stream(1, 5, 1000, true, &in), NULL);
    ASSERT_OK(wg_exchange(f.c, "INSERT INTO t SELECT * FROM input ON CONFLICT (id) DO UPDATE "
                               "SET value = excluded.value + 1",
                          &in, &out, &st),
              st.message);
    int64_t rows, count;
    ASSERT_OK(read_result(&out, 0, &rows, &count, &st), st.message);
    ASSERT_EQ(rows, 1);
    ASSERT_EQ(count, 5000);
  }
  int64_t n;
  ASSERT_OK(wg_fx_query_i64(f.c, "SELECT count(*) FROM t", &n, &st), st.message);
  ASSERT_EQ(n, 5000);
  sfx_stop(&f);
}

static void client_exchange_errors_mid_stream(void) {
  struct sfx f;
  ASSERT_OK(sfx_start(&f), NULL);
  struct wg_status st;
  const char *ddl = "CREATE TABLE t (id BIGINT, value DOUBLE)";
  ASSERT_OK(wg_fx_action(f.c, "execute", ddl, strlen(ddl), NULL, &st), st.message);
  /* the client's input fails after 3 batches: the exchange is cancelled, nothing inserted */
  struct ArrowArrayStream seed, in, out;
  ASSERT_OK(wg_fx_seed_stream(1, 10, 1000, true, &seed), NULL);
  struct failing *fl = calloc(1, sizeof(*fl));
  ASSERT_TRUE(fl != NULL);
  fl->inner = seed;
  fl->fail_after = 3;
  in = (struct ArrowArrayStream){failing_schema, failing_next, failing_error, failing_release, fl};
  ASSERT_OK(wg_exchange(f.c, "INSERT INTO t SELECT * FROM input", &in, &out, &st), st.message);
  int64_t rows;
  int rc = read_result(&out, -1, &rows, NULL, &st);
  ASSERT_EQ(rc, EPROTO);
  ASSERT_TRUE(strstr(st.message, "broke on purpose") != NULL);
  int64_t n = -1;
  ASSERT_OK(wg_fx_query_i64(f.c, "SELECT count(*) FROM t", &n, &st), st.message);
  ASSERT_EQ(n, 0);
  /* the server's SQL fails on a later batch: its status after the batches already sent */
  ASSERT_OK(wg_fx_seed_stream(1, 10, 1000, true, &in), NULL);
  ASSERT_OK(wg_exchange(f.c, "SELECT CASE WHEN id < 5000 THEN id ELSE error('too far') END AS i "
                             "FROM input",
                        &in, &out, &st),
            st.message);
  rc = read_result(&out, -1, &rows, NULL, &st);
  ASSERT_NE(rc, 0);
  ASSERT_TRUE(strstr(st.message, "too far") != NULL);
  /* a Flight SQL-free path descriptor is not for DoExchange; SQL that does not parse neither */
  ASSERT_OK(wg_fx_seed_stream(1, 1, 10, true, &in), NULL);
  ASSERT_OK(wg_exchange(f.c, "SELEC 1", &in, &out, &st), st.message);
  rc = read_result(&out, -1, &rows, NULL, &st);
  ASSERT_EQ(rc, EINVAL);
  ASSERT_TRUE(strstr(st.message, "Parser Error") != NULL);
  ASSERT_OK(wg_fx_query_i64(f.c, "SELECT 41 + 1", &n, &st), st.message);
  ASSERT_EQ(n, 42);
  sfx_stop(&f);
}

/* The client releases the result before its end: the exchange is cancelled, the server's INSERT
 * is interrupted and rolled back, and the server goes on serving. */
static void client_exchange_cancel_inserts_nothing(void) {
  struct sfx f;
  ASSERT_OK(sfx_start(&f), NULL);
  struct wg_status st;
  const char *ddl = "CREATE TABLE t (id BIGINT, value DOUBLE)";
  ASSERT_OK(wg_fx_action(f.c, "execute", ddl, strlen(ddl), NULL, &st), st.message);
  struct ArrowArrayStream in, out;
  ASSERT_OK(wg_fx_seed_stream(1, 400, 5000, true, &in), NULL);
  ASSERT_OK(wg_exchange(f.c, "INSERT INTO t SELECT * FROM input", &in, &out, &st), st.message);
  usleep(20 * 1000); /* some of it sent */
  out.release(&out);
  int64_t n = -1;
  for (int i = 0; i < 25; i++) { /* nothing shows, while the server sees the cancel, or after */
    ASSERT_OK(wg_fx_query_i64(f.c, "SELECT count(*) FROM t", &n, &st), st.message);
    ASSERT_EQ(n, 0);
    usleep(20 * 1000);
  }
  ASSERT_EQ(n, 0);
  sfx_stop(&f);
}

/* A raw DoExchange whose second message is not IPC (built from the message definitions): the
 * server answers INVALID_ARGUMENT "bad IPC message" and keeps nothing of the INSERT. */
static void exchange_refuses_a_bad_batch(void) {
  struct sfx f;
  ASSERT_OK(sfx_start(&f), NULL);
  struct wg_status st;
  const char *ddl = "CREATE TABLE t (id BIGINT, value DOUBLE)";
  ASSERT_OK(wg_fx_action(f.c, "execute", ddl, strlen(ddl), NULL, &st), st.message);
  struct wg_error err = {{0}};
  struct wg_rpc_channel *ch;
  ASSERT_OK(wg_rpc_channel_create(&ch, f.fx.uri, &err), &err);
  struct wg_rpc_client_call *call;
  char path[128];
  snprintf(path, sizeof(path), "%sDoExchange", WG_FLIGHT_SERVICE);
  ASSERT_OK(wg_rpc_client_call_start(ch, path, 10000, NULL, &call, &err), &err);
  /* the descriptor and the schema (our encoder), then a good batch, then one of garbage */
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
  const char *sql = "INSERT INTO t SELECT * FROM input";
  d.cmd.data = (uint8_t *)sql;
  d.cmd.len = strlen(sql);
  uint8_t packed[256];
  size_t packed_len = arrow__flight__protocol__flight_descriptor__pack(&d, packed);
  struct ArrowSchema schema;
  struct ArrowArray batch;
  ASSERT_OK(wg_fx_seed_batch(1, 100, true, &schema, &batch), NULL);
  struct wg_ipc_encoder *enc = NULL;
  ASSERT_OK(wg_ipc_encoder_create(&enc, &schema, NULL, &err), &err);
  ASSERT_TRUE(wg_ipc_encoder_max_messages(enc) <= 4); /* no dictionaries */
  struct wg_ipc_encoded m[4];
  for (int i = 0; i < 4; i++)
    wg_ipc_encoded_init(&m[i]);
  ASSERT_OK(wg_ipc_encoder_schema(enc, &m[0], &err), &err);
  grpc_byte_buffer *bb;
  struct wg_bytes none = {NULL, 0};
  ASSERT_OK(wg_flight_data_encode((struct wg_bytes){packed, (int64_t)packed_len}, &m[0], none,
                                  NULL, &bb, &err),
            &err);
  ASSERT_OK(wg_rpc_client_call_send(call, bb), NULL);
  int64_t n = 0;
  ASSERT_OK(wg_ipc_encoder_batch(enc, &batch, m, &n, &err), &err);
  for (int64_t i = 0; i < n; i++) {
    ASSERT_OK(wg_flight_data_encode(none, &m[i], none, NULL, &bb, &err), &err);
    wg_rpc_client_call_send(call, bb);
  }
  Arrow__Flight__Protocol__FlightData bad = ARROW__FLIGHT__PROTOCOL__FLIGHT_DATA__INIT;
  uint8_t garbage[16] = {0x0c, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8};
  bad.data_header.data = garbage;
  bad.data_header.len = sizeof(garbage);
  ASSERT_OK(wg_flight_pack(&bad.base, &bb, &err), &err);
  wg_rpc_client_call_send(call, bb);
  wg_rpc_client_call_close_send(call);
  for (;;) {
    grpc_byte_buffer *r = NULL;
    if (wg_rpc_client_call_recv(call, &r) != 0 || r == NULL) break;
    grpc_byte_buffer_destroy(r);
  }
  grpc_status_code code;
  int rc = wg_rpc_client_call_finish(call, &code, &err);
  wg_rpc_client_call_destroy(call);
  wg_rpc_channel_destroy(ch);
  for (int i = 0; i < 4; i++)
    wg_ipc_encoded_reset(&m[i]);
  wg_ipc_encoder_destroy(enc);
  wg_array_release(&batch);
  wg_schema_release(&schema);
  ASSERT_EQ(code, GRPC_STATUS_INVALID_ARGUMENT);
  ASSERT_NE(rc, 0);
  ASSERT_TRUE(strstr(err.message, "bad IPC message") != NULL);
  int64_t rows = -1;
  ASSERT_OK(wg_fx_query_i64(f.c, "SELECT count(*) FROM t", &rows, &st), st.message);
  ASSERT_EQ(rows, 0);
  sfx_stop(&f);
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
  RUN_TEST(client_exchange_filters_a_stream);
  RUN_TEST(client_exchange_upserts_with_its_count);
  RUN_TEST(client_exchange_errors_mid_stream);
  RUN_TEST(client_exchange_cancel_inserts_nothing);
  RUN_TEST(exchange_refuses_a_bad_batch);
  TEST_SUMMARY();
}
