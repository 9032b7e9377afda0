// The x-envoy-* request headers that steer the router for one request (retry-on, max-retries,
// retriable status codes, timeouts): honoured on internal requests, consumed before the upstream.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const ROUTE = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]);
const CONSUMED = ['x-envoy-retry-on', 'x-envoy-retry-grpc-on', 'x-envoy-max-retries', 'x-envoy-retriable-status-codes', 'x-envoy-upstream-rq-timeout-ms', 'x-envoy-upstream-rq-per-try-timeout-ms'];

test('x-envoy-retry-on / max-retries / retriable-status-codes add retries to a route without a retry policy', async (t) => {
  let failures = 0;
  const app = await startUpstream('app', (req, res) => {
    if (failures > 0 && req.url !== '/slow') {
      failures--;
      res.writeHead(Number(req.headers['x-fail-with'] ?? 503));
      res.end();
      return true;
    }
  });
  const h = await startTestRuntime(t, [app]);
  // use_remote_address with a loopback client: internal, so the x-envoy-* headers are kept.
  await configure(h, { clusters: [staticCluster('app', [app.port])], listeners: [httpListener('l', ROUTE, { use_remote_address: true })] });
  const port = h.port('l');

  failures = 2;
  assert.equal((await request(port)).status, 503, 'no retry policy, no headers: the 503 stands');
  assert.equal(app.requests.length, 1);

  failures = 2;
  app.requests.length = 0;
  const r = await request(port, { headers: { 'x-envoy-retry-on': '5xx', 'x-envoy-max-retries': '2' } });
  assert.equal(r.status, 200);
  assert.equal(app.requests.length, 3, 'two retries');
  for (const e of app.requests) for (const k of CONSUMED) assert.equal(e.headers[k], undefined, `${k} is consumed`);

  failures = 2;
  app.requests.length = 0;
  assert.equal((await request(port, { headers: { 'x-envoy-retry-on': '5xx' } })).status, 503, "Envoy's default policy: one retry");
  assert.equal(app.requests.length, 2);
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'URX');

  failures = 1;
  app.requests.length = 0;
  const codes = await request(port, { headers: { 'x-envoy-retry-on': 'retriable-status-codes', 'x-envoy-retriable-status-codes': '418,409', 'x-fail-with': '418' } });
  assert.equal(codes.status, 200);
  assert.equal(app.requests.length, 2);
});

test('x-envoy-upstream-rq-timeout-ms replaces the route timeout; external requests lose the headers', async (t) => {
  const app = await startUpstream('app', (req, res) => {
    if (req.url !== '/slow') return false;
    const timer = setTimeout(() => res.end('late'), 10_000);
    res.on('close', () => clearTimeout(timer));
    return true;
  });
  const h = await startTestRuntime(t, [app]);
  await configure(h, { clusters: [staticCluster('app', [app.port])], listeners: [httpListener('l', ROUTE, { use_remote_address: true }), httpListener('ext', ROUTE)] });
  const fast = await request(h.port('l'), { headers: { 'x-envoy-upstream-rq-timeout-ms': '3000' } });
  assert.equal(fast.json().headers['x-envoy-expected-rq-timeout-ms'], '3000');
  assert.equal(fast.json().headers['x-envoy-upstream-rq-timeout-ms'], undefined);
  const slow = await request(h.port('l'), { path: '/slow', headers: { 'x-envoy-upstream-rq-timeout-ms': '50' } });
  assert.equal(slow.status, 504);
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'UT');

  // Not internal (no XFF, no use_remote_address): stripped, the route's 15 s applies.
  const ext = await request(h.port('ext'), { headers: { 'x-envoy-upstream-rq-timeout-ms': '3000', 'x-envoy-max-retries': '5' } });
  assert.equal(ext.json().headers['x-envoy-expected-rq-timeout-ms'], '15000');
});
