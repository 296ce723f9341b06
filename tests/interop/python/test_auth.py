"""Authentication against the real server (docs/security.md, "Authentication"): a users file made
with `wigeon passwd`, logins with pyarrow's authenticate_basic_token (a Handshake with Basic, the
bearer token read from the response headers), queries and puts with the token, and every refusal:
no credentials, wrong password, unknown user, expired, forged and revoked tokens, the login flood,
and the loopback-only default without --users."""

import base64
import os
import signal
import subprocess
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import Server, wigeon_binary

PASSWORDS = {"alice": ("admin", "alice-secret"), "bob": ("write", "bob-secret"),
             "carol": ("read", "carol-secret")}


def passwd(users, name, password, *args):
    return subprocess.run([wigeon_binary(), "passwd", "--users", str(users), name, *args],
                          input=(password + "\n").encode(), capture_output=True)


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "users"
    for name, (role, password) in PASSWORDS.items():
        r = passwd(path, name, password, "--role", role)
        assert r.returncode == 0, r.stderr
    return path


def login(server, user, password):
    c = server.client()
    key, value = c.authenticate_basic_token(user, password)
    return c, flight.FlightCallOptions(headers=[(key, value)])


def query(c, options, sql):
    return c.do_get(flight.Ticket(sql.encode()), options=options).read_all()


def test_basic_login_then_queries_and_puts_with_the_token(wigeon_server, users):
    s = wigeon_server(args=["--users", str(users)])
    c, opts = login(s, "bob", "bob-secret")
    assert query(c, opts, "SELECT 42 AS x").column("x").to_pylist() == [42]
    table = pa.table({"a": pa.array([1, 2, 3], pa.int64())})
    desc = flight.FlightDescriptor.for_path("t")
    writer, reader = c.do_put(desc, table.schema, options=opts)
    writer.write_table(table)
    writer.done_writing()
    reader.read()
    writer.close()
    assert query(c, opts, "SELECT sum(a) AS s FROM t").column("s").to_pylist() == [6]
    # one login, one password hash: the token carries every later call
    assert s.stderr().count("user bob logged in") == 1


def test_token_is_base64url_of_256_bits(wigeon_server, users):
    s = wigeon_server(args=["--users", str(users)])
    key, value = s.client().authenticate_basic_token("carol", "carol-secret")
    assert key.lower() == b"authorization" or key.lower() == "authorization"
    value = value.decode() if isinstance(value, bytes) else value
    assert value.startswith("Bearer ")
    token = value[len("Bearer "):]
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert len(raw) == 32


def test_refusals(wigeon_server, users):
    s = wigeon_server(args=["--users", str(users)])
    c = s.client()
    with pytest.raises(flight.FlightUnauthenticatedError, match="authentication required"):
        query(c, None, "SELECT 1")
    with pytest.raises(flight.FlightUnauthenticatedError, match="bad user name or password"):
        c.authenticate_basic_token("alice", "wrong")
    with pytest.raises(flight.FlightUnauthenticatedError, match="bad user name or password"):
        c.authenticate_basic_token("mallory", "alice-secret")
    forged = "Bearer " + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    opts = flight.FlightCallOptions(headers=[(b"authorization", forged.encode())])
    with pytest.raises(flight.FlightUnauthenticatedError, match="unknown bearer token"):
        query(c, opts, "SELECT 1")
    opts = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer not-a-token")])
    with pytest.raises(flight.FlightUnauthenticatedError, match="invalid bearer token"):
        query(c, opts, "SELECT 1")
    for hidden in (b"carol\0:carol-secret", b"carol\0x:carol-secret"):
        # a NUL in the decoded name must not cut it short into a real user's name
        basic = b"Basic " + base64.b64encode(hidden)
        opts = flight.FlightCallOptions(headers=[(b"authorization", basic)])
        with pytest.raises(flight.FlightUnauthenticatedError, match="malformed Basic"):
            query(c, opts, "SELECT 1")
    opts = flight.FlightCallOptions(headers=[(b"authorization", b"Digest x")])
    with pytest.raises(flight.FlightUnauthenticatedError, match="unsupported"):
        query(c, opts, "SELECT 1")
    err = s.stderr()
    assert "failed login for user alice from ipv4:127.0.0.1:" in err and "wrong password" in err
    assert "failed login for user mallory" in err and "no such user" in err


def test_basic_on_every_call_hashes_once(wigeon_server, users):
    s = wigeon_server(args=["--users", str(users)])
    c = s.client()
    basic = b"Basic " + base64.b64encode(b"carol:carol-secret")
    opts = flight.FlightCallOptions(headers=[(b"authorization", basic)])
    for i in range(5):
        assert query(c, opts, f"SELECT {i} AS x").column("x").to_pylist() == [i]
    assert s.stderr().count("user carol logged in") == 1
    wrong = b"Basic " + base64.b64encode(b"carol:nope")
    with pytest.raises(flight.FlightUnauthenticatedError):
        query(c, flight.FlightCallOptions(headers=[(b"authorization", wrong)]), "SELECT 1")


def test_expired_token_says_so(wigeon_server, users):
    s = wigeon_server(args=["--users", str(users), "--token-ttl", "1"])
    c, opts = login(s, "carol", "carol-secret")
    assert query(c, opts, "SELECT 1 AS x").num_rows == 1
    time.sleep(1.5)
    with pytest.raises(flight.FlightUnauthenticatedError, match="token expired"):
        query(c, opts, "SELECT 1")
    c, opts = login(s, "carol", "carol-secret")  # logging in again works
    assert query(c, opts, "SELECT 1 AS x").num_rows == 1


def test_reload_removes_users_and_changes_roles(wigeon_server, users):
    s = wigeon_server(args=["--users", str(users)])
    c, bob = login(s, "bob", "bob-secret")
    _, carol = login(s, "carol", "carol-secret")
    assert passwd(users, "bob", "", "--delete").returncode == 0
    r = passwd(users, "carol", "carol-secret", "--role", "admin")
    assert r.returncode == 0, r.stderr
    os.kill(s.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reloaded" not in s.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(flight.FlightUnauthenticatedError, match="bob no longer exists"):
        query(c, bob, "SELECT 1")
    with pytest.raises(flight.FlightUnauthenticatedError):
        c.authenticate_basic_token("bob", "bob-secret")
    assert query(c, carol, "SELECT 1 AS x").num_rows == 1  # the token lives on, as admin now


def test_bad_users_file_on_reload_keeps_the_old_users(wigeon_server, users):
    s = wigeon_server(args=["--users", str(users)])
    good = users.read_text()
    users.write_text(good + "dave:superuser:$argon2id$v=19$x\n")
    os.kill(s.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload failed" not in s.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "line 4" in s.stderr() and "bad role superuser" in s.stderr()
    c, opts = login(s, "alice", "alice-secret")
    assert query(c, opts, "SELECT 1 AS x").num_rows == 1


def test_malformed_users_file_stops_the_start(tmp_path, users):
    users.write_text(users.read_text() + "not a user line\n")
    with pytest.raises(RuntimeError, match="line 4"):
        Server(tmp_path / "s", args=["--users", str(users)])


def test_login_flood_is_rate_limited_per_user(wigeon_server, users):
    s = wigeon_server(args=["--users", str(users)])
    c = s.client()
    for _ in range(5):
        with pytest.raises(flight.FlightUnauthenticatedError, match="bad user name or password"):
            c.authenticate_basic_token("alice", "guess")
    t0 = time.monotonic()
    with pytest.raises(flight.FlightUnauthenticatedError,
                       match=r"too many failed logins for user alice; retry in \d+ s"):
        c.authenticate_basic_token("alice", "alice-secret")  # even the right one: no hashing
    assert time.monotonic() - t0 < 0.05
    # another user from the same address still logs in (the address allows 20 failures a minute)
    _, opts = login(s, "carol", "carol-secret")
    assert query(c, opts, "SELECT 1 AS x").num_rows == 1


def test_login_flood_is_rate_limited_per_address(wigeon_server, users):
    s = wigeon_server(args=["--users", str(users)])
    c = s.client()
    for i in range(20):
        with pytest.raises(flight.FlightUnauthenticatedError, match="bad user name or password"):
            c.authenticate_basic_token(f"user{i}", "guess")
    with pytest.raises(flight.FlightUnauthenticatedError,
                       match=r"too many failed logins for address 127.0.0.1"):
        c.authenticate_basic_token("carol", "carol-secret")


def test_non_loopback_without_users_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="without authentication.*--insecure-no-auth"):
        Server(tmp_path / "s", args=["--listen", "0.0.0.0:0"])


def test_insecure_no_auth_warns(wigeon_server):
    s = wigeon_server(args=["--listen", "0.0.0.0:0", "--insecure-no-auth"])
    assert "warning: no authentication (--insecure-no-auth)" in s.stderr()
    c = flight.FlightClient(f"grpc://127.0.0.1:{s.port}")
    assert query(c, None, "SELECT 1 AS x").num_rows == 1


def test_users_on_non_loopback_warns_of_clear_text(wigeon_server, users):
    s = wigeon_server(args=["--listen", "0.0.0.0:0", "--users", str(users)])
    assert "without TLS: passwords and tokens travel in clear" in s.stderr()


def test_group_readable_users_file_warns(wigeon_server, users):
    os.chmod(users, 0o644)
    s = wigeon_server(args=["--users", str(users)])
    assert "may be read by group or others" in s.stderr()


def test_without_users_credentials_are_ignored(server):
    c = server.client()
    basic = b"Basic " + base64.b64encode(b"nobody:nothing")
    opts = flight.FlightCallOptions(headers=[(b"authorization", basic)])
    assert query(c, opts, "SELECT 1 AS x").num_rows == 1


def cli(*args, env_password=None, stdin=b""):
    env = dict(os.environ)
    env.pop("WIGEON_PASSWORD", None)
    if env_password is not None:
        env["WIGEON_PASSWORD"] = env_password
    return subprocess.run([wigeon_binary(), *args], input=stdin, capture_output=True, env=env,
                          timeout=60)


def test_passwd_roles_delete_bad_names_and_never_argv(tmp_path):
    users = tmp_path / "u"
    assert passwd(users, "dan", "pw").returncode == 0
    assert passwd(users, "dan", "pw2").returncode == 0  # keeps its role
    assert passwd(users, "erin", "pw", "--role", "write").returncode == 0
    lines = users.read_text().splitlines()
    assert [line.split(":")[:2] for line in lines] == [["dan", "read"], ["erin", "write"]] or \
        sorted(line.split(":")[0] + ":" + line.split(":")[1] for line in lines) == \
        ["dan:read", "erin:write"]
    assert oct(users.stat().st_mode & 0o777) == "0o600"
    assert passwd(users, "dan", "", "--delete").returncode == 0
    assert [line.split(":")[0] for line in users.read_text().splitlines()] == ["erin"]
    assert passwd(users, "dan", "", "--delete").returncode != 0  # no such user
    assert passwd(users, "bad name", "pw").returncode == 1
    assert passwd(users, "x" * 65, "pw").returncode == 1
    assert passwd(users, "frank", "pw", "--role", "root").returncode == 1
    r = cli("passwd", "--users", str(users), "frank", "secret-on-argv")
    assert r.returncode == 1 and "too many arguments" in r.stderr.decode()
    assert passwd(users, "frank", "").returncode != 0  # an empty password is refused


def test_cli_user_and_token(wigeon_server, users):
    s = wigeon_server(args=["--users", str(users)])
    r = cli("query", "--server", s.uri, "SELECT 1")
    assert r.returncode == 2 and "authentication required" in r.stderr.decode()
    r = cli("query", "--server", s.uri, "--user", "carol", "SELECT 7 AS x",
            env_password="carol-secret")
    assert r.returncode == 0 and "7" in r.stdout.decode(), r.stderr
    r = cli("query", "--server", s.uri, "--user", "carol", "SELECT 1", env_password="nope")
    assert r.returncode == 2 and "bad user name or password" in r.stderr.decode()
    r = cli("query", "--server", s.uri, "--user", "carol", "SELECT 1")  # no terminal, no env
    assert r.returncode == 1
    _, value = s.client().authenticate_basic_token("carol", "carol-secret")
    token = (value.decode() if isinstance(value, bytes) else value)[len("Bearer "):]
    r = cli("tables", "--server", s.uri, "--token", token)
    assert r.returncode == 0, r.stderr


def test_c_client_reuses_its_token_and_logs_in_again_when_it_expires(wigeon_server, users):
    s = wigeon_server(args=["--users", str(users)])
    r = cli("watch", "--server", s.uri, "--user", "bob", "--count", "4", "-n", "0.1",
            "SELECT 1 AS x", env_password="bob-secret")
    assert r.returncode == 0, r.stderr
    assert s.stderr().count("user bob logged in") == 1
    s2 = wigeon_server(args=["--users", str(users), "--token-ttl", "1"])
    r = cli("watch", "--server", s2.uri, "--user", "bob", "--count", "3", "-n", "1.3",
            "SELECT 1 AS x", env_password="bob-secret")
    assert r.returncode == 0, r.stderr
    assert s2.stderr().count("user bob logged in") == 3  # each run after the token expired
