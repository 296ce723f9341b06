/* wigeon: authentication (auth.h). Without a users file every call is the anonymous admin. */
#include <string.h>

#include "server/auth.h"

const char *wg__role_name(enum wg_role role) {
  switch (role) {
  case WG_ROLE_READ:
    return "read";
  case WG_ROLE_WRITE:
    return "write";
  case WG_ROLE_ADMIN:
    return "admin";
  default:
    return "none";
  }
}

int wg__auth_admit(struct wg_server *s, struct wg_rpc_call *call, struct wg__principal *p,
                   struct wg_error *err) {
  (void)s;
  (void)call;
  (void)err;
  memset(p, 0, sizeof(*p));
  p->role = WG_ROLE_ADMIN;
  return 0;
}

int wg__auth_reload(struct wg_server *s, struct wg_error *err) {
  (void)s;
  (void)err;
  return 0;
}

int wg__auth_start(struct wg_server *s, struct wg_error *err) {
  (void)s;
  (void)err;
  return 0;
}

void wg__auth_stop(struct wg_server *s) {
  (void)s;
}

const struct wg__principal *wg__call_principal(const struct wg_rpc_call *call) {
  static const struct wg__principal anonymous = {.role = WG_ROLE_ADMIN};
  const struct wg__principal *p = wg_rpc_call_user_data(call);
  return p != NULL ? p : &anonymous;
}
