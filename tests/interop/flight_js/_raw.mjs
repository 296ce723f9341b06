// Raw HTTP/2 view of a DoExchange whose SQL fails after results went out: headers, trailers, RST.
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Schema, Field, RecordBatch, Struct, Utf8, Table, makeData, vectorFromArray, tableToIPC } from 'apache-arrow';
import { splitIPCStream, cmdDescriptor } from './flight_client.mjs';
const pd = protoLoader.loadSync('flight_service.proto', { includeDirs: ['.', '../../../proto'], keepCase: true, longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: true });
const svc = grpc.loadPackageDefinition(pd).arrow.flight.protocol.FlightService.service;
const ser = svc.DoExchange.requestSerialize;
const NB = Number(process.argv[3]);
const sSchema = new Schema([new Field('s', new Utf8(), true)]);
const range = (start, n) => Array.from({ length: n }, (_, k) => start + k);
const sBatch = (values) => new RecordBatch(sSchema, makeData({ type: new Struct(sSchema.fields), length: values.length, nullCount: 0, children: [vectorFromArray(values, new Utf8()).data[0]] }));
const frame = (msg) => { const b = ser(msg); const h = Buffer.alloc(5); h.writeUInt32BE(b.length, 1); return Buffer.concat([h, b]); };
const session = http2.connect('http://' + process.argv[2]);
const req = session.request({ ':method': 'POST', ':path': '/arrow.flight.protocol.FlightService/DoExchange', 'content-type': 'application/grpc', te: 'trailers' });
let bytes = 0;
req.on('response', (h) => console.log('response headers', JSON.stringify(h)));
req.on('data', (d) => { bytes += d.length; });
req.on('trailers', (t) => console.log('trailers', JSON.stringify(t), 'after', bytes, 'bytes of data'));
req.on('close', () => { console.log('close rstCode', req.rstCode, 'data bytes', bytes); session.close(); });
req.on('error', (e) => console.log('error', e.message));
const batches = [...Array.from({ length: NB }, (_, b) => sBatch(range(b * 4000, 4000).map(String))), sBatch(['1', 'twelve'])];
let first = true;
for (const b of batches) {
  for (const m of splitIPCStream(tableToIPC(new Table(sSchema, [b]), 'stream'))) {
    if (m.headerType === 1 && !first) continue;
    const fd = { data_header: m.metadata, data_body: m.body, app_metadata: Buffer.alloc(0) };
    if (first) { fd.flight_descriptor = cmdDescriptor('SELECT CAST(s AS INTEGER) AS i FROM input'); first = false; }
    if (!req.write(frame(fd))) await new Promise((r) => req.once('drain', r));
  }
}
req.end();
