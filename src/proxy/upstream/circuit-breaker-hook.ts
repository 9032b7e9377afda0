// Circuit breakers as a cluster hook (cluster-hooks.ts): the router asks admit(high) before each
// upstream attempt and calls release(high) when it ends, and takes a retry unit with
// acquireRetry(high) when it decides a retry; connection pools ask canCreateConnection before they
// open one and count it (connectionOpened / connectionClosed), tcp_proxy asks admitConnection.
// Requests, pending requests and retries are counted per route priority (DEFAULT or HIGH
// thresholds); connections belong to the pools the priorities share: DEFAULT's limits.
//
// Mapping to Envoy's resources: every attempt takes a max_requests slot; a retry, from the moment
// it is decided until its attempt answers, a max_retries (or retry-budget) slot. A request waiting
// in a pool for a connection takes a max_pending_requests slot, as Envoy's pending stream: in an
// HTTP/1.1 pool (canQueue / queued, asked by the pool through the cluster's gate, cluster.ts) and,
// for a tunnel, in an HTTP/2 pool (admitPending, pooled-connect.ts). Refusals count
// upstream_rq_pending_overflow / upstream_rq_retry_overflow here (the router must not count them again).
import type { ClusterHandle, ClusterHook, ClusterHookFactory } from './cluster-hooks.ts';
import type { Host } from './host.ts';
import { CircuitBreakers, RESOURCE_PRIORITIES, compileCircuitBreakers, type ResourceManager } from './circuit-breaker.ts';
import { AdmitRefusal, compileHookConfig, registerClusterHook } from './cluster-hooks.ts';

class CircuitBreakerHook implements ClusterHook {
  readonly #cb: CircuitBreakers;
  readonly #rm: ResourceManager;
  readonly #high: ResourceManager;

  constructor(cb: CircuitBreakers) {
    this.#cb = cb;
    this.#rm = cb.forPriority('DEFAULT');
    this.#high = cb.forPriority('HIGH');
  }

  /** The thresholds of a route priority. */
  #of(high: boolean): ResourceManager {
    return high ? this.#high : this.#rm;
  }

  admit(high: boolean): number {
    return this.#of(high).requests.tryAcquire() ? 0 : AdmitRefusal.Requests;
  }

  release(high: boolean): void {
    this.#of(high).requests.release();
  }

  canQueue(high: boolean): boolean {
    return this.#of(high).pending.allows();
  }

  queued(high: boolean): void {
    this.#of(high).pending.acquire();
  }

  admitPending(high: boolean): boolean {
    return this.#of(high).pending.tryAcquire();
  }

  releasePending(high: boolean): void {
    this.#of(high).pending.release();
  }

  acquireRetry(high: boolean): boolean {
    return this.#of(high).retries.tryAcquire();
  }

  releaseRetry(high: boolean): void {
    this.#of(high).retries.release();
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
    return new CircuitBreakerHook(cb);
  },
};

export function setup(): void {
  registerClusterHook(circuitBreakerHookFactory);
}
