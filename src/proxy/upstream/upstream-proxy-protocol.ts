// Envoy's upstream_proxy_protocol transport socket (ProxyProtocolUpstreamTransport): wraps the
// cluster's inner transport socket (raw or TLS) and writes a PROXY header before its first byte.
// The header names the downstream connection the request came on (its remote address as source,
// its local address as destination). A v2 header carries TLVs: the host's own (endpoint metadata
// typed_filter_metadata envoy.transport_sockets.proxy_protocol, a PerHostConfig), added_tlvs of
// other types, then the TLVs the downstream's proxy_protocol listener filter kept that
// pass_through_tlvs selects and neither set, each only while the header's 16-bit length has room
// (Envoy skips the rest). Without
// a downstream connection (health checks, the proxy's own requests) Envoy's socket writes a v1
// header with the connection's own addresses and a v2 LOCAL header (no addresses, no TLVs).
// Connections are pooled per downstream connection, as Envoy keys its pools by the PROXY header's
// addresses (Cluster.pool); tlv_as_pool_key adds the TLVs to the key.
import net from 'node:net';
import type { Reader } from '../config/reader.ts';
import { readTransportSocket, type TlsContext } from '../tls/tls-context.ts';
import { UPSTREAM_PROXY_PROTOCOL_TYPE } from '../../envoy/index.ts';
import { encodeProxyHeader, tlvSize, v2AddressLength, V2_LOCAL_HEADER, type ProxyAddresses, type ProxyTlv } from '../network/proxy-protocol-header.ts';
import { readTlvSelection, readTlvType, tlvSelected, type TlvSelection } from '../network/proxy-protocol-tlv-selection.ts';
import type { ConnectionInfo } from '../filters/filter.ts';

/** A cluster's upstream_proxy_protocol settings. */
export interface UpstreamProxyProtocol {
  readonly version: 1 | 2;
  /** config.pass_through_tlvs: which of the downstream's kept TLVs go on (none when unset). */
  readonly passThrough: TlvSelection;
  /** config.added_tlvs, one per type (the first of a type wins). */
  readonly addedTlvs: readonly ProxyTlv[];
  readonly tlvAsPoolKey: boolean;
}

export interface UpstreamTransport {
  readonly tls: TlsContext | undefined;
  /** An upstream_proxy_protocol wrapper's settings; undefined without one. */
  readonly proxyProtocol: UpstreamProxyProtocol | undefined;
}

/** Endpoint metadata typed_filter_metadata key of a host's own TLVs (PerHostConfig). */
export const HOST_TLVS_METADATA_KEY = 'envoy.transport_sockets.proxy_protocol';
const PER_HOST_CONFIG_TYPE = 'type.googleapis.com/envoy.config.core.v3.PerHostConfig';

/** A host's PerHostConfig (typed_filter_metadata[HOST_TLVS_METADATA_KEY]): its added_tlvs. */
export function readHostTlvs(r: Reader): ProxyTlv[] {
  const t = r.str('@type');
  if (t !== PER_HOST_CONFIG_TYPE) r.issues.error(r.at('@type'), `expected ${PER_HOST_CONFIG_TYPE} (the host's PROXY protocol TLVs), got ${JSON.stringify(t)}`);
  const tlvs = readAddedTlvs(r);
  r.done();
  return tlvs;
}

function readAddedTlvs(c: Reader): ProxyTlv[] {
  const out: ProxyTlv[] = [];
  for (const e of c.objs('added_tlvs')) {
    const type = readTlvType(e.get('type') ?? 0, e.at('type'), e.issues);
    const raw = e.get('value');
    if (e.has('format_string')) e.issues.warn(e.at('format_string'), 'not supported: format_string TLVs are not sent (rig proxy has no stream info at connect time); use value');
    if (type === undefined) continue;
    if (typeof raw === 'string' && raw.length > 0) {
      // bytes in proto3 JSON: base64.
      const value = Buffer.from(raw, 'base64');
      if (out.some((t) => t.type === type)) e.issues.warn(e.at('type'), `TLV type ${type} is already added above; this entry is not sent (as Envoy)`);
      else out.push({ type, value });
    } else if (!e.has('format_string')) e.issues.error(e.at('value'), 'an added TLV needs a value of at least one byte (base64 in JSON)');
    e.done();
  }
  return out;
}

/** A cluster's transport_socket (or a transport_socket_matches entry's): optionally PROXY-wrapped, then raw or TLS. */
export function readUpstreamTransportSocket(r: Reader | undefined): UpstreamTransport {
  const tc = r?.obj('typed_config');
  if (!r || tc?.str('@type') !== UPSTREAM_PROXY_PROTOCOL_TYPE) return { tls: readTransportSocket(r, false), proxyProtocol: undefined };
  r.str('name');
  r.done();
  const c = tc.obj('config');
  const v = c?.get('version') ?? 'V1';
  const version = v === 'V2' || v === 1 ? 2 : 1;
  if (v !== 'V1' && v !== 0 && version === 1) tc.issues.error(c!.at('version'), `unknown PROXY protocol version ${JSON.stringify(v)}; expected V1 or V2`);
  const passThrough = readTlvSelection(c?.obj('pass_through_tlvs'));
  const addedTlvs = c ? readAddedTlvs(c) : [];
  if (version === 1 && (passThrough || addedTlvs.length)) c!.issues.warn(c!.path, 'TLVs (pass_through_tlvs, added_tlvs) are sent in v2 headers only; version is V1 (as in Envoy, they are not sent)');
  c?.done();
  if (tc.has('allow_unspecified_address')) tc.issues.warn(tc.at('allow_unspecified_address'), 'not supported: the header always carries addresses');
  const tlvAsPoolKey = tc.bool('tlv_as_pool_key', false);
  const inner = tc.obj('transport_socket');
  if (!inner) tc.issues.error(tc.at('transport_socket'), 'upstream_proxy_protocol needs the transport_socket it wraps (raw_buffer or tls)');
  const tls = readTransportSocket(inner, false);
  tc.done();
  return { tls, proxyProtocol: { version, passThrough, addedTlvs, tlvAsPoolKey } };
}

/** The downstream connection a request came on: the PROXY header's addresses, and the end of its pool. */
export interface DownstreamOrigin {
  readonly info: ConnectionInfo;
  onClose(fn: () => void): void;
}

export function downstreamAddresses(info: ConnectionInfo): ProxyAddresses {
  return { sourceAddress: info.remoteAddress, sourcePort: info.remotePort, destinationAddress: info.localAddress, destinationPort: info.localPort };
}

export interface ProxyHeaderOptions {
  readonly version: 1 | 2;
  /** Undefined: no downstream connection (v1: the connection's own addresses; v2: LOCAL). */
  readonly addresses: ProxyAddresses | undefined;
  /** v2 TLVs after the addresses. */
  readonly tlvs: readonly ProxyTlv[];
}

/**
 * The TLVs of a v2 header for `addresses`: the host's own (PerHostConfig), added_tlvs of other
 * types, then the downstream's that pass and neither set, each while the length has room.
 */
function upstreamTlvs(pp: UpstreamProxyProtocol, addresses: ProxyAddresses, downstream: readonly ProxyTlv[] | undefined, host: readonly ProxyTlv[] | undefined): readonly ProxyTlv[] {
  if (pp.addedTlvs.length === 0 && !host?.length && (!downstream || pp.passThrough === undefined)) return [];
  const out: ProxyTlv[] = [];
  const set = new Set<number>();
  let room = 0xffff - v2AddressLength(addresses);
  const add = (t: ProxyTlv) => {
    if (tlvSize(t) > room) return;
    room -= tlvSize(t);
    out.push(t);
  };
  for (const t of [...(host ?? []), ...pp.addedTlvs]) {
    if (set.has(t.type)) continue;
    set.add(t.type);
    add(t);
  }
  for (const t of downstream ?? []) if (tlvSelected(pp.passThrough, t.type) && !set.has(t.type)) add(t);
  return out;
}

/**
 * The header a connection made for `downstream` (undefined: none, e.g. a health check) to a host
 * with `hostTlvs` (its endpoint's PerHostConfig) starts with.
 */
export function proxyHeaderFor(pp: UpstreamProxyProtocol, downstream: ConnectionInfo | undefined, hostTlvs?: readonly ProxyTlv[]): ProxyHeaderOptions {
  if (!downstream) return { version: pp.version, addresses: undefined, tlvs: [] };
  const addresses = downstreamAddresses(downstream);
  return { version: pp.version, addresses, tlvs: pp.version === 2 ? upstreamTlvs(pp, addresses, downstream.proxyProtocolTlvs, hostTlvs) : [] };
}

/** The pool key part of a PROXY-wrapped connection's header data (its TLVs too with tlv_as_pool_key). */
export function proxyPoolKey(pp: UpstreamProxyProtocol, h: ProxyHeaderOptions): string {
  const a = h.addresses;
  if (!a) return '';
  let key = `#pp${h.version}=${a.sourceAddress}:${a.sourcePort}>${a.destinationAddress}:${a.destinationPort}`;
  if (pp.tlvAsPoolKey) for (const t of h.tlvs) key += `,${t.type}:${t.value.toString('hex')}`;
  return key;
}

/**
 * A TCP connection whose first bytes are the PROXY header. A TLS socket may wrap it at once
 * (tls.connect's `socket`): TLS starts on 'connect' too, and this listener, added first, runs
 * before it, so the header precedes the ClientHello.
 */
export function connectWithProxyHeader(o: ProxyHeaderOptions, opts: net.NetConnectOpts): net.Socket {
  const socket = net.connect(opts);
  socket.once('connect', () => writeProxyHeader(socket, o));
  return socket;
}

/** Writes the header on a connected socket (v1 without a downstream: the socket's own addresses). */
export function writeProxyHeader(socket: net.Socket, o: ProxyHeaderOptions): void {
  if (o.addresses) return void socket.write(encodeProxyHeader(o.version, o.addresses, o.tlvs));
  if (o.version === 2) return void socket.write(V2_LOCAL_HEADER);
  const own = { sourceAddress: socket.localAddress ?? '', sourcePort: socket.localPort ?? 0, destinationAddress: socket.remoteAddress ?? '', destinationPort: socket.remotePort ?? 0 };
  socket.write(encodeProxyHeader(1, own));
}
