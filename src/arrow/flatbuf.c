/* wigeon: checked flatbuffer reader (see flatbuf.h). */
#include "arrow/flatbuf.h"

static int load_table(const uint8_t *buf, int64_t size, int64_t pos, struct wg_fb_table *out,
                      struct wg_error *err) {
  if (pos < 0 || pos > size - 4)
    return wg_error_set(err, EPROTO, "flatbuffer table at %lld outside %lld bytes", (long long)pos,
                        (long long)size);
  int64_t vt = pos - (int64_t)wg_load_i32(buf + pos);
  if (vt < 0 || vt > size - 4)
    return wg_error_set(err, EPROTO, "flatbuffer vtable at %lld outside %lld bytes", (long long)vt,
                        (long long)size);
  int32_t vt_size = wg_load_u16(buf + vt), tbl_size = wg_load_u16(buf + vt + 2);
  if (vt_size < 4 || (vt_size & 1) || vt + vt_size > size)
    return wg_error_set(err, EPROTO, "flatbuffer vtable at %lld has bad size %d", (long long)vt,
                        vt_size);
  if (tbl_size < 4 || pos + tbl_size > size)
    return wg_error_set(err, EPROTO, "flatbuffer table at %lld has bad size %d", (long long)pos,
                        tbl_size);
  out->buf = buf;
  out->size = size;
  out->pos = pos;
  out->vt_pos = vt;
  out->vt_size = vt_size;
  out->tbl_size = tbl_size;
  return 0;
}

int wg_fb_root(struct wg_bytes buf, struct wg_fb_table *out, struct wg_error *err) {
  if (buf.size < 8 || buf.size > INT32_MAX)
    return wg_error_set(err, EPROTO, "flatbuffer of %lld bytes", (long long)buf.size);
  return load_table(buf.data, buf.size, wg_load_u32(buf.data), out, err);
}

/* Position of a field's slot, or -1 when absent. Checks it fits in the table. */
static int slot(const struct wg_fb_table *t, int field, int width, int64_t *pos,
                struct wg_error *err) {
  int64_t entry = 4 + 2 * (int64_t)field;
  *pos = -1;
  if (entry + 2 > t->vt_size) return 0;
  int32_t off = wg_load_u16(t->buf + t->vt_pos + entry);
  if (off == 0) return 0;
  if (off < 4 || off + width > t->tbl_size)
    return wg_error_set(err, EPROTO, "flatbuffer field %d at offset %d outside table of %d bytes",
                        field, off, t->tbl_size);
  *pos = t->pos + off;
  return 0;
}

int wg_fb_u8(const struct wg_fb_table *t, int field, uint8_t def, uint8_t *out,
             struct wg_error *err) {
  int64_t p;
  WG_RETURN_NOT_OK(slot(t, field, 1, &p, err));
  *out = p < 0 ? def : t->buf[p];
  return 0;
}

int wg_fb_bool(const struct wg_fb_table *t, int field, bool def, bool *out, struct wg_error *err) {
  uint8_t v;
  WG_RETURN_NOT_OK(wg_fb_u8(t, field, def, &v, err));
  *out = v != 0;
  return 0;
}

int wg_fb_i16(const struct wg_fb_table *t, int field, int16_t def, int16_t *out,
              struct wg_error *err) {
  int64_t p;
  WG_RETURN_NOT_OK(slot(t, field, 2, &p, err));
  *out = p < 0 ? def : (int16_t)wg_load_u16(t->buf + p);
  return 0;
}

int wg_fb_i32(const struct wg_fb_table *t, int field, int32_t def, int32_t *out,
              struct wg_error *err) {
  int64_t p;
  WG_RETURN_NOT_OK(slot(t, field, 4, &p, err));
  *out = p < 0 ? def : wg_load_i32(t->buf + p);
  return 0;
}

int wg_fb_i64(const struct wg_fb_table *t, int field, int64_t def, int64_t *out,
              struct wg_error *err) {
  int64_t p;
  WG_RETURN_NOT_OK(slot(t, field, 8, &p, err));
  *out = p < 0 ? def : wg_load_i64(t->buf + p);
  return 0;
}

/* Follows the uoffset stored at `at` (which must fit in the buffer). */
static int follow(const uint8_t *buf, int64_t size, int64_t at, int64_t *target,
                  struct wg_error *err) {
  if (at < 0 || at > size - 4)
    return wg_error_set(err, EPROTO, "flatbuffer offset at %lld outside %lld bytes", (long long)at,
                        (long long)size);
  uint32_t off = wg_load_u32(buf + at);
  if (off == 0 || (int64_t)off >= size - at)
    return wg_error_set(err, EPROTO, "flatbuffer offset %u at %lld points outside %lld bytes", off,
                        (long long)at, (long long)size);
  *target = at + off;
  return 0;
}

static int offset_field(const struct wg_fb_table *t, int field, bool *present, int64_t *target,
                        struct wg_error *err) {
  int64_t p;
  WG_RETURN_NOT_OK(slot(t, field, 4, &p, err));
  *present = p >= 0;
  if (p < 0) return 0;
  return follow(t->buf, t->size, p, target, err);
}

int wg_fb_table_field(const struct wg_fb_table *t, int field, bool *present,
                      struct wg_fb_table *out, struct wg_error *err) {
  int64_t target;
  WG_RETURN_NOT_OK(offset_field(t, field, present, &target, err));
  if (!*present) return 0;
  return load_table(t->buf, t->size, target, out, err);
}

static int load_vector(const uint8_t *buf, int64_t size, int64_t pos, int64_t elem_size,
                       struct wg_fb_vector *out, struct wg_error *err) {
  if (pos > size - 4)
    return wg_error_set(err, EPROTO, "flatbuffer vector at %lld outside %lld bytes", (long long)pos,
                        (long long)size);
  int64_t n = wg_load_u32(buf + pos);
  if (n > (size - pos - 4) / elem_size)
    return wg_error_set(err, EPROTO,
                        "flatbuffer vector at %lld of %lld elements of %lld bytes overruns %lld "
                        "bytes",
                        (long long)pos, (long long)n, (long long)elem_size, (long long)size);
  out->buf = buf;
  out->size = size;
  out->pos = pos + 4;
  out->length = n;
  return 0;
}

int wg_fb_string(const struct wg_fb_table *t, int field, bool *present, struct wg_bytes *out,
                 struct wg_error *err) {
  int64_t target;
  WG_RETURN_NOT_OK(offset_field(t, field, present, &target, err));
  if (!*present) return 0;
  struct wg_fb_vector v;
  WG_RETURN_NOT_OK(load_vector(t->buf, t->size, target, 1, &v, err));
  out->data = v.buf + v.pos;
  out->size = v.length;
  return 0;
}

int wg_fb_vector_field(const struct wg_fb_table *t, int field, int64_t elem_size, bool *present,
                       struct wg_fb_vector *out, struct wg_error *err) {
  int64_t target;
  WG_RETURN_NOT_OK(offset_field(t, field, present, &target, err));
  if (!*present) return 0;
  return load_vector(t->buf, t->size, target, elem_size, out, err);
}

int wg_fb_vector_table(const struct wg_fb_vector *v, int64_t i, struct wg_fb_table *out,
                       struct wg_error *err) {
  int64_t target;
  WG_RETURN_NOT_OK(follow(v->buf, v->size, v->pos + 4 * i, &target, err));
  return load_table(v->buf, v->size, target, out, err);
}

int wg_fb_vector_string(const struct wg_fb_vector *v, int64_t i, struct wg_bytes *out,
                        struct wg_error *err) {
  int64_t target;
  WG_RETURN_NOT_OK(follow(v->buf, v->size, v->pos + 4 * i, &target, err));
  struct wg_fb_vector s;
  WG_RETURN_NOT_OK(load_vector(v->buf, v->size, target, 1, &s, err));
  out->data = s.buf + s.pos;
  out->size = s.length;
  return 0;
}
