/* wigeon: Flight SQL transactions and the connection of each Flight SQL call (see fsql.h).
 * Skeleton: calls without a transaction id get the pool's connection; transactions are not
 * served yet (the actions say so, an id is NOT_FOUND). */
#include <stdlib.h>

#include "server/fsql.h"

int wg__fsql_conn_acquire(struct wg_server *s, const struct wg_rpc_call *call, bool has_txn,
                          ProtobufCBinaryData txn_id, struct wg__fsql_conn *out,
                          struct wg_error *err) {
  out->conn = NULL;
  out->txn = NULL;
  if (has_txn && txn_id.len > 0)
    return wg_error_set(err, ENOENT, "unknown transaction id (transactions are not served yet)");
  return wg_engine_acquire(s->engine, &out->conn, err);
}

void wg__fsql_conn_release(struct wg_server *s, struct wg__fsql_conn *c) {
  if (c->conn != NULL && c->txn == NULL) wg_engine_release(s->engine, c->conn);
  c->conn = NULL;
  c->txn = NULL;
}

int wg__fsql_txn_init(struct wg_server *s, struct wg_error *err) {
  return 0;
}

void wg__fsql_txn_fini(struct wg_server *s) {}

int wg__fsql_action_begin_transaction(struct wg_server *s, struct wg_rpc_call *call,
                                      const ProtobufCBinaryData *body, struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "BeginTransaction: not served yet");
}

int wg__fsql_action_end_transaction(struct wg_server *s, struct wg_rpc_call *call,
                                    const ProtobufCBinaryData *body, struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "EndTransaction: not served yet");
}

int wg__fsql_action_begin_savepoint(struct wg_server *s, struct wg_rpc_call *call,
                                    const ProtobufCBinaryData *body, struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "BeginSavepoint: savepoints are not supported");
}

int wg__fsql_action_end_savepoint(struct wg_server *s, struct wg_rpc_call *call,
                                  const ProtobufCBinaryData *body, struct wg_error *err) {
  return wg_error_set(err, ENOTSUP, "EndSavepoint: savepoints are not supported");
}
