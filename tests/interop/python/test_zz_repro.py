"""The seeds' workflow against the real server: loaders put 1,000-row pyarrow Tables with
`do_put`, query scripts read SQL results with `do_get(Ticket(sql)).read_all()`, several of each at
once in threads and in separate processes; plus read_pandas, read_chunk and to_reader.

The loader and query code is seed_loader.py and seed_query.py (the same code runs as processes).
Values are halves and small integers, so sum(value) is exact whatever order DuckDB adds them in.
"""

import json
import pathlib
import subprocess
import sys
import threading
import time

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight

from seed_loader import ROWS, put_table, seed_table, seed_value
from seed_query import count_rows, query

HERE = pathlib.Path(__file__).resolve().parent
SEED_SCHEMA = pa.schema([("batch_id", pa.int64()), ("timestamp", pa.string()),
                         ("value", pa.float64()), ("category", pa.string())])


def expected_sum(batch_ids):
    return sum(seed_value(b, i) for b in batch_ids for i in range(ROWS))


def assert_seed_contents(client, name, batch_ids):
    """The table holds exactly one 1,000-row seed batch for each of batch_ids, nothing else."""
    got = query(client, f"""SELECT count(*) AS n, count(DISTINCT batch_id) AS batches,
                                   sum(value) AS total, min(c) AS smallest, max(c) AS largest
                            FROM (SELECT batch_id, value, count(*) OVER (PARTITION BY batch_id) AS c
                                  FROM "{name}")""").to_pylist()[0]
    assert got == {"n": ROWS * len(batch_ids), "batches": len(set(batch_ids)),
                   "total": expected_sum(batch_ids), "smallest": ROWS, "largest": ROWS}
    ids = query(client, f'SELECT DISTINCT batch_id FROM "{name}" ORDER BY 1').column(0).to_pylist()
    assert ids == sorted(batch_ids)


def assert_counts_grow(counts, final):
    """A reader's successive counts: never backwards, whole puts only, never past the end."""
    assert counts, "the reader never counted"
    assert counts == sorted(counts), f"a count went backwards: {counts}"
    assert all(n % ROWS == 0 for n in counts), f"a reader saw part of a put: {counts}"
    assert counts[-1] <= final


def test_one_put_is_acknowledged_and_reads_back_equal(client):
    """A loader's put is acknowledged with its row count and table, and read_all() gives back
    the same table (same Arrow types: int64, string, double, string)."""
    table = seed_table(7)
    assert put_table(client, "events", table) == {"rows": ROWS, "table": "events"}
    back = query(client, "SELECT * FROM events ORDER BY timestamp")
    assert back.schema.remove_metadata() == SEED_SCHEMA
    assert back.equals(table)


def test_put_result_is_one_message_pyarrow_reads(client):
    """The acknowledgement is exactly one PutResult: reader.read() returns its app_metadata as a
    Buffer, then None. It counts every batch of the stream and names the schema when the path
    does; a stream of no batches is acknowledged with 0 rows."""
    table = seed_table(1)
    writer, reader = client.do_put(flight.FlightDescriptor.for_path("main", "events"), table.schema)
    for batch in table.to_batches(max_chunksize=128):
        writer.write_batch(batch)
    writer.done_writing()
    ack = reader.read()
    assert isinstance(ack, pa.Buffer)
    assert json.loads(ack.to_pybytes()) == {"rows": ROWS, "table": "events", "schema": "main"}
    assert reader.read() is None
    writer.close()

    writer, reader = client.do_put(flight.FlightDescriptor.for_path("events"), table.schema)
    writer.done_writing()
    assert json.loads(reader.read().to_pybytes()) == {"rows": 0, "table": "events"}
    writer.close()
    assert_seed_contents(client, "events", [1])


def test_loader_and_reader_threads_at_once(server):
    """Four loader threads (a client each) put 25 batches each into a table none of them has made
    yet, while three reader threads (one shared client) count: each put is visible to its loader's
    next query once acknowledged, the acknowledged rows sum to the final count, every batch is
    there once, no reader's count goes backwards, and the readers saw the table grow (counts
    between empty and full)."""
    loaders, puts = 4, 25
    acked, errors = [], []
    readers_client = server.client()
    counts = [[] for _ in range(3)]
    done = threading.Event()

    def load(first):
        try:
            client = server.client()
            for batch_id in range(first, first + puts):
                ack = put_table(client, "events", seed_table(batch_id))
                acked.append((batch_id, ack["rows"]))
                mine = query(client, f"SELECT count(*) AS n FROM events WHERE batch_id = {batch_id}")
                n = mine.column("n")[0].as_py()
                if n != ROWS:
                    again = [query(client, f"SELECT count(*) AS n FROM events WHERE batch_id = {batch_id}").column("n")[0].as_py() for _ in range(3)]
                    detail = query(client, f"SELECT count(*) AS n, count(DISTINCT timestamp) AS d, min(rowid) AS lo, max(rowid) AS hi FROM events WHERE batch_id = {batch_id}").to_pylist()
                    total = query(client, "SELECT count(*) AS n, count(distinct rowid) AS r FROM events").to_pylist()
                    raise AssertionError(f"batch {batch_id}: {n} then {again} detail {detail} total {total} ack {ack}")
            client.close()
        except Exception as e:  # reported by the test thread
            errors.append(e)

    def read(mine):
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                mine.append(count_rows(readers_client, "events"))
                if done.is_set() and mine[-1] == loaders * puts * ROWS:
                    break
        except Exception as e:
            errors.append(e)

    reading = [threading.Thread(target=read, args=(c,)) for c in counts]
    loading = [threading.Thread(target=load, args=(100 * k,)) for k in range(loaders)]
    for t in reading:
        t.start()
    while not all(counts) and not errors:  # every reader has counted the empty table once
        time.sleep(0.01)
    for t in loading:
        t.start()
    for t in loading:
        t.join()
    done.set()
    for t in reading:
        t.join()
    assert errors == []
    final = sum(rows for _, rows in acked)
    assert final == loaders * puts * ROWS
    for c in counts:
        assert_counts_grow(c, final)
        assert c[-1] == final
    assert len({n for c in counts for n in c if 0 < n < final}) >= 2, counts
    assert_seed_contents(readers_client, "events", [b for b, _ in acked])
    readers_client.close()


def start(script, *args):
    return subprocess.Popen([sys.executable, str(HERE / script), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=180):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}:\n{err}"
    return out.splitlines()


def test_loader_and_reader_processes_at_once(server):
    """Three loader processes (seed_loader.py) and two query processes (seed_query.py) against
    one server: the acks the loaders print sum to the final count, every batch is there once, and
    each reader's printed counts never go backwards and end at the final count."""
    loaders, puts = 3, 10
    total = loaders * puts * ROWS
    readers = [start("seed_query.py", server.uri, "events", total, 150) for _ in range(2)]
    for r in readers:  # each has counted the empty table before any loader starts
        assert r.stdout.readline() == "0\n"
    procs = [start("seed_loader.py", server.uri, "events", 100 * k, puts) for k in range(loaders)]
    acks = [json.loads(line) for p in procs for line in finish(p)]
    assert [a["ack"] for a in acks] == [{"rows": ROWS, "table": "events"}] * (loaders * puts)
    final = sum(a["ack"]["rows"] for a in acks)
    seen = set()
    for r in readers:
        counts = [0] + [int(line) for line in finish(r)]
        assert_counts_grow(counts, final)
        assert counts[-1] == final
        seen.update(n for n in counts if 0 < n < final)
    assert seen, "the readers never saw the table part loaded"
    client = server.client()
    assert_seed_contents(client, "events", [a["batch_id"] for a in acks])
    client.close()


def test_read_pandas_and_a_put_from_pandas(client):
    """read_pandas() gives the DataFrame of the rows put; a table made with
    pa.Table.from_pandas (pandas' own string dtype) is put and read back to the same frame."""
    tables = [seed_table(b) for b in (1, 2, 3)]
    for t in tables:
        put_table(client, "events", t)
    sql = "SELECT * FROM events ORDER BY batch_id, timestamp"
    df = client.do_get(flight.Ticket(sql.encode())).read_pandas()
    want = pa.concat_tables(tables).to_pandas()
    pd.testing.assert_frame_equal(df, want)

    frame = want[want["category"] == "beta"].reset_index(drop=True)
    frame["value"] *= 2
    ack = put_table(client, "from_pandas", pa.Table.from_pandas(frame, preserve_index=False))
    assert ack == {"rows": len(frame), "table": "from_pandas"}
    back = client.do_get(flight.Ticket(b"SELECT * FROM from_pandas ORDER BY batch_id, timestamp"))
    pd.testing.assert_frame_equal(back.read_pandas(), frame)


def test_read_chunk_one_batch_at_a_time(wigeon_server):
    """With --batch-rows 1000 a 5,000-row result arrives as record batches of at most 1,000
    rows; read_chunk() returns them one by one (data: a RecordBatch of the stream's schema,
    app_metadata: None) and raises StopIteration after the last."""
    server = wigeon_server(args=["--batch-rows", "1000"])
    client = server.client()
    tables = [seed_table(b) for b in range(5)]
    for t in tables:
        put_table(client, "events", t)
    reader = client.do_get(flight.Ticket(b"SELECT * FROM events ORDER BY batch_id, timestamp"))
    batches = []
    while True:
        try:
            chunk = reader.read_chunk()
        except StopIteration:
            break
        assert isinstance(chunk.data, pa.RecordBatch)
        assert chunk.data.schema == reader.schema
        assert chunk.app_metadata is None
        assert 0 < chunk.data.num_rows <= 1000
        batches.append(chunk.data)
    assert len(batches) >= 5
    assert pa.Table.from_batches(batches).equals(pa.concat_tables(tables))
    client.close()


def test_to_reader_feeds_duckdb_in_process(client):
    """to_reader() turns the stream into a RecordBatchReader that in-process duckdb (the seeds'
    old pyarrow + duckdb way) can scan; its aggregate equals the server's own."""
    for b in range(4):
        put_table(client, "events", seed_table(b))
    stream = client.do_get(flight.Ticket(b"SELECT * FROM events")).to_reader()
    assert isinstance(stream, pa.RecordBatchReader)
    assert stream.schema.remove_metadata() == SEED_SCHEMA
    sql = "SELECT category, count(*) AS n, sum(value) AS s FROM {} GROUP BY ALL ORDER BY ALL"
    local = duckdb.sql(sql.format("stream")).arrow()
    if isinstance(local, pa.RecordBatchReader):
        local = local.read_all()
    remote = query(client, sql.format("events"))
    assert local.to_pylist() == remote.to_pylist()
    assert sum(r["n"] for r in remote.to_pylist()) == 4 * ROWS
