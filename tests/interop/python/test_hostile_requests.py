"""A hostile client against the request classifier (src/server/request.c).

A ticket or a CMD descriptor's command is a Flight SQL command only when it parses as a
google.protobuf.Any whose type_url starts with "type.googleapis.com/arrow.flight.protocol.sql.";
anything else is SQL text. Each test sends bytes built to confuse that rule and asserts a clean
gRPC error of the right class (or a result, where the rule says the bytes are SQL), with the server
still serving.
"""

import pyarrow as pa
import pyarrow.flight as flight
import pytest

PREFIX = b"type.googleapis.com/arrow.flight.protocol.sql."


def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if n == 0:
            return out + bytes([b])
        out += bytes([b | 0x80])


def any_msg(type_url, value=b""):
    """A google.protobuf.Any: field 1 type_url, field 2 value, in that order."""
    return (b"\x0a" + varint(len(type_url)) + type_url
            + b"\x12" + varint(len(value)) + value)


def still_serving(client):
    t = client.do_get(flight.Ticket(b"SELECT 42 AS x")).read_all()
    assert t.to_pydict() == {"x": [42]}


def do_get(client, ticket):
    return client.do_get(flight.Ticket(ticket)).read_all()


def info(client, cmd):
    return client.get_flight_info(flight.FlightDescriptor.for_command(cmd))


def schema(client, cmd):
    return client.get_schema(flight.FlightDescriptor.for_command(cmd))


CALLS = [do_get, info, schema]
CALL_IDS = ["do_get", "get_flight_info", "get_schema"]

# Bytes that start like an Any (0x0A) but are not one, and are not UTF-8 SQL either.
NOT_ANY_NOT_UTF8 = {
    "bad_varint": b"\x0a\xff\xff",
    "huge_length": b"\x0a\xff\xff\xff\xff\x0f" + PREFIX,
    "length_past_end_multibyte": b"\x0a" + varint(200) + PREFIX + b"CommandStatementQuery",
    "ten_byte_varint": b"\x0a" + b"\xff" * 9 + b"\x01" + PREFIX,
    "lone_0a_ff": b"\x0a\xff",
}


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
@pytest.mark.parametrize("data", list(NOT_ANY_NOT_UTF8.values()), ids=list(NOT_ANY_NOT_UTF8))
def test_malformed_any_is_invalid_argument_not_utf8(client, call, data):
    """Malformed protobuf after 0x0A is SQL text, and not UTF-8: INVALID_ARGUMENT."""
    with pytest.raises(pa.ArrowInvalid, match="not valid UTF-8"):
        call(client, data)
    still_serving(client)


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
def test_truncated_any_of_ascii_is_run_as_sql_and_fails_to_parse(client, call):
    """A length prefix past the end (ASCII bytes) is SQL text: DuckDB's parser refuses it."""
    with pytest.raises(pa.ArrowInvalid, match="Parser Error"):
        call(client, b"\x0a\x7f" + PREFIX + b"CommandStatementQuery")
    still_serving(client)


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
def test_lone_0a_is_valid_sql_whitespace(client, call):
    """A ticket of a single newline is not an Any (too short): empty-ish SQL, a clean error."""
    with pytest.raises(pa.ArrowInvalid):
        call(client, b"\x0a")
    still_serving(client)


@pytest.mark.parametrize("sql", [b"\nSELECT 1 AS x", b"\n\nSELECT 1 AS x", b"\n\tSELECT 1 AS x",
                                 b"\n-- comment\nSELECT 1 AS x", b"\n SELECT 1 AS x"])
def test_sql_starting_with_newline_runs_as_sql(client, sql):
    """SQL text whose first byte is 0x0A is still SQL: DoGet, GetFlightInfo, GetSchema serve it."""
    assert do_get(client, sql).to_pydict() == {"x": [1]}
    fi = info(client, sql)
    assert fi.schema.names == ["x"]
    assert do_get(client, fi.endpoints[0].ticket.ticket).to_pydict() == {"x": [1]}
    assert schema(client, sql).schema.names == ["x"]


def test_long_sql_starting_with_newline_runs_as_sql(client):
    """A long newline-led SQL (its 2nd byte a big varint's start would be) is still SQL."""
    sql = b"\n" + b"SELECT 1 AS x" + b" " * 5000
    assert do_get(client, sql).to_pydict() == {"x": [1]}


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
def test_empty_request_is_invalid_argument(client, call):
    """An empty ticket / CMD is INVALID_ARGUMENT 'empty ...'."""
    with pytest.raises(pa.ArrowInvalid, match="empty"):
        call(client, b"")
    still_serving(client)


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
def test_flight_sql_any_with_garbage_value_is_invalid(client, call):
    """A served Flight SQL command whose value is garbage is INVALID_ARGUMENT, naming it."""
    with pytest.raises(pa.ArrowInvalid, match="CommandStatementQuery"):
        call(client, any_msg(PREFIX + b"CommandStatementQuery", b"\xff\xff\xff\x00\x0a"))
    still_serving(client)


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
def test_any_nested_in_any_is_refused(client, call):
    """An Any whose value is another Any is read as its outer type (a prepared statement handle
    this server never made): a clean error, not the inner command run."""
    inner = any_msg(PREFIX + b"CommandStatementQuery", b"\x0a\x08SELECT 1")
    with pytest.raises(pa.ArrowException):
        call(client, any_msg(PREFIX + b"CommandPreparedStatementQuery", inner))
    still_serving(client)


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
def test_flight_sql_any_without_value_is_unimplemented(client, call):
    """An Any with only its type_url (no field 2) is still a Flight SQL command (one this server
    does not serve, so that it answers UNIMPLEMENTED naming it)."""
    url = PREFIX + b"CommandStatementSubstraitPlan"
    with pytest.raises(pa.ArrowNotImplementedError, match="CommandStatementSubstraitPlan"):
        call(client, b"\x0a" + varint(len(url)) + url)
    still_serving(client)


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
def test_non_flight_sql_any_is_sql_text(client, call):
    """An Any of another type is SQL text: a parser error, INVALID_ARGUMENT."""
    with pytest.raises(pa.ArrowInvalid, match="Parser Error"):
        call(client, any_msg(b"type.googleapis.com/foo.Bar", b"x"))
    still_serving(client)


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
def test_any_with_a_later_non_flight_sql_type_url_is_not_flight_sql(client, call):
    """A repeated type_url: protobuf's last one wins ("foo"), so it is SQL text (here with a NUL)."""
    data = any_msg(PREFIX + b"CommandStatementQuery") + b"\x0a\x03foo"
    with pytest.raises(pa.ArrowInvalid, match="NUL"):
        call(client, data)
    still_serving(client)


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
def test_any_with_value_first_is_sql_text_clean_error(client, call):
    """An Any written value-first (legal protobuf) does not start with 0x0A: SQL, a clean error."""
    data = b"\x12\x01x" + b"\x0a" + varint(len(PREFIX) + 21) + PREFIX + b"CommandStatementQuery"
    with pytest.raises(pa.ArrowInvalid):
        call(client, data)
    still_serving(client)


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
def test_type_url_with_invalid_utf8_is_unimplemented_without_the_bytes(client, call):
    """A Flight SQL type_url whose name is not UTF-8: UNIMPLEMENTED, the name replaced."""
    with pytest.raises(pa.ArrowNotImplementedError, match="a name not UTF-8"):
        call(client, any_msg(PREFIX + b"Command\xff\xfe"))
    still_serving(client)


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
def test_type_url_with_nul_is_unimplemented(client, call):
    """A type_url holding a NUL is refused UNIMPLEMENTED (the name shown stops at the NUL)."""
    with pytest.raises(pa.ArrowNotImplementedError, match="Flight SQL command"):
        call(client, any_msg(PREFIX + b"CommandStatementQuery\x00evil"))
    still_serving(client)


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
def test_one_megabyte_type_url_is_unimplemented_and_message_is_short(client, call):
    """A 1 MB Flight SQL type_url: UNIMPLEMENTED, and the message does not echo a megabyte."""
    with pytest.raises(pa.ArrowNotImplementedError) as e:
        call(client, any_msg(PREFIX + b"A" * (1 << 20)))
    assert len(str(e.value)) < 2000
    still_serving(client)


@pytest.mark.parametrize("call", CALLS, ids=CALL_IDS)
def test_one_megabyte_non_flight_sql_type_url_is_a_clean_error(client, call):
    """A 1 MB type_url of another type is SQL text: a clean INVALID_ARGUMENT (NUL-free here)."""
    with pytest.raises(pa.ArrowInvalid):
        call(client, b"\x0a" + varint(1 << 20) + b"t" * (1 << 20))
    still_serving(client)


def test_type_url_of_exactly_the_prefix_names_something(client):
    """A type_url of exactly the prefix: UNIMPLEMENTED, and the message names some command."""
    with pytest.raises(pa.ArrowNotImplementedError) as e:
        do_get(client, any_msg(PREFIX))
    assert "command  is" not in str(e.value)


def test_type_url_of_exactly_the_prefix_is_unimplemented(client):
    """A type_url of exactly the prefix matches the rule: UNIMPLEMENTED, server still serving."""
    for call in CALLS:
        with pytest.raises(pa.ArrowNotImplementedError):
            call(client, any_msg(PREFIX))
    still_serving(client)


def test_long_utf8_command_name_is_cut_at_a_character_boundary(client):
    """A long non-ASCII command name is cut, but the error message stays valid UTF-8."""
    with pytest.raises(pa.ArrowNotImplementedError) as e:
        do_get(client, any_msg(PREFIX + b"a" + "\u00e9".encode() * 200))
    assert "\ufffd" not in str(e.value)


# ---- DoPut ----

def put_cmd(client, cmd):
    writer, _ = client.do_put(flight.FlightDescriptor.for_command(cmd),
                              pa.schema([("a", pa.int64())]))
    writer.write_table(pa.table({"a": pa.array([1], pa.int64())}))
    writer.close()


def test_do_put_flight_sql_cmd_is_unimplemented(client):
    """DoPut with a CMD of a Flight SQL Any the server does not serve is UNIMPLEMENTED, naming
    the command (CommandStatementIngest is served now: test_adbc_ingest.py)."""
    with pytest.raises(pa.ArrowNotImplementedError, match="CommandStatementSubstraitPlan"):
        put_cmd(client, any_msg(PREFIX + b"CommandStatementSubstraitPlan", b"\x0a\x01t"))


def test_do_put_flight_sql_cmd_is_a_clean_error(client):
    """DoPut with a Flight SQL CMD: a clean error naming the command, nothing written."""
    with pytest.raises(pa.ArrowException,
                       match="CommandStatementIngest"):
        put_cmd(client, any_msg(PREFIX + b"CommandStatementIngest", b"\x0a\x01t"))
    still_serving(client)
    with pytest.raises(pa.ArrowKeyError, match="does not exist"):
        do_get(client, b"SELECT * FROM t")


@pytest.mark.parametrize("cmd", [b"SELECT 1", b"", b"\nSELECT 1", b"\x0a\xff\xff"],
                         ids=["sql", "empty", "newline_sql", "malformed_any"])
def test_do_put_sql_cmd_error_does_not_blame_the_schema(client, cmd):
    """DoPut with a non-Flight-SQL CMD: INVALID_ARGUMENT 'expected a PATH descriptor' only."""
    with pytest.raises(pa.ArrowInvalid) as e:
        put_cmd(client, cmd)
    assert "bad schema message" not in str(e.value)


@pytest.mark.parametrize("cmd", [b"SELECT 1", b"", b"\nSELECT 1", b"\x0a\xff\xff"],
                         ids=["sql", "empty", "newline_sql", "malformed_any"])
def test_do_put_sql_cmd_is_invalid_argument(client, cmd):
    """DoPut with a CMD of SQL (or garbage): INVALID_ARGUMENT 'expected a PATH descriptor'."""
    with pytest.raises(pa.ArrowInvalid, match="expected a PATH descriptor"):
        put_cmd(client, cmd)
    still_serving(client)


# ---- DoAction ----

@pytest.mark.parametrize("type_", ["", "nope", "EXECUTE", "execute ", "execute\n", "x" * (1 << 20),
                                   "\u00e9" * 100],
                         ids=["empty", "unknown", "case", "trailing_space", "newline", "1mb",
                              "utf8"])
def test_unknown_action_type_is_unimplemented_listing_actions(client, type_):
    """An unknown, empty or huge action type is UNIMPLEMENTED, listing the server's actions."""
    with pytest.raises(pa.ArrowNotImplementedError, match="unknown action") as e:
        list(client.do_action(flight.Action(type_, b"SELECT 1")))
    assert "execute" in str(e.value) and len(str(e.value)) < 2000
    still_serving(client)


def test_unknown_long_utf8_action_type_message_is_utf8(client):
    """A long non-ASCII unknown action type is cut at a character boundary."""
    with pytest.raises(pa.ArrowNotImplementedError) as e:
        list(client.do_action(flight.Action("a" + "\u00e9" * 100, b"")))
    assert "\ufffd" not in str(e.value)


def test_action_type_with_invalid_utf8_is_unimplemented(client):
    """An action type that is not UTF-8 (a protobuf string field) is UNIMPLEMENTED."""
    with pytest.raises(pa.ArrowNotImplementedError, match="unknown action"):
        list(client.do_action(flight.Action(b"exec\xffute", b"SELECT 1")))
    still_serving(client)


def test_action_type_with_invalid_utf8_is_not_echoed(client):
    """The bytes of a non-UTF-8 action type are not copied into the error message."""
    with pytest.raises(pa.ArrowNotImplementedError) as e:
        list(client.do_action(flight.Action(b"exec\xffute", b"SELECT 1")))
    assert "\ufffd" not in str(e.value)


@pytest.mark.parametrize("body,match", [
    (b"", "empty"), (b"SELECT 1\x00", "NUL"), (b"\x00", "NUL"), (b"SELECT '\xff'", "UTF-8"),
    (any_msg(PREFIX + b"CommandStatementUpdate", b"\x0a\x08SELECT 1"), "NUL|UTF-8|Parser"),
])
def test_execute_action_bad_body_is_invalid_argument(client, body, match):
    """execute with an empty body, a NUL, bad UTF-8 or a Flight SQL Any: INVALID_ARGUMENT."""
    with pytest.raises(pa.ArrowInvalid, match=match):
        list(client.do_action(flight.Action("execute", body)))
    still_serving(client)


def test_execute_action_body_starting_with_newline_runs(client):
    """execute with SQL text that starts with 0x0A runs it."""
    list(client.do_action(flight.Action("execute", b"\nCREATE TABLE t AS SELECT 7 AS v")))
    assert do_get(client, b"SELECT v FROM t").to_pydict() == {"v": [7]}


@pytest.mark.parametrize("body,match", [(b"t\x00x", "NUL"), (b"\xff", "UTF-8"), (b"", "body")])
def test_drop_table_bad_body_is_invalid_argument(client, body, match):
    """drop_table with a NUL, bad UTF-8 or empty body: INVALID_ARGUMENT."""
    with pytest.raises(pa.ArrowInvalid, match=match):
        list(client.do_action(flight.Action("drop_table", body)))
    still_serving(client)


def test_stats_action_ignores_a_garbage_body(client):
    """stats with a body of NULs and bad UTF-8 still answers (its body is unused)."""
    assert len(list(client.do_action(flight.Action("stats", b"\x00\xff" * 1000)))) == 1
    still_serving(client)


def test_execute_action_body_over_max_sql_bytes_is_resource_exhausted(wigeon_server):
    """An execute body over --max-sql-bytes is refused before it is parsed."""
    s = wigeon_server(args=["--max-sql-bytes", "1024"])
    c = s.client()
    with pytest.raises(pa.ArrowException, match="max-sql-bytes"):
        list(c.do_action(flight.Action("execute", b"SELECT 1" + b" " * 4096)))
    with pytest.raises(pa.ArrowException, match="max-sql-bytes"):
        do_get(c, b"\n" + b" " * 4096 + b"SELECT 1")
    still_serving(c)
    c.close()


def test_many_hostile_requests_in_a_row_leave_the_server_serving(client):
    """Every hostile shape above, back to back on one connection: the server keeps serving."""
    shapes = list(NOT_ANY_NOT_UTF8.values()) + [
        b"", any_msg(PREFIX), any_msg(PREFIX + b"X", b"\xff" * 100), b"\x0a\x7f" + PREFIX]
    for _ in range(20):
        for data in shapes:
            with pytest.raises(pa.ArrowException):
                do_get(client, data)
    still_serving(client)
