// A small Arrow Flight client for Node.js: @grpc/grpc-js for the transport, @grpc/proto-loader
// for the messages (the repository's proto/flight.proto plus flight_service.proto here), and the
// official Apache Arrow JS library for the Arrow data. Written for the wigeon interoperability
// test; nothing in it knows about wigeon beyond the Flight protocol.
//
// The IPC bridge: a Flight stream carries one Arrow IPC message per FlightData, the Message
// flatbuffer in data_header and the body in data_body. Reading, the messages are framed back into
// an IPC stream (continuation 0xFFFFFFFF, int32 little-endian metadata length padded to 8,
// metadata and zero padding, body; then the end-of-stream marker) and handed to apache-arrow.
// Writing, apache-arrow's stream is split into its messages, each one FlightData.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { tableFromIPC, tableToIPC, RecordBatchReader } from 'apache-arrow';

const here = path.dirname(fileURLToPath(import.meta.url));
const PROTO_DIR = path.resolve(here, '../../../proto');

const packageDefinition = protoLoader.loadSync(path.join(here, 'flight_service.proto'), {
  includeDirs: [here, PROTO_DIR],
  keepCase: true,   // field names as on the wire: data_header, total_records, ...
  longs: String,    // int64 as decimal strings (converted to BigInt below), no precision loss
  enums: String,    // FlightDescriptor.type as 'PATH' / 'CMD'
  bytes: Buffer,    // bytes fields as Buffers
  defaults: true,
  oneofs: true,
});
const proto = grpc.loadPackageDefinition(packageDefinition).arrow.flight.protocol;

export const Status = grpc.status;

// ---------------------------------------------------------------------------------------------
// IPC framing

const CONTINUATION = 0xffffffff;
export const MessageHeader = { NONE: 0, Schema: 1, DictionaryBatch: 2, RecordBatch: 3, Tensor: 4, SparseTensor: 5 };
const EOS = Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

const pad8 = (n) => (n + 7) & ~7;

function asBuffer(u8) {
  return Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

// Reads the root table of an IPC Message flatbuffer (format/Message.fbs):
//   table Message { version: MetadataVersion (short, field 0); header_type (ubyte, field 1);
//                   header (offset, field 2); bodyLength: long (field 3); custom_metadata (4) }
// Only the scalar fields are read; every offset is checked against the buffer.
export function readMessageInfo(metadata) {
  const fb = asBuffer(metadata);
  const fail = (what) => { throw new Error(`malformed IPC Message flatbuffer (${fb.length} bytes): ${what}`); };
  if (fb.length < 8) fail('shorter than 8 bytes');
  const root = fb.readUInt32LE(0);
  if (root + 4 > fb.length) fail(`root offset ${root} outside the buffer`);
  const vtable = root - fb.readInt32LE(root);
  if (vtable < 0 || vtable + 4 > fb.length) fail(`vtable at ${vtable} outside the buffer`);
  const vtableSize = fb.readUInt16LE(vtable);
  const tableSize = fb.readUInt16LE(vtable + 2);
  if (vtable + vtableSize > fb.length || root + tableSize > fb.length) fail('vtable or table runs past the end');
  const fieldOffset = (index) => {
    const slot = 4 + 2 * index;
    if (slot + 2 > vtableSize) return 0;
    const off = fb.readUInt16LE(vtable + slot);
    if (off !== 0 && off >= tableSize) fail(`field ${index} at ${off} outside its table of ${tableSize} bytes`);
    return off;
  };
  const vOff = fieldOffset(0), tOff = fieldOffset(1), bOff = fieldOffset(3);
  return {
    version: vOff ? fb.readInt16LE(root + vOff) : 0,
    headerType: tOff ? fb.readUInt8(root + tOff) : MessageHeader.NONE,
    bodyLength: bOff ? fb.readBigInt64LE(root + bOff) : 0n,
  };
}

// Frames one message into the encapsulated IPC form: continuation, length, metadata padded to 8.
export function encapsulate(metadata, body = Buffer.alloc(0)) {
  const meta = asBuffer(metadata);
  const paddedLength = pad8(meta.length);
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32LE(CONTINUATION, 0);
  prefix.writeInt32LE(paddedLength, 4);
  const parts = [prefix, meta];
  if (paddedLength > meta.length) parts.push(Buffer.alloc(paddedLength - meta.length));
  if (body.length) parts.push(asBuffer(body));
  return parts;
}

// FlightData messages (as received) -> one IPC stream (a Buffer) that apache-arrow can read.
// The body must be exactly the Message's bodyLength: a mismatch is an error, not padded over.
export function flightDataToIPCStream(flightData) {
  const parts = [];
  let index = 0;
  for (const fd of flightData) {
    const header = fd.data_header;
    if (!header || header.length === 0) {
      // Metadata-only FlightData (app_metadata without a message) carries no Arrow data.
      index++;
      continue;
    }
    const info = readMessageInfo(header);
    const body = fd.data_body ?? Buffer.alloc(0);
    if (BigInt(body.length) !== info.bodyLength) {
      throw new Error(`FlightData #${index}: data_body is ${body.length} bytes but the Message's ` +
                      `bodyLength says ${info.bodyLength} (header type ${info.headerType})`);
    }
    parts.push(...encapsulate(header, body));
    index++;
  }
  parts.push(EOS);
  return Buffer.concat(parts);
}

// One IPC stream (apache-arrow's tableToIPC(table, 'stream')) -> its messages, in order, as
// { metadata, body, headerType, bodyLength }. Stops at the end-of-stream marker.
export function splitIPCStream(stream) {
  const buf = asBuffer(stream);
  const messages = [];
  let pos = 0;
  while (pos + 4 <= buf.length) {
    let length = buf.readInt32LE(pos);
    let prefix = 4;
    if (buf.readUInt32LE(pos) === CONTINUATION) {
      if (pos + 8 > buf.length) throw new Error(`IPC stream truncated at ${pos}`);
      length = buf.readInt32LE(pos + 4);
      prefix = 8;
    }
    if (length === 0) return messages;   // end of stream
    if (length < 0 || pos + prefix + length > buf.length) {
      throw new Error(`IPC stream: metadata length ${length} at ${pos} runs past the end (${buf.length})`);
    }
    const metadata = buf.subarray(pos + prefix, pos + prefix + length);
    const info = readMessageInfo(metadata);
    const bodyStart = pos + prefix + length;
    const bodyEnd = bodyStart + Number(info.bodyLength);
    if (bodyEnd > buf.length) throw new Error(`IPC stream: body of ${info.bodyLength} bytes at ${bodyStart} runs past the end`);
    messages.push({ metadata, body: buf.subarray(bodyStart, bodyEnd), ...info });
    pos = bodyEnd;
  }
  if (pos !== buf.length) throw new Error(`IPC stream: ${buf.length - pos} trailing bytes`);
  return messages;   // a stream without the marker is still complete at a message boundary
}

// An encapsulated Schema message (FlightInfo.schema, SchemaResult.schema) -> apache-arrow Schema.
// The message is made a stream of zero batches by appending the end-of-stream marker.
export function schemaFromIPCMessage(bytes) {
  const buf = asBuffer(bytes);
  if (buf.length < 8 || buf.readUInt32LE(0) !== CONTINUATION) {
    throw new Error(`schema bytes do not start with the IPC continuation marker (${buf.subarray(0, 8).toString('hex')})`);
  }
  const reader = RecordBatchReader.from(Buffer.concat([buf, EOS]));
  reader.open();
  if (!reader.schema) throw new Error('no schema in the schema bytes');
  return reader.schema;
}

// ---------------------------------------------------------------------------------------------
// The client

const asBytes = (x) => (typeof x === 'string' ? Buffer.from(x, 'utf8') : asBuffer(x));

export function pathDescriptor(...pathParts) {
  return { type: 'PATH', path: pathParts, cmd: Buffer.alloc(0) };
}

export function cmdDescriptor(cmd) {
  return { type: 'CMD', path: [], cmd: asBytes(cmd) };
}

function collect(stream) {
  return new Promise((resolve, reject) => {
    const items = [];
    stream.on('data', (item) => items.push(item));
    stream.on('error', reject);
    stream.on('end', () => resolve(items));
  });
}

export class FlightClient {
  constructor(address, options = {}) {
    this.address = address;
    this.grpc = new proto.FlightService(address, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
      'grpc.max_send_message_length': 256 * 1024 * 1024,
      ...options,
    });
  }

  close() {
    this.grpc.close();
  }

  waitForReady(timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      this.grpc.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve()));
    });
  }

  // DoGet: the grpc-js call (a Readable of FlightData); the caller reads or cancels it.
  doGetCall(ticket, callOptions = {}) {
    return this.grpc.DoGet({ ticket: asBytes(ticket) }, callOptions);
  }

  async doGetFlightData(ticket, callOptions) {
    return collect(this.doGetCall(ticket, callOptions));
  }

  // DoGet read into an apache-arrow Table (every batch; the schema even with no batches).
  async doGet(ticket, callOptions) {
    const flightData = await this.doGetFlightData(ticket, callOptions);
    return tableFromIPC(flightDataToIPCStream(flightData));
  }

  // DoPut of an apache-arrow Table (or an IPC stream) under a PATH descriptor. The descriptor
  // goes on the first FlightData only. Returns the PutResults, app_metadata parsed as JSON.
  async doPut(descriptor, tableOrStream, callOptions = {}) {
    const stream = tableOrStream instanceof Uint8Array ? tableOrStream : tableToIPC(tableOrStream, 'stream');
    const messages = splitIPCStream(stream);
    const call = this.grpc.DoPut(callOptions);
    const results = collect(call);
    results.catch(() => {});   // observed below; keeps an early server error from going unhandled
    let first = true;
    for (const { metadata, body } of messages) {
      const fd = { data_header: metadata, data_body: body, app_metadata: Buffer.alloc(0) };
      if (first) {
        fd.flight_descriptor = descriptor;
        first = false;
      }
      if (!call.write(fd)) {
        // Respect flow control; stop waiting if the call ends (an error arrives through results).
        const done = await Promise.race([once(call, 'drain').then(() => false), results.then(() => true, () => true)]);
        if (done) break;
      }
    }
    call.end();
    const putResults = await results;
    return putResults.map((r) => ({ raw: r.app_metadata, json: r.app_metadata.length ? JSON.parse(r.app_metadata.toString('utf8')) : null }));
  }

  getFlightInfo(descriptor, callOptions = {}) {
    return new Promise((resolve, reject) => {
      this.grpc.GetFlightInfo(descriptor, callOptions, (err, info) => (err ? reject(err) : resolve(normalizeInfo(info))));
    });
  }

  getSchema(descriptor, callOptions = {}) {
    return new Promise((resolve, reject) => {
      this.grpc.GetSchema(descriptor, callOptions, (err, r) => (err ? reject(err) : resolve(schemaFromIPCMessage(r.schema))));
    });
  }

  async listFlights(expression = '', callOptions = {}) {
    const infos = await collect(this.grpc.ListFlights({ expression: asBytes(expression) }, callOptions));
    return infos.map(normalizeInfo);
  }

  // DoAction: the Result bodies as Buffers.
  async doAction(type, body = '', callOptions = {}) {
    const results = await collect(this.grpc.DoAction({ type, body: asBytes(body) }, callOptions));
    return results.map((r) => r.body);
  }

  async listActions(callOptions = {}) {
    return collect(this.grpc.ListActions({}, callOptions));
  }
}

function normalizeInfo(info) {
  return {
    ...info,
    total_records: BigInt(info.total_records),
    total_bytes: BigInt(info.total_bytes),
    schemaParsed: info.schema && info.schema.length ? schemaFromIPCMessage(info.schema) : null,
  };
}
