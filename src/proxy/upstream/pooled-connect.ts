// Tunnels as streams of a cluster's pooled HTTP/2 connections, as Envoy's HTTP pool carries the
// router's upgrades and CONNECTs and tcp_proxy's tunnels: a CONNECT, or an extended CONNECT (RFC
// 8441, :protocol the upgrade type), waits for a connection with room (max_concurrent_streams,
// max_requests_per_connection, the cluster's max_connections) and a refused or reset stream fails its
// tunnel only. PooledStreamSlot holds the cluster's circuit breakers for one such stream as
// Envoy's pool does: max_requests for its life, max_pending_requests while it waits for a
// connection (Envoy's pending stream); either refused is an overflow (UO).
import http2 from 'node:http2';
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { ClusterHook } from './cluster-hooks.ts';
import { UPSTREAM_SERVERNAME, type HeaderValue, type UpstreamPool } from './upstream-pool.ts';
import { undici } from './undici-pool.ts';
import { transportFailureReason } from './transport-failure-reason.ts';

function noop(): void {}

/** The circuit-breaker slots of one pooled stream (a tunnel). */
export class PooledStreamSlot {
  readonly #hooks: readonly ClusterHook[];
  /** The route's priority is HIGH: the breakers' high-priority thresholds. */
  readonly #high: boolean;
  #attached = false;
  #pending = false;
  #released = false;

  private constructor(hooks: readonly ClusterHook[], high: boolean) {
    this.#hooks = hooks;
    this.#high = high;
  }

  /** Takes a max_requests slot of the cluster's breakers; undefined when one refused (an overflow). */
  static take(hooks: readonly ClusterHook[], high = false): PooledStreamSlot | undefined {
    const admitted: ClusterHook[] = [];
    for (const h of hooks) {
      if (!h.admit) continue;
      if (h.admit(high)) {
        for (const a of admitted) a.release!(high);
        return undefined;
      }
      admitted.push(h);
    }
    return new PooledStreamSlot(admitted, high);
  }

  /** The stream is on a connection: it no longer waits. */
  attach(): void {
    this.#attached = true;
    this.#leavePending();
  }

  /**
   * Right after the dispatch: a stream not yet on a connection waits (Envoy's pending stream,
   * under max_pending_requests); false when the breaker refused it (the stream must be given up).
   */
  queued(): boolean {
    if (this.#attached || this.#released) return true;
    const taken: ClusterHook[] = [];
    for (const h of this.#hooks) {
      if (!h.admitPending) continue;
      if (!h.admitPending(this.#high)) {
        for (const a of taken) a.releasePending!(this.#high);
        return false;
      }
      taken.push(h);
    }
    this.#pending = true;
    return true;
  }

  /** The stream ended (or never came): every slot given back; once. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#leavePending();
    for (const h of this.#hooks) h.release!(this.#high);
  }

  #leavePending(): void {
    if (!this.#pending) return;
    this.#pending = false;
    for (const h of this.#hooks) h.releasePending?.(this.#high);
  }
}

/** "address:port" of the connection a pooled stream is on (%UPSTREAM_LOCAL_ADDRESS%): the HTTP/2 pool puts it on the stream's controller. */
export function upstreamLocalAddress(controller: Dispatcher.DispatchController | undefined): string | undefined {
  return (controller as { upstreamLocalAddress?: string } | undefined)?.upstreamLocalAddress;
}

export interface ConnectRequest {
  /** The :authority. */
  readonly authority: string;
  /** An extended CONNECT's :protocol (RFC 8441) and :path; without: a plain CONNECT. */
  readonly protocol?: string;
  readonly path?: string;
  readonly headers: Readonly<Record<string, HeaderValue>>;
}

/** How a pooled CONNECT was answered: the stream when `accept` took its status, else why not (status 0: no response). */
export interface ConnectAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly stream: http2.ClientHttp2Stream | undefined;
  readonly reason: string;
  /** A circuit breaker refused the waiting stream (max_pending_requests). */
  readonly overflow: boolean;
  /** The pool's error, when the stream failed with one (a connect failure, a reset...). */
  readonly error?: Error;
  /** The pooled connection's local address, once the stream was on one. */
  readonly localAddress: string | undefined;
}

/**
 * Sends `req` as a stream of `pool`; `attached` is told once it is on a connection (where Envoy's
 * pool charges the request; the pool counts the host's rq_total). Calls back once; a refused
 * stream is reset (a response that ends the stream is no tunnel either); an overflow calls back
 * before this returns. Returns the abort, for a downstream that went away meanwhile (it calls back
 * with its reason). A failed stream gives its circuit-breaker slots back; an established one's
 * owner calls slot.release() when the tunnel ends.
 */
export function dispatchConnect(pool: UpstreamPool, slot: PooledStreamSlot, req: ConnectRequest, accept: (status: number) => boolean, attached: () => void, cb: (a: ConnectAnswer) => void): (reason: string) => void {
  const handler = new ConnectStream(slot, accept, attached, cb);
  // The :protocol goes as undici's upgrade, which the pool's HTTP/2 connections turn into an
  // extended CONNECT (undici-pool.ts); a CONNECT has no :path otherwise.
  // A stream given up while it waits leaves the queue at once (Envoy cancels a pending stream).
  const opts = { method: 'CONNECT', path: req.path ?? req.authority, headers: { ...req.headers, host: req.authority }, upgrade: req.protocol, servername: UPSTREAM_SERVERNAME, [undici().kQueuedAbort]: (cancel: (err: Error) => void) => (handler.cancelQueued = cancel) };
  pool.dispatch(opts, handler);
  if (!slot.queued()) handler.give('overflow', true);
  return (reason) => handler.give(reason, false);
}

/** The pool's handler of one CONNECT stream: the response comes through onRequestUpgrade. */
class ConnectStream implements Dispatcher.DispatchHandler {
  private readonly slot: PooledStreamSlot;
  private readonly accept: (status: number) => boolean;
  private readonly attached: () => void;
  private readonly cb: (a: ConnectAnswer) => void;
  private controller: Dispatcher.DispatchController | undefined;
  private answered = false;
  /** Takes the stream out of the pool's (or its connection's) queue while it waits. */
  cancelQueued: ((err: Error) => void) | undefined;

  constructor(slot: PooledStreamSlot, accept: (status: number) => boolean, attached: () => void, cb: (a: ConnectAnswer) => void) {
    this.slot = slot;
    this.accept = accept;
    this.attached = attached;
    this.cb = cb;
  }

  /** Gives up on the stream: reset when open, out of the queue while it waits. */
  give(reason: string, overflow: boolean, error?: Error): void {
    if (this.answered) return;
    // Answered first: the abort tells onResponseError, which then has nothing left to do.
    this.answer({ status: 0, headers: {}, stream: undefined, reason, overflow, localAddress: undefined, error });
    if (this.controller) this.controller.abort(new Error(reason));
    else this.cancelQueued?.(new Error(reason));
  }

  private answer(a: ConnectAnswer): void {
    if (this.answered) return;
    this.answered = true;
    if (!a.stream) this.slot.release();
    this.cb(a);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // Given up while it waited for a connection: it leaves before it is on one.
    if (this.answered) return controller.abort(new Error('tunnel abandoned'));
    this.controller = controller;
    this.slot.attach();
    this.attached();
  }

  onRequestUpgrade(_controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders, socket: unknown): void {
    const stream = socket as http2.ClientHttp2Stream;
    stream.on('error', noop);
    if (this.answered) return void stream.close(http2.constants.NGHTTP2_CANCEL);
    const localAddress = upstreamLocalAddress(this.controller);
    if (!this.accept(status) || stream.endAfterHeaders) {
      // undici is done with the request once this returns: the stream is reset here, not aborted.
      stream.close(http2.constants.NGHTTP2_CANCEL);
      return this.answer({ status, headers, stream: undefined, reason: `tunnel refused by upstream: ${status}`, overflow: false, localAddress });
    }
    this.answer({ status, headers, stream, reason: '', overflow: false, localAddress });
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.give(transportFailureReason(err), false, err);
  }
}
