// A strict, incremental HTTP/1.1 message parser (RFC 9112) for requests and responses. Hand-written
// rather than node's llhttp binding because it is the proxy's measured hot path: node's HTTP server
// around llhttp (IncomingMessage, streams, nextTick) cost more CPU per request than all of our own code;
// this parser takes ~0.9 µs of CPU for a 1 KB POST with 6 headers (head + body, one chunk).
// Strict where request smuggling lives: Content-Length with Transfer-Encoding, differing duplicate
// Content-Length, bad chunk sizes, obs-fold, bare CR/LF, control characters in values, invalid token
// characters in names and methods, spaces in the request-target are all errors, never guesses.

import { TCHAR, lowerAscii } from './h1-syntax.ts';

export interface H1Head {
  /** Request method ('' for responses). */
  method: string;
  /** Request-target as sent ('' for responses). */
  target: string;
  /** Response status (0 for requests). */
  status: number;
  /** Response reason phrase. */
  reason: string;
  versionMinor: 0 | 1;
  /** [name, value, name, value, ...] as received: names' case kept, values trimmed of OWS. */
  rawHeaders: string[];
  /** From the version and the Connection header (and, for responses, a body delimited by close). */
  keepAlive: boolean;
  /** Request: CONNECT, or Connection: upgrade with Upgrade; response: 101 or 2xx to CONNECT. */
  upgrade: boolean;
  bodyKind: 'none' | 'length' | 'chunked' | 'until-close';
  /** When bodyKind is 'length'. */
  contentLength: number;
}

export interface H1ParserCallbacks {
  onHead(head: H1Head): void;
  /** Slices of the input, no copies. */
  onBody(chunk: Buffer): void;
  onEnd(trailers: string[] | undefined): void;
  /** Response parser: an interim 1xx response (not 101); ignored when absent. */
  onInformational?(head: H1Head): void;
}

export interface H1Limits {
  /** Bytes of a head (start line + headers + final CRLF), and of a trailer section. */
  maxHeaderBytes: number;
  maxHeaders: number;
}

export class H1ParseError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'H1ParseError';
    this.code = code;
  }
}

// field-value characters: HTAB, SP, VCHAR, obs-text.
const VCHAR = new Uint8Array(256);
VCHAR[0x09] = 1;
for (let c = 0x20; c <= 0x7e; c++) VCHAR[c] = 1;
for (let c = 0x80; c <= 0xff; c++) VCHAR[c] = 1;
// request-target characters: no whitespace, no controls; obs-text accepted as llhttp does.
const TARGET = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TARGET[c] = 1;
for (let c = 0x80; c <= 0xff; c++) TARGET[c] = 1;
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[0x41 + c] = 10 + c;
  HEX[0x61 + c] = 10 + c;
}

/** node's Buffer#latin1Slice (what toString('latin1', s, e) calls, minus the encoding switch). */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

const CRLFCRLF = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);
const MAX_CHUNK_LINE = 4096;

const S_HEAD = 0;
const S_LENGTH = 1;
const S_CHUNK_SIZE = 2;
const S_CHUNK_DATA = 3;
const S_CHUNK_DATA_END = 4;
const S_TRAILERS = 5;
const S_UNTIL_CLOSE = 6;
const S_UPGRADED = 7;

function fail(code: string, message: string): never {
  throw new H1ParseError(code, message);
}

/** A character outside its class; a LF there can only be a bare one (lines are split at CRLF). */
function badChar(code: string, c: number, where: string): never {
  if (c === 0x0a) fail('INVALID_LINE_ENDING', 'bare LF in the message head (lines must end with CRLF)');
  return fail(code, `invalid character 0x${c.toString(16)} in ${where}`);
}

/** A malformed start line; reported as a bare LF when it holds one. */
function badLine(s: string, eol: number, code: string, message: string): never {
  const lf = s.indexOf('\n');
  if (lf !== -1 && lf < eol) fail('INVALID_LINE_ENDING', 'bare LF in the message head (lines must end with CRLF)');
  return fail(code, message);
}

/**
 * Whether b holds `lower` at `from`, in any case. `lower`: lower-case letters and '-'; b: tchars
 * there (checked), so `c | 0x20` can only match a letter of either case or '-' itself.
 */
function isNameAt(b: Buffer, from: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((b[from + i] | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/** Whether b holds the ASCII `text` at `from`. */
function hasAt(b: Buffer, from: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (b[from + i] !== text.charCodeAt(i)) return false;
  return true;
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** Throws when a bare LF (one not preceded by CR) is in b[from, to). */
function checkBareLf(b: Buffer, from: number, to: number): void {
  let i = b.indexOf(0x0a, from);
  while (i !== -1 && i < to) {
    if (i === 0 || b[i - 1] !== 0x0d) fail('INVALID_LINE_ENDING', 'bare LF in the message head (lines must end with CRLF)');
    i = b.indexOf(0x0a, i + 1);
  }
}

export class H1Parser {
  private readonly kind: 'request' | 'response';
  private readonly limits: H1Limits;
  private readonly cb: H1ParserCallbacks;
  private state = S_HEAD;
  /** Unprocessed input kept while a head/chunk line is incomplete, while paused, or after an upgrade. */
  private pending: Buffer | undefined;
  /** Bytes of pending already scanned for the head's end. */
  private scanned = 0;
  private remaining = 0;
  private trailers: string[] | undefined;
  private trailerBytes = 0;
  private noBodyNext = false;
  private connectNext = false;
  private isPaused = false;
  private running = false;

  constructor(kind: 'request' | 'response', limits: H1Limits, cb: H1ParserCallbacks) {
    this.kind = kind;
    this.limits = limits;
    this.cb = cb;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  /** True between a head and the end of its message. */
  get inMessage(): boolean {
    return this.state !== S_HEAD && this.state !== S_UPGRADED;
  }

  /** True when bytes of an incomplete head (or held while paused) are buffered. */
  get hasBufferedInput(): boolean {
    return this.pending !== undefined && this.pending.length > 0;
  }

  /** The held bytes get a copy of their own: the caller's input buffer is about to be reused. */
  ownBufferedInput(): void {
    if (this.pending !== undefined && this.pending.length > 0) this.pending = Buffer.from(this.pending);
  }

  /** Bytes held unparsed (incomplete head or chunk line, or input given while paused). */
  get bufferedBytes(): number {
    return this.pending?.length ?? 0;
  }

  /** Response parser: the next response answers a HEAD request (no body whatever its headers say). */
  expectNoBody(): void {
    this.noBodyNext = true;
  }

  /** Response parser: the next response answers a CONNECT request (2xx switches to a tunnel). */
  expectConnect(): void {
    this.connectNext = true;
  }

  pause(): void {
    this.isPaused = true;
  }

  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    if (!this.running && this.pending && this.state !== S_UPGRADED) this.execute(EMPTY);
  }

  /** After an upgrade head: the bytes that followed it (and any given since). */
  takeRemainder(): Buffer | undefined {
    const r = this.pending;
    this.pending = undefined;
    return r && r.length > 0 ? r : undefined;
  }

  /** EOF from the peer. */
  finish(): void {
    if (this.state === S_UNTIL_CLOSE) {
      this.state = S_HEAD;
      this.cb.onEnd(undefined);
      return;
    }
    if (this.state === S_UPGRADED) return;
    if (this.state !== S_HEAD || (this.pending && this.pending.length > 0 && !this.isPaused)) {
      fail('UNEXPECTED_EOF', 'connection closed in the middle of a message');
    }
  }

  execute(data: Buffer): void {
    if (this.pending) {
      data = data.length === 0 ? this.pending : Buffer.concat([this.pending, data]);
      this.pending = undefined;
    }
    if (this.state === S_UPGRADED || this.isPaused) {
      if (data.length > 0) this.pending = data;
      return;
    }
    this.running = true;
    try {
      this.run(data);
    } finally {
      this.running = false;
    }
  }

  private run(b: Buffer): void {
    let p = 0;
    const len = b.length;
    while (p < len) {
      if (this.isPaused) break;
      switch (this.state) {
        case S_HEAD: {
          const next = this.parseHead(b, p);
          if (next < 0) return;
          p = next;
          break;
        }
        case S_LENGTH: {
          const n = Math.min(this.remaining, len - p);
          this.remaining -= n;
          const chunk = b.subarray(p, p + n);
          p += n;
          this.cb.onBody(chunk);
          if (this.remaining === 0 && this.state === S_LENGTH) this.endMessage(undefined);
          break;
        }
        case S_CHUNK_SIZE: {
          const next = this.parseChunkSize(b, p);
          if (next < 0) return;
          p = next;
          break;
        }
        case S_CHUNK_DATA: {
          const n = Math.min(this.remaining, len - p);
          this.remaining -= n;
          const chunk = b.subarray(p, p + n);
          p += n;
          if (this.remaining === 0) this.state = S_CHUNK_DATA_END;
          this.cb.onBody(chunk);
          break;
        }
        case S_CHUNK_DATA_END: {
          if (len - p < 2) return this.keep(b, p);
          if (b[p] !== 0x0d || b[p + 1] !== 0x0a) fail('INVALID_CHUNK', 'chunk data not followed by CRLF');
          p += 2;
          this.state = S_CHUNK_SIZE;
          break;
        }
        case S_TRAILERS: {
          const next = this.parseTrailerLine(b, p);
          if (next < 0) return;
          p = next;
          break;
        }
        case S_UNTIL_CLOSE: {
          const chunk = p === 0 ? b : b.subarray(p);
          p = len;
          this.cb.onBody(chunk);
          break;
        }
        case S_UPGRADED:
          return this.keep(b, p);
      }
    }
    if (p < len) this.keep(b, p);
  }

  private keep(b: Buffer, p: number): void {
    this.pending = p === 0 ? b : b.subarray(p);
  }

  /** Returns the offset after the head, or -1 when more input is needed (the input is kept). */
  private parseHead(b: Buffer, p: number): number {
    const len = b.length;
    if (this.kind === 'request') {
      // RFC 9112 §2.2: empty lines before a request-line are ignored.
      while (p + 1 < len && b[p] === 0x0d && b[p + 1] === 0x0a) p += 2;
      if (p === len - 1 && b[p] === 0x0d) return this.keepHead(b, p, 0);
      if (b[p] === 0x0a) fail('INVALID_LINE_ENDING', 'bare LF before the request-line');
    }
    const from = this.scanned > 3 ? p + this.scanned - 3 : p;
    const end = b.indexOf(CRLFCRLF, from);
    const max = this.limits.maxHeaderBytes;
    if (end === -1 || end + 4 - p > max) {
      if (end !== -1 || len - p > max) fail('HEADERS_TOO_LARGE', `message head larger than ${max} bytes`);
      checkBareLf(b, from, len);
      return this.keepHead(b, p, len - p);
    }
    this.scanned = 0;
    this.onHeadBytes(b, p, end + 2);
    return end + 4;
  }

  private keepHead(b: Buffer, p: number, scanned: number): number {
    this.scanned = scanned;
    this.keep(b, p);
    return -1;
  }

  /** b[p, end): the head from its first byte through the CRLF ending the last header line. */
  private onHeadBytes(b: Buffer, p: number, end: number): void {
    const s = (b as Latin1Buffer).latin1Slice(p, end);
    const eol = s.indexOf('\r\n');
    const head: H1Head = {
      method: '',
      target: '',
      status: 0,
      reason: '',
      versionMinor: 1,
      rawHeaders: [],
      keepAlive: true,
      upgrade: false,
      bodyKind: 'none',
      contentLength: 0,
    };
    if (this.kind === 'request') this.parseRequestLine(b, p, s, eol, head);
    else this.parseStatusLine(b, p, s, eol, head);

    const raw = head.rawHeaders;
    const maxHeaders = this.limits.maxHeaders;
    let contentLength = -1;
    let chunked = false;
    let hasTe = false;
    let connClose = false;
    let connKeepAlive = false;
    let connUpgrade = false;
    let hasUpgrade = false;
    // Header lines are checked, and their ends found, on the bytes (h: an offset in b, h - p in s):
    // a string's charCodeAt in a loop costs ~3 times an indexed byte, and a string indexOf per
    // line ~200 instructions (callgrind). Lines end at the first CRLF, as the head at CRLFCRLF.
    for (let h = p + eol + 2; h < end; ) {
      const pos = h;
      if (isOws(b[h])) fail('INVALID_HEADER', 'obsolete line folding (a header line starting with whitespace)');
      for (; b[h] !== 0x3a; h++) {
        const c = b[h];
        if (TCHAR[c] !== 1) {
          if (c === 0x0d && b[h + 1] === 0x0a) fail('INVALID_HEADER', 'header line without a colon');
          badChar('INVALID_HEADER', c, 'a header name');
        }
      }
      if (h === pos) fail('INVALID_HEADER', 'empty header name');
      const colon = h;
      for (h++; VCHAR[b[h]] === 1; h++);
      if (b[h] !== 0x0d || b[h + 1] !== 0x0a) badChar('INVALID_HEADER', b[h], 'a header value');
      let vs = colon + 1;
      let ve = h;
      h += 2;
      while (vs < ve && isOws(b[vs])) vs++;
      while (ve > vs && isOws(b[ve - 1])) ve--;
      if (raw.length >= maxHeaders * 2) fail('TOO_MANY_HEADERS', `more than ${maxHeaders} headers`);
      const value = s.slice(vs - p, ve - p);
      // Stored by index: push() called its builtin here (~160 instructions a header, callgrind).
      raw[raw.length] = s.slice(pos - p, colon - p);
      raw[raw.length] = value;
      // Only names of the lengths of the framing headers are looked at more closely (compared in
      // place: a toLowerCase of a name cost ~300 instructions, callgrind).
      const nl = colon - pos;
      if (nl === 14 || nl === 17 || nl === 10 || nl === 7) {
        if (nl === 14 && isNameAt(b, pos, 'content-length')) contentLength = parseContentLength(value, contentLength);
        else if (nl === 17 && isNameAt(b, pos, 'transfer-encoding')) {
          if (chunked) fail('INVALID_TRANSFER_ENCODING', 'transfer coding after chunked');
          hasTe = true;
          chunked = lastCodingIsChunked(value);
        } else if (nl === 10 && isNameAt(b, pos, 'connection')) {
          const v = lowerAscii(value);
          if (v === 'close') connClose = true;
          else if (v === 'keep-alive') connKeepAlive = true;
          else if (v === 'upgrade') connUpgrade = true;
          else
            for (const t of v.split(',')) {
              const tok = t.trim();
              if (tok === 'close') connClose = true;
              else if (tok === 'keep-alive') connKeepAlive = true;
              else if (tok === 'upgrade') connUpgrade = true;
            }
        } else if (nl === 7 && isNameAt(b, pos, 'upgrade')) hasUpgrade = true;
      }
    }

    if (hasTe && contentLength >= 0) fail('CL_AND_TE', 'both Content-Length and Transfer-Encoding');
    head.keepAlive = head.versionMinor === 1 ? !connClose : connKeepAlive && !connClose;
    if (this.kind === 'request') {
      if (hasTe && !chunked) fail('INVALID_TRANSFER_ENCODING', 'request transfer coding not ending with chunked');
      head.upgrade = head.method === 'CONNECT' || (connUpgrade && hasUpgrade);
      if (chunked) head.bodyKind = 'chunked';
      else if (contentLength >= 0) {
        head.bodyKind = contentLength > 0 ? 'length' : 'none';
        head.contentLength = contentLength;
      }
      this.startBody(head);
      return;
    }
    const status = head.status;
    if (status < 200 && status !== 101) {
      // Interim response: the real one follows on the same message.
      this.cb.onInformational?.(head);
      return;
    }
    const connect = this.connectNext;
    const noBody = this.noBodyNext;
    this.connectNext = false;
    this.noBodyNext = false;
    head.upgrade = status === 101 || (connect && status >= 200 && status < 300);
    if (!head.upgrade && !noBody && status !== 204 && status !== 304) {
      if (chunked) head.bodyKind = 'chunked';
      else if (contentLength >= 0) {
        head.bodyKind = contentLength > 0 ? 'length' : 'none';
        head.contentLength = contentLength;
      } else {
        head.bodyKind = 'until-close';
        head.keepAlive = false;
      }
    } else if (contentLength >= 0) head.contentLength = contentLength;
    this.startBody(head);
  }

  private startBody(head: H1Head): void {
    if (head.upgrade) {
      this.state = S_UPGRADED;
      this.cb.onHead(head);
      return;
    }
    switch (head.bodyKind) {
      case 'none':
        this.cb.onHead(head);
        this.endMessage(undefined);
        return;
      case 'length':
        this.state = S_LENGTH;
        this.remaining = head.contentLength;
        break;
      case 'chunked':
        this.state = S_CHUNK_SIZE;
        break;
      case 'until-close':
        this.state = S_UNTIL_CLOSE;
        break;
    }
    this.cb.onHead(head);
  }

  private endMessage(trailers: string[] | undefined): void {
    this.state = S_HEAD;
    this.cb.onEnd(trailers);
  }

  /** The start line, b[p, p + eol) (s: the head as a string), checked on its bytes as the header lines. */
  private parseRequestLine(b: Buffer, p: number, s: string, eol: number, head: H1Head): void {
    const e = p + eol;
    let i = p;
    for (; i < e; i++) {
      const c = b[i];
      if (c === 0x20) break;
      if (TCHAR[c] !== 1) badChar('INVALID_METHOD', c, 'the method');
    }
    if (i === p || i === e) fail('INVALID_METHOD', 'missing method');
    head.method = s.slice(0, i - p);
    const ts = i + 1;
    for (i = ts; i < e; i++) {
      const c = b[i];
      if (c === 0x20) break;
      if (TARGET[c] !== 1) badChar('INVALID_TARGET', c, 'the request-target');
    }
    if (i === ts || i === e) fail('INVALID_TARGET', 'missing request-target');
    head.target = s.slice(ts - p, i - p);
    if (e - i !== 9 || !hasAt(b, i + 1, 'HTTP/1.')) {
      const sp = s.indexOf(' ', i - p + 1);
      badLine(s, eol, sp !== -1 && sp < eol ? 'INVALID_TARGET' : 'INVALID_VERSION', 'request-line must be "method SP request-target SP HTTP/1.x"');
    }
    head.versionMinor = versionMinor(b[i + 8]);
  }

  private parseStatusLine(b: Buffer, p: number, s: string, eol: number, head: H1Head): void {
    if (eol < 12 || !hasAt(b, p, 'HTTP/1.') || b[p + 8] !== 0x20) badLine(s, eol, 'INVALID_VERSION', 'status-line must start with "HTTP/1.x SP"');
    head.versionMinor = versionMinor(b[p + 7]);
    let status = 0;
    for (let i = p + 9; i < p + 12; i++) {
      const d = b[i] - 0x30;
      if (d < 0 || d > 9) badLine(s, eol, 'INVALID_STATUS', 'status code must be 3 digits');
      status = status * 10 + d;
    }
    if (status < 100) fail('INVALID_STATUS', `status code ${status} out of range`);
    head.status = status;
    if (eol > 12) {
      if (b[p + 12] !== 0x20) badLine(s, eol, 'INVALID_STATUS', 'status code must be 3 digits');
      for (let i = p + 13; i < p + eol; i++) if (VCHAR[b[i]] !== 1) badChar('INVALID_STATUS', b[i], 'the reason phrase');
      head.reason = s.slice(13, eol);
    }
  }

  /** Returns the offset after the chunk-size line, or -1 when more input is needed. */
  private parseChunkSize(b: Buffer, p: number): number {
    const len = b.length;
    const lf = b.indexOf(0x0a, p);
    if (lf === -1 || lf - p > MAX_CHUNK_LINE) {
      if (len - p > MAX_CHUNK_LINE || lf !== -1) fail('INVALID_CHUNK', 'chunk-size line too long');
      this.keep(b, p);
      return -1;
    }
    if (lf === p || b[lf - 1] !== 0x0d) fail('INVALID_CHUNK', 'chunk-size line must end with CRLF');
    const end = lf - 1;
    let size = 0;
    let i = p;
    for (; i < end; i++) {
      const d = HEX[b[i]];
      if (d < 0) break;
      if (i - p >= 13) fail('INVALID_CHUNK', 'chunk size too large');
      size = size * 16 + d;
    }
    if (i === p) fail('INVALID_CHUNK', 'chunk size is not a hexadecimal number');
    if (i < end) {
      // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ): only checked for stray characters.
      while (i < end && isOws(b[i])) i++;
      if (b[i] !== 0x3b) fail('INVALID_CHUNK', 'invalid characters after the chunk size');
      for (; i < end; i++) if (VCHAR[b[i]] !== 1) fail('INVALID_CHUNK', 'invalid character in a chunk extension');
    }
    if (size === 0) {
      this.state = S_TRAILERS;
      this.trailers = undefined;
      this.trailerBytes = 0;
    } else {
      this.state = S_CHUNK_DATA;
      this.remaining = size;
    }
    return lf + 1;
  }

  /** One trailer field line (or the empty line ending the message); -1 when more input is needed. */
  private parseTrailerLine(b: Buffer, p: number): number {
    const lf = b.indexOf(0x0a, p);
    const max = this.limits.maxHeaderBytes;
    if (lf === -1) {
      if (this.trailerBytes + b.length - p > max) fail('HEADERS_TOO_LARGE', `trailers larger than ${max} bytes`);
      this.keep(b, p);
      return -1;
    }
    if (lf === p || b[lf - 1] !== 0x0d) fail('INVALID_LINE_ENDING', 'trailer line must end with CRLF');
    this.trailerBytes += lf + 1 - p;
    if (this.trailerBytes > max) fail('HEADERS_TOO_LARGE', `trailers larger than ${max} bytes`);
    if (lf === p + 1) {
      const t = this.trailers;
      this.trailers = undefined;
      this.endMessage(t);
      return lf + 1;
    }
    const line = (b as Latin1Buffer).latin1Slice(p, lf - 1);
    if (isOws(line.charCodeAt(0))) fail('INVALID_HEADER', 'obsolete line folding in trailers');
    const colon = line.indexOf(':');
    if (colon <= 0) fail('INVALID_HEADER', 'trailer line without a name and colon');
    for (let i = 0; i < colon; i++) if (TCHAR[line.charCodeAt(i)] !== 1) fail('INVALID_HEADER', 'invalid character in a trailer name');
    for (let i = colon + 1; i < line.length; i++) if (VCHAR[line.charCodeAt(i)] !== 1) fail('INVALID_HEADER', 'invalid character in a trailer value');
    const t = (this.trailers ??= []);
    if (t.length >= this.limits.maxHeaders * 2) fail('TOO_MANY_HEADERS', `more than ${this.limits.maxHeaders} trailers`);
    t.push(line.slice(0, colon), line.slice(colon + 1).trim());
    return lf + 1;
  }
}

/** c: the character after "HTTP/1.". */
function versionMinor(c: number): 0 | 1 {
  if (c === 0x31) return 1;
  if (c === 0x30) return 0;
  return fail('INVALID_VERSION', 'only HTTP/1.0 and HTTP/1.1 are supported');
}

/** Content-Length: 1*DIGIT, or a list of identical values; a different repeat is an error. */
function parseContentLength(value: string, previous: number): number {
  let n = -1;
  for (const part of value.includes(',') ? value.split(',') : [value]) {
    const v = part.trim();
    if (v.length === 0 || v.length > 15) fail('INVALID_CONTENT_LENGTH', `invalid Content-Length "${value}"`);
    let x = 0;
    for (let i = 0; i < v.length; i++) {
      const d = v.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) fail('INVALID_CONTENT_LENGTH', `invalid Content-Length "${value}"`);
      x = x * 10 + d;
    }
    if (n !== -1 && x !== n) fail('INVALID_CONTENT_LENGTH', `differing Content-Length values "${value}"`);
    n = x;
  }
  if (previous !== -1 && previous !== n) fail('INVALID_CONTENT_LENGTH', 'differing Content-Length headers');
  return n;
}

/** Whether the last transfer coding is chunked; chunked anywhere else is an error. */
function lastCodingIsChunked(value: string): boolean {
  const codings = value.split(',');
  let last = false;
  for (let i = 0; i < codings.length; i++) {
    const c = codings[i].trim().toLowerCase();
    if (c.length === 0) fail('INVALID_TRANSFER_ENCODING', `invalid Transfer-Encoding "${value}"`);
    last = c === 'chunked';
    if (last && i !== codings.length - 1) fail('INVALID_TRANSFER_ENCODING', 'transfer coding after chunked');
  }
  return last;
}
