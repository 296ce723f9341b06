/* wigeon: decoder behaviour the gold files do not show: zero copy into the body, realignment of a
 * misaligned body, delta dictionaries, decompression limits, nesting limits, and rejection of
 * well-framed messages whose contents lie (bad offsets, undeclared union ids, dictionary indices
 * out of range). Hostile contents are produced with our encoder, which copies what it is given. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/flatbuf.h"
#include "arrow/ipc.h"
#include "test.h"

/* ---- helpers ---- */

static int mk(struct ArrowArray *a, int64_t n_buffers, int64_t n_children, int64_t length,
              const void *b0, const void *b1, const void *b2) {
  int rc = wg_array_node_init(a, n_buffers, n_children, NULL);
  if (rc != 0) return rc;
  a->length = length;
  const void *bs[3] = {b0, b1, b2};
  for (int64_t i = 0; i < n_buffers && i < 3; i++)
    a->buffers[i] = bs[i];
  return 0;
}

/* A one-column schema. */
static void schema1(struct ArrowSchema *s, const char *format, const char *dict_format) {
  wg_schema_node_init(s, "+s", 1, NULL);
  wg_schema_node_init(s->children[0], format, 0, NULL);
  wg_schema_set_name(s->children[0], "c");
  if (dict_format != NULL) {
    wg_schema_alloc_dictionary(s->children[0]);
    wg_schema_node_init(s->children[0]->dictionary, dict_format, 0, NULL);
  }
}

/* A one-column batch around `col` (moved in). */
static void batch1(struct ArrowArray *b, struct ArrowArray *col) {
  mk(b, 1, 1, col->length, NULL, NULL, NULL);
  wg_array_move(col, b->children[0]);
}

/* Encodes schema + batch as a whole stream into *out (a 64-byte aligned copy, plus `shift`
 * bytes in front of it so that callers can misalign it). */
static int encode_stream(const struct ArrowSchema *s, const struct ArrowArray *b,
                         enum wg_ipc_compression comp, struct wg_buf *out, struct wg_error *err) {
  struct wg_ipc_encoder_options o = {comp, 0};
  struct wg_ipc_encoder *enc;
  WG_RETURN_NOT_OK(wg_ipc_encoder_create(&enc, s, &o, err));
  struct wg_ipc_encoded m[4];
  int64_t n = 0;
  for (int i = 0; i < 4; i++)
    wg_ipc_encoded_init(&m[i]);
  int rc = wg_ipc_encoder_schema(enc, &m[0], err);
  if (rc == 0) rc = wg_ipc_encoded_append_framed(&m[0], out);
  if (rc == 0) rc = wg_ipc_encoder_batch(enc, b, m, &n, err);
  for (int64_t i = 0; rc == 0 && i < n; i++)
    rc = wg_ipc_encoded_append_framed(&m[i], out);
  if (rc == 0) rc = wg_ipc_append_eos(out);
  for (int i = 0; i < 4; i++)
    wg_ipc_encoded_reset(&m[i]);
  wg_ipc_encoder_destroy(enc);
  return rc;
}

/* Decodes a stream: the first batch into *out (if any), the error code otherwise. */
static int decode_first(const uint8_t *data, int64_t size, const struct wg_ipc_limits *limits,
                        struct ArrowArray *out, char *msg, size_t msg_size) {
  struct wg_shared *bytes = wg_shared_wrap(data, size, NULL, NULL);
  struct ArrowArrayStream st;
  wg_ipc_stream_reader_init(&st, bytes, limits);
  int rc = st.get_next(&st, out);
  if (rc != 0 && msg != NULL) snprintf(msg, msg_size, "%s", st.get_last_error(&st));
  wg_stream_release(&st);
  wg_shared_unref(bytes);
  return rc;
}

/* ---- zero copy and alignment ---- */

static void decode_points_into_body_without_copy(void) {
  struct wg_error err;
  int64_t values[100];
  for (int i = 0; i < 100; i++)
    values[i] = i * 7;
  struct ArrowSchema s;
  struct ArrowArray col, b;
  schema1(&s, "l", NULL);
  mk(&col, 2, 0, 100, NULL, values, NULL);
  batch1(&b, &col);
  struct wg_buf out;
  wg_buf_init(&out);
  ASSERT_OK(encode_stream(&s, &b, WG_IPC_COMPRESSION_NONE, &out, &err), &err);
  uint8_t *aligned = aligned_alloc(64, (size_t)((out.size + 63) / 64 * 64));
  memcpy(aligned, out.data, (size_t)out.size);
  struct ArrowArray got;
  ASSERT_EQ(decode_first(aligned, out.size, NULL, &got, NULL, 0), 0);
  ASSERT_TRUE(got.release != NULL);
  const uint8_t *p = got.children[0]->buffers[1];
  ASSERT_TRUE(p >= aligned && p + 800 <= aligned + out.size); /* inside the input: no copy */
  ASSERT_EQ(memcmp(p, values, 800), 0);
  wg_array_release(&got);
  /* The same stream one byte off: the int64 buffer is copied to aligned memory. */
  uint8_t *shifted = malloc((size_t)out.size + 1);
  memcpy(shifted + 1, out.data, (size_t)out.size);
  ASSERT_EQ(decode_first(shifted + 1, out.size, NULL, &got, NULL, 0), 0);
  p = got.children[0]->buffers[1];
  ASSERT_TRUE(p < shifted || p >= shifted + out.size + 1);
  ASSERT_EQ((uintptr_t)p % 8, 0);
  ASSERT_EQ(memcmp(p, values, 800), 0);
  wg_array_release(&got);
  free(shifted);
  free(aligned);
  wg_buf_reset(&out);
  wg_array_release(&b);
  wg_schema_release(&s);
}

/* ---- limits ---- */

static void decompression_beyond_limit_is_rejected(void) {
  struct wg_error err;
  int64_t n = 1 << 21; /* 16 MiB of zeros compress to a few hundred bytes */
  int64_t *zeros = calloc((size_t)n, 8);
  struct ArrowSchema s;
  struct ArrowArray col, b;
  schema1(&s, "l", NULL);
  mk(&col, 2, 0, n, NULL, zeros, NULL);
  batch1(&b, &col);
  struct wg_buf out;
  wg_buf_init(&out);
  ASSERT_OK(encode_stream(&s, &b, WG_IPC_COMPRESSION_ZSTD, &out, &err), &err);
  ASSERT_TRUE(out.size < 4096);
  struct ArrowArray got;
  char msg[512] = "";
  /* Default limits: allowed (16 MiB of slack above the ratio). */
  ASSERT_EQ(decode_first(out.data, out.size, NULL, &got, msg, sizeof(msg)), 0);
  ASSERT_EQ(got.length, n);
  wg_array_release(&got);
  /* A 1 MiB limit: rejected with a message naming the size, before allocating it. */
  struct wg_ipc_limits small = {.max_decompressed_size = 1 << 20};
  ASSERT_EQ(decode_first(out.data, out.size, &small, &got, msg, sizeof(msg)), EPROTO);
  ASSERT_TRUE(strstr(msg, "decompresses to 16777216 bytes") != NULL);
  free(zeros);
  wg_buf_reset(&out);
  wg_array_release(&b);
  wg_schema_release(&s);
}

/* 32 MiB from about a kilobyte is over 4096x the body + 16 MiB: rejected by default, accepted when
 * the caller raises the ratio. */
static void decompression_ratio_is_bounded(void) {
  struct wg_error err;
  int64_t n = 1 << 22;
  int64_t *zeros = calloc((size_t)n, 8);
  struct ArrowSchema s;
  struct ArrowArray col, b, got;
  schema1(&s, "l", NULL);
  mk(&col, 2, 0, n, NULL, zeros, NULL);
  batch1(&b, &col);
  struct wg_buf out;
  wg_buf_init(&out);
  ASSERT_OK(encode_stream(&s, &b, WG_IPC_COMPRESSION_ZSTD, &out, &err), &err);
  ASSERT_TRUE(out.size < 8192);
  char msg[512] = "";
  ASSERT_EQ(decode_first(out.data, out.size, NULL, &got, msg, sizeof(msg)), EPROTO);
  ASSERT_TRUE(strstr(msg, "decompresses to 33554432 bytes") != NULL);
  struct wg_ipc_limits generous = {.max_decompression_ratio = 1 << 20};
  ASSERT_EQ(decode_first(out.data, out.size, &generous, &got, msg, sizeof(msg)), 0);
  ASSERT_EQ(got.length, n);
  wg_array_release(&got);
  free(zeros);
  wg_buf_reset(&out);
  wg_array_release(&b);
  wg_schema_release(&s);
}

static void nesting_deeper_than_limit_is_rejected(void) {
  struct wg_error err;
  /* list<list<...<int32>>> 80 levels deep */
  struct ArrowSchema s;
  wg_schema_node_init(&s, "+s", 1, NULL);
  struct ArrowSchema *node = s.children[0];
  for (int i = 0; i < 80; i++) {
    wg_schema_node_init(node, "+l", 1, NULL);
    wg_schema_set_name(node, "l");
    node = node->children[0];
  }
  wg_schema_node_init(node, "i", 0, NULL);
  struct wg_ipc_encoder *enc;
  ASSERT_OK(wg_ipc_encoder_create(&enc, &s, NULL, &err), &err);
  struct wg_ipc_encoded m;
  wg_ipc_encoded_init(&m);
  ASSERT_OK(wg_ipc_encoder_schema(enc, &m, &err), &err);
  struct ArrowSchema got;
  struct wg_bytes md = {m.metadata.data, m.metadata.size};
  ASSERT_EQ(wg_ipc_decode_schema_message(md, &got, &err), EPROTO);
  ASSERT_TRUE(strstr(err.message, "deeper than 64") != NULL);
  wg_ipc_encoded_reset(&m);
  wg_ipc_encoder_destroy(enc);
  wg_schema_release(&s);
}

/* limits.max_fields counts every field, nested ones included, and refuses before decoding them:
 * a struct of 3 members and a list of int are 1 + 3 + 1 + 1 = 6 fields. */
static int decode_with_max_fields(const struct wg_ipc_encoded *m, int64_t max_fields,
                                  struct wg_error *err) {
  struct wg_ipc_limits limits = {.max_fields = max_fields};
  struct wg_ipc_decoder *dec;
  WG_RETURN_NOT_OK(wg_ipc_decoder_create(&dec, &limits, err));
  enum wg_ipc_message_type type;
  struct ArrowArray unused;
  struct wg_bytes md = {m->metadata.data, m->metadata.size};
  int rc = wg_ipc_decoder_decode(dec, md, NULL, &type, &unused, err);
  wg_ipc_decoder_destroy(dec);
  return rc;
}

static void schema_with_more_fields_than_limit_is_rejected(void) {
  struct wg_error err;
  struct ArrowSchema s;
  wg_schema_node_init(&s, "+s", 2, NULL);
  wg_schema_node_init(s.children[0], "+s", 3, NULL);
  wg_schema_set_name(s.children[0], "st");
  for (int i = 0; i < 3; i++) {
    wg_schema_node_init(s.children[0]->children[i], "i", 0, NULL);
    wg_schema_set_name(s.children[0]->children[i], i == 0 ? "a" : i == 1 ? "b" : "c");
  }
  wg_schema_node_init(s.children[1], "+l", 1, NULL);
  wg_schema_set_name(s.children[1], "l");
  wg_schema_node_init(s.children[1]->children[0], "i", 0, NULL);
  wg_schema_set_name(s.children[1]->children[0], "item");
  struct wg_ipc_encoder *enc;
  ASSERT_OK(wg_ipc_encoder_create(&enc, &s, NULL, &err), &err);
  struct wg_ipc_encoded m;
  wg_ipc_encoded_init(&m);
  ASSERT_OK(wg_ipc_encoder_schema(enc, &m, &err), &err);
  ASSERT_OK(decode_with_max_fields(&m, 6, &err), &err);
  ASSERT_EQ(decode_with_max_fields(&m, 5, &err), E2BIG);
  ASSERT_TRUE(strstr(err.message, "more than 5 fields") != NULL);
  ASSERT_EQ(decode_with_max_fields(&m, 1, &err), E2BIG); /* the top level alone: 2 columns */
  wg_ipc_encoded_reset(&m);
  wg_ipc_encoder_destroy(enc);
  wg_schema_release(&s);
}

/* ---- lying contents ---- */

static void decreasing_string_offsets_are_rejected(void) {
  struct wg_error err;
  int32_t offsets[4] = {0, 5, 3, 6};
  const char data[8] = "abcdef";
  struct ArrowSchema s;
  struct ArrowArray col, b, got;
  schema1(&s, "u", NULL);
  mk(&col, 3, 0, 3, NULL, offsets, data);
  batch1(&b, &col);
  struct wg_buf out;
  wg_buf_init(&out);
  ASSERT_OK(encode_stream(&s, &b, WG_IPC_COMPRESSION_NONE, &out, &err), &err);
  char msg[512];
  ASSERT_EQ(decode_first(out.data, out.size, NULL, &got, msg, sizeof(msg)), EPROTO);
  ASSERT_TRUE(strstr(msg, "offsets decrease") != NULL);
  wg_buf_reset(&out);
  wg_array_release(&b);
  wg_schema_release(&s);
}

static void string_offset_past_data_is_rejected(void) {
  struct wg_error err;
  int32_t offsets[3] = {0, 2, 4000};
  const char data[8] = "abcdef";
  struct ArrowSchema s;
  struct ArrowArray col, b, got;
  schema1(&s, "u", NULL);
  mk(&col, 3, 0, 2, NULL, offsets, data);
  batch1(&b, &col);
  /* First a valid message: 4000 readable data bytes, which the encoder sends. */
  char *big = calloc(1, 4000);
  b.children[0]->buffers[2] = big;
  struct wg_buf out;
  wg_buf_init(&out);
  ASSERT_OK(encode_stream(&s, &b, WG_IPC_COMPRESSION_NONE, &out, &err), &err);
  ASSERT_EQ(decode_first(out.data, out.size, NULL, &got, NULL, 0), 0);
  wg_array_release(&got);
  /* Shrink the data buffer's declared length in the RecordBatch metadata: find the Buffer struct
   * whose length is 4000 and make it 4. */
  int patched = 0;
  struct wg_bytes all = {out.data, out.size}, md;
  int64_t pos = 0, body_len;
  ASSERT_EQ(wg_ipc_frame_next(all, &pos, &md, &body_len, &err), 0); /* schema */
  ASSERT_EQ(wg_ipc_frame_next(all, &pos, &md, &body_len, &err), 0); /* record batch */
  for (int64_t i = md.data - out.data; i + 16 <= pos; i += 8) {
    if (wg_load_i64(out.data + i + 8) == 4000) {
      wg_store_i64(out.data + i + 8, 4);
      patched++;
    }
  }
  ASSERT_EQ(patched, 1);
  char msg[512];
  ASSERT_EQ(decode_first(out.data, out.size, NULL, &got, msg, sizeof(msg)), EPROTO);
  ASSERT_TRUE(strstr(msg, "past the end") != NULL);
  free(big);
  wg_buf_reset(&out);
  wg_array_release(&b);
  wg_schema_release(&s);
}

static void undeclared_union_type_id_is_rejected(void) {
  struct wg_error err;
  int8_t ids[3] = {0, 1, 7};
  int32_t offs[3] = {0, 0, 1};
  int32_t ints[2] = {1, 2};
  int64_t longs[1] = {3};
  struct ArrowSchema s;
  wg_schema_node_init(&s, "+s", 1, NULL);
  wg_schema_node_init(s.children[0], "+ud:0,1", 2, NULL);
  wg_schema_set_name(s.children[0], "u");
  wg_schema_node_init(s.children[0]->children[0], "i", 0, NULL);
  wg_schema_node_init(s.children[0]->children[1], "l", 0, NULL);
  struct ArrowArray col, b, got;
  mk(&col, 2, 2, 3, ids, offs, NULL);
  mk(col.children[0], 2, 0, 2, NULL, ints, NULL);
  mk(col.children[1], 2, 0, 1, NULL, longs, NULL);
  batch1(&b, &col);
  struct wg_buf out;
  wg_buf_init(&out);
  ASSERT_OK(encode_stream(&s, &b, WG_IPC_COMPRESSION_NONE, &out, &err), &err);
  char msg[512];
  ASSERT_EQ(decode_first(out.data, out.size, NULL, &got, msg, sizeof(msg)), EPROTO);
  ASSERT_TRUE(strstr(msg, "type id 7") != NULL);
  wg_buf_reset(&out);
  wg_array_release(&b);
  wg_schema_release(&s);
}

static void dictionary_index_out_of_range_is_rejected(void) {
  struct wg_error err;
  int8_t idx[3] = {0, 1, 5};
  int32_t offsets[3] = {0, 1, 2};
  struct ArrowSchema s;
  struct ArrowArray col, b, got;
  schema1(&s, "c", "u");
  mk(&col, 2, 0, 3, NULL, idx, NULL);
  wg_array_alloc_dictionary(&col);
  mk(col.dictionary, 3, 0, 2, NULL, offsets, "ab");
  batch1(&b, &col);
  struct wg_buf out;
  wg_buf_init(&out);
  ASSERT_OK(encode_stream(&s, &b, WG_IPC_COMPRESSION_NONE, &out, &err), &err);
  char msg[512];
  ASSERT_EQ(decode_first(out.data, out.size, NULL, &got, msg, sizeof(msg)), EPROTO);
  ASSERT_TRUE(strstr(msg, "dictionary index 5") != NULL);
  wg_buf_reset(&out);
  wg_array_release(&b);
  wg_schema_release(&s);
}

/* ---- delta dictionaries ---- */

/* Sets DictionaryBatch.isDelta in an encoded DictionaryBatch message (the encoder writes the field
 * even when false, so the byte exists). */
static int set_is_delta(struct wg_ipc_encoded *m) {
  struct wg_fb_table msg, header;
  bool present;
  struct wg_bytes md = {m->metadata.data, m->metadata.size};
  if (wg_fb_root(md, &msg, NULL) != 0) return -1;
  if (wg_fb_table_field(&msg, 2, &present, &header, NULL) != 0 || !present) return -1;
  int64_t entry = header.vt_pos + 4 + 2 * 2;
  if (4 + 2 * 2 + 2 > header.vt_size) return -1;
  int off = wg_load_u16(header.buf + entry);
  if (off == 0) return -1;
  m->metadata.data[header.pos + off] = 1;
  return 0;
}

/* Encodes a batch of int8 indices over a utf8 dictionary; returns its messages. */
static int encode_dict_batch(struct wg_ipc_encoder *enc, const int8_t *idx, int64_t n,
                             const int32_t *offsets, const char *data, int64_t dict_len,
                             struct wg_ipc_encoded *m, int64_t *n_out, struct wg_error *err) {
  struct ArrowArray col, b;
  mk(&col, 2, 0, n, NULL, idx, NULL);
  wg_array_alloc_dictionary(&col);
  mk(col.dictionary, 3, 0, dict_len, NULL, offsets, data);
  batch1(&b, &col);
  int rc = wg_ipc_encoder_batch(enc, &b, m, n_out, err);
  wg_array_release(&b);
  return rc;
}

static void delta_dictionary_appends_to_the_dictionary(void) {
  struct wg_error err;
  struct ArrowSchema s;
  schema1(&s, "c", "u");
  struct wg_ipc_encoder *enc, *enc2;
  ASSERT_OK(wg_ipc_encoder_create(&enc, &s, NULL, &err), &err);
  ASSERT_OK(wg_ipc_encoder_create(&enc2, &s, NULL, &err), &err);
  struct wg_ipc_encoded sm, m1[2], m2[2], m3[2];
  wg_ipc_encoded_init(&sm);
  for (int i = 0; i < 2; i++) {
    wg_ipc_encoded_init(&m1[i]);
    wg_ipc_encoded_init(&m2[i]);
    wg_ipc_encoded_init(&m3[i]);
  }
  int64_t n1, n2, n3;
  ASSERT_OK(wg_ipc_encoder_schema(enc, &sm, &err), &err);
  int8_t i1[2] = {0, 1}, i2[3] = {2, 0, 3};
  int32_t o1[3] = {0, 1, 3}, o_delta[3] = {0, 3, 4}, o_all[5] = {0, 1, 3, 6, 7};
  /* batch 1 with dictionary [a, bb] */
  ASSERT_OK(encode_dict_batch(enc, i1, 2, o1, "abb", 2, m1, &n1, &err), &err);
  ASSERT_EQ(n1, 2);
  /* the delta [ccc, d], as its own dictionary message turned into a delta */
  ASSERT_OK(encode_dict_batch(enc2, i1, 2, o_delta, "cccd", 2, m2, &n2, &err), &err);
  ASSERT_EQ(set_is_delta(&m2[0]), 0);
  /* batch 2's record batch: indices into [a, bb, ccc, d] */
  ASSERT_OK(encode_dict_batch(enc, i2, 3, o_all, "abbcccd", 4, m3, &n3, &err), &err);

  struct wg_buf out;
  wg_buf_init(&out);
  wg_ipc_encoded_append_framed(&sm, &out);
  wg_ipc_encoded_append_framed(&m1[0], &out);
  wg_ipc_encoded_append_framed(&m1[1], &out);
  wg_ipc_encoded_append_framed(&m2[0], &out);
  wg_ipc_encoded_append_framed(&m3[n3 - 1], &out); /* the record batch only */
  wg_ipc_append_eos(&out);

  struct wg_shared *bytes = wg_shared_wrap(out.data, out.size, NULL, NULL);
  struct ArrowArrayStream st;
  wg_ipc_stream_reader_init(&st, bytes, NULL);
  struct ArrowArray a1, a2;
  ASSERT_EQ(st.get_next(&st, &a1), 0);
  ASSERT_EQ(a1.children[0]->dictionary->length, 2);
  ASSERT_EQ(st.get_next(&st, &a2), 0);
  ASSERT_TRUE(a2.release != NULL);
  const struct ArrowArray *d = a2.children[0]->dictionary;
  ASSERT_EQ(d->length, 4);
  const int32_t *offs = d->buffers[1];
  ASSERT_EQ(offs[4], 7);
  ASSERT_EQ(memcmp((const char *)d->buffers[2] + offs[0], "abbcccd", 7), 0);
  /* the first batch keeps its own two-entry dictionary */
  ASSERT_EQ(a1.children[0]->dictionary->length, 2);
  ASSERT_EQ(wg_ipc_validate_array(&s, &a2, &err), 0);
  wg_array_release(&a1);
  wg_array_release(&a2);
  wg_stream_release(&st);
  wg_shared_unref(bytes);
  wg_buf_reset(&out);
  wg_ipc_encoded_reset(&sm);
  for (int i = 0; i < 2; i++) {
    wg_ipc_encoded_reset(&m1[i]);
    wg_ipc_encoded_reset(&m2[i]);
    wg_ipc_encoded_reset(&m3[i]);
  }
  wg_ipc_encoder_destroy(enc);
  wg_ipc_encoder_destroy(enc2);
  wg_schema_release(&s);
}

/* Dictionaries of a nested or fixed-width value type for the delta tests: which 0 is the first
 * dictionary (2 values), 1 the delta (2 more), 2 both (what the record batch after the delta
 * indexes). int64 "l", struct<x: int64> "+s", list<int64> "+l". */
static const int64_t delta_values[3][4] = {{10, 20}, {30, 40}, {10, 20, 30, 40}};
static const int32_t delta_list_offsets[3][5] = {{0, 1, 2}, {0, 1, 2}, {0, 1, 2, 3, 4}};

static void delta_dictionary(const char *format, int which, struct ArrowArray *d) {
  int64_t n = which == 2 ? 4 : 2;
  if (strcmp(format, "l") == 0) {
    mk(d, 2, 0, n, NULL, delta_values[which], NULL);
  } else if (strcmp(format, "+s") == 0) {
    mk(d, 1, 1, n, NULL, NULL, NULL);
    mk(d->children[0], 2, 0, n, NULL, delta_values[which], NULL);
  } else {
    mk(d, 2, 1, n, NULL, delta_list_offsets[which], NULL);
    mk(d->children[0], 2, 0, n, NULL, delta_values[which], NULL);
  }
}

/* A stream of: schema, batch 1 (indices {0, 1} over dictionary 0), the delta, batch 2 (indices
 * {2, 0, 3}); decodes it with `limits` into a1, a2. Returns the first non-zero code. */
static int decode_delta_stream(const char *format, const struct wg_ipc_limits *limits,
                               struct ArrowArray *a1, struct ArrowArray *a2, char *msg) {
  struct wg_error err = {{0}};
  struct ArrowSchema s;
  schema1(&s, "c", NULL);
  wg_schema_alloc_dictionary(s.children[0]);
  struct ArrowSchema *v = s.children[0]->dictionary;
  wg_schema_node_init(v, format, format[0] == '+' ? 1 : 0, NULL);
  if (format[0] == '+') {
    wg_schema_node_init(v->children[0], "l", 0, NULL);
    wg_schema_set_name(v->children[0], "x");
  }
  struct wg_ipc_encoder *enc[3];
  struct wg_ipc_encoded sm, m[3][2];
  int64_t nm[3];
  wg_ipc_encoded_init(&sm);
  int rc = 0;
  static const int8_t idx[3][3] = {{0, 1}, {0, 1}, {2, 0, 3}};
  for (int i = 0; i < 3; i++) {
    wg_ipc_encoded_init(&m[i][0]);
    wg_ipc_encoded_init(&m[i][1]);
    enc[i] = NULL;
    if (rc == 0) rc = wg_ipc_encoder_create(&enc[i], &s, NULL, &err);
    struct ArrowArray col, b;
    if (rc == 0) {
      mk(&col, 2, 0, i == 2 ? 3 : 2, NULL, idx[i], NULL);
      wg_array_alloc_dictionary(&col);
      delta_dictionary(format, i, col.dictionary);
      batch1(&b, &col);
      rc = wg_ipc_encoder_batch(enc[i], &b, m[i], &nm[i], &err);
      wg_array_release(&b);
    }
  }
  if (rc == 0) rc = wg_ipc_encoder_schema(enc[0], &sm, &err);
  if (rc == 0) rc = set_is_delta(&m[1][0]);
  struct wg_buf out;
  wg_buf_init(&out);
  if (rc == 0) {
    wg_ipc_encoded_append_framed(&sm, &out);
    wg_ipc_encoded_append_framed(&m[0][0], &out);
    wg_ipc_encoded_append_framed(&m[0][1], &out);
    wg_ipc_encoded_append_framed(&m[1][0], &out);              /* the delta */
    wg_ipc_encoded_append_framed(&m[2][nm[2] - 1], &out);      /* batch 2 without its dictionary */
    wg_ipc_append_eos(&out);
    struct wg_shared *bytes = wg_shared_wrap(out.data, out.size, NULL, NULL);
    struct ArrowArrayStream st;
    wg_ipc_stream_reader_init(&st, bytes, limits);
    rc = st.get_next(&st, a1);
    if (rc == 0) rc = st.get_next(&st, a2);
    if (rc != 0) snprintf(msg, 512, "%s", st.get_last_error(&st));
    if (rc == 0) rc = wg_ipc_validate_array(&s, a2, &err);
    wg_stream_release(&st);
    wg_shared_unref(bytes);
  }
  wg_buf_reset(&out);
  wg_ipc_encoded_reset(&sm);
  for (int i = 0; i < 3; i++) {
    wg_ipc_encoded_reset(&m[i][0]);
    wg_ipc_encoded_reset(&m[i][1]);
    wg_ipc_encoder_destroy(enc[i]);
  }
  wg_schema_release(&s);
  return rc;
}

static void delta_dictionaries_of_fixed_widths_and_structs_append_their_values(void) {
  const char *formats[2] = {"l", "+s"};
  for (int f = 0; f < 2; f++) {
    struct ArrowArray a1 = {0}, a2 = {0};
    char msg[512] = "";
    ASSERT_OK(decode_delta_stream(formats[f], NULL, &a1, &a2, msg), msg);
    const struct ArrowArray *d = a2.children[0]->dictionary;
    ASSERT_EQ(d->length, 4);
    const struct ArrowArray *vals = formats[f][0] == '+' ? d->children[0] : d;
    int64_t got[4];
    memcpy(got, (const int64_t *)vals->buffers[1] + vals->offset, sizeof(got));
    for (int i = 0; i < 4; i++)
      ASSERT_EQ(got[i], delta_values[2][i]);
    ASSERT_EQ(a1.children[0]->dictionary->length, 2); /* batch 1 keeps its own dictionary */
    wg_array_release(&a1);
    wg_array_release(&a2);
  }
}

static void delta_dictionary_of_lists_is_unsupported(void) {
  struct ArrowArray a1 = {0}, a2 = {0};
  char msg[512] = "";
  ASSERT_EQ(decode_delta_stream("+l", NULL, &a1, &a2, msg), ENOTSUP);
  ASSERT_TRUE(strstr(msg, "delta dictionaries of type +l") != NULL);
  wg_array_release(&a1);
  wg_array_release(&a2);
}

static void delta_dictionary_over_the_allocation_budget_is_malformed_not_out_of_memory(void) {
  struct wg_ipc_limits limits = {0};
  limits.max_decompressed_size = 16; /* the budget of delta concatenations: 4 int64 need 32 */
  struct ArrowArray a1 = {0}, a2 = {0};
  char msg[512] = "";
  ASSERT_EQ(decode_delta_stream("l", &limits, &a1, &a2, msg), EPROTO);
  ASSERT_TRUE(strstr(msg, "over the 16 byte limit") != NULL);
  ASSERT_TRUE(strstr(msg, "delta dictionary") != NULL);
  wg_array_release(&a1);
  wg_array_release(&a2);
}

static void second_schema_message_is_rejected(void) {
  struct wg_error err;
  struct ArrowSchema s;
  schema1(&s, "i", NULL);
  struct wg_ipc_encoder *enc;
  ASSERT_OK(wg_ipc_encoder_create(&enc, &s, NULL, &err), &err);
  struct wg_ipc_encoded m;
  wg_ipc_encoded_init(&m);
  ASSERT_OK(wg_ipc_encoder_schema(enc, &m, &err), &err);
  struct wg_buf out;
  wg_buf_init(&out);
  wg_ipc_encoded_append_framed(&m, &out);
  wg_ipc_encoded_append_framed(&m, &out);
  struct ArrowArray got;
  char msg[512];
  ASSERT_EQ(decode_first(out.data, out.size, NULL, &got, msg, sizeof(msg)), EPROTO);
  ASSERT_TRUE(strstr(msg, "second Schema") != NULL);
  wg_buf_reset(&out);
  wg_ipc_encoded_reset(&m);
  wg_ipc_encoder_destroy(enc);
  wg_schema_release(&s);
}

int main(void) {
  RUN_TEST(decode_points_into_body_without_copy);
  RUN_TEST(decompression_beyond_limit_is_rejected);
  RUN_TEST(decompression_ratio_is_bounded);
  RUN_TEST(nesting_deeper_than_limit_is_rejected);
  RUN_TEST(schema_with_more_fields_than_limit_is_rejected);
  RUN_TEST(decreasing_string_offsets_are_rejected);
  RUN_TEST(string_offset_past_data_is_rejected);
  RUN_TEST(undeclared_union_type_id_is_rejected);
  RUN_TEST(dictionary_index_out_of_range_is_rejected);
  RUN_TEST(delta_dictionary_appends_to_the_dictionary);
  RUN_TEST(delta_dictionaries_of_fixed_widths_and_structs_append_their_values);
  RUN_TEST(delta_dictionary_of_lists_is_unsupported);
  RUN_TEST(delta_dictionary_over_the_allocation_budget_is_malformed_not_out_of_memory);
  RUN_TEST(second_schema_message_is_rejected);
  return TEST_SUMMARY();
}
