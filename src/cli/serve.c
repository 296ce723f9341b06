/* wigeon: `wigeon serve`: runs the Flight server until SIGINT or SIGTERM, then stops accepting
 * calls, lets in-flight calls finish within the grace period, checkpoints and exits 0; SIGHUP
 * re-reads the users file and the TLS files (wg_server_reload). The signals are blocked in every
 * thread and taken synchronously with sigwait, so no handler runs. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "common/uri.h"
#include "rpc/rpc.h"
#include "server/server.h"

/* The flags of `wigeon serve`, in one table: how each is parsed into struct wg_server_options
 * and how --help shows it. The defaults --help prints are read from wg_server_options_default
 * (server.c), the ones the server uses, so the two cannot disagree. */
enum flag_kind {
  FLAG_BOOL,   /* no value: sets the bool field */
  FLAG_TEXT,   /* a string, stored as given */
  FLAG_LISTEN, /* grpc://HOST:PORT or HOST:PORT, stored as HOST:PORT */
  FLAG_INT,    /* a whole number in [min, max], times scale */
  FLAG_SIZE,   /* 64MB, 512KB, 1.5GB (powers of 1024) or bytes */
};

struct serve_flag {
  const char *name, *arg; /* "--threads", "N" */
  enum flag_kind kind;
  size_t offset, size;   /* the field of struct wg_server_options and its size (int or int64_t) */
  int64_t scale;         /* FLAG_INT: the field is the number times this (1000: seconds -> ms) */
  int64_t min, max;      /* FLAG_INT: the numbers accepted */
  bool zero_off;         /* 0 stores -1: off, never, no check */
  const char *help;      /* lines separated by '\n'; the default is appended */
  const char *default_text; /* shown instead of the default value (computed at start) */
};

#define FIELD(f) offsetof(struct wg_server_options, f), sizeof(((struct wg_server_options *)0)->f)
#define MAX_N 100000000

static const struct serve_flag flags[] = {
    {"--db", "PATH", FLAG_TEXT, FIELD(db_path), 0, 0, 0, false, "database file, or :memory:",
     NULL},
    {"--listen", "URI", FLAG_LISTEN, FIELD(listen), 0, 0, 0, false,
     "grpc://HOST:PORT or HOST:PORT", NULL},
    {"--tls-cert", "FILE", FLAG_TEXT, FIELD(tls_cert_file), 0, 0, 0, false,
     "serve TLS with this PEM certificate chain (and --tls-key);\n"
     "re-read on SIGHUP (docs/security.md, \"TLS\")",
     "plaintext"},
    {"--tls-key", "FILE", FLAG_TEXT, FIELD(tls_key_file), 0, 0, 0, false,
     "the PEM private key of --tls-cert (not encrypted)", "none"},
    {"--tls-client-ca", "FILE", FLAG_TEXT, FIELD(tls_client_ca_file), 0, 0, 0, false,
     "mutual TLS: clients must present a certificate signed\n"
     "by a CA in this PEM file",
     "no client certificates"},
    {"--threads", "N", FLAG_INT, FIELD(threads), 1, 1, MAX_N, false,
     "DuckDB connections, and worker threads always running;\n"
     "more workers start while all are busy",
     NULL},
    {"--queue", "N", FLAG_INT, FIELD(queue_limit), 1, 1, MAX_N, false,
     "calls that may wait for a DuckDB connection before the\n"
     "server answers RESOURCE_EXHAUSTED",
     NULL},
    {"--max-connections", "N", FLAG_INT, FIELD(max_connections), 1, 1, MAX_N, false,
     "client connections open at once; more are refused at\n"
     "once (the soft open-file limit is raised to the hard one\n"
     "at start)",
     "the open-file limit less 128, at most 4096"},
    {"--batch-rows", "N", FLAG_INT, FIELD(batch_rows), 1, 1, MAX_N, false,
     "target rows per record batch sent by DoGet", NULL},
    /* at most half of gRPC's 256 MiB message limit: the size is an estimate before encoding */
    {"--batch-bytes", "N", FLAG_INT, FIELD(batch_bytes), 1, 1024,
     WG_RPC_DEFAULT_MAX_MESSAGE_BYTES / 2, false,
     "and bytes at most per batch: wide rows make shorter\n"
     "batches, a row bigger than N goes alone; 1024 to 134217728",
     NULL},
    {"--grace", "SECONDS", FLAG_INT, FIELD(grace_ms), 1000, 0, INT_MAX / 1000, false,
     "time in-flight calls get on shutdown", NULL},
    {"--idle-timeout", "SECONDS", FLAG_INT, FIELD(idle_timeout_ms), 1000, 0, MAX_N, true,
     "cancel a call whose client neither sends nor reads for\n"
     "this long; 0 = never",
     NULL},
    {"--keepalive", "SECONDS", FLAG_INT, FIELD(keepalive_ms), 1000, 0, MAX_N, true,
     "ping each client with calls open (a live tail too) after\n"
     "this long without one; one that does not answer within\n"
     "as long (at most 20 s) is dropped; 0 = no pings",
     NULL},
    {"--acquire-timeout", "SECONDS", FLAG_INT, FIELD(acquire_timeout_ms), 1000, 0, MAX_N, true,
     "a call waits this long for a free DuckDB connection, then\n"
     "gets RESOURCE_EXHAUSTED \"server busy\"; 0 = wait for ever",
     NULL},
    {"--group-commit-mb", "MB", FLAG_INT, FIELD(group_commit_bytes), 1 << 20, 0, MAX_N, true,
     "puts up to this size are committed together with other\n"
     "puts (one fsync per group); 0 = off",
     NULL},
    {"--committers", "N", FLAG_INT, FIELD(committers), 1, 1, MAX_N, false,
     "group committer threads, each with its own connection;\n"
     "more than one helps only with cores to spare",
     NULL},
    {"--checkpoint-threshold", "SIZE", FLAG_TEXT, FIELD(checkpoint_threshold), 0, 0, 0, false,
     "WAL size that triggers a checkpoint", NULL},
    {"--disk-reserve", "SIZE", FLAG_SIZE, FIELD(disk_reserve), 1, 0, 0, true,
     "writes are refused (RESOURCE_EXHAUSTED) unless the\n"
     "database's file system keeps room for the write, for the\n"
     "checkpoint of the WAL, and SIZE more; 0 = no check",
     NULL},
    {"--idempotency-window", "HOURS", FLAG_INT, FIELD(idempotency_window_s), 3600, 0, MAX_N, true,
     "how long a put's idempotency key is remembered, so that\n"
     "a retry with the same key appends nothing; 0 = forever",
     NULL},
    {"--memory-limit", "SIZE", FLAG_TEXT, FIELD(memory_limit), 0, 0, 0, false,
     "DuckDB memory_limit, e.g. 4GB", "DuckDB's, 80% of RAM"},
    {"--duckdb-threads", "N", FLAG_INT, FIELD(duckdb_threads), 1, 1, MAX_N, false,
     "DuckDB's threads for one query; 1 trades big queries'\n"
     "parallelism for steadier latency of small ones\n"
     "(docs/performance.md)",
     "one per core"},
    {"--max-sql-bytes", "N", FLAG_INT, FIELD(max_sql_bytes), 1, 1, INT64_MAX, false,
     "longest SQL text a call may send; longer is refused with\n"
     "RESOURCE_EXHAUSTED before it is parsed",
     NULL},
    {"--max-columns", "N", FLAG_INT, FIELD(max_columns), 1, 1, MAX_N, false,
     "columns a put's schema may have, each nested field\n"
     "counting as one; more is refused with RESOURCE_EXHAUSTED\n"
     "before any work",
     NULL},
    {"--max-sessions", "N", FLAG_INT, FIELD(max_sessions), 1, 1, 100000, false,
     "Flight SQL transactions holding a DuckDB connection\n"
     "at once (from their first write to their end, or for a\n"
     "call); one more is refused with RESOURCE_EXHAUSTED",
     NULL},
    {"--session-idle-timeout", "SECONDS", FLAG_INT, FIELD(session_idle_timeout_ms), 1000, 1,
     MAX_N, false,
     "a Flight SQL transaction that no call used for this long\n"
     "is rolled back and its connection closed",
     NULL},
    {"--max-message-bytes", "N", FLAG_INT, FIELD(max_message_bytes), 1, 4096, INT32_MAX, false,
     "largest gRPC message either way: a bigger request is\n"
     "refused with RESOURCE_EXHAUSTED, results are cut into\n"
     "batches that fit",
     "256 MiB"},
    {"--query-timeout", "SECONDS", FLAG_INT, FIELD(query_timeout_ms), 1000, 0, MAX_N, false,
     "a call running SQL (a DoGet, a Flight SQL statement or\n"
     "prepared execution, the execute action) for longer is\n"
     "ended with DEADLINE_EXCEEDED and its query interrupted;\n"
     "0 = no limit",
     "none"},
    {"--max-calls-per-user", "N", FLAG_INT, FIELD(max_calls_per_user), 1, 0, MAX_N, false,
     "calls one user may have running at once; one more is\n"
     "refused with RESOURCE_EXHAUSTED (without --users every\n"
     "caller is the one anonymous user); 0 = no limit",
     "no limit"},
    {"--tail-buffer-mb", "MB", FLAG_INT, FIELD(tail_buffer_bytes), 1 << 20, 1, MAX_N, false,
     "a live tail's subscriber that falls this far behind the\n"
     "commits is cut off with RESOURCE_EXHAUSTED (docs/tail.md)",
     NULL},
    {"--tail-history-mb", "MB", FLAG_INT, FIELD(tail_history_bytes), 1 << 20, 1, MAX_N, false,
     "committed puts kept in memory for live tails that catch\n"
     "up or resume from a sequence; older ones are forgotten",
     NULL},
    {"--max-tails", "N", FLAG_INT, FIELD(max_tails), 1, 1, 1000000, false,
     "live tail subscribers at once; one more is refused with\n"
     "RESOURCE_EXHAUSTED",
     NULL},
    {"--allow-external-access", NULL, FLAG_BOOL, FIELD(allow_external_access), 0, 0, 0, false,
     "let remote SQL read and write the server's files, attach\n"
     "databases, load extensions, change settings, enable\n"
     "logging and see the server's paths (docs/server.md,\n"
     "\"Remote SQL sandbox\")",
     "refused"},
    {"--users", "FILE", FLAG_TEXT, FIELD(users_path), 0, 0, 0, false,
     "users file (NAME:ROLE:HASH lines, made with `wigeon\n"
     "passwd`): every call must log in (docs/security.md);\n"
     "re-read on SIGHUP",
     "none: everyone is admin, on a loopback address only"},
    {"--token-ttl", "SECONDS", FLAG_INT, FIELD(token_ttl_s), 1, 1, MAX_N, false,
     "a login's bearer token is valid this long", NULL},
    {"--insecure-no-auth", NULL, FLAG_BOOL, FIELD(insecure_no_auth), 0, 0, 0, false,
     "without --users, listen on a non-loopback address anyway\n"
     "(anyone who reaches it is admin)",
     "refused"},
};
enum { N_FLAGS = sizeof(flags) / sizeof(flags[0]) };

static int64_t get_int(const struct wg_server_options *o, const struct serve_flag *f) {
  const char *p = (const char *)o + f->offset;
  if (f->size == sizeof(int)) {
    int v;
    memcpy(&v, p, sizeof(v));
    return v;
  }
  int64_t v;
  memcpy(&v, p, sizeof(v));
  return v;
}

static void set_int(struct wg_server_options *o, const struct serve_flag *f, int64_t v) {
  char *p = (char *)o + f->offset;
  if (f->size == sizeof(int)) {
    int i = (int)v;
    memcpy(p, &i, sizeof(i));
  } else {
    memcpy(p, &v, sizeof(v));
  }
}

/* The default of flag f, as --help shows it, from the server's defaults d. */
static void default_text(const struct serve_flag *f, const struct wg_server_options *d, char *buf,
                         size_t size) {
  const char *text = NULL;
  if (f->kind == FLAG_TEXT || f->kind == FLAG_LISTEN)
    memcpy(&text, (const char *)d + f->offset, sizeof(text));
  int64_t v = f->kind == FLAG_INT || f->kind == FLAG_SIZE ? get_int(d, f) : 0;
  if (f->default_text != NULL)
    snprintf(buf, size, "%s", f->default_text);
  else if (f->kind == FLAG_LISTEN)
    snprintf(buf, size, "grpc://%s", text);
  else if (f->kind == FLAG_TEXT)
    snprintf(buf, size, "%s", text ? text : "none");
  else if (f->kind == FLAG_SIZE && v > 0 && v % (1 << 20) == 0)
    snprintf(buf, size, "%lldMB", (long long)(v >> 20));
  else
    snprintf(buf, size, "%lld", (long long)(v / f->scale));
}

static void usage(FILE *f) {
  struct wg_server_options d;
  wg_server_options_default(&d);
  fprintf(f, "usage: wigeon serve [options]\n"
             "\n"
             "Serves a DuckDB database over Arrow Flight until SIGINT or SIGTERM.\n"
             "\n"
             "options:\n");
  for (size_t i = 0; i < N_FLAGS; i++) {
    char head[64], def[96];
    snprintf(head, sizeof(head), "%s%s%s", flags[i].name, flags[i].arg ? " " : "",
             flags[i].arg ? flags[i].arg : "");
    default_text(&flags[i], &d, def, sizeof(def));
    fprintf(f, "  %-26s", head);
    if (strlen(head) >= 26) fprintf(f, "\n  %-26s", "");
    size_t last = 0; /* the length of the last line printed */
    for (const char *line = flags[i].help; line != NULL;) {
      const char *nl = strchr(line, '\n');
      last = nl ? (size_t)(nl - line) : strlen(line);
      fprintf(f, "%.*s", (int)last, line);
      if (nl != NULL) fprintf(f, "\n  %-26s", "");
      line = nl ? nl + 1 : NULL;
    }
    if (28 + last + strlen(def) + 12 > 100) /* the default on a line of its own */
      fprintf(f, "\n  %-26s(default: %s)\n", "", def);
    else
      fprintf(f, " (default: %s)\n", def);
  }
  fprintf(f, "  %-26sthis text\n", "-h, --help");
}

/* --listen through the one URI parser (common/uri.c): grpc://, grpc+tcp:// or none; a grpc+tls
 * address is refused (TLS is --tls-cert and --tls-key), rather than serving plaintext on it.
 * The target lives as long as the process (serve parses once). */
static int listen_target(const struct wg_cli_command *cmd, const char *v, const char **out) {
  static struct wg_uri uri;
  struct wg_error err = {""};
  if (wg_uri_parse(v, &uri, &err) != 0)
    return wg_cli_usage_error(cmd, "--listen: %s", err.message);
  if (uri.tls)
    return wg_cli_usage_error(cmd, "--listen %s: listen on HOST:PORT and give --tls-cert and "
                              "--tls-key for TLS", v);
  *out = uri.target;
  return -1;
}

/* "64MB", "512KB", "1GB", "1.5GB" (powers of 1024) or plain bytes. */
static int parse_size(const char *s, int64_t *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || v < 0) return -1;
  while (*end == ' ')
    end++;
  double mul = 1;
  if (strcasecmp(end, "KB") == 0 || strcasecmp(end, "KiB") == 0 || strcasecmp(end, "K") == 0)
    mul = 1024.0;
  else if (strcasecmp(end, "MB") == 0 || strcasecmp(end, "MiB") == 0 || strcasecmp(end, "M") == 0)
    mul = 1024.0 * 1024;
  else if (strcasecmp(end, "GB") == 0 || strcasecmp(end, "GiB") == 0 || strcasecmp(end, "G") == 0)
    mul = 1024.0 * 1024 * 1024;
  else if (*end != '\0' && strcasecmp(end, "B") != 0)
    return -1;
  if (v * mul > 9e18) return -1;
  *out = (int64_t)(v * mul);
  return 0;
}

static const struct wg_cli_command serve_cmd = {"serve", usage};

/* Fills o from argv, starting from the server's defaults. -1 to go on, else the exit code
 * (0 after --help, WG_EXIT_USAGE after printing what is wrong). */
static int parse_flags(int argc, char **argv, struct wg_server_options *o) {
  wg_server_options_default(o);
  const char *values[N_FLAGS] = {0};
  bool set[N_FLAGS] = {0};
  struct wg_cli_opt opts[N_FLAGS + 1];
  memset(opts, 0, sizeof(opts));
  for (size_t i = 0; i < N_FLAGS; i++) {
    opts[i].name = flags[i].name;
    if (flags[i].kind == FLAG_BOOL)
      opts[i].flag = &set[i];
    else
      opts[i].value = &values[i];
  }
  int n_pos = 0;
  int rc = wg_cli_parse(&serve_cmd, argc, argv, opts, NULL, 0, &n_pos);
  if (rc != -1) return rc;
  for (size_t i = 0; i < N_FLAGS; i++) {
    const struct serve_flag *f = &flags[i];
    const char *v = values[i];
    char *field = (char *)o + f->offset;
    if (f->kind == FLAG_BOOL) {
      if (set[i]) memcpy(field, &(bool){true}, sizeof(bool));
      continue;
    }
    if (v == NULL) continue;
    int64_t n = 0;
    if (f->kind == FLAG_TEXT || f->kind == FLAG_LISTEN) {
      const char *t = v;
      if (f->kind == FLAG_LISTEN && (rc = listen_target(&serve_cmd, v, &t)) != -1) return rc;
      memcpy(field, &t, sizeof(t));
      continue;
    }
    if (f->kind == FLAG_SIZE) {
      if (parse_size(v, &n) != 0)
        return wg_cli_usage_error(&serve_cmd, "%s wants a size such as 64MB or 0, not '%s'",
                                  f->name, v);
    } else {
      rc = wg_cli_opt_int(&serve_cmd, f->name, v, f->min, f->max, &n);
      if (rc != -1) return rc;
      n *= f->scale; /* max * scale fits: the table's bounds say so */
    }
    set_int(o, f, n == 0 && f->zero_off ? -1 : n);
  }
  return -1;
}

int wg_cli_serve(int argc, char **argv) {
  struct wg_server_options o;
  int rc = parse_flags(argc, argv, &o);
  if (rc != -1) return rc;
  if ((o.tls_cert_file == NULL) != (o.tls_key_file == NULL))
    return wg_cli_usage_error(&serve_cmd, "--tls-cert and --tls-key go together");
  if (o.tls_client_ca_file != NULL && o.tls_cert_file == NULL)
    return wg_cli_usage_error(&serve_cmd, "--tls-client-ca needs --tls-cert and --tls-key");

  /* Every connection is a file descriptor: the default soft limit of 1024 runs out long before
   * memory does. Raise it to the hard limit, and cap connections below it. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != rl.rlim_max) {
    rlim_t want = rl.rlim_max;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && want > ((rlim_t)1 << 20)) {
      rl.rlim_cur = (rlim_t)1 << 20; /* "unlimited" hard limits are refused above nr_open */
      setrlimit(RLIMIT_NOFILE, &rl);
    }
  }
  int max_fd_conns = wg_rpc_default_max_connections();
  if (o.max_connections > max_fd_conns && getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
      rl.rlim_cur != RLIM_INFINITY && (rlim_t)o.max_connections + 128 > rl.rlim_cur)
    fprintf(stderr,
            "wigeon serve: warning: --max-connections %d with an open-file limit of %llu: "
            "connections beyond about %d are refused when descriptors run out\n",
            o.max_connections, (unsigned long long)rl.rlim_cur, max_fd_conns);

  /* Block the signals before any thread starts, so every thread inherits the mask. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  struct wg_server *server;
  struct wg_error err = {""};
  int port = 0;
  if (wg_server_start(&server, &o, &port, &err) != 0) {
    fprintf(stderr, "wigeon serve: %s\n", err.message);
    return WG_EXIT_SERVER;
  }
  /* The host part as given, with the port actually bound. */
  char host[256];
  const char *colon = strrchr(o.listen, ':');
  size_t hl = colon ? (size_t)(colon - o.listen) : strlen(o.listen);
  if (hl >= sizeof(host)) hl = sizeof(host) - 1;
  memcpy(host, o.listen, hl);
  host[hl] = '\0';
  printf("listening on %s://%s:%d\n", o.tls_cert_file != NULL ? "grpc+tls" : "grpc", host, port);
  fflush(stdout);

  int sig = 0;
  for (;;) {
    if (sigwait(&set, &sig) != 0) continue;
    if (sig != SIGHUP) break;
    if (wg_server_reload(server, &err) != 0)
      fprintf(stderr, "wigeon serve: SIGHUP: reload failed, the old settings stay: %s\n",
              err.message);
    else
      fprintf(stderr, "wigeon serve: SIGHUP: reloaded\n");
  }
  fprintf(stderr, "wigeon serve: %s received, stopping (grace %d s)\n",
          sig == SIGINT ? "SIGINT" : "SIGTERM", o.grace_ms / 1000);
  if (wg_server_stop(server, &err) != 0) {
    fprintf(stderr, "wigeon serve: %s\n", err.message);
    return WG_EXIT_SERVER;
  }
  fprintf(stderr, "wigeon serve: stopped\n");
  return 0;
}
