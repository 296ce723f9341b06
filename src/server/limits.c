/* wigeon: per-user limits around a call's handler (auth.h). */
#include "server/auth.h"

int wg__limits_enter(struct wg_server *s, const struct wg__principal *p, struct wg_error *err) {
  (void)s;
  (void)p;
  (void)err;
  return 0;
}

void wg__limits_leave(struct wg_server *s, const struct wg__principal *p) {
  (void)s;
  (void)p;
}
