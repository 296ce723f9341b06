/* wigeon: Arrow IPC (columnar format v5) reader and writer over the C Data Interface.
 * Messages are "encapsulated": a flatbuffer Message header plus a body. Flight carries the two
 * separately; an IPC stream frames them as 0xFFFFFFFF, int32 metadata length, header, body.
 * The decoder verifies every flatbuffer offset and every buffer against the body before reading,
 * and produces arrays that point into the body (no copy) unless a buffer is misaligned or
 * compressed. The encoder describes the body as pieces pointing at the array's own buffers.
 * Depends on: common/, arrow/array.h, liblz4, libzstd. Knows nothing of gRPC or DuckDB. */
#ifndef WG_ARROW_IPC_H
#define WG_ARROW_IPC_H

#include <stdbool.h>
#include <stdint.h>

#include "arrow/abi.h"
#include "arrow/array.h"
#include "common/buf.h"
#include "common/error.h"

enum wg_ipc_message_type {
  WG_IPC_MESSAGE_NONE = 0,
  WG_IPC_MESSAGE_SCHEMA = 1,
  WG_IPC_MESSAGE_DICTIONARY_BATCH = 2,
  WG_IPC_MESSAGE_RECORD_BATCH = 3,
  WG_IPC_MESSAGE_TENSOR = 4,
  WG_IPC_MESSAGE_SPARSE_TENSOR = 5,
};

/* Body compression. Zero means none, so zeroed options are uncompressed; the wire value
 * (Message.fbs CompressionType) is the enum value minus one. */
enum wg_ipc_compression {
  WG_IPC_COMPRESSION_NONE = 0,
  WG_IPC_COMPRESSION_LZ4_FRAME = 1,
  WG_IPC_COMPRESSION_ZSTD = 2,
};

/* Limits that keep hostile input from costing more than a bounded multiple of its size. Zero
 * fields take the default. A compressed message may decompress to at most
 * min(max_decompressed_size, max_decompression_ratio * bodyLength + 16 MiB) bytes; everything else
 * the decoder allocates is proportional to the metadata and body it is given. */
struct wg_ipc_limits {
  int32_t max_depth;               /* nesting depth of fields (default 64, at most 256) */
  int64_t max_decompressed_size;   /* per message, bytes (default 1 GiB) */
  int64_t max_decompression_ratio; /* decompressed bytes per body byte (default 4096) */
  int64_t max_rows;                /* length of any array node (default 2^31 - 1) */
  int64_t max_fields; /* fields of a schema, nested ones included (default: only the size bound);
                         more is E2BIG, found before the fields are decoded */
};

/* ---------------------------------------------------------------------------------------------
 * Stream framing */

/* Reads the framing of the next message in data[*pos ...]: returns 0 and sets metadata (the
 * flatbuffer, borrowed from data) and body_length (from the Message header, verified), and moves
 * *pos past the metadata (the body starts at *pos). Returns ENODATA at end of stream (an
 * end-of-stream marker or no bytes left), ESPIPE when data ends inside the message, EPROTO when
 * the framing is malformed. Accepts the pre-0.15 framing without 0xFFFFFFFF. */
int wg_ipc_frame_next(struct wg_bytes data, int64_t *pos, struct wg_bytes *metadata,
                      int64_t *body_length, struct wg_error *err);

/* Peeks at an encapsulated message's header: its type and body length, after verifying the
 * flatbuffer. Cheap: used by transports to size the body before decoding. */
int wg_ipc_message_peek(struct wg_bytes metadata, enum wg_ipc_message_type *type,
                        int64_t *body_length, struct wg_error *err);

/* ---------------------------------------------------------------------------------------------
 * Decoder: Schema, then DictionaryBatch / RecordBatch messages. */

struct wg_ipc_decoder;

/* Creates a decoder; limits may be NULL for defaults. Returns 0, or ENOMEM. The caller owns the
 * decoder (wg_ipc_decoder_destroy). Not thread-safe: one decoder per stream. */
int wg_ipc_decoder_create(struct wg_ipc_decoder **out, const struct wg_ipc_limits *limits,
                          struct wg_error *err);
/* Destroys the decoder and its dictionaries; arrays already returned stay valid. NULL is fine. */
void wg_ipc_decoder_destroy(struct wg_ipc_decoder *dec);

/* Decodes one message. `metadata` is the flatbuffer header (borrowed for the call only). `body` is
 * the message body (may be NULL when the header says bodyLength 0); the decoder takes its own
 * references, the caller keeps its own. *type receives the message type.
 *  - SCHEMA: the decoder keeps the schema (wg_ipc_decoder_schema).
 *  - DICTIONARY_BATCH: the decoder updates its dictionary (replacement or delta).
 *  - RECORD_BATCH: `out` receives a struct array (one child per field) owned by the caller, that
 *    points into `body` where alignment allows and keeps it alive until released.
 * Returns 0; EPROTO/EINVAL for malformed input, ENOTSUP for valid but unsupported input (tensors,
 * big-endian), ENOMEM. On error `out` is left released (release NULL) and the decoder state is
 * unchanged. */
int wg_ipc_decoder_decode(struct wg_ipc_decoder *dec, struct wg_bytes metadata,
                          struct wg_shared *body, enum wg_ipc_message_type *type,
                          struct ArrowArray *out, struct wg_error *err);

/* Whether a schema message has been decoded. */
bool wg_ipc_decoder_has_schema(const struct wg_ipc_decoder *dec);
/* Deep copy of the decoded schema (a struct "+s" with one child per field, dictionary-encoded
 * fields carrying their dictionary schema, custom metadata in C Data Interface form). */
int wg_ipc_decoder_schema(const struct wg_ipc_decoder *dec, struct ArrowSchema *out,
                          struct wg_error *err);

/* Decodes a schema from a Schema message's flatbuffer alone (GetSchema, FlightInfo.schema). */
int wg_ipc_decode_schema_message(struct wg_bytes metadata, struct ArrowSchema *out,
                                 struct wg_error *err);

/* Reads a whole IPC stream from `data` (the stream takes a reference) as an ArrowArrayStream.
 * The stream's get_next returns 0 with a released array at the end. Errors show in
 * get_last_error. Returns 0 or ENOMEM; framing and decode errors surface from get_schema/get_next
 * (get_schema fails if the stream has no schema message). */
int wg_ipc_stream_reader_init(struct ArrowArrayStream *out, struct wg_shared *data,
                              const struct wg_ipc_limits *limits);

/* Validates an array against its schema with the same checks the decoder applies (offsets,
 * bounds, union type ids, run ends, view buffers, dictionary indices). For tests and for arrays
 * from other producers. */
int wg_ipc_validate_array(const struct ArrowSchema *schema, const struct ArrowArray *array,
                          struct wg_error *err);

/* ---------------------------------------------------------------------------------------------
 * Encoder */

/* One contiguous piece of a message body. `data` points at the array's own buffer, at encoder
 * scratch, or at static zero padding; it stays valid while both the source array and the
 * encoded message are alive. */
struct wg_ipc_piece {
  const uint8_t *data;
  int64_t size;
};

/* One encoded message: `metadata` is the flatbuffer header, padded to a multiple of 8 bytes,
 * `pieces` concatenated form the body (body_length bytes, a multiple of 8). Owned by the struct:
 * release with wg_ipc_encoded_reset. */
struct wg_ipc_encoded {
  enum wg_ipc_message_type type;
  struct wg_buf metadata;
  struct wg_ipc_piece *pieces;
  int64_t n_pieces, cap_pieces;
  int64_t body_length;
  struct wg_holder_builder scratch; /* compressed or rebased buffers the pieces point into */
};
void wg_ipc_encoded_init(struct wg_ipc_encoded *m);
void wg_ipc_encoded_reset(struct wg_ipc_encoded *m);

struct wg_ipc_encoder_options {
  enum wg_ipc_compression compression; /* default NONE */
  int compression_level;               /* 0 = codec default */
};

struct wg_ipc_encoder;

/* Creates an encoder for arrays of `schema` (a struct "+s"; copied). Dictionary ids are assigned
 * in field order. options may be NULL. The caller owns the encoder. */
int wg_ipc_encoder_create(struct wg_ipc_encoder **out, const struct ArrowSchema *schema,
                          const struct wg_ipc_encoder_options *options, struct wg_error *err);
void wg_ipc_encoder_destroy(struct wg_ipc_encoder *enc);

/* Encodes the Schema message. */
int wg_ipc_encoder_schema(struct wg_ipc_encoder *enc, struct wg_ipc_encoded *out,
                          struct wg_error *err);

/* Encodes one batch (a struct array matching the schema). Produces the DictionaryBatch messages
 * the batch needs (a dictionary is sent again only when it changed) followed by the RecordBatch:
 * *n_out messages in out[], which must have room for wg_ipc_encoder_max_messages(enc). Each
 * out[i] must be initialized; it is reset and refilled. The array stays owned by the caller and
 * must outlive the encoded pieces. */
int wg_ipc_encoder_batch(struct wg_ipc_encoder *enc, const struct ArrowArray *batch,
                         struct wg_ipc_encoded *out, int64_t *n_out, struct wg_error *err);
int64_t wg_ipc_encoder_max_messages(const struct wg_ipc_encoder *enc);

/* Appends one framed message (continuation, length, metadata, body) to b. */
int wg_ipc_encoded_append_framed(const struct wg_ipc_encoded *m, struct wg_buf *b);
/* Appends the end-of-stream marker. */
int wg_ipc_append_eos(struct wg_buf *b);

/* Writes a whole IPC stream (schema, dictionaries, batches, end marker) from `stream` into b. */
int wg_ipc_write_stream(struct ArrowArrayStream *stream,
                        const struct wg_ipc_encoder_options *options, struct wg_buf *b,
                        struct wg_error *err);

#endif
