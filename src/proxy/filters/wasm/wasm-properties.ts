// proxy_get_property: Envoy's attributes (request.*, response.*, source.*, destination.*,
// connection.*, upstream.*, node.*, plugin_*, xds.*) for a path of segments, encoded as Envoy
// encodes them for Proxy-Wasm: strings as their bytes, integers as 8-byte little-endian, booleans
// as one byte, timestamps and durations as int64 nanoseconds, string maps as header pairs, the node
// metadata Struct as protobuf. Anything else is looked up in the stream's filter state, then its
// connection's, where proxy_set_property puts values (key "wasm.<path>", wasm-state.ts).
import { encodeMessage, type EnvoyJson } from '../../../envoy/index.ts';
import type { NodeInfo } from '../../context.ts';
import type { StreamInfo } from '../../stream-info.ts';
import type { ConnectionInfo, HeaderMap, RequestHead, ResponseHead } from '../filter.ts';
import { serializePairs } from './wasm-abi.ts';
import { connectionFilterState } from './wasm-state.ts';

export interface PluginProps {
  readonly name: string;
  readonly rootId: string;
  readonly vmId: string;
  readonly node: NodeInfo | undefined;
}

export interface StreamProps {
  readonly info: StreamInfo;
  readonly connection: ConnectionInfo;
  readonly request: RequestHead | undefined;
  readonly response: ResponseHead | undefined;
  readonly responseTrailers: HeaderMap | undefined;
}

const str = (s: string | undefined): Buffer | undefined => (s === undefined ? undefined : Buffer.from(s));
/** What came off the wire (request line, header values) is held one byte per char: its bytes back. */
const wire = (s: string | undefined): Buffer | undefined => (s === undefined ? undefined : Buffer.from(s, 'latin1'));
const bool = (b: boolean): Buffer => Buffer.from([b ? 1 : 0]);

function int(n: number | bigint | undefined): Buffer | undefined {
  if (n === undefined) return undefined;
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(BigInt(n));
  return b;
}

function pairs(m: HeaderMap | undefined, pseudo: [string, string][] = []): Buffer | undefined {
  if (!m) return undefined;
  for (const [k, v] of Object.entries(m)) for (const x of v === undefined ? [] : Array.isArray(v) ? v : [v]) pseudo.push([k, x]);
  return serializePairs(pseudo);
}

function header(m: HeaderMap | undefined, key: string | undefined): Buffer | undefined {
  if (!m || key === undefined) return undefined;
  const v = m[key.toLowerCase()];
  return v === undefined ? undefined : Buffer.from(Array.isArray(v) ? v.join(',') : v, 'latin1');
}

/** A value inside node metadata: a string as its bytes, a number as int64 when whole, else JSON; a map as a protobuf Struct. */
function metadataValue(v: unknown): Buffer | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return str(v);
  if (typeof v === 'boolean') return bool(v);
  if (typeof v === 'number' && Number.isInteger(v)) return int(v);
  if (typeof v === 'object' && !Array.isArray(v)) {
    try {
      return Buffer.from(encodeMessage('google.protobuf.Struct', v as EnvoyJson));
    } catch {
      return undefined;
    }
  }
  return str(JSON.stringify(v));
}

function nodeProperty(node: NodeInfo | undefined, p: readonly string[]): Buffer | undefined {
  if (!node) return undefined;
  if (p[1] === 'id') return str(node.id);
  if (p[1] === 'cluster') return str(node.cluster);
  if (p[1] !== 'metadata') return undefined;
  let v: unknown = node.metadata;
  for (const seg of p.slice(2)) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[seg] : undefined;
  return metadataValue(v);
}

function hostPort(addr: string | undefined): [string, number] | undefined {
  if (!addr) return undefined;
  const i = addr.lastIndexOf(':');
  return i < 0 ? [addr, 0] : [addr.slice(0, i), Number(addr.slice(i + 1))];
}

function join(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function pluginProperty(plugin: PluginProps, p: readonly string[]): Buffer | undefined {
  switch (p[0]) {
    case 'plugin_name':
      return str(plugin.name);
    case 'plugin_root_id':
      return str(plugin.rootId);
    case 'plugin_vm_id':
      return str(plugin.vmId);
    case 'node':
      return nodeProperty(plugin.node, p);
    default:
      return undefined;
  }
}

export function streamProperty(s: StreamProps, p: readonly string[]): Buffer | undefined {
  const info = s.info;
  const c = s.connection;
  const req = s.request;
  const [top, key, sub] = p;
  switch (top) {
    case 'request': {
      switch (key) {
        case 'path':
          return wire(req?.path);
        case 'url_path':
          return wire(req?.path.split('?')[0]);
        case 'query': {
          const q = req?.path.indexOf('?') ?? -1;
          return req ? wire(q < 0 ? '' : req.path.slice(q + 1)) : undefined;
        }
        case 'host':
          return wire(req?.authority);
        case 'scheme':
          return wire(req?.scheme);
        case 'method':
          return wire(req?.method);
        case 'headers':
          return sub !== undefined ? header(req?.headers, sub) : req && pairs(req.headers, [[':authority', req.authority], [':path', req.path], [':method', req.method], [':scheme', req.scheme]]);
        case 'referer':
          return header(req?.headers, 'referer');
        case 'useragent':
          return header(req?.headers, 'user-agent');
        case 'id':
          return wire(info.requestId ?? (req?.headers['x-request-id'] as string | undefined));
        case 'protocol':
          return str(info.protocol || undefined);
        case 'time':
          return int(BigInt(info.startTime) * 1_000_000n);
        case 'duration':
          return info.durationMs === undefined ? undefined : int(BigInt(Math.round(info.durationMs * 1e6)));
        case 'size':
        case 'total_size':
          return int(info.bytesReceived);
        default:
          return undefined;
      }
    }
    case 'response': {
      const res = s.response;
      switch (key) {
        case 'code':
          return info.responseCode || res ? int(info.responseCode || res!.status) : undefined;
        case 'code_details':
          return str(info.responseCodeDetails);
        case 'flags':
          return int(info.responseFlags);
        case 'grpc_status':
          return info.grpcStatus === undefined ? undefined : int(info.grpcStatus);
        case 'headers':
          return sub !== undefined ? header(res?.headers, sub) : res && pairs(res.headers, [[':status', String(res.status)]]);
        case 'trailers':
          return sub !== undefined ? header(s.responseTrailers, sub) : pairs(s.responseTrailers);
        case 'size':
        case 'total_size':
          return int(info.bytesSent);
        default:
          return undefined;
      }
    }
    case 'source':
      if (key === 'address') return str(join(c.remoteAddress, c.remotePort));
      if (key === 'port') return int(c.remotePort);
      return undefined;
    case 'destination':
      if (key === 'address') return str(join(c.localAddress, c.localPort));
      if (key === 'port') return int(c.localPort);
      return undefined;
    case 'connection':
      if (key === 'mtls') return bool(info.mtls);
      if (key === 'requested_server_name') return str(c.sni ?? '');
      if (key === 'uri_san_peer_certificate') return str(c.peerPrincipal);
      return undefined;
    case 'upstream': {
      const hp = hostPort(info.upstreamHost);
      if (key === 'address') return str(info.upstreamHost);
      if (key === 'port') return hp && int(hp[1]);
      return undefined;
    }
    case 'route_name':
    case 'xds':
      if (top === 'route_name' || key === 'route_name') return str(info.routeName);
      if (key === 'cluster_name') return str(info.upstreamCluster);
      return undefined;
    case 'cluster_name':
      return str(info.upstreamCluster);
    case 'listener_direction':
      // envoy.config.core.v3.TrafficDirection: INBOUND 1, OUTBOUND 2 (a gateway's listeners: UNSPECIFIED 0).
      return int(info.direction === 'inbound' ? 1 : info.direction === 'outbound' ? 2 : 0);
    case 'filter_state':
      return filterState(s, p.slice(1).join('.'));
    default:
      return filterState(s, p.join('.'));
  }
}

/** A property a plugin set ("wasm.<key>"), else the filter state object `key`: the stream's, then the connection's. */
function filterState(s: StreamProps, key: string): Buffer | undefined {
  const fs = s.info.filterState;
  const cs = connectionFilterState(s.connection, false);
  const w = 'wasm.' + key;
  const v = fs?.[w] ?? cs?.[w] ?? fs?.[key] ?? cs?.[key];
  if (v === undefined) return undefined;
  if (v instanceof Uint8Array) return Buffer.from(v);
  return str(typeof v === 'string' ? v : JSON.stringify(v));
}
