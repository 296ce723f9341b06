/* wigeon: Flight SQL prepared statements (see fsql.h). CreatePreparedStatement prepares the SQL
 * once to check it and learn its schemas, and keeps in a table (struct wg__fsql_prepared) the
 * text, the schemas, the owner (wg__fsql_owner), the transaction id, the last use and the bound
 * parameters under a handle of 16 random bytes; no DuckDB connection is held between calls: each
 * execution prepares the text again on the connection of its call (the engine's params.c binds
 * the parameter rows). A handle unused for WG_FSQL_PREPARED_IDLE_MS is forgotten; one client holds
 * at most WG_FSQL_PREPARED_PER_CLIENT.
 *
 *   Create -> [DoPut CommandPreparedStatementQuery: keep parameter rows]* ->
 *   GetFlightInfo(query) -> DoGet (once per row) | GetFlightInfo(DDL/DML: runs there) |
 *   DoPut CommandPreparedStatementUpdate (once per row, one transaction) -> Close
 *
 * A statement that is not a query runs in GetFlightInfo (drivers "execute" through it and may
 * never call DoGet); its ticket is then a finished one: a CommandPreparedStatementQuery whose
 * handle is WG_DONE_TAG and the rows changed, which DoGet answers with one "Count" row. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "server/roles.h"
#include "server/fsql.h"

typedef Arrow__Flight__Protocol__Sql__CommandPreparedStatementQuery query_cmd;
typedef Arrow__Flight__Protocol__Sql__CommandPreparedStatementUpdate update_cmd;

#define WG_FSQL_PREPARED_IDLE_MS ((int64_t)10 * 60 * 1000) /* docs/server.md */
#define WG_FSQL_PREPARED_PER_CLIENT 256
#define WG_FSQL_PREPARED_TOTAL 16384
#define WG_FSQL_PREPARED_PARAM_BYTES ((int64_t)64 << 20) /* parameter rows of one call */
#define WG_DONE_TAG 0x00
enum { HANDLE_LEN = 16, DONE_LEN = 9, OWNER_LEN = 128 };

struct entry {
  uint8_t handle[HANDLE_LEN];
  char owner[OWNER_LEN];
  char *sql;
  bool has_txn;
  struct wg_buf txn;
  enum wg_engine_sql_kind kind;
  struct wg_buf dataset; /* the IPC schema of the result */
  int64_t last_ms;
  struct wg_engine_params *params; /* bound rows (a reference), NULL: none */
};

struct wg__fsql_prepared {
  pthread_mutex_t mu;
  struct entry *v;
  int n, cap;
  int64_t idle_ms;
};

/* What a call takes of an entry: copies, so that a Close meanwhile changes nothing for it. */
struct use {
  char *sql;
  bool has_txn;
  struct wg_buf txn;
  enum wg_engine_sql_kind kind;
  struct wg_buf dataset;
  struct wg_engine_params *params;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void entry_free(struct entry *e) {
  free(e->sql);
  wg_buf_reset(&e->txn);
  wg_buf_reset(&e->dataset);
  wg_engine_params_unref(e->params);
}

static void use_reset(struct use *u) {
  free(u->sql);
  wg_buf_reset(&u->txn);
  wg_buf_reset(&u->dataset);
  wg_engine_params_unref(u->params);
  memset(u, 0, sizeof(*u));
}

int wg__fsql_prepared_init(struct wg_server *s, struct wg_error *err) {
  struct wg__fsql_prepared *p = calloc(1, sizeof(*p));
  if (p == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  pthread_mutex_init(&p->mu, NULL);
  p->idle_ms = WG_FSQL_PREPARED_IDLE_MS;
  s->fsql->prepared = p;
  return 0;
}

void wg__fsql_prepared_fini(struct wg_server *s) {
  struct wg__fsql_prepared *p = s->fsql != NULL ? s->fsql->prepared : NULL;
  if (p == NULL) return;
  for (int i = 0; i < p->n; i++)
    entry_free(&p->v[i]);
  free(p->v);
  pthread_mutex_destroy(&p->mu);
  free(p);
  s->fsql->prepared = NULL;
}

void wg__fsql_prepared_set_idle_ms(struct wg_server *s, int64_t ms) {
  struct wg__fsql_prepared *p = s->fsql->prepared;
  pthread_mutex_lock(&p->mu);
  p->idle_ms = ms > 0 ? ms : WG_FSQL_PREPARED_IDLE_MS;
  pthread_mutex_unlock(&p->mu);
}

/* Forgets the entries idle for too long (p->mu held). */
static void sweep(struct wg__fsql_prepared *p, int64_t now) {
  for (int i = 0; i < p->n;) {
    if (now - p->v[i].last_ms > p->idle_ms) {
      entry_free(&p->v[i]);
      p->v[i] = p->v[--p->n];
    } else {
      i++;
    }
  }
}

/* The entry of handle for owner (p->mu held), or NULL. */
static struct entry *find(struct wg__fsql_prepared *p, const ProtobufCBinaryData *h,
                          const char *owner) {
  if (h->len != HANDLE_LEN) return NULL;
  for (int i = 0; i < p->n; i++) {
    if (memcmp(p->v[i].handle, h->data, HANDLE_LEN) == 0)
      return strcmp(p->v[i].owner, owner) == 0 ? &p->v[i] : NULL; /* another's: not found */
  }
  return NULL;
}

static int not_found(struct wg_error *err) {
  return wg_error_set(err, ENOENT, "unknown prepared statement handle (closed, unused for %lld "
                                   "minutes, or never made by this client)",
                      (long long)(WG_FSQL_PREPARED_IDLE_MS / 60000));
}

static int copy_buf(struct wg_buf *dst, const uint8_t *data, int64_t n) {
  wg_buf_init(dst);
  return n > 0 ? wg_buf_append(dst, data, n) : 0;
}

/* Takes what a call needs of the handle's entry into *u (ENOENT for an unknown handle or one of
 * another client), marking it used. */
static int take(struct wg_server *s, const struct wg_rpc_call *call, const ProtobufCBinaryData *h,
                struct use *u, struct wg_error *err) {
  memset(u, 0, sizeof(*u));
  struct wg__fsql_prepared *p = s->fsql->prepared;
  char owner[OWNER_LEN];
  wg__fsql_owner(call, owner, sizeof(owner));
  int rc = 0;
  pthread_mutex_lock(&p->mu);
  int64_t now = now_ms();
  sweep(p, now);
  struct entry *e = find(p, h, owner);
  if (e == NULL) {
    rc = not_found(err);
  } else {
    e->last_ms = now;
    u->sql = strdup(e->sql);
    u->has_txn = e->has_txn;
    u->kind = e->kind;
    u->params = wg_engine_params_ref(e->params);
    if (u->sql == NULL || copy_buf(&u->txn, e->txn.data, e->txn.size) != 0 ||
        copy_buf(&u->dataset, e->dataset.data, e->dataset.size) != 0)
      rc = wg_error_set(err, ENOMEM, "out of memory");
  }
  pthread_mutex_unlock(&p->mu);
  if (rc != 0) use_reset(u);
  return rc;
}

static ProtobufCBinaryData txn_of(const struct use *u) {
  ProtobufCBinaryData b = {(size_t)u->txn.size, u->txn.data};
  return b;
}

/* SELECT N::BIGINT AS "Count" (malloc'ed; NULL: no memory), as fsql_statement.c answers. */
static char *count_sql(int64_t rows) {
  char *sql = malloc(64);
  if (sql != NULL) snprintf(sql, 64, "SELECT %lld::BIGINT AS \"Count\"", (long long)rows);
  return sql;
}

/* ---- CreatePreparedStatement, ClosePreparedStatement ----------------------------------------- */

/* Adds the entry (taking its contents) unless its owner holds the limit already. */
static int insert(struct wg_server *s, struct entry *e, struct wg_error *err) {
  struct wg__fsql_prepared *p = s->fsql->prepared;
  if (getrandom(e->handle, HANDLE_LEN, 0) != HANDLE_LEN)
    return wg_error_set(err, EIO, "no randomness for a prepared statement handle");
  int rc = 0;
  pthread_mutex_lock(&p->mu);
  int64_t now = now_ms();
  sweep(p, now);
  int mine = 0;
  for (int i = 0; i < p->n; i++)
    mine += strcmp(p->v[i].owner, e->owner) == 0;
  if (mine >= WG_FSQL_PREPARED_PER_CLIENT) {
    rc = wg_error_set(err, EBUSY, "this client holds %d prepared statements, the limit: close "
                                  "some (ClosePreparedStatement) first", mine);
  } else if (p->n >= WG_FSQL_PREPARED_TOTAL) {
    rc = wg_error_set(err, EBUSY, "the server holds %d prepared statements, its limit",
                      p->n);
  } else if (p->n == p->cap) {
    int cap = p->cap ? p->cap * 2 : 16;
    struct entry *v = realloc(p->v, (size_t)cap * sizeof(*v));
    if (v == NULL)
      rc = wg_error_set(err, ENOMEM, "out of memory");
    else {
      p->v = v;
      p->cap = cap;
    }
  }
  if (rc == 0) {
    e->last_ms = now;
    p->v[p->n++] = *e;
  }
  pthread_mutex_unlock(&p->mu);
  return rc;
}

/* Prepares the request's SQL on the call's connection: kind and schemas into e. */
static int describe(struct wg_server *s, struct wg_rpc_call *call, struct entry *e,
                    struct wg_buf *params, struct wg_error *err) {
  struct wg__fsql_conn c = {0};
  ProtobufCBinaryData txn = {(size_t)e->txn.size, e->txn.data};
  WG_RETURN_NOT_OK(wg__fsql_conn_acquire(s, call, e->has_txn, txn, &c, err));
  struct ArrowSchema dataset = {0}, ps = {0};
  int rc = wg_engine_prepare_describe(c.conn, e->sql, &dataset, &ps, &e->kind, err);
  wg__fsql_conn_release(s, &c);
  if (rc == 0 && dataset.release != NULL) /* none: types that only the bound values tell */
    rc = wg_flight_schema_bytes(&dataset, &e->dataset, err);
  if (rc == 0) rc = wg_flight_schema_bytes(&ps, params, err);
  wg_schema_release(&dataset);
  wg_schema_release(&ps);
  return rc;
}

int wg__fsql_action_create_prepared(struct wg_server *s, struct wg_rpc_call *call,
                                    const ProtobufCBinaryData *body, struct wg_error *err) {
  ProtobufCMessage *m = NULL;
  WG_RETURN_NOT_OK(wg__fsql_action_unpack(
      body, &arrow__flight__protocol__sql__action_create_prepared_statement_request__descriptor,
      true, "CreatePreparedStatement", &m, err));
  const Arrow__Flight__Protocol__Sql__ActionCreatePreparedStatementRequest *rq = (const void *)m;
  struct entry e = {0};
  wg_buf_init(&e.txn);
  wg_buf_init(&e.dataset);
  struct wg_buf params;
  wg_buf_init(&params);
  wg__fsql_owner(call, e.owner, sizeof(e.owner));
  const char *q = rq->query != NULL ? rq->query : "";
  int rc = wg__request_text(s, (const uint8_t *)q, strlen(q), WG__TEXT_SQL,
                            "ActionCreatePreparedStatementRequest.query", &e.sql, err);
  e.has_txn = rq->has_transaction_id && rq->transaction_id.len > 0;
  if (rc == 0 && e.has_txn &&
      copy_buf(&e.txn, rq->transaction_id.data, (int64_t)rq->transaction_id.len) != 0)
    rc = wg_error_set(err, ENOMEM, "out of memory");
  protobuf_c_message_free_unpacked(m, NULL);
  if (rc == 0) rc = describe(s, call, &e, &params, err);
  Arrow__Flight__Protocol__Sql__ActionCreatePreparedStatementResult r =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_CREATE_PREPARED_STATEMENT_RESULT__INIT;
  uint8_t handle[HANDLE_LEN];
  struct wg_buf dataset;
  wg_buf_init(&dataset);
  if (rc == 0 && copy_buf(&dataset, e.dataset.data, e.dataset.size) != 0)
    rc = wg_error_set(err, ENOMEM, "out of memory");
  bool is_update = e.kind == WG_ENGINE_SQL_CHANGE;
  if (rc == 0) rc = insert(s, &e, err); /* e's contents are the table's from here on */
  if (rc != 0) {
    entry_free(&e);
  } else {
    memcpy(handle, e.handle, HANDLE_LEN);
    r.has_prepared_statement_handle = 1;
    r.prepared_statement_handle = (ProtobufCBinaryData){HANDLE_LEN, handle};
    r.has_dataset_schema = dataset.size > 0; /* never present and empty (drivers.md) */
    r.dataset_schema = (ProtobufCBinaryData){(size_t)dataset.size, dataset.data};
    r.has_parameter_schema = 1;
    r.parameter_schema = (ProtobufCBinaryData){(size_t)params.size, params.data};
    r.has_is_update = 1;
    r.is_update = is_update;
    rc = wg__fsql_action_result(call, &r.base, true, err);
  }
  wg_buf_reset(&dataset);
  wg_buf_reset(&params);
  return rc;
}

int wg__fsql_action_close_prepared(struct wg_server *s, struct wg_rpc_call *call,
                                   const ProtobufCBinaryData *body, struct wg_error *err) {
  ProtobufCMessage *m = NULL;
  WG_RETURN_NOT_OK(wg__fsql_action_unpack(
      body, &arrow__flight__protocol__sql__action_close_prepared_statement_request__descriptor,
      true, "ClosePreparedStatement", &m, err));
  const Arrow__Flight__Protocol__Sql__ActionClosePreparedStatementRequest *rq = (const void *)m;
  struct wg__fsql_prepared *p = s->fsql->prepared;
  char owner[OWNER_LEN];
  wg__fsql_owner(call, owner, sizeof(owner));
  struct entry gone = {0};
  bool found = false;
  pthread_mutex_lock(&p->mu);
  sweep(p, now_ms());
  struct entry *e = find(p, &rq->prepared_statement_handle, owner);
  if (e != NULL) {
    gone = *e;
    *e = p->v[--p->n];
    found = true;
  }
  pthread_mutex_unlock(&p->mu);
  protobuf_c_message_free_unpacked(m, NULL);
  if (!found) return not_found(err);
  entry_free(&gone);
  return 0;
}

/* ---- GetFlightInfo, DoGet -------------------------------------------------------------------- */

static bool is_done(const ProtobufCBinaryData *h) {
  return h->len == DONE_LEN && h->data[0] == WG_DONE_TAG;
}

/* A statement that is not a query, run at GetFlightInfo: its count and the "Count" schema. */
static int info_change(struct wg_server *s, struct wg_rpc_call *call, const struct use *u,
                       struct wg__fsql_info *out, struct wg_error *err) {
  struct wg__fsql_conn c = {0};
  WG_RETURN_NOT_OK(wg__fsql_conn_acquire(s, call, u->has_txn, txn_of(u), &c, err));
  int64_t changed = 0;
  wg__limits_query(s, call); /* the query timeout runs from here */
  wg_rpc_call_set_cancel_hook(call, wg__server_interrupt_hook, c.conn);
  int rc = wg_engine_execute_params(c.conn, u->sql, u->params, c.txn != NULL, &changed, err);
  wg_rpc_call_set_cancel_hook(call, NULL, NULL);
  char *sql = rc == 0 ? count_sql(changed) : NULL;
  if (rc == 0 && sql == NULL) rc = wg_error_set(err, ENOMEM, "out of memory");
  struct ArrowSchema schema = {0};
  if (rc == 0) rc = wg_engine_query_schema(c.conn, sql, &schema, err);
  wg__fsql_conn_release(s, &c);
  free(sql);
  if (rc == 0) rc = wg_flight_schema_bytes(&schema, &out->schema, err);
  wg_schema_release(&schema);
  uint8_t done[DONE_LEN] = {WG_DONE_TAG};
  for (int i = 0; i < 8; i++)
    done[1 + i] = (uint8_t)((uint64_t)changed >> (8 * i));
  if (rc == 0) {
    query_cmd t = ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_PREPARED_STATEMENT_QUERY__INIT;
    t.has_prepared_statement_handle = 1;
    t.prepared_statement_handle = (ProtobufCBinaryData){DONE_LEN, done};
    rc = wg__fsql_pack_any(&t.base, &out->ticket, err);
    out->rows = changed; /* what ADBC reports as cursor.rowcount */
  }
  return rc;
}

int wg__fsql_prepared_info(struct wg_server *s, struct wg_rpc_call *call,
                           const ProtobufCMessage *cmd, struct wg__fsql_info *out,
                           struct wg_error *err) {
  const query_cmd *q = (const query_cmd *)cmd;
  struct use u;
  WG_RETURN_NOT_OK(take(s, call, &q->prepared_statement_handle, &u, err));
  int rc = 0;
  if (u.kind == WG_ENGINE_SQL_CHANGE && !out->describe_only) {
    rc = info_change(s, call, &u, out, err);
  } else {
    if (copy_buf(&out->schema, u.dataset.data, u.dataset.size) != 0)
      rc = wg_error_set(err, ENOMEM, "out of memory");
    if (rc == 0) rc = wg__fsql_pack_any(cmd, &out->ticket, err);
  }
  use_reset(&u);
  return rc;
}

int wg__fsql_prepared_get(struct wg_server *s, struct wg_rpc_call *call,
                          const ProtobufCMessage *cmd, struct wg__fsql_result *out,
                          struct wg_error *err) {
  const query_cmd *q = (const query_cmd *)cmd;
  const ProtobufCBinaryData *h = &q->prepared_statement_handle;
  if (is_done(h)) { /* a finished statement: its count, on a connection of the pool */
    uint64_t rows = 0;
    for (int i = 0; i < 8; i++)
      rows |= (uint64_t)h->data[1 + i] << (8 * i);
    if ((out->sql = count_sql((int64_t)rows)) == NULL)
      return wg_error_set(err, ENOMEM, "out of memory");
    return wg__fsql_conn_acquire(s, call, false, *h, &out->conn, err);
  }
  struct use u;
  WG_RETURN_NOT_OK(take(s, call, h, &u, err));
  int rc = wg__fsql_conn_acquire(s, call, u.has_txn, txn_of(&u), &out->conn, err);
  if (rc == 0 && wg_engine_params_rows(u.params) == 0) {
    out->sql = u.sql; /* runs as a plain DoGet runs its ticket */
    u.sql = NULL;
  } else if (rc == 0) {
    wg__limits_query(s, call); /* the query timeout runs from here */
    wg_rpc_call_set_cancel_hook(call, wg__server_interrupt_hook, out->conn.conn);
    rc = wg_engine_query_open_params(out->conn.conn, u.sql, u.params, s->options.batch_rows,
                                     s->options.batch_bytes, &out->stream, err);
    wg_rpc_call_set_cancel_hook(call, NULL, NULL);
  }
  use_reset(&u);
  return rc;
}

/* ---- DoPut ----------------------------------------------------------------------------------- */

/* The client's parameter rows (*out NULL when it sent no schema, or no rows), at most
 * WG_FSQL_PREPARED_PARAM_BYTES. *no_rows (may be NULL): it sent a schema of one parameter or more
 * and no row (executemany of an empty list: the statement runs zero times), unlike a schema of
 * no fields, which binds nothing (the statement runs once). */
static int read_params(struct wg__put_stream *in, struct wg_engine_params **out, bool *no_rows,
                       struct wg_error *err) {
  *out = NULL;
  if (no_rows != NULL) *no_rows = false;
  struct ArrowSchema schema = {0};
  int rc = wg__put_stream_schema(in, &schema, err);
  if (rc == ENOENT) return 0; /* only a descriptor: nothing bound */
  struct wg_engine_params *p = NULL;
  bool fields = rc == 0 && schema.n_children > 0;
  if (rc == 0) rc = wg_engine_params_create(&schema, &p, err);
  wg_schema_release(&schema);
  while (rc == 0) {
    struct ArrowArray b;
    rc = wg__put_stream_next(in, &b, err);
    if (rc != 0 || b.release == NULL) break;
    rc = wg_engine_params_add(p, &b, err);
    if (rc == 0 && wg_engine_params_bytes(p) > WG_FSQL_PREPARED_PARAM_BYTES)
      rc = wg_error_set(err, EMSGSIZE, "parameter rows of more than %lld bytes (the limit of one "
                                       "call): send fewer rows per call",
                        (long long)WG_FSQL_PREPARED_PARAM_BYTES);
  }
  if (rc == 0 && wg_engine_params_rows(p) == 0) { /* e.g. an empty schema and a 0-row batch */
    if (no_rows != NULL) *no_rows = fields;
    wg_engine_params_unref(p);
    p = NULL;
  }
  if (rc != 0) {
    wg_engine_params_unref(p);
    p = NULL;
  }
  *out = p;
  return rc;
}

int wg__fsql_prepared_bind(struct wg_server *s, struct wg_rpc_call *call,
                           const ProtobufCMessage *cmd, struct wg__put_stream *in,
                           struct wg_error *err) {
  const query_cmd *q = (const query_cmd *)cmd;
  struct use u;
  WG_RETURN_NOT_OK(take(s, call, &q->prepared_statement_handle, &u, err)); /* before reading */
  use_reset(&u);
  struct wg_engine_params *params = NULL;
  WG_RETURN_NOT_OK(read_params(in, &params, NULL, err));
  struct wg__fsql_prepared *p = s->fsql->prepared;
  char owner[OWNER_LEN];
  wg__fsql_owner(call, owner, sizeof(owner));
  pthread_mutex_lock(&p->mu);
  struct entry *e = find(p, &q->prepared_statement_handle, owner);
  struct wg_engine_params *old = NULL;
  if (e != NULL) {
    old = e->params;
    e->params = params;
    e->last_ms = now_ms();
  } else {
    old = params; /* closed meanwhile */
  }
  pthread_mutex_unlock(&p->mu);
  wg_engine_params_unref(old);
  if (e == NULL) return not_found(err);
  Arrow__Flight__Protocol__Sql__DoPutPreparedStatementResult r =
      ARROW__FLIGHT__PROTOCOL__SQL__DO_PUT_PREPARED_STATEMENT_RESULT__INIT;
  r.has_prepared_statement_handle = 1;
  r.prepared_statement_handle = q->prepared_statement_handle;
  return wg__fsql_put_result(call, &r.base, err);
}

int wg__fsql_prepared_update(struct wg_server *s, struct wg_rpc_call *call,
                             const ProtobufCMessage *cmd, struct wg__put_stream *in,
                             struct wg_error *err) {
  const update_cmd *q = (const update_cmd *)cmd;
  struct use u;
  WG_RETURN_NOT_OK(take(s, call, &q->prepared_statement_handle, &u, err));
  struct wg_engine_params *params = NULL;
  bool no_rows = false; /* parameters declared, no row: nothing to run */
  int rc = read_params(in, &params, &no_rows, err);
  if (rc == 0 && params == NULL && !no_rows)
    params = wg_engine_params_ref(u.params); /* the bound ones */
  struct wg__fsql_conn c = {0};
  if (rc == 0 && !no_rows) rc = wg__fsql_conn_acquire(s, call, u.has_txn, txn_of(&u), &c, err);
  int64_t rows = 0;
  if (rc == 0 && !no_rows) {
    wg__limits_query(s, call); /* the query timeout runs from here */
    wg_rpc_call_set_cancel_hook(call, wg__server_interrupt_hook, c.conn);
    rc = wg_engine_execute_params(c.conn, u.sql, params, c.txn != NULL, &rows, err);
    wg_rpc_call_set_cancel_hook(call, NULL, NULL);
  }
  wg__fsql_conn_release(s, &c);
  wg_engine_params_unref(params);
  use_reset(&u);
  if (rc == 0) {
    Arrow__Flight__Protocol__Sql__DoPutUpdateResult r =
        ARROW__FLIGHT__PROTOCOL__SQL__DO_PUT_UPDATE_RESULT__INIT;
    r.has_record_count = 1;
    r.record_count = rows;
    rc = wg__fsql_put_result(call, &r.base, err);
  }
  return rc;
}
