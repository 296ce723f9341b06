/* wigeon: the gRPC client on the core C API (grpc/grpc.h 1.51). A channel per target; each call
 * gets its own pluck completion queue, and every blocking operation starts one batch and plucks its
 * own tag, so a sending thread and a receiving thread can work on one call at once (at most two
 * pluckers, under gRPC's limit of six). */
#include "rpc/rpc.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

/* Life of a client call:
 *
 *   STARTED --send*--> ... --close_send--> HALF_CLOSED --recv* (NULL at end)--> FINISHED --> freed
 *      \                                                                          ^
 *       +--------------- cancel / deadline / server status: recv gives NULL ------+
 *
 *   transition                 -> function (caller's threads)
 *   -> STARTED                 -> wg_rpc_client_call_start (initial metadata sent and accepted)
 *   send side                  -> wg_rpc_client_call_send, wg_rpc_client_call_close_send
 *   receive side               -> wg_rpc_client_call_recv (the first also takes the server's
 *                                 initial metadata), wg_rpc_client_call_finish
 *   -> freed                   -> wg_rpc_client_call_destroy (cancels an unfinished call)
 * The send side (send, close_send) and the receive side (recv, then finish) may each run on their
 * own thread, one operation at a time per side; cancel runs anywhere, any time; destroy runs when
 * both sides are done. */

struct wg_rpc_channel {
  grpc_channel *channel;
};

struct wg_rpc_client_call {
  grpc_call *call;
  grpc_completion_queue *cq;
  atomic_bool initial_md_requested; /* RECV_INITIAL_METADATA rides on the first receive */
  grpc_metadata_array initial_md;
  grpc_metadata_array trailing_md;
  bool finished;
  grpc_status_code status;
  char *details;
  /* Distinct addresses used as tags. */
  char tag_start, tag_send, tag_close, tag_recv, tag_finish;
};

int wg_rpc_channel_create_tls(struct wg_rpc_channel **out, const char *target,
                              const struct wg_rpc_channel_tls *tls, struct wg_error *err) {
  if (out == NULL || target == NULL) return wg_error_set(err, EINVAL, "channel needs a target");
  *out = NULL;
  if (tls != NULL && (tls->cert_chain == NULL) != (tls->private_key == NULL))
    return wg_error_set(err, EINVAL, "a TLS client certificate needs its key, and a key its "
                                     "certificate");
  struct wg_rpc_channel *ch = calloc(1, sizeof(*ch));
  if (ch == NULL) return wg_error_set(err, ENOMEM, "out of memory for a channel");
  grpc_init();
  grpc_arg args[3];
  memset(args, 0, sizeof(args));
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = (int)WG_RPC_DEFAULT_MAX_MESSAGE_BYTES;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = (int)WG_RPC_DEFAULT_MAX_MESSAGE_BYTES;
  size_t n_args = 2;
  if (tls != NULL && tls->target_name != NULL) {
    args[2].type = GRPC_ARG_STRING;
    args[2].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
    args[2].value.string = (char *)tls->target_name;
    n_args = 3;
  }
  grpc_channel_args channel_args = {n_args, args};
  grpc_channel_credentials *creds;
  if (tls == NULL) {
    creds = grpc_insecure_credentials_create();
  } else {
    grpc_ssl_pem_key_cert_pair pair = {.private_key = tls->private_key,
                                       .cert_chain = tls->cert_chain};
    creds = grpc_ssl_credentials_create(tls->root_certs, tls->cert_chain != NULL ? &pair : NULL,
                                        NULL, NULL);
  }
  if (creds == NULL) {
    free(ch);
    grpc_shutdown();
    return wg_error_set(err, EINVAL, "gRPC refused the TLS credentials");
  }
  ch->channel = grpc_channel_create(target, creds, &channel_args); /* never NULL: lame on error */
  grpc_channel_credentials_release(creds);
  *out = ch;
  return 0;
}

int wg_rpc_channel_create(struct wg_rpc_channel **out, const char *target, struct wg_error *err) {
  return wg_rpc_channel_create_tls(out, target, NULL, err);
}

void wg_rpc_channel_destroy(struct wg_rpc_channel *ch) {
  if (ch == NULL) return;
  grpc_channel_destroy(ch->channel);
  free(ch);
  grpc_shutdown();
}


/* Starts one batch and plucks its tag: 0 when it succeeded, EPIPE when gRPC reports failure (the
 * call is over), another code when the batch could not start. */
static int run_batch(struct wg_rpc_client_call *c, const grpc_op *ops, size_t n, void *tag) {
  grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
  if (e != GRPC_CALL_OK) return wg_rpc_errno_from_call_error(e, EPIPE);
  grpc_event ev = grpc_completion_queue_pluck(c->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  return ev.type == GRPC_OP_COMPLETE && ev.success ? 0 : EPIPE;
}

int wg_rpc_client_call_start(struct wg_rpc_channel *ch, const char *method, int64_t timeout_ms,
                             const char *const *metadata, struct wg_rpc_client_call **out,
                             struct wg_error *err) {
  if (out != NULL) *out = NULL;
  if (ch == NULL || method == NULL || out == NULL) {
    return wg_error_set(err, EINVAL, "call needs a channel and a method");
  }
  size_t md_count = 0;
  if (metadata != NULL) {
    while (metadata[2 * md_count] != NULL) {
      if (metadata[2 * md_count + 1] == NULL) {
        return wg_error_set(err, EINVAL, "metadata key %s has no value", metadata[2 * md_count]);
      }
      md_count++;
    }
  }
  struct wg_rpc_client_call *c = calloc(1, sizeof(*c));
  grpc_metadata *md = md_count > 0 ? calloc(md_count, sizeof(*md)) : NULL;
  if (c == NULL || (md_count > 0 && md == NULL)) {
    free(c);
    free(md);
    return wg_error_set(err, ENOMEM, "out of memory for a call");
  }
  atomic_init(&c->initial_md_requested, false);
  grpc_metadata_array_init(&c->initial_md);
  grpc_metadata_array_init(&c->trailing_md);
  c->cq = grpc_completion_queue_create_for_pluck(NULL);
  gpr_timespec deadline = timeout_ms > 0
                              ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                             gpr_time_from_millis(timeout_ms, GPR_TIMESPAN))
                              : gpr_inf_future(GPR_CLOCK_REALTIME);
  grpc_slice method_slice = grpc_slice_from_copied_string(method);
  c->call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                     method_slice, NULL, deadline, NULL);
  grpc_slice_unref(method_slice);
  if (c->call == NULL) {
    free(md);
    wg_rpc_client_call_destroy(c);
    return wg_error_set(err, EINVAL, "cannot create a call to %s", method);
  }

  for (size_t i = 0; i < md_count; i++) {
    md[i].key = grpc_slice_from_copied_string(metadata[2 * i]);
    md[i].value = grpc_slice_from_copied_string(metadata[2 * i + 1]);
  }
  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_SEND_INITIAL_METADATA;
  op.data.send_initial_metadata.count = md_count;
  op.data.send_initial_metadata.metadata = md;
  int rc = run_batch(c, &op, 1, &c->tag_start);
  for (size_t i = 0; i < md_count; i++) {
    grpc_slice_unref(md[i].key);
    grpc_slice_unref(md[i].value);
  }
  free(md);
  /* EPIPE: the call already failed (unreachable server, deadline); finish tells the status. */
  if (rc != 0 && rc != EPIPE) {
    wg_rpc_client_call_destroy(c);
    return wg_error_set(err, rc, "cannot start a call to %s: %s", method,
                        rc == EINVAL ? "invalid metadata" : "call refused the batch");
  }
  *out = c;
  return 0;
}

int wg_rpc_client_call_send(struct wg_rpc_client_call *c, grpc_byte_buffer *msg) {
  if (c == NULL || msg == NULL) {
    if (msg != NULL) grpc_byte_buffer_destroy(msg);
    return EINVAL;
  }
  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_SEND_MESSAGE;
  op.data.send_message.send_message = msg;
  int rc = run_batch(c, &op, 1, &c->tag_send);
  grpc_byte_buffer_destroy(msg);
  return rc;
}

int wg_rpc_client_call_close_send(struct wg_rpc_client_call *c) {
  if (c == NULL) return EINVAL;
  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  return run_batch(c, &op, 1, &c->tag_close);
}

/* Adds RECV_INITIAL_METADATA to the first receive-side batch (a call takes it once). */
static size_t add_initial_md_op(struct wg_rpc_client_call *c, grpc_op *op) {
  if (atomic_exchange(&c->initial_md_requested, true)) return 0;
  op->op = GRPC_OP_RECV_INITIAL_METADATA;
  op->data.recv_initial_metadata.recv_initial_metadata = &c->initial_md;
  return 1;
}

int wg_rpc_client_call_recv(struct wg_rpc_client_call *c, grpc_byte_buffer **out) {
  if (out != NULL) *out = NULL;
  if (c == NULL || out == NULL) return EINVAL;
  if (c->finished) return 0;
  grpc_op ops[2];
  memset(ops, 0, sizeof(ops));
  size_t n = add_initial_md_op(c, &ops[0]);
  grpc_byte_buffer *bb = NULL;
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n].data.recv_message.recv_message = &bb;
  n++;
  int rc = run_batch(c, ops, n, &c->tag_recv);
  if (rc != 0 && rc != EPIPE) return rc;
  if (rc == EPIPE && bb != NULL) { /* cannot happen; never hand out a failed batch's buffer */
    grpc_byte_buffer_destroy(bb);
    bb = NULL;
  }
  *out = bb; /* NULL: the stream ended; finish says how */
  return 0;
}

static int finish_result(struct wg_rpc_client_call *c, grpc_status_code *code,
                         struct wg_error *err) {
  if (code != NULL) *code = c->status;
  int rc = wg_rpc_errno_from_status(c->status);
  if (rc == 0) {
    if (err != NULL) err->message[0] = '\0';
    return 0;
  }
  if (c->details != NULL && c->details[0] != '\0') return wg_error_set(err, rc, "%s", c->details);
  return wg_error_set(err, rc, "gRPC status %d", (int)c->status);
}

int wg_rpc_client_call_finish(struct wg_rpc_client_call *c, grpc_status_code *code,
                              struct wg_error *err) {
  if (c == NULL) return wg_error_set(err, EINVAL, "no call");
  if (c->finished) return finish_result(c, code, err);
  grpc_op ops[2];
  memset(ops, 0, sizeof(ops));
  size_t n = add_initial_md_op(c, &ops[0]);
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();
  ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[n].data.recv_status_on_client.trailing_metadata = &c->trailing_md;
  ops[n].data.recv_status_on_client.status = &status;
  ops[n].data.recv_status_on_client.status_details = &details;
  n++;
  int rc = run_batch(c, ops, n, &c->tag_finish);
  if (rc != 0 && rc != EPIPE) {
    if (code != NULL) *code = GRPC_STATUS_UNKNOWN;
    return wg_error_set(err, rc, "cannot wait for the call's status");
  }
  size_t len = GRPC_SLICE_LENGTH(details);
  c->details = malloc(len + 1);
  if (c->details != NULL) {
    if (len > 0) memcpy(c->details, GRPC_SLICE_START_PTR(details), len);
    c->details[len] = '\0';
  }
  grpc_slice_unref(details);
  c->status = status;
  c->finished = true;
  return finish_result(c, code, err);
}

void wg_rpc_client_call_cancel(struct wg_rpc_client_call *c) {
  if (c != NULL && c->call != NULL) grpc_call_cancel(c->call, NULL);
}

void wg_rpc_client_call_destroy(struct wg_rpc_client_call *c) {
  if (c == NULL) return;
  if (c->call != NULL) {
    if (!c->finished) grpc_call_cancel(c->call, NULL);
    grpc_call_unref(c->call);
  }
  if (c->cq != NULL) {
    /* Every batch was plucked by the function that started it: nothing is left to drain. */
    grpc_completion_queue_shutdown(c->cq);
    grpc_completion_queue_destroy(c->cq);
  }
  grpc_metadata_array_destroy(&c->initial_md);
  grpc_metadata_array_destroy(&c->trailing_md);
  free(c->details);
  free(c);
}

int wg_rpc_client_call_header(const struct wg_rpc_client_call *c, const char *key, char *buf,
                              size_t size) {
  if (c == NULL || key == NULL || size == 0) return EINVAL;
  size_t kn = strlen(key);
  for (size_t i = 0; i < c->initial_md.count; i++) {
    grpc_slice k = c->initial_md.metadata[i].key, v = c->initial_md.metadata[i].value;
    if (GRPC_SLICE_LENGTH(k) != kn || strncasecmp((const char *)GRPC_SLICE_START_PTR(k), key, kn))
      continue;
    size_t vn = GRPC_SLICE_LENGTH(v);
    if (vn >= size) return EMSGSIZE;
    memcpy(buf, GRPC_SLICE_START_PTR(v), vn);
    buf[vn] = '\0';
    return 0;
  }
  return ENOENT;
}
