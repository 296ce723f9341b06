/* wigeon: the Flight SQL client (the "Flight SQL" section of include/wigeon.h). Every request is
 * built from the protobuf-c structs of proto/flight_sql.proto and travels packed in a
 * google.protobuf.Any (packed and unpacked here: two fields); results come back through the plain
 * Flight calls of the other files: GetFlightInfo (here), DoGet (wg_do_get), DoPut with a command
 * descriptor (wg__client_put_cmd), DoAction (wg_action). A FlightInfo with several endpoints is
 * read as one stream, endpoint after endpoint (wg__do_get_all). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/array.h"
#include "client/internal.h"
#include "common/buf.h"
#include "proto/flight_sql.pb-c.h"

struct wg_fsql_txn {
  uint8_t *id;
  size_t len;
};

struct wg_fsql_prepared {
  uint8_t *handle;
  size_t handle_len;
  struct wg_buf dataset_schema, parameter_schema; /* IPC schema bytes, size 0 when not sent */
  bool is_update;
};

struct wg_fsql_info {
  Arrow__Flight__Protocol__FlightInfo *fi;
};

/* ---- google.protobuf.Any: type_url (1) and value (2) ---- */

#define ANY_PREFIX "type.googleapis.com/"

static int put_varint(struct wg_buf *b, uint64_t v) {
  uint8_t tmp[10];
  int n = 0;
  do {
    tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v != 0);
  return wg_buf_append(b, tmp, n);
}

/* Appends m packed in an Any (type_url ANY_PREFIX + its full name) to out. */
static int pack_any(const ProtobufCMessage *m, struct wg_buf *out, struct wg_error *err) {
  const char *name = m->descriptor->name;
  size_t url_len = strlen(ANY_PREFIX) + strlen(name);
  size_t len = protobuf_c_message_get_packed_size(m);
  int rc = wg_buf_append(out, "\x0a", 1);
  if (rc == 0) rc = put_varint(out, url_len);
  if (rc == 0) rc = wg_buf_append(out, ANY_PREFIX, (int64_t)strlen(ANY_PREFIX));
  if (rc == 0) rc = wg_buf_append(out, name, (int64_t)strlen(name));
  if (rc == 0) rc = wg_buf_append(out, "\x12", 1);
  if (rc == 0) rc = put_varint(out, len);
  if (rc == 0) rc = wg_buf_reserve(out, (int64_t)len + 1);
  if (rc != 0) return wg_error_set(err, ENOMEM, "out of memory packing %s", name);
  protobuf_c_message_pack(m, out->data + out->size);
  out->size += (int64_t)len;
  return 0;
}

/* A varint at p[*i..n), advancing *i; EPROTO when cut short or longer than 10 bytes. */
static int get_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 70 && *i < n; shift += 7) {
    uint8_t byte = p[(*i)++];
    *v |= (uint64_t)(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return 0;
  }
  return EPROTO;
}

/* Unpacks an Any holding a `d` (its type_url's last component must be d's full name). */
static int unpack_any(const uint8_t *p, size_t n, const ProtobufCMessageDescriptor *d,
                      ProtobufCMessage **out, struct wg_error *err) {
  const uint8_t *url = NULL, *value = NULL;
  size_t url_len = 0, value_len = 0;
  for (size_t i = 0; i < n;) {
    uint64_t key, len;
    if (get_varint(p, n, &i, &key) != 0)
      return wg_error_set(err, EPROTO, "a %s result: Any cut short", d->short_name);
    if ((key & 7) != 2) {
      uint64_t skip;
      if ((key & 7) != 0 || get_varint(p, n, &i, &skip) != 0)
        return wg_error_set(err, EPROTO, "a %s result: malformed Any (field %llu)", d->short_name,
                            (unsigned long long)(key >> 3));
      continue;
    }
    if (get_varint(p, n, &i, &len) != 0 || len > n - i)
      return wg_error_set(err, EPROTO, "a %s result: Any field %llu runs past its %zu bytes",
                          d->short_name, (unsigned long long)(key >> 3), n);
    if (key >> 3 == 1) url = p + i, url_len = (size_t)len;
    if (key >> 3 == 2) value = p + i, value_len = (size_t)len;
    i += (size_t)len;
  }
  size_t nl = strlen(d->name);
  if (url == NULL || url_len <= nl || memcmp(url + url_len - nl, d->name, nl) != 0 ||
      url[url_len - nl - 1] != '/')
    return wg_error_set(err, EPROTO, "the server's answer is not an Any holding %s",
                        d->short_name);
  static const uint8_t empty[1];
  *out = protobuf_c_message_unpack(d, NULL, value_len, value ? value : empty);
  if (*out == NULL)
    return wg_error_set(err, EPROTO, "the server's %s does not decode", d->short_name);
  return 0;
}

/* ---- commands ---- */

static void set_bytes(protobuf_c_boolean *has, ProtobufCBinaryData *b, const void *data,
                      size_t len) {
  *has = data != NULL;
  b->data = (uint8_t *)data;
  b->len = data != NULL ? len : 0;
}

static void set_txn(protobuf_c_boolean *has, ProtobufCBinaryData *b, const wg_fsql_txn *t) {
  set_bytes(has, b, t ? t->id : NULL, t ? t->len : 0);
}

/* The metadata commands whose fields are catalog, db_schema, table (the key lookups). */
static int pack_keys(const struct wg_fsql_command *c, struct wg_buf *out, struct wg_error *err) {
  Arrow__Flight__Protocol__Sql__CommandGetPrimaryKeys pk =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_PRIMARY_KEYS__INIT;
  Arrow__Flight__Protocol__Sql__CommandGetExportedKeys ek =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_EXPORTED_KEYS__INIT;
  Arrow__Flight__Protocol__Sql__CommandGetImportedKeys ik =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_IMPORTED_KEYS__INIT;
  if (c->table == NULL) return wg_error_set(err, EINVAL, "a key lookup needs a table");
  char *cat = (char *)c->catalog, *sch = (char *)c->db_schema, *tab = (char *)c->table;
  if (c->kind == WG_FSQL_PRIMARY_KEYS) {
    pk.catalog = cat, pk.db_schema = sch, pk.table = tab;
    return pack_any(&pk.base, out, err);
  }
  if (c->kind == WG_FSQL_EXPORTED_KEYS) {
    ek.catalog = cat, ek.db_schema = sch, ek.table = tab;
    return pack_any(&ek.base, out, err);
  }
  ik.catalog = cat, ik.db_schema = sch, ik.table = tab;
  return pack_any(&ik.base, out, err);
}

static int pack_tables(const struct wg_fsql_command *c, struct wg_buf *out, struct wg_error *err) {
  Arrow__Flight__Protocol__Sql__CommandGetTables t =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_TABLES__INIT;
  t.catalog = (char *)c->catalog;
  t.db_schema_filter_pattern = (char *)c->db_schema;
  t.table_name_filter_pattern = (char *)c->table;
  while (c->table_types != NULL && c->table_types[t.n_table_types] != NULL)
    t.n_table_types++;
  t.table_types = (char **)c->table_types;
  t.has_include_schema = c->include_schema;
  t.include_schema = c->include_schema;
  return pack_any(&t.base, out, err);
}

/* The rest of the metadata commands. */
static int pack_meta(const struct wg_fsql_command *c, struct wg_buf *out, struct wg_error *err) {
  switch (c->kind) {
  case WG_FSQL_CATALOGS: {
    Arrow__Flight__Protocol__Sql__CommandGetCatalogs m =
        ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_CATALOGS__INIT;
    return pack_any(&m.base, out, err);
  }
  case WG_FSQL_DB_SCHEMAS: {
    Arrow__Flight__Protocol__Sql__CommandGetDbSchemas m =
        ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_DB_SCHEMAS__INIT;
    m.catalog = (char *)c->catalog;
    m.db_schema_filter_pattern = (char *)c->db_schema;
    return pack_any(&m.base, out, err);
  }
  case WG_FSQL_TABLE_TYPES: {
    Arrow__Flight__Protocol__Sql__CommandGetTableTypes m =
        ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_TABLE_TYPES__INIT;
    return pack_any(&m.base, out, err);
  }
  case WG_FSQL_SQL_INFO: {
    Arrow__Flight__Protocol__Sql__CommandGetSqlInfo m =
        ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_SQL_INFO__INIT;
    if (c->n_info > 0 && c->info == NULL) return wg_error_set(err, EINVAL, "n_info without info");
    m.n_info = c->n_info;
    m.info = (uint32_t *)c->info;
    return pack_any(&m.base, out, err);
  }
  case WG_FSQL_CROSS_REFERENCE: {
    Arrow__Flight__Protocol__Sql__CommandGetCrossReference m =
        ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_CROSS_REFERENCE__INIT;
    if (c->table == NULL || c->fk_table == NULL)
      return wg_error_set(err, EINVAL, "a cross reference needs table and fk_table");
    m.pk_catalog = (char *)c->catalog, m.pk_db_schema = (char *)c->db_schema;
    m.pk_table = (char *)c->table;
    m.fk_catalog = (char *)c->fk_catalog, m.fk_db_schema = (char *)c->fk_db_schema;
    m.fk_table = (char *)c->fk_table;
    return pack_any(&m.base, out, err);
  }
  case WG_FSQL_XDBC_TYPE_INFO: {
    Arrow__Flight__Protocol__Sql__CommandGetXdbcTypeInfo m =
        ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_XDBC_TYPE_INFO__INIT;
    m.has_data_type = c->has_data_type;
    m.data_type = c->data_type;
    return pack_any(&m.base, out, err);
  }
  default:
    return wg_error_set(err, EINVAL, "unknown wg_fsql_kind %d", (int)c->kind);
  }
}

/* The command as a packed Any, into out. */
static int pack_command(const struct wg_fsql_command *c, struct wg_buf *out,
                        struct wg_error *err) {
  switch (c->kind) {
  case WG_FSQL_STATEMENT: {
    if (c->sql == NULL) return wg_error_set(err, EINVAL, "a statement needs sql");
    Arrow__Flight__Protocol__Sql__CommandStatementQuery m =
        ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_QUERY__INIT;
    m.query = (char *)c->sql;
    set_txn(&m.has_transaction_id, &m.transaction_id, c->txn);
    return pack_any(&m.base, out, err);
  }
  case WG_FSQL_PREPARED: {
    if (c->prepared == NULL) return wg_error_set(err, EINVAL, "a prepared query needs prepared");
    Arrow__Flight__Protocol__Sql__CommandPreparedStatementQuery m =
        ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_PREPARED_STATEMENT_QUERY__INIT;
    set_bytes(&m.has_prepared_statement_handle, &m.prepared_statement_handle,
              c->prepared->handle, c->prepared->handle_len);
    return pack_any(&m.base, out, err);
  }
  case WG_FSQL_TABLES:
    return pack_tables(c, out, err);
  case WG_FSQL_PRIMARY_KEYS:
  case WG_FSQL_EXPORTED_KEYS:
  case WG_FSQL_IMPORTED_KEYS:
    return pack_keys(c, out, err);
  default:
    return pack_meta(c, out, err);
  }
}

/* ---- GetFlightInfo, DoGet, CancelFlightInfo ---- */

static int get_flight_info(wg_client *client, const struct wg_buf *cmd,
                           Arrow__Flight__Protocol__FlightInfo **out, struct wg_error *err,
                           int *grpc) {
  Arrow__Flight__Protocol__FlightDescriptor d = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
  d.cmd.data = cmd->data;
  d.cmd.len = (size_t)cmd->size;
  struct wg_rpc_client_call *call;
  WG_RETURN_NOT_OK(wg__client_unary_start(client, "GetFlightInfo", wg__client_timeout(client),
                                          &d.base, &call, err, grpc));
  grpc_byte_buffer *bb = NULL;
  ProtobufCMessage *m = NULL;
  int rc = wg_rpc_client_call_recv(call, &bb);
  if (rc == 0 && bb != NULL)
    rc = wg_flight_unpack(&arrow__flight__protocol__flight_info__descriptor, bb, &m, err);
  if (bb != NULL) grpc_byte_buffer_destroy(bb);
  rc = wg__client_finish(call, rc, false, err, grpc);
  wg_rpc_client_call_destroy(call);
  if (rc == 0 && m == NULL) {
    rc = wg_error_set(err, EPROTO, "GetFlightInfo answered OK without a FlightInfo");
    *grpc = wg__local_code(rc);
  }
  if (rc != 0 && m != NULL) {
    protobuf_c_message_free_unpacked(m, NULL);
    m = NULL;
  }
  *out = (Arrow__Flight__Protocol__FlightInfo *)m;
  return rc;
}

int wg_fsql_flight_info(wg_client *client, const struct wg_fsql_command *cmd, wg_fsql_info **out,
                 struct wg_status *status) {
  if (out != NULL) *out = NULL;
  if (client == NULL || cmd == NULL || out == NULL)
    return wg__status_invalid(status, "wg_fsql_flight_info needs a client, a command and out");
  struct wg_error err = {""};
  struct wg_buf b;
  wg_buf_init(&b);
  int grpc = 0;
  Arrow__Flight__Protocol__FlightInfo *fi = NULL;
  int rc = pack_command(cmd, &b, &err);
  if (rc == 0) rc = get_flight_info(client, &b, &fi, &err, &grpc);
  wg_buf_reset(&b);
  if (rc == 0 && (*out = calloc(1, sizeof(**out))) == NULL) {
    protobuf_c_message_free_unpacked(&fi->base, NULL);
    rc = wg_error_set(&err, ENOMEM, "out of memory");
  }
  if (rc == 0) (*out)->fi = fi;
  return wg__status_set(status, rc, grpc, err.message);
}

void wg_fsql_info_free(wg_fsql_info *info) {
  if (info == NULL) return;
  if (info->fi != NULL) protobuf_c_message_free_unpacked(&info->fi->base, NULL);
  free(info);
}

int wg_fsql_info_schema(const wg_fsql_info *info, struct ArrowSchema *out, int64_t *total_records,
                        int64_t *n_endpoints, struct wg_status *status) {
  if (info == NULL || out == NULL)
    return wg__status_invalid(status, "wg_fsql_info_schema needs info and out");
  struct wg_error err = {""};
  struct wg_bytes sb = {info->fi->schema.data, (int64_t)info->fi->schema.len};
  int rc = wg_flight_schema_parse(sb, out, &err);
  if (total_records != NULL) *total_records = info->fi->total_records;
  if (n_endpoints != NULL) *n_endpoints = (int64_t)info->fi->n_endpoint;
  return wg__status_set(status, rc, 0, err.message);
}

int wg_fsql_fetch(wg_client *client, const wg_fsql_info *info, struct ArrowArrayStream *out,
                  struct wg_status *status) {
  if (client == NULL || info == NULL || out == NULL)
    return wg__status_invalid(status, "wg_fsql_fetch needs a client, info and out");
  const Arrow__Flight__Protocol__FlightInfo *fi = info->fi;
  if (fi->n_endpoint == 1) { /* the usual case: the DoGet stream itself */
    const Arrow__Flight__Protocol__Ticket *t = fi->endpoint[0]->ticket;
    return wg_do_get(client, t ? t->ticket.data : NULL, t ? t->ticket.len : 0, out, status);
  }
  struct wg_bytes *tickets = calloc(fi->n_endpoint + 1, sizeof(*tickets));
  if (tickets == NULL) return wg__status_set(status, ENOMEM, 0, "out of memory");
  for (size_t i = 0; i < fi->n_endpoint; i++) {
    const Arrow__Flight__Protocol__Ticket *t = fi->endpoint[i]->ticket;
    tickets[i].data = t ? t->ticket.data : NULL;
    tickets[i].size = t ? (int64_t)t->ticket.len : 0;
  }
  struct wg_bytes schema = {fi->schema.data, (int64_t)fi->schema.len};
  int code = wg__do_get_all(client, tickets, fi->n_endpoint, schema, out, status);
  free(tickets);
  return code;
}

int wg_fsql_run(wg_client *client, const struct wg_fsql_command *cmd,
                struct ArrowArrayStream *out, struct wg_status *status) {
  if (out == NULL) return wg__status_invalid(status, "wg_fsql_run needs out");
  wg_fsql_info *info;
  int code = wg_fsql_flight_info(client, cmd, &info, status);
  if (code != 0) return code;
  code = wg_fsql_fetch(client, info, out, status);
  wg_fsql_info_free(info);
  return code;
}

/* Runs a DoAction whose one Result is unpacked as a `d` (in an Any when any) into *out. */
static int action_one(wg_client *client, const char *type, const struct wg_buf *body,
                      const ProtobufCMessageDescriptor *d, bool any, ProtobufCMessage **out,
                      struct wg_status *status) {
  struct wg_action_result r;
  *out = NULL;
  int code = wg_action(client, type, body->data, (size_t)body->size, &r, status);
  if (code != 0 || d == NULL) {
    wg_action_result_reset(&r);
    return code;
  }
  struct wg_error err = {""};
  int rc = 0;
  if (r.n < 1) {
    rc = wg_error_set(&err, EPROTO, "%s answered no result", type);
  } else if (any) {
    rc = unpack_any((const uint8_t *)r.bodies[0].data, r.bodies[0].size, d, out, &err);
  } else {
    *out = protobuf_c_message_unpack(d, NULL, r.bodies[0].size, (const uint8_t *)r.bodies[0].data);
    if (*out == NULL) rc = wg_error_set(&err, EPROTO, "%s: the result is not a %s", type, d->name);
  }
  wg_action_result_reset(&r);
  return wg__status_set(status, rc, 0, err.message);
}

int wg_fsql_cancel(wg_client *client, const wg_fsql_info *info, int *cancel_status,
                   struct wg_status *status) {
  if (cancel_status != NULL) *cancel_status = 0;
  if (client == NULL || info == NULL)
    return wg__status_invalid(status, "wg_fsql_cancel needs a client and info");
  Arrow__Flight__Protocol__CancelFlightInfoRequest req =
      ARROW__FLIGHT__PROTOCOL__CANCEL_FLIGHT_INFO_REQUEST__INIT;
  req.info = info->fi;
  struct wg_buf b;
  wg_buf_init(&b);
  size_t len = protobuf_c_message_get_packed_size(&req.base);
  if (wg_buf_reserve(&b, (int64_t)len + 1) != 0)
    return wg__status_set(status, ENOMEM, 0, "out of memory");
  protobuf_c_message_pack(&req.base, b.data);
  b.size = (int64_t)len;
  ProtobufCMessage *m;
  int code = action_one(client, "CancelFlightInfo", &b,
                        &arrow__flight__protocol__cancel_flight_info_result__descriptor, false, &m,
                        status);
  wg_buf_reset(&b);
  if (code == 0) {
    if (cancel_status != NULL)
      *cancel_status = (int)((Arrow__Flight__Protocol__CancelFlightInfoResult *)m)->status;
    protobuf_c_message_free_unpacked(m, NULL);
  }
  return code;
}

/* ---- DoPut commands: update, prepared statements' parameters, ingest ---- */

struct put_answer {
  int64_t count;        /* DoPutUpdateResult.record_count, -1 when absent */
  bool prepared;        /* the answer is a DoPutPreparedStatementResult */
  wg_fsql_prepared *ps; /* prepared: whose handle a new one replaces */
  int rc;
};

static void on_put_result(void *ctx, const struct wg_put_ack *ack) {
  struct put_answer *a = ctx;
  if (ack->app_metadata_len == 0) return;
  if (!a->prepared) {
    Arrow__Flight__Protocol__Sql__DoPutUpdateResult *r =
        arrow__flight__protocol__sql__do_put_update_result__unpack(NULL, ack->app_metadata_len,
                                                                    ack->app_metadata);
    if (r == NULL) return;
    if (r->has_record_count) a->count = (a->count < 0 ? 0 : a->count) + r->record_count;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return;
  }
  Arrow__Flight__Protocol__Sql__DoPutPreparedStatementResult *r =
      arrow__flight__protocol__sql__do_put_prepared_statement_result__unpack(
          NULL, ack->app_metadata_len, ack->app_metadata);
  if (r == NULL) return;
  if (r->has_prepared_statement_handle) {
    size_t n = r->prepared_statement_handle.len;
    uint8_t *h = malloc(n + 1);
    if (h == NULL) {
      a->rc = ENOMEM;
    } else {
      if (n > 0) memcpy(h, r->prepared_statement_handle.data, n);
      free(a->ps->handle);
      a->ps->handle = h;
      a->ps->handle_len = n;
    }
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* DoPut of m (packed in an Any) with the batches of in (may be NULL; consumed). */
static int put_command(wg_client *client, const ProtobufCMessage *m, struct ArrowArrayStream *in,
                       struct put_answer *a, struct wg_status *status) {
  struct wg_error err = {""};
  struct wg_buf b;
  wg_buf_init(&b);
  int rc = pack_any(m, &b, &err);
  if (rc != 0) {
    wg_stream_release(in);
    return wg__status_set(status, rc, 0, err.message);
  }
  int code = wg__client_put_cmd(client, b.data, (size_t)b.size, in, on_put_result, a, status);
  wg_buf_reset(&b);
  if (code == 0 && a->rc != 0) return wg__status_set(status, a->rc, 0, "out of memory");
  return code;
}

int wg_fsql_update(wg_client *client, const char *sql, wg_fsql_txn *txn, int64_t *count,
                   struct wg_status *status) {
  if (count != NULL) *count = -1;
  if (client == NULL || sql == NULL)
    return wg__status_invalid(status, "wg_fsql_update needs a client and SQL");
  Arrow__Flight__Protocol__Sql__CommandStatementUpdate m =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_UPDATE__INIT;
  m.query = (char *)sql;
  set_txn(&m.has_transaction_id, &m.transaction_id, txn);
  struct put_answer a = {.count = -1};
  int code = put_command(client, &m.base, NULL, &a, status);
  if (code == 0 && count != NULL) *count = a.count;
  return code;
}

/* Which options the ingest's TableDefinitionOptions carry (NULL when none). */
static Arrow__Flight__Protocol__Sql__CommandStatementIngest__TableDefinitionOptions *
table_options(const struct wg_fsql_ingest_options *o,
              Arrow__Flight__Protocol__Sql__CommandStatementIngest__TableDefinitionOptions *t) {
  if (o->if_not_exist == 0 && o->if_exists == 0) return NULL;
  t->has_if_not_exist = o->if_not_exist != 0;
  t->if_not_exist = o->if_not_exist;
  t->has_if_exists = o->if_exists != 0;
  t->if_exists = o->if_exists;
  return t;
}

int wg_fsql_ingest(wg_client *client, const char *table, const struct wg_fsql_ingest_options *o,
                   struct ArrowArrayStream *in, int64_t *count, struct wg_status *status) {
  if (count != NULL) *count = -1;
  struct wg_fsql_ingest_options defaults = {0};
  if (o == NULL) o = &defaults;
  if (in == NULL || in->release == NULL)
    return wg__status_invalid(status, "wg_fsql_ingest needs an input stream");
  size_t n_opts = 0;
  while (o->options != NULL && o->options[2 * n_opts] != NULL) {
    if (o->options[2 * n_opts + 1] == NULL) break;
    n_opts++;
  }
  bool odd = o->options != NULL && o->options[2 * n_opts] != NULL;
  Arrow__Flight__Protocol__Sql__CommandStatementIngest__OptionsEntry *entries =
      calloc(n_opts + 1, sizeof(*entries));
  Arrow__Flight__Protocol__Sql__CommandStatementIngest__OptionsEntry **ptrs =
      calloc(n_opts + 1, sizeof(*ptrs));
  if (client == NULL || table == NULL || odd || entries == NULL || ptrs == NULL) {
    free(entries);
    free(ptrs);
    wg_stream_release(in);
    if (entries == NULL || ptrs == NULL) return wg__status_set(status, ENOMEM, 0, "out of memory");
    return wg__status_invalid(status, "wg_fsql_ingest needs a client, a table and whole options");
  }
  Arrow__Flight__Protocol__Sql__CommandStatementIngest__TableDefinitionOptions t =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_INGEST__TABLE_DEFINITION_OPTIONS__INIT;
  Arrow__Flight__Protocol__Sql__CommandStatementIngest m =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_INGEST__INIT;
  m.table_definition_options = table_options(o, &t);
  m.table = (char *)table;
  m.schema = (char *)o->schema_name;
  m.catalog = (char *)o->catalog;
  m.has_temporary = o->temporary;
  m.temporary = o->temporary;
  set_txn(&m.has_transaction_id, &m.transaction_id, o->txn);
  for (size_t i = 0; i < n_opts; i++) {
    Arrow__Flight__Protocol__Sql__CommandStatementIngest__OptionsEntry e =
        ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_INGEST__OPTIONS_ENTRY__INIT;
    e.key = (char *)o->options[2 * i];
    e.value = (char *)o->options[2 * i + 1];
    entries[i] = e;
    ptrs[i] = &entries[i];
  }
  m.n_options = n_opts;
  m.options = ptrs;
  struct put_answer a = {.count = -1};
  int code = put_command(client, &m.base, in, &a, status);
  free(entries);
  free(ptrs);
  if (code == 0 && count != NULL) *count = a.count;
  return code;
}

/* ---- prepared statements ---- */

static void prepared_free(wg_fsql_prepared *p) {
  if (p == NULL) return;
  free(p->handle);
  wg_buf_reset(&p->dataset_schema);
  wg_buf_reset(&p->parameter_schema);
  free(p);
}

/* The prepared statement of a CreatePreparedStatement result (copied). */
static int prepared_from(const Arrow__Flight__Protocol__Sql__ActionCreatePreparedStatementResult *r,
                         wg_fsql_prepared **out, struct wg_error *err) {
  wg_fsql_prepared *p = calloc(1, sizeof(*p));
  if (p == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  wg_buf_init(&p->dataset_schema);
  wg_buf_init(&p->parameter_schema);
  size_t n = r->has_prepared_statement_handle ? r->prepared_statement_handle.len : 0;
  p->handle = malloc(n + 1);
  p->handle_len = n;
  p->is_update = r->has_is_update && r->is_update;
  int rc = p->handle == NULL ? ENOMEM : 0;
  if (rc == 0 && n > 0) memcpy(p->handle, r->prepared_statement_handle.data, n);
  if (rc == 0 && r->has_dataset_schema)
    rc = wg_buf_append(&p->dataset_schema, r->dataset_schema.data, (int64_t)r->dataset_schema.len);
  if (rc == 0 && r->has_parameter_schema)
    rc = wg_buf_append(&p->parameter_schema, r->parameter_schema.data,
                       (int64_t)r->parameter_schema.len);
  if (rc != 0) {
    prepared_free(p);
    return wg_error_set(err, ENOMEM, "out of memory for a prepared statement");
  }
  *out = p;
  return 0;
}

int wg_fsql_prepare(wg_client *client, const char *sql, wg_fsql_txn *txn, wg_fsql_prepared **out,
                    struct wg_status *status) {
  if (out != NULL) *out = NULL;
  if (client == NULL || sql == NULL || out == NULL)
    return wg__status_invalid(status, "wg_fsql_prepare needs a client, SQL and out");
  Arrow__Flight__Protocol__Sql__ActionCreatePreparedStatementRequest req =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_CREATE_PREPARED_STATEMENT_REQUEST__INIT;
  req.query = (char *)sql;
  set_txn(&req.has_transaction_id, &req.transaction_id, txn);
  struct wg_error err = {""};
  struct wg_buf b;
  wg_buf_init(&b);
  if (pack_any(&req.base, &b, &err) != 0) return wg__status_set(status, ENOMEM, 0, err.message);
  ProtobufCMessage *m;
  int code = action_one(
      client, "CreatePreparedStatement", &b,
      &arrow__flight__protocol__sql__action_create_prepared_statement_result__descriptor, true,
      &m, status);
  wg_buf_reset(&b);
  if (code != 0) return code;
  int rc = prepared_from((Arrow__Flight__Protocol__Sql__ActionCreatePreparedStatementResult *)m,
                         out, &err);
  protobuf_c_message_free_unpacked(m, NULL);
  return wg__status_set(status, rc, 0, err.message);
}

static int schema_copy(const struct wg_buf *b, struct ArrowSchema *out, struct wg_error *err) {
  if (out == NULL) return 0;
  out->release = NULL;
  if (b->size == 0) return 0;
  return wg_flight_schema_parse((struct wg_bytes){b->data, b->size}, out, err);
}

int wg_fsql_prepared_schemas(const wg_fsql_prepared *p, struct ArrowSchema *dataset,
                             struct ArrowSchema *parameters, bool *is_update,
                             struct wg_status *status) {
  if (dataset != NULL) dataset->release = NULL;
  if (parameters != NULL) parameters->release = NULL;
  if (p == NULL) return wg__status_invalid(status, "wg_fsql_prepared_schemas needs a statement");
  if (is_update != NULL) *is_update = p->is_update;
  struct wg_error err = {""};
  int rc = schema_copy(&p->dataset_schema, dataset, &err);
  if (rc == 0) rc = schema_copy(&p->parameter_schema, parameters, &err);
  if (rc != 0 && dataset != NULL) wg_schema_release(dataset);
  return wg__status_set(status, rc, 0, err.message);
}

int wg_fsql_bind(wg_client *client, wg_fsql_prepared *p, struct ArrowArrayStream *params,
                 struct wg_status *status) {
  if (params == NULL || params->release == NULL)
    return wg__status_invalid(status, "wg_fsql_bind needs a parameter stream");
  if (client == NULL || p == NULL) {
    wg_stream_release(params);
    return wg__status_invalid(status, "wg_fsql_bind needs a client and a statement");
  }
  Arrow__Flight__Protocol__Sql__CommandPreparedStatementQuery m =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_PREPARED_STATEMENT_QUERY__INIT;
  set_bytes(&m.has_prepared_statement_handle, &m.prepared_statement_handle, p->handle,
            p->handle_len);
  struct put_answer a = {.count = -1, .prepared = true, .ps = p};
  return put_command(client, &m.base, params, &a, status);
}

int wg_fsql_prepared_update(wg_client *client, wg_fsql_prepared *p,
                            struct ArrowArrayStream *params, int64_t *count,
                            struct wg_status *status) {
  if (count != NULL) *count = -1;
  if (client == NULL || p == NULL) {
    wg_stream_release(params);
    return wg__status_invalid(status, "wg_fsql_prepared_update needs a client and a statement");
  }
  Arrow__Flight__Protocol__Sql__CommandPreparedStatementUpdate m =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_PREPARED_STATEMENT_UPDATE__INIT;
  set_bytes(&m.has_prepared_statement_handle, &m.prepared_statement_handle, p->handle,
            p->handle_len);
  struct put_answer a = {.count = -1};
  int code = put_command(client, &m.base, params, &a, status);
  if (code == 0 && count != NULL) *count = a.count;
  return code;
}

int wg_fsql_close(wg_client *client, wg_fsql_prepared *p, struct wg_status *status) {
  if (p == NULL) return wg__status_set(status, 0, 0, NULL);
  if (client == NULL) {
    prepared_free(p);
    return wg__status_invalid(status, "wg_fsql_close needs a client");
  }
  Arrow__Flight__Protocol__Sql__ActionClosePreparedStatementRequest req =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_CLOSE_PREPARED_STATEMENT_REQUEST__INIT;
  set_bytes(&req.has_prepared_statement_handle, &req.prepared_statement_handle, p->handle,
            p->handle_len);
  struct wg_error err = {""};
  struct wg_buf b;
  wg_buf_init(&b);
  int code;
  if (pack_any(&req.base, &b, &err) != 0) {
    code = wg__status_set(status, ENOMEM, 0, err.message);
  } else {
    ProtobufCMessage *m;
    code = action_one(client, "ClosePreparedStatement", &b, NULL, true, &m, status);
  }
  wg_buf_reset(&b);
  prepared_free(p);
  return code;
}

/* ---- transactions ---- */

int wg_fsql_begin(wg_client *client, wg_fsql_txn **out, struct wg_status *status) {
  if (out != NULL) *out = NULL;
  if (client == NULL || out == NULL)
    return wg__status_invalid(status, "wg_fsql_begin needs a client and out");
  Arrow__Flight__Protocol__Sql__ActionBeginTransactionRequest req =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_BEGIN_TRANSACTION_REQUEST__INIT;
  struct wg_error err = {""};
  struct wg_buf b;
  wg_buf_init(&b);
  if (pack_any(&req.base, &b, &err) != 0) return wg__status_set(status, ENOMEM, 0, err.message);
  ProtobufCMessage *m;
  int code =
      action_one(client, "BeginTransaction", &b,
                 &arrow__flight__protocol__sql__action_begin_transaction_result__descriptor, true,
                 &m, status);
  wg_buf_reset(&b);
  if (code != 0) return code;
  const Arrow__Flight__Protocol__Sql__ActionBeginTransactionResult *r =
      (const Arrow__Flight__Protocol__Sql__ActionBeginTransactionResult *)m;
  int rc = 0;
  if (!r->has_transaction_id || r->transaction_id.len == 0) {
    rc = wg_error_set(&err, EPROTO, "BeginTransaction answered no transaction id");
  } else {
    wg_fsql_txn *t = calloc(1, sizeof(*t));
    if (t != NULL) t->id = malloc(r->transaction_id.len);
    if (t == NULL || t->id == NULL) {
      free(t);
      rc = wg_error_set(&err, ENOMEM, "out of memory");
    } else {
      memcpy(t->id, r->transaction_id.data, r->transaction_id.len);
      t->len = r->transaction_id.len;
      *out = t;
    }
  }
  protobuf_c_message_free_unpacked(m, NULL);
  return wg__status_set(status, rc, 0, err.message);
}

#define END(x)                                                                                     \
  ARROW__FLIGHT__PROTOCOL__SQL__ACTION_END_TRANSACTION_REQUEST__END_TRANSACTION__END_TRANSACTION_##x

static int end_txn(wg_client *client, wg_fsql_txn *txn, bool commit, struct wg_status *status) {
  if (client == NULL || txn == NULL) {
    if (txn != NULL) free(txn->id);
    free(txn);
    return wg__status_invalid(status, "ending a transaction needs a client and the transaction");
  }
  Arrow__Flight__Protocol__Sql__ActionEndTransactionRequest req =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_END_TRANSACTION_REQUEST__INIT;
  set_txn(&req.has_transaction_id, &req.transaction_id, txn);
  req.has_action = 1;
  req.action = commit ? END(COMMIT) : END(ROLLBACK);
  struct wg_error err = {""};
  struct wg_buf b;
  wg_buf_init(&b);
  int code;
  if (pack_any(&req.base, &b, &err) != 0) {
    code = wg__status_set(status, ENOMEM, 0, err.message);
  } else {
    ProtobufCMessage *m;
    code = action_one(client, "EndTransaction", &b, NULL, true, &m, status);
  }
  wg_buf_reset(&b);
  free(txn->id);
  free(txn);
  return code;
}

int wg_fsql_commit(wg_client *client, wg_fsql_txn *txn, struct wg_status *status) {
  return end_txn(client, txn, true, status);
}

int wg_fsql_rollback(wg_client *client, wg_fsql_txn *txn, struct wg_status *status) {
  return end_txn(client, txn, false, status);
}
