/* wigeon: `wigeon serve`: runs the Flight server until SIGINT or SIGTERM, then stops accepting
 * calls, lets in-flight calls finish within the grace period, checkpoints and exits 0. The
 * signals are blocked in every thread and taken synchronously with sigwait, so no handler runs. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "rpc/rpc.h"
#include "server/server.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: wigeon serve [options]\n"
          "\n"
          "Serves a DuckDB database over Arrow Flight until SIGINT or SIGTERM.\n"
          "\n"
          "options:\n"
          "  --db PATH                 database file, or :memory: (default: wigeon.duckdb)\n"
          "  --listen URI              grpc://HOST:PORT or HOST:PORT (default: "
          "grpc://127.0.0.1:8815)\n"
          "  --threads N               DuckDB connections, and worker threads always running;\n"
          "                            more workers start while all are busy (default: 8)\n"
          "  --queue N                 calls that may wait for a DuckDB connection before the\n"
          "                            server answers RESOURCE_EXHAUSTED (default: 64)\n"
          "  --max-connections N       client connections open at once; more are refused at\n"
          "                            once (default: the open-file limit less 128, at most\n"
          "                            4096; the soft limit is raised to the hard one at start)\n"
          "  --batch-rows N            target rows per record batch sent by DoGet (default: "
          "65536)\n"
          "  --batch-bytes N           and bytes at most per batch: wide rows make shorter\n"
          "                            batches, a row bigger than N goes alone; 1024 to\n"
          "                            134217728 (default: 67108864, 64 MiB)\n"
          "  --grace SECONDS           time in-flight calls get on shutdown (default: 10)\n"
          "  --idle-timeout SECONDS    cancel a call whose client neither sends nor reads for\n"
          "                            this long; 0 = never (default: 60)\n"
          "  --group-commit-mb MB      puts up to this size are committed together with other\n"
          "                            puts (one fsync per group); 0 = off (default: 8)\n"
          "  --committers N            group committer threads, each with its own connection;\n"
          "                            more than one helps only with cores to spare (default: 1)\n"
          "  --checkpoint-threshold SIZE  WAL size that triggers a checkpoint (default: 256MB)\n"
          "  --disk-reserve SIZE       writes are refused (RESOURCE_EXHAUSTED) unless the\n"
          "                            database's file system keeps room for the write, for the\n"
          "                            checkpoint of the WAL, and SIZE more; 0 = no check\n"
          "                            (default: 64MB)\n"
          "  --idempotency-window HOURS  how long a put's idempotency key is remembered, so that\n"
          "                            a retry with the same key appends nothing; 0 = forever\n"
          "                            (default: 24)\n"
          "  --memory-limit SIZE       DuckDB memory_limit, e.g. 4GB (default: DuckDB's, 80%% of "
          "RAM)\n"
          "  --duckdb-threads N        DuckDB's threads for one query (default: one per core);\n"
          "                            1 trades big queries' parallelism for steadier latency\n"
          "                            of small ones (docs/performance.md)\n"
          "  --max-sql-bytes N         longest SQL text a call may send; longer is refused with\n"
          "                            RESOURCE_EXHAUSTED before it is parsed (default: 1048576)\n"
          "  --max-columns N           columns a put's schema may have, each nested field\n"
          "                            counting as one; more is refused with RESOURCE_EXHAUSTED\n"
          "                            before any work (default: 10000)\n"
          "  --allow-external-access   let remote SQL read and write the server's files, attach\n"
          "                            databases, load extensions, change settings, enable\n"
          "                            logging and see the server's paths (default: refused;\n"
          "                            docs/server.md, \"Remote SQL sandbox\")\n"
          "  -h, --help                this text\n");
}

/* Splits grpc://host:port (or host:port) into the "host:port" gRPC wants. */
static const char *strip_scheme(const char *uri) {
  const char *schemes[] = {"grpc://", "grpc+tcp://"};
  for (size_t i = 0; i < 2; i++)
    if (strncmp(uri, schemes[i], strlen(schemes[i])) == 0) return uri + strlen(schemes[i]);
  return uri;
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

int wg_cli_serve(int argc, char **argv) {
  struct wg_server_options o = {0};
  o.grace_ms = 10000;
  const char *listen = "grpc://127.0.0.1:8815";
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--allow-external-access") == 0) {
      o.allow_external_access = true;
      continue;
    }
    if (v == NULL) {
      fprintf(stderr, "wigeon serve: %s needs a value\n", a);
      return WG_EXIT_USAGE;
    }
    i++;
    int64_t n = 0;
    if (strcmp(a, "--db") == 0) {
      o.db_path = v;
    } else if (strcmp(a, "--listen") == 0) {
      listen = v;
    } else if (strcmp(a, "--memory-limit") == 0) {
      o.memory_limit = v;
    } else if (strcmp(a, "--max-sql-bytes") == 0) {
      if (wg_cli_parse_int(v, &n) != 0 || n < 1) {
        fprintf(stderr, "wigeon serve: --max-sql-bytes wants a positive number, not '%s'\n", v);
        return WG_EXIT_USAGE;
      }
      o.max_sql_bytes = n;
    } else if (strcmp(a, "--batch-bytes") == 0) {
      /* at most half of gRPC's 256 MiB message limit: the size is an estimate before encoding */
      if (wg_cli_parse_int(v, &n) != 0 || n < 1024 || n > WG_RPC_DEFAULT_MAX_MESSAGE_BYTES / 2) {
        fprintf(stderr, "wigeon serve: --batch-bytes wants 1024 to %lld, not '%s'\n",
                (long long)(WG_RPC_DEFAULT_MAX_MESSAGE_BYTES / 2), v);
        return WG_EXIT_USAGE;
      }
      o.batch_bytes = n;
    } else if (strcmp(a, "--checkpoint-threshold") == 0) {
      o.checkpoint_threshold = v;
    } else if (strcmp(a, "--disk-reserve") == 0) {
      if (parse_size(v, &n) != 0) {
        fprintf(stderr, "wigeon serve: --disk-reserve wants a size such as 64MB or 0, not '%s'\n",
                v);
        return WG_EXIT_USAGE;
      }
      o.disk_reserve = n == 0 ? -1 : n;
    } else if (strcmp(a, "--threads") == 0 || strcmp(a, "--queue") == 0 ||
               strcmp(a, "--batch-rows") == 0 || strcmp(a, "--grace") == 0 ||
               strcmp(a, "--idle-timeout") == 0 || strcmp(a, "--group-commit-mb") == 0 ||
               strcmp(a, "--committers") == 0 || strcmp(a, "--duckdb-threads") == 0 ||
               strcmp(a, "--idempotency-window") == 0 || strcmp(a, "--max-connections") == 0 ||
               strcmp(a, "--max-columns") == 0) {
      bool zero_ok = strcmp(a, "--grace") == 0 || strcmp(a, "--idle-timeout") == 0 ||
                     strcmp(a, "--group-commit-mb") == 0 || strcmp(a, "--idempotency-window") == 0;
      if (wg_cli_parse_int(v, &n) != 0 || n < (zero_ok ? 0 : 1) || n > 100000000) {
        fprintf(stderr, "wigeon serve: %s wants a positive number, not '%s'\n", a, v);
        return WG_EXIT_USAGE;
      }
      if (strcmp(a, "--threads") == 0)
        o.threads = (int)n;
      else if (strcmp(a, "--queue") == 0)
        o.queue_limit = (int)n;
      else if (strcmp(a, "--batch-rows") == 0)
        o.batch_rows = n;
      else if (strcmp(a, "--grace") == 0)
        o.grace_ms = (int)(n * 1000);
      else if (strcmp(a, "--idle-timeout") == 0)
        o.idle_timeout_ms = n == 0 ? -1 : n * 1000;
      else if (strcmp(a, "--committers") == 0)
        o.committers = (int)n;
      else if (strcmp(a, "--duckdb-threads") == 0)
        o.duckdb_threads = (int)n;
      else if (strcmp(a, "--idempotency-window") == 0)
        o.idempotency_window_s = n == 0 ? -1 : n * 3600;
      else if (strcmp(a, "--max-connections") == 0)
        o.max_connections = (int)n;
      else if (strcmp(a, "--max-columns") == 0)
        o.max_columns = n;
      else
        o.group_commit_bytes = n == 0 ? -1 : n << 20;
    } else {
      fprintf(stderr, "wigeon serve: unknown option '%s' (see wigeon serve --help)\n", a);
      return WG_EXIT_USAGE;
    }
  }
  o.listen = strip_scheme(listen);

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
  printf("listening on grpc://%s:%d\n", host, port);
  fflush(stdout);

  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
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
