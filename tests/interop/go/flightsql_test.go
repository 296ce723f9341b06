// Flight SQL through Apache Arrow's own Go Flight SQL client (arrow-go/v18/arrow/flight/flightsql,
// the client the ADBC Flight SQL driver is built on): a query (Execute + DoGet), a prepared
// statement with parameters, ExecuteUpdate, an ingest (ExecuteIngest) and the metadata calls
// GetCatalogs, GetTables and GetSqlInfo. Results are checked against what DuckDB answers for the
// same SQL through the plain-Flight path (a SQL ticket), and metadata result schemas against the
// reference schemas the ADBC driver checks them with (flightsql/schema_ref).
package interop

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/schema_ref"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// sqlClient opens a Flight SQL client of its own, closed when the test ends.
func sqlClient(t testing.TB) *flightsql.Client {
	t.Helper()
	c, err := flightsql.NewClient(server, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("flightsql.NewClient %s: %v", server, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readInfo reads every endpoint of info with DoGet (on the same connection: the server sends no
// locations) and returns the stream's schema and its records. When the FlightInfo carries a
// schema, each stream's schema must be the same.
func readInfo(t testing.TB, ctx context.Context, c *flightsql.Client, info *flight.FlightInfo) (*arrow.Schema, []arrow.RecordBatch) {
	t.Helper()
	var infoSchema *arrow.Schema
	if len(info.Schema) > 0 {
		s, err := flight.DeserializeSchema(info.Schema, memory.DefaultAllocator)
		if err != nil {
			t.Fatalf("FlightInfo.schema does not deserialize: %v", err)
		}
		infoSchema = s
	}
	if len(info.Endpoint) == 0 {
		t.Fatalf("FlightInfo has no endpoint")
	}
	var schema *arrow.Schema
	var recs []arrow.RecordBatch
	t.Cleanup(func() { releaseAll(recs) })
	for i, ep := range info.Endpoint {
		if len(ep.Location) != 0 {
			t.Fatalf("endpoint %d has locations %v: the client would open another connection", i, ep.Location)
		}
		r, err := c.DoGet(ctx, ep.Ticket)
		if err != nil {
			t.Fatalf("DoGet endpoint %d: %v", i, err)
		}
		if infoSchema != nil && !r.Schema().Equal(infoSchema) {
			t.Fatalf("endpoint %d schema %s differs from FlightInfo.schema %s", i, r.Schema(), infoSchema)
		}
		schema = r.Schema()
		for r.Next() {
			rec := r.RecordBatch()
			rec.Retain()
			recs = append(recs, rec)
		}
		if err := r.Err(); err != nil {
			r.Release()
			t.Fatalf("DoGet endpoint %d stream: %v", i, err)
		}
		r.Release()
	}
	return schema, recs
}

// rowsOf renders records as one string per row ("v1|v2|..."), in order.
func rowsOf(recs []arrow.RecordBatch) []string {
	var rows []string
	for _, rec := range recs {
		for i := 0; i < int(rec.NumRows()); i++ {
			var cells []string
			for _, col := range rec.Columns() {
				cells = append(cells, col.ValueStr(i))
			}
			rows = append(rows, strings.Join(cells, "|"))
		}
	}
	return rows
}

// plainRows is DuckDB's answer to sql through the plain-Flight path (a ticket of SQL text).
func plainRows(t testing.TB, sql string) (*arrow.Schema, []string) {
	t.Helper()
	schema, recs := query(t, dial(t), sql)
	return schema, rowsOf(recs)
}

// setup runs SQL through the plain-Flight "execute" action, so a Flight SQL test's setup does not
// depend on the Flight SQL feature under test.
func setup(t testing.TB, sqls ...string) {
	t.Helper()
	c := dial(t)
	for _, sql := range sqls {
		if _, err := action(callCtx(t), c, "execute", []byte(sql)); err != nil {
			t.Fatalf("setup %q: %v", sql, err)
		}
	}
}

func sameStrings(t testing.TB, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// sameColumns checks that two schemas have the same field names and types (nullability and
// metadata aside: Flight SQL may add column metadata).
func sameColumns(t testing.TB, what string, got, want *arrow.Schema) {
	t.Helper()
	g, w := got.Fields(), want.Fields()
	if len(g) != len(w) {
		t.Fatalf("%s: schema %s, want %s", what, got, want)
	}
	for i := range g {
		if g[i].Name != w[i].Name || !arrow.TypeEqual(g[i].Type, w[i].Type) {
			t.Fatalf("%s: field %d is %s, want %s", what, i, g[i], w[i])
		}
	}
}

func TestFlightSQLQuery(t *testing.T) {
	c := sqlClient(t)
	ctx := callCtx(t)
	sql := "SELECT i, 'v' || i AS s, i * 0.5 AS h, DATE '2024-01-01' + i::INTEGER AS d FROM range(3000) t(i) ORDER BY i"
	info, err := c.Execute(ctx, sql)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	schema, recs := readInfo(t, ctx, c, info)
	wantSchema, wantRows := plainRows(t, sql)
	sameColumns(t, "query schema", schema, wantSchema)
	sameStrings(t, "query rows", rowsOf(recs), wantRows)
	if info.TotalRecords != -1 && info.TotalRecords != int64(len(wantRows)) {
		t.Fatalf("FlightInfo.total_records %d, want -1 or %d", info.TotalRecords, len(wantRows))
	}
}

func TestFlightSQLQueryError(t *testing.T) {
	c := sqlClient(t)
	_, err := c.Execute(callCtx(t), "SELECT * FROM no_such_table_fsql")
	wantStatus(t, "Execute of a missing table", err, codes.NotFound, "no_such_table_fsql")
	_, err = c.Execute(callCtx(t), "SELECT * FROM read_csv('/etc/passwd')")
	wantStatus(t, "Execute through the sandbox", err, codes.FailedPrecondition, "refused")
}

func TestFlightSQLExecuteUpdate(t *testing.T) {
	c := sqlClient(t)
	ctx := callCtx(t)
	if _, err := c.ExecuteUpdate(ctx, "CREATE TABLE fsql_upd(id INTEGER, v VARCHAR)"); err != nil {
		t.Fatalf("ExecuteUpdate CREATE: %v", err)
	}
	n, err := c.ExecuteUpdate(ctx, "INSERT INTO fsql_upd SELECT i, 'x' FROM range(7) t(i)")
	if err != nil || n != 7 {
		t.Fatalf("ExecuteUpdate INSERT: %d, %v; want 7", n, err)
	}
	n, err = c.ExecuteUpdate(ctx, "UPDATE fsql_upd SET v = 'y' WHERE id < 3")
	if err != nil || n != 3 {
		t.Fatalf("ExecuteUpdate UPDATE: %d, %v; want 3", n, err)
	}
	if got := scalarInt(t, dial(t), "SELECT count(*)::BIGINT FROM fsql_upd WHERE v = 'y'"); got != 3 {
		t.Fatalf("after UPDATE: %d rows with y, want 3", got)
	}
}

// paramBatch builds a one-column-per-value batch: int64 and utf8 columns named "0", "1", ...
func paramBatch(t testing.TB, ints []int64, strs []string) arrow.RecordBatch {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "0", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "1", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).AppendValues(ints, nil)
	b.Field(1).(*array.StringBuilder).AppendValues(strs, nil)
	rec := b.NewRecordBatch()
	t.Cleanup(rec.Release)
	return rec
}

func TestFlightSQLPreparedQuery(t *testing.T) {
	c := sqlClient(t)
	ctx := callCtx(t)
	stmt, err := c.Prepare(ctx, "SELECT ?::BIGINT * 2 AS x, ?::VARCHAR || '!' AS s")
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	defer func() {
		if err := stmt.Close(ctx); err != nil {
			t.Errorf("ClosePreparedStatement: %v", err)
		}
	}()
	if ps := stmt.ParameterSchema(); ps == nil || len(ps.Fields()) != 2 {
		t.Fatalf("parameter schema %v, want 2 parameters", ps)
	}
	if ds := stmt.DatasetSchema(); ds == nil || len(ds.Fields()) != 2 || ds.Field(0).Name != "x" || ds.Field(1).Name != "s" {
		t.Fatalf("dataset schema %v, want x, s", ds)
	}
	for _, tc := range []struct {
		n    int64
		s    string
		want string
	}{{21, "hi", "42|hi!"}, {-5, "é", "-10|é!"}} {
		stmt.SetParameters(paramBatch(t, []int64{tc.n}, []string{tc.s}))
		info, err := stmt.Execute(ctx)
		if err != nil {
			t.Fatalf("prepared Execute(%d, %q): %v", tc.n, tc.s, err)
		}
		_, recs := readInfo(t, ctx, c, info)
		sameStrings(t, "prepared query rows", rowsOf(recs), []string{tc.want})
	}
}

func TestFlightSQLPreparedUpdate(t *testing.T) {
	c := sqlClient(t)
	ctx := callCtx(t)
	setup(t, "CREATE TABLE fsql_prep(id BIGINT, name VARCHAR)")
	stmt, err := c.Prepare(ctx, "INSERT INTO fsql_prep VALUES (?, ?)")
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	defer stmt.Close(ctx)
	stmt.SetParameters(paramBatch(t, []int64{1, 2, 3}, []string{"a", "b", "c"}))
	n, err := stmt.ExecuteUpdate(ctx)
	if err != nil || n != 3 {
		t.Fatalf("prepared ExecuteUpdate of 3 rows: %d, %v; want 3", n, err)
	}
	_, rows := plainRows(t, "SELECT id, name FROM fsql_prep ORDER BY id")
	sameStrings(t, "rows inserted by the prepared statement", rows, []string{"1|a", "2|b", "3|c"})

	// Without parameters the client sends an empty schema and one batch of no rows: run once.
	del, err := c.Prepare(ctx, "DELETE FROM fsql_prep WHERE id >= 2")
	if err != nil {
		t.Fatalf("Prepare DELETE: %v", err)
	}
	defer del.Close(ctx)
	n, err = del.ExecuteUpdate(ctx)
	if err != nil || n != 2 {
		t.Fatalf("prepared ExecuteUpdate without parameters: %d, %v; want 2", n, err)
	}
}

func ingestBatch(t testing.TB, from, n int64) arrow.RecordBatch {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "label", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := from; i < from+n; i++ {
		b.Field(0).(*array.Int64Builder).Append(i)
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("row %d", i))
	}
	rec := b.NewRecordBatch()
	t.Cleanup(rec.Release)
	return rec
}

func ingest(ctx context.Context, c *flightsql.Client, table string, notExist, exists int32, recs ...arrow.RecordBatch) (int64, error) {
	rdr, err := array.NewRecordReader(recs[0].Schema(), recs)
	if err != nil {
		return 0, err
	}
	defer rdr.Release()
	opts := &flightsql.ExecuteIngestOpts{
		Table: table,
		TableDefinitionOptions: &flightsql.TableDefinitionOptions{
			IfNotExist: flightsql.TableDefinitionOptionsTableNotExistOption(notExist),
			IfExists:   flightsql.TableDefinitionOptionsTableExistsOption(exists),
		},
	}
	return c.ExecuteIngest(ctx, rdr, opts)
}

// The TableDefinitionOptions enum values of FlightSql.proto.
const (
	notExistCreate = 1
	notExistFail   = 2
	existsFail     = 1
	existsAppend   = 2
	existsReplace  = 3
)

func TestFlightSQLIngest(t *testing.T) {
	c := sqlClient(t)
	ctx := callCtx(t)
	n, err := ingest(ctx, c, "fsql_ing", notExistCreate, existsFail, ingestBatch(t, 0, 500), ingestBatch(t, 500, 500))
	if err != nil || n != 1000 {
		t.Fatalf("ExecuteIngest create: %d, %v; want 1000", n, err)
	}
	n, err = ingest(ctx, c, "fsql_ing", notExistFail, existsAppend, ingestBatch(t, 1000, 10))
	if err != nil || n != 10 {
		t.Fatalf("ExecuteIngest append: %d, %v; want 10", n, err)
	}
	_, err = ingest(ctx, c, "fsql_ing", notExistCreate, existsFail, ingestBatch(t, 0, 1))
	wantStatus(t, "ExecuteIngest create of an existing table", err, codes.AlreadyExists, "fsql_ing")
	_, err = ingest(ctx, c, "fsql_ing_missing", notExistFail, existsAppend, ingestBatch(t, 0, 1))
	wantStatus(t, "ExecuteIngest append to a missing table", err, codes.NotFound, "fsql_ing_missing")

	var want []string
	for i := 0; i < 1010; i++ {
		want = append(want, fmt.Sprintf("%d|row %d", i, i))
	}
	_, rows := plainRows(t, "SELECT id, label FROM fsql_ing ORDER BY id")
	sameStrings(t, "ingested rows", rows, want)

	n, err = ingest(ctx, c, "fsql_ing", notExistCreate, existsReplace, ingestBatch(t, 7, 2))
	if err != nil || n != 2 {
		t.Fatalf("ExecuteIngest replace: %d, %v; want 2", n, err)
	}
	_, rows = plainRows(t, "SELECT id, label FROM fsql_ing ORDER BY id")
	sameStrings(t, "rows after replace", rows, []string{"7|row 7", "8|row 8"})
}

func TestFlightSQLGetCatalogs(t *testing.T) {
	c := sqlClient(t)
	ctx := callCtx(t)
	info, err := c.GetCatalogs(ctx)
	if err != nil {
		t.Fatalf("GetCatalogs: %v", err)
	}
	schema, recs := readInfo(t, ctx, c, info)
	if !schema.Equal(schema_ref.Catalogs) {
		t.Fatalf("GetCatalogs schema %s, want %s", schema, schema_ref.Catalogs)
	}
	// Listing DuckDB's "system" and "temp" catalogs or not is the server's choice: every catalog
	// listed must be a real one, once, and the database's own (current_database()) among them.
	got := rowsOf(recs)
	_, real := plainRows(t, "SELECT DISTINCT catalog_name FROM information_schema.schemata")
	_, current := plainRows(t, "SELECT current_database()")
	seen := map[string]bool{}
	for _, name := range got {
		if seen[name] || !contains(real, name) {
			t.Fatalf("GetCatalogs %q: %q listed twice or not a catalog of %q", got, name, real)
		}
		seen[name] = true
	}
	if !seen[current[0]] {
		t.Fatalf("GetCatalogs %q does not list the database %q", got, current[0])
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestFlightSQLGetTables(t *testing.T) {
	c := sqlClient(t)
	ctx := callCtx(t)
	setup(t, "CREATE TABLE fsql_gt_a(id INTEGER NOT NULL, name VARCHAR)",
		"CREATE TABLE fsql_gt_b(d DATE)",
		"CREATE VIEW fsql_gt_v AS SELECT id FROM fsql_gt_a")
	pattern := "fsql\\_gt\\_%"
	info, err := c.GetTables(ctx, &flightsql.GetTablesOpts{TableNameFilterPattern: &pattern, IncludeSchema: true})
	if err != nil {
		t.Fatalf("GetTables: %v", err)
	}
	schema, recs := readInfo(t, ctx, c, info)
	if !schema.Equal(schema_ref.TablesWithIncludedSchema) {
		t.Fatalf("GetTables schema %s, want %s", schema, schema_ref.TablesWithIncludedSchema)
	}
	var got []string
	columns := map[string]*arrow.Schema{}
	for _, rec := range recs {
		for i := 0; i < int(rec.NumRows()); i++ {
			name := rec.Column(2).(*array.String).Value(i)
			got = append(got, fmt.Sprintf("%s|%s|%s|%s", rec.Column(0).ValueStr(i), rec.Column(1).ValueStr(i),
				name, rec.Column(3).(*array.String).Value(i)))
			r, err := ipc.NewReader(bytes.NewReader(rec.Column(4).(*array.Binary).Value(i)))
			if err != nil {
				t.Fatalf("table_schema of %s: %v", name, err)
			}
			columns[name] = r.Schema()
			r.Release()
		}
	}
	sort.Strings(got)
	_, want := plainRows(t, "SELECT table_catalog, table_schema, table_name, table_type FROM information_schema.tables "+
		"WHERE table_name LIKE 'fsql\\_gt\\_%' ESCAPE '\\' ORDER BY table_name")
	if len(got) != len(want) || len(got) != 3 {
		t.Fatalf("GetTables rows %q, want the 3 of information_schema %q", got, want)
	}
	for i := range got { // names as information_schema has them; the type name is the server's
		g, w := strings.Split(got[i], "|"), strings.Split(want[i], "|")
		if strings.Join(g[:3], "|") != strings.Join(w[:3], "|") {
			t.Fatalf("GetTables row %q, want %q", got[i], want[i])
		}
	}
	for name, cols := range columns {
		wantSchema, _ := plainRows(t, "SELECT * FROM "+name+" LIMIT 0")
		sameColumns(t, "table_schema of "+name, cols, wantSchema)
	}
	if a := columns["fsql_gt_a"]; a == nil || a.Field(0).Nullable || !a.Field(1).Nullable {
		t.Fatalf("fsql_gt_a table_schema %v: want id NOT NULL and name nullable", a)
	}
}

func TestFlightSQLGetSqlInfo(t *testing.T) {
	c := sqlClient(t)
	ctx := callCtx(t)
	info, err := c.GetSqlInfo(ctx, []flightsql.SqlInfo{
		flightsql.SqlInfoFlightSqlServerName, flightsql.SqlInfoFlightSqlServerVersion,
		flightsql.SqlInfoFlightSqlServerTransaction,
	})
	if err != nil {
		t.Fatalf("GetSqlInfo: %v", err)
	}
	schema, recs := readInfo(t, ctx, c, info)
	union, ok := schema.Field(1).Type.(*arrow.DenseUnionType)
	if schema.Field(0).Name != "info_name" || schema.Field(0).Type.ID() != arrow.UINT32 || !ok ||
		len(union.Fields()) != 6 || union.Fields()[3].Type.ID() != arrow.INT32 {
		t.Fatalf("GetSqlInfo schema %s, want info_name uint32 and the spec's dense union", schema)
	}
	values := map[uint32]string{}
	for _, rec := range recs {
		ids := rec.Column(0).(*array.Uint32)
		vals := rec.Column(1).(*array.DenseUnion)
		for i := 0; i < int(rec.NumRows()); i++ {
			child := vals.Field(int(vals.ChildID(i)))
			values[ids.Value(i)] = child.ValueStr(int(vals.ValueOffset(i)))
		}
	}
	if !strings.HasPrefix(strings.ToLower(values[uint32(flightsql.SqlInfoFlightSqlServerName)]), "wigeon") {
		t.Fatalf("server name %q, want wigeon", values[uint32(flightsql.SqlInfoFlightSqlServerName)])
	}
	if values[uint32(flightsql.SqlInfoFlightSqlServerVersion)] == "" {
		t.Fatalf("no server version in %v", values)
	}
	if v := values[uint32(flightsql.SqlInfoFlightSqlServerTransaction)]; v != "1" && v != "2" {
		t.Fatalf("FLIGHT_SQL_SERVER_TRANSACTION %q, want 1 (transactions) or 2 (savepoints)", v)
	}
}

func TestFlightSQLTransaction(t *testing.T) {
	c := sqlClient(t)
	ctx := callCtx(t)
	setup(t, "CREATE TABLE fsql_txn(id INTEGER)")
	tx, err := c.BeginTransaction(ctx)
	if err != nil {
		t.Fatalf("BeginTransaction: %v", err)
	}
	if n, err := tx.ExecuteUpdate(ctx, "INSERT INTO fsql_txn VALUES (1), (2)"); err != nil || n != 2 {
		t.Fatalf("ExecuteUpdate in the transaction: %d, %v", n, err)
	}
	if got := scalarInt(t, dial(t), "SELECT count(*)::BIGINT FROM fsql_txn"); got != 0 {
		t.Fatalf("uncommitted rows seen from outside: %d", got)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	tx, err = c.BeginTransaction(ctx)
	if err != nil {
		t.Fatalf("BeginTransaction: %v", err)
	}
	if _, err := tx.ExecuteUpdate(ctx, "INSERT INTO fsql_txn VALUES (3)"); err != nil {
		t.Fatalf("ExecuteUpdate in the transaction: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	_, rows := plainRows(t, "SELECT id FROM fsql_txn ORDER BY id")
	sameStrings(t, "rows after rollback then commit", rows, []string{"3"})
}
