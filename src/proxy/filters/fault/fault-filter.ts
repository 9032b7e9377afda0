// envoy.filters.http.fault: injects a fixed (or header-given) delay, then an abort (HTTP status or
// gRPC status), each by percentage. Per-route config (Istio puts its VirtualService fault there)
// replaces the filter's own. Faults apply only to requests matching upstream_cluster, headers and
// downstream_nodes (x-envoy-downstream-service-node), while fewer than max_active_faults are active.
// Runtime keys (fault-config.ts) override the configured values; with x-envoy-downstream-service-cluster
// (unless disable_downstream_cluster_stats), fault.http.<cluster>.{delay.fixed_delay_percent,
// delay.fixed_duration_ms,abort.abort_percent,abort.http_status,abort.grpc_status} do, as in Envoy.
// Flags DI / FI; stats http.<stat_prefix>.fault.{delays_injected,aborts_injected,faults_overflow,
// active_faults} and, per x-envoy-downstream-service-cluster, http.<stat_prefix>.fault.<cluster>.*.
import { FAULT_TYPE } from '../../../envoy/index.ts';
import { sample, type FractionalPercent } from '../../config/fractional-percent.ts';
import { ResponseFlag } from '../../response-flags.ts';
import type { Stat, Stats } from '../../stats/stats.ts';
import { ActionKind } from '../../routing/route-config.ts';
import { FilterStatus, type HttpFilter, type HttpFilterFactory, type RequestHead, type StreamCallbacks } from '../filter.ts';
import { registerHttpFilter } from '../registry.ts';
import { readFaultSettings, type FaultSettings } from './fault-config.ts';
import { fractionOf, type EnvoyRuntime, type RuntimeFraction, type RuntimeUint } from '../../envoy-runtime/index.ts';

export const FAULT_FILTER_NAME = 'envoy.filters.http.fault';

export const FaultHeader = {
  Delay: 'x-envoy-fault-delay-request',
  DelayPercentage: 'x-envoy-fault-delay-request-percentage',
  Abort: 'x-envoy-fault-abort-request',
  AbortGrpc: 'x-envoy-fault-abort-grpc-request',
  AbortPercentage: 'x-envoy-fault-abort-request-percentage',
  DownstreamNode: 'x-envoy-downstream-service-node',
  DownstreamCluster: 'x-envoy-downstream-service-cluster',
} as const;

interface FaultStats {
  readonly delays: Stat;
  readonly aborts: Stat;
  readonly overflow: Stat;
  readonly active: Stat;
}

export interface FaultFilterConfig {
  readonly name: string;
  readonly settings: FaultSettings;
  readonly stats: FaultStats;
  readonly root: Stats;
  readonly prefix: string;
  readonly runtime: EnvoyRuntime;
}

function header(head: RequestHead, name: string): string | undefined {
  const v = head.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function uint(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,10}$/.test(v.trim())) return undefined;
  return Number(v.trim());
}

/** The percentage for a header-controlled fault: the header's numerator capped by the config's. */
function headerPercentage(head: RequestHead, name: string, configured: FractionalPercent): FractionalPercent {
  const n = uint(header(head, name));
  if (n === undefined) return configured;
  return { numerator: Math.min(n, configured.numerator), denominator: configured.denominator };
}

function routeTargets(cb: StreamCallbacks, cluster: string): boolean {
  const r = cb.matchedRoute();
  if (!r) return false;
  if (r.action === ActionKind.Weighted) return r.weighted.some((w) => w.name === cluster);
  return r.cluster === cluster;
}

class FaultFilter implements HttpFilter {
  private readonly c: FaultFilterConfig;
  private readonly cb: StreamCallbacks;
  private s: FaultSettings | undefined;
  private head: RequestHead | undefined;
  private timer: NodeJS.Timeout | undefined;
  private active = false;
  private downstreamCluster: string | undefined;

  constructor(c: FaultFilterConfig, cb: StreamCallbacks) {
    this.c = c;
    this.cb = cb;
  }

  decodeHeaders(head: RequestHead): FilterStatus {
    const s = this.cb.perRouteConfig<FaultSettings>(this.c.name) ?? this.c.settings;
    if ((!s.delay && !s.abort) || !this.applies(s, head)) return FilterStatus.Continue;
    this.s = s;
    this.head = head;
    if (s.downstreamClusterStats) this.downstreamCluster = header(head, FaultHeader.DownstreamCluster);
    const delayMs = this.delayMs(s, head);
    if (delayMs !== undefined) {
      if (!this.enter(s)) return FilterStatus.Continue;
      this.count('delays_injected', this.c.stats.delays);
      this.cb.streamInfo.responseFlags |= ResponseFlag.DelayInjected;
      this.timer = setTimeout(onDelayDone, delayMs, this);
      return FilterStatus.StopIteration;
    }
    return this.maybeAbort() ? FilterStatus.StopIteration : FilterStatus.Continue;
  }

  afterDelay(): void {
    this.timer = undefined;
    if (!this.maybeAbort()) this.cb.continueDecoding();
  }

  private applies(s: FaultSettings, head: RequestHead): boolean {
    if (s.upstreamCluster !== undefined && !routeTargets(this.cb, s.upstreamCluster)) return false;
    if (s.downstreamNodes) {
      const node = header(head, FaultHeader.DownstreamNode);
      if (node === undefined || !s.downstreamNodes.has(node)) return false;
    }
    for (const m of s.headers) if (!m.match(head)) return false;
    return true;
  }

  private delayMs(s: FaultSettings, head: RequestHead): number | undefined {
    const d = s.delay;
    if (!d) return undefined;
    let ms = d.fixedMs;
    let pct = d.percentage;
    if (d.fromHeader) {
      ms = uint(header(head, FaultHeader.Delay));
      if (ms === undefined) return undefined;
      pct = headerPercentage(head, FaultHeader.DelayPercentage, pct);
    }
    if (ms === undefined || !sample(this.percent(s.runtime.delayPercent, pct, 'delay.fixed_delay_percent'))) return undefined;
    ms = this.integer(s.runtime.delayMs, ms, 'delay.fixed_duration_ms');
    return ms > 0 ? ms : undefined;
  }

  /** featureEnabled's percentage: the downstream cluster's key when that header came, else the filter's key, else `configured`. */
  private percent(h: RuntimeFraction, configured: FractionalPercent, what: string): FractionalPercent {
    const dc = this.downstreamCluster;
    if (dc) return fractionOf(this.c.runtime.get(`fault.http.${dc}.${what}`), configured);
    return h.overridden ? h : configured;
  }

  /** getInteger: the downstream cluster's key, else the filter's key, else `configured`. */
  private integer(h: RuntimeUint, configured: number, what: string): number {
    const v = h.valueOr(configured);
    const dc = this.downstreamCluster;
    return dc ? (this.c.runtime.get(`fault.http.${dc}.${what}`)?.uint ?? v) : v;
  }

  /** Aborts when configured and sampled; true when a local reply was sent. */
  private maybeAbort(): boolean {
    const s = this.s!;
    const a = s.abort;
    if (!a) return false;
    const head = this.head!;
    let status = a.httpStatus;
    let grpc = a.grpcStatus;
    let pct = a.percentage;
    if (a.fromHeader) {
      status = uint(header(head, FaultHeader.Abort));
      if (status !== undefined && (status < 200 || status >= 600)) status = undefined;
      grpc = status === undefined ? uint(header(head, FaultHeader.AbortGrpc)) : undefined;
      if (status === undefined && grpc === undefined) return false;
      pct = headerPercentage(head, FaultHeader.AbortPercentage, pct);
    }
    if (!sample(this.percent(s.runtime.abortPercent, pct, 'abort.abort_percent')) || !this.enter(s)) return false;
    if (status !== undefined) {
      const rs = this.integer(s.runtime.abortHttpStatus, status, 'abort.http_status');
      if (rs >= 200 && rs < 600) status = rs;
    }
    if (grpc !== undefined) grpc = this.integer(s.runtime.abortGrpcStatus, grpc, 'abort.grpc_status');
    this.count('aborts_injected', this.c.stats.aborts);
    // A gRPC abort answers HTTP 200 with grpc-status, as Envoy does.
    this.cb.sendLocalReply({ status: grpc !== undefined ? 200 : (status ?? 503), grpcStatus: grpc, body: 'fault filter abort', flags: ResponseFlag.FaultInjected, details: 'fault_filter_abort' });
    return true;
  }

  /** Admits one more active fault (max_active_faults); false on overflow. */
  private enter(s: FaultSettings): boolean {
    if (this.active) return true;
    const g = this.c.stats.active;
    if (g.value >= s.runtime.maxActiveFaults.value) {
      this.c.stats.overflow.value++;
      return false;
    }
    g.value++;
    this.active = true;
    if (s.filterMetadata) {
      const state = (this.cb.streamInfo.filterState ??= {});
      state[this.c.name] = { ...(state[this.c.name] as object | undefined), ...s.filterMetadata };
    }
    return true;
  }

  private count(name: string, stat: Stat): void {
    stat.value++;
    if (this.downstreamCluster) this.c.root.counter(`${this.c.prefix}${this.downstreamCluster}.${name}`).value++;
  }

  onDestroy(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.active) {
      this.c.stats.active.value--;
      this.active = false;
    }
  }
}

function onDelayDone(f: FaultFilter): void {
  f.afterDelay();
}

export const faultFilterFactory: HttpFilterFactory<FaultFilterConfig, FaultSettings> = {
  name: FAULT_FILTER_NAME,
  typeUrls: [FAULT_TYPE],
  perRouteTypeUrls: [FAULT_TYPE],
  compile(r, ctx) {
    const settings = readFaultSettings(r, ctx.runtime);
    const prefix = `http.${ctx.statPrefix}.fault.`;
    const stats = {
      delays: ctx.stats.counter(`${prefix}delays_injected`),
      aborts: ctx.stats.counter(`${prefix}aborts_injected`),
      overflow: ctx.stats.counter(`${prefix}faults_overflow`),
      // Read back for max_active_faults: live even when the stats matcher rejects it.
      active: ctx.stats.stateGauge(`${prefix}active_faults`),
    };
    return { name: ctx.name, settings, stats, root: ctx.stats, prefix, runtime: ctx.runtime };
  },
  compilePerRoute: (r, ctx) => readFaultSettings(r, ctx.runtime),
  create: (c, cb) => new FaultFilter(c, cb),
};

export function setup(): void {
  registerHttpFilter(faultFilterFactory);
}
