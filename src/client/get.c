/* wigeon: DoGet as an ArrowArrayStream (wg_query, wg_do_get, wg_stream_status; wg__do_get_all
 * reads several tickets, a FlightInfo's endpoints, as one stream). The stream reads FlightData
 * messages on demand, on the caller's thread; the call's status, when it ends, becomes the
 * stream's status. For the live tail (tail.c): a DoGet with its own deadline, the app_metadata
 * of the last batch, and a cancel from another thread. */
#include <stdlib.h>
#include <string.h>

#include "arrow/array.h"
#include "arrow/ipc.h"
#include "client/internal.h"
#include "common/buf.h"

struct get_stream {
  struct wg_client *client;
  uint8_t *ticket; /* a copy, to repeat the call once after logging in again */
  size_t ticket_len;
  int64_t timeout_ms;
  bool received, retried;
  /* call is replaced only by a repeat after logging in again; mu guards that against a cancel
   * from another thread (wg__stream_cancel), which also stops any repeat */
  pthread_mutex_t mu;
  bool cancelled;
  struct wg_rpc_client_call *call;
  struct wg_buf meta; /* app_metadata of the last record batch */
  struct wg_ipc_decoder *dec;
  int status;
  int grpc; /* gRPC code of status */
  bool done;
  struct wg_error err;
};

static int get_start(struct get_stream *g, struct wg_error *err, int *grpc) {
  Arrow__Flight__Protocol__Ticket t = ARROW__FLIGHT__PROTOCOL__TICKET__INIT;
  t.ticket.data = g->ticket;
  t.ticket.len = g->ticket_len;
  return wg__client_unary_start(g->client, "DoGet", g->timeout_ms, &t.base, &g->call, err, grpc);
}

/* The call's end (bb NULL) or a broken read (rc): the status decides. Refused "token expired"
 * before any message, the call is made again once after logging in again (*again). */
static int get_end(struct get_stream *g, int rc, bool *again) {
  g->done = true;
  g->status = wg__client_finish(g->call, rc, false, &g->err, &g->grpc);
  if (g->status != 0 && !g->received && !g->retried &&
      wg__client_relogin(g->client, g->grpc, &g->err)) {
    g->retried = true;
    pthread_mutex_lock(&g->mu);
    wg_rpc_client_call_destroy(g->call);
    g->call = NULL;
    struct wg_error err = {""};
    int grpc = 0;
    int started = g->cancelled ? ECANCELED : get_start(g, &err, &grpc);
    pthread_mutex_unlock(&g->mu);
    if (started == 0) {
      g->done = false;
      g->status = 0;
      g->grpc = 0;
      g->err.message[0] = '\0';
      *again = true;
      return 0;
    }
  }
  if (g->status == 0 && rc != 0) {
    g->status = wg_error_set(&g->err, rc, "DoGet stream broken");
    g->grpc = wg__local_code(rc);
  } else if (g->status == 0 && !wg_ipc_decoder_has_schema(g->dec)) {
    g->status = wg_error_set(&g->err, EPROTO, "DoGet ended without a schema");
    g->grpc = wg__local_code(g->status);
  }
  return g->status;
}

/* Reads messages until a record batch (out) or the end (out->release NULL). */
static int get_pump(struct get_stream *g, struct ArrowArray *out, bool want_schema) {
  out->release = NULL;
  if (g->status != 0) return g->status;
  for (;;) {
    if (g->done) return 0;
    if (want_schema && wg_ipc_decoder_has_schema(g->dec)) return 0;
    grpc_byte_buffer *bb = NULL;
    int rc = wg_rpc_client_call_recv(g->call, &bb);
    if (rc != 0 || bb == NULL) {
      bool again = false;
      rc = get_end(g, rc, &again);
      if (again) continue;
      return rc;
    }
    g->received = true;
    struct wg_flight_data fd = {0};
    rc = wg_flight_data_decode(bb, &fd, &g->err);
    grpc_byte_buffer_destroy(bb);
    enum wg_ipc_message_type type = WG_IPC_MESSAGE_NONE;
    if (rc == 0 && fd.data_header.size > 0)
      rc = wg_ipc_decoder_decode(g->dec, fd.data_header, fd.body, &type, out, &g->err);
    if (rc == 0 && type == WG_IPC_MESSAGE_RECORD_BATCH) {
      g->meta.size = 0;
      if (wg_buf_append(&g->meta, fd.app_metadata.data, fd.app_metadata.size) != 0) {
        wg_array_release(out);
        rc = wg_error_set(&g->err, ENOMEM, "out of memory for a batch's app_metadata");
      }
    }
    wg_flight_data_reset(&fd);
    if (rc != 0) {
      wg_rpc_client_call_cancel(g->call);
      g->done = true;
      g->status = rc;
      g->grpc = wg__local_code(rc);
      return rc;
    }
    if (type == WG_IPC_MESSAGE_RECORD_BATCH) {
      if (want_schema) { /* cannot happen before a schema: the decoder refuses it */
        wg_array_release(out);
      }
      return 0;
    }
  }
}

static int get_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct get_stream *g = s->private_data;
  struct ArrowArray none;
  int rc = get_pump(g, &none, true);
  if (rc != 0) return rc;
  if (wg_ipc_decoder_schema(g->dec, out, &g->err) == 0) return 0;
  g->status = EPROTO;
  g->grpc = wg__local_code(EPROTO);
  return EPROTO;
}

static int get_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  return get_pump(s->private_data, out, false);
}

static const char *get_last_error(struct ArrowArrayStream *s) {
  struct get_stream *g = s->private_data;
  return g->status != 0 ? g->err.message : NULL;
}

static void get_release(struct ArrowArrayStream *s) {
  struct get_stream *g = s->private_data;
  if (!g->done) wg_rpc_client_call_cancel(g->call);
  wg_rpc_client_call_destroy(g->call);
  wg_ipc_decoder_destroy(g->dec);
  wg_buf_reset(&g->meta);
  pthread_mutex_destroy(&g->mu);
  free(g->ticket);
  free(g);
  s->release = NULL;
}

struct wg_bytes wg__stream_app_metadata(struct ArrowArrayStream *s) {
  if (s == NULL || s->release != get_release) return (struct wg_bytes){NULL, 0};
  struct get_stream *g = s->private_data;
  return (struct wg_bytes){g->meta.data, g->meta.size};
}

void wg__stream_cancel(struct ArrowArrayStream *s) {
  if (s == NULL || s->release != get_release) return;
  struct get_stream *g = s->private_data;
  pthread_mutex_lock(&g->mu);
  g->cancelled = true;
  wg_rpc_client_call_cancel(g->call);
  pthread_mutex_unlock(&g->mu);
}

/* ---- several tickets as one stream: a FlightInfo's endpoints, one DoGet after the other ---- */

struct chain {
  wg_client *client;
  struct wg_buf *tickets;
  size_t n, next;
  struct wg_buf schema; /* the FlightInfo's, for a result without tickets */
  struct ArrowArrayStream cur; /* release NULL between endpoints */
  struct wg_status st;
};

static void chain_fail(struct chain *ch, int code) {
  if (code != 0 && ch->st.code == 0 && ch->cur.release != NULL)
    wg_stream_status(&ch->cur, &ch->st);
}

/* Opens the next ticket's stream; false at the end (or on error, in ch->st). */
static bool chain_open(struct chain *ch) {
  if (ch->st.code != 0 || ch->next >= ch->n) return false;
  struct wg_buf *t = &ch->tickets[ch->next++];
  return wg_do_get(ch->client, t->data, (size_t)t->size, &ch->cur, &ch->st) == 0;
}

static int chain_errno(struct chain *ch) {
  return ch->st.code == 0 ? 0 : ch->st.sys_errno != 0 ? ch->st.sys_errno : EIO;
}

static int chain_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct chain *ch = s->private_data;
  if (ch->st.code != 0) return chain_errno(ch);
  if (ch->cur.release == NULL && ch->n == 0) {
    struct wg_error err = {""};
    int rc = wg_flight_schema_parse((struct wg_bytes){ch->schema.data, ch->schema.size}, out, &err);
    wg__status_set(&ch->st, rc, 0, err.message);
    return rc;
  }
  if (ch->cur.release == NULL && !chain_open(ch)) return chain_errno(ch);
  int rc = ch->cur.get_schema(&ch->cur, out);
  chain_fail(ch, rc);
  return rc;
}

static int chain_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct chain *ch = s->private_data;
  out->release = NULL;
  for (;;) {
    if (ch->st.code != 0) return chain_errno(ch);
    if (ch->cur.release == NULL && !chain_open(ch)) return chain_errno(ch);
    int rc = ch->cur.get_next(&ch->cur, out);
    if (rc != 0) {
      chain_fail(ch, rc);
      return rc;
    }
    if (out->release != NULL) return 0;
    wg_stream_release(&ch->cur);
  }
}

static const char *chain_last_error(struct ArrowArrayStream *s) {
  struct chain *ch = s->private_data;
  return ch->st.code != 0 ? ch->st.message : NULL;
}

static void chain_release(struct ArrowArrayStream *s) {
  struct chain *ch = s->private_data;
  wg_stream_release(&ch->cur);
  for (size_t i = 0; i < ch->n; i++)
    wg_buf_reset(&ch->tickets[i]);
  free(ch->tickets);
  wg_buf_reset(&ch->schema);
  free(ch);
  s->release = NULL;
}

int wg__do_get_all(wg_client *client, const struct wg_bytes *tickets, size_t n,
                   struct wg_bytes schema, struct ArrowArrayStream *out, struct wg_status *status) {
  struct chain *ch = calloc(1, sizeof(*ch));
  if (ch != NULL) ch->tickets = calloc(n + 1, sizeof(*ch->tickets));
  if (ch == NULL || ch->tickets == NULL) {
    free(ch);
    return wg__status_set(status, ENOMEM, 0, "out of memory");
  }
  ch->client = client;
  wg_buf_init(&ch->schema);
  int rc = wg_buf_append(&ch->schema, schema.data, schema.size);
  for (size_t i = 0; rc == 0 && i < n; i++, ch->n++) {
    wg_buf_init(&ch->tickets[i]);
    rc = wg_buf_append(&ch->tickets[i], tickets[i].data, tickets[i].size);
  }
  memset(out, 0, sizeof(*out));
  out->get_schema = chain_get_schema;
  out->get_next = chain_get_next;
  out->get_last_error = chain_last_error;
  out->release = chain_release;
  out->private_data = ch;
  if (rc != 0) {
    chain_release(out);
    return wg__status_set(status, ENOMEM, 0, "out of memory for the tickets");
  }
  return wg__status_set(status, 0, 0, NULL);
}

int wg_stream_status(struct ArrowArrayStream *stream, struct wg_status *status) {
  int exchanged = wg__exchange_status(stream, status);
  if (exchanged >= 0) return exchanged;
  if (stream != NULL && stream->release == chain_release) {
    struct chain *ch = stream->private_data;
    return wg__status_set(status, chain_errno(ch), ch->st.code, ch->st.message);
  }
  if (stream == NULL || stream->release != get_release) return wg__status_set(status, 0, 0, NULL);
  struct get_stream *g = stream->private_data;
  return wg__status_set(status, g->status, g->grpc, g->err.message);
}

int wg__do_get_open(wg_client *client, const void *ticket, size_t ticket_len, int64_t timeout_ms,
                    struct ArrowArrayStream *out, struct wg_status *status) {
  struct wg_error err = {""};
  int grpc = 0;
  struct get_stream *g = calloc(1, sizeof(*g));
  if (g != NULL) g->ticket = malloc(ticket_len > 0 ? ticket_len : 1);
  if (g == NULL || g->ticket == NULL) {
    free(g);
    return wg__status_set(status, ENOMEM, 0, "out of memory");
  }
  g->client = client;
  if (ticket_len > 0) memcpy(g->ticket, ticket, ticket_len);
  g->ticket_len = ticket_len;
  g->timeout_ms = timeout_ms;
  pthread_mutex_init(&g->mu, NULL);
  wg_buf_init(&g->meta);
  int rc = wg_ipc_decoder_create(&g->dec, NULL, &err);
  if (rc == 0) rc = get_start(g, &err, &grpc);
  if (rc != 0) {
    pthread_mutex_destroy(&g->mu);
    wg_ipc_decoder_destroy(g->dec);
    free(g->ticket);
    free(g);
    return wg__status_set(status, rc, grpc, err.message);
  }
  memset(out, 0, sizeof(*out));
  out->get_schema = get_get_schema;
  out->get_next = get_get_next;
  out->get_last_error = get_last_error;
  out->release = get_release;
  out->private_data = g;
  return wg__status_set(status, 0, 0, NULL);
}

int wg_do_get(wg_client *client, const void *ticket, size_t ticket_len,
              struct ArrowArrayStream *out, struct wg_status *status) {
  if (client == NULL || (ticket == NULL && ticket_len > 0) || out == NULL)
    return wg__status_invalid(status, "wg_do_get needs a client, a ticket and an output stream");
  return wg__do_get_open(client, ticket, ticket_len, wg__client_timeout(client), out, status);
}

int wg_query(wg_client *client, const char *sql, struct ArrowArrayStream *out,
             struct wg_status *status) {
  if (client == NULL || sql == NULL || out == NULL)
    return wg__status_invalid(status, "wg_query needs a client, SQL and an output stream");
  return wg_do_get(client, sql, strlen(sql), out, status);
}
