// Test hosts for the load balancer, outlier detection and health check tests.
import type { Host, Locality } from '../../../src/proxy/upstream/host.ts';

export function host(i: number, opts: { weight?: number; priority?: number; locality?: Locality; flags?: number; address?: string; port?: number } = {}): Host {
  const address = opts.address ?? `10.0.${i >> 8}.${i & 255}`;
  const port = opts.port ?? 8080;
  return {
    key: `${address}:${port}`,
    address,
    port,
    weight: opts.weight ?? 1,
    locality: opts.locality ?? {},
    priority: opts.priority ?? 0,
    metadata: {},
    healthFlags: opts.flags ?? 0,
    activeRequests: 0,
  };
}

/** A small seeded PRNG (mulberry32) so statistical tests are reproducible. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function countPicks(pick: () => Host | undefined, n: number): Map<Host | undefined, number> {
  const counts = new Map<Host | undefined, number>();
  for (let i = 0; i < n; i++) {
    const h = pick();
    counts.set(h, (counts.get(h) ?? 0) + 1);
  }
  return counts;
}
