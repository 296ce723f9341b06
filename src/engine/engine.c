/* wigeon: the engine's database and connection pool (see engine.h). The pool is a fixed array of
 * connections made at open; acquire waits on a condition variable while all are taken. Security
 * defaults are set in the duckdb_config before open, TimeZone and then lock_configuration right
 * after it (settle_database), before any client SQL, so that no SQL can undo them. Calls down
 * only: sql.c (statements), disk.c, put_keys.c, plans.c and tables.c (freed at close). */
#include "engine/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------------
 * Open, close, pool */

static int set_config(duckdb_config cfg, const char *name, const char *value,
                      struct wg_error *err) {
  if (duckdb_set_config(cfg, name, value) != DuckDBSuccess)
    return wg_error_set(err, EINVAL, "DuckDB refused option %s=%s", name, value);
  return 0;
}

/* Database-wide settings that a duckdb_config cannot hold, made before any client SQL runs.
 * TimeZone is UTC, not the host's zone (DuckDB's default, from TZ or /etc/localtime): a
 * TIMESTAMPTZ result carries the session zone in its Arrow type (timestamp[us, tz=...]) and in
 * its casts to text, so answers must not depend on where the server runs. TimeZone belongs to
 * the ICU extension, which registers it only at open, hence SET GLOBAL; so lock_configuration,
 * which also refuses SET GLOBAL, comes last here rather than in the config. */
static int settle_database(struct wg_engine *e, struct wg_error *err) {
  int rc = wg__engine_exec(e->conns[0], "SET GLOBAL TimeZone = 'UTC'", err);
  if (rc == 0 && e->sandboxed)
    rc = wg__engine_exec(e->conns[0], "SET GLOBAL lock_configuration = true", err);
  if (rc != 0) wg_error_prefix(err, rc, "setting up the database");
  return rc;
}

int wg_engine_open(struct wg_engine **out, const struct wg_engine_options *options,
                   struct wg_error *err) {
  *out = NULL;
  struct wg_engine_options o = {0};
  if (options != NULL) o = *options;
  const char *path = o.path != NULL ? o.path : ":memory:";
  int n = o.connections > 0 ? o.connections : 8;
  if (n > 4096) return wg_error_set(err, EINVAL, "pool of %d connections is too large", n);

  struct wg_engine *e = calloc(1, sizeof(*e));
  if (e == NULL) return wg_error_set(err, ENOMEM, "out of memory for the engine");
  e->is_file = strcmp(path, ":memory:") != 0 && path[0] != '\0';
  if (wg__engine_disk_init(e, path, o.disk_reserve) != 0) {
    wg__engine_disk_free(e);
    free(e);
    return wg_error_set(err, ENOMEM, "out of memory for the engine");
  }
  e->sandboxed = !o.allow_external_access;
  pthread_mutex_init(&e->mu, NULL);
  pthread_mutex_init(&e->create_mu, NULL);
  pthread_mutex_init(&e->plan_mu, NULL);
  wg__engine_events_init(e);
  atomic_init(&e->ddl_epoch, 1); /* never 0, the epoch of an empty plan slot */
  pthread_condattr_t cattr;
  pthread_condattr_init(&cattr);
  pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
  pthread_cond_init(&e->cv, &cattr); /* acquire's timeout */
  pthread_condattr_destroy(&cattr);
  e->max_waiting = o.max_waiting;
  e->acquire_timeout_ms = o.acquire_timeout_ms;

  duckdb_config cfg = NULL;
  int rc = 0;
  if (duckdb_create_config(&cfg) != DuckDBSuccess) {
    rc = wg_error_set(err, ENOMEM, "duckdb_create_config failed");
    goto fail;
  }
  char threads[32];
  snprintf(threads, sizeof(threads), "%d", o.duckdb_threads);
  if (o.memory_limit != NULL) rc = set_config(cfg, "memory_limit", o.memory_limit, err);
  if (rc == 0 && o.duckdb_threads > 0) rc = set_config(cfg, "threads", threads, err);
  if (rc == 0 && o.checkpoint_threshold != NULL)
    rc = set_config(cfg, "checkpoint_threshold", o.checkpoint_threshold, err);
  if (rc == 0 && !o.allow_external_access) {
    /* lock_configuration comes after open (settle_database): afterwards SET/RESET of any
     * option fails. */
    static const char *const locked[][2] = {
        {"enable_external_access", "false"},    {"autoinstall_known_extensions", "false"},
        {"autoload_known_extensions", "false"}, {"allow_community_extensions", "false"},
        {"allow_unsigned_extensions", "false"},
    };
    for (size_t i = 0; i < sizeof(locked) / sizeof(locked[0]) && rc == 0; i++)
      rc = set_config(cfg, locked[i][0], locked[i][1], err);
  }
  if (rc != 0) goto fail;
  char *open_err = NULL;
  if (duckdb_open_ext(path, &e->db, cfg, &open_err) != DuckDBSuccess) {
    rc = wg_engine_error_set(err, DUCKDB_ERROR_INVALID, open_err, "duckdb_open_ext failed");
    if (rc == EINVAL || rc == ENOENT) rc = EIO; /* a file we cannot open is an I/O matter */
    duckdb_free(open_err);
    e->db = NULL;
    goto fail;
  }
  duckdb_destroy_config(&cfg);

  e->conns = calloc((size_t)n, sizeof(*e->conns));
  if (e->conns == NULL) {
    rc = wg_error_set(err, ENOMEM, "out of memory for %d connections", n);
    goto fail;
  }
  for (int i = 0; i < n; i++) {
    struct wg_engine_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
      rc = wg_error_set(err, ENOMEM, "out of memory for %d connections", n);
      goto fail;
    }
    c->engine = e;
    if (duckdb_connect(e->db, &c->conn) != DuckDBSuccess) {
      free(c);
      rc = wg_error_set(err, EIO, "duckdb_connect failed for connection %d of %d", i, n);
      goto fail;
    }
    e->conns[e->n_conns++] = c;
  }
  e->n_free = n;
  rc = wg__engine_put_keys_init(e->conns[0], err);
  if (rc != 0) {
    wg_error_prefix(err, rc, "creating wigeon_internal.put_keys");
    goto fail;
  }
  rc = settle_database(e, err);
  if (rc != 0) goto fail;
  *out = e;
  return 0;
fail:
  if (cfg != NULL) duckdb_destroy_config(&cfg);
  wg_engine_close(e);
  return rc;
}

void wg_engine_close(struct wg_engine *e) {
  if (e == NULL) return;
  if (e->is_file && e->n_conns > 0) {
    /* No checkpoint into a database DuckDB can no longer be trusted with, nor one without the
     * room it needs (DuckDB's own shutdown checkpoint off too): the WAL holds every commit, and
     * the next start recovers from it. */
    struct wg_error room;
    bool skip = wg_engine_is_fatal(e) || wg_engine_check_room(e, 0, &room) != 0;
    if (skip) {
      fprintf(stderr, "wigeon: no checkpoint at shutdown (%s): the next start replays the WAL\n",
              wg_engine_is_fatal(e) ? "the database reported a fatal error" : room.message);
      wg__engine_exec(e->conns[0], "PRAGMA disable_checkpoint_on_shutdown", NULL);
    } else {
      wg__engine_exec(e->conns[0], "CHECKPOINT", NULL);
    }
  }
  /* A database that cannot run SELECT 1 is broken past repair (e.g. a log storage that fails at
   * every query's start, which --allow-external-access lets SQL set up): DuckDB's destructors
   * would throw from its connections' and database's destructors and abort the process, so its
   * objects are left to the process's exit. Every commit is in the WAL already. */
  bool broken = e->n_conns > 0 && wg__engine_exec(e->conns[0], "SELECT 1", NULL) != 0;
  for (int i = 0; i < e->n_conns; i++) {
    if (!broken) duckdb_disconnect(&e->conns[i]->conn);
    free(e->conns[i]);
  }
  free(e->conns);
  if (e->db != NULL && !broken) duckdb_close(&e->db);
  pthread_cond_destroy(&e->cv);
  pthread_mutex_destroy(&e->mu);
  pthread_mutex_destroy(&e->create_mu);
  wg__engine_plans_free(e);
  pthread_mutex_destroy(&e->plan_mu);
  wg__engine_events_free(e);
  wg__engine_open_tables_free(e);
  wg__engine_disk_free(e);
  free(e);
}

int wg_engine_checkpoint(struct wg_engine *e, struct wg_error *err) {
  WG_RETURN_NOT_OK(wg_engine_fatal(e, err));
  WG_RETURN_NOT_OK(wg_engine_check_room(e, 0, err));
  struct wg_engine_conn *c;
  WG_RETURN_NOT_OK(wg_engine_acquire(e, &c, err));
  int rc = wg__engine_exec(c, "CHECKPOINT", err);
  wg__engine_note_failure(e, rc, true, err);
  wg_engine_release(e, c);
  return rc;
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
  until.tv_sec += (time_t)(e->acquire_timeout_ms / 1000);
  until.tv_nsec += (long)(e->acquire_timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  e->waiting++;
  bool timed_out = false;
  while (e->n_free == 0 && !timed_out) {
    if (e->acquire_timeout_ms <= 0)
      pthread_cond_wait(&e->cv, &e->mu);
    else
      timed_out = pthread_cond_timedwait(&e->cv, &e->mu, &until) == ETIMEDOUT && e->n_free == 0;
  }
  e->waiting--;
  if (timed_out) {
    pthread_mutex_unlock(&e->mu);
    return wg_error_set(err, EBUSY,
                        "server busy: all %d DuckDB connections were in use for %lld ms",
                        e->n_conns, (long long)e->acquire_timeout_ms);
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
  return 0;
}

int wg_engine_conn_detach(struct wg_engine *e, struct wg_engine_conn *c, struct wg_error *err) {
  if (e == NULL || c == NULL) return wg_error_set(err, EINVAL, "detach: NULL connection");
  if (c->detached) return 0;
  struct wg_engine_conn *fresh = calloc(1, sizeof(*fresh));
  if (fresh == NULL) return wg_error_set(err, ENOMEM, "out of memory for a DuckDB connection");
  fresh->engine = e;
  if (duckdb_connect(e->db, &fresh->conn) != DuckDBSuccess) {
    free(fresh);
    return wg_error_set(err, EIO, "duckdb_connect failed for a replacement connection");
  }
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
  return 0;
}

void wg_engine_release(struct wg_engine *e, struct wg_engine_conn *c) {
  if (e == NULL || c == NULL) return;
  if (c->detached) { /* its place in the pool went to a fresh connection: close it */
    if (c->txn_maybe || c->session_dirty) wg__engine_tables_may_change(e);
    duckdb_disconnect(&c->conn);
    free(c);
    return;
  }
  if (c->txn_maybe) {
    /* DuckDB cannot tell us whether a transaction is open: roll back and ignore "no transaction
     * is active". */
    wg__engine_exec(c, "ROLLBACK", NULL);
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
