/* wigeon: `wigeon watch "SQL"`: re-runs a query every interval and shows its result as a table:
 * on a terminal the screen is cleared first (like watch(1)), otherwise each result follows a
 * header line with the time. Stops on Ctrl-C (exit 0) or after --count runs. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: wigeon watch [options] \"SQL\"\n"
          "\n"
          "Runs SQL every interval and shows the result as a table, until Ctrl-C.\n"
          "\n"
          "options:\n"
          "  -n, --interval T    time between runs: 1.5, 2s, 500ms, 1m (default: 1s)\n"
          "  --count N           stop after N runs\n"
          "  --max-rows N        rows shown (default: 20)\n"
          "  --max-width N       characters per value (default: 40)\n"
          "  --ascii             +-| instead of box drawing characters\n"
          "  --server URI        grpc://HOST:PORT (default: $WIGEON_SERVER, else %s)\n"
          WG_CLI_TLS_HELP
          "  -h, --help          this text\n"
          "\n"
          "exit codes: 0 ok (also after Ctrl-C), 1 usage error, 2 error from the server,\n"
          "3 cannot connect\n",
          WG_CLI_DEFAULT_SERVER);
}

int wg_cli_watch(int argc, char **argv) {
  static const struct wg_cli_command cmd = {"watch", usage};
  const char *server = NULL, *interval_s = "1s", *count_s = NULL, *max_rows = "20",
             *max_width = "40";
  bool ascii = false;
  const struct wg_cli_opt opts[] = {{"--server", NULL, &server, NULL},
                                    {"--interval", "-n", &interval_s, NULL},
                                    {"--count", NULL, &count_s, NULL},
                                    WG_CLI_TABLE_OPTS(&max_rows, &max_width, &ascii)};
  const char *pos[1];
  int rc = wg_cli_parse_one(&cmd, argc, argv, opts, pos, "missing the SQL to run");
  if (rc >= 0) return rc;
  double interval = 1;
  int64_t count = 0;
  struct wg_cli_output o = {.format = "table", .ascii = ascii};
  if ((rc = wg_cli_opt_seconds(&cmd, "--interval", interval_s, &interval)) >= 0) return rc;
  if (count_s && (rc = wg_cli_opt_int(&cmd, "--count", count_s, 1, INT64_MAX, &count)) >= 0)
    return rc;
  if ((rc = wg_cli_output_limits(&cmd, max_rows, max_width, &o)) >= 0) return rc;
  if (interval < 0.05) interval = 0.05;

  struct wg_cli_conn cx;
  if ((rc = wg_cli_conn_open(&cx, cmd.name, server)) != 0) return rc;
  wg_cli_catch_interrupt();
  bool tty = isatty(STDOUT_FILENO);
  for (int64_t run = 0; (count == 0 || run < count) && !wg_cli_interrupted(); run++) {
    double start = wg_cli_now();
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    /* Render into memory first, so a terminal shows the new result at once, without flicker. */
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = open_memstream(&text, &text_len);
    if (mem == NULL) {
      rc = WG_EXIT_SERVER;
      break;
    }
    int64_t rows = 0;
    struct wg_error err = {""};
    int status = wg_cli_query_write(cx.client, pos[0], &o, mem, &rows, &err);
    fclose(mem);
    if (status != 0) {
      free(text);
      rc = wg_cli_conn_fail(&cx, status, err.message);
      break;
    }
    if (tty) printf("\033[H\033[2J");
    printf("%s  every %gs: %s\n", when, interval, pos[0]);
    fwrite(text, 1, text_len, stdout);
    if (!tty) printf("\n");
    fflush(stdout);
    free(text);
    if (count != 0 && run + 1 >= count) break;
    while (!wg_cli_interrupted() && wg_cli_now() - start < interval)
      wg_cli_sleep(0.02);
  }
  wg_cli_conn_close(&cx);
  return rc;
}
