/* wigeon: the SQL guard of a sandboxed engine (allow_external_access false): refuses client SQL
 * that would change DuckDB's global state (logging, global pragmas), read what the configuration
 * lock leaves open (the database's own files, its settings and paths) or run SQL built at run time
 * (query(), query_table(), json_execute_serialized_sql, which would hide the rest).
 * DuckDB's C API gives no parse tree, so the text is scanned with a lexer that follows DuckDB's
 * (PostgreSQL's) rules for strings, quoted identifiers, dollar quoting and nested comments: names are
 * compared as DuckDB resolves them (case-insensitively, quoted or not); literals and comments are
 * skipped. After prepare, statement types that reach files (COPY, EXPORT, ATTACH, DETACH) are
 * refused too (wg__engine_statement_refused). */
#include "engine/engine_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Refused wherever they appear as a name: table functions, pragmas, settings. */
static const char *const refused_names[] = {
    /* logging: global, and the log holds every client's SQL */
    "enable_logging", "disable_logging", "truncate_duckdb_logs", "duckdb_logs",
    "duckdb_logs_parsed", "duckdb_log_contexts",
    /* pragmas that set database-wide options past the configuration lock */
    "enable_checkpoint_on_shutdown", "disable_checkpoint_on_shutdown", "enable_object_cache",
    "disable_object_cache", "add_parquet_key",
    /* SQL made at run time */
    "query_table", "json_execute_serialized_sql",
    /* what names the server's files: paths of the database, its WAL, temp and secret directories */
    "duckdb_settings", "database_list", "pragma_database_list", "show_databases",
    "duckdb_databases", "duckdb_temporary_files", "duckdb_extensions", "duckdb_external_file_cache",
    "duckdb_secrets", "which_secret",
    /* readers: the lock leaves the database's own files (WAL, temp files) readable */
    "read_blob", "read_text", "read_csv", "read_csv_auto", "read_json", "read_json_auto",
    "read_json_objects", "read_json_objects_auto", "read_ndjson", "read_ndjson_auto",
    "read_ndjson_objects", "read_parquet", "parquet_scan", "parquet_metadata",
    "parquet_file_metadata", "parquet_kv_metadata", "parquet_schema", "parquet_bloom_probe",
    "sniff_csv", "import_database", "copy_database",
    /* the COPY statement (reads or writes files; refused before prepare, which may read them) */
    "copy",
};

/* Refused only as a call (name then "("): common words as column names. */
static const char *const refused_calls[] = {"query", "glob"};

/* current_setting('name') is allowed unless the name is one of these or contains a path word;
 * anything but a single plain literal as its argument is refused. */
static const char *const path_words[] = {"directory", "directories", "path",   "paths",
                                         "repository", "output",     "file",   "storage"};

static bool in_list(const char *name, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(name, list[i]) == 0) return true;
  return false;
}

enum tok_kind { TOK_END, TOK_IDENT, TOK_STRING, TOK_PUNCT, TOK_ERROR };

struct tok {
  enum tok_kind kind;
  char text[64];  /* IDENT: lowercased name; STRING: the plain literal's text, lowercased */
  bool too_long;  /* IDENT/STRING longer than text: matches nothing */
  bool plain;     /* STRING: '...' without escapes or doubled quotes */
  char punct;     /* PUNCT */
};

struct lexer {
  const char *p, *end;
};

static bool ident_start(unsigned char c) {
  return isalpha(c) || c == '_' || c >= 0x80;
}
static bool ident_char(unsigned char c) {
  return ident_start(c) || isdigit(c) || c == '$';
}

static void tok_append(struct tok *t, size_t *n, char c) {
  if (*n + 1 >= sizeof(t->text)) {
    t->too_long = true;
    return;
  }
  t->text[(*n)++] = (char)tolower((unsigned char)c);
  t->text[*n] = '\0';
}

/* Skips whitespace and comments (-- to end of line; nested block comments). false when a block
 * comment does not end (DuckDB refuses that text too). */
static bool skip_space(struct lexer *lx) {
  while (lx->p < lx->end) {
    unsigned char c = (unsigned char)*lx->p;
    if (isspace(c)) {
      lx->p++;
    } else if (c == '-' && lx->p + 1 < lx->end && lx->p[1] == '-') {
      while (lx->p < lx->end && *lx->p != '\n')
        lx->p++;
    } else if (c == '/' && lx->p + 1 < lx->end && lx->p[1] == '*') {
      int depth = 0;
      do {
        if (lx->p + 1 < lx->end && lx->p[0] == '/' && lx->p[1] == '*') {
          depth++;
          lx->p += 2;
        } else if (lx->p + 1 < lx->end && lx->p[0] == '*' && lx->p[1] == '/') {
          depth--;
          lx->p += 2;
        } else if (lx->p < lx->end) {
          lx->p++;
        } else {
          return false;
        }
      } while (depth > 0);
    } else {
      return true;
    }
  }
  return true;
}

/* A quoted run from lx->p (at the opening quote `q`): a doubled quote stands for one; with
 * `backslash`, \x stands for x (E'...' strings). false when it does not end. */
static bool quoted(struct lexer *lx, char q, bool backslash, struct tok *t) {
  size_t n = 0;
  t->text[0] = '\0';
  lx->p++;
  while (lx->p < lx->end) {
    char c = *lx->p++;
    if (backslash && c == '\\') {
      if (lx->p >= lx->end) return false;
      t->plain = false;
      tok_append(t, &n, *lx->p++);
    } else if (c == q) {
      if (lx->p < lx->end && *lx->p == q) {
        t->plain = false;
        tok_append(t, &n, q);
        lx->p++;
      } else {
        return true;
      }
    } else {
      tok_append(t, &n, c);
    }
  }
  return false;
}

static void next_token(struct lexer *lx, struct tok *t) {
  memset(t, 0, sizeof(*t));
  if (!skip_space(lx)) {
    t->kind = TOK_ERROR;
    return;
  }
  if (lx->p >= lx->end) {
    t->kind = TOK_END;
    return;
  }
  unsigned char c = (unsigned char)*lx->p;
  if (c == '\'') {
    t->kind = TOK_STRING;
    t->plain = true;
    if (!quoted(lx, '\'', false, t)) t->kind = TOK_ERROR;
  } else if (c == '"') {
    t->kind = TOK_IDENT;
    if (!quoted(lx, '"', false, t)) t->kind = TOK_ERROR;
  } else if (ident_start(c)) {
    size_t n = 0;
    t->kind = TOK_IDENT;
    while (lx->p < lx->end && ident_char((unsigned char)*lx->p))
      tok_append(t, &n, *lx->p++);
    if (n == 1 && t->text[0] == 'e' && lx->p < lx->end && *lx->p == '\'') { /* E'...' */
      memset(t, 0, sizeof(*t));
      t->kind = TOK_STRING;
      if (!quoted(lx, '\'', true, t)) t->kind = TOK_ERROR;
    }
  } else if (c == '$') {
    /* $tag$ ... $tag$ (tag empty or a name without $), else a parameter $1 */
    const char *q = lx->p + 1;
    if (q < lx->end && (*q == '$' || (ident_start((unsigned char)*q)))) {
      while (q < lx->end && *q != '$' && ident_char((unsigned char)*q))
        q++;
      if (q < lx->end && *q == '$') {
        size_t tag = (size_t)(q + 1 - lx->p);
        const char *s = q + 1;
        t->kind = TOK_ERROR;
        for (; s + tag <= lx->end; s++) {
          if (memcmp(s, lx->p, tag) == 0) {
            t->kind = TOK_STRING;
            lx->p = s + tag;
            return;
          }
        }
        lx->p = lx->end;
        return;
      }
    }
    t->kind = TOK_PUNCT;
    t->punct = '$';
    lx->p++;
  } else {
    t->kind = TOK_PUNCT;
    t->punct = (char)c;
    lx->p++;
  }
}

static int refuse(struct wg_error *err, const char *what, const char *name) {
  return wg_error_set(err, EPERM,
                      "Permission Error: %s %.64s is refused from remote SQL on this server (its "
                      "sandbox; see --allow-external-access)",
                      what, name);
}

static bool path_setting(const char *name) {
  for (size_t i = 0; i < sizeof(path_words) / sizeof(path_words[0]); i++)
    if (strstr(name, path_words[i]) != NULL) return true;
  return false;
}

int wg__engine_sql_refused(const char *sql, size_t len, struct wg_error *err) {
  struct lexer lx = {sql, sql + len};
  struct tok prev = {0}, t;
  int setting = 0; /* current_setting: 1 saw the name, 2 saw "(", 3 saw the literal */
  for (;;) {
    next_token(&lx, &t);
    if (t.kind == TOK_END || t.kind == TOK_ERROR) return 0; /* DuckDB refuses the rest itself */
    if (t.kind == TOK_IDENT && !t.too_long) {
      if (in_list(t.text, refused_names, sizeof(refused_names) / sizeof(refused_names[0])))
        return refuse(err, strcmp(t.text, "copy") == 0 ? "the statement" : "the function",
                      t.text);
      if (prev.kind == TOK_IDENT && strcmp(prev.text, "show") == 0 && strcmp(t.text, "all") == 0)
        return refuse(err, "the statement", "SHOW ALL (the settings, which name server paths)");
    }
    bool open = t.kind == TOK_PUNCT && t.punct == '(';
    if (open && prev.kind == TOK_IDENT && !prev.too_long &&
        in_list(prev.text, refused_calls, sizeof(refused_calls) / sizeof(refused_calls[0])))
      return refuse(err, "the function", prev.text);
    switch (setting) {
    case 1:
      setting = open ? 2 : 0;
      break;
    case 2:
      if (t.kind != TOK_STRING || !t.plain || t.too_long || path_setting(t.text))
        return refuse(err, "current_setting of", t.kind == TOK_STRING ? t.text : "a computed name");
      setting = 3;
      break;
    case 3:
      if (t.kind != TOK_PUNCT || t.punct != ')')
        return refuse(err, "current_setting of", "a computed name");
      setting = 0;
      break;
    default:
      break;
    }
    if (t.kind == TOK_IDENT && strcmp(t.text, "current_setting") == 0) setting = 1;
    prev = t;
  }
}

int wg__engine_statement_refused(duckdb_statement_type type, struct wg_error *err) {
  switch (type) {
  case DUCKDB_STATEMENT_TYPE_COPY:
    return refuse(err, "the statement", "COPY");
  case DUCKDB_STATEMENT_TYPE_EXPORT:
    return refuse(err, "the statement", "EXPORT DATABASE");
  case DUCKDB_STATEMENT_TYPE_ATTACH:
    return refuse(err, "the statement", "ATTACH");
  case DUCKDB_STATEMENT_TYPE_DETACH:
    return refuse(err, "the statement", "DETACH");
  default:
    return 0;
  }
}

/* The head of a statement (its first token, `t`) and, for SET/RESET, the token after it. */
static void statement_head(struct lexer *lx, const struct tok *t, struct wg__sql_traits *out) {
  if (t->kind != TOK_IDENT) return;
  if (strcmp(t->text, "merge") == 0) out->merge = true;
  if (strcmp(t->text, "checkpoint") == 0) out->checkpoint = true;
  if (strcmp(t->text, "force") == 0) out->checkpoint = true; /* FORCE CHECKPOINT */
  if (strcmp(t->text, "pragma") == 0) out->setting = true;
  if (strcmp(t->text, "set") != 0 && strcmp(t->text, "reset") != 0) return;
  struct lexer peek = *lx;
  struct tok n;
  next_token(&peek, &n);
  static const char *const session_only[] = {"variable", "search_path", "schema"};
  if (n.kind != TOK_IDENT || n.too_long || !in_list(n.text, session_only, 3)) out->setting = true;
}

void wg__engine_sql_traits(const char *sql, size_t len, struct wg__sql_traits *out) {
  memset(out, 0, sizeof(*out));
  struct lexer lx = {sql, sql + len};
  struct tok prev = {0}, t;
  bool start = true;
  for (;;) {
    next_token(&lx, &t);
    if (t.kind == TOK_END || t.kind == TOK_ERROR) return; /* DuckDB refuses the rest itself */
    if (t.kind == TOK_PUNCT && t.punct == ';') {
      start = true;
      prev = t;
      continue;
    }
    if (start) statement_head(&lx, &t, out);
    start = false;
    if (t.kind == TOK_IDENT && !t.too_long &&
        (strcmp(t.text, "analyze") == 0 || strcmp(t.text, "analyse") == 0))
      out->analyze = true;
    if (t.kind == TOK_PUNCT && t.punct == '(' && prev.kind == TOK_IDENT && !prev.too_long) {
      if (strcmp(prev.text, "nextval") == 0 || strcmp(prev.text, "setval") == 0)
        out->sequence = true;
      if (strcmp(prev.text, "checkpoint") == 0 || strcmp(prev.text, "force_checkpoint") == 0)
        out->checkpoint = true;
    }
    prev = t;
  }
}
