"""Roles end to end (docs/security.md, "Roles"): real users made with `wigeon passwd`, logged in
with pyarrow's authenticate_basic_token, each kind of call tried by each role against the real
server. A refusal is PERMISSION_DENIED naming the role needed, changes nothing, and the same user's
permitted calls keep working; the sandbox holds for admin too."""

import json

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from test_auth import passwd

USERS = {"ann": ("admin", "ann-pw"), "wes": ("write", "wes-pw"), "rex": ("read", "rex-pw")}


@pytest.fixture
def srv(wigeon_server, tmp_path):
    path = tmp_path / "users"
    for name, (role, pw) in USERS.items():
        r = passwd(path, name, pw, "--role", role)
        assert r.returncode == 0, r.stderr
    s = wigeon_server(args=["--users", str(path)])
    admin = session(s, "ann")
    action(admin, "execute", "CREATE TABLE t (a BIGINT); INSERT INTO t VALUES (1), (2)")
    return s


def session(s, user):
    c = s.client()
    key, value = c.authenticate_basic_token(user, USERS[user][1])
    return c, flight.FlightCallOptions(headers=[(key, value)])


def query(cx, sql):
    c, o = cx
    return c.do_get(flight.Ticket(sql.encode()), options=o).read_all()


def action(cx, name, body=b""):
    c, o = cx
    body = body.encode() if isinstance(body, str) else body
    return [r.body.to_pybytes() for r in c.do_action(flight.Action(name, body), options=o)]


def put(cx, table_name, table):
    c, o = cx
    writer, reader = c.do_put(flight.FlightDescriptor.for_path(table_name), table.schema, options=o)
    writer.write_table(table)
    writer.done_writing()
    ack = reader.read()
    writer.close()
    return json.loads(ack.to_pybytes())


def total(s):
    return query(session(s, "rex"), "SELECT count(*) AS n, sum(a) AS s FROM t").to_pylist()[0]


def denied(fn, role):
    with pytest.raises(flight.FlightUnauthorizedError, match=f"{role}"):
        fn()


ONE = pa.table({"a": pa.array([7], pa.int64())})


@pytest.mark.parametrize("sql", [
    "INSERT INTO t VALUES (99)",
    "SELECT 1; INSERT INTO t VALUES (99)",             # a write after a read in one text
    "SELECT * FROM t; DELETE FROM t",
    "UPDATE t SET a = 0",
    "DELETE FROM t WHERE a = 1",
    "EXPLAIN ANALYZE DELETE FROM t",
    "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
])
def test_a_read_user_cannot_write_through_a_sql_ticket(srv, sql):
    before = total(srv)
    rex = session(srv, "rex")
    with pytest.raises((flight.FlightUnauthorizedError, flight.FlightServerError,
                        pa.ArrowInvalid)) as e:
        query(rex, sql)
    # a ticket of several statements is refused anyway (a DoGet streams one result)
    assert "role" in str(e.value) or ";" in sql and "multiple statements" in str(e.value)
    assert total(srv) == before
    assert query(rex, "SELECT count(*) AS n FROM t").column("n").to_pylist() == [2]


@pytest.mark.parametrize("sql", [
    "SELECT 1; INSERT INTO t VALUES (99)",
    "SELECT * FROM t; DELETE FROM t",
    "BEGIN; SELECT 1; UPDATE t SET a = 0; COMMIT",
])
def test_a_read_user_cannot_write_in_a_multi_statement_execute(srv, sql):
    before = total(srv)
    denied(lambda: action(session(srv, "rex"), "execute", sql), "write")
    assert total(srv) == before


@pytest.mark.parametrize("sql", ["CREATE TABLE u (a INT)", "DROP TABLE t", "ALTER TABLE t ADD b INT",
                                 "SELECT 1; CREATE TABLE u (a INT)"])
def test_a_write_user_cannot_change_the_schema(srv, sql):
    wes = session(srv, "wes")
    tables = "SELECT table_name, column_count FROM duckdb_tables() ORDER BY 1"
    before = query(session(srv, "ann"), tables).to_pylist()
    with pytest.raises((flight.FlightError, pa.ArrowInvalid)) as e:
        query(wes, sql)
    assert "admin" in str(e.value) or ";" in sql and "multiple statements" in str(e.value)
    denied(lambda: action(wes, "execute", sql), "admin")
    assert query(session(srv, "ann"), tables).to_pylist() == before


def test_each_kind_of_call_by_role(srv):
    rex, wes, ann = session(srv, "rex"), session(srv, "wes"), session(srv, "ann")
    # reads: every role
    for cx in (rex, wes, ann):
        assert query(cx, "SELECT sum(a) AS s FROM t").column("s").to_pylist() == [3]
        c, o = cx
        info = c.get_flight_info(flight.FlightDescriptor.for_path("t"), options=o)
        assert info.schema.names == ["a"]
        assert any(f.descriptor.path[-1] == b"t" for f in c.list_flights(options=o))
    # DoPut: write and admin
    denied(lambda: put(rex, "t", ONE), "write")
    assert put(wes, "t", ONE)["rows"] == 1
    assert put(ann, "t", ONE)["rows"] == 1
    # the execute action with DML: write; drop_table, checkpoint, stats: admin
    denied(lambda: action(rex, "execute", "INSERT INTO t VALUES (5)"), "write")
    assert action(wes, "execute", "INSERT INTO t VALUES (5)")
    for name, body in (("checkpoint", b""), ("stats", b""), ("drop_table", b"t")):
        denied(lambda: action(wes, name, body), "admin")
        denied(lambda: action(rex, name, body), "admin")
    assert action(ann, "stats")
    assert action(ann, "checkpoint")
    assert total(srv) == {"n": 5, "s": 22}
    assert action(ann, "drop_table", b"t")


def test_the_sandbox_holds_for_admin(srv, tmp_path):
    ann = session(srv, "ann")
    target = tmp_path / "out.csv"
    for sql in (f"COPY t TO '{target}'", f"ATTACH '{tmp_path / 'x.duckdb'}' AS x",
                "INSTALL httpfs", "LOAD httpfs", "SET threads = 1",
                f"SELECT * FROM read_csv('{tmp_path / 'users'}')"):
        with pytest.raises((flight.FlightError, pa.ArrowInvalid), match="sandbox|refused|disabled|locked"):
            query(ann, sql)
    assert not target.exists()
    assert query(ann, "SELECT count(*) AS n FROM t").column("n").to_pylist() == [2]


def test_flight_sql_paths_honour_the_role(srv):
    adbc = pytest.importorskip("adbc_driver_flightsql.dbapi")
    uri = srv.uri
    with adbc.connect(uri, db_kwargs={"username": "rex", "password": "rex-pw"},
                      autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute("SELECT sum(a) FROM t")
        assert cur.fetchall() == [(3,)]
        with pytest.raises(Exception, match="write"):
            cur.execute("INSERT INTO t VALUES (?)", parameters=(9,))   # a prepared statement
        with pytest.raises(Exception, match="write"):
            cur.execute("DELETE FROM t")
        with pytest.raises(Exception, match="write"):
            cur.adbc_ingest("t", pa.table({"a": pa.array([1], pa.int64())}), mode="append")
        cur.close()
    with adbc.connect(uri, db_kwargs={"username": "wes", "password": "wes-pw"},
                      autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute("INSERT INTO t VALUES (?)", parameters=(9,))
        cur.close()
    assert total(srv) == {"n": 3, "s": 12}
