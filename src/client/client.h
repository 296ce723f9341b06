/* wigeon: the C client for a wigeon (or any Arrow Flight) server: queries as ArrowArrayStreams
 * (DoGet), puts from ArrowArrayStreams (DoPut), actions, flight info. Blocking calls; one client
 * may be used from several threads at once (each call is independent).
 * include/wigeon.h is the public API (struct wg_status with gRPC codes, libwigeon); this header
 * adds the internal flavour used by the tests and the command line: the same client, with the
 * project's errno-style codes and struct wg_error. Both may be used on one wg_client. */
#ifndef WG_CLIENT_CLIENT_H
#define WG_CLIENT_CLIENT_H

#include <stdint.h>

#include "arrow/abi.h"
#include "common/buf.h"
#include "common/error.h"
#include "wigeon.h"

struct wg_client;

/* uri: grpc://host:port, grpc+tcp://host:port or host:port. Connects lazily: an unreachable
 * server shows on the first call (ECONNREFUSED / UNAVAILABLE). */
int wg_client_connect(struct wg_client **out, const char *uri, struct wg_error *err);
void wg_client_close(struct wg_client *c);
/* Per-call deadline in milliseconds for the calls that follow (0 = none, the default). */
void wg_client_set_timeout(struct wg_client *c, int64_t timeout_ms);
/* gRPC metadata sent with every call (NULL or NULL-terminated key, value pairs; copied; replaces
 * the previous list). Not thread-safe: set it before sharing the client between threads. */
int wg_client_set_headers(struct wg_client *c, const char *const *headers, struct wg_error *err);

/* Runs SQL (DoGet with the SQL as ticket); `out` streams the batches as they arrive. Errors from
 * the server surface from get_schema/get_next, with the server's message in get_last_error and the
 * status code from wg_client_stream_status. */
int wg_client_query(struct wg_client *c, const char *sql, struct ArrowArrayStream *out,
                    struct wg_error *err);
int wg_client_do_get(struct wg_client *c, const void *ticket, size_t len,
                     struct ArrowArrayStream *out, struct wg_error *err);
int wg_client_stream_status(struct ArrowArrayStream *stream);

/* Puts every batch of `in` into [schema_name.]table (schema_name may be NULL); the stream is
 * consumed (released). *rows gets the rows the server acknowledged as committed. */
int wg_client_put(struct wg_client *c, const char *schema_name, const char *table,
                  struct ArrowArrayStream *in, int64_t *rows, struct wg_error *err);

/* The same with an idempotency key (NULL: none): a put whose key the server has committed before
 * appends nothing and is acknowledged with the original count (ack->duplicate). on_ack may be
 * NULL. */
int wg_client_put_keyed(struct wg_client *c, const char *schema_name, const char *table,
                        const char *idempotency_key, struct ArrowArrayStream *in,
                        wg_put_ack_fn on_ack, void *ack_ctx, int64_t *rows, struct wg_error *err);

/* Runs an action; the Result bodies are appended to `result` (may be NULL). */
int wg_client_action(struct wg_client *c, const char *type, const void *body, size_t len,
                     struct wg_buf *result, struct wg_error *err);

/* GetFlightInfo for a table path (schema_name may be NULL) or for SQL (table NULL, sql set):
 * its schema, total_records (-1 unknown) and the ticket of its endpoint (malloc'ed, caller frees;
 * ticket may be NULL if not wanted). */
struct wg_client_info {
  struct ArrowSchema schema;
  int64_t total_records;
  char *ticket;
  size_t ticket_len;
};
int wg_client_flight_info(struct wg_client *c, const char *schema_name, const char *table,
                          const char *sql, struct wg_client_info *out, struct wg_error *err);
void wg_client_info_reset(struct wg_client_info *info);

/* ListFlights: the tables (filter NULL = all). Caller frees with wg_client_tables_free. */
struct wg_client_table {
  char *schema_name, *table_name;
  int64_t rows;
  struct ArrowSchema schema;
};
int wg_client_list_tables(struct wg_client *c, const char *filter, struct wg_client_table **out,
                          int64_t *n, struct wg_error *err);
void wg_client_tables_free(struct wg_client_table *t, int64_t n);

#endif
