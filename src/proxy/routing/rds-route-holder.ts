// A route configuration named by RDS, shared by every connection manager that names it
// (ProxyContext.routeHolder): its table, set by the runtime from each RDS set, and the wait of the
// listener versions that need it before they serve (Envoy's RDS subscription as an init target).
import type { RouteHolder } from '../context.ts';
import type { RouteTable } from './route-config.ts';
import { ResourceArrival } from '../listener/resource-arrival.ts';

export class RdsRouteHolder implements RouteHolder {
  readonly name: string;
  table: RouteTable | undefined = undefined;
  /** The table came in the latest RDS set (false: none yet, or kept only for a listener version still serving or draining). */
  current = false;
  private readonly arrivals = new ResourceArrival();

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
    if (table) this.arrivals.wake();
  }

  /** A refused RDS update ends the wait, as Envoy's subscription readies its init target on a NACK. */
  refused(): void {
    this.arrivals.wake();
  }

  /** A listener version's init target: this configuration's arrival (ResourceArrival.wait). */
  arrival(timeoutMs: number, onTimeout: () => void, signal: AbortSignal): Promise<void> {
    return this.arrivals.wait(this.current, timeoutMs, onTimeout, signal);
  }
}
