/* wigeon: version of this build. */
#ifndef WG_CLI_VERSION_H
#define WG_CLI_VERSION_H

#define WG_VERSION_STRING "0.1.0"

const char *wg_version(void);

#endif
