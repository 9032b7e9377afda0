// common_http_protocol_options limits on downstream connections, as Envoy applies them:
// max_requests_per_connection (HTTP/1 Connection: close on the last response, HTTP/2 GOAWAY),
// max_connection_duration (idle HTTP/1 closed, a busy one closed after its response, HTTP/2
// GOAWAY) and headers_with_underscores_action (REJECT_REQUEST: 400 + close or a stream reset;
// DROP_HEADER: the upstream never sees the header), with their stats.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { replay } from './corpus.ts';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster, type Harness } from '../proxy/harness.ts';
import { until } from '../helpers/wait.ts';

function stat(h: Harness, name: string): number {
  return h.rt.stats.all().find((s) => s.name === name)?.value ?? 0;
}

async function setup(t: { after(fn: () => unknown): void }, common: Record<string, unknown>) {
  const up = await startUpstream('up', (req, res) => {
    if (req.url !== '/slow') return false;
    setTimeout(() => res.end('slow'), 600);
    return true;
  });
  const h = await startTestRuntime(t, [up]);
  await configure(h, { clusters: [staticCluster('up', [up.port])], listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }]), { common_http_protocol_options: common })] });
  return { h, up, port: h.port('l') };
}

function h2get(c: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders = {}): Promise<{ status: number; rst: number }> {
  return new Promise((resolve) => {
    const s = c.request({ ':path': '/', ...headers });
    let status = 0;
    s.on('response', (hd) => (status = Number(hd[':status'])));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ status, rst: s.rstCode ?? 0 }));
    s.resume();
  });
}

test('max_requests_per_connection: the last HTTP/1 response closes, HTTP/2 gets GOAWAY after that stream', async (t) => {
  const { h, port } = await setup(t, { max_requests_per_connection: 3 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const cx = () => stat(h, 'http.l.downstream_cx_total');
  const before = cx();
  const conns = [];
  for (let i = 0; i < 3; i++) conns.push((await request(port, { agent })).headers.connection);
  assert.deepEqual(conns, ['keep-alive', 'keep-alive', 'close']);
  assert.equal(cx() - before, 1, 'three requests on one connection');
  assert.equal((await request(port, { agent })).status, 200);
  assert.equal(cx() - before, 2, 'the fourth on a new connection');
  assert.equal(stat(h, 'http.l.downstream_cx_max_requests_reached'), 1);

  const c = http2.connect(`http://127.0.0.1:${port}`);
  c.on('error', () => undefined);
  t.after(() => c.destroy());
  let goaway = false;
  c.on('goaway', () => (goaway = true));
  for (let i = 0; i < 3; i++) assert.equal((await h2get(c)).status, 200);
  await until('GOAWAY after the third stream, then the session closes', () => goaway && c.closed, { timeoutMs: 5000, intervalMs: 10 });
  assert.equal(stat(h, 'http.l.downstream_cx_max_requests_reached'), 2);
});

test('max_connection_duration drains: an idle HTTP/1 connection is closed, a busy one after its response, HTTP/2 gets GOAWAY', async (t) => {
  const { h, port } = await setup(t, { max_connection_duration: '0.3s' });
  const idle = net.connect(port, '127.0.0.1');
  idle.on('error', () => undefined);
  idle.resume();
  let idleClosed = false;
  idle.on('close', () => (idleClosed = true));
  idle.write('GET / HTTP/1.1\r\nhost: a\r\n\r\n');
  await until('the idle keep-alive connection is closed after max_connection_duration', () => idleClosed, { timeoutMs: 5000, intervalMs: 10 });

  // A response still being produced when the duration passes carries Connection: close.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const slow = await request(port, { path: '/slow', agent });
  assert.equal(slow.body, 'slow');
  assert.equal(slow.headers.connection, 'close');

  const c = http2.connect(`http://127.0.0.1:${port}`);
  c.on('error', () => undefined);
  t.after(() => c.destroy());
  let goaway = false;
  c.on('goaway', () => (goaway = true));
  assert.equal((await h2get(c)).status, 200);
  await until('the HTTP/2 session is sent GOAWAY and closes', () => goaway && c.closed, { timeoutMs: 5000, intervalMs: 10 });
  assert.ok(stat(h, 'http.l.downstream_cx_max_duration_reached') >= 3);
});

test('headers_with_underscores_action REJECT_REQUEST: HTTP/1 400 and a close, HTTP/2 stream reset', async (t) => {
  const { h, up, port } = await setup(t, { headers_with_underscores_action: 'REJECT_REQUEST' });
  const o = await replay(port, Buffer.from('GET / HTTP/1.1\r\nhost: a\r\nx_forwarded_user: admin\r\n\r\n'), 1000);
  assert.equal(o.status, 400);
  assert.ok(o.closed);
  const c = http2.connect(`http://127.0.0.1:${port}`);
  c.on('error', () => undefined);
  t.after(() => c.destroy());
  const r = await h2get(c, { x_forwarded_user: 'admin' });
  assert.equal(r.status, 0);
  assert.notEqual(r.rst, 0);
  assert.equal((await h2get(c, { 'x-fine': '1' })).status, 200, 'the session goes on');
  assert.equal(up.requests.length, 1);
  assert.equal(stat(h, 'http.l.requests_rejected_with_underscores_in_headers'), 2);
});

test('headers_with_underscores_action DROP_HEADER: the upstream never sees the header', async (t) => {
  const { h, up, port } = await setup(t, { headers_with_underscores_action: 'DROP_HEADER' });
  const r = await request(port, { headers: { x_forwarded_user: 'admin', 'x-kept': 'yes' } });
  assert.equal(r.status, 200);
  assert.equal(up.requests[0].headers.x_forwarded_user, undefined);
  assert.equal(up.requests[0].headers['x-kept'], 'yes');
  assert.equal(stat(h, 'http.l.dropped_headers_with_underscores'), 1);
});
