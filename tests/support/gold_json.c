/* wigeon tests: compare decoded Arrow C Data Interface schemas and batches with the Arrow
 * integration JSON (see gold_json.h). The JSON column tree is first turned into flat C vectors
 * (struct jcol) so that every lookup is O(1); comparisons are then driven by the JSON field type,
 * and every read of the decoded array is guarded by a shape check (n_buffers, n_children, NULL
 * buffers), so a wrong array produces a message rather than a crash. */
#include "gold_json.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "arrow/array.h"
#include "common/buf.h"

#define MAX_DEPTH 64

/* ============================================================================================
 * Loading */

/* 64-bit integers that the JSON writes as bare numbers (interval nanoseconds) do not survive
 * cJSON's double; quote every integer literal longer than 15 digits so it is kept as a string. */
static int quote_big_integers(const char *s, int64_t n, struct wg_buf *out) {
  int64_t i = 0;
  while (i < n) {
    char ch = s[i];
    if (ch == '"') {
      int64_t j = i + 1;
      while (j < n && s[j] != '"')
        j += (s[j] == '\\') ? 2 : 1;
      if (j < n) j++;
      if (j > n) j = n;
      WG_RETURN_NOT_OK(wg_buf_append(out, s + i, j - i));
      i = j;
    } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
      int64_t j = i + (ch == '-');
      int64_t digits = j;
      while (j < n && s[j] >= '0' && s[j] <= '9')
        j++;
      int64_t n_digits = j - digits;
      bool integral = !(j < n && (s[j] == '.' || s[j] == 'e' || s[j] == 'E'));
      if (integral && n_digits > 15) {
        WG_RETURN_NOT_OK(wg_buf_append(out, "\"", 1));
        WG_RETURN_NOT_OK(wg_buf_append(out, s + i, j - i));
        WG_RETURN_NOT_OK(wg_buf_append(out, "\"", 1));
      } else {
        while (j < n && strchr("0123456789+-.eE", s[j]) != NULL)
          j++;
        WG_RETURN_NOT_OK(wg_buf_append(out, s + i, j - i));
      }
      i = j;
    } else {
      WG_RETURN_NOT_OK(wg_buf_append(out, &ch, 1));
      i++;
    }
  }
  return wg_buf_append(out, "", 1);
}

int wg_gold_json_load(struct wg_gold_json *g, const char *path, struct wg_error *err) {
  memset(g, 0, sizeof(*g));
  const char *slash = strrchr(path, '/');
  snprintf(g->name, sizeof(g->name), "%s", slash ? slash + 1 : path);
  gzFile f = gzopen(path, "rb");
  if (f == NULL) return wg_error_set(err, ENOENT, "cannot open %s", path);
  struct wg_buf raw, text;
  wg_buf_init(&raw);
  wg_buf_init(&text);
  int rc = 0;
  for (;;) {
    if (wg_buf_reserve(&raw, 1 << 16) != 0) {
      rc = wg_error_set(err, ENOMEM, "out of memory reading %s", path);
      break;
    }
    int got = gzread(f, raw.data + raw.size, 1 << 16);
    if (got < 0) {
      int zerr = 0;
      rc = wg_error_set(err, EINVAL, "%s: gzread: %s", path, gzerror(f, &zerr));
      break;
    }
    if (got == 0) break;
    raw.size += got;
  }
  gzclose(f);
  if (rc == 0 && quote_big_integers((const char *)raw.data, raw.size, &text) != 0)
    rc = wg_error_set(err, ENOMEM, "out of memory preparing %s", path);
  wg_buf_reset(&raw);
  if (rc != 0) {
    wg_buf_reset(&text);
    return rc;
  }
  g->root = cJSON_Parse((const char *)text.data);
  wg_buf_reset(&text);
  if (g->root == NULL) return wg_error_set(err, EINVAL, "%s: not valid JSON", path);
  g->schema = cJSON_GetObjectItemCaseSensitive(g->root, "schema");
  g->batches = cJSON_GetObjectItemCaseSensitive(g->root, "batches");
  g->dictionaries = cJSON_GetObjectItemCaseSensitive(g->root, "dictionaries");
  if (!cJSON_IsObject(g->schema) || !cJSON_IsArray(g->batches) ||
      !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(g->schema, "fields"))) {
    wg_gold_json_reset(g);
    return wg_error_set(err, EINVAL, "%s: no schema.fields or batches", path);
  }
  if (g->dictionaries != NULL && !cJSON_IsArray(g->dictionaries)) g->dictionaries = NULL;
  return 0;
}

void wg_gold_json_reset(struct wg_gold_json *g) {
  if (g->root != NULL) cJSON_Delete(g->root);
  g->root = NULL;
  g->schema = g->batches = g->dictionaries = NULL;
}

int64_t wg_gold_json_n_batches(const struct wg_gold_json *g) {
  return g->batches ? cJSON_GetArraySize(g->batches) : 0;
}

/* ============================================================================================
 * JSON value helpers */

static const cJSON *jget(const cJSON *o, const char *key) {
  return o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static const char *jstr(const cJSON *o, const char *key) {
  const cJSON *v = jget(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool json_get_i64(const cJSON *v, int64_t *out) {
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return false;
    if (d != (double)(int64_t)d) return false;
    *out = (int64_t)d;
    return true;
  }
  if (cJSON_IsString(v)) {
    char *end;
    errno = 0;
    long long x = strtoll(v->valuestring, &end, 10);
    if (errno != 0 || end == v->valuestring || *end != '\0') return false;
    *out = x;
    return true;
  }
  if (cJSON_IsBool(v)) {
    *out = cJSON_IsTrue(v);
    return true;
  }
  return false;
}

static bool json_get_u64(const cJSON *v, uint64_t *out) {
  if (cJSON_IsString(v)) {
    char *end;
    errno = 0;
    if (v->valuestring[0] == '-') return false;
    unsigned long long x = strtoull(v->valuestring, &end, 10);
    if (errno != 0 || end == v->valuestring || *end != '\0') return false;
    *out = x;
    return true;
  }
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (!(d >= 0 && d < 18446744073709551616.0)) return false;
    if (d != (double)(uint64_t)d) return false;
    *out = (uint64_t)d;
    return true;
  }
  return false;
}

static bool json_get_double(const cJSON *v, double *out) {
  if (cJSON_IsNumber(v)) {
    *out = v->valuedouble;
    return true;
  }
  if (cJSON_IsString(v)) {
    char *end;
    *out = strtod(v->valuestring, &end);
    return end != v->valuestring && *end == '\0';
  }
  return false;
}

static int hex_digit(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* Decodes hex into b (replacing its content). Returns 0 or EINVAL. */
static int hex_decode(const char *s, struct wg_buf *b) {
  b->size = 0;
  size_t n = strlen(s);
  if (n % 2 != 0) return EINVAL;
  WG_RETURN_NOT_OK(wg_buf_reserve(b, (int64_t)n / 2 + 1));
  for (size_t i = 0; i < n; i += 2) {
    int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
    if (hi < 0 || lo < 0) return EINVAL;
    b->data[b->size++] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

/* Renders bytes for a message: text in quotes when printable, else hex; truncated. */
static void render_bytes(const uint8_t *p, int64_t n, bool text, char *out, size_t cap) {
  size_t pos = 0;
  int64_t shown = n > 40 ? 40 : n;
  bool printable = text;
  for (int64_t i = 0; i < shown && printable; i++)
    if (p[i] < 0x20 || p[i] == 0x7f) printable = false;
  if (printable) {
    pos += (size_t)snprintf(out + pos, cap - pos, "\"");
    for (int64_t i = 0; i < shown && pos + 2 < cap; i++)
      out[pos++] = (char)p[i];
    out[pos] = '\0';
    snprintf(out + pos, cap - pos, "\"%s(%lld bytes)", n > shown ? "..." : "", (long long)n);
  } else {
    for (int64_t i = 0; i < shown && pos + 3 < cap; i++)
      pos += (size_t)snprintf(out + pos, cap - pos, "%02X", p[i]);
    snprintf(out + pos, cap - pos, "%s(%lld bytes)", n > shown ? "..." : "", (long long)n);
  }
}

/* Little-endian unsigned read of `width` bytes. */
static uint64_t load_le(const uint8_t *p, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static int64_t sign_extend(uint64_t v, int width) {
  if (width >= 8) return (int64_t)v;
  int shift = 64 - 8 * width;
  return (int64_t)(v << shift) >> shift;
}

/* ---- decimals: 256-bit two's complement as 4 little-endian uint64 limbs ---- */

static bool decimal_parse(const char *s, uint64_t limbs[4]) {
  memset(limbs, 0, 4 * sizeof(uint64_t));
  bool neg = false;
  if (*s == '-' || *s == '+') neg = (*s++ == '-');
  if (*s == '\0') return false;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    unsigned __int128 carry = (unsigned)(*s - '0');
    for (int i = 0; i < 4; i++) {
      unsigned __int128 x = (unsigned __int128)limbs[i] * 10 + carry;
      limbs[i] = (uint64_t)x;
      carry = x >> 64;
    }
  }
  if (neg) {
    unsigned __int128 carry = 1;
    for (int i = 0; i < 4; i++) {
      unsigned __int128 x = (unsigned __int128)(~limbs[i]) + carry;
      limbs[i] = (uint64_t)x;
      carry = x >> 64;
    }
  }
  return true;
}

/* Sign-extends `width` little-endian bytes to 256 bits. */
static void decimal_load(const uint8_t *p, int width, uint64_t limbs[4]) {
  uint8_t bytes[32];
  uint8_t fill = (p[width - 1] & 0x80) ? 0xFF : 0x00;
  memset(bytes, fill, sizeof(bytes));
  memcpy(bytes, p, (size_t)width);
  for (int i = 0; i < 4; i++)
    limbs[i] = load_le(bytes + 8 * i, 8);
}

static void decimal_format(const uint64_t in[4], char *out, size_t cap) {
  uint64_t l[4];
  memcpy(l, in, sizeof(l));
  bool neg = (l[3] >> 63) != 0;
  if (neg) {
    unsigned __int128 carry = 1;
    for (int i = 0; i < 4; i++) {
      unsigned __int128 x = (unsigned __int128)(~l[i]) + carry;
      l[i] = (uint64_t)x;
      carry = x >> 64;
    }
  }
  char tmp[90];
  int n = 0;
  do {
    unsigned __int128 rem = 0;
    for (int i = 3; i >= 0; i--) {
      unsigned __int128 cur = rem << 64 | l[i];
      l[i] = (uint64_t)(cur / 10);
      rem = cur % 10;
    }
    tmp[n++] = (char)('0' + (int)rem);
  } while ((l[0] | l[1] | l[2] | l[3]) != 0 && n < 88);
  size_t pos = 0;
  if (neg && pos + 1 < cap) out[pos++] = '-';
  while (n > 0 && pos + 1 < cap)
    out[pos++] = tmp[--n];
  out[pos] = '\0';
}

/* Small libm-free helpers (the test support library is not linked with -lm). */
static double dabs(double x) {
  return x < 0 ? -x : x;
}
static double dmax(double a, double b) {
  return a > b ? a : b;
}
static float scale2(float v, int e) {
  for (; e > 0; e--)
    v *= 2.0f;
  for (; e < 0; e++)
    v *= 0.5f;
  return v;
}

static float half_to_float(uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0)
    v = scale2((float)mant, -24);
  else if (exp == 31)
    v = mant ? NAN : INFINITY;
  else
    v = scale2((float)(mant | 0x400), exp - 25);
  return sign ? -v : v;
}

/* ============================================================================================
 * JSON types */

enum kind {
  K_NULL,
  K_BOOL,
  K_INT, /* also date, time, timestamp, duration, interval YEAR_MONTH */
  K_FLOAT,
  K_DECIMAL,
  K_FSB,
  K_BINARY, /* binary, utf8 and their large forms */
  K_VIEW,
  K_STRUCT,
  K_LIST, /* list, large list, map */
  K_LIST_VIEW,
  K_FSL,
  K_SPARSE_UNION,
  K_DENSE_UNION,
  K_REE,
  K_INTERVAL_DT,
  K_INTERVAL_MDN,
  K_DICT, /* dictionary indices */
};

struct jtype {
  enum kind kind;
  int width; /* bytes of one value (fixed-width kinds, dictionary indices) */
  bool is_signed;
  bool large; /* 64-bit offsets */
  bool utf8;  /* values are text rather than hex */
  bool is_map, keys_sorted;
  bool dict_ordered;
  int64_t list_size;
  int64_t dict_id;
  int n_type_ids;
  int8_t type_ids[128];
  char format[96];
};

static const char *unit_char(const char *unit) {
  if (unit == NULL) return NULL;
  if (strcmp(unit, "SECOND") == 0) return "s";
  if (strcmp(unit, "MILLISECOND") == 0) return "m";
  if (strcmp(unit, "MICROSECOND") == 0) return "u";
  if (strcmp(unit, "NANOSECOND") == 0) return "n";
  return NULL;
}

static int int_type(const cJSON *type, struct jtype *t) {
  int64_t bits = 0;
  if (!json_get_i64(jget(type, "bitWidth"), &bits)) return EINVAL;
  const cJSON *sig = jget(type, "isSigned");
  t->is_signed = cJSON_IsTrue(sig);
  t->kind = K_INT;
  t->width = (int)(bits / 8);
  const char *f = NULL;
  switch (bits) {
  case 8:
    f = t->is_signed ? "c" : "C";
    break;
  case 16:
    f = t->is_signed ? "s" : "S";
    break;
  case 32:
    f = t->is_signed ? "i" : "I";
    break;
  case 64:
    f = t->is_signed ? "l" : "L";
    break;
  default:
    return EINVAL;
  }
  snprintf(t->format, sizeof(t->format), "%s", f);
  return 0;
}

/* Parses the "type" of a field (the value type; dictionary encoding is handled by the caller). */
static int parse_type(const cJSON *type, struct jtype *t) {
  memset(t, 0, sizeof(*t));
  const char *name = jstr(type, "name");
  if (name == NULL) return EINVAL;
  int64_t x = 0, y = 0;
  if (strcmp(name, "null") == 0) {
    t->kind = K_NULL;
    strcpy(t->format, "n");
  } else if (strcmp(name, "bool") == 0) {
    t->kind = K_BOOL;
    strcpy(t->format, "b");
  } else if (strcmp(name, "int") == 0) {
    return int_type(type, t);
  } else if (strcmp(name, "floatingpoint") == 0) {
    const char *p = jstr(type, "precision");
    t->kind = K_FLOAT;
    if (p && strcmp(p, "HALF") == 0) {
      t->width = 2;
      strcpy(t->format, "e");
    } else if (p && strcmp(p, "SINGLE") == 0) {
      t->width = 4;
      strcpy(t->format, "f");
    } else if (p && strcmp(p, "DOUBLE") == 0) {
      t->width = 8;
      strcpy(t->format, "g");
    } else {
      return EINVAL;
    }
  } else if (strcmp(name, "decimal") == 0) {
    int64_t bits = 128;
    if (jget(type, "bitWidth") && !json_get_i64(jget(type, "bitWidth"), &bits)) return EINVAL;
    if (!json_get_i64(jget(type, "precision"), &x) || !json_get_i64(jget(type, "scale"), &y))
      return EINVAL;
    if (bits != 32 && bits != 64 && bits != 128 && bits != 256) return EINVAL;
    t->kind = K_DECIMAL;
    t->width = (int)(bits / 8);
    if (bits == 128)
      snprintf(t->format, sizeof(t->format), "d:%lld,%lld", (long long)x, (long long)y);
    else
      snprintf(t->format, sizeof(t->format), "d:%lld,%lld,%lld", (long long)x, (long long)y,
               (long long)bits);
  } else if (strcmp(name, "fixedsizebinary") == 0) {
    if (!json_get_i64(jget(type, "byteWidth"), &x) || x < 0 || x > (1 << 20)) return EINVAL;
    t->kind = K_FSB;
    t->width = (int)x;
    snprintf(t->format, sizeof(t->format), "w:%lld", (long long)x);
  } else if (strcmp(name, "binary") == 0 || strcmp(name, "largebinary") == 0 ||
             strcmp(name, "utf8") == 0 || strcmp(name, "largeutf8") == 0) {
    t->kind = K_BINARY;
    t->large = strncmp(name, "large", 5) == 0;
    t->utf8 = strstr(name, "utf8") != NULL;
    strcpy(t->format, t->utf8 ? (t->large ? "U" : "u") : (t->large ? "Z" : "z"));
  } else if (strcmp(name, "binaryview") == 0 || strcmp(name, "utf8view") == 0) {
    t->kind = K_VIEW;
    t->utf8 = name[0] == 'u';
    strcpy(t->format, t->utf8 ? "vu" : "vz");
  } else if (strcmp(name, "date") == 0) {
    const char *u = jstr(type, "unit");
    t->kind = K_INT;
    t->is_signed = true;
    if (u && strcmp(u, "DAY") == 0) {
      t->width = 4;
      strcpy(t->format, "tdD");
    } else if (u && strcmp(u, "MILLISECOND") == 0) {
      t->width = 8;
      strcpy(t->format, "tdm");
    } else {
      return EINVAL;
    }
  } else if (strcmp(name, "time") == 0) {
    const char *u = unit_char(jstr(type, "unit"));
    if (u == NULL || !json_get_i64(jget(type, "bitWidth"), &x) || (x != 32 && x != 64))
      return EINVAL;
    t->kind = K_INT;
    t->is_signed = true;
    t->width = (int)(x / 8);
    snprintf(t->format, sizeof(t->format), "tt%s", u);
  } else if (strcmp(name, "timestamp") == 0) {
    const char *u = unit_char(jstr(type, "unit"));
    const char *tz = jstr(type, "timezone");
    if (u == NULL) return EINVAL;
    t->kind = K_INT;
    t->is_signed = true;
    t->width = 8;
    snprintf(t->format, sizeof(t->format), "ts%s:%s", u, tz ? tz : "");
  } else if (strcmp(name, "duration") == 0) {
    const char *u = unit_char(jstr(type, "unit"));
    if (u == NULL) return EINVAL;
    t->kind = K_INT;
    t->is_signed = true;
    t->width = 8;
    snprintf(t->format, sizeof(t->format), "tD%s", u);
  } else if (strcmp(name, "interval") == 0) {
    const char *u = jstr(type, "unit");
    if (u && strcmp(u, "YEAR_MONTH") == 0) {
      t->kind = K_INT;
      t->is_signed = true;
      t->width = 4;
      strcpy(t->format, "tiM");
    } else if (u && strcmp(u, "DAY_TIME") == 0) {
      t->kind = K_INTERVAL_DT;
      t->width = 8;
      strcpy(t->format, "tiD");
    } else if (u && strcmp(u, "MONTH_DAY_NANO") == 0) {
      t->kind = K_INTERVAL_MDN;
      t->width = 16;
      strcpy(t->format, "tin");
    } else {
      return EINVAL;
    }
  } else if (strcmp(name, "struct") == 0) {
    t->kind = K_STRUCT;
    strcpy(t->format, "+s");
  } else if (strcmp(name, "list") == 0 || strcmp(name, "largelist") == 0) {
    t->kind = K_LIST;
    t->large = name[0] == 'l' && name[1] == 'a';
    strcpy(t->format, t->large ? "+L" : "+l");
  } else if (strcmp(name, "map") == 0) {
    t->kind = K_LIST;
    t->is_map = true;
    t->keys_sorted = cJSON_IsTrue(jget(type, "keysSorted"));
    strcpy(t->format, "+m");
  } else if (strcmp(name, "listview") == 0 || strcmp(name, "largelistview") == 0) {
    t->kind = K_LIST_VIEW;
    t->large = name[1] == 'a';
    strcpy(t->format, t->large ? "+vL" : "+vl");
  } else if (strcmp(name, "fixedsizelist") == 0) {
    if (!json_get_i64(jget(type, "listSize"), &x) || x < 0) return EINVAL;
    t->kind = K_FSL;
    t->list_size = x;
    snprintf(t->format, sizeof(t->format), "+w:%lld", (long long)x);
  } else if (strcmp(name, "union") == 0) {
    const char *mode = jstr(type, "mode");
    const cJSON *ids = jget(type, "typeIds");
    if (mode == NULL || !cJSON_IsArray(ids)) return EINVAL;
    t->kind = strcmp(mode, "DENSE") == 0 ? K_DENSE_UNION : K_SPARSE_UNION;
    size_t pos = (size_t)snprintf(t->format, sizeof(t->format),
                                  "+u%s:", t->kind == K_DENSE_UNION ? "d" : "s");
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) {
      if (!json_get_i64(id, &x) || x < 0 || x > 127 || t->n_type_ids >= 128) return EINVAL;
      t->type_ids[t->n_type_ids] = (int8_t)x;
      if (pos < sizeof(t->format))
        pos += (size_t)snprintf(t->format + pos, sizeof(t->format) - pos, "%s%lld",
                                t->n_type_ids ? "," : "", (long long)x);
      t->n_type_ids++;
    }
  } else if (strcmp(name, "runendencoded") == 0) {
    t->kind = K_REE;
    strcpy(t->format, "+r");
  } else {
    return ENOTSUP;
  }
  return 0;
}

/* The type of a field's data: the index type when dictionary-encoded (unless `as_values`). */
static int field_type(const cJSON *field, bool as_values, struct jtype *t) {
  const cJSON *dict = jget(field, "dictionary");
  if (dict != NULL && !cJSON_IsNull(dict) && !as_values) {
    int64_t id;
    memset(t, 0, sizeof(*t));
    if (!json_get_i64(jget(dict, "id"), &id)) return EINVAL;
    WG_RETURN_NOT_OK(int_type(jget(dict, "indexType"), t));
    t->kind = K_DICT;
    t->dict_id = id;
    t->dict_ordered = cJSON_IsTrue(jget(dict, "isOrdered"));
    return 0;
  }
  return parse_type(jget(field, "type"), t);
}

static bool kind_has_validity(enum kind k) {
  return k != K_NULL && k != K_SPARSE_UNION && k != K_DENSE_UNION && k != K_REE;
}

static bool kind_is_nested(enum kind k) {
  return k == K_STRUCT || k == K_LIST || k == K_LIST_VIEW || k == K_FSL || k == K_SPARSE_UNION ||
         k == K_DENSE_UNION || k == K_REE;
}

/* ============================================================================================
 * Schema comparison */

struct sctx {
  const struct wg_gold_json *g;
  const char *label;
  char path[512];
  struct wg_error *err;
};

static int sfail(struct sctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sfail(struct sctx *c, const char *fmt, ...) {
  char detail[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  return wg_error_set(c->err, EPROTO, "%s%s%s%s: schema: field %s: %s", c->g->name,
                      c->label ? " [" : "", c->label ? c->label : "", c->label ? "]" : "",
                      c->path[0] ? c->path : "(root)", detail);
}

/* "d:P,S,128" is the same type as "d:P,S". */
static void normalize_format(const char *f, char *out, size_t cap) {
  snprintf(out, cap, "%s", f ? f : "(null)");
  size_t n = strlen(out);
  if (strncmp(out, "d:", 2) == 0 && n > 4 && strcmp(out + n - 4, ",128") == 0 &&
      strchr(out, ',') != strrchr(out, ','))
    out[n - 4] = '\0';
}

static int compare_metadata(struct sctx *c, const cJSON *jmeta, const char *meta) {
  int64_t n_json = cJSON_IsArray(jmeta) ? cJSON_GetArraySize(jmeta) : 0;
  struct wg_metadata_reader r;
  struct wg_bytes k, v;
  int64_t n_actual = 0;
  wg_metadata_reader_init(&r, meta);
  while (wg_metadata_reader_next(&r, &k, &v))
    n_actual++;
  if (n_json != n_actual)
    return sfail(c, "metadata: expected %lld pairs, got %lld", (long long)n_json,
                 (long long)n_actual);
  if (n_json == 0) return 0;
  bool *used = calloc((size_t)n_actual, 1);
  if (used == NULL) return wg_error_set(c->err, ENOMEM, "out of memory");
  int rc = 0;
  const cJSON *pair;
  cJSON_ArrayForEach(pair, jmeta) {
    const char *jk = jstr(pair, "key"), *jv = jstr(pair, "value");
    if (jk == NULL || jv == NULL) {
      rc = wg_error_set(c->err, EINVAL, "%s: metadata pair without key/value", c->g->name);
      break;
    }
    bool found = false;
    int64_t i = 0;
    wg_metadata_reader_init(&r, meta);
    while (!found && wg_metadata_reader_next(&r, &k, &v)) {
      if (!used[i] && k.size == (int64_t)strlen(jk) && memcmp(k.data, jk, (size_t)k.size) == 0 &&
          v.size == (int64_t)strlen(jv) && memcmp(v.data, jv, (size_t)v.size) == 0) {
        used[i] = true;
        found = true;
      }
      i++;
    }
    if (!found) {
      rc = sfail(c, "metadata: pair \"%s\"=\"%.100s\" missing", jk, jv);
      break;
    }
  }
  free(used);
  return rc;
}

/* `map_names`: the field is a map's entries struct (1) or one of its key/value children (2). Their
 * names are not significant (Arrow C++ writes the canonical "entries"/"key"/"value" to IPC even
 * when the JSON uses other names, see generated_map_non_canonical), so they are not compared. */
static int compare_field_schema(struct sctx *c, const cJSON *field, const struct ArrowSchema *s,
                                int depth, int map_names) {
  if (depth > MAX_DEPTH) return sfail(c, "nested deeper than %d", MAX_DEPTH);
  if (s == NULL || s->release == NULL) return sfail(c, "schema node missing or released");
  const char *jname = jstr(field, "name");
  const char *aname = s->name ? s->name : "";
  if (jname && !map_names && strcmp(jname, aname) != 0)
    return sfail(c, "name: expected \"%s\", got \"%s\"", jname, aname);
  bool nullable = cJSON_IsTrue(jget(field, "nullable"));
  if (nullable != ((s->flags & ARROW_FLAG_NULLABLE) != 0))
    return sfail(c, "nullable: expected %d, got flags %lld", nullable, (long long)s->flags);

  struct jtype t, vt;
  int rc = field_type(field, false, &t);
  if (rc != 0) return wg_error_set(c->err, rc, "%s: field %s: bad JSON type", c->g->name, c->path);
  WG_RETURN_NOT_OK(compare_metadata(c, jget(field, "metadata"), s->metadata));
  char want[128], got[128];
  normalize_format(t.format, want, sizeof(want));
  normalize_format(s->format, got, sizeof(got));
  if (strcmp(want, got) != 0)
    return sfail(c, "format: expected \"%s\", got \"%s\"%s", want, got,
                 t.kind == K_DICT ? " (dictionary index type)" : "");

  const struct ArrowSchema *value_schema = s;
  if (t.kind == K_DICT) {
    if (s->dictionary == NULL || s->dictionary->release == NULL)
      return sfail(c, "dictionary-encoded (id %lld) but schema->dictionary is NULL",
                   (long long)t.dict_id);
    if (s->n_children != 0)
      return sfail(c, "dictionary indices with %lld children", (long long)s->n_children);
    if (t.dict_ordered != ((s->flags & ARROW_FLAG_DICTIONARY_ORDERED) != 0))
      return sfail(c, "dictionary ordered: expected %d, got flags %lld", t.dict_ordered,
                   (long long)s->flags);
    WG_RETURN_NOT_OK(parse_type(jget(field, "type"), &vt) == 0
                         ? 0
                         : wg_error_set(c->err, EINVAL, "%s: bad JSON type", c->g->name));
    value_schema = s->dictionary;
    normalize_format(vt.format, want, sizeof(want));
    normalize_format(value_schema->format, got, sizeof(got));
    if (strcmp(want, got) != 0)
      return sfail(c, "dictionary value format: expected \"%s\", got \"%s\"", want, got);
  } else {
    vt = t;
    if (s->dictionary != NULL) return sfail(c, "not dictionary-encoded, but has a dictionary");
  }
  if (vt.is_map && vt.keys_sorted != ((value_schema->flags & ARROW_FLAG_MAP_KEYS_SORTED) != 0))
    return sfail(c, "map keysSorted: expected %d, got flags %lld", vt.keys_sorted,
                 (long long)value_schema->flags);

  const cJSON *children = jget(field, "children");
  int64_t n = cJSON_IsArray(children) ? cJSON_GetArraySize(children) : 0;
  if (value_schema->n_children != n)
    return sfail(c, "children: expected %lld, got %lld", (long long)n,
                 (long long)value_schema->n_children);
  size_t saved = strlen(c->path);
  int64_t i = 0;
  const cJSON *child;
  cJSON_ArrayForEach(child, children) {
    const char *cn = jstr(child, "name");
    snprintf(c->path + saved, sizeof(c->path) - saved, "%s%s", saved ? "/" : "",
             cn && cn[0] ? cn : "(unnamed)");
    if (value_schema->children == NULL) return sfail(c, "children pointer is NULL");
    rc = compare_field_schema(c, child, value_schema->children[i], depth + 1,
                              vt.is_map ? 1 : (map_names == 1 ? 2 : 0));
    c->path[saved] = '\0';
    if (rc != 0) return rc;
    i++;
  }
  return 0;
}

int wg_gold_compare_schema(const struct wg_gold_json *g, const struct ArrowSchema *schema,
                           const char *label, struct wg_error *err) {
  struct sctx c = {.g = g, .label = label, .err = err};
  c.path[0] = '\0';
  if (schema == NULL || schema->release == NULL) return sfail(&c, "schema is released");
  if (schema->format == NULL || strcmp(schema->format, "+s") != 0)
    return sfail(&c, "root format: expected \"+s\", got \"%s\"",
                 schema->format ? schema->format : "(null)");
  WG_RETURN_NOT_OK(compare_metadata(&c, jget(g->schema, "metadata"), schema->metadata));
  const cJSON *fields = jget(g->schema, "fields");
  int64_t n = cJSON_GetArraySize(fields);
  if (schema->n_children != n)
    return sfail(&c, "fields: expected %lld, got %lld", (long long)n,
                 (long long)schema->n_children);
  int64_t i = 0;
  const cJSON *f;
  cJSON_ArrayForEach(f, fields) {
    const char *fn = jstr(f, "name");
    snprintf(c.path, sizeof(c.path), "%s", fn && fn[0] ? fn : "(unnamed)");
    WG_RETURN_NOT_OK(compare_field_schema(&c, f, schema->children[i], 1, 0));
    i++;
  }
  return 0;
}

/* ============================================================================================
 * JSON columns as C vectors */

struct jcol {
  const cJSON *field;
  const cJSON *json;
  struct jtype t;
  int64_t count;
  uint8_t *validity; /* NULL: no VALIDITY member */
  int64_t n_validity;
  int64_t *offsets, n_offsets;
  int64_t *sizes, n_sizes;
  int64_t *type_ids, n_type_ids;
  const cJSON **data;
  int64_t n_data;
  const cJSON **views;
  int64_t n_views;
  struct wg_buf *variadic;
  int64_t n_variadic;
  int64_t *run_ends, n_run_ends; /* REE: children[0] DATA as integers */
  struct jcol *children;
  int64_t n_children;
};

static void jcol_free(struct jcol *jc) {
  if (jc == NULL) return;
  for (int64_t i = 0; i < jc->n_children; i++)
    jcol_free(&jc->children[i]);
  free(jc->children);
  for (int64_t i = 0; i < jc->n_variadic; i++)
    wg_buf_reset(&jc->variadic[i]);
  free(jc->variadic);
  free(jc->validity);
  free(jc->offsets);
  free(jc->sizes);
  free(jc->type_ids);
  free((void *)jc->data);
  free((void *)jc->views);
  free(jc->run_ends);
  memset(jc, 0, sizeof(*jc));
}

static int items_of(const cJSON *arr, const cJSON ***out, int64_t *n) {
  *out = NULL;
  *n = 0;
  if (arr == NULL || cJSON_IsNull(arr)) return 0;
  if (!cJSON_IsArray(arr)) return EINVAL;
  int64_t size = cJSON_GetArraySize(arr);
  if (size == 0) return 0;
  *out = calloc((size_t)size, sizeof(cJSON *));
  if (*out == NULL) return ENOMEM;
  const cJSON *it;
  cJSON_ArrayForEach(it, arr)(*out)[(*n)++] = it;
  return 0;
}

static int ints_of(const cJSON *arr, int64_t **out, int64_t *n) {
  const cJSON **items;
  int64_t count;
  *out = NULL;
  *n = 0;
  WG_RETURN_NOT_OK(items_of(arr, &items, &count));
  if (count == 0) return 0;
  *out = malloc((size_t)count * sizeof(int64_t));
  if (*out == NULL) {
    free((void *)items);
    return ENOMEM;
  }
  for (int64_t i = 0; i < count; i++) {
    if (!json_get_i64(items[i], &(*out)[i])) {
      free((void *)items);
      free(*out);
      *out = NULL;
      return EINVAL;
    }
  }
  free((void *)items);
  *n = count;
  return 0;
}

static int jcol_build(const char *file, const cJSON *field, const cJSON *json, bool as_values,
                      struct jcol *jc, int depth, struct wg_error *err) {
  memset(jc, 0, sizeof(*jc));
  jc->field = field;
  jc->json = json;
  const char *fname = jstr(field, "name");
  if (depth > MAX_DEPTH) return wg_error_set(err, EINVAL, "%s: JSON nested too deep", file);
  int rc = field_type(field, as_values, &jc->t);
  if (rc != 0)
    return wg_error_set(err, rc, "%s: field %s: unsupported JSON type", file, fname ? fname : "");
  if (!json_get_i64(jget(json, "count"), &jc->count) || jc->count < 0)
    return wg_error_set(err, EINVAL, "%s: column %s without count", file, fname ? fname : "");
  int64_t *bits = NULL, n_bits = 0;
  rc = ints_of(jget(json, "VALIDITY"), &bits, &n_bits);
  if (rc == 0 && jget(json, "VALIDITY") != NULL) {
    jc->validity = malloc((size_t)(n_bits > 0 ? n_bits : 1));
    if (jc->validity == NULL) rc = ENOMEM;
    for (int64_t i = 0; rc == 0 && i < n_bits; i++)
      jc->validity[i] = bits[i] != 0;
    jc->n_validity = n_bits;
  }
  free(bits);
  if (rc == 0) rc = ints_of(jget(json, "OFFSET"), &jc->offsets, &jc->n_offsets);
  if (rc == 0) rc = ints_of(jget(json, "SIZE"), &jc->sizes, &jc->n_sizes);
  if (rc == 0) rc = ints_of(jget(json, "TYPE_ID"), &jc->type_ids, &jc->n_type_ids);
  if (rc == 0) rc = items_of(jget(json, "DATA"), &jc->data, &jc->n_data);
  if (rc == 0) rc = items_of(jget(json, "VIEWS"), &jc->views, &jc->n_views);
  if (rc == 0 && jget(json, "VARIADIC_DATA_BUFFERS") != NULL) {
    const cJSON **bufs;
    int64_t nb;
    rc = items_of(jget(json, "VARIADIC_DATA_BUFFERS"), &bufs, &nb);
    if (rc == 0 && nb > 0) {
      jc->variadic = calloc((size_t)nb, sizeof(struct wg_buf));
      if (jc->variadic == NULL) rc = ENOMEM;
      for (int64_t i = 0; rc == 0 && i < nb; i++) {
        wg_buf_init(&jc->variadic[i]);
        jc->n_variadic = i + 1;
        rc = cJSON_IsString(bufs[i]) ? hex_decode(bufs[i]->valuestring, &jc->variadic[i]) : EINVAL;
      }
    }
    free((void *)bufs);
  }
  if (rc != 0)
    return wg_error_set(err, rc, "%s: column %s: malformed buffers in JSON", file,
                        fname ? fname : "");
  if (jc->validity != NULL && jc->n_validity != jc->count)
    return wg_error_set(err, EINVAL, "%s: column %s: VALIDITY has %lld entries for count %lld",
                        file, fname ? fname : "", (long long)jc->n_validity, (long long)jc->count);

  if (kind_is_nested(jc->t.kind)) {
    const cJSON *fchildren = jget(field, "children");
    const cJSON *jchildren = jget(json, "children");
    int64_t nf = cJSON_IsArray(fchildren) ? cJSON_GetArraySize(fchildren) : 0;
    int64_t nj = cJSON_IsArray(jchildren) ? cJSON_GetArraySize(jchildren) : 0;
    if (nf != nj)
      return wg_error_set(err, EINVAL, "%s: column %s: %lld field children, %lld data children",
                          file, fname ? fname : "", (long long)nf, (long long)nj);
    if (nf > 0) {
      jc->children = calloc((size_t)nf, sizeof(struct jcol));
      if (jc->children == NULL) return ENOMEM;
    }
    for (int64_t i = 0; i < nf; i++) {
      jc->n_children = i + 1;
      WG_RETURN_NOT_OK(jcol_build(file, cJSON_GetArrayItem(fchildren, (int)i),
                                  cJSON_GetArrayItem(jchildren, (int)i), false, &jc->children[i],
                                  depth + 1, err));
    }
    if (jc->t.kind == K_REE) {
      if (nf != 2)
        return wg_error_set(err, EINVAL, "%s: run-end encoded column %s with %lld children", file,
                            fname ? fname : "", (long long)nf);
      struct jcol *re = &jc->children[0];
      jc->run_ends = malloc((size_t)(re->n_data > 0 ? re->n_data : 1) * sizeof(int64_t));
      if (jc->run_ends == NULL) return ENOMEM;
      for (int64_t i = 0; i < re->n_data; i++)
        if (!json_get_i64(re->data[i], &jc->run_ends[i]))
          return wg_error_set(err, EINVAL, "%s: bad run end", file);
      jc->n_run_ends = re->n_data;
    }
  }
  return 0;
}

/* ============================================================================================
 * Batch comparison */

struct dict_cache {
  int64_t id;
  struct jcol col;
};

struct ctx {
  const struct wg_gold_json *g;
  enum wg_gold_mode mode;
  const char *label;
  int64_t batch;
  char path[512];
  struct wg_error *err;
  struct dict_cache *dicts;
  int64_t n_dicts, cap_dicts;
  const struct ArrowArray **seen;
  int64_t n_seen, cap_seen;
  struct wg_buf scratch;
  int depth;
};

static int fail(struct ctx *c, int64_t row, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct ctx *c, int64_t row, const char *fmt, ...) {
  char detail[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  char rowtxt[48] = "";
  if (row >= 0) snprintf(rowtxt, sizeof(rowtxt), ", row %lld", (long long)row);
  return wg_error_set(c->err, EPROTO, "%s%s%s%s: batch %lld, column %s%s: %s", c->g->name,
                      c->label ? " [" : "", c->label ? c->label : "", c->label ? "]" : "",
                      (long long)c->batch, c->path, rowtxt, detail);
}

static size_t path_push(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(struct ctx *c, const char *fmt, ...) {
  size_t saved = strlen(c->path);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->path + saved, sizeof(c->path) - saved, fmt, ap);
  va_end(ap);
  return saved;
}

static const char *child_name(const struct jcol *jc) {
  const char *n = jstr(jc->field, "name");
  return n && n[0] ? n : "(unnamed)";
}

static int get_dict(struct ctx *c, const struct jcol *user, struct jcol **out) {
  int64_t id = user->t.dict_id;
  for (int64_t i = 0; i < c->n_dicts; i++)
    if (c->dicts[i].id == id) {
      *out = &c->dicts[i].col;
      return 0;
    }
  const cJSON *entry = NULL, *it;
  cJSON_ArrayForEach(it, c->g->dictionaries) {
    int64_t eid;
    if (json_get_i64(jget(it, "id"), &eid) && eid == id) entry = it; /* the last one wins */
  }
  if (entry == NULL)
    return wg_error_set(c->err, EINVAL, "%s: no dictionary with id %lld in the JSON", c->g->name,
                        (long long)id);
  const cJSON *cols = jget(jget(entry, "data"), "columns");
  if (!cJSON_IsArray(cols) || cJSON_GetArraySize(cols) != 1)
    return wg_error_set(c->err, EINVAL, "%s: dictionary %lld without one column", c->g->name,
                        (long long)id);
  if (c->n_dicts == c->cap_dicts) {
    int64_t cap = c->cap_dicts ? 2 * c->cap_dicts : 8;
    struct dict_cache *n = realloc(c->dicts, (size_t)cap * sizeof(*n));
    if (n == NULL) return ENOMEM;
    c->dicts = n;
    c->cap_dicts = cap;
  }
  struct dict_cache *d = &c->dicts[c->n_dicts];
  d->id = id;
  int rc =
      jcol_build(c->g->name, user->field, cJSON_GetArrayItem(cols, 0), true, &d->col, 0, c->err);
  if (rc != 0) {
    jcol_free(&d->col);
    return rc;
  }
  c->n_dicts++;
  *out = &d->col;
  return 0;
}

static bool jvalid(const struct jcol *jc, int64_t j) {
  if (jc->t.kind == K_NULL) return false;
  return jc->validity == NULL || jc->validity[j];
}

static bool avalid(const struct ArrowArray *a, int64_t p) {
  return a->buffers[0] == NULL || wg_bit_get(a->buffers[0], p);
}

/* Checks n_buffers / n_children / child pointers before anything is read. */
static int check_shape(struct ctx *c, const struct jcol *jc, const struct ArrowArray *a) {
  if (a == NULL || a->release == NULL) return fail(c, -1, "array missing or released");
  if (a->length < 0 || a->offset < 0)
    return fail(c, -1, "negative length %lld or offset %lld", (long long)a->length,
                (long long)a->offset);
  int64_t nb = -1, nc = 0;
  switch (jc->t.kind) {
  case K_NULL:
    nb = 0;
    break;
  case K_REE:
    nb = 0, nc = 2;
    break;
  case K_BOOL:
  case K_INT:
  case K_FLOAT:
  case K_DECIMAL:
  case K_FSB:
  case K_INTERVAL_DT:
  case K_INTERVAL_MDN:
  case K_DICT:
    nb = 2;
    break;
  case K_BINARY:
    nb = 3;
    break;
  case K_VIEW:
    nb = -1;
    break;
  case K_STRUCT:
    nb = 1, nc = jc->n_children;
    break;
  case K_LIST:
    nb = 2, nc = 1;
    break;
  case K_LIST_VIEW:
    nb = 3, nc = 1;
    break;
  case K_FSL:
    nb = 1, nc = 1;
    break;
  case K_SPARSE_UNION:
    nb = 1, nc = jc->n_children;
    break;
  case K_DENSE_UNION:
    nb = 2, nc = jc->n_children;
    break;
  }
  if (jc->t.kind == K_VIEW) {
    if (a->n_buffers < 3)
      return fail(c, -1, "view array with %lld buffers (need validity, views, sizes)",
                  (long long)a->n_buffers);
  } else if (a->n_buffers != nb) {
    return fail(c, -1, "n_buffers: expected %lld for format %s, got %lld", (long long)nb,
                jc->t.format, (long long)a->n_buffers);
  }
  if (a->n_buffers > 0 && a->buffers == NULL) return fail(c, -1, "buffers pointer is NULL");
  if (a->n_children != nc)
    return fail(c, -1, "n_children: expected %lld, got %lld", (long long)nc,
                (long long)a->n_children);
  for (int64_t i = 0; i < nc; i++)
    if (a->children == NULL || a->children[i] == NULL || a->children[i]->release == NULL)
      return fail(c, -1, "child %lld missing or released", (long long)i);
  if (jc->t.kind == K_DICT && (a->dictionary == NULL || a->dictionary->release == NULL))
    return fail(c, -1, "dictionary-encoded (id %lld) but array->dictionary is NULL",
                (long long)jc->t.dict_id);
  return 0;
}

/* Returns buffer i or fails (as a mismatch) when it is NULL although bytes are needed. */
#define NEED_BUF(var, c, a, i, row)                                                                \
  const uint8_t *var = (const uint8_t *)(a)->buffers[(i)];                                         \
  if (var == NULL) return fail((c), (row), "buffer %d is NULL but values are needed", (int)(i))

static int64_t load_offset(const uint8_t *buf, bool large, int64_t i) {
  return large ? wg_load_i64(buf + 8 * i) : wg_load_i32(buf + 4 * i);
}

static int cmp_range(struct ctx *c, struct jcol *jc, const struct ArrowArray *a, int64_t j0,
                     int64_t a0, int64_t n);

/* Whole-node comparison: length, null count, then every slot. */
static int cmp_full(struct ctx *c, struct jcol *jc, const struct ArrowArray *a) {
  WG_RETURN_NOT_OK(check_shape(c, jc, a));
  if (a->length != jc->count)
    return fail(c, -1, "length: expected %lld, got %lld", (long long)jc->count,
                (long long)a->length);
  if (kind_has_validity(jc->t.kind) && a->null_count >= 0) {
    int64_t nulls = 0;
    for (int64_t j = 0; j < jc->count; j++)
      nulls += !jvalid(jc, j);
    if (nulls != a->null_count)
      return fail(c, -1, "null_count: expected %lld, got %lld", (long long)nulls,
                  (long long)a->null_count);
  }
  return cmp_range(c, jc, a, 0, 0, jc->count);
}

static int json_item(struct ctx *c, const struct jcol *jc, int64_t j, const cJSON **out) {
  if (j >= jc->n_data)
    return wg_error_set(c->err, EINVAL, "%s: column %s: JSON DATA has %lld entries, need %lld",
                        c->g->name, c->path, (long long)jc->n_data, (long long)j + 1);
  *out = jc->data[j];
  return 0;
}

static int bad_json(struct ctx *c, int64_t row, const char *what) {
  return wg_error_set(c->err, EINVAL, "%s: column %s, row %lld: malformed JSON %s", c->g->name,
                      c->path, (long long)row, what);
}

/* Expected bytes of a binary/utf8 JSON value into scratch. */
static int json_bytes(struct ctx *c, const struct jcol *jc, const cJSON *v, int64_t row, bool text,
                      const uint8_t **p, int64_t *n) {
  if (!cJSON_IsString(v)) return bad_json(c, row, "binary value");
  if (text) {
    *p = (const uint8_t *)v->valuestring;
    *n = (int64_t)strlen(v->valuestring);
    return 0;
  }
  if (hex_decode(v->valuestring, &c->scratch) != 0) return bad_json(c, row, "hex");
  *p = c->scratch.data;
  *n = c->scratch.size;
  (void)jc;
  return 0;
}

static int cmp_bytes(struct ctx *c, int64_t row, const uint8_t *want, int64_t want_n,
                     const uint8_t *got, int64_t got_n, bool text) {
  if (want_n == got_n && (want_n == 0 || memcmp(want, got, (size_t)want_n) == 0)) return 0;
  char w[140], g[140];
  render_bytes(want, want_n, text, w, sizeof(w));
  render_bytes(got, got_n, text, g, sizeof(g));
  return fail(c, row, "expected %s, got %s", w, g);
}

/* One fixed-width value at JSON index j / physical index p. */
static int cmp_fixed(struct ctx *c, const struct jcol *jc, const struct ArrowArray *a, int64_t j,
                     int64_t p) {
  const cJSON *v = NULL;
  WG_RETURN_NOT_OK(json_item(c, jc, j, &v));
  NEED_BUF(buf, c, a, 1, j);
  const struct jtype *t = &jc->t;
  switch (t->kind) {
  case K_BOOL: {
    bool want;
    if (cJSON_IsBool(v))
      want = cJSON_IsTrue(v);
    else if (cJSON_IsNumber(v))
      want = v->valuedouble != 0;
    else
      return bad_json(c, j, "bool");
    bool got = wg_bit_get(buf, p);
    if (want != got)
      return fail(c, j, "expected %s, got %s", want ? "true" : "false", got ? "true" : "false");
    return 0;
  }
  case K_INT:
  case K_DICT: {
    uint64_t raw = load_le(buf + (int64_t)t->width * p, t->width);
    if (t->is_signed) {
      int64_t want, got = sign_extend(raw, t->width);
      if (!json_get_i64(v, &want)) return bad_json(c, j, "integer");
      if (want != got)
        return fail(c, j, "%sexpected %lld, got %lld", t->kind == K_DICT ? "index: " : "",
                    (long long)want, (long long)got);
    } else {
      uint64_t want;
      if (!json_get_u64(v, &want)) return bad_json(c, j, "unsigned integer");
      if (want != raw)
        return fail(c, j, "%sexpected %llu, got %llu", t->kind == K_DICT ? "index: " : "",
                    (unsigned long long)want, (unsigned long long)raw);
    }
    return 0;
  }
  case K_FLOAT: {
    double want, got;
    if (!json_get_double(v, &want)) return bad_json(c, j, "float");
    bool eq;
    if (t->width == 2) {
      got = half_to_float(wg_load_u16(buf + 2 * p));
      eq = dabs(want - got) <= 1e-3 * dmax(1.0, dabs(want));
    } else if (t->width == 4) {
      float f;
      memcpy(&f, buf + 4 * p, 4);
      got = f;
      eq = (float)want == f || dabs(want - got) <= 1e-6 * dmax(1.0, dabs(want));
    } else {
      memcpy(&got, buf + 8 * p, 8);
      eq = want == got || dabs(want - got) <= 1e-9 * dmax(1.0, dabs(want));
    }
    if (isnan(want) && isnan(got)) eq = true;
    if (!eq) return fail(c, j, "expected %.9g, got %.9g", want, got);
    return 0;
  }
  case K_DECIMAL: {
    uint64_t want[4], got[4];
    if (!cJSON_IsString(v) || !decimal_parse(v->valuestring, want))
      return bad_json(c, j, "decimal");
    decimal_load(buf + (int64_t)t->width * p, t->width, got);
    /* compare the stored width only: the JSON value fits in it by construction */
    uint8_t wb[32], gb[32];
    for (int i = 0; i < 4; i++) {
      wg_store_i64(wb + 8 * i, (int64_t)want[i]);
      wg_store_i64(gb + 8 * i, (int64_t)got[i]);
    }
    if (memcmp(wb, gb, (size_t)t->width) != 0) {
      char gs[100];
      decimal_format(got, gs, sizeof(gs));
      return fail(c, j, "expected %.80s, got %.80s", v->valuestring, gs);
    }
    return 0;
  }
  case K_FSB: {
    const uint8_t *wp;
    int64_t wn;
    WG_RETURN_NOT_OK(json_bytes(c, jc, v, j, false, &wp, &wn));
    if (wn != t->width) return bad_json(c, j, "fixed-size binary width");
    return cmp_bytes(c, j, wp, wn, buf + (int64_t)t->width * p, t->width, false);
  }
  case K_INTERVAL_DT: {
    int64_t days, ms;
    if (!json_get_i64(jget(v, "days"), &days) || !json_get_i64(jget(v, "milliseconds"), &ms))
      return bad_json(c, j, "day-time interval");
    int32_t gd = wg_load_i32(buf + 8 * p), gm = wg_load_i32(buf + 8 * p + 4);
    if (gd != days || gm != ms)
      return fail(c, j, "expected {days %lld, ms %lld}, got {days %d, ms %d}", (long long)days,
                  (long long)ms, gd, gm);
    return 0;
  }
  case K_INTERVAL_MDN: {
    int64_t months, days, ns;
    if (!json_get_i64(jget(v, "months"), &months) || !json_get_i64(jget(v, "days"), &days) ||
        !json_get_i64(jget(v, "nanoseconds"), &ns))
      return bad_json(c, j, "month-day-nano interval");
    int32_t gmo = wg_load_i32(buf + 16 * p), gd = wg_load_i32(buf + 16 * p + 4);
    int64_t gns = wg_load_i64(buf + 16 * p + 8);
    if (gmo != months || gd != days || gns != ns)
      return fail(c, j, "expected {months %lld, days %lld, ns %lld}, got {%d, %d, %lld}",
                  (long long)months, (long long)days, (long long)ns, gmo, gd, (long long)gns);
    return 0;
  }
  default:
    return fail(c, j, "internal: not a fixed-width kind");
  }
}

static int need_json(struct ctx *c, int64_t have, int64_t need, const char *what) {
  if (need > have)
    return wg_error_set(c->err, EINVAL, "%s: column %s: JSON %s has %lld entries, need %lld",
                        c->g->name, c->path, what, (long long)have, (long long)need);
  return 0;
}

static int cmp_binary(struct ctx *c, struct jcol *jc, const struct ArrowArray *a, int64_t j0,
                      int64_t base, int64_t n) {
  bool large = jc->t.large;
  NEED_BUF(offs, c, a, 1, j0);
  if (c->mode == WG_GOLD_EXACT) {
    WG_RETURN_NOT_OK(need_json(c, jc->n_offsets, j0 + n + 1, "OFFSET"));
    for (int64_t k = 0; k <= n; k++) {
      int64_t want = jc->offsets[j0 + k], got = load_offset(offs, large, base + k);
      if (want != got)
        return fail(c, j0 + k, "offset: expected %lld, got %lld", (long long)want, (long long)got);
    }
  }
  for (int64_t k = 0; k < n; k++) {
    int64_t j = j0 + k, p = base + k;
    if (!jvalid(jc, j)) continue;
    const cJSON *v = NULL;
    WG_RETURN_NOT_OK(json_item(c, jc, j, &v));
    const uint8_t *wp;
    int64_t wn;
    WG_RETURN_NOT_OK(json_bytes(c, jc, v, j, jc->t.utf8, &wp, &wn));
    int64_t start = load_offset(offs, large, p), end = load_offset(offs, large, p + 1);
    if (start < 0 || end < start)
      return fail(c, j, "offsets %lld..%lld are not a valid range", (long long)start,
                  (long long)end);
    const uint8_t *data = (const uint8_t *)a->buffers[2];
    if (end > start && data == NULL) return fail(c, j, "data buffer is NULL");
    WG_RETURN_NOT_OK(cmp_bytes(c, j, wp, wn, data ? data + start : wp, end - start, jc->t.utf8));
  }
  return 0;
}

static int cmp_view(struct ctx *c, struct jcol *jc, const struct ArrowArray *a, int64_t j0,
                    int64_t base, int64_t n) {
  int64_t n_var = a->n_buffers - 3;
  const uint8_t *var_sizes = (const uint8_t *)a->buffers[a->n_buffers - 1];
  for (int64_t k = 0; k < n; k++) {
    int64_t j = j0 + k, p = base + k;
    if (!jvalid(jc, j)) continue;
    WG_RETURN_NOT_OK(need_json(c, jc->n_views, j + 1, "VIEWS"));
    const cJSON *jv = jc->views[j];
    int64_t size;
    if (!json_get_i64(jget(jv, "SIZE"), &size) || size < 0) return bad_json(c, j, "view SIZE");
    const uint8_t *wp;
    int64_t wn;
    if (jget(jv, "INLINED") != NULL) {
      WG_RETURN_NOT_OK(json_bytes(c, jc, jget(jv, "INLINED"), j, jc->t.utf8, &wp, &wn));
    } else {
      int64_t idx, off;
      if (!json_get_i64(jget(jv, "BUFFER_INDEX"), &idx) ||
          !json_get_i64(jget(jv, "OFFSET"), &off) || idx < 0 || idx >= jc->n_variadic || off < 0 ||
          off + size > jc->variadic[idx].size)
        return bad_json(c, j, "view reference");
      wp = jc->variadic[idx].data + off;
      wn = size;
    }
    if (wn != size) return bad_json(c, j, "view SIZE vs value");
    NEED_BUF(views, c, a, 1, j);
    const uint8_t *view = views + 16 * p;
    int32_t got_size = wg_load_i32(view);
    if (got_size < 0) return fail(c, j, "view size %d is negative", got_size);
    const uint8_t *gp;
    if (got_size <= 12) {
      gp = view + 4;
    } else {
      int32_t idx = wg_load_i32(view + 8), off = wg_load_i32(view + 12);
      if (idx < 0 || idx >= n_var)
        return fail(c, j, "view buffer index %d, but %lld variadic buffers", idx, (long long)n_var);
      if (var_sizes == NULL) return fail(c, j, "variadic sizes buffer is NULL");
      int64_t bsize = wg_load_i64(var_sizes + 8 * idx);
      if (off < 0 || (int64_t)off + got_size > bsize)
        return fail(c, j, "view [%d, +%d) outside variadic buffer %d of %lld bytes", off, got_size,
                    idx, (long long)bsize);
      gp = (const uint8_t *)a->buffers[2 + idx];
      if (gp == NULL) return fail(c, j, "variadic buffer %d is NULL", idx);
      gp += off;
      if (memcmp(view + 4, gp, 4) != 0) return fail(c, j, "view prefix differs from its data");
    }
    WG_RETURN_NOT_OK(cmp_bytes(c, j, wp, wn, gp, got_size, jc->t.utf8));
  }
  return 0;
}

/* Index of the union child with type code `code`, or -1. */
static int union_child(const struct jtype *t, int64_t code) {
  for (int i = 0; i < t->n_type_ids; i++)
    if (t->type_ids[i] == code) return i;
  return -1;
}

/* Physical run index covering logical position `pos`: first run end > pos. */
static int64_t run_search_json(const struct jcol *jc, int64_t pos) {
  int64_t lo = 0, hi = jc->n_run_ends;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (jc->run_ends[mid] > pos)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

static int cmp_ree(struct ctx *c, struct jcol *jc, const struct ArrowArray *a, int64_t j0,
                   int64_t a0, int64_t n) {
  struct jcol *jre = &jc->children[0], *jvals = &jc->children[1];
  const struct ArrowArray *are = a->children[0], *avals = a->children[1];
  if (c->mode == WG_GOLD_EXACT && j0 == 0 && a0 == 0 && a->offset == 0 && n == jc->count) {
    size_t saved = path_push(c, "/run_ends");
    int rc = cmp_full(c, jre, are);
    c->path[saved] = '\0';
    if (rc != 0) return rc;
    saved = path_push(c, "/values");
    rc = cmp_full(c, jvals, avals);
    c->path[saved] = '\0';
    return rc;
  }
  /* Logical: expand both sides run by run. */
  WG_RETURN_NOT_OK(check_shape(c, jre, are));
  if (jre->t.kind != K_INT || !jre->t.is_signed) return bad_json(c, j0, "run_ends type");
  int w = jre->t.width;
  NEED_BUF(re, c, are, 1, j0);
  for (int64_t k = 0; k < n; k++) {
    int64_t j = j0 + k, pos = a->offset + a0 + k;
    int64_t rj = run_search_json(jc, j);
    if (rj >= jc->n_run_ends) return bad_json(c, j, "run ends (too short)");
    int64_t lo = 0, hi = are->length;
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      int64_t end = sign_extend(load_le(re + (int64_t)w * (are->offset + mid), w), w);
      if (end > pos)
        hi = mid;
      else
        lo = mid + 1;
    }
    if (lo >= are->length)
      return fail(c, j, "no run covers logical position %lld (%lld runs)", (long long)pos,
                  (long long)are->length);
    size_t saved = path_push(c, "[%lld]/values", (long long)j);
    int rc = cmp_range(c, jvals, avals, rj, lo, 1);
    c->path[saved] = '\0';
    if (rc != 0) return rc;
  }
  return 0;
}

static bool seen_dictionary(struct ctx *c, const struct ArrowArray *d) {
  for (int64_t i = 0; i < c->n_seen; i++)
    if (c->seen[i] == d) return true;
  if (c->n_seen == c->cap_seen) {
    int64_t cap = c->cap_seen ? 2 * c->cap_seen : 8;
    const struct ArrowArray **n = realloc((void *)c->seen, (size_t)cap * sizeof(*n));
    if (n == NULL) return false;
    c->seen = n;
    c->cap_seen = cap;
  }
  c->seen[c->n_seen++] = d;
  return false;
}

static int cmp_dict(struct ctx *c, struct jcol *jc, const struct ArrowArray *a, int64_t j0,
                    int64_t base, int64_t n) {
  struct jcol *dict = NULL;
  WG_RETURN_NOT_OK(get_dict(c, jc, &dict));
  const struct ArrowArray *ad = a->dictionary;
  if (c->mode == WG_GOLD_EXACT) {
    for (int64_t k = 0; k < n; k++)
      if (jvalid(jc, j0 + k)) WG_RETURN_NOT_OK(cmp_fixed(c, jc, a, j0 + k, base + k));
    if (seen_dictionary(c, ad)) return 0;
    size_t saved = path_push(c, "<dictionary id %lld>", (long long)jc->t.dict_id);
    int rc = cmp_full(c, dict, ad);
    c->path[saved] = '\0';
    return rc;
  }
  NEED_BUF(idx, c, a, 1, j0);
  int w = jc->t.width;
  for (int64_t k = 0; k < n; k++) {
    int64_t j = j0 + k, p = base + k;
    if (!jvalid(jc, j)) continue;
    const cJSON *v = NULL;
    int64_t ji;
    WG_RETURN_NOT_OK(json_item(c, jc, j, &v));
    if (!json_get_i64(v, &ji) || ji < 0 || ji >= dict->count) return bad_json(c, j, "index");
    uint64_t raw = load_le(idx + (int64_t)w * p, w);
    int64_t ai = jc->t.is_signed ? sign_extend(raw, w) : (int64_t)raw;
    if (ai < 0 || ai >= ad->length)
      return fail(c, j, "index %lld outside dictionary of %lld", (long long)ai,
                  (long long)ad->length);
    size_t saved =
        path_push(c, "[%lld]<dictionary id %lld>", (long long)j, (long long)jc->t.dict_id);
    int rc = cmp_range(c, dict, ad, ji, ai, 1);
    c->path[saved] = '\0';
    if (rc != 0) return rc;
  }
  return 0;
}

static int cmp_child_range(struct ctx *c, struct jcol *jc, int64_t i, const struct ArrowArray *a,
                           int64_t j0, int64_t a0, int64_t n, int64_t row) {
  size_t saved = row >= 0 ? path_push(c, "[%lld]/%s", (long long)row, child_name(&jc->children[i]))
                          : path_push(c, "/%s", child_name(&jc->children[i]));
  int rc = cmp_range(c, &jc->children[i], a->children[i], j0, a0, n);
  c->path[saved] = '\0';
  return rc;
}

static int cmp_child_full(struct ctx *c, struct jcol *jc, int64_t i, const struct ArrowArray *a) {
  size_t saved = path_push(c, "/%s", child_name(&jc->children[i]));
  int rc = cmp_full(c, &jc->children[i], a->children[i]);
  c->path[saved] = '\0';
  return rc;
}

static int cmp_range(struct ctx *c, struct jcol *jc, const struct ArrowArray *a, int64_t j0,
                     int64_t a0, int64_t n) {
  if (++c->depth > MAX_DEPTH) {
    c->depth--;
    return fail(c, j0, "nested deeper than %d", MAX_DEPTH);
  }
  int rc = check_shape(c, jc, a);
  if (rc != 0) goto done;
  if (j0 < 0 || n < 0 || j0 + n > jc->count) {
    rc = bad_json(c, j0, "range (offsets point outside the child's count)");
    goto done;
  }
  if (a0 < 0 || a0 + n > a->length) {
    rc = fail(c, j0, "needs slots [%lld, %lld) of the array, but its length is %lld", (long long)a0,
              (long long)(a0 + n), (long long)a->length);
    goto done;
  }
  if (n == 0) goto done;
  int64_t base = a->offset + a0;
  const struct jtype *t = &jc->t;
  if (kind_has_validity(t->kind)) {
    for (int64_t k = 0; k < n; k++) {
      bool want = jvalid(jc, j0 + k), got = avalid(a, base + k);
      if (want != got) {
        rc = fail(c, j0 + k, "validity: expected %s, got %s", want ? "valid" : "null",
                  got ? "valid" : "null");
        goto done;
      }
    }
  }
  switch (t->kind) {
  case K_NULL:
    break;
  case K_BOOL:
  case K_INT:
  case K_FLOAT:
  case K_DECIMAL:
  case K_FSB:
  case K_INTERVAL_DT:
  case K_INTERVAL_MDN:
    for (int64_t k = 0; k < n && rc == 0; k++)
      if (jvalid(jc, j0 + k)) rc = cmp_fixed(c, jc, a, j0 + k, base + k);
    break;
  case K_DICT:
    rc = cmp_dict(c, jc, a, j0, base, n);
    break;
  case K_BINARY:
    rc = cmp_binary(c, jc, a, j0, base, n);
    break;
  case K_VIEW:
    rc = cmp_view(c, jc, a, j0, base, n);
    break;
  case K_STRUCT:
    for (int64_t i = 0; i < jc->n_children && rc == 0; i++)
      rc = cmp_child_range(c, jc, i, a, j0, base, n, -1);
    break;
  case K_FSL: {
    int64_t s = t->list_size;
    if (c->mode == WG_GOLD_EXACT && j0 == 0 && n == jc->count && base == 0) {
      rc = cmp_child_full(c, jc, 0, a);
    } else if (c->mode == WG_GOLD_EXACT) {
      rc = cmp_child_range(c, jc, 0, a, j0 * s, base * s, n * s, -1);
    } else {
      for (int64_t k = 0; k < n && rc == 0; k++)
        if (jvalid(jc, j0 + k))
          rc = cmp_child_range(c, jc, 0, a, (j0 + k) * s, (base + k) * s, s, j0 + k);
    }
    break;
  }
  case K_LIST: {
    NEED_BUF(offs, c, a, 1, j0);
    rc = need_json(c, jc->n_offsets, j0 + n + 1, "OFFSET");
    if (rc != 0) break;
    if (c->mode == WG_GOLD_EXACT) {
      for (int64_t k = 0; k <= n && rc == 0; k++) {
        int64_t want = jc->offsets[j0 + k], got = load_offset(offs, t->large, base + k);
        if (want != got)
          rc = fail(c, j0 + k, "offset: expected %lld, got %lld", (long long)want, (long long)got);
      }
      if (rc != 0) break;
      if (j0 == 0 && n == jc->count)
        rc = cmp_child_full(c, jc, 0, a);
      else
        rc = cmp_child_range(c, jc, 0, a, jc->offsets[j0], load_offset(offs, t->large, base),
                             jc->offsets[j0 + n] - jc->offsets[j0], -1);
      break;
    }
    for (int64_t k = 0; k < n && rc == 0; k++) {
      int64_t j = j0 + k, p = base + k;
      if (!jvalid(jc, j)) continue;
      int64_t js = jc->offsets[j], jl = jc->offsets[j + 1] - js;
      int64_t as = load_offset(offs, t->large, p), al = load_offset(offs, t->large, p + 1) - as;
      if (jl != al)
        rc = fail(c, j, "list length: expected %lld, got %lld (offsets %lld..%lld)", (long long)jl,
                  (long long)al, (long long)as, (long long)(as + al));
      else
        rc = cmp_child_range(c, jc, 0, a, js, as, jl, j);
    }
    break;
  }
  case K_LIST_VIEW: {
    NEED_BUF(offs, c, a, 1, j0);
    NEED_BUF(sizes, c, a, 2, j0);
    rc = need_json(c, jc->n_offsets, j0 + n, "OFFSET");
    if (rc == 0) rc = need_json(c, jc->n_sizes, j0 + n, "SIZE");
    if (rc != 0) break;
    if (c->mode == WG_GOLD_EXACT) {
      for (int64_t k = 0; k < n && rc == 0; k++) {
        int64_t wo = jc->offsets[j0 + k], go = load_offset(offs, t->large, base + k);
        int64_t ws = jc->sizes[j0 + k], gs = load_offset(sizes, t->large, base + k);
        if (wo != go || ws != gs)
          rc = fail(c, j0 + k, "offset/size: expected %lld/%lld, got %lld/%lld", (long long)wo,
                    (long long)ws, (long long)go, (long long)gs);
      }
      if (rc == 0 && j0 == 0 && n == jc->count) {
        rc = cmp_child_full(c, jc, 0, a);
        break;
      }
    }
    for (int64_t k = 0; k < n && rc == 0; k++) {
      int64_t j = j0 + k, p = base + k;
      if (!jvalid(jc, j)) continue;
      int64_t js = jc->offsets[j], jl = jc->sizes[j];
      int64_t as = load_offset(offs, t->large, p), al = load_offset(sizes, t->large, p);
      if (jl != al)
        rc = fail(c, j, "list view size: expected %lld, got %lld", (long long)jl, (long long)al);
      else
        rc = cmp_child_range(c, jc, 0, a, js, as, jl, j);
    }
    break;
  }
  case K_SPARSE_UNION:
  case K_DENSE_UNION: {
    bool dense = t->kind == K_DENSE_UNION;
    NEED_BUF(tids, c, a, 0, j0);
    rc = need_json(c, jc->n_type_ids, j0 + n, "TYPE_ID");
    if (rc == 0 && dense) rc = need_json(c, jc->n_offsets, j0 + n, "OFFSET");
    if (rc != 0) break;
    const uint8_t *uoffs = dense ? (const uint8_t *)a->buffers[1] : NULL;
    if (dense && uoffs == NULL) {
      rc = fail(c, j0, "union offsets buffer is NULL");
      break;
    }
    for (int64_t k = 0; k < n && rc == 0; k++) {
      int64_t want = jc->type_ids[j0 + k], got = (int8_t)tids[base + k];
      if (want != got) {
        rc = fail(c, j0 + k, "type id: expected %lld, got %lld", (long long)want, (long long)got);
        break;
      }
      int ci = union_child(t, got);
      if (ci < 0) {
        rc = bad_json(c, j0 + k, "type id not in typeIds");
        break;
      }
      if (dense && c->mode == WG_GOLD_EXACT) {
        int64_t wo = jc->offsets[j0 + k], go = wg_load_i32(uoffs + 4 * (base + k));
        if (wo != go)
          rc = fail(c, j0 + k, "union offset: expected %lld, got %lld", (long long)wo,
                    (long long)go);
      }
      if (rc == 0 && c->mode == WG_GOLD_LOGICAL) {
        int64_t jo = dense ? jc->offsets[j0 + k] : j0 + k;
        int64_t ao = dense ? wg_load_i32(uoffs + 4 * (base + k)) : base + k;
        rc = cmp_child_range(c, jc, ci, a, jo, ao, 1, j0 + k);
      }
    }
    if (rc != 0 || c->mode != WG_GOLD_EXACT) break;
    for (int64_t i = 0; i < jc->n_children && rc == 0; i++) {
      if (dense)
        rc = cmp_child_full(c, jc, i, a);
      else
        rc = cmp_child_range(c, jc, i, a, j0, base, n, -1);
    }
    break;
  }
  case K_REE:
    rc = cmp_ree(c, jc, a, j0, a0, n);
    break;
  }
done:
  c->depth--;
  return rc;
}

int wg_gold_compare_batch(const struct wg_gold_json *g, int64_t index,
                          const struct ArrowArray *batch, enum wg_gold_mode mode, const char *label,
                          struct wg_error *err) {
  struct ctx c;
  memset(&c, 0, sizeof(c));
  c.g = g;
  c.mode = mode;
  c.label = label;
  c.batch = index;
  c.err = err;
  wg_buf_init(&c.scratch);
  snprintf(c.path, sizeof(c.path), "(batch)");
  if (index < 0 || index >= wg_gold_json_n_batches(g))
    return wg_error_set(err, EINVAL, "%s: no batch %lld in the JSON (%lld batches)", g->name,
                        (long long)index, (long long)wg_gold_json_n_batches(g));
  const cJSON *jb = cJSON_GetArrayItem(g->batches, (int)index);
  const cJSON *fields = jget(g->schema, "fields");
  const cJSON *cols = jget(jb, "columns");
  int64_t count;
  if (!json_get_i64(jget(jb, "count"), &count) || !cJSON_IsArray(cols) ||
      cJSON_GetArraySize(cols) != cJSON_GetArraySize(fields))
    return wg_error_set(err, EINVAL, "%s: batch %lld: malformed JSON", g->name, (long long)index);
  int64_t n = cJSON_GetArraySize(fields);
  if (batch == NULL || batch->release == NULL) return fail(&c, -1, "batch is released");
  if (batch->n_children != n)
    return fail(&c, -1, "n_children: expected %lld, got %lld", (long long)n,
                (long long)batch->n_children);
  if (batch->length != count)
    return fail(&c, -1, "length: expected %lld, got %lld", (long long)count,
                (long long)batch->length);
  if (batch->n_buffers != 1)
    return fail(&c, -1, "struct batch with %lld buffers", (long long)batch->n_buffers);
  if (batch->offset < 0) return fail(&c, -1, "negative offset");
  int rc = 0;
  for (int64_t i = 0; i < n && rc == 0; i++) {
    const cJSON *f = cJSON_GetArrayItem(fields, (int)i);
    const char *fn = jstr(f, "name");
    snprintf(c.path, sizeof(c.path), "%s", fn && fn[0] ? fn : "(unnamed)");
    struct jcol jc;
    rc = jcol_build(g->name, f, cJSON_GetArrayItem(cols, (int)i), false, &jc, 0, err);
    if (rc == 0) {
      if (jc.count != count) {
        rc = wg_error_set(err, EINVAL, "%s: batch %lld: column %s count %lld != batch %lld",
                          g->name, (long long)index, c.path, (long long)jc.count, (long long)count);
      } else if (batch->children == NULL || batch->children[i] == NULL) {
        rc = fail(&c, -1, "child missing");
      } else if (batch->offset == 0) {
        rc = cmp_full(&c, &jc, batch->children[i]);
      } else {
        rc = cmp_range(&c, &jc, batch->children[i], 0, batch->offset, count);
      }
    }
    jcol_free(&jc);
  }
  for (int64_t i = 0; i < c.n_dicts; i++)
    jcol_free(&c.dicts[i].col);
  free(c.dicts);
  free((void *)c.seen);
  wg_buf_reset(&c.scratch);
  return rc;
}

/* ============================================================================================
 * Touching every byte of an array (for sanitizers) */

struct tctx {
  uint64_t sum;
  struct wg_error *err;
  char path[256];
};

static int tfail(struct tctx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int tfail(struct tctx *t, const char *fmt, ...) {
  char detail[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  return wg_error_set(t->err, EPROTO, "%s: %s", t->path[0] ? t->path : "(root)", detail);
}

static void touch(struct tctx *t, const void *p, int64_t n) {
  const volatile uint8_t *b = p;
  uint64_t s = 0;
  for (int64_t i = 0; i < n; i++)
    s += b[i];
  t->sum += s;
}

static int fixed_width_of(const char *f) {
  if (!strcmp(f, "c") || !strcmp(f, "C")) return 1;
  if (!strcmp(f, "s") || !strcmp(f, "S") || !strcmp(f, "e")) return 2;
  if (!strcmp(f, "i") || !strcmp(f, "I") || !strcmp(f, "f") || !strcmp(f, "tdD") ||
      !strcmp(f, "tts") || !strcmp(f, "ttm") || !strcmp(f, "tiM"))
    return 4;
  if (!strcmp(f, "l") || !strcmp(f, "L") || !strcmp(f, "g") || !strcmp(f, "tdm") ||
      !strcmp(f, "ttu") || !strcmp(f, "ttn") || !strcmp(f, "tiD") || !strncmp(f, "ts", 2) ||
      !strncmp(f, "tD", 2))
    return 8;
  if (!strcmp(f, "tin")) return 16;
  if (!strncmp(f, "d:", 2)) {
    const char *last = strrchr(f, ',');
    if (last != NULL && strchr(f, ',') != last) return atoi(last + 1) / 8;
    return 16;
  }
  if (!strncmp(f, "w:", 2)) return atoi(f + 2);
  return -1;
}

static int touch_array(struct tctx *t, const struct ArrowSchema *s, const struct ArrowArray *a,
                       int depth);

static int touch_child(struct tctx *t, const struct ArrowSchema *s, const struct ArrowArray *a,
                       int64_t i, int64_t need, int depth) {
  if (i >= s->n_children || i >= a->n_children || a->children == NULL || a->children[i] == NULL)
    return tfail(t, "child %lld missing", (long long)i);
  if (a->children[i]->length < need)
    return tfail(t, "child %lld has length %lld, needs %lld", (long long)i,
                 (long long)a->children[i]->length, (long long)need);
  size_t saved = strlen(t->path);
  snprintf(t->path + saved, sizeof(t->path) - saved, "/%s",
           s->children[i]->name ? s->children[i]->name : "?");
  int rc = touch_array(t, s->children[i], a->children[i], depth + 1);
  t->path[saved] = '\0';
  return rc;
}

static int check_buffers(struct tctx *t, const struct ArrowArray *a, int64_t want) {
  if (a->n_buffers != want)
    return tfail(t, "n_buffers %lld, expected %lld", (long long)a->n_buffers, (long long)want);
  if (want > 0 && a->buffers == NULL) return tfail(t, "buffers is NULL");
  return 0;
}

static const uint8_t *buf_or_fail(struct tctx *t, const struct ArrowArray *a, int i, int64_t bytes,
                                  int *rc) {
  const uint8_t *p = a->buffers[i];
  if (p == NULL && bytes > 0)
    *rc = tfail(t, "buffer %d is NULL but needs %lld bytes", i, (long long)bytes);
  return p;
}

static int touch_array(struct tctx *t, const struct ArrowSchema *s, const struct ArrowArray *a,
                       int depth) {
  if (depth > MAX_DEPTH) return tfail(t, "nested too deep");
  if (s == NULL || a == NULL || a->release == NULL || s->format == NULL)
    return tfail(t, "missing schema or array");
  if (a->length < 0 || a->offset < 0) return tfail(t, "negative length or offset");
  const char *f = s->format;
  int64_t end = a->offset + a->length; /* physical slots that must exist */
  int rc = 0;
  if (s->dictionary != NULL) {
    int w = fixed_width_of(f);
    if (w <= 0 || w > 8) return tfail(t, "dictionary index format %s", f);
    WG_RETURN_NOT_OK(check_buffers(t, a, 2));
    if (a->dictionary == NULL) return tfail(t, "dictionary array missing");
    if (a->buffers[0]) touch(t, a->buffers[0], (end + 7) / 8);
    const uint8_t *idx = buf_or_fail(t, a, 1, end * w, &rc);
    if (rc != 0) return rc;
    bool is_signed = f[0] >= 'a';
    for (int64_t i = a->offset; i < end; i++) {
      if (a->buffers[0] && !wg_bit_get(a->buffers[0], i)) continue;
      uint64_t raw = load_le(idx + (int64_t)w * i, w);
      int64_t v = is_signed ? sign_extend(raw, w) : (int64_t)raw;
      if (v < 0 || v >= a->dictionary->length)
        return tfail(t, "slot %lld: index %lld outside dictionary of %lld", (long long)i,
                     (long long)v, (long long)a->dictionary->length);
    }
    size_t saved = strlen(t->path);
    snprintf(t->path + saved, sizeof(t->path) - saved, "<dictionary>");
    rc = touch_array(t, s->dictionary, a->dictionary, depth + 1);
    t->path[saved] = '\0';
    return rc;
  }
  if (!strcmp(f, "n")) return check_buffers(t, a, 0);
  if (!strcmp(f, "+r")) {
    WG_RETURN_NOT_OK(check_buffers(t, a, 0));
    if (a->n_children != 2 || s->n_children != 2) return tfail(t, "run-end encoded children");
    const struct ArrowArray *re = a->children[0];
    int w = fixed_width_of(s->children[0]->format);
    if (re == NULL || (w != 2 && w != 4 && w != 8)) return tfail(t, "run ends type");
    WG_RETURN_NOT_OK(touch_child(t, s, a, 0, 0, depth));
    int64_t runs = re->length;
    WG_RETURN_NOT_OK(touch_child(t, s, a, 1, runs, depth));
    if (a->length == 0) return 0;
    const uint8_t *p = buf_or_fail(t, re, 1, (re->offset + runs) * w, &rc);
    if (rc != 0) return rc;
    int64_t prev = 0;
    for (int64_t i = 0; i < runs; i++) {
      int64_t v = sign_extend(load_le(p + (int64_t)w * (re->offset + i), w), w);
      if (v <= prev)
        return tfail(t, "run end %lld not increasing (%lld)", (long long)i, (long long)v);
      prev = v;
    }
    if (prev < end)
      return tfail(t, "run ends stop at %lld < %lld", (long long)prev, (long long)end);
    return 0;
  }
  if (f[0] != '+' && !(f[0] == 'v' && (f[1] == 'z' || f[1] == 'u'))) {
    /* Primitive, boolean, binary. */
    bool varlen = !strcmp(f, "z") || !strcmp(f, "u") || !strcmp(f, "Z") || !strcmp(f, "U");
    WG_RETURN_NOT_OK(check_buffers(t, a, varlen ? 3 : 2));
    if (a->buffers[0]) touch(t, a->buffers[0], (end + 7) / 8);
    if (!strcmp(f, "b")) {
      const uint8_t *p = buf_or_fail(t, a, 1, (end + 7) / 8, &rc);
      if (rc == 0 && end > 0) touch(t, p, (end + 7) / 8);
      return rc;
    }
    if (varlen) {
      bool large = f[0] == 'Z' || f[0] == 'U';
      int ow = large ? 8 : 4;
      const uint8_t *o = buf_or_fail(t, a, 1, a->length > 0 ? (end + 1) * ow : 0, &rc);
      if (rc != 0 || a->length == 0) return rc;
      int64_t first = load_offset(o, large, a->offset), last = first;
      for (int64_t i = a->offset; i < end; i++) {
        int64_t x = load_offset(o, large, i), y = load_offset(o, large, i + 1);
        if (x < 0 || y < x)
          return tfail(t, "offsets %lld..%lld at slot %lld", (long long)x, (long long)y,
                       (long long)i);
        last = y;
      }
      const uint8_t *d = buf_or_fail(t, a, 2, last - first, &rc);
      if (rc == 0 && last > first) touch(t, d + first, last - first);
      return rc;
    }
    int w = fixed_width_of(f);
    if (w < 0) return wg_error_set(t->err, ENOTSUP, "%s: format %s", t->path, f);
    const uint8_t *p = buf_or_fail(t, a, 1, end * w, &rc);
    if (rc == 0 && end * w > 0) touch(t, p, end * w);
    return rc;
  }
  if (f[0] == 'v') {
    if (a->n_buffers < 3 || a->buffers == NULL)
      return tfail(t, "view array with %lld buffers", (long long)a->n_buffers);
    int64_t n_var = a->n_buffers - 3;
    if (a->buffers[0]) touch(t, a->buffers[0], (end + 7) / 8);
    const uint8_t *views = buf_or_fail(t, a, 1, end * 16, &rc);
    const uint8_t *sizes = buf_or_fail(t, a, (int)a->n_buffers - 1, n_var * 8, &rc);
    if (rc != 0) return rc;
    for (int64_t i = a->offset; i < end; i++) {
      const uint8_t *v = views + 16 * i;
      int32_t size = wg_load_i32(v);
      if (size < 0) return tfail(t, "slot %lld: view size %d", (long long)i, size);
      if (size <= 12) {
        touch(t, v, 16);
        continue;
      }
      int32_t idx = wg_load_i32(v + 8), off = wg_load_i32(v + 12);
      if (a->buffers[0] && !wg_bit_get(a->buffers[0], i)) continue;
      if (idx < 0 || idx >= n_var)
        return tfail(t, "slot %lld: view buffer %d of %lld", (long long)i, idx, (long long)n_var);
      int64_t bsize = wg_load_i64(sizes + 8 * idx);
      if (off < 0 || (int64_t)off + size > bsize)
        return tfail(t, "slot %lld: view [%d,+%d) outside buffer of %lld", (long long)i, off, size,
                     (long long)bsize);
      const uint8_t *d = a->buffers[2 + idx];
      if (d == NULL) return tfail(t, "variadic buffer %d is NULL", idx);
      touch(t, d + off, size);
    }
    return 0;
  }
  /* Nested. */
  if (!strcmp(f, "+s")) {
    WG_RETURN_NOT_OK(check_buffers(t, a, 1));
    if (a->n_children != s->n_children) return tfail(t, "struct children differ from schema");
    if (a->buffers[0]) touch(t, a->buffers[0], (end + 7) / 8);
    for (int64_t i = 0; i < a->n_children; i++)
      WG_RETURN_NOT_OK(touch_child(t, s, a, i, end, depth));
    return 0;
  }
  if (!strcmp(f, "+l") || !strcmp(f, "+L") || !strcmp(f, "+m")) {
    bool large = f[1] == 'L';
    WG_RETURN_NOT_OK(check_buffers(t, a, 2));
    if (a->n_children != 1) return tfail(t, "list with %lld children", (long long)a->n_children);
    if (a->buffers[0]) touch(t, a->buffers[0], (end + 7) / 8);
    int64_t need = 0;
    if (a->length > 0) {
      const uint8_t *o = buf_or_fail(t, a, 1, (end + 1) * (large ? 8 : 4), &rc);
      if (rc != 0) return rc;
      for (int64_t i = a->offset; i < end; i++) {
        int64_t x = load_offset(o, large, i), y = load_offset(o, large, i + 1);
        if (x < 0 || y < x)
          return tfail(t, "list offsets %lld..%lld at slot %lld", (long long)x, (long long)y,
                       (long long)i);
        need = y;
      }
    }
    return touch_child(t, s, a, 0, need, depth);
  }
  if (!strcmp(f, "+vl") || !strcmp(f, "+vL")) {
    bool large = f[2] == 'L';
    WG_RETURN_NOT_OK(check_buffers(t, a, 3));
    if (a->n_children != 1)
      return tfail(t, "list view with %lld children", (long long)a->n_children);
    if (a->buffers[0]) touch(t, a->buffers[0], (end + 7) / 8);
    int64_t need = 0;
    if (a->length > 0) {
      const uint8_t *o = buf_or_fail(t, a, 1, end * (large ? 8 : 4), &rc);
      const uint8_t *z = buf_or_fail(t, a, 2, end * (large ? 8 : 4), &rc);
      if (rc != 0) return rc;
      for (int64_t i = a->offset; i < end; i++) {
        if (a->buffers[0] && !wg_bit_get(a->buffers[0], i)) continue;
        int64_t x = load_offset(o, large, i), y = load_offset(z, large, i);
        if (x < 0 || y < 0)
          return tfail(t, "list view %lld/%lld at slot %lld", (long long)x, (long long)y,
                       (long long)i);
        if (x + y > need) need = x + y;
      }
    }
    return touch_child(t, s, a, 0, need, depth);
  }
  if (!strncmp(f, "+w:", 3)) {
    int64_t size = atoll(f + 3);
    WG_RETURN_NOT_OK(check_buffers(t, a, 1));
    if (a->buffers[0]) touch(t, a->buffers[0], (end + 7) / 8);
    return touch_child(t, s, a, 0, end * size, depth);
  }
  if (!strncmp(f, "+us:", 4) || !strncmp(f, "+ud:", 4)) {
    bool dense = f[2] == 'd';
    int8_t ids[128];
    int n_ids = 0;
    for (const char *p = f + 4; *p && n_ids < 128;) {
      ids[n_ids++] = (int8_t)atoi(p);
      p = strchr(p, ',');
      if (p == NULL) break;
      p++;
    }
    if (n_ids != s->n_children || a->n_children != s->n_children)
      return tfail(t, "union with %d ids, %lld children", n_ids, (long long)a->n_children);
    WG_RETURN_NOT_OK(check_buffers(t, a, dense ? 2 : 1));
    const uint8_t *tid = buf_or_fail(t, a, 0, end, &rc);
    const uint8_t *off = dense ? buf_or_fail(t, a, 1, end * 4, &rc) : NULL;
    if (rc != 0) return rc;
    int64_t *need = calloc((size_t)(n_ids > 0 ? n_ids : 1), sizeof(int64_t));
    if (need == NULL) return ENOMEM;
    for (int64_t i = a->offset; i < end && rc == 0; i++) {
      int ci = -1;
      for (int k = 0; k < n_ids; k++)
        if (ids[k] == (int8_t)tid[i]) ci = k;
      if (ci < 0) {
        rc = tfail(t, "slot %lld: type id %d not in %s", (long long)i, (int8_t)tid[i], f);
        break;
      }
      if (dense) {
        int32_t o = wg_load_i32(off + 4 * i);
        if (o < 0) rc = tfail(t, "slot %lld: negative union offset", (long long)i);
        if (o + 1 > need[ci]) need[ci] = o + 1;
      } else {
        need[ci] = end;
      }
    }
    for (int64_t i = 0; i < n_ids && rc == 0; i++)
      rc = touch_child(t, s, a, i, dense ? need[i] : end, depth);
    free(need);
    return rc;
  }
  return wg_error_set(t->err, ENOTSUP, "%s: format %s", t->path, f);
}

int wg_gold_touch_array(const struct ArrowSchema *schema, const struct ArrowArray *array,
                        uint64_t *checksum, struct wg_error *err) {
  struct tctx t = {.sum = 0, .err = err};
  t.path[0] = '\0';
  int rc = touch_array(&t, schema, array, 0);
  if (checksum) *checksum = t.sum;
  return rc;
}
