/* wigeon: CommandStatementIngest's options (see fsql_ingest.h): the table definition options
 * mapped to the engine's (wg_engine_ingest_opts), names checked, the catalog compared with the
 * database's, backend options refused except the idempotency key. The batches themselves are
 * do_put.c's business, exactly as for a put to a PATH. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"
#include "server/fsql_ingest.h"

#define TDO(x) ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_INGEST__TABLE_DEFINITION_OPTIONS__##x
#define INGEST_KEY_OPTION "idempotency_key"

typedef Arrow__Flight__Protocol__Sql__CommandStatementIngest ingest_msg;

/* A name of the command: NULL stays NULL, else valid UTF-8 (NUL bytes cannot be: see parse). */
static int check_name(const char *what, const char *name, struct wg_error *err) {
  const char *why;
  if (name != NULL && !wg_text_name_ok((const uint8_t *)name, strlen(name), &why))
    return wg_error_set(err, EINVAL, "CommandStatementIngest: the %s name %s", what, why);
  return 0;
}

/* if_not_exist and if_exists -> the engine's options; UNSPECIFIED (or absent) is an error, as
 * the spec says ("Servers should error if this is specified by a client"). */
static int table_options(const ingest_msg *m, struct wg_engine_ingest_opts *o,
                         struct wg_error *err) {
  const Arrow__Flight__Protocol__Sql__CommandStatementIngest__TableDefinitionOptions *t =
      m->table_definition_options;
  if (t == NULL)
    return wg_error_set(err, EINVAL, "CommandStatementIngest: no table_definition_options "
                                     "(if_not_exist and if_exists are required)");
  int ne = t->has_if_not_exist ? (int)t->if_not_exist : 0;
  int ex = t->has_if_exists ? (int)t->if_exists : 0;
  if (ne == TDO(TABLE_NOT_EXIST_OPTION__TABLE_NOT_EXIST_OPTION_CREATE))
    o->fail_if_missing = false;
  else if (ne == TDO(TABLE_NOT_EXIST_OPTION__TABLE_NOT_EXIST_OPTION_FAIL))
    o->fail_if_missing = true;
  else
    return wg_error_set(err, EINVAL, "CommandStatementIngest: if_not_exist %s; expected CREATE "
                        "or FAIL", ne == 0 ? "is UNSPECIFIED" : "is not a known value");
  if (ex == TDO(TABLE_EXISTS_OPTION__TABLE_EXISTS_OPTION_FAIL))
    o->if_exists = WG_ENGINE_IF_EXISTS_FAIL;
  else if (ex == TDO(TABLE_EXISTS_OPTION__TABLE_EXISTS_OPTION_APPEND))
    o->if_exists = WG_ENGINE_IF_EXISTS_APPEND;
  else if (ex == TDO(TABLE_EXISTS_OPTION__TABLE_EXISTS_OPTION_REPLACE))
    o->if_exists = WG_ENGINE_IF_EXISTS_REPLACE;
  else
    return wg_error_set(err, EINVAL, "CommandStatementIngest: if_exists %s; expected FAIL, "
                        "APPEND or REPLACE", ex == 0 ? "is UNSPECIFIED" : "is not a known value");
  return 0;
}

/* The backend options: only "idempotency_key" (the same key a plain put takes in its header or
 * app_metadata); any other is refused, so that a client counting on an option it names is told. */
static int backend_options(const ingest_msg *m, struct wg__ingest_cmd *out, struct wg_error *err) {
  char shown[WG_TEXT_SHOWN];
  for (size_t i = 0; i < m->n_options; i++) {
    const char *k = m->options[i]->key != NULL ? m->options[i]->key : "";
    const char *v = m->options[i]->value != NULL ? m->options[i]->value : "";
    if (strcmp(k, INGEST_KEY_OPTION) != 0)
      return wg_error_set(err, EINVAL, "CommandStatementIngest: option \"%s\" is not supported "
                          "(the one option this server takes is \"" INGEST_KEY_OPTION "\")",
                          wg_text_shown(k, shown, sizeof(shown)));
    const char *why;
    if (v[0] == '\0' || strlen(v) > WG_ENGINE_MAX_KEY_BYTES ||
        !wg_text_name_ok((const uint8_t *)v, strlen(v), &why))
      return wg_error_set(err, EINVAL, "CommandStatementIngest: option " INGEST_KEY_OPTION
                          ": 1 to %d bytes of UTF-8 text", WG_ENGINE_MAX_KEY_BYTES);
    out->key = v;
  }
  return 0;
}

int wg__fsql_ingest_parse(const struct wg__request *r, struct wg__ingest_cmd *out,
                          struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  struct wg__fsql_cmd c;
  WG_RETURN_NOT_OK(wg__fsql_unpack(r, "DoPut", &c, err));
  out->msg = c.msg;
  const ingest_msg *m = (const ingest_msg *)c.msg;
  /* a string cut by a NUL byte is refused by wg__fsql_unpack */
  WG_RETURN_NOT_OK(check_name("table", m->table, err));
  WG_RETURN_NOT_OK(check_name("schema", m->schema, err));
  WG_RETURN_NOT_OK(check_name("catalog", m->catalog, err));
  if (m->table == NULL || m->table[0] == '\0')
    return wg_error_set(err, EINVAL, "CommandStatementIngest: no table named");
  out->table = m->table;
  out->schema_name = m->schema != NULL && m->schema[0] != '\0' ? m->schema : NULL;
  out->catalog = m->catalog != NULL && m->catalog[0] != '\0' ? m->catalog : NULL;
  out->has_txn = m->has_transaction_id && m->transaction_id.len > 0;
  out->txn_id = m->transaction_id;
  WG_RETURN_NOT_OK(table_options(m, &out->opts, err));
  WG_RETURN_NOT_OK(backend_options(m, out, err));
  /* A temporary table lives on one DuckDB connection and goes with it: without a transaction a
   * put's connection goes back to the pool when the put ends, and the table would be gone (or,
   * worse, seen by the next call on that connection). */
  out->opts.temporary = m->has_temporary && m->temporary;
  if (out->opts.temporary && out->schema_name != NULL)
    return wg_error_set(err, EINVAL, "CommandStatementIngest: a temporary table has no schema "
                                     "(it is the session's own); send no schema with it");
  if (out->opts.temporary && !out->has_txn)
    return wg_error_set(err, EINVAL, "CommandStatementIngest: temporary tables need a "
                                     "transaction (a temporary table lives on one connection, "
                                     "and a put without a transaction id has none to keep it)");
  return 0;
}

void wg__fsql_ingest_reset(struct wg__ingest_cmd *cmd) {
  if (cmd->msg != NULL) protobuf_c_message_free_unpacked(cmd->msg, NULL);
  memset(cmd, 0, sizeof(*cmd));
}

int wg__fsql_ingest_check_catalog(struct wg_engine_conn *c, const struct wg__ingest_cmd *cmd,
                                  struct wg_error *err) {
  if (cmd->catalog == NULL) return 0;
  char *name = NULL;
  WG_RETURN_NOT_OK(wg_engine_database_name(c, &name, err));
  int rc = 0;
  if (strcmp(name, cmd->catalog) != 0) {
    char shown[WG_TEXT_SHOWN];
    rc = wg_error_set(err, EINVAL, "CommandStatementIngest: catalog \"%s\": this server has one "
                      "database, \"%s\" (name it, or no catalog)",
                      wg_text_shown(cmd->catalog, shown, sizeof(shown)), name);
  }
  free(name);
  return rc;
}

int wg__fsql_ingest_ack(struct wg_rpc_call *call, int64_t rows, struct wg_error *err) {
  Arrow__Flight__Protocol__Sql__DoPutUpdateResult r =
      ARROW__FLIGHT__PROTOCOL__SQL__DO_PUT_UPDATE_RESULT__INIT;
  r.has_record_count = 1;
  r.record_count = rows;
  return wg__fsql_put_result(call, &r.base, err);
}
