// When active health checks run, checked against a real TCP health endpoint with mocked timers
// (node:test MockTimers) and a fixed random draw of 0.5: initial_jitter before the first check,
// no_traffic_healthy_interval until the cluster has traffic, then interval, unhealthy_edge_interval
// right after a host fails and unhealthy_interval while it stays failed, each plus interval_jitter
// and interval_jitter_percent of the base.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { HealthChecker } from '../../src/proxy/upstream/health-check.ts';
import { LocalStats } from '../../src/proxy/upstream/circuit-breaker.ts';
import { HealthFlag } from '../../src/proxy/upstream/host.ts';
import { host } from '../proxy/upstream/hosts.ts';

test('health check intervals and jitter follow Envoy\'s schedule', async (t) => {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;

  t.mock.timers.enable({ apis: ['setTimeout'] });
  const stats = new LocalStats();
  const h = host(1, { address: '127.0.0.1', port });
  const hc = HealthChecker.fromCluster(
    {
      name: 'j',
      health_checks: [
        {
          timeout: '1s',
          interval: '10s',
          unhealthy_interval: '4s',
          unhealthy_edge_interval: '2s',
          no_traffic_healthy_interval: '60s',
          initial_jitter: '2s',
          interval_jitter: '1s',
          interval_jitter_percent: 10,
          unhealthy_threshold: 1,
          healthy_threshold: 1,
          tcp_health_check: {},
        },
      ],
    },
    [h],
    { stats, random: () => 0.5 },
  )!;
  t.after(() => hc.close());
  const attempts = (): number => stats.values.get('cluster.j.health_check.attempt')?.value ?? 0;

  /** The next check must start after exactly `ms` of (mocked) time, not a millisecond before. */
  const nextCheckAfter = async (ms: number, what: string): Promise<void> => {
    const before = attempts();
    t.mock.timers.tick(ms - 1);
    assert.equal(attempts(), before, `${what}: not before ${ms} ms`);
    const checked = once(hc, 'checked');
    t.mock.timers.tick(1);
    assert.equal(attempts(), before + 1, `${what}: at ${ms} ms`);
    await checked;
  };

  await nextCheckAfter(1000, 'initial_jitter 2s × 0.5');
  assert.equal(h.healthFlags & HealthFlag.FailedActiveHc, 0, 'healthy after one success');
  hc.markTraffic();
  // Scheduled before the traffic: no_traffic_healthy_interval 60s + 10% × 60s × 0.5 + 1s × 0.5.
  await nextCheckAfter(63_500, 'no_traffic_healthy_interval');
  await nextCheckAfter(11_000, 'interval 10s + 0.5s + 0.5s');
  await new Promise<void>((r) => server.close(() => r()));
  await nextCheckAfter(11_000, 'interval (this check fails)');
  assert.notEqual(h.healthFlags & HealthFlag.FailedActiveHc, 0, 'failed after one network failure');
  await nextCheckAfter(2_600, 'unhealthy_edge_interval 2s + 0.1s + 0.5s');
  await nextCheckAfter(4_700, 'unhealthy_interval 4s + 0.2s + 0.5s');
});
