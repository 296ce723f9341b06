package interop

import (
	"errors"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
)

// ---------------------------------------------------------------------------------------------
// the other RPCs

// TestGetFlightInfoPath: a PATH descriptor of a table gives its schema (readable by arrow-go),
// its exact row count and one endpoint whose ticket DoGet reads in full.
func TestGetFlightInfoPath(t *testing.T) {
	c := dial(t)
	recs := []arrow.RecordBatch{seedBatch(1), seedBatch(2)}
	defer releaseAll(recs)
	putOne(t, c, []string{"go_info"}, seedSchema, recs...)

	info, err := c.GetFlightInfo(callCtx(t), &flight.FlightDescriptor{
		Type: flight.DescriptorPATH, Path: []string{"go_info"}})
	if err != nil {
		t.Fatalf("GetFlightInfo: %v", err)
	}
	schema, err := flight.DeserializeSchema(info.Schema, memory.DefaultAllocator)
	if err != nil {
		t.Fatalf("DeserializeSchema: %v", err)
	}
	if !schema.Equal(seedSchema) {
		t.Fatalf("schema %s, want %s", schema, seedSchema)
	}
	if info.TotalRecords != 2*seedRows {
		t.Fatalf("total_records %d, want %d", info.TotalRecords, 2*seedRows)
	}
	if len(info.Endpoint) != 1 || info.Endpoint[0].Ticket == nil {
		t.Fatalf("endpoints %v, want one with a ticket", info.Endpoint)
	}
	if d := info.FlightDescriptor; d == nil || d.Type != flight.DescriptorPATH ||
		len(d.Path) != 1 || d.Path[0] != "go_info" {
		t.Fatalf("flight_descriptor %v, want the PATH asked for", d)
	}
	got, data, err := doGet(callCtx(t), c, info.Endpoint[0].Ticket.Ticket)
	if err != nil {
		t.Fatalf("DoGet of the endpoint's ticket: %v", err)
	}
	defer releaseAll(data)
	if !got.Equal(seedSchema) || numRows(data) != 2*seedRows {
		t.Fatalf("endpoint read %d rows of %s, want %d of the table's schema", numRows(data), got, 2*seedRows)
	}

	_, err = c.GetFlightInfo(callCtx(t), &flight.FlightDescriptor{
		Type: flight.DescriptorPATH, Path: []string{"go_no_such_table"}})
	wantStatus(t, "GetFlightInfo of a missing table", err, codes.NotFound, "go_no_such_table")
}

// TestGetFlightInfoCommand: a CMD descriptor of SQL gives the result's schema without running it
// (total_records -1) and a ticket that DoGet runs.
func TestGetFlightInfoCommand(t *testing.T) {
	c := dial(t)
	rec := seedBatch(7)
	defer rec.Release()
	putOne(t, c, []string{"go_info_cmd"}, seedSchema, rec)

	sql := "SELECT category, count(*) AS n, sum(value) AS total FROM go_info_cmd GROUP BY category ORDER BY category"
	info, err := c.GetFlightInfo(callCtx(t), &flight.FlightDescriptor{
		Type: flight.DescriptorCMD, Cmd: []byte(sql)})
	if err != nil {
		t.Fatalf("GetFlightInfo CMD: %v", err)
	}
	schema, err := flight.DeserializeSchema(info.Schema, memory.DefaultAllocator)
	if err != nil {
		t.Fatalf("DeserializeSchema: %v", err)
	}
	want := arrow.NewSchema([]arrow.Field{
		{Name: "category", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "total", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	if !schema.Equal(want) {
		t.Fatalf("schema %s, want %s", schema, want)
	}
	if info.TotalRecords != -1 {
		t.Fatalf("total_records %d, want -1 for SQL", info.TotalRecords)
	}
	if len(info.Endpoint) != 1 || info.Endpoint[0].Ticket == nil {
		t.Fatalf("endpoints %v, want one with a ticket", info.Endpoint)
	}
	got, recs, err := doGet(callCtx(t), c, info.Endpoint[0].Ticket.Ticket)
	if err != nil {
		t.Fatalf("DoGet of the endpoint's ticket: %v", err)
	}
	defer releaseAll(recs)
	if !got.Equal(want) || numRows(recs) != int64(len(seedCategories)) {
		t.Fatalf("ticket read %d rows of %s, want %d of %s", numRows(recs), got, len(seedCategories), want)
	}
	cats := recs[0].Column(0).(*array.String)
	ns := recs[0].Column(1).(*array.Int64)
	sorted := append([]string(nil), seedCategories...)
	sort.Strings(sorted)
	for i, name := range sorted {
		if cats.Value(i) != name || ns.Value(i) != seedRows/int64(len(seedCategories)) {
			t.Fatalf("row %d: %q %d, want %q %d", i, cats.Value(i), ns.Value(i), name, seedRows/len(seedCategories))
		}
	}
}

// TestListFlights: criteria filter by table name; each FlightInfo has the table's path, schema
// and exact row count; a criteria matching nothing lists nothing.
func TestListFlights(t *testing.T) {
	c := dial(t)
	rec := seedBatch(3)
	defer rec.Release()
	putOne(t, c, []string{"go_listed_a"}, seedSchema, rec)
	putOne(t, c, []string{"go_listed_b"}, seedSchema, rec, rec)

	list := func(expr string) map[string]*flight.FlightInfo {
		stream, err := c.ListFlights(callCtx(t), &flight.Criteria{Expression: []byte(expr)})
		if err != nil {
			t.Fatalf("ListFlights %q: %v", expr, err)
		}
		out := map[string]*flight.FlightInfo{}
		for {
			info, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return out
			}
			if err != nil {
				t.Fatalf("ListFlights %q: %v", expr, err)
			}
			out[strings.Join(info.FlightDescriptor.GetPath(), ".")] = info
		}
	}

	got := list("go_listed_")
	if len(got) != 2 {
		t.Fatalf("ListFlights go_listed_: %d flights %v, want 2", len(got), keys(got))
	}
	for name, rows := range map[string]int64{"go_listed_a": seedRows, "go_listed_b": 2 * seedRows} {
		info := findFlight(got, name)
		if info == nil {
			t.Fatalf("ListFlights: no %s among %v", name, keys(got))
		}
		if info.TotalRecords != rows {
			t.Fatalf("%s: total_records %d, want %d", name, info.TotalRecords, rows)
		}
		schema, err := flight.DeserializeSchema(info.Schema, memory.DefaultAllocator)
		if err != nil || !schema.Equal(seedSchema) {
			t.Fatalf("%s: schema %v (%v), want %s", name, schema, err, seedSchema)
		}
	}
	if all := list(""); findFlight(all, "go_listed_a") == nil || findFlight(all, "go_listed_b") == nil {
		t.Fatalf("ListFlights without criteria: %v lacks go_listed_a/b", keys(all))
	}
	if none := list("go_matches_nothing"); len(none) != 0 {
		t.Fatalf("ListFlights go_matches_nothing: %v, want none", keys(none))
	}
}

// findFlight finds a table's FlightInfo by its last path element (the path may name the schema).
func findFlight(infos map[string]*flight.FlightInfo, table string) *flight.FlightInfo {
	for _, info := range infos {
		p := info.FlightDescriptor.GetPath()
		if len(p) > 0 && p[len(p)-1] == table {
			return info
		}
	}
	return nil
}

func keys(m map[string]*flight.FlightInfo) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// stats is the `stats` action's result (the counters this test reads).
type stats struct {
	Calls   *int64 `json:"calls"`
	Errors  *int64 `json:"errors"`
	Gets    *int64 `json:"gets"`
	Puts    *int64 `json:"puts"`
	RowsIn  *int64 `json:"rows_in"`
	RowsOut *int64 `json:"rows_out"`
}

func getStats(t testing.TB, c flight.Client) stats {
	t.Helper()
	var s stats
	actionJSON(t, c, "stats", "", &s)
	if s.Calls == nil || s.Errors == nil || s.Gets == nil || s.Puts == nil || s.RowsIn == nil || s.RowsOut == nil {
		t.Fatalf("stats %+v lacks calls, errors, gets, puts, rows_in or rows_out", s)
	}
	return s
}

// TestActionStats: `stats` counts a put (puts +1, rows_in +1000) and a get (gets +1, rows_out +
// its rows). No other test runs meanwhile, so the differences are exact.
func TestActionStats(t *testing.T) {
	c := dial(t)
	before := getStats(t, c)
	rec := seedBatch(11)
	defer rec.Release()
	putOne(t, c, []string{"go_stats"}, seedSchema, rec)
	query(t, c, "SELECT * FROM go_stats")
	after := getStats(t, c)
	if d := *after.Puts - *before.Puts; d != 1 {
		t.Errorf("puts grew by %d, want 1", d)
	}
	if d := *after.RowsIn - *before.RowsIn; d != seedRows {
		t.Errorf("rows_in grew by %d, want %d", d, seedRows)
	}
	if d := *after.Gets - *before.Gets; d != 1 {
		t.Errorf("gets grew by %d, want 1", d)
	}
	if d := *after.RowsOut - *before.RowsOut; d != seedRows {
		t.Errorf("rows_out grew by %d, want %d", d, seedRows)
	}
	if *after.Calls <= *before.Calls {
		t.Errorf("calls %d after %d, want more", *after.Calls, *before.Calls)
	}
}

// TestActionExecute: `execute` runs DDL and DML and reports rows_changed; what it wrote is read
// back by DoGet; ListActions names execute and stats; an unknown action is UNIMPLEMENTED.
func TestActionExecute(t *testing.T) {
	c := dial(t)
	var res struct {
		RowsChanged *int64 `json:"rows_changed"`
	}
	actionJSON(t, c, "execute", "CREATE TABLE go_exec(id INTEGER PRIMARY KEY, name VARCHAR)", &res)
	if res.RowsChanged == nil || *res.RowsChanged != 0 {
		t.Fatalf("CREATE TABLE: rows_changed %v, want 0", res.RowsChanged)
	}
	res.RowsChanged = nil
	actionJSON(t, c, "execute", "INSERT INTO go_exec VALUES (1, 'a'), (2, 'b'), (3, 'c')", &res)
	if res.RowsChanged == nil || *res.RowsChanged != 3 {
		t.Fatalf("INSERT: rows_changed %v, want 3", res.RowsChanged)
	}
	res.RowsChanged = nil
	actionJSON(t, c, "execute", "UPDATE go_exec SET name = upper(name) WHERE id >= 2; DELETE FROM go_exec WHERE id = 1", &res)
	if res.RowsChanged == nil || *res.RowsChanged != 3 {
		t.Fatalf("UPDATE; DELETE: rows_changed %v, want 3", res.RowsChanged)
	}
	if n := scalarInt(t, c, "SELECT count(*) FROM go_exec WHERE name IN ('B', 'C')"); n != 2 {
		t.Fatalf("after execute: %d rows B, C, want 2", n)
	}

	_, err := action(callCtx(t), c, "execute", []byte("INSERT INTO go_exec VALUES (2, 'again')"))
	wantStatus(t, "execute of a duplicate key", err, codes.AlreadyExists, "Constraint Error")

	stream, err := c.ListActions(callCtx(t), &flight.Empty{})
	if err != nil {
		t.Fatalf("ListActions: %v", err)
	}
	names := map[string]bool{}
	for {
		a, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("ListActions: %v", err)
		}
		names[a.Type] = a.Description != ""
	}
	for _, n := range []string{"execute", "stats", "drop_table", "checkpoint"} {
		if !names[n] {
			t.Errorf("ListActions: no %s with a description (got %v)", n, names)
		}
	}

	_, err = action(callCtx(t), c, "go_no_such_action", nil)
	wantStatus(t, "an unknown action", err, codes.Unimplemented, "execute")
}
