/* wigeon: the Flight client (see client.h), over rpc/ (gRPC core) and flight/ (messages). */
#include "client/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flight/flight.h"
#include "rpc/rpc.h"

struct wg_client {
  struct wg_rpc_channel *channel;
  int64_t timeout_ms;
};

static const char *strip_scheme(const char *uri) {
  const char *schemes[] = {"grpc://", "grpc+tcp://"};
  for (size_t i = 0; i < 2; i++)
    if (strncmp(uri, schemes[i], strlen(schemes[i])) == 0) return uri + strlen(schemes[i]);
  return uri;
}

int wg_client_connect(struct wg_client **out, const char *uri, struct wg_error *err) {
  if (strncmp(uri, "grpc+tls://", 11) == 0)
    return wg_error_set(err, ENOTSUP, "TLS (grpc+tls://) is not supported yet");
  struct wg_client *c = calloc(1, sizeof(*c));
  if (c == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  int rc = wg_rpc_channel_create(&c->channel, strip_scheme(uri), err);
  if (rc != 0) {
    free(c);
    return rc;
  }
  *out = c;
  return 0;
}

void wg_client_close(struct wg_client *c) {
  if (c == NULL) return;
  wg_rpc_channel_destroy(c->channel);
  free(c);
}

void wg_client_set_timeout(struct wg_client *c, int64_t timeout_ms) {
  c->timeout_ms = timeout_ms;
}

static int start(struct wg_client *c, const char *method, struct wg_rpc_client_call **call,
                 struct wg_error *err) {
  char path[128];
  snprintf(path, sizeof(path), "%s%s", WG_FLIGHT_SERVICE, method);
  return wg_rpc_client_call_start(c->channel, path, c->timeout_ms, NULL, call, err);
}

/* Sends a protobuf message. */
static int send_msg(struct wg_rpc_client_call *call, const ProtobufCMessage *m,
                    struct wg_error *err) {
  grpc_byte_buffer *bb;
  WG_RETURN_NOT_OK(wg_flight_pack(m, &bb, err));
  return wg_rpc_client_call_send(call, bb);
}

/* Ends a call: the server's status wins over a local transport error. */
static int finish(struct wg_rpc_client_call *call, int rc, struct wg_error *err) {
  grpc_status_code code;
  struct wg_error status = {""};
  int src = wg_rpc_client_call_finish(call, &code, &status);
  if (src != 0) {
    if (err != NULL) *err = status;
    return src;
  }
  return rc;
}

/* Starts a call with one request message, half-closed. */
static int unary_start(struct wg_client *c, const char *method, const ProtobufCMessage *req,
                       struct wg_rpc_client_call **call, struct wg_error *err) {
  WG_RETURN_NOT_OK(start(c, method, call, err));
  int rc = send_msg(*call, req, err);
  if (rc == 0) rc = wg_rpc_client_call_close_send(*call);
  if (rc != 0) {
    rc = finish(*call, rc, err);
    wg_rpc_client_call_destroy(*call);
    *call = NULL;
    if (rc == 0) rc = wg_error_set(err, EIO, "cannot send the %s request", method);
  }
  return rc;
}

/* ---- DoGet as an ArrowArrayStream ---- */

struct get_stream {
  struct wg_rpc_client_call *call;
  struct wg_ipc_decoder *dec;
  int status;
  bool done;
  struct wg_error err;
};

/* Reads messages until a record batch (out) or the end (out->release NULL). */
static int get_pump(struct get_stream *g, struct ArrowArray *out, bool want_schema) {
  out->release = NULL;
  if (g->status != 0) return g->status;
  for (;;) {
    if (g->done) return 0;
    if (want_schema && wg_ipc_decoder_has_schema(g->dec)) return 0;
    grpc_byte_buffer *bb = NULL;
    int rc = wg_rpc_client_call_recv(g->call, &bb);
    if (rc == 0 && bb == NULL) { /* end of stream: the status decides */
      g->done = true;
      rc = finish(g->call, 0, &g->err);
      if (rc == 0 && !wg_ipc_decoder_has_schema(g->dec))
        rc = wg_error_set(&g->err, EPROTO, "DoGet ended without a schema");
      g->status = rc;
      return rc;
    }
    if (rc != 0) {
      g->done = true;
      g->status = finish(g->call, rc, &g->err);
      if (g->status == 0) g->status = wg_error_set(&g->err, rc, "DoGet stream broken");
      return g->status;
    }
    struct wg_flight_data fd = {0};
    rc = wg_flight_data_decode(bb, &fd, &g->err);
    grpc_byte_buffer_destroy(bb);
    enum wg_ipc_message_type type = WG_IPC_MESSAGE_NONE;
    if (rc == 0 && fd.data_header.size > 0)
      rc = wg_ipc_decoder_decode(g->dec, fd.data_header, fd.body, &type, out, &g->err);
    wg_flight_data_reset(&fd);
    if (rc != 0) {
      wg_rpc_client_call_cancel(g->call);
      g->done = true;
      g->status = rc;
      return rc;
    }
    if (type == WG_IPC_MESSAGE_RECORD_BATCH) {
      if (want_schema) { /* cannot happen before a schema: the decoder refuses it */
        wg_array_release(out);
      }
      return 0;
    }
  }
}

static int get_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct get_stream *g = s->private_data;
  struct ArrowArray none;
  int rc = get_pump(g, &none, true);
  if (rc != 0) return rc;
  return wg_ipc_decoder_schema(g->dec, out, &g->err) != 0 ? (g->status = EPROTO) : 0;
}

static int get_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  return get_pump(s->private_data, out, false);
}

static const char *get_last_error(struct ArrowArrayStream *s) {
  struct get_stream *g = s->private_data;
  return g->status != 0 ? g->err.message : NULL;
}

static void get_release(struct ArrowArrayStream *s) {
  struct get_stream *g = s->private_data;
  if (!g->done) wg_rpc_client_call_cancel(g->call);
  wg_rpc_client_call_destroy(g->call);
  wg_ipc_decoder_destroy(g->dec);
  free(g);
  s->release = NULL;
}

int wg_client_stream_status(struct ArrowArrayStream *stream) {
  if (stream->release != get_release) return 0;
  return ((struct get_stream *)stream->private_data)->status;
}

int wg_client_do_get(struct wg_client *c, const void *ticket, size_t len,
                     struct ArrowArrayStream *out, struct wg_error *err) {
  Arrow__Flight__Protocol__Ticket t = ARROW__FLIGHT__PROTOCOL__TICKET__INIT;
  t.ticket.data = (uint8_t *)ticket;
  t.ticket.len = len;
  struct get_stream *g = calloc(1, sizeof(*g));
  if (g == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  int rc = wg_ipc_decoder_create(&g->dec, NULL, err);
  if (rc == 0) rc = unary_start(c, "DoGet", &t.base, &g->call, err);
  if (rc != 0) {
    wg_ipc_decoder_destroy(g->dec);
    free(g);
    return rc;
  }
  memset(out, 0, sizeof(*out));
  out->get_schema = get_get_schema;
  out->get_next = get_get_next;
  out->get_last_error = get_last_error;
  out->release = get_release;
  out->private_data = g;
  return 0;
}

int wg_client_query(struct wg_client *c, const char *sql, struct ArrowArrayStream *out,
                    struct wg_error *err) {
  return wg_client_do_get(c, sql, strlen(sql), out, err);
}

/* ---- DoPut ---- */

static void release_array(void *ctx) {
  struct ArrowArray *a = ctx;
  wg_array_release(a);
  free(a);
}

static int send_encoded(struct wg_rpc_client_call *call, struct wg_bytes descriptor,
                        struct wg_ipc_encoded *m, int64_t n, struct wg_shared *keep,
                        struct wg_error *err) {
  struct wg_bytes none = {NULL, 0};
  for (int64_t i = 0; i < n; i++) {
    grpc_byte_buffer *bb;
    WG_RETURN_NOT_OK(wg_flight_data_encode(i == 0 ? descriptor : none, &m[i], none, keep, &bb, err));
    int rc = wg_rpc_client_call_send(call, bb);
    if (rc != 0) return wg_error_set(err, rc, "the server ended the put");
  }
  return 0;
}

/* Parses "rows": N out of a PutResult's JSON app_metadata. */
static int64_t parse_rows(const ProtobufCBinaryData *md) {
  const char *key = "\"rows\":";
  size_t kl = strlen(key);
  for (size_t i = 0; i + kl < md->len; i++) {
    if (memcmp(md->data + i, key, kl) != 0) continue;
    int64_t v = 0;
    size_t j = i + kl;
    while (j < md->len && md->data[j] == ' ') j++;
    while (j < md->len && md->data[j] >= '0' && md->data[j] <= '9') v = v * 10 + (md->data[j++] - '0');
    return v;
  }
  return -1;
}

int wg_client_put(struct wg_client *c, const char *schema_name, const char *table,
                  struct ArrowArrayStream *in, int64_t *rows, struct wg_error *err) {
  *rows = 0;
  struct ArrowSchema schema;
  int rc = in->get_schema(in, &schema);
  if (rc != 0) {
    wg_error_set(err, rc, "input stream: %s", in->get_last_error(in) ? in->get_last_error(in) : "");
    wg_stream_release(in);
    return rc;
  }
  struct wg_ipc_encoder *enc = NULL;
  rc = wg_ipc_encoder_create(&enc, &schema, NULL, err);
  wg_schema_release(&schema);
  /* descriptor: PATH [table] or [schema, table] */
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  char *path[2] = {(char *)schema_name, (char *)table};
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__PATH;
  d.n_path = schema_name ? 2 : 1;
  d.path = schema_name ? path : path + 1;
  size_t dl = arrow__flight__protocol__flight_descriptor__get_packed_size(&d);
  uint8_t *dbytes = malloc(dl ? dl : 1);
  if (rc == 0 && dbytes == NULL) rc = wg_error_set(err, ENOMEM, "out of memory");
  if (rc == 0) arrow__flight__protocol__flight_descriptor__pack(&d, dbytes);
  int64_t max = rc == 0 ? wg_ipc_encoder_max_messages(enc) : 0;
  struct wg_ipc_encoded *msgs = rc == 0 ? calloc((size_t)max, sizeof(*msgs)) : NULL;
  if (rc == 0 && msgs == NULL) rc = wg_error_set(err, ENOMEM, "out of memory");
  for (int64_t i = 0; i < max && msgs; i++) wg_ipc_encoded_init(&msgs[i]);
  struct wg_rpc_client_call *call = NULL;
  if (rc == 0) rc = start(c, "DoPut", &call, err);
  struct wg_bytes desc = {dbytes, (int64_t)dl};
  if (rc == 0) rc = wg_ipc_encoder_schema(enc, &msgs[0], err);
  if (rc == 0) rc = send_encoded(call, desc, msgs, 1, NULL, err);
  while (rc == 0) {
    struct ArrowArray *batch = malloc(sizeof(*batch));
    if (batch == NULL) {
      rc = wg_error_set(err, ENOMEM, "out of memory");
      break;
    }
    rc = in->get_next(in, batch);
    if (rc != 0) {
      const char *m = in->get_last_error(in);
      wg_error_set(err, rc, "input stream: %s", m ? m : "read failed");
      free(batch);
      if (call) wg_rpc_client_call_cancel(call);
      break;
    }
    if (batch->release == NULL) {
      free(batch);
      break;
    }
    int64_t n = 0;
    rc = wg_ipc_encoder_batch(enc, batch, msgs, &n, err);
    struct wg_shared *keep = rc == 0 ? wg_shared_wrap(NULL, 0, release_array, batch) : NULL;
    if (keep == NULL) {
      release_array(batch);
      if (rc == 0) rc = wg_error_set(err, ENOMEM, "out of memory");
      if (call) wg_rpc_client_call_cancel(call);
      break;
    }
    rc = send_encoded(call, desc, msgs, n, keep, err);
    wg_shared_unref(keep);
  }
  if (call != NULL) {
    if (rc == 0) rc = wg_rpc_client_call_close_send(call);
    /* Acknowledgements: one PutResult per commit. */
    for (int guard = 0; rc == 0 && guard < 1000000; guard++) {
      grpc_byte_buffer *bb = NULL;
      if (wg_rpc_client_call_recv(call, &bb) != 0 || bb == NULL) break;
      ProtobufCMessage *m = NULL;
      if (wg_flight_unpack(&arrow__flight__protocol__put_result__descriptor, bb, &m, NULL) == 0) {
        int64_t r = parse_rows(&((Arrow__Flight__Protocol__PutResult *)m)->app_metadata);
        if (r > 0) *rows += r;
        protobuf_c_message_free_unpacked(m, NULL);
      }
      grpc_byte_buffer_destroy(bb);
    }
    rc = finish(call, rc, err);
    wg_rpc_client_call_destroy(call);
  }
  for (int64_t i = 0; i < max && msgs; i++) wg_ipc_encoded_reset(&msgs[i]);
  free(msgs);
  free(dbytes);
  wg_ipc_encoder_destroy(enc);
  wg_stream_release(in);
  return rc;
}

/* ---- actions and flight info ---- */

int wg_client_action(struct wg_client *c, const char *type, const void *body, size_t len,
                     struct wg_buf *result, struct wg_error *err) {
  Arrow__Flight__Protocol__Action a = ARROW__FLIGHT__PROTOCOL__ACTION__INIT;
  a.type = (char *)type;
  a.body.data = (uint8_t *)body;
  a.body.len = len;
  struct wg_rpc_client_call *call;
  WG_RETURN_NOT_OK(unary_start(c, "DoAction", &a.base, &call, err));
  int rc = 0;
  for (;;) {
    grpc_byte_buffer *bb = NULL;
    if (wg_rpc_client_call_recv(call, &bb) != 0 || bb == NULL) break;
    ProtobufCMessage *m = NULL;
    rc = wg_flight_unpack(&arrow__flight__protocol__result__descriptor, bb, &m, err);
    grpc_byte_buffer_destroy(bb);
    if (rc != 0) break;
    const Arrow__Flight__Protocol__Result *r = (const Arrow__Flight__Protocol__Result *)m;
    if (result != NULL && wg_buf_append(result, r->body.data, (int64_t)r->body.len) != 0)
      rc = wg_error_set(err, ENOMEM, "out of memory");
    protobuf_c_message_free_unpacked(m, NULL);
    if (rc != 0) break;
  }
  rc = finish(call, rc, err);
  wg_rpc_client_call_destroy(call);
  if (rc == 0 && result != NULL && wg_buf_append(result, "", 1) == 0) result->size--;
  return rc;
}

static int info_from_message(const Arrow__Flight__Protocol__FlightInfo *fi,
                             struct wg_client_info *out, struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  out->total_records = fi->total_records;
  struct wg_bytes sb = {fi->schema.data, (int64_t)fi->schema.len};
  WG_RETURN_NOT_OK(wg_flight_schema_parse(sb, &out->schema, err));
  if (fi->n_endpoint > 0 && fi->endpoint[0]->ticket != NULL) {
    const ProtobufCBinaryData *t = &fi->endpoint[0]->ticket->ticket;
    out->ticket = malloc(t->len + 1);
    if (out->ticket == NULL) {
      wg_schema_release(&out->schema);
      return wg_error_set(err, ENOMEM, "out of memory");
    }
    memcpy(out->ticket, t->data, t->len);
    out->ticket[t->len] = '\0';
    out->ticket_len = t->len;
  }
  return 0;
}

void wg_client_info_reset(struct wg_client_info *info) {
  wg_schema_release(&info->schema);
  free(info->ticket);
  info->ticket = NULL;
}

int wg_client_flight_info(struct wg_client *c, const char *schema_name, const char *table,
                          const char *sql, struct wg_client_info *out, struct wg_error *err) {
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  char *path[2] = {(char *)schema_name, (char *)table};
  if (table != NULL) {
    d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__PATH;
    d.n_path = schema_name ? 2 : 1;
    d.path = schema_name ? path : path + 1;
  } else {
    d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
    d.cmd.data = (uint8_t *)sql;
    d.cmd.len = sql ? strlen(sql) : 0;
  }
  struct wg_rpc_client_call *call;
  WG_RETURN_NOT_OK(unary_start(c, "GetFlightInfo", &d.base, &call, err));
  grpc_byte_buffer *bb = NULL;
  int rc = wg_rpc_client_call_recv(call, &bb);
  if (rc == 0 && bb == NULL) rc = EPROTO;
  ProtobufCMessage *m = NULL;
  if (rc == 0) rc = wg_flight_unpack(&arrow__flight__protocol__flight_info__descriptor, bb, &m, err);
  if (bb != NULL) grpc_byte_buffer_destroy(bb);
  rc = finish(call, rc, err);
  wg_rpc_client_call_destroy(call);
  if (rc == 0) rc = info_from_message((const Arrow__Flight__Protocol__FlightInfo *)m, out, err);
  if (m != NULL) protobuf_c_message_free_unpacked(m, NULL);
  return rc;
}

int wg_client_list_tables(struct wg_client *c, const char *filter, struct wg_client_table **out,
                          int64_t *n, struct wg_error *err) {
  Arrow__Flight__Protocol__Criteria cr = ARROW__FLIGHT__PROTOCOL__CRITERIA__INIT;
  cr.expression.data = (uint8_t *)filter;
  cr.expression.len = filter ? strlen(filter) : 0;
  *out = NULL;
  *n = 0;
  struct wg_rpc_client_call *call;
  WG_RETURN_NOT_OK(unary_start(c, "ListFlights", &cr.base, &call, err));
  int rc = 0;
  int64_t cap = 0;
  for (;;) {
    grpc_byte_buffer *bb = NULL;
    if (wg_rpc_client_call_recv(call, &bb) != 0 || bb == NULL) break;
    ProtobufCMessage *m = NULL;
    rc = wg_flight_unpack(&arrow__flight__protocol__flight_info__descriptor, bb, &m, err);
    grpc_byte_buffer_destroy(bb);
    if (rc != 0) break;
    const Arrow__Flight__Protocol__FlightInfo *fi = (const Arrow__Flight__Protocol__FlightInfo *)m;
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      struct wg_client_table *t = realloc(*out, (size_t)cap * sizeof(**out));
      if (t == NULL) rc = wg_error_set(err, ENOMEM, "out of memory");
      else *out = t;
    }
    struct wg_client_info info;
    if (rc == 0) rc = info_from_message(fi, &info, err);
    if (rc == 0) {
      struct wg_client_table *t = &(*out)[(*n)++];
      memset(t, 0, sizeof(*t));
      const Arrow__Flight__Protocol__FlightDescriptor *d = fi->flight_descriptor;
      t->schema_name = strdup(d && d->n_path == 2 ? d->path[0] : "main");
      t->table_name = strdup(d && d->n_path > 0 ? d->path[d->n_path - 1] : "");
      t->rows = info.total_records;
      wg_schema_move(&info.schema, &t->schema);
      wg_client_info_reset(&info);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    if (rc != 0) break;
  }
  rc = finish(call, rc, err);
  wg_rpc_client_call_destroy(call);
  if (rc != 0) {
    wg_client_tables_free(*out, *n);
    *out = NULL;
    *n = 0;
  }
  return rc;
}

void wg_client_tables_free(struct wg_client_table *t, int64_t n) {
  for (int64_t i = 0; t != NULL && i < n; i++) {
    free(t[i].schema_name);
    free(t[i].table_name);
    wg_schema_release(&t[i].schema);
  }
  free(t);
}
