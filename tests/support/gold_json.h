/* wigeon tests: the Arrow integration-test JSON format (docs/source/format/Integration.rst) as
 * an oracle. Loads NAME.json.gz (zlib + cJSON) and compares a decoded C Data Interface schema or
 * record batch to it, value by value and validity bit by bit. Mismatches are reported in a
 * struct wg_error naming the file, the batch, the column path, the row and both values.
 * Depends on cJSON (libcjson-dev), zlib, arrow/abi.h and common/. Not thread-safe per object. */
#ifndef WG_TESTS_GOLD_JSON_H
#define WG_TESTS_GOLD_JSON_H

#include <stdint.h>

#include "arrow/abi.h"
#include "common/error.h"

struct cJSON;

/* One loaded JSON file. Owned by the caller: wg_gold_json_reset frees it (safe twice). */
struct wg_gold_json {
  struct cJSON *root;
  const struct cJSON *schema;       /* {"fields": [...], "metadata": [...]} */
  const struct cJSON *batches;      /* [RecordBatch] */
  const struct cJSON *dictionaries; /* [DictionaryBatch] or NULL */
  char name[256];                   /* file name without folders, for messages */
};

/* How strictly a batch is compared.
 *  EXACT: what a decoder of the very stream the JSON describes must produce: every node's length
 *    and null count, offsets equal to the JSON's, children compared in full (including slots
 *    under null parents), dictionary indices equal and the dictionary compared in full.
 *  LOGICAL: what any faithful re-encoding must preserve: lengths, validity and the values of
 *    valid slots, with offsets compared as list lengths (an encoder may rebase them), children
 *    only where a valid parent slot reaches them, and dictionary-encoded slots compared through
 *    their dictionary (index -> value). */
enum wg_gold_mode {
  WG_GOLD_EXACT = 0,
  WG_GOLD_LOGICAL = 1,
};

/* Loads a .json.gz (or plain .json) file. Returns 0, or EINVAL/ENOENT/ENOMEM with a message. On
 * error *g is left empty (reset is still safe). */
int wg_gold_json_load(struct wg_gold_json *g, const char *path, struct wg_error *err);
void wg_gold_json_reset(struct wg_gold_json *g);

/* Number of record batches the JSON describes. */
int64_t wg_gold_json_n_batches(const struct wg_gold_json *g);

/* Compares a decoded schema (a struct "+s" with one child per field) to the JSON schema: format
 * strings, names, the nullable flag, dictionary index/value types and the ordered flag, map
 * keysSorted, and custom metadata (schema and field level, order-insensitive). `label` (may be
 * NULL) prefixes messages, e.g. "reencode-lz4". Returns 0 when equal, EPROTO on a mismatch,
 * EINVAL when the JSON itself is malformed. */
int wg_gold_compare_schema(const struct wg_gold_json *g, const struct ArrowSchema *schema,
                           const char *label, struct wg_error *err);

/* Compares record batch `index` (0-based) of the JSON to `batch`, a struct array with one child
 * per field (dictionary-encoded children carry ->dictionary). Honors ArrowArray.offset at every
 * level. Returns 0 when equal, EPROTO on the first mismatch, EINVAL for malformed JSON or an
 * index out of range, ENOMEM. The batch is only read. */
int wg_gold_compare_batch(const struct wg_gold_json *g, int64_t index,
                          const struct ArrowArray *batch, enum wg_gold_mode mode, const char *label,
                          struct wg_error *err);

/* Reads every byte the C Data Interface says an array of `schema` must expose (validity, values,
 * offsets and the data they reach, views and their variadic buffers, union/run-end children,
 * dictionaries), so that ASan sees any buffer a decoder made too short. *checksum receives a sum
 * of what was read (meaningless, keeps the reads alive). Returns 0, or EPROTO when offsets, view
 * buffer indices or union type ids point outside their buffers (a decoder must have rejected
 * those), ENOTSUP for a format it does not know. */
int wg_gold_touch_array(const struct ArrowSchema *schema, const struct ArrowArray *array,
                        uint64_t *checksum, struct wg_error *err);

#endif
