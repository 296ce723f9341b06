/* wigeon: cancelling Flight SQL queries (CancelFlightInfo, Flight SQL's older CancelQuery) and
 * RenewFlightEndpoint. DoGet registers every Flight SQL ticket it streams (wg__fsql_running_add)
 * with its connection; a cancel names tickets (the endpoints of a FlightInfo) and interrupts the
 * DoGets streaming them. A ticket not streaming now is remembered as cancelled for
 * CANCELLED_TTL_MS, so that its DoGet, when it comes, ends CANCELLED at once (and forgets it: a
 * ticket is the statement itself, so the same query asked again later runs). One that finished
 * lately is NOT_CANCELLABLE. Tickets are kept as keyed 64-bit hashes (the key drawn at start), not
 * their bytes: a ticket holds a whole SQL text. Tickets are not tied to a client: the same SQL of
 * two clients is one ticket, and a cancel reaches both. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "server/fsql.h"

#define CANCELLED ARROW__FLIGHT__PROTOCOL__CANCEL_STATUS__CANCEL_STATUS_CANCELLED
#define NOT_CANCELLABLE ARROW__FLIGHT__PROTOCOL__CANCEL_STATUS__CANCEL_STATUS_NOT_CANCELLABLE
#define QUERY_CANCELLED \
  ARROW__FLIGHT__PROTOCOL__SQL__ACTION_CANCEL_QUERY_RESULT__CANCEL_RESULT__CANCEL_RESULT_CANCELLED
#define QUERY_NOT_CANCELLABLE \
  ARROW__FLIGHT__PROTOCOL__SQL__ACTION_CANCEL_QUERY_RESULT__CANCEL_RESULT__CANCEL_RESULT_NOT_CANCELLABLE

enum { N_CANCELLED = 1024, N_FINISHED = 256, CANCELLED_TTL_MS = 60000 };

struct wg__fsql_run {
  uint64_t key;
  struct wg_engine_conn *conn; /* valid while the run is listed: DoGet removes it first */
  struct wg__fsql_run *prev, *next;
};

struct wg__fsql_running {
  pthread_mutex_t mu;
  uint64_t seed;
  struct wg__fsql_run *head;
  struct {
    uint64_t key;
    int64_t at_ms; /* 0: free */
  } cancelled[N_CANCELLED];
  uint64_t finished[N_FINISHED]; /* a ring of the tickets that ended lately (0: none) */
  int next_finished;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* FNV-1a over the bytes from a random basis, then mixed (splitmix64's finalizer); never 0. */
static uint64_t ticket_key(const struct wg__fsql_running *r, const uint8_t *p, size_t n) {
  uint64_t h = r->seed ^ (uint64_t)n;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ULL;
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h != 0 ? h : 1;
}

int wg__fsql_running_init(struct wg_server *s, struct wg_error *err) {
  struct wg__fsql_running *r = calloc(1, sizeof(*r));
  if (r == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  if (getrandom(&r->seed, sizeof(r->seed), 0) != (ssize_t)sizeof(r->seed)) {
    free(r);
    return wg_error_set(err, EIO, "cannot draw a random seed for the running queries' table");
  }
  pthread_mutex_init(&r->mu, NULL);
  s->fsql->running = r;
  return 0;
}

void wg__fsql_running_fini(struct wg_server *s) {
  struct wg__fsql_running *r = s->fsql != NULL ? s->fsql->running : NULL;
  if (r == NULL) return;
  pthread_mutex_destroy(&r->mu); /* no DoGet is left: the rpc server is gone */
  free(r);
  s->fsql->running = NULL;
}

/* The remembered cancellation of key, or -1. Under mu; expired ones are freed on the way. */
static int find_cancelled(struct wg__fsql_running *r, uint64_t key, int64_t now) {
  int found = -1;
  for (int i = 0; i < N_CANCELLED; i++) {
    if (r->cancelled[i].at_ms == 0) continue;
    if (now - r->cancelled[i].at_ms > CANCELLED_TTL_MS) r->cancelled[i].at_ms = 0;
    else if (r->cancelled[i].key == key) found = i;
  }
  return found;
}

int wg__fsql_running_add(struct wg_server *s, const ProtobufCBinaryData *ticket,
                         struct wg_engine_conn *conn, struct wg__fsql_run **out,
                         struct wg_error *err) {
  *out = NULL;
  struct wg__fsql_running *r = s->fsql->running;
  struct wg__fsql_run *run = calloc(1, sizeof(*run));
  if (run == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  run->key = ticket_key(r, ticket->data, ticket->len);
  run->conn = conn;
  pthread_mutex_lock(&r->mu);
  int i = find_cancelled(r, run->key, now_ms());
  if (i >= 0) {
    r->cancelled[i].at_ms = 0; /* once: the same statement asked again runs */
    pthread_mutex_unlock(&r->mu);
    free(run);
    return wg_error_set(err, ECANCELED, "DoGet: the query of this ticket was cancelled "
                                        "(CancelFlightInfo) before it started");
  }
  for (int j = 0; j < N_FINISHED; j++)
    if (r->finished[j] == run->key) r->finished[j] = 0; /* running again */
  run->next = r->head;
  if (r->head != NULL) r->head->prev = run;
  r->head = run;
  pthread_mutex_unlock(&r->mu);
  *out = run;
  return 0;
}

void wg__fsql_running_remove(struct wg_server *s, struct wg__fsql_run *run) {
  if (run == NULL) return;
  struct wg__fsql_running *r = s->fsql->running;
  pthread_mutex_lock(&r->mu);
  if (run->prev != NULL) run->prev->next = run->next;
  else r->head = run->next;
  if (run->next != NULL) run->next->prev = run->prev;
  r->finished[r->next_finished] = run->key;
  r->next_finished = (r->next_finished + 1) % N_FINISHED;
  pthread_mutex_unlock(&r->mu);
  free(run);
}

/* Cancels one ticket: interrupts its DoGets, or remembers it for the DoGet to come. */
static Arrow__Flight__Protocol__CancelStatus cancel_ticket(struct wg_server *s, const uint8_t *p,
                                                           size_t n) {
  struct wg__fsql_running *r = s->fsql->running;
  uint64_t key = ticket_key(r, p, n);
  int64_t now = now_ms();
  bool hit = false;
  pthread_mutex_lock(&r->mu);
  for (struct wg__fsql_run *run = r->head; run != NULL; run = run->next) {
    if (run->key != key) continue;
    if (run->conn != NULL) wg_engine_interrupt(run->conn);
    hit = true;
  }
  bool finished = false;
  for (int j = 0; !hit && j < N_FINISHED; j++)
    finished = finished || r->finished[j] == key;
  if (!hit && !finished && find_cancelled(r, key, now) < 0) {
    int slot = 0; /* a free slot, else the oldest */
    for (int i = 0; i < N_CANCELLED; i++) {
      if (r->cancelled[i].at_ms == 0) {
        slot = i;
        break;
      }
      if (r->cancelled[i].at_ms < r->cancelled[slot].at_ms) slot = i;
    }
    r->cancelled[slot].key = key;
    r->cancelled[slot].at_ms = now > 0 ? now : 1;
  }
  pthread_mutex_unlock(&r->mu);
  return !hit && finished ? NOT_CANCELLABLE : CANCELLED;
}

/* Cancels every endpoint's ticket of info: CANCELLED when one was (or will be), NOT_CANCELLABLE
 * when all had finished. */
static Arrow__Flight__Protocol__CancelStatus
cancel_info(struct wg_server *s, const Arrow__Flight__Protocol__FlightInfo *info) {
  Arrow__Flight__Protocol__CancelStatus st = NOT_CANCELLABLE;
  for (size_t i = 0; i < info->n_endpoint; i++) {
    const Arrow__Flight__Protocol__FlightEndpoint *e = info->endpoint[i];
    if (e == NULL || e->ticket == NULL) continue;
    if (cancel_ticket(s, e->ticket->ticket.data, e->ticket->ticket.len) == CANCELLED)
      st = CANCELLED;
  }
  return st;
}

int wg__fsql_action_cancel_flight_info(struct wg_server *s, struct wg_rpc_call *call,
                                       const ProtobufCBinaryData *body, struct wg_error *err) {
  Arrow__Flight__Protocol__CancelFlightInfoRequest *req = NULL;
  WG_RETURN_NOT_OK(wg__fsql_action_unpack(
      body, &arrow__flight__protocol__cancel_flight_info_request__descriptor, false,
      "CancelFlightInfo", (ProtobufCMessage **)&req, err));
  int rc = 0;
  Arrow__Flight__Protocol__CancelFlightInfoResult res =
      ARROW__FLIGHT__PROTOCOL__CANCEL_FLIGHT_INFO_RESULT__INIT;
  if (req->info == NULL)
    rc = wg_error_set(err, EINVAL, "CancelFlightInfo: the request has no FlightInfo");
  else
    res.status = cancel_info(s, req->info);
  protobuf_c_message_free_unpacked(&req->base, NULL);
  if (rc == 0) rc = wg__fsql_action_result(call, &res.base, false, err);
  return rc;
}

int wg__fsql_action_cancel_query(struct wg_server *s, struct wg_rpc_call *call,
                                 const ProtobufCBinaryData *body, struct wg_error *err) {
  Arrow__Flight__Protocol__Sql__ActionCancelQueryRequest *req = NULL;
  WG_RETURN_NOT_OK(wg__fsql_action_unpack(
      body, &arrow__flight__protocol__sql__action_cancel_query_request__descriptor, true,
      "CancelQuery", (ProtobufCMessage **)&req, err));
  Arrow__Flight__Protocol__FlightInfo *info =
      req->has_info ? arrow__flight__protocol__flight_info__unpack(NULL, req->info.len,
                                                                   req->info.data)
                    : NULL;
  protobuf_c_message_free_unpacked(&req->base, NULL);
  if (info == NULL)
    return wg_error_set(err, EINVAL, "CancelQuery: info is not a serialized FlightInfo");
  Arrow__Flight__Protocol__CancelStatus st = cancel_info(s, info);
  protobuf_c_message_free_unpacked(&info->base, NULL);
  Arrow__Flight__Protocol__Sql__ActionCancelQueryResult res =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_CANCEL_QUERY_RESULT__INIT;
  res.has_result = 1;
  res.result = st == CANCELLED ? QUERY_CANCELLED : QUERY_NOT_CANCELLABLE;
  return wg__fsql_action_result(call, &res.base, true, err);
}

/* Our tickets never expire (a statement's ticket is the statement): the endpoint goes back as it
 * came, as the specification allows. */
int wg__fsql_action_renew_endpoint(struct wg_server *s, struct wg_rpc_call *call,
                                   const ProtobufCBinaryData *body, struct wg_error *err) {
  (void)s;
  Arrow__Flight__Protocol__RenewFlightEndpointRequest *req = NULL;
  WG_RETURN_NOT_OK(wg__fsql_action_unpack(
      body, &arrow__flight__protocol__renew_flight_endpoint_request__descriptor, false,
      "RenewFlightEndpoint", (ProtobufCMessage **)&req, err));
  int rc = req->endpoint == NULL
               ? wg_error_set(err, EINVAL, "RenewFlightEndpoint: the request has no endpoint")
               : wg__fsql_action_result(call, &req->endpoint->base, false, err);
  protobuf_c_message_free_unpacked(&req->base, NULL);
  return rc;
}
