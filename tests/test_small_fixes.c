/* wigeon: smaller behaviours end to end against a real in-process server on 127.0.0.1 (real gRPC,
 * real DuckDB): DoGet batches bounded by bytes as well as rows, Arrow null-typed columns refused
 * on put with a clear message, ROLLBACK without a transaction as FAILED_PRECONDITION, parse errors
 * that show their LINE context once, and ListFlights over thousands of tables from a handful of
 * catalog statements with exact row counts. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arrow/array.h"
#include "common/buf.h"
#include "rpc/rpc.h"
#include "server/internal.h"
#include "support/server_fixture.h"
#include "test.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs several statements at once on one of the server's own DuckDB connections (setup only). */
static int engine_exec(struct wg_fx_server *fx, const char *sql, struct wg_error *err) {
  struct wg_engine_conn *c;
  WG_RETURN_NOT_OK(wg_engine_acquire(fx->server->engine, &c, err));
  duckdb_result r;
  memset(&r, 0, sizeof(r));
  int rc = 0;
  if (duckdb_query(wg_engine_conn_duckdb(c), sql, &r) != DuckDBSuccess)
    rc = wg_error_set(err, EIO, "%s", duckdb_result_error(&r));
  duckdb_destroy_result(&r);
  wg_engine_release(fx->server->engine, c);
  return rc;
}

/* ---------------------------------------------------------------------------------------------
 * ListFlights */

static void list_flights_uses_one_catalog_query(void) {
  enum { N = 2000 };
  struct wg_fx_server fx;
  struct wg_server_options o = {.db_path = ":memory:", .threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_error err = {""};
  struct wg_buf sql;
  wg_buf_init(&sql);
  /* Table i has i % 7 rows, and i % 3 columns beyond the id; every 10th loses a row to a DELETE
   * (which duckdb_tables().estimated_size still counts); a few live in another schema. */
  ASSERT_EQ(wg_buf_append(&sql, "CREATE SCHEMA other;", 20), 0);
  for (int i = 0; i < N; i++) {
    char b[512];
    const char *schema = i % 500 == 7 ? "other" : "main";
    int n = snprintf(b, sizeof(b), "CREATE TABLE %s.t%04d (id BIGINT%s%s);", schema, i,
                     i % 3 >= 1 ? ", name VARCHAR" : "", i % 3 >= 2 ? ", v DECIMAL(18,3)[]" : "");
    ASSERT_EQ(wg_buf_append(&sql, b, n), 0);
    if (i % 7 > 0) {
      n = snprintf(b, sizeof(b), "INSERT INTO %s.t%04d (id) SELECT range FROM range(%d);", schema,
                   i, i % 7);
      ASSERT_EQ(wg_buf_append(&sql, b, n), 0);
    }
    if (i % 10 == 0 && i % 7 > 0) {
      n = snprintf(b, sizeof(b), "DELETE FROM %s.t%04d WHERE id = 0;", schema, i);
      ASSERT_EQ(wg_buf_append(&sql, b, n), 0);
    }
  }
  ASSERT_EQ(wg_buf_append(&sql, "", 1), 0);
  ASSERT_OK(engine_exec(&fx, (const char *)sql.data, &err), &err);
  wg_buf_reset(&sql);

  struct wg_client *c;
  ASSERT_OK(wg_client_connect(&c, fx.uri, &err), &err);
  struct wg_client_table *t = NULL;
  int64_t n = 0;
  double t0 = now_s();
  ASSERT_OK(wg_client_list_tables(c, NULL, &t, &n, &err), &err);
  double elapsed = now_s() - t0;
  printf("list_flights_uses_one_catalog_query: ListFlights over %d tables: %.3f s\n", N, elapsed);
  ASSERT_EQ(n, N);
  int other = 0;
  for (int64_t k = 0; k < n; k++) {
    int i = atoi(t[k].table_name + 1);
    int64_t want = i % 7 - (i % 10 == 0 && i % 7 > 0 ? 1 : 0);
    if (t[k].rows != want) printf("  %s.%s: %lld rows\n", t[k].schema_name, t[k].table_name,
                                  (long long)t[k].rows);
    ASSERT_EQ(t[k].rows, want);
    ASSERT_EQ(t[k].schema.n_children, 1 + i % 3);
    ASSERT_STREQ(t[k].schema.children[0]->name, "id");
    ASSERT_STREQ(t[k].schema.children[0]->format, "l");
    if (i % 3 >= 1) ASSERT_STREQ(t[k].schema.children[1]->format, "u");
    if (i % 3 >= 2) {
      ASSERT_STREQ(t[k].schema.children[2]->format, "+l");
      ASSERT_STREQ(t[k].schema.children[2]->children[0]->format, "d:18,3");
    }
    ASSERT_STREQ(t[k].schema_name, i % 500 == 7 ? "other" : "main");
    other += strcmp(t[k].schema_name, "other") == 0;
  }
  ASSERT_EQ(other, 4);
  wg_client_tables_free(t, n);

  /* A filter still applies, and the answer is the same as GetFlightInfo's for each table. */
  ASSERT_OK(wg_client_list_tables(c, "t199", &t, &n, &err), &err);
  ASSERT_EQ(n, 10); /* t1990 .. t1999 */
  for (int64_t k = 0; k < n; k++) {
    struct wg_client_info info;
    ASSERT_OK(wg_client_flight_info(c, t[k].schema_name, t[k].table_name, NULL, &info, &err),
              &err);
    ASSERT_EQ(info.total_records, t[k].rows);
    ASSERT_EQ(info.schema.n_children, t[k].schema.n_children);
    wg_client_info_reset(&info);
  }
  wg_client_tables_free(t, n);
  wg_client_close(c);
  wg_fx_server_stop(&fx);
}

/* The schemas ListFlights builds from type names are the ones GetFlightInfo gets from the table
 * itself, for every type DuckDB has, user types and quoted names included. */
static void list_flights_schemas_match_flight_info(void) {
  struct wg_fx_server fx;
  struct wg_server_options o = {.db_path = ":memory:", .threads = 2};
  ASSERT_EQ(wg_fx_server_start(&fx, &o), 0);
  struct wg_error err = {""};
  ASSERT_OK(engine_exec(&fx,
                        "CREATE TABLE all_types AS SELECT * FROM test_all_types();"
                        "CREATE SCHEMA s2; CREATE TYPE s2.mood AS ENUM ('a', 'b''c');"
                        "CREATE TABLE s2.odd (m s2.mood, e ENUM('x', 'y''z'),"
                        " s STRUCT(\"a b\" INT, \"Q\"\"\" VARCHAR), u UNION(n INT, \"s t\" VARCHAR),"
                        " j JSON, a INT[3], mp MAP(VARCHAR, INT[]), \"we\"\"ird col\" UUID);"
                        "INSERT INTO s2.odd (m) VALUES ('a'), (NULL);",
                        &err),
            &err);
  struct wg_client *c;
  ASSERT_OK(wg_client_connect(&c, fx.uri, &err), &err);
  struct wg_client_table *t = NULL;
  int64_t n = 0;
  ASSERT_OK(wg_client_list_tables(c, NULL, &t, &n, &err), &err);
  ASSERT_EQ(n, 2);
  for (int64_t k = 0; k < n; k++) {
    struct wg_client_info info;
    ASSERT_OK(wg_client_flight_info(c, t[k].schema_name, t[k].table_name, NULL, &info, &err),
              &err);
    ASSERT_EQ(info.total_records, t[k].rows);
    struct wg_buf a, b;
    wg_buf_init(&a);
    wg_buf_init(&b);
    ASSERT_EQ(wg_schema_fingerprint(&t[k].schema, &a), 0);
    ASSERT_EQ(wg_schema_fingerprint(&info.schema, &b), 0);
    if (a.size != b.size || memcmp(a.data, b.data, (size_t)a.size) != 0)
      printf("  %s: ListFlights and GetFlightInfo schemas differ\n", t[k].table_name);
    ASSERT_TRUE(a.size == b.size && memcmp(a.data, b.data, (size_t)a.size) == 0);
    ASSERT_TRUE(info.schema.n_children >= 8);
    wg_buf_reset(&a);
    wg_buf_reset(&b);
    wg_client_info_reset(&info);
  }
  ASSERT_STREQ(t[0].table_name, "all_types");
  ASSERT_EQ(t[0].rows, 3);
  ASSERT_EQ(t[1].rows, 2);
  wg_client_tables_free(t, n);
  wg_client_close(c);
  wg_fx_server_stop(&fx);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  RUN_TEST(list_flights_uses_one_catalog_query);
  RUN_TEST(list_flights_schemas_match_flight_info);
  return TEST_SUMMARY();
}
