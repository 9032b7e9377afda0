// Envoy's listener init manager: what one listener version waits for before it serves (its
// warming). Filters add targets while the version compiles (FilterCompileContext.initManager);
// the listener manager activates the version once every target settled, fetched or given up. A
// version dropped while it warms is cancelled, as Envoy's init manager goes with its listener: the
// targets' signal aborts (they stop fetching, retrying, waiting) and the wait ends at once, so
// that nothing keeps the dropped version alive.
import type { InitManager } from '../filters/filter.ts';

export class ListenerInit implements InitManager {
  private targets: ((signal: AbortSignal) => Promise<unknown>)[] = [];
  private readonly names: string[] = [];
  private readonly dropped = new AbortController();
  private started: Promise<void> | undefined;

  add(what: string, start: (signal: AbortSignal) => Promise<unknown>): void {
    this.names.push(what);
    this.targets.push(start);
  }

  /** What the version waits for, for the log. */
  get waitingFor(): readonly string[] {
    return this.names;
  }

  get empty(): boolean {
    return this.names.length === 0;
  }

  get cancelled(): boolean {
    return this.dropped.signal.aborted;
  }

  /** Starts every target (once); resolves, never rejects, when all settled or the version was cancelled. */
  start(): Promise<void> {
    if (this.started) return this.started;
    const signal = this.dropped.signal;
    if (signal.aborted) return (this.started = Promise.resolve());
    const targets = this.targets;
    this.targets = [];
    const cancelled = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    // Each target its own signal, following the version's: many targets waiting at once (an RDS wait
    // per connection manager of a gateway) do not pile their listeners on one signal.
    return (this.started = Promise.race([Promise.allSettled(targets.map((t) => t(AbortSignal.any([signal])))), cancelled]).then(() => undefined));
  }

  /** The version was dropped while it warmed: its targets stop, and it never serves. */
  cancel(): void {
    this.dropped.abort(new Error('listener version dropped while warming'));
  }
}
