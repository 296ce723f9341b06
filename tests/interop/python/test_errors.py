"""Errors as pyarrow raises them (issue 10, item 5): for each condition, the gRPC status the server
answers, the exact pyarrow exception class it becomes, the server's message (DuckDB's, clean: no
doubled context, no stack trace), and a query that succeeds right after it. The table in
docs/server.md ("Errors as pyarrow raises them") is this file's CONDITIONS.
"""

import json
import os
import socket
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest


def query(client, sql, options=None):
    return client.do_get(flight.Ticket(sql.encode("utf-8")), options).read_all()


def action(client, kind, body=b""):
    return [json.loads(r.body.to_pybytes()) for r in client.do_action(flight.Action(kind, body))]


def put(client, name, table):
    writer, reader = client.do_put(flight.FlightDescriptor.for_path(name), table.schema)
    writer.write_table(table)
    writer.done_writing()
    reader.read()
    writer.close()


def server_message(exc):
    """The server's message inside pyarrow's text: 'PREFIX, with message: MSG[. gRPC client debug
    context: ...]' (streams add the debug context; unary calls do not)."""
    text = str(exc)
    assert ", with message: " in text, text
    msg = text.split(", with message: ", 1)[1]
    return msg.split(". gRPC client debug context: ", 1)[0]


def assert_serving(client):
    assert query(client, "SELECT 42 AS answer").to_pylist() == [{"answer": 42}]


def bad_sql(client):
    query(client, "SELEC 1")


def missing_table(client):
    query(client, "SELECT * FROM no_such_table")


def conflicting_put(client):
    put(client, "typed", pa.table({"a": pa.array([1], pa.int64())}))
    put(client, "typed", pa.table({"a": pa.array(["not a number"])}))


def duplicate_key(client):
    action(client, "execute", b"CREATE TABLE k (x INTEGER PRIMARY KEY); INSERT INTO k VALUES (1)")
    action(client, "execute", b"INSERT INTO k VALUES (1)")


def not_null(client):
    action(client, "execute", b"CREATE TABLE nn (x INTEGER NOT NULL)")
    action(client, "execute", b"INSERT INTO nn VALUES (NULL)")


def sandboxed(client):
    query(client, "SELECT * FROM duckdb_settings()")


def sql_too_long(client):
    query(client, "SELECT 1" + " " * (1 << 20))


def unknown_action(client):
    action(client, "no_such_action")


def do_exchange(client):
    """DoExchange of a table path: it takes SQL."""
    writer, reader = client.do_exchange(flight.FlightDescriptor.for_path("t"))
    writer.done_writing()
    reader.read_all()


def flight_sql_command(client):
    """A Flight SQL command this server does not serve: a CMD descriptor holding a
    google.protobuf.Any of CommandStatementSubstraitPlan {}."""
    url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementSubstraitPlan"
    value = b""
    cmd = b"\x0a" + bytes([len(url)]) + url + b"\x12" + bytes([len(value)]) + value
    client.get_flight_info(flight.FlightDescriptor.for_command(cmd))


def deadline(client):
    query(client, "SELECT sum(hash(i)) FROM range(1000000000000) t(i)",
          flight.FlightCallOptions(timeout=0.5))


# condition, its gRPC status, the pyarrow class, pyarrow's prefix, a part of the server message
CONDITIONS = [
    (bad_sql, "INVALID_ARGUMENT", pa.lib.ArrowInvalid,
     "Flight returned invalid argument error", 'Parser Error: syntax error at or near "SELEC"'),
    (missing_table, "NOT_FOUND", pa.lib.ArrowKeyError, "Flight returned not found error",
     "Catalog Error: Table with name no_such_table does not exist!"),
    (conflicting_put, "INVALID_ARGUMENT", pa.lib.ArrowInvalid,
     "Flight returned invalid argument error", 'column "a": table has BIGINT, stream has VARCHAR'),
    (duplicate_key, "ALREADY_EXISTS", pa.lib.ArrowException,
     "Unknown: Flight returned already exists error",
     'Constraint Error: Duplicate key "x: 1" violates primary key constraint'),
    (not_null, "FAILED_PRECONDITION", pa.lib.ArrowInvalid,
     "gRPC returned precondition failed error", "Constraint Error: NOT NULL constraint failed"),
    (sandboxed, "FAILED_PRECONDITION", pa.lib.ArrowInvalid,
     "gRPC returned precondition failed error",
     "Permission Error: the function duckdb_settings is refused from remote SQL"),
    (sql_too_long, "RESOURCE_EXHAUSTED", pa.lib.ArrowInvalid,
     "gRPC returned resource exhausted error",
     "DoGet ticket of 1048584 bytes is over this server's limit for SQL text of 1048576 bytes"),
    (unknown_action, "UNIMPLEMENTED", pa.lib.ArrowNotImplementedError,
     "Flight returned unimplemented error",
     "unknown action 'no_such_action'; this server has: execute, drop_table, checkpoint, stats"),
    (do_exchange, "INVALID_ARGUMENT", pa.lib.ArrowInvalid,
     "Flight returned invalid argument error",
     "DoExchange takes a CMD descriptor holding SQL, not a path"),
    (flight_sql_command, "UNIMPLEMENTED", pa.lib.ArrowNotImplementedError,
     "Flight returned unimplemented error",
     "GetFlightInfo: Flight SQL command CommandStatementSubstraitPlan is not supported by this server yet"),
    (deadline, "DEADLINE_EXCEEDED", flight.FlightTimedOutError,
     "Flight returned timeout error", "Deadline Exceeded"),
]


@pytest.mark.parametrize("cause, status, cls, prefix, message", CONDITIONS,
                         ids=[c[0].__name__ for c in CONDITIONS])
def test_error_class_and_message(client, cause, status, cls, prefix, message):
    """The condition raises exactly `cls` (the class pyarrow 26 gives the gRPC status), with
    pyarrow's prefix and the server's message once, without stack trace; the server then serves."""
    with pytest.raises(pa.lib.ArrowException) as e:
        cause(client)
    assert type(e.value) is cls, (type(e.value), str(e.value))
    assert str(e.value).startswith(prefix + ", with message: "), str(e.value)
    msg = server_message(e.value)
    assert message in msg
    assert msg.count(message) == 1, msg
    assert msg.count("LINE 1:") <= 1, msg
    assert "Stack Trace" not in msg and "Error: Error" not in msg, msg
    assert_serving(client)


def test_write_conflict_is_aborted_which_pyarrow_raises_as_internal(server, client):
    """Two transactions updating one row: the second's UPDATE fails with DuckDB's conflict,
    ABORTED, which pyarrow 26 raises as FlightInternalError (its mapping of ABORTED); the first
    still commits."""
    action(client, "execute", b"CREATE TABLE acct (id INTEGER PRIMARY KEY, v INTEGER); "
                              b"INSERT INTO acct VALUES (1, 0)")
    first = {}

    def long_transaction():
        c = server.client()
        first["result"] = action(c, "execute", b"BEGIN; UPDATE acct SET v = 1 WHERE id = 1; "
                                               b"CREATE TABLE waste AS SELECT sum(hash(i)) AS s "
                                               b"FROM range(200000000) t(i); COMMIT")

    t = threading.Thread(target=long_transaction)
    t.start()
    wait_until(lambda: stats(client)["active_calls"] >= 2)
    time.sleep(0.3)  # the first call's UPDATE comes first thing in its transaction
    with pytest.raises(pa.lib.ArrowException) as e:
        action(client, "execute", b"UPDATE acct SET v = 2 WHERE id = 1")
    t.join()
    assert type(e.value) is flight.FlightInternalError
    assert str(e.value).startswith("gRPC returned aborted error, with message: ")
    assert server_message(e.value).startswith("TransactionContext Error: Conflict on update!")
    assert len(first["result"]) == 1
    assert query(client, "SELECT v FROM acct").to_pylist() == [{"v": 1}]


def test_unreachable_server_is_unavailable():
    """A port nobody listens on: FlightUnavailableError."""
    with socket.socket() as s:  # a free port, closed again: nobody listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = flight.FlightClient(f"grpc://127.0.0.1:{port}")
    with pytest.raises(flight.FlightUnavailableError) as e:
        query(c, "SELECT 1", flight.FlightCallOptions(timeout=10))
    assert type(e.value) is flight.FlightUnavailableError
    assert "Connection refused" in str(e.value)


def stats(client):
    [s] = action(client, "stats")
    return s


def wait_until(cond, timeout=30):
    deadline_at = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline_at, "condition not reached in time"
        time.sleep(0.02)


def cpu_seconds(pid):
    """User + system CPU time the process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_rate(pid, seconds=1.0):
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def assert_query_stopped(server, client):
    """The stopped query frees the one DuckDB connection (a --threads 1 server answers another
    query) and its CPU: the server's CPU use drops to a small part of what the query used."""
    wait_until(lambda: stats(client)["active_calls"] == 1)
    assert_serving(client)
    return cpu_rate(server.pid)


LONG = "SELECT sum(hash(i)) AS s FROM range(1000000000000) t(i)"


def started_reader(client, sql):
    """do_get's reader, from another thread so that a server that holds the schema back until the
    first batch (as it used to) fails the test after 30 s instead of hanging it."""
    got = {}
    t = threading.Thread(target=lambda: got.update(r=client.do_get(flight.Ticket(sql.encode()))),
                         daemon=True)
    t.start()
    t.join(30)
    assert "r" in got, "do_get did not return: the server did not send the schema"
    return got["r"]


def test_cancelled_do_get_stops_the_query_on_the_server(wigeon_server):
    """reader.cancel() on a do_get of an hours-long aggregate interrupts it on the server: active
    calls fall back, its connection is free for the next query of a --threads 1 server, and the
    server's CPU use drops well below the query's. (Reading the cancelled reader raises
    KeyboardInterrupt in pyarrow 26: it turns any ArrowCancelled into a simulated SIGINT.)"""
    server = wigeon_server(args=["--threads", "1", "--duckdb-threads", "1"])
    client = server.client()
    reader = started_reader(client, LONG)
    wait_until(lambda: cpu_seconds(server.pid) > 0.3)
    busy = cpu_rate(server.pid)
    errors_before = stats(client)["errors"]
    reader.cancel()
    with pytest.raises(KeyboardInterrupt):
        reader.read_all()
    idle = assert_query_stopped(server, client)
    assert idle < busy / 3, (busy, idle)
    assert stats(client)["errors"] == errors_before + 1
    client.close()


def test_deadline_stops_the_query_on_the_server(wigeon_server):
    """A do_get with FlightCallOptions(timeout=1) of an hours-long aggregate: FlightTimedOutError,
    and the server stops the query as for a cancel."""
    server = wigeon_server(args=["--threads", "1", "--duckdb-threads", "1"])
    client = server.client()
    t0 = cpu_seconds(server.pid)
    with pytest.raises(flight.FlightTimedOutError):
        query(client, LONG, flight.FlightCallOptions(timeout=1.0))
    busy = cpu_seconds(server.pid) - t0  # about 1 s of one core while the query ran
    idle = assert_query_stopped(server, client)
    assert idle < max(busy, 0.3) / 3, (busy, idle)
    client.close()
