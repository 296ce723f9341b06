/* wigeon: what the engine's files (engine.c, query.c, ingest.c, catalog.c) share: the pool and
 * connection structs, DuckDB error capture, and refcounted slices of a struct array that let one
 * DuckDB chunk or one ingest batch be handed out in pieces without copying.
 * Internal to src/engine. */
#ifndef WG_ENGINE_INTERNAL_H
#define WG_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "engine/arrow_duck.h"
#include "engine/engine.h"

struct wg_engine_conn {
  struct wg_engine *engine;
  duckdb_connection conn;
  bool in_use;    /* guarded by engine->mu */
  bool txn_maybe; /* an ingest or a transaction statement may have left a transaction open */
};

struct wg_engine {
  duckdb_database db;
  bool is_file;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct wg_engine_conn *conns;
  int n_conns;
  int n_free;
};

/* Set err from a failed duckdb_result / prepared statement / error data (destroyed here), with
 * DuckDB's message as is; return the mapped code (wg_engine_error_code). */
int wg__engine_result_error(duckdb_result *r, struct wg_error *err);
int wg__engine_prepare_error(duckdb_prepared_statement p, struct wg_error *err);
int wg__engine_take_error_data(duckdb_error_data *ed, struct wg_error *err);

/* Runs `sql`, discarding the result. 0 or the mapped code. */
int wg__engine_exec(struct wg_engine_conn *c, const char *sql, struct wg_error *err);

/* "schema"."table" (schema NULL = just "table"); malloc'ed, NULL on ENOMEM. */
char *wg__engine_qualified(const char *schema_name, const char *table);

/* A struct array shared by several slices. Each slice is a new root whose children are shallow
 * copies of the batch's children with offset/length narrowed; the grandchildren and buffers stay
 * the batch's own. The batch is released when the owner and every slice are gone. */
struct wg__slice_owner;
/* Takes `batch` (moved; released on error too). NULL on ENOMEM. The caller holds one reference. */
struct wg__slice_owner *wg__slice_owner_create(struct ArrowArray *batch);
void wg__slice_owner_unref(struct wg__slice_owner *o);
const struct ArrowArray *wg__slice_owner_batch(const struct wg__slice_owner *o);
/* out = rows [start, start+len) of the batch (relative to the batch's own offset), holding one
 * reference on o until released. 0 or ENOMEM. */
int wg__slice(struct wg__slice_owner *o, int64_t start, int64_t len, struct ArrowArray *out);

#endif
