/* wigeon: the `wigeon` command. Subcommands arrive with their issues; for now the command reports
 * its version and the DuckDB it links. */
#include <stdio.h>
#include <string.h>

#include <duckdb.h>

#include "cli/version.h"

static void usage(FILE *f) {
  fprintf(f, "usage: wigeon <command> [options]\n\n"
             "commands:\n"
             "  version    print the wigeon and DuckDB versions\n"
             "  help       this text\n");
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 1 : 0;
  }
  if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
    printf("wigeon %s (DuckDB %s)\n", wg_version(), duckdb_library_version());
    return 0;
  }
  fprintf(stderr, "wigeon: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 1;
}
