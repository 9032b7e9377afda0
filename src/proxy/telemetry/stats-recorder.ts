// Records one finished stream into Istio's metrics. Label sets are cached per
// (peer metadata, principal, cluster, authority, code/grpc/mtls/protocol, flags) in nested maps.
import type { RequestHead, ResponseHead } from '../filters/filter.ts';
import type { PeerInfo, StreamInfo } from '../stream-info.ts';
import { peerLabels, principalLabels, UNKNOWN, UNKNOWN_PEER, type PeerLabels } from './peer-metadata.ts';
import { applyOverride, httpResponseLabels, peerLabelValues, serviceOfAuthority, serviceOfCluster, serviceOfSni, type HttpChildren, type PeerSide, type TcpChildren } from './istio-metrics.ts';
import type { StatsConfig } from './stats-config.ts';
import { detachedString } from '../../core/detached-string.ts';

const NONE = {};
const MAX_HOSTS = 256;
const MAX_PEERS = 1024;
const OTHER_PEER = {};
const OTHER_HOST = '\u0000other';
type Level<T> = Map<unknown, T>;

/** The map under key k of level m, made when missing. */
function child<T>(m: Level<Level<T>>, k: unknown): Level<T> {
  let v = m.get(k);
  if (v === undefined) m.set(k, (v = new Map()));
  return v;
}

function spiffe(td: string, ns: string, sa: string): string {
  return td && ns !== UNKNOWN && sa !== UNKNOWN ? `spiffe://${td}/ns/${ns}/sa/${sa}` : '';
}

function peerOf(p: PeerInfo | undefined, ignoreMetadata: boolean): PeerLabels {
  if (p?.metadata && !ignoreMetadata) return peerLabels(p.metadata);
  if (p?.principal) return principalLabels(p.principal);
  return UNKNOWN_PEER;
}

/** The peer side as seen by this reporter. */
function side(cfg: StatsConfig, info: StreamInfo, authority: string, ignoreMetadata = false): PeerSide {
  const local = cfg.telemetry.local.labels;
  const td = cfg.trustDomain;
  if (cfg.reporter === 'destination') {
    const p = info.downstreamPeer;
    return {
      peer: peerOf(p, ignoreMetadata),
      peerPrincipal: p?.principal ?? '',
      localPrincipal: info.mtls ? spiffe(td, local.namespace, local.serviceAccount) : '',
      service: serviceOfCluster(info.upstreamCluster) ?? (authority ? serviceOfAuthority(authority, local.namespace) : (serviceOfSni(info.requestedServerName) ?? serviceOfAuthority('', local.namespace))),
    };
  }
  const p = info.upstreamPeer;
  const peer = peerOf(p, ignoreMetadata);
  // A peer that answered the metadata exchange is a sidecar: with Istio's auto mTLS the hop is mutual TLS.
  return {
    peer,
    peerPrincipal: p?.principal ?? (p?.metadata ? spiffe(td, peer.namespace, peer.serviceAccount) : ''),
    localPrincipal: p ? spiffe(td, local.namespace, local.serviceAccount) : '',
    service: serviceOfCluster(info.upstreamCluster) ?? serviceOfAuthority(authority, UNKNOWN),
  };
}

type HttpCells = Level<Level<Level<Level<Level<Level<HttpChildren>>>>>>;

/** What picked the last request's cells: most requests repeat it, and comparing it costs less than the six Map lookups (~630 instructions a request and the key compares they make, callgrind). */
interface LastHttpKey {
  readonly peer: object;
  readonly principal: string;
  readonly cluster: string;
  readonly authKey: string;
  readonly codeKey: number;
  readonly flags: number;
  readonly ch: HttpChildren;
}

interface HttpCache {
  readonly cells: HttpCells;
  last: LastHttpKey | undefined;
}

const httpCaches = new WeakMap<StatsConfig, HttpCache>();

function makeHttpChildren(cfg: StatsConfig, info: StreamInfo, authority: string, req: RequestHead | undefined, res: ResponseHead | undefined, withMessages: boolean, ignoreMetadata = false): HttpChildren {
  const m = cfg.telemetry.metrics;
  const base = { ...peerLabelValues(cfg.reporter, cfg.telemetry.local.labels, side(cfg, info, authority, ignoreMetadata), info.mtls, info.isGrpc ? 'grpc' : 'http'), ...httpResponseLabels(info) };
  const o = cfg.overrides;
  const labels = (n: 'requests_total' | 'request_duration_milliseconds' | 'request_bytes' | 'response_bytes') => applyOverride(base, o.get(n), info, req, res);
  const messages = withMessages ? messageCells(cfg, base, info, req, res) : undefined;
  return {
    requests: o.get('requests_total')?.drop ? undefined : m.requests.child(labels('requests_total')),
    requestMessages: messages?.requestMessages,
    responseMessages: messages?.responseMessages,
    duration: o.get('request_duration_milliseconds')?.drop ? undefined : m.duration.child(labels('request_duration_milliseconds')),
    requestBytes: o.get('request_bytes')?.drop ? undefined : m.requestBytes.child(labels('request_bytes')),
    responseBytes: o.get('response_bytes')?.drop ? undefined : m.responseBytes.child(labels('response_bytes')),
  };
}

/**
 * The message counters of a gRPC stream still in flight (periodic reports), once its peer is known;
 * the same cells recordHttp uses at the end (labels without the response's).
 */
export function grpcMessageCells(cfg: StatsConfig, info: StreamInfo, req: RequestHead | undefined): Pick<HttpChildren, 'requestMessages' | 'responseMessages'> | undefined {
  const peer = cfg.reporter === 'destination' ? info.downstreamPeer : info.upstreamPeer;
  if (!peer?.metadata) return undefined;
  const authority = (info.upstreamCluster ?? '').startsWith('outbound|') || cfg.noHostFallback ? '' : (req?.authority ?? info.authority ?? '');
  const base = peerLabelValues(cfg.reporter, cfg.telemetry.local.labels, side(cfg, info, authority), info.mtls, 'grpc');
  return messageCells(cfg, base, info, req, undefined);
}

function messageCells(cfg: StatsConfig, base: Record<string, string>, info: StreamInfo, req: RequestHead | undefined, res: ResponseHead | undefined): Pick<HttpChildren, 'requestMessages' | 'responseMessages'> {
  const m = cfg.telemetry.metrics;
  const o = cfg.overrides;
  const cell = (n: 'request_messages_total' | 'response_messages_total') => {
    if (o.get(n)?.drop) return undefined;
    const l = { ...applyOverride(base, o.get(n), info, req, res) };
    for (const k of NOT_ON_MESSAGES) delete l[k];
    return (n === 'request_messages_total' ? m.requestMessages : m.responseMessages).child(l);
  };
  return { requestMessages: cell('request_messages_total'), responseMessages: cell('response_messages_total') };
}

/** Istio reports gRPC message counts before the request's own labels are added. */
const NOT_ON_MESSAGES = ['request_protocol', 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy'];

/** gRPC messages of a stream, counted by the stats filter. */
export interface GrpcMessages {
  readonly requests: number;
  readonly responses: number;
}

export function recordHttp(cfg: StatsConfig, info: StreamInfo, req: RequestHead | undefined, res: ResponseHead | undefined, messages?: GrpcMessages): void {
  const authority = req?.authority ?? info.authority ?? '';
  let ch: HttpChildren;
  if (cfg.dynamic) ch = makeHttpChildren(cfg, info, cfg.noHostFallback ? '' : authority, req, res, messages !== undefined);
  else ch = cachedHttpChildren(cfg, info, authority, req, res, messages !== undefined);
  ch.requests?.inc();
  if (messages) {
    ch.requestMessages?.inc(messages.requests);
    ch.responseMessages?.inc(messages.responses);
  }
  ch.duration?.observe(info.durationMs ?? 0);
  ch.requestBytes?.observe(info.bytesReceived);
  ch.responseBytes?.observe(info.bytesSent);
}

/** The cells of a request with these labels, made once per distinct label values. */
function cachedHttpChildren(cfg: StatsConfig, info: StreamInfo, authority: string, req: RequestHead | undefined, res: ResponseHead | undefined, withMessages: boolean): HttpChildren {
  let c = httpCaches.get(cfg);
  if (!c) httpCaches.set(cfg, (c = { cells: new Map(), last: undefined }));
  const peer = cfg.reporter === 'destination' ? info.downstreamPeer : info.upstreamPeer;
  const peerMetadata: object = peer?.metadata ?? NONE;
  const principal = peer?.principal ?? '';
  const cluster = info.upstreamCluster ?? '';
  // The authority only matters when the cluster name does not name the service; the Host header
  // is the client's to choose, so at most MAX_HOSTS distinct ones get their own label set.
  const authorityKey = cluster.startsWith('outbound|') || cfg.noHostFallback ? '' : authority;
  // A gRPC stream whose messages were not counted (gRPC-Web, made gRPC by its filter after the stats filter was created) has no message cells.
  const codeKey = ((info.responseCode * 32 + (info.grpcStatus ?? -1) + 1) * 2 + (info.mtls ? 1 : 0)) * 3 + (info.isGrpc ? (withMessages ? 2 : 1) : 0);
  const flags = info.responseFlags;
  const last = c.last;
  if (last && last.peer === peerMetadata && last.principal === principal && last.cluster === cluster && last.authKey === authorityKey && last.codeKey === codeKey && last.flags === flags) return last.ch;
  const cells = c.cells;
  // Peer metadata arrives in headers too: past MAX_PEERS distinct peers, new ones count as unknown.
  let peerKey = peerMetadata;
  if (peerKey !== NONE && !cells.has(peerKey) && cells.size >= MAX_PEERS) peerKey = OTHER_PEER;
  const byHost = child(child(child(cells, peerKey), principal), cluster);
  let authKey = authorityKey;
  // A new authority is kept as a copy, not a view of the request's head.
  if (authKey && !byHost.has(authKey)) authKey = byHost.size >= MAX_HOSTS ? OTHER_HOST : detachedString(authKey);
  const l6 = child(child(byHost, authKey), codeKey);
  let ch = l6.get(flags);
  if (ch === undefined) l6.set(flags, (ch = makeHttpChildren(cfg, info, authKey === OTHER_HOST ? '' : authKey, req, res, withMessages, peerKey === OTHER_PEER)));
  c.last = { peer: peerMetadata, principal, cluster, authKey: authorityKey, codeKey, flags, ch };
  return ch;
}

type TcpCache = Level<Level<Level<Level<Level<TcpChildren>>>>>;

const tcpCaches = new WeakMap<StatsConfig, TcpCache>();

/**
 * TCP cells for a connection as `info` stands (peer, principal, cluster, mTLS, flags), cached per
 * those values unless CEL dimensions are configured.
 */
export function tcpChildren(cfg: StatsConfig, info: StreamInfo): TcpChildren {
  if (cfg.dynamic) return makeTcpChildren(cfg, info);
  let c = tcpCaches.get(cfg);
  if (!c) tcpCaches.set(cfg, (c = new Map()));
  const peer = cfg.reporter === 'destination' ? info.downstreamPeer : info.upstreamPeer;
  let peerKey: object = peer?.metadata ?? NONE;
  if (peerKey !== NONE && !c.has(peerKey) && c.size >= MAX_PEERS) peerKey = OTHER_PEER;
  const byCluster = child(child(c, peerKey), peer?.principal ?? '');
  // Inbound, the client's SNI names the service (tcp_proxy's cluster is inbound|port||).
  const target = cfg.reporter === 'destination' && info.requestedServerName ? `${info.upstreamCluster ?? ''} ${info.requestedServerName}` : (info.upstreamCluster ?? '');
  const l4 = child(child(byCluster, target), info.mtls);
  let ch = l4.get(info.responseFlags);
  if (!ch) l4.set(info.responseFlags, (ch = makeTcpChildren(cfg, info, peerKey === OTHER_PEER)));
  return ch;
}

function makeTcpChildren(cfg: StatsConfig, info: StreamInfo, ignoreMetadata = false): TcpChildren {
  const m = cfg.telemetry.metrics;
  const base = { ...peerLabelValues(cfg.reporter, cfg.telemetry.local.labels, side(cfg, info, '', ignoreMetadata), info.mtls, 'tcp'), response_flags: httpResponseLabels(info).response_flags };
  const o = cfg.overrides;
  const labels = (n: 'tcp_sent_bytes_total' | 'tcp_received_bytes_total' | 'tcp_connections_opened_total' | 'tcp_connections_closed_total') => applyOverride(base, o.get(n), info, undefined, undefined);
  return {
    sent: o.get('tcp_sent_bytes_total')?.drop ? undefined : m.tcpSent.child(labels('tcp_sent_bytes_total')),
    received: o.get('tcp_received_bytes_total')?.drop ? undefined : m.tcpReceived.child(labels('tcp_received_bytes_total')),
    opened: o.get('tcp_connections_opened_total')?.drop ? undefined : m.tcpOpened.child(labels('tcp_connections_opened_total')),
    closed: o.get('tcp_connections_closed_total')?.drop ? undefined : m.tcpClosed.child(labels('tcp_connections_closed_total')),
  };
}
