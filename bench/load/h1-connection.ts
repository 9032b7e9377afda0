// One keep-alive HTTP/1.1 connection for the open-loop generator. It writes a pre-encoded GET,
// never pipelines (a request due while one is in flight waits in a queue, charged from its due
// time), and parses only what it needs to find the end of each response: status line,
// Content-Length or chunked framing. Written on a raw socket so the client's own cost stays a
// few microseconds per request (node:http's client costs tens).
import net from 'node:net';
import type { LoadConnection, Recorder } from './recorder.ts';

const HEAD = 0;
const BODY = 1;
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_CRLF = 4;
const TRAILERS = 5;

const HEADER_END = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');

export class H1Connection implements LoadConnection {
  readonly #port: number;
  readonly #host: string;
  readonly #request: Buffer;
  readonly #rec: Recorder;
  #socket: net.Socket | null = null;
  #queue: number[] = [];
  #inflightDue = -1;
  #inflightSent = 0;
  #state = HEAD;
  #remaining = 0;
  #status = 0;
  #closeAfter = false;
  #rest: Buffer | null = null;
  #closed = false;

  constructor(host: string, port: number, path: string, authority: string, rec: Recorder) {
    this.#host = host;
    this.#port = port;
    this.#request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${authority}\r\nUser-Agent: rig-bench\r\nAccept: */*\r\n\r\n`, 'latin1');
    this.#rec = rec;
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: this.#host, port: this.#port, noDelay: true });
      s.once('connect', () => {
        s.off('error', reject);
        this.#attach(s);
        resolve();
      });
      s.once('error', reject);
    });
  }

  #attach(s: net.Socket): void {
    this.#socket = s;
    this.#state = HEAD;
    this.#rest = null;
    s.on('data', (d: Buffer) => this.#onData(d));
    s.on('error', () => {});
    s.on('close', () => this.#onClose(s));
    this.#next();
  }

  send(dueMs: number): void {
    this.#rec.outstanding++;
    if (this.#inflightDue < 0 && this.#socket && this.#queue.length === 0) this.#write(dueMs, true);
    else this.#queue.push(dueMs);
  }

  close(): void {
    this.#closed = true;
    this.#socket?.destroy();
  }

  #write(dueMs: number, idle: boolean): void {
    this.#inflightDue = dueMs;
    this.#inflightSent = performance.now();
    this.#rec.sent(dueMs, this.#inflightSent, idle);
    this.#socket!.write(this.#request);
  }

  #next(): void {
    const due = this.#queue.shift();
    if (due !== undefined) this.#write(due, false);
  }

  #complete(): void {
    const end = performance.now();
    const due = this.#inflightDue;
    this.#inflightDue = -1;
    if (this.#status >= 200 && this.#status < 300) this.#rec.done(due, this.#inflightSent, end);
    else this.#rec.failed(due, `status ${this.#status}`);
    this.#state = HEAD;
    if (this.#closeAfter) {
      // Forget the socket now: a request due before its 'close' event must wait for the new one.
      this.#socket!.destroy();
      this.#socket = null;
      this.#reconnect();
    } else this.#next();
  }

  #onClose(s: net.Socket): void {
    if (s !== this.#socket) return;
    this.#socket = null;
    if (this.#inflightDue >= 0) {
      this.#rec.failed(this.#inflightDue, 'connection closed mid-response');
      this.#inflightDue = -1;
    }
    this.#reconnect();
  }

  #reconnect(): void {
    if (this.#closed) {
      for (const due of this.#queue) this.#rec.failed(due, 'not sent');
      this.#queue = [];
      return;
    }
    const n = net.connect({ host: this.#host, port: this.#port, noDelay: true });
    n.once('connect', () => this.#attach(n));
    n.once('error', () => setTimeout(() => this.#reconnect(), 10));
  }

  #head(text: string): void {
    this.#status = Number(text.slice(9, 12));
    const lower = text.toLowerCase();
    this.#closeAfter = lower.includes('\r\nconnection: close');
    if (lower.includes('\r\ntransfer-encoding: chunked')) {
      this.#state = CHUNK_SIZE;
      return;
    }
    const m = /\r\ncontent-length:\s*(\d+)/.exec(lower);
    this.#remaining = m ? Number(m[1]) : 0;
    if (!m && this.#status !== 204 && this.#status !== 304) {
      this.#socket!.destroy(); // body delimited by close: not what a keep-alive benchmark expects
      return;
    }
    this.#state = BODY;
    if (this.#remaining === 0) this.#complete();
  }

  #onData(chunk: Buffer): void {
    const buf = this.#rest ? Buffer.concat([this.#rest, chunk]) : chunk;
    this.#rest = null;
    let i = 0;
    while (i < buf.length && this.#inflightDue >= 0) {
      switch (this.#state) {
        case HEAD: {
          const end = buf.indexOf(HEADER_END, i);
          if (end < 0) {
            this.#rest = buf.subarray(i);
            return;
          }
          const text = buf.toString('latin1', i, end + 2);
          i = end + 4;
          if (text.startsWith('HTTP/1.1 1')) break; // 100 Continue and friends: the real head follows
          this.#head(text);
          break;
        }
        case BODY:
        case CHUNK_DATA:
        case CHUNK_CRLF: {
          const take = Math.min(this.#remaining, buf.length - i);
          this.#remaining -= take;
          i += take;
          if (this.#remaining > 0) break;
          if (this.#state === BODY) this.#complete();
          else if (this.#state === CHUNK_DATA) {
            this.#state = CHUNK_CRLF;
            this.#remaining = 2;
          } else this.#state = CHUNK_SIZE;
          break;
        }
        case CHUNK_SIZE:
        case TRAILERS: {
          const nl = buf.indexOf(CRLF, i);
          if (nl < 0) {
            this.#rest = buf.subarray(i);
            return;
          }
          if (this.#state === TRAILERS) {
            const empty = nl === i;
            i = nl + 2;
            if (empty) this.#complete();
            break;
          }
          const size = parseInt(buf.toString('latin1', i, nl), 16);
          i = nl + 2;
          if (size === 0) this.#state = TRAILERS;
          else {
            this.#state = CHUNK_DATA;
            this.#remaining = size;
          }
          break;
        }
      }
    }
  }
}
