// Active health checking (Envoy's cluster health_checks): one HealthChecker per cluster probes
// every host on its own timer (HTTP, TCP or gRPC health protocol) and keeps
// HealthFlag.FailedActiveHc / PendingActiveHc current.
//
//   const hc = HealthChecker.fromCluster(cluster, hosts, { stats, prefix: 'cluster.<name>.',
//                                          onSuccess: (h) => outlier?.onActiveHealthCheckSuccess(h) });
//   hc?.on('change', (host, healthy) => rebuild the cluster's load balancer);
//   Cluster manager: hc.updateHosts(hosts) on membership change; hc.markTraffic() once the cluster
//   made its first upstream connection; hc.close() when the cluster goes.
//   Admin /clusters: healthFlagsString(host) (health-check-flags.ts).
//
// Semantics (Envoy's): a host never checked before starts as /failed_active_hc/pending_active_hc
// and its first check decides (one success is enough). After that, healthy_threshold consecutive
// successes make it healthy, and unhealthy_threshold consecutive network failures (connect error,
// timeout, retriable status) make it unhealthy, while an "active" failure (unexpected HTTP status,
// gRPC NOT_SERVING, TCP payload mismatch) makes it unhealthy at once. The next check is due after
// no_traffic_interval (no_traffic_healthy_interval for healthy hosts) until the cluster has seen
// traffic, then healthy_edge_interval / unhealthy_edge_interval right after a transition,
// unhealthy_interval while unhealthy, interval otherwise; plus random interval_jitter and
// interval_jitter_percent. The first check runs after a random initial_jitter. Checks connect with
// the cluster's transport socket (health-check-transport.ts: TLS, PROXY header, tcp_keepalive,
// upstream_bind_config),
// chosen by transport_socket_match_criteria when set, offering tls_options.alpn_protocols.
import { EventEmitter } from 'node:events';
import { HealthFlag, type Host } from './host.ts';
import { compileOrThrow, durationMs, list, newIssues, object, uint, warnUnsupported, type ConfigIssues, type Json } from './lb/config-fields.ts';
import { LocalStats, type StatSink } from './circuit-breaker.ts';
import { CheckResult, type Prober } from './health-check-prober.ts';
import { HttpProber, compileHttpCheck } from './health-check-http.ts';
import { TcpProber, compileTcpCheck } from './health-check-tcp.ts';
import { GrpcProber, compileGrpcCheck } from './health-check-grpc.ts';
import type { TcpKeepalive } from '../network/tcp-keepalive.ts';
import { CheckConnector, type CheckTransportSource } from './health-check-transport.ts';

export { healthFlagsString } from './health-check-flags.ts';
export { CheckResult } from './health-check-prober.ts';

export interface HealthCheckConfig {
  timeoutMs: number;
  intervalMs: number;
  initialJitterMs: number;
  intervalJitterMs: number;
  intervalJitterPercent: number;
  unhealthyThreshold: number;
  healthyThreshold: number;
  noTrafficIntervalMs: number;
  noTrafficHealthyIntervalMs: number;
  unhealthyIntervalMs: number;
  unhealthyEdgeIntervalMs: number;
  healthyEdgeIntervalMs: number;
  /** tls_options.alpn_protocols: offered instead of the TLS context's when not empty. */
  alpn: readonly string[];
  /** transport_socket_match_criteria: picks the transport_socket_matches entry instead of the endpoint's metadata. */
  matchCriteria: Record<string, unknown> | undefined;
  makeProber(connector: CheckConnector): Prober;
}

const FIELDS = [
  'timeout', 'interval', 'initial_jitter', 'interval_jitter', 'interval_jitter_percent', 'unhealthy_threshold',
  'healthy_threshold', 'reuse_connection', 'http_health_check', 'tcp_health_check', 'grpc_health_check',
  'no_traffic_interval', 'no_traffic_healthy_interval', 'unhealthy_interval', 'unhealthy_edge_interval', 'healthy_edge_interval',
  'tls_options', 'transport_socket_match_criteria',
];

export function compileHealthChecks(cluster: Json, issues: ConfigIssues): HealthCheckConfig | undefined {
  const all = list(cluster.health_checks, 'health_checks', issues);
  if (all.length === 0) return undefined;
  if (all.length > 1) issues.errors.push('health_checks: only one health check per cluster is supported (as in Envoy)');
  const path = 'health_checks[0]';
  const o = object(all[0], path, issues);
  if (!o) return undefined;
  warnUnsupported(o, FIELDS, path, issues);
  for (const required of ['timeout', 'interval', 'unhealthy_threshold', 'healthy_threshold']) {
    if (o[required] === undefined || o[required] === null) issues.errors.push(`${path}.${required}: required`);
  }
  const intervalMs = durationMs(o, 'interval', path, issues, 0);
  const timeoutMs = durationMs(o, 'timeout', path, issues, 0);
  if (o.interval !== undefined && intervalMs <= 0) issues.errors.push(`${path}.interval: must be greater than 0`);
  if (o.timeout !== undefined && timeoutMs <= 0) issues.errors.push(`${path}.timeout: must be greater than 0`);
  const unhealthyIntervalMs = durationMs(o, 'unhealthy_interval', path, issues, intervalMs);
  const noTrafficIntervalMs = durationMs(o, 'no_traffic_interval', path, issues, 60_000);
  const name = String(cluster.name ?? '');
  const kinds = ['http_health_check', 'tcp_health_check', 'grpc_health_check'].filter((k) => o[k] !== undefined && o[k] !== null);
  if (kinds.length !== 1) issues.errors.push(`${path}: needs exactly one of http_health_check, tcp_health_check, grpc_health_check`);
  let makeProber: HealthCheckConfig['makeProber'] = () => {
    throw new Error('no health checker');
  };
  const kind = kinds[0];
  const sub = object(o[kind], `${path}.${kind}`, issues) ?? {};
  if (kind === 'http_health_check') {
    const c = compileHttpCheck(sub, `${path}.${kind}`, name, issues);
    makeProber = (connector) => new HttpProber(c, connector);
  } else if (kind === 'tcp_health_check') {
    const c = compileTcpCheck(sub, `${path}.${kind}`, issues);
    makeProber = (connector) => new TcpProber(c, connector);
  } else if (kind === 'grpc_health_check') {
    const c = compileGrpcCheck(sub, `${path}.${kind}`, name, issues);
    makeProber = (connector) => new GrpcProber(c, connector);
  }
  const tlsOptions = object(o.tls_options, `${path}.tls_options`, issues);
  if (tlsOptions) warnUnsupported(tlsOptions, ['alpn_protocols'], `${path}.tls_options`, issues);
  const alpn = list(tlsOptions?.alpn_protocols, `${path}.tls_options.alpn_protocols`, issues).flatMap((a, i) => {
    if (typeof a === 'string' && a) return [a];
    issues.errors.push(`${path}.tls_options.alpn_protocols[${i}]: expected a protocol name such as "h2", got ${JSON.stringify(a)}`);
    return [];
  });
  const matchCriteria = object(o.transport_socket_match_criteria, `${path}.transport_socket_match_criteria`, issues);
  return {
    timeoutMs,
    intervalMs,
    initialJitterMs: durationMs(o, 'initial_jitter', path, issues, 0),
    intervalJitterMs: durationMs(o, 'interval_jitter', path, issues, 0),
    intervalJitterPercent: uint(o, 'interval_jitter_percent', path, issues, 0),
    unhealthyThreshold: Math.max(1, uint(o, 'unhealthy_threshold', path, issues, 1)),
    healthyThreshold: Math.max(1, uint(o, 'healthy_threshold', path, issues, 1)),
    noTrafficIntervalMs,
    noTrafficHealthyIntervalMs: durationMs(o, 'no_traffic_healthy_interval', path, issues, noTrafficIntervalMs),
    unhealthyIntervalMs,
    unhealthyEdgeIntervalMs: durationMs(o, 'unhealthy_edge_interval', path, issues, unhealthyIntervalMs),
    healthyEdgeIntervalMs: durationMs(o, 'healthy_edge_interval', path, issues, intervalMs),
    alpn,
    matchCriteria,
    makeProber,
  };
}

/** Problems in a Cluster's health_checks (errors → NACK, warnings → log). */
export function checkHealthChecks(cluster: Json): ConfigIssues {
  const issues = newIssues();
  compileHealthChecks(cluster, issues);
  return issues;
}

/** Hosts some checker has already decided on: a replacement checker keeps their health. */
const decided = new WeakSet<Host>();

const Edge = { None: 0, ToHealthy: 1, ToUnhealthy: 2 } as const;

class HostState {
  readonly host: Host;
  timer: NodeJS.Timeout | undefined;
  successes = 0;
  failures = 0;
  edge: number = Edge.None;
  constructor(host: Host) {
    this.host = host;
  }
}

export interface HealthCheckerOptions {
  stats?: StatSink;
  /** Stat name prefix, e.g. "cluster.<name>." */
  prefix?: string;
  random?: () => number;
  /** Called after every successful check (outlier detection un-ejects on it). */
  onSuccess?: (host: Host) => void;
  /** Start as if the cluster already had traffic (no no_traffic_interval). */
  hasTraffic?: boolean;
  /** The cluster's upstream_connection_options.tcp_keepalive. */
  tcpKeepalive?: TcpKeepalive;
  /** The cluster's upstream_bind_config.source_address. */
  sourceAddress?: string;
  /** The cluster's transport sockets (TLS, PROXY wrapper); without it checks connect in plaintext. */
  transport?: CheckTransportSource;
}

export interface HealthCheckerEvents {
  change: [host: Host, healthy: boolean];
  /** After each check; for tests and event logs. */
  checked: [host: Host, result: CheckResult];
}

export class HealthChecker extends EventEmitter<HealthCheckerEvents> {
  readonly config: HealthCheckConfig;
  readonly #prober: Prober;
  readonly #states = new Map<Host, HostState>();
  readonly #random: () => number;
  readonly #onSuccess: ((host: Host) => void) | undefined;
  readonly #stats: { attempt: { value: number }; success: { value: number }; failure: { value: number }; networkFailure: { value: number }; healthy: { value: number } };
  #traffic: boolean;
  #closed = false;

  constructor(config: HealthCheckConfig, hosts: readonly Host[], options: HealthCheckerOptions = {}) {
    super();
    this.config = config;
    this.#prober = config.makeProber(new CheckConnector({ source: options.transport, matchCriteria: config.matchCriteria, alpn: config.alpn, keepalive: options.tcpKeepalive, sourceAddress: options.sourceAddress }));
    this.#random = options.random ?? Math.random;
    this.#onSuccess = options.onSuccess;
    this.#traffic = options.hasTraffic ?? false;
    const stats = options.stats ?? new LocalStats();
    const p = `${options.prefix ?? ''}health_check.`;
    this.#stats = {
      attempt: stats.counter(`${p}attempt`),
      success: stats.counter(`${p}success`),
      failure: stats.counter(`${p}failure`),
      networkFailure: stats.counter(`${p}network_failure`),
      healthy: stats.gauge(`${p}healthy`),
    };
    this.updateHosts(hosts);
  }

  /** A checker for the cluster, or undefined when it has no health_checks. Throws RigError on bad config. */
  static fromCluster(cluster: Json, hosts: readonly Host[], options: HealthCheckerOptions = {}): HealthChecker | undefined {
    const config = compileOrThrow(cluster, compileHealthChecks);
    return config && new HealthChecker(config, hosts, { prefix: `cluster.${String(cluster.name ?? '')}.`, ...options });
  }

  /** New hosts start pending (unless an earlier checker decided on them); removed ones stop being checked. */
  updateHosts(hosts: readonly Host[]): void {
    const keep = new Set(hosts);
    for (const [h, s] of this.#states) {
      if (keep.has(h)) continue;
      clearTimeout(s.timer);
      this.#prober.forget(h);
      this.#states.delete(h);
    }
    for (const h of hosts) {
      if (this.#states.has(h)) continue;
      if (!decided.has(h)) h.healthFlags |= HealthFlag.FailedActiveHc | HealthFlag.PendingActiveHc;
      const s = new HostState(h);
      this.#states.set(h, s);
      this.#schedule(s, this.#random() * this.config.initialJitterMs);
    }
    this.#updateHealthyGauge();
  }

  /** The cluster has carried traffic: leave no_traffic_interval. */
  markTraffic(): void {
    this.#traffic = true;
  }

  #updateHealthyGauge(): void {
    let n = 0;
    for (const h of this.#states.keys()) if (!(h.healthFlags & HealthFlag.FailedActiveHc)) n++;
    this.#stats.healthy.value = n;
  }

  #schedule(s: HostState, delayMs: number): void {
    if (this.#closed) return;
    s.timer = setTimeout(() => void this.#check(s), delayMs);
    s.timer.unref();
  }

  #nextDelay(s: HostState): number {
    const c = this.config;
    const unhealthy = (s.host.healthFlags & HealthFlag.FailedActiveHc) !== 0;
    let base: number;
    if (!this.#traffic) base = unhealthy ? c.noTrafficIntervalMs : c.noTrafficHealthyIntervalMs;
    else if (s.edge === Edge.ToHealthy) base = c.healthyEdgeIntervalMs;
    else if (s.edge === Edge.ToUnhealthy) base = c.unhealthyEdgeIntervalMs;
    else base = unhealthy ? c.unhealthyIntervalMs : c.intervalMs;
    s.edge = Edge.None;
    let jitter = 0;
    if (c.intervalJitterPercent > 0) jitter += this.#random() * ((base * c.intervalJitterPercent) / 100);
    if (c.intervalJitterMs > 0) jitter += this.#random() * c.intervalJitterMs;
    return base + jitter;
  }

  async #check(s: HostState): Promise<void> {
    s.timer = undefined;
    this.#stats.attempt.value++;
    const result = await this.#prober.probe(s.host, this.config.timeoutMs);
    if (this.#closed || this.#states.get(s.host) !== s) return;
    this.#apply(s, result);
    this.emit('checked', s.host, result);
    this.#schedule(s, this.#nextDelay(s));
  }

  #apply(s: HostState, result: CheckResult): void {
    const h = s.host;
    const pending = (h.healthFlags & HealthFlag.PendingActiveHc) !== 0;
    const failed = (h.healthFlags & HealthFlag.FailedActiveHc) !== 0;
    h.healthFlags &= ~HealthFlag.PendingActiveHc;
    decided.add(h);
    if (result === CheckResult.Success) {
      this.#stats.success.value++;
      s.failures = 0;
      s.successes++;
      if (failed && (pending || s.successes >= this.config.healthyThreshold)) {
        h.healthFlags &= ~HealthFlag.FailedActiveHc;
        s.edge = Edge.ToHealthy;
        this.#updateHealthyGauge();
        this.emit('change', h, true);
      }
      this.#onSuccess?.(h);
      return;
    }
    this.#stats.failure.value++;
    if (result !== CheckResult.ActiveFailure) this.#stats.networkFailure.value++;
    s.successes = 0;
    s.failures++;
    if (!failed && (result === CheckResult.ActiveFailure || s.failures >= this.config.unhealthyThreshold)) {
      h.healthFlags |= HealthFlag.FailedActiveHc;
      s.edge = Edge.ToUnhealthy;
      this.#updateHealthyGauge();
      this.emit('change', h, false);
    }
  }

  close(): void {
    this.#closed = true;
    for (const s of this.#states.values()) clearTimeout(s.timer);
    this.#states.clear();
    this.#prober.close();
    this.removeAllListeners();
  }
}
