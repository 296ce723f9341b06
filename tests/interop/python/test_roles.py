"""Roles and limits (docs/security.md "Roles", "Limits", "The sandbox") against the real server
with pyarrow. Without --users every caller is the anonymous admin: these tests drive the limits
(which apply to it too) and the sandbox, which holds for admin. The per-role refusals are in
tests/test_roles.c (the engine's classification) until users can log in."""
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

SLOW = "SELECT sum(a.range * b.range) FROM range(200000) a, range(200000) b"


def ticket(sql):
    return flight.Ticket(sql.encode())


def test_query_timeout_ends_a_long_query_and_the_connection_comes_back(wigeon_server):
    s = wigeon_server(args=["--query-timeout", "1", "--threads", "1"])
    c = s.client()
    start = time.monotonic()
    with pytest.raises(flight.FlightTimedOutError, match="query-timeout"):
        c.do_get(ticket(SLOW)).read_all()
    assert time.monotonic() - start < 10
    # the one connection went back clean: the next query runs on it
    assert c.do_get(ticket("SELECT 42 AS x")).read_all().column(0).to_pylist() == [42]


def test_execute_action_is_timed_out_too(wigeon_server):
    s = wigeon_server(args=["--query-timeout", "1"])
    c = s.client()
    with pytest.raises(flight.FlightTimedOutError, match="query-timeout"):
        list(c.do_action(flight.Action("execute", f"CREATE TABLE x AS {SLOW}".encode())))
    tables = c.do_get(ticket("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'x'"))
    assert tables.read_all().column(0).to_pylist() == [0]


def test_max_calls_per_user_refuses_one_more_call(wigeon_server):
    s = wigeon_server(args=["--max-calls-per-user", "1", "--query-timeout", "3"])
    c = s.client()
    errors = []

    def slow():
        try:
            c.do_get(ticket(SLOW)).read_all()
        except flight.FlightError as e:  # the timeout ends it
            errors.append(e)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    # pyarrow maps RESOURCE_EXHAUSTED to ArrowInvalid
    with pytest.raises(pa.ArrowInvalid, match="RESOURCE_EXHAUSTED.*max-calls-per-user"):
        s.client().do_get(ticket("SELECT 1")).read_all()
    t.join()
    assert errors  # ended by its timeout
    # the slot is given back once the server's handler has stopped (just after the client saw
    # the timeout)
    for _ in range(50):
        try:
            assert s.client().do_get(ticket("SELECT 1")).read_all().num_rows == 1
            break
        except pa.ArrowInvalid:
            time.sleep(0.1)
    else:
        pytest.fail("the user's call slot never came back")


def test_max_message_bytes_is_enforced_both_ways(wigeon_server):
    s = wigeon_server(args=["--max-message-bytes", "1048576"])
    c = s.client()
    big = pa.table({"s": ["x" * 1000] * 4000})  # ~4 MB in one batch
    with pytest.raises(pa.ArrowInvalid, match="RESOURCE_EXHAUSTED"):
        w, _ = c.do_put(flight.FlightDescriptor.for_path("big"), big.schema)
        w.write_table(big, max_chunksize=4000)
        w.close()
    # results are cut into batches that fit: a 4 MB result still arrives
    out = c.do_get(ticket("SELECT repeat('x', 1000) AS s FROM range(4000)")).read_all()
    assert out.num_rows == 4000
    # one row bigger than the limit cannot be sent: refused, the server stays up
    with pytest.raises((flight.FlightError, pa.ArrowInvalid)):
        c.do_get(ticket("SELECT repeat('x', 2000000) AS s")).read_all()
    assert c.do_get(ticket("SELECT 1")).read_all().num_rows == 1


def test_memory_limit_fails_a_query_cleanly(wigeon_server):
    s = wigeon_server(args=["--memory-limit", "64MB", "--duckdb-threads", "1"])
    c = s.client()
    with pytest.raises(pa.ArrowInvalid, match="RESOURCE_EXHAUSTED.*Out of Memory"):
        c.do_get(ticket("SELECT string_agg(repeat('x', 100), ',') FROM range(5000000)")).read_all()
    assert c.do_get(ticket("SELECT 1")).read_all().num_rows == 1


@pytest.mark.parametrize("sql", [
    "COPY (SELECT 1) TO '/tmp/wg_roles_py.csv'",
    "ATTACH '/tmp/wg_roles_py.duckdb' AS x",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET threads = 1",
])
def test_the_sandbox_holds_for_the_admin(wigeon_server, sql):
    c = wigeon_server().client()
    # FAILED_PRECONDITION (pyarrow: ArrowInvalid), not PERMISSION_DENIED: the sandbox, not a role
    with pytest.raises(pa.ArrowInvalid, match="precondition failed"):
        list(c.do_action(flight.Action("execute", sql.encode())))
