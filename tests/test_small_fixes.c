/* wigeon: smaller behaviours end to end against a real in-process server on 127.0.0.1 (real gRPC,
 * real DuckDB): DoGet batches bounded by bytes as well as rows, Arrow null-typed columns refused
 * on put with a clear message, ROLLBACK without a transaction as FAILED_PRECONDITION, parse errors
 * that show their LINE context once, and ListFlights over thousands of tables from a handful of
 * catalog statements with exact row counts. */
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arrow/array.h"
#include "arrow/concat.h"
#include "common/buf.h"
#include "rpc/rpc.h"
#include "server/internal.h"
#include "support/server_fixture.h"
#include "test.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs several statements at once on one of the server's own DuckDB connections (setup only). */
static int engine_exec(struct wg_fx_server *fx, const char *sql, struct wg_error *err) {
  struct wg_engine_conn *c;
  WG_RETURN_NOT_OK(wg_engine_acquire(fx->server->engine, &c, err));
  duckdb_result r;
  memset(&r, 0, sizeof(r));
  int rc = 0;
  if (duckdb_query(wg_engine_conn_duckdb(c), sql, &r) != DuckDBSuccess)
    rc = wg_error_set(err, EIO, "%s", duckdb_result_error(&r));
  duckdb_destroy_result(&r);
  wg_engine_release(fx->server->engine, c);
  return rc;
}

/* One call over the raw rpc client: sends `req` (NULL: nothing), drains the answers and returns
 * the gRPC status; err gets the server's message. */
static grpc_status_code raw_call(const char *uri, const char *method, const ProtobufCMessage *req,
                                 int *n_resp, struct wg_error *err) {
  struct wg_rpc_channel *ch;
  grpc_status_code code = GRPC_STATUS_UNKNOWN;
  *n_resp = 0;
  if (wg_rpc_channel_create(&ch, uri, err) != 0) return code;
  struct wg_rpc_client_call *call;
  char path[128];
  snprintf(path, sizeof(path), "%s%s", WG_FLIGHT_SERVICE, method);
  if (wg_rpc_client_call_start(ch, path, 30000, NULL, &call, err) == 0) {
    grpc_byte_buffer *bb;
    if (req != NULL && wg_flight_pack(req, &bb, err) == 0) wg_rpc_client_call_send(call, bb);
    wg_rpc_client_call_close_send(call);
    for (;;) {
      grpc_byte_buffer *r = NULL;
      if (wg_rpc_client_call_recv(call, &r) != 0 || r == NULL) break;
      (*n_resp)++;
      grpc_byte_buffer_destroy(r);
    }
    wg_rpc_client_call_finish(call, &code, err);
    wg_rpc_client_call_destroy(call);
  }
  wg_rpc_channel_destroy(ch);
  return code;
}

static grpc_status_code do_get(const char *uri, const char *sql, struct wg_error *err) {
  Arrow__Flight__Protocol__Ticket t = ARROW__FLIGHT__PROTOCOL__TICKET__INIT;
  t.ticket.data = (uint8_t *)sql;
  t.ticket.len = strlen(sql);
  int n;
  return raw_call(uri, "DoGet", &t.base, &n, err);
}

static grpc_status_code flight_info_call(const char *uri, const char *method, const char *sql,
                                         struct wg_error *err) {
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
  d.cmd.data = (uint8_t *)sql;
  d.cmd.len = strlen(sql);
  int n;
  return raw_call(uri, method, &d.base, &n, err);
}

static int occurrences(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = strstr(s, needle); p != NULL; p = strstr(p + 1, needle))
    n++;
  return n;
}

/* ---------------------------------------------------------------------------------------------
 * DoGet batches bounded by bytes */

/* Reads a query's whole result: rows, batches, the biggest batch (rows and buffer bytes), and
 * checks column 0 counts 0, 1, 2, ... when ordered is set. */
struct read_stats {
  int64_t rows, batches, max_rows, max_bytes, one_row_batches;
  bool in_order;
};

static int read_all(struct wg_client *c, const char *sql, bool ordered, struct read_stats *st,
                    struct wg_status *ws) {
  memset(st, 0, sizeof(*st));
  st->in_order = true;
  struct ArrowArrayStream s;
  WG_RETURN_NOT_OK(wg_fx_errno(wg_query(c, sql, &s, ws), ws));
  struct ArrowSchema schema;
  int rc = s.get_schema(&s, &schema);
  if (rc != 0) {
    wg_fx_stream_failed(&s, rc, ws);
    wg_stream_release(&s);
    return rc;
  }
  for (;;) {
    struct ArrowArray a;
    rc = s.get_next(&s, &a);
    if (rc != 0) {
      wg_fx_stream_failed(&s, rc, ws);
      break;
    }
    if (a.release == NULL) break;
    int64_t bytes = wg_arrow_range_bytes(&schema, &a, 0, a.length);
    if (bytes > st->max_bytes) st->max_bytes = bytes;
    if (a.length > st->max_rows) st->max_rows = a.length;
    if (a.length == 1) st->one_row_batches++;
    if (ordered) {
      const int64_t *ids = (const int64_t *)a.children[0]->buffers[1] + a.children[0]->offset;
      for (int64_t i = 0; i < a.length; i++) {
        int64_t v;
        memcpy(&v, ids + i, sizeof(v));
        if (v != st->rows + i) st->in_order = false;
      }
    }
    st->rows += a.length;
    st->batches++;
    wg_array_release(&a);
  }
  wg_schema_release(&schema);
  wg_stream_release(&s);
  return rc;
}

static void doget_splits_batches_by_bytes(void) {
  struct wg_status ws;
  struct wg_client *c;
  struct read_stats st;
  {
    /* The reported case, default settings: five 100 MB values were one 500 MB message, over
     * gRPC's 256 MiB limit; now each goes in a batch of its own. */
    struct wg_fx_server fx;
    struct wg_server_options o = {.db_path = ":memory:", .threads = 2};
    ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
    ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
    double t0 = now_s();
    ASSERT_OK(read_all(c, "SELECT i, repeat('x', 100000000) AS v FROM range(5) t(i)", true, &st,
                       &ws),
              ws.message);
    printf("doget_splits_batches_by_bytes: 5 x 100 MB: %lld batches, biggest %lld bytes, %.2f s\n",
           (long long)st.batches, (long long)st.max_bytes, now_s() - t0);
    ASSERT_EQ(st.rows, 5);
    ASSERT_EQ(st.batches, 5);
    ASSERT_EQ(st.one_row_batches, 5);
    ASSERT_TRUE(st.in_order);
    ASSERT_TRUE(st.max_bytes > 100000000 && st.max_bytes < 100001000);
    /* Narrow rows still come in batch_rows batches. */
    ASSERT_OK(read_all(c, "SELECT i FROM range(200000) t(i)", true, &st, &ws), ws.message);
    ASSERT_EQ(st.rows, 200000);
    ASSERT_EQ(st.max_rows, 65536);
    ASSERT_EQ(st.batches, 4);
    wg_disconnect(c);
    wg_fx_server_stop(&fx);
  }
  {
    /* A 1 MiB bound: strings, lists of strings; every batch within it, rows in order, none
     * lost, and batches cut inside DuckDB's 2048-row chunks. */
    struct wg_fx_server fx;
    struct wg_server_options o = {.db_path = ":memory:", .threads = 2, .batch_bytes = 1 << 20};
    ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
    ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
    const char *queries[] = {
        "SELECT i, repeat('x', 1000) AS s FROM range(10000) t(i)",
        ("SELECT i, list_value(repeat('y', 500), repeat('z', 500 + i % 7)) AS l FROM range(10000) "
         "t(i)"),
        "SELECT i, {'a': repeat('q', 1000), 'b': [i, i + 1]} AS st FROM range(20000) t(i)",
        ("SELECT i, CASE WHEN i % 2 = 0 THEN repeat('u', 2000)::UNION(s VARCHAR, n INT) "
         "ELSE i::INT::UNION(s VARCHAR, n INT) END AS u FROM range(10000) t(i)"),
    };
    for (int q = 0; q < 4; q++) {
      ASSERT_OK(read_all(c, queries[q], true, &st, &ws), ws.message);
      printf("doget_splits_batches_by_bytes: 1 MiB bound, query %d: %lld rows in %lld batches, "
             "biggest %lld bytes / %lld rows\n",
             q, (long long)st.rows, (long long)st.batches, (long long)st.max_bytes,
             (long long)st.max_rows);
      ASSERT_EQ(st.rows, q == 2 ? 20000 : 10000);
      ASSERT_TRUE(st.in_order);
      ASSERT_TRUE(st.max_bytes <= 1 << 20);
      ASSERT_TRUE(st.max_bytes > (1 << 20) - 4096); /* filled, not cut early */
      ASSERT_TRUE(st.batches >= 10);
      ASSERT_TRUE(st.max_rows < 2048);
    }
    /* A value bigger than the bound, but within gRPC's limit, is sent alone. */
    ASSERT_OK(read_all(c,
                       "SELECT i, CASE WHEN i = 500 THEN repeat('x', 3000000) ELSE 'a' END AS v "
                       "FROM range(1000) t(i)",
                       true, &st, &ws),
              ws.message);
    ASSERT_EQ(st.rows, 1000);
    ASSERT_TRUE(st.in_order);
    ASSERT_EQ(st.batches, 3); /* rows 0..499, row 500 alone, 501..999 */
    ASSERT_EQ(st.one_row_batches, 1);
    wg_disconnect(c);
    wg_fx_server_stop(&fx);
  }
}

/* `wigeon serve --batch-bytes N` bounds the real binary's batches the same way. */
static void serve_batch_bytes_flag_bounds_batches(void) {
  const char *args[] = {"--db", ":memory:", "--batch-bytes", "262144", NULL};
  struct wg_fx_process p;
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  struct wg_status ws;
  struct wg_client *c;
  ASSERT_OK(wg_fx_connect(&c, p.uri, &ws), ws.message);
  struct read_stats st;
  int rc = read_all(c, "SELECT i, repeat('x', 1000) AS s FROM range(5000) t(i)", true, &st, &ws);
  wg_disconnect(c);
  ASSERT_EQ(WEXITSTATUS(wg_fx_process_stop(&p, SIGTERM)), 0);
  ASSERT_OK(rc, ws.message);
  ASSERT_EQ(st.rows, 5000);
  ASSERT_TRUE(st.in_order);
  ASSERT_TRUE(st.max_bytes <= 262144);
  ASSERT_TRUE(st.batches >= 19);
}

/* One row bigger than the largest gRPC message: RESOURCE_EXHAUSTED that names the row and the
 * sizes (not gRPC's bare "Sent message larger than max"); the rows before it arrive, and the
 * server goes on serving. */
static void doget_row_over_message_limit_is_a_clear_error(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.db_path = ":memory:", .threads = 2,
                                .max_message_bytes = 8 << 20};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  ASSERT_EQ(fx.server->options.batch_bytes, 4 << 20); /* capped at half the message limit */
  struct wg_error err = {""};
  struct wg_status ws;
  const char *sql = "SELECT i, CASE WHEN i = 3 THEN repeat('x', 10000000) ELSE 'a' END AS v "
                    "FROM range(10) t(i)";
  ASSERT_EQ(do_get(fx.uri, sql, &err), GRPC_STATUS_RESOURCE_EXHAUSTED);
  printf("doget_row_over_message_limit_is_a_clear_error: %s\n", err.message);
  ASSERT_TRUE(strstr(err.message, "row 3 of the result alone is 10000") != NULL);
  ASSERT_TRUE(strstr(err.message, "largest message gRPC may send (8388608 bytes)") != NULL);
  struct wg_client *c;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  struct read_stats st;
  ASSERT_EQ(read_all(c, sql, true, &st, &ws), EBUSY); /* the client's reading of the code */
  ASSERT_EQ(st.rows, 3);                                 /* rows 0..2 came first */
  ASSERT_OK(read_all(c, "SELECT i, repeat('x', 6000000) FROM range(2) t(i)", true, &st, &ws),
            ws.message);
  ASSERT_EQ(st.rows, 2);
  ASSERT_EQ(st.batches, 2);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

/* ---------------------------------------------------------------------------------------------
 * Status codes and messages */

static void rollback_without_transaction_is_failed_precondition(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.db_path = ":memory:", .threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_error err = {""};
  struct wg_status ws;
  ASSERT_EQ(do_get(fx.uri, "ROLLBACK", &err), GRPC_STATUS_FAILED_PRECONDITION);
  ASSERT_TRUE(strstr(err.message, "no transaction is active") != NULL);
  ASSERT_EQ(do_get(fx.uri, "COMMIT", &err), GRPC_STATUS_FAILED_PRECONDITION);
  ASSERT_TRUE(strstr(err.message, "no transaction is active") != NULL);
  /* The same through the client library, which reads FAILED_PRECONDITION as EPERM. */
  struct wg_client *c;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  int64_t v = 0;
  ASSERT_EQ(wg_fx_query_i64(c, "ROLLBACK", &v, &ws), EPERM);
  wg_disconnect(c);

  /* A real write-write conflict stays ABORTED (EAGAIN): retrying may succeed. */
  ASSERT_OK(engine_exec(&fx, "CREATE TABLE acct (id INT PRIMARY KEY, v INT);"
                             "INSERT INTO acct VALUES (1, 0);",
                        &err),
            &err);
  struct wg_engine_conn *a, *b;
  ASSERT_OK(wg_engine_acquire(fx.server->engine, &a, &err), &err);
  ASSERT_OK(wg_engine_acquire(fx.server->engine, &b, &err), &err);
  int64_t changed = 0;
  ASSERT_OK(wg_engine_execute(a, "BEGIN; UPDATE acct SET v = 1 WHERE id = 1", &changed, &err),
            &err);
  int rc = wg_engine_execute(b, "BEGIN; UPDATE acct SET v = 2 WHERE id = 1", &changed, &err);
  printf("rollback_without_transaction_is_failed_precondition: conflict: %s\n", err.message);
  wg_engine_release(fx.server->engine, a);
  wg_engine_release(fx.server->engine, b);
  ASSERT_EQ(rc, EAGAIN);
  ASSERT_EQ(wg_rpc_status_from_errno(rc), GRPC_STATUS_ABORTED);
  wg_fx_server_stop(&fx);
}

static void parse_error_context_appears_once(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.db_path = ":memory:", .threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_error err = {""};
  const char *bad = "SELEC 1";
  ASSERT_EQ(do_get(fx.uri, bad, &err), GRPC_STATUS_INVALID_ARGUMENT);
  printf("parse_error_context_appears_once: DoGet: %s\n", err.message);
  ASSERT_TRUE(strstr(err.message, "Parser Error: syntax error at or near \"SELEC\"") != NULL);
  ASSERT_EQ(occurrences(err.message, "LINE 1:"), 1);
  ASSERT_EQ(occurrences(err.message, "^"), 1);
  const char *methods[] = {"PollFlightInfo", "GetFlightInfo", "GetSchema"};
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(flight_info_call(fx.uri, methods[i], bad, &err), GRPC_STATUS_INVALID_ARGUMENT);
    ASSERT_EQ(occurrences(err.message, "LINE 1:"), 1);
  }
  /* The execute action (several statements), and a later line of a longer text. */
  Arrow__Flight__Protocol__Action a = ARROW__FLIGHT__PROTOCOL__ACTION__INIT;
  a.type = "execute";
  const char *multi = "CREATE TABLE x (i INT);\nSELECT 'a' FROM (SELEC 2)";
  a.body.data = (uint8_t *)multi;
  a.body.len = strlen(multi);
  int n;
  ASSERT_EQ(raw_call(fx.uri, "DoAction", &a.base, &n, &err), GRPC_STATUS_INVALID_ARGUMENT);
  ASSERT_EQ(occurrences(err.message, "LINE 2:"), 1);
  ASSERT_EQ(do_get(fx.uri, "SELECT 1;\nSELECT 'a' FROM (SELEC 2)", &err),
            GRPC_STATUS_INVALID_ARGUMENT);
  ASSERT_EQ(occurrences(err.message, "LINE 2:"), 1);
  /* Errors whose context DuckDB gives once are untouched. */
  ASSERT_EQ(do_get(fx.uri, "SELECT * FROM no_such_table", &err), GRPC_STATUS_NOT_FOUND);
  ASSERT_EQ(occurrences(err.message, "LINE 1:"), 1);
  ASSERT_TRUE(strstr(err.message, "no_such_table") != NULL);
  wg_fx_server_stop(&fx);
}

/* ---------------------------------------------------------------------------------------------
 * Puts with Arrow null-typed columns */

/* A stream of one batch (moved in), with its schema. */
struct one_batch {
  struct ArrowSchema schema;
  struct ArrowArray batch;
};

static int one_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct one_batch *o = s->private_data;
  return wg_schema_deep_copy(&o->schema, out, NULL);
}

static int one_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct one_batch *o = s->private_data;
  memset(out, 0, sizeof(*out));
  if (o->batch.release != NULL) wg_array_move(&o->batch, out);
  return 0;
}

static const char *one_last_error(struct ArrowArrayStream *s) {
  (void)s;
  return NULL;
}

static void one_release(struct ArrowArrayStream *s) {
  struct one_batch *o = s->private_data;
  wg_schema_release(&o->schema);
  wg_array_release(&o->batch);
  free(o);
  s->release = NULL;
}

/* (id BIGINT, n <null>) or, nested, (id BIGINT, n list<null>) with three rows. */
static int null_column_stream(bool nested, struct ArrowArrayStream *out) {
  struct one_batch *o = calloc(1, sizeof(*o));
  static const int64_t ids[3] = {1, 2, 3};
  static const int32_t offsets[4] = {0, 1, 1, 2};
  struct wg_shared *h = wg_shared_copy(ids, sizeof(ids));
  struct wg_shared *ho = wg_shared_copy(offsets, sizeof(offsets));
  int rc = o && h && ho ? 0 : ENOMEM;
  if (rc == 0) rc = wg_schema_node_init(&o->schema, "+s", 2, NULL);
  if (rc == 0) rc = wg_schema_node_init(o->schema.children[0], "l", 0, NULL);
  if (rc == 0) rc = wg_schema_set_name(o->schema.children[0], "id");
  if (rc == 0) rc = wg_schema_node_init(o->schema.children[1], nested ? "+l" : "n", nested, NULL);
  if (rc == 0) rc = wg_schema_set_name(o->schema.children[1], "n");
  if (rc == 0 && nested) rc = wg_schema_node_init(o->schema.children[1]->children[0], "n", 0, NULL);
  if (rc == 0 && nested) rc = wg_schema_set_name(o->schema.children[1]->children[0], "item");
  if (rc == 0) rc = wg_array_node_init(&o->batch, 1, 2, NULL);
  if (rc == 0) rc = wg_array_node_init(o->batch.children[0], 2, 0, h);
  if (rc == 0) rc = wg_array_node_init(o->batch.children[1], nested ? 2 : 0, nested, ho);
  if (rc == 0 && nested) rc = wg_array_node_init(o->batch.children[1]->children[0], 0, 0, NULL);
  if (rc == 0) {
    o->batch.length = 3;
    o->batch.children[0]->length = 3;
    o->batch.children[0]->buffers[1] = h->data;
    struct ArrowArray *n = o->batch.children[1];
    n->length = 3;
    if (nested) {
      n->buffers[1] = ho->data;
      n->children[0]->length = 2;
      n->children[0]->null_count = 2;
    } else {
      n->null_count = 3;
    }
  }
  wg_shared_unref(h);
  wg_shared_unref(ho);
  if (rc != 0) {
    if (o != NULL) {
      wg_schema_release(&o->schema);
      wg_array_release(&o->batch);
    }
    free(o);
    return rc;
  }
  out->get_schema = one_get_schema;
  out->get_next = one_get_next;
  out->get_last_error = one_last_error;
  out->release = one_release;
  out->private_data = o;
  return 0;
}

/* The put of a null-typed column (plain, or inside a list) is refused with INVALID_ARGUMENT and a
 * message that names the column and says what to send, on the group-commit and the streaming
 * path, into a new table (which is not created) and into an existing one (which keeps its rows);
 * never DuckDB's parser error about SQL the client did not write. */
static void null_typed_column_put_gets_a_clear_error(void) {
  for (int streaming = 0; streaming < 2; streaming++) {
    struct wg_fx_server fx;
    struct wg_server_options o = {.db_path = ":memory:", .threads = 2,
                                  .group_commit_bytes = streaming ? -1 : 0};
    ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
    struct wg_error err = {""};
    struct wg_status ws;
    struct wg_client *c;
    ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
    ASSERT_OK(engine_exec(&fx, "CREATE TABLE old (id BIGINT, n INTEGER); INSERT INTO old VALUES "
                               "(7, 7);",
                          &err),
              &err);
    for (int nested = 0; nested < 2; nested++) {
      for (int existing = 0; existing < 2; existing++) {
        struct ArrowArrayStream st;
        ASSERT_EQ(null_column_stream(nested, &st), 0);
        int64_t rows = -1;
        const char *table = existing ? "old" : "fresh";
        int rc = wg_fx_errno(wg_put(c, NULL, table, &st, NULL, NULL, &rows, &ws), &ws);
        if (streaming == 0 && existing == 0)
          printf("null_typed_column_put_gets_a_clear_error: %s\n", ws.message);
        ASSERT_EQ(rc, EINVAL);
        ASSERT_TRUE(strstr(ws.message, "column \"n\": the Arrow null type") != NULL);
        ASSERT_TRUE(strstr(ws.message, "send a typed column") != NULL);
        ASSERT_TRUE(strstr(ws.message, "Parser Error") == NULL);
        ASSERT_TRUE(strstr(ws.message, "CREATE TABLE") == NULL);
        if (nested) ASSERT_TRUE(strstr(ws.message, "inside Arrow type \"+l\"") != NULL);
      }
    }
    int64_t v = -1;
    ASSERT_OK(wg_fx_query_i64(c, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'fresh'",
                              &v, &ws),
              ws.message);
    ASSERT_EQ(v, 0);
    ASSERT_OK(wg_fx_query_i64(c, "SELECT count(*) FROM old", &v, &ws), ws.message);
    ASSERT_EQ(v, 1);
    wg_disconnect(c);
    wg_fx_server_stop(&fx);
  }
}

/* ---------------------------------------------------------------------------------------------
 * ListFlights */

static void list_flights_uses_one_catalog_query(void) {
  enum { N = 2000 };
  struct wg_fx_server fx;
  struct wg_server_options o = {.db_path = ":memory:", .threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_error err = {""};
  struct wg_status ws;
  struct wg_buf sql;
  wg_buf_init(&sql);
  /* Table i has i % 7 rows, and i % 3 columns beyond the id; every 10th loses a row to a DELETE
   * (which duckdb_tables().estimated_size still counts); a few live in another schema. */
  ASSERT_EQ(wg_buf_append(&sql, "CREATE SCHEMA other;", 20), 0);
  for (int i = 0; i < N; i++) {
    char b[512];
    const char *schema = i % 500 == 7 ? "other" : "main";
    int n = snprintf(b, sizeof(b), "CREATE TABLE %s.t%04d (id BIGINT%s%s);", schema, i,
                     i % 3 >= 1 ? ", name VARCHAR" : "", i % 3 >= 2 ? ", v DECIMAL(18,3)[]" : "");
    ASSERT_EQ(wg_buf_append(&sql, b, n), 0);
    if (i % 7 > 0) {
      n = snprintf(b, sizeof(b), "INSERT INTO %s.t%04d (id) SELECT range FROM range(%d);", schema,
                   i, i % 7);
      ASSERT_EQ(wg_buf_append(&sql, b, n), 0);
    }
    if (i % 10 == 0 && i % 7 > 0) {
      n = snprintf(b, sizeof(b), "DELETE FROM %s.t%04d WHERE id = 0;", schema, i);
      ASSERT_EQ(wg_buf_append(&sql, b, n), 0);
    }
  }
  ASSERT_EQ(wg_buf_append(&sql, "", 1), 0);
  ASSERT_OK(engine_exec(&fx, (const char *)sql.data, &err), &err);
  wg_buf_reset(&sql);

  struct wg_client *c;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  struct wg_table_info *t = NULL;
  int64_t n = 0;
  double t0 = now_s();
  ASSERT_OK(wg_list_tables(c, NULL, &t, &n, &ws), ws.message);
  double elapsed = now_s() - t0;
  printf("list_flights_uses_one_catalog_query: ListFlights over %d tables: %.3f s\n", N, elapsed);
  ASSERT_EQ(n, N);
  int other = 0;
  for (int64_t k = 0; k < n; k++) {
    int i = atoi(t[k].table_name + 1);
    int64_t want = i % 7 - (i % 10 == 0 && i % 7 > 0 ? 1 : 0);
    if (t[k].rows != want) printf("  %s.%s: %lld rows\n", t[k].schema_name, t[k].table_name,
                                  (long long)t[k].rows);
    ASSERT_EQ(t[k].rows, want);
    ASSERT_EQ(t[k].schema.n_children, 1 + i % 3);
    ASSERT_STREQ(t[k].schema.children[0]->name, "id");
    ASSERT_STREQ(t[k].schema.children[0]->format, "l");
    if (i % 3 >= 1) ASSERT_STREQ(t[k].schema.children[1]->format, "u");
    if (i % 3 >= 2) {
      ASSERT_STREQ(t[k].schema.children[2]->format, "+l");
      ASSERT_STREQ(t[k].schema.children[2]->children[0]->format, "d:18,3");
    }
    ASSERT_STREQ(t[k].schema_name, i % 500 == 7 ? "other" : "main");
    other += strcmp(t[k].schema_name, "other") == 0;
  }
  ASSERT_EQ(other, 4);
  wg_table_info_free(t, n);

  /* A filter still applies, and the answer is the same as GetFlightInfo's for each table. */
  ASSERT_OK(wg_list_tables(c, "t199", &t, &n, &ws), ws.message);
  ASSERT_EQ(n, 10); /* t1990 .. t1999 */
  for (int64_t k = 0; k < n; k++) {
    struct wg_flight_info info;
    ASSERT_OK(wg_flight_info(c, t[k].schema_name, t[k].table_name, NULL, &info, &ws),
              ws.message);
    ASSERT_EQ(info.total_records, t[k].rows);
    ASSERT_EQ(info.schema.n_children, t[k].schema.n_children);
    wg_flight_info_reset(&info);
  }
  wg_table_info_free(t, n);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

/* The schemas ListFlights builds from type names are the ones GetFlightInfo gets from the table
 * itself, for every type DuckDB has, user types and quoted names included. */
static void list_flights_schemas_match_flight_info(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.db_path = ":memory:", .threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_error err = {""};
  struct wg_status ws;
  ASSERT_OK(engine_exec(&fx,
                        "CREATE TABLE all_types AS SELECT * FROM test_all_types();"
                        "CREATE SCHEMA s2; CREATE TYPE s2.mood AS ENUM ('a', 'b''c');"
                        "CREATE TABLE s2.odd (m s2.mood, e ENUM('x', 'y''z'),"
                        " s STRUCT(\"a b\" INT, \"Q\"\"\" VARCHAR),"
                        " u UNION(n INT, \"s t\" VARCHAR),"
                        " j JSON, a INT[3], mp MAP(VARCHAR, INT[]), \"we\"\"ird col\" UUID);"
                        "INSERT INTO s2.odd (m) VALUES ('a'), (NULL);",
                        &err),
            &err);
  struct wg_client *c;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  struct wg_table_info *t = NULL;
  int64_t n = 0;
  ASSERT_OK(wg_list_tables(c, NULL, &t, &n, &ws), ws.message);
  ASSERT_EQ(n, 2);
  for (int64_t k = 0; k < n; k++) {
    struct wg_flight_info info;
    ASSERT_OK(wg_flight_info(c, t[k].schema_name, t[k].table_name, NULL, &info, &ws),
              ws.message);
    ASSERT_EQ(info.total_records, t[k].rows);
    struct wg_buf a, b;
    wg_buf_init(&a);
    wg_buf_init(&b);
    ASSERT_EQ(wg_schema_fingerprint(&t[k].schema, &a), 0);
    ASSERT_EQ(wg_schema_fingerprint(&info.schema, &b), 0);
    if (a.size != b.size || memcmp(a.data, b.data, (size_t)a.size) != 0)
      printf("  %s: ListFlights and GetFlightInfo schemas differ\n", t[k].table_name);
    ASSERT_TRUE(a.size == b.size && memcmp(a.data, b.data, (size_t)a.size) == 0);
    ASSERT_TRUE(info.schema.n_children >= 8);
    wg_buf_reset(&a);
    wg_buf_reset(&b);
    wg_flight_info_reset(&info);
  }
  ASSERT_STREQ(t[0].table_name, "all_types");
  ASSERT_EQ(t[0].rows, 3);
  ASSERT_EQ(t[1].rows, 2);
  wg_table_info_free(t, n);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  RUN_TEST(doget_splits_batches_by_bytes);
  RUN_TEST(serve_batch_bytes_flag_bounds_batches);
  RUN_TEST(doget_row_over_message_limit_is_a_clear_error);
  RUN_TEST(rollback_without_transaction_is_failed_precondition);
  RUN_TEST(parse_error_context_appears_once);
  RUN_TEST(null_typed_column_put_gets_a_clear_error);
  RUN_TEST(list_flights_uses_one_catalog_query);
  RUN_TEST(list_flights_schemas_match_flight_info);
  return TEST_SUMMARY();
}
