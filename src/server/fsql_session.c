/* wigeon: Flight session options (SetSessionOptions, GetSessionOptions, CloseSession; bare
 * messages, not in an Any). A call is its own session on this server (docs/server.md "Calls,
 * transactions, time limits"), so the only options are the two every driver asks for, read-only:
 * "catalog" (the database, DuckDB's current_database()) and "schema" ("main" unless the SQL of a
 * call says otherwise). GetSessionOptions tells them; SetSessionOptions takes a value equal to the
 * current one, answers ERROR (cannot be set) for another value and INVALID_NAME for any other
 * option, per option, as the specification says, so drivers see which (and INVALID_VALUE for a
 * value not a string). No cookie is needed: nothing is kept between calls. CloseSession rolls back
 * the client's open transactions (a client is its peer address, wg__fsql_owner) and answers
 * CLOSED. */
#include <stdlib.h>
#include <string.h>

#include "server/fsql.h"

typedef Arrow__Flight__Protocol__SessionOptionValue option_value;
#define STRING_VALUE ARROW__FLIGHT__PROTOCOL__SESSION_OPTION_VALUE__OPTION_VALUE_STRING_VALUE

/* The value of a row-0 utf8 (or large utf8) column of a batch, copied into out (NUL-ended). */
static int utf8_at0(const struct ArrowSchema *schema, const struct ArrowArray *col, char *out,
                    size_t n, struct wg_error *err) {
  const char *f = schema->format;
  if (col->length < 1 || col->n_buffers < 3 || (strcmp(f, "u") != 0 && strcmp(f, "U") != 0))
    return wg_error_set(err, EIO, "session options: unexpected answer of type %s", f);
  int64_t i = col->offset, start, end;
  if (f[0] == 'u') {
    const int32_t *o = col->buffers[1];
    start = o[i];
    end = o[i + 1];
  } else {
    const int64_t *o = col->buffers[1];
    start = o[i];
    end = o[i + 1];
  }
  size_t len = (size_t)(end - start);
  if (len >= n) len = n - 1;
  memcpy(out, (const char *)col->buffers[2] + start, len);
  out[len] = '\0';
  return 0;
}

/* The current catalog and schema, as a call's fresh connection sees them. */
static int current_names(struct wg_server *s, char *catalog, char *schema, size_t n,
                         struct wg_error *err) {
  struct wg_engine_conn *c = NULL;
  WG_RETURN_NOT_OK(wg_engine_acquire(s->engine, &c, err));
  struct ArrowArrayStream st = {0};
  struct ArrowSchema sc = {0};
  struct ArrowArray b = {0};
  int rc = wg_engine_query_open(c, "SELECT current_database(), current_schema()", 0, &st, err);
  if (rc == 0 && (st.get_schema(&st, &sc) != 0 || st.get_next(&st, &b) != 0 ||
                  b.release == NULL || b.n_children != 2 || sc.n_children != 2))
    rc = wg_error_set(err, EIO, "session options: cannot read the current catalog and schema");
  if (rc == 0) rc = utf8_at0(sc.children[0], b.children[0], catalog, n, err);
  if (rc == 0) rc = utf8_at0(sc.children[1], b.children[1], schema, n, err);
  wg_array_release(&b);
  wg_schema_release(&sc);
  wg_stream_release(&st);
  wg_engine_release(s->engine, c);
  return rc;
}

enum { NAME_LEN = 256 };

int wg__fsql_action_set_session_options(struct wg_server *s, struct wg_rpc_call *call,
                                        const ProtobufCBinaryData *body, struct wg_error *err) {
  Arrow__Flight__Protocol__SetSessionOptionsRequest *req = NULL;
  WG_RETURN_NOT_OK(wg__fsql_action_unpack(
      body, &arrow__flight__protocol__set_session_options_request__descriptor, false,
      "SetSessionOptions", (ProtobufCMessage **)&req, err));
  char catalog[NAME_LEN], schema[NAME_LEN];
  int rc = current_names(s, catalog, schema, NAME_LEN, err);
  size_t n = req->n_session_options;
  Arrow__Flight__Protocol__SetSessionOptionsResult__ErrorsEntry *entries =
      rc == 0 ? calloc(n + 1, sizeof(*entries)) : NULL;
  Arrow__Flight__Protocol__SetSessionOptionsResult__ErrorsEntry **ptrs =
      rc == 0 ? calloc(n + 1, sizeof(*ptrs)) : NULL;
  Arrow__Flight__Protocol__SetSessionOptionsResult__Error *errs =
      rc == 0 ? calloc(n + 1, sizeof(*errs)) : NULL;
  if (rc == 0 && (entries == NULL || ptrs == NULL || errs == NULL))
    rc = wg_error_set(err, ENOMEM, "out of memory");
  Arrow__Flight__Protocol__SetSessionOptionsResult res =
      ARROW__FLIGHT__PROTOCOL__SET_SESSION_OPTIONS_RESULT__INIT;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const char *name = req->session_options[i]->key != NULL ? req->session_options[i]->key : "";
    const option_value *v = req->session_options[i]->value;
    const char *now = strcmp(name, "catalog") == 0  ? catalog
                      : strcmp(name, "schema") == 0 ? schema
                                                    : NULL;
    Arrow__Flight__Protocol__SetSessionOptionsResult__ErrorValue e;
    if (now == NULL)
      e = ARROW__FLIGHT__PROTOCOL__SET_SESSION_OPTIONS_RESULT__ERROR_VALUE__INVALID_NAME;
    else if (v == NULL || v->option_value_case != STRING_VALUE)
      e = ARROW__FLIGHT__PROTOCOL__SET_SESSION_OPTIONS_RESULT__ERROR_VALUE__INVALID_VALUE;
    else if (strcmp(v->string_value, now) != 0)
      e = ARROW__FLIGHT__PROTOCOL__SET_SESSION_OPTIONS_RESULT__ERROR_VALUE__ERROR; /* read-only */
    else
      continue; /* already so: set */
    arrow__flight__protocol__set_session_options_result__error__init(&errs[res.n_errors]);
    errs[res.n_errors].value = e;
    arrow__flight__protocol__set_session_options_result__errors_entry__init(
        &entries[res.n_errors]);
    entries[res.n_errors].key = (char *)name;
    entries[res.n_errors].value = &errs[res.n_errors];
    ptrs[res.n_errors] = &entries[res.n_errors];
    res.n_errors++;
  }
  res.errors = ptrs;
  if (rc == 0) rc = wg__fsql_action_result(call, &res.base, false, err);
  free(entries);
  free(ptrs);
  free(errs);
  protobuf_c_message_free_unpacked(&req->base, NULL);
  return rc;
}

int wg__fsql_action_get_session_options(struct wg_server *s, struct wg_rpc_call *call,
                                        const ProtobufCBinaryData *body, struct wg_error *err) {
  ProtobufCMessage *req = NULL;
  WG_RETURN_NOT_OK(wg__fsql_action_unpack(
      body, &arrow__flight__protocol__get_session_options_request__descriptor, false,
      "GetSessionOptions", &req, err));
  protobuf_c_message_free_unpacked(req, NULL);
  char catalog[NAME_LEN], schema[NAME_LEN];
  WG_RETURN_NOT_OK(current_names(s, catalog, schema, NAME_LEN, err));
  option_value v[2];
  Arrow__Flight__Protocol__GetSessionOptionsResult__SessionOptionsEntry e[2], *p[2];
  const char *names[2] = {"catalog", "schema"};
  char *values[2] = {catalog, schema};
  for (int i = 0; i < 2; i++) {
    arrow__flight__protocol__session_option_value__init(&v[i]);
    v[i].option_value_case = STRING_VALUE;
    v[i].string_value = values[i];
    arrow__flight__protocol__get_session_options_result__session_options_entry__init(&e[i]);
    e[i].key = (char *)names[i];
    e[i].value = &v[i];
    p[i] = &e[i];
  }
  Arrow__Flight__Protocol__GetSessionOptionsResult res =
      ARROW__FLIGHT__PROTOCOL__GET_SESSION_OPTIONS_RESULT__INIT;
  res.n_session_options = 2;
  res.session_options = p;
  return wg__fsql_action_result(call, &res.base, false, err);
}

int wg__fsql_action_close_session(struct wg_server *s, struct wg_rpc_call *call,
                                  const ProtobufCBinaryData *body, struct wg_error *err) {
  ProtobufCMessage *req = NULL;
  WG_RETURN_NOT_OK(wg__fsql_action_unpack(
      body, &arrow__flight__protocol__close_session_request__descriptor, false, "CloseSession",
      &req, err));
  protobuf_c_message_free_unpacked(req, NULL);
  /* ADBC closes a connection with its transaction open (autocommit off) and sends only this:
   * without it every closed connection would hold a session until --session-idle-timeout */
  wg__fsql_txn_end_client(s, call);
  Arrow__Flight__Protocol__CloseSessionResult res =
      ARROW__FLIGHT__PROTOCOL__CLOSE_SESSION_RESULT__INIT;
  res.status = ARROW__FLIGHT__PROTOCOL__CLOSE_SESSION_RESULT__STATUS__CLOSED;
  return wg__fsql_action_result(call, &res.base, false, err);
}
