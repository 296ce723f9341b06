"""pytest fixtures for the Python interop suite: the real `wigeon` binary on a free loopback port.

Each test that asks for `server` gets its own server process on 127.0.0.1 (port 0: the kernel picks
a free one, the server prints it) with a fresh database folder, stopped by its pid (SIGTERM) when
the test ends. `wigeon_server` makes more of them, with extra `serve` flags.

The binary: $WIGEON (ctest sets it), else build/wigeon from the repository root.
Run: .deps/venv/bin/python -m pytest tests/interop/python  (scripts/test.sh does, through ctest)
"""

import os
import pathlib
import signal
import subprocess
import time

import pyarrow.flight as flight
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def wigeon_binary():
    path = os.path.abspath(os.environ.get("WIGEON") or str(ROOT / "build" / "wigeon"))
    if not os.access(path, os.X_OK):
        pytest.exit(f"{path} is not an executable: build it (cmake --build build) or set WIGEON",
                    returncode=2)
    return path


def sanitized():
    """True when the binary under test is an ASan/UBSan build (slow: large tests skip)."""
    return os.environ.get("WG_SANITIZE") == "1"


class Server:
    """One `wigeon serve` process. `uri` is grpc://127.0.0.1:PORT; `client()` connects pyarrow."""

    def __init__(self, folder, args=(), db="wigeon.duckdb"):
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.db = db if db == ":memory:" else str(self.folder / db)
        self.args = list(args)
        self.proc = None
        self.uri = None
        self.start()

    def start(self):
        self.out = open(self.folder / "server.out", "ab")
        self.err = open(self.folder / "server.err", "ab")
        listen_line_at = self.out.tell()
        self.proc = subprocess.Popen(
            [wigeon_binary(), "serve", "--db", self.db, "--listen", "127.0.0.1:0", *self.args],
            stdout=self.out, stderr=self.err, cwd=self.folder, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with open(self.folder / "server.out", "rb") as f:
                f.seek(listen_line_at)
                line = f.readline().decode()
            if line.endswith("\n") and "listening on grpc" in line:
                self.uri = line.split("listening on ", 1)[1].split()[0]  # grpc:// or grpc+tls://
                self.port = int(self.uri.rsplit(":", 1)[1])
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"wigeon serve exited with {self.proc.returncode} before "
                                   f"listening:\n{self.stderr()}")
            time.sleep(0.05)
        raise RuntimeError(f"wigeon serve did not listen within 60 s:\n{self.stderr()}")

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        try:
            return (self.folder / "server.err").read_text(errors="replace")
        except OSError:
            return ""

    def client(self, **kwargs):
        return flight.FlightClient(self.uri, **kwargs)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Stops the server by its pid; returns its exit status (negative: killed by a signal)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"wigeon serve did not stop within {timeout} s of {sig!r}")
        finally:
            self.out.close()
            self.err.close()
            self.proc = None
        return status

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        self.start()


@pytest.fixture
def wigeon_server(tmp_path):
    """A factory: wigeon_server(args=[...], db=...) starts one more server; all stop at the end,
    and the test fails if one of them died during it or did not exit cleanly on SIGTERM."""
    started = []

    def make(args=(), db="wigeon.duckdb", name=None):
        s = Server(tmp_path / (name or f"server{len(started)}"), args=args, db=db)
        started.append(s)
        return s

    yield make
    problems = []
    for s in started:
        if s.proc is None:
            continue
        if s.proc.poll() is not None:
            problems.append(f"the server in {s.folder} died during the test "
                            f"(exit {s.proc.returncode}):\n{s.stderr()[-4000:]}")
            s.out.close()
            s.err.close()
            continue
        status = s.stop()
        if status != 0:
            problems.append(f"the server in {s.folder} exited with {status} on SIGTERM:\n"
                            f"{s.stderr()[-4000:]}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def server(wigeon_server):
    """A fresh server (its own database folder) for this test."""
    return wigeon_server()


@pytest.fixture
def client(server):
    c = server.client()
    yield c
    c.close()


def pytest_configure(config):
    config.addinivalue_line("markers", "large: moves gigabytes or millions of rows (skipped "
                                       "under ASan: WG_SANITIZE=1)")


def pytest_collection_modifyitems(config, items):
    if not sanitized():
        return
    skip = pytest.mark.skip(reason="large data under ASan is too slow; the normal build runs it")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)
