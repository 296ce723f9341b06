/* wigeon: flatbuffer builder (see fbb.h). The buffer grows toward lower addresses: `size` bytes
 * at the end of `buf` are written, and an object's ref is the value of `size` right after it was
 * pushed. A uoffset stored at ref `at` to an object at ref `target` is therefore at - target.
 * Alignment: an object whose ref is a multiple of its alignment is aligned from the buffer's start
 * once the total size is a multiple of minalign, which wg_fbb_finish ensures. */
#include "arrow/fbb.h"

#include <stdlib.h>
#include <string.h>

/* Flatbuffers address with 32-bit offsets: stay well below 2 GiB. */
#define FBB_MAX_SIZE ((int64_t)INT32_MAX - 64)

void wg_fbb_init(struct wg_fbb *b) {
  memset(b, 0, sizeof(*b));
  b->minalign = 8;
}

void wg_fbb_reset(struct wg_fbb *b) {
  free(b->buf);
  wg_fbb_init(b);
}

void wg_fbb_clear(struct wg_fbb *b) {
  b->size = 0;
  b->minalign = 8;
  b->in_table = false;
  b->misuse = false;
  b->n_pending = 0;
}

/* Makes room for n more bytes in front of the content. The capacity stays a multiple of 64, so
 * the content's start is as aligned in memory as its size. */
static int reserve(struct wg_fbb *b, int64_t n) {
  if (n < 0 || b->size > FBB_MAX_SIZE - n) return ENOMEM;
  if (b->cap - b->size >= n) return 0;
  int64_t cap = b->cap < 256 ? 256 : b->cap;
  while (cap - b->size < n)
    cap *= 2;
  uint8_t *nb = malloc((size_t)cap);
  if (nb == NULL) return ENOMEM;
  if (b->size > 0) memcpy(nb + cap - b->size, b->buf + b->cap - b->size, (size_t)b->size);
  free(b->buf);
  b->buf = nb;
  b->cap = cap;
  return 0;
}

/* The byte at ref `ref` (the first byte of the object pushed when size became ref). */
static uint8_t *at_ref(struct wg_fbb *b, int64_t ref) {
  return b->buf + b->cap - ref;
}

static int push_zeros(struct wg_fbb *b, int64_t n) {
  if (n == 0) return 0;
  WG_RETURN_NOT_OK(reserve(b, n));
  b->size += n;
  memset(at_ref(b, b->size), 0, (size_t)n);
  return 0;
}

/* Pads so that after pushing `len` more bytes the size is a multiple of `align` (a power of 2). */
static int prealign(struct wg_fbb *b, int64_t len, int64_t align) {
  if (align > b->minalign) b->minalign = align;
  int64_t pad = (-(b->size + len)) & (align - 1);
  return push_zeros(b, pad);
}

static void store_le(uint8_t *p, uint64_t v, int size) {
  for (int i = 0; i < size; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* Pushes a scalar of `size` bytes (already aligned by the caller). */
static int push_scalar(struct wg_fbb *b, uint64_t v, int size) {
  WG_RETURN_NOT_OK(reserve(b, size));
  b->size += size;
  store_le(at_ref(b, b->size), v, size);
  return 0;
}

/* Pushes a uoffset to `target`: the slot's own ref will be size + 4. */
static int push_uoffset(struct wg_fbb *b, uint32_t target) {
  WG_RETURN_NOT_OK(prealign(b, 4, 4));
  return push_scalar(b, (uint64_t)(uint32_t)(b->size + 4 - (int64_t)target), 4);
}

int wg_fbb_create_string(struct wg_fbb *b, const char *s, int64_t len, uint32_t *out) {
  if (len < 0) return ENOMEM;
  WG_RETURN_NOT_OK(prealign(b, len + 1, 4));
  WG_RETURN_NOT_OK(push_zeros(b, len + 1));
  if (len > 0) memcpy(at_ref(b, b->size), s, (size_t)len);
  WG_RETURN_NOT_OK(push_scalar(b, (uint64_t)len, 4));
  *out = (uint32_t)b->size;
  return 0;
}

/* Reserves the body of a vector of n elements of elem_size bytes aligned to `align`, and returns
 * a pointer to its first element; the length prefix is pushed by end_vector. */
static int begin_vector(struct wg_fbb *b, int64_t n, int64_t elem_size, int64_t align,
                        uint8_t **body) {
  if (n < 0 || n > FBB_MAX_SIZE / elem_size) return ENOMEM;
  WG_RETURN_NOT_OK(reserve(b, 16)); /* so that *body is a real pointer even for n == 0 */
  /* The length prefix must sit right before the elements, 4-aligned, and the elements aligned
   * to `align`: align the body end for both. */
  WG_RETURN_NOT_OK(prealign(b, n * elem_size, 4));
  WG_RETURN_NOT_OK(prealign(b, n * elem_size, align));
  WG_RETURN_NOT_OK(push_zeros(b, n * elem_size));
  *body = at_ref(b, b->size);
  return 0;
}

static int end_vector(struct wg_fbb *b, int64_t n, uint32_t *out) {
  WG_RETURN_NOT_OK(push_scalar(b, (uint64_t)n, 4));
  *out = (uint32_t)b->size;
  return 0;
}

int wg_fbb_create_vector_i32(struct wg_fbb *b, const int32_t *v, int64_t n, uint32_t *out) {
  uint8_t *p;
  WG_RETURN_NOT_OK(begin_vector(b, n, 4, 4, &p));
  for (int64_t i = 0; i < n; i++)
    store_le(p + 4 * i, (uint64_t)(uint32_t)v[i], 4);
  return end_vector(b, n, out);
}

int wg_fbb_create_vector_i64(struct wg_fbb *b, const int64_t *v, int64_t n, uint32_t *out) {
  uint8_t *p;
  WG_RETURN_NOT_OK(begin_vector(b, n, 8, 8, &p));
  for (int64_t i = 0; i < n; i++)
    store_le(p + 8 * i, (uint64_t)v[i], 8);
  return end_vector(b, n, out);
}

int wg_fbb_create_vector_i64_pairs(struct wg_fbb *b, const int64_t *pairs, int64_t n,
                                   uint32_t *out) {
  uint8_t *p;
  WG_RETURN_NOT_OK(begin_vector(b, n, 16, 8, &p));
  for (int64_t i = 0; i < 2 * n; i++)
    store_le(p + 8 * i, (uint64_t)pairs[i], 8);
  return end_vector(b, n, out);
}

int wg_fbb_create_vector_refs(struct wg_fbb *b, const uint32_t *refs, int64_t n, uint32_t *out) {
  uint8_t *p;
  WG_RETURN_NOT_OK(begin_vector(b, n, 4, 4, &p));
  /* Element i starts at ref size - 4*i; its uoffset is relative to its own position. */
  for (int64_t i = 0; i < n; i++)
    store_le(p + 4 * i, (uint64_t)(uint32_t)(b->size - 4 * i - (int64_t)refs[i]), 4);
  return end_vector(b, n, out);
}

void wg_fbb_table_begin(struct wg_fbb *b) {
  if (b->in_table) b->misuse = true;
  b->in_table = true;
  b->n_pending = 0;
}

static void add_field(struct wg_fbb *b, int slot, int size, bool is_offset, uint64_t v) {
  if (!b->in_table || slot < 0 || slot >= WG_FBB_MAX_SLOTS || b->n_pending >= WG_FBB_MAX_SLOTS) {
    b->misuse = true;
    return;
  }
  for (int i = 0; i < b->n_pending; i++)
    if (b->pending[i].slot == slot) b->misuse = true;
  struct wg_fbb_pending *f = &b->pending[b->n_pending++];
  f->slot = (uint16_t)slot;
  f->size = (uint8_t)size;
  f->is_offset = is_offset;
  f->value = v;
}

void wg_fbb_add_bool(struct wg_fbb *b, int slot, bool v) {
  add_field(b, slot, 1, false, v ? 1 : 0);
}
void wg_fbb_add_u8(struct wg_fbb *b, int slot, uint8_t v) {
  add_field(b, slot, 1, false, v);
}
void wg_fbb_add_i16(struct wg_fbb *b, int slot, int16_t v) {
  add_field(b, slot, 2, false, (uint16_t)v);
}
void wg_fbb_add_i32(struct wg_fbb *b, int slot, int32_t v) {
  add_field(b, slot, 4, false, (uint32_t)v);
}
void wg_fbb_add_i64(struct wg_fbb *b, int slot, int64_t v) {
  add_field(b, slot, 8, false, (uint64_t)v);
}
void wg_fbb_add_ref(struct wg_fbb *b, int slot, uint32_t ref) {
  if (ref != 0) add_field(b, slot, 4, true, ref);
}
void wg_fbb_add_union(struct wg_fbb *b, int type_slot, uint8_t type, uint32_t ref) {
  if (ref == 0) return;
  wg_fbb_add_u8(b, type_slot, type);
  wg_fbb_add_ref(b, type_slot + 1, ref);
}

int wg_fbb_table_end(struct wg_fbb *b, uint32_t *out) {
  bool misuse = b->misuse || !b->in_table;
  b->in_table = false;
  b->misuse = false;
  if (misuse) return EINVAL;
  /* Largest fields first: pushed first, they end up at the table's end, and the smaller ones
   * that follow need no padding between them. */
  int n = b->n_pending;
  int order[WG_FBB_MAX_SLOTS];
  for (int i = 0; i < n; i++)
    order[i] = i;
  for (int i = 1; i < n; i++) {
    int k = order[i], j = i;
    while (j > 0 && b->pending[order[j - 1]].size < b->pending[k].size) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = k;
  }
  int64_t field_ref[WG_FBB_MAX_SLOTS];
  int64_t table_end_ref = b->size;
  int n_slots = 0;
  for (int i = 0; i < n; i++) {
    const struct wg_fbb_pending *f = &b->pending[order[i]];
    if (f->is_offset) {
      WG_RETURN_NOT_OK(push_uoffset(b, (uint32_t)f->value));
    } else {
      WG_RETURN_NOT_OK(prealign(b, f->size, f->size));
      WG_RETURN_NOT_OK(push_scalar(b, f->value, f->size));
    }
    field_ref[order[i]] = b->size;
    if (f->slot + 1 > n_slots) n_slots = f->slot + 1;
  }
  /* The table starts with an soffset to its vtable, patched below. */
  WG_RETURN_NOT_OK(prealign(b, 4, 4));
  WG_RETURN_NOT_OK(push_scalar(b, 0, 4));
  int64_t table_ref = b->size;
  int64_t table_size = table_ref - table_end_ref;
  int64_t vt_size = 4 + 2 * (int64_t)n_slots;
  if (table_size > UINT16_MAX) return ENOMEM;
  /* The vtable goes right before the table: table_ref is a multiple of 4, vt_size is even. */
  WG_RETURN_NOT_OK(push_zeros(b, vt_size));
  uint8_t *vt = at_ref(b, b->size);
  store_le(vt, (uint64_t)vt_size, 2);
  store_le(vt + 2, (uint64_t)table_size, 2);
  for (int i = 0; i < n; i++)
    store_le(vt + 4 + 2 * b->pending[i].slot, (uint64_t)(table_ref - field_ref[i]), 2);
  /* vtable = table - soffset; the vtable lies vt_size bytes before the table. */
  store_le(at_ref(b, table_ref), (uint64_t)(uint32_t)(int32_t)(b->size - table_ref), 4);
  b->n_pending = 0;
  *out = (uint32_t)table_ref;
  return 0;
}

int wg_fbb_finish(struct wg_fbb *b, uint32_t root, struct wg_bytes *out) {
  if (b->in_table) return EINVAL;
  WG_RETURN_NOT_OK(prealign(b, 4, b->minalign));
  WG_RETURN_NOT_OK(push_uoffset(b, root));
  out->data = at_ref(b, b->size);
  out->size = b->size;
  return 0;
}
