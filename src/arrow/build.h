/* wigeon: a small builder of Arrow arrays, row by row, for results made in C (Flight SQL's
 * metadata): fixed-width values, booleans, utf8/binary, lists and maps (offsets over a child built
 * alongside), structs and dense unions. One struct wg_col per array node; its buffers grow as
 * values are appended and become the array's own memory at wg_col_finish. Depends on array.h. */
#ifndef WG_ARROW_BUILD_H
#define WG_ARROW_BUILD_H

#include <stdbool.h>
#include <stdint.h>

#include "arrow/abi.h"
#include "common/buf.h"
#include "common/error.h"

/* What a column's buffers are (the Arrow layout, not the logical type). */
enum wg_col_kind {
  WG_COL_FIXED = 1, /* validity, values of `width` bytes (int8..int64, uint8..uint64) */
  WG_COL_BOOL,      /* validity, bit-packed values */
  WG_COL_VAR,       /* validity, int32 offsets, bytes (utf8, binary) */
  WG_COL_LIST,      /* validity, int32 offsets into one child (list, map) */
  WG_COL_STRUCT,    /* validity; n children of the same length */
  WG_COL_UNION,     /* int8 type ids, int32 offsets into n children (dense union); no validity */
};

/* A column being built. Every append returns 0 or ENOMEM (the column may then hold part of the
 * value; reset it). */
struct wg_col {
  enum wg_col_kind kind;
  int width; /* bytes per value, WG_COL_FIXED */
  int64_t length, null_count;
  struct wg_buf validity, offsets, data; /* UNION: data = type ids, offsets = child offsets */
};
void wg_col_init(struct wg_col *c, enum wg_col_kind kind, int width);
void wg_col_reset(struct wg_col *c);

/* A null (any kind but UNION): a zeroed value, an empty element. */
int wg_col_null(struct wg_col *c);
/* A FIXED value of c->width bytes (native byte order). */
int wg_col_fixed(struct wg_col *c, const void *value);
int wg_col_i32(struct wg_col *c, int32_t v); /* width 4 */
int wg_col_i64(struct wg_col *c, int64_t v); /* width 8 */
int wg_col_u32(struct wg_col *c, uint32_t v); /* width 4 */
int wg_col_u8(struct wg_col *c, uint8_t v);  /* width 1 */
int wg_col_bool(struct wg_col *c, bool v);
/* A VAR value (n bytes; NUL-terminated text with wg_col_str, NULL there is a null). */
int wg_col_bytes(struct wg_col *c, const void *p, int64_t n);
int wg_col_str(struct wg_col *c, const char *s);
/* A LIST element ending at child_length (the child's length now: the element holds the child's
 * values appended since the previous element), or a STRUCT row whose children were appended. */
int wg_col_list_end(struct wg_col *c, int64_t child_length);
int wg_col_struct_row(struct wg_col *c);
/* A UNION row: child type_id's value at child_offset (the child's length before the append). */
int wg_col_union(struct wg_col *c, int8_t type_id, int32_t child_offset);

/* Makes the array: c's buffers move into it (c is left empty, reusable), `children` (n of them,
 * each a finished array) move into it (their release set NULL) in order. On error c and the
 * children are left to the caller; *out is released. EINVAL when the children do not fit the
 * kind (LIST takes 1, STRUCT and UNION any number, the others 0) or a STRUCT child's length is
 * not c's. */
int wg_col_finish(struct wg_col *c, struct ArrowArray *children, int64_t n,
                  struct ArrowArray *out, struct wg_error *err);

/* Schema nodes: a field of `format` named `name` (copied), nullable or not, with n_children empty
 * children for the caller to fill (wg_schema_node_init's rules). */
int wg_field_init(struct ArrowSchema *out, const char *format, const char *name, bool nullable,
                  int64_t n_children, struct wg_error *err);

/* A stream of one batch (schema and array moved in; array release NULL: no batch). The stream
 * owns them; get_next gives the batch once, then the end. */
int wg_stream_single(struct ArrowSchema *schema, struct ArrowArray *batch,
                     struct ArrowArrayStream *out, struct wg_error *err);

#endif
