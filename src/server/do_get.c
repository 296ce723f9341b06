/* wigeon: DoGet. The ticket is UTF-8 SQL text (what plain Flight clients send, and what
 * GetFlightInfo hands out; request.c classifies it, refusing Flight SQL commands). The query streams: DuckDB's chunks are gathered into record batches of
 * about batch_rows rows by the engine, each batch is encoded as IPC pieces and sent as FlightData
 * whose body slices point at the batch's own buffers; the batch is released when gRPC has sent
 * them. Batches end at batch_rows rows or batch_bytes bytes, whichever comes first, so wide rows
 * never make a message over gRPC's limit (one row alone over it is a RESOURCE_EXHAUSTED that says
 * so). Messages go one behind: a message is started (not waited for) once the next one is
 * encoded, and the last one goes out in one batch with the status. At most one message is in
 * flight and one held, so memory stays bounded for any result size. A client that cancels, or
 * whose deadline passes, interrupts the query. A client that stops reading leaves a send waiting
 * on flow control: after WG_DO_GET_STALL_MS the stream's DuckDB connection is detached from the
 * pool (which gets a fresh one), so a stalled reader holds only its own connection and its worker
 * (the rpc layer starts more), until it reads again or the idle timeout cancels it.
 *
 *   recv Ticket -> acquire connection -> prepare -> [SELECT: encode and start sending the schema]
 *   -> run -> [else: encode schema] -> { get_next -> encode -> start sending the previous
 *   message }* -> finish with the last message and the status
 * transitions: prepare..run -> wg_engine_query_open_early (send_schema_early in between),
 * the rest -> stream_result, finish -> wg__server_finish_with */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/roles.h"
#include "server/fsql.h"
#include "server/tail.h"

enum { WG_DO_GET_STALL_MS = 100 };

/* What one DoGet stream carries through its sends. */
struct get {
  struct wg_server *s;
  struct wg_rpc_call *call;
  struct wg_engine_conn *conn;
  bool detached;
  grpc_byte_buffer *held; /* the last message encoded, not yet started */
  struct wg_ipc_encoder_options encoding; /* body compression the client asked for */
  struct wg_ipc_encoder *enc;
  struct wg_ipc_encoded *msgs; /* enc's messages for one batch: max of them */
  int64_t max;
  bool eager; /* DoExchange: every message starts at once (its client may wait for it) */
};

/* The codec the client asked for in WG_SERVER_COMPRESSION_HEADER (none without the header). An
 * unknown codec is EINVAL (INVALID_ARGUMENT) naming the ones there are, before any query runs. */
static int compression_from_header(const struct wg_rpc_call *call, struct wg_ipc_encoder_options *o,
                                   struct wg_error *err) {
  static const struct {
    const char *name;
    enum wg_ipc_compression codec;
  } codecs[] = {{"zstd", WG_IPC_COMPRESSION_ZSTD},
                {"lz4", WG_IPC_COMPRESSION_LZ4_FRAME},
                {"none", WG_IPC_COMPRESSION_NONE}};
  memset(o, 0, sizeof(*o));
  int64_t len = 0;
  const char *v = wg_rpc_call_metadata(call, WG_SERVER_COMPRESSION_HEADER, &len);
  if (v == NULL) return 0;
  for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
    if ((size_t)len == strlen(codecs[i].name) && strncasecmp(v, codecs[i].name, (size_t)len) == 0) {
      o->compression = codecs[i].codec;
      return 0;
    }
  }
  return wg_error_set(err, EINVAL, "header %s: unknown codec \"%.*s\"; allowed: zstd, lz4, none",
                      WG_SERVER_COMPRESSION_HEADER, (int)(len < 64 ? len : 64), v);
}

static void get_reset(struct get *g) {
  for (int64_t i = 0; g->msgs != NULL && i < g->max; i++)
    wg_ipc_encoded_reset(&g->msgs[i]);
  free(g->msgs);
  g->msgs = NULL;
  wg_ipc_encoder_destroy(g->enc);
  g->enc = NULL;
}

static void release_array(void *ctx) {
  struct ArrowArray *a = ctx;
  wg_array_release(a);
  free(a);
}

/* Sends the messages of an encoded batch, one behind: each message is held until the next one is
 * ready and then started without waiting (wg_rpc_call_send_start), so the handler encodes while
 * gRPC sends, and the last message of the stream can go out with the status (*held, for
 * wg_rpc_call_finish_with). `keepalive` keeps the batch alive through the slices. A message over
 * the gRPC limit (only a batch of one huge row can be: batches are bounded by bytes) is EMSGSIZE
 * (RESOURCE_EXHAUSTED) naming the row (first_row, rows: the batch's place; -1 for the schema),
 * rather than gRPC's bare "Sent message larger than max". */
static int send_encoded(struct get *g, struct wg_ipc_encoded *m, int64_t n,
                        struct wg_shared *keepalive, int64_t first_row, int64_t rows,
                        struct wg_error *err) {
  struct wg_server *s = g->s;
  grpc_byte_buffer **held = &g->held;
  struct wg_bytes none = {NULL, 0};
  for (int64_t i = 0; i < n; i++) {
    grpc_byte_buffer *bb;
    WG_RETURN_NOT_OK(wg_flight_data_encode(none, &m[i], none, keepalive, &bb, err));
    int64_t size = (int64_t)grpc_byte_buffer_length(bb);
    if (size > s->options.max_message_bytes) {
      grpc_byte_buffer_destroy(bb);
      if (rows == 1)
        return wg_error_set(err, EMSGSIZE,
                            "DoGet: row %lld of the result alone is %lld bytes, more than the "
                            "largest message gRPC may send (%lld bytes); select less of it "
                            "(e.g. substr) or split it across rows",
                            (long long)first_row, (long long)size,
                            (long long)s->options.max_message_bytes);
      return wg_error_set(err, EMSGSIZE,
                          "DoGet: a message of %lld bytes (rows %lld..%lld) is more than the "
                          "largest message gRPC may send (%lld bytes)",
                          (long long)size, (long long)first_row,
                          (long long)(first_row + rows - 1),
                          (long long)s->options.max_message_bytes);
    }
    atomic_fetch_add_explicit(&s->stats.bytes_out, size, memory_order_relaxed);
    grpc_byte_buffer *prev = *held;
    *held = bb;
    if (prev == NULL) continue;
    if (!g->detached && wg_rpc_call_send_wait(g->call, WG_DO_GET_STALL_MS) == ETIMEDOUT) {
      /* The client is not reading: hold on to our connection, but not the pool's place. */
      if (wg_engine_conn_detach(s->engine, g->conn, NULL) == 0) {
        g->detached = true;
        atomic_fetch_add_explicit(&s->stats.stalled_gets, 1, memory_order_relaxed);
      }
    }
    int rc = wg_rpc_call_send_start(g->call, prev);
    if (rc != 0) return wg_rpc_call_error(g->call, rc, "DoGet", err);
  }
  if (g->eager && g->held != NULL) {
    grpc_byte_buffer *now = g->held;
    g->held = NULL;
    int rc = wg_rpc_call_send_start(g->call, now);
    if (rc != 0) return wg_rpc_call_error(g->call, rc, "DoExchange", err);
  }
  return 0;
}

/* Makes the encoder for `schema` and encodes the schema message, which is left in g->held. */
static int open_encoder(struct get *g, const struct ArrowSchema *schema, struct wg_error *err) {
  WG_RETURN_NOT_OK(wg_ipc_encoder_create(&g->enc, schema, &g->encoding, err));
  g->max = wg_ipc_encoder_max_messages(g->enc);
  g->msgs = calloc((size_t)g->max, sizeof(*g->msgs));
  if (g->msgs == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  for (int64_t i = 0; i < g->max; i++)
    wg_ipc_encoded_init(&g->msgs[i]);
  WG_RETURN_NOT_OK(wg_ipc_encoder_schema(g->enc, &g->msgs[0], err));
  return send_encoded(g, g->msgs, 1, NULL, -1, 0, err);
}

/* wg_engine_schema_cb: the schema of a SELECT, before it runs; started at once, not held. */
static int send_schema_early(void *ctx, const struct ArrowSchema *schema, struct wg_error *err) {
  struct get *g = ctx;
  WG_RETURN_NOT_OK(open_encoder(g, schema, err));
  grpc_byte_buffer *bb = g->held;
  g->held = NULL;
  int rc = wg_rpc_call_send_start(g->call, bb);
  if (rc != 0) return wg_rpc_call_error(g->call, rc, "DoGet", err);
  return 0;
}

/* Streams the result; the last message is left in *held (NULL if none) for the finish. */
static int stream_result(struct get *g, struct ArrowArrayStream *stream, struct wg_error *err) {
  struct wg_server *s = g->s;
  int rc = 0;
  if (g->enc == NULL) { /* the schema did not go out early */
    struct ArrowSchema schema;
    rc = stream->get_schema(stream, &schema);
    if (rc != 0) {
      const char *m = stream->get_last_error(stream);
      return wg_error_set(err,
                          wg_engine_stream_status(stream) ? wg_engine_stream_status(stream) : rc,
                          "%s", m ? m : "cannot read the result schema");
    }
    rc = open_encoder(g, &schema, err);
    wg_schema_release(&schema);
  }
  struct wg_ipc_encoder *enc = g->enc;
  struct wg_ipc_encoded *msgs = g->msgs;
  int64_t sent_rows = 0;
  while (rc == 0) {
    struct ArrowArray *batch = malloc(sizeof(*batch));
    if (batch == NULL) {
      rc = wg_error_set(err, ENOMEM, "out of memory");
      break;
    }
    rc = stream->get_next(stream, batch);
    if (rc != 0) {
      const char *m = stream->get_last_error(stream);
      int code = wg_engine_stream_status(stream);
      rc = wg_error_set(err, code ? code : rc, "%s", m ? m : "query failed");
      free(batch);
      break;
    }
    if (batch->release == NULL) { /* end of result */
      free(batch);
      break;
    }
    int64_t n = 0, rows = batch->length;
    rc = wg_ipc_encoder_batch(enc, batch, msgs, &n, err);
    struct wg_shared *keep = rc == 0 ? wg_shared_wrap(NULL, 0, release_array, batch) : NULL;
    if (keep == NULL) {
      release_array(batch);
      if (rc == 0) rc = wg_error_set(err, ENOMEM, "out of memory");
      break;
    }
    rc = send_encoded(g, msgs, n, keep, sent_rows, rows, err);
    wg_shared_unref(keep); /* the slices hold the batch from here on */
    sent_rows += rows;
    if (rc == 0) atomic_fetch_add_explicit(&s->stats.rows_out, rows, memory_order_relaxed);
  }
  return rc;
}

/* Streams a result: SQL run on res->conn as a plain DoGet runs its ticket, or res->stream. The
 * last message is left in *last for the finish. A transaction's connection is never detached from
 * the pool (it is not the pool's). */
static int serve(struct wg_server *s, struct wg_rpc_call *call, struct wg__fsql_result *res,
                 const struct wg_ipc_encoder_options *encoding, grpc_byte_buffer **last,
                 struct wg_error *err) {
  struct wg_engine_conn *conn = res->conn.conn;
  struct get g = {.s = s, .call = call, .conn = conn, .encoding = *encoding,
                  .detached = conn == NULL || res->conn.txn != NULL};
  atomic_fetch_add_explicit(&s->stats.gets, 1, memory_order_relaxed);
  if (conn != NULL) {
    wg__limits_query(s, call); /* the query timeout runs from here */
    wg_rpc_call_set_cancel_hook(call, wg__server_interrupt_hook, conn);
  }
  int rc = 0;
  if (res->sql != NULL) {
    struct ArrowArrayStream stream;
    rc = wg_engine_query_open_early(conn, res->sql, s->options.batch_rows, s->options.batch_bytes,
                                    send_schema_early, &g, &stream, err);
    if (rc == 0) {
      rc = stream_result(&g, &stream, err);
      wg_stream_release(&stream);
    }
  } else {
    rc = stream_result(&g, &res->stream, err);
  }
  *last = g.held;
  get_reset(&g);
  if (conn != NULL) wg_rpc_call_set_cancel_hook(call, NULL, NULL);
  if (rc != 0 && wg_rpc_call_cancelled(call))
    rc = wg_rpc_call_error(call, ECANCELED, "DoGet", err);
  return rc;
}

void wg__server_do_get(struct wg_server *s, struct wg_rpc_call *call) {
  struct wg_error err = {""};
  ProtobufCMessage *msg = NULL;
  int rc = wg__server_recv_request(call, &arrow__flight__protocol__ticket__descriptor, &msg, &err);
  struct wg__request req = {0};
  struct wg_ipc_encoder_options encoding;
  struct wg__fsql_result res = {0};
  struct wg__fsql_run *run = NULL;
  const Arrow__Flight__Protocol__Ticket *t = (const Arrow__Flight__Protocol__Ticket *)msg;
  if (rc == 0) rc = compression_from_header(call, &encoding, &err);
  if (rc == 0) rc = wg__request_from_ticket(s, &t->ticket, &req, &err);
  if (rc == 0 && req.kind == WG__REQUEST_FLIGHT_SQL) {
    rc = wg__fsql_get(s, call, &req, &res, &err);
    /* registered while it runs, for CancelFlightInfo (which names it by its ticket) */
    if (rc == 0) rc = wg__fsql_running_add(s, &t->ticket, res.conn.conn, &run, &err);
  } else if (rc == 0 && req.kind == WG__REQUEST_TAIL) {
    wg__server_tail(s, call, &req); /* finishes or parks the call */
    wg__request_reset(&req);
    protobuf_c_message_free_unpacked(msg, NULL);
    return;
  } else if (rc == 0 && req.kind != WG__REQUEST_SQL) {
    rc = wg__request_refuse(&req, "DoGet", &err);
  } else if (rc == 0) {
    res.sql = req.sql;
    req.sql = NULL;
    rc = wg_engine_acquire(s->engine, &res.conn.conn, &err);
  }
  grpc_byte_buffer *last = NULL; /* sent with the status, error or not */
  if (rc == 0) rc = serve(s, call, &res, &encoding, &last, &err);
  if (run != NULL) wg__fsql_running_remove(s, run);
  wg__fsql_result_reset(s, &res);
  wg__request_reset(&req);
  if (msg != NULL) protobuf_c_message_free_unpacked(msg, NULL);
  wg__server_finish_with(s, call, last, rc, &err);
}

int wg__server_send_stream(struct wg_server *s, struct wg_rpc_call *call,
                           struct ArrowArrayStream *stream, struct wg_error *err) {
  struct get g = {.s = s, .call = call, .detached = true, .eager = true};
  int rc = compression_from_header(call, &g.encoding, err);
  if (rc == 0) rc = stream_result(&g, stream, err);
  get_reset(&g);
  return rc;
}
