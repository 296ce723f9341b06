/* wigeon: the engine's database (see engine.h): open, close, checkpoint; the connection pool is
 * pool.c's, statements sql.c's. Security defaults are set in the duckdb_config before open,
 * TimeZone and then lock_configuration right after it (settle_database), before any client SQL,
 * so that no SQL can undo them. Calls down only: pool.c, sql.c, disk.c, put_keys.c, events.c,
 * plans.c and tables.c (freed at close). */
#include "engine/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------------
 * Open, close */

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
  struct wg_engine *e = calloc(1, sizeof(*e));
  if (e == NULL) return wg_error_set(err, ENOMEM, "out of memory for the engine");
  int rc = wg__engine_pool_init(e, &o, err); /* fails only before it set anything up */
  if (rc != 0) {
    free(e);
    return rc;
  }
  e->is_file = strcmp(path, ":memory:") != 0 && path[0] != '\0';
  if (wg__engine_disk_init(e, path, o.disk_reserve) != 0) {
    wg__engine_disk_free(e);
    wg__engine_pool_free(e, false);
    free(e);
    return wg_error_set(err, ENOMEM, "out of memory for the engine");
  }
  e->sandboxed = !o.allow_external_access;
  pthread_mutex_init(&e->create_mu, NULL);
  pthread_mutex_init(&e->plan_mu, NULL);
  wg__engine_events_init(e, o.events_max_put_bytes);
  atomic_init(&e->ddl_epoch, 1); /* never 0, the epoch of an empty plan slot */

  duckdb_config cfg = NULL;
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

  rc = wg__engine_pool_connect(e, err);
  if (rc != 0) goto fail;
  rc = wg__engine_put_keys_init(e->conns[0], err);
  if (rc != 0) {
    wg_error_prefix(err, rc, "creating wigeon_internal.put_keys");
    goto fail;
  }
  rc = wg__engine_events_settle_base(e->conns[0], err);
  if (rc != 0) {
    wg_error_prefix(err, rc, "recording the run in wigeon_internal.runs");
    goto fail;
  }
  rc = wg__engine_inputs_register(e, e->conns[0], err);
  if (rc != 0) goto fail;
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
  wg__engine_pool_free(e, broken);
  if (e->db != NULL && !broken) duckdb_close(&e->db);
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
