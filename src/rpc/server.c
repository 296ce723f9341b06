/* wigeon: the gRPC server on the core C API (grpc/grpc.h 1.51) and pthreads. One completion
 * queue, polled by one thread that only delivers completions; a fixed pool of worker threads that
 * run the handler, fed by a bounded FIFO of accepted calls. A handler's blocking operations start a
 * batch on the worker and sleep on the call's condition variable until the completion-queue thread
 * reports the batch done. All state lives in struct wg_rpc_server; nothing is global except gRPC's
 * own library refcount (grpc_init/grpc_shutdown). */
#include "rpc/rpc.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

/* NOTES ON THE DESIGN
 *
 * Life of one call (struct wg_rpc_call, one per grpc_call):
 *
 *   REQUESTED --ok--> QUEUED --worker pops--> RUNNING --finish--> FINISHING --sent--> HANDLER DONE
 *      |                 |  \                                                          ^
 *     !ok           full |   +--- cancelled while queued: the handler never runs -------+
 *      v                 v                                                             |
 *    freed           REJECTED --RESOURCE_EXHAUSTED sent by the CQ thread---------------+
 *
 *   HANDLER DONE + CLOSED (the RECV_CLOSE_ON_SERVER batch completed) --> FREED
 *
 *   CANCELLED is a flag, not a state: the RECV_CLOSE_ON_SERVER batch started on arrival completes
 *   with cancelled=1 when the client cancels, the deadline passes, the message is over the limit
 *   or shutdown cancels every call. It may happen in QUEUED (the worker then drops the call
 *   without running the handler), RUNNING or FINISHING (blocked operations return ECANCELED).
 *   A call holds two references: the handler side (worker or rejection batch) and the close
 *   batch; the grpc_call is unref'd and the struct freed when both are gone.
 *
 *   transition                    -> function (thread)
 *   REQUESTED                     -> request_call (CQ thread, or start)
 *   REQUESTED -> QUEUED/REJECTED  -> on_call_arrived (CQ thread)
 *   QUEUED -> RUNNING             -> worker_main, run_call (worker)
 *   RUNNING -> FINISHING -> DONE  -> wg_rpc_call_finish, run_call (worker)
 *   REJECTED -> DONE              -> on_op_done with release_on_done (CQ thread)
 *   cancelled, hook               -> on_close (CQ thread)
 *   DONE -> FREED                 -> call_unref (whichever drops the last reference)
 *
 * Shutdown (wg_rpc_server_shutdown): stop requesting calls, grpc_server_shutdown_and_notify, wait
 * up to grace_ms for the active calls, grpc_server_cancel_all_calls, wait for every handler, every
 * grpc_call and the shutdown tag, stop and join the workers, destroy the server, shut the queue
 * down and let the CQ thread drain it to GRPC_QUEUE_SHUTDOWN, join it. */

enum { WG_RPC_DEFAULT_THREADS = 8, WG_RPC_DEFAULT_QUEUE_LIMIT = 64, WG_RPC_PENDING_REQUESTS = 8 };

/* Every tag given to gRPC starts with one of these, so the CQ thread knows what completed. */
enum wg__rpc_tag_kind {
  WG__RPC_TAG_REQUEST,
  WG__RPC_TAG_CLOSE,
  WG__RPC_TAG_OP,
  WG__RPC_TAG_SHUTDOWN
};

struct wg__rpc_tag {
  enum wg__rpc_tag_kind kind;
  struct wg_rpc_call *call; /* NULL for the shutdown tag */
};

/* One blocking operation direction of a call (sends, including finish; receives). */
struct wg__rpc_op {
  struct wg__rpc_tag tag; /* first: the tag pointer is the op pointer */
  bool done;              /* guarded by call->mu */
  bool ok;
  bool release_on_done; /* a rejection batch: drop the handler-side reference on completion */
  grpc_byte_buffer *recv_buf;
};

struct wg__rpc_md {
  const char *key;
  const char *value;
  int64_t len;
};

struct wg_rpc_call {
  struct wg_rpc_server *server;
  grpc_call *call;
  grpc_call_details details;
  grpc_metadata_array request_md;
  struct wg__rpc_tag request_tag;
  struct wg__rpc_tag close_tag;
  int close_cancelled; /* written by gRPC when the close batch completes */
  struct wg__rpc_op send_op;
  struct wg__rpc_op recv_op;
  atomic_int refs;
  atomic_bool cancelled;

  /* Worker-only after the call is queued. */
  char *method;
  char *peer;            /* gpr_malloc'ed by gRPC */
  struct wg__rpc_md *md; /* NUL-terminated copies of the request metadata, one block */
  int64_t md_count;
  bool initial_md_sent;      /* send side only */
  grpc_byte_buffer *sending; /* the message of a send started and not yet waited for */
  atomic_bool finished;      /* set by finish (send side), read by recv (maybe another thread) */

  pthread_mutex_t mu;
  pthread_cond_t cv; /* op completions, hook finished */
  void (*hook_fn)(void *arg);
  void *hook_arg;
  bool hook_running;
};

struct wg_rpc_server {
  grpc_server *server;
  grpc_completion_queue *cq;
  wg_rpc_handler_fn handler;
  void *ctx;
  int threads;
  int queue_limit;
  int64_t idle_timeout_ms; /* <= 0: none */
  bool grpc_inited;
  bool server_started;

  pthread_t cq_thread;
  bool cq_thread_started;
  pthread_t *workers;
  int workers_started;

  pthread_mutex_t mu;
  pthread_cond_t work_cv;     /* workers: a call was queued, or stopping */
  pthread_cond_t state_cv;    /* shutdown: counts changed, shutdown tag arrived (CLOCK_MONOTONIC) */
  struct wg_rpc_call **queue; /* ring of queue_limit calls waiting for a worker */
  int queue_head;
  int queue_len;
  bool shutdown_called;
  bool shutting_down; /* no more grpc_server_request_call */
  bool shutdown_tag_done;
  bool stopping;              /* workers exit once the queue is empty */
  int64_t live_calls;         /* grpc_calls not yet unref'd */
  atomic_int_fast64_t active; /* queued or running */
  struct wg__rpc_tag shutdown_tag;
};

/* ---------------------------------------------------------------------------------------------
 * Call memory */

static struct wg_rpc_call *call_alloc(struct wg_rpc_server *s) {
  struct wg_rpc_call *c = calloc(1, sizeof(*c));
  if (c == NULL) return NULL;
  if (pthread_mutex_init(&c->mu, NULL) != 0) {
    free(c);
    return NULL;
  }
  if (pthread_cond_init(&c->cv, NULL) != 0) {
    pthread_mutex_destroy(&c->mu);
    free(c);
    return NULL;
  }
  c->server = s;
  grpc_call_details_init(&c->details);
  grpc_metadata_array_init(&c->request_md);
  c->request_tag.kind = WG__RPC_TAG_REQUEST;
  c->request_tag.call = c;
  c->close_tag.kind = WG__RPC_TAG_CLOSE;
  c->close_tag.call = c;
  c->send_op.tag.kind = WG__RPC_TAG_OP;
  c->send_op.tag.call = c;
  c->recv_op.tag.kind = WG__RPC_TAG_OP;
  c->recv_op.tag.call = c;
  atomic_init(&c->refs, 2);
  atomic_init(&c->cancelled, false);
  atomic_init(&c->finished, false);
  return c;
}

/* Frees the struct and what it owns; the grpc_call (if any) is the caller's business. */
static void call_free_struct(struct wg_rpc_call *c) {
  grpc_call_details_destroy(&c->details);
  grpc_metadata_array_destroy(&c->request_md);
  if (c->recv_op.recv_buf != NULL) grpc_byte_buffer_destroy(c->recv_op.recv_buf);
  free(c->method);
  if (c->peer != NULL) gpr_free(c->peer);
  free(c->md);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

static void call_unref(struct wg_rpc_call *c) {
  if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1) return;
  struct wg_rpc_server *s = c->server;
  grpc_call_unref(c->call);
  call_free_struct(c);
  pthread_mutex_lock(&s->mu);
  s->live_calls--;
  pthread_cond_broadcast(&s->state_cv);
  pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------------------------------------
 * Completion-queue thread */

/* Keeps one more grpc_server_request_call outstanding. Called with s->mu held, so that no request
 * starts after shutdown began (shutting_down is set under the same lock). */
static void request_call(struct wg_rpc_server *s) {
  if (s->shutting_down) return;
  struct wg_rpc_call *c = call_alloc(s);
  if (c == NULL) return; /* one fewer outstanding request; the others keep the server going */
  grpc_call_error e = grpc_server_request_call(s->server, &c->call, &c->details, &c->request_md,
                                               s->cq, s->cq, &c->request_tag);
  if (e != GRPC_CALL_OK) call_free_struct(c);
}

/* Answers a call that never reaches a handler; the completion drops the handler-side reference. */
static void reject_call(struct wg_rpc_call *c, grpc_status_code code, const char *message) {
  grpc_slice details = grpc_slice_from_copied_string(message);
  grpc_op ops[2];
  memset(ops, 0, sizeof(ops));
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[1].data.send_status_from_server.status = code;
  ops[1].data.send_status_from_server.status_details = &details;
  c->send_op.release_on_done = true;
  grpc_call_error e = grpc_call_start_batch(c->call, ops, 2, &c->send_op, NULL);
  grpc_slice_unref(details);
  if (e != GRPC_CALL_OK) {
    grpc_call_cancel_with_status(c->call, code, message, NULL);
    call_unref(c);
  }
}

static void on_call_arrived(struct wg_rpc_server *s, struct wg_rpc_call *c) {
  grpc_slice m = c->details.method;
  size_t n = GRPC_SLICE_LENGTH(m);
  c->method = malloc(n + 1);
  if (c->method != NULL) {
    memcpy(c->method, GRPC_SLICE_START_PTR(m), n);
    c->method[n] = '\0';
  }

  /* The close batch is a receive op; the handler's receives start only after the queue hands
   * the call over (the queue lock orders them), so the two are never started concurrently. */
  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &c->close_cancelled;
  if (grpc_call_start_batch(c->call, &op, 1, &c->close_tag, NULL) != GRPC_CALL_OK) {
    atomic_store(&c->cancelled, true);
    call_unref(c); /* the close reference: refs stays 1 */
  }

  if (c->method == NULL) {
    reject_call(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
    return;
  }
  pthread_mutex_lock(&s->mu);
  if (s->queue_len >= s->queue_limit || s->stopping) {
    int waiting = s->queue_len;
    pthread_mutex_unlock(&s->mu);
    char message[64];
    snprintf(message, sizeof(message), "server busy: %d calls waiting", waiting);
    reject_call(c, GRPC_STATUS_RESOURCE_EXHAUSTED, message);
    return;
  }
  s->queue[(s->queue_head + s->queue_len) % s->queue_limit] = c;
  s->queue_len++;
  atomic_fetch_add(&s->active, 1);
  pthread_cond_signal(&s->work_cv);
  pthread_mutex_unlock(&s->mu);
}

static void on_request(struct wg_rpc_server *s, struct wg_rpc_call *c, bool ok) {
  pthread_mutex_lock(&s->mu);
  if (ok) s->live_calls++;
  request_call(s); /* replace this one (not once shutting down) */
  pthread_mutex_unlock(&s->mu);
  if (!ok) {
    call_free_struct(c); /* shutdown: no grpc_call was made */
    return;
  }
  on_call_arrived(s, c);
}

static void on_close(struct wg_rpc_call *c) {
  void (*fn)(void *) = NULL;
  void *arg = NULL;
  pthread_mutex_lock(&c->mu);
  if (c->close_cancelled) {
    atomic_store(&c->cancelled, true);
    fn = c->hook_fn;
    arg = c->hook_arg;
    c->hook_fn = NULL; /* runs once */
    c->hook_running = fn != NULL;
  }
  pthread_mutex_unlock(&c->mu);
  if (fn != NULL) {
    fn(arg);
    pthread_mutex_lock(&c->mu);
    c->hook_running = false;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
  }
  call_unref(c);
}

static void on_op_done(struct wg__rpc_op *op, bool ok) {
  struct wg_rpc_call *c = op->tag.call;
  if (op->release_on_done) {
    call_unref(c);
    return;
  }
  /* After the unlock the worker may run on and free the call: touch nothing afterwards. */
  pthread_mutex_lock(&c->mu);
  op->ok = ok;
  op->done = true;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void dispatch(struct wg_rpc_server *s, void *tag, bool ok) {
  struct wg__rpc_tag *t = tag;
  switch (t->kind) {
  case WG__RPC_TAG_REQUEST:
    on_request(s, t->call, ok);
    break;
  case WG__RPC_TAG_CLOSE:
    on_close(t->call);
    break;
  case WG__RPC_TAG_OP:
    on_op_done((struct wg__rpc_op *)t, ok);
    break;
  case WG__RPC_TAG_SHUTDOWN:
    pthread_mutex_lock(&s->mu);
    s->shutdown_tag_done = true;
    pthread_cond_broadcast(&s->state_cv);
    pthread_mutex_unlock(&s->mu);
    break;
  }
}

static void *cq_main(void *arg) {
  struct wg_rpc_server *s = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    if (ev.type == GRPC_OP_COMPLETE) dispatch(s, ev.tag, ev.success != 0);
  }
  return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Workers */

/* Copies method-independent call facts the handler may ask for: peer and request metadata. */
static void call_prepare(struct wg_rpc_call *c) {
  c->peer = grpc_call_get_peer(c->call);
  size_t count = c->request_md.count;
  if (count == 0) return;
  size_t bytes = count * sizeof(struct wg__rpc_md);
  for (size_t i = 0; i < count; i++) {
    bytes += GRPC_SLICE_LENGTH(c->request_md.metadata[i].key) + 1;
    bytes += GRPC_SLICE_LENGTH(c->request_md.metadata[i].value) + 1;
  }
  struct wg__rpc_md *md = malloc(bytes);
  if (md == NULL) return; /* lookups then find nothing */
  char *p = (char *)(md + count);
  for (size_t i = 0; i < count; i++) {
    grpc_slice k = c->request_md.metadata[i].key;
    grpc_slice v = c->request_md.metadata[i].value;
    size_t kn = GRPC_SLICE_LENGTH(k), vn = GRPC_SLICE_LENGTH(v);
    memcpy(p, GRPC_SLICE_START_PTR(k), kn);
    p[kn] = '\0';
    md[i].key = p;
    p += kn + 1;
    if (vn > 0) memcpy(p, GRPC_SLICE_START_PTR(v), vn);
    p[vn] = '\0';
    md[i].value = p;
    md[i].len = (int64_t)vn;
    p += vn + 1;
  }
  c->md = md;
  c->md_count = (int64_t)count;
}

static void run_call(struct wg_rpc_server *s, struct wg_rpc_call *c) {
  if (!atomic_load(&c->cancelled)) { /* cancelled while queued: nobody is waiting for an answer */
    call_prepare(c);
    s->handler(c, s->ctx);
    if (!atomic_load(&c->finished)) {
      wg_rpc_call_finish(c, GRPC_STATUS_INTERNAL, "handler returned without finishing the call");
    }
  }
  wg_rpc_call_set_cancel_hook(c, NULL, NULL); /* a hook's arg may not outlive its handler */
  pthread_mutex_lock(&s->mu);
  atomic_fetch_sub(&s->active, 1);
  pthread_cond_broadcast(&s->state_cv);
  pthread_mutex_unlock(&s->mu);
  call_unref(c);
}

static void *worker_main(void *arg) {
  struct wg_rpc_server *s = arg;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    while (s->queue_len == 0 && !s->stopping)
      pthread_cond_wait(&s->work_cv, &s->mu);
    if (s->queue_len == 0) {
      pthread_mutex_unlock(&s->mu);
      return NULL;
    }
    struct wg_rpc_call *c = s->queue[s->queue_head];
    s->queue_head = (s->queue_head + 1) % s->queue_limit;
    s->queue_len--;
    pthread_mutex_unlock(&s->mu);
    run_call(s, c);
  }
}

/* ---------------------------------------------------------------------------------------------
 * Start and shutdown */

static void deadline_after_ms(struct timespec *ts, int64_t ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += (time_t)(ms / 1000);
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* Without a CQ thread (start failed before it ran), polls the queue here until the shutdown tag. */
static void poll_until_shutdown_tag(struct wg_rpc_server *s) {
  for (;;) {
    pthread_mutex_lock(&s->mu);
    bool done = s->shutdown_tag_done;
    pthread_mutex_unlock(&s->mu);
    if (done) return;
    grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) return;
    if (ev.type == GRPC_OP_COMPLETE) dispatch(s, ev.tag, ev.success != 0);
  }
}

void wg_rpc_server_shutdown(struct wg_rpc_server *s, int grace_ms) {
  if (s == NULL) return;
  pthread_mutex_lock(&s->mu);
  if (s->shutdown_called) {
    pthread_mutex_unlock(&s->mu);
    return;
  }
  s->shutdown_called = true;
  s->shutting_down = true;
  pthread_mutex_unlock(&s->mu);

  if (s->server != NULL) {
    grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
    if (s->cq_thread_started) {
      struct timespec grace;
      deadline_after_ms(&grace, grace_ms > 0 ? grace_ms : 0);
      pthread_mutex_lock(&s->mu);
      while (atomic_load(&s->active) > 0) {
        if (pthread_cond_timedwait(&s->state_cv, &s->mu, &grace) != 0) break; /* ETIMEDOUT */
      }
      pthread_mutex_unlock(&s->mu);
      grpc_server_cancel_all_calls(s->server);
      pthread_mutex_lock(&s->mu);
      s->stopping = true; /* workers drain the queue (cancelled calls skip the handler), exit */
      pthread_cond_broadcast(&s->work_cv);
      while (atomic_load(&s->active) > 0 || s->live_calls > 0 || !s->shutdown_tag_done) {
        pthread_cond_wait(&s->state_cv, &s->mu);
      }
      pthread_mutex_unlock(&s->mu);
    } else {
      grpc_server_cancel_all_calls(s->server);
      poll_until_shutdown_tag(s);
    }
  }

  pthread_mutex_lock(&s->mu);
  s->stopping = true;
  pthread_cond_broadcast(&s->work_cv);
  pthread_mutex_unlock(&s->mu);
  for (int i = 0; i < s->workers_started; i++)
    pthread_join(s->workers[i], NULL);
  s->workers_started = 0;

  if (s->server != NULL) {
    grpc_server_destroy(s->server);
    s->server = NULL;
  }
  if (s->cq != NULL) {
    grpc_completion_queue_shutdown(s->cq);
    if (s->cq_thread_started) {
      pthread_join(s->cq_thread, NULL); /* it drains the queue to GRPC_QUEUE_SHUTDOWN */
      s->cq_thread_started = false;
    } else {
      while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
             GRPC_QUEUE_SHUTDOWN) {
      }
    }
    grpc_completion_queue_destroy(s->cq);
    s->cq = NULL;
  }
}

void wg_rpc_server_destroy(struct wg_rpc_server *s) {
  if (s == NULL) return;
  wg_rpc_server_shutdown(s, 0);
  free(s->queue);
  free(s->workers);
  pthread_cond_destroy(&s->state_cv);
  pthread_cond_destroy(&s->work_cv);
  pthread_mutex_destroy(&s->mu);
  if (s->grpc_inited) grpc_shutdown();
  free(s);
}

static int server_init_sync(struct wg_rpc_server *s) {
  pthread_condattr_t attr;
  if (pthread_condattr_init(&attr) != 0) return ENOMEM;
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  int rc = pthread_mutex_init(&s->mu, NULL);
  if (rc == 0) {
    rc = pthread_cond_init(&s->work_cv, NULL);
    if (rc == 0) {
      rc = pthread_cond_init(&s->state_cv, &attr);
      if (rc != 0) pthread_cond_destroy(&s->work_cv);
    }
    if (rc != 0) pthread_mutex_destroy(&s->mu);
  }
  pthread_condattr_destroy(&attr);
  return rc;
}

int wg_rpc_server_start(struct wg_rpc_server **out, const struct wg_rpc_server_options *options,
                        int *bound_port, struct wg_error *err) {
  if (out == NULL || options == NULL || options->listen == NULL || options->handler == NULL) {
    return wg_error_set(err, EINVAL, "server options need an address and a handler");
  }
  *out = NULL;
  int64_t max_bytes = options->max_message_bytes > 0 ? options->max_message_bytes
                                                     : WG_RPC_DEFAULT_MAX_MESSAGE_BYTES;
  if (max_bytes > INT_MAX) max_bytes = INT_MAX;

  struct wg_rpc_server *s = calloc(1, sizeof(*s));
  if (s == NULL) return wg_error_set(err, ENOMEM, "out of memory for the server");
  s->handler = options->handler;
  s->ctx = options->ctx;
  s->threads = options->threads > 0 ? options->threads : WG_RPC_DEFAULT_THREADS;
  s->queue_limit = options->queue_limit > 0 ? options->queue_limit : WG_RPC_DEFAULT_QUEUE_LIMIT;
  s->idle_timeout_ms = options->idle_timeout_ms == 0 ? 60000 : options->idle_timeout_ms;
  s->shutdown_tag.kind = WG__RPC_TAG_SHUTDOWN;
  atomic_init(&s->active, 0);
  if (server_init_sync(s) != 0) {
    free(s);
    return wg_error_set(err, ENOMEM, "cannot create the server's locks");
  }
  s->queue = calloc((size_t)s->queue_limit, sizeof(*s->queue));
  s->workers = calloc((size_t)s->threads, sizeof(*s->workers));
  if (s->queue == NULL || s->workers == NULL) {
    wg_rpc_server_destroy(s);
    return wg_error_set(err, ENOMEM, "out of memory for %d workers and a queue of %d", s->threads,
                        s->queue_limit);
  }

  grpc_init();
  s->grpc_inited = true;
  grpc_arg args[2];
  memset(args, 0, sizeof(args));
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = (int)max_bytes;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = (int)max_bytes;
  grpc_channel_args channel_args = {2, args};
  s->server = grpc_server_create(&channel_args, NULL);
  s->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(s->server, s->cq, NULL);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  int port = grpc_server_add_http2_port(s->server, options->listen, creds);
  grpc_server_credentials_release(creds);
  if (port == 0) {
    wg_rpc_server_destroy(s);
    return wg_error_set(err, EADDRINUSE, "cannot listen on %s", options->listen);
  }
  grpc_server_start(s->server);
  s->server_started = true;

  int rc = pthread_create(&s->cq_thread, NULL, cq_main, s);
  if (rc != 0) {
    wg_rpc_server_destroy(s);
    return wg_error_set(err, rc, "cannot start the completion-queue thread");
  }
  s->cq_thread_started = true;
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < WG_RPC_PENDING_REQUESTS; i++)
    request_call(s);
  pthread_mutex_unlock(&s->mu);
  for (int i = 0; i < s->threads; i++) {
    rc = pthread_create(&s->workers[i], NULL, worker_main, s);
    if (rc != 0) {
      wg_rpc_server_destroy(s);
      return wg_error_set(err, rc, "cannot start worker thread %d of %d", i + 1, s->threads);
    }
    s->workers_started++;
  }
  if (bound_port != NULL) *bound_port = port;
  *out = s;
  return 0;
}

int64_t wg_rpc_server_active_calls(const struct wg_rpc_server *s) {
  if (s == NULL) return 0;
  return (int64_t)atomic_load(&((struct wg_rpc_server *)s)->active);
}

/* ---------------------------------------------------------------------------------------------
 * Per-call operations (the handler's worker thread) */

const char *wg_rpc_call_method(const struct wg_rpc_call *c) {
  return c != NULL && c->method != NULL ? c->method : "";
}

const char *wg_rpc_call_peer(const struct wg_rpc_call *c) {
  return c != NULL && c->peer != NULL ? c->peer : "";
}

const char *wg_rpc_call_metadata(const struct wg_rpc_call *c, const char *key, int64_t *len) {
  if (len != NULL) *len = 0;
  if (c == NULL || key == NULL) return NULL;
  for (int64_t i = 0; i < c->md_count; i++) {
    const char *a = c->md[i].key, *b = key;
    while (*a != '\0' && *b != '\0') { /* keys are lower case on the wire; be lenient here */
      char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
      char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
      if (x != y) break;
      a++;
      b++;
    }
    if (*a == '\0' && *b == '\0') {
      if (len != NULL) *len = c->md[i].len;
      return c->md[i].value;
    }
  }
  return NULL;
}

static int errno_from_call_error(grpc_call_error e) {
  switch (e) {
  case GRPC_CALL_OK:
    return 0;
  case GRPC_CALL_ERROR_TOO_MANY_OPERATIONS:
    return EBUSY; /* two sends (or receives) outstanding at once */
  case GRPC_CALL_ERROR_ALREADY_FINISHED:
    return ECANCELED;
  default:
    return EINVAL;
  }
}

/* Starts a batch; wait_op waits for the CQ thread to report it. */
static int start_op(struct wg_rpc_call *c, struct wg__rpc_op *op, const grpc_op *ops, size_t n) {
  pthread_mutex_lock(&c->mu);
  op->done = false;
  op->ok = false;
  pthread_mutex_unlock(&c->mu);
  grpc_call_error e = grpc_call_start_batch(c->call, ops, n, op, NULL);
  return e == GRPC_CALL_OK ? 0 : errno_from_call_error(e);
}

/* Waits until the batch started on op is done; *op->ok tells how it went. A client that leaves
 * the batch waiting longer than the idle timeout (it sends nothing, or never reads what we send)
 * has its call cancelled, so it cannot hold a worker and a DuckDB connection forever; the batch
 * then completes as failed. */
static void wait_op(struct wg_rpc_call *c, struct wg__rpc_op *op) {
  int64_t idle = c->server->idle_timeout_ms;
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += idle / 1000;
  deadline.tv_nsec += (long)(idle % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  bool timed_out = false;
  pthread_mutex_lock(&c->mu);
  while (!op->done) {
    if (idle <= 0 || timed_out) {
      pthread_cond_wait(&c->cv, &c->mu);
    } else if (pthread_cond_timedwait(&c->cv, &c->mu, &deadline) == ETIMEDOUT && !op->done) {
      timed_out = true;
      pthread_mutex_unlock(&c->mu);
      char msg[96];
      snprintf(msg, sizeof(msg), "idle for %lld s: the client neither sent nor read a message",
               (long long)(idle / 1000));
      grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED, msg, NULL);
      pthread_mutex_lock(&c->mu);
    }
  }
  pthread_mutex_unlock(&c->mu);
}

static int run_op(struct wg_rpc_call *c, struct wg__rpc_op *op, const grpc_op *ops, size_t n) {
  WG_RETURN_NOT_OK(start_op(c, op, ops, n));
  wait_op(c, op);
  return 0;
}

/* Waits for a send started by wg_rpc_call_send_start: 0, or ECANCELED if it failed. */
static int wait_send(struct wg_rpc_call *c) {
  if (c->sending == NULL) return 0;
  wait_op(c, &c->send_op);
  grpc_byte_buffer_destroy(c->sending);
  c->sending = NULL;
  return c->send_op.ok ? 0 : ECANCELED;
}

int wg_rpc_call_recv(struct wg_rpc_call *c, grpc_byte_buffer **out) {
  if (out != NULL) *out = NULL;
  if (c == NULL || out == NULL) return EINVAL;
  if (atomic_load(&c->finished)) return EINVAL;
  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &c->recv_op.recv_buf;
  c->recv_op.recv_buf = NULL;
  int rc = run_op(c, &c->recv_op, &op, 1);
  if (rc != 0) return rc;
  grpc_byte_buffer *bb = c->recv_op.recv_buf;
  c->recv_op.recv_buf = NULL;
  if (!c->recv_op.ok) {
    if (bb != NULL) grpc_byte_buffer_destroy(bb);
    return ECANCELED;
  }
  if (bb == NULL && grpc_call_failed_before_recv_message(c->call)) return ECANCELED;
  *out = bb; /* NULL: the client half-closed */
  return 0;
}

int wg_rpc_call_send_start(struct wg_rpc_call *c, grpc_byte_buffer *msg) {
  if (c == NULL || msg == NULL || atomic_load(&c->finished)) {
    if (msg != NULL) grpc_byte_buffer_destroy(msg);
    return EINVAL;
  }
  int rc = wait_send(c);
  if (rc != 0) {
    grpc_byte_buffer_destroy(msg);
    return rc;
  }
  grpc_op ops[2];
  memset(ops, 0, sizeof(ops));
  size_t n = 0;
  if (!c->initial_md_sent) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n].data.send_message.send_message = msg;
  n++;
  rc = start_op(c, &c->send_op, ops, n);
  if (rc != 0) {
    grpc_byte_buffer_destroy(msg);
    return rc;
  }
  c->initial_md_sent = true; /* started, so sent or the call is gone */
  c->sending = msg;          /* gRPC reads it until the batch is done */
  return 0;
}

int wg_rpc_call_send(struct wg_rpc_call *c, grpc_byte_buffer *msg) {
  WG_RETURN_NOT_OK(wg_rpc_call_send_start(c, msg));
  return wait_send(c);
}

int wg_rpc_call_finish_with(struct wg_rpc_call *c, grpc_byte_buffer *last, grpc_status_code code,
                            const char *message) {
  if (c == NULL || atomic_exchange(&c->finished, true)) {
    if (last != NULL) grpc_byte_buffer_destroy(last);
    return EINVAL;
  }
  int sent = wait_send(c);
  if (sent != 0 && last != NULL) { /* the call is gone: the status cannot follow a lost message */
    grpc_byte_buffer_destroy(last);
    last = NULL;
  }
  grpc_slice details = grpc_slice_from_copied_string(message != NULL ? message : "");
  grpc_op ops[3];
  memset(ops, 0, sizeof(ops));
  size_t n = 0;
  if (!c->initial_md_sent) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  if (last != NULL) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = last;
  }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = code;
  ops[n].data.send_status_from_server.status_details = message != NULL ? &details : NULL;
  n++;
  int rc = run_op(c, &c->send_op, ops, n);
  grpc_slice_unref(details);
  if (last != NULL) grpc_byte_buffer_destroy(last);
  if (rc != 0) {
    /* Could not even start: end the call regardless. */
    grpc_call_cancel_with_status(c->call, code, message != NULL ? message : "", NULL);
    return rc;
  }
  c->initial_md_sent = true;
  return c->send_op.ok && sent == 0 ? 0 : ECANCELED;
}

int wg_rpc_call_finish(struct wg_rpc_call *c, grpc_status_code code, const char *message) {
  return wg_rpc_call_finish_with(c, NULL, code, message);
}

bool wg_rpc_call_cancelled(const struct wg_rpc_call *c) {
  return c != NULL && atomic_load(&((struct wg_rpc_call *)c)->cancelled);
}

void wg_rpc_call_set_cancel_hook(struct wg_rpc_call *c, void (*fn)(void *arg), void *arg) {
  if (c == NULL) return;
  pthread_mutex_lock(&c->mu);
  if (fn == NULL) {
    c->hook_fn = NULL;
    c->hook_arg = NULL;
    while (c->hook_running)
      pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    return;
  }
  if (atomic_load(&c->cancelled)) { /* too late for the CQ thread: run it here, now */
    pthread_mutex_unlock(&c->mu);
    fn(arg);
    return;
  }
  c->hook_fn = fn;
  c->hook_arg = arg;
  pthread_mutex_unlock(&c->mu);
}
