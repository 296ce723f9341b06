/* wigeon: gRPC transport on the gRPC core C API (grpc/grpc.h). A server that accepts connections
 * itself (capped, one server per port) and hands each incoming call to a worker thread from a
 * pool that grows while every worker is busy, with a bounded queue of calls waiting for a worker,
 * and blocking per-call operations for the handler; and a client with the same blocking
 * operations. Messages are grpc_byte_buffers: the layers above build them from slices (zero copy)
 * and read them slice by slice.
 *
 * Threads: one completion-queue thread per server polls the queue and only delivers completions
 * (and answers RESOURCE_EXHAUSTED when the queue is full). Batches on a call are started by the
 * handler's worker thread through the functions below, at most one send and one receive
 * outstanding at a time; cancellation hooks run on the completion-queue thread. A parked call
 * (wg_rpc_call_park) is the exception: it has no worker, and any thread starts its sends. */
#ifndef WG_RPC_RPC_H
#define WG_RPC_RPC_H

#include <stdbool.h>
#include <stdint.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>

#include "common/error.h"

/* Largest message by default, both ways: the server's max_message_bytes when 0, and the
 * client's limit for what it sends and receives. */
#define WG_RPC_DEFAULT_MAX_MESSAGE_BYTES ((int64_t)256 << 20)

/* ---------------------------------------------------------------------------------------------
 * Server */

struct wg_rpc_server;
struct wg_rpc_call;

/* Runs on a worker thread for one call; must end with wg_rpc_call_finish. */
typedef void (*wg_rpc_handler_fn)(struct wg_rpc_call *call, void *ctx);
/* Runs on the completion-queue thread as a call arrives, before it waits for a worker, with its
 * method, peer and metadata readable (wg_rpc_call_metadata...): GRPC_STATUS_OK lets it go on to a
 * worker, any other code refuses it at once with `message` (size bytes, NUL-terminated). Must be
 * quick and never block: it holds up every call of the server. */
typedef grpc_status_code (*wg_rpc_admit_fn)(const struct wg_rpc_call *call, void *ctx,
                                            char *message, size_t size);
/* Response headers a handler may add to its call (wg_rpc_call_add_header) */
#define WG_RPC_MAX_HEADERS 4

struct wg_rpc_server_options {
  const char *listen;        /* "host:port"; port 0 picks a free port */
  int threads;               /* worker threads always running (default 8) */
  int queue_limit;           /* calls waiting for a worker before RESOURCE_EXHAUSTED (64) */
  int64_t max_message_bytes; /* largest message received or sent (default 256 MiB) */
  int64_t idle_timeout_ms;   /* a call whose client neither sends nor reads for this long is
                                cancelled with DEADLINE_EXCEEDED (default 60 s; < 0: never) */
  int64_t keepalive_ms;      /* on a connection with calls open (a parked tail too) an HTTP/2 PING
                                goes out after this long without one; a client that does not
                                answer within the same time (at most 20 s) has its connection
                                closed and its calls cancelled (default 30 s; < 0: no pings).
                                Clients may ping every 10 s, no more often. */
  int max_connections;       /* TCP connections open at once; more are refused with an HTTP/2
                                GOAWAY (default wg_rpc_default_max_connections()) */
  int max_workers;           /* workers at most: `threads` always run, extra ones start while every
                                worker is busy and exit when idle (default threads +
                                max_connections) */
  wg_rpc_handler_fn handler; /* every method goes to this one handler */
  wg_rpc_admit_fn admit;     /* NULL, or refuses calls before a worker takes them (same ctx) */
  void *ctx;
  /* TLS (both NULL: plaintext): PEM files of the certificate chain and its private key. Under
   * TLS gRPC binds and accepts the port itself (grpc_server_add_channel_from_fd takes only
   * insecure credentials in gRPC 1.51): max_connections is not enforced and
   * wg_rpc_server_connections counts nothing (docs/security.md, "What differs under TLS"). */
  const char *tls_cert_file;
  const char *tls_key_file;
  const char *tls_client_ca_file; /* NULL, or PEM CA certificates: mutual TLS, a client without a
                                     certificate signed by one of them is refused at handshake */
};

/* Binds (never sharing the port: EADDRINUSE, "address already in use", when another socket
 * listens on it), starts the threads and accepts calls. *bound_port (may be NULL) gets the port. */
int wg_rpc_server_start(struct wg_rpc_server **out, const struct wg_rpc_server_options *options,
                        int *bound_port, struct wg_error *err);
/* Re-reads the TLS certificate, key and client CA files (nothing without TLS): new handshakes
 * use them, connections already open keep theirs. On error (a file unreadable, not PEM, a key not
 * matching) the old ones stay and err names the file. Thread-safe. */
int wg_rpc_server_tls_reload(struct wg_rpc_server *s, struct wg_error *err);
/* Whether the server speaks TLS. */
bool wg_rpc_server_tls(const struct wg_rpc_server *s);
/* Stops accepting calls; calls in flight get grace_ms to finish, then are cancelled; waits for
 * every handler to return. Safe to call once; then wg_rpc_server_destroy. Never from a handler
 * or a cancel hook (it waits for them). wg_rpc_server_destroy shuts down with no grace if this
 * was not called. */
void wg_rpc_server_shutdown(struct wg_rpc_server *s, int grace_ms); /* parked: see below */
void wg_rpc_server_destroy(struct wg_rpc_server *s);
/* Calls running or waiting for a worker (for stats); parked calls are not counted. */
int64_t wg_rpc_server_active_calls(const struct wg_rpc_server *s);
/* Connections open now; *accepted and *refused (may be NULL) get the totals since start. */
int64_t wg_rpc_server_connections(struct wg_rpc_server *s, int64_t *accepted, int64_t *refused);
/* The default max_connections: the open files allowed (soft RLIMIT_NOFILE) less 128 kept for the
 * database and gRPC, at most 4096, at least 1. */
int wg_rpc_default_max_connections(void);

/* The method path, e.g. "/arrow.flight.protocol.FlightService/DoGet". Valid during the call. */
const char *wg_rpc_call_method(const struct wg_rpc_call *c);
/* The client's address ("ipv4:127.0.0.1:51234"). */
const char *wg_rpc_call_peer(const struct wg_rpc_call *c);
/* Value of a request metadata key (e.g. "authorization"), or NULL. Borrowed for the call. */
const char *wg_rpc_call_metadata(const struct wg_rpc_call *c, const char *key, int64_t *len);
/* One pointer the handler may attach to its call (NULL until set), e.g. who the caller is. */
void wg_rpc_call_set_user_data(struct wg_rpc_call *c, void *data);
void *wg_rpc_call_user_data(const struct wg_rpc_call *c);
/* Adds a response header (copied), sent with the initial metadata by the call's first send or its
 * finish: EINVAL once that has gone, EMSGSIZE past WG_RPC_MAX_HEADERS. Handler thread only. */
int wg_rpc_call_add_header(struct wg_rpc_call *c, const char *key, const char *value);

/* Receives the next message. Returns 0 with *out set (the caller destroys it with
 * grpc_byte_buffer_destroy), or 0 with *out NULL when the client has half-closed; ECANCELED when
 * the call was cancelled or its deadline passed. */
int wg_rpc_call_recv(struct wg_rpc_call *c, grpc_byte_buffer **out);
/* Sends one message (the call takes ownership of msg, even on error); the first send also sends
 * the initial metadata. Blocks until gRPC has taken the message (flow control). ECANCELED when
 * the call is gone. */
int wg_rpc_call_send(struct wg_rpc_call *c, grpc_byte_buffer *msg);
/* Starts sending one message (the call takes ownership of msg, even on error) without waiting for
 * it: the next send or finish waits for it first. Lets the handler work on its next message while
 * gRPC sends this one; at most one send is outstanding, so memory stays bounded. */
int wg_rpc_call_send_start(struct wg_rpc_call *c, grpc_byte_buffer *msg);
/* Waits up to timeout_ms for the send started by wg_rpc_call_send_start: 0 when it is done (or
 * none is outstanding), ETIMEDOUT when gRPC still holds it (the client is not reading: flow
 * control), ECANCELED when the call is gone. */
int wg_rpc_call_send_wait(struct wg_rpc_call *c, int64_t timeout_ms);
/* Ends the call with a status (GRPC_STATUS_OK...) and message (may be NULL). Exactly once per
 * call, by its handler; waits until the status is sent or the call is cancelled. */
int wg_rpc_call_finish(struct wg_rpc_call *c, grpc_status_code code, const char *message);
/* finish, sending `last` (taken; may be NULL) in the same batch as the status: one round trip to
 * the completion-queue thread fewer for the last message of a stream. */
int wg_rpc_call_finish_with(struct wg_rpc_call *c, grpc_byte_buffer *last, grpc_status_code code,
                            const char *message);
/* Fills err with why an operation on the call (recv, send, send_start, send_wait) failed with
 * `code`, and returns code: the client idle past the idle timeout; the call over (the client
 * cancelled or went away, its deadline passed, the server is stopping); or a misuse. `during`
 * names what the handler was doing ("DoPut"), first in the message. 0 for code 0. */
int wg_rpc_call_error(const struct wg_rpc_call *c, int code, const char *during,
                      struct wg_error *err);
/* Ends the call now, from any thread, with `code` and `message` sent to the client (a server-side
 * limit, e.g. a query timeout): from then on it is cancelled (its cancel hook runs, its operations
 * fail with ECANCELED) and the handler's own finish is not seen. Valid until the handler returns. */
void wg_rpc_call_expire(struct wg_rpc_call *c, grpc_status_code code, const char *message);
/* Whether the client cancelled, the deadline passed, or the server is shutting down. */
bool wg_rpc_call_cancelled(const struct wg_rpc_call *c);
/* fn(arg) runs once, on the completion-queue thread, if the call gets cancelled while the hook is
 * set (e.g. to interrupt a DuckDB query). Set fn NULL to clear; clearing waits for a running
 * hook to return. If the call is already cancelled when fn is set, fn runs at once on the calling
 * thread, so a cancellation is never missed. The hook must be quick and must not block (it holds
 * up every call of the server); the worker clears it when the handler returns. */
void wg_rpc_call_set_cancel_hook(struct wg_rpc_call *c, void (*fn)(void *arg), void *arg);

/* Parked calls: a long-lived server-streaming call (the live tail) that holds no worker while it
 * waits. From its handler, instead of finishing, the handler calls wg_rpc_call_park and then
 * returns without touching the call again except through the wg_rpc_parked_* functions; its
 * worker is free at once. From then on the idle timeout no longer applies to the call (the server
 * may send nothing for hours); the cancel hook, if set, is cleared. Response headers added before
 * parking and the initial metadata (if no message was sent yet) go out with the first parked send
 * or the finish.
 * fn(arg, event) runs on the completion-queue thread, never with an rpc lock held; it must be
 * quick and never block; it may call wg_rpc_parked_send and wg_rpc_parked_finish:
 *   WG_RPC_PARKED_SENT  the send started by wg_rpc_parked_send completed (gRPC took the message,
 *                       or the call is gone and GONE comes too): the next one may be started;
 *                       not told for a send that a finish already follows;
 *   WG_RPC_PARKED_GONE  once, when the call is cancelled (the client cancelled or went away, its
 *                       deadline passed, the server is shutting down): further sends fail with
 *                       ECANCELED; the owner should stop and call wg_rpc_parked_finish;
 *   WG_RPC_PARKED_DONE  exactly once and last, after the status went out (or could not): the call
 *                       is then freed and fn is never called again for it; arg may be freed here.
 * Events may come as soon as wg_rpc_call_park is called (GONE at once if the call was cancelled
 * before), so fn's state must be ready before it.
 * Returns 0, or EINVAL (a send or receive still outstanding, e.g. a wg_rpc_call_send_start not
 * waited for; already parked; finished). */
enum { WG_RPC_PARKED_SENT = 1, WG_RPC_PARKED_GONE = 2, WG_RPC_PARKED_DONE = 3 };
typedef void (*wg_rpc_parked_fn)(void *arg, int event);
int wg_rpc_call_park(struct wg_rpc_call *c, wg_rpc_parked_fn fn, void *arg);
/* Starts sending msg (taken, even on error) from any thread: 0, EBUSY when a send is still
 * outstanding (wait for WG_RPC_PARKED_SENT), ECANCELED when the call is gone, EINVAL after finish
 * (or on a call not parked). Never waits for the completion-queue thread. */
int wg_rpc_parked_send(struct wg_rpc_call *c, grpc_byte_buffer *msg);
/* Ends a parked call from any thread with a status (an outstanding send completes first, in
 * order: see wg_rpc_parked_expire for a client that stopped reading). Once; a second call is a
 * no-op returning EINVAL. WG_RPC_PARKED_DONE follows. A call whose client is gone still needs
 * this (or server shutdown) before it is freed. Server shutdown cancels parked calls at once (the
 * client sees UNAVAILABLE "the server is shutting down"), and after its grace finishes those
 * their owners have not (a later finish then returns EINVAL); it returns once every parked call
 * was told DONE, so owners (fn's arg) must live until then. Never waits. */
int wg_rpc_parked_finish(struct wg_rpc_call *c, grpc_status_code code, const char *message);
/* A client that stopped reading holds the outstanding send (flow control), and so any finish,
 * forever. This ends a parked call now, from any thread, with `code` and `message` for the client
 * (e.g. RESOURCE_EXHAUSTED for a subscriber too slow): the call is cancelled at once, GONE follows
 * (the outstanding send fails, its message is dropped), and the owner's wg_rpc_parked_finish (if
 * not already called) still leads to DONE; that finish's status no longer reaches the client. The
 * client gets this status when it reads again. 0, or EINVAL on a call not parked. Until DONE. */
int wg_rpc_parked_expire(struct wg_rpc_call *c, grpc_status_code code, const char *message);
/* Parked calls open now (for stats and tests): parked and not yet DONE. */
int64_t wg_rpc_server_parked_calls(const struct wg_rpc_server *s);

/* ---------------------------------------------------------------------------------------------
 * Client */

struct wg_rpc_channel;
struct wg_rpc_client_call;

/* Connects lazily to "host:port" (plaintext). Thread-safe: calls may run from many threads. */
int wg_rpc_channel_create(struct wg_rpc_channel **out, const char *target, struct wg_error *err);

/* TLS for a channel: PEM contents (not paths), NUL-terminated. */
struct wg_rpc_channel_tls {
  const char *root_certs;  /* CA certificates the server's must chain to; NULL: gRPC's default
                              roots (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, else the system's) */
  const char *cert_chain;  /* client certificate for mutual TLS, with private_key; or NULL */
  const char *private_key;
  const char *target_name; /* name checked against the server's certificate instead of the
                              target's host (tests); NULL: the host */
};
/* Reads a whole PEM file into a NUL-terminated malloc'ed string (at most 1 MiB, with at least
 * one "-----BEGIN " block); `what` names it in errors ("TLS CA file"). EINVAL when unreadable or
 * not PEM. */
int wg_rpc_read_pem(const char *path, const char *what, char **out, struct wg_error *err);
/* Like wg_rpc_channel_create; tls NULL is plaintext, else TLS with those credentials. */
int wg_rpc_channel_create_tls(struct wg_rpc_channel **out, const char *target,
                              const struct wg_rpc_channel_tls *tls, struct wg_error *err);
void wg_rpc_channel_destroy(struct wg_rpc_channel *ch);

/* Starts a call (timeout_ms <= 0: none). metadata: NULL or NULL-terminated key, value pairs. */
int wg_rpc_client_call_start(struct wg_rpc_channel *ch, const char *method, int64_t timeout_ms,
                             const char *const *metadata, struct wg_rpc_client_call **out,
                             struct wg_error *err);
/* Sends one message (takes ownership of msg). EPIPE when the server has ended the call. */
int wg_rpc_client_call_send(struct wg_rpc_client_call *c, grpc_byte_buffer *msg);
/* Half-closes: no more messages from the client. */
int wg_rpc_client_call_close_send(struct wg_rpc_client_call *c);
/* Receives the next message, or *out NULL when the server's stream ended. Send and receive may
 * run on two threads at once. */
int wg_rpc_client_call_recv(struct wg_rpc_client_call *c, grpc_byte_buffer **out);
/* Waits for the final status; *code and the message (err->message) from the server. Returns 0
 * when the status is OK, else a status code mapping the gRPC code (see wg_rpc_status_errno). */
int wg_rpc_client_call_finish(struct wg_rpc_client_call *c, grpc_status_code *code,
                              struct wg_error *err);
void wg_rpc_client_call_cancel(struct wg_rpc_client_call *c);
/* Copies the value of response header `key` (initial metadata, case-insensitive key) into buf,
 * NUL-terminated: 0, ENOENT when absent (or not yet received: after the first receive or the
 * finish), EMSGSIZE when it does not fit. */
int wg_rpc_client_call_header(const struct wg_rpc_client_call *c, const char *key, char *buf,
                              size_t size);
/* Frees the call (cancelling it if it has not finished). NULL ok. */
void wg_rpc_client_call_destroy(struct wg_rpc_client_call *c);

/* The one mapping between wigeon status codes and gRPC status codes (see engine/engine.h for the
 * codes): EINVAL/EPROTO INVALID_ARGUMENT, ENOENT NOT_FOUND, EEXIST ALREADY_EXISTS, EPERM
 * FAILED_PRECONDITION, EACCES PERMISSION_DENIED and WG_EUNAUTHENTICATED UNAUTHENTICATED (both
 * reserved for authentication, see common/error.h), EAGAIN ABORTED, ENOMEM, EBUSY, ENOSPC and
 * EMSGSIZE RESOURCE_EXHAUSTED, ECANCELED CANCELLED, ETIMEDOUT DEADLINE_EXCEEDED, ENOTSUP UNIMPLEMENTED,
 * ECONNREFUSED/EPIPE/ENOTRECOVERABLE UNAVAILABLE, anything else INTERNAL; and back. */
grpc_status_code wg_rpc_status_from_errno(int code);
int wg_rpc_errno_from_status(grpc_status_code code);
/* The one mapping of a grpc_call_error (a batch gRPC would not start) to a status code: 0 for
 * GRPC_CALL_OK, EBUSY for two operations of a kind outstanding, `ended` for a call already
 * finished, EINVAL for any other misuse. `ended` is each side's code for "the call is over":
 * ECANCELED for a server handler (its client cancelled or went away, as its other operations
 * report it), EPIPE for a client (the server ended the call; wg_rpc_client_call_finish says why). */
int wg_rpc_errno_from_call_error(grpc_call_error e, int ended);

/* Byte buffer helpers. */
grpc_byte_buffer *wg_rpc_buffer_from_copy(const void *data, size_t size);
/* Copies a byte buffer into one malloc'ed block (*data, *size); 0 or ENOMEM. */
int wg_rpc_buffer_flatten(grpc_byte_buffer *bb, uint8_t **data, size_t *size);

#endif
