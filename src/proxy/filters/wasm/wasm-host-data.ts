// What Proxy-Wasm plugins share across contexts and VMs of this process: shared data (key/value
// with compare-and-swap, one table per vm_id as in Envoy), shared queues (registered by a root
// context, which proxy_on_queue_ready wakes when an item arrives) and the metrics plugins define
// (stats named as in Envoy: wasmcustom.<name>, listed by the admin's /stats).
import type { Histogram, Stat, Stats } from '../../stats/stats.ts';
import { MetricType, WasmResult } from './wasm-abi.ts';

interface SharedValue {
  value: Buffer;
  cas: number;
}

const sharedData = new Map<string, Map<string, SharedValue>>();
let nextCas = 1;

export function getSharedData(vmId: string, key: string): SharedValue | undefined {
  return sharedData.get(vmId)?.get(key);
}

/** Sets `key`; with a non-zero `cas`, only when it is still the value's (else CasMismatch). */
export function setSharedData(vmId: string, key: string, value: Buffer, cas: number): number {
  let t = sharedData.get(vmId);
  if (!t) sharedData.set(vmId, (t = new Map()));
  const cur = t.get(key);
  if (cas !== 0 && cur && cur.cas !== cas) return WasmResult.CasMismatch;
  t.set(key, { value, cas: nextCas++ });
  return WasmResult.Ok;
}

export interface SharedQueue {
  readonly id: number;
  /** The registering root context is woken through this (proxy_on_queue_ready). */
  readonly ready: () => void;
  readonly items: Buffer[];
}

const queuesByName = new Map<string, SharedQueue>();
const queuesById = new Map<number, SharedQueue>();
let nextQueueId = 1;

/** Registers queue `name` of `vmId` (again: the same id, now woken through `ready`). */
export function registerSharedQueue(vmId: string, name: string, ready: () => void): number {
  const key = `${vmId}\0${name}`;
  const known = queuesByName.get(key);
  const q: SharedQueue = { id: known?.id ?? nextQueueId++, ready, items: known?.items ?? [] };
  queuesByName.set(key, q);
  queuesById.set(q.id, q);
  return q.id;
}

export function resolveSharedQueue(vmId: string, name: string): number | undefined {
  return queuesByName.get(`${vmId}\0${name}`)?.id;
}

export function sharedQueue(id: number): SharedQueue | undefined {
  return queuesById.get(id);
}

type Metric = { type: 0 | 1; stat: Stat } | { type: 2; stat: Histogram };

/** Metrics by id; an id is (index << 2 | type), as Envoy's. Defining a name twice gives the same id. */
export class WasmMetrics {
  private readonly stats: Stats;
  private readonly byName = new Map<string, number>();
  private readonly list: Metric[] = [];

  constructor(stats: Stats) {
    this.stats = stats;
  }

  define(type: number, name: string): number | undefined {
    if (type !== MetricType.Counter && type !== MetricType.Gauge && type !== MetricType.Histogram) return undefined;
    const key = `${type}:${name}`;
    const known = this.byName.get(key);
    if (known !== undefined) return known;
    const full = `wasmcustom.${name}`;
    const m: Metric = type === MetricType.Histogram ? { type, stat: this.stats.histogram(full) } : { type: type as 0 | 1, stat: type === MetricType.Counter ? this.stats.counter(full) : this.stats.gauge(full) };
    const id = (this.list.length << 2) | type;
    this.list.push(m);
    this.byName.set(key, id);
    return id;
  }

  private get(id: number): Metric | undefined {
    const m = this.list[id >>> 2];
    return m && m.type === (id & 3) ? m : undefined;
  }

  increment(id: number, by: number): number {
    const m = this.get(id);
    if (!m) return WasmResult.NotFound;
    if (m.type === MetricType.Histogram || (m.type === MetricType.Counter && by < 0)) return WasmResult.BadArgument;
    m.stat.value += by;
    return WasmResult.Ok;
  }

  record(id: number, value: number): number {
    const m = this.get(id);
    if (!m) return WasmResult.NotFound;
    if (m.type === MetricType.Histogram) m.stat.record(value);
    else m.stat.value = value;
    return WasmResult.Ok;
  }

  value(id: number): number | undefined {
    const m = this.get(id);
    return !m || m.type === MetricType.Histogram ? undefined : m.stat.value;
  }
}
