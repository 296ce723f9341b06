/* wigeon: the engine side of a live tail (engine.h, wg_engine_tail_begin): a table's view fixed
 * at one commit point, so that a snapshot and the commit events after it meet with no gap and no
 * overlap. Relies on events.c (commit_mu, the sequences, the count of puts without batches), on
 * query.c for the snapshot's stream (its chunk source hook runs at the point, between prepare and
 * execution) and on tables.c for table keys. Nothing calls back here. */
#include "engine/ingest_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t wg_engine_table_sequence(struct wg_engine *e, const char *schema_name, const char *table) {
  if (e == NULL) return 0;
  char *key = table != NULL ? wg__engine_table_key(schema_name, table) : NULL;
  pthread_mutex_lock(&e->commit_mu);
  uint64_t last = wg__engine_last_sequence(e, key);
  pthread_mutex_unlock(&e->commit_mu);
  free(key);
  return last;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Step 1 of wg_engine_tail_begin: until no put of the table without batches is in flight (they
 * only end: every put begun now keeps its batches), looking every millisecond. */
static int wait_for_unkept_puts(struct wg_engine *e, const struct wg_engine_tail_start *s,
                                const char *key, struct wg_error *err) {
  int64_t deadline = s->wait_ms >= 0 ? now_ms() + s->wait_ms : INT64_MAX;
  int n;
  while ((n = wg__engine_events_unkept(e, key)) > 0) {
    if (now_ms() >= deadline)
      return wg_error_set(err, ETIMEDOUT,
                          "tail of %s%s%s: a put begun before the subscription is still running "
                          "(%d such puts after %lld ms); try again once it has ended",
                          s->schema_name ? s->schema_name : "", s->schema_name ? "." : "",
                          s->table, n, (long long)s->wait_ms);
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  return 0;
}

/* The point itself, called with commit_mu held: the caller's at_point with the table's sequence,
 * then commit_mu goes. */
struct tail_point {
  struct wg_engine *e;
  const struct wg_engine_tail_start *s;
  const char *key;
  bool locked; /* commit_mu still held */
};

static void at_point(struct tail_point *t) {
  t->s->at_point(t->s->ctx, wg__engine_last_sequence(t->e, t->key));
  pthread_mutex_unlock(&t->e->commit_mu);
  t->locked = false;
}

/* The snapshot's chunk source (wg__engine_query_open_chunks), run once its statement is prepared
 * in the transaction begun for it, still under commit_mu: the point, then the query starts. */
static int snapshot_chunks(void *ctx, struct wg_engine_conn *c, duckdb_prepared_statement *p,
                           struct ArrowArrayStream *chunks, struct wg_error *err) {
  struct tail_point *t = ctx;
  if (duckdb_prepared_statement_type(*p) != DUCKDB_STATEMENT_TYPE_SELECT)
    return wg_error_set(err, EINVAL, "the snapshot of a tail must be one SELECT");
  if (!c->txn_maybe) /* BEGIN failed: the query would run in a transaction of its own, later */
    return wg_error_set(err, EIO, "the snapshot of a tail could not begin its transaction");
  at_point(t);
  return wg_engine_query_arrow_stream_prepared(c->conn, p, &c->interrupted, chunks, err);
}

static int check_start(struct wg_engine *e, const struct wg_engine_tail_start *s,
                       struct ArrowArrayStream *snapshot, struct wg_error *err) {
  if (e == NULL || s == NULL || s->table == NULL || s->at_point == NULL)
    return wg_error_set(err, EINVAL, "tail begin: NULL engine, start, table or at_point");
  if (s->snapshot_sql != NULL) {
    struct wg_engine_conn *c = s->conn;
    if (c == NULL || snapshot == NULL || c->engine != e)
      return wg_error_set(err, EINVAL, "tail begin: a snapshot needs a connection of this "
                                       "engine and a stream to fill");
    WG_RETURN_NOT_OK(wg__engine_conn_idle(c, err));
    if (c->session_txn || c->txn_maybe)
      return wg_error_set(err, EINVAL, "tail begin: the snapshot's connection may have a "
                                       "transaction open; it needs one of its own");
  }
  if (atomic_load(&e->n_subs) == 0)
    return wg_error_set(err, EINVAL, "tail begin: no commit subscriber is registered, so puts "
                                     "begun from now on would keep no batches");
  return 0;
}

int wg_engine_tail_begin(struct wg_engine *e, const struct wg_engine_tail_start *s,
                         struct ArrowArrayStream *snapshot, struct wg_error *err) {
  if (snapshot != NULL) memset(snapshot, 0, sizeof(*snapshot));
  WG_RETURN_NOT_OK(check_start(e, s, snapshot, err));
  char *key = wg__engine_table_key(s->schema_name, s->table);
  if (key == NULL) return wg_error_set(err, ENOMEM, "out of memory for a tail");
  int rc = wait_for_unkept_puts(e, s, key, err);
  if (rc != 0) {
    free(key);
    return rc;
  }
  struct tail_point t = {.e = e, .s = s, .key = key, .locked = true};
  pthread_mutex_lock(&e->commit_mu); /* no other engine lock held: see engine_internal.h */
  if (s->snapshot_sql == NULL) {
    at_point(&t);
  } else {
    rc = wg__engine_query_open_chunks(s->conn, s->snapshot_sql, s->target_rows, s->target_bytes,
                                      NULL, NULL, snapshot_chunks, &t, snapshot, err);
    if (t.locked) pthread_mutex_unlock(&e->commit_mu); /* it failed before the point */
  }
  free(key);
  return rc;
}
