/* wigeon: DoAction and ListActions. Actions and their Result bodies:
 *   execute     body: SQL, one statement or several (all or nothing). Result: {"rows_changed": N}
 *   drop_table  body: a table name, or schema.table. Result: {"dropped": "NAME"}
 *   checkpoint  body: ignored. Writes the WAL into the database file. Result: {"checkpoint": true}
 *   stats       body: ignored. Result: counters since start, as JSON (see stats_json)
 * An unknown action is UNIMPLEMENTED, naming the ones there are. The actions are one table
 * (`actions`: name, description, body rule, role, handler) that ListActions lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"
#include "server/fsql.h"
#include "server/roles.h"
#include "server/tail.h"

/* Sends `json` (taken: freed here; NULL = out of memory) as the one Result of the action. */
static int send_result(struct wg_rpc_call *call, char *json, struct wg_error *err) {
  if (json == NULL) return wg_error_set(err, ENOMEM, "out of memory for the action's result");
  Arrow__Flight__Protocol__Result r = ARROW__FLIGHT__PROTOCOL__RESULT__INIT;
  r.body.data = (uint8_t *)json;
  r.body.len = strlen(json);
  int rc = wg__server_send_message(call, &r.base, err);
  cJSON_free(json);
  return rc;
}

static cJSON *stats_json(struct wg_server *s) {
  struct wg_server_stats *st = &s->stats;
  pthread_mutex_lock(&s->committer.mu);
  int64_t groups = s->committer.groups, grouped = s->committer.grouped_puts;
  pthread_mutex_unlock(&s->committer.mu);
  int64_t accepted = 0, refused = 0;
  int64_t open = wg_rpc_server_connections(s->rpc, &accepted, &refused);
  cJSON *o = cJSON_CreateObject();
#define ADD(name, x) wg__server_json_int(o, name, atomic_load_explicit(&st->x, memory_order_relaxed))
  ADD("calls", calls);
  ADD("errors", errors);
  wg__server_json_int(o, "active_calls", wg_rpc_server_active_calls(s->rpc));
  ADD("gets", gets);
  ADD("puts", puts);
  ADD("rows_in", rows_in);
  ADD("rows_out", rows_out);
  ADD("bytes_in", bytes_in);
  ADD("bytes_out", bytes_out);
  wg__server_json_int(o, "commit_groups", groups);
  wg__server_json_int(o, "grouped_puts", grouped);
  ADD("stalled_gets", stalled_gets);
  wg__server_json_int(o, "connections", open);
  wg__server_json_int(o, "parked_calls", wg_rpc_server_parked_calls(s->rpc));
  wg__server_json_int(o, "tail_subscribers", wg__tail_subscribers(s->tail));
  wg__server_json_int(o, "tail_filter_queries", wg__tail_filter_queries(s->tail));
  wg__server_json_int(o, "connections_accepted", accepted);
  wg__server_json_int(o, "connections_refused", refused);
#undef ADD
  return o;
}

/* One action: what its body must be, and the JSON object it answers with in *result (NULL when
 * out of memory). The body is checked text, NUL-terminated (NULL for WG__ACTION_BODY_NONE). */
typedef int (*action_fn)(struct wg_server *s, struct wg_rpc_call *call, char *body,
                         cJSON **result, struct wg_error *err);

static int stats_action(struct wg_server *s, struct wg_rpc_call *call, char *body, cJSON **result,
                        struct wg_error *err) {
  (void)call, (void)body, (void)err;
  *result = stats_json(s);
  return 0;
}

static int checkpoint_action(struct wg_server *s, struct wg_rpc_call *call, char *body,
                             cJSON **result, struct wg_error *err) {
  (void)call, (void)body;
  WG_RETURN_NOT_OK(wg_engine_checkpoint(s->engine, err));
  if ((*result = cJSON_CreateObject()) != NULL) cJSON_AddTrueToObject(*result, "checkpoint");
  return 0;
}

/* Runs fn on a pooled connection that a cancel of the call interrupts. */
static int on_conn(struct wg_server *s, struct wg_rpc_call *call,
                   int (*fn)(struct wg_engine_conn *, char *, cJSON **, struct wg_error *),
                   char *body, cJSON **result, struct wg_error *err) {
  struct wg_engine_conn *conn;
  WG_RETURN_NOT_OK(wg_engine_acquire(s->engine, &conn, err));
  wg__limits_query(s, call); /* the query timeout runs from here */
  wg_rpc_call_set_cancel_hook(call, wg__server_interrupt_hook, conn);
  int rc = fn(conn, body, result, err);
  wg_rpc_call_set_cancel_hook(call, NULL, NULL);
  wg_engine_release(s->engine, conn);
  return rc;
}

static int execute_on(struct wg_engine_conn *conn, char *sql, cJSON **result,
                      struct wg_error *err) {
  int64_t changed = 0;
  WG_RETURN_NOT_OK(wg_engine_execute(conn, sql, &changed, err));
  if ((*result = cJSON_CreateObject()) != NULL)
    wg__server_json_int(*result, "rows_changed", changed);
  return 0;
}

/* name is TABLE or SCHEMA.TABLE (a name with two dots or more is one table name) */
static int drop_on(struct wg_engine_conn *conn, char *name, cJSON **result,
                   struct wg_error *err) {
  char *dot = strchr(name, '.');
  const char *schema_name = NULL, *table = name;
  if (dot != NULL && strchr(dot + 1, '.') == NULL) {
    *dot = '\0';
    schema_name = name;
    table = dot + 1;
  }
  WG_RETURN_NOT_OK(wg_engine_drop_table(conn, schema_name, table, err));
  if ((*result = cJSON_CreateObject()) != NULL) {
    cJSON_AddStringToObject(*result, "dropped", table);
    if (schema_name != NULL) cJSON_AddStringToObject(*result, "schema", schema_name);
  }
  return 0;
}

static int execute_action(struct wg_server *s, struct wg_rpc_call *call, char *body,
                          cJSON **result, struct wg_error *err) {
  return on_conn(s, call, execute_on, body, result, err);
}

static int drop_table_action(struct wg_server *s, struct wg_rpc_call *call, char *body,
                             cJSON **result, struct wg_error *err) {
  return on_conn(s, call, drop_on, body, result, err);
}

enum wg__action_body {
  WG__ACTION_BODY_NONE, /* ignored */
  WG__ACTION_BODY_SQL,  /* SQL text (request.c's WG__TEXT_SQL) */
  WG__ACTION_BODY_NAME, /* a name: UTF-8 without NUL, not empty */
  WG__ACTION_BODY_RAW,  /* protobuf (Flight SQL's and Flight's own actions): `raw` handles it */
};

/* The actions: DoAction looks them up here and ListActions lists them from here. */
static const struct wg__action {
  const char *name, *description;
  enum wg_role role; /* what the caller needs (checked before the body is read) */
  enum wg__action_body body;
  action_fn run;
  wg__fsql_action_fn raw; /* WG__ACTION_BODY_RAW: unpacks the body, sends its own results */
} actions[] = {
    {"execute",
     "Run the SQL given as the action body: one statement, or several that are all or nothing; "
     "the result is {\"rows_changed\": N}",
     WG_ROLE_WRITE, WG__ACTION_BODY_SQL, execute_action, NULL},
    {"drop_table", "Drop the table named by the body (TABLE or SCHEMA.TABLE)", WG_ROLE_ADMIN,
     WG__ACTION_BODY_NAME, drop_table_action, NULL},
    {"checkpoint", "Write the write-ahead log into the database file", WG_ROLE_ADMIN,
     WG__ACTION_BODY_NONE, checkpoint_action, NULL},
    {"stats",
     "Calls, rows and bytes in and out, errors, active calls and group commits since start, as "
     "JSON",
     WG_ROLE_ADMIN, WG__ACTION_BODY_NONE, stats_action, NULL},
    /* Flight SQL's actions (bodies and results are google.protobuf.Any) and Flight's own */
    {"CreatePreparedStatement",
     "Flight SQL: prepare a statement (ActionCreatePreparedStatementRequest)", WG_ROLE_READ,
     WG__ACTION_BODY_RAW, NULL, wg__fsql_action_create_prepared},
    {"ClosePreparedStatement",
     "Flight SQL: close a prepared statement (ActionClosePreparedStatementRequest)",
     WG_ROLE_READ, WG__ACTION_BODY_RAW, NULL, wg__fsql_action_close_prepared},
    {"BeginTransaction", "Flight SQL: begin a transaction (ActionBeginTransactionRequest)",
     WG_ROLE_READ, WG__ACTION_BODY_RAW, NULL, wg__fsql_action_begin_transaction},
    {"EndTransaction",
     "Flight SQL: commit or roll back a transaction (ActionEndTransactionRequest)",
     WG_ROLE_READ, WG__ACTION_BODY_RAW, NULL, wg__fsql_action_end_transaction},
    {"BeginSavepoint", "Flight SQL: savepoints (ActionBeginSavepointRequest): not supported",
     WG_ROLE_READ, WG__ACTION_BODY_RAW, NULL, wg__fsql_action_begin_savepoint},
    {"EndSavepoint", "Flight SQL: savepoints (ActionEndSavepointRequest): not supported",
     WG_ROLE_READ, WG__ACTION_BODY_RAW, NULL, wg__fsql_action_end_savepoint},
    {"CancelQuery", "Flight SQL: cancel a query (ActionCancelQueryRequest; older form)",
     WG_ROLE_READ, WG__ACTION_BODY_RAW, NULL, wg__fsql_action_cancel_query},
    {"CancelFlightInfo", "Cancel the query of a FlightInfo (CancelFlightInfoRequest)",
     WG_ROLE_READ, WG__ACTION_BODY_RAW, NULL, wg__fsql_action_cancel_flight_info},
    {"RenewFlightEndpoint", "Extend an endpoint's expiration (RenewFlightEndpointRequest)",
     WG_ROLE_READ, WG__ACTION_BODY_RAW, NULL, wg__fsql_action_renew_endpoint},
    {"SetSessionOptions", "Set session options (SetSessionOptionsRequest)", WG_ROLE_READ,
     WG__ACTION_BODY_RAW, NULL, wg__fsql_action_set_session_options},
    {"GetSessionOptions", "Get session options (GetSessionOptionsRequest)", WG_ROLE_READ,
     WG__ACTION_BODY_RAW, NULL, wg__fsql_action_get_session_options},
    {"CloseSession", "Close the session (CloseSessionRequest)", WG_ROLE_READ,
     WG__ACTION_BODY_RAW, NULL, wg__fsql_action_close_session},
};
enum { N_ACTIONS = sizeof(actions) / sizeof(actions[0]) };

static int unknown_action(const char *type, struct wg_error *err) {
  char names[512] = "";
  size_t used = 0;
  for (size_t i = 0; i < N_ACTIONS; i++) {
    size_t n = strlen(actions[i].name);
    if (used + n + 3 > sizeof(names)) break;
    if (i > 0) {
      memcpy(names + used, ", ", 2);
      used += 2;
    }
    memcpy(names + used, actions[i].name, n + 1);
    used += n;
  }
  char shown[WG_TEXT_SHOWN]; /* the type is the client's: escaped, cut on a character */
  if (!wg_utf8_valid((const uint8_t *)type, strlen(type))) type = "(a name not UTF-8)";
  return wg_error_set(err, ENOTSUP, "unknown action '%s'; this server has: %s",
                      wg_text_shown(type, shown, sizeof(shown)), names);
}

static int run_action(struct wg_server *s, struct wg_rpc_call *call,
                      const Arrow__Flight__Protocol__Action *a, struct wg_error *err) {
  const char *type = a->type ? a->type : "";
  const struct wg__action *def = NULL;
  for (size_t i = 0; i < N_ACTIONS && def == NULL; i++)
    if (strcmp(type, actions[i].name) == 0) def = &actions[i];
  if (def == NULL) return unknown_action(type, err);
  char needs[64];
  snprintf(needs, sizeof(needs), "action %s", def->name);
  WG_RETURN_NOT_OK(wg__role_require(call, def->role, needs, err));
  if (def->body == WG__ACTION_BODY_RAW) return def->raw(s, call, &a->body, err);
  char *body = NULL;
  if (def->body == WG__ACTION_BODY_SQL) {
    WG_RETURN_NOT_OK(wg__request_text(s, a->body.data, a->body.len, WG__TEXT_SQL,
                                      "execute action body", &body, err));
  } else if (def->body == WG__ACTION_BODY_NAME) {
    char what[64];
    snprintf(what, sizeof(what), "the body of action %s", def->name);
    WG_RETURN_NOT_OK(
        wg__request_text(s, a->body.data, a->body.len, WG__TEXT_NAME, what, &body, err));
    if (body[0] == '\0') {
      free(body);
      return wg_error_set(err, EINVAL, "action %s needs a body (a table name)", def->name);
    }
  }
  cJSON *result = NULL;
  int rc = def->run(s, call, body, &result, err);
  free(body);
  if (rc == 0) rc = send_result(call, wg__server_json_take(result), err);
  else cJSON_Delete(result);
  return rc;
}

void wg__server_do_action(struct wg_server *s, struct wg_rpc_call *call) {
  struct wg_error err = {""};
  ProtobufCMessage *msg = NULL;
  int rc = wg__server_recv_request(call, &arrow__flight__protocol__action__descriptor, &msg, &err);
  if (rc == 0) {
    rc = run_action(s, call, (const Arrow__Flight__Protocol__Action *)msg, &err);
    protobuf_c_message_free_unpacked(msg, NULL);
  }
  wg__server_finish(s, call, rc, &err);
}

void wg__server_list_actions(struct wg_server *s, struct wg_rpc_call *call) {
  struct wg_error err = {""};
  ProtobufCMessage *msg = NULL;
  int rc = wg__server_recv_request(call, &arrow__flight__protocol__empty__descriptor, &msg, &err);
  if (rc == 0) protobuf_c_message_free_unpacked(msg, NULL);
  for (size_t i = 0; rc == 0 && i < N_ACTIONS; i++) {
    Arrow__Flight__Protocol__ActionType t = ARROW__FLIGHT__PROTOCOL__ACTION_TYPE__INIT;
    t.type = (char *)actions[i].name;
    t.description = (char *)actions[i].description;
    rc = wg__server_send_message(call, &t.base, &err);
  }
  wg__server_finish(s, call, rc, &err);
}

/* Handshake: no authentication yet. Each request is answered with the same protocol version and
 * an empty payload until the client half-closes. */
void wg__server_handshake(struct wg_server *s, struct wg_rpc_call *call) {
  struct wg_error err = {""};
  int rc = 0;
  for (int i = 0; i < 64 && rc == 0; i++) {
    grpc_byte_buffer *bb = NULL;
    rc = wg_rpc_call_recv(call, &bb);
    if (rc != 0) {
      wg_rpc_call_error(call, rc, "Handshake", &err);
      break;
    }
    if (bb == NULL) break;
    ProtobufCMessage *msg = NULL;
    rc = wg_flight_unpack(&arrow__flight__protocol__handshake_request__descriptor, bb, &msg, &err);
    grpc_byte_buffer_destroy(bb);
    if (rc != 0) break;
    Arrow__Flight__Protocol__HandshakeResponse r =
        ARROW__FLIGHT__PROTOCOL__HANDSHAKE_RESPONSE__INIT;
    r.protocol_version = ((Arrow__Flight__Protocol__HandshakeRequest *)msg)->protocol_version;
    protobuf_c_message_free_unpacked(msg, NULL);
    rc = wg__server_send_message(call, &r.base, &err);
  }
  wg__server_finish(s, call, rc, &err);
}
