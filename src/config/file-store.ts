// A ConfigStore fed by a directory of YAML/JSON files, watched recursively (Istio's file store).
// A file is applied whole or not at all: when it becomes invalid its problems are reported and
// the resources it last defined validly stay in force. Removing a file removes its resources.
// Bursts of filesystem events are coalesced (by the store's own quiet period, or by whoever
// defers its reads: the control plane's push debounce), and every flush re-lists the tree and
// compares inode/size/mtime, so an editor's save-by-rename or an event the OS dropped is still seen.
import { watch, type FSWatcher } from 'chokidar';
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
  /** The resources this file last defined validly, by resource key. */
  resources: Map<string, Resource>;
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
  /** The files that define each resource key, in path order (more than one: a duplicate). */
  readonly #definers = new Map<string, string[]>();
  /** The file whose definition of a key is in force. */
  readonly #owners = new Map<string, string>();
  /** Keys defined in several files → the error of each file whose definition is not in force. */
  readonly #duplicates = new Map<string, { file: string; diagnostic: Diagnostic }[]>();
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

  /** Watches the directory while it exists (resolving once the watch is set up); when it disappears, polls until it is back. */
  async #ensureWatcher(rootExists: boolean): Promise<void> {
    if (this.#opts.watch === false || this.#closed) return;
    if (!rootExists) {
      void this.#watcher?.close();
      this.#watcher = undefined;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => void this.sync(), 1000);
      return;
    }
    if (this.#watcher) return;
    // chokidar, not fs.watch(recursive): on Linux Node's recursive watcher loses a file once it is
    // replaced by a rename (`rig apply`, `sed -i`, editors' atomic saves): 1 event of 10 such writes.
    const watcher = watch(this.dir, { ignoreInitial: true });
    this.#watcher = watcher;
    watcher.on('all', () => this.#schedule());
    const ready = new Promise<void>((resolve) => {
      watcher.once('ready', resolve);
      watcher.on('error', (err) => {
        this.#log.warn({ err }, 'watch error; rescanning');
        if (this.#watcher === watcher) this.#watcher = undefined;
        void watcher.close();
        resolve();
        this.#schedule();
      });
    });
    await ready;
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
    await this.#watcher?.close();
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
    await this.#ensureWatcher(await isDirectory(this.dir));
    const listed: Diagnostic[] = [];
    const files = await filesOf(this.dir, listed);
    const rootMissing = listed.some((d) => d.source?.file === this.dir);
    if (rootMissing) {
      void this.#ensureWatcher(false);
      // The whole directory is gone (being replaced, unmounted…): keep the configuration, say so.
      this.#rootProblem = listed.filter((d) => d.source?.file === this.dir).map((d) => ({ ...d, hint: 'the configuration in force is kept until the directory is back' }));
      this.#report();
      return;
    }
    this.#rootProblem = [];
    const present = new Set(files);
    /** Files removed or read again → the resources they defined before. */
    const changed = new Map<string, Map<string, Resource>>();
    for (const [file, state] of [...this.#files]) {
      if (!present.has(file)) {
        this.#files.delete(file);
        changed.set(file, state.resources);
      }
    }
    for (const file of files) {
      let text: string;
      let stamp: string;
      const previous = this.#files.get(file);
      try {
        const st = await stat(file);
        stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
        if (previous?.stamp === stamp) continue;
        text = await readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          if (previous && this.#files.delete(file)) changed.set(file, previous.resources);
          continue;
        }
        throw err;
      }
      const loaded = loadDocuments(text, file, { defaultNamespace: this.#opts.defaultNamespace, telemetry: this.#opts.telemetry, duplicates: 'error' });
      const invalid = hasErrors(loaded.diagnostics);
      const resources = invalid ? (previous?.resources ?? new Map<string, Resource>()) : new Map(loaded.resources.map((r) => [resourceKey(r), r]));
      this.#files.set(file, { stamp, resources, diagnostics: loaded.diagnostics });
      changed.set(file, previous?.resources ?? new Map());
    }
    this.#apply(changed);
    this.#report();
    if (changed.size) this.#log.debug({ files: [...changed.keys()], version: this.version }, 'configuration reloaded');
  }

  /**
   * Brings the store in line with the files that changed, comparing only the resources they
   * defined before or define now. A key defined in two files stays with the file that had it; the
   * other file gets an error naming both.
   */
  #apply(changed: Map<string, Map<string, Resource>>): void {
    const keys = new Set<string>();
    for (const file of [...changed.keys()].sort()) {
      for (const key of changed.get(file)!.keys()) {
        keys.add(key);
        const defs = this.#definers.get(key)?.filter((f) => f !== file) ?? [];
        if (defs.length) this.#definers.set(key, defs);
        else this.#definers.delete(key);
      }
      for (const key of this.#files.get(file)?.resources.keys() ?? []) {
        keys.add(key);
        this.#definers.set(key, [...(this.#definers.get(key) ?? []), file].sort());
      }
    }
    const put: Resource[] = [];
    const removed: string[] = [];
    for (const key of keys) {
      this.#duplicates.delete(key);
      const defs = this.#definers.get(key);
      if (!defs) {
        this.#owners.delete(key);
        removed.push(key);
        continue;
      }
      const owner = this.#owners.get(key);
      const winner = owner !== undefined && defs.includes(owner) ? owner : defs[0];
      this.#owners.set(key, winner);
      const chosen = this.#files.get(winner)!.resources.get(key)!;
      put.push(chosen);
      if (defs.length > 1) this.#duplicates.set(key, defs.filter((f) => f !== winner).map((file) => ({ file, diagnostic: duplicateError(this.#files.get(file)!.resources.get(key)!, chosen, winner) })));
    }
    this.#memory.change(put, removed);
  }

  #problemsOf(file: string): Diagnostic[] {
    if (file === this.dir) return this.#rootProblem;
    const duplicates: Diagnostic[] = [];
    for (const defs of this.#duplicates.values()) for (const d of defs) if (d.file === file) duplicates.push(d.diagnostic);
    return [...(this.#files.get(file)?.diagnostics ?? []), ...duplicates];
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
      reports.push({ file, diagnostics, keptLastValid: !!state && hasErrors(state.diagnostics) && state.resources.size > 0 });
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

/** The error of a resource whose key another file (`winnerFile`, defining `winner`) already defines. */
function duplicateError(resource: Resource, winner: Resource, winnerFile: string): Diagnostic {
  const at = winner.source ? `${winner.source.file}:${winner.source.line}:${winner.source.column}` : winnerFile;
  return {
    severity: 'Error',
    code: 'RIG0004',
    message: `${describeResource(resource)} is defined in two files: here and at ${at}; the definition at ${at} stays in force`,
    hint: 'remove one of the two definitions or rename one',
    source: resource.source,
    resource: describeResource(resource),
  };
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
