// Protocol sniffing for ports whose protocol is not declared (unnamed or unknown port names), as
// Istio does: the http_inspector reads the first bytes and the filter chain matching on
// application_protocols picks the HTTP connection manager for HTTP/1.1 and h2c, tcp_proxy for
// anything else. Inbound over Istio mTLS, a client marks HTTP with the ALPN istio-http/1.0,
// istio-http/1.1 or istio-h2 (Istio's clients do; the rest is relayed as TCP).
import { HTTP_INSPECTOR_TYPE } from '../../envoy/index.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { MtlsMode } from './peer-authentication.ts';
import { ALPN_IN_MESH, ALPN_ISTIO_HTTP, istioMutualDownstream } from './tls.ts';
import { toSeconds } from './duration.ts';
import { pilotFeatures } from '../features.ts';

export const HTTP_INSPECTOR: EnvoyJson = { name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': HTTP_INSPECTOR_TYPE } };

/**
 * What the http_inspector reports for HTTP. As Istio, http/1.0 only with PILOT_HTTP10 (node
 * metadata HTTP10 does not change it): otherwise the connection manager would answer HTTP/1.0 with
 * 426, relayed as TCP it at least passes.
 */
function sniffedHttp(): string[] {
  return pilotFeatures().http10 ? ['http/1.0', 'http/1.1', 'h2c'] : ['http/1.1', 'h2c'];
}

/** Overlaps a mesh client's ALPN (a server without overlap fails the handshake) but not with istio-peer-exchange. */
const ALPN_SNIFFED_TCP = ['istio', 'h2', 'http/1.1'];

/**
 * The HTTP chain of an outbound sniffing listener, beside a TCP chain without application_protocols.
 * Neither names a transport protocol: Envoy narrows to the most specific match level by level, so
 * a transport_protocol only on this chain would leave non-HTTP bytes without any chain.
 */
export function sniffedHttpChain(hcm: EnvoyJson, match: EnvoyJson = {}): EnvoyJson {
  return { filter_chain_match: { ...match, application_protocols: sniffedHttp() }, filters: [hcm] };
}

/**
 * Listener fields of a sniffing listener: the http_inspector, and MeshConfig
 * protocolDetectionTimeout (after which the connection continues as TCP, for server-first
 * protocols). Istio's default 0s means no timeout; then Envoy's default (15 s) applies here.
 */
export function sniffingListener(push: PushContext, listener: EnvoyJson): EnvoyJson {
  const filters = (listener.listener_filters as EnvoyJson[] | undefined) ?? [];
  if (!filters.some((f) => f.name === HTTP_INSPECTOR.name)) listener.listener_filters = [...filters, HTTP_INSPECTOR];
  const timeout = push.mesh.protocolDetectionTimeout;
  if (timeout && toSeconds(timeout) > 0) listener.listener_filters_timeout = timeout;
  listener.continue_on_listener_filters_timeout = true;
  return listener;
}

/**
 * Inbound chains of a port without a declared protocol: HTTP (by ALPN over mTLS, by the
 * http_inspector in plaintext) to the connection manager, the rest to tcp_proxy. The TLS TCP chain
 * offers no istio-peer-exchange: a client's HTTP that lands there must not meet a metadata preamble.
 * In PERMISSIVE the TCP mTLS chain takes only Istio's TCP ALPN (the caller adds the passthrough chain).
 */
export function inboundSniffChains(mode: MtlsMode, name: string, hcm: EnvoyJson, tcpFilters: EnvoyJson[], match: EnvoyJson): EnvoyJson[] {
  const chains: EnvoyJson[] = [];
  if (mode !== 'DISABLE') {
    const tcpAlpn = mode === 'PERMISSIVE' ? { application_protocols: ALPN_IN_MESH } : {};
    chains.push({ name: `${name}-http`, filter_chain_match: { ...match, transport_protocol: 'tls', application_protocols: ALPN_ISTIO_HTTP }, filters: [hcm], transport_socket: istioMutualDownstream() });
    chains.push({ name, filter_chain_match: { ...match, transport_protocol: 'tls', ...tcpAlpn }, filters: tcpFilters, transport_socket: istioMutualDownstream(ALPN_SNIFFED_TCP) });
  }
  if (mode !== 'STRICT') {
    chains.push({ name: `${name}-plaintext-http`, filter_chain_match: { ...match, transport_protocol: 'raw_buffer', application_protocols: sniffedHttp() }, filters: [hcm] });
    chains.push({ name: `${name}-plaintext`, filter_chain_match: { ...match, transport_protocol: 'raw_buffer' }, filters: tcpFilters });
  }
  return chains;
}

/** Whether a listener's chains need the http_inspector. */
export function needsHttpInspector(chains: EnvoyJson[]): boolean {
  return chains.some((c) => ((c.filter_chain_match as EnvoyJson | undefined)?.application_protocols as string[] | undefined)?.some((p) => sniffedHttp().includes(p)));
}
