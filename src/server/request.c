/* wigeon: the request classifier. Every RPC's input (a DoGet ticket, a FlightDescriptor, an action
 * body) is read here, once, into a struct wg__request; the handlers only act on it.
 *
 * The rule that keeps plain Flight clients working: a ticket, or a CMD descriptor's command, is a
 * Flight SQL command when, and only when, it parses as a google.protobuf.Any (field 1 type_url,
 * field 2 value, written in that order, so its first byte is 0x0A) whose type_url starts with
 * "type.googleapis.com/arrow.flight.protocol.sql."; anything else is UTF-8 SQL text. SQL text
 * never looks like that (it would have to start with a newline followed by that type_url's length
 * and text), so every ticket that worked before is still SQL. Flight SQL commands are refused
 * with UNIMPLEMENTED naming the command, until they are served. A PATH descriptor names a table.
 *
 * A DoGet ticket whose first byte that is not white space is '{' is JSON, not SQL (no SQL
 * statement starts with a brace): {"tail": ...} asks for a live tail (docs/tail.md); any other
 * JSON is refused. Its keys are checked strictly, so that a misspelt key is an error, not a
 * silently different subscription.
 *
 * Text is checked once, here: SQL must be non-empty, at most --max-sql-bytes (RESOURCE_EXHAUSTED,
 * before anything is copied or parsed), without NUL (a C string would cut it) and UTF-8. */
#include "server/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/sql.h"
#include "common/text.h"
#include "server/internal.h"

int wg__request_text(const struct wg_server *s, const uint8_t *data, size_t len,
                     enum wg__text_rule rule, const char *what, char **out, struct wg_error *err) {
  *out = NULL;
  if (rule == WG__TEXT_SQL) {
    if (len == 0) return wg_error_set(err, EINVAL, "empty %s: expected SQL text", what);
    if ((uint64_t)len > (uint64_t)s->options.max_sql_bytes)
      return wg_error_set(err, EBUSY,
                          "%s of %zu bytes is over this server's limit for SQL text of %lld "
                          "bytes (--max-sql-bytes)",
                          what, len, (long long)s->options.max_sql_bytes);
    if (memchr(data, 0, len) != NULL)
      return wg_error_set(err, EINVAL, "%s holds a NUL byte: expected SQL text", what);
    if (!wg_utf8_valid(data, len))
      return wg_error_set(err, EINVAL, "%s is not valid UTF-8: expected SQL text", what);
  } else {
    const char *why;
    if (!wg_text_name_ok(data, len, &why)) return wg_error_set(err, EINVAL, "%s %s", what, why);
  }
  char *t = malloc(len + 1);
  if (t == NULL) return wg_error_set(err, ENOMEM, "out of memory for %zu bytes of %s", len, what);
  if (len > 0) memcpy(t, data, len);
  t[len] = '\0';
  *out = t;
  return 0;
}

/* Whether the Any's first field (its type_url: data[0] is its key) holds a NUL byte. */
static bool type_url_has_nul(const uint8_t *data, size_t len) {
  uint64_t n = 0;
  size_t i = 1;
  for (int shift = 0; i < len && shift < 64; shift += 7) {
    n |= (uint64_t)(data[i] & 0x7F) << shift;
    if ((data[i++] & 0x80) == 0) break;
  }
  if (n > len - i) return false; /* protobuf-c parsed it, so this does not happen */
  return memchr(data + i, 0, (size_t)n) != NULL;
}

/* Whether bytes are a Flight SQL command (see the rule above); if so, takes its parts into r.
 * google.protobuf.Any has the wire shape of Flight's Action (1: string, 2: bytes), so protobuf-c
 * parses it with that descriptor: no hand-written protobuf scanner. */
static int flight_sql_any(const struct wg_server *s, const uint8_t *data, size_t len,
                          struct wg__request *r, bool *is, struct wg_error *err) {
  *is = false;
  if (len < 2 || data[0] != 0x0A) return 0;
  /* a command holds SQL and a few fields: one over the SQL limit (and the Any's own bytes) is not
   * unpacked (protobuf-c copies it), but refused below as SQL text too long */
  if ((uint64_t)len > (uint64_t)s->options.max_sql_bytes + 4096) return 0;
  Arrow__Flight__Protocol__Action *any = arrow__flight__protocol__action__unpack(NULL, len, data);
  if (any == NULL) return 0; /* not protobuf: SQL text */
  int rc = 0;
  const char *url = any->type ? any->type : "";
  if (strncmp(url, WG_FLIGHT_SQL_TYPE_PREFIX, strlen(WG_FLIGHT_SQL_TYPE_PREFIX)) == 0) {
    *is = true;
    r->kind = WG__REQUEST_FLIGHT_SQL;
    /* protobuf-c's strings end at a NUL: a type_url that holds one must not pass for the
     * command its first part names */
    bool cut = type_url_has_nul(data, len);
    size_t ulen = strlen(url) + 48;
    r->type_url = malloc(ulen);
    if (r->type_url != NULL)
      snprintf(r->type_url, ulen, "%s%s", url, cut ? " (a type_url cut by a NUL byte)" : "");
    r->value_len = any->body.len;
    r->value = malloc(any->body.len > 0 ? any->body.len : 1);
    if (r->type_url == NULL || r->value == NULL) {
      rc = wg_error_set(err, ENOMEM, "out of memory");
    } else if (any->body.len > 0) {
      memcpy(r->value, any->body.data, any->body.len);
    }
  }
  protobuf_c_message_free_unpacked(&any->base, NULL);
  if (rc != 0) wg__request_reset(r);
  return rc;
}

/* A ticket or a command: Flight SQL or SQL text. */
static int from_bytes(const struct wg_server *s, const uint8_t *data, size_t len, const char *what,
                      struct wg__request *out, struct wg_error *err) {
  bool is_flight_sql = false;
  WG_RETURN_NOT_OK(flight_sql_any(s, data, len, out, &is_flight_sql, err));
  if (is_flight_sql) return 0;
  WG_RETURN_NOT_OK(wg__request_text(s, data, len, WG__TEXT_SQL, what, &out->sql, err));
  out->kind = WG__REQUEST_SQL;
  return 0;
}

/* A name in a tail ticket: a non-empty JSON string without NUL (cJSON keeps UTF-8 as sent; the
 * ticket was checked for UTF-8 as a whole). */
static int tail_name(const cJSON *v, const char *what, char **out, struct wg_error *err) {
  if (!cJSON_IsString(v) || v->valuestring == NULL || v->valuestring[0] == '\0')
    return wg_error_set(err, EINVAL, "tail ticket: %s must be a non-empty string", what);
  *out = strdup(v->valuestring);
  return *out == NULL ? wg_error_set(err, ENOMEM, "out of memory") : 0;
}

/* "tail": "table" or ["schema", "table"] */
static int tail_table(const cJSON *v, struct wg__tail_request *t, struct wg_error *err) {
  if (cJSON_IsString(v)) return tail_name(v, "\"tail\"", &t->table, err);
  if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2) {
    WG_RETURN_NOT_OK(tail_name(cJSON_GetArrayItem(v, 0), "the schema in \"tail\"", &t->schema_name,
                               err));
    return tail_name(cJSON_GetArrayItem(v, 1), "the table in \"tail\"", &t->table, err);
  }
  return wg_error_set(err, EINVAL,
                      "tail ticket: \"tail\" must be a table name or [schema, table]");
}

static int tail_columns(const cJSON *v, struct wg__tail_request *t, struct wg_error *err) {
  int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
  if (n < 1 || n > 10000)
    return wg_error_set(err, EINVAL,
                        "tail ticket: \"columns\" must be a list of 1 to 10000 column names");
  t->columns = calloc((size_t)n, sizeof(*t->columns));
  if (t->columns == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  t->n_columns = n;
  for (int i = 0; i < n; i++)
    WG_RETURN_NOT_OK(tail_name(cJSON_GetArrayItem(v, i), "each of \"columns\"", &t->columns[i],
                               err));
  return 0;
}

/* "from": "beginning" | "now" | a sequence number (an integer >= 0, exact: below 2^53) */
static int tail_from(const cJSON *v, struct wg__tail_request *t, struct wg_error *err) {
  if (cJSON_IsString(v) && strcmp(v->valuestring, "beginning") == 0) {
    t->from = WG__TAIL_FROM_BEGINNING;
  } else if (cJSON_IsString(v) && strcmp(v->valuestring, "now") == 0) {
    t->from = WG__TAIL_FROM_NOW;
  } else if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9007199254740992.0 &&
             v->valuedouble == (double)(uint64_t)v->valuedouble) {
    t->from = WG__TAIL_FROM_SEQUENCE;
    t->from_sequence = (uint64_t)v->valuedouble;
  } else {
    return wg_error_set(err, EINVAL,
                        "tail ticket: \"from\" must be \"beginning\", \"now\" or a sequence "
                        "number from a batch's app_metadata");
  }
  return 0;
}

static int tail_parse(const cJSON *root, struct wg__tail_request *t, struct wg_error *err) {
  if (!cJSON_IsObject(root) || cJSON_GetObjectItemCaseSensitive(root, "tail") == NULL)
    return wg_error_set(err, EINVAL,
                        "DoGet: a JSON ticket must be an object naming a table in \"tail\" "
                        "(docs/tail.md)");
  for (const cJSON *k = root->child; k != NULL; k = k->next) {
    const char *key = k->string;
    if (strcmp(key, "tail") == 0) {
      WG_RETURN_NOT_OK(tail_table(k, t, err));
    } else if (strcmp(key, "where") == 0) {
      if (!cJSON_IsNull(k)) WG_RETURN_NOT_OK(tail_name(k, "\"where\"", &t->where, err));
    } else if (strcmp(key, "columns") == 0) {
      if (!cJSON_IsNull(k)) WG_RETURN_NOT_OK(tail_columns(k, t, err));
    } else if (strcmp(key, "from") == 0) {
      WG_RETURN_NOT_OK(tail_from(k, t, err));
    } else {
      char shown[WG_TEXT_SHOWN];
      return wg_error_set(err, EINVAL,
                          "tail ticket: unknown key \"%s\"; the keys are tail, where, columns, "
                          "from",
                          wg_text_shown(key, shown, sizeof(shown)));
    }
  }
  return 0;
}

static void tail_reset(struct wg__tail_request *t) {
  free(t->schema_name);
  free(t->table);
  free(t->where);
  for (int i = 0; i < t->n_columns; i++)
    free(t->columns[i]);
  free(t->columns);
  memset(t, 0, sizeof(*t));
}

/* Whether `text` holds a \u0000 escape (one whose backslash is not itself escaped). */
static bool has_nul_escape(const char *text) {
  for (const char *p = strstr(text, "\\u"); p != NULL; p = strstr(p + 1, "\\u")) {
    size_t run = 1;
    while ((size_t)(p - text) >= run && p[-(ptrdiff_t)run] == '\\')
      run++;
    if (run % 2 == 1 && strncmp(p + 2, "0000", 4) == 0) return true;
  }
  return false;
}

static bool has_duplicate_key(const cJSON *v, int depth) {
  if (v == NULL || depth > 1000) return false;
  for (const cJSON *c = v->child; c != NULL; c = c->next) {
    if (cJSON_IsObject(v) && c->string != NULL)
      for (const cJSON *d = v->child; d != c; d = d->next)
        if (d->string != NULL && strcmp(d->string, c->string) == 0) return true;
    if (has_duplicate_key(c, depth + 1)) return true;
  }
  return false;
}

cJSON *wg__request_json(const char *text, const char *what, struct wg_error *err) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(text, &end, false);
  if (root == NULL) {
    wg_error_set(err, EINVAL, "%s: not valid JSON", what);
    return NULL;
  }
  while (end != NULL && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
    end++;
  const char *why = NULL;
  if (end == NULL || *end != '\0')
    why = "text after the JSON value";
  else if (has_nul_escape(text))
    why = "a \\u0000 escape (no NUL is allowed in a name or SQL)";
  else if (has_duplicate_key(root, 0))
    why = "an object with the same key twice";
  if (why != NULL) {
    cJSON_Delete(root);
    wg_error_set(err, EINVAL, "%s: %s", what, why);
    return NULL;
  }
  return root;
}

/* Whether a ticket is JSON (see the rule above). */
static bool json_ticket(const uint8_t *data, size_t len) {
  size_t i = 0;
  while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
    i++;
  return i < len && data[i] == '{';
}

int wg__request_from_ticket(const struct wg_server *s, const ProtobufCBinaryData *ticket,
                            struct wg__request *out, struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  if (!json_ticket(ticket->data, ticket->len))
    return from_bytes(s, ticket->data, ticket->len, "DoGet ticket", out, err);
  char *text = NULL;
  WG_RETURN_NOT_OK(
      wg__request_text(s, ticket->data, ticket->len, WG__TEXT_SQL, "DoGet ticket", &text, err));
  cJSON *root = wg__request_json(text, "DoGet: a ticket starting with '{' (docs/tail.md)", err);
  free(text);
  if (root == NULL) return EINVAL;
  int rc = tail_parse(root, &out->tail, err);
  cJSON_Delete(root);
  if (rc != 0) {
    wg__request_reset(out);
    return rc;
  }
  out->kind = WG__REQUEST_TAIL;
  return 0;
}

int wg__request_from_descriptor(const struct wg_server *s,
                                const Arrow__Flight__Protocol__FlightDescriptor *d,
                                struct wg__request *out, struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  if (d == NULL) return wg_error_set(err, EINVAL, "missing flight descriptor");
  if (d->type == ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD)
    return from_bytes(s, d->cmd.data, d->cmd.len, "CMD descriptor", out, err);
  WG_RETURN_NOT_OK(wg__server_table_ref(d, &out->table, err));
  out->kind = WG__REQUEST_TABLE;
  return 0;
}

void wg__request_reset(struct wg__request *r) {
  free(r->sql);
  free(r->type_url);
  free(r->value);
  tail_reset(&r->tail);
  memset(r, 0, sizeof(*r));
}

int wg__request_refuse(const struct wg__request *r, const char *rpc, struct wg_error *err) {
  switch (r->kind) {
  case WG__REQUEST_FLIGHT_SQL: {
    const char *name = r->type_url + strlen(WG_FLIGHT_SQL_TYPE_PREFIX);
    char shown[WG_TEXT_SHOWN];
    if (!wg_utf8_valid((const uint8_t *)name, strlen(name))) name = "(a name not UTF-8)";
    if (name[0] == '\0') name = "(no name after the prefix)";
    return wg_error_set(err, ENOTSUP,
                        "%s: Flight SQL command %s is not supported by this server yet; send "
                        "the query as UTF-8 SQL text instead",
                        rpc, wg_text_shown(name, shown, sizeof(shown)));
  }
  case WG__REQUEST_OPAQUE:
    return wg_error_set(err, ENOTSUP, "%s: this kind of ticket is not supported", rpc);
  case WG__REQUEST_TAIL:
    return wg_error_set(err, EINVAL, "%s: a live tail is a DoGet ticket only", rpc);
  case WG__REQUEST_TABLE:
    return wg_error_set(err, EINVAL, "%s: expected SQL text, not a table path", rpc);
  case WG__REQUEST_SQL:
    return wg_error_set(err, EINVAL, "expected a PATH descriptor ([table] or [schema, table])");
  default:
    return wg_error_set(err, EINVAL, "%s: no request", rpc);
  }
}

int wg__server_table_ref(const Arrow__Flight__Protocol__FlightDescriptor *d,
                         struct wg__table_ref *out, struct wg_error *err) {
  if (d == NULL) return wg_error_set(err, EINVAL, "missing flight descriptor");
  if (d->type != ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__PATH)
    return wg_error_set(err, EINVAL, "expected a PATH descriptor ([table] or [schema, table])");
  if (d->n_path == 1) {
    out->schema_name = NULL;
    out->table = d->path[0];
  } else if (d->n_path == 2) {
    out->schema_name = d->path[0];
    out->table = d->path[1];
  } else {
    return wg_error_set(err, EINVAL,
                        "descriptor path has %zu parts; expected [table] or "
                        "[schema, table]",
                        d->n_path);
  }
  if (out->table == NULL || out->table[0] == '\0')
    return wg_error_set(err, EINVAL, "empty table name in the descriptor path");
  if (out->schema_name != NULL && out->schema_name[0] == '\0')
    return wg_error_set(err, EINVAL,
                        "empty schema name in the descriptor path: send [table] for the default "
                        "schema, or [schema, table]");
  return 0;
}

char *wg__server_table_sql(const struct wg__table_ref *t) {
  struct wg_buf sql;
  wg_buf_init(&sql);
  static const char select[] = "SELECT * FROM ";
  int rc = wg_buf_append(&sql, select, (int64_t)sizeof(select) - 1);
  if (rc == 0 && t->schema_name != NULL) {
    rc = wg_sql_append_ident(&sql, t->schema_name);
    if (rc == 0) rc = wg_buf_append(&sql, ".", 1);
  }
  if (rc == 0) rc = wg_sql_append_ident(&sql, t->table);
  if (rc == 0) rc = wg_buf_append(&sql, "", 1);
  if (rc != 0) {
    wg_buf_reset(&sql);
    return NULL;
  }
  return (char *)wg_buf_detach(&sql);
}
