// One HTTP/2 (h2c, prior knowledge) session for the open-loop generator: every due request is a
// new stream sent at once (HTTP/2 multiplexes, so nothing waits behind a slow response).
import http2 from 'node:http2';
import type { LoadConnection, Recorder } from './recorder.ts';

export class H2Connection implements LoadConnection {
  readonly #url: string;
  readonly #path: string;
  readonly #rec: Recorder;
  #session: http2.ClientHttp2Session | null = null;

  constructor(host: string, port: number, path: string, rec: Recorder) {
    this.#url = `http://${host}:${port}`;
    this.#path = path;
    this.#rec = rec;
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = http2.connect(this.#url, { peerMaxConcurrentStreams: 1000 });
      s.once('connect', () => {
        s.off('error', reject);
        s.on('error', () => {});
        this.#session = s;
        resolve();
      });
      s.once('error', reject);
    });
  }

  send(dueMs: number): void {
    const rec = this.#rec;
    rec.outstanding++;
    const s = this.#session;
    if (!s || s.closed || s.destroyed) {
      rec.failed(dueMs, 'session closed');
      return;
    }
    const sent = performance.now();
    rec.sent(dueMs, sent, true);
    const req = s.request({ ':method': 'GET', ':path': this.#path }, { endStream: true });
    let status = 0;
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('data', () => {});
    req.on('end', () => {
      if (status >= 200 && status < 300) rec.done(dueMs, sent, performance.now());
      else rec.failed(dueMs, `status ${status}`);
    });
    req.on('error', (err: Error) => rec.failed(dueMs, err.message));
  }

  close(): void {
    this.#session?.destroy();
  }
}
