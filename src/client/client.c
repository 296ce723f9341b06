/* wigeon: the Flight client (see client.h), over rpc/ (gRPC core) and flight/ (messages).
 * Every operation is written once, with the internal error convention (errno-style code and
 * struct wg_error) plus the gRPC code of the outcome; the wg_client_* functions drop the gRPC code,
 * the public wg_* functions (wigeon.h, in public.c) turn both into a struct wg_status. */
#include "client/client.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "flight/flight.h"
#include "rpc/rpc.h"

struct wg_client {
  struct wg_rpc_channel *channel;
  _Atomic int64_t timeout_ms;
  char **headers; /* NULL or NULL-terminated key, value pairs, owned */
};

static const char *strip_scheme(const char *uri) {
  const char *schemes[] = {"grpc://", "grpc+tcp://"};
  for (size_t i = 0; i < 2; i++)
    if (strncmp(uri, schemes[i], strlen(schemes[i])) == 0) return uri + strlen(schemes[i]);
  return uri;
}

int wg_client_connect(struct wg_client **out, const char *uri, struct wg_error *err) {
  if (uri == NULL || uri[0] == '\0') return wg_error_set(err, EINVAL, "no server URI");
  if (strncmp(uri, "grpc+tls://", 11) == 0)
    return wg_error_set(err, ENOTSUP, "TLS (grpc+tls://) is not supported yet");
  const char *target = strip_scheme(uri);
  if (strstr(target, "://") != NULL || target[0] == '\0')
    return wg_error_set(
        err, EINVAL,
        "bad server URI \"%.200s\": expected grpc://host:port, grpc+tcp://host:port "
        "or host:port",
        uri);
  struct wg_client *c = calloc(1, sizeof(*c));
  if (c == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  atomic_init(&c->timeout_ms, 0);
  int rc = wg_rpc_channel_create(&c->channel, target, err);
  if (rc != 0) {
    free(c);
    return rc;
  }
  *out = c;
  return 0;
}

static void free_headers(char **h) {
  for (size_t i = 0; h != NULL && h[i] != NULL; i++)
    free(h[i]);
  free(h);
}

void wg_client_close(struct wg_client *c) {
  if (c == NULL) return;
  wg_rpc_channel_destroy(c->channel);
  free_headers(c->headers);
  free(c);
}

void wg_client_set_timeout(struct wg_client *c, int64_t timeout_ms) {
  atomic_store(&c->timeout_ms, timeout_ms);
}

int wg_client_set_headers(struct wg_client *c, const char *const *headers, struct wg_error *err) {
  size_t n = 0;
  while (headers != NULL && headers[n] != NULL) {
    if (headers[n + 1] == NULL)
      return wg_error_set(err, EINVAL, "header %s has no value", headers[n]);
    n += 2;
  }
  char **copy = NULL;
  if (n > 0) {
    copy = calloc(n + 1, sizeof(*copy));
    if (copy == NULL) return wg_error_set(err, ENOMEM, "out of memory for %zu headers", n / 2);
    for (size_t i = 0; i < n; i++) {
      copy[i] = strdup(headers[i]);
      if (copy[i] == NULL) {
        free_headers(copy);
        return wg_error_set(err, ENOMEM, "out of memory for %zu headers", n / 2);
      }
    }
  }
  free_headers(c->headers);
  c->headers = copy;
  return 0;
}

static int start_timeout(struct wg_client *c, const char *method, int64_t timeout_ms,
                         struct wg_rpc_client_call **call, struct wg_error *err) {
  char path[128];
  snprintf(path, sizeof(path), "%s%s", WG_FLIGHT_SERVICE, method);
  return wg_rpc_client_call_start(c->channel, path, timeout_ms, (const char *const *)c->headers,
                                  call, err);
}

static int start(struct wg_client *c, const char *method, struct wg_rpc_client_call **call,
                 struct wg_error *err) {
  return start_timeout(c, method, atomic_load(&c->timeout_ms), call, err);
}

/* Sends a protobuf message. */
static int send_msg(struct wg_rpc_client_call *call, const ProtobufCMessage *m,
                    struct wg_error *err) {
  grpc_byte_buffer *bb;
  WG_RETURN_NOT_OK(wg_flight_pack(m, &bb, err));
  return wg_rpc_client_call_send(call, bb);
}

/* The gRPC code of a local error (the one mapping, in rpc/status.c). */
static int local_code(int rc) {
  return rc == 0 ? 0 : (int)wg_rpc_status_from_errno(rc);
}

/* Ends a call. The server's status wins over a local transport error (it says why the call
 * ended), but not over an error of ours for which we cancelled the call (`ours`). *grpc (may be
 * NULL) gets the gRPC code of the outcome, 0 when it is a success. */
static int finish(struct wg_rpc_client_call *call, int rc, bool ours, struct wg_error *err,
                  int *grpc) {
  grpc_status_code code = GRPC_STATUS_OK;
  struct wg_error status = {""};
  int src = wg_rpc_client_call_finish(call, &code, &status);
  if (src != 0 && !(rc != 0 && ours)) {
    if (err != NULL) *err = status;
    if (grpc != NULL) *grpc = code != GRPC_STATUS_OK ? (int)code : local_code(src);
    return src;
  }
  if (grpc != NULL) *grpc = local_code(rc);
  return rc;
}

/* Starts a call with one request message, half-closed. */
static int unary_start_ex(struct wg_client *c, const char *method, int64_t timeout_ms,
                          const ProtobufCMessage *req, struct wg_rpc_client_call **call,
                          struct wg_error *err, int *grpc) {
  int rc = start_timeout(c, method, timeout_ms, call, err);
  if (rc != 0) {
    if (grpc != NULL) *grpc = local_code(rc);
    return rc;
  }
  rc = send_msg(*call, req, err);
  if (rc == 0) rc = wg_rpc_client_call_close_send(*call);
  if (rc != 0) {
    rc = finish(*call, rc, false, err, grpc);
    wg_rpc_client_call_destroy(*call);
    *call = NULL;
    if (rc == 0) {
      rc = wg_error_set(err, EIO, "cannot send the %s request", method);
      if (grpc != NULL) *grpc = local_code(rc);
    }
  }
  return rc;
}

static int unary_start(struct wg_client *c, const char *method, const ProtobufCMessage *req,
                       struct wg_rpc_client_call **call, struct wg_error *err, int *grpc) {
  return unary_start_ex(c, method, atomic_load(&c->timeout_ms), req, call, err, grpc);
}

/* ---- DoGet as an ArrowArrayStream ---- */

struct get_stream {
  struct wg_rpc_client_call *call;
  struct wg_ipc_decoder *dec;
  int status;
  int grpc; /* gRPC code of status */
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
      rc = finish(g->call, 0, false, &g->err, &g->grpc);
      if (rc == 0 && !wg_ipc_decoder_has_schema(g->dec)) {
        rc = wg_error_set(&g->err, EPROTO, "DoGet ended without a schema");
        g->grpc = local_code(rc);
      }
      g->status = rc;
      return rc;
    }
    if (rc != 0) {
      g->done = true;
      g->status = finish(g->call, rc, false, &g->err, &g->grpc);
      if (g->status == 0) {
        g->status = wg_error_set(&g->err, rc, "DoGet stream broken");
        g->grpc = local_code(rc);
      }
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
      g->grpc = local_code(rc);
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
  if (wg_ipc_decoder_schema(g->dec, out, &g->err) == 0) return 0;
  g->status = EPROTO;
  g->grpc = local_code(EPROTO);
  return EPROTO;
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

int wg__client_stream_error(struct ArrowArrayStream *stream, int *grpc, const char **message) {
  *grpc = 0;
  *message = "";
  if (stream == NULL || stream->release != get_release) return 0;
  struct get_stream *g = stream->private_data;
  if (g->status == 0) return 0;
  *grpc = g->grpc;
  *message = g->err.message;
  return g->status;
}

int wg__client_do_get(struct wg_client *c, const void *ticket, size_t len,
                      struct ArrowArrayStream *out, struct wg_error *err, int *grpc) {
  Arrow__Flight__Protocol__Ticket t = ARROW__FLIGHT__PROTOCOL__TICKET__INIT;
  t.ticket.data = (uint8_t *)ticket;
  t.ticket.len = len;
  struct get_stream *g = calloc(1, sizeof(*g));
  if (g == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  int rc = wg_ipc_decoder_create(&g->dec, NULL, err);
  if (rc != 0) *grpc = local_code(rc);
  if (rc == 0) rc = unary_start(c, "DoGet", &t.base, &g->call, err, grpc);
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
  *grpc = 0;
  return 0;
}

int wg_client_do_get(struct wg_client *c, const void *ticket, size_t len,
                     struct ArrowArrayStream *out, struct wg_error *err) {
  int grpc;
  return wg__client_do_get(c, ticket, len, out, err, &grpc);
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
                        struct wg_bytes app_metadata, struct wg_ipc_encoded *m, int64_t n,
                        struct wg_shared *keep, struct wg_error *err) {
  struct wg_bytes none = {NULL, 0};
  for (int64_t i = 0; i < n; i++) {
    grpc_byte_buffer *bb;
    WG_RETURN_NOT_OK(wg_flight_data_encode(i == 0 ? descriptor : none, &m[i],
                                           i == 0 ? app_metadata : none, keep, &bb, err));
    int rc = wg_rpc_client_call_send(call, bb);
    if (rc != 0) return wg_error_set(err, rc, "the server ended the put");
  }
  return 0;
}

/* Finds "key" followed by ':' in a small JSON object; returns the position after the colon and
 * spaces, or len when absent. Enough for the server's flat acknowledgement object. */
static size_t json_find(const uint8_t *p, size_t len, const char *key) {
  size_t kl = strlen(key);
  for (size_t i = 0; i + kl + 2 <= len; i++) {
    if (p[i] != '"' || memcmp(p + i + 1, key, kl) != 0 || p[i + 1 + kl] != '"') continue;
    size_t j = i + kl + 2;
    while (j < len && p[j] == ' ')
      j++;
    if (j >= len || p[j] != ':') continue;
    j++;
    while (j < len && p[j] == ' ')
      j++;
    return j;
  }
  return len;
}

/* "key": N (non-negative, at most 18 digits); -1 when absent. */
static int64_t json_int(const uint8_t *p, size_t len, const char *key) {
  size_t j = json_find(p, len, key);
  if (j >= len || p[j] < '0' || p[j] > '9') return -1;
  int64_t v = 0;
  for (int digits = 0; j < len && p[j] >= '0' && p[j] <= '9' && digits < 18; j++, digits++)
    v = v * 10 + (p[j] - '0');
  return v;
}

/* "key": "text" into out (size > 0; escapes taken literally, truncated); "" when absent. */
static void json_string(const uint8_t *p, size_t len, const char *key, char *out, size_t size) {
  size_t n = 0;
  size_t j = json_find(p, len, key);
  if (j < len && p[j] == '"') {
    for (j++; j < len && p[j] != '"' && n + 1 < size; j++) {
      if (p[j] == '\\' && j + 1 < len) j++;
      out[n++] = (char)p[j];
    }
  }
  out[n] = '\0';
}

/* {"idempotency_key": "KEY"} with KEY escaped for JSON, into b. */
static int key_metadata(struct wg_buf *b, const char *key) {
  static const char head[] = "{\"idempotency_key\": \"";
  int rc = wg_buf_append(b, head, (int64_t)sizeof(head) - 1);
  for (const unsigned char *k = (const unsigned char *)key; rc == 0 && *k; k++) {
    char esc[8];
    if (*k == '"' || *k == '\\') {
      esc[0] = '\\', esc[1] = (char)*k;
      rc = wg_buf_append(b, esc, 2);
    } else if (*k < 0x20) {
      snprintf(esc, sizeof(esc), "\\u%04x", *k);
      rc = wg_buf_append(b, esc, 6);
    } else {
      rc = wg_buf_append(b, k, 1);
    }
  }
  if (rc == 0) rc = wg_buf_append(b, "\"}", 2);
  return rc;
}

int wg__client_put(struct wg_client *c, const char *schema_name, const char *table,
                   const char *idempotency_key, struct ArrowArrayStream *in, wg_put_ack_fn on_ack,
                   void *ack_ctx, int64_t *rows, struct wg_error *err, int *grpc) {
  if (rows != NULL) *rows = 0;
  *grpc = 0;
  int64_t total = 0;
  struct ArrowSchema schema;
  int rc = in->get_schema(in, &schema);
  if (rc != 0) {
    const char *m = in->get_last_error(in);
    wg_error_set(err, rc, "input stream: %s", m ? m : "cannot read its schema");
    *grpc = local_code(rc);
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
  for (int64_t i = 0; i < max && msgs; i++)
    wg_ipc_encoded_init(&msgs[i]);
  struct wg_rpc_client_call *call = NULL;
  if (rc == 0) rc = start(c, "DoPut", &call, err);
  /* ours: the error is local (input, encoding, memory), so we cancel and it is the one reported;
   * otherwise a failed send means the server ended the call, and its status says why. */
  bool ours = true;
  struct wg_bytes desc = {dbytes, (int64_t)dl};
  struct wg_buf keymd;
  wg_buf_init(&keymd);
  if (rc == 0 && idempotency_key != NULL && key_metadata(&keymd, idempotency_key) != 0)
    rc = wg_error_set(err, ENOMEM, "out of memory");
  struct wg_bytes none = {NULL, 0};
  if (rc == 0) rc = wg_ipc_encoder_schema(enc, &msgs[0], err);
  if (rc == 0) {
    rc = send_encoded(call, desc, (struct wg_bytes){keymd.data, keymd.size}, msgs, 1, NULL, err);
    ours = rc != EPIPE;
  }
  wg_buf_reset(&keymd);
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
      break;
    }
    rc = send_encoded(call, desc, none, msgs, n, keep, err);
    ours = rc != EPIPE;
    wg_shared_unref(keep);
  }
  if (call != NULL) {
    if (rc != 0 && ours) wg_rpc_client_call_cancel(call);
    if (rc == 0) rc = wg_rpc_client_call_close_send(call);
    /* Acknowledgements: one PutResult per commit. */
    for (int guard = 0; rc == 0 && guard < 1000000; guard++) {
      grpc_byte_buffer *bb = NULL;
      if (wg_rpc_client_call_recv(call, &bb) != 0 || bb == NULL) break;
      ProtobufCMessage *m = NULL;
      if (wg_flight_unpack(&arrow__flight__protocol__put_result__descriptor, bb, &m, NULL) == 0) {
        const ProtobufCBinaryData *md = &((Arrow__Flight__Protocol__PutResult *)m)->app_metadata;
        struct wg_put_ack ack = {json_int(md->data, md->len, "rows"), "", md->data, md->len,
                                 json_find(md->data, md->len, "duplicate") + 4 <= md->len &&
                                     memcmp(md->data + json_find(md->data, md->len, "duplicate"),
                                            "true", 4) == 0};
        if (ack.rows > 0) total += ack.rows;
        if (on_ack != NULL) {
          char name[256];
          json_string(md->data, md->len, "table", name, sizeof(name));
          ack.table = name;
          on_ack(ack_ctx, &ack);
        }
        protobuf_c_message_free_unpacked(m, NULL);
      }
      grpc_byte_buffer_destroy(bb);
    }
    rc = finish(call, rc, ours, err, grpc);
    wg_rpc_client_call_destroy(call);
  } else {
    *grpc = local_code(rc);
  }
  if (rows != NULL) *rows = total;
  for (int64_t i = 0; i < max && msgs; i++)
    wg_ipc_encoded_reset(&msgs[i]);
  free(msgs);
  free(dbytes);
  wg_ipc_encoder_destroy(enc);
  wg_stream_release(in);
  return rc;
}

int wg_client_put(struct wg_client *c, const char *schema_name, const char *table,
                  struct ArrowArrayStream *in, int64_t *rows, struct wg_error *err) {
  int grpc;
  return wg__client_put(c, schema_name, table, NULL, in, NULL, NULL, rows, err, &grpc);
}

int wg_client_put_keyed(struct wg_client *c, const char *schema_name, const char *table,
                        const char *idempotency_key, struct ArrowArrayStream *in,
                        wg_put_ack_fn on_ack, void *ack_ctx, int64_t *rows, struct wg_error *err) {
  int grpc;
  return wg__client_put(c, schema_name, table, idempotency_key, in, on_ack, ack_ctx, rows, err,
                        &grpc);
}

/* ---- actions and flight info ---- */

int wg__client_action(struct wg_client *c, const char *type, const void *body, size_t len,
                      int (*on_result)(void *ctx, const uint8_t *data, size_t size,
                                       struct wg_error *err),
                      void *ctx, struct wg_error *err, int *grpc) {
  Arrow__Flight__Protocol__Action a = ARROW__FLIGHT__PROTOCOL__ACTION__INIT;
  a.type = (char *)type;
  a.body.data = (uint8_t *)body;
  a.body.len = len;
  struct wg_rpc_client_call *call;
  WG_RETURN_NOT_OK(unary_start(c, "DoAction", &a.base, &call, err, grpc));
  int rc = 0;
  for (;;) {
    grpc_byte_buffer *bb = NULL;
    if (wg_rpc_client_call_recv(call, &bb) != 0 || bb == NULL) break;
    ProtobufCMessage *m = NULL;
    rc = wg_flight_unpack(&arrow__flight__protocol__result__descriptor, bb, &m, err);
    grpc_byte_buffer_destroy(bb);
    if (rc != 0) break;
    const Arrow__Flight__Protocol__Result *r = (const Arrow__Flight__Protocol__Result *)m;
    if (on_result != NULL) rc = on_result(ctx, r->body.data, r->body.len, err);
    protobuf_c_message_free_unpacked(m, NULL);
    if (rc != 0) break;
  }
  if (rc != 0) wg_rpc_client_call_cancel(call);
  rc = finish(call, rc, true, err, grpc);
  wg_rpc_client_call_destroy(call);
  return rc;
}

static int append_result(void *ctx, const uint8_t *data, size_t size, struct wg_error *err) {
  if (wg_buf_append(ctx, data, (int64_t)size) != 0)
    return wg_error_set(err, ENOMEM, "out of memory for a %zu-byte action result", size);
  return 0;
}

int wg_client_action(struct wg_client *c, const char *type, const void *body, size_t len,
                     struct wg_buf *result, struct wg_error *err) {
  int grpc;
  int rc = wg__client_action(c, type, body, len, result ? append_result : NULL, result, err, &grpc);
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

/* A PATH descriptor for [schema_name,] table, or a CMD one for sql when table is NULL. */
static void describe(Arrow__Flight__Protocol__FlightDescriptor *d, char *path[2],
                     const char *schema_name, const char *table, const char *sql) {
  path[0] = (char *)schema_name;
  path[1] = (char *)table;
  if (table != NULL) {
    d->type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__PATH;
    d->n_path = schema_name ? 2 : 1;
    d->path = schema_name ? path : path + 1;
  } else {
    d->type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
    d->cmd.data = (uint8_t *)sql;
    d->cmd.len = sql ? strlen(sql) : 0;
  }
}

/* A unary call answered by one message of type `type` (*m: the caller frees it on success). */
static int unary_call(struct wg_client *c, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *type, ProtobufCMessage **m,
                      struct wg_error *err, int *grpc) {
  *m = NULL;
  struct wg_rpc_client_call *call;
  WG_RETURN_NOT_OK(unary_start(c, method, req, &call, err, grpc));
  grpc_byte_buffer *bb = NULL;
  int rc = wg_rpc_client_call_recv(call, &bb);
  if (rc == 0 && bb != NULL) rc = wg_flight_unpack(type, bb, m, err);
  if (bb != NULL) grpc_byte_buffer_destroy(bb);
  bool empty = rc == 0 && *m == NULL;
  rc = finish(call, rc, false, err, grpc);
  wg_rpc_client_call_destroy(call);
  if (rc == 0 && empty) {
    rc = wg_error_set(err, EPROTO, "%s answered OK without a message", method);
    *grpc = local_code(rc);
  }
  if (rc != 0 && *m != NULL) {
    protobuf_c_message_free_unpacked(*m, NULL);
    *m = NULL;
  }
  return rc;
}

int wg__client_flight_info(struct wg_client *c, const char *schema_name, const char *table,
                           const char *sql, struct wg_client_info *out, struct wg_error *err,
                           int *grpc) {
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  char *path[2];
  describe(&d, path, schema_name, table, sql);
  ProtobufCMessage *m;
  WG_RETURN_NOT_OK(unary_call(c, "GetFlightInfo", &d.base,
                              &arrow__flight__protocol__flight_info__descriptor, &m, err, grpc));
  int rc = info_from_message((const Arrow__Flight__Protocol__FlightInfo *)m, out, err);
  *grpc = local_code(rc);
  protobuf_c_message_free_unpacked(m, NULL);
  return rc;
}

int wg_client_flight_info(struct wg_client *c, const char *schema_name, const char *table,
                          const char *sql, struct wg_client_info *out, struct wg_error *err) {
  int grpc;
  return wg__client_flight_info(c, schema_name, table, sql, out, err, &grpc);
}

int wg__client_get_schema(struct wg_client *c, const char *schema_name, const char *table,
                          const char *sql, struct ArrowSchema *out, struct wg_error *err,
                          int *grpc) {
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  char *path[2];
  describe(&d, path, schema_name, table, sql);
  ProtobufCMessage *m;
  WG_RETURN_NOT_OK(unary_call(c, "GetSchema", &d.base,
                              &arrow__flight__protocol__schema_result__descriptor, &m, err, grpc));
  const Arrow__Flight__Protocol__SchemaResult *r = (const Arrow__Flight__Protocol__SchemaResult *)m;
  struct wg_bytes sb = {r->schema.data, (int64_t)r->schema.len};
  int rc = wg_flight_schema_parse(sb, out, err);
  *grpc = local_code(rc);
  protobuf_c_message_free_unpacked(m, NULL);
  return rc;
}

int wg__client_handshake(struct wg_client *c, int64_t timeout_ms, struct wg_error *err, int *grpc) {
  Arrow__Flight__Protocol__HandshakeRequest h = ARROW__FLIGHT__PROTOCOL__HANDSHAKE_REQUEST__INIT;
  struct wg_rpc_client_call *call;
  WG_RETURN_NOT_OK(unary_start_ex(c, "Handshake", timeout_ms, &h.base, &call, err, grpc));
  for (int i = 0; i < 64; i++) { /* the answers do not matter, only that the server answers */
    grpc_byte_buffer *bb = NULL;
    if (wg_rpc_client_call_recv(call, &bb) != 0 || bb == NULL) break;
    grpc_byte_buffer_destroy(bb);
  }
  int rc = finish(call, 0, false, err, grpc);
  wg_rpc_client_call_destroy(call);
  return rc;
}

void wg__table_info_free(struct wg_table_info *t, int64_t n) {
  for (int64_t i = 0; t != NULL && i < n; i++) {
    free(t[i].schema_name);
    free(t[i].table_name);
    wg_schema_release(&t[i].schema);
  }
  free(t);
}

int wg__client_list_tables(struct wg_client *c, const char *filter, struct wg_table_info **out,
                           int64_t *n, struct wg_error *err, int *grpc) {
  Arrow__Flight__Protocol__Criteria cr = ARROW__FLIGHT__PROTOCOL__CRITERIA__INIT;
  cr.expression.data = (uint8_t *)filter;
  cr.expression.len = filter ? strlen(filter) : 0;
  *out = NULL;
  *n = 0;
  struct wg_rpc_client_call *call;
  WG_RETURN_NOT_OK(unary_start(c, "ListFlights", &cr.base, &call, err, grpc));
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
      struct wg_table_info *grown = realloc(*out, (size_t)cap * sizeof(**out));
      if (grown == NULL)
        rc = wg_error_set(err, ENOMEM, "out of memory for %lld tables", (long long)cap);
      else
        *out = grown;
    }
    struct wg_client_info info;
    if (rc == 0) rc = info_from_message(fi, &info, err);
    if (rc == 0) {
      struct wg_table_info *t = &(*out)[(*n)++];
      memset(t, 0, sizeof(*t));
      const Arrow__Flight__Protocol__FlightDescriptor *d = fi->flight_descriptor;
      t->schema_name = strdup(d && d->n_path == 2 ? d->path[0] : "main");
      t->table_name = strdup(d && d->n_path > 0 ? d->path[d->n_path - 1] : "");
      t->rows = info.total_records;
      wg_schema_move(&info.schema, &t->schema);
      wg_client_info_reset(&info);
      if (t->schema_name == NULL || t->table_name == NULL)
        rc = wg_error_set(err, ENOMEM, "out of memory for table names");
    }
    protobuf_c_message_free_unpacked(m, NULL);
    if (rc != 0) break;
  }
  if (rc != 0) wg_rpc_client_call_cancel(call);
  rc = finish(call, rc, true, err, grpc);
  wg_rpc_client_call_destroy(call);
  if (rc != 0) {
    wg__table_info_free(*out, *n);
    *out = NULL;
    *n = 0;
  }
  return rc;
}

int wg_client_list_tables(struct wg_client *c, const char *filter, struct wg_client_table **out,
                          int64_t *n, struct wg_error *err) {
  struct wg_table_info *t;
  int grpc;
  *out = NULL;
  WG_RETURN_NOT_OK(wg__client_list_tables(c, filter, &t, n, err, &grpc));
  *out = calloc(*n > 0 ? (size_t)*n : 1, sizeof(**out));
  if (*out == NULL) {
    wg__table_info_free(t, *n);
    *n = 0;
    return wg_error_set(err, ENOMEM, "out of memory for the table list");
  }
  for (int64_t i = 0; i < *n; i++) {
    (*out)[i].schema_name = t[i].schema_name;
    (*out)[i].table_name = t[i].table_name;
    (*out)[i].rows = t[i].rows;
    wg_schema_move(&t[i].schema, &(*out)[i].schema);
  }
  free(t);
  return 0;
}

void wg_client_tables_free(struct wg_client_table *t, int64_t n) {
  for (int64_t i = 0; t != NULL && i < n; i++) {
    free(t[i].schema_name);
    free(t[i].table_name);
    wg_schema_release(&t[i].schema);
  }
  free(t);
}
