/* wigeon: Arrow IPC writer (the "Encoder" half of ipc.h). Builds Schema, DictionaryBatch and
 * RecordBatch headers with arrow/fbb.h and describes each body as pieces that point at the
 * arrays' own buffers (zero copy), at per-message scratch (bitmaps shifted by a slice offset,
 * rebased offsets, compressed buffers), or at a static block of zeros used as padding.
 * Every body buffer starts at an 8-byte aligned body offset. Dictionaries are sent before the
 * batch that needs them, again only when their content changed (compared byte for byte with a
 * copy of what was last sent). Depends on arrow/format.h, arrow/compress.h, common/. */
#include <stdlib.h>
#include <string.h>

#include "arrow/array.h"
#include "arrow/compress.h"
#include "arrow/fbb.h"
#include "arrow/fbs.h"
#include "arrow/format.h"
#include "arrow/ipc.h"

/* Deeper schemas are refused rather than risking the stack. */
#define ENC_MAX_DEPTH 200

/* Padding pieces point here; it outlives every message. */
static const uint8_t zero_block[64];

/* One schema node, parsed once. For a dictionary-encoded field `type` is the index type and
 * `dict` describes the value type (with its own children and nested dictionaries). */
struct enc_field {
  const struct ArrowSchema *schema; /* borrowed from the encoder's copy */
  struct wg_arrow_type type;
  int64_t n_children;
  struct enc_field *children;
  struct enc_field *dict;
  int64_t dict_id; /* -1 unless dictionary-encoded */
};

struct dict_state {
  const struct enc_field *value; /* the dictionary's value field */
  struct wg_buf last;            /* fingerprint of the dictionary last sent */
  bool sent;
};

struct i64vec {
  int64_t *v;
  int64_t n, cap;
};

struct wg_ipc_encoder {
  struct ArrowSchema schema; /* owned deep copy */
  struct enc_field root;
  struct wg_ipc_encoder_options options;
  int64_t n_dicts;
  struct dict_state *dicts;
  struct wg_fbb fbb;
  struct i64vec nodes, buffers, variadic; /* of the message being built */
  struct wg_buf fingerprint;
  struct wg_holder_builder fp_scratch;
};

/* Where one message's body goes: pieces of m, or (fingerprint mode) raw bytes in fp. */
struct body {
  struct wg_ipc_encoder *enc;
  struct wg_ipc_encoded *m;
  struct wg_buf *fp;
  struct wg_holder_builder *scratch;
  int codec, level;
  int64_t length;
  struct wg_error *err;
};

static int vec_push(struct i64vec *v, int64_t a) {
  if (v->n == v->cap) {
    int64_t cap = v->cap ? v->cap * 2 : 32;
    int64_t *n = realloc(v->v, (size_t)cap * sizeof(int64_t));
    if (n == NULL) return ENOMEM;
    v->v = n;
    v->cap = cap;
  }
  v->v[v->n++] = a;
  return 0;
}

static int vec_push2(struct i64vec *v, int64_t a, int64_t b) {
  WG_RETURN_NOT_OK(vec_push(v, a));
  return vec_push(v, b);
}

static void vec_free(struct i64vec *v) {
  free(v->v);
  memset(v, 0, sizeof(*v));
}

static const char *field_name(const struct enc_field *f) {
  return f->schema->name != NULL ? f->schema->name : "";
}

static int oom(struct wg_error *err, const char *what) {
  return wg_error_set(err, ENOMEM, "out of memory %s", what);
}

/* ---------------------------------------------------------------------------------------------
 * Encoded messages */

/* Initializes an empty message (no allocation). The caller owns m and must _reset it. */
void wg_ipc_encoded_init(struct wg_ipc_encoded *m) {
  memset(m, 0, sizeof(*m));
  m->type = WG_IPC_MESSAGE_NONE;
  wg_buf_init(&m->metadata);
  wg_holder_builder_init(&m->scratch);
}

/* Frees the metadata, the piece table and the scratch (pieces pointing into scratch dangle
 * afterwards; the source arrays are not touched). m is empty and reusable. Safe twice. */
void wg_ipc_encoded_reset(struct wg_ipc_encoded *m) {
  wg_buf_reset(&m->metadata);
  free(m->pieces);
  wg_holder_builder_reset(&m->scratch);
  wg_ipc_encoded_init(m);
}

static int add_piece(struct wg_ipc_encoded *m, const uint8_t *data, int64_t size) {
  if (m->n_pieces == m->cap_pieces) {
    int64_t cap = m->cap_pieces ? m->cap_pieces * 2 : 16;
    struct wg_ipc_piece *n = realloc(m->pieces, (size_t)cap * sizeof(*n));
    if (n == NULL) return ENOMEM;
    m->pieces = n;
    m->cap_pieces = cap;
  }
  m->pieces[m->n_pieces].data = data;
  m->pieces[m->n_pieces].size = size;
  m->n_pieces++;
  return 0;
}

/* Copies continuation marker, metadata length, metadata (+ zero padding to 8) and the body
 * pieces into b. m is only read. Returns 0, ENOMEM (b keeps what it had plus maybe part of the
 * message), or EINVAL when the metadata exceeds 2 GiB. */
int wg_ipc_encoded_append_framed(const struct wg_ipc_encoded *m, struct wg_buf *b) {
  int64_t meta = wg_pad8(m->metadata.size);
  if (meta > INT32_MAX - 8) return EINVAL;
  WG_RETURN_NOT_OK(wg_buf_reserve(b, 8 + meta + m->body_length));
  uint8_t prefix[8];
  wg_store_u32(prefix, 0xFFFFFFFFu);
  wg_store_u32(prefix + 4, (uint32_t)meta);
  wg_buf_append(b, prefix, 8);
  wg_buf_append(b, m->metadata.data, m->metadata.size);
  wg_buf_append_zeros(b, meta - m->metadata.size);
  for (int64_t i = 0; i < m->n_pieces; i++)
    WG_RETURN_NOT_OK(wg_buf_append(b, m->pieces[i].data, m->pieces[i].size));
  return 0;
}

/* Appends 0xFFFFFFFF 0x00000000. Returns 0 or ENOMEM. */
int wg_ipc_append_eos(struct wg_buf *b) {
  uint8_t eos[8];
  wg_store_u32(eos, 0xFFFFFFFFu);
  wg_store_u32(eos + 4, 0);
  return wg_buf_append(b, eos, 8);
}

/* ---------------------------------------------------------------------------------------------
 * Schema analysis */

static void field_free(struct enc_field *f) {
  if (f == NULL) return;
  for (int64_t i = 0; i < f->n_children; i++)
    field_free(&f->children[i]);
  free(f->children);
  if (f->dict != NULL) {
    field_free(f->dict);
    free(f->dict);
  }
  memset(f, 0, sizeof(*f));
}

static bool is_integer(enum wg_type_id id) {
  return id >= WG_TYPE_INT8 && id <= WG_TYPE_UINT64;
}

/* Parses s into f, assigning dictionary ids in pre-order (a field's id before those nested in
 * its dictionary). On error f may be partly filled; field_free cleans it. */
static int field_build(struct wg_ipc_encoder *enc, const struct ArrowSchema *s, struct enc_field *f,
                       int depth, struct wg_error *err) {
  f->schema = s;
  f->dict_id = -1;
  const char *name = s->name != NULL ? s->name : "";
  if (depth > ENC_MAX_DEPTH)
    return wg_error_set(err, EINVAL, "field '%s' nested deeper than %d levels", name,
                        ENC_MAX_DEPTH);
  if (s->release == NULL) return wg_error_set(err, EINVAL, "field '%s': schema is released", name);
  int rc = wg_arrow_type_parse(s->format, &f->type, err);
  if (rc != 0) return wg_error_prefix(err, rc, "field '%s'", name);
  if (s->n_children < 0 || (s->n_children > 0 && s->children == NULL))
    return wg_error_set(err, EINVAL, "field '%s': %lld children without a children array", name,
                        (long long)s->n_children);
  if (s->dictionary != NULL) {
    if (!is_integer(f->type.id))
      return wg_error_set(err, EINVAL,
                          "field '%s': dictionary index format '%s' is not an integer type", name,
                          s->format);
    if (s->n_children != 0)
      return wg_error_set(err, EINVAL, "field '%s': dictionary index with %lld children", name,
                          (long long)s->n_children);
    f->dict_id = enc->n_dicts++;
    f->dict = calloc(1, sizeof(*f->dict));
    if (f->dict == NULL) return oom(err, "for a dictionary field");
    return field_build(enc, s->dictionary, f->dict, depth + 1, err);
  }
  int want = wg_arrow_type_n_children(&f->type);
  if (want >= 0 && s->n_children != want)
    return wg_error_set(err, EINVAL, "field '%s' (format '%s'): %lld children, expected %d", name,
                        s->format, (long long)s->n_children, want);
  if ((f->type.id == WG_TYPE_SPARSE_UNION || f->type.id == WG_TYPE_DENSE_UNION) &&
      s->n_children != f->type.n_type_ids)
    return wg_error_set(err, EINVAL, "union field '%s': %lld children but %d type ids", name,
                        (long long)s->n_children, f->type.n_type_ids);
  if (s->n_children > 0) {
    f->children = calloc((size_t)s->n_children, sizeof(*f->children));
    if (f->children == NULL) return oom(err, "for schema children");
  }
  f->n_children = s->n_children;
  for (int64_t i = 0; i < s->n_children; i++) {
    if (s->children[i] == NULL)
      return wg_error_set(err, EINVAL, "field '%s': child %lld is NULL", name, (long long)i);
    WG_RETURN_NOT_OK(field_build(enc, s->children[i], &f->children[i], depth + 1, err));
  }
  return 0;
}

static void dicts_collect(struct wg_ipc_encoder *enc, const struct enc_field *f) {
  if (f->dict != NULL) {
    enc->dicts[f->dict_id].value = f->dict;
    dicts_collect(enc, f->dict);
  }
  for (int64_t i = 0; i < f->n_children; i++)
    dicts_collect(enc, &f->children[i]);
}

/* ---------------------------------------------------------------------------------------------
 * Encoder lifetime */

/* Deep-copies schema (the caller keeps its own), parses every format, assigns dictionary ids
 * in pre-order. On success *out is owned by the caller (wg_ipc_encoder_destroy); on error *out is
 * NULL and nothing is kept. EINVAL for a schema that is not "+s", a bad format, a non-integer
 * dictionary index, a union whose type ids and children disagree; ENOMEM. Not thread-safe: one
 * encoder per stream, used by one thread at a time. */
int wg_ipc_encoder_create(struct wg_ipc_encoder **out, const struct ArrowSchema *schema,
                          const struct wg_ipc_encoder_options *options, struct wg_error *err) {
  *out = NULL;
  if (schema == NULL || schema->release == NULL)
    return wg_error_set(err, EINVAL, "encoder schema is NULL or released");
  if (schema->format == NULL || strcmp(schema->format, "+s") != 0)
    return wg_error_set(err, EINVAL, "encoder schema must be a struct '+s', got '%s'",
                        schema->format ? schema->format : "(null)");
  if (schema->dictionary != NULL)
    return wg_error_set(err, EINVAL, "encoder schema: the top-level struct is dictionary-encoded");
  struct wg_ipc_encoder *enc = calloc(1, sizeof(*enc));
  if (enc == NULL) return oom(err, "for an IPC encoder");
  enc->options.compression = WG_IPC_COMPRESSION_NONE;
  if (options != NULL) enc->options = *options;
  wg_fbb_init(&enc->fbb);
  wg_buf_init(&enc->fingerprint);
  wg_holder_builder_init(&enc->fp_scratch);
  int rc;
  if (enc->options.compression != WG_IPC_COMPRESSION_NONE &&
      enc->options.compression != WG_IPC_COMPRESSION_LZ4_FRAME &&
      enc->options.compression != WG_IPC_COMPRESSION_ZSTD) {
    rc = wg_error_set(err, EINVAL, "unknown compression %d", (int)enc->options.compression);
    goto fail;
  }
  rc = wg_schema_deep_copy(schema, &enc->schema, err);
  if (rc != 0) goto fail;
  rc = field_build(enc, &enc->schema, &enc->root, 0, err);
  if (rc != 0) goto fail;
  if (enc->n_dicts > 0) {
    enc->dicts = calloc((size_t)enc->n_dicts, sizeof(*enc->dicts));
    if (enc->dicts == NULL) {
      rc = oom(err, "for dictionary state");
      goto fail;
    }
    for (int64_t i = 0; i < enc->n_dicts; i++)
      wg_buf_init(&enc->dicts[i].last);
    dicts_collect(enc, &enc->root);
  }
  *out = enc;
  return 0;
fail:
  wg_ipc_encoder_destroy(enc);
  return rc;
}

/* Frees the encoder, its schema copy and dictionary fingerprints; messages it produced stay
 * valid (they do not point into the encoder). NULL is fine. */
void wg_ipc_encoder_destroy(struct wg_ipc_encoder *enc) {
  if (enc == NULL) return;
  field_free(&enc->root);
  wg_schema_release(&enc->schema);
  if (enc->dicts != NULL)
    for (int64_t i = 0; i < enc->n_dicts; i++)
      wg_buf_reset(&enc->dicts[i].last);
  free(enc->dicts);
  wg_fbb_reset(&enc->fbb);
  vec_free(&enc->nodes);
  vec_free(&enc->buffers);
  vec_free(&enc->variadic);
  wg_buf_reset(&enc->fingerprint);
  wg_holder_builder_reset(&enc->fp_scratch);
  free(enc);
}

/* One DictionaryBatch per dictionary id, plus the RecordBatch. */
int64_t wg_ipc_encoder_max_messages(const struct wg_ipc_encoder *enc) {
  return enc->n_dicts + 1;
}

/* ---------------------------------------------------------------------------------------------
 * Schema message */

static int build_metadata(struct wg_fbb *b, const char *metadata, uint32_t *out) {
  *out = 0;
  if (metadata == NULL) return 0;
  struct wg_metadata_reader r;
  wg_metadata_reader_init(&r, metadata);
  int64_t n = r.remaining;
  if (n <= 0) return 0;
  uint32_t *refs = malloc((size_t)n * sizeof(uint32_t));
  if (refs == NULL) return ENOMEM;
  struct wg_bytes k, v;
  int64_t i = 0;
  int rc = 0;
  while (i < n && wg_metadata_reader_next(&r, &k, &v)) {
    uint32_t ks, vs;
    if ((rc = wg_fbb_create_string(b, (const char *)k.data, k.size, &ks)) != 0 ||
        (rc = wg_fbb_create_string(b, (const char *)v.data, v.size, &vs)) != 0)
      break;
    wg_fbb_table_begin(b);
    wg_fbb_add_ref(b, 0, ks);
    wg_fbb_add_ref(b, 1, vs);
    if ((rc = wg_fbb_table_end(b, &refs[i])) != 0) break;
    i++;
  }
  if (rc == 0) rc = wg_fbb_create_vector_refs(b, refs, i, out);
  free(refs);
  return rc;
}

static int time_unit_fb(enum wg_time_unit u) {
  return (int)u; /* SECOND, MILLISECOND, MICROSECOND, NANOSECOND in both */
}

/* The Type union member for t; s supplies flags (map keysSorted). */
static int build_type(struct wg_fbb *b, const struct wg_arrow_type *t, const struct ArrowSchema *s,
                      uint8_t *type_type, uint32_t *out) {
  uint32_t str = 0, vec = 0;
  if (t->id == WG_TYPE_TIMESTAMP && t->timezone[0] != '\0')
    WG_RETURN_NOT_OK(wg_fbb_create_string(b, t->timezone, (int64_t)strlen(t->timezone), &str));
  if (t->id == WG_TYPE_SPARSE_UNION || t->id == WG_TYPE_DENSE_UNION) {
    int32_t ids[128];
    for (int i = 0; i < t->n_type_ids; i++)
      ids[i] = t->type_ids[i];
    WG_RETURN_NOT_OK(wg_fbb_create_vector_i32(b, ids, t->n_type_ids, &vec));
  }
  wg_fbb_table_begin(b);
  switch (t->id) {
  case WG_TYPE_NA:
    *type_type = WG_FB_TYPE_NULL;
    break;
  case WG_TYPE_BOOL:
    *type_type = WG_FB_TYPE_BOOL;
    break;
  case WG_TYPE_INT8:
  case WG_TYPE_UINT8:
  case WG_TYPE_INT16:
  case WG_TYPE_UINT16:
  case WG_TYPE_INT32:
  case WG_TYPE_UINT32:
  case WG_TYPE_INT64:
  case WG_TYPE_UINT64:
    *type_type = WG_FB_TYPE_INT;
    wg_fbb_add_i32(b, 0, t->bit_width);
    /* signed ids come first in each pair: INT8, UINT8, INT16, ... */
    wg_fbb_add_bool(b, 1, ((t->id - WG_TYPE_INT8) & 1) == 0);
    break;
  case WG_TYPE_HALF_FLOAT:
  case WG_TYPE_FLOAT:
  case WG_TYPE_DOUBLE:
    *type_type = WG_FB_TYPE_FLOATING_POINT;
    wg_fbb_add_i16(b, 0, (int16_t)(t->id - WG_TYPE_HALF_FLOAT)); /* HALF, SINGLE, DOUBLE */
    break;
  case WG_TYPE_BINARY:
    *type_type = WG_FB_TYPE_BINARY;
    break;
  case WG_TYPE_LARGE_BINARY:
    *type_type = WG_FB_TYPE_LARGE_BINARY;
    break;
  case WG_TYPE_STRING:
    *type_type = WG_FB_TYPE_UTF8;
    break;
  case WG_TYPE_LARGE_STRING:
    *type_type = WG_FB_TYPE_LARGE_UTF8;
    break;
  case WG_TYPE_BINARY_VIEW:
    *type_type = WG_FB_TYPE_BINARY_VIEW;
    break;
  case WG_TYPE_STRING_VIEW:
    *type_type = WG_FB_TYPE_UTF8_VIEW;
    break;
  case WG_TYPE_FIXED_SIZE_BINARY:
    *type_type = WG_FB_TYPE_FIXED_SIZE_BINARY;
    wg_fbb_add_i32(b, 0, t->fixed_size);
    break;
  case WG_TYPE_DECIMAL:
    *type_type = WG_FB_TYPE_DECIMAL;
    wg_fbb_add_i32(b, 0, t->precision);
    wg_fbb_add_i32(b, 1, t->scale);
    wg_fbb_add_i32(b, 2, t->bit_width);
    break;
  case WG_TYPE_DATE32:
  case WG_TYPE_DATE64:
    *type_type = WG_FB_TYPE_DATE;
    wg_fbb_add_i16(b, 0, t->id == WG_TYPE_DATE32 ? 0 : 1); /* DAY, MILLISECOND */
    break;
  case WG_TYPE_TIME32:
  case WG_TYPE_TIME64:
    *type_type = WG_FB_TYPE_TIME;
    wg_fbb_add_i16(b, 0, (int16_t)time_unit_fb(t->time_unit));
    wg_fbb_add_i32(b, 1, t->bit_width);
    break;
  case WG_TYPE_TIMESTAMP:
    *type_type = WG_FB_TYPE_TIMESTAMP;
    wg_fbb_add_i16(b, 0, (int16_t)time_unit_fb(t->time_unit));
    wg_fbb_add_ref(b, 1, str);
    break;
  case WG_TYPE_DURATION:
    *type_type = WG_FB_TYPE_DURATION;
    wg_fbb_add_i16(b, 0, (int16_t)time_unit_fb(t->time_unit));
    break;
  case WG_TYPE_INTERVAL_MONTHS:
  case WG_TYPE_INTERVAL_DAY_TIME:
  case WG_TYPE_INTERVAL_MONTH_DAY_NANO:
    *type_type = WG_FB_TYPE_INTERVAL;
    /* YEAR_MONTH, DAY_TIME, MONTH_DAY_NANO */
    wg_fbb_add_i16(b, 0, (int16_t)(t->id - WG_TYPE_INTERVAL_MONTHS));
    break;
  case WG_TYPE_LIST:
    *type_type = WG_FB_TYPE_LIST;
    break;
  case WG_TYPE_LARGE_LIST:
    *type_type = WG_FB_TYPE_LARGE_LIST;
    break;
  case WG_TYPE_LIST_VIEW:
    *type_type = WG_FB_TYPE_LIST_VIEW;
    break;
  case WG_TYPE_LARGE_LIST_VIEW:
    *type_type = WG_FB_TYPE_LARGE_LIST_VIEW;
    break;
  case WG_TYPE_FIXED_SIZE_LIST:
    *type_type = WG_FB_TYPE_FIXED_SIZE_LIST;
    wg_fbb_add_i32(b, 0, t->fixed_size);
    break;
  case WG_TYPE_STRUCT:
    *type_type = WG_FB_TYPE_STRUCT;
    break;
  case WG_TYPE_MAP:
    *type_type = WG_FB_TYPE_MAP;
    wg_fbb_add_bool(b, 0, (s->flags & ARROW_FLAG_MAP_KEYS_SORTED) != 0);
    break;
  case WG_TYPE_SPARSE_UNION:
  case WG_TYPE_DENSE_UNION:
    *type_type = WG_FB_TYPE_UNION;
    wg_fbb_add_i16(b, 0, t->id == WG_TYPE_SPARSE_UNION ? 0 : 1); /* Sparse, Dense */
    wg_fbb_add_ref(b, 1, vec);
    break;
  case WG_TYPE_RUN_END_ENCODED:
    *type_type = WG_FB_TYPE_RUN_END_ENCODED;
    break;
  }
  return wg_fbb_table_end(b, out);
}

static int build_field(struct wg_fbb *b, const struct enc_field *f, uint32_t *out) {
  const struct enc_field *vf = f->dict != NULL ? f->dict : f; /* the value type */
  uint32_t *kids = NULL;
  if (vf->n_children > 0) {
    kids = malloc((size_t)vf->n_children * sizeof(uint32_t));
    if (kids == NULL) return ENOMEM;
  }
  int rc = 0;
  for (int64_t i = 0; i < vf->n_children && rc == 0; i++)
    rc = build_field(b, &vf->children[i], &kids[i]);
  uint32_t children = 0, name = 0, type = 0, dict = 0, md = 0;
  uint8_t type_type = 0;
  /* Always write children (even empty): some readers require the vector. */
  if (rc == 0) rc = wg_fbb_create_vector_refs(b, kids, vf->n_children, &children);
  free(kids);
  WG_RETURN_NOT_OK(rc);
  if (f->schema->name != NULL)
    WG_RETURN_NOT_OK(
        wg_fbb_create_string(b, f->schema->name, (int64_t)strlen(f->schema->name), &name));
  WG_RETURN_NOT_OK(build_type(b, &vf->type, vf->schema, &type_type, &type));
  if (f->dict != NULL) {
    uint32_t index;
    wg_fbb_table_begin(b);
    wg_fbb_add_i32(b, 0, f->type.bit_width);
    wg_fbb_add_bool(b, 1, ((f->type.id - WG_TYPE_INT8) & 1) == 0);
    WG_RETURN_NOT_OK(wg_fbb_table_end(b, &index));
    wg_fbb_table_begin(b);
    wg_fbb_add_i64(b, 0, f->dict_id);
    wg_fbb_add_ref(b, 1, index);
    wg_fbb_add_bool(b, 2, (f->schema->flags & ARROW_FLAG_DICTIONARY_ORDERED) != 0);
    wg_fbb_add_i16(b, 3, 0); /* DenseArray */
    WG_RETURN_NOT_OK(wg_fbb_table_end(b, &dict));
  }
  WG_RETURN_NOT_OK(build_metadata(b, f->schema->metadata, &md));
  wg_fbb_table_begin(b);
  wg_fbb_add_ref(b, 0, name);
  wg_fbb_add_bool(b, 1, (f->schema->flags & ARROW_FLAG_NULLABLE) != 0);
  wg_fbb_add_union(b, 2, type_type, type);
  wg_fbb_add_ref(b, 4, dict);
  wg_fbb_add_ref(b, 5, children);
  wg_fbb_add_ref(b, 6, md);
  return wg_fbb_table_end(b, out);
}

static bool host_is_little_endian(void) {
  uint16_t probe = 1;
  uint8_t first;
  memcpy(&first, &probe, 1);
  return first == 1;
}

/* Finishes a Message around header and copies it into m->metadata. */
static int finish_message(struct wg_fbb *b, uint8_t header_type, uint32_t header,
                          int64_t body_length, struct wg_ipc_encoded *m) {
  uint32_t msg;
  struct wg_bytes bytes;
  wg_fbb_table_begin(b);
  wg_fbb_add_i16(b, 0, WG_IPC_V5);
  wg_fbb_add_union(b, 1, header_type, header);
  wg_fbb_add_i64(b, 3, body_length);
  WG_RETURN_NOT_OK(wg_fbb_table_end(b, &msg));
  WG_RETURN_NOT_OK(wg_fbb_finish(b, msg, &bytes));
  m->metadata.size = 0;
  WG_RETURN_NOT_OK(wg_buf_append(&m->metadata, bytes.data, bytes.size));
  return wg_buf_append_zeros(&m->metadata, wg_pad8(bytes.size) - bytes.size);
}

/* Resets out and fills it with the Schema message (no body). out owns its metadata; on error
 * out is left empty. Returns 0 or ENOMEM. */
int wg_ipc_encoder_schema(struct wg_ipc_encoder *enc, struct wg_ipc_encoded *out,
                          struct wg_error *err) {
  wg_ipc_encoded_reset(out);
  struct wg_fbb *b = &enc->fbb;
  wg_fbb_clear(b);
  const struct enc_field *root = &enc->root;
  uint32_t *refs = NULL;
  if (root->n_children > 0) {
    refs = malloc((size_t)root->n_children * sizeof(uint32_t));
    if (refs == NULL) return oom(err, "building the schema message");
  }
  int rc = 0;
  for (int64_t i = 0; i < root->n_children && rc == 0; i++)
    rc = build_field(b, &root->children[i], &refs[i]);
  uint32_t fields = 0, md = 0, schema = 0;
  if (rc == 0) rc = wg_fbb_create_vector_refs(b, refs, root->n_children, &fields);
  free(refs);
  if (rc == 0) rc = build_metadata(b, enc->schema.metadata, &md);
  if (rc == 0) {
    wg_fbb_table_begin(b);
    wg_fbb_add_i16(b, 0, host_is_little_endian() ? 0 : 1); /* Little, Big */
    wg_fbb_add_ref(b, 1, fields);
    wg_fbb_add_ref(b, 2, md);
    rc = wg_fbb_table_end(b, &schema);
  }
  if (rc == 0) rc = finish_message(b, WG_IPC_MESSAGE_SCHEMA, schema, 0, out);
  if (rc != 0) {
    wg_ipc_encoded_reset(out);
    return wg_error_set(err, rc, "building the schema message: %s", wg_status_name(rc));
  }
  out->type = WG_IPC_MESSAGE_SCHEMA;
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Bodies */

/* Adds one IPC buffer: records Buffer{offset, length} and the pieces (or, in fingerprint mode,
 * the length and bytes). data may be NULL only when size is 0. */
static int add_buffer(struct body *bd, const uint8_t *data, int64_t size) {
  struct wg_ipc_encoder *enc = bd->enc;
  if (bd->fp != NULL) {
    uint8_t len[8];
    wg_store_i64(len, size);
    if (wg_buf_append(bd->fp, len, 8) != 0 || wg_buf_append(bd->fp, data, size) != 0 ||
        vec_push2(&enc->buffers, 0, size) != 0)
      return oom(bd->err, "fingerprinting a dictionary");
    return 0;
  }
  int64_t start = bd->length;
  if (size > 0 && bd->codec != WG_IPC_COMPRESSION_NONE) {
    struct wg_buf c;
    wg_buf_init(&c);
    int rc = wg_compress_buffer(bd->codec, bd->level, data, size, &c, bd->err);
    if (rc != 0) {
      wg_buf_reset(&c);
      return rc;
    }
    size = c.size;
    data = c.data;
    if (wg_holder_builder_add_alloc(bd->scratch, wg_buf_detach(&c)) != 0)
      return oom(bd->err, "keeping a compressed buffer");
  }
  int64_t padded = wg_pad8(size);
  if ((size > 0 && add_piece(bd->m, data, size) != 0) ||
      (padded > size && add_piece(bd->m, zero_block, padded - size) != 0) ||
      vec_push2(&enc->buffers, start, size) != 0)
    return oom(bd->err, "for body pieces");
  bd->length += padded;
  return 0;
}

/* A copy owned by the message's scratch, zero-filled to a multiple of 8 bytes. */
static int scratch_alloc(struct body *bd, int64_t size, uint8_t **out) {
  uint8_t *p = calloc(1, (size_t)wg_pad8(size > 0 ? size : 1));
  if (p == NULL || wg_holder_builder_add_alloc(bd->scratch, p) != 0)
    return oom(bd->err, "for a rebased buffer");
  *out = p;
  return 0;
}

/* Adds bits [off, off + len) of a bitmap: in place when off is byte aligned, else shifted into
 * scratch (bits past len are zero then). */
static int add_bitmap(struct body *bd, const uint8_t *bits, int64_t off, int64_t len) {
  int64_t nbytes = (len + 7) / 8;
  if ((off & 7) == 0 || len == 0) return add_buffer(bd, len == 0 ? NULL : bits + off / 8, nbytes);
  uint8_t *dst;
  WG_RETURN_NOT_OK(scratch_alloc(bd, nbytes, &dst));
  const uint8_t *src = bits + off / 8;
  int shift = (int)(off & 7);
  int64_t last_src = (off + len - 1) / 8 - off / 8; /* last source byte index we may read */
  for (int64_t i = 0; i < nbytes; i++) {
    unsigned v = (unsigned)src[i] >> shift;
    if (i + 1 <= last_src) v |= (unsigned)src[i + 1] << (8 - shift);
    dst[i] = (uint8_t)v;
  }
  if (len & 7) dst[nbytes - 1] &= (uint8_t)((1u << (len & 7)) - 1);
  return add_buffer(bd, dst, nbytes);
}

static const uint8_t *buf_at(const struct ArrowArray *a, int i) {
  return (const uint8_t *)a->buffers[i];
}

/* Null count of the window [off, off + len) of a's validity, and whether the window is the
 * array's own (so its null_count applies). */
static int window_null_count(const struct enc_field *f, const struct ArrowArray *a, int64_t off,
                             int64_t len, int64_t *out, struct wg_error *err) {
  const uint8_t *bits = buf_at(a, 0);
  if (off == a->offset && len == a->length && a->null_count >= 0) {
    *out = a->null_count;
    if (*out > 0 && bits == NULL)
      return wg_error_set(err, EINVAL, "field '%s': null_count %lld without a validity bitmap",
                          field_name(f), (long long)*out);
    if (*out > len)
      return wg_error_set(err, EINVAL, "field '%s': null_count %lld > length %lld", field_name(f),
                          (long long)*out, (long long)len);
    return 0;
  }
  *out = bits == NULL ? 0 : len - wg_bitmap_count_set(bits, off, len);
  return 0;
}

/* Adds entries [off, off + len] of an offsets buffer, rebased to start at 0 (the format
 * recommends it and some readers assume it): in place when the first is already 0, else a copy
 * in scratch. *first / *last give the range of the values (or children) they index. */
static int add_offsets(struct body *bd, const struct enc_field *f, const uint8_t *p, int64_t off,
                       int64_t len, int width, int64_t *first, int64_t *last) {
  if (p == NULL) {
    if (len != 0)
      return wg_error_set(bd->err, EINVAL, "field '%s': length %lld without an offsets buffer",
                          field_name(f), (long long)len);
    *first = *last = 0;
    return add_buffer(bd, zero_block, width);
  }
  *first = wg_offset_load(p, off, width == 8);
  *last = wg_offset_load(p, off + len, width == 8);
  if (*first < 0 || *last < *first)
    return wg_error_set(
        bd->err, EINVAL, "field '%s': offsets [%lld] = %lld and [%lld] = %lld are not increasing",
        field_name(f), (long long)off, (long long)*first, (long long)(off + len), (long long)*last);
  int64_t size = (len + 1) * width;
  if (*first == 0) return add_buffer(bd, p + off * width, size);
  uint8_t *dst;
  WG_RETURN_NOT_OK(scratch_alloc(bd, size, &dst));
  for (int64_t i = 0; i <= len; i++) {
    int64_t v = wg_offset_load(p, off + i, width == 8);
    wg_offset_store(dst, i, v - *first, width == 8);
  }
  return add_buffer(bd, dst, size);
}

static int encode_array(struct body *bd, const struct enc_field *f, const struct ArrowArray *a,
                        int64_t off, int64_t len, int depth);

/* Child i's own offset (0 for a missing child: encode_child reports it). */
static int64_t child_offset(const struct ArrowArray *a, int64_t i) {
  return a->children[i] != NULL ? a->children[i]->offset : 0;
}
static int64_t child_length(const struct ArrowArray *a, int64_t i) {
  return a->children[i] != NULL ? a->children[i]->length : 0;
}

static int encode_child(struct body *bd, const struct enc_field *f, const struct ArrowArray *a,
                        int64_t i, int64_t off, int64_t len, int depth) {
  const struct ArrowArray *c = a->children[i];
  if (c == NULL || c->release == NULL)
    return wg_error_set(bd->err, EINVAL, "field '%s': child %lld is missing or released",
                        field_name(f), (long long)i);
  if (off < 0 || len < 0)
    return wg_error_set(bd->err, EINVAL, "field '%s': child %lld window [%lld, +%lld) invalid",
                        field_name(f), (long long)i, (long long)off, (long long)len);
  return encode_array(bd, &f->children[i], c, off, len, depth + 1);
}

/* Run-end encoded with a logical offset (IPC has no offsets): the runs covering [off, off + len)
 * with their ends rebased to the window (copied to scratch), then the matching values. */
static int encode_ree(struct body *bd, const struct enc_field *f, const struct ArrowArray *a,
                      int64_t off, int64_t len, int depth) {
  const struct ArrowArray *re = a->children[0], *values = a->children[1];
  if (re == NULL || values == NULL || re->release == NULL || values->release == NULL)
    return wg_error_set(bd->err, EINVAL, "run-end encoded field '%s': missing children",
                        field_name(f));
  const struct enc_field *rf = &f->children[0];
  int width = rf->type.bit_width / 8;
  if ((width != 2 && width != 4 && width != 8) || re->n_buffers != 2 || buf_at(re, 1) == NULL)
    return wg_error_set(bd->err, EINVAL, "run-end encoded field '%s': bad run ends (format '%s')",
                        field_name(f), rf->schema->format);
  const uint8_t *ends = buf_at(re, 1) + re->offset * width;
  int64_t n = re->length;
#define RUN_END(i, out)                                                                            \
  do {                                                                                             \
    if (width == 2) {                                                                              \
      int16_t v16;                                                                                 \
      memcpy(&v16, ends + 2 * (i), 2);                                                             \
      out = v16;                                                                                   \
    } else if (width == 4) {                                                                       \
      int32_t v32;                                                                                 \
      memcpy(&v32, ends + 4 * (i), 4);                                                             \
      out = v32;                                                                                   \
    } else {                                                                                       \
      memcpy(&out, ends + 8 * (i), 8);                                                             \
    }                                                                                              \
  } while (0)
  /* first run whose end is past off; then the run holding the window's last element */
  int64_t lo = 0, hi = n, v;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    RUN_END(mid, v);
    if (v > off)
      hi = mid;
    else
      lo = mid + 1;
  }
  int64_t i0 = lo, i1 = lo;
  if (len > 0) {
    hi = n;
    while (i1 < hi) {
      int64_t mid = i1 + (hi - i1) / 2;
      RUN_END(mid, v);
      if (v >= off + len)
        hi = mid;
      else
        i1 = mid + 1;
    }
    if (i1 >= n)
      return wg_error_set(bd->err, EINVAL,
                          "run-end encoded field '%s': runs end before offset %lld + length %lld",
                          field_name(f), (long long)off, (long long)len);
  }
  int64_t count = len > 0 ? i1 - i0 + 1 : 0;
  uint8_t *dst;
  WG_RETURN_NOT_OK(scratch_alloc(bd, count * width, &dst));
  for (int64_t k = 0; k < count; k++) {
    int64_t e;
    RUN_END(i0 + k, e);
    e -= off;
    if (e > len) e = len;
    if (width == 2) {
      int16_t e16 = (int16_t)e;
      memcpy(dst + 2 * k, &e16, 2);
    } else if (width == 4) {
      int32_t e32 = (int32_t)e;
      memcpy(dst + 4 * k, &e32, 4);
    } else {
      memcpy(dst + 8 * k, &e, 8);
    }
  }
#undef RUN_END
  /* the parent's node, then the run ends child (length count, no nulls) by hand */
  if (vec_push2(&bd->enc->nodes, len, 0) != 0 || vec_push2(&bd->enc->nodes, count, 0) != 0)
    return oom(bd->err, "for field nodes");
  WG_RETURN_NOT_OK(add_buffer(bd, NULL, 0));
  WG_RETURN_NOT_OK(add_buffer(bd, dst, count * width));
  return encode_child(bd, f, a, 1, values->offset + (count > 0 ? i0 : 0), count, depth);
}

/* Encodes the window [off, off + len) of a (off already includes a->offset and whatever the
 * parent adds): its FieldNode, its buffers, then its children, in pre-order. */
static int encode_array(struct body *bd, const struct enc_field *f, const struct ArrowArray *a,
                        int64_t off, int64_t len, int depth) {
  const struct wg_arrow_type *t = &f->type;
  const char *name = field_name(f);
  struct wg_error *err = bd->err;
  if (depth > ENC_MAX_DEPTH)
    return wg_error_set(err, EINVAL, "field '%s': arrays nested deeper than %d levels", name,
                        ENC_MAX_DEPTH);
  int want = wg_arrow_type_n_buffers(t);
  bool view = t->id == WG_TYPE_BINARY_VIEW || t->id == WG_TYPE_STRING_VIEW;
  if (view ? a->n_buffers < 3 : a->n_buffers != want)
    return wg_error_set(err, EINVAL, "field '%s' (format '%s'): %lld buffers, expected %s%d", name,
                        f->schema->format, (long long)a->n_buffers, view ? "at least " : "",
                        view ? 3 : want);
  if (a->n_buffers > 0 && a->buffers == NULL)
    return wg_error_set(err, EINVAL, "field '%s': %lld buffers but no buffer array", name,
                        (long long)a->n_buffers);
  if (a->n_children != f->n_children || (a->n_children > 0 && a->children == NULL))
    return wg_error_set(err, EINVAL, "field '%s' (format '%s'): %lld children, expected %lld", name,
                        f->schema->format, (long long)a->n_children, (long long)f->n_children);
  if (f->dict != NULL && (a->dictionary == NULL || a->dictionary->release == NULL))
    return wg_error_set(err, EINVAL, "dictionary-encoded field '%s': array has no dictionary",
                        name);
  if (len < 0 || off < 0)
    return wg_error_set(err, EINVAL, "field '%s': offset %lld, length %lld", name, (long long)off,
                        (long long)len);

  int64_t null_count = 0;
  if (t->id == WG_TYPE_NA) {
    null_count = len;
  } else if (wg_arrow_type_has_validity(t)) {
    WG_RETURN_NOT_OK(window_null_count(f, a, off, len, &null_count, err));
  }
  if (t->id == WG_TYPE_RUN_END_ENCODED && off != 0) return encode_ree(bd, f, a, off, len, depth);
  if (vec_push2(&bd->enc->nodes, len, null_count) != 0) return oom(err, "for field nodes");
  if (wg_arrow_type_has_validity(t)) {
    if (null_count == 0)
      WG_RETURN_NOT_OK(add_buffer(bd, NULL, 0));
    else
      WG_RETURN_NOT_OK(add_bitmap(bd, buf_at(a, 0), off, len));
  }

  int64_t first, last;
  switch (t->id) {
  case WG_TYPE_NA:
    return 0;
  case WG_TYPE_BOOL:
    if (len > 0 && buf_at(a, 1) == NULL) goto missing;
    return add_bitmap(bd, buf_at(a, 1), off, len);
  case WG_TYPE_BINARY:
  case WG_TYPE_LARGE_BINARY:
  case WG_TYPE_STRING:
  case WG_TYPE_LARGE_STRING: {
    int width = t->id == WG_TYPE_BINARY || t->id == WG_TYPE_STRING ? 4 : 8;
    WG_RETURN_NOT_OK(add_offsets(bd, f, buf_at(a, 1), off, len, width, &first, &last));
    if (last > first && buf_at(a, 2) == NULL) goto missing;
    return add_buffer(bd, last > first ? buf_at(a, 2) + first : NULL, last - first);
  }
  case WG_TYPE_BINARY_VIEW:
  case WG_TYPE_STRING_VIEW: {
    if (len > 0 && buf_at(a, 1) == NULL) goto missing;
    WG_RETURN_NOT_OK(add_buffer(bd, len > 0 ? buf_at(a, 1) + off * 16 : NULL, len * 16));
    int64_t n_var = a->n_buffers - 3;
    const uint8_t *sizes = buf_at(a, (int)a->n_buffers - 1);
    if (n_var > 0 && sizes == NULL)
      return wg_error_set(err, EINVAL, "view field '%s': %lld data buffers without sizes", name,
                          (long long)n_var);
    if (vec_push(&bd->enc->variadic, n_var) != 0) return oom(err, "for variadic counts");
    for (int64_t k = 0; k < n_var; k++) {
      int64_t size;
      memcpy(&size, sizes + 8 * k, 8);
      const uint8_t *p = buf_at(a, (int)(2 + k));
      if (size < 0 || (size > 0 && p == NULL))
        return wg_error_set(err, EINVAL, "view field '%s': data buffer %lld of size %lld is %s",
                            name, (long long)k, (long long)size, p ? "present" : "NULL");
      WG_RETURN_NOT_OK(add_buffer(bd, size > 0 ? p : NULL, size));
    }
    return 0;
  }
  case WG_TYPE_LIST:
  case WG_TYPE_LARGE_LIST:
  case WG_TYPE_MAP: {
    int width = t->id == WG_TYPE_LARGE_LIST ? 8 : 4;
    WG_RETURN_NOT_OK(add_offsets(bd, f, buf_at(a, 1), off, len, width, &first, &last));
    return encode_child(bd, f, a, 0, child_offset(a, 0) + first, last - first, depth);
  }
  case WG_TYPE_LIST_VIEW:
  case WG_TYPE_LARGE_LIST_VIEW: {
    int width = t->id == WG_TYPE_LIST_VIEW ? 4 : 8;
    if (len > 0 && (buf_at(a, 1) == NULL || buf_at(a, 2) == NULL)) goto missing;
    WG_RETURN_NOT_OK(add_buffer(bd, len > 0 ? buf_at(a, 1) + off * width : NULL, len * width));
    WG_RETURN_NOT_OK(add_buffer(bd, len > 0 ? buf_at(a, 2) + off * width : NULL, len * width));
    /* the offsets index the child's whole logical range: send it all */
    return encode_child(bd, f, a, 0, child_offset(a, 0), child_length(a, 0), depth);
  }
  case WG_TYPE_FIXED_SIZE_LIST: {
    int64_t n = t->fixed_size;
    return encode_child(bd, f, a, 0, child_offset(a, 0) + off * n, len * n, depth);
  }
  case WG_TYPE_STRUCT:
    for (int64_t i = 0; i < a->n_children; i++)
      WG_RETURN_NOT_OK(encode_child(bd, f, a, i, child_offset(a, i) + off, len, depth));
    return 0;
  case WG_TYPE_SPARSE_UNION:
  case WG_TYPE_DENSE_UNION: {
    bool dense = t->id == WG_TYPE_DENSE_UNION;
    if (len > 0 && (buf_at(a, 0) == NULL || (dense && buf_at(a, 1) == NULL))) goto missing;
    WG_RETURN_NOT_OK(add_buffer(bd, len > 0 ? buf_at(a, 0) + off : NULL, len));
    if (dense) WG_RETURN_NOT_OK(add_buffer(bd, len > 0 ? buf_at(a, 1) + off * 4 : NULL, len * 4));
    /* dense: the offsets index each child's whole range */
    for (int64_t i = 0; i < a->n_children; i++)
      WG_RETURN_NOT_OK(encode_child(bd, f, a, i, child_offset(a, i) + (dense ? 0 : off),
                                    dense ? child_length(a, i) : len, depth));
    return 0;
  }
  case WG_TYPE_RUN_END_ENCODED: /* off == 0 here: the children as they are */
    WG_RETURN_NOT_OK(encode_child(bd, f, a, 0, child_offset(a, 0), child_length(a, 0), depth));
    return encode_child(bd, f, a, 1, child_offset(a, 1), child_length(a, 1), depth);
  default: { /* fixed width: ints, floats, decimals, dates, times, intervals, fixed binary */
    int64_t width = t->bit_width / 8;
    if (t->bit_width % 8 != 0)
      return wg_error_set(err, ENOTSUP, "field '%s': bit width %d", name, t->bit_width);
    if (len > 0 && buf_at(a, 1) == NULL) goto missing;
    return add_buffer(bd, len > 0 ? buf_at(a, 1) + off * width : NULL, len * width);
  }
  }
missing:
  return wg_error_set(err, EINVAL, "field '%s' (format '%s'): length %lld but a NULL data buffer",
                      name, f->schema->format, (long long)len);
}

/* Builds the RecordBatch table from the collected nodes, buffers and variadic counts. */
static int build_record_batch(struct wg_ipc_encoder *enc, int64_t length, bool compressed,
                              uint32_t *out) {
  struct wg_fbb *b = &enc->fbb;
  uint32_t nodes, buffers, variadic = 0, compression = 0;
  WG_RETURN_NOT_OK(wg_fbb_create_vector_i64_pairs(b, enc->nodes.v, enc->nodes.n / 2, &nodes));
  WG_RETURN_NOT_OK(wg_fbb_create_vector_i64_pairs(b, enc->buffers.v, enc->buffers.n / 2, &buffers));
  if (enc->variadic.n > 0)
    WG_RETURN_NOT_OK(wg_fbb_create_vector_i64(b, enc->variadic.v, enc->variadic.n, &variadic));
  if (compressed) {
    wg_fbb_table_begin(b);
    wg_fbb_add_u8(b, 0, (uint8_t)(enc->options.compression - 1)); /* wire codec */
    wg_fbb_add_u8(b, 1, 0);                                       /* BUFFER */
    WG_RETURN_NOT_OK(wg_fbb_table_end(b, &compression));
  }
  wg_fbb_table_begin(b);
  wg_fbb_add_i64(b, 0, length);
  wg_fbb_add_ref(b, 1, nodes);
  wg_fbb_add_ref(b, 2, buffers);
  wg_fbb_add_ref(b, 3, compression);
  wg_fbb_add_ref(b, 4, variadic);
  return wg_fbb_table_end(b, out);
}

static void body_start(struct body *bd, struct wg_ipc_encoder *enc, struct wg_ipc_encoded *m,
                       struct wg_error *err) {
  memset(bd, 0, sizeof(*bd));
  bd->enc = enc;
  bd->m = m;
  bd->scratch = &m->scratch;
  bd->codec = enc->options.compression;
  bd->level = enc->options.compression_level;
  bd->err = err;
  enc->nodes.n = enc->buffers.n = enc->variadic.n = 0;
  wg_fbb_clear(&enc->fbb);
}

/* Encodes dictionary `id` (array d, whole) as a DictionaryBatch into m. */
static int encode_dictionary(struct wg_ipc_encoder *enc, int64_t id, const struct ArrowArray *d,
                             struct wg_ipc_encoded *m, struct wg_error *err) {
  struct body bd;
  wg_ipc_encoded_reset(m);
  body_start(&bd, enc, m, err);
  const struct enc_field *vf = enc->dicts[id].value;
  WG_RETURN_NOT_OK(encode_array(&bd, vf, d, d->offset, d->length, 0));
  uint32_t rb, db;
  struct wg_fbb *b = &enc->fbb;
  int rc = build_record_batch(enc, d->length, bd.codec != WG_IPC_COMPRESSION_NONE, &rb);
  if (rc == 0) {
    wg_fbb_table_begin(b);
    wg_fbb_add_i64(b, 0, id);
    wg_fbb_add_ref(b, 1, rb);
    wg_fbb_add_bool(b, 2, false);
    rc = wg_fbb_table_end(b, &db);
  }
  if (rc == 0) rc = finish_message(b, WG_IPC_MESSAGE_DICTIONARY_BATCH, db, bd.length, m);
  if (rc != 0)
    return wg_error_set(err, rc, "building dictionary batch %lld: %s", (long long)id,
                        wg_status_name(rc));
  m->type = WG_IPC_MESSAGE_DICTIONARY_BATCH;
  m->body_length = bd.length;
  return 0;
}

/* The fingerprint of dictionary d: its length, nodes, buffer lengths and bytes, variadic counts,
 * as they would be sent uncompressed. Left in enc->fingerprint. */
static int fingerprint_dictionary(struct wg_ipc_encoder *enc, int64_t id,
                                  const struct ArrowArray *d, struct wg_error *err) {
  struct body bd;
  memset(&bd, 0, sizeof(bd));
  bd.enc = enc;
  bd.fp = &enc->fingerprint;
  bd.scratch = &enc->fp_scratch;
  bd.codec = WG_IPC_COMPRESSION_NONE;
  bd.err = err;
  enc->nodes.n = enc->buffers.n = enc->variadic.n = 0;
  enc->fingerprint.size = 0;
  uint8_t len[8];
  wg_store_i64(len, d->length);
  int rc = wg_buf_append(&enc->fingerprint, len, 8);
  if (rc == 0) rc = encode_array(&bd, enc->dicts[id].value, d, d->offset, d->length, 0);
  wg_holder_builder_reset(&enc->fp_scratch);
  if (rc != 0) return rc;
  if (wg_buf_append(&enc->fingerprint, enc->nodes.v, enc->nodes.n * 8) != 0 ||
      wg_buf_append(&enc->fingerprint, enc->variadic.v, enc->variadic.n * 8) != 0)
    return oom(err, "fingerprinting a dictionary");
  return 0;
}

/* Emits the dictionaries of f's subtree that changed, nested ones before their parents.
 * *changed is set when anything was emitted. */
static int walk_dictionaries(struct wg_ipc_encoder *enc, const struct enc_field *f,
                             const struct ArrowArray *a, struct wg_ipc_encoded *out, int64_t *n_out,
                             bool *changed, int depth, struct wg_error *err) {
  const char *name = field_name(f);
  if (a == NULL || a->release == NULL)
    return wg_error_set(err, EINVAL, "field '%s': array is missing or released", name);
  if (depth > ENC_MAX_DEPTH)
    return wg_error_set(err, EINVAL, "field '%s': nested deeper than %d", name, ENC_MAX_DEPTH);
  if (f->dict == NULL) {
    if (a->n_children != f->n_children || (a->n_children > 0 && a->children == NULL))
      return wg_error_set(err, EINVAL, "field '%s' (format '%s'): %lld children, expected %lld",
                          name, f->schema->format, (long long)a->n_children,
                          (long long)f->n_children);
    for (int64_t i = 0; i < f->n_children; i++)
      WG_RETURN_NOT_OK(walk_dictionaries(enc, &f->children[i], a->children[i], out, n_out, changed,
                                         depth + 1, err));
    return 0;
  }
  const struct ArrowArray *d = a->dictionary;
  if (d == NULL || d->release == NULL)
    return wg_error_set(err, EINVAL, "dictionary-encoded field '%s': array has no dictionary",
                        name);
  bool nested = false;
  const struct enc_field *vf = f->dict;
  if (d->n_children != vf->n_children || (d->n_children > 0 && d->children == NULL))
    return wg_error_set(err, EINVAL, "dictionary of field '%s': %lld children, expected %lld", name,
                        (long long)d->n_children, (long long)vf->n_children);
  for (int64_t i = 0; i < vf->n_children; i++)
    WG_RETURN_NOT_OK(walk_dictionaries(enc, &vf->children[i], d->children[i], out, n_out, &nested,
                                       depth + 1, err));
  struct dict_state *st = &enc->dicts[f->dict_id];
  int rc = fingerprint_dictionary(enc, f->dict_id, d, err);
  if (rc != 0) return wg_error_prefix(err, rc, "dictionary %lld", (long long)f->dict_id);
  if (!nested && st->sent && st->last.size == enc->fingerprint.size &&
      memcmp(st->last.data, enc->fingerprint.data, (size_t)enc->fingerprint.size) == 0)
    return 0;
  struct wg_buf tmp = st->last;
  st->last = enc->fingerprint;
  enc->fingerprint = tmp;
  st->sent = true;
  WG_RETURN_NOT_OK(encode_dictionary(enc, f->dict_id, d, &out[*n_out], err));
  (*n_out)++;
  *changed = true;
  return 0;
}

/* See ipc.h. out[0 .. *n_out) own their metadata and scratch; their pieces also point into
 * `batch` (borrowed: it must outlive them) and at static padding. On error (EINVAL for an array
 * that does not match the schema, naming the field; ENOMEM; codec errors) *n_out is 0, every
 * out[i] that was touched is reset, and every dictionary will be sent again with the next batch,
 * since the caller cannot have sent the ones produced. */
int wg_ipc_encoder_batch(struct wg_ipc_encoder *enc, const struct ArrowArray *batch,
                         struct wg_ipc_encoded *out, int64_t *n_out, struct wg_error *err) {
  *n_out = 0;
  int rc;
  if (batch == NULL || batch->release == NULL) {
    rc = wg_error_set(err, EINVAL, "record batch is NULL or released");
    goto fail;
  }
  if (batch->length < 0 || batch->offset < 0) {
    rc = wg_error_set(err, EINVAL, "record batch with length %lld, offset %lld",
                      (long long)batch->length, (long long)batch->offset);
    goto fail;
  }
  bool changed = false;
  rc = walk_dictionaries(enc, &enc->root, batch, out, n_out, &changed, 0, err);
  if (rc != 0) goto fail;

  struct wg_ipc_encoded *m = &out[*n_out];
  struct body bd;
  wg_ipc_encoded_reset(m);
  body_start(&bd, enc, m, err);
  const struct enc_field *root = &enc->root;
  for (int64_t i = 0; i < root->n_children; i++) {
    const struct ArrowArray *c = batch->children[i];
    rc = encode_array(&bd, &root->children[i], c, c->offset + batch->offset, batch->length, 1);
    if (rc != 0) goto fail;
  }
  uint32_t rb;
  rc = build_record_batch(enc, batch->length, bd.codec != WG_IPC_COMPRESSION_NONE, &rb);
  if (rc == 0) rc = finish_message(&enc->fbb, WG_IPC_MESSAGE_RECORD_BATCH, rb, bd.length, m);
  if (rc != 0) {
    rc = wg_error_set(err, rc, "building a record batch: %s", wg_status_name(rc));
    goto fail;
  }
  m->type = WG_IPC_MESSAGE_RECORD_BATCH;
  m->body_length = bd.length;
  (*n_out)++;
  return 0;
fail:
  /* The caller drops what we produced: make sure every dictionary is sent again. */
  for (int64_t i = 0; i < enc->n_dicts; i++)
    enc->dicts[i].sent = false;
  for (int64_t i = 0; i <= *n_out && i < wg_ipc_encoder_max_messages(enc); i++)
    wg_ipc_encoded_reset(&out[i]);
  *n_out = 0;
  return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Whole streams */

static int stream_error(struct ArrowArrayStream *s, int rc, const char *what,
                        struct wg_error *err) {
  const char *msg = s->get_last_error != NULL ? s->get_last_error(s) : NULL;
  return wg_error_set(err, rc != 0 ? rc : EIO, "stream %s failed (%d): %s", what, rc,
                      msg != NULL ? msg : "no message");
}

/* Drains `stream` (still owned by the caller, not released here) into b: schema, then for each
 * batch its dictionaries and record batch, then the end-of-stream marker. The schema and arrays
 * it gets from the stream are released before returning. Returns 0; the stream's own code with
 * its get_last_error text when get_schema/get_next fail (EIO when that code is 0 but no schema
 * came); encoder errors otherwise. On error b holds a partial stream. */
int wg_ipc_write_stream(struct ArrowArrayStream *stream,
                        const struct wg_ipc_encoder_options *options, struct wg_buf *b,
                        struct wg_error *err) {
  if (stream == NULL || stream->release == NULL)
    return wg_error_set(err, EINVAL, "write_stream: stream is NULL or released");
  struct ArrowSchema schema;
  memset(&schema, 0, sizeof(schema));
  int rc = stream->get_schema(stream, &schema);
  if (rc != 0 || schema.release == NULL) return stream_error(stream, rc, "get_schema", err);
  struct wg_ipc_encoder *enc = NULL;
  struct wg_ipc_encoded *msgs = NULL;
  int64_t n_msgs = 0;
  rc = wg_ipc_encoder_create(&enc, &schema, options, err);
  wg_schema_release(&schema);
  if (rc != 0) return rc;
  n_msgs = wg_ipc_encoder_max_messages(enc);
  msgs = calloc((size_t)n_msgs, sizeof(*msgs));
  if (msgs == NULL) {
    rc = oom(err, "for encoded messages");
    goto done;
  }
  for (int64_t i = 0; i < n_msgs; i++)
    wg_ipc_encoded_init(&msgs[i]);
  rc = wg_ipc_encoder_schema(enc, &msgs[0], err);
  if (rc == 0 && wg_ipc_encoded_append_framed(&msgs[0], b) != 0)
    rc = oom(err, "appending the schema message");
  while (rc == 0) {
    struct ArrowArray array;
    memset(&array, 0, sizeof(array));
    rc = stream->get_next(stream, &array);
    if (rc != 0) {
      rc = stream_error(stream, rc, "get_next", err);
      break;
    }
    if (array.release == NULL) break;
    int64_t n_out = 0;
    rc = wg_ipc_encoder_batch(enc, &array, msgs, &n_out, err);
    for (int64_t i = 0; rc == 0 && i < n_out; i++)
      if (wg_ipc_encoded_append_framed(&msgs[i], b) != 0) rc = oom(err, "appending a message");
    /* the pieces point into the array: drop them before releasing it */
    for (int64_t i = 0; i < n_out; i++)
      wg_ipc_encoded_reset(&msgs[i]);
    wg_array_release(&array);
  }
  if (rc == 0 && wg_ipc_append_eos(b) != 0) rc = oom(err, "appending the end-of-stream marker");
done:
  if (msgs != NULL)
    for (int64_t i = 0; i < n_msgs; i++)
      wg_ipc_encoded_reset(&msgs[i]);
  free(msgs);
  wg_ipc_encoder_destroy(enc);
  return rc;
}
