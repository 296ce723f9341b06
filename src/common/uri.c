/* wigeon: server URIs (see uri.h). The forms are few and fixed, so this is a hand-written scan;
 * every length is bounded by the fixed-size fields of struct wg_uri. */
#include "common/uri.h"

#include <stdio.h>
#include <string.h>

static const char expected[] = "expected grpc://HOST:PORT, grpc+tcp://HOST:PORT, "
                               "grpc+tls://HOST:PORT or HOST:PORT";

static int bad(struct wg_uri *out, struct wg_error *err, const char *uri, const char *why) {
  memset(out, 0, sizeof(*out));
  return wg_error_set(err, EINVAL, "bad server URI \"%.200s\": %s; %s", uri, why, expected);
}

/* The part after a known scheme; NULL for an unknown one. No "://" at all: the whole string. */
static const char *after_scheme(const char *uri, bool *tls) {
  static const char *const plain[] = {"grpc://", "grpc+tcp://"};
  *tls = false;
  for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
    if (strncmp(uri, plain[i], strlen(plain[i])) == 0) return uri + strlen(plain[i]);
  if (strncmp(uri, "grpc+tls://", 11) == 0) {
    *tls = true;
    return uri + 11;
  }
  return strstr(uri, "://") == NULL ? uri : NULL;
}

int wg_uri_parse(const char *uri, struct wg_uri *out, struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  if (uri == NULL || uri[0] == '\0') return wg_error_set(err, EINVAL, "no server URI");
  const char *p = after_scheme(uri, &out->tls);
  if (p == NULL) return bad(out, err, uri, "unknown scheme");
  const char *host = p, *host_end, *colon;
  bool v6 = p[0] == '[';
  if (v6) {
    host = p + 1;
    host_end = strchr(host, ']');
    if (host_end == NULL) return bad(out, err, uri, "'[' without ']'");
    colon = host_end + 1;
    if (*colon != ':') return bad(out, err, uri, "no :PORT after the IPv6 address");
  } else {
    colon = strrchr(p, ':');
    if (colon == NULL) return bad(out, err, uri, "no :PORT");
    host_end = colon;
  }
  size_t host_len = (size_t)(host_end - host);
  if (host_len == 0) return bad(out, err, uri, "no host");
  if (host_len >= sizeof(out->host)) return bad(out, err, uri, "host name too long");
  for (size_t i = 0; i < host_len; i++)
    if (host[i] == '/' || host[i] == '@' || host[i] == '[' || host[i] == ']' ||
        (unsigned char)host[i] < 0x21 || (unsigned char)host[i] == 0x7f)
      return bad(out, err, uri, "the host has a character a host name cannot have");
  if (!v6 && memchr(host, ':', host_len) != NULL)
    return bad(out, err, uri, "an IPv6 address needs brackets, as in [::1]:8815");
  const char *d = colon + 1;
  if (*d == '\0') return bad(out, err, uri, "no port after ':'");
  long port = 0;
  for (; *d >= '0' && *d <= '9'; d++) {
    port = port * 10 + (*d - '0');
    if (port > 65535) return bad(out, err, uri, "port above 65535");
  }
  if (*d != '\0')
    return bad(out, err, uri, d == colon + 1 ? "the port is not a number" : "text after the port");
  memcpy(out->host, host, host_len);
  out->host[host_len] = '\0';
  out->port = (int)port;
  snprintf(out->target, sizeof(out->target), v6 ? "[%s]:%d" : "%s:%d", out->host, out->port);
  return 0;
}
