/* wigeon: Arrow array concatenation (see concat.h).
 * Works on "pieces": a node plus an absolute slot range (offset already applied), so that list
 * children, struct children and sliced inputs are all handled the same way. Every output buffer is
 * one aligned allocation owned by a single holder shared by all output nodes. Fixed-width values
 * and variable-length data are copied with one memcpy per piece; only offsets, view buffer
 * indices and shifted dictionary indices are rewritten per slot. */
#include "arrow/concat.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/array.h"
#include "arrow/format.h"

#define MAX_DEPTH 64

struct piece {
  const struct ArrowArray *a;
  int64_t start; /* absolute slot index in a's buffers (a->offset included) */
  int64_t len;
};

struct ctx {
  struct wg_shared *holder;
  struct wg_holder_builder *hb;
  struct wg_error *err;
  int64_t budget, limit; /* bytes of output buffers left, and at the start */
  bool over_budget;      /* an allocation was refused by the budget, not by malloc */
};

enum kind {
  K_NULL,
  K_BOOL,
  K_FIXED,
  K_BIN32,
  K_BIN64,
  K_VIEW,
  K_LIST32,
  K_LIST64,
  K_FSL,
  K_STRUCT,
  K_SPARSE,
  K_DENSE,
  K_LISTVIEW32,
  K_LISTVIEW64,
  K_REE,
  K_UNSUPPORTED,
};

/* Classifies a format string with the type parser (format.c); *width gets the byte width of
 * K_FIXED, the list size of K_FSL. */
static enum kind classify(const char *f, int64_t *width) {
  struct wg_arrow_type t;
  *width = 0;
  if (wg_arrow_type_parse(f, &t, NULL) != 0) return K_UNSUPPORTED;
  switch (t.id) {
  case WG_TYPE_NA:
    return K_NULL;
  case WG_TYPE_BOOL:
    return K_BOOL;
  case WG_TYPE_BINARY:
  case WG_TYPE_STRING:
    return K_BIN32;
  case WG_TYPE_LARGE_BINARY:
  case WG_TYPE_LARGE_STRING:
    return K_BIN64;
  case WG_TYPE_BINARY_VIEW:
  case WG_TYPE_STRING_VIEW:
    return K_VIEW;
  case WG_TYPE_LIST:
  case WG_TYPE_MAP:
    return K_LIST32;
  case WG_TYPE_LARGE_LIST:
    return K_LIST64;
  case WG_TYPE_LIST_VIEW:
    return K_LISTVIEW32;
  case WG_TYPE_LARGE_LIST_VIEW:
    return K_LISTVIEW64;
  case WG_TYPE_FIXED_SIZE_LIST:
    *width = t.fixed_size;
    return K_FSL;
  case WG_TYPE_STRUCT:
    return K_STRUCT;
  case WG_TYPE_SPARSE_UNION:
    return K_SPARSE;
  case WG_TYPE_DENSE_UNION:
    return K_DENSE;
  case WG_TYPE_RUN_END_ENCODED:
    return K_REE;
  default: /* the fixed widths: integers, floats, decimals, dates, times, intervals, w:N */
    if (t.bit_width <= 0 || t.bit_width % 8 != 0) return K_UNSUPPORTED;
    *width = t.bit_width / 8;
    return K_FIXED;
  }
}

/* An aligned, owned buffer of `size` bytes whose padding up to 64 bytes is zeroed (the IPC encoder
 * sends padding). zero: clear it all (bitmaps). */
static void *alloc_buf(struct ctx *c, int64_t size, bool zero) {
  if (size < 0 || size > c->budget) {
    c->over_budget = true;
    return NULL;
  }
  c->budget -= size;
  int64_t cap = (size + 63) & ~(int64_t)63;
  if (cap == 0) cap = 64;
  uint8_t *p = aligned_alloc(64, (size_t)cap);
  if (p == NULL) return NULL;
  if (zero)
    memset(p, 0, (size_t)cap);
  else
    memset(p + size, 0, (size_t)(cap - size));
  if (wg_holder_builder_add_alloc(c->hb, p) != 0) return NULL; /* frees p */
  return p;
}

static int oom(struct ctx *c, const char *what, int64_t size) {
  if (c->over_budget)
    return wg_error_set(c->err, EPROTO, "concat: %s of %lld bytes is over the %lld byte limit",
                        what, (long long)size, (long long)c->limit);
  return wg_error_set(c->err, ENOMEM, "concat: out of memory for %s (%lld bytes)", what,
                      (long long)size);
}

static inline void set_bit(uint8_t *bits, int64_t i) {
  bits[i >> 3] |= (uint8_t)(1u << (i & 7));
}

/* Copies len bits; dst must be zero in the destination range's partial bytes. */
static void copy_bits(uint8_t *dst, int64_t doff, const uint8_t *src, int64_t soff, int64_t len) {
  while (len > 0 && (doff & 7) != 0) {
    if (wg_bit_get(src, soff)) set_bit(dst, doff);
    doff++, soff++, len--;
  }
  int64_t nbytes = len >> 3;
  uint8_t *d = dst + (doff >> 3);
  const uint8_t *s = src + (soff >> 3);
  int shift = (int)(soff & 7);
  if (shift == 0) {
    if (nbytes > 0) memcpy(d, s, (size_t)nbytes);
  } else {
    for (int64_t i = 0; i < nbytes; i++)
      d[i] = (uint8_t)((s[i] >> shift) | (s[i + 1] << (8 - shift)));
  }
  doff += nbytes * 8, soff += nbytes * 8, len -= nbytes * 8;
  for (; len > 0; doff++, soff++, len--) {
    if (wg_bit_get(src, soff)) set_bit(dst, doff);
  }
}

static void set_bits(uint8_t *dst, int64_t doff, int64_t len) {
  while (len > 0 && (doff & 7) != 0)
    set_bit(dst, doff++), len--;
  if (len >= 8) memset(dst + (doff >> 3), 0xff, (size_t)(len >> 3));
  doff += (len >> 3) * 8, len &= 7;
  while (len-- > 0)
    set_bit(dst, doff++);
}

static int64_t piece_nulls(const struct piece *p) {
  const struct ArrowArray *a = p->a;
  if (a->n_buffers < 1 || a->buffers[0] == NULL || a->null_count == 0 || p->len == 0) return 0;
  if (a->null_count > 0 && p->start == a->offset && p->len == a->length) return a->null_count;
  return p->len - wg_bitmap_count_set(a->buffers[0], p->start, p->len);
}

/* Concatenates the validity bitmaps into buffers[0] of out (NULL when no nulls). */
static int concat_validity(struct ctx *c, const struct piece *ps, int64_t n, int64_t total,
                           struct ArrowArray *out) {
  int64_t nulls = 0;
  for (int64_t i = 0; i < n; i++)
    nulls += piece_nulls(&ps[i]);
  out->null_count = nulls;
  out->buffers[0] = NULL;
  if (nulls == 0) return 0;
  uint8_t *bits = alloc_buf(c, (total + 7) / 8, true);
  if (bits == NULL) return oom(c, "a validity bitmap", (total + 7) / 8);
  int64_t pos = 0;
  for (int64_t i = 0; i < n; i++) {
    const struct ArrowArray *a = ps[i].a;
    if (a->buffers[0] == NULL || a->null_count == 0)
      set_bits(bits, pos, ps[i].len);
    else
      copy_bits(bits, pos, a->buffers[0], ps[i].start, ps[i].len);
    pos += ps[i].len;
  }
  out->buffers[0] = bits;
  return 0;
}

/* Signed integer i of `width` bytes (2, 4 or 8) in buf. */
static int64_t load_int(const void *buf, int64_t i, int64_t width) {
  const uint8_t *p = (const uint8_t *)buf + i * width;
  if (width == 2) {
    int16_t v;
    memcpy(&v, p, 2);
    return v;
  }
  if (width == 4) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
  }
  int64_t v;
  memcpy(&v, p, 8);
  return v;
}

static void store_int(void *buf, int64_t i, int64_t width, int64_t v) {
  uint8_t *p = (uint8_t *)buf + i * width;
  if (width == 2) {
    int16_t x = (int16_t)v;
    memcpy(p, &x, 2);
  } else if (width == 4) {
    int32_t x = (int32_t)v;
    memcpy(p, &x, 4);
  } else {
    memcpy(p, &v, 8);
  }
}

/* Rebases the offsets of every piece into out_offsets (total + 1 entries) and fills ranges[i]
 * with the [begin, end) range each piece spans in its values (data bytes or child slots). */
static int concat_offsets(struct ctx *c, const struct piece *ps, int64_t n, bool wide,
                          void *out_offsets, int64_t *ranges) {
  int64_t pos = 0, cur = 0;
  wg_offset_store(out_offsets, 0, 0, wide);
  for (int64_t i = 0; i < n; i++) {
    const void *in = ps[i].a->buffers[1];
    if (ps[i].len == 0) {
      ranges[2 * i] = ranges[2 * i + 1] = 0;
      continue;
    }
    if (in == NULL) return wg_error_set(c->err, EINVAL, "concat: offsets buffer is NULL");
    int64_t base = wg_offset_load(in, ps[i].start, wide);
    int64_t end = wg_offset_load(in, ps[i].start + ps[i].len, wide);
    if (base < 0 || end < base)
      return wg_error_set(c->err, EINVAL, "concat: offsets %lld..%lld out of order",
                          (long long)base, (long long)end);
    ranges[2 * i] = base;
    ranges[2 * i + 1] = end;
    for (int64_t j = 1; j <= ps[i].len; j++) {
      int64_t o = wg_offset_load(in, ps[i].start + j, wide);
      if (o < base || o > end)
        return wg_error_set(c->err, EINVAL, "concat: offset %lld outside %lld..%lld", (long long)o,
                            (long long)base, (long long)end);
      wg_offset_store(out_offsets, pos + j, cur + (o - base), wide);
    }
    pos += ps[i].len;
    cur += end - base;
    if (!wide && cur > INT32_MAX)
      return wg_error_set(c->err, EOVERFLOW, "concat: %lld values overflow 32-bit offsets",
                          (long long)cur);
  }
  return 0;
}

static int concat_node(struct ctx *c, const struct ArrowSchema *schema, const struct piece *ps,
                       int64_t n, struct ArrowArray *out, int depth);

/* Concatenates child `k` of every piece, each restricted to ranges[2i..2i+1] (child-relative). */
static int concat_child(struct ctx *c, const struct ArrowSchema *schema, const struct piece *ps,
                        int64_t n, int64_t k, const int64_t *ranges, struct ArrowArray *out,
                        int depth) {
  struct piece *cp = malloc((size_t)(n ? n : 1) * sizeof(*cp));
  if (cp == NULL) return oom(c, "child pieces", n * (int64_t)sizeof(*cp));
  for (int64_t i = 0; i < n; i++) {
    const struct ArrowArray *child = ps[i].a->children[k];
    cp[i].a = child;
    cp[i].start = child->offset + ranges[2 * i];
    cp[i].len = ranges[2 * i + 1] - ranges[2 * i];
  }
  int rc = concat_node(c, schema->children[k], cp, n, out, depth + 1);
  free(cp);
  return rc;
}

/* Content equality of two whole dictionaries, for the layouts dictionaries have in practice
 * (strings, binary, fixed widths); anything else compares unequal, which is always safe. */
static bool dict_equal(const struct ArrowSchema *schema, const struct ArrowArray *a,
                       const struct ArrowArray *b) {
  if (a == b) return true;
  if (a->length != b->length) return false;
  int64_t width;
  enum kind k = classify(schema->format, &width);
  if (schema->dictionary != NULL || (k != K_FIXED && k != K_BIN32 && k != K_BIN64)) return false;
  bool wide = k == K_BIN64;
  for (int64_t i = 0; i < a->length; i++) {
    int64_t ia = a->offset + i, ib = b->offset + i;
    bool va = a->buffers[0] == NULL || a->null_count == 0 || wg_bit_get(a->buffers[0], ia);
    bool vb = b->buffers[0] == NULL || b->null_count == 0 || wg_bit_get(b->buffers[0], ib);
    if (va != vb) return false;
    if (!va) continue;
    if (k == K_FIXED) {
      if (memcmp((const uint8_t *)a->buffers[1] + ia * width,
                 (const uint8_t *)b->buffers[1] + ib * width, (size_t)width) != 0)
        return false;
    } else {
      int64_t a0 = wg_offset_load(a->buffers[1], ia, wide);
      int64_t a1 = wg_offset_load(a->buffers[1], ia + 1, wide);
      int64_t b0 = wg_offset_load(b->buffers[1], ib, wide);
      int64_t b1 = wg_offset_load(b->buffers[1], ib + 1, wide);
      if (a1 - a0 != b1 - b0) return false;
      if (a1 > a0 && memcmp((const uint8_t *)a->buffers[2] + a0,
                            (const uint8_t *)b->buffers[2] + b0, (size_t)(a1 - a0)) != 0)
        return false;
    }
  }
  return true;
}

static int concat_dictionary(struct ctx *c, const struct ArrowSchema *schema,
                             const struct piece *ps, int64_t n, int64_t total,
                             struct ArrowArray *out, int depth) {
  int64_t width;
  const char *f = schema->format;
  if (classify(f, &width) != K_FIXED || strlen(f) != 1 || strchr("cCsSiIlL", f[0]) == NULL)
    return wg_error_set(c->err, EINVAL, "concat: dictionary index format \"%s\"", f);
  bool is_signed = f[0] == 'c' || f[0] == 's' || f[0] == 'i' || f[0] == 'l';
  for (int64_t i = 0; i < n; i++) {
    if (ps[i].a->dictionary == NULL)
      return wg_error_set(c->err, EINVAL, "concat: dictionary-encoded array without dictionary");
  }
  bool same = true;
  for (int64_t i = 1; i < n && same; i++)
    same = dict_equal(schema->dictionary, ps[0].a->dictionary, ps[i].a->dictionary);

  WG_RETURN_NOT_OK(wg_array_node_init(out, 2, 0, c->holder));
  out->length = total;
  WG_RETURN_NOT_OK(concat_validity(c, ps, n, total, out));
  uint8_t *idx = alloc_buf(c, total * width, false);
  if (idx == NULL) return oom(c, "dictionary indices", total * width);
  out->buffers[1] = idx;
  if (wg_array_alloc_dictionary(out) != 0) return oom(c, "a dictionary", 0);

  /* The dictionary: the first one alone when all are equal, else all of them in order. */
  int64_t nd = same ? (n > 0 ? 1 : 0) : n;
  struct piece *dp = malloc((size_t)(nd ? nd : 1) * sizeof(*dp));
  if (dp == NULL) return oom(c, "dictionary pieces", nd);
  for (int64_t i = 0; i < nd; i++) {
    dp[i].a = ps[i].a->dictionary;
    dp[i].start = dp[i].a->offset;
    dp[i].len = dp[i].a->length;
  }
  int rc = concat_node(c, schema->dictionary, dp, nd, out->dictionary, depth + 1);
  free(dp);
  if (rc != 0) return rc;

  int64_t max = is_signed ? (int64_t)((UINT64_C(1) << (width * 8 - 1)) - 1)
                          : (width == 8 ? INT64_MAX : (int64_t)((UINT64_C(1) << (width * 8)) - 1));
  if (!same && out->dictionary->length > 0 && out->dictionary->length - 1 > max)
    return wg_error_set(c->err, EOVERFLOW,
                        "concat: %lld dictionary values do not fit indices of format \"%s\"",
                        (long long)out->dictionary->length, f);
  int64_t pos = 0, shift = 0;
  for (int64_t i = 0; i < n; i++) {
    const struct piece *p = &ps[i];
    if (p->len > 0) {
      const uint8_t *src = (const uint8_t *)p->a->buffers[1] + p->start * width;
      if (same || shift == 0) {
        memcpy(idx + pos * width, src, (size_t)(p->len * width));
      } else {
        const uint8_t *valid = p->a->null_count != 0 ? p->a->buffers[0] : NULL;
        for (int64_t j = 0; j < p->len; j++) {
          uint8_t *d = idx + (pos + j) * width;
          if (valid != NULL && !wg_bit_get(valid, p->start + j)) {
            memset(d, 0, (size_t)width);
            continue;
          }
          switch (width) {
          case 1: {
            int64_t v = (is_signed ? (int64_t)(int8_t)src[j] : (int64_t)src[j]) + shift;
            d[0] = (uint8_t)v;
            break;
          }
          case 2: {
            uint16_t u;
            memcpy(&u, src + j * 2, 2);
            int64_t v = (is_signed ? (int64_t)(int16_t)u : (int64_t)u) + shift;
            u = (uint16_t)v;
            memcpy(d, &u, 2);
            break;
          }
          case 4: {
            uint32_t u;
            memcpy(&u, src + j * 4, 4);
            int64_t v = (is_signed ? (int64_t)(int32_t)u : (int64_t)u) + shift;
            u = (uint32_t)v;
            memcpy(d, &u, 4);
            break;
          }
          default: {
            int64_t v;
            memcpy(&v, src + j * 8, 8);
            v += shift;
            memcpy(d, &v, 8);
            break;
          }
          }
        }
      }
    }
    pos += p->len;
    if (!same) shift += p->a->dictionary->length;
  }
  return 0;
}

/* Maps union type ids to child indices from a "+us:..."/"+ud:..." format. */
static int union_ids(struct ctx *c, const char *f, int64_t n_children, int8_t map[128]) {
  struct wg_arrow_type t;
  memset(map, -1, 128);
  if (wg_arrow_type_parse(f, &t, NULL) != 0 || t.n_type_ids < n_children)
    return wg_error_set(c->err, EINVAL, "concat: union format \"%s\"", f);
  for (int64_t k = 0; k < n_children; k++)
    map[t.type_ids[k]] = (int8_t)k;
  return 0;
}

/* List views: each piece's child slots between its lowest offset and highest end are copied
 * (slots between them that no view uses too: views may overlap and come in any order); offsets
 * move by where that range lands, sizes are copied. Empty views point at the piece's base. */
static int concat_list_views(struct ctx *c, const struct ArrowSchema *schema,
                             const struct piece *ps, int64_t n, int64_t total, bool wide,
                             struct ArrowArray *out, int depth) {
  int64_t w = wide ? 8 : 4;
  void *offs = alloc_buf(c, total * w, false), *sizes = alloc_buf(c, total * w, false);
  int64_t *ranges = malloc((size_t)(n ? n : 1) * 2 * sizeof(int64_t));
  if (offs == NULL || sizes == NULL || ranges == NULL) {
    free(ranges);
    return oom(c, "list view offsets", 2 * total * w);
  }
  out->buffers[1] = offs;
  out->buffers[2] = sizes;
  int rc = 0;
  int64_t pos = 0, base = 0;
  for (int64_t i = 0; i < n && rc == 0; i++) {
    const struct ArrowArray *a = ps[i].a;
    int64_t child_len = a->children[0]->length, lo = INT64_MAX, hi = 0;
    for (int64_t j = ps[i].start; j < ps[i].start + ps[i].len; j++) {
      int64_t o = wg_offset_load(a->buffers[1], j, wide);
      int64_t z = wg_offset_load(a->buffers[2], j, wide);
      if (z == 0) continue;
      if (o < 0 || z < 0 || o > child_len - z) {
        rc = wg_error_set(c->err, EINVAL, "concat: list view %lld+%lld outside a child of %lld",
                          (long long)o, (long long)z, (long long)child_len);
        break;
      }
      if (o < lo) lo = o;
      if (o + z > hi) hi = o + z;
    }
    if (lo > hi) lo = hi = 0; /* no view holds a value */
    ranges[2 * i] = lo;
    ranges[2 * i + 1] = hi;
    if (!wide && base + (hi - lo) > INT32_MAX)
      rc = wg_error_set(c->err, EOVERFLOW, "concat: list view offsets overflow 32 bits");
    for (int64_t j = 0; j < ps[i].len && rc == 0; j++) {
      int64_t o = wg_offset_load(a->buffers[1], ps[i].start + j, wide);
      int64_t z = wg_offset_load(a->buffers[2], ps[i].start + j, wide);
      wg_offset_store(offs, pos + j, z == 0 ? base : o - lo + base, wide);
      wg_offset_store(sizes, pos + j, z, wide);
    }
    pos += ps[i].len;
    base += hi - lo;
  }
  if (rc == 0) rc = concat_child(c, schema, ps, n, 0, ranges, out->children[0], depth);
  free(ranges);
  return rc;
}

/* Run-end encoded: the runs each piece's slots fall in, their ends cut to the piece and moved to
 * where it lands; the values of those runs are copied. */
static int concat_run_ends(struct ctx *c, const struct ArrowSchema *schema,
                           const struct piece *ps, int64_t n, int64_t total,
                           struct ArrowArray *out, int depth) {
  const char *rf = schema->children[0]->format;
  int64_t w = strcmp(rf, "s") == 0 ? 2 : strcmp(rf, "i") == 0 ? 4 : strcmp(rf, "l") == 0 ? 8 : 0;
  if (w == 0 || schema->children[0]->dictionary != NULL)
    return wg_error_set(c->err, EINVAL, "concat: run ends of format \"%s\"", rf);
  int64_t max_end = w == 2 ? INT16_MAX : w == 4 ? INT32_MAX : INT64_MAX;
  if (total > max_end)
    return wg_error_set(c->err, EOVERFLOW, "concat: %lld slots overflow run ends \"%s\"",
                        (long long)total, rf);
  out->null_count = 0;
  int64_t *ranges = malloc((size_t)(n ? n : 1) * 2 * sizeof(int64_t));
  if (ranges == NULL) return oom(c, "ranges", n * 16);
  int64_t runs = 0;
  int rc = 0;
  for (int64_t i = 0; i < n && rc == 0; i++) { /* ranges: the runs of each piece */
    const struct ArrowArray *re = ps[i].a->children[0];
    if (re->n_buffers != 2 || (re->length > 0 && re->buffers[1] == NULL)) {
      rc = wg_error_set(c->err, EINVAL, "concat: run ends array with %lld buffers",
                        (long long)re->n_buffers);
      break;
    }
    int64_t first = ps[i].start, last = ps[i].start + ps[i].len; /* logical slots */
    int64_t lo = 0, hi = re->length; /* first run whose end is past `first` */
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if (load_int(re->buffers[1], re->offset + mid, w) > first)
        hi = mid;
      else
        lo = mid + 1;
    }
    int64_t r0 = lo, r1 = lo;
    while (ps[i].len > 0 && r1 < re->length &&
           load_int(re->buffers[1], re->offset + r1, w) < last)
      r1++;
    if (ps[i].len > 0 && r1 == re->length) {
      rc = wg_error_set(c->err, EINVAL, "concat: run ends stop before slot %lld", (long long)last);
      break;
    }
    ranges[2 * i] = r0;
    ranges[2 * i + 1] = ps[i].len > 0 ? r1 + 1 : r0;
    runs += ranges[2 * i + 1] - ranges[2 * i];
  }
  struct ArrowArray *ends = out->children[0];
  if (rc == 0 && wg_array_node_init(ends, 2, 0, c->holder) != 0) rc = oom(c, "run ends", 0);
  uint8_t *e = rc == 0 ? alloc_buf(c, runs * w, false) : NULL;
  if (rc == 0 && e == NULL) rc = oom(c, "run ends", runs * w);
  if (rc == 0) {
    ends->length = runs;
    ends->buffers[1] = e;
    int64_t pos = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
      const struct ArrowArray *re = ps[i].a->children[0];
      for (int64_t k = ranges[2 * i]; k < ranges[2 * i + 1]; k++, r++) {
        int64_t end = load_int(re->buffers[1], re->offset + k, w);
        if (end > ps[i].start + ps[i].len) end = ps[i].start + ps[i].len;
        store_int(e, r, w, end - ps[i].start + pos);
      }
      pos += ps[i].len;
    }
    rc = concat_child(c, schema, ps, n, 1, ranges, out->children[1], depth);
  }
  free(ranges);
  return rc;
}

/* Booleans and fixed widths: the validity, then one copy (or bit copy) per piece. */
static int concat_fixed(struct ctx *c, const struct ArrowSchema *schema,
                        const struct piece *ps, int64_t n, int64_t total, enum kind k,
                        int64_t width, struct ArrowArray *out, int depth) {
  WG_RETURN_NOT_OK(concat_validity(c, ps, n, total, out));
  int64_t size = k == K_BOOL ? (total + 7) / 8 : total * width;
  uint8_t *v = alloc_buf(c, size, k == K_BOOL);
  if (v == NULL) return oom(c, "values", size);
  int64_t pos = 0;
  for (int64_t i = 0; i < n; i++) {
    if (ps[i].len > 0) {
      const uint8_t *src = ps[i].a->buffers[1];
      if (src == NULL) return wg_error_set(c->err, EINVAL, "concat: values buffer is NULL");
      if (k == K_BOOL)
        copy_bits(v, pos, src, ps[i].start, ps[i].len);
      else
        memcpy(v + pos * width, src + ps[i].start * width, (size_t)(ps[i].len * width));
    }
    pos += ps[i].len;
  }
  out->buffers[1] = v;
  return 0;
}

/* Binary, strings and lists: offsets rebased, then the data bytes or the child ranges. */
static int concat_offsets_node(struct ctx *c, const struct ArrowSchema *schema,
                               const struct piece *ps, int64_t n, int64_t total, enum kind k,
                               int64_t width, struct ArrowArray *out, int depth) {
  bool wide = k == K_BIN64 || k == K_LIST64;
  WG_RETURN_NOT_OK(concat_validity(c, ps, n, total, out));
  int64_t osize = (total + 1) * (wide ? 8 : 4);
  void *offsets = alloc_buf(c, osize, false);
  int64_t *ranges = malloc((size_t)(n ? n : 1) * 2 * sizeof(int64_t));
  if (offsets == NULL || ranges == NULL) {
    free(ranges);
    return oom(c, "offsets", osize);
  }
  out->buffers[1] = offsets;
  int rc = concat_offsets(c, ps, n, wide, offsets, ranges);
  if (rc == 0 && (k == K_BIN32 || k == K_BIN64)) {
    int64_t bytes = 0;
    for (int64_t i = 0; i < n; i++)
      bytes += ranges[2 * i + 1] - ranges[2 * i];
    uint8_t *data = alloc_buf(c, bytes, false);
    if (data == NULL) rc = oom(c, "string data", bytes);
    int64_t pos = 0;
    for (int64_t i = 0; i < n && rc == 0; i++) {
      int64_t len = ranges[2 * i + 1] - ranges[2 * i];
      if (len > 0) memcpy(data + pos, (const uint8_t *)ps[i].a->buffers[2] + ranges[2 * i], len);
      pos += len;
    }
    out->buffers[2] = data;
  } else if (rc == 0) {
    rc = concat_child(c, schema, ps, n, 0, ranges, out->children[0], depth);
  }
  free(ranges);
  return rc;
}

/* Views: every piece's data buffers copied, buffer indices of long views moved. */
static int concat_views(struct ctx *c, const struct ArrowSchema *schema,
                        const struct piece *ps, int64_t n, int64_t total, enum kind k,
                        int64_t width, struct ArrowArray *out, int depth) {
  int64_t n_buffers = out->n_buffers, n_var = n_buffers - 3; /* 3 + the data buffers */
  WG_RETURN_NOT_OK(concat_validity(c, ps, n, total, out));
  uint8_t *views = alloc_buf(c, total * 16, false);
  int64_t *sizes = alloc_buf(c, n_var * 8, false);
  if (views == NULL || sizes == NULL) return oom(c, "views", total * 16);
  out->buffers[1] = views;
  out->buffers[n_buffers - 1] = sizes;
  int64_t pos = 0, base = 0;
  for (int64_t i = 0; i < n; i++) {
    const struct ArrowArray *a = ps[i].a;
    int64_t nv = a->n_buffers - 3;
    const uint8_t *in_sizes = a->buffers[a->n_buffers - 1];
    for (int64_t b = 0; b < nv; b++) {
      int64_t sz;
      memcpy(&sz, in_sizes + b * 8, 8);
      if (sz < 0)
        return wg_error_set(c->err, EINVAL, "concat: view buffer size %lld", (long long)sz);
      uint8_t *copy = alloc_buf(c, sz, false);
      if (copy == NULL) return oom(c, "view data", sz);
      if (sz > 0) memcpy(copy, a->buffers[2 + b], (size_t)sz);
      out->buffers[2 + base + b] = copy;
      sizes[base + b] = sz;
    }
    if (ps[i].len > 0) {
      uint8_t *d = views + pos * 16;
      memcpy(d, (const uint8_t *)a->buffers[1] + ps[i].start * 16, (size_t)(ps[i].len * 16));
      if (base > 0) {
        for (int64_t j = 0; j < ps[i].len; j++) {
          int32_t len, idx;
          memcpy(&len, d + j * 16, 4);
          if (len <= 12) continue;
          memcpy(&idx, d + j * 16 + 8, 4);
          idx += (int32_t)base;
          memcpy(d + j * 16 + 8, &idx, 4);
        }
      }
    }
    pos += ps[i].len;
    base += nv;
  }
  return 0;
}

/* Structs and fixed size lists: every child over the parents' slots (times the list size). */
static int concat_nested(struct ctx *c, const struct ArrowSchema *schema,
                         const struct piece *ps, int64_t n, int64_t total, enum kind k,
                         int64_t width, struct ArrowArray *out, int depth) {
  WG_RETURN_NOT_OK(concat_validity(c, ps, n, total, out));
  int64_t *ranges = malloc((size_t)(n ? n : 1) * 2 * sizeof(int64_t));
  if (ranges == NULL) return oom(c, "ranges", n * 16);
  int64_t per = k == K_FSL ? width : 1;
  int rc = 0;
  for (int64_t ch = 0; ch < schema->n_children && rc == 0; ch++) {
    /* children are indexed by the parent's logical slot (parent offset included) */
    for (int64_t i = 0; i < n; i++) {
      ranges[2 * i] = ps[i].start * per;
      ranges[2 * i + 1] = ranges[2 * i] + ps[i].len * per;
    }
    rc = concat_child(c, schema, ps, n, ch, ranges, out->children[ch], depth);
  }
  free(ranges);
  return rc;
}

/* Unions: type ids copied; sparse children over the same slots, dense whole children with
 * offsets moved by the child lengths before them. */
static int concat_union(struct ctx *c, const struct ArrowSchema *schema,
                        const struct piece *ps, int64_t n, int64_t total, enum kind k,
                        int64_t width, struct ArrowArray *out, int depth) {
  int8_t map[128];
  WG_RETURN_NOT_OK(union_ids(c, schema->format, schema->n_children, map));
  out->null_count = 0;
  uint8_t *ids = alloc_buf(c, total, false);
  if (ids == NULL) return oom(c, "union type ids", total);
  out->buffers[0] = ids;
  int64_t pos = 0;
  for (int64_t i = 0; i < n; i++) {
    if (ps[i].len > 0)
      memcpy(ids + pos, (const uint8_t *)ps[i].a->buffers[0] + ps[i].start, (size_t)ps[i].len);
    pos += ps[i].len;
  }
  int64_t nc = schema->n_children;
  int64_t *ranges = malloc((size_t)(n ? n : 1) * 2 * sizeof(int64_t));
  if (ranges == NULL) return oom(c, "ranges", n * 16);
  int rc = 0;
  if (k == K_SPARSE) {
    for (int64_t ch = 0; ch < nc && rc == 0; ch++) {
      for (int64_t i = 0; i < n; i++) {
        ranges[2 * i] = ps[i].start;
        ranges[2 * i + 1] = ps[i].start + ps[i].len;
      }
      rc = concat_child(c, schema, ps, n, ch, ranges, out->children[ch], depth);
    }
    free(ranges);
    return rc;
  }
  /* Dense: whole children are copied; offsets shift by the child lengths before them. */
  int32_t *offs = alloc_buf(c, total * 4, false);
  int64_t *base = calloc((size_t)(nc ? nc : 1), sizeof(int64_t));
  if (offs == NULL || base == NULL) rc = oom(c, "union offsets", total * 4);
  out->buffers[1] = offs;
  pos = 0;
  for (int64_t i = 0; i < n && rc == 0; i++) {
    const uint8_t *in_ids = (const uint8_t *)ps[i].a->buffers[0] + ps[i].start;
    const uint8_t *in_offs = (const uint8_t *)ps[i].a->buffers[1] + ps[i].start * 4;
    for (int64_t j = 0; j < ps[i].len; j++) {
      int8_t id = (int8_t)in_ids[j];
      int32_t o;
      memcpy(&o, in_offs + j * 4, 4);
      int8_t ch = id >= 0 ? map[id] : -1;
      if (ch < 0 || o < 0 || o >= ps[i].a->children[ch]->length) {
        rc = wg_error_set(c->err, EINVAL, "concat: dense union slot with type id %d offset %d",
                          id, o);
        break;
      }
      int64_t v = o + base[ch];
      if (v > INT32_MAX) {
        rc = wg_error_set(c->err, EOVERFLOW, "concat: dense union offset overflow");
        break;
      }
      int32_t w = (int32_t)v;
      memcpy(offs + pos + j, &w, 4);
    }
    pos += ps[i].len;
    for (int64_t ch = 0; ch < nc; ch++)
      base[ch] += ps[i].a->children[ch]->length;
  }
  for (int64_t ch = 0; ch < nc && rc == 0; ch++) {
    for (int64_t i = 0; i < n; i++) {
      ranges[2 * i] = 0;
      ranges[2 * i + 1] = ps[i].a->children[ch]->length;
    }
    rc = concat_child(c, schema, ps, n, ch, ranges, out->children[ch], depth);
  }
  free(base);
  free(ranges);
  return rc;
}

static int concat_node(struct ctx *c, const struct ArrowSchema *schema, const struct piece *ps,
                       int64_t n, struct ArrowArray *out, int depth) {
  memset(out, 0, sizeof(*out));
  if (depth > MAX_DEPTH) return wg_error_set(c->err, EINVAL, "concat: nesting deeper than 64");
  int64_t total = 0;
  for (int64_t i = 0; i < n; i++) {
    const struct ArrowArray *a = ps[i].a;
    if (a == NULL || ps[i].len < 0 || ps[i].start < a->offset ||
        ps[i].start + ps[i].len > a->offset + a->length)
      return wg_error_set(c->err, EINVAL, "concat: slots %lld+%lld outside array of %lld+%lld",
                          (long long)ps[i].start, (long long)ps[i].len,
                          (long long)(a ? a->offset : 0), (long long)(a ? a->length : 0));
    if (a->n_children != schema->n_children)
      return wg_error_set(c->err, EINVAL, "concat: array has %lld children, schema \"%s\" %lld",
                          (long long)a->n_children, schema->format, (long long)schema->n_children);
    total += ps[i].len;
  }
  if (schema->dictionary != NULL) return concat_dictionary(c, schema, ps, n, total, out, depth);

  int64_t width;
  enum kind k = classify(schema->format, &width);
  static const int64_t want_buffers[] = {
      [K_NULL] = 0,   [K_BOOL] = 2,   [K_FIXED] = 2,      [K_BIN32] = 3, [K_BIN64] = 3,
      [K_VIEW] = 3,   [K_LIST32] = 2, [K_LIST64] = 2,     [K_FSL] = 1,   [K_STRUCT] = 1,
      [K_SPARSE] = 1, [K_DENSE] = 2,  [K_LISTVIEW32] = 3, [K_LISTVIEW64] = 3, [K_REE] = 0,
      [K_UNSUPPORTED] = 0};
  if (k == K_UNSUPPORTED)
    return wg_error_set(c->err, ENOTSUP, "concat: unsupported format \"%s\"", schema->format);
  for (int64_t i = 0; i < n; i++) {
    int64_t nb = ps[i].a->n_buffers;
    if (k == K_VIEW ? nb < 3 : nb != want_buffers[k])
      return wg_error_set(c->err, EINVAL, "concat: format \"%s\" array has %lld buffers",
                          schema->format, (long long)nb);
  }

  int64_t n_buffers = want_buffers[k];
  int64_t n_var = 0; /* view data buffers */
  if (k == K_VIEW) {
    for (int64_t i = 0; i < n; i++)
      n_var += ps[i].a->n_buffers - 3;
    n_buffers = 3 + n_var;
  }
  WG_RETURN_NOT_OK(wg_array_node_init(out, n_buffers, schema->n_children, c->holder) == 0
                       ? 0
                       : oom(c, "an array node", 0));
  out->length = total;

  switch (k) {
  case K_NULL:
    out->null_count = total;
    return 0;
  case K_BOOL:
  case K_FIXED:
    return concat_fixed(c, schema, ps, n, total, k, width, out, depth);
  case K_BIN32:
  case K_BIN64:
  case K_LIST32:
  case K_LIST64:
    return concat_offsets_node(c, schema, ps, n, total, k, width, out, depth);
  case K_VIEW:
    return concat_views(c, schema, ps, n, total, k, width, out, depth);
  case K_FSL:
  case K_STRUCT:
    return concat_nested(c, schema, ps, n, total, k, width, out, depth);
  case K_SPARSE:
  case K_DENSE:
    return concat_union(c, schema, ps, n, total, k, width, out, depth);
  case K_LISTVIEW32:
  case K_LISTVIEW64:
    WG_RETURN_NOT_OK(concat_validity(c, ps, n, total, out));
    return concat_list_views(c, schema, ps, n, total, k == K_LISTVIEW64, out, depth);
  case K_REE:
    return concat_run_ends(c, schema, ps, n, total, out, depth);
  default:
    return wg_error_set(c->err, ENOTSUP, "concat: unsupported format \"%s\"", schema->format);
  }
}

int wg_arrow_concat(const struct ArrowSchema *schema, struct ArrowArray *arrays, int64_t n,
                    struct ArrowArray *out, struct wg_error *err) {
  return wg__arrow_concat_limited(schema, arrays, n, INT64_MAX, NULL, out, err);
}

int wg__arrow_concat_limited(const struct ArrowSchema *schema, struct ArrowArray *arrays,
                             int64_t n, int64_t budget, int64_t *spent, struct ArrowArray *out,
                             struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  int rc = 0;
  struct piece *ps = NULL;
  struct ctx c = {NULL, NULL, err, budget < 0 ? 0 : budget, budget < 0 ? 0 : budget, false};
  if (schema == NULL || n < 0 || (n > 0 && arrays == NULL)) {
    rc = wg_error_set(err, EINVAL, "concat: NULL schema or arrays");
    goto done;
  }
  for (int64_t i = 0; i < n; i++) {
    if (arrays[i].release == NULL) {
      rc = wg_error_set(err, EINVAL, "concat: input %lld is released", (long long)i);
      goto done;
    }
  }
  ps = malloc((size_t)(n ? n : 1) * sizeof(*ps));
  c.holder = wg_holder_create(&c.hb);
  if (ps == NULL || c.holder == NULL) {
    rc = wg_error_set(err, ENOMEM, "concat: out of memory");
    goto done;
  }
  for (int64_t i = 0; i < n; i++) {
    ps[i].a = &arrays[i];
    ps[i].start = arrays[i].offset;
    ps[i].len = arrays[i].length;
  }
  rc = concat_node(&c, schema, ps, n, out, 0);
  if (rc != 0) wg_array_release(out);
done:
  if (spent != NULL) *spent = c.limit - c.budget;
  wg_shared_unref(c.holder); /* the output nodes keep their own references */
  free(ps);
  for (int64_t i = 0; arrays != NULL && i < n; i++)
    wg_array_release(&arrays[i]);
  return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Sizes */

static int64_t range_bytes(const struct ArrowSchema *schema, const struct ArrowArray *a,
                           int64_t start, int64_t len, int depth);

static int64_t validity_bytes(const struct ArrowArray *a, int64_t len) {
  return a->n_buffers > 0 && a->buffers[0] != NULL && a->null_count != 0 ? (len + 7) / 8 : 0;
}

/* Adds b to *sum unless either is unknown (-1). */
static void add(int64_t *sum, int64_t b) {
  *sum = *sum < 0 || b < 0 ? -1 : *sum + b;
}

static int64_t range_bytes(const struct ArrowSchema *schema, const struct ArrowArray *a,
                           int64_t start, int64_t len, int depth) {
  if (depth > MAX_DEPTH || a == NULL || schema == NULL || start < 0 || len < 0 ||
      start + len > a->length || a->n_children != schema->n_children)
    return -1;
  if (len == 0) return 0;
  int64_t s = a->offset + start; /* absolute slot */
  if (schema->dictionary != NULL) {
    int64_t width, total = validity_bytes(a, len);
    if (classify(schema->format, &width) != K_FIXED || a->dictionary == NULL) return -1;
    add(&total, width * len);
    add(&total, range_bytes(schema->dictionary, a->dictionary, 0, a->dictionary->length,
                            depth + 1));
    return total;
  }
  int64_t width;
  enum kind k = classify(schema->format, &width);
  int64_t total = validity_bytes(a, len);
  switch (k) {
  case K_NULL:
    return 0;
  case K_BOOL:
    return total + (len + 7) / 8;
  case K_FIXED:
    return total + width * len;
  case K_BIN32:
  case K_BIN64:
  case K_LIST32:
  case K_LIST64: {
    bool wide = k == K_BIN64 || k == K_LIST64;
    if (a->n_buffers < 2 || a->buffers[1] == NULL) return -1;
    int64_t first = wg_offset_load(a->buffers[1], s, wide);
    int64_t last = wg_offset_load(a->buffers[1], s + len, wide);
    if (first < 0 || last < first) return -1;
    total += (len + 1) * (wide ? 8 : 4);
    if (k == K_BIN32 || k == K_BIN64) return total + (last - first);
    add(&total, range_bytes(schema->children[0], a->children[0], first, last - first, depth + 1));
    return total;
  }
  case K_VIEW: { /* 16-byte views; values longer than 12 bytes live in the data buffers */
    if (a->n_buffers < 2 || a->buffers[1] == NULL) return -1;
    total += 16 * len;
    for (int64_t i = 0; i < len; i++) {
      int32_t n;
      memcpy(&n, (const uint8_t *)a->buffers[1] + (s + i) * 16, 4);
      if (n > 12) total += n;
    }
    return total;
  }
  case K_FSL:
    if (a->n_children != 1) return -1;
    add(&total,
        range_bytes(schema->children[0], a->children[0], s * width, len * width, depth + 1));
    return total;
  case K_STRUCT:
  case K_SPARSE:
    if (k == K_SPARSE) total = len; /* type ids, no validity */
    for (int64_t i = 0; i < a->n_children; i++)
      add(&total, range_bytes(schema->children[i], a->children[i], s, len, depth + 1));
    return total;
  case K_DENSE: { /* type ids and offsets, and each child's slots between its lowest and highest */
    int8_t map[128];
    struct ctx c = {NULL, NULL, NULL, 0, 0, false};
    if (a->n_buffers < 2 || a->buffers[0] == NULL || a->buffers[1] == NULL || a->n_children > 128 ||
        union_ids(&c, schema->format, a->n_children, map) != 0)
      return -1;
    int64_t lo[128], hi[128];
    for (int64_t i = 0; i < a->n_children; i++)
      lo[i] = INT64_MAX, hi[i] = -1;
    for (int64_t i = 0; i < len; i++) {
      int8_t id = ((const int8_t *)a->buffers[0])[s + i];
      int32_t off;
      memcpy(&off, (const uint8_t *)a->buffers[1] + (s + i) * 4, 4);
      if (id < 0 || map[id] < 0) return -1;
      if (off < lo[map[id]]) lo[map[id]] = off;
      if (off > hi[map[id]]) hi[map[id]] = off;
    }
    total = 5 * len;
    for (int64_t i = 0; i < a->n_children; i++) {
      if (hi[i] >= lo[i])
        add(&total, range_bytes(schema->children[i], a->children[i], lo[i], hi[i] - lo[i] + 1,
                                depth + 1));
    }
    return total;
  }
  case K_LISTVIEW32:
  case K_LISTVIEW64: { /* offsets, sizes and the child's slots between the lowest and highest */
    bool wide = k == K_LISTVIEW64;
    if (a->n_buffers < 3 || a->buffers[1] == NULL || a->buffers[2] == NULL) return -1;
    int64_t lo = INT64_MAX, hi = 0;
    for (int64_t i = s; i < s + len; i++) {
      int64_t o = wg_offset_load(a->buffers[1], i, wide);
      int64_t z = wg_offset_load(a->buffers[2], i, wide);
      if (z == 0) continue;
      if (o < 0 || z < 0) return -1;
      if (o < lo) lo = o;
      if (o + z > hi) hi = o + z;
    }
    total += 2 * len * (wide ? 8 : 4);
    if (lo < hi)
      add(&total, range_bytes(schema->children[0], a->children[0], lo, hi - lo, depth + 1));
    return total;
  }
  case K_REE: { /* about a run end and a value per row at most: the runs are not searched */
    if (a->n_children != 2) return -1;
    int64_t runs = a->children[1]->length < len ? a->children[1]->length : len;
    total = runs * 8;
    add(&total, range_bytes(schema->children[1], a->children[1], 0, runs, depth + 1));
    return total;
  }
  default:
    return -1;
  }
}

int64_t wg_arrow_range_bytes(const struct ArrowSchema *schema, const struct ArrowArray *a,
                             int64_t start, int64_t len) {
  return range_bytes(schema, a, start, len, 0);
}
