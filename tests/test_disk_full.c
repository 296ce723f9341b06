/* wigeon: a full disk never loses acknowledged data. The real binary serves a database on a
 * 20 MB tmpfs (mounted by the test: CI runs as root) with --checkpoint-threshold 4MB, the case in
 * which DuckDB 1.4.4, left to run out of space in a checkpoint, lost every acknowledged put. Puts of
 * 50,000 rows go in until the disk is full; the test counts the acknowledged rows and checks them
 * against the table, after freeing space, and after a restart. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/server_fixture.h"
#include "test.h"

static char dir[256], mnt[300], db[340], ballast[340];

static int mount_small_disk(void) {
  if (wg_fx_tmpdir(dir, sizeof(dir)) != 0) return -1;
  snprintf(mnt, sizeof(mnt), "%s/disk", dir);
  snprintf(db, sizeof(db), "%s/f.duckdb", mnt);
  snprintf(ballast, sizeof(ballast), "%s/ballast", mnt);
  if (mkdir(mnt, 0700) != 0) return -1;
  if (mount("tmpfs", mnt, "tmpfs", 0, "size=20m") != 0) {
    fprintf(stderr, "  cannot mount a 20 MB tmpfs at %s: %s (this test needs root, as CI has)\n",
            mnt, strerror(errno));
    return -1;
  }
  return 0;
}

static void unmount_small_disk(void) {
  umount2(mnt, MNT_DETACH);
  wg_fx_rmdir(dir);
}

static int write_ballast(int64_t bytes) {
  FILE *f = fopen(ballast, "wb");
  if (f == NULL) return -1;
  static char block[65536];
  for (int64_t n = 0; n < bytes; n += (int64_t)sizeof(block))
    if (fwrite(block, 1, sizeof(block), f) != sizeof(block)) break;
  return fclose(f);
}

/* One put of 50 batches of 1,000 rows; *acked its acknowledged rows (0 on failure). */
static int put_50k(const char *uri, int64_t batch, int64_t *acked, struct wg_status *st) {
  struct wg_client *c;
  *acked = 0;
  WG_RETURN_NOT_OK(wg_fx_errno(wg_fx_connect(&c, uri, st), st));
  struct ArrowArrayStream s;
  int rc = wg_fx_seed_stream(batch * 50, 50, 1000, false, &s);
  if (rc == 0) rc = wg_fx_errno(wg_put(c, NULL, "events", &s, NULL, NULL, acked, st), st);
  wg_disconnect(c);
  return rc;
}

static int64_t count_events(const char *uri) {
  struct wg_client *c;
  struct wg_status ws;
  int64_t n = -1;
  if (wg_fx_connect(&c, uri, &ws) != 0) return -1;
  if (wg_fx_query_i64(c, "SELECT count(*) FROM events", &n, &ws) != 0) {
    fprintf(stderr, "  count: %s\n", ws.message);
    n = -1;
  }
  wg_disconnect(c);
  return n;
}

static void full_disk_refuses_writes_with_resource_exhausted_and_loses_nothing(void) {
  ASSERT_EQ(mount_small_disk(), 0);
  ASSERT_EQ(write_ballast(4 << 20), 0); /* freed later, to show that puts work again */
  const char *args[] = {"--db", db, "--checkpoint-threshold", "4MB", "--disk-reserve", "1MB", NULL};
  struct wg_fx_process p;
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  int64_t acked_total = 0, batch = 0, acked;
  int refused = 0;
  struct wg_status ws;
  while (refused < 3 && batch < 60) {
    int rc = put_50k(p.uri, batch++, &acked, &ws);
    if (rc == 0) {
      acked_total += acked;
      continue;
    }
    refused++;
    /* RESOURCE_EXHAUSTED (EBUSY on the client side) saying the disk is full, not ABORTED */
    ASSERT_EQ(rc, EBUSY);
    ASSERT_TRUE(strstr(ws.message, "disk full") != NULL);
    ASSERT_EQ(count_events(p.uri), acked_total); /* nothing of the refused put */
  }
  fprintf(stderr, "  %lld rows acknowledged before the disk filled\n", (long long)acked_total);
  ASSERT_EQ(refused, 3);
  ASSERT_TRUE(acked_total >= 250000);
  /* small SQL writes still fit; once the disk is full to the last byte they are refused the same
   * way, and so is a checkpoint; reads go on */
  struct wg_client *c;
  ASSERT_OK(wg_fx_connect(&c, p.uri, &ws), ws.message);
  const char *ins = "INSERT INTO events SELECT * FROM events LIMIT 10";
  ASSERT_OK(wg_fx_action(c, "execute", ins, strlen(ins), NULL, &ws), ws.message);
  acked_total += 10;
  char rest[360];
  snprintf(rest, sizeof(rest), "%s/rest", mnt);
  FILE *f = fopen(rest, "wb");
  static char block[4096];
  while (f != NULL && fwrite(block, 1, sizeof(block), f) == sizeof(block) && fflush(f) == 0) {
  }
  if (f != NULL) fclose(f);
  ASSERT_EQ(wg_fx_action(c, "execute", ins, strlen(ins), NULL, &ws), EBUSY);
  ASSERT_TRUE(strstr(ws.message, "disk full") != NULL);
  ASSERT_EQ(wg_fx_action(c, "checkpoint", "", 0, NULL, &ws), EBUSY);
  int64_t rows, batches;
  ASSERT_EQ(wg_fx_query_count(c, ins, &rows, &batches, &ws), EBUSY); /* a ticket that writes */
  /* EXPLAIN ANALYZE runs the statement it explains: a write all the same, on both paths */
  const char *explained = "EXPLAIN ANALYZE INSERT INTO events SELECT * FROM events LIMIT 10";
  ASSERT_EQ(wg_fx_query_count(c, explained, &rows, &batches, &ws), EBUSY);
  ASSERT_TRUE(strstr(ws.message, "disk full") != NULL);
  ASSERT_EQ(wg_fx_action(c, "execute", explained, strlen(explained), NULL, &ws), EBUSY);
  ASSERT_OK(wg_fx_query_count(c, "SELECT * FROM events LIMIT 5", &rows, &batches, &ws), ws.message);
  wg_disconnect(c);
  ASSERT_EQ(count_events(p.uri), acked_total);
  /* space freed: puts work again, without a restart */
  ASSERT_EQ(unlink(rest), 0);
  ASSERT_EQ(unlink(ballast), 0);
  ASSERT_OK(put_50k(p.uri, batch++, &acked, &ws), ws.message);
  acked_total += acked;
  ASSERT_EQ(count_events(p.uri), acked_total);
  /* and everything acknowledged is there after a restart */
  int status = wg_fx_process_stop(&p, SIGTERM);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  ASSERT_EQ(count_events(p.uri), acked_total);
  /* and after kill -9 too */
  ASSERT_EQ(write_ballast(3 << 20), 0);
  while (put_50k(p.uri, batch++, &acked, &ws) == 0)
    acked_total += acked;
  wg_fx_process_stop(&p, SIGKILL);
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  ASSERT_EQ(count_events(p.uri), acked_total);
  wg_fx_process_stop(&p, SIGTERM);
  unmount_small_disk();
}

/* With the reserve switched off, the disk fills inside DuckDB's checkpoint. The server must then
 * stop trusting the database: later writes are refused (UNAVAILABLE: restart needed), shutdown
 * skips its checkpoint, and a restart recovers every acknowledged put from the WAL. */
static void fatal_engine_error_refuses_writes_and_restart_recovers(void) {
  ASSERT_EQ(mount_small_disk(), 0);
  const char *args[] = {"--db", db, "--checkpoint-threshold", "4MB", "--disk-reserve", "0", NULL};
  struct wg_fx_process p;
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  int64_t acked_total = 0, batch = 0, acked;
  struct wg_status ws;
  int rc = 0;
  while (batch < 60 && (rc = put_50k(p.uri, batch++, &acked, &ws)) == 0)
    acked_total += acked;
  ASSERT_NE(rc, 0);
  fprintf(stderr, "  %lld rows acknowledged; the failing put: %.200s\n", (long long)acked_total,
          ws.message);
  ASSERT_TRUE(strstr(ws.message, "No space left on device") != NULL ||
              strstr(ws.message, "disk full") != NULL);
  ASSERT_EQ(rc, EBUSY); /* RESOURCE_EXHAUSTED */
  /* from now on writes are refused: UNAVAILABLE (ECONNREFUSED here), naming the fatal error */
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(put_50k(p.uri, batch++, &acked, &ws), ECONNREFUSED);
    ASSERT_TRUE(strstr(ws.message, "fatal error") != NULL);
  }
  /* SQL writes too, EXPLAIN ANALYZE of one included (it runs the statement); reads go on */
  struct wg_client *c;
  ASSERT_OK(wg_fx_connect(&c, p.uri, &ws), ws.message);
  const char *writes[] = {"INSERT INTO events SELECT * FROM events LIMIT 10",
                          "EXPLAIN ANALYZE INSERT INTO events SELECT * FROM events LIMIT 10",
                          "EXPLAIN (ANALYZE) CREATE TABLE later AS SELECT 1 AS a"};
  int64_t rows, batches;
  for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
    ASSERT_EQ(wg_fx_query_count(c, writes[i], &rows, &batches, &ws), ECONNREFUSED);
    ASSERT_TRUE(strstr(ws.message, "fatal error") != NULL);
    ASSERT_EQ(wg_fx_action(c, "execute", writes[i], strlen(writes[i]), NULL, &ws),
              ECONNREFUSED);
  }
  ASSERT_OK(wg_fx_query_count(c, "SELECT * FROM events LIMIT 5", &rows, &batches, &ws), ws.message);
  wg_disconnect(c);
  /* SIGTERM: no crash, a non-zero exit that says why, no checkpoint */
  int status = wg_fx_process_stop(&p, SIGTERM);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_NE(WEXITSTATUS(status), 0);
  ASSERT_EQ(wg_fx_process_start(&p, args), 0);
  ASSERT_EQ(count_events(p.uri), acked_total);
  wg_fx_process_stop(&p, SIGTERM);
  unmount_small_disk();
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  RUN_TEST(full_disk_refuses_writes_with_resource_exhausted_and_loses_nothing);
  RUN_TEST(fatal_engine_error_refuses_writes_and_restart_recovers);
  return TEST_SUMMARY();
}
