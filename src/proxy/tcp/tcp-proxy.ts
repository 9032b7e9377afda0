// envoy.filters.network.tcp_proxy: a terminal network filter relaying bytes to a host of the
// configured cluster (or of weighted_clusters), with connect timeout, idle timeout (default 1h),
// max_downstream_connection_duration (DT), half-close, ORIGINAL_DST support and a StreamInfo per
// connection, whose filter state is the connection's: a filter before it may name the cluster there
// (envoy.tcp_proxy.cluster, e.g. a Wasm plugin through set_envoy_filter_state). Upstream network
// filters (Cluster.filters, cluster hooks' onUpstreamConnection) run on a new upstream connection before
// bytes flow; ConnectionObservers of the downstream connection hear of upstream readiness and the end.
import type net from 'node:net';
import type tls from 'node:tls';
import { TCP_PROXY_TYPE } from '../../envoy/index.ts';
import type { DownstreamConnection, NetworkCompileContext, NetworkFilter, NetworkFilterFactory } from '../network/network-filter.ts';
import type { Reader } from '../config/reader.ts';
import { compileAccessLogs, type AccessLogger } from '../access-log/access-log.ts';
import { newStreamInfo } from '../stream-info.ts';
import { ResponseFlag } from '../response-flags.ts';
import { DiscoveryType } from '../upstream/cluster-config.ts';
import { connectHostStream } from '../upstream/stream-connect.ts';
import { UpstreamOutcome, type ClusterHook } from '../upstream/cluster-hooks.ts';
import type { StreamInfo } from '../stream-info.ts';
import { spiffeId } from '../tls/tls-context.ts';
import type { ProxyContext } from '../context.ts';
import type { Stat } from '../stats/stats.ts';
import type { Host } from '../upstream/host.ts';
import type { ClusterStats, UpstreamHost } from '../upstream/cluster.ts';
import { pipeSockets } from './pipe.ts';
import { xxHash64 } from '../upstream/lb/xxhash.ts';
import { openH1Tunnel, openPooledH2Tunnel, readTunnelingConfig, type TunnelingConfig } from './http-tunnel.ts';
import { PooledStreamSlot } from '../upstream/pooled-connect.ts';
import { transportFailureReason } from '../upstream/transport-failure-reason.ts';

/** Envoy's PerConnectionCluster: the cluster a filter before tcp_proxy chose for the connection. */
export const TCP_PROXY_CLUSTER_STATE = 'envoy.tcp_proxy.cluster';

interface TcpProxyConfig {
  statPrefix: string;
  clusters: { name: string; weight: number }[];
  totalWeight: number;
  idleTimeoutMs: number;
  /** max_downstream_connection_duration from the upstream connection on (0: none). */
  maxDurationMs: number;
  maxConnectAttempts: number;
  /** hash_policy source_ip: hash-based clusters (ring hash, maglev) pick by the client address. */
  hashSourceIp: boolean;
  /** tunneling_config: the bytes go through a CONNECT (or POST) to the upstream (http-tunnel.ts). */
  tunneling: TunnelingConfig | undefined;
  accessLogs: AccessLogger[];
  cxTotal: Stat;
  cxActive: Stat;
  cxNoRoute: Stat;
  maxDurationReached: Stat;
}

class TcpProxy implements NetworkFilter {
  private readonly c: TcpProxyConfig;
  private readonly ctx: ProxyContext;
  private readonly direction: NetworkCompileContext['direction'];

  constructor(c: TcpProxyConfig, ctx: ProxyContext, direction: NetworkCompileContext['direction']) {
    this.c = c;
    this.ctx = ctx;
    this.direction = direction;
  }

  onConnection(conn: DownstreamConnection): boolean {
    const c = this.c;
    const socket = conn.socket;
    c.cxTotal.value++;
    c.cxActive.value++;
    const info = newStreamInfo(this.direction, '');
    info.downstreamRemoteAddress = `${conn.info.remoteAddress}:${conn.info.remotePort}`;
    info.downstreamDirectRemoteAddress = conn.info.directRemoteAddress === undefined ? info.downstreamRemoteAddress : `${conn.info.directRemoteAddress}:${conn.info.directRemotePort}`;
    info.downstreamRemoteIp = conn.info.remoteAddress;
    info.downstreamLocalAddress = `${conn.info.localAddress}:${conn.info.localPort}`;
    info.requestedServerName = conn.info.sni;
    info.mtls = conn.info.tls && conn.info.peerPrincipal !== undefined;
    if (conn.info.peerPrincipal || conn.peerMetadata) info.downstreamPeer = { principal: conn.info.peerPrincipal, metadata: conn.peerMetadata };
    info.filterState = conn.filterState;
    const observers = conn.observers;
    const end = () => {
      c.cxActive.value--;
      // Data filters hear of a connection that ended before any relay (the relay's end tells them itself).
      if (conn.dataFilters && !relayed) for (const f of conn.dataFilters) f.closed(false, false);
      info.durationMs = performance.now() - info.startMonotonic;
      for (const l of c.accessLogs) l.log(info, undefined, undefined);
      for (const o of this.ctx.observers) o(info, undefined, undefined);
      if (observers) for (const o of observers) o.closed(info);
    };
    let relayed = false;
    const chosen = conn.filterState?.[TCP_PROXY_CLUSTER_STATE];
    let name = typeof chosen === 'string' ? chosen : (c.clusters[0]?.name ?? '');
    if (typeof chosen !== 'string' && c.clusters.length > 1) {
      let p = Math.random() * c.totalWeight;
      name = c.clusters.find((x) => (p -= x.weight) < 0)?.name ?? name;
    }
    info.upstreamCluster = name;
    const cluster = this.ctx.clusters.get(name);
    socket.on('error', () => undefined);
    if (!cluster) {
      c.cxNoRoute.value++;
      info.responseFlags |= ResponseFlag.NoClusterFound;
      socket.destroy();
      end();
      return false;
    }
    socket.pause();
    let attempts = 0;
    const tried = new Set<Host>();
    const tryConnect = (): void => {
      attempts++;
      let host;
      if (cluster.config.type === DiscoveryType.OriginalDst) {
        const d = conn.originalDst;
        host = d ? cluster.originalDstHost(d.address, d.port) : undefined;
      } else host = cluster.pick({ attempted: tried, hash: c.hashSourceIp ? sourceIpHash(conn.info.remoteAddress) : undefined });
      if (!host) {
        info.responseFlags |= ResponseFlag.NoHealthyUpstream;
        cluster.s.cxNoneHealthy.value++;
        socket.destroy();
        end();
        return;
      }
      tried.add(host);
      info.upstreamHost = host.key;
      if (c.tunneling && cluster.config.http2) return pooledTunnel(host, c.tunneling);
      for (const h of cluster.hooks) if (h.admitConnection && !h.admitConnection(host)) return overflow();
      const tlsCtx = cluster.transportFor(host).tls;
      let up: net.Socket;
      try {
        up = connectHostStream(cluster, host, this.ctx.secrets, conn.info);
      } catch (e) {
        info.upstreamTransportFailureReason = transportFailureReason(e as Error);
        info.responseFlags |= ResponseFlag.UpstreamConnectionFailure;
        socket.destroy();
        end();
        return;
      }
      cluster.s.cxTotal.value++;
      const openedAt = performance.now();
      const timer = setTimeout(() => {
        cluster.s.cxConnectTimeout.value++;
        up.destroy(new Error('connect timeout'));
      }, cluster.config.connectTimeoutMs);
      let connected = false;
      up.once('error', (e) => {
        if (connected) return;
        clearTimeout(timer);
        cluster.s.cxConnectFail.value++;
        for (const h of cluster.hooks) {
          h.onResult?.(host, UpstreamOutcome.ConnectFailed, 0);
          h.connectionClosed?.(host);
        }
        info.upstreamTransportFailureReason = transportFailureReason(e);
        if (attempts < c.maxConnectAttempts && !socket.destroyed) return tryConnect();
        info.responseFlags |= ResponseFlag.UpstreamConnectionFailure;
        socket.destroy();
        end();
      });
      up.once(tlsCtx ? 'secureConnect' : 'connect', () => {
        connected = true;
        clearTimeout(timer);
        cluster.s.cxActive.value++;
        cluster.s.cxConnectMs.recordSince(openedAt);
        cluster.s.cxBytes.opened(up);
        // Envoy's TCP and HTTP/1.1 pools put the connection's one stream (the relay, or the
        // tunnel's CONNECT or POST) on it once connected: an upstream request of the host.
        host.activeRequests++;
        host.rqTotal++;
        cluster.s.rqTotal.value++;
        info.upstreamLocalAddress = `${up.localAddress}:${up.localPort}`;
        for (const h of cluster.hooks) h.onResult?.(host, UpstreamOutcome.Success, 0);
        if (tlsCtx) {
          const principal = spiffeId((up as tls.TLSSocket).getPeerCertificate());
          if (principal) info.upstreamPeer = { principal };
        }
        const filters = cluster.hooks.filter((h) => h.onUpstreamConnection);
        if (filters.length === 0) return ready();
        up.on('error', () => undefined);
        void runUpstreamFilters(filters, up, info).then((ok) => {
          if (!ok) info.responseFlags |= ResponseFlag.UpstreamConnectionTermination;
          if (ok && !socket.destroyed && !up.destroyed) return ready();
          host.activeRequests--;
          closedUpstream(cluster.s, up, up.destroyed, openedAt);
          for (const h of cluster.hooks) h.connectionClosed?.(host);
          up.destroy();
          socket.destroy();
          end();
        });
      });
      /** The upstream connection is done with: the stream and the connection end (`remote`: the upstream's doing). */
      const closed = (remote: boolean) => {
        host.activeRequests--;
        closedUpstream(cluster.s, up, remote, openedAt);
        for (const h of cluster.hooks) h.connectionClosed?.(host);
      };
      const ready = () => (c.tunneling ? tunnel(c.tunneling) : relay(up, closed));
      const tunnel = (t: TunnelingConfig) => {
        const state = (conn.filterState ??= {});
        info.filterState = state;
        const abort = openH1Tunnel(up, t, info, state, (failure, stream) => {
          socket.off('close', abort);
          if (stream) return relay(stream, closed);
          // Envoy: an answer other than 2xx, a reset or a close fails the upstream
          // "pool" with a remote connection failure: UF, an outlier connect failure, another attempt
          // within max_connect_attempts.
          info.upstreamTransportFailureReason = failure!.reason;
          host.activeRequests--;
          // A refusal is closed here (Envoy resets the stream); a reset or close came from the upstream.
          closedUpstream(cluster.s, up, failure!.status === 0, openedAt);
          for (const h of cluster.hooks) {
            h.onResult?.(host, UpstreamOutcome.ConnectFailed, 0);
            h.connectionClosed?.(host);
          }
          if (attempts < c.maxConnectAttempts && !socket.destroyed) return tryConnect();
          info.responseFlags |= ResponseFlag.UpstreamConnectionFailure;
          socket.destroy();
          end();
        });
        socket.once('close', abort);
      };
    };
    /** Relays the bytes over `stream` of `host`; `closed` when done (`remote`: the upstream ended or broke it). */
    const relay = (stream: net.Socket, closed: (remote: boolean) => void) => {
      relayed = true;
      let durationTimer: NodeJS.Timeout | undefined;
      const pipe = pipeSockets(socket, stream, c.idleTimeoutMs, (r) => {
        if (durationTimer) clearTimeout(durationTimer);
        closed(r.reason === 'b' || r.reason.startsWith('upstream'));
        info.bytesReceived = r.aToB;
        info.bytesSent = r.bToA;
        if (r.reason === 'idle') info.responseFlags |= ResponseFlag.StreamIdleTimeout;
        else if (r.reason.startsWith('upstream')) info.responseFlags |= ResponseFlag.UpstreamConnectionTermination;
        end();
      }, conn.dataFilters);
      if (c.maxDurationMs > 0) {
        durationTimer = setTimeout(() => {
          // Envoy closes both connections without flushing, flagged DT.
          info.responseFlags |= ResponseFlag.DurationTimeout;
          c.maxDurationReached.value++;
          pipe.close();
        }, c.maxDurationMs);
      }
      if (observers) for (const o of observers) o.upstreamReady?.(info, pipe.result);
      socket.resume();
      stream.resume();
    };
    /**
     * A tunnel over an HTTP/2 cluster: a stream of the host's pool (http-tunnel.ts), under the
     * cluster's circuit breakers as Envoy's pool (max_requests; max_pending_requests while it waits
     * for a connection): a refusal closes the connection, flagged UO. A refused or reset stream is
     * a connect failure of this attempt only.
     */
    const pooledTunnel = (host: UpstreamHost, t: TunnelingConfig): void => {
      const slot = PooledStreamSlot.take(cluster.hooks);
      if (!slot) return overflow();
      let onStream = false;
      const done = () => {
        slot.release();
        if (onStream) host.activeRequests--;
      };
      const state = (conn.filterState ??= {});
      info.filterState = state;
      // The pool charges the host's rq_total.
      const attached = () => {
        onStream = true;
        host.activeRequests++;
        cluster.s.rqTotal.value++;
      };
      // Behind an upstream_proxy_protocol transport socket the pool is this connection's own (cluster.pool).
      const pool = cluster.pool(host, true, undefined, { info: conn.info, onClose: (fn) => socket.once('close', fn) });
      // Registered first: an overflow calls back before openPooledH2Tunnel returns.
      const onClose = () => abort();
      socket.once('close', onClose);
      const abort = openPooledH2Tunnel(pool, slot, t, info, state, attached, (failure, stream) => {
        socket.off('close', onClose);
        if (stream) {
          // The pool's latest TLS connection to the host names its peer, as for the router's requests.
          if (host.tlsPeer) info.upstreamPeer = host.tlsPeer;
          return relay(stream, done);
        }
        done();
        if (failure!.overflow) return overflow();
        info.upstreamTransportFailureReason = failure!.reason;
        for (const h of cluster.hooks) h.onResult?.(host, UpstreamOutcome.ConnectFailed, 0);
        if (attempts < c.maxConnectAttempts && !socket.destroyed) return tryConnect();
        info.responseFlags |= ResponseFlag.UpstreamConnectionFailure;
        socket.destroy();
        end();
      });
    };
    /** A circuit breaker refused the upstream connection or stream: the connection closes, flagged UO. */
    const overflow = (): void => {
      info.responseFlags |= ResponseFlag.UpstreamOverflow;
      socket.destroy();
      end();
    };
    tryConnect();
    return false;
  }
}

/** An established upstream connection (made at `openedAt`) closed: remote when the upstream ended or broke it. */
function closedUpstream(s: ClusterStats, up: net.Socket, remote: boolean, openedAt: number): void {
  s.cxLengthMs.recordSince(openedAt);
  s.cxActive.value--;
  s.cxDestroy.value++;
  if (remote) s.cxDestroyRemote.value++;
  else s.cxDestroyLocal.value++;
  s.cxBytes.closed(up);
}

/** Cluster.filters in order; false when one failed (the connection is then closed). */
async function runUpstreamFilters(hooks: readonly ClusterHook[], up: net.Socket, info: StreamInfo): Promise<boolean> {
  try {
    for (const h of hooks) await h.onUpstreamConnection!(up, info);
    return true;
  } catch (e) {
    info.upstreamTransportFailureReason = (e as Error).message;
    return false;
  }
}

/** As HTTP's connection_properties.source_ip: xxHash64 of the address (an IPv4-mapped one as IPv4). */
function sourceIpHash(ip: string): bigint {
  return xxHash64(ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip);
}

/** hash_policy (at most one, as Envoy): source_ip is supported; filter_state is named by done(). */
function readTcpHashPolicy(r: Reader): boolean {
  const list = r.objs('hash_policy');
  if (list.length > 1) r.issues.error(r.at('hash_policy'), `at most one hash policy (got ${list.length})`);
  let sourceIp = false;
  for (const p of list) {
    const ip = p.obj('source_ip');
    if (ip) {
      sourceIp = true;
      ip.done();
    }
    p.done();
  }
  return sourceIp;
}

/** Subset load balancing is not supported: metadata_match would pick among all hosts. */
function warnMetadataMatch(r: Reader): void {
  if (r.has('metadata_match')) r.issues.warn(r.at('metadata_match'), 'subset load balancing is not supported: metadata_match is ignored and any host of the cluster is used');
}

export const tcpProxyFactory: NetworkFilterFactory = {
  name: 'envoy.filters.network.tcp_proxy',
  typeUrls: [TCP_PROXY_TYPE],
  terminal: true,
  compile(r: Reader, ctx: NetworkCompileContext): NetworkFilter {
    const statPrefix = r.str('stat_prefix');
    if (!statPrefix) ctx.issues.error(r.at('stat_prefix'), 'missing stat_prefix');
    const clusters: { name: string; weight: number }[] = [];
    if (r.has('cluster')) clusters.push({ name: r.str('cluster'), weight: 1 });
    const wc = r.obj('weighted_clusters');
    if (wc) {
      for (const c of wc.objs('clusters')) {
        clusters.push({ name: c.str('name'), weight: c.num('weight', 0) });
        warnMetadataMatch(c);
        c.done();
      }
      wc.done();
    }
    if (clusters.length === 0) ctx.issues.error(r.path, 'tcp_proxy needs cluster or weighted_clusters');
    const idleTimeoutMs = r.durationMs('idle_timeout', 3600_000);
    const maxDurationMs = r.durationMs('max_downstream_connection_duration', 0);
    const maxConnectAttempts = r.num('max_connect_attempts', 1);
    const accessLogs = compileAccessLogs(r.objs('access_log'), ctx.proxy.runtime);
    warnMetadataMatch(r);
    const hashSourceIp = readTcpHashPolicy(r);
    const tc = r.obj('tunneling_config');
    const tunneling = tc ? readTunnelingConfig(tc) : undefined;
    r.done();
    const s = ctx.proxy.stats;
    const p = `tcp.${statPrefix}.`;
    return new TcpProxy(
      {
        statPrefix,
        clusters,
        totalWeight: clusters.reduce((a, c) => a + c.weight, 0),
        idleTimeoutMs,
        maxDurationMs,
        maxConnectAttempts,
        hashSourceIp,
        tunneling,
        accessLogs,
        cxTotal: s.counter(p + 'downstream_cx_total'),
        cxActive: s.stateGauge(p + 'downstream_cx_active'), // drain waits for it, matched or not
        cxNoRoute: s.counter(p + 'downstream_cx_no_route'),
        maxDurationReached: s.counter(p + 'max_downstream_connection_duration'),
      },
      ctx.proxy,
      ctx.direction,
    );
  },
};
