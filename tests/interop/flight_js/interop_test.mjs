// Interoperability test: drives a running wigeon server (WG_SERVER=host:port) from Node.js with an
// independent gRPC implementation (@grpc/grpc-js) and the official Apache Arrow JS library.
// Run by tests/interop/run_flight_js.sh, which starts the server; by hand:
//   WG_SERVER=127.0.0.1:8815 node --test tests/interop/flight_js/interop_test.mjs
//
// The tests run in order and share the server: the DoPut test creates from_js, which the
// GetFlightInfo and ListFlights tests then read. Expects a fresh server (--db :memory:).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

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
