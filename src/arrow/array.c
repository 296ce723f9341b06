/* wigeon: C Data Interface helpers (see array.h). Ownership: a schema node owns its strings and
 * children; an array node owns its buffer/child pointer tables and one reference on its holder. */
#include "arrow/array.h"

#include <stdlib.h>
#include <string.h>

void wg_schema_release(struct ArrowSchema *s) {
  if (s != NULL && s->release != NULL) s->release(s);
}

void wg_array_release(struct ArrowArray *a) {
  if (a != NULL && a->release != NULL) a->release(a);
}

void wg_stream_release(struct ArrowArrayStream *s) {
  if (s != NULL && s->release != NULL) s->release(s);
}

/* ---- schemas ---- */

struct schema_private {
  char *format;
  char *name;
  char *metadata;
  struct ArrowSchema *child_structs;
  struct ArrowSchema **child_ptrs;
};

static void schema_node_release(struct ArrowSchema *s) {
  struct schema_private *p = s->private_data;
  for (int64_t i = 0; i < s->n_children; i++)
    wg_schema_release(s->children[i]);
  if (s->dictionary != NULL) {
    wg_schema_release(s->dictionary);
    free(s->dictionary);
  }
  if (p != NULL) {
    free(p->format);
    free(p->name);
    free(p->metadata);
    free(p->child_structs);
    free(p->child_ptrs);
    free(p);
  }
  s->release = NULL;
}

int wg_schema_node_init(struct ArrowSchema *out, const char *format, int64_t n_children,
                        struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  if (n_children < 0 || n_children > (1 << 24))
    return wg_error_set(err, EINVAL, "schema node with %lld children", (long long)n_children);
  struct schema_private *p = calloc(1, sizeof(*p));
  if (p == NULL) return wg_error_set(err, ENOMEM, "out of memory for a schema node");
  out->private_data = p;
  out->release = schema_node_release;
  if (n_children > 0) {
    p->child_structs = calloc((size_t)n_children, sizeof(struct ArrowSchema));
    p->child_ptrs = calloc((size_t)n_children, sizeof(struct ArrowSchema *));
    if (p->child_structs == NULL || p->child_ptrs == NULL) {
      schema_node_release(out);
      return wg_error_set(err, ENOMEM, "out of memory for %lld schema children",
                          (long long)n_children);
    }
    for (int64_t i = 0; i < n_children; i++)
      p->child_ptrs[i] = &p->child_structs[i];
  }
  out->n_children = n_children;
  out->children = p->child_ptrs;
  out->flags = ARROW_FLAG_NULLABLE;
  if (wg_schema_set_format(out, format) != 0) {
    schema_node_release(out);
    return wg_error_set(err, ENOMEM, "out of memory for a schema format");
  }
  return 0;
}

static int replace_string(char **slot, const char *value, int64_t size) {
  char *copy = NULL;
  if (value != NULL) {
    copy = malloc((size_t)size + 1);
    if (copy == NULL) return ENOMEM;
    memcpy(copy, value, (size_t)size);
    copy[size] = '\0';
  }
  free(*slot);
  *slot = copy;
  return 0;
}

int wg_schema_set_format(struct ArrowSchema *s, const char *format) {
  struct schema_private *p = s->private_data;
  WG_RETURN_NOT_OK(replace_string(&p->format, format, format ? (int64_t)strlen(format) : 0));
  s->format = p->format;
  return 0;
}

int wg_schema_set_name(struct ArrowSchema *s, const char *name) {
  struct schema_private *p = s->private_data;
  WG_RETURN_NOT_OK(replace_string(&p->name, name, name ? (int64_t)strlen(name) : 0));
  s->name = p->name;
  return 0;
}

int wg_schema_set_metadata(struct ArrowSchema *s, const char *metadata) {
  struct schema_private *p = s->private_data;
  WG_RETURN_NOT_OK(replace_string(&p->metadata, metadata, wg_metadata_size(metadata)));
  s->metadata = p->metadata;
  return 0;
}

int wg_schema_alloc_dictionary(struct ArrowSchema *s) {
  if (s->dictionary != NULL) return EINVAL;
  s->dictionary = calloc(1, sizeof(struct ArrowSchema));
  return s->dictionary == NULL ? ENOMEM : 0;
}

static int schema_copy(const struct ArrowSchema *src, struct ArrowSchema *dst, int depth,
                       struct wg_error *err) {
  if (depth > 256) return wg_error_set(err, EINVAL, "schema nested deeper than 256 levels");
  if (src->release == NULL) return wg_error_set(err, EINVAL, "copy of a released schema");
  WG_RETURN_NOT_OK(wg_schema_node_init(dst, src->format ? src->format : "", src->n_children, err));
  dst->flags = src->flags;
  if (wg_schema_set_name(dst, src->name) != 0 || wg_schema_set_metadata(dst, src->metadata) != 0)
    goto oom;
  for (int64_t i = 0; i < src->n_children; i++) {
    int rc = schema_copy(src->children[i], dst->children[i], depth + 1, err);
    if (rc != 0) {
      wg_schema_release(dst);
      return rc;
    }
  }
  if (src->dictionary != NULL) {
    if (wg_schema_alloc_dictionary(dst) != 0) goto oom;
    int rc = schema_copy(src->dictionary, dst->dictionary, depth + 1, err);
    if (rc != 0) {
      wg_schema_release(dst);
      return rc;
    }
  }
  return 0;
oom:
  wg_schema_release(dst);
  return wg_error_set(err, ENOMEM, "out of memory copying a schema");
}

int wg_schema_deep_copy(const struct ArrowSchema *src, struct ArrowSchema *dst,
                        struct wg_error *err) {
  return schema_copy(src, dst, 0, err);
}

/* ---- metadata ---- */

static int32_t load_native_i32(const char *p) {
  int32_t v;
  memcpy(&v, p, sizeof(v));
  return v;
}

static int fingerprint_node(const struct ArrowSchema *s, struct wg_buf *out, int depth) {
  if (depth > 64 || s == NULL) return EINVAL;
  const char *format = s->format ? s->format : "", *name = s->name ? s->name : "";
  int64_t meta = wg_metadata_size(s->metadata), n = s->n_children;
  uint8_t has_dict = s->dictionary != NULL;
  WG_RETURN_NOT_OK(wg_buf_append(out, format, (int64_t)strlen(format) + 1));
  WG_RETURN_NOT_OK(wg_buf_append(out, name, (int64_t)strlen(name) + 1));
  WG_RETURN_NOT_OK(wg_buf_append(out, &s->flags, sizeof(s->flags)));
  WG_RETURN_NOT_OK(wg_buf_append(out, &meta, sizeof(meta)));
  if (meta > 0) WG_RETURN_NOT_OK(wg_buf_append(out, s->metadata, meta));
  WG_RETURN_NOT_OK(wg_buf_append(out, &n, sizeof(n)));
  for (int64_t i = 0; i < n; i++)
    WG_RETURN_NOT_OK(fingerprint_node(s->children[i], out, depth + 1));
  WG_RETURN_NOT_OK(wg_buf_append(out, &has_dict, 1));
  return has_dict ? fingerprint_node(s->dictionary, out, depth + 1) : 0;
}

int wg_schema_fingerprint(const struct ArrowSchema *s, struct wg_buf *out) {
  return fingerprint_node(s, out, 0);
}

bool wg_schema_same(const struct ArrowSchema *a, const struct ArrowSchema *b) {
  struct wg_buf fa, fb;
  wg_buf_init(&fa);
  wg_buf_init(&fb);
  bool same = wg_schema_fingerprint(a, &fa) == 0 && wg_schema_fingerprint(b, &fb) == 0 &&
              fa.size == fb.size && memcmp(fa.data, fb.data, (size_t)fa.size) == 0;
  wg_buf_reset(&fa);
  wg_buf_reset(&fb);
  return same;
}

int64_t wg_metadata_size(const char *metadata) {
  if (metadata == NULL) return 0;
  int32_t n = load_native_i32(metadata);
  int64_t pos = 4;
  for (int32_t i = 0; i < n; i++) {
    pos += 4 + load_native_i32(metadata + pos);
    pos += 4 + load_native_i32(metadata + pos);
  }
  return pos;
}

int wg_metadata_append(struct wg_buf *b, const char *key, int32_t key_len, const char *value,
                       int32_t value_len) {
  if (b->size == 0) {
    int32_t zero = 0;
    WG_RETURN_NOT_OK(wg_buf_append(b, &zero, 4));
  }
  WG_RETURN_NOT_OK(wg_buf_reserve(b, 8 + (int64_t)key_len + value_len));
  wg_buf_append(b, &key_len, 4);
  wg_buf_append(b, key, key_len);
  wg_buf_append(b, &value_len, 4);
  wg_buf_append(b, value, value_len);
  int32_t n;
  memcpy(&n, b->data, 4);
  n++;
  memcpy(b->data, &n, 4);
  return 0;
}

void wg_metadata_reader_init(struct wg_metadata_reader *r, const char *metadata) {
  r->p = metadata;
  r->remaining = metadata == NULL ? 0 : load_native_i32(metadata);
  if (metadata != NULL) r->p += 4;
}

int wg_metadata_reader_next(struct wg_metadata_reader *r, struct wg_bytes *key,
                            struct wg_bytes *value) {
  if (r->remaining <= 0) return 0;
  key->size = load_native_i32(r->p);
  key->data = (const uint8_t *)r->p + 4;
  r->p += 4 + key->size;
  value->size = load_native_i32(r->p);
  value->data = (const uint8_t *)r->p + 4;
  r->p += 4 + value->size;
  r->remaining--;
  return 1;
}

/* ---- arrays ---- */

struct array_private {
  struct wg_shared *holder;
  const void **buffers;
  struct ArrowArray **child_ptrs;
  struct ArrowArray *child_structs;
};

static void array_node_release(struct ArrowArray *a) {
  struct array_private *p = a->private_data;
  for (int64_t i = 0; i < a->n_children; i++)
    wg_array_release(a->children[i]);
  if (a->dictionary != NULL) {
    wg_array_release(a->dictionary);
    free(a->dictionary);
  }
  if (p != NULL) {
    wg_shared_unref(p->holder);
    free(p->buffers);
    free(p->child_ptrs);
    free(p->child_structs);
    free(p);
  }
  a->release = NULL;
}

int wg_array_node_init(struct ArrowArray *out, int64_t n_buffers, int64_t n_children,
                       struct wg_shared *holder) {
  memset(out, 0, sizeof(*out));
  if (n_buffers < 0 || n_children < 0 || n_buffers > (1 << 24) || n_children > (1 << 24))
    return EINVAL;
  struct array_private *p = calloc(1, sizeof(*p));
  if (p == NULL) return ENOMEM;
  out->private_data = p;
  out->release = array_node_release;
  if (n_buffers > 0) {
    p->buffers = calloc((size_t)n_buffers, sizeof(void *));
    if (p->buffers == NULL) goto oom;
  }
  if (n_children > 0) {
    p->child_ptrs = calloc((size_t)n_children, sizeof(struct ArrowArray *));
    p->child_structs = calloc((size_t)n_children, sizeof(struct ArrowArray));
    if (p->child_ptrs == NULL || p->child_structs == NULL) goto oom;
    for (int64_t i = 0; i < n_children; i++)
      p->child_ptrs[i] = &p->child_structs[i];
  }
  out->n_buffers = n_buffers;
  out->n_children = n_children;
  out->buffers = p->buffers;
  out->children = p->child_ptrs;
  p->holder = wg_shared_ref(holder);
  return 0;
oom:
  array_node_release(out);
  return ENOMEM;
}

int wg_array_alloc_dictionary(struct ArrowArray *a) {
  if (a->dictionary != NULL) return EINVAL;
  a->dictionary = calloc(1, sizeof(struct ArrowArray));
  return a->dictionary == NULL ? ENOMEM : 0;
}

int wg_array_share(const struct ArrowArray *src, struct ArrowArray *dst) {
  if (src->release != array_node_release) return EINVAL;
  struct array_private *p = src->private_data;
  WG_RETURN_NOT_OK(wg_array_node_init(dst, src->n_buffers, src->n_children, p->holder));
  dst->length = src->length;
  dst->null_count = src->null_count;
  dst->offset = src->offset;
  for (int64_t i = 0; i < src->n_buffers; i++)
    dst->buffers[i] = src->buffers[i];
  int rc = 0;
  for (int64_t i = 0; i < src->n_children && rc == 0; i++)
    rc = wg_array_share(src->children[i], dst->children[i]);
  if (rc == 0 && src->dictionary != NULL) {
    rc = wg_array_alloc_dictionary(dst);
    if (rc == 0) rc = wg_array_share(src->dictionary, dst->dictionary);
  }
  if (rc != 0) wg_array_release(dst);
  return rc;
}

struct wg_shared *wg_array_holder(const struct ArrowArray *a) {
  if (a->release != array_node_release) return NULL;
  return ((struct array_private *)a->private_data)->holder;
}

/* ---- holders ---- */

void wg_holder_builder_init(struct wg_holder_builder *hb) {
  memset(hb, 0, sizeof(*hb));
}

int wg_holder_builder_add_alloc(struct wg_holder_builder *hb, void *p) {
  if (hb->n_allocs == hb->cap_allocs) {
    int64_t cap = hb->cap_allocs ? hb->cap_allocs * 2 : 8;
    void **n = realloc(hb->allocs, (size_t)cap * sizeof(void *));
    if (n == NULL) {
      free(p);
      return ENOMEM;
    }
    hb->allocs = n;
    hb->cap_allocs = cap;
  }
  hb->allocs[hb->n_allocs++] = p;
  return 0;
}

int wg_holder_builder_add_ref(struct wg_holder_builder *hb, struct wg_shared *s) {
  if (s == NULL) return 0;
  if (hb->n_refs == hb->cap_refs) {
    int64_t cap = hb->cap_refs ? hb->cap_refs * 2 : 4;
    struct wg_shared **n = realloc(hb->refs, (size_t)cap * sizeof(*n));
    if (n == NULL) return ENOMEM;
    hb->refs = n;
    hb->cap_refs = cap;
  }
  hb->refs[hb->n_refs++] = wg_shared_ref(s);
  return 0;
}

struct holder {
  struct wg_holder_builder hb;
};

static void holder_release(void *ctx) {
  struct holder *h = ctx;
  wg_holder_builder_reset(&h->hb);
  free(h);
}

struct wg_shared *wg_holder_create(struct wg_holder_builder **hb) {
  struct holder *h = calloc(1, sizeof(*h));
  if (h == NULL) return NULL;
  struct wg_shared *s = wg_shared_wrap(NULL, 0, holder_release, h);
  if (s == NULL) {
    free(h);
    return NULL;
  }
  *hb = &h->hb;
  return s;
}

struct wg_shared *wg_holder_builder_finish(struct wg_holder_builder *hb) {
  struct holder *h = malloc(sizeof(*h));
  if (h == NULL) {
    wg_holder_builder_reset(hb);
    return NULL;
  }
  h->hb = *hb;
  wg_holder_builder_init(hb);
  struct wg_shared *s = wg_shared_wrap(NULL, 0, holder_release, h);
  if (s == NULL) holder_release(h);
  return s;
}

void wg_holder_builder_reset(struct wg_holder_builder *hb) {
  for (int64_t i = 0; i < hb->n_allocs; i++)
    free(hb->allocs[i]);
  for (int64_t i = 0; i < hb->n_refs; i++)
    wg_shared_unref(hb->refs[i]);
  free(hb->allocs);
  free(hb->refs);
  wg_holder_builder_init(hb);
}

int64_t wg_bitmap_count_set(const uint8_t *bits, int64_t offset, int64_t length) {
  int64_t count = 0, i = offset, end = offset + length;
  while (i < end && (i & 7) != 0)
    count += wg_bit_get(bits, i++);
  while (end - i >= 64) {
    uint64_t w;
    memcpy(&w, bits + (i >> 3), 8);
    count += __builtin_popcountll(w);
    i += 64;
  }
  while (i < end)
    count += wg_bit_get(bits, i++);
  return count;
}
