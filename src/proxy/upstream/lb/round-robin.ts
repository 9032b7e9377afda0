// ROUND_ROBIN: plain rotation when all weights are equal, otherwise an EDF schedule in which each
// host appears in proportion to its weight. Both start at a random point so that many proxies do
// not hit the same host in lockstep.
import type { Host } from '../host.ts';
import type { LoadBalancerContext } from './load-balancer.ts';
import { EdfScheduler } from './edf-scheduler.ts';
import type { HostPicker } from './priority-lb.ts';
import { EdfPicker } from './edf-picker.ts';
import { allAttempted, firstNotAttempted } from './attempted.ts';
import { anyInSlowStart, slowStartFactor, type SlowStartConfig } from './slow-start.ts';

export function allEqual(weights: readonly number[]): boolean {
  for (let i = 1; i < weights.length; i++) if (weights[i] !== weights[0]) return false;
  return true;
}

class RotationPicker implements HostPicker {
  readonly #hosts: readonly Host[];
  #next: number;

  constructor(hosts: readonly Host[], random: () => number) {
    this.#hosts = hosts;
    this.#next = Math.floor(random() * hosts.length);
  }

  pick(ctx: LoadBalancerContext | undefined): Host | undefined {
    const hosts = this.#hosts;
    const attempted = ctx?.attempted;
    let first: Host | undefined;
    for (let tries = 0; tries < hosts.length; tries++) {
      const h = hosts[this.#next];
      if (++this.#next === hosts.length) this.#next = 0;
      if (attempted === undefined || attempted.size === 0 || !attempted.has(h)) return h;
      first ??= h;
    }
    return first;
  }
}

/**
 * EDF with fixed integer weights is periodic: the first sum(weights) picks contain host i exactly
 * weights[i] times, then the sequence repeats. Small schedules are unrolled into a table once
 * (≈ 12 ns/pick instead of ≈ 100–250 ns for the heap, measured with bench/micro/lb-pick.ts).
 */
const MAX_UNROLLED = 1 << 16;

class CyclePicker implements HostPicker {
  readonly #hosts: readonly Host[];
  readonly #cycle: Uint32Array;
  #next: number;

  constructor(hosts: readonly Host[], weights: readonly number[], total: number, random: () => number) {
    this.#hosts = hosts;
    const edf = new EdfScheduler<number>();
    hosts.forEach((_, i) => edf.add(weights[i], i));
    const weightOf = (i: number) => weights[i];
    this.#cycle = new Uint32Array(total);
    for (let k = 0; k < total; k++) this.#cycle[k] = edf.pickAndAdd(weightOf) as number;
    this.#next = Math.floor(random() * total);
  }

  pick(ctx: LoadBalancerContext | undefined): Host | undefined {
    const cycle = this.#cycle;
    let i = cycle[this.#next];
    if (++this.#next === cycle.length) this.#next = 0;
    const attempted = ctx?.attempted;
    if (attempted === undefined || attempted.size === 0 || !attempted.has(this.#hosts[i])) return this.#hosts[i];
    if (allAttempted(this.#hosts, attempted)) return this.#hosts[i];
    for (let tries = 1; tries < cycle.length; tries++) {
      i = cycle[this.#next];
      if (++this.#next === cycle.length) this.#next = 0;
      if (!attempted.has(this.#hosts[i])) return this.#hosts[i];
    }
    return firstNotAttempted(this.#hosts, i, attempted);
  }
}

function integerTotal(weights: readonly number[]): number | undefined {
  let total = 0;
  for (const w of weights) {
    if (!Number.isInteger(w)) return undefined;
    total += w;
  }
  return total <= MAX_UNROLLED ? total : undefined;
}

export function roundRobinPicker(random: () => number, slowStart?: SlowStartConfig, now: () => number = () => performance.now()) {
  return (hosts: readonly Host[], weights: readonly number[]): HostPicker => {
    if (slowStart && anyInSlowStart(hosts, slowStart, now())) {
      // Weights change with time: the EDF schedule re-reads them at every pick.
      const initial = (i: number) => weights[i];
      return new EdfPicker(hosts, (i) => weights[i] * slowStartFactor(hosts[i], slowStart, now()), random, initial);
    }
    if (allEqual(weights)) return new RotationPicker(hosts, random);
    const total = integerTotal(weights);
    return total !== undefined ? new CyclePicker(hosts, weights, total, random) : new EdfPicker(hosts, (i) => weights[i], random);
  };
}
