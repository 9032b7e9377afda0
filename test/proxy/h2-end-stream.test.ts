// The frames an HTTP/2 client gets from the proxy, read with nghttp -v (Debian's nghttp2-client):
// a response that cannot have trailers ends with END_STREAM on its last DATA frame, as Envoy sends
// it, not with an extra empty DATA frame; gRPC responses still end with their trailers.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { configure, httpListener, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const H2 = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };

interface Frame {
  type: string;
  length: number;
  endStream: boolean;
  /** A HEADERS frame's fields, "name: value". */
  fields: string[];
}

const FRAME = /^\[\s*[\d.]+\] recv (\w+) frame <length=(\d+), flags=0x([0-9a-f]+), stream_id=(\d+)>/;
const HEADER_FIELD = /^\[\s*[\d.]+\] recv \(stream_id=[1-9]\d*\) (.*)$/;

/** The HEADERS and DATA frames received on the request's stream, in order. */
async function framesOf(url: string, headers: string[] = [], body?: string): Promise<Frame[]> {
  const args = ['-v', '-n', ...headers.flatMap((h) => ['-H', h])];
  if (body !== undefined) args.push('-d', '-');
  const child = spawn('nghttp', [...args, url], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end(body ?? '');
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  assert.equal(code, 0, `nghttp failed:\n${out}`);
  // nghttp prints each received header field ("recv (stream_id=13) name: value") before its frame.
  const frames: Frame[] = [];
  let fields: string[] = [];
  for (const line of out.split('\n')) {
    const field = HEADER_FIELD.exec(line);
    if (field) fields.push(field[1]);
    const m = FRAME.exec(line);
    if (!m || Number(m[4]) === 0 || (m[1] !== 'HEADERS' && m[1] !== 'DATA')) continue;
    frames.push({ type: m[1], length: Number(m[2]), endStream: (parseInt(m[3], 16) & 0x1) !== 0, fields: m[1] === 'HEADERS' ? fields : [] });
    if (m[1] === 'HEADERS') fields = [];
  }
  return frames;
}

function shape(frames: Frame[]): string {
  return frames.map((f) => `${f.type}${f.type === 'DATA' && f.length === 0 ? '(empty)' : ''}${f.endStream ? '+END' : ''}`).join(' ');
}

test('HTTP/2 client, HTTP/1.1 upstream: END_STREAM on the last DATA frame, no empty DATA frame', async (t) => {
  const up = await startUpstream('up');
  // Chunked framing: the head, then the body's one chunk and the terminating chunk in one write.
  // (A chunk that reaches node:http2 while the previous one is still being written is sent
  // without END_STREAM, and an empty frame ends the stream: node's doing, kept out of this test.)
  const chunked = net.createServer((socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n');
      setImmediate(() => socket.end('8\r\npart two\r\n0\r\n\r\n'));
    });
  });
  await new Promise<void>((r) => chunked.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => chunked.close(() => r())));
  const h = await startTestRuntime(t, [up]);
  const routes = [{ match: { prefix: '/chunked' }, route: { cluster: 'chunked' } }, { match: { prefix: '/' }, route: { cluster: 'up' } }];
  const clusters = [staticCluster('up', [up.port]), staticCluster('chunked', [(chunked.address() as AddressInfo).port])];
  await configure(h, { clusters, routes: [routeConfig('r', routes)], listeners: [httpListener('l', 'r')] });
  const base = `http://127.0.0.1:${h.port('l')}`;

  const sized = await framesOf(`${base}/sized`);
  assert.match(shape(sized), /^HEADERS (DATA )*DATA\+END$/, shape(sized));
  assert.ok(sized.at(-1)!.length > 0, 'the body ends the stream, not an empty frame');

  const streamed = await framesOf(`${base}/chunked`);
  assert.equal(shape(streamed), 'HEADERS DATA+END');
  assert.equal(streamed.at(-1)!.length, 8, 'the last chunk ends the stream');
  assert.equal(up.requests.length, 1);
});

test('HTTP/2 client, HTTP/2 upstream: a response that got no trailers ends on its last DATA frame; one streaming past the turn still gets its trailers', async (t) => {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.resume();
    if (headers[':path'] === '/slow') {
      // The head and a first chunk, the rest and the trailers on later turns of the event loop.
      stream.respond({ ':status': 200 }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
      stream.write('first');
      setTimeout(() => stream.end('last'), 50);
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end('whole body');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const h = await startTestRuntime(t);
  await configure(h, { clusters: [staticCluster('h2', [(server.address() as AddressInfo).port], H2)], routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'h2' } }])], listeners: [httpListener('l', 'r')] });
  const base = `http://127.0.0.1:${h.port('l')}`;

  const whole = await framesOf(`${base}/whole`);
  assert.equal(shape(whole), 'HEADERS DATA+END');
  assert.equal(whole[1].length, 'whole body'.length);

  const slow = await framesOf(`${base}/slow`);
  assert.match(shape(slow), /^HEADERS (DATA )+HEADERS\+END$/, shape(slow));
  assert.ok(slow.at(-1)!.fields.includes('x-checksum: abc'), slow.at(-1)!.fields.join('\n'));
});

test('HTTP/2 client: gRPC responses still end with trailers (HTTP/2 upstream and a local reply)', async (t) => {
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.resume();
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'fine' }));
      stream.end(Buffer.from([0, 0, 0, 0, 1, 7]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const h = await startTestRuntime(t);
  const routes = [{ match: { prefix: '/pkg.Svc/' }, route: { cluster: 'grpc' } }, { match: { prefix: '/' }, route: { cluster: 'nowhere' } }];
  await configure(h, { clusters: [staticCluster('grpc', [(server.address() as AddressInfo).port], H2)], routes: [routeConfig('r', routes)], listeners: [httpListener('l', 'r')] });
  const base = `http://127.0.0.1:${h.port('l')}`;
  const grpc = ['content-type: application/grpc', 'te: trailers'];
  const message = '\0\0\0\0\0';

  const relayed = await framesOf(`${base}/pkg.Svc/Call`, grpc, message);
  assert.match(shape(relayed), /^HEADERS (DATA )+HEADERS\+END$/, shape(relayed));
  assert.ok(relayed.at(-1)!.fields.includes('grpc-status: 0'), relayed.at(-1)!.fields.join('\n'));
  assert.ok(relayed.at(-1)!.fields.includes('grpc-message: fine'));

  // No cluster: a local reply whose grpc-status goes in trailers after the head.
  const local = await framesOf(`${base}/other.Svc/Call`, grpc, message);
  assert.match(shape(local), /^HEADERS (DATA(\(empty\))? )*HEADERS\+END$/, shape(local));
  assert.ok(local.at(-1)!.fields.some((l) => /^grpc-status: [1-9]/.test(l)), local.at(-1)!.fields.join('\n'));
});

test('HTTP/2 client, HTTP/1.1 upstream with enable_trailers: only a chunked response waits for trailers', async (t) => {
  // /sized: Content-Length; /empty: 204, no body; else chunked with a trailer.
  const up = net.createServer((socket) => {
    let head = '';
    socket.on('data', (c: Buffer) => {
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const path = head.split(' ')[1];
      head = '';
      if (path === '/sized') socket.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nsized');
      else if (path === '/empty') socket.write('HTTP/1.1 204 No Content\r\n\r\n');
      else socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n4\r\nbody\r\n0\r\nx-checksum: abc123\r\n\r\n');
    });
  });
  const sockets = new Set<net.Socket>();
  up.on('connection', (s: net.Socket) => sockets.add(s));
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => up.close(() => r()));
  });
  const trailersOn = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http_protocol_options: { enable_trailers: true } } } } };
  const h = await startTestRuntime(t);
  await configure(h, { clusters: [staticCluster('up', [(up.address() as AddressInfo).port], trailersOn)], routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }])], listeners: [httpListener('l', 'r')] });
  const base = `http://127.0.0.1:${h.port('l')}`;

  const sized = await framesOf(`${base}/sized`);
  assert.equal(shape(sized), 'HEADERS DATA+END', 'a Content-Length body ends the stream on its last DATA frame');
  assert.equal(sized[1].length, 5);

  const empty = await framesOf(`${base}/empty`);
  assert.equal(shape(empty), 'HEADERS+END', 'no body: the head ends the stream');

  const chunked = await framesOf(`${base}/chunked`);
  assert.match(shape(chunked), /^HEADERS (DATA )+HEADERS\+END$/, shape(chunked));
  assert.ok(chunked.at(-1)!.fields.includes('x-checksum: abc123'), chunked.at(-1)!.fields.join('\n'));
});
