/* wigeon: what Flight SQL's handlers share (declared in fsql.h): the put stream a DoPut handler
 * reads its batches from, google.protobuf.Any packing, action bodies and results, PutResults, and
 * the owner of a call. Calls nothing else of Flight SQL's files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/fsql.h"

/* ---- the put stream --------------------------------------------------------------------------- */
void wg__put_stream_init(struct wg__put_stream *in, struct wg_server *s, struct wg_rpc_call *call,
                         struct wg_ipc_decoder *dec, const struct wg_flight_data *first) {
  *in = (struct wg__put_stream){.s = s, .call = call, .dec = dec, .first = first,
                                .pending_first = first != NULL};
}

/* Decodes one FlightData's IPC message; *batch set (release != NULL) for a record batch. */
static int put_decode(struct wg__put_stream *in, const struct wg_flight_data *fd,
                      struct ArrowArray *batch, struct wg_error *err) {
  batch->release = NULL;
  if (fd->data_header.size == 0) return 0; /* app_metadata only (or empty): nothing to decode */
  enum wg_ipc_message_type type;
  struct ArrowArray a = {0};
  int rc = wg_ipc_decoder_decode(in->dec, fd->data_header, fd->body, &type, &a, err);
  if (rc != 0) return wg_error_prefix(err, rc == ENOMEM || rc == EPROTO ? rc : EINVAL,
                                      "DoPut: bad IPC message");
  if (type == WG_IPC_MESSAGE_SCHEMA) in->have_schema = true;
  if (type == WG_IPC_MESSAGE_RECORD_BATCH) wg_array_move(&a, batch);
  return 0;
}

/* Receives and decodes until a record batch (or the end: done). */
static int put_advance(struct wg__put_stream *in, struct ArrowArray *batch, struct wg_error *err) {
  batch->release = NULL;
  if (in->pending_first) {
    in->pending_first = false;
    WG_RETURN_NOT_OK(put_decode(in, in->first, batch, err));
    if (batch->release != NULL || in->have_schema) return 0; /* a schema: for _schema, too */
  }
  while (!in->done) {
    grpc_byte_buffer *bb = NULL;
    int rc = wg_rpc_call_recv(in->call, &bb);
    if (rc != 0) return wg_rpc_call_error(in->call, rc, "DoPut", err);
    if (bb == NULL) {
      if (wg_rpc_call_cancelled(in->call))
        return wg_rpc_call_error(in->call, ECANCELED, "DoPut", err);
      in->done = true;
      break;
    }
    int64_t size = (int64_t)grpc_byte_buffer_length(bb);
    atomic_fetch_add_explicit(&in->s->stats.bytes_in, size, memory_order_relaxed);
    struct wg_flight_data fd = {0};
    rc = wg_flight_data_decode(bb, &fd, err);
    grpc_byte_buffer_destroy(bb);
    if (rc == 0) rc = put_decode(in, &fd, batch, err);
    wg_flight_data_reset(&fd);
    if (rc != 0) return rc;
    if (batch->release != NULL) return 0;
    if (in->have_schema) return 0; /* stop after a schema, for wg__put_stream_schema */
  }
  return 0;
}

int wg__put_stream_schema(struct wg__put_stream *in, struct ArrowSchema *out,
                          struct wg_error *err) {
  struct ArrowArray b = {0};
  while (!in->have_schema && !in->done) {
    WG_RETURN_NOT_OK(put_advance(in, &b, err));
    if (b.release != NULL) { /* a batch before any schema cannot be: the decoder refuses it */
      wg_array_release(&b);
      return wg_error_set(err, EINVAL, "DoPut: a record batch before the schema");
    }
  }
  if (!in->have_schema) return wg_error_set(err, ENOENT, "DoPut: the stream has no schema");
  return wg_ipc_decoder_schema(in->dec, out, err);
}

int wg__put_stream_next(struct wg__put_stream *in, struct ArrowArray *out, struct wg_error *err) {
  out->release = NULL;
  while (out->release == NULL && (!in->done || in->pending_first)) {
    WG_RETURN_NOT_OK(put_advance(in, out, err));
  }
  return 0;
}

int wg__put_stream_drain(struct wg__put_stream *in, struct wg_error *err) {
  struct ArrowArray b;
  while (!in->done || in->pending_first) {
    WG_RETURN_NOT_OK(put_advance(in, &b, err));
    wg_array_release(&b);
  }
  return 0;
}

/* ---- Any, actions, results --------------------------------------------------------------------- */
static int pack_into(const ProtobufCMessage *m, struct wg_buf *out, struct wg_error *err) {
  size_t n = protobuf_c_message_get_packed_size(m);
  WG_RETURN_NOT_OK(wg_buf_reserve(out, (int64_t)n) == 0
                       ? 0
                       : wg_error_set(err, ENOMEM, "out of memory"));
  if (n == 0) return 0; /* an empty message (CommandGetCatalogs {}): out may have no memory yet */
  protobuf_c_message_pack(m, out->data + out->size);
  out->size += (int64_t)n;
  return 0;
}

int wg__fsql_pack_any(const ProtobufCMessage *m, struct wg_buf *out, struct wg_error *err) {
  struct wg_buf value;
  wg_buf_init(&value);
  int rc = pack_into(m, &value, err);
  char url[256];
  snprintf(url, sizeof(url), "type.googleapis.com/%s", m->descriptor->name);
  if (rc == 0) {
    Arrow__Flight__Protocol__Action any = ARROW__FLIGHT__PROTOCOL__ACTION__INIT;
    any.type = url;
    any.body.data = value.data;
    any.body.len = (size_t)value.size;
    rc = pack_into(&any.base, out, err);
  }
  wg_buf_reset(&value);
  return rc;
}

int wg__fsql_action_unpack(const ProtobufCBinaryData *body, const ProtobufCMessageDescriptor *d,
                           bool any, const char *action, ProtobufCMessage **out,
                           struct wg_error *err) {
  *out = NULL;
  const uint8_t *data = body->data;
  size_t len = body->len;
  Arrow__Flight__Protocol__Action *a = NULL;
  if (any) {
    a = arrow__flight__protocol__action__unpack(NULL, len, data);
    char url[256];
    snprintf(url, sizeof(url), "type.googleapis.com/%s", d->name);
    if (a == NULL || a->type == NULL || strcmp(a->type, url) != 0) {
      if (a != NULL) protobuf_c_message_free_unpacked(&a->base, NULL);
      return wg_error_set(err, EINVAL, "action %s: the body must be a google.protobuf.Any "
                                       "holding a %s", action, d->name);
    }
    data = a->body.data;
    len = a->body.len;
  }
  *out = protobuf_c_message_unpack(d, NULL, len, data);
  if (a != NULL) protobuf_c_message_free_unpacked(&a->base, NULL);
  if (*out == NULL)
    return wg_error_set(err, EINVAL, "action %s: the body is not a valid %s", action, d->name);
  /* protobuf-c cuts a string at a NUL byte (see wg__fsql_unpack): refused, not run cut short */
  if (protobuf_c_message_get_packed_size(*out) != len) {
    protobuf_c_message_free_unpacked(*out, NULL);
    *out = NULL;
    return wg_error_set(err, EINVAL, "action %s: a string of the %s holds a NUL byte (or the "
                                     "message is not encoded canonically)", action, d->name);
  }
  return 0;
}

int wg__fsql_action_result(struct wg_rpc_call *call, const ProtobufCMessage *m, bool any,
                           struct wg_error *err) {
  struct wg_buf b;
  wg_buf_init(&b);
  int rc = any ? wg__fsql_pack_any(m, &b, err) : pack_into(m, &b, err);
  if (rc == 0) {
    Arrow__Flight__Protocol__Result r = ARROW__FLIGHT__PROTOCOL__RESULT__INIT;
    r.body.data = b.data;
    r.body.len = (size_t)b.size;
    rc = wg__server_send_message(call, &r.base, err);
  }
  wg_buf_reset(&b);
  return rc;
}

int wg__fsql_put_result(struct wg_rpc_call *call, const ProtobufCMessage *m,
                        struct wg_error *err) {
  struct wg_buf b;
  wg_buf_init(&b);
  int rc = pack_into(m, &b, err);
  if (rc == 0) {
    Arrow__Flight__Protocol__PutResult r = ARROW__FLIGHT__PROTOCOL__PUT_RESULT__INIT;
    r.app_metadata.data = b.data;
    r.app_metadata.len = (size_t)b.size;
    rc = wg__server_send_message(call, &r.base, err);
  }
  wg_buf_reset(&b);
  return rc;
}

const char *wg__fsql_owner(const struct wg_rpc_call *call, char *buf, size_t n) {
  const char *peer = call != NULL ? wg_rpc_call_peer(call) : NULL;
  snprintf(buf, n, "%s", peer != NULL ? peer : "");
  return buf;
}
