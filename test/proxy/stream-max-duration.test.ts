// HCM common_http_protocol_options.max_stream_duration (Envoy's downstream duration timeout): a
// stream lasting longer ends with 504 (request received whole) or 408 (still receiving it), details
// max_duration_timeout, counted in downstream_rq_max_duration_reached; a started response is reset
// (HTTP/1.1: connection closed, HTTP/2: RST_STREAM). A route's max_stream_duration replaces it
// (0: none). The limit is generous (1 s) so the quick request stays under it on a loaded machine.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { test } from 'node:test';
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
