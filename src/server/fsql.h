/* wigeon: Flight SQL, what its files share (not for use outside src/server).
 *
 * A ticket, a FlightDescriptor command or an action body that request.c classifies as Flight SQL
 * (a google.protobuf.Any whose type_url names a message of arrow.flight.protocol.sql) is unpacked
 * once here (wg__fsql_unpack) and served by the handlers of one table (fsql.c, `defs`): one row per
 * command, saying which RPCs serve it:
 *   info  GetFlightInfo, PollFlightInfo (complete at once) and GetSchema: the result's schema and
 *         the ticket that reads it (an Any again, so DoGet comes back through the same table)
 *   get   DoGet of that ticket: SQL to run on a connection, or a ready stream
 *   put   DoPut with the command as descriptor: reads the client's batches, sends its PutResult
 * A command with no handler for the RPC it came with is INVALID_ARGUMENT naming both; one the
 * table does not have is UNIMPLEMENTED naming it. Actions (CreatePreparedStatement,
 * BeginTransaction, CancelFlightInfo...) are rows of actions.c's table whose handler takes the raw
 * body (an Any for Flight SQL's actions, the bare message for Flight's own).
 *
 * Each concern is a file of its own: fsql_statement.c (CommandStatementQuery/Update, the ticket of
 * a statement), fsql_meta.c (CommandGet*), fsql_prepared.c (prepared statements), fsql_txn.c
 * (transactions, the connections of Flight SQL calls), fsql_cancel.c (CancelFlightInfo,
 * CancelQuery, RenewFlightEndpoint, running queries), fsql_session.c (session options), and the
 * ingest (CommandStatementIngest) in do_put.c's own path. */
#ifndef WG_SERVER_FSQL_H
#define WG_SERVER_FSQL_H

#include "proto/flight_sql.pb-c.h"
#include "server/auth.h"
#include "server/internal.h"

/* ---- the connection of a Flight SQL call (fsql_txn.c) ---------------------------------------- */
struct wg__fsql_txn;
struct wg__fsql_conn {
  struct wg_engine_conn *conn;
  struct wg__fsql_txn *txn; /* the transaction whose pinned connection this is; NULL: the pool's */
};
/* A connection for a call: the pool's when the command has no transaction id (has_txn false or
 * an empty id), else the transaction's pinned connection (which one call at a time uses: a second
 * waits its turn, at most the acquire timeout: EBUSY). NOT_FOUND (ENOENT) for an unknown, ended,
 * expired or another client's transaction (one answer: an id tells nothing of other clients). */
int wg__fsql_conn_acquire(struct wg_server *s, const struct wg_rpc_call *call, bool has_txn,
                          ProtobufCBinaryData txn_id, struct wg__fsql_conn *out,
                          struct wg_error *err);
/* Gives the connection back (to the pool, or to its transaction); safe on an empty one. */
void wg__fsql_conn_release(struct wg_server *s, struct wg__fsql_conn *c);
/* Rolls back and ends every transaction of the call's client that no call is using (CloseSession:
 * ADBC closes a connection with its transaction open). Returns how many. */
int wg__fsql_txn_end_client(struct wg_server *s, const struct wg_rpc_call *call);

/* Who a call is, for what a client holds (transactions, prepared statements): the peer address
 * today, the authenticated user once there is authentication. Written to buf (always
 * NUL-terminated); returns buf. */
const char *wg__fsql_owner(const struct wg_rpc_call *call, char *buf, size_t n);

/* ---- handlers -------------------------------------------------------------------------------- */
/* What GetFlightInfo / GetSchema / PollFlightInfo answer for a command. */
struct wg__fsql_info {
  struct wg_buf schema; /* the encapsulated IPC schema (wg_flight_schema_bytes) */
  struct wg_buf ticket; /* the ticket (wg__fsql_pack_any of the message DoGet serves) */
  int64_t rows;         /* -1: unknown */
  bool describe_only;   /* in: GetSchema, which must not run a statement (no ticket wanted) */
};
/* What DoGet streams for a ticket: SQL run on conn exactly as a plain DoGet runs its ticket, or a
 * stream the handler made (metadata). DoGet releases conn (wg__fsql_conn_release) and the stream
 * afterwards; a cancelled call interrupts conn (when there is one). */
struct wg__fsql_result {
  struct wg__fsql_conn conn;
  char *sql;                      /* owned; NULL when `stream` is set */
  struct ArrowArrayStream stream; /* release NULL when `sql` is set */
};
/* A DoPut's batches after its first message (fsql_call.c). Handlers only read it. */
struct wg__put_stream {
  struct wg_server *s;
  struct wg_rpc_call *call;
  struct wg_ipc_decoder *dec;
  const struct wg_flight_data *first; /* not decoded yet while pending_first */
  bool pending_first, have_schema, done;
};
void wg__put_stream_init(struct wg__put_stream *in, struct wg_server *s, struct wg_rpc_call *call,
                         struct wg_ipc_decoder *dec, const struct wg_flight_data *first);
/* Reads and drops whatever is left, up to the client's half-close. */
int wg__put_stream_drain(struct wg__put_stream *in, struct wg_error *err);

typedef int (*wg__fsql_info_fn)(struct wg_server *s, struct wg_rpc_call *call,
                                const ProtobufCMessage *cmd, struct wg__fsql_info *out,
                                struct wg_error *err);
typedef int (*wg__fsql_get_fn)(struct wg_server *s, struct wg_rpc_call *call,
                               const ProtobufCMessage *cmd, struct wg__fsql_result *out,
                               struct wg_error *err);
/* Reads what it needs from `in` and sends its one PutResult (wg__fsql_put_result); DoPut finishes
 * the call with the code returned. */
typedef int (*wg__fsql_put_fn)(struct wg_server *s, struct wg_rpc_call *call,
                               const ProtobufCMessage *cmd, struct wg__put_stream *in,
                               struct wg_error *err);
/* A raw-body action (actions.c): unpacks `body` itself, sends its Result(s) itself. */
typedef int (*wg__fsql_action_fn)(struct wg_server *s, struct wg_rpc_call *call,
                                  const ProtobufCBinaryData *body, struct wg_error *err);

/* One row of the command table. */
struct wg__fsql_def {
  const ProtobufCMessageDescriptor *desc; /* its name is the command's name */
  wg__fsql_info_fn info;
  wg__fsql_get_fn get;
  wg__fsql_put_fn put;
  enum wg_role role; /* what the caller needs, for every RPC (checked at unpacking) */
};
/* A Flight SQL request unpacked: its row and its message (owned). */
struct wg__fsql_cmd {
  const struct wg__fsql_def *def;
  ProtobufCMessage *msg;
};
/* Unpacks a FLIGHT_SQL request (r->kind must be WG__REQUEST_FLIGHT_SQL) for RPC `rpc` ("DoGet",
 * "DoPut", "GetFlightInfo"...): UNIMPLEMENTED (ENOTSUP) for a command not in the table,
 * INVALID_ARGUMENT for bytes that are not that message or a command the RPC does not serve. */
int wg__fsql_unpack(const struct wg__request *r, const char *rpc, struct wg__fsql_cmd *out,
                    struct wg_error *err);
void wg__fsql_cmd_reset(struct wg__fsql_cmd *c);

/* The RPCs' entries (called by flight_info.c, do_get.c, do_put.c for FLIGHT_SQL requests). */
int wg__fsql_info(struct wg_server *s, struct wg_rpc_call *call, const struct wg__request *r,
                  const char *rpc, struct wg__fsql_info *out, struct wg_error *err);
void wg__fsql_info_reset(struct wg__fsql_info *i);
int wg__fsql_get(struct wg_server *s, struct wg_rpc_call *call, const struct wg__request *r,
                 struct wg__fsql_result *out, struct wg_error *err);
void wg__fsql_result_reset(struct wg_server *s, struct wg__fsql_result *res);
/* DoPut of a Flight SQL command other than CommandStatementIngest: `first` is the stream's first
 * message (its descriptor already read into r), `dec` the put's IPC decoder (first's schema, if
 * it has one, not decoded yet). */
int wg__fsql_put(struct wg_server *s, struct wg_rpc_call *call, const struct wg__request *r,
                 const struct wg_flight_data *first, struct wg_ipc_decoder *dec,
                 struct wg_error *err);

/* ---- helpers --------------------------------------------------------------------------------- */
/* Packs m as a google.protobuf.Any (type_url "type.googleapis.com/" + its full name) into out. */
int wg__fsql_pack_any(const ProtobufCMessage *m, struct wg_buf *out, struct wg_error *err);
/* Unpacks an action body: an Any holding a `d` when `any`, else a bare `d`. INVALID_ARGUMENT
 * naming the action for anything else. */
int wg__fsql_action_unpack(const ProtobufCBinaryData *body, const ProtobufCMessageDescriptor *d,
                           bool any, const char *action, ProtobufCMessage **out,
                           struct wg_error *err);
/* Sends m as one Result of an action: packed in an Any when `any` (Flight SQL's actions), bare
 * otherwise (Flight's own: CancelFlightInfo, RenewFlightEndpoint, session options). */
int wg__fsql_action_result(struct wg_rpc_call *call, const ProtobufCMessage *m, bool any,
                           struct wg_error *err);
/* Sends one PutResult whose app_metadata is m's bytes (DoPutUpdateResult and the like). */
int wg__fsql_put_result(struct wg_rpc_call *call, const ProtobufCMessage *m, struct wg_error *err);
/* The schema of the client's batches into *out (ENOENT when the stream ended, or was only a
 * descriptor, before any schema: e.g. a CommandStatementUpdate). */
int wg__put_stream_schema(struct wg__put_stream *in, struct ArrowSchema *out,
                          struct wg_error *err);
/* The next record batch into *out (out->release NULL at the end of the stream). A stream's
 * batches are at most --max-message-bytes each; a handler that keeps them bounds their sum. */
int wg__put_stream_next(struct wg__put_stream *in, struct ArrowArray *out, struct wg_error *err);

/* ---- per-concern state, made at server start (fsql.c calls each init/fini) ------------------- */
struct wg__fsql_txns;     /* fsql_txn.c */
struct wg__fsql_prepared; /* fsql_prepared.c */
struct wg__fsql_running;  /* fsql_cancel.c */
struct wg__fsql {
  struct wg__fsql_txns *txns;
  struct wg__fsql_prepared *prepared;
  struct wg__fsql_running *running;
};
int wg__fsql_start(struct wg_server *s, struct wg_error *err);
void wg__fsql_stop(struct wg_server *s);
int wg__fsql_txn_init(struct wg_server *s, struct wg_error *err);
void wg__fsql_txn_fini(struct wg_server *s);
int wg__fsql_prepared_init(struct wg_server *s, struct wg_error *err);
void wg__fsql_prepared_fini(struct wg_server *s);
/* How long an unused prepared statement handle lives (ms; <= 0: the default, 10 minutes): for
 * tests of the expiry. */
void wg__fsql_prepared_set_idle_ms(struct wg_server *s, int64_t ms);
int wg__fsql_running_init(struct wg_server *s, struct wg_error *err);
void wg__fsql_running_fini(struct wg_server *s);

/* Running DoGets, for CancelFlightInfo (fsql_cancel.c): DoGet registers each Flight SQL ticket it
 * streams with the connection it runs on and removes it when done (ECANCELED from add: the
 * ticket was cancelled before its DoGet came). */
struct wg__fsql_run;
int wg__fsql_running_add(struct wg_server *s, const ProtobufCBinaryData *ticket,
                         struct wg_engine_conn *conn, struct wg__fsql_run **out,
                         struct wg_error *err);
void wg__fsql_running_remove(struct wg_server *s, struct wg__fsql_run *run);

/* ---- the handlers of each file (the table in fsql.c points at these) ------------------------- */
/* fsql_statement.c */
int wg__fsql_statement_info(struct wg_server *s, struct wg_rpc_call *call,
                            const ProtobufCMessage *cmd, struct wg__fsql_info *out,
                            struct wg_error *err);
int wg__fsql_statement_get(struct wg_server *s, struct wg_rpc_call *call,
                           const ProtobufCMessage *cmd, struct wg__fsql_result *out,
                           struct wg_error *err);
int wg__fsql_statement_update(struct wg_server *s, struct wg_rpc_call *call,
                              const ProtobufCMessage *cmd, struct wg__put_stream *in,
                              struct wg_error *err);
/* fsql_meta.c: one info and one get for every CommandGet* (the command says which) */
int wg__fsql_meta_info(struct wg_server *s, struct wg_rpc_call *call, const ProtobufCMessage *cmd,
                       struct wg__fsql_info *out, struct wg_error *err);
int wg__fsql_meta_get(struct wg_server *s, struct wg_rpc_call *call, const ProtobufCMessage *cmd,
                      struct wg__fsql_result *out, struct wg_error *err);
/* fsql_prepared.c */
int wg__fsql_prepared_info(struct wg_server *s, struct wg_rpc_call *call,
                           const ProtobufCMessage *cmd, struct wg__fsql_info *out,
                           struct wg_error *err);
int wg__fsql_prepared_get(struct wg_server *s, struct wg_rpc_call *call,
                          const ProtobufCMessage *cmd, struct wg__fsql_result *out,
                          struct wg_error *err);
int wg__fsql_prepared_bind(struct wg_server *s, struct wg_rpc_call *call,
                           const ProtobufCMessage *cmd, struct wg__put_stream *in,
                           struct wg_error *err);
int wg__fsql_prepared_update(struct wg_server *s, struct wg_rpc_call *call,
                             const ProtobufCMessage *cmd, struct wg__put_stream *in,
                             struct wg_error *err);
int wg__fsql_action_create_prepared(struct wg_server *s, struct wg_rpc_call *call,
                                    const ProtobufCBinaryData *body, struct wg_error *err);
int wg__fsql_action_close_prepared(struct wg_server *s, struct wg_rpc_call *call,
                                   const ProtobufCBinaryData *body, struct wg_error *err);
/* fsql_txn.c */
int wg__fsql_action_begin_transaction(struct wg_server *s, struct wg_rpc_call *call,
                                      const ProtobufCBinaryData *body, struct wg_error *err);
int wg__fsql_action_end_transaction(struct wg_server *s, struct wg_rpc_call *call,
                                    const ProtobufCBinaryData *body, struct wg_error *err);
int wg__fsql_action_begin_savepoint(struct wg_server *s, struct wg_rpc_call *call,
                                    const ProtobufCBinaryData *body, struct wg_error *err);
int wg__fsql_action_end_savepoint(struct wg_server *s, struct wg_rpc_call *call,
                                  const ProtobufCBinaryData *body, struct wg_error *err);
/* fsql_cancel.c */
int wg__fsql_action_cancel_flight_info(struct wg_server *s, struct wg_rpc_call *call,
                                       const ProtobufCBinaryData *body, struct wg_error *err);
int wg__fsql_action_cancel_query(struct wg_server *s, struct wg_rpc_call *call,
                                 const ProtobufCBinaryData *body, struct wg_error *err);
int wg__fsql_action_renew_endpoint(struct wg_server *s, struct wg_rpc_call *call,
                                   const ProtobufCBinaryData *body, struct wg_error *err);
/* fsql_session.c */
int wg__fsql_action_set_session_options(struct wg_server *s, struct wg_rpc_call *call,
                                        const ProtobufCBinaryData *body, struct wg_error *err);
int wg__fsql_action_get_session_options(struct wg_server *s, struct wg_rpc_call *call,
                                        const ProtobufCBinaryData *body, struct wg_error *err);
int wg__fsql_action_close_session(struct wg_server *s, struct wg_rpc_call *call,
                                  const ProtobufCBinaryData *body, struct wg_error *err);

#endif
