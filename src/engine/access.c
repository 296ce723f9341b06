/* wigeon: the access levels of client SQL (engine.h, enum wg_engine_access): the calling thread's
 * level, set by the server for each call from its caller's role, and the level each statement
 * needs, from its prepared type and what the text's lexer saw (guard.c's wg__engine_sql_traits).
 * Where the type cannot tell (PREPARE/EXECUTE as SQL hide their statement, SET may be global,
 * MERGE comes out INVALID) the level is the highest one. Calls nothing else in the engine. */
#include "engine/engine_internal.h"

#include <stdio.h>

static _Thread_local enum wg_engine_access thread_access; /* 0: never set, ALL */

void wg_engine_thread_set_access(enum wg_engine_access a) {
  thread_access = a;
}

enum wg_engine_access wg_engine_thread_access(void) {
  return thread_access == 0 ? WG_ENGINE_ACCESS_ALL : thread_access;
}

const char *wg_engine_access_name(enum wg_engine_access a) {
  switch (a) {
  case WG_ENGINE_ACCESS_READ:
    return "read";
  case WG_ENGINE_ACCESS_WRITE:
    return "write";
  default:
    return "admin";
  }
}

enum wg_engine_access wg__engine_access_needed(duckdb_statement_type type,
                                               const struct wg__sql_traits *traits) {
  switch (type) {
  case DUCKDB_STATEMENT_TYPE_SELECT: /* also SHOW, DESCRIBE, SUMMARIZE, PRAGMA table_info */
  case DUCKDB_STATEMENT_TYPE_CALL:   /* table functions; CHECKPOINT is a CALL too */
    if (traits->checkpoint) return WG_ENGINE_ACCESS_ALL;
    return traits->sequence ? WG_ENGINE_ACCESS_WRITE : WG_ENGINE_ACCESS_READ;
  case DUCKDB_STATEMENT_TYPE_EXPLAIN: /* EXPLAIN ANALYZE runs its statement, whatever it is */
    return traits->analyze ? WG_ENGINE_ACCESS_ALL : WG_ENGINE_ACCESS_READ;
  case DUCKDB_STATEMENT_TYPE_TRANSACTION:  /* BEGIN, COMMIT, ROLLBACK */
  case DUCKDB_STATEMENT_TYPE_VARIABLE_SET: /* the connection's own state, reset on release */
    return WG_ENGINE_ACCESS_READ;
  case DUCKDB_STATEMENT_TYPE_SET: /* USE, SET search_path, SET VARIABLE; other settings: ALL */
    return traits->setting ? WG_ENGINE_ACCESS_ALL : WG_ENGINE_ACCESS_READ;
  case DUCKDB_STATEMENT_TYPE_INSERT:
  case DUCKDB_STATEMENT_TYPE_UPDATE:
  case DUCKDB_STATEMENT_TYPE_DELETE: /* TRUNCATE too */
  case DUCKDB_STATEMENT_TYPE_COPY:   /* COPY FROM into a table; the sandbox refuses files */
    return WG_ENGINE_ACCESS_WRITE;
  case DUCKDB_STATEMENT_TYPE_INVALID: /* MERGE INTO; UPDATE EXTENSIONS */
    return traits->merge && !traits->checkpoint ? WG_ENGINE_ACCESS_WRITE : WG_ENGINE_ACCESS_ALL;
  default: /* CREATE (TEMP too), ALTER, DROP, PREPARE, EXECUTE, PRAGMA, VACUUM, ANALYZE, LOAD... */
    return WG_ENGINE_ACCESS_ALL;
  }
}

/* What the statement is called in a refusal. */
static const char *statement_name(duckdb_statement_type type) {
  static const char *const names[] = {
      [DUCKDB_STATEMENT_TYPE_SELECT] = "SELECT",
      [DUCKDB_STATEMENT_TYPE_INSERT] = "INSERT",
      [DUCKDB_STATEMENT_TYPE_UPDATE] = "UPDATE",
      [DUCKDB_STATEMENT_TYPE_EXPLAIN] = "EXPLAIN ANALYZE",
      [DUCKDB_STATEMENT_TYPE_DELETE] = "DELETE",
      [DUCKDB_STATEMENT_TYPE_PREPARE] = "PREPARE",
      [DUCKDB_STATEMENT_TYPE_CREATE] = "CREATE",
      [DUCKDB_STATEMENT_TYPE_EXECUTE] = "EXECUTE",
      [DUCKDB_STATEMENT_TYPE_ALTER] = "ALTER",
      [DUCKDB_STATEMENT_TYPE_TRANSACTION] = "a transaction statement",
      [DUCKDB_STATEMENT_TYPE_COPY] = "COPY",
      [DUCKDB_STATEMENT_TYPE_ANALYZE] = "ANALYZE",
      [DUCKDB_STATEMENT_TYPE_VARIABLE_SET] = "SET VARIABLE",
      [DUCKDB_STATEMENT_TYPE_CREATE_FUNC] = "CREATE FUNCTION",
      [DUCKDB_STATEMENT_TYPE_DROP] = "DROP",
      [DUCKDB_STATEMENT_TYPE_EXPORT] = "EXPORT",
      [DUCKDB_STATEMENT_TYPE_PRAGMA] = "PRAGMA",
      [DUCKDB_STATEMENT_TYPE_VACUUM] = "VACUUM",
      [DUCKDB_STATEMENT_TYPE_CALL] = "CALL",
      [DUCKDB_STATEMENT_TYPE_SET] = "SET (of a setting)",
      [DUCKDB_STATEMENT_TYPE_LOAD] = "INSTALL/LOAD",
      [DUCKDB_STATEMENT_TYPE_ATTACH] = "ATTACH",
      [DUCKDB_STATEMENT_TYPE_DETACH] = "DETACH",
  };
  if ((size_t)type < sizeof(names) / sizeof(names[0]) && names[type] != NULL) return names[type];
  return "this statement";
}

int wg__engine_access_refused(duckdb_statement_type type, const struct wg__sql_traits *traits,
                              struct wg_error *err) {
  enum wg_engine_access have = wg_engine_thread_access();
  enum wg_engine_access need = wg__engine_access_needed(type, traits);
  if (need <= have) return 0;
  const char *what = statement_name(type);
  if (type == DUCKDB_STATEMENT_TYPE_INVALID && traits->merge) what = "MERGE";
  if ((type == DUCKDB_STATEMENT_TYPE_SELECT || type == DUCKDB_STATEMENT_TYPE_CALL) &&
      traits->checkpoint)
    what = "CHECKPOINT";
  else if (type == DUCKDB_STATEMENT_TYPE_SELECT || type == DUCKDB_STATEMENT_TYPE_CALL)
    what = "nextval/setval (a sequence write)";
  return wg_error_set(err, EACCES,
                      "Permission Error: %s needs the %s role; this caller has the %s role", what,
                      wg_engine_access_name(need), wg_engine_access_name(have));
}
