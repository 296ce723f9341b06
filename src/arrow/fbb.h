/* wigeon: a small flatbuffer builder for the IPC writer (Message, Schema, RecordBatch headers).
 * It builds back to front like the reference builder: children first, at the end of the buffer,
 * then the tables that refer to them, so every uoffset points forward. Objects are named by their
 * "ref", the distance from their start to the end of the buffer (0 means "absent"). Scalars are
 * written little endian with byte stores; the finished buffer's size is a multiple of 8.
 * Depends on common/ only. Not thread-safe: one builder per thread. */
#ifndef WG_ARROW_FBB_H
#define WG_ARROW_FBB_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"

/* Highest vtable slot a table may use plus one (Arrow's largest table, Field, uses 7). */
#define WG_FBB_MAX_SLOTS 16

struct wg_fbb_pending {
  uint16_t slot;
  uint8_t size;   /* 1, 2, 4 or 8 bytes */
  bool is_offset; /* value is a ref, written as a uoffset */
  uint64_t value;
};

struct wg_fbb {
  uint8_t *buf; /* owned; the content is buf[cap - size, cap) */
  int64_t cap, size;
  int64_t minalign; /* largest alignment written so far */
  bool in_table, misuse;
  int n_pending;
  struct wg_fbb_pending pending[WG_FBB_MAX_SLOTS];
};

/* Initializes an empty builder (no allocation). */
void wg_fbb_init(struct wg_fbb *b);
/* Frees the builder's memory; it is empty and reusable afterwards. Safe twice. */
void wg_fbb_reset(struct wg_fbb *b);
/* Drops the content but keeps the memory, to build the next buffer. */
void wg_fbb_clear(struct wg_fbb *b);

/* Objects: each returns 0 and its ref in *out, or ENOMEM (the builder is then unusable until
 * cleared). Strings are copied (len bytes, a NUL is added). Vectors copy host-order values and
 * store them little endian. */
int wg_fbb_create_string(struct wg_fbb *b, const char *s, int64_t len, uint32_t *out);
int wg_fbb_create_vector_i32(struct wg_fbb *b, const int32_t *v, int64_t n, uint32_t *out);
int wg_fbb_create_vector_i64(struct wg_fbb *b, const int64_t *v, int64_t n, uint32_t *out);
/* A vector of n structs made of two int64 each (FieldNode, Buffer): pairs holds 2*n values. */
int wg_fbb_create_vector_i64_pairs(struct wg_fbb *b, const int64_t *pairs, int64_t n,
                                   uint32_t *out);
/* A vector of n offsets to tables or strings created earlier (refs must be nonzero). */
int wg_fbb_create_vector_refs(struct wg_fbb *b, const uint32_t *refs, int64_t n, uint32_t *out);

/* Tables: begin, add fields (in any order, each slot at most once), end. Strings and vectors may
 * be created between begin and end, tables may not (the fields are only written by _end).
 * Scalars are always written, even when equal to the schema default. A ref of 0 adds nothing.
 * Misuse (nested tables, slot >= WG_FBB_MAX_SLOTS, a slot twice) makes _end return EINVAL. */
void wg_fbb_table_begin(struct wg_fbb *b);
void wg_fbb_add_bool(struct wg_fbb *b, int slot, bool v);
void wg_fbb_add_u8(struct wg_fbb *b, int slot, uint8_t v);
void wg_fbb_add_i16(struct wg_fbb *b, int slot, int16_t v);
void wg_fbb_add_i32(struct wg_fbb *b, int slot, int32_t v);
void wg_fbb_add_i64(struct wg_fbb *b, int slot, int64_t v);
void wg_fbb_add_ref(struct wg_fbb *b, int slot, uint32_t ref);
/* A union field: its type byte goes in slot type_slot, its value in type_slot + 1. */
void wg_fbb_add_union(struct wg_fbb *b, int type_slot, uint8_t type, uint32_t ref);
/* Writes the table and its vtable (vtables are not deduplicated). Returns 0, ENOMEM or EINVAL. */
int wg_fbb_table_end(struct wg_fbb *b, uint32_t *out);

/* Writes the root offset and pads the front so the size is a multiple of 8 (the largest alignment
 * used). *out views the finished buffer (8-byte aligned in memory), borrowed from the builder
 * until its next use; copy it to keep it. Returns 0, ENOMEM, or EINVAL inside a table. */
int wg_fbb_finish(struct wg_fbb *b, uint32_t root, struct wg_bytes *out);

#endif
