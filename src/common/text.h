/* wigeon: checks on text that arrives from the wire before it becomes a C string or a name:
 * UTF-8 validity (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF) and the
 * absence of NUL, which C strings would silently cut at. No dependencies. */
#ifndef WG_COMMON_TEXT_H
#define WG_COMMON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether data[0..size) is valid UTF-8 (NUL bytes are valid UTF-8; see wg_text_name_ok). */
bool wg_utf8_valid(const uint8_t *data, size_t size);

/* Whether data[0..size) may be a name: valid UTF-8 without NUL. On false, *why (may be NULL)
 * points at a static phrase ("contains a NUL byte", "is not valid UTF-8"). */
bool wg_text_name_ok(const uint8_t *data, size_t size, const char **why);

/* A name from the wire as it may be shown in a message: control characters (U+0000-U+001F,
 * U+007F) written as \u00XX, so that no ESC, CR or LF reaches a client's terminal or a log as
 * itself, and cut on a character boundary with "..." when longer than fits buf (cap bytes, at
 * least 8; WG_TEXT_SHOWN is the usual size), so that what the message says after the name is
 * kept. Returns buf. NULL shows as "". */
#define WG_TEXT_SHOWN 100
const char *wg_text_shown(const char *name, char *buf, size_t cap);

#endif
