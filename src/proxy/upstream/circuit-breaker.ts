// Circuit breakers (Envoy's cluster circuit_breakers and ResourceManager): per cluster and per
// routing priority (DEFAULT / HIGH), hard limits on concurrent connections, pending requests,
// requests, retries (or a retry budget) and connection pools. Nothing queues here: the caller asks
// before it creates something and releases it when that thing ends.
//
//   const cb = CircuitBreakers.fromCluster(cluster, stats);   // per Cluster config (throws RigError on bad config)
//   const rm = cb.forPriority(route.priority);                // 'DEFAULT' | 'HIGH' (RoutingPriority)
//   Router, per upstream request:   if (!rm.requests.tryAcquire()) → 503, flag UO, x-envoy-overloaded: true
//                                   … rm.requests.release() when the upstream request ends
//   Router, deciding a retry:       if (!rm.retries.tryAcquire()) → no retry (upstream_rq_retry_overflow)
//                                   … rm.retries.release() when the retried attempt answers or the stream ends
//   Conn pool, request must wait:   if (!rm.pending.allows()) → 503 UO, not retried (Envoy's newStreamImpl);
//                                   else rm.pending.acquire(), released when it leaves the queue
//   Conn pool, new connection:      if (!cb.canCreateConnection(host)) → upstream_cx_overflow, and no
//                                   connection unless the pool has none (Envoy's conn_pool_base); the
//                                   request waits for one of the pool's. cb.connectionOpened(host) as the
//                                   connection is made, cb.connectionClosed(host) when it fails or closes.
//                                   Both limits are over the cluster's connections, all hosts' pools and
//                                   tcp_proxy's together: max_connections for the cluster (DEFAULT
//                                   thresholds), per_host_thresholds.max_connections for each host.
//   Conn pool map, new pool:        rm.connectionPools.tryAcquire() (max_connection_pools)
//
// Stats (cluster prefix): upstream_cx_overflow, upstream_rq_pending_overflow (max_pending_requests
// and max_requests), upstream_rq_retry_overflow, upstream_cx_pool_overflow; gauges
// circuit_breakers.<default|high>.{cx_open,rq_pending_open,rq_open,rq_retry_open,cx_pool_open} and,
// with track_remaining, remaining_{cx,pending,rq,retries,cx_pools}.
import type { Host } from './host.ts';
import { compileOrThrow, list, newIssues, object, percent, string, uint, warnUnsupported, type ConfigIssues, type Json } from './lb/config-fields.ts';

/** The part of the proxy's Stats the breakers use (src/proxy/stats has the implementation). */
export interface StatSink {
  counter(name: string): { value: number };
  gauge(name: string): { value: number };
}

export class LocalStats implements StatSink {
  readonly values = new Map<string, { value: number }>();
  counter(name: string): { value: number } {
    let s = this.values.get(name);
    if (!s) this.values.set(name, (s = { value: 0 }));
    return s;
  }
  gauge(name: string): { value: number } {
    return this.counter(name);
  }
}

export const RESOURCE_PRIORITIES = ['DEFAULT', 'HIGH'] as const;
export type ResourcePriority = (typeof RESOURCE_PRIORITIES)[number];

const UNLIMITED = Number.MAX_SAFE_INTEGER;

export interface Thresholds {
  maxConnections: number;
  maxPendingRequests: number;
  maxRequests: number;
  maxRetries: number;
  maxConnectionPools: number;
  retryBudget?: { budgetPercent: number; minRetryConcurrency: number };
  trackRemaining: boolean;
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
  maxConnectionPools: UNLIMITED,
  trackRemaining: false,
};

/** One limited resource: a count, a limit, an "open" gauge and an optional remaining gauge. */
export class Resource {
  #count = 0;
  readonly #max: () => number;
  readonly #overflow: { value: number };
  readonly #open: { value: number };
  readonly #remaining: { value: number } | undefined;
  readonly #onChange: (() => void) | undefined;

  constructor(max: () => number, overflow: { value: number }, open: { value: number }, remaining: { value: number } | undefined, onChange?: () => void) {
    this.#max = max;
    this.#overflow = overflow;
    this.#open = open;
    this.#remaining = remaining;
    this.#onChange = onChange;
    this.#update();
  }

  get count(): number {
    return this.#count;
  }

  get max(): number {
    return this.#max();
  }

  get remaining(): number {
    return Math.max(0, this.#max() - this.#count);
  }

  /** Below the limit (Envoy's canCreate): nothing taken, nothing counted. */
  canCreate(): boolean {
    return this.#count < this.#max();
  }

  /** Below the limit; at it, counts an overflow (a check whose unit acquire() takes later). */
  allows(): boolean {
    if (this.canCreate()) return true;
    this.#overflow.value++;
    return false;
  }

  /** Takes one unit, or counts an overflow and returns false when the limit is reached. */
  tryAcquire(): boolean {
    if (!this.allows()) return false;
    this.acquire();
    return true;
  }

  /** Takes one unit whatever the limit (after allows(); a connection a pool makes with none open, over the limit). */
  acquire(): void {
    this.#count++;
    this.#update();
    this.#onChange?.();
  }

  release(): void {
    if (this.#count > 0) this.#count--;
    this.#update();
    this.#onChange?.();
  }

  /** Recomputes the gauges (the retry budget's limit moves with the request counts). */
  #update(): void {
    const max = this.#max();
    this.#open.value = this.#count >= max ? 1 : 0;
    if (this.#remaining) this.#remaining.value = Math.max(0, Math.min(max, UNLIMITED) - this.#count);
  }

  refresh(): void {
    this.#update();
  }
}

export class ResourceManager {
  readonly connections: Resource;
  readonly pending: Resource;
  readonly requests: Resource;
  readonly retries: Resource;
  readonly connectionPools: Resource;
  readonly thresholds: Thresholds;

  constructor(t: Thresholds, stats: StatSink, prefix: string, priority: ResourcePriority) {
    this.thresholds = t;
    const cb = `${prefix}circuit_breakers.${priority.toLowerCase()}.`;
    const remaining = (name: string) => (t.trackRemaining ? stats.gauge(cb + name) : undefined);
    const budget = t.retryBudget;
    // A retry budget's limit moves with the request counts: keep the retry gauges current.
    const onChange = budget ? () => this.retries.refresh() : undefined;
    this.connections = new Resource(() => t.maxConnections, stats.counter(`${prefix}upstream_cx_overflow`), stats.gauge(`${cb}cx_open`), remaining('remaining_cx'));
    this.pending = new Resource(() => t.maxPendingRequests, stats.counter(`${prefix}upstream_rq_pending_overflow`), stats.gauge(`${cb}rq_pending_open`), remaining('remaining_pending'), onChange);
    this.requests = new Resource(() => t.maxRequests, stats.counter(`${prefix}upstream_rq_pending_overflow`), stats.gauge(`${cb}rq_open`), remaining('remaining_rq'), onChange);
    this.connectionPools = new Resource(() => t.maxConnectionPools, stats.counter(`${prefix}upstream_cx_pool_overflow`), stats.gauge(`${cb}cx_pool_open`), remaining('remaining_cx_pools'));
    const retryMax = budget
      ? () => Math.max(budget.minRetryConcurrency, Math.floor((budget.budgetPercent / 100) * (this.requests.count + this.pending.count)))
      : () => t.maxRetries;
    this.retries = new Resource(retryMax, stats.counter(`${prefix}upstream_rq_retry_overflow`), stats.gauge(`${cb}rq_retry_open`), remaining('remaining_retries'));
  }
}

export class CircuitBreakers {
  readonly #byPriority: ResourceManager[];
  readonly perHostMaxConnections: number;
  readonly #hostConnections = new WeakMap<Host, number>();
  readonly #cxOverflow: { value: number };

  constructor(thresholds: Readonly<Record<ResourcePriority, Thresholds>>, perHostMaxConnections: number, stats: StatSink = new LocalStats(), prefix = '') {
    this.#cxOverflow = stats.counter(`${prefix}upstream_cx_overflow`);
    this.perHostMaxConnections = perHostMaxConnections;
    this.#byPriority = RESOURCE_PRIORITIES.map((p) => new ResourceManager(thresholds[p], stats, prefix, p));
  }

  /** From an Envoy Cluster's circuit_breakers; stats named `<prefix>upstream_cx_overflow` etc. (prefix e.g. "cluster.<name>."). */
  static fromCluster(cluster: Json, stats?: StatSink, prefix?: string): CircuitBreakers {
    const c = compileOrThrow(cluster, compileCircuitBreakers);
    return new CircuitBreakers(c.thresholds, c.perHostMaxConnections, stats, prefix ?? `cluster.${String(cluster.name ?? '')}.`);
  }

  /** The resources for a route's priority ('DEFAULT' unless the route says HIGH). */
  forPriority(priority: string | undefined = 'DEFAULT'): ResourceManager {
    return this.#byPriority[priority === 'HIGH' ? 1 : 0];
  }

  /**
   * Envoy's host canCreateConnection: the host is below per_host_thresholds.max_connections and
   * the cluster below max_connections (connections belong to DEFAULT); counts upstream_cx_overflow when not.
   */
  canCreateConnection(host: Host): boolean {
    if ((this.#hostConnections.get(host) ?? 0) < this.perHostMaxConnections && this.#byPriority[0].connections.canCreate()) return true;
    this.#cxOverflow.value++;
    return false;
  }

  /** A connection to `host` is being made (counted from its connect, as Envoy's pool client). */
  connectionOpened(host: Host): void {
    this.#byPriority[0].connections.acquire();
    this.#hostConnections.set(host, (this.#hostConnections.get(host) ?? 0) + 1);
  }

  /** A connection counted by connectionOpened failed or closed. */
  connectionClosed(host: Host): void {
    this.#byPriority[0].connections.release();
    const n = this.#hostConnections.get(host) ?? 0;
    if (n > 0) this.#hostConnections.set(host, n - 1);
  }
}

const THRESHOLD_FIELDS = ['priority', 'max_connections', 'max_pending_requests', 'max_requests', 'max_retries', 'retry_budget', 'track_remaining', 'max_connection_pools'];

function compileThresholds(o: Json, path: string, issues: ConfigIssues): Thresholds {
  warnUnsupported(o, THRESHOLD_FIELDS, path, issues);
  const t: Thresholds = {
    maxConnections: uint(o, 'max_connections', path, issues, DEFAULT_THRESHOLDS.maxConnections),
    maxPendingRequests: uint(o, 'max_pending_requests', path, issues, DEFAULT_THRESHOLDS.maxPendingRequests),
    maxRequests: uint(o, 'max_requests', path, issues, DEFAULT_THRESHOLDS.maxRequests),
    maxRetries: uint(o, 'max_retries', path, issues, DEFAULT_THRESHOLDS.maxRetries),
    maxConnectionPools: uint(o, 'max_connection_pools', path, issues, UNLIMITED),
    trackRemaining: o.track_remaining === true,
  };
  const rb = object(o.retry_budget, `${path}.retry_budget`, issues);
  if (rb) {
    warnUnsupported(rb, ['budget_percent', 'min_retry_concurrency'], `${path}.retry_budget`, issues);
    t.retryBudget = {
      budgetPercent: percent(rb, 'budget_percent', `${path}.retry_budget`, issues, 20),
      minRetryConcurrency: uint(rb, 'min_retry_concurrency', `${path}.retry_budget`, issues, 3),
    };
  }
  return t;
}

export function compileCircuitBreakers(cluster: Json, issues: ConfigIssues): { thresholds: Record<ResourcePriority, Thresholds>; perHostMaxConnections: number } {
  const path = 'circuit_breakers';
  const cb = object(cluster.circuit_breakers, path, issues);
  warnUnsupported(cb, ['thresholds', 'per_host_thresholds'], path, issues);
  const thresholds: Record<ResourcePriority, Thresholds> = { DEFAULT: { ...DEFAULT_THRESHOLDS }, HIGH: { ...DEFAULT_THRESHOLDS } };
  const seen = new Set<string>();
  list(cb?.thresholds, `${path}.thresholds`, issues).forEach((t, i) => {
    const p = `${path}.thresholds[${i}]`;
    const o = object(t, p, issues);
    if (!o) return;
    const priority = string(o, 'priority', p, issues) ?? 'DEFAULT';
    if (priority !== 'DEFAULT' && priority !== 'HIGH') {
      issues.errors.push(`${p}.priority: must be DEFAULT or HIGH, got ${priority}`);
      return;
    }
    if (seen.has(priority)) issues.errors.push(`${p}.priority: ${priority} thresholds given twice`);
    seen.add(priority);
    thresholds[priority] = compileThresholds(o, p, issues);
  });
  let perHostMaxConnections = UNLIMITED;
  list(cb?.per_host_thresholds, `${path}.per_host_thresholds`, issues).forEach((t, i) => {
    const p = `${path}.per_host_thresholds[${i}]`;
    const o = object(t, p, issues);
    if (!o) return;
    warnUnsupported(o, ['priority', 'max_connections'], p, issues);
    if ((string(o, 'priority', p, issues) ?? 'DEFAULT') === 'DEFAULT') perHostMaxConnections = uint(o, 'max_connections', p, issues, UNLIMITED);
  });
  return { thresholds, perHostMaxConnections };
}

/** Problems in a Cluster's circuit_breakers (errors → NACK, warnings → log). */
export function checkCircuitBreakers(cluster: Json): ConfigIssues {
  const issues = newIssues();
  compileCircuitBreakers(cluster, issues);
  return issues;
}
