// Interoperability test: drives a running wigeon server (WG_SERVER=host:port) from Go through
// Apache Arrow's own Go Flight client (github.com/apache/arrow-go/v18/arrow/flight, grpc-go).
// Run by tests/interop/run_go.sh, which starts the server; by hand:
//
//	cd tests/interop/go && WG_SERVER=127.0.0.1:8815 go test -count=1 .
//
// The tests share one fresh server (--db :memory:) and run in file order; each uses tables of
// its own, so their order does not matter for their results.
package interop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

var server = os.Getenv("WG_SERVER")

func TestMain(m *testing.M) {
	if server == "" {
		fmt.Fprintln(os.Stderr, "WG_SERVER (host:port of a running wigeon server) is not set")
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// ---------------------------------------------------------------------------------------------
// helpers

// dial opens a Flight client of its own (one gRPC connection), closed when the test ends.
func dial(t testing.TB) flight.Client {
	t.Helper()
	c, err := flight.NewClientWithMiddleware(server, nil, nil,
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", server, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// callCtx bounds one call, so a hung server fails the test instead of the whole run's timeout.
func callCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// putAck is the server's PutResult app_metadata (docs/server.md, DoPut acknowledgement).
type putAck struct {
	Rows      int64  `json:"rows"`
	Table     string `json:"table"`
	Schema    string `json:"schema"`
	Duplicate bool   `json:"duplicate"`
}

// put sends recs with DoPut to the path descriptor, closes the sending side and reads every
// PutResult until the stream ends. It returns the acknowledgements decoded, or the call's error.
func put(ctx context.Context, c flight.Client, path []string, schema *arrow.Schema,
	recs ...arrow.RecordBatch) ([]putAck, error) {
	stream, err := c.DoPut(ctx)
	if err != nil {
		return nil, err
	}
	w := flight.NewRecordWriter(stream, ipc.WithSchema(schema))
	w.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: path})
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			break // the server ended the call; its status comes from Recv below
		}
	}
	w.Close()
	stream.CloseSend()
	var acks []putAck
	for {
		res, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return acks, nil
		}
		if err != nil {
			return acks, err
		}
		var ack putAck
		if err := json.Unmarshal(res.AppMetadata, &ack); err != nil {
			return acks, fmt.Errorf("PutResult app_metadata %q is not JSON: %v", res.AppMetadata, err)
		}
		acks = append(acks, ack)
	}
}

// putOne is put for a stream that must succeed with exactly one acknowledgement of rows rows.
func putOne(t testing.TB, c flight.Client, path []string, schema *arrow.Schema,
	recs ...arrow.RecordBatch) putAck {
	t.Helper()
	acks, err := put(callCtx(t), c, path, schema, recs...)
	if err != nil {
		t.Fatalf("DoPut %v: %v", path, err)
	}
	var rows int64
	for _, r := range recs {
		rows += r.NumRows()
	}
	if len(acks) != 1 || acks[0].Rows != rows || acks[0].Table != path[len(path)-1] {
		t.Fatalf("DoPut %v: PutResults %+v, want one with rows %d, table %q",
			path, acks, rows, path[len(path)-1])
	}
	return acks[0]
}

// doGet reads a whole DoGet stream the way a query script does: a Ticket of SQL text, then every
// record. The records are retained; release them with releaseAll.
func doGet(ctx context.Context, c flight.Client, ticket []byte) (*arrow.Schema, []arrow.RecordBatch, error) {
	stream, err := c.DoGet(ctx, &flight.Ticket{Ticket: ticket})
	if err != nil {
		return nil, nil, err
	}
	r, err := flight.NewRecordReader(stream)
	if err != nil {
		return nil, nil, err
	}
	defer r.Release()
	var recs []arrow.RecordBatch
	for r.Next() {
		rec := r.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := r.Err(); err != nil && !errors.Is(err, io.EOF) {
		releaseAll(recs)
		return nil, nil, err
	}
	return r.Schema(), recs, nil
}

func releaseAll(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
}

func numRows(recs []arrow.RecordBatch) int64 {
	var n int64
	for _, r := range recs {
		n += r.NumRows()
	}
	return n
}

// query is doGet of SQL that must succeed.
func query(t testing.TB, c flight.Client, sql string) (*arrow.Schema, []arrow.RecordBatch) {
	t.Helper()
	schema, recs, err := doGet(callCtx(t), c, []byte(sql))
	if err != nil {
		t.Fatalf("DoGet %q: %v", sql, err)
	}
	t.Cleanup(func() { releaseAll(recs) })
	return schema, recs
}

// scalarInt reads the single int64 value of a one-row, one-column result.
func scalarInt(t testing.TB, c flight.Client, sql string) int64 {
	t.Helper()
	_, recs := query(t, c, sql)
	if numRows(recs) != 1 || recs[0].NumCols() != 1 {
		t.Fatalf("%q: %d rows, want one row of one column", sql, numRows(recs))
	}
	col, ok := recs[0].Column(0).(*array.Int64)
	if !ok {
		t.Fatalf("%q: column is %s, want int64", sql, recs[0].Column(0).DataType())
	}
	return col.Value(0)
}

// action runs DoAction and returns the bodies of all its results.
func action(ctx context.Context, c flight.Client, typ string, body []byte) ([][]byte, error) {
	stream, err := c.DoAction(ctx, &flight.Action{Type: typ, Body: body})
	if err != nil {
		return nil, err
	}
	var bodies [][]byte
	for {
		res, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return bodies, nil
		}
		if err != nil {
			return bodies, err
		}
		bodies = append(bodies, res.Body)
	}
}

// actionJSON runs an action that must succeed with one JSON result and decodes it into out.
func actionJSON(t testing.TB, c flight.Client, typ, body string, out any) {
	t.Helper()
	bodies, err := action(callCtx(t), c, typ, []byte(body))
	if err != nil {
		t.Fatalf("DoAction %s %q: %v", typ, body, err)
	}
	if len(bodies) != 1 {
		t.Fatalf("DoAction %s: %d results, want 1", typ, len(bodies))
	}
	if err := json.Unmarshal(bodies[0], out); err != nil {
		t.Fatalf("DoAction %s: result %q is not JSON: %v", typ, bodies[0], err)
	}
}

// wantStatus checks that err is a gRPC status with code and a message containing every part.
func wantStatus(t testing.TB, what string, err error, code codes.Code, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want %s", what, code)
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("%s: error %v is not a gRPC status", what, err)
	}
	if st.Code() != code {
		t.Fatalf("%s: code %s (%q), want %s", what, st.Code(), st.Message(), code)
	}
	for _, p := range parts {
		if !strings.Contains(st.Message(), p) {
			t.Fatalf("%s: message %q does not contain %q", what, st.Message(), p)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// the seed workflow

var seedSchema = arrow.NewSchema([]arrow.Field{
	{Name: "batch_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "timestamp", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "value", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "category", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

var seedCategories = []string{"alpha", "beta", "gamma", "delta"}

const seedRows = 1000

// seedValue is row i's value in batch b: a multiple of 1/4, so sums are exact in float64.
func seedValue(b int64, i int) float64 { return float64(b%97) + float64(i)*0.25 }

// seedBatch builds one loader batch of 1,000 rows, as the seeds' loader does: batch_id, an ISO
// timestamp string, a float64 value and one of four categories.
func seedBatch(b int64) arrow.RecordBatch {
	rb := array.NewRecordBuilder(memory.DefaultAllocator, seedSchema)
	defer rb.Release()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(b) * time.Hour)
	for i := 0; i < seedRows; i++ {
		rb.Field(0).(*array.Int64Builder).Append(b)
		rb.Field(1).(*array.StringBuilder).Append(
			base.Add(time.Duration(i) * time.Millisecond).Format("2006-01-02T15:04:05.000000"))
		rb.Field(2).(*array.Float64Builder).Append(seedValue(b, i))
		rb.Field(3).(*array.StringBuilder).Append(seedCategories[i%len(seedCategories)])
	}
	return rb.NewRecordBatch()
}

// TestSeedWorkflowConcurrent: several loaders (each with its own client) put 1,000-row batches
// into a table none of them created, while several readers read the whole table with a SQL
// ticket again and again. Every put is acknowledged once with its row count, readers only ever
// see whole puts and their counts never go backwards, and the final table holds exactly every
// row of every put, each batch once, with the values sent.
func TestSeedWorkflowConcurrent(t *testing.T) {
	const loaders, putsPerLoader, readers = 4, 25, 3
	table := []string{"go_seed"}
	total := int64(loaders * putsPerLoader * seedRows)

	var loadWG, readWG sync.WaitGroup
	errs := make(chan error, loaders+readers)
	done := make(chan struct{})
	readCounts := make([][]int64, readers)

	for r := 0; r < readers; r++ {
		readWG.Add(1)
		go func(r int) {
			defer readWG.Done()
			c := dial(t)
			last := int64(-1)
			for final := false; !final; {
				select {
				case <-done:
					final = true // one more read after every loader finished
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				_, recs, err := doGet(ctx, c, []byte("SELECT * FROM go_seed"))
				cancel()
				if err != nil {
					// Before the first put commits, the table does not exist yet.
					if status.Code(err) == codes.NotFound && last < 0 && !final {
						time.Sleep(5 * time.Millisecond)
						continue
					}
					errs <- fmt.Errorf("reader %d: %v", r, err)
					return
				}
				n := numRows(recs)
				releaseAll(recs)
				if n < last || n%seedRows != 0 {
					errs <- fmt.Errorf("reader %d: read %d rows after %d (counts must grow by whole puts)", r, n, last)
					return
				}
				last = n
				readCounts[r] = append(readCounts[r], n)
			}
		}(r)
	}

	for l := 0; l < loaders; l++ {
		loadWG.Add(1)
		go func(l int) {
			defer loadWG.Done()
			c := dial(t)
			for p := 0; p < putsPerLoader; p++ {
				b := int64(l*1000 + p)
				rec := seedBatch(b)
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				acks, err := put(ctx, c, table, seedSchema, rec)
				cancel()
				rec.Release()
				if err != nil {
					errs <- fmt.Errorf("loader %d put %d: %v", l, p, err)
					return
				}
				if len(acks) != 1 || acks[0].Rows != seedRows || acks[0].Table != "go_seed" {
					errs <- fmt.Errorf("loader %d put %d: PutResults %+v, want one {rows 1000, table go_seed}", l, p, acks)
					return
				}
			}
		}(l)
	}
	loadWG.Wait()
	close(done)
	readWG.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	for r, counts := range readCounts {
		if len(counts) == 0 || counts[len(counts)-1] != total {
			t.Errorf("reader %d: counts %v, want the last to be %d", r, counts, total)
		}
		t.Logf("reader %d: %d reads, first %d rows, last %d", r, len(counts), counts[0], counts[len(counts)-1])
	}

	c := dial(t)
	if n := scalarInt(t, c, "SELECT count(*) FROM go_seed"); n != total {
		t.Fatalf("count(*) = %d, want %d", n, total)
	}
	// Every batch exactly once, whole, with its values.
	_, recs := query(t, c, "SELECT batch_id, count(*)::BIGINT AS n, sum(value) AS s, "+
		"count(DISTINCT category)::BIGINT AS cats, min(timestamp) AS first FROM go_seed "+
		"GROUP BY batch_id ORDER BY batch_id")
	got := map[int64]bool{}
	for _, rec := range recs {
		ids := rec.Column(0).(*array.Int64)
		ns := rec.Column(1).(*array.Int64)
		sums := rec.Column(2).(*array.Float64)
		cats := rec.Column(3).(*array.Int64)
		firsts := rec.Column(4).(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			b := ids.Value(i)
			var want float64
			for k := 0; k < seedRows; k++ {
				want += seedValue(b, k)
			}
			wantFirst := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(b) * time.Hour).
				Format("2006-01-02T15:04:05.000000")
			if ns.Value(i) != seedRows || sums.Value(i) != want || cats.Value(i) != 4 || firsts.Value(i) != wantFirst {
				t.Errorf("batch %d: %d rows, sum %v, %d categories, first %q; want %d, %v, 4, %q",
					b, ns.Value(i), sums.Value(i), cats.Value(i), firsts.Value(i), seedRows, want, wantFirst)
			}
			got[b] = true
		}
	}
	for l := 0; l < loaders; l++ {
		for p := 0; p < putsPerLoader; p++ {
			if !got[int64(l*1000+p)] {
				t.Errorf("batch %d is missing", l*1000+p)
			}
		}
	}
	if len(got) != loaders*putsPerLoader {
		t.Errorf("%d batches, want %d", len(got), loaders*putsPerLoader)
	}
}

// TestSeedReadBack: what a query script reads back is what the loader put, value for value
// (Go's RecordEqual on the four seed columns), in several batches when the result is large.
func TestSeedReadBack(t *testing.T) {
	c := dial(t)
	var recs []arrow.RecordBatch
	for b := int64(0); b < 3; b++ {
		recs = append(recs, seedBatch(b))
	}
	defer releaseAll(recs)
	putOne(t, c, []string{"go_seed_back"}, seedSchema, recs...)

	schema, got := query(t, c, "SELECT * FROM go_seed_back ORDER BY batch_id, timestamp")
	if !schema.Equal(seedSchema) {
		t.Fatalf("schema %s, want %s", schema, seedSchema)
	}
	want := array.NewTableFromRecords(seedSchema, recs)
	defer want.Release()
	have := array.NewTableFromRecords(schema, got)
	defer have.Release()
	if !array.TableEqual(want, have) {
		t.Fatalf("read back differs from what was put")
	}
}

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

// ---------------------------------------------------------------------------------------------
// errors

// TestErrors: what Go's client sees for bad SQL (INVALID_ARGUMENT with DuckDB's parser message),
// a missing table (NOT_FOUND), a put whose column type the table cannot take (INVALID_ARGUMENT
// naming the column; nothing kept) and DoExchange (UNIMPLEMENTED); the server keeps serving.
func TestErrors(t *testing.T) {
	c := dial(t)

	_, _, err := doGet(callCtx(t), c, []byte("SELEC 1"))
	wantStatus(t, "DoGet of bad SQL", err, codes.InvalidArgument, "Parser Error", `syntax error at or near "SELEC"`)
	t.Logf("bad SQL: Go sees code %s, message %q", status.Code(err), status.Convert(err).Message())

	_, err = c.GetFlightInfo(callCtx(t), &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte("SELEC 1")})
	wantStatus(t, "GetFlightInfo CMD of bad SQL", err, codes.InvalidArgument, "Parser Error")

	_, _, err = doGet(callCtx(t), c, []byte("SELECT * FROM go_no_such_table"))
	wantStatus(t, "DoGet of a missing table", err, codes.NotFound, "Catalog Error", "go_no_such_table")

	rec := seedBatch(5)
	defer rec.Release()
	putOne(t, c, []string{"go_conflict"}, seedSchema, rec)
	bad := arrow.NewSchema([]arrow.Field{
		{Name: "batch_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "value", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
	}, nil)
	rb := array.NewRecordBuilder(memory.DefaultAllocator, bad)
	rb.Field(0).(*array.Int64Builder).Append(1)
	lb := rb.Field(1).(*array.ListBuilder)
	lb.Append(true)
	lb.ValueBuilder().(*array.Int32Builder).Append(1)
	badRec := rb.NewRecordBatch()
	rb.Release()
	defer badRec.Release()
	_, err = put(callCtx(t), c, []string{"go_conflict"}, bad, badRec)
	wantStatus(t, "a put whose column type conflicts", err, codes.InvalidArgument, "value")
	if n := scalarInt(t, c, "SELECT count(*) FROM go_conflict"); n != seedRows {
		t.Fatalf("after the refused put: %d rows, want %d", n, seedRows)
	}

	ex, err := c.DoExchange(callCtx(t))
	if err == nil {
		ex.CloseSend()
		_, err = ex.Recv()
	}
	wantStatus(t, "DoExchange", err, codes.Unimplemented)

	if n := scalarInt(t, c, "SELECT (41 + 1)::BIGINT"); n != 42 {
		t.Fatalf("after the errors: SELECT 41 + 1 = %d", n)
	}
}

// ---------------------------------------------------------------------------------------------
// types

// typesSchema holds the Arrow types a Go loader typically sends: signed and unsigned ints of
// every width, floats, bool, decimals (64-bit and 128-bit storage in DuckDB), timestamps with and
// without a zone, date, string, binary, a list and a struct; every column nullable.
var typesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
	{Name: "i16", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
	{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "u8", Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
	{Name: "u16", Type: arrow.PrimitiveTypes.Uint16, Nullable: true},
	{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
	{Name: "u64", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
	{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "d18", Type: &arrow.Decimal128Type{Precision: 18, Scale: 3}, Nullable: true},
	{Name: "d38", Type: &arrow.Decimal128Type{Precision: 38, Scale: 10}, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
	{Name: "ts_utc", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "ts_ny", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "America/New_York"}, Nullable: true},
	{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "l", Type: arrow.ListOfField(arrow.Field{Name: "l", Type: arrow.PrimitiveTypes.Int64, Nullable: true}), Nullable: true},
	{Name: "st", Type: arrow.StructOf(
		arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		arrow.Field{Name: "b", Type: arrow.BinaryTypes.String, Nullable: true},
	), Nullable: true},
}, nil)

// typesRows: extremes of every width, nulls inside the list and the struct, and a row of nulls
// in every column; in the order ORDER BY i8 NULLS LAST reads them.
const typesRows = `[
 {"i8": -128, "i16": -32768, "i32": -2147483648, "i64": -9223372036854775808,
  "u8": 255, "u16": 65535, "u32": 4294967295, "u64": 18446744073709551615,
  "f32": -1.5, "f64": 1e300, "flag": true, "d18": "123456789012345.678",
  "d38": "1234567890123456789012345678.0123456789", "ts": "2026-01-02T03:04:05.123456",
  "ts_utc": "2026-07-01T12:00:00.000001Z",
  "ts_ny": "2026-03-08T07:30:00Z", "day": "1970-01-01", "s": "héllo, wörld", "bin": "AAEC/w==",
  "l": [1, null, 3], "st": {"a": 7, "b": "seven"}},
 {"i8": 127, "i16": 32767, "i32": 2147483647, "i64": 9223372036854775807,
  "u8": 0, "u16": 0, "u32": 0, "u64": 0, "f32": 0.25, "f64": -0.0, "flag": false,
  "d18": "-999999999999999.999", "d38": "-9999999999999999999999999999.9999999999",
  "ts": "1969-12-31T23:59:59.999999", "ts_utc": "1900-01-01T00:00:00Z",
  "ts_ny": "2026-11-01T05:59:59.5Z", "day": "2262-04-11",
  "s": "", "bin": "", "l": [], "st": {"a": null, "b": null}},
 {"i8": null, "i16": null, "i32": null, "i64": null, "u8": null, "u16": null, "u32": null,
  "u64": null, "f32": null, "f64": null, "flag": null, "d18": null, "d38": null, "ts": null,
  "ts_utc": null, "ts_ny": null, "day": null, "s": null, "bin": null, "l": null, "st": null}
]`

// typesReadBack is typesSchema as DuckDB gives it back. The one mapping: a timestamp with a zone
// is a TIMESTAMPTZ, which keeps the instant and not the zone, and reads back in the server's
// zone, UTC whatever the host's (run_go.sh starts the server with TZ=America/New_York).
func typesReadBack() *arrow.Schema {
	fields := typesSchema.Fields()
	for i := range fields {
		if ts, ok := fields[i].Type.(*arrow.TimestampType); ok && ts.TimeZone != "" {
			fields[i].Type = &arrow.TimestampType{Unit: ts.Unit, TimeZone: "UTC"}
		}
	}
	return arrow.NewSchema(fields, nil)
}

// TestTypesRoundTrip: a record of many Arrow types, put into a new table and read back with
// SELECT *, equals what was sent (arrow-go's TableEqual), types and values, nulls included, after
// the one documented mapping (typesReadBack).
func TestTypesRoundTrip(t *testing.T) {
	c := dial(t)
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, typesSchema, strings.NewReader(typesRows))
	if err != nil {
		t.Fatalf("RecordFromJSON: %v", err)
	}
	defer rec.Release()
	putOne(t, c, []string{"go_types"}, typesSchema, rec)

	schema, recs := query(t, c, "SELECT * FROM go_types ORDER BY i8 NULLS LAST")
	wantSchema := typesReadBack()
	if !schema.Equal(wantSchema) {
		t.Fatalf("schema read back:\n%s\nwant:\n%s", schema, wantSchema)
	}
	have := array.NewTableFromRecords(schema, recs)
	defer have.Release()
	wantRec, _, err := array.RecordFromJSON(memory.DefaultAllocator, wantSchema, strings.NewReader(typesRows))
	if err != nil {
		t.Fatalf("RecordFromJSON: %v", err)
	}
	defer wantRec.Release()
	wantTable := array.NewTableFromRecords(wantSchema, []arrow.RecordBatch{wantRec})
	defer wantTable.Release()
	if !array.TableEqual(wantTable, have) {
		for i := 0; i < int(have.NumCols()); i++ {
			t.Logf("%s: got %v, want %v", schema.Field(i).Name, have.Column(i).Data().Chunks(), wantTable.Column(i).Data().Chunks())
		}
		t.Fatalf("types read back differ from what was put")
	}
}

// TestServerZoneIsUTC: the server answers in UTC whatever its host's zone (run_go.sh starts it
// with TZ=America/New_York): the session's TimeZone, a TIMESTAMPTZ's Arrow type and its text.
// DuckDB's default is the host's zone, which made the same query give other types and text on
// another machine.
func TestServerZoneIsUTC(t *testing.T) {
	c := dial(t)
	schema, recs := query(t, c, "SELECT current_setting('TimeZone') AS zone, "+
		"TIMESTAMPTZ '2026-01-01 00:00:00+00' AS t, TIMESTAMPTZ '2026-01-01 00:00:00+00'::VARCHAR AS text")
	if numRows(recs) != 1 {
		t.Fatalf("%d rows, want 1", numRows(recs))
	}
	zone := recs[0].Column(0).(*array.String).Value(0)
	text := recs[0].Column(2).(*array.String).Value(0)
	ts, _ := schema.Field(1).Type.(*arrow.TimestampType)
	if zone != "UTC" || ts == nil || ts.TimeZone != "UTC" || text != "2026-01-01 00:00:00+00" {
		t.Fatalf("zone %q, type %s, text %q; want UTC, timestamp[us, tz=UTC], 2026-01-01 00:00:00+00",
			zone, schema.Field(1).Type, text)
	}
}
