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
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
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
