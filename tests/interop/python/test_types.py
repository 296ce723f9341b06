"""Types through pyarrow: every Arrow type the server takes survives do_put and do_get after
DuckDB's documented type mappings (docs/server.md "Types"), types it cannot take are refused
naming the column and the type, and DuckDB-side types read by pyarrow equal what the in-process
`duckdb` package (the same DuckDB 1.4.4) returns as Arrow for the same query.

The oracle for every mapping is in-process DuckDB: the same input table through
`CREATE TABLE t AS SELECT * FROM arrow` and back through `fetch_arrow_table()` must give the same
table as the server and as the expected table built here by casting the input with pyarrow.
"""

import datetime
import decimal
import random
import uuid

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pytest

ROWS = 5000  # more than two of DuckDB's 2048-row vectors, in batches of BATCH rows
BATCH = 1500


# ---------------------------------------------------------------------------------------------
# Input columns: every value kind with nulls at the top level and inside every nested child.

def nullish(rng, make, rate=0.15):
    """make() or None, None with probability `rate`."""
    return None if rng.random() < rate else make()


def ints(bits, signed):
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return lambda rng: [nullish(rng, lambda: rng.choice([lo, hi, 0, rng.randint(lo, hi)]))
                        for _ in range(ROWS)]


def int_column(rng, lo, hi, typ):
    """Integers in [lo, hi] (nulls included) as an array of `typ` (cast from int64)."""
    return pa.array([nullish(rng, lambda: rng.randint(lo, hi)) for _ in range(ROWS)],
                    pa.int64()).cast(typ)


def decimals(precision, scale, rng):
    top = 10 ** precision - 1
    return [nullish(rng, lambda: decimal.Decimal(rng.randint(-top, top)).scaleb(-scale))
            for _ in range(ROWS)]


def text(rng):
    """Strings of 0 to 40 characters: inline (<= 12 bytes) and out-of-line views both occur."""
    alphabet = "abcxyz éü€𝄞 0123"
    return "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 5, 12, 13, 40])))


def blob(rng):
    return bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 12, 13, 33])))


def int_list(rng, max_len=4):
    return [nullish(rng, lambda: rng.randint(-1000, 1000)) for _ in range(rng.randint(0, max_len))]


UNIT_NS = {"s": 10 ** 9, "ms": 10 ** 6, "us": 10 ** 3, "ns": 1}
# Timestamps inside what every unit (and DuckDB's microseconds) holds: 1678 .. 2261
TS_NS = (-(9 * 10 ** 18), 9 * 10 ** 18)


def timestamp_column(rng, unit, tz):
    lo, hi = (v // UNIT_NS[unit] for v in TS_NS)
    return int_column(rng, lo, hi, pa.timestamp(unit, tz))


def time_column(rng, unit):
    day = 86400 * 10 ** 9 // UNIT_NS[unit]
    typ = pa.time32(unit) if unit in ("s", "ms") else pa.time64(unit)
    return int_column(rng, 0, day - 1, pa.int32() if unit in ("s", "ms") else pa.int64()).cast(typ)


def sparse_union(rng):
    ids = [rng.randrange(2) for _ in range(ROWS)]
    i32 = pa.array([nullish(rng, lambda: rng.randint(-5, 5)) for _ in range(ROWS)], pa.int32())
    s = pa.array([nullish(rng, lambda: text(rng)) for _ in range(ROWS)])
    return pa.UnionArray.from_sparse(pa.array(ids, pa.int8()), [i32, s], ["num", "str"])


def run_end_encoded(rng):
    ends, values, at = [], [], 0
    while at < ROWS:
        at = min(ROWS, at + rng.randint(1, 9))
        ends.append(at)
        values.append(nullish(rng, lambda: rng.randint(-10 ** 12, 10 ** 12)))
    return pa.RunEndEncodedArray.from_arrays(pa.array(ends, pa.int32()),
                                            pa.array(values, pa.int64()))


def dictionary(rng, index_type, values):
    return pa.DictionaryArray.from_arrays(
        pa.array([nullish(rng, lambda: rng.randrange(len(values))) for _ in range(ROWS)],
                 index_type), values)


def struct_type():
    return pa.struct([("a", pa.int32()), ("b", pa.string()), ("c", pa.list_(pa.int64()))])


def struct_values(rng):
    return [nullish(rng, lambda: {"a": nullish(rng, lambda: rng.randint(-9, 9)),
                                  "b": nullish(rng, lambda: text(rng)),
                                  "c": nullish(rng, lambda: int_list(rng))}) for _ in range(ROWS)]


def map_values(rng, value):
    def one():
        keys = rng.sample(["k1", "k2", "k3", "a longer key than twelve"], rng.randint(0, 3))
        return [(k, nullish(rng, lambda: value(rng))) for k in keys]
    return [nullish(rng, one) for _ in range(ROWS)]


def make_columns(rng):
    """{name: input array}; names are what the mapping table below refers to."""
    c = {}
    for bits in (8, 16, 32, 64):
        for signed in (True, False):
            name = f"{'' if signed else 'u'}int{bits}"
            c[name] = pa.array(ints(bits, signed)(rng), getattr(pa, name)())
    c["float32"] = pa.array([nullish(rng, lambda: rng.uniform(-1e6, 1e6)) for _ in range(ROWS)],
                            pa.float32())
    c["float64"] = pa.array([nullish(rng, lambda: rng.choice([rng.uniform(-1e300, 1e300),
                                                              float("inf"), -0.0, 5e-324]))
                             for _ in range(ROWS)], pa.float64())
    for p, s, typ in [(4, 1, pa.decimal128), (9, 2, pa.decimal32), (18, 3, pa.decimal64),
                      (18, 0, pa.decimal128), (38, 10, pa.decimal128), (38, 38, pa.decimal128)]:
        c[f"{typ.__name__}_{p}_{s}"] = pa.array(decimals(p, s, rng), typ(p, s))
    days = [nullish(rng, lambda: rng.randint(-700000, 700000)) for _ in range(ROWS)]
    c["date32"] = pa.array(days, pa.int32()).cast(pa.date32())
    c["date64"] = pa.array([None if d is None else d * 86400000 for d in days],
                           pa.int64()).cast(pa.date64())
    for unit in ("s", "ms", "us", "ns"):
        c[f"time_{unit}"] = time_column(rng, unit)
    for unit in ("s", "ms", "us", "ns"):
        c[f"timestamp_{unit}"] = timestamp_column(rng, unit, None)
        for tz, label in [("UTC", "utc"), ("America/New_York", "ny"), ("+05:30", "offset")]:
            c[f"timestamp_{unit}_{label}"] = timestamp_column(rng, unit, tz)
    for unit in ("s", "ms", "us", "ns"):
        lo, hi = (v // UNIT_NS[unit] for v in TS_NS)
        c[f"duration_{unit}"] = int_column(rng, lo, hi, pa.duration(unit))
    c["interval_month_day_nano"] = pa.array(
        [nullish(rng, lambda: pa.MonthDayNano([rng.randint(-10 ** 4, 10 ** 4),
                                               rng.randint(-10 ** 5, 10 ** 5),
                                               rng.randint(-10 ** 17, 10 ** 17)]))
         for _ in range(ROWS)], pa.month_day_nano_interval())
    c["bool"] = pa.array([nullish(rng, lambda: rng.random() < 0.5) for _ in range(ROWS)])
    strings = [nullish(rng, lambda: text(rng)) for _ in range(ROWS)]
    for typ in ("string", "large_string", "string_view"):
        c[typ] = pa.array(strings, getattr(pa, typ)())
    blobs = [nullish(rng, lambda: blob(rng)) for _ in range(ROWS)]
    for typ in ("binary", "large_binary", "binary_view"):
        c[typ] = pa.array(blobs, getattr(pa, typ)())
    c["fixed_size_binary"] = pa.array([nullish(rng, lambda: blob(rng)[:0] + bytes(
        rng.randrange(256) for _ in range(5))) for _ in range(ROWS)], pa.binary(5))
    lists = [nullish(rng, lambda: int_list(rng)) for _ in range(ROWS)]
    c["list"] = pa.array(lists, pa.list_(pa.int32()))
    c["large_list"] = pa.array(lists, pa.large_list(pa.int32()))
    c["list_view"] = pa.array(lists, pa.list_view(pa.int32()))
    c["large_list_view"] = pa.array(lists, pa.large_list_view(pa.int32()))
    c["fixed_size_list"] = pa.array([nullish(rng, lambda: int_list(rng, 3)[:0] + [
        nullish(rng, lambda: rng.randint(-9, 9)) for _ in range(3)]) for _ in range(ROWS)],
        pa.list_(pa.int32(), 3))
    c["struct"] = pa.array(struct_values(rng), struct_type())
    c["map"] = pa.array(map_values(rng, lambda r: r.randint(-99, 99)),
                        pa.map_(pa.string(), pa.int32()))
    c["dictionary_string"] = dictionary(rng, pa.int32(), pa.array(["red", "green", None, "a "
                                                                  "value longer than twelve"]))
    c["dictionary_int8_string"] = dictionary(rng, pa.int8(), pa.array(["x", "y", "z"]))
    c["dictionary_uint16_int64"] = dictionary(rng, pa.uint16(), pa.array([7, -7, 10 ** 15]))
    c["sparse_union"] = sparse_union(rng)
    c["run_end_encoded"] = run_end_encoded(rng)
    # nesting, nulls at every level
    c["list_of_struct"] = pa.array(
        [nullish(rng, lambda: [nullish(rng, lambda: {"x": nullish(rng, rng.random),
                                                     "y": nullish(rng, lambda: [
                                                         nullish(rng, lambda: text(rng))
                                                         for _ in range(rng.randint(0, 2))])})
                               for _ in range(rng.randint(0, 3))]) for _ in range(ROWS)],
        pa.list_(pa.struct([("x", pa.float64()), ("y", pa.list_(pa.string()))])))
    c["map_of_list"] = pa.array(map_values(rng, int_list), pa.map_(pa.string(),
                                                                   pa.list_(pa.int32())))
    c["struct_of_map"] = pa.array(
        [nullish(rng, lambda: {"m": nullish(rng, lambda: [
            (k, nullish(rng, lambda: text(rng))) for k in rng.sample(["p", "q"], rng.randint(0, 2))
        ]), "d": nullish(rng, lambda: datetime.date(2000, 1, 1) + datetime.timedelta(
            days=rng.randint(0, 9999)))}) for _ in range(ROWS)],
        pa.struct([("m", pa.map_(pa.string(), pa.string())), ("d", pa.date32())]))
    c["fixed_size_list_of_struct"] = pa.array(
        [nullish(rng, lambda: [nullish(rng, lambda: {"a": nullish(rng, lambda: rng.randint(0, 9))})
                               for _ in range(2)]) for _ in range(ROWS)],
        pa.list_(pa.struct([("a", pa.int16())]), 2))
    c["list_of_list_view"] = pa.array(
        [nullish(rng, lambda: [nullish(rng, lambda: int_list(rng)) for _ in range(
            rng.randint(0, 3))]) for _ in range(ROWS)], pa.list_(pa.list_view(pa.int64())))
    c["struct_of_dictionary"] = pa.StructArray.from_arrays(
        [dictionary(rng, pa.int32(), pa.array(["u", "v"]))], ["e"],
        mask=pa.array([rng.random() < 0.1 for _ in range(ROWS)]))
    # extension types DuckDB knows
    c["uuid"] = pa.array([nullish(rng, lambda: uuid.UUID(int=rng.getrandbits(128)).bytes)
                          for _ in range(ROWS)], pa.uuid())
    c["json"] = pa.array([nullish(rng, lambda: '{"k": %d}' % rng.randint(0, 99))
                          for _ in range(ROWS)], pa.json_())
    c["bool8"] = pa.array([nullish(rng, lambda: rng.randint(0, 1)) for _ in range(ROWS)],
                          pa.bool8())
    return c


# ---------------------------------------------------------------------------------------------
# The mappings: input type -> what `SELECT *` gives back. `None` means: the same type.

def duckdb_list(value_type):
    return pa.list_(pa.field("l", value_type))


def truncated_micros(ns):
    return abs(ns) // 1000 * (1 if ns >= 0 else -1)


def duration_to_interval(unit):
    """DuckDB stores a duration as an INTERVAL of microseconds (truncated toward zero)."""
    def convert(col):
        out = []
        for v in col.cast(pa.int64()).to_pylist():
            if v is None:
                out.append(None)
                continue
            us = truncated_micros(v * UNIT_NS[unit])
            out.append(pa.MonthDayNano([0, 0, us * 1000]))
        return pa.array(out, pa.month_day_nano_interval())
    return convert


def interval_to_micros(col):
    """INTERVAL holds months, days and microseconds: nanoseconds truncate toward zero."""
    return pa.array([None if v is None else pa.MonthDayNano(
        [v.months, v.days, truncated_micros(v.nanoseconds) * 1000]) for v in col.to_pylist()],
        pa.month_day_nano_interval())


def uuid_to_string(col):
    return pa.array([None if v is None else str(v) for v in col.to_pylist()])


def rebuilt(typ):
    """The values rebuilt as `typ` through Python: pyarrow 26's cast from a list view to a list
    makes an offsets buffer one entry short (an invalid array), so it is not used."""
    return lambda col: pa.array(col.to_pylist(), typ)


def null_union_as_first_member(col):
    """DuckDB keeps a union whose member is null as a null union: it comes back with type id 0
    and a null first member."""
    is_null = pc.is_null(col)  # a sparse union is null where its selected member is
    codes = pc.if_else(is_null, pa.scalar(0, pa.int8()), col.type_codes)
    first = pc.if_else(is_null, pa.scalar(None, col.field(0).type), col.field(0))
    children = [first] + [col.field(i) for i in range(1, col.type.num_fields)]
    return pa.UnionArray.from_sparse(codes, children, [f.name for f in col.type])


def storage_as(typ):
    return lambda col: col.storage.cast(typ)


def mappings(timezone):
    """[(column, input type (as made above), output type, how to build the expected column)]:
    the table docs/server.md documents. `how` is None for a plain pyarrow cast."""
    tz_us = pa.timestamp("us", timezone)
    m = []
    for bits in (8, 16, 32, 64):
        for u in ("", "u"):
            m.append((f"{u}int{bits}", getattr(pa, f"{u}int{bits}")(), None, None))
    m += [("float32", pa.float32(), None, None), ("float64", pa.float64(), None, None)]
    m += [("decimal128_4_1", pa.decimal128(4, 1), None, None),
          ("decimal32_9_2", pa.decimal32(9, 2), pa.decimal128(9, 2), None),
          ("decimal64_18_3", pa.decimal64(18, 3), pa.decimal128(18, 3), None),
          ("decimal128_18_0", pa.decimal128(18, 0), None, None),
          ("decimal128_38_10", pa.decimal128(38, 10), None, None),
          ("decimal128_38_38", pa.decimal128(38, 38), None, None)]
    m += [("date32", pa.date32(), None, None), ("date64", pa.date64(), pa.date32(), None)]
    m += [("time_s", pa.time32("s"), pa.time64("us"), None),
          ("time_ms", pa.time32("ms"), pa.time64("us"), None),
          ("time_us", pa.time64("us"), None, None),
          ("time_ns", pa.time64("ns"), pa.time64("us"), None)]
    for unit in ("s", "ms", "us", "ns"):
        m.append((f"timestamp_{unit}", pa.timestamp(unit), None, None))
        for tz, label in [("UTC", "utc"), ("America/New_York", "ny"), ("+05:30", "offset")]:
            m.append((f"timestamp_{unit}_{label}", pa.timestamp(unit, tz), tz_us, None))
    for unit in ("s", "ms", "us", "ns"):
        m.append((f"duration_{unit}", pa.duration(unit), pa.month_day_nano_interval(),
                  duration_to_interval(unit)))
    m.append(("interval_month_day_nano", pa.month_day_nano_interval(), None, interval_to_micros))
    m += [("bool", pa.bool_(), None, None),
          ("string", pa.string(), None, None),
          ("large_string", pa.large_string(), pa.string(), None),
          ("string_view", pa.string_view(), pa.string(), None),
          ("binary", pa.binary(), None, None),
          ("large_binary", pa.large_binary(), pa.binary(), None),
          ("binary_view", pa.binary_view(), pa.binary(), None),
          ("fixed_size_binary", pa.binary(5), pa.binary(), None)]
    m += [("list", pa.list_(pa.int32()), duckdb_list(pa.int32()), None),
          ("large_list", pa.large_list(pa.int32()), duckdb_list(pa.int32()), None),
          ("list_view", pa.list_view(pa.int32()), duckdb_list(pa.int32()),
           rebuilt(duckdb_list(pa.int32()))),
          ("large_list_view", pa.large_list_view(pa.int32()), duckdb_list(pa.int32()),
           rebuilt(duckdb_list(pa.int32()))),
          ("fixed_size_list", pa.list_(pa.int32(), 3), pa.list_(pa.field("", pa.int32()), 3),
           None),
          ("struct", struct_type(), pa.struct([("a", pa.int32()), ("b", pa.string()),
                                               ("c", duckdb_list(pa.int64()))]), None),
          ("map", pa.map_(pa.string(), pa.int32()), None, None)]
    m += [("dictionary_string", pa.dictionary(pa.int32(), pa.string()), pa.string(), None),
          ("dictionary_int8_string", pa.dictionary(pa.int8(), pa.string()), pa.string(), None),
          ("dictionary_uint16_int64", pa.dictionary(pa.uint16(), pa.int64()), pa.int64(), None),
          ("sparse_union", pa.sparse_union([pa.field("num", pa.int32()),
                                            pa.field("str", pa.string())]), None,
           null_union_as_first_member),
          ("run_end_encoded", pa.run_end_encoded(pa.int32(), pa.int64()), pa.int64(), None)]
    los = pa.struct([("x", pa.float64()), ("y", pa.list_(pa.string()))])
    m += [("list_of_struct", pa.list_(los), duckdb_list(pa.struct(
              [("x", pa.float64()), ("y", duckdb_list(pa.string()))])), None),
          ("map_of_list", pa.map_(pa.string(), pa.list_(pa.int32())),
           pa.map_(pa.string(), duckdb_list(pa.int32())), None),
          ("struct_of_map", pa.struct([("m", pa.map_(pa.string(), pa.string())),
                                       ("d", pa.date32())]), None, None),
          ("fixed_size_list_of_struct", pa.list_(pa.struct([("a", pa.int16())]), 2),
           pa.list_(pa.field("", pa.struct([("a", pa.int16())])), 2), None),
          ("list_of_list_view", pa.list_(pa.list_view(pa.int64())),
           duckdb_list(duckdb_list(pa.int64())), rebuilt(duckdb_list(duckdb_list(pa.int64())))),
          ("struct_of_dictionary", pa.struct([("e", pa.dictionary(pa.int32(), pa.string()))]),
           pa.struct([("e", pa.string())]), None)]
    m += [("uuid", pa.uuid(), pa.string(), uuid_to_string),
          ("json", pa.json_(), pa.string(), storage_as(pa.string())),
          ("bool8", pa.bool8(), pa.bool_(), storage_as(pa.bool_()))]
    return m


def expected_column(col, out_type, how):
    if how is not None:
        got = how(col)
    elif pa.types.is_dictionary(col.type) or pa.types.is_run_end_encoded(col.type):
        got = pc.cast(col.dictionary_decode() if pa.types.is_dictionary(col.type)
                      else pc.run_end_decode(col), out_type)
    elif isinstance(col.type, pa.StructType) and any(
            pa.types.is_dictionary(f.type) for f in col.type):
        got = pa.StructArray.from_arrays(
            [col.field(i).dictionary_decode() for i in range(col.type.num_fields)],
            fields=list(out_type), mask=col.is_null())
    else:
        # truncating casts (ns -> us) are what DuckDB does
        got = pc.cast(col, out_type, safe=False)
    assert got.type == out_type, f"expected-column builder made {got.type}, not {out_type}"
    return got


# ---------------------------------------------------------------------------------------------
# Helpers


def put_table(client, name, table, max_chunksize=BATCH):
    writer, reader = client.do_put(flight.FlightDescriptor.for_path(name), table.schema)
    writer.write_table(table, max_chunksize=max_chunksize)
    writer.done_writing()
    ack = reader.read()
    writer.close()
    return ack


def query(client, sql):
    return client.do_get(flight.Ticket(sql.encode("utf-8"))).read_all()


def in_batches_of_a_vector(table):
    """`table` as copies of at most 2,048 rows each (offset 0): in-process DuckDB 1.4.4 misreads
    a sparse union column in a batch it scans at an offset (every row after the first 2,048 of a
    batch may get another row's member), which the server does not; the oracle gets batches it
    reads right."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table, max_chunksize=2048)
    return pa.ipc.open_stream(sink.getvalue()).read_all()


def reference():
    """In-process DuckDB as the server runs it: sessions in UTC whatever the host's zone."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def duckdb_round_trip(table, order_by="id"):
    """What in-process DuckDB stores for `table` and gives back as Arrow."""
    con = reference()
    con.register("arrow_input", in_batches_of_a_vector(table))
    con.execute("CREATE TABLE t AS SELECT * FROM arrow_input")
    return con.execute(f"SELECT * FROM t ORDER BY {order_by}").fetch_arrow_table()


def server_timezone(client):
    return query(client, "SELECT current_setting('TimeZone') AS tz").column(0)[0].as_py()


def diff(got, want):
    """A short description of the first differing column (for failure messages)."""
    if got.schema != want.schema:
        for f, g in zip(want.schema, got.schema):
            if f != g:
                return f"schema differs at {f.name}: want {f.type}, got {g.type}"
        return f"schemas differ: want {want.schema}, got {got.schema}"
    for name in want.column_names:
        if not got.column(name).equals(want.column(name)):
            g, w = got.column(name).to_pylist(), want.column(name).to_pylist()
            i = next((i for i, (a, b) in enumerate(zip(g, w)) if a != b), None)
            if i is None:
                return f"column {name} differs: {len(g)} rows, want {len(w)} (or nulls differ)"
            return f"column {name} differs at row {i}: got {g[i]!r}, want {w[i]!r}"
    return "equal"


@pytest.fixture(scope="module")
def every_type():
    """(input table, expected table, mapping rows): one column per mapping plus an id."""
    rng = random.Random(20260610)
    cols = make_columns(rng)
    table = pa.table({"id": pa.array(range(ROWS), pa.int64()), **cols})
    return table, cols


def expected_table(table, timezone):
    rows = mappings(timezone)
    fields, arrays = [pa.field("id", pa.int64())], [table.column("id").combine_chunks()]
    for name, in_type, out_type, how in rows:
        col = table.column(name).combine_chunks()
        assert col.type == in_type, f"{name}: made {col.type}, the mapping table says {in_type}"
        out_type = in_type if out_type is None else out_type
        fields.append(pa.field(name, out_type))
        arrays.append(expected_column(col, out_type, how))
    assert set(table.column_names) == {f.name for f in fields}, "a column without a mapping"
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# ---------------------------------------------------------------------------------------------
# Put and read back


def test_mapping_table_is_what_in_process_duckdb_does(every_type):
    """The documented table is DuckDB's own behaviour: in-process DuckDB 1.4.4 stores and returns
    the input exactly as the expected table says (so the server may not differ from it)."""
    table, _ = every_type
    tz = reference().execute("SELECT current_setting('TimeZone')").fetchone()[0]
    want = expected_table(table, tz)
    got = duckdb_round_trip(table)
    assert got.equals(want), diff(got, want)


def test_every_accepted_type_round_trips_through_put_and_get(client, every_type):
    """One put of every accepted type (5,000 rows, nulls everywhere, batches of 1,500 rows that
    straddle DuckDB's 2,048-row vectors) reads back with `SELECT *` equal to the input cast to the
    documented types, and equal to what in-process DuckDB gives for the same input."""
    table, _ = every_type
    ack = put_table(client, "every_type", table)
    assert b'"rows": 5000' in ack.to_pybytes() or b'"rows":5000' in ack.to_pybytes(), ack
    got = query(client, "SELECT * FROM every_type ORDER BY id")
    want = expected_table(table, server_timezone(client))
    assert got.equals(want), diff(got, want)
    assert got.equals(duckdb_round_trip(table))


def test_second_put_appends_every_type_to_the_existing_table(client, every_type):
    """A put into the table a first put of the same schema created goes through the appender of
    the existing table and also reads back equal, in one batch per 2,048 rows or one at a time."""
    table, _ = every_type
    first, second = table.slice(0, 2100), table.slice(2100)
    put_table(client, "appended", first, max_chunksize=2048)
    put_table(client, "appended", second, max_chunksize=1)
    assert query(client, "SELECT count(*) AS n FROM appended").column(0)[0].as_py() == ROWS
    got = query(client, "SELECT * FROM appended ORDER BY id")
    want = expected_table(table, server_timezone(client))
    assert got.equals(want), diff(got, want)


# Columns whose read-back type the table does not take again: puts only widen losslessly, and a
# string is not a UUID or JSON value until DuckDB parses it (send arrow.uuid / arrow.json).
NOT_PUT_BACK = {"uuid": ("UUID", "VARCHAR"), "json": ("JSON", "VARCHAR")}


def test_output_types_put_back_into_the_table_read_back_unchanged(client, every_type):
    """The types the server gives back are accepted by the table it made, unchanged: a client can
    read a table and put what it read into it again (but for the NOT_PUT_BACK strings, refused
    naming the column and both types)."""
    table, _ = every_type
    put_table(client, "again", table.slice(0, 100))
    out = query(client, "SELECT * FROM again ORDER BY id")
    back = out.set_column(0, "id", pc.add(out.column("id"), 1000))
    for name, (table_type, stream_type) in NOT_PUT_BACK.items():
        with pytest.raises(pa.ArrowInvalid) as e:
            put_table(client, "again", back.select(["id", name]))
        assert f'column "{name}": table has {table_type}, stream has {stream_type}' in str(e.value)
    put_table(client, "again", back.drop_columns(list(NOT_PUT_BACK)))
    got = query(client, "SELECT * FROM again WHERE id >= 1000 ORDER BY id")
    want = out.drop_columns(list(NOT_PUT_BACK))
    got = got.drop_columns(list(NOT_PUT_BACK))
    assert got.drop_columns(["id"]).equals(want.drop_columns(["id"])), diff(got, want)
    assert query(client, "SELECT count(*) FILTER (uuid IS NULL) AS n FROM again WHERE id >= 1000"
                 ).column(0)[0].as_py() == 100


def test_dictionary_replaced_between_batches(client):
    """A stream whose batches carry different dictionaries (IPC replacement dictionaries) stores
    each batch's own values."""
    schema = pa.schema([("id", pa.int64()), ("d", pa.dictionary(pa.int8(), pa.string()))])
    batches = [pa.record_batch([pa.array([0, 1, 2], pa.int64()), pa.DictionaryArray.from_arrays(
                   pa.array([0, 1, None], pa.int8()), pa.array(["a", "b"]))], schema=schema),
               pa.record_batch([pa.array([3, 4, 5], pa.int64()), pa.DictionaryArray.from_arrays(
                   pa.array([1, None, 0], pa.int8()), pa.array(["c", "d"]))], schema=schema)]
    writer, reader = client.do_put(flight.FlightDescriptor.for_path("dicts"), schema)
    for b in batches:
        writer.write_batch(b)
    writer.done_writing()
    reader.read()
    writer.close()
    got = query(client, "SELECT d FROM dicts ORDER BY id").column(0).to_pylist()
    assert got == ["a", "b", None, "d", None, "c"]


# ---------------------------------------------------------------------------------------------
# Types the server refuses


def refused_columns():
    """{column: (array, words the message must hold)}: what DuckDB 1.4 cannot store."""
    return {
        "half": (pa.array([1.5, None], pa.float16()), ["half", "halffloat", "float16"]),
        "wide_decimal": (pa.array([decimal.Decimal("1.5"), None], pa.decimal256(40, 1)),
                         ["wide_decimal", "decimal256(40, 1)"]),
        "dense": (pa.UnionArray.from_dense(pa.array([0, 1], pa.int8()), pa.array([0, 0], pa.int32()),
                                           [pa.array([1], pa.int32()), pa.array(["x"])],
                                           ["i", "s"]),
                  ["dense", "dense_union"]),
        "list_of_dictionary": (pa.ListArray.from_arrays(pa.array([0, 1, 1], pa.int32()),
                                                        pa.array(["a"]).dictionary_encode()),
                               ["list_of_dictionary", "dictionary"]),
    }


@pytest.mark.parametrize("column", sorted(refused_columns()))
def test_type_duckdb_cannot_store_is_refused_naming_column_and_type(server, client, column):
    """A put of a type DuckDB cannot store is INVALID_ARGUMENT naming the column and its type;
    nothing is created and the server keeps serving."""
    array, words = refused_columns()[column]
    table = pa.table({"id": pa.array(range(len(array)), pa.int64()), column: array})
    with pytest.raises(pa.ArrowInvalid) as e:
        put_table(client, "refused", table)
    message = str(e.value)
    for w in words[:1]:
        assert w in message, message
    assert any(w in message for w in words[1:]), message
    assert "exception_type" not in message and "stack_trace" not in message, message
    assert query(client, "SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = 'refused'"
                 ).column(0)[0].as_py() == 0
    assert server.alive()
    put_table(client, "still_serving", pa.table({"x": [1]}))


# ---------------------------------------------------------------------------------------------
# DuckDB-side types read by pyarrow

# Each: a SQL expression over i (0 .. 2999); nulls where i % 7 = 3 (CASE below)
DUCKDB_EXPRESSIONS = {
    "hugeint": "(i::HUGEINT * 56713727820156410577229101238628035) - 85070591730234615865843651857",
    "uhugeint": "(i % 3)::UHUGEINT * 113427455640312821154458202477256070485 + i",
    "uuid": "('a0eebc99-9c0b-4ef8-bb6d-' || lpad((i * 7919)::VARCHAR, 12, '0'))::UUID",
    "enum": "(['lo', 'mid', 'hi'])[1 + i % 3]::ENUM('lo', 'mid', 'hi')",
    "enum_300": "('v' || (i % 300)::VARCHAR)::e300",
    "interval": "to_months(i % 25) + to_days(i % 40) + to_microseconds(i * 1000003)",
    "bignum": "(i::HUGEINT * 12345678901234567890123)::BIGNUM * (-1) ** (i % 2)::BIGNUM",
    "bit": "(i % 256)::BIT",
    "tinyint": "(i % 256 - 128)::TINYINT", "utinyint": "(i % 256)::UTINYINT",
    "smallint": "(i * 11 - 16000)::SMALLINT", "usmallint": "(i * 21)::USMALLINT",
    "integer": "i * 700000 - 1000000000", "uinteger": "(i * 1400000)::UINTEGER",
    "bigint": "i::BIGINT * 3000000000000000 - 4000000000000000000",
    "ubigint": "(i::UBIGINT * 6000000000000000)",
    "float": "(i / 7)::FLOAT", "double": "i / 7 - 200",
    "decimal_4": "(i / 1000)::DECIMAL(4, 3)", "decimal_9": "(i * 1.01)::DECIMAL(9, 2)",
    "decimal_18": "(i * 100000000.123)::DECIMAL(18, 3)",
    "decimal_38": "(i::HUGEINT * 1000000000000000000000)::DECIMAL(38, 4)",
    "varchar": "repeat('é', i % 20) || i::VARCHAR", "blob": "('\\x00\\xFF' || i::VARCHAR)::BLOB",
    "bool": "i % 2 = 0",
    "date": "DATE '1970-01-01' + (i * 97 - 100000)::INTEGER",
    "time": "TIME '00:00:00' + to_microseconds(i * 28800017)",
    "time_tz": "('12:34:56.789+' || lpad((i % 15)::VARCHAR, 2, '0'))::TIMETZ",
    "timestamp": "TIMESTAMP '1900-01-01' + to_microseconds(i * 1000000007123)",
    "timestamp_s": "(TIMESTAMP '1900-01-01' + to_seconds(i * 1000007))::TIMESTAMP_S",
    "timestamp_ms": "(TIMESTAMP '1900-01-01' + to_milliseconds(i * 1000000007))::TIMESTAMP_MS",
    "timestamp_ns": "(TIMESTAMP '1700-01-01' + to_microseconds(i * 1000000007123))::TIMESTAMP_NS",
    "timestamptz": "(TIMESTAMP '1900-01-01' + to_microseconds(i * 1000000007123))::TIMESTAMPTZ",
    "list": "[i, NULL, i + 1][1:1 + i % 4]",
    "list_of_list": "[[i], [], NULL, [NULL, i]][1:i % 5]",
    "struct": "{'a': i, 'b': i::VARCHAR, 'c': CASE WHEN i % 5 = 0 THEN NULL ELSE [i] END}",
    "map": "MAP(['k' || (i % 3)::VARCHAR], [CASE WHEN i % 4 = 0 THEN NULL ELSE i END])",
    # DuckDB's CASE takes no ARRAY: the list is nulled, then cast (see duckdb_sql)
    "array": ("[i, NULL, -i]", "INTEGER[3]"),
    "array_of_array": ("[[i, 1], [2, CASE WHEN i % 3 = 0 THEN NULL ELSE i END]]", "BIGINT[2][2]"),
    "union": "CASE WHEN i % 2 = 0 THEN union_value(num := i)::UNION(num INTEGER, str VARCHAR) "
             "ELSE union_value(str := i::VARCHAR)::UNION(num INTEGER, str VARCHAR) END",
    "list_of_struct_of_map": "[{'m': MAP {'x': i}, 'u': 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"
                             "::UUID}]",
    "struct_of_enum_list": "{'e': [(['lo', 'hi'])[1 + i % 2]::ENUM('lo', 'hi')]}",
}
DUCKDB_ROWS = 3000


def duckdb_column(name):
    expr, cast = DUCKDB_EXPRESSIONS[name], None
    if isinstance(expr, tuple):
        expr, cast = expr
    nulled = f"CASE WHEN i % 7 = 3 THEN NULL ELSE {expr} END"
    return f"({nulled})::{cast} AS {name}" if cast else f"{nulled} AS {name}"


def duckdb_sql(names):
    cols = ", ".join(duckdb_column(n) for n in names)
    return f"SELECT i, {cols} FROM range({DUCKDB_ROWS}) r(i) ORDER BY i"


E300 = "CREATE TYPE e300 AS ENUM (SELECT 'v' || range::VARCHAR FROM range(300))"


def test_duckdb_types_read_by_pyarrow_equal_in_process_duckdb(client):
    """Every DuckDB-side type (hugeint, uhugeint, uuid, enum, interval, bignum, bit, timestamps of
    every precision and with zone, time with zone, decimals of every width, nested lists, structs,
    maps, arrays, unions) read by pyarrow through do_get equals, schema and data, what in-process
    DuckDB 1.4.4 returns as Arrow for the same query with its default Arrow settings."""
    for sql in (E300,):
        query(client, sql)
    sql = duckdb_sql(sorted(DUCKDB_EXPRESSIONS))
    got = query(client, sql)
    con = reference()
    con.execute(E300)
    want = con.execute(sql).fetch_arrow_table()
    assert got.num_rows == DUCKDB_ROWS
    assert got.schema.equals(want.schema, check_metadata=True), diff(got, want)
    assert got.equals(want), diff(got, want)
    assert got.column("enum").null_count == len(range(3, DUCKDB_ROWS, 7))


def test_duckdb_type_without_arrow_form_is_refused_naming_the_column(server, client):
    """A result column DuckDB cannot give as Arrow (TIME_NS in 1.4) fails the do_get (and
    get_flight_info) with INVALID_ARGUMENT naming the column and the type, and the server keeps
    serving."""
    with pytest.raises(pa.ArrowInvalid) as e:
        query(client, "SELECT 1 AS fine, TIME_NS '12:34:56.123456789' AS nanos")
    message = str(e.value)
    assert 'column "nanos"' in message and "TIME_NS" in message, message
    assert "exception_type" not in message, message
    with pytest.raises(pa.ArrowInvalid) as e:  # GetFlightInfo's schema alike
        client.get_flight_info(flight.FlightDescriptor.for_command(
            b"SELECT TIME_NS '12:34:56' AS nanos"))
    assert 'column "nanos"' in str(e.value) and "TIME_NS" in str(e.value), str(e.value)
    with pytest.raises(duckdb.Error):  # the reference refuses it too
        duckdb.connect().execute("SELECT TIME_NS '12:34:56.123456789' AS nanos").fetch_arrow_table()
    assert server.alive()
    assert query(client, "SELECT 42 AS x").column(0).to_pylist() == [42]
