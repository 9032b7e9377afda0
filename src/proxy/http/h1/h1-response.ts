// A downstream HTTP/1 response: the members of node's ServerResponse that HttpStream and the
// connection limits use. The head is held until the first body bytes or end of the same turn so
// that head and body leave in one write; a response ended without body writes gets Content-Length
// instead of chunked framing. Header names and values are checked as node checks them (a bad one
// throws, and HttpStream answers 502).
import type net from 'node:net';
import { http } from '../../node-http.ts';
import { badFieldValue, isToken, lowerAscii } from './h1-syntax.ts';
import { RecordedCase, formatterFor, respellHead, type HeaderKeyFormat, type NameFormatter } from './header-case.ts';

export interface H1ResponseOwner {
  readonly socket: net.Socket;
  /** The connection's header_key_format (undefined: names as given). */
  readonly headerKeyFormat: HeaderKeyFormat | undefined;
  /** The response's last bytes were handed to the socket. */
  responseDone(res: H1Response): void;
}

type HeaderValue = string | number | readonly string[] | undefined;

/** Bodies up to this size are copied next to the head / chunk framing (one write); larger ones are written apart, corked. */
const COPY_LIMIT = 16384;
const FRAMING_DEFAULT = 0;
const FRAMING_LENGTH = 1;
const FRAMING_CHUNKED = 2;
const FRAMING_NONE = 3;
const FRAMING_CLOSE = 4;

let dateSecond = 0;
let dateText = '';
function httpDate(): string {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/** "HTTP/1.1 200 OK\r\n" by status (100-999), each built once. */
const statusLines: (string | undefined)[] = new Array<string | undefined>(1000).fill(undefined);
function statusLine(status: number): string {
  return (statusLines[status] ??= `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'unknown'}\r\n`);
}

function invalid(code: string, message: string): Error {
  const e = new TypeError(message) as TypeError & { code: string };
  e.code = code;
  return e;
}

export class H1Response {
  private readonly owner: H1ResponseOwner;
  private readonly noBody: boolean;
  private readonly http10: boolean;
  /** Cleared by drain or max_requests_per_connection: the response carries Connection: close. */
  shouldKeepAlive: boolean;
  private head: string | undefined;
  private headSent = false;
  private framing = FRAMING_DEFAULT;
  private explicitClose = false;
  private hasConnection = false;
  private trailers: Record<string, string> | undefined;
  private ended = false;
  private closeListeners: (() => void)[] | undefined;
  private drainListeners: (() => void)[] | undefined;
  private finishListeners: (() => void)[] | undefined;
  private statusCode = 0;
  private waitingDrain = false;
  /** How this response's names are spelled (header_key_format); undefined: as given. */
  private names: NameFormatter = undefined;

  constructor(owner: H1ResponseOwner, isHead: boolean, http10: boolean, keepAlive: boolean) {
    this.owner = owner;
    this.noBody = isHead;
    this.http10 = http10;
    this.shouldKeepAlive = keepAlive;
  }

  get headersSent(): boolean {
    return this.head !== undefined;
  }

  get writableEnded(): boolean {
    return this.ended;
  }

  /** Whether the connection stays open after this response (decided when the head is sent). */
  get keepsAlive(): boolean {
    return this.shouldKeepAlive && !this.explicitClose && this.framing !== FRAMING_CLOSE;
  }

  get status(): number {
    return this.statusCode;
  }

  writeHead(status: number, headers?: Record<string, HeaderValue>): this {
    if (this.head !== undefined) throw invalid('ERR_HTTP_HEADERS_SENT', 'Cannot write headers after they are sent to the client');
    if (!Number.isInteger(status) || status < 100 || status > 999) throw invalid('ERR_HTTP_INVALID_STATUS_CODE', `Invalid status code: ${status}`);
    const names = formatterFor(headers, this.owner.headerKeyFormat);
    this.names = names;
    // preserve_case's forward_reason_phrase: the upstream's own reason phrase.
    const forwarded = names !== undefined && names instanceof RecordedCase ? names.reason : undefined;
    let out = forwarded === undefined ? statusLine(status) : `HTTP/1.1 ${status} ${forwarded}\r\n`;
    let framing = FRAMING_DEFAULT;
    let hasDate = false;
    for (const k in headers) {
      const v = headers[k];
      if (v === undefined) continue;
      const { role, prefix } = nameInfo(k);
      if (typeof v === 'object') {
        for (let i = 0; i < v.length; i++) out += headerLine(prefix, k, v[i]);
      } else out += headerLine(prefix, k, typeof v === 'string' ? v : String(v));
      if (role === ROLE_CONTENT_LENGTH) framing = FRAMING_LENGTH;
      else if (role === ROLE_TRANSFER_ENCODING) {
        if (/(?:^|,)\s*chunked\s*$/i.test(String(v))) framing = FRAMING_CHUNKED;
      } else if (role === ROLE_CONNECTION) {
        this.hasConnection = true;
        if (/(?:^|,)\s*close\s*(?:,|$)/i.test(String(v))) this.explicitClose = true;
      } else if (role === ROLE_DATE) hasDate = true;
    }
    if (!hasDate) out += `date: ${httpDate()}\r\n`;
    // header_key_format: names re-spelled apart from the common path, which writes them as given.
    if (names !== undefined) out = respellHead(out, names);
    this.statusCode = status;
    if (this.noBody || status === 204 || status === 304 || status < 200) framing = FRAMING_NONE;
    this.framing = framing;
    this.head = out;
    // Sent with the first body bytes or end() of this turn (the whole body known: Content-Length).
    flushAtTurnEnd(this);
    return this;
  }

  /** Decides the framing left open and adds the closing headers; bodyLength ≥ 0: the whole body is known. */
  private finalHead(bodyLength: number): string {
    let out = this.head!;
    const names = this.names;
    if (this.framing === FRAMING_DEFAULT) {
      if (bodyLength >= 0) {
        this.framing = FRAMING_LENGTH;
        out += names === undefined ? `content-length: ${bodyLength}\r\n` : `${names.format('content-length')}: ${bodyLength}\r\n`;
      } else if (this.http10) this.framing = FRAMING_CLOSE;
      else {
        this.framing = FRAMING_CHUNKED;
        out += names === undefined ? 'transfer-encoding: chunked\r\n' : `${names.format('transfer-encoding')}: chunked\r\n`;
      }
    }
    // As node's server did before this codec: the connection's fate is always said.
    if (!this.hasConnection) {
      if (names === undefined) out += this.keepsAlive ? 'connection: keep-alive\r\n' : 'connection: close\r\n';
      else out += `${names.format('connection')}: ${this.keepsAlive ? 'keep-alive' : 'close'}\r\n`;
    }
    this.headSent = true;
    return out + '\r\n';
  }

  flushHead(bodyLength: number): void {
    if (this.headSent || this.ended) return;
    this.owner.socket.write(this.finalHead(bodyLength), 'latin1');
  }

  addTrailers(t: Record<string, string>): void {
    this.trailers = t;
  }

  write(chunk: Buffer): boolean {
    if (this.ended) return true;
    if (this.head === undefined) this.writeHead(200);
    const prefix = this.headSent ? '' : this.finalHead(-1);
    if (this.framing === FRAMING_NONE || chunk.length === 0) return prefix ? this.send(prefix, undefined, '') : true;
    if (this.framing === FRAMING_CHUNKED) return this.send(`${prefix}${chunk.length.toString(16)}\r\n`, chunk, '\r\n');
    return this.send(prefix, chunk, '');
  }

  end(chunk?: Buffer): void {
    if (this.ended) return;
    if (this.head === undefined) this.writeHead(200);
    const body = chunk && chunk.length > 0 && this.framing !== FRAMING_NONE ? chunk : undefined;
    let prefix = this.headSent ? '' : this.finalHead(body ? body.length : 0);
    let suffix = '';
    if (this.framing === FRAMING_CHUNKED) {
      if (body) prefix += `${body.length.toString(16)}\r\n`;
      suffix = body ? '\r\n0\r\n' : '0\r\n';
      const t = this.trailers;
      if (t) for (const k in t) if (isToken(k) && !badFieldValue(t[k])) suffix += `${k}: ${t[k]}\r\n`;
      suffix += '\r\n';
    }
    this.ended = true;
    if (prefix || body || suffix) this.send(prefix, body, suffix);
    this.owner.responseDone(this);
    const fl = this.finishListeners;
    if (fl) {
      this.finishListeners = undefined;
      for (const f of fl) f();
    }
  }

  private send(prefix: string, body: Buffer | undefined, suffix: string): boolean {
    const socket = this.owner.socket;
    if (socket.destroyed) return true;
    let ok: boolean;
    if (!body) ok = socket.write(prefix + suffix, 'latin1');
    else if (body.length <= COPY_LIMIT) {
      const pl = prefix.length;
      const buf = Buffer.allocUnsafe(pl + body.length + suffix.length);
      if (pl) buf.write(prefix, 0, 'latin1');
      body.copy(buf, pl);
      if (suffix) buf.write(suffix, pl + body.length, 'latin1');
      ok = socket.write(buf);
    } else {
      socket.cork();
      if (prefix) socket.write(prefix, 'latin1');
      socket.write(body);
      ok = suffix ? socket.write(suffix, 'latin1') : socket.writableLength < socket.writableHighWaterMark;
      socket.uncork();
    }
    if (!ok && !this.ended && !this.waitingDrain) {
      this.waitingDrain = true;
      socket.once('drain', () => this.emitDrain());
    }
    return ok;
  }

  private emitDrain(): void {
    this.waitingDrain = false;
    const l = this.drainListeners;
    this.drainListeners = undefined;
    if (l) for (const f of l) f();
  }

  once(event: 'close' | 'drain' | 'finish', f: () => void): this {
    if (event === 'close') (this.closeListeners ??= []).push(f);
    else if (event === 'drain') (this.drainListeners ??= []).push(f);
    else (this.finishListeners ??= []).push(f);
    return this;
  }

  /** The connection closed before this response ended. */
  connectionClosed(): void {
    const l = this.closeListeners;
    this.closeListeners = undefined;
    if (l) for (const f of l) f();
  }

  /** Resets the connection (the response cannot be completed). */
  destroy(): void {
    this.owner.socket.destroy();
  }
}

/**
 * Heads written this turn, flushed together by one microtask once the current callback returns:
 * an upstream response's head, body and end usually arrive in one read. A process.nextTick per
 * response cost ~5,000 instructions (callgrind): node 24 builds each tick object with computed
 * symbol keys, which V8 does in its runtime.
 */
let heldHeads: H1Response[] = [];
const settled = Promise.resolve();

function flushAtTurnEnd(res: H1Response): void {
  if (heldHeads.push(res) === 1) void settled.then(flushHeldHeads);
}

function flushHeldHeads(): void {
  const held = heldHeads;
  heldHeads = [];
  for (const res of held) res.flushHead(-1);
}

const ROLE_OTHER = 0;
const ROLE_CONTENT_LENGTH = 1;
const ROLE_TRANSFER_ENCODING = 2;
const ROLE_CONNECTION = 3;
const ROLE_DATE = 4;

interface NameInfo {
  readonly role: number;
  /** "name: ", the start of the name's lines (one string concatenation less a header, ~60 instructions). */
  readonly prefix: string;
}

/**
 * Names written before and what they mean to the writer: the token check and the lower-casing are
 * done once a name, not once a response (~1,000 instructions a response, callgrind). Bounded, as
 * the names are the upstream's and the filters'.
 */
const nameInfos = new Map<string, NameInfo>();

function nameInfo(k: string): NameInfo {
  const known = nameInfos.get(k);
  if (known !== undefined) return known;
  if (!isToken(k)) throw invalid('ERR_INVALID_HTTP_TOKEN', `Header name must be a valid HTTP token ["${k}"]`);
  const lk = lowerAscii(k);
  const role = lk === 'content-length' ? ROLE_CONTENT_LENGTH : lk === 'transfer-encoding' ? ROLE_TRANSFER_ENCODING : lk === 'connection' ? ROLE_CONNECTION : lk === 'date' ? ROLE_DATE : ROLE_OTHER;
  const info = { role, prefix: `${k}: ` };
  if (nameInfos.size < 1024) nameInfos.set(k, info);
  return info;
}

function headerLine(prefix: string, k: string, v: string): string {
  if (badFieldValue(v)) throw invalid('ERR_INVALID_CHAR', `Invalid character in header content ["${k}"]`);
  return prefix + v + '\r\n';
}
