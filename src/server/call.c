/* wigeon: what every handler uses to finish a call, exchange its messages and build JSON bodies
 * (declared in internal.h). The handlers call these; server.c's dispatch calls the handlers: the
 * calls between the service's files go one way. */
#include <stdio.h>

#include "server/internal.h"

void wg__server_finish_with(struct wg_server *s, struct wg_rpc_call *call, grpc_byte_buffer *last,
                            int code, const struct wg_error *err) {
  if (code != 0) atomic_fetch_add_explicit(&s->stats.errors, 1, memory_order_relaxed);
  wg_rpc_call_finish_with(call, last, wg_rpc_status_from_errno(code),
                          code != 0 && err != NULL ? err->message : NULL);
}

void wg__server_finish(struct wg_server *s, struct wg_rpc_call *call, int code,
                       const struct wg_error *err) {
  wg__server_finish_with(s, call, NULL, code, err);
}

int wg__server_recv_request(struct wg_rpc_call *call, const ProtobufCMessageDescriptor *d,
                            ProtobufCMessage **out, struct wg_error *err) {
  grpc_byte_buffer *bb = NULL;
  int rc = wg_rpc_call_recv(call, &bb);
  if (rc != 0) return wg_rpc_call_error(call, rc, "waiting for the request", err);
  if (bb == NULL) return wg_error_set(err, EINVAL, "no %s in the request", d->short_name);
  rc = wg_flight_unpack(d, bb, out, err);
  grpc_byte_buffer_destroy(bb);
  return rc;
}

int wg__server_send_message(struct wg_rpc_call *call, const ProtobufCMessage *m,
                            struct wg_error *err) {
  grpc_byte_buffer *bb;
  WG_RETURN_NOT_OK(wg_flight_pack(m, &bb, err));
  int rc = wg_rpc_call_send(call, bb);
  if (rc != 0) return wg_rpc_call_error(call, rc, "sending a reply", err);
  return 0;
}

char *wg__server_json_take(cJSON *value) {
  if (value == NULL) return NULL;
  char *text = cJSON_PrintUnformatted(value);
  cJSON_Delete(value);
  return text;
}

void wg__server_json_int(cJSON *object, const char *name, int64_t value) {
  char text[24];
  snprintf(text, sizeof(text), "%lld", (long long)value);
  if (object != NULL) cJSON_AddRawToObject(object, name, text);
}

void wg__server_interrupt_hook(void *conn) {
  wg_engine_interrupt(conn);
}
