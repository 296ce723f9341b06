/* wigeon: commit events (engine.h, wg_engine_on_commit), through the engine API on a real DuckDB
 * database: one event per committed put on the streaming and the group path (its put-by-put
 * fallback too), in commit order, sequence numbers per table from the run's base + 1
 * (wg_engine_table_sequence telling the last), the batches exactly what was put (and kept by the
 * subscriber past the call), and no event for a put that failed, was aborted or rolled back, for
 * one begun before anyone subscribed, nor for client SQL. */
#include <pthread.h>
#include <stdbool.h>

#include "arrow/array.h"
#include "engine/engine.h"
#include "test.h"

#define MAX_EVENTS 256
#define MAX_VALUES 64

/* What a subscriber saw of one event; the batches' values are read during the call. */
struct seen {
  char table[64];
  bool has_schema;
  uint64_t sequence;
  bool dropped;
  int64_t rows, n_batches;
  int64_t values[MAX_VALUES]; /* column 0 of every batch, in order */
  int64_t n_values;
  int64_t committed; /* count(*) of the table during the call (checker connection) */
};

struct recorder {
  pthread_mutex_t mu; /* the test's own: calls come from several threads in the concurrent test */
  struct seen ev[MAX_EVENTS];
  int n;
  struct wg_engine_conn *checker; /* when set: count(*) of the table during each call */
  bool keep_first;                /* move the first batch of the first event out and keep it */
  struct ArrowArray kept;
};

static void recorder_init(struct recorder *r) {
  memset(r, 0, sizeof(*r));
  pthread_mutex_init(&r->mu, NULL);
}

static void recorder_free(struct recorder *r) {
  if (r->kept.release != NULL) r->kept.release(&r->kept);
  pthread_mutex_destroy(&r->mu);
}

static int64_t count_rows(struct wg_engine_conn *c, const char *table) {
  char sql[128];
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", table);
  duckdb_result res;
  int64_t n = -1;
  if (duckdb_query(wg_engine_conn_duckdb(c), sql, &res) == DuckDBSuccess)
    n = duckdb_value_int64(&res, 0, 0);
  duckdb_destroy_result(&res);
  return n;
}

static void on_commit(void *ctx, struct wg_engine_commit_event *ev) {
  struct recorder *r = ctx;
  pthread_mutex_lock(&r->mu);
  if (r->n < MAX_EVENTS) {
    struct seen *s = &r->ev[r->n];
    snprintf(s->table, sizeof(s->table), "%s", ev->table ? ev->table : "(null)");
    s->has_schema = ev->schema != NULL && ev->schema->n_children == 1;
    s->sequence = ev->sequence;
    s->dropped = ev->dropped;
    s->rows = ev->rows;
    s->n_batches = ev->n_batches;
    for (int64_t b = 0; b < ev->n_batches; b++) {
      const struct ArrowArray *a = &ev->batches[b];
      const struct ArrowArray *col = a->children[0];
      const int64_t *v = col->buffers[1];
      for (int64_t i = 0; i < a->length && s->n_values < MAX_VALUES; i++)
        s->values[s->n_values++] = v[col->offset + i];
    }
    s->committed = r->checker != NULL ? count_rows(r->checker, s->table) : -1;
    if (r->keep_first && r->n == 0 && ev->n_batches > 0) {
      r->kept = ev->batches[0]; /* moved out: ours now */
      ev->batches[0].release = NULL;
    }
    r->n++;
  }
  pthread_mutex_unlock(&r->mu);
}

static struct wg_engine *open_engine(int conns) {
  struct wg_engine_options o = {0};
  o.connections = conns;
  struct wg_engine *e = NULL;
  struct wg_error err = {{0}};
  if (wg_engine_open(&e, &o, &err) != 0) fprintf(stderr, "  open: %s\n", err.message);
  return e;
}

/* A struct schema of one BIGINT column "x". */
static void x_schema(struct ArrowSchema *s) {
  wg_schema_node_init(s, "+s", 1, NULL);
  wg_schema_node_init(s->children[0], "l", 0, NULL);
  wg_schema_set_name(s->children[0], "x");
}

/* A batch of n values of column x (the values must outlive every share of the batch). */
static void x_batch(const int64_t *values, int64_t n, struct ArrowArray *out) {
  wg_array_node_init(out, 1, 1, NULL);
  out->length = n;
  wg_array_node_init(out->children[0], 2, 0, NULL);
  out->children[0]->length = n;
  out->children[0]->buffers[1] = values;
}

/* A streaming put of one batch per values[i] (lens[i] values each), committed. */
static int stream_put(struct wg_engine_conn *c, const char *table, const int64_t *const *values,
                      const int64_t *lens, int n, const char *key, struct wg_error *err) {
  struct ArrowSchema s;
  x_schema(&s);
  struct wg_engine_ingest *ing = NULL;
  int rc = wg_engine_ingest_begin(c, NULL, table, &s, &ing, err);
  wg_schema_release(&s);
  if (rc != 0) return rc;
  if (key != NULL) rc = wg_engine_ingest_set_key(ing, key, err);
  for (int i = 0; i < n && rc == 0; i++) {
    struct ArrowArray b;
    x_batch(values[i], lens[i], &b);
    rc = wg_engine_ingest_append(ing, &b, err);
  }
  if (rc != 0) {
    wg_engine_ingest_abort(ing);
    return rc;
  }
  int64_t rows;
  return wg_engine_ingest_commit(ing, &rows, err);
}

static const int64_t v123[] = {1, 2, 3}, v45[] = {4, 5}, v6[] = {6}, v78[] = {7, 8};

static void streaming_puts_give_one_event_each_with_the_batches_put(void) {
  struct wg_engine *e = open_engine(2);
  ASSERT_TRUE(e != NULL);
  struct recorder r;
  recorder_init(&r);
  r.keep_first = true;
  struct wg_error err = {{0}};
  ASSERT_OK(wg_engine_on_commit(e, on_commit, &r, &err), &err);
  struct wg_engine_conn *c;
  ASSERT_OK(wg_engine_acquire(e, &c, &err), &err);
  const int64_t *two[] = {v123, v45}, *one[] = {v6}, *other[] = {v78};
  const int64_t two_lens[] = {3, 2}, one_len[] = {1}, other_len[] = {2};
  ASSERT_OK(stream_put(c, "t", two, two_lens, 2, NULL, &err), &err);
  ASSERT_OK(stream_put(c, "u", other, other_len, 1, NULL, &err), &err);
  ASSERT_OK(stream_put(c, "T", one, one_len, 1, NULL, &err), &err); /* the same table as "t" */
  uint64_t base = wg_engine_sequence_base(e);
  uint64_t t_last = wg_engine_table_sequence(e, "main", "T");
  uint64_t u_last = wg_engine_table_sequence(e, NULL, "u");
  uint64_t none = wg_engine_table_sequence(e, NULL, "nothing");
  wg_engine_release(e, c);
  wg_engine_close(e); /* the kept batch outlives the engine */
  ASSERT_TRUE(base > 0);
  ASSERT_EQ(t_last, base + 2);
  ASSERT_EQ(u_last, base + 1);
  ASSERT_EQ(none, base);
  ASSERT_EQ(r.n, 3);
  ASSERT_STREQ(r.ev[0].table, "t");
  ASSERT_EQ(r.ev[0].sequence, base + 1);
  ASSERT_TRUE(!r.ev[0].dropped);
  ASSERT_EQ(r.ev[0].rows, 5);
  ASSERT_EQ(r.ev[0].n_batches, 2);
  ASSERT_TRUE(r.ev[0].has_schema);
  ASSERT_EQ(r.ev[0].n_values, 5);
  for (int i = 0; i < 5; i++)
    ASSERT_EQ(r.ev[0].values[i], i + 1);
  ASSERT_STREQ(r.ev[1].table, "u");
  ASSERT_EQ(r.ev[1].sequence, base + 1); /* per table */
  ASSERT_EQ(r.ev[1].values[1], 8);
  ASSERT_STREQ(r.ev[2].table, "T");
  ASSERT_EQ(r.ev[2].sequence, base + 2);
  ASSERT_EQ(r.ev[2].rows, 1);
  ASSERT_EQ(r.ev[2].values[0], 6);
  ASSERT_TRUE(r.kept.release != NULL);
  ASSERT_EQ(r.kept.length, 3);
  ASSERT_EQ(((const int64_t *)r.kept.children[0]->buffers[1])[r.kept.children[0]->offset + 2], 3);
  recorder_free(&r);
}

/* Deferred puts ings[i] = one batch of vals[i] (lens[i] values) into tables[i]. */
static int deferred_puts(struct wg_engine_conn *const *conns, const char *const *tables,
                         const int64_t *const *vals, const int64_t *lens, const char *const *keys,
                         int n, struct wg_engine_ingest **ings, struct wg_error *err) {
  struct ArrowSchema s;
  x_schema(&s);
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    rc = wg_engine_ingest_begin_deferred(conns[i], NULL, tables[i], &s, &ings[i], err);
    if (rc == 0 && keys != NULL && keys[i] != NULL)
      rc = wg_engine_ingest_set_key(ings[i], keys[i], err);
    struct ArrowArray b;
    x_batch(vals[i], lens[i], &b);
    if (rc == 0) rc = wg_engine_ingest_append(ings[i], &b, err);
  }
  wg_schema_release(&s);
  return rc;
}

/* A group of three puts, then a group whose second put repeats an idempotency key: the group
 * fails, the fallback commits the others alone, and the failed put gives no event. */
static void grouped_puts_give_one_event_per_committed_put(void) {
  struct wg_engine *e = open_engine(4);
  ASSERT_TRUE(e != NULL);
  struct recorder r;
  recorder_init(&r);
  struct wg_error err = {{0}};
  ASSERT_OK(wg_engine_on_commit(e, on_commit, &r, &err), &err);
  struct wg_engine_conn *cs[4];
  for (int i = 0; i < 4; i++)
    ASSERT_OK(wg_engine_acquire(e, &cs[i], &err), &err);
  struct wg_engine_ingest *ings[3];
  int status[3];
  int64_t rows[3];
  struct wg_error errs[3];
  const char *tables[] = {"t", "u", "t"};
  const int64_t *vals[] = {v123, v45, v6};
  const int64_t lens[] = {3, 2, 1};
  ASSERT_OK(deferred_puts(cs, tables, vals, lens, NULL, 3, ings, &err), &err);
  wg_engine_ingest_commit_group(cs[3], ings, 3, status, rows, errs);
  for (int i = 0; i < 3; i++)
    ASSERT_EQ(status[i], 0);
  ASSERT_EQ(r.n, 3);
  const char *keys[] = {"k1", "k1", NULL};
  const char *tables2[] = {"t", "t", "u"};
  const int64_t *vals2[] = {v78, v6, v123};
  const int64_t lens2[] = {2, 1, 3};
  ASSERT_OK(deferred_puts(cs, tables2, vals2, lens2, keys, 3, ings, &err), &err);
  wg_engine_ingest_commit_group(cs[3], ings, 3, status, rows, errs);
  int64_t t_rows = count_rows(cs[3], "t"), u_rows = count_rows(cs[3], "u");
  uint64_t base = wg_engine_sequence_base(e);
  for (int i = 0; i < 4; i++)
    wg_engine_release(e, cs[i]);
  wg_engine_close(e);
  ASSERT_EQ(status[0], 0);
  ASSERT_EQ(status[1], EEXIST);
  ASSERT_EQ(status[2], 0);
  ASSERT_EQ(t_rows, 4 + 2);
  ASSERT_EQ(u_rows, 2 + 3);
  ASSERT_EQ(r.n, 5); /* three, then two: none for the put that failed */
  static const char *want_table[] = {"t", "u", "t", "t", "u"};
  static const uint64_t want_seq[] = {1, 1, 2, 3, 2};
  static const int64_t want_rows[] = {3, 2, 1, 2, 3}, want_first[] = {1, 4, 6, 7, 1};
  for (int i = 0; i < 5; i++) {
    ASSERT_STREQ(r.ev[i].table, want_table[i]);
    ASSERT_EQ(r.ev[i].sequence, base + want_seq[i]);
    ASSERT_EQ(r.ev[i].rows, want_rows[i]);
    ASSERT_EQ(r.ev[i].n_batches, 1);
    ASSERT_EQ(r.ev[i].n_values, want_rows[i]);
    ASSERT_EQ(r.ev[i].values[0], want_first[i]);
  }
  ASSERT_EQ(r.ev[3].values[1], 8);
  recorder_free(&r);
}

static void failed_aborted_and_unsubscribed_puts_give_no_event(void) {
  struct wg_engine *e = open_engine(3);
  ASSERT_TRUE(e != NULL);
  struct recorder r;
  recorder_init(&r);
  struct wg_error err = {{0}};
  struct wg_engine_conn *c, *c2, *c3;
  ASSERT_OK(wg_engine_acquire(e, &c, &err), &err);
  ASSERT_OK(wg_engine_acquire(e, &c2, &err), &err);
  ASSERT_OK(wg_engine_acquire(e, &c3, &err), &err);
  struct ArrowSchema s;
  x_schema(&s);
  /* begun before anyone subscribed: committed, but no event */
  struct wg_engine_ingest *early = NULL;
  ASSERT_OK(wg_engine_ingest_begin(c2, NULL, "t", &s, &early, &err), &err);
  ASSERT_OK(wg_engine_on_commit(e, on_commit, &r, &err), &err);
  struct ArrowArray b;
  x_batch(v45, 2, &b);
  ASSERT_OK(wg_engine_ingest_append(early, &b, &err), &err);
  int64_t rows;
  ASSERT_OK(wg_engine_ingest_commit(early, &rows, &err), &err);
  /* aborted */
  struct wg_engine_ingest *ing = NULL;
  ASSERT_OK(wg_engine_ingest_begin(c, NULL, "t", &s, &ing, &err), &err);
  x_batch(v123, 3, &b);
  ASSERT_OK(wg_engine_ingest_append(ing, &b, &err), &err);
  wg_engine_ingest_abort(ing);
  /* rolled back at commit: its idempotency key is there already */
  const int64_t *one[] = {v6};
  const int64_t one_len[] = {1};
  ASSERT_OK(stream_put(c, "t", one, one_len, 1, "dup", &err), &err);
  ASSERT_EQ(stream_put(c, "t", one, one_len, 1, "dup", &err), EEXIST);
  /* failed before its group commit */
  struct wg_engine_ingest *g[1];
  int status[1];
  int64_t grows[1];
  struct wg_error gerr[1];
  ASSERT_OK(wg_engine_ingest_begin_deferred(c2, NULL, "t", &s, &g[0], &err), &err);
  x_batch(v78, 2, &b);
  ASSERT_OK(wg_engine_ingest_append(g[0], &b, &err), &err);
  wg_engine_ingest_fail(g[0], ECANCELED);
  wg_engine_ingest_commit_group(c3, g, 1, status, grows, gerr);
  /* client SQL that modifies data fires none (engine.h) */
  int64_t changed = 0;
  ASSERT_OK(wg_engine_execute(c, "INSERT INTO t VALUES (100), (101)", &changed, &err), &err);
  ASSERT_EQ(changed, 2);
  int n_subscribed = r.n;
  /* after remove, nothing */
  wg_engine_on_commit_remove(e, on_commit, &r);
  ASSERT_OK(stream_put(c, "t", one, one_len, 1, NULL, &err), &err);
  int64_t total = count_rows(c, "t");
  uint64_t base = wg_engine_sequence_base(e);
  wg_schema_release(&s);
  wg_engine_release(e, c);
  wg_engine_release(e, c2);
  wg_engine_release(e, c3);
  wg_engine_close(e);
  ASSERT_EQ(status[0], ECANCELED);
  ASSERT_EQ(total, 2 + 1 + 2 + 1);
  ASSERT_EQ(n_subscribed, 1); /* only the "dup" put that committed */
  ASSERT_EQ(r.n, 1);
  ASSERT_EQ(r.ev[0].sequence, base + 1);
  ASSERT_EQ(r.ev[0].rows, 1);
  ASSERT_EQ(r.ev[0].values[0], 6);
  recorder_free(&r);
}

#define PUTS_PER_THREAD 25

struct putter {
  struct wg_engine *e;
  int64_t value; /* each put is one row of this value */
  int failures;
};

static void *putter_run(void *arg) {
  struct putter *p = arg;
  for (int i = 0; i < PUTS_PER_THREAD; i++) {
    struct wg_engine_conn *c;
    struct wg_error err;
    if (wg_engine_acquire(p->e, &c, &err) != 0) {
      p->failures++;
      continue;
    }
    const int64_t *vals[] = {&p->value};
    const int64_t len[] = {1};
    int rc = stream_put(c, "t", vals, len, 1, NULL, &err);
    if (rc == EAGAIN) /* a conflict with the other thread: try again */
      rc = stream_put(c, "t", vals, len, 1, NULL, &err);
    if (rc != 0) p->failures++;
    wg_engine_release(p->e, c);
  }
  return NULL;
}

/* Two threads putting into one table: every commit gives exactly one event, the sequence numbers
 * are 1..N in delivery order, and during event k the table holds exactly the rows of events 1..k
 * (events follow the commit order). */
static void concurrent_puts_give_events_in_commit_order(void) {
  struct wg_engine *e = open_engine(3);
  ASSERT_TRUE(e != NULL);
  struct recorder r;
  recorder_init(&r);
  struct wg_error err = {{0}};
  struct wg_engine_conn *c;
  ASSERT_OK(wg_engine_acquire(e, &c, &err), &err);
  ASSERT_OK(wg_engine_execute(c, "CREATE TABLE t (x BIGINT)", NULL, &err), &err);
  r.checker = c;
  ASSERT_OK(wg_engine_on_commit(e, on_commit, &r, &err), &err);
  struct putter p[2] = {{e, 1, 0}, {e, 2, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    pthread_create(&th[i], NULL, putter_run, &p[i]);
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  int64_t total = count_rows(c, "t");
  uint64_t base = wg_engine_sequence_base(e);
  wg_engine_release(e, c);
  wg_engine_close(e);
  ASSERT_EQ(p[0].failures + p[1].failures, 0);
  ASSERT_EQ(total, 2 * PUTS_PER_THREAD);
  ASSERT_EQ(r.n, 2 * PUTS_PER_THREAD);
  int ones = 0;
  for (int k = 0; k < r.n; k++) {
    ASSERT_EQ(r.ev[k].sequence, base + (uint64_t)k + 1);
    ASSERT_EQ(r.ev[k].committed, k + 1);
    ASSERT_EQ(r.ev[k].n_values, 1);
    ones += r.ev[k].values[0] == 1;
  }
  ASSERT_EQ(ones, PUTS_PER_THREAD);
  recorder_free(&r);
}

int main(void) {
  RUN_TEST(streaming_puts_give_one_event_each_with_the_batches_put);
  RUN_TEST(grouped_puts_give_one_event_per_committed_put);
  RUN_TEST(failed_aborted_and_unsubscribed_puts_give_no_event);
  RUN_TEST(concurrent_puts_give_events_in_commit_order);
  TEST_SUMMARY();
}
