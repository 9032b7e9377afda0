// A ConfigStore fed by a directory of YAML/JSON files, watched recursively (Istio's file store).
// A file is applied whole or not at all: when it becomes invalid its problems are reported and
// the resources it last defined validly stay in force. Removing a file removes its resources.
// Bursts of filesystem events are coalesced (by the store's own quiet period, or by whoever
// defers its reads: the control plane's push debounce), and every flush re-lists the tree and
// compares inode/size/mtime, so an editor's save-by-rename or an event the OS dropped is still seen.
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { Diagnostic, LoadOptions, Resource } from '../api/index.ts';
import { describeResource, filesOf, hasErrors, loadDocuments, resourceKey } from '../api/index.ts';
import type { Kind } from '../api/resource.ts';
import type { Logger } from '../core/log.ts';
import { silentLogger } from '../core/log.ts';
import { RigError } from '../core/errors.ts';
import { MemoryConfigStore } from './memory-store.ts';
import type { ConfigHandler, ConfigStore, DeferredReads } from './store.ts';

export interface FileConfigStoreOptions extends Pick<LoadOptions, 'defaultNamespace' | 'telemetry'> {
  /** The directory to load and watch (recursively). */
  dir: string;
  /** Quiet time that ends a burst of filesystem events (default 100 ms; unused while deferReads is in force). */
  debounceMs?: number;
  /** Create the directory if it does not exist (default: a missing directory is an error). */
  create?: boolean;
  /** Watch for changes after start() (default true). */
  watch?: boolean;
  logger?: Logger;
}

/** The problems of one file after a (re)load; an empty list means the file is fine again. */
export interface FileDiagnostics {
  file: string;
  diagnostics: Diagnostic[];
  /** True when the file is invalid and the resources it last defined validly stay in force. */
  keptLastValid: boolean;
}

export type DiagnosticsHandler = (reports: readonly FileDiagnostics[]) => void;

interface FileState {
  /** Identity of the content read: inode, size and mtime. */
  stamp: string;
  /** The resources this file last defined validly. */
  resources: Resource[];
  /** Problems of the file's current content (syntax, schema, semantic). */
  diagnostics: Diagnostic[];
}

export class FileConfigStore implements ConfigStore {
  readonly dir: string;
  readonly #opts: FileConfigStoreOptions;
  readonly #log: Logger;
  readonly #memory: MemoryConfigStore;
  readonly #files = new Map<string, FileState>();
  readonly #diagHandlers = new Set<DiagnosticsHandler>();
  /** Problems that involve several files (duplicates), by file. */
  #crossFile = new Map<string, Diagnostic[]>();
  #lastReported = new Map<string, string>();
  /** A problem with the directory itself (missing, unreadable). */
  #rootProblem: Diagnostic[] = [];
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;
  #burstStart: number | undefined;
  /** Set while another component decides when filesystem events are read (deferReads). */
  #onPending: (() => void) | undefined;

  constructor(opts: FileConfigStoreOptions) {
    this.#opts = opts;
    this.dir = opts.dir;
    this.#log = (opts.logger ?? silentLogger).child({ component: 'file-store' });
    this.#memory = new MemoryConfigStore({ logger: this.#log });
  }

  get version(): number {
    return this.#memory.version;
  }

  list(kind?: Kind, namespace?: string): Resource[] {
    return this.#memory.list(kind, namespace);
  }

  get(kind: Kind, namespace: string, name: string): Resource | undefined {
    return this.#memory.get(kind, namespace, name);
  }

  onChange(handler: ConfigHandler): () => void {
    return this.#memory.onChange(handler);
  }

  deferReads(onPending: () => void): DeferredReads {
    this.#onPending = onPending;
    // A burst already waiting for the store's own quiet period is now the deferrer's to read.
    if (this.#burstStart !== undefined) {
      clearTimeout(this.#timer);
      this.#burstStart = undefined;
      onPending();
    }
    return {
      read: () => this.sync(),
      release: () => {
        if (this.#onPending === onPending) this.#onPending = undefined;
      },
    };
  }

  /** Subscribes to per-file problem reports (sent when a file's problems change, including when they clear). */
  onDiagnostics(handler: DiagnosticsHandler): () => void {
    this.#diagHandlers.add(handler);
    return () => this.#diagHandlers.delete(handler);
  }

  /** Every current problem, file by file. */
  diagnostics(): Diagnostic[] {
    const out: Diagnostic[] = [];
    for (const file of [this.dir, ...[...this.#files.keys()].sort()]) out.push(...this.#problemsOf(file));
    return out;
  }

  /** Loads the directory and, unless `watch: false`, starts watching it. */
  async start(): Promise<void> {
    if (this.#opts.create) await mkdir(this.dir, { recursive: true });
    let st;
    try {
      st = await stat(this.dir);
    } catch {
      throw new RigError('MESH_ERR_FILE', `configuration directory ${this.dir} does not exist: create it, or fix the path`);
    }
    if (!st.isDirectory()) throw new RigError('MESH_ERR_FILE', `${this.dir} is a file; the configuration store watches a directory (put the file in one)`);
    await this.sync();
  }

  /** Watches the directory while it exists; when it disappears, polls until it is back. */
  #ensureWatcher(rootExists: boolean): void {
    if (this.#opts.watch === false || this.#closed) return;
    if (!rootExists) {
      this.#watcher?.close();
      this.#watcher = undefined;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => void this.sync(), 1000);
      return;
    }
    if (this.#watcher) return;
    try {
      this.#watcher = watch(this.dir, { recursive: true }, () => this.#schedule());
    } catch (err) {
      this.#log.warn({ err }, 'cannot watch the configuration directory; retrying');
      this.#timer = setTimeout(() => void this.sync(), 1000);
      return;
    }
    this.#watcher.on('error', (err) => {
      this.#log.warn({ err }, 'watch error; rescanning');
      this.#watcher?.close();
      this.#watcher = undefined;
      this.#schedule();
    });
  }

  /** Rescans now (also what every coalesced burst of events does); resolves when applied. */
  sync(): Promise<void> {
    const next = this.#flushing.then(() => this.#flush());
    this.#flushing = next.catch((err: unknown) => this.#log.error({ err }, 'config rescan failed'));
    return next;
  }

  /** Writes a file atomically (temporary file + rename) and applies it; returns its problems. `path` is relative to the directory. */
  async writeFile(path: string, text: string): Promise<Diagnostic[]> {
    const target = this.#inside(path);
    await mkdir(dirname(target), { recursive: true });
    const tmp = join(dirname(target), `.${process.pid}-${Date.now()}.rig-tmp`);
    await writeFile(tmp, text);
    await rename(tmp, target);
    await this.sync();
    return this.#problemsOf(target);
  }

  /** Removes a file (relative to the directory) and its resources. */
  async removeFile(path: string): Promise<void> {
    await rm(this.#inside(path), { force: true });
    await this.sync();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#watcher?.close();
    await this.#flushing;
  }

  #inside(path: string): string {
    const target = resolve(this.dir, path);
    const root = resolve(this.dir);
    if (target !== root && !target.startsWith(root + sep)) throw new Error(`${path} is outside ${this.dir}`);
    return join(this.dir, relative(root, target));
  }

  /**
   * Tells whoever defers the reads; otherwise debounces, but never postpones a rescan by more than
   * 10 quiet periods: a file rewritten without pause still gets applied.
   */
  #schedule(): void {
    if (this.#closed) return;
    if (this.#onPending) return this.#onPending();
    const quiet = this.#opts.debounceMs ?? 100;
    const now = Date.now();
    this.#burstStart ??= now;
    clearTimeout(this.#timer);
    const wait = Math.max(0, Math.min(quiet, this.#burstStart + 10 * quiet - now));
    this.#timer = setTimeout(() => {
      this.#burstStart = undefined;
      void this.sync();
    }, wait);
  }

  async #flush(): Promise<void> {
    if (this.#closed) return;
    // Watch first, then list: a change made in between is seen by the next flush.
    this.#ensureWatcher(await isDirectory(this.dir));
    const listed: Diagnostic[] = [];
    const files = await filesOf(this.dir, listed);
    const rootMissing = listed.some((d) => d.source?.file === this.dir);
    if (rootMissing) {
      this.#ensureWatcher(false);
      // The whole directory is gone (being replaced, unmounted…): keep the configuration, say so.
      this.#rootProblem = listed.filter((d) => d.source?.file === this.dir).map((d) => ({ ...d, hint: 'the configuration in force is kept until the directory is back' }));
      this.#report();
      return;
    }
    this.#rootProblem = [];
    const present = new Set(files);
    const changed = new Set<string>();
    for (const file of [...this.#files.keys()]) {
      if (!present.has(file)) {
        this.#files.delete(file);
        changed.add(file);
      }
    }
    for (const file of files) {
      let text: string;
      let stamp: string;
      try {
        const st = await stat(file);
        stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
        if (this.#files.get(file)?.stamp === stamp) continue;
        text = await readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          if (this.#files.delete(file)) changed.add(file);
          continue;
        }
        throw err;
      }
      const previous = this.#files.get(file);
      const loaded = loadDocuments(text, file, { defaultNamespace: this.#opts.defaultNamespace, telemetry: this.#opts.telemetry, duplicates: 'error' });
      const invalid = hasErrors(loaded.diagnostics);
      this.#files.set(file, { stamp, resources: invalid ? (previous?.resources ?? []) : loaded.resources, diagnostics: loaded.diagnostics });
      changed.add(file);
    }
    this.#memory.replaceAll(this.#merge());
    this.#report();
    if (changed.size) this.#log.debug({ files: [...changed], version: this.version }, 'configuration reloaded');
  }

  /** One resource per key; a key defined in two files stays with the file that had it, the other file gets an error naming both. */
  #merge(): Resource[] {
    const owners = new Map<string, string>();
    for (const r of this.#memory.list()) if (r.source) owners.set(resourceKey(r), r.source.file);
    const chosen = new Map<string, Resource>();
    const cross = new Map<string, Diagnostic[]>();
    const candidates = [...this.#files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const byKey = new Map<string, { file: string; resource: Resource }[]>();
    for (const [file, state] of candidates) {
      for (const r of state.resources) {
        const key = resourceKey(r);
        byKey.set(key, [...(byKey.get(key) ?? []), { file, resource: r }]);
      }
    }
    for (const [key, defs] of byKey) {
      const winner = defs.find((d) => d.file === owners.get(key)) ?? defs[0];
      chosen.set(key, winner.resource);
      for (const d of defs) {
        if (d === winner) continue;
        const at = (s?: Resource['source']) => (s ? `${s.file}:${s.line}:${s.column}` : winner.file);
        cross.set(d.file, [
          ...(cross.get(d.file) ?? []),
          {
            severity: 'Error',
            code: 'RIG0004',
            message: `${describeResource(d.resource)} is defined in two files: here and at ${at(winner.resource.source)}; the definition at ${at(winner.resource.source)} stays in force`,
            hint: 'remove one of the two definitions or rename one',
            source: d.resource.source,
            resource: describeResource(d.resource),
          },
        ]);
      }
    }
    this.#crossFile = cross;
    return [...chosen.values()];
  }

  #problemsOf(file: string): Diagnostic[] {
    if (file === this.dir) return this.#rootProblem;
    return [...(this.#files.get(file)?.diagnostics ?? []), ...(this.#crossFile.get(file) ?? [])];
  }

  #report(): void {
    const reports: FileDiagnostics[] = [];
    const files = new Set([this.dir, ...this.#files.keys(), ...this.#lastReported.keys()]);
    for (const file of [...files].sort()) {
      const diagnostics = this.#problemsOf(file);
      const fingerprint = JSON.stringify(diagnostics);
      if ((this.#lastReported.get(file) ?? '[]') === fingerprint) continue;
      if (diagnostics.length) this.#lastReported.set(file, fingerprint);
      else this.#lastReported.delete(file);
      const state = this.#files.get(file);
      reports.push({ file, diagnostics, keptLastValid: !!state && hasErrors(state.diagnostics) && state.resources.length > 0 });
    }
    if (reports.length === 0) return;
    for (const h of [...this.#diagHandlers]) {
      try {
        h(reports);
      } catch (err) {
        this.#log.error({ err }, 'diagnostics handler failed');
      }
    }
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
