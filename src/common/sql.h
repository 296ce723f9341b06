/* wigeon: the one way SQL text is built from names and values: identifiers in double quotes and
 * literals in single quotes, the quote character doubled inside (the SQL standard's rule, which
 * DuckDB follows; no backslash escapes). Used by the engine and the CLI. Depends on buf only. */
#ifndef WG_COMMON_SQL_H
#define WG_COMMON_SQL_H

#include "common/buf.h"

/* Appends "name" (a '"' inside doubled) / 'value' (a '\'' inside doubled) to b. 0 or ENOMEM
 * (b may then hold part of it). NUL ends the text: names from the wire are checked for NUL
 * before they get here (wg_text_name_ok). */
int wg_sql_append_ident(struct wg_buf *b, const char *name);
int wg_sql_append_literal(struct wg_buf *b, const char *value);

/* The same as malloc'ed NUL-terminated strings (the caller frees them); NULL on ENOMEM. */
char *wg_sql_quote_ident(const char *name);
char *wg_sql_quote_literal(const char *value);

#endif
