/* wigeon: tests for src/rpc, the gRPC transport. Each test starts a real server on 127.0.0.1 with
 * an ephemeral port and drives it with the client from src/rpc: unary, server and bidi streaming,
 * large messages, concurrency, the bounded queue, cancellation, deadlines, errors, metadata and
 * shutdown. Every wait is bounded; nothing leaves loopback. */
#include "rpc/rpc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Polls until *v >= want or timeout_ms passes; returns whether it got there. */
static bool wait_for(atomic_int *v, int want, int64_t timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  while (atomic_load(v) < want) {
    if (now_ms() > end) return false;
    sleep_ms(1);
  }
  return true;
}

static char *flatten_string(grpc_byte_buffer *bb) {
  uint8_t *data = NULL;
  size_t size = 0;
  if (wg_rpc_buffer_flatten(bb, &data, &size) != 0) return NULL;
  char *s = malloc(size + 1);
  if (s != NULL) {
    memcpy(s, data, size);
    s[size] = '\0';
  }
  free(data);
  return s;
}

static grpc_byte_buffer *string_buffer(const char *s) {
  return wg_rpc_buffer_from_copy(s, strlen(s));
}

/* ---------------------------------------------------------------------------------------------
 * The test service: one handler, dispatching on the method path */

struct state {
  atomic_int started;    /* handlers that reached their waiting point */
  atomic_int release;    /* /test/Block handlers wait for this */
  atomic_int saw_cancel; /* handlers that observed wg_rpc_call_cancelled */
  atomic_int hook_ran;
  atomic_int done; /* handlers that returned (of the waiting kinds) */
  atomic_int recv_failed;
  int sleep_ms; /* /test/Sleep */
};

static void on_cancel_hook(void *arg) {
  struct state *st = arg;
  atomic_fetch_add(&st->hook_ran, 1);
}

static void handle_echo(struct wg_rpc_call *call) {
  grpc_byte_buffer *req = NULL;
  if (wg_rpc_call_recv(call, &req) != 0 || req == NULL) {
    wg_rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "no request");
    return;
  }
  char *s = flatten_string(req);
  grpc_byte_buffer_destroy(req);
  char reply[512];
  snprintf(reply, sizeof(reply), "%s %s", wg_rpc_call_method(call), s ? s : "");
  free(s);
  wg_rpc_call_send(call, string_buffer(reply));
  wg_rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

static void handle_echo_raw(struct wg_rpc_call *call, struct state *st) {
  grpc_byte_buffer *req = NULL;
  if (wg_rpc_call_recv(call, &req) != 0 || req == NULL) {
    atomic_fetch_add(&st->recv_failed, 1);
    wg_rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "no request");
    return;
  }
  wg_rpc_call_send(call, req); /* the same slices go back: no copy */
  wg_rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

static void handle_stream(struct wg_rpc_call *call) {
  grpc_byte_buffer *req = NULL;
  if (wg_rpc_call_recv(call, &req) != 0 || req == NULL) {
    wg_rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "no request");
    return;
  }
  char *s = flatten_string(req);
  grpc_byte_buffer_destroy(req);
  int n = s ? atoi(s) : 0;
  free(s);
  for (int i = 0; i < n; i++) {
    char msg[32];
    snprintf(msg, sizeof(msg), "msg %d", i);
    if (wg_rpc_call_send(call, string_buffer(msg)) != 0) {
      wg_rpc_call_finish(call, GRPC_STATUS_CANCELLED, "send failed");
      return;
    }
  }
  wg_rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

/* Request "N" or "N!": N messages, every one but the last started without waiting
 * (wg_rpc_call_send_start), the last sent with the status (wg_rpc_call_finish_with): OK, or
 * NOT_FOUND when the request ends in '!'. */
static void handle_stream_async(struct wg_rpc_call *call) {
  grpc_byte_buffer *req = NULL;
  if (wg_rpc_call_recv(call, &req) != 0 || req == NULL) {
    wg_rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "no request");
    return;
  }
  char *s = flatten_string(req);
  grpc_byte_buffer_destroy(req);
  int n = s ? atoi(s) : 0;
  bool fail = s != NULL && strchr(s, '!') != NULL;
  free(s);
  for (int i = 0; i + 1 < n; i++) {
    char msg[32];
    snprintf(msg, sizeof(msg), "msg %d", i);
    if (wg_rpc_call_send_start(call, string_buffer(msg)) != 0) {
      wg_rpc_call_finish(call, GRPC_STATUS_CANCELLED, "send failed");
      return;
    }
  }
  char last[32];
  snprintf(last, sizeof(last), "msg %d", n - 1);
  wg_rpc_call_finish_with(call, n > 0 ? string_buffer(last) : NULL,
                          fail ? GRPC_STATUS_NOT_FOUND : GRPC_STATUS_OK,
                          fail ? "failed after the messages" : NULL);
}

static void handle_bidi(struct wg_rpc_call *call) {
  for (int i = 0; i < 100000; i++) {
    grpc_byte_buffer *req = NULL;
    if (wg_rpc_call_recv(call, &req) != 0) {
      wg_rpc_call_finish(call, GRPC_STATUS_CANCELLED, "recv failed");
      return;
    }
    if (req == NULL) break; /* half-close */
    char *s = flatten_string(req);
    grpc_byte_buffer_destroy(req);
    char reply[128];
    snprintf(reply, sizeof(reply), "ack %s", s ? s : "");
    free(s);
    if (wg_rpc_call_send(call, string_buffer(reply)) != 0) {
      wg_rpc_call_finish(call, GRPC_STATUS_CANCELLED, "send failed");
      return;
    }
  }
  wg_rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

static void handle_block(struct wg_rpc_call *call, struct state *st) {
  atomic_fetch_add(&st->started, 1);
  wait_for(&st->release, 1, 10000);
  wg_rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

static void handle_wait_cancel(struct wg_rpc_call *call, struct state *st) {
  wg_rpc_call_set_cancel_hook(call, on_cancel_hook, st);
  atomic_fetch_add(&st->started, 1);
  int64_t end = now_ms() + 5000;
  while (!wg_rpc_call_cancelled(call) && now_ms() < end)
    sleep_ms(1);
  if (wg_rpc_call_cancelled(call)) atomic_fetch_add(&st->saw_cancel, 1);
  /* Operations on a cancelled call fail fast instead of blocking. */
  grpc_byte_buffer *req = NULL;
  if (wg_rpc_call_recv(call, &req) == ECANCELED) atomic_fetch_add(&st->recv_failed, 1);
  if (req != NULL) grpc_byte_buffer_destroy(req);
  wg_rpc_call_finish(call, GRPC_STATUS_CANCELLED, "cancelled");
  atomic_fetch_add(&st->done, 1);
}

static void handle_sleep(struct wg_rpc_call *call, struct state *st) {
  atomic_fetch_add(&st->started, 1);
  sleep_ms(st->sleep_ms);
  wg_rpc_call_send(call, string_buffer("slept"));
  wg_rpc_call_finish(call, GRPC_STATUS_OK, NULL);
  atomic_fetch_add(&st->done, 1);
}

static void handle_metadata(struct wg_rpc_call *call) {
  int64_t auth_len = -1, trace_len = -1;
  const char *auth = wg_rpc_call_metadata(call, "authorization", &auth_len);
  const char *trace = wg_rpc_call_metadata(call, "x-wg-trace", &trace_len);
  const char *missing = wg_rpc_call_metadata(call, "x-not-sent", NULL);
  char reply[512];
  snprintf(reply, sizeof(reply), "auth=%s/%lld trace=%s/%lld missing=%s peer=%s",
           auth ? auth : "(null)", (long long)auth_len, trace ? trace : "(null)",
           (long long)trace_len, missing ? missing : "(null)", wg_rpc_call_peer(call));
  wg_rpc_call_send(call, string_buffer(reply));
  wg_rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

static void test_handler(struct wg_rpc_call *call, void *ctx) {
  struct state *st = ctx;
  const char *m = wg_rpc_call_method(call);
  if (strcmp(m, "/test/Echo") == 0) {
    handle_echo(call);
  } else if (strcmp(m, "/test/EchoRaw") == 0) {
    handle_echo_raw(call, st);
  } else if (strcmp(m, "/test/Stream") == 0) {
    handle_stream(call);
  } else if (strcmp(m, "/test/StreamAsync") == 0) {
    handle_stream_async(call);
  } else if (strcmp(m, "/test/Bidi") == 0) {
    handle_bidi(call);
  } else if (strcmp(m, "/test/Block") == 0) {
    handle_block(call, st);
  } else if (strcmp(m, "/test/WaitCancel") == 0) {
    handle_wait_cancel(call, st);
  } else if (strcmp(m, "/test/Sleep") == 0) {
    handle_sleep(call, st);
  } else if (strcmp(m, "/test/Metadata") == 0) {
    handle_metadata(call);
  } else if (strcmp(m, "/test/NotFound") == 0) {
    wg_rpc_call_finish(call, wg_rpc_status_from_errno(ENOENT), "no such table: t");
  } else if (strcmp(m, "/test/NoFinish") == 0) {
    /* returns without finishing: the server must answer INTERNAL itself */
  } else {
    wg_rpc_call_finish(call, GRPC_STATUS_UNIMPLEMENTED, m);
  }
}

struct fixture {
  struct state st;
  struct wg_rpc_server *server;
  struct wg_rpc_channel *channel;
  int port;
};

static int fixture_start(struct fixture *f, int threads, int queue_limit, int64_t max_bytes) {
  memset(f, 0, sizeof(*f));
  struct wg_rpc_server_options o = {.listen = "127.0.0.1:0",
                                    .threads = threads,
                                    .max_workers = threads, /* a fixed pool: queue tests */
                                    .queue_limit = queue_limit,
                                    .max_message_bytes = max_bytes,
                                    .handler = test_handler,
                                    .ctx = &f->st};
  struct wg_error err = {{0}};
  int rc = wg_rpc_server_start(&f->server, &o, &f->port, &err);
  if (rc != 0) {
    fprintf(stderr, "  server start: %s\n", err.message);
    return rc;
  }
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", f->port);
  rc = wg_rpc_channel_create(&f->channel, target, &err);
  if (rc != 0) fprintf(stderr, "  channel: %s\n", err.message);
  return rc;
}

static void fixture_stop(struct fixture *f) {
  wg_rpc_channel_destroy(f->channel);
  f->channel = NULL;
  wg_rpc_server_shutdown(f->server, 1000);
  wg_rpc_server_destroy(f->server);
  f->server = NULL;
}

/* One request message, one response (or none), then the status. *resp is malloc'ed or NULL. */
struct unary {
  struct wg_rpc_channel *channel;
  const char *method;
  const char *const *metadata;
  int64_t timeout_ms;
  const char *request;
  char *response;
  grpc_status_code code;
  int rc;
  struct wg_error err;
};

static void unary_run(struct unary *u) {
  struct wg_rpc_client_call *c = NULL;
  u->response = NULL;
  u->code = GRPC_STATUS_UNKNOWN;
  u->rc = wg_rpc_client_call_start(u->channel, u->method, u->timeout_ms, u->metadata, &c, &u->err);
  if (u->rc != 0) return;
  if (u->request != NULL) wg_rpc_client_call_send(c, string_buffer(u->request));
  wg_rpc_client_call_close_send(c);
  grpc_byte_buffer *bb = NULL;
  if (wg_rpc_client_call_recv(c, &bb) == 0 && bb != NULL) {
    u->response = flatten_string(bb);
    grpc_byte_buffer_destroy(bb);
  }
  u->rc = wg_rpc_client_call_finish(c, &u->code, &u->err);
  wg_rpc_client_call_destroy(c);
}

static void *unary_thread(void *arg) {
  unary_run(arg);
  return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Tests */

static void status_mapping_matches_the_documented_table_both_ways(void) {
  static const struct {
    int code;
    grpc_status_code status;
  } to[] = {{0, GRPC_STATUS_OK},
            {EINVAL, GRPC_STATUS_INVALID_ARGUMENT},
            {EPROTO, GRPC_STATUS_INVALID_ARGUMENT},
            {ENOENT, GRPC_STATUS_NOT_FOUND},
            {EEXIST, GRPC_STATUS_ALREADY_EXISTS},
            {EPERM, GRPC_STATUS_FAILED_PRECONDITION},
            {EACCES, GRPC_STATUS_PERMISSION_DENIED},
            {WG_EUNAUTHENTICATED, GRPC_STATUS_UNAUTHENTICATED},
            {EAGAIN, GRPC_STATUS_ABORTED},
            {ENOMEM, GRPC_STATUS_RESOURCE_EXHAUSTED},
            {EBUSY, GRPC_STATUS_RESOURCE_EXHAUSTED},
            {ECANCELED, GRPC_STATUS_CANCELLED},
            {ETIMEDOUT, GRPC_STATUS_DEADLINE_EXCEEDED},
            {ENOTSUP, GRPC_STATUS_UNIMPLEMENTED},
            {ECONNREFUSED, GRPC_STATUS_UNAVAILABLE},
            {EPIPE, GRPC_STATUS_UNAVAILABLE},
            {EIO, GRPC_STATUS_INTERNAL},
            {ENODATA, GRPC_STATUS_INTERNAL},
            {12345, GRPC_STATUS_INTERNAL}};
  for (size_t i = 0; i < sizeof(to) / sizeof(to[0]); i++) {
    ASSERT_EQ(wg_rpc_status_from_errno(to[i].code), to[i].status);
  }
  static const struct {
    grpc_status_code status;
    int code;
  } back[] = {{GRPC_STATUS_OK, 0},
              {GRPC_STATUS_INVALID_ARGUMENT, EINVAL},
              {GRPC_STATUS_NOT_FOUND, ENOENT},
              {GRPC_STATUS_ALREADY_EXISTS, EEXIST},
              {GRPC_STATUS_FAILED_PRECONDITION, EPERM},
              {GRPC_STATUS_PERMISSION_DENIED, EACCES},
              {GRPC_STATUS_UNAUTHENTICATED, WG_EUNAUTHENTICATED},
              {GRPC_STATUS_ABORTED, EAGAIN},
              {GRPC_STATUS_RESOURCE_EXHAUSTED, EBUSY},
              {GRPC_STATUS_CANCELLED, ECANCELED},
              {GRPC_STATUS_DEADLINE_EXCEEDED, ETIMEDOUT},
              {GRPC_STATUS_UNIMPLEMENTED, ENOTSUP},
              {GRPC_STATUS_UNAVAILABLE, ECONNREFUSED},
              {GRPC_STATUS_INTERNAL, EIO},
              {GRPC_STATUS_UNKNOWN, EIO},
              {GRPC_STATUS_DATA_LOSS, EIO}};
  for (size_t i = 0; i < sizeof(back) / sizeof(back[0]); i++) {
    ASSERT_EQ(wg_rpc_errno_from_status(back[i].status), back[i].code);
    /* and every status wigeon sends survives the trip back and forth */
    ASSERT_EQ(wg_rpc_status_from_errno(wg_rpc_errno_from_status(back[i].status)),
              back[i].status == GRPC_STATUS_UNKNOWN || back[i].status == GRPC_STATUS_DATA_LOSS
                  ? GRPC_STATUS_INTERNAL
                  : back[i].status);
  }
}

static void call_errors_map_once_with_each_sides_code_for_an_ended_call(void) {
  ASSERT_EQ(wg_rpc_errno_from_call_error(GRPC_CALL_OK, EPIPE), 0);
  ASSERT_EQ(wg_rpc_errno_from_call_error(GRPC_CALL_ERROR_TOO_MANY_OPERATIONS, EPIPE), EBUSY);
  ASSERT_EQ(wg_rpc_errno_from_call_error(GRPC_CALL_ERROR_ALREADY_FINISHED, EPIPE), EPIPE);
  ASSERT_EQ(wg_rpc_errno_from_call_error(GRPC_CALL_ERROR_ALREADY_FINISHED, ECANCELED), ECANCELED);
  ASSERT_EQ(wg_rpc_errno_from_call_error(GRPC_CALL_ERROR_INVALID_FLAGS, ECANCELED), EINVAL);
  /* the reserved authentication codes are distinct from every other code of the table */
  ASSERT_TRUE(WG_EUNAUTHENTICATED != EACCES && WG_EUNAUTHENTICATED != EPERM);
  ASSERT_STREQ(wg_status_name(WG_EUNAUTHENTICATED), "EUNAUTHENTICATED");
  ASSERT_STREQ(wg_status_name(EACCES), "EACCES");
}

static void buffer_helpers_copy_and_flatten_multi_slice_buffers(void) {
  grpc_byte_buffer *bb = wg_rpc_buffer_from_copy("hello", 5);
  uint8_t *data = NULL;
  size_t size = 0;
  ASSERT_OK(wg_rpc_buffer_flatten(bb, &data, &size), NULL);
  grpc_byte_buffer_destroy(bb);
  ASSERT_EQ(size, 5);
  ASSERT_TRUE(memcmp(data, "hello", 5) == 0);
  free(data);

  grpc_slice parts[3] = {grpc_slice_from_copied_string("ab"), grpc_empty_slice(),
                         grpc_slice_from_copied_string("cde")};
  bb = grpc_raw_byte_buffer_create(parts, 3);
  for (int i = 0; i < 3; i++)
    grpc_slice_unref(parts[i]);
  ASSERT_OK(wg_rpc_buffer_flatten(bb, &data, &size), NULL);
  grpc_byte_buffer_destroy(bb);
  ASSERT_EQ(size, 5);
  ASSERT_TRUE(memcmp(data, "abcde", 5) == 0);
  free(data);

  bb = wg_rpc_buffer_from_copy(NULL, 0);
  ASSERT_OK(wg_rpc_buffer_flatten(bb, &data, &size), NULL);
  grpc_byte_buffer_destroy(bb);
  ASSERT_EQ(size, 0);
  free(data);
  ASSERT_EQ(wg_rpc_buffer_flatten(NULL, &data, &size), EINVAL);
}

static void server_start_reports_cannot_listen_on_bad_address(void) {
  struct state st;
  memset(&st, 0, sizeof(st));
  struct wg_rpc_server_options o = {
      .listen = "unix:/nonexistent-wigeon-dir/rpc.sock", .handler = test_handler, .ctx = &st};
  struct wg_rpc_server *s = NULL;
  struct wg_error err = {{0}};
  int rc = wg_rpc_server_start(&s, &o, NULL, &err);
  ASSERT_NE(rc, 0);
  ASSERT_TRUE(s == NULL);
  ASSERT_TRUE(strstr(err.message, "cannot listen on unix:/nonexistent-wigeon-dir/rpc.sock") !=
              NULL);
  o.handler = NULL;
  o.listen = "127.0.0.1:0";
  ASSERT_EQ(wg_rpc_server_start(&s, &o, NULL, &err), EINVAL);
}

static void unary_echo_shows_method_to_handler(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 2, 8, 0), NULL);
  ASSERT_TRUE(f.port > 0);
  struct unary u = {.channel = f.channel, .method = "/test/Echo", .request = "ping"};
  unary_run(&u);
  fixture_stop(&f);
  ASSERT_OK(u.rc, &u.err);
  ASSERT_EQ(u.code, GRPC_STATUS_OK);
  ASSERT_STREQ(u.response, "/test/Echo ping");
  free(u.response);
}

/* Calls a streaming `method` with `request` and reads every message: *count of them, *in_order
 * when they are "msg 0", "msg 1", ...; returns the call's outcome, *code its status. */
static int read_stream(struct fixture *f, const char *method, const char *request, int *count,
                       bool *in_order, grpc_status_code *code, struct wg_error *err) {
  struct wg_rpc_client_call *c = NULL;
  WG_RETURN_NOT_OK(wg_rpc_client_call_start(f->channel, method, 10000, NULL, &c, err));
  int rc = wg_rpc_client_call_send(c, string_buffer(request));
  if (rc == 0) rc = wg_rpc_client_call_close_send(c);
  *count = 0;
  *in_order = true;
  for (int i = 0; i < 2000 && rc == 0; i++) {
    grpc_byte_buffer *bb = NULL;
    if (wg_rpc_client_call_recv(c, &bb) != 0 || bb == NULL) break;
    char *s = flatten_string(bb);
    grpc_byte_buffer_destroy(bb);
    char want[32];
    snprintf(want, sizeof(want), "msg %d", *count);
    if (s == NULL || strcmp(s, want) != 0) *in_order = false;
    free(s);
    (*count)++;
  }
  int frc = wg_rpc_client_call_finish(c, code, err);
  wg_rpc_client_call_destroy(c);
  return rc != 0 ? rc : frc;
}

static void server_streams_1000_messages_in_order(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 2, 8, 0), NULL);
  struct wg_error err = {{0}};
  int count;
  bool in_order;
  grpc_status_code code;
  int rc = read_stream(&f, "/test/Stream", "1000", &count, &in_order, &code, &err);
  fixture_stop(&f);
  ASSERT_OK(rc, &err);
  ASSERT_EQ(code, GRPC_STATUS_OK);
  ASSERT_EQ(count, 1000);
  ASSERT_TRUE(in_order);
}

/* Sends started without waiting, and the last message in the status's batch, arrive complete and
 * in order, before the status, also when the status is an error. */
static void async_sends_and_the_last_message_with_the_status_arrive_in_order(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 2, 8, 0), NULL);
  struct wg_error err = {{0}}, err2 = {{0}}, err3 = {{0}};
  int n1, n2, n3;
  bool o1, o2, o3;
  grpc_status_code c1, c2, c3;
  int rc1 = read_stream(&f, "/test/StreamAsync", "1000", &n1, &o1, &c1, &err);
  int rc2 = read_stream(&f, "/test/StreamAsync", "3!", &n2, &o2, &c2, &err2);
  int rc3 = read_stream(&f, "/test/StreamAsync", "1", &n3, &o3, &c3, &err3);
  fixture_stop(&f);
  ASSERT_OK(rc1, &err);
  ASSERT_EQ(c1, GRPC_STATUS_OK);
  ASSERT_EQ(n1, 1000);
  ASSERT_TRUE(o1);
  ASSERT_EQ(rc2, ENOENT);
  ASSERT_EQ(c2, GRPC_STATUS_NOT_FOUND);
  ASSERT_STREQ(err2.message, "failed after the messages");
  ASSERT_EQ(n2, 3);
  ASSERT_TRUE(o2);
  ASSERT_OK(rc3, &err3);
  ASSERT_EQ(n3, 1);
}

static void bidi_stream_replies_after_each_client_message(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 2, 8, 0), NULL);
  struct wg_rpc_client_call *c = NULL;
  struct wg_error err = {{0}};
  ASSERT_OK(wg_rpc_client_call_start(f.channel, "/test/Bidi", 10000, NULL, &c, &err), &err);
  int replies = 0;
  for (int i = 0; i < 50; i++) {
    char msg[32], want[40];
    snprintf(msg, sizeof(msg), "%d", i);
    snprintf(want, sizeof(want), "ack %d", i);
    if (wg_rpc_client_call_send(c, string_buffer(msg)) != 0) break;
    grpc_byte_buffer *bb = NULL; /* the reply arrives before the next message is sent */
    if (wg_rpc_client_call_recv(c, &bb) != 0 || bb == NULL) break;
    char *s = flatten_string(bb);
    grpc_byte_buffer_destroy(bb);
    if (s != NULL && strcmp(s, want) == 0) replies++;
    free(s);
  }
  ASSERT_OK(wg_rpc_client_call_close_send(c), NULL);
  grpc_byte_buffer *end = NULL;
  ASSERT_OK(wg_rpc_client_call_recv(c, &end), NULL);
  ASSERT_TRUE(end == NULL);
  grpc_status_code code;
  int rc = wg_rpc_client_call_finish(c, &code, &err);
  wg_rpc_client_call_destroy(c);
  fixture_stop(&f);
  ASSERT_OK(rc, &err);
  ASSERT_EQ(replies, 50);
}

static void message_of_64_mib_round_trips_intact(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 2, 8, 0), NULL);
  size_t size = (size_t)64 << 20;
  uint8_t *data = malloc(size);
  ASSERT_TRUE(data != NULL);
  for (size_t i = 0; i < size; i++)
    data[i] = (uint8_t)((i * 2654435761u) >> 24);
  struct wg_rpc_client_call *c = NULL;
  struct wg_error err = {{0}};
  int rc = wg_rpc_client_call_start(f.channel, "/test/EchoRaw", 60000, NULL, &c, &err);
  int send_rc = -1, recv_rc = -1, same = 0;
  size_t got_size = 0;
  grpc_status_code code = GRPC_STATUS_UNKNOWN;
  if (rc == 0) {
    send_rc = wg_rpc_client_call_send(c, wg_rpc_buffer_from_copy(data, size));
    wg_rpc_client_call_close_send(c);
    grpc_byte_buffer *bb = NULL;
    recv_rc = wg_rpc_client_call_recv(c, &bb);
    if (bb != NULL) {
      uint8_t *got = NULL;
      if (wg_rpc_buffer_flatten(bb, &got, &got_size) == 0) {
        same = got_size == size && memcmp(got, data, size) == 0;
        free(got);
      }
      grpc_byte_buffer_destroy(bb);
    }
    rc = wg_rpc_client_call_finish(c, &code, &err);
    wg_rpc_client_call_destroy(c);
  }
  free(data);
  fixture_stop(&f);
  ASSERT_OK(rc, &err);
  ASSERT_EQ(send_rc, 0);
  ASSERT_EQ(recv_rc, 0);
  ASSERT_EQ(got_size, size);
  ASSERT_TRUE(same);
}

static void message_over_server_limit_fails_with_resource_exhausted(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 2, 8, 1 << 20), NULL);
  size_t size = (size_t)2 << 20;
  uint8_t *data = calloc(1, size);
  ASSERT_TRUE(data != NULL);
  struct wg_rpc_client_call *c = NULL;
  struct wg_error err = {{0}};
  int rc = wg_rpc_client_call_start(f.channel, "/test/EchoRaw", 10000, NULL, &c, &err);
  grpc_status_code code = GRPC_STATUS_OK;
  if (rc == 0) {
    wg_rpc_client_call_send(c, wg_rpc_buffer_from_copy(data, size));
    wg_rpc_client_call_close_send(c);
    grpc_byte_buffer *bb = NULL;
    wg_rpc_client_call_recv(c, &bb);
    if (bb != NULL) grpc_byte_buffer_destroy(bb);
    rc = wg_rpc_client_call_finish(c, &code, &err);
    wg_rpc_client_call_destroy(c);
  }
  free(data);
  wait_for(&f.st.recv_failed, 1, 5000);
  fixture_stop(&f);
  ASSERT_EQ(code, GRPC_STATUS_RESOURCE_EXHAUSTED);
  ASSERT_EQ(rc, EBUSY);
}

struct echo_job {
  struct wg_rpc_channel *channel;
  int id;
  int ok;
};

static void *echo_job_thread(void *arg) {
  struct echo_job *j = arg;
  for (int i = 0; i < 25; i++) {
    char req[64], want[96];
    snprintf(req, sizeof(req), "thread %d call %d", j->id, i);
    snprintf(want, sizeof(want), "/test/Echo %s", req);
    struct unary u = {
        .channel = j->channel, .method = "/test/Echo", .request = req, .timeout_ms = 20000};
    unary_run(&u);
    if (u.rc == 0 && u.code == GRPC_STATUS_OK && u.response && strcmp(u.response, want) == 0) {
      j->ok++;
    }
    free(u.response);
  }
  return NULL;
}

static void eight_client_threads_share_four_workers_and_all_succeed(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 4, 64, 0), NULL);
  enum { THREADS = 8 };
  struct echo_job jobs[THREADS];
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) {
    jobs[i] = (struct echo_job){.channel = f.channel, .id = i};
    pthread_create(&th[i], NULL, echo_job_thread, &jobs[i]);
  }
  int ok = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    ok += jobs[i].ok;
  }
  /* The client has its status a moment before the worker counts the call as done. */
  int64_t end = now_ms() + 5000;
  while (wg_rpc_server_active_calls(f.server) > 0 && now_ms() < end)
    sleep_ms(1);
  int64_t active = wg_rpc_server_active_calls(f.server);
  fixture_stop(&f);
  ASSERT_EQ(ok, THREADS * 25);
  ASSERT_EQ(active, 0);
}

static void full_queue_answers_resource_exhausted_server_busy(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 1, 1, 0), NULL);
  struct unary running = {.channel = f.channel, .method = "/test/Block", .timeout_ms = 20000};
  struct unary waiting = running;
  pthread_t t1, t2;
  pthread_create(&t1, NULL, unary_thread, &running);
  bool started = wait_for(&f.st.started, 1, 5000); /* the only worker is now busy */
  pthread_create(&t2, NULL, unary_thread, &waiting);
  int64_t end = now_ms() + 5000; /* the second call sits in the queue of one */
  while (wg_rpc_server_active_calls(f.server) < 2 && now_ms() < end)
    sleep_ms(1);
  int64_t active = wg_rpc_server_active_calls(f.server);
  struct unary rejected = {.channel = f.channel, .method = "/test/Block", .timeout_ms = 5000};
  unary_run(&rejected);
  atomic_store(&f.st.release, 1);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  fixture_stop(&f);
  ASSERT_TRUE(started);
  ASSERT_EQ(active, 2);
  ASSERT_EQ(rejected.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
  ASSERT_EQ(rejected.rc, EBUSY);
  ASSERT_STREQ(rejected.err.message, "server busy: 1 calls waiting");
  ASSERT_EQ(running.code, GRPC_STATUS_OK);
  ASSERT_EQ(waiting.code, GRPC_STATUS_OK);
  ASSERT_EQ(f.st.started, 2);
}

static void client_cancel_reaches_handler_and_runs_cancel_hook(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 2, 8, 0), NULL);
  struct wg_rpc_client_call *c = NULL;
  struct wg_error err = {{0}};
  ASSERT_OK(wg_rpc_client_call_start(f.channel, "/test/WaitCancel", 0, NULL, &c, &err), &err);
  bool started = wait_for(&f.st.started, 1, 5000);
  wg_rpc_client_call_cancel(c);
  grpc_status_code code = GRPC_STATUS_OK;
  int rc = wg_rpc_client_call_finish(c, &code, &err);
  wg_rpc_client_call_destroy(c);
  bool done = wait_for(&f.st.done, 1, 5000);
  fixture_stop(&f);
  ASSERT_TRUE(started);
  ASSERT_EQ(code, GRPC_STATUS_CANCELLED);
  ASSERT_EQ(rc, ECANCELED);
  ASSERT_TRUE(done);
  ASSERT_EQ(f.st.saw_cancel, 1);
  ASSERT_EQ(f.st.hook_ran, 1);
  ASSERT_EQ(f.st.recv_failed, 1);
}

static void deadline_100ms_gives_deadline_exceeded_and_cancels_handler(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 2, 8, 0), NULL);
  int64_t t0 = now_ms();
  struct unary u = {.channel = f.channel, .method = "/test/WaitCancel", .timeout_ms = 100};
  unary_run(&u);
  int64_t elapsed = now_ms() - t0;
  bool done = wait_for(&f.st.done, 1, 5000);
  fixture_stop(&f);
  ASSERT_EQ(u.code, GRPC_STATUS_DEADLINE_EXCEEDED);
  ASSERT_EQ(u.rc, ETIMEDOUT);
  ASSERT_TRUE(elapsed >= 90 && elapsed < 3000);
  ASSERT_TRUE(done);
  ASSERT_EQ(f.st.saw_cancel, 1);
  ASSERT_EQ(f.st.hook_ran, 1);
}

static void error_status_and_message_reach_client(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 2, 8, 0), NULL);
  struct unary u = {.channel = f.channel, .method = "/test/NotFound", .request = "x"};
  unary_run(&u);
  struct unary none = {.channel = f.channel, .method = "/test/NoSuchMethod"};
  unary_run(&none);
  fixture_stop(&f);
  ASSERT_EQ(u.code, GRPC_STATUS_NOT_FOUND);
  ASSERT_EQ(u.rc, ENOENT);
  ASSERT_STREQ(u.err.message, "no such table: t");
  ASSERT_TRUE(u.response == NULL);
  ASSERT_EQ(none.code, GRPC_STATUS_UNIMPLEMENTED);
  ASSERT_EQ(none.rc, ENOTSUP);
  ASSERT_STREQ(none.err.message, "/test/NoSuchMethod");
}

static void handler_returning_without_finish_gets_internal_status(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 2, 8, 0), NULL);
  struct unary u = {.channel = f.channel, .method = "/test/NoFinish", .timeout_ms = 5000};
  unary_run(&u);
  fixture_stop(&f);
  ASSERT_EQ(u.code, GRPC_STATUS_INTERNAL);
  ASSERT_EQ(u.rc, EIO);
  ASSERT_TRUE(strstr(u.err.message, "without finishing") != NULL);
}

static void request_metadata_and_peer_visible_to_handler(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 2, 8, 0), NULL);
  const char *md[] = {"authorization", "Bearer t0ken", "x-wg-trace", "abc-123", NULL};
  struct unary u = {.channel = f.channel, .method = "/test/Metadata", .metadata = md};
  unary_run(&u);
  const char *bad_md[] = {"Bad Key!", "v", NULL};
  struct unary bad = {.channel = f.channel, .method = "/test/Metadata", .metadata = bad_md};
  unary_run(&bad);
  fixture_stop(&f);
  ASSERT_OK(u.rc, &u.err);
  ASSERT_TRUE(u.response != NULL);
  ASSERT_TRUE(strstr(u.response, "auth=Bearer t0ken/12 trace=abc-123/7 missing=(null) peer=") ==
              u.response);
  ASSERT_TRUE(strstr(u.response, "peer=ipv4:127.0.0.1:") != NULL);
  free(u.response);
  ASSERT_EQ(bad.rc, EINVAL); /* refused at the client, before anything is sent */
}

static void shutdown_waits_for_call_in_flight_within_grace(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 2, 8, 0), NULL);
  f.st.sleep_ms = 300;
  struct unary u = {.channel = f.channel, .method = "/test/Sleep", .timeout_ms = 10000};
  pthread_t t;
  pthread_create(&t, NULL, unary_thread, &u);
  bool started = wait_for(&f.st.started, 1, 5000);
  int64_t t0 = now_ms();
  wg_rpc_server_shutdown(f.server, 5000);
  int64_t elapsed = now_ms() - t0;
  pthread_join(t, NULL);
  int done = atomic_load(&f.st.done);
  fixture_stop(&f); /* a second shutdown is a no-op */
  ASSERT_TRUE(started);
  ASSERT_EQ(done, 1);
  ASSERT_TRUE(elapsed < 5000);
  ASSERT_OK(u.rc, &u.err);
  ASSERT_STREQ(u.response, "slept");
  free(u.response);
}

static void shutdown_cancels_handler_when_grace_runs_out(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 2, 8, 0), NULL);
  struct unary u = {.channel = f.channel, .method = "/test/WaitCancel", .timeout_ms = 10000};
  pthread_t t;
  pthread_create(&t, NULL, unary_thread, &u);
  bool started = wait_for(&f.st.started, 1, 5000);
  int64_t t0 = now_ms();
  wg_rpc_server_shutdown(f.server, 100);
  int64_t elapsed = now_ms() - t0;
  pthread_join(t, NULL);
  int done = atomic_load(&f.st.done);
  fixture_stop(&f);
  ASSERT_TRUE(started);
  ASSERT_EQ(done, 1); /* the handler returned before shutdown did */
  ASSERT_EQ(f.st.saw_cancel, 1);
  ASSERT_EQ(f.st.hook_ran, 1);
  ASSERT_TRUE(elapsed >= 90 && elapsed < 3000);
  ASSERT_NE(u.code, GRPC_STATUS_OK);
}

static void call_to_stopped_server_fails_unavailable(void) {
  struct fixture f;
  ASSERT_OK(fixture_start(&f, 1, 8, 0), NULL);
  wg_rpc_server_shutdown(f.server, 0);
  struct unary u = {
      .channel = f.channel, .method = "/test/Echo", .request = "x", .timeout_ms = 5000};
  unary_run(&u);
  fixture_stop(&f);
  ASSERT_EQ(u.code, GRPC_STATUS_UNAVAILABLE);
  ASSERT_EQ(u.rc, ECONNREFUSED);
}

int main(void) {
  RUN_TEST(status_mapping_matches_the_documented_table_both_ways);
  RUN_TEST(call_errors_map_once_with_each_sides_code_for_an_ended_call);
  RUN_TEST(buffer_helpers_copy_and_flatten_multi_slice_buffers);
  RUN_TEST(server_start_reports_cannot_listen_on_bad_address);
  RUN_TEST(unary_echo_shows_method_to_handler);
  RUN_TEST(server_streams_1000_messages_in_order);
  RUN_TEST(async_sends_and_the_last_message_with_the_status_arrive_in_order);
  RUN_TEST(bidi_stream_replies_after_each_client_message);
  RUN_TEST(message_of_64_mib_round_trips_intact);
  RUN_TEST(message_over_server_limit_fails_with_resource_exhausted);
  RUN_TEST(eight_client_threads_share_four_workers_and_all_succeed);
  RUN_TEST(full_queue_answers_resource_exhausted_server_busy);
  RUN_TEST(client_cancel_reaches_handler_and_runs_cancel_hook);
  RUN_TEST(deadline_100ms_gives_deadline_exceeded_and_cancels_handler);
  RUN_TEST(error_status_and_message_reach_client);
  RUN_TEST(handler_returning_without_finish_gets_internal_status);
  RUN_TEST(request_metadata_and_peer_visible_to_handler);
  RUN_TEST(shutdown_waits_for_call_in_flight_within_grace);
  RUN_TEST(shutdown_cancels_handler_when_grace_runs_out);
  RUN_TEST(call_to_stopped_server_fails_unavailable);
  return TEST_SUMMARY();
}
