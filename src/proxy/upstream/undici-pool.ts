// The parts of undici the proxy uses, for HTTP/2 and h2c upstream pools only (HTTP/1.1 pools are
// h1-pool/): Pool and the connector, nothing of its request APIs (everything goes through
// dispatch). Loaded on the first HTTP/2 pool: a proxy whose upstreams all speak HTTP/1.1 never
// loads undici. undici's main entry also loads fetch, WebSocket, EventSource, the cache and the
// mock agents: importing the two modules instead costs far less (measured with the request API
// too: +5.2 → +2.4 MB heap, +25 → +13 MB RSS at import, undici 8.13).
import type http2 from 'node:http2';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { Dispatcher, Pool as PoolClass, buildConnector as BuildConnector } from 'undici';
import { H2StreamBody, isLentBody } from './h2-stream-body.ts';
import { lightenAsyncResourceBind } from './async-resource-bind.ts';
import type { ConnectionGate, TrailerSource, UpstreamDispatchOptions } from './upstream-pool.ts';

/** What the cluster's HTTP/2 pool adds to undici's Pool options (undici's own maxRequestsPerClient is HTTP/1.1 only). */
export interface H2PoolLimits {
  /** max_connection_duration of its connections (ms, 0: none) and the counter of those that reached it (upstream_cx_max_duration_reached). */
  readonly maxConnectionDurationMs: number;
  readonly durationReached: { value: number };
  /** max_requests_per_connection (0: none) and the counter of connections that reached it (upstream_cx_max_requests). */
  readonly maxRequestsPerConnection: number;
  readonly maxRequestsReached: { value: number };
  /** A request is put on a connection (Envoy's pool attach). */
  readonly onStream: () => void;
  /** The cluster's connection limits: asked before a request opens a connection (its connector counts them). */
  readonly connections: ConnectionGate;
}

export type H2PoolClass = new (origin: string, options: PoolClass.Options, limits: H2PoolLimits) => PoolClass;

export interface Undici {
  readonly Pool: H2PoolClass;
  readonly buildConnector: typeof BuildConnector;
  /**
   * The dispatch option (a function) a queued request's pool or client calls with the request's
   * cancel: called with an error, it takes the request out of the queue (its handler's
   * onResponseError is told).
   */
  readonly kQueuedAbort: symbol;
}

/** undici's pool internals that retire one client (connection): the Pool API has no such call. */
interface PoolInternals {
  readonly kClients: symbol;
  readonly kRemoveClient: symbol;
  readonly kDrainQueue: symbol;
  readonly kGetDispatcher: symbol;
  readonly kHasDispatcher: symbol;
  readonly kNeedDrain: symbol;
}

const kDurationTimer = Symbol('rig.durationTimer');

/** The CONNECT streams open on the client's connection, and its close waiting for them. */
const kConnects = Symbol('rig.connects');

/** The fields of undici's request a CONNECT's write reads. */
interface TunnelRequest {
  readonly method: string;
  readonly path: string;
  /** The origin's scheme ("http:" or "https:"). */
  readonly protocol: string;
  upgrade: string | null;
}

interface ConnectStreams {
  open: number;
  close: (() => void) | undefined;
}

type PoolClient = Dispatcher & { [kDurationTimer]?: NodeJS.Timeout; [kConnects]?: ConnectStreams };

/** A client's close (undici's pool retires a client so) once its connection's CONNECT streams are closed. */
function closeAfterConnects(this: PoolClient, cb?: () => void): Promise<void> | void {
  const close = Object.getPrototypeOf(this).close as (this: PoolClient, cb?: () => void) => Promise<void> | void;
  const state = this[kConnects];
  if (state === undefined || state.open === 0) return close.call(this, cb);
  if (cb) {
    state.close = () => close.call(this, cb);
    return;
  }
  return new Promise((resolve) => (state.close = () => void (close.call(this) as Promise<void>).then(resolve)));
}

let loaded: Undici | undefined;

export function undici(): Undici {
  if (loaded) return loaded;
  // Each stream's session.request() would otherwise outlive its scavenges (async-resource-bind.ts).
  lightenAsyncResourceBind();
  const require = createRequire(import.meta.url);
  const Pool = require('undici/lib/dispatcher/pool.js') as typeof PoolClass;
  const internals = require('undici/lib/dispatcher/pool-base.js') as PoolInternals;
  const { kQueued, kUrl, kHTTPContext, kHTTP2Session, kRunning, kMaxConcurrentStreams, kResume, kConnected, kConnecting, kQueuedAbort } = require('undici/lib/core/symbols.js') as Record<'kQueued' | 'kUrl' | 'kHTTPContext' | 'kHTTP2Session' | 'kRunning' | 'kMaxConcurrentStreams' | 'kResume' | 'kConnected' | 'kConnecting' | 'kQueuedAbort', symbol>;
  const { errorRequest } = require('undici/lib/core/util.js') as { errorRequest(client: unknown, request: unknown, err: Error): void };
  type Internal = Record<symbol, unknown>;
  /** undici's request keeps the controller its handler got under a symbol of its own module. */
  let kController: symbol | undefined;
  // Request trailers, which undici's HTTP/2 client does not send (its TODO): node sends them only on
  // a stream opened with waitForTrailers. The connection's write of a request whose body carries a
  // trailer source opens its stream so, and answers 'wantTrailers' with the source's trailers
  // (none: an empty DATA frame ends the stream). Other requests go as before.
  const sendRequestTrailers = (_origin: unknown, targets: readonly Dispatcher[]): void => {
    const client = targets.at(-1) as unknown as Internal;
    const ctx = client[kHTTPContext] as { write(request: { body: unknown }): boolean } | undefined;
    if (ctx === undefined) return;
    const write = ctx.write;
    ctx.write = (request) => {
      const body = request.body;
      if (!(body instanceof H2StreamBody) || body.trailerSource === undefined) return write.call(ctx, request);
      const session = client[kHTTP2Session] as http2.ClientHttp2Session & { request: http2.ClientHttp2Session['request'] };
      const open = session.request;
      session.request = (headers, options) => {
        const stream = open.call(session, headers, { ...options, waitForTrailers: true });
        stream.once('wantTrailers', () => sendTrailers(stream, body.trailerSource!));
        return stream;
      };
      try {
        return write.call(ctx, request);
      } finally {
        delete (session as Partial<typeof session>).request;
      }
    };
  };
  // The streams of a connection. Each request written is a stream put on it (`onStream`); at
  // max_requests_per_connection the connection is retired. A CONNECT stream (a tcp_proxy tunnel)
  // stays open after its response, when undici stops counting it as running: the connection counts
  // it against max_concurrent_streams until it closes, so that the pool opens the next stream on
  // another connection (or queues it), as Envoy's pool does, instead of node queueing it inside a
  // full session; and a retired connection closes only once its CONNECT streams did (undici's
  // close waits for its requests, then destroys the session and any tunnel on it). A CONNECT that
  // names a protocol (undici's `upgrade`, which undici takes over HTTP/2 for websocket only) goes
  // as an extended CONNECT (RFC 8441) with that :protocol and its :path, when the upstream allows
  // it (SETTINGS_ENABLE_CONNECT_PROTOCOL; else the request fails, the connection stays).
  const countStreams = (pool: PoolClass, client: PoolClient, limits: H2PoolLimits): void => {
    const internal = client as unknown as Internal;
    const ctx = internal[kHTTPContext] as { write(request: { method: string }): boolean; busy(request: unknown): boolean } | undefined;
    if (ctx === undefined) return;
    const max = limits.maxRequestsPerConnection;
    const resume = internal[kResume] as () => void;
    /** Answered CONNECT streams, and all open ones. */
    let tunnels = 0;
    const state: ConnectStreams = (client[kConnects] = { open: 0, close: undefined });
    if (!Object.hasOwn(client, 'close')) client.close = closeAfterConnects as PoolClient['close'];
    let written = 0;
    const socket = (internal[kHTTP2Session] as http2.ClientHttp2Session | undefined)?.socket;
    const localAddress = socket?.localAddress === undefined ? undefined : `${socket.localAddress}:${socket.localPort}`;
    const { write, busy } = ctx;
    ctx.busy = (request) => busy.call(ctx, request) || (internal[kRunning] as number) + tunnels >= (internal[kMaxConcurrentStreams] as number);
    const writeTunnel = (request: TunnelRequest): boolean => {
      const session = internal[kHTTP2Session] as http2.ClientHttp2Session & { request: http2.ClientHttp2Session['request'] };
      const protocol = request.upgrade;
      if (protocol !== null) {
        if (!session.remoteSettings.enableConnectProtocol) {
          errorRequest(client, request, new Error('upstream does not allow extended CONNECT'));
          return false;
        }
        request.upgrade = null;
      }
      const open = session.request;
      session.request = (headers, options) => {
        if (protocol !== null) Object.assign(headers as http2.OutgoingHttpHeaders, { ':protocol': protocol, ':path': request.path, ':scheme': request.protocol === 'https:' ? 'https' : 'http' });
        const stream = open.call(session, headers, options);
        state.open++;
        let answered = false;
        // Heard before undici's own listener, which then stops counting the request.
        stream.once('response', () => {
          if (stream.closed) return;
          answered = true;
          tunnels++;
        });
        stream.once('close', () => {
          if (answered) tunnels--;
          if (--state.open === 0 && state.close) state.close();
          else resume();
        });
        return stream;
      };
      try {
        return write.call(ctx, request);
      } finally {
        delete (session as Partial<typeof session>).request;
      }
    };
    ctx.write = (request) => {
      if (!(request.method === 'CONNECT' ? writeTunnel(request as TunnelRequest) : write.call(ctx, request))) return false;
      // %UPSTREAM_LOCAL_ADDRESS%: the handlers read it from the request's controller, as from the
      // HTTP/1.1 pool's exchange (upstream-request.ts, pooled-connect.ts).
      kController ??= Object.getOwnPropertySymbols(request).find((k) => k.description === 'controller');
      const controller = kController && ((request as unknown as Internal)[kController] as { upstreamLocalAddress?: string } | undefined);
      if (controller) controller.upstreamLocalAddress = localAddress;
      limits.onStream();
      if (max > 0 && ++written === max) {
        limits.maxRequestsReached.value++;
        process.nextTick(retire, pool, client);
      }
      return true;
    };
  };
  // As Envoy retires a drained upstream connection: the client leaves the pool's rotation (a new
  // request opens a new connection), finishes its in-flight requests and then closes (undici's
  // retire: Client.close()).
  const retire = (pool: PoolClass, client: PoolClient): boolean => {
    clearTimeout(client[kDurationTimer]);
    client[kDurationTimer] = undefined;
    const p = pool as unknown as Internal;
    if (!(p[internals.kClients] as PoolClient[]).includes(client)) return false;
    (p[internals.kRemoveClient] as (c: PoolClient) => void).call(pool, client);
    // Requests queued at the connection limit would otherwise wait for another client's drain.
    if ((p[kQueued] as number) > 0) (p[internals.kDrainQueue] as (origin: unknown, targets: unknown[]) => void).call(pool, p[kUrl], [pool]);
    return true;
  };
  // max_connection_duration, timed from each connect, so an idle connection closes at its age too
  // (undici's own clientTtl only checks on dispatch).
  const onDurationReached = (pool: PoolClass, client: PoolClient, durationReached: { value: number }): void => {
    if (retire(pool, client)) durationReached.value++;
  };
  const getDispatcher = (Pool.prototype as unknown as Internal)[internals.kGetDispatcher] as (this: PoolClass) => unknown;
  const hasDispatcher = (Pool.prototype as unknown as Internal)[internals.kHasDispatcher] as (this: PoolClass, create: boolean) => unknown;
  loaded = {
    Pool: class H2Pool extends Pool {
      readonly #limits: H2PoolLimits;

      constructor(origin: string, options: PoolClass.Options, limits: H2PoolLimits) {
        super(origin, options);
        this.#limits = limits;
        this.on('connect', (origin, targets) => {
          sendRequestTrailers(origin, targets);
          countStreams(this, targets.at(-1) as PoolClient, limits);
        });
        const { maxConnectionDurationMs, durationReached } = limits;
        if (maxConnectionDurationMs <= 0) return;
        this.on('connect', (_origin, targets) => {
          const client = targets.at(-1) as PoolClient;
          clearTimeout(client[kDurationTimer]);
          client[kDurationTimer] = setTimeout(onDurationReached, maxConnectionDurationMs, this, client, durationReached).unref();
        });
        this.on('disconnect', (_origin, targets) => {
          const client = targets.at(-1) as PoolClient;
          clearTimeout(client[kDurationTimer]);
          client[kDurationTimer] = undefined;
        });
      }

      // undici's choice of the client (connection) a request goes to: one connected or connecting
      // with room; else a new connection, if the cluster's circuit breakers allow it (Envoy's
      // tryCreateNewConnection: at the limit only a pool with no connection opens one). Refused, the
      // request waits in the pool's queue for a stream slot (a client's drain).
      [internals.kGetDispatcher](): Dispatcher | undefined {
        const p = this as unknown as Internal;
        let unconnected: Dispatcher | undefined;
        for (const c of p[internals.kClients] as (Dispatcher & Internal)[]) {
          if (c[internals.kNeedDrain]) continue;
          if (c[kConnected] || c[kConnecting]) return c;
          unconnected ??= c;
        }
        if (!this.#limits.connections.mayOpen()) return undefined;
        return unconnected ?? (getDispatcher.call(this) as Dispatcher | undefined);
      }

      // Whether a request could go now; undici's would also create a client (which takes queued
      // requests as soon as it is added): clients are created above only, where the breakers are asked.
      [internals.kHasDispatcher](): boolean {
        return hasDispatcher.call(this, false) as boolean;
      }

      override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
        return this.#send(opts, handler);
      }

      // A body still streaming goes over as an iterable (h2-stream-body.ts says why); one that has
      // ended already stays a stream, for undici to send its length (not a lent downstream request:
      // undici's pipeline() would destroy it). A request with trailers always goes as an iterable
      // (a buffered body too): sendRequestTrailers opens its stream for them.
      #send(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
        const trailers = (opts as UpstreamDispatchOptions).trailers;
        let body = opts.body as (Readable & { _readableState?: { ended?: boolean } }) | null | undefined;
        if (trailers !== undefined && !(body instanceof Readable)) body = Readable.from(body ? [body as Buffer] : []);
        else if (trailers === undefined && (!(body instanceof Readable) || (body._readableState?.ended !== false && !isLentBody(body)))) return super.dispatch(opts, handler);
        const iterable = new H2StreamBody(body!, handler, trailers);
        // undici's types omit the iterables it takes as a body.
        return super.dispatch({ ...opts, body: iterable as unknown as Readable }, iterable);
      }
    },
    buildConnector: require('undici/lib/core/connect.js') as typeof BuildConnector,
    kQueuedAbort,
  };
  return loaded;
}

/** Connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2), left out of request trailers. */
const H2_FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host']);

/** Ends the request with its trailers; ones node refuses reset the stream (the attempt fails) rather than throw from an event. */
function sendTrailers(stream: http2.ClientHttp2Stream, source: TrailerSource): void {
  const t = source.trailers;
  const out: http2.OutgoingHttpHeaders = {};
  if (t) for (const k in t) if (t[k] !== undefined && !H2_FORBIDDEN.has(k.toLowerCase())) out[k] = t[k];
  try {
    stream.sendTrailers(out);
  } catch (e) {
    stream.destroy(e as Error);
  }
}
