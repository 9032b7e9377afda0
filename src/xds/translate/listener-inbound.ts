// Inbound filter chains of a sidecar, per workload port, shaped by PeerAuthentication:
// STRICT → Istio mTLS only; PERMISSIVE → tls_inspector picks Istio mTLS (by the ALPN Istio's clients
// offer), the client's own TLS passed through, or plaintext; DISABLE → plaintext.
import { TCP_PROXY_TYPE, TLS_INSPECTOR_TYPE } from '../../envoy/index.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { isHttpProtocol } from '../../model/service.ts';
import type { InboundPort } from './inbound-ports.ts';
import { buildHcm } from './http-filters.ts';
import { inboundClusterName } from './names.ts';
import { inboundMtlsMode } from './peer-authentication.ts';
import type { MtlsMode } from './peer-authentication.ts';
import { ALPN_ISTIO_MTLS, gatewayDownstream, istioMutualDownstream } from './tls.ts';
import { inboundSniffChains } from './listener-sniffing.ts';
import { networkRbacFilters } from './security/security-filters.ts';
import { TCP_METADATA_EXCHANGE, tcpTelemetryFilters, withTcpAccessLogs } from '../telemetry/index.ts';

export const TLS_INSPECTOR: EnvoyJson = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': TLS_INSPECTOR_TYPE } };

export function tcpProxy(statPrefix: string, target: EnvoyJson): EnvoyJson {
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: statPrefix, ...target } };
}

function inboundHcm(push: PushContext, proxy: Proxy, p: InboundPort): EnvoyJson {
  const cluster = inboundClusterName(p.port);
  const typed = buildHcm(
    { push, proxy, kind: 'inbound', port: p.port },
    {
      // istiod's inboundChainConfig.StatPrefix: "inbound_" and the chain's bind_port.
      statPrefix: `inbound_${p.statBind ?? '0.0.0.0'}_${p.port}`,
      routes: {
        route_config: {
          name: cluster,
          virtual_hosts: [
            {
              name: `inbound|http|${p.port}`,
              domains: ['*'],
              routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster, timeout: '0s', max_stream_duration: { max_stream_duration: '0s', grpc_timeout_header_max: '0s' } }, decorator: { operation: `${p.host ?? ''}:${p.port}/*` } }],
            },
          ],
          validate_clusters: false,
        },
      },
    },
  );
  return { name: 'envoy.filters.network.http_connection_manager', typed_config: typed };
}

/** Chains for one workload port (`match` adds e.g. destination_port for virtualInbound). */
export function inboundChains(push: PushContext, proxy: Proxy, p: InboundPort, match: EnvoyJson = {}): EnvoyJson[] {
  const mode = inboundMtlsMode(push, proxy, p.port);
  const tcp = [...networkRbacFilters(push, proxy), ...tcpTelemetryFilters(push, proxy), withTcpAccessLogs(push, proxy, tcpProxy(inboundClusterName(p.port), { cluster: inboundClusterName(p.port) }))];
  // Sidecar ingress tls: the port terminates the given TLS (callers outside the mesh) instead of Istio mTLS.
  if (p.tls) {
    const http = isHttpProtocol(p.protocol);
    return [{ name: inboundClusterName(p.port), filter_chain_match: { ...match, transport_protocol: 'tls' }, filters: http ? [inboundHcm(push, proxy, p)] : tcp, transport_socket: gatewayDownstream(p.tls, http ? ['h2', 'http/1.1'] : []) }];
  }
  if (isHttpProtocol(p.protocol)) return chainsForMode(mode, inboundClusterName(p.port), [inboundHcm(push, proxy, p)], match);
  if (p.protocol === 'UNKNOWN') {
    const sniffed = inboundSniffChains(mode, inboundClusterName(p.port), inboundHcm(push, proxy, p), tcp, match);
    return mode === 'PERMISSIVE' ? [...sniffed, tlsPassthroughChain(inboundClusterName(p.port), tcp, match)] : sniffed;
  }
  return chainsForMode(mode, inboundClusterName(p.port), tcp, match);
}

/**
 * The chains of one port for its mTLS mode, as Istio shapes them. STRICT: all TLS terminates Istio
 * mTLS (a client without a mesh certificate fails the handshake). PERMISSIVE: TLS that offers an
 * Istio ALPN terminates mTLS; other TLS is the client's own TLS with the application, relayed as
 * bytes on a TCP port (an HTTP port has no chain for it, so the connection is closed); plaintext
 * reaches the same filters. DISABLE: plaintext only.
 */
export function chainsForMode(mode: MtlsMode, name: string, filters: EnvoyJson[], match: EnvoyJson): EnvoyJson[] {
  const withMatch = (m: EnvoyJson) => (Object.keys(m).length ? { filter_chain_match: m } : {});
  if (mode === 'DISABLE') return [{ name, ...withMatch(match), filters }];
  // TCP chains speak Istio's metadata exchange when the client negotiates istio-peer-exchange.
  const tcp = filters[filters.length - 1]?.name === 'envoy.filters.network.tcp_proxy';
  const mtlsMatch = mode === 'PERMISSIVE' ? { ...match, transport_protocol: 'tls', application_protocols: ALPN_ISTIO_MTLS } : { ...match, transport_protocol: 'tls' };
  const mtls = { name, filter_chain_match: mtlsMatch, filters: tcp ? [TCP_METADATA_EXCHANGE, ...filters] : filters, transport_socket: istioMutualDownstream() };
  if (mode === 'STRICT') return [mtls];
  const passthrough = tcp ? [tlsPassthroughChain(name, filters, match)] : [];
  return [mtls, ...passthrough, { name: `${name}-plaintext`, filter_chain_match: { ...match, transport_protocol: 'raw_buffer' }, filters }];
}

/** PERMISSIVE: TLS without an Istio ALPN (a client outside the mesh) relayed untouched to the application, which terminates it. */
export function tlsPassthroughChain(name: string, tcpFilters: EnvoyJson[], match: EnvoyJson): EnvoyJson {
  return { name: `${name}-tls-passthrough`, filter_chain_match: { ...match, transport_protocol: 'tls' }, filters: tcpFilters };
}

/** Whether any chain needs the tls_inspector to see the transport protocol. */
export function needsTlsInspector(chains: EnvoyJson[]): boolean {
  return chains.some((c) => (c.filter_chain_match as EnvoyJson | undefined)?.transport_protocol !== undefined || (c.filter_chain_match as EnvoyJson | undefined)?.server_names !== undefined);
}
