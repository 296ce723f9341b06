/* wigeon: UTF-8 and NUL checks for names from the wire (see text.h). */
#include "common/text.h"

#include <stdio.h>
#include <string.h>

bool wg_utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false; /* a continuation byte first, or 0xF8.. */
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

bool wg_text_name_ok(const uint8_t *data, size_t size, const char **why) {
  const char *w = NULL;
  if (size > 0 && memchr(data, 0, size) != NULL)
    w = "contains a NUL byte";
  else if (!wg_utf8_valid(data, size))
    w = "is not valid UTF-8";
  if (why != NULL) *why = w;
  return w == NULL;
}

const char *wg_text_shown(const char *name, char *buf, size_t cap) {
  size_t o = 0, room = cap - 4; /* keeps "..." and the NUL */
  const unsigned char *p = (const unsigned char *)(name ? name : "");
  for (; *p != '\0'; p++) {
    bool control = *p < 0x20 || *p == 0x7F;
    size_t need = control ? 6 : 1;
    if (!control && *p >= 0xC0) { /* a whole character or nothing */
      need = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2;
      if (strnlen((const char *)p, need) < need) need = 1;
    }
    if (o + need > room) {
      memcpy(buf + o, "...", 4);
      return buf;
    }
    if (control) {
      snprintf(buf + o, 7, "\\u%04x", *p);
    } else {
      memcpy(buf + o, p, need);
      p += need - 1;
    }
    o += need;
  }
  buf[o] = '\0';
  return buf;
}
