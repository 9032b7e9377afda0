// Outlier detection: consecutive errors, ejection time and multiplier, max_ejection_percent,
// success-rate and failure-percentage ejection, and a real HTTP upstream going bad and coming back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { OutlierDetector, checkOutlierDetection } from '../../../src/proxy/upstream/outlier-detection.ts';
import { LocalStats } from '../../../src/proxy/upstream/circuit-breaker.ts';
import { HealthFlag, isHealthy, type Host } from '../../../src/proxy/upstream/host.ts';
import { createLoadBalancer } from '../../../src/proxy/upstream/lb/index.ts';
import { host } from './hosts.ts';

function detector(od: Record<string, unknown>, hosts: Host[]) {
  let now = 0;
  const stats = new LocalStats();
  const changes: [string, boolean][] = [];
  const d = OutlierDetector.fromCluster({ name: 'c', outlier_detection: od }, hosts, { stats, now: () => now, timer: false, random: () => 0 });
  assert.ok(d);
  d.on('change', (h, ejected) => changes.push([h.key, ejected]));
  const stat = (name: string) => stats.values.get(`cluster.c.outlier_detection.${name}`)?.value ?? 0;
  return { d, changes, stat, advance: (ms: number) => (now += ms) };
}

test('consecutive_5xx ejects on the Nth consecutive 5xx; a success in between resets the count', () => {
  const hosts = [host(1), host(2), host(3)];
  const { d, changes, stat } = detector({ consecutive_5xx: 3, max_ejection_percent: 100 }, hosts);
  d.reportResult(hosts[0], { status: 500 });
  d.reportResult(hosts[0], { status: 503 });
  d.reportResult(hosts[0], { status: 200 });
  d.reportResult(hosts[0], { status: 500 });
  d.reportResult(hosts[0], { status: 500 });
  assert.equal(hosts[0].healthFlags, 0);
  d.reportResult(hosts[0], { status: 502 });
  assert.equal(hosts[0].healthFlags, HealthFlag.FailedOutlierCheck);
  assert.equal(isHealthy(hosts[0]), false);
  assert.deepEqual(changes, [[hosts[0].key, true]]);
  assert.equal(stat('ejections_active'), 1);
  assert.equal(stat('ejections_enforced_total'), 1);
  assert.equal(stat('ejections_enforced_consecutive_5xx'), 1);
  assert.equal(stat('ejections_detected_consecutive_5xx'), 1);
  assert.equal(stat('ejections_total'), 1);
  // Gateway-failure ejection is detected but not enforced by default (enforcing_consecutive_gateway_failure: 0).
  assert.equal(stat('ejections_enforced_consecutive_gateway_failure'), 0);
  const lb = createLoadBalancer('ROUND_ROBIN', hosts, {});
  for (let i = 0; i < 10; i++) assert.notEqual(lb.pick(), hosts[0]);
});

test('an ejected host returns after base_ejection_time × ejections, capped by max_ejection_time', () => {
  const hosts = [host(1), host(2)];
  const { d, changes, advance } = detector({ consecutive_5xx: 1, interval: '1s', base_ejection_time: '10s', max_ejection_time: '25s', max_ejection_percent: 100 }, hosts);
  const ejectFor = () => {
    d.reportResult(hosts[0], { status: 500 });
    assert.ok(d.isEjected(hosts[0]));
    let waited = 0;
    while (d.isEjected(hosts[0])) {
      advance(1000);
      waited += 1000;
      d.sweep();
    }
    return waited;
  };
  assert.equal(ejectFor(), 10_000);
  assert.equal(ejectFor(), 20_000);
  assert.equal(ejectFor(), 25_000, 'capped at max_ejection_time');
  assert.equal(hosts[0].healthFlags, 0);
  assert.deepEqual(changes.map(([, e]) => e), [true, false, true, false, true, false]);
  // Each interval in service forgives one ejection: after 3 quiet sweeps the next one is short again.
  for (let i = 0; i < 3; i++) {
    advance(1000);
    d.sweep();
  }
  assert.equal(ejectFor(), 10_000);
});

test('max_ejection_percent caps ejections, but one host can always be ejected', () => {
  const ten = Array.from({ length: 10 }, (_, i) => host(i));
  const a = detector({ consecutive_5xx: 1, max_ejection_percent: 20 }, ten);
  for (const h of ten) a.d.reportResult(h, { status: 500 });
  assert.equal(a.stat('ejections_active'), 2);
  assert.equal(a.stat('ejections_overflow'), 8);
  const three = [host(1), host(2), host(3)];
  const b = detector({ consecutive_5xx: 1 }, three); // default 10%
  for (const h of three) b.d.reportResult(h, { status: 503 });
  assert.equal(b.stat('ejections_active'), 1);
  assert.equal(three.filter((h) => h.healthFlags !== 0).length, 1);
});

test('enforcing percentages: 0 only detects', () => {
  const hosts = [host(1), host(2)];
  const { d, stat } = detector({ consecutive_5xx: 2, enforcing_consecutive_5xx: 0, consecutive_gateway_failure: 2, enforcing_consecutive_gateway_failure: 100, max_ejection_percent: 100 }, hosts);
  d.reportResult(hosts[0], { status: 500 });
  d.reportResult(hosts[0], { status: 500 });
  assert.equal(d.isEjected(hosts[0]), false);
  assert.equal(stat('ejections_detected_consecutive_5xx'), 1);
  d.reportResult(hosts[1], { status: 504 });
  d.reportResult(hosts[1], { status: 502 });
  assert.equal(d.isEjected(hosts[1]), true);
  assert.equal(stat('ejections_enforced_consecutive_gateway_failure'), 1);
});

test('local-origin errors count as 5xx unless split_external_local_origin_errors', () => {
  const hosts = [host(1), host(2)];
  const merged = detector({ consecutive_5xx: 3, max_ejection_percent: 100 }, hosts);
  merged.d.reportResult(hosts[0], { localOrigin: 'connect_failed' });
  merged.d.reportResult(hosts[0], { localOrigin: 'success' });
  merged.d.reportResult(hosts[0], { localOrigin: 'timeout' });
  merged.d.reportResult(hosts[0], { localOrigin: 'reset' });
  assert.equal(merged.d.isEjected(hosts[0]), true);

  // A TCP connection that worked (success_final) breaks a run of connect failures.
  const tcp = [host(5), host(6)];
  const t1 = detector({ consecutive_5xx: 2, max_ejection_percent: 100 }, tcp);
  t1.d.reportResult(tcp[0], { localOrigin: 'connect_failed' });
  t1.d.reportResult(tcp[0], { localOrigin: 'success_final' });
  t1.d.reportResult(tcp[0], { localOrigin: 'connect_failed' });
  assert.equal(t1.d.isEjected(tcp[0]), false);
  t1.d.reportResult(tcp[0], { localOrigin: 'connect_failed' });
  assert.equal(t1.d.isEjected(tcp[0]), true);

  const more = [host(3), host(4)];
  const split = detector({ consecutive_5xx: 3, consecutive_local_origin_failure: 2, split_external_local_origin_errors: true, max_ejection_percent: 100 }, more);
  split.d.reportResult(more[0], { localOrigin: 'connect_failed' });
  split.d.reportResult(more[0], { localOrigin: 'success' });
  split.d.reportResult(more[0], { status: 500 });
  split.d.reportResult(more[0], { status: 500 });
  split.d.reportResult(more[0], { localOrigin: 'timeout' });
  assert.equal(split.d.isEjected(more[0]), false);
  split.d.reportResult(more[0], { localOrigin: 'reset' });
  assert.equal(split.d.isEjected(more[0]), true);
  assert.equal(split.stat('ejections_enforced_consecutive_local_origin_failure'), 1);
});

test('success-rate ejection: hosts below mean − stdev_factor × stdev, given enough volume and hosts', () => {
  const hosts = Array.from({ length: 6 }, (_, i) => host(i));
  const { d, stat } = detector({ consecutive_5xx: 1000, success_rate_request_volume: 50, success_rate_minimum_hosts: 5, max_ejection_percent: 50 }, hosts);
  const traffic = (okRates: number[]) => {
    hosts.forEach((h, i) => {
      for (let r = 0; r < 100; r++) d.reportResult(h, { status: r < okRates[i] ? 200 : 500 });
    });
  };
  traffic([100, 99, 100, 98, 100, 60]);
  d.sweep();
  assert.deepEqual(hosts.map((h) => d.isEjected(h)), [false, false, false, false, false, true]);
  assert.equal(stat('ejections_enforced_success_rate'), 1);
  assert.ok(Math.abs(d.lastSuccessRate.average - 92.833) < 0.01, `average ${d.lastSuccessRate.average}`);
  assert.ok(d.lastSuccessRate.threshold > 60 && d.lastSuccessRate.threshold < 98);
  // Too few hosts with enough volume: no success-rate verdict.
  const pair = [host(10), host(11)];
  const few = detector({ consecutive_5xx: 1000, success_rate_request_volume: 50, max_ejection_percent: 100 }, pair);
  for (let r = 0; r < 100; r++) {
    few.d.reportResult(pair[0], { status: 500 });
    few.d.reportResult(pair[1], { status: 200 });
  }
  few.d.sweep();
  assert.equal(few.stat('ejections_detected_success_rate'), 0);
  assert.equal(few.d.isEjected(pair[0]), false);
});

test('failure-percentage ejection with enforcing_failure_percentage', () => {
  const hosts = Array.from({ length: 5 }, (_, i) => host(i));
  const { d, stat } = detector({ consecutive_5xx: 1000, failure_percentage_threshold: 50, enforcing_failure_percentage: 100, failure_percentage_minimum_hosts: 3, failure_percentage_request_volume: 10, enforcing_success_rate: 0, max_ejection_percent: 100 }, hosts);
  hosts.forEach((h, i) => {
    for (let r = 0; r < 20; r++) d.reportResult(h, { status: i >= 3 && r % 4 !== 0 ? 503 : 200 });
  });
  d.sweep();
  assert.deepEqual(hosts.map((h) => d.isEjected(h)), [false, false, false, true, true]);
  assert.equal(stat('ejections_enforced_failure_percentage'), 2);
  // The next interval starts from zero.
  d.sweep();
  assert.equal(stat('ejections_detected_failure_percentage'), 2);
});

test('active health check success un-ejects; removed hosts leave the active count', () => {
  const hosts = [host(1), host(2)];
  const { d, stat } = detector({ consecutive_5xx: 1, max_ejection_percent: 100 }, hosts);
  d.reportResult(hosts[0], { status: 500 });
  d.reportResult(hosts[1], { status: 500 });
  assert.equal(stat('ejections_active'), 2);
  d.onActiveHealthCheckSuccess(hosts[0]);
  assert.equal(hosts[0].healthFlags, 0);
  d.updateHosts([hosts[0]]);
  assert.equal(stat('ejections_active'), 0);
});

test('config validation names fields', () => {
  assert.match(checkOutlierDetection({ outlier_detection: { max_ejection_percent: 120 } }).errors.join(), /outlier_detection.max_ejection_percent: must be between 0 and 100/);
  assert.match(checkOutlierDetection({ outlier_detection: { interval: '10' } }).errors.join(), /outlier_detection.interval/);
  assert.deepEqual(checkOutlierDetection({ outlier_detection: { detect_aliens: true } }).warnings, ['outlier_detection.detect_aliens: not supported by Rigging, ignored']);
  assert.equal(OutlierDetector.fromCluster({ name: 'none' }, []), undefined);
});

test('a real failing HTTP upstream is ejected after consecutive 5xx and returns after the ejection time', async (t) => {
  let failing = true;
  const server = http.createServer((_req, res) => {
    res.statusCode = failing ? 503 : 200;
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const { port } = server.address() as AddressInfo;
  const bad = host(1, { address: '127.0.0.1', port });
  const good = host(2);
  const od = OutlierDetector.fromCluster({ name: 'real', outlier_detection: { consecutive_5xx: 3, interval: '0.05s', base_ejection_time: '0.1s', max_ejection_percent: 100 } }, [bad, good]);
  assert.ok(od);
  t.after(() => od.close());
  const agent = new http.Agent({ keepAlive: true });
  t.after(() => agent.destroy());
  const get = () =>
    new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      }).on('error', reject);
    });
  for (let i = 0; i < 2; i++) od.reportResult(bad, { status: await get() });
  assert.equal(od.isEjected(bad), false);
  od.reportResult(bad, { status: await get() });
  assert.equal(od.isEjected(bad), true);
  failing = false;
  const [h, ejected] = await once(od, 'change');
  assert.equal(h, bad);
  assert.equal(ejected, false);
  assert.equal(bad.healthFlags, 0);
  od.reportResult(bad, { status: await get() });
  assert.equal(od.isEjected(bad), false);
});
