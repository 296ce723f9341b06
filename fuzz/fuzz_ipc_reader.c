/* wigeon: libFuzzer target for the IPC stream reader: any input either decodes or is rejected
 * with an error, never a crash, hang, leak or out-of-bounds read. */
#include <stddef.h>
#include <stdint.h>

#include "arrow/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct wg_shared *bytes = wg_shared_copy(data, (int64_t)size);
  if (bytes == NULL) return 0;
  struct ArrowArrayStream stream;
  if (wg_ipc_stream_reader_init(&stream, bytes, NULL) == 0) {
    struct ArrowSchema schema;
    if (stream.get_schema(&stream, &schema) == 0) {
      wg_schema_release(&schema);
      for (int i = 0; i < 1000; i++) {
        struct ArrowArray batch;
        if (stream.get_next(&stream, &batch) != 0 || batch.release == NULL) break;
        wg_array_release(&batch);
      }
    }
    wg_stream_release(&stream);
  }
  wg_shared_unref(bytes);
  return 0;
}
