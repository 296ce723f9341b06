/* wigeon: cancelling Flight SQL queries (CancelFlightInfo, CancelQuery) and RenewFlightEndpoint.
 * Skeleton: running DoGets are not tracked yet. */
#include <stdlib.h>

#include "server/fsql.h"

int wg__fsql_running_init(struct wg_server *s, struct wg_error *err) {
  return 0;
}

void wg__fsql_running_fini(struct wg_server *s) {}

int wg__fsql_running_add(struct wg_server *s, const ProtobufCBinaryData *ticket,
                         struct wg_engine_conn *conn, struct wg__fsql_run **out,
                         struct wg_error *err) {
  *out = NULL;
  return 0;
}

void wg__fsql_running_remove(struct wg_server *s, struct wg__fsql_run *run) {}

int wg__fsql_action_cancel_flight_info(struct wg_server *s, struct wg_rpc_call *call,
                                       const ProtobufCBinaryData *body, struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "CancelFlightInfo: not served yet");
}

int wg__fsql_action_cancel_query(struct wg_server *s, struct wg_rpc_call *call,
                                 const ProtobufCBinaryData *body, struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "CancelQuery: not served yet");
}

int wg__fsql_action_renew_endpoint(struct wg_server *s, struct wg_rpc_call *call,
                                   const ProtobufCBinaryData *body, struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "RenewFlightEndpoint: not served yet");
}
