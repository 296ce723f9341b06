/* wigeon: the hand-written FlightData codec, the hot path of DoGet/DoPut/DoExchange.
 * Decode walks the protobuf wire format across the slices of a gRPC byte buffer without
 * flattening it, then references the slices that hold the fields (copying only fields that span
 * slices). Encode writes the small header into one slice and turns every IPC body piece into a
 * slice over the array's own memory, released through a refcounted holder when gRPC is done.
 * Relies on: gRPC slices (grpc_slice_ref is thread-safe), common/buf.h, arrow/ipc.h. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "arrow/array.h"
#include "flight/flight.h"

/* FlightData field numbers (proto/flight.proto) and their protobuf keys (field << 3 | LEN). */
enum {
  FD_DESCRIPTOR = 1,
  FD_HEADER = 2,
  FD_APP_METADATA = 3,
  FD_BODY = 1000,
};
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

/* ---------------------------------------------------------------------------------------------
 * Decode */

/* A read position over the slices of a byte buffer. `pos` is the offset in the whole message. */
struct cursor {
  grpc_slice **slices;
  size_t n_slices, idx;
  const uint8_t *p, *end;
  int64_t pos, total;
};

/* Where a length-delimited field's bytes start: slice index and offset in that slice. */
struct span {
  bool present;
  size_t slice;
  int64_t off, size;
};

static bool slice_inlined(const grpc_slice *s) {
  return s->refcount == NULL; /* bytes live inside the grpc_slice struct itself */
}

/* Moves to the next non-empty slice when the current one is used up. Only called while
 * pos < total, so such a slice exists. */
static void cursor_settle(struct cursor *c) {
  while (c->p == c->end && c->idx + 1 < c->n_slices) {
    c->idx++;
    c->p = GRPC_SLICE_START_PTR(*c->slices[c->idx]);
    c->end = GRPC_SLICE_END_PTR(*c->slices[c->idx]);
  }
}

static void cursor_skip(struct cursor *c, int64_t n) {
  c->pos += n;
  while (n > 0) {
    cursor_settle(c);
    int64_t here = c->end - c->p;
    int64_t step = here < n ? here : n;
    c->p += step;
    n -= step;
  }
}

static int read_varint(struct cursor *c, uint64_t *out, const char *what, struct wg_error *err) {
  int64_t start = c->pos;
  uint64_t v = 0;
  for (int i = 0; i < 10; i++) {
    if (c->pos >= c->total)
      return wg_error_set(err, EPROTO,
                          "FlightData %s varint at byte %lld passes the end of the %lld-byte "
                          "message",
                          what, (long long)start, (long long)c->total);
    cursor_settle(c);
    uint8_t b = *c->p++;
    c->pos++;
    if (i == 9 && b > 1)
      return wg_error_set(err, EPROTO, "FlightData %s varint at byte %lld overflows 64 bits", what,
                          (long long)start);
    v |= (uint64_t)(b & 0x7F) << (7 * i);
    if ((b & 0x80) == 0) {
      *out = v;
      return 0;
    }
  }
  return EPROTO; /* unreachable: the tenth byte is <= 1 */
}

static int need(struct cursor *c, uint64_t field, uint64_t len, struct wg_error *err) {
  if (len > (uint64_t)(c->total - c->pos))
    return wg_error_set(err, EPROTO,
                        "FlightData field %llu length %llu passes the end of the %lld-byte "
                        "message",
                        (unsigned long long)field, (unsigned long long)len, (long long)c->total);
  return 0;
}

/* Walks every field, recording the last occurrence of each FlightData field. */
static int parse_fields(struct cursor *c, struct span *desc, struct span *header, struct span *app,
                        struct span *body, struct wg_error *err) {
  while (c->pos < c->total) {
    int64_t at = c->pos;
    uint64_t key, len;
    WG_RETURN_NOT_OK(read_varint(c, &key, "field key", err));
    uint64_t field = key >> 3;
    unsigned wt = (unsigned)(key & 7);
    if (field == 0 || field > 0x1FFFFFFFu)
      return wg_error_set(err, EPROTO, "FlightData field number %llu at byte %lld is invalid",
                          (unsigned long long)field, (long long)at);
    struct span *s = field == FD_DESCRIPTOR     ? desc
                     : field == FD_HEADER       ? header
                     : field == FD_APP_METADATA ? app
                     : field == FD_BODY         ? body
                                                : NULL;
    bool skippable = wt == WT_VARINT || wt == WT_I64 || wt == WT_LEN || wt == WT_I32;
    if (s != NULL && skippable && wt != WT_LEN)
      return wg_error_set(err, EPROTO,
                          "FlightData field %llu at byte %lld has wire type %u, expected 2 "
                          "(length-delimited)",
                          (unsigned long long)field, (long long)at, wt);
    switch (wt) {
    case WT_VARINT:
      WG_RETURN_NOT_OK(read_varint(c, &len, "field value", err));
      break;
    case WT_I64:
      WG_RETURN_NOT_OK(need(c, field, 8, err));
      cursor_skip(c, 8);
      break;
    case WT_I32:
      WG_RETURN_NOT_OK(need(c, field, 4, err));
      cursor_skip(c, 4);
      break;
    case WT_LEN:
      WG_RETURN_NOT_OK(read_varint(c, &len, "length", err));
      WG_RETURN_NOT_OK(need(c, field, len, err));
      if (s != NULL) {
        if (len > 0) cursor_settle(c);
        s->present = true;
        s->slice = c->idx;
        s->off = c->p - GRPC_SLICE_START_PTR(*c->slices[c->idx]);
        s->size = (int64_t)len;
      }
      cursor_skip(c, (int64_t)len);
      break;
    case WT_SGROUP:
    case WT_EGROUP:
      return wg_error_set(err, EPROTO,
                          "FlightData field %llu at byte %lld uses the group wire type %u, which "
                          "is not supported",
                          (unsigned long long)field, (long long)at, wt);
    default:
      return wg_error_set(err, EPROTO,
                          "FlightData field %llu at byte %lld has invalid wire type %u",
                          (unsigned long long)field, (long long)at, wt);
    }
  }
  return 0;
}

/* Whether the span lies in one slice whose memory we can reference (not an inlined slice). */
static bool span_in_one_slice(grpc_slice **slices, const struct span *s) {
  const grpc_slice *sl = slices[s->slice];
  return !slice_inlined(sl) && s->off + s->size <= (int64_t)GRPC_SLICE_LENGTH(*sl);
}

static const uint8_t *span_ptr(grpc_slice **slices, const struct span *s) {
  return GRPC_SLICE_START_PTR(*slices[s->slice]) + s->off;
}

static void span_copy(grpc_slice **slices, const struct span *s, uint8_t *dst) {
  size_t i = s->slice;
  int64_t off = s->off, left = s->size;
  while (left > 0) {
    int64_t here = (int64_t)GRPC_SLICE_LENGTH(*slices[i]) - off;
    int64_t n = here < left ? here : left;
    if (n > 0) memcpy(dst, GRPC_SLICE_START_PTR(*slices[i]) + off, (size_t)n);
    dst += n;
    left -= n;
    off = 0;
    i++;
  }
}

/* Keeps the slices holding the small fields (at most three) and the copies of those that span
 * slices, in one allocation. */
struct fd_holder {
  int n_slices;
  grpc_slice slices[3];
  uint8_t copy[];
};

static void fd_holder_release(void *ctx) {
  struct fd_holder *h = ctx;
  for (int i = 0; i < h->n_slices; i++)
    grpc_slice_unref(h->slices[i]);
  free(h);
}

static void body_slice_release(void *ctx) {
  grpc_slice *s = ctx;
  grpc_slice_unref(*s);
  free(s);
}

/* The body as a reference on its slice, or copied once into 64-byte aligned memory. */
static int make_body(grpc_slice **slices, const struct span *s, struct wg_shared **out,
                     struct wg_error *err) {
  if (span_in_one_slice(slices, s)) {
    grpc_slice *ref = malloc(sizeof(*ref));
    if (ref == NULL) return wg_error_set(err, ENOMEM, "FlightData body reference");
    *ref = grpc_slice_ref(*slices[s->slice]);
    *out = wg_shared_wrap(span_ptr(slices, s), s->size, body_slice_release, ref);
    if (*out == NULL) {
      body_slice_release(ref);
      return wg_error_set(err, ENOMEM, "FlightData body reference");
    }
    return 0;
  }
  if ((uint64_t)s->size > SIZE_MAX - 63)
    return wg_error_set(err, ENOMEM, "FlightData body of %lld bytes", (long long)s->size);
  uint8_t *p = aligned_alloc(64, ((size_t)s->size + 63) & ~(size_t)63);
  if (p == NULL)
    return wg_error_set(err, ENOMEM, "copying a FlightData body of %lld bytes", (long long)s->size);
  span_copy(slices, s, p);
  *out = wg_shared_take(p, s->size);
  if (*out == NULL) return wg_error_set(err, ENOMEM, "FlightData body");
  return 0;
}

/* Points the views at their bytes: in place, or copied into the holder's block. */
static int make_views(grpc_slice **slices, struct span *spans[3], struct wg_bytes *views[3],
                      struct wg_shared **holder, struct wg_error *err) {
  int64_t copy_size = 0;
  bool any = false;
  for (int i = 0; i < 3; i++) {
    *views[i] = (struct wg_bytes){NULL, 0};
    if (!spans[i]->present || spans[i]->size == 0) continue;
    any = true;
    if (!span_in_one_slice(slices, spans[i])) copy_size += spans[i]->size;
  }
  if (!any) return 0;
  struct fd_holder *h = malloc(sizeof(*h) + (size_t)copy_size);
  if (h == NULL) return wg_error_set(err, ENOMEM, "FlightData holder");
  h->n_slices = 0;
  size_t kept[3];
  int n_kept = 0;
  int64_t used = 0;
  for (int i = 0; i < 3; i++) {
    struct span *s = spans[i];
    if (!s->present || s->size == 0) continue;
    if (span_in_one_slice(slices, s)) {
      bool have = false;
      for (int k = 0; k < n_kept; k++)
        have = have || kept[k] == s->slice;
      if (!have) {
        kept[n_kept++] = s->slice;
        h->slices[h->n_slices++] = grpc_slice_ref(*slices[s->slice]);
      }
      *views[i] = (struct wg_bytes){span_ptr(slices, s), s->size};
    } else {
      span_copy(slices, s, h->copy + used);
      *views[i] = (struct wg_bytes){h->copy + used, s->size};
      used += s->size;
    }
  }
  *holder = wg_shared_wrap(NULL, 0, fd_holder_release, h);
  if (*holder == NULL) {
    fd_holder_release(h);
    return wg_error_set(err, ENOMEM, "FlightData holder");
  }
  return 0;
}

void wg_flight_data_init(struct wg_flight_data *fd) {
  memset(fd, 0, sizeof(*fd));
}

void wg_flight_data_reset(struct wg_flight_data *fd) {
  if (fd == NULL) return;
  wg_shared_unref(fd->body);
  wg_shared_unref(fd->holder);
  memset(fd, 0, sizeof(*fd));
}

int wg_flight_data_decode(grpc_byte_buffer *bb, struct wg_flight_data *out, struct wg_error *err) {
  memset(out, 0, sizeof(*out));
  if (bb == NULL) return wg_error_set(err, EINVAL, "no FlightData byte buffer");
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, bb))
    return wg_error_set(err, EPROTO, "FlightData byte buffer cannot be read (decompression)");

  /* Slice pointers stay valid while the reader (and bb) live; gather them for random access. */
  grpc_slice *stack[16], **slices = stack, *s;
  size_t n = 0, cap = 16;
  int64_t total = 0;
  int rc = 0;
  while (grpc_byte_buffer_reader_peek(&reader, &s)) {
    if (n == cap) {
      grpc_slice **bigger = malloc(2 * cap * sizeof(*bigger));
      if (bigger == NULL) {
        rc = wg_error_set(err, ENOMEM, "FlightData slice list");
        goto done;
      }
      memcpy(bigger, slices, n * sizeof(*bigger));
      if (slices != stack) free(slices);
      slices = bigger;
      cap *= 2;
    }
    slices[n++] = s;
    total += (int64_t)GRPC_SLICE_LENGTH(*s);
  }

  struct cursor c = {slices, n, 0, NULL, NULL, 0, total};
  if (n > 0) {
    c.p = GRPC_SLICE_START_PTR(*slices[0]);
    c.end = GRPC_SLICE_END_PTR(*slices[0]);
  }
  struct span desc = {0}, header = {0}, app = {0}, body = {0};
  rc = parse_fields(&c, &desc, &header, &app, &body, err);
  if (rc != 0) goto done;

  struct span *spans[3] = {&desc, &header, &app};
  struct wg_bytes *views[3] = {&out->descriptor, &out->data_header, &out->app_metadata};
  rc = make_views(slices, spans, views, &out->holder, err);
  if (rc == 0 && body.present && body.size > 0) rc = make_body(slices, &body, &out->body, err);
  if (rc != 0) wg_flight_data_reset(out);

done:
  if (slices != stack) free(slices);
  grpc_byte_buffer_reader_destroy(&reader);
  return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Encode */

static int varint_size(uint64_t v) {
  int n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/* Key (one byte for fields 1..15) + length + bytes; 0 when the field is empty (proto3 omits it). */
static int64_t small_field_size(int64_t size) {
  return size > 0 ? 1 + varint_size((uint64_t)size) + size : 0;
}

static uint8_t *put_small_field(uint8_t *p, int field, const uint8_t *data, int64_t size) {
  if (size == 0) return p;
  *p++ = (uint8_t)(field << 3 | WT_LEN);
  p = put_varint(p, (uint64_t)size);
  memcpy(p, data, (size_t)size);
  return p + size;
}

/* Padding pieces (and any short run of zeros) become slices over this block, without a refcount. */
static const uint8_t zeros[64];

static bool is_short_zero_run(const struct wg_ipc_piece *pc) {
  if (pc->size > (int64_t)sizeof(zeros)) return false;
  return pc->data == zeros || memcmp(pc->data, zeros, (size_t)pc->size) == 0;
}

static void piece_release(void *user_data) {
  wg_shared_unref(user_data);
}

static bool bytes_ok(struct wg_bytes b) {
  return b.size >= 0 && (b.size == 0 || b.data != NULL);
}

int wg_flight_data_encode(struct wg_bytes descriptor, struct wg_ipc_encoded *msg,
                          struct wg_bytes app_metadata, struct wg_shared *keepalive,
                          grpc_byte_buffer **out, struct wg_error *err) {
  *out = NULL;
  if (!bytes_ok(descriptor) || !bytes_ok(app_metadata))
    return wg_error_set(err, EINVAL, "FlightData descriptor or app_metadata with size %lld/%lld",
                        (long long)descriptor.size, (long long)app_metadata.size);
  int64_t meta_size = msg != NULL ? msg->metadata.size : 0;
  int64_t body_length = msg != NULL ? msg->body_length : 0;
  int64_t n_pieces = 0, sum = 0;
  bool need_holder = false;
  if (msg != NULL) {
    for (int64_t i = 0; i < msg->n_pieces; i++) {
      const struct wg_ipc_piece *pc = &msg->pieces[i];
      if (pc->size < 0 || (pc->size > 0 && pc->data == NULL) || pc->size > INT64_MAX - sum)
        return wg_error_set(err, EINVAL, "IPC body piece %lld has size %lld", (long long)i,
                            (long long)pc->size);
      sum += pc->size;
      if (pc->size == 0) continue;
      n_pieces++;
      if (!is_short_zero_run(pc)) need_holder = true;
    }
    if (sum != body_length || meta_size < 0)
      return wg_error_set(err, EINVAL, "IPC body pieces sum to %lld bytes, body_length is %lld",
                          (long long)sum, (long long)body_length);
  }
  /* Memory that nobody keeps alive must be static or outlive the send: then no refcount. */
  if (keepalive == NULL && (msg == NULL || msg->scratch.n_allocs + msg->scratch.n_refs == 0))
    need_holder = false;

  int64_t header_size = small_field_size(descriptor.size) + small_field_size(meta_size) +
                        small_field_size(app_metadata.size) +
                        (body_length > 0 ? 2 + varint_size((uint64_t)body_length) : 0);
  size_t n_slices = (header_size > 0 ? 1 : 0) + (size_t)n_pieces;
  grpc_slice stack[32], *slices = stack;
  if (n_slices > 32) {
    slices = malloc(n_slices * sizeof(*slices));
    if (slices == NULL) return wg_error_set(err, ENOMEM, "FlightData slice list");
  }

  /* The holder takes msg->scratch over and a reference on keepalive; on failure msg is left as
   * it was. */
  struct wg_shared *holder = NULL;
  if (need_holder) {
    struct wg_holder_builder *hb;
    holder = wg_holder_create(&hb);
    if (holder == NULL) {
      if (slices != stack) free(slices);
      return wg_error_set(err, ENOMEM, "FlightData body holder");
    }
    *hb = msg->scratch;
    wg_holder_builder_init(&msg->scratch);
    if (wg_holder_builder_add_ref(hb, keepalive) != 0) {
      msg->scratch = *hb;
      wg_holder_builder_init(hb);
      wg_shared_unref(holder);
      if (slices != stack) free(slices);
      return wg_error_set(err, ENOMEM, "FlightData body holder");
    }
  } else if (msg != NULL) {
    wg_holder_builder_reset(&msg->scratch); /* no piece points into it */
  }

  size_t k = 0;
  if (header_size > 0) {
    grpc_slice hs = grpc_slice_malloc((size_t)header_size);
    uint8_t *p = GRPC_SLICE_START_PTR(hs);
    p = put_small_field(p, FD_DESCRIPTOR, descriptor.data, descriptor.size);
    p = put_small_field(p, FD_HEADER, msg != NULL ? msg->metadata.data : NULL, meta_size);
    p = put_small_field(p, FD_APP_METADATA, app_metadata.data, app_metadata.size);
    if (body_length > 0) {
      *p++ = (uint8_t)((FD_BODY << 3 | WT_LEN) & 0x7F) | 0x80; /* 0xC2 */
      *p++ = (uint8_t)((FD_BODY << 3 | WT_LEN) >> 7);          /* 0x3E */
      p = put_varint(p, (uint64_t)body_length);
    }
    slices[k++] = hs;
  }
  for (int64_t i = 0; msg != NULL && i < msg->n_pieces; i++) {
    const struct wg_ipc_piece *pc = &msg->pieces[i];
    if (pc->size == 0) continue;
    if (is_short_zero_run(pc)) {
      slices[k++] = grpc_slice_from_static_buffer(zeros, (size_t)pc->size);
    } else if (holder == NULL) {
      slices[k++] = grpc_slice_from_static_buffer(pc->data, (size_t)pc->size);
    } else {
      slices[k++] = grpc_slice_new_with_user_data((void *)pc->data, (size_t)pc->size, piece_release,
                                                  wg_shared_ref(holder));
    }
  }
  *out = grpc_raw_byte_buffer_create(slices, k);
  for (size_t i = 0; i < k; i++)
    grpc_slice_unref(slices[i]);
  if (slices != stack) free(slices);
  wg_shared_unref(holder);
  return 0;
}
