/* wigeon: DuckDB <-> Arrow over the C API (see arrow_duck.h).
 * Export streams a pending streaming result chunk by chunk through duckdb_data_chunk_to_arrow.
 * Ingest wraps the caller's stream in one of ours before handing it to duckdb_arrow_scan, because
 * DuckDB keeps (and never releases) the schemas it asks for: ours lends views of one cached
 * schema, released by us. Relies on duckdb.h 1.4 and arrow/array.h. */
#include "engine/arrow_duck.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/array.h"
#include "common/buf.h"
#include "common/sql.h"
#include "engine/engine_internal.h"


static int result_error(duckdb_result *result, struct wg_error *err, const char *what) {
  if (result->internal_data == NULL) /* failed without filling in its result: see engine.c */
    return wg_error_set(err, EIO, "DuckDB %s failed without a result (no error message)", what);
  return wg_engine_error_set(err, duckdb_result_error_type(result), duckdb_result_error(result),
                             what);
}

int wg_engine_exec(duckdb_connection conn, const char *sql, struct wg_error *err) {
  if (conn == NULL || sql == NULL) return wg_error_set(err, EINVAL, "exec: NULL connection or sql");
  duckdb_result result;
  memset(&result, 0, sizeof(result));
  int rc = 0;
  if (duckdb_query(conn, sql, &result) != DuckDBSuccess) rc = result_error(&result, err, "exec");
  duckdb_destroy_result(&result);
  return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Query export */

struct query_stream {
  duckdb_prepared_statement prepared; /* kept until release: the result runs its plan */
  duckdb_result result;
  duckdb_arrow_options options;
  struct ArrowSchema schema; /* ours, deep-copied out by get_schema */
  bool finished;
  int failed; /* sticky status once get_next failed */
  struct wg_error error;
};

static void query_stream_free(struct query_stream *q) {
  if (q == NULL) return;
  wg_schema_release(&q->schema);
  if (q->options != NULL) duckdb_destroy_arrow_options(&q->options);
  duckdb_destroy_result(&q->result);
  duckdb_destroy_prepare(&q->prepared);
  free(q);
}

static int query_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct query_stream *q = s->private_data;
  return wg_schema_deep_copy(&q->schema, out, &q->error);
}

static int query_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct query_stream *q = s->private_data;
  out->release = NULL;
  if (q->failed != 0) return q->failed;
  while (!q->finished) {
    duckdb_data_chunk chunk = duckdb_fetch_chunk(q->result);
    if (chunk == NULL) {
      /* NULL is both "exhausted" and "failed"; only the result's error tells them apart. */
      if (duckdb_result_error(&q->result) != NULL) {
        q->failed = result_error(&q->result, &q->error, "fetch");
        return q->failed;
      }
      q->finished = true;
      break;
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
      out->release = NULL;
      q->failed = rc;
      return rc;
    }
    return 0;
  }
  return 0; /* end of stream: out stays released */
}

static const char *query_get_last_error(struct ArrowArrayStream *s) {
  struct query_stream *q = s->private_data;
  return q->error.message[0] ? q->error.message : NULL;
}

static void query_release(struct ArrowArrayStream *s) {
  query_stream_free(s->private_data);
  s->private_data = NULL;
  s->release = NULL;
}

int wg_engine_to_arrow_schema(duckdb_arrow_options options, duckdb_logical_type *types,
                              const char **names, idx_t n, struct ArrowSchema *out,
                              struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  duckdb_error_data ed = duckdb_to_arrow_schema(options, types, names, n, out);
  int rc = wg_engine_take_error_data(&ed, err, "duckdb_to_arrow_schema");
  if (rc == 0 && out->release == NULL)
    return wg_error_set(err, EIO, "duckdb_to_arrow_schema returned no schema");
  if (rc == 0) return 0;
  wg_schema_release(out);
  /* DuckDB's message names the type but not the column ("Unsupported Arrow type TIME_NS"):
   * convert each column alone to find the one it refuses (error path only). */
  for (idx_t i = 0; i < n; i++) {
    struct ArrowSchema one;
    memset(&one, 0, sizeof(one));
    struct wg_error why = {{0}};
    ed = duckdb_to_arrow_schema(options, &types[i], &names[i], 1, &one);
    int bad = wg_engine_take_error_data(&ed, &why, "duckdb_to_arrow_schema");
    wg_schema_release(&one);
    if (bad != 0) {
      /* the C API has no id for some types (TIME_NS is DUCKDB_TYPE_INVALID): DuckDB's message
       * names those */
      char *type = wg__engine_type_name(types[i]);
      bool named = type != NULL && strncmp(type, "TYPE_", 5) != 0;
      rc = wg_error_set(err, rc,
                        "result column \"%s\": DuckDB type%s%s has no Arrow form in DuckDB 1.4 "
                        "(%s); cast it in the query",
                        names[i], named ? " " : "", named ? type : "", why.message);
      free(type);
      break;
    }
  }
  return rc;
}

/* Builds q->schema from the result's column names and logical types. */
static int query_build_schema(struct query_stream *q, struct wg_error *err) {
  idx_t n = duckdb_column_count(&q->result);
  duckdb_logical_type *types = calloc(n ? n : 1, sizeof(*types));
  const char **names = calloc(n ? n : 1, sizeof(*names));
  int rc = 0;
  if (types == NULL || names == NULL) {
    rc = wg_error_set(err, ENOMEM, "out of memory for %llu result columns", (unsigned long long)n);
    goto done;
  }
  for (idx_t i = 0; i < n; i++) {
    types[i] = duckdb_column_logical_type(&q->result, i);
    names[i] = duckdb_column_name(&q->result, i);
    if (types[i] == NULL || names[i] == NULL) {
      rc = wg_error_set(err, EIO, "result column %llu has no type or name", (unsigned long long)i);
      goto done;
    }
  }
  rc = wg_engine_to_arrow_schema(q->options, types, names, n, &q->schema, err);
done:
  if (types != NULL) {
    for (idx_t i = 0; i < n; i++) {
      if (types[i] != NULL) duckdb_destroy_logical_type(&types[i]);
    }
  }
  free(types);
  free(names);
  return rc;
}

void wg_engine_pending_abandon(duckdb_connection conn, duckdb_pending_result *pending) {
  if (*pending == NULL) return;
  duckdb_interrupt(conn);
  duckdb_result r;
  memset(&r, 0, sizeof(r));
  duckdb_execute_pending(*pending, &r); /* INTERRUPT Error, after DuckDB's cleanup */
  duckdb_destroy_result(&r);
  duckdb_destroy_pending(pending);
}

int wg_engine_query_arrow_stream(duckdb_connection conn, const char *sql,
                                 struct ArrowArrayStream *out, struct wg_error *err) {
  return wg_engine_query_arrow_stream_flag(conn, sql, NULL, NULL, NULL, NULL, out, err);
}

int wg_engine_query_arrow_stream_flag(duckdb_connection conn, const char *sql,
                                      const atomic_bool *interrupted, duckdb_statement_type *type,
                                      int (*before_run)(void *ctx, duckdb_prepared_statement,
                                                        struct wg_error *),
                                      void *ctx,
                                      struct ArrowArrayStream *out, struct wg_error *err) {
  if (type != NULL) *type = DUCKDB_STATEMENT_TYPE_INVALID;
  if (out == NULL) return wg_error_set(err, EINVAL, "query: NULL output stream");
  memset(out, 0, sizeof(*out));
  if (conn == NULL || sql == NULL)
    return wg_error_set(err, EINVAL, "query: NULL connection or sql");
  duckdb_prepared_statement p = NULL;
  if (duckdb_prepare(conn, sql, &p) != DuckDBSuccess) {
    int rc = wg_engine_error_set(err, DUCKDB_ERROR_INVALID, duckdb_prepare_error(p),
                                 "prepare failed");
    duckdb_destroy_prepare(&p);
    return rc;
  }
  if (type != NULL) *type = duckdb_prepared_statement_type(p);
  int rc = before_run != NULL ? before_run(ctx, p, err) : 0;
  if (rc != 0) {
    duckdb_destroy_prepare(&p);
    return rc;
  }
  return wg_engine_query_arrow_stream_prepared(conn, &p, interrupted, out, err);
}

int wg_engine_query_arrow_stream_prepared(duckdb_connection conn, duckdb_prepared_statement *p,
                                          const atomic_bool *interrupted,
                                          struct ArrowArrayStream *out, struct wg_error *err) {
  if (out == NULL) {
    duckdb_destroy_prepare(p);
    return wg_error_set(err, EINVAL, "query: NULL output stream");
  }
  memset(out, 0, sizeof(*out));
  struct query_stream *q = calloc(1, sizeof(*q));
  if (q == NULL) {
    duckdb_destroy_prepare(p);
    return wg_error_set(err, ENOMEM, "out of memory for a query stream");
  }
  q->prepared = *p; /* ours now */
  *p = NULL;
  int rc = 0;
  duckdb_pending_result pending = NULL;
  if (duckdb_pending_prepared_streaming(q->prepared, &pending) != DuckDBSuccess) {
    rc = wg_engine_error_set(err, DUCKDB_ERROR_INVALID, duckdb_pending_error(pending),
                             "pending query failed");
    duckdb_destroy_pending(&pending);
    goto fail;
  }
  /* DuckDB has begun the query: from here on duckdb_interrupt is honoured; before, it was not. */
  if (interrupted != NULL && atomic_load(interrupted)) {
    wg_engine_pending_abandon(conn, &pending);
    rc = wg_error_set(err, ECANCELED, "INTERRUPT Error: interrupted before the query started");
    goto fail;
  }
  duckdb_state st = duckdb_execute_pending(pending, &q->result);
  duckdb_destroy_pending(&pending);
  if (st != DuckDBSuccess) {
    rc = result_error(&q->result, err, "execute");
    goto fail;
  }
  q->options = duckdb_result_get_arrow_options(&q->result);
  if (q->options == NULL) {
    rc = wg_error_set(err, EIO, "result has no arrow options");
    goto fail;
  }
  rc = query_build_schema(q, err);
  if (rc != 0) goto fail;

  out->get_schema = query_get_schema;
  out->get_next = query_get_next;
  out->get_last_error = query_get_last_error;
  out->release = query_release;
  out->private_data = q;
  return 0;
fail:
  query_stream_free(q);
  return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Ingest */

/* The stream DuckDB sees. DuckDB calls get_schema at view creation and at each bind, and keeps
 * the root schema without releasing it; so get_schema lends a shallow copy of `schema` whose
 * release does nothing, and we release `schema` ourselves. get_next forwards to the caller's
 * stream, counts rows and remembers the first failure so its status survives DuckDB's wrapping. */
struct ingest_source {
  struct ArrowArrayStream inner; /* the caller's stream, now ours */
  struct ArrowSchema schema;     /* from inner.get_schema */
  int64_t rows;
  int inner_status;
  struct wg_error inner_error;
};

static void lent_schema_release(struct ArrowSchema *s) {
  s->release = NULL;
}

static int ingest_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct ingest_source *src = s->private_data;
  *out = src->schema;
  out->release = lent_schema_release;
  return 0;
}

static int ingest_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct ingest_source *src = s->private_data;
  if (src->inner_status != 0) return src->inner_status;
  int rc = src->inner.get_next(&src->inner, out);
  if (rc != 0) {
    const char *msg = src->inner.get_last_error ? src->inner.get_last_error(&src->inner) : NULL;
    src->inner_status = wg_error_set(&src->inner_error, rc, "%s", msg ? msg : "(no message)");
    return rc;
  }
  if (out->release != NULL) src->rows += out->length;
  return 0;
}

static const char *ingest_get_last_error(struct ArrowArrayStream *s) {
  struct ingest_source *src = s->private_data;
  return src->inner_status != 0 ? src->inner_error.message : NULL;
}

static void ingest_release(struct ArrowArrayStream *s) {
  s->release = NULL; /* only the lent views go to DuckDB; the source is freed by ingest itself */
}

/* Builds "<head> "table" <mid> "view"" as a NUL-terminated string in b. */
static int build_sql(struct wg_buf *b, const char *head, const char *table, const char *mid,
                     const char *view) {
  b->size = 0;
  WG_RETURN_NOT_OK(wg_buf_append(b, head, (int64_t)strlen(head)));
  if (table != NULL) WG_RETURN_NOT_OK(wg_sql_append_ident(b, table));
  WG_RETURN_NOT_OK(wg_buf_append(b, mid, (int64_t)strlen(mid)));
  if (view != NULL) WG_RETURN_NOT_OK(wg_sql_append_ident(b, view));
  return wg_buf_append(b, "", 1);
}

static bool table_exists(duckdb_connection conn, const char *table) {
  duckdb_table_description desc = NULL;
  bool exists = duckdb_table_description_create(conn, NULL, table, &desc) == DuckDBSuccess;
  duckdb_table_description_destroy(&desc);
  return exists;
}

int wg_engine_ingest_arrow_stream_mode(duckdb_connection conn, const char *table,
                                       enum wg_engine_ingest_mode mode,
                                       struct ArrowArrayStream *stream, int64_t *rows,
                                       struct wg_error *err) {
  if (rows != NULL) *rows = 0;
  if (stream == NULL || stream->release == NULL)
    return wg_error_set(err, EINVAL, "ingest: no stream (NULL or released)");
  struct ingest_source *src = calloc(1, sizeof(*src));
  if (src == NULL) {
    wg_stream_release(stream);
    return wg_error_set(err, ENOMEM, "out of memory for an ingest source");
  }
  src->inner = *stream;
  stream->release = NULL;
  struct ArrowArrayStream lent = {ingest_get_schema, ingest_get_next, ingest_get_last_error,
                                  ingest_release, src};
  struct wg_buf sql;
  wg_buf_init(&sql);
  char view[64];
  snprintf(view, sizeof(view), "__wg_ingest_%p", (void *)src);
  bool own_txn = false, view_made = false;
  int rc = 0;

  if (conn == NULL || table == NULL || table[0] == '\0') {
    rc = wg_error_set(err, EINVAL, "ingest: NULL connection or empty table name");
    goto done;
  }
  if (mode < WG_ENGINE_INGEST_CREATE_OR_APPEND || mode > WG_ENGINE_INGEST_REPLACE) {
    rc = wg_error_set(err, EINVAL, "ingest: unknown mode %d", (int)mode);
    goto done;
  }
  rc = src->inner.get_schema(&src->inner, &src->schema);
  if (rc != 0) {
    const char *msg = src->inner.get_last_error ? src->inner.get_last_error(&src->inner) : NULL;
    src->schema.release = NULL;
    rc = wg_error_set(err, rc, "ingest: stream get_schema failed: %s", msg ? msg : "(no message)");
    goto done;
  }
  if (src->schema.release == NULL || src->schema.format == NULL ||
      strcmp(src->schema.format, "+s") != 0) {
    rc = wg_error_set(err, EINVAL, "ingest: stream schema is not a struct (format \"%s\")",
                      src->schema.format ? src->schema.format : "(null)");
    goto done;
  }

  /* Our own transaction when the connection has none, so a failed ingest leaves nothing; BEGIN
   * fails inside a caller's transaction, and then we join it. */
  own_txn = wg_engine_exec(conn, "BEGIN TRANSACTION", NULL) == 0;

  bool exists = table_exists(conn, table);
  if (mode == WG_ENGINE_INGEST_CREATE && exists) {
    rc = wg_error_set(err, EEXIST, "ingest: table \"%s\" already exists", table);
    goto done;
  }
  if (mode == WG_ENGINE_INGEST_APPEND && !exists) {
    rc = wg_error_set(err, ENOENT, "ingest: table \"%s\" does not exist", table);
    goto done;
  }

  if (duckdb_arrow_scan(conn, view, (duckdb_arrow_stream)&lent) != DuckDBSuccess) {
    rc = wg_error_set(err, EINVAL, "ingest: DuckDB rejected the stream's schema for \"%s\"", table);
    goto done;
  }
  view_made = true;

  bool append =
      mode == WG_ENGINE_INGEST_APPEND || (mode == WG_ENGINE_INGEST_CREATE_OR_APPEND && exists);
  if (append)
    rc = build_sql(&sql, "INSERT INTO ", table, " BY NAME SELECT * FROM ", view);
  else if (mode == WG_ENGINE_INGEST_REPLACE)
    rc = build_sql(&sql, "CREATE OR REPLACE TABLE ", table, " AS SELECT * FROM ", view);
  else
    rc = build_sql(&sql, "CREATE TABLE ", table, " AS SELECT * FROM ", view);
  if (rc != 0) {
    rc = wg_error_set(err, ENOMEM, "out of memory for ingest SQL");
    goto done;
  }
  rc = wg_engine_exec(conn, (const char *)sql.data, err);
  if (rc != 0) {
    if (src->inner_status != 0) /* the stream failed: its status says more than DuckDB's */
      rc = wg_error_set(err, src->inner_status, "ingest into \"%s\": stream failed: %s", table,
                        src->inner_error.message);
    else
      wg_error_prefix(err, rc, "ingest into \"%s\"", table);
    goto done;
  }

done:
  if (view_made) {
    struct wg_error drop_err;
    if (build_sql(&sql, "DROP VIEW IF EXISTS ", NULL, "", view) == 0 &&
        wg_engine_exec(conn, (const char *)sql.data, &drop_err) != 0 && rc == 0)
      rc = wg_error_set(err, EIO, "ingest: dropping view %s: %s", view, drop_err.message);
  }
  if (own_txn) {
    if (rc == 0) {
      rc = wg_engine_exec(conn, "COMMIT", err);
      if (rc != 0) wg_error_prefix(err, rc, "ingest into \"%s\": commit", table);
    } else {
      wg_engine_exec(conn, "ROLLBACK", NULL);
    }
  }
  if (rc == 0 && rows != NULL) *rows = src->rows;
  wg_buf_reset(&sql);
  wg_schema_release(&src->schema);
  wg_stream_release(&src->inner);
  free(src);
  return rc;
}

int wg_engine_ingest_arrow_stream(duckdb_connection conn, const char *table,
                                  struct ArrowArrayStream *stream, struct wg_error *err) {
  return wg_engine_ingest_arrow_stream_mode(conn, table, WG_ENGINE_INGEST_CREATE_OR_APPEND, stream,
                                            NULL, err);
}

/* ---------------------------------------------------------------------------------------------
 * The DuckDB types of an Arrow schema (wg_engine_query_over's table function binds with them) */

static int no_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  (void)s;
  out->release = NULL;
  return EINVAL; /* never called: the view is only prepared */
}

int wg_engine_arrow_types(duckdb_connection conn, const struct ArrowSchema *schema,
                          duckdb_logical_type **types, char ***names, idx_t *n,
                          struct wg_error *err) {
  *types = NULL;
  *names = NULL;
  *n = 0;
  if (schema == NULL || schema->release == NULL || schema->format == NULL ||
      strcmp(schema->format, "+s") != 0)
    return wg_error_set(err, EINVAL, "input schema is not a struct (format \"%s\")",
                        schema && schema->format ? schema->format : "(null)");
  struct ingest_source src;
  memset(&src, 0, sizeof(src));
  src.schema = *schema; /* lent: never released here */
  struct ArrowArrayStream lent = {ingest_get_schema, no_next, ingest_get_last_error,
                                  ingest_release, &src};
  char view[64];
  snprintf(view, sizeof(view), "__wg_types_%p", (void *)&src);
  struct wg_buf sql;
  wg_buf_init(&sql);
  duckdb_prepared_statement p = NULL;
  int rc = 0;
  if (duckdb_arrow_scan(conn, view, (duckdb_arrow_stream)&lent) != DuckDBSuccess) {
    rc = wg_error_set(err, EINVAL, "DuckDB rejected the input stream's schema");
    goto done;
  }
  rc = build_sql(&sql, "SELECT * FROM ", NULL, "", view);
  if (rc != 0) rc = wg_error_set(err, ENOMEM, "out of memory for the input's types");
  if (rc == 0 && duckdb_prepare(conn, (const char *)sql.data, &p) != DuckDBSuccess)
    rc = wg_engine_error_set(err, DUCKDB_ERROR_INVALID, duckdb_prepare_error(p),
                             "binding the input stream's schema failed");
  idx_t cols = rc == 0 ? duckdb_prepared_statement_column_count(p) : 0;
  if (rc == 0) {
    *types = calloc(cols ? cols : 1, sizeof(**types));
    *names = calloc(cols ? cols : 1, sizeof(**names));
    if (*types == NULL || *names == NULL) rc = wg_error_set(err, ENOMEM, "out of memory");
  }
  for (idx_t i = 0; rc == 0 && i < cols; i++, (*n)++) {
    const char *name = duckdb_prepared_statement_column_name(p, i);
    (*names)[i] = name ? strdup(name) : NULL;
    duckdb_free((void *)name);
    (*types)[i] = duckdb_prepared_statement_column_logical_type(p, i);
    if ((*names)[i] == NULL || (*types)[i] == NULL)
      rc = wg_error_set(err, ENOMEM, "out of memory for input column %llu", (unsigned long long)i);
  }
  if (build_sql(&sql, "DROP VIEW IF EXISTS ", NULL, "", view) == 0)
    wg_engine_exec(conn, (const char *)sql.data, NULL);
done:
  duckdb_destroy_prepare(&p);
  wg_buf_reset(&sql);
  if (rc != 0) wg_engine_arrow_types_free(*types, *names, *n);
  if (rc != 0) {
    *types = NULL;
    *names = NULL;
    *n = 0;
  }
  return rc;
}

void wg_engine_arrow_types_free(duckdb_logical_type *types, char **names, idx_t n) {
  for (idx_t i = 0; i < n; i++) {
    if (types != NULL && types[i] != NULL) duckdb_destroy_logical_type(&types[i]);
    if (names != NULL) free(names[i]);
  }
  free(types);
  free(names);
}
