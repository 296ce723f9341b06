// Interoperability test: drives a running wigeon server (WG_SERVER=host:port) from Node.js with an
// independent gRPC implementation (@grpc/grpc-js) and the official Apache Arrow JS library.
// Run by tests/interop/run_flight_js.sh, which starts the server; by hand:
//   WG_SERVER=127.0.0.1:8815 node --test tests/interop/flight_js/interop_test.mjs
//
// The tests run in order and share the server: the DoPut test creates from_js, which the
// GetFlightInfo and ListFlights tests then read. Expects a fresh server (--db :memory:).
// WG_SERVER_PID (set by run_flight_js.sh): the server's pid, for the DoExchange test that reads
// its resident memory from /proc (without it, that check is skipped).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import {
  Schema, Field, Table, RecordBatch, Struct, Int32, Int64, Float64, Utf8, Bool, List,
  Dictionary, TimestampMicrosecond, Type, TimeUnit, makeData, vectorFromArray, tableToIPC, tableFromIPC,
} from 'apache-arrow';

import {
  FlightClient, Status, pathDescriptor, cmdDescriptor, splitIPCStream, flightDataToIPCStream,
  readMessageInfo, MessageHeader,
} from './flight_client.mjs';

const SERVER = process.env.WG_SERVER;
if (!SERVER) throw new Error('WG_SERVER (host:port of a running wigeon server) is not set');

let client;

before(async () => {
  client = new FlightClient(SERVER);
  await client.waitForReady(10000);
});

after(() => client?.close());

// ---------------------------------------------------------------------------------------------
// helpers

// A Decimal value as apache-arrow returns it (little-endian 32-bit words, two's complement) ->
// the unscaled BigInt.
function decimalUnscaled(words, bitWidth) {
  let v = 0n;
  for (let k = words.length - 1; k >= 0; k--) v = (v << 32n) | BigInt(words[k] >>> 0);
  return BigInt.asIntN(bitWidth, v);
}

// One value of a column, as plain JS for deepStrictEqual: BigInt for int64 and timestamps (raw
// units), arrays for lists, objects for structs, strings for dictionary-encoded strings.
function plain(type, value) {
  if (value === null || value === undefined) return null;
  switch (type.typeId) {
    case Type.List:
      return Array.from(value, (x) => plain(type.children[0].type, x));
    case Type.Struct: {
      const out = {};
      for (const f of type.children) out[f.name] = plain(f.type, value[f.name]);
      return out;
    }
    default:
      return value;
  }
}

// All rows of a table as plain objects. Timestamps are read from the raw int64 storage, so no
// precision is lost to apache-arrow's milliseconds-as-double accessor.
function plainRows(table) {
  const columns = table.schema.fields.map((f) => {
    const vec = table.getChild(f.name);
    if (f.type.typeId === Type.Timestamp) {
      const raw = vec.toArray();
      return (i) => (vec.isValid(i) ? raw[i] : null);
    }
    return (i) => plain(f.type, vec.get(i));
  });
  const rows = [];
  for (let i = 0; i < table.numRows; i++) {
    const row = {};
    table.schema.fields.forEach((f, c) => { row[f.name] = columns[c](i); });
    rows.push(row);
  }
  return rows;
}

function typeString(field) {
  return `${field.name}:${field.type}`;
}

// Expects the promise to fail with a gRPC status; returns the error.
async function rejectsWithCode(promise, code, messagePattern) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected gRPC status ${code}, but the call succeeded`);
  assert.equal(err.code, code, `expected gRPC status ${code}, got ${err.code}: ${err.details ?? err.message}`);
  if (messagePattern) assert.match(err.details, messagePattern);
  return err;
}

// ---------------------------------------------------------------------------------------------
// (1) DoGet

test('DoGet: literal row of scalar, list, struct and null columns', async () => {
  const sql = `SELECT 42::BIGINT AS answer, 'hi' AS greeting, [1,2,3] AS list, {'a': 1} AS s, NULL::INT AS n`;
  const table = await client.doGet(sql);
  assert.deepEqual(table.schema.fields.map(typeString),
    ['answer:Int64', 'greeting:Utf8', 'list:List<Int32>', 's:Struct<{a:Int32}>', 'n:Int32']);
  assert.equal(table.numRows, 1);
  assert.deepEqual(plainRows(table), [{ answer: 42n, greeting: 'hi', list: [1, 2, 3], s: { a: 1 }, n: null }]);
  assert.equal(table.getChild('n').nullCount, 1);
});

test('DoGet: 100,000 rows in several batches', async () => {
  const sql = `SELECT range AS i, range * 0.5 AS d, 'v' || range AS s FROM range(100000)`;
  const flightData = await client.doGetFlightData(sql);
  // Schema first, then record batches, each FlightData's body exactly the Message's bodyLength
  // (flightDataToIPCStream checks that).
  const kinds = flightData.map((fd) => readMessageInfo(fd.data_header).headerType);
  assert.equal(kinds[0], MessageHeader.Schema);
  assert.ok(kinds.slice(1).every((k) => k === MessageHeader.RecordBatch), `message kinds ${kinds}`);
  assert.ok(kinds.length >= 3, `expected more than one record batch, got ${kinds.length - 1}`);

  const table = tableFromIPC(flightDataToIPCStream(flightData));
  assert.equal(table.numRows, 100000);
  assert.deepEqual(table.schema.fields.map((f) => f.name), ['i', 'd', 's']);
  assert.equal(table.schema.fields[0].type.typeId, Type.Int);
  assert.equal(table.schema.fields[0].type.bitWidth, 64);
  const dType = table.schema.fields[1].type;   // BIGINT * DECIMAL(2,1) is a DECIMAL with scale 1
  assert.equal(dType.typeId, Type.Decimal);
  assert.equal(dType.scale, 1);
  assert.equal(table.schema.fields[2].type.typeId, Type.Utf8);

  const iv = table.getChild('i'), dv = table.getChild('d'), sv = table.getChild('s');
  let sum = 0n;
  for (const chunk of iv.data) for (const x of chunk.values.subarray(0, chunk.length)) sum += x;
  assert.equal(sum, 4999950000n);
  assert.equal(iv.nullCount + dv.nullCount + sv.nullCount, 0);
  for (const r of [0, 1, 2047, 2048, 65535, 65536, 65537, 99999]) {
    assert.equal(iv.get(r), BigInt(r), `i at row ${r}`);
    assert.equal(decimalUnscaled(dv.get(r), dType.bitWidth), BigInt(r) * 5n, `d at row ${r}`);
    assert.equal(sv.get(r), `v${r}`, `s at row ${r}`);
  }
  // Every row, cheaply: i is 0..99999 in order and s follows it.
  let row = 0;
  for (const batch of table.batches) {
    const is = batch.getChild('i'), ss = batch.getChild('s');
    for (let k = 0; k < batch.numRows; k++, row++) {
      if (is.get(k) !== BigInt(row) || ss.get(k) !== `v${row}`) assert.fail(`row ${row}: ${is.get(k)} ${ss.get(k)}`);
    }
  }
});

test('DoGet: empty result still carries the schema', async () => {
  const table = await client.doGet('SELECT 1::SMALLINT AS a, 2.5::DOUBLE AS b WHERE false');
  assert.equal(table.numRows, 0);
  assert.deepEqual(table.schema.fields.map(typeString), ['a:Int16', 'b:Float64']);
});

test('DoGet: concurrent calls on one channel', async () => {
  const tables = await Promise.all(Array.from({ length: 8 }, (_, k) =>
    client.doGet(`SELECT sum(range)::BIGINT AS total, ${k} AS k FROM range(${(k + 1) * 10000})`)));
  tables.forEach((t, k) => {
    const n = BigInt((k + 1) * 10000);
    assert.deepEqual(plainRows(t), [{ total: (n * (n - 1n)) / 2n, k }]);
  });
});

// ---------------------------------------------------------------------------------------------
// (2) DoPut

const dictType = new Dictionary(new Utf8(), new Int32());
const putSchema = new Schema([
  new Field('id', new Int64(), false),
  new Field('f', new Float64(), true),
  new Field('s', new Utf8(), true),
  new Field('b', new Bool(), true),
  new Field('ts', new TimestampMicrosecond(), true),
  new Field('l', new List(new Field('item', new Int32(), true)), true),
  new Field('st', new Struct([new Field('x', new Int32(), true), new Field('y', new Utf8(), true)]), true),
  new Field('d', dictType, true),
]);
const COLORS = ['red', 'green', 'blue', 'cyan', 'magenta'];

function expectedRow(i, batchIndex) {
  return {
    id: BigInt(i) * 9007199254741n - 4611686018427387904n,   // negative, beyond 2^53, increasing
    f: i % 7 === 0 ? null : i === 3 ? Infinity : i === 5 ? NaN : i * 0.25 - 100,
    s: i % 5 === 0 ? null : i % 11 === 0 ? '' : `str-${i}-` + 'é✓🦆'.repeat(i % 4),
    b: i % 3 === 0 ? null : i % 2 === 0,
    ts: i % 6 === 0 ? null : BigInt(i - 1000) * 86400000123n,  // microseconds, some before 1970
    l: i % 4 === 0 ? null : Array.from({ length: i % 5 }, (_, k) => (k % 3 === 1 ? null : i + k)),
    st: i % 9 === 0 ? null : { x: i % 2 ? i : null, y: `y${i % 13}` },
    // Each batch sees the colours in another order, so each has its own dictionary: the stream
    // carries a replacement DictionaryBatch before every record batch after the first.
    d: i % 8 === 0 ? null : COLORS[(i * (batchIndex + 2)) % 5],
  };
}

function validityBitmap(values) {
  const bitmap = new Uint8Array(((values.length + 63) >> 6) << 3);
  values.forEach((v, k) => { if (v !== null) bitmap[k >> 3] |= 1 << (k & 7); });
  return bitmap;
}

function makeBatch(rows) {
  const col = (name) => rows.map((r) => r[name]);
  const one = (vector) => {
    assert.equal(vector.data.length, 1);
    return vector.data[0];
  };
  const ts = col('ts');
  const children = [
    one(vectorFromArray(col('id'), putSchema.fields[0].type)),
    one(vectorFromArray(col('f'), putSchema.fields[1].type)),
    one(vectorFromArray(col('s'), putSchema.fields[2].type)),
    one(vectorFromArray(col('b'), putSchema.fields[3].type)),
    // Built from raw int64 microseconds (the builder takes milliseconds as doubles).
    makeData({
      type: putSchema.fields[4].type, length: rows.length,
      nullCount: ts.filter((v) => v === null).length, nullBitmap: validityBitmap(ts),
      data: BigInt64Array.from(ts, (v) => v ?? 0n),
    }),
    one(vectorFromArray(col('l'), putSchema.fields[5].type)),
    one(vectorFromArray(col('st'), putSchema.fields[6].type)),
    one(vectorFromArray(col('d'), putSchema.fields[7].type)),
  ];
  const data = makeData({ type: new Struct(putSchema.fields), length: rows.length, nullCount: 0, children });
  return new RecordBatch(putSchema, data);
}

const BATCH_SIZES = [1000, 2055, 1, 513];
const expectedRows = [];
const putBatches = [];
for (const [b, size] of BATCH_SIZES.entries()) {
  const rows = [];
  for (let k = 0; k < size; k++) rows.push(expectedRow(expectedRows.length + rows.length, b));
  expectedRows.push(...rows);
  putBatches.push(makeBatch(rows));
}
const putTable = new Table(putSchema, putBatches);
const TOTAL = expectedRows.length;

test('DoPut: an apache-arrow table with several batches, nulls and dictionaries', async () => {
  assert.equal(putTable.numRows, TOTAL);
  assert.equal(putTable.batches.length, BATCH_SIZES.length);
  // The source table reads back its own values (guards the comparison below).
  assert.deepEqual(plainRows(putTable), expectedRows);

  const stream = tableToIPC(putTable, 'stream');
  const kinds = splitIPCStream(stream).map((m) => m.headerType);
  assert.equal(kinds.filter((k) => k === MessageHeader.RecordBatch).length, BATCH_SIZES.length);
  assert.equal(kinds.filter((k) => k === MessageHeader.DictionaryBatch).length, BATCH_SIZES.length,
    `expected one dictionary per batch: ${kinds}`);

  const results = await client.doPut(pathDescriptor('from_js'), stream);
  assert.equal(results.length, 1, 'one PutResult');
  assert.deepEqual(results[0].json, { rows: TOTAL, table: 'from_js' });

  const back = await client.doGet('SELECT * FROM from_js ORDER BY id');
  assert.equal(back.numRows, TOTAL);
  assert.deepEqual(back.schema.fields.map((f) => f.name), putSchema.fields.map((f) => f.name));
  const rows = plainRows(back);
  for (let i = 0; i < TOTAL; i++) {
    // Row by row for a readable failure; deepStrictEqual treats NaN as equal to NaN.
    assert.deepEqual(rows[i], expectedRows[i], `row ${i}`);
  }
});

test('DoPut: appends to an existing table; PutResult counts this stream only', async () => {
  const rows = [expectedRow(TOTAL, 0), expectedRow(TOTAL + 1, 0)];
  const results = await client.doPut(pathDescriptor('from_js_more'), new Table(putSchema, [makeBatch(rows)]));
  assert.deepEqual(results.map((r) => r.json), [{ rows: 2, table: 'from_js_more' }]);
  const again = await client.doPut(pathDescriptor('from_js_more'), new Table(putSchema, [makeBatch(rows)]));
  assert.deepEqual(again.map((r) => r.json), [{ rows: 2, table: 'from_js_more' }]);
  const count = await client.doGet('SELECT count(*) AS n FROM from_js_more');
  assert.deepEqual(plainRows(count), [{ n: 4n }]);
});

test('DoPut: a column type the table cannot take is INVALID_ARGUMENT and keeps nothing', async () => {
  await client.doAction('execute', 'CREATE TABLE typed (id BIGINT, v INTEGER[])');
  const bad = new Table({ id: vectorFromArray([1n], new Int64()), v: vectorFromArray([{ x: 1 }], new Struct([new Field('x', new Int32())])) });
  await rejectsWithCode(client.doPut(pathDescriptor('typed'), bad), Status.INVALID_ARGUMENT, /v/);
  const count = await client.doGet('SELECT count(*) AS n FROM typed');
  assert.deepEqual(plainRows(count), [{ n: 0n }]);
});

test('DoPut: zero-row batches, a schema-only stream, a [schema, table] path', async () => {
  const schema = new Schema([new Field('k', new Int64(), true), new Field('d', dictType, true)]);
  const batch = (ks, ds) => new RecordBatch(schema, makeData({
    type: new Struct(schema.fields), length: ks.length, nullCount: 0,
    children: [vectorFromArray(ks, new Int64()).data[0], vectorFromArray(ds, dictType).data[0]],
  }));
  const withEmpty = new Table(schema, [batch([1n, 2n], ['a', 'b']), batch([], []), batch([3n], [null])]);
  assert.deepEqual((await client.doPut(pathDescriptor('zero_js'), withEmpty)).map((r) => r.json), [{ rows: 3, table: 'zero_js' }]);
  assert.deepEqual(plainRows(await client.doGet('SELECT * FROM zero_js ORDER BY k')),
    [{ k: 1n, d: 'a' }, { k: 2n, d: 'b' }, { k: 3n, d: null }]);

  // No batches at all: the table is created from the schema, with no rows.
  const schemaOnly = tableToIPC(new Table(schema, []), 'stream');
  assert.deepEqual((await client.doPut(pathDescriptor('empty_js'), schemaOnly)).map((r) => r.json), [{ rows: 0, table: 'empty_js' }]);
  const info = await client.getFlightInfo(pathDescriptor('empty_js'));
  assert.equal(info.total_records, 0n);
  assert.deepEqual(info.schemaParsed.fields.map((f) => f.name), ['k', 'd']);

  await client.doAction('execute', 'CREATE SCHEMA IF NOT EXISTS js');
  assert.deepEqual((await client.doPut(pathDescriptor('js', 'tbl'), new Table(schema, [batch([5n], ['z'])]))).map((r) => r.json),
    [{ rows: 1, schema: 'js', table: 'tbl' }]);
  assert.deepEqual(plainRows(await client.doGet('SELECT * FROM js.tbl')), [{ k: 5n, d: 'z' }]);
});

// ---------------------------------------------------------------------------------------------
// (3) GetFlightInfo / GetSchema

const EXPECTED_TYPES = {
  id: (t) => t.typeId === Type.Int && t.bitWidth === 64 && t.isSigned,
  f: (t) => t.typeId === Type.Float && String(t) === 'Float64',
  s: (t) => t.typeId === Type.Utf8,
  b: (t) => t.typeId === Type.Bool,
  ts: (t) => t.typeId === Type.Timestamp && t.unit === TimeUnit.MICROSECOND,
  l: (t) => t.typeId === Type.List && t.children[0].type.typeId === Type.Int && t.children[0].type.bitWidth === 32,
  st: (t) => t.typeId === Type.Struct && t.children.map((c) => `${c.name}:${c.type}`).join(',') === 'x:Int32,y:Utf8',
  // DuckDB stores the dictionary column as VARCHAR; either encoding of strings is fine.
  d: (t) => t.typeId === Type.Utf8 || (t.typeId === Type.Dictionary && t.dictionary.typeId === Type.Utf8),
};

function checkPutSchema(schema) {
  assert.deepEqual(schema.fields.map((f) => f.name), Object.keys(EXPECTED_TYPES));
  for (const f of schema.fields) assert.ok(EXPECTED_TYPES[f.name](f.type), `column ${f.name} has type ${f.type}`);
}

test('GetFlightInfo: PATH from_js -> schema, total_records, a ticket that DoGet reads', async () => {
  const info = await client.getFlightInfo(pathDescriptor('from_js'));
  // schema is an encapsulated IPC Schema message.
  assert.equal(info.schema.readUInt32LE(0), 0xffffffff);
  assert.equal(readMessageInfo(info.schema.subarray(8)).headerType, MessageHeader.Schema);
  checkPutSchema(info.schemaParsed);
  assert.equal(info.total_records, BigInt(TOTAL));
  assert.equal(info.endpoint.length, 1);
  const ticket = info.endpoint[0].ticket.ticket;
  assert.ok(ticket.length > 0);

  const table = await client.doGet(ticket);
  assert.equal(table.numRows, TOTAL);
  checkPutSchema(table.schema);
  const byId = plainRows(table).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  assert.deepEqual(byId, expectedRows);
});

test('GetSchema and GetFlightInfo: CMD with SQL', async () => {
  const schema = await client.getSchema(pathDescriptor('from_js'));
  checkPutSchema(schema);
  const info = await client.getFlightInfo(cmdDescriptor('SELECT id, s AS name FROM from_js WHERE b'));
  assert.deepEqual(info.schemaParsed.fields.map(typeString), ['id:Int64', 'name:Utf8']);
  assert.equal(info.total_records, -1n);
  const table = await client.doGet(info.endpoint[0].ticket.ticket);
  assert.equal(table.numRows, expectedRows.filter((r) => r.b === true).length);
});

test('GetFlightInfo: a missing table is NOT_FOUND', async () => {
  await rejectsWithCode(client.getFlightInfo(pathDescriptor('no_such_table_js')), Status.NOT_FOUND);
});

test('PollFlightInfo and Handshake', async () => {
  const poll = await new Promise((resolve, reject) =>
    client.grpc.PollFlightInfo(pathDescriptor('from_js'), (err, r) => (err ? reject(err) : resolve(r))));
  assert.equal(poll.progress, 1);
  assert.equal(BigInt(poll.info.total_records), BigInt(TOTAL));
  assert.equal(poll.flight_descriptor, null, 'complete: no descriptor to poll again');

  const call = client.grpc.Handshake();
  const responses = [];
  const done = new Promise((resolve, reject) => {
    call.on('data', (r) => responses.push(r));
    call.on('error', reject);
    call.on('end', resolve);
  });
  call.write({ protocol_version: '0', payload: Buffer.alloc(0) });
  call.end();
  await done;
  assert.equal(responses.length, 1);
  assert.equal(responses[0].protocol_version, '0');
});

// ---------------------------------------------------------------------------------------------
// (4) ListFlights

test('ListFlights lists from_js with its schema and row count', async () => {
  const infos = await client.listFlights();
  const named = (info) => info.flight_descriptor?.path?.at(-1);
  const mine = infos.find((info) => named(info) === 'from_js');
  assert.ok(mine, `from_js not in ${infos.map((i) => i.flight_descriptor?.path?.join('.'))}`);
  assert.equal(mine.flight_descriptor.type, 'PATH');
  assert.equal(mine.total_records, BigInt(TOTAL));
  checkPutSchema(mine.schemaParsed);

  const filtered = await client.listFlights('from_js');
  assert.deepEqual(filtered.map(named).sort(), ['from_js', 'from_js_more']);
});

// ---------------------------------------------------------------------------------------------
// (5) DoAction / ListActions

test('DoAction execute returns rows_changed; an unknown action is UNIMPLEMENTED', async () => {
  const results = await client.doAction('execute', 'CREATE TABLE t2 AS SELECT 1');
  assert.equal(results.length, 1);
  const body = JSON.parse(results[0].toString('utf8'));
  assert.ok('rows_changed' in body, `result body ${results[0]}`);
  assert.equal(typeof body.rows_changed, 'number');

  const inserted = await client.doAction('execute', 'INSERT INTO t2 SELECT range FROM range(5)');
  assert.deepEqual(JSON.parse(inserted[0].toString('utf8')), { rows_changed: 5 });
  const count = await client.doGet('SELECT count(*) AS n FROM t2');
  assert.deepEqual(plainRows(count), [{ n: 6n }]);

  const err = await rejectsWithCode(client.doAction('no_such_action', ''), Status.UNIMPLEMENTED);
  assert.equal(err.code, 12);
  assert.match(err.details, /execute/, 'the message names the actions there are');

  const actions = await client.listActions();
  const types = actions.map((a) => a.type);
  for (const name of ['checkpoint', 'drop_table', 'execute', 'stats', 'CreatePreparedStatement', 'BeginTransaction', 'CancelFlightInfo'])
    assert.ok(types.includes(name), `ListActions lists ${name}`);
});

// ---------------------------------------------------------------------------------------------
// (6) errors

test('DoGet: SQL errors come back as INVALID_ARGUMENT with DuckDB\'s message', async () => {
  const parse = await rejectsWithCode(client.doGet('SELEC 1'), Status.INVALID_ARGUMENT, /Parser Error/);
  assert.equal(parse.code, 3);
  assert.match(parse.details, /syntax error/);
  await rejectsWithCode(client.doGet('SELECT no_such_column FROM range(3)'), Status.INVALID_ARGUMENT, /Binder Error/);
  await rejectsWithCode(client.doGet(`SELECT 'abc'::INTEGER`), Status.INVALID_ARGUMENT, /Conversion Error/);
  await rejectsWithCode(client.doGet('SELECT * FROM no_such_table_js'), Status.NOT_FOUND, /no_such_table_js/);
});

// ---------------------------------------------------------------------------------------------
// (7) cancellation

function cancelAfterFirstMessage(sql) {
  return new Promise((resolve, reject) => {
    const call = client.doGetCall(sql);
    let received = 0;
    call.on('data', () => {
      received++;
      if (received === 2) call.cancel();   // schema and one batch in, then cancel
    });
    call.on('error', (err) => resolve({ err, received }));
    call.on('end', () => reject(new Error(`stream ended normally after ${received} messages`)));
  });
}

test('cancelling DoGet mid-stream leaves the server working', async () => {
  // Far more than fits in flow-control windows: the server is still producing when we cancel.
  const sql = 'SELECT range AS i, range::VARCHAR AS s FROM range(200000000)';
  for (let k = 0; k < 3; k++) {
    const { err, received } = await cancelAfterFirstMessage(sql);
    assert.equal(err.code, Status.CANCELLED, `${err.code}: ${err.details}`);
    assert.ok(received >= 2);
  }

  // Cancel a slow query before any batch is out.
  const slow = client.doGetCall('SELECT count(*) FROM range(100000000000)');
  const slowDone = new Promise((resolve) => { slow.on('error', resolve); slow.on('end', () => resolve(null)); });
  slow.on('data', () => {});
  await new Promise((r) => setTimeout(r, 300));
  const started = Date.now();
  slow.cancel();
  const slowErr = await slowDone;
  assert.equal(slowErr?.code, Status.CANCELLED);

  // The next query works, and promptly.
  const table = await client.doGet('SELECT 7::BIGINT AS seven');
  assert.deepEqual(plainRows(table), [{ seven: 7n }]);
  assert.ok(Date.now() - started < 10000);

  // The cancelled calls are gone from the server: only the stats call itself is active.
  let stats;
  for (let tries = 0; tries < 50; tries++) {
    stats = JSON.parse((await client.doAction('stats'))[0].toString('utf8'));
    if (stats.active_calls <= 1) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(stats.active_calls <= 1, `active calls after cancels: ${JSON.stringify(stats)}`);

  // A fresh connection works too.
  const other = new FlightClient(SERVER);
  try {
    const t = await other.doGet('SELECT count(*) AS n FROM from_js');
    assert.deepEqual(plainRows(t), [{ n: BigInt(TOTAL) }]);
  } finally {
    other.close();
  }
});

// ---------------------------------------------------------------------------------------------
// (8) DoExchange: SQL over a stream (docs/exchange.md)

const xSchema = new Schema([new Field('id', new Int64(), false), new Field('name', new Utf8(), true)]);

// One RecordBatch of xSchema (every batch of a call must share the first one's schema).
function xBatch(ids, names = ids.map((i) => `item${i}`)) {
  const children = [vectorFromArray(ids.map(BigInt), new Int64()).data[0], vectorFromArray(names, new Utf8()).data[0]];
  return new RecordBatch(xSchema, makeData({ type: new Struct(xSchema.fields), length: ids.length, nullCount: 0, children }));
}

const range = (start, n) => Array.from({ length: n }, (_, k) => start + k);
const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function stats() {
  return JSON.parse((await client.doAction('stats'))[0].toString('utf8'));
}

// Polls until the server has no call running but the stats call itself (a cancelled or expired
// call is over on the server), for up to 20 s; returns the last stats.
async function waitForIdleServer() {
  let s;
  for (let tries = 0; tries < 200; tries++) {
    s = await stats();
    if (s.active_calls <= 1) return s;
    await sleep(100);
  }
  assert.fail(`the server still has calls running: ${JSON.stringify(s)}`);
}

// Fails with `what` instead of hanging when the promise does not settle within ms.
function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function serverStillAnswers() {
  const t = await client.doExchange(cmdDescriptor('SELECT id * 2 AS twice FROM input'), [xBatch([1, 2, 3])]);
  assert.deepEqual(plainRows(t), [{ twice: 2n }, { twice: 4n }, { twice: 6n }]);
  assert.deepEqual(plainRows(await client.doGet('SELECT 41 + 1 AS x')), [{ x: 42 }]);
}

test('DoExchange: a filter and projection over several batches', async () => {
  // Batches of varied sizes, a zero-row one, nulls in name.
  const sizes = [1, 700, 0, 2500, 33, 4096];
  let next = 0;
  const batches = sizes.map((n) => {
    const ids = range(next, n);
    next += n;
    return xBatch(ids, ids.map((i) => (i % 7 === 3 ? null : `item${i}-é`)));
  });
  const sent = batches.flatMap((b) => plainRows(new Table([b])));
  assert.equal(sent.length, next);
  const expected = sent.filter((r) => r.id % 2n === 0n).map((r) => ({ id: r.id, u: r.name === null ? null : r.name.toUpperCase() }));

  const sql = 'SELECT id, upper(name) AS u FROM input WHERE id % 2 = 0';
  const table = await client.doExchange(cmdDescriptor(sql), batches);
  assert.deepEqual(table.schema.fields.map(typeString), ['id:Int64', 'u:Utf8']);
  assert.equal(table.numRows, expected.length);
  assert.deepEqual(plainRows(table).sort(byId), expected);

  // The same with the descriptor alone in the first message and the schema in the next (as
  // pyarrow sends it), and from a Table.
  const again = await client.doExchange(cmdDescriptor(sql), new Table(xSchema, batches), { descriptorAlone: true });
  assert.deepEqual(plainRows(again).sort(byId), expected);

  // No batch at all: the schema alone; the statement runs over the empty input.
  const empty = await client.doExchange(cmdDescriptor(sql), [], { schema: xSchema });
  assert.equal(empty.numRows, 0);
  assert.equal(empty.batches.length, 0);
  assert.deepEqual(empty.schema.fields.map(typeString), ['id:Int64', 'u:Utf8']);
});

test('DoExchange: enrich a stream by joining it with a table', async () => {
  await client.doAction('execute', 'CREATE TABLE x_dim (k BIGINT PRIMARY KEY, label VARCHAR)');
  const inserted = await client.doAction('execute', `INSERT INTO x_dim VALUES (0, 'zero'), (1, 'one'), (2, 'two')`);
  assert.deepEqual(JSON.parse(inserted[0].toString('utf8')), { rows_changed: 3 });

  // k = id % 5: ids with k 3 or 4 have no label and drop out of the inner join.
  const batches = [xBatch(range(0, 40)), xBatch(range(40, 3)), xBatch(range(43, 1000))];
  const sql = 'SELECT i.id, i.name, d.label FROM input i JOIN x_dim d ON d.k = i.id % 5';
  const table = await client.doExchange(cmdDescriptor(sql), batches);
  assert.deepEqual(table.schema.fields.map(typeString), ['id:Int64', 'name:Utf8', 'label:Utf8']);
  const labels = ['zero', 'one', 'two'];
  const expected = range(0, 1043).filter((i) => i % 5 < 3).map((i) => ({ id: BigInt(i), name: `item${i}`, label: labels[i % 5] }));
  assert.deepEqual(plainRows(table).sort(byId), expected);
});

test('DoExchange: an upsert returns one Count row; DoGet sees the upserted rows', async () => {
  await client.doAction('execute', 'CREATE TABLE x_items (id BIGINT PRIMARY KEY, name VARCHAR)');
  await client.doAction('execute', `INSERT INTO x_items SELECT range, 'old' || range FROM range(10)`);
  const sql = 'INSERT INTO x_items SELECT * FROM input ON CONFLICT (id) DO UPDATE SET name = excluded.name';
  // ids 5..29 in three batches: 5..9 update, 10..29 insert.
  const batches = [xBatch(range(5, 10), range(5, 10).map((i) => `new${i}`)),
    xBatch(range(15, 1), ['new15']), xBatch(range(16, 14), range(16, 14).map((i) => `new${i}`))];
  const table = await client.doExchange(cmdDescriptor(sql), batches);
  assert.deepEqual(table.schema.fields.map(typeString), ['Count:Int64']);
  assert.deepEqual(plainRows(table), [{ Count: 25n }]);

  const back = await client.doGet('SELECT id, name FROM x_items ORDER BY id');
  assert.deepEqual(plainRows(back), range(0, 30).map((i) => ({ id: BigInt(i), name: i < 5 ? `old${i}` : `new${i}` })));

  // Again with other names: every row sent is counted, all of them updates now.
  const again = await client.doExchange(cmdDescriptor(sql), [xBatch(range(0, 30), range(0, 30).map((i) => `v2-${i}`))]);
  assert.deepEqual(plainRows(again), [{ Count: 30n }]);
  assert.deepEqual(plainRows(await client.doGet(`SELECT count(*) AS n FROM x_items WHERE name LIKE 'v2-%'`)), [{ n: 30n }]);
});

test('DoExchange per_batch: lock step, each result before the next batch is sent', async () => {
  const command = JSON.stringify({ sql: 'SELECT count(*) AS n, max(id) AS top FROM input', per_batch: true });
  const ex = client.exchangeCall(cmdDescriptor(command));
  const sizes = [4, 1, 1000, 17, 250];
  let start = 0;
  for (const [k, n] of sizes.entries()) {
    assert.ok(await ex.write(xBatch(range(start, n))), `batch ${k} written`);
    // Nothing more is sent until this batch's result is in: a server that waited for more input
    // (or the end of it) would fail here.
    const result = await within(30000, ex.readBatch(), `the result of batch ${k} (per_batch)`);
    assert.equal(ex.sentBatches, k + 1);
    assert.deepEqual(plainRows(new Table([result])), [{ n: BigInt(n), top: BigInt(start + n - 1) }], `result of batch ${k}`);
    start += n;
  }
  ex.end();
  assert.equal(await within(30000, ex.readBatch(), 'the end of the per_batch results'), null);
  assert.equal(ex.status.code, Status.OK);

  // Each run is its own transaction: an INSERT per batch commits batch by batch.
  await client.doAction('execute', 'CREATE TABLE x_per_batch (id BIGINT, name VARCHAR)');
  const ins = client.exchangeCall(cmdDescriptor(JSON.stringify({ sql: 'INSERT INTO x_per_batch SELECT * FROM input', per_batch: true })));
  for (const [k, n] of [3, 5].entries()) {
    await ins.write(xBatch(range(100 * k, n)));
    assert.deepEqual(plainRows(new Table([await within(30000, ins.readBatch(), `INSERT result ${k}`)])), [{ Count: BigInt(n) }]);
    // Committed while the call is still open.
    const seen = await client.doGet('SELECT count(*) AS n FROM x_per_batch');
    assert.deepEqual(plainRows(seen), [{ n: BigInt(k === 0 ? 3 : 8) }]);
  }
  ins.end();
  assert.equal(await ins.readBatch(), null);
});

test('DoExchange: 500 MB streamed through a filter with bounded server memory', async (t) => {
  // 480 batches of 4096 rows, ~1 MB each (a 248-byte payload per row), made one at a time as
  // the writer asks for them: the client holds one or two at once. The filter keeps 1 row in 1000.
  const BATCHES = 480, ROWS = 4096, WIDTH = 248;
  const bigSchema = new Schema([new Field('id', new Int64(), false), new Field('payload', new Utf8(), false)]);
  const values = Buffer.alloc(ROWS * WIDTH);
  for (let j = 0; j < values.length; j++) values[j] = 97 + (j % 26);   // a..z over and over
  const payload = makeData({ type: new Utf8(), length: ROWS, nullCount: 0,
    valueOffsets: Int32Array.from({ length: ROWS + 1 }, (_, k) => k * WIDTH), data: values });
  let made = 0;
  async function* batches() {
    for (let b = 0; b < BATCHES; b++) {
      const ids = new BigInt64Array(ROWS);
      for (let k = 0; k < ROWS; k++) ids[k] = BigInt(b * ROWS + k);
      const id = makeData({ type: new Int64(), length: ROWS, nullCount: 0, data: ids });
      made++;
      yield new RecordBatch(bigSchema, makeData({ type: new Struct(bigSchema.fields), length: ROWS, nullCount: 0, children: [id, payload] }));
    }
  }
  const expected = [];
  for (let i = 7; i < BATCHES * ROWS; i += 1000) {
    const at = (i % ROWS) * WIDTH;   // the row's payload starts at this offset of the pattern
    expected.push({ id: BigInt(i), len: BigInt(WIDTH), head: String.fromCharCode(...[0, 1, 2].map((c) => 97 + ((at + c) % 26))) });
  }

  // The server's resident memory, sampled while the stream runs (run_flight_js.sh passes its pid).
  const pid = process.env.WG_SERVER_PID;
  const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
  let base = 0, peak = 0, timer = null;
  if (pid) {
    base = peak = rss();
    timer = setInterval(() => { peak = Math.max(peak, rss()); }, 25);
  } else {
    t.diagnostic('WG_SERVER_PID is not set: the server memory is not checked');
  }
  const started = Date.now();
  const ex = client.exchangeCall(cmdDescriptor('SELECT id, length(payload) AS len, left(payload, 3) AS head FROM input WHERE id % 1000 = 7'));
  let table;
  try {
    const result = ex.readAll();
    result.catch(() => {});
    assert.ok(await ex.writeAll(batches()), 'the whole input was written');
    ex.end();
    table = await result;
  } finally {
    if (timer) clearInterval(timer);
  }
  if (pid) peak = Math.max(peak, rss());
  const sentBytes = BATCHES * ROWS * (WIDTH + 8);
  t.diagnostic(`${BATCHES} batches, ${(sentBytes / 2 ** 20).toFixed(0)} MB of column data in ${Date.now() - started} ms; ` +
               `server RSS ${(base / 2 ** 20).toFixed(0)} MB before, peak ${(peak / 2 ** 20).toFixed(0)} MB`);
  assert.equal(made, BATCHES);
  assert.equal(ex.sentBatches, BATCHES);
  assert.equal(table.numRows, expected.length);
  assert.deepEqual(plainRows(table).sort(byId), expected);
  if (pid) {
    // A server that held the input would grow by at least the ~500 MB sent; one that streams
    // holds a few batches, DuckDB's vectors and gRPC's windows (40..175 MB growth measured on a
    // 2-core machine). 320 MB leaves room for a loaded machine and stays well below the input.
    const growth = peak - base;
    assert.ok(growth < 320 * 2 ** 20, `server RSS grew by ${(growth / 2 ** 20).toFixed(0)} MB for ${(sentBytes / 2 ** 20).toFixed(0)} MB sent`);
  }
});

// `SELECT CAST(s AS INTEGER)` over `good` batches of 4000 numbers each (0, 1, 2, ... in order),
// then a batch with a word among numbers, then more good ones: reads results until the error.
// Returns the error, the values that arrived before it and the call.
async function failingCastExchange(good) {
  const sSchema = new Schema([new Field('s', new Utf8(), true)]);
  const sBatch = (values) => new RecordBatch(sSchema, makeData({ type: new Struct(sSchema.fields), length: values.length, nullCount: 0,
    children: [vectorFromArray(values, new Utf8()).data[0]] }));
  async function* input() {
    for (let b = 0; b < good; b++) yield sBatch(range(b * 4000, 4000).map(String));
    yield sBatch(['1', '2', 'twelve', '4']);
    for (let b = 0; b < 4; b++) yield sBatch(range(good * 4000 + 10 + b * 3000, 3000).map(String));
  }
  const ex = client.exchangeCall(cmdDescriptor('SELECT CAST(s AS INTEGER) AS i FROM input'));
  const writing = ex.writeAll(input()).then((open) => { if (open) ex.end(); return open; });
  const got = [];
  let err = null;
  try {
    for (;;) {
      const batch = await within(60000, ex.readBatch(), 'the results or the error');
      if (batch === null) break;
      for (const v of batch.getChild('i')) got.push(v);
    }
  } catch (e) {
    err = e;
  }
  await writing;
  assert.ok(err, `expected an error, the call ended with ${got.length} rows`);
  assert.equal(err.code, Status.INVALID_ARGUMENT, `${err.code}: ${err.details ?? err.message}`);
  // What did arrive is a prefix of the good rows, in order.
  assert.ok(got.length <= good * 4000 + 2, `${got.length} rows before the error`);
  got.forEach((v, k) => { if (v !== k) assert.fail(`row ${k} is ${v}`); });
  return { err, got, ex };
}

test('DoExchange: an error in mid-stream ends the call with INVALID_ARGUMENT; the channel still works', async (t) => {
  // 24,000 good rows: DuckDB reads ahead of its output, so the failing batch is read before a
  // result batch (65,536 rows) is complete; the status is all the client gets.
  const { err, got, ex } = await failingCastExchange(6);
  t.diagnostic(`the error after ${got.length} rows, ${ex.received} FlightData`);
  assert.match(err.details, /Conversion Error/);
  assert.match(err.details, /'twelve'/);
  assert.match(err.details, /INT32/);
  // The same client (channel) keeps working, for DoExchange and DoGet.
  await serverStillAnswers();
});

test('DoExchange: an error after results went out: INVALID_ARGUMENT after those results', async (t) => {
  // 600,000 good rows, more than DuckDB reads ahead: result batches go out before the error.
  const { err, got, ex } = await failingCastExchange(150);
  t.diagnostic(`the error after ${got.length} rows, ${ex.received} FlightData; details ${JSON.stringify(err.details)}`);
  assert.ok(got.length >= 65536, `only ${got.length} rows before the error`);
  await serverStillAnswers();
  // Known server bug (gRPC core 1.51; do_exchange.c ends such a call with
  // wg_rpc_call_expire): the trailers carry grpc-status 3 but no grpc-message, so DuckDB's
  // message is lost once results have gone out. A DoGet failing mid-stream keeps it.
  await t.test('the status names the conversion', { todo: 'wigeon: DoExchange loses grpc-message when it fails after sending results' }, () => {
    assert.match(err.details, /Conversion Error/);
  });
});

test('DoExchange: cancelling an INSERT stream from the client keeps none of its rows', async () => {
  await client.doAction('execute', 'CREATE TABLE x_cancel (id BIGINT, name VARCHAR)');
  const before = await stats();
  const ex = client.exchangeCall(cmdDescriptor('INSERT INTO x_cancel SELECT * FROM input'));
  // Write batches until the server has taken at least 20,000 rows into the INSERT, then cancel
  // without half-closing.
  let next = 0;
  for (let k = 0; k < 400; k++) {
    assert.ok(await ex.write(xBatch(range(next, 1000))), 'the call is open');
    next += 1000;
    if (k % 10 === 9 && (await stats()).rows_in - before.rows_in >= 20000) break;
  }
  const taken = (await stats()).rows_in - before.rows_in;
  assert.ok(taken >= 20000, `the server read ${taken} rows of the stream`);
  ex.cancel();
  let err = null;
  try {
    await ex.readAll();
  } catch (e) {
    err = e;
  }
  assert.equal(err?.code, Status.CANCELLED, `${err?.code}: ${err?.details}`);
  assert.equal(await ex.write(xBatch([0])), false, 'no write after the cancel');

  // The server ends the call (the cancel interrupts the statement; its transaction is rolled
  // back): nothing of it is in the table, now or once the call is gone.
  await waitForIdleServer();
  for (let k = 0; k < 5; k++) {
    assert.deepEqual(plainRows(await client.doGet('SELECT count(*) AS n FROM x_cancel')), [{ n: 0n }]);
    await sleep(100);
  }
  await serverStillAnswers();
  // The table takes writes.
  const ok = await client.doExchange(cmdDescriptor('INSERT INTO x_cancel SELECT * FROM input'), [xBatch([1, 2])]);
  assert.deepEqual(plainRows(ok), [{ Count: 2n }]);
});

test('DoExchange: a deadline that passes ends the call; nothing kept, the server keeps answering', async () => {
  // A streaming SELECT that has its input's first batch and waits for more.
  const waiting = client.exchangeCall(cmdDescriptor('SELECT id FROM input'), { deadline: Date.now() + 1500 });
  assert.ok(await waiting.write(xBatch(range(0, 10))));
  const e1 = await waiting.readAll().then(() => null, (e) => e);
  assert.ok(e1, 'the call ended with an error');
  assert.ok([Status.DEADLINE_EXCEEDED, Status.CANCELLED].includes(e1.code), `${e1.code}: ${e1.details}`);
  await waitForIdleServer();

  // An INSERT whose deadline passes mid-stream keeps none of its rows.
  await client.doAction('execute', 'CREATE TABLE x_deadline (id BIGINT, name VARCHAR)');
  const before = await stats();
  const ins = client.exchangeCall(cmdDescriptor('INSERT INTO x_deadline SELECT * FROM input'), { deadline: Date.now() + 2000 });
  const result = ins.readAll();
  result.catch(() => {});
  let next = 0;
  while (await ins.write(xBatch(range(next, 500)))) {
    next += 500;
    await sleep(20);
  }
  let err = null;
  try {
    await result;
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'the INSERT ended with an error');
  assert.ok([Status.DEADLINE_EXCEEDED, Status.CANCELLED].includes(err.code), `${err.code}: ${err.details}`);
  assert.ok(next > 0, 'some batches went out before the deadline');
  const taken = (await stats()).rows_in - before.rows_in;
  assert.ok(taken > 0, `the server read ${taken} rows of the INSERT's input`);
  await waitForIdleServer();
  assert.deepEqual(plainRows(await client.doGet('SELECT count(*) AS n FROM x_deadline')), [{ n: 0n }]);
  await serverStillAnswers();
});

test('DoExchange: a PATH descriptor and a bad JSON command are INVALID_ARGUMENT', async () => {
  await rejectsWithCode(client.doExchange(pathDescriptor('x_items'), [xBatch([1])]), Status.INVALID_ARGUMENT,
    /DoExchange takes a CMD descriptor holding SQL, not a path/);
  await rejectsWithCode(client.doExchange(cmdDescriptor(JSON.stringify({ sql: 'SELECT * FROM input', batch: true })), [xBatch([1])]),
    Status.INVALID_ARGUMENT, /bad member "batch"/);
  await serverStillAnswers();
});
