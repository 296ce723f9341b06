/* wigeon: concatenation of Arrow arrays of one schema into one new array, so that the engine can
 * gather DuckDB's 2048-row chunks into batches of a target size, and make the empty arrays ingest
 * probes DuckDB's types with. Covers null, bool, fixed widths, binary/utf8 and large and view
 * forms, lists, fixed size lists, list views, structs, maps, unions, run-end encoded and
 * dictionaries, and honours ArrowArray.offset on every node.
 * Depends on arrow/array.h only. */
#ifndef WG_ARROW_CONCAT_H
#define WG_ARROW_CONCAT_H

#include <stdint.h>

#include "arrow/abi.h"
#include "common/error.h"

/* Concatenates arrays[0..n) (all of `schema`, any offsets) into `out`, a new array with offset 0
 * whose buffers are fresh copies (64-byte aligned, one memcpy per buffer for fixed widths; offsets
 * rebased, dictionary indices shifted when the dictionaries differ). n == 0 gives an empty array
 * of the schema. Dictionaries equal by content are kept once.
 * Ownership: the inputs are consumed (released) on success and on error; on success the caller
 * owns `out` (made with wg_array_node_init, so wg_array_share works on it); on error `out` is
 * released (release == NULL).
 * Returns 0, EINVAL (inconsistent input), ENOTSUP (an unknown format), EOVERFLOW (32-bit offsets,
 * run ends or dictionary indices would overflow), ENOMEM. Thread-safe (no shared state). */
int wg_arrow_concat(const struct ArrowSchema *schema, struct ArrowArray *arrays, int64_t n,
                    struct ArrowArray *out, struct wg_error *err);

/* wg_arrow_concat with a budget: the output buffers may take `budget` bytes in all; an allocation
 * beyond it fails the concatenation with EPROTO (the input claims more than it may cost), while
 * malloc failing is ENOMEM. *spent (may be NULL) gets the bytes allocated, on success and on
 * error. For the IPC decoder's delta dictionaries, whose sizes come from the wire. Ownership and
 * the other codes as wg_arrow_concat's. */
int wg__arrow_concat_limited(const struct ArrowSchema *schema, struct ArrowArray *arrays,
                             int64_t n, int64_t budget, int64_t *spent, struct ArrowArray *out,
                             struct wg_error *err);

/* The bytes rows [start, start + len) of `a` (relative to a->offset) take in buffers: what
 * wg_arrow_concat would copy for them, and about what an IPC body of them carries (validity
 * bitmaps where there are nulls, offsets, values, the children's ranges, whole dictionaries;
 * padding not counted). O(nesting depth) for most layouts; views and dense unions read every
 * row. Returns -1 when it cannot tell (unsupported layout, inconsistent input). Reads `a` only;
 * meant for arrays from trusted producers (DuckDB, our decoder). Thread-safe. */
int64_t wg_arrow_range_bytes(const struct ArrowSchema *schema, const struct ArrowArray *a,
                             int64_t start, int64_t len);

#endif
