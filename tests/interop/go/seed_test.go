package interop

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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
// into a table none of them created, while several readers (goroutines sharing one client) read
// the whole table with a SQL ticket again and again. Every put is acknowledged once with its row count, readers only ever
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

	// The readers share one client (their calls multiplexed on one HTTP/2 connection); each
	// loader has its own, as separate loader scripts do. Dialled here: t.Fatalf only from the
	// test's goroutine.
	readClient := dial(t)
	loadClients := make([]flight.Client, loaders)
	for l := range loadClients {
		loadClients[l] = dial(t)
	}
	for r := 0; r < readers; r++ {
		readWG.Add(1)
		go func(r int) {
			defer readWG.Done()
			c := readClient
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
			c := loadClients[l]
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
