// A lean HTTP/1.1 connection pool for one upstream host: connections one request each at a time,
// as many as the cluster's circuit breakers allow (its ConnectionGate: max_connections over the
// whole cluster, per_host max_connections), asked only when a request finds no idle connection;
// idle connections are reused last-in first-out (the warmest socket, and the others age out on
// their idle timeout); requests beyond that wait in a FIFO queue for one of the pool's connections,
// each counted as pending (the cluster's max_pending_requests, its PendingGate) while it waits, as
// Envoy's pending streams: also while the first connection connects. The router asks
// refusesPending before it dispatches; its other circuit breakers are above this (circuit-breaker-hook.ts).
import type { OnReadOpts, Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import { UNGATED, UNLIMITED_PENDING, type ConnectionGate, type PendingGate, type UpstreamDispatchOptions, type UpstreamPool } from '../upstream-pool.ts';
import { H1Connection, type ConnectionPool } from './h1-connection.ts';
import { H1ErrorCode, H1PoolError } from './h1-errors.ts';
import { H1Exchange, type ExchangeOwner } from './h1-exchange.ts';
import { setTcpKeepalive, type TcpKeepalive } from '../../network/tcp-keepalive.ts';
import { Histogram, SocketBytes, type Stat } from '../../stats/stats.ts';
import { UPSTREAM_READS } from '../../network/shared-read-buffer.ts';
import type { HeaderKeyFormat } from '../../http/h1/header-case.ts';

/** The cluster's stats (cluster.ts) this pool and its connections count, as Envoy's HTTP/1.1 pool does. */
export interface H1PoolStats {
  readonly cxConnectTimeout: Stat;
  readonly cxIdleTimeout: Stat;
  readonly cxMaxRequests: Stat;
  readonly cxMaxDurationReached: Stat;
  readonly cxProtocolError: Stat;
  readonly cxDestroyLocal: Stat;
  readonly cxDestroyRemote: Stat;
  readonly cxDestroyWithActiveRq: Stat;
  readonly cxDestroyLocalWithActiveRq: Stat;
  readonly cxDestroyRemoteWithActiveRq: Stat;
  /** Added from the socket's bytesRead / bytesWritten when the connection closes. */
  readonly cxBytes: SocketBytes;
  readonly rqPendingTotal: Stat;
  readonly rqPendingActive: Stat;
  /** Queued requests failed by the connection attempt made for them (Envoy's pending failure eject). */
  readonly rqPendingFailureEject: Stat;
  readonly rqCancelled: Stat;
  /** Connect started to connected (TLS handshake included), ms. */
  readonly cxConnectMs: Histogram;
  /** Connect started to closed, ms. */
  readonly cxLengthMs: Histogram;
}

function detachedStats(): H1PoolStats {
  const stat = (name: string): Stat => ({ name, kind: 'counter', value: 0 });
  return {
    cxConnectTimeout: stat('upstream_cx_connect_timeout'),
    cxIdleTimeout: stat('upstream_cx_idle_timeout'),
    cxMaxRequests: stat('upstream_cx_max_requests'),
    cxMaxDurationReached: stat('upstream_cx_max_duration_reached'),
    cxProtocolError: stat('upstream_cx_protocol_error'),
    cxDestroyLocal: stat('upstream_cx_destroy_local'),
    cxDestroyRemote: stat('upstream_cx_destroy_remote'),
    cxDestroyWithActiveRq: stat('upstream_cx_destroy_with_active_rq'),
    cxDestroyLocalWithActiveRq: stat('upstream_cx_destroy_local_with_active_rq'),
    cxDestroyRemoteWithActiveRq: stat('upstream_cx_destroy_remote_with_active_rq'),
    cxBytes: new SocketBytes('upstream_cx_rx_bytes_total', 'upstream_cx_tx_bytes_total'),
    rqPendingTotal: stat('upstream_rq_pending_total'),
    rqPendingActive: stat('upstream_rq_pending_active'),
    rqPendingFailureEject: stat('upstream_rq_pending_failure_eject'),
    rqCancelled: stat('upstream_rq_cancelled'),
    cxConnectMs: new Histogram('upstream_cx_connect_ms'),
    cxLengthMs: new Histogram('upstream_cx_length_ms'),
  };
}

export interface H1PoolOptions {
  /** host[:port] for the Host header of a request that has none. */
  readonly authority: string;
  /**
   * Opens a connection: a socket that will emit 'connect' (TCP) or 'secureConnect' (TLS), created
   * with `onread` (net/tls connect's option). May throw.
   */
  readonly connect: (onread: OnReadOpts) => Socket;
  /** 0: none. */
  readonly connectTimeoutMs: number;
  /** The cluster's connection limits (without: none). */
  readonly connections?: ConnectionGate;
  /** The cluster's max_pending_requests (without: none). */
  readonly pending?: PendingGate;
  /** 0: idle connections stay open until the upstream closes them. */
  readonly idleTimeoutMs: number;
  /** 0: unlimited. */
  readonly maxRequestsPerConnection: number;
  /** common_http_protocol_options.max_connection_duration in ms (0 or absent: none). */
  readonly maxConnectionDurationMs?: number;
  /** The cluster's upstream_connection_options.tcp_keepalive; without it, no SO_KEEPALIVE (as Envoy). */
  readonly tcpKeepalive?: TcpKeepalive;
  /** The cluster's http_protocol_options.header_key_format (undefined: names in lower case). */
  readonly headerKeyFormat?: HeaderKeyFormat;
  /** The cluster's stats; without them (a pool of its own), counts go nowhere. */
  readonly stats?: H1PoolStats;
  /** A connection is established (TLS: after the handshake and the peer check). */
  readonly onConnect?: (socket: Socket) => void;
  /** An established connection closed. */
  readonly onDisconnect?: () => void;
  /** A connection attempt failed (refused, timed out, TLS handshake or peer check). */
  readonly onConnectError?: (err: Error) => void;
  /** An exchange is put on a connection. */
  readonly onStream?: () => void;
}

/** onRequestStart's context (undici passes per-request state there; we have none). */
const NO_CONTEXT = Object.freeze({});

export class H1Pool implements UpstreamPool, ConnectionPool, ExchangeOwner {
  readonly authority: string;
  readonly maxRequestsPerConnection: number;
  readonly idleTimeoutMs: number;
  readonly maxConnectionDurationMs: number;
  readonly stats: H1PoolStats;
  readonly headerKeyFormat: HeaderKeyFormat | undefined;
  readonly onStream: (() => void) | undefined;
  closing = false;
  private readonly o: H1PoolOptions;
  private readonly gate: ConnectionGate;
  private readonly pending: PendingGate;
  private readonly queue: H1Exchange[] = [];
  /** Idle connections, the most recently used last. */
  private readonly idle: H1Connection[] = [];
  private readonly conns = new Set<H1Connection>();
  private connecting = 0;
  private destroyed = false;
  private closed: Promise<void> | undefined;
  private onDone: (() => void) | undefined;

  constructor(o: H1PoolOptions) {
    this.o = o;
    this.authority = o.authority;
    this.maxRequestsPerConnection = o.maxRequestsPerConnection;
    this.idleTimeoutMs = o.idleTimeoutMs;
    this.maxConnectionDurationMs = o.maxConnectionDurationMs ?? 0;
    this.gate = o.connections ?? UNGATED;
    this.pending = o.pending ?? UNLIMITED_PENDING;
    this.stats = o.stats ?? detachedStats();
    this.headerKeyFormat = o.headerKeyFormat;
    this.onStream = o.onStream;
  }

  /** Connections open (busy or idle) and being opened. */
  get size(): number {
    return this.conns.size + this.connecting;
  }

  refusesPending(high: boolean): boolean {
    return this.idle.length === 0 && !this.closing && !this.pending.mayWait(high);
  }

  dispatch(opts: UpstreamDispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const ex = new H1Exchange(opts, handler, this);
    handler.onRequestStart?.(ex, NO_CONTEXT);
    if (ex.aborted) return true;
    if (this.closing) {
      process.nextTick(failClosed, ex);
      return false;
    }
    const c = this.idle.pop();
    if (c) c.assign(ex);
    else {
      this.enqueue(ex, false);
      this.grow();
    }
    return true;
  }

  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closing = true;
    this.closed = new Promise((resolve) => (this.onDone = resolve));
    for (const c of this.idle.splice(0)) c.destroy();
    this.checkDone();
    return this.closed;
  }

  destroy(): Promise<void> {
    this.destroyed = true;
    const p = this.close();
    const err = new H1PoolError(H1ErrorCode.PoolClosed, 'upstream connection pool destroyed');
    for (const ex of this.queue.splice(0)) {
      this.leftQueue(ex);
      ex.fail(err);
    }
    for (const c of [...this.conns]) c.destroy(err);
    this.checkDone();
    return p;
  }

  // === ExchangeOwner / ConnectionPool ===

  unqueue(ex: H1Exchange): void {
    const i = this.queue.indexOf(ex);
    if (i >= 0) {
      this.queue.splice(i, 1);
      this.leftQueue(ex);
      this.stats.rqCancelled.value++;
    }
    this.checkDone();
  }

  onReusable(c: H1Connection): void {
    // Past max_connection_duration: closed; a queued request gets a new connection (onClosed).
    if (c.expired) return c.destroy();
    const next = this.dequeue();
    if (next) c.assign(next);
    else if (this.closing) c.destroy();
    else {
      this.idle.push(c);
      c.setIdle();
    }
  }

  onClosed(c: H1Connection): void {
    this.stats.cxLengthMs.recordSince(c.openedAt);
    this.stats.cxBytes.closed(c.socket);
    this.conns.delete(c);
    const i = this.idle.lastIndexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    this.gate.closed();
    this.o.onDisconnect?.();
    this.grow();
    this.checkDone();
  }

  /**
   * A request lost on a reused connection goes again on a new connection, not an idle one: the
   * server that closed the first has likely closed the others at the same moment (a listener
   * drain closes every idle keep-alive) and their close may not be read yet. At the connection
   * limit it waits for a connection like any request.
   */
  replay(ex: H1Exchange): void {
    if (this.destroyed) {
      ex.fail(new H1PoolError(H1ErrorCode.PoolClosed, 'upstream connection pool destroyed'));
      return;
    }
    this.enqueue(ex, true);
    if (this.gate.mayOpen()) this.open();
    else {
      const c = this.idle.pop();
      if (c) c.assign(this.dequeue()!);
    }
  }

  // === connections ===

  /** One connection attempt per queued request, as long as the gate allows. */
  private grow(): void {
    while (!this.destroyed && this.queue.length > this.connecting && this.gate.mayOpen()) this.open();
  }

  private open(): void {
    this.connecting++;
    this.gate.opened();
    const openedAt = performance.now();
    let socket: Socket;
    // Bytes before the connection is set up (a server that speaks first) are unsolicited.
    let conn: H1Connection | undefined;
    const onread: OnReadOpts = {
      buffer: UPSTREAM_READS.bytes,
      callback: (n, buf) => {
        if (!conn) socket.destroy();
        // TLS over a socket that wrote a PROXY header reads through 'data': each chunk its own Buffer.
        else conn.onRead(buf === UPSTREAM_READS.bytes ? UPSTREAM_READS.of(n) : (buf as Buffer).subarray(0, n));
        return true;
      },
    };
    try {
      socket = this.o.connect(onread);
    } catch (e) {
      process.nextTick(connectFailed, this, e as Error);
      return;
    }
    const ready = (socket as { encrypted?: boolean }).encrypted ? 'secureConnect' : 'connect';
    const ms = this.o.connectTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const done = (err: Error | undefined): void => {
      if (timer) clearTimeout(timer);
      socket.off(ready, onReady);
      socket.off('error', done);
      if (err) {
        // A TLS socket may report more than one error on its way down.
        socket.on('error', noop);
        socket.destroy();
        this.connectFailed(err);
      } else conn = this.connected(socket, openedAt);
    };
    const onReady = (): void => done(undefined);
    socket.once(ready, onReady);
    socket.once('error', done);
    if (ms > 0) {
      timer = setTimeout(() => {
        this.stats.cxConnectTimeout.value++;
        done(new H1PoolError(H1ErrorCode.ConnectTimeout, `connect timeout after ${ms} ms`));
      }, ms);
    }
  }

  private connected(socket: Socket, openedAt: number): H1Connection | undefined {
    this.connecting--;
    if (this.destroyed) {
      this.gate.closed();
      socket.destroy();
      this.checkDone();
      return undefined;
    }
    socket.setNoDelay(true);
    if (this.o.tcpKeepalive) setTcpKeepalive(socket, this.o.tcpKeepalive);
    this.o.onConnect?.(socket);
    this.stats.cxConnectMs.recordSince(openedAt);
    this.stats.cxBytes.opened(socket);
    const c = new H1Connection(socket, this);
    c.openedAt = openedAt;
    this.conns.add(c);
    this.onReusable(c);
    return c;
  }

  /** A failed attempt fails the oldest queued request (each queued request gets its own attempt). */
  connectFailed(err: Error): void {
    this.connecting--;
    this.gate.closed();
    this.o.onConnectError?.(err);
    const ex = this.dequeue();
    if (ex) {
      this.stats.rqPendingFailureEject.value++;
      ex.fail(err);
    }
    this.grow();
    this.checkDone();
  }

  /** A request waits for a connection: pending (upstream_rq_pending_*, the cluster's max_pending_requests) until leftQueue. */
  private enqueue(ex: H1Exchange, first: boolean): void {
    if (first) this.queue.unshift(ex);
    else this.queue.push(ex);
    this.stats.rqPendingTotal.value++;
    this.stats.rqPendingActive.value++;
    this.pending.waiting(ex.opts.highPriority === true);
  }

  private leftQueue(ex: H1Exchange): void {
    this.stats.rqPendingActive.value--;
    this.pending.done(ex.opts.highPriority === true);
  }

  private dequeue(): H1Exchange | undefined {
    if (this.queue.length === 0) return undefined;
    const ex = this.queue.shift();
    if (ex) this.leftQueue(ex);
    return ex;
  }

  private checkDone(): void {
    if (!this.closing || this.conns.size > 0 || this.connecting > 0 || this.queue.length > 0) return;
    const done = this.onDone;
    this.onDone = undefined;
    done?.();
  }
}

function failClosed(ex: H1Exchange): void {
  ex.fail(new H1PoolError(H1ErrorCode.PoolClosed, 'upstream connection pool closed'));
}

function connectFailed(pool: H1Pool, err: Error): void {
  pool.connectFailed(err);
}

function noop(): void {}
