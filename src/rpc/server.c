/* wigeon: the gRPC server on the core C API (grpc/grpc.h 1.51) and pthreads. Our own listening
 * sockets and accept thread (so that connections are counted and capped, a full file table does
 * not stop accepting, and no two servers share a port), each accepted socket handed to gRPC with
 * grpc_server_add_channel_from_fd; under TLS, which that call does not take in 1.51, gRPC binds
 * and accepts the port itself (bind_tls; no connection cap). One completion queue, polled by one thread that only delivers
 * completions; a pool of worker threads that run the handler (a base that always runs, plus extra
 * workers started while every worker is busy), fed by a bounded FIFO of accepted calls. A
 * handler's blocking operations start a batch on the worker and sleep on the call's condition variable until the completion-queue thread
 * reports the batch done. A parked call (the live tail) has no worker: any thread starts its
 * batches and the completion-queue thread tells its owner what completed. All state lives in
 * struct wg_rpc_server; nothing is global except gRPC's own library refcount
 * (grpc_init/grpc_shutdown). */
#define _GNU_SOURCE /* accept4, pipe2 */
#include "rpc/rpc.h"
#include "rpc/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>
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
 * Parked calls (wg_rpc_call_park, the live tail): RUNNING --park--> PARKED, and the handler
 * returns; its worker takes the next call. A parked call is in s->parked_list, counts in
 * s->parked and not in `active`, and holds a third reference (dropped after DONE is told). Its
 * owner's threads (or its callback) start its batches under c->mu, one send-side batch at a time
 * (park_op: a message, or the status); the CQ thread turns completions into events and tells them
 * from parked_pump with no lock held (one CQ thread: never two at once):
 *
 *   PARKED --send--> SENDING --completed--> SENT told --> PARKED ...
 *      |                |
 *    finish           finish (pending: the status follows the send, SENT untold)
 *      v                v
 *   STATUS batch --completed--+
 *                             +--> both done: DONE told, unlinked, reference dropped
 *   close batch --completed---+    (cancelled: GONE told first, once; sends then ECANCELED)
 *
 *   transition                    -> function (thread)
 *   RUNNING -> PARKED             -> wg_rpc_call_park (worker; GONE at once via an empty batch,
 *                                    parked_poke, if the close batch had already completed)
 *   send, finish, expire          -> wg_rpc_parked_send, wg_rpc_parked_finish,
 *                                    wg_rpc_parked_expire (any thread)
 *   completions -> events         -> on_parked_op, on_close, the poke tag; parked_pump (CQ)
 *   shutdown                      -> parked_shutdown_locked: cancel all (UNAVAILABLE) at once,
 *                                    after the grace finish those whose owners did not
 * A call's lock is never held while calling the owner (fn, or a message's slice destructors),
 * so an owner may hold its own lock while it sends, and take it in fn. Lock order: s->mu, c->mu.
 *
 * Workers: `threads` base workers always run; when a call is queued and no worker is free to take
 * it, the CQ thread starts an extra worker (up to max_workers), which exits after
 * WG_RPC_EXTRA_IDLE_MS without work. So a handler that blocks for long (a DoGet whose client
 * stopped reading waits on flow control until the idle timeout) costs a thread, never the
 * service of other calls.
 *
 * Connections (accept thread, accept_main): every listening socket is polled; an accepted socket
 * is recorded as (fd, inode) and handed to gRPC, which owns and closes it. A record is live while
 * fstat(fd) still shows the same socket inode (gRPC may have closed fd, and the number may have
 * been reused for something else); dead records are swept when the count reaches max_connections.
 * A connection over the limit is refused: an HTTP/2 GOAWAY saying why, then close. When accept
 * fails for want of file descriptors (EMFILE), a spare descriptor is given up to accept and refuse
 * the pending connection, then taken again; accepting goes on when descriptors come back.
 *
 * Shutdown (wg_rpc_server_shutdown): stop the accept thread and close the listening sockets, stop
 * requesting calls, grpc_server_shutdown_and_notify, cancel the parked calls, wait up to grace_ms
 * for the active calls and the parked ones' DONE, grpc_server_cancel_all_calls, finish the parked
 * calls left, wait for every handler, every
 * grpc_call and the shutdown tag, stop and join the workers, destroy the server, shut the queue
 * down and let the CQ thread drain it to GRPC_QUEUE_SHUTDOWN, join it. */

enum {
  WG_RPC_DEFAULT_THREADS = 8,
  WG_RPC_DEFAULT_QUEUE_LIMIT = 64,
  WG_RPC_PENDING_REQUESTS = 8,
  WG_RPC_EXTRA_IDLE_MS = 2000,       /* an extra worker exits after this long without a call */
  WG_RPC_DEFAULT_MAX_CONNECTIONS = 4096,
  WG_RPC_FD_RESERVE = 128,           /* descriptors kept for DuckDB's files and gRPC itself */
  WG_RPC_MAX_LISTENERS = 8
};

/* Every tag given to gRPC starts with one of these, so the CQ thread knows what completed. */
enum wg__rpc_tag_kind {
  WG__RPC_TAG_REQUEST,
  WG__RPC_TAG_CLOSE,
  WG__RPC_TAG_OP,
  WG__RPC_TAG_SHUTDOWN,
  WG__RPC_TAG_PARKED, /* a parked call's send or status batch */
  WG__RPC_TAG_POKE    /* an empty batch: a parked call has events to tell (parked_poke) */
};

/* What a parked call's one send-side batch is doing. */
enum wg__rpc_park_op { WG__RPC_PARK_NONE, WG__RPC_PARK_MSG, WG__RPC_PARK_STATUS };

struct wg__rpc_tag {
  enum wg__rpc_tag_kind kind;
  struct wg_rpc_call *call; /* NULL for the shutdown tag */
};

/* One blocking operation direction of a call (sends, including finish; receives). */
struct wg__rpc_op {
  struct wg__rpc_tag tag; /* first: the tag pointer is the op pointer */
  bool started;           /* guarded by call->mu: with !done, outstanding */
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
  atomic_bool idle_expired; /* cancelled by the idle timeout (wait_op) */

  /* Worker-only after the call is queued. */
  char *method;
  char *peer;            /* gpr_malloc'ed by gRPC */
  struct wg__rpc_md *md; /* NUL-terminated copies of the request metadata, one block */
  int64_t md_count;
  void *user_data; /* the handler's (wg_rpc_call_set_user_data) */
  grpc_metadata headers[WG_RPC_MAX_HEADERS]; /* response headers (wg_rpc_call_add_header) */
  size_t n_headers;
  bool initial_md_sent;      /* send side only */
  grpc_byte_buffer *sending; /* the message of a send started and not yet waited for */
  atomic_bool finished;      /* set by finish (send side), read by recv (maybe another thread) */

  pthread_mutex_t mu;
  pthread_cond_t cv; /* op completions, hook finished */
  void (*hook_fn)(void *arg);
  void *hook_arg;
  bool hook_running;
  bool closed; /* the close batch completed; guarded by mu */

  /* Parked (wg_rpc_call_park; see NOTES): guarded by mu; `parked` is atomic for run_call. */
  atomic_bool parked;
  struct wg__rpc_tag park_tag; /* the send and status batches */
  struct wg__rpc_tag poke_tag; /* empty batches (parked_poke) */
  wg_rpc_parked_fn park_fn;
  void *park_arg;
  enum wg__rpc_park_op park_op;
  grpc_byte_buffer *park_msg; /* the outstanding send's message, destroyed when it completes */
  bool park_sent;             /* the send completed, SENT not yet told (park_op stays MSG) */
  bool park_failed;           /* a send failed: the call is gone */
  bool park_gone;             /* cancelled; GONE to tell */
  bool park_gone_told;
  bool park_finishing;        /* finish was called (by the owner or shutdown) */
  bool park_finish_pending;   /* ... while a send was outstanding: the status follows it */
  grpc_status_code park_code;
  char *park_message;         /* malloc'ed, or NULL */
  bool park_status_done;      /* the status batch completed (or could not start) */
  bool park_done_told;
  struct wg_rpc_call *park_prev, *park_next; /* s->parked_list; guarded by s->mu */
};

struct wg_rpc_server {
  grpc_server *server;
  grpc_completion_queue *cq;
  wg_rpc_handler_fn handler;
  wg_rpc_admit_fn admit; /* NULL: every call goes to a worker */
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
  int max_workers;
  int extra_workers; /* running extra (detached) workers; guarded by mu */
  int busy_workers;  /* workers running a call; guarded by mu */

  /* Listening and accepting (accept thread). */
  int max_connections;
  int listen_fds[WG_RPC_MAX_LISTENERS];
  int n_listen;
  int wake_fds[2]; /* a pipe: writing to it stops the accept thread */
  int spare_fd;    /* given up when accept hits EMFILE (see NOTES) */
  pthread_t accept_thread;
  bool accept_thread_started;
  grpc_server_credentials *creds;
  struct wg__rpc_tls *tls; /* NULL: plaintext, the sockets above; else gRPC binds (bind_tls) */
  pthread_mutex_t conn_mu; /* guards conns and the counters below */
  struct wg__rpc_conn {
    int fd;
    ino_t ino;
    char peer[64]; /* "ipv4:127.0.0.1:51234": gRPC only knows the socket as "fd:N" */
  } * conns;
  int n_conns, cap_conns;
  int64_t accepted, refused;

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
  struct wg_rpc_call *parked_list; /* parked calls not yet DONE; guarded by mu */
  atomic_int_fast64_t parked;      /* their number */
  bool parked_cancel;              /* shutdown began: a call parking now is cancelled */
  bool parked_reap;                /* the grace is over: a call parking now is finished */
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
  c->park_tag.kind = WG__RPC_TAG_PARKED;
  c->park_tag.call = c;
  c->poke_tag.kind = WG__RPC_TAG_POKE;
  c->poke_tag.call = c;
  atomic_init(&c->parked, false);
  atomic_init(&c->refs, 2);
  atomic_init(&c->cancelled, false);
  atomic_init(&c->idle_expired, false);
  atomic_init(&c->finished, false);
  return c;
}

/* Frees the struct and what it owns; the grpc_call (if any) is the caller's business. */
static void call_free_struct(struct wg_rpc_call *c) {
  grpc_call_details_destroy(&c->details);
  grpc_metadata_array_destroy(&c->request_md);
  if (c->recv_op.recv_buf != NULL) grpc_byte_buffer_destroy(c->recv_op.recv_buf);
  if (c->park_msg != NULL) grpc_byte_buffer_destroy(c->park_msg);
  free(c->park_message);
  free(c->method);
  if (c->peer != NULL) gpr_free(c->peer);
  free(c->md);
  for (size_t i = 0; i < c->n_headers; i++) {
    grpc_slice_unref(c->headers[i].key);
    grpc_slice_unref(c->headers[i].value);
  }
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

static void start_extra_worker(struct wg_rpc_server *s);
static void call_prepare(struct wg_rpc_call *c);
static void parked_shutdown_locked(struct wg_rpc_server *s, bool reap);

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
    c->closed = true; /* no worker has it yet */
    call_unref(c); /* the close reference: refs stays 1 */
  }

  if (c->method == NULL) {
    reject_call(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
    return;
  }
  call_prepare(c); /* the metadata, for the admit hook and then the handler */
  if (s->admit != NULL) {
    char message[256] = "";
    grpc_status_code code = s->admit(c, s->ctx, message, sizeof(message));
    if (code != GRPC_STATUS_OK) {
      reject_call(c, code, message);
      return;
    }
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
  /* More calls waiting than workers free to take them: one more worker for this one. */
  if (s->queue_len > s->workers_started + s->extra_workers - s->busy_workers &&
      s->workers_started + s->extra_workers < s->max_workers)
    start_extra_worker(s);
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

static void parked_pump(struct wg_rpc_call *c);
static void on_parked_op(struct wg_rpc_call *c, bool ok);

static void on_close(struct wg_rpc_call *c) {
  void (*fn)(void *) = NULL;
  void *arg = NULL;
  pthread_mutex_lock(&c->mu);
  c->closed = true;
  if (atomic_load(&c->parked)) { /* no hook any more: GONE instead, and maybe DONE */
    if (c->close_cancelled) {
      atomic_store(&c->cancelled, true);
      c->park_gone = true;
    }
    pthread_mutex_unlock(&c->mu);
    parked_pump(c);
    call_unref(c);
    return;
  }
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
  case WG__RPC_TAG_PARKED:
    on_parked_op(t->call, ok);
    break;
  case WG__RPC_TAG_POKE:
    parked_pump(t->call);
    call_unref(t->call); /* the poke's reference */
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

/* gRPC names a socket handed over by fd "fd:N"; the accept thread recorded its address. The
 * call's transport keeps fd open, so the record for N is this connection's. */
static void peer_from_fd(struct wg_rpc_server *s, char **peer) {
  int fd;
  char tail;
  if (*peer == NULL || sscanf(*peer, "fd:%d%c", &fd, &tail) != 1) return;
  pthread_mutex_lock(&s->conn_mu);
  for (int i = 0; i < s->n_conns; i++) {
    if (s->conns[i].fd != fd || s->conns[i].peer[0] == '\0') continue;
    gpr_free(*peer);
    *peer = gpr_strdup(s->conns[i].peer);
    break;
  }
  pthread_mutex_unlock(&s->conn_mu);
}

/* Copies method-independent call facts the handler may ask for: peer and request metadata. On the
 * completion-queue thread when the call arrives (quick: one allocation, conn_mu held briefly). */
static void call_prepare(struct wg_rpc_call *c) {
  c->peer = grpc_call_get_peer(c->call);
  peer_from_fd(c->server, &c->peer);
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
    s->handler(c, s->ctx);
    if (!atomic_load(&c->finished)) {
      wg_rpc_call_finish(c, GRPC_STATUS_INTERNAL, "handler returned without finishing the call");
    }
  }
  wg_rpc_call_set_cancel_hook(c, NULL, NULL); /* a hook's arg may not outlive its handler */
  bool parked = atomic_load(&c->parked); /* then it left `active` when it parked */
  pthread_mutex_lock(&s->mu);
  if (!parked) atomic_fetch_sub(&s->active, 1);
  pthread_cond_broadcast(&s->state_cv);
  pthread_mutex_unlock(&s->mu);
  call_unref(c);
}

/* Takes the next queued call, waiting for one; NULL when the worker should exit: stopping with
 * the queue empty, or (an extra worker) idle for WG_RPC_EXTRA_IDLE_MS. Called with s->mu held. */
static struct wg_rpc_call *next_call(struct wg_rpc_server *s, bool extra) {
  struct timespec until;
  if (extra) {
    clock_gettime(CLOCK_REALTIME, &until); /* work_cv has the default clock */
    until.tv_sec += WG_RPC_EXTRA_IDLE_MS / 1000;
  }
  while (s->queue_len == 0 && !s->stopping) {
    if (!extra) {
      pthread_cond_wait(&s->work_cv, &s->mu);
    } else if (pthread_cond_timedwait(&s->work_cv, &s->mu, &until) == ETIMEDOUT) {
      if (s->queue_len == 0) return NULL;
    }
  }
  if (s->queue_len == 0) return NULL;
  struct wg_rpc_call *c = s->queue[s->queue_head];
  s->queue_head = (s->queue_head + 1) % s->queue_limit;
  s->queue_len--;
  s->busy_workers++;
  return c;
}

static void worker_loop(struct wg_rpc_server *s, bool extra) {
  pthread_mutex_lock(&s->mu);
  struct wg_rpc_call *c;
  while ((c = next_call(s, extra)) != NULL) {
    pthread_mutex_unlock(&s->mu);
    run_call(s, c);
    pthread_mutex_lock(&s->mu);
    s->busy_workers--;
  }
  if (extra) {
    s->extra_workers--;
    pthread_cond_broadcast(&s->state_cv); /* shutdown waits for the extra workers to be gone */
  }
  pthread_mutex_unlock(&s->mu);
}

static void *worker_main(void *arg) {
  worker_loop(arg, false);
  return NULL;
}

static void *extra_worker_main(void *arg) {
  worker_loop(arg, true); /* detached: touches nothing of s after its last unlock */
  return NULL;
}

/* Called with s->mu held (on the CQ thread). A thread that cannot be made leaves the call queued
 * for the workers there are. */
static void start_extra_worker(struct wg_rpc_server *s) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  if (pthread_create(&t, &attr, extra_worker_main, s) == 0) s->extra_workers++;
  pthread_attr_destroy(&attr);
}

/* ---------------------------------------------------------------------------------------------
 * Listening and accepting (the accept thread) */

/* Open files allowed (the soft RLIMIT_NOFILE), or INT_MAX when unlimited. */
static int64_t open_files_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return INT_MAX;
  return (int64_t)rl.rlim_cur;
}

int wg_rpc_default_max_connections(void) {
  int64_t n = open_files_limit() - WG_RPC_FD_RESERVE;
  if (n > WG_RPC_DEFAULT_MAX_CONNECTIONS) n = WG_RPC_DEFAULT_MAX_CONNECTIONS;
  return n < 1 ? 1 : (int)n;
}

/* Binds and listens on every address `address` ("host:port", "[v6]:port", ":port" for all)
 * resolves to, without SO_REUSEPORT: a port another process listens on is refused (EADDRINUSE),
 * never shared. *port gets the port bound (the same on every address). */
static int listen_on(struct wg_rpc_server *s, const char *address, int *port,
                     struct wg_error *err) {
  const char *colon = strrchr(address, ':');
  if (colon == NULL || colon[1] == '\0')
    return wg_error_set(err, EINVAL, "cannot listen on '%.200s': expected HOST:PORT", address);
  char host[256];
  const char *h = address;
  size_t hl = (size_t)(colon - address);
  if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
    h++;
    hl -= 2;
  }
  if (hl >= sizeof(host))
    return wg_error_set(err, EINVAL, "host name too long in '%.200s'", address);
  memcpy(host, h, hl);
  host[hl] = '\0';
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  int g = getaddrinfo(hl > 0 ? host : NULL, colon + 1, &hints, &res);
  if (g != 0)
    return wg_error_set(err, EINVAL, "cannot listen on %.200s: %s", address, gai_strerror(g));
  bool v4 = false;
  for (struct addrinfo *a = res; a != NULL; a = a->ai_next)
    v4 = v4 || a->ai_family == AF_INET;
  int rc = 0, bound = 0;
  for (struct addrinfo *a = res; a != NULL && rc == 0; a = a->ai_next) {
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    bool dup = false;
    for (struct addrinfo *b = res; b != a; b = b->ai_next)
      dup = dup || (b->ai_addrlen == a->ai_addrlen && memcmp(b->ai_addr, a->ai_addr,
                                                             a->ai_addrlen) == 0);
    if (dup || s->n_listen == WG_RPC_MAX_LISTENERS) continue;
    struct sockaddr_storage addr;
    memcpy(&addr, a->ai_addr, a->ai_addrlen);
    in_port_t *pp = a->ai_family == AF_INET ? &((struct sockaddr_in *)&addr)->sin_port
                                            : &((struct sockaddr_in6 *)&addr)->sin6_port;
    if (bound != 0) *pp = htons((uint16_t)bound); /* port 0: every address on the first's port */
    int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      rc = wg_error_set(err, errno, "cannot listen on %.200s: socket: %s", address,
                        strerror(errno));
      break;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* TIME_WAIT, not sharing */
    if (a->ai_family == AF_INET6 && v4) /* [::] and 0.0.0.0 both: each its own family */
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, a->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
      int e = errno;
      close(fd);
      if (e == EADDRINUSE)
        rc = wg_error_set(err, EADDRINUSE,
                          "cannot listen on %.200s: address already in use (is another server "
                          "running on that port?)",
                          address);
      else
        rc = wg_error_set(err, e, "cannot listen on %.200s: %s", address, strerror(e));
      break;
    }
    s->listen_fds[s->n_listen++] = fd;
    if (bound == 0) {
      struct sockaddr_storage got;
      socklen_t gl = sizeof(got);
      if (getsockname(fd, (struct sockaddr *)&got, &gl) == 0)
        bound = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                               : ((struct sockaddr_in6 *)&got)->sin6_port);
    }
  }
  freeaddrinfo(res);
  if (rc == 0 && s->n_listen == 0)
    rc = wg_error_set(err, EINVAL, "cannot listen on %.200s: no IPv4 or IPv6 address", address);
  if (rc == 0) *port = bound;
  return rc;
}

/* Drops the records of connections gRPC has closed. Called with conn_mu held. */
static void conns_sweep(struct wg_rpc_server *s) {
  for (int i = 0; i < s->n_conns;) {
    struct stat st;
    if (fstat(s->conns[i].fd, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_ino != s->conns[i].ino)
      s->conns[i] = s->conns[--s->n_conns];
    else
      i++;
  }
}

/* The peer's address as gRPC writes it: "ipv4:1.2.3.4:5", "ipv6:[::1]:5"; "" if unknown. */
static void peer_name(int fd, char *out, size_t n) {
  struct sockaddr_storage a;
  socklen_t al = sizeof(a);
  char ip[INET6_ADDRSTRLEN];
  out[0] = '\0';
  if (getpeername(fd, (struct sockaddr *)&a, &al) != 0) return;
  if (a.ss_family == AF_INET) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a;
    if (inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip)) != NULL)
      snprintf(out, n, "ipv4:%s:%d", ip, ntohs(v4->sin_port));
  } else if (a.ss_family == AF_INET6) {
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a;
    if (inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip)) != NULL)
      snprintf(out, n, "ipv6:[%s]:%d", ip, ntohs(v6->sin6_port));
  }
}

/* Records an accepted socket; false when over max_connections (or out of memory). */
static bool conns_admit(struct wg_rpc_server *s, int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  pthread_mutex_lock(&s->conn_mu);
  bool ok = true;
  int slot = -1;
  for (int i = 0; i < s->n_conns && slot < 0; i++)
    if (s->conns[i].fd == fd) slot = i; /* the kernel reused the number: that one is gone */
  if (slot < 0 && s->n_conns >= s->max_connections) conns_sweep(s);
  if (slot < 0 && s->n_conns >= s->max_connections) {
    ok = false;
  } else if (slot < 0) {
    if (s->n_conns == s->cap_conns) {
      int cap = s->cap_conns ? s->cap_conns * 2 : 64;
      struct wg__rpc_conn *grown = realloc(s->conns, (size_t)cap * sizeof(*grown));
      if (grown == NULL) {
        ok = false;
      } else {
        s->conns = grown;
        s->cap_conns = cap;
      }
    }
    if (ok) slot = s->n_conns++;
  }
  if (ok) {
    s->conns[slot].fd = fd;
    s->conns[slot].ino = st.st_ino;
    peer_name(fd, s->conns[slot].peer, sizeof(s->conns[slot].peer));
    s->accepted++;
  } else {
    s->refused++;
  }
  pthread_mutex_unlock(&s->conn_mu);
  return ok;
}

/* Refuses a connection: the HTTP/2 server preface (empty SETTINGS) and a GOAWAY whose debug data
 * says why, then close. Best effort: the socket is non-blocking and these bytes fit any buffer. */
static void refuse(int fd, const char *why) {
  uint8_t buf[256];
  size_t n = strlen(why);
  if (n > sizeof(buf) - 26) n = sizeof(buf) - 26;
  memset(buf, 0, 26);
  buf[3] = 0x4;                  /* SETTINGS, length 0, stream 0 */
  size_t len = 8 + n;            /* GOAWAY: last stream id, error code, debug data */
  buf[9] = (uint8_t)(len >> 16);
  buf[10] = (uint8_t)(len >> 8);
  buf[11] = (uint8_t)len;
  buf[12] = 0x7;
  buf[25] = 0xb; /* ENHANCE_YOUR_CALM */
  memcpy(buf + 26, why, n);
  char sink[4096];
  while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
  } /* unread input would turn the close into a reset that may overtake the GOAWAY */
  ssize_t w = send(fd, buf, 26 + n, MSG_DONTWAIT | MSG_NOSIGNAL);
  (void)w;
  shutdown(fd, SHUT_WR);
  close(fd);
}

static void accept_one_listener(struct wg_rpc_server *s, int lfd, bool *starved) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        /* Out of descriptors: give up the spare one to take the pending connection off the
         * queue and refuse it, rather than leave it (and every later one) hanging. */
        if (s->spare_fd >= 0) {
          close(s->spare_fd);
          s->spare_fd = -1;
          int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c >= 0) {
            refuse(c, "server out of file descriptors");
            pthread_mutex_lock(&s->conn_mu);
            s->refused++;
            pthread_mutex_unlock(&s->conn_mu);
          }
          s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
        *starved = true;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        *starved = true; /* ENOBUFS, ENOMEM ...: try again shortly */
      }
      return;
    }
    if (!conns_admit(s, fd)) {
      char why[96];
      snprintf(why, sizeof(why), "too many connections: the server accepts %d at a time",
               s->max_connections);
      refuse(fd, why);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    grpc_server_add_channel_from_fd(s->server, fd, s->creds); /* gRPC owns fd from here */
  }
}

static void *accept_main(void *arg) {
  struct wg_rpc_server *s = arg;
  struct pollfd p[WG_RPC_MAX_LISTENERS + 1];
  for (;;) {
    for (int i = 0; i < s->n_listen; i++)
      p[i] = (struct pollfd){.fd = s->listen_fds[i], .events = POLLIN};
    p[s->n_listen] = (struct pollfd){.fd = s->wake_fds[0], .events = POLLIN};
    if (poll(p, (nfds_t)s->n_listen + 1, -1) < 0) continue; /* EINTR */
    if (p[s->n_listen].revents != 0) return NULL;
    bool starved = false;
    for (int i = 0; i < s->n_listen; i++)
      if (p[i].revents != 0) accept_one_listener(s, s->listen_fds[i], &starved);
    if (starved) { /* no busy loop while descriptors are short; the wake pipe still stops us */
      struct pollfd w = {.fd = s->wake_fds[0], .events = POLLIN};
      if (poll(&w, 1, 50) > 0) return NULL;
    }
  }
}

static void stop_accepting(struct wg_rpc_server *s) {
  if (s->accept_thread_started) {
    ssize_t w = write(s->wake_fds[1], "x", 1);
    (void)w;
    pthread_join(s->accept_thread, NULL);
    s->accept_thread_started = false;
  }
  for (int i = 0; i < s->n_listen; i++)
    close(s->listen_fds[i]);
  s->n_listen = 0;
}

int64_t wg_rpc_server_connections(struct wg_rpc_server *s, int64_t *accepted, int64_t *refused) {
  if (s == NULL) return 0;
  pthread_mutex_lock(&s->conn_mu);
  conns_sweep(s);
  int64_t n = s->n_conns;
  if (accepted != NULL) *accepted = s->accepted;
  if (refused != NULL) *refused = s->refused;
  pthread_mutex_unlock(&s->conn_mu);
  return n;
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
  stop_accepting(s); /* no connection is added to a server shutting down */

  if (s->server != NULL) {
    grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
    if (s->cq_thread_started) {
      struct timespec grace;
      deadline_after_ms(&grace, grace_ms > 0 ? grace_ms : 0);
      pthread_mutex_lock(&s->mu);
      parked_shutdown_locked(s, false); /* parked calls never end by themselves: GONE now */
      while (atomic_load(&s->active) > 0 || atomic_load(&s->parked) > 0) {
        if (pthread_cond_timedwait(&s->state_cv, &s->mu, &grace) != 0) break; /* ETIMEDOUT */
      }
      pthread_mutex_unlock(&s->mu);
      grpc_server_cancel_all_calls(s->server);
      pthread_mutex_lock(&s->mu);
      parked_shutdown_locked(s, true); /* owners that have not finished: we do, for DONE */
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
  pthread_mutex_lock(&s->mu);
  while (s->extra_workers > 0)
    pthread_cond_wait(&s->state_cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
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
  free(s->conns);
  for (int i = 0; i < 2; i++)
    if (s->wake_fds[i] >= 0) close(s->wake_fds[i]);
  if (s->spare_fd >= 0) close(s->spare_fd);
  if (s->creds != NULL) grpc_server_credentials_release(s->creds);
  wg__rpc_tls_close(s->tls); /* after the server: its handshakes call the fetcher */
  pthread_mutex_destroy(&s->conn_mu);
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
  if (rc == 0 && (rc = pthread_mutex_init(&s->conn_mu, NULL)) != 0) pthread_mutex_destroy(&s->mu);
  if (rc == 0) {
    rc = pthread_cond_init(&s->work_cv, NULL);
    if (rc == 0) {
      rc = pthread_cond_init(&s->state_cv, &attr);
      if (rc != 0) pthread_cond_destroy(&s->work_cv);
    }
    if (rc != 0) {
      pthread_mutex_destroy(&s->conn_mu);
      pthread_mutex_destroy(&s->mu);
    }
  }
  pthread_condattr_destroy(&attr);
  return rc;
}

/* Under TLS gRPC binds the port itself: grpc_server_add_channel_from_fd takes only insecure
 * credentials in gRPC 1.51 (chttp2_server.cc refuses any other kind). SO_REUSEPORT is off in the
 * server's channel args, so a port another socket listens on is refused, as in listen_on. Before
 * grpc_server_start. */
static int bind_tls(struct wg_rpc_server *s, const char *address, int *port,
                    struct wg_error *err) {
  char addr[300];
  const char *colon = strrchr(address, ':');
  if (colon == NULL || colon[1] == '\0')
    return wg_error_set(err, EINVAL, "cannot listen on '%.200s': expected HOST:PORT", address);
  if (colon == address) /* ":port": every address, as listen_on does */
    snprintf(addr, sizeof(addr), "[::]%.200s", address);
  else
    snprintf(addr, sizeof(addr), "%.200s", address);
  s->creds = wg__rpc_tls_credentials(s->tls);
  int bound = s->creds != NULL ? grpc_server_add_http2_port(s->server, addr, s->creds) : 0;
  if (bound > 0) {
    *port = bound;
    return 0;
  }
  /* gRPC says only that it failed: our own bind finds why (in use, no such address). */
  int probe = 0;
  int rc = listen_on(s, address, &probe, err);
  stop_accepting(s); /* closes what the probe bound */
  if (rc != 0) return rc;
  return wg_error_set(err, EINVAL, "cannot listen on %.200s with TLS (gRPC refused the address)",
                      address);
}

int wg_rpc_server_tls_reload(struct wg_rpc_server *s, struct wg_error *err) {
  return s != NULL ? wg__rpc_tls_reload(s->tls, err) : 0;
}

bool wg_rpc_server_tls(const struct wg_rpc_server *s) {
  return s != NULL && s->tls != NULL;
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
  s->admit = options->admit;
  s->ctx = options->ctx;
  s->threads = options->threads > 0 ? options->threads : WG_RPC_DEFAULT_THREADS;
  s->queue_limit = options->queue_limit > 0 ? options->queue_limit : WG_RPC_DEFAULT_QUEUE_LIMIT;
  s->idle_timeout_ms = options->idle_timeout_ms == 0 ? 60000 : options->idle_timeout_ms;
  s->max_connections =
      options->max_connections > 0 ? options->max_connections : wg_rpc_default_max_connections();
  s->max_workers = options->max_workers > 0 ? options->max_workers
                                            : s->threads + s->max_connections;
  if (s->max_workers < s->threads) s->max_workers = s->threads;
  s->shutdown_tag.kind = WG__RPC_TAG_SHUTDOWN;
  s->wake_fds[0] = s->wake_fds[1] = s->spare_fd = -1;
  atomic_init(&s->active, 0);
  atomic_init(&s->parked, 0);
  if (server_init_sync(s) != 0) {
    free(s);
    return wg_error_set(err, ENOMEM, "cannot create the server's locks");
  }
  int port = 0, rc;
  if (options->tls_cert_file != NULL || options->tls_key_file != NULL)
    rc = wg__rpc_tls_open(&s->tls, options->tls_cert_file, options->tls_key_file,
                          options->tls_client_ca_file, err);
  else
    rc = listen_on(s, options->listen, &port, err);
  if (rc == 0 && pipe2(s->wake_fds, O_CLOEXEC) != 0)
    rc = wg_error_set(err, errno, "cannot create a pipe: %s", strerror(errno));
  if (rc != 0) {
    stop_accepting(s);
    wg_rpc_server_destroy(s);
    return rc;
  }
  s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  s->queue = calloc((size_t)s->queue_limit, sizeof(*s->queue));
  s->workers = calloc((size_t)s->threads, sizeof(*s->workers));
  if (s->queue == NULL || s->workers == NULL) {
    wg_rpc_server_destroy(s);
    return wg_error_set(err, ENOMEM, "out of memory for %d workers and a queue of %d", s->threads,
                        s->queue_limit);
  }

  grpc_init();
  s->grpc_inited = true;
  int64_t keepalive = options->keepalive_ms == 0 ? 30000 : options->keepalive_ms;
  grpc_arg args[9];
  memset(args, 0, sizeof(args));
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = (int)max_bytes;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = (int)max_bytes;
  args[2].type = GRPC_ARG_INTEGER;
  args[2].key = (char *)GRPC_ARG_ALLOW_REUSEPORT; /* the ports gRPC binds (TLS): never shared */
  args[2].value.integer = 0;
  size_t n_args = 3;
  /* a client may ping every 10 s (grpc-java's and grpc-go's floor), with or without calls open */
  args[n_args].type = GRPC_ARG_INTEGER;
  args[n_args].key = (char *)GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS;
  args[n_args++].value.integer = 10000;
  args[n_args].type = GRPC_ARG_INTEGER;
  args[n_args].key = (char *)GRPC_ARG_HTTP2_MAX_PING_STRIKES;
  args[n_args++].value.integer = 0; /* a faster pinger is not sent away either */
  if (keepalive > 0) {
    /* A parked call (a live tail) may see no data for hours: without pings a client that
     * vanished (its machine off, a partition: no FIN) would hold its subscription, and its
     * --max-tails place, for ever. gRPC's own server default is one ping per two hours. */
    int ka = keepalive > INT32_MAX ? INT32_MAX : (int)keepalive;
    args[n_args].type = GRPC_ARG_INTEGER;
    args[n_args].key = (char *)GRPC_ARG_KEEPALIVE_TIME_MS;
    args[n_args++].value.integer = ka;
    args[n_args].type = GRPC_ARG_INTEGER;
    args[n_args].key = (char *)GRPC_ARG_KEEPALIVE_TIMEOUT_MS;
    args[n_args++].value.integer = ka < 20000 ? ka : 20000;
    args[n_args].type = GRPC_ARG_INTEGER;
    args[n_args].key = (char *)GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA;
    args[n_args++].value.integer = 0; /* pings go on while a tail waits with nothing to send */
  }
  grpc_channel_args channel_args = {n_args, args};
  s->server = grpc_server_create(&channel_args, NULL);
  s->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(s->server, s->cq, NULL);
  if (s->tls != NULL) {
    rc = bind_tls(s, options->listen, &port, err);
    if (rc != 0) {
      grpc_server_destroy(s->server); /* never started, no listener: nothing to shut down */
      s->server = NULL;
      wg_rpc_server_destroy(s);
      return rc;
    }
  } else {
    s->creds = grpc_insecure_server_credentials_create(); /* for the sockets we accept */
  }
  grpc_server_start(s->server);
  s->server_started = true;

  rc = pthread_create(&s->cq_thread, NULL, cq_main, s);
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
  rc = s->tls != NULL ? 0 : pthread_create(&s->accept_thread, NULL, accept_main, s);
  if (rc != 0) {
    wg_rpc_server_destroy(s);
    return wg_error_set(err, rc, "cannot start the accept thread");
  }
  s->accept_thread_started = s->tls == NULL;
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


/* Starts a batch; wait_op waits for the CQ thread to report it. */
void wg_rpc_call_set_user_data(struct wg_rpc_call *c, void *data) {
  c->user_data = data;
}

void *wg_rpc_call_user_data(const struct wg_rpc_call *c) {
  return c->user_data;
}

static int start_op(struct wg_rpc_call *c, struct wg__rpc_op *op, const grpc_op *ops, size_t n) {
  pthread_mutex_lock(&c->mu);
  if (atomic_load(&c->parked)) { /* the handler's own operations end when it parks */
    pthread_mutex_unlock(&c->mu);
    return EINVAL;
  }
  op->started = true;
  op->done = false;
  op->ok = false;
  pthread_mutex_unlock(&c->mu);
  grpc_call_error e = grpc_call_start_batch(c->call, ops, n, op, NULL);
  return e == GRPC_CALL_OK ? 0 : wg_rpc_errno_from_call_error(e, ECANCELED);
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
      atomic_store(&c->idle_expired, true);
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

int wg_rpc_call_send_wait(struct wg_rpc_call *c, int64_t timeout_ms) {
  if (c == NULL) return EINVAL;
  if (c->sending == NULL) return 0;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until); /* c->cv has the default clock */
  until.tv_sec += (time_t)(timeout_ms / 1000);
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&c->mu);
  while (!c->send_op.done) {
    if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT) break;
  }
  bool done = c->send_op.done;
  pthread_mutex_unlock(&c->mu);
  return done ? wait_send(c) : ETIMEDOUT;
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

/* The op that sends the initial metadata, with the headers the handler added. */
static void initial_metadata(struct wg_rpc_call *c, grpc_op *op) {
  op->op = GRPC_OP_SEND_INITIAL_METADATA;
  op->data.send_initial_metadata.count = c->n_headers;
  op->data.send_initial_metadata.metadata = c->n_headers > 0 ? c->headers : NULL;
}

int wg_rpc_call_add_header(struct wg_rpc_call *c, const char *key, const char *value) {
  if (c == NULL || key == NULL || value == NULL || c->initial_md_sent) return EINVAL;
  if (c->n_headers >= WG_RPC_MAX_HEADERS) return EMSGSIZE;
  c->headers[c->n_headers].key = grpc_slice_from_copied_string(key);
  c->headers[c->n_headers].value = grpc_slice_from_copied_string(value);
  c->n_headers++;
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
  if (!c->initial_md_sent) initial_metadata(c, &ops[n++]);
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
  if (!c->initial_md_sent) initial_metadata(c, &ops[n++]);
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

int wg_rpc_call_error(const struct wg_rpc_call *c, int code, const char *during,
                      struct wg_error *err) {
  if (code == 0) return 0;
  struct wg_rpc_call *m = (struct wg_rpc_call *)c; /* atomics: read only */
  if (atomic_load(&m->idle_expired))
    return wg_error_set(err, code,
                        "%s: cancelled after %lld s idle: the client neither sent nor read a "
                        "message",
                        during, (long long)(c->server->idle_timeout_ms / 1000));
  if (code == ECANCELED || atomic_load(&m->cancelled))
    return wg_error_set(err, code,
                        "%s: the call is over: the client cancelled or went away, its deadline "
                        "passed, or the server is stopping",
                        during);
  if (code == EBUSY)
    return wg_error_set(err, code, "%s: an operation of that kind is already outstanding",
                        during);
  return wg_error_set(err, code, "%s: gRPC refused the operation (%s)", during,
                      wg_status_name(code));
}

void wg_rpc_call_expire(struct wg_rpc_call *c, grpc_status_code code, const char *message) {
  if (c == NULL || atomic_load(&c->finished)) return;
  grpc_call_cancel_with_status(c->call, code, message != NULL ? message : "", NULL);
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

/* ---------------------------------------------------------------------------------------------
 * Parked calls (see NOTES): the owner's threads start batches, the CQ thread tells events */

/* Posts an empty batch, which gRPC completes at once: the CQ thread then tells whatever events
 * the call has pending (parked_pump). Holds a reference until then. Any thread, any lock held:
 * it calls nothing of ours. */
static void parked_poke(struct wg_rpc_call *c) {
  atomic_fetch_add(&c->refs, 1);
  if (grpc_call_start_batch(c->call, NULL, 0, &c->poke_tag, NULL) != GRPC_CALL_OK)
    atomic_fetch_sub(&c->refs, 1); /* never the last: the caller holds one */
}

/* Starts the status batch. Called with c->mu held and no send-side batch outstanding. */
static void parked_status_locked(struct wg_rpc_call *c, grpc_status_code code,
                                 const char *message) {
  grpc_slice details = grpc_slice_from_copied_string(message != NULL ? message : "");
  grpc_op ops[2];
  memset(ops, 0, sizeof(ops));
  size_t n = 0;
  if (!c->initial_md_sent) initial_metadata(c, &ops[n++]);
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = code;
  ops[n].data.send_status_from_server.status_details = &details;
  n++;
  c->park_op = WG__RPC_PARK_STATUS;
  grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->park_tag, NULL);
  grpc_slice_unref(details); /* the batch holds its own reference */
  c->initial_md_sent = true;
  if (e != GRPC_CALL_OK) { /* end the call regardless; DONE still comes, from the CQ thread */
    c->park_op = WG__RPC_PARK_NONE;
    c->park_status_done = true;
    grpc_call_cancel_with_status(c->call, code, message != NULL ? message : "", NULL);
    parked_poke(c);
  }
}

/* wg_rpc_parked_finish with c->mu held (also shutdown's, under s->mu). */
static int parked_finish_locked(struct wg_rpc_call *c, grpc_status_code code,
                                const char *message) {
  if (!atomic_load(&c->parked) || c->park_finishing) return EINVAL;
  c->park_finishing = true;
  if (c->park_op == WG__RPC_PARK_MSG && !c->park_sent) { /* the status follows the send */
    c->park_finish_pending = true;
    c->park_code = code;
    c->park_message = message != NULL ? strdup(message) : NULL;
    return 0;
  }
  c->park_sent = false; /* a finish follows the send: SENT goes untold */
  c->park_op = WG__RPC_PARK_NONE;
  parked_status_locked(c, code, message);
  return 0;
}

int wg_rpc_call_park(struct wg_rpc_call *c, wg_rpc_parked_fn fn, void *arg) {
  if (c == NULL || fn == NULL || c->sending != NULL) return EINVAL;
  struct wg_rpc_server *s = c->server;
  pthread_mutex_lock(&s->mu); /* order: s->mu, then c->mu */
  pthread_mutex_lock(&c->mu);
  bool busy = (c->recv_op.started && !c->recv_op.done) ||
              (c->send_op.started && !c->send_op.done);
  if (busy || atomic_load(&c->finished) || atomic_load(&c->parked)) {
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&s->mu);
    return EINVAL;
  }
  atomic_store(&c->finished, true); /* the handler's own operations are over */
  atomic_store(&c->parked, true);
  c->park_fn = fn;
  c->park_arg = arg;
  c->hook_fn = NULL; /* a running hook is waited for below */
  c->hook_arg = NULL;
  atomic_fetch_add(&c->refs, 1); /* the parked reference, dropped after DONE */
  bool poke = c->closed; /* cancelled before parking (the close batch completed): GONE now */
  if (poke) c->park_gone = true;
  pthread_mutex_unlock(&c->mu);
  c->park_next = s->parked_list;
  c->park_prev = NULL;
  if (s->parked_list != NULL) s->parked_list->park_prev = c;
  s->parked_list = c;
  atomic_fetch_add(&s->parked, 1);
  atomic_fetch_sub(&s->active, 1);
  pthread_cond_broadcast(&s->state_cv);
  if (s->parked_cancel)
    grpc_call_cancel_with_status(c->call, GRPC_STATUS_UNAVAILABLE, "the server is shutting down",
                                 NULL);
  if (s->parked_reap) {
    pthread_mutex_lock(&c->mu);
    parked_finish_locked(c, GRPC_STATUS_UNAVAILABLE, "the server is shutting down");
    pthread_mutex_unlock(&c->mu);
  }
  pthread_mutex_unlock(&s->mu);
  if (poke) parked_poke(c);
  pthread_mutex_lock(&c->mu);
  while (c->hook_running) /* started before we parked: its arg may be the handler's */
    pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

int wg_rpc_parked_send(struct wg_rpc_call *c, grpc_byte_buffer *msg) {
  if (c == NULL || msg == NULL) {
    if (msg != NULL) grpc_byte_buffer_destroy(msg);
    return EINVAL;
  }
  int rc = 0;
  pthread_mutex_lock(&c->mu);
  if (!atomic_load(&c->parked) || c->park_finishing) {
    rc = EINVAL;
  } else if (c->park_gone || c->park_failed) {
    rc = ECANCELED;
  } else if (c->park_op != WG__RPC_PARK_NONE) {
    rc = EBUSY;
  } else {
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    size_t n = 0;
    if (!c->initial_md_sent) initial_metadata(c, &ops[n++]);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = msg;
    n++;
    c->park_op = WG__RPC_PARK_MSG;
    c->park_msg = msg;
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->park_tag, NULL);
    if (e == GRPC_CALL_OK) {
      c->initial_md_sent = true;
      msg = NULL; /* gRPC reads it until the batch completes */
    } else {
      c->park_op = WG__RPC_PARK_NONE;
      c->park_msg = NULL;
      rc = wg_rpc_errno_from_call_error(e, ECANCELED);
    }
  }
  pthread_mutex_unlock(&c->mu);
  if (msg != NULL) grpc_byte_buffer_destroy(msg); /* outside the lock: its slices' callbacks */
  return rc;
}

int wg_rpc_parked_finish(struct wg_rpc_call *c, grpc_status_code code, const char *message) {
  if (c == NULL) return EINVAL;
  pthread_mutex_lock(&c->mu);
  int rc = parked_finish_locked(c, code, message);
  pthread_mutex_unlock(&c->mu);
  return rc;
}

int wg_rpc_parked_expire(struct wg_rpc_call *c, grpc_status_code code, const char *message) {
  if (c == NULL) return EINVAL;
  pthread_mutex_lock(&c->mu);
  bool parked = atomic_load(&c->parked) && !c->park_done_told;
  if (parked) /* the held send fails at once; the client has the status when it reads again */
    grpc_call_cancel_with_status(c->call, code, message != NULL ? message : "", NULL);
  pthread_mutex_unlock(&c->mu);
  return parked ? 0 : EINVAL;
}

int64_t wg_rpc_server_parked_calls(const struct wg_rpc_server *s) {
  if (s == NULL) return 0;
  return (int64_t)atomic_load(&((struct wg_rpc_server *)s)->parked);
}

/* A parked call's send or status batch completed (CQ thread). */
static void on_parked_op(struct wg_rpc_call *c, bool ok) {
  grpc_byte_buffer *msg = NULL;
  pthread_mutex_lock(&c->mu);
  if (c->park_op == WG__RPC_PARK_MSG) {
    msg = c->park_msg;
    c->park_msg = NULL;
    if (!ok) c->park_failed = true;
    if (c->park_finish_pending) {
      c->park_finish_pending = false;
      c->park_op = WG__RPC_PARK_NONE;
      parked_status_locked(c, c->park_code, c->park_message);
      free(c->park_message);
      c->park_message = NULL;
    } else {
      c->park_sent = true; /* park_op stays MSG until SENT is told: sends get EBUSY till then */
    }
  } else if (c->park_op == WG__RPC_PARK_STATUS) {
    c->park_op = WG__RPC_PARK_NONE;
    c->park_status_done = true;
  }
  pthread_mutex_unlock(&c->mu);
  if (msg != NULL) grpc_byte_buffer_destroy(msg);
  parked_pump(c);
}

/* Tells the owner each pending event, one at a time, with no lock held: GONE, SENT, then DONE
 * once the status batch and the close batch have both completed, after which the parked
 * reference goes. Only on the CQ thread (one per server), so fn never runs twice at once. */
static void parked_pump(struct wg_rpc_call *c) {
  for (;;) {
    int ev = 0;
    pthread_mutex_lock(&c->mu);
    if (c->park_gone && !c->park_gone_told) {
      c->park_gone_told = true;
      ev = WG_RPC_PARKED_GONE;
    } else if (c->park_sent) {
      c->park_sent = false;
      c->park_op = WG__RPC_PARK_NONE;
      ev = WG_RPC_PARKED_SENT;
    } else if (c->park_status_done && c->closed && !c->park_done_told) {
      c->park_done_told = true;
      ev = WG_RPC_PARKED_DONE;
    }
    wg_rpc_parked_fn fn = c->park_fn;
    void *arg = c->park_arg;
    pthread_mutex_unlock(&c->mu);
    if (ev == 0) return;
    fn(arg, ev);
    if (ev != WG_RPC_PARKED_DONE) continue;
    struct wg_rpc_server *s = c->server;
    pthread_mutex_lock(&s->mu);
    if (c->park_prev != NULL) c->park_prev->park_next = c->park_next;
    else s->parked_list = c->park_next;
    if (c->park_next != NULL) c->park_next->park_prev = c->park_prev;
    atomic_fetch_sub(&s->parked, 1);
    pthread_cond_broadcast(&s->state_cv);
    pthread_mutex_unlock(&s->mu);
    call_unref(c); /* the parked reference */
    return;
  }
}

/* Shutdown, with s->mu held: cancel every parked call (the client sees UNAVAILABLE; owners are
 * told GONE), or, the grace over, finish those their owners have not. */
static void parked_shutdown_locked(struct wg_rpc_server *s, bool reap) {
  for (struct wg_rpc_call *c = s->parked_list; c != NULL; c = c->park_next) {
    if (!reap) {
      grpc_call_cancel_with_status(c->call, GRPC_STATUS_UNAVAILABLE,
                                   "the server is shutting down", NULL);
      continue;
    }
    pthread_mutex_lock(&c->mu);
    parked_finish_locked(c, GRPC_STATUS_UNAVAILABLE, "the server is shutting down");
    pthread_mutex_unlock(&c->mu);
  }
  if (reap) s->parked_reap = true;
  else s->parked_cancel = true;
}
