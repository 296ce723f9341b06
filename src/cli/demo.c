/* wigeon: `wigeon demo`: the seeds' example in one command: a server in this process on a
 * temporary database, two writers putting kv batches, and a reader counting the rows once a
 * second. Ctrl-C or --duration stops the writers, then the server; the database is removed. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "server/server.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: wigeon demo [options]\n"
          "\n"
          "Starts a server on a temporary database, two writers putting (id BIGINT, value DOUBLE)\n"
          "batches into table kv, and a reader printing the count once a second: elapsed time,\n"
          "rows counted and rows/s. Stops on Ctrl-C or after --duration, then removes the\n"
          "database.\n"
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
    char a[32], b[32];
    printf("%6.1f s  count %s  %s rows/s\n", now - t0, wg_cli_commas(count, a, sizeof(a)),
           wg_cli_rate(count - last_count, now - last_time, b, sizeof(b)));
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
  if (status == 0) {
    double secs = wg_cli_now() - t0;
    char a[32], b[32];
    printf("demo: %s rows in kv after %.1f s (%s rows/s)\n", wg_cli_commas(count, a, sizeof(a)),
           secs, wg_cli_commas(secs > 0 ? (int64_t)((double)count / secs) : count, b, sizeof(b)));
  } else {
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
