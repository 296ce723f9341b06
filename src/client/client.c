/* wigeon: the client library (include/wigeon.h) over rpc/ (gRPC core) and flight/ (messages):
 * the client and its connection, the call helpers every operation uses, and the small calls
 * (Handshake, DoAction, GetFlightInfo, GetSchema, ListFlights, ListActions). DoGet is in get.c,
 * DoPut in put.c. Each public function checks its arguments, does its work with the internal
 * convention and fills its struct wg_status once, at the end (internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arrow/array.h"
#include "client/internal.h"
#include "common/uri.h"

/* ---- status ---- */

int wg__local_code(int rc) {
  return rc == 0 ? 0 : (int)wg_rpc_status_from_errno(rc);
}

int wg__status_set(struct wg_status *st, int rc, int grpc, const char *message) {
  int code = rc == 0 ? 0 : grpc != 0 ? grpc : wg__local_code(rc);
  if (st != NULL) {
    st->code = code;
    st->sys_errno = rc;
    snprintf(st->message, sizeof(st->message), "%s", rc != 0 && message ? message : "");
  }
  return code;
}

int wg__status_invalid(struct wg_status *st, const char *what) {
  char m[128];
  snprintf(m, sizeof(m), "invalid argument: %s", what);
  return wg__status_set(st, EINVAL, 0, m);
}

const char *wg_status_code_name(int code) {
  static const char *const names[] = {"OK",
                                      "CANCELLED",
                                      "UNKNOWN",
                                      "INVALID_ARGUMENT",
                                      "DEADLINE_EXCEEDED",
                                      "NOT_FOUND",
                                      "ALREADY_EXISTS",
                                      "PERMISSION_DENIED",
                                      "RESOURCE_EXHAUSTED",
                                      "FAILED_PRECONDITION",
                                      "ABORTED",
                                      "OUT_OF_RANGE",
                                      "UNIMPLEMENTED",
                                      "INTERNAL",
                                      "UNAVAILABLE",
                                      "DATA_LOSS",
                                      "UNAUTHENTICATED"};
  return code >= 0 && code <= 16 ? names[code] : "UNKNOWN";
}

/* Frees a string holding a secret, cleared first. NULL ok. */
static void wipe_free(char *s) {
  if (s == NULL) return;
  explicit_bzero(s, strlen(s));
  free(s);
}

/* ---- the headers of every call: the caller's list plus the credentials ---- */

static void free_headers(char **h) {
  for (size_t i = 0; h != NULL && h[i] != NULL; i++)
    free(h[i]);
  free(h);
}

/* Standard base64 (RFC 4648, with padding) of n bytes, malloc'ed; NULL when out of memory. */
static char *base64(const unsigned char *in, size_t n) {
  static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = malloc((n + 2) / 3 * 4 + 1);
  if (out == NULL) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < n) v |= in[i + 2];
    out[o++] = digits[(v >> 18) & 63];
    out[o++] = digits[(v >> 12) & 63];
    out[o++] = i + 1 < n ? digits[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? digits[v & 63] : '=';
  }
  out[o] = '\0';
  return out;
}

/* "Basic base64(user:password)" or "Bearer token" into *out (malloc'ed; NULL: no credentials). */
static int authorization(const struct wg_client_options *o, char **out, struct wg_error *err) {
  *out = NULL;
  if (o->token != NULL && o->username != NULL)
    return wg_error_set(err, EINVAL, "username and token are exclusive: give one");
  if (o->token != NULL) {
    if (o->token[0] == '\0') return wg_error_set(err, EINVAL, "empty token");
    size_t n = strlen(o->token) + 8;
    if ((*out = malloc(n)) == NULL) return wg_error_set(err, ENOMEM, "out of memory");
    snprintf(*out, n, "Bearer %s", o->token);
    return 0;
  }
  if (o->username == NULL) return 0;
  const char *pw = o->password ? o->password : "";
  size_t n = strlen(o->username) + 1 + strlen(pw);
  char *plain = malloc(n + 1);
  char *b64 = NULL;
  if (plain != NULL) {
    snprintf(plain, n + 1, "%s:%s", o->username, pw);
    b64 = base64((const unsigned char *)plain, n);
    free(plain);
  }
  if (b64 != NULL) *out = malloc(strlen(b64) + 7);
  if (*out == NULL) {
    free(b64);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  snprintf(*out, strlen(b64) + 7, "Basic %s", b64);
  free(b64);
  return 0;
}

/* Copies the options' headers into *out; the credentials' authorization value into *auth. */
static int copy_headers(const struct wg_client_options *o, char ***out, char **auth,
                        struct wg_error *err) {
  *out = NULL;
  const char *const *h = o->headers;
  size_t n = 0;
  while (h != NULL && h[n] != NULL) {
    if (h[n + 1] == NULL) return wg_error_set(err, EINVAL, "header %s has no value", h[n]);
    n += 2;
  }
  WG_RETURN_NOT_OK(authorization(o, auth, err));
  for (size_t i = 0; *auth != NULL && i < n; i += 2) {
    if (strcmp(h[i], "authorization") == 0) {
      free(*auth);
      *auth = NULL;
      return wg_error_set(err, EINVAL, "an authorization header and credentials: give one");
    }
  }
  if (n == 0) return 0;
  char **copy = calloc(n + 1, sizeof(*copy));
  int rc = copy == NULL ? ENOMEM : 0;
  for (size_t i = 0; rc == 0 && i < n; i++)
    if ((copy[i] = strdup(h[i])) == NULL) rc = ENOMEM;
  if (rc != 0) {
    free_headers(copy);
    free(*auth);
    *auth = NULL;
    return wg_error_set(err, ENOMEM, "out of memory for %zu headers", n / 2);
  }
  *out = copy;
  return 0;
}

/* The headers of one call: the client's plus authorization `auth` (may be NULL), malloc'ed
 * pointer array (the strings borrowed). */
static int call_headers(struct wg_client *c, const char *auth, const char ***out) {
  size_t n = 0;
  while (c->headers != NULL && c->headers[n] != NULL)
    n++;
  const char **h = calloc(n + 3, sizeof(*h));
  if (h == NULL) return ENOMEM;
  for (size_t i = 0; i < n; i++)
    h[i] = c->headers[i];
  if (auth != NULL) {
    h[n] = "authorization";
    h[n + 1] = auth;
  }
  *out = h;
  return 0;
}

/* A Handshake with an empty request and `auth`: only that the server answers matters, and the
 * bearer token it may give back (*bearer, malloc'ed "Bearer ..." or NULL). */
static int handshake_with(struct wg_client *c, const char *auth, int64_t timeout_ms,
                          char **bearer, struct wg_error *err, int *grpc) {
  *bearer = NULL;
  const char **h = NULL;
  if (call_headers(c, auth, &h) != 0) return wg_error_set(err, ENOMEM, "out of memory");
  char path[128];
  snprintf(path, sizeof(path), "%sHandshake", WG_FLIGHT_SERVICE);
  struct wg_rpc_client_call *call = NULL;
  int rc = wg_rpc_client_call_start(c->channel, path, timeout_ms, h, &call, err);
  free(h);
  if (rc != 0) {
    *grpc = wg__local_code(rc);
    return rc;
  }
  Arrow__Flight__Protocol__HandshakeRequest req = ARROW__FLIGHT__PROTOCOL__HANDSHAKE_REQUEST__INIT;
  grpc_byte_buffer *bb;
  rc = wg_flight_pack(&req.base, &bb, err);
  if (rc == 0) rc = wg_rpc_client_call_send(call, bb);
  if (rc == 0) rc = wg_rpc_client_call_close_send(call);
  for (int i = 0; rc == 0 && i < 64; i++) {
    bb = NULL;
    if (wg_rpc_client_call_recv(call, &bb) != 0 || bb == NULL) break;
    grpc_byte_buffer_destroy(bb);
  }
  rc = wg__client_finish(call, rc, false, err, grpc);
  char value[256];
  if (rc == 0 && wg_rpc_client_call_header(call, "authorization", value, sizeof(value)) == 0 &&
      strncasecmp(value, "Bearer ", 7) == 0)
    *bearer = strdup(value);
  wg_rpc_client_call_destroy(call);
  return rc;
}

/* Logs in with the Basic credentials (auth_mu held). */
static int login_locked(struct wg_client *c, int64_t timeout_ms, struct wg_error *err, int *grpc) {
  char *bearer = NULL;
  int rc = handshake_with(c, c->basic, timeout_ms, &bearer, err, grpc);
  if (rc != 0) return rc;
  free(c->auth);
  c->auth = bearer != NULL ? bearer : strdup(c->basic); /* no token given: Basic every call */
  c->logged_in = c->auth != NULL;
  if (c->auth == NULL) {
    rc = wg_error_set(err, ENOMEM, "out of memory");
    *grpc = wg__local_code(rc);
  }
  return rc;
}

/* A copy of the authorization value for the next call, logging in first if need be. */
static int current_auth(struct wg_client *c, char **out, struct wg_error *err, int *grpc) {
  *out = NULL;
  int rc = 0;
  pthread_mutex_lock(&c->auth_mu);
  if (c->basic != NULL && !c->logged_in) {
    int64_t t = wg__client_timeout(c);
    rc = login_locked(c, t > 0 ? t : 10000, err, grpc);
  }
  if (rc == 0 && c->auth != NULL && (*out = strdup(c->auth)) == NULL) {
    rc = wg_error_set(err, ENOMEM, "out of memory");
    *grpc = wg__local_code(rc);
  }
  pthread_mutex_unlock(&c->auth_mu);
  return rc;
}

bool wg__client_relogin(struct wg_client *c, int grpc, const struct wg_error *err) {
  if (grpc != WG_STATUS_UNAUTHENTICATED || c->basic == NULL || err == NULL ||
      strstr(err->message, "token expired") == NULL)
    return false;
  struct wg_error own = {""};
  int code = 0;
  pthread_mutex_lock(&c->auth_mu);
  int64_t t = wg__client_timeout(c);
  int rc = login_locked(c, t > 0 ? t : 10000, &own, &code);
  pthread_mutex_unlock(&c->auth_mu);
  return rc == 0;
}

/* ---- the client ---- */

void wg_client_options_init(struct wg_client_options *options) {
  if (options != NULL) memset(options, 0, sizeof(*options));
}

/* The channel for u: plaintext, or TLS with the options' PEM files read here. */
static int channel_open(const struct wg_uri *u, const struct wg_client_options *o,
                        struct wg_rpc_channel **out, struct wg_error *err) {
  if (!u->tls) return wg_rpc_channel_create(out, u->target, err);
  if ((o->tls_cert_file == NULL) != (o->tls_key_file == NULL))
    return wg_error_set(err, EINVAL, "a TLS client certificate (tls_cert_file) needs its key "
                                     "(tls_key_file), and a key its certificate");
  char *ca = NULL, *cert = NULL, *key = NULL;
  int rc = 0;
  if (o->tls_ca_file != NULL) rc = wg_rpc_read_pem(o->tls_ca_file, "TLS CA file", &ca, err);
  if (rc == 0 && o->tls_cert_file != NULL)
    rc = wg_rpc_read_pem(o->tls_cert_file, "TLS certificate file", &cert, err);
  if (rc == 0 && o->tls_key_file != NULL)
    rc = wg_rpc_read_pem(o->tls_key_file, "TLS key file", &key, err);
  if (rc == 0) {
    struct wg_rpc_channel_tls tls = {.root_certs = ca, .cert_chain = cert, .private_key = key};
    rc = wg_rpc_channel_create_tls(out, u->target, &tls, err); /* gRPC copies the PEMs */
  }
  if (key != NULL) memset(key, 0, strlen(key));
  free(key);
  free(cert);
  free(ca);
  return rc;
}

static int client_create(const char *uri, const struct wg_client_options *o, struct wg_client **out,
                         struct wg_error *err) {
  struct wg_uri u;
  WG_RETURN_NOT_OK(wg_uri_parse(uri, &u, err));
  struct wg_client *c = calloc(1, sizeof(*c));
  if (c == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  atomic_init(&c->timeout_ms, o->timeout_ms);
  int rc = copy_headers(o, &c->headers, &c->auth, err);
  if (rc == 0 && pthread_mutex_init(&c->auth_mu, NULL) != 0)
    rc = wg_error_set(err, ENOMEM, "cannot create a lock");
  else if (rc == 0 && o->username != NULL) {
    c->basic = c->auth; /* sent on the login only */
    c->auth = NULL;
  }
  if (rc == 0) rc = channel_open(&u, o, &c->channel, err);
  if (rc != 0) {
    free_headers(c->headers);
    free(c->auth);
    free(c->basic);
    free(c);
    return rc;
  }
  *out = c;
  return 0;
}

/* A Flight Handshake at connect: only that the server answers matters; with Basic credentials
 * it is the login. */
static int handshake(struct wg_client *c, int64_t timeout_ms, struct wg_error *err, int *grpc) {
  if (c->basic != NULL) {
    pthread_mutex_lock(&c->auth_mu);
    int rc = login_locked(c, timeout_ms, err, grpc);
    pthread_mutex_unlock(&c->auth_mu);
    return rc;
  }
  char *bearer = NULL;
  int rc = handshake_with(c, c->auth, timeout_ms, &bearer, err, grpc);
  free(bearer);
  return rc;
}

int wg_connect(const char *uri, const struct wg_client_options *options, wg_client **out,
               struct wg_status *status) {
  if (out == NULL) return wg__status_invalid(status, "out is NULL");
  *out = NULL;
  struct wg_client_options defaults;
  wg_client_options_init(&defaults);
  const struct wg_client_options *o = options ? options : &defaults;
  if (o->timeout_ms < 0 || o->connect_timeout_ms < 0)
    return wg__status_invalid(status, "negative timeout");
  struct wg_error err = {""};
  struct wg_client *c = NULL;
  int grpc = 0;
  int rc = client_create(uri, o, &c, &err);
  if (rc == 0 && !o->lazy_connect) {
    int64_t t = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
    rc = handshake(c, t, &err, &grpc);
    if (rc != 0 && grpc == WG_STATUS_UNIMPLEMENTED) rc = grpc = 0; /* reachable all the same */
    if (rc != 0 && err.message[0] == '\0')
      snprintf(err.message, sizeof(err.message), "cannot reach %s", uri);
  }
  if (rc != 0) {
    wg_disconnect(c);
    return wg__status_set(status, rc, grpc, err.message);
  }
  *out = c;
  return wg__status_set(status, 0, 0, NULL);
}

void wg_disconnect(wg_client *c) {
  if (c == NULL) return;
  wg_rpc_channel_destroy(c->channel);
  free_headers(c->headers);
  wipe_free(c->auth);
  wipe_free(c->basic);
  pthread_mutex_destroy(&c->auth_mu);
  free(c);
}

int64_t wg__client_timeout(struct wg_client *c) {
  return atomic_load(&c->timeout_ms);
}

/* ---- call helpers ---- */

int wg__client_start(struct wg_client *c, const char *method, int64_t timeout_ms,
                     struct wg_rpc_client_call **call, struct wg_error *err) {
  char path[128];
  snprintf(path, sizeof(path), "%s%s", WG_FLIGHT_SERVICE, method);
  int grpc = 0;
  char *auth = NULL;
  const char **h = NULL;
  WG_RETURN_NOT_OK(current_auth(c, &auth, err, &grpc));
  if (call_headers(c, auth, &h) != 0) {
    free(auth);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  int rc = wg_rpc_client_call_start(c->channel, path, timeout_ms, h, call, err);
  free(h);
  free(auth);
  return rc;
}

int wg__client_finish(struct wg_rpc_client_call *call, int rc, bool ours, struct wg_error *err,
                      int *grpc) {
  grpc_status_code code = GRPC_STATUS_OK;
  struct wg_error status = {""};
  int src = wg_rpc_client_call_finish(call, &code, &status);
  if (src != 0 && !(rc != 0 && ours)) {
    if (err != NULL) *err = status;
    *grpc = code != GRPC_STATUS_OK ? (int)code : wg__local_code(src);
    return src;
  }
  *grpc = wg__local_code(rc);
  return rc;
}

int wg__client_unary_start(struct wg_client *c, const char *method, int64_t timeout_ms,
                           const ProtobufCMessage *req, struct wg_rpc_client_call **call,
                           struct wg_error *err, int *grpc) {
  int rc = wg__client_start(c, method, timeout_ms, call, err);
  if (rc != 0) {
    *grpc = wg__local_code(rc);
    return rc;
  }
  grpc_byte_buffer *bb;
  rc = wg_flight_pack(req, &bb, err);
  if (rc == 0) rc = wg_rpc_client_call_send(*call, bb);
  if (rc == 0) rc = wg_rpc_client_call_close_send(*call);
  if (rc != 0) {
    rc = wg__client_finish(*call, rc, false, err, grpc);
    wg_rpc_client_call_destroy(*call);
    *call = NULL;
    if (rc == 0) {
      rc = wg_error_set(err, EIO, "cannot send the %s request", method);
      *grpc = wg__local_code(rc);
    }
  }
  return rc;
}

/* A call whose answer is a stream of messages of `type`: on_message gets each (borrowed); its
 * non-zero return cancels the call and is the outcome. Refused "token expired" before any message,
 * it logs in again and is repeated once. */
static int stream_call(struct wg_client *c, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *type,
                       int (*on_message)(void *ctx, const ProtobufCMessage *m,
                                         struct wg_error *err),
                       void *ctx, struct wg_error *err, int *grpc) {
  for (int attempt = 0;; attempt++) {
    struct wg_rpc_client_call *call;
    WG_RETURN_NOT_OK(
        wg__client_unary_start(c, method, wg__client_timeout(c), req, &call, err, grpc));
    int rc = 0;
    bool received = false;
    for (;;) {
      grpc_byte_buffer *bb = NULL;
      if (wg_rpc_client_call_recv(call, &bb) != 0 || bb == NULL) break;
      received = true;
      ProtobufCMessage *m = NULL;
      rc = wg_flight_unpack(type, bb, &m, err);
      grpc_byte_buffer_destroy(bb);
      if (rc != 0) break;
      rc = on_message(ctx, m, err);
      protobuf_c_message_free_unpacked(m, NULL);
      if (rc != 0) break;
    }
    if (rc != 0) wg_rpc_client_call_cancel(call);
    rc = wg__client_finish(call, rc, true, err, grpc);
    wg_rpc_client_call_destroy(call);
    if (rc == 0 || received || attempt > 0 || !wg__client_relogin(c, *grpc, err)) return rc;
  }
}

/* A unary call answered by one message of type `type` (*m: the caller frees it on success);
 * repeated once after logging in again when refused "token expired". */
static int unary_call(struct wg_client *c, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *type, ProtobufCMessage **m,
                      struct wg_error *err, int *grpc) {
  for (int attempt = 0;; attempt++) {
    *m = NULL;
    struct wg_rpc_client_call *call;
    WG_RETURN_NOT_OK(
        wg__client_unary_start(c, method, wg__client_timeout(c), req, &call, err, grpc));
    grpc_byte_buffer *bb = NULL;
    int rc = wg_rpc_client_call_recv(call, &bb);
    if (rc == 0 && bb != NULL) rc = wg_flight_unpack(type, bb, m, err);
    if (bb != NULL) grpc_byte_buffer_destroy(bb);
    bool empty = rc == 0 && *m == NULL;
    rc = wg__client_finish(call, rc, false, err, grpc);
    wg_rpc_client_call_destroy(call);
    if (rc == 0 && empty) {
      rc = wg_error_set(err, EPROTO, "%s answered OK without a message", method);
      *grpc = wg__local_code(rc);
    }
    if (rc != 0 && *m != NULL) {
      protobuf_c_message_free_unpacked(*m, NULL);
      *m = NULL;
    }
    if (rc == 0 || attempt > 0 || !wg__client_relogin(c, *grpc, err)) return rc;
  }
}

/* ---- DoAction ---- */

static int add_body(void *ctx, const ProtobufCMessage *m, struct wg_error *err) {
  const Arrow__Flight__Protocol__Result *res = (const Arrow__Flight__Protocol__Result *)m;
  struct wg_action_result *r = ctx;
  size_t size = res->body.len;
  if (r == NULL) return 0;
  struct wg_action_body *grown = realloc(r->bodies, (size_t)(r->n + 1) * sizeof(*grown));
  char *copy = malloc(size + 1);
  if (grown != NULL) r->bodies = grown;
  if (grown == NULL || copy == NULL) {
    free(copy);
    return wg_error_set(err, ENOMEM, "out of memory for a %zu-byte action result", size);
  }
  if (size > 0) memcpy(copy, res->body.data, size);
  copy[size] = '\0';
  r->bodies[r->n].data = copy;
  r->bodies[r->n].size = size;
  r->n++;
  return 0;
}

int wg_action(wg_client *client, const char *type, const void *body, size_t body_len,
              struct wg_action_result *result, struct wg_status *status) {
  if (result != NULL) memset(result, 0, sizeof(*result));
  if (client == NULL || type == NULL || (body == NULL && body_len > 0))
    return wg__status_invalid(status, "wg_action needs a client, a type and a body (or body_len 0)");
  Arrow__Flight__Protocol__Action a = ARROW__FLIGHT__PROTOCOL__ACTION__INIT;
  a.type = (char *)type;
  a.body.data = (uint8_t *)body;
  a.body.len = body_len;
  struct wg_error err = {""};
  int grpc = 0;
  int rc = stream_call(client, "DoAction", &a.base, &arrow__flight__protocol__result__descriptor,
                       add_body, result, &err, &grpc);
  if (rc != 0) wg_action_result_reset(result);
  return wg__status_set(status, rc, grpc, err.message);
}

void wg_action_result_reset(struct wg_action_result *result) {
  if (result == NULL) return;
  for (int64_t i = 0; i < result->n; i++)
    free(result->bodies[i].data);
  free(result->bodies);
  result->bodies = NULL;
  result->n = 0;
}

/* ---- GetFlightInfo, GetSchema ---- */

static int info_from_message(const Arrow__Flight__Protocol__FlightInfo *fi,
                             struct wg_flight_info *out, struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  out->total_records = fi->total_records;
  struct wg_bytes sb = {fi->schema.data, (int64_t)fi->schema.len};
  WG_RETURN_NOT_OK(wg_flight_schema_parse(sb, &out->schema, err));
  if (fi->n_endpoint > 0 && fi->endpoint[0]->ticket != NULL) {
    const ProtobufCBinaryData *t = &fi->endpoint[0]->ticket->ticket;
    out->ticket = malloc(t->len + 1);
    if (out->ticket == NULL) {
      wg_schema_release(&out->schema);
      return wg_error_set(err, ENOMEM, "out of memory");
    }
    if (t->len > 0) memcpy(out->ticket, t->data, t->len);
    out->ticket[t->len] = '\0';
    out->ticket_len = t->len;
  }
  return 0;
}

void wg_flight_info_reset(struct wg_flight_info *info) {
  if (info == NULL) return;
  wg_schema_release(&info->schema);
  free(info->ticket);
  memset(info, 0, sizeof(*info));
}

/* A PATH descriptor for [schema_name,] table, or a CMD one for sql when table is NULL. */
static void describe(Arrow__Flight__Protocol__FlightDescriptor *d, char *path[2],
                     const char *schema_name, const char *table, const char *sql) {
  path[0] = (char *)schema_name;
  path[1] = (char *)table;
  if (table != NULL) {
    d->type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__PATH;
    d->n_path = schema_name ? 2 : 1;
    d->path = schema_name ? path : path + 1;
  } else {
    d->type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
    d->cmd.data = (uint8_t *)sql;
    d->cmd.len = sql ? strlen(sql) : 0;
  }
}

/* GetFlightInfo or GetSchema (`method`, answered by one message of `type`) for the descriptor
 * of [schema_name.]table or sql; parse turns the answer into *out. */
static int descriptor_call(wg_client *client, const char *method,
                           const ProtobufCMessageDescriptor *type, const char *schema_name,
                           const char *table, const char *sql,
                           int (*parse)(const ProtobufCMessage *m, void *out, struct wg_error *err),
                           void *out, struct wg_status *status) {
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  char *path[2];
  describe(&d, path, schema_name, table, sql);
  struct wg_error err = {""};
  int grpc = 0;
  ProtobufCMessage *m;
  int rc = unary_call(client, method, &d.base, type, &m, &err, &grpc);
  if (rc == 0) {
    rc = parse(m, out, &err);
    grpc = wg__local_code(rc);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  return wg__status_set(status, rc, grpc, err.message);
}

static int parse_info(const ProtobufCMessage *m, void *out, struct wg_error *err) {
  return info_from_message((const Arrow__Flight__Protocol__FlightInfo *)m, out, err);
}

static int parse_schema(const ProtobufCMessage *m, void *out, struct wg_error *err) {
  const Arrow__Flight__Protocol__SchemaResult *r = (const Arrow__Flight__Protocol__SchemaResult *)m;
  struct wg_bytes sb = {r->schema.data, (int64_t)r->schema.len};
  return wg_flight_schema_parse(sb, out, err);
}

int wg_flight_info(wg_client *client, const char *schema_name, const char *table, const char *sql,
                   struct wg_flight_info *out, struct wg_status *status) {
  if (out != NULL) memset(out, 0, sizeof(*out));
  if (client == NULL || out == NULL || (table == NULL && sql == NULL))
    return wg__status_invalid(status, "wg_flight_info needs a client, a table or SQL, and out");
  return descriptor_call(client, "GetFlightInfo",
                         &arrow__flight__protocol__flight_info__descriptor, schema_name, table,
                         sql, parse_info, out, status);
}

static int get_schema(wg_client *client, const char *schema_name, const char *table,
                      const char *sql, struct ArrowSchema *out, struct wg_status *status) {
  return descriptor_call(client, "GetSchema", &arrow__flight__protocol__schema_result__descriptor,
                         schema_name, table, sql, parse_schema, out, status);
}

int wg_table_schema(wg_client *client, const char *schema_name, const char *table,
                    struct ArrowSchema *out, struct wg_status *status) {
  if (client == NULL || table == NULL || out == NULL)
    return wg__status_invalid(status,
                              "wg_table_schema needs a client, a table and an output schema");
  return get_schema(client, schema_name, table, NULL, out, status);
}

int wg_query_schema(wg_client *client, const char *sql, struct ArrowSchema *out,
                    struct wg_status *status) {
  if (client == NULL || sql == NULL || out == NULL)
    return wg__status_invalid(status, "wg_query_schema needs a client, SQL and an output schema");
  return get_schema(client, NULL, NULL, sql, out, status);
}

/* ---- ListFlights, ListActions ---- */

void wg_table_info_free(struct wg_table_info *t, int64_t n) {
  for (int64_t i = 0; t != NULL && i < n; i++) {
    free(t[i].schema_name);
    free(t[i].table_name);
    wg_schema_release(&t[i].schema);
  }
  free(t);
}

/* What a listing call (ListFlights, ListActions) collects: items of `size` bytes. */
struct list {
  void *items;
  int64_t n, cap;
  size_t size;
};

/* A new zeroed item at the end, or NULL (ENOMEM in err). */
static void *list_add(struct list *l, struct wg_error *err) {
  if (l->n == l->cap) {
    int64_t want = l->cap ? l->cap * 2 : 16;
    void *grown = realloc(l->items, (size_t)want * l->size);
    if (grown == NULL) {
      wg_error_set(err, ENOMEM, "out of memory for %lld items", (long long)want);
      return NULL;
    }
    l->items = grown;
    l->cap = want;
  }
  void *item = (char *)l->items + (size_t)l->n++ * l->size;
  memset(item, 0, l->size);
  return item;
}

/* Runs `method` with `req`, each answer of `type` added to l by `add`; on error the items are
 * freed with free_items and l is empty. */
static int list_call(wg_client *client, const char *method, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *type,
                     int (*add)(void *l, const ProtobufCMessage *m, struct wg_error *err),
                     void (*free_items)(void *items, int64_t n), struct list *l,
                     struct wg_status *status) {
  struct wg_error err = {""};
  int grpc = 0;
  int rc = stream_call(client, method, req, type, add, l, &err, &grpc);
  if (rc != 0) {
    free_items(l->items, l->n);
    l->items = NULL;
    l->n = 0;
  }
  return wg__status_set(status, rc, grpc, err.message);
}

static int add_table(void *ctx, const ProtobufCMessage *m, struct wg_error *err) {
  const Arrow__Flight__Protocol__FlightInfo *fi = (const Arrow__Flight__Protocol__FlightInfo *)m;
  struct wg_flight_info info;
  WG_RETURN_NOT_OK(info_from_message(fi, &info, err));
  struct wg_table_info *t = list_add(ctx, err);
  if (t == NULL) {
    wg_flight_info_reset(&info);
    return ENOMEM;
  }
  const Arrow__Flight__Protocol__FlightDescriptor *d = fi->flight_descriptor;
  t->schema_name = strdup(d && d->n_path == 2 ? d->path[0] : "main");
  t->table_name = strdup(d && d->n_path > 0 ? d->path[d->n_path - 1] : "");
  t->rows = info.total_records;
  wg_schema_move(&info.schema, &t->schema);
  wg_flight_info_reset(&info);
  if (t->schema_name == NULL || t->table_name == NULL)
    return wg_error_set(err, ENOMEM, "out of memory for table names");
  return 0;
}

static void free_tables(void *items, int64_t n) {
  wg_table_info_free(items, n);
}

int wg_list_tables(wg_client *client, const char *filter, struct wg_table_info **tables, int64_t *n,
                   struct wg_status *status) {
  if (tables != NULL) *tables = NULL;
  if (n != NULL) *n = 0;
  if (client == NULL || tables == NULL || n == NULL)
    return wg__status_invalid(status, "wg_list_tables needs a client, tables and n");
  Arrow__Flight__Protocol__Criteria cr = ARROW__FLIGHT__PROTOCOL__CRITERIA__INIT;
  cr.expression.data = (uint8_t *)filter;
  cr.expression.len = filter ? strlen(filter) : 0;
  struct list l = {NULL, 0, 0, sizeof(**tables)};
  int code = list_call(client, "ListFlights", &cr.base,
                       &arrow__flight__protocol__flight_info__descriptor, add_table, free_tables,
                       &l, status);
  *tables = l.items;
  *n = l.n;
  return code;
}

void wg_action_types_free(struct wg_action_type *types, int64_t n) {
  for (int64_t i = 0; types != NULL && i < n; i++) {
    free(types[i].type);
    free(types[i].description);
  }
  free(types);
}

static int add_action_type(void *ctx, const ProtobufCMessage *m, struct wg_error *err) {
  const Arrow__Flight__Protocol__ActionType *at = (const Arrow__Flight__Protocol__ActionType *)m;
  struct wg_action_type *t = list_add(ctx, err);
  if (t == NULL) return ENOMEM;
  t->type = strdup(at->type ? at->type : "");
  t->description = strdup(at->description ? at->description : "");
  if (t->type == NULL || t->description == NULL)
    return wg_error_set(err, ENOMEM, "out of memory for action names");
  return 0;
}

static void free_action_types(void *items, int64_t n) {
  wg_action_types_free(items, n);
}

int wg_list_actions(wg_client *client, struct wg_action_type **types, int64_t *n,
                    struct wg_status *status) {
  if (types != NULL) *types = NULL;
  if (n != NULL) *n = 0;
  if (client == NULL || types == NULL || n == NULL)
    return wg__status_invalid(status, "wg_list_actions needs a client, types and n");
  Arrow__Flight__Protocol__Empty e = ARROW__FLIGHT__PROTOCOL__EMPTY__INIT;
  struct list l = {NULL, 0, 0, sizeof(**types)};
  int code = list_call(client, "ListActions", &e.base,
                       &arrow__flight__protocol__action_type__descriptor, add_action_type,
                       free_action_types, &l, status);
  *types = l.items;
  *n = l.n;
  return code;
}
