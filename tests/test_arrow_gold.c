/* wigeon tests: every Arrow IPC gold stream (WG_SHARED_DIR/arrow-gold/<producer>/NAME.stream,
 * written by Arrow C++ and friends) decodes to exactly the data its NAME.json.gz describes, and
 * survives a round trip through our encoder (uncompressed, LZ4, ZSTD) with the same logical
 * content. Relies on tests/support/gold_json.* as the oracle. One TEST_RECORD per file and
 * variant:
 *   decode         wg_ipc_stream_reader_init over the file; exact comparison; then (as its own
 *                  record, decode-validate) wg_ipc_validate_array and a read of every
 *                  reachable byte (for ASan)
 *   decoder-api    wg_ipc_frame_next + wg_ipc_decoder_decode, each body copied into its own
 *                  exact-size allocation so ASan sees any read past a body's end
 *   reencode-*     decoded schema + batches -> wg_ipc_encoder (none, lz4, zstd) -> decode again
 *   write-stream   reader -> wg_ipc_write_stream -> decode again
 *   oracle         bytes of the decoded bodies flipped in place must be noticed by the
 *                  comparison (the oracle is not vacuous)
 * WG_GOLD_VARIANTS (a comma list of the names above) restricts the run. */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arrow/array.h"
#include "arrow/ipc.h"
#include "common/buf.h"
#include "common/error.h"
#include "support/gold_json.h"
#include "test.h"

#define MAX_BATCHES 100000

struct decoded {
  struct ArrowSchema schema;
  struct ArrowArray *batches;
  int64_t n, cap;
};

static void decoded_reset(struct decoded *d) {
  wg_schema_release(&d->schema);
  for (int64_t i = 0; i < d->n; i++)
    wg_array_release(&d->batches[i]);
  free(d->batches);
  memset(d, 0, sizeof(*d));
}

static int decoded_push(struct decoded *d, struct ArrowArray *a) {
  if (d->n == d->cap) {
    int64_t cap = d->cap ? 2 * d->cap : 8;
    struct ArrowArray *n = realloc(d->batches, (size_t)cap * sizeof(*n));
    if (n == NULL) return ENOMEM;
    d->batches = n;
    d->cap = cap;
  }
  wg_array_move(a, &d->batches[d->n++]);
  return 0;
}

static uint8_t *read_file(const char *path, int64_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  struct wg_buf b;
  wg_buf_init(&b);
  for (;;) {
    if (wg_buf_reserve(&b, 1 << 16) != 0) break;
    size_t got = fread(b.data + b.size, 1, 1 << 16, f);
    if (got == 0) break;
    b.size += (int64_t)got;
  }
  fclose(f);
  *size = b.size;
  if (b.data == NULL) return malloc(1); /* empty file */
  return wg_buf_detach(&b);
}

static const char *last_error(struct ArrowArrayStream *s) {
  const char *m = s->get_last_error ? s->get_last_error(s) : NULL;
  return m && m[0] ? m : "(no message)";
}

/* Reads a whole stream (takes its own reference on data). */
static int decode_stream(struct wg_shared *data, struct decoded *out, struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  struct ArrowArrayStream s;
  memset(&s, 0, sizeof(s));
  int rc = wg_ipc_stream_reader_init(&s, data, NULL);
  if (rc != 0) return wg_error_set(err, rc, "wg_ipc_stream_reader_init: %s", wg_status_name(rc));
  rc = s.get_schema(&s, &out->schema);
  if (rc != 0) {
    wg_error_set(err, rc, "get_schema: %s: %s", wg_status_name(rc), last_error(&s));
    wg_stream_release(&s);
    return rc;
  }
  for (;;) {
    struct ArrowArray a;
    memset(&a, 0, sizeof(a));
    rc = s.get_next(&s, &a);
    if (rc != 0) {
      wg_error_set(err, rc, "get_next (batch %lld): %s: %s", (long long)out->n, wg_status_name(rc),
                   last_error(&s));
      break;
    }
    if (a.release == NULL) break;
    if (out->n >= MAX_BATCHES) {
      wg_array_release(&a);
      rc = wg_error_set(err, E2BIG, "more than %d batches", MAX_BATCHES);
      break;
    }
    if (decoded_push(out, &a) != 0) {
      wg_array_release(&a);
      rc = wg_error_set(err, ENOMEM, "out of memory");
      break;
    }
  }
  wg_stream_release(&s);
  return rc;
}

/* The same through the message-level API, each body in an exact-size allocation. */
static int decode_messages(const uint8_t *bytes, int64_t size, struct decoded *out,
                           struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  struct wg_ipc_decoder *dec = NULL;
  WG_RETURN_NOT_OK(wg_ipc_decoder_create(&dec, NULL, err));
  struct wg_bytes data = {bytes, size};
  int64_t pos = 0;
  int rc = 0;
  for (int64_t n_msgs = 0;; n_msgs++) {
    struct wg_bytes meta;
    int64_t body_length = 0;
    rc = wg_ipc_frame_next(data, &pos, &meta, &body_length, err);
    if (rc == ENODATA) {
      rc = 0;
      break;
    }
    if (rc != 0) {
      wg_error_prefix(err, rc, "wg_ipc_frame_next (message %lld)", (long long)n_msgs);
      break;
    }
    if (body_length < 0 || body_length > size - pos) {
      rc = wg_error_set(err, EPROTO, "message %lld: body of %lld bytes past the end",
                        (long long)n_msgs, (long long)body_length);
      break;
    }
    uint8_t *meta_copy = malloc((size_t)(meta.size > 0 ? meta.size : 1));
    uint8_t *body_copy = body_length > 0 ? malloc((size_t)body_length) : NULL;
    if (meta_copy == NULL || (body_length > 0 && body_copy == NULL)) {
      free(meta_copy);
      free(body_copy);
      rc = wg_error_set(err, ENOMEM, "out of memory");
      break;
    }
    memcpy(meta_copy, meta.data, (size_t)meta.size);
    if (body_length > 0) memcpy(body_copy, bytes + pos, (size_t)body_length);
    pos += body_length;
    struct wg_shared *body = body_copy ? wg_shared_take(body_copy, body_length) : NULL;
    if (body_length > 0 && body == NULL) {
      free(meta_copy);
      rc = wg_error_set(err, ENOMEM, "out of memory");
      break;
    }
    enum wg_ipc_message_type type = WG_IPC_MESSAGE_NONE;
    struct ArrowArray a;
    memset(&a, 0, sizeof(a));
    struct wg_bytes m = {meta_copy, meta.size};
    rc = wg_ipc_decoder_decode(dec, m, body, &type, &a, err);
    free(meta_copy);
    wg_shared_unref(body);
    if (rc != 0) {
      wg_error_prefix(err, rc, "wg_ipc_decoder_decode (message %lld)", (long long)n_msgs);
      break;
    }
    if (type == WG_IPC_MESSAGE_RECORD_BATCH) {
      if (a.release == NULL) {
        rc =
            wg_error_set(err, EPROTO, "record batch message %lld gave no array", (long long)n_msgs);
        break;
      }
      if (decoded_push(out, &a) != 0) {
        wg_array_release(&a);
        rc = wg_error_set(err, ENOMEM, "out of memory");
        break;
      }
    } else if (a.release != NULL) {
      wg_array_release(&a);
      rc = wg_error_set(err, EPROTO, "message %lld of type %d produced an array", (long long)n_msgs,
                        (int)type);
      break;
    }
  }
  if (rc == 0) {
    if (!wg_ipc_decoder_has_schema(dec))
      rc = wg_error_set(err, EPROTO, "stream without a schema message");
    else
      rc = wg_ipc_decoder_schema(dec, &out->schema, err);
  }
  wg_ipc_decoder_destroy(dec);
  return rc;
}

/* Compares a decoded stream to the JSON. */
static int check(const struct wg_gold_json *g, struct decoded *d, enum wg_gold_mode mode,
                 const char *label, struct wg_error *err) {
  WG_RETURN_NOT_OK(wg_gold_compare_schema(g, &d->schema, label, err));
  int64_t want = wg_gold_json_n_batches(g);
  int64_t n = d->n < want ? d->n : want;
  for (int64_t i = 0; i < n; i++)
    WG_RETURN_NOT_OK(wg_gold_compare_batch(g, i, &d->batches[i], mode, label, err));
  if (d->n != want)
    return wg_error_set(err, EPROTO, "%s [%s]: %lld batches decoded, the JSON has %lld", g->name,
                        label, (long long)d->n, (long long)want);
  return 0;
}

/* Validation and a read of every byte: what the decoder returned must be self-consistent. */
static int check_arrays(struct decoded *d, struct wg_error *err) {
  for (int64_t i = 0; i < d->n; i++) {
    int rc = wg_ipc_validate_array(&d->schema, &d->batches[i], err);
    if (rc != 0)
      return wg_error_prefix(err, rc, "wg_ipc_validate_array (batch %lld)", (long long)i);
    uint64_t sum;
    rc = wg_gold_touch_array(&d->schema, &d->batches[i], &sum, err);
    if (rc != 0) return wg_error_prefix(err, rc, "touching batch %lld", (long long)i);
  }
  return 0;
}

static int encode_stream(const struct decoded *d, enum wg_ipc_compression comp, struct wg_buf *out,
                         struct wg_error *err) {
  struct wg_ipc_encoder_options opts = {.compression = comp, .compression_level = 0};
  struct wg_ipc_encoder *enc = NULL;
  WG_RETURN_NOT_OK(wg_ipc_encoder_create(&enc, &d->schema, &opts, err));
  struct wg_ipc_encoded m;
  wg_ipc_encoded_init(&m);
  int64_t max = wg_ipc_encoder_max_messages(enc);
  struct wg_ipc_encoded *msgs = calloc((size_t)(max > 0 ? max : 1), sizeof(*msgs));
  int rc = 0;
  if (msgs == NULL || max <= 0) {
    rc = wg_error_set(err, ENOMEM, "max_messages %lld", (long long)max);
    goto done;
  }
  for (int64_t k = 0; k < max; k++)
    wg_ipc_encoded_init(&msgs[k]);
  rc = wg_ipc_encoder_schema(enc, &m, err);
  if (rc != 0) {
    wg_error_prefix(err, rc, "wg_ipc_encoder_schema");
    goto done;
  }
  rc = wg_ipc_encoded_append_framed(&m, out);
  if (rc != 0) {
    wg_error_set(err, rc, "append_framed(schema)");
    goto done;
  }
  for (int64_t i = 0; i < d->n; i++) {
    int64_t n_out = 0;
    rc = wg_ipc_encoder_batch(enc, &d->batches[i], msgs, &n_out, err);
    if (rc != 0) {
      wg_error_prefix(err, rc, "wg_ipc_encoder_batch (batch %lld)", (long long)i);
      goto done;
    }
    if (n_out < 1 || n_out > max) {
      rc = wg_error_set(err, EPROTO, "encoder_batch gave %lld messages (max %lld)",
                        (long long)n_out, (long long)max);
      goto done;
    }
    for (int64_t k = 0; k < n_out; k++) {
      if (msgs[k].body_length % 8 != 0 || msgs[k].metadata.size % 8 != 0) {
        rc = wg_error_set(err, EPROTO,
                          "batch %lld message %lld: metadata %lld / body %lld bytes "
                          "not padded to 8",
                          (long long)i, (long long)k, (long long)msgs[k].metadata.size,
                          (long long)msgs[k].body_length);
        goto done;
      }
      rc = wg_ipc_encoded_append_framed(&msgs[k], out);
      if (rc != 0) {
        wg_error_set(err, rc, "append_framed(batch %lld message %lld)", (long long)i, (long long)k);
        goto done;
      }
    }
  }
  rc = wg_ipc_append_eos(out);
  if (rc != 0) wg_error_set(err, rc, "append_eos");
done:
  if (msgs != NULL) {
    for (int64_t k = 0; k < max; k++)
      wg_ipc_encoded_reset(&msgs[k]);
    free(msgs);
  }
  wg_ipc_encoded_reset(&m);
  wg_ipc_encoder_destroy(enc);
  return rc;
}

/* Decodes bytes moved out of `b` and compares them (logically, noting exact differences). */
static int decode_and_check(const struct wg_gold_json *g, struct wg_buf *b, const char *label,
                            struct wg_error *err) {
  int64_t size = b->size;
  uint8_t *bytes = wg_buf_detach(b);
  if (bytes == NULL) return wg_error_set(err, EPROTO, "encoder produced no bytes");
  struct wg_shared *sh = wg_shared_take(bytes, size);
  if (sh == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  struct decoded d;
  int rc = decode_stream(sh, &d, err);
  wg_shared_unref(sh);
  if (rc != 0) {
    wg_error_prefix(err, rc, "%s [%s]: decoding our own stream (%lld bytes)", g->name, label,
                    (long long)size);
  } else {
    rc = check(g, &d, WG_GOLD_LOGICAL, label, err);
    if (rc == 0) rc = check_arrays(&d, err);
    if (rc == 0) {
      struct wg_error note;
      if (check(g, &d, WG_GOLD_EXACT, label, &note) != 0)
        fprintf(stderr, "note %s\n     (logically equal; offsets/buffers not identical)\n",
                note.message);
    }
  }
  decoded_reset(&d);
  return rc;
}

/* Frame magics, little-endian as they appear in a compressed buffer after its int64 length. */
static const uint8_t lz4_magic[4] = {0x04, 0x22, 0x4D, 0x18};
static const uint8_t zstd_magic[4] = {0x28, 0xB5, 0x2F, 0xFD};

static int64_t count_magic(const uint8_t *p, int64_t n, const uint8_t magic[4]) {
  int64_t count = 0;
  for (int64_t i = 0; i + 4 <= n; i++)
    if (memcmp(p + i, magic, 4) == 0) count++;
  return count;
}

static const char *variant_names[] = {"decode",       "decoder-api",   "reencode-none",
                                      "reencode-lz4", "reencode-zstd", "write-stream"};

/* WG_GOLD_VARIANTS="decode,decoder-api" runs only those variants (all by default). */
static bool variant_enabled(const char *name) {
  const char *list = getenv("WG_GOLD_VARIANTS");
  if (list == NULL || list[0] == '\0') return true;
  size_t n = strlen(name);
  for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
    if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return true;
  return false;
}

static void run_file(const char *dir, const char *producer, const char *stream_name) {
  char stream_path[2048], json_path[2048], tag[1024];
  snprintf(stream_path, sizeof(stream_path), "%s/%s", dir, stream_name);
  snprintf(json_path, sizeof(json_path), "%s/%.*s.json.gz", dir,
           (int)(strlen(stream_name) - strlen(".stream")), stream_name);
  snprintf(tag, sizeof(tag), "%s/%s", producer, stream_name);

  struct wg_error err;
  err.message[0] = '\0';
  struct wg_gold_json g;
  if (wg_gold_json_load(&g, json_path, &err) != 0) {
    TEST_RECORD(0, "%s: %s", tag, err.message);
    wg_gold_json_reset(&g);
    return;
  }
  int64_t size = 0;
  uint8_t *bytes = read_file(stream_path, &size);
  if (bytes == NULL) {
    TEST_RECORD(0, "%s: cannot read", tag);
    wg_gold_json_reset(&g);
    return;
  }

  for (int v = 0; v < 6; v++) {
    const char *label = variant_names[v];
    if (!variant_enabled(label)) continue;
    err.message[0] = '\0';
    int rc = 0;
    struct decoded d;
    memset(&d, 0, sizeof(d));
    if (v == 0 || v == 2 || v == 3 || v == 4) {
      uint8_t *copy = malloc((size_t)(size > 0 ? size : 1));
      if (copy == NULL) abort();
      memcpy(copy, bytes, (size_t)size);
      struct wg_shared *sh = wg_shared_take(copy, size);
      rc = decode_stream(sh, &d, &err);
      wg_shared_unref(sh);
      if (rc != 0) wg_error_prefix(&err, rc, "%s [%s]", g.name, label);
    }
    if (v == 0) {
      if (rc == 0) rc = check(&g, &d, WG_GOLD_EXACT, label, &err);
      if (rc == 0) {
        /* Separate record: the data matched; is it also self-consistent? */
        struct wg_error verr;
        verr.message[0] = '\0';
        int vrc = check_arrays(&d, &verr);
        TEST_RECORD(vrc == 0, "%s [decode-validate]: %s", tag, verr.message);
      }
    } else if (v == 1) {
      rc = decode_messages(bytes, size, &d, &err);
      if (rc != 0) wg_error_prefix(&err, rc, "%s [%s]", g.name, label);
      if (rc == 0) rc = check(&g, &d, WG_GOLD_EXACT, label, &err);
    } else if (v >= 2 && v <= 4 && rc == 0) {
      enum wg_ipc_compression comp = v == 2   ? WG_IPC_COMPRESSION_NONE
                                     : v == 3 ? WG_IPC_COMPRESSION_LZ4_FRAME
                                              : WG_IPC_COMPRESSION_ZSTD;
      struct wg_buf out;
      wg_buf_init(&out);
      rc = encode_stream(&d, comp, &out, &err);
      if (rc != 0) {
        wg_error_prefix(&err, rc, "%s [%s]: encoding", g.name, label);
      } else if (comp != WG_IPC_COMPRESSION_NONE && (count_magic(bytes, size, lz4_magic) > 0 ||
                                                     count_magic(bytes, size, zstd_magic) > 0)) {
        /* The gold producer found this data worth compressing: so must we. */
        int64_t frames = count_magic(out.data, out.size,
                                     comp == WG_IPC_COMPRESSION_LZ4_FRAME ? lz4_magic : zstd_magic);
        if (frames == 0)
          rc = wg_error_set(&err, EPROTO, "%s [%s]: no %s frame in the %lld encoded bytes", g.name,
                            label, comp == WG_IPC_COMPRESSION_LZ4_FRAME ? "LZ4" : "ZSTD",
                            (long long)out.size);
      }
      if (rc == 0) rc = decode_and_check(&g, &out, label, &err);
      wg_buf_reset(&out);
    } else if (v == 5) {
      uint8_t *copy = malloc((size_t)(size > 0 ? size : 1));
      if (copy == NULL) abort();
      memcpy(copy, bytes, (size_t)size);
      struct wg_shared *sh = wg_shared_take(copy, size);
      struct ArrowArrayStream s;
      memset(&s, 0, sizeof(s));
      rc = wg_ipc_stream_reader_init(&s, sh, NULL);
      wg_shared_unref(sh);
      struct wg_buf out;
      wg_buf_init(&out);
      if (rc == 0) {
        rc = wg_ipc_write_stream(&s, NULL, &out, &err);
        if (rc != 0) wg_error_prefix(&err, rc, "%s [%s]: wg_ipc_write_stream", g.name, label);
      } else {
        wg_error_set(&err, rc, "wg_ipc_stream_reader_init failed");
      }
      wg_stream_release(&s);
      if (rc == 0) rc = decode_and_check(&g, &out, label, &err);
      wg_buf_reset(&out);
    }
    decoded_reset(&d);
    TEST_RECORD(rc == 0, "%s [%s]: %s", tag, label, err.message);
    if (rc == 0) fprintf(stderr, "ok   %s [%s]\n", tag, label);
  }
  free(bytes);
  wg_gold_json_reset(&g);
}

static bool points_into(const struct ArrowArray *a, const uint8_t *lo, const uint8_t *hi,
                        int depth) {
  if (a == NULL || depth > 64) return false;
  for (int64_t i = 0; i < a->n_buffers; i++) {
    const uint8_t *p = a->buffers[i];
    if (p != NULL && p >= lo && p < hi) return true;
  }
  for (int64_t i = 0; i < a->n_children; i++)
    if (points_into(a->children[i], lo, hi, depth + 1)) return true;
  return points_into(a->dictionary, lo, hi, depth + 1);
}

/* The oracle itself must not be vacuous: decode a stream that lives in memory we own, then flip
 * bytes of the message bodies after the fact (the arrays point into them where aligned) and count
 * how many flips the exact comparison notices. Offsets, type ids and indices are compared before
 * they are followed, so corrupted arrays are safe to compare. */
static void oracle_notices_corrupted_bodies(const char *dir, const char *producer,
                                            const char *stream_name) {
  char stream_path[2048], json_path[2048];
  snprintf(stream_path, sizeof(stream_path), "%s/%s", dir, stream_name);
  snprintf(json_path, sizeof(json_path), "%s/%.*s.json.gz", dir,
           (int)(strlen(stream_name) - strlen(".stream")), stream_name);
  struct wg_error err;
  struct wg_gold_json g;
  if (wg_gold_json_load(&g, json_path, &err) != 0) {
    wg_gold_json_reset(&g);
    return; /* reported by run_file */
  }
  int64_t size = 0;
  uint8_t *bytes = read_file(stream_path, &size);
  struct wg_shared *sh = bytes ? wg_shared_take(bytes, size) : NULL;
  struct decoded d;
  memset(&d, 0, sizeof(d));
  if (sh == NULL || size < 8 || decode_stream(sh, &d, &err) != 0 ||
      check(&g, &d, WG_GOLD_EXACT, "oracle", &err) != 0) {
    wg_shared_unref(sh);
    decoded_reset(&d);
    wg_gold_json_reset(&g);
    return; /* reported by run_file */
  }
  /* Bodies start after the schema message (continuation, length, metadata; no body). */
  int64_t start = wg_load_u32(bytes) == 0xFFFFFFFFu ? 8 + (int64_t)wg_load_u32(bytes + 4)
                                                    : 4 + (int64_t)wg_load_u32(bytes);
  int64_t stride = (size - start) / 1500 + 1;
  int64_t flips = 0, noticed = 0;
  char example[600] = "";
  for (int64_t pos = start; pos < size; pos += stride) {
    bytes[pos] ^= 0xFF;
    flips++;
    int rc = 0;
    for (int64_t i = 0; i < d.n && rc == 0; i++)
      rc = wg_gold_compare_batch(&g, i, &d.batches[i], WG_GOLD_EXACT, "oracle", &err);
    bytes[pos] ^= 0xFF;
    if (rc == EPROTO) {
      if (noticed++ == 0) snprintf(example, sizeof(example), "%s", err.message);
    } else if (rc != 0) {
      TEST_RECORD(0, "oracle %s/%s: byte %lld: comparison failed with %s: %s", producer,
                  stream_name, (long long)pos, wg_status_name(rc), err.message);
      break;
    }
  }
  int rc = 0;
  for (int64_t i = 0; i < d.n && rc == 0; i++)
    rc = wg_gold_compare_batch(&g, i, &d.batches[i], WG_GOLD_EXACT, "oracle", &err);
  TEST_RECORD(rc == 0, "oracle %s/%s: not equal again after restoring: %s", producer, stream_name,
              err.message);
  /* Streams with rows whose arrays point into the body must have some flips noticed (compressed
   * bodies are decoded into copies, which the flips do not reach). */
  int64_t rows = 0;
  bool in_body = false;
  for (int64_t i = 0; i < d.n; i++) {
    rows += d.batches[i].length;
    in_body = in_body || points_into(&d.batches[i], bytes + start, bytes + size, 0);
  }
  bool has_data = rows > 0 && in_body;
  printf("oracle %-55s %5lld of %5lld body byte flips noticed%s%.200s\n", stream_name,
         (long long)noticed, (long long)flips, noticed ? ", e.g. " : "", example);
  TEST_RECORD(!has_data || noticed > 0, "oracle %s/%s: no corrupted byte noticed in %lld flips",
              producer, stream_name, (long long)flips);
  decoded_reset(&d);
  wg_shared_unref(sh);
  wg_gold_json_reset(&g);
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

int main(void) {
  (void)wg_test_current_failed;
  setvbuf(stdout, NULL, _IONBF, 0); /* interleave with the FAIL lines on stderr */
  char root[1024];
  snprintf(root, sizeof(root), "%s/arrow-gold", wg_test_shared_dir());
  struct dirent **producers = NULL;
  int n_producers = scandir(root, &producers, NULL, by_name);
  if (n_producers < 0) {
    TEST_RECORD(0, "cannot list %s (set WG_SHARED_DIR)", root);
    return TEST_SUMMARY();
  }
  int n_streams = 0;
  for (int i = 0; i < n_producers; i++) {
    const char *p = producers[i]->d_name;
    char dir[1400];
    snprintf(dir, sizeof(dir), "%s/%s", root, p);
    struct stat st;
    if (p[0] == '.' || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
      free(producers[i]);
      continue;
    }
    struct dirent **files = NULL;
    int n_files = scandir(dir, &files, NULL, by_name);
    for (int k = 0; k < n_files; k++) {
      if (ends_with(files[k]->d_name, ".stream")) {
        run_file(dir, p, files[k]->d_name);
        if (variant_enabled("oracle")) oracle_notices_corrupted_bodies(dir, p, files[k]->d_name);
        n_streams++;
      }
      free(files[k]);
    }
    free(files);
    free(producers[i]);
  }
  free(producers);
  TEST_RECORD(n_streams > 0, "no *.stream files under %s", root);
  return TEST_SUMMARY();
}
