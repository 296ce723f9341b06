/* wigeon.h: the C client library for a wigeon server (or any Arrow Flight server speaking plain
 * gRPC): connect, run SQL as an ArrowArrayStream, put an ArrowArrayStream into a table, follow
 * a table's commits (live tail), list tables, read schemas, run actions. Self-contained: it
 * needs only the C standard headers and declares the Arrow C Data and C Stream Interface structs itself (under the standard guards, so
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
  WG_STATUS_UNIMPLEMENTED = 12, /* unknown action, unsupported RPC or feature */
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
   * must be rebuilt). Copied by wg_connect. With username, wg_connect (or, lazy_connect, the first
   * call) logs in with a Flight Handshake carrying `authorization: Basic base64(username:password)`
   * and sends the bearer token the server answers with on every later call (Basic on every call
   * when the server gives no token); a call refused with "token expired" before anything was
   * received logs in again once and is repeated (not a put). token is sent as `authorization:
   * Bearer token` as is. A server run with --users refuses calls without them (UNAUTHENTICATED;
   * docs/security.md). username with token, or an "authorization" entry in headers as well, is
   * INVALID_ARGUMENT. */
  const char *username; /* NULL: no Basic credentials; password NULL counts as "" */
  const char *password;
  const char *token; /* NULL: no bearer token */
  /* TLS (grpc+tls:// URIs; ignored for plaintext ones): paths of PEM files, read by wg_connect
   * (an unreadable or non-PEM file is INVALID_ARGUMENT naming it). tls_ca_file: the CA
   * certificates the server's certificate must chain to (NULL: gRPC's default roots, the file
   * named by GRPC_DEFAULT_SSL_ROOTS_FILE_PATH or the system's). tls_cert_file with tls_key_file:
   * a client certificate for servers that ask for one (mutual TLS); one without the other is
   * INVALID_ARGUMENT. */
  const char *tls_ca_file;
  const char *tls_cert_file;
  const char *tls_key_file;
};

/* Fills the defaults (all zero). A zeroed struct is the same; NULL options too. */
WG_API void wg_client_options_init(struct wg_client_options *options);

/* Connects to uri: "grpc://HOST:PORT", "grpc+tcp://HOST:PORT" or "HOST:PORT" (plaintext), or
 * "grpc+tls://HOST:PORT" (TLS: the server's certificate must chain to options->tls_ca_file or
 * the default roots and name HOST); HOST a name, an IPv4 address or an IPv6 address in brackets
 * ("grpc://[::1]:8815"). A TLS handshake that fails (certificate not trusted, expired, the
 * server wants a client certificate) shows as UNAVAILABLE.
 * Unless options->lazy_connect, checks the server at once with a Flight Handshake (a server that
 * answers UNIMPLEMENTED to it counts as reachable).
 * Returns 0 with *out set (the caller owns it: wg_disconnect), or: INVALID_ARGUMENT (bad URI or
 * header list, TLS file), UNAVAILABLE (cannot connect), DEADLINE_EXCEEDED
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

/* DoExchange (docs/exchange.md): runs `command` on the server over the batches of `in`, which the
 * SQL sees as the relation `input`, and streams the result into *out (owned by the caller; read
 * it like wg_query's; wg_stream_status works on it). command: SQL text ("SELECT * FROM input
 * WHERE ..."; "INSERT INTO t SELECT * FROM input" gives one row, its "Count") or the JSON
 * {"sql": "...", "per_batch": true} to run it once per input batch. `in` is consumed (released
 * on every path): a thread of the exchange's own reads it and sends it while the caller reads
 * *out, so the server may answer before it has all of the input; in's get_next runs on that
 * thread. A failing `in` cancels the exchange (nothing an INSERT wrote is kept): *out then fails
 * with in's error. Releasing *out before its end cancels the exchange. */
WG_API int wg_exchange(wg_client *client, const char *command, struct ArrowArrayStream *in,
                       struct ArrowArrayStream *out, struct wg_status *status);

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

/* ---------------------------------------------------------------------------------------------
 * Live tail (docs/tail.md): a DoGet that does not end. It sends the rows a table holds (the
 * snapshot), a batch of zero rows (the start marker), then the rows of every put committed to the
 * table from then on, as it commits, until the client stops it or its deadline passes. Each batch
 * carries the table's commit sequence number; subscribe again with from_sequence to resume.
 *
 * Two shapes: wg_tail runs a callback for every batch; wg_tail_open / wg_tail_next / wg_tail_close
 * read it batch by batch, and wg_tail_cancel stops a wg_tail_next blocked in another thread (an
 * idle table sends nothing, so a reader waiting for Ctrl-C needs it). The client's
 * options.timeout_ms does not apply to a tail; timeout_ms here does. */

/* What to subscribe to. Borrowed: the call copies what it needs. */
struct wg_tail_options {
  const char *schema_name;    /* NULL: main */
  const char *table;          /* required */
  const char *where;          /* a SQL boolean expression over the table's columns, as in a
                                 WHERE; NULL: every row */
  const char *const *columns; /* n_columns names, or NULL: all, in order */
  int n_columns;
  const char *from;       /* "beginning" (NULL: the same) or "now"; ignored with
                             from_sequence_set */
  bool from_sequence_set; /* resume: the puts committed after from_sequence */
  uint64_t from_sequence;
  int64_t timeout_ms; /* the call's deadline, from its start; <= 0: none */
};

/* What the server said of a batch (its app_metadata {"seq": N, "more": B}). */
struct wg_tail_info {
  uint64_t sequence; /* the table's commit sequence number of the batch's newest put (snapshot and
                        start marker: the start point's) */
  bool more;         /* more batches of the same sequence follow: resume from the last sequence
                        of a batch with more false */
  bool snapshot;     /* the batch is part of the snapshot (before the start marker) */
  bool start;        /* the batch is the start marker (zero rows): from now on everything is live */
};

/* One batch of a tail: schema and batch borrowed for the call (move the batch out, setting
 * batch->release NULL, to keep it). Return 0 to go on, anything else to stop: the call is
 * cancelled (the server sees CANCELLED and frees the subscriber) and wg_tail returns 0. */
typedef int (*wg_tail_fn)(void *ctx, const struct ArrowSchema *schema, struct ArrowArray *batch,
                          const struct wg_tail_info *info);

/* Subscribes and calls fn, on the calling thread, for every batch until fn stops it (OK), the
 * deadline passes (DEADLINE_EXCEEDED) or the server ends the stream (its status: e.g.
 * INVALID_ARGUMENT for a bad where or an unknown column, NOT_FOUND for a missing table,
 * OUT_OF_RANGE for a from_sequence the server no longer holds, RESOURCE_EXHAUSTED for a
 * subscriber that fell too far behind). Returns that status's code. */
WG_API int wg_tail(wg_client *client, const struct wg_tail_options *o, wg_tail_fn fn, void *ctx,
                   struct wg_status *status);

typedef struct wg_tail_stream wg_tail_stream;
/* Subscribes and waits for the stream's schema, so that a bad where, column or table is returned
 * here. On success *out is owned by the caller (wg_tail_close); on error it is NULL. */
WG_API int wg_tail_open(wg_client *client, const struct wg_tail_options *o, wg_tail_stream **out,
                        struct wg_status *status);
/* The stream's schema (with metadata wigeon.tail.table and wigeon.tail.delivers): borrowed, valid
 * until wg_tail_close. */
WG_API const struct ArrowSchema *wg_tail_schema(const wg_tail_stream *t);
/* Waits for the next batch: 0 with batch->release set (owned by the caller) and *info filled; 0
 * with batch->release NULL when the tail ended without error (wg_tail_cancel); else the status
 * the stream ended with (as for wg_tail), batch->release NULL. One thread at a time. */
WG_API int wg_tail_next(wg_tail_stream *t, struct ArrowArray *batch, struct wg_tail_info *info,
                        struct wg_status *status);
/* Stops the tail from any thread (not from a signal handler), also while another thread waits in
 * wg_tail_next, which then returns 0 with no batch. Before wg_tail_close only. */
WG_API void wg_tail_cancel(wg_tail_stream *t);
/* Cancels the call if it is still running and frees the tail. NULL ok. */
WG_API void wg_tail_close(wg_tail_stream *t);

/* ---------------------------------------------------------------------------------------------
 * Flight SQL (any Flight SQL server: wigeon, or another). Requests are Flight SQL commands packed
 * in google.protobuf.Any; results are ArrowArrayStreams as from wg_query (wg_stream_status works
 * on them). See docs/client.md, "Flight SQL".
 *
 * One call runs everything that returns rows: wg_fsql_run of a struct wg_fsql_command (a
 * statement, a prepared statement, or one of the metadata commands), which is
 * wg_fsql_flight_info (GetFlightInfo) then wg_fsql_fetch (DoGet of each endpoint's ticket, in
 * order, as one stream).
 * Keep the wg_fsql_info to cancel its query (wg_fsql_cancel: CancelFlightInfo). The rest:
 * updates (wg_fsql_update), prepared statements (wg_fsql_prepare ... wg_fsql_close), bulk ingest
 * (wg_fsql_ingest), transactions (wg_fsql_begin, wg_fsql_commit, wg_fsql_rollback). Thread
 * safety: as for the client; a wg_fsql_prepared or wg_fsql_txn is used by one thread at a time. */

/* A transaction (ActionBeginTransactionRequest's id); ended and freed by commit or rollback. */
typedef struct wg_fsql_txn wg_fsql_txn;
/* A prepared statement (its handle and schemas); freed by wg_fsql_close. */
typedef struct wg_fsql_prepared wg_fsql_prepared;
/* The server's FlightInfo for a command (schema, endpoints), kept to fetch or cancel it. */
typedef struct wg_fsql_info wg_fsql_info;

/* What a wg_fsql_command runs: the Flight SQL command it becomes is named after each. */
enum wg_fsql_kind {
  WG_FSQL_STATEMENT = 0,       /* CommandStatementQuery: sql (and txn) */
  WG_FSQL_PREPARED = 1,        /* CommandPreparedStatementQuery: prepared (its bound parameters) */
  WG_FSQL_CATALOGS = 2,        /* CommandGetCatalogs */
  WG_FSQL_DB_SCHEMAS = 3,      /* CommandGetDbSchemas: catalog, db_schema (a LIKE pattern) */
  WG_FSQL_TABLES = 4,          /* CommandGetTables: catalog, db_schema and table (LIKE patterns),
                                  table_types, include_schema */
  WG_FSQL_TABLE_TYPES = 5,     /* CommandGetTableTypes */
  WG_FSQL_SQL_INFO = 6,        /* CommandGetSqlInfo: info ids (n_info 0: every id) */
  WG_FSQL_PRIMARY_KEYS = 7,    /* CommandGetPrimaryKeys: catalog, db_schema, table */
  WG_FSQL_EXPORTED_KEYS = 8,   /* CommandGetExportedKeys: catalog, db_schema, table */
  WG_FSQL_IMPORTED_KEYS = 9,   /* CommandGetImportedKeys: catalog, db_schema, table */
  WG_FSQL_CROSS_REFERENCE = 10, /* CommandGetCrossReference: catalog, db_schema, table name the
                                   primary key's table; fk_catalog, fk_db_schema, fk_table the
                                   foreign key's */
  WG_FSQL_XDBC_TYPE_INFO = 11, /* CommandGetXdbcTypeInfo: data_type when has_data_type */
};

/* A command; zero it (or `= {0}`) and fill what its kind uses. NULL strings are not sent (for
 * the metadata commands: no filter). Borrowed: the call copies what it needs. */
struct wg_fsql_command {
  enum wg_fsql_kind kind;
  const char *sql;              /* STATEMENT */
  wg_fsql_txn *txn;             /* STATEMENT: run inside this transaction; NULL: none */
  wg_fsql_prepared *prepared;   /* PREPARED */
  const char *catalog;          /* metadata: see enum wg_fsql_kind */
  const char *db_schema;
  const char *table;
  const char *const *table_types; /* TABLES: NULL-terminated list of types; NULL: all types */
  bool include_schema;            /* TABLES: add each table's Arrow schema (table_schema column) */
  const char *fk_catalog;         /* CROSS_REFERENCE */
  const char *fk_db_schema;
  const char *fk_table;
  const uint32_t *info; /* SQL_INFO: n_info SqlInfo ids */
  size_t n_info;
  bool has_data_type;   /* XDBC_TYPE_INFO: only the type whose XDBC data_type is data_type */
  int32_t data_type;
};

/* GetFlightInfo of the command. *out (owned by the caller: wg_fsql_info_free) on success, NULL on
 * error. A bad statement is INVALID_ARGUMENT (as for wg_query); a command the server does not
 * know UNIMPLEMENTED. */
WG_API int wg_fsql_flight_info(wg_client *client, const struct wg_fsql_command *cmd,
                               wg_fsql_info **out, struct wg_status *status);
/* The result's Arrow schema as the FlightInfo gives it (owned by the caller on success);
 * total_records (may be NULL) -1 when unknown; n_endpoints (may be NULL) the endpoint count. */
WG_API int wg_fsql_info_schema(const wg_fsql_info *info, struct ArrowSchema *out,
                               int64_t *total_records, int64_t *n_endpoints,
                               struct wg_status *status);
/* DoGet of every endpoint's ticket, in order, as one stream (owned by the caller; the schema is
 * the first endpoint's, or the FlightInfo's when there is none). Errors as for wg_query. info
 * stays the caller's and may be freed before the stream. */
WG_API int wg_fsql_fetch(wg_client *client, const wg_fsql_info *info,
                         struct ArrowArrayStream *out, struct wg_status *status);
/* wg_fsql_flight_info then wg_fsql_fetch: the command's result as a stream. */
WG_API int wg_fsql_run(wg_client *client, const struct wg_fsql_command *cmd,
                       struct ArrowArrayStream *out, struct wg_status *status);
/* CancelFlightInfo of info's query; *cancel_status (may be NULL) gets the server's answer:
 * 1 cancelled, 2 cancelling, 3 not cancellable, 0 unspecified (Flight's CancelStatus). */
WG_API int wg_fsql_cancel(wg_client *client, const wg_fsql_info *info, int *cancel_status,
                          struct wg_status *status);
/* Frees a FlightInfo. NULL ok. */
WG_API void wg_fsql_info_free(wg_fsql_info *info);

/* Runs a statement that returns no rows (DoPut of CommandStatementUpdate, inside txn when not
 * NULL); *count (may be NULL) gets DoPutUpdateResult.record_count (-1 when the server does not
 * say). */
WG_API int wg_fsql_update(wg_client *client, const char *sql, wg_fsql_txn *txn, int64_t *count,
                          struct wg_status *status);

/* Prepares sql (ActionCreatePreparedStatementRequest, inside txn when not NULL). *out (owned by
 * the caller: wg_fsql_close) on success, NULL on error. */
WG_API int wg_fsql_prepare(wg_client *client, const char *sql, wg_fsql_txn *txn,
                           wg_fsql_prepared **out, struct wg_status *status);
/* Copies of the prepared statement's result schema and parameter schema (either pointer may be
 * NULL). A schema the server did not send comes back with release NULL. *is_update (may be NULL):
 * the server says the statement returns no rows (false when it does not say). */
WG_API int wg_fsql_prepared_schemas(const wg_fsql_prepared *prepared, struct ArrowSchema *dataset,
                                    struct ArrowSchema *parameters, bool *is_update,
                                    struct wg_status *status);
/* Binds parameters (DoPut of CommandPreparedStatementQuery with the batches of `params`: one row
 * per execution; several rows run the statement once per row). `params` is consumed, on success
 * and on error. A new handle the server answers with (DoPutPreparedStatementResult) replaces the
 * old one. Then wg_fsql_run with kind WG_FSQL_PREPARED runs the query. */
WG_API int wg_fsql_bind(wg_client *client, wg_fsql_prepared *prepared,
                        struct ArrowArrayStream *params, struct wg_status *status);
/* Runs a prepared statement that returns no rows (DoPut of CommandPreparedStatementUpdate), once
 * per row of `params` (NULL: once, without parameters; consumed otherwise); *count (may be NULL)
 * the total record count, -1 when the server does not say. */
WG_API int wg_fsql_prepared_update(wg_client *client, wg_fsql_prepared *prepared,
                                   struct ArrowArrayStream *params, int64_t *count,
                                   struct wg_status *status);
/* Closes the statement on the server (ActionClosePreparedStatementRequest) and frees it, also
 * when the server's answer is an error (returned). NULL ok (returns 0). */
WG_API int wg_fsql_close(wg_client *client, wg_fsql_prepared *prepared, struct wg_status *status);

/* Bulk ingest (CommandStatementIngest). The values of if_not_exist and if_exists are the
 * specification's TableDefinitionOptions; 0 leaves one out (UNSPECIFIED, which the specification
 * tells servers to refuse: set both, or neither to send no TableDefinitionOptions at all). */
enum {
  WG_FSQL_IF_NOT_EXIST_CREATE = 1, /* a missing table is created from the stream's schema */
  WG_FSQL_IF_NOT_EXIST_FAIL = 2,   /* a missing table is an error */
  WG_FSQL_IF_EXISTS_FAIL = 1,      /* an existing table is an error */
  WG_FSQL_IF_EXISTS_APPEND = 2,    /* the rows are appended */
  WG_FSQL_IF_EXISTS_REPLACE = 3,   /* the table is replaced by the stream's */
};
struct wg_fsql_ingest_options {
  int if_not_exist; /* WG_FSQL_IF_NOT_EXIST_*, 0: not sent */
  int if_exists;    /* WG_FSQL_IF_EXISTS_*, 0: not sent */
  const char *catalog;     /* NULL: not sent (the default catalog) */
  const char *schema_name; /* NULL: not sent (the default schema) */
  bool temporary;          /* a temporary table */
  wg_fsql_txn *txn;        /* NULL: its own transaction */
  const char *const *options; /* NULL, or NULL-terminated key, value pairs (the options map) */
};
/* Appends every batch of `in` to table (consumed, on success and on error); o may be NULL (all
 * defaults). *count (may be NULL) gets the server's record count (-1 when it does not say). */
WG_API int wg_fsql_ingest(wg_client *client, const char *table,
                          const struct wg_fsql_ingest_options *o, struct ArrowArrayStream *in,
                          int64_t *count, struct wg_status *status);

/* Begins a transaction (ActionBeginTransactionRequest). *out (owned by the caller: commit or
 * rollback end it) on success, NULL on error. */
WG_API int wg_fsql_begin(wg_client *client, wg_fsql_txn **out, struct wg_status *status);
/* Ends the transaction (ActionEndTransactionRequest, COMMIT or ROLLBACK) and frees txn, also when
 * the server's answer is an error (returned). */
WG_API int wg_fsql_commit(wg_client *client, wg_fsql_txn *txn, struct wg_status *status);
WG_API int wg_fsql_rollback(wg_client *client, wg_fsql_txn *txn, struct wg_status *status);

#ifdef __cplusplus
}
#endif

#endif
