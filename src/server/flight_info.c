/* wigeon: GetFlightInfo, PollFlightInfo, GetSchema and ListFlights. A PATH descriptor names a
 * table: its schema, exact row count, and one endpoint whose ticket reads it. A CMD descriptor is
 * SQL: its result schema comes from preparing the query, which is not run; the ticket is the SQL
 * itself, so tickets stay valid across restarts and any server of the same database serves them.
 * The endpoint has no location: the client reads from the server it asked. ListFlights' criteria,
 * when not empty, is UTF-8 text that table names must contain (case-insensitively). It takes
 * every table's schema and count from one engine listing (a few statements for any number of
 * tables), not one lookup per table. */
#include <stdlib.h>
#include <string.h>

#include "server/fsql.h"

/* What a FlightInfo is built from; everything owned. */
struct info_parts {
  struct wg_buf schema; /* encapsulated IPC schema */
  struct wg_buf ticket; /* SQL, or a Flight SQL ticket (an Any) */
  int64_t rows;         /* -1 unknown */
};

static void info_parts_reset(struct info_parts *p) {
  wg_buf_reset(&p->schema);
  wg_buf_reset(&p->ticket);
}

/* Takes the SQL text `sql` (malloc'ed, or NULL: out of memory) as the ticket. */
static int ticket_sql(struct info_parts *p, char *sql, struct wg_error *err) {
  int rc = sql == NULL ? wg_error_set(err, ENOMEM, "out of memory")
                       : wg_buf_append(&p->ticket, sql, (int64_t)strlen(sql)) == 0
                             ? 0
                             : wg_error_set(err, ENOMEM, "out of memory");
  free(sql);
  return rc;
}

/* The FlightInfo parts of descriptor d, asked for by RPC `rpc` (for messages). */
static int describe(struct wg_server *s, struct wg_rpc_call *call,
                    const Arrow__Flight__Protocol__FlightDescriptor *d, const char *rpc,
                    struct info_parts *out, struct wg_error *err) {
  wg_buf_init(&out->schema);
  wg_buf_init(&out->ticket);
  out->rows = -1;
  struct wg__request req;
  WG_RETURN_NOT_OK(wg__request_from_descriptor(s, d, &req, err));
  int rc = 0;
  if (req.kind == WG__REQUEST_FLIGHT_SQL) { /* fsql.c: its own schema and ticket */
    struct wg__fsql_info fi;
    rc = wg__fsql_info(s, call, &req, rpc, &fi, err);
    wg__request_reset(&req);
    if (rc != 0) return rc;
    out->schema = fi.schema;
    out->ticket = fi.ticket;
    out->rows = fi.rows;
    return 0;
  }
  if (req.kind != WG__REQUEST_SQL && req.kind != WG__REQUEST_TABLE)
    rc = wg__request_refuse(&req, rpc, err);
  struct wg_engine_conn *conn = NULL;
  if (rc == 0) rc = wg_engine_acquire(s->engine, &conn, err);
  struct ArrowSchema schema = {0};
  if (rc == 0 && req.kind == WG__REQUEST_SQL) {
    rc = wg_engine_query_schema(conn, req.sql, &schema, err);
    if (rc == 0) rc = ticket_sql(out, req.sql, err); /* the ticket is the SQL itself */
    else free(req.sql);
    req.sql = NULL;
  } else if (rc == 0) {
    rc = wg_engine_table_schema(conn, req.table.schema_name, req.table.table, &schema, &out->rows,
                                err);
    if (rc == 0) rc = ticket_sql(out, wg__server_table_sql(&req.table), err);
  }
  if (conn != NULL) wg_engine_release(s->engine, conn);
  wg__request_reset(&req);
  if (rc == 0) rc = wg_flight_schema_bytes(&schema, &out->schema, err);
  wg_schema_release(&schema);
  if (rc != 0) info_parts_reset(out);
  return rc;
}

/* Fills `info` (stack storage in *st) from parts; pointers borrow from parts and d. */
struct info_storage {
  Arrow__Flight__Protocol__FlightInfo info;
  Arrow__Flight__Protocol__FlightEndpoint endpoint, *endpoints[1];
  Arrow__Flight__Protocol__Ticket ticket;
};

static void build_info(struct info_storage *st, const struct info_parts *p,
                       Arrow__Flight__Protocol__FlightDescriptor *d) {
  arrow__flight__protocol__flight_info__init(&st->info);
  arrow__flight__protocol__flight_endpoint__init(&st->endpoint);
  arrow__flight__protocol__ticket__init(&st->ticket);
  st->ticket.ticket.data = p->ticket.data;
  st->ticket.ticket.len = (size_t)p->ticket.size;
  st->endpoint.ticket = &st->ticket;
  st->endpoints[0] = &st->endpoint;
  st->info.schema.data = p->schema.data;
  st->info.schema.len = (size_t)p->schema.size;
  st->info.flight_descriptor = d;
  st->info.n_endpoint = 1;
  st->info.endpoint = st->endpoints;
  st->info.total_records = p->rows;
  st->info.total_bytes = -1;
}

static void flight_info(struct wg_server *s, struct wg_rpc_call *call, bool poll) {
  struct wg_error err = {""};
  ProtobufCMessage *msg = NULL;
  int rc = wg__server_recv_request(call, &arrow__flight__protocol__flight_descriptor__descriptor,
                                   &msg, &err);
  if (rc == 0) {
    Arrow__Flight__Protocol__FlightDescriptor *d = (Arrow__Flight__Protocol__FlightDescriptor *)msg;
    struct info_parts parts;
    rc = describe(s, call, d, poll ? "PollFlightInfo" : "GetFlightInfo", &parts, &err);
    if (rc == 0) {
      struct info_storage st;
      build_info(&st, &parts, d);
      if (poll) { /* complete at once: no descriptor to poll again, progress 1 */
        Arrow__Flight__Protocol__PollInfo pi = ARROW__FLIGHT__PROTOCOL__POLL_INFO__INIT;
        pi.info = &st.info;
        pi.progress = 1.0;
        rc = wg__server_send_message(call, &pi.base, &err);
      } else {
        rc = wg__server_send_message(call, &st.info.base, &err);
      }
      info_parts_reset(&parts);
    }
    protobuf_c_message_free_unpacked(msg, NULL);
  }
  wg__server_finish(s, call, rc, &err);
}

void wg__server_get_flight_info(struct wg_server *s, struct wg_rpc_call *call) {
  flight_info(s, call, false);
}

void wg__server_poll_flight_info(struct wg_server *s, struct wg_rpc_call *call) {
  flight_info(s, call, true);
}

void wg__server_get_schema(struct wg_server *s, struct wg_rpc_call *call) {
  struct wg_error err = {""};
  ProtobufCMessage *msg = NULL;
  int rc = wg__server_recv_request(call, &arrow__flight__protocol__flight_descriptor__descriptor,
                                   &msg, &err);
  if (rc == 0) {
    struct info_parts parts;
    rc = describe(s, call, (Arrow__Flight__Protocol__FlightDescriptor *)msg, "GetSchema", &parts,
                  &err);
    if (rc == 0) {
      Arrow__Flight__Protocol__SchemaResult r = ARROW__FLIGHT__PROTOCOL__SCHEMA_RESULT__INIT;
      r.schema.data = parts.schema.data;
      r.schema.len = (size_t)parts.schema.size;
      rc = wg__server_send_message(call, &r.base, &err);
      info_parts_reset(&parts);
    }
    protobuf_c_message_free_unpacked(msg, NULL);
  }
  wg__server_finish(s, call, rc, &err);
}

void wg__server_list_flights(struct wg_server *s, struct wg_rpc_call *call) {
  struct wg_error err = {""};
  ProtobufCMessage *msg = NULL;
  int rc =
      wg__server_recv_request(call, &arrow__flight__protocol__criteria__descriptor, &msg, &err);
  char *filter = NULL;
  if (rc == 0) {
    const Arrow__Flight__Protocol__Criteria *c = (const Arrow__Flight__Protocol__Criteria *)msg;
    /* DuckDB takes only UTF-8, and a C string would cut the filter at a NUL */
    if (c->expression.len > 0)
      rc = wg__request_text(s, c->expression.data, c->expression.len, WG__TEXT_NAME,
                            "ListFlights criteria (a part of table names to match)", &filter,
                            &err);
    protobuf_c_message_free_unpacked(msg, NULL);
  }
  struct wg_engine_table *tables = NULL;
  int64_t n = 0;
  if (rc == 0) {
    struct wg_engine_conn *conn;
    rc = wg_engine_acquire(s->engine, &conn, &err);
    if (rc == 0) {
      rc = wg_engine_list_tables(conn, filter, &tables, &n, &err);
      wg_engine_release(s->engine, conn);
    }
  }
  for (int64_t i = 0; rc == 0 && i < n; i++) {
    Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
    char *path[2] = {tables[i].schema_name, tables[i].table_name};
    d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__PATH;
    d.n_path = 2;
    d.path = path;
    /* The listing has each table's schema and exact count already: nothing more per table. */
    struct wg__table_ref ref = {.schema_name = tables[i].schema_name,
                                .table = tables[i].table_name};
    struct info_parts parts = {.rows = tables[i].rows};
    wg_buf_init(&parts.schema);
    wg_buf_init(&parts.ticket);
    rc = wg_flight_schema_bytes(&tables[i].schema, &parts.schema, &err);
    if (rc == 0) rc = ticket_sql(&parts, wg__server_table_sql(&ref), &err);
    if (rc != 0) {
      info_parts_reset(&parts);
      break;
    }
    struct info_storage st;
    build_info(&st, &parts, &d);
    rc = wg__server_send_message(call, &st.info.base, &err);
    info_parts_reset(&parts);
  }
  wg_engine_tables_free(tables, n);
  free(filter);
  wg__server_finish(s, call, rc, &err);
}
