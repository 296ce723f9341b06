/* wigeon: version string shared by the library and the command. */
#include "common/version.h"

const char *wg_version(void) {
  return WG_VERSION_STRING;
}
