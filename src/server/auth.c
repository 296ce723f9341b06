/* wigeon: authentication (auth.h, docs/security.md "Authentication"). Without a users file every
 * call is the anonymous admin. With one, a call carries `authorization: Basic base64(user:pass)`
 * (verified with argon2id on a worker, answered with a bearer token in the response headers) or
 * `authorization: Bearer TOKEN` (a table lookup, done as the call arrives, before any worker).
 * State, all under one mutex never held while hashing: the users (replaced whole by a reload),
 * the tokens, a cache of recent Basic verifications, and the failed-login counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "server/auth.h"
#include "server/users.h"

/* Bounds (docs/security.md): tokens at once (when full, the one expiring first goes), cached
 * Basic verifications, failed-login records; failures allowed per user and per address in a
 * window before logins are refused without hashing. */
#define WG_AUTH_TOKEN_SLOTS 16384
#define WG_AUTH_MAX_TOKENS (WG_AUTH_TOKEN_SLOTS / 4 * 3) /* 12288: keeps probe runs short */
#define WG_AUTH_CACHE 1024
#define WG_AUTH_FAIL_SLOTS 1024
#define WG_AUTH_FAIL_WINDOW_MS 60000
#define WG_AUTH_FAILS_PER_USER 5
#define WG_AUTH_FAILS_PER_ADDRESS 20
#define WG_AUTH_TOKEN_BYTES 32
#define WG_AUTH_TOKEN_TEXT 64  /* base64url of 32 bytes is 43 characters */
#define WG_AUTH_MAX_HEADER 512 /* longest authorization value looked at */

struct wg__auth_token {
  uint8_t id[WG_AUTH_TOKEN_BYTES];
  char user[WG_USER_NAME_MAX + 1];
  int64_t expires_ms; /* 0: free slot */
};

struct wg__auth_cached { /* a Basic user:password verified, and the token it got */
  uint8_t digest[crypto_generichash_BYTES];
  uint8_t token[WG_AUTH_TOKEN_BYTES];
  char user[WG_USER_NAME_MAX + 1];
  int64_t expires_ms;
  uint64_t generation; /* of the users it was verified against */
};

struct wg__auth_fail {
  char who[80]; /* "user NAME" or "address A" */
  int64_t window_start_ms;
  int count;
};

struct wg__auth {
  pthread_mutex_t mu;
  struct wg_users users;
  uint64_t generation; /* bumped by each reload: cached verifications go */
  int64_t ttl_ms;
  struct wg__auth_token *tokens; /* open hash on the token's first bytes, linear probing */
  int64_t n_tokens;
  struct wg__auth_cached cache[WG_AUTH_CACHE];
  struct wg__auth_fail fails[WG_AUTH_FAIL_SLOTS];
  uint8_t cache_key[crypto_generichash_KEYBYTES]; /* random per process */
  int64_t logins;                                 /* passwords verified, for the log */
  char dummy_hash[WG_USER_HASH_MAX]; /* verified against for an unknown user: same time */
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

/* ---------------------------------------------------------------------------------------------
 * Tokens (all with a->mu held) */

static size_t token_slot0(const uint8_t *id) {
  uint64_t h;
  memcpy(&h, id, sizeof(h));
  return (size_t)(h % WG_AUTH_TOKEN_SLOTS);
}

static struct wg__auth_token *token_find(struct wg__auth *a, const uint8_t *id) {
  size_t i = token_slot0(id);
  for (int64_t k = 0; k < WG_AUTH_TOKEN_SLOTS; k++, i = (i + 1) % WG_AUTH_TOKEN_SLOTS) {
    struct wg__auth_token *t = &a->tokens[i];
    if (t->expires_ms == 0) return NULL; /* linear probing: a free slot ends the run */
    if (sodium_memcmp(t->id, id, WG_AUTH_TOKEN_BYTES) == 0) return t;
  }
  return NULL;
}

/* Removes the token at slot i and moves the entries after it back (deletion without tombstones). */
static void token_remove_at(struct wg__auth *a, size_t i) {
  a->tokens[i].expires_ms = 0;
  a->n_tokens--;
  size_t j = i;
  for (;;) {
    j = (j + 1) % WG_AUTH_TOKEN_SLOTS;
    if (a->tokens[j].expires_ms == 0) return;
    size_t home = token_slot0(a->tokens[j].id);
    /* the entry at j may fill the hole at i when its home is not cyclically in (i, j] */
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (stays) continue;
    a->tokens[i] = a->tokens[j];
    a->tokens[j].expires_ms = 0;
    i = j;
  }
}

/* Drops expired tokens; when the table is still full, the one expiring first. */
static void tokens_make_room(struct wg__auth *a, int64_t now) {
  if (a->n_tokens < WG_AUTH_MAX_TOKENS) return;
  for (size_t i = 0; i < WG_AUTH_TOKEN_SLOTS; i++) {
    /* removing shifts later entries back into i: look at i again until it stays */
    while (a->tokens[i].expires_ms != 0 && a->tokens[i].expires_ms <= now)
      token_remove_at(a, i);
  }
  if (a->n_tokens < WG_AUTH_MAX_TOKENS) return;
  size_t soonest = 0;
  for (size_t i = 1; i < WG_AUTH_TOKEN_SLOTS; i++) {
    int64_t e = a->tokens[i].expires_ms;
    if (e != 0 && (a->tokens[soonest].expires_ms == 0 || e < a->tokens[soonest].expires_ms))
      soonest = i;
  }
  token_remove_at(a, soonest);
}

static void token_add(struct wg__auth *a, const uint8_t *id, const char *user, int64_t expires) {
  tokens_make_room(a, now_ms());
  size_t i = token_slot0(id);
  while (a->tokens[i].expires_ms != 0)
    i = (i + 1) % WG_AUTH_TOKEN_SLOTS;
  memcpy(a->tokens[i].id, id, WG_AUTH_TOKEN_BYTES);
  snprintf(a->tokens[i].user, sizeof(a->tokens[i].user), "%s", user);
  a->tokens[i].expires_ms = expires;
  a->n_tokens++;
}

static void token_text(const uint8_t *id, char out[WG_AUTH_TOKEN_TEXT]) {
  sodium_bin2base64(out, WG_AUTH_TOKEN_TEXT, id, WG_AUTH_TOKEN_BYTES,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* The user a token stands for, and its role now: 0, or WG_EUNAUTHENTICATED (unknown, expired,
 * user removed) with why. With a->mu held. */
static int token_check(struct wg__auth *a, const char *text, size_t len, struct wg__principal *p,
                       struct wg_error *err) {
  uint8_t id[WG_AUTH_TOKEN_BYTES];
  size_t n = 0;
  const char *end = NULL;
  if (sodium_base642bin(id, sizeof(id), text, len, NULL, &n, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      n != sizeof(id) || end != text + len)
    return wg_error_set(err, WG_EUNAUTHENTICATED, "invalid bearer token: log in again");
  struct wg__auth_token *t = token_find(a, id);
  if (t == NULL) return wg_error_set(err, WG_EUNAUTHENTICATED, "unknown bearer token: log in again");
  if (t->expires_ms <= now_ms()) {
    token_remove_at(a, (size_t)(t - a->tokens));
    return wg_error_set(err, WG_EUNAUTHENTICATED, "token expired: log in again");
  }
  const struct wg_user *u = wg_users_find(&a->users, t->user);
  if (u == NULL) {
    int rc = wg_error_set(err, WG_EUNAUTHENTICATED, "user %s no longer exists", t->user);
    token_remove_at(a, (size_t)(t - a->tokens));
    return rc;
  }
  if (p != NULL) {
    memset(p, 0, sizeof(*p));
    snprintf(p->user, sizeof(p->user), "%s", u->name);
    p->role = (enum wg_role)u->role;
    p->authenticated = true;
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Failed logins (with a->mu held) */

static struct wg__auth_fail *fail_slot(struct wg__auth *a, const char *who, bool create,
                                       int64_t now) {
  struct wg__auth_fail *spare = NULL; /* a free slot, else the oldest window */
  for (size_t i = 0; i < WG_AUTH_FAIL_SLOTS; i++) {
    struct wg__auth_fail *f = &a->fails[i];
    if (f->count > 0 && now - f->window_start_ms >= WG_AUTH_FAIL_WINDOW_MS) f->count = 0;
    if (f->count > 0 && strcmp(f->who, who) == 0) return f;
    if (spare == NULL || (spare->count > 0 && f->count == 0) ||
        (spare->count > 0 && f->window_start_ms < spare->window_start_ms))
      spare = f;
  }
  if (!create) return NULL;
  snprintf(spare->who, sizeof(spare->who), "%s", who);
  spare->count = 0;
  spare->window_start_ms = now;
  return spare;
}

/* WG_EUNAUTHENTICATED when `who` failed `limit` times in the window, with the wait. */
static int fail_limited(struct wg__auth *a, const char *who, int limit, int64_t now,
                        struct wg_error *err) {
  struct wg__auth_fail *f = fail_slot(a, who, false, now);
  if (f == NULL || f->count < limit) return 0;
  int64_t wait_s = (f->window_start_ms + WG_AUTH_FAIL_WINDOW_MS - now + 999) / 1000;
  return wg_error_set(err, WG_EUNAUTHENTICATED, "too many failed logins for %s; retry in %lld s",
                      who, (long long)wait_s);
}

static void fail_count(struct wg__auth *a, const char *who, int64_t now) {
  struct wg__auth_fail *f = fail_slot(a, who, true, now);
  if (f->count == 0) f->window_start_ms = now;
  f->count++;
}

/* "address 127.0.0.1" from the peer "ipv4:127.0.0.1:51234" (the port goes). */
static void peer_address(const char *peer, char *out, size_t size) {
  const char *p = strchr(peer, ':');
  p = p != NULL ? p + 1 : peer;
  const char *last = strrchr(p, ':');
  size_t n = last != NULL ? (size_t)(last - p) : strlen(p);
  snprintf(out, size, "address %.*s", (int)n, p);
}

/* ---------------------------------------------------------------------------------------------
 * Basic logins */

/* Splits "Basic base64(user:password)" into buf (user NUL password NUL): 0 or EINVAL. */
static int basic_decode(const char *b64, size_t len, char *buf, size_t size, char **user,
                        char **password, size_t *password_len) {
  size_t n = 0;
  if (sodium_base642bin((unsigned char *)buf, size - 1, b64, len, " ", &n, NULL,
                        sodium_base64_VARIANT_ORIGINAL) != 0 &&
      sodium_base642bin((unsigned char *)buf, size - 1, b64, len, " ", &n, NULL,
                        sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0)
    return EINVAL;
  if (memchr(buf, '\0', n) != NULL) return EINVAL; /* "u\0x:pw" must not log in as "u" */
  buf[n] = '\0';
  char *colon = memchr(buf, ':', n);
  if (colon == NULL) return EINVAL;
  *colon = '\0';
  *user = buf;
  *password = colon + 1;
  *password_len = n - (size_t)(colon + 1 - buf);
  return 0;
}

static void log_failure(const char *user, const char *peer, const char *why) {
  fprintf(stderr, "wigeon serve: failed login for user %s from %s: %s\n", user, peer, why);
}

/* Looks the verification up in the cache, else checks the rate limits: 1 for a cache hit (token
 * in *token, *p filled), 0 to go on hashing (*hash the user's hash, *role its role), or
 * WG_EUNAUTHENTICATED. With a->mu held. */
static int basic_precheck(struct wg__auth *a, const char *user, const char *address,
                          const uint8_t *digest, uint8_t *token, char *hash, int *role,
                          struct wg_error *err) {
  int64_t now = now_ms();
  struct wg__auth_cached *c = &a->cache[digest[0] % WG_AUTH_CACHE];
  if (c->expires_ms > now && c->generation == a->generation &&
      sodium_memcmp(c->digest, digest, sizeof(c->digest)) == 0 &&
      token_find(a, c->token) != NULL && token_find(a, c->token)->expires_ms > now) {
    memcpy(token, c->token, WG_AUTH_TOKEN_BYTES);
    return 1;
  }
  char who[80];
  snprintf(who, sizeof(who), "user %s", user);
  WG_RETURN_NOT_OK(fail_limited(a, who, WG_AUTH_FAILS_PER_USER, now, err));
  WG_RETURN_NOT_OK(fail_limited(a, address, WG_AUTH_FAILS_PER_ADDRESS, now, err));
  const struct wg_user *u = wg_users_find(&a->users, user);
  if (u == NULL) {
    /* counted like a wrong password, and hashed alike (below) so that timing tells nothing */
    hash[0] = '\0';
    *role = 0;
    return 0;
  }
  snprintf(hash, WG_USER_HASH_MAX, "%s", u->hash);
  *role = u->role;
  return 0;
}

/* A Basic login: the cache, the rate limits, argon2id, a new token; 0 with *p and the token, or
 * WG_EUNAUTHENTICATED. */
static int basic_login(struct wg__auth *a, const char *value, size_t len, const char *peer,
                       struct wg__principal *p, char token_out[WG_AUTH_TOKEN_TEXT],
                       struct wg_error *err) {
  char buf[WG_AUTH_MAX_HEADER];
  char *user = NULL, *password = NULL;
  size_t password_len = 0;
  if (basic_decode(value, len, buf, sizeof(buf), &user, &password, &password_len) != 0)
    return wg_error_set(err, WG_EUNAUTHENTICATED, "malformed Basic credentials");
  if (!wg_user_name_ok(user, strlen(user))) {
    log_failure("(bad name)", peer, "bad user name");
    sodium_memzero(buf, sizeof(buf));
    return wg_error_set(err, WG_EUNAUTHENTICATED, "bad user name or password");
  }
  uint8_t digest[crypto_generichash_BYTES], token[WG_AUTH_TOKEN_BYTES];
  crypto_generichash_state st;
  crypto_generichash_init(&st, a->cache_key, sizeof(a->cache_key), sizeof(digest));
  crypto_generichash_update(&st, (const unsigned char *)user, strlen(user) + 1);
  crypto_generichash_update(&st, (const unsigned char *)password, password_len);
  crypto_generichash_final(&st, digest, sizeof(digest));
  char address[80], hash[WG_USER_HASH_MAX];
  peer_address(peer, address, sizeof(address));
  int role = 0;
  pthread_mutex_lock(&a->mu);
  uint64_t generation = a->generation;
  int rc = basic_precheck(a, user, address, digest, token, hash, &role, err);
  pthread_mutex_unlock(&a->mu);
  bool ok = rc == 1;
  if (rc == 0) {
    struct wg_user u = {.role = role};
    if (hash[0] == '\0') { /* an unknown user costs one hash too, so that timing tells nothing */
      (void)crypto_pwhash_str_verify(a->dummy_hash, password, password_len);
    } else {
      memcpy(u.hash, hash, sizeof(u.hash));
      ok = wg_user_verify_password(&u, password, password_len);
    }
    pthread_mutex_lock(&a->mu);
    int64_t now = now_ms();
    if (!ok) {
      char who[80];
      snprintf(who, sizeof(who), "user %s", user);
      fail_count(a, who, now);
      fail_count(a, address, now);
      pthread_mutex_unlock(&a->mu);
      log_failure(user, peer, hash[0] == '\0' ? "no such user" : "wrong password");
      sodium_memzero(buf, sizeof(buf));
      return wg_error_set(err, WG_EUNAUTHENTICATED, "bad user name or password");
    }
    randombytes_buf(token, sizeof(token));
    int64_t expires = now + a->ttl_ms;
    token_add(a, token, user, expires);
    if (generation == a->generation) { /* not across a reload that may have changed the user */
      struct wg__auth_cached *c = &a->cache[digest[0] % WG_AUTH_CACHE];
      memcpy(c->digest, digest, sizeof(digest));
      memcpy(c->token, token, sizeof(token));
      snprintf(c->user, sizeof(c->user), "%s", user);
      c->expires_ms = expires;
      c->generation = generation;
    }
    a->logins++;
    pthread_mutex_unlock(&a->mu);
    fprintf(stderr, "wigeon serve: user %s logged in from %s\n", user, peer);
  } else if (rc != 1) {
    log_failure(user, peer, err != NULL ? err->message : "refused");
  }
  sodium_memzero(buf, sizeof(buf));
  sodium_memzero(hash, sizeof(hash));
  if (!ok) return rc;
  token_text(token, token_out);
  pthread_mutex_lock(&a->mu);
  rc = token_check(a, token_out, strlen(token_out), p, err); /* the role as of now */
  pthread_mutex_unlock(&a->mu);
  return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Admission */

static bool scheme_is(const char *value, size_t len, const char *scheme) {
  size_t n = strlen(scheme);
  return len > n && strncasecmp(value, scheme, n) == 0 && value[n] == ' ';
}

grpc_status_code wg__auth_early(const struct wg_rpc_call *call, void *ctx, char *message,
                                size_t size) {
  struct wg_server *s = ctx;
  struct wg__auth *a = s->auth;
  if (a == NULL) return GRPC_STATUS_OK;
  int64_t len = 0;
  const char *v = wg_rpc_call_metadata(call, "authorization", &len);
  struct wg_error err = {""};
  int rc = 0;
  if (v == NULL) {
    rc = wg_error_set(&err, WG_EUNAUTHENTICATED,
                      "authentication required: send authorization: Basic or Bearer");
  } else if (len > WG_AUTH_MAX_HEADER) {
    rc = wg_error_set(&err, WG_EUNAUTHENTICATED, "authorization header too long");
  } else if (scheme_is(v, (size_t)len, "Bearer")) {
    pthread_mutex_lock(&a->mu);
    rc = token_check(a, v + 7, (size_t)len - 7, NULL, &err);
    pthread_mutex_unlock(&a->mu);
  } else if (!scheme_is(v, (size_t)len, "Basic")) {
    rc = wg_error_set(&err, WG_EUNAUTHENTICATED, "unsupported authorization scheme: use Basic "
                                                 "or Bearer");
  }
  if (rc == 0) return GRPC_STATUS_OK;
  snprintf(message, size, "%s", err.message);
  atomic_fetch_add_explicit(&s->stats.errors, 1, memory_order_relaxed);
  return wg_rpc_status_from_errno(rc);
}

int wg__auth_admit(struct wg_server *s, struct wg_rpc_call *call, struct wg__principal *p,
                   struct wg_error *err) {
  memset(p, 0, sizeof(*p));
  struct wg__auth *a = s->auth;
  if (a == NULL) {
    p->role = WG_ROLE_ADMIN;
    return 0;
  }
  int64_t len = 0;
  const char *v = wg_rpc_call_metadata(call, "authorization", &len);
  if (v == NULL || len > WG_AUTH_MAX_HEADER)
    return wg_error_set(err, WG_EUNAUTHENTICATED, "authentication required");
  if (scheme_is(v, (size_t)len, "Bearer")) {
    pthread_mutex_lock(&a->mu);
    int rc = token_check(a, v + 7, (size_t)len - 7, p, err);
    pthread_mutex_unlock(&a->mu);
    return rc;
  }
  if (!scheme_is(v, (size_t)len, "Basic"))
    return wg_error_set(err, WG_EUNAUTHENTICATED, "unsupported authorization scheme");
  char token[WG_AUTH_TOKEN_TEXT];
  WG_RETURN_NOT_OK(basic_login(a, v + 6, (size_t)len - 6, wg_rpc_call_peer(call), p, token, err));
  char header[WG_AUTH_TOKEN_TEXT + 8];
  snprintf(header, sizeof(header), "Bearer %s", token);
  wg_rpc_call_add_header(call, "authorization", header);
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Lifecycle */

/* Whether the host of "host:port" is a loopback address. */
static bool listen_is_loopback(const char *listen) {
  const char *colon = strrchr(listen, ':');
  size_t n = colon != NULL ? (size_t)(colon - listen) : strlen(listen);
  char host[128];
  snprintf(host, sizeof(host), "%.*s", (int)n, listen);
  return strncmp(host, "127.", 4) == 0 || strcmp(host, "localhost") == 0 ||
         strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

static int load_users(const char *path, struct wg_users *users, struct wg_error *err) {
  bool open_to_others = false;
  WG_RETURN_NOT_OK(wg_users_load(path, users, &open_to_others, err));
  if (open_to_others)
    fprintf(stderr,
            "wigeon serve: warning: users file %s may be read by group or others (chmod 600 "
            "it)\n",
            path);
  return 0;
}

int wg__auth_start(struct wg_server *s, struct wg_error *err) {
  const struct wg_server_options *o = &s->options;
  bool loopback = listen_is_loopback(o->listen);
  if (o->users_path == NULL) {
    if (loopback) return 0;
    if (!o->insecure_no_auth)
      return wg_error_set(err, EACCES,
                          "refusing to listen on %.200s without authentication: give --users "
                          "FILE, or --insecure-no-auth to let anyone who can reach it be admin",
                          o->listen);
    fprintf(stderr, "wigeon serve: warning: no authentication (--insecure-no-auth) on %s: "
                    "anyone who can reach it is admin\n",
            o->listen);
    return 0;
  }
  if (sodium_init() < 0) return wg_error_set(err, ENOMEM, "libsodium cannot start");
  struct wg__auth *a = calloc(1, sizeof(*a));
  if (a != NULL) a->tokens = calloc(WG_AUTH_TOKEN_SLOTS, sizeof(*a->tokens));
  if (a == NULL || a->tokens == NULL) {
    if (a != NULL) free(a);
    return wg_error_set(err, ENOMEM, "out of memory for the token table");
  }
  int rc = load_users(o->users_path, &a->users, err);
  if (rc == 0 && pthread_mutex_init(&a->mu, NULL) != 0)
    rc = wg_error_set(err, ENOMEM, "cannot create a lock");
  if (rc != 0) {
    free(a->tokens);
    free(a);
    return rc;
  }
  a->ttl_ms = o->token_ttl_s * 1000;
  randombytes_buf(a->cache_key, sizeof(a->cache_key));
  uint8_t dummy[16];
  randombytes_buf(dummy, sizeof(dummy));
  if (rc == 0) rc = wg_user_hash_password((const char *)dummy, sizeof(dummy), a->dummy_hash, err);
  if (rc != 0) {
    pthread_mutex_destroy(&a->mu);
    wg_users_reset(&a->users);
    free(a->tokens);
    free(a);
    return rc;
  }
  if (!loopback && o->tls_cert_file == NULL)
    fprintf(stderr, "wigeon serve: warning: listening on %s without TLS: passwords and tokens "
                    "travel in clear\n",
            o->listen);
  s->auth = a;
  return 0;
}

int wg__auth_reload(struct wg_server *s, struct wg_error *err) {
  struct wg__auth *a = s->auth;
  if (a == NULL) return 0;
  struct wg_users users;
  WG_RETURN_NOT_OK(load_users(s->options.users_path, &users, err));
  pthread_mutex_lock(&a->mu);
  struct wg_users old = a->users;
  a->users = users;
  a->generation++;
  pthread_mutex_unlock(&a->mu);
  wg_users_reset(&old);
  fprintf(stderr, "wigeon serve: users file %s reloaded: %lld users\n", s->options.users_path,
          (long long)users.n);
  return 0;
}

void wg__auth_stop(struct wg_server *s) {
  struct wg__auth *a = s->auth;
  if (a == NULL) return;
  wg_users_reset(&a->users);
  sodium_memzero(a->tokens, WG_AUTH_TOKEN_SLOTS * sizeof(*a->tokens));
  free(a->tokens);
  pthread_mutex_destroy(&a->mu);
  sodium_memzero(a, sizeof(*a));
  free(a);
  s->auth = NULL;
}

const struct wg__principal *wg__call_principal(const struct wg_rpc_call *call) {
  static const struct wg__principal anonymous = {.role = WG_ROLE_ADMIN};
  const struct wg__principal *p = wg_rpc_call_user_data(call);
  return p != NULL ? p : &anonymous;
}
