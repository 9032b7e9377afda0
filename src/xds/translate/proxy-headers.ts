// A proxy's proxyHeaders (mesh default, overridden by its own proxy config) as istiod applies them
// (its GetProxyHeaders): on the HTTP connection managers, the router filter, the outbound peer
// metadata filter and the virtual hosts of sidecar outbound and gateway route configurations.
import type { EnvoyJson } from '../../envoy/index.ts';
import { warnOnce } from '../../model/config-warnings.ts';
import { effectiveProxyHeaders, type ProxyHeaders } from '../../model/proxy-headers.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { HcmKind } from './http-filters.ts';

/** Istio's server name on inbound and gateway HCMs; outbound keeps Envoy's own ("envoy"), as istiod. */
const ISTIO_SERVER_NAME = 'istio-envoy';

export function proxyHeadersOf(push: PushContext, proxy: Proxy): ProxyHeaders {
  return effectiveProxyHeaders(push.mesh.defaultConfig.proxyHeaders, proxy.proxyHeaders);
}

/** What of a proxy's own config changes its generated HCMs and routes (for memo keys of resources shared by proxies). */
export function proxyHeadersKey(proxy: Proxy): string {
  return proxy.proxyHeaders ? JSON.stringify(proxy.proxyHeaders) : '';
}

/**
 * server_name (unless server.disabled: then PASS_THROUGH of the upstream's), generate_request_id
 * false with requestId.disabled; sidecar inbound also forward_client_cert_details (default
 * APPEND_FORWARD) and set_current_client_cert_details (default subject, dns and uri). Gateways take
 * their XFCC settings from gatewayTopology instead, sidecar outbound HCMs leave Envoy's SANITIZE.
 */
export function proxyHeadersHcmFields(push: PushContext, proxy: Proxy, kind: HcmKind): EnvoyJson {
  const ph = proxyHeadersOf(push, proxy);
  const out: EnvoyJson = {};
  if (ph.server?.disabled) out.server_header_transformation = 'PASS_THROUGH';
  else if (ph.server?.value) out.server_name = ph.server.value;
  else if (kind !== 'outbound') out.server_name = ISTIO_SERVER_NAME;
  if (ph.requestId?.disabled) out.generate_request_id = false;
  if (kind === 'gateway') warnSidecarOnlyFields(proxy);
  if (kind === 'inbound') {
    const fcc = ph.forwardedClientCert;
    out.forward_client_cert_details = fcc && fcc !== 'UNDEFINED' ? fcc : 'APPEND_FORWARD';
    const s = ph.setCurrentClientCertDetails ?? {};
    const details = { subject: s.subject ?? true, dns: s.dns ?? true, uri: s.uri ?? true, cert: s.cert ?? false, chain: s.chain ?? false };
    out.set_current_client_cert_details = Object.fromEntries(Object.entries(details).filter(([, on]) => on));
  }
  return out;
}

/** A gateway's own proxy config setting what istiod applies to sidecars only is told so (the mesh default is meant for sidecars). */
function warnSidecarOnlyFields(proxy: Proxy): void {
  const instead: Record<string, string> = { forwardedClientCert: 'set gatewayTopology.forwardClientCertDetails', setCurrentClientCertDetails: 'gateways send subject, cert, uri and dns', metadataExchangeHeaders: 'gateways send the peer metadata headers to every cluster' };
  for (const [field, hint] of Object.entries(instead)) {
    if (proxy.proxyHeaders?.[field as keyof ProxyHeaders] !== undefined) warnOnce('lds', `gateway ${proxy.name}: PROXY_CONFIG.proxyHeaders.${field} has no effect on gateways, as in Istio (${hint}); ignored`);
  }
}

/** The router filter's config: suppress_envoy_headers with envoyDebugHeaders.disabled. */
export function routerFields(push: PushContext, proxy: Proxy): EnvoyJson {
  return proxyHeadersOf(push, proxy).envoyDebugHeaders?.disabled ? { suppress_envoy_headers: true } : {};
}

/** Virtual hosts of sidecar outbound and gateway routes send x-envoy-attempt-count upstream unless attemptCount.disabled. */
export function includesAttemptCount(push: PushContext, proxy: Proxy): boolean {
  return !proxyHeadersOf(push, proxy).attemptCount?.disabled;
}

const PRESERVE_CASE_KEY_FORMAT: EnvoyJson = {
  stateful_formatter: { name: 'preserve_case', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.http.header_formatters.preserve_case.v3.PreserveCaseFormatterConfig' } },
};

/**
 * preserveHttp1HeaderCase: as istiod, every HTTP connection manager of the proxy and the HTTP/1
 * options of its clusters for HTTP and sniffed ports (and PassthroughCluster) get the preserve_case
 * header formatter, so HTTP/1 names keep the case they came in with across the proxy.
 */
export function preservesHeaderCase(push: PushContext, proxy: Proxy): boolean {
  return proxyHeadersOf(push, proxy).preserveHttp1HeaderCase === true;
}

/** A cluster's Http1ProtocolOptions: with the preserve_case formatter when `preserveCase`. */
export function http1Options(preserveCase: boolean): EnvoyJson {
  return preserveCase ? { header_key_format: PRESERVE_CASE_KEY_FORMAT } : {};
}

/** metadataExchangeHeaders.mode IN_MESH: the outbound peer metadata headers go to mesh clusters only. */
export function skipsExternalMxHeaders(push: PushContext, proxy: Proxy): boolean {
  return proxyHeadersOf(push, proxy).metadataExchangeHeaders?.mode === 'IN_MESH';
}
