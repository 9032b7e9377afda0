// The host-set logic every policy shares (Envoy's LoadBalancerBase + locality weighting):
// hosts are grouped by priority; each priority's health is
//   min(100, overprovisioning_factor × healthy / total)       (counts, or weights with weighted_priority_health)
// and load is handed out from P0 down until 100% is covered (degraded hosts only take what the
// healthy ones leave). A priority whose healthy+degraded share is below healthy_panic_threshold is
// in panic and balances over all its hosts; when every priority is in panic, load is split by host
// count. With locality_weighted_lb_config, a locality is picked first (EDF over
// locality weight × min(1, overprovisioning × healthy/total)), then a host within it.
// Hash policies (ring hash, maglev) pick the priority from hash % 100 and fold locality weights into
// host weights instead of picking a locality.
import { HealthFlag, type Host } from '../host.ts';
import type { LoadBalancer, LoadBalancerContext } from './load-balancer.ts';
import { EdfScheduler } from './edf-scheduler.ts';
import { localityKey, type CommonLbConfig } from './lb-config.ts';

/** Picks among one fixed list of hosts (one priority's healthy hosts, one locality's, ...). */
export interface HostPicker {
  pick(ctx: LoadBalancerContext | undefined): Host | undefined;
}

/** Builds a policy's picker for a host list; `weights[i]` is the effective weight of `hosts[i]` (> 0). */
export type PickerFactory = (hosts: readonly Host[], weights: readonly number[]) => HostPicker;

export interface PriorityLbOptions {
  /** true for hash-based policies: priority from the request hash, locality weights folded into host weights. */
  hashBased: boolean;
  /** Uniform random in [0, 1). */
  random: () => number;
}

const DEGRADED_ONLY = HealthFlag.DegradedEdsHealth;

function isFullyHealthy(h: Host): boolean {
  return h.healthFlags === 0;
}

function isDegraded(h: Host): boolean {
  return h.healthFlags === DEGRADED_ONLY;
}

function hostWeight(h: Host): number {
  return h.weight > 0 ? h.weight : 1;
}

class LocalityChooser {
  readonly #edf = new EdfScheduler<{ picker: HostPicker; weight: number }>();

  add(weight: number, picker: HostPicker): void {
    this.#edf.add(weight, { picker, weight });
  }

  get empty(): boolean {
    return this.#edf.size === 0;
  }

  choose(): HostPicker | undefined {
    return this.#edf.pickAndAdd((e) => e.weight)?.picker;
  }
}

interface PrioritySlot {
  all?: HostPicker;
  healthy?: HostPicker;
  degraded?: HostPicker;
  healthyLocalities?: LocalityChooser;
  degradedLocalities?: LocalityChooser;
  panic: boolean;
}

/** Per-priority load (percent) as Envoy computes it; exported for tests and /clusters. */
export interface PriorityLoad {
  healthy: number[];
  degraded: number[];
  panic: boolean[];
}

/**
 * Envoy's priority load; `excluded` priorities (retry priority previous_priorities) count as having
 * no available hosts.
 */
export function computePriorityLoad(byPriority: readonly (readonly Host[])[], config: CommonLbConfig, excluded?: ReadonlySet<number>): PriorityLoad {
  const n = Math.max(1, byPriority.length);
  const health = new Array<number>(n).fill(0);
  const degradedAvail = new Array<number>(n).fill(0);
  const healthy = new Array<number>(n).fill(0);
  const degraded = new Array<number>(n).fill(0);
  const panic = new Array<boolean>(n).fill(false);
  const ovp = config.overprovisioningFactor;

  for (let p = 0; p < byPriority.length; p++) {
    const hosts = byPriority[p];
    if (hosts.length === 0 || excluded?.has(p)) continue;
    let hw = 0;
    let dw = 0;
    let tw = 0;
    for (const h of hosts) {
      const w = config.weightedPriorityHealth ? hostWeight(h) : 1;
      tw += w;
      if (isFullyHealthy(h)) hw += w;
      else if (isDegraded(h)) dw += w;
    }
    health[p] = Math.min(100, Math.floor((ovp * hw) / tw));
    degradedAvail[p] = Math.min(100, Math.floor((ovp * dw) / tw));
  }
  const totalAvailability = Math.min(100, health.reduce((a, b) => a + b, 0) + degradedAvail.reduce((a, b) => a + b, 0));

  if (config.panicThreshold === 0 && totalAvailability === 0) {
    healthy[0] = 100;
    return { healthy, degraded, panic };
  }
  if (totalAvailability > 0) {
    let remaining = 100;
    let firstHealthy = -1;
    let firstDegraded = -1;
    for (let p = 0; p < n; p++) {
      if (firstHealthy < 0 && health[p] > 0) firstHealthy = p;
      healthy[p] = Math.min(remaining, Math.floor((health[p] * 100) / totalAvailability));
      remaining -= healthy[p];
    }
    for (let p = 0; p < n; p++) {
      if (firstDegraded < 0 && degradedAvail[p] > 0) firstDegraded = p;
      degraded[p] = Math.min(remaining, Math.floor((degradedAvail[p] * 100) / totalAvailability));
      remaining -= degraded[p];
    }
    if (remaining > 0) {
      if (firstHealthy >= 0) healthy[firstHealthy] += remaining;
      else degraded[firstDegraded] += remaining;
    }
  }
  for (let p = 0; p < n; p++) {
    if (totalAvailability === 100) break;
    const hosts = byPriority[p] ?? [];
    let usable = 0;
    for (const h of hosts) if (isFullyHealthy(h) || isDegraded(h)) usable++;
    const pct = hosts.length === 0 ? 0 : (100 * usable) / hosts.length;
    panic[p] = pct < config.panicThreshold;
  }
  if (panic.every(Boolean)) {
    // Total panic: load by host count, over all hosts.
    const total = byPriority.reduce((a, hs) => a + hs.length, 0);
    healthy.fill(0);
    degraded.fill(0);
    if (total === 0) {
      healthy[0] = 100;
    } else {
      let remaining = 100;
      let firstNonEmpty = -1;
      for (let p = 0; p < n; p++) {
        const count = byPriority[p]?.length ?? 0;
        if (firstNonEmpty < 0 && count > 0) firstNonEmpty = p;
        healthy[p] = Math.floor((100 * count) / total);
        remaining -= healthy[p];
      }
      healthy[firstNonEmpty] += remaining;
    }
  }
  return { healthy, degraded, panic };
}

/** Groups hosts into one list per priority (index = priority; gaps stay empty). */
export function groupByPriority(hosts: readonly Host[]): Host[][] {
  const out: Host[][] = [];
  for (const h of hosts) {
    const p = h.priority > 0 ? h.priority : 0;
    while (out.length <= p) out.push([]);
    out[p].push(h);
  }
  return out;
}

export class PriorityLoadBalancer implements LoadBalancer {
  readonly load: PriorityLoad;
  readonly #slots: PrioritySlot[];
  /** Cumulative thresholds: entries [0, n) healthy per priority, [n, 2n) degraded. */
  readonly #cumulative: Uint8Array;
  readonly #hashBased: boolean;
  readonly #random: () => number;
  readonly #empty: boolean;
  readonly #byPriority: Host[][];
  readonly #config: CommonLbConfig;
  /** Cumulative load tables with some priorities excluded, by their sorted list. */
  readonly #excludedTables = new Map<string, Uint8Array>();
  /** The one picker to use when P0 takes all the load without locality choice (the common case). */
  readonly #direct: HostPicker | undefined;

  constructor(hosts: readonly Host[], config: CommonLbConfig, makePicker: PickerFactory, options: PriorityLbOptions) {
    this.#hashBased = options.hashBased;
    this.#random = options.random;
    this.#empty = hosts.length === 0;
    const byPriority = groupByPriority(hosts);
    this.#byPriority = byPriority;
    this.#config = config;
    this.load = computePriorityLoad(byPriority, config);
    const n = this.load.healthy.length;
    this.#cumulative = cumulativeTable(this.load);

    this.#slots = [];
    for (let p = 0; p < n; p++) {
      const all = byPriority[p] ?? [];
      const panic = this.load.panic[p];
      const slot: PrioritySlot = { panic };
      const healthy = all.filter(isFullyHealthy);
      const degraded = all.filter(isDegraded);
      if (panic) slot.all = this.#build(all, p, config, makePicker);
      slot.healthy = this.#build(healthy, p, config, makePicker);
      slot.degraded = this.#build(degraded, p, config, makePicker);
      if (config.localityWeighted && !options.hashBased) {
        slot.healthyLocalities = localityChooser(all, healthy, p, config, makePicker);
        slot.degradedLocalities = localityChooser(all, degraded, p, config, makePicker);
      }
      this.#slots.push(slot);
    }
    const first = this.#slots[0];
    const allOnFirst = this.#cumulative[0] === 100 && !first.healthyLocalities;
    this.#direct = allOnFirst ? (first.panic ? first.all : first.healthy) : undefined;
  }

  #build(hosts: readonly Host[], priority: number, config: CommonLbConfig, makePicker: PickerFactory): HostPicker | undefined {
    if (hosts.length === 0) return undefined;
    if (this.#hashBased && config.localityWeighted) {
      const folded = localityFoldedWeights(hosts, priority, config);
      const kept = hosts.filter((_, i) => folded[i] > 0);
      if (kept.length > 0) return makePicker(kept, folded.filter((w) => w > 0));
    }
    return makePicker(hosts, hosts.map(hostWeight));
  }

  #excludedTable(excluded: ReadonlySet<number>): Uint8Array {
    const key = [...excluded].sort((a, b) => a - b).join(',');
    let t = this.#excludedTables.get(key);
    if (!t) {
      const load = computePriorityLoad(this.#byPriority, this.#config, excluded);
      // Nothing left outside the excluded priorities: keep the normal load (as Envoy does).
      const available = load.healthy.some((l, p) => l > 0 && !excluded.has(p)) || load.degraded.some((l, p) => l > 0 && !excluded.has(p));
      t = available && !load.panic.every(Boolean) ? cumulativeTable(load) : this.#cumulative;
      this.#excludedTables.set(key, t);
    }
    return t;
  }

  pick(ctx?: LoadBalancerContext): Host | undefined {
    if (this.#direct !== undefined && (ctx === undefined || ctx.excludedPriorities === undefined || ctx.excludedPriorities.size === 0)) return this.#direct.pick(ctx);
    if (this.#empty) return undefined;
    const hash = ctx?.hash;
    const r = this.#hashBased && hash !== undefined ? Number(hash % 100n) : Math.floor(this.#random() * 100);
    const excluded = ctx?.excludedPriorities;
    const cumulative = excluded && excluded.size > 0 ? this.#excludedTable(excluded) : this.#cumulative;
    const n = this.#slots.length;
    let i = 0;
    while (i < cumulative.length - 1 && r >= cumulative[i]) i++;
    const degraded = i >= n;
    const slot = this.#slots[degraded ? i - n : i];
    let picker: HostPicker | undefined;
    if (slot.panic) picker = slot.all;
    else {
      const localities = degraded ? slot.degradedLocalities : slot.healthyLocalities;
      if (localities && !localities.empty) picker = localities.choose();
      picker ??= degraded ? slot.degraded : slot.healthy;
    }
    return picker?.pick(ctx);
  }
}

function cumulativeTable(load: PriorityLoad): Uint8Array {
  const n = load.healthy.length;
  const t = new Uint8Array(2 * n);
  let acc = 0;
  for (let i = 0; i < n; i++) t[i] = acc += load.healthy[i];
  for (let i = 0; i < n; i++) t[n + i] = acc += load.degraded[i];
  return t;
}

function localityChooser(all: readonly Host[], eligible: readonly Host[], priority: number, config: CommonLbConfig, makePicker: PickerFactory): LocalityChooser | undefined {
  if (eligible.length === 0) return undefined;
  const totals = new Map<string, number>();
  for (const h of all) {
    const k = localityKey(priority, h.locality);
    totals.set(k, (totals.get(k) ?? 0) + 1);
  }
  const groups = new Map<string, Host[]>();
  for (const h of eligible) {
    const k = localityKey(priority, h.locality);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(h);
  }
  const chooser = new LocalityChooser();
  for (const [k, hosts] of groups) {
    const weight = config.localityWeights.get(k) ?? 0;
    if (weight === 0) continue;
    const availability = Math.min(1, (config.overprovisioningFactor / 100) * (hosts.length / (totals.get(k) ?? hosts.length)));
    const effective = weight * availability;
    if (effective > 0) chooser.add(effective, makePicker(hosts, hosts.map(hostWeight)));
  }
  return chooser;
}

/** Host weights normalized within their locality, times the locality's share (Envoy's ring/maglev weighting). */
function localityFoldedWeights(hosts: readonly Host[], priority: number, config: CommonLbConfig): number[] {
  const hostSum = new Map<string, number>();
  for (const h of hosts) {
    const k = localityKey(priority, h.locality);
    hostSum.set(k, (hostSum.get(k) ?? 0) + hostWeight(h));
  }
  let localitySum = 0;
  for (const k of hostSum.keys()) localitySum += config.localityWeights.get(k) ?? 0;
  if (localitySum === 0) return hosts.map(hostWeight);
  return hosts.map((h) => {
    const k = localityKey(priority, h.locality);
    const lw = config.localityWeights.get(k) ?? 0;
    return (hostWeight(h) / (hostSum.get(k) as number)) * (lw / localitySum);
  });
}
