// Circuit breakers as a cluster hook (cluster-hooks.ts): the router asks admit(high) before each
// upstream attempt and calls release(high) when it ends, and takes a retry unit with
// acquireRetry(high) when it decides a retry; connection pools ask canCreateConnection before they
// open one and count it (connectionOpened / connectionClosed), tcp_proxy asks admitConnection.
// Requests, pending requests and retries are counted per route priority (DEFAULT or HIGH
// thresholds); connections belong to the pools the priorities share: DEFAULT's limits.
//
// Mapping to Envoy's resources: every attempt takes a max_requests slot; a retry, from the moment
// it is decided until its attempt answers, a max_retries (or retry-budget) slot. For HTTP/1.1
// clusters an attempt beyond max_connections waits in its pool's queue (the cluster's pools hold
// max_connections connections together, one request each), so it also takes a
// max_pending_requests slot until an earlier attempt finishes: attempts in flight never exceed
// max_connections + max_pending_requests. A tunnel on an HTTP/2 cluster's pool holds a max_pending_requests slot
// while it waits for a connection (admitPending, pooled-connect.ts). Refusals count upstream_rq_pending_overflow / upstream_rq_retry_overflow
// here (the router must not count them again).
import type { ClusterHandle, ClusterHook, ClusterHookFactory } from './cluster-hooks.ts';
import type { Host } from './host.ts';
import { CircuitBreakers, RESOURCE_PRIORITIES, compileCircuitBreakers, type ResourceManager } from './circuit-breaker.ts';
import { AdmitRefusal, compileHookConfig, registerClusterHook } from './cluster-hooks.ts';

class CircuitBreakerHook implements ClusterHook {
  readonly #cb: CircuitBreakers;
  readonly #rm: ResourceManager;
  readonly #high: ResourceManager;
  readonly #queues: boolean;

  constructor(cb: CircuitBreakers, queues: boolean) {
    this.#cb = cb;
    this.#rm = cb.forPriority('DEFAULT');
    this.#high = cb.forPriority('HIGH');
    this.#queues = queues;
  }

  admit(high: boolean): number {
    const rm = high ? this.#high : this.#rm;
    if (!rm.requests.tryAcquire()) return AdmitRefusal.Requests;
    if (this.#queues && rm.requests.count > rm.thresholds.maxConnections && !rm.pending.tryAcquire()) {
      rm.requests.release();
      return AdmitRefusal.Pending;
    }
    return 0;
  }

  release(high: boolean): void {
    const rm = high ? this.#high : this.#rm;
    rm.requests.release();
    // A finished attempt frees a connection for the oldest queued one.
    if (this.#queues && rm.pending.count > 0) rm.pending.release();
  }

  admitPending(high: boolean): boolean {
    return (high ? this.#high : this.#rm).pending.tryAcquire();
  }

  releasePending(high: boolean): void {
    (high ? this.#high : this.#rm).pending.release();
  }

  acquireRetry(high: boolean): boolean {
    return (high ? this.#high : this.#rm).retries.tryAcquire();
  }

  releaseRetry(high: boolean): void {
    (high ? this.#high : this.#rm).retries.release();
  }

  admitConnection(host: Host): boolean {
    if (!this.#cb.canCreateConnection(host)) return false;
    this.#cb.connectionOpened(host);
    return true;
  }

  canCreateConnection(host: Host): boolean {
    return this.#cb.canCreateConnection(host);
  }

  connectionOpened(host: Host): void {
    this.#cb.connectionOpened(host);
  }

  connectionClosed(host: Host): void {
    this.#cb.connectionClosed(host);
  }

  adminInfo(): string[] {
    const lines: string[] = [];
    for (const p of RESOURCE_PRIORITIES) {
      const t = this.#cb.forPriority(p).thresholds;
      const prefix = `${p.toLowerCase()}_priority::`;
      lines.push(`${prefix}max_connections::${t.maxConnections}`, `${prefix}max_pending_requests::${t.maxPendingRequests}`, `${prefix}max_requests::${t.maxRequests}`, `${prefix}max_retries::${t.maxRetries}`);
    }
    return lines;
  }

  stop(): void {}
}

export const circuitBreakerHookFactory: ClusterHookFactory = {
  name: 'envoy.circuit_breakers',
  create(cluster: ClusterHandle, issues) {
    const c = compileHookConfig(cluster, issues, compileCircuitBreakers);
    if (!c) return undefined;
    const cb = new CircuitBreakers(c.thresholds, c.perHostMaxConnections, cluster.stats, cluster.statPrefix);
    return new CircuitBreakerHook(cb, !cluster.config.http2);
  },
};

export function setup(): void {
  registerClusterHook(circuitBreakerHookFactory);
}
