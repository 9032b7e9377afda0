// Where circuit breakers, outlier detection and active health checks plug into a cluster.
// A ClusterHookFactory is registered by name (explicit setup(), see src/proxy/extensions.ts) and
// asked for a hook each time a cluster is built from its (CDS or static) config; it reads the
// cluster's raw JSON (circuit_breakers, outlier_detection, health_checks) itself and returns
// undefined when the cluster does not configure it.
import type net from 'node:net';
import type { Host } from './host.ts';
import type { StreamInfo } from '../stream-info.ts';
import type { ClusterConfig } from './cluster-config.ts';
import type { Stats } from '../stats/stats.ts';
import type { Issues } from '../config/reader.ts';
import type { SecretStore } from '../tls/secrets.ts';
import type { UpstreamTransport } from './upstream-proxy-protocol.ts';
import { newIssues, type ConfigIssues, type Json } from './lb/config-fields.ts';

/** How an upstream attempt ended, as outlier detection classifies it. */
export const UpstreamOutcome = {
  /** A response with a non-5xx status (or 5xx not considered an error). */
  Success: 0,
  /** HTTP 5xx from the upstream (status given). */
  Http5xx: 1,
  /** Connect failure / refused (local origin). */
  ConnectFailed: 2,
  /** Connection reset or terminated mid-request (local origin). */
  Reset: 3,
  /** Per-try or route timeout (local origin). */
  Timeout: 4,
} as const;

/**
 * Why admit() refused an attempt: max_requests, which Envoy's pool checks as it puts the stream on
 * the connection of the host it picked (the router charges that host an error).
 */
export const AdmitRefusal = {
  Requests: 1,
} as const;

/** What a hook sees of its cluster. */
export interface ClusterHandle {
  readonly name: string;
  readonly config: ClusterConfig;
  readonly stats: Stats;
  /** Stat names are `${statPrefix}<name>`, e.g. "cluster.foo.upstream_rq_pending_overflow". */
  readonly statPrefix: string;
  hosts(): readonly Host[];
  /** The transport socket (TLS, PROXY wrapper) the cluster's connections to a host with this metadata use. */
  transportFor(host: Pick<Host, 'metadata'>): UpstreamTransport;
  /** The SDS secrets its TLS contexts take their certificates and trust from. */
  readonly secrets: SecretStore;
  /** Call after changing Host.healthFlags: the load balancer is rebuilt over the new health. */
  healthChanged(): void;
}

export interface ClusterHook {
  /**
   * Before each upstream attempt (a retry's too) is sent: return 0 to admit, or why it is refused
   * (AdmitRefusal; → 503 UO, x-envoy-overloaded). Every admitted attempt gets exactly one release().
   * `high`: the route's priority is HIGH (the cluster's high-priority thresholds).
   */
  admit?(high: boolean): number;
  release?(high: boolean): void;
  /**
   * When the router decides to retry: takes one unit of max_retries / the retry budget, or returns
   * false (counted as upstream_rq_retry_overflow) and the last upstream answer stands, flagged UO.
   * As Envoy's RetryState, the unit is held through the backoff and the retried attempt, and given
   * back with releaseRetry() when that attempt answers, the next retry is decided or the stream ends.
   */
  acquireRetry?(high: boolean): boolean;
  releaseRetry?(high: boolean): void;
  /**
   * A request to an HTTP/1.1 pool finds no ready connection and would wait in it (Envoy's pending
   * stream): false when the pending requests of its priority are at max_pending_requests (counted
   * as upstream_rq_pending_overflow; Envoy's pool refuses it at once). queued() takes the slot once
   * it waits, releasePending() gives it back when it leaves the pool's queue.
   */
  canQueue?(high: boolean): boolean;
  queued?(high: boolean): void;
  /**
   * A pooled HTTP/2 stream (a tunnel) waits for a connection: takes a max_pending_requests slot
   * until it is on one (releasePending), or returns false (counted as upstream_rq_pending_overflow).
   */
  admitPending?(high: boolean): boolean;
  releasePending?(high: boolean): void;
  /** tcp_proxy, before connecting to `host`: false refuses (max_connections); else as connectionOpened. */
  admitConnection?(host: Host): boolean;
  /**
   * A connection pool, before it opens a connection to `host`: false when max_connections (the
   * cluster's or the host's) is reached, counted as upstream_cx_overflow.
   */
  canCreateConnection?(host: Host): boolean;
  /** A connection to `host` is being made; connectionClosed when it fails or closes. */
  connectionOpened?(host: Host): void;
  connectionClosed?(host: Host): void;
  /** Each attempt's result per host (outlier detection). */
  onResult?(host: Host, outcome: number, status: number): void;
  /** EDS/DNS changed the host set (hosts keep identity by key across updates). */
  onHostsChanged?(hosts: readonly Host[]): void;
  /**
   * Upstream network filter (Cluster.filters) on a new tcp_proxy connection, before bytes are
   * relayed: may write to and read from the socket (Istio's metadata exchange preamble) and fill
   * `info` (upstreamPeer). A rejection closes the connection.
   */
  onUpstreamConnection?(socket: net.Socket, info: StreamInfo): Promise<void>;
  /** Lines for admin /clusters (e.g. "outlier::success_rate_ejection_threshold::-1"). */
  adminInfo?(): string[];
  /** The cluster was replaced or removed: stop timers and sockets. */
  stop(): void;
}

export interface ClusterHookFactory {
  readonly name: string;
  create(cluster: ClusterHandle, issues: Issues): ClusterHook | undefined;
}

/**
 * Runs `compile` over the cluster's raw config and reports its errors and warnings under
 * "cluster <name>"; undefined when there were errors (the hook is then not created).
 */
export function compileHookConfig<T>(cluster: ClusterHandle, issues: Issues, compile: (cluster: Json, issues: ConfigIssues) => T): T | undefined {
  const path = `cluster ${cluster.name}`;
  const local = newIssues();
  const config = compile(cluster.config.raw, local);
  for (const e of local.errors) issues.error(path, e);
  for (const w of local.warnings) issues.warn(path, w);
  return local.errors.length > 0 ? undefined : config;
}

const factories = new Map<string, ClusterHookFactory>();

export function registerClusterHook(f: ClusterHookFactory): void {
  factories.set(f.name, f);
}

export function clusterHookFactories(): Iterable<ClusterHookFactory> {
  return factories.values();
}
