// Envoy's Listener.access_log. Written once per accepted connection: when a listener filter
// (proxy_protocol, the inspectors' timeout, the peer going away) closed it before it reached a
// filter chain; when no filter chain matched (response flag NR, details filter_chain_not_found);
// else when the connection a chain took closes. That last one is the connection's StreamInfo: for
// tcp_proxy the one it filled (Envoy's tcp_proxy writes the connection's own), otherwise the
// downstream side only (an HTTP connection's requests each have their own). Istio's listener log
// keeps only NR through a response_flag_filter.
import type net from 'node:net';
import type { ListenerConfig } from './listener-config.ts';
import type { ConnectionFacts } from './filter-chain-match.ts';
import type { ConnectionObserver } from '../network/network-filter.ts';
import { newStreamInfo, type StreamInfo } from '../stream-info.ts';
import { ResponseFlag } from '../response-flags.ts';
import { formatIpPort } from '../network/ip-port.ts';

/** Envoy's ResponseCodeDetails::FilterChainNotFound. */
export const FILTER_CHAIN_NOT_FOUND = 'filter_chain_not_found';

/** The listener's view of a connection: start at accept, downstream addresses as the listener filters left them. */
function connectionInfo(config: ListenerConfig, facts: ConnectionFacts): StreamInfo {
  // No protocol: Envoy's connection-level StreamInfo has none (%PROTOCOL% prints "-").
  const info = newStreamInfo(config.direction, '');
  info.startMonotonic = facts.acceptedAt;
  info.startTime = performance.timeOrigin + facts.acceptedAt;
  info.downstreamRemoteAddress = formatIpPort(facts.sourceIp, facts.sourcePort);
  info.downstreamRemoteIp = facts.sourceIp;
  info.downstreamDirectRemoteAddress = formatIpPort(facts.directSourceIp, facts.directSourcePort);
  info.downstreamLocalAddress = formatIpPort(facts.destinationIp, facts.destinationPort);
  info.requestedServerName = facts.serverName;
  return info;
}

function emit(config: ListenerConfig, info: StreamInfo): void {
  info.durationMs ??= performance.now() - info.startMonotonic;
  for (const l of config.accessLogs) l.log(info, undefined, undefined);
}

/** A connection closed before it reached a filter chain (listener filters), or that matched none (`noChain`). */
export function logUnconnected(config: ListenerConfig, facts: ConnectionFacts, noChain = false): void {
  if (!config.accessLogs.length) return;
  const info = connectionInfo(config, facts);
  if (noChain) {
    info.responseFlags |= ResponseFlag.NoRouteFound;
    info.responseCodeDetails = FILTER_CHAIN_NOT_FOUND;
  }
  emit(config, info);
}

/**
 * A connection a filter chain took: logged when it ends. Returns the observer tcp_proxy tells its
 * StreamInfo at the end, `reachedTcpProxy`, to call once tcp_proxy has the connection (then
 * its StreamInfo is the one logged, not the listener's own), and `transportFailed`, to call with
 * the reason its TLS failed (%DOWNSTREAM_TRANSPORT_FAILURE_REASON%, the first one kept); undefined
 * without access logs.
 */
export function logWhenClosed(config: ListenerConfig, facts: ConnectionFacts, socket: net.Socket): { observer: ConnectionObserver; reachedTcpProxy(): void; transportFailed(reason: string): void } | undefined {
  if (!config.accessLogs.length) return undefined;
  const own = connectionInfo(config, facts);
  let tcpProxy = false;
  socket.once('close', () => {
    if (!tcpProxy) emit(config, own);
  });
  return {
    observer: { closed: (info) => emit(config, info) },
    reachedTcpProxy: () => (tcpProxy = true),
    transportFailed: (reason) => (own.downstreamTransportFailureReason ??= reason),
  };
}
