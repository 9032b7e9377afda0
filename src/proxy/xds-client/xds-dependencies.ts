// The names a state-of-the-world client must subscribe to for the non-wildcard types, derived
// from what it holds (as grpc-js-xds's dependency manager joins LDS→RDS and CDS→EDS): EDS for the
// EDS clusters' service names, RDS for the route configurations the listeners' HTTP connection
// managers name, SDS for the secrets their TLS contexts fetch over ADS.
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

/** Names of the extension configs (ECDS) the listeners' filters take through config_discovery: network filters of the chains, HTTP filters of their connection managers. */
export function ecdsNamesOf(listeners: Iterable<EnvoyJson>): Set<string> {
  const names = new Set<string>();
  const add = (f: Json) => {
    if (asObject(f.config_discovery) && typeof f.name === 'string' && f.name) names.add(f.name);
  };
  for (const l of listeners) {
    const chains = [...asList(l.filter_chains), ...(asObject(l.default_filter_chain) ? [asObject(l.default_filter_chain)!] : [])];
    for (const chain of chains) {
      for (const f of asList(chain.filters)) {
        add(f);
        const typed = asObject(f.typed_config);
        if (typed?.['@type'] === HCM_TYPE) for (const h of asList(typed.http_filters)) add(h);
      }
    }
  }
  return names;
}

/** The Runtime resources the bootstrap's rtds_layers fetch over ADS (layered_runtime.layers[].rtds_layer.name). */
export function rtdsNamesOf(bootstrap: EnvoyJson): Set<string> {
  const names = new Set<string>();
  for (const layer of asList(asObject(bootstrap.layered_runtime)?.layers)) {
    const rtds = asObject(layer.rtds_layer);
    if (typeof rtds?.name === 'string' && rtds.name && asObject(asObject(rtds.rtds_config)?.ads)) names.add(rtds.name);
  }
  return names;
}

/** Secrets made in the proxy itself (Istio's agent serves them), never fetched from the control plane. */
export const LOCAL_SECRETS: ReadonlySet<string> = new Set(['default', 'ROOTCA']);

const SDS_KEYS = new Set(['tls_certificate_sds_secret_configs', 'validation_context_sds_secret_config']);

function collectSds(v: unknown, names: Set<string>, depth: number): void {
  if (depth > 64 || !v || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    for (const x of v) collectSds(x, names, depth + 1);
    return;
  }
  for (const [k, x] of Object.entries(v as Json)) {
    if (SDS_KEYS.has(k)) {
      for (const c of Array.isArray(x) ? x : [x]) {
        const cfg = asObject(c);
        const name = cfg?.name;
        // Only secrets whose source is ADS; others (e.g. the agent's sds-grpc) are local.
        if (typeof name === 'string' && name && asObject(asObject(cfg.sds_config)?.ads) && !LOCAL_SECRETS.has(name)) names.add(name);
      }
    } else {
      collectSds(x, names, depth + 1);
    }
  }
}

/** Names of the secrets that clusters' and listeners' TLS contexts fetch over ADS (SDS). */
export function sdsNamesOf(...resourceSets: Iterable<EnvoyJson>[]): Set<string> {
  const names = new Set<string>();
  for (const set of resourceSets) for (const r of set) collectSds(r, names, 0);
  return names;
}
