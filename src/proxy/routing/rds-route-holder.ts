// A route configuration named by RDS, shared by every connection manager that names it
// (ProxyContext.routeHolder): its table, set by the runtime from each RDS set, and the wait of the
// listener versions that need it before they serve (Envoy's RDS subscription as an init target).
import type { RouteHolder } from '../context.ts';
import type { RouteTable } from './route-config.ts';

export class RdsRouteHolder implements RouteHolder {
  readonly name: string;
  table: RouteTable | undefined = undefined;
  /** The table came in the latest RDS set (false: none yet, or kept only for a listener version still serving or draining). */
  current = false;
  private readonly waiters = new Set<() => void>();

  constructor(name: string) {
    this.name = name;
  }

  /**
   * An accepted RDS set: `table` is this name's in it. Without one, `keep` holds on to the last
   * table for a listener version still serving whose update, warming, names another configuration,
   * or for a draining one (its connections still open) until it is gone.
   */
  update(table: RouteTable | undefined, keep: boolean): void {
    this.current = table !== undefined;
    if (table || !keep) this.table = table;
    if (table) this.wake();
  }

  /** A refused RDS update ends the wait, as Envoy's subscription readies its init target on a NACK. */
  refused(): void {
    this.wake();
  }

  /**
   * A listener version's init target: resolves once this configuration arrived, an RDS update was
   * refused, or `timeoutMs` passed (initial_fetch_timeout; 0 waits for good), then after `onTimeout`;
   * or at once, leaving no waiter nor timer, when `signal` aborts (the version was dropped).
   */
  arrival(timeoutMs: number, onTimeout: () => void, signal: AbortSignal): Promise<void> {
    if (this.current || signal.aborted) return Promise.resolve();
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

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
