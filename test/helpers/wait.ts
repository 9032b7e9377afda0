// Polls until a condition yields a value: the tests' way to wait for something a real process or
// socket does eventually (a push applied, a certificate served), never a fixed sleep.

export interface WaitOptions {
  /** Default 20 s. */
  timeoutMs?: number;
  /** Default 100 ms; in-process state can be polled faster. */
  intervalMs?: number;
}

/**
 * Calls `fn` every `intervalMs` until it returns a value (errors count as "not yet"); throws after
 * `timeoutMs` with `what` (a function is called then, e.g. to add a log tail) and the last error.
 */
export async function waitFor<T>(what: string | (() => string), fn: () => T | undefined | Promise<T | undefined>, opts: number | WaitOptions = {}): Promise<T> {
  const { timeoutMs = 20_000, intervalMs = 100 } = typeof opts === 'number' ? { timeoutMs: opts } : opts;
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const v = await Promise.resolve()
      .then(fn)
      .catch((err: unknown) => {
        last = err;
        return undefined;
      });
    if (v !== undefined) return v;
    if (Date.now() > end) {
      const reason = last === undefined ? '' : ` (last error: ${last instanceof Error ? last.message : String(last)})`;
      throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}${reason}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** waitFor for a yes/no condition. */
export async function until(what: string | (() => string), cond: () => boolean | Promise<boolean>, opts: number | WaitOptions = {}): Promise<void> {
  await waitFor(what, async () => ((await cond()) ? true : undefined), opts);
}
