/* wigeon: DoAction and ListActions. Actions and their Result bodies:
 *   execute     body: one SQL statement (DDL or DML). Result: {"rows_changed": N}
 *   drop_table  body: a table name, or schema.table. Result: {"dropped": "NAME"}
 *   checkpoint  body: ignored. Writes the WAL into the database file. Result: {"checkpoint": true}
 *   stats       body: ignored. Result: counters since start, as JSON (see stats_json)
 * An unknown action is UNIMPLEMENTED, naming the ones there are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

static const struct {
  const char *type, *description;
} actions[] = {
    {"execute", "Run one SQL statement (DDL or DML) given as the action body; the result is "
                "{\"rows_changed\": N}"},
    {"drop_table", "Drop the table named by the body (TABLE or SCHEMA.TABLE)"},
    {"checkpoint", "Write the write-ahead log into the database file"},
    {"stats", "Calls, rows and bytes in and out, errors, active calls and group commits since "
              "start, as JSON"},
};

static int send_result(struct wg_rpc_call *call, const char *json, struct wg_error *err) {
  Arrow__Flight__Protocol__Result r = ARROW__FLIGHT__PROTOCOL__RESULT__INIT;
  r.body.data = (uint8_t *)json;
  r.body.len = strlen(json);
  return wg__server_send_message(call, &r.base, err);
}

static char *body_text(const ProtobufCBinaryData *b) {
  if (memchr(b->data, 0, b->len) != NULL) return NULL;
  char *t = malloc(b->len + 1);
  if (t == NULL) return NULL;
  memcpy(t, b->data, b->len);
  t[b->len] = '\0';
  return t;
}

static void stats_json(struct wg_server *s, char *out, size_t n) {
  struct wg_server_stats *st = &s->stats;
  pthread_mutex_lock(&s->committer.mu);
  long long groups = (long long)s->committer.groups, grouped = (long long)s->committer.grouped_puts;
  pthread_mutex_unlock(&s->committer.mu);
#define LOAD(x) (long long)atomic_load_explicit(&st->x, memory_order_relaxed)
  snprintf(out, n,
           "{\"calls\": %lld, \"errors\": %lld, \"active_calls\": %lld, \"gets\": %lld, "
           "\"puts\": %lld, \"rows_in\": %lld, \"rows_out\": %lld, \"bytes_in\": %lld, "
           "\"bytes_out\": %lld, \"commit_groups\": %lld, \"grouped_puts\": %lld}",
           LOAD(calls), LOAD(errors), (long long)wg_rpc_server_active_calls(s->rpc), LOAD(gets),
           LOAD(puts), LOAD(rows_in), LOAD(rows_out), LOAD(bytes_in), LOAD(bytes_out), groups,
           grouped);
#undef LOAD
}

static int run_action(struct wg_server *s, struct wg_rpc_call *call,
                      const Arrow__Flight__Protocol__Action *a, struct wg_error *err) {
  const char *type = a->type ? a->type : "";
  char json[1024];
  if (strcmp(type, "stats") == 0) {
    stats_json(s, json, sizeof(json));
    return send_result(call, json, err);
  }
  if (strcmp(type, "checkpoint") == 0) {
    WG_RETURN_NOT_OK(wg_engine_checkpoint(s->engine, err));
    return send_result(call, "{\"checkpoint\": true}", err);
  }
  if (strcmp(type, "execute") != 0 && strcmp(type, "drop_table") != 0)
    return wg_error_set(err, ENOTSUP,
                        "unknown action '%.100s'; this server has: execute, drop_table, "
                        "checkpoint, stats",
                        type);
  char *text = NULL;
  if (type[0] == 'e') {
    WG_RETURN_NOT_OK(
        wg__server_sql_text(s, a->body.data, a->body.len, "execute action body", &text, err));
  } else if ((text = body_text(&a->body)) == NULL || text[0] == '\0') {
    free(text);
    return wg_error_set(err, EINVAL, "action %s needs a body (a table name)", type);
  }
  struct wg_engine_conn *conn;
  int rc = wg_engine_acquire(s->engine, &conn, err);
  if (rc == 0) {
    wg_rpc_call_set_cancel_hook(call, wg__server_interrupt_hook, conn);
    if (type[0] == 'e') {
      int64_t changed = 0;
      rc = wg_engine_execute(conn, text, &changed, err);
      if (rc == 0) snprintf(json, sizeof(json), "{\"rows_changed\": %lld}", (long long)changed);
    } else {
      char *dot = strchr(text, '.');
      const char *schema_name = NULL, *table = text;
      if (dot != NULL && strchr(dot + 1, '.') == NULL) {
        *dot = '\0';
        schema_name = text;
        table = dot + 1;
      }
      rc = wg_engine_drop_table(conn, schema_name, table, err);
      if (rc == 0) snprintf(json, sizeof(json), "{\"dropped\": \"%.200s\"}", table);
    }
    wg_rpc_call_set_cancel_hook(call, NULL, NULL);
    wg_engine_release(s->engine, conn);
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
