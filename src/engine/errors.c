/* wigeon: DuckDB's errors into wigeon's (declared in arrow_duck.h): the one place DuckDB's
 * messages enter wigeon, with the classification of an error into a status code (see engine.h).
 * Calls nothing else of the engine, so that every engine file may use it. */
#include "engine/arrow_duck.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Case-insensitive (ASCII) substring test. */
static bool contains(const char *s, const char *needle) {
  if (s == NULL) return false;
  size_t n = strlen(needle);
  for (; *s; s++) {
    size_t i = 0;
    while (i < n && s[i] && tolower((unsigned char)s[i]) == tolower((unsigned char)needle[i]))
      i++;
    if (i == n) return true;
  }
  return false;
}

int wg_engine_error_code(duckdb_error_type type, const char *message) {
  if (contains(message, "disabled by configuration") ||
      contains(message, "disabled through configuration") ||
      contains(message, "configuration has been locked"))
    return EPERM;
  /* The parser's allocations are not under memory_limit: when they fail DuckDB says
   * "Parser Error: std::bad_alloc", which is the machine's memory, not the client's syntax. */
  if (contains(message, "std::bad_alloc")) return ENOMEM;
  /* A full disk is the operator's to fix, not a conflict to retry at once. */
  if (contains(message, "No space left on device")) return ENOSPC;
  /* DuckDB's fatal errors invalidate the database until restart. */
  if (type == DUCKDB_ERROR_FATAL || contains(message, "database has been invalidated"))
    return ENOTRECOVERABLE;
  switch (type) {
  case DUCKDB_ERROR_CONSTRAINT:
    /* "Duplicate key ... violates primary key constraint", "... violates unique constraint",
     * "PRIMARY KEY or UNIQUE constraint violation"; foreign key messages name neither. */
    if (contains(message, "duplicate key") || contains(message, "primary key or unique") ||
        contains(message, "violates unique") || contains(message, "violates primary key"))
      return EEXIST;
    return EPERM;
  case DUCKDB_ERROR_DEPENDENCY:
    return EPERM;
  case DUCKDB_ERROR_CATALOG:
    return contains(message, "already exists") ? EEXIST : ENOENT;
  case DUCKDB_ERROR_OUT_OF_RANGE:
  case DUCKDB_ERROR_CONVERSION:
  case DUCKDB_ERROR_UNKNOWN_TYPE:
  case DUCKDB_ERROR_DECIMAL:
  case DUCKDB_ERROR_MISMATCH_TYPE:
  case DUCKDB_ERROR_DIVIDE_BY_ZERO:
  case DUCKDB_ERROR_INVALID_TYPE:
  case DUCKDB_ERROR_EXPRESSION:
  case DUCKDB_ERROR_PARSER:
  case DUCKDB_ERROR_PLANNER:
  case DUCKDB_ERROR_SYNTAX:
  case DUCKDB_ERROR_BINDER:
  case DUCKDB_ERROR_INVALID_INPUT:
  case DUCKDB_ERROR_PARAMETER_NOT_RESOLVED:
  case DUCKDB_ERROR_PARAMETER_NOT_ALLOWED:
  case DUCKDB_ERROR_SEQUENCE:
  case DUCKDB_ERROR_SETTINGS:
    return EINVAL;
  case DUCKDB_ERROR_OUT_OF_MEMORY:
    return ENOMEM;
  case DUCKDB_ERROR_INTERRUPT:
    return ECANCELED;
  case DUCKDB_ERROR_TRANSACTION:
    /* "cannot rollback - no transaction is active", "cannot commit - ...", "cannot start a
     * transaction within a transaction": the client's sequence is wrong, a retry fails the same */
    if (contains(message, "no transaction is active") ||
        contains(message, "transaction within a transaction"))
      return EPERM;
    return EAGAIN; /* conflicts: "Conflict on update!", "write-write conflict", ... */
  case DUCKDB_ERROR_PERMISSION:
    return EPERM;
  default:
    return EIO;
  }
}

duckdb_error_type wg_engine_error_type_of_message(const char *message) {
  static const struct {
    const char *prefix;
    duckdb_error_type type;
  } table[] = {
      {"Parser Error", DUCKDB_ERROR_PARSER},
      {"Syntax Error", DUCKDB_ERROR_SYNTAX},
      {"Binder Error", DUCKDB_ERROR_BINDER},
      {"Catalog Error", DUCKDB_ERROR_CATALOG},
      {"Conversion Error", DUCKDB_ERROR_CONVERSION},
      {"Invalid Input Error", DUCKDB_ERROR_INVALID_INPUT},
      {"Out of Range Error", DUCKDB_ERROR_OUT_OF_RANGE},
      {"Constraint Error", DUCKDB_ERROR_CONSTRAINT},
      {"Dependency Error", DUCKDB_ERROR_DEPENDENCY},
      {"Permission Error", DUCKDB_ERROR_PERMISSION},
      {"Out of Memory Error", DUCKDB_ERROR_OUT_OF_MEMORY},
      {"INTERRUPT Error", DUCKDB_ERROR_INTERRUPT},
      {"TransactionContext Error", DUCKDB_ERROR_TRANSACTION},
      {"Transaction Error", DUCKDB_ERROR_TRANSACTION},
      {"Not implemented Error", DUCKDB_ERROR_NOT_IMPLEMENTED},
      {"Mismatch Type Error", DUCKDB_ERROR_MISMATCH_TYPE},
      {"Invalid type Error", DUCKDB_ERROR_INVALID_TYPE},
      {"Settings Error", DUCKDB_ERROR_SETTINGS},
      {"Parameter Not Resolved Error", DUCKDB_ERROR_PARAMETER_NOT_RESOLVED},
      {"Parameter Not Allowed Error", DUCKDB_ERROR_PARAMETER_NOT_ALLOWED},
      {"IO Error", DUCKDB_ERROR_IO},
  };
  if (message == NULL) return DUCKDB_ERROR_INVALID;
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    size_t n = strlen(table[i].prefix);
    if (strncmp(message, table[i].prefix, n) == 0 && message[n] == ':') return table[i].type;
  }
  return DUCKDB_ERROR_INVALID;
}

/* The length of `m` without a repeated trailing "\n\nLINE n: ...^" context: DuckDB 1.4 adds the
 * query location twice to parser errors that come through prepare (duckdb/duckdb#19070), so the
 * message ends with the same block two (or more) times; only the first is kept. */
static size_t without_repeated_context(const char *m, size_t len) {
  const char *first = strstr(m, "\n\nLINE ");
  if (first != NULL && (size_t)(first - m) >= len) first = NULL;
  if (first == NULL) return len;
  for (;;) {
    size_t start = (size_t)(first - m);
    const char *second = strstr(first + 1, "\n\nLINE ");
    if (second == NULL || (size_t)(second - m) >= len) return len;
    size_t block = (size_t)(second - first);
    /* the rest of the message from `first` is k >= 2 copies of one block? */
    size_t rest = len - start;
    bool copies = rest % block == 0;
    for (size_t off = block; copies && off < rest; off += block)
      copies = memcmp(first, first + off, block) == 0;
    if (copies) return start + block;
    first = second;
  }
}

/* Copies the JSON string value of "key" in the flat JSON object `json` into out (decoding the
 * escapes DuckDB writes; \u escapes of non-ASCII become '?'); false when there is none. */
static bool json_string_value(const char *json, const char *key, char *out, size_t cap) {
  char pattern[64];
  snprintf(pattern, sizeof(pattern), "\"%s\":\"", key);
  const char *p = strstr(json, pattern);
  if (p == NULL || cap == 0) return false;
  size_t n = 0;
  for (p += strlen(pattern); *p && *p != '"'; p++) {
    char ch = *p;
    if (ch == '\\' && p[1] != '\0') {
      p++;
      switch (*p) {
      case 'n':
        ch = '\n';
        break;
      case 't':
        ch = '\t';
        break;
      case 'r':
        ch = '\r';
        break;
      case 'u': {
        unsigned v = 0;
        int k = 0;
        for (; k < 4 && isxdigit((unsigned char)p[1 + k]); k++)
          v = v * 16 + (unsigned)(isdigit((unsigned char)p[1 + k])
                                      ? p[1 + k] - '0'
                                      : tolower((unsigned char)p[1 + k]) - 'a' + 10);
        p += k;
        ch = v < 0x80 ? (char)v : '?';
        break;
      }
      default:
        ch = *p; /* \" \\ \/ */
      }
    }
    if (n + 1 < cap) out[n++] = ch;
  }
  out[n] = '\0';
  return true;
}

int wg_engine_error_set(struct wg_error *err, duckdb_error_type type, const char *message,
                        const char *fallback) {
  if (message == NULL)
    return wg_error_set(err, wg_engine_error_code(type, NULL), "%s",
                        fallback ? fallback : "DuckDB error (no message)");
  /* Errors DuckDB's Arrow conversions throw reach the C API as the exception's JSON form,
   * {"exception_type":"Not implemented","exception_message":"...","stack_trace_pointers":...}:
   * clients get DuckDB's usual "Not implemented Error: ..." instead. */
  char kind[64], text[sizeof(err->message)], plain[sizeof(err->message)];
  static const char json_head[] = "{\"exception_type\":";
  if (strncmp(message, json_head, sizeof(json_head) - 1) == 0 &&
      json_string_value(message, "exception_type", kind, sizeof(kind)) &&
      json_string_value(message, "exception_message", text, sizeof(text))) {
    snprintf(plain, sizeof(plain), "%s Error: %s", kind, text);
    message = plain;
  }
  if (type == DUCKDB_ERROR_INVALID) type = wg_engine_error_type_of_message(message);
  /* some DuckDB builds append a stack trace: not for clients */
  const char *trace = strstr(message, "\n\nStack Trace:");
  if (trace == NULL) trace = strstr(message, "\nStack Trace:");
  size_t len = trace != NULL ? (size_t)(trace - message) : strlen(message);
  return wg_error_set(err, wg_engine_error_code(type, message), "%.*s",
                      (int)without_repeated_context(message, len), message);
}

int wg_engine_take_error_data(duckdb_error_data *ed, struct wg_error *err, const char *what) {
  if (*ed == NULL) return 0;
  int rc = 0;
  if (duckdb_error_data_has_error(*ed))
    rc = wg_engine_error_set(err, duckdb_error_data_error_type(*ed),
                             duckdb_error_data_message(*ed), what);
  duckdb_destroy_error_data(ed);
  return rc;
}
