/* wigeon: streaming queries gathered into batches of target_rows rows and at most about
 * target_bytes bytes, and result schemas without execution (see engine.h).
 * The chunk source is wg_engine_query_arrow_stream (one DuckDB chunk of up to 2048 rows per
 * array). A batch ends at target_rows rows, or where the next rows would take it past
 * target_bytes (sizes from wg_arrow_range_bytes, found by bisection within a chunk), or at the end
 * of the result; a single row bigger than target_bytes makes a batch alone. Chunks are cut where a
 * batch ends (a zero-copy slice; the rest carries over) and the pieces are copied once by
 * wg_arrow_concat. A chunk that alone makes a whole batch is passed through without copying.
 * Memory: the pieces of one batch (DuckDB's arrays), the batch being built, one carried chunk. */
#include "arrow/array.h"
#include "arrow/concat.h"
#include "engine/engine_internal.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_TARGET_ROWS 65536

struct gather {
  struct wg_engine_conn *conn;
  struct ArrowArrayStream chunks;
  struct ArrowSchema schema; /* deep copy, lent out as copies by get_schema */
  int64_t target;
  int64_t target_bytes;          /* <= 0: rows only */
  struct wg__slice_owner *carry; /* a chunk partly used by the previous batch */
  int64_t carry_pos;
  struct ArrowArray *pieces;
  int64_t cap_pieces;
  bool done;
  bool own_txn; /* the query runs in a transaction begun for it: ended here (gather_free) */
  int status; /* sticky once get_next failed */
  struct wg_error error;
};

static int gather_fail(struct gather *g, int rc) {
  g->status = rc;
  return rc;
}

static int gather_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct gather *g = s->private_data;
  return wg_schema_deep_copy(&g->schema, out, &g->error);
}

/* How many of the `want` rows of `a` from `pos` on fit in `budget` bytes (0 if not even one);
 * all of them when their size is unknown. */
static int64_t rows_within(const struct gather *g, const struct ArrowArray *a, int64_t pos,
                           int64_t want, int64_t budget) {
  int64_t all = wg_arrow_range_bytes(&g->schema, a, pos, want);
  if (all < 0 || all <= budget) return want;
  int64_t lo = 0, hi = want; /* rows lo fit, rows hi do not */
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    int64_t b = wg_arrow_range_bytes(&g->schema, a, pos, mid);
    if (b >= 0 && b <= budget)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

static int gather_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct gather *g = s->private_data;
  memset(out, 0, sizeof(*out));
  if (g->status != 0) return g->status;
  if (g->conn != NULL && atomic_load(&g->conn->interrupted))
    return g->status = wg_error_set(&g->error, ECANCELED, "INTERRUPT Error: query interrupted");
  int64_t rows = 0, n = 0, bytes = 0;
  bool full = false; /* the byte bound ended the batch */
  int rc = 0;
  while (rows < g->target && !full) {
    if (n == g->cap_pieces) {
      int64_t cap = g->cap_pieces ? g->cap_pieces * 2 : 8;
      struct ArrowArray *p = realloc(g->pieces, (size_t)cap * sizeof(*p));
      if (p == NULL) {
        rc = wg_error_set(&g->error, ENOMEM, "out of memory gathering a batch");
        break;
      }
      g->pieces = p;
      g->cap_pieces = cap;
    }
    if (g->carry != NULL) {
      const struct ArrowArray *chunk = wg__slice_owner_batch(g->carry);
      int64_t len = chunk->length;
      int64_t take = len - g->carry_pos;
      if (take > g->target - rows) take = g->target - rows;
      if (g->target_bytes > 0) {
        int64_t fit = rows_within(g, chunk, g->carry_pos, take, g->target_bytes - bytes);
        if (fit < take) full = true;
        if (fit == 0 && rows > 0) continue; /* the batch so far goes; this row starts the next */
        take = fit > 0 ? fit : 1;           /* a row bigger than the bound goes alone */
        int64_t b = wg_arrow_range_bytes(&g->schema, chunk, g->carry_pos, take);
        bytes += b > 0 ? b : 0;
      }
      if (wg__slice(g->carry, &g->schema, g->carry_pos, take, &g->pieces[n]) != 0) {
        rc = wg_error_set(&g->error, ENOMEM, "out of memory slicing a chunk");
        break;
      }
      n++;
      rows += take;
      g->carry_pos += take;
      if (g->carry_pos == len) {
        wg__slice_owner_unref(g->carry);
        g->carry = NULL;
      }
      continue;
    }
    if (g->done) break;
    struct ArrowArray a;
    rc = g->chunks.get_next(&g->chunks, &a);
    if (rc != 0) {
      const char *msg = g->chunks.get_last_error(&g->chunks);
      wg_error_set(&g->error, rc, "%s", msg ? msg : "query failed");
      break;
    }
    if (a.release == NULL) {
      g->done = true;
      break;
    }
    if (a.length == 0) {
      a.release(&a);
      continue;
    }
    if (rows == 0 && a.length == g->target && a.offset == 0 &&
        (g->target_bytes <= 0 || rows_within(g, &a, 0, a.length, g->target_bytes) == a.length)) {
      wg_array_move(&a, out); /* a whole batch by itself: no copy */
      return 0;
    }
    g->carry = wg__slice_owner_create(&a);
    g->carry_pos = 0;
    if (g->carry == NULL) {
      rc = wg_error_set(&g->error, ENOMEM, "out of memory holding a chunk");
      break;
    }
  }
  if (rc != 0) {
    for (int64_t i = 0; i < n; i++)
      wg_array_release(&g->pieces[i]);
    return gather_fail(g, rc);
  }
  if (n == 0) return 0; /* end of stream: out stays released */
  rc = wg_arrow_concat(&g->schema, g->pieces, n, out, &g->error);
  if (rc != 0) return gather_fail(g, rc);
  return 0;
}

static const char *gather_get_last_error(struct ArrowArrayStream *s) {
  struct gather *g = s->private_data;
  return g->error.message[0] ? g->error.message : NULL;
}

/* A result not read to its end (a cancelled or failed DoGet, a schema that changed) leaves DuckDB's
 * query, and the transaction it runs in, open on the connection until its next statement: the
 * release rolls it back (txn_maybe), or a CHECKPOINT would meet "other write transactions". */
static void gather_free(struct gather *g) {
  if (g == NULL) return;
  if (g->conn != NULL && g->conn->stream == g) g->conn->stream = NULL;
  if (g->conn != NULL && !g->done) g->conn->txn_maybe = true;
  wg__slice_owner_unref(g->carry);
  wg_stream_release(&g->chunks);
  /* its own transaction (snapshot in engine_internal.h): committed once read to the end (a SELECT
   * may still have taken a sequence's values), else rolled back now, not at release */
  if (g->conn != NULL && g->own_txn) wg__engine_own_txn_end(g->conn, g->done && g->status == 0);
  wg_schema_release(&g->schema);
  free(g->pieces);
  free(g);
}

static void gather_release(struct ArrowArrayStream *s) {
  gather_free(s->private_data);
  s->private_data = NULL;
  s->release = NULL;
}

/* The run half of a query (wg__engine_client_sql did the guard, prepare and checks): the chunk
 * stream it fills, and for a query whose schema goes out before it runs, the callback and the
 * schema it was given (kept to check the result against). */
struct stream_run {
  struct ArrowArrayStream *chunks;
  wg_engine_schema_cb on_schema;
  void *ctx;
  struct ArrowSchema early; /* release == NULL: none sent */
  wg__engine_chunks_fn open_chunks; /* NULL: the statement's own result (arrow_duck.c) */
  void *open_ctx;
};

/* A SELECT's schema goes to on_schema before it runs, when the prepared statement can give it
 * cheaply (DuckDB copies every column's type for each column asked: quadratic, so not past
 * WG_ENGINE_EARLY_SCHEMA_COLUMNS); when it cannot, nothing is refused: the schema comes with the
 * result as before. Then the query starts (wg_engine_query_arrow_stream_prepared takes *p). */
static int stream_run(void *ctx, struct wg_engine_conn *c, duckdb_prepared_statement *p,
                      struct wg_error *err) {
  struct stream_run *b = ctx;
  idx_t n = duckdb_prepared_statement_column_count(*p);
  struct wg_error ignored;
  if (duckdb_prepared_statement_type(*p) != DUCKDB_STATEMENT_TYPE_SELECT || b->on_schema == NULL ||
      n == 0 || n > WG_ENGINE_EARLY_SCHEMA_COLUMNS) {
    /* no early schema */
  } else if (wg__engine_prepared_columns_schema(c, *p, 0, n, NULL, &b->early, &ignored) != 0) {
    wg_schema_release(&b->early);
  } else {
    WG_RETURN_NOT_OK(b->on_schema(b->ctx, &b->early, err));
  }
  if (b->open_chunks != NULL) return b->open_chunks(b->open_ctx, c, p, b->chunks, err);
  return wg_engine_query_arrow_stream_prepared(c->conn, p, &c->interrupted, b->chunks, err);
}

/* 0 when the executed result has the schema sent before it ran (DuckDB rebinds a statement whose
 * tables changed between prepare and execution, which can change its columns). */
static int same_schema(const struct ArrowSchema *sent, const struct ArrowSchema *result,
                       struct wg_error *err) {
  struct wg_buf a, b;
  wg_buf_init(&a);
  wg_buf_init(&b);
  int rc = wg_schema_fingerprint(sent, &a);
  if (rc == 0) rc = wg_schema_fingerprint(result, &b);
  if (rc != 0)
    rc = wg_error_set(err, rc, "query: cannot compare the result schema with the one sent");
  else if (a.size != b.size || memcmp(a.data, b.data, (size_t)a.size) != 0)
    rc = wg_error_set(err, EAGAIN,
                      "the query's result columns changed between its prepare and its run (a "
                      "table it reads was altered meanwhile); run it again");
  wg_buf_reset(&a);
  wg_buf_reset(&b);
  return rc;
}

int wg_engine_query_open(struct wg_engine_conn *c, const char *sql, int64_t target_rows,
                         struct ArrowArrayStream *out, struct wg_error *err) {
  return wg_engine_query_open_bounded(c, sql, target_rows, 0, out, err);
}

int wg_engine_query_open_bounded(struct wg_engine_conn *c, const char *sql, int64_t target_rows,
                                 int64_t target_bytes, struct ArrowArrayStream *out,
                                 struct wg_error *err) {
  return wg_engine_query_open_early(c, sql, target_rows, target_bytes, NULL, NULL, out, err);
}

int wg_engine_query_open_early(struct wg_engine_conn *c, const char *sql, int64_t target_rows,
                               int64_t target_bytes, wg_engine_schema_cb on_schema, void *ctx,
                               struct ArrowArrayStream *out, struct wg_error *err) {
  return wg__engine_query_open_chunks(c, sql, target_rows, target_bytes, on_schema, ctx, NULL,
                                      NULL, out, err);
}

int wg__engine_query_open_chunks(struct wg_engine_conn *c, const char *sql, int64_t target_rows,
                                 int64_t target_bytes, wg_engine_schema_cb on_schema, void *ctx,
                                 wg__engine_chunks_fn open_chunks, void *open_ctx,
                                 struct ArrowArrayStream *out, struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  if (c == NULL || sql == NULL) return wg_error_set(err, EINVAL, "query: NULL connection or sql");
  if (target_rows < 0)
    return wg_error_set(err, EINVAL, "query: target_rows %lld", (long long)target_rows);
  struct gather *g = calloc(1, sizeof(*g));
  if (g == NULL) return wg_error_set(err, ENOMEM, "out of memory for a query stream");
  g->target = target_rows > 0 ? target_rows : DEFAULT_TARGET_ROWS;
  g->target_bytes = target_bytes == 0 ? WG_ENGINE_DEFAULT_BATCH_BYTES : target_bytes;
  struct stream_run b = {.chunks = &g->chunks, .on_schema = on_schema, .ctx = ctx,
                         .open_chunks = open_chunks, .open_ctx = open_ctx};
  struct wg__client_sql q = {.sql = sql, .snapshot = true, .run = stream_run, .ctx = &b};
  int rc = wg__engine_client_sql(c, &q, err);
  g->own_txn = q.own_txn;
  if (rc == 0) {
    rc = g->chunks.get_schema(&g->chunks, &g->schema);
    if (rc != 0) wg_error_set(err, rc, "query: reading the result schema failed");
  }
  if (rc == 0 && b.early.release != NULL) rc = same_schema(&b.early, &g->schema, err);
  wg_schema_release(&b.early);
  if (rc != 0) {
    g->conn = c; /* a prepared or started query may be left open: see gather_free */
    gather_free(g);
    return rc;
  }
  out->get_schema = gather_get_schema;
  out->get_next = gather_get_next;
  out->get_last_error = gather_get_last_error;
  out->release = gather_release;
  out->private_data = g;
  g->conn = c;
  c->stream = g;
  return 0;
}

int wg_engine_stream_status(struct ArrowArrayStream *stream) {
  if (stream == NULL || stream->release == NULL || stream->get_next != gather_get_next) return 0;
  return ((struct gather *)stream->private_data)->status;
}

/* ---------------------------------------------------------------------------------------------
 * Schemas without execution */

int wg__engine_prepared_columns_schema(struct wg_engine_conn *c, duckdb_prepared_statement p,
                                       idx_t first, idx_t n, char *const *names,
                                       struct ArrowSchema *out, struct wg_error *err) {
  memset(out, 0, sizeof(out[0]));
  if (first + n > duckdb_prepared_statement_column_count(p))
    return wg_error_set(err, EINVAL, "columns %llu..%llu of a statement with %llu",
                        (unsigned long long)first, (unsigned long long)(first + n),
                        (unsigned long long)duckdb_prepared_statement_column_count(p));
  duckdb_logical_type *types = calloc(n ? n : 1, sizeof(*types));
  const char **own_names = calloc(n ? n : 1, sizeof(*own_names)); /* duckdb_free'd */
  const char **use = calloc(n ? n : 1, sizeof(*use));
  duckdb_arrow_options options = NULL;
  int rc = 0;
  if (types == NULL || own_names == NULL || use == NULL) {
    rc = wg_error_set(err, ENOMEM, "out of memory for %llu columns", (unsigned long long)n);
    goto done;
  }
  for (idx_t i = 0; i < n; i++) {
    types[i] = duckdb_prepared_statement_column_logical_type(p, first + i);
    if (names == NULL) own_names[i] = duckdb_prepared_statement_column_name(p, first + i);
    use[i] = names != NULL ? names[i] : own_names[i];
    if (types[i] == NULL || use[i] == NULL) {
      rc = wg_error_set(err, EIO, "column %llu has no type or name",
                        (unsigned long long)(first + i));
      goto done;
    }
  }
  duckdb_connection_get_arrow_options(c->conn, &options);
  if (options == NULL) {
    rc = wg_error_set(err, EIO, "connection has no arrow options");
    goto done;
  }
  rc = wg_engine_to_arrow_schema(options, types, use, n, out, err);
done:
  for (idx_t i = 0; types != NULL && i < n; i++) {
    if (types[i] != NULL) duckdb_destroy_logical_type(&types[i]);
  }
  for (idx_t i = 0; own_names != NULL && i < n; i++)
    duckdb_free((void *)own_names[i]);
  if (options != NULL) duckdb_destroy_arrow_options(&options);
  free(types);
  free(own_names);
  free(use);
  return rc;
}

int wg__engine_prepared_schema(struct wg_engine_conn *c, const char *sql, struct ArrowSchema *out,
                               struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  duckdb_prepared_statement p = NULL;
  int rc;
  if (duckdb_prepare(c->conn, sql, &p) != DuckDBSuccess)
    rc = wg__engine_prepare_error(p, err);
  else if (c->engine->sandboxed &&
           (rc = wg__engine_statement_refused(duckdb_prepared_statement_type(p), err)) != 0)
    ; /* refused like the query itself would be */
  else
    rc = wg__engine_prepared_columns_schema(
        c, p, 0, duckdb_prepared_statement_column_count(p), NULL, out, err);
  duckdb_destroy_prepare(&p);
  return rc;
}

/* The run half of wg_engine_query_schema: the prepared statement's result schema into ctx. */
static int schema_run(void *ctx, struct wg_engine_conn *c, duckdb_prepared_statement *p,
                      struct wg_error *err) {
  return wg__engine_prepared_columns_schema(c, *p, 0, duckdb_prepared_statement_column_count(*p),
                                            NULL, ctx, err);
}

int wg_engine_query_schema(struct wg_engine_conn *c, const char *sql, struct ArrowSchema *out,
                           struct wg_error *err) {
  if (out != NULL) memset(out, 0, sizeof(*out));
  if (c == NULL || sql == NULL || out == NULL)
    return wg_error_set(err, EINVAL, "query schema: NULL argument");
  struct wg__client_sql q = {.sql = sql, .prepare_only = true, .run = schema_run, .ctx = out};
  return wg__engine_client_sql(c, &q, err);
}

/* The run half of wg_engine_query_describe: the kind of the one statement, and its schema when
 * it gives rows. DML answers with one "Count" column unless it has RETURNING. */
struct describe {
  struct ArrowSchema *out;
  enum wg_engine_sql_kind kind;
};

static int describe_run(void *ctx, struct wg_engine_conn *c, duckdb_prepared_statement *p,
                        struct wg_error *err) {
  struct describe *d = ctx;
  idx_t n = duckdb_prepared_statement_column_count(*p);
  switch (duckdb_prepared_statement_type(*p)) {
  case DUCKDB_STATEMENT_TYPE_SELECT:
  case DUCKDB_STATEMENT_TYPE_EXPLAIN:
  case DUCKDB_STATEMENT_TYPE_PRAGMA:
  case DUCKDB_STATEMENT_TYPE_CALL:
  case DUCKDB_STATEMENT_TYPE_RELATION:
  case DUCKDB_STATEMENT_TYPE_LOGICAL_PLAN:
    d->kind = WG_ENGINE_SQL_ROWS;
    break;
  case DUCKDB_STATEMENT_TYPE_INSERT:
  case DUCKDB_STATEMENT_TYPE_UPDATE:
  case DUCKDB_STATEMENT_TYPE_DELETE: {
    const char *name = n == 1 ? duckdb_prepared_statement_column_name(*p, 0) : NULL;
    d->kind = name != NULL && strcmp(name, "Count") == 0 ? WG_ENGINE_SQL_CHANGE : WG_ENGINE_SQL_ROWS;
    duckdb_free((void *)name);
    break;
  }
  default:
    d->kind = WG_ENGINE_SQL_CHANGE;
  }
  if (d->kind == WG_ENGINE_SQL_CHANGE) return 0;
  return wg__engine_prepared_columns_schema(c, *p, 0, n, NULL, d->out, err);
}

int wg_engine_query_describe(struct wg_engine_conn *c, const char *sql, struct ArrowSchema *out,
                             enum wg_engine_sql_kind *kind, struct wg_error *err) {
  if (out != NULL) memset(out, 0, sizeof(*out));
  if (c == NULL || sql == NULL || out == NULL || kind == NULL)
    return wg_error_set(err, EINVAL, "query describe: NULL argument");
  *kind = WG_ENGINE_SQL_CHANGE;
  duckdb_extracted_statements stmts = NULL;
  idx_t n = duckdb_extract_statements(c->conn, sql, &stmts);
  duckdb_destroy_extracted(&stmts);
  if (n > 1) return 0; /* several: checked statement by statement when they run */
  struct describe d = {.out = out, .kind = WG_ENGINE_SQL_CHANGE};
  struct wg__client_sql q = {.sql = sql, .prepare_only = true, .run = describe_run, .ctx = &d};
  int rc = wg__engine_client_sql(c, &q, err);
  if (rc == 0) *kind = d.kind;
  return rc;
}
