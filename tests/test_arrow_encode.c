/* wigeon: tests for the IPC writer (arrow/ipc_encode.c) and the flatbuffer builder (arrow/fbb.c).
 * Arrays are built by hand, encoded, framed into a stream and read back with our decoder; values
 * are compared element by element. Also checks zero copy (pieces point into the source buffers),
 * 8-byte alignment of every body buffer, dictionary re-sending and LZ4/ZSTD bodies. */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "arrow/array.h"
#include "arrow/fbb.h"
#include "arrow/flatbuf.h"
#include "arrow/format.h"
#include "arrow/ipc.h"
#include "test.h"

/* ---- building arrays ---- */

/* Fills *a (already allocated, e.g. a child slot) as an array node with up to 4 buffers. */
static int mk(struct ArrowArray *a, int64_t n_buffers, int64_t n_children, int64_t length,
              int64_t null_count, int64_t offset, const void *b0, const void *b1, const void *b2,
              const void *b3) {
  int rc = wg_array_node_init(a, n_buffers, n_children, NULL);
  if (rc != 0) return rc;
  a->length = length;
  a->null_count = null_count;
  a->offset = offset;
  const void *bs[4] = {b0, b1, b2, b3};
  for (int64_t i = 0; i < n_buffers && i < 4; i++)
    a->buffers[i] = bs[i];
  return 0;
}

static int mks(struct ArrowSchema *s, const char *format, const char *name, int64_t n_children) {
  int rc = wg_schema_node_init(s, format, n_children, NULL);
  if (rc == 0 && name != NULL) rc = wg_schema_set_name(s, name);
  return rc;
}

/* ---- comparing arrays element by element ---- */

static bool elem_eq(const struct ArrowSchema *s, const struct ArrowArray *a, int64_t i,
                    const struct ArrowArray *b, int64_t j);

static bool valid_at(const struct wg_arrow_type *t, const struct ArrowArray *a, int64_t i) {
  if (!wg_arrow_type_has_validity(t) || a->buffers[0] == NULL) return true;
  return wg_bit_get(a->buffers[0], a->offset + i);
}

static int64_t load_int(const struct wg_arrow_type *t, const void *p, int64_t i) {
  const uint8_t *q = (const uint8_t *)p + i * (t->bit_width / 8);
  bool is_signed = ((t->id - WG_TYPE_INT8) & 1) == 0;
  switch (t->bit_width) {
  case 8: {
    uint8_t v;
    memcpy(&v, q, 1);
    return is_signed ? (int8_t)v : v;
  }
  case 16: {
    uint16_t v;
    memcpy(&v, q, 2);
    return is_signed ? (int16_t)v : v;
  }
  case 32: {
    uint32_t v;
    memcpy(&v, q, 4);
    return is_signed ? (int32_t)v : (int64_t)v;
  }
  default: {
    int64_t v;
    memcpy(&v, q, 8);
    return v;
  }
  }
}

static int64_t load_off(const void *p, int64_t i, int width) {
  if (width == 4) {
    int32_t v;
    memcpy(&v, (const uint8_t *)p + 4 * i, 4);
    return v;
  }
  int64_t v;
  memcpy(&v, (const uint8_t *)p + 8 * i, 8);
  return v;
}

static void view_at(const struct ArrowArray *a, int64_t i, const uint8_t **data, int32_t *len) {
  const uint8_t *v = (const uint8_t *)a->buffers[1] + 16 * (a->offset + i);
  memcpy(len, v, 4);
  if (*len <= 12) {
    *data = v + 4;
  } else {
    int32_t idx, off;
    memcpy(&idx, v + 8, 4);
    memcpy(&off, v + 12, 4);
    *data = (const uint8_t *)a->buffers[2 + idx] + off;
  }
}

static int child_for_type_id(const struct wg_arrow_type *t, int8_t id) {
  for (int k = 0; k < t->n_type_ids; k++)
    if (t->type_ids[k] == id) return k;
  return -1;
}

/* The run (index into the values child) holding logical position p of a run-end encoded array. */
static int64_t run_index(const struct ArrowSchema *s, const struct ArrowArray *a, int64_t p) {
  struct wg_arrow_type rt;
  if (wg_arrow_type_parse(s->children[0]->format, &rt, NULL) != 0) return -1;
  const struct ArrowArray *re = a->children[0];
  int64_t lo = 0, hi = re->length;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (load_int(&rt, re->buffers[1], re->offset + mid) > p)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

static bool elem_eq(const struct ArrowSchema *s, const struct ArrowArray *a, int64_t i,
                    const struct ArrowArray *b, int64_t j) {
  struct wg_arrow_type t;
  if (wg_arrow_type_parse(s->format, &t, NULL) != 0) return false;
  bool va = valid_at(&t, a, i), vb = valid_at(&t, b, j);
  if (va != vb) return false;
  if (!va) return true;
  if (s->dictionary != NULL)
    return elem_eq(s->dictionary, a->dictionary, load_int(&t, a->buffers[1], a->offset + i),
                   b->dictionary, load_int(&t, b->buffers[1], b->offset + j));
  int64_t pa = a->offset + i, pb = b->offset + j;
  switch (t.id) {
  case WG_TYPE_NA:
    return true;
  case WG_TYPE_BOOL:
    return wg_bit_get(a->buffers[1], pa) == wg_bit_get(b->buffers[1], pb);
  case WG_TYPE_STRING:
  case WG_TYPE_BINARY:
  case WG_TYPE_LARGE_STRING:
  case WG_TYPE_LARGE_BINARY: {
    int w = t.id == WG_TYPE_STRING || t.id == WG_TYPE_BINARY ? 4 : 8;
    int64_t a0 = load_off(a->buffers[1], pa, w), a1 = load_off(a->buffers[1], pa + 1, w);
    int64_t b0 = load_off(b->buffers[1], pb, w), b1 = load_off(b->buffers[1], pb + 1, w);
    if (a1 - a0 != b1 - b0) return false;
    return a1 == a0 || memcmp((const uint8_t *)a->buffers[2] + a0,
                              (const uint8_t *)b->buffers[2] + b0, (size_t)(a1 - a0)) == 0;
  }
  case WG_TYPE_STRING_VIEW:
  case WG_TYPE_BINARY_VIEW: {
    const uint8_t *da, *db;
    int32_t la, lb;
    view_at(a, i, &da, &la);
    view_at(b, j, &db, &lb);
    return la == lb && memcmp(da, db, (size_t)la) == 0;
  }
  case WG_TYPE_LIST:
  case WG_TYPE_LARGE_LIST:
  case WG_TYPE_MAP: {
    int w = t.id == WG_TYPE_LARGE_LIST ? 8 : 4;
    int64_t a0 = load_off(a->buffers[1], pa, w), a1 = load_off(a->buffers[1], pa + 1, w);
    int64_t b0 = load_off(b->buffers[1], pb, w), b1 = load_off(b->buffers[1], pb + 1, w);
    if (a1 - a0 != b1 - b0) return false;
    for (int64_t k = 0; k < a1 - a0; k++)
      if (!elem_eq(s->children[0], a->children[0], a0 + k, b->children[0], b0 + k)) return false;
    return true;
  }
  case WG_TYPE_LIST_VIEW:
  case WG_TYPE_LARGE_LIST_VIEW: {
    int w = t.id == WG_TYPE_LIST_VIEW ? 4 : 8;
    int64_t a0 = load_off(a->buffers[1], pa, w), an = load_off(a->buffers[2], pa, w);
    int64_t b0 = load_off(b->buffers[1], pb, w), bn = load_off(b->buffers[2], pb, w);
    if (an != bn) return false;
    for (int64_t k = 0; k < an; k++)
      if (!elem_eq(s->children[0], a->children[0], a0 + k, b->children[0], b0 + k)) return false;
    return true;
  }
  case WG_TYPE_RUN_END_ENCODED:
    return elem_eq(s->children[1], a->children[1], run_index(s, a, pa), b->children[1],
                   run_index(s, b, pb));
  case WG_TYPE_FIXED_SIZE_LIST:
    for (int64_t k = 0; k < t.fixed_size; k++)
      if (!elem_eq(s->children[0], a->children[0], pa * t.fixed_size + k, b->children[0],
                   pb * t.fixed_size + k))
        return false;
    return true;
  case WG_TYPE_STRUCT:
    for (int64_t k = 0; k < s->n_children; k++)
      if (!elem_eq(s->children[k], a->children[k], pa, b->children[k], pb)) return false;
    return true;
  case WG_TYPE_SPARSE_UNION:
  case WG_TYPE_DENSE_UNION: {
    int8_t ta = ((const int8_t *)a->buffers[0])[pa], tb = ((const int8_t *)b->buffers[0])[pb];
    if (ta != tb) return false;
    int c = child_for_type_id(&t, ta);
    if (c < 0) return false;
    int64_t ca = pa, cb = pb;
    if (t.id == WG_TYPE_DENSE_UNION) {
      ca = load_off(a->buffers[1], pa, 4);
      cb = load_off(b->buffers[1], pb, 4);
    }
    return elem_eq(s->children[c], a->children[c], ca, b->children[c], cb);
  }
  default: {
    int64_t w = t.bit_width / 8;
    return memcmp((const uint8_t *)a->buffers[1] + pa * w, (const uint8_t *)b->buffers[1] + pb * w,
                  (size_t)w) == 0;
  }
  }
}

/* Compares the columns of two record batches (struct arrays) of schema s. */
static bool batches_eq(const struct ArrowSchema *s, const struct ArrowArray *a,
                       const struct ArrowArray *b) {
  if (a->length != b->length || a->n_children != b->n_children) {
    fprintf(stderr, "  batch shape differs: %lld/%lld rows, %lld/%lld columns\n",
            (long long)a->length, (long long)b->length, (long long)a->n_children,
            (long long)b->n_children);
    return false;
  }
  for (int64_t c = 0; c < s->n_children; c++)
    for (int64_t i = 0; i < a->length; i++)
      if (!elem_eq(s->children[c], a->children[c], a->offset + i, b->children[c], b->offset + i)) {
        fprintf(stderr, "  column %lld ('%s') differs at row %lld\n", (long long)c,
                s->children[c]->name ? s->children[c]->name : "", (long long)i);
        return false;
      }
  return true;
}

/* ---- encoding and decoding streams ---- */

struct decoded {
  struct ArrowSchema schema;
  struct ArrowArray batches[8];
  int n;
};

static void decoded_release(struct decoded *d) {
  wg_schema_release(&d->schema);
  for (int i = 0; i < d->n; i++)
    wg_array_release(&d->batches[i]);
  memset(d, 0, sizeof(*d));
}

/* Encodes schema + batches into a framed stream in out; counts the messages per batch. */
static int encode_stream(const struct ArrowSchema *schema, const struct ArrowArray *batches, int n,
                         const struct wg_ipc_encoder_options *opts, struct wg_buf *out,
                         int64_t *msgs_per_batch, struct wg_error *err) {
  struct wg_ipc_encoder *enc;
  WG_RETURN_NOT_OK(wg_ipc_encoder_create(&enc, schema, opts, err));
  int64_t max = wg_ipc_encoder_max_messages(enc);
  struct wg_ipc_encoded msgs[16];
  for (int i = 0; i < 16; i++)
    wg_ipc_encoded_init(&msgs[i]);
  int rc = max > 16 ? EINVAL : wg_ipc_encoder_schema(enc, &msgs[0], err);
  if (rc == 0) rc = wg_ipc_encoded_append_framed(&msgs[0], out);
  for (int b = 0; rc == 0 && b < n; b++) {
    int64_t n_out = 0;
    rc = wg_ipc_encoder_batch(enc, &batches[b], msgs, &n_out, err);
    if (msgs_per_batch != NULL) msgs_per_batch[b] = n_out;
    for (int64_t i = 0; rc == 0 && i < n_out; i++)
      rc = wg_ipc_encoded_append_framed(&msgs[i], out);
  }
  if (rc == 0) rc = wg_ipc_append_eos(out);
  for (int i = 0; i < 16; i++)
    wg_ipc_encoded_reset(&msgs[i]);
  wg_ipc_encoder_destroy(enc);
  return rc;
}

static int decode_stream(const struct wg_buf *in, struct decoded *d, struct wg_error *err) {
  memset(d, 0, sizeof(*d));
  struct wg_shared *data = wg_shared_copy(in->data, in->size);
  if (data == NULL) return ENOMEM;
  struct ArrowArrayStream st;
  int rc = wg_ipc_stream_reader_init(&st, data, NULL);
  wg_shared_unref(data);
  if (rc != 0) return rc;
  rc = st.get_schema(&st, &d->schema);
  while (rc == 0) {
    struct ArrowArray a;
    rc = st.get_next(&st, &a);
    if (rc != 0 || a.release == NULL) break;
    if (d->n == 8) {
      wg_array_release(&a);
      rc = E2BIG;
      break;
    }
    d->batches[d->n++] = a;
  }
  if (rc != 0) {
    const char *m = st.get_last_error(&st);
    wg_error_set(err, rc, "decode: %s", m ? m : "(no message)");
  }
  wg_stream_release(&st);
  return rc;
}

/* Encodes then decodes, and compares every batch with its source. */
static int roundtrip(const struct ArrowSchema *schema, const struct ArrowArray *batches, int n,
                     const struct wg_ipc_encoder_options *opts, struct decoded *d,
                     struct wg_error *err) {
  struct wg_buf buf;
  wg_buf_init(&buf);
  int rc = encode_stream(schema, batches, n, opts, &buf, NULL, err);
  if (rc == 0) rc = decode_stream(&buf, d, err);
  wg_buf_reset(&buf);
  if (rc != 0) return rc;
  if (d->n != n) return wg_error_set(err, EPROTO, "decoded %d batches, encoded %d", d->n, n);
  for (int i = 0; i < n; i++)
    if (!batches_eq(schema, &batches[i], &d->batches[i]))
      return wg_error_set(err, EPROTO, "batch %d differs after the round trip", i);
  return 0;
}

/* The body's buffers and bodyLength as the RecordBatch header states them. */
struct rb_info {
  int64_t body_length;
  int64_t n_buffers;
  int64_t offsets[64], lengths[64];
  bool compressed;
  int64_t n_variadic;
};

static int read_rb(const struct wg_ipc_encoded *m, struct rb_info *info, struct wg_error *err) {
  struct wg_fb_table msg, rb;
  bool present;
  memset(info, 0, sizeof(*info));
  struct wg_bytes meta = {m->metadata.data, m->metadata.size};
  WG_RETURN_NOT_OK(wg_fb_root(meta, &msg, err));
  WG_RETURN_NOT_OK(wg_fb_i64(&msg, 3, 0, &info->body_length, err));
  WG_RETURN_NOT_OK(wg_fb_table_field(&msg, 2, &present, &rb, err));
  if (!present) return wg_error_set(err, EPROTO, "no header");
  if (m->type == WG_IPC_MESSAGE_DICTIONARY_BATCH) {
    struct wg_fb_table db = rb;
    WG_RETURN_NOT_OK(wg_fb_table_field(&db, 1, &present, &rb, err));
  }
  struct wg_fb_vector v;
  WG_RETURN_NOT_OK(wg_fb_vector_field(&rb, 2, 16, &present, &v, err));
  info->n_buffers = present ? v.length : 0;
  for (int64_t i = 0; i < info->n_buffers && i < 64; i++) {
    info->offsets[i] = wg_load_i64(wg_fb_vector_at(&v, i, 16));
    info->lengths[i] = wg_load_i64(wg_fb_vector_at(&v, i, 16) + 8);
  }
  struct wg_fb_table comp;
  WG_RETURN_NOT_OK(wg_fb_table_field(&rb, 3, &info->compressed, &comp, err));
  WG_RETURN_NOT_OK(wg_fb_vector_field(&rb, 4, 8, &present, &v, err));
  info->n_variadic = present ? v.length : -1;
  return 0;
}

/* ---- tests ---- */

static void fbb_builds_tables_the_reader_accepts(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  struct wg_fbb b;
  wg_fbb_init(&b);
  uint32_t str, ints, pairs, inner, refs, root;
  int32_t iv[3] = {7, -8, 9};
  int64_t pv[4] = {1, 2, -3, 1LL << 40};
  ASSERT_OK(wg_fbb_create_string(&b, "hello", 5, &str), err);
  ASSERT_OK(wg_fbb_create_vector_i32(&b, iv, 3, &ints), err);
  ASSERT_OK(wg_fbb_create_vector_i64_pairs(&b, pv, 2, &pairs), err);
  wg_fbb_table_begin(&b);
  wg_fbb_add_i16(&b, 0, -5);
  ASSERT_OK(wg_fbb_table_end(&b, &inner), err);
  ASSERT_OK(wg_fbb_create_vector_refs(&b, &inner, 1, &refs), err);
  wg_fbb_table_begin(&b);
  wg_fbb_add_bool(&b, 0, true);
  wg_fbb_add_u8(&b, 1, 200);
  wg_fbb_add_i32(&b, 3, -123456);
  wg_fbb_add_i64(&b, 4, -(1LL << 50));
  wg_fbb_add_ref(&b, 5, str);
  wg_fbb_add_ref(&b, 6, ints);
  wg_fbb_add_ref(&b, 7, pairs);
  wg_fbb_add_union(&b, 8, 3, inner);
  wg_fbb_add_ref(&b, 10, refs);
  ASSERT_OK(wg_fbb_table_end(&b, &root), err);
  struct wg_bytes out;
  ASSERT_OK(wg_fbb_finish(&b, root, &out), err);
  ASSERT_EQ(out.size % 8, 0);
  ASSERT_EQ((uintptr_t)out.data % 8, 0);

  struct wg_fb_table t, sub;
  bool bv, present;
  uint8_t u8;
  int16_t i16;
  int32_t i32;
  int64_t i64;
  struct wg_bytes s;
  struct wg_fb_vector v;
  ASSERT_OK(wg_fb_root(out, &t, err), err);
  ASSERT_OK(wg_fb_bool(&t, 0, false, &bv, err), err);
  ASSERT_TRUE(bv);
  ASSERT_OK(wg_fb_u8(&t, 1, 0, &u8, err), err);
  ASSERT_EQ(u8, 200);
  ASSERT_OK(wg_fb_i32(&t, 2, 77, &i32, err), err); /* absent: default */
  ASSERT_EQ(i32, 77);
  ASSERT_OK(wg_fb_i32(&t, 3, 0, &i32, err), err);
  ASSERT_EQ(i32, -123456);
  ASSERT_OK(wg_fb_i64(&t, 4, 0, &i64, err), err);
  ASSERT_EQ(i64, -(1LL << 50));
  ASSERT_OK(wg_fb_string(&t, 5, &present, &s, err), err);
  ASSERT_TRUE(present && s.size == 5 && memcmp(s.data, "hello", 5) == 0);
  ASSERT_OK(wg_fb_vector_field(&t, 6, 4, &present, &v, err), err);
  ASSERT_EQ(v.length, 3);
  ASSERT_EQ(wg_load_i32(wg_fb_vector_at(&v, 1, 4)), -8);
  ASSERT_OK(wg_fb_vector_field(&t, 7, 16, &present, &v, err), err);
  ASSERT_EQ(v.length, 2);
  ASSERT_EQ((v.buf + v.pos - out.data) % 8, 0);
  ASSERT_EQ(wg_load_i64(wg_fb_vector_at(&v, 1, 16) + 8), 1LL << 40);
  ASSERT_OK(wg_fb_u8(&t, 8, 0, &u8, err), err);
  ASSERT_EQ(u8, 3);
  ASSERT_OK(wg_fb_table_field(&t, 9, &present, &sub, err), err);
  ASSERT_TRUE(present);
  ASSERT_OK(wg_fb_i16(&sub, 0, 0, &i16, err), err);
  ASSERT_EQ(i16, -5);
  ASSERT_OK(wg_fb_vector_field(&t, 10, 4, &present, &v, err), err);
  ASSERT_OK(wg_fb_vector_table(&v, 0, &sub, err), err);
  ASSERT_OK(wg_fb_i16(&sub, 0, 0, &i16, err), err);
  ASSERT_EQ(i16, -5);
  /* misuse is reported, not crashed on */
  wg_fbb_clear(&b);
  wg_fbb_table_begin(&b);
  wg_fbb_add_i32(&b, 2, 1);
  wg_fbb_add_i32(&b, 2, 1);
  ASSERT_EQ(wg_fbb_table_end(&b, &root), EINVAL);
  wg_fbb_reset(&b);
}

static void int32_with_nulls_roundtrips(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  static const int32_t vals[5] = {1, 0, 3, 4, 0};
  static const uint8_t valid[1] = {0x0D}; /* 1 0 1 1 0 */
  struct ArrowSchema s;
  struct ArrowArray b;
  ASSERT_OK(mks(&s, "+s", NULL, 1), err);
  ASSERT_OK(mks(s.children[0], "i", "x", 0), err);
  ASSERT_OK(mk(&b, 1, 1, 5, 0, 0, NULL, NULL, NULL, NULL), err);
  ASSERT_OK(mk(b.children[0], 2, 0, 5, 2, 0, valid, vals, NULL, NULL), err);
  struct decoded d;
  int rc = roundtrip(&s, &b, 1, NULL, &d, err);
  if (rc == 0) {
    ASSERT_EQ(d.batches[0].children[0]->null_count, 2);
    ASSERT_STREQ(d.schema.children[0]->format, "i");
    ASSERT_STREQ(d.schema.children[0]->name, "x");
    ASSERT_TRUE(d.schema.children[0]->flags & ARROW_FLAG_NULLABLE);
  }
  decoded_release(&d);
  wg_array_release(&b);
  wg_schema_release(&s);
  ASSERT_OK(rc, err);
}

static void utf8_list_and_struct_roundtrip(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  /* utf8: "a", "bc", "", null, "def" */
  static const int32_t soff[6] = {0, 1, 3, 3, 3, 6};
  static const char sdata[] = "abcdef";
  static const uint8_t svalid[1] = {0x17};
  /* list<int64>: [1,2], [], null, [3] */
  static const int32_t loff[5] = {0, 2, 2, 2, 3};
  static const uint8_t lvalid[1] = {0x0B};
  static const int64_t lvals[3] = {1, 2, 3};
  /* struct{a: int32, b: utf8}: {10,"p"}, {20,"qq"}, null, {40,""}, {50,"r"} */
  static const int32_t avals[5] = {10, 20, 30, 40, 50};
  static const int32_t boff[6] = {0, 1, 3, 3, 3, 4};
  static const char bdata[] = "pqqr";
  static const uint8_t stvalid[1] = {0x1B};
  struct ArrowSchema s;
  struct ArrowArray b;
  ASSERT_OK(mks(&s, "+s", NULL, 3), err);
  ASSERT_OK(mks(s.children[0], "u", "s", 0), err);
  ASSERT_OK(mks(s.children[1], "+l", "l", 1), err);
  ASSERT_OK(mks(s.children[1]->children[0], "l", "item", 0), err);
  ASSERT_OK(mks(s.children[2], "+s", "st", 2), err);
  ASSERT_OK(mks(s.children[2]->children[0], "i", "a", 0), err);
  ASSERT_OK(mks(s.children[2]->children[1], "u", "b", 0), err);
  ASSERT_OK(mk(&b, 1, 3, 4, 0, 0, NULL, NULL, NULL, NULL), err);
  ASSERT_OK(mk(b.children[0], 3, 0, 5, 1, 0, svalid, soff, sdata, NULL), err);
  b.children[0]->length = 4; /* the batch has 4 rows; strings carry a 5th we don't send */
  ASSERT_OK(mk(b.children[1], 2, 1, 4, 1, 0, lvalid, loff, NULL, NULL), err);
  ASSERT_OK(mk(b.children[1]->children[0], 2, 0, 3, 0, 0, NULL, lvals, NULL, NULL), err);
  ASSERT_OK(mk(b.children[2], 1, 2, 4, 1, 0, stvalid, NULL, NULL, NULL), err);
  ASSERT_OK(mk(b.children[2]->children[0], 2, 0, 5, 0, 0, NULL, avals, NULL, NULL), err);
  ASSERT_OK(mk(b.children[2]->children[1], 3, 0, 5, 0, 0, NULL, boff, bdata, NULL), err);
  struct decoded d;
  int rc = roundtrip(&s, &b, 1, NULL, &d, err);
  decoded_release(&d);
  wg_array_release(&b);
  wg_schema_release(&s);
  ASSERT_OK(rc, err);
}

static void sliced_arrays_roundtrip(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  /* 11 values, sliced at offset 3, length 6; unaligned bitmaps and nonzero first offsets */
  static const int32_t ivals[11] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  static const uint8_t ivalid[2] = {0xAF, 0x05}; /* bits 4 and 6 unset */
  static const int32_t soff[12] = {0, 1, 2, 3, 5, 7, 7, 10, 10, 11, 12, 13};
  static const char sdata[] = "abcddeefffghi";
  static const uint8_t svalid[2] = {0xDF, 0x06}; /* bits 5, 8 and 11 unset */
  static const uint8_t bools[2] = {0x5A, 0x03};
  /* struct slice: parent offset 3 applies to the children too */
  static const int64_t cvals[11] = {100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110};
  /* list slice: offsets into a child that starts at 2 */
  static const int32_t loff[12] = {0, 1, 2, 4, 4, 6, 7, 9, 9, 10, 11, 12};
  static const int16_t lvals[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  struct ArrowSchema s;
  struct ArrowArray b;
  ASSERT_OK(mks(&s, "+s", NULL, 5), err);
  ASSERT_OK(mks(s.children[0], "i", "i", 0), err);
  ASSERT_OK(mks(s.children[1], "u", "s", 0), err);
  ASSERT_OK(mks(s.children[2], "b", "b", 0), err);
  ASSERT_OK(mks(s.children[3], "+s", "st", 1), err);
  ASSERT_OK(mks(s.children[3]->children[0], "l", "c", 0), err);
  ASSERT_OK(mks(s.children[4], "+l", "l", 1), err);
  ASSERT_OK(mks(s.children[4]->children[0], "s", "item", 0), err);
  ASSERT_OK(mk(&b, 1, 5, 6, 0, 0, NULL, NULL, NULL, NULL), err);
  ASSERT_OK(mk(b.children[0], 2, 0, 6, -1, 3, ivalid, ivals, NULL, NULL), err);
  ASSERT_OK(mk(b.children[1], 3, 0, 6, -1, 3, svalid, soff, sdata, NULL), err);
  ASSERT_OK(mk(b.children[2], 2, 0, 6, 0, 3, NULL, bools, NULL, NULL), err);
  ASSERT_OK(mk(b.children[3], 1, 1, 6, 0, 3, NULL, NULL, NULL, NULL), err);
  ASSERT_OK(mk(b.children[3]->children[0], 2, 0, 8, 0, 1, NULL, cvals, NULL, NULL), err);
  ASSERT_OK(mk(b.children[4], 2, 1, 6, 0, 3, NULL, loff, NULL, NULL), err);
  ASSERT_OK(mk(b.children[4]->children[0], 2, 0, 10, 0, 2, NULL, lvals, NULL, NULL), err);
  struct decoded d;
  int rc = roundtrip(&s, &b, 1, NULL, &d, err);
  if (rc == 0) {
    ASSERT_EQ(d.batches[0].children[0]->null_count, 2);
    ASSERT_EQ(d.batches[0].children[1]->null_count, 2);
    ASSERT_EQ(d.batches[0].children[0]->length, 6);
  }
  decoded_release(&d);
  /* a slice of the batch itself (offset 2, length 3) */
  b.offset = 2;
  b.length = 3;
  if (rc == 0) rc = roundtrip(&s, &b, 1, NULL, &d, err);
  decoded_release(&d);
  wg_array_release(&b);
  wg_schema_release(&s);
  ASSERT_OK(rc, err);
}

static void dictionary_sent_before_batch_and_only_when_changed(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  static const int8_t idx[4] = {0, 1, 0, 2};
  static const int32_t doff[4] = {0, 1, 2, 3};
  char ddata[4] = "xyz";
  char ddata_copy[4] = "xyz";
  struct ArrowSchema s;
  struct ArrowArray b[3];
  ASSERT_OK(mks(&s, "+s", NULL, 1), err);
  ASSERT_OK(mks(s.children[0], "c", "d", 0), err);
  ASSERT_OK(wg_schema_alloc_dictionary(s.children[0]), err);
  ASSERT_OK(mks(s.children[0]->dictionary, "u", NULL, 0), err);
  s.children[0]->flags |= ARROW_FLAG_DICTIONARY_ORDERED;
  const char *datas[3] = {ddata, ddata_copy, ddata};
  for (int k = 0; k < 3; k++) {
    ASSERT_OK(mk(&b[k], 1, 1, 4, 0, 0, NULL, NULL, NULL, NULL), err);
    ASSERT_OK(mk(b[k].children[0], 2, 0, 4, 0, 0, NULL, idx, NULL, NULL), err);
    ASSERT_OK(wg_array_alloc_dictionary(b[k].children[0]), err);
    ASSERT_OK(mk(b[k].children[0]->dictionary, 3, 0, 3, 0, 0, NULL, doff, datas[k], NULL), err);
  }
  /* batch 0: dictionary + batch; batch 1: same content elsewhere: batch only. Batch 2 reuses
   * batch 0's memory with new content: the dictionary must be sent again. */
  struct wg_buf buf;
  wg_buf_init(&buf);
  struct wg_ipc_encoder *enc;
  ASSERT_OK(wg_ipc_encoder_create(&enc, &s, NULL, err), err);
  ASSERT_EQ(wg_ipc_encoder_max_messages(enc), 2);
  struct wg_ipc_encoded m[2];
  wg_ipc_encoded_init(&m[0]);
  wg_ipc_encoded_init(&m[1]);
  int64_t n[3];
  int rc = wg_ipc_encoder_schema(enc, &m[0], err);
  if (rc == 0) rc = wg_ipc_encoded_append_framed(&m[0], &buf);
  for (int k = 0; k < 3 && rc == 0; k++) {
    if (k == 2) ddata[2] = 'w';
    rc = wg_ipc_encoder_batch(enc, &b[k], m, &n[k], err);
    for (int64_t i = 0; rc == 0 && i < n[k]; i++)
      rc = wg_ipc_encoded_append_framed(&m[i], &buf);
    if (rc == 0 && n[k] == 2) {
      ASSERT_EQ(m[0].type, WG_IPC_MESSAGE_DICTIONARY_BATCH);
      ASSERT_EQ(m[1].type, WG_IPC_MESSAGE_RECORD_BATCH);
    }
  }
  if (rc == 0) rc = wg_ipc_append_eos(&buf);
  wg_ipc_encoded_reset(&m[0]);
  wg_ipc_encoded_reset(&m[1]);
  wg_ipc_encoder_destroy(enc);
  ASSERT_OK(rc, err);
  ASSERT_EQ(n[0], 2);
  ASSERT_EQ(n[1], 1);
  ASSERT_EQ(n[2], 2);
  struct decoded d;
  rc = decode_stream(&buf, &d, err);
  wg_buf_reset(&buf);
  bool ok = rc == 0 && d.n == 3;
  if (ok) {
    const struct ArrowSchema *ds = d.schema.children[0];
    ok = ds->dictionary != NULL && strcmp(ds->format, "c") == 0 &&
         strcmp(ds->dictionary->format, "u") == 0 && (ds->flags & ARROW_FLAG_DICTIONARY_ORDERED);
    if (!ok) fprintf(stderr, "  decoded dictionary schema differs\n");
    /* b[0]'s dictionary memory now holds batch 2's content: batch 0 had b[1]'s values */
    for (int k = 0; k < 3 && ok; k++)
      ok = batches_eq(&s, &b[k == 0 ? 1 : k], &d.batches[k]);
  }
  decoded_release(&d);
  for (int k = 0; k < 3; k++)
    wg_array_release(&b[k]);
  wg_schema_release(&s);
  ASSERT_OK(rc, err);
  ASSERT_TRUE(ok);
}

static void nested_dictionary_sent_first(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  /* column: dictionary<int8, struct{x: dictionary<int16, utf8>}> */
  static const int8_t outer_idx[3] = {1, 0, 1};
  static const int16_t inner_idx[2] = {1, 0};
  static const int32_t soff[3] = {0, 2, 5};
  static const char sdata[] = "hiyou";
  struct ArrowSchema s;
  struct ArrowArray b;
  ASSERT_OK(mks(&s, "+s", NULL, 1), err);
  ASSERT_OK(mks(s.children[0], "c", "d", 0), err);
  ASSERT_OK(wg_schema_alloc_dictionary(s.children[0]), err);
  struct ArrowSchema *vs = s.children[0]->dictionary;
  ASSERT_OK(mks(vs, "+s", NULL, 1), err);
  ASSERT_OK(mks(vs->children[0], "s", "x", 0), err);
  ASSERT_OK(wg_schema_alloc_dictionary(vs->children[0]), err);
  ASSERT_OK(mks(vs->children[0]->dictionary, "u", NULL, 0), err);
  ASSERT_OK(mk(&b, 1, 1, 3, 0, 0, NULL, NULL, NULL, NULL), err);
  ASSERT_OK(mk(b.children[0], 2, 0, 3, 0, 0, NULL, outer_idx, NULL, NULL), err);
  ASSERT_OK(wg_array_alloc_dictionary(b.children[0]), err);
  struct ArrowArray *va = b.children[0]->dictionary;
  ASSERT_OK(mk(va, 1, 1, 2, 0, 0, NULL, NULL, NULL, NULL), err);
  ASSERT_OK(mk(va->children[0], 2, 0, 2, 0, 0, NULL, inner_idx, NULL, NULL), err);
  ASSERT_OK(wg_array_alloc_dictionary(va->children[0]), err);
  ASSERT_OK(mk(va->children[0]->dictionary, 3, 0, 2, 0, 0, NULL, soff, sdata, NULL), err);

  struct wg_ipc_encoder *enc;
  ASSERT_OK(wg_ipc_encoder_create(&enc, &s, NULL, err), err);
  struct wg_ipc_encoded m[3];
  for (int i = 0; i < 3; i++)
    wg_ipc_encoded_init(&m[i]);
  int64_t n = 0;
  int rc = wg_ipc_encoder_batch(enc, &b, m, &n, err);
  /* inner dictionary (id 1) first, then the outer (id 0), then the batch */
  int64_t ids[2] = {-1, -1};
  for (int i = 0; rc == 0 && i < 2 && i < n; i++) {
    struct wg_fb_table msg, db;
    bool present;
    struct wg_bytes meta = {m[i].metadata.data, m[i].metadata.size};
    rc = wg_fb_root(meta, &msg, err);
    if (rc == 0) rc = wg_fb_table_field(&msg, 2, &present, &db, err);
    if (rc == 0) rc = wg_fb_i64(&db, 0, -1, &ids[i], err);
  }
  for (int i = 0; i < 3; i++)
    wg_ipc_encoded_reset(&m[i]);
  wg_ipc_encoder_destroy(enc);
  ASSERT_OK(rc, err);
  ASSERT_EQ(n, 3);
  ASSERT_EQ(ids[0], 1);
  ASSERT_EQ(ids[1], 0);
  struct decoded d;
  rc = roundtrip(&s, &b, 1, NULL, &d, err);
  decoded_release(&d);
  wg_array_release(&b);
  wg_schema_release(&s);
  ASSERT_OK(rc, err);
}

static void string_view_sends_variadic_buffers(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  /* "short", "a string longer than twelve", null, "tiny", "another long string value" */
  static const char d0[] = "a string longer than twelve";
  static const char d1[] = "xxanother long string value";
  uint8_t views[5 * 16];
  memset(views, 0, sizeof(views));
  int32_t len, idx, off;
  len = 5;
  memcpy(views, &len, 4);
  memcpy(views + 4, "short", 5);
  len = 27;
  idx = 0;
  off = 0;
  memcpy(views + 16, &len, 4);
  memcpy(views + 20, d0, 4);
  memcpy(views + 24, &idx, 4);
  memcpy(views + 28, &off, 4);
  len = 4;
  memcpy(views + 48, &len, 4);
  memcpy(views + 52, "tiny", 4);
  len = 25;
  idx = 1;
  off = 2;
  memcpy(views + 64, &len, 4);
  memcpy(views + 68, d1 + 2, 4);
  memcpy(views + 72, &idx, 4);
  memcpy(views + 76, &off, 4);
  static const uint8_t valid[1] = {0x1B};
  int64_t sizes[2] = {27, 27};
  struct ArrowSchema s;
  struct ArrowArray b;
  ASSERT_OK(mks(&s, "+s", NULL, 1), err);
  ASSERT_OK(mks(s.children[0], "vu", "v", 0), err);
  ASSERT_OK(mk(&b, 1, 1, 5, 0, 0, NULL, NULL, NULL, NULL), err);
  ASSERT_OK(wg_array_node_init(b.children[0], 5, 0, NULL), err);
  struct ArrowArray *c = b.children[0];
  c->length = 5;
  c->null_count = 1;
  c->buffers[0] = valid;
  c->buffers[1] = views;
  c->buffers[2] = d0;
  c->buffers[3] = d1;
  c->buffers[4] = sizes;

  struct wg_ipc_encoder *enc;
  struct wg_ipc_encoded m;
  wg_ipc_encoded_init(&m);
  ASSERT_OK(wg_ipc_encoder_create(&enc, &s, NULL, err), err);
  int64_t n;
  int rc = wg_ipc_encoder_batch(enc, &b, &m, &n, err);
  struct rb_info info;
  if (rc == 0) rc = read_rb(&m, &info, err);
  wg_ipc_encoded_reset(&m);
  wg_ipc_encoder_destroy(enc);
  ASSERT_OK(rc, err);
  ASSERT_EQ(info.n_buffers, 4); /* validity, views, two data buffers: no sizes buffer */
  ASSERT_EQ(info.n_variadic, 1);
  ASSERT_EQ(info.lengths[2], 27);

  struct decoded d;
  rc = roundtrip(&s, &b, 1, NULL, &d, err);
  decoded_release(&d);
  c->offset = 1; /* sliced views: same buffers, fewer views */
  c->length = 4;
  c->null_count = -1;
  b.length = 4;
  if (rc == 0) rc = roundtrip(&s, &b, 1, NULL, &d, err);
  decoded_release(&d);
  wg_array_release(&b);
  wg_schema_release(&s);
  ASSERT_OK(rc, err);
}

static void dense_and_sparse_unions_roundtrip(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  /* dense<int32 (id 5), utf8 (id 7)>: 1, "a", 2, "bc" */
  static const int8_t dtypes[4] = {5, 7, 5, 7};
  static const int32_t doffs[4] = {0, 0, 1, 1};
  static const int32_t ivals[2] = {1, 2};
  static const int32_t soff[3] = {0, 1, 3};
  static const char sdata[] = "abc";
  /* sparse<int32 (0), int64 (1)> */
  static const int8_t stypes[4] = {0, 1, 1, 0};
  static const int32_t s0[4] = {10, 0, 0, 40};
  static const int64_t s1[4] = {0, 20, 30, 0};
  struct ArrowSchema s;
  struct ArrowArray b;
  ASSERT_OK(mks(&s, "+s", NULL, 2), err);
  ASSERT_OK(mks(s.children[0], "+ud:5,7", "du", 2), err);
  ASSERT_OK(mks(s.children[0]->children[0], "i", "i", 0), err);
  ASSERT_OK(mks(s.children[0]->children[1], "u", "s", 0), err);
  ASSERT_OK(mks(s.children[1], "+us:0,1", "su", 2), err);
  ASSERT_OK(mks(s.children[1]->children[0], "i", "a", 0), err);
  ASSERT_OK(mks(s.children[1]->children[1], "l", "b", 0), err);
  ASSERT_OK(mk(&b, 1, 2, 4, 0, 0, NULL, NULL, NULL, NULL), err);
  ASSERT_OK(mk(b.children[0], 2, 2, 4, 0, 0, dtypes, doffs, NULL, NULL), err);
  ASSERT_OK(mk(b.children[0]->children[0], 2, 0, 2, 0, 0, NULL, ivals, NULL, NULL), err);
  ASSERT_OK(mk(b.children[0]->children[1], 3, 0, 2, 0, 0, NULL, soff, sdata, NULL), err);
  ASSERT_OK(mk(b.children[1], 1, 2, 4, 0, 0, stypes, NULL, NULL, NULL), err);
  ASSERT_OK(mk(b.children[1]->children[0], 2, 0, 4, 0, 0, NULL, s0, NULL, NULL), err);
  ASSERT_OK(mk(b.children[1]->children[1], 2, 0, 4, 0, 0, NULL, s1, NULL, NULL), err);
  struct decoded d;
  int rc = roundtrip(&s, &b, 1, NULL, &d, err);
  if (rc == 0) ASSERT_STREQ(d.schema.children[0]->format, "+ud:5,7");
  decoded_release(&d);
  b.offset = 1; /* slices: type ids and offsets shift, children follow */
  b.length = 3;
  if (rc == 0) rc = roundtrip(&s, &b, 1, NULL, &d, err);
  decoded_release(&d);
  wg_array_release(&b);
  wg_schema_release(&s);
  ASSERT_OK(rc, err);
}

static void int64_column_is_zero_copy_and_aligned(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  static const int64_t vals[5] = {1, 2, 3, 4, 5};
  static const int8_t small[5] = {1, 2, 3, 4, 5};
  static const int32_t soff[6] = {0, 1, 2, 3, 4, 5};
  static const char sdata[] = "abcde";
  struct ArrowSchema s;
  struct ArrowArray b;
  ASSERT_OK(mks(&s, "+s", NULL, 3), err);
  ASSERT_OK(mks(s.children[0], "c", "small", 0), err);
  ASSERT_OK(mks(s.children[1], "l", "big", 0), err);
  ASSERT_OK(mks(s.children[2], "u", "str", 0), err);
  ASSERT_OK(mk(&b, 1, 3, 5, 0, 0, NULL, NULL, NULL, NULL), err);
  ASSERT_OK(mk(b.children[0], 2, 0, 5, 0, 0, NULL, small, NULL, NULL), err);
  ASSERT_OK(mk(b.children[1], 2, 0, 5, 0, 0, NULL, vals, NULL, NULL), err);
  ASSERT_OK(mk(b.children[2], 3, 0, 5, 0, 0, NULL, soff, sdata, NULL), err);
  struct wg_ipc_encoder *enc;
  struct wg_ipc_encoded m;
  wg_ipc_encoded_init(&m);
  ASSERT_OK(wg_ipc_encoder_create(&enc, &s, NULL, err), err);
  int64_t n;
  int rc = wg_ipc_encoder_batch(enc, &b, &m, &n, err);
  struct rb_info info;
  if (rc == 0) rc = read_rb(&m, &info, err);
  bool found = false;
  int64_t total = 0;
  for (int64_t i = 0; rc == 0 && i < m.n_pieces; i++) {
    if (m.pieces[i].data == (const uint8_t *)vals && m.pieces[i].size == 40) found = true;
    total += m.pieces[i].size;
  }
  int64_t meta_size = m.metadata.size, body_length = m.body_length;
  wg_ipc_encoded_reset(&m);
  wg_ipc_encoder_destroy(enc);
  wg_array_release(&b);
  wg_schema_release(&s);
  ASSERT_OK(rc, err);
  ASSERT_TRUE(found);
  ASSERT_EQ(total, body_length);
  ASSERT_EQ(info.body_length, body_length);
  ASSERT_EQ(body_length % 8, 0);
  ASSERT_EQ(meta_size % 8, 0);
  ASSERT_EQ(info.n_buffers, 7);
  ASSERT_EQ(info.lengths[1], 5); /* unpadded lengths */
  ASSERT_EQ(info.lengths[6], 5);
  ASSERT_EQ(info.n_variadic, -1); /* no views: no variadicBufferCounts */
  for (int64_t i = 0; i < info.n_buffers; i++)
    ASSERT_EQ(info.offsets[i] % 8, 0);
  ASSERT_TRUE(!info.compressed);
}

static void compression_roundtrips(int codec) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  enum { N = 4000 };
  int64_t *vals = malloc(N * sizeof(int64_t));
  int32_t *soff = malloc((N + 1) * sizeof(int32_t));
  char *sdata = malloc(N * 3);
  uint8_t *valid = malloc(N / 8);
  ASSERT_TRUE(vals && soff && sdata && valid);
  soff[0] = 0;
  for (int i = 0; i < N; i++) {
    vals[i] = i % 7;
    memcpy(sdata + 3 * i, "abc", 3);
    soff[i + 1] = 3 * (i + 1);
  }
  memset(valid, 0xF7, N / 8);
  static const int8_t tiny[1] = {42}; /* incompressible: stored with length -1 */
  struct ArrowSchema s;
  struct ArrowArray b;
  int rc = mks(&s, "+s", NULL, 3);
  if (rc == 0) rc = mks(s.children[0], "l", "v", 0);
  if (rc == 0) rc = mks(s.children[1], "u", "s", 0);
  if (rc == 0) rc = mks(s.children[2], "c", "t", 0);
  if (rc == 0) rc = mk(&b, 1, 3, 1, 0, 0, NULL, NULL, NULL, NULL);
  if (rc == 0) rc = mk(b.children[0], 2, 0, 1, 0, 0, valid, vals, NULL, NULL);
  if (rc == 0) rc = mk(b.children[1], 3, 0, 1, 0, 0, NULL, soff, sdata, NULL);
  if (rc == 0) rc = mk(b.children[2], 2, 0, 1, 0, 0, NULL, tiny, NULL, NULL);
  struct wg_ipc_encoder_options opts = {.compression = codec, .compression_level = 0};
  struct rb_info info;
  memset(&info, 0, sizeof(info));
  struct decoded d;
  memset(&d, 0, sizeof(d));
  if (rc == 0) {
    /* a 1-row batch over N-row columns: only the window is sent; 'tiny' does not compress */
    b.children[0]->length = N;
    b.children[0]->null_count = -1;
    b.children[1]->length = N;
    b.length = 1;
    rc = roundtrip(&s, &b, 1, &opts, &d, err);
    decoded_release(&d);
  }
  if (rc == 0) {
    /* a big batch: compressible buffers */
    wg_array_release(&b);
    rc = mk(&b, 1, 2, N, 0, 0, NULL, NULL, NULL, NULL);
    if (rc == 0) rc = mk(b.children[0], 2, 0, N, -1, 0, valid, vals, NULL, NULL);
    if (rc == 0) rc = mk(b.children[1], 3, 0, N, 0, 0, NULL, soff, sdata, NULL);
    struct ArrowSchema s2;
    if (rc == 0) rc = mks(&s2, "+s", NULL, 2);
    if (rc == 0) rc = mks(s2.children[0], "l", "v", 0);
    if (rc == 0) rc = mks(s2.children[1], "u", "s", 0);
    if (rc == 0) rc = roundtrip(&s2, &b, 1, &opts, &d, err);
    decoded_release(&d);
    struct wg_ipc_encoder *enc = NULL;
    struct wg_ipc_encoded m;
    wg_ipc_encoded_init(&m);
    int64_t n;
    if (rc == 0) rc = wg_ipc_encoder_create(&enc, &s2, &opts, err);
    if (rc == 0) rc = wg_ipc_encoder_batch(enc, &b, &m, &n, err);
    if (rc == 0) rc = read_rb(&m, &info, err);
    if (rc == 0 && !(info.compressed && m.body_length < N * 8 && m.body_length % 8 == 0)) {
      fprintf(stderr, "  compressed=%d body %lld\n", info.compressed, (long long)m.body_length);
      rc = EPROTO;
    }
    for (int64_t i = 0; rc == 0 && i < info.n_buffers; i++)
      if (info.offsets[i] % 8 != 0) rc = EPROTO;
    wg_ipc_encoded_reset(&m);
    wg_ipc_encoder_destroy(enc);
    wg_schema_release(&s2);
  }
  wg_array_release(&b);
  wg_schema_release(&s);
  free(vals);
  free(soff);
  free(sdata);
  free(valid);
  ASSERT_OK(rc, err);
}

static void lz4_bodies_roundtrip(void) {
  compression_roundtrips(WG_IPC_COMPRESSION_LZ4_FRAME);
}

static void zstd_bodies_roundtrip(void) {
  compression_roundtrips(WG_IPC_COMPRESSION_ZSTD);
}

/* Every format the writer knows survives the Schema message with its flags and metadata. */
static void schema_message_keeps_types_flags_and_metadata(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  static const char *formats[] = {
      "n",      "b",          "c",   "C",   "s",   "S",   "i",   "I",   "l",    "L",
      "e",      "f",          "g",   "z",   "Z",   "u",   "U",   "vz",  "vu",   "w:16",
      "d:10,2", "d:38,5,256", "tdD", "tdm", "tts", "ttm", "ttu", "ttn", "tsu:", "tsn:Europe/Paris",
      "tDs",    "tiM",        "tiD", "tin",
  };
  int nf = (int)(sizeof(formats) / sizeof(formats[0]));
  struct ArrowSchema s;
  ASSERT_OK(mks(&s, "+s", NULL, nf + 6), err);
  for (int i = 0; i < nf; i++) {
    char name[16];
    snprintf(name, sizeof(name), "f%d", i);
    ASSERT_OK(mks(s.children[i], formats[i], name, 0), err);
  }
  struct ArrowSchema **c = s.children + nf;
  ASSERT_OK(mks(c[0], "+w:3", "fsl", 1), err);
  ASSERT_OK(mks(c[0]->children[0], "i", "item", 0), err);
  ASSERT_OK(mks(c[1], "+m", "map", 1), err);
  c[1]->flags |= ARROW_FLAG_MAP_KEYS_SORTED;
  ASSERT_OK(mks(c[1]->children[0], "+s", "entries", 2), err);
  ASSERT_OK(mks(c[1]->children[0]->children[0], "u", "key", 0), err);
  c[1]->children[0]->children[0]->flags = 0;
  c[1]->children[0]->flags = 0;
  ASSERT_OK(mks(c[1]->children[0]->children[1], "l", "value", 0), err);
  ASSERT_OK(mks(c[2], "+r", "ree", 2), err);
  ASSERT_OK(mks(c[2]->children[0], "i", "run_ends", 0), err);
  c[2]->children[0]->flags = 0;
  ASSERT_OK(mks(c[2]->children[1], "u", "values", 0), err);
  ASSERT_OK(mks(c[3], "+vl", "lv", 1), err);
  ASSERT_OK(mks(c[3]->children[0], "i", "item", 0), err);
  ASSERT_OK(mks(c[4], "+L", "ll", 1), err);
  ASSERT_OK(mks(c[4]->children[0], "i", "item", 0), err);
  ASSERT_OK(mks(c[5], "+vL", "llv", 1), err);
  ASSERT_OK(mks(c[5]->children[0], "i", "item", 0), err);
  s.children[3]->flags = 0; /* not nullable */
  struct wg_buf md;
  wg_buf_init(&md);
  ASSERT_OK(wg_metadata_append(&md, "k1", 2, "v1", 2), err);
  ASSERT_OK(wg_metadata_append(&md, "key2", 4, "", 0), err);
  ASSERT_OK(wg_schema_set_metadata(s.children[0], (const char *)md.data), err);
  ASSERT_OK(wg_schema_set_metadata(&s, (const char *)md.data), err);
  wg_buf_reset(&md);

  struct wg_ipc_encoder *enc;
  struct wg_ipc_encoded m;
  wg_ipc_encoded_init(&m);
  ASSERT_OK(wg_ipc_encoder_create(&enc, &s, NULL, err), err);
  int rc = wg_ipc_encoder_schema(enc, &m, err);
  struct ArrowSchema out;
  memset(&out, 0, sizeof(out));
  enum wg_ipc_message_type type = WG_IPC_MESSAGE_NONE;
  int64_t body_length = -1;
  struct wg_bytes meta = {m.metadata.data, m.metadata.size};
  if (rc == 0) rc = wg_ipc_message_peek(meta, &type, &body_length, err);
  if (rc == 0) rc = wg_ipc_decode_schema_message(meta, &out, err);
  wg_ipc_encoded_reset(&m);
  wg_ipc_encoder_destroy(enc);
  if (rc != 0) wg_schema_release(&s);
  ASSERT_OK(rc, err);
  ASSERT_EQ(type, WG_IPC_MESSAGE_SCHEMA);
  ASSERT_EQ(body_length, 0);
  bool ok = out.n_children == s.n_children;
  for (int64_t i = 0; ok && i < s.n_children; i++) {
    const struct ArrowSchema *a = s.children[i], *b = out.children[i];
    if (strcmp(a->format, b->format) != 0 || strcmp(a->name, b->name) != 0 ||
        (a->flags & ARROW_FLAG_NULLABLE) != (b->flags & ARROW_FLAG_NULLABLE) ||
        a->n_children != b->n_children) {
      fprintf(stderr, "  field %lld: '%s' '%s' flags %lld became '%s' '%s' flags %lld\n",
              (long long)i, a->format, a->name, (long long)a->flags, b->format, b->name,
              (long long)b->flags);
      ok = false;
    }
  }
  if (ok) ok = (out.children[nf + 1]->flags & ARROW_FLAG_MAP_KEYS_SORTED) != 0;
  if (ok)
    ok = wg_metadata_size(out.children[0]->metadata) == wg_metadata_size(s.children[0]->metadata) &&
         memcmp(out.children[0]->metadata, s.children[0]->metadata,
                (size_t)wg_metadata_size(s.children[0]->metadata)) == 0;
  if (ok) ok = wg_metadata_size(out.metadata) == wg_metadata_size(s.metadata);
  wg_schema_release(&out);
  wg_schema_release(&s);
  ASSERT_TRUE(ok);
}

/* ---- write_stream over a hand-made ArrowArrayStream ---- */

struct test_stream {
  struct ArrowSchema *schema;
  struct ArrowArray *batches;
  int n, next;
  int fail_at; /* get_next fails with EIO at this index (or -1) */
};

static int ts_get_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  struct test_stream *t = st->private_data;
  return wg_schema_deep_copy(t->schema, out, NULL);
}

static void noop_release(struct ArrowArray *a) {
  a->release = NULL;
}

static int ts_get_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  struct test_stream *t = st->private_data;
  if (t->next == t->fail_at) return EIO;
  if (t->next == t->n) {
    out->release = NULL;
    return 0;
  }
  *out = t->batches[t->next++]; /* a borrowed view: its release does nothing */
  out->release = noop_release;
  return 0;
}

static const char *ts_last_error(struct ArrowArrayStream *st) {
  return "test stream broke";
}

static void ts_release(struct ArrowArrayStream *st) {
  st->release = NULL;
}

static void write_stream_writes_schema_batches_and_eos(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  static const int32_t v0[3] = {1, 2, 3}, v1[2] = {4, 5};
  struct ArrowSchema s;
  struct ArrowArray b[2];
  ASSERT_OK(mks(&s, "+s", NULL, 1), err);
  ASSERT_OK(mks(s.children[0], "i", "x", 0), err);
  ASSERT_OK(mk(&b[0], 1, 1, 3, 0, 0, NULL, NULL, NULL, NULL), err);
  ASSERT_OK(mk(b[0].children[0], 2, 0, 3, 0, 0, NULL, v0, NULL, NULL), err);
  ASSERT_OK(mk(&b[1], 1, 1, 2, 0, 0, NULL, NULL, NULL, NULL), err);
  ASSERT_OK(mk(b[1].children[0], 2, 0, 2, 0, 0, NULL, v1, NULL, NULL), err);
  struct test_stream t = {&s, b, 2, 0, -1};
  struct ArrowArrayStream st = {ts_get_schema, ts_get_next, ts_last_error, ts_release, &t};
  struct wg_buf buf;
  wg_buf_init(&buf);
  int rc = wg_ipc_write_stream(&st, NULL, &buf, err);
  bool eos = rc == 0 && buf.size >= 8 && wg_load_u32(buf.data + buf.size - 8) == 0xFFFFFFFFu &&
             wg_load_u32(buf.data + buf.size - 4) == 0;
  struct decoded d;
  memset(&d, 0, sizeof(d));
  if (rc == 0) rc = decode_stream(&buf, &d, err);
  bool same = rc == 0 && d.n == 2 && batches_eq(&s, &b[0], &d.batches[0]) &&
              batches_eq(&s, &b[1], &d.batches[1]);
  decoded_release(&d);
  /* a failing stream reports its own message */
  t.next = 0;
  t.fail_at = 1;
  buf.size = 0;
  struct wg_error err2 = {{0}};
  int rc2 = wg_ipc_write_stream(&st, NULL, &buf, &err2);
  wg_buf_reset(&buf);
  wg_array_release(&b[0]);
  wg_array_release(&b[1]);
  wg_schema_release(&s);
  ASSERT_OK(rc, err);
  ASSERT_TRUE(eos);
  ASSERT_TRUE(same);
  ASSERT_EQ(rc2, EIO);
  ASSERT_TRUE(strstr(err2.message, "test stream broke") != NULL);
}

static void run_end_encoded_slice_roundtrips(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  /* runs: [0,3) "a", [3,5) "b", [5,9) "c"; sliced at 4, length 4 -> b c c c */
  static const int32_t ends[3] = {3, 5, 9};
  static const int32_t soff[4] = {0, 1, 2, 3};
  static const char sdata[] = "abc";
  struct ArrowSchema s;
  struct ArrowArray b;
  ASSERT_OK(mks(&s, "+s", NULL, 1), err);
  ASSERT_OK(mks(s.children[0], "+r", "r", 2), err);
  ASSERT_OK(mks(s.children[0]->children[0], "i", "run_ends", 0), err);
  s.children[0]->children[0]->flags = 0;
  ASSERT_OK(mks(s.children[0]->children[1], "u", "values", 0), err);
  ASSERT_OK(mk(&b, 1, 1, 4, 0, 0, NULL, NULL, NULL, NULL), err);
  ASSERT_OK(mk(b.children[0], 0, 2, 4, 0, 4, NULL, NULL, NULL, NULL), err);
  ASSERT_OK(mk(b.children[0]->children[0], 2, 0, 3, 0, 0, NULL, ends, NULL, NULL), err);
  ASSERT_OK(mk(b.children[0]->children[1], 3, 0, 3, 0, 0, NULL, soff, sdata, NULL), err);
  struct decoded d;
  memset(&d, 0, sizeof(d));
  struct wg_buf buf;
  wg_buf_init(&buf);
  int rc = encode_stream(&s, &b, 1, NULL, &buf, NULL, err);
  if (rc == 0) rc = decode_stream(&buf, &d, err);
  wg_buf_reset(&buf);
  bool ok = false;
  if (rc == 0 && d.n == 1) {
    /* decoded: run ends {1, 4}, values "b", "c" */
    const struct ArrowArray *r = d.batches[0].children[0];
    const struct ArrowArray *re = r->children[0], *vals = r->children[1];
    int32_t e0, e1;
    memcpy(&e0, (const int32_t *)re->buffers[1] + re->offset, 4);
    memcpy(&e1, (const int32_t *)re->buffers[1] + re->offset + 1, 4);
    ok = r->length == 4 && r->offset == 0 && re->length == 2 && e0 == 1 && e1 == 4 &&
         elem_eq(s.children[0]->children[1], vals, 0, b.children[0]->children[1], 1) &&
         elem_eq(s.children[0]->children[1], vals, 1, b.children[0]->children[1], 2);
  }
  decoded_release(&d);
  wg_array_release(&b);
  wg_schema_release(&s);
  ASSERT_OK(rc, err);
  ASSERT_TRUE(ok);
}

static void bad_input_is_an_error_not_a_crash(void) {
  struct wg_error err_s = {{0}}, *err = &err_s;
  struct ArrowSchema s;
  struct wg_ipc_encoder *enc = NULL;
  ASSERT_OK(mks(&s, "i", NULL, 0), err);
  ASSERT_EQ(wg_ipc_encoder_create(&enc, &s, NULL, err), EINVAL); /* not a struct */
  wg_schema_release(&s);
  ASSERT_OK(mks(&s, "+s", NULL, 1), err);
  ASSERT_OK(mks(s.children[0], "u", "name", 0), err);
  ASSERT_OK(wg_ipc_encoder_create(&enc, &s, NULL, err), err);
  struct ArrowArray b;
  ASSERT_OK(mk(&b, 1, 1, 2, 0, 0, NULL, NULL, NULL, NULL), err);
  ASSERT_OK(mk(b.children[0], 2, 0, 2, 0, 0, NULL, NULL, NULL, NULL), err); /* 2, not 3 */
  struct wg_ipc_encoded m;
  wg_ipc_encoded_init(&m);
  int64_t n = 99;
  int rc = wg_ipc_encoder_batch(enc, &b, &m, &n, err);
  wg_ipc_encoded_reset(&m);
  wg_ipc_encoder_destroy(enc);
  wg_array_release(&b);
  wg_schema_release(&s);
  ASSERT_EQ(rc, EINVAL);
  ASSERT_EQ(n, 0);
  ASSERT_TRUE(strstr(err->message, "name") != NULL);
}

/* Same formats, names, flags and shape, recursively. */
static bool schemas_eq(const struct ArrowSchema *a, const struct ArrowSchema *b,
                       const char *where) {
  if (strcmp(a->format, b->format) != 0 || strcmp(a->name ? a->name : "", b->name ? b->name : "") ||
      a->flags != b->flags || a->n_children != b->n_children ||
      (a->dictionary == NULL) != (b->dictionary == NULL) ||
      wg_metadata_size(a->metadata) != wg_metadata_size(b->metadata)) {
    fprintf(stderr, "  %s: field '%s' '%s' flags %lld became '%s' '%s' flags %lld\n", where,
            a->name ? a->name : "", a->format, (long long)a->flags, b->name ? b->name : "",
            b->format, (long long)b->flags);
    return false;
  }
  for (int64_t i = 0; i < a->n_children; i++)
    if (!schemas_eq(a->children[i], b->children[i], where)) return false;
  return a->dictionary == NULL || schemas_eq(a->dictionary, b->dictionary, where);
}

/* Decodes one gold stream written by Arrow C++, writes it again with our encoder (plain, then
 * ZSTD), decodes that, and compares schema and values with the first decode. */
static int reencode_gold(const char *path, struct wg_error *err) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) return wg_error_set(err, ENOENT, "cannot open %s", path);
  struct wg_buf in;
  wg_buf_init(&in);
  uint8_t chunk[65536];
  size_t got;
  while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0)
    wg_buf_append(&in, chunk, (int64_t)got);
  fclose(fp);
  struct decoded d0;
  int rc = decode_stream(&in, &d0, err);
  wg_buf_reset(&in);
  if (rc != 0) {
    decoded_release(&d0);
    return wg_error_prefix(err, rc, "first decode (our decoder on Arrow C++ output)");
  }
  for (int pass = 0; pass < 2 && rc == 0; pass++) {
    struct wg_ipc_encoder_options opts = {.compression = pass == 0 ? WG_IPC_COMPRESSION_NONE
                                                                   : WG_IPC_COMPRESSION_ZSTD};
    struct wg_buf out;
    wg_buf_init(&out);
    struct decoded d1;
    memset(&d1, 0, sizeof(d1));
    rc = encode_stream(&d0.schema, d0.batches, d0.n, &opts, &out, NULL, err);
    if (rc == 0) rc = decode_stream(&out, &d1, err);
    wg_buf_reset(&out);
    if (rc == 0 && !schemas_eq(&d0.schema, &d1.schema, path))
      rc = wg_error_set(err, EPROTO, "schema differs after re-encoding (pass %d)", pass);
    if (rc == 0 && d1.n != d0.n) rc = wg_error_set(err, EPROTO, "%d batches became %d", d0.n, d1.n);
    for (int i = 0; rc == 0 && i < d0.n; i++)
      if (!batches_eq(&d0.schema, &d0.batches[i], &d1.batches[i]))
        rc = wg_error_set(err, EPROTO, "batch %d differs after re-encoding (pass %d)", i, pass);
    decoded_release(&d1);
  }
  decoded_release(&d0);
  return rc;
}

static void gold_streams_survive_reencoding(void) {
  const char *dirs[] = {"cpp-21.0.0", "2.0.0-compression"};
  int seen = 0;
  for (int k = 0; k < 2; k++) {
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/arrow-gold/%s", wg_test_shared_dir(), dirs[k]);
    DIR *dp = opendir(dir);
    if (dp == NULL) continue;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
      size_t n = strlen(e->d_name);
      if (n < 8 || strcmp(e->d_name + n - 7, ".stream") != 0) continue;
      char path[2048];
      snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
      struct wg_error err = {{0}};
      int rc = reencode_gold(path, &err);
      TEST_RECORD(rc == 0, "reencode %s/%s: %s", dirs[k], e->d_name, err.message);
      seen++;
    }
    closedir(dp);
  }
  if (seen == 0) fprintf(stderr, "  note: no gold streams under %s\n", wg_test_shared_dir());
}

int main(void) {
  RUN_TEST(fbb_builds_tables_the_reader_accepts);
  RUN_TEST(int32_with_nulls_roundtrips);
  RUN_TEST(utf8_list_and_struct_roundtrip);
  RUN_TEST(sliced_arrays_roundtrip);
  RUN_TEST(dictionary_sent_before_batch_and_only_when_changed);
  RUN_TEST(nested_dictionary_sent_first);
  RUN_TEST(string_view_sends_variadic_buffers);
  RUN_TEST(dense_and_sparse_unions_roundtrip);
  RUN_TEST(int64_column_is_zero_copy_and_aligned);
  RUN_TEST(lz4_bodies_roundtrip);
  RUN_TEST(zstd_bodies_roundtrip);
  RUN_TEST(schema_message_keeps_types_flags_and_metadata);
  RUN_TEST(write_stream_writes_schema_batches_and_eos);
  RUN_TEST(run_end_encoded_slice_roundtrips);
  RUN_TEST(bad_input_is_an_error_not_a_crash);
  gold_streams_survive_reencoding();
  return TEST_SUMMARY();
}
