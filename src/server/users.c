/* wigeon: the users file (users.h): parsing, lookup, and libsodium's argon2id hashing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "server/users.h"

_Static_assert(WG_USER_HASH_MAX >= crypto_pwhash_STRBYTES, "hash buffer too small");

bool wg_user_name_ok(const char *name, size_t len) {
  if (len == 0 || len > WG_USER_NAME_MAX) return false;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '@' || c == '-';
    if (!ok) return false;
  }
  return true;
}

int wg_user_role_parse(const char *s, size_t len) {
  static const char *names[] = {"read", "write", "admin"};
  for (int i = 0; i < 3; i++) {
    if (len == strlen(names[i]) && memcmp(s, names[i], len) == 0) return i + 1;
  }
  return 0;
}

int wg_users_parse_line(const char *line, size_t len, struct wg_user *u, struct wg_error *err) {
  while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
    len--;
  size_t start = 0;
  while (start < len && (line[start] == ' ' || line[start] == '\t'))
    start++;
  if (start == len || line[start] == '#') return 1;
  line += start;
  len -= start;
  const char *c1 = memchr(line, ':', len);
  const char *c2 = c1 != NULL ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
  if (c2 == NULL) return wg_error_set(err, EINVAL, "expected NAME:ROLE:HASH");
  size_t name_len = (size_t)(c1 - line), role_len = (size_t)(c2 - c1 - 1);
  size_t hash_len = len - (size_t)(c2 + 1 - line);
  if (!wg_user_name_ok(line, name_len))
    return wg_error_set(err, EINVAL, "bad user name (1 to 64 of A-Z a-z 0-9 _ . @ -)");
  int role = wg_user_role_parse(c1 + 1, role_len);
  if (role == 0)
    return wg_error_set(err, EINVAL, "bad role %.*s (read, write or admin)", (int)role_len,
                        c1 + 1);
  const char *hash = c2 + 1;
  if (hash_len < 10 || hash_len >= WG_USER_HASH_MAX || memcmp(hash, "$argon2id$", 10) != 0 ||
      memchr(hash, '\0', hash_len) != NULL)
    return wg_error_set(err, EINVAL, "bad hash: not an argon2id crypto_pwhash_str string");
  memset(u, 0, sizeof(*u));
  memcpy(u->name, line, name_len);
  u->role = role;
  memcpy(u->hash, hash, hash_len);
  return 0;
}

void wg_users_reset(struct wg_users *u) {
  if (u == NULL) return;
  if (u->v != NULL) sodium_memzero(u->v, (size_t)u->n * sizeof(*u->v));
  free(u->v);
  u->v = NULL;
  u->n = 0;
}

const struct wg_user *wg_users_find(const struct wg_users *u, const char *name) {
  for (int64_t i = 0; i < u->n; i++) {
    if (strcmp(u->v[i].name, name) == 0) return &u->v[i];
  }
  return NULL;
}

/* Adds the parsed line to out (EINVAL for a name given twice). */
static int users_add(struct wg_users *out, int64_t *cap, const struct wg_user *u,
                     struct wg_error *err) {
  if (wg_users_find(out, u->name) != NULL)
    return wg_error_set(err, EINVAL, "user %s given twice", u->name);
  if (out->n == *cap) {
    int64_t n = *cap == 0 ? 16 : *cap * 2;
    struct wg_user *v = realloc(out->v, (size_t)n * sizeof(*v));
    if (v == NULL) return wg_error_set(err, ENOMEM, "out of memory for %lld users", (long long)n);
    out->v = v;
    *cap = n;
  }
  out->v[out->n++] = *u;
  return 0;
}

int wg_users_load(const char *path, struct wg_users *out, bool *group_readable,
                  struct wg_error *err) {
  *out = (struct wg_users){0};
  FILE *f = fopen(path, "re");
  if (f == NULL) return wg_error_set(err, errno, "users file %.300s: %s", path, strerror(errno));
  struct stat st;
  if (group_readable != NULL)
    *group_readable = fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0;
  char *line = NULL;
  size_t size = 0;
  ssize_t n;
  int64_t lineno = 0, cap = 0;
  int rc = 0;
  while (rc == 0 && (n = getline(&line, &size, f)) >= 0) {
    lineno++;
    size_t len = (size_t)n;
    if (len > 0 && line[len - 1] == '\n') len--;
    struct wg_user u;
    rc = wg_users_parse_line(line, len, &u, err);
    if (rc == 1) {
      rc = 0;
      continue;
    }
    if (rc == 0) rc = users_add(out, &cap, &u, err);
    sodium_memzero(&u, sizeof(u));
    if (rc != 0) wg_error_prefix(err, rc, "users file %.300s line %lld", path, (long long)lineno);
  }
  if (rc == 0 && ferror(f))
    rc = wg_error_set(err, EIO, "users file %.300s: read error", path);
  free(line);
  fclose(f);
  if (rc != 0) wg_users_reset(out);
  return rc;
}

int wg_user_hash_password(const char *password, size_t len, char out[WG_USER_HASH_MAX],
                          struct wg_error *err) {
  if (sodium_init() < 0) return wg_error_set(err, ENOMEM, "libsodium cannot start");
  if (crypto_pwhash_str(out, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    return wg_error_set(err, ENOMEM, "argon2id: out of memory");
  return 0;
}

bool wg_user_verify_password(const struct wg_user *u, const char *password, size_t len) {
  return crypto_pwhash_str_verify(u->hash, password, len) == 0;
}
