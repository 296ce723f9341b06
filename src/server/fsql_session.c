/* wigeon: Flight session options (SetSessionOptions, GetSessionOptions, CloseSession).
 * Skeleton: not served yet. */
#include "server/fsql.h"

int wg__fsql_action_set_session_options(struct wg_server *s, struct wg_rpc_call *call,
                                        const ProtobufCBinaryData *body, struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "SetSessionOptions: not served yet");
}

int wg__fsql_action_get_session_options(struct wg_server *s, struct wg_rpc_call *call,
                                        const ProtobufCBinaryData *body, struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "GetSessionOptions: not served yet");
}

int wg__fsql_action_close_session(struct wg_server *s, struct wg_rpc_call *call,
                                  const ProtobufCBinaryData *body, struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "CloseSession: not served yet");
}
