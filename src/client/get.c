/* wigeon: DoGet as an ArrowArrayStream (wg_query, wg_do_get, wg_stream_status). The stream reads
 * FlightData messages on demand, on the caller's thread; the call's status, when it ends, becomes
 * the stream's status. */
#include <stdlib.h>
#include <string.h>

#include "arrow/array.h"
#include "arrow/ipc.h"
#include "client/internal.h"

struct get_stream {
  struct wg_rpc_client_call *call;
  struct wg_ipc_decoder *dec;
  int status;
  int grpc; /* gRPC code of status */
  bool done;
  struct wg_error err;
};

/* The call's end (bb NULL) or a broken read (rc): the status decides. */
static int get_end(struct get_stream *g, int rc) {
  g->done = true;
  g->status = wg__client_finish(g->call, rc, false, &g->err, &g->grpc);
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
    if (rc != 0 || bb == NULL) return get_end(g, rc);
    struct wg_flight_data fd = {0};
    rc = wg_flight_data_decode(bb, &fd, &g->err);
    grpc_byte_buffer_destroy(bb);
    enum wg_ipc_message_type type = WG_IPC_MESSAGE_NONE;
    if (rc == 0 && fd.data_header.size > 0)
      rc = wg_ipc_decoder_decode(g->dec, fd.data_header, fd.body, &type, out, &g->err);
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
  free(g);
  s->release = NULL;
}

int wg_stream_status(struct ArrowArrayStream *stream, struct wg_status *status) {
  int code;
  if (stream != NULL && wg__fsql_stream_status(stream, status, &code)) return code;
  if (stream == NULL || stream->release != get_release) return wg__status_set(status, 0, 0, NULL);
  struct get_stream *g = stream->private_data;
  return wg__status_set(status, g->status, g->grpc, g->err.message);
}

int wg_do_get(wg_client *client, const void *ticket, size_t ticket_len,
              struct ArrowArrayStream *out, struct wg_status *status) {
  if (client == NULL || (ticket == NULL && ticket_len > 0) || out == NULL)
    return wg__status_invalid(status, "wg_do_get needs a client, a ticket and an output stream");
  Arrow__Flight__Protocol__Ticket t = ARROW__FLIGHT__PROTOCOL__TICKET__INIT;
  t.ticket.data = (uint8_t *)ticket;
  t.ticket.len = ticket_len;
  struct wg_error err = {""};
  int grpc = 0;
  struct get_stream *g = calloc(1, sizeof(*g));
  if (g == NULL) return wg__status_set(status, ENOMEM, 0, "out of memory");
  int rc = wg_ipc_decoder_create(&g->dec, NULL, &err);
  if (rc == 0)
    rc = wg__client_unary_start(client, "DoGet", wg__client_timeout(client), &t.base, &g->call,
                                &err, &grpc);
  if (rc != 0) {
    wg_ipc_decoder_destroy(g->dec);
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

int wg_query(wg_client *client, const char *sql, struct ArrowArrayStream *out,
             struct wg_status *status) {
  if (client == NULL || sql == NULL || out == NULL)
    return wg__status_invalid(status, "wg_query needs a client, SQL and an output stream");
  return wg_do_get(client, sql, strlen(sql), out, status);
}
