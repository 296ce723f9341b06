/* wigeon: Flight SQL's dispatch (see fsql.h): the command table, unpacking a command for an RPC,
 * the RPCs' entries, and the per-concern state. The helpers the handlers share are in
 * fsql_call.c, so that calls between the files go one way: here -> handlers -> fsql_call.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"
#include "server/fsql.h"
#include "server/roles.h"

#define D(x) &arrow__flight__protocol__sql__##x##__descriptor
/* The commands: one row each; a NULL handler is an RPC that does not serve the command. The
 * role: updates and ingest write; everything else reads (a prepared statement's SQL is checked
 * statement by statement in the engine: DML prepared as a query needs write there). */
static const struct wg__fsql_def defs[] = {
    {D(command_statement_query), wg__fsql_statement_info, NULL, NULL, WG_ROLE_READ},
    {D(ticket_statement_query), NULL, wg__fsql_statement_get, NULL, WG_ROLE_READ},
    {D(command_statement_update), NULL, NULL, wg__fsql_statement_update, WG_ROLE_WRITE},
    {D(command_prepared_statement_query), wg__fsql_prepared_info, wg__fsql_prepared_get,
     wg__fsql_prepared_bind, WG_ROLE_READ},
    {D(command_prepared_statement_update), NULL, NULL, wg__fsql_prepared_update, WG_ROLE_WRITE},
    /* CommandStatementIngest is served by do_put.c's own path (group commit, idempotency keys):
     * it is in the table so that it unpacks, with no handler here */
    {D(command_statement_ingest), NULL, NULL, NULL, WG_ROLE_WRITE},
    {D(command_get_catalogs), wg__fsql_meta_info, wg__fsql_meta_get, NULL, WG_ROLE_READ},
    {D(command_get_db_schemas), wg__fsql_meta_info, wg__fsql_meta_get, NULL, WG_ROLE_READ},
    {D(command_get_tables), wg__fsql_meta_info, wg__fsql_meta_get, NULL, WG_ROLE_READ},
    {D(command_get_table_types), wg__fsql_meta_info, wg__fsql_meta_get, NULL, WG_ROLE_READ},
    {D(command_get_sql_info), wg__fsql_meta_info, wg__fsql_meta_get, NULL, WG_ROLE_READ},
    {D(command_get_xdbc_type_info), wg__fsql_meta_info, wg__fsql_meta_get, NULL, WG_ROLE_READ},
    {D(command_get_primary_keys), wg__fsql_meta_info, wg__fsql_meta_get, NULL, WG_ROLE_READ},
    {D(command_get_exported_keys), wg__fsql_meta_info, wg__fsql_meta_get, NULL, WG_ROLE_READ},
    {D(command_get_imported_keys), wg__fsql_meta_info, wg__fsql_meta_get, NULL, WG_ROLE_READ},
    {D(command_get_cross_reference), wg__fsql_meta_info, wg__fsql_meta_get, NULL, WG_ROLE_READ},
};
#undef D
enum { N_DEFS = sizeof(defs) / sizeof(defs[0]) };

/* The message name of a type_url ("type.googleapis.com/arrow.flight.protocol.sql.X" -> X). */
static const char *command_name(const char *type_url) {
  return type_url + strlen(WG_FLIGHT_SQL_TYPE_PREFIX);
}

int wg__fsql_unpack(const struct wg__request *r, const char *rpc, struct wg__fsql_cmd *out,
                    struct wg_error *err) {
  out->def = NULL;
  out->msg = NULL;
  const char *name = command_name(r->type_url);
  const struct wg__fsql_def *def = NULL;
  for (size_t i = 0; i < N_DEFS && def == NULL; i++)
    if (strcmp(name, defs[i].desc->short_name) == 0) def = &defs[i];
  if (def == NULL) return wg__request_refuse(r, rpc, err); /* UNIMPLEMENTED naming it */
  bool served = (strcmp(rpc, "DoGet") == 0 && def->get != NULL) ||
                (strcmp(rpc, "DoPut") == 0 &&
                 (def->put != NULL || def->desc == &arrow__flight__protocol__sql__command_statement_ingest__descriptor)) ||
                (strcmp(rpc, "DoGet") != 0 && strcmp(rpc, "DoPut") != 0 && def->info != NULL);
  if (!served) {
    const char *how = def->get != NULL   ? "a DoGet ticket"
                      : def->info != NULL ? "a GetFlightInfo command"
                                          : "a DoPut command";
    return wg_error_set(err, EINVAL, "Flight SQL %s is %s, not a %s request", name, how, rpc);
  }

  ProtobufCMessage *m = protobuf_c_message_unpack(def->desc, NULL, r->value_len, r->value);
  if (m == NULL)
    return wg_error_set(err, EINVAL, "Flight SQL %s: the command's bytes are not a valid %s",
                        name, name);
  /* protobuf-c cuts a string at a NUL byte: SQL or a name holding one would silently run or name
   * something else. Packed again, a message with a cut string is shorter than what arrived. */
  if (protobuf_c_message_get_packed_size(m) != r->value_len) {
    protobuf_c_message_free_unpacked(m, NULL);
    return wg_error_set(err, EINVAL, "Flight SQL %s: a string of the command holds a NUL byte "
                                     "(or the message is not encoded canonically)", name);
  }
  out->def = def;
  out->msg = m;
  return 0;
}

/* The caller's role against the command's, before any connection is taken. */
static int unpack_for(struct wg_rpc_call *call, const struct wg__request *r, const char *rpc,
                      struct wg__fsql_cmd *out, struct wg_error *err) {
  WG_RETURN_NOT_OK(wg__fsql_unpack(r, rpc, out, err));
  char what[96];
  snprintf(what, sizeof(what), "Flight SQL %.64s", out->def->desc->short_name);
  int rc = wg__role_require(call, out->def->role, what, err);
  if (rc != 0) wg__fsql_cmd_reset(out);
  return rc;
}

void wg__fsql_cmd_reset(struct wg__fsql_cmd *c) {
  if (c->msg != NULL) protobuf_c_message_free_unpacked(c->msg, NULL);
  c->msg = NULL;
  c->def = NULL;
}

int wg__fsql_info(struct wg_server *s, struct wg_rpc_call *call, const struct wg__request *r,
                  const char *rpc, struct wg__fsql_info *out, struct wg_error *err) {
  wg_buf_init(&out->schema);
  wg_buf_init(&out->ticket);
  out->rows = -1;
  out->describe_only = strcmp(rpc, "GetSchema") == 0;
  struct wg__fsql_cmd c;
  WG_RETURN_NOT_OK(unpack_for(call, r, rpc, &c, err));
  int rc = c.def->info(s, call, c.msg, out, err);
  wg__fsql_cmd_reset(&c);
  if (rc != 0) wg__fsql_info_reset(out);
  return rc;
}

void wg__fsql_info_reset(struct wg__fsql_info *i) {
  wg_buf_reset(&i->schema);
  wg_buf_reset(&i->ticket);
}

int wg__fsql_get(struct wg_server *s, struct wg_rpc_call *call, const struct wg__request *r,
                 struct wg__fsql_result *out, struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  struct wg__fsql_cmd c;
  WG_RETURN_NOT_OK(unpack_for(call, r, "DoGet", &c, err));
  int rc = c.def->get(s, call, c.msg, out, err);
  wg__fsql_cmd_reset(&c);
  if (rc != 0) wg__fsql_result_reset(s, out);
  return rc;
}

void wg__fsql_result_reset(struct wg_server *s, struct wg__fsql_result *res) {
  free(res->sql);
  res->sql = NULL;
  wg_stream_release(&res->stream);
  wg__fsql_conn_release(s, &res->conn);
}

int wg__fsql_put(struct wg_server *s, struct wg_rpc_call *call, const struct wg__request *r,
                 const struct wg_flight_data *first, struct wg_ipc_decoder *dec,
                 struct wg_error *err) {
  struct wg__fsql_cmd c;
  WG_RETURN_NOT_OK(unpack_for(call, r, "DoPut", &c, err));
  struct wg__put_stream in;
  wg__put_stream_init(&in, s, call, dec, first);
  int rc = c.def->put != NULL ? c.def->put(s, call, c.msg, &in, err)
                              : wg_error_set(err, EINVAL, "Flight SQL %s: not served here",
                                             c.def->desc->short_name);
  /* whatever the handler left unread is drained, so the client's half-close is seen */
  if (rc == 0) rc = wg__put_stream_drain(&in, err);
  wg__fsql_cmd_reset(&c);
  return rc;
}

/* ---- state ----------------------------------------------------------------------------------- */
int wg__fsql_start(struct wg_server *s, struct wg_error *err) {
  s->fsql = calloc(1, sizeof(*s->fsql));
  if (s->fsql == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  int rc = wg__fsql_txn_init(s, err);
  if (rc == 0) rc = wg__fsql_prepared_init(s, err);
  if (rc == 0) rc = wg__fsql_running_init(s, err);
  if (rc != 0) wg__fsql_stop(s);
  return rc;
}

void wg__fsql_stop(struct wg_server *s) {
  if (s->fsql == NULL) return;
  wg__fsql_running_fini(s);
  wg__fsql_prepared_fini(s);
  wg__fsql_txn_fini(s); /* last: prepared statements and running queries may use transactions */
  free(s->fsql);
  s->fsql = NULL;
}
