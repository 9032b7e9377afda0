// Weighted picking that follows an EDF schedule whose weights are re-read at every pick (slow start
// scales them over time, LEAST_REQUEST divides them by active requests). Starts at a random point of
// the schedule so that many proxies do not hit the same host in lockstep.
import type { Host } from '../host.ts';
import type { LoadBalancerContext } from './load-balancer.ts';
import { EdfScheduler } from './edf-scheduler.ts';
import type { HostPicker } from './priority-lb.ts';
import { allAttempted, firstNotAttempted } from './attempted.ts';

export class EdfPicker implements HostPicker {
  readonly #edf = new EdfScheduler<number>();
  readonly #hosts: readonly Host[];
  readonly #weightOf: (i: number) => number;

  /** `initialWeightOf` seeds the schedule (default: `weightOf`). */
  constructor(hosts: readonly Host[], weightOf: (i: number) => number, random: () => number, initialWeightOf: (i: number) => number = weightOf) {
    this.#hosts = hosts;
    this.#weightOf = weightOf;
    hosts.forEach((_, i) => this.#edf.add(initialWeightOf(i), i));
    const skip = Math.floor(random() * hosts.length);
    for (let i = 0; i < skip; i++) this.#edf.pickAndAdd(this.#weightOf);
  }

  pick(ctx: LoadBalancerContext | undefined): Host | undefined {
    const attempted = ctx?.attempted;
    let i = this.#edf.pickAndAdd(this.#weightOf) as number;
    if (attempted === undefined || attempted.size === 0 || !attempted.has(this.#hosts[i])) return this.#hosts[i];
    if (allAttempted(this.#hosts, attempted)) return this.#hosts[i];
    // Keep following the schedule for a while; a heavy attempted host can hold it for several turns.
    for (let tries = 1; tries < 2 * this.#hosts.length; tries++) {
      i = this.#edf.pickAndAdd(this.#weightOf) as number;
      if (!attempted.has(this.#hosts[i])) return this.#hosts[i];
    }
    return firstNotAttempted(this.#hosts, i, attempted);
  }
}
