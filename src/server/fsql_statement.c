/* wigeon: Flight SQL statements. CommandStatementQuery (GetFlightInfo): a query (a statement whose
 * result is rows) is prepared, not run, for its schema; the ticket is a TicketStatementQuery whose
 * statement_handle is the command itself, packed (its SQL and transaction id), so a ticket needs
 * no server state, stays valid across restarts, and the query runs once, in the DoGet. Anything
 * else (DDL, DML, SET, several statements) runs in the GetFlightInfo itself, as drivers expect of
 * "execute" (ADBC's cursor.execute("CREATE TABLE ...") reads no result), and its ticket is a
 * finished one: a handle of WG_DONE_TAG and the rows changed, which DoGet answers with one row of
 * one BIGINT column "Count", as DuckDB answers DML. CommandStatementUpdate (DoPut): the SQL
 * runs (one statement or several, all or nothing) and the answer is a DoPutUpdateResult with the
 * rows changed. Both run on the transaction's connection when the command names one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/roles.h"
#include "server/fsql.h"

typedef Arrow__Flight__Protocol__Sql__CommandStatementQuery query_cmd;

/* A finished statement's handle: this byte (never the first byte of a packed command, which is a
 * field key), then its count as 8 bytes, little-endian. */
#define WG_DONE_TAG 0x00
enum { DONE_LEN = 9 };

/* SELECT N::BIGINT AS "Count": the result of a finished statement (malloc'ed; NULL: no memory). */
static char *count_sql(int64_t rows) {
  char *sql = malloc(64);
  if (sql != NULL) snprintf(sql, 64, "SELECT %lld::BIGINT AS \"Count\"", (long long)rows);
  return sql;
}

/* The command's SQL, checked as any SQL text from the wire (request.c's rule). */
static int statement_sql(struct wg_server *s, const char *query, const char *what, char **out,
                         struct wg_error *err) {
  const char *q = query != NULL ? query : "";
  return wg__request_text(s, (const uint8_t *)q, strlen(q), WG__TEXT_SQL, what, out, err);
}

int wg__fsql_statement_info(struct wg_server *s, struct wg_rpc_call *call,
                            const ProtobufCMessage *cmd, struct wg__fsql_info *out,
                            struct wg_error *err) {
  const query_cmd *q = (const query_cmd *)cmd;
  char *sql = NULL;
  WG_RETURN_NOT_OK(statement_sql(s, q->query, "CommandStatementQuery.query", &sql, err));
  struct wg__fsql_conn c = {0};
  int rc = wg__fsql_conn_acquire(s, call, q->has_transaction_id, q->transaction_id, &c, err);
  struct ArrowSchema schema = {0};
  enum wg_engine_sql_kind kind = WG_ENGINE_SQL_ROWS;
  int64_t changed = 0;
  if (rc == 0) rc = wg_engine_query_describe(c.conn, sql, &schema, &kind, err);
  if (rc == 0 && kind == WG_ENGINE_SQL_CHANGE) {
    if (!out->describe_only) { /* GetSchema only tells the schema it would have */
      wg__limits_query(s, call); /* the query timeout runs from here */
      wg_rpc_call_set_cancel_hook(call, wg__server_interrupt_hook, c.conn);
      rc = wg_engine_execute(c.conn, sql, &changed, err);
      wg_rpc_call_set_cancel_hook(call, NULL, NULL);
    }
    free(sql);
    sql = rc == 0 ? count_sql(changed) : NULL;
    if (rc == 0 && sql == NULL) rc = wg_error_set(err, ENOMEM, "out of memory");
    if (rc == 0) rc = wg_engine_query_schema(c.conn, sql, &schema, err);
  }
  wg__fsql_conn_release(s, &c);
  free(sql);
  if (rc == 0) rc = wg_flight_schema_bytes(&schema, &out->schema, err);
  wg_schema_release(&schema);
  struct wg_buf handle;
  wg_buf_init(&handle);
  if (rc == 0 && kind == WG_ENGINE_SQL_CHANGE) {
    uint8_t done[DONE_LEN] = {WG_DONE_TAG};
    for (int i = 0; i < 8; i++)
      done[1 + i] = (uint8_t)((uint64_t)changed >> (8 * i));
    if (wg_buf_append(&handle, done, DONE_LEN) != 0)
      rc = wg_error_set(err, ENOMEM, "out of memory");
    out->rows = changed; /* what ADBC reports as cursor.rowcount */
  } else if (rc == 0) {
    size_t n = protobuf_c_message_get_packed_size(cmd);
    if (wg_buf_reserve(&handle, (int64_t)n) != 0) {
      rc = wg_error_set(err, ENOMEM, "out of memory");
    } else {
      protobuf_c_message_pack(cmd, handle.data);
      handle.size = (int64_t)n;
    }
  }
  if (rc == 0) {
    Arrow__Flight__Protocol__Sql__TicketStatementQuery t =
        ARROW__FLIGHT__PROTOCOL__SQL__TICKET_STATEMENT_QUERY__INIT;
    t.has_statement_handle = 1;
    t.statement_handle.data = handle.data;
    t.statement_handle.len = (size_t)handle.size;
    rc = wg__fsql_pack_any(&t.base, &out->ticket, err);
  }
  wg_buf_reset(&handle);
  return rc;
}

int wg__fsql_statement_get(struct wg_server *s, struct wg_rpc_call *call,
                           const ProtobufCMessage *cmd, struct wg__fsql_result *out,
                           struct wg_error *err) {
  const Arrow__Flight__Protocol__Sql__TicketStatementQuery *t =
      (const Arrow__Flight__Protocol__Sql__TicketStatementQuery *)cmd;
  if (t->statement_handle.len == DONE_LEN && t->statement_handle.data[0] == WG_DONE_TAG) {
    uint64_t rows = 0; /* a finished statement: its count, on a connection of the pool */
    for (int i = 0; i < 8; i++)
      rows |= (uint64_t)t->statement_handle.data[1 + i] << (8 * i);
    if ((out->sql = count_sql((int64_t)rows)) == NULL)
      return wg_error_set(err, ENOMEM, "out of memory");
    return wg__fsql_conn_acquire(s, call, false, t->statement_handle, &out->conn, err);
  }
  query_cmd *q = arrow__flight__protocol__sql__command_statement_query__unpack(
      NULL, t->statement_handle.len, t->statement_handle.data);
  if (q == NULL)
    return wg_error_set(err, EINVAL, "TicketStatementQuery: not a statement handle of this "
                                     "server (ask GetFlightInfo for the ticket)");
  int rc = statement_sql(s, q->query, "the statement's query", &out->sql, err);
  if (rc == 0)
    rc = wg__fsql_conn_acquire(s, call, q->has_transaction_id, q->transaction_id, &out->conn, err);
  protobuf_c_message_free_unpacked(&q->base, NULL);
  return rc;
}

int wg__fsql_statement_update(struct wg_server *s, struct wg_rpc_call *call,
                              const ProtobufCMessage *cmd, struct wg__put_stream *in,
                              struct wg_error *err) {
  const Arrow__Flight__Protocol__Sql__CommandStatementUpdate *u =
      (const Arrow__Flight__Protocol__Sql__CommandStatementUpdate *)cmd;
  char *sql = NULL;
  WG_RETURN_NOT_OK(statement_sql(s, u->query, "CommandStatementUpdate.query", &sql, err));
  /* the client's stream carries no data for an update: read it to its end before running */
  struct ArrowArray b;
  int rc = wg__put_stream_next(in, &b, err);
  if (rc == 0 && b.release != NULL) {
    wg_array_release(&b);
    rc = wg_error_set(err, EINVAL, "CommandStatementUpdate takes no record batches (bind "
                                   "parameters with a prepared statement)");
  }
  struct wg__fsql_conn c = {0};
  if (rc == 0)
    rc = wg__fsql_conn_acquire(s, call, u->has_transaction_id, u->transaction_id, &c, err);
  int64_t rows = 0;
  if (rc == 0) {
    wg__limits_query(s, call); /* the query timeout runs from here */
    wg_rpc_call_set_cancel_hook(call, wg__server_interrupt_hook, c.conn);
    rc = wg_engine_execute(c.conn, sql, &rows, err);
    wg_rpc_call_set_cancel_hook(call, NULL, NULL);
  }
  wg__fsql_conn_release(s, &c);
  free(sql);
  if (rc == 0) {
    Arrow__Flight__Protocol__Sql__DoPutUpdateResult r =
        ARROW__FLIGHT__PROTOCOL__SQL__DO_PUT_UPDATE_RESULT__INIT;
    r.has_record_count = 1;
    r.record_count = rows;
    rc = wg__fsql_put_result(call, &r.base, err);
  }
  return rc;
}
