// Circuit breakers per priority through the real proxy: a route with priority HIGH counts its
// requests against the cluster's HIGH thresholds, a DEFAULT route against DEFAULT's; each
// overflows on its own limit (503 UO) while the other still admits.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { configure, httpListener, routeConfig, startRuntime, startUpstream, staticCluster, type Harness } from '../proxy/harness.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';

function stat(h: Harness, name: string): number {
  return h.rt.stats.all().find((s) => s.name === name)?.value ?? 0;
}

function send(port: number, path: string): { status: Promise<number>; abort(): void } {
  const req = http.get({ host: '127.0.0.1', port, path, agent: false });
  const status = new Promise<number>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
  });
  return { status, abort: () => req.destroy() };
}

test('route priority HIGH uses the cluster\'s high thresholds; DEFAULT routes keep the default ones', async (t) => {
  const up = await startUpstream('up', () => true); // holds every request
  const h = await startRuntime();
  const pending: { abort(): void }[] = [];
  t.after(async () => {
    for (const p of pending) p.abort();
    h.close();
    await up.close();
  });
  const thresholds = [
    { priority: 'DEFAULT', max_requests: 1, max_pending_requests: 100, max_connections: 100 },
    { priority: 'HIGH', max_requests: 3, max_pending_requests: 100, max_connections: 100 },
  ];
  await configure(h, {
    clusters: [staticCluster('up', [up.port], { circuit_breakers: { thresholds } })],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/high' }, route: { cluster: 'up', priority: 'HIGH' } }, { match: { prefix: '/' }, route: { cluster: 'up' } }]))],
  });
  const port = h.port('l');
  for (let i = 0; i < 3; i++) pending.push(send(port, `/high/${i}`));
  for (let i = 0; i < 200 && up.requests.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(up.requests.length, 3, 'three HIGH requests admitted (HIGH max_requests 3)');
  assert.equal(stat(h, 'cluster.up.circuit_breakers.high.rq_open'), 1);
  assert.equal(stat(h, 'cluster.up.circuit_breakers.default.rq_open'), 0);

  const overHigh = send(port, '/high/over');
  assert.equal(await overHigh.status, 503);
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'UO');

  // DEFAULT is untouched by the HIGH requests: one admitted, the next refused.
  pending.push(send(port, '/default/0'));
  for (let i = 0; i < 200 && up.requests.length < 4; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(up.requests.length, 4);
  assert.equal(await send(port, '/default/over').status, 503);
  assert.equal(up.requests.length, 4);
  assert.equal(stat(h, 'cluster.up.upstream_rq_pending_overflow'), 2);
});

test('an invalid route priority is an error with its path', async (t) => {
  const h = await startRuntime();
  t.after(() => h.close());
  await assert.rejects(
    configure(h, { listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up', priority: 'URGENT' } }]))] }),
    /route\.priority: unknown value "URGENT"; expected one of DEFAULT, HIGH/,
  );
});
