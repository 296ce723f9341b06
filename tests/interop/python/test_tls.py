"""TLS against the real server: `wigeon serve --tls-cert/--tls-key [--tls-client-ca]` with
certificates made in the test by the openssl command (certs.py), and real clients: pyarrow's
FlightClient, the ADBC Flight SQL driver, Python's ssl module (to see which certificate the
server presents) and our own CLI."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from certs import make_certs
from conftest import wigeon_binary


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def tls_args(certs, cert="server", client_ca=None, folder=None):
    """serve flags for cert; copies the files into folder (when given) so the test can replace
    them later without touching the shared ones."""
    c, k = getattr(certs, cert), getattr(certs, cert + "_key")
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        c = shutil.copy(c, folder / "cert.pem")
        k = shutil.copy(k, folder / "key.pem")
    args = ["--tls-cert", str(c), "--tls-key", str(k)]
    if client_ca is not None:
        args += ["--tls-client-ca", client_ca]
    return args


def tls_client(server, certs, **kwargs):
    return flight.FlightClient(server.uri, tls_root_certs=certs.pem("ca.pem"), **kwargs)


def query(client, sql, timeout=10):
    options = flight.FlightCallOptions(timeout=timeout)
    return client.do_get(flight.Ticket(sql.encode()), options).read_all()


def refused(client):
    """The first call of a client whose handshake must fail: UNAVAILABLE, within seconds."""
    start = time.monotonic()
    with pytest.raises(flight.FlightUnavailableError):
        query(client, "SELECT 1", timeout=10)
    assert time.monotonic() - start < 9


def presented_der(port, ca):
    """The DER certificate the server presents to a fresh TLS connection."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            return tls.getpeercert(binary_form=True)


def der_of(path):
    return ssl.PEM_cert_to_DER_cert(open(path).read())


# ---- serving over TLS ------------------------------------------------------------------------

def test_query_and_put_round_trip(wigeon_server, certs):
    server = wigeon_server(args=tls_args(certs))
    assert server.uri.startswith("grpc+tls://127.0.0.1:")
    client = tls_client(server, certs)
    assert query(client, "SELECT 42 AS x").to_pylist() == [{"x": 42}]
    table = pa.table({"id": pa.array(range(1000), pa.int64()),
                      "name": pa.array([f"n{i}" for i in range(1000)])})
    writer, _ = client.do_put(flight.FlightDescriptor.for_path("tls_t"), table.schema)
    writer.write_table(table)
    writer.close()
    got = query(client, "SELECT * FROM tls_t ORDER BY id")
    assert got.equals(table)
    # localhost is in the certificate too (SAN DNS)
    by_name = flight.FlightClient(f"grpc+tls://localhost:{server.port}",
                                  tls_root_certs=certs.pem("ca.pem"))
    assert query(by_name, "SELECT count(*) AS n FROM tls_t").to_pylist() == [{"n": 1000}]


def test_plaintext_client_to_tls_server_fails_cleanly(wigeon_server, certs):
    server = wigeon_server(args=tls_args(certs))
    plain = flight.FlightClient(f"grpc://127.0.0.1:{server.port}")
    for _ in range(3):
        refused(plain)
    assert server.alive()
    assert query(tls_client(server, certs), "SELECT 1 AS one").to_pylist() == [{"one": 1}]
    # nothing of ours is logged per failed handshake (gRPC logs one line each)
    ours = [l for l in server.stderr().splitlines() if l.startswith("wigeon")]
    assert ours == [], ours


def test_untrusted_server_certificate_refused(wigeon_server, certs):
    server = wigeon_server(args=tls_args(certs, "untrusted"))
    refused(tls_client(server, certs))
    # trusting its CA makes it work: the refusal was the trust, not the server
    ok = flight.FlightClient(server.uri, tls_root_certs=certs.pem("other_ca.pem"))
    assert query(ok, "SELECT 2 AS two").to_pylist() == [{"two": 2}]


def test_expired_server_certificate_refused(wigeon_server, certs):
    server = wigeon_server(args=tls_args(certs, "expired"))
    refused(tls_client(server, certs))
    assert server.alive()


def test_wrong_host_name_refused(wigeon_server, certs):
    server = wigeon_server(args=tls_args(certs))
    # the certificate names 127.0.0.1 and localhost, not this name
    client = flight.FlightClient(server.uri, tls_root_certs=certs.pem("ca.pem"),
                                 override_hostname="not-the-server.example")
    refused(client)


# ---- mutual TLS ---------------------------------------------------------------------------------

def test_mtls_client_certificate(wigeon_server, certs):
    server = wigeon_server(args=tls_args(certs, client_ca=certs.ca))
    client = tls_client(server, certs, cert_chain=certs.pem("client.pem"),
                        private_key=certs.pem("client.key"))
    assert query(client, "SELECT 7 AS seven").to_pylist() == [{"seven": 7}]


def test_mtls_missing_client_certificate_refused(wigeon_server, certs):
    server = wigeon_server(args=tls_args(certs, client_ca=certs.ca))
    refused(tls_client(server, certs))
    assert server.alive()


def test_mtls_client_certificate_of_another_ca_refused(wigeon_server, certs):
    server = wigeon_server(args=tls_args(certs, client_ca=certs.ca))
    refused(tls_client(server, certs, cert_chain=certs.pem("other_client.pem"),
                       private_key=certs.pem("other_client.key")))
    assert server.alive()


# ---- rotation (SIGHUP) --------------------------------------------------------------------------

def wait_for_log(server, text, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in server.stderr():
            return
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} in the server's log:\n{server.stderr()}")


def test_sighup_rotates_the_certificate(wigeon_server, certs, tmp_path):
    files = tmp_path / "live"
    server = wigeon_server(args=tls_args(certs, folder=files))
    assert presented_der(server.port, certs.ca) == der_of(certs.server)
    old = tls_client(server, certs)
    assert query(old, "SELECT 1 AS one").to_pylist() == [{"one": 1}]

    shutil.copy(certs.server2, files / "cert.pem")
    shutil.copy(certs.server2_key, files / "key.pem")
    os.kill(server.pid, signal.SIGHUP)
    wait_for_log(server, "SIGHUP: reloaded")
    assert presented_der(server.port, certs.ca) == der_of(certs.server2)
    # a new client works with the new certificate, the old connection keeps working
    assert query(tls_client(server, certs), "SELECT 2 AS two").to_pylist() == [{"two": 2}]
    assert query(old, "SELECT 3 AS three").to_pylist() == [{"three": 3}]


def test_sighup_with_a_bad_file_keeps_the_old_certificate(wigeon_server, certs, tmp_path):
    files = tmp_path / "live"
    server = wigeon_server(args=tls_args(certs, folder=files))
    # a key that does not match the certificate
    shutil.copy(certs.server2_key, files / "key.pem")
    os.kill(server.pid, signal.SIGHUP)
    wait_for_log(server, "reload failed")
    assert "does not match" in server.stderr()
    assert presented_der(server.port, certs.ca) == der_of(certs.server)
    # not PEM at all
    (files / "cert.pem").write_text("garbage\n")
    os.kill(server.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while server.stderr().count("reload failed") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "is not a PEM file" in server.stderr()
    assert query(tls_client(server, certs), "SELECT 4 AS four").to_pylist() == [{"four": 4}]
    assert server.alive()


# ---- the server refuses bad files at start ------------------------------------------------------

@pytest.mark.parametrize("case", ["missing", "mismatch", "not_pem", "cert_only"])
def test_bad_tls_files_stop_the_start(tmp_path, certs, case):
    cert, key = certs.server, certs.server_key
    if case == "missing":
        key = str(tmp_path / "nosuch.key")
    elif case == "mismatch":
        key = certs.server2_key
    elif case == "not_pem":
        (tmp_path / "bad.pem").write_text("hello")
        cert = str(tmp_path / "bad.pem")
    args = ["--tls-cert", cert] + ([] if case == "cert_only" else ["--tls-key", key])
    p = subprocess.run([wigeon_binary(), "serve", "--db", ":memory:", "--listen", "127.0.0.1:0",
                        *args], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    want = {"missing": "nosuch.key", "mismatch": "does not match", "not_pem": "not a PEM file",
            "cert_only": "--tls-cert and --tls-key go together"}[case]
    assert want in p.stderr, p.stderr


# ---- ADBC Flight SQL over grpc+tls --------------------------------------------------------------

def test_adbc_flightsql_over_tls(wigeon_server, certs):
    server = wigeon_server(args=tls_args(certs))
    opt = adbc_driver_flightsql.DatabaseOptions
    kwargs = {opt.TLS_ROOT_CERTS.value: certs.pem("ca.pem").decode()}
    with flightsql.connect(server.uri, db_kwargs=kwargs, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT 40 + 2 AS answer")
            assert cur.fetchall() == [(42,)]


def test_adbc_flightsql_mtls(wigeon_server, certs):
    server = wigeon_server(args=tls_args(certs, client_ca=certs.ca))
    opt = adbc_driver_flightsql.DatabaseOptions
    kwargs = {opt.TLS_ROOT_CERTS.value: certs.pem("ca.pem").decode(),
              opt.MTLS_CERT_CHAIN.value: certs.pem("client.pem").decode(),
              opt.MTLS_PRIVATE_KEY.value: certs.pem("client.key").decode()}
    with flightsql.connect(server.uri, db_kwargs=kwargs, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT 'mtls' AS how")
            assert cur.fetchall() == [("mtls",)]


def test_adbc_flightsql_untrusted_refused(wigeon_server, certs):
    server = wigeon_server(args=tls_args(certs, "untrusted"))
    opt = adbc_driver_flightsql.DatabaseOptions
    kwargs = {opt.TLS_ROOT_CERTS.value: certs.pem("ca.pem").decode()}
    with pytest.raises(Exception):
        with flightsql.connect(server.uri, db_kwargs=kwargs, autocommit=True) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchall()


# ---- our CLI ------------------------------------------------------------------------------------

def cli(*args):
    return subprocess.run([wigeon_binary(), *args], capture_output=True, text=True, timeout=60)


def test_cli_query_over_tls_and_mtls(wigeon_server, certs):
    server = wigeon_server(args=tls_args(certs, client_ca=certs.ca))
    ok = cli("query", "--server", server.uri, "--tls-ca", certs.ca, "--tls-cert", certs.client,
             "--tls-key", certs.client_key, "--format", "csv", "SELECT 5 AS five")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["five", "5"]
    no_cert = cli("query", "--server", server.uri, "--tls-ca", certs.ca, "SELECT 1")
    assert no_cert.returncode == 3, no_cert.stderr
    no_ca = cli("query", "--server", server.uri, "--tls-ca", str(certs.folder / "nosuch.pem"),
                "SELECT 1")
    assert no_ca.returncode != 0 and "nosuch.pem" in no_ca.stderr
