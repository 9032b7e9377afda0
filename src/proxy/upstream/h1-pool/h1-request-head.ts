// The head of an HTTP/1.1 request to an upstream, as one latin1 string. The pool owns the framing
// headers: content-length comes from a buffered body (or the caller's header for a streamed one),
// a streamed body without one is chunked, and connection is written only to close. Everything is
// checked before it reaches the wire: a CR/LF in a header value from a filter must never split
// the request (request smuggling), so such a request fails instead.
import { H1ErrorCode, H1PoolError } from './h1-errors.ts';
import { TOKEN, badFieldValue } from '../../http/h1/h1-syntax.ts';
import type { HeaderValue, TrailerSource } from '../upstream-pool.ts';
import { respellHead, type NameFormatter } from '../../http/h1/header-case.ts';

export interface RequestFraming {
  readonly head: string;
  /** Body bytes the head announces (-1: chunked, 0: none). */
  readonly length: number;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE']);
/** Methods whose requests announce a body even when empty (as undici and browsers do). */
const EXPECTS_PAYLOAD = new Set(['POST', 'PUT', 'PATCH', 'QUERY']);
/** Connection-level headers the pool writes itself (or never). */
const OWN = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'upgrade', 'expect', 'te', 'http2-settings']);
/** A header name found valid and none of ours: its line's start, and whether it spells host. */
interface CheckedName {
  readonly prefix: string;
  readonly host: boolean;
}

/**
 * Names already checked: requests repeat the same few dozen (checking one by lowercasing and a
 * RegExp takes ~150 ns), and each line then starts with one concatenation less (~300 instructions a request).
 */
const checkedNames = new Map<string, CheckedName>();
const MAX_CHECKED_NAMES = 4096;

function invalid(what: string): H1PoolError {
  return new H1PoolError(H1ErrorCode.InvalidRequest, `invalid request ${what}`);
}

/**
 * `bodyLength`: the buffered body's size, -1 for a streamed body, 0 for none. `close`: ask the
 * upstream to close after this response (last request of the connection). `names`: how header names
 * are spelled (header_key_format); undefined: as given.
 */
export function requestHead(method: string, path: string, headers: Readonly<Record<string, HeaderValue>> | null | undefined, defaultHost: string, bodyLength: number, close: boolean, names?: NameFormatter): RequestFraming | H1PoolError {
  if (names !== undefined) return formattedHead(method, path, headers, defaultHost, bodyLength, close, names);
  if (!METHODS.has(method) && !TOKEN.test(method)) return invalid('method');
  if (path.length === 0 || badPath(path)) return invalid('path');
  let head = method + ' ' + path + ' HTTP/1.1\r\n';
  let hasHost = false;
  let declared = -1;
  if (headers) {
    for (const name in headers) {
      const v = headers[name];
      if (v === undefined) continue;
      let checked = checkedNames.get(name);
      if (checked === undefined) {
        const lower = name.toLowerCase();
        if (OWN.has(lower)) {
          if (lower === 'content-length') {
            declared = Number(v);
            if (!Number.isSafeInteger(declared) || declared < 0) return invalid('content-length header');
          }
          continue;
        }
        if (!TOKEN.test(name)) return invalid(`header name ${JSON.stringify(name)}`);
        checked = { prefix: name + ': ', host: lower === 'host' };
        if (checkedNames.size < MAX_CHECKED_NAMES) checkedNames.set(name, checked);
      }
      if (checked.host) hasHost = true;
      if (typeof v === 'string') {
        if (badFieldValue(v)) return invalid(`${name} header`);
        head += checked.prefix + v + '\r\n';
      } else {
        for (const one of v) {
          if (badFieldValue(one)) return invalid(`${name} header`);
          head += checked.prefix + one + '\r\n';
        }
      }
    }
  }
  if (!hasHost) head += 'host: ' + defaultHost + '\r\n';
  let length = bodyLength;
  if (bodyLength >= 0) {
    if (bodyLength > 0 || declared >= 0 || EXPECTS_PAYLOAD.has(method)) head += 'content-length: ' + bodyLength + '\r\n';
  } else if (declared >= 0) {
    length = declared;
    head += 'content-length: ' + declared + '\r\n';
  } else head += 'transfer-encoding: chunked\r\n';
  if (close) head += 'connection: close\r\n';
  return { head: head + '\r\n', length };
}

/** Whether a request-target holds whitespace, a control or a character beyond latin1 (a loop: a RegExp test cost ~180 instructions a request). */
function badPath(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c < 0x21 || c > 0xff) return true;
  }
  return false;
}

/** requestHead with names spelled by a formatter: the same checks and framing, kept apart from the common path. */
function formattedHead(method: string, path: string, headers: Readonly<Record<string, HeaderValue>> | null | undefined, defaultHost: string, bodyLength: number, close: boolean, names: NonNullable<NameFormatter>): RequestFraming | H1PoolError {
  const plain = requestHead(method, path, headers, defaultHost, bodyLength, close);
  return plain instanceof H1PoolError ? plain : { head: respellHead(plain.head, names), length: plain.length };
}

/**
 * The last chunk of a chunked body with the source's trailers (as checked as headers: a field that
 * could split the message, or one of the framing fields, is left out).
 */
export function lastChunk(source: TrailerSource | undefined): string {
  const t = source?.trailers;
  let out = '0\r\n';
  if (t) {
    for (const name in t) {
      const v = t[name];
      if (v === undefined || !TOKEN.test(name) || OWN.has(name.toLowerCase())) continue;
      for (const one of typeof v === 'string' ? [v] : v) if (!badFieldValue(one)) out += name + ': ' + one + '\r\n';
    }
  }
  return out + '\r\n';
}
