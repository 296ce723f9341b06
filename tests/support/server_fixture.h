/* wigeon test support: a real server on 127.0.0.1 (in this process, or as a child `wigeon serve`
 * process), a client for it, seed-shaped Arrow batches, and small query helpers. */
#ifndef WG_TEST_SERVER_FIXTURE_H
#define WG_TEST_SERVER_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "arrow/abi.h"
#include "client/client.h"
#include "server/server.h"

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

/* Runs SQL and returns the first column of the first row as int64 (0 with *found false when no
 * row). Returns a status code; err gets the server's message. */
int wg_fx_query_i64(struct wg_client *c, const char *sql, int64_t *out, struct wg_error *err);
/* Runs SQL and counts rows and batches of the result. */
int wg_fx_query_count(struct wg_client *c, const char *sql, int64_t *rows, int64_t *batches,
                      struct wg_error *err);

#endif
