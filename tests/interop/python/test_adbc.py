"""The ADBC Flight SQL driver (adbc-driver-flightsql + adbc-driver-manager from PyPI, the Go driver
behind the C ABI) against a real `wigeon serve`, through its DB-API: every call the issue names.

Each result is checked against what DuckDB itself gives for the same SQL: in-process duckdb (the
Python package, the same DuckDB version as the server) on the same data, or the server's own
information_schema for the metadata calls. What each call sends on the wire is written down in
/work/coord/i12/drivers.md (read from the driver's source): e.g. cursor.execute always prepares
(CreatePreparedStatement), so plain statements go through CommandPreparedStatementQuery.
"""

import datetime
import decimal
import os
import subprocess
import threading
import time

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_manager
import duckdb
import pyarrow as pa
import pyarrow.flight as paflight
import pytest

from conftest import wigeon_binary

CATALOG = "wigeon"  # the server's database is wigeon.duckdb (conftest): DuckDB names it "wigeon"


def connect(server, autocommit=True):
    return flightsql.connect(server.uri, autocommit=autocommit)


@pytest.fixture
def conn(server):
    c = connect(server)
    yield c
    c.close()


def reference(*setup):
    """An in-process DuckDB with the same setup SQL run on it."""
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")  # the server answers in UTC whatever the host's zone
    for sql in setup:
        db.execute(sql)
    return db


def plain_execute(server, *sqls):
    """Setup through the plain-Flight "execute" action (not Flight SQL): a test's setup does not
    depend on the Flight SQL feature it does not test."""
    with server.client() as c:
        for sql in sqls:
            list(c.do_action(paflight.Action("execute", sql.encode())))


def plain_query(server, sql):
    """The server's DuckDB answer through the plain-Flight path (a ticket of SQL text), on a
    connection of its own."""
    with server.client() as c:
        return c.do_get(paflight.Ticket(sql.encode())).read_all()


def duck(sql):
    """In-process DuckDB's answer to sql, as an Arrow table."""
    db = reference()
    try:
        return db.sql(sql).fetch_arrow_table()
    finally:
        db.close()


def run(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetch_arrow_table()


def plain(table):
    """A table's rows and (name, type) columns, without field nullability or metadata."""
    return [(f.name, f.type) for f in table.schema], table.to_pylist()


def same_as_duckdb(conn, ref, sql, params=None):
    got = run(conn, sql, params)
    want = ref.execute(sql, params).fetch_arrow_table() if params else ref.sql(sql).fetch_arrow_table()
    assert plain(got) == plain(want), sql
    return got


TYPES_SETUP = [
    "CREATE TABLE typed(i INTEGER, b BIGINT, t TINYINT, s SMALLINT, u UINTEGER, ub UBIGINT, "
    "f FLOAT, d DOUBLE, dec DECIMAL(18,3), v VARCHAR, bl BLOB, bo BOOLEAN, dt DATE, "
    "ts TIMESTAMP, tstz TIMESTAMPTZ, tm TIME, iv INTERVAL, l INTEGER[], st STRUCT(a INTEGER, b VARCHAR))",
    "INSERT INTO typed VALUES (1, 9007199254740993, -8, 300, 4000000000, 18446744073709551615, "
    "1.5, 2.25, 12345.678, 'héllo', '\\x00\\xFF'::BLOB, true, DATE '2024-02-29', "
    "TIMESTAMP '2024-02-29 12:34:56.789012', TIMESTAMPTZ '2024-02-29 12:34:56+00', TIME '23:59:59', "
    "INTERVAL 3 DAY, [1, 2, NULL], {'a': 7, 'b': 'x'})",
    "INSERT INTO typed VALUES (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
]


# ---- connect, execute, fetch ----------------------------------------------------------------------

def test_connect_and_select(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT 42 AS answer, 'wigeon' AS name")
        assert [d[0] for d in cur.description] == ["answer", "name"]
        assert cur.fetchall() == [(42, "wigeon")]
    same_as_duckdb(conn, reference(), "SELECT 42 AS answer, 'wigeon' AS name")


def test_execute_every_type_same_as_duckdb(server, conn):
    plain_execute(server, *TYPES_SETUP)
    ref = reference(*TYPES_SETUP)
    same_as_duckdb(conn, ref, "SELECT * FROM typed ORDER BY i NULLS LAST")


def test_fetch_variants(conn):
    sql = "SELECT i, i * 2 AS j, 'x' || i AS s FROM range(100000) t(i) ORDER BY i"
    ref = reference()
    want = ref.sql(sql).fetch_arrow_table()
    with conn.cursor() as cur:
        cur.execute(sql)
        assert cur.fetch_arrow_table().to_pylist() == want.to_pylist()
        cur.execute(sql)
        assert cur.fetchone() == (0, 0, "x0")
        assert cur.fetchmany(2) == [(1, 2, "x1"), (2, 4, "x2")]
        rest = cur.fetchall()
        assert len(rest) == 100000 - 3 and rest[-1] == (99999, 199998, "x99999")
        cur.execute(sql)
        df = cur.fetch_df()
    want_df = ref.sql(sql).df()
    assert list(df.columns) == list(want_df.columns)
    assert df.values.tolist() == want_df.values.tolist()


def test_execute_empty_result_keeps_schema(conn):
    got = same_as_duckdb(conn, reference(), "SELECT 1::INTEGER AS a, 'x' AS b WHERE false")
    assert got.num_rows == 0


@pytest.mark.parametrize("sql,params", [
    ("SELECT ?::INTEGER + 1 AS x", (41,)),
    ("SELECT ? AS i, ? AS f, ? AS s, ? AS bo", (7, 2.5, "héllo", True)),
    ("SELECT ? AS d, ? AS ts", (datetime.date(2024, 2, 29), datetime.datetime(2024, 2, 29, 1, 2, 3))),
    ("SELECT ? AS bl, octet_length(?) AS n", (b"\x00\xff", b"abc")),
    ("SELECT ?::DECIMAL(10,2) * 2 AS dec", (decimal.Decimal("12.34"),)),
    ("SELECT ? IS NULL AS isnull", (None,)),
    ("SELECT i FROM range(10) t(i) WHERE i BETWEEN ? AND ? ORDER BY i", (3, 6)),
])
def test_execute_with_parameters(conn, sql, params):
    got = run(conn, sql, params)
    want = reference().execute(sql, params).fetchall()
    assert [tuple(r.values()) for r in got.to_pylist()] == want


def test_execute_parameters_again_with_other_values(conn):
    """The same prepared statement bound again: each execute sees its own parameters."""
    with conn.cursor() as cur:
        for value in (1, 2, 300):
            cur.execute("SELECT ?::BIGINT * 10 AS x", (value,))
            assert cur.fetchall() == [(value * 10,)]


def test_executemany(conn):
    rows = [(i, f"name {i}", i / 4) for i in range(250)]
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE many(id INTEGER, name VARCHAR, score DOUBLE)")
        cur.executemany("INSERT INTO many VALUES (?, ?, ?)", rows)
        assert cur.rowcount == len(rows)
    ref = reference("CREATE TABLE many(id INTEGER, name VARCHAR, score DOUBLE)")
    ref.executemany("INSERT INTO many VALUES (?, ?, ?)", rows)
    same_as_duckdb(conn, ref, "SELECT * FROM many ORDER BY id")


def test_executemany_update_counts_every_row(conn):
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE m2 AS SELECT i AS id, 0 AS hits FROM range(10) t(i)")
        cur.executemany("UPDATE m2 SET hits = hits + 1 WHERE id >= ?", [(5,), (8,), (100,)])
        assert cur.rowcount == 5 + 2 + 0
        cur.execute("SELECT sum(hits) FROM m2")
        assert cur.fetchall() == [(7,)]


def test_ddl_and_dml_through_execute(conn):
    setup = ["CREATE TABLE dml(id INTEGER PRIMARY KEY, v VARCHAR)"]
    ref = reference(*setup)
    with conn.cursor() as cur:
        cur.execute(setup[0])
        for sql, affected in [
            ("INSERT INTO dml VALUES (1, 'a'), (2, 'b'), (3, 'c')", 3),
            ("UPDATE dml SET v = v || '!' WHERE id >= 2", 2),
            ("DELETE FROM dml WHERE id = 1", 1),
        ]:
            cur.execute(sql)
            got = cur.fetchall()
            want = ref.execute(sql).fetchall()
            assert want == [(affected,)]
            # DuckDB's Count row, or no result at all (a statement the server prepared as an
            # update: its dataset schema has no field, so neither has the stream)
            assert got in (want, []), sql
            # rowcount is FlightInfo.total_records, which ADBC reads as "rows affected if known"
            assert cur.rowcount == affected, (sql, cur.rowcount)
    same_as_duckdb(conn, ref, "SELECT * FROM dml ORDER BY id")


def test_statement_update_returns_affected_rows(conn):
    """ExecuteUpdate without prepare: DoPut CommandStatementUpdate -> DoPutUpdateResult."""
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE up AS SELECT i AS id FROM range(20) t(i)")
        stmt = cur.adbc_statement
        stmt.set_sql_query("DELETE FROM up WHERE id < 7")
        assert stmt.execute_update() == 7
        stmt.set_sql_query("INSERT INTO up SELECT i FROM range(100, 103) t(i)")
        assert stmt.execute_update() == 3
        cur.execute("SELECT count(*) FROM up")
        assert cur.fetchall() == [(16,)]


def test_executescript(conn):
    with conn.cursor() as cur:
        cur.executescript("CREATE TABLE sc(x INTEGER); INSERT INTO sc VALUES (1), (2)")
        cur.execute("SELECT sum(x) FROM sc")
        assert cur.fetchall() == [(3,)]


def test_execute_schema_and_prepare(conn):
    """The prepared statement's dataset and parameter schemas (ActionCreatePreparedStatementResult)."""
    sql = "SELECT 1::INTEGER AS a, 'x' AS b, 2.5::DOUBLE AS c"
    want = duck(sql).schema
    with conn.cursor() as cur:
        got = cur.adbc_execute_schema(sql)
        assert [(f.name, f.type) for f in got] == [(f.name, f.type) for f in want]
        params = cur.adbc_prepare("SELECT ?::INTEGER + ?::INTEGER AS s")
        assert params is not None and len(params) == 2
        cur.execute("SELECT ?::INTEGER + ?::INTEGER AS s", (2, 3))
        assert cur.fetchall() == [(5,)]


def test_execute_partitions(conn):
    """adbc_execute_partitions: the FlightInfo's endpoints, each read with DoGet on its own."""
    sql = "SELECT i, 'v' || i AS s FROM range(50000) t(i)"
    with conn.cursor() as cur:
        partitions, schema = cur.adbc_execute_partitions(sql)
        assert len(partitions) >= 1
        tables = []
        for p in partitions:
            cur.adbc_read_partition(p)
            tables.append(cur.fetch_arrow_table())
    got = pa.concat_tables(tables).sort_by("i")
    want = duck(sql + " ORDER BY i")
    assert plain(got) == plain(want)
    assert [f.name for f in schema] == ["i", "s"]


def test_session_default_schema(server, conn):
    """Session options for the default schema, or a clean refusal the driver accepts."""
    try:
        current = conn.adbc_current_db_schema
    except (adbc_driver_manager.ProgrammingError, adbc_driver_manager.NotSupportedError) as e:
        assert "not supported" in str(e) or "NOT_FOUND" in str(e), e
        return
    assert current == "main"
    plain_execute(server, "CREATE SCHEMA other", "CREATE TABLE other.only_here AS SELECT 7 AS x")
    assert conn.adbc_current_catalog == CATALOG
    conn.adbc_current_db_schema = "main"   # setting the current value is always fine
    try:
        conn.adbc_current_db_schema = "other"
    except adbc_driver_manager.ProgrammingError as e:  # a read-only option, refused cleanly
        assert "'schema'" in str(e), e
        assert conn.adbc_current_db_schema == "main"
        return
    assert conn.adbc_current_db_schema == "other"
    assert run(conn, "SELECT x FROM only_here").to_pylist() == [{"x": 7}]


# ---- errors ---------------------------------------------------------------------------------------

def duckdb_message(sql):
    with pytest.raises(duckdb.Error) as e:
        reference().execute(sql)
    return str(e.value)


@pytest.mark.parametrize("sql", ["SELEC 1", "SELECT * FROM no_such_table", "SELECT no_such_col FROM range(1)"])
def test_errors_carry_duckdbs_message(conn, sql):
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.ProgrammingError) as e:
            cur.execute(sql)
            cur.fetchall()
    want = duckdb_message(sql)
    assert want.splitlines()[0] in str(e.value)
    # the connection is still usable
    assert run(conn, "SELECT 1 AS one").to_pylist() == [{"one": 1}]


def test_constraint_violation(conn):
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE pk(id INTEGER PRIMARY KEY)")
        cur.execute("INSERT INTO pk VALUES (1)")
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.execute("INSERT INTO pk VALUES (1)")
            cur.fetchall()
        assert "Duplicate key" in str(e.value) or "duplicate key" in str(e.value)


# ---- bulk ingest ----------------------------------------------------------------------------------

def sample(n, offset=0):
    return pa.table({
        "id": pa.array(range(offset, offset + n), pa.int64()),
        "name": pa.array([f"n{i}" for i in range(offset, offset + n)], pa.string()),
        "score": pa.array([i * 0.5 for i in range(offset, offset + n)], pa.float64()),
        "day": pa.array([datetime.date(2024, 1, 1) + datetime.timedelta(days=i % 300)
                         for i in range(offset, offset + n)], pa.date32()),
    })


def ingested(server, table, order="id"):
    return plain_query(server, f"SELECT * FROM {table} ORDER BY {order}")


def test_ingest_create(server, conn):
    data = sample(1000)
    with conn.cursor() as cur:
        assert cur.adbc_ingest("ing", data, mode="create") == 1000
    got = ingested(server, "ing")
    ref = reference()
    ref.register("data", data)
    want = ref.sql("SELECT * FROM data ORDER BY id").fetch_arrow_table()
    assert plain(got) == plain(want)


def test_ingest_create_fails_when_table_exists(server, conn):
    with conn.cursor() as cur:
        cur.adbc_ingest("ing2", sample(3), mode="create")
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.adbc_ingest("ing2", sample(3), mode="create")
        assert "ing2" in str(e.value)
    assert ingested(server, "ing2").num_rows == 3


def test_ingest_append(server, conn):
    with conn.cursor() as cur:
        cur.adbc_ingest("app", sample(10), mode="create")
        assert cur.adbc_ingest("app", sample(5, offset=10), mode="append") == 5
    assert ingested(server, "app").to_pylist() == sample(15).to_pylist()


def test_ingest_append_fails_when_table_missing(server, conn):
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.adbc_ingest("nosuch_app", sample(5), mode="append")
        assert "nosuch_app" in str(e.value)
    tables = plain_query(server, "SELECT table_name FROM information_schema.tables WHERE table_name = 'nosuch_app'")
    assert tables.num_rows == 0


def test_ingest_append_into_an_existing_sql_table(server, conn):
    plain_execute(server, "CREATE TABLE made(id BIGINT, name VARCHAR, score DOUBLE, day DATE)")
    with conn.cursor() as cur:
        assert cur.adbc_ingest("made", sample(4), mode="append") == 4
    assert ingested(server, "made").to_pylist() == sample(4).to_pylist()


def test_ingest_replace(server, conn):
    with conn.cursor() as cur:
        cur.adbc_ingest("rep", sample(10), mode="create")
        other = pa.table({"k": pa.array(["a", "b"]), "v": pa.array([1, 2], pa.int32())})
        assert cur.adbc_ingest("rep", other, mode="replace") == 2
        # replace of a table that does not exist creates it
        assert cur.adbc_ingest("rep_new", sample(2), mode="replace") == 2
    got = ingested(server, "rep", order="k")
    assert [f.name for f in got.schema] == ["k", "v"]
    assert got.to_pylist() == other.to_pylist()
    assert ingested(server, "rep_new").num_rows == 2


def test_ingest_create_append(server, conn):
    with conn.cursor() as cur:
        assert cur.adbc_ingest("ca", sample(3), mode="create_append") == 3
        assert cur.adbc_ingest("ca", sample(3, offset=3), mode="create_append") == 3
    assert ingested(server, "ca").to_pylist() == sample(6).to_pylist()


def test_ingest_into_schema_and_from_batches(server, conn):
    plain_execute(server, "CREATE SCHEMA side")
    with conn.cursor() as cur:
        reader = pa.RecordBatchReader.from_batches(sample(1).schema,
                                                   sample(3000).to_batches(max_chunksize=700))
        assert cur.adbc_ingest("inschema", reader, mode="create", db_schema_name="side") == 3000
    assert ingested(server, "side.inschema").to_pylist() == sample(3000).to_pylist()
    rows = plain_query(server, "SELECT table_schema FROM information_schema.tables WHERE table_name = 'inschema'")
    assert rows.to_pylist() == [{"table_schema": "side"}]


def test_ingest_every_type_round_trips(server, conn):
    ref = reference(*TYPES_SETUP)
    data = ref.sql("SELECT * FROM typed").fetch_arrow_table()
    with conn.cursor() as cur:
        assert cur.adbc_ingest("typed_copy", data, mode="create") == data.num_rows
    got = plain_query(server, "SELECT * FROM typed_copy ORDER BY i NULLS LAST")
    want = ref.sql("SELECT * FROM typed ORDER BY i NULLS LAST").fetch_arrow_table()
    assert plain(got) == plain(want)


# ---- metadata -------------------------------------------------------------------------------------

META_SETUP = [
    "CREATE SCHEMA s2",
    "CREATE TABLE t1(a INTEGER NOT NULL, b VARCHAR, c DOUBLE)",
    "CREATE TABLE t2(x DATE)",
    "CREATE TABLE s2.t3(k BIGINT PRIMARY KEY, a2 VARCHAR)",
    "CREATE VIEW v1 AS SELECT a, b FROM t1",
]


@pytest.fixture
def meta(server, conn):
    plain_execute(server, *META_SETUP)
    return conn


def objects(conn, **kw):
    return conn.adbc_get_objects(**kw).read_all().to_pylist()


def info_schema(server, sql):
    return [tuple(r.values()) for r in plain_query(server, sql).to_pylist()]


# What the metadata calls are compared with: DuckDB's information_schema, less the server's own
# bookkeeping schema (wigeon_internal, the idempotency keys: not listed by ListFlights either), and
# restricted to the catalogs the server lists. Listing DuckDB's "system" and "temp" catalogs or not
# is the server's choice; every catalog it does list must be a real one, ours among them, and be
# listed whole.
INTERNAL = "wigeon_internal"


def listed_catalogs(server, conn):
    listed = sorted(c["catalog_name"] for c in objects(conn, depth="catalogs"))
    real = {r[0] for r in info_schema(server, "SELECT catalog_name FROM information_schema.schemata")}
    assert CATALOG in listed and set(listed) <= real, (listed, real)
    assert len(listed) == len(set(listed)), listed
    return listed


def test_get_objects_catalogs(server, meta):
    got = objects(meta, depth="catalogs")
    listed = listed_catalogs(server, meta)
    assert sorted(c["catalog_name"] for c in got) == listed
    assert all(c["catalog_db_schemas"] is None for c in got)  # not asked for
    assert [c["catalog_name"] for c in objects(meta, depth="catalogs", catalog_filter=CATALOG)] == [CATALOG]
    assert objects(meta, depth="catalogs", catalog_filter="no_such_catalog") == []


def test_get_objects_db_schemas(server, meta):
    listed = listed_catalogs(server, meta)
    got = objects(meta, depth="db_schemas")
    have = sorted((c["catalog_name"], s["db_schema_name"])
                  for c in got for s in (c["catalog_db_schemas"] or []))
    want = sorted(r for r in info_schema(server, "SELECT catalog_name, schema_name FROM "
                                                 "information_schema.schemata")
                  if r[0] in listed and r[1] != INTERNAL)
    assert have == want
    assert (CATALOG, "s2") in have and (CATALOG, "main") in have
    got = objects(meta, depth="db_schemas", catalog_filter=CATALOG, db_schema_filter="s%")
    assert [(c["catalog_name"], [s["db_schema_name"] for s in c["catalog_db_schemas"]]) for c in got] == \
        [(CATALOG, ["s2"])]


def tables_of(got):
    return sorted((c["catalog_name"], s["db_schema_name"], t["table_name"], t["table_type"])
                  for c in got for s in (c["catalog_db_schemas"] or [])
                  for t in (s["db_schema_tables"] or []))


def test_get_objects_tables(server, meta):
    listed = listed_catalogs(server, meta)
    got = tables_of(objects(meta, depth="tables"))
    want = [w for w in info_schema(server, "SELECT table_catalog, table_schema, table_name, table_type "
                                           "FROM information_schema.tables")
            if w[0] in listed and w[1] != INTERNAL]
    assert [g[:3] for g in got] == sorted(w[:3] for w in want)
    ours = [g for g in got if g[0] == CATALOG]
    assert [g[1:3] for g in ours] == [("main", "t1"), ("main", "t2"), ("main", "v1"), ("s2", "t3")]
    kinds = {g[2]: g[3] for g in ours}
    assert kinds["t1"] == kinds["t2"] == kinds["t3"] != kinds["v1"]


def test_get_objects_tables_filters(server, meta):
    assert [g[1:3] for g in tables_of(objects(meta, depth="tables", catalog_filter=CATALOG,
                                                  db_schema_filter="s2"))] == [("s2", "t3")]
    assert [g[2] for g in tables_of(objects(meta, depth="tables", catalog_filter=CATALOG,
                                                table_name_filter="t_"))] == ["t1", "t2", "t3"]
    view_type = {g[2]: g[3] for g in tables_of(objects(meta, depth="tables"))}["v1"]
    table_type = {g[2]: g[3] for g in tables_of(objects(meta, depth="tables"))}["t1"]
    assert [g[2] for g in tables_of(objects(meta, depth="tables", catalog_filter=CATALOG,
                                                table_types_filter=[view_type]))] == ["v1"]
    assert [g[2] for g in tables_of(objects(meta, depth="tables", catalog_filter=CATALOG,
                                                table_types_filter=[table_type]))] == ["t1", "t2", "t3"]
    assert {view_type, table_type} <= set(meta.adbc_get_table_types())


def columns_of(got):
    return sorted((s["db_schema_name"], t["table_name"], col["ordinal_position"], col["column_name"])
                  for c in got if c["catalog_name"] == CATALOG
                  for s in (c["catalog_db_schemas"] or [])
                  for t in (s["db_schema_tables"] or [])
                  for col in (t["table_columns"] or []))


@pytest.mark.parametrize("depth", ["columns", "all"])
def test_get_objects_columns(server, meta, depth):
    got = columns_of(objects(meta, depth=depth, catalog_filter=CATALOG))
    want = sorted(info_schema(server, f"SELECT table_schema, table_name, ordinal_position, column_name "
                                    f"FROM information_schema.columns WHERE table_catalog = '{CATALOG}' "
                                      f"AND table_schema <> '{INTERNAL}'"))
    assert got == want
    got = columns_of(objects(meta, depth=depth, catalog_filter=CATALOG, column_name_filter="a%"))
    assert got == [("main", "t1", 1, "a"), ("main", "v1", 1, "a"), ("s2", "t3", 2, "a2")]


def test_get_table_schema(meta):
    ref = reference(*META_SETUP)
    for table, schema in [("t1", None), ("t3", "s2"), ("v1", None)]:
        got = meta.adbc_get_table_schema(table, db_schema_filter=schema)
        name = f"{schema}.{table}" if schema else table
        want = ref.sql(f"SELECT * FROM {name}").fetch_arrow_table().schema
        assert [(f.name, f.type) for f in got] == [(f.name, f.type) for f in want], table
    got = meta.adbc_get_table_schema("t1", catalog_filter=CATALOG, db_schema_filter="main")
    assert got.field("a").nullable is False and got.field("b").nullable is True
    with pytest.raises(adbc_driver_manager.Error):
        meta.adbc_get_table_schema("no_such_table")


def test_get_info(conn):
    info = conn.adbc_get_info()
    assert info["vendor_name"].lower().startswith("wigeon")
    version = subprocess.run([wigeon_binary(), "--version"], capture_output=True, text=True).stdout
    assert info["vendor_version"] and info["vendor_version"] in version  # wigeon 0.1.0 (DuckDB v1.4.4)
    assert info["vendor_arrow_version"]
    # the DB-API's adbc_get_info asks only for the codes the driver has defaults for; vendor_sql (3)
    # and vendor_substrait (4) are asked for by code (Flight SQL ids 4 and 5)
    handle = conn.adbc_connection.get_info([3, 4])
    codes = pa.RecordBatchReader._import_from_c(handle.address).read_all()
    values = {r["info_name"]: r["info_value"] for r in codes.to_pylist()}
    assert values == {3: True, 4: False}
    assert info["driver_name"] == "ADBC Flight SQL Driver - Go"


# ---- transactions ---------------------------------------------------------------------------------

def count(conn, table):
    return run(conn, f"SELECT count(*) AS n FROM {table}").to_pylist()[0]["n"]


def plain_count(server, table):
    """The count as another client sees it: a plain-Flight query on a connection of its own."""
    return plain_query(server, f"SELECT count(*) AS n FROM {table}").to_pylist()[0]["n"]


def test_autocommit_off_commit_and_rollback(server):
    plain_execute(server, "CREATE TABLE tx(id INTEGER)")
    txn = connect(server, autocommit=False)
    other = connect(server)
    try:
        with txn.cursor() as cur:
            cur.execute("INSERT INTO tx VALUES (1), (2)")
            assert count(txn, "tx") == 2
            assert plain_count(server, "tx") == 0   # not committed yet
            assert count(other, "tx") == 0          # nor for another ADBC connection
            txn.commit()
            assert plain_count(server, "tx") == 2
            assert count(other, "tx") == 2
            cur.execute("INSERT INTO tx VALUES (3)")
            cur.executemany("INSERT INTO tx VALUES (?)", [(4,), (5,)])
            assert count(txn, "tx") == 5
            txn.rollback()
            assert count(txn, "tx") == 2            # discarded for the transaction's connection
            assert plain_count(server, "tx") == 2   # and never seen by another
            cur.execute("DELETE FROM tx WHERE id = 1")
            txn.commit()
        assert plain_query(server, "SELECT id FROM tx ORDER BY id").to_pylist() == [{"id": 2}]
    finally:
        txn.close()
        other.close()


def test_uncommitted_work_is_lost_on_close(server):
    plain_execute(server, "CREATE TABLE lost(id INTEGER)")
    txn = connect(server, autocommit=False)
    with txn.cursor() as cur:
        cur.execute("INSERT INTO lost VALUES (1)")
    txn.close()
    assert plain_count(server, "lost") == 0
    # and the table is not left locked: another writer commits
    plain_execute(server, "INSERT INTO lost VALUES (2)")
    assert plain_count(server, "lost") == 1


def test_transaction_sees_its_own_ddl(server):
    txn = connect(server, autocommit=False)
    try:
        with txn.cursor() as cur:
            cur.execute("CREATE TABLE newt AS SELECT 1 AS x")
            assert count(txn, "newt") == 1
            with pytest.raises(pa.ArrowKeyError):  # NOT_FOUND for everyone else
                plain_count(server, "newt")
            txn.rollback()
            with pytest.raises(adbc_driver_manager.Error):
                count(txn, "newt")
    finally:
        txn.close()


# ---- cancel ---------------------------------------------------------------------------------------

LONG_QUERY = "SELECT count(*) FROM range(1000000000000) a(i) WHERE i % 7 = 3"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_cancel_long_query(server, conn):
    cur = conn.cursor()
    outcome = {}

    def work():
        try:
            cur.execute(LONG_QUERY)
            outcome["rows"] = cur.fetchall()
        except Exception as e:  # noqa: BLE001 - the cancel's error is what we look at
            outcome["error"] = e

    thread = threading.Thread(target=work)
    thread.start()
    time.sleep(1.5)
    assert thread.is_alive(), f"the long query ended by itself: {outcome}"
    started = time.monotonic()
    cur.adbc_cancel()
    thread.join(30)
    assert not thread.is_alive(), "the query was not cancelled within 30 s"
    assert time.monotonic() - started < 10
    assert isinstance(outcome.get("error"), adbc_driver_manager.OperationalError), outcome
    assert "cancel" in str(outcome["error"]).lower(), outcome
    # DuckDB really stopped: the server is (nearly) idle afterwards
    time.sleep(1.0)
    before = cpu_seconds(server.pid)
    time.sleep(2.0)
    assert cpu_seconds(server.pid) - before < 0.5, "the server still burns CPU after the cancel"
    cur.close()
    assert run(conn, "SELECT 1 AS one").to_pylist() == [{"one": 1}]


# ---- the sandbox holds on every path --------------------------------------------------------------

def assert_refused(excinfo):
    text = str(excinfo.value)
    assert "refused" in text and "root:" not in text, text


def test_sandbox_execute(conn):
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.execute("SELECT * FROM read_csv('/etc/passwd')")
            cur.fetchall()
        assert_refused(e)
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.executescript("SELECT * FROM read_text('/etc/passwd')")
        assert_refused(e)


def test_sandbox_prepared_with_parameters(server, conn):
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.execute("SELECT * FROM read_csv(?)", ("/etc/passwd",))
            cur.fetchall()
        assert_refused(e)
        plain_execute(server, "CREATE TABLE paths(p VARCHAR)")
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.executemany("INSERT INTO paths SELECT content FROM read_text(?)", [("/etc/passwd",)])
        assert_refused(e)
    assert plain_count(server, "paths") == 0


@pytest.mark.parametrize("name", [
    'x"; DROP TABLE victim; --',
    "x'); DROP TABLE victim; --",
    'evil" AS SELECT * FROM read_csv(\'/etc/passwd\'); --',
])
def test_sandbox_ingest_table_name_injection(server, conn, name):
    plain_execute(server, "CREATE TABLE victim(id INTEGER)", "INSERT INTO victim VALUES (1)")
    with conn.cursor() as cur:
        try:
            cur.adbc_ingest(name, sample(2), mode="create")
            created = True
        except adbc_driver_manager.Error:
            created = False
    assert plain_count(server, "victim") == 1
    names = [r[0] for r in info_schema(server, "SELECT table_name FROM information_schema.tables")]
    if created:
        assert name in names   # the name was taken literally, quoted
    assert not any("passwd" in n and n != name for n in names)


def test_sandbox_ingest_schema_name_injection(server, conn):
    plain_execute(server, "CREATE TABLE victim(id INTEGER)")
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error):
            cur.adbc_ingest("t", sample(2), mode="create",
                            db_schema_name='main"."victim"; DROP TABLE victim; --')
    assert plain_count(server, "victim") == 0
    assert [r[0] for r in info_schema(server, "SELECT table_name FROM information_schema.tables "
                                            "WHERE table_name = 'victim'")] == ["victim"]
