// The demo's traffic: GET requests at a steady rate (like a load generator of Istio's tasks),
// with a periodic one-line summary of response codes.
import http from 'node:http';

export interface TrafficOptions {
  url: string;
  /** Requests per second. */
  rate: number;
  /** Called every `reportEveryMs` with a summary line (when requests were sent). */
  report?: (line: string) => void;
  reportEveryMs?: number;
}

export class TrafficGenerator {
  readonly #opts: TrafficOptions;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  #timer: NodeJS.Timeout | undefined;
  #reportTimer: NodeJS.Timeout | undefined;
  #codes = new Map<string, number>();
  #sent = 0;
  total = 0;

  constructor(opts: TrafficOptions) {
    if (!(opts.rate > 0)) throw new Error(`traffic rate must be > 0 requests per second (got ${opts.rate})`);
    this.#opts = opts;
  }

  start(): void {
    this.#timer = setInterval(() => this.#fire(), 1000 / this.#opts.rate);
    this.#reportTimer = setInterval(() => this.#report(), this.#opts.reportEveryMs ?? 10_000);
    this.#reportTimer.unref();
  }

  #fire(): void {
    this.#sent++;
    this.total++;
    const req = http.get(this.#opts.url, { agent: this.#agent, timeout: 15_000 }, (res) => {
      res.resume();
      res.on('end', () => this.#count(String(res.statusCode)));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => this.#count(err.code ?? err.message));
  }

  #count(code: string): void {
    this.#codes.set(code, (this.#codes.get(code) ?? 0) + 1);
  }

  #report(): void {
    if (this.#sent === 0) return;
    const codes = [...this.#codes.entries()].map(([c, n]) => `${c}×${n}`).join(' ');
    this.#opts.report?.(`traffic: ${this.#sent} requests to ${this.#opts.url} in the last ${(this.#opts.reportEveryMs ?? 10_000) / 1000}s: ${codes || 'no answers yet'}`);
    this.#sent = 0;
    this.#codes = new Map();
  }

  stop(): void {
    clearInterval(this.#timer);
    clearInterval(this.#reportTimer);
    this.#agent.destroy();
  }
}
