/* wigeon: Flight control messages. protobuf-c packs and unpacks them; this file moves the bytes
 * in and out of gRPC byte buffers, and writes and reads the schema bytes that FlightInfo and
 * SchemaResult carry (an encapsulated IPC Schema message).
 * Relies on: protobuf-c (flight.pb-c.h generated at build time), gRPC byte buffers, arrow/ipc.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "arrow/array.h"
#include "common/text.h"
#include "flight/flight.h"

int wg_flight_pack(const ProtobufCMessage *m, grpc_byte_buffer **out, struct wg_error *err) {
  *out = NULL;
  if (m == NULL || m->descriptor == NULL) return wg_error_set(err, EINVAL, "no message to pack");
  size_t size = protobuf_c_message_get_packed_size(m);
  grpc_slice s = grpc_slice_malloc(size);
  size_t written = protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
  if (written != size) {
    grpc_slice_unref(s);
    return wg_error_set(err, EINVAL, "%s packed to %zu bytes, expected %zu", m->descriptor->name,
                        written, size);
  }
  *out = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return 0;
}

static bool read_varint(const uint8_t *p, size_t n, size_t *pos, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *pos < n; shift += 7) {
    uint8_t b = p[(*pos)++];
    *v |= (uint64_t)(b & 0x7F) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

/* protobuf-c keeps a string up to its first NUL and does not check UTF-8, so the path elements
 * (field 3, the names of tables) are checked on the wire bytes. Malformed framing is left to
 * protobuf-c, which refuses it. */
int wg_flight_descriptor_check(const uint8_t *data, size_t len, struct wg_error *err) {
  size_t pos = 0;
  for (int64_t element = 0; pos < len;) {
    uint64_t tag, v;
    if (!read_varint(data, len, &pos, &tag)) return 0;
    switch (tag & 7) {
    case 0:
      if (!read_varint(data, len, &pos, &v)) return 0;
      break;
    case 1:
      pos += 8;
      break;
    case 5:
      pos += 4;
      break;
    case 2:
      if (!read_varint(data, len, &pos, &v) || v > len - pos) return 0;
      if (tag >> 3 == 3) {
        const char *why;
        if (!wg_text_name_ok(data + pos, (size_t)v, &why))
          return wg_error_set(err, EINVAL, "flight descriptor path element %lld %s",
                              (long long)element, why);
        element++;
      }
      pos += (size_t)v;
      break;
    default:
      return 0;
    }
  }
  return 0;
}

int wg_flight_descriptor_unpack(const uint8_t *data, size_t len,
                                Arrow__Flight__Protocol__FlightDescriptor **out,
                                struct wg_error *err) {
  *out = NULL;
  WG_RETURN_NOT_OK(wg_flight_descriptor_check(data, len, err));
  *out = arrow__flight__protocol__flight_descriptor__unpack(NULL, len, data);
  if (*out == NULL) return wg_error_set(err, EINVAL, "malformed flight descriptor (%zu bytes)", len);
  return 0;
}

int wg_flight_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb,
                     ProtobufCMessage **out, struct wg_error *err) {
  *out = NULL;
  if (d == NULL || bb == NULL) return wg_error_set(err, EINVAL, "nothing to unpack");
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, bb))
    return wg_error_set(err, EPROTO, "%s byte buffer cannot be read (decompression)", d->name);
  /* protobuf-c wants contiguous bytes: use the only slice, or flatten several. */
  grpc_slice *first = NULL, *second = NULL;
  grpc_slice flat;
  const uint8_t *data = NULL;
  size_t len = 0;
  bool owned = false;
  if (grpc_byte_buffer_reader_peek(&reader, &first) &&
      !grpc_byte_buffer_reader_peek(&reader, &second)) {
    data = GRPC_SLICE_START_PTR(*first);
    len = GRPC_SLICE_LENGTH(*first);
  } else if (first != NULL) {
    grpc_byte_buffer_reader_destroy(&reader);
    if (!grpc_byte_buffer_reader_init(&reader, bb))
      return wg_error_set(err, EPROTO, "%s byte buffer cannot be read", d->name);
    flat = grpc_byte_buffer_reader_readall(&reader);
    owned = true;
    data = GRPC_SLICE_START_PTR(flat);
    len = GRPC_SLICE_LENGTH(flat);
  }
  int rc = 0;
  if (d == &arrow__flight__protocol__flight_descriptor__descriptor)
    rc = wg_flight_descriptor_check(data, len, err);
  if (rc == 0) *out = protobuf_c_message_unpack(d, NULL, len, data);
  if (owned) grpc_slice_unref(flat);
  grpc_byte_buffer_reader_destroy(&reader);
  if (rc != 0) return rc;
  if (*out == NULL)
    return wg_error_set(err, EPROTO, "malformed %s message (%zu bytes)", d->name, len);
  return 0;
}

int wg_flight_schema_bytes(const struct ArrowSchema *schema, struct wg_buf *out,
                           struct wg_error *err) {
  struct wg_ipc_encoder *enc = NULL;
  WG_RETURN_NOT_OK(wg_ipc_encoder_create(&enc, schema, NULL, err));
  struct wg_ipc_encoded m;
  wg_ipc_encoded_init(&m);
  int rc = wg_ipc_encoder_schema(enc, &m, err);
  if (rc == 0) {
    rc = wg_ipc_encoded_append_framed(&m, out);
    if (rc != 0)
      wg_error_set(err, rc, "framing the schema message (%lld bytes)", (long long)m.metadata.size);
  }
  wg_ipc_encoded_reset(&m);
  wg_ipc_encoder_destroy(enc);
  return rc;
}

/* The encapsulated form: 0xFFFFFFFF (or not, before 0.15), int32 length, flatbuffer. */
static int parse_framed(struct wg_bytes bytes, struct ArrowSchema *out, struct wg_error *err) {
  int64_t pos = 0, body_length = 0;
  struct wg_bytes metadata;
  int rc = wg_ipc_frame_next(bytes, &pos, &metadata, &body_length, err);
  if (rc == ENODATA || rc == ESPIPE)
    return wg_error_set(err, EPROTO, "schema bytes (%lld) hold no complete IPC message",
                        (long long)bytes.size);
  if (rc != 0) return rc;
  if (body_length != 0)
    return wg_error_set(err, EPROTO, "schema message has a body of %lld bytes",
                        (long long)body_length);
  return wg_ipc_decode_schema_message(metadata, out, err);
}

int wg_flight_schema_parse(struct wg_bytes bytes, struct ArrowSchema *out, struct wg_error *err) {
  if (bytes.size < 0 || (bytes.size > 0 && bytes.data == NULL))
    return wg_error_set(err, EINVAL, "schema bytes of size %lld", (long long)bytes.size);
  if (bytes.size < 8)
    return wg_error_set(err, EPROTO, "schema bytes too short: %lld", (long long)bytes.size);
  if (wg_load_u32(bytes.data) == 0xFFFFFFFFu) return parse_framed(bytes, out, err);
  /* Either a bare flatbuffer (some clients send that) or the old framing with just a length. */
  struct ArrowSchema tmp;
  int rc = wg_ipc_decode_schema_message(bytes, &tmp, err);
  if (rc == 0) {
    wg_schema_move(&tmp, out);
    return 0;
  }
  int32_t len = wg_load_i32(bytes.data);
  if (len > 0 && len <= bytes.size - 4) {
    struct wg_error framed_err;
    if (parse_framed(bytes, &tmp, &framed_err) == 0) {
      wg_schema_move(&tmp, out);
      return 0;
    }
  }
  return wg_error_prefix(err, rc, "schema bytes (%lld, no continuation marker)",
                         (long long)bytes.size);
}
