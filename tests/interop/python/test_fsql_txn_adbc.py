"""Flight SQL transactions and cancellation through ADBC's Flight SQL driver (the Go driver behind
adbc_driver_flightsql's DB-API), against the real server: autocommit off, commit and rollback seen
from a second connection, an abandoned transaction, and cursor.adbc_cancel() of a long query from
another thread. Skipped when adbc_driver_flightsql is not installed (pip install
adbc-driver-flightsql==1.13.0 adbc-driver-manager==1.13.0)."""

import threading
import time
import warnings

import pytest

dbapi = pytest.importorskip("adbc_driver_flightsql.dbapi")


def connect_in_transaction(uri):
    """connect(autocommit=False); skips when the server does not say it serves transactions
    (GetSqlInfo FLIGHT_SQL_SERVER_TRANSACTION): the driver then warns and stays in autocommit."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        conn = dbapi.connect(uri, autocommit=False)
    if any("autocommit" in str(w.message) for w in seen):
        conn.close()
        pytest.skip("the server's GetSqlInfo does not announce transactions")
    return conn


def count(conn, table):
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")
        return cur.fetchone()[0]


def test_commit_and_rollback_are_seen_only_after_commit(server):
    uri = server.uri
    with dbapi.connect(uri, autocommit=True) as other:
        with other.cursor() as cur:
            cur.execute("CREATE TABLE t (x BIGINT)")
        with connect_in_transaction(uri) as conn:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO t VALUES (1), (2)")
                cur.execute("SELECT count(*) FROM t")
                assert cur.fetchone()[0] == 2  # its own uncommitted rows
            assert count(other, "t") == 0
            conn.rollback()
            assert count(other, "t") == 0
            assert count(conn, "t") == 0
            with conn.cursor() as cur:
                cur.execute("INSERT INTO t VALUES (3)")
            assert count(other, "t") == 0
            conn.commit()
            assert count(other, "t") == 1
            with conn.cursor() as cur:  # a new transaction began after the commit
                cur.execute("INSERT INTO t VALUES (4)")
        # closed with that one open: it is rolled back (at once or when it expires)
        assert count(other, "t") == 1


def test_abandoned_transaction_expires(wigeon_server):
    srv = wigeon_server(args=["--session-idle-timeout", "1"], db=":memory:")
    with dbapi.connect(srv.uri, autocommit=True) as other:
        with other.cursor() as cur:
            cur.execute("CREATE TABLE t (x BIGINT)")
        conn = connect_in_transaction(srv.uri)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (1)")
        time.sleep(2.5)
        with pytest.raises(dbapi.Error, match="unknown transaction id"):
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        try:
            conn.close()
        except dbapi.Error:
            pass
        assert count(other, "t") == 0


def test_adbc_cancel_stops_a_long_query(server):
    with dbapi.connect(server.uri, autocommit=True) as conn:
        cur = conn.cursor()
        failure = []

        def run():
            try:
                cur.execute("SELECT count(*) FROM range(10000000000)")
                cur.fetchall()
            except Exception as e:  # noqa: BLE001 (what it raises is the point)
                failure.append(e)

        t = threading.Thread(target=run)
        t.start()
        time.sleep(1.0)
        start = time.monotonic()
        cur.adbc_cancel()
        t.join(30)
        assert not t.is_alive()
        assert time.monotonic() - start < 10
        assert failure, "the query finished instead of being cancelled"
        cur.close()
        with conn.cursor() as c2:  # the connection works on
            c2.execute("SELECT 42")
            assert c2.fetchone()[0] == 42


def test_the_same_statement_after_commit_and_scripts_in_a_transaction(server):
    """The driver prepares a statement once, in the transaction of the moment, and runs it again
    after commit() (a new transaction); a script runs inside the transaction."""
    with dbapi.connect(server.uri, autocommit=True) as other:
        with other.cursor() as cur:
            cur.execute("CREATE TABLE t (x BIGINT)")
        with connect_in_transaction(server.uri) as conn:
            with conn.cursor() as cur:
                for i in range(3):
                    cur.execute("INSERT INTO t VALUES (1)")
                    conn.commit()
                    assert count(other, "t") == i + 1
                cur.executescript("INSERT INTO t VALUES (2); INSERT INTO t VALUES (3)")
                assert count(other, "t") == 3
                cur.execute("SELECT count(*) FROM t")
                assert cur.fetchone()[0] == 5
                with pytest.raises(dbapi.Error):  # COMMIT as SQL: refused, it stays open
                    cur.execute("COMMIT")
                conn.rollback()
            assert count(other, "t") == 3



def test_closed_connections_give_their_transactions_back(wigeon_server):
    """Python's DB-API default is autocommit off: every connection holds a transaction, and its
    close sends only CloseSession. More connections than --max-sessions, one after the other."""
    srv = wigeon_server(args=["--max-sessions", "2"], db=":memory:")
    for i in range(5):
        with connect_in_transaction(srv.uri) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                assert cur.fetchone()[0] == 1
