/* wigeon: IPC stream framing and an ArrowArrayStream over a whole stream in memory. Framing:
 * [0xFFFFFFFF] int32 metadata length, metadata (flatbuffer Message), body of bodyLength bytes;
 * length 0 ends the stream. Bodies are slices of the input (a wg_shared referencing it). */
#include <stdlib.h>
#include <string.h>

#include "arrow/ipc_internal.h"

int wg_ipc_frame_next(struct wg_bytes data, int64_t *pos, struct wg_bytes *metadata,
                      int64_t *body_length, struct wg_error *err) {
  int64_t p = *pos;
  if (p < 0 || p > data.size) return wg_error_set(err, EINVAL, "position %lld", (long long)p);
  if (p == data.size) return ENODATA; /* a stream may end without the marker */
  if (data.size - p < 4) return wg_error_set(err, ESPIPE, "stream ends inside a message prefix");
  int32_t len = wg_load_i32(data.data + p);
  p += 4;
  if (len == -1) { /* continuation marker, then the length */
    if (data.size - p < 4) return wg_error_set(err, ESPIPE, "stream ends inside a message prefix");
    len = wg_load_i32(data.data + p);
    p += 4;
  }
  if (len == 0) {
    *pos = p;
    return ENODATA;
  }
  if (len < 0)
    return wg_error_set(err, EPROTO, "message metadata length %d at offset %lld", len,
                        (long long)*pos);
  if (len > data.size - p)
    return wg_error_set(err, ESPIPE, "message metadata of %d bytes at %lld passes the end (%lld)",
                        len, (long long)p, (long long)data.size);
  metadata->data = data.data + p;
  metadata->size = len;
  enum wg_ipc_message_type type;
  WG_RETURN_NOT_OK(wg_ipc_message_peek(*metadata, &type, body_length, err));
  *pos = p + len;
  return 0;
}

/* ---- ArrowArrayStream over bytes ---- */

struct stream_reader {
  struct wg_shared *data;
  int64_t pos;
  struct wg_ipc_decoder *dec;
  bool started, done;
  int last_rc;
  struct wg_error err;
};

static void unref_parent(void *ctx) {
  wg_shared_unref(ctx);
}

/* Reads messages until a record batch (into out) or the end (out released). */
static int reader_next_message(struct stream_reader *r, struct ArrowArray *out) {
  struct wg_bytes all = {r->data->data, r->data->size};
  out->release = NULL;
  for (;;) {
    if (r->done) return 0;
    struct wg_bytes metadata;
    int64_t body_length;
    int rc = wg_ipc_frame_next(all, &r->pos, &metadata, &body_length, &r->err);
    if (rc == ENODATA) {
      r->done = true;
      return 0;
    }
    if (rc == ESPIPE) rc = EPROTO; /* a whole stream cannot "need more bytes" */
    if (rc != 0) return rc;
    if (body_length > all.size - r->pos)
      return wg_error_set(&r->err, EPROTO,
                          "message body of %lld bytes at %lld passes the end (%lld)",
                          (long long)body_length, (long long)r->pos, (long long)all.size);
    struct wg_shared *body = NULL;
    if (body_length > 0) {
      body = wg_shared_wrap(all.data + r->pos, body_length, unref_parent, r->data);
      if (body == NULL) return wg_error_set(&r->err, ENOMEM, "out of memory");
      wg_shared_ref(r->data);
    }
    r->pos += body_length;
    enum wg_ipc_message_type type;
    rc = wg_ipc_decoder_decode(r->dec, metadata, body, &type, out, &r->err);
    wg_shared_unref(body);
    if (rc != 0) return rc;
    if (!r->started && type != WG_IPC_MESSAGE_SCHEMA)
      return wg_error_set(&r->err, EPROTO, "stream does not start with a Schema message");
    r->started = true;
    if (type == WG_IPC_MESSAGE_RECORD_BATCH) return 0;
  }
}

static int reader_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct stream_reader *r = s->private_data;
  if (r->last_rc != 0) return r->last_rc;
  if (!wg_ipc_decoder_has_schema(r->dec)) {
    /* Read just the first message, which must be the schema. */
    struct wg_bytes all = {r->data->data, r->data->size}, metadata;
    int64_t body_length;
    int rc = wg_ipc_frame_next(all, &r->pos, &metadata, &body_length, &r->err);
    if (rc == ENODATA) rc = wg_error_set(&r->err, EPROTO, "stream holds no Schema message");
    if (rc == ESPIPE) rc = EPROTO;
    if (rc == 0 && body_length > all.size - r->pos)
      rc = wg_error_set(&r->err, EPROTO, "schema message body passes the end of the stream");
    enum wg_ipc_message_type type = WG_IPC_MESSAGE_NONE;
    if (rc == 0) rc = wg_ipc_message_peek(metadata, &type, &body_length, &r->err);
    if (rc == 0 && type != WG_IPC_MESSAGE_SCHEMA)
      rc = wg_error_set(&r->err, EPROTO, "stream does not start with a Schema message");
    if (rc == 0) {
      struct ArrowArray unused; /* not written for a schema */
      r->pos += body_length;
      rc = wg_ipc_decoder_decode(r->dec, metadata, NULL, &type, &unused, &r->err);
    }
    if (rc != 0) {
      r->last_rc = rc;
      return rc;
    }
    r->started = true;
  }
  int rc = wg_ipc_decoder_schema(r->dec, out, &r->err);
  if (rc != 0) r->last_rc = rc;
  return rc;
}

static int reader_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct stream_reader *r = s->private_data;
  out->release = NULL;
  if (r->last_rc != 0) return r->last_rc;
  if (!wg_ipc_decoder_has_schema(r->dec)) {
    struct ArrowSchema schema;
    int rc = reader_get_schema(s, &schema);
    if (rc != 0) return rc;
    wg_schema_release(&schema);
  }
  int rc = reader_next_message(r, out);
  if (rc != 0) r->last_rc = rc;
  return rc;
}

static const char *reader_last_error(struct ArrowArrayStream *s) {
  struct stream_reader *r = s->private_data;
  return r->last_rc != 0 ? r->err.message : NULL;
}

static void reader_release(struct ArrowArrayStream *s) {
  struct stream_reader *r = s->private_data;
  wg_ipc_decoder_destroy(r->dec);
  wg_shared_unref(r->data);
  free(r);
  s->release = NULL;
}

int wg_ipc_stream_reader_init(struct ArrowArrayStream *out, struct wg_shared *data,
                              const struct wg_ipc_limits *limits) {
  memset(out, 0, sizeof(*out));
  struct stream_reader *r = calloc(1, sizeof(*r));
  if (r == NULL) return ENOMEM;
  if (wg_ipc_decoder_create(&r->dec, limits, NULL) != 0) {
    free(r);
    return ENOMEM;
  }
  r->data = wg_shared_ref(data);
  out->get_schema = reader_get_schema;
  out->get_next = reader_get_next;
  out->get_last_error = reader_last_error;
  out->release = reader_release;
  out->private_data = r;
  return 0;
}
