/* wigeon: Flight SQL prepared statements end to end: a real server on 127.0.0.1, driven over real
 * gRPC with requests packed from the protobuf-c message definitions (CreatePreparedStatement,
 * DoPut of parameter rows, GetFlightInfo, DoGet, CommandPreparedStatementUpdate, Close).
 * Parameter rows are Arrow batches that DuckDB makes from literals (a plain-Flight query), so
 * each bound value is checked against what DuckDB gives for the same SQL with the literal. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arrow/array.h"
#include "arrow/ipc.h"
#include "flight/flight.h"
#include "proto/flight_sql.pb-c.h"
#include "rpc/rpc.h"
#include "server/fsql.h" /* wg__fsql_prepared_set_idle_ms, for the expiry */
#include "support/server_fixture.h"
#include "test.h"

#define SQL_URL "type.googleapis.com/arrow.flight.protocol.sql."

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* google.protobuf.Any {type_url = 1, value = 2} has the wire form of Flight's Action {type = 1,
 * body = 2}: packed through that struct. *out malloc'ed. */
static void pack_any(const ProtobufCMessage *m, uint8_t **out, size_t *len) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *v = malloc(n ? n : 1);
  protobuf_c_message_pack(m, v);
  char url[256];
  snprintf(url, sizeof(url), "type.googleapis.com/%s", m->descriptor->name);
  Arrow__Flight__Protocol__Action a = ARROW__FLIGHT__PROTOCOL__ACTION__INIT;
  a.type = url;
  a.body = (ProtobufCBinaryData){n, v};
  *len = protobuf_c_message_get_packed_size(&a.base);
  *out = malloc(*len ? *len : 1);
  protobuf_c_message_pack(&a.base, *out);
  free(v);
}

/* One call's outcome: the errno value (0 OK), the gRPC code and the server's message. */
struct outcome {
  int rc;
  grpc_status_code code;
  struct wg_error err;
};

/* A client: one channel (one connection, one owner on the server). */
struct cl {
  struct wg_rpc_channel *ch;
};

static int finish(struct wg_rpc_client_call *call, struct outcome *o) {
  o->rc = wg_rpc_client_call_finish(call, &o->code, &o->err);
  wg_rpc_client_call_destroy(call);
  return o->rc;
}

/* DoAction type with body Any(req); the first Result's Any unpacked as result_d into *res (NULL:
 * results not read into a message); *n_results counts them. */
static int action(struct cl *c, const char *type, const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *result_d, ProtobufCMessage **res,
                  int *n_results, struct outcome *o) {
  memset(o, 0, sizeof(*o));
  if (res != NULL) *res = NULL;
  int n = 0;
  struct wg_rpc_client_call *call;
  if ((o->rc = wg_rpc_client_call_start(c->ch, WG_FLIGHT_SERVICE "DoAction", 20000, NULL, &call,
                                        &o->err)) != 0)
    return o->rc;
  uint8_t *body;
  size_t len;
  pack_any(req, &body, &len);
  Arrow__Flight__Protocol__Action a = ARROW__FLIGHT__PROTOCOL__ACTION__INIT;
  a.type = (char *)type;
  a.body = (ProtobufCBinaryData){len, body};
  grpc_byte_buffer *bb;
  if (wg_flight_pack(&a.base, &bb, &o->err) == 0) wg_rpc_client_call_send(call, bb);
  free(body);
  wg_rpc_client_call_close_send(call);
  for (;;) {
    grpc_byte_buffer *r = NULL;
    if (wg_rpc_client_call_recv(call, &r) != 0 || r == NULL) break;
    ProtobufCMessage *m = NULL;
    if (n == 0 && res != NULL &&
        wg_flight_unpack(&arrow__flight__protocol__result__descriptor, r, &m, NULL) == 0) {
      const ProtobufCBinaryData *b = &((Arrow__Flight__Protocol__Result *)m)->body;
      Arrow__Flight__Protocol__Action *any =
          arrow__flight__protocol__action__unpack(NULL, b->len, b->data);
      char url[256];
      snprintf(url, sizeof(url), "type.googleapis.com/%s", result_d->name);
      if (any != NULL && any->type != NULL && strcmp(any->type, url) == 0)
        *res = protobuf_c_message_unpack(result_d, NULL, any->body.len, any->body.data);
      if (any != NULL) protobuf_c_message_free_unpacked(&any->base, NULL);
      protobuf_c_message_free_unpacked(m, NULL);
    }
    n++;
    grpc_byte_buffer_destroy(r);
  }
  if (n_results != NULL) *n_results = n;
  return finish(call, o);
}

/* A descriptor CMD = Any(cmd), serialized (malloc'ed). */
static void descriptor_of(const ProtobufCMessage *cmd, uint8_t **out, size_t *len) {
  uint8_t *any;
  size_t n;
  pack_any(cmd, &any, &n);
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
  d.cmd = (ProtobufCBinaryData){n, any};
  *len = protobuf_c_message_get_packed_size(&d.base);
  *out = malloc(*len);
  protobuf_c_message_pack(&d.base, *out);
  free(any);
}

static int get_info(struct cl *c, const ProtobufCMessage *cmd,
                    Arrow__Flight__Protocol__FlightInfo **info, struct outcome *o) {
  memset(o, 0, sizeof(*o));
  *info = NULL;
  uint8_t *dbytes;
  size_t dl;
  descriptor_of(cmd, &dbytes, &dl);
  Arrow__Flight__Protocol__FlightDescriptor *d =
      arrow__flight__protocol__flight_descriptor__unpack(NULL, dl, dbytes);
  free(dbytes);
  struct wg_rpc_client_call *call;
  if ((o->rc = wg_rpc_client_call_start(c->ch, WG_FLIGHT_SERVICE "GetFlightInfo", 20000, NULL,
                                        &call, &o->err)) == 0) {
    grpc_byte_buffer *bb;
    if (wg_flight_pack(&d->base, &bb, &o->err) == 0) wg_rpc_client_call_send(call, bb);
    wg_rpc_client_call_close_send(call);
    grpc_byte_buffer *r = NULL;
    if (wg_rpc_client_call_recv(call, &r) == 0 && r != NULL) {
      ProtobufCMessage *m = NULL;
      if (wg_flight_unpack(&arrow__flight__protocol__flight_info__descriptor, r, &m, NULL) == 0)
        *info = (Arrow__Flight__Protocol__FlightInfo *)m;
      grpc_byte_buffer_destroy(r);
    }
    finish(call, o);
  }
  protobuf_c_message_free_unpacked(&d->base, NULL);
  return o->rc;
}

/* What a DoGet streamed. */
struct got {
  struct ArrowSchema schema;
  struct ArrowArray b[256];
  int n;
  int64_t rows;
};

static void got_reset(struct got *g) {
  wg_schema_release(&g->schema);
  for (int i = 0; i < g->n; i++)
    wg_array_release(&g->b[i]);
  memset(g, 0, sizeof(*g));
}

static int do_get(struct cl *c, ProtobufCBinaryData ticket, struct got *g, struct outcome *o) {
  memset(o, 0, sizeof(*o));
  memset(g, 0, sizeof(*g));
  struct wg_rpc_client_call *call;
  if ((o->rc = wg_rpc_client_call_start(c->ch, WG_FLIGHT_SERVICE "DoGet", 60000, NULL, &call,
                                        &o->err)) != 0)
    return o->rc;
  Arrow__Flight__Protocol__Ticket t = ARROW__FLIGHT__PROTOCOL__TICKET__INIT;
  t.ticket = ticket;
  grpc_byte_buffer *bb;
  if (wg_flight_pack(&t.base, &bb, &o->err) == 0) wg_rpc_client_call_send(call, bb);
  wg_rpc_client_call_close_send(call);
  struct wg_ipc_decoder *dec = NULL;
  wg_ipc_decoder_create(&dec, NULL, NULL);
  for (;;) {
    grpc_byte_buffer *r = NULL;
    if (wg_rpc_client_call_recv(call, &r) != 0 || r == NULL) break;
    struct wg_flight_data fd = {0};
    if (wg_flight_data_decode(r, &fd, NULL) == 0 && fd.data_header.size > 0) {
      enum wg_ipc_message_type type;
      struct ArrowArray a = {0};
      if (wg_ipc_decoder_decode(dec, fd.data_header, fd.body, &type, &a, NULL) == 0 &&
          type == WG_IPC_MESSAGE_RECORD_BATCH && g->n < 256) {
        g->rows += a.length;
        wg_array_move(&a, &g->b[g->n++]);
      }
      wg_array_release(&a);
    }
    wg_flight_data_reset(&fd);
    grpc_byte_buffer_destroy(r);
  }
  if (wg_ipc_decoder_has_schema(dec)) wg_ipc_decoder_schema(dec, &g->schema, NULL);
  wg_ipc_decoder_destroy(dec);
  return finish(call, o);
}

/* DoPut with descriptor Any(cmd): schema NULL sends the descriptor alone; else the schema and
 * the n batches. The first PutResult's app_metadata is copied into *md (may be NULL). */
static int do_put(struct cl *c, const ProtobufCMessage *cmd, const struct ArrowSchema *schema,
                  const struct ArrowArray *batches, int n, struct wg_buf *md, struct outcome *o) {
  memset(o, 0, sizeof(*o));
  uint8_t *dbytes;
  size_t dl;
  descriptor_of(cmd, &dbytes, &dl);
  struct wg_rpc_client_call *call;
  if ((o->rc = wg_rpc_client_call_start(c->ch, WG_FLIGHT_SERVICE "DoPut", 60000, NULL, &call,
                                        &o->err)) != 0) {
    free(dbytes);
    return o->rc;
  }
  struct wg_bytes none = {NULL, 0}, desc = {dbytes, (int64_t)dl};
  grpc_byte_buffer *bb = NULL;
  if (schema == NULL) {
    Arrow__Flight__Protocol__FlightData fd = ARROW__FLIGHT__PROTOCOL__FLIGHT_DATA__INIT;
    Arrow__Flight__Protocol__FlightDescriptor *d =
        arrow__flight__protocol__flight_descriptor__unpack(NULL, dl, dbytes);
    fd.flight_descriptor = d;
    if (wg_flight_pack(&fd.base, &bb, &o->err) == 0) wg_rpc_client_call_send(call, bb);
    protobuf_c_message_free_unpacked(&d->base, NULL);
  } else {
    struct wg_ipc_encoder *enc = NULL;
    wg_ipc_encoder_create(&enc, schema, NULL, NULL);
    int64_t max = wg_ipc_encoder_max_messages(enc);
    struct wg_ipc_encoded *msgs = calloc((size_t)max + 1, sizeof(*msgs));
    for (int64_t i = 0; i <= max; i++)
      wg_ipc_encoded_init(&msgs[i]);
    wg_ipc_encoder_schema(enc, &msgs[0], NULL);
    if (wg_flight_data_encode(desc, &msgs[0], none, NULL, &bb, NULL) == 0)
      wg_rpc_client_call_send(call, bb);
    for (int b = 0; b < n; b++) {
      int64_t k = 0;
      wg_ipc_encoder_batch(enc, &batches[b], msgs, &k, NULL);
      for (int64_t i = 0; i < k; i++) {
        if (wg_flight_data_encode(none, &msgs[i], none, NULL, &bb, NULL) == 0)
          wg_rpc_client_call_send(call, bb);
      }
    }
    for (int64_t i = 0; i <= max; i++)
      wg_ipc_encoded_reset(&msgs[i]);
    free(msgs);
    wg_ipc_encoder_destroy(enc);
  }
  free(dbytes);
  wg_rpc_client_call_close_send(call);
  int results = 0;
  for (;;) {
    grpc_byte_buffer *r = NULL;
    if (wg_rpc_client_call_recv(call, &r) != 0 || r == NULL) break;
    ProtobufCMessage *m = NULL;
    if (results++ == 0 && md != NULL &&
        wg_flight_unpack(&arrow__flight__protocol__put_result__descriptor, r, &m, NULL) == 0) {
      const ProtobufCBinaryData *a = &((Arrow__Flight__Protocol__PutResult *)m)->app_metadata;
      wg_buf_append(md, a->data, (int64_t)a->len);
      protobuf_c_message_free_unpacked(m, NULL);
    }
    grpc_byte_buffer_destroy(r);
  }
  return finish(call, o);
}

/* ---- statements ---- */

typedef Arrow__Flight__Protocol__Sql__ActionCreatePreparedStatementResult created;

static int create(struct cl *c, const char *sql, created **out, struct outcome *o) {
  Arrow__Flight__Protocol__Sql__ActionCreatePreparedStatementRequest rq =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_CREATE_PREPARED_STATEMENT_REQUEST__INIT;
  rq.query = (char *)sql;
  ProtobufCMessage *m = NULL;
  int rc = action(c, "CreatePreparedStatement", &rq.base,
                  &arrow__flight__protocol__sql__action_create_prepared_statement_result__descriptor,
                  &m, NULL, o);
  *out = (created *)m;
  if (rc == 0 && m == NULL) rc = o->rc = EPROTO;
  return rc;
}

static int close_handle(struct cl *c, ProtobufCBinaryData h, struct outcome *o) {
  Arrow__Flight__Protocol__Sql__ActionClosePreparedStatementRequest rq =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_CLOSE_PREPARED_STATEMENT_REQUEST__INIT;
  rq.has_prepared_statement_handle = 1;
  rq.prepared_statement_handle = h;
  return action(c, "ClosePreparedStatement", &rq.base, NULL, NULL, NULL, o);
}

static Arrow__Flight__Protocol__Sql__CommandPreparedStatementQuery query_of(ProtobufCBinaryData h) {
  Arrow__Flight__Protocol__Sql__CommandPreparedStatementQuery q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_PREPARED_STATEMENT_QUERY__INIT;
  q.has_prepared_statement_handle = 1;
  q.prepared_statement_handle = h;
  return q;
}

/* GetFlightInfo of the handle, then DoGet of its one ticket. */
static int execute(struct cl *c, ProtobufCBinaryData h, struct got *g, int64_t *records,
                   struct outcome *o) {
  memset(g, 0, sizeof(*g));
  Arrow__Flight__Protocol__Sql__CommandPreparedStatementQuery q = query_of(h);
  Arrow__Flight__Protocol__FlightInfo *info = NULL;
  WG_RETURN_NOT_OK(get_info(c, &q.base, &info, o));
  if (info == NULL || info->n_endpoint != 1 || info->endpoint[0]->ticket == NULL) {
    if (info != NULL) protobuf_c_message_free_unpacked(&info->base, NULL);
    return o->rc = EPROTO;
  }
  if (records != NULL) *records = info->total_records;
  int rc = do_get(c, info->endpoint[0]->ticket->ticket, g, o);
  protobuf_c_message_free_unpacked(&info->base, NULL);
  return rc;
}

/* Binds the n batches (schema) to the handle: DoPut CommandPreparedStatementQuery. The answer
 * must name the same handle. */
static int bind(struct cl *c, ProtobufCBinaryData h, const struct ArrowSchema *schema,
                const struct ArrowArray *b, int n, struct outcome *o) {
  Arrow__Flight__Protocol__Sql__CommandPreparedStatementQuery q = query_of(h);
  struct wg_buf md;
  wg_buf_init(&md);
  int rc = do_put(c, &q.base, schema, b, n, &md, o);
  if (rc == 0) {
    Arrow__Flight__Protocol__Sql__DoPutPreparedStatementResult *r =
        arrow__flight__protocol__sql__do_put_prepared_statement_result__unpack(
            NULL, (size_t)md.size, md.data);
    if (r == NULL || !r->has_prepared_statement_handle ||
        r->prepared_statement_handle.len != h.len ||
        memcmp(r->prepared_statement_handle.data, h.data, h.len) != 0)
      rc = o->rc = EPROTO;
    if (r != NULL) protobuf_c_message_free_unpacked(&r->base, NULL);
  }
  wg_buf_reset(&md);
  return rc;
}

/* DoPut CommandPreparedStatementUpdate: *count from the DoPutUpdateResult. */
static int update(struct cl *c, ProtobufCBinaryData h, const struct ArrowSchema *schema,
                  const struct ArrowArray *b, int n, int64_t *count, struct outcome *o) {
  Arrow__Flight__Protocol__Sql__CommandPreparedStatementUpdate q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_PREPARED_STATEMENT_UPDATE__INIT;
  q.has_prepared_statement_handle = 1;
  q.prepared_statement_handle = h;
  struct wg_buf md;
  wg_buf_init(&md);
  *count = -1;
  int rc = do_put(c, &q.base, schema, b, n, &md, o);
  if (rc == 0) {
    Arrow__Flight__Protocol__Sql__DoPutUpdateResult *r =
        arrow__flight__protocol__sql__do_put_update_result__unpack(NULL, (size_t)md.size,
                                                                  md.data);
    if (r == NULL || !r->has_record_count) rc = o->rc = EPROTO;
    else *count = r->record_count;
    if (r != NULL) protobuf_c_message_free_unpacked(&r->base, NULL);
  }
  wg_buf_reset(&md);
  return rc;
}

/* Arrow batches that DuckDB makes of `sql` (a plain-Flight query): the parameter rows. */
struct rows {
  struct ArrowSchema schema;
  struct ArrowArray b[16];
  int n;
};

static int rows_of(struct wg_client *wc, const char *sql, struct rows *r, struct wg_status *st) {
  memset(r, 0, sizeof(*r));
  struct ArrowArrayStream s;
  int rc = wg_fx_errno(wg_query(wc, sql, &s, st), st);
  if (rc != 0) return rc;
  rc = s.get_schema(&s, &r->schema);
  while (rc == 0 && r->n < 16) {
    rc = s.get_next(&s, &r->b[r->n]);
    if (rc != 0 || r->b[r->n].release == NULL) break;
    r->n++;
  }
  wg_stream_release(&s);
  return rc;
}

static void rows_reset(struct rows *r) {
  wg_schema_release(&r->schema);
  for (int i = 0; i < r->n; i++)
    wg_array_release(&r->b[i]);
}

/* Column col of a batch at row: as int64 (formats l, i), a bool (b), or text (u). */
static int64_t i64_at(const struct ArrowArray *b, const char *format, int col, int64_t row) {
  const struct ArrowArray *a = b->children[col];
  int64_t v = 0;
  if (strcmp(format, "l") == 0) memcpy(&v, (const int64_t *)a->buffers[1] + a->offset + row, 8);
  if (strcmp(format, "i") == 0) {
    int32_t w;
    memcpy(&w, (const int32_t *)a->buffers[1] + a->offset + row, 4);
    v = w;
  }
  if (strcmp(format, "b") == 0) {
    int64_t bit = a->offset + row;
    v = (((const uint8_t *)a->buffers[1])[bit / 8] >> (bit % 8)) & 1;
  }
  return v;
}

static bool is_null_at(const struct ArrowArray *b, int col, int64_t row) {
  const struct ArrowArray *a = b->children[col];
  if (a->null_count == 0 || a->buffers[0] == NULL) return a->null_count == a->length;
  int64_t bit = a->offset + row;
  return ((((const uint8_t *)a->buffers[0])[bit / 8] >> (bit % 8)) & 1) == 0;
}

static void text_at(const struct ArrowArray *b, int col, int64_t row, char *out, size_t n) {
  const struct ArrowArray *a = b->children[col];
  int32_t o[2];
  memcpy(o, (const int32_t *)a->buffers[1] + a->offset + row, 8);
  size_t len = (size_t)(o[1] - o[0]) < n - 1 ? (size_t)(o[1] - o[0]) : n - 1;
  memcpy(out, (const char *)a->buffers[2] + o[0], len);
  out[len] = '\0';
}

/* The one text value of a plain-Flight query. */
static int plain_text(struct wg_client *wc, const char *sql, char *out, size_t n,
                      struct wg_status *st) {
  struct rows r;
  int rc = rows_of(wc, sql, &r, st);
  out[0] = '\0';
  if (rc == 0 && r.n >= 1 && r.b[0].length == 1 && strcmp(r.schema.children[0]->format, "u") == 0)
    text_at(&r.b[0], 0, 0, out, n);
  else if (rc == 0)
    rc = EPROTO;
  rows_reset(&r);
  return rc;
}

static int start(struct wg_fx_server *fx, struct cl *c, struct wg_client **wc) {
  struct wg_server_options o = {.threads = 4};
  WG_RETURN_NOT_OK(wg_fx_server_start(fx, &o));
  WG_RETURN_NOT_OK(wg_rpc_channel_create(&c->ch, fx->uri, NULL));
  struct wg_status st;
  return wg_fx_connect(wc, fx->uri, &st);
}

static void stop(struct wg_fx_server *fx, struct cl *c, struct wg_client *wc) {
  wg_disconnect(wc);
  wg_rpc_channel_destroy(c->ch);
  wg_fx_server_stop(fx);
}

/* ---- tests ---- */

static void create_query_close(void) {
  struct wg_fx_server fx;
  struct cl c;
  struct wg_client *wc;
  ASSERT_EQ(start(&fx, &c, &wc), 0);
  struct outcome o;
  created *p = NULL;
  ASSERT_OK(create(&c, "SELECT 41 + 1 AS x", &p, &o), o.err.message);
  ASSERT_EQ(p->prepared_statement_handle.len, 16);
  ASSERT_TRUE(p->has_is_update && !p->is_update);
  struct ArrowSchema ds, ps;
  ASSERT_TRUE(p->has_dataset_schema && p->has_parameter_schema);
  ASSERT_OK(wg_flight_schema_parse((struct wg_bytes){p->dataset_schema.data,
                                                     (int64_t)p->dataset_schema.len},
                                   &ds, &o.err), o.err.message);
  ASSERT_EQ(ds.n_children, 1);
  ASSERT_STREQ(ds.children[0]->name, "x");
  ASSERT_STREQ(ds.children[0]->format, "i");
  wg_schema_release(&ds);
  ASSERT_OK(wg_flight_schema_parse((struct wg_bytes){p->parameter_schema.data,
                                                     (int64_t)p->parameter_schema.len},
                                   &ps, &o.err), o.err.message);
  ASSERT_EQ(ps.n_children, 0);
  wg_schema_release(&ps);
  struct got g;
  for (int i = 0; i < 2; i++) { /* runs again each time */
    ASSERT_OK(execute(&c, p->prepared_statement_handle, &g, NULL, &o), o.err.message);
    ASSERT_EQ(g.rows, 1);
    ASSERT_EQ(i64_at(&g.b[0], "i", 0, 0), 42);
    got_reset(&g);
  }
  ASSERT_OK(close_handle(&c, p->prepared_statement_handle, &o), o.err.message);
  ASSERT_EQ(close_handle(&c, p->prepared_statement_handle, &o), ENOENT); /* twice */
  ASSERT_EQ(o.code, GRPC_STATUS_NOT_FOUND);
  ASSERT_EQ(execute(&c, p->prepared_statement_handle, &g, NULL, &o), ENOENT);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  stop(&fx, &c, wc);
}

static void statement_with_parameters_declares_them(void) {
  struct wg_fx_server fx;
  struct cl c;
  struct wg_client *wc;
  ASSERT_EQ(start(&fx, &c, &wc), 0);
  struct outcome o;
  created *p = NULL;
  int64_t n;
  struct wg_status st;
  ASSERT_OK(wg_fx_query_i64(wc, "CREATE TABLE z (t TIMESTAMPTZ)", &n, &st), st.message);
  ASSERT_OK(create(&c, "SELECT $1::INTEGER + 1 AS a, $2::VARCHAR AS b, $3::TIMESTAMP AS t, $4 AS u "
                   "FROM z WHERE z.t = $5", &p, &o), o.err.message);
  struct ArrowSchema ps;
  ASSERT_OK(wg_flight_schema_parse((struct wg_bytes){p->parameter_schema.data,
                                                     (int64_t)p->parameter_schema.len},
                                   &ps, &o.err), o.err.message);
  ASSERT_EQ(ps.n_children, 5);
  /* TIMESTAMP and TIMESTAMPTZ as ms for JDBC; unknown as utf8 */
  const char *want[5] = {"i", "u", "tsm:", "u", "tsm:"};
  ASSERT_TRUE(strncmp(ps.children[4]->format, "tsm:", 4) == 0 && strlen(ps.children[4]->format) > 4);
  for (int i = 0; i < 4; i++) {
    char name[8];
    snprintf(name, sizeof(name), "%d", i);
    ASSERT_STREQ(ps.children[i]->name, name);
    ASSERT_STREQ(ps.children[i]->format, want[i]);
    ASSERT_TRUE(ps.children[i]->flags & ARROW_FLAG_NULLABLE);
  }
  wg_schema_release(&ps);
  /* a result typed only by its values: no dataset schema yet, still a query */
  ASSERT_TRUE(!p->has_dataset_schema && !p->is_update);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  stop(&fx, &c, wc);
}

/* Literals of every Arrow type the ingest takes, as DuckDB writes them. */
static const char *const literals[] = {
    "42::TINYINT",  "-300::SMALLINT", "70000::INTEGER", "-5000000000::BIGINT", "200::UTINYINT",
    "60000::USMALLINT", "4000000000::UINTEGER", "18000000000000000000::UBIGINT", "1.5::FLOAT",
    "-2.25::DOUBLE", "'héllo ''q'''::VARCHAR", "'\\xAA\\x00\\xFF'::BLOB", "true",
    "DATE '2024-02-29'", "TIMESTAMP '2024-02-29 13:45:30.123456'",
    "TIMESTAMP_S '2024-02-29 13:45:30'", "TIMESTAMP_MS '2024-02-29 13:45:30.123'",
    "TIMESTAMP_NS '2024-02-29 13:45:30.123456789'",
    "TIMESTAMPTZ '2024-02-29 13:45:30.5+02'", "TIME '13:45:30.25'", "123.45::DECIMAL(5,2)",
    "-12345678901234.5678::DECIMAL(18,4)", "1234567890123456789012345.678::DECIMAL(38,3)",
    "INTERVAL '14 months 3 days 4 hours'", "NULL"};

static void parameters_of_each_type_bind_like_literals(void) {
  struct wg_fx_server fx;
  struct cl c;
  struct wg_client *wc;
  ASSERT_EQ(start(&fx, &c, &wc), 0);
  struct outcome o;
  struct wg_status st;
  created *same = NULL, *text = NULL;
  ASSERT_OK(create(&c, "SELECT $1 AS v", &same, &o), o.err.message);
  ASSERT_OK(create(&c, "SELECT CAST($1 AS VARCHAR) AS s", &text, &o), o.err.message);
  for (size_t i = 0; i < sizeof(literals) / sizeof(literals[0]); i++) {
    char sql[512], want[512], got_text[512];
    snprintf(sql, sizeof(sql), "SELECT %s AS \"0\"", literals[i]);
    struct rows r;
    ASSERT_OK(rows_of(wc, sql, &r, &st), st.message);
    /* the value comes back with its Arrow type */
    ASSERT_OK(bind(&c, same->prepared_statement_handle, &r.schema, r.b, r.n, &o), o.err.message);
    struct got g;
    ASSERT_OK(execute(&c, same->prepared_statement_handle, &g, NULL, &o), o.err.message);
    ASSERT_EQ(g.rows, 1);
    if (strcmp(literals[i], "NULL") != 0) ASSERT_STREQ(g.schema.children[0]->format,
                                                       r.schema.children[0]->format);
    got_reset(&g);
    /* and its value is the literal's, as text */
    ASSERT_OK(bind(&c, text->prepared_statement_handle, &r.schema, r.b, r.n, &o), o.err.message);
    ASSERT_OK(execute(&c, text->prepared_statement_handle, &g, NULL, &o), o.err.message);
    ASSERT_EQ(g.rows, 1);
    snprintf(sql, sizeof(sql), "SELECT CAST(%s AS VARCHAR) AS s", literals[i]);
    if (strcmp(literals[i], "NULL") == 0) {
      ASSERT_TRUE(is_null_at(&g.b[0], 0, 0));
    } else {
      ASSERT_OK(plain_text(wc, sql, want, sizeof(want), &st), st.message);
      text_at(&g.b[0], 0, 0, got_text, sizeof(got_text));
      if (strcmp(want, got_text) != 0) fprintf(stderr, "literal %s\n", literals[i]);
      ASSERT_STREQ(got_text, want);
    }
    got_reset(&g);
    rows_reset(&r);
  }
  protobuf_c_message_free_unpacked(&same->base, NULL);
  protobuf_c_message_free_unpacked(&text->base, NULL);
  stop(&fx, &c, wc);
}

/* large_utf8 has no DuckDB literal that DuckDB sends as such: built by hand (children, buffer
 * lists and the structs of children malloc'ed; the buffers static). */
static void large_utf8_release(struct ArrowArray *a) {
  for (int64_t i = 0; i < a->n_children; i++) {
    wg_array_release(a->children[i]);
    free(a->children[i]);
  }
  free(a->children);
  free((void *)a->buffers);
  free(a->private_data);
  a->release = NULL;
}

static void large_utf8_parameter_binds(void) {
  struct wg_fx_server fx;
  struct cl c;
  struct wg_client *wc;
  ASSERT_EQ(start(&fx, &c, &wc), 0);
  struct outcome o;
  struct ArrowSchema schema;
  ASSERT_EQ(wg_schema_node_init(&schema, "+s", 1, NULL), 0);
  ASSERT_EQ(wg_schema_node_init(schema.children[0], "U", 0, NULL), 0);
  wg_schema_set_name(schema.children[0], "0");
  schema.children[0]->flags = ARROW_FLAG_NULLABLE;
  static const int64_t offsets[] = {0, 5};
  static const char data[] = "large";
  struct ArrowArray *child = calloc(1, sizeof(*child));
  const void **cb = calloc(3, sizeof(*cb));
  cb[1] = offsets;
  cb[2] = data;
  *child = (struct ArrowArray){.length = 1, .n_buffers = 3, .buffers = cb,
                               .release = large_utf8_release};
  struct ArrowArray batch = {.length = 1, .n_buffers = 1, .n_children = 1,
                             .buffers = calloc(1, sizeof(void *)),
                             .children = malloc(sizeof(struct ArrowArray *)),
                             .release = large_utf8_release};
  batch.children[0] = child;
  created *p = NULL;
  ASSERT_OK(create(&c, "SELECT $1 || '!' AS s", &p, &o), o.err.message);
  ASSERT_OK(bind(&c, p->prepared_statement_handle, &schema, &batch, 1, &o), o.err.message);
  struct got g;
  ASSERT_OK(execute(&c, p->prepared_statement_handle, &g, NULL, &o), o.err.message);
  char s[32];
  text_at(&g.b[0], 0, 0, s, sizeof(s));
  ASSERT_STREQ(s, "large!");
  got_reset(&g);
  wg_array_release(&batch);
  wg_schema_release(&schema);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  stop(&fx, &c, wc);
}

static void many_parameter_rows_run_once_each_in_order(void) {
  struct wg_fx_server fx;
  struct cl c;
  struct wg_client *wc;
  ASSERT_EQ(start(&fx, &c, &wc), 0);
  struct outcome o;
  struct wg_status st;
  struct rows r;
  ASSERT_OK(rows_of(wc, "SELECT range::BIGINT AS \"0\" FROM range(5000)", &r, &st), st.message);
  created *p = NULL;
  ASSERT_OK(create(&c, "SELECT $1::BIGINT * 2 AS d, x FROM (VALUES (1), (2)) t(x) ORDER BY x", &p,
                   &o), o.err.message);
  ASSERT_OK(bind(&c, p->prepared_statement_handle, &r.schema, r.b, r.n, &o), o.err.message);
  struct got g;
  ASSERT_OK(execute(&c, p->prepared_statement_handle, &g, NULL, &o), o.err.message);
  ASSERT_EQ(g.rows, 10000);
  int64_t k = 0;
  for (int b = 0; b < g.n; b++) {
    for (int64_t i = 0; i < g.b[b].length; i++, k++) {
      ASSERT_EQ(i64_at(&g.b[b], "l", 0, i), (k / 2) * 2);
      ASSERT_EQ(i64_at(&g.b[b], "i", 1, i), k % 2 + 1);
    }
  }
  ASSERT_TRUE(g.n < 10); /* gathered into batches, not one per execution */
  got_reset(&g);
  rows_reset(&r);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  stop(&fx, &c, wc);
}

static int64_t count_rows(struct wg_client *wc, const char *sql) {
  int64_t n = -1;
  struct wg_status st;
  if (wg_fx_query_i64(wc, sql, &n, &st) != 0) fprintf(stderr, "%s: %s\n", sql, st.message);
  return n;
}

static void update_with_a_batch_counts_all_and_is_all_or_nothing(void) {
  struct wg_fx_server fx;
  struct cl c;
  struct wg_client *wc;
  ASSERT_EQ(start(&fx, &c, &wc), 0);
  struct outcome o;
  struct wg_status st;
  /* DDL through GetFlightInfo runs there (a driver's execute), is_update, no result columns */
  created *ddl = NULL;
  ASSERT_OK(create(&c, "CREATE TABLE t (a INTEGER PRIMARY KEY, b VARCHAR)", &ddl, &o),
            o.err.message);
  ASSERT_TRUE(ddl->has_is_update && ddl->is_update);
  struct ArrowSchema ds;
  ASSERT_OK(wg_flight_schema_parse((struct wg_bytes){ddl->dataset_schema.data,
                                                     (int64_t)ddl->dataset_schema.len},
                                   &ds, &o.err), o.err.message);
  ASSERT_EQ(ds.n_children, 0);
  wg_schema_release(&ds);
  Arrow__Flight__Protocol__Sql__CommandPreparedStatementQuery q =
      query_of(ddl->prepared_statement_handle);
  Arrow__Flight__Protocol__FlightInfo *info = NULL;
  ASSERT_OK(get_info(&c, &q.base, &info, &o), o.err.message);
  protobuf_c_message_free_unpacked(&info->base, NULL);
  ASSERT_EQ(count_rows(wc, "SELECT count(*) FROM t"), 0); /* the table is there */
  created *ins = NULL;
  ASSERT_OK(create(&c, "INSERT INTO t VALUES ($1, $2)", &ins, &o), o.err.message);
  ASSERT_TRUE(ins->is_update);
  struct rows r;
  ASSERT_OK(rows_of(wc, "SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c')) v(\"0\", \"1\")", &r,
                    &st), st.message);
  int64_t n = 0;
  ASSERT_OK(update(&c, ins->prepared_statement_handle, &r.schema, r.b, r.n, &n, &o),
            o.err.message);
  ASSERT_EQ(n, 3);
  rows_reset(&r);
  /* one duplicate key among three rows: none of them stays */
  ASSERT_OK(rows_of(wc, "SELECT * FROM (VALUES (4, 'd'), (1, 'dup'), (5, 'e')) v(\"0\", \"1\")",
                    &r, &st), st.message);
  ASSERT_EQ(update(&c, ins->prepared_statement_handle, &r.schema, r.b, r.n, &n, &o), EEXIST);
  ASSERT_TRUE(strstr(o.err.message, "row 2 of 3") != NULL);
  ASSERT_EQ(count_rows(wc, "SELECT count(*) FROM t"), 3);
  rows_reset(&r);
  /* no parameters: a descriptor alone, or (JDBC, ADBC) an empty schema and a 0-row batch */
  created *del = NULL;
  ASSERT_OK(create(&c, "DELETE FROM t WHERE a = 3", &del, &o), o.err.message);
  ASSERT_OK(update(&c, del->prepared_statement_handle, NULL, NULL, 0, &n, &o), o.err.message);
  ASSERT_EQ(n, 1);
  created *ddl2 = NULL;
  ASSERT_OK(create(&c, "CREATE TABLE u (x INTEGER)", &ddl2, &o), o.err.message);
  struct ArrowSchema empty;
  ASSERT_EQ(wg_schema_node_init(&empty, "+s", 0, NULL), 0);
  struct ArrowArray none = {.length = 0, .n_buffers = 1, .buffers = calloc(1, sizeof(void *)),
                            .release = large_utf8_release};
  ASSERT_OK(update(&c, ddl2->prepared_statement_handle, &empty, &none, 1, &n, &o), o.err.message);
  ASSERT_EQ(n, 0);
  ASSERT_EQ(count_rows(wc, "SELECT count(*) FROM u"), 0);
  wg_array_release(&none);
  wg_schema_release(&empty);
  /* parameter columns that do not match the statement */
  ASSERT_OK(rows_of(wc, "SELECT 1 AS \"0\"", &r, &st), st.message);
  ASSERT_EQ(update(&c, ins->prepared_statement_handle, &r.schema, r.b, r.n, &n, &o), EINVAL);
  ASSERT_TRUE(strstr(o.err.message, "2 parameters") != NULL);
  rows_reset(&r);
  /* an INSERT run through GetFlightInfo with bound rows: counted, and a finished ticket */
  ASSERT_OK(rows_of(wc, "SELECT * FROM (VALUES (7, 'g'), (8, 'h')) v(\"0\", \"1\")", &r, &st),
            st.message);
  ASSERT_OK(bind(&c, ins->prepared_statement_handle, &r.schema, r.b, r.n, &o), o.err.message);
  struct got g;
  int64_t records = 0;
  ASSERT_OK(execute(&c, ins->prepared_statement_handle, &g, &records, &o), o.err.message);
  ASSERT_EQ(records, 2);
  ASSERT_EQ(g.rows, 1);
  ASSERT_EQ(i64_at(&g.b[0], "l", 0, 0), 2);
  got_reset(&g);
  ASSERT_EQ(count_rows(wc, "SELECT count(*) FROM t"), 4);
  rows_reset(&r);
  protobuf_c_message_free_unpacked(&ddl->base, NULL);
  protobuf_c_message_free_unpacked(&ddl2->base, NULL);
  protobuf_c_message_free_unpacked(&ins->base, NULL);
  protobuf_c_message_free_unpacked(&del->base, NULL);
  stop(&fx, &c, wc);
}

static void sandbox_holds_at_create_and_bad_sql_is_refused(void) {
  struct wg_fx_server fx;
  struct cl c;
  struct wg_client *wc;
  ASSERT_EQ(start(&fx, &c, &wc), 0);
  struct outcome o;
  created *p = NULL;
  ASSERT_NE(create(&c, "SELECT * FROM read_csv('/etc/passwd')", &p, &o), 0);
  ASSERT_EQ(o.code, GRPC_STATUS_FAILED_PRECONDITION); /* EPERM, as for plain SQL */
  ASSERT_TRUE(strstr(o.err.message, "refused") != NULL);
  ASSERT_TRUE(p == NULL);
  ASSERT_NE(create(&c, "COPY (SELECT 1) TO '/tmp/wg_h2_prepared.csv'", &p, &o), 0);
  ASSERT_EQ(o.code, GRPC_STATUS_FAILED_PRECONDITION);
  ASSERT_EQ(create(&c, "SELEC 1", &p, &o), EINVAL);
  ASSERT_EQ(create(&c, "", &p, &o), EINVAL);
  stop(&fx, &c, wc);
}

static void garbage_handles_are_not_found_or_invalid(void) {
  struct wg_fx_server fx;
  struct cl c;
  struct wg_client *wc;
  ASSERT_EQ(start(&fx, &c, &wc), 0);
  struct outcome o;
  uint8_t junk[16] = {1, 2, 3};
  ProtobufCBinaryData hs[] = {{0, junk}, {3, junk}, {16, junk}, {9, junk}};
  for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++) {
    struct got g;
    ASSERT_EQ(execute(&c, hs[i], &g, NULL, &o), ENOENT);
    ASSERT_EQ(close_handle(&c, hs[i], &o), ENOENT);
    int64_t n;
    ASSERT_EQ(update(&c, hs[i], NULL, NULL, 0, &n, &o), ENOENT);
    ASSERT_EQ(bind(&c, hs[i], NULL, NULL, 0, &o), ENOENT);
  }
  /* an action body that is not the message */
  Arrow__Flight__Protocol__Sql__ActionBeginTransactionRequest other =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_BEGIN_TRANSACTION_REQUEST__INIT;
  ASSERT_EQ(action(&c, "ClosePreparedStatement", &other.base, NULL, NULL, NULL, &o), EINVAL);
  ASSERT_EQ(o.code, GRPC_STATUS_INVALID_ARGUMENT);
  stop(&fx, &c, wc);
}

static void unused_handles_expire_and_one_client_holds_a_bounded_number(void) {
  struct wg_fx_server fx;
  struct cl c;
  struct wg_client *wc;
  ASSERT_EQ(start(&fx, &c, &wc), 0);
  struct outcome o;
  wg__fsql_prepared_set_idle_ms(fx.server, 400);
  created *p = NULL;
  ASSERT_OK(create(&c, "SELECT 1", &p, &o), o.err.message);
  struct got g;
  for (int i = 0; i < 3; i++) { /* each use keeps it alive */
    sleep_ms(200);
    ASSERT_OK(execute(&c, p->prepared_statement_handle, &g, NULL, &o), o.err.message);
    got_reset(&g);
  }
  sleep_ms(700);
  ASSERT_EQ(execute(&c, p->prepared_statement_handle, &g, NULL, &o), ENOENT);
  ASSERT_TRUE(strstr(o.err.message, "unused") != NULL);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  wg__fsql_prepared_set_idle_ms(fx.server, 0);
  /* the limit per client */
  created *first = NULL;
  ASSERT_OK(create(&c, "SELECT 1", &first, &o), o.err.message);
  for (int i = 1; i < 256; i++) {
    ASSERT_OK(create(&c, "SELECT 2", &p, &o), o.err.message);
    protobuf_c_message_free_unpacked(&p->base, NULL);
  }
  ASSERT_EQ(create(&c, "SELECT 3", &p, &o), EBUSY);
  ASSERT_EQ(o.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
  ASSERT_TRUE(strstr(o.err.message, "256 prepared statements") != NULL);
  /* another client is not held back, and cannot see or close this one's handles */
  struct cl other;
  char uri[80];
  snprintf(uri, sizeof(uri), "ipv4:127.0.0.1:%d", fx.port);
  ASSERT_EQ(wg_rpc_channel_create(&other.ch, uri, NULL), 0);
  created *theirs = NULL;
  ASSERT_OK(create(&other, "SELECT 4", &theirs, &o), o.err.message);
  ASSERT_EQ(close_handle(&other, first->prepared_statement_handle, &o), ENOENT);
  ASSERT_EQ(execute(&other, first->prepared_statement_handle, &g, NULL, &o), ENOENT);
  ASSERT_EQ(close_handle(&c, theirs->prepared_statement_handle, &o), ENOENT);
  /* closing one makes room */
  ASSERT_OK(close_handle(&c, first->prepared_statement_handle, &o), o.err.message);
  ASSERT_OK(create(&c, "SELECT 5", &p, &o), o.err.message);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  protobuf_c_message_free_unpacked(&first->base, NULL);
  protobuf_c_message_free_unpacked(&theirs->base, NULL);
  wg_rpc_channel_destroy(other.ch);
  stop(&fx, &c, wc);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  RUN_TEST(create_query_close);
  RUN_TEST(statement_with_parameters_declares_them);
  RUN_TEST(parameters_of_each_type_bind_like_literals);
  RUN_TEST(large_utf8_parameter_binds);
  RUN_TEST(many_parameter_rows_run_once_each_in_order);
  RUN_TEST(update_with_a_batch_counts_all_and_is_all_or_nothing);
  RUN_TEST(sandbox_holds_at_create_and_bad_sql_is_refused);
  RUN_TEST(garbage_handles_are_not_found_or_invalid);
  RUN_TEST(unused_handles_expire_and_one_client_holds_a_bounded_number);
  return TEST_SUMMARY();
}
