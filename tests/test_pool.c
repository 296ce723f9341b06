/* wigeon: the engine's connection pool (src/engine/pool.c) on a real in-memory DuckDB: acquire's
 * bounded wait and its message, the budgets that keep committers and pinned sessions out of the
 * calls' way (with the real group committer of src/server), and the debug check that a thread
 * serving calls holds one connection at a time (in forked children). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arrow/array.h"
#include "common/dcheck.h"
#include "engine/engine_internal.h"
#include "server/internal.h"
#include "test.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct wg_engine *open_pool(int calls, int reserved, int sessions, int64_t timeout_ms) {
  struct wg_engine_options o = {.connections = calls,
                                .reserved_connections = reserved,
                                .max_sessions = sessions,
                                .acquire_timeout_ms = timeout_ms};
  struct wg_engine *e = NULL;
  struct wg_error err;
  if (wg_engine_open(&e, &o, &err) != 0) fprintf(stderr, "  open: %s\n", err.message);
  return e;
}

/* The single BIGINT of a one-row query, or -1. */
static int64_t scalar(struct wg_engine_conn *c, const char *sql) {
  duckdb_result r;
  memset(&r, 0, sizeof(r));
  int64_t v = -1;
  if (duckdb_query(wg_engine_conn_duckdb(c), sql, &r) == DuckDBSuccess &&
      duckdb_row_count(&r) == 1)
    v = duckdb_value_int64(&r, 0, 0);
  duckdb_destroy_result(&r);
  return v;
}

/* Runs `fn` in a forked child; its wait status. */
static int in_child(void (*fn)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    fn();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

static void second_acquire_on_a_call_thread(void) {
  struct wg_engine *e = open_pool(2, 0, 0, 1000);
  struct wg_engine_conn *a, *b;
  if (e == NULL || wg_engine_acquire(e, &a, NULL) != 0) _exit(2);
  wg_engine_thread_serves_calls();
  wg_engine_acquire(e, &b, NULL); /* aborts in debug builds */
  _exit(3);
}

static void detach_then_acquire_on_a_call_thread(void) {
  struct wg_engine *e = open_pool(1, 0, 0, 1000);
  struct wg_engine_conn *a, *b;
  wg_engine_thread_serves_calls();
  if (e == NULL || wg_engine_acquire(e, &a, NULL) != 0) _exit(2);
  if (wg_engine_conn_detach(e, a, NULL) != 0) _exit(4);
  if (wg_engine_acquire(e, &b, NULL) != 0) _exit(5); /* a left the pool: no deadlock to fear */
  wg_engine_release(e, a);
  wg_engine_release(e, b);
  if (wg_engine_acquire(e, &a, NULL) != 0) _exit(6); /* one at a time again */
  wg_engine_release(e, a);
  wg_engine_close(e);
  _exit(0);
}

/* Forks before any DuckDB thread exists in this process (main runs it first). */
static void debug_check_fires_on_a_second_acquire_by_a_call_thread(void) {
  int st = in_child(second_acquire_on_a_call_thread);
  if (!WG_DCHECK_ENABLED) {
    printf("debug_check_fires_on_a_second_acquire_by_a_call_thread: skipped the abort (NDEBUG "
           "build: WG_DCHECK compiles to nothing)\n");
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 3);
  } else {
    ASSERT_TRUE(WIFSIGNALED(st));
    ASSERT_EQ(WTERMSIG(st), SIGABRT);
  }
  st = in_child(detach_then_acquire_on_a_call_thread);
  ASSERT_TRUE(WIFEXITED(st));
  ASSERT_EQ(WEXITSTATUS(st), 0);
}

static void acquire_times_out_with_a_message_naming_the_wait(void) {
  struct wg_engine *e = open_pool(2, 0, 0, 250);
  ASSERT_TRUE(e != NULL);
  struct wg_engine_conn *a, *b, *c = NULL;
  struct wg_error err;
  ASSERT_OK(wg_engine_acquire(e, &a, &err), &err);
  ASSERT_OK(wg_engine_acquire(e, &b, &err), &err);
  int64_t t0 = now_ms();
  int rc = wg_engine_acquire(e, &c, &err);
  int64_t waited = now_ms() - t0;
  wg_engine_release(e, a);
  struct wg_error again;
  int after = wg_engine_acquire(e, &a, &again); /* free again: at once */
  wg_engine_release(e, a);
  wg_engine_release(e, b);
  wg_engine_close(e);
  ASSERT_EQ(rc, EBUSY);
  ASSERT_TRUE(c == NULL);
  ASSERT_STREQ(err.message, "server busy: no DuckDB connection free after 250 ms (2 in use)");
  ASSERT_TRUE(waited >= 240 && waited < 5000);
  ASSERT_OK(after, &again);
}

static void acquire_waits_thirty_seconds_by_default(void) {
  struct wg_engine *e = open_pool(1, 0, 0, 0);
  ASSERT_TRUE(e != NULL);
  int64_t ms = e->acquire_timeout_ms; /* not sat out: read back from the pool */
  wg_engine_close(e);
  ASSERT_EQ(ms, WG_ENGINE_DEFAULT_ACQUIRE_TIMEOUT_MS);
  ASSERT_EQ(ms, 30000);
}

struct holder {
  struct wg_engine *e;
  int rc;
  int64_t waited_ms;
};

static void *acquire_and_release(void *p) {
  struct holder *h = p;
  struct wg_engine_conn *c;
  int64_t t0 = now_ms();
  h->rc = wg_engine_acquire(h->e, &c, NULL);
  h->waited_ms = now_ms() - t0;
  if (h->rc == 0) wg_engine_release(h->e, c);
  return NULL;
}

/* A waiter on a pool opened with no timeout (< 0) waits until a connection comes back. */
static void a_negative_timeout_waits_until_a_connection_is_free(void) {
  struct wg_engine *e = open_pool(1, 0, 0, -1);
  ASSERT_TRUE(e != NULL);
  struct wg_engine_conn *a;
  struct wg_error err;
  ASSERT_OK(wg_engine_acquire(e, &a, &err), &err);
  struct holder h = {e, -1, 0};
  pthread_t t;
  pthread_create(&t, NULL, acquire_and_release, &h);
  nanosleep(&(struct timespec){0, 300000000L}, NULL);
  wg_engine_release(e, a);
  pthread_join(t, NULL);
  wg_engine_close(e);
  ASSERT_EQ(h.rc, 0);
  ASSERT_TRUE(h.waited_ms >= 250);
}

/* A one-row, one-BIGINT-column ("x") batch made by this project (what group commit keeps). */
static int64_t row_value = 42;
static void one_row(struct ArrowSchema *s, struct ArrowArray *a) {
  wg_schema_node_init(s, "+s", 1, NULL);
  wg_schema_node_init(s->children[0], "l", 0, NULL);
  wg_schema_set_name(s->children[0], "x");
  wg_array_node_init(a, 1, 1, NULL);
  a->length = 1;
  wg_array_node_init(a->children[0], 2, 0, NULL);
  a->children[0]->length = 1;
  a->children[0]->buffers[1] = &row_value;
}

/* The group committer (src/server/group_commit.c) on its reserved connection commits a put while
 * every calls' connection is held. */
static void committer_commits_while_every_call_connection_is_held(void) {
  struct wg_engine *e = open_pool(2, 1, 0, 200);
  ASSERT_TRUE(e != NULL);
  struct wg__committer cm;
  struct wg_error err;
  ASSERT_OK(wg__committer_start(&cm, e, 1, 0, (int64_t)8 << 20, &err), &err);
  struct wg_engine_conn *a, *b, *c = NULL;
  ASSERT_OK(wg_engine_acquire(e, &a, &err), &err);
  struct ArrowSchema s;
  struct ArrowArray batch;
  one_row(&s, &batch);
  struct wg_engine_ingest *ing = NULL;
  int rc = wg_engine_ingest_begin_deferred(a, NULL, "t", &s, &ing, &err);
  if (rc == 0) rc = wg_engine_ingest_append(ing, &batch, &err);
  wg_schema_release(&s);
  ASSERT_OK(rc, &err);
  ASSERT_OK(wg_engine_acquire(e, &b, &err), &err); /* now every calls' connection is held */
  struct wg_error busy;
  int full = wg_engine_acquire(e, &c, &busy);
  int64_t rows = 0;
  rc = wg__committer_commit(&cm, ing, NULL, 8, 1, &rows, &err);
  int64_t seen = scalar(a, "SELECT sum(x) FROM t");
  wg_engine_release(e, a);
  wg_engine_release(e, b);
  struct wg_error extra;
  struct wg_engine_conn *r = NULL;
  int second = wg_engine_acquire_reserved(e, &r, &extra); /* the committer has the only one */
  wg__committer_stop(&cm);
  wg_engine_close(e);
  ASSERT_EQ(full, EBUSY);
  ASSERT_OK(rc, &err);
  ASSERT_EQ(rows, 1);
  ASSERT_EQ(seen, 42);
  ASSERT_EQ(second, EBUSY);
  ASSERT_STREQ(extra.message, "all 1 reserved DuckDB connections are taken");
}

/* Pinned sessions: at most max_sessions at once, outside the calls' pool, state kept across uses
 * until released, an open transaction rolled back on release. */
static void pinned_sessions_have_their_own_budget(void) {
  struct wg_engine *e = open_pool(1, 0, 2, 200);
  ASSERT_TRUE(e != NULL);
  struct wg_engine_conn *p1, *p2, *p3 = NULL, *call;
  struct wg_error err, refused;
  ASSERT_OK(wg_engine_acquire_pinned(e, &p1, &err), &err);
  ASSERT_OK(wg_engine_acquire_pinned(e, &p2, &err), &err);
  int rc3 = wg_engine_acquire_pinned(e, &p3, &refused);
  int n_open = wg_engine_pinned_count(e);
  int64_t t0 = now_ms();
  int rc_call = wg_engine_acquire(e, &call, &err); /* the calls' pool is untouched */
  int64_t call_ms = now_ms() - t0;
  int64_t changed;
  int rc = rc_call;
  if (rc == 0) rc = wg_engine_execute(call, "CREATE TABLE t (x BIGINT)", &changed, &err);
  if (rc == 0)
    rc = wg_engine_execute(p1, "CREATE TEMP TABLE mine AS SELECT 7 AS v", &changed, &err);
  if (rc == 0) rc = wg_engine_execute(p1, "BEGIN; INSERT INTO t VALUES (1)", &changed, &err);
  int64_t kept = scalar(p1, "SELECT v FROM mine"); /* session state across uses */
  int64_t in_txn = scalar(p1, "SELECT count(*) FROM t");
  wg_engine_release_pinned(e, p1); /* ends the session: its transaction is rolled back */
  int64_t after = scalar(call, "SELECT count(*) FROM t");
  int rc_again = wg_engine_acquire_pinned(e, &p3, &err); /* its place is free again */
  if (rc_call == 0) wg_engine_release(e, call);
  wg_engine_release_pinned(e, p2);
  if (rc_again == 0) wg_engine_release_pinned(e, p3);
  int n_end = wg_engine_pinned_count(e);
  wg_engine_close(e);
  ASSERT_EQ(rc3, EBUSY);
  ASSERT_STREQ(refused.message, "server busy: 2 pinned sessions already open, the most this "
                                "server keeps (--max-sessions)");
  ASSERT_EQ(n_open, 2);
  ASSERT_OK(rc_call, &err);
  ASSERT_TRUE(call_ms < 150);
  ASSERT_OK(rc, &err);
  ASSERT_EQ(kept, 7);
  ASSERT_EQ(in_txn, 1);
  ASSERT_EQ(after, 0);
  ASSERT_OK(rc_again, &err);
  ASSERT_EQ(n_end, 0);
}

static void no_pinned_session_without_a_budget(void) {
  struct wg_engine *e = open_pool(1, 0, 0, 200);
  ASSERT_TRUE(e != NULL);
  struct wg_engine_conn *p = NULL;
  struct wg_error err;
  int rc = wg_engine_acquire_pinned(e, &p, &err);
  wg_engine_close(e);
  ASSERT_EQ(rc, EBUSY);
  ASSERT_TRUE(p == NULL);
  ASSERT_TRUE(strstr(err.message, "0 pinned sessions already open") != NULL);
}

int main(void) {
  RUN_TEST(debug_check_fires_on_a_second_acquire_by_a_call_thread); /* first: forks */
  RUN_TEST(acquire_times_out_with_a_message_naming_the_wait);
  RUN_TEST(acquire_waits_thirty_seconds_by_default);
  RUN_TEST(a_negative_timeout_waits_until_a_connection_is_free);
  RUN_TEST(committer_commits_while_every_call_connection_is_held);
  RUN_TEST(pinned_sessions_have_their_own_budget);
  RUN_TEST(no_pinned_session_without_a_budget);
  return TEST_SUMMARY();
}
