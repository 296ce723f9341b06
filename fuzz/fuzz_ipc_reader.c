/* wigeon: libFuzzer target for the IPC stream reader: any input either decodes or is rejected
 * with an error, never a crash, hang, leak or out-of-bounds read. What decodes must also pass
 * validation and survive a round trip through the encoder and the decoder again. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "arrow/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const struct wg_error *err) {
  fprintf(stderr, "%s: %s\n", what, err->message);
  abort();
}

/* Encodes one decoded batch and decodes the result: both must succeed. */
static void round_trip(const struct ArrowSchema *schema, const struct ArrowArray *batch) {
  struct wg_error err;
  struct wg_ipc_encoder *enc; /* one per batch, so each stream carries its dictionaries */
  if (wg_ipc_encoder_create(&enc, schema, NULL, &err) != 0) fail("encoder", &err);
  if (wg_ipc_validate_array(schema, batch, &err) != 0) fail("validate", &err);
  int64_t max = wg_ipc_encoder_max_messages(enc), n = 0;
  struct wg_ipc_encoded *msgs = calloc((size_t)max, sizeof(*msgs));
  for (int64_t i = 0; i < max; i++)
    wg_ipc_encoded_init(&msgs[i]);
  if (wg_ipc_encoder_batch(enc, batch, msgs, &n, &err) != 0) fail("encode", &err);
  struct wg_buf out;
  wg_buf_init(&out);
  struct wg_ipc_encoded schema_msg;
  wg_ipc_encoded_init(&schema_msg);
  if (wg_ipc_encoder_schema(enc, &schema_msg, &err) != 0) fail("encode schema", &err);
  wg_ipc_encoded_append_framed(&schema_msg, &out);
  for (int64_t i = 0; i < n; i++)
    wg_ipc_encoded_append_framed(&msgs[i], &out);
  wg_ipc_append_eos(&out);
  int64_t out_size = out.size;
  struct wg_shared *bytes = wg_shared_take(wg_buf_detach(&out), out_size);
  struct ArrowArrayStream again;
  wg_ipc_stream_reader_init(&again, bytes, NULL);
  struct ArrowArray copy;
  if (again.get_next(&again, &copy) != 0 || copy.release == NULL) {
    snprintf(err.message, sizeof(err.message), "%s", again.get_last_error(&again));
    fail("decode again", &err);
  }
  if (copy.length != batch->length) abort();
  wg_array_release(&copy);
  wg_stream_release(&again);
  wg_shared_unref(bytes);
  wg_ipc_encoded_reset(&schema_msg);
  for (int64_t i = 0; i < max; i++)
    wg_ipc_encoded_reset(&msgs[i]);
  free(msgs);
  wg_ipc_encoder_destroy(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct wg_shared *bytes = wg_shared_copy(data, (int64_t)size);
  if (bytes == NULL) return 0;
  struct ArrowArrayStream stream;
  if (wg_ipc_stream_reader_init(&stream, bytes, NULL) == 0) {
    struct ArrowSchema schema;
    if (stream.get_schema(&stream, &schema) == 0) {
      for (int i = 0; i < 1000; i++) {
        struct ArrowArray batch;
        if (stream.get_next(&stream, &batch) != 0 || batch.release == NULL) break;
        round_trip(&schema, &batch);
        wg_array_release(&batch);
      }
      wg_schema_release(&schema);
    }
    wg_stream_release(&stream);
  }
  wg_shared_unref(bytes);
  return 0;
}
