/* wigeon: the test fixtures clean up after a failed assertion. A child process runs a test that
 * starts a server process and an in-process server and then fails an ASSERT (returning before its
 * cleanup); RUN_TEST must release both. It then starts another server process outside any test
 * and exits: the registry's atexit must kill it. The parent checks no server survives. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support/server_fixture.h"
#include "test.h"

struct started {
  int process_port, server_port, outside_port;
  pid_t process_pid, outside_pid;
  int released_in_test; /* the child's own check after the failed test */
};

static struct started child_started;

/* 1 when something accepts TCP connections on 127.0.0.1:port. */
static int port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
  close(fd);
  return rc == 0;
}

/* 1 when pid is a running (not zombie) process. */
static int process_running(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  int running = 0;
  if (fgets(line, sizeof(line), f) != NULL) {
    const char *close_paren = strrchr(line, ')');
    running = close_paren != NULL && close_paren[1] == ' ' && close_paren[2] != 'Z';
  }
  fclose(f);
  return running;
}

/* The test that fails half-way: both servers are up, then an assertion returns. */
static void failing_test_leaves_its_servers(void) {
  struct wg_fx_process p = {0};
  ASSERT_EQ(wg_fx_process_start(&p, NULL), 0);
  child_started.process_pid = p.pid;
  child_started.process_port = p.port;
  struct wg_server_options o = {0};
  struct wg_fx_server fx = {0};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  child_started.server_port = fx.port;
  ASSERT_TRUE(port_open(p.port) && port_open(fx.port));
  ASSERT_EQ(1, 2); /* the forced failure: nothing below runs */
  wg_fx_server_stop(&fx);
  wg_fx_process_stop(&p, SIGTERM);
}

static void child_main(int out) {
  fprintf(stderr, "  (child %d: the FAIL below is the forced one)\n", (int)getpid());
  RUN_TEST(failing_test_leaves_its_servers);
  child_started.released_in_test = wg_test_failed == 1 && wg_test_fixtures_live() == 0 &&
                                   !process_running(child_started.process_pid) &&
                                   !port_open(child_started.process_port) &&
                                   !port_open(child_started.server_port);
  struct wg_fx_process outside = {0};
  if (wg_fx_process_start(&outside, NULL) == 0) {
    child_started.outside_pid = outside.pid;
    child_started.outside_port = outside.port;
  }
  if (write(out, &child_started, sizeof(child_started)) != (ssize_t)sizeof(child_started)) _exit(3);
  exit(TEST_SUMMARY()); /* atexit releases `outside` */
}

static void failed_assertion_releases_the_servers_its_test_started(void) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_TRUE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    child_main(fds[1]);
  }
  close(fds[1]);
  struct started s = {0};
  ssize_t n = read(fds[0], &s, sizeof(s));
  close(fds[0]);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_EQ((int)n, (int)sizeof(s));
  ASSERT_TRUE(WIFEXITED(st));
  ASSERT_EQ(WEXITSTATUS(st), 1); /* the forced failure was counted */
  ASSERT_TRUE(s.process_pid > 0 && s.process_port > 0 && s.server_port > 0);
  ASSERT_TRUE(s.released_in_test);
  ASSERT_TRUE(s.outside_pid > 0 && s.outside_port > 0);
  /* the child's exit released the one started outside any test (no zombie left either: reaped) */
  for (int i = 0; i < 50 && (process_running(s.outside_pid) || port_open(s.outside_port)); i++) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  ASSERT_EQ(process_running(s.outside_pid), 0);
  ASSERT_EQ(port_open(s.outside_port), 0);
  ASSERT_EQ(port_open(s.process_port), 0);
  ASSERT_EQ(port_open(s.server_port), 0);
}

static void passing_test_keeps_what_it_stopped_and_main_owns_the_rest(void) {
  struct wg_fx_process p = {0};
  ASSERT_EQ(wg_fx_process_start(&p, NULL), 0);
  ASSERT_EQ(wg_test_fixtures_live(), 1);
  ASSERT_TRUE(port_open(p.port));
  ASSERT_TRUE(WIFSIGNALED(wg_fx_process_stop(&p, SIGKILL)));
  ASSERT_EQ(wg_test_fixtures_live(), 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  RUN_TEST(failed_assertion_releases_the_servers_its_test_started);
  RUN_TEST(passing_test_keeps_what_it_stopped_and_main_owns_the_rest);
  return TEST_SUMMARY();
}
