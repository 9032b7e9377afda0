// Load balancer distribution: weights respected, consistent hashing stable, attempted hosts avoided.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkLbConfig, createLoadBalancer } from '../../../src/proxy/upstream/lb/index.ts';
import { xxHash64 } from '../../../src/proxy/upstream/lb/xxhash.ts';
import type { Host } from '../../../src/proxy/upstream/host.ts';
import { countPicks, host, seeded } from './hosts.ts';

const weightsArb = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 2, maxLength: 6 });

function shares(counts: Map<Host | undefined, number>, hosts: Host[], total: number): number[] {
  return hosts.map((h) => (counts.get(h) ?? 0) / total);
}

function expectedShares(weights: number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => w / sum);
}

function assertClose(actual: number[], expected: number[], tolerance: number, label: string): void {
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]) <= tolerance, `${label}: host ${i} got ${a.toFixed(4)}, expected ${expected[i].toFixed(4)} ± ${tolerance}`));
}

test('ROUND_ROBIN and LEAST_REQUEST (idle hosts) follow host weights almost exactly', () => {
  fc.assert(
    fc.property(weightsArb, fc.integer(), (weights, seed) => {
      const hosts = weights.map((w, i) => host(i, { weight: w }));
      const equal = weights.every((w) => w === weights[0]);
      for (const policy of ['ROUND_ROBIN', 'LEAST_REQUEST']) {
        const lb = createLoadBalancer(policy, hosts, {}, { random: seeded(seed) });
        // Equal weights make LEAST_REQUEST a random power-of-two choice: statistical (σ < 0.004), not exact.
        const random = policy === 'LEAST_REQUEST' && equal;
        const n = random ? 20000 : 400 * weights.reduce((a, b) => a + b, 0);
        const tolerance = random ? 0.03 : 0.01;
        assertClose(shares(countPicks(() => lb.pick(), n), hosts, n), expectedShares(weights), tolerance, policy);
      }
    }),
    { numRuns: 40 },
  );
});

test('unweighted ROUND_ROBIN visits every host once per cycle', () => {
  const hosts = [0, 1, 2, 3, 4].map((i) => host(i));
  const lb = createLoadBalancer('ROUND_ROBIN', hosts, {}, { random: seeded(1) });
  const cycle = new Set(Array.from({ length: 5 }, () => lb.pick()));
  assert.equal(cycle.size, 5);
});

test('RANDOM is uniform over hosts regardless of weight (as in Envoy)', () => {
  fc.assert(
    fc.property(weightsArb, fc.integer(), (weights, seed) => {
      const hosts = weights.map((w, i) => host(i, { weight: w }));
      const lb = createLoadBalancer('RANDOM', hosts, {}, { random: seeded(seed) });
      const n = 20000;
      assertClose(shares(countPicks(() => lb.pick(), n), hosts, n), hosts.map(() => 1 / hosts.length), 0.03, 'RANDOM');
    }),
    { numRuns: 20 },
  );
});

test('LEAST_REQUEST prefers hosts with fewer active requests', () => {
  const hosts = [0, 1, 2, 3].map((i) => host(i));
  hosts[0].activeRequests = 50;
  hosts[1].activeRequests = 50;
  const lb = createLoadBalancer('LEAST_REQUEST', hosts, {}, { random: seeded(7) });
  const counts = countPicks(() => lb.pick(), 10000);
  const busy = (counts.get(hosts[0]) ?? 0) + (counts.get(hosts[1]) ?? 0);
  // P2C: a busy host wins only when both choices are busy: (1/2)^2 = 25%.
  assert.ok(busy > 2000 && busy < 3000, `busy hosts got ${busy} of 10000`);
  const weighted = createLoadBalancer('LEAST_REQUEST', hosts.map((h, i) => ({ ...h, weight: i + 1 })), {}, { random: seeded(7) });
  assert.ok(weighted.pick());
});

test('RING_HASH and MAGLEV follow host weights for random keys', () => {
  fc.assert(
    fc.property(weightsArb, fc.integer(), (weights, seed) => {
      const hosts = weights.map((w, i) => host(i, { weight: w }));
      const cluster = { ring_hash_lb_config: { minimum_ring_size: 16384 } };
      for (const policy of ['RING_HASH', 'MAGLEV']) {
        const lb = createLoadBalancer(policy, hosts, cluster, { random: seeded(seed) });
        const n = 20000;
        let k = seed;
        const counts = countPicks(() => lb.pick({ hash: xxHash64(String(k++)) }), n);
        assertClose(shares(counts, hosts, n), expectedShares(weights), 0.03, policy);
      }
    }),
    { numRuns: 8 },
  );
});

test('the same hash always picks the same host', () => {
  const hosts = [0, 1, 2, 3, 4, 5].map((i) => host(i));
  for (const policy of ['RING_HASH', 'MAGLEV']) {
    const a = createLoadBalancer(policy, hosts, {});
    const b = createLoadBalancer(policy, [...hosts].reverse(), {});
    for (let k = 0; k < 500; k++) {
      const hash = xxHash64(`user-${k}`);
      assert.equal(a.pick({ hash }), b.pick({ hash }), `${policy} key ${k}`);
    }
  }
});

function movedFraction(policy: string, before: Host[], after: Host[], keys: number): { moved: number; movedToOthers: number } {
  const a = createLoadBalancer(policy, before, {});
  const b = createLoadBalancer(policy, after, {});
  const added = new Set(after.filter((h) => !before.includes(h)));
  let moved = 0;
  let movedToOthers = 0;
  for (let k = 0; k < keys; k++) {
    const hash = xxHash64(`key-${k}`);
    const x = a.pick({ hash });
    const y = b.pick({ hash });
    if (x !== y) {
      moved++;
      if (!added.has(y as Host) && after.includes(x as Host)) movedToOthers++;
    }
  }
  return { moved: moved / keys, movedToOthers: movedToOthers / keys };
}

test('adding a host to a ring moves about 1/N of the keys', () => {
  fc.assert(
    fc.property(fc.integer({ min: 3, max: 16 }), (n) => {
      const hosts = Array.from({ length: n }, (_, i) => host(i));
      const { moved } = movedFraction('RING_HASH', hosts, [...hosts, host(100)], 4000);
      const ideal = 1 / (n + 1);
      // Envoy sizes the ring as ceil(min_weight × minimum_ring_size) / min_weight, so each old host
      // also gives up some points when the host count changes: up to about twice the ideal.
      assert.ok(moved < 2 * ideal + 0.03, `ring: ${moved} moved with ${n}+1 hosts (ideal ${ideal})`);
    }),
    { numRuns: 10 },
  );
});

test('adding a host to maglev moves about 1/N of the keys, nearly all to the new host', () => {
  fc.assert(
    fc.property(fc.integer({ min: 3, max: 16 }), (n) => {
      const hosts = Array.from({ length: n }, (_, i) => host(i));
      const { moved, movedToOthers } = movedFraction('MAGLEV', hosts, [...hosts, host(100)], 4000);
      const ideal = 1 / (n + 1);
      assert.ok(moved < 1.3 * ideal + 0.02, `maglev: ${moved} moved with ${n}+1 hosts (ideal ${ideal})`);
      assert.ok(movedToOthers < 0.01, `maglev: ${movedToOthers} moved between old hosts`);
    }),
    { numRuns: 10 },
  );
});

test('removing a host from a ring moves only that host\'s keys when point counts stay fixed', () => {
  // minimum_ring_size 1 gives every equal-weight host exactly one point for any host count.
  const hosts = Array.from({ length: 6 }, (_, i) => host(i));
  const cluster = { ring_hash_lb_config: { minimum_ring_size: 1 } };
  const a = createLoadBalancer('RING_HASH', hosts, cluster);
  const b = createLoadBalancer('RING_HASH', hosts.slice(0, 5), cluster);
  for (let k = 0; k < 2000; k++) {
    const hash = xxHash64(`key-${k}`);
    const x = a.pick({ hash });
    if (x !== hosts[5]) assert.equal(b.pick({ hash }), x, `key ${k} moved although its host stayed`);
  }
});

test('every policy avoids attempted hosts while another host is left', () => {
  const policies = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'];
  fc.assert(
    fc.property(
      fc.constantFrom(...policies),
      weightsArb,
      fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      fc.integer(),
      (policy, weights, tried, hash, seed) => {
        const hosts = weights.map((w, i) => host(i, { weight: w }));
        const attempted = new Set(hosts.filter((_, i) => tried[i]));
        const lb = createLoadBalancer(policy, hosts, {}, { random: seeded(seed) });
        for (let r = 0; r < 5; r++) {
          const h = lb.pick({ hash, attempted });
          assert.ok(h, 'a host is always returned');
          if (attempted.size < hosts.length) assert.ok(!attempted.has(h), `${policy} returned an attempted host`);
        }
      },
    ),
    { numRuns: 200 },
  );
});

test('no hosts: pick returns undefined', () => {
  for (const policy of ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV']) {
    assert.equal(createLoadBalancer(policy, [], {}).pick(), undefined);
  }
});

test('consistent hashing uses the endpoint metadata envoy.lb hash_key, then the hostname option, then the address', () => {
  const keyed = (i: number, address: string) => ({ ...host(i, { address }), metadata: { 'envoy.lb': { hash_key: `pod-${i}` } } });
  const a = [0, 1, 2, 3].map((i) => keyed(i, `10.1.0.${i}`));
  const b = [0, 1, 2, 3].map((i) => keyed(i, `10.2.0.${i}`));
  const named = (i: number, address: string) => ({ ...host(i, { address }), hostname: `pod-${i}.svc` });
  const c = [0, 1, 2, 3].map((i) => named(i, `10.3.0.${i}`));
  const d = [0, 1, 2, 3].map((i) => named(i, `10.4.0.${i}`));
  const byHostname = { common_lb_config: { consistent_hashing_lb_config: { use_hostname_for_hashing: true } } };
  for (const policy of ['RING_HASH', 'MAGLEV']) {
    const [la, lb] = [createLoadBalancer(policy, a, {}), createLoadBalancer(policy, b, {})];
    const [lc, ld] = [createLoadBalancer(policy, c, byHostname), createLoadBalancer(policy, d, byHostname)];
    const [lc2, ld2] = [createLoadBalancer(policy, c, {}), createLoadBalancer(policy, d, {})];
    let differ = 0;
    for (let k = 0; k < 300; k++) {
      const hash = xxHash64(`k${k}`);
      assert.equal(a.indexOf(la.pick({ hash }) as (typeof a)[number]), b.indexOf(lb.pick({ hash }) as (typeof b)[number]), `${policy}: same hash_key, same place`);
      assert.equal(c.indexOf(lc.pick({ hash }) as (typeof c)[number]), d.indexOf(ld.pick({ hash }) as (typeof d)[number]), `${policy}: same hostname, same place`);
      if (c.indexOf(lc2.pick({ hash }) as (typeof c)[number]) !== d.indexOf(ld2.pick({ hash }) as (typeof d)[number])) differ++;
    }
    assert.ok(differ > 50, `${policy}: by address the placements differ (${differ})`);
  }
});

test('hash_balance_factor bounds a busy host: its keys spill to the next host, other keys stay', () => {
  const bounded = { common_lb_config: { consistent_hashing_lb_config: { hash_balance_factor: 150 } } };
  for (const policy of ['RING_HASH', 'MAGLEV']) {
    const hosts = [0, 1, 2, 3].map((i) => host(i));
    const plain = createLoadBalancer(policy, hosts, {});
    const lb = createLoadBalancer(policy, hosts, bounded);
    const keys = Array.from({ length: 400 }, (_, k) => xxHash64(`key-${k}`));
    for (const hash of keys) assert.equal(lb.pick({ hash }), plain.pick({ hash }), `${policy}: idle hosts → plain consistent hashing`);
    hosts[0].activeRequests = 10;
    for (const hash of keys) {
      const before = plain.pick({ hash });
      const after = lb.pick({ hash });
      assert.notEqual(after, hosts[0], `${policy}: the busy host takes no new request`);
      if (before !== hosts[0]) assert.equal(after, before, `${policy}: keys of other hosts stay`);
      else assert.equal(lb.pick({ hash }), after, `${policy}: spill-over is stable per key`);
    }
  }
  assert.match(checkLbConfig('RING_HASH', { common_lb_config: { consistent_hashing_lb_config: { hash_balance_factor: 50 } } }).errors.join(), /hash_balance_factor: must be at least 100/);
});
