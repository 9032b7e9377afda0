// The output of the control plane that rig up runs inside its own process: every line goes to
// logs/controlplane.log (`rig logs controlplane`), and its warnings and errors, which are about the
// user's config (a JWKS that cannot be fetched, a push a proxy rejected, a field without effect),
// also to the terminal in one readable line. Each distinct warning is shown once until the config
// changes: a JWKS retried every 10 s or a NACK of every push would otherwise repeat it.
import pino from 'pino';
import { readableLogLine } from './replica.ts';

/** Fields that differ between repeats of one warning (the push's version, which proxy said it). */
const REPEAT_FIELDS = new Set(['time', 'pid', 'hostname', 'version', 'proxy']);

export class ControlPlaneLog {
  readonly #file: pino.DestinationStream & { end?: () => void };
  readonly #print: (line: string) => void;
  readonly #shown = new Set<string>();
  #stopping = false;

  constructor(file: string, print: (line: string) => void) {
    this.#file = pino.destination({ dest: file, mkdir: true, sync: false });
    this.#print = print;
  }

  write(line: string): void {
    this.#file.write(line);
    if (this.#stopping) return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof o.level !== 'number' || o.level < 40) return;
    const key = JSON.stringify(Object.entries(o).filter(([k]) => !REPEAT_FIELDS.has(k)));
    if (this.#shown.has(key)) return;
    this.#shown.add(key);
    this.#print(readableLogLine(line.trimEnd()));
  }

  /** The config changed: a warning that still applies is shown again. */
  configChanged(): void {
    this.#shown.clear();
  }

  /** rig up is stopping the mesh: what its components say about that (workloads gone) stays in the file. */
  stopping(): void {
    this.#stopping = true;
  }

  close(): void {
    this.#file.end?.();
  }
}
