/* wigeon test support: a real server on 127.0.0.1 (in this process, or as a child `wigeon serve`
 * process), a client for it, seed-shaped Arrow batches, and small query helpers. */
#ifndef WG_TEST_SERVER_FIXTURE_H
#define WG_TEST_SERVER_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "arrow/abi.h"
#include "common/buf.h"
#include "common/error.h"
#include "server/server.h"
#include "wigeon.h"

/* The registry of live fixtures (in-process servers, `wigeon serve` children). RUN_TEST
 * (tests/test.h) calls begin before each test and end after it: when the test failed, end stops
 * the servers and kills the processes it started and left running. At exit every one still
 * registered is released (processes killed and reaped, then servers stopped). */
void wg_test_fixtures_begin(void);
void wg_test_fixtures_end(int failed);
/* How many fixtures are registered now (for the fixture's own test). */
int wg_test_fixtures_live(void);

/* A temporary directory for database files (created; removed with its files by wg_fx_rmdir). */
int wg_fx_tmpdir(char *out, size_t size);
void wg_fx_rmdir(const char *dir);

/* An in-process server on an ephemeral port; *uri gets "127.0.0.1:PORT". */
struct wg_fx_server {
  struct wg_server *server;
  int port;
  char uri[64];
};
int wg_fx_server_start(struct wg_fx_server *fx, const struct wg_server_options *o);
void wg_fx_server_stop(struct wg_fx_server *fx);

/* A child process running build/wigeon serve with extra args (NULL-terminated); waits until it
 * prints "listening on" and fills *port. */
struct wg_fx_process {
  pid_t pid;
  int port;
  char uri[64];
};
int wg_fx_process_start(struct wg_fx_process *p, const char *const *args);
/* The same, with the child's open-file limit (soft and hard RLIMIT_NOFILE) set to nofile
 * (0: as ours). */
int wg_fx_process_start_nofile(struct wg_fx_process *p, const char *const *args, int nofile);
/* The same, with the child's address space (RLIMIT_AS) capped at as_bytes: its allocations beyond
 * fail as on a machine out of memory. Not under ASan, which reserves terabytes of address space. */
int wg_fx_process_start_as(struct wg_fx_process *p, const char *const *args, int64_t as_bytes);
/* Sends sig and waits; returns the exit status (as from waitpid) or -1. */
int wg_fx_process_stop(struct wg_fx_process *p, int sig);
/* Peak resident memory (VmHWM) and current (VmRSS) of a process, in KiB. */
int64_t wg_fx_process_kib(pid_t pid, const char *field);

/* Builds a seed-shaped batch (batch_id BIGINT, timestamp VARCHAR, value DOUBLE, category VARCHAR)
 * of n rows; or (id BIGINT, value DOUBLE) with kv. Schema in *schema (may be NULL). */
int wg_fx_seed_batch(int64_t batch_id, int64_t n, bool kv, struct ArrowSchema *schema,
                     struct ArrowArray *out);
/* A stream over `count` generated batches (consumed by whoever reads it). */
int wg_fx_seed_stream(int64_t first_batch_id, int64_t count, int64_t rows, bool kv,
                      struct ArrowArrayStream *out);

/* ---- the client (include/wigeon.h) ----
 * wigeon.h's calls return a WG_STATUS_* code and fill a struct wg_status; the tests mostly assert
 * the errno flavour of it (st.sys_errno), and print st.message: ASSERT_OK(call, st.message). */

/* The errno value of a wigeon.h call's outcome: 0 when code (what the call returned) is 0, else
 * st->sys_errno. E.g. ASSERT_EQ(wg_fx_errno(wg_action(c, ..., &st), &st), EBUSY). */
static inline int wg_fx_errno(int code, const struct wg_status *st) {
  return code == 0 ? 0 : st->sys_errno;
}

/* wg_connect with lazy_connect (an unreachable server shows on the first call, ECONNREFUSED) and
 * a per-call deadline of timeout_ms (0: none). Returns wg_connect's code. */
int wg_fx_connect(struct wg_client **out, const char *uri, struct wg_status *st);
int wg_fx_connect_timeout(struct wg_client **out, const char *uri, int64_t timeout_ms,
                          struct wg_status *st);

/* wg_action with the Result bodies appended to `out` (may be NULL), NUL-terminated after its
 * size (so a JSON answer such as "stats" reads as a string). Returns the errno value (0 OK). */
int wg_fx_action(struct wg_client *c, const char *type, const void *body, size_t len,
                 struct wg_buf *out, struct wg_status *st);

/* A stream from wg_query that failed with rc (the errno value its get_schema/get_next returned):
 * its status (wg_stream_status: the server's message) into *st. Returns rc. */
int wg_fx_stream_failed(struct ArrowArrayStream *s, int rc, struct wg_status *st);

/* Runs SQL and returns the first column of the first row as int64 (0 when no row). Returns the
 * errno value of the outcome (0 OK); *st gets the full status (the server's message). */
int wg_fx_query_i64(struct wg_client *c, const char *sql, int64_t *out, struct wg_status *st);
/* Runs SQL and counts rows and batches of the result. Returns as wg_fx_query_i64. */
int wg_fx_query_count(struct wg_client *c, const char *sql, int64_t *rows, int64_t *batches,
                      struct wg_status *st);

#endif
