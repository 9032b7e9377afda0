// What a push must regenerate (Istio's incremental EDS push): a change of config kinds that only
// shape listeners and routes needs LDS and RDS; a change of endpoints alone needs EDS for the
// clusters of the hosts whose endpoints changed, plus CDS when a cluster itself reads them
// (the SANs of auto mTLS come from the endpoints' service accounts, as in Istio where a changed
// service-account set forces a full push; DNS clusters carry their endpoints inline).
// Generators reading endpoints: CDS (cluster-builder: SANs, DNS load_assignment) and EDS only.
// Listeners read VirtualServices only for their tcp and tls routes (sidecar l4 chains, gateway
// passthrough): a change of http routes alone needs RDS only (Istio's VirtualService push also
// skips CDS/EDS; regenerating every proxy's listeners was 30% of such a push at 2000 proxies).
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, XDS_TYPES_IN_ORDER } from '../../envoy/index.ts';
import type { Endpoint } from '../../model/service.ts';
import type { PushContext } from '../../model/push-context.ts';

export interface PushScope {
  /** Types to regenerate, in XDS_TYPES_IN_ORDER. */
  types: readonly string[];
  /** EDS: only the clusters of these hosts changed; undefined = any watched cluster may have. */
  edsHosts?: ReadonlySet<string>;
}

export const ALL_TYPES: PushScope = { types: XDS_TYPES_IN_ORDER };
export const ROUTING_SCOPE: PushScope = { types: [LISTENER_TYPE, ROUTE_TYPE] };

function ordered(types: Set<string>): string[] {
  return XDS_TYPES_IN_ORDER.filter((t) => types.has(t));
}

const ROUTES_ONLY: PushScope = { types: [ROUTE_TYPE] };

/** The scope of a push caused only by VirtualService changes from `before` to `after`. */
export function routingScope(before: PushContext, after: PushContext): PushScope {
  const key = (vs: { metadata: { namespace: string; name: string } }) => `${vs.metadata.namespace}/${vs.metadata.name}`;
  const old = new Map(before.virtualServices.map((vs) => [key(vs), vs]));
  const now = new Map(after.virtualServices.map((vs) => [key(vs), vs]));
  const l4 = (vs: { spec: { tcp?: unknown[]; tls?: unknown[] } } | undefined) => !!(vs?.spec.tcp?.length || vs?.spec.tls?.length);
  for (const k of new Set([...old.keys(), ...now.keys()])) {
    const a = old.get(k);
    const b = now.get(k);
    if (a && b && JSON.stringify(a.spec) === JSON.stringify(b.spec)) continue;
    if (l4(a) || l4(b)) return ROUTING_SCOPE;
  }
  return ROUTES_ONLY;
}

/** A scope covering both (a push that takes over from one still being written covers both). */
export function mergeScopes(a: PushScope | undefined, b: PushScope): PushScope {
  if (!a) return b;
  const types = ordered(new Set([...a.types, ...b.types]));
  if (!types.includes(ENDPOINT_TYPE)) return { types };
  const aHosts = a.types.includes(ENDPOINT_TYPE) ? a.edsHosts : new Set<string>();
  const bHosts = b.types.includes(ENDPOINT_TYPE) ? b.edsHosts : new Set<string>();
  return { types, edsHosts: aHosts && bHosts ? new Set([...aHosts, ...bHosts]) : undefined };
}

/** Identity of the endpoints a cluster's SANs and auto-mTLS match read. */
function identities(eps: readonly Endpoint[]): string {
  return [...new Set(eps.map((e) => `${e.namespace}/${e.serviceAccount}/${e.tlsMode}/${e.workloadPort}`))].sort().join(',');
}

/**
 * What registry (endpoint) changes from `before` to `after` touch: `hosts` whose endpoints changed,
 * of them `clusterHosts` whose clusters read the endpoints too (a changed identity set: istiod's
 * full push), `services`: the services themselves changed (a full push of everything).
 */
export function endpointChanges(before: PushContext, after: PushContext): { services: boolean; hosts: Set<string>; clusterHosts: Set<string> } {
  const hosts = new Set<string>();
  const clusterHosts = new Set<string>();
  if (before.services.length !== after.services.length || JSON.stringify(before.services) !== JSON.stringify(after.services)) return { services: true, hosts, clusterHosts };
  for (const [host, ports] of after.endpoints) {
    const old = before.endpoints.get(host);
    for (const [port, eps] of ports) {
      const prev = old?.get(port) ?? [];
      if (prev === eps || (prev.length === eps.length && JSON.stringify(prev) === JSON.stringify(eps))) continue;
      hosts.add(host);
      const svc = after.serviceByHost.get(host);
      if (svc?.resolution !== 'ClientSideLB' || identities(prev) !== identities(eps)) clusterHosts.add(host);
    }
  }
  return { services: false, hosts, clusterHosts };
}

/** The scope of a push caused only by registry (endpoint) changes from `before` to `after`. */
export function endpointScope(before: PushContext, after: PushContext): PushScope {
  const { services, hosts, clusterHosts } = endpointChanges(before, after);
  if (services) return ALL_TYPES;
  if (!hosts.size) return { types: [] };
  return { types: clusterHosts.size ? [CLUSTER_TYPE, ENDPOINT_TYPE] : [ENDPOINT_TYPE], edsHosts: hosts };
}
