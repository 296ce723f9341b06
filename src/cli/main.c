/* wigeon: the `wigeon` command: dispatches to its subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <duckdb.h>

#include "cli/cli.h"
#include "common/version.h"

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *what;
} commands[] = {
    {"serve", wg_cli_serve, "run the server"},
    {"query", wg_cli_query, "run SQL and print the result (table, csv, json, arrow, parquet)"},
    {"put", wg_cli_put, "append CSV, Parquet, JSON or Arrow files to a table"},
    {"load", wg_cli_load, "load random batches with parallel writers (load testing)"},
    {"watch", wg_cli_watch, "re-run a query every interval and show the result"},
    {"tail", wg_cli_tail, "follow a table live: print the rows of every put as it commits"},
    {"demo", wg_cli_demo, "a server, two writers and a reader counting, in one command"},
    {"tables", wg_cli_tables, "list the tables with their row counts"},
    {"schema", wg_cli_schema, "show a table's columns with Arrow and SQL types"},
    {"actions", wg_cli_actions, "list the server's actions"},
    {"stats", wg_cli_stats, "show the server's counters"},
    {"passwd", wg_cli_passwd, "add, change or remove a user of a users file (serve --users)"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: wigeon <command> [options]\n\n"
             "A DuckDB database served over Arrow Flight.\n\n"
             "commands:\n");
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    fprintf(f, "  %-9s  %s\n", commands[i].name, commands[i].what);
  fprintf(f, "  %-9s  %s\n", "version", "print the wigeon and DuckDB versions");
  fprintf(f, "  %-9s  %s\n", "help",
          "this text; `wigeon help COMMAND` or `wigeon COMMAND --help`"
          " for a command's options");
  fprintf(f,
          "\nClient commands talk to --server URI (default: $WIGEON_SERVER, else %s);\n"
          "--user NAME logs in (password from $WIGEON_PASSWORD, else asked), --token TOKEN\n"
          "uses a bearer token.\n"
          "exit codes: 0 ok, 1 usage error, 2 error from the server, 3 cannot connect\n",
          WG_CLI_DEFAULT_SERVER);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return WG_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    if (argc > 2) {
      for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[2], commands[i].name) != 0) continue;
        char help[] = "--help";
        char *args[] = {help, NULL};
        return commands[i].run(1, args);
      }
      fprintf(stderr, "wigeon: unknown command '%s'\n", argv[2]);
      usage(stderr);
      return WG_EXIT_USAGE;
    }
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
    printf("wigeon %s (DuckDB %s)\n", wg_version(), duckdb_library_version());
    return 0;
  }
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if (strcmp(cmd, commands[i].name) == 0) return commands[i].run(argc - 2, argv + 2);
  fprintf(stderr, "wigeon: unknown command '%s'\n", cmd);
  usage(stderr);
  return WG_EXIT_USAGE;
}
