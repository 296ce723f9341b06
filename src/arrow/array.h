/* wigeon: helpers to build, move and release Arrow C Data Interface structs.
 * Schemas built here own copies of their strings. Arrays built here keep their memory alive through
 * a refcounted struct wg_shared "holder" (the IPC body, decompressed or realigned copies): every
 * node holds one reference, so any child can be moved out and released on its own. */
#ifndef WG_ARROW_ARRAY_H
#define WG_ARROW_ARRAY_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "arrow/abi.h"
#include "common/buf.h"
#include "common/error.h"

/* Moves: copy the struct, then mark the source released. */
static inline void wg_schema_move(struct ArrowSchema *src, struct ArrowSchema *dst) {
  *dst = *src;
  src->release = 0;
}
static inline void wg_array_move(struct ArrowArray *src, struct ArrowArray *dst) {
  *dst = *src;
  src->release = 0;
}
/* Release if not already released; safe on NULL. */
void wg_schema_release(struct ArrowSchema *s);
void wg_array_release(struct ArrowArray *a);
void wg_stream_release(struct ArrowArrayStream *s);

/* Initializes `out` as an owned schema node with n_children empty child structs (their release is
 * NULL until the caller fills them; unfilled children are skipped on release). format is copied;
 * name and metadata start NULL. On error `out` is left released (release == NULL). */
int wg_schema_node_init(struct ArrowSchema *out, const char *format, int64_t n_children,
                        struct wg_error *err);
/* Setters copy their argument; a node must have been made by wg_schema_node_init. */
int wg_schema_set_format(struct ArrowSchema *s, const char *format);
int wg_schema_set_name(struct ArrowSchema *s, const char *name);
/* metadata in C Data Interface encoding (NULL clears); its size is computed from its content. */
int wg_schema_set_metadata(struct ArrowSchema *s, const char *metadata);
/* Allocates s->dictionary as an empty node (release NULL) for the caller to fill. */
int wg_schema_alloc_dictionary(struct ArrowSchema *s);
/* Deep copy of any schema (ours or foreign). */
int wg_schema_deep_copy(const struct ArrowSchema *src, struct ArrowSchema *dst,
                        struct wg_error *err);

/* Appends to `out` a byte string that tells schemas apart exactly: format, name, flags, metadata,
 * children and dictionary, recursively (at most 64 levels, then EINVAL). Two schemas with equal
 * fingerprints are the same schema. 0, EINVAL or ENOMEM. */
int wg_schema_fingerprint(const struct ArrowSchema *s, struct wg_buf *out);
/* Whether a and b are the same schema (equal fingerprints); false also when one cannot be
 * fingerprinted (too deep, out of memory). */
bool wg_schema_same(const struct ArrowSchema *a, const struct ArrowSchema *b);

/* Size in bytes of C Data Interface metadata (0 for NULL). */
int64_t wg_metadata_size(const char *metadata);
/* Appends a key/value to metadata being built in `b` (starts with a 4-byte count, patched). */
int wg_metadata_append(struct wg_buf *b, const char *key, int32_t key_len, const char *value,
                       int32_t value_len);
/* Iterates metadata (our own or a trusted producer's): returns 1 while a pair was read. */
struct wg_metadata_reader {
  const char *p;
  int32_t remaining;
};
void wg_metadata_reader_init(struct wg_metadata_reader *r, const char *metadata);
int wg_metadata_reader_next(struct wg_metadata_reader *r, struct wg_bytes *key,
                            struct wg_bytes *value);

/* Initializes `out` as an owned array node with n_buffers NULL buffers and n_children empty
 * children (release NULL until filled). The node takes a new reference on holder (may be NULL).
 * length/null_count/offset are zero. On error `out` stays released. */
int wg_array_node_init(struct ArrowArray *out, int64_t n_buffers, int64_t n_children,
                       struct wg_shared *holder);
/* Allocates a->dictionary as an empty node (release NULL) for the caller to fill. */
int wg_array_alloc_dictionary(struct ArrowArray *a);
/* Makes dst a new array tree with the same buffers as src, sharing its holders (no data copied).
 * Every node of src must have been made by wg_array_node_init (EINVAL otherwise). */
int wg_array_share(const struct ArrowArray *src, struct ArrowArray *dst);
/* The holder given to wg_array_node_init (borrowed), or NULL for foreign arrays. */
struct wg_shared *wg_array_holder(const struct ArrowArray *a);

/* A holder made of several owned allocations plus references to other shared objects: the IPC
 * decoder collects the body, scratch buffers and dictionaries it depends on here. */
struct wg_holder_builder {
  void **allocs;
  int64_t n_allocs, cap_allocs;
  struct wg_shared **refs;
  int64_t n_refs, cap_refs;
};
void wg_holder_builder_init(struct wg_holder_builder *hb);
/* Takes ownership of `p` (freed with free()). On ENOMEM frees p. */
int wg_holder_builder_add_alloc(struct wg_holder_builder *hb, void *p);
/* Adds a new reference to s. */
int wg_holder_builder_add_ref(struct wg_holder_builder *hb, struct wg_shared *s);
/* Creates an empty holder (refcount 1, owned by the caller) and gives its builder in *hb, to which
 * allocations and references may be added until the holder is shared with another thread. */
struct wg_shared *wg_holder_create(struct wg_holder_builder **hb);
/* Builds the shared holder (refcount 1, owned by the caller); hb is emptied either way. */
struct wg_shared *wg_holder_builder_finish(struct wg_holder_builder *hb);
void wg_holder_builder_reset(struct wg_holder_builder *hb);

/* Entry i of an offsets buffer (list/binary offsets, list-view offsets and sizes): int32 or, when
 * wide, int64; read with memcpy (any alignment). The one offset loader of the codec. */
static inline int64_t wg_offset_load(const void *buf, int64_t i, bool wide) {
  if (wide) {
    int64_t v;
    memcpy(&v, (const uint8_t *)buf + i * 8, 8);
    return v;
  }
  int32_t v;
  memcpy(&v, (const uint8_t *)buf + i * 4, 4);
  return v;
}

/* Stores v as entry i of an offsets buffer (int32, or int64 when wide). */
static inline void wg_offset_store(void *buf, int64_t i, int64_t v, bool wide) {
  if (wide) {
    memcpy((uint8_t *)buf + i * 8, &v, 8);
  } else {
    int32_t x = (int32_t)v;
    memcpy((uint8_t *)buf + i * 4, &x, 4);
  }
}

/* Bit helpers for validity bitmaps. */
static inline bool wg_bit_get(const uint8_t *bits, int64_t i) {
  return (bits[i >> 3] >> (i & 7)) & 1;
}
int64_t wg_bitmap_count_set(const uint8_t *bits, int64_t offset, int64_t length);

#endif
