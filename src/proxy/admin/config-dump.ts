// /config_dump in Envoy's shape (envoy.admin.v3.ConfigDump), so `rig proxy-config` and people
// used to Envoy can read it. Private keys in secrets are redacted as Envoy does, and so are Wasm
// image pull secrets (in listeners and in extension configs).
import type { EnvoyJson } from '../../envoy/index.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, EXTENSION_CONFIG_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../../envoy/index.ts';
import { redactPrivateKey, redactPullSecrets } from '../../envoy/redact.ts';
import type { ProxyRuntime, DumpEntry } from '../runtime.ts';

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';

function dynamic(rt: ProxyRuntime, typeUrl: string): [string, DumpEntry][] {
  return [...(rt.dynamicDump.get(typeUrl) ?? new Map<string, DumpEntry>())];
}

function listenerState(l: DumpEntry): EnvoyJson {
  return { version_info: l.version, listener: { '@type': LISTENER_TYPE, ...redactPullSecrets(l.raw) }, last_updated: l.lastUpdated };
}

/** Envoy's DynamicListener: the version serving (active_state) and, while a newer one warms, that one (warming_state). */
function dynamicListener(rt: ProxyRuntime, name: string, latest: DumpEntry): EnvoyJson {
  const warming = rt.listeners.warmingListeners().find((c) => c.name === name);
  if (!warming) return { name, active_state: listenerState(latest) };
  const serving = rt.listeners.get(name)?.config.raw;
  const active = serving && rt.listenerDumps.get(serving);
  return { name, ...(active ? { active_state: listenerState(active) } : {}), warming_state: listenerState(rt.listenerDumps.get(warming.raw) ?? latest) };
}

/** Envoy's EcdsConfigDump: the extension configs in force, pull secrets redacted as in listeners. */
function ecdsConfigDump(rt: ProxyRuntime): EnvoyJson {
  return {
    '@type': ADMIN + 'EcdsConfigDump',
    ecds_filters: rt.extensionConfigDump().map((e) => ({ version_info: e.version, ecds_filter: { '@type': EXTENSION_CONFIG_TYPE, ...redactPullSecrets(e.raw) }, last_updated: e.lastUpdated })),
  };
}

export function configDump(rt: ProxyRuntime, bootstrap: EnvoyJson, opts: { includeEds: boolean; resource?: string }): EnvoyJson {
  const staticRoutes: EnvoyJson[] = [];
  for (const l of rt.staticDump.listeners) {
    for (const fc of (l.raw.filter_chains as EnvoyJson[] | undefined) ?? []) {
      for (const f of (fc.filters as EnvoyJson[] | undefined) ?? []) {
        const rc = (f.typed_config as EnvoyJson | undefined)?.route_config;
        if (rc) staticRoutes.push({ route_config: rc, last_updated: l.lastUpdated });
      }
    }
  }
  const configs: EnvoyJson[] = [
    { '@type': ADMIN + 'BootstrapConfigDump', bootstrap, last_updated: new Date(rt.startedAt).toISOString() },
    {
      '@type': ADMIN + 'ClustersConfigDump',
      version_info: dynamic(rt, CLUSTER_TYPE)[0]?.[1].version ?? '',
      static_clusters: rt.staticDump.clusters.map((c) => ({ cluster: { '@type': CLUSTER_TYPE, ...c.raw }, last_updated: c.lastUpdated })),
      dynamic_active_clusters: dynamic(rt, CLUSTER_TYPE).map(([, c]) => ({ version_info: c.version, cluster: { '@type': CLUSTER_TYPE, ...c.raw }, last_updated: c.lastUpdated })),
    },
    // ECDS, after the clusters as in Envoy, once a filter took its config over ECDS (Envoy registers it then).
    ...(rt.ctx.extensionConfigs.size ? [ecdsConfigDump(rt)] : []),
    {
      '@type': ADMIN + 'ListenersConfigDump',
      version_info: dynamic(rt, LISTENER_TYPE)[0]?.[1].version ?? '',
      static_listeners: rt.staticDump.listeners.map((l) => ({ listener: { '@type': LISTENER_TYPE, ...redactPullSecrets(l.raw) }, last_updated: l.lastUpdated })),
      dynamic_listeners: dynamic(rt, LISTENER_TYPE).map(([name, l]) => dynamicListener(rt, name, l)),
    },
    {
      '@type': ADMIN + 'RoutesConfigDump',
      static_route_configs: staticRoutes.map((r) => ({ route_config: { '@type': ROUTE_TYPE, ...(r.route_config as EnvoyJson) }, last_updated: r.last_updated })),
      dynamic_route_configs: dynamic(rt, ROUTE_TYPE).map(([, r]) => ({ version_info: r.version, route_config: { '@type': ROUTE_TYPE, ...r.raw }, last_updated: r.lastUpdated })),
    },
    {
      '@type': ADMIN + 'SecretsConfigDump',
      static_secrets: rt.staticDump.secrets.map((s) => ({ name: s.raw.name, secret: { '@type': SECRET_TYPE, ...redactPrivateKey(s.raw) }, last_updated: s.lastUpdated })),
      dynamic_active_secrets: dynamic(rt, SECRET_TYPE).map(([name, s]) => ({ name, version_info: s.version, secret: { '@type': SECRET_TYPE, ...redactPrivateKey(s.raw) }, last_updated: s.lastUpdated })),
    },
  ];
  if (opts.includeEds) {
    configs.push({
      '@type': ADMIN + 'EndpointsConfigDump',
      static_endpoint_configs: rt.staticDump.clusters.filter((c) => c.raw.load_assignment).map((c) => ({ endpoint_config: { '@type': ENDPOINT_TYPE, ...(c.raw.load_assignment as EnvoyJson) }, last_updated: c.lastUpdated })),
      dynamic_endpoint_configs: dynamic(rt, ENDPOINT_TYPE).map(([, e]) => ({ version_info: e.version, endpoint_config: { '@type': ENDPOINT_TYPE, ...e.raw }, last_updated: e.lastUpdated })),
    });
  }
  if (opts.resource) {
    const key = opts.resource;
    const out: EnvoyJson[] = [];
    for (const c of configs) {
      const v = c[key];
      if (Array.isArray(v)) out.push(...v);
    }
    return { configs: out };
  }
  return { configs };
}
