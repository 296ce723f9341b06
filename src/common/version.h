/* wigeon: version of this build (one place: the library, the command and CMake read it here). */
#ifndef WG_COMMON_VERSION_H
#define WG_COMMON_VERSION_H

#define WG_VERSION_STRING "0.1.0"

const char *wg_version(void);

#endif
