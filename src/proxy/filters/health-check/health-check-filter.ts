// envoy.filters.http.health_check: requests matching `headers` (typically :path /healthz) are
// health checks of this proxy. Not in pass-through mode the filter answers them itself: 200, or
// 503 with the LH response flag when the server is failing health checks (admin POST
// /healthcheck/fail) or a cluster of cluster_min_healthy_percentages has too few healthy hosts.
// In pass-through mode they go upstream; with cache_time, the upstream's answer is replayed
// locally for that long. While failing, health-check responses carry
// x-envoy-immediate-health-check-fail: true (downstream Envoys then eject this host at once).
import type { Reader } from '../../config/reader.ts';
import { ResponseFlag } from '../../response-flags.ts';
import { readHeaderMatcher, type HeaderMatcher } from '../../routing/header-matcher.ts';
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import { FilterStatus, type HttpFilter, type HttpFilterFactory, type RequestHead, type ResponseHead, type ServerState, type StreamCallbacks } from '../filter.ts';
import { registerHttpFilter } from '../registry.ts';

export const HEALTH_CHECK_FILTER_NAME = 'envoy.filters.http.health_check';
export const HEALTH_CHECK_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck';

/** The upstream's last answer in pass-through mode with cache_time. */
interface CachedAnswer {
  status: number;
  degraded: boolean;
  until: number;
}

export interface HealthCheckConfig {
  readonly passThrough: boolean;
  readonly headers: readonly HeaderMatcher[];
  readonly cacheTimeMs: number;
  readonly minHealthy: ReadonlyMap<string, number>;
  readonly server: ServerState;
  readonly clusters: ClusterManager;
  /** Shared by the streams of this filter config (Envoy's cache manager). */
  readonly cache: { answer: CachedAnswer | undefined };
}

function readConfig(r: Reader, server: ServerState, clusters: ClusterManager): HealthCheckConfig {
  if (!r.has('pass_through_mode')) r.issues.error(r.at('pass_through_mode'), 'pass_through_mode is required (true: health checks go upstream; false: the filter answers them)');
  const passThrough = r.bool('pass_through_mode', false);
  const headers = r.objs('headers').map((h) => {
    const m = readHeaderMatcher(h);
    h.done();
    return m;
  });
  const cacheTimeMs = r.durationMs('cache_time', 0);
  const minHealthy = new Map<string, number>();
  const pct = r.obj('cluster_min_healthy_percentages');
  if (pct) {
    for (const name of Object.keys(pct.raw)) {
      const p = pct.obj(name);
      const v = p?.num('value', 0) ?? 0;
      if (!(v >= 0 && v <= 100)) pct.issues.error(`${pct.at(name)}.value`, `a percentage from 0 to 100, got ${v}`);
      p?.done();
      minHealthy.set(name, v);
    }
  }
  r.done();
  return { passThrough, headers, cacheTimeMs, minHealthy, server, clusters, cache: { answer: undefined } };
}

/** Envoy's verdict from cluster_min_healthy_percentages: undefined when every cluster is healthy enough. */
function clustersVerdict(c: HealthCheckConfig): string | undefined {
  for (const [name, min] of c.minHealthy) {
    const cluster = c.clusters.get(name);
    if (!cluster) return 'health_check_no_cluster_found';
    const total = cluster.membershipTotal;
    if (total === 0) {
      if (min === 0) continue;
      return 'health_check_failed_cluster_empty';
    }
    if (100 * cluster.membershipHealthy < total * min) return 'health_check_failed_cluster_unhealthy';
  }
  return undefined;
}

class HealthCheckFilter implements HttpFilter {
  private readonly c: HealthCheckConfig;
  private readonly cb: StreamCallbacks;
  private isHealthCheck = false;

  constructor(c: HealthCheckConfig, cb: StreamCallbacks) {
    this.c = c;
    this.cb = cb;
  }

  decodeHeaders(head: RequestHead): FilterStatus {
    const c = this.c;
    for (const m of c.headers) if (!m.match(head)) return FilterStatus.Continue;
    this.isHealthCheck = true;
    this.cb.streamInfo.healthCheck = true;
    if (c.server.healthCheckFailed) return this.reply(503, 'health_check_failed', false);
    if (c.passThrough) {
      const a = c.cache.answer;
      if (c.cacheTimeMs > 0 && a && a.until > Date.now()) return this.reply(a.status, 'health_check_cached', a.degraded);
      return FilterStatus.Continue;
    }
    const failed = clustersVerdict(c);
    if (failed) return this.reply(503, failed, false);
    return this.reply(200, c.minHealthy.size ? 'health_check_cluster_healthy' : 'health_check_ok', false);
  }

  private reply(status: number, details: string, degraded: boolean): FilterStatus {
    const headers = degraded ? { 'x-envoy-degraded': '' } : undefined;
    this.cb.sendLocalReply({ status, details, headers, flags: status >= 200 && status < 300 ? 0 : ResponseFlag.FailedLocalHealthCheck });
    return FilterStatus.StopIteration;
  }

  encodeHeaders(head: ResponseHead): void {
    if (!this.isHealthCheck) return;
    const c = this.c;
    if (c.server.healthCheckFailed) head.headers['x-envoy-immediate-health-check-fail'] = 'true';
    else if (c.passThrough && c.cacheTimeMs > 0 && this.cb.streamInfo.responseCodeDetails === 'via_upstream') {
      c.cache.answer = { status: head.status, degraded: head.headers['x-envoy-degraded'] !== undefined, until: Date.now() + c.cacheTimeMs };
    }
  }
}

export const healthCheckFilterFactory: HttpFilterFactory<HealthCheckConfig> = {
  name: HEALTH_CHECK_FILTER_NAME,
  typeUrls: [HEALTH_CHECK_TYPE],
  compile: (r, ctx) => readConfig(r, ctx.server, ctx.clusters),
  create: (c, cb) => new HealthCheckFilter(c, cb),
};

export function setup(): void {
  registerHttpFilter(healthCheckFilterFactory);
}
