// Request mirroring (route request_mirror_policies) through the real proxy: a 30% mirror gets 30%
// of 600 requests within binomial tolerance; a mirror that is down (refused) or never answers
// changes nothing in the primary responses (same status, headers from the primary, same bytes),
// and the mirror cluster counts what happened to its copies.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { configure, deadPort, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster, type Harness } from '../proxy/harness.ts';

function stat(h: Harness, name: string): number {
  return h.rt.stats.all().find((s) => s.name === name)?.value ?? 0;
}

const mirrorTo = (cluster: string, numerator: number) => ({ cluster, runtime_fraction: { default_value: { numerator, denominator: 'HUNDRED' } } });

test('a 30% mirror receives 30% of the requests within binomial tolerance', async (t) => {
  const primary = await startUpstream('primary');
  const shadow = await startUpstream('shadow');
  const h = await startTestRuntime(t, [primary, shadow]);
  await configure(h, {
    clusters: [staticCluster('primary', [primary.port]), staticCluster('shadow', [shadow.port])],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'primary', request_mirror_policies: [mirrorTo('shadow', 30)] } }]))],
  });
  const port = h.port('l');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  t.after(() => agent.destroy());
  const N = 600;
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next++ < N) assert.equal((await request(port, { path: '/p', agent })).status, 200);
    }),
  );
  for (let i = 0; i < 200 && stat(h, 'cluster.shadow.upstream_rq_completed') < shadow.requests.length; i++) await new Promise((r) => setTimeout(r, 10));
  // Binomial(600, 0.3): mean 180, sd ≈ 11.2; ±5 sd.
  const m = shadow.requests.length;
  assert.ok(m > 180 - 56 && m < 180 + 56, `${m} of ${N} mirrored`);
  assert.equal(primary.requests.length, N);
  assert.ok(shadow.requests.every((r) => /^127\.0\.0\.1-shadow:\d+$/.test(r.headers.host ?? '')), 'mirrored hosts get -shadow');
});

test('a mirror that is down or never answers leaves the primary responses unchanged', async (t) => {
  const body = Buffer.alloc(200_000, 'p').toString();
  const primary = await startUpstream('primary', (_req, res) => {
    res.writeHead(201, { 'content-type': 'text/plain', 'x-from': 'primary' });
    res.end(body);
    return true;
  });
  const silent = await startUpstream('silent', () => true);
  const dead = await deadPort();
  const h = await startTestRuntime(t, [primary, silent]);
  await configure(h, {
    clusters: [staticCluster('primary', [primary.port]), staticCluster('silent', [silent.port]), staticCluster('dead', [dead])],
    listeners: [
      httpListener(
        'l',
        routeConfig('r', [
          { match: { prefix: '/plain' }, route: { cluster: 'primary' } },
          { match: { prefix: '/' }, route: { cluster: 'primary', timeout: '1s', request_mirror_policies: [mirrorTo('dead', 100), mirrorTo('silent', 100)] } },
        ]),
      ),
    ],
  });
  const port = h.port('l');
  const plain = await request(port, { path: '/plain' });
  for (let i = 0; i < 5; i++) {
    const r = await request(port, { path: '/mirrored', method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } });
    assert.equal(r.status, plain.status);
    assert.equal(r.headers['x-from'], 'primary');
    assert.equal(r.body, plain.body, 'the same bytes as without mirrors');
  }
  for (let i = 0; i < 200 && silent.requests.length < 5; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(silent.requests.length, 5, 'the silent mirror got every copy (with its body)');
  assert.ok(silent.requests.every((r) => r.body === 'hello'));
  for (let i = 0; i < 200 && stat(h, 'cluster.dead.upstream_rq_rx_reset') + stat(h, 'cluster.dead.upstream_cx_connect_fail') < 5; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(stat(h, 'cluster.dead.upstream_rq_rx_reset') + stat(h, 'cluster.dead.upstream_cx_connect_fail') >= 5, 'the failed copies are counted on the mirror cluster');
  assert.equal(stat(h, 'http.l.downstream_rq_active'), 0);
});
