// LEAST_REQUEST: with equal weights, "power of N choices" (choice_count random hosts, default 2,
// the one with the fewest active requests wins); with unequal weights, an EDF schedule where a
// host's weight is divided by (active requests + 1)^active_request_bias each time it is scheduled.
import type { Host } from '../host.ts';
import type { LoadBalancerContext } from './load-balancer.ts';
import { EdfPicker } from './edf-picker.ts';
import type { HostPicker } from './priority-lb.ts';
import { allEqual } from './round-robin.ts';
import { allAttempted, firstNotAttempted } from './attempted.ts';
import { anyInSlowStart, slowStartFactor, type SlowStartConfig } from './slow-start.ts';

export interface LeastRequestConfig {
  /** choice_count (default 2). */
  choiceCount: number;
  /** active_request_bias (default 1.0). */
  activeRequestBias: number;
  /** active_request_bias.runtime_key (a RuntimeDouble): its value replaces the bias at each balancer build. */
  activeRequestBiasKey?: string;
  slowStart?: SlowStartConfig;
}

class ChoicePicker implements HostPicker {
  readonly #hosts: readonly Host[];
  readonly #choices: number;
  readonly #random: () => number;

  constructor(hosts: readonly Host[], choices: number, random: () => number) {
    this.#hosts = hosts;
    this.#choices = choices;
    this.#random = random;
  }

  pick(ctx: LoadBalancerContext | undefined): Host | undefined {
    const hosts = this.#hosts;
    const n = hosts.length;
    const attempted = ctx?.attempted;
    const avoid = attempted !== undefined && attempted.size > 0 && !allAttempted(hosts, attempted);
    let best: Host | undefined;
    for (let c = 0; c < this.#choices; c++) {
      const i = Math.floor(this.#random() * n);
      let h = hosts[i];
      if (avoid && attempted.has(h)) h = firstNotAttempted(hosts, i, attempted) as Host;
      if (best === undefined || h.activeRequests < best.activeRequests) best = h;
    }
    return best;
  }
}

/** Weights divided by (active requests + 1)^bias, re-read at every pick. */
function leastRequestWeights(hosts: readonly Host[], weights: readonly number[], bias: number, scale?: (i: number) => number): (i: number) => number {
  const w = scale ? (i: number) => weights[i] * scale(i) : (i: number) => weights[i];
  return bias === 0
    ? w
    : bias === 1
      ? (i) => w(i) / (hosts[i].activeRequests + 1)
      : (i) => w(i) / Math.pow(hosts[i].activeRequests + 1, bias);
}

export function leastRequestPicker(config: LeastRequestConfig, random: () => number, now: () => number = () => performance.now()) {
  return (hosts: readonly Host[], weights: readonly number[]): HostPicker => {
    const ss = config.slowStart;
    if (ss && anyInSlowStart(hosts, ss, now())) {
      const scale = (i: number) => slowStartFactor(hosts[i], ss, now());
      return new EdfPicker(hosts, leastRequestWeights(hosts, weights, config.activeRequestBias, scale), random);
    }
    return allEqual(weights)
      ? new ChoicePicker(hosts, config.choiceCount, random)
      : new EdfPicker(hosts, leastRequestWeights(hosts, weights, config.activeRequestBias), random);
  };
}
