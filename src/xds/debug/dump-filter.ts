// istioctl proxy-config's filters (--fqdn, --port, --subset, --direction, --address, --name,
// --cluster, --status) applied to a ConfigDump: the same dump with only the matching clusters,
// listeners, route configurations and endpoints, so that tables and -o json/yaml agree.
import type { EnvoyJson } from '../../envoy/index.ts';

export interface DumpFilter {
  fqdn?: string;
  port?: number;
  subset?: string;
  direction?: string;
  address?: string;
  name?: string;
  cluster?: string;
  status?: string;
}

type Keep = (item: EnvoyJson) => boolean;

function socket(x: EnvoyJson | undefined): EnvoyJson {
  return ((x?.address as EnvoyJson | undefined)?.socket_address ?? {}) as EnvoyJson;
}

function clusterKeep(f: DumpFilter): Keep {
  return (c) => {
    const [direction, port, subset, fqdn] = String(c.name).split('|');
    if (f.fqdn !== undefined && fqdn !== f.fqdn && c.name !== f.fqdn) return false;
    if (f.port !== undefined && Number(port) !== f.port) return false;
    if (f.subset !== undefined && subset !== f.subset) return false;
    if (f.direction !== undefined && direction !== f.direction) return false;
    return true;
  };
}

function listenerKeep(f: DumpFilter): Keep {
  return (l) => {
    const sa = socket(l);
    if (f.port !== undefined && sa.port_value !== f.port) return false;
    if (f.address !== undefined && sa.address !== f.address) return false;
    return true;
  };
}

function endpointKeep(f: DumpFilter): Keep {
  return (e) => {
    const sa = socket(e.endpoint as EnvoyJson | undefined);
    if (f.address !== undefined && sa.address !== f.address) return false;
    if (f.port !== undefined && sa.port_value !== f.port) return false;
    if (f.status !== undefined && String(e.health_status ?? 'HEALTHY') !== f.status.toUpperCase()) return false;
    return true;
  };
}

/** Keeps the entries of `field` (each wrapping its resource under `key`) whose resource passes. */
function keepIn(section: EnvoyJson, field: string, key: string | undefined, keep: Keep): EnvoyJson {
  const list = section[field] as EnvoyJson[] | undefined;
  if (!list) return section;
  return { ...section, [field]: list.filter((w) => {
    const r = key === undefined ? w : (w[key] as EnvoyJson | undefined);
    return r !== undefined && keep(r);
  }) };
}

function endpointsSection(s: EnvoyJson, f: DumpFilter): EnvoyJson {
  const keepLb = endpointKeep(f);
  const one = (w: EnvoyJson): EnvoyJson | undefined => {
    const cla = w.endpoint_config as EnvoyJson;
    if (f.cluster !== undefined && cla.cluster_name !== f.cluster) return undefined;
    const endpoints = ((cla.endpoints as EnvoyJson[] | undefined) ?? []).map((loc) => ({ ...loc, lb_endpoints: ((loc.lb_endpoints as EnvoyJson[] | undefined) ?? []).filter(keepLb) }));
    return { ...w, endpoint_config: { ...cla, endpoints: endpoints.filter((loc) => loc.lb_endpoints.length) } };
  };
  const out = { ...s };
  for (const field of ['static_endpoint_configs', 'dynamic_endpoint_configs']) {
    if (s[field]) out[field] = (s[field] as EnvoyJson[]).map(one).filter((w): w is EnvoyJson => !!w && ((w.endpoint_config as EnvoyJson).endpoints as EnvoyJson[]).length > 0);
  }
  return out;
}

export function filterDump(dump: EnvoyJson, f: DumpFilter): EnvoyJson {
  const routeKeep: Keep = (rc) => f.name === undefined || rc.name === f.name;
  const configs = ((dump.configs as EnvoyJson[] | undefined) ?? []).map((s) => {
    const type = String(s['@type']);
    if (type.endsWith('.ClustersConfigDump')) return keepIn(keepIn(s, 'static_clusters', 'cluster', clusterKeep(f)), 'dynamic_active_clusters', 'cluster', clusterKeep(f));
    if (type.endsWith('.ListenersConfigDump')) {
      const active: Keep = (w) => !!w.active_state && listenerKeep(f)((w.active_state as EnvoyJson).listener as EnvoyJson);
      return keepIn(keepIn(s, 'static_listeners', 'listener', listenerKeep(f)), 'dynamic_listeners', undefined, active);
    }
    if (type.endsWith('.RoutesConfigDump')) return keepIn(keepIn(s, 'static_route_configs', 'route_config', routeKeep), 'dynamic_route_configs', 'route_config', routeKeep);
    if (type.endsWith('.EndpointsConfigDump')) return endpointsSection(s, f);
    return s;
  });
  return { ...dump, configs };
}
