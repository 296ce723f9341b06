/* wigeon: what the files of the client library share (not an API: include/wigeon.h is the only
 * one). client.c holds the client, the call helpers and the small calls; get.c DoGet as an
 * ArrowArrayStream; tail.c the live tail over it; put.c DoPut; fsql.c Flight SQL over them.
 * Inside, the project's convention holds (errno-style code plus
 * struct wg_error) with the gRPC code of the outcome beside it; each public function turns both
 * into its struct wg_status at its end (wg__status_set). */
#ifndef WG_CLIENT_INTERNAL_H
#define WG_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/error.h"
#include "flight/flight.h"
#include "rpc/rpc.h"
#include "wigeon.h"

struct wg_client {
  struct wg_rpc_channel *channel;
  _Atomic int64_t timeout_ms;
  char **headers; /* NULL or NULL-terminated key, value pairs, owned (no authorization) */
  /* Logging in (client.c): with username/password, a Handshake with `basic` before the first
   * call gets a bearer token from the response headers, sent from then on (`auth`); a call
   * refused "token expired" logs in again (wg__client_relogin). With a token, auth is it. */
  pthread_mutex_t auth_mu; /* guards auth and logged_in; held while logging in */
  char *auth;              /* "authorization" value of every call; NULL none */
  char *basic;             /* "Basic base64(user:password)"; NULL without a username */
  bool logged_in;          /* basic was exchanged (or the server gave no token: auth = basic) */
};

/* Fills *st (may be NULL) from an errno-style rc, the gRPC code (0: map rc) and the message;
 * returns the gRPC code, 0 when rc is 0. */
int wg__status_set(struct wg_status *st, int rc, int grpc, const char *message);
/* INVALID_ARGUMENT "invalid argument: what". */
int wg__status_invalid(struct wg_status *st, const char *what);
/* The gRPC code of a local errno-style error (0 for 0). */
int wg__local_code(int rc);

/* Starts a call of the Flight service's `method` with the client's headers and a deadline of
 * timeout_ms (0 none). */
int wg__client_start(struct wg_client *c, const char *method, int64_t timeout_ms,
                     struct wg_rpc_client_call **call, struct wg_error *err);
/* After a call failed with grpc and err: true when it was refused "token expired" and logging in
 * again succeeded, so that the caller may repeat the call (if it sent nothing that counted). */
bool wg__client_relogin(struct wg_client *c, int grpc, const struct wg_error *err);
/* The client's per-call deadline (options.timeout_ms). */
int64_t wg__client_timeout(struct wg_client *c);
/* Ends a call. The server's status wins over a local transport error (it says why the call
 * ended), but not over an error of ours for which we cancelled the call (`ours`). *grpc gets the
 * gRPC code of the outcome, 0 on success. */
int wg__client_finish(struct wg_rpc_client_call *call, int rc, bool ours, struct wg_error *err,
                      int *grpc);
/* Starts a call with one request message, half-closed; on error *call is NULL. */
int wg__client_unary_start(struct wg_client *c, const char *method, int64_t timeout_ms,
                           const ProtobufCMessage *req, struct wg_rpc_client_call **call,
                           struct wg_error *err, int *grpc);

/* DoPut with a CMD descriptor of cmd_len bytes (a Flight SQL command), then the batches of `in`
 * (consumed on every path), or, with in NULL, one message holding only the descriptor. on_ack
 * gets each PutResult (its raw app_metadata). Fills *status; returns its code (put.c). */
int wg__client_put_cmd(struct wg_client *c, const void *cmd, size_t cmd_len,
                       struct ArrowArrayStream *in, wg_put_ack_fn on_ack, void *ack_ctx,
                       struct wg_status *status);
/* DoGet of n tickets (copied) one after the other, as one stream into *out (owned by the caller;
 * wg_stream_status works on it); its schema is the first ticket's, or `schema` (IPC schema bytes,
 * copied) when n is 0 (get.c). Fills *status; returns its code. */
int wg__do_get_all(wg_client *client, const struct wg_bytes *tickets, size_t n,
                   struct wg_bytes schema, struct ArrowArrayStream *out, struct wg_status *status);

/* wg_stream_status of a wg_exchange result (exchange.c): its code, or -1 for any other stream. */
int wg__exchange_status(struct ArrowArrayStream *stream, struct wg_status *status);
/* wg_do_get with its own deadline (timeout_ms, <= 0 none) instead of the client's (get.c). */
int wg__do_get_open(wg_client *client, const void *ticket, size_t ticket_len, int64_t timeout_ms,
                    struct ArrowArrayStream *out, struct wg_status *status);
/* The app_metadata of the last record batch a stream from wg_do_get/wg__do_get_open returned
 * (size 0 when it had none): borrowed, valid until the next get_next or the release. */
struct wg_bytes wg__stream_app_metadata(struct ArrowArrayStream *s);
/* Cancels the call of such a stream; callable from another thread while one reads the stream
 * (not from a signal handler). The reader then sees the call end CANCELLED. */
void wg__stream_cancel(struct ArrowArrayStream *s);

#endif
