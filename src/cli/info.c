/* wigeon: the commands that describe the server: `tables` (ListFlights), `schema TABLE`
 * (GetFlightInfo for the Arrow types, information_schema for the SQL types), `actions`
 * (ListActions) and `stats` (the stats action, its JSON pretty-printed). All through
 * include/wigeon.h. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char server_help[] =
    "  --server URI      grpc://HOST:PORT (default: $WIGEON_SERVER, else " WG_CLI_DEFAULT_SERVER
    ")\n"
    WG_CLI_TLS_HELP
    "  -h, --help        this text\n";

/* Parses the options that are only --server; returns -1 to go on, else an exit code. */
static int parse_server_only(const struct wg_cli_command *cmd, int argc, char **argv,
                             const char **server, const char **pos, int max_pos, int *n_pos,
                             const char **filter, const char **schema_name) {
  const struct wg_cli_opt opts[] = {{"--server", NULL, server, NULL},
                                    {filter ? "--filter" : "", NULL, filter, NULL},
                                    {schema_name ? "--schema" : "", NULL, schema_name, NULL},
                                    {NULL, NULL, NULL, NULL}};
  return wg_cli_parse(cmd, argc, argv, opts, pos, max_pos, n_pos);
}

/* ---- tables ---- */

static void tables_usage(FILE *f) {
  fprintf(f,
          "usage: wigeon tables [options]\n"
          "\n"
          "Lists the tables (ListFlights): schema, name, rows and columns.\n"
          "\n"
          "options:\n"
          "  --filter TEXT     only tables whose name contains TEXT\n"
          "%s",
          server_help);
}

int wg_cli_tables(int argc, char **argv) {
  static const struct wg_cli_command cmd = {"tables", tables_usage};
  const char *server = NULL, *filter = NULL;
  int n_pos = 0;
  int rc = parse_server_only(&cmd, argc, argv, &server, NULL, 0, &n_pos, &filter, NULL);
  if (rc >= 0) return rc;
  struct wg_cli_conn cx;
  if ((rc = wg_cli_conn_open(&cx, cmd.name, server)) != 0) return rc;
  struct wg_table_info *t = NULL;
  int64_t n = 0;
  struct wg_status st;
  if (wg_list_tables(cx.client, filter, &t, &n, &st) != 0) {
    rc = wg_cli_conn_fail(&cx, st.sys_errno, st.message);
    wg_cli_conn_close(&cx);
    return rc;
  }
  int ws = 6, wt = 5, wr = 4;
  char num[32];
  for (int64_t i = 0; i < n; i++) {
    int a = (int)strlen(t[i].schema_name), b = (int)strlen(t[i].table_name);
    int c = (int)strlen(wg_cli_commas(t[i].rows, num, sizeof(num)));
    ws = a > ws ? a : ws;
    wt = b > wt ? b : wt;
    wr = c > wr ? c : wr;
  }
  if (n == 0) {
    printf("no tables\n");
  } else {
    printf("%-*s  %-*s  %*s  %s\n", ws, "schema", wt, "table", wr, "rows", "columns");
    for (int64_t i = 0; i < n; i++) {
      printf("%-*s  %-*s  %*s  ", ws, t[i].schema_name, wt, t[i].table_name, wr,
             t[i].rows < 0 ? "?" : wg_cli_commas(t[i].rows, num, sizeof(num)));
      for (int64_t c = 0; c < t[i].schema.n_children; c++)
        printf("%s%s", c ? ", " : "", t[i].schema.children[c]->name);
      printf("\n");
    }
  }
  wg_table_info_free(t, n);
  wg_cli_conn_close(&cx);
  return 0;
}

/* ---- schema ---- */

static void schema_usage(FILE *f) {
  fprintf(f,
          "usage: wigeon schema [options] TABLE\n"
          "\n"
          "Shows a table's columns: name, Arrow type (as the server sends it), SQL type and\n"
          "nullability (from the server's information_schema). TABLE may be SCHEMA.TABLE.\n"
          "\n"
          "options:\n"
          "  --schema NAME     the table's schema (default: main)\n"
          "%s",
          server_help);
}

struct sql_types {
  int64_t n, cap;
  char **names, **types, **nullable;
};

static int types_begin(void *ctx, int64_t n, char **names, char **types) {
  return n >= 3 ? 0 : EPROTO;
}

static char *cell_dup(const struct wg_cli_cell *c) {
  char *s = malloc(c->len + 1);
  if (s == NULL) return NULL;
  memcpy(s, c->data, c->len);
  s[c->len] = '\0';
  return s;
}

static int types_row(void *ctx, const struct wg_cli_cell *cells) {
  struct sql_types *t = ctx;
  if (t->n == t->cap) {
    int64_t cap = t->cap ? t->cap * 2 : 16;
    char **a = realloc(t->names, (size_t)cap * sizeof(char *));
    if (a == NULL) return ENOMEM;
    t->names = a;
    char **b = realloc(t->types, (size_t)cap * sizeof(char *));
    if (b == NULL) return ENOMEM;
    t->types = b;
    char **c = realloc(t->nullable, (size_t)cap * sizeof(char *));
    if (c == NULL) return ENOMEM;
    t->nullable = c;
    t->cap = cap;
  }
  t->names[t->n] = cell_dup(&cells[0]);
  t->types[t->n] = cell_dup(&cells[1]);
  t->nullable[t->n] = cell_dup(&cells[2]);
  t->n++;
  return 0;
}

static void types_reset(struct sql_types *t) {
  for (int64_t i = 0; i < t->n; i++) {
    free(t->names[i]);
    free(t->types[i]);
    free(t->nullable[i]);
  }
  free(t->names);
  free(t->types);
  free(t->nullable);
}

/* The SQL types from the server's information_schema; a server without one leaves them empty. */
static void fetch_sql_types(struct wg_client *client, const char *schema_name, const char *table,
                            struct sql_types *out) {
  struct wg_buf sql;
  wg_buf_init(&sql);
  wg_cli_buf_str(&sql, "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
                       " WHERE table_schema = ");
  wg_sql_append_literal(&sql, schema_name ? schema_name : "main");
  wg_cli_buf_str(&sql, " AND table_name = ");
  wg_sql_append_literal(&sql, table);
  wg_cli_buf_str(&sql, " ORDER BY ordinal_position");
  struct ArrowArrayStream s;
  struct wg_error err;
  struct wg_cli_duck duck;
  if (wg_query(client, wg_cli_buf_cstr(&sql), &s, NULL) == 0) {
    if (wg_cli_duck_open(&duck, &err) == 0) {
      struct wg_cli_rows_sink sink = {types_begin, types_row, out};
      int64_t rows;
      wg_cli_rows_read(duck.conn, &s, WG_CLI_CAST_TEXT, &sink, &rows, &err);
      wg_cli_duck_close(&duck);
    } else {
      s.release(&s);
    }
  }
  wg_buf_reset(&sql);
}

int wg_cli_schema(int argc, char **argv) {
  static const struct wg_cli_command cmd = {"schema", schema_usage};
  const char *server = NULL, *schema_name = NULL, *pos[1];
  int n_pos = 0;
  int rc = parse_server_only(&cmd, argc, argv, &server, pos, 1, &n_pos, NULL, &schema_name);
  if (rc >= 0) return rc;
  if (n_pos != 1) return wg_cli_usage_error(&cmd, "missing the TABLE");
  char qualified[512];
  snprintf(qualified, sizeof(qualified), "%s", pos[0]);
  const char *table = qualified;
  char *dot = strchr(qualified, '.');
  if (schema_name == NULL && dot != NULL) {
    *dot = '\0';
    schema_name = qualified;
    table = dot + 1;
  }
  struct wg_cli_conn cx;
  if ((rc = wg_cli_conn_open(&cx, cmd.name, server)) != 0) return rc;
  struct wg_flight_info info;
  struct wg_status fs;
  if (wg_flight_info(cx.client, schema_name, table, NULL, &info, &fs) != 0) {
    rc = wg_cli_conn_fail(&cx, fs.sys_errno, fs.message);
    wg_cli_conn_close(&cx);
    return rc;
  }
  struct sql_types st = {0};
  fetch_sql_types(cx.client, schema_name, table, &st);
  char num[32];
  printf("%s.%s: %s rows\n", schema_name ? schema_name : "main", table,
         info.total_records < 0 ? "?" : wg_cli_commas(info.total_records, num, sizeof(num)));
  int64_t n = info.schema.n_children;
  char(*arrow)[128] = calloc((size_t)n + 1, sizeof(*arrow));
  int wn = 6, wa = 10, wsql = 8;
  for (int64_t i = 0; arrow != NULL && i < n; i++) {
    const struct ArrowSchema *c = info.schema.children[i];
    wg_cli_arrow_type_name(c, arrow[i], sizeof(arrow[i]));
    int a = (int)strlen(c->name ? c->name : ""), b = (int)strlen(arrow[i]);
    int s = i < st.n && st.types[i] ? (int)strlen(st.types[i]) : 1;
    wn = a > wn ? a : wn;
    wa = b > wa ? b : wa;
    wsql = s > wsql ? s : wsql;
  }
  printf("%-*s  %-*s  %-*s  %s\n", wn, "column", wa, "arrow type", wsql, "sql type", "nullable");
  for (int64_t i = 0; arrow != NULL && i < n; i++) {
    const struct ArrowSchema *c = info.schema.children[i];
    /* information_schema rows are matched by name: the Arrow order is the table's order. */
    const char *sql_type = "?", *nullable = (c->flags & ARROW_FLAG_NULLABLE) ? "YES" : "NO";
    for (int64_t k = 0; k < st.n; k++)
      if (st.names[k] && c->name && strcmp(st.names[k], c->name) == 0) {
        sql_type = st.types[k] ? st.types[k] : "?";
        nullable = st.nullable[k] ? st.nullable[k] : nullable;
      }
    printf("%-*s  %-*s  %-*s  %s\n", wn, c->name ? c->name : "", wa, arrow[i], wsql, sql_type,
           strcmp(nullable, "YES") == 0 ? "yes" : "no");
  }
  free(arrow);
  types_reset(&st);
  wg_flight_info_reset(&info);
  wg_cli_conn_close(&cx);
  return 0;
}

/* ---- actions ---- */

static void actions_usage(FILE *f) {
  fprintf(f,
          "usage: wigeon actions [options]\n"
          "\n"
          "Lists the actions the server offers (ListActions) with their descriptions.\n"
          "\n"
          "options:\n"
          "%s",
          server_help);
}

int wg_cli_actions(int argc, char **argv) {
  static const struct wg_cli_command cmd = {"actions", actions_usage};
  const char *server = NULL;
  int n_pos = 0;
  int rc = parse_server_only(&cmd, argc, argv, &server, NULL, 0, &n_pos, NULL, NULL);
  if (rc >= 0) return rc;
  struct wg_cli_conn cx;
  if ((rc = wg_cli_conn_open(&cx, cmd.name, server)) != 0) return rc;
  struct wg_action_type *t = NULL;
  int64_t n = 0;
  struct wg_status st;
  if (wg_list_actions(cx.client, &t, &n, &st) != 0) {
    rc = wg_cli_conn_fail(&cx, st.sys_errno, st.message);
  } else {
    int w = 4;
    for (int64_t i = 0; i < n; i++)
      w = (int)strlen(t[i].type) > w ? (int)strlen(t[i].type) : w;
    for (int64_t i = 0; i < n; i++)
      printf("%-*s  %s\n", w, t[i].type, t[i].description);
  }
  wg_action_types_free(t, n);
  wg_cli_conn_close(&cx);
  return rc;
}

/* ---- stats ---- */

static void stats_usage(FILE *f) {
  fprintf(
      f,
      "usage: wigeon stats [options]\n"
      "\n"
      "Shows the server's counters since it started (the stats action): calls, errors,\n"
      "active calls, gets, puts, rows and bytes in and out.\n"
      "\n"
      "options:\n"
      "  --json            print the action's JSON as it came\n"
      "  --server URI      grpc://HOST:PORT (default: $WIGEON_SERVER, else " WG_CLI_DEFAULT_SERVER
      ")\n"
      WG_CLI_TLS_HELP
      "  -h, --help        this text\n");
}

/* Prints a flat JSON object of scalars as aligned "key  value" lines, integers with thousands
 * separators; anything else is printed as it came. */
static void print_stats(const char *json) {
  const char *p = json;
  while (isspace((unsigned char)*p))
    p++;
  char keys[64][64], values[64][64];
  int n = 0, w = 0;
  bool flat = *p == '{';
  if (flat) p++;
  while (flat && n < 64) {
    while (isspace((unsigned char)*p) || *p == ',')
      p++;
    if (*p == '}') break;
    if (*p != '"') {
      flat = false;
      break;
    }
    const char *k = ++p;
    while (*p && *p != '"')
      p++;
    if (*p != '"' || p - k >= 64) {
      flat = false;
      break;
    }
    snprintf(keys[n], sizeof(keys[n]), "%.*s", (int)(p - k), k);
    p++;
    while (isspace((unsigned char)*p) || *p == ':')
      p++;
    const char *v = p;
    while (*p && *p != ',' && *p != '}' && *p != '{' && *p != '[')
      p++;
    if (*p == '{' || *p == '[' || *p == '\0' || p - v >= 64) {
      flat = false;
      break;
    }
    int len = (int)(p - v);
    while (len > 0 && isspace((unsigned char)v[len - 1]))
      len--;
    char raw[64];
    snprintf(raw, sizeof(raw), "%.*s", len, v);
    int64_t num;
    if (wg_cli_parse_int(raw, &num) == 0)
      wg_cli_commas(num, values[n], sizeof(values[n]));
    else
      snprintf(values[n], sizeof(values[n]), "%s", raw);
    int kw = (int)strlen(keys[n]);
    w = kw > w ? kw : w;
    n++;
  }
  if (!flat) {
    printf("%s\n", json);
    return;
  }
  int vw = 0;
  for (int i = 0; i < n; i++)
    vw = (int)strlen(values[i]) > vw ? (int)strlen(values[i]) : vw;
  for (int i = 0; i < n; i++)
    printf("%-*s  %*s\n", w, keys[i], vw, values[i]);
}

int wg_cli_stats(int argc, char **argv) {
  static const struct wg_cli_command cmd = {"stats", stats_usage};
  const char *server = NULL;
  bool raw = false;
  const struct wg_cli_opt opts[] = {
      {"--server", NULL, &server, NULL}, {"--json", NULL, NULL, &raw}, {NULL, NULL, NULL, NULL}};
  int n_pos = 0;
  int rc = wg_cli_parse(&cmd, argc, argv, opts, NULL, 0, &n_pos);
  if (rc >= 0) return rc;
  struct wg_cli_conn cx;
  if ((rc = wg_cli_conn_open(&cx, cmd.name, server)) != 0) return rc;
  struct wg_action_result result;
  struct wg_status st;
  if (wg_action(cx.client, "stats", NULL, 0, &result, &st) != 0) {
    rc = wg_cli_conn_fail(&cx, st.sys_errno, st.message);
  } else {
    /* the bodies as one text, as the server sends the stats in one */
    struct wg_buf text;
    wg_buf_init(&text);
    for (int64_t i = 0; i < result.n; i++)
      wg_buf_append(&text, result.bodies[i].data, (int64_t)result.bodies[i].size);
    if (raw)
      printf("%s\n", wg_cli_buf_cstr(&text));
    else
      print_stats(wg_cli_buf_cstr(&text));
    wg_buf_reset(&text);
  }
  wg_action_result_reset(&result);
  wg_cli_conn_close(&cx);
  return rc;
}
