// The Telemetry API's effective configuration for one proxy and traffic mode, with Istio's
// inheritance: the root namespace's Telemetry without selector (mesh), then the proxy's
// namespace's without selector, then the one selecting the workload (by selector, or for a Gateway
// API gateway's proxies by a targetRef to its Gateway); at each level the oldest
// resource applies. A more specific level replaces providers and scalar fields; metric
// overrides accumulate (later, more specific ones win per tag); custom tags merge.
import type { Resource } from '../../api/index.ts';
import type { AccessLogging, Metrics, MetricsOverrides, TelemetrySpec, Tracing, WorkloadMode } from '../../api/types/telemetry.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { attachesToProxy, hasTargetRefs, kubernetesGatewayLookup } from '../../model/policy-attachment.ts';
import { missingGatewayTargets, waypointOnlyTargets } from '../../api/policy-targets.ts';
import { unsupportedTelemetryFields } from '../../api/validation/telemetry.ts';
import { formatPath } from '../../api/diagnostic.ts';
import { createLogger, type Logger } from '../../core/log.ts';

let log: Logger | undefined;
const warned = new Set<string>();

/**
 * Fields without effect in Rigging, and target references that attach a Telemetry to no proxy,
 * are logged once per control-plane process (rig validate and rig analyze warn too).
 */
function warnUnsupported(push: PushContext, all: readonly Resource<TelemetrySpec>[]): void {
  const gatewayExists = kubernetesGatewayLookup(push.resources);
  for (const r of all) {
    const spec = r.spec ?? {};
    for (const u of [...unsupportedTelemetryFields(spec), ...waypointOnlyTargets('Telemetry', spec), ...missingGatewayTargets('Telemetry', r.metadata.namespace, spec, gatewayExists)]) {
      const note = `Telemetry ${r.metadata.namespace}/${r.metadata.name}: ${formatPath(u.path)}: ${u.message}`;
      if (warned.has(note) || warned.size > 10_000) continue;
      warned.add(note);
      (log ??= createLogger({ name: 'telemetry' })).warn(note);
    }
  }
}

function telemetries(push: PushContext): Resource<TelemetrySpec>[] {
  return push.memo('telemetry-all', () => {
    const all = push.resources.filter((r) => r.kind === 'Telemetry') as Resource<TelemetrySpec>[];
    warnUnsupported(push, all);
    return all;
  });
}

export type TrafficMode = 'CLIENT' | 'SERVER';

export interface EffectiveMetrics {
  providers: string[];
  overrides: MetricsOverrides[];
  /** The most specific reportingInterval (Istio's tcp_reporting_duration). */
  reportingInterval?: string;
}

export interface EffectiveTracing {
  providers: string[];
  randomSamplingPercentage?: number;
  /** Istio's default true: sampling by x-request-id (the HCM request_id_extension). */
  useRequestIdForTraceSampling?: boolean;
  disableSpanReporting: boolean;
  customTags: NonNullable<Tracing['customTags']>;
  /** Istio's default true: the istio.* span tags (the proxy's identity, the authorization dry-run verdicts). */
  enableIstioTags?: boolean;
}

export interface EffectiveAccessLog {
  provider: string;
  disabled: boolean;
  filter?: string;
}

export interface EffectiveTelemetry {
  /** undefined: no Telemetry says anything (mesh defaults apply). */
  metrics?: EffectiveMetrics;
  tracing?: EffectiveTracing;
  accessLogs?: EffectiveAccessLog[];
}

function modeMatches(m: WorkloadMode | undefined, mode: TrafficMode): boolean {
  return !m || m === 'CLIENT_AND_SERVER' || m === mode;
}

/** The Telemetry resources that apply to a proxy, least specific first. */
export function telemetryLevels(push: PushContext, proxy: Proxy): Resource<TelemetrySpec>[] {
  return push.memo(`telemetry-levels|${proxy.namespace}|${JSON.stringify(proxy.labels)}`, () => {
    const all = telemetries(push);
    const root = push.mesh.rootNamespace;
    const plain = (r: Resource<TelemetrySpec>) => !Object.keys(r.spec.selector?.matchLabels ?? {}).length && !hasTargetRefs(r.spec);
    const levels: Resource<TelemetrySpec>[] = [];
    const mesh = all.find((r) => r.metadata.namespace === root && plain(r));
    if (mesh) levels.push(mesh);
    if (proxy.namespace !== root) {
      const ns = all.find((r) => r.metadata.namespace === proxy.namespace && plain(r));
      if (ns) levels.push(ns);
    }
    const wl = all.find((r) => r.metadata.namespace === proxy.namespace && !plain(r) && attachesToProxy(r.spec, r.metadata.namespace, proxy));
    if (wl) levels.push(wl);
    return levels;
  });
}

function mergeMetrics(levels: Resource<TelemetrySpec>[], mode: TrafficMode): EffectiveMetrics | undefined {
  let out: EffectiveMetrics | undefined;
  for (const r of levels) {
    for (const m of r.spec.metrics ?? ([] as Metrics[])) {
      out ??= { providers: [], overrides: [] };
      if (m.providers?.length) out.providers = m.providers.map((p) => p.name);
      if (m.reportingInterval !== undefined) out.reportingInterval = m.reportingInterval;
      for (const o of m.overrides ?? []) if (modeMatches(o.match?.mode, mode)) out.overrides.push(o);
    }
  }
  return out;
}

function mergeTracing(levels: Resource<TelemetrySpec>[], mode: TrafficMode): EffectiveTracing | undefined {
  let out: EffectiveTracing | undefined;
  for (const r of levels) {
    const t = (r.spec.tracing ?? []).find((x) => modeMatches(x.match?.mode, mode));
    if (!t) continue;
    out ??= { providers: [], disableSpanReporting: false, customTags: {} };
    if (t.providers?.length) out.providers = t.providers.map((p) => p.name);
    if (t.randomSamplingPercentage !== undefined) out.randomSamplingPercentage = t.randomSamplingPercentage;
    if (t.useRequestIdForTraceSampling !== undefined) out.useRequestIdForTraceSampling = t.useRequestIdForTraceSampling;
    if (t.disableSpanReporting !== undefined) out.disableSpanReporting = t.disableSpanReporting;
    if (t.enableIstioTags !== undefined) out.enableIstioTags = t.enableIstioTags;
    Object.assign(out.customTags, t.customTags ?? {});
  }
  return out;
}

function mergeAccessLogs(levels: Resource<TelemetrySpec>[], mode: TrafficMode, defaults: string[]): EffectiveAccessLog[] | undefined {
  let byProvider: Map<string, EffectiveAccessLog> | undefined;
  for (const r of levels) {
    const entries = (r.spec.accessLogging ?? ([] as AccessLogging[])).filter((a) => modeMatches(a.match?.mode, mode));
    if (!entries.length) continue;
    const prev = byProvider;
    byProvider = new Map();
    for (const a of entries) {
      const names = a.providers?.length ? a.providers.map((p) => p.name) : prev?.size ? [...prev.keys()] : defaults;
      for (const n of names) {
        const before = prev?.get(n);
        byProvider.set(n, { provider: n, disabled: a.disabled ?? before?.disabled ?? false, filter: a.filter?.expression ?? before?.filter });
      }
    }
  }
  return byProvider ? [...byProvider.values()] : undefined;
}

export function effectiveTelemetry(push: PushContext, proxy: Proxy, mode: TrafficMode): EffectiveTelemetry {
  const levels = telemetryLevels(push, proxy);
  const defaults = push.mesh.defaultProviders?.accessLogging ?? (push.mesh.accessLogFile ? ['envoy'] : []);
  return { metrics: mergeMetrics(levels, mode), tracing: mergeTracing(levels, mode), accessLogs: mergeAccessLogs(levels, mode, defaults) };
}
