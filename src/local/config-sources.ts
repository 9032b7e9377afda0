// The configuration of a running local mesh, as one ConfigStore: the paths given to `rig up -f`
// (directories watched recursively, single files polled), plus the directory `rig apply` writes
// to, which wins over them (as `kubectl apply` replaces an object). Every source keeps its last
// valid content when a file turns invalid; problems are reported, never applied.
import { mkdirSync, statSync, unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Diagnostic, Resource } from '../api/index.ts';
import { formatDiagnostic, hasErrors, loadDocuments, resourceKey } from '../api/index.ts';
import { FileConfigStore, MemoryConfigStore, type DeferredReads } from '../config/index.ts';
import { RigError } from '../core/errors.ts';
import { gatewayServices } from './gateway-services.ts';

interface Source {
  list(): Resource[];
  problems(): Diagnostic[];
  close(): Promise<void>;
}

/** One file, polled (a rename-on-save by an editor is seen too). */
class WatchedFile implements Source {
  readonly file: string;
  #resources: Resource[] = [];
  #diagnostics: Diagnostic[] = [];
  readonly #onChange: () => void;

  constructor(file: string, onChange: () => void) {
    this.file = file;
    this.#onChange = onChange;
  }

  async start(): Promise<void> {
    await this.#load();
    watchFile(this.file, { interval: 250 }, () => void this.#load().then(this.#onChange));
  }

  async #load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.#resources = [];
        this.#diagnostics = [];
        return;
      }
      this.#diagnostics = [{ severity: 'Error', code: 'RIG0005', message: `cannot read ${this.file}: ${(err as Error).message}`, source: { file: this.file, line: 0, column: 0 } }];
      return;
    }
    const r = loadDocuments(text, this.file, { duplicates: 'error' });
    this.#diagnostics = r.diagnostics;
    if (!hasErrors(r.diagnostics)) this.#resources = r.resources;
  }

  list(): Resource[] {
    return this.#resources;
  }
  problems(): Diagnostic[] {
    return this.#diagnostics;
  }
  async close(): Promise<void> {
    unwatchFile(this.file);
  }
}

/** How often a watched directory is rescanned besides its filesystem events. */
const RESCAN_MS = 500;

class WatchedDir implements Source {
  readonly store: FileConfigStore;
  // Node's recursive fs.watch on Linux stops reporting a file once it was deleted (a file that
  // `rig delete` removed and `rig apply` wrote again, an editor's delete-and-create), so the
  // directory is also rescanned (a stat per file) to keep "takes effect within a second".
  readonly #rescan: NodeJS.Timeout;
  constructor(dir: string, onChange: () => void) {
    this.store = new FileConfigStore({ dir });
    this.store.onChange(onChange);
    this.store.onDiagnostics(onChange);
    this.#rescan = setInterval(() => void this.store.sync().catch(() => undefined), RESCAN_MS);
    this.#rescan.unref();
  }
  list(): Resource[] {
    return this.store.list();
  }
  problems(): Diagnostic[] {
    return this.store.diagnostics();
  }
  close(): Promise<void> {
    clearInterval(this.#rescan);
    return this.store.close();
  }
}

/**
 * The merged configuration, whose reader (the discovery server) may take over when the watched
 * directories are read: a change then waits for the push's debounce alone, not the directory's
 * and then the push's.
 */
class MergedConfigStore extends MemoryConfigStore {
  readonly dirs: WatchedDir[] = [];

  deferReads(onPending: () => void): DeferredReads {
    const deferred = this.dirs.map((d) => d.store.deferReads(onPending));
    return {
      read: async () => {
        await Promise.all(deferred.map((d) => d.read()));
      },
      release: () => {
        for (const d of deferred) d.release();
      },
    };
  }
}

export class ConfigSources {
  /** The merged configuration; the control plane and the supervisor read this one. */
  readonly store = new MergedConfigStore();
  readonly #sources: Source[] = [];
  readonly #problemHandlers = new Set<(problems: string[]) => void>();
  #lastProblems = '';

  /** `paths`: what `rig up -f` named; `appliedDir`: where `rig apply` writes (highest precedence). */
  static async open(paths: readonly string[], appliedDir: string): Promise<ConfigSources> {
    const cfg = new ConfigSources();
    try {
      await cfg.#open(paths, appliedDir);
    } catch (err) {
      await cfg.close();
      throw err;
    }
    cfg.#merge();
    return cfg;
  }

  async #open(paths: readonly string[], appliedDir: string): Promise<void> {
    const onChange = () => this.#merge();
    for (const p of paths) {
      const abs = path.resolve(p);
      let isDir: boolean;
      try {
        isDir = statSync(abs).isDirectory();
      } catch {
        throw new RigError('MESH_ERR_FILE', `${p}: no such file or directory (given with -f)`);
      }
      if (isDir) {
        const d = new WatchedDir(abs, onChange);
        this.#sources.push(d);
        this.store.dirs.push(d);
        await d.store.start();
      } else {
        const f = new WatchedFile(abs, onChange);
        this.#sources.push(f);
        await f.start();
      }
    }
    mkdirSync(appliedDir, { recursive: true });
    const applied = new WatchedDir(appliedDir, onChange);
    this.#sources.push(applied);
    this.store.dirs.push(applied);
    await applied.store.start();
  }

  #merge(): void {
    // Later sources win: a resource applied with `rig apply` replaces the one from -f.
    const byKey = new Map<string, Resource>();
    for (const s of this.#sources) for (const r of s.list()) byKey.set(resourceKey(r), r);
    const resources = [...byKey.values()];
    this.store.replaceAll([...resources, ...gatewayServices(resources)]);
    const problems = this.problems();
    const fp = problems.join('\n');
    if (fp !== this.#lastProblems) {
      this.#lastProblems = fp;
      for (const h of this.#problemHandlers) h(problems);
    }
  }

  /** Current problems (errors and warnings) of every source, formatted with file:line. */
  problems(): string[] {
    return this.#sources.flatMap((s) => s.problems().map(formatDiagnostic));
  }

  onProblems(handler: (problems: string[]) => void): void {
    this.#problemHandlers.add(handler);
  }

  async close(): Promise<void> {
    await Promise.all(this.#sources.map((s) => s.close()));
  }
}
