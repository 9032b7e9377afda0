// The request body is kept for replay when the request may be retried under its effective retry
// policy (the route's merged with x-envoy-retry-on / x-envoy-max-retries), within the buffer limit
// (1 MiB), as Envoy's router does: a body of known length is buffered before routing, one of
// unknown length (chunked, HTTP/2 without content-length) streams with a copy kept for retries.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const ROUTE = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]);
const RETRY = { 'x-envoy-retry-on': '5xx', 'x-envoy-max-retries': '1' };

/** A POST whose body goes in `parts` writes, chunked (no content-length). */
function chunkedPost(port: number, parts: string[], headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', method: 'POST', headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    const next = (i: number): void => {
      if (i === parts.length) req.end();
      else req.write(parts[i], () => setImmediate(next, i + 1));
    };
    next(0);
  });
}

function h2Post(port: number, body: string, headers: Record<string, string>, withLength = true): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const s = session.request({ ':method': 'POST', ':path': '/', ...(withLength ? { 'content-length': String(body.length) } : {}), ...headers });
    let status = 0;
    const chunks: Buffer[] = [];
    s.on('response', (h) => (status = Number(h[':status'])));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      session.close();
      resolve({ status, body: Buffer.concat(chunks).toString() });
    });
    s.on('error', reject);
    s.end(body);
  });
}

/** The test upstream; failNext(n) makes it answer 503 to the next n requests. */
async function failingUpstream() {
  let failures = 0;
  const app = await startUpstream('app', (_req, res) => {
    if (failures <= 0) return false;
    failures--;
    res.writeHead(503);
    res.end();
    return true;
  });
  return { app, failNext: (n: number) => (failures = n) };
}

test('retries requested by headers replay the request body: known length, chunked, HTTP/2; past the limit no retry', async (t) => {
  const { app, failNext } = await failingUpstream();
  const h = await startTestRuntime(t, [app]);
  // use_remote_address with a loopback client: internal, so the x-envoy-* headers are honoured.
  await configure(h, { clusters: [staticCluster('app', [app.port])], listeners: [httpListener('l', ROUTE, { use_remote_address: true })] });
  const port = h.port('l');
  const body = 'x'.repeat(64 * 1024);

  failNext(1);
  const h1 = await request(port, { method: 'POST', body, headers: RETRY });
  assert.equal(h1.status, 200, 'HTTP/1.1: the retry was made');
  assert.equal(h1.json().body.length, body.length, 'HTTP/1.1: the retry carried the whole body');
  assert.deepEqual(app.requests.map((r) => r.body.length), [body.length, body.length]);

  failNext(1);
  app.requests.length = 0;
  const h2 = await h2Post(port, body, RETRY);
  assert.equal(h2.status, 200, 'HTTP/2: the retry was made');
  assert.deepEqual(app.requests.map((r) => r.body.length), [body.length, body.length]);

  // Unknown length: streamed, and replayed from the copy.
  failNext(1);
  app.requests.length = 0;
  const chunked = await chunkedPost(port, ['first-', 'second-', 'third'], RETRY);
  assert.equal(chunked.status, 200, 'chunked: the retry was made');
  assert.deepEqual(app.requests.map((r) => r.body), ['first-second-third', 'first-second-third']);

  failNext(1);
  app.requests.length = 0;
  assert.equal((await h2Post(port, body, RETRY, false)).status, 200, 'HTTP/2 without content-length: the retry was made');
  assert.deepEqual(app.requests.map((r) => r.body.length), [body.length, body.length]);

  // Past the buffer limit the copy is dropped: the whole body reaches the upstream once, no retry.
  failNext(1);
  app.requests.length = 0;
  const big = 'y'.repeat(256 * 1024);
  assert.equal((await chunkedPost(port, [big, big, big, big, big], RETRY)).status, 503);
  assert.deepEqual(app.requests.map((r) => r.body.length), [5 * big.length]);

  // x-envoy-max-retries: 0 disables retries: nothing to replay, the 503 stands.
  failNext(1);
  app.requests.length = 0;
  assert.equal((await request(port, { method: 'POST', body, headers: { ...RETRY, 'x-envoy-max-retries': '0' } })).status, 503);
  assert.equal(app.requests.length, 1);
});

test('a route per_request_buffer_limit_bytes lowers the retry buffer: a larger body streams once, a smaller one is replayed', async (t) => {
  const { app, failNext } = await failingUpstream();
  const h = await startTestRuntime(t, [app]);
  const route = { cluster: 'app', retry_policy: { retry_on: '5xx', num_retries: 1, retry_back_off: { base_interval: '0.001s' } } };
  await configure(h, { clusters: [staticCluster('app', [app.port])], listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route, per_request_buffer_limit_bytes: 1024 }]))] });
  const port = h.port('l');

  failNext(1);
  assert.equal((await request(port, { method: 'POST', body: 'a'.repeat(512) })).status, 200);
  assert.deepEqual(app.requests.map((r) => r.body.length), [512, 512]);

  for (const send of [() => request(port, { method: 'POST', body: 'b'.repeat(2048) }), () => chunkedPost(port, ['c'.repeat(1000), 'c'.repeat(1000)], {})]) {
    failNext(1);
    app.requests.length = 0;
    assert.equal((await send()).status, 503, 'past the route limit: no retry');
    assert.equal(app.requests.length, 1);
    assert.ok(app.requests[0].body.length >= 2000, 'the whole body went upstream once');
  }
});
