// Configured request limits, as Envoy's HCM has them: max_request_headers_kb and
// common_http_protocol_options.max_headers_count (431 and a close on HTTP/1, a stream reset on
// HTTP/2), and http2_protocol_options.max_concurrent_streams (advertised in SETTINGS and enforced:
// a stream beyond it is refused with REFUSED_STREAM even from a client that ignores SETTINGS).
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { replay } from './corpus.ts';
import { LISTENER_TYPE, configure, httpListener, routeConfig, startRuntime, startTestRuntime, startUpstream, staticCluster } from '../proxy/harness.ts';
import { frame, PREFACE } from '../helpers/h2-frames.ts';

async function setup(t: { after(fn: () => unknown): void }, hcm: Record<string, unknown>, hang = false) {
  const up = await startUpstream('up', () => hang);
  const h = await startTestRuntime(t, [up]);
  await configure(h, { clusters: [staticCluster('up', [up.port])], listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }]), hcm)] });
  return { h, up, port: h.port('l') };
}

const headers = (n: number, size = 8): string => Array.from({ length: n }, (_, i) => `x-h${i}: ${'v'.repeat(size)}\r\n`).join('');
// Connection: close, so that a request within the limits ends with the proxy's close too.
const get = (extra: string): Buffer => Buffer.from(`GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n${extra}\r\n`);

test('HTTP/1: max_request_headers_kb and max_headers_count give 431 and a close; requests within them pass', async (t) => {
  const { up, port } = await setup(t, { max_request_headers_kb: 8, common_http_protocol_options: { max_headers_count: 20 } });
  let o = await replay(port, get(`x-big: ${'b'.repeat(10 * 1024)}\r\n`), 1000);
  assert.equal(o.status, 431);
  assert.ok(o.closed, 'closed after 431 (headers too large)');
  o = await replay(port, get(headers(25)), 1000);
  assert.equal(o.status, 431);
  assert.ok(o.closed, 'closed after 431 (too many headers)');
  assert.equal(up.requests.length, 0);
  o = await replay(port, get(`x-big: ${'b'.repeat(6 * 1024)}\r\n${headers(15)}`), 5000);
  assert.equal(o.status, 200);
  assert.equal(up.requests.length, 1);
});

test('HTTP/1: Envoy\'s default max_headers_count is 100', async (t) => {
  const { port } = await setup(t, {});
  assert.equal((await replay(port, get(headers(97)), 5000)).status, 200);
  const o = await replay(port, get(headers(101)), 1000);
  assert.equal(o.status, 431);
  assert.ok(o.closed);
});

function h2stream(c: http2.ClientHttp2Session, hdrs: http2.OutgoingHttpHeaders): Promise<{ status: number; rst: number }> {
  return new Promise((resolve) => {
    const s = c.request(hdrs);
    let status = 0;
    s.on('response', (hd) => (status = Number(hd[':status'])));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ status, rst: s.rstCode ?? 0 }));
    s.resume();
  });
}

test('HTTP/2: a header list over max_request_headers_kb or max_headers_count resets the stream; the session goes on', async (t) => {
  const { up, port } = await setup(t, { max_request_headers_kb: 8, common_http_protocol_options: { max_headers_count: 20 } });
  const c = http2.connect(`http://127.0.0.1:${port}`, { maxSendHeaderBlockLength: 1 << 20 });
  c.on('error', () => undefined);
  t.after(() => c.destroy());
  // SETTINGS apply once acknowledged: until then node holds header lists to its 64 KiB default.
  assert.equal((await h2stream(c, { ':path': '/', 'x-fine': 'b'.repeat(1024) })).status, 200);
  let r = await h2stream(c, { ':path': '/', 'x-big': 'b'.repeat(10 * 1024) });
  assert.equal(r.status, 0, 'no response');
  assert.notEqual(r.rst, 0, 'the stream is reset');
  const many: http2.OutgoingHttpHeaders = { ':path': '/' };
  for (let i = 0; i < 25; i++) many[`x-h${i}`] = 'v';
  r = await h2stream(c, many);
  assert.equal(r.status, 0);
  assert.notEqual(r.rst, 0);
  assert.equal(up.requests.length, 1, 'only the fine request reached the upstream');
  r = await h2stream(c, { ':path': '/', 'x-fine': 'b'.repeat(1024) });
  assert.equal(r.status, 200);
});

test('HTTP/2: max_concurrent_streams is advertised and enforced (REFUSED_STREAM past it)', async (t) => {
  const { up, port } = await setup(t, { http2_protocol_options: { max_concurrent_streams: 2, initial_stream_window_size: 1048576, initial_connection_window_size: 4194304, hpack_table_size: 8192 } }, true);
  // A well-behaved client reads the SETTINGS.
  const c = http2.connect(`http://127.0.0.1:${port}`);
  c.on('error', () => undefined);
  t.after(() => c.destroy());
  await new Promise((r) => c.once('remoteSettings', r));
  assert.equal(c.remoteSettings.maxConcurrentStreams, 2);
  assert.equal(c.remoteSettings.initialWindowSize, 1048576);
  assert.equal(c.remoteSettings.headerTableSize, 8192);
  c.destroy();

  // A raw client that ignores them: HEADERS (GET /, END_STREAM|END_HEADERS) on streams 1, 3, 5.
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  t.after(() => s.destroy());
  const get = (id: number) => frame(1, 0x5, id, Buffer.from([0x82, 0x84, 0x86, 0x41, 1, 0x61]));
  let buf = Buffer.alloc(0);
  const resets = new Map<number, number>();
  let windowUpdate = 0;
  s.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
      const len = buf.readUIntBE(0, 3);
      const type = buf[3];
      const id = buf.readUInt32BE(5) & 0x7fffffff;
      if (type === 3) resets.set(id, buf.readUInt32BE(9));
      if (type === 8 && id === 0) windowUpdate += buf.readUInt32BE(9) & 0x7fffffff;
      buf = buf.subarray(9 + len);
    }
  });
  s.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0)), get(1), get(3)]));
  for (let i = 0; i < 200 && up.requests.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(up.requests.length, 2, 'two streams reached the (hanging) upstream');
  s.write(get(5));
  for (let i = 0; i < 200 && !resets.has(5); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(resets.get(5), http2.constants.NGHTTP2_REFUSED_STREAM, 'the third concurrent stream is refused');
  assert.equal(up.requests.length, 2);
  assert.equal(windowUpdate, 4194304 - 65535, 'the connection window was raised to initial_connection_window_size');
});

test('bad http2_protocol_options and max_headers_count values are refused with their paths', async (t) => {
  const h = await startRuntime();
  t.after(() => h.close());
  const hcm = { common_http_protocol_options: { max_headers_count: 0 }, http2_protocol_options: { max_concurrent_streams: 0, initial_stream_window_size: 100 } };
  const errors = h.apply(LISTENER_TYPE, [httpListener('l', routeConfig('r', []), hcm)]).join('\n');
  assert.match(errors, /common_http_protocol_options\.max_headers_count: must be a positive integer/);
  assert.match(errors, /http2_protocol_options\.max_concurrent_streams: must be an integer in \[1, 2147483647\]/);
  assert.match(errors, /http2_protocol_options\.initial_stream_window_size: must be an integer in \[65535, 2147483647\]/);
});

test('HTTP/2 flood limits other than Envoy\'s defaults and unknown http2_protocol_options are warned about, not silently taken', async (t) => {
  const h = await startRuntime();
  t.after(() => h.close());
  const hcm = { http2_protocol_options: { hpack_table_size: 8192, max_outbound_frames: 10000, max_outbound_control_frames: 50, allow_metadata: true } };
  assert.deepEqual(h.apply(LISTENER_TYPE, [httpListener('l', routeConfig('r', []), hcm)]), []);
  const warnings = (h.rt.warnings.get(LISTENER_TYPE) ?? []).join('\n');
  assert.match(warnings, /http2_protocol_options\.max_outbound_control_frames: max_outbound_control_frames cannot be set in rig proxy/);
  assert.doesNotMatch(warnings, /max_outbound_frames|hpack_table_size/, 'defaults and supported fields are not warned about');
  assert.match(warnings, /http2_protocol_options\.allow_metadata: field "allow_metadata" is not supported/);
});
