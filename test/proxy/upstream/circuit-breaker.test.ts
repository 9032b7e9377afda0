// Circuit breakers: exact limits under concurrency (with a real HTTP upstream), retry budgets, stats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { CircuitBreakers, LocalStats, checkCircuitBreakers } from '../../../src/proxy/upstream/circuit-breaker.ts';
import { host } from './hosts.ts';

test('max_requests admits exactly the limit of concurrent upstream requests; the rest overflow', async (t) => {
  const LIMIT = 5;
  const TOTAL = 40;
  let inFlight = 0;
  let maxInFlight = 0;
  const held: http.ServerResponse[] = [];
  const server = http.createServer((_req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    held.push(res);
    res.on('finish', () => inFlight--);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const agent = new http.Agent({ keepAlive: true });
  t.after(() => agent.destroy());
  const { port } = server.address() as AddressInfo;

  const stats = new LocalStats();
  const cb = CircuitBreakers.fromCluster({ name: 'c', circuit_breakers: { thresholds: [{ max_requests: LIMIT, track_remaining: true }] } }, stats);
  const rm = cb.forPriority('DEFAULT');
  let overflowed = 0;
  const sent: Promise<number>[] = [];
  for (let i = 0; i < TOTAL; i++) {
    if (!rm.requests.tryAcquire()) {
      overflowed++;
      continue;
    }
    sent.push(
      new Promise<number>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, agent, path: `/${i}` }, (res) => {
          res.resume();
          res.on('end', () => {
            rm.requests.release();
            resolve(res.statusCode ?? 0);
          });
        }).on('error', reject);
      }),
    );
  }
  while (held.length < LIMIT) await new Promise((r) => setTimeout(r, 5));
  assert.equal(stats.values.get('cluster.c.circuit_breakers.default.rq_open')?.value, 1);
  assert.equal(stats.values.get('cluster.c.circuit_breakers.default.remaining_rq')?.value, 0);
  for (const res of held) res.end('ok');
  assert.deepEqual(await Promise.all(sent), Array(LIMIT).fill(200));
  assert.equal(maxInFlight, LIMIT);
  assert.equal(overflowed, TOTAL - LIMIT);
  assert.equal(stats.values.get('cluster.c.upstream_rq_pending_overflow')?.value, TOTAL - LIMIT);
  assert.equal(stats.values.get('cluster.c.circuit_breakers.default.rq_open')?.value, 0);
  assert.equal(stats.values.get('cluster.c.circuit_breakers.default.remaining_rq')?.value, LIMIT);
  assert.equal(rm.requests.count, 0);
});

test('interleaved acquire/release never exceeds any limit and counts every overflow', async () => {
  const stats = new LocalStats();
  const cb = CircuitBreakers.fromCluster(
    { name: 'x', circuit_breakers: { thresholds: [{ max_connections: 3, max_pending_requests: 4, max_retries: 2 }, { priority: 'HIGH', max_requests: 1 }] } },
    stats,
  );
  const rm = cb.forPriority();
  let refused = { cx: 0, pending: 0, retries: 0 };
  let peak = { cx: 0, pending: 0, retries: 0 };
  const worker = async (kind: 'cx' | 'pending' | 'retries') => {
    const r = kind === 'cx' ? rm.connections : kind === 'pending' ? rm.pending : rm.retries;
    for (let i = 0; i < 50; i++) {
      if (!r.tryAcquire()) {
        refused = { ...refused, [kind]: refused[kind] + 1 };
      } else {
        peak = { ...peak, [kind]: Math.max(peak[kind], r.count) };
        await new Promise((res) => setImmediate(res));
        r.release();
      }
      await new Promise((res) => setImmediate(res));
    }
  };
  await Promise.all(Array.from({ length: 15 }, (_, i) => worker((['cx', 'pending', 'retries'] as const)[i % 3])));
  assert.deepEqual(peak, { cx: 3, pending: 4, retries: 2 });
  assert.equal(stats.values.get('cluster.x.upstream_cx_overflow')?.value, refused.cx);
  assert.equal(stats.values.get('cluster.x.upstream_rq_pending_overflow')?.value, refused.pending);
  assert.equal(stats.values.get('cluster.x.upstream_rq_retry_overflow')?.value, refused.retries);
  assert.ok(refused.cx > 0 && refused.pending > 0 && refused.retries > 0);
  const high = cb.forPriority('HIGH');
  assert.equal(high.requests.tryAcquire(), true);
  assert.equal(high.requests.tryAcquire(), false);
  assert.equal(high.thresholds.maxConnections, 1024, 'unset fields keep Envoy defaults');
});

test('retry budget: budget_percent of active + pending requests, at least min_retry_concurrency', () => {
  const cb = CircuitBreakers.fromCluster({ name: 'b', circuit_breakers: { thresholds: [{ max_retries: 1, retry_budget: { budget_percent: { value: 25 }, min_retry_concurrency: 2 } }] } });
  const rm = cb.forPriority();
  assert.equal(rm.retries.max, 2);
  for (let i = 0; i < 16; i++) assert.ok(rm.requests.tryAcquire());
  for (let i = 0; i < 4; i++) assert.ok(rm.pending.tryAcquire());
  assert.equal(rm.retries.max, 5);
  for (let i = 0; i < 5; i++) assert.ok(rm.retries.tryAcquire());
  assert.equal(rm.retries.tryAcquire(), false);
  const defaults = CircuitBreakers.fromCluster({ circuit_breakers: { thresholds: [{ retry_budget: {} }] } }).forPriority();
  assert.equal(defaults.retries.max, 3, 'default budget: 20%, min 3');
});

test('per_host_thresholds.max_connections limits connections per host; max_connections the cluster\'s', () => {
  const stats = new LocalStats();
  const cb = CircuitBreakers.fromCluster({ name: 'p', circuit_breakers: { thresholds: [{ max_connections: 3, track_remaining: true }], per_host_thresholds: [{ max_connections: 2 }] } }, stats);
  const a = host(1);
  const b = host(2);
  const open = (h: ReturnType<typeof host>): boolean => cb.canCreateConnection(h) && (cb.connectionOpened(h), true);
  assert.ok(open(a));
  assert.ok(open(a));
  assert.equal(open(a), false, 'host a at its 2');
  assert.ok(open(b));
  assert.equal(open(b), false, 'the cluster at its 3');
  assert.equal(stats.values.get('cluster.p.circuit_breakers.default.cx_open')?.value, 1);
  assert.equal(stats.values.get('cluster.p.circuit_breakers.default.remaining_cx')?.value, 0);
  cb.connectionClosed(a);
  assert.equal(stats.values.get('cluster.p.circuit_breakers.default.remaining_cx')?.value, 1);
  assert.ok(open(a));
  assert.equal(stats.values.get('cluster.p.upstream_cx_overflow')?.value, 2);
});

test('bad circuit_breakers config is rejected with field paths; unknown fields warn', () => {
  assert.match(checkCircuitBreakers({ circuit_breakers: { thresholds: [{ priority: 'URGENT' }] } }).errors.join(), /thresholds\[0\]\.priority: must be DEFAULT or HIGH/);
  assert.match(checkCircuitBreakers({ circuit_breakers: { thresholds: [{ max_requests: -1 }] } }).errors.join(), /thresholds\[0\]\.max_requests: expected a non-negative integer/);
  assert.match(checkCircuitBreakers({ circuit_breakers: { thresholds: [{}, {}] } }).errors.join(), /DEFAULT thresholds given twice/);
  assert.deepEqual(checkCircuitBreakers({ circuit_breakers: { thresholds: [{ max_fun: 1 }] } }).warnings, ['circuit_breakers.thresholds[0].max_fun: not supported by Rigging, ignored']);
  assert.throws(() => CircuitBreakers.fromCluster({ name: 'z', circuit_breakers: { thresholds: 5 } }), /cluster z: circuit_breakers.thresholds: expected a list/);
});
