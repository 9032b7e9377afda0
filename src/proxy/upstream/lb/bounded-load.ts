// Consistent hashing with bounded loads (Envoy's consistent_hashing_lb_config.hash_balance_factor):
// a host may take at most ceil(factor/100 × (requests in flight across the set + 1) × its
// normalized weight) requests; when the hashed host is full, the request walks on (clockwise on
// the ring, to the next slots in maglev) to the first host with room, so popular keys spill over
// to the same neighbours every time.
import type { Host } from '../host.ts';

export class BoundedLoad {
  readonly #hosts: readonly Host[];
  readonly #share: Float64Array;
  readonly #factor: number;

  constructor(hosts: readonly Host[], weights: readonly number[], factorPercent: number) {
    this.#hosts = hosts;
    const sum = weights.reduce((a, b) => a + b, 0);
    this.#share = Float64Array.from(weights, (w) => w / sum);
    this.#factor = factorPercent / 100;
  }

  /** Requests in flight across the set (read once per pick). */
  total(): number {
    let t = 0;
    for (const h of this.#hosts) t += h.activeRequests;
    return t;
  }

  /** Whether host `i` (index into the hosts given) is at its bound for this total. */
  full(i: number, total: number): boolean {
    return this.#hosts[i].activeRequests + 1 > Math.ceil(this.#factor * (total + 1) * this.#share[i]);
  }
}
