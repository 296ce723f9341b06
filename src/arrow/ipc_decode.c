/* wigeon: the IPC message decoder. A Schema message fixes the field tree; DictionaryBatch messages
 * fill (or extend, for deltas) the dictionaries; each RecordBatch becomes a struct ArrowArray whose
 * buffers point into the message body. Order of work per message: verify the flatbuffer header,
 * size every buffer against the body (decompressing or realigning into owned memory only when
 * needed), build the node, validate its contents; on any error the partial result is released and
 * the decoder is unchanged. */
#include <stdlib.h>
#include <string.h>

#include "arrow/compress.h"
#include "arrow/concat.h"
#include "arrow/ipc_internal.h"

#define MESSAGE_HEADER_SCHEMA 1
#define MESSAGE_HEADER_DICTIONARY 2
#define MESSAGE_HEADER_RECORD_BATCH 3

/* The decoder's view of one schema node, parsed once. */
struct dnode {
  struct wg_arrow_type type; /* the node's own type (for dictionary fields: the index type) */
  const struct ArrowSchema *schema;
  int64_t n_children;
  struct dnode *children;
  int64_t dict; /* index into decoder->dicts, or -1 */
};

struct dict {
  int64_t id;
  struct dnode value;      /* the dictionary's value type tree */
  struct ArrowArray array; /* the current dictionary; release NULL until the first batch */
};

struct wg_ipc_decoder {
  struct wg_ipc_limits limits;
  bool has_schema;
  struct ArrowSchema schema;
  struct dnode root;
  struct dict *dicts;
  int64_t n_dicts;
  /* Delta dictionaries copy the whole dictionary each time: the bytes they may copy over the
   * stream are bounded by a multiple of the bytes received, so many tiny deltas cannot make
   * the decoder do unbounded work. */
  int64_t bytes_in, concat_spent;
};

void wg__ipc_limits_resolve(const struct wg_ipc_limits *in, struct wg_ipc_limits *out) {
  struct wg_ipc_limits d = {64, (int64_t)1 << 30, 4096, INT32_MAX, INT64_MAX};
  if (in != NULL) {
    if (in->max_depth > 0) d.max_depth = in->max_depth > 256 ? 256 : in->max_depth;
    if (in->max_rows > 0) d.max_rows = in->max_rows;
    if (in->max_decompressed_size > 0) d.max_decompressed_size = in->max_decompressed_size;
    if (in->max_decompression_ratio > 0) d.max_decompression_ratio = in->max_decompression_ratio;
    if (in->max_fields > 0) d.max_fields = in->max_fields;
  }
  *out = d;
}

/* ---- messages ---- */

int wg__ipc_message_read(struct wg_bytes metadata, struct wg__ipc_message *m,
                         struct wg_error *err) {
  struct wg_fb_table msg;
  bool present;
  WG_RETURN_NOT_OK(wg_fb_root(metadata, &msg, err));
  WG_RETURN_NOT_OK(wg_fb_i16(&msg, 0, 0, &m->version, err));
  WG_RETURN_NOT_OK(wg_fb_u8(&msg, 1, 0, &m->header_type, err));
  WG_RETURN_NOT_OK(wg_fb_table_field(&msg, 2, &present, &m->header, err));
  WG_RETURN_NOT_OK(wg_fb_i64(&msg, 3, 0, &m->body_length, err));
  if (m->version < WG_IPC_V4 || m->version > WG_IPC_V5)
    return wg_error_set(err, ENOTSUP, "IPC metadata version V%d is not supported (V4 and V5 are)",
                        m->version + 1);
  if (m->header_type < 1 || m->header_type > 5)
    return wg_error_set(err, EPROTO, "message header type %u", m->header_type);
  if (!present) return wg_error_set(err, EPROTO, "message without a header");
  if (m->body_length < 0 || (m->body_length & 7) != 0)
    return wg_error_set(err, EPROTO, "message body length %lld (must be >= 0 and a multiple of 8)",
                        (long long)m->body_length);
  return 0;
}

int wg_ipc_message_peek(struct wg_bytes metadata, enum wg_ipc_message_type *type,
                        int64_t *body_length, struct wg_error *err) {
  struct wg__ipc_message m;
  WG_RETURN_NOT_OK(wg__ipc_message_read(metadata, &m, err));
  *type = (enum wg_ipc_message_type)m.header_type;
  *body_length = m.body_length;
  return 0;
}

/* ---- schema -> dnode tree ---- */

static void dnode_reset(struct dnode *n) {
  for (int64_t i = 0; i < n->n_children; i++)
    dnode_reset(&n->children[i]);
  free(n->children);
  n->children = NULL;
  n->n_children = 0;
}

struct build_ctx {
  struct wg_ipc_decoder *dec;
  const int64_t *ids;
  int64_t n_ids, next_id;
  struct wg_error *err;
};

static int same_type_tree(const struct ArrowSchema *a, const struct ArrowSchema *b) {
  if (strcmp(a->format, b->format) != 0 || a->n_children != b->n_children) return 0;
  if ((a->dictionary == NULL) != (b->dictionary == NULL)) return 0;
  for (int64_t i = 0; i < a->n_children; i++)
    if (!same_type_tree(a->children[i], b->children[i])) return 0;
  return a->dictionary == NULL || same_type_tree(a->dictionary, b->dictionary);
}

/* dicts is sorted by id (decoder_set_schema), so ids are found by binary search: a schema or a
 * stream with many dictionaries costs n log n, not n squared. Returns the index or -1. */
static int64_t find_dict(const struct wg_ipc_decoder *dec, int64_t id) {
  int64_t lo = 0, hi = dec->n_dicts;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (dec->dicts[mid].id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < dec->n_dicts && dec->dicts[lo].id == id ? lo : -1;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x, y;
  memcpy(&x, a, 8);
  memcpy(&y, b, 8);
  return x < y ? -1 : x > y;
}

static int dnode_build(struct build_ctx *c, const struct ArrowSchema *s, struct dnode *n) {
  memset(n, 0, sizeof(*n));
  n->dict = -1;
  n->schema = s;
  WG_RETURN_NOT_OK(wg_arrow_type_parse(s->format, &n->type, c->err));
  const struct ArrowSchema *values = s->dictionary != NULL ? s->dictionary : s;
  if (values->n_children > 0) {
    n->children = calloc((size_t)values->n_children, sizeof(struct dnode));
    if (n->children == NULL) return wg_error_set(c->err, ENOMEM, "out of memory");
    n->n_children = values->n_children;
    for (int64_t i = 0; i < values->n_children; i++)
      WG_RETURN_NOT_OK(dnode_build(c, values->children[i], &n->children[i]));
  }
  if (s->dictionary == NULL) return 0;
  /* A dictionary-encoded field: its children above describe the dictionary's values. */
  if (c->next_id >= c->n_ids) return wg_error_set(c->err, EPROTO, "dictionary ids out of step");
  int64_t id = c->ids[c->next_id++];
  struct wg_ipc_decoder *dec = c->dec;
  int64_t i = find_dict(dec, id);
  struct dict *d = &dec->dicts[i];
  if (d->value.schema != NULL) { /* a second field with the same dictionary */
    if (!same_type_tree(d->value.schema, s->dictionary))
      return wg_error_set(c->err, EPROTO, "dictionary id %lld used for two different types",
                          (long long)id);
    dnode_reset(n);
    n->dict = i;
    return 0;
  }
  struct dnode tmp = *n;
  /* The value tree: same children, the value type, no dictionary. */
  d->value.schema = s->dictionary;
  d->value.dict = -1;
  WG_RETURN_NOT_OK(wg_arrow_type_parse(s->dictionary->format, &d->value.type, c->err));
  d->value.children = tmp.children;
  d->value.n_children = tmp.n_children;
  n->children = NULL;
  n->n_children = 0;
  n->dict = i;
  return 0;
}

static void decoder_clear_schema(struct wg_ipc_decoder *dec) {
  for (int64_t i = 0; i < dec->n_dicts; i++) {
    dnode_reset(&dec->dicts[i].value);
    wg_array_release(&dec->dicts[i].array);
  }
  free(dec->dicts);
  dec->dicts = NULL;
  dec->n_dicts = 0;
  dnode_reset(&dec->root);
  wg_schema_release(&dec->schema);
  dec->has_schema = false;
}

static int decoder_set_schema(struct wg_ipc_decoder *dec, const struct wg_fb_table *header,
                              struct wg_error *err) {
  if (dec->has_schema) return wg_error_set(err, EPROTO, "a second Schema message in one stream");
  struct wg_buf ids;
  wg_buf_init(&ids);
  int rc = wg__ipc_decode_schema(header, &dec->limits, &dec->schema, &ids, err);
  if (rc != 0) {
    wg_buf_reset(&ids);
    return rc;
  }
  int64_t n_ids = ids.size / 8;
  /* One entry per distinct id, sorted; the order of ids as fields use them stays in `ids`. */
  struct wg_buf sorted;
  wg_buf_init(&sorted);
  if (n_ids > 0 && wg_buf_append(&sorted, ids.data, ids.size) != 0)
    rc = wg_error_set(err, ENOMEM, "out of memory");
  if (rc == 0 && n_ids > 0) {
    qsort(sorted.data, (size_t)n_ids, 8, cmp_i64);
    dec->dicts = calloc((size_t)n_ids, sizeof(struct dict));
    if (dec->dicts == NULL) rc = wg_error_set(err, ENOMEM, "out of memory");
    for (int64_t i = 0; rc == 0 && i < n_ids; i++) {
      int64_t id;
      memcpy(&id, sorted.data + 8 * i, 8);
      if (dec->n_dicts > 0 && dec->dicts[dec->n_dicts - 1].id == id) continue;
      dec->dicts[dec->n_dicts].id = id;
      dec->dicts[dec->n_dicts].value.dict = -1;
      dec->n_dicts++;
    }
  }
  wg_buf_reset(&sorted);
  struct build_ctx c = {dec, (const int64_t *)ids.data, n_ids, 0, err};
  if (rc == 0) rc = dnode_build(&c, &dec->schema, &dec->root);
  wg_buf_reset(&ids);
  if (rc != 0) {
    decoder_clear_schema(dec);
    return rc;
  }
  dec->has_schema = true;
  return 0;
}

/* ---- record batch bodies ---- */

struct walk {
  struct wg_ipc_decoder *dec;
  int16_t version;
  struct wg_fb_vector nodes, buffers, variadic;
  bool has_variadic;
  int64_t node_i, buffer_i, variadic_i;
  const uint8_t *body;
  int64_t body_size;
  enum wg_ipc_compression codec;
  int64_t decompressed;
  int64_t copied; /* bytes realigned so far: overlapping buffers cannot copy more than the body */
  struct wg_holder_builder *hb;
  struct wg_shared *holder;
  int depth;
  struct wg_error *err;
};

static const uint64_t zeros[4];

/* Next body buffer: its pointer and size after decompression; ptr aligned to `align`, never NULL.
 */
static int next_buffer(struct walk *w, int64_t align, const void **ptr, int64_t *size) {
  struct wg_error *err = w->err;
  if (w->buffer_i >= w->buffers.length)
    return wg_error_set(err, EPROTO, "record batch has %lld buffers, the schema needs more",
                        (long long)w->buffers.length);
  const uint8_t *b = wg_fb_vector_at(&w->buffers, w->buffer_i, 16);
  int64_t off = wg_load_i64(b), len = wg_load_i64(b + 8);
  if (off < 0 || len < 0 || off > w->body_size || len > w->body_size - off)
    return wg_error_set(err, EPROTO, "buffer %lld (offset %lld, length %lld) outside body of %lld",
                        (long long)w->buffer_i, (long long)off, (long long)len,
                        (long long)w->body_size);
  w->buffer_i++;
  if (len == 0) {
    *ptr = zeros;
    *size = 0;
    return 0;
  }
  const uint8_t *p = w->body + off;
  if (w->codec != WG_IPC_COMPRESSION_NONE) {
    if (len < 8)
      return wg_error_set(err, EPROTO, "compressed buffer %lld of %lld bytes has no length prefix",
                          (long long)(w->buffer_i - 1), (long long)len);
    int64_t raw = wg_load_i64(p);
    p += 8;
    len -= 8;
    if (raw != -1) {
      if (raw < 0)
        return wg_error_set(err, EPROTO, "compressed buffer length %lld", (long long)raw);
      int64_t cap = w->dec->limits.max_decompressed_size;
      const int64_t slack = (int64_t)16 << 20;
      int64_t ratio_cap =
          w->body_size > (INT64_MAX - slack) / w->dec->limits.max_decompression_ratio
              ? INT64_MAX
              : w->body_size * w->dec->limits.max_decompression_ratio + slack;
      if (raw > cap - w->decompressed)
        return wg_error_set(err, EPROTO,
                            "buffer decompresses to %lld bytes, over the limit of %lld "
                            "decompressed bytes a message",
                            (long long)raw, (long long)cap);
      if (raw > ratio_cap - w->decompressed)
        return wg_error_set(err, EPROTO,
                            "buffer decompresses to %lld bytes, over the limit of %lldx the "
                            "message body (%lld bytes) + 16 MiB",
                            (long long)raw, (long long)w->dec->limits.max_decompression_ratio,
                            (long long)w->body_size);
      if (raw == 0) {
        *ptr = zeros;
        *size = 0;
        return 0;
      }
      uint8_t *dst = aligned_alloc(64, (size_t)((raw + 63) & ~(int64_t)63));
      if (dst == NULL)
        return wg_error_set(err, ENOMEM, "out of memory for %lld bytes", (long long)raw);
      int rc = wg_decompress(w->codec, p, len, dst, raw, err);
      if (rc != 0) {
        free(dst);
        return rc;
      }
      if (wg_holder_builder_add_alloc(w->hb, dst) != 0)
        return wg_error_set(err, ENOMEM, "out of memory");
      w->decompressed += raw;
      *ptr = dst;
      *size = raw;
      return 0;
    }
  }
  /* Copy once when misaligned, and copy a bitmap that ends within 8 bytes of the end of the body:
   * consumers (DuckDB) read a byte past a bitmap, which must not be past the received memory. */
  bool near_end =
      align == 1 && w->body_size - (p - w->body) - len < 8 && w->codec == WG_IPC_COMPRESSION_NONE;
  if (((uintptr_t)p & (uintptr_t)(align - 1)) != 0 || near_end) {
    if (len > w->body_size - w->copied)
      return wg_error_set(err, EPROTO,
                          "buffer %lld: realigned copies exceed the body of %lld bytes "
                          "(overlapping buffers?)",
                          (long long)(w->buffer_i - 1), (long long)w->body_size);
    w->copied += len;
    uint8_t *dst = aligned_alloc(64, (size_t)((len + 63) & ~(int64_t)63));
    if (dst == NULL)
      return wg_error_set(err, ENOMEM, "out of memory for %lld bytes", (long long)len);
    memcpy(dst, p, (size_t)len);
    if (wg_holder_builder_add_alloc(w->hb, dst) != 0)
      return wg_error_set(err, ENOMEM, "out of memory");
    p = dst;
  }
  *ptr = p;
  *size = len;
  return 0;
}

/* The alignment a buffer of elements of `bits` needs: a power of two, at most 8. */
static int64_t natural_align(int bits) {
  int64_t bytes = bits / 8;
  if (bytes % 8 == 0 && bytes > 0) return 8;
  if (bytes % 4 == 0 && bytes > 0) return 4;
  if (bytes % 2 == 0 && bytes > 0) return 2;
  return 1;
}

/* The fixed IPC buffers of a type with a validity bitmap, and the alignment each needs. */
static int ipc_buffer_aligns(const struct wg_arrow_type *t, int64_t aligns[3]) {
  aligns[0] = 1;
  switch (t->id) {
  case WG_TYPE_STRUCT:
  case WG_TYPE_FIXED_SIZE_LIST:
    return 1;
  case WG_TYPE_BINARY:
  case WG_TYPE_STRING:
    aligns[1] = 4, aligns[2] = 1;
    return 3;
  case WG_TYPE_LARGE_BINARY:
  case WG_TYPE_LARGE_STRING:
    aligns[1] = 8, aligns[2] = 1;
    return 3;
  case WG_TYPE_LIST:
  case WG_TYPE_MAP:
    aligns[1] = 4;
    return 2;
  case WG_TYPE_LARGE_LIST:
    aligns[1] = 8;
    return 2;
  case WG_TYPE_LIST_VIEW:
    aligns[1] = aligns[2] = 4;
    return 3;
  case WG_TYPE_LARGE_LIST_VIEW:
    aligns[1] = aligns[2] = 8;
    return 3;
  case WG_TYPE_BINARY_VIEW:
  case WG_TYPE_STRING_VIEW:
    aligns[1] = 8;
    return 2;
  default:
    aligns[1] = natural_align(t->bit_width);
    return 2;
  }
}

static int decode_node(struct walk *w, const struct dnode *n, struct ArrowArray *out);

static int decode_children(struct walk *w, const struct dnode *n, struct ArrowArray *out) {
  for (int64_t i = 0; i < n->n_children; i++)
    WG_RETURN_NOT_OK(decode_node(w, &n->children[i], out->children[i]));
  return 0;
}

static int decode_node(struct walk *w, const struct dnode *n, struct ArrowArray *out) {
  struct wg_error *err = w->err;
  const struct wg_arrow_type *t = &n->type;
  if (w->node_i >= w->nodes.length)
    return wg_error_set(err, EPROTO, "record batch has %lld field nodes, the schema needs more",
                        (long long)w->nodes.length);
  const uint8_t *fn = wg_fb_vector_at(&w->nodes, w->node_i++, 16);
  int64_t length = wg_load_i64(fn), null_count = wg_load_i64(fn + 8);
  if (length < 0 || null_count < 0 || null_count > length)
    return wg_error_set(err, EPROTO, "field node with length %lld and null count %lld",
                        (long long)length, (long long)null_count);
  if (length > w->dec->limits.max_rows)
    return wg_error_set(err, EPROTO, "field node of %lld values, over the limit of %lld",
                        (long long)length, (long long)w->dec->limits.max_rows);

  const void *bufs[3] = {NULL, NULL, NULL};
  int64_t sizes[3] = {0, 0, 0};
  int64_t n_buffers = wg_arrow_type_n_buffers(t), n_variadic = 0;
  int64_t n_children = n->n_children; /* 0 for dictionary indices */
  int rc;

  switch (t->id) {
  case WG_TYPE_NA:
  case WG_TYPE_RUN_END_ENCODED:
    null_count = t->id == WG_TYPE_NA ? length : 0;
    break;
  case WG_TYPE_SPARSE_UNION:
  case WG_TYPE_DENSE_UNION:
    if (w->version < WG_IPC_V5) WG_RETURN_NOT_OK(next_buffer(w, 1, &bufs[0], &sizes[0]));
    WG_RETURN_NOT_OK(next_buffer(w, 1, &bufs[0], &sizes[0]));
    if (t->id == WG_TYPE_DENSE_UNION) WG_RETURN_NOT_OK(next_buffer(w, 4, &bufs[1], &sizes[1]));
    null_count = 0;
    break;
  case WG_TYPE_BINARY_VIEW:
  case WG_TYPE_STRING_VIEW:
    if (!w->has_variadic || w->variadic_i >= w->variadic.length)
      return wg_error_set(err, EPROTO, "view field without a variadicBufferCounts entry");
    n_variadic = wg_load_i64(wg_fb_vector_at(&w->variadic, w->variadic_i++, 8));
    if (n_variadic < 0 || n_variadic > w->buffers.length - w->buffer_i)
      return wg_error_set(err, EPROTO, "view field with %lld variadic buffers, %lld left",
                          (long long)n_variadic, (long long)(w->buffers.length - w->buffer_i));
    n_buffers = 3 + n_variadic;
    /* validity and views as below, then the variadic buffers after the node is made */
    __attribute__((fallthrough));
  default: {
    int64_t aligns[3];
    int k = ipc_buffer_aligns(t, aligns);
    for (int i = 0; i < k; i++)
      WG_RETURN_NOT_OK(next_buffer(w, aligns[i], &bufs[i], &sizes[i]));
    break;
  }
  }
  if (null_count == 0 && t->id != WG_TYPE_SPARSE_UNION && t->id != WG_TYPE_DENSE_UNION)
    bufs[0] = NULL; /* the bitmap may be absent when there are no nulls */
  else if (wg_arrow_type_has_validity(t) && sizes[0] == 0 && null_count > 0)
    return wg_error_set(err, EPROTO, "%lld nulls but an empty validity buffer",
                        (long long)null_count);

  int64_t *all_sizes = sizes;
  int64_t *var_sizes_heap = NULL;
  if (n_variadic > 0 || t->id == WG_TYPE_BINARY_VIEW || t->id == WG_TYPE_STRING_VIEW) {
    /* sizes of every buffer for validation, then the trailing int64 sizes buffer (C interface). */
    var_sizes_heap = malloc((size_t)(3 + 2 * n_variadic) * sizeof(int64_t));
    if (var_sizes_heap == NULL) return wg_error_set(err, ENOMEM, "out of memory");
    all_sizes = var_sizes_heap;
    all_sizes[0] = sizes[0];
    all_sizes[1] = sizes[1];
  }
  rc = wg_array_node_init(out, n_buffers, n_children, w->holder);
  if (rc != 0) {
    free(var_sizes_heap);
    return wg_error_set(err, rc == ENOMEM ? ENOMEM : EPROTO,
                        rc == ENOMEM ? "out of memory for an array node"
                                     : "array node with too many buffers or children");
  }
  out->length = length;
  out->null_count = null_count;
  for (int64_t i = 0; i < n_buffers && i < 3; i++)
    out->buffers[i] = bufs[i];
  if (var_sizes_heap != NULL) {
    int64_t *trailing = NULL;
    if (n_variadic > 0) {
      trailing = malloc((size_t)n_variadic * sizeof(int64_t));
      if (trailing == NULL || wg_holder_builder_add_alloc(w->hb, trailing) != 0) {
        free(var_sizes_heap);
        return wg_error_set(err, ENOMEM, "out of memory");
      }
    }
    for (int64_t k = 0; k < n_variadic; k++) {
      rc = next_buffer(w, 1, &out->buffers[2 + k], &all_sizes[2 + k]);
      if (rc != 0) {
        free(var_sizes_heap);
        return rc;
      }
      trailing[k] = all_sizes[2 + k];
    }
    out->buffers[2 + n_variadic] = trailing != NULL ? (const void *)trailing : (const void *)zeros;
    all_sizes[2 + n_variadic] = 8 * n_variadic;
  }
  if (++w->depth > w->dec->limits.max_depth)
    rc = wg_error_set(err, EPROTO, "arrays nested deeper than %d", w->dec->limits.max_depth);
  if (rc == 0) rc = decode_children(w, n, out);
  w->depth--;
  if (rc == 0 && n->dict >= 0) {
    const struct dict *d = &w->dec->dicts[n->dict];
    if (d->array.release == NULL)
      rc = wg_error_set(err, EPROTO, "dictionary id %lld used before its DictionaryBatch",
                        (long long)d->id);
    else if (wg_array_alloc_dictionary(out) != 0 || wg_array_share(&d->array, out->dictionary) != 0)
      rc = wg_error_set(err, ENOMEM, "out of memory");
  }
  if (rc == 0) rc = wg__validate_node(t, n->schema, out, all_sizes, err);
  free(var_sizes_heap);
  if (rc != 0) wg_error_prefix(err, rc, "field '%.64s'", n->schema->name ? n->schema->name : "");
  return rc;
}

/* Decodes a RecordBatch table over `body` into out (a node of `root`'s shape). */
static int decode_record_batch(struct wg_ipc_decoder *dec, int16_t version,
                               const struct wg_fb_table *rb, struct wg_shared *body,
                               int64_t body_length, const struct dnode *root,
                               struct ArrowArray *out, struct wg_error *err) {
  struct walk w;
  memset(&w, 0, sizeof(w));
  w.dec = dec;
  w.version = version;
  w.err = err;
  w.codec = WG_IPC_COMPRESSION_NONE;
  bool present;
  int64_t length;
  WG_RETURN_NOT_OK(wg_fb_i64(rb, 0, 0, &length, err));
  WG_RETURN_NOT_OK(wg_fb_vector_field(rb, 1, 16, &present, &w.nodes, err));
  if (!present) w.nodes.length = 0;
  WG_RETURN_NOT_OK(wg_fb_vector_field(rb, 2, 16, &present, &w.buffers, err));
  if (!present) w.buffers.length = 0;
  WG_RETURN_NOT_OK(wg_fb_vector_field(rb, 4, 8, &w.has_variadic, &w.variadic, err));
  struct wg_fb_table comp;
  WG_RETURN_NOT_OK(wg_fb_table_field(rb, 3, &present, &comp, err));
  if (present) {
    uint8_t codec, method;
    WG_RETURN_NOT_OK(wg_fb_u8(&comp, 0, 0, &codec, err));
    WG_RETURN_NOT_OK(wg_fb_u8(&comp, 1, 0, &method, err));
    if (codec > 1) return wg_error_set(err, ENOTSUP, "compression codec %u", codec);
    if (method != 0) return wg_error_set(err, ENOTSUP, "body compression method %u", method);
    w.codec = (enum wg_ipc_compression)(codec + 1); /* wire value + 1 */
  }
  if (length < 0 || length > dec->limits.max_rows)
    return wg_error_set(err, EPROTO, "record batch length %lld (limit %lld)", (long long)length,
                        (long long)dec->limits.max_rows);
  if (body_length > 0 && (body == NULL || body->size < body_length))
    return wg_error_set(err, EPROTO, "message body of %lld bytes, header says %lld",
                        (long long)(body ? body->size : 0), (long long)body_length);
  w.body = body != NULL ? body->data : NULL;
  w.body_size = body_length;
  w.holder = wg_holder_create(&w.hb);
  if (w.holder == NULL || wg_holder_builder_add_ref(w.hb, body) != 0) {
    wg_shared_unref(w.holder);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  int rc = wg_array_node_init(out, 1, root->n_children, w.holder);
  if (rc != 0) {
    wg_shared_unref(w.holder);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  out->length = length;
  for (int64_t i = 0; i < root->n_children && rc == 0; i++) {
    rc = decode_node(&w, &root->children[i], out->children[i]);
    if (rc == 0 && out->children[i]->length < length)
      rc = wg_error_set(err, EPROTO, "column %lld has %lld rows, the batch %lld", (long long)i,
                        (long long)out->children[i]->length, (long long)length);
  }
  if (rc == 0 && w.node_i != w.nodes.length)
    rc = wg_error_set(err, EPROTO, "record batch has %lld field nodes, the schema %lld",
                      (long long)w.nodes.length, (long long)w.node_i);
  wg_shared_unref(w.holder); /* the nodes hold their own references */
  if (rc != 0) wg_array_release(out);
  return rc;
}

/* ---- dictionaries ---- */

static int concat_dictionary(struct wg_ipc_decoder *dec, const struct dnode *value,
                             const struct ArrowArray *a, struct ArrowArray *b,
                             struct ArrowArray *out, struct wg_error *err);

static int validate_tree(const struct ArrowSchema *s, const struct ArrowArray *a, int depth,
                         struct wg_error *err);

static int decode_dictionary_batch(struct wg_ipc_decoder *dec, int16_t version,
                                   const struct wg_fb_table *header, struct wg_shared *body,
                                   int64_t body_length, struct wg_error *err) {
  int64_t id;
  bool is_delta, present;
  struct wg_fb_table rb;
  WG_RETURN_NOT_OK(wg_fb_i64(header, 0, 0, &id, err));
  WG_RETURN_NOT_OK(wg_fb_bool(header, 2, false, &is_delta, err));
  WG_RETURN_NOT_OK(wg_fb_table_field(header, 1, &present, &rb, err));
  if (!present)
    return wg_error_set(err, EPROTO, "DictionaryBatch %lld without data", (long long)id);
  int64_t di = find_dict(dec, id);
  struct dict *d = di >= 0 ? &dec->dicts[di] : NULL;
  if (d == NULL)
    return wg_error_set(err, EPROTO, "DictionaryBatch for id %lld, which no field uses",
                        (long long)id);
  /* The dictionary batch is a one-column record batch of the value type. */
  struct dnode root;
  memset(&root, 0, sizeof(root));
  root.dict = -1;
  root.n_children = 1;
  root.children = &d->value;
  struct ArrowArray batch;
  WG_RETURN_NOT_OK(decode_record_batch(dec, version, &rb, body, body_length, &root, &batch, err));
  struct ArrowArray values;
  wg_array_move(batch.children[0], &values);
  wg_array_release(&batch);
  if (is_delta && d->array.release != NULL && values.length == 0) {
    wg_array_release(&values); /* an empty delta changes nothing */
    return 0;
  }
  if (is_delta && d->array.release != NULL) {
    if (d->array.length > INT64_MAX / 16 - values.length) {
      wg_array_release(&values);
      return wg_error_set(err, EPROTO, "delta dictionary %lld: %lld + %lld values is too long",
                          (long long)id, (long long)d->array.length, (long long)values.length);
    }
    struct ArrowArray merged;
    int rc = concat_dictionary(dec, &d->value, &d->array, &values, &merged, err);
    wg_array_release(&values);
    if (rc != 0) return wg_error_prefix(err, rc, "delta dictionary %lld", (long long)id);
    wg_array_move(&merged, &values);
    rc = validate_tree(d->value.schema, &values, 0, err);
    if (rc != 0) {
      wg_array_release(&values);
      return wg_error_prefix(err, rc, "delta dictionary %lld", (long long)id);
    }
  }
  wg_array_release(&d->array);
  wg_array_move(&values, &d->array);
  return 0;
}

/* Delta dictionaries are concatenated by concat.c (wg__arrow_concat_limited) for the value types
 * the decoder has always merged: every flat type (fixed width, boolean, binary, string, their
 * large and view forms) and struct/fixed-size-list nesting of them; others are unsupported. */
static int delta_supported(const struct dnode *n, struct wg_error *err) {
  if (n->dict >= 0)
    return wg_error_set(err, ENOTSUP, "delta of a dictionary whose values are dictionary-encoded");
  switch (n->type.id) {
  case WG_TYPE_STRUCT:
  case WG_TYPE_FIXED_SIZE_LIST:
    for (int64_t c = 0; c < n->n_children; c++)
      WG_RETURN_NOT_OK(delta_supported(&n->children[c], err));
    return 0;
  case WG_TYPE_BOOL:
  case WG_TYPE_BINARY:
  case WG_TYPE_STRING:
  case WG_TYPE_LARGE_BINARY:
  case WG_TYPE_LARGE_STRING:
  case WG_TYPE_BINARY_VIEW:
  case WG_TYPE_STRING_VIEW:
    return 0;
  default:
    if (n->type.bit_width > 0 && n->type.bit_width % 8 == 0 && n->n_children == 0) return 0;
    return wg_error_set(err, ENOTSUP, "delta dictionaries of type %.32s", n->schema->format);
  }
}

/* a (the current dictionary, shared) and b (the delta, consumed) into *out. Allocations of one
 * decoder's concatenations share a budget (64x its input + 64 MiB, at most the decompression
 * limit), since a dictionary of a childless struct may be long without costing input bytes. */
static int concat_dictionary(struct wg_ipc_decoder *dec, const struct dnode *value,
                             const struct ArrowArray *a, struct ArrowArray *b,
                             struct ArrowArray *out, struct wg_error *err) {
  WG_RETURN_NOT_OK(delta_supported(value, err));
  int64_t allowance = 64 * dec->bytes_in + ((int64_t)64 << 20) - dec->concat_spent;
  if (allowance > dec->limits.max_decompressed_size) allowance = dec->limits.max_decompressed_size;
  if (allowance < 0) allowance = 0;
  struct ArrowArray in[2];
  int rc = wg_array_share(a, &in[0]);
  if (rc != 0) return wg_error_set(err, rc, "cannot share the dictionary to extend");
  wg_array_move(b, &in[1]);
  int64_t spent = 0;
  rc = wg__arrow_concat_limited(value->schema, in, 2, allowance, &spent, out, err);
  dec->concat_spent += spent;
  return rc;
}

/* ---- public API ---- */

int wg_ipc_decoder_create(struct wg_ipc_decoder **out, const struct wg_ipc_limits *limits,
                          struct wg_error *err) {
  struct wg_ipc_decoder *dec = calloc(1, sizeof(*dec));
  if (dec == NULL) return wg_error_set(err, ENOMEM, "out of memory for a decoder");
  wg__ipc_limits_resolve(limits, &dec->limits);
  dec->root.dict = -1;
  *out = dec;
  return 0;
}

void wg_ipc_decoder_destroy(struct wg_ipc_decoder *dec) {
  if (dec == NULL) return;
  decoder_clear_schema(dec);
  free(dec);
}

bool wg_ipc_decoder_has_schema(const struct wg_ipc_decoder *dec) {
  return dec->has_schema;
}

int wg_ipc_decoder_schema(const struct wg_ipc_decoder *dec, struct ArrowSchema *out,
                          struct wg_error *err) {
  if (!dec->has_schema) return wg_error_set(err, EINVAL, "no Schema message decoded yet");
  return wg_schema_deep_copy(&dec->schema, out, err);
}

int wg_ipc_decoder_decode(struct wg_ipc_decoder *dec, struct wg_bytes metadata,
                          struct wg_shared *body, enum wg_ipc_message_type *type,
                          struct ArrowArray *out, struct wg_error *err) {
  struct wg__ipc_message m;
  WG_RETURN_NOT_OK(wg__ipc_message_read(metadata, &m, err));
  *type = (enum wg_ipc_message_type)m.header_type;
  dec->bytes_in += metadata.size + m.body_length;
  switch (m.header_type) {
  case MESSAGE_HEADER_SCHEMA:
    return decoder_set_schema(dec, &m.header, err);
  case MESSAGE_HEADER_DICTIONARY:
    if (!dec->has_schema) return wg_error_set(err, EPROTO, "DictionaryBatch before the Schema");
    return decode_dictionary_batch(dec, m.version, &m.header, body, m.body_length, err);
  case MESSAGE_HEADER_RECORD_BATCH:
    if (!dec->has_schema) return wg_error_set(err, EPROTO, "RecordBatch before the Schema");
    return decode_record_batch(dec, m.version, &m.header, body, m.body_length, &dec->root, out,
                               err);
  default:
    return wg_error_set(err, ENOTSUP, "message type %u (tensors) is not supported", m.header_type);
  }
}

int wg_ipc_decode_schema_message(struct wg_bytes metadata, struct ArrowSchema *out,
                                 struct wg_error *err) {
  struct wg__ipc_message m;
  WG_RETURN_NOT_OK(wg__ipc_message_read(metadata, &m, err));
  if (m.header_type != MESSAGE_HEADER_SCHEMA)
    return wg_error_set(err, EPROTO, "expected a Schema message, got type %u", m.header_type);
  struct wg_ipc_limits limits;
  wg__ipc_limits_resolve(NULL, &limits);
  return wg__ipc_decode_schema(&m.header, &limits, out, NULL, err);
}

/* Validation of arrays from any producer, against their schema. */
static int validate_tree(const struct ArrowSchema *s, const struct ArrowArray *a, int depth,
                         struct wg_error *err) {
  struct wg_arrow_type t;
  if (depth > 64) return wg_error_set(err, EPROTO, "arrays nested deeper than 64");
  WG_RETURN_NOT_OK(wg_arrow_type_parse(s->format, &t, err));
  /* A dictionary-encoded node is an index array without children; its values are the dictionary. */
  if (a->n_children != s->n_children)
    return wg_error_set(err, EINVAL, "array has %lld children, schema %lld",
                        (long long)a->n_children, (long long)s->n_children);
  if ((s->dictionary != NULL) != (a->dictionary != NULL))
    return wg_error_set(err, EINVAL, "dictionary presence differs between array and schema");
  int64_t want = wg_arrow_type_n_buffers(&t);
  if (t.id == WG_TYPE_BINARY_VIEW || t.id == WG_TYPE_STRING_VIEW ? a->n_buffers < 3
                                                                 : a->n_buffers != want)
    return wg_error_set(err, EINVAL, "array of type %.32s has %lld buffers, needs %lld", s->format,
                        (long long)a->n_buffers, (long long)want);
  for (int64_t i = 0; i < a->n_children; i++)
    WG_RETURN_NOT_OK(validate_tree(s->children[i], a->children[i], depth + 1, err));
  if (a->dictionary != NULL)
    WG_RETURN_NOT_OK(validate_tree(s->dictionary, a->dictionary, depth + 1, err));
  return wg__validate_node(&t, s, a, NULL, err);
}

int wg_ipc_validate_array(const struct ArrowSchema *schema, const struct ArrowArray *array,
                          struct wg_error *err) {
  return validate_tree(schema, array, 0, err);
}
