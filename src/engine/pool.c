/* wigeon: the engine's connection pool (see engine.h). Three budgets fixed at open: the calls'
 * connections (a fixed array made at open; acquire waits on a condition variable, bounded by
 * acquire_timeout_ms and max_waiting), the reserved ones (group committers) and the pinned
 * sessions' (both made when taken, closed when given back, only counted). One mutex (engine->mu)
 * guards them all; it is never held across a DuckDB call.
 *
 * A calls' connection:
 *
 *     free --acquire--> in use --release--> free (rolled back / replaced if the SQL left state)
 *                         |
 *                         +--detach--> detached (its place gets a fresh connection)
 *                                         --release--> closed
 *
 *   acquire -> wg_engine_acquire, release -> wg_engine_release, detach -> wg_engine_conn_detach.
 * A reserved or pinned connection: made --release--> closed.
 *
 * Debug builds check that a thread serving calls (wg_engine_thread_serves_calls) holds at most
 * one calls' connection: a thread-local count, raised by acquire and lowered by release or
 * detach (a detached connection no longer takes a place in the pool, so it cannot block it). */
#include "common/dcheck.h"
#include "engine/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CONNECTIONS 4096

static _Thread_local int thread_held;           /* calls' connections this thread holds */
static _Thread_local bool thread_serves_calls; /* wg_engine_thread_serves_calls was called */

void wg_engine_thread_serves_calls(void) {
  thread_serves_calls = true;
}

static void count_in(struct wg_engine_conn *c) {
  WG_DCHECK(!thread_serves_calls || thread_held == 0);
  thread_held++;
  c->counted = true;
  c->holder = pthread_self();
}

/* Given back (or detached) by another thread than its holder, it stays in the holder's count:
 * callers that serve calls give back their own. */
static void count_out(struct wg_engine_conn *c) {
  if (!c->counted) return;
  c->counted = false;
  if (pthread_equal(c->holder, pthread_self())) thread_held--;
}

int wg__engine_pool_init(struct wg_engine *e, const struct wg_engine_options *o,
                         struct wg_error *err) {
  int n = o->connections > 0 ? o->connections : 8;
  int reserved = o->reserved_connections > 0 ? o->reserved_connections : 0;
  int sessions = o->max_sessions > 0 ? o->max_sessions : 0;
  if (n > MAX_CONNECTIONS)
    return wg_error_set(err, EINVAL, "pool of %d connections is too large", n);
  if (reserved > MAX_CONNECTIONS || sessions > MAX_CONNECTIONS)
    return wg_error_set(err, EINVAL, "%d reserved connections and %d sessions: at most %d each",
                        reserved, sessions, MAX_CONNECTIONS);
  e->budgets[WG__POOL_CALLS].limit = n;
  e->budgets[WG__POOL_RESERVED].limit = reserved;
  e->budgets[WG__POOL_SESSIONS].limit = sessions;
  e->max_waiting = o->max_waiting;
  e->acquire_timeout_ms =
      o->acquire_timeout_ms == 0 ? WG_ENGINE_DEFAULT_ACQUIRE_TIMEOUT_MS : o->acquire_timeout_ms;
  pthread_mutex_init(&e->mu, NULL);
  pthread_condattr_t cattr;
  pthread_condattr_init(&cattr);
  pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
  pthread_cond_init(&e->cv, &cattr); /* acquire's timeout */
  pthread_condattr_destroy(&cattr);
  return 0;
}

/* A connection of `budget`, not yet in any list. */
static int connect_one(struct wg_engine *e, int budget, struct wg_engine_conn **out,
                       struct wg_error *err) {
  *out = NULL;
  struct wg_engine_conn *c = calloc(1, sizeof(*c));
  if (c == NULL) return wg_error_set(err, ENOMEM, "out of memory for a DuckDB connection");
  c->engine = e;
  c->budget = budget;
  if (duckdb_connect(e->db, &c->conn) != DuckDBSuccess) {
    free(c);
    return wg_error_set(err, EIO, "duckdb_connect failed");
  }
  *out = c;
  return 0;
}

int wg__engine_pool_connect(struct wg_engine *e, struct wg_error *err) {
  int n = e->budgets[WG__POOL_CALLS].limit;
  e->conns = calloc((size_t)n, sizeof(*e->conns));
  if (e->conns == NULL) return wg_error_set(err, ENOMEM, "out of memory for %d connections", n);
  for (int i = 0; i < n; i++) {
    int rc = connect_one(e, WG__POOL_CALLS, &e->conns[i], err);
    if (rc != 0) return wg_error_prefix(err, rc, "connection %d of %d", i, n);
    e->n_conns++;
  }
  e->n_free = n;
  return 0;
}

void wg__engine_pool_free(struct wg_engine *e, bool broken) {
  for (int i = 0; i < e->n_conns; i++) {
    if (!broken) duckdb_disconnect(&e->conns[i]->conn);
    free(e->conns[i]);
  }
  free(e->conns);
  e->conns = NULL;
  e->n_conns = 0;
  pthread_cond_destroy(&e->cv);
  pthread_mutex_destroy(&e->mu);
}

/* "30 s", "300 ms": the wait named in acquire's timeout. */
static void wait_text(int64_t ms, char *out, size_t size) {
  if (ms % 1000 == 0)
    snprintf(out, size, "%lld s", (long long)(ms / 1000));
  else
    snprintf(out, size, "%lld ms", (long long)ms);
}

int wg_engine_acquire(struct wg_engine *e, struct wg_engine_conn **out, struct wg_error *err) {
  *out = NULL;
  if (e == NULL) return wg_error_set(err, EINVAL, "acquire: NULL engine");
  pthread_mutex_lock(&e->mu);
  if (e->n_free == 0 && e->max_waiting > 0 && e->waiting >= e->max_waiting) {
    int waiting = e->waiting;
    pthread_mutex_unlock(&e->mu);
    return wg_error_set(err, EBUSY,
                        "server busy: %d calls waiting for one of %d DuckDB connections", waiting,
                        e->n_conns);
  }
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  if (e->acquire_timeout_ms > 0) {
    until.tv_sec += (time_t)(e->acquire_timeout_ms / 1000);
    until.tv_nsec += (long)(e->acquire_timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
  }
  e->waiting++;
  bool timed_out = false;
  while (e->n_free == 0 && !timed_out) {
    if (e->acquire_timeout_ms < 0)
      pthread_cond_wait(&e->cv, &e->mu);
    else
      timed_out = pthread_cond_timedwait(&e->cv, &e->mu, &until) == ETIMEDOUT && e->n_free == 0;
  }
  e->waiting--;
  if (timed_out) {
    int in_use = e->n_conns - e->n_free;
    pthread_mutex_unlock(&e->mu);
    char waited[32];
    wait_text(e->acquire_timeout_ms, waited, sizeof(waited));
    return wg_error_set(err, EBUSY, "server busy: no DuckDB connection free after %s (%d in use)",
                        waited, in_use);
  }
  for (int i = 0; i < e->n_conns; i++) {
    if (!e->conns[i]->in_use) {
      e->conns[i]->in_use = true;
      atomic_store(&e->conns[i]->interrupted, false);
      e->n_free--;
      *out = e->conns[i];
      break;
    }
  }
  pthread_mutex_unlock(&e->mu);
  count_in(*out);
  return 0;
}

/* A connection of the reserved or sessions budget: refused at once when the budget is used up. */
static int acquire_counted(struct wg_engine *e, int budget, struct wg_engine_conn **out,
                           struct wg_error *err) {
  *out = NULL;
  if (e == NULL) return wg_error_set(err, EINVAL, "acquire: NULL engine");
  struct wg__pool_budget *b = &e->budgets[budget];
  pthread_mutex_lock(&e->mu);
  int limit = b->limit, in_use = b->in_use;
  bool room = in_use < limit;
  if (room) b->in_use++;
  pthread_mutex_unlock(&e->mu);
  if (!room && budget == WG__POOL_SESSIONS)
    return wg_error_set(err, EBUSY,
                        "server busy: %d pinned sessions already open, the most this server "
                        "keeps (--max-sessions)",
                        in_use);
  if (!room)
    return wg_error_set(err, EBUSY, "all %d reserved DuckDB connections are taken", limit);
  int rc = connect_one(e, budget, out, err);
  if (rc != 0) {
    pthread_mutex_lock(&e->mu);
    b->in_use--;
    pthread_mutex_unlock(&e->mu);
  }
  return rc;
}

int wg_engine_acquire_reserved(struct wg_engine *e, struct wg_engine_conn **out,
                               struct wg_error *err) {
  return acquire_counted(e, WG__POOL_RESERVED, out, err);
}

int wg_engine_acquire_pinned(struct wg_engine *e, struct wg_engine_conn **out,
                             struct wg_error *err) {
  return acquire_counted(e, WG__POOL_SESSIONS, out, err);
}

void wg_engine_release_pinned(struct wg_engine *e, struct wg_engine_conn *c) {
  wg_engine_release(e, c);
}

int wg_engine_pinned_count(struct wg_engine *e) {
  pthread_mutex_lock(&e->mu);
  int n = e->budgets[WG__POOL_SESSIONS].in_use;
  pthread_mutex_unlock(&e->mu);
  return n;
}

int wg_engine_conn_detach(struct wg_engine *e, struct wg_engine_conn *c, struct wg_error *err) {
  if (e == NULL || c == NULL) return wg_error_set(err, EINVAL, "detach: NULL connection");
  if (c->detached) return 0;
  struct wg_engine_conn *fresh;
  int rc = connect_one(e, WG__POOL_CALLS, &fresh, err);
  if (rc != 0) return wg_error_prefix(err, rc, "a replacement connection");
  pthread_mutex_lock(&e->mu);
  for (int i = 0; i < e->n_conns; i++) {
    if (e->conns[i] != c) continue;
    e->conns[i] = fresh;
    c->detached = true;
    e->n_free++;
    pthread_cond_signal(&e->cv);
    break;
  }
  pthread_mutex_unlock(&e->mu);
  if (!c->detached) { /* not one of ours: nothing to replace */
    duckdb_disconnect(&fresh->conn);
    free(fresh);
    return wg_error_set(err, EINVAL, "detach: the connection is not in the pool");
  }
  count_out(c); /* out of the pool: holding it blocks no one's acquire */
  return 0;
}

/* Closes a connection that is in no list (detached, reserved, pinned), giving back its budget's
 * place. */
static void close_outside(struct wg_engine *e, struct wg_engine_conn *c) {
  if (c->txn_maybe || c->session_dirty) wg__engine_tables_may_change(e);
  count_out(c);
  if (c->budget != WG__POOL_CALLS) {
    pthread_mutex_lock(&e->mu);
    e->budgets[c->budget].in_use--;
    pthread_mutex_unlock(&e->mu);
  }
  duckdb_disconnect(&c->conn);
  free(c);
}

void wg_engine_release(struct wg_engine *e, struct wg_engine_conn *c) {
  if (e == NULL || c == NULL) return;
  if (c->detached || c->budget != WG__POOL_CALLS) { /* its place went to a fresh one, or none */
    close_outside(e, c);
    return;
  }
  if (c->txn_maybe) {
    /* DuckDB cannot tell us whether a transaction is open: roll back and ignore "no transaction
     * is active". */
    wg__engine_rollback(c);
    c->txn_maybe = false;
    wg__engine_tables_may_change(e); /* the transaction may have held DDL */
  }
  if (c->session_dirty) {
    /* Temp tables, SET search_path, variables and prepared statements belong to the DuckDB
     * connection, and the next call on it may come from another client: start it afresh. */
    duckdb_connection fresh = NULL;
    if (duckdb_connect(e->db, &fresh) == DuckDBSuccess) {
      duckdb_disconnect(&c->conn);
      c->conn = fresh;
    }
    c->session_dirty = false;
    wg__engine_tables_may_change(e); /* names may have resolved to its temp tables */
  }
  count_out(c);
  pthread_mutex_lock(&e->mu);
  if (c->in_use) {
    c->in_use = false;
    e->n_free++;
    pthread_cond_signal(&e->cv);
  }
  pthread_mutex_unlock(&e->mu);
}

duckdb_connection wg_engine_conn_duckdb(struct wg_engine_conn *c) {
  return c->conn;
}

void wg_engine_interrupt(struct wg_engine_conn *c) {
  if (c == NULL) return;
  atomic_store(&c->interrupted, true);
  duckdb_interrupt(c->conn);
}

void wg_engine_interrupt_clear(struct wg_engine_conn *c) {
  if (c != NULL) atomic_store(&c->interrupted, false);
}

void wg_engine_conn_session_txn(struct wg_engine_conn *c, bool open) {
  if (c == NULL) return;
  c->session_txn = open;
  c->session_wrote = false;
}

bool wg_engine_conn_session_wrote(const struct wg_engine_conn *c) {
  return c != NULL && c->session_wrote;
}
