/* wigeon: IPC Schema flatbuffer -> ArrowSchema (C Data Interface). Verifies every table, string and
 * vector before use, bounds nesting depth and the total number of fields by the buffer size, and
 * checks that each type has the children it needs. Used by the decoder and by GetSchema. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/fbs.h"
#include "arrow/flatbuf.h"
#include "arrow/ipc_internal.h"
#include "common/text.h"

struct schema_ctx {
  int64_t fields_left; /* bound on the number of Field tables visited (DAGs in hostile input) */
  int32_t max_depth;
  struct wg_buf *dict_ids; /* int64 ids of dictionary-encoded fields, children before parents */
  int64_t bytes_left;      /* bound on string bytes copied (names, metadata, time zones) */
  struct wg_error *err;
  int64_t max_fields; /* limits->max_fields */
  int64_t n_fields;   /* fields decoded or announced so far */
};

/* Counts n more fields against limits->max_fields, before they are decoded. */
static int count_fields(struct schema_ctx *ctx, int64_t n) {
  if (n > ctx->max_fields - ctx->n_fields)
    return wg_error_set(ctx->err, E2BIG, "schema has more than %lld fields",
                        (long long)ctx->max_fields);
  ctx->n_fields += n;
  return 0;
}

/* Charges n copied bytes; shared tables in hostile input could otherwise copy one string many
 * times. */
static int charge(struct schema_ctx *ctx, int64_t n) {
  if ((ctx->bytes_left -= n) < 0)
    return wg_error_set(ctx->err, EPROTO,
                        "schema strings exceed twice the size of the schema (shared tables?)");
  return 0;
}

static const char unit_char[4] = {'s', 'm', 'u', 'n'};

static int int_format(const struct wg_fb_table *t, char *out, struct wg_error *err) {
  int32_t bits;
  bool is_signed;
  WG_RETURN_NOT_OK(wg_fb_i32(t, 0, 0, &bits, err));
  WG_RETURN_NOT_OK(wg_fb_bool(t, 1, false, &is_signed, err));
  const char *f;
  switch (bits) {
  case 8:
    f = is_signed ? "c" : "C";
    break;
  case 16:
    f = is_signed ? "s" : "S";
    break;
  case 32:
    f = is_signed ? "i" : "I";
    break;
  case 64:
    f = is_signed ? "l" : "L";
    break;
  default:
    return wg_error_set(err, EPROTO, "Int type with bitWidth %d", bits);
  }
  strcpy(out, f);
  return 0;
}

static int time_unit(const struct wg_fb_table *t, int field, int16_t def, int16_t *unit,
                     struct wg_error *err) {
  WG_RETURN_NOT_OK(wg_fb_i16(t, field, def, unit, err));
  if (*unit < 0 || *unit > 3) return wg_error_set(err, EPROTO, "time unit %d", *unit);
  return 0;
}

/* Writes the format of a Field's type into fmt (a wg_buf, NUL-terminated). */
static int type_format(uint8_t type_type, const struct wg_fb_table *t, bool present,
                       int64_t n_children, struct wg_buf *fmt, struct wg_error *err) {
  char small[64] = "";
  int16_t unit;
  int32_t a, b, c;
  bool flag;
  if (!present && type_type != WG_FB_TYPE_NULL && type_type != 0)
    return wg_error_set(err, EPROTO, "Field type %u without its type table", type_type);
  switch (type_type) {
  case WG_FB_TYPE_NULL:
    strcpy(small, "n");
    break;
  case WG_FB_TYPE_INT:
    WG_RETURN_NOT_OK(int_format(t, small, err));
    break;
  case WG_FB_TYPE_FLOATING_POINT:
    WG_RETURN_NOT_OK(wg_fb_i16(t, 0, 0, &unit, err));
    if (unit < 0 || unit > 2) return wg_error_set(err, EPROTO, "FloatingPoint precision %d", unit);
    strcpy(small, unit == 0 ? "e" : unit == 1 ? "f" : "g");
    break;
  case WG_FB_TYPE_BINARY:
    strcpy(small, "z");
    break;
  case WG_FB_TYPE_UTF8:
    strcpy(small, "u");
    break;
  case WG_FB_TYPE_BOOL:
    strcpy(small, "b");
    break;
  case WG_FB_TYPE_LARGE_BINARY:
    strcpy(small, "Z");
    break;
  case WG_FB_TYPE_LARGE_UTF8:
    strcpy(small, "U");
    break;
  case WG_FB_TYPE_BINARY_VIEW:
    strcpy(small, "vz");
    break;
  case WG_FB_TYPE_UTF8_VIEW:
    strcpy(small, "vu");
    break;
  case WG_FB_TYPE_DECIMAL:
    WG_RETURN_NOT_OK(wg_fb_i32(t, 0, 0, &a, err));
    WG_RETURN_NOT_OK(wg_fb_i32(t, 1, 0, &b, err));
    WG_RETURN_NOT_OK(wg_fb_i32(t, 2, 128, &c, err));
    if (c != 32 && c != 64 && c != 128 && c != 256)
      return wg_error_set(err, EPROTO, "Decimal bitWidth %d", c);
    if (a <= 0 || a > (c == 32 ? 9 : c == 64 ? 18 : c == 128 ? 38 : 76))
      return wg_error_set(err, EPROTO, "Decimal precision %d for a %d-bit decimal", a, c);
    if (b < -a || b > a) return wg_error_set(err, EPROTO, "Decimal scale %d, precision %d", b, a);
    snprintf(small, sizeof(small), c == 128 ? "d:%d,%d" : "d:%d,%d,%d", a, b, c);
    break;
  case WG_FB_TYPE_DATE:
    WG_RETURN_NOT_OK(wg_fb_i16(t, 0, 1, &unit, err));
    if (unit != 0 && unit != 1) return wg_error_set(err, EPROTO, "Date unit %d", unit);
    strcpy(small, unit == 0 ? "tdD" : "tdm");
    break;
  case WG_FB_TYPE_TIME:
    WG_RETURN_NOT_OK(time_unit(t, 0, 1, &unit, err));
    WG_RETURN_NOT_OK(wg_fb_i32(t, 1, 32, &a, err));
    if (a != (unit <= 1 ? 32 : 64))
      return wg_error_set(err, EPROTO, "Time unit %d with bitWidth %d", unit, a);
    snprintf(small, sizeof(small), "tt%c", unit_char[unit]);
    break;
  case WG_FB_TYPE_TIMESTAMP: {
    struct wg_bytes tz = {0};
    WG_RETURN_NOT_OK(time_unit(t, 0, 0, &unit, err));
    WG_RETURN_NOT_OK(wg_fb_string(t, 1, &flag, &tz, err));
    if (flag && memchr(tz.data, 0, (size_t)tz.size) != NULL)
      return wg_error_set(err, EPROTO, "Timestamp timezone holds a NUL byte");
    snprintf(small, sizeof(small), "ts%c:", unit_char[unit]);
    WG_RETURN_NOT_OK(wg_buf_append(fmt, small, (int64_t)strlen(small)));
    WG_RETURN_NOT_OK(wg_buf_append(fmt, tz.data, flag ? tz.size : 0));
    return wg_buf_append(fmt, "", 1);
  }
  case WG_FB_TYPE_INTERVAL:
    WG_RETURN_NOT_OK(wg_fb_i16(t, 0, 0, &unit, err));
    if (unit < 0 || unit > 2) return wg_error_set(err, EPROTO, "Interval unit %d", unit);
    strcpy(small, unit == 0 ? "tiM" : unit == 1 ? "tiD" : "tin");
    break;
  case WG_FB_TYPE_DURATION:
    WG_RETURN_NOT_OK(time_unit(t, 0, 1, &unit, err));
    snprintf(small, sizeof(small), "tD%c", unit_char[unit]);
    break;
  case WG_FB_TYPE_LIST:
    strcpy(small, "+l");
    break;
  case WG_FB_TYPE_LARGE_LIST:
    strcpy(small, "+L");
    break;
  case WG_FB_TYPE_LIST_VIEW:
    strcpy(small, "+vl");
    break;
  case WG_FB_TYPE_LARGE_LIST_VIEW:
    strcpy(small, "+vL");
    break;
  case WG_FB_TYPE_STRUCT:
    strcpy(small, "+s");
    break;
  case WG_FB_TYPE_RUN_END_ENCODED:
    strcpy(small, "+r");
    break;
  case WG_FB_TYPE_MAP:
    strcpy(small, "+m");
    break;
  case WG_FB_TYPE_FIXED_SIZE_BINARY:
    WG_RETURN_NOT_OK(wg_fb_i32(t, 0, 0, &a, err));
    if (a < 0) return wg_error_set(err, EPROTO, "FixedSizeBinary byteWidth %d", a);
    snprintf(small, sizeof(small), "w:%d", a);
    break;
  case WG_FB_TYPE_FIXED_SIZE_LIST:
    WG_RETURN_NOT_OK(wg_fb_i32(t, 0, 0, &a, err));
    if (a < 0) return wg_error_set(err, EPROTO, "FixedSizeList listSize %d", a);
    snprintf(small, sizeof(small), "+w:%d", a);
    break;
  case WG_FB_TYPE_UNION: {
    int16_t mode;
    struct wg_fb_vector ids;
    WG_RETURN_NOT_OK(wg_fb_i16(t, 0, 0, &mode, err));
    if (mode != 0 && mode != 1) return wg_error_set(err, EPROTO, "Union mode %d", mode);
    WG_RETURN_NOT_OK(wg_fb_vector_field(t, 1, 4, &flag, &ids, err));
    if (flag && ids.length != n_children)
      return wg_error_set(err, EPROTO, "Union with %lld type ids and %lld children",
                          (long long)ids.length, (long long)n_children);
    if (n_children > 128)
      return wg_error_set(err, EPROTO, "Union with %lld children (at most 128)",
                          (long long)n_children);
    WG_RETURN_NOT_OK(wg_buf_append(fmt, mode == 0 ? "+us:" : "+ud:", 4));
    bool seen[128] = {false};
    for (int64_t i = 0; i < n_children; i++) {
      int32_t id = flag ? wg_load_i32(wg_fb_vector_at(&ids, i, 4)) : (int32_t)i;
      if (id < 0 || id > 127 || seen[id])
        return wg_error_set(err, EPROTO, "Union type id %d invalid or repeated", id);
      seen[id] = true;
      snprintf(small, sizeof(small), i ? ",%d" : "%d", id);
      WG_RETURN_NOT_OK(wg_buf_append(fmt, small, (int64_t)strlen(small)));
    }
    return wg_buf_append(fmt, "", 1);
  }
  case 0:
    return wg_error_set(err, EPROTO, "Field without a type");
  default:
    return wg_error_set(err, ENOTSUP, "unknown Field type %u", type_type);
  }
  return wg_buf_append(fmt, small, (int64_t)strlen(small) + 1);
}

/* KeyValue vector -> C Data Interface metadata (NULL when absent or empty). */
static int decode_metadata(struct schema_ctx *ctx, const struct wg_fb_table *t, int field,
                           struct ArrowSchema *s) {
  struct wg_error *err = ctx->err;
  bool present;
  struct wg_fb_vector kvs;
  WG_RETURN_NOT_OK(wg_fb_vector_field(t, field, 4, &present, &kvs, err));
  if (!present || kvs.length == 0) return 0;
  struct wg_buf md;
  wg_buf_init(&md);
  int rc = 0;
  for (int64_t i = 0; i < kvs.length && rc == 0; i++) {
    struct wg_fb_table kv;
    struct wg_bytes k = {(const uint8_t *)"", 0}, v = {(const uint8_t *)"", 0};
    bool hk, hv;
    rc = wg_fb_vector_table(&kvs, i, &kv, err);
    if (rc == 0) rc = wg_fb_string(&kv, 0, &hk, &k, err);
    if (rc == 0) rc = wg_fb_string(&kv, 1, &hv, &v, err);
    if (rc == 0) rc = charge(ctx, 8 + (hk ? k.size : 0) + (hv ? v.size : 0));
    if (rc == 0 && wg_metadata_append(&md, hk ? (const char *)k.data : "", hk ? (int32_t)k.size : 0,
                                      hv ? (const char *)v.data : "", hv ? (int32_t)v.size : 0))
      rc = wg_error_set(err, ENOMEM, "out of memory for custom metadata");
  }
  if (rc == 0 && wg_schema_set_metadata(s, (const char *)md.data) != 0)
    rc = wg_error_set(err, ENOMEM, "out of memory for custom metadata");
  wg_buf_reset(&md);
  return rc;
}

static int decode_field(struct schema_ctx *ctx, const struct wg_fb_table *f,
                        struct ArrowSchema *out, int depth);

static int check_children(const struct ArrowSchema *s, struct wg_error *err) {
  struct wg_arrow_type t;
  WG_RETURN_NOT_OK(wg_arrow_type_parse(s->format, &t, err));
  int want = wg_arrow_type_n_children(&t);
  if (want >= 0 && s->n_children != want)
    return wg_error_set(err, EPROTO, "field '%.64s' of type %.32s has %lld children, needs %d",
                        s->name ? s->name : "", s->format, (long long)s->n_children, want);
  if (t.id == WG_TYPE_MAP) {
    const struct ArrowSchema *e = s->children[0];
    if (strcmp(e->format, "+s") != 0 || e->n_children != 2 || e->dictionary != NULL)
      return wg_error_set(err, EPROTO, "map field '%.64s' needs a struct child of two fields",
                          s->name ? s->name : "");
  }
  if (t.id == WG_TYPE_RUN_END_ENCODED) {
    const char *rf = s->children[0]->format;
    if ((strcmp(rf, "s") != 0 && strcmp(rf, "i") != 0 && strcmp(rf, "l") != 0) ||
        s->children[0]->dictionary != NULL)
      return wg_error_set(err, EPROTO, "run-end encoded field '%.64s' has run ends of type %.16s",
                          s->name ? s->name : "", rf);
  }
  return 0;
}

static int decode_field(struct schema_ctx *ctx, const struct wg_fb_table *f,
                        struct ArrowSchema *out, int depth) {
  struct wg_error *err = ctx->err;
  if (depth > ctx->max_depth)
    return wg_error_set(err, EPROTO, "fields nested deeper than %d levels", ctx->max_depth);
  if (--ctx->fields_left < 0)
    return wg_error_set(err, EPROTO, "schema has more fields than its %s could hold", "bytes");
  bool present, nullable;
  struct wg_bytes name = {(const uint8_t *)"", 0};
  uint8_t type_type;
  struct wg_fb_table type_tbl, dict_tbl;
  bool has_type, has_dict;
  struct wg_fb_vector children;
  WG_RETURN_NOT_OK(wg_fb_string(f, 0, &present, &name, err));
  if (!present) name.size = 0;
  if (memchr(name.data, 0, (size_t)name.size) != NULL)
    return wg_error_set(err, EPROTO, "field name holds a NUL byte");
  if (!wg_utf8_valid(name.data, (size_t)name.size))
    return wg_error_set(err, EPROTO, "field name is not valid UTF-8");
  WG_RETURN_NOT_OK(charge(ctx, name.size + 16));
  WG_RETURN_NOT_OK(wg_fb_bool(f, 1, false, &nullable, err));
  WG_RETURN_NOT_OK(wg_fb_u8(f, 2, 0, &type_type, err));
  WG_RETURN_NOT_OK(wg_fb_table_field(f, 3, &has_type, &type_tbl, err));
  WG_RETURN_NOT_OK(wg_fb_table_field(f, 4, &has_dict, &dict_tbl, err));
  WG_RETURN_NOT_OK(wg_fb_vector_field(f, 5, 4, &present, &children, err));
  if (!present) children.length = 0;
  WG_RETURN_NOT_OK(count_fields(ctx, children.length));

  struct wg_buf fmt;
  wg_buf_init(&fmt);
  int rc = type_format(type_type, &type_tbl, has_type, children.length, &fmt, err);
  if (rc == 0) rc = charge(ctx, fmt.size);
  if (rc != 0) {
    wg_buf_reset(&fmt);
    return rc;
  }
  /* The node holding the value type: the field itself, or its dictionary. */
  struct ArrowSchema *values = out;
  if (has_dict) {
    struct wg_fb_table idx;
    bool has_idx, ordered;
    char idx_fmt[8] = "i";
    rc = wg_fb_table_field(&dict_tbl, 1, &has_idx, &idx, err);
    if (rc == 0 && has_idx) rc = int_format(&idx, idx_fmt, err);
    if (rc == 0) rc = wg_fb_bool(&dict_tbl, 2, false, &ordered, err);
    if (rc == 0) rc = wg_schema_node_init(out, idx_fmt, 0, err);
    if (rc == 0) {
      if (ordered) out->flags |= ARROW_FLAG_DICTIONARY_ORDERED;
      if (wg_schema_alloc_dictionary(out) != 0) rc = wg_error_set(err, ENOMEM, "out of memory");
    }
    if (rc != 0) {
      wg_buf_reset(&fmt);
      wg_schema_release(out);
      return rc;
    }
    values = out->dictionary;
  }
  rc = wg_schema_node_init(values, (const char *)fmt.data, children.length, err);
  wg_buf_reset(&fmt);
  if (rc != 0) {
    wg_schema_release(out);
    return rc;
  }
  if (has_dict) values->flags = ARROW_FLAG_NULLABLE;
  {
    char *n = malloc((size_t)name.size + 1);
    if (n == NULL) goto oom;
    memcpy(n, name.data, (size_t)name.size);
    n[name.size] = '\0';
    rc = wg_schema_set_name(out, n);
    free(n);
    if (rc != 0) goto oom;
  }
  out->flags = (out->flags & ~(int64_t)ARROW_FLAG_NULLABLE) | (nullable ? ARROW_FLAG_NULLABLE : 0);
  for (int64_t i = 0; i < children.length && rc == 0; i++) {
    struct wg_fb_table child;
    rc = wg_fb_vector_table(&children, i, &child, err);
    if (rc == 0) rc = decode_field(ctx, &child, values->children[i], depth + 1);
  }
  if (rc == 0) rc = check_children(values, err);
  if (rc == 0 && type_type == WG_FB_TYPE_MAP) {
    bool sorted = false;
    rc = wg_fb_bool(&type_tbl, 0, false, &sorted, err);
    if (rc == 0 && sorted) values->flags |= ARROW_FLAG_MAP_KEYS_SORTED;
  }
  if (rc == 0) rc = decode_metadata(ctx, f, 6, out);
  if (rc == 0 && has_dict) {
    int64_t id;
    rc = wg_fb_i64(&dict_tbl, 0, 0, &id, err);
    if (rc == 0 && ctx->dict_ids != NULL && wg_buf_append(ctx->dict_ids, &id, 8) != 0)
      rc = wg_error_set(err, ENOMEM, "out of memory");
  }
  if (rc != 0) wg_schema_release(out);
  return rc;
oom:
  wg_schema_release(out);
  return wg_error_set(err, ENOMEM, "out of memory decoding a field");
}

int wg__ipc_decode_schema(const struct wg_fb_table *schema, const struct wg_ipc_limits *limits,
                          struct ArrowSchema *out, struct wg_buf *dict_ids, struct wg_error *err) {
  int16_t endianness;
  bool present;
  struct wg_fb_vector fields;
  WG_RETURN_NOT_OK(wg_fb_i16(schema, 0, 0, &endianness, err));
  if (endianness != 0) return wg_error_set(err, ENOTSUP, "big-endian IPC data is not supported");
  WG_RETURN_NOT_OK(wg_fb_vector_field(schema, 1, 4, &present, &fields, err));
  if (!present) fields.length = 0;
  struct schema_ctx ctx = {schema->size / 4 + 16, limits->max_depth, dict_ids,
                           2 * schema->size + 4096, err, limits->max_fields, 0};
  WG_RETURN_NOT_OK(count_fields(&ctx, fields.length));
  WG_RETURN_NOT_OK(wg_schema_node_init(out, "+s", fields.length, err));
  out->flags = 0;
  int rc = wg_schema_set_name(out, "") != 0 ? wg_error_set(err, ENOMEM, "out of memory") : 0;
  for (int64_t i = 0; i < fields.length && rc == 0; i++) {
    struct wg_fb_table f;
    rc = wg_fb_vector_table(&fields, i, &f, err);
    if (rc == 0) rc = decode_field(&ctx, &f, out->children[i], 1);
    if (rc != 0) wg_error_prefix(err, rc, "schema field %lld", (long long)i);
  }
  if (rc == 0) rc = decode_metadata(&ctx, schema, 2, out);
  if (rc != 0) wg_schema_release(out);
  return rc;
}
