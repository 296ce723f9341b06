/* wigeon: the engine's two guards for the disk. DuckDB 1.4.4 mishandles a checkpoint that fails
 * for space (it can lose committed data: seen with a 20 MB file system), so the engine never
 * leads it there: every write first checks that the database's file system keeps room for the
 * write, for the checkpoint that will copy the WAL into the database file, and a reserve
 * (wg_engine_check_room). And once DuckDB reports a fatal error, or a commit or checkpoint fails
 * for space or I/O, the engine stops trusting the database: writes are refused until restart
 * (wg_engine_fatal), the shutdown checkpoint is skipped, and the WAL, written before each commit
 * returned, is what the next start recovers from. Relies on statvfs(2) and stat(2). */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "engine/engine_internal.h"

static void human(int64_t b, char *out, size_t size) {
  if (b >= (int64_t)1 << 30)
    snprintf(out, size, "%.1f GiB", (double)b / (double)((int64_t)1 << 30));
  else if (b >= (int64_t)1 << 20)
    snprintf(out, size, "%.1f MiB", (double)b / (double)((int64_t)1 << 20));
  else
    snprintf(out, size, "%lld KiB", (long long)(b >> 10));
}

int wg__engine_disk_init(struct wg_engine *e, const char *path, int64_t reserve) {
  e->disk_reserve = reserve;
  pthread_mutex_init(&e->fatal_mu, NULL);
  if (!e->is_file) return 0;
  size_t n = strlen(path);
  e->wal_path = malloc(n + 5);
  char *copy = strdup(path);
  if (e->wal_path == NULL || copy == NULL) {
    free(copy);
    return ENOMEM;
  }
  memcpy(e->wal_path, path, n);
  memcpy(e->wal_path + n, ".wal", 5);
  e->dir_path = strdup(dirname(copy));
  free(copy);
  return e->dir_path == NULL ? ENOMEM : 0;
}

void wg__engine_disk_free(struct wg_engine *e) {
  free(e->wal_path);
  free(e->dir_path);
  pthread_mutex_destroy(&e->fatal_mu);
}

int wg_engine_check_room(struct wg_engine *e, int64_t incoming, struct wg_error *err) {
  if (e == NULL || !e->is_file || e->disk_reserve <= 0) return 0;
  struct statvfs fs;
  if (statvfs(e->dir_path, &fs) != 0) return 0; /* cannot tell: DuckDB's own errors will */
  int64_t avail = (int64_t)fs.f_bavail * (int64_t)fs.f_frsize;
  struct stat st;
  int64_t wal = stat(e->wal_path, &st) == 0 ? (int64_t)st.st_size : 0;
  if (incoming < 0) incoming = 0;
  /* the write lands in the WAL; a checkpoint then writes the whole WAL (this write included)
   * into the database file before the WAL is dropped */
  int64_t need = incoming + (wal + incoming) + e->disk_reserve;
  if (avail >= need) return 0;
  char a[32], w[32], i[32], r[32];
  human(avail, a, sizeof(a));
  human(wal, w, sizeof(w));
  human(incoming, i, sizeof(i));
  human(e->disk_reserve, r, sizeof(r));
  return wg_error_set(err, ENOSPC,
                      "disk full: %s free where the database is, and a write needs room for "
                      "itself (%s), for the checkpoint of the WAL (%s plus the write) and the "
                      "reserve (%s, --disk-reserve); refused so that no checkpoint runs out of "
                      "space. Nothing of it was kept; free space and retry",
                      a, i, w, r);
}

void wg__engine_note_failure(struct wg_engine *e, int code, bool committing,
                             const struct wg_error *err) {
  if (e == NULL || code == 0) return;
  bool fatal = code == ENOTRECOVERABLE ||
               (committing && (code == ENOSPC || code == EIO)) ||
               (err != NULL && strstr(err->message, "FATAL Error") != NULL);
  if (!fatal) return;
  pthread_mutex_lock(&e->fatal_mu);
  if (!atomic_load(&e->fatal)) {
    snprintf(e->fatal_message, sizeof(e->fatal_message), "%.400s",
             err != NULL && err->message[0] ? err->message : "(no message)");
    char *nl = strchr(e->fatal_message, '\n'); /* DuckDB appends stack traces */
    if (nl != NULL) *nl = '\0';
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(e->fatal_time, sizeof(e->fatal_time), "%Y-%m-%d %H:%M:%S UTC", &tm);
    atomic_store(&e->fatal, true);
    fprintf(stderr,
            "wigeon: FATAL: the database reported a fatal error at %s: %s\n"
            "wigeon: FATAL: writes are refused from now on; reads go on. Restart the server (after "
            "freeing disk space if it is full): it recovers every committed write from the WAL.\n",
            e->fatal_time, e->fatal_message);
    fflush(stderr);
  }
  pthread_mutex_unlock(&e->fatal_mu);
}

bool wg_engine_is_fatal(struct wg_engine *e) {
  return e != NULL && atomic_load(&e->fatal);
}

int wg_engine_fatal(struct wg_engine *e, struct wg_error *err) {
  if (!wg_engine_is_fatal(e)) return 0;
  return wg_error_set(err, ENOTRECOVERABLE,
                      "the database reported a fatal error at %s (%s): it takes no writes until "
                      "the server restarts, which recovers every committed write; reads go on",
                      e->fatal_time, e->fatal_message);
}
