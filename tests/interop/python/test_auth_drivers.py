"""Authentication with ADBC's Flight SQL driver (adbc-driver-flightsql, the Go driver under the ADBC
driver manager) against the real server started with --users (docs/security.md,
"Authentication"): db_kwargs username/password make the driver send a Handshake with Basic and use
the bearer token it gets back. A read user queries, a write user ingests, a read user's ingest is
refused (PERMISSION_DENIED), a wrong password is refused (UNAUTHENTICATED). The JDBC driver's
login is checked in tests/interop/jdbc (the auth pass of run.sh)."""

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from test_auth import PASSWORDS, passwd

dbapi = pytest.importorskip("adbc_driver_flightsql.dbapi")
adbc_driver_manager = pytest.importorskip("adbc_driver_manager")
DatabaseOptions = adbc_driver_manager.DatabaseOptions


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "users"
    for name, (role, password) in PASSWORDS.items():
        r = passwd(path, name, password, "--role", role)
        assert r.returncode == 0, r.stderr
    return path


@pytest.fixture
def auth_server(wigeon_server, users):
    return wigeon_server(args=["--users", str(users)])


def connect(server, user, password):
    return dbapi.connect(server.uri, autocommit=True,
                         db_kwargs={DatabaseOptions.USERNAME.value: user,
                                    DatabaseOptions.PASSWORD.value: password})


def test_option_names_are_the_generic_ones():
    assert DatabaseOptions.USERNAME.value == "username"
    assert DatabaseOptions.PASSWORD.value == "password"


def test_read_user_logs_in_and_queries(auth_server):
    with connect(auth_server, "carol", "carol-secret") as conn, conn.cursor() as cur:
        cur.execute("SELECT 42 AS x")
        assert cur.fetch_arrow_table().column("x").to_pylist() == [42]
        cur.execute("SELECT 7 AS y")
        assert cur.fetchall() == [(7,)]
    # the driver logs in once per database (the Handshake) and carries the token afterwards
    assert auth_server.stderr().count("user carol logged in") == 1


def test_write_user_ingests_and_read_user_is_refused(auth_server):
    t = pa.table({"a": pa.array([1, 2, 3], pa.int64())})
    with connect(auth_server, "bob", "bob-secret") as conn, conn.cursor() as cur:
        assert cur.adbc_ingest("t", t, mode="create") == 3
        cur.execute("SELECT sum(a) AS s FROM t")
        assert cur.fetch_arrow_table().column("s").to_pylist() == [6]
    with connect(auth_server, "carol", "carol-secret") as conn, conn.cursor() as cur:
        # ADBC maps gRPC PERMISSION_DENIED to its status UNAUTHORIZED; the gRPC code is in the text
        with pytest.raises(dbapi.ProgrammingError,
                           match="CommandStatementIngest needs the write role; user 'carol' has "
                                 r"the read role \(PermissionDenied") as e:
            cur.adbc_ingest("t", t, mode="append")
        assert e.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHORIZED
        cur.execute("SELECT count(*) AS n FROM t")  # still reads, nothing was appended
        assert cur.fetch_arrow_table().column("n").to_pylist() == [3]


def test_wrong_password_is_refused_at_connect(auth_server):
    # the driver's Handshake runs when the database is opened: connect itself fails
    for user, password in (("carol", "wrong"), ("mallory", "carol-secret")):
        with pytest.raises(dbapi.ProgrammingError,
                           match="UNAUTHENTICATED: .*bad user name or password") as e:
            connect(auth_server, user, password)
        assert e.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED
    err = auth_server.stderr()
    assert "failed login for user carol" in err and "wrong password" in err


def test_no_credentials_is_refused(auth_server):
    with dbapi.connect(auth_server.uri, autocommit=True) as conn, conn.cursor() as cur:
        with pytest.raises(dbapi.ProgrammingError, match="UNAUTHENTICATED: .*authentication "
                                                         "required") as e:
            cur.execute("SELECT 1")
        assert e.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED
