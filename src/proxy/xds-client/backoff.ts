// Exponential backoff with jitter (gRPC's connection-backoff shape): each delay is the previous
// one times `multiplier`, capped at `maxMs`, randomized by ±`jitter`; `reset()` after a success.

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  multiplier?: number;
  /** Fraction of randomization either side of the nominal delay (0.2 → ±20%). */
  jitter?: number;
}

export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly multiplier: number;
  private readonly jitter: number;
  private nominal: number;

  constructor(opts: BackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? 1000;
    this.maxMs = opts.maxMs ?? 30_000;
    this.multiplier = opts.multiplier ?? 1.6;
    this.jitter = opts.jitter ?? 0.2;
    this.nominal = this.initialMs;
  }

  /** The next delay in milliseconds. */
  next(): number {
    const delay = this.nominal * (1 + this.jitter * (Math.random() * 2 - 1));
    this.nominal = Math.min(this.nominal * this.multiplier, this.maxMs);
    return Math.max(0, Math.round(delay));
  }

  reset(): void {
    this.nominal = this.initialMs;
  }
}
