/* wigeon: tests for the Flight messages (src/flight): the hand-written FlightData codec against
 * real IPC record batches and against protobuf-c (each reads the other's bytes), zero copy on both
 * sides and the lifetime of what the slices keep alive, hostile input (every truncation, bad
 * varints and lengths), schema bytes, and protobuf-c control messages through byte buffers.
 * Needs grpc_init (slices); run under ASan to check lifetimes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>

#include "arrow/array.h"
#include "arrow/ipc.h"
#include "flight/flight.h"
#include "test.h"

/* ---- a batch: int64 "id" and utf8 "name" (with nulls) over static buffers ---- */

#define N_ROWS 300
static int64_t ids[N_ROWS];
static int32_t name_offsets[N_ROWS + 1];
static char name_data[N_ROWS * 16];
static uint8_t name_validity[(N_ROWS + 7) / 8];
static struct ArrowSchema g_schema;
static struct ArrowArray g_batch;

static bool name_valid(int64_t i) {
  return i % 7 != 3;
}

static int fixture_init(void) {
  int32_t off = 0;
  for (int64_t i = 0; i < N_ROWS; i++) {
    ids[i] = i * 1000003 - 77;
    name_offsets[i] = off;
    if (name_valid(i)) {
      name_validity[i / 8] |= (uint8_t)(1u << (i % 8));
      off += sprintf(name_data + off, "row-%lld", (long long)i);
    }
  }
  name_offsets[N_ROWS] = off;
  int rc = wg_schema_node_init(&g_schema, "+s", 2, NULL);
  if (rc == 0) rc = wg_schema_node_init(g_schema.children[0], "l", 0, NULL);
  if (rc == 0) rc = wg_schema_set_name(g_schema.children[0], "id");
  if (rc == 0) rc = wg_schema_node_init(g_schema.children[1], "u", 0, NULL);
  if (rc == 0) rc = wg_schema_set_name(g_schema.children[1], "name");
  if (rc == 0) rc = wg_array_node_init(&g_batch, 1, 2, NULL);
  if (rc == 0) rc = wg_array_node_init(g_batch.children[0], 2, 0, NULL);
  if (rc == 0) rc = wg_array_node_init(g_batch.children[1], 3, 0, NULL);
  if (rc != 0) return rc;
  g_batch.length = N_ROWS;
  g_batch.children[0]->length = N_ROWS;
  g_batch.children[0]->buffers[1] = ids;
  struct ArrowArray *names = g_batch.children[1];
  names->length = N_ROWS;
  int64_t nulls = 0;
  for (int64_t i = 0; i < N_ROWS; i++)
    nulls += !name_valid(i);
  names->null_count = nulls;
  names->buffers[0] = name_validity;
  names->buffers[1] = name_offsets;
  names->buffers[2] = name_data;
  return 0;
}

/* Whether a decoded batch holds the fixture's values. */
static bool batch_matches(const struct ArrowArray *a, char *why, size_t why_size) {
  if (a->length != N_ROWS || a->n_children != 2) {
    snprintf(why, why_size, "length %lld, %lld children", (long long)a->length,
             (long long)a->n_children);
    return false;
  }
  const struct ArrowArray *id = a->children[0], *nm = a->children[1];
  for (int64_t i = 0; i < N_ROWS; i++) {
    int64_t v;
    memcpy(&v, (const uint8_t *)id->buffers[1] + 8 * (id->offset + i), 8);
    if (v != ids[i]) {
      snprintf(why, why_size, "id[%lld] = %lld, want %lld", (long long)i, (long long)v,
               (long long)ids[i]);
      return false;
    }
    int64_t j = nm->offset + i;
    bool valid = nm->buffers[0] == NULL || wg_bit_get(nm->buffers[0], j);
    if (valid != name_valid(i)) {
      snprintf(why, why_size, "name[%lld] validity %d", (long long)i, valid);
      return false;
    }
    if (!valid) continue;
    int32_t o0, o1;
    memcpy(&o0, (const uint8_t *)nm->buffers[1] + 4 * j, 4);
    memcpy(&o1, (const uint8_t *)nm->buffers[1] + 4 * (j + 1), 4);
    char want[32];
    int n = snprintf(want, sizeof(want), "row-%lld", (long long)i);
    if (o1 - o0 != n || memcmp((const char *)nm->buffers[2] + o0, want, (size_t)n) != 0) {
      snprintf(why, why_size, "name[%lld] differs", (long long)i);
      return false;
    }
  }
  return true;
}

/* ---- byte buffer helpers ---- */

static int flatten(grpc_byte_buffer *bb, struct wg_buf *out) {
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb)) return EPROTO;
  grpc_slice s = grpc_byte_buffer_reader_readall(&r);
  int rc = wg_buf_append(out, GRPC_SLICE_START_PTR(s), (int64_t)GRPC_SLICE_LENGTH(s));
  grpc_slice_unref(s);
  grpc_byte_buffer_reader_destroy(&r);
  return rc;
}

/* A byte buffer holding a copy of data cut into `chunk`-byte slices (0: one slice). */
static grpc_byte_buffer *bb_from(const uint8_t *data, int64_t size, int64_t chunk) {
  if (chunk <= 0) chunk = size > 0 ? size : 1;
  int64_t n = (size + chunk - 1) / chunk;
  grpc_slice *slices = malloc((size_t)(n > 0 ? n : 1) * sizeof(*slices));
  for (int64_t i = 0; i < n; i++) {
    int64_t len = size - i * chunk < chunk ? size - i * chunk : chunk;
    slices[i] = grpc_slice_from_copied_buffer((const char *)data + i * chunk, (size_t)len);
  }
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(slices, (size_t)n);
  for (int64_t i = 0; i < n; i++)
    grpc_slice_unref(slices[i]);
  free(slices);
  return bb;
}

static bool bytes_eq(struct wg_bytes a, const void *b, int64_t size) {
  return a.size == size && (size == 0 || memcmp(a.data, b, (size_t)size) == 0);
}

/* ---- one encoded FlightData, with the pieces needed to check it ---- */

static const char app_meta[] = "app-metadata \xc3\xbc 42";

struct sample {
  struct wg_buf schema_meta; /* the Schema message's flatbuffer */
  struct wg_buf descriptor;  /* a packed FlightDescriptor */
  struct wg_buf header;      /* the RecordBatch flatbuffer */
  struct wg_buf body;        /* the concatenated body */
  grpc_byte_buffer *bb;
};

static void sample_reset(struct sample *s) {
  wg_buf_reset(&s->schema_meta);
  wg_buf_reset(&s->descriptor);
  wg_buf_reset(&s->header);
  wg_buf_reset(&s->body);
  if (s->bb != NULL) grpc_byte_buffer_destroy(s->bb);
  memset(s, 0, sizeof(*s));
}

static int pack_descriptor(struct wg_buf *out) {
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
  d.cmd.data = (uint8_t *)"SELECT 42 AS answer";
  d.cmd.len = strlen("SELECT 42 AS answer");
  size_t n = protobuf_c_message_get_packed_size(&d.base);
  int rc = wg_buf_reserve(out, (int64_t)n);
  if (rc != 0) return rc;
  out->size = (int64_t)protobuf_c_message_pack(&d.base, out->data);
  return 0;
}

/* Encodes the fixture batch as a FlightData with descriptor and app_metadata. */
static int sample_make(struct sample *s, enum wg_ipc_compression codec, struct wg_shared *keepalive,
                       struct wg_error *err) {
  memset(s, 0, sizeof(*s));
  struct wg_ipc_encoder_options opts = {codec, 0};
  struct wg_ipc_encoder *enc;
  WG_RETURN_NOT_OK(wg_ipc_encoder_create(&enc, &g_schema, &opts, err));
  struct wg_ipc_encoded m[4];
  for (int i = 0; i < 4; i++)
    wg_ipc_encoded_init(&m[i]);
  int64_t n_out = 0;
  int rc = wg_ipc_encoder_schema(enc, &m[0], err);
  if (rc == 0) rc = wg_buf_append(&s->schema_meta, m[0].metadata.data, m[0].metadata.size);
  if (rc == 0) rc = wg_ipc_encoder_batch(enc, &g_batch, m, &n_out, err);
  if (rc == 0 && n_out != 1) rc = wg_error_set(err, EINVAL, "%lld messages", (long long)n_out);
  if (rc == 0) rc = pack_descriptor(&s->descriptor);
  if (rc == 0) rc = wg_buf_append(&s->header, m[0].metadata.data, m[0].metadata.size);
  for (int64_t i = 0; rc == 0 && i < m[0].n_pieces; i++)
    rc = wg_buf_append(&s->body, m[0].pieces[i].data, m[0].pieces[i].size);
  struct wg_bytes desc = {s->descriptor.data, s->descriptor.size};
  struct wg_bytes app = {(const uint8_t *)app_meta, (int64_t)strlen(app_meta)};
  if (rc == 0) rc = wg_flight_data_encode(desc, &m[0], app, keepalive, &s->bb, err);
  if (rc == 0 && m[0].scratch.n_allocs + m[0].scratch.n_refs != 0)
    rc = wg_error_set(err, EINVAL, "scratch not taken over");
  for (int i = 0; i < 4; i++)
    wg_ipc_encoded_reset(&m[i]);
  wg_ipc_encoder_destroy(enc);
  return rc;
}

/* Decodes a FlightData's IPC message with a decoder primed with the sample's schema. */
static int decode_ipc(const struct sample *s, const struct wg_flight_data *fd,
                      struct ArrowArray *out, struct wg_error *err) {
  struct wg_ipc_decoder *dec;
  WG_RETURN_NOT_OK(wg_ipc_decoder_create(&dec, NULL, err));
  enum wg_ipc_message_type type;
  struct ArrowArray none;
  struct wg_bytes sm = {s->schema_meta.data, s->schema_meta.size};
  int rc = wg_ipc_decoder_decode(dec, sm, NULL, &type, &none, err);
  if (rc == 0) rc = wg_ipc_decoder_decode(dec, fd->data_header, fd->body, &type, out, err);
  if (rc == 0 && type != WG_IPC_MESSAGE_RECORD_BATCH)
    rc = wg_error_set(err, EINVAL, "message type %d", (int)type);
  wg_ipc_decoder_destroy(dec);
  return rc;
}

static bool fd_matches_sample(const struct sample *s, const struct wg_flight_data *fd) {
  return bytes_eq(fd->descriptor, s->descriptor.data, s->descriptor.size) &&
         bytes_eq(fd->data_header, s->header.data, s->header.size) &&
         bytes_eq(fd->app_metadata, app_meta, (int64_t)strlen(app_meta)) && fd->body != NULL &&
         fd->body->size == s->body.size &&
         memcmp(fd->body->data, s->body.data, (size_t)s->body.size) == 0;
}

/* ---- tests ---- */

static void encode_then_decode_gives_the_same_batch(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  struct sample s;
  ASSERT_OK(sample_make(&s, WG_IPC_COMPRESSION_NONE, NULL, err), err);
  /* The int64 column goes out as a slice over the array's own buffer. */
  grpc_byte_buffer_reader r;
  ASSERT_TRUE(grpc_byte_buffer_reader_init(&r, s.bb));
  grpc_slice *sl;
  bool ids_in_place = false;
  int64_t total = 0;
  while (grpc_byte_buffer_reader_peek(&r, &sl)) {
    if (GRPC_SLICE_START_PTR(*sl) == (uint8_t *)ids && GRPC_SLICE_LENGTH(*sl) == sizeof(ids))
      ids_in_place = true;
    total += (int64_t)GRPC_SLICE_LENGTH(*sl);
  }
  grpc_byte_buffer_reader_destroy(&r);
  ASSERT_TRUE(ids_in_place);
  ASSERT_EQ(total, (int64_t)grpc_byte_buffer_length(s.bb));

  struct wg_flight_data fd;
  int rc = wg_flight_data_decode(s.bb, &fd, err);
  grpc_byte_buffer_destroy(s.bb); /* fd keeps what it needs */
  s.bb = NULL;
  struct ArrowArray out = {0};
  if (rc == 0) rc = decode_ipc(&s, &fd, &out, err);
  bool same = rc == 0 && fd_matches_sample(&s, &fd);
  char why[128] = "";
  bool values = rc == 0 && batch_matches(&out, why, sizeof(why));
  wg_flight_data_reset(&fd); /* the array keeps the body alive on its own */
  if (rc == 0 && !batch_matches(&out, why, sizeof(why))) values = false;
  wg_array_release(&out);
  sample_reset(&s);
  ASSERT_OK(rc, err);
  ASSERT_TRUE(same);
  if (!values) fprintf(stderr, "  %s\n", why);
  ASSERT_TRUE(values);
}

static void protobuf_c_reads_our_flight_data(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  struct sample s;
  ASSERT_OK(sample_make(&s, WG_IPC_COMPRESSION_NONE, NULL, err), err);
  struct wg_buf flat;
  wg_buf_init(&flat);
  ASSERT_OK(flatten(s.bb, &flat), err);
  Arrow__Flight__Protocol__FlightData *m =
      arrow__flight__protocol__flight_data__unpack(NULL, (size_t)flat.size, flat.data);
  bool ok = m != NULL && m->flight_descriptor != NULL &&
            m->flight_descriptor->type ==
                ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD &&
            m->flight_descriptor->cmd.len == strlen("SELECT 42 AS answer") &&
            memcmp(m->flight_descriptor->cmd.data, "SELECT 42 AS answer", 19) == 0 &&
            m->data_header.len == (size_t)s.header.size &&
            memcmp(m->data_header.data, s.header.data, m->data_header.len) == 0 &&
            m->app_metadata.len == strlen(app_meta) &&
            memcmp(m->app_metadata.data, app_meta, m->app_metadata.len) == 0 &&
            m->data_body.len == (size_t)s.body.size &&
            memcmp(m->data_body.data, s.body.data, m->data_body.len) == 0;
  /* protobuf-c packs the same fields in the same order: byte-identical. */
  bool identical = false;
  if (m != NULL) {
    size_t n = arrow__flight__protocol__flight_data__get_packed_size(m);
    uint8_t *p = malloc(n);
    arrow__flight__protocol__flight_data__pack(m, p);
    identical = n == (size_t)flat.size && memcmp(p, flat.data, n) == 0;
    free(p);
  }
  if (m != NULL) arrow__flight__protocol__flight_data__free_unpacked(m, NULL);
  wg_buf_reset(&flat);
  sample_reset(&s);
  ASSERT_TRUE(ok);
  ASSERT_TRUE(identical);
}

static void our_codec_reads_protobuf_c_flight_data(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  struct sample s;
  ASSERT_OK(sample_make(&s, WG_IPC_COMPRESSION_NONE, NULL, err), err);
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  char *path[2] = {"a", "b.parquet"};
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__PATH;
  d.n_path = 2;
  d.path = path;
  Arrow__Flight__Protocol__FlightData m = ARROW__FLIGHT__PROTOCOL__FLIGHT_DATA__INIT;
  m.flight_descriptor = &d;
  m.data_header.data = s.header.data;
  m.data_header.len = (size_t)s.header.size;
  m.app_metadata.data = (uint8_t *)app_meta;
  m.app_metadata.len = strlen(app_meta);
  m.data_body.data = s.body.data;
  m.data_body.len = (size_t)s.body.size;
  grpc_byte_buffer *bb;
  ASSERT_OK(wg_flight_pack(&m.base, &bb, err), err);
  /* One slice: the body must be referenced in it, not copied. */
  grpc_byte_buffer_reader r;
  ASSERT_TRUE(grpc_byte_buffer_reader_init(&r, bb));
  grpc_slice *sl;
  ASSERT_TRUE(grpc_byte_buffer_reader_peek(&r, &sl));
  const uint8_t *lo = GRPC_SLICE_START_PTR(*sl), *hi = GRPC_SLICE_END_PTR(*sl);
  grpc_byte_buffer_reader_destroy(&r);

  struct wg_flight_data fd;
  int rc = wg_flight_data_decode(bb, &fd, err);
  grpc_byte_buffer_destroy(bb);
  bool in_slice = rc == 0 && fd.body != NULL && fd.body->data >= lo && fd.body->data < hi;
  Arrow__Flight__Protocol__FlightDescriptor *d2 = NULL;
  if (rc == 0)
    d2 = arrow__flight__protocol__flight_descriptor__unpack(NULL, (size_t)fd.descriptor.size,
                                                            fd.descriptor.data);
  bool desc_ok = d2 != NULL && d2->n_path == 2 && strcmp(d2->path[1], "b.parquet") == 0;
  if (d2 != NULL) arrow__flight__protocol__flight_descriptor__free_unpacked(d2, NULL);
  bool fields_ok = rc == 0 && bytes_eq(fd.data_header, s.header.data, s.header.size) &&
                   bytes_eq(fd.app_metadata, app_meta, (int64_t)strlen(app_meta)) &&
                   fd.body != NULL && fd.body->size == s.body.size &&
                   memcmp(fd.body->data, s.body.data, (size_t)s.body.size) == 0;
  struct ArrowArray out = {0};
  if (rc == 0) rc = decode_ipc(&s, &fd, &out, err);
  char why[128] = "";
  bool values = rc == 0 && batch_matches(&out, why, sizeof(why));
  wg_array_release(&out);
  wg_flight_data_reset(&fd);
  wg_flight_data_reset(&fd); /* twice is fine */
  sample_reset(&s);
  ASSERT_OK(rc, err);
  ASSERT_TRUE(in_slice);
  ASSERT_TRUE(desc_ok);
  ASSERT_TRUE(fields_ok);
  if (!values) fprintf(stderr, "  %s\n", why);
  ASSERT_TRUE(values);
}

static void body_across_seven_byte_slices_is_copied_aligned_and_equal(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  struct sample s;
  ASSERT_OK(sample_make(&s, WG_IPC_COMPRESSION_NONE, NULL, err), err);
  struct wg_buf flat;
  wg_buf_init(&flat);
  ASSERT_OK(flatten(s.bb, &flat), err);
  int64_t chunks[] = {7, 1, 4096, 0};
  for (int k = 0; k < 4; k++) {
    grpc_byte_buffer *bb = bb_from(flat.data, flat.size, chunks[k]);
    struct wg_flight_data fd;
    int rc = wg_flight_data_decode(bb, &fd, err);
    grpc_byte_buffer_destroy(bb);
    struct ArrowArray out = {0};
    if (rc == 0) rc = decode_ipc(&s, &fd, &out, err);
    char why[128] = "";
    bool ok = rc == 0 && fd_matches_sample(&s, &fd) && batch_matches(&out, why, sizeof(why));
    bool aligned = rc == 0 && ((uintptr_t)fd.body->data % 64 == 0 || chunks[k] == 0);
    wg_array_release(&out);
    wg_flight_data_reset(&fd);
    TEST_RECORD(rc == 0 && ok && aligned, "chunk %lld: rc %d (%s) ok %d aligned %d %s",
                (long long)chunks[k], rc, err->message, ok, aligned, why);
  }
  wg_buf_reset(&flat);
  sample_reset(&s);
}

static void single_slice_body_is_referenced_not_copied(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  struct sample s;
  ASSERT_OK(sample_make(&s, WG_IPC_COMPRESSION_NONE, NULL, err), err);
  struct wg_buf flat;
  wg_buf_init(&flat);
  ASSERT_OK(flatten(s.bb, &flat), err);
  grpc_byte_buffer *bb = bb_from(flat.data, flat.size, 0);
  grpc_byte_buffer_reader r;
  ASSERT_TRUE(grpc_byte_buffer_reader_init(&r, bb));
  grpc_slice *sl;
  ASSERT_TRUE(grpc_byte_buffer_reader_peek(&r, &sl));
  const uint8_t *start = GRPC_SLICE_START_PTR(*sl);
  grpc_byte_buffer_reader_destroy(&r);
  struct wg_flight_data fd;
  int rc = wg_flight_data_decode(bb, &fd, err);
  grpc_byte_buffer_destroy(bb); /* the slice lives on through fd */
  bool ok = rc == 0 && fd_matches_sample(&s, &fd);
  int64_t body_at = rc == 0 && fd.body ? fd.body->data - start : -1;
  int64_t header_at = rc == 0 ? fd.data_header.data - start : -1;
  int64_t size = flat.size;
  wg_flight_data_reset(&fd);
  wg_buf_reset(&flat);
  sample_reset(&s);
  ASSERT_OK(rc, err);
  ASSERT_TRUE(ok);
  ASSERT_TRUE(body_at > 0 && body_at < size); /* inside the slice: referenced, not copied */
  ASSERT_TRUE(header_at > 0 && header_at < body_at);
}

/* ---- hand-built protobuf bytes ---- */

static void pb_varint(struct wg_buf *b, uint64_t v) {
  while (v >= 0x80) {
    uint8_t c = (uint8_t)(v | 0x80);
    wg_buf_append(b, &c, 1);
    v >>= 7;
  }
  uint8_t c = (uint8_t)v;
  wg_buf_append(b, &c, 1);
}

static void pb_len(struct wg_buf *b, uint32_t field, const void *data, int64_t n) {
  pb_varint(b, (uint64_t)field << 3 | 2);
  pb_varint(b, (uint64_t)n);
  wg_buf_append(b, data, n);
}

/* A message with every wire type of unknown field around the real ones, a repeated data_header
 * (the last one wins), and the field boundaries in bounds[]. */
static int64_t build_tricky(struct wg_buf *b, int64_t *bounds) {
  int64_t n = 0;
  bounds[n++] = 0;
  pb_varint(b, 5 << 3 | 0); /* unknown varint, 10 bytes long */
  pb_varint(b, UINT64_MAX);
  bounds[n++] = b->size;
  pb_len(b, 2, "first-header", 12);
  bounds[n++] = b->size;
  pb_varint(b, 6 << 3 | 1); /* unknown i64 */
  wg_buf_append(b, "12345678", 8);
  bounds[n++] = b->size;
  pb_len(b, 1, "descriptor-bytes", 16);
  bounds[n++] = b->size;
  pb_varint(b, 8 << 3 | 5); /* unknown i32 */
  wg_buf_append(b, "1234", 4);
  bounds[n++] = b->size;
  pb_len(b, 2000, "unknown length-delimited field with a two-byte key", 50);
  bounds[n++] = b->size;
  pb_len(b, 2, "second-header", 13);
  bounds[n++] = b->size;
  pb_len(b, 3, "app", 3);
  bounds[n++] = b->size;
  uint8_t body[40];
  for (int i = 0; i < 40; i++)
    body[i] = (uint8_t)(i * 7 + 1);
  pb_len(b, 1000, body, 40);
  bounds[n++] = b->size;
  pb_varint(b, 536870911ull << 3 | 0); /* the largest field number */
  pb_varint(b, 1);
  bounds[n++] = b->size;
  return n;
}

static void unknown_fields_are_skipped_and_the_last_field_wins(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  struct wg_buf b;
  wg_buf_init(&b);
  int64_t bounds[16];
  build_tricky(&b, bounds);
  int64_t chunks[] = {0, 1, 7};
  for (int k = 0; k < 3; k++) {
    grpc_byte_buffer *bb = bb_from(b.data, b.size, chunks[k]);
    struct wg_flight_data fd;
    int rc = wg_flight_data_decode(bb, &fd, err);
    grpc_byte_buffer_destroy(bb);
    bool ok = rc == 0 && bytes_eq(fd.data_header, "second-header", 13) &&
              bytes_eq(fd.descriptor, "descriptor-bytes", 16) &&
              bytes_eq(fd.app_metadata, "app", 3) && fd.body != NULL && fd.body->size == 40 &&
              fd.body->data[39] == (uint8_t)(39 * 7 + 1);
    wg_flight_data_reset(&fd);
    TEST_RECORD(ok, "tricky message in %lld-byte slices: rc %d %s", (long long)chunks[k], rc,
                err->message);
  }
  wg_buf_reset(&b);
}

static void every_truncation_is_eproto_or_a_shorter_valid_message(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  struct wg_buf b;
  wg_buf_init(&b);
  int64_t bounds[16];
  int64_t n_bounds = build_tricky(&b, bounds);
  int64_t chunks[] = {0, 1, 7};
  int bad = 0;
  for (int k = 0; k < 3; k++) {
    for (int64_t len = 0; len < b.size; len++) {
      bool boundary = false;
      for (int64_t i = 0; i < n_bounds; i++)
        boundary = boundary || bounds[i] == len;
      grpc_byte_buffer *bb = bb_from(b.data, len, chunks[k]);
      struct wg_flight_data fd;
      int rc = wg_flight_data_decode(bb, &fd, err);
      grpc_byte_buffer_destroy(bb);
      wg_flight_data_reset(&fd);
      if (boundary ? rc != 0 : rc != EPROTO) {
        if (bad++ < 5)
          fprintf(stderr, "  prefix %lld (chunk %lld): rc %d %s\n", (long long)len,
                  (long long)chunks[k], rc, err->message);
      }
    }
  }
  /* The real FlightData too: no prefix is a valid message except at field boundaries. */
  struct sample s;
  int rc = sample_make(&s, WG_IPC_COMPRESSION_NONE, NULL, err);
  struct wg_buf flat;
  wg_buf_init(&flat);
  if (rc == 0) rc = flatten(s.bb, &flat);
  int valid_prefixes = 0;
  for (int64_t len = 0; rc == 0 && len < flat.size; len++) {
    grpc_byte_buffer *bb = bb_from(flat.data, len, len % 3 == 0 ? 0 : 512);
    struct wg_flight_data fd;
    int r = wg_flight_data_decode(bb, &fd, err);
    grpc_byte_buffer_destroy(bb);
    wg_flight_data_reset(&fd);
    if (r == 0)
      valid_prefixes++;
    else if (r != EPROTO && bad++ < 5)
      fprintf(stderr, "  sample prefix %lld: rc %d\n", (long long)len, r);
  }
  wg_buf_reset(&flat);
  wg_buf_reset(&b);
  sample_reset(&s);
  ASSERT_OK(rc, err);
  ASSERT_EQ(bad, 0);
  ASSERT_EQ(valid_prefixes, 4); /* empty, after descriptor, after data_header, after app_metadata */
}

struct bad_case {
  const char *name;
  const uint8_t *bytes;
  int64_t size;
  const char *message_part;
};

static void bad_varints_lengths_and_wire_types_are_eproto(void) {
  static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                   0x80, 0x80, 0x80, 0x80, 0x01};
  static const uint8_t overflow[] = {0x28, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                     0xFF, 0xFF, 0xFF, 0xFF, 0x02};
  static const uint8_t huge_len[] = {0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                     0xFF, 0xFF, 0xFF, 0xFF, 0x01};
  static const uint8_t past_end[] = {0x12, 0x05, 'a', 'b', 'c'};
  static const uint8_t body_past_end[] = {0xC2, 0x3E, 0xD2, 0x09, 'x'};
  static const uint8_t group[] = {0x0B, 0x0C};
  static const uint8_t wt6[] = {0x0E, 0x00};
  static const uint8_t wt7[] = {0x0F, 0x00};
  static const uint8_t field0[] = {0x02, 0x00};
  static const uint8_t header_as_varint[] = {0x10, 0x01};
  static const uint8_t i64_short[] = {0x31, 1, 2, 3};
  static const uint8_t i32_short[] = {0x3D, 1, 2};
  static const uint8_t key_cut[] = {0xC2};
  static const uint8_t field_too_big[] = {0x80, 0x80, 0x80, 0x80, 0x10, 0x00}; /* 2^29 */
  const struct bad_case cases[] = {
      {"11-byte varint", eleven, sizeof(eleven), "varint"},
      {"varint overflow", overflow, sizeof(overflow), "overflows 64 bits"},
      {"huge length", huge_len, sizeof(huge_len), "passes the end of the 11-byte message"},
      {"length past end", past_end, sizeof(past_end),
       "FlightData field 2 length 5 passes the end of the 5-byte message"},
      {"body past end", body_past_end, sizeof(body_past_end),
       "FlightData field 1000 length 1234 passes the end of the 5-byte message"},
      {"group", group, sizeof(group), "group"},
      {"wire type 6", wt6, sizeof(wt6), "invalid wire type 6"},
      {"wire type 7", wt7, sizeof(wt7), "invalid wire type 7"},
      {"field 0", field0, sizeof(field0), "field number 0"},
      {"data_header as varint", header_as_varint, sizeof(header_as_varint), "wire type 0"},
      {"i64 cut", i64_short, sizeof(i64_short), "field 6 length 8"},
      {"i32 cut", i32_short, sizeof(i32_short), "field 7 length 4"},
      {"key cut", key_cut, sizeof(key_cut), "passes the end"},
      {"field number 2^29", field_too_big, sizeof(field_too_big), "invalid"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct wg_error err = {{0}};
    grpc_byte_buffer *bb = bb_from(cases[i].bytes, cases[i].size, 0);
    struct wg_flight_data fd;
    int rc = wg_flight_data_decode(bb, &fd, &err);
    grpc_byte_buffer_destroy(bb);
    bool empty = fd.body == NULL && fd.holder == NULL && fd.data_header.size == 0;
    wg_flight_data_reset(&fd);
    TEST_RECORD(rc == EPROTO && empty && strstr(err.message, cases[i].message_part) != NULL,
                "%s: rc %d, message \"%s\"", cases[i].name, rc, err.message);
  }
}

static void empty_and_metadata_only_messages(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  /* Metadata only (DoPut acknowledgements, DoExchange): no IPC message at all. */
  grpc_byte_buffer *bb;
  struct wg_bytes none = {NULL, 0}, app = {(const uint8_t *)"ack", 3};
  ASSERT_OK(wg_flight_data_encode(none, NULL, app, NULL, &bb, err), err);
  ASSERT_EQ(grpc_byte_buffer_length(bb), 5);
  struct wg_flight_data fd;
  int rc = wg_flight_data_decode(bb, &fd, err);
  grpc_byte_buffer_destroy(bb);
  ASSERT_OK(rc, err);
  ASSERT_TRUE(bytes_eq(fd.app_metadata, "ack", 3));
  ASSERT_TRUE(fd.body == NULL && fd.data_header.size == 0 && fd.descriptor.size == 0);
  wg_flight_data_reset(&fd);
  /* Entirely empty. */
  ASSERT_OK(wg_flight_data_encode(none, NULL, none, NULL, &bb, err), err);
  ASSERT_EQ(grpc_byte_buffer_length(bb), 0);
  rc = wg_flight_data_decode(bb, &fd, err);
  grpc_byte_buffer_destroy(bb);
  ASSERT_OK(rc, err);
  ASSERT_TRUE(fd.body == NULL && fd.holder == NULL && fd.app_metadata.size == 0);
  wg_flight_data_reset(&fd);
  /* A present but empty body is no body. */
  static const uint8_t empty_body[] = {0xC2, 0x3E, 0x00};
  bb = bb_from(empty_body, 3, 0);
  rc = wg_flight_data_decode(bb, &fd, err);
  grpc_byte_buffer_destroy(bb);
  ASSERT_OK(rc, err);
  ASSERT_TRUE(fd.body == NULL);
  wg_flight_data_reset(&fd);
}

static void encode_rejects_pieces_that_do_not_sum_to_body_length(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  struct wg_ipc_encoded m;
  wg_ipc_encoded_init(&m);
  static const uint8_t data[16];
  struct wg_ipc_piece pieces[2] = {{data, 8}, {data + 8, 8}};
  m.type = WG_IPC_MESSAGE_RECORD_BATCH;
  m.pieces = pieces;
  m.n_pieces = 2;
  m.body_length = 24;
  grpc_byte_buffer *bb = (grpc_byte_buffer *)1;
  struct wg_bytes none = {NULL, 0};
  int rc = wg_flight_data_encode(none, &m, none, NULL, &bb, err);
  ASSERT_EQ(rc, EINVAL);
  ASSERT_TRUE(bb == NULL);
  ASSERT_TRUE(strstr(err->message, "sum to 16 bytes") != NULL);
}

static atomic_int keepalive_released;
static void count_release(void *ctx) {
  (void)ctx;
  atomic_fetch_add(&keepalive_released, 1);
}

static void keepalive_is_held_until_grpc_drops_the_slices(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  enum wg_ipc_compression codecs[2] = {WG_IPC_COMPRESSION_NONE, WG_IPC_COMPRESSION_LZ4_FRAME};
  for (int c = 0; c < 2; c++) {
    struct wg_shared *keepalive = wg_shared_wrap(NULL, 0, count_release, NULL);
    ASSERT_TRUE(keepalive != NULL);
    struct sample s;
    ASSERT_OK(sample_make(&s, codecs[c], keepalive, err), err);
    int during = atomic_load(&keepalive->refcount);
    /* A copy of the byte buffer refs the same slices. */
    grpc_byte_buffer *copy = grpc_byte_buffer_copy(s.bb);
    grpc_byte_buffer_destroy(s.bb);
    s.bb = NULL;
    int after_first = atomic_load(&keepalive->refcount);
    /* The copy still decodes (LZ4 body: its scratch is still alive). */
    struct wg_flight_data fd;
    int rc = wg_flight_data_decode(copy, &fd, err);
    struct ArrowArray out = {0};
    if (rc == 0) rc = decode_ipc(&s, &fd, &out, err);
    char why[128] = "";
    bool values = rc == 0 && batch_matches(&out, why, sizeof(why));
    wg_array_release(&out);
    wg_flight_data_reset(&fd);
    grpc_byte_buffer_destroy(copy);
    int after = atomic_load(&keepalive->refcount);
    int released_before = atomic_load(&keepalive_released);
    wg_shared_unref(keepalive);
    int released_after = atomic_load(&keepalive_released);
    sample_reset(&s);
    ASSERT_OK(rc, err);
    if (!values) fprintf(stderr, "  %s\n", why);
    ASSERT_TRUE(values);
    ASSERT_EQ(during, 2); /* one reference from the holder the slices share */
    ASSERT_EQ(after_first, 2);
    ASSERT_EQ(after, 1);
    ASSERT_EQ(released_after - released_before, 1);
  }
}

static void schema_bytes_round_trip_framed_bare_and_legacy(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  struct wg_buf b;
  wg_buf_init(&b);
  ASSERT_OK(wg_flight_schema_bytes(&g_schema, &b, err), err);
  ASSERT_EQ(wg_load_u32(b.data), 0xFFFFFFFFu);
  ASSERT_EQ(wg_load_i32(b.data + 4), b.size - 8);
  struct wg_bytes forms[3] = {{b.data, b.size}, {b.data + 8, b.size - 8}, {b.data + 4, b.size - 4}};
  for (int i = 0; i < 3; i++) {
    struct ArrowSchema out;
    int rc = wg_flight_schema_parse(forms[i], &out, err);
    bool ok =
        rc == 0 && strcmp(out.format, "+s") == 0 && out.n_children == 2 &&
        strcmp(out.children[0]->format, "l") == 0 && strcmp(out.children[0]->name, "id") == 0 &&
        strcmp(out.children[1]->format, "u") == 0 && strcmp(out.children[1]->name, "name") == 0;
    if (rc == 0) wg_schema_release(&out);
    TEST_RECORD(ok, "schema form %d: rc %d %s", i, rc, err->message);
  }
  /* Garbage and truncations are errors, not crashes. */
  for (int64_t len = 0; len < b.size; len++) {
    struct ArrowSchema out;
    struct wg_bytes cut = {b.data, len};
    int rc = wg_flight_schema_parse(cut, &out, err);
    if (rc == 0) wg_schema_release(&out);
    if (rc != EPROTO) {
      TEST_RECORD(false, "schema prefix %lld: rc %d", (long long)len, rc);
      break;
    }
  }
  uint8_t junk[64];
  for (int i = 0; i < 64; i++)
    junk[i] = (uint8_t)(i * 37 + 11);
  struct ArrowSchema out;
  int rc = wg_flight_schema_parse((struct wg_bytes){junk, 64}, &out, err);
  wg_buf_reset(&b);
  ASSERT_EQ(rc, EPROTO);
}

static void pack_unpack_control_messages(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  /* Action */
  Arrow__Flight__Protocol__Action a = ARROW__FLIGHT__PROTOCOL__ACTION__INIT;
  a.type = "CancelFlightInfo";
  a.body.data = (uint8_t *)"\x01\x02\x00\x03";
  a.body.len = 4;
  grpc_byte_buffer *bb;
  ASSERT_OK(wg_flight_pack(&a.base, &bb, err), err);
  ProtobufCMessage *m;
  int rc = wg_flight_unpack(&arrow__flight__protocol__action__descriptor, bb, &m, err);
  grpc_byte_buffer_destroy(bb);
  ASSERT_OK(rc, err);
  Arrow__Flight__Protocol__Action *a2 = (Arrow__Flight__Protocol__Action *)m;
  bool ok = strcmp(a2->type, a.type) == 0 && a2->body.len == 4 &&
            memcmp(a2->body.data, a.body.data, 4) == 0;
  protobuf_c_message_free_unpacked(m, NULL);
  ASSERT_TRUE(ok);

  /* FlightDescriptor, unpacked from a byte buffer of 7-byte slices (flattened). */
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  char *path[3] = {"warehouse", "sales", "2024 orders with a long name"};
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__PATH;
  d.n_path = 3;
  d.path = path;
  ASSERT_OK(wg_flight_pack(&d.base, &bb, err), err);
  struct wg_buf flat;
  wg_buf_init(&flat);
  ASSERT_OK(flatten(bb, &flat), err);
  grpc_byte_buffer_destroy(bb);
  bb = bb_from(flat.data, flat.size, 7);
  wg_buf_reset(&flat);
  rc = wg_flight_unpack(&arrow__flight__protocol__flight_descriptor__descriptor, bb, &m, err);
  grpc_byte_buffer_destroy(bb);
  ASSERT_OK(rc, err);
  Arrow__Flight__Protocol__FlightDescriptor *d2 = (Arrow__Flight__Protocol__FlightDescriptor *)m;
  ok = d2->type == d.type && d2->n_path == 3 && strcmp(d2->path[2], path[2]) == 0;
  protobuf_c_message_free_unpacked(m, NULL);
  ASSERT_TRUE(ok);

  /* FlightInfo with the schema bytes, an endpoint and the counts. */
  struct wg_buf schema;
  wg_buf_init(&schema);
  ASSERT_OK(wg_flight_schema_bytes(&g_schema, &schema, err), err);
  Arrow__Flight__Protocol__Ticket t = ARROW__FLIGHT__PROTOCOL__TICKET__INIT;
  t.ticket.data = (uint8_t *)"ticket-1";
  t.ticket.len = 8;
  Arrow__Flight__Protocol__Location loc = ARROW__FLIGHT__PROTOCOL__LOCATION__INIT;
  loc.uri = "grpc+tcp://127.0.0.1:31337";
  Arrow__Flight__Protocol__Location *locs[1] = {&loc};
  Arrow__Flight__Protocol__FlightEndpoint ep = ARROW__FLIGHT__PROTOCOL__FLIGHT_ENDPOINT__INIT;
  ep.ticket = &t;
  ep.n_location = 1;
  ep.location = locs;
  Arrow__Flight__Protocol__FlightEndpoint *eps[1] = {&ep};
  Arrow__Flight__Protocol__FlightInfo fi = ARROW__FLIGHT__PROTOCOL__FLIGHT_INFO__INIT;
  fi.schema.data = schema.data;
  fi.schema.len = (size_t)schema.size;
  fi.flight_descriptor = &d;
  fi.n_endpoint = 1;
  fi.endpoint = eps;
  fi.total_records = N_ROWS;
  fi.total_bytes = -1;
  fi.ordered = 1;
  rc = wg_flight_pack(&fi.base, &bb, err);
  if (rc == 0) {
    rc = wg_flight_unpack(&arrow__flight__protocol__flight_info__descriptor, bb, &m, err);
    grpc_byte_buffer_destroy(bb);
  }
  ok = false;
  if (rc == 0) {
    Arrow__Flight__Protocol__FlightInfo *f2 = (Arrow__Flight__Protocol__FlightInfo *)m;
    struct ArrowSchema s2;
    int src = wg_flight_schema_parse((struct wg_bytes){f2->schema.data, (int64_t)f2->schema.len},
                                     &s2, err);
    ok = src == 0 && s2.n_children == 2 && f2->n_endpoint == 1 &&
         f2->endpoint[0]->ticket->ticket.len == 8 &&
         strcmp(f2->endpoint[0]->location[0]->uri, loc.uri) == 0 && f2->total_records == N_ROWS &&
         f2->total_bytes == -1 && f2->ordered && f2->flight_descriptor->n_path == 3;
    if (src == 0) wg_schema_release(&s2);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  wg_buf_reset(&schema);
  ASSERT_OK(rc, err);
  ASSERT_TRUE(ok);

  /* Malformed bytes are EPROTO naming the type; an empty buffer is a default message. */
  static const uint8_t bad[] = {0x0A, 0x10, 'x'};
  bb = bb_from(bad, sizeof(bad), 0);
  rc = wg_flight_unpack(&arrow__flight__protocol__flight_info__descriptor, bb, &m, err);
  grpc_byte_buffer_destroy(bb);
  ASSERT_EQ(rc, EPROTO);
  ASSERT_TRUE(m == NULL);
  ASSERT_TRUE(strstr(err->message, "FlightInfo") != NULL);
  Arrow__Flight__Protocol__Empty e = ARROW__FLIGHT__PROTOCOL__EMPTY__INIT;
  ASSERT_OK(wg_flight_pack(&e.base, &bb, err), err);
  ASSERT_EQ(grpc_byte_buffer_length(bb), 0);
  rc = wg_flight_unpack(&arrow__flight__protocol__empty__descriptor, bb, &m, err);
  grpc_byte_buffer_destroy(bb);
  ASSERT_OK(rc, err);
  protobuf_c_message_free_unpacked(m, NULL);
}

int main(void) {
  grpc_init();
  if (fixture_init() != 0) {
    fprintf(stderr, "fixture failed\n");
    return 1;
  }
  RUN_TEST(encode_then_decode_gives_the_same_batch);
  RUN_TEST(protobuf_c_reads_our_flight_data);
  RUN_TEST(our_codec_reads_protobuf_c_flight_data);
  RUN_TEST(body_across_seven_byte_slices_is_copied_aligned_and_equal);
  RUN_TEST(single_slice_body_is_referenced_not_copied);
  RUN_TEST(unknown_fields_are_skipped_and_the_last_field_wins);
  RUN_TEST(every_truncation_is_eproto_or_a_shorter_valid_message);
  RUN_TEST(bad_varints_lengths_and_wire_types_are_eproto);
  RUN_TEST(empty_and_metadata_only_messages);
  RUN_TEST(encode_rejects_pieces_that_do_not_sum_to_body_length);
  RUN_TEST(keepalive_is_held_until_grpc_drops_the_slices);
  RUN_TEST(schema_bytes_round_trip_framed_bare_and_legacy);
  RUN_TEST(pack_unpack_control_messages);
  wg_array_release(&g_batch);
  wg_schema_release(&g_schema);
  grpc_shutdown();
  return TEST_SUMMARY();
}
