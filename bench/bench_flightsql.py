#!/usr/bin/env python3
"""wigeon: Flight SQL benchmark. Every figure is measured in one run three ways where it applies:
through the ADBC Flight SQL driver (adbc-driver-flightsql, the Go driver behind the C ABI), through
plain Flight on the same server and port (pyarrow.flight: a ticket of SQL text, a DoPut to a path),
and in-process in DuckDB's Python package doing the same work. The ratios (ADBC / plain Flight,
plain Flight / in-process) are the result. Figures:
  small     SELECT of one row by key from a 1M-row seed-shaped table: p50 / p99 per call (ADBC's
            DB-API, an ADBC statement without a prepare, and pyarrow sending the same two Flight
            SQL calls, GetFlightInfo + DoGet, so the driver's share shows)
  query     SELECT * of a 10M-row seed-shaped table: MB/s (Arrow bytes of the result)
  ingest    adbc_ingest of 10M seed-shaped rows against one DoPut of the same batches: rows/s
  prepared  one parameterized SELECT executed 10,000 times (same SQL, new parameters): calls/s
            (plain Flight: a DoGet of the SQL with the values written into it)
Each figure prints one parseable `bench ...` line, and a table comes at the end. A figure that
fails (the server does not serve that part yet, say) prints `bench FIGURE error=...` and the run
goes on. Not a test: asserts nothing.

The server: `$WIGEON` or build-bench/wigeon (a Release build, see docs/performance.md), started as
`wigeon serve --listen 127.0.0.1:0 --db FILE` on a fresh database in a temporary folder, stopped by
its pid at the end. The `stats` action before and after each figure gives the server's RPC calls
per operation (`calls_per_op`): the round trips each path costs.

Usage: .deps/venv/bin/python bench/bench_flightsql.py [--rows N] [--small-rows N] [--calls N]
           [--prepared-calls N] [--rounds N] [--only small,query,ingest,prepared]
           [--serve-args "..."]
"""

import argparse
import datetime
import json
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import adbc_driver_flightsql.dbapi as flightsql
import duckdb
import pyarrow as pa
import pyarrow.flight as flight

ROOT = pathlib.Path(__file__).resolve().parents[1]
BATCH_ROWS = 65536  # rows per record batch of the data the bench sends
START = datetime.datetime(2024, 1, 1)
RESULTS = []  # (figure, parameters, adbc, plain, inprocess, unit, ratio, target, met)

# The seed shape of tests/interop/python/seed_loader.py: batches of 1,000 rows sharing batch_id,
# timestamps one second apart from 2024-01-01 + batch_id hours, value batch_id + (i % 100) * 0.5,
# category cycling over four names. (batch_id, timestamp) is unique: the key of the small query.
SEED_SQL = """
SELECT (i // 1000)::BIGINT AS batch_id,
       strftime(TIMESTAMP '2024-01-01' + to_hours((i // 1000)::BIGINT) + to_seconds(i % 1000),
                '%Y-%m-%dT%H:%M:%S') AS timestamp,
       ((i // 1000) + (i % 100) * 0.5)::DOUBLE AS value,
       ['alpha', 'beta', 'gamma', 'delta'][(i % 4) + 1] AS category
FROM range({rows}) t(i)
"""


def seed_key(i):
    """The (batch_id, timestamp) of row i of a seed table."""
    b = i // 1000
    return b, (START + datetime.timedelta(hours=b, seconds=i % 1000)).isoformat()


def seed_arrow(rows):
    """A seed-shaped pyarrow Table of `rows` rows in batches of BATCH_ROWS (made by DuckDB)."""
    con = duckdb.connect()
    table = con.execute(SEED_SQL.format(rows=rows)).fetch_arrow_table()
    con.close()
    return pa.Table.from_batches(table.to_batches(max_chunksize=BATCH_ROWS), table.schema)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def note(msg):
    print(f"bench_flightsql: {msg}", file=sys.stderr, flush=True)


def result(figure, params, adbc, plain, inproc, unit, target="", met=""):
    ratio = adbc / plain if adbc is not None and plain else None
    RESULTS.append((figure, params, adbc, plain, inproc, unit, ratio, target, met))


def fmt(v):
    return "" if v is None else f"{v:.6g}"


def print_table():
    print("\n| figure | parameters | Flight SQL | plain Flight | in-process | unit | SQL / plain "
          "| target | met |")
    print("|---|---|---:|---:|---:|---|---:|---|---|")
    for figure, params, adbc, plain, inproc, unit, ratio, target, met in RESULTS:
        r = "" if ratio is None else f"{ratio:.2f}"
        print(f"| {figure} | {params} | {fmt(adbc)} | {fmt(plain)} | {fmt(inproc)} | {unit} | {r} "
              f"| {target} | {met} |")


# ---------------------------------------------------------------------------------------------
# The server


class Server:
    """`wigeon serve` on 127.0.0.1:0 with a fresh database in `folder`."""

    def __init__(self, folder, extra_args):
        binary = os.path.abspath(os.environ.get("WIGEON") or str(ROOT / "build-bench" / "wigeon"))
        if not os.access(binary, os.X_OK):
            sys.exit(f"bench_flightsql: {binary} is not an executable: build it (docs/performance.md)"
                     " or set WIGEON")
        self.folder = pathlib.Path(folder)
        self.out = open(self.folder / "server.out", "wb")
        self.err = open(self.folder / "server.err", "wb")
        self.proc = subprocess.Popen(
            [binary, "serve", "--db", str(self.folder / "bench.duckdb"), "--listen", "127.0.0.1:0",
             *extra_args], stdout=self.out, stderr=self.err, cwd=self.folder,
            start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = (self.folder / "server.out").read_text(errors="replace").split("\n")[0]
            if "listening on grpc://" in line:
                self.uri = "grpc://" + line.split("grpc://", 1)[1].split()[0]
                return
            if self.proc.poll() is not None:
                sys.exit(f"bench_flightsql: the server exited with {self.proc.returncode}:\n"
                         + (self.folder / "server.err").read_text(errors="replace"))
            time.sleep(0.05)
        self.stop()
        sys.exit("bench_flightsql: the server did not listen within 60 s")

    def cpu_seconds(self):
        """User + system CPU the server process has used (/proc/PID/stat), in seconds."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.out.close()
        self.err.close()
        if self.proc.returncode != 0:
            tail = (self.folder / "server.err").read_text(errors="replace")[-2000:]
            note(f"the server exited with {self.proc.returncode}:\n{tail}")


def pb_bytes(field, data):
    """One length-delimited protobuf field (wire type 2): key, varint length, bytes."""
    out, n = bytearray([field << 3 | 2]), len(data)
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out) + data


def statement_query_any(sql):
    """google.protobuf.Any{type_url = 1, value = 2} of CommandStatementQuery{query = 1}, the
    field numbers of proto/flight_sql.proto and any.proto (no transaction id)."""
    cmd = pb_bytes(1, sql.encode())
    url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    return pb_bytes(1, url) + pb_bytes(2, cmd)


def stats(client):
    """The server's `stats` action (JSON): calls since start, and the rest."""
    body = b"".join(r.body.to_pybytes() for r in client.do_action(flight.Action("stats", b"")))
    return json.loads(body)


def put(client, name, table):
    """A plain DoPut of `table` to the path `name` (seconds)."""
    t0 = time.perf_counter()
    writer, reader = client.do_put(flight.FlightDescriptor.for_path(name), table.schema)
    for batch in table.to_batches():
        writer.write_batch(batch)
    writer.done_writing()
    reader.read()
    writer.close()
    return time.perf_counter() - t0


def calls_per_op(client, before, ops):
    """RPC calls the server counted per operation since `before` (the stats call itself excluded)."""
    return (stats(client)["calls"] - before - 1) / ops


# ---------------------------------------------------------------------------------------------
# The figures. Each gets the context dict: server, flight client, ADBC connection, in-process
# DuckDB connection, settings.


def fig_small(ctx):
    """One row by key from a 1M-row table: per-call latency through ADBC's DB-API (which asks
    CreatePreparedStatement for every new SQL text), through an ADBC statement executed without
    a prepare (CommandStatementQuery: GetFlightInfo + DoGet), through plain Flight (one DoGet),
    and in-process."""
    a, c, dk, n = ctx["adbc"], ctx["flight"], ctx["duck"], ctx["args"].calls
    rows = ctx["args"].small_rows
    sql = "SELECT * FROM small WHERE batch_id = {b} AND timestamp = '{t}'"
    keys = [seed_key((i * 7919) % rows) for i in range(n)]
    cur = a.cursor()
    raw = a.cursor()

    def adbc_call(b, t):
        cur.execute(sql.format(b=b, t=t))
        return cur.fetch_arrow_table().num_rows

    def statement_call(b, t):
        raw.adbc_statement.set_sql_query(sql.format(b=b, t=t))
        handle, _ = raw.adbc_statement.execute_query()
        return pa.RecordBatchReader._import_from_c(handle.address).read_all().num_rows

    def flight_call(b, t):
        return c.do_get(flight.Ticket(sql.format(b=b, t=t).encode())).read_all().num_rows

    def fsql_call(b, t):  # Flight SQL's two calls from pyarrow: the server's share of ADBC's
        desc = flight.FlightDescriptor.for_command(statement_query_any(sql.format(b=b, t=t)))
        info = c.get_flight_info(desc)
        return c.do_get(info.endpoints[0].ticket).read_all().num_rows

    def duck_call(b, t):
        return dk.execute(sql.format(b=b, t=t)).fetch_arrow_table().num_rows

    paths = (("flight", flight_call), ("fsql_pyarrow", fsql_call), ("adbc", adbc_call),
             ("statement", statement_call), ("inprocess", duck_call))
    p, cpo, cpu = {}, {}, {}
    server = ctx["server"]
    for name, fn in paths:
        for b, t in keys[:min(50, n)]:  # warm-up
            fn(b, t)
        before = stats(c)["calls"] if name != "inprocess" else 0
        lat = []
        cpu0, scpu0 = time.process_time(), server.cpu_seconds()
        for b, t in keys:
            t0 = time.perf_counter()
            got = fn(b, t)
            lat.append((time.perf_counter() - t0) * 1e3)
            if got != 1:
                raise RuntimeError(f"{name}: {got} rows for key ({b}, {t}), expected 1")
        cpu[name] = ((time.process_time() - cpu0) * 1e3 / n,
                     (server.cpu_seconds() - scpu0) * 1e3 / n)
        if name != "inprocess":
            cpo[name] = calls_per_op(c, before, n)
        p[name] = (pct(lat, 50), pct(lat, 99))
    cur.close()
    raw.close()
    fields = " ".join(f"{k}_p50_ms={v[0]:.3f} {k}_p99_ms={v[1]:.3f}" for k, v in p.items())
    calls = " ".join(f"{k}_calls_per_op={v:.2f}" for k, v in cpo.items())
    cpus = " ".join(f"{k}_client_cpu_ms={v[0]:.3f} {k}_server_cpu_ms={v[1]:.3f}"
                    for k, v in cpu.items() if k != "inprocess")
    print(f"bench small rows={rows} calls={n} {fields} {calls} {cpus} "
          f"p50_ratio={p['adbc'][0] / p['flight'][0]:.2f} "
          f"statement_p50_ratio={p['statement'][0] / p['flight'][0]:.2f}", flush=True)
    for label, key in (("ADBC DB-API cursor.execute", "adbc"),
                       ("ADBC statement, no prepare", "statement"),
                       ("not ADBC: pyarrow sending CommandStatementQuery", "fsql_pyarrow")):
        for q, i in (("p50", 0), ("p99", 1)):
            result(f"small query {q}", f"{label}: 1 of {rows} rows by key, {n} calls, "
                   f"RPCs per call {cpo[key]:.1f} (Flight {cpo['flight']:.1f})", p[key][i],
                   p["flight"][i], p["inprocess"][i], "ms")


def fig_query(ctx):
    """SELECT * of the 10M-row table: ADBC fetch_arrow_table against plain DoGet read_all."""
    a, c, dk, rows = ctx["adbc"], ctx["flight"], ctx["duck"], ctx["args"].rows
    sql = "SELECT * FROM seed"
    cur = a.cursor()

    def adbc_read():
        cur.execute(sql)
        return cur.fetch_arrow_table()

    def flight_read():
        return c.do_get(flight.Ticket(sql.encode())).read_all()

    def duck_read():
        return dk.execute(sql).fetch_arrow_table()

    best, cpo, nbytes = {}, {}, 0
    flight_read()  # warm-up: DuckDB's buffer pool holds the table afterwards (both paths warm)
    order = [("flight", flight_read), ("adbc", adbc_read)]
    for r in range(ctx["args"].rounds):  # alternate, keep each path's best
        for name, fn in (order if r % 2 == 0 else order[::-1]) + [("inprocess", duck_read)]:
            before = stats(c)["calls"] if name != "inprocess" else 0
            t0 = time.perf_counter()
            table = fn()
            secs = time.perf_counter() - t0
            if name != "inprocess":
                cpo[name] = calls_per_op(c, before, 1)
            if table.num_rows != rows:
                raise RuntimeError(f"{name}: {table.num_rows} rows, expected {rows}")
            nbytes = table.nbytes
            del table
            best[name] = min(best.get(name, secs), secs)
    cur.close()
    mbs = {k: nbytes / 1e6 / v for k, v in best.items()}
    ratio = mbs["adbc"] / mbs["flight"]
    print(f"bench query rows={rows} bytes={nbytes} adbc_seconds={best['adbc']:.3f} "
          f"adbc_MB_per_s={mbs['adbc']:.1f} flight_seconds={best['flight']:.3f} "
          f"flight_MB_per_s={mbs['flight']:.1f} inprocess_seconds={best['inprocess']:.3f} "
          f"inprocess_MB_per_s={mbs['inprocess']:.1f} adbc_calls={cpo['adbc']:.0f} "
          f"ratio={ratio:.2f} flight_vs_inprocess={mbs['flight'] / mbs['inprocess']:.2f}",
          flush=True)
    result("query", f"SELECT * seed, {rows} rows, {nbytes / 1e6:.0f} MB, best of "
           f"{ctx['args'].rounds}", mbs["adbc"],
           mbs["flight"], mbs["inprocess"], "MB/s", ">= 0.9x", "yes" if ratio >= 0.9 else "no")


def fig_ingest(ctx):
    """adbc_ingest of the 10M rows against one plain DoPut of the same batches, and in-process
    CREATE TABLE AS; --rounds rounds, the order of the two server paths alternating, each path's
    best kept (each round's tables are dropped after it)."""
    a, c, data, rows = ctx["adbc"], ctx["flight"], ctx["data"], ctx["args"].rows
    best, cpo, adbc_error = {}, {}, None

    def flight_ingest(name):
        return put(c, name, data)

    def adbc_ingest(name):
        with a.cursor() as cur:
            t0 = time.perf_counter()
            count = cur.adbc_ingest(name, pa.RecordBatchReader.from_batches(
                data.schema, data.to_batches()), mode="create")
            secs = time.perf_counter() - t0
        if count not in (rows, -1):
            raise RuntimeError(f"adbc_ingest counted {count} rows, expected {rows}")
        return secs

    def duck_ingest(name):
        path = ctx["tmp"] / f"{name}.duckdb"
        dk = duckdb.connect(str(path))
        t0 = time.perf_counter()
        dk.register("incoming", data)
        dk.execute("CREATE TABLE ingest_duck AS SELECT * FROM incoming")
        dk.execute("CHECKPOINT")
        secs = time.perf_counter() - t0
        dk.close()
        path.unlink()
        return secs

    for r in range(ctx["args"].rounds):
        order = [("flight", flight_ingest), ("adbc", adbc_ingest)]
        for name, fn in (order if r % 2 == 0 else order[::-1]) + [("inprocess", duck_ingest)]:
            if name == "adbc" and adbc_error:
                continue
            table = f"ingest_{name}_{r}"
            before = stats(c)["calls"] if name != "inprocess" else 0
            try:
                secs = fn(table)
            except Exception as e:  # the figure's other paths still count
                if name != "adbc":
                    raise
                adbc_error = error_text(e)
                continue
            if name == "inprocess":
                best[name] = min(best.get(name, secs), secs)
                continue
            cpo[name] = calls_per_op(c, before, 1)
            got = c.do_get(flight.Ticket(f"SELECT count(*) FROM {table}".encode())).read_all()
            if got.column(0)[0].as_py() != rows:
                raise RuntimeError(f"{name}: {got.column(0)[0]} rows in {table}, expected {rows}")
            list(c.do_action(flight.Action("drop_table", table.encode())))
            best[name] = min(best.get(name, secs), secs)
    rps = {k: rows / v for k, v in best.items()}
    line = (f"bench ingest rows={rows} batch_rows={BATCH_ROWS} bytes={data.nbytes} "
            f"rounds={ctx['args'].rounds} flight_seconds={best['flight']:.3f} "
            f"flight_rows_per_s={rps['flight']:.0f} inprocess_seconds={best['inprocess']:.3f} "
            f"inprocess_rows_per_s={rps['inprocess']:.0f} "
            f"flight_vs_inprocess={rps['flight'] / rps['inprocess']:.2f}")
    params = f"{rows} seed rows, {BATCH_ROWS}-row batches, best of {ctx['args'].rounds}"
    if adbc_error:
        print(f"{line} adbc_error={json.dumps(adbc_error)}", flush=True)
        result("ingest", f"{params}; ADBC: {table_text(adbc_error)}", None, rps["flight"],
               rps["inprocess"], "rows/s", ">= 0.9x", "not measured")
        return
    ratio = rps["adbc"] / rps["flight"]
    print(f"{line} adbc_seconds={best['adbc']:.3f} adbc_rows_per_s={rps['adbc']:.0f} "
          f"adbc_calls={cpo['adbc']:.0f} ratio={ratio:.2f}", flush=True)
    result("ingest", params, rps["adbc"], rps["flight"], rps["inprocess"], "rows/s", ">= 0.9x",
           "yes" if ratio >= 0.9 else "no")


def fig_prepared(ctx):
    """One parameterized SELECT executed N times with new parameters each time: calls/s. ADBC's
    DB-API prepares once and re-binds while the SQL text is the same; the server's call count
    checks it (CreatePreparedStatement and ClosePreparedStatement would add two calls each)."""
    a, c, dk = ctx["adbc"], ctx["flight"], ctx["duck"]
    n, rows = ctx["args"].prepared_calls, ctx["args"].small_rows
    sql = "SELECT value, category FROM small WHERE batch_id = ? AND timestamp = ?"
    keys = [seed_key((i * 7919) % rows) for i in range(n)]
    t0 = time.perf_counter()
    for b, t in keys:
        if len(dk.execute(sql, [b, t]).fetchall()) != 1:
            raise RuntimeError(f"in-process: not 1 row for ({b}, {t})")
    duck_rate = n / (time.perf_counter() - t0)
    literal = "SELECT value, category FROM small WHERE batch_id = {b} AND timestamp = '{t}'"
    t0 = time.perf_counter()
    for b, t in keys:  # plain Flight has no parameters: the values go into the SQL text
        if c.do_get(flight.Ticket(literal.format(b=b, t=t).encode())).read_all().num_rows != 1:
            raise RuntimeError(f"plain Flight: not 1 row for ({b}, {t})")
    flight_rate = n / (time.perf_counter() - t0)
    cur = a.cursor()
    try:
        cur.execute(sql, keys[0])  # the prepare, and one execution
        first = cur.fetch_arrow_table()
        if first.num_rows != 1:
            raise RuntimeError(f"ADBC: {first.num_rows} rows for the first key, expected 1")
        before = stats(c)["calls"]
        cpu0, scpu0 = time.process_time(), ctx["server"].cpu_seconds()
        t0 = time.perf_counter()
        for b, t in keys:
            cur.execute(sql, (b, t))
            if cur.fetch_arrow_table().num_rows != 1:
                raise RuntimeError(f"ADBC: not 1 row for ({b}, {t})")
        adbc_secs = time.perf_counter() - t0
        client_cpu = (time.process_time() - cpu0) * 1e3 / n
        server_cpu = (ctx["server"].cpu_seconds() - scpu0) * 1e3 / n
        cpo = calls_per_op(c, before, n)
    except Exception as e:
        msg = error_text(e)
        served = probe_prepared(c)
        if served:
            msg = f"{served}; ADBC then says: {msg}"
        print(f"bench prepared calls={n} flight_literal_calls_per_s={flight_rate:.1f} "
              f"inprocess_calls_per_s={duck_rate:.1f} adbc_error={json.dumps(msg)}", flush=True)
        result("prepared", f"{n} executions; ADBC: {table_text(msg)}", None, flight_rate,
               duck_rate, "calls/s")
        return
    finally:
        cur.close()
    rate = n / adbc_secs
    reused = cpo < 4  # bind DoPut + GetFlightInfo + DoGet = 3; a new prepare each time adds 2
    print(f"bench prepared calls={n} adbc_seconds={adbc_secs:.3f} adbc_calls_per_s={rate:.1f} "
          f"adbc_rpcs_per_call={cpo:.2f} reused_prepared={'yes' if reused else 'no'} "
          f"client_cpu_ms_per_call={client_cpu:.3f} server_cpu_ms_per_call={server_cpu:.3f} "
          f"flight_literal_calls_per_s={flight_rate:.1f} inprocess_calls_per_s={duck_rate:.1f} "
          f"ratio={rate / flight_rate:.2f}", flush=True)
    result("prepared", f"{n} executions, RPCs per execution {cpo:.1f} "
           f"(prepared once: {'yes' if reused else 'no'}); plain Flight: values in the SQL text",
           rate, flight_rate, duck_rate, "calls/s")


def probe_prepared(client):
    """The server's answer to a CreatePreparedStatement with an empty body when it says the
    action is not served (ADBC hides that answer and falls back), else None."""
    try:
        list(client.do_action(flight.Action("CreatePreparedStatement", b"")))
    except Exception as e:  # pyarrow raises UNIMPLEMENTED as ArrowNotImplementedError
        if "not served" in str(e):
            return "server: " + " ".join(str(e).split())[:160]
    return None


def error_text(e):
    return " ".join(f"{type(e).__name__}: {e}".split())[:400]


def table_text(msg):
    return msg[:120].replace("|", "/")


FIGURES = {"small": fig_small, "query": fig_query, "ingest": fig_ingest, "prepared": fig_prepared}


# ---------------------------------------------------------------------------------------------


def load(ctx):
    """The tables the figures read: `small` (small_rows) and `seed` (rows), put by plain DoPut
    into the server and made in the in-process database from the same Arrow data."""
    args, c, dk = ctx["args"], ctx["flight"], ctx["duck"]
    t0 = time.perf_counter()
    small = seed_arrow(args.small_rows)
    ctx["data"] = seed_arrow(args.rows)
    note(f"seed data made in {time.perf_counter() - t0:.1f} s "
         f"({ctx['data'].nbytes / 1e6:.0f} MB for {args.rows} rows)")
    t0 = time.perf_counter()
    wanted = set(args.only)
    if wanted & {"small", "prepared"}:
        put(c, "small", small)
        dk.register("small_in", small)
        dk.execute("CREATE TABLE small AS SELECT * FROM small_in")
        dk.unregister("small_in")
    if "query" in wanted:
        put(c, "seed", ctx["data"])
        dk.register("seed_in", ctx["data"])
        dk.execute("CREATE TABLE seed AS SELECT * FROM seed_in")
        dk.unregister("seed_in")
    dk.execute("CHECKPOINT")
    c.do_action(flight.Action("checkpoint", b""))
    note(f"tables loaded in {time.perf_counter() - t0:.1f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows of the query and ingest")
    ap.add_argument("--small-rows", type=int, default=1_000_000, help="rows of the small table")
    ap.add_argument("--calls", type=int, default=2000, help="calls of the small query per path")
    ap.add_argument("--prepared-calls", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2,
                    help="rounds of the query and ingest figures (each path's best is kept)")
    ap.add_argument("--only", default=",".join(FIGURES), help="comma-separated figures")
    ap.add_argument("--serve-args", default="", help="extra `wigeon serve` options")
    args = ap.parse_args()
    args.only = [f for f in args.only.split(",") if f]
    for f in args.only:
        if f not in FIGURES:
            ap.error(f"unknown figure {f!r} (one of {', '.join(FIGURES)})")
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_flightsql-") as tmp:
        tmp = pathlib.Path(tmp)
        server = Server(tmp, shlex.split(args.serve_args))
        note(f"server at {server.uri}")
        ctx = {"args": args, "tmp": tmp, "server": server, "flight": flight.FlightClient(server.uri),
               "duck": duckdb.connect(str(tmp / "inprocess.duckdb"))}
        try:
            ctx["adbc"] = flightsql.connect(server.uri, autocommit=True)
            load(ctx)
            for name in args.only:
                try:
                    FIGURES[name](ctx)
                except Exception as e:  # report and go on: parts of the server may be missing
                    msg = error_text(e)
                    print(f"bench {name} error={json.dumps(msg)}", flush=True)
                    if os.environ.get("WG_BENCH_TRACE"):
                        traceback.print_exc()
                    result(name, "error: " + table_text(msg), None, None, None, "")
        finally:
            if "adbc" in ctx:
                ctx["adbc"].close()
            ctx["flight"].close()
            ctx["duck"].close()
            server.stop()
    print_table()
    print(f"\nbench total seconds={time.perf_counter() - t_start:.1f}")


if __name__ == "__main__":
    main()
