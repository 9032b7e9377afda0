// The retry circuit breaker through the real proxy: max_retries and a retry_budget cap the retries
// in flight on a cluster; a retry they refuse is not made, and, as in Envoy, the upstream's own
// answer goes downstream with flag UO (not a local 503), counted in upstream_rq_retry_overflow.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { test } from 'node:test';
import { configure, httpListener, request, startTestRuntime, startUpstream, staticCluster, type Reply } from '../proxy/harness.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';

const N = 10;

/** N concurrent requests whose first attempt fails at once (500) and whose retries hang; returns how many retries reached the upstream. */
async function run(t: { after(fn: () => unknown): void }, thresholds: Record<string, unknown>) {
  const held: http.ServerResponse[] = [];
  const up = await startUpstream('up', (req, res) => {
    if (req.headers['x-envoy-attempt-count'] === '1') {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('first attempt failed');
    } else held.push(res);
    return true;
  });
  const h = await startTestRuntime(t, [up]);
  // A backoff far longer than the N first attempts take: every retry is decided before any is sent,
  // so the breaker must count a retry from its decision (as Envoy's RetryState), not from its send.
  const route = { match: { prefix: '/' }, route: { cluster: 'up', timeout: '10s', retry_policy: { retry_on: '5xx', num_retries: 3, retry_back_off: { base_interval: '0.1s' } } } };
  await configure(h, {
    clusters: [staticCluster('up', [up.port], { circuit_breakers: { thresholds: [{ max_connections: 100, max_pending_requests: 100, max_requests: 100, ...thresholds }] } })],
    listeners: [httpListener('l', { name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], include_request_attempt_count: true, routes: [route] }] })],
  });
  const port = h.port('l');
  const replies: Promise<Reply>[] = [];
  for (let i = 0; i < N; i++) replies.push(request(port, { path: `/r${i}` }));
  // Every first attempt fails; wait until the refused ones have answered downstream.
  const settled: Reply[] = [];
  for (const r of replies) void r.then((x) => settled.push(x));
  for (let i = 0; i < 500 && up.requests.length < N + 1; i++) await new Promise((r) => setTimeout(r, 10));
  for (let i = 0; i < 500 && settled.length + held.length < N; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 100));
  const stats = new Map(h.rt.stats.all().map((s) => [s.name, s.value]));
  const retriesInFlight = held.length;
  const refused = [...settled];
  const refusedFlags = h.streams.map((s) => formatResponseFlags(s.responseFlags));
  for (const res of held) res.end('retried');
  const all = await Promise.all(replies);
  return { retriesInFlight, refused, refusedFlags, stats, all };
}

test('max_retries caps the retries in flight; refused retries pass the upstream answer with UO', async (t) => {
  const r = await run(t, { max_retries: 2 });
  assert.equal(r.retriesInFlight, 2, 'exactly max_retries retries reached the upstream');
  assert.equal(r.refused.length, N - 2);
  for (const x of r.refused) {
    assert.equal(x.status, 500, 'the upstream answer, not a local 503');
    assert.equal(x.body, 'first attempt failed');
    assert.equal(x.headers['x-envoy-overloaded'], undefined);
  }
  assert.deepEqual(r.refusedFlags, Array(N - 2).fill('UO'));
  assert.equal(r.stats.get('cluster.up.upstream_rq_retry_overflow'), N - 2);
  assert.equal(r.all.filter((x) => x.body === 'retried').length, 2);
});

test('a retry budget allows budget_percent of the active requests, at least min_retry_concurrency', async (t) => {
  // 25% of at most N + 3 active requests is 3: min_retry_concurrency 3 decides.
  const r = await run(t, { max_retries: 100, retry_budget: { budget_percent: { value: 25 }, min_retry_concurrency: 3 } });
  assert.equal(r.retriesInFlight, 3);
  assert.equal(r.stats.get('cluster.up.upstream_rq_retry_overflow'), N - 3);
  assert.deepEqual(r.refused.map((x) => x.status), Array(N - 3).fill(500));
});
