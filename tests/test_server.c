/* wigeon: the Flight server end to end: a real server on 127.0.0.1 (in this process, or the
 * `wigeon serve` binary as a child process), driven by our C client over real gRPC, with real
 * DuckDB databases. Covers the seeds' and xorq's concurrent scenarios, every DuckDB type through
 * DoPut and DoGet, every RPC, the error mapping, safety defaults, cancellation, the worker queue,
 * durability across kill -9 and SIGTERM, and bounded server memory for a 20M-row DoGet. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arrow/array.h"
#include "arrow/ipc.h"
#include "flight/flight.h"
#include "rpc/rpc.h"
#include "server/internal.h" /* the options a started server really uses */
#include "support/server_fixture.h"
#include "test.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif
static int sanitized(void) {
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
  return 1;
#else
  return 0;
#endif
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int put_seed(struct wg_client *c, const char *table, int64_t first, int64_t batches,
                    int64_t rows, bool kv, int64_t *acked, struct wg_status *st) {
  struct ArrowArrayStream in;
  WG_RETURN_NOT_OK(wg_fx_seed_stream(first, batches, rows, kv, &in));
  return wg_fx_errno(wg_put(c, NULL, table, &in, NULL, NULL, acked, st), st);
}

/* ---- the seeds' scenario ---- */

struct loader_arg {
  const char *uri;
  int id, puts;
  atomic_llong *acked;
  atomic_int *failures;
};

static void *loader(void *p) {
  struct loader_arg *a = p;
  struct wg_client *c;
  struct wg_status ws;
  if (wg_fx_connect(&c, a->uri, &ws) != 0) {
    atomic_fetch_add(a->failures, 1);
    return NULL;
  }
  for (int i = 0; i < a->puts; i++) {
    int64_t acked = 0;
    if (put_seed(c, "events", a->id * 1000 + i, 1, 1000, false, &acked, &ws) != 0) {
      fprintf(stderr, "loader %d: %s\n", a->id, ws.message);
      atomic_fetch_add(a->failures, 1);
    }
    atomic_fetch_add(a->acked, acked);
  }
  wg_disconnect(c);
  return NULL;
}

struct reader_arg {
  const char *uri;
  atomic_int *stop, *failures;
  atomic_llong *reads;
  int64_t put_rows; /* > 0: every count must be a multiple of it and never decrease */
  const char *sql;
};

static void *reader(void *p) {
  struct reader_arg *a = p;
  struct wg_client *c;
  struct wg_status ws;
  if (wg_fx_connect(&c, a->uri, &ws) != 0) {
    atomic_fetch_add(a->failures, 1);
    return NULL;
  }
  int64_t last = 0;
  for (int i = 0; i < 100000 && !atomic_load(a->stop); i++) {
    int64_t v = 0;
    int rc = wg_fx_query_i64(c, a->sql, &v, &ws);
    if (rc == ENOENT) continue; /* table not created yet */
    if (rc != 0) {
      fprintf(stderr, "reader: %s\n", ws.message);
      atomic_fetch_add(a->failures, 1);
      break;
    }
    if (a->put_rows > 0 && (v % a->put_rows != 0 || v < last)) {
      fprintf(stderr, "reader saw %lld after %lld (puts of %lld rows)\n", (long long)v,
              (long long)last, (long long)a->put_rows);
      atomic_fetch_add(a->failures, 1);
    }
    last = v;
    atomic_fetch_add(a->reads, 1);
  }
  wg_disconnect(c);
  return NULL;
}

static void seeds_scenario_loaders_and_readers_count_exactly(void) {
  char dir[256], db[300];
  ASSERT_EQ(wg_fx_tmpdir(dir, sizeof(dir)), 0);
  snprintf(db, sizeof(db), "%s/seed.duckdb", dir);
  struct wg_fx_server fx;
  struct wg_server_options o = {.db_path = db, .threads = 8};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  atomic_llong acked = 0, reads = 0;
  atomic_int failures = 0, stop = 0;
  enum { LOADERS = 4, PUTS = 25 };
  pthread_t lt[LOADERS], rt[2];
  struct loader_arg la[LOADERS];
  struct reader_arg ra[2] = {
      {fx.uri, &stop, &failures, &reads, 0, "SELECT count(*) FROM events"},
      {fx.uri, &stop, &failures, &reads, 0,
       "SELECT count(*) FROM (SELECT category, count(*), avg(value) FROM events GROUP BY "
       "category)"},
  };
  for (int i = 0; i < 2; i++)
    pthread_create(&rt[i], NULL, reader, &ra[i]);
  for (int i = 0; i < LOADERS; i++) {
    la[i] = (struct loader_arg){fx.uri, i, PUTS, &acked, &failures};
    pthread_create(&lt[i], NULL, loader, &la[i]);
  }
  for (int i = 0; i < LOADERS; i++)
    pthread_join(lt[i], NULL);
  atomic_store(&stop, 1);
  for (int i = 0; i < 2; i++)
    pthread_join(rt[i], NULL);
  ASSERT_EQ(atomic_load(&failures), 0);
  ASSERT_EQ(atomic_load(&acked), LOADERS * PUTS * 1000);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  int64_t n;
  ASSERT_OK(wg_fx_query_i64(c, "SELECT count(*) FROM events", &n, &ws), ws.message);
  ASSERT_EQ(n, LOADERS * PUTS * 1000);
  ASSERT_OK(wg_fx_query_i64(c, "SELECT count(*) FROM events WHERE category = 'gamma'", &n, &ws),
            ws.message);
  ASSERT_EQ(n, LOADERS * PUTS * 200);
  ASSERT_OK(wg_fx_query_i64(c, "SELECT count(DISTINCT batch_id) FROM events", &n, &ws), ws.message);
  ASSERT_EQ(n, LOADERS * PUTS);
  fprintf(stderr, "  %lld reads ran beside the loaders\n", (long long)atomic_load(&reads));
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
  wg_fx_rmdir(dir);
}

/* ---- the xorq scenario ---- */

struct kv_writer_arg {
  const char *uri;
  int id;
  atomic_int *failures;
  atomic_llong *acked;
};

static void *kv_writer(void *p) {
  struct kv_writer_arg *a = p;
  struct wg_client *c;
  struct wg_status ws;
  if (wg_fx_connect(&c, a->uri, &ws) != 0) return NULL;
  for (int i = 0; i < 20; i++) {
    int64_t acked;
    /* one put = 5 batches of 1000 rows, all or nothing */
    if (put_seed(c, "kv", (a->id * 100 + i) * 5, 5, 1000, true, &acked, &ws) != 0) {
      fprintf(stderr, "writer: %s\n", ws.message);
      atomic_fetch_add(a->failures, 1);
    }
    atomic_fetch_add(a->acked, acked);
  }
  wg_disconnect(c);
  return NULL;
}

static void xorq_scenario_counts_never_decrease_nor_show_partial_puts(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 4};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  const char *ddl = "CREATE TABLE kv (id BIGINT, value DOUBLE)";
  ASSERT_OK(wg_fx_action(c, "execute", ddl, strlen(ddl), NULL, &ws), ws.message);
  atomic_int failures = 0, stop = 0;
  atomic_llong acked = 0, reads = 0;
  pthread_t w[2], r;
  struct kv_writer_arg wa[2] = {{fx.uri, 0, &failures, &acked}, {fx.uri, 1, &failures, &acked}};
  struct reader_arg ra = {fx.uri, &stop, &failures, &reads, 5000, "SELECT count(*) FROM kv"};
  pthread_create(&r, NULL, reader, &ra);
  for (int i = 0; i < 2; i++)
    pthread_create(&w[i], NULL, kv_writer, &wa[i]);
  for (int i = 0; i < 2; i++)
    pthread_join(w[i], NULL);
  atomic_store(&stop, 1);
  pthread_join(r, NULL);
  ASSERT_EQ(atomic_load(&failures), 0);
  int64_t n;
  ASSERT_OK(wg_fx_query_i64(c, "SELECT count(*) FROM kv", &n, &ws), ws.message);
  ASSERT_EQ(n, 2 * 20 * 5000);
  ASSERT_EQ(atomic_load(&acked), 2 * 20 * 5000);
  ASSERT_OK(wg_fx_query_i64(c, "SELECT count(DISTINCT id) FROM kv", &n, &ws), ws.message);
  ASSERT_EQ(n, 2 * 20 * 5000);
  fprintf(stderr, "  %lld counts read while writing\n", (long long)atomic_load(&reads));
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

/* ---- types ---- */

/* Columns whose values DuckDB's own Arrow export/import changes (found by tests/
 * test_duckdb_roundtrip.c): compared as text instead of by value. */
static const char *all_types_exact =
    "SELECT * EXCLUDE (hugeint, uhugeint, time_tz, uuid, bit, small_enum, medium_enum, "
    "large_enum, bignum) FROM ";

static void all_duckdb_types_round_trip_through_put_and_get(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  struct ArrowArrayStream in;
  ASSERT_OK(wg_query(c, "SELECT * FROM test_all_types()", &in, &ws), ws.message);
  int64_t acked = 0;
  ASSERT_OK(wg_put(c, NULL, "all_types", &in, NULL, NULL, &acked, &ws), ws.message);
  ASSERT_EQ(acked, 3);
  char sql[1024];
  int64_t n = -1;
  snprintf(sql, sizeof(sql),
           "SELECT count(*) FROM ((%s test_all_types()) EXCEPT ALL (%s all_types))",
           all_types_exact, all_types_exact);
  ASSERT_OK(wg_fx_query_i64(c, sql, &n, &ws), ws.message);
  ASSERT_EQ(n, 0);
  snprintf(sql, sizeof(sql),
           "SELECT count(*) FROM ((%s all_types) EXCEPT ALL (%s test_all_types()))",
           all_types_exact, all_types_exact);
  ASSERT_OK(wg_fx_query_i64(c, sql, &n, &ws), ws.message);
  ASSERT_EQ(n, 0);
  /* The changed ones still carry the same text. */
  ASSERT_OK(wg_fx_query_i64(c,
                            "SELECT count(*) FROM (SELECT uuid::VARCHAR, small_enum::VARCHAR, "
                            "large_enum::VARCHAR FROM test_all_types() EXCEPT ALL SELECT "
                            "uuid::VARCHAR, small_enum::VARCHAR, large_enum::VARCHAR FROM "
                            "all_types)",
                            &n, &ws),
            ws.message);
  ASSERT_EQ(n, 0);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

/* ---- the RPCs ---- */

static void flight_info_schema_and_list_flights_describe_tables(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  int64_t acked;
  ASSERT_OK(put_seed(c, "events", 0, 3, 1000, false, &acked, &ws), ws.message);
  ASSERT_OK(put_seed(c, "kv_pairs", 0, 2, 500, true, &acked, &ws), ws.message);
  const char *ddl = "CREATE SCHEMA other";
  ASSERT_OK(wg_fx_action(c, "execute", ddl, strlen(ddl), NULL, &ws), ws.message);
  ddl = "CREATE TABLE other.t AS SELECT 1 AS x";
  ASSERT_OK(wg_fx_action(c, "execute", ddl, strlen(ddl), NULL, &ws), ws.message);
  struct wg_flight_info info;
  ASSERT_OK(wg_flight_info(c, NULL, "events", NULL, &info, &ws), ws.message);
  ASSERT_EQ(info.total_records, 3000);
  ASSERT_EQ(info.schema.n_children, 4);
  ASSERT_STREQ(info.schema.children[3]->name, "category");
  /* the ticket reads the table */
  int64_t rows, batches;
  struct ArrowArrayStream st;
  ASSERT_OK(wg_do_get(c, info.ticket, info.ticket_len, &st, &ws), ws.message);
  rows = 0;
  for (;;) {
    struct ArrowArray a;
    ASSERT_EQ(st.get_next(&st, &a), 0);
    if (a.release == NULL) break;
    rows += a.length;
    wg_array_release(&a);
  }
  wg_stream_release(&st);
  ASSERT_EQ(rows, 3000);
  wg_flight_info_reset(&info);
  ASSERT_OK(wg_flight_info(c, "other", "t", NULL, &info, &ws), ws.message);
  ASSERT_EQ(info.total_records, 1);
  wg_flight_info_reset(&info);
  /* CMD: schema without running */
  ASSERT_OK(wg_flight_info(c, NULL, NULL, "SELECT 1 AS a, 'x' AS b, 2.5::DOUBLE AS c", &info,
                           &ws),
            ws.message);
  ASSERT_EQ(info.schema.n_children, 3);
  ASSERT_STREQ(info.schema.children[2]->format, "g");
  ASSERT_EQ(info.total_records, -1);
  ASSERT_OK(wg_fx_query_count(c, info.ticket, &rows, &batches, &ws), ws.message);
  ASSERT_EQ(rows, 1);
  wg_flight_info_reset(&info);
  ASSERT_EQ(wg_fx_errno(wg_flight_info(c, NULL, "nope", NULL, &info, &ws), &ws), ENOENT);
  ASSERT_TRUE(strstr(ws.message, "nope") != NULL);
  /* ListFlights: every schema, optional name filter */
  struct wg_table_info *t;
  int64_t n;
  ASSERT_OK(wg_list_tables(c, NULL, &t, &n, &ws), ws.message);
  ASSERT_EQ(n, 3);
  int64_t total = 0;
  for (int64_t i = 0; i < n; i++)
    total += t[i].rows;
  ASSERT_EQ(total, 3000 + 1000 + 1);
  wg_table_info_free(t, n);
  ASSERT_OK(wg_list_tables(c, "kv", &t, &n, &ws), ws.message);
  ASSERT_EQ(n, 1);
  ASSERT_STREQ(t[0].table_name, "kv_pairs");
  ASSERT_EQ(t[0].rows, 1000);
  ASSERT_EQ(t[0].schema.n_children, 2);
  wg_table_info_free(t, n);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

/* Raw calls for what the client library does not wrap. */
static int raw_unary(const char *uri, const char *method, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *resp_d, ProtobufCMessage **resp, int *n_resp,
                     struct wg_error *err) {
  struct wg_rpc_channel *ch;
  WG_RETURN_NOT_OK(wg_rpc_channel_create(&ch, uri, err));
  struct wg_rpc_client_call *call;
  char path[128];
  snprintf(path, sizeof(path), "%s%s", WG_FLIGHT_SERVICE, method);
  int rc = wg_rpc_client_call_start(ch, path, 10000, NULL, &call, err);
  if (rc != 0) {
    wg_rpc_channel_destroy(ch);
    return rc;
  }
  grpc_byte_buffer *bb;
  if (req != NULL && wg_flight_pack(req, &bb, err) == 0) wg_rpc_client_call_send(call, bb);
  wg_rpc_client_call_close_send(call);
  *n_resp = 0;
  for (;;) {
    grpc_byte_buffer *r = NULL;
    if (wg_rpc_client_call_recv(call, &r) != 0 || r == NULL) break;
    ProtobufCMessage *m = NULL;
    if (*n_resp == 0 && wg_flight_unpack(resp_d, r, &m, err) == 0) *resp = m;
    (*n_resp)++;
    grpc_byte_buffer_destroy(r);
  }
  grpc_status_code code;
  rc = wg_rpc_client_call_finish(call, &code, err);
  wg_rpc_client_call_destroy(call);
  wg_rpc_channel_destroy(ch);
  return rc;
}

static void poll_get_schema_list_actions_and_handshake_are_answered(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_error err;
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
  d.cmd.data = (uint8_t *)"SELECT 42 AS answer";
  d.cmd.len = strlen((char *)d.cmd.data);
  ProtobufCMessage *m = NULL;
  int n = 0;
  ASSERT_OK(raw_unary(fx.uri, "PollFlightInfo", &d.base,
                      &arrow__flight__protocol__poll_info__descriptor, &m, &n, &err),
            &err);
  ASSERT_EQ(n, 1);
  Arrow__Flight__Protocol__PollInfo *pi = (Arrow__Flight__Protocol__PollInfo *)m;
  ASSERT_TRUE(pi->info != NULL);
  ASSERT_TRUE(pi->flight_descriptor == NULL); /* complete: nothing to poll */
  ASSERT_EQ(pi->info->n_endpoint, 1);
  protobuf_c_message_free_unpacked(m, NULL);
  ASSERT_OK(raw_unary(fx.uri, "GetSchema", &d.base,
                      &arrow__flight__protocol__schema_result__descriptor, &m, &n, &err),
            &err);
  struct ArrowSchema s;
  Arrow__Flight__Protocol__SchemaResult *sr = (Arrow__Flight__Protocol__SchemaResult *)m;
  struct wg_bytes sb = {sr->schema.data, (int64_t)sr->schema.len};
  ASSERT_OK(wg_flight_schema_parse(sb, &s, &err), &err);
  ASSERT_STREQ(s.children[0]->name, "answer");
  wg_schema_release(&s);
  protobuf_c_message_free_unpacked(m, NULL);
  Arrow__Flight__Protocol__Empty e = ARROW__FLIGHT__PROTOCOL__EMPTY__INIT;
  ASSERT_OK(raw_unary(fx.uri, "ListActions", &e.base,
                      &arrow__flight__protocol__action_type__descriptor, &m, &n, &err),
            &err);
  ASSERT_EQ(n, 16); /* execute, drop_table, checkpoint, stats, then Flight SQL's and Flight's */
  ASSERT_STREQ(((Arrow__Flight__Protocol__ActionType *)m)->type, "execute");
  protobuf_c_message_free_unpacked(m, NULL);
  Arrow__Flight__Protocol__HandshakeRequest h = ARROW__FLIGHT__PROTOCOL__HANDSHAKE_REQUEST__INIT;
  h.protocol_version = 7;
  ASSERT_OK(raw_unary(fx.uri, "Handshake", &h.base,
                      &arrow__flight__protocol__handshake_response__descriptor, &m, &n, &err),
            &err);
  ASSERT_EQ(n, 1);
  ASSERT_EQ(((Arrow__Flight__Protocol__HandshakeResponse *)m)->protocol_version, 7);
  protobuf_c_message_free_unpacked(m, NULL);
  m = NULL;
  /* DoExchange without a descriptor: refused, naming what is missing (tests/test_exchange.c) */
  ASSERT_EQ(raw_unary(fx.uri, "DoExchange", NULL, &arrow__flight__protocol__empty__descriptor, &m,
                      &n, &err),
            EINVAL);
  ASSERT_TRUE(strstr(err.message, "DoExchange") != NULL);
  wg_fx_server_stop(&fx);
}

/* A google.protobuf.Any (packed as Flight's Action, which has its wire shape) of type_url. */
static void pack_any(const char *type_url, const char *value, uint8_t *out, size_t *len) {
  Arrow__Flight__Protocol__Action any = ARROW__FLIGHT__PROTOCOL__ACTION__INIT;
  any.type = (char *)type_url;
  any.body.data = (uint8_t *)value;
  any.body.len = strlen(value);
  *len = arrow__flight__protocol__action__pack(&any, out);
}

static void flight_sql_commands_are_unimplemented_naming_the_command(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_error err;
  uint8_t any[256];
  size_t len;
  /* CommandStatementSubstraitPlan { } : a Flight SQL command this server does not serve */
  pack_any("type.googleapis.com/arrow.flight.protocol.sql.CommandStatementSubstraitPlan", "",
           any, &len);
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
  d.cmd.data = any;
  d.cmd.len = len;
  ProtobufCMessage *m = NULL;
  int n = 0;
  const char *rpcs[] = {"GetFlightInfo", "PollFlightInfo", "GetSchema"};
  for (size_t i = 0; i < 3; i++) {
    ASSERT_EQ(raw_unary(fx.uri, rpcs[i], &d.base, &arrow__flight__protocol__flight_info__descriptor,
                        &m, &n, &err),
              ENOTSUP);
    ASSERT_TRUE(strstr(err.message, "Flight SQL command CommandStatementSubstraitPlan") != NULL);
    ASSERT_TRUE(strstr(err.message, rpcs[i]) != NULL);
  }
  /* CommandStatementQuery { query: "SELECT 1" } is served */
  pack_any("type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery",
           "\x0a\x08SELECT 1", any, &len);
  d.cmd.len = len;
  ASSERT_OK(raw_unary(fx.uri, "GetSchema", &d.base,
                      &arrow__flight__protocol__schema_result__descriptor, &m, &n, &err),
            &err);
  if (m != NULL) protobuf_c_message_free_unpacked(m, NULL);
  m = NULL;
  /* a ticket whose handle is not one this server made is INVALID_ARGUMENT */
  pack_any("type.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery", "\x0a\x01x", any,
           &len);
  Arrow__Flight__Protocol__Ticket t = ARROW__FLIGHT__PROTOCOL__TICKET__INIT;
  t.ticket.data = any;
  t.ticket.len = len;
  ASSERT_EQ(raw_unary(fx.uri, "DoGet", &t.base, &arrow__flight__protocol__flight_data__descriptor,
                      &m, &n, &err),
            EINVAL);
  ASSERT_TRUE(strstr(err.message, "TicketStatementQuery") != NULL);
  /* an Any of another type is SQL text, and fails as SQL does */
  pack_any("type.googleapis.com/google.protobuf.StringValue", "SELECT 1", any, &len);
  d.cmd.len = len;
  ASSERT_EQ(raw_unary(fx.uri, "GetSchema", &d.base,
                      &arrow__flight__protocol__schema_result__descriptor, &m, &n, &err),
            EINVAL);
  ASSERT_TRUE(strstr(err.message, "Flight SQL") == NULL);
  /* SQL text that starts with a newline (0x0A, as an Any does) is still SQL */
  t.ticket.data = (uint8_t *)"\nSELECT 42 AS answer";
  t.ticket.len = strlen((char *)t.ticket.data);
  m = NULL;
  ASSERT_OK(raw_unary(fx.uri, "DoGet", &t.base, &arrow__flight__protocol__flight_data__descriptor,
                      &m, &n, &err),
            &err);
  ASSERT_EQ(n, 2); /* schema, one batch */
  if (m != NULL) protobuf_c_message_free_unpacked(m, NULL);
  wg_fx_server_stop(&fx);
}

static void actions_execute_drop_checkpoint_and_stats(void) {
  char dir[256], db[300];
  ASSERT_EQ(wg_fx_tmpdir(dir, sizeof(dir)), 0);
  snprintf(db, sizeof(db), "%s/a.duckdb", dir);
  struct wg_fx_server fx;
  struct wg_server_options o = {.db_path = db, .threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  struct wg_buf out;
  wg_buf_init(&out);
  const char *sql = "CREATE TABLE t AS SELECT range AS i FROM range(10)";
  ASSERT_OK(wg_fx_action(c, "execute", sql, strlen(sql), &out, &ws), ws.message);
  out.size = 0;
  sql = "DELETE FROM t WHERE i < 4";
  ASSERT_OK(wg_fx_action(c, "execute", sql, strlen(sql), &out, &ws), ws.message);
  ASSERT_STREQ((char *)out.data, "{\"rows_changed\":4}");
  out.size = 0;
  ASSERT_OK(wg_fx_action(c, "checkpoint", "", 0, &out, &ws), ws.message);
  out.size = 0;
  ASSERT_OK(wg_fx_action(c, "stats", "", 0, &out, &ws), ws.message);
  ASSERT_TRUE(strstr((char *)out.data, "\"calls\":") != NULL);
  ASSERT_TRUE(strstr((char *)out.data, "\"active_calls\":") != NULL);
  ASSERT_TRUE(strstr((char *)out.data, "\"errors\":0") != NULL);
  out.size = 0;
  ASSERT_OK(wg_fx_action(c, "drop_table", "t", 1, &out, &ws), ws.message);
  int64_t n;
  ASSERT_EQ(wg_fx_query_i64(c, "SELECT count(*) FROM t", &n, &ws), ENOENT);
  ASSERT_EQ(wg_fx_action(c, "drop_table", "t", 1, &out, &ws), ENOENT);
  ASSERT_EQ(wg_fx_action(c, "frobnicate", "", 0, &out, &ws), ENOTSUP);
  ASSERT_TRUE(strstr(ws.message, "frobnicate") != NULL);
  wg_buf_reset(&out);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
  wg_fx_rmdir(dir);
}

/* ---- group commit ---- */

struct pk_writer_arg {
  const char *uri;
  int id, dup_of; /* dup_of >= 0: every put repeats that writer's keys and must fail */
  atomic_int *ok, *dup_refused, *wrong;
};

static void *pk_writer(void *p) {
  struct pk_writer_arg *a = p;
  struct wg_client *c;
  struct wg_status ws;
  if (wg_fx_connect(&c, a->uri, &ws) != 0) return NULL;
  for (int i = 0; i < 15; i++) {
    int64_t acked = 0;
    int key = (a->dup_of >= 0 ? a->dup_of : a->id) * 1000 + i;
    int rc = put_seed(c, "pk", key, 1, 1000, true, &acked, &ws); /* ids key*1000 .. +999 */
    if (a->dup_of < 0 && rc == 0 && acked == 1000)
      atomic_fetch_add(a->ok, 1);
    else if (a->dup_of >= 0 && rc == EEXIST && acked == 0)
      atomic_fetch_add(a->dup_refused, 1);
    else if (!(a->dup_of >= 0 && rc == 0)) { /* a duplicate may win the race to commit first */
      fprintf(stderr, "writer %d put %d: rc %d acked %lld: %s\n", a->id, i, rc, (long long)acked,
              ws.message);
      atomic_fetch_add(a->wrong, 1);
    }
    if (a->dup_of >= 0 && rc == 0) atomic_fetch_add(a->dup_refused, 100); /* marks the race */
  }
  wg_disconnect(c);
  return NULL;
}

static void group_commit_scenario(int committers) {
  char dir[256], db[300];
  ASSERT_EQ(wg_fx_tmpdir(dir, sizeof(dir)), 0);
  snprintf(db, sizeof(db), "%s/group.duckdb", dir);
  struct wg_fx_server fx;
  struct wg_server_options o = {.db_path = db, .threads = 8, .committers = committers};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  const char *ddl = "CREATE TABLE pk (id BIGINT PRIMARY KEY, value DOUBLE)";
  ASSERT_OK(wg_fx_action(c, "execute", ddl, strlen(ddl), NULL, &ws), ws.message);
  /* writer 0 puts keys first; writer 7 repeats writer 0's keys a moment later */
  atomic_int ok = 0, dup_refused = 0, wrong = 0;
  enum { W = 8 };
  pthread_t t[W];
  struct pk_writer_arg a[W];
  for (int i = 0; i < W; i++) {
    a[i] = (struct pk_writer_arg){fx.uri, i, i == W - 1 ? 0 : -1, &ok, &dup_refused, &wrong};
    /* writer 7 starts once writer 0's keys are committed (a fixed delay lost that race on a
     * slow machine, and then writer 0's puts were the refused ones); it still puts while
     * writers 1..6 do, so its bad puts share groups with good ones */
    if (i == W - 1) pthread_join(t[0], NULL);
    pthread_create(&t[i], NULL, pk_writer, &a[i]);
  }
  for (int i = 1; i < W; i++)
    pthread_join(t[i], NULL);
  ASSERT_EQ(atomic_load(&wrong), 0);
  ASSERT_EQ(atomic_load(&ok), (W - 1) * 15);
  ASSERT_EQ(atomic_load(&dup_refused), 15); /* every duplicate put refused, none won */
  int64_t n;
  ASSERT_OK(wg_fx_query_i64(c, "SELECT count(*) FROM pk", &n, &ws), ws.message);
  ASSERT_EQ(n, (W - 1) * 15 * 1000);
  struct wg_buf out;
  wg_buf_init(&out);
  ASSERT_OK(wg_fx_action(c, "stats", "", 0, &out, &ws), ws.message);
  const char *g = strstr((char *)out.data, "\"commit_groups\":");
  const char *gp = strstr((char *)out.data, "\"grouped_puts\":");
  ASSERT_TRUE(g != NULL && gp != NULL);
  long long groups = atoll(g + 16), grouped = atoll(gp + 15);
  fprintf(stderr, "  %lld puts committed in %lld groups\n", grouped, groups);
  ASSERT_TRUE(grouped >= (W - 1) * 15);
  wg_buf_reset(&out);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
  wg_fx_rmdir(dir);
}

static void group_commit_commits_puts_together_and_a_bad_put_fails_alone(void) {
  group_commit_scenario(1);
}

static void two_group_committers_commit_every_put_once_and_a_bad_put_fails_alone(void) {
  group_commit_scenario(2);
}

/* ---- errors ---- */

static void duckdb_errors_map_to_grpc_codes_with_duckdb_messages(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  int64_t n;
  ASSERT_EQ(wg_fx_query_i64(c, "SELEC 1", &n, &ws), EINVAL); /* INVALID_ARGUMENT */
  ASSERT_TRUE(strstr(ws.message, "Parser Error") != NULL);
  ASSERT_EQ(wg_fx_query_i64(c, "SELECT * FROM missing_table", &n, &ws), ENOENT); /* NOT_FOUND */
  ASSERT_TRUE(strstr(ws.message, "missing_table") != NULL);
  ASSERT_EQ(wg_fx_query_i64(c, "SELECT 'abc'::INTEGER", &n, &ws), EINVAL);
  const char *ddl = "CREATE TABLE pk (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)";
  ASSERT_OK(wg_fx_action(c, "execute", ddl, strlen(ddl), NULL, &ws), ws.message);
  const char *ins = "INSERT INTO pk VALUES (1, 1)";
  ASSERT_OK(wg_fx_action(c, "execute", ins, strlen(ins), NULL, &ws), ws.message);
  ASSERT_EQ(wg_fx_action(c, "execute", ins, strlen(ins), NULL, &ws), EEXIST);
  ASSERT_TRUE(strstr(ws.message, "Constraint Error") != NULL);
  const char *nn = "INSERT INTO pk VALUES (2, NULL)";
  ASSERT_EQ(wg_fx_action(c, "execute", nn, strlen(nn), NULL, &ws), EPERM);
  ASSERT_TRUE(strstr(ws.message, "NOT NULL") != NULL);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

struct updater_arg {
  const char *uri;
  atomic_int *conflicts, *others;
};

static void *updater(void *p) {
  struct updater_arg *a = p;
  struct wg_client *c;
  struct wg_status ws;
  if (wg_fx_connect(&c, a->uri, &ws) != 0) return NULL;
  const char *sql = "UPDATE counter SET v = v + 1 WHERE id = 1";
  for (int i = 0; i < 300 && atomic_load(a->conflicts) == 0; i++) {
    int rc = wg_fx_action(c, "execute", sql, strlen(sql), NULL, &ws);
    if (rc == EAGAIN) {
      if (strstr(ws.message, "onflict") == NULL) atomic_fetch_add(a->others, 1);
      atomic_fetch_add(a->conflicts, 1);
    } else if (rc != 0) {
      fprintf(stderr, "update: %d %s\n", rc, ws.message);
      atomic_fetch_add(a->others, 1);
    }
  }
  wg_disconnect(c);
  return NULL;
}

static void write_conflicts_are_aborted_and_memory_limits_resource_exhausted(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 4, .memory_limit = "64MB"};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  const char *ddl = "CREATE TABLE counter AS SELECT 1 AS id, 0 AS v";
  ASSERT_OK(wg_fx_action(c, "execute", ddl, strlen(ddl), NULL, &ws), ws.message);
  /* Concurrent updates of one row: DuckDB refuses the later writer (ABORTED: retry it). */
  atomic_int conflicts = 0, others = 0;
  pthread_t t[4];
  struct updater_arg a = {fx.uri, &conflicts, &others};
  for (int i = 0; i < 4; i++)
    pthread_create(&t[i], NULL, updater, &a);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  ASSERT_EQ(atomic_load(&others), 0);
  ASSERT_TRUE(atomic_load(&conflicts) > 0);
  /* A query that needs more than the 64 MB limit: RESOURCE_EXHAUSTED (EBUSY here). */
  int64_t n;
  int rc =
      wg_fx_query_i64(c, "SELECT len(list(i ORDER BY i DESC)) FROM range(50000000) t(i)", &n, &ws);
  ASSERT_EQ(rc, EBUSY);
  ASSERT_TRUE(strstr(ws.message, "Out of Memory") != NULL);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

static void put_with_mismatched_schema_is_refused_and_keeps_nothing(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  /* events.value is DOUBLE; a kv-shaped stream into a table whose "value" is a DATE */
  const char *ddl = "CREATE TABLE typed (id BIGINT, value DATE)";
  ASSERT_OK(wg_fx_action(c, "execute", ddl, strlen(ddl), NULL, &ws), ws.message);
  int64_t acked = 0;
  ASSERT_EQ(put_seed(c, "typed", 0, 3, 100, true, &acked, &ws), EINVAL);
  ASSERT_TRUE(strstr(ws.message, "value") != NULL);
  ASSERT_TRUE(strstr(ws.message, "DATE") != NULL);
  ASSERT_TRUE(strstr(ws.message, "DOUBLE") != NULL);
  ASSERT_EQ(acked, 0);
  int64_t n = -1;
  ASSERT_OK(wg_fx_query_i64(c, "SELECT count(*) FROM typed", &n, &ws), ws.message);
  ASSERT_EQ(n, 0);
  /* a column the table does not have */
  ddl = "CREATE TABLE narrow (id BIGINT)";
  ASSERT_OK(wg_fx_action(c, "execute", ddl, strlen(ddl), NULL, &ws), ws.message);
  ASSERT_EQ(put_seed(c, "narrow", 0, 1, 10, true, &acked, &ws), EINVAL);
  ASSERT_TRUE(strstr(ws.message, "value") != NULL);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

static void malformed_frames_end_the_call_and_leave_the_server_serving(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_error err;
  struct wg_status ws;
  struct wg_rpc_channel *ch;
  ASSERT_OK(wg_rpc_channel_create(&ch, fx.uri, &err), &err);
  const char *garbage[] = {
      "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", /* bad varint */
      "\x12\x7f\x01",                                 /* data_header longer than the message */
      "\x0a\x02\x08\x01\x12\x08\x01\x02\x03\x04\x05\x06\x07\x08", /* descriptor, junk header */
  };
  for (size_t i = 0; i < 3; i++) {
    struct wg_rpc_client_call *call;
    ASSERT_OK(wg_rpc_client_call_start(ch, WG_FLIGHT_SERVICE "DoPut", 10000, NULL, &call, &err),
              &err);
    wg_rpc_client_call_send(call, wg_rpc_buffer_from_copy(garbage[i], strlen(garbage[i])));
    wg_rpc_client_call_close_send(call);
    grpc_byte_buffer *bb = NULL;
    while (wg_rpc_client_call_recv(call, &bb) == 0 && bb != NULL)
      grpc_byte_buffer_destroy(bb);
    grpc_status_code code;
    ASSERT_EQ(wg_rpc_client_call_finish(call, &code, &err), EINVAL);
    ASSERT_EQ(code, GRPC_STATUS_INVALID_ARGUMENT);
    wg_rpc_client_call_destroy(call);
  }
  /* a DoGet ticket that is not a Ticket message */
  struct wg_rpc_client_call *call;
  ASSERT_OK(wg_rpc_client_call_start(ch, WG_FLIGHT_SERVICE "DoGet", 10000, NULL, &call, &err),
            &err);
  wg_rpc_client_call_send(call, wg_rpc_buffer_from_copy("\x0a\xff", 2));
  wg_rpc_client_call_close_send(call);
  grpc_status_code code;
  ASSERT_NE(wg_rpc_client_call_finish(call, &code, &err), 0);
  ASSERT_EQ(code, GRPC_STATUS_INVALID_ARGUMENT);
  wg_rpc_client_call_destroy(call);
  wg_rpc_channel_destroy(ch);
  struct wg_client *c;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  int64_t n;
  ASSERT_OK(wg_fx_query_i64(c, "SELECT 41 + 1", &n, &ws), ws.message);
  ASSERT_EQ(n, 42);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

static void remote_sql_cannot_touch_files_or_settings_by_default(void) {
  char dir[256], csv[300], sql[600];
  ASSERT_EQ(wg_fx_tmpdir(dir, sizeof(dir)), 0);
  snprintf(csv, sizeof(csv), "%s/data.csv", dir);
  FILE *f = fopen(csv, "w");
  fputs("a,b\n1,2\n3,4\n", f);
  fclose(f);
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  int64_t n;
  const char *refused[] = {
      "SELECT count(*) FROM read_csv('/etc/passwd')",
      "COPY (SELECT 1) TO '/tmp/wigeon-should-not-exist.csv'",
      "ATTACH '/tmp/wigeon-should-not-exist.duckdb' AS other",
      "INSTALL httpfs",
      "LOAD httpfs",
      "SET enable_external_access = true",
      "SET lock_configuration = false",
  };
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    int rc = wg_fx_query_i64(c, refused[i], &n, &ws);
    if (rc == 0) TEST_FAIL_("allowed by default: %s", refused[i]);
    ASSERT_NE(rc, 0);
  }
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM read_csv('%s')", csv);
  ASSERT_NE(wg_fx_query_i64(c, sql, &n, &ws), 0);
  ASSERT_TRUE(access("/tmp/wigeon-should-not-exist.csv", F_OK) != 0);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
  /* --allow-external-access opens it */
  o.allow_external_access = true;
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  ASSERT_OK(wg_fx_query_i64(c, sql, &n, &ws), ws.message);
  ASSERT_EQ(n, 2);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
  wg_fx_rmdir(dir);
}

/* ---- cancellation and the worker queue ---- */

static const char *long_query = "SELECT count(*) FROM range(100000000000) t(i) WHERE i % 7 = 3";

static int64_t active_calls(struct wg_client *c) {
  struct wg_buf out;
  wg_buf_init(&out);
  struct wg_status ws;
  int64_t v = -1;
  if (wg_fx_action(c, "stats", "", 0, &out, &ws) == 0) {
    const char *p = strstr((char *)out.data, "\"active_calls\":");
    if (p != NULL) v = atoll(p + 15);
  }
  wg_buf_reset(&out);
  return v;
}

static void cancelled_or_expired_queries_stop_on_the_server(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c, *watcher;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  ASSERT_OK(wg_fx_connect(&watcher, fx.uri, &ws), ws.message);
  /* deadline: a client whose calls have 300 ms */
  struct wg_client *hurried;
  ASSERT_OK(wg_fx_connect_timeout(&hurried, fx.uri, 300, &ws), ws.message);
  int64_t n;
  int rc = wg_fx_query_i64(hurried, long_query, &n, &ws);
  wg_disconnect(hurried);
  ASSERT_TRUE(rc == ETIMEDOUT || rc == ECANCELED);
  /* cancel: open the stream, let it start, release it */
  struct ArrowArrayStream st;
  ASSERT_OK(wg_query(c, long_query, &st, &ws), ws.message);
  sleep_ms(300);
  wg_stream_release(&st);
  /* the server's handlers return: only the stats call itself stays active */
  int64_t active = -1;
  for (int i = 0; i < 100; i++) {
    active = active_calls(watcher);
    if (active == 1) break;
    sleep_ms(100);
  }
  ASSERT_EQ(active, 1);
  ASSERT_OK(wg_fx_query_i64(c, "SELECT 7", &n, &ws), ws.message);
  ASSERT_EQ(n, 7);
  wg_disconnect(c);
  wg_disconnect(watcher);
  wg_fx_server_stop(&fx);
}

struct slow_arg {
  const char *uri;
  int rc;
};

static void *slow_query(void *p) {
  struct slow_arg *a = p;
  struct wg_client *c;
  struct wg_status ws;
  if (wg_fx_connect_timeout(&c, a->uri, 1500, &ws) != 0) return NULL;
  int64_t n;
  a->rc = wg_fx_query_i64(c, long_query, &n, &ws);
  wg_disconnect(c);
  return NULL;
}

static void calls_beyond_workers_and_queue_get_resource_exhausted(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 1, .queue_limit = 1};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  enum { N = 4 };
  pthread_t t[N];
  struct slow_arg a[N];
  for (int i = 0; i < N; i++) {
    a[i] = (struct slow_arg){fx.uri, -1};
    pthread_create(&t[i], NULL, slow_query, &a[i]);
    sleep_ms(50);
  }
  int exhausted = 0;
  for (int i = 0; i < N; i++) {
    pthread_join(t[i], NULL);
    if (a[i].rc == ENOMEM || a[i].rc == EBUSY) exhausted++;
  }
  ASSERT_TRUE(exhausted >= 1);
  ASSERT_TRUE(exhausted <= N - 1);
  wg_fx_server_stop(&fx);
}

static void a_transaction_left_open_by_a_client_is_rolled_back_after_its_call(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 1}; /* every call shares the one connection */
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  int64_t n, rows, batches;
  wg_fx_query_count(c, "BEGIN TRANSACTION", &rows, &batches, &ws);
  const char *sql = "BEGIN; CREATE TABLE t AS SELECT 1 AS x";
  ASSERT_OK(wg_fx_action(c, "execute", sql, strlen(sql), NULL, &ws), ws.message);
  /* neither left a transaction behind: a put works and its data is committed */
  int64_t acked;
  ASSERT_OK(put_seed(c, "after", 0, 1, 100, true, &acked, &ws), ws.message);
  ASSERT_OK(wg_fx_query_i64(c, "SELECT count(*) FROM after", &n, &ws), ws.message);
  ASSERT_EQ(n, 100);
  ASSERT_EQ(wg_fx_query_i64(c, "SELECT count(*) FROM t", &n, &ws), ENOENT); /* rolled back */
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

/* One client's temp table, search_path or variable must not reach the next client's calls on the
 * same pooled connection, nor redirect a put into a shadowing temp table. */
static void session_state_of_one_call_does_not_reach_the_next(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 1}; /* every call shares the one connection */
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *a, *b;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&a, fx.uri, &ws), ws.message);
  ASSERT_OK(wg_fx_connect(&b, fx.uri, &ws), ws.message);
  int64_t acked, n;
  ASSERT_OK(put_seed(a, "events", 0, 1, 100, true, &acked, &ws), ws.message);
  const char *sql = "CREATE TEMP TABLE events AS SELECT 1 AS secret; SET VARIABLE v = 1";
  ASSERT_OK(wg_fx_action(a, "execute", sql, strlen(sql), NULL, &ws), ws.message);
  ASSERT_OK(wg_fx_query_i64(b, "SELECT count(*) FROM duckdb_tables() WHERE temporary", &n, &ws),
            ws.message);
  ASSERT_EQ(n, 0);
  ASSERT_OK(wg_fx_query_i64(b, "SELECT (getvariable('v') IS NULL)::INTEGER", &n, &ws), ws.message);
  ASSERT_EQ(n, 1);
  ASSERT_OK(put_seed(b, "events", 1, 1, 100, true, &acked, &ws), ws.message); /* into main.events */
  ASSERT_OK(wg_fx_query_i64(b, "SELECT count(*) FROM events", &n, &ws), ws.message);
  ASSERT_EQ(n, 200);
  wg_disconnect(a);
  wg_disconnect(b);
  wg_fx_server_stop(&fx);
}

static void an_idle_client_is_cut_off_and_frees_its_worker(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 1, .idle_timeout_ms = 500};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_error err;
  struct wg_status ws;
  struct wg_rpc_channel *ch;
  ASSERT_OK(wg_rpc_channel_create(&ch, fx.uri, &err), &err);
  struct wg_rpc_client_call *call; /* a DoPut that never sends anything */
  ASSERT_OK(wg_rpc_client_call_start(ch, WG_FLIGHT_SERVICE "DoPut", 20000, NULL, &call, &err),
            &err);
  grpc_status_code code;
  ASSERT_NE(wg_rpc_client_call_finish(call, &code, &err), 0);
  ASSERT_EQ(code, GRPC_STATUS_DEADLINE_EXCEEDED);
  ASSERT_TRUE(strstr(err.message, "idle") != NULL);
  wg_rpc_client_call_destroy(call);
  wg_rpc_channel_destroy(ch);
  /* the single worker is free again */
  struct wg_client *c;
  ASSERT_OK(wg_fx_connect_timeout(&c, fx.uri, 5000, &ws), ws.message);
  int64_t n;
  ASSERT_OK(wg_fx_query_i64(c, "SELECT 5", &n, &ws), ws.message);
  ASSERT_EQ(n, 5);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

/* ---- serve's flags and defaults ---- */

/* Runs build/wigeon with args (a shell-quoted string), stdout and stderr together into out
 * (malloc'ed); returns the exit code, or -1. */
static int run_wigeon(const char *args, char **out) {
  const char *build = getenv("WG_BUILD_DIR");
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "%s/wigeon %s 2>&1", build ? build : "build", args);
  FILE *p = popen(cmd, "r");
  if (p == NULL) return -1;
  size_t cap = 1 << 16, n = 0;
  *out = malloc(cap);
  size_t got;
  while (*out != NULL && (got = fread(*out + n, 1, cap - 1 - n, p)) > 0)
    n += got;
  if (*out != NULL) (*out)[n] = '\0';
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The "(default: ...)" text --help shows for flag, NUL-terminated in buf; false if none. */
static bool help_default(const char *help, const char *flag, char *buf, size_t size) {
  char head[64];
  snprintf(head, sizeof(head), "\n  %s", flag);
  const char *at = strstr(help, head);
  while (at != NULL && at[strlen(head)] != ' ' && at[strlen(head)] != '\n')
    at = strstr(at + 1, head);
  if (at == NULL) return false;
  const char *next = strstr(at + 1, "\n  -");
  const char *d = strstr(at, "(default: ");
  if (d == NULL || (next != NULL && d > next)) return false;
  d += strlen("(default: ");
  const char *end = strstr(d, ")\n");
  if (end == NULL || (size_t)(end - d) >= size) return false;
  memcpy(buf, d, (size_t)(end - d));
  buf[end - d] = '\0';
  return true;
}

static void serve_help_shows_the_defaults_the_server_uses_and_bad_flags_exit_1(void) {
  struct wg_server_options d;
  wg_server_options_default(&d);
  /* A server started with nothing said uses exactly those defaults (grace 0 is "no grace"). */
  struct wg_server_options zero = {.db_path = ":memory:", .listen = "127.0.0.1:0"};
  struct wg_server *s;
  struct wg_error err;
  int port = 0;
  ASSERT_OK(wg_server_start(&s, &zero, &port, &err), &err);
  const struct wg_server_options *u = &s->options;
  ASSERT_EQ(u->threads, d.threads);
  ASSERT_EQ(u->queue_limit, d.queue_limit);
  ASSERT_EQ(u->acquire_timeout_ms, d.acquire_timeout_ms);
  ASSERT_EQ(u->batch_rows, d.batch_rows);
  ASSERT_EQ(u->batch_bytes, d.batch_bytes);
  ASSERT_EQ(u->max_message_bytes, d.max_message_bytes);
  ASSERT_EQ(u->idle_timeout_ms, d.idle_timeout_ms);
  ASSERT_EQ(u->group_commit_bytes, d.group_commit_bytes);
  ASSERT_EQ(u->committers, d.committers);
  ASSERT_EQ(u->disk_reserve, d.disk_reserve);
  ASSERT_EQ(u->idempotency_window_s, d.idempotency_window_s);
  ASSERT_STREQ(u->checkpoint_threshold, d.checkpoint_threshold);
  ASSERT_EQ(u->max_sql_bytes, d.max_sql_bytes);
  ASSERT_EQ(u->max_columns, d.max_columns);
  ASSERT_EQ(u->max_sessions, d.max_sessions);
  ASSERT_EQ(u->session_idle_timeout_ms, d.session_idle_timeout_ms);
  ASSERT_EQ(u->max_connections, 0); /* computed by the rpc layer at start */
  ASSERT_EQ(u->duckdb_threads, 0);  /* DuckDB's: one per core */
  ASSERT_TRUE(u->memory_limit == NULL);
  ASSERT_OK(wg_server_stop(s, &err), &err);

  /* --help lists every flag with that default. */
  char *help = NULL;
  ASSERT_EQ(run_wigeon("serve --help", &help), 0);
  ASSERT_TRUE(help != NULL);
  char listen[96], num[16][32];
  snprintf(listen, sizeof(listen), "grpc://%s", d.listen);
  int64_t nums[] = {d.threads,
                    d.queue_limit,
                    d.batch_rows,
                    d.batch_bytes,
                    d.grace_ms / 1000,
                    d.idle_timeout_ms / 1000,
                    d.group_commit_bytes >> 20,
                    d.committers,
                    d.idempotency_window_s / 3600,
                    d.max_sql_bytes,
                    d.max_columns,
                    d.acquire_timeout_ms / 1000,
                    d.max_sessions,
                    d.session_idle_timeout_ms / 1000,
                    d.keepalive_ms / 1000};
  for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
    snprintf(num[i], sizeof(num[i]), "%lld", (long long)nums[i]);
  char reserve[32];
  snprintf(reserve, sizeof(reserve), "%lldMB", (long long)(d.disk_reserve >> 20));
  const struct {
    const char *flag, *shown;
  } want[] = {{"--db", d.db_path},
              {"--listen", listen},
              {"--tls-cert", "plaintext"},
              {"--tls-key", "none"},
              {"--tls-client-ca", "no client certificates"},
              {"--threads", num[0]},
              {"--queue", num[1]},
              {"--max-connections", "the open-file limit less 128, at most 4096"},
              {"--batch-rows", num[2]},
              {"--batch-bytes", num[3]},
              {"--grace", num[4]},
              {"--idle-timeout", num[5]},
              {"--keepalive", num[14]},
              {"--acquire-timeout", num[11]},
              {"--group-commit-mb", num[6]},
              {"--committers", num[7]},
              {"--checkpoint-threshold", d.checkpoint_threshold},
              {"--disk-reserve", reserve},
              {"--idempotency-window", num[8]},
              {"--memory-limit", "DuckDB's, 80% of RAM"},
              {"--duckdb-threads", "one per core"},
              {"--max-sql-bytes", num[9]},
              {"--max-columns", num[10]},
              {"--max-sessions", num[12]},
              {"--session-idle-timeout", num[13]},
              {"--max-message-bytes", "256 MiB"},
              {"--query-timeout", "none"},
              {"--max-calls-per-user", "no limit"},
              {"--tail-buffer-mb", "16"},
              {"--tail-history-mb", "64"},
              {"--max-tails", "1024"},
              {"--allow-external-access", "refused"},
              {"--users", "none: everyone is admin, on a loopback address only"},
              {"--token-ttl", "3600"},
              {"--insecure-no-auth", "refused"}};
  size_t n_want = sizeof(want) / sizeof(want[0]);
  for (size_t i = 0; i < n_want; i++) {
    char shown[128] = "";
    if (!help_default(help, want[i].flag, shown, sizeof(shown)))
      fprintf(stderr, "  --help shows no default for %s\n", want[i].flag);
    ASSERT_STREQ(shown, want[i].shown);
  }
  size_t listed = 0; /* and lists no flag this test does not know */
  for (const char *at = strstr(help, "\n  --"); at != NULL; at = strstr(at + 1, "\n  --"))
    listed++;
  ASSERT_EQ(listed, n_want);
  free(help);

  /* an unknown flag, a missing value and a bad number: exit 1 (WG_EXIT_USAGE), saying which */
  const struct {
    const char *args, *says;
  } bad[] = {{"serve --bogus", "unknown option '--bogus'"},
             {"serve --threads", "--threads needs a value"},
             {"serve --threads many", "--threads wants a whole number from 1 to"},
             {"serve --grace -1", "--grace wants a whole number from 0 to"},
             {"serve --batch-bytes 12", "--batch-bytes wants a whole number from 1024 to"},
             {"serve --disk-reserve 12XB", "--disk-reserve wants a size such as 64MB"},
             {"serve extra", "unexpected argument 'extra'"}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *out = NULL;
    ASSERT_EQ(run_wigeon(bad[i].args, &out), 1);
    ASSERT_TRUE(out != NULL && strstr(out, bad[i].says) != NULL);
    ASSERT_TRUE(strstr(out, "usage: wigeon serve") != NULL);
    free(out);
  }
}

/* ---- the binary: durability, SIGTERM, memory ---- */

static void acknowledged_puts_survive_kill_9(void) {
  char dir[256], db[300];
  ASSERT_EQ(wg_fx_tmpdir(dir, sizeof(dir)), 0);
  snprintf(db, sizeof(db), "%s/durable.duckdb", dir);
  /* two committers and one DuckDB thread: the flags reach the server, acked puts still survive */
  const char *args[] = {"--db", db,  "--threads", "2", "--committers", "2", "--duckdb-threads",
                        "1",    NULL};
  struct wg_fx_process p;
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, p.uri, &ws), ws.message);
  int64_t threads = 0;
  ASSERT_OK(wg_fx_query_i64(c, "SELECT current_setting('threads')", &threads, &ws), ws.message);
  ASSERT_EQ(threads, 1);
  int64_t total = 0;
  for (int i = 0; i < 10; i++) {
    int64_t acked = 0;
    ASSERT_OK(put_seed(c, "events", i, 2, 1000, false, &acked, &ws), ws.message);
    total += acked;
  }
  wg_disconnect(c);
  ASSERT_EQ(total, 20000);
  int st = wg_fx_process_stop(&p, SIGKILL);
  ASSERT_TRUE(WIFSIGNALED(st));
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  ASSERT_OK(wg_fx_connect(&c, p.uri, &ws), ws.message);
  int64_t n = -1;
  ASSERT_OK(wg_fx_query_i64(c, "SELECT count(*) FROM events", &n, &ws), ws.message);
  ASSERT_EQ(n, total);
  wg_disconnect(c);
  st = wg_fx_process_stop(&p, SIGTERM);
  ASSERT_TRUE(WIFEXITED(st));
  ASSERT_EQ(WEXITSTATUS(st), 0);
  wg_fx_rmdir(dir);
}

static void sigterm_exits_zero_and_keeps_the_data(void) {
  char dir[256], db[300];
  ASSERT_EQ(wg_fx_tmpdir(dir, sizeof(dir)), 0);
  snprintf(db, sizeof(db), "%s/term.duckdb", dir);
  const char *args[] = {"--db", db, NULL};
  struct wg_fx_process p;
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, p.uri, &ws), ws.message);
  int64_t acked;
  ASSERT_OK(put_seed(c, "kept", 0, 3, 1000, true, &acked, &ws), ws.message);
  wg_disconnect(c);
  int st = wg_fx_process_stop(&p, SIGTERM);
  ASSERT_TRUE(WIFEXITED(st));
  ASSERT_EQ(WEXITSTATUS(st), 0);
  /* checkpointed on the way out: no WAL left behind */
  char wal[320];
  snprintf(wal, sizeof(wal), "%s.wal", db);
  ASSERT_TRUE(access(wal, F_OK) != 0);
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  ASSERT_OK(wg_fx_connect(&c, p.uri, &ws), ws.message);
  int64_t n;
  ASSERT_OK(wg_fx_query_i64(c, "SELECT count(*) FROM kept", &n, &ws), ws.message);
  ASSERT_EQ(n, 3000);
  wg_disconnect(c);
  st = wg_fx_process_stop(&p, SIGINT);
  ASSERT_TRUE(WIFEXITED(st));
  ASSERT_EQ(WEXITSTATUS(st), 0);
  wg_fx_rmdir(dir);
}

static void twenty_million_row_doget_keeps_server_memory_bounded(void) {
  const char *args[] = {"--db", ":memory:", "--threads", "2", NULL};
  struct wg_fx_process p;
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, p.uri, &ws), ws.message);
  int64_t n;
  ASSERT_OK(wg_fx_query_i64(c, "SELECT 1", &n, &ws), ws.message);
  int64_t before = wg_fx_process_kib(p.pid, "VmRSS");
  int64_t rows = 0, batches = 0;
  ASSERT_OK(wg_fx_query_count(c,
                              "SELECT i, i * 2 AS j, 'row ' || (i % 1000) AS s, i / 3.0 AS d "
                              "FROM range(20000000) t(i)",
                              &rows, &batches, &ws),
            ws.message);
  int64_t peak = wg_fx_process_kib(p.pid, "VmHWM");
  ASSERT_EQ(rows, 20000000);
  fprintf(stderr, "  20M rows in %lld batches; server RSS before %lld MiB, peak %lld MiB\n",
          (long long)batches, (long long)before / 1024, (long long)peak / 1024);
  /* The result is ~640 MB of Arrow data: the server must stream it, not hold it. Under ASan freed
   * memory sits in a quarantine of up to 256 MiB, so the bound is looser there. */
  ASSERT_TRUE(peak - before < (sanitized() ? 1024 : 300) * 1024);
  wg_disconnect(c);
  wg_fx_process_stop(&p, SIGTERM);
}

/* A raw DoGet of `sql` with the header wigeon-compression: codec (NULL: none). Decodes every
 * FlightData with our IPC decoder; *bytes the FlightData bytes received, *rows and *sum the rows
 * and the sum of column 0 (int64). Returns the call's status (code in *code). */
static int raw_get(const char *uri, const char *sql, const char *codec, int64_t *bytes,
                   int64_t *rows, int64_t *sum, grpc_status_code *code, struct wg_error *err) {
  *bytes = *rows = *sum = 0;
  struct wg_rpc_channel *ch;
  WG_RETURN_NOT_OK(wg_rpc_channel_create(&ch, uri, err));
  const char *md[] = {"wigeon-compression", codec, NULL};
  struct wg_rpc_client_call *call;
  int rc = wg_rpc_client_call_start(ch, WG_FLIGHT_SERVICE "DoGet", 30000,
                                    codec != NULL ? md : NULL, &call, err);
  if (rc != 0) {
    wg_rpc_channel_destroy(ch);
    return rc;
  }
  Arrow__Flight__Protocol__Ticket t = ARROW__FLIGHT__PROTOCOL__TICKET__INIT;
  t.ticket.data = (uint8_t *)sql;
  t.ticket.len = strlen(sql);
  grpc_byte_buffer *bb;
  if (wg_flight_pack(&t.base, &bb, err) == 0) wg_rpc_client_call_send(call, bb);
  wg_rpc_client_call_close_send(call);
  struct wg_ipc_decoder *dec = NULL;
  int decode_rc = wg_ipc_decoder_create(&dec, NULL, err);
  for (;;) {
    grpc_byte_buffer *r = NULL;
    if (wg_rpc_client_call_recv(call, &r) != 0 || r == NULL) break;
    *bytes += (int64_t)grpc_byte_buffer_length(r);
    struct wg_flight_data fd;
    wg_flight_data_init(&fd);
    if (decode_rc == 0) decode_rc = wg_flight_data_decode(r, &fd, err);
    grpc_byte_buffer_destroy(r);
    struct ArrowArray a = {0};
    enum wg_ipc_message_type type;
    if (decode_rc == 0)
      decode_rc = wg_ipc_decoder_decode(dec, fd.data_header, fd.body, &type, &a, err);
    if (decode_rc == 0 && type == WG_IPC_MESSAGE_RECORD_BATCH) {
      const struct ArrowArray *c0 = a.children[0];
      for (int64_t i = 0; i < c0->length; i++) {
        int64_t v;
        memcpy(&v, (const uint8_t *)c0->buffers[1] + 8 * (c0->offset + i), 8);
        *sum += v;
      }
      *rows += a.length;
    }
    if (a.release != NULL) a.release(&a);
    wg_flight_data_reset(&fd);
  }
  wg_ipc_decoder_destroy(dec);
  struct wg_error finish_err;
  rc = wg_rpc_client_call_finish(call, code, &finish_err);
  if (rc != 0) *err = finish_err;
  wg_rpc_client_call_destroy(call);
  wg_rpc_channel_destroy(ch);
  return rc != 0 ? rc : decode_rc;
}

static void doget_compresses_results_on_request_and_refuses_unknown_codecs(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_error err;
  const char *sql = "SELECT range AS id, 'category-' || (range % 10) AS c, range % 977 AS v "
                    "FROM range(300000)";
  const int64_t want_sum = (int64_t)300000 * 299999 / 2;
  grpc_status_code code;
  int64_t plain, bytes, rows, sum;
  ASSERT_OK(raw_get(fx.uri, sql, NULL, &plain, &rows, &sum, &code, &err), &err);
  ASSERT_EQ(rows, 300000);
  ASSERT_EQ(sum, want_sum);
  const char *codecs[] = {"zstd", "lz4", "LZ4"};
  for (size_t i = 0; i < 3; i++) {
    ASSERT_OK(raw_get(fx.uri, sql, codecs[i], &bytes, &rows, &sum, &code, &err), &err);
    ASSERT_EQ(rows, 300000);
    ASSERT_EQ(sum, want_sum);
    fprintf(stderr, "  %s: %lld of %lld bytes\n", codecs[i], (long long)bytes, (long long)plain);
    ASSERT_TRUE(bytes < plain / 2);
  }
  ASSERT_OK(raw_get(fx.uri, sql, "none", &bytes, &rows, &sum, &code, &err), &err);
  ASSERT_EQ(bytes, plain);
  ASSERT_EQ(raw_get(fx.uri, sql, "brotli", &bytes, &rows, &sum, &code, &err), EINVAL);
  ASSERT_EQ(code, GRPC_STATUS_INVALID_ARGUMENT);
  ASSERT_TRUE(strstr(err.message, "unknown codec \"brotli\"; allowed: zstd, lz4, none") != NULL);
  ASSERT_EQ(rows, 0);
  wg_fx_server_stop(&fx);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  RUN_TEST(seeds_scenario_loaders_and_readers_count_exactly);
  RUN_TEST(xorq_scenario_counts_never_decrease_nor_show_partial_puts);
  RUN_TEST(all_duckdb_types_round_trip_through_put_and_get);
  RUN_TEST(flight_info_schema_and_list_flights_describe_tables);
  RUN_TEST(poll_get_schema_list_actions_and_handshake_are_answered);
  RUN_TEST(flight_sql_commands_are_unimplemented_naming_the_command);
  RUN_TEST(actions_execute_drop_checkpoint_and_stats);
  RUN_TEST(group_commit_commits_puts_together_and_a_bad_put_fails_alone);
  RUN_TEST(two_group_committers_commit_every_put_once_and_a_bad_put_fails_alone);
  RUN_TEST(duckdb_errors_map_to_grpc_codes_with_duckdb_messages);
  RUN_TEST(write_conflicts_are_aborted_and_memory_limits_resource_exhausted);
  RUN_TEST(put_with_mismatched_schema_is_refused_and_keeps_nothing);
  RUN_TEST(malformed_frames_end_the_call_and_leave_the_server_serving);
  RUN_TEST(remote_sql_cannot_touch_files_or_settings_by_default);
  RUN_TEST(cancelled_or_expired_queries_stop_on_the_server);
  RUN_TEST(calls_beyond_workers_and_queue_get_resource_exhausted);
  RUN_TEST(a_transaction_left_open_by_a_client_is_rolled_back_after_its_call);
  RUN_TEST(session_state_of_one_call_does_not_reach_the_next);
  RUN_TEST(an_idle_client_is_cut_off_and_frees_its_worker);
  RUN_TEST(serve_help_shows_the_defaults_the_server_uses_and_bad_flags_exit_1);
  RUN_TEST(acknowledged_puts_survive_kill_9);
  RUN_TEST(sigterm_exits_zero_and_keeps_the_data);
  RUN_TEST(doget_compresses_results_on_request_and_refuses_unknown_codecs);
  RUN_TEST(twenty_million_row_doget_keeps_server_memory_bounded);
  return TEST_SUMMARY();
}
