/* wigeon: the row-by-row Arrow array builder (see build.h). Buffers are wg_bufs while building;
 * at finish they are detached into one holder per array node (array.h), so each node frees its own
 * and children can move out on their own. */
#include "arrow/build.h"

#include <stdlib.h>
#include <string.h>

#include "arrow/array.h"

void wg_col_init(struct wg_col *c, enum wg_col_kind kind, int width) {
  memset(c, 0, sizeof(*c));
  c->kind = kind;
  c->width = width;
}

void wg_col_reset(struct wg_col *c) {
  wg_buf_reset(&c->validity);
  wg_buf_reset(&c->offsets);
  wg_buf_reset(&c->data);
  c->length = 0;
  c->null_count = 0;
}

/* Sets bit i of b (growing it with zeros). */
static int put_bit(struct wg_buf *b, int64_t i, bool v) {
  int64_t need = i / 8 + 1;
  if (b->size < need) WG_RETURN_NOT_OK(wg_buf_append_zeros(b, need - b->size));
  if (v) b->data[i / 8] |= (uint8_t)(1u << (i % 8));
  return 0;
}

static int put_i32(struct wg_buf *b, int64_t v) {
  int32_t x = (int32_t)v;
  return wg_buf_append(b, &x, 4);
}

/* The first offset (0) of an offsets buffer, before its first element. */
static int offsets_start(struct wg_col *c) {
  return c->offsets.size == 0 ? put_i32(&c->offsets, 0) : 0;
}

static int32_t last_offset(const struct wg_col *c) {
  int32_t x;
  memcpy(&x, c->offsets.data + c->offsets.size - 4, 4);
  return x;
}

/* Ends a row: its validity bit, the length. */
static int row_done(struct wg_col *c, bool valid) {
  WG_RETURN_NOT_OK(put_bit(&c->validity, c->length, valid));
  c->length++;
  if (!valid) c->null_count++;
  return 0;
}

int wg_col_null(struct wg_col *c) {
  switch (c->kind) {
  case WG_COL_FIXED:
    WG_RETURN_NOT_OK(wg_buf_append_zeros(&c->data, c->width));
    break;
  case WG_COL_BOOL:
    WG_RETURN_NOT_OK(put_bit(&c->data, c->length, false));
    break;
  case WG_COL_VAR:
  case WG_COL_LIST:
    WG_RETURN_NOT_OK(offsets_start(c));
    WG_RETURN_NOT_OK(put_i32(&c->offsets, last_offset(c)));
    break;
  case WG_COL_STRUCT:
    break;
  case WG_COL_UNION:
    return EINVAL;
  }
  return row_done(c, false);
}

int wg_col_fixed(struct wg_col *c, const void *value) {
  WG_RETURN_NOT_OK(wg_buf_append(&c->data, value, c->width));
  return row_done(c, true);
}
int wg_col_i32(struct wg_col *c, int32_t v) { return wg_col_fixed(c, &v); }
int wg_col_i64(struct wg_col *c, int64_t v) { return wg_col_fixed(c, &v); }
int wg_col_u32(struct wg_col *c, uint32_t v) { return wg_col_fixed(c, &v); }
int wg_col_u8(struct wg_col *c, uint8_t v) { return wg_col_fixed(c, &v); }

int wg_col_bool(struct wg_col *c, bool v) {
  WG_RETURN_NOT_OK(put_bit(&c->data, c->length, v));
  return row_done(c, true);
}

int wg_col_bytes(struct wg_col *c, const void *p, int64_t n) {
  if (n < 0 || c->data.size + n > INT32_MAX) return EOVERFLOW;
  WG_RETURN_NOT_OK(offsets_start(c));
  if (n > 0) WG_RETURN_NOT_OK(wg_buf_append(&c->data, p, n));
  WG_RETURN_NOT_OK(put_i32(&c->offsets, c->data.size));
  return row_done(c, true);
}

int wg_col_str(struct wg_col *c, const char *s) {
  return s == NULL ? wg_col_null(c) : wg_col_bytes(c, s, (int64_t)strlen(s));
}

int wg_col_list_end(struct wg_col *c, int64_t child_length) {
  WG_RETURN_NOT_OK(offsets_start(c));
  if (child_length < last_offset(c) || child_length > INT32_MAX) return EINVAL;
  WG_RETURN_NOT_OK(put_i32(&c->offsets, child_length));
  return row_done(c, true);
}

int wg_col_struct_row(struct wg_col *c) { return row_done(c, true); }

int wg_col_union(struct wg_col *c, int8_t type_id, int32_t child_offset) {
  WG_RETURN_NOT_OK(wg_buf_append(&c->data, &type_id, 1));
  WG_RETURN_NOT_OK(put_i32(&c->offsets, child_offset));
  c->length++;
  return 0;
}

/* Detaches b into the holder's allocations; *p gets its data (NULL when empty). */
static int take(struct wg_holder_builder *hb, struct wg_buf *b, const void **p) {
  *p = NULL;
  if (b->size == 0) {
    wg_buf_reset(b);
    return 0;
  }
  void *d = wg_buf_detach(b);
  *p = d;
  return wg_holder_builder_add_alloc(hb, d);
}

static int64_t n_buffers_of(enum wg_col_kind k) {
  switch (k) {
  case WG_COL_VAR:
    return 3;
  case WG_COL_STRUCT:
    return 1;
  default:
    return 2;
  }
}

int wg_col_finish(struct wg_col *c, struct ArrowArray *children, int64_t n,
                  struct ArrowArray *out, struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  bool many = c->kind == WG_COL_STRUCT || c->kind == WG_COL_UNION;
  if ((c->kind == WG_COL_LIST && n != 1) || (!many && c->kind != WG_COL_LIST && n != 0) || n < 0)
    return wg_error_set(err, EINVAL, "an array of kind %d with %lld children", (int)c->kind,
                        (long long)n);
  for (int64_t i = 0; i < n; i++)
    if (c->kind == WG_COL_STRUCT && children[i].length != c->length)
      return wg_error_set(err, EINVAL, "struct child %lld has %lld rows, the struct %lld",
                          (long long)i, (long long)children[i].length, (long long)c->length);
  if ((c->kind == WG_COL_VAR || c->kind == WG_COL_LIST) && offsets_start(c) != 0)
    return wg_error_set(err, ENOMEM, "out of memory");
  struct wg_holder_builder *hb = NULL;
  struct wg_shared *holder = wg_holder_create(&hb);
  if (holder == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  int rc = wg_array_node_init(out, n_buffers_of(c->kind), n, holder);
  const void *bufs[3] = {NULL, NULL, NULL};
  if (c->kind == WG_COL_UNION) {
    if (rc == 0) rc = take(hb, &c->data, &bufs[0]);
    if (rc == 0) rc = take(hb, &c->offsets, &bufs[1]);
    wg_buf_reset(&c->validity);
  } else {
    if (c->null_count == 0) wg_buf_reset(&c->validity);
    if (rc == 0) rc = take(hb, &c->validity, &bufs[0]);
    if (rc == 0 && (c->kind == WG_COL_VAR || c->kind == WG_COL_LIST))
      rc = take(hb, &c->offsets, &bufs[1]);
    if (rc == 0 && c->kind == WG_COL_VAR) rc = take(hb, &c->data, &bufs[2]);
    if (rc == 0 && (c->kind == WG_COL_FIXED || c->kind == WG_COL_BOOL))
      rc = take(hb, &c->data, &bufs[1]);
  }
  wg_shared_unref(holder); /* the node holds its own reference */
  if (rc != 0) {
    wg_array_release(out);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  for (int64_t i = 0; i < out->n_buffers; i++)
    out->buffers[i] = bufs[i];
  out->length = c->length;
  out->null_count = c->kind == WG_COL_UNION ? 0 : c->null_count;
  for (int64_t i = 0; i < n; i++)
    wg_array_move(&children[i], out->children[i]);
  wg_col_reset(c);
  return 0;
}

int wg_field_init(struct ArrowSchema *out, const char *format, const char *name, bool nullable,
                  int64_t n_children, struct wg_error *err) {
  WG_RETURN_NOT_OK(wg_schema_node_init(out, format, n_children, err));
  if (wg_schema_set_name(out, name) != 0) {
    wg_schema_release(out);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  out->flags = nullable ? ARROW_FLAG_NULLABLE : 0;
  return 0;
}

/* ---- a stream of one batch ---- */
struct single {
  struct ArrowSchema schema;
  struct ArrowArray batch;
};

static int single_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct single *p = s->private_data;
  return wg_schema_deep_copy(&p->schema, out, NULL);
}

static int single_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct single *p = s->private_data;
  memset(out, 0, sizeof(*out));
  if (p->batch.release != NULL) wg_array_move(&p->batch, out);
  return 0;
}

static const char *single_error(struct ArrowArrayStream *s) {
  (void)s;
  return NULL;
}

static void single_release(struct ArrowArrayStream *s) {
  struct single *p = s->private_data;
  wg_schema_release(&p->schema);
  wg_array_release(&p->batch);
  free(p);
  s->release = NULL;
}

int wg_stream_single(struct ArrowSchema *schema, struct ArrowArray *batch,
                     struct ArrowArrayStream *out, struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  struct single *p = calloc(1, sizeof(*p));
  if (p == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  wg_schema_move(schema, &p->schema);
  if (batch != NULL && batch->release != NULL) wg_array_move(batch, &p->batch);
  out->get_schema = single_schema;
  out->get_next = single_next;
  out->get_last_error = single_error;
  out->release = single_release;
  out->private_data = p;
  return 0;
}
