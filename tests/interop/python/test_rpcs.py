"""Every Flight RPC of the server, called through pyarrow's own client API (issue 10, item 3).

What pyarrow exposes is what a Python user sees: FlightInfo fields, endpoints and their tickets,
schemas, action results, handshake, and the exact exception class of what is not built yet.
"""

import json
import threading

import pyarrow as pa
import pyarrow.flight as flight
import pytest


def put(client, path, table):
    """do_put the table into path (a name or (schema, name)); returns the PutResult's JSON."""
    names = [path] if isinstance(path, str) else list(path)
    writer, reader = client.do_put(flight.FlightDescriptor.for_path(*names), table.schema)
    writer.write_table(table)
    writer.done_writing()
    ack = reader.read()
    writer.close()
    return json.loads(ack.to_pybytes())


def action(client, kind, body=b""):
    """The action's results, each body parsed as JSON."""
    return [json.loads(r.body.to_pybytes()) for r in client.do_action(flight.Action(kind, body))]


def query(client, sql):
    return client.do_get(flight.Ticket(sql.encode("utf-8"))).read_all()


def sample(n, offset=0):
    return pa.table({"id": pa.array(range(offset, offset + n), pa.int64()),
                     "name": pa.array([f"n{i}" for i in range(offset, offset + n)], pa.string())})


def make_tables(client):
    """main.sales_2024 (3 rows), main.Sales_Archive (2), main.users (1), other.sales_eu (4)."""
    action(client, "execute", b"CREATE SCHEMA other")
    put(client, "sales_2024", sample(3))
    put(client, "Sales_Archive", sample(2))
    put(client, "users", sample(1))
    put(client, ("other", "sales_eu"), sample(4))


def listed(client, criteria=b""):
    return {tuple(p.decode() for p in f.descriptor.path): f
            for f in client.list_flights(criteria)}


def test_list_flights_describes_every_table_with_a_readable_endpoint(client):
    """ListFlights gives one FlightInfo per table of every schema: PATH [schema, table], exact
    total_records, total_bytes -1 (unknown), the schema, and one endpoint without a location whose
    ticket do_get reads as the table; the listed descriptor works with get_flight_info."""
    make_tables(client)
    infos = listed(client)
    assert sorted(infos) == [("main", "Sales_Archive"), ("main", "sales_2024"), ("main", "users"),
                             ("other", "sales_eu")]
    rows = {("main", "Sales_Archive"): 2, ("main", "sales_2024"): 3, ("main", "users"): 1,
            ("other", "sales_eu"): 4}
    for path, info in infos.items():
        assert info.descriptor.descriptor_type == flight.DescriptorType.PATH
        assert info.total_records == rows[path]
        assert info.total_bytes == -1
        assert info.schema.equals(sample(1).schema, check_metadata=True)
        assert len(info.endpoints) == 1
        assert info.endpoints[0].locations == []
        table = client.do_get(info.endpoints[0].ticket).read_all()
        assert table.sort_by("id").equals(sample(rows[path]))
        again = client.get_flight_info(info.descriptor)
        assert again.total_records == rows[path]
        assert again.schema.equals(info.schema, check_metadata=True)


def test_list_flights_criteria_is_a_case_insensitive_part_of_the_table_name(client):
    """Criteria, when given, is text the table name must contain, in any case; not a pattern
    (% matches nothing), not the schema name; empty criteria lists everything."""
    make_tables(client)
    sales = [("main", "Sales_Archive"), ("main", "sales_2024"), ("other", "sales_eu")]
    assert sorted(listed(client, b"sales")) == sales
    assert sorted(listed(client, b"SALES")) == sales
    assert sorted(listed(client, b"_20")) == [("main", "sales_2024")]
    assert sorted(listed(client, b"users")) == [("main", "users")]
    assert listed(client, b"%") == {}
    assert listed(client, b"other") == {}
    assert listed(client, b"nothing like it") == {}
    assert len(listed(client, b"")) == 4
    assert len(listed(client)) == 4


@pytest.mark.parametrize("criteria, why", [(b"\xffsales", "is not valid UTF-8"),
                                           (b"sales\x00zz", "contains a NUL byte")])
def test_list_flights_criteria_must_be_text(client, criteria, why):
    """Criteria that is not UTF-8, or holds a NUL (a C string would cut it), is refused as
    INVALID_ARGUMENT naming the problem, instead of DuckDB's unrelated binding error or a filter
    silently cut short."""
    make_tables(client)
    with pytest.raises(pa.ArrowInvalid) as e:
        list(client.list_flights(criteria))
    assert f"ListFlights criteria (a part of table names to match) {why}" in str(e.value)
    assert len(listed(client)) == 4


def test_get_flight_info_of_a_path_describes_the_table(client):
    """GetFlightInfo(PATH) echoes the descriptor, counts the rows exactly, says total_bytes -1,
    and its one endpoint's ticket reads the table with exactly FlightInfo.schema."""
    t = pa.table({"k": pa.array([1, 2, 3], pa.int32()), "v": [0.5, None, 2.5],
                  "s": ["a", "b", None]})
    put(client, "t", t)
    info = client.get_flight_info(flight.FlightDescriptor.for_path("t"))
    assert info.descriptor == flight.FlightDescriptor.for_path("t")
    assert info.total_records == 3
    assert info.total_bytes == -1
    assert len(info.endpoints) == 1 and info.endpoints[0].locations == []
    got = client.do_get(info.endpoints[0].ticket).read_all()
    assert got.schema.equals(info.schema, check_metadata=True)
    assert got.sort_by("k").equals(t)
    assert client.get_schema(flight.FlightDescriptor.for_path("t")).schema.equals(
        info.schema, check_metadata=True)
    schema_path = flight.FlightDescriptor.for_path("main", "t")
    assert client.get_flight_info(schema_path).total_records == 3


def test_get_flight_info_of_a_command_prepares_without_running(client):
    """GetFlightInfo(CMD) prepares the SQL but does not run it: a query that fails only when run
    (error()) still has a FlightInfo with its schema and total_records -1; its ticket, given to
    do_get, runs it and fails with the query's own message."""
    sql = "SELECT 1::INTEGER AS a, error('ran it') AS b"
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql))
    assert info.descriptor == flight.FlightDescriptor.for_command(sql)
    assert info.total_records == -1
    assert info.total_bytes == -1
    assert info.schema.names == ["a", "b"]
    assert info.schema.field("a").type == pa.int32()
    assert info.endpoints[0].ticket.ticket == sql.encode()
    with pytest.raises(pa.ArrowInvalid, match="ran it"):
        client.do_get(info.endpoints[0].ticket).read_all()


# SQL expressions of the DuckDB types a query can return; each FlightInfo/GetSchema schema must be
# the schema do_get then streams.
TYPED_SQL = [
    "SELECT 1::TINYINT a, 2::SMALLINT b, 3::INTEGER c, 4::BIGINT d, 5::HUGEINT e",
    "SELECT 1::UTINYINT a, 2::USMALLINT b, 3::UINTEGER c, 4::UBIGINT d, 5::UHUGEINT e",
    "SELECT 1.5::FLOAT a, 2.5::DOUBLE b, 1.25::DECIMAL(4,2) c, 1.25::DECIMAL(18,3) d, "
    "1.25::DECIMAL(38,10) e",
    "SELECT DATE '2024-01-02' a, TIME '12:34:56' b, TIMESTAMP '2024-01-02 03:04:05' c, "
    "TIMESTAMPTZ '2024-01-02 03:04:05+00' d, INTERVAL 3 DAY e, TIMESTAMP_S '2024-01-02' f, "
    "TIMESTAMP_MS '2024-01-02' g, TIMESTAMP_NS '2024-01-02' h",
    "SELECT 'x'::VARCHAR a, '\\x01'::BLOB b, uuid() c, true d, NULL::INTEGER e",
    "SELECT [1, 2] a, {'x': 1, 'y': 'z'} b, MAP {'k': 1} c, [[1], NULL] d, [1, 2]::INTEGER[2] e",
    "SELECT 'b'::ENUM ('a', 'b') a, range AS r FROM range(5000)",
]


@pytest.mark.parametrize("sql", TYPED_SQL)
def test_flight_info_schema_is_the_schema_do_get_streams(client, sql):
    """For queries over many DuckDB types, GetFlightInfo's and GetSchema's schema (from prepare)
    equal, metadata included, the schema of the stream do_get returns for the endpoint's ticket."""
    cmd = flight.FlightDescriptor.for_command(sql)
    info = client.get_flight_info(cmd)
    reader = client.do_get(info.endpoints[0].ticket)
    assert reader.schema.equals(info.schema, check_metadata=True)
    table = reader.read_all()
    assert table.schema.equals(info.schema, check_metadata=True)
    assert client.get_schema(cmd).schema.equals(info.schema, check_metadata=True)
    assert table.num_rows >= 1


def test_get_schema_of_path_and_command(client):
    """GetSchema gives the table's schema for a PATH and the query's for a CMD."""
    put(client, "g", sample(2))
    assert client.get_schema(flight.FlightDescriptor.for_path("g")).schema.equals(
        sample(0).schema, check_metadata=True)
    got = client.get_schema(flight.FlightDescriptor.for_command(
        "SELECT id * 2 AS twice, name FROM g"))
    assert got.schema.equals(pa.schema([("twice", pa.int64()), ("name", pa.string())]))


def test_list_actions_describes_every_action(client):
    """ListActions names our four actions, then Flight SQL's and Flight's own, each with a
    non-empty description."""
    listed = [a.type for a in client.list_actions()]
    actions = {a.type: a.description for a in client.list_actions()}
    assert listed[:4] == ["execute", "drop_table", "checkpoint", "stats"]
    assert {"CreatePreparedStatement", "ClosePreparedStatement", "BeginTransaction",
            "EndTransaction", "CancelFlightInfo", "CancelQuery"} <= set(listed)
    for kind, description in actions.items():
        assert description.strip(), kind
    assert "rows_changed" in actions["execute"]


STATS_KEYS = {"calls", "errors", "active_calls", "gets", "puts", "rows_in", "rows_out",
              "bytes_in", "bytes_out", "commit_groups", "grouped_puts", "stalled_gets",
              "connections", "connections_accepted", "connections_refused", "parked_calls",
              "tail_subscribers", "tail_filter_queries"}


def test_do_action_results_are_json(client):
    """Each action answers one Result whose body json.loads reads: execute's rows_changed (summed
    over statements), drop_table's dropped name, checkpoint's true, stats' counters."""
    assert action(client, "execute", b"CREATE TABLE a (x INTEGER)") == [{"rows_changed": 0}]
    assert action(client, "execute", b"INSERT INTO a VALUES (1), (2); INSERT INTO a VALUES (3)") \
        == [{"rows_changed": 3}]
    assert query(client, "SELECT count(*) AS n FROM a").to_pylist() == [{"n": 3}]
    assert action(client, "checkpoint") == [{"checkpoint": True}]
    [stats] = action(client, "stats")
    assert set(stats) == STATS_KEYS
    assert all(isinstance(v, int) for v in stats.values())
    assert stats["gets"] >= 1 and stats["active_calls"] >= 1 and stats["connections"] >= 1
    assert action(client, "drop_table", b"a") == [{"dropped": "a"}]
    action(client, "execute", b"CREATE SCHEMA s; CREATE TABLE s.b (x INTEGER)")
    assert action(client, "drop_table", b"s.b") == [{"dropped": "b", "schema": "s"}]
    assert listed(client) == {}


class PayloadHandshake(flight.ClientAuthHandler):
    """A client auth handler that sends one payload and keeps what the server answers."""

    def __init__(self, payload):
        super().__init__()
        self.payload = payload
        self.answer = None

    def authenticate(self, outgoing, incoming):
        outgoing.write(self.payload)
        self.answer = incoming.read()

    def get_token(self):
        return b""


def test_handshake_is_answered_without_authentication(client):
    """Handshake through pyarrow's authenticate succeeds with an empty answer (no authentication
    yet), basic-token authentication succeeds with no bearer token, and calls go on as before."""
    handler = PayloadHandshake(b"hello")
    client.authenticate(handler)
    assert handler.answer == b""
    assert client.authenticate_basic_token("user", "password") == (b"", b"")
    assert query(client, "SELECT 42 AS x").to_pylist() == [{"x": 42}]


def test_do_exchange_of_a_flight_sql_command_is_unimplemented(client):
    """DoExchange serves SQL (test_exchange.py); a Flight SQL command there is UNIMPLEMENTED
    naming it, which pyarrow 26 raises as exactly pyarrow.lib.ArrowNotImplementedError (it has no
    FlightUnimplementedError), with the server's message; the connection goes on serving."""
    assert not hasattr(flight, "FlightUnimplementedError")
    url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementSubstraitPlan"
    any_cmd = b"\x0a" + bytes([len(url)]) + url + b"\x12\x00"
    with pytest.raises(pa.ArrowNotImplementedError) as e:
        writer, reader = client.do_exchange(flight.FlightDescriptor.for_command(any_cmd))
        writer.begin(sample(1).schema)
        writer.write_table(sample(1))
        writer.done_writing()
        reader.read_all()
    assert type(e.value) is pa.lib.ArrowNotImplementedError
    assert str(e.value).startswith("Flight returned unimplemented error, with message: "
                                   "DoExchange: Flight SQL command CommandStatementSubstraitPlan "
                                   "is not supported by this server yet")
    assert query(client, "SELECT 1 AS x").to_pylist() == [{"x": 1}]


def in_thread(fn, timeout=60):
    """Runs fn() in another thread: (returned, raised), both None if it did not end in time."""
    out = {}

    def run():
        try:
            out["returned"] = fn()
        except BaseException as e:  # noqa: B902 - handed back to the test
            out["raised"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    return out.get("returned"), out.get("raised")


LONG_AGGREGATE = b"SELECT sum(hash(i)) AS s FROM range(1000000000000) t(i)"


def test_do_get_returns_its_reader_before_a_long_query_finishes(client):
    """do_get waits for the stream's schema; the server sends a SELECT's schema before DuckDB
    runs it, so do_get returns (with reader.schema) while an aggregate that would run for hours
    works, and the reader can be cancelled. It used to block until the first batch.
    Reading a cancelled reader raises KeyboardInterrupt in pyarrow 26: its read_all turns any
    ArrowCancelled (FlightCancelledError is one) into a simulated SIGINT of the main thread."""
    reader, raised = in_thread(lambda: client.do_get(flight.Ticket(LONG_AGGREGATE)))
    assert raised is None
    assert reader is not None, "do_get did not return within 60 s of a query that runs for hours"
    assert reader.schema.names == ["s"]
    reader.cancel()
    with pytest.raises(KeyboardInterrupt):
        reader.read_all()
    assert query(client, "SELECT 7 AS x").to_pylist() == [{"x": 7}]
