"""A hostile or broken Flight SQL client against the Flight SQL surface (src/server/fsql*.c).

Every request is built here from the message definitions (proto/flight_sql.proto,
proto/flight.proto) with a small protobuf writer: field numbers and wire types as those files say,
then bent the way a broken client bends them (garbage, truncated, a field twice, a wrong wire type,
an Any of another message). Each test asserts what the server must do: a clean gRPC error of the
right class whose message says what is wrong, the server still serving (a follow-up query works),
and no data changed where nothing should change. A bug found is a strict xfail naming its cause.
"""

import os
import threading

import pyarrow as pa
import pyarrow.flight as flight
import pytest

SQL = b"type.googleapis.com/arrow.flight.protocol.sql."


# ---- a protobuf writer and reader (wire format: varint keys, LEN = 2, VARINT = 0) ----------------
def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if n == 0:
            return out + bytes([b])
        out += bytes([b | 0x80])


def f_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


def f_int(num, n):
    return varint(num << 3) + varint(n)


def any_of(name, value=b""):
    """A google.protobuf.Any of arrow.flight.protocol.sql.<name>."""
    return f_bytes(1, SQL + name.encode()) + f_bytes(2, value)


def parse(data):
    """{field number: [values]}: bytes for LEN fields, ints for VARINT ones."""
    out, i = {}, 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(data, i)
        elif wt == 2:
            n, i = read_varint(data, i)
            v, i = data[i:i + n], i + n
        else:
            raise AssertionError(f"unexpected wire type {wt}")
        out.setdefault(num, []).append(v)
    return out


def read_varint(data, i):
    n, shift = 0, 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def unany(data, name):
    m = parse(data)
    assert m[1] == [SQL + name.encode()], m.get(1)
    return m.get(2, [b""])[0]


# ---- Flight SQL calls --------------------------------------------------------------------------
def act(client, type_, body=b""):
    return [r.body.to_pybytes() for r in client.do_action(flight.Action(type_, body))]


def prepare(client, sql, txn=None):
    body = f_bytes(1, sql) + (f_bytes(2, txn) if txn is not None else b"")
    res = act(client, "CreatePreparedStatement", any_of("ActionCreatePreparedStatementRequest",
                                                        body))
    assert len(res) == 1
    return parse(unany(res[0], "ActionCreatePreparedStatementResult"))[1][0]


def close_prepared(client, handle):
    return act(client, "ClosePreparedStatement",
               any_of("ActionClosePreparedStatementRequest", f_bytes(1, handle)))


def begin(client):
    res = act(client, "BeginTransaction", any_of("ActionBeginTransactionRequest"))
    assert len(res) == 1
    txn = parse(unany(res[0], "ActionBeginTransactionResult"))[1][0]
    assert txn
    return txn


COMMIT, ROLLBACK = 1, 2


def end(client, txn, action=COMMIT):
    return act(client, "EndTransaction",
               any_of("ActionEndTransactionRequest", f_bytes(1, txn) + f_int(2, action)))


def info(client, cmd):
    return client.get_flight_info(flight.FlightDescriptor.for_command(cmd))


def read_info(client, fi):
    if not fi.endpoints:
        return fi.schema.empty_table()
    return pa.concat_tables(client.do_get(e.ticket).read_all() for e in fi.endpoints)


def query(client, sql, txn=None):
    body = f_bytes(1, sql) + (f_bytes(2, txn) if txn is not None else b"")
    return read_info(client, info(client, any_of("CommandStatementQuery", body)))


def put(client, cmd, schema=pa.schema([]), batches=()):
    """DoPut of a Flight SQL command; returns the PutResults' app_metadata."""
    writer, reader = client.do_put(flight.FlightDescriptor.for_command(cmd), schema)
    for b in batches:
        writer.write_batch(b)
    writer.done_writing()
    out = []
    while True:
        buf = reader.read()
        if buf is None:
            break
        out.append(buf.to_pybytes())
    writer.close()
    return out


def update(client, sql, txn=None):
    body = f_bytes(1, sql) + (f_bytes(2, txn) if txn is not None else b"")
    res = put(client, any_of("CommandStatementUpdate", body))
    assert len(res) == 1
    return parse(res[0]).get(1, [0])[0]


def bind(client, handle, schema, batches):
    return put(client, any_of("CommandPreparedStatementQuery", f_bytes(1, handle)), schema,
               batches)


def run_prepared(client, handle):
    return read_info(client, info(client, any_of("CommandPreparedStatementQuery",
                                                 f_bytes(1, handle))))


def prepared_update(client, handle, schema=pa.schema([]), batches=None):
    if batches is None:
        batches = [pa.record_batch([], schema=schema)] if not schema else []
    res = put(client, any_of("CommandPreparedStatementUpdate", f_bytes(1, handle)), schema,
              batches)
    assert len(res) == 1
    return parse(res[0]).get(1, [0])[0]


def still_serving(client):
    assert query(client, "SELECT 42 AS x").to_pydict() == {"x": [42]}
    assert client.do_get(flight.Ticket(b"SELECT 7 AS y")).read_all().to_pydict() == {"y": [7]}


def count(client, table):
    return client.do_get(flight.Ticket(f"SELECT count(*) AS n FROM {table}".encode())) \
        .read_all().column(0)[0].as_py()


# ---- garbage bodies in every action --------------------------------------------------------------
ANY_ACTIONS = {  # action -> the request message its body must be an Any of
    "CreatePreparedStatement": "ActionCreatePreparedStatementRequest",
    "ClosePreparedStatement": "ActionClosePreparedStatementRequest",
    "BeginTransaction": "ActionBeginTransactionRequest",
    "EndTransaction": "ActionEndTransactionRequest",
    "CancelQuery": "ActionCancelQueryRequest",
}
BARE_ACTIONS = ["CancelFlightInfo", "RenewFlightEndpoint", "SetSessionOptions",
                "GetSessionOptions", "CloseSession"]

GARBAGE = {
    "ff_bytes": b"\xff\xff\xff\xff",
    "truncated_len": b"\x0a\x40" + SQL,
    "huge_len": b"\x0a\xff\xff\xff\xff\x0f" + SQL,
    "bad_varint": b"\x08" + b"\xff" * 11,
    "group_wire_type": b"\x0b\x0c",
    "fixed32_cut": b"\x0d\x01\x02",
}


@pytest.mark.parametrize("body", list(GARBAGE.values()), ids=list(GARBAGE))
@pytest.mark.parametrize("action", list(ANY_ACTIONS) + BARE_ACTIONS)
def test_garbage_action_body_is_invalid_argument(client, action, body):
    """Bytes that are no protobuf at all: INVALID_ARGUMENT naming the action."""
    with pytest.raises(pa.ArrowInvalid, match=action):
        act(client, action, body)
    still_serving(client)


@pytest.mark.parametrize("action", list(ANY_ACTIONS))
def test_any_of_the_wrong_message_is_invalid_argument(client, action):
    """An Any of another Flight SQL message (here CommandStatementQuery) is refused, not
    reinterpreted: its field 1 (query) would otherwise read as a handle or transaction id."""
    body = any_of("CommandStatementQuery", f_bytes(1, "SELECT 1"))
    with pytest.raises(pa.ArrowInvalid, match=action):
        act(client, action, body)
    still_serving(client)


@pytest.mark.parametrize("action", list(ANY_ACTIONS))
def test_bare_message_where_an_any_is_due_is_invalid_argument(client, action):
    """The request message itself, not packed in an Any, is refused (an Any is required)."""
    with pytest.raises(pa.ArrowInvalid, match=action):
        act(client, action, f_bytes(1, "SELECT 1") + f_int(2, 1))
    still_serving(client)


@pytest.mark.parametrize("action", list(ANY_ACTIONS))
def test_any_with_garbage_value_is_invalid_argument(client, action):
    with pytest.raises(pa.ArrowInvalid, match=action):
        act(client, action, any_of(ANY_ACTIONS[action], b"\xff\xff\xff"))
    still_serving(client)


@pytest.mark.parametrize("action", list(ANY_ACTIONS))
def test_any_with_a_foreign_type_url_is_invalid_argument(client, action):
    body = f_bytes(1, b"type.googleapis.com/google.protobuf.Empty") + f_bytes(2, b"")
    with pytest.raises(pa.ArrowInvalid, match=action):
        act(client, action, body)
    still_serving(client)


def test_create_prepared_with_wrong_wire_type_for_query_is_invalid(client):
    """query (field 1, a string) sent as a varint."""
    with pytest.raises(pa.ArrowInvalid, match="CreatePreparedStatement"):
        act(client, "CreatePreparedStatement",
            any_of("ActionCreatePreparedStatementRequest", f_int(1, 5)))
    still_serving(client)


def test_create_prepared_without_query_is_invalid(client):
    with pytest.raises(pa.ArrowInvalid):
        act(client, "CreatePreparedStatement", any_of("ActionCreatePreparedStatementRequest"))
    still_serving(client)


def test_create_prepared_with_query_twice_is_refused(client):
    """A non-repeated field sent twice is not a canonical encoding: refused cleanly (the server
    refuses any command that does not pack back to its own size, which is how it sees a string
    protobuf-c cut at a NUL byte), never run as either query."""
    body = f_bytes(1, "SELECT 1 AS first") + f_bytes(1, "SELECT 2 AS last")
    with pytest.raises(pa.ArrowInvalid, match="not encoded canonically"):
        act(client, "CreatePreparedStatement",
            any_of("ActionCreatePreparedStatementRequest", body))
    still_serving(client)


def test_create_prepared_with_invalid_utf8_query_is_invalid(client):
    with pytest.raises(pa.ArrowInvalid):
        act(client, "CreatePreparedStatement",
            any_of("ActionCreatePreparedStatementRequest", f_bytes(1, b"SELECT '\xff\xfe'")))
    still_serving(client)


@pytest.mark.parametrize("path", ["statement_query", "statement_update", "prepared"])
def test_nul_in_flight_sql_query_is_refused(client, path):
    """A NUL inside the SQL must not cut it: 'SELECT 1 AS x\\0garbage' is not 'SELECT 1 AS x'
    (the plain DoGet refuses such a ticket: 'holds a NUL byte')."""
    sql = b"SELECT 1 AS x\x00 garbage that does not parse"
    with pytest.raises(pa.ArrowInvalid, match="NUL"):
        if path == "statement_query":
            query(client, sql)
        elif path == "statement_update":
            update(client, sql)
        else:
            run_prepared(client, prepare(client, sql))


def test_nul_in_plain_ticket_is_refused(client):
    with pytest.raises(pa.ArrowInvalid, match="NUL"):
        client.do_get(flight.Ticket(b"SELECT 1 AS x\x00 garbage")).read_all()
    still_serving(client)


def test_oversized_query_is_resource_exhausted(client):
    with pytest.raises(pa.ArrowException, match="limit|over"):
        prepare(client, "SELECT 1" + " " * (2 << 20))
    still_serving(client)


def test_end_transaction_unspecified_action_is_invalid(client):
    txn = begin(client)
    with pytest.raises(pa.ArrowInvalid, match="END_TRANSACTION_COMMIT"):
        end(client, txn, 0)
    with pytest.raises(pa.ArrowInvalid, match="END_TRANSACTION_COMMIT"):
        end(client, txn, 7)
    end(client, txn, ROLLBACK)  # still open: the bad requests did not end it


def test_end_transaction_without_id_is_invalid(client):
    with pytest.raises(pa.ArrowInvalid, match="transaction_id"):
        act(client, "EndTransaction", any_of("ActionEndTransactionRequest", f_int(2, COMMIT)))


def test_cancel_flight_info_without_info_is_invalid(client):
    with pytest.raises(pa.ArrowInvalid, match="CancelFlightInfo"):
        act(client, "CancelFlightInfo", b"")


def test_cancel_flight_info_of_a_forged_ticket_is_harmless(client):
    """A FlightInfo whose endpoint's ticket no query of this server has: an answer, no crash."""
    forged = f_bytes(3, f_bytes(1, f_bytes(1, any_of("TicketStatementQuery",
                                                      f_bytes(1, os.urandom(16))))))
    try:
        res = act(client, "CancelFlightInfo", f_bytes(1, forged))
        assert len(res) == 1
    except (pa.ArrowInvalid, pa.ArrowKeyError):
        pass
    still_serving(client)


def test_cancel_query_with_garbage_info_is_invalid(client):
    with pytest.raises(pa.ArrowInvalid, match="CancelQuery"):
        act(client, "CancelQuery", any_of("ActionCancelQueryRequest", f_bytes(1, b"\xff\xff")))


def test_renew_endpoint_without_endpoint_is_invalid(client):
    with pytest.raises(pa.ArrowInvalid, match="RenewFlightEndpoint"):
        act(client, "RenewFlightEndpoint", b"")


def test_set_session_options_with_odd_values(client):
    """Names with NUL / invalid UTF-8 / 1 MB and an empty value: per-option errors or a clean
    refusal, never a crash; GetSessionOptions still answers afterwards."""
    def opt(name, value):
        return f_bytes(1, f_bytes(1, name) + f_bytes(2, value))
    bodies = [opt(b"catalog\x00x", f_bytes(1, "x")), opt(b"\xff\xfe", f_bytes(1, "x")),
              opt(b"k" * (1 << 20), f_bytes(1, "x")), opt(b"catalog", b""),
              opt(b"schema", f_bytes(1, b"\xff")), opt(b"catalog", f_int(2, 1)),
              opt(b"schema", f_bytes(1, "no_such_schema_\x00; DROP TABLE x"))]
    for body in bodies:
        try:
            act(client, "SetSessionOptions", body)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    assert len(act(client, "GetSessionOptions", b"")) == 1
    still_serving(client)


@pytest.mark.parametrize("action", ["BeginTransaction", "GetSessionOptions", "CloseSession"])
def test_actions_answer_exactly_one_result(client, action):
    body = any_of("ActionBeginTransactionRequest") if action == "BeginTransaction" else b""
    assert len(act(client, action, body)) == 1
    assert len(act(client, action, body)) == 1  # and again: no state left from the first


# ---- handles -------------------------------------------------------------------------------------
@pytest.mark.parametrize("forge", ["random", "truncated", "extended", "empty", "closed"])
def test_bad_prepared_handle_is_not_found(client, forge):
    h = prepare(client, "SELECT 1 AS x")
    bad = {"random": os.urandom(len(h)), "truncated": h[:-1], "extended": h + b"\x00",
           "empty": b"", "closed": h}[forge]
    if forge == "closed":
        close_prepared(client, h)
    with pytest.raises((pa.ArrowKeyError, pa.ArrowInvalid)):
        run_prepared(client, bad)
    with pytest.raises((pa.ArrowKeyError, pa.ArrowInvalid)):
        bind(client, bad, pa.schema([("a", pa.int64())]), [pa.record_batch([pa.array([1])],
                                                                            names=["a"])])
    with pytest.raises((pa.ArrowKeyError, pa.ArrowInvalid)):
        prepared_update(client, bad)
    if forge != "closed":
        assert run_prepared(client, h).to_pydict() == {"x": [1]}


def test_close_prepared_twice_is_not_found(client):
    h = prepare(client, "SELECT 1")
    close_prepared(client, h)
    with pytest.raises(pa.ArrowKeyError):
        close_prepared(client, h)


def test_another_clients_handle_is_not_found(server, client):
    h = prepare(client, "SELECT 1 AS x")
    other = server.client()
    try:
        with pytest.raises(pa.ArrowKeyError):
            run_prepared(other, h)
        with pytest.raises(pa.ArrowKeyError):
            close_prepared(other, h)
    finally:
        other.close()
    assert run_prepared(client, h).to_pydict() == {"x": [1]}


def test_another_clients_transaction_is_not_found(server, client):
    client.do_action(flight.Action("execute", b"CREATE TABLE t (a INTEGER)"))
    txn = begin(client)
    update(client, "INSERT INTO t VALUES (1)", txn)
    other = server.client()
    try:
        with pytest.raises(pa.ArrowKeyError):
            end(other, txn, COMMIT)
        with pytest.raises(pa.ArrowKeyError):
            query(other, "SELECT * FROM t", txn)
        with pytest.raises(pa.ArrowKeyError):
            prepare(other, "SELECT 1", txn)
    finally:
        other.close()
    end(client, txn, ROLLBACK)
    assert count(client, "t") == 0


def test_prepared_handle_used_after_its_transaction_ended(client):
    """A statement prepared in a transaction refers to it: once it ended, using the handle is an
    error (NOT_FOUND), never a silent run outside the transaction."""
    client.do_action(flight.Action("execute", b"CREATE TABLE t (a INTEGER)"))
    txn = begin(client)
    h = prepare(client, "INSERT INTO t VALUES (1)", txn)
    end(client, txn, ROLLBACK)
    with pytest.raises((pa.ArrowKeyError, pa.ArrowInvalid)):
        prepared_update(client, h)
    assert count(client, "t") == 0
    still_serving(client)


def test_prepared_statement_from_8_threads(client, server):
    """One handle executed at once from 8 threads (each its own client would be another owner,
    so they share one FlightClient): every run answers right, or a clean RESOURCE_EXHAUSTED."""
    h = prepare(client, "SELECT sum(i) AS s FROM range(100000) t(i)")
    errors, results = [], []

    def work():
        for _ in range(10):
            try:
                results.append(run_prepared(client, h).to_pydict())
            except pa.ArrowException as e:
                errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all("resource exhausted" in str(e) for e in errors), errors[:3]
    assert results and all(r == {"s": [4999950000]} for r in results)
    still_serving(client)


def test_300_prepared_handles_from_one_client(client):
    """The per-client limit holds with a clean RESOURCE_EXHAUSTED; closing frees room again."""
    handles, refused = [], None
    for i in range(300):
        try:
            handles.append(prepare(client, f"SELECT {i} AS x"))
        except pa.ArrowException as e:
            refused = e
            break
    assert refused is not None and "limit" in str(refused), len(handles)
    assert len(set(handles)) == len(handles)
    assert run_prepared(client, handles[123]).to_pydict() == {"x": [123]}
    for h in handles:
        close_prepared(client, h)
    assert run_prepared(client, prepare(client, "SELECT 5 AS x")).to_pydict() == {"x": [5]}


# ---- transactions --------------------------------------------------------------------------------
def test_end_transaction_twice_is_not_found(client):
    client.do_action(flight.Action("execute", b"CREATE TABLE t (a INTEGER)"))
    txn = begin(client)
    update(client, "INSERT INTO t VALUES (1)", txn)
    end(client, txn, COMMIT)
    with pytest.raises(pa.ArrowKeyError):
        end(client, txn, ROLLBACK)
    with pytest.raises(pa.ArrowKeyError):
        query(client, "SELECT 1", txn)
    assert count(client, "t") == 1


def test_forged_transaction_id_is_not_found(client):
    for txn in [os.urandom(16), b"x", b"\x00" * 64, os.urandom(5000)]:
        with pytest.raises(pa.ArrowKeyError):
            query(client, "SELECT 1", txn)
        with pytest.raises(pa.ArrowKeyError):
            end(client, txn, COMMIT)
    still_serving(client)


def test_commit_after_a_failed_statement_is_refused_and_rolls_back(client):
    client.do_action(flight.Action("execute", b"CREATE TABLE t (a INTEGER PRIMARY KEY)"))
    txn = begin(client)
    update(client, "INSERT INTO t VALUES (1)", txn)
    with pytest.raises(pa.ArrowException):
        update(client, "INSERT INTO t VALUES (1)", txn)
    with pytest.raises(pa.ArrowException, match="COMMIT refused"):
        end(client, txn, COMMIT)
    assert count(client, "t") == 0
    still_serving(client)


def test_end_transaction_while_a_do_get_streams_on_it(client):
    txn = begin(client)
    fi = info(client, any_of("CommandStatementQuery",
                             f_bytes(1, "SELECT i FROM range(5000000) t(i)") + f_bytes(2, txn)))
    reader = client.do_get(fi.endpoints[0].ticket)
    reader.read_chunk()
    try:
        end(client, txn, ROLLBACK)
        ended = True
    except pa.ArrowException as e:  # busy: the stream holds the transaction's connection
        assert "busy" in str(e).lower() or "resource exhausted" in str(e), e
        ended = False
    try:
        reader.read_all()
    except pa.ArrowException:
        pass
    if not ended:
        end(client, txn, ROLLBACK)
    still_serving(client)


def test_100_begin_transactions_from_one_client(client):
    txns, refused = [], None
    for _ in range(100):
        try:
            txns.append(begin(client))
        except pa.ArrowException as e:
            refused = e
            break
    assert len(set(txns)) == len(txns)
    if refused is not None:
        assert "resource exhausted" in str(refused) and "transactions open" in str(refused)
    for t in txns:
        try:
            end(client, t, ROLLBACK)
        except pa.ArrowKeyError:
            pass  # the table made room by dropping an unused one: allowed
    end(client, begin(client), COMMIT)
    still_serving(client)


def test_transaction_id_as_a_plain_ticket_is_a_clean_error(client):
    txn = begin(client)
    with pytest.raises(pa.ArrowException):
        client.do_get(flight.Ticket(txn)).read_all()
    with pytest.raises(pa.ArrowException):
        client.do_get(flight.Ticket(any_of("TicketStatementQuery", f_bytes(1, txn)))).read_all()
    end(client, txn, ROLLBACK)
    still_serving(client)


def test_sql_commit_inside_a_transaction_is_refused(client):
    txn = begin(client)
    with pytest.raises(pa.ArrowException):
        update(client, "COMMIT", txn)
    end(client, txn, ROLLBACK)
    still_serving(client)


# ---- parameter batches that lie ------------------------------------------------------------------
def bind_and_run(client, sql, table):
    h = prepare(client, sql)
    bind(client, h, table.schema, table.to_batches() or [])
    return run_prepared(client, h)


PARAM_SQL = "SELECT ?::INTEGER + 1 AS x"


def test_params_of_the_right_shape_work(client):
    assert bind_and_run(client, PARAM_SQL, pa.table({"0": pa.array([41], pa.int32())})) \
        .to_pydict() == {"x": [42]}


@pytest.mark.parametrize("table", [
    pa.table({"0": [1], "1": [2]}),
    pa.table({"0": [1], "1": [2], "2": [3]}),
], ids=["two_columns", "three_columns"])
def test_params_with_too_many_columns_are_invalid(client, table):
    with pytest.raises(pa.ArrowInvalid, match="param|column"):
        bind_and_run(client, PARAM_SQL, table)
    still_serving(client)


def test_params_with_no_columns_for_a_parameter_are_invalid(client):
    h = prepare(client, PARAM_SQL)
    with pytest.raises(pa.ArrowInvalid):
        prepared_update(client, h)
    with pytest.raises(pa.ArrowInvalid):
        run_prepared(client, h)
    still_serving(client)


@pytest.mark.parametrize("arr", [
    pa.array([{"a": 1}]),
    pa.array([[1, 2]]),
    pa.array([[("k", 1)]], pa.map_(pa.utf8(), pa.int64())),
    pa.array([1], pa.int32()).dictionary_encode(),
    pa.array([b"\x01\x02"], pa.binary()),
    pa.array([1.5], pa.float16()),
    pa.array([1], pa.decimal256(40, 0)),
    pa.array([None], pa.null()),
    pa.array([0], pa.duration("s")),
    pa.array([(1, "a")], pa.struct([("i", pa.int64()), ("s", pa.utf8())])),
    pa.array([[1]], pa.large_list(pa.int64())),
    pa.array([[1, 2]], pa.list_(pa.int64(), 2)),
    pa.array(["x"], pa.string_view()) if hasattr(pa, "string_view") else pa.array(["x"]),
], ids=["struct", "list", "map", "dictionary", "binary", "float16", "decimal256", "null",
        "duration", "struct2", "large_list", "fixed_list", "string_view"])
def test_params_of_odd_types_are_a_value_or_a_clean_error(client, arr):
    """Bound to `?` (any type): the value comes back as DuckDB casts it, or INVALID_ARGUMENT /
    UNIMPLEMENTED naming the problem. Never a crash, never a wrong value silently."""
    tbl = pa.table({"0": arr})
    try:
        out = bind_and_run(client, "SELECT ? AS v", tbl)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        assert "param" in str(e).lower() or "type" in str(e).lower(), e
    else:
        assert out.num_rows == 1
        if pa.types.is_null(arr.type):
            assert out.column(0)[0].as_py() is None
        if pa.types.is_dictionary(arr.type):
            assert out.column(0)[0].as_py() == 1
        if pa.types.is_decimal(arr.type):
            assert int(out.column(0)[0].as_py()) == 1
    still_serving(client)


def test_null_typed_param_into_integer_is_null(client):
    out = bind_and_run(client, PARAM_SQL, pa.table({"0": pa.array([None], pa.null())}))
    assert out.to_pydict() == {"x": [None]}


def test_extension_typed_param_uses_its_storage_or_is_refused(client):
    class Tagged(pa.ExtensionType):
        def __init__(self):
            super().__init__(pa.int32(), "wigeon.test.tagged")

        def __arrow_ext_serialize__(self):
            return b""

        @classmethod
        def __arrow_ext_deserialize__(cls, storage_type, serialized):
            return cls()

    arr = pa.ExtensionArray.from_storage(Tagged(), pa.array([41], pa.int32()))
    try:
        out = bind_and_run(client, PARAM_SQL, pa.table({"0": arr}))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    else:
        assert out.to_pydict() == {"x": [42]}
    still_serving(client)


def test_huge_string_param_is_bounded(client):
    """An 8 MB string binds whole; 70 MB is over the 64 MB of parameter rows one call may send
    (fsql_prepared.c): RESOURCE_EXHAUSTED naming the limit."""
    big = "x" * (8 << 20)
    out = bind_and_run(client, "SELECT length(?) AS n", pa.table({"0": [big]}))
    assert out.to_pydict() == {"n": [len(big)]}
    with pytest.raises(pa.ArrowException, match="limit"):
        bind_and_run(client, "SELECT length(?) AS n", pa.table({"0": ["x" * (70 << 20)]}))
    still_serving(client)


def test_zero_param_rows_for_a_query(client):
    """A binding of 0 rows: the query runs for no row (empty result) or is refused cleanly."""
    h = prepare(client, PARAM_SQL)
    schema = pa.schema([("0", pa.int32())])
    bind(client, h, schema, [pa.record_batch([pa.array([], pa.int32())], schema=schema)])
    try:
        out = run_prepared(client, h)
        assert out.num_rows == 0
    except pa.ArrowInvalid:
        pass
    still_serving(client)


def test_zero_param_rows_for_an_update_changes_nothing(client):
    """A binding of a parameter schema and no rows (executemany of an empty list) runs the
    statement zero times: record_count 0, nothing inserted, no 'values not provided' error."""
    client.do_action(flight.Action("execute", b"CREATE TABLE t (a INTEGER)"))
    h = prepare(client, "INSERT INTO t VALUES (?)")
    schema = pa.schema([("0", pa.int32())])
    n = prepared_update(client, h, schema,
                        [pa.record_batch([pa.array([], pa.int32())], schema=schema)])
    assert n == 0 and count(client, "t") == 0
    assert prepared_update(client, h, schema, []) == 0  # a schema, then no batch at all
    assert count(client, "t") == 0


@pytest.mark.large
def test_a_million_param_rows_for_an_update(client):
    client.do_action(flight.Action("execute", b"CREATE TABLE t (a BIGINT)"))
    h = prepare(client, "INSERT INTO t VALUES (?)")
    n = 1_000_000
    tbl = pa.table({"0": pa.array(range(n), pa.int64())})
    try:
        assert prepared_update(client, h, tbl.schema, tbl.to_batches(max_chunksize=100_000)) == n
        assert count(client, "t") == n
    except pa.ArrowException as e:  # a bound on the rows: refused whole, nothing inserted
        assert "limit" in str(e), e
        assert count(client, "t") == 0
    still_serving(client)


def test_many_param_rows_for_a_query_run_on_the_last_or_are_refused(client):
    h = prepare(client, PARAM_SQL)
    tbl = pa.table({"0": pa.array(range(1000), pa.int32())})
    bind(client, h, tbl.schema, tbl.to_batches())
    try:
        out = run_prepared(client, h)
    except pa.ArrowInvalid:
        pass
    else:
        assert out.num_rows in (1, 1000)
    still_serving(client)


def test_second_binding_while_a_do_get_streams(client):
    """Rebinding a handle while a DoGet of its first binding streams must not change that stream."""
    h = prepare(client, "SELECT ?::BIGINT AS p, i FROM range(2000000) t(i)")
    one = pa.table({"0": pa.array([1], pa.int64())})
    two = pa.table({"0": pa.array([2], pa.int64())})
    bind(client, h, one.schema, one.to_batches())
    fi = info(client, any_of("CommandPreparedStatementQuery", f_bytes(1, h)))
    reader = client.do_get(fi.endpoints[0].ticket)
    first = reader.read_chunk().data
    bind(client, h, two.schema, two.to_batches())
    rest = reader.read_all()
    ps = set(first.column(0).to_pylist()) | set(rest.column(0).to_pylist())
    assert ps == {1}
    assert first.num_rows + rest.num_rows == 2000000
    assert set(run_prepared(client, h).column(0).to_pylist()) == {2}


def test_param_value_that_is_sql_is_only_a_value(client):
    client.do_action(flight.Action("execute", b"CREATE TABLE t (a VARCHAR)"))
    evil = "x'); DROP TABLE t; COPY (SELECT 1) TO '/tmp/wigeon_h10_pwn.csv'; --"
    h = prepare(client, "INSERT INTO t VALUES (?)")
    tbl = pa.table({"0": [evil]})
    assert prepared_update(client, h, tbl.schema, tbl.to_batches()) == 1
    assert client.do_get(flight.Ticket(b"SELECT a FROM t")).read_all().to_pydict() == \
        {"a": [evil]}
    assert not os.path.exists("/tmp/wigeon_h10_pwn.csv")


# ---- metadata filters ----------------------------------------------------------------------------
def get_tables(client, **kw):
    fields = {"catalog": 1, "db_schema_filter_pattern": 2, "table_name_filter_pattern": 3}
    body = b"".join(f_bytes(fields[k], v) for k, v in kw.items() if k in fields)
    for t in kw.get("table_types", []):
        body += f_bytes(4, t)
    if kw.get("include_schema"):
        body += f_int(5, 1)
    return read_info(client, info(client, any_of("CommandGetTables", body)))


@pytest.fixture
def tables(client):
    client.do_action(flight.Action("execute", b"CREATE TABLE t (a INTEGER); "
                                              b"CREATE TABLE \"a\\b\" (a INTEGER); "
                                              b"CREATE TABLE a_b (a INTEGER)"))
    return client


@pytest.mark.parametrize("pattern", [
    b"t\x00",
    b"t\x00zzz",
    b"\x00",
    b"%\x00",
])
def test_table_filter_with_nul_is_not_cut_at_the_nul(tables, pattern):
    """A NUL in a filter must not end it early: 't\\0zzz' matches no table (not 't')."""
    try:
        out = get_tables(tables, table_name_filter_pattern=pattern)
    except pa.ArrowInvalid:
        return
    assert out.num_rows == 0, out.column("table_name").to_pylist()


@pytest.mark.parametrize("field", ["table_name_filter_pattern", "db_schema_filter_pattern",
                                   "catalog"])
def test_filter_with_invalid_utf8_is_a_clean_answer(tables, field):
    try:
        out = get_tables(tables, **{field: b"\xff\xfe%"})
    except pa.ArrowInvalid:
        pass
    else:
        assert out.num_rows == 0
    still_serving(tables)


def test_one_megabyte_pattern(tables):
    try:
        out = get_tables(tables, table_name_filter_pattern=b"%" * (1 << 20))
    except pa.ArrowException as e:
        assert "limit" in str(e) or "long" in str(e), e
    else:
        assert sorted(out.column("table_name").to_pylist()) == ["a\\b", "a_b", "t"]
    out = None
    try:
        out = get_tables(tables, table_name_filter_pattern=b"t" + b"_" * (1 << 20))
    except pa.ArrowException:
        pass
    assert out is None or out.num_rows == 0
    still_serving(tables)


def test_percent_only_matches_everything(tables):
    names = sorted(get_tables(tables, table_name_filter_pattern=b"%").column("table_name")
                   .to_pylist())
    assert names == ["a\\b", "a_b", "t"]


def test_backslash_escapes_in_patterns(tables):
    """Flight SQL patterns escape with backslash: 'a\\_b' is the literal a_b only."""
    names = get_tables(tables, table_name_filter_pattern=b"a\\_b").column("table_name") \
        .to_pylist()
    assert names == ["a_b"]
    names = get_tables(tables, table_name_filter_pattern=b"a\\\\b").column("table_name") \
        .to_pylist()
    assert names == ["a\\b"]
    still_serving(tables)


def test_trailing_backslash_pattern_is_clean(tables):
    try:
        get_tables(tables, table_name_filter_pattern=b"a\\")
    except pa.ArrowInvalid:
        pass
    still_serving(tables)


def test_get_tables_include_schema_over_a_broken_view(client):
    """A view whose table was dropped lists with a schema of no fields; the listing still works."""
    client.do_action(flight.Action("execute", b"CREATE TABLE base (a INTEGER); "
                                              b"CREATE VIEW v AS SELECT a FROM base; "
                                              b"DROP TABLE base"))
    out = get_tables(client, include_schema=True)
    assert "v" in out.column("table_name").to_pylist()
    still_serving(client)


@pytest.mark.parametrize("cmd,fields", [
    ("CommandGetDbSchemas", [1, 2]), ("CommandGetPrimaryKeys", [1, 2, 3]),
    ("CommandGetExportedKeys", [1, 2, 3]), ("CommandGetImportedKeys", [1, 2, 3]),
    ("CommandGetCrossReference", [1, 2, 3, 4, 5, 6]),
])
@pytest.mark.parametrize("value", [b"x\x00y", b"\xff", b"'; DROP TABLE t; --", b"\\"],
                         ids=["nul", "bad_utf8", "quote", "backslash"])
def test_other_metadata_commands_with_odd_strings(tables, cmd, fields, value):
    body = b"".join(f_bytes(f, value) for f in fields)
    try:
        read_info(tables, info(tables, any_of(cmd, body)))
    except (pa.ArrowInvalid, pa.ArrowKeyError):
        pass
    assert count(tables, "t") == 0  # t still there
    still_serving(tables)


def test_get_sql_info_with_odd_ids(client):
    body = f_bytes(1, varint(0) + varint(0xFFFFFFFF) + varint(0) + varint(12345678))
    out = read_info(client, info(client, any_of("CommandGetSqlInfo", body)))
    assert set(out.column(0).to_pylist()) <= {0}
    # unpacked (not packed) repeated field: protobuf parsers must accept both
    out = read_info(client, info(client, any_of("CommandGetSqlInfo", f_int(1, 0) + f_int(1, 1))))
    assert sorted(out.column(0).to_pylist()) == [0, 1]


# ---- ingest --------------------------------------------------------------------------------------
CREATE, FAIL_NOT = 1, 2
FAIL_EXISTS, APPEND, REPLACE = 1, 2, 3


def ingest(client, table, data, if_not_exist=CREATE, if_exists=FAIL_EXISTS, schema=None,
           catalog=None, temporary=None, txn=None, options=()):
    opts = f_int(1, if_not_exist) + f_int(2, if_exists)
    body = f_bytes(1, opts) + f_bytes(2, table)
    if schema is not None:
        body += f_bytes(3, schema)
    if catalog is not None:
        body += f_bytes(4, catalog)
    if temporary is not None:
        body += f_int(5, int(temporary))
    if txn is not None:
        body += f_bytes(6, txn)
    for k, v in options:
        body += f_bytes(1000, f_bytes(1, k) + f_bytes(2, v))
    res = put(client, any_of("CommandStatementIngest", body), data.schema, data.to_batches())
    assert len(res) == 1
    return parse(res[0]).get(1, [0])[0]


DATA = pa.table({"a": pa.array([1, 2, 3], pa.int64())})


@pytest.mark.parametrize("name", ['we"ird', "it's", "dots.in.name", "sp ace", "ünï"])
def test_ingest_odd_table_names_are_quoted(client, name):
    assert ingest(client, name, DATA) == 3
    tables = get_tables(client, table_name_filter_pattern=name.replace("_", "\\_")) \
        .column("table_name").to_pylist()
    assert tables == [name]
    still_serving(client)


@pytest.mark.parametrize("name", [b"t\x00; DROP TABLE keep", b"\xff\xfe", b""],
                         ids=["nul", "bad_utf8", "empty"])
def test_ingest_bad_table_names_are_invalid(client, name):
    client.do_action(flight.Action("execute", b"CREATE TABLE keep (a INTEGER)"))
    with pytest.raises(pa.ArrowException):
        ingest(client, name, DATA)
    assert count(client, "keep") == 0
    assert get_tables(client).column("table_name").to_pylist() == ["keep"]
    still_serving(client)


def test_ingest_one_megabyte_table_name_is_that_name_or_refused(client):
    name = "x" * (1 << 20)
    try:
        assert ingest(client, name, DATA) == 3
    except pa.ArrowException as e:
        assert "name" in str(e) or "limit" in str(e), str(e)[:300]
        assert get_tables(client).num_rows == 0
    else:
        assert get_tables(client).column("table_name").to_pylist() == [name]
    still_serving(client)


@pytest.mark.parametrize("schema,catalog", [
    ('main"; DROP TABLE keep; --', None), ("no_such_schema", None), (None, "no_such_catalog"),
    (None, "system"), ("information_schema", None), ("pg_catalog", None),
    (None, 'wigeon"."main'), ("temp", None),
])
def test_ingest_schema_and_catalog_tricks(client, schema, catalog):
    client.do_action(flight.Action("execute", b"CREATE TABLE keep (a INTEGER)"))
    with pytest.raises(pa.ArrowException):
        ingest(client, "t", DATA, schema=schema, catalog=catalog)
    assert get_tables(client).column("table_name").to_pylist() == ["keep"]
    still_serving(client)


@pytest.mark.parametrize("key", ["", "\x00", "x" * 100000, "\xff", "adbc.ingest.mode"])
def test_ingest_odd_option_keys_are_refused_cleanly(client, key):
    with pytest.raises(pa.ArrowInvalid, match="option|NUL"):
        ingest(client, "t", DATA, options=[(key.encode("utf-8", "surrogateescape")
                                            if key != "\xff" else b"\xff", b"v")])
    assert get_tables(client).num_rows == 0
    still_serving(client)


def test_ingest_temporary_without_a_transaction(client):
    """A temporary table outside a transaction would vanish with the pooled connection, or worse
    be seen by the next client of that connection: refused, or made and then not visible."""
    try:
        ingest(client, "tmp_t", DATA, temporary=True)
    except pa.ArrowInvalid as e:
        assert "temporary" in str(e)
    still_serving(client)


def test_ingest_replace_of_a_table_another_transaction_writes(client):
    client.do_action(flight.Action("execute", b"CREATE TABLE w (a BIGINT)"))
    txn = begin(client)
    update(client, "INSERT INTO w VALUES (100)", txn)
    try:
        ingest(client, "w", DATA, if_not_exist=CREATE, if_exists=REPLACE)
        replaced = True
    except pa.ArrowException:
        replaced = False
    try:
        end(client, txn, COMMIT)
        committed = True
    except pa.ArrowException:
        committed = False
    rows = sorted(client.do_get(flight.Ticket(b"SELECT a FROM w")).read_all().column(0)
                  .to_pylist())
    assert rows in ([1, 2, 3], [100], [1, 2, 3, 100], []), (replaced, committed, rows)
    if replaced and not committed:
        assert rows == [1, 2, 3]
    still_serving(client)


def test_ingest_wrong_option_values_are_invalid(client):
    for not_exist, exists in [(0, 1), (9, 1), (1, 0), (1, 9)]:
        with pytest.raises(pa.ArrowInvalid):
            ingest(client, "t", DATA, if_not_exist=not_exist, if_exists=exists)
    assert get_tables(client).num_rows == 0


# ---- the sandbox on every path -------------------------------------------------------------------
REFUSED_SQL = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "COPY (SELECT 1) TO '/tmp/wigeon_h10_copy.csv'",
    "ATTACH '/tmp/wigeon_h10_attach.duckdb' AS evil",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SELECT * FROM duckdb_settings()",
    "PRAGMA database_list",
    "SELECT * FROM read_text('/etc/hostname')",
    "CREATE TABLE leak AS SELECT * FROM read_csv_auto('/etc/passwd')",
]
IDS = ["read_csv", "copy", "attach", "install", "load", "set", "settings", "pragma", "read_text",
       "ctas_read"]


def via_statement_query(client, sql):
    query(client, sql)


def via_statement_update(client, sql):
    update(client, sql)


def via_prepared(client, sql):
    h = prepare(client, sql)
    prepared_update(client, h)
    run_prepared(client, h)


def via_prepared_query(client, sql):
    run_prepared(client, prepare(client, sql))


def via_transaction(client, sql):
    txn = begin(client)
    try:
        query(client, sql, txn)
    finally:
        end(client, txn, ROLLBACK)


@pytest.mark.parametrize("sql", REFUSED_SQL, ids=IDS)
@pytest.mark.parametrize("path", [via_statement_query, via_statement_update, via_prepared,
                                  via_prepared_query, via_transaction],
                         ids=["statement_query", "statement_update", "prepared_update",
                              "prepared_query", "in_transaction"])
def test_sandbox_holds_on_every_flight_sql_path(client, path, sql):
    with pytest.raises(pa.ArrowException) as info_:
        path(client, sql)
    assert "Permission" in str(info_.value) or "refused" in str(info_.value) or \
        "not allowed" in str(info_.value) or "locked" in str(info_.value), info_.value
    for f in ["/tmp/wigeon_h10_copy.csv", "/tmp/wigeon_h10_attach.duckdb"]:
        assert not os.path.exists(f)
    assert get_tables(client).num_rows == 0
    still_serving(client)


def test_ingest_cannot_reach_the_file_system(client):
    for name in ["read_csv('/etc/passwd')", "/tmp/wigeon_h10_ingest.csv"]:
        try:
            ingest(client, name, DATA)
        except pa.ArrowInvalid:
            pass
    assert not os.path.exists("/tmp/wigeon_h10_ingest.csv")
    still_serving(client)


def test_hostile_mix_leaves_the_server_serving(client):
    """Everything bad in a row on one client, then a normal Flight SQL workflow still works."""
    for action in list(ANY_ACTIONS) + BARE_ACTIONS:
        for body in GARBAGE.values():
            try:
                act(client, action, body)
            except pa.ArrowException:
                pass
    client.do_action(flight.Action("execute", b"CREATE TABLE z (a INTEGER)"))
    txn = begin(client)
    h = prepare(client, "INSERT INTO z VALUES (?)", txn)
    tbl = pa.table({"0": pa.array([1, 2], pa.int32())})
    assert prepared_update(client, h, tbl.schema, tbl.to_batches()) == 2
    end(client, txn, COMMIT)
    assert count(client, "z") == 2
