// One attempt of a request to one upstream host, as a dispatch handler (undici's handler API, which
// both pools speak: upstream-pool.ts). The stream (http-stream.ts) owns retry and response
// decisions; this class only relays events and keeps the per-try timer.
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
// The module's performance, not the global: globalThis.performance is an accessor, ~170 instructions a read (callgrind).
import { performance } from 'node:perf_hooks';
import { isH2ConnectFailure, type UpstreamHost, type Cluster } from '../upstream/cluster.ts';
import type { UpstreamDispatchOptions, UpstreamPool } from '../upstream/upstream-pool.ts';
import { H1ErrorCode } from '../upstream/h1-pool/h1-errors.ts';
import { requestTimer } from '../request-timer.ts';

export interface AttemptOwner {
  onAttemptHeaders(a: UpstreamRequest, status: number, headers: IncomingHttpHeaders): void;
  onAttemptData(a: UpstreamRequest, chunk: Buffer): void;
  onAttemptEnd(a: UpstreamRequest, trailers: IncomingHttpHeaders): void;
  onAttemptError(a: UpstreamRequest, err: Error): void;
  /** `idle`: per_try_idle_timeout (no upstream progress), else per_try_timeout. */
  onAttemptPerTryTimeout(a: UpstreamRequest, idle: boolean): void;
}

export class UpstreamRequest implements Dispatcher.DispatchHandler {
  readonly owner: AttemptOwner;
  readonly host: UpstreamHost;
  readonly cluster: Cluster;
  controller: Dispatcher.DispatchController | undefined;
  /** Set when the owner gave up on this attempt (retry, timeout, downstream reset): later events are dropped. */
  cancelled = false;
  done = false;
  headersReceived = false;
  startedAt = 0;
  private perTryTimer: NodeJS.Timeout | undefined;
  /** per_try_idle_timeout: started once the request is on a connection, refreshed by each response event. */
  private idleTimer: NodeJS.Timeout | undefined;
  private idleMs = 0;

  constructor(owner: AttemptOwner, cluster: Cluster, host: UpstreamHost) {
    this.owner = owner;
    this.cluster = cluster;
    this.host = host;
  }

  start(pool: UpstreamPool, opts: UpstreamDispatchOptions, perTryTimeoutMs: number, perTryIdleTimeoutMs = 0): void {
    this.startedAt = performance.now();
    if (perTryTimeoutMs > 0) this.perTryTimer = requestTimer(onPerTry, perTryTimeoutMs, this);
    this.idleMs = perTryIdleTimeoutMs;
    pool.dispatch(opts, this);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.cancelled) controller.abort(new Error('cancelled'));
    else if (this.idleMs > 0) this.idleTimer = requestTimer(onPerTryIdle, this.idleMs, this);
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    this.idleTimer?.refresh();
    // 1xx (102, 103…) are not the response: dropped, as Envoy does without proxying 1xx.
    if (this.cancelled || status < 200) return;
    this.headersReceived = true;
    this.owner.onAttemptHeaders(this, status, headers);
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.idleTimer?.refresh();
    if (!this.cancelled) this.owner.onAttemptData(this, chunk);
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.clearTimer();
    this.done = true;
    if (!this.cancelled) this.owner.onAttemptEnd(this, trailers);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.clearTimer();
    this.done = true;
    // The HTTP/1.1 pool counts its own (h1-pool.ts).
    if (isH2ConnectFailure(err)) this.cluster.s.rqPendingFailureEject.value++;
    if (!this.cancelled) this.owner.onAttemptError(this, err);
  }

  /** The connection's local address, from pools that tell it (the HTTP/1 pool's exchange). */
  get upstreamLocalAddress(): string | undefined {
    return (this.controller as { upstreamLocalAddress?: string } | undefined)?.upstreamLocalAddress;
  }

  pause(): void {
    this.controller?.pause();
  }

  resume(): void {
    this.controller?.resume();
  }

  /** Abandons the attempt (the connection is reset if the request is in flight). */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.clearTimer();
    if (!this.done) this.controller?.abort(new Error('request cancelled by proxy'));
  }

  clearTimer(): void {
    if (this.perTryTimer) {
      clearTimeout(this.perTryTimer);
      this.perTryTimer = undefined;
    }
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
  }
}

function onPerTry(a: UpstreamRequest): void {
  a.owner.onAttemptPerTryTimeout(a, false);
}

function onPerTryIdle(a: UpstreamRequest): void {
  a.owner.onAttemptPerTryTimeout(a, true);
}

const CONNECT_FAILURE_CODES = new Set<string>(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', H1ErrorCode.ConnectTimeout, 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/** True when the error happened before a connection was established (Envoy's connect-failure, UF). */
export function isConnectFailure(err: Error): boolean {
  const code = (err as { code?: string }).code ?? '';
  if (CONNECT_FAILURE_CODES.has(code)) return true;
  return code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|UNABLE_TO_VERIFY|SELF_SIGNED/.test(code) || err.message.includes('do not match any of the configured subject alt names');
}

/** True when the pool gave up waiting for the response (the dispatch's headersTimeout / bodyTimeout). */
export function isResponseTimeout(err: Error): boolean {
  const code = (err as { code?: string }).code;
  return code === H1ErrorCode.HeadersTimeout || code === H1ErrorCode.BodyTimeout || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
}

/**
 * True when the upstream broke HTTP (unparsable status line or header, content-length with
 * transfer-encoding, an unsolicited 100 Continue): Envoy's protocol_error, 502 UPE.
 */
export function isProtocolError(err: Error): boolean {
  const code = (err as { code?: string }).code;
  return code === H1ErrorCode.Protocol || err.name === 'HTTPParserError' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || (code === 'UND_ERR_SOCKET' && (err.message === 'bad response' || err.message === 'bad upgrade'));
}

const NGHTTP2_REFUSED_STREAM = 7;

/**
 * An HTTP/2 upstream reset the stream (RST_STREAM) on a working connection: Envoy's remote reset
 * (UR), or remote refused stream reset for REFUSED_STREAM. undici reports RST_STREAM as node's
 * stream error (for CANCEL and NO_ERROR before END_STREAM, through upstream/h2-reset-watch.ts), and a
 * stream that closed unreported before the response ended as a closed stream.
 */
export function remoteResetReason(err: Error): 'remote_reset' | 'remote_refused_stream_reset' | undefined {
  const e = err as { code?: string; http2ErrorCode?: number };
  if (e.code === 'ERR_HTTP2_STREAM_ERROR') return e.http2ErrorCode === NGHTTP2_REFUSED_STREAM ? 'remote_refused_stream_reset' : 'remote_reset';
  if (e.code === 'UND_ERR_INFO' && err.message === 'HTTP/2: stream closed before the response was complete') return 'remote_reset';
  return undefined;
}
