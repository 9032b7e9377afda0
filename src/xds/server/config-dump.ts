// The control plane's view of a proxy's config, as Envoy's admin ConfigDump (what the proxy's
// own /config_dump returns), so `rig proxy-config` reads both the same way. Private keys and
// Wasm image pull secrets (in listeners and ECDS extension configs) are redacted, as in the proxy's.
import { CLUSTER_TYPE, ENDPOINT_TYPE, EXTENSION_CONFIG_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../../envoy/index.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import { redactPrivateKey, redactPullSecrets } from '../../envoy/redact.ts';
import type { AdsConnection } from './ads-connection.ts';
import { syncState } from './ads-connection.ts';

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';

function typed(typeUrl: string, obj: EnvoyJson): EnvoyJson {
  return { '@type': typeUrl, ...obj };
}

export function configDump(con: AdsConnection): EnvoyJson {
  const w = (t: string) => con.watches.get(t);
  const list = (t: string) => {
    const ws = w(t);
    return (ws?.full ?? [...(ws?.sent.values() ?? [])]).map((r) => r.json);
  };
  const version = (t: string) => w(t)?.versionSent ?? '';
  const updated = (t: string) => w(t)?.sentAt ?? '';
  return {
    configs: [
      typed(ADMIN + 'ClustersConfigDump', { version_info: version(CLUSTER_TYPE), dynamic_active_clusters: list(CLUSTER_TYPE).map((c) => ({ version_info: version(CLUSTER_TYPE), cluster: typed(CLUSTER_TYPE, c), last_updated: updated(CLUSTER_TYPE) })) }),
      ...(w(EXTENSION_CONFIG_TYPE) ? [typed(ADMIN + 'EcdsConfigDump', { ecds_filters: list(EXTENSION_CONFIG_TYPE).map((e) => ({ version_info: version(EXTENSION_CONFIG_TYPE), ecds_filter: typed(EXTENSION_CONFIG_TYPE, redactPullSecrets(e)), last_updated: updated(EXTENSION_CONFIG_TYPE) })) })] : []),
      typed(ADMIN + 'ListenersConfigDump', { version_info: version(LISTENER_TYPE), dynamic_listeners: list(LISTENER_TYPE).map((l) => ({ name: l.name, active_state: { version_info: version(LISTENER_TYPE), listener: typed(LISTENER_TYPE, redactPullSecrets(l)), last_updated: updated(LISTENER_TYPE) } })) }),
      typed(ADMIN + 'RoutesConfigDump', { dynamic_route_configs: list(ROUTE_TYPE).map((r) => ({ version_info: version(ROUTE_TYPE), route_config: typed(ROUTE_TYPE, r), last_updated: updated(ROUTE_TYPE) })) }),
      typed(ADMIN + 'EndpointsConfigDump', { dynamic_endpoint_configs: list(ENDPOINT_TYPE).map((e) => ({ version_info: version(ENDPOINT_TYPE), endpoint_config: typed(ENDPOINT_TYPE, e), last_updated: updated(ENDPOINT_TYPE) })) }),
      typed(ADMIN + 'SecretsConfigDump', { dynamic_active_secrets: list(SECRET_TYPE).map((s) => ({ name: s.name, version_info: version(SECRET_TYPE), last_updated: updated(SECRET_TYPE), secret: typed(SECRET_TYPE, redactPrivateKey(s)) })) }),
    ],
  };
}

/** One row of /debug/syncz (istiod's shape, plus Rigging's NACK details). */
export function syncStatus(con: AdsConnection, controlPlaneId: string): EnvoyJson {
  const row: EnvoyJson = {
    cluster_id: con.proxy.clusterId,
    proxy: con.proxy.name,
    proxy_id: con.proxy.id,
    proxy_type: con.proxy.type,
    proxy_version: con.proxy.istioVersion,
    istiod: controlPlaneId,
    connected_since: con.connectedAt.toISOString(),
  };
  for (const [short, t] of [['cluster', CLUSTER_TYPE], ['listener', LISTENER_TYPE], ['route', ROUTE_TYPE], ['endpoint', ENDPOINT_TYPE], ['extension_config', EXTENSION_CONFIG_TYPE], ['secret', SECRET_TYPE]] as const) {
    const w = con.watches.get(t);
    row[`${short}_sent`] = w?.nonceSent ?? '';
    row[`${short}_acked`] = w?.nonceAcked ?? '';
    row[`${short}_version_sent`] = w?.versionSent ?? '';
    row[`${short}_version_acked`] = w?.versionAcked ?? '';
    row[`${short}_status`] = syncState(w);
    if (w?.lastNack) row[`${short}_nack`] = w.lastNack;
  }
  return row;
}
