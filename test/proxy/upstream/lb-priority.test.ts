// Priority levels, overprovisioning factor, panic threshold, degraded hosts and locality weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkLbConfig, computePriorityLoad, createLoadBalancer, groupByPriority } from '../../../src/proxy/upstream/lb/index.ts';
import { compileCommonLbConfig } from '../../../src/proxy/upstream/lb/lb-config.ts';
import { newIssues } from '../../../src/proxy/upstream/lb/config-fields.ts';
import { HealthFlag, type Host } from '../../../src/proxy/upstream/host.ts';
import { countPicks, host, seeded } from './hosts.ts';

const POLICIES = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'];
const UNHEALTHY = HealthFlag.FailedActiveHc;

function loadOf(hosts: Host[], cluster: Record<string, unknown> = {}) {
  return computePriorityLoad(groupByPriority(hosts), compileCommonLbConfig(cluster, newIssues()));
}

function hostsAt(priority: number, healthy: number, unhealthy: number, base: number, flags = UNHEALTHY): Host[] {
  return [
    ...Array.from({ length: healthy }, (_, i) => host(base + i, { priority })),
    ...Array.from({ length: unhealthy }, (_, i) => host(base + healthy + i, { priority, flags })),
  ];
}

test('all healthy P0 takes all the load; P1 is standby', () => {
  const load = loadOf([...hostsAt(0, 3, 0, 0), ...hostsAt(1, 3, 0, 10)]);
  assert.deepEqual(load.healthy, [100, 0]);
  assert.deepEqual(load.panic, [false, false]);
});

test('the overprovisioning factor 1.4 keeps P0 at 100% until less than ~71% of it is healthy', () => {
  assert.deepEqual(loadOf([...hostsAt(0, 8, 2, 0), ...hostsAt(1, 3, 0, 20)]).healthy, [100, 0]); // 80% × 1.4 = 112 → 100
  assert.deepEqual(loadOf([...hostsAt(0, 2, 1, 0), ...hostsAt(1, 3, 0, 20)]).healthy, [93, 7]); // 66% × 1.4 = 93
  assert.deepEqual(loadOf([...hostsAt(0, 1, 1, 0), ...hostsAt(1, 3, 0, 20)]).healthy, [70, 30]);
  assert.deepEqual(loadOf([...hostsAt(0, 0, 3, 0), ...hostsAt(1, 3, 0, 20)]).healthy, [0, 100]);
});

test('load_assignment.policy.overprovisioning_factor is honoured', () => {
  const hosts = [...hostsAt(0, 1, 1, 0), ...hostsAt(1, 2, 0, 10)];
  assert.deepEqual(loadOf(hosts, { load_assignment: { policy: { overprovisioning_factor: 100 } } }).healthy, [50, 50]);
});

test('priority failover: picks follow the computed load', () => {
  const hosts = [...hostsAt(0, 1, 1, 0), ...hostsAt(1, 3, 0, 20)];
  for (const policy of POLICIES) {
    const lb = createLoadBalancer(policy, hosts, {}, { random: seeded(3) });
    const counts = countPicks(() => lb.pick(), 20000);
    const p1 = [...counts].filter(([h]) => h?.priority === 1).reduce((a, [, c]) => a + c, 0) / 20000;
    assert.ok(Math.abs(p1 - 0.3) < 0.03, `${policy}: ${p1} of picks went to P1, expected 0.30`);
    assert.equal(counts.get(hosts[1]), undefined, `${policy} picked the unhealthy host`);
  }
});

test('panic threshold: below 50% healthy, the priority balances over all its hosts', () => {
  const hosts = hostsAt(0, 4, 6, 0);
  assert.deepEqual(loadOf(hosts).panic, [true]);
  for (const policy of POLICIES) {
    const lb = createLoadBalancer(policy, hosts, {}, { random: seeded(5) });
    const counts = countPicks(() => lb.pick(), 5000);
    const unhealthyPicks = [...counts].filter(([h]) => h && h.healthFlags !== 0).reduce((a, [, c]) => a + c, 0);
    assert.ok(unhealthyPicks > 5000 * 0.4, `${policy}: only ${unhealthyPicks} picks of unhealthy hosts in panic`);
  }
  const notPanicking = hostsAt(0, 6, 4, 0);
  assert.deepEqual(loadOf(notPanicking).panic, [false]);
  const lb = createLoadBalancer('ROUND_ROBIN', notPanicking, {});
  for (const [h] of countPicks(() => lb.pick(), 1000)) assert.equal(h?.healthFlags, 0);
});

test('healthy_panic_threshold is configurable, and 0 disables panic mode', () => {
  const hosts = hostsAt(0, 4, 6, 0);
  assert.deepEqual(loadOf(hosts, { common_lb_config: { healthy_panic_threshold: { value: 30 } } }).panic, [false]);
  const allDown = hostsAt(0, 0, 3, 0);
  const cluster = { common_lb_config: { healthy_panic_threshold: { value: 0 } } };
  for (const policy of POLICIES) assert.equal(createLoadBalancer(policy, allDown, cluster).pick(), undefined, policy);
  for (const policy of POLICIES) assert.ok(createLoadBalancer(policy, allDown, {}).pick(), `${policy} in panic picks an unhealthy host`);
});

test('total panic splits the load by host count across priorities', () => {
  const load = loadOf([...hostsAt(0, 0, 1, 0), ...hostsAt(1, 0, 3, 10)]);
  assert.deepEqual(load.panic, [true, true]);
  assert.deepEqual(load.healthy, [25, 75]);
});

test('degraded hosts take load only when healthy ones across priorities fall short', () => {
  const degraded = HealthFlag.DegradedEdsHealth;
  const standby = loadOf([...hostsAt(0, 0, 3, 0, degraded), ...hostsAt(1, 3, 0, 10)]);
  assert.deepEqual(standby.healthy, [0, 100]);
  assert.deepEqual(standby.degraded, [0, 0]);
  const needed = loadOf([...hostsAt(0, 1, 2, 0, degraded)]);
  assert.deepEqual(needed.healthy, [46]);
  assert.deepEqual(needed.degraded, [54]);
});

test('property: load always sums to 100 and never goes to an empty priority', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(4), fc.nat(4), fc.nat(3)), { minLength: 1, maxLength: 4 }), fc.nat(100), (levels, threshold) => {
      let base = 0;
      const hosts = levels.flatMap(([h, u, d], p) => {
        const hs = [...hostsAt(p, h, u, base), ...hostsAt(p, 0, d, base + h + u, HealthFlag.DegradedEdsHealth)];
        base += 20;
        return hs;
      });
      const load = loadOf(hosts, { common_lb_config: { healthy_panic_threshold: { value: threshold } } });
      const sum = [...load.healthy, ...load.degraded].reduce((a, b) => a + b, 0);
      assert.equal(sum, 100);
      const byP = groupByPriority(hosts);
      load.healthy.forEach((l, p) => {
        if (hosts.length > 0 && l > 0) assert.ok((byP[p]?.length ?? 0) > 0 || p === 0, `load ${l} on empty P${p}`);
      });
    }),
    { numRuns: 300 },
  );
});

test('locality weights split traffic between localities, scaled by their health', () => {
  const a = { region: 'r', zone: 'a' };
  const b = { region: 'r', zone: 'b' };
  const hosts = [host(1, { locality: a }), host(2, { locality: a }), host(3, { locality: b }), host(4, { locality: b })];
  const cluster = {
    common_lb_config: { locality_weighted_lb_config: {} },
    load_assignment: { endpoints: [{ locality: a, load_balancing_weight: 1 }, { locality: b, load_balancing_weight: 3 }] },
  };
  for (const policy of ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM']) {
    const lb = createLoadBalancer(policy, hosts, cluster, { random: seeded(11) });
    const counts = countPicks(() => lb.pick(), 8000);
    const inA = ((counts.get(hosts[0]) ?? 0) + (counts.get(hosts[1]) ?? 0)) / 8000;
    assert.ok(Math.abs(inA - 0.25) < 0.02, `${policy}: locality a got ${inA}, expected 0.25`);
  }
  // Half of b down: b's effective weight is 3 × min(1, 1.4 × 0.5) = 2.1 → a gets 1 / 3.1.
  hosts[3].healthFlags = UNHEALTHY;
  const lb = createLoadBalancer('ROUND_ROBIN', hosts, cluster);
  const counts = countPicks(() => lb.pick(), 31000);
  const inA = ((counts.get(hosts[0]) ?? 0) + (counts.get(hosts[1]) ?? 0)) / 31000;
  assert.ok(Math.abs(inA - 1 / 3.1) < 0.01, `locality a got ${inA}, expected ${1 / 3.1}`);
  assert.equal(counts.get(hosts[3]), undefined);
  // Hash-based policies fold locality weights into host weights.
  hosts[3].healthFlags = 0;
  for (const policy of ['RING_HASH', 'MAGLEV']) {
    const hlb = createLoadBalancer(policy, hosts, { ...cluster, ring_hash_lb_config: { minimum_ring_size: 16384 } }, { random: seeded(2) });
    const c = countPicks(() => hlb.pick(), 20000);
    const share = ((c.get(hosts[0]) ?? 0) + (c.get(hosts[1]) ?? 0)) / 20000;
    assert.ok(Math.abs(share - 0.25) < 0.03, `${policy}: locality a got ${share}, expected 0.25`);
  }
});

test('config errors name the field; unsupported fields are warnings', () => {
  assert.match(checkLbConfig('MAGLEV', { maglev_lb_config: { table_size: 65536 } }).errors.join(), /maglev_lb_config.table_size: must be a prime/);
  assert.match(checkLbConfig('RING_HASH', { ring_hash_lb_config: { minimum_ring_size: 10, maximum_ring_size: 5 } }).errors.join(), /minimum_ring_size \(10\) must not exceed/);
  assert.match(checkLbConfig('RING_HASH', { ring_hash_lb_config: { hash_function: 'MURMUR_HASH_2' } }).errors.join(), /hash_function/);
  assert.match(checkLbConfig('LEAST_REQUEST', { least_request_lb_config: { choice_count: 1 } }).errors.join(), /choice_count: must be at least 2/);
  assert.match(checkLbConfig('WEIGHTED_MAGIC', {}).errors.join(), /lb_policy WEIGHTED_MAGIC is not supported/);
  assert.match(checkLbConfig('ROUND_ROBIN', { common_lb_config: { healthy_panic_threshold: { value: 150 } } }).errors.join(), /healthy_panic_threshold.value: must be between 0 and 100/);
  const w = checkLbConfig('ROUND_ROBIN', { common_lb_config: { zone_aware_lb_config: {} }, round_robin_lb_config: { slow_start_config: { slow_start_window: '1s', endpoint_warming_policy: 'X' } } });
  assert.deepEqual(w.errors, []);
  assert.deepEqual(w.warnings, [
    'common_lb_config.zone_aware_lb_config: not supported by Rigging, ignored',
    'round_robin_lb_config.slow_start_config.endpoint_warming_policy: not supported by Rigging, ignored',
  ]);
  assert.throws(() => createLoadBalancer('MAGLEV', [], { name: 'c', maglev_lb_config: { table_size: 4 } }), /cluster c \(MAGLEV\): maglev_lb_config.table_size/);
});

test('an EDS assignment passed as options.loadAssignment supplies locality weights and overprovisioning', () => {
  const a = { zone: 'a' };
  const b = { zone: 'b' };
  const hosts = [host(1, { locality: a }), host(2, { locality: b })];
  const cluster = { common_lb_config: { locality_weighted_lb_config: {} } };
  const loadAssignment = { cluster_name: 'eds', endpoints: [{ locality: a, load_balancing_weight: 9 }, { locality: b, load_balancing_weight: 1 }] };
  const lb = createLoadBalancer('ROUND_ROBIN', hosts, cluster, { loadAssignment });
  const counts = countPicks(() => lb.pick(), 1000);
  assert.equal(counts.get(hosts[0]), 900);
  assert.throws(() => createLoadBalancer('ROUND_ROBIN', hosts, cluster, { loadAssignment: { cluster_name: 'eds', policy: { overprovisioning_factor: 0 } } }), /load assignment eds: load_assignment.policy.overprovisioning_factor: must be greater than 0/);
});

test('load_balancing_policy (typed extensions) takes precedence over lb_policy; the first supported policy wins', () => {
  const hosts = [1, 2, 3].map((i) => host(i));
  const maglev = {
    name: 'typed',
    load_balancing_policy: {
      policies: [
        { typed_extension_config: { name: 'custom', typed_config: { '@type': 'type.googleapis.com/acme.lb.v1.Magic' } } },
        { typed_extension_config: { name: 'envoy.load_balancing_policies.maglev', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.load_balancing_policies.maglev.v3.Maglev', table_size: 4 } } },
      ],
    },
  };
  assert.match(checkLbConfig('ROUND_ROBIN', maglev).errors.join(), /maglev_lb_config.table_size: must be a prime/);
  assert.throws(() => createLoadBalancer('ROUND_ROBIN', hosts, maglev), /table_size/);
  const ringCluster = {
    load_balancing_policy: {
      policies: [{ typed_extension_config: { typed_config: { '@type': 'type.googleapis.com/envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash', minimum_ring_size: 64, use_hostname_for_hashing: true } } }],
    },
  };
  assert.deepEqual(checkLbConfig('ROUND_ROBIN', ringCluster), { errors: [], warnings: [] });
  const ring = createLoadBalancer('ROUND_ROBIN', hosts, ringCluster);
  const hash = 12345678901234n;
  for (let i = 0; i < 5; i++) assert.equal(ring.pick({ hash }), ring.pick({ hash }), 'a hash policy, not round robin');
  const unknown = { load_balancing_policy: { policies: [{ typed_extension_config: { typed_config: { '@type': 'type.googleapis.com/acme.lb.v1.Magic' } } }] } };
  assert.match(checkLbConfig('ROUND_ROBIN', unknown).errors.join(), /none of \[type.googleapis.com\/acme.lb.v1.Magic\] is supported/);
  const rrLocality = {
    load_balancing_policy: { policies: [{ typed_extension_config: { typed_config: { '@type': 'type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin', locality_lb_config: { locality_weighted_lb_config: {} } } } }] },
    load_assignment: { endpoints: [{ locality: { zone: 'a' }, load_balancing_weight: 1 }, { locality: { zone: 'b' }, load_balancing_weight: 4 }] },
  };
  const lhosts = [host(1, { locality: { zone: 'a' } }), host(2, { locality: { zone: 'b' } })];
  const rr = createLoadBalancer('ROUND_ROBIN', lhosts, rrLocality);
  assert.equal(countPicks(() => rr.pick(), 500).get(lhosts[1]), 400);
});

test('retry priority: excluded (already attempted) priorities give their load to the others', () => {
  const hosts = [...hostsAt(0, 3, 0, 0), ...hostsAt(1, 2, 0, 10), ...hostsAt(2, 2, 0, 20)];
  for (const policy of POLICIES) {
    const lb = createLoadBalancer(policy, hosts, {}, { random: seeded(4) });
    const prio = (excluded: number[]) => new Set([...countPicks(() => lb.pick({ excludedPriorities: new Set(excluded), hash: BigInt(Math.floor(Math.random() * 1e9)) }), 300).keys()].map((h) => h?.priority));
    assert.deepEqual(prio([]), new Set([0]), policy);
    assert.deepEqual(prio([0]), new Set([1]), policy);
    assert.deepEqual(prio([0, 1]), new Set([2]), policy);
    assert.deepEqual(prio([0, 1, 2]), new Set([0]), `${policy}: everything excluded falls back to the normal load`);
  }
});

test('slow start: a new host ramps up over slow_start_window (min_weight_percent, aggression)', () => {
  for (const policy of ['ROUND_ROBIN', 'LEAST_REQUEST']) {
    let now = 0;
    const key = policy === 'ROUND_ROBIN' ? 'round_robin_lb_config' : 'least_request_lb_config';
    const cluster = { [key]: { slow_start_config: { slow_start_window: '60s', aggression: { default_value: 2, runtime_key: 'x' } } } };
    const old = host(1);
    createLoadBalancer(policy, [old], cluster, { now: () => now });
    now = 100_000;
    const fresh = host(2);
    const lb = createLoadBalancer(policy, [old, fresh], cluster, { now: () => now, random: seeded(9) });
    const share = () => (countPicks(() => lb.pick(), 20000).get(fresh) ?? 0) / 20000;
    const expect = (f: number) => f / (1 + f);
    assert.ok(Math.abs(share() - expect(Math.sqrt(1 / 60))) < 0.02, `${policy}: just joined → (1/60)^(1/2)`);
    now += 30_000;
    assert.ok(Math.abs(share() - expect(Math.sqrt(0.5))) < 0.02, `${policy}: half the window with aggression 2`);
    now += 30_000;
    assert.ok(Math.abs(share() - 0.5) < 0.02, `${policy}: after the window, full weight`);
  }
  // With aggression 1 the first second is below min_weight_percent (1/60 < 10%): the floor applies.
  let t0 = 0;
  const linear = { round_robin_lb_config: { slow_start_config: { slow_start_window: '60s', min_weight_percent: { value: 10 } } } };
  const a = host(3);
  createLoadBalancer('ROUND_ROBIN', [a], linear, { now: () => t0 });
  t0 = 1_000_000;
  const b = host(4);
  const lb = createLoadBalancer('ROUND_ROBIN', [a, b], linear, { now: () => t0, random: seeded(3) });
  const bShare = (countPicks(() => lb.pick(), 22000).get(b) ?? 0) / 22000;
  assert.ok(Math.abs(bShare - 0.1 / 1.1) < 0.02, `floor: ${bShare}`);
  assert.deepEqual(checkLbConfig('ROUND_ROBIN', { round_robin_lb_config: { slow_start_config: { slow_start_window: '10s', aggression: { default_value: 0 } } } }).errors, [
    'round_robin_lb_config.slow_start_config.aggression.default_value: must be greater than 0, got 0',
  ]);
});
