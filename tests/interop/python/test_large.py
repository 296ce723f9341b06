"""Large data and compression through pyarrow (issue 10, item 6).

- A 10M-row result streamed with read_chunk() leaves the server's peak RSS (VmHWM) where a
  1M-row result left it: DoGet holds one batch in flight and one encoded, whatever the result size.
- A 2 GB put in one do_put call (2,000 batches of 1 MiB made on the fly) is acknowledged with every
  row, count(*) agrees, and the server's peak RSS stays under a bound set by --memory-limit.
- pyarrow's writer with IpcWriteOptions(compression='zstd' / 'lz4') puts data that reads back equal
  and costs fewer bytes on the wire.
- The header `wigeon-compression: zstd|lz4|none` on DoGet asks for compressed record batches: pyarrow
  decodes them equal to the uncompressed ones and fewer bytes cross the socket (counted by a TCP
  relay between client and server, and by the server's bytes_out); an unknown codec is
  INVALID_ARGUMENT (pyarrow: ArrowInvalid) naming the allowed ones.
"""

import json
import shutil
import socket
import threading
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pytest

MiB = 1 << 20


def peak_rss(pid):
    """The process's peak resident set (VmHWM) in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def stats(client):
    results = list(client.do_action(flight.Action("stats", b"")))
    return json.loads(results[0].body.to_pybytes())


def compression(codec):
    """Call options asking the server for `codec` record batches (None: no header)."""
    if codec is None:
        return flight.FlightCallOptions()
    return flight.FlightCallOptions(headers=[(b"wigeon-compression", codec.encode())])


def stream_sum(client, sql, options=None):
    """Streams a DoGet with read_chunk(), one batch at a time, never holding the result. Returns
    (rows, sum of column 0, largest batch's rows, bytes of all batches as pyarrow holds them)."""
    reader = client.do_get(flight.Ticket(sql.encode()), options=options or compression(None))
    rows = total = largest = nbytes = 0
    while True:
        try:
            chunk = reader.read_chunk()
        except StopIteration:
            break
        batch = chunk.data
        rows += batch.num_rows
        largest = max(largest, batch.num_rows)
        nbytes += batch.nbytes
        total += pc.sum(batch.column(0)).as_py() or 0
    return rows, total, largest, nbytes


class Relay:
    """A TCP relay on loopback between a client and the server that counts the bytes the server
    sends: what really crosses the socket, HTTP/2 framing included."""

    def __init__(self, port):
        self.port_up = port
        self.lock = threading.Lock()
        self.down = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.uri = f"grpc://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def received(self):
        with self.lock:
            return self.down

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.port_up))
            threading.Thread(target=self._pump, args=(conn, up, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, conn, True), daemon=True).start()

    def _pump(self, src, dst, counted):
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                if counted:
                    with self.lock:
                        self.down += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


# Seed-shaped rows that compress as real data does (repeating categories, sequential ids).
SEED_SQL = ("SELECT range AS id, range // 1000 AS batch_id, "
            "strftime(TIMESTAMP '2024-01-01' + INTERVAL (range) SECOND, '%Y-%m-%dT%H:%M:%S') "
            "AS timestamp, (range % 977) * 0.25 AS value, 'category-' || (range % 10) AS category "
            "FROM range({n})")


@pytest.mark.large
@pytest.mark.parametrize("codec", [None, "zstd"])
def test_10m_row_result_streams_without_server_memory_growing(server, client, codec):
    """Streaming 10M rows (~370 MiB as Arrow) moves the server's peak RSS by less than 64 MiB over
    what 1M rows took, and stays under 512 MiB in all, compressed or not: the server holds one
    batch in flight and one encoded (65,536 rows, ~2.4 MiB here), plus DuckDB's streaming state.
    Holding the result would cost the 330 MiB the extra 9M rows weigh. Every row arrives once."""
    sql = "SELECT range AS id, range * 2.5 AS v, 'row-' || range AS s FROM range({n})"
    n1, n10 = 1_000_000, 10_000_000
    rows, total, _, _ = stream_sum(client, sql.format(n=n1), compression(codec))
    assert (rows, total) == (n1, n1 * (n1 - 1) // 2)
    after_1m = peak_rss(server.pid)
    out_before = stats(client)["bytes_out"]
    t0 = time.monotonic()
    rows, total, largest, nbytes = stream_sum(client, sql.format(n=n10), compression(codec))
    seconds = time.monotonic() - t0
    after_10m = peak_rss(server.pid)
    sent = stats(client)["bytes_out"] - out_before
    assert (rows, total) == (n10, n10 * (n10 - 1) // 2)
    assert largest <= 65536
    assert nbytes > 300 * MiB, "the result must outweigh the bound for the test to mean anything"
    assert after_10m - after_1m < 64 * MiB, (after_1m, after_10m)
    assert after_10m < 512 * MiB, after_10m
    if codec is not None:
        assert sent < nbytes / 2, (sent, nbytes)
    print(f"10M rows ({codec}): {seconds:.1f} s, {nbytes / MiB:.0f} MiB as Arrow, "
          f"{sent / MiB:.0f} MiB sent, peak RSS {after_1m / MiB:.0f} -> {after_10m / MiB:.0f} MiB")


@pytest.mark.large
def test_2gb_put_in_one_call_commits_every_row_with_bounded_memory(wigeon_server, tmp_path):
    """One do_put of 2,000 batches of 1 MiB (2,097,152,000 bytes, 131M rows, made on the fly) into
    a database file on disk: the acknowledgement and count(*) say every row, the sum of ids is
    exact, and the server's peak RSS stays under 768 MiB (its --memory-limit of 256 MB for DuckDB's
    buffers, plus one put's decoded batch and gRPC's buffers), not growing in the second half of
    the put: the put streams into its transaction, it is not held."""
    free = shutil.disk_usage(tmp_path).free
    if free < 6 << 30:
        pytest.skip(f"needs 6 GiB free on {tmp_path} for a 2 GB put, has {free >> 20} MiB")
    server = wigeon_server(args=["--memory-limit", "256MB"])
    client = server.client()
    rows_per_batch, n_batches = 65536, 2000
    schema = pa.schema([("id", pa.int64()), ("v", pa.float64())])
    base = pa.array(range(rows_per_batch), pa.int64())
    t0 = time.monotonic()
    writer, reader = client.do_put(flight.FlightDescriptor.for_path("big"), schema)
    sent = 0
    halfway = None
    for i in range(n_batches):
        ids = pc.add(base, i * rows_per_batch)
        batch = pa.record_batch([ids, pc.multiply(ids, 0.5)], schema=schema)
        writer.write_batch(batch)
        sent += batch.nbytes
        if i == n_batches // 2:
            halfway = peak_rss(server.pid)
    writer.done_writing()
    ack = json.loads(reader.read().to_pybytes())
    writer.close()
    seconds = time.monotonic() - t0
    peak = peak_rss(server.pid)
    n = rows_per_batch * n_batches
    assert sent == 2_097_152_000
    assert ack == {"rows": n, "table": "big"}
    got = client.do_get(flight.Ticket(
        b"SELECT count(*) AS n, sum(id)::BIGINT AS ids, max(v) AS v FROM big")).read_all()
    assert got.to_pylist() == [{"n": n, "ids": n * (n - 1) // 2, "v": (n - 1) * 0.5}]
    assert peak < 768 * MiB, peak
    assert peak - halfway < 128 * MiB, (halfway, peak)
    client.close()
    print(f"2 GB put: {seconds:.1f} s ({sent / seconds / MiB:.0f} MiB/s), "
          f"peak RSS {halfway / MiB:.0f} MiB halfway, {peak / MiB:.0f} MiB at the end")


def seed_table(n):
    """Seed-shaped rows with nulls and a list column, as a loader builds them."""
    ids = pa.array(range(n), pa.int64())
    return pa.table({
        "batch_id": pc.divide(ids, 1000),
        "timestamp": pa.array([f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}" for i in range(n)]),
        "value": pa.array([None if i % 13 == 0 else (i % 977) * 0.25 for i in range(n)]),
        "category": pa.array([None if i % 17 == 0 else f"category-{i % 10}" for i in range(n)]),
        "tags": pa.array([[i % 5, i % 7] if i % 11 else None for i in range(n)], pa.list_(pa.int64())),
    })


def put(client, name, table, codec=None):
    """One do_put of `table` into `name` in 10,000-row batches, written with `codec` compression
    (None: uncompressed); returns the acknowledgement."""
    opts = flight.FlightCallOptions(write_options=pa.ipc.IpcWriteOptions(compression=codec))
    writer, reader = client.do_put(flight.FlightDescriptor.for_path(name), table.schema,
                                   options=opts)
    writer.write_table(table, max_chunksize=10_000)
    writer.done_writing()
    ack = json.loads(reader.read().to_pybytes())
    writer.close()
    return ack


@pytest.mark.parametrize("codec", ["zstd", "lz4"])
def test_compressed_puts_read_back_equal_and_are_smaller(client, codec):
    """A put written by pyarrow with IpcWriteOptions(compression=codec) is decoded by the server
    and reads back equal to what was sent, and the server received under 60% of the bytes the same
    put takes uncompressed (its bytes_in), so the bodies really were compressed."""
    table = seed_table(200_000)
    before = stats(client)["bytes_in"]
    assert put(client, "plain", table) == {"rows": 200_000, "table": "plain"}
    middle = stats(client)["bytes_in"]
    assert put(client, "packed", table, codec) == {"rows": 200_000, "table": "packed"}
    after = stats(client)["bytes_in"]
    got = client.do_get(flight.Ticket(b"SELECT * FROM packed ORDER BY timestamp, batch_id")).read_all()
    want = table.sort_by([("timestamp", "ascending"), ("batch_id", "ascending")])
    assert got.equals(want), (got.schema, want.schema)
    plain_bytes, packed_bytes = middle - before, after - middle
    assert packed_bytes < 0.6 * plain_bytes, (plain_bytes, packed_bytes)


# Every shape of result the encoder compresses: dictionaries (ENUM), lists, structs, maps, nulls,
# hugeint as decimal, intervals, booleans.
RICH_SQL = """SELECT range AS id, CAST(['a', 'b', 'c'][range % 3 + 1] AS ENUM('a', 'b', 'c')) AS e,
  [range, NULL] AS l, {'x': range, 'y': 'q' || range} AS st, MAP {'k': range} AS m,
  CASE WHEN range % 3 = 0 THEN NULL ELSE 'v' || range END AS s, range % 2 = 0 AS b,
  range::HUGEINT AS h, INTERVAL 1 DAY * range AS iv FROM range(150000)"""


@pytest.mark.parametrize("codec", ["zstd", "lz4", "ZSTD", "none"])
def test_compressed_results_decode_equal_to_uncompressed(client, codec):
    """With `wigeon-compression: codec` pyarrow reads every kind of column, and an empty result,
    equal to the uncompressed answer (the codec name is case-insensitive; none is uncompressed)."""
    plain = client.do_get(flight.Ticket(RICH_SQL.encode())).read_all()
    got = client.do_get(flight.Ticket(RICH_SQL.encode()), options=compression(codec)).read_all()
    assert got.num_rows == 150_000
    assert got.equals(plain)
    empty = client.do_get(flight.Ticket(b"SELECT 1 AS x, 'a' AS s WHERE false"),
                          options=compression(codec)).read_all()
    assert empty.num_rows == 0 and empty.schema.names == ["x", "s"]


@pytest.mark.parametrize("codec", ["zstd", "lz4"])
def test_compressed_results_cross_the_socket_in_fewer_bytes(server, codec):
    """A relay between pyarrow and the server counts the bytes the server sends: the seed-shaped
    result takes under 45% of the uncompressed bytes with the header, and the server's bytes_out
    agrees; without the header (or with none) the bytes are the uncompressed ones."""
    relay = Relay(server.port)
    client = flight.FlightClient(relay.uri)
    sql = SEED_SQL.format(n=300_000).encode()

    def measured(codec_asked):
        client.do_get(flight.Ticket(b"SELECT 1"), options=compression(codec_asked)).read_all()
        wire, out = relay.received(), stats(client)["bytes_out"]
        table = client.do_get(flight.Ticket(sql), options=compression(codec_asked)).read_all()
        time.sleep(0.05)  # lets the relay forward the trailers before counting
        return table, relay.received() - wire, stats(client)["bytes_out"] - out

    try:
        plain, plain_wire, plain_out = measured(None)
        none, none_wire, none_out = measured("none")
        packed, packed_wire, packed_out = measured(codec)
    finally:
        client.close()
        relay.close()
    assert packed.equals(plain) and none.equals(plain)
    assert plain_wire > plain_out > 10 * MiB
    assert none_out == plain_out
    assert packed_wire < 0.45 * plain_wire, (plain_wire, packed_wire)
    assert packed_out < 0.45 * plain_out, (plain_out, packed_out)
    print(f"{codec}: {packed_wire} of {plain_wire} bytes on the wire")


@pytest.mark.parametrize("bad", ["gzip", "", "zstd,lz4", "lz4_raw"])
def test_unknown_codec_is_invalid_argument_naming_the_allowed_ones(client, bad):
    """An unknown codec in the header is INVALID_ARGUMENT (pyarrow's ArrowInvalid) that names it and
    the allowed codecs; no query runs, and the server keeps serving."""
    gets = stats(client)["gets"]
    with pytest.raises(pa.ArrowInvalid) as e:
        client.do_get(flight.Ticket(b"SELECT 42"), options=compression(bad)).read_all()
    assert f'unknown codec "{bad}"' in str(e.value)
    assert "allowed: zstd, lz4, none" in str(e.value)
    assert stats(client)["gets"] == gets
    assert client.do_get(flight.Ticket(b"SELECT 42 AS x")).read_all().to_pylist() == [{"x": 42}]
