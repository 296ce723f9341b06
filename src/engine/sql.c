/* wigeon: running SQL on an engine connection: DuckDB error capture, the engine's own statements
 * (wg__engine_exec), quoting names into SQL (common/sql.h underneath), the bookkeeping after
 * client SQL (wg__engine_statement_done) and wg_engine_execute. Calls guard.c, disk.c and
 * arrow_duck.c; nothing here calls engine.c. */
#include "common/sql.h"
#include "engine/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Errors and small helpers */

int wg__engine_result_error(duckdb_result *r, struct wg_error *err) {
  /* DuckDB can fail a call without filling in its result (seen for duckdb_query once its log
   * storage is broken): callers zero r first, and a result with no internal data is not read. */
  if (r->internal_data == NULL)
    return wg_error_set(err, EIO, "DuckDB failed without a result (no error message)");
  return wg_engine_error_set(err, duckdb_result_error_type(r), duckdb_result_error(r), NULL);
}

int wg__engine_prepare_error(duckdb_prepared_statement p, struct wg_error *err) {
  return wg_engine_error_set(err, DUCKDB_ERROR_INVALID, p ? duckdb_prepare_error(p) : NULL,
                             "DuckDB prepare failed (no message)");
}

int wg__engine_take_error_data(duckdb_error_data *ed, struct wg_error *err) {
  if (*ed == NULL) return 0;
  int rc = 0;
  if (duckdb_error_data_has_error(*ed))
    rc = wg_engine_error_set(err, duckdb_error_data_error_type(*ed),
                             duckdb_error_data_message(*ed), NULL);
  duckdb_destroy_error_data(ed);
  return rc;
}

int wg__engine_conn_idle(struct wg_engine_conn *c, struct wg_error *err) {
  if (c->stream == NULL) return 0;
  return wg_error_set(err, EINVAL,
                      "the connection has an open query stream: release it before running "
                      "anything else on this connection");
}

bool wg__engine_statement_keeps_tables(duckdb_statement_type type) {
  switch (type) {
  case DUCKDB_STATEMENT_TYPE_SELECT:
  case DUCKDB_STATEMENT_TYPE_INSERT:
  case DUCKDB_STATEMENT_TYPE_UPDATE:
  case DUCKDB_STATEMENT_TYPE_DELETE:
    return true; /* not EXPLAIN: EXPLAIN ANALYZE runs its statement, which may be DDL */
  default:
    return false;
  }
}

void wg__engine_statement_done(struct wg_engine_conn *c, duckdb_statement_type type, bool ran) {
  if (type == DUCKDB_STATEMENT_TYPE_TRANSACTION) c->txn_maybe = true; /* BEGIN: see release */
  if (wg__engine_statement_keeps_tables(type)) return;
  wg__engine_tables_may_change(c->engine); /* failed or not: it may have got part way */
  if (ran) c->session_dirty = true;        /* a temp table, SET ...: see release */
}

int wg__engine_guard(struct wg_engine_conn *c, const char *sql, struct wg_error *err) {
  if (!c->engine->sandboxed) return 0;
  return wg__engine_sql_refused(sql, strlen(sql), err);
}

int wg__engine_exec(struct wg_engine_conn *c, const char *sql, struct wg_error *err) {
  duckdb_result r;
  memset(&r, 0, sizeof(r));
  int rc = 0;
  if (duckdb_query(c->conn, sql, &r) != DuckDBSuccess) rc = wg__engine_result_error(&r, err);
  duckdb_destroy_result(&r);
  return rc;
}

char *wg_engine_quote_ident(const char *name) {
  return wg_sql_quote_ident(name);
}

char *wg__engine_qualified(const char *schema_name, const char *table) {
  char *t = wg_sql_quote_ident(table);
  if (t == NULL || schema_name == NULL || schema_name[0] == '\0') return t;
  char *s = wg_sql_quote_ident(schema_name);
  char *q = s ? malloc(strlen(s) + strlen(t) + 2) : NULL;
  if (q != NULL) sprintf(q, "%s.%s", s, t);
  free(s);
  free(t);
  return q;
}


/* Runs every statement of `sql` in turn (prepared, then executed as a streaming pending result
 * whose rows are not fetched: a SELECT sent here costs its first chunk, not its whole result).
 * A transaction statement (BEGIN) may leave a transaction open: then the connection is rolled
 * back on release. */
int wg_engine_execute(struct wg_engine_conn *c, const char *sql, int64_t *rows_changed,
                      struct wg_error *err) {
  if (rows_changed != NULL) *rows_changed = 0;
  if (c == NULL || sql == NULL) return wg_error_set(err, EINVAL, "execute: NULL connection or sql");
  WG_RETURN_NOT_OK(wg__engine_conn_idle(c, err));
  WG_RETURN_NOT_OK(wg__engine_guard(c, sql, err));
  duckdb_extracted_statements stmts = NULL;
  idx_t n = duckdb_extract_statements(c->conn, sql, &stmts);
  int rc = 0;
  if (n == 0) {
    rc = wg_engine_error_set(err, DUCKDB_ERROR_INVALID, duckdb_extract_statements_error(stmts),
                             "no statement to execute");
  }
  /* Several statements are all or nothing. Either the text manages its transaction (it starts
   * with BEGIN, and COMMIT or ROLLBACK may end it: stopping at the first error leaves the
   * transaction open, and release rolls it back), or it runs in one transaction of its own.
   * Transaction control anywhere else would let part of the text commit: refused. Which case it
   * is shows only once the first statement is prepared (later ones may bind only after the
   * earlier ones ran). */
  bool several = n > 1, own_txn = false;
  int64_t total = 0;
  for (idx_t i = 0; i < n && rc == 0; i++) {
    duckdb_prepared_statement p = NULL;
    if (duckdb_prepare_extracted_statement(c->conn, stmts, i, &p) != DuckDBSuccess) {
      rc = wg__engine_prepare_error(p, err);
      if (several)
        wg_error_prefix(err, rc, "statement %llu of %llu (none of them took effect)",
                        (unsigned long long)i + 1, (unsigned long long)n);
      duckdb_destroy_prepare(&p);
      break;
    }
    bool control = duckdb_prepared_statement_type(p) == DUCKDB_STATEMENT_TYPE_TRANSACTION;
    if (several && i == 0 && !control) {
      rc = wg__engine_exec(c, "BEGIN TRANSACTION", err);
      if (rc == 0) c->txn_maybe = own_txn = true;
    } else if (several && control && i > 0 && (own_txn || i + 1 < n)) {
      rc = wg_error_set(err, EINVAL,
                        "statement %llu of %llu is BEGIN, COMMIT or ROLLBACK: several statements "
                        "are all or nothing, so transaction control may only start the text "
                        "(BEGIN) and end it (COMMIT or ROLLBACK); none of them took effect",
                        (unsigned long long)i + 1, (unsigned long long)n);
    }
    duckdb_statement_type st = duckdb_prepared_statement_type(p);
    if (rc == 0 && st != DUCKDB_STATEMENT_TYPE_SELECT) {
      /* a write (EXPLAIN too: EXPLAIN ANALYZE runs its statement): not into a database that had
       * a fatal error, not onto a full disk */
      rc = wg_engine_fatal(c->engine, err);
      if (rc == 0) rc = wg_engine_check_room(c->engine, 0, err);
    }
    if (rc != 0) {
      duckdb_destroy_prepare(&p);
      break;
    }
    bool ran = false;
    duckdb_pending_result pending = NULL;
    if (c->engine->sandboxed &&
        (rc = wg__engine_statement_refused(duckdb_prepared_statement_type(p), err)) != 0) {
      /* refused before it ran */
    } else if (duckdb_pending_prepared_streaming(p, &pending) != DuckDBSuccess) {
      rc = wg_engine_error_set(err, DUCKDB_ERROR_INVALID, duckdb_pending_error(pending),
                               "execute failed");
    } else if (atomic_load(&c->interrupted)) { /* see wg_engine_query_arrow_stream_flag */
      wg_engine_pending_abandon(c->conn, &pending);
      rc = wg_error_set(err, ECANCELED, "INTERRUPT Error: interrupted before the statement ran");
    } else {
      duckdb_result r;
      memset(&r, 0, sizeof(r));
      if (duckdb_execute_pending(pending, &r) != DuckDBSuccess) {
        rc = wg__engine_result_error(&r, err);
        wg__engine_note_failure(c->engine, rc, st == DUCKDB_STATEMENT_TYPE_TRANSACTION, err);
      } else {
        total += (int64_t)duckdb_rows_changed(&r);
      }
      duckdb_destroy_result(&r);
      ran = rc == 0;
    }
    if (rc != 0 && several)
      wg_error_prefix(err, rc, "statement %llu of %llu (none of them took effect)",
                      (unsigned long long)i + 1, (unsigned long long)n);
    wg__engine_statement_done(c, duckdb_prepared_statement_type(p), ran);
    duckdb_destroy_pending(&pending);
    duckdb_destroy_prepare(&p);
  }
  if (own_txn && c->txn_maybe) {
    if (rc == 0) {
      rc = wg__engine_exec(c, "COMMIT", err);
      wg__engine_note_failure(c->engine, rc, true, err);
      if (rc != 0) wg_error_prefix(err, rc, "committing %llu statements", (unsigned long long)n);
    }
    if (rc != 0) wg__engine_exec(c, "ROLLBACK", NULL);
    c->txn_maybe = false;
  }
  duckdb_destroy_extracted(&stmts);
  if (rc == 0 && rows_changed != NULL) *rows_changed = total;
  return rc;
}
