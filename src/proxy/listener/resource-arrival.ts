// The listener versions waiting for an xDS resource they name (a RouteConfiguration over RDS, an
// extension config over ECDS) before they serve: Envoy's subscription as an init target. The wait
// ends when the resource arrives, when an update of its type is refused (Envoy readies the target on
// a NACK too), after initial_fetch_timeout, or when the version is dropped.
export class ResourceArrival {
  private readonly waiters = new Set<() => void>();

  /**
   * Resolves at once when `arrived`, else once wake() is called, or `timeoutMs` passed (0 waits for
   * good), then after `onTimeout`; or at once, leaving no waiter nor timer, when `signal` aborts.
   */
  wait(arrived: boolean, timeoutMs: number, onTimeout: () => void, signal: AbortSignal): Promise<void> {
    if (arrived || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const end = () => {
        clearTimeout(timer);
        this.waiters.delete(end);
        signal.removeEventListener('abort', end);
        resolve();
      };
      const timer = timeoutMs > 0 ? setTimeout(() => (onTimeout(), end()), timeoutMs) : undefined;
      timer?.unref();
      this.waiters.add(end);
      signal.addEventListener('abort', end, { once: true });
    });
  }

  /** Ends every wait: the resource arrived, or an update of its type was refused. */
  wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
