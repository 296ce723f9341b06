/* wigeon: a checked flatbuffer reader. Every accessor verifies the table's vtable, the field's slot
 * and the target's extent against the buffer before reading, so a hostile buffer yields EPROTO,
 * never an out-of-bounds read. Integers are read with byte loads (no pointer casts). Offsets only
 * point forward (uoffset > 0), so chains terminate; callers bound recursion depth and node counts.
 */
#ifndef WG_ARROW_FLATBUF_H
#define WG_ARROW_FLATBUF_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"

struct wg_fb_table {
  const uint8_t *buf;
  int64_t size;
  int64_t pos;     /* start of the table */
  int64_t vt_pos;  /* start of its vtable */
  int32_t vt_size; /* bytes of vtable */
  int32_t tbl_size;
};

struct wg_fb_vector {
  const uint8_t *buf;
  int64_t size;
  int64_t pos; /* first element */
  int64_t length;
};

/* The root table of a finished buffer. */
int wg_fb_root(struct wg_bytes buf, struct wg_fb_table *out, struct wg_error *err);

/* Scalars: absent fields give the default. EPROTO when the slot lies outside the table. */
int wg_fb_u8(const struct wg_fb_table *t, int field, uint8_t def, uint8_t *out,
             struct wg_error *err);
int wg_fb_i16(const struct wg_fb_table *t, int field, int16_t def, int16_t *out,
              struct wg_error *err);
int wg_fb_i32(const struct wg_fb_table *t, int field, int32_t def, int32_t *out,
              struct wg_error *err);
int wg_fb_i64(const struct wg_fb_table *t, int field, int64_t def, int64_t *out,
              struct wg_error *err);
int wg_fb_bool(const struct wg_fb_table *t, int field, bool def, bool *out, struct wg_error *err);

/* Offset fields: *present is false when the field is absent (out untouched then). */
int wg_fb_table_field(const struct wg_fb_table *t, int field, bool *present,
                      struct wg_fb_table *out, struct wg_error *err);
/* A string: view into the buffer (not NUL-terminated). */
int wg_fb_string(const struct wg_fb_table *t, int field, bool *present, struct wg_bytes *out,
                 struct wg_error *err);
/* A vector of elements of elem_size bytes (scalars, structs, or 4-byte offsets to tables). */
int wg_fb_vector_field(const struct wg_fb_table *t, int field, int64_t elem_size, bool *present,
                       struct wg_fb_vector *out, struct wg_error *err);
/* Element i of a vector of tables / strings (i < v->length). */
int wg_fb_vector_table(const struct wg_fb_vector *v, int64_t i, struct wg_fb_table *out,
                       struct wg_error *err);
int wg_fb_vector_string(const struct wg_fb_vector *v, int64_t i, struct wg_bytes *out,
                        struct wg_error *err);
/* Element i of a vector of scalars or structs: a pointer to its elem_size bytes. */
static inline const uint8_t *wg_fb_vector_at(const struct wg_fb_vector *v, int64_t i,
                                             int64_t elem_size) {
  return v->buf + v->pos + i * elem_size;
}

#endif
