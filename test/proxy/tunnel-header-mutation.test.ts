// Upgrades and CONNECT get the connection manager's request header mutation as every request does
// (Envoy's mutateRequestHeaders runs before routing): x-forwarded-for appended, x-envoy-* steering
// headers of an external client removed, x-request-id and x-forwarded-proto set, and the trusted
// client address taken from x-forwarded-for as the stream's downstream remote address.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import type { RequestHead } from '../../src/proxy/filters/filter.ts';
import { localAddress } from '../../src/proxy/local-address.ts';
import type { StreamInfo } from '../../src/proxy/stream-info.ts';
import { configure, httpListener, routeConfig, startTestRuntime, staticCluster } from './harness.ts';

const CLIENT = { 'x-forwarded-for': '203.0.113.7', 'x-envoy-retry-on': '5xx', 'x-envoy-upstream-rq-timeout-ms': '60000', 'x-envoy-internal': 'true' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What an edge proxy (use_remote_address, one trusted hop) must have done to CLIENT's headers. */
function assertMutated(h: IncomingHttpHeaders | Record<string, unknown>, what: string): void {
  assert.equal(h['x-forwarded-for'], `203.0.113.7,${localAddress()}`, `${what}: x-forwarded-for appended`);
  for (const k of ['x-envoy-retry-on', 'x-envoy-upstream-rq-timeout-ms', 'x-envoy-internal']) assert.equal(h[k], undefined, `${what}: ${k} removed`);
  assert.equal(h['x-envoy-external-address'], '203.0.113.7', `${what}: the trusted client address`);
  assert.match(String(h['x-request-id']), UUID, `${what}: x-request-id generated`);
  assert.equal(h['x-forwarded-proto'], 'http', what);
}

test('WebSocket upgrades (HTTP/1.1 and extended CONNECT) and CONNECT: x-forwarded-for, sanitizing, request id, downstream address', async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const upgrades: IncomingHttpHeaders[] = [];
  wss.on('connection', (ws, req) => {
    upgrades.push(req.headers);
    ws.on('message', (m) => ws.send(`echo ${m}`));
  });
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const h = await startTestRuntime(t, [
    { close: () => new Promise<void>((r) => (wss.clients.forEach((c) => c.terminate()), wss.close(() => r()))) },
    { close: () => new Promise<void>((r) => echo.close(() => r())) },
  ]);
  const heads = new Map<StreamInfo, RequestHead | undefined>();
  h.rt.observers.push((info, head) => heads.set(info, head));
  const routes = routeConfig('r', [
    { match: { connect_matcher: {} }, route: { cluster: 'echo', upgrade_configs: [{ upgrade_type: 'CONNECT' }] } },
    { match: { prefix: '/' }, route: { cluster: 'ws' } },
  ]);
  await configure(h, {
    clusters: [staticCluster('ws', [(wss.address() as AddressInfo).port]), staticCluster('echo', [(echo.address() as AddressInfo).port])],
    listeners: [httpListener('edge', routes, { use_remote_address: true, xff_num_trusted_hops: 1, upgrade_configs: [{ upgrade_type: 'websocket' }], http2_protocol_options: { allow_connect: true } })],
  });
  const port = h.port('edge');

  // HTTP/1.1 WebSocket to an HTTP/1.1 upstream.
  const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`, { headers: { ...CLIENT, 'proxy-connection': 'keep-alive', 'keep-alive': 'timeout=5' } });
  t.after(() => ws.terminate());
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
  const got = new Promise<string>((r) => ws.once('message', (m) => r(String(m))));
  ws.send('hi');
  assert.equal(await got, 'echo hi');
  assertMutated(upgrades[0], 'HTTP/1.1 upgrade');
  assert.equal(upgrades[0].upgrade, 'websocket', 'Upgrade kept');
  assert.equal(upgrades[0]['proxy-connection'], undefined, 'proxy headers cleaned');
  assert.equal(upgrades[0]['keep-alive'], undefined, 'proxy headers cleaned');

  // WebSocket over HTTP/2 (extended CONNECT) to the same HTTP/1.1 upstream.
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => session.destroy());
  await new Promise((r) => session.once('remoteSettings', r));
  const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': '/chat', ':authority': 'chat.local', 'sec-websocket-version': '13', ...CLIENT }, { endStream: false });
  const status = await new Promise<number>((r, j) => (stream.once('response', (x) => r(Number(x[':status']))), stream.once('error', j)));
  assert.equal(status, 200);
  stream.close();
  assertMutated(upgrades[1], 'extended CONNECT');

  // CONNECT, terminated here: no headers go upstream; the stream sees the mutated ones.
  const c = net.connect(port, '127.0.0.1');
  t.after(() => c.destroy());
  c.write(`CONNECT echo.mesh:7 HTTP/1.1\r\nHost: echo.mesh:7\r\n${Object.entries(CLIENT).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
  let out = '';
  await new Promise<void>((r) =>
    c.on('data', (d) => {
      out += d;
      if (out.endsWith('\r\n\r\n')) c.write('ping');
      else if (out.endsWith('ping')) r();
    }),
  );
  assert.match(out, /^HTTP\/1\.1 200 /);
  c.end();
  while (!h.streams.some((s) => s.method === 'CONNECT')) await new Promise((r) => setTimeout(r, 5));
  const info = h.streams.find((s) => s.method === 'CONNECT')!;
  const head = heads.get(info)!;
  assertMutated(head.headers, 'CONNECT');
  assert.equal(info.downstreamRemoteIp, '203.0.113.7', 'the trusted client address from x-forwarded-for');
  assert.equal(info.downstreamRemoteAddress, '203.0.113.7:0');
  assert.equal(info.requestId, head.headers['x-request-id']);
});
