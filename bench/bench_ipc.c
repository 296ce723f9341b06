/* wigeon: IPC encode/decode throughput. Builds Arrow batches by hand once (seed-shaped: batch_id
 * BIGINT, timestamp VARCHAR, value DOUBLE, category VARCHAR, with NULLs; and wide: 16 BIGINT/DOUBLE
 * columns), then times wg_ipc_encoder_batch (pieces, no copy) and wg_ipc_decoder_decode on
 * messages whose body is one contiguous buffer, next to memcpy of the same bytes. Prints one
 * parseable "bench ..." line per figure; not a test, asserts nothing.
 * Usage: bench_ipc [--gb N] [--batch-rows N] */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arrow/array.h"
#include "arrow/ipc.h"

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int rc, const struct wg_error *err) {
  fprintf(stderr, "bench_ipc: %s failed: %d (%s) %s\n", what, rc, wg_status_name(rc),
          err ? err->message : "");
  exit(1);
}

static const char *compression_name(enum wg_ipc_compression c) {
  return c == WG_IPC_COMPRESSION_LZ4_FRAME ? "lz4" : c == WG_IPC_COMPRESSION_ZSTD ? "zstd" : "none";
}

/* ---------------------------------------------------------------------------------------------
 * Building batches */

enum shape { SHAPE_SEED, SHAPE_WIDE };
#define WIDE_COLUMNS 16

static const char *shape_name(enum shape s) {
  return s == SHAPE_SEED ? "seed" : "wide";
}

struct batch {
  struct ArrowArray array;
  int64_t rows;
  int64_t arrow_bytes; /* sum of the buffers' sizes */
};

struct builder {
  struct wg_holder_builder hb;
  int64_t bytes;
};

static void *builder_alloc(struct builder *b, int64_t size) {
  size_t n = (size_t)((size + 63) & ~(int64_t)63);
  void *p = aligned_alloc(64, n ? n : 64);
  if (p == NULL || wg_holder_builder_add_alloc(&b->hb, p) != 0) die("alloc", ENOMEM, NULL);
  memset((uint8_t *)p + size, 0, n - (size_t)size);
  b->bytes += size;
  return p;
}

/* A validity bitmap with a NULL at every row where (start + i) % every == 0; sets *null_count. */
static uint8_t *validity(struct builder *b, int64_t start, int64_t rows, int64_t every,
                         int64_t *null_count) {
  uint8_t *bits = builder_alloc(b, (rows + 7) / 8);
  memset(bits, 0xff, (size_t)((rows + 7) / 8));
  int64_t first = (every - start % every) % every, n = 0;
  for (int64_t i = first; i < rows; i += every, n++)
    bits[i >> 3] &= (uint8_t) ~(1u << (i & 7));
  *null_count = n;
  return bits;
}

static void node(struct ArrowArray *a, int64_t n_buffers, int64_t n_children,
                 struct wg_shared *holder, int64_t length) {
  if (wg_array_node_init(a, n_buffers, n_children, holder) != 0) die("array node", ENOMEM, NULL);
  a->length = length;
}

/* "2024-01-01T00:00:00.000Z"-like, without snprintf per row. */
static int format_timestamp(char *out, int64_t i) {
  int64_t secs = i * 7, ms = i % 1000;
  int day = (int)(secs / 86400 % 28) + 1, h = (int)(secs / 3600 % 24), m = (int)(secs / 60 % 60),
      s = (int)(secs % 60);
  memcpy(out, "2024-01-01T00:00:00.000Z", 24);
  out[8] = (char)('0' + day / 10), out[9] = (char)('0' + day % 10);
  out[11] = (char)('0' + h / 10), out[12] = (char)('0' + h % 10);
  out[14] = (char)('0' + m / 10), out[15] = (char)('0' + m % 10);
  out[17] = (char)('0' + s / 10), out[18] = (char)('0' + s % 10);
  out[20] = (char)('0' + ms / 100), out[21] = (char)('0' + ms / 10 % 10),
  out[22] = (char)('0' + ms % 10);
  return 24;
}

static void build_seed(struct batch *out, int64_t start, int64_t rows) {
  struct builder b = {{0}, 0};
  wg_holder_builder_init(&b.hb);
  int64_t nc[4];
  uint8_t *v0 = validity(&b, start, rows, 1009, &nc[0]);
  uint8_t *v1 = validity(&b, start, rows, 97, &nc[1]);
  uint8_t *v2 = validity(&b, start, rows, 101, &nc[2]);
  uint8_t *v3 = validity(&b, start, rows, 89, &nc[3]);
  int64_t *batch_id = builder_alloc(&b, rows * 8);
  double *value = builder_alloc(&b, rows * 8);
  int32_t *ts_off = builder_alloc(&b, (rows + 1) * 4);
  int32_t *cat_off = builder_alloc(&b, (rows + 1) * 4);
  char *ts = builder_alloc(&b, rows * 24);
  char *cat = builder_alloc(&b, rows * 11);
  int64_t ts_len = 0, cat_len = 0;
  for (int64_t r = 0; r < rows; r++) {
    int64_t i = start + r;
    batch_id[r] = wg_bit_get(v0, r) ? i / 1000 : 0;
    value[r] = wg_bit_get(v2, r) ? (double)i * 0.37 - 5000 : 0;
    ts_off[r] = (int32_t)ts_len;
    if (wg_bit_get(v1, r)) ts_len += format_timestamp(ts + ts_len, i);
    cat_off[r] = (int32_t)cat_len;
    if (wg_bit_get(v3, r)) {
      int k = (int)(i % 17);
      memcpy(cat + cat_len, "category_", 9);
      cat_len += 9;
      if (k >= 10) cat[cat_len++] = (char)('0' + k / 10);
      cat[cat_len++] = (char)('0' + k % 10);
    }
  }
  ts_off[rows] = (int32_t)ts_len;
  cat_off[rows] = (int32_t)cat_len;
  b.bytes -= rows * 24 - ts_len + rows * 11 - cat_len; /* count only the bytes used */
  out->arrow_bytes = b.bytes;
  out->rows = rows;
  struct wg_shared *holder = wg_holder_builder_finish(&b.hb);
  if (holder == NULL) die("holder", ENOMEM, NULL);
  struct ArrowArray *a = &out->array;
  node(a, 1, 4, holder, rows);
  struct ArrowArray *c = a->children[0];
  node(c, 2, 0, holder, rows);
  c->null_count = nc[0], c->buffers[0] = v0, c->buffers[1] = batch_id;
  c = a->children[1];
  node(c, 3, 0, holder, rows);
  c->null_count = nc[1], c->buffers[0] = v1, c->buffers[1] = ts_off, c->buffers[2] = ts;
  c = a->children[2];
  node(c, 2, 0, holder, rows);
  c->null_count = nc[2], c->buffers[0] = v2, c->buffers[1] = value;
  c = a->children[3];
  node(c, 3, 0, holder, rows);
  c->null_count = nc[3], c->buffers[0] = v3, c->buffers[1] = cat_off, c->buffers[2] = cat;
  wg_shared_unref(holder);
}

static void build_wide(struct batch *out, int64_t start, int64_t rows) {
  struct builder b = {{0}, 0};
  wg_holder_builder_init(&b.hb);
  void *cols[WIDE_COLUMNS];
  for (int c = 0; c < WIDE_COLUMNS; c++) {
    cols[c] = builder_alloc(&b, rows * 8);
    for (int64_t r = 0; r < rows; r++) {
      if (c % 2 == 0)
        ((int64_t *)cols[c])[r] = (start + r) * (c + 1);
      else
        ((double *)cols[c])[r] = (double)(start + r) / (c + 1);
    }
  }
  out->arrow_bytes = b.bytes;
  out->rows = rows;
  struct wg_shared *holder = wg_holder_builder_finish(&b.hb);
  if (holder == NULL) die("holder", ENOMEM, NULL);
  node(&out->array, 1, WIDE_COLUMNS, holder, rows);
  for (int c = 0; c < WIDE_COLUMNS; c++) {
    struct ArrowArray *ch = out->array.children[c];
    node(ch, 2, 0, holder, rows);
    ch->buffers[1] = cols[c];
  }
  wg_shared_unref(holder);
}

static void build_schema(enum shape shape, struct ArrowSchema *s) {
  struct wg_error err;
  int rc;
  if (shape == SHAPE_SEED) {
    static const char *const names[] = {"batch_id", "timestamp", "value", "category"};
    static const char *const formats[] = {"l", "u", "g", "u"};
    rc = wg_schema_node_init(s, "+s", 4, &err);
    for (int i = 0; rc == 0 && i < 4; i++) {
      rc = wg_schema_node_init(s->children[i], formats[i], 0, &err);
      if (rc == 0) rc = wg_schema_set_name(s->children[i], names[i]);
    }
  } else {
    rc = wg_schema_node_init(s, "+s", WIDE_COLUMNS, &err);
    for (int i = 0; rc == 0 && i < WIDE_COLUMNS; i++) {
      char name[16];
      snprintf(name, sizeof(name), "%s%d", i % 2 == 0 ? "i" : "d", i);
      rc = wg_schema_node_init(s->children[i], i % 2 == 0 ? "l" : "g", 0, &err);
      if (rc == 0) rc = wg_schema_set_name(s->children[i], name);
    }
  }
  if (rc != 0) die("schema", rc, &err);
}

static struct batch *build_batches(enum shape shape, int64_t rows_per_batch, int64_t n) {
  struct batch *batches = calloc((size_t)n, sizeof(*batches));
  if (batches == NULL) die("batches", ENOMEM, NULL);
  for (int64_t i = 0; i < n; i++) {
    if (shape == SHAPE_SEED)
      build_seed(&batches[i], i * rows_per_batch, rows_per_batch);
    else
      build_wide(&batches[i], i * rows_per_batch, rows_per_batch);
  }
  return batches;
}

static void free_batches(struct batch *batches, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    wg_array_release(&batches[i].array);
  free(batches);
}

/* ---------------------------------------------------------------------------------------------
 * Contiguous messages for the decoder */

struct message {
  struct wg_buf metadata;
  struct wg_shared *body; /* one contiguous, 64-byte aligned buffer */
};

static void to_message(const struct wg_ipc_encoded *m, struct message *out) {
  wg_buf_init(&out->metadata);
  if (wg_buf_append(&out->metadata, m->metadata.data, m->metadata.size) != 0)
    die("metadata copy", ENOMEM, NULL);
  size_t n = (size_t)((m->body_length + 63) & ~(int64_t)63);
  uint8_t *body = aligned_alloc(64, n ? n : 64);
  if (body == NULL) die("body", ENOMEM, NULL);
  int64_t pos = 0;
  for (int64_t i = 0; i < m->n_pieces; i++) {
    if (m->pieces[i].size > 0) memcpy(body + pos, m->pieces[i].data, (size_t)m->pieces[i].size);
    pos += m->pieces[i].size;
  }
  out->body = wg_shared_take(body, m->body_length);
  if (out->body == NULL) die("body", ENOMEM, NULL);
}

static void free_message(struct message *m) {
  wg_buf_reset(&m->metadata);
  wg_shared_unref(m->body);
  m->body = NULL;
}

/* Encodes every batch into contiguous messages (untimed); messages[0] is the schema. */
static struct message *encode_messages(const struct ArrowSchema *schema, struct batch *batches,
                                       int64_t n, enum wg_ipc_compression compression,
                                       int64_t *total_body) {
  struct wg_error err = {{0}};
  struct wg_ipc_encoder_options options = {compression, 0};
  struct wg_ipc_encoder *enc;
  int rc = wg_ipc_encoder_create(&enc, schema, &options, &err);
  if (rc != 0) die("wg_ipc_encoder_create", rc, &err);
  int64_t max = wg_ipc_encoder_max_messages(enc);
  struct wg_ipc_encoded *msgs = calloc((size_t)max, sizeof(*msgs));
  struct message *out = calloc((size_t)n + 1, sizeof(*out));
  if (msgs == NULL || out == NULL) die("messages", ENOMEM, NULL);
  for (int64_t i = 0; i < max; i++)
    wg_ipc_encoded_init(&msgs[i]);
  if ((rc = wg_ipc_encoder_schema(enc, &msgs[0], &err)) != 0)
    die("wg_ipc_encoder_schema", rc, &err);
  to_message(&msgs[0], &out[0]);
  *total_body = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t n_out = 0;
    rc = wg_ipc_encoder_batch(enc, &batches[i].array, msgs, &n_out, &err);
    if (rc != 0) die("wg_ipc_encoder_batch", rc, &err);
    if (n_out != 1) die("one message per batch", EINVAL, NULL);
    to_message(&msgs[0], &out[i + 1]);
    *total_body += msgs[0].body_length;
  }
  for (int64_t i = 0; i < max; i++)
    wg_ipc_encoded_reset(&msgs[i]);
  free(msgs);
  wg_ipc_encoder_destroy(enc);
  return out;
}

/* ---------------------------------------------------------------------------------------------
 * Figures */

static int64_t sum_rows(const struct batch *b, int64_t n) {
  int64_t r = 0;
  for (int64_t i = 0; i < n; i++)
    r += b[i].rows;
  return r;
}

static int64_t sum_arrow_bytes(const struct batch *b, int64_t n) {
  int64_t r = 0;
  for (int64_t i = 0; i < n; i++)
    r += b[i].arrow_bytes;
  return r;
}

static void bench_encode(enum shape shape, const struct ArrowSchema *schema, struct batch *batches,
                         int64_t n, enum wg_ipc_compression compression) {
  struct wg_error err = {{0}};
  struct wg_ipc_encoder_options options = {compression, 0};
  struct wg_ipc_encoder *enc;
  int rc = wg_ipc_encoder_create(&enc, schema, &options, &err);
  if (rc != 0) die("wg_ipc_encoder_create", rc, &err);
  int64_t max = wg_ipc_encoder_max_messages(enc);
  struct wg_ipc_encoded *msgs = calloc((size_t)max, sizeof(*msgs));
  if (msgs == NULL) die("messages", ENOMEM, NULL);
  for (int64_t i = 0; i < max; i++)
    wg_ipc_encoded_init(&msgs[i]);
  int64_t out_bytes = 0;
  double t0 = now_seconds();
  for (int64_t i = 0; i < n; i++) {
    int64_t n_out = 0;
    rc = wg_ipc_encoder_batch(enc, &batches[i].array, msgs, &n_out, &err);
    if (rc != 0) die("wg_ipc_encoder_batch", rc, &err);
    for (int64_t k = 0; k < n_out; k++)
      out_bytes += msgs[k].metadata.size + msgs[k].body_length;
  }
  double secs = now_seconds() - t0;
  int64_t in_bytes = sum_arrow_bytes(batches, n);
  printf("bench ipc_encode shape=%s compression=%s batches=%lld rows=%lld bytes=%lld "
         "out_bytes=%lld seconds=%.6f MB/s=%.1f us_per_batch=%.3f\n",
         shape_name(shape), compression_name(compression), (long long)n,
         (long long)sum_rows(batches, n), (long long)in_bytes, (long long)out_bytes, secs,
         (double)in_bytes / secs / 1e6, secs / (double)n * 1e6);
  for (int64_t i = 0; i < max; i++)
    wg_ipc_encoded_reset(&msgs[i]);
  free(msgs);
  wg_ipc_encoder_destroy(enc);
}

/* Decodes messages[1..n] once (after the schema); returns seconds. */
static double decode_all(struct message *messages, int64_t n, int64_t repeat) {
  struct wg_error err = {{0}};
  struct wg_ipc_decoder *dec;
  enum wg_ipc_message_type type;
  struct ArrowArray out;
  int rc = wg_ipc_decoder_create(&dec, NULL, &err);
  if (rc != 0) die("wg_ipc_decoder_create", rc, &err);
  struct wg_bytes md = {messages[0].metadata.data, messages[0].metadata.size};
  rc = wg_ipc_decoder_decode(dec, md, messages[0].body, &type, &out, &err);
  if (rc != 0 || type != WG_IPC_MESSAGE_SCHEMA) die("decode schema", rc ? rc : EINVAL, &err);
  double t0 = now_seconds();
  for (int64_t r = 0; r < repeat; r++) {
    for (int64_t i = 1; i <= n; i++) {
      struct wg_bytes m = {messages[i].metadata.data, messages[i].metadata.size};
      rc = wg_ipc_decoder_decode(dec, m, messages[i].body, &type, &out, &err);
      if (rc != 0) die("wg_ipc_decoder_decode", rc, &err);
      wg_array_release(&out);
    }
  }
  double secs = now_seconds() - t0;
  wg_ipc_decoder_destroy(dec);
  return secs;
}

/* memcpy of every body into one reused destination; returns seconds. */
static double memcpy_all(struct message *messages, int64_t n, int64_t repeat) {
  int64_t largest = 0;
  for (int64_t i = 1; i <= n; i++)
    if (messages[i].body->size > largest) largest = messages[i].body->size;
  uint8_t *dst = aligned_alloc(64, (size_t)((largest + 63) & ~(int64_t)63) + 64);
  if (dst == NULL) die("memcpy buffer", ENOMEM, NULL);
  memset(dst, 0, (size_t)largest);
  volatile uint8_t sink = 0;
  double t0 = now_seconds();
  for (int64_t r = 0; r < repeat; r++) {
    for (int64_t i = 1; i <= n; i++) {
      memcpy(dst, messages[i].body->data, (size_t)messages[i].body->size);
      sink ^= dst[messages[i].body->size / 2];
    }
  }
  double secs = now_seconds() - t0;
  (void)sink;
  free(dst);
  return secs;
}

static void bench_decode(enum shape shape, const struct ArrowSchema *schema, struct batch *batches,
                         int64_t n, enum wg_ipc_compression compression) {
  int64_t body = 0;
  struct message *messages = encode_messages(schema, batches, n, compression, &body);
  double secs = decode_all(messages, n, 1);
  int64_t arrow_bytes = sum_arrow_bytes(batches, n);
  printf("bench ipc_decode shape=%s compression=%s batches=%lld rows=%lld bytes=%lld "
         "body_bytes=%lld seconds=%.6f MB/s=%.1f us_per_batch=%.3f\n",
         shape_name(shape), compression_name(compression), (long long)n,
         (long long)sum_rows(batches, n), (long long)arrow_bytes, (long long)body, secs,
         (double)arrow_bytes / secs / 1e6, secs / (double)n * 1e6);
  if (compression == WG_IPC_COMPRESSION_NONE) {
    double mc = memcpy_all(messages, n, 1);
    printf("bench memcpy shape=%s batches=%lld bytes=%lld seconds=%.6f MB/s=%.1f "
           "us_per_batch=%.3f\n",
           shape_name(shape), (long long)n, (long long)body, mc, (double)body / mc / 1e6,
           mc / (double)n * 1e6);
  }
  for (int64_t i = 0; i <= n; i++)
    free_message(&messages[i]);
  free(messages);
}

/* Time to decode one batch of `rows` rows, repeated, next to memcpy of its body: for fixed-width
 * columns decode should stay flat as the body grows; offsets validation grows with rows. */
static void bench_decode_per_batch(enum shape shape, int64_t rows) {
  struct ArrowSchema schema;
  build_schema(shape, &schema);
  struct batch *batches = build_batches(shape, rows, 1);
  int64_t body = 0;
  struct message *messages = encode_messages(&schema, batches, 1, WG_IPC_COMPRESSION_NONE, &body);
  int64_t repeat = 1, mc_repeat = 1;
  double secs = decode_all(messages, 1, repeat);
  while (secs < 0.2 && repeat < (1 << 24)) { /* grow until the timing is long enough to trust */
    repeat *= secs > 0.001 ? (int64_t)(0.25 / secs) + 1 : 16;
    secs = decode_all(messages, 1, repeat);
  }
  double mc = memcpy_all(messages, 1, mc_repeat);
  while (mc < 0.2 && mc_repeat < (1 << 24)) {
    mc_repeat *= mc > 0.001 ? (int64_t)(0.25 / mc) + 1 : 16;
    mc = memcpy_all(messages, 1, mc_repeat);
  }
  printf("bench ipc_decode_batch shape=%s compression=none rows_per_batch=%lld body_bytes=%lld "
         "repeat=%lld us_per_batch=%.3f ns_per_row=%.3f memcpy_us_per_batch=%.3f\n",
         shape_name(shape), (long long)rows, (long long)body, (long long)repeat,
         secs / (double)repeat * 1e6, secs / (double)repeat / (double)rows * 1e9,
         mc / (double)mc_repeat * 1e6);
  free_message(&messages[0]);
  free_message(&messages[1]);
  free(messages);
  free_batches(batches, 1);
  wg_schema_release(&schema);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0); /* one line per figure, as it is measured */
  double gb = 1.0;
  int64_t rows_per_batch = 65536;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--gb") == 0 && i + 1 < argc) {
      gb = atof(argv[++i]);
    } else if (strcmp(argv[i], "--batch-rows") == 0 && i + 1 < argc) {
      rows_per_batch = atoll(argv[++i]);
    } else {
      fprintf(stderr, "usage: %s [--gb N] [--batch-rows N]\n", argv[0]);
      return 2;
    }
  }
  if (gb <= 0 || rows_per_batch <= 0) {
    fprintf(stderr, "bench_ipc: --gb and --batch-rows must be positive\n");
    return 2;
  }
  static const enum wg_ipc_compression compressions[] = {
      WG_IPC_COMPRESSION_NONE, WG_IPC_COMPRESSION_LZ4_FRAME, WG_IPC_COMPRESSION_ZSTD};
  for (int s = 0; s < 2; s++) {
    enum shape shape = s == 0 ? SHAPE_SEED : SHAPE_WIDE;
    struct ArrowSchema schema;
    build_schema(shape, &schema);
    /* Batches cover the whole volume (no reuse), so figures are memory-bound as in a server. */
    struct batch probe;
    if (shape == SHAPE_SEED)
      build_seed(&probe, 0, rows_per_batch);
    else
      build_wide(&probe, 0, rows_per_batch);
    int64_t n = (int64_t)(gb * 1e9 / (double)probe.arrow_bytes) + 1;
    wg_array_release(&probe.array);
    double t0 = now_seconds();
    struct batch *batches = build_batches(shape, rows_per_batch, n);
    fprintf(stderr, "built %lld %s batches of %lld rows (%.0f MB) in %.1f s\n", (long long)n,
            shape_name(shape), (long long)rows_per_batch, (double)sum_arrow_bytes(batches, n) / 1e6,
            now_seconds() - t0);
    for (int c = 0; c < 3; c++) {
      bench_encode(shape, &schema, batches, n, compressions[c]);
      bench_decode(shape, &schema, batches, n, compressions[c]);
    }
    free_batches(batches, n);
    wg_schema_release(&schema);
  }
  static const int64_t sizes[] = {1024, 65536, 1048576};
  for (int s = 0; s < 2; s++)
    for (int k = 0; k < 3; k++)
      bench_decode_per_batch(s == 0 ? SHAPE_SEED : SHAPE_WIDE, sizes[k]);
  return 0;
}
