/* wigeon: group commit (engine.h, wg_engine_ingest_commit_group): many deferred puts committed in
 * one transaction, one fsync; when that fails, each put alone, so that one bad put fails only
 * itself. Calls ingest.c (appenders, kept batches) and tables.c; nothing calls back. */
#include "engine/ingest_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One transaction for a whole group: BEGIN, every put's batches, COMMIT. Puts into the same table
 * and columns share one appender (one flush: DuckDB runs an insert plan per flush). */
static int commit_together(struct wg_engine_conn *c, struct wg_engine_ingest **ings, int64_t n,
                           bool consume, struct wg_error *err) {
  WG_RETURN_NOT_OK(wg__engine_begin(c, err));
  int rc = 0;
  uint8_t stack_done[64];
  uint8_t *done = n <= 64 ? stack_done : calloc((size_t)n, 1);
  if (done == NULL) rc = wg_error_set(err, ENOMEM, "out of memory");
  if (done == stack_done) memset(done, 0, sizeof(stack_done));
  for (int64_t i = 0; i < n && rc == 0; i++) {
    if (done[i]) continue;
    duckdb_appender app = NULL;
    int64_t failed_at = i;
    rc = wg__ingest_open_appender(ings[i], c->conn, &app, err);
    for (int64_t j = i; j < n && rc == 0; j++) {
      if (done[j] || (j > i && !wg__ingest_same_target(ings[i], ings[j]))) continue;
      done[j] = 1;
      failed_at = j;
      rc = wg__ingest_append_pending(ings[j], NULL, c->conn, app, consume, err);
    }
    if (rc == 0 && duckdb_appender_flush(app) != DuckDBSuccess)
      rc = wg__ingest_appender_error(app, err, "flush");
    if (app != NULL) duckdb_appender_destroy(&app);
    if (rc != 0) wg_error_prefix(err, rc, "table %s", ings[failed_at]->table);
  }
  if (done != stack_done) free(done);
  for (int64_t i = 0; i < n && rc == 0; i++) {
    if (ings[i]->idem_key != NULL)
      rc = wg__engine_put_key_record(c, ings[i]->idem_key, ings[i]->rows, ings[i]->schema_name,
                                     ings[i]->table, err);
  }
  if (rc == 0) {
    rc = wg_engine_fatal(c->engine, err);
    bool events = false; /* then commit_mu is held from COMMIT to the last event */
    for (int64_t i = 0; i < n && !events; i++)
      events = ings[i]->events;
    if (rc == 0) {
      if (events) wg__engine_commit_lock(c->engine);
      rc = wg__engine_exec(c, "COMMIT", err);
      wg__engine_note_failure(c->engine, rc, true, err);
      for (int64_t i = 0; i < n && rc == 0; i++)
        wg__ingest_notify(ings[i]); /* in the group's order: one event per put */
      if (events) wg__engine_commit_unlock(c->engine);
    }
  }
  if (rc == 0 || wg__engine_rollback(c) == 0) c->txn_maybe = false; /* else: release's */
  return rc;
}

void wg_engine_ingest_commit_group(struct wg_engine_conn *c, struct wg_engine_ingest **ings,
                                   int64_t n, int *status, int64_t *rows, struct wg_error *errs) {
  int64_t live = 0;
  for (int64_t i = 0; i < n; i++) { /* failed ones drop out at once */
    rows[i] = 0;
    status[i] = ings[i]->failed;
    if (status[i] != 0) {
      wg_error_set(&errs[i], status[i], "put failed before its commit");
      wg__engine_drop_if_created(c, ings[i]->created, ings[i]->key);
      wg__ingest_free(ings[i]);
    } else {
      ings[live++] = ings[i];
    }
  }
  struct wg_error group_err;
  int rc = live > 0 ? commit_together(c, ings, live, live == 1, &group_err) : 0;
  if (rc == 0) {
    for (int64_t i = 0, j = 0; i < n; i++) {
      if (status[i] != 0) continue;
      rows[i] = ings[j]->rows;
      wg__ingest_free(ings[j++]);
    }
    return;
  }
  /* The group failed: each put alone, so that one bad put fails only itself. */
  if (live > 1)
    fprintf(stderr, "wigeon: a group commit of %lld puts failed (%s); committing each alone\n",
            (long long)live, group_err.message);
  for (int64_t i = 0, j = 0; i < n; i++) {
    if (status[i] != 0) continue;
    struct wg_engine_ingest *ing = ings[j++];
    if (live == 1) {
      status[i] = rc;
      errs[i] = group_err;
    } else {
      status[i] = commit_together(c, &ing, 1, true, &errs[i]);
    }
    if (status[i] == 0)
      rows[i] = ing->rows;
    else
      wg__engine_drop_if_created(c, ing->created, ing->key);
    wg__ingest_free(ing);
  }
}
