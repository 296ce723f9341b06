/* wigeon: Flight SQL prepared statements. Skeleton: not served yet. */
#include "server/fsql.h"

int wg__fsql_prepared_init(struct wg_server *s, struct wg_error *err) {
  return 0;
}

void wg__fsql_prepared_fini(struct wg_server *s) {}

int wg__fsql_prepared_info(struct wg_server *s, struct wg_rpc_call *call,
                           const ProtobufCMessage *cmd, struct wg__fsql_info *out,
                           struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "prepared statements: not served yet");
}

int wg__fsql_prepared_get(struct wg_server *s, struct wg_rpc_call *call,
                          const ProtobufCMessage *cmd, struct wg__fsql_result *out,
                          struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "prepared statements: not served yet");
}

int wg__fsql_prepared_bind(struct wg_server *s, struct wg_rpc_call *call,
                           const ProtobufCMessage *cmd, struct wg__put_stream *in,
                           struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "prepared statements: not served yet");
}

int wg__fsql_prepared_update(struct wg_server *s, struct wg_rpc_call *call,
                             const ProtobufCMessage *cmd, struct wg__put_stream *in,
                             struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "prepared statements: not served yet");
}

int wg__fsql_action_create_prepared(struct wg_server *s, struct wg_rpc_call *call,
                                    const ProtobufCBinaryData *body, struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "CreatePreparedStatement: not served yet");
}

int wg__fsql_action_close_prepared(struct wg_server *s, struct wg_rpc_call *call,
                                   const ProtobufCBinaryData *body, struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "ClosePreparedStatement: not served yet");
}
