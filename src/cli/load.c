/* wigeon: `wigeon load`, the seeds' loader: writer threads putting random batches of
 * (batch_id BIGINT, timestamp VARCHAR, value DOUBLE, category VARCHAR), or (id BIGINT,
 * value DOUBLE) with --shape kv, each put its own DoPut (its own transaction) of
 * --batches-per-put batches. The main thread prints rows/s once a second. Also the engine of
 * `wigeon demo`. Batches are built straight into Arrow buffers (one allocation per batch). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arrow/array.h"
#include "cli/cli.h"

/* ---- random batches ---- */

static uint64_t next_random(uint64_t *state) { /* xorshift64* */
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static const char *const categories[] = {"alpha",   "beta", "gamma", "delta",
                                         "epsilon", "zeta", "eta",   "theta"};
#define TS_LEN 26 /* "2026-01-02 03:04:05.678901" */

static int make_schema(enum wg_cli_shape shape, struct ArrowSchema *out) {
  bool kv = shape == WG_CLI_SHAPE_KV;
  int n = kv ? 2 : 4;
  WG_RETURN_NOT_OK(wg_schema_node_init(out, "+s", n, NULL));
  const char *names[4] = {kv ? "id" : "batch_id", kv ? "value" : "timestamp", "value", "category"};
  const char *formats[4] = {"l", kv ? "g" : "u", "g", "u"};
  for (int i = 0; i < n; i++) {
    if (wg_schema_node_init(out->children[i], formats[i], 0, NULL) != 0 ||
        wg_schema_set_name(out->children[i], names[i]) != 0) {
      wg_schema_release(out);
      return ENOMEM;
    }
  }
  return 0;
}

static int make_batch(struct wg_cli_loader *l, uint64_t *rng, struct ArrowArray *out) {
  int64_t n = l->rows;
  bool kv = l->shape == WG_CLI_SHAPE_KV;
  size_t bytes = (size_t)n * 16 + 64;
  if (!kv) bytes += (size_t)(n + 1) * 8 + (size_t)n * (TS_LEN + 8);
  uint8_t *block = malloc(bytes);
  if (block == NULL) return ENOMEM;
  struct wg_shared *holder = wg_shared_take(block, (int64_t)bytes);
  if (holder == NULL) return ENOMEM;
  int64_t *ids = (int64_t *)block;
  double *values = (double *)(block + n * 8);
  int32_t *ts_off = (int32_t *)(block + n * 16);
  int32_t *cat_off = ts_off + (n + 1);
  char *ts = (char *)(cat_off + (n + 1));
  char *cat = ts + n * TS_LEN;
  int64_t first = kv ? atomic_fetch_add(&l->next_id, n) : atomic_fetch_add(&l->next_batch_id, 1);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  int64_t base_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
  int64_t shown_sec = -1;
  char sec_text[32] = "";
  int32_t cpos = 0;
  for (int64_t i = 0; i < n; i++) {
    ids[i] = kv ? first + i : first;
    values[i] = (double)(next_random(rng) >> 11) * (1000.0 / 9007199254740992.0);
    if (kv) continue;
    int64_t us = base_us + i;
    if (us / 1000000 != shown_sec) {
      shown_sec = us / 1000000;
      time_t t = (time_t)shown_sec;
      struct tm tm;
      gmtime_r(&t, &tm);
      strftime(sec_text, sizeof(sec_text), "%Y-%m-%d %H:%M:%S", &tm);
    }
    char text[48];
    snprintf(text, sizeof(text), "%s.%06d", sec_text, (int)(us % 1000000));
    memcpy(ts + i * TS_LEN, text, TS_LEN);
    ts_off[i] = (int32_t)(i * TS_LEN);
    const char *c = categories[next_random(rng) % 8];
    size_t cl = strlen(c);
    cat_off[i] = cpos;
    memcpy(cat + cpos, c, cl);
    cpos += (int32_t)cl;
  }
  int rc = wg_array_node_init(out, 1, kv ? 2 : 4, holder);
  out->length = n;
  struct ArrowArray **ch = out->children;
  if (rc == 0) rc = wg_array_node_init(ch[0], 2, 0, holder);
  if (rc == 0) {
    ch[0]->length = n;
    ch[0]->buffers[1] = ids;
  }
  struct ArrowArray *value_col = kv ? ch[1] : ch[2];
  if (rc == 0) rc = wg_array_node_init(value_col, 2, 0, holder);
  if (rc == 0) {
    value_col->length = n;
    value_col->buffers[1] = values;
  }
  if (!kv) {
    ts_off[n] = (int32_t)(n * TS_LEN);
    cat_off[n] = cpos;
    if (rc == 0) rc = wg_array_node_init(ch[1], 3, 0, holder);
    if (rc == 0) {
      ch[1]->length = n;
      ch[1]->buffers[1] = ts_off;
      ch[1]->buffers[2] = ts;
    }
    if (rc == 0) rc = wg_array_node_init(ch[3], 3, 0, holder);
    if (rc == 0) {
      ch[3]->length = n;
      ch[3]->buffers[1] = cat_off;
      ch[3]->buffers[2] = cat;
    }
  }
  wg_shared_unref(holder);
  if (rc != 0) wg_array_release(out);
  return rc;
}

/* One put's worth of batches, built as the client asks for them. */
struct gen {
  struct wg_cli_loader *l;
  uint64_t *rng;
  int64_t left;
  int64_t made;
};

static int gen_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct gen *g = s->private_data;
  return make_schema(g->l->shape, out);
}

static int gen_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct gen *g = s->private_data;
  out->release = NULL;
  if (g->left == 0) return 0;
  g->left--;
  g->made++;
  return make_batch(g->l, g->rng, out);
}

static const char *gen_last_error(struct ArrowArrayStream *s) {
  return NULL;
}

static void gen_release(struct ArrowArrayStream *s) {
  s->release = NULL; /* the generator lives on the writer's stack */
}

/* ---- writers ---- */

#define LOAD_RETRIES 50 /* 10 s of a server that is unreachable */

struct writer_arg {
  struct wg_cli_loader *l;
  int index;
};

static void *writer_main(void *p) {
  struct writer_arg *w = p;
  struct wg_cli_loader *l = w->l;
  uint64_t rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(w->index + 1) ^ (uint64_t)time(NULL);
  if (rng == 0) rng = 1;
  int64_t done = 0;
  while (!atomic_load(&l->stop) && (l->batches == 0 || done < l->batches)) {
    int64_t k = l->batches_per_put;
    if (l->batches > 0 && l->batches - done < k) k = l->batches - done;
    struct gen g = {l, &rng, k, 0};
    struct ArrowArrayStream s = {gen_get_schema, gen_get_next, gen_last_error, gen_release, &g};
    int64_t rows = 0;
    struct wg_error err = {""};
    /* Every put has its own key, and a put whose outcome is unknown because the server is
     * unreachable (restarting) is sent again with that key: it lands once. */
    char key[96];
    snprintf(key, sizeof(key), "%s-%d-%lld", l->run_key, w->index, (long long)done);
    int rc = 0;
    for (int attempt = 0;; attempt++) {
      struct wg_status st;
      wg_put_idempotent(l->client, l->schema_name, l->table, key, &s, NULL, NULL, &rows, &st);
      rc = wg_cli_status(&st, &err);
      if (rc != ECONNREFUSED || attempt >= LOAD_RETRIES || atomic_load(&l->stop)) break;
      struct timespec pause = {0, 200000000L};
      nanosleep(&pause, NULL);
      g = (struct gen){l, &rng, k, 0};
      s = (struct ArrowArrayStream){gen_get_schema, gen_get_next, gen_last_error, gen_release, &g};
    }
    if (rc != 0) {
      pthread_mutex_lock(&l->lock);
      if (l->status == 0) {
        l->status = rc;
        l->error = err;
      }
      pthread_mutex_unlock(&l->lock);
      atomic_store(&l->stop, true);
      break;
    }
    done += k;
    atomic_fetch_add(&l->rows_done, rows);
    atomic_fetch_add(&l->batches_done, k);
  }
  free(w);
  return NULL;
}

int wg_cli_loader_start(struct wg_cli_loader *l, struct wg_error *err) {
  wg_cli_random_key("load", l->run_key, sizeof(l->run_key));
  atomic_init(&l->stop, false);
  atomic_init(&l->rows_done, 0);
  atomic_init(&l->batches_done, 0);
  atomic_init(&l->next_batch_id, 1);
  atomic_init(&l->next_id, 1);
  pthread_mutex_init(&l->lock, NULL);
  l->status = 0;
  l->started = 0;
  l->threads = calloc((size_t)l->writers, sizeof(pthread_t));
  if (l->threads == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  for (int i = 0; i < l->writers; i++) {
    struct writer_arg *w = malloc(sizeof(*w));
    if (w == NULL) {
      atomic_store(&l->stop, true);
      return wg_error_set(err, ENOMEM, "out of memory");
    }
    w->l = l;
    w->index = i;
    int rc = pthread_create(&l->threads[i], NULL, writer_main, w);
    if (rc != 0) {
      free(w);
      atomic_store(&l->stop, true);
      return wg_error_set(err, rc, "cannot start writer %d: %s", i, strerror(rc));
    }
    l->started++;
  }
  return 0;
}

bool wg_cli_loader_done(struct wg_cli_loader *l) {
  if (atomic_load(&l->stop)) return true;
  return l->batches > 0 && atomic_load(&l->batches_done) / l->writers >= l->batches;
}

int wg_cli_loader_join(struct wg_cli_loader *l) {
  atomic_store(&l->stop, true);
  for (int i = 0; i < l->started; i++)
    pthread_join(l->threads[i], NULL);
  free(l->threads);
  l->threads = NULL;
  l->started = 0;
  pthread_mutex_destroy(&l->lock);
  return l->status;
}

/* ---- the command ---- */

static void usage(FILE *f) {
  fprintf(f,
          "usage: wigeon load [options]\n"
          "\n"
          "Puts random batches into a table with parallel writers, printing rows/s once a second\n"
          "and a summary at the end. Without --batches or --duration it runs until Ctrl-C.\n"
          "\n"
          "options:\n"
          "  --shape events|kv       events: (batch_id BIGINT, timestamp VARCHAR, value DOUBLE,\n"
          "                          category VARCHAR), the default; kv: (id BIGINT, value "
          "DOUBLE)\n"
          "  --table T               the table (default: events, or kv with --shape kv)\n"
          "  --schema S              the table's schema (default: main)\n"
          "  --rows N                rows per batch (default: 1000)\n"
          "  --writers N             writer threads, each with its own puts (default: 1)\n"
          "  --batches M             batches per writer, then stop\n"
          "  --duration S            stop after S (1.5, 10s, 2m)\n"
          "  --batches-per-put K     batches in one DoPut, one transaction (default: 1)\n"
          "  --quiet                 no line per second, only the summary\n"
          "  --server URI            grpc://HOST:PORT (default: $WIGEON_SERVER, else %s)\n"
          WG_CLI_TLS_HELP
          "  -h, --help              this text\n"
          "\n"
          "Each put carries its own idempotency key; a put cut off by an unreachable server is\n"
          "sent again with it for up to 10 s, so it lands once.\n"
          "exit codes: 0 ok, 1 usage error, 2 error from the server, 3 cannot connect\n",
          WG_CLI_DEFAULT_SERVER);
}

int wg_cli_load(int argc, char **argv) {
  static const struct wg_cli_command cmd = {"load", usage};
  const char *server = NULL, *shape = "events", *table = NULL, *schema_name = NULL,
             *rows_s = "1000", *writers_s = "1", *batches_s = NULL, *duration_s = NULL,
             *per_put_s = "1";
  bool quiet = false;
  const struct wg_cli_opt opts[] = {{"--server", NULL, &server, NULL},
                                    {"--shape", NULL, &shape, NULL},
                                    {"--table", "-t", &table, NULL},
                                    {"--schema", NULL, &schema_name, NULL},
                                    {"--rows", NULL, &rows_s, NULL},
                                    {"--writers", NULL, &writers_s, NULL},
                                    {"--batches", NULL, &batches_s, NULL},
                                    {"--duration", NULL, &duration_s, NULL},
                                    {"--batches-per-put", NULL, &per_put_s, NULL},
                                    {"--quiet", "-q", NULL, &quiet},
                                    {NULL, NULL, NULL, NULL}};
  int n_pos = 0;
  int rc = wg_cli_parse(&cmd, argc, argv, opts, NULL, 0, &n_pos);
  if (rc >= 0) return rc;
  struct wg_cli_loader l;
  memset(&l, 0, sizeof(l));
  if (strcmp(shape, "events") == 0)
    l.shape = WG_CLI_SHAPE_EVENTS;
  else if (strcmp(shape, "kv") == 0)
    l.shape = WG_CLI_SHAPE_KV;
  else
    return wg_cli_usage_error(&cmd, "--shape is events or kv, not '%s'", shape);
  int64_t writers = 0;
  double duration = 0;
  if ((rc = wg_cli_opt_int(&cmd, "--rows", rows_s, 1, 10000000, &l.rows)) >= 0) return rc;
  if ((rc = wg_cli_opt_int(&cmd, "--writers", writers_s, 1, 1024, &writers)) >= 0) return rc;
  if (batches_s &&
      (rc = wg_cli_opt_int(&cmd, "--batches", batches_s, 1, INT64_MAX / 2, &l.batches)) >= 0)
    return rc;
  if (duration_s && (rc = wg_cli_opt_seconds(&cmd, "--duration", duration_s, &duration)) >= 0)
    return rc;
  if ((rc = wg_cli_opt_int(&cmd, "--batches-per-put", per_put_s, 1, 1000000, &l.batches_per_put)) >=
      0)
    return rc;
  l.writers = (int)writers;
  l.table = table ? table : l.shape == WG_CLI_SHAPE_KV ? "kv" : "events";
  l.schema_name = schema_name;

  struct wg_cli_conn cx;
  if ((rc = wg_cli_conn_open(&cx, cmd.name, server)) != 0) return rc;
  l.client = cx.client;
  wg_cli_catch_interrupt();
  struct wg_error err = {""};
  double t0 = wg_cli_now();
  int status = wg_cli_loader_start(&l, &err);
  double next_line = t0 + 1;
  int64_t last_rows = 0;
  double last_time = t0;
  while (status == 0 && !wg_cli_loader_done(&l) && !wg_cli_interrupted() &&
         (duration <= 0 || wg_cli_now() - t0 < duration)) {
    wg_cli_sleep(0.02);
    double now = wg_cli_now();
    if (now >= next_line) {
      int64_t rows = atomic_load(&l.rows_done);
      if (!quiet) {
        char a[32], b[32];
        printf("%6.1f s  %s rows  %s rows/s\n", now - t0, wg_cli_commas(rows, a, sizeof(a)),
               wg_cli_rate(rows - last_rows, now - last_time, b, sizeof(b)));
        fflush(stdout);
      }
      last_rows = rows;
      last_time = now;
      next_line += 1;
    }
  }
  int wstatus = wg_cli_loader_join(&l);
  if (status == 0 && wstatus != 0) {
    status = wstatus;
    err = l.error;
  }
  double secs = wg_cli_now() - t0;
  int64_t rows = atomic_load(&l.rows_done), batches = atomic_load(&l.batches_done);
  char a[32], b[32], c[32];
  printf("loaded %s rows (%s batches, %d writer%s) into %s%s%s in %.1f s (%s rows/s)\n",
         wg_cli_commas(rows, a, sizeof(a)), wg_cli_commas(batches, b, sizeof(b)), l.writers,
         l.writers == 1 ? "" : "s", schema_name ? schema_name : "", schema_name ? "." : "", l.table,
         secs, wg_cli_commas(secs > 0 ? (int64_t)((double)rows / secs) : rows, c, sizeof(c)));
  fflush(stdout);
  rc = status != 0 ? wg_cli_conn_fail(&cx, status, err.message) : 0;
  wg_cli_conn_close(&cx);
  return rc;
}
