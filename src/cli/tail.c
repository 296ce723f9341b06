/* wigeon: `wigeon tail TABLE`: follows a table's commits (the live tail, docs/tail.md) and prints
 * the rows as they arrive, batch by batch, with query's printers (wg_cli_printer). The start
 * marker is announced on stderr, so that stdout holds only rows. Ctrl-C: the signal handler sets
 * a flag, a watcher thread sees it and cancels the tail (wg_tail_cancel), whose read then ends
 * cleanly: exit 0. --count N stops after N rows, --timeout after a time (both exit 0). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

enum { MAX_COLUMNS = 1024 };

static void usage(FILE *f) {
  fprintf(f,
          "usage: wigeon tail TABLE [options]\n"
          "\n"
          "Follows TABLE (or SCHEMA.TABLE) live: prints the rows it holds now, then the rows of\n"
          "every put committed to it, as they commit, until Ctrl-C, --count or --timeout (each\n"
          "exits 0). Rows changed by SQL (INSERT, UPDATE, DELETE, COPY) are not delivered, only\n"
          "puts (DoPut, bulk ingest). When the snapshot has been printed, one line goes to\n"
          "stderr:\n"
          "  live: N rows in the snapshot, following from sequence S\n"
          "S is the table's commit sequence: --from S later resumes after it. Output goes to\n"
          "stdout and is flushed after each batch.\n"
          "\n"
          "options:\n"
          "  --server URI      the server (default: $WIGEON_SERVER, else " WG_CLI_DEFAULT_SERVER
          ")\n"
          "  --where SQL       only the rows for which this SQL expression is true (checked on\n"
          "                    the server when the tail starts: a bad one exits 2)\n"
          "  --columns A,B     only these columns (default: all)\n"
          "  --from WHERE      beginning (default: the rows there are, then every put), now\n"
          "                    (only puts committed from now on), or a sequence number S (the\n"
          "                    puts after S, while the server still keeps them)\n"
          "  -f, --format F    table (default; each batch its own table), csv (the header once),\n"
          "                    json or ndjson (one JSON object a line, as the stream never ends)\n"
          "  --count N         stop after N rows\n"
          "  --timeout S       stop after S (1.5, 10s, 2m); exits 0 once the snapshot is printed,\n"
          "                    2 if the snapshot was not complete by then\n"
          "  --max-rows N      table: rows shown of one batch before eliding its middle\n"
          "                    (default: 40)\n"
          "  --max-width N     table: characters shown of a value (default: 40)\n"
          "  --ascii           table: +-| instead of box drawing\n" WG_CLI_TLS_HELP
          "  -h, --help        this text\n"
          "\n"
          "exit codes: 0 ok (Ctrl-C, --count, --timeout), 1 usage error, 2 error from the server\n"
          "(no such table, bad --where, a sequence the server no longer keeps), 3 cannot\n"
          "connect\n");
}

struct tail_args {
  const char *server, *where, *columns, *from, *format, *timeout, *count, *max_rows, *max_width;
  bool ascii;
  const char *table;
  char *text;                        /* owned copy of TABLE and --columns, cut in place */
  const char *names[MAX_COLUMNS];   /* --columns */
  int n_names;
  int64_t max_count; /* 0: no --count */
  struct wg_cli_output out;
  struct wg_tail_options o;
};

/* --columns into a->names (cut in place in text). -1 to go on, else the usage error's code. */
static int parse_columns(const struct wg_cli_command *cmd, struct tail_args *a, char *text) {
  for (char *c = text; c != NULL;) {
    char *comma = strchr(c, ',');
    if (comma != NULL) *comma = '\0';
    while (*c == ' ')
      c++;
    size_t n = strlen(c);
    while (n > 0 && c[n - 1] == ' ')
      c[--n] = '\0';
    if (n == 0) return wg_cli_usage_error(cmd, "--columns wants names separated by commas");
    if (a->n_names >= MAX_COLUMNS)
      return wg_cli_usage_error(cmd, "--columns: at most %d columns", MAX_COLUMNS);
    a->names[a->n_names++] = c;
    c = comma != NULL ? comma + 1 : NULL;
  }
  a->o.columns = a->names;
  a->o.n_columns = a->n_names;
  return -1;
}

/* --from into a->o. -1 to go on, else the usage error's code. */
static int parse_from(const struct wg_cli_command *cmd, struct tail_args *a) {
  if (a->from == NULL || strcmp(a->from, "beginning") == 0 || strcmp(a->from, "now") == 0) {
    a->o.from = a->from;
    return -1;
  }
  int64_t seq = 0;
  if (a->from[0] == '-' || wg_cli_parse_int(a->from, &seq) != 0)
    return wg_cli_usage_error(cmd, "--from wants beginning, now or a sequence number, not '%s'",
                              a->from);
  a->o.from_sequence_set = true;
  a->o.from_sequence = (uint64_t)seq;
  return -1;
}

static int tail_parse(const struct wg_cli_command *cmd, int argc, char **argv,
                      struct tail_args *a) {
  const struct wg_cli_opt opts[] = {{"--server", NULL, &a->server, NULL},
                                    {"--where", NULL, &a->where, NULL},
                                    {"--columns", NULL, &a->columns, NULL},
                                    {"--from", NULL, &a->from, NULL},
                                    {"--format", "-f", &a->format, NULL},
                                    {"--timeout", NULL, &a->timeout, NULL},
                                    {"--count", NULL, &a->count, NULL},
                                    WG_CLI_TABLE_OPTS(&a->max_rows, &a->max_width, &a->ascii)};
  int rc = wg_cli_parse_one(cmd, argc, argv, opts, &a->table, "missing the TABLE to follow");
  if (rc >= 0) return rc;
  const char *f = a->format;
  if (strcmp(f, "table") != 0 && strcmp(f, "csv") != 0 && strcmp(f, "json") != 0 &&
      strcmp(f, "ndjson") != 0)
    return wg_cli_usage_error(cmd, "--format wants table, csv, json or ndjson, not '%s'", f);
  a->out = (struct wg_cli_output){.format = f, .ascii = a->ascii};
  if ((rc = wg_cli_output_limits(cmd, a->max_rows, a->max_width, &a->out)) >= 0) return rc;
  if (a->count != NULL &&
      (rc = wg_cli_opt_int(cmd, "--count", a->count, 1, INT64_MAX, &a->max_count)) >= 0)
    return rc;
  double timeout = 0;
  if (a->timeout != NULL && (rc = wg_cli_opt_seconds(cmd, "--timeout", a->timeout, &timeout)) >= 0)
    return rc;
  if (a->timeout != NULL && timeout < 0.001)
    return wg_cli_usage_error(cmd, "--timeout wants a duration of at least 1ms");
  a->o.timeout_ms = (int64_t)(timeout * 1000);
  size_t tn = strlen(a->table) + 1, cn = a->columns ? strlen(a->columns) + 1 : 0;
  if ((a->text = malloc(tn + cn)) == NULL) return wg_cli_usage_error(cmd, "out of memory");
  memcpy(a->text, a->table, tn);
  char *dot = strchr(a->text, '.');
  if (dot != NULL) *dot = '\0';
  a->o.schema_name = dot != NULL ? a->text : NULL;
  a->o.table = dot != NULL ? dot + 1 : a->text;
  if (a->o.table[0] == '\0' || (dot != NULL && a->text[0] == '\0'))
    return wg_cli_usage_error(cmd, "TABLE wants NAME or SCHEMA.NAME, not '%s'", a->table);
  if (a->columns != NULL) {
    memcpy(a->text + tn, a->columns, cn);
    if ((rc = parse_columns(cmd, a, a->text + tn)) >= 0) return rc;
  }
  a->o.where = a->where;
  return parse_from(cmd, a);
}

/* Ctrl-C: the handler only sets a flag; this thread turns it into a cancel of the tail. */
struct watcher {
  wg_tail_stream *t;
  atomic_bool done;
};

static void *watch_interrupt(void *arg) {
  struct watcher *w = arg;
  while (!atomic_load(&w->done)) {
    if (wg_cli_interrupted()) {
      wg_tail_cancel(w->t);
      break;
    }
    wg_cli_sleep(0.05);
  }
  return NULL;
}

/* Prints batches until the end, --count, or an error (in *st). *started: the marker was seen. */
static int follow(const struct tail_args *a, wg_tail_stream *t, struct wg_cli_printer *p,
                  struct wg_status *st, bool *started, struct wg_error *err) {
  int64_t rows = 0, snapshot = 0;
  for (;;) {
    struct ArrowArray b;
    struct wg_tail_info info;
    if (wg_tail_next(t, &b, &info, st) != 0 || b.release == NULL) return 0;
    if (info.start) {
      *started = true;
      char n[32];
      fprintf(stderr, "live: %s rows in the snapshot, following from sequence %" PRIu64 "\n",
              wg_cli_commas(snapshot, n, sizeof(n)), info.sequence);
      fflush(stderr);
      b.release(&b);
      continue;
    }
    if (info.snapshot) snapshot += b.length;
    int64_t printed = 0;
    int64_t room = a->max_count > 0 ? a->max_count - rows : INT64_MAX;
    int rc = wg_cli_printer_batch(p, wg_tail_schema(t), &b, room, &printed, err);
    if (rc != 0) return rc;
    rows += printed;
    if (a->max_count > 0 && rows >= a->max_count) return 0;
  }
}

/* Follows with a's options; returns the exit code. */
static int tail_run(struct wg_cli_conn *cx, struct tail_args *a) {
  struct wg_error err = {""};
  struct wg_cli_printer *p = NULL;
  int rc = wg_cli_printer_create(&p, &a->out, stdout, &err);
  if (rc != 0) {
    fprintf(stderr, "wigeon tail: %s\n", err.message);
    return WG_EXIT_SERVER;
  }
  wg_tail_stream *t = NULL;
  struct wg_status st;
  if (wg_tail_open(cx->client, &a->o, &t, &st) != 0) {
    wg_cli_printer_destroy(p);
    return wg_cli_conn_fail(cx, st.sys_errno, st.message);
  }
  wg_cli_catch_interrupt();
  struct watcher w = {.t = t};
  pthread_t th;
  bool watching = pthread_create(&th, NULL, watch_interrupt, &w) == 0;
  bool started = false;
  rc = follow(a, t, p, &st, &started, &err);
  atomic_store(&w.done, true);
  if (watching) pthread_join(th, NULL);
  wg_tail_close(t); /* cancels the call (--count): the server frees the subscriber */
  wg_cli_printer_destroy(p);
  if (rc != 0) {
    fprintf(stderr, "wigeon tail: %s\n", err.message);
    return WG_EXIT_SERVER;
  }
  if (st.code == WG_STATUS_DEADLINE_EXCEEDED && started) return 0; /* --timeout */
  if (st.code != 0) return wg_cli_conn_fail(cx, st.sys_errno, st.message);
  return 0;
}

int wg_cli_tail(int argc, char **argv) {
  static const struct wg_cli_command cmd = {"tail", usage};
  struct tail_args a = {.format = "table", .max_rows = "40", .max_width = "40"};
  int rc = tail_parse(&cmd, argc, argv, &a);
  struct wg_cli_conn cx;
  if (rc < 0 && (rc = wg_cli_conn_open(&cx, cmd.name, a.server)) == 0) {
    rc = tail_run(&cx, &a);
    wg_cli_conn_close(&cx);
  }
  free(a.text);
  return rc;
}
