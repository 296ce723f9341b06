/* wigeon: the `wigeon` command: dispatches to its subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <duckdb.h>

#include "cli/cli.h"
#include "cli/version.h"

static void usage(FILE *f) {
  fprintf(f, "usage: wigeon <command> [options]\n\n"
             "A DuckDB database served over Arrow Flight.\n\n"
             "commands:\n"
             "  serve      run the server (wigeon serve --help)\n"
             "  version    print the wigeon and DuckDB versions\n"
             "  help       this text\n");
}

int wg_cli_parse_int(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') return EINVAL;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return WG_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
    printf("wigeon %s (DuckDB %s)\n", wg_version(), duckdb_library_version());
    return 0;
  }
  if (strcmp(cmd, "serve") == 0) return wg_cli_serve(argc - 2, argv + 2);
  fprintf(stderr, "wigeon: unknown command '%s'\n", cmd);
  usage(stderr);
  return WG_EXIT_USAGE;
}
