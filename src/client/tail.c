/* wigeon: the live tail (docs/tail.md) on the client: the JSON ticket (built with cJSON), a DoGet
 * with the tail's own deadline (get.c), and each batch's app_metadata {"seq": N, "more": B} read
 * back. The first batch of zero rows is the start marker: the batches before it are the snapshot.
 * wg_tail_cancel may run on another thread than the reader; it cancels the gRPC call, which ends a
 * blocked read, and the tail then ends as if the server had ended it without error. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "arrow/array.h"
#include "client/internal.h"

struct wg_tail_stream {
  struct ArrowArrayStream s; /* the DoGet (get.c) */
  struct ArrowSchema schema;
  bool started; /* the start marker has been seen */
  atomic_bool cancelled;
  struct wg_status failed; /* a malformed batch ended the tail (the stream stays until close,
                              so that a wg_tail_cancel racing with it finds it) */
};

/* The ticket's JSON for o into *out (malloc'ed, NUL-terminated). */
static int tail_ticket(const struct wg_tail_options *o, char **out, struct wg_error *err) {
  *out = NULL;
  cJSON *root = cJSON_CreateObject();
  bool ok = root != NULL;
  if (ok && o->schema_name != NULL) {
    cJSON *name = cJSON_AddArrayToObject(root, "tail");
    ok = name != NULL && cJSON_AddItemToArray(name, cJSON_CreateString(o->schema_name)) &&
         cJSON_AddItemToArray(name, cJSON_CreateString(o->table));
  } else if (ok) {
    ok = cJSON_AddStringToObject(root, "tail", o->table) != NULL;
  }
  if (ok && o->where != NULL) ok = cJSON_AddStringToObject(root, "where", o->where) != NULL;
  if (ok && o->columns != NULL) {
    cJSON *cols = cJSON_AddArrayToObject(root, "columns");
    ok = cols != NULL;
    for (int i = 0; ok && i < o->n_columns; i++)
      ok = o->columns[i] != NULL && cJSON_AddItemToArray(cols, cJSON_CreateString(o->columns[i]));
    if (!ok && cols != NULL) {
      cJSON_Delete(root);
      return wg_error_set(err, EINVAL, "invalid argument: wg_tail's columns[] holds a NULL");
    }
  }
  if (ok && o->from_sequence_set) {
    char seq[32]; /* raw, so that every uint64_t is exact (a double holds 53 bits) */
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)o->from_sequence);
    ok = cJSON_AddRawToObject(root, "from", seq) != NULL;
  } else if (ok && o->from != NULL) {
    ok = cJSON_AddStringToObject(root, "from", o->from) != NULL;
  }
  if (ok) *out = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (*out == NULL) return wg_error_set(err, ENOMEM, "out of memory for the tail's ticket");
  return 0;
}

/* The batch's app_metadata into info (sequence and more). EPROTO when it is not the tail's. */
static int tail_meta(struct wg_bytes m, struct wg_tail_info *info, struct wg_error *err) {
  if (m.size <= 0)
    return wg_error_set(err, EPROTO, "live tail: a batch without app_metadata (is the server "
                                     "a wigeon server with live tails?)");
  cJSON *j = cJSON_ParseWithLength((const char *)m.data, (size_t)m.size);
  const cJSON *seq = cJSON_GetObjectItemCaseSensitive(j, "seq");
  const cJSON *more = cJSON_GetObjectItemCaseSensitive(j, "more");
  /* a double is exact up to 2^53; the server's sequences are far below it */
  bool ok = cJSON_IsNumber(seq) && seq->valuedouble >= 0 && seq->valuedouble < 9007199254740992.0 &&
            seq->valuedouble == (double)(uint64_t)seq->valuedouble &&
            (more == NULL || cJSON_IsBool(more));
  if (ok) {
    info->sequence = (uint64_t)seq->valuedouble;
    info->more = cJSON_IsTrue(more);
  }
  cJSON_Delete(j);
  if (!ok)
    return wg_error_set(err, EPROTO, "live tail: a batch's app_metadata is not {\"seq\": N, "
                                     "\"more\": B}: %.*s",
                        (int)(m.size > 200 ? 200 : m.size), (const char *)m.data);
  return 0;
}

int wg_tail_open(wg_client *client, const struct wg_tail_options *o, wg_tail_stream **out,
                 struct wg_status *status) {
  if (out != NULL) *out = NULL;
  if (client == NULL || o == NULL || o->table == NULL || out == NULL || o->n_columns < 0)
    return wg__status_invalid(status, "wg_tail needs a client, options with a table and an output");
  struct wg_error err = {""};
  char *ticket = NULL;
  int rc = tail_ticket(o, &ticket, &err);
  if (rc != 0) return wg__status_set(status, rc, 0, err.message);
  struct wg_tail_stream *t = calloc(1, sizeof(*t));
  if (t == NULL) {
    free(ticket);
    return wg__status_set(status, ENOMEM, 0, "out of memory");
  }
  int code = wg__do_get_open(client, ticket, strlen(ticket), o->timeout_ms, &t->s, status);
  free(ticket);
  if (code != 0) {
    free(t);
    return code;
  }
  /* the schema first: a bad where, column or table is the server's answer to the call */
  if (t->s.get_schema(&t->s, &t->schema) != 0) {
    code = wg_stream_status(&t->s, status);
    if (code == 0) code = wg__status_set(status, EPROTO, 0, "live tail: no schema");
    wg_tail_close(t);
    return code;
  }
  *out = t;
  return wg__status_set(status, 0, 0, NULL);
}

const struct ArrowSchema *wg_tail_schema(const wg_tail_stream *t) {
  return t != NULL ? &t->schema : NULL;
}

int wg_tail_next(wg_tail_stream *t, struct ArrowArray *batch, struct wg_tail_info *info,
                 struct wg_status *status) {
  if (batch != NULL) batch->release = NULL;
  if (t == NULL || batch == NULL || info == NULL)
    return wg__status_invalid(status, "wg_tail_next needs a tail, a batch and an info");
  memset(info, 0, sizeof(*info));
  if (t->failed.code != 0) {
    if (status != NULL) *status = t->failed;
    return t->failed.code;
  }
  int rc = t->s.get_next(&t->s, batch);
  if (atomic_load(&t->cancelled)) { /* what arrives after a cancel is not wanted */
    if (batch->release != NULL) batch->release(batch);
    batch->release = NULL;
    return wg__status_set(status, 0, 0, NULL);
  }
  if (rc != 0) return wg_stream_status(&t->s, status);
  if (batch->release == NULL) return wg__status_set(status, 0, 0, NULL);
  struct wg_error err = {""};
  rc = tail_meta(wg__stream_app_metadata(&t->s), info, &err);
  if (rc != 0) {
    batch->release(batch);
    batch->release = NULL;
    wg__stream_cancel(&t->s);
    wg__status_set(&t->failed, rc, 0, err.message);
    return wg__status_set(status, rc, 0, err.message);
  }
  info->start = !t->started && batch->length == 0;
  info->snapshot = !t->started && !info->start;
  if (info->start) t->started = true;
  return wg__status_set(status, 0, 0, NULL);
}

void wg_tail_cancel(wg_tail_stream *t) {
  if (t == NULL) return;
  atomic_store(&t->cancelled, true);
  wg__stream_cancel(&t->s);
}

void wg_tail_close(wg_tail_stream *t) {
  if (t == NULL) return;
  wg_stream_release(&t->s); /* cancels the call when it has not ended */
  wg_schema_release(&t->schema);
  free(t);
}

int wg_tail(wg_client *client, const struct wg_tail_options *o, wg_tail_fn fn, void *ctx,
            struct wg_status *status) {
  if (fn == NULL) return wg__status_invalid(status, "wg_tail needs a callback");
  wg_tail_stream *t = NULL;
  int code = wg_tail_open(client, o, &t, status);
  while (code == 0) {
    struct ArrowArray batch;
    struct wg_tail_info info;
    code = wg_tail_next(t, &batch, &info, status);
    if (code != 0 || batch.release == NULL) break;
    int stop = fn(ctx, &t->schema, &batch, &info);
    if (batch.release != NULL) batch.release(&batch);
    if (stop != 0) break; /* wg_tail_close cancels the call */
  }
  wg_tail_close(t);
  return code;
}
