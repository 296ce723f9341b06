/* wigeon: DoPut from an ArrowArrayStream (wg_put, wg_put_idempotent; wg__client_put_cmd with a
 * Flight SQL command as descriptor, for fsql.c). The batches go out as
 * gRPC slices over their own buffers (zero copy: each slice holds a reference that releases the
 * batch); the server's PutResults come back after its COMMIT and are read with a small JSON scan
 * of its flat acknowledgement object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/array.h"
#include "arrow/ipc.h"
#include "client/internal.h"
#include "common/buf.h"

/* ---- the acknowledgement's JSON ---- */

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

/* "key": true */
static bool json_true(const uint8_t *p, size_t len, const char *key) {
  size_t j = json_find(p, len, key);
  return j + 4 <= len && memcmp(p + j, "true", 4) == 0;
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

/* ---- the put ---- */

struct put {
  struct wg_ipc_encoder *enc;
  struct wg_ipc_encoded *msgs; /* room for the most messages one batch encodes to */
  int64_t max;
  uint8_t *descriptor; /* the packed FlightDescriptor, sent with the first message */
  size_t descriptor_len;
  struct wg_rpc_client_call *call;
  /* the error is ours (input, encoding, memory): we cancel and it is the one reported; otherwise
   * a failed send means the server ended the call, and its status says why */
  bool ours;
};

static void release_array(void *ctx) {
  struct ArrowArray *a = ctx;
  wg_array_release(a);
  free(a);
}

static int send_encoded(struct put *p, struct wg_bytes descriptor, struct wg_bytes app_metadata,
                        int64_t n, struct wg_shared *keep, struct wg_error *err) {
  struct wg_bytes none = {NULL, 0};
  for (int64_t i = 0; i < n; i++) {
    grpc_byte_buffer *bb;
    WG_RETURN_NOT_OK(wg_flight_data_encode(i == 0 ? descriptor : none, &p->msgs[i],
                                           i == 0 ? app_metadata : none, keep, &bb, err));
    int rc = wg_rpc_client_call_send(p->call, bb);
    if (rc != 0) return wg_error_set(err, rc, "the server ended the put");
  }
  return 0;
}

/* The encoder from the input's schema (none when in is NULL), the descriptor (a CMD of cmd's
 * bytes, or PATH [schema,] table when cmd is NULL), the messages. */
static int put_prepare(struct put *p, const char *schema_name, const char *table,
                       const struct wg_bytes *cmd, struct ArrowArrayStream *in,
                       struct wg_error *err) {
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  char *path[2] = {(char *)schema_name, (char *)table};
  if (cmd != NULL) {
    d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
    d.cmd.data = (uint8_t *)cmd->data;
    d.cmd.len = (size_t)cmd->size;
  } else {
    d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__PATH;
    d.n_path = schema_name ? 2 : 1;
    d.path = schema_name ? path : path + 1;
  }
  p->descriptor_len = arrow__flight__protocol__flight_descriptor__get_packed_size(&d);
  p->descriptor = malloc(p->descriptor_len ? p->descriptor_len : 1);
  if (p->descriptor == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  arrow__flight__protocol__flight_descriptor__pack(&d, p->descriptor);
  if (in == NULL) return 0;
  struct ArrowSchema schema;
  int rc = in->get_schema(in, &schema);
  if (rc != 0) {
    const char *m = in->get_last_error(in);
    return wg_error_set(err, rc, "input stream: %s", m ? m : "cannot read its schema");
  }
  rc = wg_ipc_encoder_create(&p->enc, &schema, NULL, err);
  wg_schema_release(&schema);
  WG_RETURN_NOT_OK(rc);
  p->max = wg_ipc_encoder_max_messages(p->enc);
  p->msgs = calloc((size_t)p->max, sizeof(*p->msgs));
  if (p->msgs == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  for (int64_t i = 0; i < p->max; i++)
    wg_ipc_encoded_init(&p->msgs[i]);
  return 0;
}

/* The schema message (with the descriptor and the key's app_metadata), then every batch. */
static int put_send(struct put *p, const char *idempotency_key, struct ArrowArrayStream *in,
                    struct wg_error *err) {
  struct wg_bytes desc = {p->descriptor, (int64_t)p->descriptor_len};
  struct wg_bytes none = {NULL, 0};
  if (in == NULL) { /* a command alone: one message holding only the descriptor */
    grpc_byte_buffer *bb;
    WG_RETURN_NOT_OK(wg_flight_data_encode(desc, NULL, none, NULL, &bb, err));
    int rc = wg_rpc_client_call_send(p->call, bb);
    p->ours = rc != EPIPE;
    return rc != 0 ? wg_error_set(err, rc, "the server ended the put") : 0;
  }
  struct wg_buf keymd;
  wg_buf_init(&keymd);
  int rc = 0;
  if (idempotency_key != NULL && key_metadata(&keymd, idempotency_key) != 0)
    rc = wg_error_set(err, ENOMEM, "out of memory");
  if (rc == 0) rc = wg_ipc_encoder_schema(p->enc, &p->msgs[0], err);
  if (rc == 0) {
    rc = send_encoded(p, desc, (struct wg_bytes){keymd.data, keymd.size}, 1, NULL, err);
    p->ours = rc != EPIPE;
  }
  wg_buf_reset(&keymd);
  while (rc == 0) {
    struct ArrowArray *batch = malloc(sizeof(*batch));
    if (batch == NULL) return wg_error_set(err, ENOMEM, "out of memory");
    rc = in->get_next(in, batch);
    if (rc != 0) {
      const char *m = in->get_last_error(in);
      wg_error_set(err, rc, "input stream: %s", m ? m : "read failed");
      free(batch);
      return rc;
    }
    if (batch->release == NULL) {
      free(batch);
      return 0;
    }
    int64_t n = 0;
    rc = wg_ipc_encoder_batch(p->enc, batch, p->msgs, &n, err);
    struct wg_shared *keep = rc == 0 ? wg_shared_wrap(NULL, 0, release_array, batch) : NULL;
    if (keep == NULL) {
      release_array(batch);
      return rc != 0 ? rc : wg_error_set(err, ENOMEM, "out of memory");
    }
    rc = send_encoded(p, desc, none, n, keep, err);
    p->ours = rc != EPIPE;
    wg_shared_unref(keep);
  }
  return rc;
}

/* The acknowledgements: one PutResult per commit; returns the rows they sum to. */
static int64_t put_acks(struct put *p, wg_put_ack_fn on_ack, void *ack_ctx) {
  int64_t total = 0;
  for (int guard = 0; guard < 1000000; guard++) {
    grpc_byte_buffer *bb = NULL;
    if (wg_rpc_client_call_recv(p->call, &bb) != 0 || bb == NULL) break;
    ProtobufCMessage *m = NULL;
    if (wg_flight_unpack(&arrow__flight__protocol__put_result__descriptor, bb, &m, NULL) == 0) {
      const ProtobufCBinaryData *md = &((Arrow__Flight__Protocol__PutResult *)m)->app_metadata;
      struct wg_put_ack ack = {json_int(md->data, md->len, "rows"), "", md->data, md->len,
                               json_true(md->data, md->len, "duplicate")};
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
  return total;
}

/* The one put: consumes `in` (may be NULL with cmd) on every path. */
static int put_stream(struct wg_client *c, const char *schema_name, const char *table,
                      const struct wg_bytes *cmd, const char *idempotency_key,
                      struct ArrowArrayStream *in, wg_put_ack_fn on_ack, void *ack_ctx,
                      int64_t *rows, struct wg_status *status) {
  struct put p = {.ours = true};
  struct wg_error err = {""};
  int grpc = 0;
  int64_t total = 0;
  int rc = put_prepare(&p, schema_name, table, cmd, in, &err);
  if (rc == 0) rc = wg__client_start(c, "DoPut", wg__client_timeout(c), &p.call, &err);
  if (rc == 0) rc = put_send(&p, idempotency_key, in, &err);
  if (p.call != NULL) {
    if (rc != 0 && p.ours) wg_rpc_client_call_cancel(p.call);
    if (rc == 0) rc = wg_rpc_client_call_close_send(p.call);
    if (rc == 0) total = put_acks(&p, on_ack, ack_ctx);
    rc = wg__client_finish(p.call, rc, p.ours, &err, &grpc);
    wg_rpc_client_call_destroy(p.call);
  }
  if (rows != NULL) *rows = total;
  for (int64_t i = 0; i < p.max && p.msgs; i++)
    wg_ipc_encoded_reset(&p.msgs[i]);
  free(p.msgs);
  free(p.descriptor);
  wg_ipc_encoder_destroy(p.enc);
  wg_stream_release(in);
  return wg__status_set(status, rc, grpc, err.message);
}

int wg_put(wg_client *client, const char *schema_name, const char *table,
           struct ArrowArrayStream *in, wg_put_ack_fn on_ack, void *ack_ctx, int64_t *rows,
           struct wg_status *status) {
  if (rows != NULL) *rows = 0;
  if (in == NULL || in->release == NULL)
    return wg__status_invalid(status, "wg_put needs an input stream");
  if (client == NULL || table == NULL || table[0] == '\0') {
    wg_stream_release(in);
    return wg__status_invalid(status, "wg_put needs a client and a table name");
  }
  return put_stream(client, schema_name, table, NULL, NULL, in, on_ack, ack_ctx, rows, status);
}

int wg_put_idempotent(wg_client *client, const char *schema_name, const char *table,
                      const char *idempotency_key, struct ArrowArrayStream *in,
                      wg_put_ack_fn on_ack, void *ack_ctx, int64_t *rows,
                      struct wg_status *status) {
  if (rows != NULL) *rows = 0;
  if (in == NULL || in->release == NULL)
    return wg__status_invalid(status, "wg_put_idempotent needs an input stream");
  if (client == NULL || table == NULL || table[0] == '\0' || idempotency_key == NULL ||
      idempotency_key[0] == '\0') {
    wg_stream_release(in);
    return wg__status_invalid(status, "wg_put_idempotent needs a client, a table name and a key");
  }
  return put_stream(client, schema_name, table, NULL, idempotency_key, in, on_ack, ack_ctx, rows,
                    status);
}

int wg__client_put_cmd(struct wg_client *c, const void *cmd, size_t cmd_len,
                       struct ArrowArrayStream *in, wg_put_ack_fn on_ack, void *ack_ctx,
                       struct wg_status *status) {
  struct wg_bytes b = {cmd, (int64_t)cmd_len};
  return put_stream(c, NULL, NULL, &b, NULL, in, on_ack, ack_ctx, NULL, status);
}
