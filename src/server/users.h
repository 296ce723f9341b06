/* wigeon: the users file (`--users FILE`, docs/security.md "Authentication"): one user a line,
 * NAME:ROLE:HASH, HASH being libsodium's crypto_pwhash_str (argon2id). Read by the server (auth.c)
 * and edited by `wigeon passwd` (src/cli/passwd.c), which keeps the other lines as they are. */
#ifndef WG_SERVER_USERS_H
#define WG_SERVER_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define WG_USER_NAME_MAX 64
#define WG_USER_HASH_MAX 128 /* crypto_pwhash_STRBYTES */

struct wg_user {
  char name[WG_USER_NAME_MAX + 1];
  int role; /* enum wg_role (auth.h): 1 read, 2 write, 3 admin */
  char hash[WG_USER_HASH_MAX];
};

struct wg_users {
  struct wg_user *v;
  int64_t n;
};

/* Whether name matches [A-Za-z0-9_.@-]{1,64}. */
bool wg_user_name_ok(const char *name, size_t len);
/* "read" / "write" / "admin" -> 1 / 2 / 3; 0 for anything else. */
int wg_user_role_parse(const char *s, size_t len);

/* Parses one line (no newline) into *u: 0; 1 for a blank or comment line; EINVAL with err saying
 * what is wrong (the caller adds the file and line). */
int wg_users_parse_line(const char *line, size_t len, struct wg_user *u, struct wg_error *err);
/* Reads the whole file into *out (the caller's, freed with wg_users_reset; empty on error):
 * ENOENT and others from the file, EINVAL naming the line for a malformed line or a name given
 * twice. *group_readable (may be NULL) tells whether group or others may read the file. */
int wg_users_load(const char *path, struct wg_users *out, bool *group_readable,
                  struct wg_error *err);
void wg_users_reset(struct wg_users *u);
const struct wg_user *wg_users_find(const struct wg_users *u, const char *name);

/* crypto_pwhash_str with the server's limits (OPSLIMIT/MEMLIMIT_INTERACTIVE); out gets the
 * NUL-terminated string. ENOMEM when argon2 cannot get its memory. */
int wg_user_hash_password(const char *password, size_t len, char out[WG_USER_HASH_MAX],
                          struct wg_error *err);
/* Whether password matches the hash (argon2id, slow: ~0.1 s). */
bool wg_user_verify_password(const struct wg_user *u, const char *password, size_t len);

#endif
