/* wigeon: `wigeon put --table T FILE...`: appends CSV, Parquet, JSON/NDJSON or Arrow IPC files to
 * a table, one DoPut (one transaction) per file. CSV, Parquet and JSON are read by the
 * client-side DuckDB (read_csv, read_parquet, read_json_auto) and streamed chunk by chunk
 * (engine/arrow_duck.h), gathered into batches of --batch-rows; Arrow IPC files are mapped and
 * read by our own IPC reader. `-` is stdin, spooled to a temporary file first because DuckDB
 * wants a path. Memory stays bounded by a few batches whatever the file size. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arrow/array.h"
#include "arrow/concat.h"
#include "arrow/ipc.h"
#include "cli/cli.h"
#include "engine/arrow_duck.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: wigeon put --table T [options] FILE...\n"
          "\n"
          "Appends files to table T (created from the first file's columns if missing), one\n"
          "transaction per file. FILE '-' reads stdin.\n"
          "\n"
          "options:\n"
          "  --table T             the table (required)\n"
          "  --schema S            the table's schema (default: main)\n"
          "  --format F            csv, parquet, json (also NDJSON) or arrow (IPC stream or\n"
          "                        file); default: from the file name or its first bytes,\n"
          "                        csv for stdin\n"
          "  --read-options TEXT   extra options for DuckDB's reader, e.g. \"delim='|', "
          "header=false\"\n"
          "  --batch-rows N        rows per record batch sent (default: 65536)\n"
          "  --idempotency-key K   the put's key (FILE number i > 1 gets K#i): a server that\n"
          "                        committed a put with that key appends nothing for it again,\n"
          "                        so a run whose outcome is unknown can be repeated with the\n"
          "                        same key (default: a random key per run, printed on error)\n"
          "  --server URI          grpc://HOST:PORT (default: $WIGEON_SERVER, else %s)\n"
          WG_CLI_TLS_HELP
          "  -h, --help            this text\n"
          "\n"
          "On a terminal, a progress line on stderr. At the end, one summary line.\n"
          "exit codes: 0 ok, 1 usage error (or a FILE that cannot be opened), 2 error from the\n"
          "server or while reading a file, 3 cannot connect\n",
          WG_CLI_DEFAULT_SERVER);
}

enum format { FMT_CSV, FMT_PARQUET, FMT_JSON, FMT_ARROW };

static int parse_format(const char *s, enum format *out) {
  if (strcasecmp(s, "csv") == 0 || strcasecmp(s, "tsv") == 0)
    *out = FMT_CSV;
  else if (strcasecmp(s, "parquet") == 0)
    *out = FMT_PARQUET;
  else if (strcasecmp(s, "json") == 0 || strcasecmp(s, "ndjson") == 0 ||
           strcasecmp(s, "jsonl") == 0)
    *out = FMT_JSON;
  else if (strcasecmp(s, "arrow") == 0 || strcasecmp(s, "ipc") == 0 ||
           strcasecmp(s, "arrows") == 0 || strcasecmp(s, "feather") == 0)
    *out = FMT_ARROW;
  else
    return EINVAL;
  return 0;
}

/* From the extension, else the first bytes: PAR1, an IPC continuation or ARROW1, '{' or '['. */
static enum format detect_format(const char *path) {
  const char *dot = strrchr(path, '.');
  enum format f;
  if (dot != NULL && strchr(dot, '/') == NULL) {
    const char *ext = dot + 1;
    if (strcasecmp(ext, "gz") == 0 || strcasecmp(ext, "zst") == 0) { /* x.csv.gz */
      const char *p = dot;
      while (p > path && p[-1] != '.' && p[-1] != '/')
        p--;
      if (p > path && p[-1] == '.') {
        char inner[16];
        snprintf(inner, sizeof(inner), "%.*s", (int)(dot - p), p);
        if (parse_format(inner, &f) == 0) return f;
      }
    }
    if (parse_format(ext, &f) == 0) return f;
    if (strcasecmp(ext, "pq") == 0) return FMT_PARQUET;
    if (strcasecmp(ext, "txt") == 0) return FMT_CSV;
  }
  unsigned char head[8] = {0};
  FILE *fp = fopen(path, "rb");
  size_t n = fp ? fread(head, 1, sizeof(head), fp) : 0;
  if (fp) fclose(fp);
  if (n >= 4 && memcmp(head, "PAR1", 4) == 0) return FMT_PARQUET;
  if (n >= 6 && memcmp(head, "ARROW1", 6) == 0) return FMT_ARROW;
  if (n >= 4 && memcmp(head, "\xff\xff\xff\xff", 4) == 0) return FMT_ARROW;
  for (size_t i = 0; i < n; i++) {
    if (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' || head[i] == '\t') continue;
    if (head[i] == '{' || head[i] == '[') return FMT_JSON;
    break;
  }
  return FMT_CSV;
}

/* ---- the stream sent: DuckDB's chunks gathered into batches, counted for the progress ---- */

struct source {
  struct ArrowArrayStream inner;
  struct ArrowSchema schema;
  int64_t batch_rows;
  struct ArrowArray *parts;
  int64_t n_parts, cap_parts;
  bool ended;
  int status;
  struct wg_error error;
  /* progress of this file */
  struct wg_cli_progress *progress;
  int64_t rows, bytes;
  int64_t est_rows;   /* estimated rows of the file, -1 unknown */
  int64_t file_size;  /* bytes of this file */
  int64_t done_size;  /* bytes of the files before it */
  int64_t total_size; /* bytes of all files */
  bool by_bytes;      /* Arrow: the fraction comes from bytes read */
  int64_t rows_before, bytes_before;
};

static int source_fail(struct source *s, int rc, const char *what) {
  const char *m = s->inner.get_last_error ? s->inner.get_last_error(&s->inner) : NULL;
  s->status = wg_error_set(&s->error, rc, "%s%s", what, m ? m : "failed");
  return rc;
}

static int source_get_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  struct source *s = st->private_data;
  struct wg_error err;
  if (wg_schema_deep_copy(&s->schema, out, &err) != 0)
    return wg_error_set(&s->error, ENOMEM, "%s", err.message);
  return 0;
}

static void source_progress(struct source *s, bool force) {
  struct wg_cli_progress *p = s->progress;
  p->rows = s->rows_before + s->rows;
  p->bytes = s->bytes_before + s->bytes;
  double file_fraction = -1;
  if (s->by_bytes && s->file_size > 0)
    file_fraction = (double)s->bytes / (double)s->file_size;
  else if (s->est_rows > 0)
    file_fraction = (double)s->rows / (double)s->est_rows;
  if (file_fraction >= 0 && s->total_size > 0) {
    if (file_fraction > 0.99) file_fraction = 0.99; /* estimates: never claim done early */
    p->fraction =
        ((double)s->done_size + file_fraction * (double)s->file_size) / (double)s->total_size;
  }
  wg_cli_progress_draw(p, force);
}

static int source_get_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  struct source *s = st->private_data;
  out->release = NULL;
  if (s->status != 0) return s->status;
  if (wg_cli_interrupted()) /* Ctrl-C: the put is cancelled (nothing kept), temp files go */
    return s->status = wg_error_set(&s->error, ECANCELED, "interrupted");
  int64_t rows = 0;
  while (!s->ended && rows < s->batch_rows) {
    if (s->n_parts == s->cap_parts) {
      int64_t cap = s->cap_parts ? s->cap_parts * 2 : 32;
      struct ArrowArray *p = realloc(s->parts, (size_t)cap * sizeof(*p));
      if (p == NULL) return s->status = wg_error_set(&s->error, ENOMEM, "out of memory");
      s->parts = p;
      s->cap_parts = cap;
    }
    struct ArrowArray *a = &s->parts[s->n_parts];
    int rc = s->inner.get_next(&s->inner, a);
    if (rc != 0) return source_fail(s, rc, "");
    if (a->release == NULL) {
      s->ended = true;
      break;
    }
    if (a->length == 0) {
      wg_array_release(a);
      continue;
    }
    rows += a->length;
    s->n_parts++;
  }
  if (s->n_parts == 0) return 0; /* the end */
  if (s->n_parts == 1) {
    wg_array_move(&s->parts[0], out);
  } else {
    struct wg_error err;
    int rc = wg_arrow_concat(&s->schema, s->parts, s->n_parts, out, &err);
    if (rc != 0) {
      s->n_parts = 0;
      return s->status = wg_error_set(&s->error, rc, "gathering batches: %s", err.message);
    }
  }
  s->n_parts = 0;
  s->rows += out->length;
  s->bytes += wg_cli_array_bytes(&s->schema, out);
  source_progress(s, false);
  return 0;
}

static const char *source_last_error(struct ArrowArrayStream *st) {
  struct source *s = st->private_data;
  return s->status != 0 ? s->error.message : NULL;
}

static void source_release(struct ArrowArrayStream *st) {
  struct source *s = st->private_data;
  for (int64_t i = 0; i < s->n_parts; i++)
    wg_array_release(&s->parts[i]);
  free(s->parts);
  wg_schema_release(&s->schema);
  wg_stream_release(&s->inner);
  st->release = NULL;
  /* `s` itself belongs to the caller, who reads the counters after the put. */
}

/* ---- opening a file as a stream ---- */

struct mapping {
  void *base;
  size_t size;
};

static void unmap(void *ctx) {
  struct mapping *m = ctx;
  munmap(m->base, m->size);
  free(m);
}

/* Maps an Arrow IPC stream (or file: its stream part follows the 8-byte "ARROW1" header). */
static int open_arrow(const char *path, struct ArrowArrayStream *out, struct wg_error *err) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return wg_error_set(err, EIO, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size == 0) {
    close(fd);
    return wg_error_set(err, EPROTO, "%s: empty or unreadable", path);
  }
  struct mapping *m = malloc(sizeof(*m));
  void *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (base == MAP_FAILED || m == NULL) {
    if (base != MAP_FAILED) munmap(base, (size_t)st.st_size);
    free(m);
    return wg_error_set(err, ENOMEM, "cannot map %s", path);
  }
  m->base = base;
  m->size = (size_t)st.st_size;
  int64_t skip = st.st_size >= 8 && memcmp(base, "ARROW1", 6) == 0 ? 8 : 0;
  struct wg_shared *data = wg_shared_wrap((uint8_t *)base + skip, st.st_size - skip, unmap, m);
  if (data == NULL) {
    unmap(m);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  int rc = wg_ipc_stream_reader_init(out, data, NULL);
  wg_shared_unref(data);
  if (rc != 0) return wg_error_set(err, rc, "cannot read %s as Arrow IPC", path);
  return 0;
}

static int open_duckdb(duckdb_connection conn, const char *path, enum format f,
                       const char *read_options, struct ArrowArrayStream *out,
                       struct wg_error *err) {
  struct wg_buf sql;
  wg_buf_init(&sql);
  const char *fn = f == FMT_PARQUET ? "read_parquet("
                   : f == FMT_JSON  ? "read_json_auto("
                                    : "read_csv(";
  wg_cli_buf_str(&sql, "SELECT * FROM ");
  wg_cli_buf_str(&sql, fn);
  wg_sql_append_literal(&sql, path);
  if (read_options != NULL && read_options[0] != '\0') {
    wg_cli_buf_str(&sql, ", ");
    wg_cli_buf_str(&sql, read_options);
  }
  wg_cli_buf_str(&sql, ")");
  int rc = wg_engine_query_arrow_stream(conn, wg_cli_buf_cstr(&sql), out, err);
  wg_buf_reset(&sql);
  return rc;
}

/* Rows of a Parquet file from its metadata, or an estimate for text files from the newlines in
 * their first MiB; -1 when unknown (compressed text, Arrow). */
static int64_t estimate_rows(duckdb_connection conn, const char *path, enum format f,
                             int64_t size) {
  if (f == FMT_PARQUET) {
    struct wg_buf sql;
    wg_buf_init(&sql);
    wg_cli_buf_str(&sql, "SELECT sum(num_rows)::BIGINT FROM parquet_file_metadata(");
    wg_sql_append_literal(&sql, path);
    wg_cli_buf_str(&sql, ")");
    duckdb_result r;
    int64_t n = -1;
    if (duckdb_query(conn, wg_cli_buf_cstr(&sql), &r) == DuckDBSuccess && duckdb_row_count(&r) > 0)
      n = duckdb_value_int64(&r, 0, 0);
    duckdb_destroy_result(&r);
    wg_buf_reset(&sql);
    return n;
  }
  if (f == FMT_ARROW) return -1;
  const char *dot = strrchr(path, '.');
  if (dot && (strcmp(dot, ".gz") == 0 || strcmp(dot, ".zst") == 0)) return -1;
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) return -1;
  static char sample[1 << 20];
  size_t n = fread(sample, 1, sizeof(sample), fp);
  fclose(fp);
  int64_t lines = 0;
  for (size_t i = 0; i < n; i++)
    lines += sample[i] == '\n';
  if (n == 0 || lines == 0) return -1;
  if ((int64_t)n >= size) return f == FMT_CSV ? lines - 1 : lines;
  return (int64_t)((double)lines * (double)size / (double)n);
}

/* Copies stdin into a temporary file; *path gets its name (the caller unlinks it). */
static int spool_stdin(char *path, size_t size, struct wg_error *err) {
  const char *dir = getenv("TMPDIR");
  snprintf(path, size, "%s/wigeon-put-XXXXXX", dir && dir[0] ? dir : "/tmp");
  int fd = mkstemp(path);
  if (fd < 0) return wg_error_set(err, EIO, "cannot create a temporary file: %s", strerror(errno));
  static char chunk[1 << 16];
  ssize_t n;
  int rc = 0;
  for (;;) {
    n = read(STDIN_FILENO, chunk, sizeof(chunk));
    if (wg_cli_interrupted()) {
      rc = wg_error_set(err, ECANCELED, "interrupted while reading stdin");
      break;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t o = 0; o < n && rc == 0;) {
      ssize_t w = write(fd, chunk + o, (size_t)(n - o));
      if (w <= 0)
        rc = wg_error_set(err, EIO, "spooling stdin to %s: %s", path, strerror(errno));
      else
        o += w;
    }
    if (rc != 0) break;
  }
  if (n < 0 && rc == 0) rc = wg_error_set(err, EIO, "reading stdin: %s", strerror(errno));
  close(fd);
  return rc;
}

/* What the command line asked for. */
struct put_args {
  const char *server, *table, *schema_name, *format, *read_options, *key;
  const char **files; /* the FILEs, "-" for stdin; owned (calloc) */
  int n_files;
  int64_t batch_rows;
  enum format forced; /* --format, when given */
  int stdin_uses;
};

/* Parses and checks the arguments; returns -1 to go on, else an exit code. */
static int put_parse(const struct wg_cli_command *cmd, int argc, char **argv,
                     struct put_args *a) {
  const char *batch_rows_s = "65536";
  const struct wg_cli_opt opts[] = {{"--server", NULL, &a->server, NULL},
                                    {"--table", "-t", &a->table, NULL},
                                    {"--schema", NULL, &a->schema_name, NULL},
                                    {"--format", "-f", &a->format, NULL},
                                    {"--read-options", NULL, &a->read_options, NULL},
                                    {"--batch-rows", NULL, &batch_rows_s, NULL},
                                    {"--idempotency-key", NULL, &a->key, NULL},
                                    {NULL, NULL, NULL, NULL}};
  enum { MAX_FILES = 4096 };
  a->files = calloc(MAX_FILES, sizeof(char *));
  if (a->files == NULL) return WG_EXIT_SERVER;
  int rc = wg_cli_parse(cmd, argc, argv, opts, a->files, MAX_FILES, &a->n_files);
  a->forced = FMT_CSV;
  if (rc < 0 && a->table == NULL) rc = wg_cli_usage_error(cmd, "missing --table");
  if (rc < 0 && a->n_files == 0) rc = wg_cli_usage_error(cmd, "missing the FILE(s) to put");
  if (rc < 0 && a->format != NULL && parse_format(a->format, &a->forced) != 0)
    rc = wg_cli_usage_error(cmd, "unknown format '%s'", a->format);
  if (rc < 0)
    rc = wg_cli_opt_int(cmd, "--batch-rows", batch_rows_s, 1, 100000000, &a->batch_rows);
  if (rc < 0 && a->key != NULL && (a->key[0] == '\0' || strlen(a->key) > 240))
    rc = wg_cli_usage_error(cmd, "--idempotency-key wants 1 to 240 bytes");
  for (int i = 0; rc < 0 && i < a->n_files; i++) {
    if (strcmp(a->files[i], "-") == 0) {
      if (++a->stdin_uses > 1) rc = wg_cli_usage_error(cmd, "stdin ('-') can be read only once");
      continue;
    }
    struct stat st;
    if (stat(a->files[i], &st) != 0 || !S_ISREG(st.st_mode)) {
      fprintf(stderr, "wigeon put: cannot read %s: %s\n", a->files[i],
              errno ? strerror(errno) : "not a file");
      rc = WG_EXIT_USAGE;
    }
  }
  return rc;
}

/* The state of a run over the files. */
struct put_run {
  const struct put_args *a;
  struct wg_cli_duck duck;
  struct wg_cli_conn cx;
  struct wg_cli_progress progress;
  const char **paths; /* files[i], or the spooled copy of stdin */
  int64_t *sizes;
  int64_t total_size, total_rows, total_bytes, done_size;
  char run_key[300]; /* file i > 0 is put with run_key#(i+1) */
};

/* Puts file i: 0, or an exit code after printing why. */
static int put_file(struct put_run *r, int i) {
  const struct put_args *a = r->a;
  const char *file = a->files[i];
  struct wg_error err = {""};
  bool is_stdin = strcmp(file, "-") == 0;
  enum format f = a->format != NULL ? a->forced : is_stdin ? FMT_CSV : detect_format(r->paths[i]);
  /* Before the reader starts: a query on the connection would end its streaming result. */
  int64_t est_rows = estimate_rows(r->duck.conn, r->paths[i], f, r->sizes[i]);
  struct ArrowArrayStream in;
  int status = f == FMT_ARROW
                   ? open_arrow(r->paths[i], &in, &err)
                   : open_duckdb(r->duck.conn, r->paths[i], f, a->read_options, &in, &err);
  if (status != 0) {
    wg_cli_progress_clear(&r->progress);
    fprintf(stderr, "wigeon put: %s: %s\n", file, err.message);
    return WG_EXIT_SERVER;
  }
  struct source src = {.inner = in,
                       .batch_rows = a->batch_rows,
                       .progress = &r->progress,
                       .file_size = r->sizes[i],
                       .done_size = r->done_size,
                       .total_size = r->total_size,
                       .by_bytes = f == FMT_ARROW,
                       .rows_before = r->total_rows,
                       .bytes_before = r->total_bytes};
  src.est_rows = est_rows;
  in.release = NULL;
  struct ArrowArrayStream wrapped = {source_get_schema, source_get_next, source_last_error,
                                     source_release, &src};
  if (src.inner.get_schema(&src.inner, &src.schema) != 0) {
    const char *m = src.inner.get_last_error(&src.inner);
    wg_cli_progress_clear(&r->progress);
    fprintf(stderr, "wigeon put: %s: %s\n", file, m ? m : "cannot read its schema");
    src.schema.release = NULL;
    wrapped.release(&wrapped);
    return WG_EXIT_SERVER;
  }
  int64_t acked = 0;
  char file_key[320];
  if (i == 0)
    snprintf(file_key, sizeof(file_key), "%s", r->run_key);
  else
    snprintf(file_key, sizeof(file_key), "%s#%d", r->run_key, i + 1);
  struct wg_status ps;
  wg_put_idempotent(r->cx.client, a->schema_name, a->table, file_key, &wrapped, NULL, NULL,
                    &acked, &ps);
  status = wg_cli_status(&ps, &err);
  source_progress(&src, true);
  wg_cli_progress_clear(&r->progress);
  if (status != 0) {
    if (src.status != 0) { /* the file, not the server */
      fprintf(stderr, "wigeon put: %s: %s\n", file, src.error.message);
      return WG_EXIT_SERVER;
    }
    wg_error_prefix(&err, status, "%s", file);
    int rc = wg_cli_conn_fail(&r->cx, status, err.message);
    fprintf(stderr,
            "wigeon put: if unsure whether %s was committed, run again with "
            "--idempotency-key %s: what was committed is not appended twice\n",
            file, r->run_key);
    return rc;
  }
  r->total_rows += acked;
  r->total_bytes += src.bytes;
  r->done_size += r->sizes[i];
  return 0;
}

/* Spools stdin if used, sizes the files, opens the client-side DuckDB and the connection. */
static int put_open(struct put_run *r, char *spooled, size_t spooled_size) {
  const struct put_args *a = r->a;
  struct wg_error err = {""};
  r->sizes = calloc((size_t)a->n_files, sizeof(int64_t));
  r->paths = calloc((size_t)a->n_files, sizeof(char *));
  int status = r->sizes && r->paths ? 0 : wg_error_set(&err, ENOMEM, "out of memory");
  wg_cli_catch_interrupt_eintr();
  if (status == 0 && a->stdin_uses > 0) status = spool_stdin(spooled, spooled_size, &err);
  for (int i = 0; status == 0 && i < a->n_files; i++) {
    r->paths[i] = strcmp(a->files[i], "-") == 0 ? spooled : a->files[i];
    struct stat st;
    r->sizes[i] = stat(r->paths[i], &st) == 0 ? (int64_t)st.st_size : 0;
    r->total_size += r->sizes[i];
  }
  if (status == 0) status = wg_cli_duck_open(&r->duck, &err);
  if (status != 0) {
    fprintf(stderr, "wigeon put: %s\n", err.message);
    return WG_EXIT_SERVER;
  }
  return wg_cli_conn_open(&r->cx, "put", a->server);
}

int wg_cli_put(int argc, char **argv) {
  static const struct wg_cli_command cmd = {"put", usage};
  struct put_args a = {0};
  int rc = put_parse(&cmd, argc, argv, &a);
  if (rc >= 0) {
    free(a.files);
    return rc;
  }
  char spooled[4096] = "";
  struct put_run r = {.a = &a};
  rc = put_open(&r, spooled, sizeof(spooled));
  if (rc == 0) {
    wg_cli_progress_init(&r.progress);
    if (a.key != NULL)
      snprintf(r.run_key, sizeof(r.run_key), "%s", a.key);
    else
      wg_cli_random_key("put", r.run_key, sizeof(r.run_key));
    double t0 = wg_cli_now();
    for (int i = 0; rc == 0 && i < a.n_files; i++)
      rc = put_file(&r, i);
    if (rc == 0) {
      double secs = wg_cli_now() - t0;
      char n1[32], n2[32];
      int64_t rate = secs > 0 ? (int64_t)((double)r.total_rows / secs) : r.total_rows;
      printf("put %s rows into %s%s%s in %.1f s (%s rows/s)\n",
             wg_cli_commas(r.total_rows, n1, sizeof(n1)), a.schema_name ? a.schema_name : "",
             a.schema_name ? "." : "", a.table, secs, wg_cli_commas(rate, n2, sizeof(n2)));
    }
  }
  wg_cli_conn_close(&r.cx);
  wg_cli_duck_close(&r.duck);
  if (spooled[0] != '\0') unlink(spooled);
  free(r.sizes);
  free(r.paths);
  free(a.files);
  return rc;
}
