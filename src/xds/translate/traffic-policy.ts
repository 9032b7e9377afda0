// DestinationRule traffic policy with Istio's precedence: a subset's policy replaces the top
// level field by field; then portLevelSettings for the port replace those fields again.
import type { Resource } from '../../api/index.ts';
import type { DestinationRuleSpec, TrafficPolicy } from '../../api/index.ts';

export type PortPolicy = Omit<TrafficPolicy, 'portLevelSettings'>;

function merge(base: TrafficPolicy | undefined, over: TrafficPolicy | undefined): TrafficPolicy | undefined {
  if (!over) return base;
  if (!base) return over;
  const out: TrafficPolicy = { ...base };
  for (const k of ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls', 'portLevelSettings', 'tunnel', 'proxyProtocol', 'retryBudget'] as const) {
    if (over[k] !== undefined) (out as Record<string, unknown>)[k] = over[k];
  }
  return out;
}

/** The effective policy for (subset, port) under a DestinationRule. */
export function effectivePolicy(dr: Resource<DestinationRuleSpec> | undefined, subset: string, port: number): PortPolicy {
  if (!dr) return {};
  const sub = subset ? dr.spec.subsets?.find((s) => s.name === subset) : undefined;
  const merged = merge(dr.spec.trafficPolicy, sub?.trafficPolicy) ?? {};
  const { portLevelSettings, ...rest } = merged;
  const pl = portLevelSettings?.find((p) => p.port?.number === port);
  if (!pl) return rest;
  const { port: _p, ...plRest } = pl;
  return merge(rest, plRest) as PortPolicy;
}
