/* wigeon: refcounted slices of a struct array (engine_internal.h, wg__slice_owner): one DuckDB
 * chunk or one ingest batch handed out in pieces without copying. No engine state. */
#include "engine/engine_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Slices */

struct wg__slice_owner {
  atomic_int refs;
  struct ArrowArray batch;
};

struct slice_private {
  struct wg__slice_owner *owner;
  struct ArrowArray *child_structs;
  struct ArrowArray **child_ptrs;
};

struct wg__slice_owner *wg__slice_owner_create(struct ArrowArray *batch) {
  struct wg__slice_owner *o = malloc(sizeof(*o));
  if (o == NULL) {
    wg_array_release(batch);
    return NULL;
  }
  atomic_init(&o->refs, 1);
  wg_array_move(batch, &o->batch);
  return o;
}

void wg__slice_owner_unref(struct wg__slice_owner *o) {
  if (o == NULL || atomic_fetch_sub(&o->refs, 1) != 1) return;
  wg_array_release(&o->batch);
  free(o);
}

void wg__slice_owner_ref(struct wg__slice_owner *o) {
  atomic_fetch_add(&o->refs, 1);
}

const struct ArrowArray *wg__slice_owner_batch(const struct wg__slice_owner *o) {
  return &o->batch;
}

static void borrowed_child_release(struct ArrowArray *a) {
  a->release = NULL; /* the buffers and grandchildren belong to the owner's batch */
}

static void slice_release(struct ArrowArray *a) {
  struct slice_private *p = a->private_data;
  wg__slice_owner_unref(p->owner);
  free(p->child_structs);
  free(p->child_ptrs);
  free(p);
  a->release = NULL;
}

/* Exact null count of a child's range: consumers such as DuckDB's dictionary import read a
 * negative ("unknown") null_count as "no nulls". */
static int64_t slice_nulls(const struct ArrowSchema *field, const struct ArrowArray *a,
                           int64_t offset, int64_t len) {
  const char *f = field->format ? field->format : "";
  if (strcmp(f, "n") == 0) return len;
  if (strncmp(f, "+u", 2) == 0 || strcmp(f, "+r") == 0) return 0; /* no validity buffer */
  if (a->null_count == 0 || a->n_buffers < 1 || a->buffers[0] == NULL || len == 0) return 0;
  return len - wg_bitmap_count_set(a->buffers[0], offset, len);
}

int wg__slice(struct wg__slice_owner *o, const struct ArrowSchema *schema, int64_t start,
              int64_t len, struct ArrowArray *out) {
  const struct ArrowArray *b = &o->batch;
  memset(out, 0, sizeof(*out));
  struct slice_private *p = calloc(1, sizeof(*p));
  int64_t nc = b->n_children;
  if (p == NULL) return ENOMEM;
  if (schema->n_children != nc) {
    free(p);
    return EINVAL;
  }
  p->child_structs = calloc((size_t)(nc ? nc : 1), sizeof(struct ArrowArray));
  p->child_ptrs = calloc((size_t)(nc ? nc : 1), sizeof(struct ArrowArray *));
  static const void *no_buffers[1] = {NULL};
  if (p->child_structs == NULL || p->child_ptrs == NULL) {
    free(p->child_structs);
    free(p->child_ptrs);
    free(p);
    return ENOMEM;
  }
  for (int64_t i = 0; i < nc; i++) {
    struct ArrowArray *ch = &p->child_structs[i];
    *ch = *b->children[i];
    ch->offset = b->children[i]->offset + b->offset + start;
    ch->length = len;
    ch->null_count = slice_nulls(schema->children[i], b->children[i], ch->offset, len);
    ch->release = borrowed_child_release;
    ch->private_data = NULL;
    p->child_ptrs[i] = ch;
  }
  atomic_fetch_add(&o->refs, 1);
  p->owner = o;
  out->length = len;
  out->null_count = 0;
  out->offset = 0;
  out->n_buffers = 1;
  out->buffers = no_buffers;
  out->n_children = nc;
  out->children = p->child_ptrs;
  out->release = slice_release;
  out->private_data = p;
  return 0;
}

