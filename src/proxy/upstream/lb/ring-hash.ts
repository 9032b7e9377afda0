// RING_HASH (Ketama-style consistent hashing, Envoy's ring): each host owns
// round(scale × normalized weight) points on a 64-bit ring at xxHash64("<address>_<i>"), with
// scale = min(ceil(min_weight × minimum_ring_size) / min_weight, maximum_ring_size). A request goes
// to the first point at or after its hash (wrapping). Adding a host moves about 1/N of the keys.
import type { Host } from '../host.ts';
import type { LoadBalancerContext } from './load-balancer.ts';
import type { HostPicker } from './priority-lb.ts';
import { xxHash64 } from './xxhash.ts';
import { hostHashKey, randomHash } from './hash-key.ts';
import { allAttempted } from './attempted.ts';
import { BoundedLoad } from './bounded-load.ts';

export interface RingHashConfig {
  minimumRingSize: number;
  maximumRingSize: number;
  useHostnameForHashing: boolean;
  /** hash_balance_factor (0: unbounded). */
  hashBalanceFactor: number;
}

export const RING_HASH_DEFAULTS = { minimumRingSize: 1024, maximumRingSize: 8 * 1024 * 1024 } as const;

export class RingHashPicker implements HostPicker {
  readonly #hashes: BigUint64Array;
  readonly #owners: Uint32Array;
  readonly #hosts: readonly Host[];
  readonly #random: () => number;
  readonly #bounded: BoundedLoad | undefined;

  constructor(hosts: readonly Host[], weights: readonly number[], config: RingHashConfig, random: () => number) {
    this.#hosts = hosts;
    this.#random = random;
    this.#bounded = config.hashBalanceFactor > 0 ? new BoundedLoad(hosts, weights, config.hashBalanceFactor) : undefined;
    const sum = weights.reduce((a, b) => a + b, 0);
    const normalized = weights.map((w) => w / sum);
    const minWeight = Math.min(...normalized);
    const scale = Math.min(Math.ceil(minWeight * config.minimumRingSize) / minWeight, config.maximumRingSize);
    const points: { hash: bigint; owner: number }[] = [];
    let current = 0;
    let target = 0;
    hosts.forEach((h, owner) => {
      const prefix = `${hostHashKey(h, config.useHostnameForHashing)}_`;
      target += scale * normalized[owner];
      for (let i = 0; current < target; i++, current++) points.push({ hash: xxHash64(prefix + i), owner });
    });
    points.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
    this.#hashes = BigUint64Array.from(points, (p) => p.hash);
    this.#owners = Uint32Array.from(points, (p) => p.owner);
  }

  get size(): number {
    return this.#hashes.length;
  }

  pick(ctx: LoadBalancerContext | undefined): Host | undefined {
    const hashes = this.#hashes;
    if (hashes.length === 0) return undefined;
    const h = ctx?.hash ?? randomHash(this.#random);
    let lo = 0;
    let hi = hashes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    if (lo === hashes.length) lo = 0;
    return walk(this.#hosts, this.#owners, lo, ctx?.attempted, this.#bounded);
  }
}

/**
 * From position `start` of `owners` (ring points or maglev slots → host index), the first host that
 * was not attempted and, with bounded loads, is not full; the hashed host when none qualifies.
 */
export function walk(hosts: readonly Host[], owners: Uint32Array, start: number, attempted: ReadonlySet<Host> | undefined, bounded: BoundedLoad | undefined): Host {
  const first = hosts[owners[start]];
  const avoid = attempted !== undefined && attempted.size > 0 && !allAttempted(hosts, attempted);
  if (!bounded && (!avoid || !attempted.has(first))) return first;
  const total = bounded ? bounded.total() : 0;
  const n = owners.length;
  for (let k = 0; k < n; k++) {
    const i = owners[(start + k) % n];
    if (avoid && attempted.has(hosts[i])) continue;
    if (bounded && bounded.full(i, total)) continue;
    return hosts[i];
  }
  return first;
}

export function ringHashPicker(config: RingHashConfig, random: () => number) {
  return (hosts: readonly Host[], weights: readonly number[]): HostPicker => new RingHashPicker(hosts, weights, config, random);
}
