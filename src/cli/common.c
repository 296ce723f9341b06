/* wigeon: what the subcommands share: option parsing, the server connection and the mapping of
 * status codes to exit codes (ECONNREFUSED, which the client reads from gRPC UNAVAILABLE, is
 * "cannot connect"), number formatting, the interrupt flag and a few Arrow and SQL helpers.
 * The interrupt flag is the one global: a signal handler can reach nothing else. */
#include <sys/random.h>
#include <time.h>
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arrow/array.h"
#include "cli/cli.h"

/* ---- options ---- */

int wg_cli_usage_error(const struct wg_cli_command *cmd, const char *fmt, ...) {
  fprintf(stderr, "wigeon %s: ", cmd->name);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n\n");
  cmd->usage(stderr);
  return WG_EXIT_USAGE;
}

static const struct wg_cli_opt *find_opt(const struct wg_cli_opt *opts, const char *a, size_t n) {
  for (const struct wg_cli_opt *o = opts; o != NULL && o->name != NULL; o++) {
    if (strlen(o->name) == n && strncmp(o->name, a, n) == 0) return o;
    if (o->short_name != NULL && strlen(o->short_name) == n && strncmp(o->short_name, a, n) == 0)
      return o;
  }
  return NULL;
}

/* The flags every client command takes (those with --server): TLS, and --user / --token. Set while
 * parsing argv on the main thread, before any connection; read by wg_cli_conn_open. The one state
 * besides the interrupt flag, so that each command's table need not repeat them. */
static const char *tls_ca, *tls_cert, *tls_key, *login_user, *login_token;

/* opts, plus the client flags when opts has --server: into all (room for WG_CLI_MAX_OPTS). */
static const struct wg_cli_opt *with_client_flags(const struct wg_cli_opt *opts,
                                                  struct wg_cli_opt *all, size_t room) {
  size_t n = 0;
  bool client = false;
  for (; opts != NULL && opts[n].name != NULL; n++)
    client = client || strcmp(opts[n].name, "--server") == 0;
  if (!client || n + 6 > room) return opts;
  memcpy(all, opts, n * sizeof(*all));
  all[n++] = (struct wg_cli_opt){"--tls-ca", NULL, &tls_ca, NULL};
  all[n++] = (struct wg_cli_opt){"--tls-cert", NULL, &tls_cert, NULL};
  all[n++] = (struct wg_cli_opt){"--tls-key", NULL, &tls_key, NULL};
  all[n++] = (struct wg_cli_opt){"--user", NULL, &login_user, NULL};
  all[n++] = (struct wg_cli_opt){"--token", NULL, &login_token, NULL};
  all[n] = (struct wg_cli_opt){NULL, NULL, NULL, NULL};
  return all;
}

int wg_cli_parse(const struct wg_cli_command *cmd, int argc, char **argv,
                 const struct wg_cli_opt *opts, const char **pos, int max_pos, int *n_pos) {
  *n_pos = 0;
  struct wg_cli_opt all[64];
  opts = with_client_flags(opts, all, sizeof(all) / sizeof(all[0]));
  bool only_pos = false;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!only_pos && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
      cmd->usage(stdout);
      return 0;
    }
    if (!only_pos && strcmp(a, "--") == 0) {
      only_pos = true;
      continue;
    }
    if (only_pos || a[0] != '-' || a[1] == '\0') {
      if (*n_pos >= max_pos)
        return wg_cli_usage_error(
            cmd, max_pos == 0 ? "unexpected argument '%s'" : "too many arguments ('%s')", a);
      pos[(*n_pos)++] = a;
      continue;
    }
    const char *eq = strchr(a, '=');
    size_t n = eq != NULL && a[1] == '-' ? (size_t)(eq - a) : strlen(a);
    const struct wg_cli_opt *o = find_opt(opts, a, n);
    if (o == NULL) return wg_cli_usage_error(cmd, "unknown option '%.*s'", (int)n, a);
    if (o->flag != NULL) {
      if (n != strlen(a)) return wg_cli_usage_error(cmd, "%s takes no value", o->name);
      *o->flag = true;
      continue;
    }
    if (n != strlen(a)) {
      *o->value = a + n + 1;
    } else if (i + 1 < argc) {
      *o->value = argv[++i];
    } else {
      return wg_cli_usage_error(cmd, "%s needs a value", o->name);
    }
  }
  return -1;
}

int wg_cli_parse_one(const struct wg_cli_command *cmd, int argc, char **argv,
                     const struct wg_cli_opt *opts, const char **arg, const char *missing) {
  int n_pos = 0;
  int rc = wg_cli_parse(cmd, argc, argv, opts, arg, 1, &n_pos);
  if (rc >= 0) return rc;
  if (n_pos != 1) return wg_cli_usage_error(cmd, "%s", missing);
  return -1;
}

int wg_cli_parse_int(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') return EINVAL;
  *out = v;
  return 0;
}

int wg_cli_opt_int(const struct wg_cli_command *cmd, const char *name, const char *value,
                   int64_t min, int64_t max, int64_t *out) {
  if (wg_cli_parse_int(value, out) != 0 || *out < min || *out > max)
    return wg_cli_usage_error(cmd, "%s wants a whole number from %lld to %lld, not '%s'", name,
                              (long long)min, (long long)max, value);
  return -1;
}

int wg_cli_opt_seconds(const struct wg_cli_command *cmd, const char *name, const char *value,
                       double *out) {
  char *end;
  errno = 0;
  double v = strtod(value, &end);
  double unit = 1;
  if (strcmp(end, "ms") == 0)
    unit = 0.001;
  else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
    unit = 60;
  else if (strcmp(end, "h") == 0)
    unit = 3600;
  else if (strcmp(end, "s") != 0 && *end != '\0')
    v = -1;
  if (errno != 0 || end == value || !(v >= 0) || v * unit > 1e9)
    return wg_cli_usage_error(cmd, "%s wants a duration like 1.5, 2s, 500ms or 3m, not '%s'", name,
                              value);
  *out = v * unit;
  return -1;
}

/* ---- connection and exit codes ---- */

const char *wg_cli_server_uri(const char *flag) {
  if (flag != NULL) return flag;
  const char *env = getenv("WIGEON_SERVER");
  return env != NULL && env[0] != '\0' ? env : WG_CLI_DEFAULT_SERVER;
}

int wg_cli_conn_open(struct wg_cli_conn *cx, const char *cmd, const char *server_flag) {
  memset(cx, 0, sizeof(*cx));
  cx->cmd = cmd;
  const char *uri = wg_cli_server_uri(server_flag);
  snprintf(cx->uri, sizeof(cx->uri), "%s%s", strstr(uri, "://") ? "" : "grpc://", uri);
  /* lazily: an unreachable server shows on the first call, as "cannot connect" (exit 3) */
  struct wg_client_options o;
  wg_client_options_init(&o);
  o.lazy_connect = true;
  char password[512] = "";
  if (login_user != NULL && login_token != NULL) {
    fprintf(stderr, "wigeon %s: --user and --token: give one\n", cmd);
    return WG_EXIT_USAGE;
  }
  if (login_user != NULL) {
    const char *env = getenv("WIGEON_PASSWORD");
    if (env != NULL) {
      snprintf(password, sizeof(password), "%s", env);
    } else if (!isatty(STDIN_FILENO) ||
               wg_cli_read_password("Password: ", password, sizeof(password)) != 0) {
      fprintf(stderr, "wigeon %s: --user %s: set WIGEON_PASSWORD or run on a terminal\n", cmd,
              login_user);
      return WG_EXIT_USAGE;
    }
    o.username = login_user;
    o.password = password;
  }
  o.token = login_token;
  o.tls_ca_file = tls_ca;
  o.tls_cert_file = tls_cert;
  o.tls_key_file = tls_key;
  if ((tls_ca != NULL || tls_cert != NULL || tls_key != NULL) && strncmp(uri, "grpc+tls://", 11))
    fprintf(stderr, "wigeon %s: warning: --tls-* flags with %s (not grpc+tls://): no TLS\n", cmd,
            cx->uri);
  struct wg_status st;
  int rc = wg_connect(uri, &o, &cx->client, &st);
  explicit_bzero(password, sizeof(password)); /* wg_connect copied it */
  if (rc != 0) {
    fprintf(stderr, "wigeon %s: cannot connect to %s: %s\n", cmd, cx->uri, st.message);
    return WG_EXIT_CONNECT;
  }
  return 0;
}

void wg_cli_conn_close(struct wg_cli_conn *cx) {
  wg_disconnect(cx->client);
  cx->client = NULL;
}

int wg_cli_exit_code(int rc) {
  return rc == ECONNREFUSED ? WG_EXIT_CONNECT : WG_EXIT_SERVER;
}

int wg_cli_status(const struct wg_status *st, struct wg_error *err) {
  if (st->sys_errno != 0 && err != NULL)
    snprintf(err->message, sizeof(err->message), "%s", st->message);
  return st->sys_errno;
}

int wg_cli_stream_errno(struct ArrowArrayStream *stream) {
  struct wg_status st;
  wg_stream_status(stream, &st);
  return st.sys_errno;
}

int wg_cli_conn_fail(const struct wg_cli_conn *cx, int rc, const char *message) {
  if (message == NULL || message[0] == '\0') message = strerror(rc);
  if (rc == ECONNREFUSED)
    fprintf(stderr, "wigeon %s: cannot connect to %s: %s\n", cx->cmd, cx->uri, message);
  else
    fprintf(stderr, "wigeon %s: %s\n", cx->cmd, message);
  return wg_cli_exit_code(rc);
}

/* ---- small helpers ---- */

double wg_cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void wg_cli_sleep(double seconds) {
  if (seconds <= 0) return;
  struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  nanosleep(&ts, NULL); /* an interrupt ends it early, which is what callers want */
}

const char *wg_cli_commas(int64_t n, char *buf, size_t size) {
  char digits[32];
  uint64_t u = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
  int len = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)u);
  size_t o = 0;
  if (n < 0 && o + 1 < size) buf[o++] = '-';
  for (int i = 0; i < len && o + 1 < size; i++) {
    if (i > 0 && (len - i) % 3 == 0 && o + 2 < size) buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = '\0';
  return buf;
}

const char *wg_cli_rate(int64_t delta, double seconds, char *buf, size_t size) {
  return wg_cli_commas((int64_t)((double)delta / seconds), buf, size);
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) {
  (void)sig;
  interrupted = 1;
}

void wg_cli_catch_interrupt(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

void wg_cli_catch_interrupt_eintr(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

bool wg_cli_interrupted(void) {
  return interrupted != 0;
}

int wg_cli_buf_str(struct wg_buf *b, const char *s) {
  return wg_buf_append(b, s, (int64_t)strlen(s));
}

const char *wg_cli_buf_cstr(struct wg_buf *b) {
  if (wg_buf_reserve(b, 1) != 0) return "";
  b->data[b->size] = '\0';
  return (const char *)b->data;
}

void wg_cli_rmdir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

/* ---- Arrow types ---- */

static const struct {
  const char *format;
  const char *name;
  int width; /* bytes per value, 0 when not fixed */
} primitives[] = {
    {"n", "null", 0},
    {"b", "bool", 0},
    {"c", "int8", 1},
    {"C", "uint8", 1},
    {"s", "int16", 2},
    {"S", "uint16", 2},
    {"i", "int32", 4},
    {"I", "uint32", 4},
    {"l", "int64", 8},
    {"L", "uint64", 8},
    {"e", "float16", 2},
    {"f", "float32", 4},
    {"g", "float64", 8},
    {"z", "binary", 0},
    {"Z", "large_binary", 0},
    {"u", "utf8", 0},
    {"U", "large_utf8", 0},
    {"vz", "binary_view", 0},
    {"vu", "utf8_view", 0},
    {"tdD", "date32", 4},
    {"tdm", "date64", 8},
    {"tts", "time32[s]", 4},
    {"ttm", "time32[ms]", 4},
    {"ttu", "time64[us]", 8},
    {"ttn", "time64[ns]", 8},
    {"tDs", "duration[s]", 8},
    {"tDm", "duration[ms]", 8},
    {"tDu", "duration[us]", 8},
    {"tDn", "duration[ns]", 8},
    {"tiM", "interval[months]", 4},
    {"tiD", "interval[day_time]", 8},
    {"tin", "interval[month_day_nano]", 16},
};

void wg_cli_arrow_type_name(const struct ArrowSchema *s, char *buf, size_t size) {
  const char *f = s->format ? s->format : "?";
  buf[0] = '\0';
  if (s->dictionary != NULL) {
    char v[128];
    wg_cli_arrow_type_name(s->dictionary, v, sizeof(v));
    snprintf(buf, size, "dictionary<%s>", v);
    return;
  }
  for (size_t i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++)
    if (strcmp(f, primitives[i].format) == 0) {
      snprintf(buf, size, "%s", primitives[i].name);
      return;
    }
  char child[160] = "?";
  if (s->n_children > 0) wg_cli_arrow_type_name(s->children[0], child, sizeof(child));
  if (strncmp(f, "ts", 2) == 0 && strlen(f) >= 4) {
    const char *unit = f[2] == 's' ? "s" : f[2] == 'm' ? "ms" : f[2] == 'u' ? "us" : "ns";
    if (f[4] != '\0')
      snprintf(buf, size, "timestamp[%s, %s]", unit, f + 4);
    else
      snprintf(buf, size, "timestamp[%s]", unit);
  } else if (strncmp(f, "d:", 2) == 0) {
    snprintf(buf, size, "decimal(%s)", f + 2);
  } else if (strncmp(f, "w:", 2) == 0) {
    snprintf(buf, size, "fixed_size_binary[%s]", f + 2);
  } else if (strcmp(f, "+l") == 0 || strcmp(f, "+L") == 0 || strcmp(f, "+vl") == 0) {
    snprintf(buf, size, "%slist<%s>", f[1] == 'L' ? "large_" : "", child);
  } else if (strncmp(f, "+w:", 3) == 0) {
    snprintf(buf, size, "fixed_size_list<%s>[%s]", child, f + 3);
  } else if (strcmp(f, "+m") == 0) {
    snprintf(buf, size, "map<%s>", child);
  } else if (strcmp(f, "+s") == 0) {
    size_t o = (size_t)snprintf(buf, size, "struct<");
    for (int64_t i = 0; i < s->n_children && o < size; i++) {
      char c[128];
      wg_cli_arrow_type_name(s->children[i], c, sizeof(c));
      o += (size_t)snprintf(buf + o, size - o, "%s%s: %s", i ? ", " : "",
                            s->children[i]->name ? s->children[i]->name : "", c);
    }
    if (o < size) snprintf(buf + o, size - o, ">");
  } else if (strncmp(f, "+u", 2) == 0) {
    snprintf(buf, size, "union");
  } else if (strcmp(f, "+r") == 0) {
    snprintf(buf, size, "run_end_encoded");
  } else {
    snprintf(buf, size, "%s", f);
  }
}

int64_t wg_cli_array_bytes(const struct ArrowSchema *s, const struct ArrowArray *a) {
  if (s == NULL || a == NULL || a->release == NULL) return 0;
  const char *f = s->format ? s->format : "";
  int64_t n = a->length, off = a->offset, bytes = 0;
  if (a->n_buffers > 0 && a->buffers[0] != NULL && strcmp(f, "n") != 0) bytes += (n + 7) / 8;
  if (s->dictionary != NULL && a->dictionary != NULL)
    bytes += wg_cli_array_bytes(s->dictionary, a->dictionary);
  int width = 0;
  for (size_t i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++)
    if (strcmp(f, primitives[i].format) == 0) width = primitives[i].width;
  if (strncmp(f, "ts", 2) == 0) width = 8;
  if (strncmp(f, "d:", 2) == 0) width = strstr(f, ",256") ? 32 : strstr(f, ",64") ? 8 : 16;
  if (strncmp(f, "w:", 2) == 0) width = atoi(f + 2);
  if (s->dictionary != NULL) width = width ? width : 4;
  if (width > 0) return bytes + n * width;
  if (strcmp(f, "b") == 0) return bytes + (n + 7) / 8;
  if ((strcmp(f, "u") == 0 || strcmp(f, "z") == 0) && a->n_buffers >= 3 && a->buffers[1]) {
    const int32_t *o = a->buffers[1];
    return bytes + (n + 1) * 4 + (n > 0 ? (int64_t)o[off + n] - o[off] : 0);
  }
  if ((strcmp(f, "U") == 0 || strcmp(f, "Z") == 0) && a->n_buffers >= 3 && a->buffers[1]) {
    const int64_t *o = a->buffers[1];
    return bytes + (n + 1) * 8 + (n > 0 ? o[off + n] - o[off] : 0);
  }
  if ((strcmp(f, "vu") == 0 || strcmp(f, "vz") == 0) && a->n_buffers >= 3) {
    bytes += n * 16;
    const int64_t *sizes = a->buffers[a->n_buffers - 1];
    for (int64_t i = 0; sizes != NULL && i < a->n_buffers - 3; i++)
      bytes += sizes[i];
    return bytes;
  }
  if (strcmp(f, "+l") == 0 || strcmp(f, "+m") == 0) bytes += (n + 1) * 4;
  if (strcmp(f, "+L") == 0) bytes += (n + 1) * 8;
  for (int64_t i = 0; i < a->n_children && i < s->n_children; i++)
    bytes += wg_cli_array_bytes(s->children[i], a->children[i]);
  return bytes;
}

void wg_cli_random_key(const char *prefix, char *out, size_t size) {
  uint8_t r[16];
  ssize_t got = getrandom(r, sizeof(r), 0);
  if (got != (ssize_t)sizeof(r)) { /* no randomness: time and address still make it unique */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t a = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, b = (uintptr_t)out;
    memcpy(r, &a, 8);
    memcpy(r + 8, &b, 8);
  }
  int n = snprintf(out, size, "%s-", prefix);
  for (size_t i = 0; i < sizeof(r) && n > 0 && (size_t)n + 2 < size; i++)
    n += snprintf(out + n, size - (size_t)n, "%02x", r[i]);
}
