/* wigeon: SQL over an Arrow stream (wg_engine_query_over, see engine.h). The stream is read by
 * our own table function __wg_input() (registered at open, wg__engine_inputs_register), which
 * finds the stream of its connection in the engine's registry, and `name` is a temporary view
 * over it; the SQL runs as a gathered client query (query.c) inside one transaction begun here,
 * and the view and the transaction end with the stream: COMMIT at its end, ROLLBACK on failure or
 * early release. Not DuckDB's duckdb_arrow_scan: its C API ignores the filters and projections
 * DuckDB pushes into it (so `WHERE k = 3` kept every row, and a one-column read got the wrong
 * column; see duckdb/duckdb#16050). Our function takes no pushdown: DuckDB filters and projects.
 * Relies on query.c leaving a transaction it did not begin to its caller (txn_maybe set first).
 *
 *   open ──> streaming ──(end of result)──> finish(commit) ──> ended (end, or COMMIT's error)
 *                │
 *                ├─(get_next fails)──> finish(rollback) ──> ended (the error, sticky)
 *                └─(release)─────────> finish(rollback) ──> freed
 * transition -> function: open wg_engine_query_over; end/failure over_get_next; all over_finish. */
#include "engine/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INPUT_FUNCTION "__wg_input"

/* ---------------------------------------------------------------------------------------------
 * The input: a stream read by __wg_input() on the DuckDB thread that runs its scan */

struct input {
  idx_t conn_id; /* the DuckDB connection whose queries may read it */
  struct input *next;
  pthread_mutex_t mu; /* one read at a time (a query may scan the view twice) */
  struct ArrowArrayStream stream;
  struct ArrowSchema schema;
  duckdb_connection conv; /* our own, for duckdb_data_chunk_from_arrow's settings */
  duckdb_arrow_converted_schema converted;
  duckdb_logical_type *types;
  char **names;
  idx_t n;
  struct wg__slice_owner *batch; /* the batch being handed out in vector-sized pieces */
  int64_t pos;
  bool ended;
  int status; /* the stream's first failure */
  struct wg_error error;
};

struct wg__inputs {
  pthread_mutex_t mu;
  struct input *head;
};

static void inputs_free(void *p) {
  struct wg__inputs *r = p;
  if (r == NULL) return;
  pthread_mutex_destroy(&r->mu);
  free(r);
}

static idx_t conn_id_of(duckdb_connection conn) {
  duckdb_client_context ctx = NULL;
  duckdb_connection_get_client_context(conn, &ctx);
  idx_t id = ctx != NULL ? duckdb_client_context_get_connection_id(ctx) : (idx_t)-1;
  duckdb_destroy_client_context(&ctx);
  return id;
}

static void input_bind(duckdb_bind_info info) {
  struct wg__inputs *r = duckdb_bind_get_extra_info(info);
  duckdb_client_context ctx = NULL;
  duckdb_table_function_get_client_context(info, &ctx);
  idx_t id = ctx != NULL ? duckdb_client_context_get_connection_id(ctx) : (idx_t)-1;
  duckdb_destroy_client_context(&ctx);
  pthread_mutex_lock(&r->mu);
  struct input *in = r->head;
  while (in != NULL && in->conn_id != id)
    in = in->next;
  pthread_mutex_unlock(&r->mu);
  if (in == NULL) {
    duckdb_bind_set_error(info, INPUT_FUNCTION "() has no stream here: it reads the input of a "
                                "query over a stream (DoExchange), through its relation");
    return;
  }
  for (idx_t i = 0; i < in->n; i++)
    duckdb_bind_add_result_column(info, in->names[i], in->types[i]);
  duckdb_bind_set_bind_data(info, in, NULL); /* lives until the query over it ended */
}

static void input_init(duckdb_init_info info) {
  duckdb_init_set_max_threads(info, 1);
}

/* The next piece of at most one vector of rows: 0 and *out released at the end. */
static int input_next_piece(struct input *in, struct ArrowArray *out) {
  out->release = NULL;
  while (in->batch == NULL) {
    if (in->ended) return 0;
    struct ArrowArray a;
    memset(&a, 0, sizeof(a));
    int rc = in->stream.get_next(&in->stream, &a);
    if (rc != 0) {
      const char *m = in->stream.get_last_error ? in->stream.get_last_error(&in->stream) : NULL;
      return wg_error_set(&in->error, rc, "%s", m ? m : "get_next failed (no message)");
    }
    if (a.release == NULL) {
      in->ended = true;
      return 0;
    }
    if (a.length == 0 || a.n_children != (int64_t)in->n) {
      int64_t kids = a.n_children;
      a.release(&a);
      if (kids == (int64_t)in->n) continue;
      return wg_error_set(&in->error, EINVAL, "a batch of %lld columns in a stream of %llu",
                          (long long)kids, (unsigned long long)in->n);
    }
    in->batch = wg__slice_owner_create(&a);
    in->pos = 0;
    if (in->batch == NULL) return wg_error_set(&in->error, ENOMEM, "out of memory for a batch");
  }
  int64_t len = wg__slice_owner_batch(in->batch)->length;
  int64_t take = len - in->pos;
  if (take > (int64_t)duckdb_vector_size()) take = (int64_t)duckdb_vector_size();
  if (wg__slice(in->batch, &in->schema, in->pos, take, out) != 0)
    return wg_error_set(&in->error, ENOMEM, "out of memory slicing a batch");
  in->pos += take;
  if (in->pos == len) {
    wg__slice_owner_unref(in->batch);
    in->batch = NULL;
  }
  return 0;
}

static void input_function(duckdb_function_info info, duckdb_data_chunk output) {
  struct input *in = duckdb_function_get_bind_data(info);
  pthread_mutex_lock(&in->mu);
  struct ArrowArray piece;
  int rc = in->status;
  if (rc == 0) rc = in->status = input_next_piece(in, &piece);
  duckdb_data_chunk chunk = NULL;
  if (rc == 0 && piece.release != NULL) {
    duckdb_error_data ed = duckdb_data_chunk_from_arrow(in->conv, &piece, in->converted, &chunk);
    rc = in->status = wg_engine_take_error_data(&ed, &in->error, "converting an input batch");
    if (piece.release != NULL) piece.release(&piece); /* DuckDB takes it; not on every error */
  }
  if (rc == 0 && chunk != NULL) {
    for (idx_t i = 0; i < in->n; i++)
      duckdb_vector_reference_vector(duckdb_data_chunk_get_vector(output, i),
                                     duckdb_data_chunk_get_vector(chunk, i));
    duckdb_data_chunk_set_size(output, duckdb_data_chunk_get_size(chunk));
  } else {
    duckdb_data_chunk_set_size(output, 0);
  }
  if (chunk != NULL) duckdb_destroy_data_chunk(&chunk);
  if (rc != 0) duckdb_function_set_error(info, in->error.message);
  pthread_mutex_unlock(&in->mu);
}

int wg__engine_inputs_register(struct wg_engine *e, struct wg_engine_conn *c,
                               struct wg_error *err) {
  struct wg__inputs *r = calloc(1, sizeof(*r));
  duckdb_table_function tf = r != NULL ? duckdb_create_table_function() : NULL;
  if (tf == NULL) {
    free(r);
    return wg_error_set(err, ENOMEM, "out of memory for the input function");
  }
  pthread_mutex_init(&r->mu, NULL);
  duckdb_table_function_set_name(tf, INPUT_FUNCTION);
  duckdb_table_function_set_extra_info(tf, r, inputs_free); /* DuckDB frees r at close */
  duckdb_table_function_set_bind(tf, input_bind);
  duckdb_table_function_set_init(tf, input_init);
  duckdb_table_function_set_function(tf, input_function);
  duckdb_table_function_supports_projection_pushdown(tf, false);
  int rc = 0;
  if (duckdb_register_table_function(c->conn, tf) != DuckDBSuccess)
    rc = wg_error_set(err, EIO, "registering " INPUT_FUNCTION "() failed");
  else
    e->inputs = r;
  duckdb_destroy_table_function(&tf);
  return rc;
}

static void input_free(struct wg_engine *e, struct input *in) {
  if (in == NULL) return;
  struct wg__inputs *r = e->inputs;
  pthread_mutex_lock(&r->mu);
  for (struct input **p = &r->head; *p != NULL; p = &(*p)->next) {
    if (*p == in) {
      *p = in->next;
      break;
    }
  }
  pthread_mutex_unlock(&r->mu);
  wg__slice_owner_unref(in->batch);
  wg_stream_release(&in->stream);
  wg_schema_release(&in->schema);
  if (in->converted != NULL) duckdb_destroy_arrow_converted_schema(&in->converted);
  if (in->conv != NULL) duckdb_disconnect(&in->conv);
  wg_engine_arrow_types_free(in->types, in->names, in->n);
  pthread_mutex_destroy(&in->mu);
  free(in);
}

/* Takes *stream into a registered input of c (run inside the query's transaction: the types are
 * found by preparing a scan of the schema). */
static int input_create(struct wg_engine_conn *c, struct ArrowArrayStream *stream,
                        struct input **out, struct wg_error *err) {
  *out = NULL;
  struct input *in = calloc(1, sizeof(*in));
  if (in == NULL) {
    wg_stream_release(stream);
    return wg_error_set(err, ENOMEM, "out of memory for an input");
  }
  pthread_mutex_init(&in->mu, NULL);
  in->stream = *stream;
  stream->release = NULL;
  in->conn_id = conn_id_of(c->conn);
  struct wg__inputs *r = c->engine->inputs;
  pthread_mutex_lock(&r->mu);
  in->next = r->head;
  r->head = in;
  pthread_mutex_unlock(&r->mu);
  *out = in;
  int rc = in->stream.get_schema(&in->stream, &in->schema);
  if (rc != 0) {
    const char *m = in->stream.get_last_error ? in->stream.get_last_error(&in->stream) : NULL;
    in->schema.release = NULL;
    return wg_error_set(err, rc, "input stream: get_schema failed: %s", m ? m : "(no message)");
  }
  WG_RETURN_NOT_OK(wg_engine_arrow_types(c->conn, &in->schema, &in->types, &in->names, &in->n,
                                         err));
  if (duckdb_connect(c->engine->db, &in->conv) != DuckDBSuccess) {
    in->conv = NULL;
    return wg_error_set(err, EIO, "connecting for the input's conversion failed");
  }
  duckdb_error_data ed = duckdb_schema_from_arrow(in->conv, &in->schema, &in->converted);
  return wg_engine_take_error_data(&ed, err, "converting the input's schema");
}

/* ---------------------------------------------------------------------------------------------
 * The query over it */

struct over {
  struct wg_engine_conn *c;
  struct ArrowArrayStream query; /* the gathered result; released by over_finish */
  struct input *in;
  char *drop_sql; /* DROP VIEW of the view over it; NULL once dropped (or never made) */
  bool own_txn; /* BEGIN here: COMMIT or ROLLBACK in over_finish */
  bool ended;   /* over_finish ran */
  int status;   /* sticky once get_next failed */
  struct wg_error error;
};

/* The input's own failure, when it had one, says more than DuckDB's wrapping of it. */
static int input_failure(struct over *o, int rc, struct wg_error *err) {
  if (o->in == NULL || o->in->status == 0) return rc;
  return wg_error_set(err, o->in->status, "input stream: %s", o->in->error.message);
}

/* Ends the query, drops the view, ends the transaction: COMMIT when `commit` and all before it
 * went well, else ROLLBACK. 0, or the failure of the drop or the COMMIT (err says which). */
static int over_finish(struct over *o, bool commit, struct wg_error *err) {
  if (o->ended) return 0;
  o->ended = true;
  wg_stream_release(&o->query); /* DuckDB's scan of the input ends here */
  int rc = o->drop_sql != NULL ? wg__engine_exec(o->c, o->drop_sql, err) : 0;
  if (rc != 0) {
    commit = false;
    o->c->session_dirty = true; /* a view may stay: the connection is replaced on release */
  }
  if (o->own_txn) {
    if (commit) {
      rc = wg__engine_exec(o->c, "COMMIT", err);
      wg__engine_note_failure(o->c->engine, rc, true, err);
      if (rc != 0) wg_error_prefix(err, rc, "committing the statement over the input");
    }
    if (rc == 0 && commit) o->c->txn_maybe = false;
    else if (wg__engine_rollback(o->c) == 0) o->c->txn_maybe = false; /* else: release's */
  }
  /* a view left behind (a failed DROP, then a failed ROLLBACK) finds no input: it fails to bind */
  input_free(o->c->engine, o->in);
  o->in = NULL;
  free(o->drop_sql);
  o->drop_sql = NULL;
  return rc;
}

static int over_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct over *o = s->private_data;
  if (o->ended) return wg_error_set(&o->error, EINVAL, "the stream has ended");
  int rc = o->query.get_schema(&o->query, out);
  if (rc != 0) {
    const char *msg = o->query.get_last_error(&o->query);
    wg_error_set(&o->error, rc, "%s", msg ? msg : "get_schema failed");
  }
  return rc;
}

static int over_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct over *o = s->private_data;
  memset(out, 0, sizeof(*out));
  if (o->status != 0) return o->status;
  if (o->ended) return 0;
  int rc = o->query.get_next(&o->query, out);
  if (rc != 0) {
    const char *msg = o->query.get_last_error(&o->query);
    wg_error_set(&o->error, rc, "%s", msg ? msg : "query failed");
    o->status = input_failure(o, rc, &o->error);
    over_finish(o, false, NULL);
    return o->status;
  }
  if (out->release != NULL) return 0;
  o->status = over_finish(o, true, &o->error); /* the end: COMMIT, whose failure is the error */
  return o->status;
}

static const char *over_get_last_error(struct ArrowArrayStream *s) {
  struct over *o = s->private_data;
  return o->error.message[0] ? o->error.message : NULL;
}

static void over_release(struct ArrowArrayStream *s) {
  struct over *o = s->private_data;
  if (o != NULL) {
    over_finish(o, false, NULL);
    free(o);
  }
  s->private_data = NULL;
  s->release = NULL;
}

/* CREATE OR REPLACE TEMP VIEW name AS SELECT * FROM __wg_input(), and its DROP for later. */
static int make_view(struct over *o, const char *name, struct wg_error *err) {
  char *q = wg_engine_quote_ident(name);
  size_t n = q != NULL ? strlen(q) + 96 : 0;
  char *create = q != NULL ? malloc(n) : NULL;
  o->drop_sql = create != NULL ? malloc(n) : NULL;
  int rc = 0;
  if (o->drop_sql == NULL) {
    rc = wg_error_set(err, ENOMEM, "out of memory for the input's view");
  } else {
    snprintf(create, n, "CREATE OR REPLACE TEMP VIEW %s AS SELECT * FROM " INPUT_FUNCTION "()", q);
    snprintf(o->drop_sql, n, "DROP VIEW IF EXISTS temp.main.%s", q);
    rc = wg__engine_exec(o->c, create, err);
    if (rc != 0) {
      wg_error_prefix(err, rc, "making the view \"%s\" over the input", name);
      free(o->drop_sql);
      o->drop_sql = NULL;
    }
  }
  free(create);
  free(q);
  return rc;
}

int wg_engine_query_over(struct wg_engine_conn *c, const char *name,
                         struct ArrowArrayStream *input, const char *sql, int64_t target_rows,
                         int64_t target_bytes, struct ArrowArrayStream *out,
                         struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  int rc = 0;
  if (c == NULL || sql == NULL || name == NULL || name[0] == '\0')
    rc = wg_error_set(err, EINVAL, "query over a stream: NULL connection, sql or empty name");
  if (rc == 0) rc = wg__engine_conn_idle(c, err);
  struct over *o = rc == 0 ? calloc(1, sizeof(*o)) : NULL;
  if (rc == 0 && o == NULL)
    rc = wg_error_set(err, ENOMEM, "out of memory for a query over a stream");
  if (rc != 0) {
    wg_stream_release(input);
    return rc;
  }
  o->c = c;
  /* the transaction first: the view and the statement's prepare both belong in it (see
   * wg__client_sql.snapshot for why a statement is prepared in the transaction it runs in) */
  o->own_txn = !c->session_txn && !c->txn_maybe && wg__engine_begin(c, NULL) == 0;
  rc = input_create(c, input, &o->in, err);
  if (rc == 0) rc = make_view(o, name, err);
  if (rc == 0) {
    /* txn_maybe is set (or a session's transaction is open): query.c begins none of its own */
    rc = wg_engine_query_open_bounded(c, sql, target_rows, target_bytes, &o->query, err);
    if (rc != 0) rc = input_failure(o, rc, err); /* an INSERT reads all of input in the open */
  }
  if (rc != 0) {
    over_finish(o, false, NULL);
    free(o);
    return rc;
  }
  out->get_schema = over_get_schema;
  out->get_next = over_get_next;
  out->get_last_error = over_get_last_error;
  out->release = over_release;
  out->private_data = o;
  return 0;
}
