// Errors of the HTTP/1.1 upstream pool, each with a stable code: the router tells a connect
// failure (UF), a protocol error (UPE) and a reset (UC) apart by these (upstream-request.ts).
export const H1ErrorCode = {
  /** No connection within connect_timeout. */
  ConnectTimeout: 'H1_CONNECT_TIMEOUT',
  /** The upstream broke HTTP/1.1: unparsable response, unsolicited 100 Continue, bytes with no request. */
  Protocol: 'H1_PROTOCOL_ERROR',
  /** The upstream closed the connection before the response was complete. */
  Closed: 'H1_SOCKET_CLOSED',
  /** The request cannot be written (invalid method, path or header; body length differs from content-length). */
  InvalidRequest: 'H1_INVALID_REQUEST',
  /** headersTimeout / bodyTimeout of the dispatch options. */
  HeadersTimeout: 'H1_HEADERS_TIMEOUT',
  BodyTimeout: 'H1_BODY_TIMEOUT',
  /** The caller aborted the request. */
  Aborted: 'H1_ABORTED',
  /** The pool was closed or destroyed. */
  PoolClosed: 'H1_POOL_CLOSED',
} as const;
export type H1ErrorCode = (typeof H1ErrorCode)[keyof typeof H1ErrorCode];

export class H1PoolError extends Error {
  readonly code: H1ErrorCode;
  constructor(code: H1ErrorCode, message: string) {
    super(message);
    this.name = 'H1PoolError';
    this.code = code;
  }
}
