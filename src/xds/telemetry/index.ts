// Telemetry in generated listeners: the `stats` HTTP filter stage (istio.stats), an HCM
// decorator adding the peer metadata filter first in the chain, access_log entries and the
// tracing block, the istio.stats network filter for inbound and outbound TCP chains, and Istio's
// TCP metadata exchange (istio.metadata_exchange) on inbound mTLS chains and outbound clusters.
import { UUID_REQUEST_ID_TYPE } from '../../envoy/index.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { HcmDecorator, HttpFilterStage } from '../translate/http-filters.ts';
import { skipsExternalMxHeaders } from '../translate/proxy-headers.ts';
import { accessLogEntries, listenerAccessLogEntries, modeOf, peerMetadataFilter, statsFilterConfig, tracingConfig, tracingServiceName } from './telemetry-config.ts';
import { effectiveTelemetry, telemetryLevels } from './telemetry-policy.ts';

const TYPED_STRUCT = 'type.googleapis.com/udpa.type.v1.TypedStruct';
const TCP_PROXY = 'envoy.filters.network.tcp_proxy';

export const statsStage: HttpFilterStage = {
  name: 'stats',
  build(ctx) {
    const cfg = statsFilterConfig(ctx.push, ctx.proxy, modeOf(ctx.kind));
    return cfg ? [{ name: 'istio.stats', typed_config: cfg }] : [];
  },
};

export const telemetryDecorator: HcmDecorator = (ctx, hcm) => {
  const mode = modeOf(ctx.kind);
  const filters = hcm.http_filters as EnvoyJson[];
  // Istio runs the metadata exchange first, so that also requests denied by authz carry the peer's labels.
  // proxyHeaders.metadataExchangeHeaders IN_MESH: a sidecar's outbound peer headers only to mesh clusters.
  const inMesh = ctx.kind === 'outbound' && skipsExternalMxHeaders(ctx.push, ctx.proxy);
  if (ctx.kind !== 'gateway' || filters.some((f) => f.name === 'istio.stats')) filters.unshift(peerMetadataFilter(mode, inMesh));
  const logs = accessLogEntries(ctx.push, ctx.proxy, mode);
  if (logs.length) hcm.access_log = [...((hcm.access_log as EnvoyJson[] | undefined) ?? []), ...logs];
  const tracing = tracingConfig(ctx.push, ctx.proxy, mode);
  if (tracing) hcm.tracing = tracing;
  // As Istio, on every HCM: the Telemetry tracing useRequestIdForTraceSampling when tracing is on, else true.
  const byRequestId = (tracing && effectiveTelemetry(ctx.push, ctx.proxy, mode).tracing?.useRequestIdForTraceSampling) ?? true;
  hcm.request_id_extension = { typed_config: { '@type': UUID_REQUEST_ID_TYPE, use_request_id_for_trace_sampling: byRequestId } };
};

/** The tcp_proxy filter of an inbound chain with the Telemetry/mesh access logs added. */
export function withTcpAccessLogs(push: PushContext, proxy: Proxy, tcpProxy: EnvoyJson): EnvoyJson {
  const logs = accessLogEntries(push, proxy, 'SERVER');
  if (!logs.length) return tcpProxy;
  return { ...tcpProxy, typed_config: { ...(tcpProxy.typed_config as EnvoyJson), access_log: logs } };
}

/** Network filters for a TCP chain before tcp_proxy (inbound: SERVER, outbound: CLIENT reporter). */
export function tcpTelemetryFilters(push: PushContext, proxy: Proxy, mode: 'SERVER' | 'CLIENT' = 'SERVER'): EnvoyJson[] {
  const cfg = statsFilterConfig(push, proxy, mode);
  return cfg ? [{ name: 'istio.stats', typed_config: cfg }] : [];
}

/**
 * Istio's TCP metadata exchange, as a listener filter on inbound mTLS TCP chains (first) and as a
 * Cluster.filters entry on outbound clusters with Istio mTLS; it runs only when the TLS handshake
 * negotiated ALPN istio-peer-exchange (ALPN_IN_MESH / ALPN_DOWNSTREAM in translate/tls.ts).
 */
export const TCP_METADATA_EXCHANGE: EnvoyJson = Object.freeze({
  name: 'istio.metadata_exchange',
  typed_config: { '@type': TYPED_STRUCT, type_url: 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange', value: { protocol: 'istio-peer-exchange' } },
});

/**
 * What a proxy's generated telemetry depends on besides its namespace: the Telemetry resources
 * that apply to it and, with tracing, its service name. Listener memo keys shared by a namespace
 * include it, so workload-scoped Telemetry reaches the shared (outbound) listeners.
 */
export function telemetryKey(push: PushContext, proxy: Proxy): string {
  const levels = telemetryLevels(push, proxy).map((r) => `${r.metadata.namespace}/${r.metadata.name}`);
  const tracing = push.mesh.enableTracing || levels.length || push.mesh.defaultProviders?.tracing?.length ? tracingServiceName(proxy) : '';
  return `${levels.join(',')}|${tracing}`;
}

/** Outbound listeners with the client-side TCP telemetry (istio.stats, access logs) on their tcp_proxy chains. */
export function withOutboundTcpTelemetry(push: PushContext, proxy: Proxy, listeners: EnvoyJson[]): EnvoyJson[] {
  const stats = tcpTelemetryFilters(push, proxy, 'CLIENT');
  const logs = accessLogEntries(push, proxy, 'CLIENT');
  if (!stats.length && !logs.length) return listeners;
  const chain = (c: EnvoyJson): EnvoyJson => {
    const filters = c.filters as EnvoyJson[];
    const last = filters[filters.length - 1];
    // Listeners built by a helper that already added them (shared outbound listeners) are left as they are.
    if (last?.name !== TCP_PROXY || filters.some((f) => f.name === 'istio.stats')) return c;
    const tcp = logs.length ? { ...last, typed_config: { ...(last.typed_config as EnvoyJson), access_log: logs } } : last;
    return { ...c, filters: [...filters.slice(0, -1), ...stats, tcp] };
  };
  return listeners.map((l) => (l.traffic_direction === 'OUTBOUND' ? { ...l, filter_chains: (l.filter_chains as EnvoyJson[]).map(chain) } : l));
}

/** Every listener with its Listener.access_log (istiod's setListenerAccessLog): inbound ones as SERVER, the others (outbound, a gateway's) as CLIENT. */
export function withListenerAccessLogs(push: PushContext, proxy: Proxy, listeners: EnvoyJson[]): EnvoyJson[] {
  const server = listenerAccessLogEntries(push, proxy, 'SERVER');
  const client = listenerAccessLogEntries(push, proxy, 'CLIENT');
  if (!server.length && !client.length) return listeners;
  return listeners.map((l) => {
    const logs = l.traffic_direction === 'INBOUND' ? server : client;
    return logs.length ? { ...l, access_log: logs } : l;
  });
}
