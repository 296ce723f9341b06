/* wigeon: the client-side DuckDB of the command line: an in-memory database of the user's own (so
 * file access is fine here), used to read CSV/Parquet/JSON files for put, to write Parquet, and to
 * turn any Arrow type into text exactly as DuckDB prints it. A stream is handed to DuckDB with
 * duckdb_arrow_scan as a view; DuckDB keeps the schemas it asks for without releasing them, so
 * the view lends views of one schema it owns (as engine/arrow_duck.c does for ingest). */
#include <stdlib.h>
#include <string.h>

#include "arrow/array.h"
#include "cli/cli.h"
#include "engine/arrow_duck.h"

int wg_cli_duck_open(struct wg_cli_duck *d, struct wg_error *err) {
  memset(d, 0, sizeof(*d));
  char *open_err = NULL;
  duckdb_config config = NULL;
  if (duckdb_create_config(&config) != DuckDBSuccess)
    return wg_error_set(err, ENOMEM, "cannot create a DuckDB configuration");
  /* Our own results are small-batch and ordered; a few threads are plenty for a client. */
  duckdb_set_config(config, "threads", "4");
  duckdb_state st = duckdb_open_ext(":memory:", &d->db, config, &open_err);
  duckdb_destroy_config(&config);
  if (st != DuckDBSuccess) {
    int rc = wg_error_set(err, EIO, "cannot open the client-side DuckDB: %s",
                          open_err ? open_err : "unknown error");
    duckdb_free(open_err);
    return rc;
  }
  if (duckdb_connect(d->db, &d->conn) != DuckDBSuccess) {
    duckdb_close(&d->db);
    return wg_error_set(err, EIO, "cannot connect to the client-side DuckDB");
  }
  return 0;
}

void wg_cli_duck_close(struct wg_cli_duck *d) {
  if (d->conn != NULL) duckdb_disconnect(&d->conn);
  if (d->db != NULL) duckdb_close(&d->db);
}

/* ---- a stream as a view ---- */

static void lent_schema_release(struct ArrowSchema *s) {
  s->release = NULL;
}

static int view_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct wg_cli_view *v = s->private_data;
  *out = v->schema;
  out->release = lent_schema_release;
  return 0;
}

static int view_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct wg_cli_view *v = s->private_data;
  out->release = NULL;
  if (v->inner_status != 0) return v->inner_status;
  int rc = v->inner.get_next(&v->inner, out);
  if (rc != 0) {
    const char *m = v->inner.get_last_error ? v->inner.get_last_error(&v->inner) : NULL;
    int status = wg_cli_stream_errno(&v->inner);
    v->inner_status = wg_error_set(&v->inner_error, status != 0 ? status : rc, "%s",
                                   m ? m : "reading the stream failed");
    return rc;
  }
  if (out->release != NULL) v->rows += out->length;
  return 0;
}

static const char *view_get_last_error(struct ArrowArrayStream *s) {
  struct wg_cli_view *v = s->private_data;
  return v->inner_status != 0 ? v->inner_error.message : NULL;
}

static void view_release(struct ArrowArrayStream *s) {
  s->release = NULL; /* the view owns everything; wg_cli_view_destroy frees it */
}

int wg_cli_view_create(struct wg_cli_view **out, duckdb_connection conn,
                       struct ArrowArrayStream *stream, struct wg_error *err) {
  *out = NULL;
  struct wg_cli_view *v = calloc(1, sizeof(*v));
  if (v == NULL) {
    wg_stream_release(stream);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  v->inner = *stream;
  stream->release = NULL;
  v->conn = conn;
  snprintf(v->name, sizeof(v->name), "__wg_cli_%p", (void *)v);
  v->lent = (struct ArrowArrayStream){view_get_schema, view_get_next, view_get_last_error,
                                      view_release, v};
  int rc = v->inner.get_schema(&v->inner, &v->schema);
  if (rc != 0) {
    const char *m = v->inner.get_last_error ? v->inner.get_last_error(&v->inner) : NULL;
    int status = wg_cli_stream_errno(&v->inner);
    v->schema.release = NULL;
    rc = wg_error_set(err, status != 0 ? status : rc, "%s", m ? m : "reading the schema failed");
    wg_cli_view_destroy(v);
    return rc;
  }
  if (duckdb_arrow_scan(conn, v->name, (duckdb_arrow_stream)&v->lent) != DuckDBSuccess) {
    wg_cli_view_destroy(v);
    return wg_error_set(err, ENOTSUP, "DuckDB cannot read this result's Arrow schema");
  }
  v->registered = true;
  *out = v;
  return 0;
}

void wg_cli_view_destroy(struct wg_cli_view *v) {
  if (v == NULL) return;
  if (v->registered) {
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP VIEW IF EXISTS \"%s\"", v->name);
    wg_engine_exec(v->conn, sql, NULL);
  }
  wg_schema_release(&v->schema);
  wg_stream_release(&v->inner);
  free(v);
}

int wg_cli_view_error(struct wg_cli_view *v, int rc, struct wg_error *err) {
  if (v->inner_status == 0) return rc;
  return wg_error_set(err, v->inner_status, "%s", v->inner_error.message);
}

/* ---- rows as text ---- */

static int run_streaming(duckdb_connection conn, const char *sql, duckdb_prepared_statement *prep,
                         duckdb_result *result, struct wg_error *err) {
  if (duckdb_prepare(conn, sql, prep) != DuckDBSuccess) {
    return wg_engine_error_set(err, DUCKDB_ERROR_INVALID, duckdb_prepare_error(*prep),
                               "prepare failed");
  }
  duckdb_pending_result pending = NULL;
  if (duckdb_pending_prepared_streaming(*prep, &pending) != DuckDBSuccess) {
    int rc = wg_engine_error_set(err, DUCKDB_ERROR_INVALID, duckdb_pending_error(pending),
                                 "query failed");
    duckdb_destroy_pending(&pending);
    return rc;
  }
  duckdb_state st = duckdb_execute_pending(pending, result);
  duckdb_destroy_pending(&pending);
  if (st != DuckDBSuccess) {
    return wg_engine_error_set(err, duckdb_result_error_type(result), duckdb_result_error(result),
                               "query failed");
  }
  return 0;
}

/* The DuckDB type names of the view's columns, from DESCRIBE (binding only: nothing is read). */
static int view_types(struct wg_cli_view *v, int64_t n, char **types, struct wg_error *err) {
  char sql[160];
  snprintf(sql, sizeof(sql), "DESCRIBE SELECT * FROM \"%s\"", v->name);
  duckdb_result r;
  if (duckdb_query(v->conn, sql, &r) != DuckDBSuccess) {
    int rc = wg_error_set(err, EIO, "%s", duckdb_result_error(&r));
    duckdb_destroy_result(&r);
    return rc;
  }
  idx_t rows = duckdb_row_count(&r);
  for (int64_t i = 0; i < n; i++) {
    char *t = (idx_t)i < rows ? duckdb_value_varchar(&r, 1, (idx_t)i) : NULL;
    types[i] = strdup(t ? t : "?");
    duckdb_free(t);
  }
  duckdb_destroy_result(&r);
  return 0;
}

int wg_cli_rows_read(duckdb_connection conn, struct ArrowArrayStream *stream, enum wg_cli_cast cast,
                     const struct wg_cli_rows_sink *sink, int64_t *rows, struct wg_error *err) {
  *rows = 0;
  struct wg_cli_view *v;
  WG_RETURN_NOT_OK(wg_cli_view_create(&v, conn, stream, err));
  int64_t n = v->schema.n_children;
  char **names = calloc((size_t)n + 1, sizeof(char *));
  char **types = calloc((size_t)n + 1, sizeof(char *));
  struct wg_cli_cell *cells = calloc((size_t)n + 1, sizeof(*cells));
  duckdb_vector *vecs = calloc((size_t)n + 1, sizeof(*vecs));
  duckdb_prepared_statement prep = NULL;
  duckdb_result result;
  memset(&result, 0, sizeof(result));
  bool have_result = false;
  int rc = 0;
  if (names == NULL || types == NULL || cells == NULL || vecs == NULL) {
    rc = wg_error_set(err, ENOMEM, "out of memory");
    goto done;
  }
  for (int64_t i = 0; i < n; i++)
    names[i] = strdup(v->schema.children[i]->name ? v->schema.children[i]->name : "");
  rc = view_types(v, n, types, err);
  if (rc == 0) rc = sink->begin(sink->ctx, n, names, types);
  if (rc != 0) goto done;
  if (n == 0) { /* nothing DuckDB can select: count the rows */
    struct ArrowArray a;
    while ((rc = v->lent.get_next(&v->lent, &a)) == 0 && a.release != NULL)
      wg_array_release(&a);
    if (rc != 0) rc = wg_cli_view_error(v, rc, err);
    *rows = v->rows;
    goto done;
  }
  char sql[192];
  snprintf(sql, sizeof(sql), "SELECT %s FROM \"%s\"",
           cast == WG_CLI_CAST_JSON ? "to_json(COLUMNS(*))" : "COLUMNS(*)::VARCHAR", v->name);
  rc = run_streaming(conn, sql, &prep, &result, err);
  have_result = true;
  if (rc != 0) {
    rc = wg_cli_view_error(v, rc, err);
    goto done;
  }
  for (;;) {
    duckdb_data_chunk chunk = duckdb_fetch_chunk(result);
    if (chunk == NULL) {
      const char *m = duckdb_result_error(&result);
      if (m != NULL) {
        rc = wg_cli_view_error(
            v, wg_engine_error_set(err, duckdb_result_error_type(&result), m, NULL), err);
      }
      break;
    }
    idx_t size = duckdb_data_chunk_get_size(chunk);
    for (int64_t c = 0; c < n; c++)
      vecs[c] = duckdb_data_chunk_get_vector(chunk, (idx_t)c);
    for (idx_t r = 0; r < size && rc == 0; r++) {
      for (int64_t c = 0; c < n; c++) {
        uint64_t *valid = duckdb_vector_get_validity(vecs[c]);
        duckdb_string_t *s = (duckdb_string_t *)duckdb_vector_get_data(vecs[c]) + r;
        cells[c].null = valid != NULL && !duckdb_validity_row_is_valid(valid, r);
        cells[c].data = cells[c].null ? "" : duckdb_string_t_data(s);
        cells[c].len = cells[c].null ? 0 : duckdb_string_t_length(*s);
      }
      rc = sink->row(sink->ctx, cells);
      if (rc == 0) (*rows)++;
    }
    duckdb_destroy_data_chunk(&chunk);
    if (rc != 0) break;
  }
done:
  if (have_result) duckdb_destroy_result(&result);
  duckdb_destroy_prepare(&prep);
  for (int64_t i = 0; i < n && names != NULL; i++)
    free(names[i]);
  for (int64_t i = 0; i < n && types != NULL; i++)
    free(types[i]);
  free(names);
  free(types);
  free(cells);
  free(vecs);
  wg_cli_view_destroy(v);
  return rc;
}
