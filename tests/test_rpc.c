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
  struct parker *parkers; /* /test/Park: the request "N" parks the call with parkers[N] */
  int n_parkers;
  atomic_int misuse_phase; /* /test/ParkMisuse */
  atomic_int misuse_rc[3];
};

/* The owner of one parked call, as the live tail would be: its own mutex, held while it sends or
 * finishes, and taken by its event callback (on the completion-queue thread). */
struct parker {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct wg_rpc_call *call; /* NULL once DONE */
  int park_rc;              /* -1 until the handler parked */
  bool sending;             /* a send started, SENT not yet seen */
  int sent, gone, done;     /* events seen */
  bool after_done;          /* an event came after DONE */
  bool gone_after_done;
  bool finish_on_gone;      /* finish (CANCELLED) from the callback on GONE */
  bool park_when_cancelled; /* the handler waits for the call to be cancelled, then parks */
  int chain;                /* messages still to send from the callback, one per SENT */
  int next;                 /* the next message's number ("msg N") */
  int chain_rc;             /* the first failing send or finish from the callback */
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

static void parker_event(void *arg, int event) {
  struct parker *p = arg;
  pthread_mutex_lock(&p->mu);
  if (p->done > 0) p->after_done = true;
  if (event == WG_RPC_PARKED_SENT) {
    p->sent++;
    p->sending = false;
    if (p->chain > 0) { /* the next send, from the completion-queue thread */
      char msg[32];
      snprintf(msg, sizeof(msg), "msg %d", p->next++);
      p->chain--;
      p->sending = true;
      int rc = wg_rpc_parked_send(p->call, string_buffer(msg));
      if (rc == 0 && p->chain == 0) rc = wg_rpc_parked_finish(p->call, GRPC_STATUS_OK, NULL);
      if (rc != 0 && p->chain_rc == 0) p->chain_rc = rc;
    }
  } else if (event == WG_RPC_PARKED_GONE) {
    p->gone++;
    if (p->finish_on_gone) wg_rpc_parked_finish(p->call, GRPC_STATUS_CANCELLED, "gone");
  } else if (event == WG_RPC_PARKED_DONE) {
    p->done++;
    p->call = NULL; /* freed after this returns */
  }
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

static void parker_init(struct parker *p) {
  memset(p, 0, sizeof(*p));
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  p->park_rc = -1;
}

static void parker_destroy(struct parker *p) {
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
}

/* Waits (up to timeout_ms) until *field, read under p->mu, is at least want. */
static bool parker_wait(struct parker *p, const int *field, int want, int64_t timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  pthread_mutex_lock(&p->mu);
  while (*field < want && now_ms() < end) {
    pthread_mutex_unlock(&p->mu);
    sleep_ms(1);
    pthread_mutex_lock(&p->mu);
  }
  bool ok = *field >= want;
  pthread_mutex_unlock(&p->mu);
  return ok;
}

/* Sends "msg N" on a parked call, first waiting (up to 10 s) for the previous send's SENT. */
static int parker_send(struct parker *p) {
  int64_t end = now_ms() + 10000;
  pthread_mutex_lock(&p->mu);
  while (p->sending && now_ms() < end) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 10000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->cv, &p->mu, &ts);
  }
  int rc = ETIMEDOUT;
  if (!p->sending && p->call != NULL) {
    char msg[32];
    snprintf(msg, sizeof(msg), "msg %d", p->next++);
    p->sending = true;
    rc = wg_rpc_parked_send(p->call, string_buffer(msg)); /* the owner's mutex held */
    if (rc != 0) p->sending = false;
  }
  pthread_mutex_unlock(&p->mu);
  return rc;
}

static int parker_finish(struct parker *p, grpc_status_code code, const char *message) {
  pthread_mutex_lock(&p->mu);
  int rc = p->call != NULL ? wg_rpc_parked_finish(p->call, code, message) : EINVAL;
  pthread_mutex_unlock(&p->mu);
  return rc;
}

/* Request "N": reads it, adds a header, parks the call with st->parkers[N] and returns. */
static void handle_park(struct wg_rpc_call *call, struct state *st) {
  grpc_byte_buffer *req = NULL;
  if (wg_rpc_call_recv(call, &req) != 0 || req == NULL) {
    wg_rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "no request");
    return;
  }
  char *s = flatten_string(req);
  grpc_byte_buffer_destroy(req);
  int n = s != NULL ? atoi(s) : -1;
  free(s);
  if (n < 0 || n >= st->n_parkers) {
    wg_rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "no such parker");
    return;
  }
  struct parker *p = &st->parkers[n];
  wg_rpc_call_add_header(call, "x-parked", "yes");
  wg_rpc_call_set_cancel_hook(call, on_cancel_hook, st); /* cleared by parking */
  if (p->park_when_cancelled) atomic_fetch_add(&st->started, 1);
  int64_t end = now_ms() + 5000;
  while (p->park_when_cancelled && !wg_rpc_call_cancelled(call) && now_ms() < end)
    sleep_ms(1);
  pthread_mutex_lock(&p->mu);
  p->call = call;
  int rc = wg_rpc_call_park(call, parker_event, p);
  p->park_rc = rc;
  pthread_mutex_unlock(&p->mu);
  if (rc != 0) wg_rpc_call_finish(call, GRPC_STATUS_INTERNAL, "park failed");
}

static void *misuse_recv_thread(void *arg) {
  struct wg_rpc_call *call = arg;
  grpc_byte_buffer *bb = NULL;
  wg_rpc_call_recv(call, &bb);
  if (bb != NULL) grpc_byte_buffer_destroy(bb);
  return NULL;
}

/* Parking with a receive outstanding (on another thread) fails; once it is done, parking works
 * and parking again fails. The call then belongs to st->parkers[0]. */
static void handle_park_misuse(struct wg_rpc_call *call, struct state *st) {
  struct parker *p = &st->parkers[0];
  pthread_t t;
  pthread_create(&t, NULL, misuse_recv_thread, call);
  sleep_ms(300); /* the receive is outstanding: the client sends nothing until phase 1 */
  atomic_store(&st->misuse_rc[0], wg_rpc_call_park(call, parker_event, p));
  atomic_store(&st->misuse_phase, 1);
  pthread_join(t, NULL); /* the client's message ends the receive */
  pthread_mutex_lock(&p->mu);
  p->call = call;
  int rc = wg_rpc_call_park(call, parker_event, p);
  p->park_rc = rc;
  atomic_store(&st->misuse_rc[1], rc);
  atomic_store(&st->misuse_rc[2], wg_rpc_call_park(call, parker_event, p)); /* not finished yet */
  pthread_mutex_unlock(&p->mu);
  if (rc != 0) wg_rpc_call_finish(call, GRPC_STATUS_INTERNAL, "park failed");
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
  } else if (strcmp(m, "/test/Park") == 0) {
    handle_park(call, st);
  } else if (strcmp(m, "/test/ParkMisuse") == 0) {
    handle_park_misuse(call, st);
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

/* A server of `threads` workers growing to max_workers; parkers (n of them) serve /test/Park. */
static int fixture_start_ex(struct fixture *f, int threads, int max_workers, int queue_limit,
                            int64_t max_bytes, struct parker *parkers, int n_parkers) {
  memset(f, 0, sizeof(*f));
  f->st.parkers = parkers;
  f->st.n_parkers = n_parkers;
  struct wg_rpc_server_options o = {.listen = "127.0.0.1:0",
                                    .threads = threads,
                                    .max_workers = max_workers,
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

static int fixture_start(struct fixture *f, int threads, int queue_limit, int64_t max_bytes) {
  return fixture_start_ex(f, threads, threads, queue_limit, max_bytes, NULL, 0); /* fixed pool */
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

/* ---------------------------------------------------------------------------------------------
 * Parked calls */

/* Starts /test/Park with the request "N", half-closed: the server parks it with parkers[N]. */
static struct wg_rpc_client_call *park_call(struct fixture *f, int n, int64_t timeout_ms) {
  struct wg_rpc_client_call *c = NULL;
  struct wg_error err = {{0}};
  if (wg_rpc_client_call_start(f->channel, "/test/Park", timeout_ms, NULL, &c, &err) != 0)
    return NULL;
  char req[16];
  snprintf(req, sizeof(req), "%d", n);
  wg_rpc_client_call_send(c, string_buffer(req));
  wg_rpc_client_call_close_send(c);
  return c;
}

/* Reads until the stream ends: how many messages; *in_order when they were "msg 0", "msg 1"... */
static int read_msgs(struct wg_rpc_client_call *c, bool *in_order) {
  int count = 0;
  *in_order = true;
  for (;;) {
    grpc_byte_buffer *bb = NULL;
    if (wg_rpc_client_call_recv(c, &bb) != 0 || bb == NULL) return count;
    char *s = flatten_string(bb);
    grpc_byte_buffer_destroy(bb);
    char want[32];
    snprintf(want, sizeof(want), "msg %d", count);
    if (s == NULL || strcmp(s, want) != 0) *in_order = false;
    free(s);
    count++;
  }
}

/* A message the client's flow control holds back while it reads nothing: the send stays out. */
static grpc_byte_buffer *big_buffer(void) {
  size_t size = (size_t)32 << 20;
  char *data = calloc(1, size);
  grpc_byte_buffer *bb = wg_rpc_buffer_from_copy(data, size);
  free(data);
  return bb;
}

static int64_t wait_parked(struct wg_rpc_server *s, int64_t want, int64_t timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  while (wg_rpc_server_parked_calls(s) != want && now_ms() < end)
    sleep_ms(1);
  return wg_rpc_server_parked_calls(s);
}

static int64_t wait_active_zero(struct wg_rpc_server *s) {
  int64_t end = now_ms() + 5000; /* the worker counts a call done a moment after its client */
  while (wg_rpc_server_active_calls(s) > 0 && now_ms() < end)
    sleep_ms(1);
  return wg_rpc_server_active_calls(s);
}

struct sender {
  struct parker *p;
  int n;
  int sent_ok;
  int finish_rc;
};

/* The owner's thread: n sends, each after the previous one's SENT, then the finish (the last send
 * still outstanding: the status follows it). */
static void *sender_thread(void *arg) {
  struct sender *sd = arg;
  for (int i = 0; i < sd->n; i++) {
    if (parker_send(sd->p) != 0) break;
    sd->sent_ok++;
  }
  sd->finish_rc = parker_finish(sd->p, GRPC_STATUS_OK, NULL);
  return NULL;
}

static void parked_call_streams_1000_messages_from_another_thread_while_its_worker_is_free(void) {
  struct parker p;
  parker_init(&p);
  struct fixture f;
  ASSERT_OK(fixture_start_ex(&f, 1, 1, 8, 0, &p, 1), NULL); /* one worker, no extra */
  struct wg_rpc_client_call *c = park_call(&f, 0, 30000);
  ASSERT_TRUE(c != NULL);
  bool parked = parker_wait(&p, &p.park_rc, 0, 5000);
  int64_t n_parked = wait_parked(f.server, 1, 5000);
  struct unary u = {.channel = f.channel, .method = "/test/Echo", .request = "ping",
                    .timeout_ms = 5000}; /* the only worker serves it */
  unary_run(&u);
  int64_t active = wait_active_zero(f.server);
  struct sender sd = {.p = &p, .n = 1000};
  pthread_t t;
  pthread_create(&t, NULL, sender_thread, &sd);
  bool in_order;
  int count = read_msgs(c, &in_order);
  char header[16] = "";
  int hrc = wg_rpc_client_call_header(c, "x-parked", header, sizeof(header));
  grpc_status_code code = GRPC_STATUS_UNKNOWN;
  struct wg_error err = {{0}};
  int rc = wg_rpc_client_call_finish(c, &code, &err);
  pthread_join(t, NULL);
  bool done = parker_wait(&p, &p.done, 1, 5000);
  int64_t after = wait_parked(f.server, 0, 5000);
  wg_rpc_client_call_destroy(c);
  fixture_stop(&f);
  parker_destroy(&p);
  ASSERT_TRUE(parked);
  ASSERT_EQ(p.park_rc, 0);
  ASSERT_EQ(n_parked, 1);
  ASSERT_EQ(active, 0); /* a parked call is not an active one */
  ASSERT_OK(u.rc, &u.err);
  ASSERT_STREQ(u.response, "/test/Echo ping");
  free(u.response);
  ASSERT_EQ(sd.sent_ok, 1000);
  ASSERT_EQ(sd.finish_rc, 0);
  ASSERT_OK(rc, &err);
  ASSERT_EQ(code, GRPC_STATUS_OK);
  ASSERT_EQ(count, 1000);
  ASSERT_TRUE(in_order);
  ASSERT_EQ(hrc, 0); /* the header added before parking went out with the first parked send */
  ASSERT_STREQ(header, "yes");
  ASSERT_TRUE(done);
  ASSERT_TRUE(p.sent == 999 || p.sent == 1000); /* the last one's only if it beat the finish */
  ASSERT_EQ(p.gone, 0);
  ASSERT_TRUE(!p.after_done);
  ASSERT_EQ(after, 0);
  ASSERT_EQ(f.st.hook_ran, 0);
}

static void five_hundred_parked_calls_on_two_threads_leave_ordinary_calls_served(void) {
  enum { N = 500, WAVE = 50 };
  struct parker *ps = calloc(N, sizeof(*ps));
  struct wg_rpc_client_call **cs = calloc(N, sizeof(*cs));
  ASSERT_TRUE(ps != NULL && cs != NULL);
  for (int i = 0; i < N; i++)
    parker_init(&ps[i]);
  struct fixture f;
  ASSERT_OK(fixture_start_ex(&f, 2, 4, 64, 0, ps, N), NULL);
  /* In waves under the queue limit of 64: parked calls hold no queue slot and no worker. */
  int64_t parked = 0;
  for (int i = 0; i < N; i += WAVE) {
    for (int j = i; j < i + WAVE; j++)
      cs[j] = park_call(&f, j, 120000);
    parked = wait_parked(f.server, i + WAVE, 30000);
    if (parked != i + WAVE) break;
  }
  int64_t active = wait_active_zero(f.server);
  struct unary u = {.channel = f.channel, .method = "/test/Echo", .request = "still here",
                    .timeout_ms = 10000};
  unary_run(&u);
  int send_ok = 0, finish_ok = 0, read_ok = 0, status_ok = 0, done = 0;
  for (int i = 0; i < N; i++) {
    send_ok += parker_send(&ps[i]) == 0;
    finish_ok += parker_finish(&ps[i], GRPC_STATUS_OK, NULL) == 0;
  }
  for (int i = 0; i < N; i++) {
    if (cs[i] == NULL) continue;
    bool in_order;
    read_ok += read_msgs(cs[i], &in_order) == 1 && in_order;
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    status_ok += wg_rpc_client_call_finish(cs[i], &code, NULL) == 0 && code == GRPC_STATUS_OK;
    wg_rpc_client_call_destroy(cs[i]);
  }
  for (int i = 0; i < N; i++)
    done += parker_wait(&ps[i], &ps[i].done, 1, 5000);
  int64_t after = wait_parked(f.server, 0, 5000);
  fixture_stop(&f);
  for (int i = 0; i < N; i++)
    parker_destroy(&ps[i]);
  free(ps);
  free(cs);
  ASSERT_EQ(parked, N);
  ASSERT_EQ(active, 0);
  ASSERT_OK(u.rc, &u.err);
  ASSERT_STREQ(u.response, "/test/Echo still here");
  free(u.response);
  ASSERT_EQ(send_ok, N);
  ASSERT_EQ(finish_ok, N);
  ASSERT_EQ(read_ok, N);
  ASSERT_EQ(status_ok, N);
  ASSERT_EQ(done, N);
  ASSERT_EQ(after, 0);
}

/* Client cancel with no send outstanding (0), with one held by flow control (1), and a deadline
 * passing (2, whose owner finishes from the callback): GONE, then DONE only after the finish. */
static void cancelled_parked_calls_tell_gone_then_done_after_the_owners_finish(void) {
  struct parker ps[3];
  for (int i = 0; i < 3; i++)
    parker_init(&ps[i]);
  ps[2].finish_on_gone = true;
  struct fixture f;
  ASSERT_OK(fixture_start_ex(&f, 2, 2, 8, 0, ps, 3), NULL);
  struct wg_rpc_client_call *c0 = park_call(&f, 0, 30000);
  struct wg_rpc_client_call *c1 = park_call(&f, 1, 30000);
  bool parked = parker_wait(&ps[0], &ps[0].park_rc, 0, 5000) &&
                parker_wait(&ps[1], &ps[1].park_rc, 0, 5000);
  pthread_mutex_lock(&ps[1].mu);
  ps[1].sending = true;
  int big_rc = wg_rpc_parked_send(ps[1].call, big_buffer());
  pthread_mutex_unlock(&ps[1].mu);
  sleep_ms(300);
  pthread_mutex_lock(&ps[1].mu);
  bool held = ps[1].sending; /* the client reads nothing: the send stays outstanding */
  pthread_mutex_unlock(&ps[1].mu);

  wg_rpc_client_call_cancel(c0);
  wg_rpc_client_call_cancel(c1);
  bool gone =
      parker_wait(&ps[0], &ps[0].gone, 1, 5000) && parker_wait(&ps[1], &ps[1].gone, 1, 5000);
  sleep_ms(100);
  pthread_mutex_lock(&ps[0].mu);
  bool undone = ps[0].done == 0; /* a gone call still waits for its owner's finish */
  int send_gone = wg_rpc_parked_send(ps[0].call, string_buffer("late"));
  int fin0 = wg_rpc_parked_finish(ps[0].call, GRPC_STATUS_CANCELLED, "gone");
  int fin0_again = wg_rpc_parked_finish(ps[0].call, GRPC_STATUS_OK, NULL);
  pthread_mutex_unlock(&ps[0].mu);
  int fin1 = parker_finish(&ps[1], GRPC_STATUS_CANCELLED, "gone");
  bool done =
      parker_wait(&ps[0], &ps[0].done, 1, 5000) && parker_wait(&ps[1], &ps[1].done, 1, 5000);

  struct wg_rpc_client_call *c2 = park_call(&f, 2, 300);
  bool in_order;
  int got2 = read_msgs(c2, &in_order);
  grpc_status_code code2 = GRPC_STATUS_OK;
  int rc2 = wg_rpc_client_call_finish(c2, &code2, NULL);
  bool done2 = parker_wait(&ps[2], &ps[2].done, 1, 5000);
  grpc_status_code code0 = GRPC_STATUS_OK;
  wg_rpc_client_call_finish(c0, &code0, NULL);
  wg_rpc_client_call_destroy(c0);
  wg_rpc_client_call_destroy(c1);
  wg_rpc_client_call_destroy(c2);
  int64_t after = wait_parked(f.server, 0, 5000);
  fixture_stop(&f);
  for (int i = 0; i < 3; i++)
    parker_destroy(&ps[i]);
  ASSERT_TRUE(parked);
  ASSERT_EQ(big_rc, 0);
  ASSERT_TRUE(held);
  ASSERT_TRUE(gone);
  ASSERT_TRUE(undone);
  ASSERT_EQ(send_gone, ECANCELED);
  ASSERT_EQ(fin0, 0);
  ASSERT_EQ(fin0_again, EINVAL);
  ASSERT_EQ(fin1, 0);
  ASSERT_TRUE(done);
  ASSERT_EQ(code0, GRPC_STATUS_CANCELLED);
  ASSERT_EQ(got2, 0);
  ASSERT_EQ(rc2, ETIMEDOUT);
  ASSERT_EQ(code2, GRPC_STATUS_DEADLINE_EXCEEDED);
  ASSERT_TRUE(done2);
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(ps[i].gone, 1);
    ASSERT_EQ(ps[i].done, 1);
    ASSERT_TRUE(!ps[i].after_done);
  }
  ASSERT_EQ(f.st.hook_ran, 0); /* parking cleared the handler's cancel hook */
  ASSERT_EQ(after, 0);
}

/* Shutdown with three parked calls: one owner finishes on GONE, one never does, one never does
 * and has a send held by flow control: all told GONE then DONE, and shutdown returns. */
static void shutdown_with_parked_calls_tells_gone_and_done_and_returns(void) {
  struct parker ps[3];
  for (int i = 0; i < 3; i++)
    parker_init(&ps[i]);
  ps[0].finish_on_gone = true;
  struct fixture f;
  ASSERT_OK(fixture_start_ex(&f, 2, 2, 8, 0, ps, 3), NULL);
  struct wg_rpc_client_call *cs[3];
  bool parked = true;
  for (int i = 0; i < 3; i++) {
    cs[i] = park_call(&f, i, 30000);
    parked = parked && parker_wait(&ps[i], &ps[i].park_rc, 0, 5000);
  }
  pthread_mutex_lock(&ps[2].mu);
  ps[2].sending = true;
  int big_rc = wg_rpc_parked_send(ps[2].call, big_buffer());
  pthread_mutex_unlock(&ps[2].mu);
  int64_t before = wg_rpc_server_parked_calls(f.server);
  int64_t t0 = now_ms();
  wg_rpc_server_shutdown(f.server, 300);
  int64_t elapsed = now_ms() - t0;
  int64_t after = wg_rpc_server_parked_calls(f.server);
  grpc_status_code codes[3];
  for (int i = 0; i < 3; i++) {
    bool in_order;
    read_msgs(cs[i], &in_order);
    codes[i] = GRPC_STATUS_OK;
    wg_rpc_client_call_finish(cs[i], &codes[i], NULL);
    wg_rpc_client_call_destroy(cs[i]);
  }
  fixture_stop(&f);
  for (int i = 0; i < 3; i++)
    parker_destroy(&ps[i]);
  ASSERT_TRUE(parked);
  ASSERT_EQ(big_rc, 0);
  ASSERT_EQ(before, 3);
  ASSERT_EQ(after, 0);
  ASSERT_TRUE(elapsed >= 250 && elapsed < 5000); /* two owners never finished: the grace ran */
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(ps[i].gone, 1);
    ASSERT_EQ(ps[i].done, 1);
    ASSERT_TRUE(!ps[i].after_done);
    ASSERT_EQ(codes[i], GRPC_STATUS_UNAVAILABLE);
  }
}

static void sends_chained_from_the_callback_reach_the_client_in_order(void) {
  struct parker p;
  parker_init(&p);
  p.chain = 99; /* after the first send, each SENT starts the next; the last finishes */
  struct fixture f;
  ASSERT_OK(fixture_start_ex(&f, 1, 1, 8, 0, &p, 1), NULL);
  struct wg_rpc_client_call *c = park_call(&f, 0, 30000);
  bool parked = parker_wait(&p, &p.park_rc, 0, 5000);
  int first = parker_send(&p);
  bool in_order;
  int count = read_msgs(c, &in_order);
  grpc_status_code code = GRPC_STATUS_UNKNOWN;
  int rc = wg_rpc_client_call_finish(c, &code, NULL);
  wg_rpc_client_call_destroy(c);
  bool done = parker_wait(&p, &p.done, 1, 5000);
  fixture_stop(&f);
  parker_destroy(&p);
  ASSERT_TRUE(parked);
  ASSERT_EQ(first, 0);
  ASSERT_EQ(p.chain_rc, 0);
  ASSERT_EQ(count, 100);
  ASSERT_TRUE(in_order);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(code, GRPC_STATUS_OK);
  ASSERT_TRUE(done);
  ASSERT_EQ(p.sent, 99);
  ASSERT_TRUE(!p.after_done);
}

/* EINVAL: parking with a receive outstanding, parking twice, sending or finishing after the
 * finish; EBUSY: a second send while the first is outstanding. */
static void parked_call_misuse_is_refused(void) {
  struct parker p;
  parker_init(&p);
  struct fixture f;
  ASSERT_OK(fixture_start_ex(&f, 2, 2, 8, 0, &p, 1), NULL);
  struct wg_rpc_client_call *c = NULL;
  struct wg_error err = {{0}};
  ASSERT_OK(wg_rpc_client_call_start(f.channel, "/test/ParkMisuse", 30000, NULL, &c, &err), &err);
  bool phase1 = wait_for(&f.st.misuse_phase, 1, 5000);
  wg_rpc_client_call_send(c, string_buffer("x")); /* ends the handler's receive */
  wg_rpc_client_call_close_send(c);
  bool parked = parker_wait(&p, &p.park_rc, 0, 5000);
  pthread_mutex_lock(&p.mu);
  int send1 = p.call != NULL ? wg_rpc_parked_send(p.call, big_buffer()) : -1;
  int send2 = p.call != NULL ? wg_rpc_parked_send(p.call, string_buffer("second")) : -1;
  int fin = p.call != NULL ? wg_rpc_parked_finish(p.call, GRPC_STATUS_OK, NULL) : -1;
  int send3 = p.call != NULL ? wg_rpc_parked_send(p.call, string_buffer("third")) : -1;
  int fin2 = p.call != NULL ? wg_rpc_parked_finish(p.call, GRPC_STATUS_OK, NULL) : -1;
  pthread_mutex_unlock(&p.mu);
  int count = 0;
  size_t size = 0;
  for (;;) {
    grpc_byte_buffer *bb = NULL;
    if (wg_rpc_client_call_recv(c, &bb) != 0 || bb == NULL) break;
    size = grpc_byte_buffer_length(bb);
    grpc_byte_buffer_destroy(bb);
    count++;
  }
  grpc_status_code code = GRPC_STATUS_UNKNOWN;
  int rc = wg_rpc_client_call_finish(c, &code, &err);
  wg_rpc_client_call_destroy(c);
  bool done = parker_wait(&p, &p.done, 1, 5000);
  fixture_stop(&f);
  parker_destroy(&p);
  ASSERT_TRUE(phase1);
  ASSERT_EQ(atomic_load(&f.st.misuse_rc[0]), EINVAL);
  ASSERT_TRUE(parked);
  ASSERT_EQ(atomic_load(&f.st.misuse_rc[1]), 0);
  ASSERT_EQ(atomic_load(&f.st.misuse_rc[2]), EINVAL);
  ASSERT_EQ(send1, 0);
  ASSERT_EQ(send2, EBUSY);
  ASSERT_EQ(fin, 0);
  ASSERT_EQ(send3, EINVAL);
  ASSERT_EQ(fin2, EINVAL);
  ASSERT_EQ(count, 1);
  ASSERT_EQ(size, (size_t)32 << 20);
  ASSERT_OK(rc, &err);
  ASSERT_EQ(code, GRPC_STATUS_OK);
  ASSERT_TRUE(done);
  ASSERT_EQ(p.sent, 0);
  ASSERT_EQ(p.gone, 0);
  ASSERT_EQ(wg_rpc_call_park(NULL, parker_event, &p), EINVAL);
}


struct racer {
  struct parker *p;
  int sends;
  atomic_int *go;
};

static void *racer_thread(void *arg) {
  struct racer *r = arg;
  wait_for(r->go, 1, 10000);
  for (int i = 0; i < r->sends; i++)
    if (parker_send(r->p) != 0) break;
  parker_finish(r->p, GRPC_STATUS_OK, NULL);
  return NULL;
}

/* Clients cancel while their owners send and finish (some owners also finish from the callback on
 * GONE, racing their own thread; a few calls are cancelled before they even park): each owner is
 * told DONE exactly once and last, and nothing is used after it is freed (ASan). */
static void parked_calls_survive_cancels_racing_sends_and_finishes(void) {
  enum { N = 60, EARLY = 4 };
  struct parker *ps = calloc(N, sizeof(*ps));
  struct racer *rs = calloc(N, sizeof(*rs));
  struct wg_rpc_client_call **cs = calloc(N, sizeof(*cs));
  pthread_t *ts = calloc(N, sizeof(*ts));
  ASSERT_TRUE(ps != NULL && rs != NULL && cs != NULL && ts != NULL);
  atomic_int go;
  atomic_init(&go, 0);
  for (int i = 0; i < N; i++) {
    parker_init(&ps[i]);
    ps[i].finish_on_gone = i % 3 == 0;
    ps[i].park_when_cancelled = i < EARLY;
  }
  struct fixture f;
  ASSERT_OK(fixture_start_ex(&f, 2, 8, 64, 0, ps, N), NULL);
  for (int i = 0; i < N; i++)
    cs[i] = park_call(&f, i, 30000);
  bool waiting = wait_for(&f.st.started, EARLY, 10000);
  for (int i = 0; i < EARLY; i++) /* their handlers wait for this, then park */
    wg_rpc_client_call_cancel(cs[i]);
  bool parked = true;
  for (int i = 0; i < N; i++)
    parked = parker_wait(&ps[i], &ps[i].park_rc, 0, 10000) && ps[i].park_rc == 0 && parked;
  for (int i = 0; i < N; i++) {
    rs[i] = (struct racer){.p = &ps[i], .sends = i % 5, .go = &go};
    pthread_create(&ts[i], NULL, racer_thread, &rs[i]);
  }
  atomic_store(&go, 1);
  for (int i = EARLY; i < N; i += 2) { /* every other call cancelled at staggered moments */
    sleep_ms(i % 3);
    wg_rpc_client_call_cancel(cs[i]);
  }
  int complete = 0;
  for (int i = EARLY + 1; i < N; i += 2) { /* the others read everything and get OK */
    bool in_order;
    int got = read_msgs(cs[i], &in_order);
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    wg_rpc_client_call_finish(cs[i], &code, NULL);
    complete += got == i % 5 && in_order && code == GRPC_STATUS_OK;
  }
  for (int i = 0; i < N; i++)
    pthread_join(ts[i], NULL);
  int done = 0, bad = 0, early_gone = 0;
  for (int i = 0; i < N; i++) {
    done += parker_wait(&ps[i], &ps[i].done, 1, 10000);
    pthread_mutex_lock(&ps[i].mu);
    bad += ps[i].done != 1 || ps[i].after_done || ps[i].gone > 1;
    early_gone += i < EARLY && ps[i].gone == 1;
    pthread_mutex_unlock(&ps[i].mu);
  }
  int64_t after = wait_parked(f.server, 0, 5000);
  for (int i = 0; i < N; i++)
    wg_rpc_client_call_destroy(cs[i]);
  fixture_stop(&f);
  for (int i = 0; i < N; i++)
    parker_destroy(&ps[i]);
  free(ps);
  free(rs);
  free(cs);
  free(ts);
  ASSERT_TRUE(waiting);
  ASSERT_TRUE(parked);
  ASSERT_EQ(early_gone, EARLY); /* cancelled before parking: GONE at once */
  ASSERT_EQ(complete, (N - EARLY) / 2);
  ASSERT_EQ(done, N);
  ASSERT_EQ(bad, 0);
  ASSERT_EQ(after, 0);
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
  RUN_TEST(parked_call_streams_1000_messages_from_another_thread_while_its_worker_is_free);
  RUN_TEST(five_hundred_parked_calls_on_two_threads_leave_ordinary_calls_served);
  RUN_TEST(cancelled_parked_calls_tell_gone_then_done_after_the_owners_finish);
  RUN_TEST(shutdown_with_parked_calls_tells_gone_and_done_and_returns);
  RUN_TEST(sends_chained_from_the_callback_reach_the_client_in_order);
  RUN_TEST(parked_call_misuse_is_refused);
  RUN_TEST(parked_calls_survive_cancels_racing_sends_and_finishes);
  return TEST_SUMMARY();
}
