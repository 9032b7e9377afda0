// Polls until a condition yields a value: the tests' way to wait for something a real process or
// socket does eventually (a push applied, a certificate served), never a fixed sleep.

/** Calls `fn` every 100 ms until it returns a value (errors count as "not yet"); throws after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await Promise.resolve().then(fn).catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
