// The connection pool interface the router, mirrors and the proxy's own requests
// (cluster-request.ts) use. Two implementations:
// h1-pool/ (HTTP/1.1 on our own sockets and parser) and undici's Pool (HTTP/2, h2c), which
// satisfies it as is. Handlers follow undici's DispatchHandler (controller pause/resume/abort).
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

export type HeaderValue = string | string[] | undefined;

/** Where a request's trailers are read once its body has ended: the downstream request (its trailers are set before its end). */
export interface TrailerSource {
  readonly trailers: Readonly<Record<string, HeaderValue>> | undefined;
}

export interface UpstreamDispatchOptions {
  readonly method: string;
  /** Request-target (origin form). */
  readonly path: string;
  readonly headers?: Readonly<Record<string, HeaderValue>> | null;
  readonly body?: Buffer | Uint8Array | string | Readable | null;
  /** Trailers to send after the body (chunked over HTTP/1.1); a retry or mirror reads the same ones. */
  readonly trailers?: TrailerSource;
  /** ms from the request's write to its response head (0 or absent: none). */
  readonly headersTimeout?: number | null;
  /** ms of silence allowed between response body chunks (0 or absent: none). */
  readonly bodyTimeout?: number | null;
  readonly idempotent?: boolean;
  readonly blocking?: boolean;
  /** A CONNECT's :protocol (RFC 8441 extended CONNECT, HTTP/2 pools only); its :path is `path`. */
  readonly upgrade?: string;
  /**
   * undici's TLS server name of the request (default: from its Host). Its client closes its
   * connection to switch names, though the cluster's connector sets SNI itself (cluster.ts): every
   * dispatch passes UPSTREAM_SERVERNAME, so requests of any Host share the cluster's connections.
   */
  readonly servername?: string;
  /** The route's priority is HIGH: the circuit breakers' high thresholds count the request while it waits (HTTP/1.1 pool). */
  readonly highPriority?: boolean;
}

/**
 * The cluster's circuit breakers' say over one pool's connections (Envoy's conn_pool_base): asked
 * before the pool opens a connection; false: no connection, the request waits for one of the
 * pool's own. `opened` / `closed` count each of the pool's connections from its connect to its
 * failure or close (retiring ones included).
 */
export interface ConnectionGate {
  mayOpen(): boolean;
  opened(): void;
  closed(): void;
}

/** No limit (a pool outside a cluster). */
export const UNGATED: ConnectionGate = { mayOpen: () => true, opened: () => undefined, closed: () => undefined };

/**
 * The cluster's max_pending_requests over the requests waiting in its HTTP/1.1 pools for a
 * connection (Envoy's pending streams, counted per route priority, `high`): `mayWait` is asked when a
 * request would wait (false: refused, upstream_rq_pending_overflow counted); `waiting` / `done`
 * count it from the moment it joins a pool's queue until it leaves it.
 */
export interface PendingGate {
  mayWait(high: boolean): boolean;
  waiting(high: boolean): void;
  done(high: boolean): void;
}

/** No limit (a pool outside a cluster, a cluster without circuit breakers). */
export const UNLIMITED_PENDING: PendingGate = { mayWait: () => true, waiting: () => undefined, done: () => undefined };

/** The one server name dispatches give undici (the SNI on the wire is the cluster's). */
export const UPSTREAM_SERVERNAME = 'rig-upstream';

export interface UpstreamPool {
  dispatch(opts: UpstreamDispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  /**
   * Envoy's pool refusal (conn_pool_base newStreamImpl), asked by the router before it dispatches:
   * true when a request dispatched now would find no ready connection while the cluster's pending
   * requests of its priority are at max_pending_requests (upstream_rq_pending_overflow counted):
   * the request must not be dispatched (503 UO, never retried). Absent: the pool never refuses.
   */
  refusesPending?(high: boolean): boolean;
  /** Finishes the queued and in-flight requests, then closes every connection. */
  close(): Promise<void>;
  /** Closes every connection now; queued and in-flight requests fail. */
  destroy(): Promise<void>;
}
