/* wigeon: text checks and the showing of wire names in messages (src/common/text.c). Pure string
 * work: no server. The messages that use wg_text_shown are tested through a real server in
 * tests/interop/python/test_hostile_clients.py. */
#include "common/text.h"

#include <string.h>

#include "test.h"

static void control_characters_are_escaped(void) {
  char buf[WG_TEXT_SHOWN];
  ASSERT_STREQ(wg_text_shown("c\x1b[31m\r\nFAKE\x7f", buf, sizeof(buf)),
               "c\\u001b[31m\\u000d\\u000aFAKE\\u007f");
  ASSERT_STREQ(wg_text_shown("plain name", buf, sizeof(buf)), "plain name");
  ASSERT_STREQ(wg_text_shown("caf\xc3\xa9", buf, sizeof(buf)), "caf\xc3\xa9");
  ASSERT_STREQ(wg_text_shown(NULL, buf, sizeof(buf)), "");
}

static void long_names_are_cut_on_a_character_boundary(void) {
  char buf[16];
  ASSERT_STREQ(wg_text_shown("abcdefghijklmnopqrstuvwxyz", buf, sizeof(buf)), "abcdefghijkl...");
  /* 2-byte characters: 12 bytes of room hold 6 of them, never half of one */
  ASSERT_STREQ(wg_text_shown("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", buf,
                             sizeof(buf)),
               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9...");
  ASSERT_STREQ(wg_text_shown("x\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", buf,
                             sizeof(buf)),
               "x\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9...");
  /* an escape is whole or not there */
  ASSERT_STREQ(wg_text_shown("abcdefgh\x01zzzz", buf, sizeof(buf)), "abcdefgh...");
  ASSERT_TRUE(wg_utf8_valid((const uint8_t *)buf, strlen(buf)));
}

int main(void) {
  RUN_TEST(control_characters_are_escaped);
  RUN_TEST(long_names_are_cut_on_a_character_boundary);
  return TEST_SUMMARY();
}
