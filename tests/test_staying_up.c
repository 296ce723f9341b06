/* wigeon: the server stays up for everyone when some clients misbehave or the machine runs short,
 * end to end over loopback gRPC against real servers (in this process, or `wigeon serve` as a
 * child): clients that start large DoGets and stop reading do not hold up other clients' calls;
 * connections over --max-connections are refused at once while the others go on; a storm of
 * connections that exhausts the server's file descriptors leaves it serving once the storm is
 * gone; a second server cannot take a port that is in use. Also the DuckDB connection pool's
 * bounded wait and the detaching of a connection held by a stalled stream. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "flight/flight.h"
#include "rpc/rpc.h"
#include "support/server_fixture.h"
#include "test.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A stat of the server's `stats` action (-1 when it cannot be had). */
static int64_t stat_of(struct wg_client *c, const char *key) {
  struct wg_buf out = {0};
  struct wg_status ws;
  int64_t v = -1;
  if (wg_fx_action(c, "stats", "", 0, &out, &ws) == 0 && wg_buf_reserve(&out, 1) == 0) {
    out.data[out.size] = '\0';
    char needle[64];
    snprintf(needle, sizeof(needle), "\"%s\":", key);
    const char *at = strstr((const char *)out.data, needle);
    if (at != NULL) v = strtoll(at + strlen(needle), NULL, 10);
  }
  wg_buf_reset(&out);
  return v;
}

/* A TCP connection to 127.0.0.1:port that says nothing (-1 on failure). */
static int raw_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Runs `wigeon ARGS` (a fresh process: no gRPC state shared with this one), output to `out`;
 * returns the exit code, or -1. */
static int run_cli(const char *args, char *out, size_t size) {
  const char *build = getenv("WG_BUILD_DIR");
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "%s/wigeon %s 2>&1", build ? build : "build", args);
  FILE *f = popen(cmd, "r");
  if (f == NULL) return -1;
  size_t n = fread(out, 1, size - 1, f);
  out[n] = '\0';
  int st = pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- stalled readers ---- */

/* A DoGet of a large result whose client never reads: the call stays open until cancelled. */
static struct wg_rpc_client_call *start_stalled_get(struct wg_rpc_channel *ch) {
  const char *sql = "SELECT i, repeat('x', 200) AS pad FROM range(100000000) t(i)";
  Arrow__Flight__Protocol__Ticket t = ARROW__FLIGHT__PROTOCOL__TICKET__INIT;
  t.ticket.data = (uint8_t *)sql;
  t.ticket.len = strlen(sql);
  struct wg_error err;
  struct wg_rpc_client_call *call = NULL;
  if (wg_rpc_client_call_start(ch, WG_FLIGHT_SERVICE "DoGet", 120000, NULL, &call, &err) != 0)
    return NULL;
  grpc_byte_buffer *bb;
  if (wg_flight_pack(&t.base, &bb, &err) == 0) wg_rpc_client_call_send(call, bb);
  wg_rpc_client_call_close_send(call);
  return call;
}

static void stalled_readers_do_not_block_short_calls(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 8, .batch_rows = 8192}; /* idle timeout: 60 s */
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  enum { STALLED = 12 }; /* more than the 8 workers and the 8 pooled DuckDB connections */
  struct wg_rpc_channel *ch[STALLED];
  struct wg_rpc_client_call *calls[STALLED];
  struct wg_error err;
  struct wg_status ws;
  for (int i = 0; i < STALLED; i++) {
    ASSERT_OK(wg_rpc_channel_create(&ch[i], fx.uri, &err), &err);
    calls[i] = start_stalled_get(ch[i]);
    ASSERT_TRUE(calls[i] != NULL);
  }
  struct wg_client *c;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  int64_t until = now_ms() + 20000; /* every stalled stream has given back its pooled connection */
  while (stat_of(c, "stalled_gets") < STALLED && now_ms() < until)
    sleep_ms(50);
  int64_t stalled = stat_of(c, "stalled_gets"), active = stat_of(c, "active_calls");

  int64_t t0 = now_ms();
  int64_t calls_seen = stat_of(c, "calls");
  int64_t t1 = now_ms();
  int64_t v = 0;
  int rc = wg_fx_query_i64(c, "SELECT 42", &v, &ws);
  int64_t t2 = now_ms();
  int64_t changed = 0;
  int rc_ddl = wg_fx_query_i64(c, "SELECT count(*) FROM range(1000)", &changed, &ws);
  int64_t t3 = now_ms();
  fprintf(stderr, "  %d stalled DoGets (%lld detached, %lld active calls): stats %lld ms, "
          "SELECT 42 %lld ms, count(*) %lld ms\n",
          STALLED, (long long)stalled, (long long)active, (long long)(t1 - t0),
          (long long)(t2 - t1), (long long)(t3 - t2));

  for (int i = 0; i < STALLED; i++) {
    wg_rpc_client_call_destroy(calls[i]); /* cancels */
    wg_rpc_channel_destroy(ch[i]);
  }
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
  ASSERT_EQ(stalled, STALLED);
  ASSERT_TRUE(active >= STALLED);
  ASSERT_TRUE(calls_seen > 0);
  ASSERT_OK(rc, ws.message);
  ASSERT_EQ(v, 42);
  ASSERT_OK(rc_ddl, ws.message);
  ASSERT_EQ(changed, 1000);
  ASSERT_TRUE(t3 - t0 < 3000); /* milliseconds in practice; generous for sanitizers */
}

/* ---- connection limits ---- */

static void max_connections_refuses_extra_cleanly(void) {
  enum { MAX = 8 };
  struct wg_fx_server fx;
  struct wg_server_options o = {.threads = 2, .max_connections = MAX};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_client *c;
  struct wg_status ws;
  ASSERT_OK(wg_fx_connect(&c, fx.uri, &ws), ws.message);
  int64_t v = 0;
  ASSERT_OK(wg_fx_query_i64(c, "SELECT 1", &v, &ws), ws.message); /* holds one connection */
  int raw[MAX];
  int n_raw = 0;
  for (int i = 0; i < MAX - 1; i++)
    if ((raw[n_raw] = raw_connect(fx.port)) >= 0) n_raw++;
  int64_t until = now_ms() + 5000;
  while (stat_of(c, "connections") < MAX && now_ms() < until)
    sleep_ms(20);
  int64_t open_at_limit = stat_of(c, "connections");

  char out[4096], args[128];
  snprintf(args, sizeof(args), "query --server grpc://%s 'SELECT 7'", fx.uri);
  int64_t t0 = now_ms();
  int refused_exit = run_cli(args, out, sizeof(out));
  int64_t refused_ms = now_ms() - t0;
  fprintf(stderr, "  over the limit: exit %d in %lld ms: %.200s", refused_exit,
          (long long)refused_ms, out);
  int64_t refused = stat_of(c, "connections_refused");
  int rc_held = wg_fx_query_i64(c, "SELECT 2", &v, &ws); /* the connected client goes on */

  for (int i = 0; i < n_raw; i++)
    close(raw[i]);
  int served_exit = -1;
  until = now_ms() + 10000;
  while (served_exit != 0 && now_ms() < until) { /* gRPC notices the closes asynchronously */
    served_exit = run_cli(args, out, sizeof(out));
    if (served_exit != 0) sleep_ms(100);
  }
  wg_disconnect(c);
  wg_fx_server_stop(&fx);
  ASSERT_EQ(n_raw, MAX - 1);
  ASSERT_EQ(open_at_limit, MAX);
  ASSERT_EQ(refused_exit, 3); /* cannot connect */
  ASSERT_TRUE(refused_ms < 5000);
  ASSERT_TRUE(refused >= 1);
  ASSERT_OK(rc_held, ws.message);
  ASSERT_EQ(v, 2);
  ASSERT_EQ(served_exit, 0);
  ASSERT_TRUE(strstr(out, "7") != NULL);
}

static void fd_exhaustion_is_survivable(void) {
  /* 256 open files for the server and a connection cap above that: the storm runs it out of
   * descriptors (accept fails with EMFILE), which must not stop it accepting for good. */
  struct wg_fx_process p;
  const char *args[] = {"--db", ":memory:", "--max-connections", "1000", NULL};
  ASSERT_EQ(wg_fx_process_start_nofile(&p, args, 256), 0);
  enum { STORM = 400 };
  int *fds = malloc(STORM * sizeof(int));
  int opened = 0;
  for (int i = 0; i < STORM; i++)
    if ((fds[opened] = raw_connect(p.port)) >= 0) opened++;
  sleep_ms(500); /* let the server run into the limit */
  for (int i = 0; i < opened; i++)
    close(fds[i]);
  free(fds);

  char out[4096], cli[160];
  snprintf(cli, sizeof(cli), "query --server grpc://%s 'SELECT 40 + 2'", p.uri);
  int exit_code = -1;
  int64_t t0 = now_ms(), until = t0 + 15000;
  while (exit_code != 0 && now_ms() < until) {
    exit_code = run_cli(cli, out, sizeof(out));
    if (exit_code != 0) sleep_ms(100);
  }
  int64_t served_ms = now_ms() - t0;
  struct wg_client *c = NULL;
  struct wg_status ws;
  int64_t refused = -1, accepted = -1;
  if (wg_fx_connect(&c, p.uri, &ws) == 0) {
    refused = stat_of(c, "connections_refused");
    accepted = stat_of(c, "connections_accepted");
    wg_disconnect(c);
  }
  fprintf(stderr, "  storm of %d connections on 256 files: %lld accepted, %lld refused; served "
          "again %lld ms after the storm\n",
          opened, (long long)accepted, (long long)refused, (long long)served_ms);
  int st = wg_fx_process_stop(&p, SIGTERM);
  ASSERT_EQ(opened, STORM);
  ASSERT_EQ(exit_code, 0);
  ASSERT_TRUE(strstr(out, "42") != NULL);
  ASSERT_TRUE(refused >= 1); /* it did run out */
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void default_max_connections_stays_below_the_open_file_limit(void) {
  /* The same limit with the default cap: connections beyond it are refused before descriptors
   * run out, and the server serves again once they are gone. */
  struct wg_fx_process p;
  const char *args[] = {"--db", ":memory:", NULL};
  ASSERT_EQ(wg_fx_process_start_nofile(&p, args, 256), 0);
  enum { STORM = 300 };
  int fds[STORM];
  int opened = 0;
  for (int i = 0; i < STORM; i++)
    if ((fds[opened] = raw_connect(p.port)) >= 0) opened++;
  sleep_ms(300);
  char out[4096], cli[160];
  snprintf(cli, sizeof(cli), "stats --server grpc://%s", p.uri);
  int during = run_cli(cli, out, sizeof(out));
  for (int i = 0; i < opened; i++)
    close(fds[i]);
  int after = -1;
  int64_t until = now_ms() + 10000;
  while (after != 0 && now_ms() < until) {
    after = run_cli(cli, out, sizeof(out));
    if (after != 0) sleep_ms(100);
  }
  const char *at = strstr(out, "connections_accepted");
  long long accepted = at ? strtoll(at + strlen("connections_accepted"), NULL, 10) : -1;
  fprintf(stderr, "  default cap on 256 files: %lld accepted of %d + the stats calls\n",
          accepted, opened);
  wg_fx_process_stop(&p, SIGTERM);
  ASSERT_EQ(during, 3); /* refused while 300 are open */
  ASSERT_EQ(after, 0);
  ASSERT_TRUE(accepted >= 256 - 128 && accepted < opened); /* the cap, 128, plus the stats calls */
}

/* ---- ports ---- */

static void second_server_on_same_port_refuses(void) {
  struct wg_fx_process first;
  const char *args[] = {"--db", ":memory:", NULL};
  ASSERT_EQ(wg_fx_process_start(&first, args), 0);
  char out[4096], cli[160];
  snprintf(cli, sizeof(cli), "serve --db :memory: --listen grpc://127.0.0.1:%d", first.port);
  int64_t t0 = now_ms();
  int second = run_cli(cli, out, sizeof(out)); /* returns: it must not start */
  int64_t ms = now_ms() - t0;
  fprintf(stderr, "  second server: exit %d in %lld ms: %s", second, (long long)ms, out);

  /* In process, too: the library refuses the port (EADDRINUSE). */
  struct wg_server *s = NULL;
  struct wg_error err = {""};
  char listen[64];
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", first.port);
  struct wg_server_options o = {.db_path = ":memory:", .listen = listen, .threads = 1};
  int rc = wg_server_start(&s, &o, NULL, &err);
  if (rc == 0) wg_server_stop(s, NULL);

  struct wg_client *c;
  struct wg_status cst;
  int64_t v = 0;
  int q = -1;
  if (wg_fx_connect(&c, first.uri, &cst) == 0) {
    q = wg_fx_query_i64(c, "SELECT 5", &v, &cst);
    wg_disconnect(c);
  }
  wg_fx_process_stop(&first, SIGTERM);
  ASSERT_EQ(second, 2);
  ASSERT_TRUE(strstr(out, "address already in use") != NULL);
  ASSERT_TRUE(strstr(out, "listening on") == NULL);
  ASSERT_EQ(rc, EADDRINUSE);
  ASSERT_TRUE(strstr(err.message, "address already in use") != NULL);
  ASSERT_EQ(q, 0); /* the first one serves on */
  ASSERT_EQ(v, 5);
}

/* ---- the DuckDB connection pool ---- */

struct waiter {
  struct wg_engine *e;
  int rc;
};

static void *wait_acquire(void *p) {
  struct waiter *w = p;
  struct wg_engine_conn *c = NULL;
  w->rc = wg_engine_acquire(w->e, &c, NULL);
  if (w->rc == 0) wg_engine_release(w->e, c);
  return NULL;
}

static void connection_wait_is_bounded_in_length_and_time(void) {
  struct wg_engine_options eo = {.connections = 1, .max_waiting = 1, .acquire_timeout_ms = 300};
  struct wg_engine *e;
  struct wg_error err;
  ASSERT_OK(wg_engine_open(&e, &eo, &err), &err);
  struct wg_engine_conn *held;
  ASSERT_OK(wg_engine_acquire(e, &held, &err), &err);
  struct waiter w = {e, -1};
  pthread_t t;
  pthread_create(&t, NULL, wait_acquire, &w); /* the one allowed to wait */
  sleep_ms(100);
  struct wg_engine_conn *extra = NULL;
  int64_t t0 = now_ms();
  int line_full = wg_engine_acquire(e, &extra, &err);
  int64_t refused_ms = now_ms() - t0;
  char line_msg[512];
  snprintf(line_msg, sizeof(line_msg), "%s", err.message);
  pthread_join(t, NULL);
  int64_t waited_ms = now_ms() - t0;
  wg_engine_release(e, held);
  wg_engine_close(e);
  ASSERT_EQ(line_full, EBUSY);
  ASSERT_TRUE(refused_ms < 100);
  ASSERT_TRUE(strstr(line_msg, "1 calls waiting") != NULL);
  ASSERT_EQ(w.rc, EBUSY); /* timed out after 300 ms */
  ASSERT_TRUE(waited_ms >= 100 && waited_ms < 5000);
}

static void detached_connection_is_replaced_in_the_pool(void) {
  struct wg_engine_options eo = {.connections = 1, .acquire_timeout_ms = 1000};
  struct wg_engine *e;
  struct wg_error err;
  ASSERT_OK(wg_engine_open(&e, &eo, &err), &err);
  struct wg_engine_conn *a, *b = NULL;
  ASSERT_OK(wg_engine_acquire(e, &a, &err), &err);
  struct ArrowArrayStream stream;
  ASSERT_OK(wg_engine_query_open(a, "SELECT * FROM range(1000000)", 1024, &stream, &err), &err);
  ASSERT_OK(wg_engine_conn_detach(e, a, &err), &err);
  int64_t t0 = now_ms();
  int rc = wg_engine_acquire(e, &b, &err); /* the pool's fresh connection, at once */
  int64_t ms = now_ms() - t0;
  int64_t n = -1;
  struct ArrowArray batch;
  if (stream.get_next(&stream, &batch) == 0 && batch.release != NULL) { /* a still streams */
    n = batch.length;
    batch.release(&batch);
  }
  int64_t rows = 0;
  if (rc == 0) rc = wg_engine_execute(b, "SELECT 1", &rows, &err);
  stream.release(&stream);
  wg_engine_release(e, a); /* disconnected */
  if (b != NULL) wg_engine_release(e, b);
  wg_engine_close(e);
  ASSERT_OK(rc, &err);
  ASSERT_TRUE(ms < 500);
  ASSERT_EQ(n, 1024);
}

int main(void) {
  RUN_TEST(stalled_readers_do_not_block_short_calls);
  RUN_TEST(max_connections_refuses_extra_cleanly);
  RUN_TEST(fd_exhaustion_is_survivable);
  RUN_TEST(default_max_connections_stays_below_the_open_file_limit);
  RUN_TEST(second_server_on_same_port_refuses);
  RUN_TEST(connection_wait_is_bounded_in_length_and_time);
  RUN_TEST(detached_connection_is_replaced_in_the_pool);
  TEST_SUMMARY();
}
