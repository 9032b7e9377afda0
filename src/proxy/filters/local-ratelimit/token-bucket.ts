// Envoy's local rate limit token bucket: starts full with max_tokens; every fill_interval adds
// tokens_per_fill (never above max_tokens). Refills are computed lazily from the clock on use, so
// an idle bucket costs nothing.
import type { Reader } from '../../config/reader.ts';

export class TokenBucket {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
  private tokens: number;
  private lastFill: number;

  constructor(maxTokens: number, tokensPerFill: number, fillIntervalMs: number, now = performance.now()) {
    this.maxTokens = maxTokens;
    this.tokensPerFill = tokensPerFill;
    this.fillIntervalMs = fillIntervalMs;
    this.tokens = maxTokens;
    this.lastFill = now;
  }

  private refill(now: number): void {
    const fills = Math.floor((now - this.lastFill) / this.fillIntervalMs);
    if (fills <= 0) return;
    this.tokens = Math.min(this.maxTokens, this.tokens + fills * this.tokensPerFill);
    this.lastFill += fills * this.fillIntervalMs;
  }

  /** Takes one token; false when the bucket is empty. */
  consume(now = performance.now()): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  remaining(now = performance.now()): number {
    this.refill(now);
    return this.tokens;
  }

  /** Seconds until the next fill (x-ratelimit-reset). */
  resetSeconds(now = performance.now()): number {
    this.refill(now);
    return Math.max(0, Math.ceil((this.lastFill + this.fillIntervalMs - now) / 1000));
  }
}

/** The immutable shape of a TokenBucket config; each user makes its own TokenBucket from it. */
export interface BucketSpec {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
}

/** Reads envoy.type.v3.TokenBucket. */
export function readTokenBucket(r: Reader | undefined, path: string, issues: Reader['issues']): BucketSpec | undefined {
  if (!r) {
    issues.error(path, 'a token_bucket is required');
    return undefined;
  }
  const maxTokens = r.num('max_tokens', 0);
  const tokensPerFill = r.num('tokens_per_fill', 1);
  const fillIntervalMs = r.durationMs('fill_interval', 0);
  if (!Number.isInteger(maxTokens) || maxTokens < 1) r.issues.error(r.at('max_tokens'), 'max_tokens must be a positive integer');
  if (!Number.isInteger(tokensPerFill) || tokensPerFill < 1) r.issues.error(r.at('tokens_per_fill'), 'tokens_per_fill must be a positive integer');
  if (!(fillIntervalMs > 0)) r.issues.error(r.at('fill_interval'), 'fill_interval must be a positive duration');
  r.done();
  return { maxTokens, tokensPerFill, fillIntervalMs: Math.max(fillIntervalMs, 1) };
}

export function bucketOf(s: BucketSpec): TokenBucket {
  return new TokenBucket(s.maxTokens, s.tokensPerFill, s.fillIntervalMs);
}
