/* wigeon: declarations shared by the IPC decoder's files (not part of the public API). */
#ifndef WG_ARROW_IPC_INTERNAL_H
#define WG_ARROW_IPC_INTERNAL_H

#include "arrow/fbs.h"
#include "arrow/flatbuf.h"
#include "arrow/format.h"
#include "arrow/ipc.h"

/* Fills in default limits where fields are zero. */
void wg__ipc_limits_resolve(const struct wg_ipc_limits *in, struct wg_ipc_limits *out);

/* Schema table -> ArrowSchema "+s". When dict_ids is not NULL, the int64 ids of the
 * dictionary-encoded fields are appended in post-order (a field's children before the field). */
int wg__ipc_decode_schema(const struct wg_fb_table *schema, const struct wg_ipc_limits *limits,
                          struct ArrowSchema *out, struct wg_buf *dict_ids, struct wg_error *err);

/* Verified view of a Message table: version, header type and table, body length. */
struct wg__ipc_message {
  int16_t version;
  uint8_t header_type;
  struct wg_fb_table header;
  int64_t body_length;
};
int wg__ipc_message_read(struct wg_bytes metadata, struct wg__ipc_message *m, struct wg_error *err);

/* Content checks of one array node whose buffers are in place: offsets, bounds, union type ids,
 * run ends, views, dictionary indices. t is the node's (index) type, s its schema node. sizes[i]
 * is the byte size of buffers[i], or sizes is NULL when unknown (arrays from other producers).
 * Children must already be valid. */
int wg__validate_node(const struct wg_arrow_type *t, const struct ArrowSchema *s,
                      const struct ArrowArray *a, const int64_t *sizes, struct wg_error *err);

#endif
