/* wigeon: Flight SQL bulk ingest (CommandStatementIngest) end to end against a real server on
 * 127.0.0.1 with real gRPC and DuckDB: every table option, the catalog, schema, temporary and
 * transaction fields, group commit of small ingests, a big streamed one, REPLACE seen atomically
 * by a reader, idempotency keys, a bad batch that leaves nothing, strange names. Requests are
 * built from the protobuf-c message definitions and sent frame by frame over the raw rpc client. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <duckdb.h>

#include "arrow/array.h"
#include "engine/engine.h"
#include "arrow/ipc.h"
#include "flight/flight.h"
#include "proto/flight_sql.pb-c.h"
#include "rpc/rpc.h"
#include "support/server_fixture.h"
#include "test.h"

#define TDO(x) ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_INGEST__TABLE_DEFINITION_OPTIONS__##x
#define CREATE TDO(TABLE_NOT_EXIST_OPTION__TABLE_NOT_EXIST_OPTION_CREATE)
#define MISSING_FAIL TDO(TABLE_NOT_EXIST_OPTION__TABLE_NOT_EXIST_OPTION_FAIL)
#define EXISTS_FAIL TDO(TABLE_EXISTS_OPTION__TABLE_EXISTS_OPTION_FAIL)
#define APPEND TDO(TABLE_EXISTS_OPTION__TABLE_EXISTS_OPTION_APPEND)
#define REPLACE TDO(TABLE_EXISTS_OPTION__TABLE_EXISTS_OPTION_REPLACE)

/* One ingest request: what the command says and what is sent after it. */
struct ingest {
  const char *table, *schema, *catalog;
  int if_not_exist, if_exists; /* -1: no table_definition_options at all */
  bool temporary;
  const char *txn_id;    /* NULL: none */
  const char *txn_id_bytes; /* 16 bytes (a BeginTransaction's id), NULL: none */
  const char *opt_key;   /* an options entry (key, value), NULL: none */
  const char *opt_value;
  const char *header_key; /* the wigeon-idempotency-key header, NULL: none */
  int batches;
  int64_t rows;
  bool kv;             /* (id, value) batches, else seed-shaped (4 columns) */
  bool bad_last_batch; /* after the batches, one message whose IPC header is garbage */
  const uint8_t *raw;  /* the command's bytes as they are (the fields above unused), or NULL */
  size_t raw_len;
};

/* Packs the CommandStatementIngest of `in` in an Any and that in a CMD descriptor: *out (malloc). */
static size_t ingest_descriptor(const struct ingest *in, uint8_t **out) {
  Arrow__Flight__Protocol__Sql__CommandStatementIngest m =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_INGEST__INIT;
  Arrow__Flight__Protocol__Sql__CommandStatementIngest__TableDefinitionOptions t =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_INGEST__TABLE_DEFINITION_OPTIONS__INIT;
  Arrow__Flight__Protocol__Sql__CommandStatementIngest__OptionsEntry e =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_INGEST__OPTIONS_ENTRY__INIT;
  Arrow__Flight__Protocol__Sql__CommandStatementIngest__OptionsEntry *ep = &e;
  if (in->if_not_exist >= 0) {
    t.has_if_not_exist = t.has_if_exists = 1;
    t.if_not_exist = in->if_not_exist;
    t.if_exists = in->if_exists;
    m.table_definition_options = &t;
  }
  m.table = (char *)in->table;
  m.schema = (char *)in->schema;
  m.catalog = (char *)in->catalog;
  if (in->temporary) m.has_temporary = m.temporary = 1;
  if (in->txn_id != NULL || in->txn_id_bytes != NULL) {
    m.has_transaction_id = 1;
    m.transaction_id.data = (uint8_t *)(in->txn_id ? in->txn_id : in->txn_id_bytes);
    m.transaction_id.len = in->txn_id ? strlen(in->txn_id) : 16;
  }
  if (in->opt_key != NULL) {
    e.key = (char *)in->opt_key;
    e.value = (char *)in->opt_value;
    m.n_options = 1;
    m.options = &ep;
  }
  size_t vl = in->raw != NULL ? in->raw_len : protobuf_c_message_get_packed_size(&m.base);
  uint8_t *v = malloc(vl + 1);
  if (in->raw != NULL)
    memcpy(v, in->raw, vl);
  else
    protobuf_c_message_pack(&m.base, v);
  char url[] = "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementIngest";
  /* google.protobuf.Any: 1 type_url, 2 value (written by hand: protobuf-c has no Any here) */
  uint8_t *any = malloc(vl + sizeof(url) + 32);
  size_t k = 0;
  any[k++] = 0x0a;
  any[k++] = (uint8_t)strlen(url);
  memcpy(any + k, url, strlen(url));
  k += strlen(url);
  any[k++] = 0x12;
  for (size_t n = vl; ; n >>= 7) { /* varint length */
    any[k++] = (uint8_t)((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    if (n <= 0x7f) break;
  }
  memcpy(any + k, v, vl);
  k += vl;
  free(v);
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
  d.cmd.data = any;
  d.cmd.len = k;
  size_t dl = protobuf_c_message_get_packed_size(&d.base);
  *out = malloc(dl);
  protobuf_c_message_pack(&d.base, *out);
  free(any);
  return dl;
}

/* When set, every call goes on this channel (one client connection: a transaction belongs to the
 * connection that began it), else each call makes its own. */
static struct wg_rpc_channel *shared_ch;

static int channel(const char *uri, struct wg_rpc_channel **ch, struct wg_error *err) {
  if (shared_ch != NULL) {
    *ch = shared_ch;
    return 0;
  }
  return wg_rpc_channel_create(ch, uri, err);
}

static void channel_done(struct wg_rpc_channel *ch) {
  if (ch != shared_ch) wg_rpc_channel_destroy(ch);
}

/* Runs one ingest; returns the errno value of the call's status (0 OK), *count the
 * DoPutUpdateResult's record_count (-1 when none came), err the server's message. */
static int run_ingest(const char *uri, const struct ingest *in, int64_t *count,
                      struct wg_error *err) {
  *count = -1;
  err->message[0] = '\0';
  uint8_t *dbytes = NULL;
  size_t dl = ingest_descriptor(in, &dbytes);
  struct wg_rpc_channel *ch;
  int rc = channel(uri, &ch, err);
  if (rc != 0) {
    free(dbytes);
    return rc;
  }
  struct ArrowSchema schema;
  struct ArrowArray batch;
  rc = wg_fx_seed_batch(7, in->rows, in->kv, &schema, &batch);
  struct wg_ipc_encoder *enc = NULL;
  if (rc == 0) rc = wg_ipc_encoder_create(&enc, &schema, NULL, err);
  if (schema.release != NULL) wg_schema_release(&schema);
  const char *md[] = {"wigeon-idempotency-key", in->header_key, NULL};
  struct wg_rpc_client_call *call = NULL;
  if (rc == 0)
    rc = wg_rpc_client_call_start(ch, "/arrow.flight.protocol.FlightService/DoPut", 60000,
                                  in->header_key != NULL ? md : NULL, &call, err);
  int64_t max = rc == 0 ? wg_ipc_encoder_max_messages(enc) : 0;
  struct wg_ipc_encoded *msgs = calloc((size_t)(max + 1), sizeof(*msgs));
  for (int64_t i = 0; i <= max; i++)
    wg_ipc_encoded_init(&msgs[i]);
  struct wg_bytes none = {NULL, 0};
  grpc_byte_buffer *bb = NULL;
  if (rc == 0) rc = wg_ipc_encoder_schema(enc, &msgs[0], err);
  if (rc == 0)
    rc = wg_flight_data_encode((struct wg_bytes){dbytes, (int64_t)dl}, &msgs[0], none, NULL, &bb,
                               err);
  if (rc == 0) rc = wg_rpc_client_call_send(call, bb);
  for (int b = 0; rc == 0 && b < in->batches; b++) {
    int64_t n = 0;
    rc = wg_ipc_encoder_batch(enc, &batch, msgs, &n, err);
    for (int64_t i = 0; rc == 0 && i < n; i++) {
      rc = wg_flight_data_encode(none, &msgs[i], none, NULL, &bb, err);
      if (rc == 0) rc = wg_rpc_client_call_send(call, bb);
    }
    for (int64_t i = 0; i < n; i++)
      wg_ipc_encoded_reset(&msgs[i]);
  }
  if (rc == 0 && in->bad_last_batch) {
    /* FlightData{data_header: 12 bytes that are no flatbuffer Message} */
    static const uint8_t garbage[] = {0x12, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    grpc_slice sl = grpc_slice_from_copied_buffer((const char *)garbage, sizeof(garbage));
    bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    rc = wg_rpc_client_call_send(call, bb);
  }
  if (rc == 0) rc = wg_rpc_client_call_close_send(call);
  if (call != NULL) {
    for (;;) {
      grpc_byte_buffer *r = NULL;
      if (wg_rpc_client_call_recv(call, &r) != 0 || r == NULL) break;
      ProtobufCMessage *m = NULL;
      if (wg_flight_unpack(&arrow__flight__protocol__put_result__descriptor, r, &m, NULL) == 0) {
        const ProtobufCBinaryData *a = &((Arrow__Flight__Protocol__PutResult *)m)->app_metadata;
        Arrow__Flight__Protocol__Sql__DoPutUpdateResult *u =
            arrow__flight__protocol__sql__do_put_update_result__unpack(NULL, a->len, a->data);
        if (u != NULL && u->has_record_count) *count = u->record_count;
        if (u != NULL) protobuf_c_message_free_unpacked(&u->base, NULL);
        protobuf_c_message_free_unpacked(m, NULL);
      }
      grpc_byte_buffer_destroy(r);
    }
    grpc_status_code code;
    int frc = wg_rpc_client_call_finish(call, &code, err);
    if (rc == 0 || (rc == EPIPE && frc != 0)) rc = frc;
    wg_rpc_client_call_destroy(call);
  }
  for (int64_t i = 0; i <= max; i++)
    wg_ipc_encoded_reset(&msgs[i]);
  free(msgs);
  if (batch.release != NULL) wg_array_release(&batch);
  wg_ipc_encoder_destroy(enc);
  channel_done(ch);
  free(dbytes);
  return rc;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int64_t count_of(struct wg_client *c, const char *sql) {
  int64_t n = -1;
  struct wg_status st;
  if (wg_fx_query_i64(c, sql, &n, &st) != 0) return -1;
  return n;
}

static int64_t stat_of(struct wg_client *c, const char *name) {
  struct wg_buf out;
  wg_buf_init(&out);
  struct wg_status ws;
  int64_t v = -1;
  char key[64];
  snprintf(key, sizeof(key), "\"%s\":", name);
  if (wg_fx_action(c, "stats", "", 0, &out, &ws) == 0 && out.data != NULL) {
    const char *p = strstr((char *)out.data, key);
    if (p != NULL) v = atoll(p + strlen(key));
  }
  wg_buf_reset(&out);
  return v;
}

struct env {
  struct wg_fx_server fx;
  struct wg_client *c;
  char dir[256];
};

static int env_start(struct env *e, int64_t group_commit_bytes) {
  char db[300];
  if (wg_fx_tmpdir(e->dir, sizeof(e->dir)) != 0) return -1;
  snprintf(db, sizeof(db), "%s/ingest.duckdb", e->dir);
  struct wg_server_options o = {.db_path = db, .threads = 8,
                                .group_commit_bytes = group_commit_bytes};
  if (wg_fx_server_start(&e->fx, &o) != 0) return -1;
  struct wg_status ws;
  return wg_fx_connect(&e->c, e->fx.uri, &ws);
}

static void env_stop(struct env *e) {
  wg_disconnect(e->c);
  wg_fx_server_stop(&e->fx);
  wg_fx_rmdir(e->dir);
}

/* ---- the table options ---- */

static void every_table_option_does_what_the_spec_says(void) {
  struct env e;
  ASSERT_EQ(env_start(&e, 0), 0);
  struct wg_error err;
  int64_t n;
  const char *u = e.fx.uri;
  struct ingest in = {.table = "t", .if_not_exist = MISSING_FAIL, .if_exists = APPEND,
                      .batches = 2, .rows = 100, .kv = true};
  /* append (FAIL + APPEND) to a missing table: NOT_FOUND naming it, nothing created */
  ASSERT_EQ(run_ingest(u, &in, &n, &err), ENOENT);
  ASSERT_TRUE(strstr(err.message, "\"t\"") != NULL);
  ASSERT_EQ(n, -1);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 't'"), 0);
  /* create (CREATE + FAIL) */
  in.if_not_exist = CREATE;
  in.if_exists = EXISTS_FAIL;
  ASSERT_OK(run_ingest(u, &in, &n, &err), err.message);
  ASSERT_EQ(n, 200);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM t"), 200);
  /* create again: ALREADY_EXISTS, rows unchanged */
  ASSERT_EQ(run_ingest(u, &in, &n, &err), EEXIST);
  ASSERT_TRUE(strstr(err.message, "already exists") != NULL);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM t"), 200);
  /* append (FAIL + APPEND) to it, then create_append (CREATE + APPEND) */
  in.if_not_exist = MISSING_FAIL;
  in.if_exists = APPEND;
  ASSERT_OK(run_ingest(u, &in, &n, &err), err.message);
  in.if_not_exist = CREATE;
  ASSERT_OK(run_ingest(u, &in, &n, &err), err.message);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM t"), 600);
  /* create_append of a missing table creates it */
  in.table = "t2";
  ASSERT_OK(run_ingest(u, &in, &n, &err), err.message);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM t2"), 200);
  /* replace (CREATE + REPLACE): the rows and the columns are the stream's */
  struct ingest r = {.table = "t", .if_not_exist = CREATE, .if_exists = REPLACE, .batches = 1,
                     .rows = 30, .kv = false};
  ASSERT_OK(run_ingest(u, &r, &n, &err), err.message);
  ASSERT_EQ(n, 30);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM t"), 30);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM duckdb_columns() WHERE table_name = 't'"), 4);
  /* replace of a missing table creates it; FAIL + REPLACE of a missing one is NOT_FOUND */
  r.table = "t3";
  ASSERT_OK(run_ingest(u, &r, &n, &err), err.message);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM t3"), 30);
  r.table = "t4";
  r.if_not_exist = MISSING_FAIL;
  ASSERT_EQ(run_ingest(u, &r, &n, &err), ENOENT);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 't4'"), 0);
  /* FAIL + REPLACE of an existing one replaces */
  r.table = "t2";
  ASSERT_OK(run_ingest(u, &r, &n, &err), err.message);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM t2"), 30);
  /* UNSPECIFIED, or no options at all: INVALID_ARGUMENT (the spec: servers should error) */
  struct ingest bad = in;
  bad.if_exists = 0;
  ASSERT_EQ(run_ingest(u, &bad, &n, &err), EINVAL);
  ASSERT_TRUE(strstr(err.message, "UNSPECIFIED") != NULL);
  bad = in;
  bad.if_not_exist = 0;
  ASSERT_EQ(run_ingest(u, &bad, &n, &err), EINVAL);
  bad.if_not_exist = -1;
  ASSERT_EQ(run_ingest(u, &bad, &n, &err), EINVAL);
  ASSERT_TRUE(strstr(err.message, "table_definition_options") != NULL);
  bad = in;
  bad.table = "";
  ASSERT_EQ(run_ingest(u, &bad, &n, &err), EINVAL);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM t2"), 30);
  env_stop(&e);
}

static void catalog_schema_temporary_transaction_and_options_fields(void) {
  struct env e;
  ASSERT_EQ(env_start(&e, 0), 0);
  struct wg_error err;
  struct wg_status ws;
  int64_t n;
  const char *u = e.fx.uri;
  struct ingest in = {.table = "c", .if_not_exist = CREATE, .if_exists = APPEND, .batches = 1,
                      .rows = 10, .kv = true};
  /* the database's own name as catalog (DuckDB's current_database(): the file's stem) */
  in.catalog = "ingest";
  ASSERT_OK(run_ingest(u, &in, &n, &err), err.message);
  in.catalog = "";
  ASSERT_OK(run_ingest(u, &in, &n, &err), err.message);
  in.catalog = "other";
  ASSERT_EQ(run_ingest(u, &in, &n, &err), EINVAL);
  ASSERT_TRUE(strstr(err.message, "one database") != NULL);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM c"), 20);
  in.catalog = NULL;
  /* a schema: the table goes there; a missing schema is an error, not created */
  const char *ddl = "CREATE SCHEMA s2";
  ASSERT_OK(wg_fx_action(e.c, "execute", ddl, strlen(ddl), NULL, &ws), ws.message);
  in.schema = "s2";
  ASSERT_OK(run_ingest(u, &in, &n, &err), err.message);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM s2.c"), 10);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM main.c"), 20);
  in.schema = "nope";
  ASSERT_NE(run_ingest(u, &in, &n, &err), 0);
  in.schema = NULL;
  /* temporary without a transaction: INVALID_ARGUMENT saying why */
  in.temporary = true;
  ASSERT_EQ(run_ingest(u, &in, &n, &err), EINVAL);
  ASSERT_TRUE(strstr(err.message, "transaction") != NULL);
  in.temporary = false;
  /* an unknown transaction id: NOT_FOUND; nothing appended */
  in.txn_id = "no-such-transaction";
  ASSERT_EQ(run_ingest(u, &in, &n, &err), ENOENT);
  in.txn_id = NULL;
  /* options: an unknown key is refused naming it */
  in.opt_key = "compression";
  in.opt_value = "zstd";
  ASSERT_EQ(run_ingest(u, &in, &n, &err), EINVAL);
  ASSERT_TRUE(strstr(err.message, "\"compression\"") != NULL);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM c"), 20);
  env_stop(&e);
}

/* ---- the paths: group commit, streaming ---- */

struct small_arg {
  const char *uri;
  atomic_int *failed;
};

static void *small_ingester(void *p) {
  struct small_arg *a = p;
  for (int i = 0; i < 10; i++) {
    struct ingest in = {.table = "g", .if_not_exist = MISSING_FAIL, .if_exists = APPEND,
                        .batches = 1, .rows = 50, .kv = true};
    struct wg_error err;
    int64_t n;
    if (run_ingest(a->uri, &in, &n, &err) != 0 || n != 50) {
      fprintf(stderr, "  small ingest: %s (count %lld)\n", err.message, (long long)n);
      atomic_fetch_add(a->failed, 1);
    }
  }
  return NULL;
}

static void small_ingests_are_group_committed(void) {
  struct env e;
  ASSERT_EQ(env_start(&e, 8 << 20), 0);
  struct wg_status ws;
  const char *ddl = "CREATE TABLE g (id BIGINT, value DOUBLE)";
  ASSERT_OK(wg_fx_action(e.c, "execute", ddl, strlen(ddl), NULL, &ws), ws.message);
  int64_t grouped0 = stat_of(e.c, "grouped_puts");
  enum { W = 8 };
  pthread_t t[W];
  atomic_int failed = 0;
  struct small_arg a = {e.fx.uri, &failed};
  for (int i = 0; i < W; i++)
    pthread_create(&t[i], NULL, small_ingester, &a);
  for (int i = 0; i < W; i++)
    pthread_join(t[i], NULL);
  ASSERT_EQ(atomic_load(&failed), 0);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM g"), W * 10 * 50);
  int64_t grouped = stat_of(e.c, "grouped_puts") - grouped0;
  int64_t groups = stat_of(e.c, "commit_groups");
  fprintf(stderr, "  %lld ingests committed in %lld groups\n", (long long)grouped,
          (long long)groups);
  ASSERT_EQ(grouped, W * 10);
  ASSERT_TRUE(groups >= 1 && groups <= grouped);
  env_stop(&e);
}

static void a_big_ingest_streams_in_its_own_transaction(void) {
  struct env e;
  ASSERT_EQ(env_start(&e, 1 << 20), 0); /* groups up to 1 MiB: this one is ~40 MiB */
  struct wg_error err;
  int64_t n;
  int64_t grouped0 = stat_of(e.c, "grouped_puts");
  struct ingest in = {.table = "big", .if_not_exist = CREATE, .if_exists = EXISTS_FAIL,
                      .batches = 20, .rows = 65536, .kv = false};
  ASSERT_OK(run_ingest(e.fx.uri, &in, &n, &err), err.message);
  ASSERT_EQ(n, 20 * 65536);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM big"), 20 * 65536);
  ASSERT_EQ(stat_of(e.c, "grouped_puts"), grouped0);
  /* the same, replacing: a big REPLACE */
  in.if_exists = REPLACE;
  in.batches = 5;
  ASSERT_OK(run_ingest(e.fx.uri, &in, &n, &err), err.message);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM big"), 5 * 65536);
  env_stop(&e);
}

/* ---- REPLACE is atomic ---- */

struct reader_arg {
  const char *uri;
  atomic_int *stop, *bad, *reads;
};

static void *replace_reader(void *p) {
  struct reader_arg *a = p;
  struct wg_client *c;
  struct wg_status st;
  if (wg_fx_connect(&c, a->uri, &st) != 0) {
    atomic_fetch_add(a->bad, 1);
    return NULL;
  }
  while (!atomic_load(a->stop)) {
    int64_t n = -1;
    int rc = wg_fx_query_i64(c, "SELECT count(*) FROM r", &n, &st);
    if (rc != 0 || (n != 1000 && n != 3 * 65536 && n != 2 * 65536)) {
      fprintf(stderr, "  reader saw %lld (rc %d: %s)\n", (long long)n, rc, st.message);
      atomic_fetch_add(a->bad, 1);
    }
    atomic_fetch_add(a->reads, 1);
  }
  wg_disconnect(c);
  return NULL;
}

static void a_reader_during_replace_sees_the_old_rows_or_the_new(void) {
  struct env e;
  ASSERT_EQ(env_start(&e, 8 << 20), 0);
  struct wg_error err;
  int64_t n;
  struct ingest in = {.table = "r", .if_not_exist = CREATE, .if_exists = EXISTS_FAIL,
                      .batches = 1, .rows = 1000, .kv = true};
  ASSERT_OK(run_ingest(e.fx.uri, &in, &n, &err), err.message);
  atomic_int stop = 0, bad = 0, reads = 0;
  struct reader_arg a = {e.fx.uri, &stop, &bad, &reads};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    pthread_create(&t[i], NULL, replace_reader, &a);
  in.if_exists = REPLACE;
  in.rows = 65536;
  for (int i = 0; i < 6; i++) { /* alternating sizes and schemas */
    in.batches = i % 2 ? 2 : 3;
    in.kv = i % 2 == 1;
    ASSERT_OK(run_ingest(e.fx.uri, &in, &n, &err), err.message);
    ASSERT_EQ(n, in.batches * 65536);
  }
  /* a REPLACE that fails in its last batch: the old rows stay */
  in.bad_last_batch = true;
  ASSERT_EQ(run_ingest(e.fx.uri, &in, &n, &err), EINVAL);
  sleep_ms(100);
  atomic_store(&stop, 1);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  fprintf(stderr, "  %d reads during the replaces\n", atomic_load(&reads));
  ASSERT_EQ(atomic_load(&bad), 0);
  ASSERT_TRUE(atomic_load(&reads) > 0);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM r"), 2 * 65536);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'r'"), 2);
  env_stop(&e);
}

/* ---- all or nothing, keys, names ---- */

static void a_bad_batch_leaves_nothing_on_either_path(void) {
  struct env e;
  ASSERT_EQ(env_start(&e, 1 << 20), 0);
  struct wg_error err;
  int64_t n;
  /* group path (small), into a table it would create: not created */
  struct ingest in = {.table = "b", .if_not_exist = CREATE, .if_exists = APPEND, .batches = 2,
                      .rows = 100, .kv = true, .bad_last_batch = true};
  ASSERT_EQ(run_ingest(e.fx.uri, &in, &n, &err), EINVAL);
  ASSERT_EQ(n, -1);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'b'"), 0);
  /* streaming path (big), into an existing table: its rows unchanged */
  in.bad_last_batch = false;
  in.batches = 1;
  ASSERT_OK(run_ingest(e.fx.uri, &in, &n, &err), err.message);
  in.bad_last_batch = true;
  in.batches = 30;
  in.rows = 65536;
  ASSERT_EQ(run_ingest(e.fx.uri, &in, &n, &err), EINVAL);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM b"), 100);
  env_stop(&e);
}

static void an_idempotency_key_replayed_appends_once(void) {
  struct env e;
  ASSERT_EQ(env_start(&e, 8 << 20), 0);
  struct wg_error err;
  int64_t n;
  struct ingest in = {.table = "k", .if_not_exist = CREATE, .if_exists = APPEND, .batches = 3,
                      .rows = 100, .kv = true, .opt_key = "idempotency_key",
                      .opt_value = "load-1"};
  for (int i = 0; i < 3; i++) { /* the option */
    ASSERT_OK(run_ingest(e.fx.uri, &in, &n, &err), err.message);
    ASSERT_EQ(n, 300); /* a replay answers the count the key was committed with */
  }
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM k"), 300);
  in.opt_key = NULL;
  in.header_key = "load-2"; /* the header, on the streaming path */
  in.batches = 30;
  in.rows = 65536;
  for (int i = 0; i < 2; i++) {
    ASSERT_OK(run_ingest(e.fx.uri, &in, &n, &err), err.message);
    ASSERT_EQ(n, 30 * 65536);
  }
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM k"), 300 + 30 * 65536);
  /* the same key through the option matches the header's */
  in.header_key = NULL;
  in.opt_key = "idempotency_key";
  in.opt_value = "load-2";
  in.batches = 1;
  ASSERT_OK(run_ingest(e.fx.uri, &in, &n, &err), err.message);
  ASSERT_EQ(n, 30 * 65536);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM k"), 300 + 30 * 65536);
  env_stop(&e);
}

static void strange_table_and_schema_names_are_just_names(void) {
  struct env e;
  ASSERT_EQ(env_start(&e, 8 << 20), 0);
  struct wg_error err;
  struct wg_status ws;
  int64_t n;
  const char *ddl = "CREATE TABLE x (i INTEGER); CREATE SCHEMA \"s.\"\"q\"";
  ASSERT_OK(wg_fx_action(e.c, "execute", ddl, strlen(ddl), NULL, &ws), ws.message);
  const char *names[] = {"we\"ird", "a.b", "\"; DROP TABLE x; --", "t'; DROP TABLE x; --"};
  for (int i = 0; i < 4; i++) {
    struct ingest in = {.table = names[i], .if_not_exist = CREATE, .if_exists = EXISTS_FAIL,
                        .batches = 1, .rows = 10 + i, .kv = true};
    ASSERT_OK(run_ingest(e.fx.uri, &in, &n, &err), err.message);
    in.if_exists = REPLACE;
    in.schema = "s.\"q";
    ASSERT_OK(run_ingest(e.fx.uri, &in, &n, &err), err.message);
  }
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM \"we\"\"ird\""), 10);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM \"a.b\""), 11);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM \"\"\"; DROP TABLE x; --\""), 12);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM \"s.\"\"q\".\"t'; DROP TABLE x; --\""), 13);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM x"), 0); /* still there */
  /* a name holding a NUL byte (protobuf-c would cut it to "x"): refused, x untouched; written
   * byte by byte: options {if_not_exist CREATE, if_exists APPEND}, table "x\0y" */
  static const uint8_t nul_name[] = {0x0a, 4, 0x08, 1, 0x10, 2, 0x12, 3, 'x', 0, 'y'};
  struct ingest in = {.raw = nul_name, .raw_len = sizeof(nul_name), .batches = 1, .rows = 5,
                      .kv = true};
  ASSERT_EQ(run_ingest(e.fx.uri, &in, &n, &err), EINVAL);
  ASSERT_TRUE(strstr(err.message, "NUL") != NULL);
  /* the same bytes with "xy": served (so the refusal above was the NUL's) */
  static const uint8_t plain_name[] = {0x0a, 4, 0x08, 1, 0x10, 2, 0x12, 2, 'x', 'y'};
  in.raw = plain_name;
  in.raw_len = sizeof(plain_name);
  ASSERT_OK(run_ingest(e.fx.uri, &in, &n, &err), err.message);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM xy"), 5);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM x"), 0);
  /* REPLACE of a view's name: refused, the view stays */
  const char *view = "CREATE VIEW v AS SELECT 1 AS id, 2.0 AS value";
  ASSERT_OK(wg_fx_action(e.c, "execute", view, strlen(view), NULL, &ws), ws.message);
  struct ingest rv = {.table = "v", .if_not_exist = CREATE, .if_exists = REPLACE, .batches = 1,
                      .rows = 5, .kv = true};
  ASSERT_NE(run_ingest(e.fx.uri, &rv, &n, &err), 0);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM v"), 1);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 's.\"q'"), 4);
  env_stop(&e);
}

/* ---- with a Flight SQL transaction id ---- */

/* A Flight SQL action: body Any(m), the first Result's Any unpacked as resp_d into *out. Any and
 * Action have the same wire layout (1: string, 2: bytes), so Action's codec packs and reads it. */
static int fsql_action(const char *uri, const char *type, const char *url,
                       const ProtobufCMessage *m, const ProtobufCMessageDescriptor *resp_d,
                       ProtobufCMessage **out, struct wg_error *err) {
  *out = NULL;
  size_t ml = protobuf_c_message_get_packed_size(m);
  uint8_t *mb = malloc(ml + 1);
  protobuf_c_message_pack(m, mb);
  Arrow__Flight__Protocol__Action any = ARROW__FLIGHT__PROTOCOL__ACTION__INIT;
  any.type = (char *)url;
  any.body.data = mb;
  any.body.len = ml;
  size_t al = protobuf_c_message_get_packed_size(&any.base);
  uint8_t *ab = malloc(al + 1);
  protobuf_c_message_pack(&any.base, ab);
  free(mb);
  Arrow__Flight__Protocol__Action a = ARROW__FLIGHT__PROTOCOL__ACTION__INIT;
  a.type = (char *)type;
  a.body.data = ab;
  a.body.len = al;
  size_t l = protobuf_c_message_get_packed_size(&a.base);
  uint8_t *b = malloc(l + 1);
  protobuf_c_message_pack(&a.base, b);
  free(ab);
  struct wg_rpc_channel *ch;
  int rc = channel(uri, &ch, err);
  struct wg_rpc_client_call *call = NULL;
  if (rc == 0)
    rc = wg_rpc_client_call_start(ch, "/arrow.flight.protocol.FlightService/DoAction", 30000,
                                  NULL, &call, err);
  if (rc == 0) {
    grpc_slice sl = grpc_slice_from_copied_buffer((const char *)b, l);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    rc = wg_rpc_client_call_send(call, bb);
    if (rc == 0) rc = wg_rpc_client_call_close_send(call);
  }
  for (; call != NULL;) {
    grpc_byte_buffer *bb = NULL;
    if (wg_rpc_client_call_recv(call, &bb) != 0 || bb == NULL) break;
    ProtobufCMessage *r = NULL;
    if (*out == NULL &&
        wg_flight_unpack(&arrow__flight__protocol__result__descriptor, bb, &r, NULL) == 0) {
      Arrow__Flight__Protocol__Result *res = (Arrow__Flight__Protocol__Result *)r;
      Arrow__Flight__Protocol__Action *v =
          arrow__flight__protocol__action__unpack(NULL, res->body.len, res->body.data);
      if (v != NULL) *out = protobuf_c_message_unpack(resp_d, NULL, v->body.len, v->body.data);
      if (v != NULL) protobuf_c_message_free_unpacked(&v->base, NULL);
      protobuf_c_message_free_unpacked(r, NULL);
    }
    grpc_byte_buffer_destroy(bb);
  }
  if (call != NULL) {
    grpc_status_code code;
    int frc = wg_rpc_client_call_finish(call, &code, err);
    if (rc == 0) rc = frc;
    wg_rpc_client_call_destroy(call);
  }
  channel_done(ch);
  free(b);
  return rc;
}

#define SQL_URL(x) "type.googleapis.com/arrow.flight.protocol.sql." x

static int txn_begin(const char *uri, char *id, struct wg_error *err) {
  Arrow__Flight__Protocol__Sql__ActionBeginTransactionRequest req =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_BEGIN_TRANSACTION_REQUEST__INIT;
  ProtobufCMessage *r = NULL;
  int rc = fsql_action(uri, "BeginTransaction", SQL_URL("ActionBeginTransactionRequest"),
                       &req.base,
                       &arrow__flight__protocol__sql__action_begin_transaction_result__descriptor,
                       &r, err);
  Arrow__Flight__Protocol__Sql__ActionBeginTransactionResult *res = (void *)r;
  /* 16 random bytes, which may hold NULs: passed as bytes (txn_id_bytes), not as a string */
  if (rc == 0 && (res == NULL || res->transaction_id.len != 16))
    rc = wg_error_set(err, EPROTO, "no 16-byte transaction id");
  if (rc == 0) memcpy(id, res->transaction_id.data, 16);
  if (r != NULL) protobuf_c_message_free_unpacked(r, NULL);
  return rc;
}

static int txn_end(const char *uri, const char *id, bool commit, struct wg_error *err) {
  Arrow__Flight__Protocol__Sql__ActionEndTransactionRequest req =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_END_TRANSACTION_REQUEST__INIT;
  req.has_transaction_id = req.has_action = 1;
  req.transaction_id.data = (uint8_t *)id;
  req.transaction_id.len = 16;
  req.action =
      commit
          ? ARROW__FLIGHT__PROTOCOL__SQL__ACTION_END_TRANSACTION_REQUEST__END_TRANSACTION__END_TRANSACTION_COMMIT
          : ARROW__FLIGHT__PROTOCOL__SQL__ACTION_END_TRANSACTION_REQUEST__END_TRANSACTION__END_TRANSACTION_ROLLBACK;
  ProtobufCMessage *r = NULL;
  int rc = fsql_action(uri, "EndTransaction", SQL_URL("ActionEndTransactionRequest"), &req.base,
                       &arrow__flight__protocol__sql__action_begin_transaction_result__descriptor,
                       &r, err);
  if (r != NULL) protobuf_c_message_free_unpacked(r, NULL);
  return rc;
}

static void an_ingest_with_a_transaction_id_commits_with_the_transaction(void) {
  struct env e;
  ASSERT_EQ(env_start(&e, 8 << 20), 0);
  struct wg_error err;
  int64_t n;
  const char *u = e.fx.uri;
  char id[17] = {0};
  ASSERT_OK(wg_rpc_channel_create(&shared_ch, u, &err), err.message);
  ASSERT_OK(txn_begin(u, id, &err), err.message);
  int64_t grouped0 = stat_of(e.c, "grouped_puts");
  struct ingest in = {.table = "tt", .if_not_exist = CREATE, .if_exists = APPEND, .batches = 2,
                      .rows = 100, .kv = true, .txn_id_bytes = id};
  ASSERT_OK(run_ingest(u, &in, &n, &err), err.message);
  ASSERT_EQ(n, 200);
  ASSERT_OK(run_ingest(u, &in, &n, &err), err.message);
  /* not committed yet: the table does not exist for anyone else */
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'tt'"), 0);
  ASSERT_OK(txn_end(u, id, true, &err), err.message);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM tt"), 400);
  ASSERT_EQ(stat_of(e.c, "grouped_puts"), grouped0); /* never through the group committer */
  /* rolled back: nothing */
  ASSERT_OK(txn_begin(u, id, &err), err.message);
  ASSERT_OK(run_ingest(u, &in, &n, &err), err.message);
  ASSERT_OK(txn_end(u, id, false, &err), err.message);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM tt"), 400);
  /* an ingest that fails in its last batch: the transaction's COMMIT keeps nothing of it */
  ASSERT_OK(txn_begin(u, id, &err), err.message);
  ASSERT_OK(run_ingest(u, &in, &n, &err), err.message);
  in.bad_last_batch = true;
  in.batches = 5;
  in.rows = 65536;
  ASSERT_EQ(run_ingest(u, &in, &n, &err), EINVAL);
  ASSERT_NE(txn_end(u, id, true, &err), 0);
  fprintf(stderr, "  COMMIT after a failed ingest: %s\n", err.message);
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM tt"), 400);
  /* a temporary table inside a transaction */
  ASSERT_OK(txn_begin(u, id, &err), err.message);
  struct ingest tmp = {.table = "tmp", .if_not_exist = CREATE, .if_exists = EXISTS_FAIL,
                       .batches = 1, .rows = 10, .kv = true, .temporary = true,
                       .txn_id_bytes = id};
  ASSERT_OK(run_ingest(u, &tmp, &n, &err), err.message);
  ASSERT_EQ(n, 10);
  ASSERT_EQ(run_ingest(u, &tmp, &n, &err), EEXIST); /* it is there, on that connection */
  ASSERT_NE(txn_end(u, id, true, &err), 0);        /* ...and the refusal aborted the txn */
  ASSERT_EQ(count_of(e.c, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'tmp'"), 0);
  wg_rpc_channel_destroy(shared_ch);
  shared_ch = NULL;
  env_stop(&e);
}

/* ---- inside a caller's transaction (the engine's in_txn, what a transaction id leads to) ---- */

static int64_t q64(struct wg_engine_conn *c, const char *sql) {
  duckdb_result r;
  int64_t v = -1;
  if (duckdb_query(wg_engine_conn_duckdb(c), sql, &r) == DuckDBSuccess)
    v = duckdb_value_int64(&r, 0, 0);
  duckdb_destroy_result(&r);
  return v;
}

static bool run_sql(struct wg_engine_conn *c, const char *sql) {
  duckdb_result r;
  bool ok = duckdb_query(wg_engine_conn_duckdb(c), sql, &r) == DuckDBSuccess;
  duckdb_destroy_result(&r);
  return ok;
}

/* Ingests `batches` seed batches of `rows` rows through opts on c; returns the status. */
static int engine_ingest(struct wg_engine_conn *c, const char *table,
                         const struct wg_engine_ingest_opts *o, int batches, int64_t rows,
                         bool fail_at_end, int64_t *count, struct wg_error *err) {
  struct ArrowSchema schema;
  struct ArrowArray b;
  *count = -1;
  WG_RETURN_NOT_OK(wg_fx_seed_batch(1, rows, true, &schema, &b));
  struct wg_engine_ingest *ing = NULL;
  int rc = wg_engine_ingest_begin_opts(c, NULL, table, &schema, o, &ing, err);
  for (int i = 0; rc == 0 && i < batches; i++) {
    struct ArrowArray copy;
    rc = wg_array_share(&b, &copy);
    if (rc == 0) rc = wg_engine_ingest_append(ing, &copy, err);
  }
  if (rc == 0 && fail_at_end) {
    wg_engine_ingest_abort(ing); /* what DoPut does when the stream goes bad */
    rc = wg_error_set(err, EINVAL, "failed on purpose");
  } else if (rc == 0) {
    rc = wg_engine_ingest_commit(ing, count, err);
  } else if (ing != NULL) {
    wg_engine_ingest_abort(ing);
  }
  wg_array_release(&b);
  wg_schema_release(&schema);
  return rc;
}

static void an_ingest_in_a_callers_transaction_commits_with_it_or_aborts_it(void) {
  struct wg_engine_options eo = {.path = ":memory:", .connections = 2, .reserved_connections = 1};
  struct wg_engine *e = NULL;
  struct wg_error err;
  ASSERT_OK(wg_engine_open(&e, &eo, &err), err.message);
  struct wg_engine_conn *c1, *c2;
  ASSERT_OK(wg_engine_acquire(e, &c1, &err), err.message);
  ASSERT_OK(wg_engine_acquire_reserved(e, &c2, &err), err.message);
  int64_t n;
  struct wg_engine_ingest_opts o = {.in_txn = true, .if_exists = WG_ENGINE_IF_EXISTS_FAIL};
  /* created and filled inside the transaction: unseen elsewhere until its COMMIT */
  ASSERT_TRUE(run_sql(c1, "BEGIN TRANSACTION"));
  ASSERT_OK(engine_ingest(c1, "tx", &o, 3, 100, false, &n, &err), err.message);
  ASSERT_EQ(n, 300);
  ASSERT_EQ(q64(c1, "SELECT count(*) FROM tx"), 300);
  ASSERT_EQ(q64(c2, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'tx'"), 0);
  o.if_exists = WG_ENGINE_IF_EXISTS_APPEND;
  ASSERT_OK(engine_ingest(c1, "tx", &o, 1, 100, false, &n, &err), err.message);
  ASSERT_TRUE(run_sql(c1, "COMMIT"));
  ASSERT_EQ(q64(c2, "SELECT count(*) FROM tx"), 400);
  /* rolled back: nothing */
  ASSERT_TRUE(run_sql(c1, "BEGIN TRANSACTION"));
  ASSERT_OK(engine_ingest(c1, "tx", &o, 1, 100, false, &n, &err), err.message);
  ASSERT_TRUE(run_sql(c1, "ROLLBACK"));
  ASSERT_EQ(q64(c2, "SELECT count(*) FROM tx"), 400);
  /* a failed ingest (300k rows: the appender flushed part of them) aborts the transaction: its
   * other statements are refused and its COMMIT keeps nothing */
  ASSERT_TRUE(run_sql(c1, "BEGIN TRANSACTION"));
  ASSERT_TRUE(run_sql(c1, "INSERT INTO tx VALUES (1, 1.0)"));
  ASSERT_EQ(engine_ingest(c1, "tx", &o, 5, 65536, true, &n, &err), EINVAL);
  ASSERT_TRUE(!run_sql(c1, "SELECT 1"));
  run_sql(c1, "COMMIT");
  run_sql(c1, "ROLLBACK");
  ASSERT_EQ(q64(c2, "SELECT count(*) FROM tx"), 400);
  /* the options hold inside a transaction too: FAIL if missing, and the refusal aborts it */
  o.fail_if_missing = true;
  ASSERT_TRUE(run_sql(c1, "BEGIN TRANSACTION"));
  ASSERT_EQ(engine_ingest(c1, "nope", &o, 1, 10, false, &n, &err), ENOENT);
  ASSERT_TRUE(run_sql(c1, "ROLLBACK"));
  /* REPLACE inside it: the old rows until its COMMIT */
  o.fail_if_missing = false;
  o.if_exists = WG_ENGINE_IF_EXISTS_REPLACE;
  ASSERT_TRUE(run_sql(c1, "BEGIN TRANSACTION"));
  ASSERT_OK(engine_ingest(c1, "tx", &o, 1, 7, false, &n, &err), err.message);
  ASSERT_EQ(q64(c1, "SELECT count(*) FROM tx"), 7);
  ASSERT_EQ(q64(c2, "SELECT count(*) FROM tx"), 400);
  ASSERT_TRUE(run_sql(c1, "COMMIT"));
  ASSERT_EQ(q64(c2, "SELECT count(*) FROM tx"), 7);
  /* temporary: the connection's own table, beside (and before) main's of the same name */
  struct wg_engine_ingest_opts t = {.in_txn = true, .temporary = true};
  ASSERT_TRUE(run_sql(c1, "BEGIN TRANSACTION"));
  ASSERT_OK(engine_ingest(c1, "tx", &t, 2, 5, false, &n, &err), err.message);
  ASSERT_TRUE(run_sql(c1, "COMMIT"));
  ASSERT_EQ(q64(c1, "SELECT count(*) FROM temp.main.tx"), 10);
  ASSERT_EQ(q64(c1, "SELECT count(*) FROM memory.main.tx"), 7);
  ASSERT_EQ(q64(c2, "SELECT count(*) FROM duckdb_tables() WHERE temporary"), 0);
  /* temporary without the caller's transaction: refused */
  t.in_txn = false;
  ASSERT_EQ(engine_ingest(c1, "tmp2", &t, 1, 5, false, &n, &err), EINVAL);
  run_sql(c1, "DROP TABLE temp.main.tx");
  wg_engine_release(e, c2);
  wg_engine_release(e, c1);
  wg_engine_close(e);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  RUN_TEST(every_table_option_does_what_the_spec_says);
  RUN_TEST(catalog_schema_temporary_transaction_and_options_fields);
  RUN_TEST(small_ingests_are_group_committed);
  RUN_TEST(a_big_ingest_streams_in_its_own_transaction);
  RUN_TEST(a_reader_during_replace_sees_the_old_rows_or_the_new);
  RUN_TEST(a_bad_batch_leaves_nothing_on_either_path);
  RUN_TEST(an_idempotency_key_replayed_appends_once);
  RUN_TEST(strange_table_and_schema_names_are_just_names);
  RUN_TEST(an_ingest_with_a_transaction_id_commits_with_the_transaction);
  RUN_TEST(an_ingest_in_a_callers_transaction_commits_with_it_or_aborts_it);
  return TEST_SUMMARY();
}
