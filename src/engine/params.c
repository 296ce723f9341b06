/* wigeon: prepared statements whose parameters come as Arrow rows (see engine.h, "Prepared
 * statements with parameters"). The rows are kept as Arrow batches; to run, a 2048-row slice of
 * a batch becomes a DuckDB chunk (duckdb_data_chunk_from_arrow: DuckDB's own reading of every
 * Arrow type), and each value of the row is read back from the chunk's vectors as a duckdb_value
 * and bound. Every statement goes through wg__engine_client_sql (sql.c), so the sandbox and the
 * write checks hold; queries stream through query.c's gathering (wg__engine_query_open_chunks)
 * with a chunk source that runs the statement once per row. */
#include "arrow/array.h"
#include "arrow/concat.h"
#include "common/text.h"
#include "engine/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLICE_ROWS 2048 /* duckdb_data_chunk_from_arrow's maximum */

/* ---------------------------------------------------------------------------------------------
 * The parameter rows */

struct wg_engine_params {
  atomic_int refs;
  struct ArrowSchema schema;
  struct wg__slice_owner **batches;
  int64_t n, cap, rows, bytes;
};

int wg_engine_params_create(const struct ArrowSchema *schema, struct wg_engine_params **out,
                            struct wg_error *err) {
  *out = NULL;
  if (schema == NULL || schema->format == NULL || strcmp(schema->format, "+s") != 0)
    return wg_error_set(err, EINVAL, "parameters: the schema must be a struct of columns");
  struct wg_engine_params *p = calloc(1, sizeof(*p));
  if (p == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  atomic_init(&p->refs, 1);
  int rc = wg_schema_deep_copy(schema, &p->schema, err);
  if (rc != 0) {
    free(p);
    return rc;
  }
  *out = p;
  return 0;
}

int wg_engine_params_add(struct wg_engine_params *p, struct ArrowArray *batch,
                         struct wg_error *err) {
  if (batch->n_children != p->schema.n_children) {
    wg_array_release(batch);
    return wg_error_set(err, EINVAL, "parameters: a batch of %lld columns for a schema of %lld",
                        (long long)batch->n_children, (long long)p->schema.n_children);
  }
  if (p->n == p->cap) {
    int64_t cap = p->cap ? p->cap * 2 : 4;
    struct wg__slice_owner **b = realloc(p->batches, (size_t)cap * sizeof(*b));
    if (b == NULL) {
      wg_array_release(batch);
      return wg_error_set(err, ENOMEM, "out of memory");
    }
    p->batches = b;
    p->cap = cap;
  }
  int64_t len = batch->length;
  int64_t bytes = wg_arrow_range_bytes(&p->schema, batch, 0, len);
  struct wg__slice_owner *o = wg__slice_owner_create(batch);
  if (o == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  p->batches[p->n++] = o;
  p->rows += len;
  p->bytes += bytes >= 0 ? bytes : 16 * (len + 1); /* a layout it cannot size: a guess */
  return 0;
}

int64_t wg_engine_params_rows(const struct wg_engine_params *p) {
  return p != NULL ? p->rows : 0;
}

int64_t wg_engine_params_bytes(const struct wg_engine_params *p) {
  return p != NULL ? p->bytes : 0;
}

struct wg_engine_params *wg_engine_params_ref(struct wg_engine_params *p) {
  if (p != NULL) atomic_fetch_add(&p->refs, 1);
  return p;
}

void wg_engine_params_unref(struct wg_engine_params *p) {
  if (p == NULL || atomic_fetch_sub(&p->refs, 1) != 1) return;
  for (int64_t i = 0; i < p->n; i++)
    wg__slice_owner_unref(p->batches[i]);
  free(p->batches);
  wg_schema_release(&p->schema);
  free(p);
}

/* ---------------------------------------------------------------------------------------------
 * Values: one of a chunk's vectors at one row, as a duckdb_value */

static duckdb_hugeint hugeint_of(int64_t v) {
  duckdb_hugeint h = {.lower = (uint64_t)v, .upper = v < 0 ? -1 : 0};
  return h;
}

/* The decimal at row of a DECIMAL vector (stored as int16/32/64/128 by width). */
static duckdb_value decimal_value(duckdb_logical_type t, const void *d, idx_t row) {
  duckdb_decimal dec = {.width = duckdb_decimal_width(t), .scale = duckdb_decimal_scale(t)};
  switch (duckdb_decimal_internal_type(t)) {
  case DUCKDB_TYPE_SMALLINT: dec.value = hugeint_of(((const int16_t *)d)[row]); break;
  case DUCKDB_TYPE_INTEGER: dec.value = hugeint_of(((const int32_t *)d)[row]); break;
  case DUCKDB_TYPE_BIGINT: dec.value = hugeint_of(((const int64_t *)d)[row]); break;
  default: dec.value = ((const duckdb_hugeint *)d)[row];
  }
  return duckdb_create_decimal(dec);
}

static duckdb_value enum_value(duckdb_logical_type t, const void *d, idx_t row) {
  switch (duckdb_enum_internal_type(t)) {
  case DUCKDB_TYPE_UTINYINT: return duckdb_create_enum_value(t, ((const uint8_t *)d)[row]);
  case DUCKDB_TYPE_USMALLINT: return duckdb_create_enum_value(t, ((const uint16_t *)d)[row]);
  default: return duckdb_create_enum_value(t, ((const uint32_t *)d)[row]);
  }
}

/* *out = the value of v at row (a NULL value where it is null), or ENOTSUP for a type that does
 * not bind (nested types). `col` names the parameter in the message. */
static int vector_value(duckdb_vector v, idx_t row, int64_t col, duckdb_value *out,
                        struct wg_error *err) {
  *out = NULL;
  duckdb_logical_type t = duckdb_vector_get_column_type(v);
  uint64_t *valid = duckdb_vector_get_validity(v);
  const void *d = duckdb_vector_get_data(v);
  duckdb_type id = duckdb_get_type_id(t);
  if (id == DUCKDB_TYPE_SQLNULL || (valid != NULL && !duckdb_validity_row_is_valid(valid, row))) {
    *out = duckdb_create_null_value();
  } else {
    switch (id) {
    case DUCKDB_TYPE_BOOLEAN: *out = duckdb_create_bool(((const bool *)d)[row]); break;
    case DUCKDB_TYPE_TINYINT: *out = duckdb_create_int8(((const int8_t *)d)[row]); break;
    case DUCKDB_TYPE_SMALLINT: *out = duckdb_create_int16(((const int16_t *)d)[row]); break;
    case DUCKDB_TYPE_INTEGER: *out = duckdb_create_int32(((const int32_t *)d)[row]); break;
    case DUCKDB_TYPE_BIGINT: *out = duckdb_create_int64(((const int64_t *)d)[row]); break;
    case DUCKDB_TYPE_UTINYINT: *out = duckdb_create_uint8(((const uint8_t *)d)[row]); break;
    case DUCKDB_TYPE_USMALLINT: *out = duckdb_create_uint16(((const uint16_t *)d)[row]); break;
    case DUCKDB_TYPE_UINTEGER: *out = duckdb_create_uint32(((const uint32_t *)d)[row]); break;
    case DUCKDB_TYPE_UBIGINT: *out = duckdb_create_uint64(((const uint64_t *)d)[row]); break;
    case DUCKDB_TYPE_HUGEINT: *out = duckdb_create_hugeint(((const duckdb_hugeint *)d)[row]); break;
    case DUCKDB_TYPE_UHUGEINT:
      *out = duckdb_create_uhugeint(((const duckdb_uhugeint *)d)[row]);
      break;
    case DUCKDB_TYPE_FLOAT: *out = duckdb_create_float(((const float *)d)[row]); break;
    case DUCKDB_TYPE_DOUBLE: *out = duckdb_create_double(((const double *)d)[row]); break;
    case DUCKDB_TYPE_DECIMAL: *out = decimal_value(t, d, row); break;
    case DUCKDB_TYPE_ENUM: *out = enum_value(t, d, row); break;
    case DUCKDB_TYPE_DATE: *out = duckdb_create_date(((const duckdb_date *)d)[row]); break;
    case DUCKDB_TYPE_TIME: *out = duckdb_create_time(((const duckdb_time *)d)[row]); break;
    case DUCKDB_TYPE_TIME_NS: *out = duckdb_create_time_ns(((const duckdb_time_ns *)d)[row]); break;
    case DUCKDB_TYPE_TIME_TZ:
      *out = duckdb_create_time_tz_value(((const duckdb_time_tz *)d)[row]);
      break;
    case DUCKDB_TYPE_TIMESTAMP:
      *out = duckdb_create_timestamp(((const duckdb_timestamp *)d)[row]);
      break;
    case DUCKDB_TYPE_TIMESTAMP_TZ:
      *out = duckdb_create_timestamp_tz(((const duckdb_timestamp *)d)[row]);
      break;
    case DUCKDB_TYPE_TIMESTAMP_S:
      *out = duckdb_create_timestamp_s(((const duckdb_timestamp_s *)d)[row]);
      break;
    case DUCKDB_TYPE_TIMESTAMP_MS:
      *out = duckdb_create_timestamp_ms(((const duckdb_timestamp_ms *)d)[row]);
      break;
    case DUCKDB_TYPE_TIMESTAMP_NS:
      *out = duckdb_create_timestamp_ns(((const duckdb_timestamp_ns *)d)[row]);
      break;
    case DUCKDB_TYPE_UUID: { /* stored with its top bit flipped (so that it sorts as text) */
      duckdb_hugeint h = ((const duckdb_hugeint *)d)[row];
      duckdb_uhugeint u = {.lower = h.lower, .upper = (uint64_t)h.upper ^ ((uint64_t)1 << 63)};
      *out = duckdb_create_uuid(u);
      break;
    }
    case DUCKDB_TYPE_INTERVAL:
      *out = duckdb_create_interval(((const duckdb_interval *)d)[row]);
      break;
    case DUCKDB_TYPE_VARCHAR:
    case DUCKDB_TYPE_BLOB: {
      duckdb_string_t s = ((const duckdb_string_t *)d)[row];
      const char *text = duckdb_string_t_data(&s);
      uint32_t len = duckdb_string_t_length(s);
      *out = id == DUCKDB_TYPE_BLOB ? duckdb_create_blob((const uint8_t *)text, len)
                                    : duckdb_create_varchar_length(text, len);
      break;
    }
    default: {
      char *name = wg__engine_type_name(t);
      duckdb_destroy_logical_type(&t);
      int rc = wg_error_set(err, ENOTSUP,
                            "parameter %lld: values of type %s cannot be bound (send a scalar "
                            "type: integers, floats, decimal, text, binary, bool, date, time, "
                            "timestamp, interval)",
                            (long long)col, name != NULL ? name : "?");
      duckdb_free(name);
      return rc;
    }
    }
  }
  duckdb_destroy_logical_type(&t);
  if (*out == NULL)
    return wg_error_set(err, EINVAL, "parameter %lld: DuckDB refused the value (text that is not "
                                     "UTF-8?)", (long long)col);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The cursor: binds the parameter rows to a prepared statement, one after the other */

struct cursor {
  struct wg_engine_params *params; /* a reference */
  duckdb_arrow_converted_schema conv;
  idx_t *index;              /* the statement's parameter index of each column */
  int64_t batch, pos, row;   /* the next row: batches[batch] at pos; row: its number overall */
  duckdb_data_chunk chunk;   /* rows [chunk_start, chunk_start + chunk_len) of batches[batch] */
  int64_t chunk_start, chunk_len;
};

static void cursor_reset(struct cursor *k) {
  if (k->chunk != NULL) duckdb_destroy_data_chunk(&k->chunk);
  if (k->conv != NULL) duckdb_destroy_arrow_converted_schema(&k->conv);
  free(k->index);
  wg_engine_params_unref(k->params);
  memset(k, 0, sizeof(*k));
}

static bool all_digits(const char *s) {
  if (s == NULL || *s == '\0') return true;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}

/* Opens the cursor over params for statement p: the columns' parameter indexes (by position, or
 * by name for a column named like one of the statement's named parameters). */
static int cursor_open(struct cursor *k, struct wg_engine_conn *c, duckdb_prepared_statement p,
                       struct wg_engine_params *params, struct wg_error *err) {
  memset(k, 0, sizeof(*k));
  k->params = wg_engine_params_ref(params);
  int64_t n = params->schema.n_children;
  idx_t want = duckdb_nparams(p);
  if ((idx_t)n != want)
    return wg_error_set(err, EINVAL,
                        "the statement has %llu parameter%s; the bound rows have %lld column%s",
                        (unsigned long long)want, want == 1 ? "" : "s", (long long)n,
                        n == 1 ? "" : "s");
  k->index = calloc((size_t)(n ? n : 1), sizeof(*k->index));
  if (k->index == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  for (int64_t i = 0; i < n; i++) {
    const char *name = params->schema.children[i]->name;
    idx_t at = 0;
    if (all_digits(name) || duckdb_bind_parameter_index(p, &at, name) != DuckDBSuccess)
      at = (idx_t)i + 1;
    k->index[i] = at;
  }
  struct ArrowSchema copy;
  WG_RETURN_NOT_OK(wg_schema_deep_copy(&params->schema, &copy, err));
  duckdb_error_data ed = duckdb_schema_from_arrow(c->conn, &copy, &k->conv);
  wg_schema_release(&copy);
  int rc = wg_engine_take_error_data(&ed, err, NULL);
  if (rc != 0) return wg_error_prefix(err, rc, "the parameters' schema");
  return 0;
}

/* Binds the next row to p (*bound false at the end of the rows). */
static int cursor_bind_next(struct cursor *k, duckdb_connection conn, duckdb_prepared_statement p,
                            bool *bound, struct wg_error *err) {
  *bound = false;
  struct wg_engine_params *params = k->params;
  while (k->batch < params->n &&
         k->pos >= wg__slice_owner_batch(params->batches[k->batch])->length) {
    k->batch++;
    k->pos = 0;
    if (k->chunk != NULL) duckdb_destroy_data_chunk(&k->chunk);
  }
  if (k->batch == params->n) return 0;
  struct wg__slice_owner *o = params->batches[k->batch];
  if (k->chunk == NULL || k->pos >= k->chunk_start + k->chunk_len) {
    if (k->chunk != NULL) duckdb_destroy_data_chunk(&k->chunk);
    int64_t len = wg__slice_owner_batch(o)->length - k->pos;
    if (len > SLICE_ROWS) len = SLICE_ROWS;
    struct ArrowArray slice;
    if (wg__slice(o, &params->schema, k->pos, len, &slice) != 0)
      return wg_error_set(err, ENOMEM, "out of memory slicing the parameters");
    duckdb_error_data ed = duckdb_data_chunk_from_arrow(conn, &slice, k->conv, &k->chunk);
    int rc = wg_engine_take_error_data(&ed, err, NULL);
    wg_array_release(&slice); /* if DuckDB did not take it */
    if (rc != 0) return wg_error_prefix(err, rc, "reading the parameters");
    k->chunk_start = k->pos;
    k->chunk_len = len;
  }
  idx_t at = (idx_t)(k->pos - k->chunk_start);
  duckdb_clear_bindings(p);
  for (int64_t i = 0; i < params->schema.n_children; i++) {
    duckdb_value v;
    WG_RETURN_NOT_OK(vector_value(duckdb_data_chunk_get_vector(k->chunk, (idx_t)i), at, i, &v,
                                  err));
    duckdb_state st = duckdb_bind_value(p, k->index[i], v);
    duckdb_destroy_value(&v);
    if (st != DuckDBSuccess)
      return wg_error_set(err, EINVAL, "parameter %lld: DuckDB cannot bind it to parameter %llu",
                          (long long)i, (unsigned long long)k->index[i]);
  }
  k->pos++;
  k->row++;
  *bound = true;
  return 0;
}

/* Runs the bound statement into *r (streaming: results fetched chunk by chunk); an interrupt that
 * came before DuckDB began it is honoured. */
static int run_bound(struct wg_engine_conn *c, duckdb_prepared_statement p, bool streaming,
                     duckdb_result *r, struct wg_error *err) {
  memset(r, 0, sizeof(*r));
  duckdb_pending_result pending = NULL;
  duckdb_state st = streaming ? duckdb_pending_prepared_streaming(p, &pending)
                              : duckdb_pending_prepared(p, &pending);
  int rc = 0;
  if (st != DuckDBSuccess) {
    rc = wg_engine_error_set(err, DUCKDB_ERROR_INVALID, duckdb_pending_error(pending),
                             "execute failed");
  } else if (atomic_load(&c->interrupted)) {
    wg_engine_pending_abandon(c->conn, &pending);
    rc = wg_error_set(err, ECANCELED, "INTERRUPT Error: interrupted before the statement ran");
  } else if (duckdb_execute_pending(pending, r) != DuckDBSuccess) {
    rc = wg__engine_result_error(r, err);
    duckdb_destroy_result(r);
  }
  duckdb_destroy_pending(&pending);
  return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Execute: once per row, all rows in one transaction */

struct exec_rows {
  struct wg_engine_params *params;
  bool in_txn, own_txn;
  int64_t total, row;
};

static int exec_rows_run(void *ctx, struct wg_engine_conn *c, duckdb_prepared_statement *p,
                         struct wg_error *err) {
  struct exec_rows *x = ctx;
  struct cursor k;
  int rc = cursor_open(&k, c, *p, x->params, err);
  if (rc == 0 && !x->in_txn) {
    rc = wg__engine_begin(c, err);
    x->own_txn = rc == 0;
  }
  bool bound = true;
  while (rc == 0 && bound) {
    x->row = k.row;
    rc = cursor_bind_next(&k, c->conn, *p, &bound, err);
    duckdb_result r;
    if (rc == 0 && bound && (rc = run_bound(c, *p, false, &r, err)) == 0) {
      x->total += (int64_t)duckdb_rows_changed(&r);
      duckdb_destroy_result(&r);
    }
  }
  cursor_reset(&k);
  return rc;
}

int wg_engine_execute_params(struct wg_engine_conn *c, const char *sql,
                             struct wg_engine_params *params, bool in_txn,
                             int64_t *rows_changed, struct wg_error *err) {
  if (rows_changed != NULL) *rows_changed = 0;
  if (wg_engine_params_rows(params) == 0) return wg_engine_execute(c, sql, rows_changed, err);
  if (c == NULL || sql == NULL) return wg_error_set(err, EINVAL, "execute: NULL connection or sql");
  struct exec_rows x = {.params = params, .in_txn = in_txn};
  struct wg__client_sql q = {.sql = sql, .run = exec_rows_run, .ctx = &x};
  int rc = wg__engine_client_sql(c, &q, err);
  if (rc != 0 && q.failed_at == WG__CLIENT_RUN && x.row < params->rows)
    wg_error_prefix(err, rc, "parameter row %lld of %lld%s", (long long)x.row + 1,
                    (long long)params->rows, in_txn ? "" : " (none of them took effect)");
  if (x.own_txn) {
    if (rc == 0) {
      rc = wg__engine_exec(c, "COMMIT", err);
      wg__engine_note_failure(c->engine, rc, true, err);
    }
    if (rc == 0 || wg__engine_rollback(c) == 0) c->txn_maybe = false; /* else: release's */
  }
  if (rc == 0 && rows_changed != NULL) *rows_changed = x.total;
  return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Query: the chunks of every row's result, in row order */

struct rows_stream {
  struct wg_engine_conn *c;
  duckdb_prepared_statement p;
  struct cursor k;
  duckdb_result result;
  bool have_result, done;
  duckdb_arrow_options options; /* the first result's */
  duckdb_type *types;           /* the first result's column types */
  idx_t n_types;
  struct ArrowSchema schema;
  int status;
  struct wg_error error;
};

static void rows_free(struct rows_stream *q) {
  if (q == NULL) return;
  if (q->have_result) duckdb_destroy_result(&q->result);
  cursor_reset(&q->k);
  if (q->options != NULL) duckdb_destroy_arrow_options(&q->options);
  duckdb_destroy_prepare(&q->p);
  wg_schema_release(&q->schema);
  free(q->types);
  free(q);
}

/* The first result: its Arrow options and schema; later ones: the same column types. */
static int rows_check_result(struct rows_stream *q, struct wg_error *err) {
  idx_t n = duckdb_column_count(&q->result);
  if (q->types != NULL) {
    bool same = n == q->n_types;
    for (idx_t i = 0; same && i < n; i++)
      same = duckdb_column_type(&q->result, i) == q->types[i];
    if (!same)
      return wg_error_set(err, EINVAL, "parameter row %lld: the result's column types differ "
                                       "from the first row's (give untyped parameters a cast, "
                                       "e.g. $1::INTEGER)", (long long)q->k.row);
    return 0;
  }
  q->types = calloc(n ? n : 1, sizeof(*q->types));
  duckdb_logical_type *lt = calloc(n ? n : 1, sizeof(*lt));
  const char **names = calloc(n ? n : 1, sizeof(*names));
  int rc = 0;
  q->options = duckdb_result_get_arrow_options(&q->result);
  if (q->types == NULL || lt == NULL || names == NULL || q->options == NULL)
    rc = wg_error_set(err, ENOMEM, "out of memory for %llu columns", (unsigned long long)n);
  for (idx_t i = 0; rc == 0 && i < n; i++) {
    q->types[i] = duckdb_column_type(&q->result, i);
    lt[i] = duckdb_column_logical_type(&q->result, i);
    names[i] = duckdb_column_name(&q->result, i);
  }
  q->n_types = n;
  if (rc == 0) rc = wg_engine_to_arrow_schema(q->options, lt, names, n, &q->schema, err);
  for (idx_t i = 0; lt != NULL && i < n; i++)
    if (lt[i] != NULL) duckdb_destroy_logical_type(&lt[i]);
  free(lt);
  free(names);
  return rc;
}

/* Binds and runs the next row (q->done at the end of the rows). */
static int rows_next_result(struct rows_stream *q, struct wg_error *err) {
  bool bound = false;
  WG_RETURN_NOT_OK(cursor_bind_next(&q->k, q->c->conn, q->p, &bound, err));
  if (!bound) {
    q->done = true;
    return 0;
  }
  WG_RETURN_NOT_OK(run_bound(q->c, q->p, true, &q->result, err));
  q->have_result = true;
  return rows_check_result(q, err);
}

static int rows_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct rows_stream *q = s->private_data;
  return wg_schema_deep_copy(&q->schema, out, &q->error);
}

static int rows_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct rows_stream *q = s->private_data;
  out->release = NULL;
  if (q->status != 0) return q->status;
  while (!q->done) {
    if (!q->have_result) {
      int rc = rows_next_result(q, &q->error);
      if (rc != 0) return q->status = rc;
      continue;
    }
    duckdb_data_chunk chunk = duckdb_fetch_chunk(q->result);
    if (chunk == NULL) {
      int rc = duckdb_result_error(&q->result) != NULL
                   ? wg__engine_result_error(&q->result, &q->error)
                   : 0;
      duckdb_destroy_result(&q->result);
      q->have_result = false;
      if (rc != 0) return q->status = rc;
      continue;
    }
    if (duckdb_data_chunk_get_size(chunk) == 0) {
      duckdb_destroy_data_chunk(&chunk);
      continue;
    }
    memset(out, 0, sizeof(*out));
    duckdb_error_data ed = duckdb_data_chunk_to_arrow(q->options, chunk, out);
    duckdb_destroy_data_chunk(&chunk);
    int rc = wg_engine_take_error_data(&ed, &q->error, "duckdb_data_chunk_to_arrow");
    if (rc != 0) {
      wg_array_release(out);
      return q->status = rc;
    }
    return 0;
  }
  return 0;
}

static const char *rows_get_last_error(struct ArrowArrayStream *s) {
  struct rows_stream *q = s->private_data;
  return q->error.message[0] ? q->error.message : NULL;
}

static void rows_release(struct ArrowArrayStream *s) {
  rows_free(s->private_data);
  s->private_data = NULL;
  s->release = NULL;
}

/* wg__engine_chunks_fn: takes the checked statement, runs the first row. */
static int rows_open(void *ctx, struct wg_engine_conn *c, duckdb_prepared_statement *p,
                     struct ArrowArrayStream *chunks, struct wg_error *err) {
  struct rows_stream *q = calloc(1, sizeof(*q));
  if (q == NULL) {
    duckdb_destroy_prepare(p);
    return wg_error_set(err, ENOMEM, "out of memory for a query stream");
  }
  q->c = c;
  q->p = *p;
  *p = NULL;
  int rc = cursor_open(&q->k, c, q->p, ctx, err);
  if (rc == 0) rc = rows_next_result(q, err);
  if (rc == 0 && q->done) /* no rows at all cannot be: the caller runs those without parameters */
    rc = wg_error_set(err, EINVAL, "no parameter rows to run the query with");
  if (rc != 0) {
    rows_free(q);
    return rc;
  }
  chunks->get_schema = rows_get_schema;
  chunks->get_next = rows_get_next;
  chunks->get_last_error = rows_get_last_error;
  chunks->release = rows_release;
  chunks->private_data = q;
  return 0;
}

int wg_engine_query_open_params(struct wg_engine_conn *c, const char *sql,
                                struct wg_engine_params *params, int64_t target_rows,
                                int64_t target_bytes, struct ArrowArrayStream *out,
                                struct wg_error *err) {
  if (wg_engine_params_rows(params) == 0)
    return wg_engine_query_open_bounded(c, sql, target_rows, target_bytes, out, err);
  return wg__engine_query_open_chunks(c, sql, target_rows, target_bytes, NULL, NULL, rows_open,
                                      params, out, err);
}

/* ---------------------------------------------------------------------------------------------
 * Describe: the result's and the parameters' schemas */

/* The Arrow type a parameter is declared with: DuckDB's, except TIMESTAMP as timestamp[ms] (see
 * engine.h) and VARCHAR where DuckDB cannot tell or has no Arrow form. Owned by the caller. */
static duckdb_logical_type param_type(duckdb_connection conn, duckdb_arrow_options options,
                                      duckdb_prepared_statement p, idx_t i) {
  duckdb_logical_type t = duckdb_param_logical_type(p, i);
  duckdb_type id = t != NULL ? duckdb_get_type_id(t) : DUCKDB_TYPE_INVALID;
  if (id == DUCKDB_TYPE_TIMESTAMP) {
    duckdb_destroy_logical_type(&t);
    return duckdb_create_logical_type(DUCKDB_TYPE_TIMESTAMP_MS);
  }
  if (id != DUCKDB_TYPE_INVALID && id != DUCKDB_TYPE_ANY && id != DUCKDB_TYPE_SQLNULL) {
    struct ArrowSchema one = {0};
    const char *name = "p";
    duckdb_error_data ed = duckdb_to_arrow_schema(options, &t, &name, 1, &one);
    bool ok = !duckdb_error_data_has_error(ed);
    duckdb_destroy_error_data(&ed);
    wg_schema_release(&one);
    if (ok) return t;
  }
  (void)conn;
  if (t != NULL) duckdb_destroy_logical_type(&t);
  return duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
}

/* The run half of the parameters' schema (prepare only). */
struct params_schema {
  struct ArrowSchema *out;
  duckdb_statement_type type;
  idx_t n;
  duckdb_logical_type *columns; /* the result columns' types, for their metadata */
  idx_t n_columns;
};

/* The result columns' logical types into ps (owned copies: they outlive the statement). */
static int keep_column_types(struct params_schema *ps, duckdb_prepared_statement p,
                             struct wg_error *err) {
  idx_t n = duckdb_prepared_statement_column_count(p);
  ps->columns = calloc(n ? n : 1, sizeof(*ps->columns));
  if (ps->columns == NULL)
    return wg_error_set(err, ENOMEM, "out of memory for %llu columns", (unsigned long long)n);
  ps->n_columns = n;
  for (idx_t i = 0; i < n; i++)
    ps->columns[i] = duckdb_prepared_statement_column_logical_type(p, i);
  return 0;
}

static void drop_column_types(struct params_schema *ps) {
  for (idx_t i = 0; ps->columns != NULL && i < ps->n_columns; i++)
    if (ps->columns[i] != NULL) duckdb_destroy_logical_type(&ps->columns[i]);
  free(ps->columns);
  ps->columns = NULL;
}

static int params_schema_run(void *ctx, struct wg_engine_conn *c, duckdb_prepared_statement *p,
                             struct wg_error *err) {
  struct params_schema *ps = ctx;
  struct ArrowSchema *out = ps->out;
  /* DuckDB 1.4 can "prepare" a statement whose binding failed (a file the sandbox refuses):
   * its type is INVALID and its error is the binder's */
  if (duckdb_prepare_error(*p) != NULL) return wg__engine_prepare_error(*p, err);
  idx_t n = ps->n = duckdb_nparams(*p);
  ps->type = duckdb_prepared_statement_type(*p);
  WG_RETURN_NOT_OK(keep_column_types(ps, *p, err));
  duckdb_logical_type *types = calloc(n ? n : 1, sizeof(*types));
  char **names = calloc(n ? n : 1, sizeof(*names));
  duckdb_arrow_options options = NULL;
  duckdb_connection_get_arrow_options(c->conn, &options);
  int rc = types == NULL || names == NULL || options == NULL
               ? wg_error_set(err, ENOMEM, "out of memory for %llu parameters",
                              (unsigned long long)n)
               : 0;
  for (idx_t i = 0; rc == 0 && i < n; i++) {
    types[i] = param_type(c->conn, options, *p, i + 1);
    const char *own = duckdb_parameter_name(*p, i + 1);
    names[i] = malloc(32 + (own != NULL ? strlen(own) : 0));
    if (names[i] == NULL || types[i] == NULL) {
      rc = wg_error_set(err, ENOMEM, "out of memory");
    } else if (own != NULL && !all_digits(own)) {
      strcpy(names[i], own);
    } else {
      snprintf(names[i], 32, "%llu", (unsigned long long)i);
    }
    duckdb_free((void *)own);
  }
  struct ArrowSchema duck = {0};
  if (rc == 0) rc = wg_engine_to_arrow_schema(options, types, (const char **)names, n, &duck, err);
  if (rc == 0) rc = wg_schema_deep_copy(&duck, out, err); /* ours, to set formats */
  wg_schema_release(&duck);
  for (int64_t i = 0; rc == 0 && i < out->n_children; i++) {
    struct ArrowSchema *f = out->children[i];
    f->flags |= ARROW_FLAG_NULLABLE;
    if (strncmp(f->format, "tsu:", 4) == 0) { /* TIMESTAMP WITH TIME ZONE: as ms too */
      char *ms = strdup(f->format);
      if (ms == NULL) {
        rc = wg_error_set(err, ENOMEM, "out of memory");
        break;
      }
      ms[2] = 'm';
      if (wg_schema_set_format(f, ms) != 0) rc = wg_error_set(err, ENOMEM, "out of memory");
      free(ms);
    }
  }
  for (idx_t i = 0; i < n; i++) {
    if (types != NULL && types[i] != NULL) duckdb_destroy_logical_type(&types[i]);
    if (names != NULL) free(names[i]);
  }
  if (options != NULL) duckdb_destroy_arrow_options(&options);
  free(types);
  free(names);
  return rc;
}

int wg_engine_prepare_describe(struct wg_engine_conn *c, const char *sql,
                               struct ArrowSchema *dataset, struct ArrowSchema *params,
                               enum wg_engine_sql_kind *kind, struct wg_error *err) {
  memset(params, 0, sizeof(*params));
  memset(dataset, 0, sizeof(*dataset));
  *kind = WG_ENGINE_SQL_CHANGE;
  duckdb_extracted_statements stmts = NULL;
  idx_t n = duckdb_extract_statements(c->conn, sql, &stmts);
  duckdb_destroy_extracted(&stmts);
  int rc = 0;
  if (n > 1) { /* several: run as a script, no parameters */
    rc = wg_engine_query_describe(c, sql, dataset, kind, err);
    if (rc == 0) rc = wg_schema_node_init(dataset, "+s", 0, err);
    if (rc == 0) rc = wg_schema_node_init(params, "+s", 0, err);
  } else {
    struct params_schema ps = {.out = params};
    struct wg__client_sql q = {.sql = sql, .prepare_only = true, .run = params_schema_run,
                               .ctx = &ps};
    rc = wg__engine_client_sql(c, &q, err);
    struct wg_error why;
    int drc = rc == 0 ? wg_engine_query_describe(c, sql, dataset, kind, &why) : 0;
    if (drc != 0 && ps.n > 0 && ps.type == DUCKDB_STATEMENT_TYPE_SELECT) {
      *kind = WG_ENGINE_SQL_ROWS; /* result types that only the bound values tell */
    } else if (drc != 0) {
      rc = drc;
      if (err != NULL) *err = why;
    } else if (rc == 0 && *kind == WG_ENGINE_SQL_CHANGE) {
      rc = wg_schema_node_init(dataset, "+s", 0, err);
    } else if (rc == 0) {
      rc = wg__engine_describe_columns(ps.columns, ps.n_columns, dataset, err);
    }
    drop_column_types(&ps);
  }
  if (rc != 0) {
    wg_schema_release(dataset);
    wg_schema_release(params);
  }
  return rc;
}
