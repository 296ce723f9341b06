/* wigeon: DoAction and ListActions. Actions and their Result bodies:
 *   execute     body: SQL, one statement or several (all or nothing). Result: {"rows_changed": N}
 *   drop_table  body: a table name, or schema.table. Result: {"dropped": "NAME"}
 *   checkpoint  body: ignored. Writes the WAL into the database file. Result: {"checkpoint": true}
 *   stats       body: ignored. Result: counters since start, as JSON (see stats_json)
 * An unknown action is UNIMPLEMENTED, naming the ones there are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"
#include "server/internal.h"

static const struct {
  const char *type, *description;
} actions[] = {
    {"execute", "Run the SQL given as the action body: one statement, or several that are all "
                "or nothing; the result is {\"rows_changed\": N}"},
    {"drop_table", "Drop the table named by the body (TABLE or SCHEMA.TABLE)"},
    {"checkpoint", "Write the write-ahead log into the database file"},
    {"stats", "Calls, rows and bytes in and out, errors, active calls and group commits since "
              "start, as JSON"},
};

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

/* The body as a C string: EINVAL when it holds a NUL byte or is not UTF-8 (SQL text and names
 * are text; a C string would be cut at the NUL). *out malloc'ed. */
static int body_text(const ProtobufCBinaryData *b, const char *type, char **out,
                     struct wg_error *err) {
  *out = NULL;
  const char *why;
  if (!wg_text_name_ok(b->data, b->len, &why))
    return wg_error_set(err, EINVAL, "the body of action %s %s", type, why);
  char *t = malloc(b->len + 1);
  if (t == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  if (b->len > 0) memcpy(t, b->data, b->len);
  t[b->len] = '\0';
  *out = t;
  return 0;
}

static char *stats_json(struct wg_server *s) {
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
  wg__server_json_int(o, "connections_accepted", accepted);
  wg__server_json_int(o, "connections_refused", refused);
#undef ADD
  return wg__server_json_take(o);
}

static int run_action(struct wg_server *s, struct wg_rpc_call *call,
                      const Arrow__Flight__Protocol__Action *a, struct wg_error *err) {
  const char *type = a->type ? a->type : "";
  if (strcmp(type, "stats") == 0) return send_result(call, stats_json(s), err);
  if (strcmp(type, "checkpoint") == 0) {
    WG_RETURN_NOT_OK(wg_engine_checkpoint(s->engine, err));
    cJSON *o = cJSON_CreateObject();
    if (o != NULL) cJSON_AddTrueToObject(o, "checkpoint");
    return send_result(call, wg__server_json_take(o), err);
  }
  bool execute = strcmp(type, "execute") == 0;
  if (!execute && strcmp(type, "drop_table") != 0)
    return wg_error_set(err, ENOTSUP,
                        "unknown action '%.100s'; this server has: execute, drop_table, "
                        "checkpoint, stats",
                        type);
  char *text = NULL;
  if (execute) {
    WG_RETURN_NOT_OK(
        wg__server_sql_text(s, a->body.data, a->body.len, "execute action body", &text, err));
  } else {
    WG_RETURN_NOT_OK(body_text(&a->body, type, &text, err));
  }
  if (text[0] == '\0') {
    free(text);
    return wg_error_set(err, EINVAL, "action %s needs a body (%s)", type,
                        execute ? "SQL text" : "a table name");
  }
  struct wg_engine_conn *conn;
  char *json = NULL;
  int rc = wg_engine_acquire(s->engine, &conn, err);
  if (rc == 0) {
    wg_rpc_call_set_cancel_hook(call, wg__server_interrupt_hook, conn);
    cJSON *o = NULL;
    if (execute) {
      int64_t changed = 0;
      rc = wg_engine_execute(conn, text, &changed, err);
      if (rc == 0 && (o = cJSON_CreateObject()) != NULL)
        wg__server_json_int(o, "rows_changed", changed);
    } else {
      char *dot = strchr(text, '.');
      const char *schema_name = NULL, *table = text;
      if (dot != NULL && strchr(dot + 1, '.') == NULL) {
        *dot = '\0';
        schema_name = text;
        table = dot + 1;
      }
      rc = wg_engine_drop_table(conn, schema_name, table, err);
      if (rc == 0 && (o = cJSON_CreateObject()) != NULL) {
        cJSON_AddStringToObject(o, "dropped", table);
        if (schema_name != NULL) cJSON_AddStringToObject(o, "schema", schema_name);
      }
    }
    wg_rpc_call_set_cancel_hook(call, NULL, NULL);
    wg_engine_release(s->engine, conn);
    if (rc == 0) json = wg__server_json_take(o);
  }
  free(text);
  if (rc == 0) rc = send_result(call, json, err);
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
  for (size_t i = 0; rc == 0 && i < sizeof(actions) / sizeof(actions[0]); i++) {
    Arrow__Flight__Protocol__ActionType t = ARROW__FLIGHT__PROTOCOL__ACTION_TYPE__INIT;
    t.type = (char *)actions[i].type;
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
    if (wg_rpc_call_recv(call, &bb) != 0) {
      rc = wg_error_set(&err, ECANCELED, "handshake cancelled");
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
