/* wigeon: small grpc_byte_buffer helpers for control messages and tests. Bulk data never goes
 * through here: the Flight layer builds byte buffers from slices over Arrow memory and reads them
 * slice by slice. Relies on grpc/byte_buffer_reader.h (which also undoes message compression). */
#include "rpc/rpc.h"

#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

grpc_byte_buffer *wg_rpc_buffer_from_copy(const void *data, size_t size) {
  grpc_slice slice = size > 0 ? grpc_slice_from_copied_buffer(data, size) : grpc_empty_slice();
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1); /* takes its own ref */
  grpc_slice_unref(slice);
  return bb;
}

int wg_rpc_buffer_flatten(grpc_byte_buffer *bb, uint8_t **data, size_t *size) {
  if (data == NULL || size == NULL) return EINVAL;
  *data = NULL;
  *size = 0;
  if (bb == NULL) return EINVAL;
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, bb)) return EPROTO; /* undecompressable */
  size_t total = grpc_byte_buffer_length(reader.buffer_out);
  uint8_t *out = malloc(total > 0 ? total : 1);
  if (out == NULL) {
    grpc_byte_buffer_reader_destroy(&reader);
    return ENOMEM;
  }
  size_t at = 0;
  grpc_slice slice;
  while (grpc_byte_buffer_reader_next(&reader, &slice)) {
    size_t n = GRPC_SLICE_LENGTH(slice);
    if (n > total - at) n = total - at; /* cannot happen; never write past the block */
    if (n > 0) memcpy(out + at, GRPC_SLICE_START_PTR(slice), n);
    at += n;
    grpc_slice_unref(slice);
  }
  grpc_byte_buffer_reader_destroy(&reader);
  *data = out;
  *size = at;
  return 0;
}
