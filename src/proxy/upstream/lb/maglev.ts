// MAGLEV (Google's Maglev consistent hashing, as Envoy builds it): a lookup table of table_size
// (prime, default 65537) slots; each host walks its own permutation
// (offset = xxHash64(key) mod M, skip = xxHash64(key, seed 1) mod (M−1) + 1) and claims free slots,
// hosts taking turns in proportion to their weight. A request goes to table[hash mod M]. Faster
// lookups than the ring and a more even spread, at the cost of slightly more churn on host changes.
import type { Host } from '../host.ts';
import type { LoadBalancerContext } from './load-balancer.ts';
import type { HostPicker } from './priority-lb.ts';
import { xxHash64 } from './xxhash.ts';
import { hostHashKey, randomHash } from './hash-key.ts';
import { BoundedLoad } from './bounded-load.ts';
import { walk } from './ring-hash.ts';

export interface MaglevConfig {
  tableSize: number;
  useHostnameForHashing: boolean;
  /** hash_balance_factor (0: unbounded). */
  hashBalanceFactor: number;
}

export const MAGLEV_DEFAULT_TABLE_SIZE = 65537;
export const MAGLEV_MAX_TABLE_SIZE = 5000011;

export function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/**
 * Recently built tables by (table size, host keys, weights): a host that is ejected and returns,
 * or a health flap, rebuilds the same table, which costs ~5–10 ms for 65537 slots.
 */
const recentTables = new Map<string, Uint32Array>();
const RECENT_TABLES = 8;

function buildTable(keys: readonly string[], weights: readonly number[], m: number): Uint32Array {
  const size = BigInt(m);
  const maxWeight = Math.max(...weights);
  const entries = keys.map((key, i) => ({
    offset: Number(xxHash64(key) % size),
    skip: Number(xxHash64(key, 1n) % BigInt(m - 1)) + 1,
    weight: weights[i] / maxWeight,
    target: 0,
    next: 0,
  }));
  const table = new Uint32Array(m).fill(0xffffffff);
  let filled = 0;
  for (let iteration = 1; filled < m; iteration++) {
    for (let i = 0; i < entries.length && filled < m; i++) {
      const e = entries[i];
      if (iteration * e.weight < e.target) continue;
      e.target += 1;
      let c = (e.offset + e.skip * e.next) % m;
      while (table[c] !== 0xffffffff) {
        e.next++;
        c = (e.offset + e.skip * e.next) % m;
      }
      table[c] = i;
      e.next++;
      filled++;
    }
  }
  return table;
}

function tableFor(keys: readonly string[], weights: readonly number[], m: number): Uint32Array {
  const id = `${m}\n${keys.join('\n')}\n${weights.join(',')}`;
  let table = recentTables.get(id);
  if (table) {
    recentTables.delete(id);
  } else {
    table = buildTable(keys, weights, m);
    if (recentTables.size >= RECENT_TABLES) recentTables.delete(recentTables.keys().next().value as string);
  }
  recentTables.set(id, table);
  return table;
}

export class MaglevPicker implements HostPicker {
  readonly #table: Uint32Array;
  readonly #size: bigint;
  readonly #hosts: readonly Host[];
  readonly #random: () => number;
  readonly #bounded: BoundedLoad | undefined;

  constructor(hosts: readonly Host[], weights: readonly number[], config: MaglevConfig, random: () => number) {
    this.#random = random;
    this.#size = BigInt(config.tableSize);
    // Build from hosts sorted by key so the table does not depend on the order hosts arrived in.
    const order = hosts.map((h, i) => ({ h, w: weights[i], key: hostHashKey(h, config.useHostnameForHashing) }));
    order.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.#hosts = order.map((e) => e.h);
    this.#table = tableFor(
      order.map((e) => e.key),
      order.map((e) => e.w),
      config.tableSize,
    );
    this.#bounded = config.hashBalanceFactor > 0 ? new BoundedLoad(this.#hosts, order.map((e) => e.w), config.hashBalanceFactor) : undefined;
  }

  pick(ctx: LoadBalancerContext | undefined): Host | undefined {
    const h = ctx?.hash ?? randomHash(this.#random);
    // Neighbouring slots belong to pseudo-random hosts: walking forward gives a stable fallback per key.
    return walk(this.#hosts, this.#table, Number(h % this.#size), ctx?.attempted, this.#bounded);
  }
}

export function maglevPicker(config: MaglevConfig, random: () => number) {
  return (hosts: readonly Host[], weights: readonly number[]): HostPicker => new MaglevPicker(hosts, weights, config, random);
}
