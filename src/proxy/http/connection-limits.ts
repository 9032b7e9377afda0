// Envoy's per-connection limits of common_http_protocol_options on downstream connections:
// max_requests_per_connection (the last response carries Connection: close; HTTP/2: GOAWAY after
// that stream), max_connection_duration (then the connection drains: an idle HTTP/1 connection is
// closed, a busy one closes after its response, HTTP/2 gets GOAWAY) and
// headers_with_underscores_action (ALLOW, REJECT_REQUEST: HTTP/1 400 and a close, HTTP/2 stream
// reset; DROP_HEADER: the header is removed). Stats as Envoy names them under http.<stat_prefix>.
import type http from 'node:http';
import http2 from 'node:http2';
import type { H1ServerConnection } from './h1/h1-server-connection.ts';
import type { H1Request } from './h1/h1-request.ts';
import type { H1Response } from './h1/h1-response.ts';
import type { Reader } from '../config/reader.ts';
import type { Stat, Stats } from '../stats/stats.ts';

export const UnderscoresAction = { Allow: 0, RejectRequest: 1, DropHeader: 2 } as const;

export interface ConnectionLimits {
  /** 0: unlimited. */
  readonly maxRequests: number;
  /** 0: unlimited. */
  readonly maxDurationMs: number;
  readonly underscores: number;
  /** Any of the three set: the connection manager calls the functions below. */
  readonly active: boolean;
  readonly maxDurationReached: Stat;
  readonly maxRequestsReached: Stat;
  readonly rejectedUnderscores: Stat;
  readonly droppedUnderscores: Stat;
}

/** Reads the limits from common_http_protocol_options (absent: none). */
export function readConnectionLimits(cpo: Reader | undefined, statPrefix: string, stats: Stats): ConnectionLimits {
  const p = `http.${statPrefix}.`;
  const action = cpo?.str('headers_with_underscores_action', 'ALLOW') ?? 'ALLOW';
  let maxRequests = cpo?.num('max_requests_per_connection', 0) ?? 0;
  if (cpo && !(Number.isInteger(maxRequests) && maxRequests >= 0)) {
    cpo.issues.error(cpo.at('max_requests_per_connection'), 'must be a non-negative integer');
    maxRequests = 0;
  }
  const maxDurationMs = cpo?.durationMs('max_connection_duration', 0) ?? 0;
  const underscores = action === 'REJECT_REQUEST' ? UnderscoresAction.RejectRequest : action === 'DROP_HEADER' ? UnderscoresAction.DropHeader : UnderscoresAction.Allow;
  return {
    maxRequests,
    maxDurationMs,
    underscores,
    active: maxRequests > 0 || maxDurationMs > 0 || underscores !== UnderscoresAction.Allow,
    maxDurationReached: stats.counter(p + 'downstream_cx_max_duration_reached'),
    maxRequestsReached: stats.counter(p + 'downstream_cx_max_requests_reached'),
    rejectedUnderscores: stats.counter(p + 'requests_rejected_with_underscores_in_headers'),
    droppedUnderscores: stats.counter(p + 'dropped_headers_with_underscores'),
  };
}

/** Applies headers_with_underscores_action to a request's headers; false when it must be rejected. */
function underscoresOk(headers: http.IncomingHttpHeaders, l: ConnectionLimits): boolean {
  for (const k of Object.keys(headers)) {
    if (!k.includes('_')) continue;
    if (l.underscores === UnderscoresAction.RejectRequest) {
      l.rejectedUnderscores.value++;
      return false;
    }
    delete headers[k];
    l.droppedUnderscores.value++;
  }
  return true;
}

/** HTTP/1 request: false when it was answered here (rejected). */
export function admitH1(conn: H1ServerConnection, req: H1Request, res: H1Response, l: ConnectionLimits): boolean {
  if (l.underscores !== UnderscoresAction.Allow && !underscoresOk(req.headers, l)) {
    res.writeHead(400, { connection: 'close', 'content-length': '0' }).end();
    return false;
  }
  if (l.maxRequests > 0) {
    const n = conn.requests;
    if (n >= l.maxRequests) {
      if (n === l.maxRequests) l.maxRequestsReached.value++;
      res.shouldKeepAlive = false;
    }
  }
  return true;
}

/** HTTP/2 request: false when its stream was reset here (rejected). */
export function admitH2(req: { readonly headers: http2.IncomingHttpHeaders; readonly stream: http2.ServerHttp2Stream }, l: ConnectionLimits): boolean {
  if (l.underscores === UnderscoresAction.Allow || underscoresOk(req.headers, l)) return true;
  req.stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
  return false;
}

/** max_connection_duration on an HTTP/1 connection: it drains (idle: closed now; busy: after its response). */
export function watchH1Connection(conn: H1ServerConnection, l: ConnectionLimits): void {
  if (l.maxDurationMs <= 0) return;
  const timer = setTimeout(drainH1, l.maxDurationMs, conn, l);
  timer.unref();
  conn.socket.once('close', () => clearTimeout(timer));
}

function drainH1(conn: H1ServerConnection, l: ConnectionLimits): void {
  l.maxDurationReached.value++;
  conn.drain();
}

/** max_requests_per_connection and max_connection_duration on an HTTP/2 session: GOAWAY, in-flight streams finish. */
export function watchH2Session(session: http2.ServerHttp2Session, l: ConnectionLimits): void {
  if (l.maxRequests > 0) {
    let n = 0;
    session.on('stream', () => {
      if (++n !== l.maxRequests) return;
      l.maxRequestsReached.value++;
      session.close();
    });
  }
  if (l.maxDurationMs > 0) {
    const timer = setTimeout(() => {
      l.maxDurationReached.value++;
      if (!session.closed) session.close();
    }, l.maxDurationMs);
    timer.unref();
    session.once('close', () => clearTimeout(timer));
  }
}
