package interop

import (
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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

// typeMapping is one Arrow type a Go loader may send, some values of it (arrow-go's JSON form),
// and what DuckDB stores and gives back: the Arrow type and the same values in it.
type typeMapping struct {
	in, out         arrow.DataType
	inJSON, outJSON string
}

// utc is a microsecond timestamp with the server's zone: what a TIMESTAMPTZ reads back as.
var utc = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// duckList is a list as DuckDB names its child ("l", arrow-go's ListOf says "item").
func duckList(elem arrow.DataType) arrow.DataType {
	return arrow.ListOfField(arrow.Field{Name: "l", Type: elem, Nullable: true})
}

// typeMappings: DuckDB's mappings of Arrow types with no DuckDB type of their own, written out.
// Lossless: a wider or equivalent type holds the same values. Lossy: time64[ns] and zoned
// timestamp[ns] lose their nanoseconds (DuckDB keeps microseconds there), a zone reads back as
// UTC (the instant is kept), and a union member's null is a null union, which DuckDB gives back
// with the first member's tag (union_tag is NULL) - in-process DuckDB 1.4.4 does the same.
var typeMappings = []typeMapping{
	{arrow.FixedWidthTypes.Date64, arrow.FixedWidthTypes.Date32, `["2026-01-02", null]`, `["2026-01-02", null]`},
	{arrow.FixedWidthTypes.Time32s, arrow.FixedWidthTypes.Time64us, `["01:02:03", null]`, `["01:02:03", null]`},
	{arrow.FixedWidthTypes.Time32ms, arrow.FixedWidthTypes.Time64us, `["01:02:03.456", null]`, `["01:02:03.456", null]`},
	{arrow.FixedWidthTypes.Time64ns, arrow.FixedWidthTypes.Time64us, `["01:02:03.456789123", null]`, `["01:02:03.456789", null]`},
	{&arrow.TimestampType{Unit: arrow.Second}, &arrow.TimestampType{Unit: arrow.Second},
		`["2026-01-02T03:04:05", null]`, `["2026-01-02T03:04:05", null]`},
	{&arrow.TimestampType{Unit: arrow.Millisecond}, &arrow.TimestampType{Unit: arrow.Millisecond},
		`["2026-01-02T03:04:05.123", null]`, `["2026-01-02T03:04:05.123", null]`},
	{&arrow.TimestampType{Unit: arrow.Nanosecond}, &arrow.TimestampType{Unit: arrow.Nanosecond},
		`["2026-01-02T03:04:05.123456789", null]`, `["2026-01-02T03:04:05.123456789", null]`},
	{&arrow.TimestampType{Unit: arrow.Second, TimeZone: "Europe/Paris"}, utc,
		`["2026-01-02T03:04:05Z", null]`, `["2026-01-02T03:04:05Z", null]`},
	{&arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}, utc,
		`["2026-01-02T03:04:05.123456789Z", null]`, `["2026-01-02T03:04:05.123456Z", null]`},
	{arrow.FixedWidthTypes.Duration_s, arrow.FixedWidthTypes.MonthDayNanoInterval,
		`[12, null]`, `[{"months": 0, "days": 0, "nanoseconds": 12000000000}, null]`},
	{arrow.FixedWidthTypes.Duration_us, arrow.FixedWidthTypes.MonthDayNanoInterval,
		`[123456, null]`, `[{"months": 0, "days": 0, "nanoseconds": 123456000}, null]`},
	{arrow.FixedWidthTypes.MonthInterval, arrow.FixedWidthTypes.MonthDayNanoInterval,
		`[{"months": 14}, null]`, `[{"months": 14, "days": 0, "nanoseconds": 0}, null]`},
	{arrow.FixedWidthTypes.MonthDayNanoInterval, arrow.FixedWidthTypes.MonthDayNanoInterval,
		`[{"months": 1, "days": -2, "nanoseconds": 3000}, null]`, `[{"months": 1, "days": -2, "nanoseconds": 3000}, null]`},
	{&arrow.Decimal32Type{Precision: 5, Scale: 2}, &arrow.Decimal128Type{Precision: 5, Scale: 2}, `["123.45", null]`, `["123.45", null]`},
	{&arrow.Decimal64Type{Precision: 10, Scale: 2}, &arrow.Decimal128Type{Precision: 10, Scale: 2}, `["12345678.91", null]`, `["12345678.91", null]`},
	{arrow.BinaryTypes.LargeString, arrow.BinaryTypes.String, `["large", null]`, `["large", null]`},
	{arrow.BinaryTypes.StringView, arrow.BinaryTypes.String,
		`["a view string longer than twelve bytes", "short", null]`, `["a view string longer than twelve bytes", "short", null]`},
	{arrow.BinaryTypes.LargeBinary, arrow.BinaryTypes.Binary, `["AAEC", null]`, `["AAEC", null]`},
	{arrow.BinaryTypes.BinaryView, arrow.BinaryTypes.Binary, `["AAEC", null]`, `["AAEC", null]`},
	{&arrow.FixedSizeBinaryType{ByteWidth: 3}, arrow.BinaryTypes.Binary, `["AAEC", null]`, `["AAEC", null]`},
	{&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String},
		arrow.BinaryTypes.String, `["red", "blue", null, "red"]`, `["red", "blue", null, "red"]`},
	{arrow.LargeListOf(arrow.PrimitiveTypes.Int32), duckList(arrow.PrimitiveTypes.Int32),
		`[[1, 2], null, [], [null]]`, `[[1, 2], null, [], [null]]`},
	{arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Int32),
		arrow.FixedSizeListOfField(2, arrow.Field{Name: "", Type: arrow.PrimitiveTypes.Int32, Nullable: true}),
		`[[1, 2], null, [3, null]]`, `[[1, 2], null, [3, null]]`},
	{arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int32), arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int32),
		`[[{"key": "a", "value": 1}, {"key": "b", "value": null}], null, []]`, `[[{"key": "a", "value": 1}, {"key": "b", "value": null}], null, []]`},
	{arrow.ListOf(arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int64, Nullable: true})),
		duckList(arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int64, Nullable: true})),
		`[[{"x": 1}, null, {"x": null}], null]`, `[[{"x": 1}, null, {"x": null}], null]`},
	{arrow.SparseUnionOf([]arrow.Field{{Name: "i", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}}, []arrow.UnionTypeCode{0, 1}),
		arrow.SparseUnionOf([]arrow.Field{{Name: "i", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}}, []arrow.UnionTypeCode{0, 1}),
		`[[0, 5], [1, "x"], [1, null]]`, `[[0, 5], [1, "x"], [0, null]]`},
}

// TestTypeMappings: each type of typeMappings, put alone into a table of its own and read back,
// comes back as the listed type holding the listed values (arrow-go's array.Equal).
func TestTypeMappings(t *testing.T) {
	c := dial(t)
	for i, m := range typeMappings {
		in := fromJSON(t, m.in, m.inJSON)
		want := fromJSON(t, m.out, m.outJSON)
		table := fmt.Sprintf("go_mapped_%d", i)
		schema := arrow.NewSchema([]arrow.Field{{Name: "v", Type: m.in, Nullable: true}}, nil)
		rec := array.NewRecordBatch(schema, []arrow.Array{in}, int64(in.Len()))
		putOne(t, c, []string{table}, schema, rec)
		rec.Release()
		got, recs := query(t, c, "SELECT v FROM "+table)
		if !arrow.TypeEqual(got.Field(0).Type, m.out) {
			t.Errorf("%s: read back as %s, want %s", m.in, got.Field(0).Type, m.out)
			continue
		}
		if len(recs) != 1 || !array.Equal(recs[0].Column(0), want) {
			t.Errorf("%s: read back %v, want %v", m.in, recs, want)
		}
	}
}

func fromJSON(t testing.TB, typ arrow.DataType, js string) arrow.Array {
	t.Helper()
	arr, _, err := array.FromJSON(memory.DefaultAllocator, typ, strings.NewReader(js))
	if err != nil {
		t.Fatalf("FromJSON %s %s: %v", typ, js, err)
	}
	t.Cleanup(arr.Release)
	return arr
}

// TestTypesRefused: Arrow types DuckDB cannot store are refused, the put keeps nothing (no table
// is left behind) and the server keeps serving. interval[day_time] is refused by the server
// itself, at any depth, naming the column: DuckDB's Arrow import would store 3 days 4 ms as 198
// days 20:11:09.187. float16, decimal256 beyond DuckDB's 38 digits and dense unions DuckDB refuses.
func TestTypesRefused(t *testing.T) {
	c := dial(t)
	dayTime := arrow.FixedWidthTypes.DayTimeInterval
	cases := []struct {
		typ   arrow.DataType
		json  string
		parts []string // in the message, when the server itself refuses it
	}{
		{dayTime, `[{"days": 3, "milliseconds": 4}, null]`, []string{`column "v"`, "interval[day_time]", "month_day_nano"}},
		{arrow.ListOf(dayTime), `[[{"days": 3, "milliseconds": 4}], null]`, []string{`column "v"`, "interval[day_time]", "+l"}},
		{arrow.StructOf(arrow.Field{Name: "d", Type: dayTime, Nullable: true}), `[{"d": {"days": 1, "milliseconds": 2}}]`,
			[]string{`column "v"`, "interval[day_time]", "+s"}},
		{arrow.FixedWidthTypes.Float16, `[1.5, null]`, nil},
		{&arrow.Decimal256Type{Precision: 40, Scale: 2}, `["12345678901234567890123456789012345678.91", null]`, nil},
		{arrow.DenseUnionOf([]arrow.Field{{Name: "i", Type: arrow.PrimitiveTypes.Int32, Nullable: true}}, []arrow.UnionTypeCode{0}),
			`[[0, 5]]`, nil},
	}
	for i, tc := range cases {
		table := fmt.Sprintf("go_refused_%d", i)
		arr := fromJSON(t, tc.typ, tc.json)
		schema := arrow.NewSchema([]arrow.Field{{Name: "v", Type: tc.typ, Nullable: true}}, nil)
		rec := array.NewRecordBatch(schema, []arrow.Array{arr}, int64(arr.Len()))
		_, err := put(callCtx(t), c, []string{table}, schema, rec)
		rec.Release()
		what := fmt.Sprintf("a put of %s", tc.typ)
		if tc.parts != nil {
			wantStatus(t, what, err, codes.InvalidArgument, tc.parts...)
		} else if code := status.Code(err); code != codes.InvalidArgument && code != codes.Unimplemented {
			t.Errorf("%s: %v, want INVALID_ARGUMENT or UNIMPLEMENTED", what, err)
		}
		_, _, err = doGet(callCtx(t), c, []byte("SELECT * FROM "+table))
		wantStatus(t, what+": then reading its table", err, codes.NotFound, table)
	}
	if n := scalarInt(t, c, "SELECT (1 + 1)::BIGINT"); n != 2 {
		t.Fatalf("after the refused puts: 1 + 1 = %d", n)
	}
}
