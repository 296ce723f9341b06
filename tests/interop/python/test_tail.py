"""The live tail (docs/tail.md) with pyarrow against the real server: a DoGet of a JSON ticket that
sends the snapshot, a start marker, then every committed put, each batch tagged with the table's
commit sequence. Checked: exactly once and in order under concurrent writers and subscribers that
start at any moment; never a failed or cancelled put; WHERE and columns evaluated on the server;
resume from a sequence and its refusals; the slow subscriber cut off without slowing the others;
idle subscribers holding no worker thread; SQL changes not delivered (and said so)."""

import json
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

# what pyarrow raises for a failed call: FlightError subclasses for some statuses, ArrowInvalid
# (INVALID_ARGUMENT, OUT_OF_RANGE) or ArrowException for others
CALL_FAILED = (flight.FlightError, pa.ArrowException)


def put(client, table, data, **kw):
    """One put of `data` (a pyarrow Table) to `table`; returns after the acknowledgement."""
    writer, reader = client.do_put(flight.FlightDescriptor.for_path(table), data.schema, **kw)
    writer.write_table(data)
    writer.done_writing()
    reader.read()
    writer.close()


def ids(start, n, category="A"):
    return pa.table({"id": pa.array(range(start, start + n), pa.int64()),
                     "category": pa.array([category] * n, pa.string())})


def ticket(**kw):
    return flight.Ticket(json.dumps(kw).encode())


class Tail:
    """A subscriber: reads chunks, splitting them into the snapshot and the live part."""

    def __init__(self, client, timeout=60, **kw):
        self.reader = client.do_get(ticket(**kw), options=flight.FlightCallOptions(timeout=timeout))
        self.schema = self.reader.schema
        self.snapshot, self.live, self.start_seq = [], [], None
        while self.start_seq is None:
            chunk = self.reader.read_chunk()
            meta = json.loads(chunk.app_metadata.to_pybytes())
            if chunk.data.num_rows == 0 and not meta["more"]:
                self.start_seq = meta["seq"]
            else:
                assert meta["seq"] >= 0
                self.snapshot.append(chunk.data)

    def read(self):
        chunk = self.reader.read_chunk()
        meta = json.loads(chunk.app_metadata.to_pybytes())
        self.live.append((meta["seq"], meta["more"], chunk.data))
        return meta["seq"], meta["more"], chunk.data

    def read_rows(self, n):
        """Reads until n live rows have come; returns them as a list of dicts."""
        got = sum(b.num_rows for _, _, b in self.live)
        while got < n:
            got += self.read()[2].num_rows
        return [r for _, _, b in self.live for r in b.to_pylist()]

    def snapshot_rows(self):
        return [r for b in self.snapshot for r in b.to_pylist()]

    def cancel(self):
        self.reader.cancel()


def test_snapshot_then_live_in_commit_order(server):
    c = server.client()
    put(c, "events", ids(0, 3))
    t = Tail(c, tail="events")
    assert [r["id"] for r in t.snapshot_rows()] == [0, 1, 2]
    assert t.schema.names == ["id", "category"]
    md = t.schema.metadata
    assert md[b"wigeon.tail.table"] == b"main.events"
    assert b"not delivered" in md[b"wigeon.tail.delivers"]
    put(c, "events", ids(3, 2))
    put(c, "events", ids(5, 4))
    s1, more1, b1 = t.read()
    s2, more2, b2 = t.read()
    assert b1.column("id").to_pylist() == [3, 4] and b2.column("id").to_pylist() == [5, 6, 7, 8]
    assert (s1, s2) == (t.start_seq + 1, t.start_seq + 2)
    assert not more1 and not more2
    t.cancel()


def test_from_now_skips_the_snapshot(server):
    c = server.client()
    put(c, "events", ids(0, 3))
    t = Tail(c, tail="events", **{"from": "now"})
    assert t.snapshot == []
    put(c, "events", ids(10, 2))
    assert [r["id"] for r in t.read_rows(2)] == [10, 11]


def test_where_and_columns_run_on_the_server(server):
    c = server.client()
    put(c, "events", pa.concat_tables([ids(0, 4, "A"), ids(4, 4, "B")]))
    t = Tail(c, tail="events", where="category = 'B' AND id % 2 = 0", columns=["id"])
    assert t.schema.names == ["id"]
    assert t.snapshot_rows() == [{"id": 4}, {"id": 6}]
    put(c, "events", pa.concat_tables([ids(8, 4, "A"), ids(12, 4, "B")]))
    # a put of other Arrow types and a subset of the columns: cast to the table's, NULL for the rest
    put(c, "events", pa.table({"id": pa.array([20, 21, 22], pa.int32())}))
    put(c, "events", pa.table({"category": ["B", "B"], "id": pa.array([30, 31], pa.int16())}))
    assert t.read_rows(3) == [{"id": 12}, {"id": 14}, {"id": 30}]
    assert all(b.schema == t.schema.remove_metadata() or b.schema.equals(t.schema, False)
               for _, _, b in t.live)


def test_json_ticket_errors_are_clear(server):
    c = server.client()
    put(c, "events", ids(0, 1))
    cases = [
        ({"tail": "events", "wher": "x"}, flight.FlightServerError, "unknown key"),
        ({"tail": "nope"}, flight.FlightServerError, "no table"),
        ({"tail": "events", "columns": ["nope"]}, flight.FlightServerError, "no column"),
        ({"tail": "events", "where": "no_such_col = 1"}, flight.FlightServerError, "no_such_col"),
        ({"tail": "events", "where": "1; DROP TABLE events"}, flight.FlightServerError, "rror"),
        ({"tail": "events", "from": "yesterday"}, flight.FlightServerError, "from"),
        ({"tail": 5}, flight.FlightServerError, "table name"),
        ({"nottail": "events"}, flight.FlightServerError, "tail"),
    ]
    for body, exc, text in cases:
        with pytest.raises(CALL_FAILED, match=text):
            c.do_get(flight.Ticket(json.dumps(body).encode())).read_chunk()
        del exc
    with pytest.raises(CALL_FAILED, match="JSON"):
        c.do_get(flight.Ticket(b"{not json")).read_all()
    # JSON that cJSON alone would take with another meaning: a name cut at an escaped NUL, text
    # after the object, a key given twice (the first value leaked, the second won)
    for raw, text in [(rb'{"tail": "events\u0000junk"}', "u0000"),
                      (b'{"tail": "events"} DROP TABLE events', "text after"),
                      (b'{"tail": "events", "where": "true", "where": "false"}', "key twice")]:
        with pytest.raises(CALL_FAILED, match=text):
            c.do_get(flight.Ticket(raw)).read_chunk()
    # an escaped backslash before u0000 is just text
    t = Tail(c, tail="events", where="'\\u0000' <> category", **{"from": "now"})
    t.cancel()
    # the table is intact and the server still serves
    assert c.do_get(flight.Ticket(b"SELECT count(*) AS n FROM events")).read_all()["n"][0].as_py() == 1


def test_failed_and_cancelled_puts_never_appear(server):
    c = server.client()
    list(c.do_action(flight.Action(
        "execute", b"CREATE TABLE events (id BIGINT PRIMARY KEY, category VARCHAR)")))
    put(c, "events", ids(0, 1))
    t = Tail(c, tail="events", **{"from": "now"})
    # a put that fails at its commit (a duplicate key): nothing of it is committed
    with pytest.raises(CALL_FAILED):
        put(c, "events", pa.table({"id": pa.array([100, 0], pa.int64()), "category": ["A", "A"]}))
    # a put cancelled by its deadline before it finished
    opts = flight.FlightCallOptions(timeout=1)
    writer, reader = c.do_put(flight.FlightDescriptor.for_path("events"), ids(200, 1).schema,
                              options=opts)
    writer.write_table(ids(200, 1))
    time.sleep(2)
    with pytest.raises(CALL_FAILED):
        writer.done_writing()
        reader.read()
        writer.close()
    put(c, "events", ids(300, 1))
    assert [r["id"] for r in t.read_rows(1)] == [300]
    committed = c.do_get(flight.Ticket(b"SELECT id FROM events ORDER BY id")).read_all()
    assert committed.column("id").to_pylist() == [0, 300]


def test_exactly_once_with_concurrent_writers_and_subscribers(wigeon_server):
    s = wigeon_server(args=["--threads", "8"])
    c = s.client()
    put(c, "events", ids(0, 10))
    writers, per_writer, rows_per_put = 4, 40, 25
    total = 10 + writers * per_writer * rows_per_put
    subs, errors = [], []

    def write(w):
        try:
            wc = s.client()
            for i in range(per_writer):
                put(wc, "events", ids(10 + (w * per_writer + i) * rows_per_put, rows_per_put))
        except Exception as e:  # reported below
            errors.append(e)

    def subscribe():
        try:
            subs.append(Tail(s.client(), tail="events", timeout=120))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for th in threads:
        th.start()
    starters = []
    for _ in range(6):  # subscribers starting while the writers write
        time.sleep(0.05)
        th = threading.Thread(target=subscribe)
        th.start()
        starters.append(th)
    for th in threads + starters:
        th.join()
    assert not errors, errors
    for t in subs:
        snap = [r["id"] for r in t.snapshot_rows()]
        live = [r["id"] for r in t.read_rows(total - len(snap))]
        assert sorted(snap + live) == list(range(total)), "a row missing or twice"
        seqs = [seq for seq, _, _ in t.live]
        assert seqs == sorted(seqs) and all(q > t.start_seq for q in seqs)
        t.cancel()


def test_resume_from_a_sequence(server):
    c = server.client()
    put(c, "events", ids(0, 2))
    t = Tail(c, tail="events")
    put(c, "events", ids(2, 2))
    seq, more, _ = t.read()
    assert not more
    t.cancel()
    put(c, "events", ids(4, 3))
    put(c, "events", ids(7, 1))
    r = Tail(c, tail="events", **{"from": seq})
    assert r.snapshot == [] and r.start_seq >= seq
    rows = [x["id"] for x in r.read_rows(4)]
    assert rows == [4, 5, 6, 7]


def test_resume_refusals(wigeon_server):
    s = wigeon_server(args=["--tail-history-mb", "1"])
    c = s.client()
    put(c, "events", ids(0, 1))
    t = Tail(c, tail="events")
    start = t.start_seq
    with pytest.raises(CALL_FAILED, match="ahead"):
        Tail(c, tail="events", **{"from": start + 100})
    # more than the history holds: the early puts are forgotten
    big = pa.table({"id": pa.array(range(200_000), pa.int64()),
                    "category": pa.array(["x" * 10] * 200_000)})
    for _ in range(3):
        put(c, "events", big)
    t.cancel()
    time.sleep(0.5)
    with pytest.raises(CALL_FAILED, match="no longer holds"):
        Tail(c, tail="events", **{"from": start})
    # a sequence of an earlier run
    s.restart()
    time.sleep(1.1)
    c = s.client()
    put(c, "events", ids(1, 1))
    with pytest.raises(CALL_FAILED, match="earlier run"):
        Tail(c, tail="events", **{"from": start})


def test_slow_subscriber_is_cut_off_without_slowing_others(wigeon_server):
    s = wigeon_server(args=["--tail-buffer-mb", "1"])
    c = s.client()
    put(c, "events", ids(0, 1))
    slow = Tail(c, tail="events", **{"from": "now"})
    fast = Tail(s.client(), tail="events", **{"from": "now"})
    rows = 5_000  # ~0.5 MB a put: within the 1 MiB buffer of a subscriber that reads
    payload = pa.table({"id": pa.array(range(rows), pa.int64()),
                        "category": pa.array(["y" * 100] * rows)})
    n_puts = 120  # ~60 MB: far past the slow one's buffer and gRPC's windows
    for i in range(n_puts):
        put(c, "events", payload)
        fast.read_rows((i + 1) * rows)
    with pytest.raises(CALL_FAILED, match="tail-buffer-mb"):
        while True:
            slow.read()
    assert sum(b.num_rows for _, _, b in fast.live) == n_puts * rows


def stats(client):
    r = list(client.do_action(flight.Action("stats", b"")))
    return json.loads(r[0].body.to_pybytes())


def threads_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def test_idle_subscribers_hold_no_worker_and_no_connection(wigeon_server):
    s = wigeon_server(args=["--threads", "2"])
    c = s.client()
    put(c, "events", ids(0, 1))
    before = threads_of(s.pid)
    clients = [s.client() for _ in range(10)]
    tails = [Tail(clients[i % 10], tail="events", **{"from": "now"}) for i in range(200)]
    deadline = time.monotonic() + 10  # the last one parks just after its start marker
    while stats(c)["parked_calls"] != 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    st = stats(c)
    assert st["tail_subscribers"] == 200 and st["parked_calls"] == 200
    assert threads_of(s.pid) < before + 20  # no thread per subscriber
    # the two pooled connections are free: queries and puts go on
    for i in range(5):
        put(c, "events", ids(100 + i, 1))
        assert c.do_get(flight.Ticket(b"SELECT count(*) AS n FROM events")).read_all()["n"][0].as_py() == 2 + i
    for t in tails[:20]:
        assert [r["id"] for r in t.read_rows(5)] == [100, 101, 102, 103, 104]
    for t in tails:
        t.cancel()
    deadline = time.monotonic() + 10
    while stats(c)["tail_subscribers"] != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stats(c)["tail_subscribers"] == 0 and stats(c)["parked_calls"] == 0


def test_many_filters_each_get_their_rows_in_commit_order(wigeon_server):
    """Subscribers of one table with different WHEREs over the same columns are served by one
    query per round (a family); each still gets exactly what its own WHERE selects, in commit
    order, and a WHERE that fails on some row cuts off that subscriber alone."""
    s = wigeon_server()
    c = s.client()
    put(c, "events", ids(0, 1))
    everything = Tail(s.client(), tail="events", **{"from": "now"})
    k = 24
    clients = [s.client() for _ in range(4)]
    mods = [Tail(clients[i % 4], tail="events", where=f"id % {k} = {i}", **{"from": "now"})
            for i in range(k)]
    bees = [Tail(clients[i], tail="events", where="category = 'B'", **{"from": "now"})
            for i in range(3)]  # one group of three inside the family
    evens = Tail(clients[0], tail="events", where="id % 2 = 0", columns=["id"],
                 **{"from": "now"})  # another family: other columns
    bad = Tail(clients[1], tail="events", where="CAST(category AS INTEGER) = 1",
               **{"from": "now"})  # fails on the first row
    n_puts, rows = 60, 7

    def writer(w):
        wc = s.client()
        for p in range(w, n_puts, 2):
            put(wc, "events", ids(1 + p * rows, rows, "AB"[p % 2]))

    queries_before = stats(c)["tail_filter_queries"]
    ws = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for t in ws:
        t.start()
    for t in ws:
        t.join()
    total = n_puts * rows
    order = [r for r in everything.read_rows(total)]
    assert sorted(r["id"] for r in order) == list(range(1, total + 1))
    for i, t in enumerate(mods):
        want = [r for r in order if r["id"] % k == i]
        assert t.read_rows(len(want)) == want
        seqs = [q for q, _, _ in t.live]
        assert seqs == sorted(seqs)
    for t in bees:
        want = [r for r in order if r["category"] == "B"]
        assert t.read_rows(len(want)) == want
    want = [{"id": r["id"]} for r in order if r["id"] % 2 == 0]
    assert evens.read_rows(len(want)) == want
    # one query per round for the family (and one for `evens`), not one per subscriber: 26
    # subscribers' WHEREs over 60 puts would be 1560 queries at least one per put and group
    queries = stats(c)["tail_filter_queries"] - queries_before
    assert queries < 3 * n_puts + k, queries
    with pytest.raises(CALL_FAILED, match="(?i)conver|cast"):
        while True:
            bad.read()
    # the others go on after the bad one left
    put(c, "events", ids(10_000, 1, "B"))
    for t in bees:
        assert t.read()[2].to_pylist() == [{"id": 10_000, "category": "B"}]
    assert mods[10_000 % k].read()[2].to_pylist() == [{"id": 10_000, "category": "B"}]
    for t in [everything, evens, *mods, *bees]:
        t.cancel()


def test_a_where_costly_to_plan_is_refused_without_holding_up_puts(server):
    """DuckDB folds constant expressions while planning, where no interrupt reaches; the snapshot
    is planned under the commit lock, so such a WHERE would stop every put for its duration."""
    c = server.client()
    put(c, "events", ids(0, 1))
    costly = "levenshtein(repeat('a', 40000), repeat('b', 40000)) >= 0"
    with pytest.raises(CALL_FAILED, match="to plan"):
        Tail(c, tail="events", where=costly)
    t = Tail(c, tail="events", where="id >= 0", **{"from": "now"})
    put(c, "events", ids(1, 1))
    assert [r["id"] for r in t.read_rows(1)] == [1]
    t.cancel()


# A subscriber in another process, which the test freezes with SIGSTOP: its kernel keeps the TCP
# connection up (no FIN, no reset), as a machine that vanished behind a partition would.
SUBSCRIBER = """
import sys, pyarrow.flight as flight
c = flight.connect(sys.argv[1])
r = c.do_get(flight.Ticket(b'{"tail": "events", "from": "now"}'))
r.read_chunk()
print("subscribed", flush=True)
while True:
    r.read_chunk()
"""


def test_keepalive_drops_a_subscriber_that_stopped_answering(wigeon_server):
    import os
    import signal
    import subprocess
    import sys
    s = wigeon_server(args=["--keepalive", "1"])
    c = s.client()
    put(c, "events", ids(0, 1))
    alive = Tail(s.client(), tail="events", **{"from": "now"})  # answers pings: stays
    frozen = subprocess.Popen([sys.executable, "-c", SUBSCRIBER, s.uri], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert frozen.stdout.readline().strip() == "subscribed"
        deadline = time.monotonic() + 10
        while stats(c)["tail_subscribers"] != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stats(c)["tail_subscribers"] == 2
        os.kill(frozen.pid, signal.SIGSTOP)
        # no data flows: only the server's pings can find out (one a second, 1 s to answer)
        deadline = time.monotonic() + 20
        while stats(c)["tail_subscribers"] != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stats(c)["tail_subscribers"] == 1
        time.sleep(3)  # the live one answers its pings and keeps its subscription
        assert stats(c)["tail_subscribers"] == 1
        put(c, "events", ids(1, 1))
        assert [r["id"] for r in alive.read_rows(1)] == [1]
    finally:
        frozen.kill()
        frozen.wait()
    alive.cancel()


def test_sql_changes_are_not_delivered(server):
    c = server.client()
    put(c, "events", ids(0, 1))
    t = Tail(c, tail="events", **{"from": "now"})
    list(c.do_action(flight.Action("execute", b"INSERT INTO events VALUES (50, 'Z')")))
    put(c, "events", ids(60, 1))
    assert [r["id"] for r in t.read_rows(1)] == [60]


def test_deadline_ends_the_tail(server):
    c = server.client()
    put(c, "events", ids(0, 1))
    t = Tail(c, tail="events", timeout=1)
    with pytest.raises(flight.FlightTimedOutError):
        while True:
            t.read()
    deadline = time.monotonic() + 10
    while stats(c)["tail_subscribers"] != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stats(c)["tail_subscribers"] == 0


def test_server_stops_cleanly_with_subscribers(wigeon_server):
    s = wigeon_server()
    c = s.client()
    put(c, "events", ids(0, 1))
    tails = [Tail(s.client(), tail="events") for _ in range(5)]
    assert s.stop() == 0
    for t in tails:
        with pytest.raises(CALL_FAILED):
            while True:
                t.read()


def test_costly_where_is_ended_without_holding_up_others(wigeon_server):
    s = wigeon_server(args=["--query-timeout", "2"])
    c = s.client()
    put(c, "events", ids(0, 1))
    costly = "(SELECT count(*) FROM range(100000000000) r(x) WHERE x % 7 = 3) >= 0"
    bad = Tail(c, tail="events", where=costly, **{"from": "now"})
    good = Tail(s.client(), tail="events", **{"from": "now"})
    put(c, "events", ids(1, 1))
    put(c, "events", ids(2, 1))
    assert [r["id"] for r in good.read_rows(2)] == [1, 2]
    with pytest.raises(CALL_FAILED, match="ran longer than 2000 ms"):
        bad.read()
    put(c, "events", ids(3, 1))
    assert [r["id"] for r in good.read_rows(3)] == [1, 2, 3]
