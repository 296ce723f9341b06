/* wigeon: the subcommands of the `wigeon` command and what they share: option parsing, the
 * connection to the server and the mapping of errors to exit codes, a client-side DuckDB that
 * reads and writes files and renders values, terminal progress, and the load generator. Only
 * main() and the subcommands' entry points decide exit codes; helpers return status codes. */
#ifndef WG_CLI_CLI_H
#define WG_CLI_CLI_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <duckdb.h>

#include "arrow/abi.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/sql.h" /* the one SQL quoting: wg_sql_append_ident, _literal */
#include "wigeon.h"

/* Exit codes: 0 ok, 1 usage error, 2 error from the server (or while reading or writing data),
 * 3 cannot connect. */
#define WG_EXIT_USAGE 1
#define WG_EXIT_SERVER 2
#define WG_EXIT_CONNECT 3

#define WG_CLI_DEFAULT_SERVER "grpc://127.0.0.1:8815"

/* Parses a whole decimal integer; 0 or EINVAL. */
int wg_cli_parse_int(const char *s, int64_t *out);

/* Subcommands: argv holds the arguments after the subcommand's name; each returns an exit code. */
int wg_cli_serve(int argc, char **argv);
int wg_cli_query(int argc, char **argv);
int wg_cli_put(int argc, char **argv);
int wg_cli_load(int argc, char **argv);
int wg_cli_watch(int argc, char **argv);
int wg_cli_tail(int argc, char **argv);
int wg_cli_demo(int argc, char **argv);
int wg_cli_tables(int argc, char **argv);
int wg_cli_schema(int argc, char **argv);
int wg_cli_actions(int argc, char **argv);
int wg_cli_stats(int argc, char **argv);
int wg_cli_passwd(int argc, char **argv);
/* A password from the terminal without echo (prompt on stderr), or the first line of stdin when
 * it is not a terminal: 0, or ENODATA/errno (passwd.c). */
int wg_cli_read_password(const char *prompt, char *buf, size_t size);

/* ---------------------------------------------------------------------------------------------
 * Options (common.c) */

struct wg_cli_opt {
  const char *name;       /* "--server" */
  const char *short_name; /* "-o", or NULL */
  const char **value;     /* an option with a value stores it here (the argv string) */
  bool *flag;             /* a flag without a value sets this */
};

struct wg_cli_command {
  const char *name;       /* "query", for messages */
  void (*usage)(FILE *f); /* the command's --help text */
};

/* The client flags wg_cli_parse adds to every command whose options include --server (common.c):
 * TLS and login; for the commands' --help. */
#define WG_CLI_TLS_HELP                                                                          \
  "  --tls-ca FILE     grpc+tls://: the CA certificates (PEM) the server's must chain to\n"      \
  "                    (default: the system's)\n"                                              \
  "  --tls-cert FILE   grpc+tls://: a client certificate (PEM) for mutual TLS, with\n"          \
  "  --tls-key FILE    its private key (PEM)\n"                                               \
  "  --user NAME       log in as NAME (password from WIGEON_PASSWORD, else asked on the\n"     \
  "                    terminal); the server's bearer token is used from then on\n"            \
  "  --token TOKEN     send this bearer token instead\n"

/* Parses argv: options from `opts` (as "--name value", "--name=value" or "-o value"), -h/--help,
 * "--" ending options, and up to max_pos positional arguments ("-" is positional) into pos.
 * Returns -1 to go on, 0 after printing --help to stdout, or WG_EXIT_USAGE after printing the
 * problem and the usage to stderr. */
int wg_cli_parse(const struct wg_cli_command *cmd, int argc, char **argv,
                 const struct wg_cli_opt *opts, const char **pos, int max_pos, int *n_pos);
/* wg_cli_parse for a command that takes exactly one positional argument, into *arg; without it,
 * the usage error `missing`. Same returns. */
int wg_cli_parse_one(const struct wg_cli_command *cmd, int argc, char **argv,
                     const struct wg_cli_opt *opts, const char **arg, const char *missing);
/* Prints "wigeon CMD: message" and the usage to stderr; returns WG_EXIT_USAGE. */
int wg_cli_usage_error(const struct wg_cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A whole number in [min, max] for option `name`, or a usage error (WG_EXIT_USAGE; else -1). */
int wg_cli_opt_int(const struct wg_cli_command *cmd, const char *name, const char *value,
                   int64_t min, int64_t max, int64_t *out);
/* A duration: "1.5", "2s", "500ms", "3m", "1h" (seconds unless a unit is given). */
int wg_cli_opt_seconds(const struct wg_cli_command *cmd, const char *name, const char *value,
                       double *out);

/* ---------------------------------------------------------------------------------------------
 * The server connection and exit codes (common.c) */

struct wg_cli_conn {
  const char *cmd; /* command name for messages */
  char uri[512];   /* grpc://host:port, as shown in messages */
  struct wg_client *client;
};

/* --server, else $WIGEON_SERVER, else grpc://127.0.0.1:8815. */
const char *wg_cli_server_uri(const char *flag);
/* Creates the client (connects lazily). Returns 0 or an exit code after printing why. */
int wg_cli_conn_open(struct wg_cli_conn *cx, const char *cmd, const char *server_flag);
void wg_cli_conn_close(struct wg_cli_conn *cx);
/* Prints the failure of a call ("cannot connect to URI: ..." for ECONNREFUSED) and returns the
 * exit code for status rc: WG_EXIT_CONNECT or WG_EXIT_SERVER. */
int wg_cli_conn_fail(const struct wg_cli_conn *cx, int rc, const char *message);
int wg_cli_exit_code(int rc);
/* The CLI's edge with wigeon.h, whose calls fill a struct wg_status: its errno-style value
 * (sys_errno, 0 = OK) is returned and its message copied into err (may be NULL). */
int wg_cli_status(const struct wg_status *st, struct wg_error *err);
/* The errno-style value of the failure of a stream from wg_query (wg_stream_status), 0 if none. */
int wg_cli_stream_errno(struct ArrowArrayStream *stream);

/* ---------------------------------------------------------------------------------------------
 * Small helpers (common.c) */

double wg_cli_now(void); /* monotonic seconds */
void wg_cli_sleep(double seconds);
/* 1234567 -> "1,234,567" into buf. Returns buf. */
const char *wg_cli_commas(int64_t n, char *buf, size_t size);
/* delta / seconds as a whole number with commas ("12,345"), for the rows/s of a progress line. */
const char *wg_cli_rate(int64_t delta, double seconds, char *buf, size_t size);
/* SIGINT (and SIGTERM) set a flag instead of ending the process. */
void wg_cli_catch_interrupt(void);
/* The same, without SA_RESTART: a blocking read returns EINTR so that the caller can clean up. */
void wg_cli_catch_interrupt_eintr(void);
bool wg_cli_interrupted(void);
int wg_cli_buf_str(struct wg_buf *b, const char *s);
/* Terminates b with NUL (not counted in size) and returns its text. */
const char *wg_cli_buf_cstr(struct wg_buf *b);
/* Arrow format string as a readable type ("int64", "timestamp[us, UTC]", "list<utf8>"). */
void wg_cli_arrow_type_name(const struct ArrowSchema *s, char *buf, size_t size);
/* Bytes of an array's buffers (approximate for nested and sliced arrays), for MB counters. */
int64_t wg_cli_array_bytes(const struct ArrowSchema *s, const struct ArrowArray *a);
/* Removes a directory and the files in it (one level). */
void wg_cli_rmdir(const char *dir);

/* ---------------------------------------------------------------------------------------------
 * Client-side DuckDB (duck.c): the user's own in-memory database, with file access. */

struct wg_cli_duck {
  duckdb_database db;
  duckdb_connection conn;
};
int wg_cli_duck_open(struct wg_cli_duck *d, struct wg_error *err);
void wg_cli_duck_close(struct wg_cli_duck *d);

/* An ArrowArrayStream registered with duckdb_arrow_scan as a view, to be scanned once. The view
 * remembers the stream's own failure so that it, not DuckDB's wrapping, is reported. */
struct wg_cli_view {
  char name[64];
  duckdb_connection conn;
  struct ArrowArrayStream lent;  /* what DuckDB sees; must live as long as the view */
  struct ArrowArrayStream inner; /* the caller's stream, owned */
  struct ArrowSchema schema;     /* from inner.get_schema; DuckDB gets borrowed views of it */
  int64_t rows;
  int inner_status;
  struct wg_error inner_error;
  bool registered;
};
/* Takes `stream` (released on error too) and registers it. Caller frees with _destroy. */
int wg_cli_view_create(struct wg_cli_view **out, duckdb_connection conn,
                       struct ArrowArrayStream *stream, struct wg_error *err);
/* Drops the view and releases the stream. NULL ok. */
void wg_cli_view_destroy(struct wg_cli_view *v);
/* After a DuckDB failure over the view: the stream's status and message if it failed, else rc. */
int wg_cli_view_error(struct wg_cli_view *v, int rc, struct wg_error *err);

/* Rows as text: every value cast by DuckDB to VARCHAR (TEXT) or to JSON text (JSON). */
enum wg_cli_cast { WG_CLI_CAST_TEXT = 0, WG_CLI_CAST_JSON = 1 };
struct wg_cli_cell {
  const char *data; /* not NUL-terminated */
  uint32_t len;
  bool null;
};
struct wg_cli_rows_sink {
  /* Once, before the rows: column names (from the Arrow schema) and DuckDB type names. */
  int (*begin)(void *ctx, int64_t n_cols, char **names, char **types);
  /* Every row: n_cols cells, valid for the call only. Non-zero stops the read. */
  int (*row)(void *ctx, const struct wg_cli_cell *cells);
  void *ctx;
};
/* Reads `stream` (taken, released on return) through the client-side DuckDB and feeds the sink
 * chunk by chunk: memory stays bounded whatever the result size. *rows gets the rows read.
 * Returns 0 or a status code (the stream's own, e.g. a server error, when it failed). */
int wg_cli_rows_read(duckdb_connection conn, struct ArrowArrayStream *stream, enum wg_cli_cast cast,
                     const struct wg_cli_rows_sink *sink, int64_t *rows, struct wg_error *err);

/* ---------------------------------------------------------------------------------------------
 * Query output (query.c), shared with watch */

struct wg_cli_output {
  const char *format; /* table (default), csv, json, ndjson, arrow, parquet */
  const char *path;   /* NULL: stdout */
  int64_t max_rows;   /* table: rows shown before eliding the middle */
  int64_t max_width;  /* table: characters per value */
  bool ascii;         /* table: +-| instead of box drawing */
};
/* Runs sql on the server and writes its result to o->path, or to `out` when o->path is NULL
 * (the output file is opened only once the server has answered with a schema). Returns 0 or a
 * status code (ECONNREFUSED: cannot connect), the message in err; *rows gets the rows written. */
int wg_cli_query_write(struct wg_client *client, const char *sql, const struct wg_cli_output *o,
                       FILE *out, int64_t *rows, struct wg_error *err);
/* The table output's options, ending an options list (query, watch); then wg_cli_output_limits. */
#define WG_CLI_TABLE_OPTS(max_rows, max_width, ascii)                                              \
  {"--max-rows", NULL, (max_rows), NULL}, {"--max-width", NULL, (max_width), NULL},                \
      {"--ascii", NULL, NULL, (ascii)}, {NULL, NULL, NULL, NULL}
/* --max-rows and --max-width of the table output into o (query, watch): -1 to go on, else the
 * usage error's exit code. */
int wg_cli_output_limits(const struct wg_cli_command *cmd, const char *max_rows,
                         const char *max_width, struct wg_cli_output *o);
/* Whether a format name is known. */
bool wg_cli_format_known(const char *format);
/* Rows printed batch by batch as they arrive (wigeon tail), with query's printers: table (each
 * batch its own box, so rows show as they come), csv (the header once), json and ndjson (one
 * object a line: an endless stream cannot be one JSON array). */
struct wg_cli_printer;
/* o->format table, csv, json or ndjson (else EINVAL); f borrowed. *out: wg_cli_printer_destroy. */
int wg_cli_printer_create(struct wg_cli_printer **out, const struct wg_cli_output *o, FILE *f,
                          struct wg_error *err);
/* Prints at most max_rows rows of batch (taken: released on every path; schema borrowed) and
 * flushes; *printed gets how many. 0 or a status code (err). */
int wg_cli_printer_batch(struct wg_cli_printer *p, const struct ArrowSchema *schema,
                         struct ArrowArray *batch, int64_t max_rows, int64_t *printed,
                         struct wg_error *err);
/* Ends the output and frees the printer. NULL ok. */
void wg_cli_printer_destroy(struct wg_cli_printer *p);

/* ---------------------------------------------------------------------------------------------
 * Progress on a terminal (progress.c): one line on stderr, redrawn at most 10 times a second. */

struct wg_cli_progress {
  bool enabled; /* isatty(stderr) */
  double start, last_draw;
  int64_t rows, bytes;
  double fraction; /* 0..1 when the total is known, else < 0 */
  bool drawn;
};
void wg_cli_progress_init(struct wg_cli_progress *p);
/* Redraws when due (or when force). */
void wg_cli_progress_draw(struct wg_cli_progress *p, bool force);
/* Erases the line. */
void wg_cli_progress_clear(struct wg_cli_progress *p);

/* ---------------------------------------------------------------------------------------------
 * The load generator (load.c), shared with demo: writers putting random seed-shaped batches. */

enum wg_cli_shape { WG_CLI_SHAPE_EVENTS = 0, WG_CLI_SHAPE_KV = 1 };

/* A fresh idempotency key: prefix, '-', 32 hex digits of the OS's randomness. */
void wg_cli_random_key(const char *prefix, char *out, size_t size);

struct wg_cli_loader {
  /* set by the caller */
  struct wg_client *client;
  const char *schema_name; /* may be NULL */
  const char *table;
  enum wg_cli_shape shape;
  int64_t rows;    /* per batch */
  int64_t batches; /* per writer; 0 = until stopped */
  int64_t batches_per_put;
  int writers;
  /* state */
  pthread_t *threads;
  int started;
  atomic_bool stop;
  atomic_llong rows_done, batches_done, next_batch_id, next_id;
  char run_key[48];     /* each put's idempotency key is run_key-WRITER-BATCH */
  pthread_mutex_t lock; /* guards the first error */
  int status;
  struct wg_error error;
};
/* Starts the writers. Returns 0 or a status code (err). */
int wg_cli_loader_start(struct wg_cli_loader *l, struct wg_error *err);
/* Whether every writer has finished (batches reached, stopped or failed). */
bool wg_cli_loader_done(struct wg_cli_loader *l);
/* Asks the writers to stop after their current put, waits for them and frees the threads.
 * Returns the first writer's error status (0 if none), its message in l->error. */
int wg_cli_loader_join(struct wg_cli_loader *l);

#endif
