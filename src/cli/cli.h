/* wigeon: the subcommands of the `wigeon` command and what they share. */
#ifndef WG_CLI_CLI_H
#define WG_CLI_CLI_H

#include <pthread.h>
#include <stdint.h>

/* Exit codes: 0 ok, 1 usage error, 2 error from the server, 3 cannot connect. */
#define WG_EXIT_USAGE 1
#define WG_EXIT_SERVER 2
#define WG_EXIT_CONNECT 3

/* Parses a whole decimal integer; 0 or EINVAL. */
int wg_cli_parse_int(const char *s, int64_t *out);

/* Subcommands: argv holds the arguments after the subcommand's name. */
int wg_cli_serve(int argc, char **argv);

#endif
