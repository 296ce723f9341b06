/* wigeon: DuckDB -> Arrow (duckdb_data_chunk_to_arrow) -> our IPC encoder -> bytes -> our IPC
 * stream reader -> DuckDB, compared in SQL: with the source table, and, for the types DuckDB's
 * own Arrow export/import already changes, with the same round trip done without our codec
 * (DuckDB Arrow -> DuckDB directly). Also the engine's query/ingest error paths.
 * Relies on engine/arrow_duck.h, arrow/ipc.h and an in-memory DuckDB per test. */
#include <stdarg.h>
#include <stdbool.h>

#include "arrow/array.h"
#include "arrow/ipc.h"
#include "engine/arrow_duck.h"
#include "test.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers */

struct duck {
  duckdb_database db;
  duckdb_connection conn;
};

static int duck_open(struct duck *d) {
  memset(d, 0, sizeof(*d));
  if (duckdb_open(NULL, &d->db) != DuckDBSuccess) return EIO;
  if (duckdb_connect(d->db, &d->conn) != DuckDBSuccess) {
    duckdb_close(&d->db);
    return EIO;
  }
  return 0;
}

static void duck_close(struct duck *d) {
  if (d->conn != NULL) duckdb_disconnect(&d->conn);
  if (d->db != NULL) duckdb_close(&d->db);
}

/* Runs a query that returns one integer; -1 (and a message on stderr) on error. */
static int64_t query_i64(duckdb_connection c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int64_t query_i64(duckdb_connection c, const char *fmt, ...) {
  char sql[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof(sql), fmt, ap);
  va_end(ap);
  duckdb_result r;
  int64_t v = -1;
  if (duckdb_query(c, sql, &r) != DuckDBSuccess) {
    fprintf(stderr, "  query failed: %s\n  sql: %s\n", duckdb_result_error(&r), sql);
  } else if (duckdb_row_count(&r) != 1 || duckdb_column_count(&r) != 1) {
    fprintf(stderr, "  query returned %llu rows: %s\n", (unsigned long long)duckdb_row_count(&r),
            sql);
  } else {
    v = duckdb_value_int64(&r, 0, 0);
  }
  duckdb_destroy_result(&r);
  return v;
}

/* An ArrowArrayStream over batches held in memory (DuckDB's arrays, for the direct round trip). */
struct list_stream {
  struct ArrowSchema schema;
  struct ArrowArray *arrays;
  int64_t n, cap, next;
};

static int list_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct list_stream *l = s->private_data;
  return wg_schema_deep_copy(&l->schema, out, NULL);
}

static int list_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct list_stream *l = s->private_data;
  if (l->next < l->n)
    wg_array_move(&l->arrays[l->next++], out);
  else
    out->release = NULL;
  return 0;
}

static const char *list_get_last_error(struct ArrowArrayStream *s) {
  return NULL;
}

static void list_release(struct ArrowArrayStream *s) {
  struct list_stream *l = s->private_data;
  wg_schema_release(&l->schema);
  for (int64_t i = 0; i < l->n; i++)
    wg_array_release(&l->arrays[i]);
  free(l->arrays);
  free(l);
  s->release = NULL;
}

/* Drains `in` (released here) into a list stream `out`. */
static int collect_stream(struct ArrowArrayStream *in, struct ArrowArrayStream *out,
                          struct wg_error *err) {
  struct list_stream *l = calloc(1, sizeof(*l));
  int rc = l == NULL ? ENOMEM : in->get_schema(in, &l->schema);
  while (rc == 0) {
    if (l->n == l->cap) {
      int64_t cap = l->cap ? l->cap * 2 : 16;
      struct ArrowArray *a = realloc(l->arrays, (size_t)cap * sizeof(*a));
      if (a == NULL) {
        rc = ENOMEM;
        break;
      }
      l->arrays = a;
      l->cap = cap;
    }
    rc = in->get_next(in, &l->arrays[l->n]);
    if (rc != 0 || l->arrays[l->n].release == NULL) break;
    l->n++;
  }
  if (rc != 0) {
    const char *msg = in->get_last_error(in);
    wg_error_set(err, rc, "collecting DuckDB's arrays: %s", msg ? msg : "");
  }
  wg_stream_release(in);
  struct ArrowArrayStream s = {list_get_schema, list_get_next, list_get_last_error, list_release,
                               l};
  if (rc != 0) {
    if (l != NULL) list_release(&s);
    return rc;
  }
  *out = s;
  return 0;
}

enum encode_path {
  ENCODE_PIECES,       /* wg_ipc_encoder_* + wg_ipc_encoded_append_framed + wg_ipc_append_eos */
  ENCODE_WRITE_STREAM, /* wg_ipc_write_stream */
};

/* Checks the encoder's contract on one message: padded metadata, pieces adding up to the body. */
static int check_encoded(const struct wg_ipc_encoded *m, struct wg_error *err) {
  int64_t sum = 0;
  for (int64_t i = 0; i < m->n_pieces; i++)
    sum += m->pieces[i].size;
  if (sum != m->body_length || m->body_length % 8 != 0 || m->metadata.size % 8 != 0)
    return wg_error_set(
        err, EPROTO, "encoded message type %d: pieces sum %lld, body_length %lld, metadata %lld",
        (int)m->type, (long long)sum, (long long)m->body_length, (long long)m->metadata.size);
  return 0;
}

/* Encodes `in` (released here) as an IPC stream appended to `out`. */
static int encode_stream(struct ArrowArrayStream *in, enum wg_ipc_compression compression,
                         enum encode_path path, struct wg_buf *out, struct wg_error *err) {
  struct wg_ipc_encoder_options options = {compression, 0};
  if (path == ENCODE_WRITE_STREAM) {
    int rc = wg_ipc_write_stream(in, &options, out, err);
    wg_stream_release(in);
    return rc;
  }
  struct ArrowSchema schema = {0};
  struct wg_ipc_encoder *enc = NULL;
  struct wg_ipc_encoded *msgs = NULL;
  int64_t max = 0;
  int rc = in->get_schema(in, &schema);
  if (rc != 0) {
    wg_error_set(err, rc, "get_schema: %s", in->get_last_error(in));
    goto done;
  }
  rc = wg_ipc_encoder_create(&enc, &schema, &options, err);
  if (rc != 0) goto done;
  max = wg_ipc_encoder_max_messages(enc);
  msgs = calloc((size_t)(max > 0 ? max : 1), sizeof(*msgs));
  if (msgs == NULL) {
    rc = wg_error_set(err, ENOMEM, "out of memory for %lld messages", (long long)max);
    goto done;
  }
  for (int64_t i = 0; i < max; i++)
    wg_ipc_encoded_init(&msgs[i]);
  rc = wg_ipc_encoder_schema(enc, &msgs[0], err);
  if (rc == 0) rc = check_encoded(&msgs[0], err);
  if (rc == 0 && wg_ipc_encoded_append_framed(&msgs[0], out) != 0)
    rc = wg_error_set(err, ENOMEM, "appending the schema message");
  while (rc == 0) {
    struct ArrowArray batch;
    rc = in->get_next(in, &batch);
    if (rc != 0) {
      wg_error_set(err, rc, "get_next: %s", in->get_last_error(in));
      break;
    }
    if (batch.release == NULL) break;
    int64_t n = 0;
    rc = wg_ipc_encoder_batch(enc, &batch, msgs, &n, err);
    for (int64_t i = 0; rc == 0 && i < n; i++) {
      rc = check_encoded(&msgs[i], err);
      if (rc == 0 && wg_ipc_encoded_append_framed(&msgs[i], out) != 0)
        rc = wg_error_set(err, ENOMEM, "appending message %lld", (long long)i);
    }
    /* The pieces point into the batch: reset them before the batch goes. */
    for (int64_t i = 0; i < max; i++)
      wg_ipc_encoded_reset(&msgs[i]);
    wg_array_release(&batch);
  }
  if (rc == 0 && wg_ipc_append_eos(out) != 0) rc = wg_error_set(err, ENOMEM, "appending EOS");
done:
  if (msgs != NULL) {
    for (int64_t i = 0; i < max; i++)
      wg_ipc_encoded_reset(&msgs[i]);
    free(msgs);
  }
  wg_ipc_encoder_destroy(enc);
  wg_schema_release(&schema);
  wg_stream_release(in);
  return rc;
}

/* Reads IPC stream bytes with our reader and creates `table` from them. The bytes are copied into
 * a 64-byte aligned block first, as a receive buffer would be. */
static int decode_into(duckdb_connection c, const struct wg_buf *bytes, int64_t size,
                       const char *table, int64_t *rows, struct wg_error *err) {
  struct wg_shared *data = wg_shared_copy(bytes->data, size);
  if (data == NULL) return wg_error_set(err, ENOMEM, "copying %lld bytes", (long long)size);
  struct ArrowArrayStream reader;
  int rc = wg_ipc_stream_reader_init(&reader, data, NULL);
  wg_shared_unref(data); /* the reader holds its own reference */
  if (rc != 0) return wg_error_set(err, rc, "wg_ipc_stream_reader_init failed");
  return wg_engine_ingest_arrow_stream_mode(c, table, WG_ENGINE_INGEST_CREATE, &reader, rows, err);
}

/* `src` -> Arrow -> our encoder -> bytes -> our reader -> table `via_wg`, and
 * `src` -> Arrow -> table `via_duck` directly. */
static int roundtrip_both(duckdb_connection c, const char *src, enum wg_ipc_compression compression,
                          enum encode_path path, int64_t *ipc_bytes, struct wg_error *err) {
  char sql[256];
  snprintf(sql, sizeof(sql), "SELECT * FROM %s", src);
  struct ArrowArrayStream q;
  struct wg_buf bytes;
  wg_buf_init(&bytes);
  int64_t rows = 0;
  int rc = wg_engine_query_arrow_stream(c, sql, &q, err);
  if (rc == 0) rc = encode_stream(&q, compression, path, &bytes, err);
  if (rc == 0) rc = decode_into(c, &bytes, bytes.size, "via_wg", &rows, err);
  *ipc_bytes = bytes.size;
  wg_buf_reset(&bytes);
  if (rc != 0) return wg_error_prefix(err, rc, "round trip through our IPC");

  struct ArrowArrayStream list;
  rc = wg_engine_query_arrow_stream(c, sql, &q, err);
  if (rc == 0) rc = collect_stream(&q, &list, err);
  if (rc == 0)
    rc = wg_engine_ingest_arrow_stream_mode(c, "via_duck", WG_ENGINE_INGEST_CREATE, &list, NULL,
                                            err);
  if (rc != 0) return wg_error_prefix(err, rc, "round trip through DuckDB's Arrow alone");
  return 0;
}

/* Rows of `a` not in `b`, as a multiset, over the select list `cols`. */
static int64_t except_all_count(duckdb_connection c, const char *cols, const char *a,
                                const char *b) {
  return query_i64(c, "SELECT count(*) FROM (SELECT %s FROM %s EXCEPT ALL SELECT %s FROM %s)", cols,
                   a, cols, b);
}

/* (position, name, type) triples of `a` missing from `b`, ignoring the columns in `skip` (a SQL
 * list of string literals, or "''"). */
static int64_t column_type_mismatches(duckdb_connection c, const char *a, const char *b,
                                      const char *skip) {
  return query_i64(c,
                   "SELECT count(*) FROM ("
                   "SELECT column_index, column_name, data_type FROM duckdb_columns() "
                   "WHERE table_name = '%s' AND column_name NOT IN (%s) EXCEPT ALL "
                   "SELECT column_index, column_name, data_type FROM duckdb_columns() "
                   "WHERE table_name = '%s' AND column_name NOT IN (%s))",
                   a, skip, b, skip);
}

/* Joins names as `"a", "b"` (identifiers) or `'a', 'b'` (literals) into buf. */
static void join_names(char *buf, size_t size, const char *const *names, char quote) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; names[i] != NULL; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%c%s%c", i ? ", " : "", quote, names[i],
                             quote);
  if (used == 0) snprintf(buf, size, "%c%c", quote, quote);
}

/* The checks every round trip gets:
 *  1. ours == DuckDB's own Arrow round trip, every column, same types (our codec is invisible);
 *  2. ours == the source on every column DuckDB's Arrow path preserves, same types;
 *  3. each column in `lossy` really is changed by DuckDB alone (so the list stays honest).
 * EXCEPT ALL in both directions plus equal counts means equal multisets of rows. Every type
 * test_all_types() produces compares directly in DuckDB (nested, map and union included), so no
 * column needed a VARCHAR cast. */
static void check_tables(duckdb_connection c, const char *src, const char *const *lossy) {
  static const char *const none[] = {NULL};
  if (lossy == NULL) lossy = none;
  char idents[1024], literals[1024], cols[1100];
  join_names(idents, sizeof(idents), lossy, '"');
  join_names(literals, sizeof(literals), lossy, '\'');
  if (lossy[0] != NULL)
    snprintf(cols, sizeof(cols), "* EXCLUDE (%s)", idents);
  else
    snprintf(cols, sizeof(cols), "*");

  int64_t n_src = query_i64(c, "SELECT count(*) FROM %s", src);
  ASSERT_TRUE(n_src >= 0);
  ASSERT_EQ(query_i64(c, "SELECT count(*) FROM via_wg"), n_src);
  ASSERT_EQ(query_i64(c, "SELECT count(*) FROM via_duck"), n_src);

  ASSERT_EQ(column_type_mismatches(c, "via_wg", "via_duck", "''"), 0);
  ASSERT_EQ(column_type_mismatches(c, "via_duck", "via_wg", "''"), 0);
  ASSERT_EQ(except_all_count(c, "*", "via_wg", "via_duck"), 0);
  ASSERT_EQ(except_all_count(c, "*", "via_duck", "via_wg"), 0);

  ASSERT_EQ(column_type_mismatches(c, src, "via_wg", literals), 0);
  ASSERT_EQ(column_type_mismatches(c, "via_wg", src, literals), 0);
  ASSERT_EQ(except_all_count(c, cols, src, "via_wg"), 0);
  ASSERT_EQ(except_all_count(c, cols, "via_wg", src), 0);

  for (int i = 0; lossy[i] != NULL; i++) {
    int64_t changed = query_i64(c,
                                "SELECT count(*) FROM duckdb_columns() a JOIN duckdb_columns() b "
                                "USING (column_name) WHERE a.table_name = '%s' AND "
                                "b.table_name = 'via_duck' AND column_name = '%s' AND "
                                "a.data_type <> b.data_type",
                                src, lossy[i]);
    if (changed != 1)
      TEST_FAIL_("column %s is not changed by DuckDB's own Arrow round trip", lossy[i]);
  }
}

/* Columns of test_all_types() that DuckDB 1.4.4's own Arrow export + import (no IPC involved)
 * changes with default settings; our result is compared with DuckDB's direct round trip there:
 *  hugeint     exported as decimal128(38,0): comes back DECIMAL(38,0), and its minimum
 *              (-2^127, 39 digits) does not even cast back;
 *  time_tz     exported as time64[us]: the offset is dropped, comes back TIME;
 *  uuid        exported as utf8: comes back VARCHAR (same text);
 *  bit         exported as binary: comes back BLOB (the packed bytes, not the bit string);
 *  *_enum      exported as dictionary<utf8>: comes back VARCHAR (same text). */
static const char *const lossy_default[] = {"hugeint",    "time_tz",     "uuid",       "bit",
                                            "small_enum", "medium_enum", "large_enum", NULL};
/* With arrow_lossless_conversion DuckDB tags hugeint, uuid, time_tz, bit, ... as extension types
 * (field metadata our codec must carry); only the enums still come back VARCHAR. */
static const char *const lossy_lossless[] = {"small_enum", "medium_enum", "large_enum", NULL};

static void all_types_case(const char *settings, enum wg_ipc_compression compression,
                           enum encode_path path, const char *const *lossy) {
  struct duck d;
  struct wg_error err = {{0}};
  int64_t ipc_bytes = 0;
  ASSERT_EQ(duck_open(&d), 0);
  int rc = settings ? wg_engine_exec(d.conn, settings, &err) : 0;
  if (rc == 0)
    rc = wg_engine_exec(d.conn, "CREATE TABLE src AS SELECT * FROM test_all_types()", &err);
  if (rc == 0) rc = roundtrip_both(d.conn, "src", compression, path, &ipc_bytes, &err);
  if (rc != 0) {
    TEST_FAIL_("%s: %s", wg_status_name(rc), err.message);
    duck_close(&d);
    return;
  }
  check_tables(d.conn, "src", lossy);
  duck_close(&d);
}

/* ---------------------------------------------------------------------------------------------
 * test_all_types() */

static void all_types_match_source_or_duckdb_own_arrow_roundtrip_uncompressed(void) {
  all_types_case(NULL, WG_IPC_COMPRESSION_NONE, ENCODE_PIECES, lossy_default);
}

static void all_types_match_source_or_duckdb_own_arrow_roundtrip_lz4(void) {
  all_types_case(NULL, WG_IPC_COMPRESSION_LZ4_FRAME, ENCODE_WRITE_STREAM, lossy_default);
}

static void all_types_match_source_or_duckdb_own_arrow_roundtrip_zstd(void) {
  all_types_case(NULL, WG_IPC_COMPRESSION_ZSTD, ENCODE_PIECES, lossy_default);
}

static void all_types_as_arrow_extension_types_keep_field_metadata(void) {
  all_types_case("SET arrow_lossless_conversion = true", WG_IPC_COMPRESSION_NONE, ENCODE_PIECES,
                 lossy_lossless);
}

static void all_types_with_64bit_offsets_match_source(void) {
  /* large_utf8 / large_binary / large_list: 64-bit offset buffers. */
  all_types_case("SET arrow_large_buffer_size = true", WG_IPC_COMPRESSION_NONE, ENCODE_WRITE_STREAM,
                 lossy_default);
}

/* ---------------------------------------------------------------------------------------------
 * Seed-shaped data: 100k rows of (batch_id BIGINT, timestamp VARCHAR, value DOUBLE,
 * category VARCHAR), every column with some NULLs. */

static const char seed_sql[] =
    "CREATE TABLE seed AS SELECT "
    "CASE WHEN i % 1009 = 0 THEN NULL ELSE (i // 1000)::BIGINT END AS batch_id, "
    "CASE WHEN i % 97 = 0 THEN NULL ELSE "
    "strftime(TIMESTAMP '2024-01-01' + to_seconds(i * 7), '%Y-%m-%dT%H:%M:%S.') || "
    "lpad((i % 1000)::VARCHAR, 3, '0') || 'Z' END AS \"timestamp\", "
    "CASE WHEN i % 101 = 0 THEN NULL WHEN i % 997 = 0 THEN 'NaN'::DOUBLE "
    "ELSE (i * 0.37) - 5000 END AS value, "
    "CASE WHEN i % 89 = 0 THEN NULL WHEN i % 13 = 0 THEN '' "
    "ELSE 'category_' || (i % 17) END AS category "
    "FROM range(100000) t(i)";

static void seed_case(const char *settings, enum wg_ipc_compression compression,
                      enum encode_path path, int64_t *ipc_bytes_out) {
  struct duck d;
  struct wg_error err = {{0}};
  int64_t ipc_bytes = 0;
  ASSERT_EQ(duck_open(&d), 0);
  int rc = settings ? wg_engine_exec(d.conn, settings, &err) : 0;
  if (rc == 0) rc = wg_engine_exec(d.conn, seed_sql, &err);
  if (rc == 0) rc = roundtrip_both(d.conn, "seed", compression, path, &ipc_bytes, &err);
  if (rc != 0) {
    TEST_FAIL_("%s: %s", wg_status_name(rc), err.message);
    duck_close(&d);
    return;
  }
  if (ipc_bytes_out != NULL) *ipc_bytes_out = ipc_bytes;
  ASSERT_EQ(query_i64(d.conn, "SELECT count(*) FROM seed"), 100000);
  ASSERT_EQ(query_i64(d.conn,
                      "SELECT (count(batch_id) < count(*) AND count(\"timestamp\") < count(*) "
                      "AND count(value) < count(*) AND count(category) < count(*))::INTEGER "
                      "FROM seed"),
            1);
  /* NaN equals NaN in DuckDB's comparisons, so value needs no cast either. */
  check_tables(d.conn, "seed", NULL);
  duck_close(&d);
}

static int64_t seed_plain_bytes = -1;

static void seed_100k_rows_with_nulls_roundtrip_exactly_uncompressed(void) {
  seed_case(NULL, WG_IPC_COMPRESSION_NONE, ENCODE_PIECES, &seed_plain_bytes);
}

static void seed_100k_rows_with_nulls_roundtrip_exactly_and_smaller_with_lz4(void) {
  int64_t bytes = -1;
  seed_case(NULL, WG_IPC_COMPRESSION_LZ4_FRAME, ENCODE_PIECES, &bytes);
  if (seed_plain_bytes > 0 && !wg_test_current_failed) ASSERT_TRUE(bytes < seed_plain_bytes);
}

static void seed_100k_rows_with_nulls_roundtrip_exactly_and_smaller_with_zstd(void) {
  int64_t bytes = -1;
  seed_case(NULL, WG_IPC_COMPRESSION_ZSTD, ENCODE_WRITE_STREAM, &bytes);
  if (seed_plain_bytes > 0 && !wg_test_current_failed) ASSERT_TRUE(bytes < seed_plain_bytes);
}

static void seed_as_string_views_roundtrip_exactly(void) {
  /* utf8_view columns: variadic data buffers and inline/out-of-line views. */
  seed_case("SET arrow_output_version = '1.4'; SET produce_arrow_string_view = true",
            WG_IPC_COMPRESSION_NONE, ENCODE_PIECES, NULL);
}

static void seed_as_string_views_roundtrip_exactly_with_zstd(void) {
  seed_case("SET arrow_output_version = '1.4'; SET produce_arrow_string_view = true",
            WG_IPC_COMPRESSION_ZSTD, ENCODE_WRITE_STREAM, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Engine edges */

static void query_stream_reports_bind_error_as_einval_and_stays_released(void) {
  struct duck d;
  struct wg_error err = {{0}};
  struct ArrowArrayStream s;
  ASSERT_EQ(duck_open(&d), 0);
  int rc = wg_engine_query_arrow_stream(d.conn, "SELECT no_such_column FROM range(3)", &s, &err);
  duck_close(&d);
  ASSERT_EQ(rc, EINVAL);
  ASSERT_TRUE(s.release == NULL);
  ASSERT_TRUE(strstr(err.message, "no_such_column") != NULL);
}

static void query_stream_reports_conversion_error_as_einval_with_duckdb_message(void) {
  struct duck d;
  struct wg_error err = {{0}};
  struct ArrowArrayStream s;
  struct ArrowArray a;
  ASSERT_EQ(duck_open(&d), 0);
  /* The cast fails only when row 50000 is reached: usually in get_next, but DuckDB's threads may
   * get there while the stream opens, so both places are accepted. */
  int rc = wg_engine_query_arrow_stream(d.conn,
                                        "SELECT (CASE WHEN i = 50000 THEN 'x' ELSE i::VARCHAR END)"
                                        "::INTEGER AS v FROM range(100000) t(i)",
                                        &s, &err);
  int status = rc;
  char msg[512];
  snprintf(msg, sizeof(msg), "%s", err.message);
  if (rc == 0) {
    for (;;) {
      status = s.get_next(&s, &a);
      if (status != 0 || a.release == NULL) break;
      a.release(&a);
    }
    const char *m = s.get_last_error(&s);
    snprintf(msg, sizeof(msg), "%s", m ? m : "");
    s.release(&s);
  }
  duck_close(&d);
  ASSERT_EQ(status, EINVAL);
  if (strstr(msg, "'x'") == NULL) TEST_FAIL_("message does not name the value: %s", msg);
}

static void ingest_modes_create_refuses_existing_and_append_adds_by_name(void) {
  struct duck d;
  struct wg_error err = {{0}};
  struct ArrowArrayStream s;
  int64_t rows = -1;
  ASSERT_EQ(duck_open(&d), 0);
  /* Query streams are collected before ingest: ingest runs statements on the connection, which
   * would close a streaming result open on it. */
  static const char rows_sql[] = "SELECT 'x' || i AS b, i::INTEGER AS a FROM range(10) t(i)";
  struct ArrowArrayStream q;
  int rc =
      wg_engine_exec(d.conn, "CREATE TABLE t (a INTEGER, b VARCHAR, c DOUBLE DEFAULT 1.5)", &err);
  if (rc == 0) rc = wg_engine_query_arrow_stream(d.conn, rows_sql, &q, &err);
  if (rc == 0) rc = collect_stream(&q, &s, &err);
  if (rc == 0) {
    rc = wg_engine_ingest_arrow_stream_mode(d.conn, "t", WG_ENGINE_INGEST_CREATE, &s, &rows, &err);
    ASSERT_TRUE(s.release == NULL);
  }
  int create_rc = rc;
  rc = wg_engine_query_arrow_stream(d.conn, rows_sql, &q, &err);
  if (rc == 0) rc = collect_stream(&q, &s, &err);
  if (rc == 0)
    rc = wg_engine_ingest_arrow_stream_mode(d.conn, "t", WG_ENGINE_INGEST_APPEND, &s, &rows, &err);
  int64_t matched = query_i64(d.conn, "SELECT count(*) FROM t WHERE b = 'x' || a AND c = 1.5");
  int missing_rc = 0;
  if (wg_engine_query_arrow_stream(d.conn, "SELECT 1 AS a", &q, &err) == 0 &&
      collect_stream(&q, &s, &err) == 0)
    missing_rc =
        wg_engine_ingest_arrow_stream_mode(d.conn, "nope", WG_ENGINE_INGEST_APPEND, &s, NULL, &err);
  duck_close(&d);
  ASSERT_EQ(create_rc, EEXIST);
  if (rc != 0) {
    TEST_FAIL_("append: %s: %s", wg_status_name(rc), err.message);
    return;
  }
  ASSERT_EQ(rows, 10);
  ASSERT_EQ(matched, 10);
  ASSERT_EQ(missing_rc, ENOENT);
}

static void ingest_of_truncated_ipc_stream_fails_with_reader_status_and_creates_nothing(void) {
  struct duck d;
  struct wg_error err = {{0}};
  struct ArrowArrayStream q;
  struct wg_buf bytes;
  wg_buf_init(&bytes);
  ASSERT_EQ(duck_open(&d), 0);
  int rc = wg_engine_exec(d.conn, seed_sql, &err);
  if (rc == 0) rc = wg_engine_query_arrow_stream(d.conn, "SELECT * FROM seed", &q, &err);
  if (rc == 0) rc = encode_stream(&q, WG_IPC_COMPRESSION_NONE, ENCODE_PIECES, &bytes, &err);
  if (rc != 0) {
    TEST_FAIL_("setup: %s", err.message);
    wg_buf_reset(&bytes);
    duck_close(&d);
    return;
  }
  /* Cut in the middle of the stream: earlier batches decode, then the reader fails. */
  int64_t rows = -1;
  rc = decode_into(d.conn, &bytes, bytes.size / 2 + 3, "cut", &rows, &err);
  int64_t tables =
      query_i64(d.conn, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'cut'");
  int64_t views =
      query_i64(d.conn, "SELECT count(*) FROM duckdb_views() WHERE view_name LIKE '__wg_ingest%%'");
  wg_buf_reset(&bytes);
  duck_close(&d);
  if (rc != ESPIPE && rc != EPROTO)
    TEST_FAIL_("expected ESPIPE or EPROTO, got %d (%s): %s", rc, wg_status_name(rc), err.message);
  ASSERT_EQ(tables, 0);
  ASSERT_EQ(views, 0);
}

int main(void) {
  RUN_TEST(query_stream_reports_bind_error_as_einval_and_stays_released);
  RUN_TEST(query_stream_reports_conversion_error_as_einval_with_duckdb_message);
  RUN_TEST(ingest_modes_create_refuses_existing_and_append_adds_by_name);
  RUN_TEST(all_types_match_source_or_duckdb_own_arrow_roundtrip_uncompressed);
  RUN_TEST(all_types_match_source_or_duckdb_own_arrow_roundtrip_lz4);
  RUN_TEST(all_types_match_source_or_duckdb_own_arrow_roundtrip_zstd);
  RUN_TEST(all_types_as_arrow_extension_types_keep_field_metadata);
  RUN_TEST(all_types_with_64bit_offsets_match_source);
  RUN_TEST(seed_100k_rows_with_nulls_roundtrip_exactly_uncompressed);
  RUN_TEST(seed_100k_rows_with_nulls_roundtrip_exactly_and_smaller_with_lz4);
  RUN_TEST(seed_100k_rows_with_nulls_roundtrip_exactly_and_smaller_with_zstd);
  RUN_TEST(seed_as_string_views_roundtrip_exactly);
  RUN_TEST(seed_as_string_views_roundtrip_exactly_with_zstd);
  RUN_TEST(ingest_of_truncated_ipc_stream_fails_with_reader_status_and_creates_nothing);
  return TEST_SUMMARY();
}
