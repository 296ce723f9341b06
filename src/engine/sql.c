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
  if (c->session_txn && type != DUCKDB_STATEMENT_TYPE_SELECT) c->session_wrote = true;
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


int wg__engine_rollback(struct wg_engine_conn *c) {
  /* A cancel's interrupt may land on the ROLLBACK itself (the hook runs until the handler
   * returns): once more, so that no aborted transaction stays on the connection. */
  if (wg__engine_exec(c, "ROLLBACK", NULL) == 0) return 0;
  return wg__engine_exec(c, "ROLLBACK", NULL);
}

int wg__engine_begin(struct wg_engine_conn *c, struct wg_error *err) {
  int rc = wg__engine_exec(c, "BEGIN TRANSACTION", err);
  if (rc == 0 || c->txn_maybe || c->session_txn) { /* a failure inside a transaction leaves it */
    if (rc == 0) c->txn_maybe = true;
    return rc;
  }
  if (wg__engine_rollback(c) != 0) c->txn_maybe = true; /* none began: release's costs one more */
  return rc;
}

void wg__engine_own_txn_end(struct wg_engine_conn *c, bool commit) {
  if (commit && wg__engine_exec(c, "COMMIT", NULL) == 0) {
    c->txn_maybe = false;
    return;
  }
  if (wg__engine_rollback(c) == 0) c->txn_maybe = false; /* else: release's */
}

/* The statements whose plan DuckDB may narrow from the table statistics at prepare time. */
static bool plans_from_statistics(duckdb_prepared_statement p) {
  switch (duckdb_prepared_statement_type(p)) {
  case DUCKDB_STATEMENT_TYPE_SELECT:
  case DUCKDB_STATEMENT_TYPE_INSERT:
  case DUCKDB_STATEMENT_TYPE_UPDATE:
  case DUCKDB_STATEMENT_TYPE_DELETE:
    return true;
  default:
    return false;
  }
}

/* ---------------------------------------------------------------------------------------------
 * Client SQL: the one path (see engine_internal.h, struct wg__client_sql) */

/* One prepared statement of q (statement i of n): the caller's check, the write checks, the
 * sandbox's refusals, the run; then wg__engine_statement_done whatever happened. Takes *p. */
static int client_statement(struct wg_engine_conn *c, struct wg__client_sql *q, idx_t i,
                            duckdb_prepared_statement *p, struct wg_error *err) {
  q->type = duckdb_prepared_statement_type(*p);
  q->failed_at = WG__CLIENT_REFUSED;
  int refused = wg__engine_access_refused(q->type, &q->traits, err); /* before anything runs */
  if (refused != 0) {
    duckdb_destroy_prepare(p);
    return refused;
  }
  if (c->session_txn && q->type == DUCKDB_STATEMENT_TYPE_TRANSACTION) {
    /* COMMIT as SQL would end the session's transaction behind its owner's back */
    q->failed_at = WG__CLIENT_REFUSED;
    duckdb_destroy_prepare(p);
    return wg_error_set(err, EPERM, "BEGIN, COMMIT and ROLLBACK cannot run as SQL inside a "
                                    "Flight SQL transaction: end it with EndTransaction");
  }
  q->failed_at = WG__CLIENT_BEFORE_RUN;
  int rc = q->before_run != NULL ? q->before_run(q->ctx, i, q->n, *p, err) : 0;
  if (rc == 0 && !q->prepare_only && q->type != DUCKDB_STATEMENT_TYPE_SELECT) {
    /* a write (EXPLAIN too: EXPLAIN ANALYZE runs its statement): not into a database that had a
     * fatal error, not onto a full disk */
    q->failed_at = WG__CLIENT_WRITE_CHECKS;
    rc = wg_engine_fatal(c->engine, err);
    if (rc == 0) rc = wg_engine_check_room(c->engine, 0, err);
  }
  if (rc == 0 && c->engine->sandboxed) {
    q->failed_at = WG__CLIENT_REFUSED;
    rc = wg__engine_statement_refused(q->type, err);
  }
  if (rc == 0) {
    q->failed_at = WG__CLIENT_RUN;
    rc = q->run(q->ctx, c, p, err);
  }
  if (!q->prepare_only) wg__engine_statement_done(c, q->type, rc == 0);
  if (*p != NULL) duckdb_destroy_prepare(p);
  return rc;
}

int wg__engine_client_sql(struct wg_engine_conn *c, struct wg__client_sql *q,
                          struct wg_error *err) {
  q->type = DUCKDB_STATEMENT_TYPE_INVALID;
  q->n = 1;
  q->failed = 0;
  q->failed_at = WG__CLIENT_GUARD;
  WG_RETURN_NOT_OK(wg__engine_conn_idle(c, err));
  WG_RETURN_NOT_OK(wg__engine_guard(c, q->sql, err));
  wg__engine_sql_traits(q->sql, strlen(q->sql), &q->traits);
  q->failed_at = WG__CLIENT_PREPARE;
  duckdb_prepared_statement p = NULL;
  q->own_txn = false;
  if (!q->each_statement) {
    /* See snapshot (engine_internal.h): prepared in the transaction it runs in. A statement that
     * is not a SELECT is prepared again outside it and runs as before. */
    bool own = q->snapshot && !q->prepare_only && !c->session_txn && !c->txn_maybe &&
               wg__engine_begin(c, NULL) == 0;
    for (;;) {
      if (duckdb_prepare(c->conn, q->sql, &p) != DuckDBSuccess) {
        int rc = wg__engine_prepare_error(p, err);
        duckdb_destroy_prepare(&p);
        if (own) wg__engine_own_txn_end(c, false);
        return rc;
      }
      if (!own || duckdb_prepared_statement_type(p) == DUCKDB_STATEMENT_TYPE_SELECT) break;
      duckdb_destroy_prepare(&p);
      wg__engine_own_txn_end(c, false);
      own = false;
    }
    q->own_txn = own;
    int rc = client_statement(c, q, 0, &p, err);
    if (rc != 0 && own) {
      wg__engine_own_txn_end(c, false);
      q->own_txn = false;
    }
    return rc;
  }
  duckdb_extracted_statements stmts = NULL;
  q->n = duckdb_extract_statements(c->conn, q->sql, &stmts);
  int rc = 0;
  if (q->n == 0) {
    rc = wg_engine_error_set(err, DUCKDB_ERROR_INVALID, duckdb_extract_statements_error(stmts),
                             "no statement to execute");
  }
  for (idx_t i = 0; i < q->n && rc == 0; i++) {
    q->failed = i;
    q->failed_at = WG__CLIENT_PREPARE;
    /* snapshot: the first statement prepared in the transaction it runs in, when it is a query or
     * DML (DuckDB 1.4.4 plans from the statistics at prepare time: a DELETE ... WHERE prepared
     * while a column held one value, run after another commit, would delete the new rows too).
     * For other statements that transaction ends at once and they run as before (an extracted
     * statement can be prepared only once). */
    bool own = i == 0 && q->snapshot && !c->session_txn && !c->txn_maybe &&
               wg__engine_begin(c, NULL) == 0;
    int prepared = duckdb_prepare_extracted_statement(c->conn, stmts, i, &p);
    if (own && (prepared != DuckDBSuccess || !plans_from_statistics(p))) {
      wg__engine_own_txn_end(c, false); /* p stays: prepared once, it runs as it did before */
      own = false;
    }
    if (i == 0) q->own_txn = own;
    if (prepared != DuckDBSuccess) {
      rc = wg__engine_prepare_error(p, err);
      duckdb_destroy_prepare(&p);
    } else {
      rc = client_statement(c, q, i, &p, err);
    }
    /* the caller's and the write checks' messages say it all; the others get the position */
    bool name_it = q->failed_at == WG__CLIENT_PREPARE || q->failed_at == WG__CLIENT_REFUSED ||
                   q->failed_at == WG__CLIENT_RUN;
    if (rc != 0 && q->n > 1 && name_it)
      wg_error_prefix(err, rc, "statement %llu of %llu (none of them took effect)",
                      (unsigned long long)i + 1, (unsigned long long)q->n);
  }
  duckdb_destroy_extracted(&stmts);
  return rc;
}

/* ---------------------------------------------------------------------------------------------
 * wg_engine_execute: client SQL of several statements, all or nothing */

struct execute {
  struct wg_engine_conn *c;
  const struct wg__client_sql *q;
  bool own_txn; /* the text runs in a transaction of its own, begun before its first statement */
  int64_t total;
};

/* Several statements are all or nothing. Either the text manages its transaction (it starts with
 * BEGIN, and COMMIT or ROLLBACK may end it: stopping at the first error leaves the transaction
 * open, and release rolls it back), or it runs in one transaction of its own. Transaction control
 * anywhere else would let part of the text commit: refused. Which case it is shows only once the
 * first statement is prepared (later ones may bind only after the earlier ones ran). */
static int execute_before_run(void *ctx, idx_t i, idx_t n, duckdb_prepared_statement p,
                              struct wg_error *err) {
  struct execute *x = ctx;
  bool control = duckdb_prepared_statement_type(p) == DUCKDB_STATEMENT_TYPE_TRANSACTION;
  if (i == 0 && x->q->own_txn) { /* begun before the first statement was prepared */
    x->own_txn = true;
    return 0;
  }
  if (n > 1 && i == 0 && !control && !x->c->session_txn) { /* else: inside the session's */
    WG_RETURN_NOT_OK(wg__engine_begin(x->c, err));
    x->own_txn = true;
  } else if (n > 1 && control && i > 0 && (x->own_txn || i + 1 < n)) {
    return wg_error_set(err, EINVAL,
                        "statement %llu of %llu is BEGIN, COMMIT or ROLLBACK: several statements "
                        "are all or nothing, so transaction control may only start the text "
                        "(BEGIN) and end it (COMMIT or ROLLBACK); none of them took effect",
                        (unsigned long long)i + 1, (unsigned long long)n);
  }
  return 0;
}

/* Runs one statement as a streaming pending result whose rows are not fetched: a SELECT sent
 * here costs its first chunk, not its whole result. */
static int execute_run(void *ctx, struct wg_engine_conn *c, duckdb_prepared_statement *p,
                       struct wg_error *err) {
  struct execute *x = ctx;
  duckdb_statement_type st = duckdb_prepared_statement_type(*p);
  duckdb_pending_result pending = NULL;
  int rc = 0;
  if (duckdb_pending_prepared_streaming(*p, &pending) != DuckDBSuccess) {
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
      x->total += (int64_t)duckdb_rows_changed(&r);
    }
    duckdb_destroy_result(&r);
  }
  duckdb_destroy_pending(&pending);
  return rc;
}

/* Runs every statement of `sql` in turn. A transaction statement (BEGIN) may leave a transaction
 * open: then the connection is rolled back on release. */
int wg_engine_execute(struct wg_engine_conn *c, const char *sql, int64_t *rows_changed,
                      struct wg_error *err) {
  if (rows_changed != NULL) *rows_changed = 0;
  if (c == NULL || sql == NULL) return wg_error_set(err, EINVAL, "execute: NULL connection or sql");
  struct execute x = {.c = c};
  struct wg__client_sql q = {
      .sql = sql,
      .each_statement = true,
      .snapshot = true,
      .before_run = execute_before_run,
      .run = execute_run,
      .ctx = &x,
  };
  x.q = &q;
  int rc = wg__engine_client_sql(c, &q, err);
  if (q.own_txn && !x.own_txn && c->txn_maybe) /* refused or failed before its first run */
    x.own_txn = true;
  if (x.own_txn && c->txn_maybe) {
    if (rc == 0) {
      rc = wg__engine_exec(c, "COMMIT", err);
      wg__engine_note_failure(c->engine, rc, true, err);
      if (rc != 0)
        wg_error_prefix(err, rc, "committing %llu statements", (unsigned long long)q.n);
    }
    if (rc == 0 || wg__engine_rollback(c) == 0) c->txn_maybe = false; /* else: release's */
  }
  if (rc == 0 && rows_changed != NULL) *rows_changed = x.total;
  return rc;
}
