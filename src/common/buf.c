/* wigeon: growable buffers and refcounted shared bytes (see buf.h). */
#include "common/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void wg_buf_init(struct wg_buf *b) {
  b->data = NULL;
  b->size = 0;
  b->capacity = 0;
}

void wg_buf_reset(struct wg_buf *b) {
  free(b->data);
  wg_buf_init(b);
}

int wg_buf_reserve(struct wg_buf *b, int64_t additional) {
  if (additional < 0 || b->size > INT64_MAX - additional) return ENOMEM;
  int64_t need = b->size + additional;
  if (need <= b->capacity) return 0;
  int64_t cap = b->capacity < 64 ? 64 : b->capacity;
  while (cap < need)
    cap = cap > INT64_MAX / 2 ? need : cap * 2;
  if ((uint64_t)cap > SIZE_MAX) return ENOMEM;
  uint8_t *p = realloc(b->data, (size_t)cap);
  if (p == NULL) return ENOMEM;
  b->data = p;
  b->capacity = cap;
  return 0;
}

int wg_buf_append(struct wg_buf *b, const void *data, int64_t size) {
  if (size == 0) return 0;
  int rc = wg_buf_reserve(b, size);
  if (rc != 0) return rc;
  memcpy(b->data + b->size, data, (size_t)size);
  b->size += size;
  return 0;
}

int wg_buf_append_zeros(struct wg_buf *b, int64_t size) {
  if (size == 0) return 0;
  int rc = wg_buf_reserve(b, size);
  if (rc != 0) return rc;
  memset(b->data + b->size, 0, (size_t)size);
  b->size += size;
  return 0;
}

uint8_t *wg_buf_detach(struct wg_buf *b) {
  uint8_t *p = b->data;
  wg_buf_init(b);
  return p;
}

struct wg_shared *wg_shared_wrap(const void *data, int64_t size, void (*release)(void *ctx),
                                 void *ctx) {
  struct wg_shared *s = malloc(sizeof(*s));
  if (s == NULL) return NULL;
  s->data = data;
  s->size = size;
  atomic_init(&s->refcount, 1);
  s->release = release;
  s->ctx = ctx;
  return s;
}

struct wg_shared *wg_shared_take(void *data, int64_t size) {
  struct wg_shared *s = wg_shared_wrap(data, size, free, data);
  if (s == NULL) free(data);
  return s;
}

struct wg_shared *wg_shared_copy(const void *data, int64_t size) {
  size_t n = (size_t)((size + 63) & ~(int64_t)63);
  void *p = aligned_alloc(64, n == 0 ? 64 : n);
  if (p == NULL) return NULL;
  if (size > 0) memcpy(p, data, (size_t)size);
  return wg_shared_take(p, size);
}

struct wg_shared *wg_shared_ref(struct wg_shared *s) {
  if (s != NULL) atomic_fetch_add_explicit(&s->refcount, 1, memory_order_relaxed);
  return s;
}

void wg_shared_unref(struct wg_shared *s) {
  if (s == NULL) return;
  if (atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) == 1) {
    if (s->release != NULL) s->release(s->ctx);
    free(s);
  }
}
