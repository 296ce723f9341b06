/* wigeon: the engine side of the live tail (engine.h, wg_engine_tail_begin and the commit events'
 * sequences and cap), through the engine API on real DuckDB files, with threads: a tail waits for
 * puts begun before anyone subscribed; a snapshot and the events after its point hold every
 * committed row exactly once while puts commit flat out on the streaming and the group path;
 * sequences start above a per-run base; a put over events_max_put_bytes gives a dropped event. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "arrow/array.h"
#include "common/buf.h"
#include "engine/engine.h"
#include "test.h"

static char tmpdir[256];

static struct wg_engine *open_engine(const char *name, int conns, int64_t max_put_bytes) {
  char path[400];
  snprintf(path, sizeof(path), "%s/%s.duckdb", tmpdir, name);
  struct wg_engine_options o = {0};
  o.path = path;
  o.connections = conns;
  o.events_max_put_bytes = max_put_bytes;
  struct wg_engine *e = NULL;
  struct wg_error err = {{0}};
  if (wg_engine_open(&e, &o, &err) != 0) fprintf(stderr, "  open: %s\n", err.message);
  return e;
}

static void x_schema(struct ArrowSchema *s) {
  wg_schema_node_init(s, "+s", 1, NULL);
  wg_schema_node_init(s->children[0], "l", 0, NULL);
  wg_schema_set_name(s->children[0], "x");
}

/* A batch of n values of column x over a refcounted copy of them (shared by every slice). */
static void x_batch(const int64_t *values, int64_t n, struct ArrowArray *out) {
  struct wg_shared *h = wg_shared_copy(values, n * (int64_t)sizeof(*values));
  wg_array_node_init(out, 1, 1, h);
  out->length = n;
  wg_array_node_init(out->children[0], 2, 0, h);
  out->children[0]->length = n;
  out->children[0]->buffers[1] = h->data;
  wg_shared_unref(h);
}

static int64_t count_rows(struct wg_engine_conn *c, const char *sql) {
  duckdb_result res;
  int64_t n = -1;
  if (duckdb_query(wg_engine_conn_duckdb(c), sql, &res) == DuckDBSuccess)
    n = duckdb_value_int64(&res, 0, 0);
  duckdb_destroy_result(&res);
  return n;
}

/* ---------------------------------------------------------------------------------------------
 * What subscribers saw: every event's sequence and ids (column x), from any thread */

struct event {
  uint64_t sequence;
  bool dropped;
  int64_t rows, n_batches, first, n_ids;
  int64_t *ids;
};

struct recorder {
  pthread_mutex_t mu;
  struct event *ev;
  int n, cap;
};

static void recorder_init(struct recorder *r) {
  memset(r, 0, sizeof(*r));
  pthread_mutex_init(&r->mu, NULL);
}

static void recorder_free(struct recorder *r) {
  for (int i = 0; i < r->n; i++)
    free(r->ev[i].ids);
  free(r->ev);
  pthread_mutex_destroy(&r->mu);
}

static void on_commit(void *ctx, struct wg_engine_commit_event *ev) {
  struct recorder *r = ctx;
  pthread_mutex_lock(&r->mu);
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 64;
    r->ev = realloc(r->ev, (size_t)r->cap * sizeof(*r->ev));
  }
  struct event *s = &r->ev[r->n++];
  memset(s, 0, sizeof(*s));
  s->sequence = ev->sequence;
  s->dropped = ev->dropped;
  s->rows = ev->rows;
  s->n_batches = ev->n_batches;
  s->ids = malloc((size_t)(ev->rows > 0 ? ev->rows : 1) * sizeof(int64_t));
  for (int64_t b = 0; b < ev->n_batches; b++) {
    const struct ArrowArray *col = ev->batches[b].children[0];
    const int64_t *v = col->buffers[1];
    for (int64_t i = 0; i < col->length && s->n_ids < ev->rows; i++)
      s->ids[s->n_ids++] = v[col->offset + i];
  }
  pthread_mutex_unlock(&r->mu);
}

/* A tail's point, as at_point was told it. */
struct point {
  uint64_t sequence;
  int calls;
};

static void at_point(void *ctx, uint64_t sequence) {
  struct point *p = ctx;
  p->sequence = sequence;
  p->calls++;
}

/* Appends every x of the stream to ids (grown); the count, or -1 on a stream error. */
static int64_t read_ids(struct ArrowArrayStream *s, int64_t **ids, int64_t *n, int64_t *cap) {
  for (;;) {
    struct ArrowArray a;
    if (s->get_next(s, &a) != 0) return -1;
    if (a.release == NULL) return *n;
    const struct ArrowArray *col = a.children[0];
    for (int64_t i = 0; i < col->length; i++) {
      if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *ids = realloc(*ids, (size_t)*cap * sizeof(**ids));
      }
      (*ids)[(*n)++] = ((const int64_t *)col->buffers[1])[col->offset + i];
    }
    a.release(&a);
  }
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------------------------------------------
 * DuckDB itself: the assumption the point rests on */

/* A transaction's snapshot is taken at its first catalog access (the prepare binding the table),
 * not at BEGIN: a row committed between BEGIN and prepare is seen, one committed between prepare
 * and execution is not. */
static void duckdb_fixes_a_snapshot_at_prepare_not_at_begin(void) {
  struct wg_engine *e = open_engine("lazy", 2, 0);
  ASSERT_TRUE(e != NULL);
  struct wg_engine_conn *a, *b;
  struct wg_error err = {{0}};
  ASSERT_OK(wg_engine_acquire(e, &a, &err), &err);
  ASSERT_OK(wg_engine_acquire(e, &b, &err), &err);
  duckdb_connection da = wg_engine_conn_duckdb(a), db = wg_engine_conn_duckdb(b);
  ASSERT_EQ(duckdb_query(db, "CREATE TABLE t (x BIGINT)", NULL), DuckDBSuccess);
  ASSERT_EQ(duckdb_query(da, "BEGIN TRANSACTION", NULL), DuckDBSuccess);
  ASSERT_EQ(duckdb_query(db, "INSERT INTO t VALUES (1)", NULL), DuckDBSuccess);
  duckdb_prepared_statement p = NULL;
  ASSERT_EQ(duckdb_prepare(da, "SELECT count(*) FROM t", &p), DuckDBSuccess);
  ASSERT_EQ(duckdb_query(db, "INSERT INTO t VALUES (2)", NULL), DuckDBSuccess);
  duckdb_result r;
  ASSERT_EQ(duckdb_execute_prepared(p, &r), DuckDBSuccess);
  int64_t seen = duckdb_value_int64(&r, 0, 0);
  duckdb_destroy_result(&r);
  duckdb_destroy_prepare(&p);
  ASSERT_EQ(duckdb_query(da, "COMMIT", NULL), DuckDBSuccess);
  int64_t now = count_rows(a, "SELECT count(*) FROM t");
  wg_engine_release(e, a);
  wg_engine_release(e, b);
  wg_engine_close(e);
  ASSERT_EQ(seen, 1);
  ASSERT_EQ(now, 2);
}

/* ---------------------------------------------------------------------------------------------
 * The gap: puts begun before the subscription */

struct tail_thread {
  struct wg_engine *e;
  struct wg_engine_tail_start start;
  struct ArrowArrayStream snapshot;
  struct wg_error err;
  int rc;
  atomic_bool returned;
};

static void *tail_run(void *arg) {
  struct tail_thread *t = arg;
  t->rc = wg_engine_tail_begin(t->e, &t->start, &t->snapshot, &t->err);
  atomic_store(&t->returned, true);
  return NULL;
}

static const int64_t ids123[] = {1, 2, 3}, ids45[] = {4, 5}, ids6[] = {6};

/* A streaming and a deferred put begun before anyone subscribed, committed while a tail waits for
 * them: the tail begins only once both have committed, and its snapshot holds their rows (which
 * come as no event). */
static void a_tail_waits_for_puts_begun_before_the_subscription(void) {
  struct wg_engine *e = open_engine("gap", 5, 0);
  ASSERT_TRUE(e != NULL);
  struct wg_error err = {{0}};
  struct wg_engine_conn *c1, *c2, *c3, *ct;
  ASSERT_OK(wg_engine_acquire(e, &c1, &err), &err);
  ASSERT_OK(wg_engine_acquire(e, &c2, &err), &err);
  ASSERT_OK(wg_engine_acquire(e, &c3, &err), &err);
  ASSERT_OK(wg_engine_acquire(e, &ct, &err), &err);
  ASSERT_OK(wg_engine_execute(c1, "CREATE TABLE t (x BIGINT)", NULL, &err), &err);
  struct ArrowSchema s;
  x_schema(&s);
  struct wg_engine_ingest *streaming = NULL, *deferred = NULL;
  ASSERT_OK(wg_engine_ingest_begin(c1, NULL, "t", &s, &streaming, &err), &err);
  ASSERT_OK(wg_engine_ingest_begin_deferred(c2, NULL, "t", &s, &deferred, &err), &err);
  struct recorder r;
  recorder_init(&r);
  ASSERT_OK(wg_engine_on_commit(e, on_commit, &r, &err), &err);
  struct point pt = {0};
  struct tail_thread t = {.e = e};
  t.start = (struct wg_engine_tail_start){
      .table = "t", .conn = ct, .snapshot_sql = "SELECT x FROM t", .wait_ms = 20000,
      .at_point = at_point, .ctx = &pt};
  pthread_t th;
  pthread_create(&th, NULL, tail_run, &t);
  struct ArrowArray b;
  x_batch(ids123, 3, &b);
  ASSERT_OK(wg_engine_ingest_append(streaming, &b, &err), &err);
  x_batch(ids45, 2, &b);
  ASSERT_OK(wg_engine_ingest_append(deferred, &b, &err), &err);
  usleep(150 * 1000);
  bool early = atomic_load(&t.returned);
  int64_t rows;
  ASSERT_OK(wg_engine_ingest_commit(streaming, &rows, &err), &err);
  usleep(100 * 1000);
  bool after_one = atomic_load(&t.returned);
  int status[1];
  int64_t grows[1];
  struct wg_error gerr[1];
  wg_engine_ingest_commit_group(c3, &deferred, 1, status, grows, gerr);
  pthread_join(th, NULL);
  int64_t *ids = NULL, n = 0, cap = 0;
  int64_t got = t.rc == 0 ? read_ids(&t.snapshot, &ids, &n, &cap) : -1;
  if (t.snapshot.release != NULL) t.snapshot.release(&t.snapshot);
  uint64_t base = wg_engine_sequence_base(e);
  /* a put begun now (someone subscribed) keeps its batches: no waiting */
  x_batch(ids6, 1, &b);
  ASSERT_OK(wg_engine_ingest_begin(c1, NULL, "t", &s, &streaming, &err), &err);
  ASSERT_OK(wg_engine_ingest_append(streaming, &b, &err), &err);
  struct point pt2 = {0};
  struct wg_engine_tail_start now = {.table = "t", .wait_ms = 0, .at_point = at_point, .ctx = &pt2};
  int rc_now = wg_engine_tail_begin(e, &now, NULL, &err);
  ASSERT_OK(wg_engine_ingest_commit(streaming, &rows, &err), &err);
  wg_schema_release(&s);
  wg_engine_on_commit_remove(e, on_commit, &r);
  wg_engine_release(e, c1);
  wg_engine_release(e, c2);
  wg_engine_release(e, c3);
  wg_engine_release(e, ct);
  wg_engine_close(e);
  ASSERT_TRUE(!early);
  ASSERT_TRUE(!after_one);
  ASSERT_EQ(status[0], 0);
  ASSERT_OK(t.rc, &t.err);
  ASSERT_EQ(got, 5);
  qsort(ids, (size_t)n, sizeof(*ids), cmp_i64);
  for (int i = 0; i < 5; i++)
    ASSERT_EQ(ids[i], i + 1);
  free(ids);
  ASSERT_EQ(pt.calls, 1);
  ASSERT_EQ(pt.sequence, base); /* neither put gave an event */
  ASSERT_OK(rc_now, &err);
  ASSERT_EQ(pt2.calls, 1);
  ASSERT_EQ(pt2.sequence, base);
  ASSERT_EQ(r.n, 1); /* only the put begun after the subscription */
  ASSERT_EQ(r.ev[0].sequence, base + 1);
  ASSERT_EQ(r.ev[0].ids[0], 6);
  recorder_free(&r);
}

/* A put begun before the subscription that outlasts wait_ms: ETIMEDOUT naming the table, at_point
 * never called, and nothing left locked (the put commits, a later tail begins, while a put into
 * another table begun before the subscription is still open: only the tailed table's count). */
static void a_tail_times_out_on_a_put_that_outlasts_its_wait(void) {
  struct wg_engine *e = open_engine("timeout", 3, 0);
  ASSERT_TRUE(e != NULL);
  struct wg_error err = {{0}};
  struct wg_engine_conn *c1, *c2, *ct;
  ASSERT_OK(wg_engine_acquire(e, &c1, &err), &err);
  ASSERT_OK(wg_engine_acquire(e, &c2, &err), &err);
  ASSERT_OK(wg_engine_acquire(e, &ct, &err), &err);
  struct ArrowSchema s;
  x_schema(&s);
  struct wg_engine_ingest *slow = NULL, *other = NULL;
  ASSERT_OK(wg_engine_ingest_begin(c1, NULL, "events", &s, &slow, &err), &err);
  ASSERT_OK(wg_engine_ingest_begin(c2, "main", "Other", &s, &other, &err), &err);
  wg_schema_release(&s);
  struct recorder r;
  recorder_init(&r);
  ASSERT_OK(wg_engine_on_commit(e, on_commit, &r, &err), &err);
  struct point pt = {0};
  struct wg_engine_tail_start st = {.table = "events", .conn = ct,
                                    .snapshot_sql = "SELECT x FROM events", .wait_ms = 100,
                                    .at_point = at_point, .ctx = &pt};
  struct ArrowArrayStream snap;
  struct wg_error terr = {{0}};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int rc = wg_engine_tail_begin(e, &st, &snap, &terr);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  struct ArrowArray b;
  x_batch(ids123, 3, &b);
  ASSERT_OK(wg_engine_ingest_append(slow, &b, &err), &err);
  int64_t rows;
  ASSERT_OK(wg_engine_ingest_commit(slow, &rows, &err), &err);
  struct ArrowArrayStream snap2;
  int rc2 = wg_engine_tail_begin(e, &st, &snap2, &err);
  int64_t *ids = NULL, n = 0, cap = 0;
  int64_t got = rc2 == 0 ? read_ids(&snap2, &ids, &n, &cap) : -1;
  if (snap2.release != NULL) snap2.release(&snap2);
  free(ids);
  struct point pt_other = {0};
  struct wg_engine_tail_start so = {.table = "other", .wait_ms = 50, .at_point = at_point,
                                    .ctx = &pt_other};
  int rc_other = wg_engine_tail_begin(e, &so, NULL, &err);
  wg_engine_ingest_abort(other);
  int rc_other2 = wg_engine_tail_begin(e, &so, NULL, &err);
  wg_engine_on_commit_remove(e, on_commit, &r);
  wg_engine_release(e, c1);
  wg_engine_release(e, c2);
  wg_engine_release(e, ct);
  wg_engine_close(e);
  ASSERT_EQ(rc, ETIMEDOUT);
  ASSERT_TRUE(strstr(terr.message, "events") != NULL);
  ASSERT_TRUE(strstr(terr.message, "a put begun before the subscription is still running"));
  ASSERT_TRUE(snap.release == NULL);
  ASSERT_TRUE(waited >= 0.09 && waited < 5);
  ASSERT_EQ(pt.calls, 1); /* the second tail's only */
  ASSERT_OK(rc2, &err);
  ASSERT_EQ(got, 3);
  ASSERT_EQ(rc_other, ETIMEDOUT); /* "other" is the table of the put still open */
  ASSERT_OK(rc_other2, &err);
  ASSERT_EQ(pt_other.calls, 1);
  ASSERT_EQ(r.n, 0);
  recorder_free(&r);
}

/* ---------------------------------------------------------------------------------------------
 * The point: tails begun while puts commit flat out */

#define ROWS_PER_PUT 3

struct writer {
  struct wg_engine *e;
  int64_t id_base; /* ids id_base + k */
  bool group;      /* deferred puts committed two by two (commit_group), else streaming */
  atomic_bool *stop;
  int64_t puts, failures;
};

static int writer_put(struct writer *w, struct wg_engine_conn *c, struct wg_engine_conn *g) {
  struct ArrowSchema s;
  x_schema(&s);
  struct wg_error err;
  int n = w->group ? 2 : 1, rc = 0;
  struct wg_engine_ingest *ings[2];
  for (int i = 0; i < n && rc == 0; i++) {
    int64_t v[ROWS_PER_PUT];
    for (int j = 0; j < ROWS_PER_PUT; j++)
      v[j] = w->id_base + (w->puts + i) * ROWS_PER_PUT + j;
    rc = w->group ? wg_engine_ingest_begin_deferred(c, NULL, "t", &s, &ings[i], &err)
                  : wg_engine_ingest_begin(c, NULL, "t", &s, &ings[i], &err);
    if (rc != 0) {
      n = i;
      break;
    }
    struct ArrowArray b;
    x_batch(v, ROWS_PER_PUT, &b);
    rc = wg_engine_ingest_append(ings[i], &b, &err);
  }
  wg_schema_release(&s);
  if (!w->group) {
    int64_t rows;
    if (rc == 0) return wg_engine_ingest_commit(ings[0], &rows, &err);
    wg_engine_ingest_abort(ings[0]);
    return rc;
  }
  int status[2] = {0, 0};
  int64_t rows[2];
  struct wg_error errs[2];
  if (n > 0) wg_engine_ingest_commit_group(g, ings, n, status, rows, errs);
  return rc != 0 ? rc : status[0] != 0 ? status[0] : status[1];
}

static void *writer_run(void *arg) {
  struct writer *w = arg;
  struct wg_engine_conn *c = NULL, *g = NULL;
  struct wg_error err;
  if (wg_engine_acquire(w->e, &c, &err) != 0 ||
      (w->group && wg_engine_acquire(w->e, &g, &err) != 0)) {
    w->failures++;
  } else {
    while (!atomic_load(w->stop)) {
      if (writer_put(w, c, g) != 0) w->failures++;
      w->puts += w->group ? 2 : 1;
    }
  }
  wg_engine_release(w->e, c);
  wg_engine_release(w->e, g);
  return NULL;
}

#define TAILS 24

/* For each tail: its snapshot's ids, and its point. */
struct tail_seen {
  struct point pt;
  int64_t *ids, n, cap;
  int rc;
};

/* The ids of every event after `point`, then the snapshot's: together, sorted, exactly `all`. */
static bool tail_exact(const struct tail_seen *t, const struct recorder *r, const int64_t *all,
                       int64_t n_all) {
  int64_t n = t->n;
  for (int i = 0; i < r->n; i++)
    if (r->ev[i].sequence > t->pt.sequence) n += r->ev[i].n_ids;
  if (n != n_all) {
    fprintf(stderr, "  tail at %llu: %lld rows (snapshot %lld), committed %lld\n",
            (unsigned long long)t->pt.sequence, (long long)n, (long long)t->n, (long long)n_all);
    return false;
  }
  int64_t *u = malloc((size_t)(n > 0 ? n : 1) * sizeof(*u));
  memcpy(u, t->ids, (size_t)t->n * sizeof(*u));
  int64_t k = t->n;
  for (int i = 0; i < r->n; i++) {
    if (r->ev[i].sequence <= t->pt.sequence) continue;
    memcpy(u + k, r->ev[i].ids, (size_t)r->ev[i].n_ids * sizeof(*u));
    k += r->ev[i].n_ids;
  }
  qsort(u, (size_t)n, sizeof(*u), cmp_i64);
  bool same = memcmp(u, all, (size_t)n * sizeof(*u)) == 0;
  free(u);
  return same;
}

static void snapshot_and_events_hold_every_row_once(void) {
  struct wg_engine *e = open_engine("point", 6, 0);
  ASSERT_TRUE(e != NULL);
  struct wg_error err = {{0}};
  struct wg_engine_conn *c;
  ASSERT_OK(wg_engine_acquire(e, &c, &err), &err);
  ASSERT_OK(wg_engine_execute(c, "CREATE TABLE t (x BIGINT)", NULL, &err), &err);
  atomic_bool stop;
  atomic_init(&stop, false);
  struct writer w[2] = {{e, 0, false, &stop, 0, 0}, {e, (int64_t)1 << 40, true, &stop, 0, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    pthread_create(&th[i], NULL, writer_run, &w[i]);
  usleep(50 * 1000); /* puts in flight that keep no batches: the first tail waits for them */
  struct recorder r;
  recorder_init(&r);
  ASSERT_OK(wg_engine_on_commit(e, on_commit, &r, &err), &err);
  static struct tail_seen tails[TAILS];
  memset(tails, 0, sizeof(tails));
  for (int i = 0; i < TAILS; i++) {
    struct tail_seen *t = &tails[i];
    struct wg_engine_tail_start st = {.table = "T", .conn = c, .snapshot_sql = "SELECT x FROM t",
                                      .target_rows = 500, .wait_ms = 20000,
                                      .at_point = at_point, .ctx = &t->pt};
    struct ArrowArrayStream snap;
    t->rc = wg_engine_tail_begin(e, &st, &snap, &err);
    if (t->rc == 0) {
      usleep(5 * 1000); /* puts commit while the snapshot is read */
      if (read_ids(&snap, &t->ids, &t->n, &t->cap) < 0) t->rc = EIO;
      snap.release(&snap);
    }
    if (t->rc != 0) fprintf(stderr, "  tail %d: %s\n", i, err.message);
    usleep(5 * 1000);
  }
  atomic_store(&stop, true);
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  wg_engine_on_commit_remove(e, on_commit, &r);
  struct ArrowArrayStream all_s;
  int64_t *all = NULL, n_all = 0, cap_all = 0;
  ASSERT_OK(wg_engine_query_open(c, "SELECT x FROM t ORDER BY x", 0, &all_s, &err), &err);
  int64_t got = read_ids(&all_s, &all, &n_all, &cap_all);
  all_s.release(&all_s);
  uint64_t last = wg_engine_table_sequence(e, NULL, "t");
  wg_engine_release(e, c);
  wg_engine_close(e);
  ASSERT_EQ(w[0].failures + w[1].failures, 0);
  ASSERT_TRUE(w[0].puts > 0 && w[1].puts > 0);
  ASSERT_EQ(got, (w[0].puts + w[1].puts) * ROWS_PER_PUT);
  ASSERT_TRUE(r.n > 0);
  ASSERT_EQ(last, r.ev[r.n - 1].sequence);
  for (int i = 0; i < r.n; i++)
    ASSERT_EQ(r.ev[i].sequence, r.ev[0].sequence + (uint64_t)i); /* +1 per commit */
  int distinct_points = 0;
  for (int i = 0; i < TAILS; i++) {
    ASSERT_OK(tails[i].rc, &err);
    ASSERT_EQ(tails[i].pt.calls, 1);
    ASSERT_TRUE(tail_exact(&tails[i], &r, all, n_all));
    distinct_points += i == 0 || tails[i].pt.sequence != tails[i - 1].pt.sequence;
    free(tails[i].ids);
  }
  ASSERT_TRUE(distinct_points > 1); /* the puts did commit between the tails */
  free(all);
  recorder_free(&r);
}

/* ---------------------------------------------------------------------------------------------
 * Sequences, the cap, refusals */

static int one_put(struct wg_engine_conn *c, const char *table, const int64_t *v, int64_t n,
                   int batches, struct wg_error *err) {
  struct ArrowSchema s;
  x_schema(&s);
  struct wg_engine_ingest *ing = NULL;
  int rc = wg_engine_ingest_begin(c, NULL, table, &s, &ing, err);
  wg_schema_release(&s);
  for (int i = 0; i < batches && rc == 0; i++) {
    struct ArrowArray b;
    x_batch(v, n, &b);
    rc = wg_engine_ingest_append(ing, &b, err);
  }
  if (rc != 0) {
    wg_engine_ingest_abort(ing);
    return rc;
  }
  int64_t rows;
  return wg_engine_ingest_commit(ing, &rows, err);
}

/* Run one: base from the clock at open, base+1, +2 per table; run two, a second later: a larger
 * base than any sequence of run one. */
static void sequences_start_above_a_base_that_grows_across_runs(void) {
  time_t before = time(NULL);
  struct wg_engine *e = open_engine("seq", 2, 0);
  time_t after = time(NULL);
  ASSERT_TRUE(e != NULL);
  struct recorder r;
  recorder_init(&r);
  struct wg_error err = {{0}};
  ASSERT_OK(wg_engine_on_commit(e, on_commit, &r, &err), &err);
  struct wg_engine_conn *c;
  ASSERT_OK(wg_engine_acquire(e, &c, &err), &err);
  uint64_t base1 = wg_engine_sequence_base(e);
  uint64_t empty = wg_engine_table_sequence(e, NULL, "a");
  ASSERT_OK(one_put(c, "a", ids123, 3, 1, &err), &err);
  ASSERT_OK(one_put(c, "b", ids45, 2, 1, &err), &err);
  ASSERT_OK(one_put(c, "A", ids6, 1, 1, &err), &err);
  uint64_t a1 = wg_engine_table_sequence(e, "MAIN", "a");
  uint64_t b1 = wg_engine_table_sequence(e, NULL, "B");
  wg_engine_release(e, c);
  wg_engine_on_commit_remove(e, on_commit, &r);
  wg_engine_close(e);
  sleep(1);
  struct wg_engine *e2 = open_engine("seq", 2, 0);
  ASSERT_TRUE(e2 != NULL);
  uint64_t base2 = wg_engine_sequence_base(e2);
  wg_engine_close(e2);
  ASSERT_TRUE(base1 >= (uint64_t)before << 20 && base1 <= (uint64_t)after << 20);
  ASSERT_EQ(base1 & ((1u << 20) - 1), 0);
  ASSERT_TRUE(base1 < (uint64_t)1 << 53);
  ASSERT_EQ(empty, base1);
  ASSERT_EQ(r.n, 3);
  ASSERT_EQ(r.ev[0].sequence, base1 + 1);
  ASSERT_EQ(r.ev[1].sequence, base1 + 1);
  ASSERT_EQ(r.ev[2].sequence, base1 + 2);
  ASSERT_EQ(a1, base1 + 2);
  ASSERT_EQ(b1, base1 + 1);
  ASSERT_TRUE(base2 > a1);
  recorder_free(&r);
}

/* A database remembers its last run's base: a run whose clock is behind it (a VM resumed, NTP
 * stepping back) starts 2^32 past that base, never among the numbers of an earlier run. Here the
 * last run "was" 100000 s in the future. */
static void a_clock_set_back_still_gives_a_new_run_higher_numbers(void) {
  struct wg_engine *e = open_engine("clock", 2, 0);
  ASSERT_TRUE(e != NULL);
  struct wg_engine_conn *c;
  struct wg_error err = {{0}};
  ASSERT_OK(wg_engine_acquire(e, &c, &err), &err);
  uint64_t future = ((uint64_t)time(NULL) + 100000) << 20;
  char sql[200];
  snprintf(sql, sizeof(sql),
           "DELETE FROM wigeon_internal.runs; INSERT INTO wigeon_internal.runs VALUES (%llu)",
           (unsigned long long)future);
  duckdb_result r;
  ASSERT_EQ(duckdb_query(wg_engine_conn_duckdb(c), sql, &r), DuckDBSuccess);
  duckdb_destroy_result(&r);
  wg_engine_release(e, c);
  wg_engine_close(e);
  struct wg_engine *e2 = open_engine("clock", 2, 0);
  ASSERT_TRUE(e2 != NULL);
  uint64_t base2 = wg_engine_sequence_base(e2);
  wg_engine_close(e2);
  struct wg_engine *e3 = open_engine("clock", 2, 0);
  ASSERT_TRUE(e3 != NULL);
  uint64_t base3 = wg_engine_sequence_base(e3);
  wg_engine_close(e3);
  ASSERT_EQ(base2, future + ((uint64_t)1 << 32));
  ASSERT_EQ(base3, base2 + ((uint64_t)1 << 32));
  ASSERT_TRUE(base3 < (uint64_t)1 << 53);
}

/* 256 BIGINTs are 2048 bytes: with a cap of 5000, a put of two such batches keeps them, one of
 * three (6144) gives a dropped event with its rows counted; the group path too. */
static void a_put_over_the_cap_gives_a_dropped_event(void) {
  struct wg_engine *e = open_engine("cap", 3, 5000);
  ASSERT_TRUE(e != NULL);
  struct recorder r;
  recorder_init(&r);
  struct wg_error err = {{0}};
  ASSERT_OK(wg_engine_on_commit(e, on_commit, &r, &err), &err);
  struct wg_engine_conn *c, *g;
  ASSERT_OK(wg_engine_acquire(e, &c, &err), &err);
  ASSERT_OK(wg_engine_acquire(e, &g, &err), &err);
  int64_t v[256];
  for (int i = 0; i < 256; i++)
    v[i] = i;
  ASSERT_OK(one_put(c, "t", v, 256, 2, &err), &err);
  ASSERT_OK(one_put(c, "t", v, 256, 3, &err), &err);
  struct ArrowSchema s;
  x_schema(&s);
  struct wg_engine_ingest *ings[2];
  for (int i = 0; i < 2; i++) {
    ASSERT_OK(wg_engine_ingest_begin_deferred(c, NULL, "t", &s, &ings[i], &err), &err);
    for (int k = 0; k < (i == 0 ? 1 : 3); k++) {
      struct ArrowArray b;
      x_batch(v, 256, &b);
      ASSERT_OK(wg_engine_ingest_append(ings[i], &b, &err), &err);
    }
  }
  wg_schema_release(&s);
  int status[2];
  int64_t rows[2];
  struct wg_error errs[2];
  wg_engine_ingest_commit_group(g, ings, 2, status, rows, errs);
  int64_t total = count_rows(c, "SELECT count(*) FROM t");
  wg_engine_release(e, c);
  wg_engine_release(e, g);
  wg_engine_on_commit_remove(e, on_commit, &r);
  wg_engine_close(e);
  ASSERT_EQ(status[0], 0);
  ASSERT_EQ(status[1], 0);
  ASSERT_EQ(total, 256 * (2 + 3 + 1 + 3));
  ASSERT_EQ(r.n, 4);
  static const int64_t want_rows[] = {512, 768, 256, 768};
  static const bool want_dropped[] = {false, true, false, true};
  for (int i = 0; i < 4; i++) {
    ASSERT_EQ(r.ev[i].rows, want_rows[i]);
    ASSERT_EQ(r.ev[i].dropped, want_dropped[i]);
    ASSERT_EQ(r.ev[i].n_batches, want_dropped[i] ? 0 : want_rows[i] / 256);
    ASSERT_EQ(r.ev[i].n_ids, want_dropped[i] ? 0 : want_rows[i]);
  }
  ASSERT_EQ(r.ev[0].ids[511], 255);
  recorder_free(&r);
}

/* No subscriber, a snapshot that is not a SELECT, a snapshot on a connection with a stream open:
 * EINVAL, at_point not called, commit_mu not left held. */
static void tail_begin_refuses_what_it_cannot_start(void) {
  struct wg_engine *e = open_engine("refusals", 2, 0);
  ASSERT_TRUE(e != NULL);
  struct wg_error err = {{0}};
  struct wg_engine_conn *c;
  ASSERT_OK(wg_engine_acquire(e, &c, &err), &err);
  ASSERT_OK(wg_engine_execute(c, "CREATE TABLE t (x BIGINT)", NULL, &err), &err);
  struct point pt = {0};
  struct wg_engine_tail_start st = {.table = "t", .conn = c, .snapshot_sql = "SELECT x FROM t",
                                    .at_point = at_point, .ctx = &pt};
  struct ArrowArrayStream snap;
  int no_sub = wg_engine_tail_begin(e, &st, &snap, &err);
  struct recorder r;
  recorder_init(&r);
  ASSERT_OK(wg_engine_on_commit(e, on_commit, &r, &err), &err);
  st.snapshot_sql = "INSERT INTO t VALUES (1)";
  int not_select = wg_engine_tail_begin(e, &st, &snap, &err);
  st.snapshot_sql = "SELECT nope FROM t";
  int bad_sql = wg_engine_tail_begin(e, &st, &snap, &err);
  struct ArrowArrayStream open;
  ASSERT_OK(wg_engine_query_open(c, "SELECT 1", 0, &open, &err), &err);
  st.snapshot_sql = "SELECT x FROM t";
  int busy = wg_engine_tail_begin(e, &st, &snap, &err);
  open.release(&open);
  ASSERT_OK(one_put(c, "t", ids123, 3, 1, &err), &err); /* commit_mu is free */
  int64_t n = count_rows(c, "SELECT count(*) FROM t");
  ASSERT_OK(wg_engine_tail_begin(e, &st, &snap, &err), &err);
  int64_t *ids = NULL, k = 0, cap = 0;
  int64_t got = read_ids(&snap, &ids, &k, &cap);
  snap.release(&snap);
  free(ids);
  wg_engine_on_commit_remove(e, on_commit, &r);
  wg_engine_release(e, c);
  wg_engine_close(e);
  ASSERT_EQ(no_sub, EINVAL);
  ASSERT_EQ(not_select, EINVAL);
  ASSERT_TRUE(bad_sql != 0);
  ASSERT_EQ(busy, EINVAL);
  ASSERT_EQ(n, 3);
  ASSERT_EQ(got, 3);
  ASSERT_EQ(pt.calls, 1);
  ASSERT_EQ(pt.sequence, r.ev[0].sequence);
  recorder_free(&r);
}

int main(void) {
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/wg_engine_tail_XXXXXX");
  if (mkdtemp(tmpdir) == NULL) return 1;
  RUN_TEST(duckdb_fixes_a_snapshot_at_prepare_not_at_begin);
  RUN_TEST(a_tail_waits_for_puts_begun_before_the_subscription);
  RUN_TEST(a_tail_times_out_on_a_put_that_outlasts_its_wait);
  RUN_TEST(snapshot_and_events_hold_every_row_once);
  RUN_TEST(sequences_start_above_a_base_that_grows_across_runs);
  RUN_TEST(a_clock_set_back_still_gives_a_new_run_higher_numbers);
  RUN_TEST(a_put_over_the_cap_gives_a_dropped_event);
  RUN_TEST(tail_begin_refuses_what_it_cannot_start);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", tmpdir);
  TEST_SUMMARY();
}
