// HCM common_http_protocol_options.max_stream_duration (Envoy's downstream duration timeout): a
// stream lasting longer ends with 504 (request received whole) or 408 (still receiving it), details
// max_duration_timeout, counted in downstream_rq_max_duration_reached; a started response is reset
// (HTTP/1.1: connection closed, HTTP/2: RST_STREAM). A route's max_stream_duration replaces it
// (0: none). WebSocket / CONNECT tunnels are closed when it is reached. The limit is generous
// (1 s) so the quick request stays under it on a loaded machine.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { until } from '../helpers/wait.ts';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

type Outcome = { status: number; body: string } | 'reset';

function h1(port: number, path: string, partialBody?: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: partialBody ? 'POST' : 'GET', agent: false, headers: partialBody ? { 'content-length': '100' } : {} }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('error', () => resolve('reset'));
      res.on('end', () => resolve(res.complete ? { status: res.statusCode!, body } : 'reset'));
    });
    req.on('error', () => resolve('reset'));
    // A body announced as 100 bytes of which only a part arrives: the request is never complete.
    if (partialBody) req.write(partialBody);
    else req.end();
  });
}

function h2(session: http2.ClientHttp2Session, path: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = session.request({ ':path': path });
    let status = 0;
    let body = '';
    s.on('response', (h) => (status = Number(h[':status'])));
    s.on('data', (c: Buffer) => (body += c));
    s.on('error', () => resolve('reset'));
    s.on('close', () => resolve(s.rstCode === http2.constants.NGHTTP2_NO_ERROR && status ? { status, body } : 'reset'));
  });
}

test('HCM max_stream_duration: 504 / 408 before the response, reset after, on HTTP/1.1 and HTTP/2; a route may turn it off', async (t) => {
  const up = await startUpstream('up', (req, res) => {
    if (req.url!.endsWith('/slow')) return true; // never answers
    if (req.url!.endsWith('/trickle')) {
      res.writeHead(200);
      res.write('start');
      return true; // never ends
    }
  });
  const h = await startTestRuntime(t, [up]);
  const routes = routeConfig('r', [
    { match: { prefix: '/off/' }, route: { cluster: 'up', timeout: '2s', max_stream_duration: { max_stream_duration: '0s' } } },
    { match: { prefix: '/' }, route: { cluster: 'up', timeout: '10s' } },
  ]);
  await configure(h, { clusters: [staticCluster('up', [up.port])], listeners: [httpListener('l', routes, { common_http_protocol_options: { max_stream_duration: '1s' } })] });
  const port = h.port('l');
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => session.destroy());

  assert.equal((await request(port, { path: '/fast' })).status, 200);
  const [slow, partial, trickle, h2Slow, h2Trickle, off] = await Promise.all([h1(port, '/slow'), h1(port, '/upload/slow', 'part'), h1(port, '/trickle'), h2(session, '/h2/slow'), h2(session, '/h2/trickle'), h1(port, '/off/slow')]);
  assert.deepEqual(slow, { status: 504, body: 'downstream duration timeout' });
  assert.deepEqual(partial, { status: 408, body: 'downstream duration timeout' }, 'the request body was still arriving');
  assert.equal(trickle, 'reset');
  assert.deepEqual(h2Slow, { status: 504, body: 'downstream duration timeout' });
  assert.equal(h2Trickle, 'reset');
  assert.deepEqual(off, { status: 504, body: 'upstream request timeout' }, 'route max_stream_duration 0s: only the route timeout applies');

  const details = new Map(h.streams.map((s) => [s.path, s.responseCodeDetails]));
  for (const p of ['/slow', '/upload/slow', '/trickle', '/h2/slow', '/h2/trickle']) assert.equal(details.get(p), 'max_duration_timeout', p);
  assert.equal(details.get('/off/slow'), 'upstream_response_timeout');
  const stats = new Map(h.rt.stats.all().map((s) => [s.name, s.value]));
  assert.equal(stats.get('http.l.downstream_rq_max_duration_reached'), 5);
});

test('HCM max_stream_duration closes an established WebSocket tunnel (details max_duration_timeout)', async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo ${m}`)));
  const h = await startTestRuntime(t, [
    {
      close: async () => {
        for (const c of wss.clients) c.terminate();
        await new Promise((r) => wss.close(r));
      },
    },
  ]);
  await configure(h, {
    clusters: [staticCluster('ws', [(wss.address() as AddressInfo).port])],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'ws' } }]), { upgrade_configs: [{ upgrade_type: 'websocket' }], common_http_protocol_options: { max_stream_duration: '1s' } })],
  });
  const ws = new WebSocket(`ws://127.0.0.1:${h.port('l')}/chat`);
  t.after(() => ws.terminate());
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
  const got = new Promise<string>((r) => ws.once('message', (m) => r(String(m))));
  ws.send('hi');
  assert.equal(await got, 'echo hi', 'the tunnel works before the limit');
  // Closed by the proxy (no close frame: the TCP connection ends), not by either end.
  assert.equal(await new Promise<number>((r) => ws.once('close', (code) => r(code))), 1006);
  await until('the tunnel is logged', () => h.streams.some((s) => s.path === '/chat'));
  assert.equal(h.streams.find((s) => s.path === '/chat')!.responseCodeDetails, 'max_duration_timeout');
  const stats = new Map(h.rt.stats.all().map((s) => [s.name, s.value]));
  assert.equal(stats.get('http.l.downstream_rq_max_duration_reached'), 1);
});
