/* wigeon: DoGet of a live tail (tail.h, docs/tail.md). The handler finds the table's columns,
 * checks the columns and WHERE the client asked for by preparing the snapshot's query, starts the
 * tail at one commit point (wg_engine_tail_begin: the snapshot holds every put up to it, the hub
 * delivers every put after it), sends the schema, the snapshot and an empty batch that marks the
 * start, then parks the call: from there the hub sends, and the worker and the DuckDB connection
 * go back.
 *
 *   ticket -> hub started -> connection -> columns (duckdb_columns) -> snapshot query prepared
 *   (schema) -> subscriber -> tail_begin (at_point registers it) -> schema, snapshot batches,
 *   start marker -> connection released -> parked */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "arrow/array.h"
#include "common/sql.h"
#include "common/text.h"
#include "server/tail.h"

/* What the handler builds from the ticket and the table. */
struct plan {
  char *key, *table_sql, *alias, *select_list, *snapshot_sql;
  char **names, **types;
  int n;
  bool all_columns;
  struct ArrowSchema schema;
};

static void plan_reset(struct plan *p) {
  free(p->key);
  free(p->table_sql);
  free(p->alias);
  free(p->select_list);
  free(p->snapshot_sql);
  for (int i = 0; i < p->n; i++) {
    free(p->names[i]);
    free(p->types[i]);
  }
  free(p->names);
  free(p->types);
  if (p->schema.release != NULL) wg_schema_release(&p->schema);
  memset(p, 0, sizeof(*p));
}

/* The table's columns and DuckDB types, matched by name case-insensitively as DuckDB does. */
static int table_columns(struct wg_engine_conn *conn, const struct wg__tail_request *t,
                         struct plan *p, struct wg_error *err) {
  char *db = NULL;
  WG_RETURN_NOT_OK(wg_engine_database_name(conn, &db, err));
  const char *params[3] = {db, NULL, NULL};
  struct wg_engine_rows rows = {0};
  int rc = wg_engine_meta(conn, WG_ENGINE_META_COLUMNS, params, 3, &rows, err);
  const char *sch = t->schema_name != NULL ? t->schema_name : "main";
  if (rc == 0) {
    p->names = calloc((size_t)(rows.n_rows > 0 ? rows.n_rows : 1), sizeof(char *));
    p->types = calloc((size_t)(rows.n_rows > 0 ? rows.n_rows : 1), sizeof(char *));
    if (p->names == NULL || p->types == NULL) rc = wg_error_set(err, ENOMEM, "out of memory");
  }
  for (int64_t r = 0; rc == 0 && r < rows.n_rows; r++) {
    const char *s_name = wg_engine_rows_at(&rows, r, 6), *t_name = wg_engine_rows_at(&rows, r, 7);
    if (s_name == NULL || t_name == NULL || strcasecmp(s_name, sch) != 0 ||
        strcasecmp(t_name, t->table) != 0)
      continue;
    p->names[p->n] = strdup(wg_engine_rows_at(&rows, r, 0));
    p->types[p->n] = strdup(wg_engine_rows_at(&rows, r, 1));
    if (p->names[p->n] == NULL || p->types[p->n] == NULL) {
      free(p->names[p->n]);
      free(p->types[p->n]);
      rc = wg_error_set(err, ENOMEM, "out of memory");
      break;
    }
    p->n++;
  }
  if (rc == 0 && p->n == 0) {
    char a[WG_TEXT_SHOWN], b[WG_TEXT_SHOWN];
    rc = wg_error_set(err, ENOENT, "live tail: no table %s.%s", wg_text_shown(sch, a, sizeof(a)),
                      wg_text_shown(t->table, b, sizeof(b)));
  }
  wg_engine_rows_reset(&rows);
  free(db);
  return rc;
}

/* The table's name, the select list and the snapshot's query. */
static int build_sql(const struct wg__tail_request *t, struct plan *p, struct wg_error *err) {
  struct wg_buf b;
  wg_buf_init(&b);
  int rc = wg_sql_append_ident(&b, t->schema_name != NULL ? t->schema_name : "main");
  if (rc == 0) rc = wg_buf_append(&b, ".", 1);
  if (rc == 0) rc = wg_sql_append_ident(&b, t->table);
  if (rc == 0) rc = wg_buf_append(&b, "", 1);
  p->table_sql = rc == 0 ? (char *)wg_buf_detach(&b) : NULL;
  wg_buf_reset(&b);
  if (rc == 0) rc = wg_sql_append_ident(&b, t->table);
  if (rc == 0) rc = wg_buf_append(&b, "", 1);
  p->alias = rc == 0 ? (char *)wg_buf_detach(&b) : NULL;
  wg_buf_reset(&b);
  p->all_columns = t->n_columns == 0;
  for (int i = 0; rc == 0 && i < t->n_columns; i++) {
    int c = 0;
    while (c < p->n && strcasecmp(p->names[c], t->columns[i]) != 0)
      c++;
    if (c == p->n) {
      char a[WG_TEXT_SHOWN];
      wg_buf_reset(&b);
      return wg_error_set(err, EINVAL, "live tail: no column %s in table %s",
                          wg_text_shown(t->columns[i], a, sizeof(a)), p->table_sql);
    }
    if (i > 0) rc = wg_buf_append(&b, ", ", 2);
    if (rc == 0) rc = wg_sql_append_ident(&b, p->names[c]);
  }
  if (rc == 0 && t->n_columns == 0) rc = wg_buf_append(&b, "*", 1);
  if (rc == 0) rc = wg_buf_append(&b, "", 1);
  p->select_list = rc == 0 ? (char *)wg_buf_detach(&b) : NULL;
  wg_buf_reset(&b);
  if (rc == 0) {
    const char *w = t->where;
    size_t n = strlen(p->select_list) + strlen(p->table_sql) + (w ? strlen(w) : 0) + 64;
    p->snapshot_sql = malloc(n);
    if (p->snapshot_sql != NULL)
      snprintf(p->snapshot_sql, n, "SELECT %s FROM %s%s%s%s", p->select_list, p->table_sql,
               w ? " WHERE (" : "", w ? w : "", w ? ")" : "");
  }
  p->key = wg__tail_table_key(t->schema_name, t->table);
  if (rc != 0 || p->table_sql == NULL || p->alias == NULL || p->select_list == NULL || p->snapshot_sql == NULL ||
      p->key == NULL)
    return wg_error_set(err, ENOMEM, "out of memory");
  return 0;
}

/* The stream's schema: the snapshot query's (prepared, not run: a bad WHERE or column fails
 * here), with the tail's schema metadata. */
static int stream_schema(struct wg_engine_conn *conn, const struct wg__tail_request *t,
                         struct plan *p, struct wg_error *err) {
  struct ArrowSchema q;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  WG_RETURN_NOT_OK(wg_engine_query_schema(conn, p->snapshot_sql, &q, err));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int64_t ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  if (ms > WG_TAIL_PLAN_MS) {
    /* DuckDB folds constants while it plans, and no interrupt stops that: a WHERE such as
     * levenshtein(repeat('a', 40000), ...) > 0 costs seconds there. The snapshot is planned again
     * under the engine's commit lock (every put waits) and the hub plans the WHERE each round. */
    wg_schema_release(&q);
    return wg_error_set(err, EBUSY,
                        "live tail: the WHERE took %lld ms to plan, more than %d ms: it is "
                        "planned again while commits wait and on every round of puts; simplify "
                        "it (constant expressions are computed while planning)",
                        (long long)ms, WG_TAIL_PLAN_MS);
  }
  int rc = wg_schema_deep_copy(&q, &p->schema, err);
  wg_schema_release(&q);
  if (rc != 0) return rc;
  struct wg_buf m;
  wg_buf_init(&m);
  char name[512];
  snprintf(name, sizeof(name), "%s.%s", t->schema_name != NULL ? t->schema_name : "main",
           t->table);
  rc = wg_metadata_append(&m, WG_TAIL_META_TABLE, (int32_t)strlen(WG_TAIL_META_TABLE), name,
                          (int32_t)strlen(name));
  if (rc == 0)
    rc = wg_metadata_append(&m, WG_TAIL_META_DELIVERS, (int32_t)strlen(WG_TAIL_META_DELIVERS),
                            WG_TAIL_DELIVERS, (int32_t)strlen(WG_TAIL_DELIVERS));
  if (rc == 0) rc = wg_schema_set_metadata(&p->schema, (const char *)m.data);
  wg_buf_reset(&m);
  return rc == 0 ? 0 : wg_error_set(err, ENOMEM, "out of memory");
}

struct point {
  struct wg__tail_sub *sub;
  const struct wg__tail_request *t;
  uint64_t base;
};

/* wg_engine_tail_begin's at_point, under the engine's commit lock. */
static void at_point(void *ctx, uint64_t sequence) {
  struct point *pt = ctx;
  wg__tail_sub_register(pt->sub, sequence, pt->t->from == WG__TAIL_FROM_SEQUENCE,
                        pt->t->from_sequence, pt->base);
}

/* Sends messages (each taken) with the blocking sends, before the call is parked. */
static int send_all(struct wg_rpc_call *call, grpc_byte_buffer **bbs, int64_t n,
                    struct wg_error *err) {
  int rc = 0;
  for (int64_t i = 0; i < n; i++) {
    if (rc != 0) {
      grpc_byte_buffer_destroy(bbs[i]);
      continue;
    }
    rc = wg_rpc_call_send(call, bbs[i]);
    if (rc != 0) rc = wg_rpc_call_error(call, rc, "live tail", err);
  }
  return rc;
}

static int send_batch(struct wg_rpc_call *call, struct wg__tail_sub *sub, struct ArrowArray *a,
                      bool more, struct wg_error *err) {
  grpc_byte_buffer **bbs = NULL;
  int64_t n = 0, cap = 0;
  int rc = wg__tail_sub_encode(sub, a, wg__tail_sub_cursor(sub), more, &bbs, &n, &cap, err);
  int src = send_all(call, bbs, n, err);
  free(bbs);
  return rc != 0 ? rc : src;
}

/* The schema, the snapshot's batches (if any) and the empty batch that marks the start. */
static int send_start(struct wg_server *s, struct wg_rpc_call *call, struct wg__tail_sub *sub,
                      struct ArrowArrayStream *snap, struct wg_error *err) {
  grpc_byte_buffer *bb = NULL;
  WG_RETURN_NOT_OK(wg__tail_sub_encode_schema(sub, &bb, err));
  int rc = send_all(call, &bb, 1, err);
  while (rc == 0 && snap->release != NULL) {
    struct ArrowArray a;
    rc = snap->get_next(snap, &a);
    if (rc != 0) {
      const char *m = snap->get_last_error(snap);
      int code = wg_engine_stream_status(snap);
      rc = wg_error_set(err, code ? code : rc, "%s", m ? m : "the snapshot failed");
      break;
    }
    if (a.release == NULL) break;
    atomic_fetch_add_explicit(&s->stats.rows_out, a.length, memory_order_relaxed);
    rc = send_batch(call, sub, &a, true, err);
  }
  struct ArrowArray empty;
  if (rc == 0) rc = wg__tail_sub_empty_batch(sub, &empty, err);
  if (rc == 0) rc = send_batch(call, sub, &empty, false, err);
  return rc;
}

void wg__server_tail(struct wg_server *s, struct wg_rpc_call *call, struct wg__request *req) {
  const struct wg__tail_request *t = &req->tail;
  struct wg_error err = {""};
  struct plan p = {0};
  struct wg_engine_conn *conn = NULL;
  struct wg__tail_sub *sub = NULL;
  struct ArrowArrayStream snap = {0};
  atomic_fetch_add_explicit(&s->stats.gets, 1, memory_order_relaxed);
  int rc = wg__tail_hub_start(s->tail, &err);
  if (rc == 0) rc = wg_engine_acquire(s->engine, &conn, &err);
  if (rc == 0) rc = table_columns(conn, t, &p, &err);
  if (rc == 0) rc = build_sql(t, &p, &err);
  if (rc == 0) rc = stream_schema(conn, t, &p, &err);
  if (rc == 0)
    rc = wg__tail_sub_create(s->tail, call, p.key, p.alias, p.select_list, t->where,
                             p.all_columns, p.names, p.types, p.n, &p.schema, &sub, &err);
  if (rc == 0) {
    wg_rpc_call_set_cancel_hook(call, wg__server_interrupt_hook, conn);
    struct point pt = {sub, t, wg_engine_sequence_base(s->engine)};
    bool snapshot = t->from == WG__TAIL_FROM_BEGINNING;
    struct wg_engine_tail_start ts = {
        .schema_name = t->schema_name,
        .table = t->table,
        .conn = snapshot ? conn : NULL,
        .snapshot_sql = snapshot ? p.snapshot_sql : NULL,
        .target_rows = s->options.batch_rows,
        .target_bytes = s->options.batch_bytes,
        .wait_ms = s->options.acquire_timeout_ms,
        .at_point = at_point,
        .ctx = &pt,
    };
    rc = wg_engine_tail_begin(s->engine, &ts, snapshot ? &snap : NULL, &err);
    if (rc == 0) rc = wg__tail_sub_registered(sub, &err);
    if (rc == 0) rc = send_start(s, call, sub, &snap, &err);
    if (snap.release != NULL) wg_stream_release(&snap);
    wg_rpc_call_set_cancel_hook(call, NULL, NULL);
  }
  if (conn != NULL) wg_engine_release(s->engine, conn);
  plan_reset(&p);
  if (rc == 0) rc = wg__tail_sub_go_live(sub, &err); /* the call is the hub's from here */
  else wg__tail_sub_abandon(sub);
  if (rc != 0) {
    if (wg_rpc_call_cancelled(call)) rc = wg_rpc_call_error(call, ECANCELED, "live tail", &err);
    wg__server_finish(s, call, rc, &err);
  }
}
