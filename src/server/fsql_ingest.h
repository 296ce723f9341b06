/* wigeon: Flight SQL's CommandStatementIngest, the command's side (fsql_ingest.c): its options
 * read and checked, and its answer. The data goes through do_put.c's own path (group commit,
 * streaming, idempotency keys), which calls these. Not for use outside src/server. */
#ifndef WG_SERVER_FSQL_INGEST_H
#define WG_SERVER_FSQL_INGEST_H

#include "server/fsql.h"

/* A CommandStatementIngest, unpacked and checked. */
struct wg__ingest_cmd {
  ProtobufCMessage *msg;   /* owned: the Arrow__Flight__Protocol__Sql__CommandStatementIngest */
  const char *schema_name; /* borrowed from msg; NULL: the default schema */
  const char *table;       /* borrowed from msg, never empty */
  const char *catalog;     /* borrowed from msg; NULL: none named */
  struct wg_engine_ingest_opts opts; /* deferred and in_txn left false: do_put.c decides */
  bool has_txn;            /* a non-empty transaction id */
  ProtobufCBinaryData txn_id; /* borrowed from msg */
  const char *key;         /* options' "idempotency_key", borrowed; NULL for none */
};

/* Reads the ingest command of a FLIGHT_SQL request r (its type_url already says
 * CommandStatementIngest). INVALID_ARGUMENT (EINVAL) naming what is wrong: bytes that are not the
 * message, a name that is not UTF-8 or holds a NUL byte, no table, no or UNSPECIFIED table
 * definition options (the spec: servers should error), an unknown option key, `temporary`
 * without a transaction id or with a schema. On success *out owns the message (wg__fsql_ingest_reset). */
int wg__fsql_ingest_parse(const struct wg__request *r, struct wg__ingest_cmd *out,
                          struct wg_error *err);
void wg__fsql_ingest_reset(struct wg__ingest_cmd *cmd);
/* INVALID_ARGUMENT unless the catalog named is empty or this database's name (one database). */
int wg__fsql_ingest_check_catalog(struct wg_engine_conn *c, const struct wg__ingest_cmd *cmd,
                                  struct wg_error *err);
/* The answer: one PutResult whose app_metadata is DoPutUpdateResult{record_count = rows}. */
int wg__fsql_ingest_ack(struct wg_rpc_call *call, int64_t rows, struct wg_error *err);

#endif
