// Micro-benchmark of LoadBalancer.pick for every policy (not part of the tests):
//   node bench/micro/lb-pick.ts [--hosts 3,10,100] [--picks 2000000]
// Prints ns/pick per policy and host count (weighted hosts, all healthy, one priority), plus the
// cost of computing a header hash policy and of building a balancer.
import { parseArgs } from 'node:util';
import { compileHashPolicy, createLoadBalancer } from '../../src/proxy/upstream/lb/index.ts';
import type { Host } from '../../src/proxy/upstream/host.ts';

const { values } = parseArgs({ options: { hosts: { type: 'string', default: '3,10,100' }, picks: { type: 'string', default: '2000000' } } });
const hostCounts = values.hosts.split(',').map(Number);
const picks = Number(values.picks);
const POLICIES = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'];

function hosts(n: number, weighted: boolean): Host[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `10.0.${i >> 8}.${i & 255}:8080`,
    address: `10.0.${i >> 8}.${i & 255}`,
    port: 8080,
    weight: weighted ? 1 + (i % 3) : 1,
    locality: {},
    priority: 0,
    metadata: {},
    healthFlags: 0,
    activeRequests: 0,
  }));
}

function nsPer(n: number, fn: () => unknown): number {
  for (let i = 0; i < Math.min(n, 100_000); i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t0) / n;
}

const hashes = Array.from({ length: 1024 }, (_, i) => BigInt(i) * 0x9e3779b97f4a7c15n & ((1n << 64n) - 1n));
const rows: string[][] = [['policy', 'hosts', 'weights', 'ns/pick', 'build ms']];
for (const n of hostCounts) {
  for (const weighted of [false, true]) {
    for (const policy of POLICIES) {
      const hs = hosts(n, weighted);
      const t0 = performance.now();
      const lb = createLoadBalancer(policy, hs, {});
      const buildMs = performance.now() - t0;
      let k = 0;
      const hashed = policy === 'RING_HASH' || policy === 'MAGLEV';
      const ctx = { hash: 0n };
      const ns = hashed
        ? nsPer(picks, () => {
            ctx.hash = hashes[k++ & 1023];
            return lb.pick(ctx);
          })
        : nsPer(picks, () => lb.pick());
      rows.push([policy, String(n), weighted ? '1..3' : 'equal', ns.toFixed(1), buildMs.toFixed(2)]);
    }
  }
}
const attempted = new Set(hosts(10, false).slice(0, 1));
const hs = hosts(10, false);
const rr = createLoadBalancer('ROUND_ROBIN', hs, {});
rows.push(['ROUND_ROBIN+attempted', '10', 'equal', nsPer(picks, () => rr.pick({ attempted })).toFixed(1), '']);
const hashOf = compileHashPolicy([{ header: { header_name: 'x-user' } }]);
const req = { headers: { 'x-user': 'user-12345' } };
rows.push(['hash_policy header', '', '', nsPer(picks / 4, () => hashOf(req)).toFixed(1), '']);

const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
for (const r of rows) console.log(r.map((v, c) => v.padEnd(widths[c])).join('  '));
