/* wigeon: group commit of small puts. DoPut handlers validate and decode their puts in their own
 * threads (a deferred ingest keeps the batches, no transaction open), then hand them to a
 * committer thread (one by default, --committers N), which commits everything waiting in one
 * DuckDB transaction: one WAL fsync for the group instead of one per put. Each handler acknowledges
 * its put only after that commit. If the group's transaction fails, the engine commits each put
 * alone, so one bad put fails only itself. A put whose call was cancelled (client cancel, deadline)
 * while it waited is dropped right before the group's transaction: it commits nothing, answers
 * ECANCELED, and the rest of the group commits without it. A group takes the waiting puts in
 * order up to a budget (MAX_GROUP puts, the server's group_commit_bytes, WG_GROUP_BUDGET_COLUMNS
 * columns; always at least one), so that a group's commit stays short and no put waits long
 * behind the one in progress; wide and big puts never come here (do_put.c).
 *
 *   handler: commit() -> enqueue -> wait(own cv)           committer: wait(queue) -> take all ->
 *                                 <- done, status, rows    commit_group -> mark done -> signal each
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/internal.h"

#define MAX_GROUP 256
#define PRUNE_EVERY_S 60

struct wg__commit_entry {
  struct wg_engine_ingest *ing;
  const struct wg_rpc_call *call; /* checked for cancellation just before the group commits */
  int64_t bytes, columns;         /* what it costs the group */
  int status;
  int64_t rows;
  struct wg_error err;
  bool done;
  pthread_cond_t cv; /* its own, so that finishing a group wakes only that group's handlers */
  struct wg__commit_entry *next;
};

static void *committer_main(void *arg) {
  struct wg__commit_lane *lane = arg;
  struct wg__committer *cm = lane->cm;
  struct wg_engine_ingest *ings[MAX_GROUP];
  struct wg__commit_entry *taken[MAX_GROUP];
  int status[MAX_GROUP];
  int64_t rows[MAX_GROUP];
  struct wg_error *errs = calloc(MAX_GROUP, sizeof(struct wg_error));
  struct timespec last_prune = {0, 0};
  /* a short window is pruned more often (a quarter of it), a long one once a minute */
  int64_t prune_every = cm->key_window_s / 4 < PRUNE_EVERY_S ? cm->key_window_s / 4 : PRUNE_EVERY_S;
  if (prune_every < 1) prune_every = 1;
  pthread_mutex_lock(&cm->mu);
  for (;;) {
    while (cm->head == NULL && !cm->stopping) {
      struct timespec now, until;
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (lane == &cm->lanes[0] && cm->key_window_s > 0 &&
          (last_prune.tv_sec == 0 || now.tv_sec - last_prune.tv_sec >= prune_every)) {
        /* Idempotency keys past their window go, at most once a minute, by the first lane. */
        last_prune = now;
        pthread_mutex_unlock(&cm->mu);
        struct wg_error e;
        if (wg_engine_put_keys_prune(lane->conn, cm->key_window_s, NULL, &e) != 0)
          fprintf(stderr, "wigeon: pruning idempotency keys: %s\n", e.message);
        pthread_mutex_lock(&cm->mu);
        continue;
      }
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_sec += prune_every;
      pthread_cond_timedwait(&cm->work_cv, &cm->mu, &until);
    }
    if (cm->head == NULL && cm->stopping) break;
    int n = 0;
    int64_t bytes = 0, columns = 0;
    while (cm->head != NULL && n < MAX_GROUP &&
           (n == 0 || (bytes + cm->head->bytes <= cm->budget_bytes &&
                       columns + cm->head->columns <= WG_GROUP_BUDGET_COLUMNS))) {
      bytes += cm->head->bytes;
      columns += cm->head->columns;
      taken[n] = cm->head;
      ings[n] = cm->head->ing;
      cm->head = cm->head->next;
      n++;
    }
    if (cm->head == NULL) cm->tail = NULL;
    pthread_mutex_unlock(&cm->mu);
    /* The last moment a cancelled put can still be kept out: commit_group drops failed ones. */
    int64_t group_bytes = 0;
    for (int i = 0; i < n; i++) {
      if (wg_rpc_call_cancelled(taken[i]->call)) wg_engine_ingest_fail(ings[i], ECANCELED);
      group_bytes += taken[i]->bytes;
    }
    /* Room for the whole group and the checkpoint after it, or none of it is tried. */
    struct wg_error room;
    bool no_room = wg_engine_check_room(cm->engine, group_bytes, &room) != 0;
    for (int i = 0; i < n && no_room; i++)
      wg_engine_ingest_fail(ings[i], ENOSPC);
    if (errs != NULL) {
      wg_engine_ingest_commit_group(lane->conn, ings, n, status, rows, errs);
    } else { /* no memory for the error slots: commit one by one with a shared slot */
      struct wg_error e;
      for (int i = 0; i < n; i++)
        wg_engine_ingest_commit_group(lane->conn, &ings[i], 1, &status[i], &rows[i], &e);
    }
    pthread_mutex_lock(&cm->mu);
    for (int i = 0; i < n; i++) {
      taken[i]->status = status[i];
      taken[i]->rows = rows[i];
      if (status[i] == ECANCELED)
        wg_error_set(&taken[i]->err, ECANCELED, "DoPut cancelled before its commit");
      else if (status[i] == ENOSPC && no_room)
        taken[i]->err = room;
      else if (status[i] != 0 && errs != NULL)
        taken[i]->err = errs[i];
      else if (status[i] != 0)
        wg_error_set(&taken[i]->err, status[i], "group commit failed");
      taken[i]->done = true;
      pthread_cond_signal(&taken[i]->cv);
    }
    cm->groups++;
    cm->grouped_puts += n;
  }
  pthread_mutex_unlock(&cm->mu);
  free(errs);
  return NULL;
}

int wg__committer_start(struct wg__committer *cm, struct wg_engine *engine, int n,
                        int64_t key_window_s, int64_t budget_bytes, struct wg_error *err) {
  memset(cm, 0, sizeof(*cm));
  cm->key_window_s = key_window_s;
  cm->budget_bytes = budget_bytes;
  if (n < 1 || n > WG_MAX_COMMITTERS)
    return wg_error_set(err, EINVAL, "%d group committers: 1 to %d", n, WG_MAX_COMMITTERS);
  cm->engine = engine;
  pthread_mutex_init(&cm->mu, NULL);
  pthread_cond_init(&cm->work_cv, NULL);
  cm->started = true;
  for (int i = 0; i < n; i++) {
    struct wg__commit_lane *lane = &cm->lanes[i];
    lane->cm = cm;
    int rc = wg_engine_acquire_reserved(engine, &lane->conn, err); /* outside the calls' pool */
    if (rc == 0 && pthread_create(&lane->thread, NULL, committer_main, lane) != 0) {
      wg_engine_release(engine, lane->conn);
      rc = wg_error_set(err, ENOMEM, "cannot start a group committer thread");
    }
    if (rc != 0) {
      wg__committer_stop(cm);
      return rc;
    }
    cm->n_lanes++;
  }
  return 0;
}

void wg__committer_stop(struct wg__committer *cm) {
  if (!cm->started) return;
  pthread_mutex_lock(&cm->mu);
  cm->stopping = true;
  pthread_cond_broadcast(&cm->work_cv);
  pthread_mutex_unlock(&cm->mu);
  for (int i = 0; i < cm->n_lanes; i++) {
    pthread_join(cm->lanes[i].thread, NULL);
    wg_engine_release(cm->engine, cm->lanes[i].conn);
  }
  pthread_mutex_destroy(&cm->mu);
  pthread_cond_destroy(&cm->work_cv);
  cm->n_lanes = 0;
  cm->started = false;
}

int wg__committer_commit(struct wg__committer *cm, struct wg_engine_ingest *ing,
                         const struct wg_rpc_call *call, int64_t bytes, int64_t columns,
                         int64_t *rows, struct wg_error *err) {
  struct wg__commit_entry e;
  memset(&e, 0, sizeof(e));
  e.ing = ing;
  e.call = call;
  e.bytes = bytes;
  e.columns = columns;
  pthread_cond_init(&e.cv, NULL);
  pthread_mutex_lock(&cm->mu);
  if (cm->tail != NULL)
    cm->tail->next = &e;
  else
    cm->head = &e;
  cm->tail = &e;
  pthread_cond_signal(&cm->work_cv);
  while (!e.done)
    pthread_cond_wait(&e.cv, &cm->mu);
  pthread_mutex_unlock(&cm->mu);
  pthread_cond_destroy(&e.cv);
  *rows = e.rows;
  if (e.status != 0) wg_error_set(err, e.status, "%s", e.err.message);
  return e.status;
}
