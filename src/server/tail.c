/* wigeon: the live tail's hub (tail.h): commit events kept in a bounded history, one thread that
 * brings each live subscriber up to date, and each subscriber's queue of messages on its parked
 * call.
 *
 *   engine COMMIT (commit_mu) -> on_commit: the event (its batches moved out, no copy) appended to
 *   the history, the hub thread woken -> hub thread: for each live subscriber behind its table's
 *   newest sequence, the events after its cursor -> its WHERE and columns run by DuckDB over them
 *   (or, with neither and the same schema, the batches as they are) -> encoded, queued -> sent one
 *   at a time on the parked call (the next from the completion of the last).
 *
 * Locks: hub->mu guards the history, the tables, the subscriber list and each subscriber's state
 * and cursor; it is taken under the engine's commit_mu (on_commit, registration) and never held
 * across an engine or rpc call. sub->mu guards a subscriber's send queue; it may be held across
 * wg_rpc_parked_send/finish (which never wait for the completion-queue thread) and is never held
 * with hub->mu. Order: commit_mu -> hub->mu; sub->mu alone.
 *
 * Lifetime of a subscriber: a reference for its creator (the DoGet handler, until it parks), one
 * for the hub's list, one for the parked call (dropped at WG_RPC_PARKED_DONE), and one for the
 * hub thread while it serves it. */
#include "server/tail.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "arrow/array.h"
#include "arrow/concat.h"
#include "arrow/format.h"
#include "arrow/ipc.h"
#include "common/sql.h"

/* One committed put, shared by the history and the deliveries in progress. */
struct tail_event {
  atomic_int refs;
  struct tail_event *next; /* history order = commit order (hub->mu) */
  struct tail_table *table;
  uint64_t seq;
  struct ArrowSchema schema;
  struct ArrowArray *batches;
  int64_t n_batches, rows, bytes;
  bool dropped; /* committed, but its batches were not kept (too big, or out of memory) */
};

/* What the hub knows of one table. */
struct tail_table {
  struct tail_table *next;
  char *key;        /* lower-case schema.table */
  uint64_t last;    /* newest sequence committed (seen by the hub) */
  uint64_t evicted; /* every put up to this sequence is gone from the history */
};

enum sub_state { SUB_NEW, SUB_START, SUB_LIVE, SUB_ENDED };

struct wg__tail_sub {
  struct wg__tail_hub *hub;
  struct wg__tail_sub *next; /* hub->subs */
  atomic_int refs;
  struct wg_rpc_call *call;
  char *key, *table_sql, *select_list, *where;
  bool all_columns;
  char **names, **types; /* the table's columns and their DuckDB types */
  int n;
  struct ArrowSchema schema; /* of the stream */
  struct wg_ipc_encoder *enc;
  struct wg_ipc_encoded *msgs;
  int64_t max_msgs;
  /* hub->mu */
  enum sub_state state;
  struct tail_table *table;
  uint64_t cursor;            /* the newest sequence whose rows the subscriber has been given */
  int reg_code;               /* registration's error, with reg_err */
  struct wg_error reg_err;
  /* the filter's SQL for the last event schema (hub thread only) */
  struct wg_buf fp;
  char *sql;
  /* sub->mu: the send queue */
  pthread_mutex_t mu;
  grpc_byte_buffer **q;
  int64_t q_head, q_len, q_cap, q_bytes, inflight_bytes;
  bool sending, finished;
};

struct wg__tail_hub {
  struct wg_server *s;
  pthread_mutex_t start_mu; /* starting the thread and the subscription, once */
  bool started;
  pthread_t thread;
  struct wg_engine_conn *conn; /* the hub thread's */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stopping;
  uint64_t work; /* bumped by every event and every subscriber going live */
  struct tail_event *head, *tail;
  int64_t history_bytes;
  struct tail_table *tables;
  struct wg__tail_sub *subs;
  int64_t n_subs;
  atomic_int_fast64_t filter_queries; /* DuckDB queries run for WHEREs and columns (stats) */
  /* The watchdog: a filter (a subscriber's WHERE) that runs past its deadline is interrupted, so
   * that one costly WHERE cannot hold up every other subscriber. wd_mu guards all of it. */
  pthread_t watchdog;
  pthread_mutex_t wd_mu;
  pthread_cond_t wd_cv;
  bool wd_stop, wd_expired;
  int64_t wd_deadline_ms; /* 0: no filter running */
};

/* How long one round of a subscriber's WHERE may run: --query-timeout, else this. */
#define WG_TAIL_FILTER_MS 10000

/* ------------------------------------------------------------------------------------------- */
/* Events and tables */

static void event_unref(struct tail_event *e) {
  if (e == NULL || atomic_fetch_sub(&e->refs, 1) != 1) return;
  for (int64_t i = 0; i < e->n_batches; i++)
    wg_array_release(&e->batches[i]);
  free(e->batches);
  wg_schema_release(&e->schema);
  free(e);
}

static void event_unref_cb(void *ctx) {
  event_unref(ctx);
}

static int view_node(const struct ArrowArray *src, struct wg_shared *holder,
                     struct ArrowArray *dst) {
  if (wg_array_node_init(dst, src->n_buffers, src->n_children, holder) != 0) return ENOMEM;
  dst->length = src->length;
  dst->null_count = src->null_count;
  dst->offset = src->offset;
  for (int64_t i = 0; i < src->n_buffers; i++)
    dst->buffers[i] = src->buffers[i];
  for (int64_t i = 0; i < src->n_children; i++)
    if (view_node(src->children[i], holder, dst->children[i]) != 0) return ENOMEM;
  if (src->dictionary != NULL &&
      (wg_array_alloc_dictionary(dst) != 0 || view_node(src->dictionary, holder, dst->dictionary)))
    return ENOMEM;
  return 0;
}

/* A new array over batch i of the event's buffers (no copy), holding the event until released:
 * the batches the engine gives are its own slices, which only it can share. */
static int event_view(struct tail_event *e, int64_t i, struct ArrowArray *dst,
                      struct wg_error *err) {
  memset(dst, 0, sizeof(*dst));
  atomic_fetch_add(&e->refs, 1);
  struct wg_shared *holder = wg_shared_wrap(NULL, 0, event_unref_cb, e);
  if (holder == NULL) {
    event_unref(e);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  int rc = view_node(&e->batches[i], holder, dst);
  wg_shared_unref(holder); /* the nodes hold it */
  if (rc != 0) {
    if (dst->release != NULL) wg_array_release(dst);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  return 0;
}

/* "schema.table", lower case (DuckDB's identifiers are case-insensitive); NULL on ENOMEM. */
char *wg__tail_table_key(const char *schema_name, const char *table) {
  const char *sch = schema_name != NULL ? schema_name : "main";
  size_t n = strlen(sch) + strlen(table) + 2;
  char *k = malloc(n);
  if (k == NULL) return NULL;
  snprintf(k, n, "%s.%s", sch, table);
  for (char *p = k; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  return k;
}

/* The table of `key`, added with every sequence up to `evicted` gone if new. hub->mu held. */
static struct tail_table *table_get(struct wg__tail_hub *h, const char *key, uint64_t evicted) {
  for (struct tail_table *t = h->tables; t != NULL; t = t->next)
    if (strcmp(t->key, key) == 0) return t;
  struct tail_table *t = calloc(1, sizeof(*t));
  if (t == NULL || (t->key = strdup(key)) == NULL) {
    free(t);
    return NULL;
  }
  t->last = t->evicted = evicted;
  t->next = h->tables;
  h->tables = t;
  return t;
}

/* Drops the oldest events while the history is over `budget` bytes. hub->mu held. */
static void evict(struct wg__tail_hub *h, int64_t budget) {
  while (h->head != NULL && h->history_bytes > budget) {
    struct tail_event *e = h->head;
    h->head = e->next;
    if (h->head == NULL) h->tail = NULL;
    h->history_bytes -= e->bytes;
    if (e->table != NULL && e->seq > e->table->evicted) e->table->evicted = e->seq;
    event_unref(e);
  }
}

/* The event of a commit, its batches moved out of ev; NULL on ENOMEM (then nothing moved). */
static struct tail_event *event_make(struct wg_engine_commit_event *ev) {
  struct tail_event *e = calloc(1, sizeof(*e));
  struct ArrowArray *b = calloc((size_t)(ev->n_batches > 0 ? ev->n_batches : 1), sizeof(*b));
  if (e == NULL || b == NULL || wg_schema_deep_copy(ev->schema, &e->schema, NULL) != 0) {
    free(e);
    free(b);
    return NULL;
  }
  atomic_init(&e->refs, 1);
  e->seq = ev->sequence;
  e->rows = ev->rows;
  e->batches = b;
  e->n_batches = ev->n_batches;
  e->dropped = ev->dropped || (ev->n_batches == 0 && ev->rows > 0);
  for (int64_t i = 0; i < ev->n_batches; i++) {
    wg_array_move(&ev->batches[i], &b[i]);
    e->bytes += wg_arrow_range_bytes(&e->schema, &b[i], 0, b[i].length);
  }
  e->bytes += 256; /* the event itself */
  return e;
}

/* wg_engine_commit_cb: under the engine's commit_mu, so quick: no engine call, no send. */
static void on_commit(void *ctx, struct wg_engine_commit_event *ev) {
  struct wg__tail_hub *h = ctx;
  char *key = wg__tail_table_key(ev->schema_name, ev->table);
  struct tail_event *e = key != NULL ? event_make(ev) : NULL;
  pthread_mutex_lock(&h->mu);
  struct tail_table *t = key != NULL ? table_get(h, key, ev->sequence - 1) : NULL;
  if (t != NULL) {
    t->last = ev->sequence;
    if (e == NULL) t->evicted = ev->sequence; /* out of memory: a gap its subscribers will see */
  }
  if (e != NULL && t != NULL) {
    e->table = t;
    if (h->tail != NULL) h->tail->next = e;
    else h->head = e;
    h->tail = e;
    h->history_bytes += e->bytes;
    e = NULL;
    /* the hub thread trims to the budget once it delivered; this bounds a stalled hub */
    evict(h, 2 * h->s->options.tail_history_bytes);
  }
  h->work++;
  pthread_cond_signal(&h->cv);
  pthread_mutex_unlock(&h->mu);
  event_unref(e);
  free(key);
}

/* ------------------------------------------------------------------------------------------- */
/* A subscriber's sends */

static void sub_unref(struct wg__tail_sub *sub) {
  if (sub == NULL || atomic_fetch_sub(&sub->refs, 1) != 1) return;
  for (int64_t i = 0; i < sub->q_len; i++)
    grpc_byte_buffer_destroy(sub->q[(sub->q_head + i) % sub->q_cap]);
  free(sub->q);
  for (int64_t i = 0; sub->msgs != NULL && i < sub->max_msgs; i++)
    wg_ipc_encoded_reset(&sub->msgs[i]);
  free(sub->msgs);
  wg_ipc_encoder_destroy(sub->enc);
  wg_schema_release(&sub->schema);
  for (int i = 0; i < sub->n; i++) {
    free(sub->names[i]);
    free(sub->types[i]);
  }
  free(sub->names);
  free(sub->types);
  free(sub->key);
  free(sub->table_sql);
  free(sub->select_list);
  free(sub->where);
  free(sub->sql);
  wg_buf_reset(&sub->fp);
  pthread_mutex_destroy(&sub->mu);
  free(sub);
}

/* Starts the next queued send if none is outstanding. sub->mu held. */
static void pump(struct wg__tail_sub *sub) {
  if (sub->sending || sub->finished || sub->q_len == 0) return;
  grpc_byte_buffer *bb = sub->q[sub->q_head];
  sub->q_head = (sub->q_head + 1) % sub->q_cap;
  sub->q_len--;
  int64_t size = (int64_t)grpc_byte_buffer_length(bb);
  sub->q_bytes -= size;
  sub->inflight_bytes = size;
  sub->sending = true;
  if (wg_rpc_parked_send(sub->call, bb) != 0) sub->sending = false; /* gone: GONE follows */
}

static void drop_queue(struct wg__tail_sub *sub) {
  for (int64_t i = 0; i < sub->q_len; i++)
    grpc_byte_buffer_destroy(sub->q[(sub->q_head + i) % sub->q_cap]);
  sub->q_len = sub->q_head = sub->q_bytes = 0;
}

/* Takes the subscriber off the hub's list (no more deliveries). hub->mu held. */
static void unlink_sub(struct wg__tail_hub *h, struct wg__tail_sub *sub) {
  bool listed = sub->state == SUB_START || sub->state == SUB_LIVE;
  sub->state = SUB_ENDED;
  if (!listed) return;
  for (struct wg__tail_sub **p = &h->subs; *p != NULL; p = &(*p)->next) {
    if (*p != sub) continue;
    *p = sub->next;
    h->n_subs--;
    sub_unref(sub); /* the list's reference: never the last, the caller holds one */
    return;
  }
}

/* Ends a live subscriber with `code` and a message. Any thread, no lock held. */
static void cut_off(struct wg__tail_sub *sub, int code, const char *message) {
  struct wg__tail_hub *h = sub->hub;
  pthread_mutex_lock(&h->mu);
  unlink_sub(h, sub);
  pthread_mutex_unlock(&h->mu);
  pthread_mutex_lock(&sub->mu);
  bool first = !sub->finished;
  sub->finished = true;
  drop_queue(sub);
  if (first) {
    /* expire first: a client that stopped reading holds the outstanding send, and a finish
     * behind it, for ever; the finish then leads to DONE */
    grpc_status_code status = wg_rpc_status_from_errno(code);
    if (code != ECANCELED) wg_rpc_parked_expire(sub->call, status, message);
    wg_rpc_parked_finish(sub->call, status, message);
  }
  pthread_mutex_unlock(&sub->mu);
  if (first && code != ECANCELED)
    atomic_fetch_add_explicit(&h->s->stats.errors, 1, memory_order_relaxed);
}

/* wg_rpc_parked_fn, on the completion-queue thread. */
static void on_parked(void *arg, int event) {
  struct wg__tail_sub *sub = arg;
  if (event == WG_RPC_PARKED_SENT) {
    pthread_mutex_lock(&sub->mu);
    sub->sending = false;
    sub->inflight_bytes = 0;
    pump(sub);
    pthread_mutex_unlock(&sub->mu);
  } else if (event == WG_RPC_PARKED_GONE) {
    cut_off(sub, ECANCELED, "the live tail was cancelled");
  } else if (event == WG_RPC_PARKED_DONE) {
    sub_unref(sub); /* the call's reference */
  }
}

/* Queues a message (taken). EBUSY when the subscriber is over its buffer: the caller cuts it off. */
static int enqueue(struct wg__tail_sub *sub, grpc_byte_buffer *bb, struct wg_error *err) {
  int64_t size = (int64_t)grpc_byte_buffer_length(bb);
  int64_t limit = sub->hub->s->options.tail_buffer_bytes;
  pthread_mutex_lock(&sub->mu);
  int rc = 0;
  if (sub->finished) {
    rc = ECANCELED;
  } else if (sub->q_bytes + sub->inflight_bytes + size > limit &&
             (sub->q_len > 0 || sub->sending)) {
    rc = wg_error_set(err, EBUSY,
                      "live tail: the subscriber fell more than %lld MiB behind the commits "
                      "(--tail-buffer-mb) and was cut off; resubscribe with \"from\" set to the "
                      "last sequence it read",
                      (long long)(limit >> 20));
  } else if (sub->q_len == sub->q_cap) {
    int64_t cap = sub->q_cap ? sub->q_cap * 2 : 16;
    grpc_byte_buffer **q = malloc((size_t)cap * sizeof(*q));
    if (q == NULL) {
      rc = wg_error_set(err, ENOMEM, "live tail: out of memory for the send queue");
    } else {
      for (int64_t i = 0; i < sub->q_len; i++)
        q[i] = sub->q[(sub->q_head + i) % sub->q_cap];
      free(sub->q);
      sub->q = q;
      sub->q_head = 0;
      sub->q_cap = cap;
    }
  }
  if (rc == 0) {
    sub->q[(sub->q_head + sub->q_len) % sub->q_cap] = bb;
    sub->q_len++;
    sub->q_bytes += size;
    atomic_fetch_add_explicit(&sub->hub->s->stats.bytes_out, size, memory_order_relaxed);
    pump(sub);
  }
  pthread_mutex_unlock(&sub->mu);
  if (rc != 0) grpc_byte_buffer_destroy(bb);
  return rc;
}

/* ------------------------------------------------------------------------------------------- */
/* Encoding */

static void release_array(void *ctx) {
  struct ArrowArray *a = ctx;
  wg_array_release(a);
  free(a);
}

static int push_out(grpc_byte_buffer *bb, grpc_byte_buffer ***out, int64_t *n, int64_t *cap) {
  if (*n == *cap) {
    int64_t c = *cap ? *cap * 2 : 8;
    grpc_byte_buffer **o = realloc(*out, (size_t)c * sizeof(*o));
    if (o == NULL) return ENOMEM;
    *out = o;
    *cap = c;
  }
  (*out)[(*n)++] = bb;
  return 0;
}

int wg__tail_sub_encode_schema(struct wg__tail_sub *sub, grpc_byte_buffer **out,
                               struct wg_error *err) {
  struct wg_bytes none = {NULL, 0};
  WG_RETURN_NOT_OK(wg_ipc_encoder_schema(sub->enc, &sub->msgs[0], err));
  return wg_flight_data_encode(none, &sub->msgs[0], none, NULL, out, err);
}

int wg__tail_sub_encode(struct wg__tail_sub *sub, struct ArrowArray *batch, uint64_t seq,
                        bool more, grpc_byte_buffer ***out, int64_t *n_out, int64_t *cap,
                        struct wg_error *err) {
  struct ArrowArray *own = malloc(sizeof(*own));
  if (own == NULL) {
    wg_array_release(batch);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  wg_array_move(batch, own);
  int64_t n = 0;
  int rc = wg_ipc_encoder_batch(sub->enc, own, sub->msgs, &n, err);
  struct wg_shared *keep = rc == 0 ? wg_shared_wrap(NULL, 0, release_array, own) : NULL;
  if (keep == NULL) {
    release_array(own);
    return rc != 0 ? rc : wg_error_set(err, ENOMEM, "out of memory");
  }
  char meta[96];
  int len = snprintf(meta, sizeof(meta), "{\"seq\":%llu,\"more\":%s}", (unsigned long long)seq,
                     more ? "true" : "false");
  struct wg_bytes none = {NULL, 0}, app = {(const uint8_t *)meta, len};
  for (int64_t i = 0; i < n && rc == 0; i++) {
    grpc_byte_buffer *bb = NULL;
    /* the app_metadata rides on the record batch, the last message of the batch */
    rc = wg_flight_data_encode(none, &sub->msgs[i], i == n - 1 ? app : none, keep, &bb, err);
    if (rc == 0 && push_out(bb, out, n_out, cap) != 0) {
      grpc_byte_buffer_destroy(bb);
      rc = wg_error_set(err, ENOMEM, "out of memory");
    }
  }
  wg_shared_unref(keep);
  return rc;
}

int wg__tail_sub_empty_batch(struct wg__tail_sub *sub, struct ArrowArray *out,
                             struct wg_error *err) {
  return wg_arrow_concat(&sub->schema, NULL, 0, out, err);
}

/* ------------------------------------------------------------------------------------------- */
/* Delivery (the hub thread) */

/* Whether batches of `a` can be sent on a stream of `b` as they are: the same fields, by name and
 * format, all the way down, and no dictionary. */
static bool same_shape(const struct ArrowSchema *a, const struct ArrowSchema *b, int depth) {
  if (depth > 64 || a->n_children != b->n_children || a->dictionary || b->dictionary) return false;
  if (strcmp(a->format, b->format) != 0) return false;
  if (depth > 0 && strcmp(a->name ? a->name : "", b->name ? b->name : "") != 0) return false;
  for (int64_t i = 0; i < a->n_children; i++)
    if (!same_shape(a->children[i], b->children[i], depth + 1)) return false;
  return true;
}

/* The put's column matching table column `name` (case-insensitively), or -1. */
static int64_t put_column(const struct ArrowSchema *put, const char *name) {
  for (int64_t i = 0; i < put->n_children; i++)
    if (put->children[i]->name && strcasecmp(put->children[i]->name, name) == 0) return i;
  return -1;
}

static int appendf(struct wg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int appendf(struct wg_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || wg_buf_reserve(b, n + 1) != 0) return ENOMEM;
  va_start(ap, fmt);
  vsnprintf((char *)b->data + b->size, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->size += n;
  return 0;
}

/* " FROM (SELECT CAST(input."c" AS T) AS "c", ... FROM input) AS <table>" for puts of `put`. */
static int append_from_input(struct wg_buf *b, const struct wg__tail_sub *sub,
                             const struct ArrowSchema *put) {
  int rc = wg_buf_append(b, " FROM (SELECT ", 14);
  for (int i = 0; i < sub->n && rc == 0; i++) {
    int64_t c = put_column(put, sub->names[i]);
    if (i > 0) rc = wg_buf_append(b, ", ", 2);
    if (rc == 0 && c < 0) rc = appendf(b, "CAST(NULL AS %s) AS ", sub->types[i]);
    if (rc == 0 && c >= 0) {
      rc = wg_buf_append(b, "CAST(input.", 11);
      if (rc == 0) rc = wg_sql_append_ident(b, put->children[c]->name);
      if (rc == 0) rc = appendf(b, " AS %s) AS ", sub->types[i]);
    }
    if (rc == 0) rc = wg_sql_append_ident(b, sub->names[i]);
  }
  if (rc == 0) rc = appendf(b, " FROM input) AS %s", sub->table_sql);
  return rc;
}

/* SELECT <select_list> FROM (SELECT CAST(input."c" AS T) AS "c", ... FROM input) AS <table>
 * [WHERE (<where>)]: the put's columns cast to the table's types (NULL for the ones it lacks), so
 * that the WHERE sees what the snapshot's sees and the result has the stream's schema. */
static int filter_sql(struct wg__tail_sub *sub, const struct ArrowSchema *put,
                      struct wg_error *err) {
  struct wg_buf fp;
  wg_buf_init(&fp);
  if (wg_schema_fingerprint(put, &fp) != 0) {
    wg_buf_reset(&fp);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  if (sub->sql != NULL && fp.size == sub->fp.size && memcmp(fp.data, sub->fp.data, fp.size) == 0) {
    wg_buf_reset(&fp);
    return 0;
  }
  struct wg_buf b;
  wg_buf_init(&b);
  int rc = appendf(&b, "SELECT %s", sub->select_list);
  if (rc == 0) rc = append_from_input(&b, sub, put);
  if (rc == 0 && sub->where != NULL) rc = appendf(&b, " WHERE (%s)", sub->where);
  if (rc == 0) rc = wg_buf_append(&b, "", 1);
  if (rc != 0) {
    wg_buf_reset(&b);
    wg_buf_reset(&fp);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  free(sub->sql);
  sub->sql = (char *)wg_buf_detach(&b);
  wg_buf_reset(&sub->fp);
  sub->fp = fp;
  return 0;
}

/* An ArrowArrayStream over shared copies of the batches of events evs[0..n) (one schema). */
struct batches_stream {
  struct ArrowSchema schema;
  struct ArrowArray *batches;
  int64_t n, next;
};

static int bs_get_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  struct batches_stream *b = st->private_data;
  return wg_schema_deep_copy(&b->schema, out, NULL) == 0 ? 0 : ENOMEM;
}

static int bs_get_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  struct batches_stream *b = st->private_data;
  if (b->next == b->n) {
    memset(out, 0, sizeof(*out));
    return 0;
  }
  wg_array_move(&b->batches[b->next++], out);
  return 0;
}

static const char *bs_last_error(struct ArrowArrayStream *st) {
  (void)st;
  return NULL;
}

static void bs_release(struct ArrowArrayStream *st) {
  struct batches_stream *b = st->private_data;
  for (int64_t i = b->next; i < b->n; i++)
    wg_array_release(&b->batches[i]);
  free(b->batches);
  wg_schema_release(&b->schema);
  free(b);
  st->release = NULL;
}

static int batches_stream(struct tail_event **evs, int64_t n, struct ArrowArrayStream *out,
                          struct wg_error *err) {
  int64_t total = 0;
  for (int64_t i = 0; i < n; i++)
    total += evs[i]->n_batches;
  struct batches_stream *b = calloc(1, sizeof(*b));
  if (b == NULL || (b->batches = calloc((size_t)(total ? total : 1), sizeof(*b->batches))) == NULL ||
      wg_schema_deep_copy(&evs[0]->schema, &b->schema, NULL) != 0) {
    if (b != NULL) free(b->batches);
    free(b);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  for (int64_t i = 0; i < n; i++) {
    for (int64_t j = 0; j < evs[i]->n_batches; j++) {
      if (event_view(evs[i], j, &b->batches[b->n], err) != 0) {
        struct ArrowArrayStream tmp = {.private_data = b};
        bs_release(&tmp);
        return ENOMEM;
      }
      b->n++;
    }
  }
  *out = (struct ArrowArrayStream){bs_get_schema, bs_get_next, bs_last_error, bs_release, b};
  return 0;
}

/* Messages made for one delivery, queued to every subscriber of a group. */
struct outbox {
  grpc_byte_buffer **bbs;
  int64_t n, cap;
};

static void outbox_reset(struct outbox *o) {
  for (int64_t i = 0; i < o->n; i++)
    grpc_byte_buffer_destroy(o->bbs[i]);
  free(o->bbs);
  memset(o, 0, sizeof(*o));
}

/* Concatenates pending[0..n) (consumed) into one batch and encodes it for the outbox. */
static int flush_plain(struct wg__tail_sub *sub, struct ArrowArray *pending, int64_t n,
                       uint64_t seq, bool more, struct outbox *o, struct wg_error *err) {
  struct ArrowArray one;
  if (n == 1) {
    wg_array_move(&pending[0], &one);
  } else {
    WG_RETURN_NOT_OK(wg_arrow_concat(&sub->schema, pending, n, &one, err));
  }
  return wg__tail_sub_encode(sub, &one, seq, more, &o->bbs, &o->n, &o->cap, err);
}

/* The batches of events evs[0..n), as they are (same shape, no WHERE, every column), gathered
 * into batches of up to batch_bytes: a few messages per round whatever the number of puts. A batch
 * that ends inside a put says "more"; one that ends with a put carries that put's sequence. */
static int deliver_plain(struct wg__tail_hub *h, struct wg__tail_sub *sub,
                         struct tail_event **evs, int64_t n, struct outbox *o,
                         struct wg_error *err) {
  int64_t total = 0;
  for (int64_t i = 0; i < n; i++)
    total += evs[i]->n_batches;
  struct ArrowArray *pending = calloc((size_t)(total > 0 ? total : 1), sizeof(*pending));
  if (pending == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  int64_t np = 0, bytes = 0, limit = h->s->options.batch_bytes;
  int rc = 0;
  for (int64_t i = 0; i < n && rc == 0; i++) {
    for (int64_t j = 0; j < evs[i]->n_batches && rc == 0; j++) {
      const struct ArrowArray *b = &evs[i]->batches[j];
      int64_t size = wg_arrow_range_bytes(&evs[i]->schema, b, 0, b->length);
      if (np > 0 && (size < 0 || bytes + size > limit)) {
        /* the previous batch ends the pending ones: j == 0 means it ended the previous put */
        rc = flush_plain(sub, pending, np, j == 0 ? evs[i - 1]->seq : evs[i]->seq, j != 0, o, err);
        np = bytes = 0;
      }
      if (rc == 0) rc = event_view(evs[i], j, &pending[np], err);
      if (rc == 0) {
        np++;
        bytes += size > 0 ? size : 0;
      }
    }
  }
  if (rc == 0 && np > 0) {
    rc = flush_plain(sub, pending, np, evs[n - 1]->seq, false, o, err);
    np = 0;
  }
  for (int64_t i = 0; i < np; i++)
    if (pending[i].release != NULL) wg_array_release(&pending[i]);
  free(pending);
  return rc;
}

/* Whether a filter's result has the stream's columns, exactly (the stream's own schema carries
 * the tail's metadata): one of another type, say from a table the WHERE reads that was replaced
 * meanwhile, would be encoded under the stream's schema, reading past its buffers. */
static bool result_columns_ok(const struct ArrowSchema *r, const struct ArrowSchema *stream) {
  if (r->n_children != stream->n_children) return false;
  for (int64_t i = 0; i < stream->n_children; i++)
    if (!wg_schema_same(r->children[i], stream->children[i])) return false;
  return true;
}

static int64_t filter_limit_ms(const struct wg__tail_hub *h);
static void filter_arm(struct wg__tail_hub *h);
static bool filter_disarm(struct wg__tail_hub *h);

static int filter_expired(const struct wg__tail_hub *h, struct wg_error *err) {
  return wg_error_set(err, ETIMEDOUT,
                      "live tail: the subscription's WHERE ran longer than %lld ms on one round "
                      "of puts (--query-timeout, else 10 s) and was ended, so that it does not "
                      "hold up the other subscribers",
                      (long long)filter_limit_ms(h));
}

/* The rows of evs[0..n) (one schema) that the subscriber's WHERE selects, its columns, through
 * DuckDB; every batch tagged with the last event's sequence ("more" on all but the last). */
static int deliver_filtered(struct wg__tail_hub *h, struct wg__tail_sub *sub,
                            struct tail_event **evs, int64_t n, struct outbox *o,
                            struct wg_error *err) {
  WG_RETURN_NOT_OK(filter_sql(sub, &evs[0]->schema, err));
  struct ArrowArrayStream in, out;
  WG_RETURN_NOT_OK(batches_stream(evs, n, &in, err));
  filter_arm(h);
  atomic_fetch_add(&h->filter_queries, 1);
  int rc = wg_engine_query_over(h->conn, "input", &in, sub->sql, h->s->options.batch_rows,
                                h->s->options.batch_bytes, &out, err);
  if (rc != 0) {
    if (filter_disarm(h)) rc = filter_expired(h, err);
    return rc;
  }
  struct ArrowSchema rs;
  rc = out.get_schema(&out, &rs);
  if (rc == 0) {
    if (!result_columns_ok(&rs, &sub->schema))
      rc = wg_error_set(err, EINVAL,
                        "live tail: the WHERE's result no longer has the subscription's columns "
                        "and types (a table it reads changed?); subscribe again");
    wg_schema_release(&rs);
  } else {
    rc = wg_error_set(err, rc, "live tail: reading the filter's schema failed");
  }
  uint64_t seq = evs[n - 1]->seq;
  struct ArrowArray held = {0};
  while (rc == 0) {
    struct ArrowArray a;
    rc = out.get_next(&out, &a);
    if (rc != 0) {
      const char *m = out.get_last_error(&out);
      int code = wg_engine_stream_status(&out);
      rc = wg_error_set(err, code ? code : rc, "live tail: %s", m ? m : "the filter failed");
      break;
    }
    if (a.release == NULL) break;
    if (a.length == 0) {
      wg_array_release(&a);
      continue;
    }
    if (held.release != NULL)
      rc = wg__tail_sub_encode(sub, &held, seq, true, &o->bbs, &o->n, &o->cap, err);
    wg_array_move(&a, &held);
  }
  if (rc == 0 && held.release != NULL)
    rc = wg__tail_sub_encode(sub, &held, seq, false, &o->bbs, &o->n, &o->cap, err);
  else if (held.release != NULL)
    wg_array_release(&held);
  wg_stream_release(&out);
  if (filter_disarm(h)) rc = filter_expired(h, err);
  return rc;
}

/* Most events, and bytes of them, one delivery takes (the rest wait for the next round). */
enum { WG_TAIL_ROUND_EVENTS = 256, WG_TAIL_ROUND_MS = 10 };
#define WG_TAIL_ROUND_BYTES ((int64_t)16 << 20)

/* Queues the outbox to every live member (copies share the slices: no data copied); a member
 * over its buffer is cut off alone. The outbox is emptied. */
static void fan_out(struct wg__tail_sub **group, int64_t m, struct outbox *o) {
  for (int64_t k = 0; k < m; k++) {
    struct wg_error err = {""};
    int rc = 0;
    for (int64_t i = 0; i < o->n && rc == 0; i++) {
      grpc_byte_buffer *bb = k + 1 < m ? grpc_byte_buffer_copy(o->bbs[i]) : o->bbs[i];
      if (k + 1 == m) o->bbs[i] = NULL;
      rc = bb != NULL ? enqueue(group[k], bb, &err) : wg_error_set(&err, ENOMEM, "out of memory");
    }
    if (rc != 0 && rc != ECANCELED) cut_off(group[k], rc, err.message);
  }
  for (int64_t i = 0; i < o->n; i++)
    if (o->bbs[i] != NULL) grpc_byte_buffer_destroy(o->bbs[i]);
  o->n = 0;
}

/* The events of the group's table after its cursor (referenced), in commit order, within a
 * round's bounds; *gap when the history lost some of them. hub->mu held. */
static int64_t gather(struct wg__tail_hub *h, const struct wg__tail_sub *lead,
                      struct tail_event **evs, bool *gap) {
  int64_t n = 0, bytes = 0;
  *gap = lead->cursor < lead->table->evicted;
  for (struct tail_event *e = h->head; e != NULL && !*gap && n < WG_TAIL_ROUND_EVENTS;
       e = e->next) {
    if (e->table != lead->table || e->seq <= lead->cursor) continue;
    if (n > 0 && bytes + e->bytes > WG_TAIL_ROUND_BYTES) break;
    atomic_fetch_add(&e->refs, 1);
    evs[n++] = e;
    bytes += e->bytes;
  }
  return n;
}

/* Brings a group of subscribers (same table, cursor, columns, WHERE and schema: group[0] stands
 * for all) closer to their table's newest sequence: the messages are made once. */
static void serve_group(struct wg__tail_hub *h, struct wg__tail_sub **group, int64_t m) {
  struct wg__tail_sub *lead = group[0];
  struct tail_event *evs[WG_TAIL_ROUND_EVENTS];
  bool gap = false;
  pthread_mutex_lock(&h->mu);
  int64_t n = gather(h, lead, evs, &gap);
  pthread_mutex_unlock(&h->mu);
  struct wg_error err = {""};
  struct outbox o = {0};
  int rc = 0;
  if (gap)
    rc = wg_error_set(&err, ERANGE,
                      "live tail: the server no longer holds the puts after sequence %llu (it "
                      "keeps the last --tail-history-mb of them); resubscribe with \"from\": "
                      "\"beginning\"",
                      (unsigned long long)lead->cursor);
  for (int64_t i = 0; i < n && rc == 0;) {
    int64_t j = i + 1;
    while (j < n && !evs[i]->dropped && !evs[j]->dropped &&
           same_shape(&evs[j]->schema, &evs[i]->schema, 0))
      j++;
    if (evs[i]->dropped) {
      rc = wg_error_set(&err, EMSGSIZE,
                        "live tail: a put of %lld rows (sequence %llu) was too big to keep for "
                        "subscribers; resubscribe with \"from\": \"beginning\"",
                        (long long)evs[i]->rows, (unsigned long long)evs[i]->seq);
      break;
    }
    if (lead->all_columns && lead->where == NULL && same_shape(&evs[i]->schema, &lead->schema, 0))
      rc = deliver_plain(h, lead, evs + i, j - i, &o, &err);
    else
      rc = deliver_filtered(h, lead, evs + i, j - i, &o, &err);
    if (rc != 0) break;
    fan_out(group, m, &o);
    pthread_mutex_lock(&h->mu);
    for (int64_t k = 0; k < m; k++)
      if (group[k]->cursor < evs[j - 1]->seq) group[k]->cursor = evs[j - 1]->seq;
    pthread_mutex_unlock(&h->mu);
    i = j;
  }
  outbox_reset(&o);
  for (int64_t i = 0; i < n; i++)
    event_unref(evs[i]);
  for (int64_t k = 0; rc != 0 && k < m; k++)
    cut_off(group[k], rc, err.message);
}

/* Whether b can take a's messages: the same table, cursor, columns, WHERE and stream schema,
 * and no dictionary (an encoder's dictionaries are per stream). */
static bool same_group(const struct wg__tail_sub *a, const struct wg__tail_sub *b) {
  if (a->table != b->table || a->cursor != b->cursor || a->all_columns != b->all_columns)
    return false;
  if ((a->where == NULL) != (b->where == NULL)) return false;
  if (a->where != NULL && strcmp(a->where, b->where) != 0) return false;
  return strcmp(a->select_list, b->select_list) == 0 && same_shape(&a->schema, &b->schema, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Families: groups of subscribers with different WHEREs over the same table, columns and cursor.
 * One DuckDB query per round serves them all, where one query per group would cost each put a
 * query per subscriber (500 dashboards, each watching its own key, on one hub thread):
 *   SELECT <columns>, coalesce(CAST((w0) AS BOOLEAN), false) AS "__wg_m0", ... FROM (...) AS t
 * then each group gets the rows its column marks, in the input's order. Anything unexpected (a
 * WHERE that fails on some row, the watchdog, a result of another shape) falls back to one query
 * per group for the round, so that only the group at fault is cut off. */

static bool same_family(const struct wg__tail_sub *a, const struct wg__tail_sub *b) {
  return a->table == b->table && a->cursor == b->cursor && a->all_columns == b->all_columns &&
         a->where != NULL && b->where != NULL && strcmp(a->select_list, b->select_list) == 0 &&
         same_shape(&a->schema, &b->schema, 0);
}

static char *family_sql(struct wg__tail_sub **subs, const int64_t *gs, int64_t ng,
                        const struct ArrowSchema *put) {
  struct wg_buf b;
  wg_buf_init(&b);
  int rc = appendf(&b, "SELECT %s", subs[0]->select_list);
  for (int64_t g = 0; g < ng && rc == 0; g++)
    rc = appendf(&b, ", coalesce(CAST((%s) AS BOOLEAN), false) AS \"__wg_m%lld\"",
                 subs[gs[g]]->where, (long long)g);
  if (rc == 0) rc = append_from_input(&b, subs[0], put);
  if (rc == 0) rc = wg_buf_append(&b, "", 1);
  if (rc != 0) {
    wg_buf_reset(&b);
    return NULL;
  }
  return (char *)wg_buf_detach(&b);
}

/* Whether the result has the stream's columns then one BOOLEAN "__wg_m<g>" per group: a WHERE
 * that reached out of its parentheses would change that (and is then not trusted with others). */
static bool family_schema_ok(const struct ArrowSchema *r, const struct ArrowSchema *stream,
                             int64_t ng) {
  if (r->n_children != stream->n_children + ng) return false;
  for (int64_t i = 0; i < stream->n_children; i++)
    if (!wg_schema_same(r->children[i], stream->children[i])) return false;
  for (int64_t g = 0; g < ng; g++) {
    const struct ArrowSchema *m = r->children[stream->n_children + g];
    char name[32];
    snprintf(name, sizeof(name), "__wg_m%lld", (long long)g);
    if (strcmp(m->format, "b") != 0 || m->name == NULL || strcmp(m->name, name) != 0) return false;
  }
  return true;
}

/* A new array over rows [start, start + len) of a's first ncols columns (no copy; holder keeps
 * a's buffers). */
static int rows_view(const struct ArrowArray *a, int64_t ncols, int64_t start, int64_t len,
                     struct wg_shared *holder, struct ArrowArray *dst) {
  if (wg_array_node_init(dst, a->n_buffers, ncols, holder) != 0) return ENOMEM;
  dst->length = len;
  dst->offset = a->offset + start;
  dst->null_count = a->null_count == 0 ? 0 : -1;
  for (int64_t i = 0; i < a->n_buffers; i++)
    dst->buffers[i] = a->buffers[i];
  for (int64_t i = 0; i < ncols; i++)
    if (view_node(a->children[i], holder, dst->children[i]) != 0) return ENOMEM;
  return 0;
}

static bool bit_at(const void *bits, int64_t i) {
  return (((const uint8_t *)bits)[i >> 3] >> (i & 7)) & 1;
}

/* One group's rows of the round so far, and what was already encoded for it. */
struct family_out {
  struct ArrowArray *pieces;
  int64_t n, cap, rows;
  struct ArrowArray held; /* the last batch made, not yet encoded: "more" depends on what follows */
};

/* Makes a group's pending pieces one batch (concatenated) and encodes the one before it with
 * "more"; `last`: the round's end, when the newest is encoded as the sequence's last batch. */
static int family_flush(struct wg__tail_sub *lead, struct family_out *f, uint64_t seq, bool last,
                        struct outbox *o, struct wg_error *err) {
  int rc = 0;
  if (f->n > 0) {
    struct ArrowArray one;
    rc = wg_arrow_concat(&lead->schema, f->pieces, f->n, &one, err);
    f->n = f->rows = 0;
    if (rc == 0 && f->held.release != NULL)
      rc = wg__tail_sub_encode(lead, &f->held, seq, true, &o->bbs, &o->n, &o->cap, err);
    if (rc == 0)
      wg_array_move(&one, &f->held);
    else if (one.release != NULL)
      wg_array_release(&one);
  }
  if (rc == 0 && last && f->held.release != NULL)
    rc = wg__tail_sub_encode(lead, &f->held, seq, false, &o->bbs, &o->n, &o->cap, err);
  return rc;
}

/* The groups' rows of one result batch (consumed) go to their pending pieces; a group past
 * batch_rows has them encoded ("more": the round's last batch comes at the end). */
static int family_split(struct wg__tail_hub *h, struct wg__tail_sub **subs, const int64_t *gs,
                        int64_t ng, struct ArrowArray *a, struct family_out *fo,
                        struct outbox *boxes, uint64_t seq, struct wg_error *err) {
  int64_t ncols = subs[0]->schema.n_children;
  struct ArrowArray *own = malloc(sizeof(*own));
  if (own == NULL) {
    wg_array_release(a);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  wg_array_move(a, own);
  struct wg_shared *holder = wg_shared_wrap(NULL, 0, release_array, own);
  if (holder == NULL) {
    release_array(own);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  int rc = 0;
  if (own->n_children != ncols + ng) rc = wg_error_set(err, EPROTO, "filter result shape");
  for (int64_t g = 0; g < ng && rc == 0; g++) {
    const struct ArrowArray *m = own->children[ncols + g];
    const void *valid = m->n_buffers > 1 ? m->buffers[0] : NULL;
    const void *vals = m->n_buffers > 1 ? m->buffers[1] : NULL;
    if (vals == NULL || m->length < own->offset + own->length) {
      rc = wg_error_set(err, EPROTO, "filter result: a mark column without values");
      break;
    }
    struct family_out *f = &fo[g];
    for (int64_t r = 0; r < own->length && rc == 0;) {
      int64_t j = m->offset + own->offset + r;
      if (!bit_at(vals, j) || (valid != NULL && !bit_at(valid, j))) {
        r++;
        continue;
      }
      int64_t e = r + 1;
      for (; e < own->length; e++) {
        int64_t k = m->offset + own->offset + e;
        if (!bit_at(vals, k) || (valid != NULL && !bit_at(valid, k))) break;
      }
      if (f->n == f->cap) {
        int64_t cap = f->cap ? f->cap * 2 : 8;
        struct ArrowArray *p = realloc(f->pieces, (size_t)cap * sizeof(*p));
        if (p == NULL) {
          rc = wg_error_set(err, ENOMEM, "out of memory");
          break;
        }
        f->pieces = p;
        f->cap = cap;
      }
      memset(&f->pieces[f->n], 0, sizeof(f->pieces[0]));
      if (rows_view(own, ncols, r, e - r, holder, &f->pieces[f->n]) != 0) {
        if (f->pieces[f->n].release != NULL) wg_array_release(&f->pieces[f->n]);
        rc = wg_error_set(err, ENOMEM, "out of memory");
        break;
      }
      f->n++;
      f->rows += e - r;
      r = e;
      if (f->rows >= h->s->options.batch_rows)
        rc = family_flush(subs[gs[g]], f, seq, false, &boxes[g], err);
    }
  }
  wg_shared_unref(holder); /* the views hold it */
  return rc;
}

/* The round's rows for every group of the family through one query; 0 with boxes filled. */
static int family_filter(struct wg__tail_hub *h, struct wg__tail_sub **subs, const int64_t *gs,
                         int64_t ng, struct tail_event **evs, int64_t n, struct outbox *boxes,
                         struct wg_error *err) {
  char *sql = family_sql(subs, gs, ng, &evs[0]->schema);
  if (sql == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  struct ArrowArrayStream in, out;
  int rc = batches_stream(evs, n, &in, err);
  if (rc != 0) {
    free(sql);
    return rc;
  }
  filter_arm(h);
  atomic_fetch_add(&h->filter_queries, 1);
  rc = wg_engine_query_over(h->conn, "input", &in, sql, h->s->options.batch_rows,
                            h->s->options.batch_bytes, &out, err);
  free(sql);
  if (rc != 0) {
    filter_disarm(h);
    return rc;
  }
  struct ArrowSchema rs;
  rc = out.get_schema(&out, &rs);
  if (rc == 0) {
    if (!family_schema_ok(&rs, &subs[0]->schema, ng))
      rc = wg_error_set(err, EPROTO, "the family's filter gave columns of another shape");
    wg_schema_release(&rs);
  }
  struct family_out *fo = calloc((size_t)ng, sizeof(*fo));
  if (rc == 0 && fo == NULL) rc = wg_error_set(err, ENOMEM, "out of memory");
  uint64_t seq = evs[n - 1]->seq;
  while (rc == 0) {
    struct ArrowArray a;
    rc = out.get_next(&out, &a);
    if (rc != 0) {
      const char *m = out.get_last_error(&out);
      rc = wg_error_set(err, rc, "live tail: %s", m ? m : "the filter failed");
      break;
    }
    if (a.release == NULL) break;
    rc = family_split(h, subs, gs, ng, &a, fo, boxes, seq, err);
  }
  wg_stream_release(&out);
  if (filter_disarm(h) && rc == 0) rc = wg_error_set(err, ETIMEDOUT, "the family's filter ran long");
  for (int64_t g = 0; fo != NULL && g < ng; g++) {
    if (rc == 0) rc = family_flush(subs[gs[g]], &fo[g], seq, true, &boxes[g], err);
    for (int64_t i = 0; i < fo[g].n; i++)
      if (fo[g].pieces[i].release != NULL) wg_array_release(&fo[g].pieces[i]);
    if (fo[g].held.release != NULL) wg_array_release(&fo[g].held);
    free(fo[g].pieces);
  }
  free(fo);
  return rc;
}

/* Serves the groups subs[gs[g] .. gs[g + 1]) (g < ng) of one family: one query for the round's
 * puts when they share one shape, else (or when that query fails) one query per group. */
static void serve_family(struct wg__tail_hub *h, struct wg__tail_sub **subs, const int64_t *gs,
                         int64_t ng) {
  struct tail_event *evs[WG_TAIL_ROUND_EVENTS];
  bool gap = false;
  pthread_mutex_lock(&h->mu);
  int64_t n = gather(h, subs[0], evs, &gap);
  pthread_mutex_unlock(&h->mu);
  bool one_query = !gap && n > 0;
  for (int64_t i = 0; i < n && one_query; i++)
    one_query = !evs[i]->dropped && same_shape(&evs[i]->schema, &evs[0]->schema, 0);
  struct outbox *boxes = one_query ? calloc((size_t)ng, sizeof(*boxes)) : NULL;
  struct wg_error err = {""};
  int rc = boxes != NULL ? family_filter(h, subs, gs, ng, evs, n, boxes, &err) : -1;
  if (rc == 0) {
    for (int64_t g = 0; g < ng; g++)
      fan_out(subs + gs[g], gs[g + 1] - gs[g], &boxes[g]);
    pthread_mutex_lock(&h->mu);
    for (int64_t k = 0; k < gs[ng]; k++)
      if (subs[k]->cursor < evs[n - 1]->seq) subs[k]->cursor = evs[n - 1]->seq;
    pthread_mutex_unlock(&h->mu);
  }
  for (int64_t g = 0; boxes != NULL && g < ng; g++)
    outbox_reset(&boxes[g]);
  free(boxes);
  for (int64_t i = 0; i < n; i++)
    event_unref(evs[i]);
  if (rc != 0) /* one query per group: a WHERE that fails cuts off its own group only */
    for (int64_t g = 0; g < ng; g++)
      serve_group(h, subs + gs[g], gs[g + 1] - gs[g]);
}

/* One round: every live subscriber behind its table (referenced into due, in place), groups
 * together and the groups of a family together. */
static int64_t collect(struct wg__tail_hub *h, struct wg__tail_sub **due, int64_t cap) {
  int64_t n = 0;
  for (struct wg__tail_sub *s = h->subs; s != NULL && n < cap; s = s->next) {
    if (s->state != SUB_LIVE || s->cursor >= s->table->last) continue;
    atomic_fetch_add(&s->refs, 1);
    int64_t at = n++, after = -1;
    /* after the last member of its group, else of its family, else at the end */
    for (int64_t i = n - 2; i >= 0; i--) {
      if (same_group(due[i], s)) {
        after = i;
        break;
      }
      if (same_family(due[i], s)) {
        if (after < 0) after = i;
      } else if (after >= 0) {
        break; /* a family's members are together: its group, if any, was in there */
      }
    }
    if (after >= 0) {
      memmove(&due[after + 2], &due[after + 1], (size_t)(n - 2 - after) * sizeof(*due));
      at = after + 1;
    }
    due[at] = s;
  }
  return n;
}

static void *hub_main(void *arg) {
  struct wg__tail_hub *h = arg;
  wg_engine_thread_set_access(WG_ENGINE_ACCESS_READ); /* a tail reads, whoever asked for it */
  int64_t cap = h->s->options.max_tails;
  struct wg__tail_sub **due = calloc((size_t)cap, sizeof(*due));
  int64_t *gs = calloc((size_t)cap + 1, sizeof(*gs));
  if (gs == NULL) {
    free(due);
    due = NULL;
  }
  pthread_mutex_lock(&h->mu);
  while (!h->stopping) {
    int64_t n = due != NULL ? collect(h, due, cap) : 0;
    if (n == 0) {
      evict(h, h->s->options.tail_history_bytes);
      uint64_t seen = h->work;
      while (!h->stopping && h->work == seen)
        pthread_cond_wait(&h->cv, &h->mu);
      continue;
    }
    pthread_mutex_unlock(&h->mu);
    for (int64_t i = 0; i < n;) {
      /* the family starting at i: its groups' starts in gs (relative to i) */
      int64_t ng = 0, j = i;
      while (j < n && (j == i || same_family(due[i], due[j]))) {
        gs[ng++] = j - i;
        int64_t k = j + 1;
        while (k < n && same_group(due[j], due[k]))
          k++;
        j = k;
      }
      gs[ng] = j - i;
      if (ng > 1)
        serve_family(h, due + i, gs, ng);
      else
        serve_group(h, due + i, j - i);
      i = j;
    }
    for (int64_t i = 0; i < n; i++)
      sub_unref(due[i]);
    pthread_mutex_lock(&h->mu);
    /* Rounds at most every WG_TAIL_ROUND_MS: puts that commit meanwhile go out together, a few
     * messages per subscriber per round, so that delivery costs the writers' cores little. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)WG_TAIL_ROUND_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    while (!h->stopping && pthread_cond_timedwait(&h->cv, &h->mu, &until) == 0) {
    }
  }
  pthread_mutex_unlock(&h->mu);
  free(due);
  free(gs);
  return NULL;
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t filter_limit_ms(const struct wg__tail_hub *h) {
  return h->s->options.query_timeout_ms > 0 ? h->s->options.query_timeout_ms : WG_TAIL_FILTER_MS;
}

static void *watchdog_main(void *arg) {
  struct wg__tail_hub *h = arg;
  pthread_mutex_lock(&h->wd_mu);
  while (!h->wd_stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 100 * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&h->wd_cv, &h->wd_mu, &until);
    if (h->wd_deadline_ms != 0 && !h->wd_expired && mono_ms() > h->wd_deadline_ms) {
      h->wd_expired = true;
      wg_engine_interrupt(h->conn);
    }
  }
  pthread_mutex_unlock(&h->wd_mu);
  return NULL;
}

/* Around a filter: arms the watchdog; disarms it and says whether it fired (the interrupt is then
 * cleared, so the next filter runs). */
static void filter_arm(struct wg__tail_hub *h) {
  pthread_mutex_lock(&h->wd_mu);
  h->wd_deadline_ms = mono_ms() + filter_limit_ms(h);
  pthread_mutex_unlock(&h->wd_mu);
}

static bool filter_disarm(struct wg__tail_hub *h) {
  pthread_mutex_lock(&h->wd_mu);
  h->wd_deadline_ms = 0;
  bool fired = h->wd_expired;
  h->wd_expired = false;
  if (fired) wg_engine_interrupt_clear(h->conn);
  pthread_mutex_unlock(&h->wd_mu);
  return fired;
}

/* ------------------------------------------------------------------------------------------- */
/* The hub's life */

int wg__tail_create(struct wg_server *s, struct wg__tail_hub **out, struct wg_error *err) {
  struct wg__tail_hub *h = calloc(1, sizeof(*h));
  if (h == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  h->s = s;
  pthread_mutex_init(&h->start_mu, NULL);
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  pthread_mutex_init(&h->wd_mu, NULL);
  pthread_cond_init(&h->wd_cv, NULL);
  *out = h;
  return 0;
}

static void watchdog_stop(struct wg__tail_hub *h) {
  pthread_mutex_lock(&h->wd_mu);
  h->wd_stop = true;
  pthread_cond_signal(&h->wd_cv);
  pthread_mutex_unlock(&h->wd_mu);
  pthread_join(h->watchdog, NULL);
  h->wd_stop = false;
}

int wg__tail_hub_start(struct wg__tail_hub *h, struct wg_error *err) {
  pthread_mutex_lock(&h->start_mu);
  int rc = 0;
  if (!h->started) {
    rc = wg_engine_acquire_reserved(h->s->engine, &h->conn, err);
    if (rc == 0 && pthread_create(&h->watchdog, NULL, watchdog_main, h) != 0) {
      rc = wg_error_set(err, EAGAIN, "live tail: cannot start the hub's watchdog");
      wg_engine_release(h->s->engine, h->conn);
      h->conn = NULL;
    }
    if (rc == 0 && pthread_create(&h->thread, NULL, hub_main, h) != 0) {
      rc = wg_error_set(err, EAGAIN, "live tail: cannot start the hub's thread");
      watchdog_stop(h);
      wg_engine_release(h->s->engine, h->conn);
      h->conn = NULL;
    }
    /* from here every put keeps its batches until its COMMIT, and its event comes here */
    if (rc == 0) rc = wg_engine_on_commit(h->s->engine, on_commit, h, err);
    if (rc == 0) h->started = true;
    else if (h->conn != NULL) {
      pthread_mutex_lock(&h->mu);
      h->stopping = true;
      pthread_cond_signal(&h->cv);
      pthread_mutex_unlock(&h->mu);
      pthread_join(h->thread, NULL);
      h->stopping = false;
      watchdog_stop(h);
      wg_engine_release(h->s->engine, h->conn);
      h->conn = NULL;
    }
  }
  pthread_mutex_unlock(&h->start_mu);
  return rc;
}

void wg__tail_destroy(struct wg__tail_hub *h) {
  if (h == NULL) return;
  if (h->started) {
    wg_engine_on_commit_remove(h->s->engine, on_commit, h);
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    watchdog_stop(h);
    wg_engine_release(h->s->engine, h->conn);
  }
  evict(h, -1);
  while (h->subs != NULL) { /* none: the rpc server's shutdown ended every parked call */
    struct wg__tail_sub *sub = h->subs;
    h->subs = sub->next;
    sub_unref(sub);
  }
  while (h->tables != NULL) {
    struct tail_table *t = h->tables;
    h->tables = t->next;
    free(t->key);
    free(t);
  }
  pthread_cond_destroy(&h->cv);
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->wd_cv);
  pthread_mutex_destroy(&h->wd_mu);
  pthread_mutex_destroy(&h->start_mu);
  free(h);
}

int64_t wg__tail_filter_queries(struct wg__tail_hub *h) {
  return h != NULL ? (int64_t)atomic_load(&h->filter_queries) : 0;
}

int64_t wg__tail_subscribers(struct wg__tail_hub *h) {
  if (h == NULL) return 0;
  pthread_mutex_lock(&h->mu);
  int64_t n = h->n_subs;
  pthread_mutex_unlock(&h->mu);
  return n;
}

/* ------------------------------------------------------------------------------------------- */
/* Subscribing (for tail_call.c) */

static char *dup_or_null(const char *s, bool *oom) {
  if (s == NULL) return NULL;
  char *d = strdup(s);
  if (d == NULL) *oom = true;
  return d;
}

int wg__tail_sub_create(struct wg__tail_hub *h, struct wg_rpc_call *call, const char *table_key,
                        const char *table_alias, const char *select_list, const char *where,
                        bool all_columns, char **names, char **types, int n,
                        const struct ArrowSchema *schema, struct wg__tail_sub **out,
                        struct wg_error *err) {
  *out = NULL;
  struct wg__tail_sub *sub = calloc(1, sizeof(*sub));
  if (sub == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  atomic_init(&sub->refs, 1);
  pthread_mutex_init(&sub->mu, NULL);
  wg_buf_init(&sub->fp);
  sub->hub = h;
  sub->call = call;
  sub->all_columns = all_columns;
  bool oom = false;
  sub->key = dup_or_null(table_key, &oom);
  sub->table_sql = dup_or_null(table_alias, &oom);
  sub->select_list = dup_or_null(select_list, &oom);
  sub->where = dup_or_null(where, &oom);
  sub->names = calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
  sub->types = calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
  if (sub->names == NULL || sub->types == NULL) oom = true;
  for (int i = 0; i < n && !oom; i++) {
    sub->names[i] = dup_or_null(names[i], &oom);
    sub->types[i] = dup_or_null(types[i], &oom);
    sub->n = i + 1;
  }
  int rc = oom ? wg_error_set(err, ENOMEM, "out of memory") : 0;
  if (rc == 0) rc = wg_schema_deep_copy(schema, &sub->schema, err);
  if (rc == 0) rc = wg_ipc_encoder_create(&sub->enc, &sub->schema, NULL, err);
  if (rc == 0) {
    sub->max_msgs = wg_ipc_encoder_max_messages(sub->enc);
    sub->msgs = calloc((size_t)sub->max_msgs, sizeof(*sub->msgs));
    if (sub->msgs == NULL) rc = wg_error_set(err, ENOMEM, "out of memory");
    for (int64_t i = 0; sub->msgs != NULL && i < sub->max_msgs; i++)
      wg_ipc_encoded_init(&sub->msgs[i]);
  }
  if (rc != 0) {
    sub_unref(sub);
    return rc;
  }
  *out = sub;
  return 0;
}

void wg__tail_sub_register(struct wg__tail_sub *sub, uint64_t sequence, bool resume,
                           uint64_t from_sequence, uint64_t run_base) {
  struct wg__tail_hub *h = sub->hub;
  pthread_mutex_lock(&h->mu);
  int64_t cap = h->s->options.max_tails;
  struct tail_table *t = table_get(h, sub->key, sequence);
  if (t == NULL) {
    sub->reg_code = wg_error_set(&sub->reg_err, ENOMEM, "out of memory");
  } else if (h->n_subs >= cap) {
    sub->reg_code = wg_error_set(&sub->reg_err, EBUSY,
                                 "live tail: %lld subscribers already (--max-tails)",
                                 (long long)cap);
  } else if (resume && from_sequence > sequence) {
    sub->reg_code = wg_error_set(&sub->reg_err, ERANGE,
                                 "live tail: sequence %llu is ahead of the table's newest (%llu)",
                                 (unsigned long long)from_sequence,
                                 (unsigned long long)sequence);
  } else if (resume && from_sequence < run_base) {
    sub->reg_code = wg_error_set(&sub->reg_err, ERANGE,
                                 "live tail: sequence %llu is from an earlier run of the server, "
                                 "whose history is gone; resubscribe with \"from\": \"beginning\"",
                                 (unsigned long long)from_sequence);
  } else if (resume && from_sequence < t->evicted) {
    sub->reg_code = wg_error_set(&sub->reg_err, ERANGE,
                                 "live tail: the server no longer holds the puts after sequence "
                                 "%llu (only those after %llu, --tail-history-mb); resubscribe "
                                 "with \"from\": \"beginning\"",
                                 (unsigned long long)from_sequence,
                                 (unsigned long long)t->evicted);
  } else {
    t->last = t->last > sequence ? t->last : sequence;
    sub->table = t;
    sub->cursor = resume ? from_sequence : sequence;
    sub->state = SUB_START;
    sub->next = h->subs;
    h->subs = sub;
    h->n_subs++;
    atomic_fetch_add(&sub->refs, 1); /* the list's */
  }
  pthread_mutex_unlock(&h->mu);
}

int wg__tail_sub_registered(struct wg__tail_sub *sub, struct wg_error *err) {
  if (sub->reg_code == 0 && sub->state != SUB_START)
    return wg_error_set(err, EIO, "live tail: the subscription did not start");
  if (sub->reg_code != 0) return wg_error_set(err, sub->reg_code, "%s", sub->reg_err.message);
  return 0;
}

uint64_t wg__tail_sub_cursor(const struct wg__tail_sub *sub) {
  return sub->cursor;
}

int wg__tail_sub_go_live(struct wg__tail_sub *sub, struct wg_error *err) {
  struct wg__tail_hub *h = sub->hub;
  atomic_fetch_add(&sub->refs, 1); /* the parked call's */
  int rc = wg_rpc_call_park(sub->call, on_parked, sub);
  if (rc != 0) {
    atomic_fetch_sub(&sub->refs, 1);
    wg__tail_sub_abandon(sub);
    return wg_error_set(err, rc, "live tail: the call could not be parked");
  }
  pthread_mutex_lock(&h->mu);
  if (sub->state == SUB_START) sub->state = SUB_LIVE;
  h->work++;
  pthread_cond_signal(&h->cv);
  pthread_mutex_unlock(&h->mu);
  sub_unref(sub); /* the creator's: the call is the hub's now */
  return 0;
}

void wg__tail_sub_abandon(struct wg__tail_sub *sub) {
  if (sub == NULL) return;
  pthread_mutex_lock(&sub->hub->mu);
  unlink_sub(sub->hub, sub);
  pthread_mutex_unlock(&sub->hub->mu);
  sub_unref(sub);
}
