// Envoy's listener init manager: what one listener version waits for before it serves (its
// warming). Filters add targets while the version compiles (FilterCompileContext.initManager);
// the listener manager activates the version once every target settled, fetched or given up.
import type { InitManager } from '../filters/filter.ts';

export class ListenerInit implements InitManager {
  private readonly targets: Promise<unknown>[] = [];
  private readonly names: string[] = [];

  add(what: string, target: Promise<unknown>): void {
    this.names.push(what);
    this.targets.push(target);
  }

  /** What the version waits for, for the log. */
  get waitingFor(): readonly string[] {
    return this.names;
  }

  /** Resolves (never rejects) once every target settled; undefined when there is none: the version serves at once. */
  settled(): Promise<void> | undefined {
    if (!this.targets.length) return undefined;
    return Promise.allSettled(this.targets).then(() => undefined);
  }
}
