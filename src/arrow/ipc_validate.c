/* wigeon: content validation of array nodes (see ipc_internal.h). Run by the decoder on every
 * node it builds, after the node's buffers are sized against the body, so that no consumer of a
 * decoded array can be led out of bounds: offsets are monotonic and inside their data, views and
 * list views inside their buffers, union type ids declared, run ends increasing, dictionary
 * indices inside the dictionary. Costs one pass over offsets/ids/indices, never over values. */
#include <string.h>

#include "arrow/array.h"
#include "arrow/ipc_internal.h"

/* size >= need, when the size is known. */
static int need(const int64_t *sizes, int i, int64_t need_bytes, const char *what,
                struct wg_error *err) {
  if (sizes != NULL && sizes[i] < need_bytes)
    return wg_error_set(err, EPROTO, "%s buffer of %lld bytes, needs %lld", what,
                        (long long)sizes[i], (long long)need_bytes);
  return 0;
}

static int mul_ok(int64_t a, int64_t b, int64_t *out) {
  return !__builtin_mul_overflow(a, b, out);
}

static int check_offsets(const struct ArrowArray *a, const int64_t *sizes, int wide, int64_t limit,
                         const char *what, struct wg_error *err) {
  int64_t off = a->offset, end = a->offset + a->length, bytes;
  /* An empty array may come with an empty offsets buffer; a non-empty one must still hold a
   * first offset inside the data, since consumers read it to find where the values start. */
  if (a->length == 0 && (a->buffers[1] == NULL || (sizes != NULL && sizes[1] == 0))) return 0;
  if (a->buffers[1] == NULL)
    return wg_error_set(err, EPROTO, "%s array of length %lld without offsets", what,
                        (long long)a->length);
  if (!mul_ok(end + 1, wide ? 8 : 4, &bytes))
    return wg_error_set(err, EPROTO, "%s array length %lld overflows", what, (long long)end);
  WG_RETURN_NOT_OK(need(sizes, 1, bytes, "offsets", err));
  const uint8_t *p = a->buffers[1];
  int64_t prev = wg_offset_load(p, off, wide);
  if (prev < 0)
    return wg_error_set(err, EPROTO, "%s offset %lld at %lld is negative", what, (long long)prev,
                        (long long)off);
  for (int64_t i = off + 1; i <= end; i++) {
    int64_t cur = wg_offset_load(p, i, wide);
    if (cur < prev)
      return wg_error_set(err, EPROTO, "%s offsets decrease at %lld: %lld < %lld", what,
                          (long long)i, (long long)cur, (long long)prev);
    prev = cur;
  }
  if (limit >= 0 && prev > limit)
    return wg_error_set(err, EPROTO, "%s offset %lld past the end of its %lld values", what,
                        (long long)prev, (long long)limit);
  return 0;
}

static int is_valid(const struct ArrowArray *a, int64_t i) {
  const uint8_t *v = a->buffers[0];
  return v == NULL || wg_bit_get(v, i);
}

static int check_dictionary_indices(const struct wg_arrow_type *t, const struct ArrowArray *a,
                                    struct wg_error *err) {
  const struct ArrowArray *d = a->dictionary;
  int64_t dict_len = d->length;
  const uint8_t *p = a->buffers[1];
  int w = t->bit_width / 8;
  int is_signed = t->id == WG_TYPE_INT8 || t->id == WG_TYPE_INT16 || t->id == WG_TYPE_INT32 ||
                  t->id == WG_TYPE_INT64;
  if (!(t->id >= WG_TYPE_INT8 && t->id <= WG_TYPE_UINT64))
    return wg_error_set(err, EPROTO, "dictionary index type is not an integer");
  if (a->length > 0 && p == NULL) return wg_error_set(err, EPROTO, "dictionary indices missing");
  for (int64_t i = a->offset; i < a->offset + a->length; i++) {
    if (!is_valid(a, i)) continue;
    int64_t idx;
    switch (w) {
    case 1:
      idx = is_signed ? (int64_t)(int8_t)p[i] : (int64_t)p[i];
      break;
    case 2: {
      uint16_t v;
      memcpy(&v, p + 2 * i, 2);
      idx = is_signed ? (int64_t)(int16_t)v : (int64_t)v;
      break;
    }
    case 4: {
      uint32_t v;
      memcpy(&v, p + 4 * i, 4);
      idx = is_signed ? (int64_t)(int32_t)v : (int64_t)v;
      break;
    }
    default: {
      uint64_t v;
      memcpy(&v, p + 8 * i, 8);
      if (!is_signed && v > (uint64_t)INT64_MAX)
        idx = -1;
      else
        idx = (int64_t)v;
    }
    }
    if (idx < 0 || idx >= dict_len)
      return wg_error_set(err, EPROTO,
                          "dictionary index %lld at row %lld outside dictionary of %lld",
                          (long long)idx, (long long)i, (long long)dict_len);
  }
  return 0;
}

static int check_views(const struct ArrowArray *a, const int64_t *sizes, struct wg_error *err) {
  int64_t nvar = a->n_buffers - 3, end = a->offset + a->length, bytes;
  if (nvar < 0)
    return wg_error_set(err, EPROTO, "view array with %lld buffers", (long long)a->n_buffers);
  if (!mul_ok(end, 16, &bytes)) return wg_error_set(err, EPROTO, "view array length overflows");
  WG_RETURN_NOT_OK(need(sizes, 1, bytes, "views", err));
  if (a->length > 0 && a->buffers[1] == NULL) return wg_error_set(err, EPROTO, "views missing");
  const int64_t *var_sizes_p = a->buffers[a->n_buffers - 1];
  if (nvar > 0 && var_sizes_p == NULL)
    return wg_error_set(err, EPROTO, "view array without variadic buffer sizes");
  for (int64_t k = 0; k < nvar; k++) {
    int64_t vs;
    memcpy(&vs, (const uint8_t *)var_sizes_p + 8 * k, 8);
    if (vs < 0 || (sizes != NULL && vs > sizes[2 + k]) || (vs > 0 && a->buffers[2 + k] == NULL))
      return wg_error_set(err, EPROTO, "variadic buffer %lld has a bad size %lld", (long long)k,
                          (long long)vs);
  }
  const uint8_t *v = a->buffers[1];
  for (int64_t i = a->offset; i < end; i++) {
    int32_t len, idx, off;
    memcpy(&len, v + 16 * i, 4);
    if (len < 0)
      return wg_error_set(err, EPROTO, "view %lld has negative length %d", (long long)i, len);
    if (len <= 12) continue;
    memcpy(&idx, v + 16 * i + 8, 4);
    memcpy(&off, v + 16 * i + 12, 4);
    if (idx < 0 || idx >= nvar)
      return wg_error_set(err, EPROTO, "view %lld refers to buffer %d of %lld", (long long)i, idx,
                          (long long)nvar);
    int64_t vs;
    memcpy(&vs, (const uint8_t *)var_sizes_p + 8 * idx, 8);
    if (off < 0 || (int64_t)off + len > vs)
      return wg_error_set(err, EPROTO,
                          "view %lld (offset %d, length %d) past buffer %d of %lld bytes",
                          (long long)i, off, len, idx, (long long)vs);
  }
  return 0;
}

static int check_union(const struct wg_arrow_type *t, const struct ArrowArray *a,
                       const int64_t *sizes, struct wg_error *err) {
  int8_t child_of[128];
  memset(child_of, -1, sizeof(child_of));
  if (a->n_children != t->n_type_ids)
    return wg_error_set(err, EPROTO, "union with %lld children and %d type ids",
                        (long long)a->n_children, t->n_type_ids);
  for (int k = 0; k < t->n_type_ids; k++)
    child_of[t->type_ids[k]] = (int8_t)k;
  int64_t end = a->offset + a->length, bytes;
  WG_RETURN_NOT_OK(need(sizes, 0, end, "union type ids", err));
  const uint8_t *ids = a->buffers[0];
  if (a->length > 0 && ids == NULL) return wg_error_set(err, EPROTO, "union type ids missing");
  int dense = t->id == WG_TYPE_DENSE_UNION;
  if (dense) {
    if (!mul_ok(end, 4, &bytes)) return wg_error_set(err, EPROTO, "union length overflows");
    WG_RETURN_NOT_OK(need(sizes, 1, bytes, "union offsets", err));
    if (a->length > 0 && a->buffers[1] == NULL)
      return wg_error_set(err, EPROTO, "dense union offsets missing");
  } else {
    for (int64_t k = 0; k < a->n_children; k++)
      if (a->children[k]->length < end)
        return wg_error_set(err, EPROTO, "sparse union child %lld has %lld values, needs %lld",
                            (long long)k, (long long)a->children[k]->length, (long long)end);
  }
  for (int64_t i = a->offset; i < end; i++) {
    int8_t id = (int8_t)ids[i];
    if (id < 0 || child_of[id] < 0)
      return wg_error_set(err, EPROTO, "union type id %d at row %lld is not declared", id,
                          (long long)i);
    if (dense) {
      int32_t o;
      memcpy(&o, (const uint8_t *)a->buffers[1] + 4 * i, 4);
      if (o < 0 || o >= a->children[child_of[id]]->length)
        return wg_error_set(err, EPROTO, "dense union offset %d at row %lld outside child of %lld",
                            o, (long long)i, (long long)a->children[child_of[id]]->length);
    }
  }
  return 0;
}

static int check_run_ends(const struct ArrowSchema *s, const struct ArrowArray *a,
                          struct wg_error *err) {
  const struct ArrowArray *re = a->children[0], *values = a->children[1];
  struct wg_arrow_type rt;
  WG_RETURN_NOT_OK(wg_arrow_type_parse(s->children[0]->format, &rt, err));
  int width = rt.bit_width / 8;
  if (rt.id != WG_TYPE_INT16 && rt.id != WG_TYPE_INT32 && rt.id != WG_TYPE_INT64)
    return wg_error_set(err, EPROTO, "run ends of type %.16s", s->children[0]->format);
  if (re->null_count != 0) return wg_error_set(err, EPROTO, "run ends hold nulls");
  if (values->length < re->length)
    return wg_error_set(err, EPROTO, "%lld run ends but %lld values", (long long)re->length,
                        (long long)values->length);
  if (a->length == 0) return 0;
  if (re->length < 1 || re->buffers[1] == NULL)
    return wg_error_set(err, EPROTO, "run-end encoded array of length %lld without run ends",
                        (long long)a->length);
  const uint8_t *p = re->buffers[1];
  int64_t prev = 0, end = a->offset + a->length;
  for (int64_t i = re->offset; i < re->offset + re->length; i++) {
    int64_t v;
    if (width == 2) {
      int16_t x;
      memcpy(&x, p + 2 * i, 2);
      v = x;
    } else if (width == 4) {
      int32_t x;
      memcpy(&x, p + 4 * i, 4);
      v = x;
    } else {
      memcpy(&v, p + 8 * i, 8);
    }
    if (v <= prev)
      return wg_error_set(err, EPROTO, "run end %lld at %lld does not increase (previous %lld)",
                          (long long)v, (long long)i, (long long)prev);
    prev = v;
  }
  if (prev < end)
    return wg_error_set(err, EPROTO, "run ends stop at %lld, array needs %lld", (long long)prev,
                        (long long)end);
  return 0;
}

int wg__validate_node(const struct wg_arrow_type *t, const struct ArrowSchema *s,
                      const struct ArrowArray *a, const int64_t *sizes, struct wg_error *err) {
  int64_t bytes;
  if (a->length < 0 || a->offset < 0 || a->length > INT64_MAX / 16 - a->offset)
    return wg_error_set(err, EPROTO, "array length %lld / offset %lld out of range",
                        (long long)a->length, (long long)a->offset);
  int64_t end = a->offset + a->length;
  if (a->null_count < -1 || a->null_count > a->length)
    return wg_error_set(err, EPROTO, "null count %lld for %lld values", (long long)a->null_count,
                        (long long)a->length);
  if (wg_arrow_type_has_validity(t) && a->n_buffers > 0) {
    if (a->buffers[0] != NULL) {
      WG_RETURN_NOT_OK(need(sizes, 0, (end + 7) / 8, "validity", err));
    } else if (a->null_count > 0) {
      return wg_error_set(err, EPROTO, "%lld nulls but no validity buffer",
                          (long long)a->null_count);
    }
  }
  switch (t->id) {
  case WG_TYPE_NA:
  case WG_TYPE_STRUCT:
    for (int64_t k = 0; k < a->n_children; k++)
      if (a->children[k]->length < end)
        return wg_error_set(err, EPROTO, "struct child %lld has %lld values, needs %lld",
                            (long long)k, (long long)a->children[k]->length, (long long)end);
    break;
  case WG_TYPE_BOOL:
    WG_RETURN_NOT_OK(need(sizes, 1, (end + 7) / 8, "boolean", err));
    break;
  case WG_TYPE_BINARY:
  case WG_TYPE_STRING:
  case WG_TYPE_LARGE_BINARY:
  case WG_TYPE_LARGE_STRING: {
    int wide = t->id == WG_TYPE_LARGE_BINARY || t->id == WG_TYPE_LARGE_STRING;
    WG_RETURN_NOT_OK(check_offsets(a, sizes, wide, sizes ? sizes[2] : -1, "binary", err));
    if (a->length > 0 && a->buffers[2] == NULL && (sizes == NULL || sizes[2] > 0))
      return wg_error_set(err, EPROTO, "binary array without data");
    break;
  }
  case WG_TYPE_BINARY_VIEW:
  case WG_TYPE_STRING_VIEW:
    WG_RETURN_NOT_OK(check_views(a, sizes, err));
    break;
  case WG_TYPE_LIST:
  case WG_TYPE_LARGE_LIST:
  case WG_TYPE_MAP:
    WG_RETURN_NOT_OK(
        check_offsets(a, sizes, t->id == WG_TYPE_LARGE_LIST, a->children[0]->length, "list", err));
    break;
  case WG_TYPE_LIST_VIEW:
  case WG_TYPE_LARGE_LIST_VIEW: {
    int wide = t->id == WG_TYPE_LARGE_LIST_VIEW;
    if (!mul_ok(end, wide ? 8 : 4, &bytes)) return wg_error_set(err, EPROTO, "length overflows");
    WG_RETURN_NOT_OK(need(sizes, 1, bytes, "list view offsets", err));
    WG_RETURN_NOT_OK(need(sizes, 2, bytes, "list view sizes", err));
    if (a->length > 0 && (a->buffers[1] == NULL || a->buffers[2] == NULL))
      return wg_error_set(err, EPROTO, "list view without offsets or sizes");
    int64_t child_len = a->children[0]->length;
    for (int64_t i = a->offset; i < end; i++) {
      int64_t o = wg_offset_load(a->buffers[1], i, wide);
      int64_t sz = wg_offset_load(a->buffers[2], i, wide);
      if (o < 0 || sz < 0 || o > child_len - sz)
        return wg_error_set(err, EPROTO,
                            "list view %lld (offset %lld, size %lld) outside %lld values",
                            (long long)i, (long long)o, (long long)sz, (long long)child_len);
    }
    break;
  }
  case WG_TYPE_FIXED_SIZE_LIST:
    if (!mul_ok(end, t->fixed_size, &bytes) || a->children[0]->length < bytes)
      return wg_error_set(err, EPROTO, "fixed-size list of %lld x %d needs more than %lld values",
                          (long long)end, t->fixed_size, (long long)a->children[0]->length);
    break;
  case WG_TYPE_SPARSE_UNION:
  case WG_TYPE_DENSE_UNION:
    WG_RETURN_NOT_OK(check_union(t, a, sizes, err));
    break;
  case WG_TYPE_RUN_END_ENCODED:
    WG_RETURN_NOT_OK(check_run_ends(s, a, err));
    break;
  default: /* fixed width */
    if (!mul_ok(end, t->bit_width / 8, &bytes))
      return wg_error_set(err, EPROTO, "array length %lld overflows", (long long)end);
    WG_RETURN_NOT_OK(need(sizes, 1, bytes, "values", err));
    if (a->length > 0 && a->buffers[1] == NULL && bytes > 0)
      return wg_error_set(err, EPROTO, "array of length %lld without values", (long long)a->length);
    break;
  }
  if (a->dictionary != NULL) WG_RETURN_NOT_OK(check_dictionary_indices(t, a, err));
  return 0;
}
