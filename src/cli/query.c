/* wigeon: `wigeon query "SQL"`: runs SQL on the server (DoGet, or Flight SQL with --flight-sql,
 * which also reaches the metadata commands with --meta) and writes the result as an
 * aligned table (DuckDB's box style: the first and last rows of a big result with the middle
 * elided), CSV, JSON, NDJSON, an Arrow IPC stream or Parquet. Everything streams batch by batch:
 * values are turned into text by the client-side DuckDB chunk by chunk, Arrow goes through our
 * IPC encoder, Parquet through the client-side DuckDB's COPY; the table keeps only the rows it
 * shows. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arrow/array.h"
#include "arrow/build.h"
#include "arrow/ipc.h"
#include "cli/cli.h"

static const char *formats[] = {"table", "csv", "json", "ndjson", "arrow", "parquet"};

bool wg_cli_format_known(const char *format) {
  for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
    if (strcmp(format, formats[i]) == 0) return true;
  return false;
}

/* ---------------------------------------------------------------------------------------------
 * Table */

/* One stored row: its cells' text (sanitized, cut to max_width) in one buffer. */
struct stored_row {
  struct wg_buf text;
  int64_t *off;
  int32_t *len, *width;
  bool *null;
};

struct table {
  const struct wg_cli_output *o;
  FILE *out;
  int64_t n;
  char **names, **types;
  bool *right;
  int64_t head_cap, tail_cap; /* rows kept from the start; ring of the last rows */
  struct stored_row *head, *tail;
  int64_t total;
};

static int64_t utf8_width(const char *s, int64_t len) {
  int64_t w = 0;
  for (int64_t i = 0; i < len; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80) w++;
  return w;
}

/* Appends the cell, control characters escaped, cut to max_width characters with "…". */
static int store_text(struct wg_buf *b, const char *s, int64_t len, int64_t max_width,
                      int32_t *width) {
  int64_t w = 0;
  for (int64_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    bool lead = (ch & 0xC0) != 0x80;
    if (lead && w >= max_width) {
      /* cut: drop the last character to make room for the ellipsis */
      int64_t j = b->size;
      while (j > 0 && ((unsigned char)b->data[j - 1] & 0xC0) == 0x80)
        j--;
      if (j > 0) b->size = j - 1;
      WG_RETURN_NOT_OK(wg_buf_append(b, "\xE2\x80\xA6", 3));
      *width = (int32_t)w;
      return 0;
    }
    if (ch < 0x20 || ch == 0x7f) {
      char esc[8];
      int n = ch == '\n'   ? snprintf(esc, sizeof(esc), "\\n")
              : ch == '\t' ? snprintf(esc, sizeof(esc), "\\t")
              : ch == '\r' ? snprintf(esc, sizeof(esc), "\\r")
                           : snprintf(esc, sizeof(esc), "\\x%02x", ch);
      WG_RETURN_NOT_OK(wg_buf_append(b, esc, n));
      w += n;
      continue;
    }
    WG_RETURN_NOT_OK(wg_buf_append(b, s + i, 1));
    if (lead) w++;
  }
  *width = (int32_t)w;
  return 0;
}

static int row_init(struct stored_row *r, int64_t n) {
  wg_buf_init(&r->text);
  r->off = calloc((size_t)n + 1, sizeof(int64_t));
  r->len = calloc((size_t)n + 1, sizeof(int32_t));
  r->width = calloc((size_t)n + 1, sizeof(int32_t));
  r->null = calloc((size_t)n + 1, sizeof(bool));
  return r->off && r->len && r->width && r->null ? 0 : ENOMEM;
}

static void row_reset(struct stored_row *r) {
  wg_buf_reset(&r->text);
  free(r->off);
  free(r->len);
  free(r->width);
  free(r->null);
}

static int row_store(struct table *t, struct stored_row *r, const struct wg_cli_cell *cells) {
  r->text.size = 0;
  for (int64_t c = 0; c < t->n; c++) {
    r->off[c] = r->text.size;
    r->null[c] = cells[c].null;
    if (cells[c].null)
      WG_RETURN_NOT_OK(store_text(&r->text, "NULL", 4, t->o->max_width, &r->width[c]));
    else
      WG_RETURN_NOT_OK(
          store_text(&r->text, cells[c].data, cells[c].len, t->o->max_width, &r->width[c]));
    r->len[c] = (int32_t)(r->text.size - r->off[c]);
  }
  return 0;
}

/* DuckDB's box renderer names integer types by width. */
static char *render_type(const char *t) {
  static const struct {
    const char *sql, *shown;
  } names[] = {{"BIGINT", "int64"},     {"INTEGER", "int32"},  {"SMALLINT", "int16"},
               {"TINYINT", "int8"},     {"UBIGINT", "uint64"}, {"UINTEGER", "uint32"},
               {"USMALLINT", "uint16"}, {"UTINYINT", "uint8"}, {"HUGEINT", "int128"},
               {"UHUGEINT", "uint128"}};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcmp(t, names[i].sql) == 0) return strdup(names[i].shown);
  char *s = strdup(t);
  for (char *p = s; p && *p; p++)
    *p = (char)tolower((unsigned char)*p);
  return s;
}

static bool numeric_type(const char *t) {
  const char *num[] = {"BIGINT",    "INTEGER",  "SMALLINT", "TINYINT",  "UBIGINT", "UINTEGER",
                       "USMALLINT", "UTINYINT", "HUGEINT",  "UHUGEINT", "FLOAT",   "DOUBLE"};
  for (size_t i = 0; i < sizeof(num) / sizeof(num[0]); i++)
    if (strcmp(t, num[i]) == 0) return true;
  return strncmp(t, "DECIMAL", 7) == 0;
}

static int table_begin(void *ctx, int64_t n, char **names, char **types) {
  struct table *t = ctx;
  t->n = n;
  t->names = calloc((size_t)n + 1, sizeof(char *));
  t->types = calloc((size_t)n + 1, sizeof(char *));
  t->right = calloc((size_t)n + 1, sizeof(bool));
  if (t->names == NULL || t->types == NULL || t->right == NULL) return ENOMEM;
  for (int64_t i = 0; i < n; i++) {
    t->names[i] = strdup(names[i]);
    t->types[i] = render_type(types[i]);
    t->right[i] = numeric_type(types[i]);
  }
  int64_t max = t->o->max_rows;
  t->tail_cap = max / 2;
  t->head_cap = max;
  t->head = calloc((size_t)t->head_cap + 1, sizeof(*t->head));
  t->tail = calloc((size_t)t->tail_cap + 1, sizeof(*t->tail));
  if (t->head == NULL || t->tail == NULL) return ENOMEM;
  return 0;
}

static int table_row(void *ctx, const struct wg_cli_cell *cells) {
  struct table *t = ctx;
  int64_t i = t->total++;
  if (i < t->head_cap) {
    WG_RETURN_NOT_OK(row_init(&t->head[i], t->n));
    return row_store(t, &t->head[i], cells);
  }
  if (t->tail_cap == 0) return 0;
  /* Every row past the head goes through the ring: the last tail_cap stay. */
  int64_t k = (i - t->head_cap) % t->tail_cap;
  struct stored_row *r = &t->tail[k];
  if (r->off == NULL) WG_RETURN_NOT_OK(row_init(r, t->n));
  return row_store(t, r, cells);
}

static void put_repeat(FILE *f, const char *s, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    fputs(s, f);
}

/* Writes text (width w characters) in a field of `width`, cut with "…" if it is wider. */
static void put_field(FILE *f, const char *s, int64_t len, int64_t w, int64_t width, int align) {
  if (w > width) {
    int64_t keep = width - 1, i = 0, seen = 0;
    while (i < len) {
      if (((unsigned char)s[i] & 0xC0) != 0x80) {
        if (seen == keep) break;
        seen++;
      }
      i++;
    }
    fwrite(s, 1, (size_t)i, f);
    fputs("\xE2\x80\xA6", f);
    return;
  }
  int64_t pad = width - w;
  int64_t left = align > 0 ? pad : align == 0 ? pad / 2 : 0;
  put_repeat(f, " ", left);
  fwrite(s, 1, (size_t)len, f);
  put_repeat(f, " ", pad - left);
}

struct box {
  const char *h, *v, *tl, *tm, *tr, *ml, *mm, *mr, *bl, *bm, *br, *dot;
};

static void rule(FILE *f, const struct box *b, const int64_t *widths, int64_t n, const char *l,
                 const char *m, const char *r) {
  fputs(l, f);
  for (int64_t c = 0; c < n; c++) {
    put_repeat(f, b->h, widths[c] + 2);
    fputs(c + 1 < n ? m : r, f);
  }
  fputc('\n', f);
}

static void print_row(FILE *f, const struct box *b, const struct table *t, const int64_t *widths,
                      const struct stored_row *r) {
  fputs(b->v, f);
  for (int64_t c = 0; c < t->n; c++) {
    fputc(' ', f);
    const char *s = (const char *)r->text.data + r->off[c];
    put_field(f, s, r->len[c], r->width[c], widths[c], t->right[c] && !r->null[c] ? 1 : -1);
    fputc(' ', f);
    fputs(b->v, f);
  }
  fputc('\n', f);
}

static int64_t terminal_columns(FILE *f) {
  struct winsize ws;
  if (isatty(fileno(f)) && ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  return 0;
}

/* Row j of the result (0-based) among those kept: the first head_cap rows stay in head[], later
 * ones in the tail ring; j must be one of the last tail_cap rows or below head_cap. */
static const struct stored_row *stored_row_at(const struct table *t, int64_t j) {
  if (j < t->head_cap) return &t->head[j];
  return &t->tail[(j - t->head_cap) % t->tail_cap];
}

static void table_print(struct table *t) {
  FILE *f = t->out;
  static const struct box unicode = {"─", "│", "┌", "┬", "┐", "├", "┼", "┤", "└", "┴", "┘", "·"};
  static const struct box ascii = {"-", "|", "+", "+", "+", "+", "+", "+", "+", "+", "+", "."};
  const struct box *b = t->o->ascii ? &ascii : &unicode;
  int64_t n = t->n;
  bool elided = t->total > t->head_cap;
  int64_t shown_head = elided ? t->head_cap - t->tail_cap : t->total;
  int64_t shown_tail = elided ? t->tail_cap : 0;
  int64_t *widths = calloc((size_t)n + 1, sizeof(int64_t));
  if (widths == NULL) return;
  for (int64_t c = 0; c < n; c++) {
    int64_t w = utf8_width(t->names[c], (int64_t)strlen(t->names[c]));
    int64_t tw = utf8_width(t->types[c], (int64_t)strlen(t->types[c]));
    widths[c] = w > tw ? w : tw;
    if (widths[c] > t->o->max_width) widths[c] = t->o->max_width;
    if (widths[c] < 1) widths[c] = 1;
  }
  for (int64_t i = 0; i < shown_head + shown_tail; i++) {
    const struct stored_row *r =
        i < shown_head ? &t->head[i] : stored_row_at(t, t->total - shown_tail + (i - shown_head));
    for (int64_t c = 0; c < n; c++)
      if (r->width[c] > widths[c]) widths[c] = r->width[c];
  }
  /* Narrow the widest columns until the table fits the terminal. */
  int64_t cols = terminal_columns(f);
  if (cols > 0) {
    for (;;) {
      int64_t total = 1, widest = -1;
      for (int64_t c = 0; c < n; c++) {
        total += widths[c] + 3;
        if (widest < 0 || widths[c] > widths[widest]) widest = c;
      }
      if (total <= cols || widest < 0 || widths[widest] <= 6) break;
      widths[widest]--;
    }
  }
  /* The footer note, when there is one: on one line if it fits under the columns, else as
   * "N rows" over "(M shown)", widening the last column only if even that does not fit. */
  char notes[2][80] = {"", ""}, total_s[32], shown_s[32];
  int n_notes = 0;
  if (elided) {
    wg_cli_commas(t->total, total_s, sizeof(total_s));
    wg_cli_commas(shown_head + shown_tail, shown_s, sizeof(shown_s));
    snprintf(notes[0], sizeof(notes[0]), "%s rows (%s shown)", total_s, shown_s);
    n_notes = 1;
  } else if (t->total == 0) {
    snprintf(notes[0], sizeof(notes[0]), "0 rows");
    n_notes = 1;
  }
  if (n_notes > 0 && n > 0) {
    int64_t sum = -1;
    for (int64_t c = 0; c < n; c++)
      sum += widths[c] + 3;
    if (sum < (int64_t)strlen(notes[0]) + 2 && elided) {
      snprintf(notes[0], sizeof(notes[0]), "%s rows", total_s);
      snprintf(notes[1], sizeof(notes[1]), "(%s shown)", shown_s);
      n_notes = 2;
    }
    int64_t need = (int64_t)strlen(notes[0]);
    if ((int64_t)strlen(notes[1]) > need) need = (int64_t)strlen(notes[1]);
    if (sum < need + 2) widths[n - 1] += need + 2 - sum;
  }
  rule(f, b, widths, n, b->tl, b->tm, b->tr);
  for (int pass = 0; pass < 2; pass++) {
    fputs(b->v, f);
    for (int64_t c = 0; c < n; c++) {
      const char *s = pass == 0 ? t->names[c] : t->types[c];
      fputc(' ', f);
      put_field(f, s, (int64_t)strlen(s), utf8_width(s, (int64_t)strlen(s)), widths[c], 0);
      fputc(' ', f);
      fputs(b->v, f);
    }
    fputc('\n', f);
  }
  rule(f, b, widths, n, b->ml, b->mm, b->mr);
  for (int64_t i = 0; i < shown_head; i++)
    print_row(f, b, t, widths, &t->head[i]);
  if (elided) {
    for (int k = 0; k < 3; k++) {
      fputs(b->v, f);
      for (int64_t c = 0; c < n; c++) {
        fputc(' ', f);
        put_field(f, b->dot, (int64_t)strlen(b->dot), 1, widths[c], t->right[c] ? 1 : -1);
        fputc(' ', f);
        fputs(b->v, f);
      }
      fputc('\n', f);
    }
    for (int64_t i = 0; i < shown_tail; i++)
      print_row(f, b, t, widths, stored_row_at(t, t->total - shown_tail + i));
  }
  if (elided || t->total == 0) {
    int64_t sum = -1; /* characters between the outer bars */
    for (int64_t c = 0; c < n; c++)
      sum += widths[c] + 3;
    int64_t inner = sum < 2 ? 2 : sum;
    fputs(b->ml, f);
    for (int64_t c = 0; c < n; c++) {
      put_repeat(f, b->h, widths[c] + 2);
      if (c + 1 < n) fputs(b->bm, f);
    }
    put_repeat(f, b->h, inner - (sum > 0 ? sum : 0));
    fputs(b->mr, f);
    fputc('\n', f);
    for (int k = 0; k < n_notes; k++) {
      int64_t nw = (int64_t)strlen(notes[k]);
      fputs(b->v, f);
      fputc(' ', f);
      put_field(f, notes[k], nw, nw, inner - 2, 0);
      fputc(' ', f);
      fputs(b->v, f);
      fputc('\n', f);
    }
    fputs(b->bl, f);
    put_repeat(f, b->h, inner);
    fputs(b->br, f);
    fputc('\n', f);
  } else {
    rule(f, b, widths, n, b->bl, b->bm, b->br);
  }
  free(widths);
}

static void table_reset(struct table *t) {
  for (int64_t i = 0; i < t->n && t->names; i++)
    free(t->names[i]);
  for (int64_t i = 0; i < t->n && t->types; i++)
    free(t->types[i]);
  free(t->names);
  free(t->types);
  free(t->right);
  for (int64_t i = 0; t->head != NULL && i < t->head_cap && i < t->total; i++)
    row_reset(&t->head[i]);
  for (int64_t i = 0; t->tail != NULL && i < t->tail_cap; i++)
    if (t->tail[i].off != NULL) row_reset(&t->tail[i]);
  free(t->head);
  free(t->tail);
}

/* ---------------------------------------------------------------------------------------------
 * CSV and JSON, row by row as DuckDB's chunks arrive */

struct text_out {
  FILE *out;
  int64_t n;
  char **names;
  bool json, ndjson;
  int64_t rows;
};

static void csv_field(FILE *f, const char *s, int64_t len, bool force_quote) {
  bool quote = force_quote;
  for (int64_t i = 0; i < len && !quote; i++)
    quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
  if (!quote) {
    fwrite(s, 1, (size_t)len, f);
    return;
  }
  fputc('"', f);
  for (int64_t i = 0; i < len; i++) {
    if (s[i] == '"') fputc('"', f);
    fputc(s[i], f);
  }
  fputc('"', f);
}

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

static int text_begin(void *ctx, int64_t n, char **names, char **types) {
  struct text_out *t = ctx;
  t->n = n;
  t->names = calloc((size_t)n + 1, sizeof(char *));
  if (t->names == NULL) return ENOMEM;
  for (int64_t i = 0; i < n; i++)
    t->names[i] = strdup(names[i]);
  if (t->json) {
    if (!t->ndjson) fputc('[', t->out);
    return 0;
  }
  for (int64_t i = 0; i < n; i++) {
    if (i > 0) fputc(',', t->out);
    csv_field(t->out, names[i], (int64_t)strlen(names[i]), false);
  }
  fputc('\n', t->out);
  return 0;
}

static int text_row(void *ctx, const struct wg_cli_cell *cells) {
  struct text_out *t = ctx;
  FILE *f = t->out;
  if (t->json) {
    if (!t->ndjson) fputs(t->rows == 0 ? "\n" : ",\n", f);
    fputc('{', f);
    for (int64_t i = 0; i < t->n; i++) {
      if (i > 0) fputc(',', f);
      json_string(f, t->names[i]);
      fputc(':', f);
      if (cells[i].null)
        fputs("null", f);
      else
        fwrite(cells[i].data, 1, cells[i].len, f);
    }
    fputc('}', f);
    if (t->ndjson) fputc('\n', f);
  } else {
    for (int64_t i = 0; i < t->n; i++) {
      if (i > 0) fputc(',', f);
      /* NULL is an empty field; an empty string is "" so the two stay apart. */
      if (!cells[i].null) csv_field(f, cells[i].data, cells[i].len, cells[i].len == 0);
    }
    fputc('\n', f);
  }
  t->rows++;
  return ferror(f) ? EIO : 0;
}

static void text_end(struct text_out *t) {
  if (t->json && !t->ndjson) fputs(t->rows == 0 ? "]\n" : "\n]\n", t->out);
  for (int64_t i = 0; i < t->n && t->names; i++)
    free(t->names[i]);
  free(t->names);
}

/* ---------------------------------------------------------------------------------------------
 * Batch by batch as batches arrive (wigeon tail): the printers above, fed one batch at a time */

/* A stream of one batch over a copy of its schema, for wg_cli_rows_read. */
struct one_batch {
  struct ArrowSchema schema;
  struct ArrowArray batch; /* release NULL once handed out */
};

static int ob_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct one_batch *ob = s->private_data;
  return wg_schema_deep_copy(&ob->schema, out, NULL);
}

static int ob_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct one_batch *ob = s->private_data;
  out->release = NULL;
  if (ob->batch.release != NULL) wg_array_move(&ob->batch, out);
  return 0;
}

static const char *ob_last_error(struct ArrowArrayStream *s) {
  (void)s;
  return NULL;
}

static void ob_release(struct ArrowArrayStream *s) {
  struct one_batch *ob = s->private_data;
  wg_schema_release(&ob->schema);
  wg_array_release(&ob->batch);
  free(ob);
  s->release = NULL;
}

struct wg_cli_printer {
  struct wg_cli_output o;
  FILE *out;
  struct wg_cli_duck duck;
  bool table;
  struct text_out text; /* csv, json: begun once, so the CSV header comes once */
  bool text_begun;
  struct table *cur;     /* table: the batch's own table */
  int64_t limit, printed; /* rows this batch may still print; rows it printed */
};

static int printer_begin(void *ctx, int64_t n, char **names, char **types) {
  struct wg_cli_printer *p = ctx;
  if (p->table) return table_begin(p->cur, n, names, types);
  if (p->text_begun) return 0;
  p->text_begun = true;
  return text_begin(&p->text, n, names, types);
}

enum { PRINTER_FULL = -1 }; /* the row callback's "enough": not an error */

static int printer_row(void *ctx, const struct wg_cli_cell *cells) {
  struct wg_cli_printer *p = ctx;
  if (p->printed >= p->limit) return PRINTER_FULL;
  p->printed++;
  return p->table ? table_row(p->cur, cells) : text_row(&p->text, cells);
}

int wg_cli_printer_create(struct wg_cli_printer **out, const struct wg_cli_output *o, FILE *f,
                          struct wg_error *err) {
  *out = NULL;
  const char *format = o->format != NULL ? o->format : "table";
  bool json = strcmp(format, "json") == 0 || strcmp(format, "ndjson") == 0;
  if (!json && strcmp(format, "csv") != 0 && strcmp(format, "table") != 0)
    return wg_error_set(err, EINVAL, "format '%s' cannot be printed batch by batch", format);
  struct wg_cli_printer *p = calloc(1, sizeof(*p));
  if (p == NULL) return wg_error_set(err, ENOMEM, "out of memory");
  p->o = *o;
  p->o.format = format;
  p->out = f;
  p->table = strcmp(format, "table") == 0;
  p->text = (struct text_out){.out = f, .json = json, .ndjson = true};
  int rc = wg_cli_duck_open(&p->duck, err);
  if (rc != 0) {
    free(p);
    return rc;
  }
  *out = p;
  return 0;
}

int wg_cli_printer_batch(struct wg_cli_printer *p, const struct ArrowSchema *schema,
                         struct ArrowArray *batch, int64_t max_rows, int64_t *printed,
                         struct wg_error *err) {
  *printed = 0;
  struct one_batch *ob = calloc(1, sizeof(*ob));
  int rc = ob == NULL ? wg_error_set(err, ENOMEM, "out of memory")
                      : wg_schema_deep_copy(schema, &ob->schema, err);
  if (rc != 0) {
    free(ob);
    wg_array_release(batch);
    return rc;
  }
  wg_array_move(batch, &ob->batch);
  struct ArrowArrayStream s = {ob_get_schema, ob_get_next, ob_last_error, ob_release, ob};
  struct table t = {.o = &p->o, .out = p->out};
  p->cur = &t;
  p->limit = max_rows;
  p->printed = 0;
  struct wg_cli_rows_sink sink = {printer_begin, printer_row, p};
  int64_t rows = 0;
  enum wg_cli_cast cast = !p->table && p->text.json ? WG_CLI_CAST_JSON : WG_CLI_CAST_TEXT;
  rc = wg_cli_rows_read(p->duck.conn, &s, cast, &sink, &rows, err);
  if (rc == PRINTER_FULL) rc = 0;
  if (rc == 0 && p->table && p->printed > 0) table_print(&t);
  if (p->table) table_reset(&t);
  p->cur = NULL;
  *printed = p->printed;
  fflush(p->out);
  if (rc == 0 && ferror(p->out)) rc = wg_error_set(err, EIO, "writing the output failed");
  return rc;
}

void wg_cli_printer_destroy(struct wg_cli_printer *p) {
  if (p == NULL) return;
  if (p->text_begun) text_end(&p->text);
  fflush(p->out);
  wg_cli_duck_close(&p->duck);
  free(p);
}

/* ---------------------------------------------------------------------------------------------
 * Arrow IPC stream, batch by batch through our encoder */

static int write_arrow(struct ArrowArrayStream *s, const struct ArrowSchema *schema, FILE *f,
                       int64_t *rows, struct wg_error *err) {
  struct wg_ipc_encoder *enc = NULL;
  WG_RETURN_NOT_OK(wg_ipc_encoder_create(&enc, schema, NULL, err));
  int64_t max = wg_ipc_encoder_max_messages(enc);
  struct wg_ipc_encoded *msgs = calloc((size_t)max, sizeof(*msgs));
  struct wg_buf b;
  wg_buf_init(&b);
  int rc = msgs == NULL ? wg_error_set(err, ENOMEM, "out of memory") : 0;
  for (int64_t i = 0; msgs != NULL && i < max; i++)
    wg_ipc_encoded_init(&msgs[i]);
  if (rc == 0) rc = wg_ipc_encoder_schema(enc, &msgs[0], err);
  if (rc == 0) rc = wg_ipc_encoded_append_framed(&msgs[0], &b);
  while (rc == 0) {
    if (b.size > 0 && fwrite(b.data, 1, (size_t)b.size, f) != (size_t)b.size) {
      rc = wg_error_set(err, EIO, "writing the output: %s", strerror(errno));
      break;
    }
    b.size = 0;
    struct ArrowArray a;
    rc = s->get_next(s, &a);
    if (rc != 0) {
      const char *m = s->get_last_error(s);
      int st = wg_cli_stream_errno(s);
      rc = wg_error_set(err, st ? st : rc, "%s", m ? m : "reading the result failed");
      break;
    }
    if (a.release == NULL) {
      rc = wg_ipc_append_eos(&b);
      if (rc == 0 && fwrite(b.data, 1, (size_t)b.size, f) != (size_t)b.size)
        rc = wg_error_set(err, EIO, "writing the output: %s", strerror(errno));
      break;
    }
    int64_t n = 0;
    rc = wg_ipc_encoder_batch(enc, &a, msgs, &n, err);
    for (int64_t i = 0; rc == 0 && i < n; i++)
      rc = wg_ipc_encoded_append_framed(&msgs[i], &b);
    *rows += a.length;
    wg_array_release(&a);
  }
  for (int64_t i = 0; msgs != NULL && i < max; i++)
    wg_ipc_encoded_reset(&msgs[i]);
  free(msgs);
  wg_buf_reset(&b);
  wg_ipc_encoder_destroy(enc);
  return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Parquet through the client-side DuckDB */

static int write_parquet(duckdb_connection conn, struct ArrowArrayStream *s, const char *path,
                         int64_t *rows, struct wg_error *err) {
  struct wg_cli_view *v;
  WG_RETURN_NOT_OK(wg_cli_view_create(&v, conn, s, err));
  struct wg_buf sql;
  wg_buf_init(&sql);
  int rc = wg_cli_buf_str(&sql, "COPY (SELECT * FROM ");
  if (rc == 0) rc = wg_sql_append_ident(&sql, v->name);
  if (rc == 0) rc = wg_cli_buf_str(&sql, ") TO ");
  if (rc == 0) rc = wg_sql_append_literal(&sql, path);
  if (rc == 0) rc = wg_cli_buf_str(&sql, " (FORMAT parquet)");
  if (rc == 0) {
    duckdb_result r;
    if (duckdb_query(conn, wg_cli_buf_cstr(&sql), &r) != DuckDBSuccess)
      rc = wg_cli_view_error(v, wg_error_set(err, EIO, "%s", duckdb_result_error(&r)), err);
    duckdb_destroy_result(&r);
  } else {
    rc = wg_error_set(err, ENOMEM, "out of memory");
  }
  *rows = v->rows;
  wg_buf_reset(&sql);
  wg_cli_view_destroy(v);
  return rc;
}

/* Writes the result stream `s` (taken: released on every path) as wg_cli_query_write does. */
static int stream_write(struct ArrowArrayStream *sp, const struct wg_cli_output *o, FILE *out,
                        int64_t *rows, struct wg_error *err) {
  struct ArrowArrayStream s = *sp;
  sp->release = NULL;
  /* The schema first: a SQL error shows here, before any output file is touched. */
  struct ArrowSchema schema;
  int rc = s.get_schema(&s, &schema);
  if (rc != 0) {
    const char *m = s.get_last_error(&s);
    int st = wg_cli_stream_errno(&s);
    rc = wg_error_set(err, st ? st : rc, "%s", m ? m : "the query failed");
    wg_stream_release(&s);
    return rc;
  }
  const char *format = o->format ? o->format : "table";
  bool parquet = strcmp(format, "parquet") == 0;
  FILE *f = out;
  /* An output file is written under a temporary name and renamed when complete, so an error
   * half-way leaves neither a truncated file nor a clobbered old one. */
  char partial[4096] = "";
  if (o->path != NULL) snprintf(partial, sizeof(partial), "%s.partial", o->path);
  if (o->path != NULL && !parquet) {
    f = fopen(partial, strcmp(format, "arrow") == 0 ? "wb" : "w");
    if (f == NULL) {
      rc = wg_error_set(err, EIO, "cannot write %s: %s", partial, strerror(errno));
      wg_schema_release(&schema);
      wg_stream_release(&s);
      return rc;
    }
  }
  struct wg_cli_duck duck = {0};
  if (strcmp(format, "arrow") != 0) rc = wg_cli_duck_open(&duck, err);
  if (rc != 0) {
    wg_stream_release(&s);
  } else if (strcmp(format, "arrow") == 0) {
    rc = write_arrow(&s, &schema, f, rows, err);
    wg_stream_release(&s);
  } else if (parquet) {
    rc = write_parquet(duck.conn, &s, partial, rows, err);
  } else if (strcmp(format, "table") == 0) {
    struct table t = {.o = o, .out = f};
    struct wg_cli_rows_sink sink = {table_begin, table_row, &t};
    rc = wg_cli_rows_read(duck.conn, &s, WG_CLI_CAST_TEXT, &sink, rows, err);
    if (rc == 0) table_print(&t);
    table_reset(&t);
  } else {
    bool json = strcmp(format, "json") == 0 || strcmp(format, "ndjson") == 0;
    struct text_out t = {.out = f, .json = json, .ndjson = strcmp(format, "ndjson") == 0};
    struct wg_cli_rows_sink sink = {text_begin, text_row, &t};
    rc = wg_cli_rows_read(duck.conn, &s, json ? WG_CLI_CAST_JSON : WG_CLI_CAST_TEXT, &sink, rows,
                          err);
    if (rc == 0)
      text_end(&t);
    else {
      for (int64_t i = 0; i < t.n && t.names; i++)
        free(t.names[i]);
      free(t.names);
    }
  }
  wg_cli_duck_close(&duck);
  wg_schema_release(&schema);
  if (f != out) {
    if (fclose(f) != 0 && rc == 0)
      rc = wg_error_set(err, EIO, "writing %s: %s", o->path, strerror(errno));
  } else {
    fflush(f);
  }
  if (o->path != NULL) {
    if (rc == 0 && rename(partial, o->path) != 0)
      rc = wg_error_set(err, EIO, "cannot rename %s to %s: %s", partial, o->path, strerror(errno));
    if (rc != 0) unlink(partial);
  }
  return rc;
}

int wg_cli_query_write(struct wg_client *client, const char *sql, const struct wg_cli_output *o,
                       FILE *out, int64_t *rows, struct wg_error *err) {
  *rows = 0;
  struct ArrowArrayStream s;
  struct wg_status qs;
  wg_query(client, sql, &s, &qs);
  WG_RETURN_NOT_OK(wg_cli_status(&qs, err));
  return stream_write(&s, o, out, rows, err);
}

/* ---------------------------------------------------------------------------------------------
 * Flight SQL: the statement, or a metadata command (--meta), through GetFlightInfo + DoGet */

/* What --meta and its filters say. */
struct meta_args {
  const char *kind, *catalog, *db_schema, *table, *table_types, *fk_catalog, *fk_db_schema,
      *fk_table, *info, *data_type;
  bool include_schema;
};

static const struct {
  const char *name;
  enum wg_fsql_kind kind;
} meta_kinds[] = {
    {"catalogs", WG_FSQL_CATALOGS},
    {"schemas", WG_FSQL_DB_SCHEMAS},
    {"tables", WG_FSQL_TABLES},
    {"table-types", WG_FSQL_TABLE_TYPES},
    {"sql-info", WG_FSQL_SQL_INFO},
    {"primary-keys", WG_FSQL_PRIMARY_KEYS},
    {"exported-keys", WG_FSQL_EXPORTED_KEYS},
    {"imported-keys", WG_FSQL_IMPORTED_KEYS},
    {"cross-reference", WG_FSQL_CROSS_REFERENCE},
    {"type-info", WG_FSQL_XDBC_TYPE_INFO},
};

enum { MAX_LIST = 64 };

/* A comma-separated list into items (the text is cut in place). */
static int split_list(const struct wg_cli_command *cmd, const char *name, char *text,
                      const char **items, size_t *n) {
  *n = 0;
  for (char *save = NULL, *t = strtok_r(text, ",", &save); t != NULL;
       t = strtok_r(NULL, ",", &save)) {
    if (*n + 1 >= MAX_LIST)
      return wg_cli_usage_error(cmd, "%s: more than %d items", name, MAX_LIST - 1);
    items[(*n)++] = t;
  }
  items[*n] = NULL;
  return -1;
}

/* The command --meta asks for, into *c (lists into the caller's arrays). -1 to go on, else a
 * usage error's exit code. */
static int meta_command(const struct wg_cli_command *cmd, struct meta_args *m, char *types_text,
                        char *info_text, const char **types, uint32_t *ids,
                        struct wg_fsql_command *c) {
  size_t k = 0;
  while (k < sizeof(meta_kinds) / sizeof(meta_kinds[0]) && strcmp(meta_kinds[k].name, m->kind) != 0)
    k++;
  if (k == sizeof(meta_kinds) / sizeof(meta_kinds[0]))
    return wg_cli_usage_error(cmd, "unknown --meta '%s'", m->kind);
  *c = (struct wg_fsql_command){.kind = meta_kinds[k].kind, .catalog = m->catalog,
                                .db_schema = m->db_schema, .table = m->table,
                                .include_schema = m->include_schema, .fk_catalog = m->fk_catalog,
                                .fk_db_schema = m->fk_db_schema, .fk_table = m->fk_table};
  bool keys = c->kind == WG_FSQL_PRIMARY_KEYS || c->kind == WG_FSQL_EXPORTED_KEYS ||
              c->kind == WG_FSQL_IMPORTED_KEYS || c->kind == WG_FSQL_CROSS_REFERENCE;
  if (keys && m->table == NULL) return wg_cli_usage_error(cmd, "--meta %s needs a table", m->kind);
  if (c->kind == WG_FSQL_CROSS_REFERENCE && m->fk_table == NULL)
    return wg_cli_usage_error(cmd, "--meta cross-reference needs --fk-table");
  int rc;
  size_t n = 0;
  if (types_text != NULL) {
    if ((rc = split_list(cmd, "--table-type", types_text, types, &n)) >= 0) return rc;
    c->table_types = types;
  }
  if (info_text != NULL) {
    const char *items[MAX_LIST];
    if ((rc = split_list(cmd, "--info", info_text, items, &n)) >= 0) return rc;
    for (size_t j = 0; j < n; j++) {
      int64_t v;
      if ((rc = wg_cli_opt_int(cmd, "--info", items[j], 0, UINT32_MAX, &v)) >= 0) return rc;
      ids[j] = (uint32_t)v;
    }
    c->info = ids;
    c->n_info = n;
  }
  if (m->data_type != NULL) {
    int64_t dt;
    rc = wg_cli_opt_int(cmd, "--data-type", m->data_type, INT32_MIN, INT32_MAX, &dt);
    if (rc >= 0) return rc;
    c->has_data_type = true;
    c->data_type = (int32_t)dt;
  }
  return -1;
}

/* ---- Dense unions as text: DuckDB's Arrow scan does not read them (GetSqlInfo's value column),
 * so a result holding one is turned into text columns, batch by batch, before it is written. ---- */

static bool text_valid(const struct ArrowArray *a, int64_t i) {
  const uint8_t *bits = a->n_buffers > 0 ? a->buffers[0] : NULL;
  return a->null_count == 0 || bits == NULL || (bits[i >> 3] >> (i & 7)) & 1;
}

static int text_value(struct wg_buf *b, const struct ArrowSchema *s, const struct ArrowArray *a,
                      int64_t row, int depth);

/* Lists, maps, structs and dense unions, element by element. */
static int text_nested(struct wg_buf *b, const struct ArrowSchema *s, const struct ArrowArray *a,
                       int64_t i, int depth) {
  const char *f = s->format;
  int rc = 0;
  if (strcmp(f, "+l") == 0 || strcmp(f, "+m") == 0) {
    const int32_t *off = a->buffers[1];
    rc = wg_buf_append(b, "[", 1);
    for (int32_t j = off[i]; rc == 0 && j < off[i + 1]; j++) {
      if (j > off[i]) rc = wg_buf_append(b, ", ", 2);
      if (rc == 0) rc = text_value(b, s->children[0], a->children[0], j, depth + 1);
    }
    return rc == 0 ? wg_buf_append(b, "]", 1) : rc;
  }
  if (strcmp(f, "+s") == 0) {
    rc = wg_buf_append(b, "{", 1);
    for (int64_t k = 0; rc == 0 && k < s->n_children; k++) {
      if (k > 0) rc = wg_buf_append(b, ", ", 2);
      if (rc == 0) rc = text_value(b, s->children[k], a->children[k], i, depth + 1);
    }
    return rc == 0 ? wg_buf_append(b, "}", 1) : rc;
  }
  /* "+ud:ID,ID...": the type id names the child in the order the format lists the ids */
  int8_t id = ((const int8_t *)a->buffers[0])[i];
  int32_t off = ((const int32_t *)a->buffers[1])[i];
  int64_t child = -1, k = 0;
  for (const char *p = f + 4; *p != '\0' && child < 0; k++) {
    if (atoi(p) == id) child = k;
    while (*p != '\0' && *p != ',')
      p++;
    if (*p == ',') p++;
  }
  if (child < 0 || child >= s->n_children) return wg_buf_append(b, "?", 1);
  return text_value(b, s->children[child], a->children[child], off, depth + 1);
}

static int text_value(struct wg_buf *b, const struct ArrowSchema *s, const struct ArrowArray *a,
                      int64_t row, int depth) {
  const char *f = s->format;
  int64_t i = a->offset + row;
  char t[64];
  if (depth > 32) return wg_buf_append(b, "...", 3);
  if (strncmp(f, "+ud:", 4) == 0 || (f[0] == '+' && text_valid(a, i)))
    return text_nested(b, s, a, i, depth);
  if (!text_valid(a, i)) return wg_buf_append(b, "NULL", 4);
  const void *v = a->n_buffers > 1 ? a->buffers[1] : NULL;
  if (strcmp(f, "u") == 0) {
    const int32_t *off = v;
    return wg_buf_append(b, (const char *)a->buffers[2] + off[i], off[i + 1] - off[i]);
  }
  if (strcmp(f, "b") == 0)
    return wg_cli_buf_str(b, (((const uint8_t *)v)[i >> 3] >> (i & 7)) & 1 ? "true" : "false");
  switch (strlen(f) == 1 ? f[0] : '?') {
  case 'c': snprintf(t, sizeof(t), "%d", ((const int8_t *)v)[i]); break;
  case 'C': snprintf(t, sizeof(t), "%u", ((const uint8_t *)v)[i]); break;
  case 's': snprintf(t, sizeof(t), "%d", ((const int16_t *)v)[i]); break;
  case 'S': snprintf(t, sizeof(t), "%u", ((const uint16_t *)v)[i]); break;
  case 'i': snprintf(t, sizeof(t), "%d", ((const int32_t *)v)[i]); break;
  case 'I': snprintf(t, sizeof(t), "%u", ((const uint32_t *)v)[i]); break;
  case 'l': snprintf(t, sizeof(t), "%lld", (long long)((const int64_t *)v)[i]); break;
  case 'L': snprintf(t, sizeof(t), "%llu", (unsigned long long)((const uint64_t *)v)[i]); break;
  case 'g': snprintf(t, sizeof(t), "%.17g", ((const double *)v)[i]); break;
  default: snprintf(t, sizeof(t), "(%s)", f); break;
  }
  return wg_cli_buf_str(b, t);
}

struct union_text {
  struct ArrowArrayStream in;
  struct ArrowSchema schema; /* in's */
  struct wg_error err;
  int status;
};

static bool has_dense_union(const struct ArrowSchema *s) {
  for (int64_t k = 0; k < s->n_children; k++)
    if (strncmp(s->children[k]->format, "+ud", 3) == 0) return true;
  return false;
}

static int ut_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  struct union_text *u = s->private_data;
  const struct ArrowSchema *in = &u->schema;
  int rc = wg_field_init(out, "+s", "", false, in->n_children, &u->err);
  for (int64_t k = 0; rc == 0 && k < in->n_children; k++)
    rc = wg_field_init(out->children[k], "u", in->children[k]->name, true, 0, &u->err);
  if (rc != 0 && out->release != NULL) wg_schema_release(out);
  return rc;
}

/* One column of batch as text into *out. */
static int ut_column(struct union_text *u, const struct ArrowArray *batch, int64_t k,
                     struct ArrowArray *out) {
  struct wg_col col;
  struct wg_buf cell;
  wg_col_init(&col, WG_COL_VAR, 0);
  wg_buf_init(&cell);
  const struct ArrowSchema *cs = u->schema.children[k];
  const struct ArrowArray *ca = batch->children[k];
  int rc = 0;
  for (int64_t r = 0; rc == 0 && r < batch->length; r++) {
    int64_t i = batch->offset + r;
    cell.size = 0;
    if (strncmp(cs->format, "+ud", 3) != 0 && !text_valid(ca, ca->offset + i)) {
      rc = wg_col_null(&col);
      continue;
    }
    rc = text_value(&cell, cs, ca, i, 0);
    if (rc == 0) rc = wg_col_bytes(&col, cell.data, cell.size);
  }
  wg_buf_reset(&cell);
  if (rc == 0) rc = wg_col_finish(&col, NULL, 0, out, &u->err);
  wg_col_reset(&col);
  return rc;
}

static int ut_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  struct union_text *u = s->private_data;
  out->release = NULL;
  if (u->status != 0) return u->status;
  struct ArrowArray batch;
  int rc = u->in.get_next(&u->in, &batch);
  if (rc != 0 || batch.release == NULL) {
    const char *m = rc != 0 ? u->in.get_last_error(&u->in) : NULL;
    if (rc != 0) wg_error_set(&u->err, rc, "%s", m ? m : "the result stream failed");
    return u->status = rc;
  }
  int64_t n = u->schema.n_children;
  struct ArrowArray *cols = calloc((size_t)n + 1, sizeof(*cols));
  rc = cols == NULL ? ENOMEM : 0;
  for (int64_t k = 0; rc == 0 && k < n; k++)
    rc = ut_column(u, &batch, k, &cols[k]);
  struct wg_col top;
  wg_col_init(&top, WG_COL_STRUCT, 0);
  for (int64_t r = 0; rc == 0 && r < batch.length; r++)
    rc = wg_col_struct_row(&top);
  if (rc == 0) rc = wg_col_finish(&top, cols, n, out, &u->err);
  wg_col_reset(&top);
  for (int64_t k = 0; cols != NULL && k < n; k++)
    wg_array_release(&cols[k]);
  free(cols);
  wg_array_release(&batch);
  if (rc != 0 && u->err.message[0] == '\0') wg_error_set(&u->err, rc, "out of memory");
  return u->status = rc;
}

static const char *ut_last_error(struct ArrowArrayStream *s) {
  struct union_text *u = s->private_data;
  return u->status != 0 ? u->err.message : NULL;
}

static void ut_release(struct ArrowArrayStream *s) {
  struct union_text *u = s->private_data;
  wg_stream_release(&u->in);
  wg_schema_release(&u->schema);
  free(u);
  s->release = NULL;
}

/* *s unchanged unless its schema has a dense union column; then *s becomes a stream of the same
 * rows as text (taking over the original). A failed schema is left for the writer to report. */
static int union_as_text(struct ArrowArrayStream *s, struct wg_error *err) {
  struct ArrowSchema schema;
  if (s->get_schema(s, &schema) != 0) return 0;
  if (!has_dense_union(&schema)) {
    wg_schema_release(&schema);
    return 0;
  }
  struct union_text *u = calloc(1, sizeof(*u));
  if (u == NULL) {
    wg_schema_release(&schema);
    return wg_error_set(err, ENOMEM, "out of memory");
  }
  u->in = *s;
  u->schema = schema;
  *s = (struct ArrowArrayStream){ut_get_schema, ut_get_next, ut_last_error, ut_release, u};
  return 0;
}

/* Runs the command through Flight SQL and writes its result. */
static int fsql_write(struct wg_client *client, const struct wg_fsql_command *c,
                      const struct wg_cli_output *o, FILE *out, int64_t *rows,
                      struct wg_error *err) {
  *rows = 0;
  struct ArrowArrayStream s;
  struct wg_status st;
  wg_fsql_run(client, c, &s, &st);
  WG_RETURN_NOT_OK(wg_cli_status(&st, err));
  int rc = union_as_text(&s, err);
  if (rc != 0) {
    wg_stream_release(&s);
    return rc;
  }
  return stream_write(&s, o, out, rows, err);
}

/* ---------------------------------------------------------------------------------------------
 * The command */

static void usage(FILE *f) {
  fprintf(f,
          "usage: wigeon query [options] \"SQL\"\n"
          "       wigeon query [options] --meta KIND [TABLE]\n"
          "\n"
          "Runs SQL on the server and prints the result. SQL '-' reads the statement from stdin.\n"
          "\n"
          "options:\n"
          "  --server URI          grpc://HOST:PORT (default: $WIGEON_SERVER, else %s)\n"
          WG_CLI_TLS_HELP
          "  --flight-sql          run it through Flight SQL (CommandStatementQuery:\n"
          "                        GetFlightInfo, then DoGet of its endpoints), not plain DoGet\n"
          "  --meta KIND           a Flight SQL metadata command instead of SQL (implies\n"
          "                        --flight-sql): catalogs, schemas, tables, table-types,\n"
          "                        sql-info, primary-keys, exported-keys, imported-keys,\n"
          "                        cross-reference, type-info. TABLE, if given, is --table\n"
          "  --catalog NAME        --meta: the catalog (schemas, tables: a filter)\n"
          "  --db-schema NAME      --meta: the schema (schemas, tables: a LIKE pattern)\n"
          "  --table NAME          --meta: the table (tables: a LIKE pattern; the *-keys and\n"
          "                        cross-reference: required; cross-reference: the primary key's)\n"
          "  --table-type T,...    --meta tables: only these types (e.g. 'BASE TABLE,VIEW')\n"
          "  --include-schema      --meta tables: add each table's Arrow schema (table_schema)\n"
          "  --fk-table NAME       --meta cross-reference: the foreign key's table (required)\n"
          "  --fk-db-schema NAME   --meta cross-reference: the foreign key's schema\n"
          "  --fk-catalog NAME     --meta cross-reference: the foreign key's catalog\n"
          "  --info ID,...         --meta sql-info: these SqlInfo ids (default: all)\n"
          "  --data-type N         --meta type-info: only this XDBC data type (e.g. -5 BIGINT)\n"
          "  -f, --format FORMAT   table (default), csv, json (an array), ndjson (one object a\n"
          "                        line), arrow (IPC stream), parquet (needs -o)\n"
          "  -o, --output FILE     write to FILE instead of stdout\n"
          "  --max-rows N          table: rows shown; a bigger result shows the first and last\n"
          "                        N/2 with the middle elided (default: 40)\n"
          "  --max-width N         table: characters per value before it is cut (default: 40)\n"
          "  --ascii               table: +-| instead of box drawing characters\n"
          "  -h, --help            this text\n"
          "\n"
          "On a terminal, the row count and time go to stderr at the end.\n"
          "exit codes: 0 ok, 1 usage error, 2 error from the server, 3 cannot connect\n",
          WG_CLI_DEFAULT_SERVER);
}

/* Reads all of stdin into a NUL-terminated string (the SQL statement). */
static char *read_stdin(void) {
  struct wg_buf b;
  wg_buf_init(&b);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
    if (wg_buf_append(&b, chunk, (int64_t)n) != 0) break;
  wg_cli_buf_cstr(&b);
  return (char *)wg_buf_detach(&b);
}

int wg_cli_output_limits(const struct wg_cli_command *cmd, const char *max_rows,
                         const char *max_width, struct wg_cli_output *o) {
  int rc = wg_cli_opt_int(cmd, "--max-rows", max_rows, 2, 1000000, &o->max_rows);
  if (rc < 0) rc = wg_cli_opt_int(cmd, "--max-width", max_width, 4, 100000, &o->max_width);
  return rc;
}

/* The SQL (or --meta's command) and the output options, parsed; -1 to go on. */
struct query_args {
  const char *server, *format, *output, *max_rows, *max_width;
  bool ascii, flight_sql;
  struct meta_args meta;
  const char *pos[1];
  int n_pos;
};

static int query_parse(const struct wg_cli_command *cmd, int argc, char **argv,
                       struct query_args *a, struct wg_cli_output *o) {
  struct meta_args *m = &a->meta;
  const struct wg_cli_opt opts[] = {{"--server", NULL, &a->server, NULL},
                                    {"--format", "-f", &a->format, NULL},
                                    {"--output", "-o", &a->output, NULL},
                                    {"--flight-sql", NULL, NULL, &a->flight_sql},
                                    {"--meta", NULL, &m->kind, NULL},
                                    {"--catalog", NULL, &m->catalog, NULL},
                                    {"--db-schema", NULL, &m->db_schema, NULL},
                                    {"--table", NULL, &m->table, NULL},
                                    {"--table-type", NULL, &m->table_types, NULL},
                                    {"--include-schema", NULL, NULL, &m->include_schema},
                                    {"--fk-catalog", NULL, &m->fk_catalog, NULL},
                                    {"--fk-db-schema", NULL, &m->fk_db_schema, NULL},
                                    {"--fk-table", NULL, &m->fk_table, NULL},
                                    {"--info", NULL, &m->info, NULL},
                                    {"--data-type", NULL, &m->data_type, NULL},
                                    WG_CLI_TABLE_OPTS(&a->max_rows, &a->max_width, &a->ascii)};
  int rc = wg_cli_parse(cmd, argc, argv, opts, a->pos, 1, &a->n_pos);
  if (rc >= 0) return rc;
  if (m->kind == NULL && a->n_pos != 1) return wg_cli_usage_error(cmd, "missing the SQL to run");
  if (m->kind != NULL && a->n_pos == 1) {
    if (m->table != NULL) return wg_cli_usage_error(cmd, "TABLE and --table: give one");
    m->table = a->pos[0];
  }
  if (m->kind != NULL) a->flight_sql = true;
  const char *format = a->format;
  if (!wg_cli_format_known(format)) return wg_cli_usage_error(cmd, "unknown format '%s'", format);
  if (strcmp(format, "parquet") == 0 && a->output == NULL)
    return wg_cli_usage_error(cmd, "--format parquet needs -o FILE");
  if (strcmp(format, "arrow") == 0 && a->output == NULL && isatty(STDOUT_FILENO))
    return wg_cli_usage_error(cmd, "--format arrow writes binary: use -o FILE or a pipe");
  *o = (struct wg_cli_output){.format = format, .path = a->output, .ascii = a->ascii};
  return wg_cli_output_limits(cmd, a->max_rows, a->max_width, o);
}

int wg_cli_query(int argc, char **argv) {
  static const struct wg_cli_command cmd = {"query", usage};
  struct query_args a = {.format = "table", .max_rows = "40", .max_width = "40"};
  struct wg_cli_output o;
  int rc = query_parse(&cmd, argc, argv, &a, &o);
  if (rc >= 0) return rc;
  struct wg_fsql_command fc = {.kind = WG_FSQL_STATEMENT};
  char *types_text = a.meta.table_types ? strdup(a.meta.table_types) : NULL;
  char *info_text = a.meta.info ? strdup(a.meta.info) : NULL;
  const char *types[MAX_LIST];
  uint32_t ids[MAX_LIST];
  char *sql = NULL;
  if (a.meta.kind != NULL)
    rc = meta_command(&cmd, &a.meta, types_text, info_text, types, ids, &fc);
  else if ((sql = strcmp(a.pos[0], "-") == 0 ? read_stdin() : strdup(a.pos[0])) == NULL)
    rc = WG_EXIT_USAGE;
  fc.sql = sql;
  struct wg_cli_conn cx;
  if (rc < 0 && (rc = wg_cli_conn_open(&cx, "query", a.server)) == 0) {
    double t0 = wg_cli_now();
    int64_t rows = 0;
    struct wg_error err = {""};
    int status = a.flight_sql ? fsql_write(cx.client, &fc, &o, stdout, &rows, &err)
                              : wg_cli_query_write(cx.client, sql, &o, stdout, &rows, &err);
    rc = status != 0 ? wg_cli_conn_fail(&cx, status, err.message) : 0;
    if (status == 0 && isatty(STDERR_FILENO)) {
      char t[32];
      fprintf(stderr, "%s row%s in %.3f s\n", wg_cli_commas(rows, t, sizeof(t)),
              rows == 1 ? "" : "s", wg_cli_now() - t0);
    }
    wg_cli_conn_close(&cx);
  }
  free(types_text);
  free(info_text);
  free(sql);
  return rc;
}
