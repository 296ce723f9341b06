"""ADBC's Flight SQL driver (adbc-driver-flightsql, the Go driver under the ADBC driver manager)
ingesting into the real server: cursor.adbc_ingest in every mode ADBC has, which the driver sends
as CommandStatementIngest (create = CREATE+FAIL, append = FAIL+APPEND, replace = CREATE+REPLACE,
create_append = CREATE+APPEND), read back with plain pyarrow Flight."""

import pyarrow as pa
import pyarrow.flight as flight
import pytest

dbapi = pytest.importorskip("adbc_driver_flightsql.dbapi")


def read(server, sql):
    c = server.client()
    try:
        return c.do_get(flight.Ticket(sql.encode())).read_all()
    finally:
        c.close()


@pytest.fixture
def conn(server):
    with dbapi.connect(server.uri, autocommit=True) as c:
        yield c


def test_adbc_ingest_every_mode(server, conn):
    t = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", "b", None]})
    with conn.cursor() as cur:
        assert cur.adbc_ingest("t", t, mode="create") == 3
        assert read(server, "SELECT * FROM t ORDER BY id").equals(t)
        with pytest.raises(dbapi.Error, match="already exists"):
            cur.adbc_ingest("t", t, mode="create")
        assert cur.adbc_ingest("t", t, mode="append") == 3
        assert cur.adbc_ingest("t", t, mode="create_append") == 3
        assert read(server, "SELECT count(*) AS n FROM t")["n"][0].as_py() == 9
        with pytest.raises(dbapi.Error, match="does not exist"):
            cur.adbc_ingest("missing", t, mode="append")
        assert cur.adbc_ingest("t2", t, mode="create_append") == 3
        # replace: the table takes the new rows and the new columns
        r = pa.table({"x": pa.array([0.5, 1.5], pa.float64())})
        assert cur.adbc_ingest("t", r, mode="replace") == 2
        assert read(server, "SELECT * FROM t").equals(r)
        assert cur.adbc_ingest("t3", r, mode="replace") == 2  # a missing table is created
        assert read(server, "SELECT * FROM t3").equals(r)


def test_adbc_ingest_many_batches_and_a_schema(server, conn):
    batches = [pa.record_batch({"id": pa.array(range(i * 1000, (i + 1) * 1000), pa.int64())})
               for i in range(20)]
    reader = pa.RecordBatchReader.from_batches(batches[0].schema, batches)
    with conn.cursor() as cur:
        cur.execute("CREATE SCHEMA s2")
        assert cur.adbc_ingest("big", reader, mode="create", db_schema_name="s2") == 20000
    got = read(server, "SELECT count(*) AS n, sum(id) AS s FROM s2.big")
    assert got["n"][0].as_py() == 20000 and got["s"][0].as_py() == sum(range(20000))


def test_adbc_ingest_strange_name_and_bad_catalog(server, conn):
    t = pa.table({"i": pa.array([1], pa.int32())})
    name = 'we"ird; DROP TABLE t; --'
    with conn.cursor() as cur:
        assert cur.adbc_ingest("t", t, mode="create") == 1
        assert cur.adbc_ingest(name, t, mode="create") == 1
    assert read(server, 'SELECT count(*) AS n FROM "we""ird; DROP TABLE t; --"')["n"][0].as_py() == 1
    assert read(server, "SELECT count(*) AS n FROM t")["n"][0].as_py() == 1
    with conn.cursor() as cur:
        with pytest.raises(dbapi.Error, match="one database"):
            cur.adbc_ingest("t", t, mode="append", catalog_name="elsewhere")
    with conn.cursor() as cur:
        assert cur.adbc_ingest("t", t, mode="append", catalog_name="wigeon") == 1
        with pytest.raises(dbapi.Error, match="temporary tables need a transaction"):
            cur.adbc_ingest("tmp", t, mode="create", temporary=True)
