/* wigeon.h: the C client library for a wigeon server (or any Arrow Flight server speaking plain
 * gRPC): connect, run SQL as an ArrowArrayStream, put an ArrowArrayStream into a table, list
 * tables, read schemas, run actions. Self-contained: it needs only the C standard headers and
 * declares the Arrow C Data and C Stream Interface structs itself (under the standard guards, so
 * it can be included next to arrow/c/abi.h, nanoarrow or DuckDB's copy). No gRPC or DuckDB types.
 * Link with `pkg-config --libs wigeon` (libwigeon.so or libwigeon.a). See docs/client.md. */
#ifndef WIGEON_H
#define WIGEON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Arrow C Data Interface and C Stream Interface (as the Arrow specification defines them). */

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
  const char *format;
  const char *name;
  const char *metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema **children;
  struct ArrowSchema *dictionary;
  void (*release)(struct ArrowSchema *);
  void *private_data;
};

struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void **buffers;
  struct ArrowArray **children;
  struct ArrowArray *dictionary;
  void (*release)(struct ArrowArray *);
  void *private_data;
};

#endif

#ifndef ARROW_C_STREAM_INTERFACE
#define ARROW_C_STREAM_INTERFACE

struct ArrowArrayStream {
  int (*get_schema)(struct ArrowArrayStream *, struct ArrowSchema *out);
  int (*get_next)(struct ArrowArrayStream *, struct ArrowArray *out);
  const char *(*get_last_error)(struct ArrowArrayStream *);
  void (*release)(struct ArrowArrayStream *);
  void *private_data;
};

#endif

/* Every public function is declared with WG_API (libwigeon.so exports exactly these). */
#if defined(__GNUC__) || defined(__clang__)
#define WG_API __attribute__((visibility("default")))
#else
#define WG_API
#endif

/* ---------------------------------------------------------------------------------------------
 * Status: every call that can fail fills one struct wg_status (the last parameter, may be NULL)
 * and returns its code. */

/* gRPC status codes, as the server sends them or as this library maps a local error. */
enum {
  WG_STATUS_OK = 0,
  WG_STATUS_CANCELLED = 1, /* the call was cancelled (by the server's shutdown, ...) */
  WG_STATUS_UNKNOWN = 2,
  WG_STATUS_INVALID_ARGUMENT = 3,  /* SQL parser/binder error, bad argument, schema mismatch in
                                      a put, malformed data; also a bad URI or NULL argument */
  WG_STATUS_DEADLINE_EXCEEDED = 4, /* options.timeout_ms passed */
  WG_STATUS_NOT_FOUND = 5,         /* missing table, schema, column or function */
  WG_STATUS_ALREADY_EXISTS = 6,    /* duplicate primary or unique key */
  WG_STATUS_PERMISSION_DENIED = 7,
  WG_STATUS_RESOURCE_EXHAUSTED = 8,  /* server out of memory, or all workers busy and queue full */
  WG_STATUS_FAILED_PRECONDITION = 9, /* NOT NULL / CHECK / foreign key; refused by security */
  WG_STATUS_ABORTED = 10,            /* transaction conflict: retry */
  WG_STATUS_OUT_OF_RANGE = 11,
  WG_STATUS_UNIMPLEMENTED = 12, /* unknown action, unsupported RPC or feature (TLS) */
  WG_STATUS_INTERNAL = 13,      /* anything else, on either side */
  WG_STATUS_UNAVAILABLE = 14,   /* cannot connect (refused, unreachable, connection lost) */
  WG_STATUS_DATA_LOSS = 15,
  WG_STATUS_UNAUTHENTICATED = 16,
};

struct wg_status {
  int code;      /* WG_STATUS_* (the gRPC status code); 0 = OK */
  int sys_errno; /* the same error as an errno value (EINVAL, ENOENT, ECONNREFUSED...); 0 = OK */
  char message[1024]; /* the server's message (DuckDB's, for SQL errors) or ours; "" when OK */
};

/* "OK", "INVALID_ARGUMENT", ...; "UNKNOWN" for codes outside 0..16. Static storage. */
WG_API const char *wg_status_code_name(int code);

/* The library's version, e.g. "0.1.0". Static storage. */
WG_API const char *wg_version(void);

/* ---------------------------------------------------------------------------------------------
 * Client.
 *
 * Thread safety: a wg_client may be shared by any number of threads; every call on it is
 * independent (its own gRPC call over one shared connection) and may run concurrently with the
 * others. A stream returned by wg_query is used by one thread at a time (any thread). Release
 * every stream before wg_disconnect; wg_disconnect must not race with calls on the client. */

typedef struct wg_client wg_client;

struct wg_client_options {
  int64_t timeout_ms;         /* deadline of each call, from its start to its end (a query: until
                                 its stream is read to the end); 0 = none */
  int64_t connect_timeout_ms; /* deadline of the check at connect; 0 = 10000 */
  bool lazy_connect;          /* true: do not check the server at connect; an unreachable server
                                 then shows on the first call (UNAVAILABLE) */
  const char *const *headers; /* NULL, or NULL-terminated key, value pairs sent as gRPC metadata
                                 with every call (keys lower case, e.g. "x-request-source");
                                 copied by wg_connect */
  /* Credentials (after 0.1.0; the struct grew here, so a program built against 0.1.0's header
   * must be rebuilt). Copied by wg_connect and sent with every call as `authorization: Basic
   * base64(username:password)` or `authorization: Bearer token`. The wigeon server does not check
   * them yet (issue 13: TLS and tokens) and ignores the header; a server that does checks them.
   * username with token, or an "authorization" entry in headers as well, is INVALID_ARGUMENT. */
  const char *username; /* NULL: no Basic credentials; password NULL counts as "" */
  const char *password;
  const char *token; /* NULL: no bearer token */
};

/* Fills the defaults (all zero). A zeroed struct is the same; NULL options too. */
WG_API void wg_client_options_init(struct wg_client_options *options);

/* Connects to uri: "grpc://HOST:PORT", "grpc+tcp://HOST:PORT" or "HOST:PORT" (plaintext); HOST
 * a name, an IPv4 address or an IPv6 address in brackets ("grpc://[::1]:8815"). "grpc+tls://" is
 * recognised and refused with UNIMPLEMENTED until TLS is built (issue 13).
 * Unless options->lazy_connect, checks the server at once with a Flight Handshake (a server that
 * answers UNIMPLEMENTED to it counts as reachable).
 * Returns 0 with *out set (the caller owns it: wg_disconnect), or: INVALID_ARGUMENT (bad URI or
 * header list), UNIMPLEMENTED (grpc+tls://), UNAVAILABLE (cannot connect), DEADLINE_EXCEEDED
 * (no answer within connect_timeout_ms), with *out NULL. */
WG_API int wg_connect(const char *uri, const struct wg_client_options *options, wg_client **out,
                      struct wg_status *status);
/* Frees the client. NULL ok. */
WG_API void wg_disconnect(wg_client *client);

/* Runs SQL (DoGet with the SQL text as ticket). *out streams the record batches as they arrive;
 * the caller owns it (out->release). Errors found when the call starts are returned here (e.g.
 * UNAVAILABLE); the server's answer (e.g. a syntax error, INVALID_ARGUMENT) surfaces from
 * out->get_schema or out->get_next as a non-zero errno value, with the message in
 * out->get_last_error and the full status from wg_stream_status. On error *out is untouched. */
WG_API int wg_query(wg_client *client, const char *sql, struct ArrowArrayStream *out,
                    struct wg_status *status);
/* wg_query with a raw ticket of ticket_len bytes (DoGet), e.g. the ticket of a wg_flight_info
 * endpoint. Same contract as wg_query. */
WG_API int wg_do_get(wg_client *client, const void *ticket, size_t ticket_len,
                     struct ArrowArrayStream *out, struct wg_status *status);
/* The status of a stream from wg_query or wg_do_get: 0 while it has had no error; else the error that its
 * get_schema/get_next returned. Fills *status (may be NULL). For any other stream: 0. */
WG_API int wg_stream_status(struct ArrowArrayStream *stream, struct wg_status *status);

/* One acknowledgement of a put: the server committed these rows (wigeon sends one per put, after
 * its COMMIT). Pointers are valid during the callback only. */
struct wg_put_ack {
  int64_t rows;                /* rows committed, -1 when the acknowledgement does not say */
  const char *table;           /* the table it names, "" when it does not say */
  const uint8_t *app_metadata; /* the raw PutResult.app_metadata (wigeon: JSON
                                  {"rows": N, "table": "NAME"}), not NUL-terminated */
  size_t app_metadata_len;
  bool duplicate; /* a put with an idempotency key committed before: nothing was appended */
};
typedef void (*wg_put_ack_fn)(void *ctx, const struct wg_put_ack *ack);

/* Appends every batch of `in` to [schema_name.]table (schema_name NULL: the default schema);
 * the server creates the table from the stream's schema when it is missing. The whole stream is
 * one transaction. `in` is consumed: released before returning, on success and on error.
 * on_ack (may be NULL) runs on the calling thread for each acknowledgement; *rows (may be NULL)
 * gets the sum of the acknowledged rows. A failing `in` (get_schema/get_next) cancels the put:
 * INTERNAL, or the code its errno maps to, with its get_last_error message. */
WG_API int wg_put(wg_client *client, const char *schema_name, const char *table,
                  struct ArrowArrayStream *in, wg_put_ack_fn on_ack, void *ack_ctx, int64_t *rows,
                  struct wg_status *status);

/* wg_put with an idempotency key (1 to 256 bytes of UTF-8, sent in the first message's
 * app_metadata as {"idempotency_key": "KEY"}): if the server has committed a put with this key
 * within its window (24 h by default), this one appends nothing and is acknowledged with the
 * original row count (ack->duplicate true). Retry a put whose outcome is unknown (connection
 * lost, server killed) with the same key, and it lands exactly once. */
WG_API int wg_put_idempotent(wg_client *client, const char *schema_name, const char *table,
                             const char *idempotency_key, struct ArrowArrayStream *in,
                             wg_put_ack_fn on_ack, void *ack_ctx, int64_t *rows,
                             struct wg_status *status);

/* A table (ListFlights). */
struct wg_table_info {
  char *schema_name; /* "main" unless the server names another schema */
  char *table_name;
  int64_t rows;              /* exact row count; -1 when the server does not say */
  struct ArrowSchema schema; /* the table's Arrow schema */
};
/* Lists the tables of every schema whose name contains `filter` (NULL or "": all). On success
 * *tables (owned by the caller: wg_table_info_free) holds *n entries; on error NULL and 0. */
WG_API int wg_list_tables(wg_client *client, const char *filter, struct wg_table_info **tables,
                          int64_t *n, struct wg_status *status);
/* Frees what wg_list_tables returned (releases the schemas). NULL ok. */
WG_API void wg_table_info_free(struct wg_table_info *tables, int64_t n);

/* The Arrow schema of [schema_name.]table, or of the result of `sql` (prepared, not run), with
 * GetSchema. *out is owned by the caller on success, untouched on error. A missing table is
 * NOT_FOUND; bad SQL INVALID_ARGUMENT. */
WG_API int wg_table_schema(wg_client *client, const char *schema_name, const char *table,
                           struct ArrowSchema *out, struct wg_status *status);
WG_API int wg_query_schema(wg_client *client, const char *sql, struct ArrowSchema *out,
                           struct wg_status *status);

/* What GetFlightInfo says of a table or of the result of a query. */
struct wg_flight_info {
  struct ArrowSchema schema; /* the Arrow schema */
  int64_t total_records;     /* -1 when the server does not say */
  char *ticket;              /* the first endpoint's ticket (NUL-terminated, ticket_len bytes
                                without it), NULL when there is none */
  size_t ticket_len;
};
/* GetFlightInfo for [schema_name.]table (table not NULL), or for the result of `sql` (table NULL;
 * planned, not run). *out is overwritten: owned by the caller on success (wg_flight_info_reset),
 * zeroed on error. A missing table is NOT_FOUND; bad SQL INVALID_ARGUMENT. */
WG_API int wg_flight_info(wg_client *client, const char *schema_name, const char *table,
                          const char *sql, struct wg_flight_info *out, struct wg_status *status);
/* Frees what wg_flight_info filled; *info is zeroed. Safe twice and on NULL. */
WG_API void wg_flight_info_reset(struct wg_flight_info *info);

/* The actions a server offers (ListActions). */
struct wg_action_type {
  char *type;
  char *description; /* "" when the server gives none */
};
/* On success *types (owned by the caller: wg_action_types_free) holds *n entries, in the
 * server's order; on error NULL and 0. */
WG_API int wg_list_actions(wg_client *client, struct wg_action_type **types, int64_t *n,
                           struct wg_status *status);
/* Frees what wg_list_actions returned. NULL ok. */
WG_API void wg_action_types_free(struct wg_action_type *types, int64_t n);

/* The Result bodies of an action, each NUL-terminated for convenience (size excludes it). */
struct wg_action_body {
  char *data;
  size_t size;
};
struct wg_action_result {
  struct wg_action_body *bodies;
  int64_t n;
};
/* Runs an action (DoAction) with a body of body_len bytes (wigeon: "execute" with SQL,
 * "drop_table", "checkpoint", "stats"; an unknown type is UNIMPLEMENTED). `result` (may be NULL
 * when the results do not matter) is overwritten; owned by the caller on success (reset it with
 * wg_action_result_reset), empty on error. */
WG_API int wg_action(wg_client *client, const char *type, const void *body, size_t body_len,
                     struct wg_action_result *result, struct wg_status *status);
/* Frees the bodies; the result is empty afterwards. Safe twice and on NULL. */
WG_API void wg_action_result_reset(struct wg_action_result *result);

#ifdef __cplusplus
}
#endif

#endif
