/* wigeon: a tiny in-house test harness (after libuv's task.h). Each test executable defines test
 * functions, lists them in main with RUN_TEST, and ends with TEST_SUMMARY(), which prints
 * "N passed, M failed" and returns non-zero on failure. Assertions print file:line and both
 * values, then return from the current test function (the fixtures it started are released then,
 * see wg_test_fixtures_end). */
#ifndef WG_TEST_H
#define WG_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int wg_test_passed, wg_test_failed, wg_test_current_failed;

#define TEST_FAIL_(...)                                                                            \
  do {                                                                                             \
    fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                              \
    fprintf(stderr, __VA_ARGS__);                                                                  \
    fprintf(stderr, "\n");                                                                         \
    wg_test_current_failed = 1;                                                                    \
  } while (0)

#define ASSERT_TRUE(c)                                                                             \
  do {                                                                                             \
    if (!(c)) {                                                                                    \
      TEST_FAIL_("expected true: %s", #c);                                                         \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

#define ASSERT_EQ(a, b)                                                                            \
  do {                                                                                             \
    long long wg_a_ = (long long)(a), wg_b_ = (long long)(b);                                      \
    if (wg_a_ != wg_b_) {                                                                          \
      TEST_FAIL_("%s == %s: %lld != %lld", #a, #b, wg_a_, wg_b_);                                  \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

#define ASSERT_NE(a, b)                                                                            \
  do {                                                                                             \
    long long wg_a_ = (long long)(a), wg_b_ = (long long)(b);                                      \
    if (wg_a_ == wg_b_) {                                                                          \
      TEST_FAIL_("%s != %s: both %lld", #a, #b, wg_a_);                                            \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

#define ASSERT_STREQ(a, b)                                                                         \
  do {                                                                                             \
    const char *wg_a_ = (a), *wg_b_ = (b);                                                         \
    if (wg_a_ == NULL || wg_b_ == NULL || strcmp(wg_a_, wg_b_) != 0) {                             \
      TEST_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, wg_a_ ? wg_a_ : "(null)",                   \
                 wg_b_ ? wg_b_ : "(null)");                                                        \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

struct wg_error;
static inline const char *wg_test_message(const void *err) {
  return err != NULL ? (const char *)err : ""; /* struct wg_error starts with its message */
}

/* Asserts a wigeon status is 0, printing the error message otherwise. */
#define ASSERT_OK(expr, errp)                                                                      \
  do {                                                                                             \
    int wg_rc_ = (expr);                                                                           \
    if (wg_rc_ != 0) {                                                                             \
      TEST_FAIL_("%s failed: %d (%s)", #expr, wg_rc_, wg_test_message(errp));                      \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

/* Fixtures that live beyond a test (tests/support/server_fixture.c: servers, server processes)
 * register themselves; a test that fails (returns from an ASSERT before its cleanup) has those it
 * started released when it ends. Weak: tests without the fixture library do without. */
void wg_test_fixtures_begin(void) __attribute__((weak));
void wg_test_fixtures_end(int failed) __attribute__((weak));

#define RUN_TEST(fn)                                                                               \
  do {                                                                                             \
    wg_test_current_failed = 0;                                                                    \
    if (wg_test_fixtures_begin) wg_test_fixtures_begin();                                          \
    fn();                                                                                          \
    if (wg_test_fixtures_end) wg_test_fixtures_end(wg_test_current_failed);                        \
    if (wg_test_current_failed) {                                                                  \
      wg_test_failed++;                                                                            \
      fprintf(stderr, "FAIL %s\n", #fn);                                                           \
    } else {                                                                                       \
      wg_test_passed++;                                                                            \
      fprintf(stderr, "ok   %s\n", #fn);                                                           \
    }                                                                                              \
  } while (0)

/* For table-driven tests that report each case themselves. */
#define TEST_RECORD(ok, ...)                                                                       \
  do {                                                                                             \
    if (ok) {                                                                                      \
      wg_test_passed++;                                                                            \
    } else {                                                                                       \
      wg_test_failed++;                                                                            \
      fprintf(stderr, "FAIL ");                                                                    \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, "\n");                                                                       \
    }                                                                                              \
  } while (0)

#define TEST_SUMMARY()                                                                             \
  (printf("%d passed, %d failed\n", wg_test_passed, wg_test_failed), wg_test_failed != 0)

/* Path of a file under ../shared (WG_SHARED_DIR from ctest). */
static inline const char *wg_test_shared_dir(void) {
  const char *d = getenv("WG_SHARED_DIR");
  return d ? d : "../shared";
}

#endif
