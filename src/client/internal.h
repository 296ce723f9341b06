/* wigeon: the client's operations as written once (client.c), for its two faces: client.h (errno
 * codes, struct wg_error) and wigeon.h (struct wg_status, in public.c). Each returns an errno-style
 * code with the message in err, and sets *grpc to the gRPC code of the outcome: the server's
 * status when it ended the call, else the mapping of the local error (0 on success). */
#ifndef WG_CLIENT_INTERNAL_H
#define WG_CLIENT_INTERNAL_H

#include "client/client.h"

int wg__client_do_get(struct wg_client *c, const void *ticket, size_t len,
                      struct ArrowArrayStream *out, struct wg_error *err, int *grpc);
/* The error of a stream from wg__client_do_get: its code (0 none), *grpc and *message (borrowed
 * from the stream). 0 for any other stream. */
int wg__client_stream_error(struct ArrowArrayStream *stream, int *grpc, const char **message);
/* idempotency_key (may be NULL) goes in the first FlightData's app_metadata. */
int wg__client_put(struct wg_client *c, const char *schema_name, const char *table,
                   const char *idempotency_key, struct ArrowArrayStream *in, wg_put_ack_fn on_ack,
                   void *ack_ctx, int64_t *rows, struct wg_error *err, int *grpc);
/* on_result (may be NULL) gets each Result body (borrowed); a non-zero return cancels the call
 * and is the outcome. */
int wg__client_action(struct wg_client *c, const char *type, const void *body, size_t len,
                      int (*on_result)(void *ctx, const uint8_t *data, size_t size,
                                       struct wg_error *err),
                      void *ctx, struct wg_error *err, int *grpc);
int wg__client_flight_info(struct wg_client *c, const char *schema_name, const char *table,
                           const char *sql, struct wg_client_info *out, struct wg_error *err,
                           int *grpc);
/* GetSchema of [schema_name.]table, or of sql when table is NULL. */
int wg__client_get_schema(struct wg_client *c, const char *schema_name, const char *table,
                          const char *sql, struct ArrowSchema *out, struct wg_error *err,
                          int *grpc);
/* A Flight Handshake with an empty request, with its own deadline (0 none). */
int wg__client_handshake(struct wg_client *c, int64_t timeout_ms, struct wg_error *err, int *grpc);
int wg__client_list_tables(struct wg_client *c, const char *filter, struct wg_table_info **out,
                           int64_t *n, struct wg_error *err, int *grpc);
void wg__table_info_free(struct wg_table_info *t, int64_t n);

#endif
