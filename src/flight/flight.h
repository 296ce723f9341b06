/* wigeon: Arrow Flight messages. Control messages go through the protobuf-c code generated from
 * proto/flight.proto; FlightData, the hot path, has a hand-written codec: on receive, the record
 * batch body is referenced in gRPC's own slice (no copy) when it lies in one slice, and copied
 * once otherwise; on send, the body pieces of an encoded IPC message become gRPC slices over the
 * array's own buffers, released through a refcount when gRPC is done with them.
 * Depends on: arrow/ipc.h, gRPC byte buffers and slices, protobuf-c. */
#ifndef WG_FLIGHT_FLIGHT_H
#define WG_FLIGHT_FLIGHT_H

#include <stdint.h>

#include <grpc/byte_buffer.h>
#include <protobuf-c/protobuf-c.h>

#include "arrow/ipc.h"
#include "common/buf.h"
#include "common/error.h"
#include "proto/flight.pb-c.h"

#define WG_FLIGHT_SERVICE "/arrow.flight.protocol.FlightService/"

/* A received FlightData. Views stay valid until wg_flight_data_reset. */
struct wg_flight_data {
  struct wg_bytes descriptor;   /* serialized FlightDescriptor, size 0 when absent */
  struct wg_bytes data_header;  /* the IPC Message flatbuffer, size 0 when absent */
  struct wg_bytes app_metadata; /* size 0 when absent */
  struct wg_shared *body;       /* data_body (a reference), NULL when absent or empty */
  struct wg_shared *holder;     /* keeps the views above alive */
};

/* Decodes a FlightData message. The byte buffer stays owned by the caller, who may destroy it at
 * once: out references the slices it needs. Unknown fields are skipped; a malformed message is
 * EPROTO naming the problem (a known field with a wire type other than length-delimited too).
 * `out` is overwritten without being read (reset a previous content first); on error it is left
 * empty. Fields that span slices are copied; the body is referenced in place when it lies in one
 * slice (its pointer need not be aligned), else copied once into 64-byte aligned memory. For a
 * repeated field the last occurrence wins. Thread-safe for distinct buffers. */
int wg_flight_data_decode(grpc_byte_buffer *bb, struct wg_flight_data *out, struct wg_error *err);
/* Zeroes fd (same as `= {0}`). */
void wg_flight_data_init(struct wg_flight_data *fd);
/* Drops the references and empties fd; safe twice and on NULL. */
void wg_flight_data_reset(struct wg_flight_data *fd);

/* Encodes a FlightData: an optional serialized descriptor, an encoded IPC message (NULL for a
 * metadata-only message), and app_metadata (size 0 for none). The small header (field tags,
 * lengths, descriptor, data_header, app_metadata) is copied into one slice; every body piece
 * becomes a slice pointing at its memory, kept alive by `keepalive` (one reference per slice,
 * dropped by gRPC when sent; may be NULL when the memory is static or outlives the send) and by
 * the message's scratch, which this call takes over from `msg` (msg->scratch is emptied).
 * *out is owned by the caller (or passed to wg_rpc_call_send). EINVAL when the pieces do not sum
 * to msg->body_length (msg untouched), ENOMEM (msg untouched). Short runs of zeros (padding) are
 * sent from a static block. With keepalive NULL and no scratch the pieces are sent as static
 * slices: the caller guarantees their memory outlives the byte buffer. */
int wg_flight_data_encode(struct wg_bytes descriptor, struct wg_ipc_encoded *msg,
                          struct wg_bytes app_metadata, struct wg_shared *keepalive,
                          grpc_byte_buffer **out, struct wg_error *err);

/* protobuf-c <-> gRPC byte buffers. unpack: *out freed with protobuf_c_message_free_unpacked;
 * a malformed message is EPROTO naming the message type. */
int wg_flight_pack(const ProtobufCMessage *m, grpc_byte_buffer **out, struct wg_error *err);
int wg_flight_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb,
                     ProtobufCMessage **out, struct wg_error *err);

/* Unpacks a serialized FlightDescriptor (e.g. FlightData's), refusing with EINVAL path elements
 * that are not valid UTF-8 or hold a NUL byte (which a C string would cut short); a malformed
 * message is EINVAL. *out freed with protobuf_c_message_free_unpacked. wg_flight_unpack does the
 * same check for FlightDescriptor requests. */
int wg_flight_descriptor_unpack(const uint8_t *data, size_t len,
                                Arrow__Flight__Protocol__FlightDescriptor **out,
                                struct wg_error *err);
int wg_flight_descriptor_check(const uint8_t *data, size_t len, struct wg_error *err);

/* The schema bytes Flight puts in FlightInfo.schema and SchemaResult.schema: an encapsulated IPC
 * Schema message (continuation marker, length, flatbuffer). schema_bytes appends to `out` (owned
 * by the caller; on error it may hold a partial message). schema_parse also accepts the bare
 * flatbuffer and the pre-0.15 framing without the marker; `out` is owned by the caller on
 * success, untouched on error (EPROTO for malformed bytes). */
int wg_flight_schema_bytes(const struct ArrowSchema *schema, struct wg_buf *out,
                           struct wg_error *err);
int wg_flight_schema_parse(struct wg_bytes bytes, struct ArrowSchema *out, struct wg_error *err);

#endif
