// A live cluster: its hosts (kept by key across EDS/DNS updates so that health and in-flight
// counts survive), its load balancer (rebuilt on host or health change), connection pools per host
// (HTTP/1.1: our own h1-pool/; HTTP/2 and h2c: undici's, for its h2 multiplexing), its stats and the hooks of circuit breakers / outlier detection /
// health checks (cluster-hooks.ts). A CDS update builds a new Cluster; the old one closes its
// pools gracefully, so in-flight requests finish on the connections they started on.
import type { Pool as PoolTypes, buildConnector as Connector } from 'undici';
import { undici } from './undici-pool.ts';
import { UNGATED, UNLIMITED_PENDING, type ConnectionGate, type PendingGate, type UpstreamPool } from './upstream-pool.ts';
import { H1Pool, type H1PoolStats } from './h1-pool/h1-pool.ts';
import { h1Connector } from './h1-pool/h1-connect.ts';
import type { Host, HostCounters, Locality } from './host.ts';
import type { LoadBalancer, LoadBalancerContext } from './lb/load-balancer.ts';
import type { ClusterConfig, EndpointSpec } from './cluster-config.ts';
import { clusterHookFactories, type ClusterHandle, type ClusterHook } from './cluster-hooks.ts';
import { BasicResponseStats, StatusCounters, type Histogram, type Stat, type Stats } from '../stats/stats.ts';
import type { Issues } from '../config/reader.ts';
import { NEVER, type FractionalPercent } from '../config/fractional-percent.ts';
import type { SecretStore } from '../tls/secrets.ts';
import { sanMismatch, type TlsContext } from '../tls/tls-context.ts';
import { countUpstreamTls, sslStats, type SslStats } from '../tls/upstream-tls-stats.ts';
import { tlsPeer, type PeerInfo } from '../stream-info.ts';
import type { PeerCertificate, SecureContext, TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { createLoadBalancer } from './lb/index.ts';
import type { EnvoyRuntime } from '../envoy-runtime/index.ts';
import { alpnConnector } from './alpn-connector.ts';
import { markUpstreamH2Socket, watchUpstreamH2Resets } from './h2-reset-watch.ts';
import { setTcpKeepalive } from '../network/tcp-keepalive.ts';
import { formatIpPort } from '../network/ip-port.ts';
import { isPipe, socketPath } from '../network/pipe-address.ts';
import { connectWithProxyHeader, proxyHeaderFor, proxyPoolKey, type DownstreamOrigin, type ProxyHeaderOptions, type UpstreamTransport } from './upstream-proxy-protocol.ts';
import type { ProxyTlv } from '../network/proxy-protocol-header.ts';

/** Filter state key of a request's upstream ALPN override (Envoy's, set by istio.alpn). */
export const APPLICATION_PROTOCOLS_STATE = 'envoy.network.application_protocols';

export class UpstreamHost implements Host, HostCounters {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly hostname?: string;
  weight: number;
  locality: Locality;
  priority: number;
  metadata: Record<string, Record<string, unknown>>;
  /** The endpoint's own PROXY v2 TLVs (PerHostConfig), for an upstream_proxy_protocol socket. */
  proxyProtocolTlvs: readonly ProxyTlv[] | undefined;
  healthFlags: number;
  activeRequests = 0;
  cxTotal = 0;
  cxActive = 0;
  cxConnectFail = 0;
  rqTotal = 0;
  rqError = 0;
  rqSuccess = 0;
  rqTimeout = 0;
  /** Health bits that came from EDS; the rest (active HC, outlier) belong to the hooks. */
  edsFlags: number;
  /** Identity from the certificate of the latest TLS connection to this host (StreamInfo.upstreamPeer). */
  tlsPeer: PeerInfo | undefined = undefined;

  constructor(e: EndpointSpec) {
    this.key = formatIpPort(e.address, e.port);
    this.address = e.address;
    this.port = e.port;
    this.hostname = e.hostname;
    this.weight = e.weight;
    this.locality = e.locality;
    this.priority = e.priority;
    this.metadata = e.metadata;
    this.proxyProtocolTlvs = e.proxyProtocolTlvs;
    this.edsFlags = e.healthFlags;
    this.healthFlags = e.healthFlags;
  }
}

/** Envoy's cluster stats: those the HTTP/1.1 pool counts (H1PoolStats) and the rest. */
export interface ClusterStats extends H1PoolStats {
  readonly rqTotal: Stat;
  readonly rqActive: Stat;
  readonly rqCompleted: Stat;
  readonly rqTimeout: Stat;
  readonly rqPerTryTimeout: Stat;
  readonly rqPerTryIdleTimeout: Stat;
  readonly rqRetry: Stat;
  readonly rqRetrySuccess: Stat;
  readonly rqRetryLimitExceeded: Stat;
  readonly rqPendingOverflow: Stat;
  readonly cxOverflow: Stat;
  readonly rqRxReset: Stat;
  readonly rqTxReset: Stat;
  readonly rqDropOverload: Stat;
  readonly cxTotal: Stat;
  readonly cxActive: Stat;
  readonly cxConnectFail: Stat;
  readonly cxNoneHealthy: Stat;
  readonly cxDestroy: Stat;
  readonly cxHttp1Total: Stat;
  readonly cxHttp2Total: Stat;
  readonly membershipTotal: Stat;
  readonly membershipHealthy: Stat;
  readonly codes: StatusCounters;
  /** Responses the router retried: cluster.<name>.retry.upstream_rq_* (Envoy's router.cc onUpstreamHeaders). */
  readonly retryCodes: BasicResponseStats;
  /** Downstream request complete (here: routed) to upstream response complete, ms. */
  readonly rqTime: Histogram;
}

const NO_BALANCER: LoadBalancer = { pick: () => undefined };

function sameMatch(want: Record<string, unknown>, md: Record<string, Record<string, unknown>>): boolean {
  const have = md['envoy.transport_socket_match'] ?? {};
  for (const [k, v] of Object.entries(want)) if (have[k] !== v) return false;
  return true;
}

export class Cluster implements ClusterHandle {
  readonly name: string;
  readonly config: ClusterConfig;
  readonly stats: Stats;
  readonly statPrefix: string;
  readonly s: ClusterStats;
  /** cluster.<name>.ssl.*: only a cluster with a TLS transport socket has them, as Envoy's. */
  readonly ssl: SslStats | undefined;
  readonly hooks: readonly ClusterHook[];
  /** Hosts discovered and not yet resolved (EDS cluster before its first assignment, DNS pending). */
  initialized = false;
  private hostList: UpstreamHost[] = [];
  /** Hosts, and those without a health flag, for the health check filter's cluster_min_healthy_percentages (the membership gauges may be rejected by the stats matcher). */
  membershipTotal = 0;
  membershipHealthy = 0;
  private byKey = new Map<string, UpstreamHost>();
  private balancer: LoadBalancer;
  private readonly pools = new Map<string, UpstreamPool>();
  /** Shared by the cluster's HTTP/1.1 pools (newPendingGate). */
  private pendingGate: PendingGate | undefined;
  readonly secrets: SecretStore;
  /** Envoy's runtime: the balancer reads its keys (upstream.healthy_panic_threshold...) at every rebuild (host or health changes), as Envoy at refresh. */
  private readonly runtime: EnvoyRuntime | undefined;
  private closed = false;

  constructor(config: ClusterConfig, stats: Stats, secrets: SecretStore, issues: Issues, runtime?: EnvoyRuntime) {
    this.name = config.name;
    this.config = config;
    this.stats = stats;
    this.secrets = secrets;
    this.runtime = runtime;
    this.statPrefix = `cluster.${config.name}.`;
    this.dropOverload = config.loadAssignment?.dropOverload ?? NEVER;
    const p = this.statPrefix;
    this.s = {
      rqTotal: stats.counter(p + 'upstream_rq_total'),
      rqActive: stats.gauge(p + 'upstream_rq_active'),
      rqCompleted: stats.counter(p + 'upstream_rq_completed'),
      rqTimeout: stats.counter(p + 'upstream_rq_timeout'),
      rqPerTryTimeout: stats.counter(p + 'upstream_rq_per_try_timeout'),
      rqPerTryIdleTimeout: stats.counter(p + 'upstream_rq_per_try_idle_timeout'),
      rqRetry: stats.counter(p + 'upstream_rq_retry'),
      rqRetrySuccess: stats.counter(p + 'upstream_rq_retry_success'),
      rqRetryLimitExceeded: stats.counter(p + 'upstream_rq_retry_limit_exceeded'),
      rqPendingOverflow: stats.counter(p + 'upstream_rq_pending_overflow'),
      cxOverflow: stats.counter(p + 'upstream_cx_overflow'),
      rqRxReset: stats.counter(p + 'upstream_rq_rx_reset'),
      rqTxReset: stats.counter(p + 'upstream_rq_tx_reset'),
      rqDropOverload: stats.counter(p + 'upstream_rq_drop_overload'),
      cxTotal: stats.counter(p + 'upstream_cx_total'),
      cxActive: stats.gauge(p + 'upstream_cx_active'),
      cxConnectFail: stats.counter(p + 'upstream_cx_connect_fail'),
      cxNoneHealthy: stats.counter(p + 'upstream_cx_none_healthy'),
      cxDestroy: stats.counter(p + 'upstream_cx_destroy'),
      cxHttp1Total: stats.counter(p + 'upstream_cx_http1_total'),
      cxHttp2Total: stats.counter(p + 'upstream_cx_http2_total'),
      cxConnectTimeout: stats.counter(p + 'upstream_cx_connect_timeout'),
      cxIdleTimeout: stats.counter(p + 'upstream_cx_idle_timeout'),
      cxMaxRequests: stats.counter(p + 'upstream_cx_max_requests'),
      cxMaxDurationReached: stats.counter(p + 'upstream_cx_max_duration_reached'),
      cxProtocolError: stats.counter(p + 'upstream_cx_protocol_error'),
      cxDestroyLocal: stats.counter(p + 'upstream_cx_destroy_local'),
      cxDestroyRemote: stats.counter(p + 'upstream_cx_destroy_remote'),
      cxDestroyWithActiveRq: stats.counter(p + 'upstream_cx_destroy_with_active_rq'),
      cxDestroyLocalWithActiveRq: stats.counter(p + 'upstream_cx_destroy_local_with_active_rq'),
      cxDestroyRemoteWithActiveRq: stats.counter(p + 'upstream_cx_destroy_remote_with_active_rq'),
      cxBytes: stats.socketBytes(p),
      rqPendingTotal: stats.counter(p + 'upstream_rq_pending_total'),
      rqPendingActive: stats.gauge(p + 'upstream_rq_pending_active'),
      rqPendingFailureEject: stats.counter(p + 'upstream_rq_pending_failure_eject'),
      rqCancelled: stats.counter(p + 'upstream_rq_cancelled'),
      cxConnectMs: stats.histogram(p + 'upstream_cx_connect_ms'),
      cxLengthMs: stats.histogram(p + 'upstream_cx_length_ms'),
      rqTime: stats.histogram(p + 'upstream_rq_time'),
      membershipTotal: stats.gauge(p + 'membership_total'),
      membershipHealthy: stats.gauge(p + 'membership_healthy'),
      codes: new StatusCounters(stats, p + 'upstream_rq_'),
      retryCodes: new BasicResponseStats(stats, p + 'retry.'),
    };
    this.ssl = config.tls || config.transportSocketMatches.some((m) => m.tls) ? sslStats(stats, p + 'ssl.') : undefined;
    this.balancer = this.newBalancer([]);
    const hooks: ClusterHook[] = [];
    for (const f of clusterHookFactories()) {
      const h = f.create(this, issues);
      if (h) hooks.push(h);
    }
    this.hooks = hooks;
  }

  hosts(): readonly UpstreamHost[] {
    return this.hostList;
  }

  /** The current hosts as endpoint specs (EDS health only), to seed a replacement cluster. */
  endpointSpecs(): EndpointSpec[] {
    return this.hostList.map((h) => ({ address: h.address, port: h.port, hostname: h.hostname, weight: h.weight, locality: h.locality, priority: h.priority, metadata: h.metadata, healthFlags: h.edsFlags }));
  }

  /** The EDS ClusterLoadAssignment (Envoy JSON) behind the hosts: locality weights for the balancer. */
  loadAssignment: Record<string, unknown> | undefined;
  /** The load assignment's policy.drop_overloads share: the router drops that many requests (503, DO). */
  dropOverload: FractionalPercent;

  /** Replaces the host set, keeping Host objects (health, active requests, pools) by key. */
  setEndpoints(endpoints: readonly EndpointSpec[], loadAssignment?: Record<string, unknown>): void {
    if (loadAssignment) this.loadAssignment = loadAssignment;
    const next: UpstreamHost[] = [];
    const nextByKey = new Map<string, UpstreamHost>();
    for (const e of endpoints) {
      const fresh = new UpstreamHost(e);
      if (nextByKey.has(fresh.key)) continue;
      const old = this.byKey.get(fresh.key);
      let h = fresh;
      if (old) {
        old.weight = e.weight;
        old.locality = e.locality;
        old.priority = e.priority;
        old.metadata = e.metadata;
        old.proxyProtocolTlvs = e.proxyProtocolTlvs;
        old.healthFlags = (old.healthFlags & ~old.edsFlags) | e.healthFlags;
        old.edsFlags = e.healthFlags;
        h = old;
      }
      next.push(h);
      nextByKey.set(h.key, h);
    }
    for (const [k] of this.byKey) {
      if (nextByKey.has(k)) continue;
      // A removed host's pools (HTTP/1.1, h2, ALPN overrides) finish their in-flight requests, then close.
      for (const [pk, pool] of this.pools) {
        if (pk !== k && !pk.startsWith(k + '#')) continue;
        this.pools.delete(pk);
        closePool(pool);
      }
    }
    this.hostList = next;
    this.byKey = nextByKey;
    this.initialized = true;
    for (const h of this.hooks) h.onHostsChanged?.(next);
    this.healthChanged();
  }

  /** ORIGINAL_DST clusters pick by destination address (originalDstHost), not by a balancer. */
  private newBalancer(hosts: readonly UpstreamHost[]): LoadBalancer {
    return this.config.type === 'ORIGINAL_DST' ? NO_BALANCER : createLoadBalancer(this.config.lbPolicy, hosts, this.config.raw, { runtime: this.runtime });
  }

  healthChanged(): void {
    this.balancer = createLoadBalancer(this.config.lbPolicy, this.hostList, this.config.raw, { loadAssignment: this.loadAssignment, runtime: this.runtime });
    this.s.membershipTotal.value = this.membershipTotal = this.hostList.length;
    let healthy = 0;
    for (const h of this.hostList) if (h.healthFlags === 0) healthy++;
    this.s.membershipHealthy.value = this.membershipHealthy = healthy;
  }

  pick(ctx: LoadBalancerContext | undefined): UpstreamHost | undefined {
    return this.balancer.pick(ctx) as UpstreamHost | undefined;
  }

  /**
   * A host for an original-destination address (ORIGINAL_DST clusters), created on first use; its
   * port is original_dst_lb_config.upstream_port_override when set.
   */
  originalDstHost(address: string, port: number): UpstreamHost {
    port = this.config.originalDstPortOverride || port;
    const key = formatIpPort(address, port);
    let h = this.byKey.get(key);
    if (!h) {
      h = new UpstreamHost({ address, port, weight: 1, locality: {}, priority: 0, metadata: {}, healthFlags: 0 });
      this.byKey.set(key, h);
      this.hostList = [...this.hostList, h];
      this.s.membershipTotal.value = this.membershipTotal = this.hostList.length;
    }
    return h;
  }

  /**
   * The transport socket for `host`: the first transport_socket_matches entry its metadata matches,
   * else the cluster's. (A health check with transport_socket_match_criteria passes those as the metadata.)
   */
  transportFor(host: Pick<Host, 'metadata'>): UpstreamTransport {
    for (const m of this.config.transportSocketMatches) if (sameMatch(m.match, host.metadata)) return m;
    return this.config;
  }

  tlsFor(host: UpstreamHost): TlsContext | undefined {
    return this.transportFor(host).tls;
  }

  /**
   * The connection pool of a host (created on first use). Over TLS its connections offer, as
   * Envoy's client context: `alpn` (istio.alpn's override) when given, else the TLS context's
   * alpn_protocols, else the pool's own protocol (http/1.1 or h2). Every caller (router, mirrors,
   * async requests) gets the same ALPN from here: an Istio mTLS cluster always offers Istio's, so a
   * PERMISSIVE peer terminates mTLS instead of passing the connection through. An override gets a
   * pool of its own, as in Envoy. The codec comes from the cluster: a pool speaks HTTP/1.1 or h2
   * whatever ALPN selected. Behind an upstream_proxy_protocol transport socket, each downstream
   * connection (`downstream`) has pools of its own, closed with it, as Envoy keys its pools by the
   * PROXY header's data.
   */
  pool(host: UpstreamHost, h2: boolean, alpn?: readonly string[], downstream?: DownstreamOrigin): UpstreamPool {
    const { tls, proxyProtocol } = this.transportFor(host);
    const offered = tls && upstreamAlpn(tls, h2, alpn);
    let key = h2 ? host.key + '#h2' : host.key;
    if (offered && offered === alpn) key += '#alpn=' + offered.join(',');
    const proxyHeader = proxyProtocol && proxyHeaderFor(proxyProtocol, downstream?.info, host.proxyProtocolTlvs);
    const addresses = proxyHeader?.addresses;
    if (proxyHeader) key += proxyPoolKey(proxyProtocol, proxyHeader);
    const p = this.pools.get(key);
    if (p) return p;
    const pool = h2 ? this.h2Pool(host, tls, offered, proxyHeader) : this.h1Pool(host, tls, offered, proxyHeader);
    // A replaced cluster still serves the retries of its in-flight requests: their pool closes as
    // soon as it is done (the caller dispatches right away), so no connection outlives the drain.
    if (this.closed) process.nextTick(closePool, pool);
    else {
      this.pools.set(key, pool);
      if (addresses) {
        downstream!.onClose(() => {
          if (this.pools.get(key) !== pool) return;
          this.pools.delete(key);
          closePool(pool);
        });
      }
    }
    return pool;
  }

  private h1Pool(host: UpstreamHost, tls: TlsContext | undefined, alpn: readonly string[] | undefined, proxyHeader: ProxyHeaderOptions | undefined): UpstreamPool {
    const cfg = this.config;
    const s = this.s;
    const secrets = this.secrets;
    let context: SecureContext | undefined;
    let version = -1;
    const ssl = this.ssl;
    const connectTo = h1Connector({
      address: host.address,
      port: host.port,
      localAddress: cfg.sourceAddress,
      bufferLimitBytes: cfg.bufferLimitBytes,
      proxyHeader,
      tls: tls && {
        secureContext: () => {
          if (!context || version !== secrets.version) {
            context = tls.secureContext(secrets);
            version = secrets.version;
          }
          return context;
        },
        servername: tls.sni ?? host.hostname,
        alpn: alpn ?? H1_ALPN,
        rejectUnauthorized: tls.rejectsUnverifiedPeer,
        checkServerIdentity: (_host, cert) => sanMismatch(tls.checkPeer(cert)),
        sessions: tls.hostSessions(host.key),
      },
    });
    const connect =
      tls && ssl
        ? (onread: Parameters<typeof connectTo>[0]) => {
            const socket = connectTo(onread);
            countUpstreamTls(socket as TLSSocket, ssl, tls);
            return socket;
          }
        : connectTo;
    return new H1Pool({
      authority: host.key,
      connect,
      connectTimeoutMs: cfg.connectTimeoutMs,
      connections: this.connectionGate(host),
      pending: (this.pendingGate ??= this.newPendingGate()),
      idleTimeoutMs: cfg.idleTimeoutMs,
      maxRequestsPerConnection: cfg.maxRequestsPerConnection,
      maxConnectionDurationMs: cfg.maxConnectionDurationMs,
      tcpKeepalive: cfg.tcpKeepalive,
      headerKeyFormat: cfg.h1HeaderKeyFormat,
      stats: s,
      onConnect: (socket: Socket) => {
        s.cxTotal.value++;
        s.cxHttp1Total.value++;
        s.cxActive.value++;
        host.cxTotal++;
        host.cxActive++;
        if (tls) host.tlsPeer = tlsPeer(socket as TLSSocket);
      },
      onDisconnect: () => {
        s.cxActive.value--;
        s.cxDestroy.value++;
        host.cxActive--;
      },
      // Envoy's pools charge the host's rq_total when a stream is on a connection (attachStreamToClient):
      // a request whose connection never came is not one.
      onStream: () => host.rqTotal++,
      onConnectError: () => {
        // Envoy counts a connection when it is created: a failed attempt too.
        s.cxTotal.value++;
        s.cxHttp1Total.value++;
        s.cxConnectFail.value++;
        host.cxTotal++;
        host.cxConnectFail++;
      },
    });
  }

  /** HTTP/2 (TLS with h2, or h2c): undici's pool. */
  private h2Pool(host: UpstreamHost, tls: TlsContext | undefined, alpn: readonly string[] | undefined, proxyHeader: ProxyHeaderOptions | undefined): UpstreamPool {
    const { Pool, buildConnector } = undici();
    const cfg = this.config;
    const s = this.s;
    const servername = tls?.sni ?? host.hostname;
    let connect: Connector.connector;
    if (tls && alpn) {
      const secrets = this.secrets;
      let inner: Connector.connector | undefined;
      let version = -1;
      connect = (opts, cb) => {
        if (!inner || version !== secrets.version) {
          let secureContext;
          try {
            secureContext = tls.secureContext(secrets);
          } catch (e) {
            H2_CONNECT_FAILURES.add(e as Error);
            cb(e as Error, null);
            return;
          }
          version = secrets.version;
          const checkServerIdentity = (_host: string, cert: PeerCertificate): Error | undefined => sanMismatch(tls.checkPeer(cert));
          // undici's own TLS connector always offers http/1.1 and h2 and picks its codec from the
          // selected protocol; this one offers exactly `alpn` and speaks h2.
          inner = alpnConnector({ alpn, timeoutMs: cfg.connectTimeoutMs, servername, secureContext, rejectUnauthorized: tls.rejectsUnverifiedPeer, checkServerIdentity, localAddress: cfg.sourceAddress, path: isPipe(host.address) ? socketPath(host.address) : undefined, sessions: tls.hostSessions(host.key), proxyHeader, ssl: this.ssl && { stats: this.ssl, context: tls } });
        }
        // SNI comes from the transport socket (or the host name), never from the request's Host
        // header, which undici would otherwise use (Envoy does that only with auto_sni).
        const openedAt = performance.now();
        inner({ ...opts, servername }, (...args) => {
          if (args[0]) H2_CONNECT_FAILURES.add(args[0]);
          if (args[1]) {
            host.tlsPeer = tlsPeer(args[1] as TLSSocket);
            markUpstreamH2Socket(args[1]);
            if (cfg.tcpKeepalive) setTcpKeepalive(args[1] as Socket, cfg.tcpKeepalive);
            countConnection(args[1] as Socket, s, openedAt);
          }
          cb(...args);
        });
      };
    } else {
      // keepAlive: false: no SO_KEEPALIVE without tcp_keepalive, as Envoy (undici's default is on after 60 s).
      const h2c = { timeout: cfg.connectTimeoutMs, allowH2: true, useH2c: true, keepAlive: false };
      const path = isPipe(host.address) ? socketPath(host.address) : undefined;
      const plain = proxyHeader ? proxyHeaderConnector(proxyHeader, cfg.connectTimeoutMs, path) : buildConnector(path ? { ...h2c, socketPath: path } : h2c);
      connect = (opts, cb) => {
        const openedAt = performance.now();
        plain(opts, (...args) => {
          if (args[0]) H2_CONNECT_FAILURES.add(args[0]);
          if (args[1]) {
            markUpstreamH2Socket(args[1]);
            if (cfg.tcpKeepalive) setTcpKeepalive(args[1] as Socket, cfg.tcpKeepalive);
            countConnection(args[1] as Socket, s, openedAt);
          }
          cb(...args);
        });
      };
    }
    watchUpstreamH2Resets();
    const gate = this.connectionGate(host);
    const connectCounted: Connector.connector = (opts, cb) => {
      gate.opened();
      connect(opts, (...args) => {
        if (args[1]) args[1].once('close', gate.closed);
        else gate.closed();
        cb(...args);
      });
    };
    // A pipe has no authority: undici's origin names localhost, the connector the path.
    const pool = new Pool(`${tls ? 'https' : 'http'}://${isPipe(host.address) ? 'localhost' : host.key}`, {
      pipelining: 1,
      keepAliveTimeout: cfg.idleTimeoutMs,
      keepAliveMaxTimeout: cfg.idleTimeoutMs,
      headersTimeout: 0,
      bodyTimeout: 0,
      allowH2: true,
      useH2c: !tls,
      localAddress: cfg.sourceAddress,
      connect: connectCounted,
      // http2_protocol_options; unset keeps undici's defaults (100 streams, 256 KiB / 512 KiB windows).
      maxConcurrentStreams: cfg.h2Options.maxConcurrentStreams,
      initialWindowSize: cfg.h2Options.initialWindowSize,
      connectionWindowSize: cfg.h2Options.connectionWindowSize,
    } as PoolTypes.Options, {
      maxConnectionDurationMs: cfg.maxConnectionDurationMs,
      durationReached: s.cxMaxDurationReached,
      maxRequestsPerConnection: cfg.maxRequestsPerConnection,
      maxRequestsReached: s.cxMaxRequests,
      // Envoy's pools charge the host's rq_total when a stream is on a connection (as the HTTP/1.1 pool's onStream).
      onStream: () => host.rqTotal++,
      connections: gate,
    });
    pool.on('connect', () => {
      s.cxTotal.value++;
      s.cxHttp2Total.value++;
      s.cxActive.value++;
      host.cxTotal++;
      host.cxActive++;
    });
    pool.on('disconnect', (_origin, _targets, err) => {
      s.cxActive.value--;
      s.cxDestroy.value++;
      host.cxActive--;
      if (isUndiciIdleTimeout(err)) s.cxIdleTimeout.value++;
    });
    pool.on('connectionError', (_origin, _targets, err) => {
      s.cxTotal.value++;
      s.cxHttp2Total.value++;
      s.cxConnectFail.value++;
      host.cxTotal++;
      host.cxConnectFail++;
      if ((err as { code?: string }).code === 'UND_ERR_CONNECT_TIMEOUT') s.cxConnectTimeout.value++;
    });
    return pool;
  }

  /**
   * The circuit breakers' limits on the connections of a pool to `host` (Envoy's host
   * canCreateConnection, asked by its pools' tryCreateNewConnection): max_connections over all the
   * cluster's connections, per_host_thresholds max_connections over the host's. At the limit, a
   * pool without any connection still opens one (upstream_cx_overflow counted all the same), so
   * that the requests waiting in it are not stranded.
   */
  private connectionGate(host: UpstreamHost): ConnectionGate {
    const hooks = this.hooks.filter((h) => h.canCreateConnection);
    if (hooks.length === 0) return UNGATED;
    /** The pool's connections, connecting to closing (Envoy's connecting, ready, busy and draining clients). */
    let open = 0;
    return {
      mayOpen: () => hooks.every((h) => h.canCreateConnection!(host)) || open === 0,
      opened: () => {
        open++;
        for (const h of hooks) h.connectionOpened?.(host);
      },
      closed: () => {
        open--;
        for (const h of hooks) h.connectionClosed?.(host);
      },
    };
  }

  /** max_pending_requests over the requests queued in all the cluster's HTTP/1.1 pools (Envoy's cluster-wide pending count). */
  private newPendingGate(): PendingGate {
    const hooks = this.hooks.filter((h) => h.canQueue);
    if (hooks.length === 0) return UNLIMITED_PENDING;
    return {
      mayWait: (high) => hooks.every((h) => h.canQueue!(high)),
      waiting: (high) => {
        for (const h of hooks) h.queued?.(high);
      },
      done: (high) => {
        for (const h of hooks) h.releasePending?.(high);
      },
    };
  }

  /** Stops the hooks and closes every pool once its in-flight requests are done. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.hooks) h.stop();
    for (const p of this.pools.values()) closePool(p);
    this.pools.clear();
  }

  /** Closes pools right away (shutdown after the drain period). */
  destroy(): void {
    this.closed = true;
    for (const h of this.hooks) h.stop();
    for (const p of this.pools.values()) void p.destroy().catch(() => undefined);
    this.pools.clear();
  }
}

// The errors of failed HTTP/2 connection attempts. undici fails the requests queued on the client
// with the attempt's own error (and has no pending-request count of its own to read), so a request
// failing with one of them waited for that connection: Envoy's upstream_rq_pending_failure_eject.
const H2_CONNECT_FAILURES = new WeakSet<Error>();

/** Whether a request's error is that of the HTTP/2 connection attempt it was waiting for. */
export function isH2ConnectFailure(err: Error): boolean {
  return H2_CONNECT_FAILURES.has(err);
}

const H1_ALPN: readonly string[] = ['http/1.1'];
const H2_ALPN: readonly string[] = ['h2'];

/**
 * The ALPN list an upstream TLS connection offers (Envoy's client context): the override, else
 * the context's alpn_protocols, else the fallback of the pool's protocol. Returns the very array
 * it chose, so callers can tell an override from the context's own list.
 */
export function upstreamAlpn(tls: TlsContext, h2: boolean, override: readonly string[] | undefined): readonly string[] {
  if (override?.length && !sameList(override, tls.alpn)) return override;
  if (tls.alpn.length) return tls.alpn;
  return h2 ? H2_ALPN : H1_ALPN;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** undici's h2c connector with a PROXY header first. */
function proxyHeaderConnector(proxyHeader: ProxyHeaderOptions, timeoutMs: number, path: string | undefined): Connector.connector {
  return (opts, cb) => {
    const host = opts.hostname.startsWith('[') ? opts.hostname.slice(1, -1) : opts.hostname;
    const socket = connectWithProxyHeader(proxyHeader, path ? { path } : { host, port: Number(opts.port), localAddress: opts.localAddress ?? undefined });
    socket.setNoDelay(true);
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`connect timeout after ${timeoutMs} ms`), { code: 'UND_ERR_CONNECT_TIMEOUT' })), timeoutMs || 10_000);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      // As undici's connector with useH2c: the codec is h2 without ALPN.
      (socket as { alpnProtocol?: string }).alpnProtocol = 'h2';
      cb(null, socket);
    });
    const onError = (e: Error) => {
      clearTimeout(timer);
      cb(e, null);
    };
    socket.once('error', onError);
  };
}

/** undici's close of an HTTP/2 session idle for keepAliveTimeout (the cluster's idle_timeout). */
function isUndiciIdleTimeout(err: Error): boolean {
  return (err as { code?: string }).code === 'UND_ERR_INFO' && err.message === 'socket idle timeout';
}

/**
 * A connection (HTTP/2, a tunnel's) made at `openedAt` (performance.now()) just connected:
 * upstream_cx_connect_ms now, its bytes from now on, upstream_cx_length_ms when it closes.
 */
export function countConnection(socket: Socket, s: ClusterStats, openedAt: number): void {
  s.cxConnectMs.recordSince(openedAt);
  s.cxBytes.opened(socket);
  socket.once('close', () => {
    s.cxLengthMs.recordSince(openedAt);
    s.cxBytes.closed(socket);
  });
}

function closePool(p: UpstreamPool): void {
  void p.close().catch(() => undefined);
}
