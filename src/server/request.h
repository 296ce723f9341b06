/* wigeon: what a call asks for, read once from its ticket, descriptor or action body (request.c).
 * The handlers take a struct wg__request and never parse request bytes themselves. Not for use
 * outside src/server. */
#ifndef WG_SERVER_REQUEST_H
#define WG_SERVER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "flight/flight.h"

struct wg_server;

/* A table named by a descriptor path [table] or [schema, table]. */
struct wg__table_ref {
  const char *schema_name; /* NULL = main */
  const char *table;
};

enum wg__request_kind {
  WG__REQUEST_NONE = 0,
  WG__REQUEST_SQL,        /* UTF-8 SQL text: a ticket, a CMD descriptor */
  WG__REQUEST_OPAQUE,     /* reserved: a ticket of our own making (none is issued yet) */
  WG__REQUEST_TABLE,      /* a PATH descriptor: [table] or [schema, table] */
  WG__REQUEST_FLIGHT_SQL, /* a Flight SQL command: a google.protobuf.Any, not served yet */
  WG__REQUEST_TAIL,       /* a live tail: a DoGet ticket of JSON {"tail": ...} (docs/tail.md) */
};

/* Where a live tail starts. */
enum wg__tail_from {
  WG__TAIL_FROM_BEGINNING = 0, /* the rows there are now, then every later put (the default) */
  WG__TAIL_FROM_NOW,           /* only puts committed after the subscription */
  WG__TAIL_FROM_SEQUENCE,      /* the puts after `from_sequence` (a resume), from the history */
};

/* A live tail's ticket, checked (not yet against the database): the table, an optional WHERE and
 * column list, where to start. Owned by the request. */
struct wg__tail_request {
  char *schema_name; /* NULL = main */
  char *table;
  char *where;       /* SQL boolean expression, or NULL */
  char **columns;    /* n_columns names, or NULL for all */
  int n_columns;
  enum wg__tail_from from;
  uint64_t from_sequence;
};

struct wg__request {
  enum wg__request_kind kind;
  char *sql;                  /* SQL: the checked text, NUL-terminated, owned */
  struct wg__table_ref table; /* TABLE: borrowed from the descriptor, which must outlive it */
  char *type_url;             /* FLIGHT_SQL: the Any's type_url, owned */
  uint8_t *value;             /* FLIGHT_SQL: the Any's value (the command's bytes), owned */
  size_t value_len;
  struct wg__tail_request tail; /* TAIL */
};

/* The prefix of every Flight SQL command's type_url. */
#define WG_FLIGHT_SQL_TYPE_PREFIX "type.googleapis.com/arrow.flight.protocol.sql."

/* The request of a DoGet ticket: FLIGHT_SQL, TAIL or SQL (see request.c for the rule). 0, EINVAL (empty,
 * a NUL byte, not UTF-8), EBUSY (over --max-sql-bytes), ENOMEM. *out is reset first and owns what
 * it holds on success; on error it holds nothing. */
int wg__request_from_ticket(const struct wg_server *s, const ProtobufCBinaryData *ticket,
                            struct wg__request *out, struct wg_error *err);
/* The request of a FlightDescriptor (NULL: EINVAL): CMD -> FLIGHT_SQL or SQL as a ticket, PATH
 * (and anything not CMD) -> TABLE, checked by wg__server_table_ref. Same codes and ownership. */
int wg__request_from_descriptor(const struct wg_server *s,
                                const Arrow__Flight__Protocol__FlightDescriptor *d,
                                struct wg__request *out, struct wg_error *err);
/* Frees what the request owns; safe twice. */
void wg__request_reset(struct wg__request *r);
/* ENOTSUP (UNIMPLEMENTED) for a request kind the RPC `rpc` does not serve, naming it (a Flight SQL
 * command by its message name); EINVAL for a table path where SQL is wanted and back. */
int wg__request_refuse(const struct wg__request *r, const char *rpc, struct wg_error *err);

/* How wg__request_text checks request text. */
enum wg__text_rule {
  WG__TEXT_SQL,  /* not empty, at most --max-sql-bytes (EBUSY), no NUL, UTF-8 */
  WG__TEXT_NAME, /* no NUL, UTF-8; may be empty */
};
/* Request bytes (an action body, a criteria) as a malloc'ed C string in *out (the caller frees
 * it; NULL on error). `what` names the field in messages. EINVAL, EBUSY, ENOMEM. */
int wg__request_text(const struct wg_server *s, const uint8_t *data, size_t len,
                     enum wg__text_rule rule, const char *what, char **out, struct wg_error *err);

/* Parses a JSON request (text as wg__request_text gave it) strictly: one value and nothing after
 * it but white space, no "\u0000" escape (cJSON would cut the string there, so that
 * "events\u0000junk" named events), no object with a key twice. NULL (err says why, EINVAL or
 * ENOMEM) or the tree, which the caller frees with cJSON_Delete. */
struct cJSON *wg__request_json(const char *text, const char *what, struct wg_error *err);

/* Checks a descriptor's path: [table] or [schema, table], neither empty. EINVAL otherwise. */
int wg__server_table_ref(const Arrow__Flight__Protocol__FlightDescriptor *d,
                         struct wg__table_ref *out, struct wg_error *err);
/* SELECT * FROM "schema"."table" (malloc'ed; NULL when out of memory), the ticket that reads a
 * table. */
char *wg__server_table_sql(const struct wg__table_ref *t);

#endif
