// What one active health check attempt can conclude, and the interface each protocol implements.
import type { Host } from './host.ts';

export const CheckResult = {
  Success: 0,
  /** The host answered, but wrongly (unexpected status, NOT_SERVING, payload mismatch): unhealthy at once. */
  ActiveFailure: 1,
  /** Connect failure, reset, retriable status: counts toward unhealthy_threshold. */
  NetworkFailure: 2,
  /** No answer within `timeout`: a network failure too. */
  Timeout: 3,
} as const;
export type CheckResult = (typeof CheckResult)[keyof typeof CheckResult];

export interface Prober {
  probe(host: Host, timeoutMs: number): Promise<CheckResult>;
  /** The host left the cluster: drop its connection. */
  forget(host: Host): void;
  close(): void;
}

/** Resolves `work` or, after `ms`, Timeout (calling `onTimeout` to abort the attempt). */
export function withTimeout(ms: number, onTimeout: () => void, work: (done: (r: CheckResult) => void) => void): Promise<CheckResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: CheckResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      done(CheckResult.Timeout);
      onTimeout();
    }, ms);
    work(done);
  });
}
