/* wigeon: Flight SQL transactions, cancellation and session options end to end: a real server on
 * 127.0.0.1, requests packed from the protobuf-c messages (flight.proto, flight_sql.proto) and
 * sent over real gRPC channels, results read with our IPC decoder, a real DuckDB behind. The
 * "other client" of the visibility checks is the C client (wigeon.h), on a pooled connection. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arrow/ipc.h"
#include "engine/engine.h"
#include "flight/flight.h"
#include "proto/flight_sql.pb-c.h"
#include "rpc/rpc.h"
#include "server/internal.h"
#include "support/server_fixture.h"
#include "test.h"

#define END_COMMIT \
  ARROW__FLIGHT__PROTOCOL__SQL__ACTION_END_TRANSACTION_REQUEST__END_TRANSACTION__END_TRANSACTION_COMMIT
#define END_ROLLBACK \
  ARROW__FLIGHT__PROTOCOL__SQL__ACTION_END_TRANSACTION_REQUEST__END_TRANSACTION__END_TRANSACTION_ROLLBACK
#define QUERY_CANCELLED \
  ARROW__FLIGHT__PROTOCOL__SQL__ACTION_CANCEL_QUERY_RESULT__CANCEL_RESULT__CANCEL_RESULT_CANCELLED
#define QUERY_NOT_CANCELLABLE \
  ARROW__FLIGHT__PROTOCOL__SQL__ACTION_CANCEL_QUERY_RESULT__CANCEL_RESULT__CANCEL_RESULT_NOT_CANCELLABLE
#define STRING_VALUE ARROW__FLIGHT__PROTOCOL__SESSION_OPTION_VALUE__OPTION_VALUE_STRING_VALUE
#define SET_ERROR(x) ARROW__FLIGHT__PROTOCOL__SET_SESSION_OPTIONS_RESULT__ERROR_VALUE__##x

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* m packed, in an Any (type_url + value) when `any`, into a malloc'ed buffer. */
static uint8_t *pack(const ProtobufCMessage *m, bool any, size_t *len) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *v = malloc(n + 1);
  protobuf_c_message_pack(m, v);
  if (!any) {
    *len = n;
    return v;
  }
  char url[256];
  snprintf(url, sizeof(url), "type.googleapis.com/%s", m->descriptor->name);
  Arrow__Flight__Protocol__Action a = ARROW__FLIGHT__PROTOCOL__ACTION__INIT; /* Any's fields */
  a.type = url;
  a.body.data = v;
  a.body.len = n;
  size_t an = protobuf_c_message_get_packed_size(&a.base);
  uint8_t *out = malloc(an + 1);
  *len = protobuf_c_message_pack(&a.base, out);
  free(v);
  return out;
}

/* Starts `method` and sends req (NULL: nothing) then half-closes. */
static int start(struct wg_rpc_channel *ch, const char *method, const ProtobufCMessage *req,
                 struct wg_rpc_client_call **call, struct wg_error *err) {
  char path[128];
  snprintf(path, sizeof(path), "%s%s", WG_FLIGHT_SERVICE, method);
  WG_RETURN_NOT_OK(wg_rpc_client_call_start(ch, path, 60000, NULL, call, err));
  grpc_byte_buffer *bb;
  if (req != NULL && wg_flight_pack(req, &bb, err) == 0) wg_rpc_client_call_send(*call, bb);
  wg_rpc_client_call_close_send(*call);
  return 0;
}

static int finish(struct wg_rpc_client_call *call, struct wg_error *err) {
  grpc_status_code code;
  int rc = wg_rpc_client_call_finish(call, &code, err);
  wg_rpc_client_call_destroy(call);
  return rc;
}

/* DoAction `type` with body m (Any when any); the first Result's body unpacked as resp_d (inside
 * an Any when any) into *out (may be NULL: results dropped). */
static int action(struct wg_rpc_channel *ch, const char *type, const ProtobufCMessage *m,
                  bool any, const ProtobufCMessageDescriptor *resp_d, ProtobufCMessage **out,
                  struct wg_error *err) {
  if (out != NULL) *out = NULL;
  size_t len = 0;
  uint8_t *body = pack(m, any, &len);
  Arrow__Flight__Protocol__Action a = ARROW__FLIGHT__PROTOCOL__ACTION__INIT;
  a.type = (char *)type;
  a.body.data = body;
  a.body.len = len;
  struct wg_rpc_client_call *call;
  int rc = start(ch, "DoAction", &a.base, &call, err);
  free(body);
  WG_RETURN_NOT_OK(rc);
  for (;;) {
    grpc_byte_buffer *bb = NULL;
    if (wg_rpc_client_call_recv(call, &bb) != 0 || bb == NULL) break;
    ProtobufCMessage *r = NULL;
    if (out != NULL && *out == NULL &&
        wg_flight_unpack(&arrow__flight__protocol__result__descriptor, bb, &r, NULL) == 0) {
      Arrow__Flight__Protocol__Result *res = (Arrow__Flight__Protocol__Result *)r;
      const uint8_t *d = res->body.data;
      size_t n = res->body.len;
      Arrow__Flight__Protocol__Action *anyv = NULL;
      if (any) {
        anyv = arrow__flight__protocol__action__unpack(NULL, n, d);
        d = anyv != NULL ? anyv->body.data : NULL;
        n = anyv != NULL ? anyv->body.len : 0;
      }
      if (d != NULL || n == 0) *out = protobuf_c_message_unpack(resp_d, NULL, n, d);
      if (anyv != NULL) protobuf_c_message_free_unpacked(&anyv->base, NULL);
      protobuf_c_message_free_unpacked(r, NULL);
    }
    grpc_byte_buffer_destroy(bb);
  }
  return finish(call, err);
}

/* BeginTransaction: the id (16 bytes) into id, its length into *len. */
static int begin(struct wg_rpc_channel *ch, uint8_t *id, size_t *len, struct wg_error *err) {
  Arrow__Flight__Protocol__Sql__ActionBeginTransactionRequest req =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_BEGIN_TRANSACTION_REQUEST__INIT;
  ProtobufCMessage *r = NULL;
  WG_RETURN_NOT_OK(
      action(ch, "BeginTransaction", &req.base, true,
             &arrow__flight__protocol__sql__action_begin_transaction_result__descriptor, &r, err));
  Arrow__Flight__Protocol__Sql__ActionBeginTransactionResult *res = (void *)r;
  int rc = res != NULL && res->has_transaction_id && res->transaction_id.len <= 64
               ? 0
               : wg_error_set(err, EPROTO, "no transaction id in the result");
  if (rc == 0) {
    memcpy(id, res->transaction_id.data, res->transaction_id.len);
    *len = res->transaction_id.len;
  }
  if (r != NULL) protobuf_c_message_free_unpacked(r, NULL);
  return rc;
}

static int end(struct wg_rpc_channel *ch, const uint8_t *id, size_t len, bool commit,
               struct wg_error *err) {
  Arrow__Flight__Protocol__Sql__ActionEndTransactionRequest req =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_END_TRANSACTION_REQUEST__INIT;
  req.has_transaction_id = 1;
  req.transaction_id.data = (uint8_t *)id;
  req.transaction_id.len = len;
  req.has_action = 1;
  req.action = commit ? END_COMMIT : END_ROLLBACK;
  return action(ch, "EndTransaction", &req.base, true, NULL, NULL, err);
}

/* DoPut CommandStatementUpdate{sql, id (len 0: none)}: the record count into *rows. */
static int update(struct wg_rpc_channel *ch, const char *sql, const uint8_t *id, size_t idlen,
                  int64_t *rows, struct wg_error *err) {
  Arrow__Flight__Protocol__Sql__CommandStatementUpdate u =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_UPDATE__INIT;
  u.query = (char *)sql;
  u.has_transaction_id = idlen > 0;
  u.transaction_id.data = (uint8_t *)id;
  u.transaction_id.len = idlen;
  size_t len;
  uint8_t *cmd = pack(&u.base, true, &len);
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
  d.cmd.data = cmd;
  d.cmd.len = len;
  Arrow__Flight__Protocol__FlightData fd = ARROW__FLIGHT__PROTOCOL__FLIGHT_DATA__INIT;
  fd.flight_descriptor = &d;
  struct wg_rpc_client_call *call;
  int rc = start(ch, "DoPut", &fd.base, &call, err);
  free(cmd);
  WG_RETURN_NOT_OK(rc);
  *rows = -1;
  for (;;) {
    grpc_byte_buffer *bb = NULL;
    if (wg_rpc_client_call_recv(call, &bb) != 0 || bb == NULL) break;
    ProtobufCMessage *m = NULL;
    if (wg_flight_unpack(&arrow__flight__protocol__put_result__descriptor, bb, &m, NULL) == 0) {
      Arrow__Flight__Protocol__PutResult *pr = (void *)m;
      Arrow__Flight__Protocol__Sql__DoPutUpdateResult *ur =
          arrow__flight__protocol__sql__do_put_update_result__unpack(NULL, pr->app_metadata.len,
                                                                     pr->app_metadata.data);
      if (ur != NULL) *rows = ur->record_count;
      if (ur != NULL) protobuf_c_message_free_unpacked(&ur->base, NULL);
      protobuf_c_message_free_unpacked(m, NULL);
    }
    grpc_byte_buffer_destroy(bb);
  }
  return finish(call, err);
}

/* GetFlightInfo of CommandStatementQuery{sql, id}: the FlightInfo into *out. */
static int info(struct wg_rpc_channel *ch, const char *sql, const uint8_t *id, size_t idlen,
                Arrow__Flight__Protocol__FlightInfo **out, struct wg_error *err) {
  *out = NULL;
  Arrow__Flight__Protocol__Sql__CommandStatementQuery q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_QUERY__INIT;
  q.query = (char *)sql;
  q.has_transaction_id = idlen > 0;
  q.transaction_id.data = (uint8_t *)id;
  q.transaction_id.len = idlen;
  size_t len;
  uint8_t *cmd = pack(&q.base, true, &len);
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
  d.cmd.data = cmd;
  d.cmd.len = len;
  struct wg_rpc_client_call *call;
  int rc = start(ch, "GetFlightInfo", &d.base, &call, err);
  free(cmd);
  WG_RETURN_NOT_OK(rc);
  grpc_byte_buffer *bb = NULL;
  if (wg_rpc_client_call_recv(call, &bb) == 0 && bb != NULL) {
    ProtobufCMessage *m = NULL;
    if (wg_flight_unpack(&arrow__flight__protocol__flight_info__descriptor, bb, &m, NULL) == 0)
      *out = (Arrow__Flight__Protocol__FlightInfo *)m;
    grpc_byte_buffer_destroy(bb);
  }
  rc = finish(call, err);
  if (rc == 0 && (*out == NULL || (*out)->n_endpoint != 1))
    rc = wg_error_set(err, EPROTO, "no FlightInfo with one endpoint");
  if (rc != 0 && *out != NULL) {
    protobuf_c_message_free_unpacked(&(*out)->base, NULL);
    *out = NULL;
  }
  return rc;
}

/* DoGet of a ticket: the first column (BIGINT) of the first row into *v (-1: no row). */
static int get_i64(struct wg_rpc_channel *ch, const ProtobufCBinaryData *ticket, int64_t *v,
                   struct wg_error *err) {
  *v = -1;
  Arrow__Flight__Protocol__Ticket t = ARROW__FLIGHT__PROTOCOL__TICKET__INIT;
  t.ticket = *ticket;
  struct wg_rpc_client_call *call;
  WG_RETURN_NOT_OK(start(ch, "DoGet", &t.base, &call, err));
  struct wg_ipc_decoder *dec = NULL;
  wg_ipc_decoder_create(&dec, NULL, NULL);
  for (;;) {
    grpc_byte_buffer *bb = NULL;
    if (wg_rpc_client_call_recv(call, &bb) != 0 || bb == NULL) break;
    struct wg_flight_data fd = {0};
    if (wg_flight_data_decode(bb, &fd, NULL) == 0 && fd.data_header.size > 0) {
      enum wg_ipc_message_type type;
      struct ArrowArray a = {0};
      if (wg_ipc_decoder_decode(dec, fd.data_header, fd.body, &type, &a, NULL) == 0 &&
          type == WG_IPC_MESSAGE_RECORD_BATCH) {
        struct ArrowSchema sc = {0};
        bool bigint = wg_ipc_decoder_schema(dec, &sc, NULL) == 0 && sc.n_children > 0 &&
                      strcmp(sc.children[0]->format, "l") == 0;
        if (sc.release != NULL) sc.release(&sc);
        if (*v == -1 && bigint && a.length > 0 && a.n_children > 0)
          *v = ((const int64_t *)a.children[0]->buffers[1])[a.children[0]->offset];
        else if (*v == -1 && !bigint)
          *v = -3; /* not a BIGINT column: the test asks for one */
        a.release(&a);
      }
    }
    wg_flight_data_reset(&fd);
    grpc_byte_buffer_destroy(bb);
  }
  wg_ipc_decoder_destroy(dec);
  return finish(call, err);
}

/* The first BIGINT of a query run in transaction id (idlen 0: none). */
static int query_i64(struct wg_rpc_channel *ch, const char *sql, const uint8_t *id, size_t idlen,
                     int64_t *v, struct wg_error *err) {
  Arrow__Flight__Protocol__FlightInfo *fi = NULL;
  WG_RETURN_NOT_OK(info(ch, sql, id, idlen, &fi, err));
  int rc = get_i64(ch, &fi->endpoint[0]->ticket->ticket, v, err);
  protobuf_c_message_free_unpacked(&fi->base, NULL);
  return rc;
}

/* A server with its C client (the "other connection") and one channel for the raw requests. */
struct env {
  struct wg_fx_server fx;
  struct wg_client *c;
  struct wg_rpc_channel *ch;
  struct wg_status st;
  struct wg_error err;
};

static int env_start(struct env *e, struct wg_server_options *o) {
  memset(e, 0, sizeof(*e));
  if (o->db_path == NULL) o->db_path = ":memory:";
  if (o->threads == 0) o->threads = 4;
  if (wg_fx_server_start(&e->fx, o) != 0) return -1;
  if (wg_fx_connect(&e->c, e->fx.uri, &e->st) != 0) return -1;
  return wg_rpc_channel_create(&e->ch, e->fx.uri, &e->err);
}

static void env_stop(struct env *e) {
  wg_rpc_channel_destroy(e->ch);
  wg_disconnect(e->c);
  wg_fx_server_stop(&e->fx);
}

/* The other connection's count of t's rows. */
static int64_t others_count(struct env *e, const char *table) {
  char sql[128];
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
  int64_t n = -1;
  if (wg_fx_query_i64(e->c, sql, &n, &e->st) != 0) return -2;
  return n;
}

static int exec_sql(struct env *e, const char *sql) {
  return wg_fx_action(e->c, "execute", sql, strlen(sql), NULL, &e->st);
}

/* ---- transactions --------------------------------------------------------------------------- */
static void commit_is_seen_by_others_only_after_it(void) {
  struct env e;
  struct wg_server_options o = {0};
  ASSERT_EQ(env_start(&e, &o), 0);
  ASSERT_OK(exec_sql(&e, "CREATE TABLE t (x BIGINT)"), e.st.message);
  uint8_t id[64];
  size_t n = 0;
  ASSERT_OK(begin(e.ch, id, &n, &e.err), &e.err);
  ASSERT_EQ(n, 16);
  int64_t rows = 0, v = 0;
  ASSERT_OK(update(e.ch, "INSERT INTO t VALUES (1), (2), (3)", id, n, &rows, &e.err), &e.err);
  ASSERT_EQ(rows, 3);
  /* its own statements see the rows, through both the query and the update paths */
  ASSERT_OK(query_i64(e.ch, "SELECT count(*) FROM t", id, n, &v, &e.err), &e.err);
  ASSERT_EQ(v, 3);
  ASSERT_OK(update(e.ch, "UPDATE t SET x = x + 1", id, n, &rows, &e.err), &e.err);
  ASSERT_EQ(rows, 3);
  ASSERT_OK(query_i64(e.ch, "SELECT sum(x)::BIGINT FROM t", id, n, &v, &e.err), &e.err);
  ASSERT_EQ(v, 2 + 3 + 4);
  /* nobody else does, neither a pooled call nor a Flight SQL call without the id */
  ASSERT_EQ(others_count(&e, "t"), 0);
  ASSERT_OK(query_i64(e.ch, "SELECT count(*) FROM t", NULL, 0, &v, &e.err), &e.err);
  ASSERT_EQ(v, 0);
  ASSERT_OK(end(e.ch, id, n, true, &e.err), &e.err);
  ASSERT_EQ(others_count(&e, "t"), 3);
  /* the id is gone */
  ASSERT_EQ(query_i64(e.ch, "SELECT 1", id, n, &v, &e.err), ENOENT);
  ASSERT_EQ(end(e.ch, id, n, true, &e.err), ENOENT);
  ASSERT_EQ(wg_engine_pinned_count(e.fx.server->engine), 0);
  env_stop(&e);
}

static void rollback_discards_everything(void) {
  struct env e;
  struct wg_server_options o = {0};
  ASSERT_EQ(env_start(&e, &o), 0);
  ASSERT_OK(exec_sql(&e, "CREATE TABLE t (x BIGINT); INSERT INTO t VALUES (7)"), e.st.message);
  uint8_t id[64];
  size_t n = 0;
  int64_t rows = 0, v = 0;
  ASSERT_OK(begin(e.ch, id, &n, &e.err), &e.err);
  ASSERT_OK(update(e.ch, "DELETE FROM t", id, n, &rows, &e.err), &e.err);
  ASSERT_EQ(rows, 1);
  ASSERT_OK(update(e.ch, "CREATE TABLE u (y INT)", id, n, &rows, &e.err), &e.err);
  ASSERT_OK(query_i64(e.ch, "SELECT count(*) FROM t", id, n, &v, &e.err), &e.err);
  ASSERT_EQ(v, 0);
  ASSERT_OK(end(e.ch, id, n, false, &e.err), &e.err);
  ASSERT_EQ(others_count(&e, "t"), 1);
  ASSERT_EQ(others_count(&e, "u"), -2); /* the table made inside it is gone too */
  ASSERT_EQ(e.st.sys_errno, ENOENT);
  env_stop(&e);
}

static void two_transactions_at_once_are_apart(void) {
  struct env e;
  struct wg_server_options o = {0};
  ASSERT_EQ(env_start(&e, &o), 0);
  ASSERT_OK(exec_sql(&e, "CREATE TABLE a (x INT); CREATE TABLE b (x INT)"), e.st.message);
  uint8_t ida[64], idb[64];
  size_t na = 0, nb = 0;
  int64_t rows = 0, v = 0;
  ASSERT_OK(begin(e.ch, ida, &na, &e.err), &e.err);
  ASSERT_OK(begin(e.ch, idb, &nb, &e.err), &e.err);
  ASSERT_TRUE(memcmp(ida, idb, 16) != 0);
  ASSERT_EQ(wg_engine_pinned_count(e.fx.server->engine), 0); /* pinned at the first write */
  ASSERT_OK(update(e.ch, "INSERT INTO a VALUES (1)", ida, na, &rows, &e.err), &e.err);
  ASSERT_OK(update(e.ch, "INSERT INTO b VALUES (1), (2)", idb, nb, &rows, &e.err), &e.err);
  ASSERT_EQ(wg_engine_pinned_count(e.fx.server->engine), 2);
  ASSERT_OK(query_i64(e.ch, "SELECT count(*) FROM b", ida, na, &v, &e.err), &e.err);
  ASSERT_EQ(v, 0);
  ASSERT_OK(query_i64(e.ch, "SELECT count(*) FROM a", idb, nb, &v, &e.err), &e.err);
  ASSERT_EQ(v, 0);
  ASSERT_OK(query_i64(e.ch, "SELECT count(*) FROM b", idb, nb, &v, &e.err), &e.err);
  ASSERT_EQ(v, 2);
  ASSERT_OK(end(e.ch, idb, nb, true, &e.err), &e.err);
  ASSERT_EQ(others_count(&e, "b"), 2);
  ASSERT_EQ(others_count(&e, "a"), 0);
  ASSERT_OK(end(e.ch, ida, na, false, &e.err), &e.err);
  ASSERT_EQ(others_count(&e, "a"), 0);
  ASSERT_EQ(wg_engine_pinned_count(e.fx.server->engine), 0);
  env_stop(&e);
}

static void unknown_forged_and_other_clients_ids_are_not_found(void) {
  struct env e;
  struct wg_server_options o = {.listen = "0.0.0.0:0", /* reached on 127.0.0.1 and 127.0.0.2 */
                                .insecure_no_auth = true};
  ASSERT_EQ(env_start(&e, &o), 0);
  uint8_t id[64], forged[16];
  size_t n = 0;
  int64_t v = 0, rows = 0;
  ASSERT_OK(begin(e.ch, id, &n, &e.err), &e.err);
  memcpy(forged, id, 16);
  forged[15] ^= 1;
  ASSERT_EQ(query_i64(e.ch, "SELECT 1", forged, 16, &v, &e.err), ENOENT);
  ASSERT_TRUE(strstr(e.err.message, "unknown transaction id") != NULL);
  ASSERT_EQ(query_i64(e.ch, "SELECT 1", id, 3, &v, &e.err), ENOENT); /* a prefix */
  ASSERT_EQ(update(e.ch, "SELECT 1", forged, 16, &rows, &e.err), ENOENT);
  ASSERT_EQ(end(e.ch, forged, 16, true, &e.err), ENOENT);
  /* another client (its own connection, so another peer) cannot use, nor end, ours */
  struct wg_rpc_channel *other = NULL;
  char other_uri[64]; /* another address: gRPC shares one connection among a process's channels
                         to the same one */
  snprintf(other_uri, sizeof(other_uri), "127.0.0.2:%d", e.fx.port);
  ASSERT_OK(wg_rpc_channel_create(&other, other_uri, &e.err), &e.err);
  int rc = query_i64(other, "SELECT 1", id, n, &v, &e.err);
  int rc_end = end(other, id, n, false, &e.err);
  wg_rpc_channel_destroy(other);
  ASSERT_EQ(rc, ENOENT);
  ASSERT_EQ(rc_end, ENOENT);
  /* an EndTransaction without an action or id is INVALID_ARGUMENT; ours still works */
  Arrow__Flight__Protocol__Sql__ActionEndTransactionRequest bad =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_END_TRANSACTION_REQUEST__INIT;
  ASSERT_EQ(action(e.ch, "EndTransaction", &bad.base, true, NULL, NULL, &e.err), EINVAL);
  ASSERT_OK(query_i64(e.ch, "SELECT (41 + 1)::BIGINT", id, n, &v, &e.err), &e.err);
  ASSERT_EQ(v, 42);
  ASSERT_OK(end(e.ch, id, n, true, &e.err), &e.err);
  env_stop(&e);
}

static void idle_transaction_expires_and_rolls_back(void) {
  struct env e;
  struct wg_server_options o = {.session_idle_timeout_ms = 300};
  ASSERT_EQ(env_start(&e, &o), 0);
  ASSERT_OK(exec_sql(&e, "CREATE TABLE t (x INT)"), e.st.message);
  uint8_t id[64];
  size_t n = 0;
  int64_t rows = 0, v = 0;
  ASSERT_OK(begin(e.ch, id, &n, &e.err), &e.err);
  ASSERT_OK(update(e.ch, "INSERT INTO t VALUES (1)", id, n, &rows, &e.err), &e.err);
  usleep(150 * 1000); /* used within the timeout: still there */
  ASSERT_OK(query_i64(e.ch, "SELECT count(*) FROM t", id, n, &v, &e.err), &e.err);
  ASSERT_EQ(v, 1);
  int64_t t0 = now_ms();
  while (wg_engine_pinned_count(e.fx.server->engine) > 0 && now_ms() - t0 < 5000)
    usleep(20 * 1000); /* the sweeper closes it without any call coming */
  ASSERT_EQ(wg_engine_pinned_count(e.fx.server->engine), 0);
  ASSERT_TRUE(now_ms() - t0 >= 250);
  ASSERT_EQ(query_i64(e.ch, "SELECT 1", id, n, &v, &e.err), ENOENT);
  ASSERT_TRUE(strstr(e.err.message, "--session-idle-timeout") != NULL);
  ASSERT_EQ(others_count(&e, "t"), 0);
  uint8_t next[64]; /* an expired transaction has no successor */
  size_t nn = 0;
  ASSERT_OK(begin(e.ch, next, &nn, &e.err), &e.err);
  ASSERT_EQ(query_i64(e.ch, "SELECT 1", id, n, &v, &e.err), ENOENT);
  ASSERT_OK(end(e.ch, next, nn, false, &e.err), &e.err);
  /* its writes are gone and nothing holds the table: another writer commits */
  ASSERT_OK(exec_sql(&e, "INSERT INTO t VALUES (2)"), e.st.message);
  ASSERT_EQ(others_count(&e, "t"), 1);
  env_stop(&e);
}

static void max_sessions_refuses_one_more_writer_naming_the_flag(void) {
  struct env e;
  struct wg_server_options o = {.max_sessions = 2};
  ASSERT_EQ(env_start(&e, &o), 0);
  ASSERT_OK(exec_sql(&e, "CREATE TABLE t (x INT)"), e.st.message);
  uint8_t a[64], b[64], c[64], r[64];
  size_t na = 0, nb = 0, nc = 0, nr = 0;
  int64_t rows = 0, v = 0;
  /* beginning costs nothing: many may be open (drivers open one per connection) */
  ASSERT_OK(begin(e.ch, a, &na, &e.err), &e.err);
  ASSERT_OK(begin(e.ch, b, &nb, &e.err), &e.err);
  ASSERT_OK(begin(e.ch, c, &nc, &e.err), &e.err);
  ASSERT_OK(begin(e.ch, r, &nr, &e.err), &e.err);
  /* one that only reads holds no connection between its calls */
  ASSERT_OK(query_i64(e.ch, "SELECT count(*) FROM t", r, nr, &v, &e.err), &e.err);
  ASSERT_OK(update(e.ch, "INSERT INTO t VALUES (1)", a, na, &rows, &e.err), &e.err);
  ASSERT_OK(update(e.ch, "INSERT INTO t VALUES (2)", b, nb, &rows, &e.err), &e.err);
  /* two write: the third that wants a connection is refused, naming the flag */
  ASSERT_EQ(update(e.ch, "INSERT INTO t VALUES (3)", c, nc, &rows, &e.err), EBUSY);
  ASSERT_TRUE(strstr(e.err.message, "--max-sessions") != NULL);
  ASSERT_TRUE(strstr(e.err.message, "2 transactions") != NULL);
  ASSERT_EQ(query_i64(e.ch, "SELECT 1::BIGINT", r, nr, &v, &e.err), EBUSY);
  /* calls without a transaction are not affected: the pool is apart */
  ASSERT_OK(query_i64(e.ch, "SELECT 5::BIGINT", NULL, 0, &v, &e.err), &e.err);
  ASSERT_EQ(v, 5);
  ASSERT_OK(end(e.ch, a, na, true, &e.err), &e.err);
  ASSERT_OK(end(e.ch, b, nb, false, &e.err), &e.err);
  ASSERT_OK(query_i64(e.ch, "SELECT count(*) FROM t", r, nr, &v, &e.err), &e.err);
  ASSERT_EQ(v, 1); /* the reader sees the latest commit: a's row, not b's */
  /* the refused transaction is still open and now gets its connection */
  ASSERT_OK(update(e.ch, "INSERT INTO t VALUES (3)", c, nc, &rows, &e.err), &e.err);
  ASSERT_OK(end(e.ch, c, nc, true, &e.err), &e.err);
  ASSERT_OK(end(e.ch, r, nr, true, &e.err), &e.err);
  ASSERT_EQ(others_count(&e, "t"), 2);
  env_stop(&e);
}

static void server_stop_rolls_back_open_transactions(void) {
  char dir[256], db[300];
  ASSERT_EQ(wg_fx_tmpdir(dir, sizeof(dir)), 0);
  snprintf(db, sizeof(db), "%s/t.duckdb", dir);
  struct env e;
  struct wg_server_options o = {.db_path = db};
  ASSERT_EQ(env_start(&e, &o), 0);
  ASSERT_OK(exec_sql(&e, "CREATE TABLE t (x INT)"), e.st.message);
  uint8_t id[64];
  size_t n = 0;
  int64_t rows = 0;
  ASSERT_OK(begin(e.ch, id, &n, &e.err), &e.err);
  ASSERT_OK(update(e.ch, "INSERT INTO t VALUES (1), (2)", id, n, &rows, &e.err), &e.err);
  ASSERT_OK(update(e.ch, "CREATE TABLE u (y INT)", id, n, &rows, &e.err), &e.err);
  env_stop(&e); /* with the transaction open */
  struct wg_server_options o2 = {.db_path = db};
  ASSERT_EQ(env_start(&e, &o2), 0);
  ASSERT_EQ(others_count(&e, "t"), 0);
  ASSERT_EQ(others_count(&e, "u"), -2);
  int64_t v = 0;
  ASSERT_EQ(query_i64(e.ch, "SELECT 1", id, n, &v, &e.err), ENOENT);
  env_stop(&e);
  wg_fx_rmdir(dir);
}

static void failed_statement_leaves_the_transaction_to_roll_back(void) {
  struct env e;
  struct wg_server_options o = {0};
  ASSERT_EQ(env_start(&e, &o), 0);
  ASSERT_OK(exec_sql(&e, "CREATE TABLE t (x INT PRIMARY KEY); INSERT INTO t VALUES (1)"),
            e.st.message);
  uint8_t id[64];
  size_t n = 0;
  int64_t rows = 0, v = 0;
  ASSERT_OK(begin(e.ch, id, &n, &e.err), &e.err);
  ASSERT_OK(update(e.ch, "INSERT INTO t VALUES (2)", id, n, &rows, &e.err), &e.err);
  ASSERT_EQ(update(e.ch, "INSERT INTO t VALUES (1)", id, n, &rows, &e.err), EEXIST);
  /* DuckDB aborted the transaction: what follows fails, saying so, until the rollback */
  ASSERT_NE(query_i64(e.ch, "SELECT count(*) FROM t", id, n, &v, &e.err), 0);
  ASSERT_TRUE(strstr(e.err.message, "aborted") != NULL);
  /* its COMMIT fails (DuckDB itself would take it as a rollback, silently) and ends it */
  ASSERT_EQ(end(e.ch, id, n, true, &e.err), EPERM);
  ASSERT_TRUE(strstr(e.err.message, "nothing of it is committed") != NULL);
  ASSERT_EQ(end(e.ch, id, n, false, &e.err), ENOENT);
  ASSERT_EQ(others_count(&e, "t"), 1);
  ASSERT_EQ(wg_engine_pinned_count(e.fx.server->engine), 0);
  env_stop(&e);
}

/* ADBC runs a statement prepared in a transaction again after commit(), naming the ended one */
static void an_ended_id_stands_for_the_next_transaction_its_client_began(void) {
  struct env e;
  struct wg_server_options o = {.listen = "0.0.0.0:0", /* reached on 127.0.0.1 and 127.0.0.2 */
                                .insecure_no_auth = true};
  ASSERT_EQ(env_start(&e, &o), 0);
  ASSERT_OK(exec_sql(&e, "CREATE TABLE t (x INT)"), e.st.message);
  uint8_t a[64], b[64];
  size_t na = 0, nb = 0;
  int64_t rows = 0, v = 0;
  ASSERT_OK(begin(e.ch, a, &na, &e.err), &e.err);
  ASSERT_OK(end(e.ch, a, na, true, &e.err), &e.err);
  ASSERT_EQ(query_i64(e.ch, "SELECT 1", a, na, &v, &e.err), ENOENT); /* none begun since */
  ASSERT_OK(begin(e.ch, b, &nb, &e.err), &e.err);
  ASSERT_OK(update(e.ch, "INSERT INTO t VALUES (1)", a, na, &rows, &e.err), &e.err);
  ASSERT_OK(query_i64(e.ch, "SELECT count(*) FROM t", b, nb, &v, &e.err), &e.err);
  ASSERT_EQ(v, 1); /* it ran in b */
  ASSERT_EQ(others_count(&e, "t"), 0);
  /* but ending goes by the exact id: a repeated EndTransaction cannot end the next one */
  ASSERT_EQ(end(e.ch, a, na, true, &e.err), ENOENT);
  /* nor does another client's call follow it */
  struct wg_rpc_channel *other = NULL;
  char other_uri[64];
  snprintf(other_uri, sizeof(other_uri), "127.0.0.2:%d", e.fx.port);
  ASSERT_OK(wg_rpc_channel_create(&other, other_uri, &e.err), &e.err);
  int rc = query_i64(other, "SELECT 1", a, na, &v, &e.err);
  wg_rpc_channel_destroy(other);
  ASSERT_EQ(rc, ENOENT);
  ASSERT_OK(end(e.ch, b, nb, false, &e.err), &e.err);
  ASSERT_EQ(others_count(&e, "t"), 0);
  env_stop(&e);
}

static void sql_inside_a_transaction_runs_in_it(void) {
  struct env e;
  struct wg_server_options o = {0};
  ASSERT_EQ(env_start(&e, &o), 0);
  ASSERT_OK(exec_sql(&e, "CREATE TABLE t (x INT)"), e.st.message);
  uint8_t id[64];
  size_t n = 0;
  int64_t rows = 0, v = 0;
  ASSERT_OK(begin(e.ch, id, &n, &e.err), &e.err);
  /* several statements: inside the transaction, not in one of their own */
  ASSERT_OK(update(e.ch, "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2), (3)", id, n, &rows,
                   &e.err),
            &e.err);
  ASSERT_EQ(rows, 3);
  ASSERT_EQ(others_count(&e, "t"), 0);
  /* transaction control as SQL would end it behind the server's back: refused, as a query too */
  ASSERT_EQ(update(e.ch, "COMMIT", id, n, &rows, &e.err), EPERM);
  ASSERT_TRUE(strstr(e.err.message, "EndTransaction") != NULL);
  ASSERT_EQ(query_i64(e.ch, "ROLLBACK", id, n, &v, &e.err), EPERM);
  ASSERT_EQ(update(e.ch, "INSERT INTO t VALUES (4); COMMIT", id, n, &rows, &e.err), EPERM);
  ASSERT_EQ(others_count(&e, "t"), 0);
  ASSERT_OK(end(e.ch, id, n, false, &e.err), &e.err);
  ASSERT_EQ(others_count(&e, "t"), 0);
  /* outside a transaction several statements are still all or nothing, BEGIN ... COMMIT too */
  ASSERT_OK(update(e.ch, "BEGIN; INSERT INTO t VALUES (5); COMMIT", NULL, 0, &rows, &e.err),
            &e.err);
  ASSERT_EQ(others_count(&e, "t"), 1);
  env_stop(&e);
}

static void savepoints_are_unimplemented(void) {
  struct env e;
  struct wg_server_options o = {0};
  ASSERT_EQ(env_start(&e, &o), 0);
  uint8_t id[64];
  size_t n = 0;
  ASSERT_OK(begin(e.ch, id, &n, &e.err), &e.err);
  Arrow__Flight__Protocol__Sql__ActionBeginSavepointRequest sp =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_BEGIN_SAVEPOINT_REQUEST__INIT;
  sp.has_transaction_id = 1;
  sp.transaction_id.data = id;
  sp.transaction_id.len = n;
  sp.name = "s1";
  ASSERT_EQ(action(e.ch, "BeginSavepoint", &sp.base, true, NULL, NULL, &e.err), ENOTSUP);
  ASSERT_TRUE(strstr(e.err.message, "savepoints are not supported") != NULL);
  ASSERT_OK(end(e.ch, id, n, false, &e.err), &e.err);
  env_stop(&e);
}

/* ---- cancellation ---------------------------------------------------------------------------- */
struct bg_get {
  struct wg_rpc_channel *ch;
  ProtobufCBinaryData ticket;
  int rc;
  int64_t v, ended_ms;
  struct wg_error err;
};

static void *bg_get_main(void *arg) {
  struct bg_get *g = arg;
  g->rc = get_i64(g->ch, &g->ticket, &g->v, &g->err);
  g->ended_ms = now_ms();
  return NULL;
}

static int cancel_info(struct wg_rpc_channel *ch, Arrow__Flight__Protocol__FlightInfo *fi,
                       int *status, struct wg_error *err) {
  Arrow__Flight__Protocol__CancelFlightInfoRequest req =
      ARROW__FLIGHT__PROTOCOL__CANCEL_FLIGHT_INFO_REQUEST__INIT;
  req.info = fi;
  ProtobufCMessage *r = NULL;
  WG_RETURN_NOT_OK(action(ch, "CancelFlightInfo", &req.base, false,
                          &arrow__flight__protocol__cancel_flight_info_result__descriptor, &r,
                          err));
  *status = r != NULL ? (int)((Arrow__Flight__Protocol__CancelFlightInfoResult *)r)->status : -1;
  if (r != NULL) protobuf_c_message_free_unpacked(r, NULL);
  return 0;
}

#define LONG_QUERY "SELECT count(*) FROM range(10000000000)"

/* A long query's DoGet in a thread, cancelled with CancelFlightInfo (in a transaction or not). */
static void cancel_one_running(struct env *e, const uint8_t *id, size_t n) {
  Arrow__Flight__Protocol__FlightInfo *fi = NULL;
  ASSERT_OK(info(e->ch, LONG_QUERY, id, n, &fi, &e->err), &e->err);
  struct bg_get g = {.ch = e->ch, .ticket = fi->endpoint[0]->ticket->ticket};
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, bg_get_main, &g), 0);
  usleep(700 * 1000); /* it runs (a count of 10^10 rows takes minutes) */
  int status = 0;
  int64_t t0 = now_ms();
  int rc = cancel_info(e->ch, fi, &status, &e->err);
  pthread_join(th, NULL);
  protobuf_c_message_free_unpacked(&fi->base, NULL);
  ASSERT_OK(rc, &e->err);
  ASSERT_EQ(status, ARROW__FLIGHT__PROTOCOL__CANCEL_STATUS__CANCEL_STATUS_CANCELLED);
  ASSERT_EQ(g.rc, ECANCELED);
  ASSERT_TRUE(g.ended_ms - t0 < 5000);
}

static void cancel_flight_info_interrupts_a_running_doget(void) {
  struct env e;
  struct wg_server_options o = {0};
  ASSERT_EQ(env_start(&e, &o), 0);
  cancel_one_running(&e, NULL, 0);
  if (wg_test_current_failed) return;
  /* the same statement asked again runs (the cancel is not remembered for it) */
  Arrow__Flight__Protocol__FlightInfo *fi = NULL;
  int64_t v = 0;
  ASSERT_OK(info(e.ch, "SELECT 6::BIGINT", NULL, 0, &fi, &e.err), &e.err);
  ASSERT_OK(get_i64(e.ch, &fi->endpoint[0]->ticket->ticket, &v, &e.err), &e.err);
  ASSERT_EQ(v, 6);
  /* a finished one is NOT_CANCELLABLE, and still runs after */
  int status = 0;
  ASSERT_OK(cancel_info(e.ch, fi, &status, &e.err), &e.err);
  ASSERT_EQ(status, ARROW__FLIGHT__PROTOCOL__CANCEL_STATUS__CANCEL_STATUS_NOT_CANCELLABLE);
  ASSERT_OK(get_i64(e.ch, &fi->endpoint[0]->ticket->ticket, &v, &e.err), &e.err);
  protobuf_c_message_free_unpacked(&fi->base, NULL);
  env_stop(&e);
}

static void cancel_in_a_transaction_and_a_busy_transaction_waits(void) {
  struct env e;
  struct wg_server_options o = {.acquire_timeout_ms = 300};
  ASSERT_EQ(env_start(&e, &o), 0);
  ASSERT_OK(exec_sql(&e, "CREATE TABLE t (x INT)"), e.st.message);
  uint8_t id[64];
  size_t n = 0;
  int64_t rows = 0, v = 0;
  ASSERT_OK(begin(e.ch, id, &n, &e.err), &e.err);
  /* while a DoGet holds the transaction, another call on it waits, then is RESOURCE_EXHAUSTED */
  Arrow__Flight__Protocol__FlightInfo *fi = NULL;
  ASSERT_OK(info(e.ch, LONG_QUERY, id, n, &fi, &e.err), &e.err);
  struct bg_get g = {.ch = e.ch, .ticket = fi->endpoint[0]->ticket->ticket};
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, NULL, bg_get_main, &g), 0);
  usleep(500 * 1000);
  int64_t t0 = now_ms();
  int busy = update(e.ch, "INSERT INTO t VALUES (1)", id, n, &rows, &e.err);
  int64_t waited = now_ms() - t0;
  char busy_msg[512];
  snprintf(busy_msg, sizeof(busy_msg), "%s", e.err.message);
  int status = 0;
  int rc = cancel_info(e.ch, fi, &status, &e.err);
  pthread_join(th, NULL);
  protobuf_c_message_free_unpacked(&fi->base, NULL);
  ASSERT_EQ(busy, EBUSY);
  ASSERT_TRUE(strstr(busy_msg, "one call at a time") != NULL);
  ASSERT_TRUE(waited >= 250);
  ASSERT_OK(rc, &e.err);
  ASSERT_EQ(status, ARROW__FLIGHT__PROTOCOL__CANCEL_STATUS__CANCEL_STATUS_CANCELLED);
  ASSERT_EQ(g.rc, ECANCELED);
  /* the transaction is still there (DuckDB may have aborted it): a rollback ends it */
  ASSERT_OK(end(e.ch, id, n, false, &e.err), &e.err);
  ASSERT_EQ(wg_engine_pinned_count(e.fx.server->engine), 0);
  /* a fresh one works on after a cancel of one of its queries */
  ASSERT_OK(begin(e.ch, id, &n, &e.err), &e.err);
  ASSERT_OK(update(e.ch, "INSERT INTO t VALUES (1)", id, n, &rows, &e.err), &e.err);
  ASSERT_OK(query_i64(e.ch, "SELECT count(*) FROM t", id, n, &v, &e.err), &e.err);
  ASSERT_EQ(v, 1);
  ASSERT_OK(end(e.ch, id, n, true, &e.err), &e.err);
  env_stop(&e);
}

static void cancel_before_doget_makes_it_cancelled(void) {
  struct env e;
  struct wg_server_options o = {0};
  ASSERT_EQ(env_start(&e, &o), 0);
  Arrow__Flight__Protocol__FlightInfo *fi = NULL;
  int64_t v = 0;
  ASSERT_OK(info(e.ch, "SELECT 9::BIGINT AS nine", NULL, 0, &fi, &e.err), &e.err);
  int status = 0;
  ASSERT_OK(cancel_info(e.ch, fi, &status, &e.err), &e.err);
  ASSERT_EQ(status, ARROW__FLIGHT__PROTOCOL__CANCEL_STATUS__CANCEL_STATUS_CANCELLED);
  int64_t t0 = now_ms();
  ASSERT_EQ(get_i64(e.ch, &fi->endpoint[0]->ticket->ticket, &v, &e.err), ECANCELED);
  ASSERT_TRUE(now_ms() - t0 < 2000);
  ASSERT_TRUE(strstr(e.err.message, "cancelled") != NULL);
  ASSERT_EQ(v, -1);
  /* once: asked again, it runs */
  ASSERT_OK(get_i64(e.ch, &fi->endpoint[0]->ticket->ticket, &v, &e.err), &e.err);
  ASSERT_EQ(v, 9);
  /* Flight SQL's older CancelQuery (an Any holding the serialized FlightInfo) does the same */
  size_t len = 0;
  uint8_t *ser = pack(&fi->base, false, &len);
  Arrow__Flight__Protocol__Sql__ActionCancelQueryRequest cq =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_CANCEL_QUERY_REQUEST__INIT;
  cq.has_info = 1;
  cq.info.data = ser;
  cq.info.len = len;
  ProtobufCMessage *r = NULL;
  int rc = action(e.ch, "CancelQuery", &cq.base, true,
                  &arrow__flight__protocol__sql__action_cancel_query_result__descriptor, &r,
                  &e.err);
  free(ser);
  ASSERT_OK(rc, &e.err);
  ASSERT_TRUE(r != NULL);
  int result = ((Arrow__Flight__Protocol__Sql__ActionCancelQueryResult *)r)->result;
  protobuf_c_message_free_unpacked(r, NULL);
  /* it had just finished: not cancellable; then cancelled before the next DoGet */
  ASSERT_EQ(result, QUERY_NOT_CANCELLABLE);
  protobuf_c_message_free_unpacked(&fi->base, NULL);
  ASSERT_OK(info(e.ch, "SELECT 10::BIGINT", NULL, 0, &fi, &e.err), &e.err);
  ser = pack(&fi->base, false, &len);
  cq.info.data = ser;
  cq.info.len = len;
  rc = action(e.ch, "CancelQuery", &cq.base, true,
              &arrow__flight__protocol__sql__action_cancel_query_result__descriptor, &r, &e.err);
  free(ser);
  ASSERT_OK(rc, &e.err);
  result = r != NULL ? ((Arrow__Flight__Protocol__Sql__ActionCancelQueryResult *)r)->result : -1;
  if (r != NULL) protobuf_c_message_free_unpacked(r, NULL);
  ASSERT_EQ(result, QUERY_CANCELLED);
  ASSERT_EQ(get_i64(e.ch, &fi->endpoint[0]->ticket->ticket, &v, &e.err), ECANCELED);
  protobuf_c_message_free_unpacked(&fi->base, NULL);
  /* a request without a FlightInfo is INVALID_ARGUMENT */
  Arrow__Flight__Protocol__CancelFlightInfoRequest empty =
      ARROW__FLIGHT__PROTOCOL__CANCEL_FLIGHT_INFO_REQUEST__INIT;
  ASSERT_EQ(action(e.ch, "CancelFlightInfo", &empty.base, false, NULL, NULL, &e.err), EINVAL);
  env_stop(&e);
}

static void renew_flight_endpoint_answers_it_unchanged(void) {
  struct env e;
  struct wg_server_options o = {0};
  ASSERT_EQ(env_start(&e, &o), 0);
  Arrow__Flight__Protocol__FlightInfo *fi = NULL;
  ASSERT_OK(info(e.ch, "SELECT 3::BIGINT", NULL, 0, &fi, &e.err), &e.err);
  Arrow__Flight__Protocol__RenewFlightEndpointRequest req =
      ARROW__FLIGHT__PROTOCOL__RENEW_FLIGHT_ENDPOINT_REQUEST__INIT;
  req.endpoint = fi->endpoint[0];
  ProtobufCMessage *r = NULL;
  int rc = action(e.ch, "RenewFlightEndpoint", &req.base, false,
                  &arrow__flight__protocol__flight_endpoint__descriptor, &r, &e.err);
  ASSERT_OK(rc, &e.err);
  ASSERT_TRUE(r != NULL);
  Arrow__Flight__Protocol__FlightEndpoint *ep = (void *)r;
  ASSERT_TRUE(ep->ticket != NULL);
  ASSERT_EQ(ep->ticket->ticket.len, fi->endpoint[0]->ticket->ticket.len);
  ASSERT_TRUE(memcmp(ep->ticket->ticket.data, fi->endpoint[0]->ticket->ticket.data,
                     ep->ticket->ticket.len) == 0);
  int64_t v = 0;
  ASSERT_OK(get_i64(e.ch, &ep->ticket->ticket, &v, &e.err), &e.err);
  ASSERT_EQ(v, 3);
  protobuf_c_message_free_unpacked(r, NULL);
  protobuf_c_message_free_unpacked(&fi->base, NULL);
  env_stop(&e);
}

/* ---- session options ------------------------------------------------------------------------- */
static void session_options_tell_catalog_and_schema_and_close_rolls_back(void) {
  struct env e;
  struct wg_server_options o = {0};
  ASSERT_EQ(env_start(&e, &o), 0);
  Arrow__Flight__Protocol__GetSessionOptionsRequest g =
      ARROW__FLIGHT__PROTOCOL__GET_SESSION_OPTIONS_REQUEST__INIT;
  ProtobufCMessage *r = NULL;
  ASSERT_OK(action(e.ch, "GetSessionOptions", &g.base, false,
                   &arrow__flight__protocol__get_session_options_result__descriptor, &r, &e.err),
            &e.err);
  ASSERT_TRUE(r != NULL);
  Arrow__Flight__Protocol__GetSessionOptionsResult *gr = (void *)r;
  char catalog[64] = "", schema[64] = "";
  for (size_t i = 0; i < gr->n_session_options; i++) {
    const Arrow__Flight__Protocol__SessionOptionValue *v = gr->session_options[i]->value;
    if (v == NULL || v->option_value_case != STRING_VALUE)
      continue;
    if (strcmp(gr->session_options[i]->key, "catalog") == 0)
      snprintf(catalog, sizeof(catalog), "%s", v->string_value);
    if (strcmp(gr->session_options[i]->key, "schema") == 0)
      snprintf(schema, sizeof(schema), "%s", v->string_value);
  }
  protobuf_c_message_free_unpacked(r, NULL);
  ASSERT_STREQ(catalog, "memory");
  ASSERT_STREQ(schema, "main");
  /* set: the current value is taken; another is ERROR; an unknown name INVALID_NAME; a value of
   * another type INVALID_VALUE */
  Arrow__Flight__Protocol__SessionOptionValue v[4];
  Arrow__Flight__Protocol__SetSessionOptionsRequest__SessionOptionsEntry en[4], *pe[4];
  const char *keys[4] = {"schema", "catalog", "fetch_size", "schema"};
  for (int i = 0; i < 4; i++) {
    arrow__flight__protocol__session_option_value__init(&v[i]);
    v[i].option_value_case = STRING_VALUE;
    v[i].string_value = i == 0 ? "main" : "elsewhere";
    arrow__flight__protocol__set_session_options_request__session_options_entry__init(&en[i]);
    en[i].key = (char *)keys[i];
    en[i].value = &v[i];
    pe[i] = &en[i];
  }
  v[3].option_value_case =
      ARROW__FLIGHT__PROTOCOL__SESSION_OPTION_VALUE__OPTION_VALUE_INT64_VALUE;
  v[3].int64_value = 5;
  Arrow__Flight__Protocol__SetSessionOptionsRequest s =
      ARROW__FLIGHT__PROTOCOL__SET_SESSION_OPTIONS_REQUEST__INIT;
  s.n_session_options = 4;
  s.session_options = pe;
  ASSERT_OK(action(e.ch, "SetSessionOptions", &s.base, false,
                   &arrow__flight__protocol__set_session_options_result__descriptor, &r, &e.err),
            &e.err);
  ASSERT_TRUE(r != NULL);
  Arrow__Flight__Protocol__SetSessionOptionsResult *sr = (void *)r;
  int by[4] = {-1, -1, -1, -1};
  for (size_t i = 0; i < sr->n_errors; i++) {
    int k = strcmp(sr->errors[i]->key, "catalog") == 0      ? 1
            : strcmp(sr->errors[i]->key, "fetch_size") == 0 ? 2
            : strcmp(sr->errors[i]->key, "schema") == 0     ? 3
                                                            : 0;
    if (sr->errors[i]->value != NULL) by[k] = sr->errors[i]->value->value;
  }
  size_t n_errors = sr->n_errors;
  protobuf_c_message_free_unpacked(r, NULL);
  ASSERT_EQ(n_errors, 3);
  ASSERT_EQ(by[0], -1);
  ASSERT_EQ(by[1], SET_ERROR(ERROR));
  ASSERT_EQ(by[2], SET_ERROR(INVALID_NAME));
  ASSERT_EQ(by[3], SET_ERROR(INVALID_VALUE));
  /* CloseSession rolls back the client's open transactions (ADBC's close sends only it) */
  ASSERT_OK(exec_sql(&e, "CREATE TABLE t (x INT)"), e.st.message);
  uint8_t id[64];
  size_t idn = 0;
  int64_t rows = 0;
  ASSERT_OK(begin(e.ch, id, &idn, &e.err), &e.err);
  ASSERT_OK(update(e.ch, "INSERT INTO t VALUES (1)", id, idn, &rows, &e.err), &e.err);
  ASSERT_EQ(wg_engine_pinned_count(e.fx.server->engine), 1);
  Arrow__Flight__Protocol__CloseSessionRequest cl =
      ARROW__FLIGHT__PROTOCOL__CLOSE_SESSION_REQUEST__INIT;
  ASSERT_OK(action(e.ch, "CloseSession", &cl.base, false,
                   &arrow__flight__protocol__close_session_result__descriptor, &r, &e.err),
            &e.err);
  ASSERT_TRUE(r != NULL);
  int closed = ((Arrow__Flight__Protocol__CloseSessionResult *)r)->status;
  protobuf_c_message_free_unpacked(r, NULL);
  ASSERT_EQ(closed, ARROW__FLIGHT__PROTOCOL__CLOSE_SESSION_RESULT__STATUS__CLOSED);
  ASSERT_EQ(wg_engine_pinned_count(e.fx.server->engine), 0);
  ASSERT_EQ(end(e.ch, id, idn, true, &e.err), ENOENT);
  ASSERT_EQ(others_count(&e, "t"), 0);
  env_stop(&e);
}

int main(void) {
  RUN_TEST(commit_is_seen_by_others_only_after_it);
  RUN_TEST(rollback_discards_everything);
  RUN_TEST(two_transactions_at_once_are_apart);
  RUN_TEST(unknown_forged_and_other_clients_ids_are_not_found);
  RUN_TEST(idle_transaction_expires_and_rolls_back);
  RUN_TEST(max_sessions_refuses_one_more_writer_naming_the_flag);
  RUN_TEST(server_stop_rolls_back_open_transactions);
  RUN_TEST(failed_statement_leaves_the_transaction_to_roll_back);
  RUN_TEST(an_ended_id_stands_for_the_next_transaction_its_client_began);
  RUN_TEST(sql_inside_a_transaction_runs_in_it);
  RUN_TEST(savepoints_are_unimplemented);
  RUN_TEST(cancel_flight_info_interrupts_a_running_doget);
  RUN_TEST(cancel_in_a_transaction_and_a_busy_transaction_waits);
  RUN_TEST(cancel_before_doget_makes_it_cancelled);
  RUN_TEST(renew_flight_endpoint_answers_it_unchanged);
  RUN_TEST(session_options_tell_catalog_and_schema_and_close_rolls_back);
  return TEST_SUMMARY();
}
