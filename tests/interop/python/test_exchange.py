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
