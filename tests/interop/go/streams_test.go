package interop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ---------------------------------------------------------------------------------------------
// streams: large results, cancellation, deadlines, idempotent puts

// TestLargeResultInBatches: a 300,000-row result reaches Go's reader in several record batches
// of at most --batch-rows (65,536) rows each, every value once and in order.
func TestLargeResultInBatches(t *testing.T) {
	c := dial(t)
	const n = 300000
	_, recs := query(t, c, "SELECT i FROM range(300000) t(i) ORDER BY i")
	if len(recs) < 2 {
		t.Fatalf("%d record batches, want several", len(recs))
	}
	next := int64(0)
	for _, rec := range recs {
		if rec.NumRows() > 65536 {
			t.Fatalf("a batch of %d rows, want at most 65,536", rec.NumRows())
		}
		col := rec.Column(0).(*array.Int64)
		for i := 0; i < col.Len(); i++ {
			if col.Value(i) != next {
				t.Fatalf("value %d where %d was due", col.Value(i), next)
			}
			next++
		}
	}
	if next != n {
		t.Fatalf("%d rows, want %d", next, n)
	}
}

// activeCalls is the stats action's active_calls, the calls running now (this one included).
func activeCalls(t testing.TB, c flight.Client) int64 {
	t.Helper()
	var s struct {
		ActiveCalls *int64 `json:"active_calls"`
	}
	actionJSON(t, c, "stats", "", &s)
	if s.ActiveCalls == nil {
		t.Fatalf("stats lacks active_calls")
	}
	return *s.ActiveCalls
}

// waitActive waits (up to 10 s) until active_calls is want, and fails the test otherwise.
func waitActive(t testing.TB, c flight.Client, want int64, what string) {
	t.Helper()
	var got int64
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if got = activeCalls(t, c); got == want {
			return
		}
	}
	t.Fatalf("%s: active_calls stays %d, want %d", what, got, want)
}

// slowSQL runs for minutes unless interrupted: a cross join counted.
const slowSQL = "SELECT count(*) FROM range(100000000) a, range(100000) b"

// TestCancelThenQuery: cancelling a DoGet (or an execute action) whose query has just started
// ends the call on the server (active_calls back to the stats call alone), and the next call,
// which gets the same pooled DuckDB connection, answers at once. It used to hang: a cancel that
// came before DuckDB began the query left the query's tasks running on DuckDB's threads, and
// the connection's next statement waited in DuckDB's cleanup for them (minutes for this one).
// A hundred rounds (~25 ms each): the cancel lands at a slightly different moment each time, and
// before the fix one round in 7 to 40 hung.
func TestCancelThenQuery(t *testing.T) {
	const rounds = 100
	c := dial(t)
	waitActive(t, c, 1, "before")
	for round := 0; round < rounds; round++ {
		roundStart := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		var recv func() error
		if round%2 == 0 {
			stream, err := c.DoGet(ctx, &flight.Ticket{Ticket: []byte(slowSQL)})
			if err != nil {
				t.Fatalf("DoGet: %v", err)
			}
			// the schema may come first (a SELECT's schema goes out before it runs): read on
			recv = func() error {
				for {
					if _, err := stream.Recv(); err != nil {
						return err
					}
				}
			}
		} else {
			stream, err := c.DoAction(ctx, &flight.Action{Type: "execute", Body: []byte(slowSQL)})
			if err != nil {
				t.Fatalf("DoAction execute: %v", err)
			}
			recv = func() error { _, err := stream.Recv(); return err }
		}
		waitActive(t, c, 2, "while the query runs")
		cancel()
		if err := recv(); status.Code(err) != codes.Canceled {
			t.Fatalf("round %d: Recv after cancel: %v, want CANCELED", round, err)
		}
		waitActive(t, c, 1, "after the cancel")
		ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		_, recs, err := doGet(ctx2, c, []byte(fmt.Sprintf("SELECT %d AS round", round)))
		cancel2()
		if err != nil {
			t.Fatalf("round %d: the query after the cancel: %v after %v", round, err, time.Since(start))
		}
		if numRows(recs) != 1 || recs[0].Column(0).(*array.Int32).Value(0) != int32(round) {
			t.Fatalf("round %d: the query after the cancel read %v", round, recs)
		}
		releaseAll(recs)
		if d := time.Since(roundStart); d > 200*time.Millisecond {
			t.Logf("round %d took %v (next query %v)", round, d, time.Since(start))
		}
	}
}

// TestDeadlineDoGet: a DoGet whose deadline passes while its query runs fails with
// DEADLINE_EXCEEDED in Go, and the server stops the query.
func TestDeadlineDoGet(t *testing.T) {
	c := dial(t)
	waitActive(t, c, 1, "before")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := doGet(ctx, c, []byte(slowSQL))
	wantStatus(t, "DoGet past its deadline", err, codes.DeadlineExceeded)
	t.Logf("deadline 300 ms: the call ended after %v", time.Since(start))
	waitActive(t, c, 1, "after the deadline")
}

// keyedPut puts rec to path with the idempotency key in the gRPC header
// wigeon-idempotency-key, as a Go loader retrying a put would.
func keyedPut(t testing.TB, c flight.Client, path []string, key string, rec arrow.RecordBatch) putAck {
	t.Helper()
	ctx := metadata.AppendToOutgoingContext(callCtx(t), "wigeon-idempotency-key", key)
	acks, err := put(ctx, c, path, rec.Schema(), rec)
	if err != nil || len(acks) != 1 {
		t.Fatalf("keyed DoPut: %v, PutResults %+v", err, acks)
	}
	return acks[0]
}

// TestIdempotentPut: a put sent again with the same key (header wigeon-idempotency-key) appends
// nothing and is acknowledged as a duplicate with the first put's count; another key appends.
func TestIdempotentPut(t *testing.T) {
	c := dial(t)
	rec := seedBatch(21)
	defer rec.Release()
	path := []string{"go_keyed"}
	first := keyedPut(t, c, path, "go-key-1", rec)
	again := keyedPut(t, c, path, "go-key-1", rec)
	other := keyedPut(t, c, path, "go-key-2", rec)
	if first.Rows != seedRows || first.Duplicate {
		t.Fatalf("first put: %+v, want rows %d, not a duplicate", first, seedRows)
	}
	if again.Rows != seedRows || !again.Duplicate {
		t.Fatalf("the retry: %+v, want rows %d and duplicate", again, seedRows)
	}
	if other.Rows != seedRows || other.Duplicate {
		t.Fatalf("another key: %+v, want rows %d, not a duplicate", other, seedRows)
	}
	if n := scalarInt(t, c, "SELECT count(*) FROM go_keyed"); n != 2*seedRows {
		t.Fatalf("%d rows, want %d (the retry appends nothing)", n, 2*seedRows)
	}
}

// TestPutEmptyStream: a put of a schema and no batches creates the table and is acknowledged
// with 0 rows; a put whose stream Go cancels before closing keeps nothing.
func TestPutEmptyStream(t *testing.T) {
	c := dial(t)
	if ack := putOne(t, c, []string{"go_empty"}, seedSchema); ack.Rows != 0 {
		t.Fatalf("ack %+v, want 0 rows", ack)
	}
	if n := scalarInt(t, c, "SELECT count(*) FROM go_empty"); n != 0 {
		t.Fatalf("%d rows, want 0", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	stream, err := c.DoPut(ctx)
	if err != nil {
		t.Fatalf("DoPut: %v", err)
	}
	w := flight.NewRecordWriter(stream)
	w.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"go_empty"}})
	rec := seedBatch(22)
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatalf("Write: %v", err)
	}
	cancel() // before CloseSend: the put must not commit
	for {
		if _, err = stream.Recv(); err != nil {
			break
		}
	}
	if errors.Is(err, io.EOF) {
		t.Fatalf("the cancelled put ended cleanly, want CANCELED")
	}
	time.Sleep(200 * time.Millisecond) // a wrong commit would land by now
	if n := scalarInt(t, c, "SELECT count(*) FROM go_empty"); n != 0 {
		t.Fatalf("after the cancelled put: %d rows, want 0", n)
	}
}
