/* wigeon: DoPut. The descriptor path names the table ([table] or [schema, table]); a missing table
 * is created from the stream's Arrow schema; columns are matched by name. The whole stream is one
 * transaction: every batch is appended inside it and the commit happens when the client has sent
 * its last message, so a reader never sees part of a put and a failed put leaves nothing.
 *
 * Acknowledgement: after the commit, and only then, the server sends one PutResult whose
 * app_metadata is the JSON text {"rows": N, "table": "NAME"}: N rows of this stream committed.
 *
 * Small puts (up to group_commit_bytes received, up to WG_GROUP_MAX_COLUMNS columns) are kept
 * decoded and validated in this thread, then committed by the group committer together with the
 * other puts waiting (group_commit.c): one transaction and one fsync for the group, still all or
 * nothing per put. A put that grows past that size switches to its own transaction and streams
 * into it; a wider one streams from the start: big and wide puts never hold up a group.
 *
 * Flight SQL's CommandStatementIngest (a CMD descriptor) takes this same path: its options are
 * read by fsql_ingest.c (if_not_exist CREATE/FAIL, if_exists FAIL/APPEND/REPLACE, schema, catalog,
 * the "idempotency_key" option) and handed to the engine with the table; it is answered with
 * DoPutUpdateResult{record_count} instead of the JSON. A REPLACE never waits for a group: its DROP
 * and CREATE share the transaction of its rows, so it streams.
 *
 * A schema of more than max_columns fields (nested ones included) is refused with
 * RESOURCE_EXHAUSTED by the IPC decoder, before its fields are decoded.
 *
 *   recv FlightData(descriptor + Schema) -> acquire -> ingest_begin
 *   { recv FlightData(DictionaryBatch | RecordBatch) -> decode -> ingest_append }*
 *   half-close -> call still alive? -> ingest_commit -> send PutResult -> finish OK
 *   any error (bad frame, bad IPC, type mismatch, cancel) -> ingest_abort -> finish with status
 *
 * Cancellation: a put commits only if its client half-closed AND its call is not cancelled when
 * the commit starts (checked here for the streaming path, by the committer right before the
 * group's transaction for the group path). A cancel that arrives during the COMMIT itself cannot
 * be undone: the client then gets no acknowledgement for rows that are committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/text.h"
#include "server/fsql_ingest.h"
#include "server/roles.h"

struct put {
  struct wg_server *s;
  struct wg_rpc_call *call;
  struct wg_ipc_decoder *dec;
  struct wg_engine_conn *conn;
  struct wg_engine_ingest *ing;
  Arrow__Flight__Protocol__FlightDescriptor *desc;
  struct wg__table_ref table;
  bool deferred; /* kept for the group committer, no transaction open yet */
  int64_t bytes; /* received so far */
  int64_t columns;
  char *key;     /* idempotency key, NULL for none */
  bool batches_seen;
  bool duplicate;    /* the key was committed before: drain the stream, append nothing */
  int64_t dup_rows;  /* the row count it was committed with */
  struct wg__request fsql; /* a Flight SQL command's request (kind NONE for a table put) */
  bool served;             /* a Flight SQL put, served whole by fsql.c (wg__fsql_put) */
  bool ingest;             /* a CommandStatementIngest: this path, with its options */
  struct wg__ingest_cmd icmd;
  struct wg__fsql_conn txn; /* an ingest's transaction's connection (conn is it then) */
};

/* The status of a stream the IPC decoder refused: out of memory stays ENOMEM and malformed
 * data stays EPROTO; an IPC feature the decoder does not support (ENOTSUP) is the client's bad
 * input here, INVALID_ARGUMENT as docs/server.md says ("malformed frames or IPC"), not
 * UNIMPLEMENTED. Both EPROTO and EINVAL are INVALID_ARGUMENT on the wire. */
static int decode_status(int rc) {
  return rc == ENOMEM || rc == EPROTO ? rc : EINVAL;
}

/* The idempotency key of a FlightData's app_metadata: a JSON object {"idempotency_key": "KEY"}.
 * Other app_metadata (not JSON, or without the member) carries no key and is ignored. */
static int key_from_metadata(struct wg_bytes md, char **out, struct wg_error *err) {
  *out = NULL;
  if (md.size == 0 || md.data[0] != '{') return 0;
  cJSON *j = cJSON_ParseWithLength((const char *)md.data, (size_t)md.size);
  if (j == NULL) return 0;
  const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "idempotency_key");
  int rc = 0;
  if (k == NULL) {
  } else if (!cJSON_IsString(k) || k->valuestring[0] == '\0') {
    rc = wg_error_set(err, EINVAL, "idempotency_key must be a non-empty string");
  } else if (strlen(k->valuestring) > WG_ENGINE_MAX_KEY_BYTES) {
    rc = wg_error_set(err, EINVAL, "idempotency_key of %zu bytes: at most %d",
                      strlen(k->valuestring), WG_ENGINE_MAX_KEY_BYTES);
  } else if ((*out = strdup(k->valuestring)) == NULL) {
    rc = wg_error_set(err, ENOMEM, "out of memory");
  }
  cJSON_Delete(j);
  return rc;
}

/* The key of the header WG_SERVER_KEY_HEADER, if the client sent one. */
static int key_from_header(struct put *p, struct wg_error *err) {
  int64_t len = 0;
  const char *v = wg_rpc_call_metadata(p->call, WG_SERVER_KEY_HEADER, &len);
  if (v == NULL) return 0;
  const char *why;
  if (len == 0 || len > WG_ENGINE_MAX_KEY_BYTES || !wg_text_name_ok((const uint8_t *)v, (size_t)len, &why))
    return wg_error_set(err, EINVAL, "header %s: 1 to %d bytes of UTF-8 text", WG_SERVER_KEY_HEADER,
                        WG_ENGINE_MAX_KEY_BYTES);
  p->key = strndup(v, (size_t)len);
  return p->key == NULL ? wg_error_set(err, ENOMEM, "out of memory") : 0;
}

/* Once the key is known (before any batch is appended): a key committed before makes this put a
 * duplicate, which appends nothing; else the ingest records the key in its commit. */
static int use_key(struct put *p, struct wg_error *err) {
  bool found = false;
  WG_RETURN_NOT_OK(wg_engine_put_key_find(p->conn, p->key, &p->dup_rows, &found, err));
  if (found) {
    p->duplicate = true;
    wg_engine_ingest_abort(p->ing);
    p->ing = NULL;
    return 0;
  }
  return wg_engine_ingest_set_key(p->ing, p->key, err);
}

/* Receives the next FlightData; *done at the end of the client's stream. */
static int recv_data(struct put *p, struct wg_flight_data *fd, bool *done, struct wg_error *err) {
  grpc_byte_buffer *bb = NULL;
  *done = false;
  int rc = wg_rpc_call_recv(p->call, &bb);
  if (rc != 0) return wg_rpc_call_error(p->call, rc, "DoPut", err);
  if (bb == NULL) {
    /* A cancel can complete the pending receive with "end of stream" as a half-close would;
     * the cancelled flag, if it is already known, tells the two apart. */
    if (wg_rpc_call_cancelled(p->call))
      return wg_rpc_call_error(p->call, ECANCELED, "DoPut", err);
    *done = true;
    return 0;
  }
  int64_t size = (int64_t)grpc_byte_buffer_length(bb);
  p->bytes += size;
  atomic_fetch_add_explicit(&p->s->stats.bytes_in, size, memory_order_relaxed);
  rc = wg_flight_data_decode(bb, fd, err);
  grpc_byte_buffer_destroy(bb);
  return rc;
}

/* The table the descriptor names. A CMD descriptor is refused: a Flight SQL command as
 * UNIMPLEMENTED naming it, anything else as the INVALID_ARGUMENT it always was. */
static int table_from_descriptor(struct put *p, struct wg_error *err) {
  struct wg__request req;
  int rc = wg__request_from_descriptor(p->s, p->desc, &req, err);
  if (rc == 0 && req.kind == WG__REQUEST_TABLE) {
    p->table = req.table; /* borrowed from p->desc */
  } else if (rc == 0 && req.kind == WG__REQUEST_FLIGHT_SQL) {
    p->fsql = req; /* kept for fsql.c: begin hands the put over */
    return 0;
  } else if (rc != ENOMEM && p->desc->type ==
                                 ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD) {
    rc = wg_error_set(err, EINVAL, "expected a PATH descriptor ([table] or [schema, table])");
  }
  wg__request_reset(&req);
  return rc;
}


/* Decodes the first message's Schema into the put's decoder: EINVAL when it holds something else,
 * EBUSY over --max-columns, the decoder's own code (decode_status) otherwise. */
static int first_schema(struct put *p, const struct wg_flight_data *fd, struct wg_error *err) {
  enum wg_ipc_message_type type;
  struct ArrowArray unused;
  int rc = wg_ipc_decoder_decode(p->dec, fd->data_header, fd->body, &type, &unused, err);
  if (rc == E2BIG)
    return wg_error_set(err, EBUSY,
                        "the put's schema has more than %lld columns (nested fields included), "
                        "this server's limit (--max-columns)",
                        (long long)p->s->options.max_columns);
  if (rc != 0) return wg_error_prefix(err, decode_status(rc), "bad schema message");
  if (type == WG_IPC_MESSAGE_SCHEMA) return 0;
  if (type == WG_IPC_MESSAGE_RECORD_BATCH) wg_array_release(&unused);
  return wg_error_set(err, EINVAL, "the first DoPut message must hold a Schema, not type %d", type);
}

/* A CommandStatementIngest: its options read (fsql_ingest.c), its table taken as a PATH's. With
 * a transaction id it runs on the transaction's pinned connection (NOT_FOUND for an unknown id),
 * inside that transaction: not group-committed, committed (or not) with the transaction, which
 * a failed ingest aborts (engine.h, in_txn). */
static int ingest_command(struct put *p, struct wg_error *err) {
  p->ingest = true;
  WG_RETURN_NOT_OK(wg__fsql_ingest_parse(&p->fsql, &p->icmd, err));
  p->table.schema_name = p->icmd.schema_name;
  p->table.table = p->icmd.table;
  if (!p->icmd.has_txn) return 0;
  WG_RETURN_NOT_OK(wg__fsql_conn_acquire(p->s, p->call, true, p->icmd.txn_id, &p->txn, err));
  p->icmd.opts.in_txn = p->txn.txn != NULL;
  if (p->icmd.opts.temporary && !p->icmd.opts.in_txn)
    return wg_error_set(err, EINVAL, "CommandStatementIngest: temporary tables need a transaction");
  return 0;
}

static int begin(struct put *p, struct wg_error *err) {
  struct wg_flight_data fd = {0};
  bool done;
  WG_RETURN_NOT_OK(recv_data(p, &fd, &done, err));
  int rc = 0;
  if (done) {
    rc = wg_error_set(err, EINVAL, "DoPut stream ended before its schema");
  } else if (fd.descriptor.size == 0) {
    rc = wg_error_set(err, EINVAL, "the first DoPut message carries no flight descriptor");
  } else {
    rc = wg_flight_descriptor_unpack(fd.descriptor.data, (size_t)fd.descriptor.size, &p->desc,
                                     err);
  }
  if (rc == 0) rc = table_from_descriptor(p, err);
  bool is_ingest = rc == 0 && p->fsql.kind == WG__REQUEST_FLIGHT_SQL &&
                   strcmp(p->fsql.type_url, WG_FLIGHT_SQL_TYPE_PREFIX "CommandStatementIngest") == 0;
  /* a put writes (and may create its table): write; other Flight SQL commands say their own */
  if (rc == 0 && (p->fsql.kind != WG__REQUEST_FLIGHT_SQL || is_ingest))
    rc = wg__role_require(p->call, WG_ROLE_WRITE,
                          is_ingest ? "Flight SQL CommandStatementIngest" : "DoPut", err);
  if (rc == 0 && is_ingest) {
    rc = ingest_command(p, err); /* then the same path as a put to a PATH */
  } else if (rc == 0 && p->fsql.kind == WG__REQUEST_FLIGHT_SQL) {
    /* a Flight SQL command other than an ingest: fsql.c reads the rest and answers */
    p->served = true;
    rc = wg__fsql_put(p->s, p->call, &p->fsql, &fd, p->dec, err);
    wg_flight_data_reset(&fd);
    return rc;
  }
  if (rc == 0) rc = key_from_header(p, err);
  if (rc == 0 && p->key == NULL && p->icmd.key != NULL && (p->key = strdup(p->icmd.key)) == NULL)
    rc = wg_error_set(err, ENOMEM, "out of memory");
  if (rc == 0 && p->key == NULL) rc = key_from_metadata(fd.app_metadata, &p->key, err);
  if (rc == 0 && fd.data_header.size == 0)
    rc = wg_error_set(err, EINVAL, "the first DoPut message carries no schema");
  if (rc == 0) rc = first_schema(p, &fd, err); /* only a decode failure blames the schema */
  wg_flight_data_reset(&fd);
  if (rc != 0) return rc;
  struct ArrowSchema schema;
  WG_RETURN_NOT_OK(wg_ipc_decoder_schema(p->dec, &schema, err));
  if (p->txn.conn != NULL) {
    p->conn = p->txn.conn; /* given back through wg__fsql_conn_release */
  } else {
    rc = wg_engine_acquire(p->s->engine, &p->conn, err);
  }
  /* from now on a cancel interrupts the connection: a wide put's begin is the expensive part */
  if (rc == 0) wg_rpc_call_set_cancel_hook(p->call, wg__server_interrupt_hook, p->conn);
  p->columns = schema.n_children;
  /* a REPLACE streams in its own transaction: its DROP and CREATE commit with its rows */
  p->deferred = p->s->options.group_commit_bytes > 0 && p->columns <= WG_GROUP_MAX_COLUMNS &&
                p->icmd.opts.if_exists != WG_ENGINE_IF_EXISTS_REPLACE && !p->icmd.opts.in_txn;
  if (rc == 0 && p->ingest) rc = wg__fsql_ingest_check_catalog(p->conn, &p->icmd, err);
  struct wg_engine_ingest_opts o = p->icmd.opts; /* a plain put's: {0} */
  o.deferred = p->deferred;
  if (rc == 0)
    rc = wg_engine_ingest_begin_opts(p->conn, p->table.schema_name, p->table.table, &schema, &o,
                                     &p->ing, err);
  wg_schema_release(&schema);
  if (rc == 0 && p->key != NULL) rc = use_key(p, err);
  return rc;
}

static int append_all(struct put *p, struct wg_error *err) {
  for (;;) {
    struct wg_flight_data fd = {0};
    bool done;
    WG_RETURN_NOT_OK(recv_data(p, &fd, &done, err));
    if (done) return 0;
    if (p->duplicate) { /* drained: the put was committed before */
      wg_flight_data_reset(&fd);
      continue;
    }
    if (p->key == NULL && !p->batches_seen && fd.app_metadata.size > 0) {
      /* pyarrow's write_with_metadata puts app_metadata on a batch, not on the schema */
      int rc = key_from_metadata(fd.app_metadata, &p->key, err);
      if (rc == 0 && p->key != NULL) rc = use_key(p, err);
      if (rc != 0 || p->duplicate) {
        wg_flight_data_reset(&fd);
        if (rc != 0) return rc;
        continue;
      }
    }
    if (fd.data_header.size == 0) { /* metadata-only message: nothing to ingest */
      wg_flight_data_reset(&fd);
      continue;
    }
    enum wg_ipc_message_type type;
    struct ArrowArray batch;
    int rc = wg_ipc_decoder_decode(p->dec, fd.data_header, fd.body, &type, &batch, err);
    wg_flight_data_reset(&fd); /* the batch keeps its own reference on the body */
    if (rc != 0) return wg_error_prefix(err, decode_status(rc), "bad IPC message");
    if (type == WG_IPC_MESSAGE_RECORD_BATCH) {
      p->batches_seen = true;
      int64_t rows = batch.length;
      WG_RETURN_NOT_OK(wg_engine_ingest_append(p->ing, &batch, err));
      atomic_fetch_add_explicit(&p->s->stats.rows_in, rows, memory_order_relaxed);
    }
    if (p->deferred && p->bytes > p->s->options.group_commit_bytes) { /* too big to keep */
      WG_RETURN_NOT_OK(wg_engine_ingest_stream(p->ing, err));
      p->deferred = false;
    }
  }
}

static int acknowledge(struct put *p, int64_t rows, struct wg_error *err) {
  cJSON *o = cJSON_CreateObject();
  if (o != NULL) {
    wg__server_json_int(o, "rows", rows);
    if (p->table.schema_name != NULL) cJSON_AddStringToObject(o, "schema", p->table.schema_name);
    cJSON_AddStringToObject(o, "table", p->table.table);
    if (p->duplicate) cJSON_AddTrueToObject(o, "duplicate");
  }
  char *json = wg__server_json_take(o);
  if (json == NULL) return wg_error_set(err, ENOMEM, "out of memory for the acknowledgement");
  Arrow__Flight__Protocol__PutResult r = ARROW__FLIGHT__PROTOCOL__PUT_RESULT__INIT;
  r.app_metadata.data = (uint8_t *)json;
  r.app_metadata.len = strlen(json);
  int rc = wg__server_send_message(p->call, &r.base, err);
  cJSON_free(json);
  return rc;
}

/* A keyed put whose commit failed on the key (EEXIST) or in a conflict (EAGAIN: another
 * transaction wrote the same key): if its key is recorded now, another put with the same key (a
 * retry racing the original) committed first, and this one is its duplicate. The other may still
 * be committing: looked for a few times over 100 ms; if it does not show, the put fails as it
 * did (ABORTED is "retry"). */
static bool committed_by_another(struct put *p) {
  if (p->key == NULL) return false;
  struct wg_error e;
  bool found = false;
  bool own = p->conn == NULL;
  if (own && wg_engine_acquire(p->s->engine, &p->conn, &e) != 0) return false;
  int rc = 0;
  for (int i = 0; i < 5 && rc == 0 && !found; i++) {
    if (i > 0) nanosleep(&(struct timespec){0, 20000000L}, NULL);
    rc = wg_engine_put_key_find(p->conn, p->key, &p->dup_rows, &found, &e);
  }
  if (own) {
    wg_engine_release(p->s->engine, p->conn);
    p->conn = NULL;
  }
  p->duplicate = rc == 0 && found;
  return p->duplicate;
}

void wg__server_do_put(struct wg_server *s, struct wg_rpc_call *call) {
  struct wg_error err = {""};
  struct put p = {.s = s, .call = call};
  /* A compressed message may decompress to what an uncompressed one may hold (the largest
   * message), whatever its ratio to the compressed body: a put of very compressible data (zeros,
   * one repeated value) is legitimate and costs no more than the same bytes sent uncompressed. */
  struct wg_ipc_limits limits = {.max_fields = s->options.max_columns,
                                 .max_decompressed_size = s->options.max_message_bytes,
                                 .max_decompression_ratio = INT64_MAX};
  int rc = wg_ipc_decoder_create(&p.dec, &limits, &err);
  if (rc == 0) rc = begin(&p, &err);
  if (rc == 0 && !p.served) rc = append_all(&p, &err);
  wg_rpc_call_set_cancel_hook(call, NULL, NULL); /* set by begin once it had a connection */
  int64_t rows = 0;
  if (p.served) {
    /* answered by fsql.c */
  } else if (rc == 0 && p.duplicate) {
    rows = p.dup_rows;
  } else if (rc == 0 && wg_rpc_call_cancelled(call)) {
    rc = wg_rpc_call_error(call, ECANCELED, "DoPut, before its commit", &err);
  } else if (rc == 0 && (rc = wg_engine_check_room(s->engine, p.bytes, &err)) != 0) {
    /* the disk is too full for this put and the checkpoint after it: nothing is kept */
  } else if (rc == 0 && p.deferred) {
    /* The committer has its own connection: give ours back before waiting for the group. */
    wg_engine_release(s->engine, p.conn);
    p.conn = NULL;
    rc = wg__committer_commit(&s->committer, p.ing, call, p.bytes, p.columns, &rows, &err);
    p.ing = NULL;
  } else if (rc == 0) {
    rc = wg_engine_ingest_commit(p.ing, &rows, &err);
    p.ing = NULL;
  }
  if ((rc == EEXIST || rc == EAGAIN) && committed_by_another(&p)) {
    rc = 0;
    rows = p.dup_rows;
  }
  if (rc == 0 && !p.served) {
    if (!p.duplicate) atomic_fetch_add_explicit(&s->stats.puts, 1, memory_order_relaxed);
    rc = p.ingest ? wg__fsql_ingest_ack(call, rows, &err) : acknowledge(&p, rows, &err);
  }
  if (p.ing != NULL) wg_engine_ingest_abort(p.ing);
  if (p.conn != NULL && p.conn == p.txn.conn)
    wg__fsql_conn_release(s, &p.txn);
  else if (p.conn != NULL)
    wg_engine_release(s->engine, p.conn);
  if (p.txn.conn != NULL && p.conn == NULL) wg__fsql_conn_release(s, &p.txn); /* never used */
  if (p.desc != NULL) protobuf_c_message_free_unpacked(&p.desc->base, NULL);
  free(p.key);
  wg__fsql_ingest_reset(&p.icmd);
  wg__request_reset(&p.fsql);
  wg_ipc_decoder_destroy(p.dec);
  wg__server_finish(s, call, rc, &err);
}
