/* wigeon: what a write leaves behind when things go wrong, end to end against a real server on
 * 127.0.0.1 with real gRPC and DuckDB: a put whose client cancels, or whose deadline passes, after
 * sending some of its batches leaves no rows, on the group-commit and the streaming path alike.
 * Puts are sent frame by frame over the raw rpc client, so the test decides exactly when the
 * stream stops and how. */
#define _GNU_SOURCE /* memmem */
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "arrow/array.h"
#include "arrow/ipc.h"
#include "flight/flight.h"
#include "rpc/rpc.h"
#include "server/internal.h"
#include "support/server_fixture.h"
#include "test.h"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* How the client ends its stream. PUT_CLOSE_THEN_CANCEL is what Node's http2 (grpc-js) does on
 * cancel: it ends the stream (END_STREAM, a half-close) and sends RST_STREAM right behind it. */
/* PUT_CLOSE_WAIT_CANCEL half-closes, waits 300 ms, then cancels: a cancel that comes while the put
 * waits for its group commit. */
enum put_end { PUT_CLOSE, PUT_CANCEL, PUT_CLOSE_THEN_CANCEL, PUT_CLOSE_WAIT_CANCEL,
               PUT_LET_DEADLINE_PASS };

/* Sends a DoPut of `batches` (id, value) batches of `rows` rows into `table`, the first
 * FlightData carrying `key_metadata` (may be NULL), then ends it as `how` says. Returns the
 * status code of the call (0 OK); *acked gets the acknowledged row count (-1 when none) and ack
 * (may be NULL, size ack_size) the acknowledgement's app_metadata as text. */
static int raw_put_desc(const char *uri, const uint8_t *dbytes, size_t dl, int batches,
                        int64_t rows, const char *key_metadata, enum put_end how,
                        int64_t timeout_ms, int64_t *acked, char *ack, size_t ack_size,
                        struct wg_error *err);

static int raw_put(const char *uri, const char *table, int batches, int64_t rows,
                   const char *key_metadata, enum put_end how, int64_t timeout_ms, int64_t *acked,
                   char *ack, size_t ack_size, struct wg_error *err) {
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  char *path[1] = {(char *)table};
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__PATH;
  d.n_path = 1;
  d.path = path;
  uint8_t dbytes[1024];
  size_t dl = arrow__flight__protocol__flight_descriptor__pack(&d, dbytes);
  return raw_put_desc(uri, dbytes, dl, batches, rows, key_metadata, how, timeout_ms, acked, ack,
                      ack_size, err);
}

/* A PATH descriptor of n elements written byte by byte (protobuf-c would stop a string at NUL). */
static size_t path_descriptor(uint8_t *out, const char *const *parts, const size_t *lens, int n) {
  size_t k = 0;
  out[k++] = 0x08; /* type = PATH */
  out[k++] = 0x01;
  for (int i = 0; i < n; i++) {
    out[k++] = 0x1a; /* path, length-delimited */
    out[k++] = (uint8_t)lens[i];
    memcpy(out + k, parts[i], lens[i]);
    k += lens[i];
  }
  return k;
}

/* Where raw_put puts key_metadata: the schema message (default) or the first record batch, as
 * pyarrow's write_with_metadata does. */
static bool metadata_on_first_batch = false;

static int raw_put_desc(const char *uri, const uint8_t *dbytes, size_t dl, int batches,
                        int64_t rows, const char *key_metadata, enum put_end how,
                        int64_t timeout_ms, int64_t *acked, char *ack, size_t ack_size,
                        struct wg_error *err) {
  *acked = -1;
  if (ack != NULL) ack[0] = '\0';
  struct wg_rpc_channel *ch;
  WG_RETURN_NOT_OK(wg_rpc_channel_create(&ch, uri, err));
  struct ArrowSchema schema;
  struct ArrowArray first;
  int rc = wg_fx_seed_batch(0, rows, true, &schema, &first);
  if (rc != 0) {
    wg_rpc_channel_destroy(ch);
    return wg_error_set(err, rc, "seed batch");
  }
  struct wg_ipc_encoder *enc = NULL;
  rc = wg_ipc_encoder_create(&enc, &schema, NULL, err);
  wg_schema_release(&schema);
  struct wg_rpc_client_call *call = NULL;
  if (rc == 0)
    rc = wg_rpc_client_call_start(ch, WG_FLIGHT_SERVICE "DoPut", timeout_ms, NULL, &call, err);
  int64_t max = rc == 0 ? wg_ipc_encoder_max_messages(enc) : 0;
  struct wg_ipc_encoded *msgs = calloc((size_t)(max + 1), sizeof(*msgs));
  for (int64_t i = 0; i <= max; i++)
    wg_ipc_encoded_init(&msgs[i]);
  struct wg_bytes none = {NULL, 0};
  struct wg_bytes md = {(const uint8_t *)key_metadata,
                        key_metadata ? (int64_t)strlen(key_metadata) : 0};
  grpc_byte_buffer *bb = NULL;
  if (rc == 0) rc = wg_ipc_encoder_schema(enc, &msgs[0], err);
  if (rc == 0)
    rc = wg_flight_data_encode((struct wg_bytes){dbytes, (int64_t)dl}, &msgs[0],
                               metadata_on_first_batch ? none : md, NULL, &bb, err);
  if (rc == 0) rc = wg_rpc_client_call_send(call, bb);
  for (int b = 0; rc == 0 && b < batches; b++) {
    int64_t n = 0;
    rc = wg_ipc_encoder_batch(enc, &first, msgs, &n, err);
    for (int64_t i = 0; rc == 0 && i < n; i++) {
      bool with_md = metadata_on_first_batch && b == 0 && i == n - 1;
      rc = wg_flight_data_encode(none, &msgs[i], with_md ? md : none, NULL, &bb, err);
      if (rc == 0) rc = wg_rpc_client_call_send(call, bb);
    }
    for (int64_t i = 0; i < n; i++)
      wg_ipc_encoded_reset(&msgs[i]);
  }
  if (rc == 0 && how == PUT_CLOSE) rc = wg_rpc_client_call_close_send(call);
  if (rc == 0 && how == PUT_CLOSE_THEN_CANCEL) {
    rc = wg_rpc_client_call_close_send(call);
    wg_rpc_client_call_cancel(call);
  }
  if (rc == 0 && how == PUT_CLOSE_WAIT_CANCEL) {
    rc = wg_rpc_client_call_close_send(call);
    sleep_ms(300);
    wg_rpc_client_call_cancel(call);
  }
  if (rc == 0 && how == PUT_CANCEL) {
    wg_rpc_client_call_cancel(call); /* at once: batches still in flight or being appended */
  }
  if (rc == 0 && how == PUT_LET_DEADLINE_PASS) sleep_ms((int)timeout_ms + 500);
  if (call != NULL) {
    for (;;) {
      grpc_byte_buffer *in = NULL;
      if (wg_rpc_client_call_recv(call, &in) != 0 || in == NULL) break;
      ProtobufCMessage *m = NULL;
      if (wg_flight_unpack(&arrow__flight__protocol__put_result__descriptor, in, &m, NULL) == 0) {
        const ProtobufCBinaryData *a = &((Arrow__Flight__Protocol__PutResult *)m)->app_metadata;
        const char *r = memmem(a->data, a->len, "\"rows\":", 7);
        if (r != NULL) *acked = atoll(r + 7);
        if (ack != NULL) {
          size_t k = a->len < ack_size - 1 ? a->len : ack_size - 1;
          memcpy(ack, a->data, k);
          ack[k] = '\0';
        }
        protobuf_c_message_free_unpacked(m, NULL);
      }
      grpc_byte_buffer_destroy(in);
    }
    grpc_status_code code;
    int frc = wg_rpc_client_call_finish(call, &code, err);
    /* a send that failed because the server already finished the call: its status tells why */
    if (rc == 0 || (rc == EPIPE && frc != 0)) rc = frc;
    wg_rpc_client_call_destroy(call);
  }
  for (int64_t i = 0; i <= max; i++)
    wg_ipc_encoded_reset(&msgs[i]);
  free(msgs);
  wg_array_release(&first);
  wg_ipc_encoder_destroy(enc);
  wg_rpc_channel_destroy(ch);
  return rc;
}

/* The stats counters as text (for "puts" and "errors"), and active_calls as a number. */
static int64_t stat_of(struct wg_client *c, const char *name) {
  struct wg_buf out;
  wg_buf_init(&out);
  struct wg_status ws;
  int64_t v = -1;
  char key[64];
  snprintf(key, sizeof(key), "\"%s\":", name);
  if (wg_fx_action(c, "stats", "", 0, &out, &ws) == 0 && out.data != NULL) {
    wg_buf_append(&out, "", 1);
    const char *p = strstr((char *)out.data, key);
    if (p != NULL) v = atoll(p + strlen(key));
  }
  wg_buf_reset(&out);
  return v;
}

/* Waits until only the stats call itself is active on the server: every put handler returned. */
static int64_t wait_idle(struct wg_client *c) {
  int64_t active = -1;
  for (int i = 0; i < 200; i++) {
    active = stat_of(c, "active_calls");
    if (active == 1) break;
    sleep_ms(50);
  }
  return active;
}

static int64_t count_rows(struct wg_client *c, const char *table) {
  char sql[256];
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", table);
  int64_t n = -1;
  struct wg_status ws;
  if (wg_fx_query_i64(c, sql, &n, &ws) != 0) return -1;
  return n;
}

/* ---- item 1: a cancelled put must not commit ---- */

/* One scenario: 5 batches of 1,000 rows, then the stream ends as `how` says; with group_mb 0 the
 * default 8 MiB group commit takes the put, with a tiny limit it streams into its own
 * transaction. A first put creates the table, so that "no rows" cannot mean "no table". */
static void cancelled_scenario(int64_t group_commit_bytes, enum put_end how) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 4, .group_commit_bytes = group_commit_bytes};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c;
  struct wg_error err;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  int64_t acked;
  ASSERT_OK(raw_put(fx.uri, "t", 1, 10, NULL, PUT_CLOSE, 10000, &acked, NULL, 0, &err), &err);
  ASSERT_EQ(acked, 10);
  int64_t errors_before = stat_of(c, "errors");
  int64_t puts_before = stat_of(c, "puts");
  for (int round = 0; round < 3; round++) {
    int rc = raw_put(fx.uri, "t", 20, 10000, NULL, how, how == PUT_LET_DEADLINE_PASS ? 700 : 20000,
                     &acked, NULL, 0, &err);
    ASSERT_NE(rc, 0);
    ASSERT_EQ(acked, -1);
    ASSERT_EQ(wait_idle(c), 1);
    ASSERT_EQ(count_rows(c, "t"), 10);
  }
  ASSERT_EQ(stat_of(c, "puts"), puts_before);
  /* each cancelled put that reached its handler counts as an error (one cancelled before a worker
   * took it never runs) */
  ASSERT_TRUE(stat_of(c, "errors") > errors_before);
  /* and the server still takes a normal put */
  ASSERT_OK(raw_put(fx.uri, "t", 2, 100, NULL, PUT_CLOSE, 10000, &acked, NULL, 0, &err), &err);
  ASSERT_EQ(acked, 200);
  ASSERT_EQ(count_rows(c, "t"), 210);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

/* The client half-closes, so the put goes to the group committer, then cancels while the put
 * waits there: the test holds the committers' lock meanwhile, so the order is certain. */
static void cancel_while_waiting_for_group_commit(enum put_end how) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 4};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c;
  struct wg_error err;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  int64_t acked;
  ASSERT_OK(raw_put(fx.uri, "g", 1, 10, NULL, PUT_CLOSE, 10000, &acked, NULL, 0, &err), &err);
  int64_t puts_before = stat_of(c, "puts");
  int64_t errors_before = stat_of(c, "errors");
  pthread_mutex_lock(&fx.server->committer.mu);
  /* PUT_CLOSE here: a half-close with a 700 ms deadline that passes while the put waits */
  int rc = raw_put(fx.uri, "g", 5, 1000, NULL, how, how == PUT_CLOSE ? 700 : 20000, &acked, NULL, 0,
                   &err);
  sleep_ms(200);
  pthread_mutex_unlock(&fx.server->committer.mu);
  ASSERT_EQ(rc, how == PUT_CLOSE ? ETIMEDOUT : ECANCELED);
  ASSERT_EQ(acked, -1);
  ASSERT_EQ(wait_idle(c), 1);
  ASSERT_EQ(count_rows(c, "g"), 10);
  ASSERT_EQ(stat_of(c, "puts"), puts_before);
  ASSERT_EQ(stat_of(c, "errors"), errors_before + 1);
  /* the committer goes on committing other puts */
  ASSERT_OK(raw_put(fx.uri, "g", 1, 5, NULL, PUT_CLOSE, 10000, &acked, NULL, 0, &err), &err);
  ASSERT_EQ(count_rows(c, "g"), 15);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

static void cancelled_put_leaves_no_rows(void) {
  cancel_while_waiting_for_group_commit(PUT_CLOSE_WAIT_CANCEL);
  cancelled_scenario(0, PUT_CLOSE_THEN_CANCEL);
  cancelled_scenario(1000, PUT_CLOSE_THEN_CANCEL);
  cancelled_scenario(0, PUT_CANCEL);    /* group commit (8 MiB) */
  cancelled_scenario(1000, PUT_CANCEL); /* streaming: past 1,000 bytes */
}

static void deadline_expired_put_leaves_no_rows(void) {
  cancel_while_waiting_for_group_commit(PUT_CLOSE);
  cancelled_scenario(0, PUT_LET_DEADLINE_PASS);
  cancelled_scenario(1000, PUT_LET_DEADLINE_PASS);
}

static int exec_sql(struct wg_client *c, const char *sql, struct wg_status *st) {
  struct wg_buf out;
  wg_buf_init(&out);
  int rc = wg_fx_action(c, "execute", sql, strlen(sql), &out, st);
  wg_buf_reset(&out);
  return rc;
}

/* ---- item 4: a table name is exactly what the client sent, or refused ---- */

static void refused_path(const char *uri, struct wg_client *c, const char *const *parts,
                         const size_t *lens, int n, const char *want) {
  uint8_t d[256];
  size_t dl = path_descriptor(d, parts, lens, n);
  int64_t acked;
  struct wg_error err;
  int rc = raw_put_desc(uri, d, dl, 1, 10, NULL, PUT_CLOSE, 10000, &acked, NULL, 0, &err);
  ASSERT_EQ(rc, EINVAL);
  ASSERT_EQ(acked, -1);
  if (strstr(err.message, want) == NULL) fprintf(stderr, "  message: %s\n", err.message);
  ASSERT_TRUE(strstr(err.message, want) != NULL);
  (void)c;
}

static void put_refuses_names_that_are_not_exactly_text(void) {
  for (int streaming = 0; streaming < 2; streaming++) {
    struct wg_fx_server fx;
    struct wg_server_options o = {.threads = 4, .group_commit_bytes = streaming ? 100 : 0};
    ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
    struct wg_client *c;
    struct wg_error err;
    struct wg_status ws;
    ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
    int64_t acked;
    ASSERT_OK(raw_put(fx.uri, "victim", 1, 10, NULL, PUT_CLOSE, 10000, &acked, NULL, 0, &err),
              &err);
    const char *nul[] = {"victim\0suffix"};
    size_t nul_len[] = {13};
    refused_path(fx.uri, c, nul, nul_len, 1, "NUL");
    const char *bad[] = {"caf\xe9"}; /* Latin-1, not UTF-8 */
    size_t bad_len[] = {4};
    refused_path(fx.uri, c, bad, bad_len, 1, "UTF-8");
    const char *overlong[] = {"a\xc0\xaf" "b"}; /* an overlong '/' */
    size_t overlong_len[] = {4};
    refused_path(fx.uri, c, overlong, overlong_len, 1, "UTF-8");
    const char *bad_schema[] = {"ma\xffin", "victim"};
    size_t bad_schema_len[] = {5, 6};
    refused_path(fx.uri, c, bad_schema, bad_schema_len, 2, "UTF-8");
    const char *empty_schema[] = {"", "tt"};
    size_t empty_schema_len[] = {0, 2};
    refused_path(fx.uri, c, empty_schema, empty_schema_len, 2, "empty schema name");
    const char *view[] = {"duckdb_tables"};
    size_t view_len[] = {13};
    refused_path(fx.uri, c, view, view_len, 1, "not a table");
    ASSERT_OK(exec_sql(c, "CREATE VIEW v AS SELECT * FROM victim", &ws), ws.message);
    const char *user_view[] = {"v"};
    size_t user_view_len[] = {1};
    refused_path(fx.uri, c, user_view, user_view_len, 1, "not a table");
    ASSERT_EQ(count_rows(c, "victim"), 10);
    int64_t n = -1;
    ASSERT_OK(wg_fx_query_i64(c, "SELECT count(*) FROM duckdb_tables() WHERE table_name IN "
                                 "('tt', 'duckdb_tables', 'v') OR table_name LIKE 'caf%'",
                              &n, &ws),
              ws.message);
    ASSERT_EQ(n, 0);
    wg_disconnect(c);
    wg_fx_server_stop(&fx);
  }
}

static void acknowledgement_names_the_table_exactly(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 4};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_error err;
  struct wg_status ws;
  const char *names[] = {"a\"b", "back\\slash", "tab\there", "caf\xc3\xa9 \xe2\x82\xac"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    int64_t acked;
    char ack[512];
    ASSERT_OK(raw_put(fx.uri, names[i], 1, 7, NULL, PUT_CLOSE, 10000, &acked, ack, sizeof(ack),
                      &err),
              &err);
    cJSON *j = cJSON_Parse(ack);
    ASSERT_TRUE(j != NULL);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "table");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "rows");
    ASSERT_TRUE(cJSON_IsString(t) && cJSON_IsNumber(r));
    ASSERT_STREQ(t->valuestring, names[i]);
    ASSERT_EQ((int64_t)r->valuedouble, 7);
    cJSON_Delete(j);
  }
  /* drop_table answers the name as exact JSON too */
  struct wg_client *c;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  struct wg_buf out;
  wg_buf_init(&out);
  ASSERT_OK(wg_fx_action(c, "drop_table", "a\"b", 3, &out, &ws), ws.message);
  wg_buf_append(&out, "", 1);
  cJSON *j = cJSON_Parse((const char *)out.data);
  ASSERT_TRUE(j != NULL);
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "dropped");
  ASSERT_TRUE(cJSON_IsString(d));
  ASSERT_STREQ(d->valuestring, "a\"b");
  cJSON_Delete(j);
  wg_buf_reset(&out);
  /* an action body with a NUL or bad UTF-8 is refused, not cut short */
  ASSERT_EQ(wg_fx_action(c, "drop_table", "back\\slash\0x", 12, &out, &ws), EINVAL);
  ASSERT_EQ(wg_fx_action(c, "drop_table", "caf\xe9", 4, &out, &ws), EINVAL);
  wg_buf_reset(&out);
  ASSERT_EQ(count_rows(c, "back\\slash"), 7);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

/* ---- item 3: retries without duplicates ---- */

static bool ack_is_duplicate(const char *ack) {
  cJSON *j = cJSON_Parse(ack);
  bool d = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "duplicate"));
  cJSON_Delete(j);
  return d;
}

static void retried_put_with_key_appends_nothing(void) {
  for (int streaming = 0; streaming < 2; streaming++) {
    struct wg_fx_server fx;
    struct wg_server_options o = {.threads = 4, .group_commit_bytes = streaming ? 1000 : 0};
    ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
    struct wg_client *c;
    struct wg_error err;
    struct wg_status ws;
    ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
    int64_t acked;
    char ack[512];
    const char *k1 = "{\"idempotency_key\": \"batch-0001\"}";
    ASSERT_OK(raw_put(fx.uri, "t", 3, 100, k1, PUT_CLOSE, 10000, &acked, ack, sizeof(ack), &err),
              &err);
    ASSERT_EQ(acked, 300);
    ASSERT_TRUE(!(ack_is_duplicate(ack)));
    /* the retry: same key, even different data, appends nothing and gets the original count */
    ASSERT_OK(raw_put(fx.uri, "t", 5, 10, k1, PUT_CLOSE, 10000, &acked, ack, sizeof(ack), &err),
              &err);
    ASSERT_EQ(acked, 300);
    ASSERT_TRUE(ack_is_duplicate(ack));
    ASSERT_EQ(count_rows(c, "t"), 300);
    /* the key in the first record batch's app_metadata (pyarrow's write_with_metadata) */
    metadata_on_first_batch = true;
    const char *k2 = "{\"idempotency_key\": \"batch-0002\"}";
    ASSERT_OK(raw_put(fx.uri, "t", 2, 50, k2, PUT_CLOSE, 10000, &acked, ack, sizeof(ack), &err),
              &err);
    ASSERT_EQ(acked, 100);
    ASSERT_OK(raw_put(fx.uri, "t", 2, 50, k2, PUT_CLOSE, 10000, &acked, ack, sizeof(ack), &err),
              &err);
    ASSERT_EQ(acked, 100);
    ASSERT_TRUE(ack_is_duplicate(ack));
    metadata_on_first_batch = false;
    ASSERT_EQ(count_rows(c, "t"), 400);
    /* app_metadata that is not a key is not one; a malformed key is refused */
    ASSERT_OK(raw_put(fx.uri, "t", 1, 1, "not json", PUT_CLOSE, 10000, &acked, NULL, 0, &err),
              &err);
    ASSERT_OK(raw_put(fx.uri, "t", 1, 1, "not json", PUT_CLOSE, 10000, &acked, NULL, 0, &err),
              &err);
    ASSERT_EQ(count_rows(c, "t"), 402);
    ASSERT_EQ(raw_put(fx.uri, "t", 1, 1, "{\"idempotency_key\": 7}", PUT_CLOSE, 10000, &acked,
                      NULL, 0, &err),
              EINVAL);
    /* a failed put with a key does not use the key up */
    ASSERT_OK(exec_sql(c, "CREATE TABLE strict_t(id BIGINT, value DOUBLE CHECK (value < 0))", &ws),
              ws.message);
    const char *k3 = "{\"idempotency_key\": \"batch-0003\"}";
    ASSERT_NE(raw_put(fx.uri, "strict_t", 1, 10, k3, PUT_CLOSE, 10000, &acked, NULL, 0, &err), 0);
    ASSERT_OK(raw_put(fx.uri, "t", 1, 10, k3, PUT_CLOSE, 10000, &acked, ack, sizeof(ack), &err),
              &err);
    ASSERT_TRUE(!(ack_is_duplicate(ack)));
    ASSERT_EQ(count_rows(c, "t"), 412);
    /* a client that drops the keys' table loses the keys, not the ability to put with keys */
    ASSERT_OK(exec_sql(c, "DROP SCHEMA wigeon_internal CASCADE", &ws), ws.message);
    const char *k4 = "{\"idempotency_key\": \"batch-0004\"}";
    for (int i = 0; i < 2; i++) {
      ASSERT_OK(raw_put(fx.uri, "t", 1, 10, k4, PUT_CLOSE, 10000, &acked, ack, sizeof(ack), &err),
                &err);
      ASSERT_EQ(ack_is_duplicate(ack), i == 1);
    }
    ASSERT_EQ(count_rows(c, "t"), 422);
    /* the keys are not a table clients list */
    struct wg_table_info *tables = NULL;
    int64_t nt = 0;
    ASSERT_OK(wg_list_tables(c, NULL, &tables, &nt, &ws), ws.message);
    for (int64_t i = 0; i < nt; i++)
      ASSERT_TRUE(strcmp(tables[i].table_name, "put_keys") != 0);
    wg_table_info_free(tables, nt);
    wg_disconnect(c);
    wg_fx_server_stop(&fx);
  }
}

struct racer {
  const char *uri;
  int64_t acked;
  int rc;
};

static void *race_put(void *arg) {
  struct racer *r = arg;
  struct wg_error err;
  r->rc = raw_put(r->uri, "race", 4, 500, "{\"idempotency_key\": \"same\"}", PUT_CLOSE, 20000,
                  &r->acked, NULL, 0, &err);
  return NULL;
}

static void racing_puts_with_one_key_commit_once(void) {
  for (int streaming = 0; streaming < 2; streaming++) {
    struct wg_fx_server fx;
    struct wg_server_options o = {.threads = 8, .group_commit_bytes = streaming ? 1000 : 0};
    ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
    struct wg_client *c;
    struct wg_status ws;
    ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
    enum { N = 6 };
    struct racer r[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
      r[i] = (struct racer){fx.uri, -1, -1};
      pthread_create(&t[i], NULL, race_put, &r[i]);
    }
    for (int i = 0; i < N; i++) {
      pthread_join(t[i], NULL);
      ASSERT_EQ(r[i].rc, 0);
      ASSERT_EQ(r[i].acked, 2000);
    }
    ASSERT_EQ(count_rows(c, "race"), 2000);
    wg_disconnect(c);
    wg_fx_server_stop(&fx);
  }
}

static void idempotency_key_survives_kill_9(void) {
  char dir[256], db[300], window[] = "24";
  ASSERT_EQ(wg_fx_tmpdir(dir, sizeof(dir)), 0);
  snprintf(db, sizeof(db), "%s/k.duckdb", dir);
  const char *args[] = {"--db", db, "--idempotency-window", window, NULL};
  struct wg_fx_process p;
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  int64_t acked;
  char ack[512];
  struct wg_error err;
  struct wg_status ws;
  const char *k = "{\"idempotency_key\": \"before-the-crash\"}";
  ASSERT_OK(raw_put(p.uri, "t", 2, 1000, k, PUT_CLOSE, 10000, &acked, NULL, 0, &err), &err);
  ASSERT_EQ(acked, 2000);
  wg_fx_process_stop(&p, SIGKILL); /* as if the acknowledgement had been lost with the server */
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  ASSERT_OK(raw_put(p.uri, "t", 2, 1000, k, PUT_CLOSE, 10000, &acked, ack, sizeof(ack), &err),
            &err);
  ASSERT_EQ(acked, 2000);
  ASSERT_TRUE(ack_is_duplicate(ack));
  struct wg_client *c;
  ASSERT_OK(wg_fx_connect(&c, p.uri, &ws), ws.message);
  ASSERT_EQ(count_rows(c, "t"), 2000);
  wg_disconnect(c);
  wg_fx_process_stop(&p, SIGTERM);
  wg_fx_rmdir(dir);
}

/* wigeon load gives each put a key and sends a put again while the server is unreachable: killed
 * with -9 in the middle of a run and started again on its port, the table ends with exactly the
 * rows the run meant to put, none lost, none twice (a put whose acknowledgement died with the
 * server is acknowledged again as a duplicate). */
static void load_survives_kill_9_with_every_row_exactly_once(void) {
  char dir[256], db[300], listen[64], server[80];
  ASSERT_EQ(wg_fx_tmpdir(dir, sizeof(dir)), 0);
  snprintf(db, sizeof(db), "%s/l.duckdb", dir);
  struct wg_fx_process p;
  const char *first[] = {"--db", db, NULL};
  ASSERT_EQ(wg_fx_process_start(&p, first), 0);
  int port = p.port;
  wg_fx_process_stop(&p, SIGTERM); /* now restart on this port, fixed, so load can find it again */
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
  snprintf(server, sizeof(server), "grpc://127.0.0.1:%d", port);
  const char *args[] = {"--db", db, "--listen", listen, NULL};
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  const char *build = getenv("WG_BUILD_DIR");
  char bin[1024];
  snprintf(bin, sizeof(bin), "%s/wigeon", build ? build : "build");
  pid_t load = fork();
  if (load == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execl(bin, bin, "load", "--server", server, "--writers", "2", "--batches", "300", "--rows",
          "1000", "--quiet", (char *)NULL);
    _exit(127);
  }
  ASSERT_TRUE(load > 0);
  sleep_ms(400);
  struct wg_client *c;
  struct wg_status ws;
  int64_t before = -1;
  ASSERT_OK(wg_fx_connect(&c, p.uri, &ws), ws.message);
  wg_fx_query_i64(c, "SELECT count(*) FROM events", &before, &ws);
  wg_disconnect(c);
  fprintf(stderr, "  %lld of 600,000 rows in when the server is killed\n", (long long)before);
  ASSERT_TRUE(before < 2 * 300 * 1000); /* the kill lands in the middle of the run */
  wg_fx_process_stop(&p, SIGKILL);
  sleep_ms(300);
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  int status = -1;
  ASSERT_EQ(waitpid(load, &status, 0), load);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  ASSERT_OK(wg_fx_connect(&c, p.uri, &ws), ws.message);
  int64_t n = -1;
  ASSERT_OK(wg_fx_query_i64(c, "SELECT count(*) FROM events", &n, &ws), ws.message);
  ASSERT_EQ(n, 2 * 300 * 1000);
  int64_t ids = -1;
  ASSERT_OK(wg_fx_query_i64(c, "SELECT count(*) FROM wigeon_internal.put_keys", &ids, &ws),
            ws.message);
  ASSERT_EQ(ids, 2 * 300);
  wg_disconnect(c);
  wg_fx_process_stop(&p, SIGTERM);
  wg_fx_rmdir(dir);
}

static void idempotency_keys_expire_after_their_window(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 4, .idempotency_window_s = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c;
  struct wg_error err;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  int64_t acked;
  char ack[512];
  const char *k = "{\"idempotency_key\": \"short-lived\"}";
  ASSERT_OK(raw_put(fx.uri, "t", 1, 10, k, PUT_CLOSE, 10000, &acked, ack, sizeof(ack), &err), &err);
  ASSERT_OK(raw_put(fx.uri, "t", 1, 10, k, PUT_CLOSE, 10000, &acked, ack, sizeof(ack), &err), &err);
  ASSERT_TRUE(ack_is_duplicate(ack));
  int64_t left = -1;
  for (int i = 0; i < 100; i++) { /* pruned within a second or so after 2 s */
    sleep_ms(100);
    ASSERT_OK(wg_fx_query_i64(c, "SELECT count(*) FROM wigeon_internal.put_keys", &left, &ws),
              ws.message);
    if (left == 0) break;
  }
  ASSERT_EQ(left, 0);
  ASSERT_OK(raw_put(fx.uri, "t", 1, 10, k, PUT_CLOSE, 10000, &acked, ack, sizeof(ack), &err), &err);
  ASSERT_TRUE(!(ack_is_duplicate(ack)));
  ASSERT_EQ(count_rows(c, "t"), 20);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

/* ---- item 5: execute is all or nothing ---- */

static void execute_is_all_or_nothing(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 4};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  ASSERT_EQ(exec_sql(c, "CREATE TABLE a3(x int); INSERT INTO nosuch VALUES (1)", &ws), ENOENT);
  ASSERT_TRUE(strstr(ws.message, "statement 2 of 2") != NULL);
  int64_t n = -1;
  ASSERT_OK(wg_fx_query_i64(c, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'a3'", &n,
                            &ws),
            ws.message);
  ASSERT_EQ(n, 0);
  /* a failure at run time (not at prepare) undoes the statements before it too */
  ASSERT_OK(exec_sql(c, "CREATE TABLE k(x int PRIMARY KEY)", &ws), ws.message);
  ASSERT_EQ(exec_sql(c, "INSERT INTO k VALUES (1); INSERT INTO k VALUES (2), (1)", &ws), EEXIST);
  ASSERT_EQ(count_rows(c, "k"), 0);
  /* all statements succeed: rows_changed is their sum */
  struct wg_buf out;
  wg_buf_init(&out);
  const char *ok = "INSERT INTO k VALUES (1), (2); UPDATE k SET x = x + 10; INSERT INTO k VALUES (3)";
  ASSERT_OK(wg_fx_action(c, "execute", ok, strlen(ok), &out, &ws), ws.message);
  wg_buf_append(&out, "", 1);
  ASSERT_STREQ((const char *)out.data, "{\"rows_changed\":5}");
  wg_buf_reset(&out);
  ASSERT_EQ(count_rows(c, "k"), 3);
  /* transaction control among several statements would defeat the rule: refused, nothing run */
  ASSERT_EQ(exec_sql(c, "INSERT INTO k VALUES (4); COMMIT; INSERT INTO nosuch VALUES (1)", &ws),
            EINVAL);
  ASSERT_TRUE(strstr(ws.message, "BEGIN, COMMIT or ROLLBACK") != NULL);
  ASSERT_EQ(count_rows(c, "k"), 3);
  ASSERT_EQ(exec_sql(c, "BEGIN; INSERT INTO k VALUES (4); COMMIT; INSERT INTO k VALUES (5)", &ws),
            EINVAL);
  ASSERT_EQ(count_rows(c, "k"), 3);
  /* a text that manages its own transaction: BEGIN ... COMMIT commits, a failure inside keeps
   * nothing */
  ASSERT_OK(exec_sql(c, "BEGIN; INSERT INTO k VALUES (4); INSERT INTO k VALUES (5); COMMIT", &ws),
            ws.message);
  ASSERT_EQ(count_rows(c, "k"), 5);
  ASSERT_EQ(exec_sql(c, "BEGIN; INSERT INTO k VALUES (6); INSERT INTO k VALUES (11); COMMIT", &ws),
            EEXIST);
  ASSERT_EQ(count_rows(c, "k"), 5);
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  RUN_TEST(cancelled_put_leaves_no_rows);
  RUN_TEST(deadline_expired_put_leaves_no_rows);
  RUN_TEST(put_refuses_names_that_are_not_exactly_text);
  RUN_TEST(acknowledgement_names_the_table_exactly);
  RUN_TEST(execute_is_all_or_nothing);
  RUN_TEST(retried_put_with_key_appends_nothing);
  RUN_TEST(racing_puts_with_one_key_commit_once);
  RUN_TEST(idempotency_key_survives_kill_9);
  RUN_TEST(load_survives_kill_9_with_every_row_exactly_once);
  RUN_TEST(idempotency_keys_expire_after_their_window);
  return TEST_SUMMARY();
}
