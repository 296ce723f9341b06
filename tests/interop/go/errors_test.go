package interop

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ---------------------------------------------------------------------------------------------
// errors

// TestErrors: what Go's client sees for bad SQL (INVALID_ARGUMENT with DuckDB's parser message),
// a missing table (NOT_FOUND), a put whose column type the table cannot take (INVALID_ARGUMENT
// naming the column; nothing kept) and DoExchange without a descriptor (INVALID_ARGUMENT); the
// server keeps serving.
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
	wantStatus(t, "DoExchange without a descriptor", err, codes.InvalidArgument)

	if n := scalarInt(t, c, "SELECT (41 + 1)::BIGINT"); n != 42 {
		t.Fatalf("after the errors: SELECT 41 + 1 = %d", n)
	}
}
