/* wigeon: growable byte buffers (reserve -> write -> commit) and refcounted shared bytes.
 * struct wg_buf owns its memory; struct wg_bytes is a borrowed view and is never freed;
 * struct wg_shared is a refcounted block whose last unref runs the owner's release callback. */
#ifndef WG_COMMON_BUF_H
#define WG_COMMON_BUF_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct wg_bytes {
  const uint8_t *data;
  int64_t size;
};

struct wg_buf {
  uint8_t *data;
  int64_t size;
  int64_t capacity;
};

void wg_buf_init(struct wg_buf *b);
/* Frees the memory; the buffer is empty and reusable afterwards. Safe twice. */
void wg_buf_reset(struct wg_buf *b);
/* Ensures room for `additional` more bytes. Returns 0 or ENOMEM. */
int wg_buf_reserve(struct wg_buf *b, int64_t additional);
int wg_buf_append(struct wg_buf *b, const void *data, int64_t size);
int wg_buf_append_zeros(struct wg_buf *b, int64_t size);
/* Transfers ownership of the bytes to the caller (free() them); the buffer becomes empty. */
uint8_t *wg_buf_detach(struct wg_buf *b);

/* Refcounted bytes. `data`/`size` are immutable after creation. */
struct wg_shared {
  const uint8_t *data;
  int64_t size;
  atomic_int refcount;
  void (*release)(void *ctx); /* called once when the count drops to zero; may be NULL */
  void *ctx;
};

/* Wraps caller memory: release(ctx) is called when the last reference goes. The new object has one
 * reference, owned by the caller. Returns NULL on ENOMEM (release is NOT called then). */
struct wg_shared *wg_shared_wrap(const void *data, int64_t size, void (*release)(void *ctx),
                                 void *ctx);
/* Takes ownership of malloc'ed memory (freed with free() on the last unref). On ENOMEM returns
 * NULL and frees `data`. */
struct wg_shared *wg_shared_take(void *data, int64_t size);
/* Copies `size` bytes into a new 64-byte aligned block. NULL on ENOMEM. */
struct wg_shared *wg_shared_copy(const void *data, int64_t size);
struct wg_shared *wg_shared_ref(struct wg_shared *s);
/* Drops one reference; NULL is ignored. */
void wg_shared_unref(struct wg_shared *s);

/* Little-endian integer reads and writes that never cast pointers. */
static inline int32_t wg_load_i32(const uint8_t *p) {
  return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                   (uint32_t)p[3] << 24);
}
static inline uint32_t wg_load_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint16_t wg_load_u16(const uint8_t *p) {
  return (uint16_t)(p[0] | p[1] << 8);
}
static inline int64_t wg_load_i64(const uint8_t *p) {
  uint64_t lo = wg_load_u32(p), hi = wg_load_u32(p + 4);
  return (int64_t)(lo | hi << 32);
}
static inline void wg_store_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}
static inline void wg_store_i64(uint8_t *p, int64_t v) {
  wg_store_u32(p, (uint32_t)(uint64_t)v);
  wg_store_u32(p + 4, (uint32_t)((uint64_t)v >> 32));
}

/* Rounds up to a multiple of 8 (IPC padding). */
static inline int64_t wg_pad8(int64_t n) {
  return (n + 7) & ~(int64_t)7;
}

#endif
