// The TCP metadata exchange preamble: Istio's wire format byte for byte, and reading it from a
// real socket however the bytes are split, leaving what follows (or a non-preamble) in the stream.
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import protobuf from 'protobufjs';
import { decodeMessage } from '../../src/envoy/index.ts';
import { encodePreamble, readPreamble, PREAMBLE_MAGIC, type PreambleResult } from '../../src/proxy/telemetry/peer-exchange-preamble.ts';

const MD = { NAMESPACE: 'default', WORKLOAD_NAME: 'reviews-v2', LABELS: { app: 'reviews', version: 'v2' } };
const ID = 'sidecar~10.0.0.2~reviews-v2-0.default~default.svc.cluster.local';

test('preamble bytes: magic, big-endian length, Any(type.googleapis.com/google.protobuf.Struct) with metadata and id', () => {
  const b = encodePreamble(MD, ID);
  assert.equal(b.readUInt32BE(0), 0x3d230467);
  assert.equal(b.readUInt32BE(4), b.length - 8);
  const r = protobuf.Reader.create(b.subarray(8));
  assert.equal(r.uint32(), 10);
  assert.equal(r.string(), 'type.googleapis.com/google.protobuf.Struct');
  assert.equal(r.uint32(), 18);
  const s = decodeMessage('google.protobuf.Struct', r.bytes());
  assert.deepEqual(s, { 'x-envoy-peer-metadata': MD, 'x-envoy-peer-metadata-id': ID });
});

/** A connected socket pair; `feed` writes chunks one by one from the far end. */
async function pair(t: TestContext): Promise<{ near: net.Socket; far: net.Socket }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const farP = new Promise<net.Socket>((r) => server.once('connection', r));
  const near = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  const far = await farP;
  near.pause();
  t.after(() => {
    near.destroy();
    far.destroy();
    server.close();
  });
  return { near, far };
}

async function rest(s: net.Socket, n: number): Promise<string> {
  let out = '';
  s.setEncoding('latin1');
  s.resume();
  for await (const c of s) {
    out += c as string;
    if (out.length >= n) break;
  }
  return out;
}

test('readPreamble: split byte by byte, the peer is decoded and the application bytes after it stay readable', async (t) => {
  const { near, far } = await pair(t);
  const wire = Buffer.concat([encodePreamble(MD, ID), Buffer.from('app-data')]);
  const result = readPreamble(near, 5000);
  for (const byte of wire) {
    far.write(Buffer.from([byte]));
    await new Promise((r) => setImmediate(r));
  }
  const r = (await result) as Extract<PreambleResult, { kind: 'peer' }>;
  assert.equal(r.kind, 'peer');
  assert.equal(r.peer.labels.workload, 'reviews-v2');
  assert.equal(r.peer.labels.version, 'v2');
  assert.equal(r.peer.id, ID);
  assert.equal(await rest(near, 8), 'app-data');
});

test('readPreamble: a peer without the exchange keeps its first bytes; a closed peer is reported', async (t) => {
  const a = await pair(t);
  const res = readPreamble(a.near, 5000);
  a.far.write('GET / HTTP/1.1\r\n');
  assert.deepEqual(await res, { kind: 'absent' });
  assert.equal(await rest(a.near, 16), 'GET / HTTP/1.1\r\n');

  const b = await pair(t);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(PREAMBLE_MAGIC, 0);
  header.writeUInt32BE(100, 4);
  const res2 = readPreamble(b.near, 5000);
  b.far.end(header);
  assert.deepEqual(await res2, { kind: 'closed' });
});
