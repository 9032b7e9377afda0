// RANDOM: a uniformly random host of the chosen set. Like Envoy's random balancer it does not
// look at host weights (weights still shape priority and locality choice).
import type { Host } from '../host.ts';
import type { LoadBalancerContext } from './load-balancer.ts';
import type { HostPicker } from './priority-lb.ts';
import { firstNotAttempted } from './attempted.ts';

class RandomPicker implements HostPicker {
  readonly #hosts: readonly Host[];
  readonly #random: () => number;

  constructor(hosts: readonly Host[], random: () => number) {
    this.#hosts = hosts;
    this.#random = random;
  }

  pick(ctx: LoadBalancerContext | undefined): Host | undefined {
    const hosts = this.#hosts;
    const start = Math.floor(this.#random() * hosts.length);
    const h = hosts[start];
    const attempted = ctx?.attempted;
    if (attempted === undefined || attempted.size === 0 || !attempted.has(h)) return h;
    return firstNotAttempted(hosts, start, attempted) ?? h;
  }
}

export function randomPicker(random: () => number) {
  return (hosts: readonly Host[]): HostPicker => new RandomPicker(hosts, random);
}
