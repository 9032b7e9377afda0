// Envoy's upstream_proxy_protocol transport socket (ProxyProtocolUpstreamTransport): wraps the
// cluster's inner transport socket (raw or TLS) and writes a PROXY header before its first byte.
// The header names the downstream connection the request came on (its remote address as source,
// its local address as destination); without one (health checks, the proxy's own requests) the
// upstream connection's own addresses, as Envoy. Connections are therefore pooled per downstream
// connection, as Envoy keys its pools by the PROXY header's data (Cluster.pool).
import net from 'node:net';
import type { Reader } from '../config/reader.ts';
import { readTransportSocket, type TlsContext } from '../tls/tls-context.ts';
import { UPSTREAM_PROXY_PROTOCOL_TYPE } from '../../envoy/index.ts';
import { encodeProxyHeader, type ProxyAddresses } from '../network/proxy-protocol-header.ts';
import type { ConnectionInfo } from '../filters/filter.ts';

export interface UpstreamTransport {
  readonly tls: TlsContext | undefined;
  /** config.version of an upstream_proxy_protocol wrapper; undefined without one. */
  readonly proxyProtocol: 1 | 2 | undefined;
}

/** A cluster's transport_socket (or a transport_socket_matches entry's): optionally PROXY-wrapped, then raw or TLS. */
export function readUpstreamTransportSocket(r: Reader | undefined): UpstreamTransport {
  const tc = r?.obj('typed_config');
  if (!r || tc?.str('@type') !== UPSTREAM_PROXY_PROTOCOL_TYPE) return { tls: readTransportSocket(r, false), proxyProtocol: undefined };
  r.str('name');
  r.done();
  const c = tc.obj('config');
  const v = c?.get('version') ?? 'V1';
  const proxyProtocol = v === 'V2' || v === 1 ? 2 : 1;
  if (v !== 'V1' && v !== 0 && proxyProtocol === 1) tc.issues.error(c!.at('version'), `unknown PROXY protocol version ${JSON.stringify(v)}; expected V1 or V2`);
  if (c?.has('pass_through_tlvs')) c.issues.warn(c.at('pass_through_tlvs'), 'not supported: no TLVs are sent upstream');
  if (c?.has('added_tlvs')) c.issues.warn(c.at('added_tlvs'), 'not supported: no TLVs are sent upstream');
  c?.done();
  if (tc.has('allow_unspecified_address')) tc.issues.warn(tc.at('allow_unspecified_address'), 'not supported: the header always carries addresses');
  if (tc.has('tlv_as_pool_key')) tc.issues.warn(tc.at('tlv_as_pool_key'), 'not supported: no TLVs are sent upstream');
  const inner = tc.obj('transport_socket');
  if (!inner) tc.issues.error(tc.at('transport_socket'), 'upstream_proxy_protocol needs the transport_socket it wraps (raw_buffer or tls)');
  const tls = readTransportSocket(inner, false);
  tc.done();
  return { tls, proxyProtocol };
}

/** The downstream connection a request came on: the PROXY header's addresses, and the end of its pool. */
export interface DownstreamOrigin {
  readonly info: ConnectionInfo;
  onClose(fn: () => void): void;
}

export function downstreamAddresses(info: ConnectionInfo): ProxyAddresses {
  return { sourceAddress: info.remoteAddress, sourcePort: info.remotePort, destinationAddress: info.localAddress, destinationPort: info.localPort };
}

/** The pool key part of a PROXY-wrapped connection's header data. */
export function proxyPoolKey(version: 1 | 2, a: ProxyAddresses): string {
  return `#pp${version}=${a.sourceAddress}:${a.sourcePort}>${a.destinationAddress}:${a.destinationPort}`;
}

export interface ProxyHeaderOptions {
  readonly version: 1 | 2;
  /** Undefined: the connection's own addresses. */
  readonly addresses: ProxyAddresses | undefined;
}

/**
 * A TCP connection whose first bytes are the PROXY header. A TLS socket may wrap it at once
 * (tls.connect's `socket`): TLS starts on 'connect' too, and this listener, added first, runs
 * before it, so the header precedes the ClientHello.
 */
export function connectWithProxyHeader(o: ProxyHeaderOptions, opts: net.NetConnectOpts): net.Socket {
  const socket = net.connect(opts);
  socket.once('connect', () => {
    const a = o.addresses ?? { sourceAddress: socket.localAddress ?? '', sourcePort: socket.localPort ?? 0, destinationAddress: socket.remoteAddress ?? '', destinationPort: socket.remotePort ?? 0 };
    socket.write(encodeProxyHeader(o.version, a));
  });
  return socket;
}
