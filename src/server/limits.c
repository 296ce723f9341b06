/* wigeon: per-user limits around a call's handler (auth.h, roles.h) and the role checks' helper.
 *   calls per user  a small table keyed by user name (the anonymous user "" is one user): enter
 *                   counts the call in, one over --max-calls-per-user is EBUSY; leave counts out.
 *   query timeout   each worker thread runs one call at a time, so its slot is thread-local: a
 *                   handler arms it (wg__limits_query) where its client SQL starts, one timer
 *                   thread ends the calls whose deadline passed (wg_rpc_call_expire with
 *                   DEADLINE_EXCEEDED), and the call's cancel hook interrupts DuckDB. leave
 *                   disarms it, before the rpc layer lets go of the call.
 *   SQL access      enter sets the thread's engine access level from the role, leave resets it.
 * One mutex (mu) guards the table and the armed slots; the timer calls into gRPC under it (a
 * cancel, which does not block). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/roles.h"

struct limits_slot {
  struct limits_slot *next, **pprev; /* in armed while armed */
  struct wg_rpc_call *call;
  int64_t deadline_ms; /* CLOCK_MONOTONIC */
  bool armed, expired;
};

struct limits_user {
  char name[WG_MAX_USER_NAME + 1];
  int calls;
};

struct wg__limits {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* CLOCK_MONOTONIC: a slot was armed, or stop */
  pthread_t timer;
  bool timer_started, stop;
  struct limits_slot *armed;
  struct limits_user *users; /* those with calls running */
  int n_users, cap_users;
};

static _Thread_local struct limits_slot thread_slot; /* the call this worker runs */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wg__role_require(const struct wg_rpc_call *call, enum wg_role need, const char *what,
                     struct wg_error *err) {
  const struct wg__principal *p = wg__call_principal(call);
  if (p->role >= need) return 0;
  return wg_error_set(err, EACCES, "%s needs the %s role; user %s%s%s has the %s role", what,
                      wg__role_name(need), p->user[0] ? "'" : "",
                      p->user[0] ? p->user : "(anonymous)", p->user[0] ? "'" : "",
                      wg__role_name(p->role));
}

static void disarm_locked(struct limits_slot *slot) {
  if (!slot->armed) return;
  *slot->pprev = slot->next;
  if (slot->next != NULL) slot->next->pprev = slot->pprev;
  slot->armed = false;
  slot->call = NULL;
}

/* Ends the calls whose deadline passed; sleeps until the next deadline or an arming. */
static void *timer_main(void *arg) {
  struct wg_server *s = arg;
  struct wg__limits *l = s->limits;
  char msg[160];
  snprintf(msg, sizeof(msg),
           "the query ran longer than the server's query timeout of %.3g s (--query-timeout): "
           "it was cancelled",
           (double)s->options.query_timeout_ms / 1000.0);
  pthread_mutex_lock(&l->mu);
  while (!l->stop) {
    int64_t next = -1, now = now_ms();
    for (struct limits_slot *x = l->armed; x != NULL; x = x->next) {
      if (x->expired) continue;
      if (x->deadline_ms <= now) {
        x->expired = true;
        wg_rpc_call_expire(x->call, GRPC_STATUS_DEADLINE_EXCEEDED, msg);
      } else if (next < 0 || x->deadline_ms < next) {
        next = x->deadline_ms;
      }
    }
    if (next < 0) {
      pthread_cond_wait(&l->cv, &l->mu);
    } else {
      struct timespec until = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};
      pthread_cond_timedwait(&l->cv, &l->mu, &until);
    }
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

int wg__limits_start(struct wg_server *s, struct wg_error *err) {
  struct wg__limits *l = calloc(1, sizeof(*l));
  if (l == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, &ca);
  pthread_condattr_destroy(&ca);
  s->limits = l;
  if (s->options.query_timeout_ms > 0) {
    if (pthread_create(&l->timer, NULL, timer_main, s) != 0) {
      wg__limits_stop(s);
      return wg_error_set(err, EAGAIN, "cannot start the query timeout's thread");
    }
    l->timer_started = true;
  }
  return 0;
}

void wg__limits_stop(struct wg_server *s) {
  struct wg__limits *l = s->limits;
  if (l == NULL) return;
  if (l->timer_started) {
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->timer, NULL);
  }
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv);
  free(l->users);
  free(l);
  s->limits = NULL;
}

static enum wg_engine_access access_of(enum wg_role role) {
  switch (role) {
  case WG_ROLE_ADMIN:
    return WG_ENGINE_ACCESS_ALL;
  case WG_ROLE_WRITE:
    return WG_ENGINE_ACCESS_WRITE;
  default:
    return WG_ENGINE_ACCESS_READ;
  }
}

/* Counts a call of p in (EBUSY at the limit). Called with l->mu held. */
static int count_in_locked(struct wg_server *s, const struct wg__principal *p,
                           struct wg_error *err) {
  struct wg__limits *l = s->limits;
  int max = s->options.max_calls_per_user;
  if (max <= 0) return 0;
  struct limits_user *u = NULL;
  for (int i = 0; i < l->n_users && u == NULL; i++)
    if (strcmp(l->users[i].name, p->user) == 0) u = &l->users[i];
  if (u != NULL && u->calls >= max)
    return wg_error_set(err, EBUSY,
                        "user %s%s%s already has %d calls running, the most the server's "
                        "--max-calls-per-user allows: retry when one has finished",
                        p->user[0] ? "'" : "", p->user[0] ? p->user : "(anonymous)",
                        p->user[0] ? "'" : "", u->calls);
  if (u == NULL) {
    if (l->n_users == l->cap_users) {
      int cap = l->cap_users ? l->cap_users * 2 : 16;
      struct limits_user *n = realloc(l->users, (size_t)cap * sizeof(*n));
      if (n == NULL) return wg_error_set(err, ENOMEM, "out of memory");
      l->users = n;
      l->cap_users = cap;
    }
    u = &l->users[l->n_users++];
    snprintf(u->name, sizeof(u->name), "%s", p->user);
    u->calls = 0;
  }
  u->calls++;
  return 0;
}

static void count_out_locked(struct wg_server *s, const struct wg__principal *p) {
  struct wg__limits *l = s->limits;
  if (s->options.max_calls_per_user <= 0) return;
  for (int i = 0; i < l->n_users; i++) {
    if (strcmp(l->users[i].name, p->user) != 0) continue;
    if (--l->users[i].calls <= 0) l->users[i] = l->users[--l->n_users];
    return;
  }
}

int wg__limits_enter(struct wg_server *s, const struct wg__principal *p, struct wg_error *err) {
  struct wg__limits *l = s->limits;
  pthread_mutex_lock(&l->mu);
  int rc = count_in_locked(s, p, err);
  pthread_mutex_unlock(&l->mu);
  if (rc != 0) return rc;
  thread_slot = (struct limits_slot){0};
  wg_engine_thread_set_access(access_of(p->role));
  return 0;
}

void wg__limits_leave(struct wg_server *s, const struct wg__principal *p) {
  struct wg__limits *l = s->limits;
  wg_engine_thread_set_access(WG_ENGINE_ACCESS_ALL);
  pthread_mutex_lock(&l->mu);
  disarm_locked(&thread_slot);
  count_out_locked(s, p);
  pthread_mutex_unlock(&l->mu);
}

void wg__limits_query(struct wg_server *s, struct wg_rpc_call *call) {
  struct wg__limits *l = s->limits;
  if (s->options.query_timeout_ms <= 0 || l == NULL) return;
  pthread_mutex_lock(&l->mu);
  struct limits_slot *slot = &thread_slot;
  if (!slot->armed && !slot->expired) {
    slot->call = call;
    slot->deadline_ms = now_ms() + s->options.query_timeout_ms;
    slot->armed = true;
    slot->next = l->armed;
    slot->pprev = &l->armed;
    if (l->armed != NULL) l->armed->pprev = &slot->next;
    l->armed = slot;
    pthread_cond_signal(&l->cv);
  }
  pthread_mutex_unlock(&l->mu);
}
