/* wigeon: who a call is and what it may do (issue 13). Every call passes wg__auth_admit once, in
 * server.c's dispatch, before its handler takes a DuckDB connection; the principal it yields stays
 * with the call (wg__call_principal) for the handlers' role checks, and wg__limits_enter /
 * wg__limits_leave bracket the handler for the per-user limits. Not for use outside src/server. */
#ifndef WG_SERVER_AUTH_H
#define WG_SERVER_AUTH_H

#include <stdbool.h>

#include "server/internal.h"

/* Roles, each allowing what the one below does and more (docs/security.md). */
enum wg_role {
  WG_ROLE_NONE = 0,  /* nothing: never the role of an admitted call */
  WG_ROLE_READ = 1,  /* queries, metadata, schemas, listing */
  WG_ROLE_WRITE = 2, /* also puts, ingest, DML */
  WG_ROLE_ADMIN = 3, /* also DDL, drop_table, checkpoint, stats */
};
/* "read", "write", "admin" ("none" for WG_ROLE_NONE). */
const char *wg__role_name(enum wg_role role);

#define WG_MAX_USER_NAME 64
/* The caller of one call. Without --users every call is the anonymous admin: user "" (the sandbox
 * still holds for it). */
struct wg__principal {
  char user[WG_MAX_USER_NAME + 1];
  enum wg_role role;
  bool authenticated; /* false: no users file, the anonymous admin */
};

/* Authenticates the call from its metadata (authorization: Basic or Bearer). 0 with *p filled; or
 * WG_EUNAUTHENTICATED (no or bad credentials, expired token) with err saying why, and the call is
 * then finished by the caller. May add a response header (the Bearer token) to the call. */
int wg__auth_admit(struct wg_server *s, struct wg_rpc_call *call, struct wg__principal *p,
                   struct wg_error *err);
/* The rpc layer's admit hook (wg_rpc_admit_fn; ctx the server), on the completion-queue thread:
 * refuses at once a call without credentials or with an unknown or expired bearer token (a hash
 * lookup, never a password hash); a Basic login goes on to a worker and wg__auth_admit. */
grpc_status_code wg__auth_early(const struct wg_rpc_call *call, void *ctx, char *message,
                                size_t size);
/* Re-reads what can change without a restart (the users file); on error the old state stays. */
int wg__auth_reload(struct wg_server *s, struct wg_error *err);
int wg__auth_start(struct wg_server *s, struct wg_error *err);
void wg__auth_stop(struct wg_server *s);

/* The principal of a call inside its handler (set by dispatch); never NULL. */
const struct wg__principal *wg__call_principal(const struct wg_rpc_call *call);

/* Per-user limits around a handler: 0 to go on, or EBUSY (RESOURCE_EXHAUSTED) with err naming the
 * limit; every 0 is paired with one wg__limits_leave. */
int wg__limits_enter(struct wg_server *s, const struct wg__principal *p, struct wg_error *err);
void wg__limits_leave(struct wg_server *s, const struct wg__principal *p);

#endif
