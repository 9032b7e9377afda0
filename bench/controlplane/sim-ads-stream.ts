// One simulated sidecar's ADS stream for the scale benchmark, on node:http2 without grpc-js.
// grpc-js assembles each received message into one buffer (a copy of every byte: a 426 KB route
// table to 1000 proxies per load generator) before the deserializer sees it, and runs each message
// through its call layers; with 2000 simulated proxies on the control plane's 2 cores, the load
// generators spent ~4 CPU s per route push (4× the control plane) and the control plane waited for
// the CPU. Here the response bytes are read as they arrive: every byte still crosses the proxy's own
// HTTP/2 connection under its flow control, and the response is answered once its last byte is in,
// but only version_info, type_url and nonce are kept (the resources are counted, as before: the
// simulated proxies never decoded them).
import http2 from 'node:http2';
import { encodeMessage } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';

const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';

/** What the simulated proxy keeps of a DiscoveryResponse. */
export interface Envelope {
  version_info: string;
  type_url: string;
  nonce: string;
  resourceCount: number;
}

/** How a stream ended: the gRPC status, or 14 (UNAVAILABLE) and the transport's error, as grpc-js reports it. */
export interface StreamEnd {
  code: number;
  details: string;
}

/** What the reader expects next: the 5-byte gRPC prefix, a field's tag, its length, a varint value, bytes to skip or keep. */
const State = { Prefix: 0, Tag: 1, Length: 2, Varint: 3, Skip: 4, Text: 5 } as const;
type State = (typeof State)[keyof typeof State];

const VERSION_INFO = 1;
const RESOURCES = 2;
const TYPE_URL = 4;
const NONCE = 5;

/**
 * Reads gRPC-framed DiscoveryResponses from HTTP/2 DATA chunks as they come: the top-level fields'
 * tags and lengths are parsed across chunk boundaries, version_info/type_url/nonce are kept and
 * every other field (the resources) is skipped in place.
 */
export class EnvelopeReader {
  #state: State = State.Prefix;
  readonly #prefix = Buffer.alloc(5);
  #prefixHave = 0;
  /** Bytes of the current message not yet read. */
  #left = 0;
  #varint = 0;
  #scale = 1;
  #field = 0;
  /** Bytes of the current field not yet read (Skip, Text). */
  #fieldLeft = 0;
  #text: Buffer[] = [];
  #msg: Envelope = { version_info: '', type_url: '', nonce: '', resourceCount: 0 };
  readonly #onMessage: (e: Envelope) => void;

  constructor(onMessage: (e: Envelope) => void) {
    this.#onMessage = onMessage;
  }

  /** Throws on a compressed or malformed message (the stream is then broken). */
  push(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      switch (this.#state) {
        case State.Prefix: {
          const k = Math.min(5 - this.#prefixHave, n - i);
          chunk.copy(this.#prefix, this.#prefixHave, i, i + k);
          this.#prefixHave += k;
          i += k;
          if (this.#prefixHave < 5) break;
          if (this.#prefix[0] !== 0) throw new Error('compressed gRPC message (not requested)');
          this.#prefixHave = 0;
          this.#left = this.#prefix.readUInt32BE(1);
          this.#msg = { version_info: '', type_url: '', nonce: '', resourceCount: 0 };
          this.#nextField();
          break;
        }
        case State.Tag:
        case State.Length:
        case State.Varint: {
          const b = chunk[i++];
          this.#left--;
          this.#varint += (b & 0x7f) * this.#scale;
          this.#scale *= 0x80;
          if (b & 0x80) {
            if (this.#scale > 2 ** 56 || this.#left <= 0) throw new Error('malformed DiscoveryResponse (varint)');
            break;
          }
          const v = this.#varint;
          this.#varint = 0;
          this.#scale = 1;
          if (this.#state === State.Tag) this.#onTag(v);
          else if (this.#state === State.Length) this.#onLength(v);
          else this.#nextField();
          break;
        }
        case State.Skip:
        case State.Text: {
          const k = Math.min(this.#fieldLeft, n - i);
          if (this.#state === State.Text) this.#text.push(chunk.subarray(i, i + k));
          i += k;
          this.#fieldLeft -= k;
          this.#left -= k;
          if (this.#fieldLeft === 0) this.#endField();
          break;
        }
      }
    }
  }

  #onTag(key: number): void {
    this.#field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) this.#state = State.Varint;
    else if (wire === 2) this.#state = State.Length;
    else if (wire === 1 || wire === 5) this.#startField(wire === 1 ? 8 : 4, State.Skip);
    else throw new Error(`malformed DiscoveryResponse (wire type ${wire})`);
  }

  #onLength(len: number): void {
    const f = this.#field;
    if (f === RESOURCES) this.#msg.resourceCount++;
    this.#startField(len, f === VERSION_INFO || f === TYPE_URL || f === NONCE ? State.Text : State.Skip);
  }

  #startField(len: number, state: typeof State.Skip | typeof State.Text): void {
    if (len > this.#left) throw new Error('malformed DiscoveryResponse (field past the message)');
    this.#fieldLeft = len;
    this.#state = state;
    if (len === 0) this.#endField();
  }

  #endField(): void {
    if (this.#state === State.Text) {
      const text = (this.#text.length === 1 ? this.#text[0] : Buffer.concat(this.#text)).toString('utf8');
      this.#text = [];
      if (this.#field === VERSION_INFO) this.#msg.version_info = text;
      else if (this.#field === TYPE_URL) this.#msg.type_url = text;
      else this.#msg.nonce = text;
    }
    this.#nextField();
  }

  #nextField(): void {
    if (this.#left > 0) {
      this.#state = State.Tag;
      return;
    }
    this.#state = State.Prefix;
    this.#onMessage(this.#msg);
  }
}

function writeVarint(out: number[], v: number): void {
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
}

function textField(tag: number, text: string): Buffer {
  if (!text) return Buffer.alloc(0);
  const bytes = Buffer.from(text);
  const head: number[] = [tag];
  writeVarint(head, bytes.length);
  return Buffer.concat([Buffer.from(head), bytes]);
}

/** A DiscoveryRequest's resource_names, encoded once (a sidecar's EDS names are ~60 KB, sent with every EDS ACK). */
export function encodeNames(names: readonly string[]): Buffer {
  return Buffer.from(encodeMessage(REQUEST, { resource_names: [...names] }));
}

function describe(err: NodeJS.ErrnoException): string {
  return `${err.code ?? ''} ${err.message}`.trim();
}

function frame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = 0;
  out.writeUInt32BE(body.length, 1);
  out.set(body, 5);
  return out;
}

export interface SimAdsOptions {
  /** HTTP/2 stream and connection receive window (Envoy's default: 256 MiB). */
  window: number;
  /** Longest wait for the TCP connection and the server's SETTINGS (grpc-js: 20 s). */
  connectTimeoutMs: number;
}

/** One ADS stream on its own HTTP/2 connection; requests are written in order, responses handed to onResponse. */
export class SimAdsStream {
  readonly #session: http2.ClientHttp2Session;
  readonly #stream: http2.ClientHttp2Stream;
  readonly #node: EnvoyJson;
  #sentNode = false;
  #status: StreamEnd | undefined;
  #error: string | undefined;
  #connectTimer: NodeJS.Timeout | undefined;
  onResponse: ((e: Envelope) => void) | undefined;
  /** Resolves once when the stream ends, however it ends. */
  readonly ended: Promise<StreamEnd>;

  constructor(address: string, node: EnvoyJson, opts: SimAdsOptions) {
    this.#node = node;
    const session = http2.connect(`http://${address}`, { settings: { initialWindowSize: opts.window, enablePush: false }, maxSessionMemory: Math.ceil((2 * opts.window) / 2 ** 20) });
    this.#session = session;
    this.#connectTimer = setTimeout(() => session.destroy(Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' })), opts.connectTimeoutMs);
    session.once('connect', () => {
      clearTimeout(this.#connectTimer);
      if (!session.destroyed) session.setLocalWindowSize(opts.window);
    });
    session.on('error', (err: NodeJS.ErrnoException) => (this.#error ??= describe(err)));
    session.on('goaway', (code: number) => (this.#error ??= `GOAWAY ${code}`));
    const stream = session.request({ ':method': 'POST', ':path': ADS_PATH, 'content-type': 'application/grpc', te: 'trailers' });
    this.#stream = stream;
    const reader = new EnvelopeReader((e) => this.onResponse?.(e));
    stream.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        this.#error ??= (err as Error).message;
        stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
      }
    });
    const onStatus = (headers: http2.IncomingHttpHeaders) => {
      const code = headers['grpc-status'];
      if (code !== undefined) this.#status ??= { code: Number(code), details: decodeURIComponent(String(headers['grpc-message'] ?? '')) };
    };
    stream.on('response', onStatus); // a trailers-only response (e.g. a refused stream)
    stream.on('trailers', onStatus);
    // A stream canceled before it started (the connection failed or closed first) names the connection's error.
    stream.on('error', (err: NodeJS.ErrnoException) => (this.#error ??= describe((err.cause as NodeJS.ErrnoException | undefined) ?? err)));
    this.ended = new Promise((resolve) => {
      stream.once('close', () => {
        clearTimeout(this.#connectTimer);
        resolve(this.#status ?? { code: 14, details: `No connection established. Last error: ${this.#error ?? `stream closed (${stream.rstCode})`}` });
        session.close();
      });
    });
  }

  /** Sends a DiscoveryRequest given as JSON (the first one carries the node). */
  subscribe(typeUrl: string, names?: readonly string[]): void {
    const msg: EnvoyJson = { type_url: typeUrl, resource_names: names ? [...names] : [] };
    if (!this.#sentNode) {
      msg.node = this.#node;
      this.#sentNode = true;
    }
    this.#write(frame(encodeMessage(REQUEST, msg)));
  }

  /** ACKs a response; `names`: the request's resource_names as encodeNames gave them. */
  ack(e: Envelope, names?: Buffer): void {
    const parts = [textField(0x0a, e.version_info), ...(names ? [names] : []), textField(0x22, e.type_url), textField(0x2a, e.nonce)];
    this.#write(frame(Buffer.concat(parts)));
  }

  #write(buf: Buffer): void {
    if (!this.#stream.closed && !this.#stream.destroyed) this.#stream.write(buf);
  }

  close(): void {
    clearTimeout(this.#connectTimer);
    this.#stream.close(http2.constants.NGHTTP2_CANCEL);
    this.#session.destroy();
  }
}
