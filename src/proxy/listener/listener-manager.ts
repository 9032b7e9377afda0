// Binds listeners and runs the accept path: original destination (handoff to a bind_to_port:false
// listener for that address, as Envoy does for virtualOutbound/virtualInbound), listener filters
// (proxy_protocol, then tls_inspector, http_inspector), filter chain selection, TLS termination with SAN checks, then the
// network filters. An LDS update swaps the config a bound listener uses for new connections;
// connections already accepted keep the config they started with, and those of a changed or
// removed filter chain drain (Envoy's filter chain only update: a chain equal to one before keeps
// its connections; any other change drains them all). A removed listener stops accepting and
// drains. A listener whose address is in use retries binding until it is free. A version with init
// targets (its RDS route configurations, remote Wasm code) warms first, as Envoy's: not bound, or
// its previous version serving, until they settled; one replaced or removed while it warms is
// cancelled (its targets stop; it never serves). A version out of service whose drained chains
// still have connections is draining: it stays in use (its RDS and ECDS subscriptions kept, as
// Envoy keeps a draining listener's route and extension config providers) until they closed.
import { chmodSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import type tls from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { addressStatName, type ListenerConfig, type ListenerWarming, type FilterChain } from './listener-config.ts';
import { isPipe, socketPath } from '../network/pipe-address.ts';
import { selectFilterChain, type ConnectionFacts } from './filter-chain-match.ts';
import { looksLikeTls, parseClientHello, inspectHttp } from './client-hello.ts';
import { proxyHeaderDecided, proxyProtocolVerdict, PROXY_HEADER_MAX_BYTES, type ProxyProtocolVerdict } from './proxy-protocol-filter.ts';
import type { ProxyContext } from '../context.ts';
import type { ConnectionInfo } from '../filters/filter.ts';
import type { DownstreamConnection } from '../network/network-filter.ts';
import { spiffeId, parseSans } from '../tls/tls-context.ts';
import { serverTlsSocket, clientCertificateVerdict, clientCertificate } from '../tls/downstream-tls.ts';
import { tlsErrorReason } from '../tls/tls-failure-reason.ts';
import { sslStats, type SslStats } from '../tls/upstream-tls-stats.ts';
import type { Histogram, Stat } from '../stats/stats.ts';
import { setBufferLimit } from '../network/buffer-limit.ts';
import { registerInternalDispatch } from './internal-dispatch.ts';
import { formatIpPort } from '../network/ip-port.ts';
import { logUnconnected, logWhenClosed } from './listener-access-log.ts';

interface ListenerStats {
  cxTotal: Stat;
  cxActive: Stat;
  noChain: Stat;
  cxLengthMs: Histogram;
}

/**
 * Back-off of a listener whose address is in use. Envoy rejects such a listener and binds it only
 * when a later update brings it again; we retry, because the holder is often transient (a port
 * another process probed or connected from between `rig up` choosing it and the proxy binding
 * it): without a retry the sidecar would stay deaf on that port for good.
 */
const BIND_RETRY_FIRST_MS = 100;
const BIND_RETRY_MAX_MS = 2000;

export class ActiveListener {
  config: ListenerConfig;
  server: net.Server | undefined;
  boundPort = 0;
  state: 'pending' | 'listening' | 'failed' | 'unbound' = 'pending';
  error?: string;
  /** Failed with the address in use: another bind is scheduled. */
  retrying = false;
  readonly stats: ListenerStats;
  private readonly manager: ListenerManager;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = BIND_RETRY_FIRST_MS;
  private readonly statPrefix: string;
  private ssl: SslStats | undefined;

  constructor(config: ListenerConfig, manager: ListenerManager) {
    this.config = config;
    this.manager = manager;
    const p = `listener.${config.statPrefix || addressStatName(config.address, config.port)}.`;
    this.statPrefix = p;
    const s = manager.ctx.stats;
    this.stats = { cxTotal: s.counter(p + 'downstream_cx_total'), cxActive: s.gauge(p + 'downstream_cx_active'), noChain: s.counter(p + 'no_filter_chain_match'), cxLengthMs: s.histogram(p + 'downstream_cx_length_ms') };
    if (config.filterChains.some((c) => c.tls) || config.defaultChain?.tls) this.sslStats();
  }

  /** listener.<prefix>.ssl.*: made with the listener when it has TLS chains, else by its first TLS connection. */
  sslStats(): SslStats {
    return (this.ssl ??= sslStats(this.manager.ctx.stats, this.statPrefix + 'ssl.'));
  }

  /** Resolves after the first attempt (bound, or failed: an address in use is then retried). */
  bind(): Promise<void> {
    if (!this.config.bindToPort) {
      this.state = 'unbound';
      return Promise.resolve();
    }
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true, highWaterMark: this.config.bufferLimitBytes });
    this.server = server;
    server.on('connection', (s: net.Socket) => this.manager.accept(this, s));
    const log = this.manager.ctx.log;
    return new Promise((resolve) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        this.server = undefined;
        if (this.closed) return resolve();
        const retry = e.code === 'EADDRINUSE';
        const first = !this.retrying;
        this.state = 'failed';
        this.retrying = retry;
        this.error = retry ? `address ${formatIpPort(this.config.address, this.config.port)} is already in use` : e.message;
        if (first) log.error({ listener: this.config.name, err: this.error }, retry ? 'listener failed to bind; retrying until the address is free' : 'listener failed to bind');
        if (retry) this.scheduleRetry();
        resolve();
      });
      const pipe = isPipe(this.config.address);
      if (pipe) unlinkStalePipe(this.config.address);
      const where = pipe ? { path: socketPath(this.config.address) } : { host: this.config.address, port: this.config.port, ipv6Only: this.config.ipv6Only };
      server.listen({ ...where, backlog: 1024 }, () => {
        server.removeAllListeners('error');
        if (this.config.pipeMode !== undefined) {
          try {
            chmodSync(this.config.address, this.config.pipeMode);
          } catch (e) {
            log.error({ listener: this.config.name, err: (e as Error).message }, 'could not set the pipe mode');
          }
        }
        server.on('error', (e) => log.error({ listener: this.config.name, err: e.message }, 'listener error'));
        // Closed (removed or replaced) while binding: nothing may listen any more.
        if (this.closed) {
          server.close();
          return resolve();
        }
        if (this.retrying) log.info({ listener: this.config.name }, 'listener bound after its address was freed');
        this.state = 'listening';
        this.retrying = false;
        this.error = undefined;
        if (!pipe) this.boundPort = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  private scheduleRetry(): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.bind();
    }, this.retryDelayMs);
    this.retryTimer.unref();
    this.retryDelayMs = Math.min(BIND_RETRY_MAX_MS, this.retryDelayMs * 2);
  }

  /** Stops accepting; established connections carry on (and drain). */
  close(): void {
    this.closed = true;
    this.retrying = false;
    clearTimeout(this.retryTimer);
    this.server?.close();
    drainChains(this.config);
  }
}

function chainsOf(config: ListenerConfig): FilterChain[] {
  return [...config.filterChains, ...(config.defaultChain ? [config.defaultChain] : [])];
}

function drainChains(config: ListenerConfig, keep: ReadonlySet<FilterChain> = new Set()): void {
  for (const c of chainsOf(config)) if (!keep.has(c)) for (const f of c.filters) f.drain?.();
}

const CHAIN_FIELDS = new Set(['filter_chains', 'default_filter_chain']);

function withoutChains(raw: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(raw).filter(([k]) => !CHAIN_FIELDS.has(k)));
}

/**
 * Envoy's filter chain only update: when nothing but the filter chains changed, a new chain equal
 * to an old one (same message) is the old one, with its connections (they are not drained, and a
 * later drain of that chain reaches them). Returns the config to use and the old chains kept.
 */
function carryOverChains(previous: ListenerConfig, next: ListenerConfig): { config: ListenerConfig; kept: Set<FilterChain> } {
  const kept = new Set<FilterChain>();
  if (!isDeepStrictEqual(withoutChains(previous.raw), withoutChains(next.raw))) return { config: next, kept };
  const oldRaw = (previous.raw.filter_chains as unknown[] | undefined) ?? [];
  const reuse = (raw: unknown, chain: FilterChain): FilterChain => {
    const i = oldRaw.findIndex((o, j) => !kept.has(previous.filterChains[j]) && isDeepStrictEqual(o, raw));
    if (i < 0) return chain;
    kept.add(previous.filterChains[i]);
    return previous.filterChains[i];
  };
  const newRaw = (next.raw.filter_chains as unknown[] | undefined) ?? [];
  const filterChains = next.filterChains.map((c, i) => reuse(newRaw[i], c));
  let defaultChain = next.defaultChain;
  if (defaultChain && previous.defaultChain && isDeepStrictEqual(previous.raw.default_filter_chain, next.raw.default_filter_chain)) {
    defaultChain = previous.defaultChain;
    kept.add(defaultChain);
  }
  return { config: { ...next, filterChains, defaultChain }, kept };
}

/** A TLS handshake with no configured limit (Envoy has none; a stalled peer would hold a socket forever). */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 15_000;

/** ConnectionInfo.peerCertificate / localCertificate: parsed only when a filter asks (ext_authz). */
function lazyCertificate(get: () => X509Certificate | undefined): () => X509Certificate | undefined {
  let cert: X509Certificate | undefined | null = null;
  return () => (cert === null ? (cert = get()) : cert);
}

interface FirstBytesOptions {
  /** Decide with this many bytes at most (default 16 KiB). */
  readonly maxBytes?: number;
  /** How many of the bytes read to drop (a PROXY header) rather than put back; called once, before `done`. */
  readonly consume?: (b: Buffer) => number;
  /** The connection closed before the bytes decided (a reset, an error). */
  readonly closed?: () => void;
}

function readFirstBytes(socket: net.Socket, enough: (b: Buffer) => boolean, timeoutMs: number, done: (b: Buffer | undefined) => void, opts: FirstBytesOptions = {}): void {
  const maxBytes = opts.maxBytes ?? 16384;
  let buf: Buffer = Buffer.alloc(0);
  const finish = (ok: boolean) => {
    clearTimeout(timer);
    socket.off('close', onClose);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.pause();
    const skip = ok && opts.consume ? opts.consume(buf) : 0;
    if (buf.length > skip) socket.unshift(skip ? buf.subarray(skip) : buf);
    done(ok ? buf : undefined);
  };
  const onData = (c: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, c]) : c;
    if (enough(buf) || buf.length > maxBytes) finish(true);
  };
  const onEnd = () => finish(true);
  // Closed before the inspectors decided (reset, error): nothing to dispatch.
  const onClose = () => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    opts.closed?.();
  };
  const timer = timeoutMs > 0 ? setTimeout(() => finish(false), timeoutMs) : undefined;
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('close', onClose);
  socket.resume();
}

export class ListenerManager {
  readonly ctx: ProxyContext;
  private readonly active = new Map<string, ActiveListener>();
  private pending: Promise<void>[] = [];
  private readonly warming = new Map<string, ListenerConfig>();
  private readonly sockets = new Set<net.Socket>();
  private stopped = false;
  private readonly gauges: { readonly warming: Stat; readonly active: Stat };
  /** Open connections per filter chain (a chain's connections outlive its listener version). */
  private readonly openConnections = new Map<FilterChain, number>();
  /** Versions out of service, with their drained chains that still have connections. */
  private readonly draining = new Map<ListenerConfig, Set<FilterChain>>();
  /**
   * Called when the versions in use changed outside an LDS update: a warmed version went into
   * service (the version it replaced, if any, left), or a draining version's last connection closed.
   */
  onVersionsChanged: (() => void) | undefined;

  constructor(ctx: ProxyContext) {
    this.ctx = ctx;
    this.gauges = { warming: ctx.stats.gauge('listener_manager.total_listeners_warming'), active: ctx.stats.gauge('listener_manager.total_listeners_active') };
    registerInternalDispatch(ctx, { target: (dst) => this.internalTarget(dst) });
  }

  listeners(): ActiveListener[] {
    return [...this.active.values()];
  }

  get(name: string): ActiveListener | undefined {
    return this.active.get(name);
  }

  /** Listener versions warming (waiting for their init targets before they serve), by name. */
  warmingListeners(): ListenerConfig[] {
    return [...this.warming.values()];
  }

  /** Listener versions out of service whose drained filter chains still have connections. */
  drainingListeners(): ListenerConfig[] {
    return [...this.draining.keys()];
  }

  /**
   * Installs the complete set of listeners (static + LDS). A version with init targets (RDS routes,
   * remote Wasm code) warms first, as in Envoy: a new listener is bound only once they settled; an
   * updated one keeps serving its previous version until then, and a newer version replaces one
   * still warming.
   */
  apply(configs: readonly ListenerConfig[]): void {
    const names = new Set(configs.map((c) => c.name));
    for (const [name, l] of this.active) {
      if (!names.has(name)) {
        this.active.delete(name);
        l.close();
        this.retire(l.config);
      }
    }
    for (const name of this.warming.keys()) if (!names.has(name)) this.dropWarming(name, 'removed');
    for (const c of configs) {
      const waiting = this.warming.get(c.name);
      if (waiting && isDeepStrictEqual(waiting.raw, c.raw)) continue;
      this.dropWarming(c.name, 'replaced by a newer version');
      const old = this.active.get(c.name);
      if (old && old.state !== 'failed' && isDeepStrictEqual(old.config.raw, c.raw)) continue;
      if (c.warming && !this.stopped) this.warm(c, c.warming, old !== undefined);
      else this.install(c);
    }
    this.countListeners();
  }

  /** A version dropped before it warmed: cancelled, as Envoy destroys its init manager with it. */
  private dropWarming(name: string, why: string): void {
    const c = this.warming.get(name);
    if (!c) return;
    this.warming.delete(name);
    c.warming?.cancel();
    this.ctx.log.info({ listener: name, waitingFor: c.warming?.waitingFor }, `listener version ${why} while warming; what it waited for is cancelled`);
  }

  private warm(c: ListenerConfig, w: ListenerWarming, update: boolean): void {
    this.warming.set(c.name, c);
    const log = this.ctx.log;
    log.info({ listener: c.name, waitingFor: w.waitingFor }, update ? 'listener update warming: the previous version serves until it is ready' : 'listener warming: bound once it is ready');
    this.pending.push(
      w.start().then(() => {
        if (this.warming.get(c.name) !== c) return;
        this.warming.delete(c.name);
        log.info({ listener: c.name }, 'listener warmed');
        this.install(c);
        this.countListeners();
        this.onVersionsChanged?.();
      }),
    );
  }

  /** Puts a listener version in service: an update in place when the address is the same, else a new bound listener. */
  private install(c: ListenerConfig): void {
    const old = this.active.get(c.name);
    if (old && old.config.address === c.address && old.config.port === c.port && old.config.bindToPort === c.bindToPort && old.config.ipv6Only === c.ipv6Only && old.config.pipeMode === c.pipeMode && old.state !== 'failed') {
      // As Envoy: an unchanged listener keeps its connections; a changed one takes new
      // connections with the new config and drains the connections of its changed chains (an
      // authorization policy must not stay bypassed on a pooled keep-alive connection).
      const previous = old.config;
      const { config, kept } = carryOverChains(previous, c);
      old.config = config;
      drainChains(previous, kept);
      this.retire(previous, kept);
      return;
    }
    if (old) {
      old.close();
      this.retire(old.config);
    }
    const l = new ActiveListener(c, this);
    this.active.set(c.name, l);
    if (!this.stopped) this.pending.push(l.bind());
  }

  /** A version left service, its chains but `kept` drained: it is draining while any of them has connections. */
  private retire(config: ListenerConfig, kept: ReadonlySet<FilterChain> = new Set()): void {
    const open = chainsOf(config).filter((c) => !kept.has(c) && this.openConnections.has(c));
    if (open.length) this.draining.set(config, new Set(open));
  }

  private connectionOpened(chain: FilterChain, socket: net.Socket): void {
    this.openConnections.set(chain, (this.openConnections.get(chain) ?? 0) + 1);
    socket.once('close', () => this.connectionClosed(chain));
  }

  private connectionClosed(chain: FilterChain): void {
    const n = this.openConnections.get(chain)! - 1;
    if (n > 0) {
      this.openConnections.set(chain, n);
      return;
    }
    this.openConnections.delete(chain);
    if (this.draining.size === 0) return;
    let drained = false;
    for (const [config, chains] of this.draining) {
      if (!chains.delete(chain) || chains.size > 0) continue;
      this.draining.delete(config);
      drained = true;
    }
    if (drained) this.onVersionsChanged?.();
  }

  /** listener_manager.total_listeners_warming / total_listeners_active, as Envoy's gauges. */
  private countListeners(): void {
    this.gauges.warming.value = this.warming.size;
    this.gauges.active.value = this.active.size;
  }

  /** Resolves when every listener applied so far has bound (or failed), after warming when it warms. */
  async settled(): Promise<void> {
    while (this.pending.length) {
      const p = this.pending;
      this.pending = [];
      await Promise.all(p);
    }
  }

  /** Stops accepting everywhere (drain); established connections go on. */
  stopAccepting(): void {
    this.stopped = true;
    for (const name of [...this.warming.keys()]) this.dropWarming(name, 'stopped with the proxy');
    for (const l of this.active.values()) l.close();
  }

  /** Closes every accepted connection (after the drain period). */
  destroyConnections(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private handoff(dst: { address: string; port: number }): ActiveListener | undefined {
    let wildcard: ActiveListener | undefined;
    for (const l of this.active.values()) {
      const c = l.config;
      if (c.bindToPort || c.port !== dst.port) continue;
      if (c.address === dst.address) return l;
      if (c.address === '0.0.0.0' || c.address === '::') wildcard = l;
    }
    return wildcard;
  }

  /**
   * internal-dispatch.ts: a stream the proxy terminated (a CONNECT tunnel's inside) taken as a new
   * connection of the listener for `dst`, counted there, with `dst` as its original destination.
   */
  private internalTarget(dst: { address: string; port: number }): ((socket: net.Socket, source: { address: string; port: number }) => void) | undefined {
    const l = this.stopped ? undefined : this.handoff(dst);
    if (!l) return undefined;
    return (socket, source) => {
      const config = l.config;
      l.stats.cxTotal.value++;
      l.stats.cxActive.value++;
      const acceptedAt = performance.now();
      socket.once('close', () => {
        l.stats.cxActive.value--;
        l.stats.cxLengthMs.recordSince(acceptedAt);
      });
      const facts: ConnectionFacts = {
        destinationPort: dst.port,
        destinationIp: dst.address,
        transportProtocol: 'raw_buffer',
        applicationProtocols: [],
        sourceIp: source.address,
        sourcePort: source.port,
        directSourceIp: socket.remoteAddress ?? '',
        directSourcePort: socket.remotePort ?? 0,
        acceptedAt,
      };
      this.inspect(l, config, socket, facts, dst, config.inspectTimeoutMs);
    };
  }

  accept(l: ActiveListener, socket: net.Socket): void {
    const om = this.ctx.overload;
    if (om) {
      if (om.rejectConnection()) return void socket.destroy();
      if (om.parkConnection(socket, () => this.unpark(l, socket))) return;
    }
    let config = l.config;
    l.stats.cxTotal.value++;
    l.stats.cxActive.value++;
    this.sockets.add(socket);
    const acceptedAt = performance.now();
    socket.once('close', () => {
      l.stats.cxActive.value--;
      l.stats.cxLengthMs.recordSince(acceptedAt);
      this.sockets.delete(socket);
    });
    socket.on('error', () => undefined);
    let originalDst: { address: string; port: number } | undefined;
    if (config.readOriginalDst) {
      originalDst = this.ctx.originalDst(socket);
      if (config.useOriginalDst && originalDst && !(originalDst.address === socket.localAddress && originalDst.port === socket.localPort)) {
        const target = this.handoff(originalDst);
        if (target) config = target.config;
      }
    }
    setBufferLimit(socket, config.bufferLimitBytes);
    const facts: ConnectionFacts = {
      destinationPort: originalDst?.port ?? socket.localPort ?? 0,
      destinationIp: originalDst?.address ?? socket.localAddress ?? '',
      transportProtocol: 'raw_buffer',
      applicationProtocols: [],
      sourceIp: socket.remoteAddress ?? '',
      sourcePort: socket.remotePort ?? 0,
      directSourceIp: socket.remoteAddress ?? '',
      directSourcePort: socket.remotePort ?? 0,
      acceptedAt,
    };
    if (config.proxyProtocol) return this.readProxyHeader(l, config, socket, facts, originalDst);
    this.inspect(l, config, socket, facts, originalDst, config.inspectTimeoutMs);
  }

  /**
   * The proxy_protocol listener filter, before the inspectors (a TLS ClientHello follows the
   * header): the header's addresses replace the connection's, and the inspectors get what is left
   * of listener_filters_timeout.
   */
  private readProxyHeader(l: ActiveListener, config: ListenerConfig, socket: net.Socket, facts: ConnectionFacts, originalDst: { address: string; port: number } | undefined): void {
    const pp = config.proxyProtocol!;
    const deadline = config.inspectTimeoutMs > 0 ? Date.now() + config.inspectTimeoutMs : 0;
    let verdict: ProxyProtocolVerdict | undefined;
    const consume = (b: Buffer): number => {
      verdict = proxyProtocolVerdict(b, pp.config, pp.stats);
      return verdict.accept ? verdict.consumed : 0;
    };
    readFirstBytes(
      socket,
      proxyHeaderDecided,
      config.inspectTimeoutMs,
      (b) => {
        if ((!b && !config.continueOnInspectTimeout) || (b && !verdict?.accept)) {
          logUnconnected(config, facts);
          return void socket.destroy();
        }
        const a = verdict?.accept ? verdict.addresses : undefined;
        if (verdict?.accept) facts.proxyTlvs = verdict.tlvs;
        if (a) {
          facts.sourceIp = a.sourceAddress;
          facts.sourcePort = a.sourcePort;
          facts.destinationIp = a.destinationAddress;
          facts.destinationPort = a.destinationPort;
        }
        this.inspect(l, config, socket, facts, originalDst, deadline ? Math.max(1, deadline - Date.now()) : 0);
      },
      { maxBytes: PROXY_HEADER_MAX_BYTES, consume, closed: () => logUnconnected(config, facts) },
    );
  }

  private inspect(l: ActiveListener, config: ListenerConfig, socket: net.Socket, facts: ConnectionFacts, originalDst: { address: string; port: number } | undefined, timeoutMs: number): void {
    const tlsInspector = config.tlsInspector && !config.tlsInspectorDisabled?.(facts.destinationPort);
    const httpInspector = config.httpInspector && !config.httpInspectorDisabled?.(facts.destinationPort);
    if (!tlsInspector && !httpInspector) return this.dispatch(l, config, socket, facts, originalDst);
    readFirstBytes(
      socket,
      (b) => {
        const t = looksLikeTls(b);
        if (t === 'more') return false;
        if (t === 'tls') return !tlsInspector || parseClientHello(b) !== undefined;
        return !httpInspector || inspectHttp(b) !== 'more';
      },
      timeoutMs,
      (b) => {
        if (!b && !config.continueOnInspectTimeout) {
          logUnconnected(config, facts);
          socket.destroy();
          return;
        }
        if (b && tlsInspector && looksLikeTls(b) === 'tls') {
          const hello = parseClientHello(b);
          facts.transportProtocol = 'tls';
          facts.serverName = hello?.serverName;
          facts.applicationProtocols = hello?.alpn ?? [];
        } else if (b && httpInspector) {
          const h = inspectHttp(b);
          if (h && h !== 'more') facts.applicationProtocols = [h];
        }
        this.dispatch(l, config, socket, facts, originalDst);
      },
      { closed: () => logUnconnected(config, facts) },
    );
  }

  /** A connection the overload manager held while accepting was stopped: its listener may be gone. */
  private unpark(l: ActiveListener, socket: net.Socket): void {
    if (this.stopped || this.active.get(l.config.name) !== l) return void socket.destroy();
    this.accept(l, socket);
  }

  private dispatch(l: ActiveListener, config: ListenerConfig, socket: net.Socket, facts: ConnectionFacts, originalDst: { address: string; port: number } | undefined): void {
    const chain = selectFilterChain(config, facts);
    if (!chain) {
      l.stats.noChain.value++;
      logUnconnected(config, facts, true);
      socket.destroy();
      return;
    }
    this.connectionOpened(chain, socket);
    const log = logWhenClosed(config, facts, socket);
    const onTerminal = log && chain.terminalIsTcpProxy ? log.reachedTcpProxy : undefined;
    const direct = facts.sourceIp !== facts.directSourceIp || facts.sourcePort !== socket.remotePort;
    const info: ConnectionInfo = {
      remoteAddress: facts.sourceIp,
      remotePort: facts.sourcePort,
      ...(direct ? { directRemoteAddress: facts.directSourceIp, directRemotePort: socket.remotePort ?? 0 } : {}),
      localAddress: facts.destinationIp,
      localPort: facts.destinationPort,
      sni: facts.serverName,
      tls: false,
      ...(facts.proxyTlvs?.passThrough.length ? { proxyProtocolTlvs: facts.proxyTlvs.passThrough } : {}),
    };
    // Per connection already (proxy-protocol-filter.ts tlvState): the filters may add to them.
    const state = { dynamicMetadata: facts.proxyTlvs?.dynamicMetadata, filterState: facts.proxyTlvs?.filterState, observers: log ? [log.observer] : undefined };
    if (!chain.tls) {
      socket.resume();
      return this.runFilters(chain, { socket, info, direction: config.direction, originalDst, ...state }, onTerminal);
    }
    let secureContext;
    try {
      secureContext = chain.tls.secureContext(this.ctx.secrets);
    } catch (e) {
      this.ctx.log.warn({ listener: config.name, chain: chain.name, err: (e as Error).message }, 'TLS not ready; connection closed');
      socket.destroy();
      return;
    }
    const tlsCtx = chain.tls;
    // Envoy negotiates no ALPN when the client offers none of the server's (node would fail the
    // handshake): e.g. istio-http/1.1 from a mesh client on a chain that lists h2, http/1.1.
    const offered = facts.transportProtocol === 'tls' ? facts.applicationProtocols : undefined;
    const alpn = tlsCtx.alpn.length && (!offered || offered.some((p) => tlsCtx.alpn.includes(p))) ? [...tlsCtx.alpn] : undefined;
    const ts = serverTlsSocket(socket, tlsCtx, secureContext, alpn, l.sslStats());
    setBufferLimit(ts, config.bufferLimitBytes);
    ts.on('error', (e) => {
      const reason = tlsErrorReason(e);
      if (reason) log?.transportFailed(reason);
      ts.destroy();
    });
    const timer = setTimeout(() => ts.destroy(), chain.handshakeTimeoutMs || config.inspectTimeoutMs || DEFAULT_HANDSHAKE_TIMEOUT_MS);
    // A handshake OpenSSL refused (a missing client certificate) ends before 'secure'.
    ts.once('close', () => clearTimeout(timer));
    ts.once('secure', () => {
      clearTimeout(timer);
      // As tls.Server's onServerSocketSecure does: http2 waits for 'secureConnect' while this is set.
      (ts as unknown as { secureConnecting: boolean }).secureConnecting = false;
      const peer = ts.getPeerCertificate();
      const cert = peer && Object.keys(peer).length > 0 ? peer : undefined;
      const refused = clientCertificateVerdict(ts, tlsCtx, cert, l.sslStats());
      if (refused) {
        this.ctx.log.debug({ listener: config.name, err: refused }, 'client certificate refused');
        log?.transportFailed(refused);
        ts.destroy();
        return;
      }
      const tinfo: ConnectionInfo = {
        ...info,
        tls: true,
        sni: (ts as tls.TLSSocket & { servername?: string }).servername || info.sni,
        peerPrincipal: cert ? spiffeId(cert) : undefined,
        peerSans: cert?.subjectaltname ? parseSans(cert.subjectaltname).map(([, v]) => v) : undefined,
        peerCertificate: cert ? lazyCertificate(() => clientCertificate(ts)) : undefined,
        localCertificate: lazyCertificate(() => ts.getX509Certificate()),
      };
      this.runFilters(chain, { socket: ts, info: tinfo, direction: config.direction, originalDst, alpn: ts.alpnProtocol || undefined, ...state }, onTerminal);
    });
    // No resume(): the TLS socket reads the bytes tls_inspector put back itself (on the next tick).
  }

  /** Runs the chain's network filters from `from`; `onTerminal` just before the last one gets the connection. */
  private runFilters(chain: FilterChain, conn: DownstreamConnection, onTerminal?: () => void, from = 0): void {
    for (let i = from; i < chain.filters.length; i++) {
      if (i === chain.filters.length - 1) onTerminal?.();
      const go = chain.filters[i].onConnection(conn);
      if (go === true) continue;
      if (go !== false) {
        go.then(
          (next) => (next ? this.runFilters(chain, conn, onTerminal, i + 1) : undefined),
          () => conn.socket.destroy(),
        );
      }
      return;
    }
    conn.socket.destroy();
  }

  /** Ports bound per listener name (for --ports-file). */
  boundPorts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const l of this.active.values()) if (l.state === 'listening') out[l.config.name] = l.boundPort;
    return out;
  }
}

/** As Envoy before binding a pipe: whatever is at its path goes (errors ignored: bind reports them); the abstract namespace has no file. */
function unlinkStalePipe(path: string): void {
  if (path[0] !== '/') return;
  try {
    unlinkSync(path);
  } catch {
    // Nothing there, or not removable: listen() says why if it matters.
  }
}
