"""What a hostile or unlucky client can do to the surfaces issue 10 added, against the real server.

The DoGet header wigeon-compression, the schema DoGet sends before a SELECT runs, the refusals that
name a column and its Arrow type, ListFlights criteria, and compressed puts. Each test asserts what
a demanding user expects: a clean gRPC error of the right class with a clear message, the server
still serving, the data intact. Tests marked xfail(strict=True) fail because of a server bug their
reason names (the suite stays green; the lead sees them).
"""

import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.flight as flight
import pytest

HEADER = b"wigeon-compression"


def opts(*headers, **kwargs):
    return flight.FlightCallOptions(headers=list(headers), **kwargs)


def get(client, sql, options=None):
    return client.do_get(flight.Ticket(sql.encode()), options=options).read_all()


def put(client, name, table, compression=None, max_chunksize=None):
    o = None
    if compression is not None:
        o = flight.FlightCallOptions(
            write_options=pa.ipc.IpcWriteOptions(compression=compression))
    writer, _ = client.do_put(flight.FlightDescriptor.for_path(name), table.schema, options=o)
    writer.write_table(table, max_chunksize=max_chunksize)
    writer.close()


def still_serving(client):
    assert get(client, "SELECT 42 AS x").to_pydict() == {"x": [42]}


def float16_column():
    return pa.array(np.array([1.0, 2.0], dtype=np.float16))  # DuckDB 1.4.4 cannot store it


# ---- the DoGet header wigeon-compression ----

@pytest.mark.parametrize("value", [b"zstd", b"ZSTD", b"Lz4", b"LZ4", b"none", b"NoNe"])
def test_compression_header_any_case_gives_the_same_data(client, value):
    put(client, "t", pa.table({"i": pa.array(range(50000), pa.int64()),
                               "s": pa.array([f"v{i % 7}" for i in range(50000)])}))
    plain = get(client, "SELECT * FROM t ORDER BY i")
    assert get(client, "SELECT * FROM t ORDER BY i", opts((HEADER, value))).equals(plain)


@pytest.mark.parametrize("value", [b" zstd", b"zstd ", b"", b"gzip", b"zstd,lz4", b"zs" * 3000])
def test_compression_header_odd_value_is_invalid_argument_naming_the_codecs(client, value):
    with pytest.raises(pa.ArrowInvalid) as e:
        get(client, "SELECT 1", opts((HEADER, value)))
    message = str(e.value)
    assert "unknown codec" in message and "allowed: zstd, lz4, none" in message
    assert "zs" * 40 not in message  # a long value is cut, not echoed whole
    still_serving(client)


def test_compression_header_over_the_metadata_limit_is_refused_and_the_server_serves(server):
    """gRPC refuses headers over its metadata limit; the hostile connection may be closed after
    it (gRPC's own doing, seen as 'Socket closed' on its next call), but another client's stream
    in progress and new clients are served."""
    other = server.client()
    reader = other.do_get(flight.Ticket(b"SELECT range AS i FROM range(3000000)"))
    first = reader.read_chunk().data.num_rows
    for headers in ([(HEADER, b"z" * 100000)], [(HEADER, b"zstd")] * 2000):
        hostile = server.client()
        with pytest.raises(pa.ArrowException) as e:
            get(hostile, "SELECT 1", opts(*headers))
        # gRPC's refusal: its metadata-limit error, or (a race in gRPC, seen under ASan) the
        # stream reset as the server's transport drops the oversized headers
        assert "metadata" in str(e.value) or "Stream removed" in str(e.value)
        hostile.close()
        fresh = server.client()
        still_serving(fresh)
        fresh.close()
    assert first + reader.read_all().num_rows == 3000000
    other.close()


def test_compression_header_repeated_first_value_counts(client):
    """Repeated headers: the first one decides (documented nowhere, but it must not crash or mix
    codecs); a conflicting later value does not change the data."""
    table = get(client, "SELECT range AS i FROM range(1000)")
    assert get(client, "SELECT range AS i FROM range(1000)",
               opts((HEADER, b"zstd"), (HEADER, b"gzip"))).equals(table)
    with pytest.raises(pa.ArrowInvalid, match="gzip"):
        get(client, "SELECT 1", opts((HEADER, b"gzip"), (HEADER, b"zstd")))
    assert get(client, "SELECT range AS i FROM range(1000)",
               opts((HEADER, b"lz4"), (HEADER, b"zstd"))).equals(table)


def test_compression_header_on_other_rpcs_is_ignored(client):
    bad = opts((HEADER, b"gzip"))
    o = flight.FlightCallOptions(headers=[(HEADER, b"gzip")])
    writer, _ = client.do_put(flight.FlightDescriptor.for_path("t"),
                              pa.schema([("a", pa.int32())]), options=o)
    writer.write_table(pa.table({"a": pa.array([1, 2, 3], pa.int32())}))
    writer.close()
    info = client.get_flight_info(flight.FlightDescriptor.for_path("t"), options=bad)
    assert info.total_records == 3
    assert [f.descriptor.path for f in client.list_flights(options=bad)] == [[b"main", b"t"]]
    assert client.get_schema(flight.FlightDescriptor.for_command(b"SELECT * FROM t"),
                             options=bad).schema.names == ["a"]
    list(client.list_actions(options=bad))
    assert get(client, "SELECT sum(a) AS s FROM t").to_pydict() == {"s": [6]}


def test_compression_header_binary_key_with_nul_bytes_is_ignored(client):
    table = get(client, "SELECT 7 AS x", opts((b"wigeon-compression-bin", b"\xff\x00zstd")))
    assert table.to_pydict() == {"x": [7]}
    still_serving(client)


@pytest.mark.parametrize("value", [b"zstd", b"lz4"])
def test_compressed_results_with_dictionaries_nesting_and_no_rows(client, value):
    sql = ("SELECT (['a', 'b', 'c'][range % 3 + 1])::ENUM('a', 'b', 'c') AS e, [range, NULL] AS l, "
           "{'s': range::VARCHAR, 'n': NULL::INTEGER} AS s FROM range(100000)")
    plain = get(client, sql)
    assert get(client, sql, opts((HEADER, value))).equals(plain)
    empty = get(client, sql + " WHERE false", opts((HEADER, value)))
    assert empty.num_rows == 0 and empty.schema.equals(plain.schema)


# ---- the schema sent before a SELECT runs ----

@pytest.mark.parametrize("sql", [
    "SELECT NULL AS n", "SELECT [] AS l", "SELECT [NULL] AS l", "SELECT MAP {} AS m",
    "SELECT 'a'::ENUM('a', 'b') AS e", "SELECT union_value(k := 1) AS u", "SELECT '{}'::JSON AS j",
    "SELECT 1.5 AS d", "SELECT '1'::VARINT AS v", "SELECT [1, 2]::INTEGER[2] AS a",
    "SELECT (SELECT NULL) AS x", "SELECT * FROM range(3) t(a), (SELECT NULL) u",
    "SELECT CASE WHEN random() < 2 THEN NULL END AS x", "SELECT unnest([1, 2]) AS x",
    "SELECT now() AS ts", "SELECT INTERVAL 1 DAY AS i", "SELECT 1::BIT AS b",
    "SELECT {'a': NULL, 'b': [NULL]} AS s",
])
def test_early_schema_of_loosely_typed_selects_is_not_a_false_change(client, sql):
    """The schema from the prepared statement must match the result's for types DuckDB resolves
    late (NULL, empty lists, ENUM, UNION): a false 'columns changed' would make these unusable."""
    reader = client.do_get(flight.Ticket(sql.encode()))
    table = reader.read_all()
    assert table.schema.equals(reader.schema)
    assert table.num_rows >= 1


def test_early_schema_then_a_runtime_error_is_a_clean_error(client):
    sql = ("SELECT CASE WHEN i > 100000 THEN error('boom at ' || i) ELSE i END AS v "
           "FROM range(200000) t(i)")
    reader = client.do_get(flight.Ticket(sql.encode()))
    assert reader.schema.names == ["v"]
    with pytest.raises(pa.ArrowException, match="boom at"):
        reader.read_all()
    still_serving(client)


def test_wider_than_the_early_schema_limit_still_answers(client):
    cols = ", ".join(f"{i} AS c{i}" for i in range(300))
    table = get(client, f"SELECT {cols}")
    assert table.num_columns == 300 and table.column("c299").to_pylist() == [299]


REPLACE_AS_TEXT = ("CREATE OR REPLACE TABLE t AS SELECT range::VARCHAR AS a FROM range(20000)",
                   "CREATE OR REPLACE TABLE t AS SELECT range AS a FROM range(20000)")
ADD_DROP = ("ALTER TABLE t ADD COLUMN x{i} INTEGER DEFAULT {i}", "ALTER TABLE t DROP COLUMN x{i}")


def alter_while_selecting(server, statements):
    """One thread alters t in a loop while three read SELECT * FROM t 40 times each. Returns the
    outcomes ({"ok": n, "refused": n, "messages": {...}}) and the threads' failures."""
    stop = threading.Event()
    errors, outcomes = [], {"ok": 0, "refused": 0, "messages": set()}

    def alter():
        c = server.client()
        try:
            i = 0
            while not stop.is_set():
                get(c, statements[0].format(i=i))
                get(c, statements[1].format(i=i))
                i += 1
        except Exception as e:  # noqa: BLE001 - any failure of the alterer is a finding
            errors.append(f"alter: {e!r}")
        finally:
            c.close()

    def select():
        c = server.client()
        try:
            for _ in range(40):
                try:
                    reader = c.do_get(flight.Ticket(b"SELECT * FROM t"))
                    table = reader.read_all()
                except pa.ArrowException as e:
                    assert "Socket closed" not in str(e) and "internal" not in str(e).lower(), e
                    outcomes["refused"] += 1
                    outcomes["messages"].add(str(e).split(". gRPC")[0][:160])
                    continue
                assert table.schema.equals(reader.schema)
                assert table.num_rows == 20000
                values = table.column("a").to_pylist()
                assert values == list(range(20000)) or sorted(map(int, values)) == \
                    list(range(20000)), table.schema
                outcomes["ok"] += 1
        except Exception as e:  # noqa: BLE001
            errors.append(f"select: {e!r}")
        finally:
            c.close()

    threads = [threading.Thread(target=alter)] + [threading.Thread(target=select) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join(timeout=120)
    stop.set()
    threads[0].join(timeout=60)
    return outcomes, errors


@pytest.mark.parametrize("statements", [ADD_DROP, REPLACE_AS_TEXT], ids=["add_drop", "replace"])
def test_concurrent_alter_while_selecting_gives_whole_results_or_clean_errors(server, statements):
    """A table altered (or replaced with another type) between the early schema and the run: each
    SELECT gives the whole table with the schema it announced, or a clean error (ABORTED)."""
    setup = server.client()
    put(setup, "t", pa.table({"a": pa.array(range(20000), pa.int64())}))
    outcomes, errors = alter_while_selecting(server, statements)
    assert errors == []
    assert outcomes["ok"] > 0
    for m in outcomes["messages"]:
        assert "aborted" in m and "changed between its prepare and its run" in m, m
    assert get(setup, "SELECT count(*) AS n, sum(a) AS s FROM t").to_pydict() == {
        "n": [20000], "s": [sum(range(20000))]}
    setup.close()


def test_checkpoint_right_after_aborted_selects_succeeds(server):
    """A DoGet refused ABORTED (its columns changed after the early schema went out) leaves no
    transaction open on its pooled connection: CHECKPOINT right after works, round after round,
    and so does the SIGTERM checkpoint at the end (the fixture checks the exit)."""
    setup = server.client()
    put(setup, "t", pa.table({"a": pa.array(range(20000), pa.int64())}))
    try:
        aborted = 0
        for _ in range(24):  # the bug shows in about every other round
            outcomes, errors = alter_while_selecting(server, ADD_DROP)
            assert errors == []
            aborted += outcomes["refused"]
            get(setup, "CHECKPOINT")
        # aborted may be 0: a query is now prepared in the transaction it runs in (sql.c,
        # snapshot), so an ALTER between its schema and its rows rarely reaches it
    finally:
        setup.close()


def test_many_early_schema_queries_cancelled_leave_the_server_serving(server):
    sql = b"SELECT count(*) FROM range(100000000) a, range(100000) b"
    clients = [server.client() for _ in range(8)]
    readers = [c.do_get(flight.Ticket(sql)) for c in clients]
    for r in readers:
        assert r.schema.names == ["count_star()"]  # sent before the query runs
    for r in readers:
        r.cancel()
    for c in clients:
        c.close()
    c = server.client()
    start = time.monotonic()
    still_serving(c)
    assert time.monotonic() - start < 20
    c.close()


@pytest.mark.xfail(strict=True, reason="BUG (older than issue 10): PIVOT without an IN list is "
                   "refused 'Cannot prepare multiple statements at once!' (one statement sent): "
                   "every query goes through duckdb_prepare (src/engine/arrow_duck.c:413) and "
                   "DuckDB rewrites such a PIVOT into several; in-process duckdb runs it; run "
                   "those through duckdb_extract_statements or say to list the IN values")
def test_pivot_without_an_in_list_answers(client):
    get(client, "CREATE TABLE pv AS SELECT range % 3 AS k, range AS v FROM range(10)")
    assert get(client, "PIVOT pv ON k IN (0, 1, 2) USING sum(v)").num_rows == 1
    assert get(client, "PIVOT pv ON k USING sum(v)").num_rows == 1


# ---- refusals that name a column and its type ----

def test_refusal_message_escapes_control_characters_in_column_names(client):
    """A column name holding ESC, CR and LF is shown escaped (\\u001b ...) in the refusal."""
    with pytest.raises(pa.ArrowInvalid) as e:
        put(client, "t", pa.table({"c\x1b[31m\r\nFAKE": float16_column()}))
    message = str(e.value)
    assert "cannot store Arrow type halffloat" in message  # the refusal itself works
    assert "\x1b" not in message and "\r\nFAKE" not in message


def test_refusal_of_a_one_megabyte_column_name_still_names_the_type(client):
    """A 1 MB column name is cut in the refusal, which still names the type it refuses."""
    with pytest.raises(pa.ArrowInvalid) as e:
        put(client, "t", pa.table({"n" * (1 << 20): float16_column()}))
    assert "halffloat" in str(e.value)
    still_serving(client)


@pytest.mark.parametrize("prefix", ["", "x", "xx"])
def test_refusal_message_cut_mid_name_is_still_valid_utf8(client, prefix):
    """Whatever the cut, one of "", "x", "xx" before 2-byte characters lands mid-character."""
    with pytest.raises(pa.ArrowInvalid) as e:
        put(client, "t", pa.table({prefix + "\u00e9" * 400: float16_column()}))
    assert "\ufffd" not in str(e.value)
    still_serving(client)


@pytest.mark.parametrize("prefix", ["", "x"])
def test_query_error_with_a_long_non_ascii_name_is_valid_utf8(client, prefix):
    name = prefix + "\u00e9" * 400
    with pytest.raises(pa.ArrowException) as e:
        get(client, f'SELECT * FROM "{name}"')
    assert "Catalog Error: Table with name" in str(e.value)
    assert "\ufffd" not in str(e.value)
    still_serving(client)


def test_refusal_of_deeply_nested_and_wide_types_is_bounded(client):
    deep = pa.float16()
    for _ in range(60):
        deep = pa.list_(deep)
    nested = pa.float16()
    for _ in range(60):
        nested = pa.struct([("s", nested)])
    wide = pa.struct([(f"f{i}", pa.int32()) for i in range(3000)] + [("h", pa.float16())])
    for name, t in [("deep", deep), ("nested", nested), ("wide", wide)]:
        with pytest.raises(pa.ArrowInvalid) as e:
            put(client, name, pa.table({"d": pa.array([None], t)}))
        assert 'column "d": DuckDB cannot store Arrow type' in str(e.value)
        assert len(str(e.value)) < 4096
    still_serving(client)
    assert list(client.list_flights()) == []


@pytest.mark.parametrize("column", [
    float16_column(),
    pa.array([1], pa.decimal256(40, 2)),
    pa.RunEndEncodedArray.from_arrays([1], [5]),
    pa.UnionArray.from_dense(pa.array([0], pa.int8()), pa.array([0], pa.int32()), [pa.array([1])]),
    pa.array([None], pa.null()),
])
def test_refused_types_leave_no_table_and_a_writable_database(client, column):
    with pytest.raises(pa.ArrowInvalid, match='column "c"'):
        put(client, "t", pa.table({"c": column}))
    put(client, "ok", pa.table({"a": pa.array([1, 2], pa.int32())}))
    assert [f.descriptor.path for f in client.list_flights()] == [[b"main", b"ok"]]
    assert get(client, "SELECT sum(a) AS s FROM ok").to_pydict() == {"s": [3]}


# ---- ListFlights criteria ----

def test_criteria_huge_match_nothing_and_the_server_serves(client):
    put(client, "Some_Table", pa.table({"a": pa.array([1], pa.int32())}))
    for size in (1 << 20, 8 << 20):
        assert list(client.list_flights(b"x" * size)) == []
    still_serving(client)


def test_criteria_are_literal_case_insensitive_substrings(client):
    for name in ("Some_Table", "someXtable", "caf\u00e9"):
        put(client, name, pa.table({"a": pa.array([1], pa.int32())}))

    def names(criteria):
        return sorted(f.descriptor.path[1].decode() for f in client.list_flights(criteria))
    assert names(b"_") == ["Some_Table"]  # not a LIKE wildcard
    assert names(b"%") == []
    assert names(b"SOME") == ["Some_Table", "someXtable"]
    assert names("CAF\u00c9".encode()) == ["caf\u00e9"]


@pytest.mark.parametrize("criteria,why", [(b"\xff", "not valid UTF-8"), (b"a\x00b", "NUL byte"),
                                          (b"\xc3", "not valid UTF-8"),
                                          (b"\xed\xa0\x80", "not valid UTF-8")])
def test_criteria_not_utf8_or_with_nul_are_invalid_argument(client, criteria, why):
    with pytest.raises(pa.ArrowInvalid, match=why):
        list(client.list_flights(criteria))
    still_serving(client)


# ---- compressed puts ----

@pytest.mark.parametrize("codec", ["zstd", "lz4"])
def test_compressed_puts_round_trip_compressible_random_and_empty(client, codec):
    rng = np.random.default_rng(11)
    table = pa.table({
        "rand": pa.array(rng.integers(-2**62, 2**62, 30000), pa.int64()),  # stored raw (-1)
        "same": pa.array(np.zeros(30000, dtype=np.int64)),
        "s": pa.array([None if i % 5 == 0 else "x" * (i % 50) for i in range(30000)]),
    })
    put(client, "t", table, compression=codec, max_chunksize=7000)
    put(client, "t", table.slice(0, 0), compression=codec)
    back = get(client, "SELECT * FROM t")
    assert back.num_rows == 30000
    assert back.column("rand").to_pylist() == table.column("rand").to_pylist()
    assert back.column("s").to_pylist() == table.column("s").to_pylist()


def test_compressed_put_over_the_decompression_limit_is_a_clean_refusal(client):
    table = pa.table({"z": pa.array(np.zeros((300 << 20) // 8, dtype=np.int64))})
    with pytest.raises(pa.ArrowInvalid, match="decompresses to"):
        put(client, "t", table, compression="zstd")
    assert list(client.list_flights()) == []
    still_serving(client)


def test_compressed_put_of_very_compressible_data_is_accepted(client):
    """64 MiB of zeros in one batch is taken whether sent raw, lz4 or zstd (which shrinks it
    ~10,000 times): the server bounds decompressed bytes a message, not their ratio."""
    table = pa.table({"z": pa.array(np.zeros((64 << 20) // 8, dtype=np.int64))})
    put(client, "raw", table)
    put(client, "lz4", table, compression="lz4")
    put(client, "zstd", table, compression="zstd")
    assert get(client, "SELECT count(*) AS n FROM zstd").to_pydict() == {"n": [(64 << 20) // 8]}
