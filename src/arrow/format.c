/* wigeon: format string parsing (see format.h); the grammar is the C Data Interface's. */
#include "arrow/format.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_int(const char **p, int32_t *out) {
  const char *s = *p;
  int neg = 0;
  if (*s == '-') {
    neg = 1;
    s++;
  }
  if (*s < '0' || *s > '9') return -1;
  int64_t v = 0;
  while (*s >= '0' && *s <= '9') {
    v = v * 10 + (*s - '0');
    if (v > INT32_MAX) return -1;
    s++;
  }
  *out = (int32_t)(neg ? -v : v);
  *p = s;
  return 0;
}

static int time_unit(char c, enum wg_time_unit *u) {
  switch (c) {
  case 's':
    *u = WG_TIME_SECOND;
    return 0;
  case 'm':
    *u = WG_TIME_MILLI;
    return 0;
  case 'u':
    *u = WG_TIME_MICRO;
    return 0;
  case 'n':
    *u = WG_TIME_NANO;
    return 0;
  default:
    return -1;
  }
}

int wg_arrow_type_parse(const char *format, struct wg_arrow_type *t, struct wg_error *err) {
  memset(t, 0, sizeof(*t));
  t->timezone = "";
  if (format == NULL) return wg_error_set(err, EINVAL, "missing format string");
  const char *f = format, *p;
#define SIMPLE(str, type_id, width)                                                                \
  if (strcmp(f, str) == 0) {                                                                       \
    t->id = type_id;                                                                               \
    t->bit_width = width;                                                                          \
    return 0;                                                                                      \
  }
  SIMPLE("n", WG_TYPE_NA, 0)
  SIMPLE("b", WG_TYPE_BOOL, 1)
  SIMPLE("c", WG_TYPE_INT8, 8)
  SIMPLE("C", WG_TYPE_UINT8, 8)
  SIMPLE("s", WG_TYPE_INT16, 16)
  SIMPLE("S", WG_TYPE_UINT16, 16)
  SIMPLE("i", WG_TYPE_INT32, 32)
  SIMPLE("I", WG_TYPE_UINT32, 32)
  SIMPLE("l", WG_TYPE_INT64, 64)
  SIMPLE("L", WG_TYPE_UINT64, 64)
  SIMPLE("e", WG_TYPE_HALF_FLOAT, 16)
  SIMPLE("f", WG_TYPE_FLOAT, 32)
  SIMPLE("g", WG_TYPE_DOUBLE, 64)
  SIMPLE("z", WG_TYPE_BINARY, 8)
  SIMPLE("Z", WG_TYPE_LARGE_BINARY, 8)
  SIMPLE("u", WG_TYPE_STRING, 8)
  SIMPLE("U", WG_TYPE_LARGE_STRING, 8)
  SIMPLE("vz", WG_TYPE_BINARY_VIEW, 128)
  SIMPLE("vu", WG_TYPE_STRING_VIEW, 128)
  SIMPLE("tdD", WG_TYPE_DATE32, 32)
  SIMPLE("tdm", WG_TYPE_DATE64, 64)
  SIMPLE("tiM", WG_TYPE_INTERVAL_MONTHS, 32)
  SIMPLE("tiD", WG_TYPE_INTERVAL_DAY_TIME, 64)
  SIMPLE("tin", WG_TYPE_INTERVAL_MONTH_DAY_NANO, 128)
  SIMPLE("+l", WG_TYPE_LIST, 0)
  SIMPLE("+L", WG_TYPE_LARGE_LIST, 0)
  SIMPLE("+vl", WG_TYPE_LIST_VIEW, 0)
  SIMPLE("+vL", WG_TYPE_LARGE_LIST_VIEW, 0)
  SIMPLE("+s", WG_TYPE_STRUCT, 0)
  SIMPLE("+m", WG_TYPE_MAP, 0)
  SIMPLE("+r", WG_TYPE_RUN_END_ENCODED, 0)
#undef SIMPLE
  if (strncmp(f, "w:", 2) == 0) {
    p = f + 2;
    if (parse_int(&p, &t->fixed_size) != 0 || *p != '\0' || t->fixed_size < 0 ||
        t->fixed_size > INT32_MAX / 8)
      goto bad;
    t->id = WG_TYPE_FIXED_SIZE_BINARY;
    t->bit_width = t->fixed_size * 8;
    return 0;
  }
  if (strncmp(f, "+w:", 3) == 0) {
    p = f + 3;
    if (parse_int(&p, &t->fixed_size) != 0 || *p != '\0' || t->fixed_size < 0) goto bad;
    t->id = WG_TYPE_FIXED_SIZE_LIST;
    return 0;
  }
  if (strncmp(f, "d:", 2) == 0) {
    p = f + 2;
    int32_t bw = 128;
    if (parse_int(&p, &t->precision) != 0 || *p++ != ',' || parse_int(&p, &t->scale) != 0) goto bad;
    if (*p == ',') {
      p++;
      if (parse_int(&p, &bw) != 0) goto bad;
    }
    if (*p != '\0' || (bw != 32 && bw != 64 && bw != 128 && bw != 256)) goto bad;
    t->id = WG_TYPE_DECIMAL;
    t->bit_width = bw;
    return 0;
  }
  if (f[0] == 't' && (f[1] == 't' || f[1] == 'D') && f[2] != '\0' && f[3] == '\0') {
    if (time_unit(f[2], &t->time_unit) != 0) goto bad;
    if (f[1] == 'D') {
      t->id = WG_TYPE_DURATION;
      t->bit_width = 64;
    } else {
      t->id = t->time_unit <= WG_TIME_MILLI ? WG_TYPE_TIME32 : WG_TYPE_TIME64;
      t->bit_width = t->time_unit <= WG_TIME_MILLI ? 32 : 64;
    }
    return 0;
  }
  if (f[0] == 't' && f[1] == 's' && f[2] != '\0' && f[3] == ':') {
    if (time_unit(f[2], &t->time_unit) != 0) goto bad;
    t->id = WG_TYPE_TIMESTAMP;
    t->bit_width = 64;
    t->timezone = f + 4;
    return 0;
  }
  if (strncmp(f, "+us:", 4) == 0 || strncmp(f, "+ud:", 4) == 0) {
    t->id = f[2] == 's' ? WG_TYPE_SPARSE_UNION : WG_TYPE_DENSE_UNION;
    p = f + 4;
    while (*p != '\0') {
      int32_t id;
      if (parse_int(&p, &id) != 0 || id < 0 || id > 127 || t->n_type_ids >= 128) goto bad;
      t->type_ids[t->n_type_ids++] = (int8_t)id;
      if (*p == ',') {
        p++;
        if (*p == '\0') goto bad;
      } else if (*p != '\0') {
        goto bad;
      }
    }
    return 0;
  }
bad:
  return wg_error_set(err, EINVAL, "unsupported or malformed format string '%.64s'", format);
}

int wg_arrow_type_n_buffers(const struct wg_arrow_type *t) {
  switch (t->id) {
  case WG_TYPE_NA:
  case WG_TYPE_RUN_END_ENCODED:
    return 0;
  case WG_TYPE_STRUCT:
  case WG_TYPE_FIXED_SIZE_LIST:
  case WG_TYPE_SPARSE_UNION:
    return 1;
  case WG_TYPE_BINARY:
  case WG_TYPE_LARGE_BINARY:
  case WG_TYPE_STRING:
  case WG_TYPE_LARGE_STRING:
  case WG_TYPE_LIST_VIEW:
  case WG_TYPE_LARGE_LIST_VIEW:
    return 3;
  default:
    return 2; /* validity + data/offsets; dense union: type ids + offsets */
  }
}

int wg_arrow_type_n_children(const struct wg_arrow_type *t) {
  switch (t->id) {
  case WG_TYPE_LIST:
  case WG_TYPE_LARGE_LIST:
  case WG_TYPE_LIST_VIEW:
  case WG_TYPE_LARGE_LIST_VIEW:
  case WG_TYPE_FIXED_SIZE_LIST:
  case WG_TYPE_MAP:
    return 1;
  case WG_TYPE_RUN_END_ENCODED:
    return 2;
  case WG_TYPE_STRUCT:
  case WG_TYPE_SPARSE_UNION:
  case WG_TYPE_DENSE_UNION:
    return -1;
  default:
    return 0;
  }
}

int wg_arrow_type_has_validity(const struct wg_arrow_type *t) {
  return t->id != WG_TYPE_NA && t->id != WG_TYPE_SPARSE_UNION && t->id != WG_TYPE_DENSE_UNION &&
         t->id != WG_TYPE_RUN_END_ENCODED;
}

/* ---------------------------------------------------------------------------------------------
 * Type names for messages */

struct describe {
  char *out;
  size_t size, len;
};

static void say(struct describe *d, const char *s) {
  for (; *s && d->len + 1 < d->size; s++)
    d->out[d->len++] = *s;
  d->out[d->len] = '\0';
}

static void say_int(struct describe *d, int64_t v) {
  char tmp[24];
  snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
  say(d, tmp);
}

static const char *unit_name(enum wg_time_unit u) {
  static const char *names[] = {"s", "ms", "us", "ns"};
  return names[u];
}

static void describe_node(struct describe *d, const struct ArrowSchema *s, int depth);

static void describe_children(struct describe *d, const struct ArrowSchema *s, bool named,
                              const struct wg_arrow_type *t, int depth) {
  say(d, "<");
  for (int64_t i = 0; s->children != NULL && i < s->n_children; i++) {
    if (i > 0) say(d, ", ");
    if (named && s->children[i] != NULL && s->children[i]->name != NULL) {
      say(d, s->children[i]->name);
      say(d, ": ");
    }
    describe_node(d, s->children[i], depth + 1);
    if (t != NULL && i < t->n_type_ids) {
      say(d, "=");
      say_int(d, t->type_ids[i]);
    }
  }
  say(d, ">");
}

static void describe_node(struct describe *d, const struct ArrowSchema *s, int depth) {
  struct wg_arrow_type t;
  if (s == NULL || depth > 32) {
    say(d, "...");
    return;
  }
  if (s->dictionary != NULL) {
    say(d, "dictionary<values=");
    describe_node(d, s->dictionary, depth + 1);
    say(d, ", indices=");
  }
  static const struct {
    enum wg_type_id id;
    const char *name;
  } simple[] = {
      {WG_TYPE_NA, "null"},
      {WG_TYPE_BOOL, "bool"},
      {WG_TYPE_INT8, "int8"},
      {WG_TYPE_UINT8, "uint8"},
      {WG_TYPE_INT16, "int16"},
      {WG_TYPE_UINT16, "uint16"},
      {WG_TYPE_INT32, "int32"},
      {WG_TYPE_UINT32, "uint32"},
      {WG_TYPE_INT64, "int64"},
      {WG_TYPE_UINT64, "uint64"},
      {WG_TYPE_HALF_FLOAT, "halffloat (float16)"},
      {WG_TYPE_FLOAT, "float"},
      {WG_TYPE_DOUBLE, "double"},
      {WG_TYPE_BINARY, "binary"},
      {WG_TYPE_LARGE_BINARY, "large_binary"},
      {WG_TYPE_STRING, "string"},
      {WG_TYPE_LARGE_STRING, "large_string"},
      {WG_TYPE_BINARY_VIEW, "binary_view"},
      {WG_TYPE_STRING_VIEW, "string_view"},
      {WG_TYPE_DATE32, "date32"},
      {WG_TYPE_DATE64, "date64"},
      {WG_TYPE_INTERVAL_MONTHS, "month_interval"},
      {WG_TYPE_INTERVAL_DAY_TIME, "day_time_interval"},
      {WG_TYPE_INTERVAL_MONTH_DAY_NANO, "month_day_nano_interval"},
  };
  if (wg_arrow_type_parse(s->format, &t, NULL) != 0) {
    say(d, "format \"");
    say(d, s->format ? s->format : "");
    say(d, "\"");
  } else {
    const char *name = NULL;
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
      if (simple[i].id == t.id) name = simple[i].name;
    if (name != NULL) {
      say(d, name);
    } else {
      switch (t.id) {
      case WG_TYPE_FIXED_SIZE_BINARY:
        say(d, "fixed_size_binary[");
        say_int(d, t.fixed_size);
        say(d, "]");
        break;
      case WG_TYPE_DECIMAL:
        say(d, "decimal");
        say_int(d, t.bit_width);
        say(d, "(");
        say_int(d, t.precision);
        say(d, ", ");
        say_int(d, t.scale);
        say(d, ")");
        break;
      case WG_TYPE_TIME32:
      case WG_TYPE_TIME64:
      case WG_TYPE_DURATION:
      case WG_TYPE_TIMESTAMP:
        say(d, t.id == WG_TYPE_TIME32   ? "time32["
               : t.id == WG_TYPE_TIME64 ? "time64["
               : t.id == WG_TYPE_DURATION ? "duration["
                                          : "timestamp[");
        say(d, unit_name(t.time_unit));
        if (t.id == WG_TYPE_TIMESTAMP && t.timezone[0] != '\0') {
          say(d, ", tz=");
          say(d, t.timezone);
        }
        say(d, "]");
        break;
      case WG_TYPE_LIST:
      case WG_TYPE_LARGE_LIST:
      case WG_TYPE_LIST_VIEW:
      case WG_TYPE_LARGE_LIST_VIEW:
      case WG_TYPE_FIXED_SIZE_LIST:
      case WG_TYPE_MAP:
      case WG_TYPE_RUN_END_ENCODED:
        say(d, t.id == WG_TYPE_LIST              ? "list"
               : t.id == WG_TYPE_LARGE_LIST      ? "large_list"
               : t.id == WG_TYPE_LIST_VIEW       ? "list_view"
               : t.id == WG_TYPE_LARGE_LIST_VIEW ? "large_list_view"
               : t.id == WG_TYPE_FIXED_SIZE_LIST ? "fixed_size_list"
               : t.id == WG_TYPE_MAP             ? "map"
                                                 : "run_end_encoded");
        if (t.id == WG_TYPE_MAP && s->n_children == 1 && s->children != NULL &&
            s->children[0] != NULL)
          describe_children(d, s->children[0], false, NULL, depth + 1);
        else
          describe_children(d, s, false, NULL, depth);
        if (t.id == WG_TYPE_FIXED_SIZE_LIST) {
          say(d, "[");
          say_int(d, t.fixed_size);
          say(d, "]");
        }
        break;
      case WG_TYPE_STRUCT:
        say(d, "struct");
        describe_children(d, s, true, NULL, depth);
        break;
      case WG_TYPE_SPARSE_UNION:
      case WG_TYPE_DENSE_UNION:
        say(d, t.id == WG_TYPE_SPARSE_UNION ? "sparse_union" : "dense_union");
        describe_children(d, s, true, &t, depth);
        break;
      default:
        say(d, "format \"");
        say(d, s->format);
        say(d, "\"");
      }
    }
  }
  if (s->dictionary != NULL) say(d, ">");
}

const char *wg_arrow_schema_describe(const struct ArrowSchema *schema, char *out, size_t size) {
  if (out == NULL || size == 0) return "";
  struct describe d = {out, size, 0};
  out[0] = '\0';
  describe_node(&d, schema, 0);
  return out;
}
