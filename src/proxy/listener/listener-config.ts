// Envoy's Listener compiled once per LDS update: address, listener filters, filter chains with
// their match criteria, transport socket (TLS) and network filters (from the registry).
import { isIPv6 } from 'node:net';
import type { Issues} from '../config/reader.ts';
import { Reader } from '../config/reader.ts';
import { readSocketAddress } from '../upstream/cluster-config.ts';
import { isPipe } from '../network/pipe-address.ts';
import { readTransportSocket, type TlsContext } from '../tls/tls-context.ts';
import { networkFilterFactory, type NetworkFilter } from '../network/network-filter.ts';
import type { ProxyContext } from '../context.ts';
import type { StreamInfo } from '../stream-info.ts';
import { TLS_INSPECTOR_TYPE, HTTP_INSPECTOR_TYPE, ORIGINAL_DST_TYPE, PROXY_PROTOCOL_TYPE } from '../../envoy/index.ts';
import { readProxyProtocolFilter, proxyProtocolStats, type ProxyProtocolFilterConfig, type ProxyProtocolStats } from './proxy-protocol-filter.ts';
import { readBufferLimit } from '../network/buffer-limit.ts';
import { ListenerInit } from './listener-init.ts';
import type { InitManager } from '../filters/filter.ts';
import { DiscoveredNetworkFilter, discoveredConfig } from '../filters/extension-config-discovery.ts';
import { effectiveTypeUrl } from '../filters/extension-config.ts';
import { compileAccessLogs, type AccessLogger } from '../access-log/access-log.ts';

export interface CidrRange {
  readonly address: string;
  readonly prefixLen: number;
}

export interface FilterChainMatch {
  readonly destinationPort?: number;
  readonly prefixRanges: readonly CidrRange[];
  readonly serverNames: readonly string[];
  readonly transportProtocol?: string;
  readonly applicationProtocols: readonly string[];
  /** direct_source_prefix_ranges: the peer address of the socket itself. */
  readonly directSourcePrefixRanges: readonly CidrRange[];
  /** source_type: 0 ANY, 1 SAME_IP_OR_LOOPBACK, 2 EXTERNAL. */
  readonly sourceType: 0 | 1 | 2;
  readonly sourcePrefixRanges: readonly CidrRange[];
  readonly sourcePorts: readonly number[];
}

export interface FilterChain {
  readonly name: string;
  readonly match: FilterChainMatch;
  readonly tls: TlsContext | undefined;
  readonly filters: readonly NetworkFilter[];
  /** transport_socket_connect_timeout: the TLS handshake must finish within it; 0 = the listener's default. */
  readonly handshakeTimeoutMs: number;
  /** The terminal filter is tcp_proxy: its StreamInfo is the connection's for the listener's access log. */
  readonly terminalIsTcpProxy: boolean;
}

export interface ListenerConfig {
  readonly name: string;
  /** stat_prefix: listener stats are listener.<stat_prefix>. ('' : listener.<address>_<port>.). */
  readonly statPrefix: string;
  /** An IP address, or a pipe's path (port 0; network/pipe-address.ts). */
  readonly address: string;
  readonly port: number;
  /** Pipe.mode: the permissions the socket file gets once bound (undefined: as the umask leaves them). */
  readonly pipeMode?: number;
  readonly bindToPort: boolean;
  /** Bound to an IPv6 address without socket_address.ipv4_compat: IPv6 connections only (IPV6_V6ONLY), as in Envoy. */
  readonly ipv6Only: boolean;
  /** use_original_dst: hand connections to the listener of their original destination (Envoy's virtual listener). */
  readonly useOriginalDst: boolean;
  /** use_original_dst or the original_dst listener filter: filter chains match the original destination. */
  readonly readOriginalDst: boolean;
  /** The proxy_protocol listener filter: the PROXY header is read before the inspectors run, whatever the filters' order. */
  readonly proxyProtocol: { readonly config: ProxyProtocolFilterConfig; readonly stats: ProxyProtocolStats } | undefined;
  readonly tlsInspector: boolean;
  readonly httpInspector: boolean;
  /** Listener filters' filter_disabled, by destination port: true = the inspector skips this connection. */
  readonly tlsInspectorDisabled: PortPredicate | undefined;
  readonly httpInspectorDisabled: PortPredicate | undefined;
  readonly direction: StreamInfo['direction'];
  readonly filterChains: readonly FilterChain[];
  readonly defaultChain: FilterChain | undefined;
  /** Listener filters wait this long for the first bytes (listener_filters_timeout, default 15s; 0 = no limit). */
  readonly inspectTimeoutMs: number;
  readonly continueOnInspectTimeout: boolean;
  /** per_connection_buffer_limit_bytes (default 1 MiB): accepted sockets' watermark, the connection manager's request buffer limit. */
  readonly bufferLimitBytes: number;
  /** access_log: written for connections that reached no filter chain, and when a chain's connection closes (listener-access-log.ts). */
  readonly accessLogs: readonly AccessLogger[];
  /** What this version waits for before it serves (RDS route configurations, remote Wasm code), undefined when nothing: it serves at once. */
  readonly warming: ListenerWarming | undefined;
  readonly raw: Record<string, unknown>;
}

export interface ListenerWarming {
  /** The init targets, for the log ("the Wasm plugin x's code from <url>"). */
  readonly waitingFor: readonly string[];
  /** Starts the targets (once); resolves, never rejects, when every one settled or the version was cancelled. */
  start(): Promise<void>;
  /** The version was dropped while warming (replaced, removed, the proxy stopping): its targets stop; it never serves. */
  cancel(): void;
}

export type PortPredicate = (destinationPort: number) => boolean;

/** Envoy's ListenerFilterChainMatchPredicate; only the destination port is known before inspection. */
function readPortPredicate(r: Reader): PortPredicate {
  let p: PortPredicate = () => false;
  const rules = (key: string) => r.obj(key)?.objs('rules').map(readPortPredicate) ?? [];
  if (r.has('any_match')) {
    const any = r.bool('any_match', false);
    p = () => any;
  } else if (r.has('destination_port_range')) {
    const range = r.obj('destination_port_range')!;
    const start = range.num('start', 0);
    const end = range.num('end', 0);
    range.done();
    if (end <= start) r.issues.error(r.at('destination_port_range'), `empty port range [${start}, ${end}): end is exclusive and must be above start`);
    p = (port) => port >= start && port < end;
  } else if (r.has('not_match')) {
    const inner = readPortPredicate(r.obj('not_match')!);
    p = (port) => !inner(port);
  } else if (r.has('or_match')) {
    const all = rules('or_match');
    p = (port) => all.some((q) => q(port));
  } else if (r.has('and_match')) {
    const all = rules('and_match');
    p = (port) => all.every((q) => q(port));
  } else r.issues.error(r.path, 'a filter_disabled predicate needs one of any_match, destination_port_range, not_match, or_match, and_match');
  r.done();
  return p;
}

function readCidrs(list: Reader[]): CidrRange[] {
  return list.map((c) => {
    const out = { address: c.str('address_prefix'), prefixLen: c.num('prefix_len', -1) };
    c.done();
    return out;
  });
}

const SOURCE_TYPES: Record<string, 0 | 1 | 2> = { ANY: 0, SAME_IP_OR_LOOPBACK: 1, EXTERNAL: 2 };

function readSourceType(m: Reader): 0 | 1 | 2 {
  const v = m.str('source_type', 'ANY');
  const t = SOURCE_TYPES[v];
  if (t !== undefined) return t;
  m.issues.error(m.at('source_type'), `unknown source_type ${v}; expected ANY, SAME_IP_OR_LOOPBACK or EXTERNAL`);
  return 0;
}

interface ChainContext {
  proxy: ProxyContext;
  listenerName: string;
  /** The listener's stats prefix, `listener.<stat_prefix or address_port>.`. */
  listenerStats: string;
  direction: StreamInfo['direction'];
  bufferLimitBytes: number;
  initManager: InitManager;
}

function readChain(r: Reader, ctx: ChainContext, issues: Issues, index: number): FilterChain {
  const name = r.str('name', `chain-${index}`);
  const m = r.obj('filter_chain_match');
  let match: FilterChainMatch = { prefixRanges: [], serverNames: [], applicationProtocols: [], directSourcePrefixRanges: [], sourceType: 0, sourcePrefixRanges: [], sourcePorts: [] };
  if (m) {
    match = {
      destinationPort: m.has('destination_port') ? m.num('destination_port', 0) : undefined,
      prefixRanges: readCidrs(m.objs('prefix_ranges')),
      serverNames: m.strs('server_names').map((s) => s.toLowerCase()),
      transportProtocol: m.str('transport_protocol') || undefined,
      applicationProtocols: m.strs('application_protocols'),
      directSourcePrefixRanges: readCidrs(m.objs('direct_source_prefix_ranges')),
      sourceType: readSourceType(m),
      sourcePrefixRanges: readCidrs(m.objs('source_prefix_ranges')),
      sourcePorts: m.list('source_ports').map(Number),
    };
    m.done();
  }
  const tls = readTransportSocket(r.obj('transport_socket'), true);
  const filters: NetworkFilter[] = [];
  let terminalIsTcpProxy = false;
  const fl = r.objs('filters');
  if (!fl.length) issues.error(r.at('filters'), 'a filter chain needs at least one network filter');
  fl.forEach((f, i) => {
    const fname = f.str('name');
    const tc = f.obj('typed_config');
    const typeUrl = tc?.str('@type');
    const discovery = f.obj('config_discovery');
    f.done();
    if (discovery) {
      if (tc) issues.error(f.path, 'typed_config and config_discovery are alternatives; set only one');
      if (i === fl.length - 1) issues.error(f.path, 'the terminal filter of a chain (http_connection_manager or tcp_proxy) cannot take its config over ECDS (config_discovery)');
      filters.push(discoveredNetworkFilter(fname, discovery, ctx));
      return;
    }
    const factory = networkFilterFactory(typeUrl, fname);
    if (!factory) {
      issues.error(f.path, `unsupported network filter ${typeUrl ?? fname}`);
      tc?.accept(...Object.keys(tc.raw));
      return;
    }
    terminalIsTcpProxy = factory.name === 'envoy.filters.network.tcp_proxy';
    if (factory.terminal !== (i === fl.length - 1)) issues.error(f.path, factory.terminal ? `${factory.name} is terminal and must be the last filter` : `the last network filter must be terminal (http_connection_manager or tcp_proxy), not ${factory.name}`);
    filters.push(factory.compile(tc ?? new Reader({}, f.at('typed_config'), issues), { issues, proxy: ctx.proxy, listenerName: ctx.listenerName, direction: ctx.direction, bufferLimitBytes: ctx.bufferLimitBytes, initManager: ctx.initManager }));
  });
  const handshakeTimeoutMs = r.durationMs('transport_socket_connect_timeout', 0);
  r.accept('metadata');
  r.done();
  return { name, match, tls, filters, handshakeTimeoutMs, terminalIsTcpProxy };
}

export function compileListener(raw: Record<string, unknown>, path: string, issues: Issues, proxy: ProxyContext): ListenerConfig {
  const r = new Reader(raw, path, issues);
  const name = r.str('name');
  if (!name) issues.error(r.at('name'), 'a listener needs a name');
  const sa = readSocketAddress(r.obj('address'), issues, r.at('address')) ?? { address: '0.0.0.0', port: 0, ipv4Compat: false };
  const ipv6Only = isIPv6(sa.address) && !sa.ipv4Compat;
  const tdir = r.str('traffic_direction', 'UNSPECIFIED');
  const direction: StreamInfo['direction'] = tdir === 'INBOUND' ? 'inbound' : tdir === 'OUTBOUND' ? 'outbound' : proxy.node.id.startsWith('router~') ? 'gateway' : 'outbound';
  let tlsInspector = false;
  let httpInspector = false;
  let tlsInspectorDisabled: PortPredicate | undefined;
  let httpInspectorDisabled: PortPredicate | undefined;
  const useOriginalDst = r.bool('use_original_dst', false);
  let readOriginalDst = useOriginalDst;
  let proxyProtocol: ListenerConfig['proxyProtocol'];
  for (const lf of r.objs('listener_filters')) {
    const n = lf.str('name');
    const tc = lf.obj('typed_config');
    const t = tc?.str('@type') ?? '';
    const fd = lf.obj('filter_disabled');
    const disabled = fd ? readPortPredicate(fd) : undefined;
    if (t === TLS_INSPECTOR_TYPE || n === 'envoy.filters.listener.tls_inspector') [tlsInspector, tlsInspectorDisabled] = [true, disabled];
    else if (t === HTTP_INSPECTOR_TYPE || n === 'envoy.filters.listener.http_inspector') [httpInspector, httpInspectorDisabled] = [true, disabled];
    else if (t === ORIGINAL_DST_TYPE || n === 'envoy.filters.listener.original_dst') {
      readOriginalDst = true;
      if (fd) issues.warn(fd.path, 'filter_disabled is not supported on original_dst (the original destination is always read)');
    } else if (t === PROXY_PROTOCOL_TYPE || n === 'envoy.filters.listener.proxy_protocol') {
      const config = readProxyProtocolFilter(tc ?? new Reader({}, lf.at('typed_config'), issues));
      proxyProtocol = { config, stats: proxyProtocolStats(proxy.stats, config) };
      if (fd) issues.warn(fd.path, 'filter_disabled is not supported on proxy_protocol (every connection must start with a PROXY header)');
      lf.done();
      continue;
    } else issues.error(lf.path, `unsupported listener filter ${t || n}; supported: proxy_protocol, tls_inspector, http_inspector, original_dst`);
    // Inspector tuning (read buffer sizes, JA3/JA4 fingerprints for logs): rig reads the whole ClientHello.
    tc?.accept(...Object.keys(tc.raw));
    tc?.done();
    lf.done();
  }
  const bufferLimitBytes = readBufferLimit(r);
  const init = new ListenerInit();
  const ctx: ChainContext = { proxy, listenerName: name, listenerStats: `listener.${r.str('stat_prefix') || addressStatName(sa.address, sa.port)}.`, direction, bufferLimitBytes, initManager: init };
  const filterChains = r.objs('filter_chains').map((c, i) => readChain(c, ctx, issues, i));
  const dc = r.obj('default_filter_chain');
  const defaultChain = dc ? readChain(dc, ctx, issues, -1) : undefined;
  if (!filterChains.length && !defaultChain) issues.error(r.at('filter_chains'), 'a listener needs at least one filter chain');
  const seen = new Map<string, string>();
  for (const c of filterChains) {
    const key = JSON.stringify(c.match);
    const other = seen.get(key);
    if (other !== undefined) issues.error(r.at('filter_chains'), `filter chains "${other}" and "${c.name}" have the same filter_chain_match`);
    seen.set(key, c.name);
  }
  const inspectTimeoutMs = r.durationMs('listener_filters_timeout', 15000);
  const continueOnInspectTimeout = r.bool('continue_on_listener_filters_timeout', false);
  const bindToPort = r.bool('bind_to_port', true);
  const statPrefix = r.str('stat_prefix');
  // Without effect here: metadata (for filters that look it up), SO_REUSEPORT and connection
  // balancing (one process with one event loop accepts every connection).
  r.accept('metadata', 'enable_reuse_port', 'connection_balance_config', 'reuse_port');
  const accessLogs = compileAccessLogs(r.objs('access_log'), proxy.runtime);
  if (r.str('drain_type', 'DEFAULT') === 'MODIFY_ONLY') issues.warn(r.at('drain_type'), 'MODIFY_ONLY is not supported: the listener also drains on shutdown and /drain_listeners, as with DEFAULT');
  r.done();
  const warming = init.empty ? undefined : init;
  return { name, statPrefix, address: sa.address, port: sa.port, pipeMode: sa.pipeMode, bindToPort, ipv6Only, useOriginalDst, readOriginalDst, proxyProtocol, tlsInspector, httpInspector, tlsInspectorDisabled, httpInspectorDisabled, direction, filterChains, defaultChain, inspectTimeoutMs, continueOnInspectTimeout, bufferLimitBytes, accessLogs, warming, raw };
}

/** The listener stats' name of an address without stat_prefix: `<ip>_<port>`, or a pipe's path. */
export function addressStatName(address: string, port: number): string {
  return isPipe(address) ? address : `${address}_${port}`;
}

/** A network filter of a chain whose config comes over ECDS (extension-config-discovery.ts); never terminal. */
function discoveredNetworkFilter(name: string, source: Reader, ctx: ChainContext): NetworkFilter {
  const provider = discoveredConfig<NetworkFilter>('network_filter', name, source, ctx, (t) => networkFilterFactory(t, '')?.terminal === false, (c, issues, initManager) => {
    const factory = networkFilterFactory(effectiveTypeUrl(c.raw), '') ?? networkFilterFactory(c.str('@type'), name);
    if (!factory || factory.terminal) {
      issues.error(c.path, factory ? `${factory.name} is terminal and cannot be configured over ECDS` : `no network filter implements ${effectiveTypeUrl(c.raw) || '(no @type)'}`);
      return { onConnection: () => false };
    }
    return factory.compile(c, { issues, proxy: ctx.proxy, listenerName: ctx.listenerName, direction: ctx.direction, bufferLimitBytes: ctx.bufferLimitBytes, initManager });
  });
  return new DiscoveredNetworkFilter(provider, ctx.proxy.stats.counter(ctx.listenerStats + 'network_extension_config_missing'));
}
