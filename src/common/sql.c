/* wigeon: SQL quoting of identifiers and literals (see sql.h). */
#include "common/sql.h"

#include <stdlib.h>
#include <string.h>

static int append_quoted(struct wg_buf *b, const char *s, char q) {
  int rc = wg_buf_append(b, &q, 1);
  for (const char *p = s; *p != '\0' && rc == 0; p++) {
    if (*p == q) rc = wg_buf_append(b, &q, 1);
    if (rc == 0) rc = wg_buf_append(b, p, 1);
  }
  return rc == 0 ? wg_buf_append(b, &q, 1) : rc;
}

int wg_sql_append_ident(struct wg_buf *b, const char *name) {
  return append_quoted(b, name, '"');
}

int wg_sql_append_literal(struct wg_buf *b, const char *value) {
  return append_quoted(b, value, '\'');
}

static char *quote(const char *s, char q) {
  struct wg_buf b;
  wg_buf_init(&b);
  if (append_quoted(&b, s, q) != 0 || wg_buf_append(&b, "", 1) != 0) {
    wg_buf_reset(&b);
    return NULL;
  }
  return (char *)wg_buf_detach(&b);
}

char *wg_sql_quote_ident(const char *name) {
  return quote(name, '"');
}

char *wg_sql_quote_literal(const char *value) {
  return quote(value, '\'');
}
