/* wigeon: idempotency keys of puts. A put that carries a key records it, with its row count, in
 * wigeon_internal.put_keys inside the transaction that commits its rows: the key survives a crash
 * exactly when the rows do. A put whose key is already there appends nothing and is acknowledged
 * with the recorded count. Two puts racing with one key cannot both commit: the key is the
 * table's primary key, so the second commit fails on it and its handler finds the first's record.
 * Keys older than the window are deleted by wg_engine_put_keys_prune. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

#define KEYS_TABLE "wigeon_internal.put_keys"

int wg__engine_put_keys_init(struct wg_engine_conn *c, struct wg_error *err) {
  WG_RETURN_NOT_OK(wg__engine_exec(c, "CREATE SCHEMA IF NOT EXISTS wigeon_internal", err));
  return wg__engine_exec(c,
                         "CREATE TABLE IF NOT EXISTS " KEYS_TABLE
                         " (idempotency_key VARCHAR PRIMARY KEY, rows BIGINT NOT NULL,"
                         " schema_name VARCHAR, table_name VARCHAR NOT NULL,"
                         " committed_at TIMESTAMP WITH TIME ZONE NOT NULL)",
                         err);
}

int wg__engine_put_key_record(struct wg_engine_conn *c, const char *key, int64_t rows,
                              const char *schema_name, const char *table, struct wg_error *err) {
  duckdb_prepared_statement p = NULL;
  int rc = 0;
  if (duckdb_prepare(c->conn,
                     "INSERT INTO " KEYS_TABLE " VALUES (?, ?, ?, ?, current_timestamp)",
                     &p) != DuckDBSuccess) {
    rc = wg__engine_prepare_error(p, err);
  } else {
    duckdb_bind_varchar(p, 1, key);
    duckdb_bind_int64(p, 2, rows);
    if (schema_name != NULL)
      duckdb_bind_varchar(p, 3, schema_name);
    else
      duckdb_bind_null(p, 3);
    duckdb_bind_varchar(p, 4, table);
    duckdb_result r;
    if (duckdb_execute_prepared(p, &r) != DuckDBSuccess) rc = wg__engine_result_error(&r, err);
    duckdb_destroy_result(&r);
  }
  duckdb_destroy_prepare(&p);
  if (rc != 0) wg_error_prefix(err, rc, "recording idempotency key");
  return rc;
}

static int key_find(struct wg_engine_conn *c, const char *key, int64_t *rows, bool *found,
                    struct wg_error *err);

int wg_engine_put_key_find(struct wg_engine_conn *c, const char *key, int64_t *rows, bool *found,
                           struct wg_error *err) {
  int rc = key_find(c, key, rows, found, err);
  if (rc == ENOENT) { /* dropped by SQL: made again, empty (its keys went with it) */
    WG_RETURN_NOT_OK(wg__engine_put_keys_init(c, err));
    wg__engine_tables_may_change(c->engine);
    rc = key_find(c, key, rows, found, err);
  }
  return rc;
}

static int key_find(struct wg_engine_conn *c, const char *key, int64_t *rows, bool *found,
                    struct wg_error *err) {
  *found = false;
  *rows = 0;
  WG_RETURN_NOT_OK(wg__engine_conn_idle(c, err));
  duckdb_prepared_statement p = NULL;
  int rc = 0;
  if (duckdb_prepare(c->conn, "SELECT rows FROM " KEYS_TABLE " WHERE idempotency_key = ?", &p) !=
      DuckDBSuccess) {
    rc = wg__engine_prepare_error(p, err);
  } else {
    duckdb_bind_varchar(p, 1, key);
    duckdb_result r;
    if (duckdb_execute_prepared(p, &r) != DuckDBSuccess) {
      rc = wg__engine_result_error(&r, err);
    } else if (duckdb_row_count(&r) > 0) {
      *found = true;
      *rows = duckdb_value_int64(&r, 0, 0);
    }
    duckdb_destroy_result(&r);
  }
  duckdb_destroy_prepare(&p);
  return rc;
}

int wg_engine_put_keys_prune(struct wg_engine_conn *c, int64_t max_age_seconds, int64_t *deleted,
                             struct wg_error *err) {
  if (deleted != NULL) *deleted = 0;
  WG_RETURN_NOT_OK(wg__engine_conn_idle(c, err));
  char sql[160];
  snprintf(sql, sizeof(sql),
           "DELETE FROM " KEYS_TABLE " WHERE committed_at < current_timestamp - INTERVAL %lld SECOND",
           (long long)max_age_seconds);
  duckdb_result r;
  int rc = 0;
  if (duckdb_query(c->conn, sql, &r) != DuckDBSuccess)
    rc = wg__engine_result_error(&r, err);
  else if (deleted != NULL)
    *deleted = (int64_t)duckdb_rows_changed(&r);
  duckdb_destroy_result(&r);
  return rc;
}
