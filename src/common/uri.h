/* wigeon: the one parser of server URIs (client connect, the CLI's --server, the server's
 * --listen): grpc://HOST:PORT, grpc+tcp://HOST:PORT, grpc+tls://HOST:PORT or HOST:PORT, HOST a
 * name, an IPv4 address or an IPv6 address in brackets. Pure string work: no allocation, no I/O,
 * no name resolution. */
#ifndef WG_COMMON_URI_H
#define WG_COMMON_URI_H

#include <stdbool.h>

#include "common/error.h"

struct wg_uri {
  bool tls;         /* grpc+tls:// */
  char host[256];   /* without brackets: "127.0.0.1", "::1", "db.example" */
  int port;         /* 0..65535 */
  char target[272]; /* what gRPC wants: "host:port", or "[v6]:port" */
};

/* Parses uri into *out. Returns 0, or EINVAL with a message naming the URI and what is wrong
 * (no scheme or port, unknown scheme, empty host, bad or out-of-range port, unclosed bracket,
 * anything after the port). *out is zeroed on error. */
int wg_uri_parse(const char *uri, struct wg_uri *out, struct wg_error *err);

#endif
