// Outlier detection (Envoy's cluster outlier_detection): passive health from real traffic.
//
//   const od = OutlierDetector.fromCluster(cluster, hosts, { stats, prefix: 'cluster.<name>.' });
//   od.on('change', (host, ejected) => rebuild the cluster's load balancer);
//   Router, after every upstream attempt:
//     od.reportResult(host, { status })                       response headers arrived (gRPC: status mapped from grpc-status)
//     od.reportResult(host, { localOrigin: 'connect_failed' | 'timeout' | 'reset' | 'success' | 'success_final' })
//   Cluster manager: od.updateHosts(hosts) on membership change; od.close() when the cluster goes.
//   Health checker: od.onActiveHealthCheckSuccess(host) (successful_active_health_check_uneject_host).
//
// Semantics (Envoy's): consecutive 5xx / gateway failures (502, 503, 504) / local-origin failures
// eject at once when the count reaches its threshold; success-rate and failure-percentage ejection
// run at every `interval` over that interval's traffic. Without split_external_local_origin_errors,
// local-origin failures count as 503 (504 for timeouts). An ejection happens only while fewer than
// max_ejection_percent of the hosts are ejected (so at least one host can always be ejected), and then
// only with probability enforcing_<kind>%. An ejected host carries HealthFlag.FailedOutlierCheck
// until the first sweep after min(base_ejection_time × ejections, max(max_ejection_time,
// base_ejection_time)) (+ jitter); each interval a host stays in service lowers its multiplier by one.
import { EventEmitter } from 'node:events';
import { HealthFlag, type Host } from './host.ts';
import { bool, compileOrThrow, durationMs, newIssues, object, uint, warnUnsupported, type ConfigIssues, type Json } from './lb/config-fields.ts';
import { LocalStats, type StatSink } from './circuit-breaker.ts';

export interface OutlierConfig {
  consecutive5xx: number;
  consecutiveGatewayFailure: number;
  consecutiveLocalOriginFailure: number;
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionTimeMs: number;
  maxEjectionTimeJitterMs: number;
  maxEjectionPercent: number;
  enforcingConsecutive5xx: number;
  enforcingConsecutiveGatewayFailure: number;
  enforcingConsecutiveLocalOriginFailure: number;
  enforcingSuccessRate: number;
  enforcingLocalOriginSuccessRate: number;
  successRateMinimumHosts: number;
  successRateRequestVolume: number;
  successRateStdevFactor: number;
  failurePercentageThreshold: number;
  enforcingFailurePercentage: number;
  enforcingFailurePercentageLocalOrigin: number;
  failurePercentageMinimumHosts: number;
  failurePercentageRequestVolume: number;
  splitExternalLocalOriginErrors: boolean;
  successfulActiveHealthCheckUnejectHost: boolean;
  alwaysEjectOneHost: boolean;
}

/**
 * 'success': the connection worked, a response code follows (HTTP); 'success_final': the
 * connection worked and nothing follows (TCP proxy) — it counts as a success (200) even without
 * split_external_local_origin_errors.
 */
export type LocalOriginResult = 'connect_failed' | 'timeout' | 'reset' | 'success' | 'success_final';

export interface OutlierResult {
  /** HTTP status of the upstream response (external origin). */
  status?: number;
  /** A result that originated in the proxy (connection, timeout, reset) rather than in the upstream. */
  localOrigin?: LocalOriginResult;
}

export const EjectionType = {
  Consecutive5xx: 'consecutive_5xx',
  ConsecutiveGatewayFailure: 'consecutive_gateway_failure',
  ConsecutiveLocalOriginFailure: 'consecutive_local_origin_failure',
  SuccessRate: 'success_rate',
  LocalOriginSuccessRate: 'local_origin_success_rate',
  FailurePercentage: 'failure_percentage',
  FailurePercentageLocalOrigin: 'failure_percentage_local_origin',
} as const;
export type EjectionType = (typeof EjectionType)[keyof typeof EjectionType];

const FIELDS = [
  'consecutive_5xx', 'interval', 'base_ejection_time', 'max_ejection_percent', 'enforcing_consecutive_5xx',
  'enforcing_success_rate', 'success_rate_minimum_hosts', 'success_rate_request_volume', 'success_rate_stdev_factor',
  'consecutive_gateway_failure', 'enforcing_consecutive_gateway_failure', 'split_external_local_origin_errors',
  'consecutive_local_origin_failure', 'enforcing_consecutive_local_origin_failure', 'enforcing_local_origin_success_rate',
  'failure_percentage_threshold', 'enforcing_failure_percentage', 'enforcing_failure_percentage_local_origin',
  'failure_percentage_minimum_hosts', 'failure_percentage_request_volume', 'max_ejection_time', 'max_ejection_time_jitter',
  'successful_active_health_check_uneject_host', 'always_eject_one_host',
];

/** The cluster's outlier_detection compiled, or undefined when the cluster has none. */
export function compileOutlierDetection(cluster: Json, issues: ConfigIssues): OutlierConfig | undefined {
  const path = 'outlier_detection';
  const o = object(cluster.outlier_detection, path, issues);
  if (!o) return undefined;
  warnUnsupported(o, FIELDS, path, issues);
  const pct = (key: string, dflt: number) => {
    const v = uint(o, key, path, issues, dflt);
    if (v > 100) {
      issues.errors.push(`${path}.${key}: must be between 0 and 100, got ${v}`);
      return dflt;
    }
    return v;
  };
  const intervalMs = durationMs(o, 'interval', path, issues, 10_000);
  if (intervalMs <= 0) issues.errors.push(`${path}.interval: must be greater than 0`);
  const baseEjectionTimeMs = durationMs(o, 'base_ejection_time', path, issues, 30_000);
  if (baseEjectionTimeMs <= 0) issues.errors.push(`${path}.base_ejection_time: must be greater than 0`);
  return {
    consecutive5xx: uint(o, 'consecutive_5xx', path, issues, 5),
    consecutiveGatewayFailure: uint(o, 'consecutive_gateway_failure', path, issues, 5),
    consecutiveLocalOriginFailure: uint(o, 'consecutive_local_origin_failure', path, issues, 5),
    intervalMs: intervalMs > 0 ? intervalMs : 10_000,
    baseEjectionTimeMs: baseEjectionTimeMs > 0 ? baseEjectionTimeMs : 30_000,
    maxEjectionTimeMs: durationMs(o, 'max_ejection_time', path, issues, 300_000),
    maxEjectionTimeJitterMs: durationMs(o, 'max_ejection_time_jitter', path, issues, 0),
    maxEjectionPercent: pct('max_ejection_percent', 10),
    enforcingConsecutive5xx: pct('enforcing_consecutive_5xx', 100),
    enforcingConsecutiveGatewayFailure: pct('enforcing_consecutive_gateway_failure', 0),
    enforcingConsecutiveLocalOriginFailure: pct('enforcing_consecutive_local_origin_failure', 100),
    enforcingSuccessRate: pct('enforcing_success_rate', 100),
    enforcingLocalOriginSuccessRate: pct('enforcing_local_origin_success_rate', 100),
    successRateMinimumHosts: uint(o, 'success_rate_minimum_hosts', path, issues, 5),
    successRateRequestVolume: uint(o, 'success_rate_request_volume', path, issues, 100),
    successRateStdevFactor: uint(o, 'success_rate_stdev_factor', path, issues, 1900) / 1000,
    failurePercentageThreshold: pct('failure_percentage_threshold', 85),
    enforcingFailurePercentage: pct('enforcing_failure_percentage', 0),
    enforcingFailurePercentageLocalOrigin: pct('enforcing_failure_percentage_local_origin', 0),
    failurePercentageMinimumHosts: uint(o, 'failure_percentage_minimum_hosts', path, issues, 5),
    failurePercentageRequestVolume: uint(o, 'failure_percentage_request_volume', path, issues, 50),
    splitExternalLocalOriginErrors: bool(o, 'split_external_local_origin_errors', path, issues, false),
    successfulActiveHealthCheckUnejectHost: bool(o, 'successful_active_health_check_uneject_host', path, issues, true),
    alwaysEjectOneHost: bool(o, 'always_eject_one_host', path, issues, false),
  };
}

/** Problems in a Cluster's outlier_detection (errors → NACK, warnings → log). */
export function checkOutlierDetection(cluster: Json): ConfigIssues {
  const issues = newIssues();
  compileOutlierDetection(cluster, issues);
  return issues;
}

class HostMonitor {
  consecutive5xx = 0;
  consecutiveGateway = 0;
  consecutiveLocal = 0;
  /** Ejection multiplier: ejections not yet forgiven. */
  ejections = 0;
  ejectedAt: number | undefined;
  ejectedForMs = 0;
  // Current interval's traffic (external origin; local origin when split).
  extTotal = 0;
  extSuccess = 0;
  localTotal = 0;
  localSuccess = 0;
  /** The last interval's success rates, percent (−1: not computed), for /clusters. */
  successRate = -1;
  localOriginSuccessRate = -1;
}

export interface OutlierDetectorOptions {
  stats?: StatSink;
  /** Stat name prefix, e.g. "cluster.outbound|9080||reviews.default.svc.cluster.local." */
  prefix?: string;
  /** Monotonic milliseconds (tests). */
  now?: () => number;
  random?: () => number;
  /** false: no interval timer; call sweep() yourself (tests). */
  timer?: boolean;
}

export interface OutlierDetectorEvents {
  change: [host: Host, ejected: boolean];
}

export class OutlierDetector extends EventEmitter<OutlierDetectorEvents> {
  readonly config: OutlierConfig;
  readonly #monitors = new Map<Host, HostMonitor>();
  readonly #stats: StatSink;
  readonly #prefix: string;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #active: { value: number };
  /** Hosts ejected now (max_ejection_percent); #active shows it unless the stats matcher rejects it. */
  #ejected = 0;
  #timer: NodeJS.Timeout | undefined;
  /** The last interval's external-origin success rate statistics (−1 when not computed), for /clusters. */
  lastSuccessRate = { average: -1, threshold: -1 };

  constructor(config: OutlierConfig, hosts: readonly Host[], options: OutlierDetectorOptions = {}) {
    super();
    this.config = config;
    this.#stats = options.stats ?? new LocalStats();
    this.#prefix = `${options.prefix ?? ''}outlier_detection.`;
    this.#now = options.now ?? (() => performance.now());
    this.#random = options.random ?? Math.random;
    this.#active = this.#stats.gauge(`${this.#prefix}ejections_active`);
    this.updateHosts(hosts);
    if (options.timer !== false) {
      this.#timer = setInterval(() => this.sweep(), config.intervalMs);
      this.#timer.unref();
    }
  }

  /** A detector for the cluster, or undefined when the cluster has no outlier_detection. Throws RigError on bad config. */
  static fromCluster(cluster: Json, hosts: readonly Host[], options: OutlierDetectorOptions = {}): OutlierDetector | undefined {
    const config = compileOrThrow(cluster, compileOutlierDetection);
    return config && new OutlierDetector(config, hosts, { prefix: `cluster.${String(cluster.name ?? '')}.`, ...options });
  }

  /** Hosts now in the cluster: new ones are tracked, removed ones forgotten. */
  updateHosts(hosts: readonly Host[]): void {
    const keep = new Set(hosts);
    for (const [h, m] of this.#monitors) {
      if (keep.has(h)) continue;
      if (m.ejectedAt !== undefined) this.#active.value = --this.#ejected;
      this.#monitors.delete(h);
    }
    for (const h of hosts) {
      if (this.#monitors.has(h)) continue;
      const m = new HostMonitor();
      if (h.healthFlags & HealthFlag.FailedOutlierCheck) {
        // A host carried over from a previous detector stays ejected for one base period.
        m.ejections = 1;
        m.ejectedAt = this.#now();
        m.ejectedForMs = this.config.baseEjectionTimeMs;
        this.#active.value = ++this.#ejected;
      }
      this.#monitors.set(h, m);
    }
  }

  get ejectedCount(): number {
    return this.#ejected;
  }

  isEjected(host: Host): boolean {
    return this.#monitors.get(host)?.ejectedAt !== undefined;
  }

  reportResult(host: Host, result: OutlierResult): void {
    const m = this.#monitors.get(host);
    if (!m) return;
    const c = this.config;
    if (result.localOrigin !== undefined) {
      if (c.splitExternalLocalOriginErrors) {
        m.localTotal++;
        if (result.localOrigin === 'success' || result.localOrigin === 'success_final') {
          m.localSuccess++;
          m.consecutiveLocal = 0;
        } else if (++m.consecutiveLocal === c.consecutiveLocalOriginFailure) {
          this.#eject(host, m, EjectionType.ConsecutiveLocalOriginFailure);
        }
        return;
      }
      if (result.localOrigin === 'success') return;
      this.#httpCode(host, m, result.localOrigin === 'success_final' ? 200 : result.localOrigin === 'timeout' ? 504 : 503);
      return;
    }
    if (result.status !== undefined) this.#httpCode(host, m, result.status);
  }

  #httpCode(host: Host, m: HostMonitor, status: number): void {
    const c = this.config;
    m.extTotal++;
    if (status >= 500 && status <= 599) {
      if ((status === 502 || status === 503 || status === 504) && ++m.consecutiveGateway === c.consecutiveGatewayFailure) {
        this.#eject(host, m, EjectionType.ConsecutiveGatewayFailure);
      }
      if (++m.consecutive5xx === c.consecutive5xx) this.#eject(host, m, EjectionType.Consecutive5xx);
    } else {
      m.extSuccess++;
      m.consecutive5xx = 0;
      m.consecutiveGateway = 0;
    }
  }

  #enforcing(type: EjectionType): number {
    const c = this.config;
    switch (type) {
      case EjectionType.Consecutive5xx: return c.enforcingConsecutive5xx;
      case EjectionType.ConsecutiveGatewayFailure: return c.enforcingConsecutiveGatewayFailure;
      case EjectionType.ConsecutiveLocalOriginFailure: return c.enforcingConsecutiveLocalOriginFailure;
      case EjectionType.SuccessRate: return c.enforcingSuccessRate;
      case EjectionType.LocalOriginSuccessRate: return c.enforcingLocalOriginSuccessRate;
      case EjectionType.FailurePercentage: return c.enforcingFailurePercentage;
      case EjectionType.FailurePercentageLocalOrigin: return c.enforcingFailurePercentageLocalOrigin;
    }
  }

  #eject(host: Host, m: HostMonitor, type: EjectionType): void {
    if (m.ejectedAt !== undefined) return;
    const c = this.config;
    const ejectedPercent = (100 * this.#ejected) / this.#monitors.size;
    if (!(ejectedPercent < c.maxEjectionPercent || (c.alwaysEjectOneHost && this.#ejected === 0))) {
      this.#stats.counter(`${this.#prefix}ejections_overflow`).value++;
      return;
    }
    if (type === EjectionType.Consecutive5xx || type === EjectionType.SuccessRate) this.#stats.counter(`${this.#prefix}ejections_total`).value++;
    this.#stats.counter(`${this.#prefix}ejections_detected_${type}`).value++;
    if (this.#random() * 100 >= this.#enforcing(type)) return;
    this.#stats.counter(`${this.#prefix}ejections_enforced_total`).value++;
    this.#stats.counter(`${this.#prefix}ejections_enforced_${type}`).value++;
    this.#active.value = ++this.#ejected;
    m.ejections++;
    m.ejectedAt = this.#now();
    const cap = Math.max(c.maxEjectionTimeMs, c.baseEjectionTimeMs);
    m.ejectedForMs = Math.min(c.baseEjectionTimeMs * m.ejections, cap) + this.#random() * c.maxEjectionTimeJitterMs;
    host.healthFlags |= HealthFlag.FailedOutlierCheck;
    this.emit('change', host, true);
  }

  #uneject(host: Host, m: HostMonitor): void {
    m.ejectedAt = undefined;
    m.consecutive5xx = 0;
    m.consecutiveGateway = 0;
    m.consecutiveLocal = 0;
    this.#active.value = --this.#ejected;
    host.healthFlags &= ~HealthFlag.FailedOutlierCheck;
    this.emit('change', host, false);
  }

  /** successful_active_health_check_uneject_host: an ejected host that passes an active check returns at once. */
  onActiveHealthCheckSuccess(host: Host): void {
    const m = this.#monitors.get(host);
    if (m?.ejectedAt !== undefined && this.config.successfulActiveHealthCheckUnejectHost) this.#uneject(host, m);
  }

  /** One interval: return hosts whose time is up, then success-rate and failure-percentage ejection. */
  sweep(): void {
    const now = this.#now();
    for (const [host, m] of this.#monitors) {
      if (m.ejectedAt !== undefined) {
        if (now - m.ejectedAt >= m.ejectedForMs) this.#uneject(host, m);
      } else if (m.ejections > 0) {
        m.ejections--;
      }
    }
    const split = this.config.splitExternalLocalOriginErrors;
    this.#hostSuccessRates(split);
    this.#successRate(false);
    this.#failurePercentage(false);
    if (split) {
      this.#successRate(true);
      this.#failurePercentage(true);
    }
    for (const m of this.#monitors.values()) {
      m.extTotal = m.extSuccess = m.localTotal = m.localSuccess = 0;
    }
  }

  /**
   * Each host's success rate over the interval, as Envoy's DetectorImpl::processSuccessRateEjections
   * records it for the admin: a host not ejected with at least the smaller of the success-rate and
   * failure-percentage request volumes; −1 otherwise (local origin: only when split).
   */
  #hostSuccessRates(split: boolean): void {
    const c = this.config;
    const min = Math.max(1, Math.min(c.successRateRequestVolume, c.failurePercentageRequestVolume));
    for (const m of this.#monitors.values()) {
      const ejected = m.ejectedAt !== undefined;
      m.successRate = !ejected && m.extTotal >= min ? (100 * m.extSuccess) / m.extTotal : -1;
      m.localOriginSuccessRate = split && !ejected && m.localTotal >= min ? (100 * m.localSuccess) / m.localTotal : -1;
    }
  }

  /** A host's last success rate, percent (−1: not computed), as /clusters shows it. */
  hostSuccessRate(host: Host, localOrigin: boolean): number {
    const m = this.#monitors.get(host);
    return m ? (localOrigin ? m.localOriginSuccessRate : m.successRate) : -1;
  }

  #volumes(local: boolean, minVolume: number): { host: Host; m: HostMonitor; rate: number }[] {
    const out: { host: Host; m: HostMonitor; rate: number }[] = [];
    for (const [host, m] of this.#monitors) {
      const total = local ? m.localTotal : m.extTotal;
      if (total === 0 || total < minVolume) continue;
      out.push({ host, m, rate: (100 * (local ? m.localSuccess : m.extSuccess)) / total });
    }
    return out;
  }

  #successRate(local: boolean): void {
    const c = this.config;
    const hosts = this.#volumes(local, c.successRateRequestVolume);
    if (hosts.length === 0 || hosts.length < c.successRateMinimumHosts) {
      if (!local) this.lastSuccessRate = { average: -1, threshold: -1 };
      return;
    }
    const mean = hosts.reduce((a, h) => a + h.rate, 0) / hosts.length;
    const variance = hosts.reduce((a, h) => a + (h.rate - mean) ** 2, 0) / hosts.length;
    const threshold = mean - c.successRateStdevFactor * Math.sqrt(variance);
    if (!local) this.lastSuccessRate = { average: mean, threshold };
    const type = local ? EjectionType.LocalOriginSuccessRate : EjectionType.SuccessRate;
    for (const h of hosts) if (h.rate < threshold) this.#eject(h.host, h.m, type);
  }

  #failurePercentage(local: boolean): void {
    const c = this.config;
    const hosts = this.#volumes(local, c.failurePercentageRequestVolume);
    if (hosts.length === 0 || hosts.length < c.failurePercentageMinimumHosts) return;
    const type = local ? EjectionType.FailurePercentageLocalOrigin : EjectionType.FailurePercentage;
    for (const h of hosts) if (100 - h.rate >= c.failurePercentageThreshold) this.#eject(h.host, h.m, type);
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.removeAllListeners();
  }
}
