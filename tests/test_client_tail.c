/* wigeon tests: the live tail through the C client (wg_tail, wg_tail_open/next/cancel/close)
 * against a real server in this process on 127.0.0.1: the snapshot, the start marker, the puts
 * made meanwhile with their sequence numbers, a resume, a stop from the callback (the server
 * frees the subscriber), a cancel from another thread, the deadline and the server's errors. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "support/server_fixture.h"
#include "test.h"
#include "wigeon.h"

static struct wg_fx_server fx;
static wg_client *client;

#define ASSERT_WG_OK(expr, st)                                                                     \
  do {                                                                                             \
    int wg_code_ = (expr);                                                                         \
    if (wg_code_ != 0) {                                                                           \
      TEST_FAIL_("%s: %s: %s", #expr, wg_status_code_name(wg_code_), (st)->message);               \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Puts `batches` kv batches of `rows` rows (ids from first_batch) into table `table`. */
static int put_kv(const char *table, int64_t first_batch, int64_t batches, int64_t rows) {
  struct ArrowArrayStream in;
  if (wg_fx_seed_stream(first_batch, batches, rows, true, &in) != 0) return -1;
  struct wg_status st;
  int code = wg_put(client, NULL, table, &in, NULL, NULL, NULL, &st);
  if (code != 0) fprintf(stderr, "  put: %s\n", st.message);
  return code;
}

/* The server's "tail_subscribers" (stats), -1 when it cannot be read. */
static int64_t tail_subscribers(void) {
  struct wg_buf out;
  wg_buf_init(&out);
  struct wg_status st;
  int64_t n = -1;
  if (wg_fx_action(client, "stats", "", 0, &out, &st) == 0) {
    cJSON *j = cJSON_ParseWithLength((const char *)out.data, (size_t)out.size);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "tail_subscribers");
    if (cJSON_IsNumber(v)) n = (int64_t)v->valuedouble;
    cJSON_Delete(j);
  }
  wg_buf_reset(&out);
  return n;
}

/* ---- the stream: snapshot, marker, live puts in order, then a resume ---- */

static void tail_sends_the_snapshot_the_marker_then_each_put_with_rising_sequences(void) {
  ASSERT_EQ(put_kv("tk", 0, 2, 100), 0); /* the snapshot: 200 rows */
  struct wg_tail_options o = {.table = "tk", .timeout_ms = 30000};
  wg_tail_stream *t = NULL;
  struct wg_status st;
  ASSERT_WG_OK(wg_tail_open(client, &o, &t, &st), &st);
  const struct ArrowSchema *schema = wg_tail_schema(t);
  ASSERT_EQ(schema->n_children, 2);
  ASSERT_STREQ(schema->children[0]->name, "id");
  int64_t snapshot = 0;
  uint64_t start_seq = 0;
  struct ArrowArray b;
  struct wg_tail_info info;
  for (;;) { /* up to the marker */
    ASSERT_WG_OK(wg_tail_next(t, &b, &info, &st), &st);
    ASSERT_TRUE(b.release != NULL);
    int64_t n = b.length;
    b.release(&b);
    if (info.start) {
      ASSERT_EQ(n, 0);
      ASSERT_TRUE(!info.snapshot);
      start_seq = info.sequence;
      break;
    }
    ASSERT_TRUE(info.snapshot);
    snapshot += n;
  }
  ASSERT_EQ(snapshot, 200);
  ASSERT_TRUE(start_seq > 0);
  /* three puts, one at a time: each arrives, whole, with a sequence above the last */
  uint64_t last = start_seq;
  for (int p = 0; p < 3; p++) {
    ASSERT_EQ(put_kv("tk", 10 + p, 1, 50 + p), 0);
    int64_t got = 0;
    while (got < 50 + p) {
      ASSERT_WG_OK(wg_tail_next(t, &b, &info, &st), &st);
      ASSERT_TRUE(b.release != NULL);
      ASSERT_TRUE(!info.snapshot && !info.start);
      ASSERT_TRUE(info.sequence > last);
      got += b.length;
      b.release(&b);
    }
    ASSERT_EQ(got, 50 + p);
    ASSERT_TRUE(!info.more);
    last = info.sequence;
  }
  wg_tail_close(t);

  /* resuming after the marker's sequence: exactly the three puts' rows (50 + 51 + 52) */
  struct wg_tail_options r = {.table = "tk", .from_sequence_set = true,
                              .from_sequence = start_seq, .timeout_ms = 30000};
  ASSERT_WG_OK(wg_tail_open(client, &r, &t, &st), &st);
  int64_t resumed = 0;
  uint64_t seq = 0;
  while (resumed < 153) {
    ASSERT_WG_OK(wg_tail_next(t, &b, &info, &st), &st);
    ASSERT_TRUE(b.release != NULL);
    resumed += b.length;
    seq = info.sequence;
    b.release(&b);
  }
  ASSERT_EQ(resumed, 153);
  ASSERT_EQ(seq, last);
  wg_tail_close(t);
}

/* ---- the callback form: where, columns, a stop that frees the subscriber ---- */

struct seen {
  int64_t rows, batches, calls;
  int64_t stop_after; /* live rows */
  int64_t n_columns;
  bool bad_row;
};

static int on_batch(void *ctx, const struct ArrowSchema *schema, struct ArrowArray *batch,
                    const struct wg_tail_info *info) {
  struct seen *s = ctx;
  s->calls++;
  s->n_columns = schema->n_children;
  if (info->start || info->snapshot) return 0;
  s->rows += batch->length;
  s->batches++;
  const struct ArrowArray *id = batch->children[0];
  const int64_t *ids = id->buffers[1];
  for (int64_t i = 0; i < batch->length; i++) /* where id % 2 = 0 */
    if (ids[id->offset + batch->offset + i] % 2 != 0) s->bad_row = true;
  return s->rows >= s->stop_after;
}

struct putter {
  const char *table;
  atomic_bool stop;
  int64_t next;
};

static void *put_until_stopped(void *arg) {
  struct putter *p = arg;
  while (!atomic_load(&p->stop) && p->next < 200) {
    if (put_kv(p->table, 100 + p->next++, 1, 20) != 0) break;
    sleep_ms(20);
  }
  return NULL;
}

static void tail_callback_filters_on_the_server_and_a_stop_frees_the_subscriber(void) {
  ASSERT_EQ(put_kv("tc", 0, 1, 10), 0);
  const char *cols[] = {"id"};
  struct wg_tail_options o = {.table = "tc", .where = "id % 2 = 0", .columns = cols,
                              .n_columns = 1, .from = "now", .timeout_ms = 60000};
  struct putter p = {.table = "tc"};
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, put_until_stopped, &p), 0);
  struct seen s = {.stop_after = 100};
  struct wg_status st;
  int code = wg_tail(client, &o, on_batch, &s, &st);
  atomic_store(&p.stop, true);
  pthread_join(th, NULL);
  ASSERT_WG_OK(code, &st);
  ASSERT_TRUE(s.rows >= 100);
  ASSERT_EQ(s.n_columns, 1);
  ASSERT_TRUE(!s.bad_row);
  /* the stop cancelled the call: the server lets the subscriber go */
  int64_t n = -1;
  for (int i = 0; i < 500 && (n = tail_subscribers()) != 0; i++)
    sleep_ms(10);
  ASSERT_EQ(n, 0);
}

/* ---- ending it: a cancel from another thread, the deadline, the server's refusals ---- */

struct canceller {
  wg_tail_stream *t;
  int delay_ms;
};

static void *cancel_later(void *arg) {
  struct canceller *c = arg;
  sleep_ms(c->delay_ms);
  wg_tail_cancel(c->t);
  return NULL;
}

static void tail_cancel_from_another_thread_ends_a_waiting_next_without_error(void) {
  struct wg_tail_options o = {.table = "tk", .from = "now"};
  wg_tail_stream *t = NULL;
  struct wg_status st;
  ASSERT_WG_OK(wg_tail_open(client, &o, &t, &st), &st);
  struct ArrowArray b;
  struct wg_tail_info info;
  ASSERT_WG_OK(wg_tail_next(t, &b, &info, &st), &st); /* the marker; then nothing comes */
  ASSERT_TRUE(info.start);
  b.release(&b);
  struct canceller c = {t, 300};
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, cancel_later, &c), 0);
  time_t t0 = time(NULL);
  int code = wg_tail_next(t, &b, &info, &st);
  pthread_join(th, NULL);
  ASSERT_WG_OK(code, &st);
  ASSERT_TRUE(b.release == NULL);
  ASSERT_TRUE(time(NULL) - t0 < 10);
  wg_tail_close(t);
  int64_t n = -1;
  for (int i = 0; i < 500 && (n = tail_subscribers()) != 0; i++)
    sleep_ms(10);
  ASSERT_EQ(n, 0);
}

static int count_batches(void *ctx, const struct ArrowSchema *schema, struct ArrowArray *batch,
                         const struct wg_tail_info *info) {
  (void)schema, (void)batch, (void)info;
  ++*(int *)ctx;
  return 0;
}

static void tail_ends_deadline_exceeded_and_reports_the_servers_refusals(void) {
  int calls = 0;
  struct wg_status st;
  struct wg_tail_options o = {.table = "tk", .from = "now", .timeout_ms = 500};
  ASSERT_EQ(wg_tail(client, &o, count_batches, &calls, &st), WG_STATUS_DEADLINE_EXCEEDED);
  ASSERT_EQ(calls, 1); /* the start marker */

  struct wg_tail_options bad = {.table = "tk", .where = "no_such_column = 1"};
  ASSERT_EQ(wg_tail(client, &bad, count_batches, &calls, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_TRUE(strstr(st.message, "no_such_column") != NULL);
  struct wg_tail_options missing = {.table = "no_such_table"};
  ASSERT_EQ(wg_tail(client, &missing, count_batches, &calls, &st), WG_STATUS_NOT_FOUND);
  struct wg_tail_options from = {.table = "tk", .from = "yesterday"};
  ASSERT_EQ(wg_tail(client, &from, count_batches, &calls, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_EQ(calls, 1);
  /* a sequence ahead of the table's (the marker's plus 1000) */
  wg_tail_stream *t = NULL;
  ASSERT_WG_OK(wg_tail_open(client, &o, &t, &st), &st);
  struct ArrowArray b;
  struct wg_tail_info info;
  ASSERT_WG_OK(wg_tail_next(t, &b, &info, &st), &st);
  ASSERT_TRUE(info.start);
  b.release(&b);
  wg_tail_close(t);
  struct wg_tail_options ahead = {.table = "tk", .from_sequence_set = true,
                                  .from_sequence = info.sequence + 1000};
  ASSERT_EQ(wg_tail(client, &ahead, count_batches, &calls, &st), WG_STATUS_OUT_OF_RANGE);
  ASSERT_EQ(calls, 1);

  /* refused here, before any call */
  const char *null_col[] = {"id", NULL};
  struct wg_tail_options cols = {.table = "tk", .columns = null_col, .n_columns = 2};
  ASSERT_EQ(wg_tail(client, &cols, count_batches, &calls, &st), WG_STATUS_INVALID_ARGUMENT);
  struct wg_tail_options none = {0};
  ASSERT_EQ(wg_tail(client, &none, count_batches, &calls, &st), WG_STATUS_INVALID_ARGUMENT);
  ASSERT_EQ(wg_tail(client, &o, NULL, NULL, &st), WG_STATUS_INVALID_ARGUMENT);
}

int main(void) {
  struct wg_server_options so = {.threads = 4};
  if (wg_fx_server_start(&fx, &so) != 0) return 1;
  struct wg_status st;
  if (wg_fx_connect(&client, fx.uri, &st) != 0) return 1;

  RUN_TEST(tail_sends_the_snapshot_the_marker_then_each_put_with_rising_sequences);
  RUN_TEST(tail_callback_filters_on_the_server_and_a_stop_frees_the_subscriber);
  RUN_TEST(tail_cancel_from_another_thread_ends_a_waiting_next_without_error);
  RUN_TEST(tail_ends_deadline_exceeded_and_reports_the_servers_refusals);

  wg_disconnect(client);
  wg_fx_server_stop(&fx);
  return TEST_SUMMARY();
}
