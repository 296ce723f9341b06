/* wigeon: end-to-end server benchmark. Every figure is measured twice in the same run: through a
 * real `wigeon serve` child process (fork/exec of the binary next to this one, 127.0.0.1, port 0)
 * driven by the client library, and in-process on DuckDB's C API doing the same work (appender +
 * duckdb_data_chunk_from_arrow for writes, wg_engine_query_open for reads). The ratio is the
 * result. Figures: ingest (1/4/16 writers, 1k/64k-row batches), query (DoGet of a seed-shaped table
 * and of four BIGINT columns, with the server's RSS), small puts (group commit), mixed (writers
 * plus readers: reader latency), and a probe of whether catalog work on one connection waits for
 * another connection's COMMIT. Prints one parseable "bench ..." line per figure, then a table.
 * Not a test: asserts nothing. Usage: bench_server [--quick] [--only NAME] [--perf DIR]
 * Environment: WG_BENCH_SERVE_ARGS adds `wigeon serve` options to every server child;
 * WG_PERF_CALLGRAPH sets perf's --call-graph (default fp; "dwarf,32768" for DuckDB's frames). */
#define _GNU_SOURCE /* nftw */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <math.h> /* NAN, isnan: macros, no libm */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <duckdb.h>

#include "arrow/array.h"
#include "common/buf.h"
#include "common/error.h"
#include "engine/engine.h"
#include "wigeon.h"

/* ---------------------------------------------------------------------------------------------
 * Settings and small helpers */

struct settings {
  bool quick;
  const char *only;     /* run only this figure (ingest, query, small, mixed, probe, tail) */
  const char *perf_dir; /* record the server child of every figure with perf into this folder */
  int64_t ingest_puts;  /* puts per ingest configuration (shared by the writers) */
  int64_t put_rows;     /* rows per ingest put */
  int64_t seed_rows;    /* query: seed-shaped table */
  int64_t big_rows;     /* query: four BIGINT columns */
  double small_secs;    /* small puts: seconds per configuration */
  double mixed_secs;    /* mixed: seconds per phase */
  double probe_secs;
  int tail_subs; /* live-tail subscribers of the tail figure */
};

static struct settings cfg;
static char tmp_root[PATH_MAX];
static char exe_dir[PATH_MAX];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int rc, const char *message) {
  fprintf(stderr, "bench_server: %s failed: %d (%s) %s\n", what, rc, wg_status_name(rc),
          message ? message : "");
  exit(1);
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL) die("calloc", ENOMEM, NULL);
  return p;
}

static bool wanted(const char *figure) {
  return cfg.only == NULL || strcmp(cfg.only, figure) == 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

static void rm_tree(const char *path) {
  nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh database path under the run's temp folder (the file does not exist yet). */
static void db_path(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s.duckdb", tmp_root, name);
  remove(out);
  char wal[PATH_MAX + 8];
  snprintf(wal, sizeof(wal), "%s.wal", out);
  remove(wal);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* p in [0, 1]: nearest-rank percentile of v[0..n) (sorted in place). */
static double percentile(double *v, int64_t n, double p) {
  if (n == 0) return NAN;
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  double r = p * (double)n; /* nearest rank: ceil(p * n) - 1, without libm */
  int64_t k = (int64_t)r;
  if ((double)k < r) k++;
  k--;
  if (k < 0) k = 0;
  if (k >= n) k = n - 1;
  return v[k];
}

struct samples {
  double *v;
  int64_t n, cap;
};

static void samples_add(struct samples *s, double x) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 1024;
    s->v = realloc(s->v, (size_t)s->cap * sizeof(double));
    if (s->v == NULL) die("samples", ENOMEM, NULL);
  }
  s->v[s->n++] = x;
}

static void samples_merge(struct samples *into, const struct samples *from) {
  for (int64_t i = 0; i < from->n; i++)
    samples_add(into, from->v[i]);
}

/* ---------------------------------------------------------------------------------------------
 * The results table */

struct result_row {
  char figure[48], params[64], unit[24], target[48];
  double server, inprocess, ratio;
  int met; /* 1 met, 0 missed, -1 no target */
};

static struct result_row results[64];
static int n_results;

static void add_result(const char *figure, const char *params, const char *unit, double server,
                       double inprocess, double ratio, const char *target, int met) {
  if (n_results == (int)(sizeof(results) / sizeof(results[0]))) return;
  struct result_row *r = &results[n_results++];
  snprintf(r->figure, sizeof(r->figure), "%s", figure);
  snprintf(r->params, sizeof(r->params), "%s", params);
  snprintf(r->unit, sizeof(r->unit), "%s", unit);
  snprintf(r->target, sizeof(r->target), "%s", target ? target : "");
  r->server = server, r->inprocess = inprocess, r->ratio = ratio, r->met = met;
}

static void print_table(void) {
  printf("\n| figure | parameters | server | in-process | unit | ratio | target | met |\n");
  printf("|---|---|---:|---:|---|---:|---|---|\n");
  for (int i = 0; i < n_results; i++) {
    struct result_row *r = &results[i];
    char ratio[32] = "", inproc[32] = "";
    if (!isnan(r->ratio)) snprintf(ratio, sizeof(ratio), "%.2f", r->ratio);
    if (!isnan(r->inprocess)) snprintf(inproc, sizeof(inproc), "%.6g", r->inprocess);
    printf("| %s | %s | %.6g | %s | %s | %s | %s | %s |\n", r->figure, r->params, r->server, inproc,
           r->unit, ratio, r->target,
           r->met < 0 ? ""
           : r->met   ? "yes"
                      : "NO");
  }
  fflush(stdout);
}

/* ---------------------------------------------------------------------------------------------
 * Seed-shaped Arrow batches (batch_id BIGINT, timestamp VARCHAR, value DOUBLE, category VARCHAR),
 * built once, with NULLs sprinkled in every column. Each batch's buffers live in one holder, so
 * wg_array_share hands out views that the client or DuckDB may consume. */

struct batch {
  struct ArrowArray array;
  int64_t rows;
  int64_t bytes; /* Arrow bytes: the sum of the buffers' used sizes */
};

struct gen {
  struct wg_holder_builder hb;
  int64_t bytes;
};

static void *gen_alloc(struct gen *g, int64_t size) {
  size_t n = (size_t)((size + 63) / 64 * 64);
  void *p = aligned_alloc(64, n ? n : 64);
  if (p == NULL || wg_holder_builder_add_alloc(&g->hb, p) != 0) die("batch alloc", ENOMEM, NULL);
  memset(p, 0, n ? n : 64);
  g->bytes += size;
  return p;
}

/* Validity with a NULL wherever the global row number is a multiple of `every`. */
static uint8_t *gen_validity(struct gen *g, int64_t first, int64_t rows, int64_t every,
                             int64_t *nulls) {
  uint8_t *bits = gen_alloc(g, (rows + 7) / 8);
  int64_t n = 0;
  for (int64_t r = 0; r < rows; r++) {
    if ((first + r) % every == 0)
      n++;
    else
      bits[r / 8] |= (uint8_t)(1u << (r % 8));
  }
  *nulls = n;
  return bits;
}

static void put2(char *p, int v) {
  p[0] = (char)('0' + v / 10 % 10);
  p[1] = (char)('0' + v % 10);
}

static void gen_seed_batch(struct batch *out, int64_t first, int64_t rows) {
  struct gen g;
  memset(&g, 0, sizeof(g));
  wg_holder_builder_init(&g.hb);
  int64_t nulls[4];
  uint8_t *valid[4] = {
      gen_validity(&g, first, rows, 1013, &nulls[0]), gen_validity(&g, first, rows, 101, &nulls[1]),
      gen_validity(&g, first, rows, 103, &nulls[2]), gen_validity(&g, first, rows, 83, &nulls[3])};
  int64_t *ids = gen_alloc(&g, rows * 8);
  double *values = gen_alloc(&g, rows * 8);
  int32_t *ts_off = gen_alloc(&g, (rows + 1) * 4), *cat_off = gen_alloc(&g, (rows + 1) * 4);
  char *ts = gen_alloc(&g, rows * 24), *cat = gen_alloc(&g, rows * 11);
  int32_t ts_n = 0, cat_n = 0;
  for (int64_t r = 0; r < rows; r++) {
    int64_t i = first + r;
    ids[r] = wg_bit_get(valid[0], r) ? i / 1000 : 0;
    values[r] = wg_bit_get(valid[2], r) ? (double)i * 0.37 - 5000.0 : 0.0;
    ts_off[r] = ts_n;
    if (wg_bit_get(valid[1], r)) { /* 2025-01-DDTHH:MM:SS.mmmZ, one row per 7 ms */
      int64_t ms = i * 7;
      char *p = ts + ts_n;
      memcpy(p, "2025-01-01T00:00:00.000Z", 24);
      put2(p + 8, (int)(ms / 86400000 % 28) + 1);
      put2(p + 11, (int)(ms / 3600000 % 24));
      put2(p + 14, (int)(ms / 60000 % 60));
      put2(p + 17, (int)(ms / 1000 % 60));
      p[20] = (char)('0' + ms % 1000 / 100);
      put2(p + 21, (int)(ms % 100));
      ts_n += 24;
    }
    cat_off[r] = cat_n;
    if (wg_bit_get(valid[3], r)) {
      memcpy(cat + cat_n, "category_", 9);
      put2(cat + cat_n + 9, (int)(i % 23));
      cat_n += 11;
    }
  }
  ts_off[rows] = ts_n;
  cat_off[rows] = cat_n;
  out->bytes = g.bytes - (rows * 24 - ts_n) - (rows * 11 - cat_n);
  out->rows = rows;
  struct wg_shared *holder = wg_holder_builder_finish(&g.hb);
  if (holder == NULL) die("holder", ENOMEM, NULL);
  struct ArrowArray *a = &out->array;
  if (wg_array_node_init(a, 1, 4, holder) != 0) die("array node", ENOMEM, NULL);
  a->length = rows;
  const void *bufs[4][3] = {{valid[0], ids, NULL},
                            {valid[1], ts_off, ts},
                            {valid[2], values, NULL},
                            {valid[3], cat_off, cat}};
  for (int c = 0; c < 4; c++) {
    int nb = (c == 1 || c == 3) ? 3 : 2;
    struct ArrowArray *ch = a->children[c];
    if (wg_array_node_init(ch, nb, 0, holder) != 0) die("array node", ENOMEM, NULL);
    ch->length = rows;
    ch->null_count = nulls[c];
    for (int b = 0; b < nb; b++)
      ch->buffers[b] = bufs[c][b];
  }
  wg_shared_unref(holder);
}

static void seed_schema(struct ArrowSchema *s) {
  static const char *const names[4] = {"batch_id", "timestamp", "value", "category"};
  static const char *const formats[4] = {"l", "u", "g", "u"};
  struct wg_error err = {""};
  int rc = wg_schema_node_init(s, "+s", 4, &err);
  for (int i = 0; rc == 0 && i < 4; i++) {
    rc = wg_schema_node_init(s->children[i], formats[i], 0, &err);
    if (rc == 0) rc = wg_schema_set_name(s->children[i], names[i]);
    if (rc == 0) s->children[i]->flags = ARROW_FLAG_NULLABLE;
  }
  if (rc != 0) die("schema", rc, err.message);
}

struct batch_set {
  struct batch *b;
  int64_t n, batch_rows, rows, bytes;
};

static void batch_set_build(struct batch_set *s, int64_t batch_rows, int64_t total_rows) {
  s->batch_rows = batch_rows;
  s->n = total_rows / batch_rows;
  s->b = xcalloc((size_t)s->n, sizeof(struct batch));
  s->rows = s->bytes = 0;
  for (int64_t i = 0; i < s->n; i++) {
    gen_seed_batch(&s->b[i], i * batch_rows, batch_rows);
    s->rows += s->b[i].rows;
    s->bytes += s->b[i].bytes;
  }
}

/* Arrow bytes of one put of batches [first, first + n) of the set. */
static int64_t set_bytes(const struct batch_set *s, int64_t first, int64_t n) {
  int64_t b = 0;
  for (int64_t i = 0; i < n; i++)
    b += s->b[(first + i) % s->n].bytes;
  return b;
}

/* ---------------------------------------------------------------------------------------------
 * An ArrowArrayStream over shared views of prebuilt batches, for wg_put (which consumes
 * the stream and the arrays it yields). */

struct view_stream {
  const struct ArrowSchema *schema;
  const struct batch_set *set;
  int64_t next, end;
};

static int vs_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct view_stream *v = s->private_data;
  return wg_schema_deep_copy(v->schema, out, NULL);
}

static int vs_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct view_stream *v = s->private_data;
  if (v->next >= v->end) {
    memset(out, 0, sizeof(*out));
    return 0;
  }
  return wg_array_share(&v->set->b[v->next++ % v->set->n].array, out);
}

static const char *vs_last_error(struct ArrowArrayStream *s) {
  (void)s;
  return "cannot share a batch";
}

static void vs_release(struct ArrowArrayStream *s) {
  free(s->private_data);
  s->release = NULL;
}

static void view_stream_init(struct ArrowArrayStream *s, const struct ArrowSchema *schema,
                             const struct batch_set *set, int64_t first, int64_t n) {
  struct view_stream *v = xcalloc(1, sizeof(*v));
  v->schema = schema, v->set = set, v->next = first, v->end = first + n;
  s->get_schema = vs_get_schema;
  s->get_next = vs_get_next;
  s->get_last_error = vs_last_error;
  s->release = vs_release;
  s->private_data = v;
}

/* One put of batches [first, first + n) of `set`; dies unless every row is acknowledged. */
static void client_put(struct wg_client *c, const char *table, const struct ArrowSchema *schema,
                       const struct batch_set *set, int64_t first, int64_t n) {
  struct ArrowArrayStream in;
  view_stream_init(&in, schema, set, first, n);
  struct wg_status ws;
  int64_t rows = 0;
  if (wg_put(c, NULL, table, &in, NULL, NULL, &rows, &ws) != 0)
    die("wg_put", ws.sys_errno, ws.message);
  if (rows != n * set->batch_rows) die("put acknowledgement", EPROTO, "rows differ");
}

/* ---------------------------------------------------------------------------------------------
 * In-process baseline writes: DuckDB's own appender fed with duckdb_data_chunk_from_arrow, on
 * 2048-row views of the same batches (DuckDB's vector size, the most one chunk takes). */

struct chunk_view {
  struct ArrowArray parent;
  struct ArrowArray kids[4];
  struct ArrowArray *kid_ptrs[4];
};

static void chunk_view_release(struct ArrowArray *a) {
  free(a->private_data); /* the buffers belong to the prebuilt batch */
  a->release = NULL;
}

static void kid_release(struct ArrowArray *a) {
  a->release = NULL;
}

/* A struct array of rows [start, start + n) of b (DuckDB takes it and calls its release). */
static void chunk_view_make(const struct ArrowArray *b, int64_t start, int64_t n,
                            struct ArrowArray *out) {
  static const void *no_buffers[1] = {NULL};
  struct chunk_view *v = xcalloc(1, sizeof(*v));
  for (int c = 0; c < 4; c++) {
    const struct ArrowArray *src = b->children[c];
    struct ArrowArray *k = &v->kids[c];
    *k = *src;
    k->offset = src->offset + start;
    k->length = n;
    k->null_count =
        src->null_count == 0 ? 0 : n - wg_bitmap_count_set(src->buffers[0], k->offset, n);
    k->release = kid_release;
    k->private_data = NULL;
    v->kid_ptrs[c] = k;
  }
  v->parent.length = n;
  v->parent.n_buffers = 1;
  v->parent.buffers = no_buffers;
  v->parent.n_children = 4;
  v->parent.children = v->kid_ptrs;
  v->parent.release = chunk_view_release;
  v->parent.private_data = v;
  *out = v->parent;
}

struct duck_writer {
  duckdb_connection conn;
  duckdb_arrow_converted_schema converted;
};

static void duck_exec(duckdb_connection conn, const char *sql) {
  duckdb_result r;
  duckdb_state st = duckdb_query(conn, sql, &r);
  if (st != DuckDBSuccess) die(sql, EIO, duckdb_result_error(&r));
  duckdb_destroy_result(&r);
}

static void duck_writer_init(struct duck_writer *w, duckdb_connection conn,
                             const struct ArrowSchema *schema) {
  w->conn = conn;
  struct ArrowSchema copy;
  if (wg_schema_deep_copy(schema, &copy, NULL) != 0) die("schema copy", ENOMEM, NULL);
  duckdb_error_data ed = duckdb_schema_from_arrow(conn, &copy, &w->converted);
  if (ed != NULL && duckdb_error_data_has_error(ed))
    die("duckdb_schema_from_arrow", EIO, duckdb_error_data_message(ed));
  if (ed != NULL) duckdb_destroy_error_data(&ed);
  wg_schema_release(&copy);
}

static void duck_writer_reset(struct duck_writer *w) {
  if (w->converted != NULL) duckdb_destroy_arrow_converted_schema(&w->converted);
}

/* BEGIN; appender; every 2048-row view of batches [first, first + n); flush; COMMIT. */
static void duck_put(struct duck_writer *w, const char *table, const struct batch_set *set,
                     int64_t first, int64_t n) {
  duck_exec(w->conn, "BEGIN TRANSACTION");
  duckdb_appender app;
  if (duckdb_appender_create_ext(w->conn, NULL, NULL, table, &app) != DuckDBSuccess)
    die("duckdb_appender_create", EIO, duckdb_appender_error(app));
  for (int64_t i = 0; i < n; i++) {
    const struct batch *b = &set->b[(first + i) % set->n];
    for (int64_t start = 0; start < b->rows; start += 2048) {
      int64_t len = b->rows - start < 2048 ? b->rows - start : 2048;
      struct ArrowArray view;
      chunk_view_make(&b->array, start, len, &view);
      duckdb_data_chunk chunk = NULL;
      duckdb_error_data ed = duckdb_data_chunk_from_arrow(w->conn, &view, w->converted, &chunk);
      if (ed != NULL && duckdb_error_data_has_error(ed))
        die("duckdb_data_chunk_from_arrow", EIO, duckdb_error_data_message(ed));
      if (ed != NULL) duckdb_destroy_error_data(&ed);
      if (view.release != NULL) view.release(&view);
      if (duckdb_append_data_chunk(app, chunk) != DuckDBSuccess)
        die("duckdb_append_data_chunk", EIO, duckdb_appender_error(app));
      duckdb_destroy_data_chunk(&chunk);
    }
  }
  if (duckdb_appender_flush(app) != DuckDBSuccess)
    die("duckdb_appender_flush", EIO, duckdb_appender_error(app));
  duckdb_appender_destroy(&app);
  duck_exec(w->conn, "COMMIT");
}

static const char *const SEED_DDL = "CREATE TABLE IF NOT EXISTS %s (batch_id BIGINT, "
                                    "\"timestamp\" VARCHAR, value DOUBLE, category VARCHAR)";

static void create_seed_table(duckdb_connection conn, const char *table) {
  char sql[256];
  snprintf(sql, sizeof(sql), SEED_DDL, table);
  duck_exec(conn, sql);
}

static struct wg_engine *engine_open_threshold(const char *path, int connections,
                                               const char *checkpoint_threshold) {
  struct wg_engine_options o;
  memset(&o, 0, sizeof(o));
  o.path = path;
  o.connections = connections;
  o.checkpoint_threshold = checkpoint_threshold;
  struct wg_engine *e = NULL;
  struct wg_error err = {""};
  int rc = wg_engine_open(&e, &o, &err);
  if (rc != 0) die("wg_engine_open", rc, err.message);
  return e;
}

static struct wg_engine *engine_open(const char *path, int connections) {
  return engine_open_threshold(path, connections, NULL);
}

static struct wg_engine_conn *engine_acquire(struct wg_engine *e) {
  struct wg_engine_conn *c = NULL;
  struct wg_error err = {""};
  int rc = wg_engine_acquire(e, &c, &err);
  if (rc != 0) die("wg_engine_acquire", rc, err.message);
  return c;
}

/* ---------------------------------------------------------------------------------------------
 * The server as a child process */

struct server_proc {
  pid_t pid, perf_pid;
  FILE *out; /* its stdout, kept open so that late writes do not hit a closed pipe */
  char uri[96];
};

static void server_start(struct server_proc *sp, const char *db, const char *figure) {
  memset(sp, 0, sizeof(*sp));
  char bin[PATH_MAX + 16];
  snprintf(bin, sizeof(bin), "%s/wigeon", exe_dir);
  int fds[2];
  if (pipe(fds) != 0) die("pipe", errno, NULL);
  pid_t pid = fork();
  if (pid < 0) die("fork", errno, NULL);
  char log[PATH_MAX + 64];
  snprintf(log, sizeof(log), "%s/server-%s.log", tmp_root, figure);
  if (pid == 0) {
    int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (lf >= 0) dup2(lf, 2);
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    /* WG_BENCH_SERVE_ARGS: extra `wigeon serve` options, split at spaces */
    char *argv[64] = {"wigeon", "serve", "--listen", "127.0.0.1:0", "--db", (char *)db};
    int argc = 6;
    char *extra = getenv("WG_BENCH_SERVE_ARGS") ? strdup(getenv("WG_BENCH_SERVE_ARGS")) : NULL;
    for (char *t = extra ? strtok(extra, " ") : NULL; t != NULL && argc < 63; t = strtok(NULL, " "))
      argv[argc++] = t;
    argv[argc] = NULL;
    execv(bin, argv);
    fprintf(stderr, "bench_server: cannot run %s: %s\n", bin, strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  sp->pid = pid;
  sp->out = fdopen(fds[0], "r");
  char line[256], host[64];
  int port = 0;
  while (sp->out != NULL && fgets(line, sizeof(line), sp->out) != NULL) {
    if (sscanf(line, "listening on grpc://%63[^:]:%d", host, &port) == 2) break;
  }
  if (port <= 0) die("starting the server (see its log)", EIO, log);
  snprintf(sp->uri, sizeof(sp->uri), "grpc://%s:%d", host, port);
  if (cfg.perf_dir != NULL) {
    char pidarg[32], outpath[PATH_MAX + 64];
    snprintf(pidarg, sizeof(pidarg), "%d", (int)pid);
    snprintf(outpath, sizeof(outpath), "%s/server-%s.data", cfg.perf_dir, figure);
    pid_t pp = fork();
    if (pp == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      if (devnull >= 0) dup2(devnull, 2), dup2(devnull, 1);
      const char *cg =
          getenv("WG_PERF_CALLGRAPH"); /* e.g. "dwarf,16384"; frame pointers by default */
      execlp("perf", "perf", "record", "--call-graph", cg != NULL ? cg : "fp", "-F", "499", "-p",
             pidarg, "-o", outpath, (char *)NULL);
      _exit(127);
    }
    sp->perf_pid = pp;
    usleep(500000); /* let perf attach */
  }
}

static void server_stop(struct server_proc *sp) {
  if (sp->perf_pid > 0) {
    kill(sp->perf_pid, SIGINT);
    waitpid(sp->perf_pid, NULL, 0);
  }
  kill(sp->pid, SIGTERM);
  int status = 0;
  waitpid(sp->pid, &status, 0);
  if (sp->out != NULL) fclose(sp->out);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fprintf(stderr, "bench_server: server exited with status %d\n", status);
}

/* VmRSS / VmHWM of a process in bytes. */
static int64_t proc_status_kb(pid_t pid, const char *key) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  int64_t v = -1;
  size_t kl = strlen(key);
  while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
      v = strtoll(line + kl + 1, NULL, 10);
      break;
    }
  }
  if (f != NULL) fclose(f);
  return v * 1024;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0: "5" > clear_refs). */
static void reset_peak(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
  FILE *f = fopen(path, "w");
  if (f != NULL) {
    fputs("5", f);
    fclose(f);
  }
}

/* User + system CPU seconds of a process (fields 14 and 15 of /proc/PID/stat), and of this one. */
static double proc_cpu_s(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  unsigned long long ut = 0, st = 0;
  if (p == NULL ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return 0;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct wg_client *connect_client(const char *uri) {
  struct wg_client *c = NULL;
  struct wg_client_options o;
  wg_client_options_init(&o);
  o.lazy_connect = true;
  struct wg_status ws;
  if (wg_connect(uri, &o, &c, &ws) != 0) die("wg_connect", ws.sys_errno, ws.message);
  return c;
}

/* commit_groups and grouped_puts from the stats action. */
static void server_groups(const char *uri, int64_t *groups, int64_t *grouped) {
  struct wg_client *c = connect_client(uri);
  struct wg_action_result r;
  struct wg_status ws;
  if (wg_action(c, "stats", NULL, 0, &r, &ws) != 0) die("stats action", ws.sys_errno, ws.message);
  if (r.n < 1) die("stats action", EPROTO, "no result");
  const char *json = r.bodies[0].data, *p; /* NUL-terminated */
  *groups = (p = strstr(json, "\"commit_groups\":")) ? strtoll(p + 16, NULL, 10) : -1;
  *grouped = (p = strstr(json, "\"grouped_puts\":")) ? strtoll(p + 15, NULL, 10) : -1;
  wg_action_result_reset(&r);
  wg_disconnect(c);
}

/* ---------------------------------------------------------------------------------------------
 * Counting the Arrow bytes of results (same rule as for the batches: used sizes of buffers) */

static int64_t array_bytes(const struct ArrowSchema *s, const struct ArrowArray *a) {
  const char *f = s->format;
  int64_t len = a->length, off = a->offset, b = 0;
  if (a->n_buffers > 0 && a->buffers[0] != NULL && strcmp(f, "+s") != 0) b += (len + 7) / 8;
  if (strcmp(f, "+s") == 0) {
    for (int64_t i = 0; i < a->n_children; i++)
      b += array_bytes(s->children[i], a->children[i]);
  } else if (strcmp(f, "u") == 0 || strcmp(f, "z") == 0) {
    const int32_t *o = a->buffers[1];
    b += (len + 1) * 4 + (len > 0 ? o[off + len] - o[off] : 0);
  } else if (strcmp(f, "U") == 0 || strcmp(f, "Z") == 0) {
    const int64_t *o = a->buffers[1];
    b += (len + 1) * 8 + (len > 0 ? o[off + len] - o[off] : 0);
  } else if (strcmp(f, "vu") == 0 || strcmp(f, "vz") == 0) {
    b += len * 16;
    const int64_t *sizes = a->buffers[a->n_buffers - 1];
    for (int64_t i = 0; i < a->n_buffers - 3; i++)
      b += sizes[i];
  } else if (strcmp(f, "b") == 0) {
    b += (len + 7) / 8;
  } else {
    int w = 8; /* l L g, timestamps, durations, time64 */
    if (f[0] == 'c' || f[0] == 'C')
      w = 1;
    else if (f[0] == 's' || f[0] == 'S' || f[0] == 'e')
      w = 2;
    else if (f[0] == 'i' || f[0] == 'I' || f[0] == 'f' || strcmp(f, "tdD") == 0 ||
             strcmp(f, "tts") == 0 || strcmp(f, "ttm") == 0)
      w = 4;
    else if (f[0] == 'd')
      w = strstr(f, ",256") ? 32 : strstr(f, ",64") ? 8 : 16;
    else if (f[0] == 'w')
      w = atoi(f + 2);
    b += len * w;
  }
  return b;
}

/* Drains a stream; *rows and *bytes get its totals. Returns the stream's status. */
static int drain(struct ArrowArrayStream *s, int64_t *rows, int64_t *bytes) {
  struct ArrowSchema schema;
  *rows = *bytes = 0;
  int rc = s->get_schema(s, &schema);
  if (rc != 0) return rc;
  for (;;) {
    struct ArrowArray a;
    rc = s->get_next(s, &a);
    if (rc != 0 || a.release == NULL) break;
    *rows += a.length;
    *bytes += array_bytes(&schema, &a);
    a.release(&a);
  }
  wg_schema_release(&schema);
  return rc;
}

static void server_query(struct wg_client *c, const char *sql, int64_t *rows, int64_t *bytes) {
  struct ArrowArrayStream s;
  struct wg_status ws;
  if (wg_query(c, sql, &s, &ws) != 0) die("wg_query", ws.sys_errno, ws.message);
  int rc = drain(&s, rows, bytes);
  if (rc != 0) die(sql, rc, s.get_last_error(&s));
  s.release(&s);
}

static void engine_query(struct wg_engine_conn *c, const char *sql, int64_t *rows, int64_t *bytes) {
  struct ArrowArrayStream s;
  struct wg_error err = {""};
  int rc = wg_engine_query_open(c, sql, 65536, &s, &err);
  if (rc != 0) die("wg_engine_query_open", rc, err.message);
  rc = drain(&s, rows, bytes);
  if (rc != 0) die(sql, rc, s.get_last_error(&s));
  s.release(&s);
}

/* ---------------------------------------------------------------------------------------------
 * Figure 1: ingest. N writers share a fixed list of puts (put i: batches [i*k, (i+1)*k)); the
 * server side puts them with wg_put, one client connection per writer; the in-process side
 * appends them in one transaction each on its own connection. */

struct ingest_job {
  const struct batch_set *set;
  const struct ArrowSchema *schema;
  int64_t puts, batches_per_put;
  int writers, id;
  pthread_barrier_t *start;
  const char *uri;             /* server side */
  struct wg_engine_conn *conn; /* in-process side */
};

static void *ingest_server_writer(void *arg) {
  struct ingest_job *j = arg;
  struct wg_client *c = connect_client(j->uri);
  pthread_barrier_wait(j->start);
  for (int64_t p = j->id; p < j->puts; p += j->writers)
    client_put(c, "ingest", j->schema, j->set, p * j->batches_per_put, j->batches_per_put);
  wg_disconnect(c);
  return NULL;
}

static void *ingest_inproc_writer(void *arg) {
  struct ingest_job *j = arg;
  struct duck_writer w;
  duck_writer_init(&w, wg_engine_conn_duckdb(j->conn), j->schema);
  pthread_barrier_wait(j->start);
  for (int64_t p = j->id; p < j->puts; p += j->writers)
    duck_put(&w, "ingest", j->set, p * j->batches_per_put, j->batches_per_put);
  duck_writer_reset(&w);
  return NULL;
}

/* Runs the writers; returns the seconds from the common start to the last writer's end. */
static double run_ingest(bool server, const char *uri, struct wg_engine *e,
                         const struct batch_set *set, const struct ArrowSchema *schema, int writers,
                         int64_t puts, int64_t bpp) {
  pthread_t th[16];
  struct ingest_job jobs[16];
  struct wg_engine_conn *conns[16] = {0};
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)writers + 1);
  for (int i = 0; i < writers; i++) {
    jobs[i] = (struct ingest_job){set, schema, puts, bpp, writers, i, &start, uri, NULL};
    if (!server) jobs[i].conn = conns[i] = engine_acquire(e);
    pthread_create(&th[i], NULL, server ? ingest_server_writer : ingest_inproc_writer, &jobs[i]);
  }
  pthread_barrier_wait(&start);
  double t0 = now_s();
  for (int i = 0; i < writers; i++)
    pthread_join(th[i], NULL);
  double secs = now_s() - t0;
  for (int i = 0; i < writers; i++)
    if (conns[i] != NULL) wg_engine_release(e, conns[i]);
  pthread_barrier_destroy(&start);
  return secs;
}

static void figure_ingest(const struct batch_set *sets[2], const struct ArrowSchema *schema) {
  static const int writer_counts[3] = {1, 4, 16};
  for (int si = 0; si < 2; si++) {
    const struct batch_set *set = sets[si];
    int64_t bpp = cfg.put_rows / set->batch_rows, puts = cfg.ingest_puts;
    int64_t rows = puts * bpp * set->batch_rows, bytes = set_bytes(set, 0, puts * bpp);
    for (int wi = 0; wi < 3; wi++) {
      int writers = writer_counts[wi];
      char db[PATH_MAX], name[64];
      snprintf(name, sizeof(name), "ingest-w%d-b%lld", writers, (long long)set->batch_rows);
      /* server */
      db_path(db, sizeof(db), name);
      struct server_proc sp;
      server_start(&sp, db, name);
      double sc0 = proc_cpu_s(sp.pid), cc0 = self_cpu_s();
      double s_secs = run_ingest(true, sp.uri, NULL, set, schema, writers, puts, bpp);
      double s_cpu = proc_cpu_s(sp.pid) - sc0, c_cpu = self_cpu_s() - cc0;
      server_stop(&sp);
      /* in-process, a fresh database file of its own */
      strcat(name, "-inproc");
      db_path(db, sizeof(db), name);
      struct wg_engine *e = engine_open(db, writers);
      struct wg_engine_conn *c = engine_acquire(e);
      create_seed_table(wg_engine_conn_duckdb(c), "ingest");
      wg_engine_release(e, c);
      double ic0 = self_cpu_s();
      double i_secs = run_ingest(false, NULL, e, set, schema, writers, puts, bpp);
      double i_cpu = self_cpu_s() - ic0;
      wg_engine_close(e);
      double s_rps = (double)rows / s_secs, i_rps = (double)rows / i_secs;
      double ratio = s_rps / i_rps;
      printf("bench ingest writers=%d batch_rows=%lld put_rows=%lld puts=%lld rows=%lld "
             "bytes=%lld server_seconds=%.3f server_rows_per_s=%.0f server_MB_per_s=%.1f "
             "inprocess_seconds=%.3f inprocess_rows_per_s=%.0f inprocess_MB_per_s=%.1f "
             "ratio=%.2f server_cpu_s=%.2f client_cpu_s=%.2f inprocess_cpu_s=%.2f\n",
             writers, (long long)set->batch_rows, (long long)(bpp * set->batch_rows),
             (long long)puts, (long long)rows, (long long)bytes, s_secs, s_rps,
             (double)bytes / s_secs / 1e6, i_secs, i_rps, (double)bytes / i_secs / 1e6, ratio,
             s_cpu, c_cpu, i_cpu);
      fflush(stdout);
      char params[64];
      snprintf(params, sizeof(params), "writers=%d batch_rows=%lld", writers,
               (long long)set->batch_rows);
      bool target = writers == 4 && set->batch_rows == 65536;
      add_result("ingest", params, "MB/s", (double)bytes / s_secs / 1e6,
                 (double)bytes / i_secs / 1e6, ratio, target ? ">= 0.8x" : NULL,
                 target ? ratio >= 0.8 : -1);
    }
  }
}

/* ---------------------------------------------------------------------------------------------
 * Figure 2: query. One database file with both tables, made in-process; the in-process side
 * streams each query with wg_engine_query_open (a warm-up run, then the measured run); then the
 * server is started on the same file and each query is fetched with DoGet twice: cold (its peak
 * RSS includes DuckDB's buffer pool loading the table) and warm (measured; peak reset before). */

static void figure_query(void) {
  char db[PATH_MAX];
  db_path(db, sizeof(db), "query");
  struct wg_engine *e = engine_open(db, 1);
  struct wg_engine_conn *c = engine_acquire(e);
  char sql[1024];
  double t0 = now_s();
  snprintf(sql, sizeof(sql),
           "CREATE TABLE seed AS SELECT "
           "CASE WHEN i %% 1013 = 0 THEN NULL ELSE i // 1000 END AS batch_id, "
           "CASE WHEN i %% 101 = 0 THEN NULL ELSE strftime(TIMESTAMP '2025-01-01' + "
           "to_milliseconds(i * 7), '%%Y-%%m-%%dT%%H:%%M:%%S.%%gZ') END AS \"timestamp\", "
           "CASE WHEN i %% 103 = 0 THEN NULL ELSE CAST(i AS DOUBLE) * 0.37 - 5000 END AS value, "
           "CASE WHEN i %% 83 = 0 THEN NULL ELSE 'category_' || lpad(CAST(i %% 23 AS VARCHAR), 2, "
           "'0') END AS category FROM range(%lld) t(i)",
           (long long)cfg.seed_rows);
  duck_exec(wg_engine_conn_duckdb(c), sql);
  snprintf(sql, sizeof(sql),
           "CREATE TABLE big AS SELECT i AS a, i * 7 AS b, i %% 1000 AS c, "
           "CAST(hash(i) >> 1 AS BIGINT) AS d FROM range(%lld) t(i)",
           (long long)cfg.big_rows);
  duck_exec(wg_engine_conn_duckdb(c), sql);
  duck_exec(wg_engine_conn_duckdb(c), "CHECKPOINT");
  fprintf(stderr, "bench_server: query tables made in %.1f s\n", now_s() - t0);
  static const char *const names[2] = {"seed", "bigint4"};
  static const char *const queries[2] = {"SELECT * FROM seed", "SELECT * FROM big"};
  double in_secs[2];
  int64_t in_rows[2], in_bytes[2];
  for (int q = 0; q < 2; q++) {
    engine_query(c, queries[q], &in_rows[q], &in_bytes[q]); /* warm-up */
    t0 = now_s();
    engine_query(c, queries[q], &in_rows[q], &in_bytes[q]);
    in_secs[q] = now_s() - t0;
  }
  wg_engine_release(e, c);
  wg_engine_close(e);

  struct server_proc sp;
  server_start(&sp, db, "query");
  struct wg_client *cl = connect_client(sp.uri);
  int64_t start_rss = proc_status_kb(sp.pid, "VmRSS");
  for (int q = 0; q < 2; q++) {
    int64_t rows, bytes;
    int64_t rss0 = proc_status_kb(sp.pid, "VmRSS");
    reset_peak(sp.pid);
    t0 = now_s();
    server_query(cl, queries[q], &rows, &bytes);
    double cold_secs = now_s() - t0;
    int64_t cold_hwm = proc_status_kb(sp.pid, "VmHWM");
    int64_t rss1 = proc_status_kb(sp.pid, "VmRSS");
    reset_peak(sp.pid);
    t0 = now_s();
    server_query(cl, queries[q], &rows, &bytes);
    double secs = now_s() - t0;
    int64_t warm_hwm = proc_status_kb(sp.pid, "VmHWM");
    if (rows != in_rows[q] || bytes != in_bytes[q]) die("query results differ", EPROTO, names[q]);
    double s_mbs = (double)bytes / secs / 1e6, i_mbs = (double)in_bytes[q] / in_secs[q] / 1e6;
    double cold_growth = (double)(cold_hwm - rss0) / 1048576.0;
    double warm_growth = (double)(warm_hwm - rss1) / 1048576.0;
    printf("bench query shape=%s rows=%lld bytes=%lld server_seconds=%.3f server_MB_per_s=%.1f "
           "server_cold_seconds=%.3f inprocess_seconds=%.3f inprocess_MB_per_s=%.1f ratio=%.2f "
           "server_rss_start_MiB=%.1f server_rss_before_MiB=%.1f cold_peak_growth_MiB=%.1f "
           "warm_peak_growth_MiB=%.1f server_rss_after_MiB=%.1f\n",
           names[q], (long long)rows, (long long)bytes, secs, s_mbs, cold_secs, in_secs[q], i_mbs,
           s_mbs / i_mbs, (double)start_rss / 1048576.0, (double)rss0 / 1048576.0, cold_growth,
           warm_growth, (double)proc_status_kb(sp.pid, "VmRSS") / 1048576.0);
    fflush(stdout);
    char params[64];
    snprintf(params, sizeof(params), "%s rows=%lld", names[q], (long long)rows);
    add_result("query DoGet", params, "MB/s", s_mbs, i_mbs, s_mbs / i_mbs,
               q == 0 ? ">= 0.8x" : "DuckDB-bound", q == 0 ? s_mbs / i_mbs >= 0.8 : -1);
    add_result("query RSS growth (warm)", params, "MiB", warm_growth, NAN, NAN, "<= 100 MB",
               warm_growth * 1.048576 <= 100.0);
    add_result("query RSS growth (cold)", params, "MiB", cold_growth, NAN, NAN, "<= 100 MB",
               cold_growth * 1.048576 <= 100.0);
  }
  wg_disconnect(cl);
  server_stop(&sp);
}

/* ---------------------------------------------------------------------------------------------
 * Figure 3: small puts. 1,000-row puts, each its own DoPut, as fast as acknowledgements come, for
 * a fixed time, on a file database; baseline: in-process transactions of 1,000 rows one after the
 * other (BEGIN, append, COMMIT: one WAL fsync each). */

struct timed_job {
  const struct batch_set *set;
  const struct ArrowSchema *schema;
  const char *uri, *table;
  struct wg_engine_conn *conn;
  int id;
  double until;
  pthread_barrier_t *start;
  int64_t ops;
  struct samples lat; /* per-op seconds */
  int kind;           /* readers: 0 count(*), 1 group-by, alternating */
};

static void *timed_server_putter(void *arg) {
  struct timed_job *j = arg;
  struct wg_client *c = connect_client(j->uri);
  pthread_barrier_wait(j->start);
  for (int64_t k = j->id * 7919; now_s() < j->until; k++) {
    double t0 = now_s();
    client_put(c, j->table, j->schema, j->set, k % j->set->n, 1);
    samples_add(&j->lat, now_s() - t0);
    j->ops++;
  }
  wg_disconnect(c);
  return NULL;
}

static void *timed_inproc_putter(void *arg) {
  struct timed_job *j = arg;
  struct duck_writer w;
  duck_writer_init(&w, wg_engine_conn_duckdb(j->conn), j->schema);
  pthread_barrier_wait(j->start);
  for (int64_t k = j->id * 7919; now_s() < j->until; k++) {
    double t0 = now_s();
    duck_put(&w, j->table, j->set, k % j->set->n, 1);
    samples_add(&j->lat, now_s() - t0);
    j->ops++;
  }
  duck_writer_reset(&w);
  return NULL;
}

static const char *const READ_SQL[2] = {
    "SELECT count(*) FROM %s",
    "SELECT category, count(*), sum(value), max(batch_id) FROM %s GROUP BY category"};

static void *timed_server_reader(void *arg) {
  struct timed_job *j = arg;
  struct wg_client *c = connect_client(j->uri);
  char sql[2][256];
  for (int q = 0; q < 2; q++)
    snprintf(sql[q], sizeof(sql[q]), READ_SQL[q], j->table);
  pthread_barrier_wait(j->start);
  while (now_s() < j->until) {
    int64_t rows, bytes;
    double t0 = now_s();
    server_query(c, sql[j->ops % 2], &rows, &bytes);
    samples_add(&j[j->ops % 2 ? 1 : 0].lat, now_s() - t0); /* j[1] collects group-by times */
    j->ops++;
  }
  wg_disconnect(c);
  return NULL;
}

static void *timed_inproc_reader(void *arg) {
  struct timed_job *j = arg;
  char sql[2][256];
  for (int q = 0; q < 2; q++)
    snprintf(sql[q], sizeof(sql[q]), READ_SQL[q], j->table);
  pthread_barrier_wait(j->start);
  while (now_s() < j->until) {
    int64_t rows, bytes;
    double t0 = now_s();
    engine_query(j->conn, sql[j->ops % 2], &rows, &bytes);
    samples_add(&j[j->ops % 2 ? 1 : 0].lat, now_s() - t0);
    j->ops++;
  }
  return NULL;
}

/* Runs `writers` putters (and `readers` readers, each with a pair of jobs: [0] count(*) times and
 * ops, [1] group-by times) for `secs`; returns puts done, fills the latency samples. */
struct timed_out {
  int64_t puts;
  double secs;
  struct samples put_lat, count_lat, groupby_lat;
};

static void run_timed(bool server, const char *uri, struct wg_engine *e, const char *table,
                      const struct batch_set *set, const struct ArrowSchema *schema, int writers,
                      int readers, double secs, struct timed_out *out) {
  memset(out, 0, sizeof(*out));
  int n = writers + readers;
  pthread_t *th = xcalloc((size_t)n, sizeof(pthread_t));
  struct timed_job *jobs = xcalloc((size_t)(writers + 2 * readers), sizeof(struct timed_job));
  struct wg_engine_conn **conns = xcalloc((size_t)n, sizeof(*conns));
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)n + 1);
  for (int i = 0; i < n; i++) {
    struct timed_job *j = i < writers ? &jobs[i] : &jobs[writers + 2 * (i - writers)];
    j->set = set, j->schema = schema, j->uri = uri, j->table = table, j->id = i;
    j->start = &start;
    if (!server) j->conn = conns[i] = engine_acquire(e);
    void *(*fn)(void *) = i < writers ? (server ? timed_server_putter : timed_inproc_putter)
                                      : (server ? timed_server_reader : timed_inproc_reader);
    j->until = 1e300; /* set below, once every thread is ready */
    pthread_create(&th[i], NULL, fn, j);
  }
  /* The deadline must be known before the barrier opens: write it first. */
  double until = now_s() + secs + 0.05;
  for (int i = 0; i < writers + 2 * readers; i++)
    jobs[i].until = until;
  pthread_barrier_wait(&start);
  double t0 = now_s();
  for (int i = 0; i < n; i++)
    pthread_join(th[i], NULL);
  out->secs = now_s() - t0;
  for (int i = 0; i < writers; i++) {
    out->puts += jobs[i].ops;
    samples_merge(&out->put_lat, &jobs[i].lat);
    free(jobs[i].lat.v);
  }
  for (int r = 0; r < readers; r++) {
    samples_merge(&out->count_lat, &jobs[writers + 2 * r].lat);
    samples_merge(&out->groupby_lat, &jobs[writers + 2 * r + 1].lat);
    free(jobs[writers + 2 * r].lat.v);
    free(jobs[writers + 2 * r + 1].lat.v);
  }
  for (int i = 0; i < n; i++)
    if (conns[i] != NULL) wg_engine_release(e, conns[i]);
  pthread_barrier_destroy(&start);
  free(th);
  free(jobs);
  free(conns);
}

static void timed_out_reset(struct timed_out *o) {
  free(o->put_lat.v);
  free(o->count_lat.v);
  free(o->groupby_lat.v);
}

static void figure_small(const struct batch_set *set1k, const struct ArrowSchema *schema) {
  /* in-process baseline first: one thread, one transaction per 1,000 rows */
  char db[PATH_MAX];
  db_path(db, sizeof(db), "small-inproc");
  struct wg_engine *e = engine_open(db, 2);
  struct wg_engine_conn *c = engine_acquire(e);
  create_seed_table(wg_engine_conn_duckdb(c), "small");
  wg_engine_release(e, c);
  struct timed_out base;
  run_timed(false, NULL, e, "small", set1k, schema, 1, 0, cfg.small_secs, &base);
  wg_engine_close(e);
  double base_ps = (double)base.puts / base.secs;
  double base_p50 = percentile(base.put_lat.v, base.put_lat.n, 0.5);

  /* The ceiling for group commit: in-process, one thread, groups of 8 puts, each group one
   * transaction through one appender (the best the committer can do), fresh file, the server's
   * checkpoint threshold, automatic checkpoints included. */
  db_path(db, sizeof(db), "small-inproc-grouped");
  e = engine_open_threshold(db, 1, "256MB");
  c = engine_acquire(e);
  create_seed_table(wg_engine_conn_duckdb(c), "small");
  struct duck_writer gw;
  duck_writer_init(&gw, wg_engine_conn_duckdb(c), schema);
  int64_t grouped = 0;
  double gt0 = now_s(), gc0 = self_cpu_s(), guntil = gt0 + cfg.small_secs;
  for (int64_t k = 0; now_s() < guntil; k += 8) {
    duck_put(&gw, "small", set1k, k % set1k->n, 8);
    grouped += 8;
  }
  double group_ps = (double)grouped / (now_s() - gt0);
  double group_cpu_ms = (self_cpu_s() - gc0) / (double)grouped * 1e3;
  duck_writer_reset(&gw);
  wg_engine_release(e, c);
  wg_engine_close(e);
  printf("bench small_puts_inprocess_grouped group=8 puts_per_s=%.1f cpu_ms_per_put=%.3f\n",
         group_ps, group_cpu_ms);
  add_result("small puts", "in-process, groups of 8 in one txn", "puts/s", group_ps, base_ps,
             group_ps / base_ps, NULL, -1);

  static const int writer_counts[2] = {1, 8};
  for (int wi = 0; wi < 2; wi++) {
    int writers = writer_counts[wi];
    char name[64];
    snprintf(name, sizeof(name), "small-w%d", writers);
    db_path(db, sizeof(db), name);
    struct server_proc sp;
    server_start(&sp, db, name);
    struct wg_client *cl = connect_client(sp.uri);
    client_put(cl, "small", schema, set1k, 0, 1); /* creates the table */
    wg_disconnect(cl);
    int64_t g0, p0, g1, p1;
    server_groups(sp.uri, &g0, &p0);
    struct timed_out o;
    double sc0 = proc_cpu_s(sp.pid), cc0 = self_cpu_s();
    run_timed(true, sp.uri, NULL, "small", set1k, schema, writers, 0, cfg.small_secs, &o);
    double s_cpu = proc_cpu_s(sp.pid) - sc0, c_cpu = self_cpu_s() - cc0;
    server_groups(sp.uri, &g1, &p1);
    server_stop(&sp);
    double ps = (double)o.puts / o.secs, avg_group = g1 > g0 ? (double)(p1 - p0) / (g1 - g0) : 0;
    double p50 = percentile(o.put_lat.v, o.put_lat.n, 0.5);
    double p99 = percentile(o.put_lat.v, o.put_lat.n, 0.99);
    printf("bench small_puts writers=%d rows_per_put=%lld seconds=%.2f server_puts=%lld "
           "server_puts_per_s=%.1f server_put_p50_ms=%.2f server_put_p99_ms=%.2f "
           "commit_groups=%lld grouped_puts=%lld avg_group=%.2f inprocess_puts_per_s=%.1f "
           "inprocess_txn_p50_ms=%.2f ratio=%.2f server_cpu_ms_per_put=%.3f "
           "client_cpu_ms_per_put=%.3f cpu_busy=%.2f\n",
           writers, (long long)set1k->batch_rows, o.secs, (long long)o.puts, ps, p50 * 1e3,
           p99 * 1e3, (long long)(g1 - g0), (long long)(p1 - p0), avg_group, base_ps,
           base_p50 * 1e3, ps / base_ps, s_cpu / (double)o.puts * 1e3, c_cpu / (double)o.puts * 1e3,
           (s_cpu + c_cpu) / o.secs);
    fflush(stdout);
    char params[64];
    snprintf(params, sizeof(params), "writers=%d (avg group %.2f)", writers, avg_group);
    add_result("small puts", params, "puts/s", ps, base_ps, ps / base_ps,
               writers == 8 ? ">= 3000/s" : NULL, writers == 8 ? ps >= 3000 : -1);
    timed_out_reset(&o);
  }
  timed_out_reset(&base);
}

/* ---------------------------------------------------------------------------------------------
 * Figure: tail. 4 writers putting 1,000-row seed puts flat out for small_secs, alone, then while
 * `tail_subs` live-tail subscribers ("from": "now", no filter) read every batch: the writers'
 * throughput with them over without (each phase on a fresh server), each delivery's latency from
 * its put's acknowledgement (p50/p99 over every subscriber and put), the server's threads with
 * every subscriber idle, and a check that every subscriber got every row exactly once. */

enum { TAIL_WRITERS = 4, TAIL_MAX_PUTS = 1 << 20 };
static double tail_ack[TAIL_MAX_PUTS]; /* put id -> acknowledgement time (0: none yet) */
static atomic_llong tail_next_put;

struct tail_writer {
  const char *uri;
  const struct ArrowSchema *schema;
  double until;
  int64_t puts;
};

/* Puts fresh 1,000-row batches whose batch_id is the put's id, recording each one's ack time. */
static void *tail_writer_main(void *arg) {
  struct tail_writer *w = arg;
  struct wg_client *c = connect_client(w->uri);
  while (now_s() < w->until) {
    int64_t id = atomic_fetch_add(&tail_next_put, 1);
    if (id >= TAIL_MAX_PUTS) break;
    struct batch b;
    gen_seed_batch(&b, id * 1000, 1000);
    struct batch_set one = {&b, 1, 1000, 1000, b.bytes};
    client_put(c, "tail", w->schema, &one, 0, 1);
    tail_ack[id] = now_s();
    wg_array_release(&b.array);
    w->puts++;
  }
  wg_disconnect(c);
  return NULL;
}

struct tail_reader {
  wg_tail_stream *t;
  pthread_t th;
  int64_t rows;
  int64_t *ids; /* (put id, receive time) of every put seen, in order */
  double *at;
  int64_t n, cap;
  bool failed;
};

static void *tail_reader_main(void *arg) {
  struct tail_reader *r = arg;
  for (;;) {
    struct ArrowArray a;
    struct wg_tail_info info;
    struct wg_status ws;
    if (wg_tail_next(r->t, &a, &info, &ws) != 0) {
      r->failed = true;
      fprintf(stderr, "bench tail: a subscriber ended: %s\n", ws.message);
      return NULL;
    }
    if (a.release == NULL) return NULL; /* cancelled */
    double t = now_s();
    const struct ArrowArray *ids = a.children[0];
    const int64_t *v = ids->buffers[1];
    const uint8_t *valid = ids->buffers[0];
    int64_t last = -1;
    for (int64_t i = 0; i < ids->length; i++) {
      int64_t k = ids->offset + i;
      if (valid != NULL && !wg_bit_get(valid, k)) continue;
      if (v[k] == last) continue;
      last = v[k];
      if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 4096;
        r->ids = realloc(r->ids, (size_t)r->cap * sizeof(*r->ids));
        r->at = realloc(r->at, (size_t)r->cap * sizeof(*r->at));
        if (r->ids == NULL || r->at == NULL) die("realloc", ENOMEM, NULL);
      }
      r->ids[r->n] = last;
      r->at[r->n++] = t;
    }
    r->rows += a.length;
    wg_array_release(&a);
  }
}

static int64_t proc_threads(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  int64_t v = -1;
  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, "Threads:", 8) == 0) v = strtoll(line + 8, NULL, 10);
  if (f != NULL) fclose(f);
  return v;
}

/* One phase: writers for small_secs with n_subs subscribers; *puts_per_s, and with subscribers
 * the delivery latencies in *lat (seconds) and whether every subscriber saw every row once. */
static void tail_phase(const struct ArrowSchema *schema, int n_subs, bool filtered,
                       double *puts_per_s, struct samples *lat, bool *complete,
                       int64_t *idle_threads, double *server_cpu_ms, double *client_cpu_ms) {
  char db[PATH_MAX], name[32];
  snprintf(name, sizeof(name), "tail-%d%s", n_subs, filtered ? "-filtered" : "");
  db_path(db, sizeof(db), name);
  struct server_proc sp;
  server_start(&sp, db, name);
  struct wg_client *setup = connect_client(sp.uri);
  struct batch b0;
  gen_seed_batch(&b0, 0, 1000);
  struct batch_set one = {&b0, 1, 1000, 1000, b0.bytes};
  client_put(setup, "tail", schema, &one, 0, 1); /* creates the table */
  wg_array_release(&b0.array);
  enum { CLIENTS = 10 };
  struct wg_client *clients[CLIENTS];
  for (int i = 0; i < CLIENTS; i++)
    clients[i] = connect_client(sp.uri);
  struct tail_reader *rd = xcalloc((size_t)(n_subs > 0 ? n_subs : 1), sizeof(*rd));
  for (int i = 0; i < n_subs; i++) {
    struct wg_status ws;
    char where[64];
    snprintf(where, sizeof(where), "batch_id %% %d = %d", n_subs, i);
    struct wg_tail_options to = {.table = "tail", .from = "now", .where = filtered ? where : NULL};
    if (wg_tail_open(clients[i % CLIENTS], &to, &rd[i].t, &ws) != 0)
      die("wg_tail_open", ws.sys_errno, ws.message);
    /* the start marker: the subscription is in place once it came */
    struct ArrowArray a;
    struct wg_tail_info info;
    if (wg_tail_next(rd[i].t, &a, &info, &ws) != 0 || a.release == NULL || !info.start)
      die("the tail's start marker", EPROTO, ws.message);
    wg_array_release(&a);
    pthread_create(&rd[i].th, NULL, tail_reader_main, &rd[i]);
  }
  usleep(200000);
  *idle_threads = proc_threads(sp.pid);
  atomic_store(&tail_next_put, 1);
  memset(tail_ack, 0, sizeof(tail_ack));
  struct tail_writer w[TAIL_WRITERS];
  pthread_t wt[TAIL_WRITERS];
  double t0 = now_s(), sc0 = proc_cpu_s(sp.pid), cc0 = self_cpu_s();
  for (int i = 0; i < TAIL_WRITERS; i++) {
    w[i] = (struct tail_writer){sp.uri, schema, t0 + cfg.small_secs, 0};
    pthread_create(&wt[i], NULL, tail_writer_main, &w[i]);
  }
  int64_t puts = 0;
  for (int i = 0; i < TAIL_WRITERS; i++) {
    pthread_join(wt[i], NULL);
    puts += w[i].puts;
  }
  *puts_per_s = (double)puts / (now_s() - t0);
  *server_cpu_ms = (proc_cpu_s(sp.pid) - sc0) / (double)(puts ? puts : 1) * 1e3;
  *client_cpu_ms = (self_cpu_s() - cc0) / (double)(puts ? puts : 1) * 1e3;
  /* every subscriber catches up (or 30 s pass), then ends; filtered, subscriber i gets the puts
   * whose id (1..puts) is i modulo n_subs, and each put counts once whatever rows of it match */
  *complete = true;
  double give_up = now_s() + 30;
  for (int i = 0; i < n_subs; i++) {
    int64_t want = puts;
    if (filtered) want = i == 0 ? puts / n_subs : (i <= puts ? (puts - i) / n_subs + 1 : 0);
    while (rd[i].n < want && !rd[i].failed && now_s() < give_up)
      usleep(10000);
    wg_tail_cancel(rd[i].t);
    pthread_join(rd[i].th, NULL);
    if (rd[i].n != want || (!filtered && rd[i].rows != puts * 1000)) *complete = false;
    for (int64_t k = 0; k < rd[i].n; k++) {
      int64_t id = rd[i].ids[k];
      double ack = id > 0 && id < TAIL_MAX_PUTS ? tail_ack[id] : 0;
      if (ack > 0) samples_add(lat, rd[i].at[k] > ack ? rd[i].at[k] - ack : 0);
    }
    wg_tail_close(rd[i].t);
    free(rd[i].ids);
    free(rd[i].at);
  }
  free(rd);
  for (int i = 0; i < CLIENTS; i++)
    wg_disconnect(clients[i]);
  wg_disconnect(setup);
  server_stop(&sp);
}

static void tail_report(bool filtered, double alone, double with, struct samples *lat, bool ok,
                        int64_t threads_alone, int64_t threads_with);

static void figure_tail(const struct ArrowSchema *schema) {
  double alone = 0, with = 0;
  struct samples none = {0}, lat = {0};
  bool ok_alone = true, ok = true;
  int64_t threads_alone = 0, threads_with = 0;
  double scpu0, ccpu0, scpu, ccpu;
  tail_phase(schema, 0, false, &alone, &none, &ok_alone, &threads_alone, &scpu0, &ccpu0);
  printf("bench tail_alone writers=%d puts_per_s=%.1f server_cpu_ms_per_put=%.3f "
         "client_cpu_ms_per_put=%.3f\n",
         TAIL_WRITERS, alone, scpu0, ccpu0);
  for (int filtered = 0; filtered < 2; filtered++) {
    tail_phase(schema, cfg.tail_subs, filtered, &with, &lat, &ok, &threads_with, &scpu, &ccpu);
    printf("bench tail%s_cpu server_cpu_ms_per_put=%.3f client_cpu_ms_per_put=%.3f\n",
           filtered ? "_filtered" : "", scpu, ccpu);
    tail_report(filtered, alone, with, &lat, ok, threads_alone, threads_with);
    free(lat.v);
    lat = (struct samples){0};
  }
  free(none.v);
}

static void tail_report(bool filtered, double alone, double with, struct samples *lat_s, bool ok,
                        int64_t threads_alone, int64_t threads_with) {
  struct samples lat = *lat_s;
  double p50 = percentile(lat.v, lat.n, 0.5), p99 = percentile(lat.v, lat.n, 0.99);
  printf("bench tail%s writers=%d subscribers=%d rows_per_put=1000 seconds=%.1f "
         "alone_puts_per_s=%.1f with_puts_per_s=%.1f ratio=%.2f delivery_p50_ms=%.2f "
         "delivery_p99_ms=%.2f deliveries=%lld every_row_once=%s server_threads_idle=%lld "
         "server_threads_no_tail=%lld\n",
         filtered ? "_filtered" : "", TAIL_WRITERS, cfg.tail_subs, cfg.small_secs, alone, with,
         with / alone, p50 * 1e3,
         p99 * 1e3, (long long)lat.n, ok ? "yes" : "NO", (long long)threads_with,
         (long long)threads_alone);
  fflush(stdout);
  char params[96];
  snprintf(params, sizeof(params), "4 writers, %d subscribers%s (delivery p50 %.1f ms, p99 %.1f ms)",
           cfg.tail_subs, filtered ? " each WHERE 1/N of the puts" : " of every row", p50 * 1e3,
           p99 * 1e3);
  add_result("tail", params, "puts/s", with, alone, with / alone, ">= 0.90", with / alone >= 0.9);
}

/* ---------------------------------------------------------------------------------------------
 * Figure 4: mixed. 4 writers putting 64k-row puts flat out, alone, then with 4 readers looping
 * count(*) and a group-by over the same table; on the server and in-process. */

static void figure_mixed(const struct batch_set *set64k, const struct ArrowSchema *schema) {
  double alone_ps[2], mixed_ps[2], cnt[2][2], grp[2][2]; /* [server/inproc][p50/p99] */
  int64_t reads[2];
  for (int side = 0; side < 2; side++) {
    bool server = side == 0;
    for (int phase = 0; phase < 2; phase++) {
      char db[PATH_MAX], name[64];
      snprintf(name, sizeof(name), "mixed-%s-%s", server ? "server" : "inproc",
               phase ? "mixed" : "alone");
      db_path(db, sizeof(db), name);
      struct server_proc sp;
      struct wg_engine *e = NULL;
      if (server) {
        server_start(&sp, db, name);
        struct wg_client *cl = connect_client(sp.uri);
        client_put(cl, "mixed", schema, set64k, 0, 1); /* creates the table, first 64k rows */
        wg_disconnect(cl);
      } else {
        e = engine_open(db, 8);
        struct wg_engine_conn *c = engine_acquire(e);
        struct duck_writer w;
        create_seed_table(wg_engine_conn_duckdb(c), "mixed");
        duck_writer_init(&w, wg_engine_conn_duckdb(c), schema);
        duck_put(&w, "mixed", set64k, 0, 1);
        duck_writer_reset(&w);
        wg_engine_release(e, c);
      }
      struct timed_out o;
      run_timed(server, server ? sp.uri : NULL, e, "mixed", set64k, schema, 4, phase ? 4 : 0,
                cfg.mixed_secs, &o);
      if (server)
        server_stop(&sp);
      else
        wg_engine_close(e);
      double ps = (double)o.puts / o.secs;
      if (phase == 0) {
        alone_ps[side] = ps;
      } else {
        mixed_ps[side] = ps;
        cnt[side][0] = percentile(o.count_lat.v, o.count_lat.n, 0.5);
        cnt[side][1] = percentile(o.count_lat.v, o.count_lat.n, 0.99);
        grp[side][0] = percentile(o.groupby_lat.v, o.groupby_lat.n, 0.5);
        grp[side][1] = percentile(o.groupby_lat.v, o.groupby_lat.n, 0.99);
        reads[side] = o.count_lat.n + o.groupby_lat.n;
      }
      timed_out_reset(&o);
    }
  }
  double rows_per_put = (double)set64k->batch_rows;
  for (int side = 0; side < 2; side++) {
    printf("bench mixed side=%s writers=4 readers=4 put_rows=%lld writer_alone_rows_per_s=%.0f "
           "writer_mixed_rows_per_s=%.0f writer_mixed_vs_alone=%.2f reads=%lld "
           "count_p50_ms=%.2f count_p99_ms=%.2f groupby_p50_ms=%.2f groupby_p99_ms=%.2f\n",
           side == 0 ? "server" : "inprocess", (long long)set64k->batch_rows,
           alone_ps[side] * rows_per_put, mixed_ps[side] * rows_per_put,
           mixed_ps[side] / alone_ps[side], (long long)reads[side], cnt[side][0] * 1e3,
           cnt[side][1] * 1e3, grp[side][0] * 1e3, grp[side][1] * 1e3);
  }
  printf("bench mixed_ratio count_p99_ratio=%.2f groupby_p99_ratio=%.2f writer_mixed_ratio=%.2f "
         "writer_alone_ratio=%.2f\n",
         cnt[0][1] / cnt[1][1], grp[0][1] / grp[1][1], mixed_ps[0] / mixed_ps[1],
         alone_ps[0] / alone_ps[1]);
  fflush(stdout);
  add_result("mixed", "writers alone", "rows/s", alone_ps[0] * rows_per_put,
             alone_ps[1] * rows_per_put, alone_ps[0] / alone_ps[1], NULL, -1);
  add_result("mixed", "writers with 4 readers", "rows/s", mixed_ps[0] * rows_per_put,
             mixed_ps[1] * rows_per_put, mixed_ps[0] / mixed_ps[1], NULL, -1);
  add_result("mixed", "count(*) p50", "ms", cnt[0][0] * 1e3, cnt[1][0] * 1e3, cnt[0][0] / cnt[1][0],
             NULL, -1);
  add_result("mixed", "count(*) p99", "ms", cnt[0][1] * 1e3, cnt[1][1] * 1e3, cnt[0][1] / cnt[1][1],
             "<= 10 ms", cnt[0][1] * 1e3 <= 10.0);
  add_result("mixed", "group-by p50", "ms", grp[0][0] * 1e3, grp[1][0] * 1e3, grp[0][0] / grp[1][0],
             NULL, -1);
  add_result("mixed", "group-by p99", "ms", grp[0][1] * 1e3, grp[1][1] * 1e3, grp[0][1] / grp[1][1],
             NULL, -1);
}

/* ---------------------------------------------------------------------------------------------
 * Probe: does the catalog work a DoPut handler does before handing its put to the committer
 * (wg_engine_ingest_begin_deferred: prepares "SELECT * FROM t LIMIT 0" twice, converts the
 * schema) wait for another connection's COMMIT + fsync? Timed on its own, then while a second
 * connection commits 1,000-row transactions back to back (what the group committer does). */

struct probe_committer {
  struct wg_engine_conn *conn;
  const struct batch_set *set;
  const struct ArrowSchema *schema;
  atomic_bool stop;
  struct samples lat;
};

static void *probe_commit_loop(void *arg) {
  struct probe_committer *p = arg;
  struct duck_writer w;
  duck_writer_init(&w, wg_engine_conn_duckdb(p->conn), p->schema);
  for (int64_t k = 0; !atomic_load(&p->stop); k++) {
    double t0 = now_s();
    duck_put(&w, "probe", p->set, k % p->set->n, 1);
    samples_add(&p->lat, now_s() - t0);
  }
  duck_writer_reset(&w);
  return NULL;
}

static void probe_measure(struct wg_engine_conn *c, const struct ArrowSchema *schema, double secs,
                          struct samples *begin_lat, struct samples *prep_lat) {
  double until = now_s() + secs;
  duckdb_connection dc = wg_engine_conn_duckdb(c);
  while (now_s() < until) {
    struct wg_engine_ingest *ing = NULL;
    struct wg_error err = {""};
    double t0 = now_s();
    int rc = wg_engine_ingest_begin_deferred(c, NULL, "probe", schema, &ing, &err);
    double t1 = now_s();
    if (rc != 0) die("wg_engine_ingest_begin_deferred", rc, err.message);
    samples_add(begin_lat, t1 - t0);
    wg_engine_ingest_abort(ing);
    duckdb_prepared_statement p = NULL;
    t0 = now_s();
    duckdb_state st = duckdb_prepare(dc, "SELECT * FROM probe LIMIT 0", &p);
    t1 = now_s();
    if (st != DuckDBSuccess) die("duckdb_prepare", EIO, duckdb_prepare_error(p));
    duckdb_destroy_prepare(&p);
    samples_add(prep_lat, t1 - t0);
  }
}

static void figure_probe(const struct batch_set *set1k, const struct ArrowSchema *schema) {
  char db[PATH_MAX];
  db_path(db, sizeof(db), "probe");
  struct wg_engine *e = engine_open(db, 2);
  struct wg_engine_conn *a = engine_acquire(e), *b = engine_acquire(e);
  create_seed_table(wg_engine_conn_duckdb(a), "probe");
  struct samples begin_idle = {0}, prep_idle = {0}, begin_busy = {0}, prep_busy = {0};
  probe_measure(b, schema, cfg.probe_secs, &begin_idle, &prep_idle);
  struct probe_committer pc = {.conn = a, .set = set1k, .schema = schema};
  atomic_init(&pc.stop, false);
  pthread_t th;
  pthread_create(&th, NULL, probe_commit_loop, &pc);
  probe_measure(b, schema, cfg.probe_secs, &begin_busy, &prep_busy);
  atomic_store(&pc.stop, true);
  pthread_join(th, NULL);
  wg_engine_release(e, a);
  wg_engine_release(e, b);
  wg_engine_close(e);
  double commit_p50 = percentile(pc.lat.v, pc.lat.n, 0.5);
  double bi50 = percentile(begin_idle.v, begin_idle.n, 0.5);
  double bb50 = percentile(begin_busy.v, begin_busy.n, 0.5);
  double bb99 = percentile(begin_busy.v, begin_busy.n, 0.99);
  double pi50 = percentile(prep_idle.v, prep_idle.n, 0.5);
  double pb50 = percentile(prep_busy.v, prep_busy.n, 0.5);
  double pb99 = percentile(prep_busy.v, prep_busy.n, 0.99);
  printf("bench probe_prepare_vs_commit commit_txn_p50_ms=%.3f commits=%lld "
         "begin_deferred_idle_p50_ms=%.3f begin_deferred_busy_p50_ms=%.3f "
         "begin_deferred_busy_p99_ms=%.3f prepare_idle_p50_ms=%.3f prepare_busy_p50_ms=%.3f "
         "prepare_busy_p99_ms=%.3f begin_deferred_per_s_idle=%.0f begin_deferred_per_s_busy=%.0f\n",
         commit_p50 * 1e3, (long long)pc.lat.n, bi50 * 1e3, bb50 * 1e3, bb99 * 1e3, pi50 * 1e3,
         pb50 * 1e3, pb99 * 1e3, (double)begin_idle.n / cfg.probe_secs,
         (double)begin_busy.n / cfg.probe_secs);
  fflush(stdout);
  add_result("probe", "begin_deferred p50, idle vs during commits", "ms", bb50 * 1e3, bi50 * 1e3,
             bb50 / bi50, NULL, -1);
  add_result("probe", "prepare p50, idle vs during commits", "ms", pb50 * 1e3, pi50 * 1e3,
             pb50 / pi50, NULL, -1);
  free(pc.lat.v);
  free(begin_idle.v), free(prep_idle.v), free(begin_busy.v), free(prep_busy.v);
}

/* ---------------------------------------------------------------------------------------------
 * main */

static void usage(void) {
  fprintf(stderr, "usage: bench_server [--quick] [--only ingest|query|small|mixed|probe|tail] "
                  "[--perf DIR]\n");
  exit(2);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0)
      cfg.quick = true;
    else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
      cfg.only = argv[++i];
    else if (strcmp(argv[i], "--perf") == 0 && i + 1 < argc)
      cfg.perf_dir = argv[++i];
    else
      usage();
  }
  if (cfg.quick) {
    cfg.ingest_puts = 16, cfg.put_rows = 65536; /* quick: a 64k-batch put is one batch */
    cfg.seed_rows = 500000, cfg.big_rows = 5000000;
    cfg.small_secs = 1.5, cfg.mixed_secs = 1.5, cfg.probe_secs = 1;
    cfg.tail_subs = 50;
  } else {
    cfg.ingest_puts = 32, cfg.put_rows = 262144;
    cfg.seed_rows = 10000000, cfg.big_rows = 50000000;
    cfg.small_secs = 10, cfg.mixed_secs = 8, cfg.probe_secs = 3;
    cfg.tail_subs = 500;
  }
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) die("readlink /proc/self/exe", errno, NULL);
  self[n] = '\0';
  snprintf(exe_dir, sizeof(exe_dir), "%s", dirname(self));
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(tmp_root, sizeof(tmp_root), "%s/wigeon-bench-XXXXXX", tmp);
  if (mkdtemp(tmp_root) == NULL) die("mkdtemp", errno, tmp_root);

  double t_start = now_s();
  struct ArrowSchema schema;
  seed_schema(&schema);
  struct batch_set set1k, set64k;
  int64_t total = cfg.ingest_puts * cfg.put_rows;
  batch_set_build(&set64k, 65536, total);
  batch_set_build(&set1k, 1024, total);
  printf("bench setup batches_64k=%lld batches_1k=%lld rows=%lld bytes_64k=%lld bytes_1k=%lld "
         "seconds=%.2f tmp=%s\n",
         (long long)set64k.n, (long long)set1k.n, (long long)set64k.rows, (long long)set64k.bytes,
         (long long)set1k.bytes, now_s() - t_start, tmp_root);
  fflush(stdout);
  /* the small-put figures use 1,000-row puts: views of the first 1,000 rows of each 1k batch */
  struct batch_set set1000 = set1k;
  set1000.b = xcalloc((size_t)set1k.n, sizeof(struct batch));
  set1000.batch_rows = 1000;
  for (int64_t i = 0; i < set1k.n; i++) {
    set1000.b[i] = set1k.b[i];
    if (wg_array_share(&set1k.b[i].array, &set1000.b[i].array) != 0) die("share", ENOMEM, NULL);
    set1000.b[i].array.length = 1000;
    for (int c = 0; c < 4; c++) {
      struct ArrowArray *ch = set1000.b[i].array.children[c];
      ch->length = 1000;
      ch->null_count =
          ch->null_count == 0 ? 0 : 1000 - wg_bitmap_count_set(ch->buffers[0], 0, 1000);
    }
    set1000.b[i].rows = 1000;
  }

  const struct batch_set *sets[2] = {&set1k, &set64k};
  if (wanted("ingest")) figure_ingest(sets, &schema);
  if (wanted("query")) figure_query();
  if (wanted("small")) figure_small(&set1000, &schema);
  if (wanted("mixed")) figure_mixed(&set64k, &schema);
  if (wanted("probe")) figure_probe(&set1000, &schema);
  if (wanted("tail")) figure_tail(&schema);
  print_table();
  printf("bench total seconds=%.1f\n", now_s() - t_start);

  for (int64_t i = 0; i < set1k.n; i++) {
    wg_array_release(&set1000.b[i].array);
    wg_array_release(&set1k.b[i].array);
  }
  for (int64_t i = 0; i < set64k.n; i++)
    wg_array_release(&set64k.b[i].array);
  free(set1000.b);
  free(set1k.b);
  free(set64k.b);
  wg_schema_release(&schema);
  rm_tree(tmp_root);
  return 0;
}
