/* wigeon: the one server URI parser (src/common/uri.c), every accepted form and the bad ones.
 * Pure string work: no server. wg_connect's use of it is in test_libwigeon.c. */
#include "common/uri.h"

#include <string.h>

#include "test.h"

struct good {
  const char *uri, *host, *target;
  int port;
  bool tls;
};

static void every_accepted_form_parses(void) {
  static const struct good cases[] = {
      {"grpc://127.0.0.1:8815", "127.0.0.1", "127.0.0.1:8815", 8815, false},
      {"grpc+tcp://127.0.0.1:8815", "127.0.0.1", "127.0.0.1:8815", 8815, false},
      {"127.0.0.1:8815", "127.0.0.1", "127.0.0.1:8815", 8815, false},
      {"grpc://localhost:1", "localhost", "localhost:1", 1, false},
      {"db.example.org:65535", "db.example.org", "db.example.org:65535", 65535, false},
      {"grpc://[::1]:8815", "::1", "[::1]:8815", 8815, false},
      {"grpc+tcp://[fe80::1:2]:9", "fe80::1:2", "[fe80::1:2]:9", 9, false},
      {"[::1]:0", "::1", "[::1]:0", 0, false},
      {"grpc+tls://db.example.org:443", "db.example.org", "db.example.org:443", 443, true},
      {"grpc+tls://[::1]:8815", "::1", "[::1]:8815", 8815, true},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct wg_uri u;
    struct wg_error err = {""};
    int rc = wg_uri_parse(cases[i].uri, &u, &err);
    TEST_RECORD(rc == 0 && strcmp(u.host, cases[i].host) == 0 &&
                    strcmp(u.target, cases[i].target) == 0 && u.port == cases[i].port &&
                    u.tls == cases[i].tls,
                "%s: rc %d host \"%s\" target \"%s\" port %d tls %d (%s)", cases[i].uri, rc,
                u.host, u.target, u.port, u.tls, err.message);
  }
}

struct bad {
  const char *uri, *why; /* why: a part of the message */
};

static void bad_forms_are_einval_with_a_reason(void) {
  static const struct bad cases[] = {
      {"", "no server URI"},
      {"http://127.0.0.1:8815", "unknown scheme"},
      {"grpc:/127.0.0.1:8815", "cannot have"}, /* one slash: no scheme, a host with '/' */
      {"unix:///tmp/wigeon.sock", "unknown scheme"},
      {"grpc://127.0.0.1", "no :PORT"},
      {"127.0.0.1", "no :PORT"},
      {"grpc://:8815", "no host"},
      {"grpc://127.0.0.1:", "no port after"},
      {"grpc://127.0.0.1:http", "not a number"},
      {"grpc://127.0.0.1:-1", "not a number"},
      {"grpc://127.0.0.1:65536", "above 65535"},
      {"grpc://127.0.0.1:99999999999999999999", "above 65535"},
      {"grpc://127.0.0.1:8815/db", "text after the port"},
      {"grpc://127.0.0.1:88 15", "text after the port"},
      {"grpc://[::1:8815", "without ']'"},
      {"grpc://[::1]", "no :PORT after the IPv6"},
      {"grpc://[]:8815", "no host"},
      {"grpc://::1:8815", "needs brackets"},
      {"grpc://user@host:8815", "cannot have"},
      {"grpc://a/b:8815", "cannot have"},
      {"grpc+tls://", "no :PORT"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct wg_uri u;
    memset(&u, 0x5a, sizeof(u));
    struct wg_error err = {""};
    int rc = wg_uri_parse(cases[i].uri, &u, &err);
    TEST_RECORD(rc == EINVAL && strstr(err.message, cases[i].why) != NULL && u.host[0] == '\0' &&
                    u.port == 0,
                "\"%s\": rc %d, message \"%s\" (wanted \"%s\")", cases[i].uri, rc, err.message,
                cases[i].why);
  }
  struct wg_uri u;
  struct wg_error err = {""};
  ASSERT_EQ(wg_uri_parse(NULL, &u, &err), EINVAL);
  ASSERT_EQ(wg_uri_parse("grpc://x:1", &u, NULL), 0); /* err may be NULL */
  ASSERT_EQ(wg_uri_parse("grpc://x", &u, NULL), EINVAL);
  /* the message names the URI and the forms expected */
  ASSERT_EQ(wg_uri_parse("grpc://host:port", &u, &err), EINVAL);
  ASSERT_TRUE(strstr(err.message, "\"grpc://host:port\"") != NULL);
  ASSERT_TRUE(strstr(err.message, "grpc+tls://HOST:PORT") != NULL);
}

static void host_longer_than_the_buffer_is_refused(void) {
  char uri[600];
  memset(uri, 'a', sizeof(uri));
  memcpy(uri, "grpc://", 7);
  memcpy(uri + sizeof(uri) - 6, ":8815", 6);
  struct wg_uri u;
  struct wg_error err = {""};
  ASSERT_EQ(wg_uri_parse(uri, &u, &err), EINVAL);
  ASSERT_TRUE(strstr(err.message, "too long") != NULL);
  /* the longest that fits */
  char fits[300];
  memset(fits, 'b', sizeof(fits));
  memcpy(fits + 255, ":1", 3);
  ASSERT_EQ(wg_uri_parse(fits, &u, &err), 0);
  ASSERT_EQ(strlen(u.host), 255);
  ASSERT_EQ(u.port, 1);
}

int main(void) {
  RUN_TEST(every_accepted_form_parses);
  RUN_TEST(bad_forms_are_einval_with_a_reason);
  RUN_TEST(host_longer_than_the_buffer_is_refused);
  return TEST_SUMMARY();
}
