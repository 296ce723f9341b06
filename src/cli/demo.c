/* wigeon: `wigeon demo`: the seeds' example in one command: a server in this process on a
 * temporary database, two writers putting kv batches, a reader counting the rows once a second,
 * and a live tail (a subscriber thread) receiving every put as it commits. Ctrl-C or --duration
 * stops the writers; the tail must then have seen as many rows live as the table holds; then the
 * server stops and the database is removed. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "server/server.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: wigeon demo [options]\n"
          "\n"
          "Starts a server on a temporary database, two writers putting (id BIGINT, value DOUBLE)\n"
          "batches into table kv, a reader printing the count once a second (elapsed time, rows\n"
          "counted, rows/s) and a live tail of kv (`wigeon tail kv`) that receives every put as\n"
          "it commits: each line shows the rows it has seen live, the last commit sequence and\n"
          "the first row of the newest batch. Stops on Ctrl-C or after --duration; a summary\n"
          "line then compares the rows seen live with the rows in kv (equal: exit 0; else 2).\n"
          "Then removes the database.\n"
          "\n"
          "options:\n"
          "  --duration S        stop after S (1.5, 10s, 2m); default: until Ctrl-C\n"
          "  --rows N            rows per batch (default: 10000)\n"
          "  --writers N         writer threads (default: 2)\n"
          "  -h, --help          this text\n");
}

static int count_rows(struct wg_client *c, int64_t *out, struct wg_error *err) {
  struct ArrowArrayStream s;
  struct wg_status qs;
  wg_query(c, "SELECT count(*) FROM kv", &s, &qs);
  WG_RETURN_NOT_OK(wg_cli_status(&qs, err));
  struct ArrowSchema schema;
  int rc = s.get_schema(&s, &schema);
  if (rc == 0) {
    schema.release(&schema);
    struct ArrowArray a;
    rc = s.get_next(&s, &a);
    /* count(*) is one BIGINT: buffers[1] of the only child */
    if (rc == 0 && a.release != NULL && a.n_children == 1 && a.children[0]->length > 0) {
      const int64_t *v = a.children[0]->buffers[1];
      *out = v[a.children[0]->offset];
    }
    if (rc == 0 && a.release != NULL) a.release(&a);
  }
  if (rc != 0) {
    const char *m = s.get_last_error(&s);
    int st = wg_cli_stream_errno(&s);
    rc = wg_error_set(err, st ? st : rc, "%s", m ? m : "count failed");
  }
  s.release(&s);
  return rc;
}

/* The demo's live tail: a subscriber thread reading every batch of kv as it commits. */
struct demo_tail {
  wg_tail_stream *t;
  pthread_t thread;
  bool running;
  atomic_bool live;          /* the start marker arrived: every later put reaches the tail */
  atomic_bool ended;         /* the thread's read ended (d->st says how) */
  atomic_llong rows, batches; /* seen live */
  atomic_ullong sequence;    /* of the last batch */
  pthread_mutex_t mu;        /* guards the newest batch's first row */
  int64_t first_id;
  double first_value;
  bool have_first;
  struct wg_status st; /* how the tail ended; read after the join */
};

/* The first row of a kv batch (id BIGINT, value DOUBLE), when its types are those. */
static void demo_tail_sample(struct demo_tail *d, const struct ArrowSchema *s,
                             const struct ArrowArray *b) {
  if (b->length == 0 || s->n_children != 2 || b->n_children != 2 ||
      strcmp(s->children[0]->format, "l") != 0 || strcmp(s->children[1]->format, "g") != 0 ||
      b->children[0]->n_buffers < 2 || b->children[1]->n_buffers < 2)
    return;
  const struct ArrowArray *id = b->children[0], *value = b->children[1];
  pthread_mutex_lock(&d->mu);
  d->first_id = ((const int64_t *)id->buffers[1])[id->offset + b->offset];
  d->first_value = ((const double *)value->buffers[1])[value->offset + b->offset];
  d->have_first = true;
  pthread_mutex_unlock(&d->mu);
}

static void *demo_tail_run(void *arg) {
  struct demo_tail *d = arg;
  for (;;) {
    struct ArrowArray b;
    struct wg_tail_info info;
    if (wg_tail_next(d->t, &b, &info, &d->st) != 0 || b.release == NULL) break;
    if (info.start) atomic_store(&d->live, true);
    if (!info.snapshot && !info.start) {
      atomic_fetch_add(&d->rows, b.length);
      atomic_fetch_add(&d->batches, 1);
      atomic_store(&d->sequence, info.sequence);
      demo_tail_sample(d, wg_tail_schema(d->t), &b);
    }
    b.release(&b);
  }
  atomic_store(&d->ended, true);
  atomic_store(&d->live, true); /* nobody waits for the marker any more */
  return NULL;
}

/* Subscribes to kv and waits (5 s at most) for the start marker. 0 or a status code (err). */
static int demo_tail_start(struct demo_tail *d, struct wg_client *c, struct wg_error *err) {
  struct wg_tail_options o = {.table = "kv", .from = "now"};
  struct wg_status st;
  if (wg_tail_open(c, &o, &d->t, &st) != 0) return wg_cli_status(&st, err);
  pthread_mutex_init(&d->mu, NULL);
  if (pthread_create(&d->thread, NULL, demo_tail_run, d) != 0) {
    wg_tail_close(d->t);
    d->t = NULL;
    return wg_error_set(err, EAGAIN, "cannot start the tail's thread");
  }
  d->running = true;
  for (int i = 0; i < 500 && !atomic_load(&d->live); i++)
    wg_cli_sleep(0.01);
  if (atomic_load(&d->live)) return 0;
  return wg_error_set(err, ETIMEDOUT, "the live tail did not start within 5 s");
}

/* Waits (10 s at most) until the tail has seen `count` rows, then stops it. Returns what the
 * tail saw; an error of the tail is returned as a status code (err). */
static int demo_tail_stop(struct demo_tail *d, int64_t count, struct wg_error *err) {
  if (!d->running) return 0;
  for (int i = 0; i < 1000 && atomic_load(&d->rows) < count && !atomic_load(&d->ended); i++)
    wg_cli_sleep(0.01);
  wg_tail_cancel(d->t);
  pthread_join(d->thread, NULL);
  wg_tail_close(d->t);
  pthread_mutex_destroy(&d->mu);
  d->running = false;
  return wg_cli_status(&d->st, err);
}

/* ", live N (seq S; newest: id I, value V)" for the per-second line. */
static void demo_tail_line(struct demo_tail *d, char *buf, size_t size) {
  char a[32];
  pthread_mutex_lock(&d->mu);
  int n = snprintf(buf, size, "  live %s", wg_cli_commas(atomic_load(&d->rows), a, sizeof(a)));
  if (d->have_first && n > 0 && (size_t)n < size)
    snprintf(buf + n, size - (size_t)n,
             "  (seq %" PRIu64 ", newest batch from id %lld, value %.3f)",
             (uint64_t)atomic_load(&d->sequence), (long long)d->first_id, d->first_value);
  pthread_mutex_unlock(&d->mu);
}

int wg_cli_demo(int argc, char **argv) {
  static const struct wg_cli_command cmd = {"demo", usage};
  const char *duration_s = NULL, *rows_s = "10000", *writers_s = "2";
  const struct wg_cli_opt opts[] = {{"--duration", NULL, &duration_s, NULL},
                                    {"--rows", NULL, &rows_s, NULL},
                                    {"--writers", NULL, &writers_s, NULL},
                                    {NULL, NULL, NULL, NULL}};
  int n_pos = 0;
  int rc = wg_cli_parse(&cmd, argc, argv, opts, NULL, 0, &n_pos);
  if (rc >= 0) return rc;
  double duration = 0;
  int64_t rows = 0, writers = 0;
  if (duration_s && (rc = wg_cli_opt_seconds(&cmd, "--duration", duration_s, &duration)) >= 0)
    return rc;
  if ((rc = wg_cli_opt_int(&cmd, "--rows", rows_s, 1, 10000000, &rows)) >= 0) return rc;
  if ((rc = wg_cli_opt_int(&cmd, "--writers", writers_s, 1, 64, &writers)) >= 0) return rc;

  const char *tmp = getenv("TMPDIR");
  char dir[4096], db[4200];
  snprintf(dir, sizeof(dir), "%s/wigeon-demo-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  if (mkdtemp(dir) == NULL) {
    fprintf(stderr, "wigeon demo: cannot create a temporary directory: %s\n", strerror(errno));
    return WG_EXIT_SERVER;
  }
  snprintf(db, sizeof(db), "%s/demo.duckdb", dir);
  wg_cli_catch_interrupt();
  struct wg_server_options so = {
      .db_path = db, .listen = "127.0.0.1:0", .threads = 4, .grace_ms = 5000};
  struct wg_server *server = NULL;
  struct wg_error err = {""};
  int port = 0;
  if (wg_server_start(&server, &so, &port, &err) != 0) {
    fprintf(stderr, "wigeon demo: cannot start the server: %s\n", err.message);
    wg_cli_rmdir(dir);
    return WG_EXIT_SERVER;
  }
  char uri[64];
  snprintf(uri, sizeof(uri), "grpc://127.0.0.1:%d", port);
  printf("server on %s, database %s\n", uri, db);
  printf("%lld writers putting %lld-row batches into kv; one reader counting every second%s\n",
         (long long)writers, (long long)rows, duration > 0 ? "" : " (Ctrl-C stops)");
  fflush(stdout);

  struct wg_cli_conn cx;
  int status = 0;
  if ((rc = wg_cli_conn_open(&cx, cmd.name, uri)) != 0) goto stop_server;
  static const char create[] = "CREATE TABLE kv (id BIGINT, value DOUBLE)";
  struct wg_status as;
  wg_action(cx.client, "execute", create, strlen(create), NULL, &as);
  status = wg_cli_status(&as, &err);
  struct wg_cli_loader l;
  memset(&l, 0, sizeof(l));
  l.client = cx.client;
  l.table = "kv";
  l.shape = WG_CLI_SHAPE_KV;
  l.rows = rows;
  l.batches_per_put = 1;
  l.writers = (int)writers;
  struct demo_tail tail;
  memset(&tail, 0, sizeof(tail));
  if (status == 0) status = demo_tail_start(&tail, cx.client, &err);
  if (status == 0) status = wg_cli_loader_start(&l, &err);
  double t0 = wg_cli_now(), next = t0 + 1, last_time = t0;
  int64_t last_count = 0, count = 0;
  while (status == 0 && !wg_cli_interrupted() && !wg_cli_loader_done(&l) &&
         (duration <= 0 || wg_cli_now() - t0 < duration)) {
    wg_cli_sleep(0.02);
    double now = wg_cli_now();
    if (now < next) continue;
    status = count_rows(cx.client, &count, &err);
    if (status != 0) break;
    now = wg_cli_now();
    char a[32], b[32], live[160];
    demo_tail_line(&tail, live, sizeof(live));
    printf("%6.1f s  count %s  %s rows/s%s\n", now - t0, wg_cli_commas(count, a, sizeof(a)),
           wg_cli_rate(count - last_count, now - last_time, b, sizeof(b)), live);
    fflush(stdout);
    last_count = count;
    last_time = now;
    next += 1;
  }
  if (l.threads != NULL || l.started > 0) {
    int ws = wg_cli_loader_join(&l);
    if (status == 0 && ws != 0) {
      status = ws;
      err = l.error;
    }
  }
  if (status == 0) status = count_rows(cx.client, &count, &err);
  double secs = wg_cli_now() - t0;
  int ts = demo_tail_stop(&tail, status == 0 ? count : 0, status == 0 ? &err : NULL);
  if (status == 0) status = ts;
  if (status == 0) {
    char a[32], b[32], c[32];
    int64_t live = atomic_load(&tail.rows);
    printf("demo: %s rows in kv after %.1f s (%s rows/s)\n", wg_cli_commas(count, a, sizeof(a)),
           secs, wg_cli_commas(secs > 0 ? (int64_t)((double)count / secs) : count, b, sizeof(b)));
    printf("demo: the live tail saw %s rows in %s batches as they committed, up to sequence "
           "%" PRIu64 ": %s\n",
           wg_cli_commas(live, a, sizeof(a)),
           wg_cli_commas(atomic_load(&tail.batches), c, sizeof(c)),
           (uint64_t)atomic_load(&tail.sequence),
           live == count ? "every row put, once" : "NOT the rows in kv");
    if (live != count)
      status = wg_error_set(&err, EIO, "the live tail saw %lld rows, kv holds %lld",
                            (long long)live, (long long)count);
  }
  if (status != 0) {
    fprintf(stderr, "wigeon demo: %s\n", err.message);
    rc = wg_cli_exit_code(status);
  }
  wg_cli_conn_close(&cx);
stop_server:
  if (wg_server_stop(server, &err) != 0) {
    fprintf(stderr, "wigeon demo: stopping the server: %s\n", err.message);
    if (rc == 0) rc = WG_EXIT_SERVER;
  }
  wg_cli_rmdir(dir);
  printf("demo: server stopped, %s removed\n", dir);
  fflush(stdout);
  return rc;
}
