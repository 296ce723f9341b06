/* wigeon: DoExchange (wg_exchange): a command (SQL over the relation `input`) and an input
 * stream go to the server, its result comes back as an ArrowArrayStream. A sender thread of the
 * exchange's own pulls the input and sends it (descriptor and schema first, then each batch as
 * gRPC slices over its own buffers, then the half-close) while the caller reads the result on its
 * thread: the server may answer before it has read all of the input. The rpc client allows one
 * send and one receive at once on two threads. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/array.h"
#include "arrow/ipc.h"
#include "client/internal.h"

struct exchange {
  struct wg_rpc_client_call *call;
  struct wg_ipc_decoder *dec; /* the result's */
  /* the sender's: input, encoder, descriptor; its outcome once joined */
  struct ArrowArrayStream in;
  struct wg_ipc_encoder *enc;
  struct wg_ipc_encoded *msgs;
  int64_t max;
  uint8_t *descriptor;
  size_t descriptor_len;
  pthread_t sender;
  bool sender_started, sender_joined;
  int send_rc;   /* ours (input, encoding, memory): the call was cancelled for it */
  bool send_ours;
  struct wg_error send_err;
  /* the reader's */
  bool done;
  int status, grpc;
  struct wg_error err;
};

static void release_array(void *ctx) {
  struct ArrowArray *a = ctx;
  wg_array_release(a);
  free(a);
}

/* Sends n encoded messages, the first with the descriptor when desc is set. EPIPE: the server
 * ended the call (its status says why). */
static int send_msgs(struct exchange *x, bool desc, int64_t n, struct wg_shared *keep,
                     struct wg_error *err) {
  struct wg_bytes none = {NULL, 0};
  struct wg_bytes d = {x->descriptor, (int64_t)x->descriptor_len};
  for (int64_t i = 0; i < n; i++) {
    grpc_byte_buffer *bb;
    WG_RETURN_NOT_OK(wg_flight_data_encode(desc && i == 0 ? d : none, &x->msgs[i], none, keep,
                                           &bb, err));
    int rc = wg_rpc_client_call_send(x->call, bb);
    if (rc != 0) return rc;
  }
  return 0;
}

static int send_all(struct exchange *x, struct wg_error *err) {
  WG_RETURN_NOT_OK(wg_ipc_encoder_schema(x->enc, &x->msgs[0], err));
  int rc = send_msgs(x, true, 1, NULL, err);
  while (rc == 0) {
    struct ArrowArray *batch = malloc(sizeof(*batch));
    if (batch == NULL) return wg_error_set(err, ENOMEM, "out of memory");
    rc = x->in.get_next(&x->in, batch);
    if (rc != 0) {
      const char *m = x->in.get_last_error(&x->in);
      free(batch);
      return wg_error_set(err, rc, "input stream: %s", m ? m : "read failed");
    }
    if (batch->release == NULL) {
      free(batch);
      return wg_rpc_client_call_close_send(x->call);
    }
    int64_t n = 0;
    rc = wg_ipc_encoder_batch(x->enc, batch, x->msgs, &n, err);
    struct wg_shared *keep = rc == 0 ? wg_shared_wrap(NULL, 0, release_array, batch) : NULL;
    if (keep == NULL) {
      release_array(batch);
      return rc != 0 ? rc : wg_error_set(err, ENOMEM, "out of memory");
    }
    rc = send_msgs(x, false, n, keep, err);
    wg_shared_unref(keep);
  }
  return rc;
}

static void *sender_main(void *arg) {
  struct exchange *x = arg;
  int rc = send_all(x, &x->send_err);
  x->send_ours = rc != 0 && rc != EPIPE;
  x->send_rc = x->send_ours ? rc : 0;
  if (x->send_ours) wg_rpc_client_call_cancel(x->call); /* the server must not see a cut input
                                                           as its end */
  wg_stream_release(&x->in);
  return NULL;
}

static void sender_join(struct exchange *x) {
  if (!x->sender_started || x->sender_joined) return;
  pthread_join(x->sender, NULL);
  x->sender_joined = true;
}

/* The end of the result (or a broken read rc): the sender's error if it was ours, else the
 * server's status. */
static int exchange_end(struct exchange *x, int rc) {
  x->done = true;
  sender_join(x);
  if (x->send_ours) {
    x->status = wg_error_set(&x->err, x->send_rc, "%s", x->send_err.message);
    wg__client_finish(x->call, rc, false, &(struct wg_error){""}, &(int){0});
    x->grpc = wg__local_code(x->status);
    return x->status;
  }
  x->status = wg__client_finish(x->call, rc, false, &x->err, &x->grpc);
  if (x->status == 0 && !wg_ipc_decoder_has_schema(x->dec)) {
    x->status = wg_error_set(&x->err, EPROTO, "DoExchange ended without a schema");
    x->grpc = wg__local_code(x->status);
  }
  return x->status;
}

static int exchange_pump(struct exchange *x, struct ArrowArray *out, bool want_schema) {
  out->release = NULL;
  while (x->status == 0 && !x->done) {
    if (want_schema && wg_ipc_decoder_has_schema(x->dec)) return 0;
    grpc_byte_buffer *bb = NULL;
    int rc = wg_rpc_client_call_recv(x->call, &bb);
    if (rc != 0 || bb == NULL) return exchange_end(x, rc);
    struct wg_flight_data fd = {0};
    rc = wg_flight_data_decode(bb, &fd, &x->err);
    grpc_byte_buffer_destroy(bb);
    enum wg_ipc_message_type type = WG_IPC_MESSAGE_NONE;
    if (rc == 0 && fd.data_header.size > 0)
      rc = wg_ipc_decoder_decode(x->dec, fd.data_header, fd.body, &type, out, &x->err);
    wg_flight_data_reset(&fd);
    if (rc != 0) {
      wg_rpc_client_call_cancel(x->call);
      x->done = true;
      x->status = rc;
      x->grpc = wg__local_code(rc);
      return rc;
    }
    if (type == WG_IPC_MESSAGE_RECORD_BATCH) return 0;
  }
  return x->status;
}

static int exchange_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct exchange *x = s->private_data;
  struct ArrowArray none;
  int rc = exchange_pump(x, &none, true);
  if (rc != 0) return rc;
  if (wg_ipc_decoder_schema(x->dec, out, &x->err) == 0) return 0;
  x->status = EPROTO;
  x->grpc = wg__local_code(EPROTO);
  return EPROTO;
}

static int exchange_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  return exchange_pump(s->private_data, out, false);
}

static const char *exchange_last_error(struct ArrowArrayStream *s) {
  struct exchange *x = s->private_data;
  return x->status != 0 ? x->err.message : NULL;
}

static void exchange_free(struct exchange *x) {
  if (x->call != NULL && !x->done) wg_rpc_client_call_cancel(x->call); /* unblocks the sender */
  sender_join(x);
  wg_rpc_client_call_destroy(x->call);
  wg_ipc_decoder_destroy(x->dec);
  for (int64_t i = 0; i < x->max && x->msgs; i++)
    wg_ipc_encoded_reset(&x->msgs[i]);
  free(x->msgs);
  wg_ipc_encoder_destroy(x->enc);
  free(x->descriptor);
  wg_stream_release(&x->in);
  free(x);
}

static void exchange_release(struct ArrowArrayStream *s) {
  exchange_free(s->private_data);
  s->private_data = NULL;
  s->release = NULL;
}

/* The descriptor (CMD of the command's bytes) and the encoder of the input's schema. */
static int exchange_prepare(struct exchange *x, const char *command, struct wg_error *err) {
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
  d.cmd.data = (uint8_t *)command;
  d.cmd.len = strlen(command);
  x->descriptor_len = arrow__flight__protocol__flight_descriptor__get_packed_size(&d);
  x->descriptor = malloc(x->descriptor_len ? x->descriptor_len : 1);
  if (x->descriptor == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  arrow__flight__protocol__flight_descriptor__pack(&d, x->descriptor);
  struct ArrowSchema schema;
  int rc = x->in.get_schema(&x->in, &schema);
  if (rc != 0) {
    const char *m = x->in.get_last_error(&x->in);
    return wg_error_set(err, rc, "input stream: %s", m ? m : "cannot read its schema");
  }
  rc = wg_ipc_encoder_create(&x->enc, &schema, NULL, err);
  wg_schema_release(&schema);
  WG_RETURN_NOT_OK(rc);
  x->max = wg_ipc_encoder_max_messages(x->enc);
  x->msgs = calloc((size_t)x->max, sizeof(*x->msgs));
  if (x->msgs == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  for (int64_t i = 0; i < x->max; i++)
    wg_ipc_encoded_init(&x->msgs[i]);
  return wg_ipc_decoder_create(&x->dec, NULL, err);
}

int wg_exchange(wg_client *client, const char *command, struct ArrowArrayStream *in,
                struct ArrowArrayStream *out, struct wg_status *status) {
  if (in == NULL || in->release == NULL)
    return wg__status_invalid(status, "wg_exchange needs an input stream");
  if (client == NULL || command == NULL || command[0] == '\0' || out == NULL) {
    wg_stream_release(in);
    return wg__status_invalid(status, "wg_exchange needs a client, a command and an output "
                                      "stream");
  }
  struct wg_error err = {""};
  struct exchange *x = calloc(1, sizeof(*x));
  if (x == NULL) {
    wg_stream_release(in);
    return wg__status_set(status, ENOMEM, 0, "out of memory");
  }
  x->in = *in;
  in->release = NULL;
  int rc = exchange_prepare(x, command, &err);
  if (rc == 0) rc = wg__client_start(client, "DoExchange", wg__client_timeout(client), &x->call,
                                     &err);
  if (rc == 0) {
    rc = pthread_create(&x->sender, NULL, sender_main, x);
    if (rc != 0) rc = wg_error_set(&err, rc, "cannot start the exchange's sender thread");
    x->sender_started = rc == 0;
  }
  if (rc != 0) {
    exchange_free(x);
    return wg__status_set(status, rc, 0, err.message);
  }
  memset(out, 0, sizeof(*out));
  out->get_schema = exchange_get_schema;
  out->get_next = exchange_get_next;
  out->get_last_error = exchange_last_error;
  out->release = exchange_release;
  out->private_data = x;
  return wg__status_set(status, 0, 0, NULL);
}

int wg__exchange_status(struct ArrowArrayStream *stream, struct wg_status *status) {
  if (stream == NULL || stream->release != exchange_release) return -1;
  struct exchange *x = stream->private_data;
  return wg__status_set(status, x->status, x->grpc, x->err.message);
}
