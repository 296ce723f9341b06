/* wigeon: the ingest plan cache: per (table, Arrow schema), the table column each incoming column
 * goes to, valid while engine->ddl_epoch is unchanged. Its own lock, plan_mu, taken alone (no
 * other engine lock is held with it). */
#include "engine/ingest_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Ingest plans: what begin works out for one (table, Arrow schema) pair (the table column of each
 * incoming column, after the type checks), kept in the engine while no statement that may change
 * a table has run since (engine->ddl_epoch). A put of a known shape then costs no catalog query:
 * the per-put lookups (two prepares and a conversion) were a sixth of a small put's CPU. */

#define MAX_PLANS 64

struct wg__ingest_plan {
  char *key;      /* table_key */
  uint8_t *shape; /* wg_schema_fingerprint of the stream's schema */
  int64_t shape_size;
  uint64_t epoch; /* engine->ddl_epoch read before the lookups it came from */
  int64_t n_columns;
  char **cols;
  bool whole_table;
};

static void plan_reset(struct wg__ingest_plan *p) {
  free(p->key);
  free(p->shape);
  for (int64_t i = 0; p->cols != NULL && i < p->n_columns; i++)
    free(p->cols[i]);
  free(p->cols);
  memset(p, 0, sizeof(*p));
}

void wg__engine_plans_free(struct wg_engine *e) {
  for (int i = 0; i < e->n_plans; i++)
    plan_reset(&e->plans[i]);
  free(e->plans);
  e->plans = NULL;
  e->n_plans = 0;
}

/* Whether entry p is the one for (key, shape); empty entries have no key. */
static bool same_plan(const struct wg__ingest_plan *p, const char *key,
                      const struct wg_buf *shape) {
  return p->key != NULL && p->shape_size == shape->size && strcmp(p->key, key) == 0 &&
         memcmp(p->shape, shape->data, (size_t)shape->size) == 0;
}

/* Copies a current plan's columns into cols[0..n_columns) (strdup'ed; some may be set when it
 * fails midway) and *whole_table; false when there is none. Current means made
 * in the epoch that is current now, not when this put began: a table changed since then retires
 * the plans made before the change. */
bool wg__engine_plan_find(struct wg_engine *e, const char *key, const struct wg_buf *shape,
                          int64_t n_columns, char **cols, bool *whole_table) {
  bool found = false;
  pthread_mutex_lock(&e->plan_mu);
  uint64_t epoch = atomic_load(&e->ddl_epoch);
  for (int i = 0; i < e->n_plans; i++) {
    struct wg__ingest_plan *p = &e->plans[i];
    if (!same_plan(p, key, shape) || p->epoch != epoch || p->n_columns != n_columns) continue;
    found = true;
    *whole_table = p->whole_table;
    for (int64_t j = 0; j < p->n_columns && found; j++) {
      if ((cols[j] = strdup(p->cols[j])) == NULL) found = false;
    }
    break; /* a pair has one entry at most */
  }
  pthread_mutex_unlock(&e->plan_mu);
  return found;
}

/* Remembers cols[0..n_columns) and whole_table for (key, shape) as of `epoch`, replacing the
 * entry of the same pair, or else an outdated or empty one, or else one picked by the key's
 * hash. Kept only if no table changed since `epoch`. Best effort: without memory, nothing is kept. */
void wg__engine_plan_keep(struct wg_engine *e, const char *key, const struct wg_buf *shape,
                          uint64_t epoch, int64_t n_columns, char *const *cols,
                          bool whole_table) {
  struct wg__ingest_plan p = {0};
  p.key = strdup(key);
  p.shape = malloc((size_t)(shape->size > 0 ? shape->size : 1));
  p.cols = calloc((size_t)(n_columns > 0 ? n_columns : 1), sizeof(char *));
  p.n_columns = n_columns;
  p.whole_table = whole_table;
  p.shape_size = shape->size;
  p.epoch = epoch;
  bool ok = p.key != NULL && p.shape != NULL && p.cols != NULL;
  if (ok) memcpy(p.shape, shape->data, (size_t)shape->size);
  for (int64_t i = 0; i < p.n_columns && ok; i++)
    ok = (p.cols[i] = strdup(cols[i])) != NULL;
  pthread_mutex_lock(&e->plan_mu);
  if (ok && epoch != atomic_load(&e->ddl_epoch)) ok = false; /* a table may have changed */
  if (ok && e->plans == NULL && (e->plans = calloc(MAX_PLANS, sizeof(*e->plans))) == NULL)
    ok = false;
  int slot = -1;
  for (int i = 0; ok && i < e->n_plans && slot < 0; i++)
    if (same_plan(&e->plans[i], key, shape)) slot = i;
  for (int i = 0; ok && i < e->n_plans && slot < 0; i++)
    if (e->plans[i].epoch != epoch) slot = i; /* outdated or empty */
  if (ok && slot < 0) {
    uint32_t h = 2166136261u; /* FNV-1a of the key: which full slot to replace */
    for (const char *c = key; *c; c++)
      h = (h ^ (uint8_t)*c) * 16777619u;
    slot = e->n_plans < MAX_PLANS ? e->n_plans++ : (int)(h % MAX_PLANS);
  }
  if (ok) {
    plan_reset(&e->plans[slot]);
    e->plans[slot] = p;
  }
  pthread_mutex_unlock(&e->plan_mu);
  if (!ok) plan_reset(&p);
}
