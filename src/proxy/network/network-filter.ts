// Network filters (Envoy's envoy.filters.network.*): the listener's filter chain runs them in order
// on each accepted connection. Non-terminal filters (rbac, local_ratelimit) inspect the connection
// and may close it; the last filter is terminal (http_connection_manager, tcp_proxy) and takes the
// socket over. Add one: export a NetworkFilterFactory and a setup() calling
// registerNetworkFilter(factory), listed in src/proxy/extensions.ts. `compile` runs once per LDS
// update (read config through the Reader, call r.done()); `onConnection` runs per connection.
import type net from 'node:net';
import type { Reader, Issues } from '../config/reader.ts';
import type { ConnectionInfo, InitManager } from '../filters/filter.ts';
import type { ProxyContext } from '../context.ts';
import type { StreamInfo } from '../stream-info.ts';

export interface NetworkCompileContext {
  readonly issues: Issues;
  readonly proxy: ProxyContext;
  readonly listenerName: string;
  readonly direction: StreamInfo['direction'];
  /** The listener's per_connection_buffer_limit_bytes (default 1 MiB). */
  readonly bufferLimitBytes: number;
  /** The listener version's init manager (filters/filter.ts InitManager). */
  readonly initManager: InitManager;
}

/** A downstream connection as the filter chain sees it. */
export interface DownstreamConnection {
  readonly socket: net.Socket;
  readonly info: ConnectionInfo;
  /** Bytes read ahead by listener filters (tls_inspector / http_inspector), already unshifted. */
  readonly direction: StreamInfo['direction'];
  /** Original destination (use_original_dst / original_dst listener filter), when known. */
  readonly originalDst?: { address: string; port: number };
  /** ALPN negotiated on a TLS connection the listener terminated. */
  readonly alpn?: string;
  /** The peer's workload metadata, set by a filter that learnt it (istio.metadata_exchange) for the later ones. */
  peerMetadata?: Record<string, unknown>;
  /** Connection dynamic metadata by filter name (network rbac's shadow results, proxy_protocol TLV rules; read by network ext_authz). */
  dynamicMetadata?: Record<string, unknown>;
  /** Connection filter state by key (proxy_protocol TLV rules under tlv_location FILTER_STATE). */
  filterState?: Record<string, unknown>;
  /** Told by the terminal filter (tcp_proxy) about the connection's progress, e.g. by istio.stats. */
  observers?: ConnectionObserver[];
  /** See and may change or hold the bytes the terminal filter relays (tcp_proxy) or reads and writes (http_connection_manager), in chain order. */
  dataFilters?: ConnectionDataFilter[];
}

/**
 * Envoy's read and write filters: client bytes go through the data filters in chain order, upstream
 * bytes (tcp_proxy's upstream, or what http_connection_manager writes) in reverse order, each
 * returning what goes on.
 */
export interface ConnectionDataFilter {
  /** The relay started; `relay` lets the filter send what it held back, or close a side. */
  relayStarted(relay: DataRelay): void;
  /** Bytes from the client (downstream) or the upstream, `end` with the side's FIN: what to pass on (empty: held). */
  onData(fromDownstream: boolean, chunk: Buffer, end: boolean): Buffer;
  /** The connection ended (no relay, or its end): which side closed first, `remote` when the peer did. */
  closed(downstreamFirst: boolean, remote: boolean): void;
}

export interface DataRelay {
  /** The terminal filter is http_connection_manager: no upstream connection of its own, and only the client's close is told (no closed()). */
  readonly http?: true;
  /** Sends bytes the filter held on, through the filters after it. */
  forward(fromDownstream: boolean, data: Buffer): void;
  /** Closes the client's (downstream) or the upstream connection, after what was written. */
  close(downstream: boolean): void;
}

/** Follows a proxied TCP connection; `info` is the terminal filter's StreamInfo. */
export interface ConnectionObserver {
  /**
   * Connected upstream and the upstream filters (e.g. metadata exchange) are done: upstreamCluster,
   * upstreamPeer set; `bytes` counts the relayed bytes as they flow (downstream→upstream in aToB).
   */
  upstreamReady?(info: StreamInfo, bytes: { readonly aToB: number; readonly bToA: number }): void;
  /** The connection ended: byte counts, response flags and duration are final. */
  closed(info: StreamInfo): void;
}

export interface NetworkFilter {
  /**
   * true to go on with the next filter; false when the filter closed (or took over) the connection.
   * A promise holds the chain until it settles (e.g. a preamble is read); the socket stays paused.
   */
  onConnection(conn: DownstreamConnection): boolean | Promise<boolean>;
  /** The listener is draining (SIGTERM / LDS removal): finish in-flight work, close idle connections. */
  drain?(): void;
}

export interface NetworkFilterFactory {
  readonly name: string;
  readonly typeUrls: readonly string[];
  /** Terminal filters must come last in a chain and take the socket over. */
  readonly terminal: boolean;
  compile(config: Reader, ctx: NetworkCompileContext): NetworkFilter;
}

const byType = new Map<string, NetworkFilterFactory>();
const byName = new Map<string, NetworkFilterFactory>();

export function registerNetworkFilter(f: NetworkFilterFactory): void {
  byName.set(f.name, f);
  for (const t of f.typeUrls) byType.set(t, f);
}

export function networkFilterFactory(typeUrl: string | undefined, name: string): NetworkFilterFactory | undefined {
  return (typeUrl ? byType.get(typeUrl) : undefined) ?? byName.get(name);
}

/** Names and typed_config type URLs of every registered network filter (sorted). */
export function registeredNetworkFilters(): { names: string[]; typeUrls: string[] } {
  return { names: [...byName.keys()].sort(), typeUrls: [...byType.keys()].sort() };
}

export type { Issues };
