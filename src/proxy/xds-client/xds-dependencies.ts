// The names a state-of-the-world client must subscribe to for the non-wildcard types, derived
// from what it holds (as grpc-js-xds's dependency manager joins LDS→RDS and CDS→EDS): EDS for the
// EDS clusters' service names, RDS for the route configurations the listeners' HTTP connection
// managers name.
import { HCM_TYPE, type EnvoyJson } from '../../envoy/index.ts';

type Json = Record<string, unknown>;

function asObject(v: unknown): Json | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}

function asList(v: unknown): Json[] {
  return Array.isArray(v) ? (v.map(asObject).filter(Boolean) as Json[]) : [];
}

/** EDS service names of the EDS clusters (eds_cluster_config.service_name, else the cluster's name). */
export function edsNamesOf(clusters: Iterable<EnvoyJson>): Set<string> {
  const names = new Set<string>();
  for (const c of clusters) {
    if (c.type !== 'EDS') continue;
    const serviceName = asObject(c.eds_cluster_config)?.service_name;
    const name = typeof serviceName === 'string' && serviceName ? serviceName : c.name;
    if (typeof name === 'string' && name) names.add(name);
  }
  return names;
}

function hcmRouteName(filter: Json): string | undefined {
  const typed = asObject(filter.typed_config);
  if (!typed || typed['@type'] !== HCM_TYPE) return undefined;
  const name = asObject(typed.rds)?.route_config_name;
  return typeof name === 'string' && name ? name : undefined;
}

/** Route configuration names referenced through RDS by the listeners' HTTP connection managers. */
export function rdsNamesOf(listeners: Iterable<EnvoyJson>): Set<string> {
  const names = new Set<string>();
  for (const l of listeners) {
    const chains = [...asList(l.filter_chains), ...(asObject(l.default_filter_chain) ? [asObject(l.default_filter_chain)!] : [])];
    for (const chain of chains) {
      for (const f of asList(chain.filters)) {
        const name = hcmRouteName(f);
        if (name) names.add(name);
      }
    }
  }
  return names;
}
