"""The xorq example's shape ("1 DuckDB + 2 writers + 1 reader") against the real server: a table
concurrent_test (id BIGINT, value VARCHAR) made up front, two writers that keep putting one-row
pyarrow Tables (Table.from_pylist, as the example does), one reader that keeps counting (its
result unpacked through pandas, as the example does). Writers stop after PUTS puts or SECONDS;
the count at the end is exactly the rows acknowledged, every id once.

Run in threads, and in processes like the example's `read` and `write` commands: this file is
also the script (`test_xorq_shape.py write URI K PUTS SECONDS`, `test_xorq_shape.py read URI
STOPFILE`), printing one JSON line per acknowledged put or one count per line.
"""

import json
import pathlib
import subprocess
import sys
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight

TABLE = "concurrent_test"
PUTS, SECONDS = 300, 4.0


def row_value(row_id):
    return f"val-{row_id % 900 + 100}"


def make_table(client):
    """The example's server makes the table before any client comes: here through `execute`."""
    sql = f"CREATE TABLE {TABLE} (id BIGINT, value VARCHAR)"
    list(client.do_action(flight.Action("execute", sql.encode())))


def write_rows(client, k, puts=PUTS, seconds=SECONDS, acked=print):
    """Writer k of 2: one-row puts of ids k, k+2, k+4 ... until `puts` puts or `seconds` passed;
    calls acked(id, ack) after each acknowledgement."""
    deadline = time.monotonic() + seconds
    for i in range(puts):
        if time.monotonic() > deadline:
            break
        row_id = 2 * i + k
        data = pa.Table.from_pylist([{"id": row_id, "value": row_value(row_id)}])
        writer, reader = client.do_put(flight.FlightDescriptor.for_path(TABLE), data.schema)
        writer.write_table(data)
        writer.done_writing()
        ack = json.loads(reader.read().to_pybytes())
        writer.close()
        acked(row_id, ack)


def count(client):
    """The example's reader: count(*) through do_get, the value unpacked from pandas."""
    result = client.do_get(flight.Ticket(f"SELECT count(*) FROM {TABLE}".encode())).read_all()
    ((n,),) = result.to_pandas().values
    return int(n)


def count_until(client, stop, counted):
    """Counts over and over until stop() is true, then once more; counted(n) after each."""
    while True:
        last = stop()
        counted(count(client))
        if last:
            return


def assert_exact(client, acks, counts):
    """The table holds exactly the acknowledged rows, each id once with its value; the reader's
    counts never went backwards, ended at the total and saw the table grow."""
    assert all(ack == {"rows": 1, "table": TABLE} for _, ack in acks)
    ids = sorted(row_id for row_id, _ in acks)
    assert len(set(ids)) == len(ids)
    assert {row_id % 2 for row_id in ids} == {0, 1}, "one of the writers put nothing"
    got = client.do_get(flight.Ticket(f"SELECT id, value FROM {TABLE} ORDER BY id".encode()))
    rows = got.read_all().to_pylist()
    assert rows == [{"id": i, "value": row_value(i)} for i in ids]
    assert counts == sorted(counts), f"a count went backwards: {counts}"
    assert counts[-1] == len(ids)
    assert any(0 < n < len(ids) for n in counts), "the reader never saw the table part written"


def test_two_writer_threads_one_reader_thread(server):
    """Two writer threads and one reader thread, a client each, at once: counts exact at the end."""
    setup = server.client()
    make_table(setup)
    acks, counts, errors = [], [], []
    writers_done = threading.Event()

    def guarded(fn, *args):
        try:
            fn(*args)
        except Exception as e:  # reported by the test thread
            errors.append(e)

    def write(k):
        guarded(write_rows, server.client(), k, PUTS, SECONDS,
                lambda row_id, ack: acks.append((row_id, ack)))

    reader = threading.Thread(target=guarded, args=(count_until, server.client(),
                                                    writers_done.is_set, counts.append))
    writers = [threading.Thread(target=write, args=(k,)) for k in (0, 1)]
    reader.start()
    while not counts and not errors:
        time.sleep(0.01)
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    writers_done.set()
    reader.join()
    assert errors == []
    assert_exact(setup, acks, counts)
    setup.close()


def start(*args):
    return subprocess.Popen([sys.executable, __file__, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}:\n{err}"
    return out.splitlines()


def test_two_writer_processes_one_reader_process(server, tmp_path):
    """The example's three commands as three processes (`write` twice, `read` once), stopped
    after PUTS puts or SECONDS: the reader's last count is exactly the rows acknowledged."""
    setup = server.client()
    make_table(setup)
    stop = tmp_path / "stop"
    reader = start("read", server.uri, stop)
    assert reader.stdout.readline() == "0\n"
    writers = [start("write", server.uri, k, PUTS, SECONDS) for k in (0, 1)]
    acks = [tuple(json.loads(line)) for w in writers for line in finish(w)]
    stop.touch()
    counts = [0] + [int(line) for line in finish(reader)]
    assert_exact(setup, acks, counts)
    setup.close()


def main(argv):
    client = flight.FlightClient(argv[2])
    if argv[1] == "write":
        write_rows(client, int(argv[3]), int(argv[4]), float(argv[5]),
                   lambda row_id, ack: print(json.dumps([row_id, ack]), flush=True))
    elif argv[1] == "read":
        stop = pathlib.Path(argv[3])
        count_until(client, stop.exists, lambda n: print(n, flush=True))
    else:
        raise SystemExit(f"usage: {argv[0]} write URI K PUTS SECONDS | read URI STOPFILE")
    client.close()


if __name__ == "__main__":
    main(sys.argv)
