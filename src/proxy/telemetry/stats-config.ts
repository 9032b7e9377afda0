// istio.stats configuration: TypedStruct type_url stats.PluginConfig (Istio's), value
//   { reporter?: "CLIENT"|"SERVER"|"SERVER_GATEWAY"  (default: from the listener direction),
//     metrics?: [{ name?: "requests_total"|…  (empty: every metric), drop?: bool,
//                  tags_to_remove?: [label…], dimensions?: { label: "<CEL expression>" } }],
//     disable_host_header_fallback?: bool,
//     tcp_reporting_duration?: "15s"  (TCP byte counts of open connections reported this often; 0s: at the end only),
//     rigging_trust_domain?: "cluster.local" }   (Rigging: to name the local SPIFFE principal)
// compiled once per listener update. Shared by the HTTP filter and the network (TCP) filter.
import type { Reader } from '../config/reader.ts';
import type { StreamInfo } from '../stream-info.ts';
import { GRPC_METRICS, HTTP_METRICS, TCP_METRICS, type MetricName, type MetricOverride, type Reporter } from './istio-metrics.ts';
import { compileCel } from './cel-attributes.ts';
import { typedStructValue } from './typed-struct.ts';
import type { ProxyTelemetry } from './proxy-telemetry.ts';

export const STATS_FILTER = 'istio.stats';
export const STATS_PLUGIN_TYPE = 'type.googleapis.com/stats.PluginConfig';
/** Istio's default tcp_reporting_duration. */
export const TCP_REPORT_DEFAULT_MS = 15_000;
const ALL: readonly MetricName[] = [...HTTP_METRICS, ...GRPC_METRICS, ...TCP_METRICS];

export interface StatsConfig {
  readonly reporter: Reporter;
  readonly trustDomain: string;
  readonly overrides: ReadonlyMap<MetricName, MetricOverride>;
  /** Some metric has CEL dimensions: labels are computed per request. */
  readonly dynamic: boolean;
  /** Istio's disable_host_header_fallback: no destination service from the Host header. */
  readonly noHostFallback: boolean;
  /** tcp_reporting_duration (Telemetry reportingInterval): period of TCP byte reports while a connection lives; 0 = at its end only. */
  readonly tcpReportMs: number;
  readonly telemetry: ProxyTelemetry;
}

export function compileStatsConfig(r: Reader, direction: StreamInfo['direction'], telemetry: ProxyTelemetry): StatsConfig {
  const v = typedStructValue(r, [STATS_PLUGIN_TYPE], STATS_FILTER);
  let reporter: Reporter = direction === 'inbound' ? 'destination' : 'source';
  const overrides = new Map<MetricName, { drop: boolean; remove: Set<string>; dimensions: [string, ReturnType<typeof compileCel>][] }>();
  let trustDomain = '';
  let noHostFallback = false;
  let tcpReportMs = TCP_REPORT_DEFAULT_MS;
  if (v) {
    tcpReportMs = v.durationMs('tcp_reporting_duration', TCP_REPORT_DEFAULT_MS);
    const rep = v.str('reporter');
    if (rep === 'SERVER' || rep === 'SERVER_GATEWAY') reporter = 'destination';
    else if (rep === 'CLIENT') reporter = 'source';
    else if (rep) v.issues.error(v.at('reporter'), `reporter must be CLIENT, SERVER or SERVER_GATEWAY, got ${rep}`);
    trustDomain = v.str('rigging_trust_domain');
    noHostFallback = v.bool('disable_host_header_fallback', false);
    for (const m of v.objs('metrics')) {
      const name = m.str('name');
      if (name && !ALL.includes(name as MetricName)) {
        m.issues.error(m.at('name'), `unknown metric ${name}; Istio's standard metrics are ${ALL.join(', ')} (custom metric definitions are not supported)`);
        m.accept(...Object.keys(m.raw));
        continue;
      }
      const drop = m.bool('drop', false);
      const remove = m.strs('tags_to_remove');
      const dims: [string, ReturnType<typeof compileCel>][] = [];
      const d = m.obj('dimensions');
      for (const [label, expr] of Object.entries(d?.raw ?? {})) {
        if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(label)) {
          m.issues.error(`${m.at('dimensions')}.${label}`, 'not a valid Prometheus label name');
          continue;
        }
        try {
          dims.push([label, compileCel(String(expr))]);
        } catch (e) {
          m.issues.error(`${m.at('dimensions')}.${label}`, `invalid CEL expression ${JSON.stringify(expr)}: ${(e as Error).message}`);
        }
      }
      d?.accept(...Object.keys(d.raw));
      m.done();
      for (const n of name ? [name as MetricName] : ALL) {
        let o = overrides.get(n);
        if (!o) overrides.set(n, (o = { drop: false, remove: new Set(), dimensions: [] }));
        o.drop ||= drop;
        for (const t of remove) o.remove.add(t);
        for (const dim of dims) {
          o.dimensions = o.dimensions.filter(([l]) => l !== dim[0]);
          o.dimensions.push(dim);
        }
      }
    }
    // Fields of the older (Wasm) stats plugin: debug only logs.
    v.accept('debug');
    const prefix = v.str('stat_prefix');
    if (prefix && prefix !== 'istio') v.issues.warn(v.at('stat_prefix'), `metric names keep Istio's istio_ prefix in rig proxy (a ${prefix}_ prefix is not supported); ignored`);
    for (const k of ['rotate_interval', 'graceful_deletion_interval']) {
      if (v.durationMs(k, 0) > 0) v.issues.warn(v.at(k), 'rig proxy never expires metric series: they stay until the proxy restarts; ignored');
    }
    if (v.has('definitions')) v.issues.error(v.at('definitions'), 'custom metric definitions are not supported; use dimensions on the standard metrics');
    v.done();
  }
  const names = new Set<string>();
  for (const o of overrides.values()) for (const [l] of o.dimensions) names.add(l);
  return { reporter, trustDomain, overrides, dynamic: names.size > 0, noHostFallback, tcpReportMs, telemetry };
}
