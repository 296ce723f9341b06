/* wigeon: DoExchange, SQL over a stream of Arrow batches (docs/exchange.md). The first FlightData
 * carries a CMD descriptor whose bytes are the SQL (or the JSON {"sql": "...", "per_batch":
 * true}), with the input's Schema or followed by it (pyarrow sends the descriptor alone); the
 * client then streams batches, which the SQL sees as the relation `input` (wg_engine_query_over),
 * and the server streams the result back, schema first, each message started as soon as it is
 * encoded (wg__server_send_stream).
 *
 * Two modes:
 *   streaming  (the default) one query over the whole input. DuckDB pulls input as it needs it:
 *              the input's get_next runs on a DuckDB thread and receives from the call there (the
 *              one place a thread other than the handler's starts a batch on a call: one receive
 *              at a time, while the handler sends), so results flow while input still arrives,
 *              with bounded memory when the SQL streams. DuckDB reads ahead of its output, so a
 *              client that waits for a result before sending more input waits forever: per_batch.
 *   per_batch  the query runs once per input batch (each its own transaction), on the handler
 *              thread, and its result is sent before the next batch is read; no batch at all: once
 *              over the empty input.
 *
 *   recv FlightData(descriptor + Schema) -> command -> role read -> acquire -> query over input
 *   -> { get_next -> send }* -> finish with the status
 *   error after the client may still be sending (streaming): the call is ended with its status
 *   first (wg_rpc_call_expire), which fails the DuckDB thread's pending receive, then the query
 *   is released.
 * Cancel or deadline: the receive fails with ECANCELED and the cancel hook interrupts the query;
 * an INSERT's transaction is rolled back. --query-timeout runs from the acquire. */
#include <stdlib.h>
#include <string.h>

#include "arrow/build.h"
#include "server/roles.h"

struct exchange {
  struct wg_server *s;
  struct wg_rpc_call *call;
  struct wg_ipc_decoder *dec;
  struct wg_engine_conn *conn;
  Arrow__Flight__Protocol__FlightDescriptor *desc;
  char *sql;
  bool per_batch;
  bool input_done;  /* the client half-closed */
  int input_status; /* the input's first failure (sticky), its message in input_err */
  struct wg_error input_err;
  struct ArrowArrayStream input; /* streaming: the call's batches, taken by the engine */
};

/* Same mapping as DoPut's (do_put.c): unsupported IPC is the client's bad input. */
static int decode_status(int rc) {
  return rc == ENOMEM || rc == EPROTO ? rc : EINVAL;
}

static int recv_data(struct exchange *x, struct wg_flight_data *fd, bool *done,
                     struct wg_error *err) {
  grpc_byte_buffer *bb = NULL;
  *done = false;
  int rc = wg_rpc_call_recv(x->call, &bb);
  if (rc != 0) return wg_rpc_call_error(x->call, rc, "DoExchange", err);
  if (bb == NULL) {
    if (wg_rpc_call_cancelled(x->call))
      return wg_rpc_call_error(x->call, ECANCELED, "DoExchange", err);
    *done = true;
    return 0;
  }
  int64_t size = (int64_t)grpc_byte_buffer_length(bb);
  atomic_fetch_add_explicit(&x->s->stats.bytes_in, size, memory_order_relaxed);
  rc = wg_flight_data_decode(bb, fd, err);
  grpc_byte_buffer_destroy(bb);
  return rc;
}

/* The next record batch of the client's stream into *out (released at its end). Dictionary
 * batches are taken by the decoder; metadata-only messages are skipped. */
static int input_batch(struct exchange *x, struct ArrowArray *out, struct wg_error *err) {
  out->release = NULL;
  while (!x->input_done) {
    struct wg_flight_data fd = {0};
    WG_RETURN_NOT_OK(recv_data(x, &fd, &x->input_done, err));
    if (x->input_done) break;
    if (fd.data_header.size == 0) {
      wg_flight_data_reset(&fd);
      continue;
    }
    enum wg_ipc_message_type type;
    int rc = wg_ipc_decoder_decode(x->dec, fd.data_header, fd.body, &type, out, err);
    wg_flight_data_reset(&fd); /* the batch keeps its own reference on the body */
    if (rc != 0) return wg_error_prefix(err, decode_status(rc), "bad IPC message");
    if (type == WG_IPC_MESSAGE_RECORD_BATCH) {
      atomic_fetch_add_explicit(&x->s->stats.rows_in, out->length, memory_order_relaxed);
      return 0;
    }
    out->release = NULL;
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Streaming: the call's batches as the ArrowArrayStream the engine reads (on a DuckDB thread) */

static int input_get_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  struct exchange *x = st->private_data;
  return wg_ipc_decoder_schema(x->dec, out, &x->input_err);
}

static int input_get_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  struct exchange *x = st->private_data;
  out->release = NULL;
  if (x->input_status != 0) return x->input_status;
  x->input_status = input_batch(x, out, &x->input_err);
  return x->input_status;
}

static const char *input_get_last_error(struct ArrowArrayStream *st) {
  struct exchange *x = st->private_data;
  return x->input_err.message[0] ? x->input_err.message : NULL;
}

static void input_release(struct ArrowArrayStream *st) {
  st->release = NULL; /* x is the handler's */
}

/* ---------------------------------------------------------------------------------------------
 * Per batch: one query per input batch, their results one stream */

struct per_batch {
  struct exchange *x;
  struct ArrowArrayStream run; /* the current batch's result */
  struct ArrowSchema schema;   /* the first run's result schema */
  int64_t runs;
  int status;
  struct wg_error error;
};

/* Runs the SQL over the next input batch (or, before any run, over no batch at all when the input
 * is empty). *started false: nothing left to run. */
static int per_batch_start(struct per_batch *p, bool *started) {
  struct exchange *x = p->x;
  *started = false;
  struct ArrowArray batch;
  int rc = input_batch(x, &batch, &p->error);
  if (rc != 0) return wg_error_prefix(&p->error, rc, "input stream");
  if (batch.release == NULL && p->runs > 0) return 0;
  struct ArrowSchema schema = {0};
  rc = wg_ipc_decoder_schema(x->dec, &schema, &p->error);
  struct ArrowArrayStream one;
  if (rc == 0) rc = wg_stream_single(&schema, &batch, &one, &p->error); /* takes both */
  if (rc != 0) {
    wg_schema_release(&schema);
    wg_array_release(&batch);
    return rc;
  }
  rc = wg_engine_query_over(x->conn, "input", &one, x->sql, x->s->options.batch_rows,
                            x->s->options.batch_bytes, &p->run, &p->error);
  if (rc != 0) {
    if (p->runs > 0) wg_error_prefix(&p->error, rc, "input batch %lld", (long long)p->runs + 1);
    return rc;
  }
  struct ArrowSchema got;
  rc = p->run.get_schema(&p->run, &got);
  if (rc != 0) return wg_error_set(&p->error, rc, "reading the result schema failed");
  if (p->runs == 0) {
    p->schema = got;
  } else {
    /* the stream's schema went out with the first run: a run whose columns differ in any way (a
     * table it joins replaced with other types meanwhile) cannot be sent under it */
    bool same = wg_schema_same(&got, &p->schema);
    wg_schema_release(&got);
    if (!same)
      return wg_error_set(&p->error, EINVAL,
                          "input batch %lld: the result has other columns or types than the "
                          "first batch's (a table the SQL reads changed meanwhile?)",
                          (long long)p->runs + 1);
  }
  p->runs++;
  *started = true;
  return 0;
}

static int per_batch_get_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  struct per_batch *p = st->private_data;
  if (p->status != 0) return p->status;
  if (p->runs == 0) {
    bool started;
    p->status = per_batch_start(p, &started);
    if (p->status != 0) return p->status;
  }
  return wg_schema_deep_copy(&p->schema, out, &p->error);
}

static int per_batch_get_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  struct per_batch *p = st->private_data;
  out->release = NULL;
  while (p->status == 0) {
    if (p->run.release != NULL) {
      int rc = p->run.get_next(&p->run, out);
      if (rc != 0) {
        const char *m = p->run.get_last_error(&p->run);
        p->status = wg_error_set(&p->error, rc, "input batch %lld: %s", (long long)p->runs,
                                 m ? m : "query failed");
        break;
      }
      if (out->release != NULL) return 0;
      wg_stream_release(&p->run); /* committed at its end */
    }
    bool started;
    p->status = per_batch_start(p, &started);
    if (p->status == 0 && !started) return 0; /* the end */
  }
  return p->status;
}

static const char *per_batch_get_last_error(struct ArrowArrayStream *st) {
  struct per_batch *p = st->private_data;
  return p->error.message[0] ? p->error.message : NULL;
}

static void per_batch_release(struct ArrowArrayStream *st) {
  struct per_batch *p = st->private_data;
  if (p != NULL) {
    wg_stream_release(&p->run);
    wg_schema_release(&p->schema);
    free(p);
  }
  st->private_data = NULL;
  st->release = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * The call */

/* The command: SQL text, or a JSON object {"sql": TEXT, "per_batch": BOOL} (nothing else). */
static int parse_command(struct exchange *x, char *text, struct wg_error *err) {
  if (text[0] != '{') {
    x->sql = text;
    return 0;
  }
  cJSON *j = wg__request_json(text, "DoExchange command", err);
  free(text);
  if (j == NULL) return EINVAL;
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    return wg_error_set(err, EINVAL, "DoExchange command: not valid JSON; send SQL text or "
                                     "{\"sql\": \"...\", \"per_batch\": true}");
  }
  int rc = 0;
  for (const cJSON *m = j->child; m != NULL && rc == 0; m = m->next) {
    if (strcmp(m->string, "sql") == 0 && cJSON_IsString(m) && m->valuestring[0] != '\0') {
      free(x->sql);
      x->sql = strdup(m->valuestring);
      if (x->sql == NULL) rc = wg_error_set(err, ENOMEM, "out of memory");
    } else if (strcmp(m->string, "per_batch") == 0 && cJSON_IsBool(m)) {
      x->per_batch = cJSON_IsTrue(m);
    } else {
      rc = wg_error_set(err, EINVAL, "DoExchange command: bad member \"%.64s\" (allowed: \"sql\""
                                     " a non-empty string, \"per_batch\" true or false)",
                        m->string);
    }
  }
  cJSON_Delete(j);
  if (rc == 0 && x->sql == NULL)
    rc = wg_error_set(err, EINVAL, "DoExchange command: no \"sql\"");
  return rc;
}

/* The first message: descriptor, command, role, the input's schema into the decoder. */
static int begin(struct exchange *x, struct wg_error *err) {
  struct wg_flight_data fd = {0};
  bool done;
  WG_RETURN_NOT_OK(recv_data(x, &fd, &done, err));
  int rc = 0;
  if (done)
    rc = wg_error_set(err, EINVAL, "DoExchange stream ended before its descriptor");
  else if (fd.descriptor.size == 0)
    rc = wg_error_set(err, EINVAL, "the first DoExchange message carries no flight descriptor");
  else
    rc = wg_flight_descriptor_unpack(fd.descriptor.data, (size_t)fd.descriptor.size, &x->desc,
                                     err);
  struct wg__request req = {0};
  if (rc == 0 && x->desc->type != ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD)
    rc = wg_error_set(err, EINVAL, "DoExchange takes a CMD descriptor holding SQL, not a path");
  if (rc == 0) rc = wg__request_from_descriptor(x->s, x->desc, &req, err);
  if (rc == 0 && req.kind != WG__REQUEST_SQL) rc = wg__request_refuse(&req, "DoExchange", err);
  if (rc == 0) {
    char *text = req.sql;
    req.sql = NULL;
    rc = parse_command(x, text, err);
  }
  wg__request_reset(&req);
  if (rc == 0) rc = wg__role_require(x->call, WG_ROLE_READ, "DoExchange", err);
  /* pyarrow sends the descriptor alone, the schema in the next message */
  while (rc == 0 && fd.data_header.size == 0) {
    wg_flight_data_reset(&fd);
    rc = recv_data(x, &fd, &done, err);
    if (rc == 0 && done)
      rc = wg_error_set(err, EINVAL, "DoExchange stream ended before the input's schema");
  }
  if (rc == 0) {
    enum wg_ipc_message_type type;
    struct ArrowArray unused;
    rc = wg_ipc_decoder_decode(x->dec, fd.data_header, fd.body, &type, &unused, err);
    if (rc == E2BIG)
      rc = wg_error_set(err, EBUSY, "the input's schema has more than %lld columns, this "
                                    "server's limit (--max-columns)",
                        (long long)x->s->options.max_columns);
    else if (rc != 0)
      rc = wg_error_prefix(err, decode_status(rc), "bad schema message");
    else if (type != WG_IPC_MESSAGE_SCHEMA) {
      if (type == WG_IPC_MESSAGE_RECORD_BATCH) wg_array_release(&unused);
      rc = wg_error_set(err, EINVAL, "the first DoExchange message must hold a Schema");
    }
  }
  wg_flight_data_reset(&fd);
  return rc;
}

static int run(struct exchange *x, struct wg_error *err) {
  struct wg_server *s = x->s;
  struct ArrowArrayStream out = {0};
  int rc = 0;
  if (x->per_batch) {
    struct per_batch *p = calloc(1, sizeof(*p));
    if (p == NULL) return wg_error_set(err, ENOMEM, "out of memory");
    p->x = x;
    out = (struct ArrowArrayStream){per_batch_get_schema, per_batch_get_next,
                                    per_batch_get_last_error, per_batch_release, p};
  } else {
    x->input = (struct ArrowArrayStream){input_get_schema, input_get_next, input_get_last_error,
                                         input_release, x};
    rc = wg_engine_query_over(x->conn, "input", &x->input, x->sql, s->options.batch_rows,
                              s->options.batch_bytes, &out, err);
    if (rc != 0) return rc;
  }
  rc = wg__server_send_stream(s, x->call, &out, err);
  if (rc != 0 && !x->per_batch && !x->input_done && !wg_rpc_call_cancelled(x->call)) {
    /* the client may still be sending, or waiting: end the call now, so that a DuckDB thread
     * waiting in its receive gives up, before the query is released */
    wg_rpc_call_expire(x->call, wg_rpc_status_from_errno(rc), err->message);
  }
  wg_stream_release(&out);
  return rc;
}

void wg__server_do_exchange(struct wg_server *s, struct wg_rpc_call *call) {
  struct wg_error err = {""};
  struct exchange x = {.s = s, .call = call};
  struct wg_ipc_limits limits = {.max_fields = s->options.max_columns,
                                 .max_decompressed_size = s->options.max_message_bytes,
                                 .max_decompression_ratio = INT64_MAX};
  int rc = wg_ipc_decoder_create(&x.dec, &limits, &err);
  if (rc == 0) rc = begin(&x, &err);
  if (rc == 0) rc = wg_engine_acquire(s->engine, &x.conn, &err);
  if (rc == 0) {
    wg__limits_query(s, call); /* the query timeout runs from here */
    wg_rpc_call_set_cancel_hook(call, wg__server_interrupt_hook, x.conn);
    rc = run(&x, &err);
    wg_rpc_call_set_cancel_hook(call, NULL, NULL);
    if (rc != 0 && wg_rpc_call_cancelled(call))
      rc = wg_rpc_call_error(call, ECANCELED, "DoExchange", &err);
  }
  if (x.conn != NULL) wg_engine_release(s->engine, x.conn);
  if (x.desc != NULL) protobuf_c_message_free_unpacked(&x.desc->base, NULL);
  free(x.sql);
  wg_ipc_decoder_destroy(x.dec);
  wg__server_finish(s, call, rc, &err);
}
