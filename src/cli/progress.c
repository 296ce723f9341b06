/* wigeon: a one-line progress display on stderr for long puts: rows, MB, rows/s and, when the
 * total is known or estimated, a bar, the percentage and the time left. Drawn only on a terminal
 * and at most ten times a second, from the thread doing the work (no thread of its own). */
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

void wg_cli_progress_init(struct wg_cli_progress *p) {
  memset(p, 0, sizeof(*p));
  p->enabled = isatty(STDERR_FILENO);
  p->start = wg_cli_now();
  p->fraction = -1;
}

void wg_cli_progress_draw(struct wg_cli_progress *p, bool force) {
  if (!p->enabled) return;
  double now = wg_cli_now();
  if (!force && now - p->last_draw < 0.1) return;
  p->last_draw = now;
  double elapsed = now - p->start;
  double rate = elapsed > 0 ? (double)p->rows / elapsed : 0;
  char rows[32], per_s[32], line[256];
  int o = 0;
  if (p->fraction >= 0) {
    double f = p->fraction > 1 ? 1 : p->fraction;
    int filled = (int)(f * 20 + 0.5);
    o += snprintf(line + o, sizeof(line) - (size_t)o, "[");
    for (int i = 0; i < 20; i++)
      o += snprintf(line + o, sizeof(line) - (size_t)o, "%s", i < filled ? "#" : ".");
    o += snprintf(line + o, sizeof(line) - (size_t)o, "] %3d%%  ", (int)(f * 100));
  }
  o += snprintf(line + o, sizeof(line) - (size_t)o, "%s rows  %.1f MB  %s rows/s",
                wg_cli_commas(p->rows, rows, sizeof(rows)), (double)p->bytes / 1e6,
                wg_cli_commas((int64_t)rate, per_s, sizeof(per_s)));
  if (p->fraction > 0.01 && p->fraction < 1 && elapsed > 0.5) {
    double left = elapsed * (1 - p->fraction) / p->fraction;
    if (left >= 60)
      snprintf(line + o, sizeof(line) - (size_t)o, "  ETA %dm%02ds", (int)left / 60,
               (int)left % 60);
    else
      snprintf(line + o, sizeof(line) - (size_t)o, "  ETA %.0f s", left);
  }
  fprintf(stderr, "\r\033[K%s", line);
  fflush(stderr);
  p->drawn = true;
}

void wg_cli_progress_clear(struct wg_cli_progress *p) {
  if (!p->enabled || !p->drawn) return;
  fprintf(stderr, "\r\033[K");
  fflush(stderr);
  p->drawn = false;
}
