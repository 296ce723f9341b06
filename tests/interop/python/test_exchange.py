"""DoExchange with pyarrow (docs/exchange.md): SQL over a stream of batches, seen as `input`.

Round trips (filter, a join with a table, an aggregate per batch, an upsert with its count),
lock-step (one batch, its result, the next), an unbounded input through a filter with the server's
peak memory bounded, errors mid-stream, a cancel that leaves nothing inserted, a read user's
INSERT refused, and the classifier's answers for what is not SQL."""

import json
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import sanitized


def cmd(sql, per_batch=None):
    if per_batch is None:
        return flight.FlightDescriptor.for_command(sql.encode())
    return flight.FlightDescriptor.for_command(json.dumps({"sql": sql, "per_batch": per_batch}))


def batch(start, n):
    ids = pa.array(range(start, start + n), pa.int64())
    return pa.record_batch([ids, pa.compute.remainder(ids, 10), pa.array(
        [f"name{i}" for i in range(start, start + n)])], names=["id", "k", "name"])


SCHEMA = batch(0, 1).schema


def exchange(client, descriptor, batches, schema=SCHEMA):
    writer, reader = client.do_exchange(descriptor)
    with writer:
        writer.begin(schema)
        for b in batches:
            writer.write_batch(b)
        writer.done_writing()
        table = reader.read_all()
    return table


def sql(client, text):
    return client.do_get(flight.Ticket(text.encode())).read_all()


def test_filter_round_trip(client):
    t = exchange(client, cmd("SELECT id, name FROM input WHERE k = 3"),
                 [batch(i * 1000, 1000) for i in range(20)])
    assert t.num_rows == 2000
    assert t.schema.names == ["id", "name"]
    assert sorted(t.column("id").to_pylist()) == list(range(3, 20000, 10))


def test_enrich_join_with_a_table(client):
    sql(client, "CREATE TABLE dim AS SELECT range AS k, 'label' || range AS label FROM range(10)")
    t = exchange(client, cmd("SELECT i.id, d.label FROM input i JOIN dim d USING (k) "
                             "ORDER BY i.id"), [batch(0, 500), batch(500, 500)])
    assert t.num_rows == 1000
    assert t.column("label").to_pylist()[:3] == ["label0", "label1", "label2"]


def test_aggregate_per_batch(client):
    t = exchange(client, cmd("SELECT count(*) AS n, sum(id) AS s FROM input", per_batch=True),
                 [batch(0, 10), batch(10, 20), batch(30, 5)])
    assert t.column("n").to_pylist() == [10, 20, 5]
    assert t.column("s").to_pylist() == [sum(range(0, 10)), sum(range(10, 30)),
                                         sum(range(30, 35))]


def test_aggregate_over_the_whole_input(client):
    t = exchange(client, cmd("SELECT count(*) AS n FROM input"), [batch(0, 10), batch(10, 20)])
    assert t.column("n").to_pylist() == [30]


def test_upsert_returns_its_count(client):
    sql(client, "CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR)")
    sql(client, "INSERT INTO t SELECT range, 'old' FROM range(5)")
    t = exchange(client, cmd("INSERT INTO t SELECT id, name FROM input "
                             "ON CONFLICT (id) DO UPDATE SET name = excluded.name"),
                 [batch(0, 10)])
    assert t.schema.names == ["Count"]
    assert t.column(0).to_pylist() == [10]
    assert sql(client, "SELECT count(*) AS n FROM t").column(0).to_pylist() == [10]
    assert sql(client, "SELECT name FROM t WHERE id = 2").column(0).to_pylist() == ["name2"]


def test_lock_step_per_batch(client):
    """pyarrow users write one batch and read its result before the next: per_batch answers
    each batch before it reads the next."""
    writer, reader = client.do_exchange(cmd("SELECT id * 2 AS twice FROM input", per_batch=True))
    with writer:
        writer.begin(SCHEMA)
        for i in range(5):
            writer.write_batch(batch(i * 100, 100))
            chunk = reader.read_chunk()
            assert chunk.data.column(0).to_pylist() == [2 * j for j in range(i * 100, i * 100 + 100)]
        writer.done_writing()
        with pytest.raises(StopIteration):
            reader.read_chunk()


def test_per_batch_result_of_other_types_is_refused(client):
    """The stream's schema goes out with the first batch's result; a later run over a table
    replaced with other types meanwhile gives columns of other types, which cannot be sent under
    it (sending them anyway read past the buffers, sending server memory)."""
    list(client.do_action(flight.Action("execute", b"CREATE TABLE dim AS SELECT 7::BIGINT AS x")))
    writer, reader = client.do_exchange(cmd("SELECT dim.x FROM input, dim", per_batch=True))
    writer.begin(SCHEMA)
    writer.write_batch(batch(0, 3))
    assert reader.read_chunk().data.column(0).to_pylist() == [7, 7, 7]
    list(client.do_action(flight.Action(
        "execute", b"CREATE OR REPLACE TABLE dim AS SELECT 8::INTEGER AS x")))
    writer.write_batch(batch(3, 3))
    with pytest.raises(pa.ArrowInvalid, match="other columns or types"):
        reader.read_chunk()
    with pytest.raises(pa.ArrowInvalid):
        writer.close()


def test_lock_step_streaming_waits(client):
    """Streaming (the default), DuckDB reads ahead of its output: a client that waits for the
    first result before sending more waits until its deadline (docs/exchange.md says so)."""
    opts = flight.FlightCallOptions(timeout=2)
    writer, reader = client.do_exchange(cmd("SELECT id FROM input"), opts)
    writer.begin(SCHEMA)
    writer.write_batch(batch(0, 10))
    t0 = time.monotonic()
    with pytest.raises((flight.FlightTimedOutError, flight.FlightCancelledError, pa.ArrowException)):
        reader.read_chunk()
        reader.read_chunk()
    assert time.monotonic() - t0 >= 1.0
    # the server is fine afterwards
    assert sql(client, "SELECT 42 AS x").column(0).to_pylist() == [42]


def vm_hwm_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.large
def test_unbounded_input_streams_with_bounded_memory(wigeon_server):
    """2 GB streamed through a filter: the results come back while input still goes in, and the
    server's peak RSS stays far below the input's size."""
    server = wigeon_server(db=":memory:")
    client = server.client()
    rows = 1 << 16
    payload = pa.array([b"x" * 240] * rows, pa.binary())
    ids = pa.array(range(rows), pa.int64())
    schema = pa.schema([("id", pa.int64()), ("p", pa.binary())])
    one = pa.record_batch([ids, payload], schema=schema)  # ~16.5 MB
    n_batches = (2 << 30) // one.nbytes + 1
    writer, reader = client.do_exchange(cmd("SELECT id FROM input WHERE id % 65536 = 7"))
    got = {"rows": 0}

    def read():
        for chunk in reader:
            got["rows"] += chunk.data.num_rows

    t = threading.Thread(target=read)
    with writer:
        writer.begin(schema)
        t.start()
        for _ in range(n_batches):
            writer.write_batch(one)
        writer.done_writing()
        t.join(600)
    assert got["rows"] == n_batches
    peak = vm_hwm_mb(server.pid)
    print(f"server peak RSS {peak:.0f} MB for {n_batches * one.nbytes / 2**30:.1f} GB in")
    assert peak < 600, f"server peak RSS {peak:.0f} MB for a 2 GB input"
    client.close()


def test_cast_failing_on_a_later_row(client):
    names = pa.schema([("v", pa.string())])
    good = [pa.record_batch([pa.array([str(i) for i in range(j * 100, j * 100 + 100)])],
                            schema=names) for j in range(3)]
    bad = pa.record_batch([pa.array(["1", "oops"])], schema=names)
    with pytest.raises(pa.ArrowInvalid, match="Conversion Error"):
        exchange(client, cmd("SELECT CAST(v AS INTEGER) AS i FROM input"), good + [bad], names)
    assert sql(client, "SELECT 1 AS x").column(0).to_pylist() == [1]


def test_constraint_violation_rolls_the_insert_back(client):
    sql(client, "CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR)")
    sql(client, "INSERT INTO t VALUES (5, 'kept')")
    with pytest.raises(pa.ArrowException, match="(?i)duplicate key"):
        exchange(client, cmd("INSERT INTO t SELECT id, name FROM input"),
                 [batch(100, 50), batch(0, 10)])  # 5 is there already
    assert sql(client, "SELECT count(*) AS n FROM t").column(0).to_pylist() == [1]
    assert sql(client, "SELECT name FROM t").column(0).to_pylist() == ["kept"]


def test_cancel_inserts_nothing(server):
    client = server.client()
    sql(client, "CREATE TABLE t (id BIGINT, k BIGINT, name VARCHAR)")
    writer, reader = client.do_exchange(cmd("INSERT INTO t SELECT * FROM input"))
    writer.begin(SCHEMA)
    for i in range(20):
        writer.write_batch(batch(i * 1000, 1000))
    reader.cancel()
    with pytest.raises(pa.ArrowException):
        writer.write_batch(batch(0, 10))
        writer.done_writing()
        reader.read_all()
    time.sleep(0.5)
    other = server.client()
    assert sql(other, "SELECT count(*) AS n FROM t").column(0).to_pylist() == [0]
    assert server.alive()


def test_memory_limit_is_resource_exhausted(wigeon_server):
    """An aggregate needs the whole input, bounded by --memory-limit (DuckDB spills what it can:
    sorts, hash tables; not one growing string): past it the client gets RESOURCE_EXHAUSTED
    naming DuckDB's limit, and the server goes on serving."""
    server = wigeon_server(args=["--memory-limit", "64MB"], db=":memory:")
    client = server.client()
    rows = 1 << 15
    schema = pa.schema([("id", pa.int64()), ("p", pa.string())])
    one = pa.record_batch([pa.array(range(rows), pa.int64()),
                           pa.array([f"{i:0>200}" for i in range(rows)])], schema=schema)
    with pytest.raises(pa.ArrowException, match="(?i)out of memory|memory limit") as e:
        exchange(client, cmd("SELECT length(string_agg(p, ',')) AS n FROM input"),
                 [one] * 40, schema)
    assert "resource exhausted" in str(e.value).lower()
    assert sql(client, "SELECT 42 AS x").column(0).to_pylist() == [42]


def test_query_timeout_applies(wigeon_server):
    server = wigeon_server(args=["--query-timeout", "1"], db=":memory:")
    client = server.client()
    writer, reader = client.do_exchange(cmd("SELECT * FROM input"))
    writer.begin(SCHEMA)
    writer.write_batch(batch(0, 10))
    t0 = time.monotonic()
    with pytest.raises(flight.FlightTimedOutError, match="query-timeout|query timeout"):
        reader.read_all()
    assert time.monotonic() - t0 < 30
    with pytest.raises(flight.FlightTimedOutError):
        writer.close()
    assert sql(client, "SELECT 42 AS x").column(0).to_pylist() == [42]


def test_read_user_cannot_insert(wigeon_server, tmp_path):
    from test_auth import passwd
    users = tmp_path / "users"
    for name, role, pw in (("ann", "admin", "ann-pw"), ("rex", "read", "rex-pw")):
        assert passwd(users, name, pw, "--role", role).returncode == 0
    server = wigeon_server(args=["--users", str(users)])

    def login(name, pw):
        c = server.client()
        key, value = c.authenticate_basic_token(name, pw)
        return c, flight.FlightCallOptions(headers=[(key, value)])

    admin, ao = login("ann", "ann-pw")
    admin.do_get(flight.Ticket(b"CREATE TABLE t (id BIGINT, k BIGINT, name VARCHAR)"),
                 options=ao).read_all()
    rex, ro = login("rex", "rex-pw")

    def run(c, o, text):
        writer, reader = c.do_exchange(cmd(text), o)
        with writer:
            writer.begin(SCHEMA)
            writer.write_batch(batch(0, 10))
            writer.done_writing()
            return reader.read_all()

    with pytest.raises(flight.FlightUnauthorizedError, match="write"):
        run(rex, ro, "INSERT INTO t SELECT * FROM input")
    assert run(rex, ro, "SELECT count(*) AS n FROM input").column(0).to_pylist() == [10]
    assert admin.do_get(flight.Ticket(b"SELECT count(*) FROM t"),
                        options=ao).read_all().column(0).to_pylist() == [0]


def test_requests_that_are_not_sql(client):
    with pytest.raises(pa.ArrowInvalid, match="DoExchange takes a CMD descriptor holding SQL"):
        exchange(client, flight.FlightDescriptor.for_path("t"), [batch(0, 1)])
    with pytest.raises(pa.ArrowInvalid, match="bad member"):
        exchange(client, flight.FlightDescriptor.for_command(b'{"sql": "SELECT 1", "x": 1}'),
                 [batch(0, 1)])
    with pytest.raises(pa.ArrowInvalid, match="Parser Error"):
        exchange(client, cmd("SELEC * FROM input"), [batch(0, 1)])
    assert sql(client, "SELECT 1 AS x").column(0).to_pylist() == [1]
