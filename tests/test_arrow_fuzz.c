/* wigeon tests: hostile IPC input. Every file in WG_SHARED_DIR/arrow-fuzz (regression inputs that
 * once crashed a real reader) must end decoded or with a non-zero code and a message; then gold
 * streams are truncated at every byte of their first 2 KB, have metadata bytes flipped, and get
 * impossible metadata lengths and body lengths. These tests assert only "no crash, and a clean
 * error where the input is invalid"; run them under ASan+UBSan (-DWG_SANITIZE=ON). Every input
 * is copied into an allocation of exactly its size so that reads past the end are caught.
 * Relies on the C stream reader (wg_ipc_stream_reader_init), wg_ipc_validate_array and
 * tests/support/gold_json.c's wg_gold_touch_array. */
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

#define MAX_BATCHES 10000

struct outcome {
  int rc;            /* 0: decoded to the end */
  int64_t n_batches; /* batches decoded before the end or the error */
  bool has_message;  /* on error: get_last_error gave a non-empty string */
  int bad_array;     /* a returned batch failed validation or the byte walk */
  char message[600];
};

/* Decodes `size` bytes through the C stream interface, validating and reading every batch. */
static void run_stream(const uint8_t *bytes, int64_t size, struct outcome *o) {
  memset(o, 0, sizeof(*o));
  uint8_t *copy = malloc((size_t)(size > 0 ? size : 1));
  if (copy == NULL) abort();
  if (size > 0) memcpy(copy, bytes, (size_t)size);
  struct wg_shared *sh = wg_shared_take(copy, size);
  if (sh == NULL) abort();
  struct ArrowArrayStream s;
  memset(&s, 0, sizeof(s));
  o->rc = wg_ipc_stream_reader_init(&s, sh, NULL);
  wg_shared_unref(sh);
  if (o->rc != 0) {
    snprintf(o->message, sizeof(o->message), "wg_ipc_stream_reader_init: %s",
             wg_status_name(o->rc));
    o->has_message = true;
    return;
  }
  struct ArrowSchema schema;
  memset(&schema, 0, sizeof(schema));
  o->rc = s.get_schema(&s, &schema);
  while (o->rc == 0) {
    struct ArrowArray a;
    memset(&a, 0, sizeof(a));
    o->rc = s.get_next(&s, &a);
    if (o->rc != 0 || a.release == NULL) break;
    o->n_batches++;
    struct wg_error err;
    err.message[0] = '\0';
    if (wg_ipc_validate_array(&schema, &a, &err) != 0) {
      o->bad_array = 1;
      snprintf(o->message, sizeof(o->message), "batch %lld failed wg_ipc_validate_array: %s",
               (long long)o->n_batches - 1, err.message);
    } else {
      uint64_t sum = 0;
      int trc = wg_gold_touch_array(&schema, &a, &sum, &err);
      if (trc != 0 && trc != ENOTSUP) {
        o->bad_array = 2;
        snprintf(o->message, sizeof(o->message), "batch %lld passed validation but: %s",
                 (long long)o->n_batches - 1, err.message);
      }
    }
    wg_array_release(&a);
    if (o->bad_array || o->n_batches >= MAX_BATCHES) break;
  }
  if (o->rc != 0) {
    const char *m = s.get_last_error ? s.get_last_error(&s) : NULL;
    o->has_message = m != NULL && m[0] != '\0';
    snprintf(o->message, sizeof(o->message), "%s", o->has_message ? m : "(empty message)");
  }
  wg_schema_release(&schema);
  wg_stream_release(&s);
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
  if (b.data == NULL) return malloc(1);
  return wg_buf_detach(&b);
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

/* ---- the clusterfuzz / crash regression corpus ---- */

static void fuzz_corpus(void) {
  char dir[1024];
  snprintf(dir, sizeof(dir), "%s/arrow-fuzz", wg_test_shared_dir());
  struct dirent **files = NULL;
  int n = scandir(dir, &files, NULL, by_name);
  if (n < 0) {
    TEST_RECORD(0, "cannot list %s (set WG_SHARED_DIR)", dir);
    return;
  }
  int n_inputs = 0;
  for (int i = 0; i < n; i++) {
    const char *name = files[i]->d_name;
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    if (name[0] == '.' || strcmp(name, "SOURCE.txt") == 0 || stat(path, &st) != 0 ||
        !S_ISREG(st.st_mode)) {
      free(files[i]);
      continue;
    }
    int64_t size = 0;
    uint8_t *bytes = read_file(path, &size);
    if (bytes == NULL) {
      TEST_RECORD(0, "fuzz %s: cannot read", name);
      free(files[i]);
      continue;
    }
    struct outcome o;
    run_stream(bytes, size, &o);
    free(bytes);
    n_inputs++;
    bool ok = (o.rc == 0 || o.has_message) && !o.bad_array && o.n_batches < MAX_BATCHES;
    if (o.rc == 0 && !o.bad_array)
      printf("fuzz %-75s decoded %lld batches\n", name, (long long)o.n_batches);
    else
      printf("fuzz %-75s %s after %lld batches: %s\n", name,
             o.bad_array ? "BAD ARRAY" : wg_status_name(o.rc), (long long)o.n_batches, o.message);
    TEST_RECORD(ok, "fuzz %s: rc %d (%s), %lld batches: %s", name, o.rc, wg_status_name(o.rc),
                (long long)o.n_batches, o.message);
    free(files[i]);
  }
  free(files);
  TEST_RECORD(n_inputs > 0, "no fuzz inputs in %s", dir);
}

/* ---- a minimal reader of the stream framing, to aim the hostile edits ---- */

struct frame {
  int64_t start;      /* first byte of the framing */
  int64_t meta_start; /* the flatbuffer */
  int64_t meta_len;
  int64_t body_len;
  int64_t end; /* one past the body */
  int header_type;
  int64_t body_length_pos; /* absolute position of Message.bodyLength, or -1 */
};

/* Position of field `slot` of the root table of the flatbuffer at d[0..n), or -1. */
static int64_t fb_root_field(const uint8_t *d, int64_t n, int slot) {
  if (n < 8) return -1;
  int64_t table = wg_load_u32(d);
  if (table + 4 > n) return -1;
  int64_t vtable = table - wg_load_i32(d + table);
  if (vtable < 0 || vtable + 4 > n) return -1;
  int64_t vt_size = wg_load_u16(d + vtable);
  if (4 + 2 * slot + 2 > vt_size || vtable + 4 + 2 * slot + 2 > n) return -1;
  int64_t off = wg_load_u16(d + vtable + 4 + 2 * slot);
  if (off == 0 || table + off >= n) return -1;
  return table + off;
}

/* Walks a valid stream; returns the number of messages (not counting the end marker) and sets
 * *eos to where the end marker starts (or the size). */
static int walk_frames(const uint8_t *d, int64_t size, struct frame *out, int max, int64_t *eos) {
  int64_t pos = 0;
  int n = 0;
  *eos = size;
  while (pos + 4 <= size && n < max) {
    struct frame f = {.start = pos};
    int64_t len;
    if (wg_load_u32(d + pos) == 0xFFFFFFFFu) {
      if (pos + 8 > size) break;
      len = wg_load_i32(d + pos + 4);
      f.meta_start = pos + 8;
    } else {
      len = wg_load_i32(d + pos);
      f.meta_start = pos + 4;
    }
    if (len == 0) {
      *eos = pos;
      break;
    }
    if (len < 0 || f.meta_start + len > size) break;
    f.meta_len = len;
    const uint8_t *m = d + f.meta_start;
    int64_t ht = fb_root_field(m, len, 1);
    f.header_type = ht >= 0 ? m[ht] : 0;
    int64_t bl = fb_root_field(m, len, 3);
    f.body_length_pos = bl >= 0 ? f.meta_start + bl : -1;
    f.body_len = bl >= 0 && bl + 8 <= len ? wg_load_i64(m + bl) : 0;
    f.end = f.meta_start + len + f.body_len;
    if (f.body_len < 0 || f.end > size) break;
    out[n++] = f;
    pos = f.end;
  }
  return n;
}

static const char *hostile_files[] = {
    "cpp-21.0.0/generated_primitive.stream",   "cpp-21.0.0/generated_nested.stream",
    "cpp-21.0.0/generated_dictionary.stream",  "cpp-21.0.0/generated_union.stream",
    "cpp-21.0.0/generated_binary_view.stream", "cpp-21.0.0/generated_run_end_encoded.stream",
    "cpp-21.0.0/generated_list_view.stream",   "cpp-21.0.0/generated_nested_dictionary.stream",
    "2.0.0-compression/generated_lz4.stream",  "2.0.0-compression/generated_zstd.stream",
};
#define N_HOSTILE (int)(sizeof(hostile_files) / sizeof(hostile_files[0]))

static uint8_t *read_gold(const char *rel, int64_t *size) {
  char path[2048];
  snprintf(path, sizeof(path), "%s/arrow-gold/%s", wg_test_shared_dir(), rel);
  return read_file(path, size);
}

#define MAX_FRAMES 64

/* Truncating at a message boundary is a shorter valid stream (no bytes left = end of stream);
 * anywhere else it must be an error with a message. */
static void truncate_gold_streams_at_every_byte_of_first_2k(void) {
  for (int f = 0; f < N_HOSTILE; f++) {
    int64_t size;
    uint8_t *d = read_gold(hostile_files[f], &size);
    if (d == NULL) {
      TEST_RECORD(0, "truncate: cannot read %s", hostile_files[f]);
      continue;
    }
    struct frame fr[MAX_FRAMES];
    int64_t eos;
    int n = walk_frames(d, size, fr, MAX_FRAMES, &eos);
    int64_t limit = size < 2048 ? size : 2048;
    int failures = 0, errors = 0, clean = 0;
    char first[700] = "";
    for (int64_t cut = 0; cut < limit; cut++) {
      struct outcome o;
      run_stream(d, cut, &o);
      /* Which message boundary, if any, is the cut on; and how many batches lie before it. */
      bool boundary = cut == eos;
      int64_t batches_before = 0;
      for (int k = 0; k < n; k++) {
        if (fr[k].end <= cut && fr[k].header_type == WG_IPC_MESSAGE_RECORD_BATCH) batches_before++;
        if (fr[k].end == cut) boundary = true;
      }
      bool has_schema = n > 0 && fr[0].end <= cut;
      bool ok;
      if (o.bad_array) {
        ok = false;
      } else if (boundary && has_schema) {
        ok = o.rc == 0 && o.n_batches == batches_before;
      } else {
        ok = o.rc != 0 && o.has_message && o.n_batches <= batches_before;
      }
      if (o.rc != 0)
        errors++;
      else
        clean++;
      if (!ok && failures++ == 0)
        snprintf(first, sizeof(first),
                 "cut at %lld of %lld (%s): rc %s, %lld batches (%lld "
                 "before the cut): %.300s",
                 (long long)cut, (long long)size,
                 boundary ? "message boundary" : "inside a message", wg_status_name(o.rc),
                 (long long)o.n_batches, (long long)batches_before, o.message);
    }
    printf("truncate %-45s %lld cuts: %d errors, %d clean ends, %d unexpected\n", hostile_files[f],
           (long long)limit, errors, clean, failures);
    TEST_RECORD(failures == 0, "truncate %s: %d unexpected outcomes; first: %s", hostile_files[f],
                failures, first);
    free(d);
  }
}

/* Flipping metadata bytes may give a valid stream or an error, but never a crash, an error
 * without a message or an array that fails validation. */
static void flip_each_metadata_byte(void) {
  static const uint8_t patterns[] = {0xFF, 0x01, 0x80};
  for (int f = 0; f < N_HOSTILE; f++) {
    int64_t size;
    uint8_t *d = read_gold(hostile_files[f], &size);
    if (d == NULL) {
      TEST_RECORD(0, "flip: cannot read %s", hostile_files[f]);
      continue;
    }
    struct frame fr[MAX_FRAMES];
    int64_t eos;
    int n = walk_frames(d, size, fr, MAX_FRAMES, &eos);
    int runs = 0, errors = 0, failures = 0;
    char first[700] = "";
    for (int k = 0; k < n && runs < 6000; k++) {
      /* the framing words too: continuation and length */
      for (int64_t pos = fr[k].start; pos < fr[k].meta_start + fr[k].meta_len && runs < 6000;
           pos++) {
        for (size_t p = 0; p < sizeof(patterns); p++) {
          d[pos] ^= patterns[p];
          struct outcome o;
          run_stream(d, size, &o);
          d[pos] ^= patterns[p];
          runs++;
          if (o.rc != 0) errors++;
          bool ok = !o.bad_array && (o.rc == 0 || o.has_message);
          if (!ok && failures++ == 0)
            snprintf(first, sizeof(first), "byte %lld ^= 0x%02X (message %d): rc %s: %.300s",
                     (long long)pos, patterns[p], k, wg_status_name(o.rc), o.message);
        }
      }
    }
    printf("flip     %-45s %d runs over %d messages: %d errors, %d unexpected\n", hostile_files[f],
           runs, n, errors, failures);
    TEST_RECORD(failures == 0 && runs > 0, "flip %s: %d unexpected outcomes; first: %s",
                hostile_files[f], failures, first);
    free(d);
  }
}

/* Body bytes (offsets, type ids, run ends, view headers, compressed frames) flipped at a stride. */
static void flip_body_bytes(void) {
  for (int f = 0; f < N_HOSTILE; f++) {
    int64_t size;
    uint8_t *d = read_gold(hostile_files[f], &size);
    if (d == NULL) continue;
    struct frame fr[MAX_FRAMES];
    int64_t eos;
    int n = walk_frames(d, size, fr, MAX_FRAMES, &eos);
    int runs = 0, errors = 0, failures = 0;
    char first[700] = "";
    for (int k = 0; k < n; k++) {
      int64_t body = fr[k].meta_start + fr[k].meta_len;
      for (int64_t pos = body; pos < fr[k].end && runs < 4000; pos += 3) {
        d[pos] ^= 0xA5;
        struct outcome o;
        run_stream(d, size, &o);
        d[pos] ^= 0xA5;
        runs++;
        if (o.rc != 0) errors++;
        bool ok = !o.bad_array && (o.rc == 0 || o.has_message);
        if (!ok && failures++ == 0)
          snprintf(first, sizeof(first), "body byte %lld (message %d): rc %s: %.300s",
                   (long long)pos, k, wg_status_name(o.rc), o.message);
      }
    }
    printf("flipbody %-45s %d runs: %d errors, %d unexpected\n", hostile_files[f], runs, errors,
           failures);
    TEST_RECORD(failures == 0, "flip body %s: %d unexpected outcomes; first: %s", hostile_files[f],
                failures, first);
    free(d);
  }
}

/* A metadata length prefix larger than the file (or negative) is an error, not a read. */
static void metadata_length_past_end_of_file(void) {
  static const int64_t lengths[] = {-1 /* filled with size + 8 */, 0x7FFFFFF8, -8, -0x7FFFFFFF};
  for (int f = 0; f < N_HOSTILE; f++) {
    int64_t size;
    uint8_t *d = read_gold(hostile_files[f], &size);
    if (d == NULL) continue;
    struct frame fr[MAX_FRAMES];
    int64_t eos;
    int n = walk_frames(d, size, fr, MAX_FRAMES, &eos);
    for (int k = 0; k < n && k < 3; k++) {
      int64_t at = fr[k].meta_start - 4; /* the int32 length */
      for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        int64_t len = i == 0 ? size + 8 : lengths[i];
        uint8_t saved[4];
        memcpy(saved, d + at, 4);
        wg_store_u32(d + at, (uint32_t)len);
        struct outcome o;
        run_stream(d, size, &o);
        memcpy(d + at, saved, 4);
        bool ok = o.rc != 0 && o.has_message && !o.bad_array;
        TEST_RECORD(ok, "%s: message %d metadata length %lld: rc %s, %lld batches: %s",
                    hostile_files[f], k, (long long)len, wg_status_name(o.rc),
                    (long long)o.n_batches, o.message);
      }
    }
    free(d);
  }
}

/* Message.bodyLength negative, huge, or past the end of the file: an error for that message. */
static void body_length_negative_or_past_end(void) {
  static const int64_t values[] = {-1, -8, INT64_MIN, (int64_t)1 << 62, 0 /* size - pos + 8 */};
  for (int f = 0; f < N_HOSTILE; f++) {
    int64_t size;
    uint8_t *d = read_gold(hostile_files[f], &size);
    if (d == NULL) continue;
    struct frame fr[MAX_FRAMES];
    int64_t eos;
    int n = walk_frames(d, size, fr, MAX_FRAMES, &eos);
    int patched = 0;
    for (int k = 0; k < n; k++) {
      if (fr[k].body_length_pos < 0 || fr[k].body_len == 0) continue;
      int64_t batches_before = 0;
      for (int i = 0; i < k; i++)
        batches_before += fr[i].header_type == WG_IPC_MESSAGE_RECORD_BATCH;
      for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        int64_t v = values[i] != 0 ? values[i] : size - (fr[k].meta_start + fr[k].meta_len) + 8;
        uint8_t saved[8];
        memcpy(saved, d + fr[k].body_length_pos, 8);
        wg_store_i64(d + fr[k].body_length_pos, v);
        struct outcome o;
        run_stream(d, size, &o);
        memcpy(d + fr[k].body_length_pos, saved, 8);
        bool ok = o.rc != 0 && o.has_message && !o.bad_array && o.n_batches <= batches_before;
        TEST_RECORD(ok,
                    "%s: message %d (type %d) bodyLength %lld: rc %s, %lld batches (%lld "
                    "before it): %s",
                    hostile_files[f], k, fr[k].header_type, (long long)v, wg_status_name(o.rc),
                    (long long)o.n_batches, (long long)batches_before, o.message);
      }
      if (++patched >= 2) break;
    }
    TEST_RECORD(patched > 0, "%s: no message with a body to patch", hostile_files[f]);
    free(d);
  }
}

/* Garbage and degenerate inputs. */
static void degenerate_inputs(void) {
  static const uint8_t eos[] = {0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};
  static const uint8_t cont_only[] = {0xFF, 0xFF, 0xFF, 0xFF};
  static const uint8_t tiny_meta[] = {0xFF, 0xFF, 0xFF, 0xFF, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  static const uint8_t legacy_zero[] = {0, 0, 0, 0};
  struct {
    const char *name;
    const uint8_t *p;
    int64_t n;
  } cases[] = {
      {"empty", eos, 0},
      {"end-of-stream only", eos, 8},
      {"continuation only", cont_only, 4},
      {"8-byte zero flatbuffer", tiny_meta, 16},
      {"legacy zero length", legacy_zero, 4},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct outcome o;
    run_stream(cases[i].p, cases[i].n, &o);
    /* None has a schema: get_schema must fail with a message. */
    TEST_RECORD(o.rc != 0 && o.has_message, "%s: rc %s: %s", cases[i].name, wg_status_name(o.rc),
                o.message);
  }
}

int main(void) {
  (void)wg_test_current_failed;
  setvbuf(stdout, NULL, _IONBF, 0); /* interleave with the FAIL lines on stderr */
  fuzz_corpus();
  degenerate_inputs();
  truncate_gold_streams_at_every_byte_of_first_2k();
  metadata_length_past_end_of_file();
  body_length_negative_or_past_end();
  flip_each_metadata_byte();
  flip_body_bytes();
  return TEST_SUMMARY();
}
