/* wigeon: Flight SQL transactions and the connection of each Flight SQL call (see fsql.h and
 * docs/server.md "Sessions for Flight SQL"). A transaction is a pinned connection (the engine's
 * sessions budget, --max-sessions) with BEGIN TRANSACTION run on it, named by 16 random bytes and
 * owned by the client that began it (wg__fsql_owner). Calls that carry its id use its connection
 * one at a time; one nobody used for --session-idle-timeout is rolled back by a sweeper thread.
 *
 *   BeginTransaction -> [idle] <-> [busy: one call]   (conn_acquire / conn_release)
 *   [idle] --EndTransaction (waits like a call)--> COMMIT or ROLLBACK -> closed
 *   [idle] --idle timeout (sweeper)--> closed (rolled back);  server stop -> every one closed
 * A transaction leaves the list (and so can no longer be found) before its connection is closed,
 * always by the thread that took it out, never while a call uses it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "server/fsql.h"

#define END_COMMIT \
  ARROW__FLIGHT__PROTOCOL__SQL__ACTION_END_TRANSACTION_REQUEST__END_TRANSACTION__END_TRANSACTION_COMMIT
#define END_ROLLBACK \
  ARROW__FLIGHT__PROTOCOL__SQL__ACTION_END_TRANSACTION_REQUEST__END_TRANSACTION__END_TRANSACTION_ROLLBACK

enum { TXN_ID_LEN = 16, OWNER_LEN = 160, WAIT_SLICE_MS = 100, N_ENDED = 256 };

struct wg__fsql_txn {
  uint8_t id[TXN_ID_LEN];
  char owner[OWNER_LEN];
  struct wg_engine_conn *conn;
  bool busy;        /* a call is using conn */
  int64_t used_ms;  /* monotonic time of the last call's end (or the begin) */
  struct wg__fsql_txn *next;
};

struct wg__fsql_txns {
  pthread_mutex_t mu;
  pthread_cond_t free_cv;  /* a transaction stopped being busy */
  pthread_cond_t sweep_cv; /* wakes the sweeper at stop */
  struct wg__fsql_txn *head;
  int64_t idle_ms;
  bool stopping, sweeper_started;
  pthread_t sweeper;
  /* Transactions their clients ended lately (a ring), each with the next one the same client
   * began after it: see "successors" below. */
  struct wg__fsql_ended {
    uint8_t id[TXN_ID_LEN], next[TXN_ID_LEN];
    bool used, has_next;
    char owner[OWNER_LEN];
  } ended[N_ENDED];
  int next_ended;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* CLOCK_REALTIME deadline ms from now (pthread_cond_timedwait's clock). */
static struct timespec deadline_in(int64_t ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  return ts;
}

/* Ends a transaction taken out of the list: closing the pinned connection rolls back whatever it
 * has not committed. */
static void txn_close(struct wg_server *s, struct wg__fsql_txn *t) {
  if (t == NULL) return;
  wg_engine_release_pinned(s->engine, t->conn);
  free(t);
}

/* Takes out of the list every idle transaction unused for idle_ms; returns them (linked). Under
 * mu. */
static struct wg__fsql_txn *take_expired(struct wg__fsql_txns *ts, int64_t now) {
  struct wg__fsql_txn *out = NULL, **pp = &ts->head;
  while (*pp != NULL) {
    struct wg__fsql_txn *t = *pp;
    if (!t->busy && now - t->used_ms >= ts->idle_ms) {
      *pp = t->next;
      t->next = out;
      out = t;
    } else {
      pp = &t->next;
    }
  }
  return out;
}

static void close_all(struct wg_server *s, struct wg__fsql_txn *list) {
  while (list != NULL) {
    struct wg__fsql_txn *next = list->next;
    txn_close(s, list);
    list = next;
  }
}

/* Rolls back abandoned transactions, so that none holds DuckDB's locks for ever: every
 * idle_ms / 4 (10 ms to 1 s). */
static void *sweeper_main(void *arg) {
  struct wg_server *s = arg;
  struct wg__fsql_txns *ts = s->fsql->txns;
  int64_t period = ts->idle_ms / 4;
  if (period < 10) period = 10;
  if (period > 1000) period = 1000;
  pthread_mutex_lock(&ts->mu);
  while (!ts->stopping) {
    struct timespec until = deadline_in(period);
    pthread_cond_timedwait(&ts->sweep_cv, &ts->mu, &until);
    if (ts->stopping) break;
    struct wg__fsql_txn *expired = take_expired(ts, now_ms());
    pthread_mutex_unlock(&ts->mu);
    close_all(s, expired); /* outside mu: closing may wait for DuckDB */
    pthread_mutex_lock(&ts->mu);
  }
  pthread_mutex_unlock(&ts->mu);
  return NULL;
}

int wg__fsql_txn_init(struct wg_server *s, struct wg_error *err) {
  struct wg__fsql_txns *ts = calloc(1, sizeof(*ts));
  if (ts == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  pthread_mutex_init(&ts->mu, NULL);
  pthread_cond_init(&ts->free_cv, NULL);
  pthread_cond_init(&ts->sweep_cv, NULL);
  ts->idle_ms = s->options.session_idle_timeout_ms > 0 ? s->options.session_idle_timeout_ms
                                                       : 300000;
  s->fsql->txns = ts;
  if (pthread_create(&ts->sweeper, NULL, sweeper_main, s) != 0)
    return wg_error_set(err, EAGAIN, "cannot start the transactions' sweeper thread");
  ts->sweeper_started = true;
  return 0;
}

void wg__fsql_txn_fini(struct wg_server *s) {
  struct wg__fsql_txns *ts = s->fsql != NULL ? s->fsql->txns : NULL;
  if (ts == NULL) return;
  pthread_mutex_lock(&ts->mu);
  ts->stopping = true;
  pthread_cond_broadcast(&ts->sweep_cv);
  pthread_mutex_unlock(&ts->mu);
  if (ts->sweeper_started) pthread_join(ts->sweeper, NULL);
  /* the calls have ended (the rpc server is gone): every transaction is idle; roll them back */
  close_all(s, ts->head);
  ts->head = NULL;
  pthread_cond_destroy(&ts->free_cv);
  pthread_cond_destroy(&ts->sweep_cv);
  pthread_mutex_destroy(&ts->mu);
  free(ts);
  s->fsql->txns = NULL;
}

/* Successors. ADBC's Flight SQL driver prepares a statement once, with the transaction id of the
 * moment (CommandPreparedStatementQuery/Update carry none), and runs it again after commit() or
 * rollback(), which end that transaction and begin the next: the prepared statement names an
 * ended transaction while its client means its current one. So an id its client ended (with
 * EndTransaction: not one that expired) stands for the next transaction the same client began
 * after it, when there is one. Under mu. */
static void note_ended(struct wg__fsql_txns *ts, const struct wg__fsql_txn *t) {
  struct wg__fsql_ended *e = &ts->ended[ts->next_ended];
  ts->next_ended = (ts->next_ended + 1) % N_ENDED;
  memcpy(e->id, t->id, TXN_ID_LEN);
  memcpy(e->owner, t->owner, OWNER_LEN);
  e->used = true;
  e->has_next = false;
}

static void note_begun(struct wg__fsql_txns *ts, const struct wg__fsql_txn *t) {
  for (int i = 0; i < N_ENDED; i++) {
    struct wg__fsql_ended *e = &ts->ended[i];
    if (e->used && !e->has_next && strcmp(e->owner, t->owner) == 0) {
      memcpy(e->next, t->id, TXN_ID_LEN);
      e->has_next = true;
    }
  }
}

/* The open transaction of id for owner, following successors (at most N_ENDED of them). */
static struct wg__fsql_txn *find_open(struct wg__fsql_txns *ts, const uint8_t *id,
                                      const char *owner, bool follow) {
  uint8_t want[TXN_ID_LEN];
  memcpy(want, id, TXN_ID_LEN);
  for (int hop = 0; hop <= (follow ? N_ENDED : 0); hop++) {
    for (struct wg__fsql_txn *t = ts->head; t != NULL; t = t->next)
      if (memcmp(t->id, want, TXN_ID_LEN) == 0) return strcmp(t->owner, owner) == 0 ? t : NULL;
    const struct wg__fsql_ended *e = NULL;
    for (int i = 0; i < N_ENDED && e == NULL; i++)
      if (ts->ended[i].used && memcmp(ts->ended[i].id, want, TXN_ID_LEN) == 0) e = &ts->ended[i];
    if (e == NULL || !e->has_next || strcmp(e->owner, owner) != 0) return NULL;
    memcpy(want, e->next, TXN_ID_LEN);
  }
  return NULL;
}

/* The transaction of `id` for this caller (or its successor, when `follow`: not to end one),
 * made busy (the caller's until txn_put), waiting while
 * another call uses it: at most the acquire timeout, and not past a cancel of the call. ENOENT for
 * an unknown, ended, expired or another client's id (the same answer: an id tells nothing about
 * other clients), EBUSY after the wait. */
static int txn_take(struct wg_server *s, const struct wg_rpc_call *call, const uint8_t *id,
                    size_t len, bool follow, struct wg__fsql_txn **out, struct wg_error *err) {
  struct wg__fsql_txns *ts = s->fsql->txns;
  char owner[OWNER_LEN];
  wg__fsql_owner(call, owner, sizeof(owner));
  int64_t limit = s->options.acquire_timeout_ms, start = now_ms();
  pthread_mutex_lock(&ts->mu);
  for (;;) {
    struct wg__fsql_txn *t = len == TXN_ID_LEN ? find_open(ts, id, owner, follow) : NULL;
    if (t == NULL) {
      pthread_mutex_unlock(&ts->mu);
      return wg_error_set(err, ENOENT,
                          "unknown transaction id: it was committed or rolled back, expired "
                          "after %llds unused (--session-idle-timeout), was begun by another "
                          "client, or was never begun",
                          (long long)(ts->idle_ms / 1000));
    }
    if (!t->busy) {
      t->busy = true;
      t->used_ms = now_ms();
      pthread_mutex_unlock(&ts->mu);
      wg_engine_interrupt_clear(t->conn); /* a cancel of the previous call is over */
      *out = t;
      return 0;
    }
    int64_t waited = now_ms() - start;
    if ((limit >= 0 && waited >= limit) || (call != NULL && wg_rpc_call_cancelled(call))) {
      pthread_mutex_unlock(&ts->mu);
      if (call != NULL && wg_rpc_call_cancelled(call))
        return wg_error_set(err, ECANCELED, "cancelled while waiting for the transaction");
      return wg_error_set(err, EBUSY,
                          "transaction busy: another call has used it for all of %lld ms (a "
                          "transaction serves one call at a time)",
                          (long long)waited);
    }
    int64_t slice = limit >= 0 && limit - waited < WAIT_SLICE_MS ? limit - waited : WAIT_SLICE_MS;
    struct timespec until = deadline_in(slice);
    pthread_cond_timedwait(&ts->free_cv, &ts->mu, &until);
  }
}

/* Gives a busy transaction back: idle again, its idle time starting now. */
static void txn_put(struct wg_server *s, struct wg__fsql_txn *t) {
  struct wg__fsql_txns *ts = s->fsql->txns;
  pthread_mutex_lock(&ts->mu);
  t->busy = false;
  t->used_ms = now_ms();
  pthread_cond_broadcast(&ts->free_cv);
  pthread_mutex_unlock(&ts->mu);
}

/* Takes a busy transaction (the caller's) out of the list, so that it can be ended; `by_client`:
 * ended by its client (EndTransaction), so that the next one it begins succeeds it. */
static void txn_unlink(struct wg_server *s, struct wg__fsql_txn *t, bool by_client) {
  struct wg__fsql_txns *ts = s->fsql->txns;
  pthread_mutex_lock(&ts->mu);
  if (by_client) note_ended(ts, t);
  for (struct wg__fsql_txn **pp = &ts->head; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  }
  pthread_cond_broadcast(&ts->free_cv); /* its waiters find it gone: NOT_FOUND */
  pthread_mutex_unlock(&ts->mu);
}

int wg__fsql_conn_acquire(struct wg_server *s, const struct wg_rpc_call *call, bool has_txn,
                          ProtobufCBinaryData txn_id, struct wg__fsql_conn *out,
                          struct wg_error *err) {
  out->conn = NULL;
  out->txn = NULL;
  if (!has_txn || txn_id.len == 0) return wg_engine_acquire(s->engine, &out->conn, err);
  struct wg__fsql_txn *t = NULL;
  WG_RETURN_NOT_OK(txn_take(s, call, txn_id.data, txn_id.len, true, &t, err));
  out->conn = t->conn;
  out->txn = t;
  return 0;
}

void wg__fsql_conn_release(struct wg_server *s, struct wg__fsql_conn *c) {
  if (c->txn != NULL) txn_put(s, c->txn);
  else if (c->conn != NULL) wg_engine_release(s->engine, c->conn);
  c->conn = NULL;
  c->txn = NULL;
}

int wg__fsql_txn_end_client(struct wg_server *s, const struct wg_rpc_call *call) {
  struct wg__fsql_txns *ts = s->fsql->txns;
  char owner[OWNER_LEN];
  wg__fsql_owner(call, owner, sizeof(owner));
  struct wg__fsql_txn *out = NULL, **pp = &ts->head;
  int n = 0;
  pthread_mutex_lock(&ts->mu);
  while (*pp != NULL) {
    struct wg__fsql_txn *t = *pp;
    if (!t->busy && strcmp(t->owner, owner) == 0) { /* a busy one expires later */
      *pp = t->next;
      t->next = out;
      out = t;
      n++;
    } else {
      pp = &t->next;
    }
  }
  pthread_cond_broadcast(&ts->free_cv);
  pthread_mutex_unlock(&ts->mu);
  close_all(s, out);
  return n;
}

/* ---- actions --------------------------------------------------------------------------------- */
int wg__fsql_action_begin_transaction(struct wg_server *s, struct wg_rpc_call *call,
                                      const ProtobufCBinaryData *body, struct wg_error *err) {
  ProtobufCMessage *req = NULL;
  WG_RETURN_NOT_OK(wg__fsql_action_unpack(
      body, &arrow__flight__protocol__sql__action_begin_transaction_request__descriptor, true,
      "BeginTransaction", &req, err));
  protobuf_c_message_free_unpacked(req, NULL); /* it has no fields */
  struct wg__fsql_txns *ts = s->fsql->txns;
  pthread_mutex_lock(&ts->mu); /* first free the places of abandoned ones */
  struct wg__fsql_txn *expired = take_expired(ts, now_ms());
  pthread_mutex_unlock(&ts->mu);
  close_all(s, expired);
  struct wg__fsql_txn *t = calloc(1, sizeof(*t));
  if (t == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  int rc = wg_engine_acquire_pinned(s->engine, &t->conn, err);
  if (rc == EBUSY)
    rc = wg_error_set(err, EBUSY,
                      "server busy: %d transactions already open, the most this server keeps "
                      "(--max-sessions); end one (commit or roll back) first",
                      s->options.max_sessions);
  if (rc == 0) rc = wg_engine_execute(t->conn, "BEGIN TRANSACTION", NULL, err);
  if (rc == 0) wg_engine_conn_session_txn(t->conn, true); /* no COMMIT as SQL from now on */
  if (rc == 0 && getrandom(t->id, TXN_ID_LEN, 0) != TXN_ID_LEN)
    rc = wg_error_set(err, EIO, "cannot draw a random transaction id");
  if (rc != 0) {
    txn_close(s, t);
    return rc;
  }
  wg__fsql_owner(call, t->owner, sizeof(t->owner));
  t->busy = true; /* ours until the result is sent: not yet to be swept */
  t->used_ms = now_ms();
  pthread_mutex_lock(&ts->mu);
  t->next = ts->head;
  ts->head = t;
  note_begun(ts, t);
  pthread_mutex_unlock(&ts->mu);
  Arrow__Flight__Protocol__Sql__ActionBeginTransactionResult r =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_BEGIN_TRANSACTION_RESULT__INIT;
  r.has_transaction_id = 1;
  r.transaction_id.data = t->id;
  r.transaction_id.len = TXN_ID_LEN;
  rc = wg__fsql_action_result(call, &r.base, true, err);
  if (rc != 0) { /* the client never learnt the id: nobody could end it */
    txn_unlink(s, t, false);
    txn_close(s, t);
    return rc;
  }
  txn_put(s, t);
  return 0;
}

int wg__fsql_action_end_transaction(struct wg_server *s, struct wg_rpc_call *call,
                                    const ProtobufCBinaryData *body, struct wg_error *err) {
  Arrow__Flight__Protocol__Sql__ActionEndTransactionRequest *req = NULL;
  WG_RETURN_NOT_OK(wg__fsql_action_unpack(
      body, &arrow__flight__protocol__sql__action_end_transaction_request__descriptor, true,
      "EndTransaction", (ProtobufCMessage **)&req, err));
  int action = req->has_action ? (int)req->action : 0;
  int rc = 0;
  if (action != END_COMMIT && action != END_ROLLBACK)
    rc = wg_error_set(err, EINVAL, "EndTransaction: action must be END_TRANSACTION_COMMIT or "
                                   "END_TRANSACTION_ROLLBACK, not %d", action);
  else if (!req->has_transaction_id || req->transaction_id.len == 0)
    rc = wg_error_set(err, EINVAL, "EndTransaction: no transaction_id");
  struct wg__fsql_txn *t = NULL;
  if (rc == 0) rc = txn_take(s, call, req->transaction_id.data, req->transaction_id.len, false, &t,
                          err);
  protobuf_c_message_free_unpacked(&req->base, NULL);
  if (rc != 0) return rc;
  txn_unlink(s, t, true); /* from here no call finds it: it ends whatever COMMIT says */
  bool commit = action == END_COMMIT;
  /* DuckDB aborts a transaction on a failed statement and then takes its COMMIT silently as a
   * rollback: ask first, so that the client is not told its writes committed */
  struct wg_error probe = {""};
  if (commit && wg_engine_execute(t->conn, "SELECT 1", NULL, &probe) != 0) {
    rc = wg_error_set(err, EPERM, "COMMIT refused: a statement failed in this transaction, so "
                                  "DuckDB aborted it (%.300s); nothing of it is committed, and "
                                  "it is rolled back and ended", probe.message);
    txn_close(s, t);
    return rc;
  }
  wg_engine_conn_session_txn(t->conn, false);
  rc = wg_engine_execute(t->conn, commit ? "COMMIT" : "ROLLBACK", NULL, err);
  if (rc != 0)
    wg_error_prefix(err, rc, "%s failed; the transaction is rolled back and ended",
                    commit ? "COMMIT" : "ROLLBACK");
  txn_close(s, t); /* closing rolls back what a failed COMMIT left */
  return rc;       /* no Result: the client reads none */
}

int wg__fsql_action_begin_savepoint(struct wg_server *s, struct wg_rpc_call *call,
                                    const ProtobufCBinaryData *body, struct wg_error *err) {
  (void)s, (void)call, (void)body;
  return wg_error_set(err, ENOTSUP, "BeginSavepoint: savepoints are not supported");
}

int wg__fsql_action_end_savepoint(struct wg_server *s, struct wg_rpc_call *call,
                                  const ProtobufCBinaryData *body, struct wg_error *err) {
  (void)s, (void)call, (void)body;
  return wg_error_set(err, ENOTSUP, "EndSavepoint: savepoints are not supported");
}
