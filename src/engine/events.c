/* wigeon: commit events (engine.h, wg_engine_on_commit): the subscribers, each table's sequence
 * number, the count of puts in flight that keep no batches, and the delivery of one committed put
 * to every subscriber. Delivery runs under commit_mu, which the committing thread holds from its
 * COMMIT to the last subscriber: that is what keeps sequence numbers and deliveries in commit
 * order. Relies on slice.c for the batches handed out (a fresh refcounted slice of each kept batch
 * per subscriber: no copy). */
#include "engine/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct wg__commit_sub {
  wg_engine_commit_cb cb;
  void *ctx;
};

struct wg__table_seq {
  char *key; /* wg__engine_table_key */
  uint64_t last;
};

struct wg__unkept_table {
  char *key; /* wg__engine_table_key */
  int n;     /* > 0: an entry goes when its last put ends */
};

void wg__engine_events_init(struct wg_engine *e, int64_t max_put_bytes) {
  pthread_mutex_init(&e->commit_mu, NULL);
  atomic_init(&e->n_subs, 0);
  pthread_mutex_init(&e->unkept_mu, NULL);
  time_t now = time(NULL);
  e->seq_base = (uint64_t)(now > 0 ? now : 0) << 20; /* engine.h "Commit events": sequence */
  e->events_max_put_bytes =
      max_put_bytes > 0 ? max_put_bytes : WG_ENGINE_DEFAULT_EVENTS_MAX_PUT_BYTES;
}

void wg__engine_events_free(struct wg_engine *e) {
  free(e->subs);
  e->subs = NULL;
  for (int i = 0; i < e->n_seqs; i++)
    free(e->seqs[i].key);
  free(e->seqs);
  e->seqs = NULL;
  e->n_seqs = e->cap_seqs = 0;
  for (int i = 0; i < e->n_unkept; i++)
    free(e->unkept[i].key);
  free(e->unkept);
  e->unkept = NULL;
  e->n_unkept = e->cap_unkept = 0;
  pthread_mutex_destroy(&e->unkept_mu);
  pthread_mutex_destroy(&e->commit_mu);
}

/* The entry of table `key` in e->unkept, -1 when none (unkept_mu held). */
static int unkept_find(const struct wg_engine *e, const char *key) {
  for (int i = 0; key != NULL && i < e->n_unkept; i++)
    if (strcmp(e->unkept[i].key, key) == 0) return i;
  return -1;
}

/* Counts one more put of `key` (unkept_mu held); without memory for an entry it counts for every
 * table (unkept_any), and *key becomes NULL so that its end finds it there. */
static void unkept_add(struct wg_engine *e, const char **key) {
  int i = unkept_find(e, *key);
  if (i >= 0) {
    e->unkept[i].n++;
    return;
  }
  char *k = *key != NULL ? strdup(*key) : NULL;
  if (k != NULL && e->n_unkept == e->cap_unkept) {
    int cap = e->cap_unkept ? e->cap_unkept * 2 : 8;
    struct wg__unkept_table *u = realloc(e->unkept, (size_t)cap * sizeof(*u));
    if (u != NULL) {
      e->unkept = u;
      e->cap_unkept = cap;
    }
  }
  if (k == NULL || e->n_unkept == e->cap_unkept) {
    free(k);
    e->unkept_any++;
    *key = NULL;
    return;
  }
  e->unkept[e->n_unkept++] = (struct wg__unkept_table){k, 1};
}

bool wg__engine_events_put_begin(struct wg_engine *e, const char **key) {
  if (atomic_load(&e->n_subs) > 0) return true; /* keeping them is always safe */
  pthread_mutex_lock(&e->unkept_mu);            /* see engine_internal.h: the read goes under it */
  bool wanted = atomic_load(&e->n_subs) > 0;
  if (!wanted) unkept_add(e, key);
  pthread_mutex_unlock(&e->unkept_mu);
  return wanted;
}

void wg__engine_events_put_end(struct wg_engine *e, const char *key) {
  pthread_mutex_lock(&e->unkept_mu);
  int i = unkept_find(e, key);
  if (i < 0) {
    if (e->unkept_any > 0) e->unkept_any--;
  } else if (--e->unkept[i].n == 0) {
    free(e->unkept[i].key);
    e->unkept[i] = e->unkept[--e->n_unkept];
  }
  pthread_mutex_unlock(&e->unkept_mu);
}

int wg__engine_events_unkept(struct wg_engine *e, const char *key) {
  pthread_mutex_lock(&e->unkept_mu);
  int i = unkept_find(e, key);
  int n = e->unkept_any + (i >= 0 ? e->unkept[i].n : 0);
  pthread_mutex_unlock(&e->unkept_mu);
  return n;
}

/* A database file remembers its last run's base: a clock set back between two runs (a VM resumed,
 * NTP stepping) would otherwise give the new run numbers of the old one, and a client resuming
 * with an old run's sequence would be given a wrong place in the new run's history instead of
 * "earlier run". The new base is past the last one by 2^32 commits at least. */
int wg__engine_events_settle_base(struct wg_engine_conn *c, struct wg_error *err) {
  struct wg_engine *e = c->engine;
  WG_RETURN_NOT_OK(wg__engine_exec(
      c, "CREATE TABLE IF NOT EXISTS wigeon_internal.runs (sequence_base UBIGINT NOT NULL)", err));
  duckdb_result r;
  memset(&r, 0, sizeof(r));
  if (duckdb_query(c->conn, "SELECT max(sequence_base) FROM wigeon_internal.runs", &r) !=
      DuckDBSuccess) {
    int rc = wg__engine_result_error(&r, err);
    duckdb_destroy_result(&r);
    return rc;
  }
  uint64_t last = duckdb_value_is_null(&r, 0, 0) ? 0 : duckdb_value_uint64(&r, 0, 0);
  duckdb_destroy_result(&r);
  if (last != 0 && e->seq_base < last + ((uint64_t)1 << 32)) e->seq_base = last + ((uint64_t)1 << 32);
  char sql[160];
  snprintf(sql, sizeof(sql),
           "BEGIN; DELETE FROM wigeon_internal.runs; INSERT INTO wigeon_internal.runs VALUES "
           "(%llu); COMMIT",
           (unsigned long long)e->seq_base);
  int rc = wg__engine_exec(c, sql, err);
  if (rc != 0) wg__engine_exec(c, "ROLLBACK", NULL);
  return rc;
}

uint64_t wg_engine_sequence_base(struct wg_engine *e) {
  return e != NULL ? e->seq_base : 0;
}

int wg_engine_on_commit(struct wg_engine *e, wg_engine_commit_cb cb, void *ctx,
                        struct wg_error *err) {
  if (e == NULL || cb == NULL)
    return wg_error_set(err, EINVAL, "on_commit: NULL engine or callback");
  int rc = 0;
  pthread_mutex_lock(&e->commit_mu);
  int n = atomic_load(&e->n_subs);
  if (n == e->cap_subs) {
    int cap = e->cap_subs ? e->cap_subs * 2 : 4;
    struct wg__commit_sub *s = realloc(e->subs, (size_t)cap * sizeof(*s));
    if (s == NULL) {
      rc = wg_error_set(err, ENOMEM, "out of memory for a commit subscriber");
    } else {
      e->subs = s;
      e->cap_subs = cap;
    }
  }
  if (rc == 0) {
    e->subs[n] = (struct wg__commit_sub){cb, ctx};
    atomic_store(&e->n_subs, n + 1);
  }
  pthread_mutex_unlock(&e->commit_mu);
  return rc;
}

void wg_engine_on_commit_remove(struct wg_engine *e, wg_engine_commit_cb cb, void *ctx) {
  if (e == NULL) return;
  pthread_mutex_lock(&e->commit_mu);
  int n = atomic_load(&e->n_subs);
  for (int i = 0; i < n; i++) {
    if (e->subs[i].cb != cb || e->subs[i].ctx != ctx) continue;
    memmove(&e->subs[i], &e->subs[i + 1], (size_t)(n - i - 1) * sizeof(e->subs[0]));
    atomic_store(&e->n_subs, n - 1);
    break;
  }
  pthread_mutex_unlock(&e->commit_mu);
}

void wg__engine_commit_lock(struct wg_engine *e) {
  pthread_mutex_lock(&e->commit_mu);
}

void wg__engine_commit_unlock(struct wg_engine *e) {
  pthread_mutex_unlock(&e->commit_mu);
}

uint64_t wg__engine_last_sequence(struct wg_engine *e, const char *key) {
  for (int i = 0; key != NULL && i < e->n_seqs; i++)
    if (strcmp(e->seqs[i].key, key) == 0) return e->seqs[i].last;
  return e->seq_base;
}

/* The next sequence number of the table `key` (base + 1 for its first commit); 0 on ENOMEM. */
static uint64_t next_sequence(struct wg_engine *e, const char *key) {
  for (int i = 0; i < e->n_seqs; i++)
    if (strcmp(e->seqs[i].key, key) == 0) return ++e->seqs[i].last;
  if (e->n_seqs == e->cap_seqs) {
    int cap = e->cap_seqs ? e->cap_seqs * 2 : 16;
    struct wg__table_seq *s = realloc(e->seqs, (size_t)cap * sizeof(*s));
    if (s == NULL) return 0;
    e->seqs = s;
    e->cap_seqs = cap;
  }
  char *k = strdup(key);
  if (k == NULL) return 0;
  e->seqs[e->n_seqs++] = (struct wg__table_seq){k, e->seq_base + 1};
  return e->seq_base + 1;
}

/* Fresh slices of every batch of `put` into out[0..n): 0 or ENOMEM (none left set). */
static int share_batches(const struct wg__committed_put *put, struct ArrowArray *out) {
  for (int64_t i = 0; i < put->n_batches; i++) {
    const struct ArrowArray *b = wg__slice_owner_batch(put->batches[i]);
    if (wg__slice(put->batches[i], put->schema, 0, b->length, &out[i]) != 0) {
      while (i-- > 0)
        wg_array_release(&out[i]);
      return ENOMEM;
    }
  }
  return 0;
}

/* Called with commit_mu held (wg__engine_commit_lock), right after the put's COMMIT. A put that
 * let its batches go (put->dropped), or without memory for a subscriber's batches, gives the event
 * dropped, with no batches (rows still tells what was committed): the commit itself has happened
 * and cannot be undone. */
void wg__engine_commit_notify(struct wg_engine *e, const struct wg__committed_put *put) {
  int n = atomic_load(&e->n_subs);
  if (n == 0 || put->key == NULL) return;
  struct wg_engine_commit_event ev = {
      .schema_name = put->schema_name,
      .table = put->table,
      .sequence = next_sequence(e, put->key),
      .schema = put->schema,
      .rows = put->rows,
  };
  struct ArrowArray *batches =
      put->dropped ? NULL
                   : calloc((size_t)(put->n_batches > 0 ? put->n_batches : 1), sizeof(*batches));
  for (int s = 0; s < n; s++) {
    bool shared = batches != NULL && share_batches(put, batches) == 0;
    ev.batches = shared ? batches : NULL;
    ev.n_batches = shared ? put->n_batches : 0;
    ev.dropped = !shared;
    e->subs[s].cb(e->subs[s].ctx, &ev);
    for (int64_t i = 0; i < ev.n_batches; i++)
      wg_array_release(&batches[i]); /* those the subscriber did not move out */
  }
  free(batches);
}
