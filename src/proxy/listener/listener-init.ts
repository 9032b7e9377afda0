// Envoy's listener init manager: what one listener version waits for before it serves (its
// warming). Filters add targets while the version compiles (FilterCompileContext.initManager);
// the listener manager activates the version once every target settled, fetched or given up.
import type { InitManager } from '../filters/filter.ts';

export class ListenerInit implements InitManager {
  private readonly targets: (() => Promise<unknown>)[] = [];
  private readonly names: string[] = [];
  private started: Promise<void> | undefined;

  add(what: string, start: () => Promise<unknown>): void {
    this.names.push(what);
    this.targets.push(start);
  }

  /** What the version waits for, for the log. */
  get waitingFor(): readonly string[] {
    return this.names;
  }

  get empty(): boolean {
    return this.targets.length === 0;
  }

  /** Starts every target (once); resolves, never rejects, when all settled. */
  start(): Promise<void> {
    return (this.started ??= Promise.allSettled(this.targets.map((t) => t())).then(() => undefined));
  }
}
