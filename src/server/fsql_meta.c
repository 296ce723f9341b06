/* wigeon: Flight SQL metadata commands (CommandGet*). Skeleton: not served yet. */
#include "server/fsql.h"

int wg__fsql_meta_info(struct wg_server *s, struct wg_rpc_call *call, const ProtobufCMessage *cmd,
                       struct wg__fsql_info *out, struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "Flight SQL %s: not served yet", cmd->descriptor->short_name);
}

int wg__fsql_meta_get(struct wg_server *s, struct wg_rpc_call *call, const ProtobufCMessage *cmd,
                      struct wg__fsql_result *out, struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "Flight SQL %s: not served yet", cmd->descriptor->short_name);
}
