/* wigeon: the role checks of the calls and the limits' state (docs/security.md "Roles" and
 * "Limits"): what each kind of call needs (the action and Flight SQL command tables name it, DoPut
 * needs write), checked where the request is classified, before a DuckDB connection is taken; the
 * SQL itself is checked statement by statement in the engine at the level the caller's role gives
 * the thread (wg__limits_enter). Not for use outside src/server. */
#ifndef WG_SERVER_ROLES_H
#define WG_SERVER_ROLES_H

#include "server/auth.h"

/* 0 when the call's caller has `need` or more; else EACCES "WHAT needs the NEED role; user U has
 * the R role". */
int wg__role_require(const struct wg_rpc_call *call, enum wg_role need, const char *what,
                     struct wg_error *err);

/* The limits' state (s->limits) and its timer thread; stop after the handlers are done. */
int wg__limits_start(struct wg_server *s, struct wg_error *err);
void wg__limits_stop(struct wg_server *s);
/* The call on this thread (between wg__limits_enter and leave) starts running client SQL: its
 * query timeout (--query-timeout) runs from now, once; when it passes, the call is ended with
 * DEADLINE_EXCEEDED naming the limit, which runs its cancel hook (interrupting the query). A no-op
 * without a timeout, or already armed. Call it where the handler sets its interrupt hook. */
void wg__limits_query(struct wg_server *s, struct wg_rpc_call *call);

#endif
