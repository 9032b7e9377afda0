// Envoy's runtime (layered_runtime): an ordered list of layers (static, disk, admin, RTDS), later
// ones overriding earlier ones, merged into one snapshot. A new snapshot is made when a disk layer's
// symlink is swapped (as Envoy, the symlink's directory is watched), on each /runtime_modify and on
// each accepted RTDS update; it refreshes every handle consumers hold (handles.ts), so requests
// read fields.
// Stats as Envoy's: runtime.load_success, load_error, num_keys, num_layers, admin_overrides_active,
// override_dir_exists, override_dir_not_exists.
import fs from 'node:fs';
import path from 'node:path';
import { silentLogger, type Logger } from '../../core/log.ts';
import type { Stat, Stats } from '../stats/stats.ts';
import { entryFromText, flattenStruct, type RuntimeEntry } from './entry.ts';
import { diskLayerDir, loadDiskLayer, type DiskLayerConfig } from './disk-layer.ts';
import { RuntimeBool, RuntimeDouble, RuntimeFraction, RuntimeUint, type RuntimeHandle } from './handles.ts';

export type RuntimeLayerConfig =
  | { readonly name: string; readonly kind: 'static'; readonly values: ReadonlyMap<string, RuntimeEntry> }
  | { readonly name: string; readonly kind: 'disk'; readonly disk: DiskLayerConfig }
  | { readonly name: string; readonly kind: 'admin' }
  /** RTDS: the Runtime resource `resource`'s layer (empty until it arrives), over ADS or, with `file`, from a watched file. */
  | { readonly name: string; readonly kind: 'rtds'; readonly resource: string; readonly initialFetchTimeoutMs: number; readonly file?: RtdsFile };

/** An RTDS file (path_config_source): a DiscoveryResponse holding the Runtime resource, reloaded when `dir` changes. */
export interface RtdsFile {
  readonly path: string;
  readonly dir: string;
}

/** Envoy's layers when the bootstrap has no layered_runtime: an empty static layer and an admin layer. */
export const DEFAULT_RUNTIME_LAYERS: readonly RuntimeLayerConfig[] = [
  { name: 'base', kind: 'static', values: new Map() },
  { name: 'admin', kind: 'admin' },
];

export class NoAdminLayerError extends Error {
  constructor() {
    super('No admin layer specified');
  }
}

export interface RuntimeDump {
  layers: string[];
  entries: Record<string, { final_value: string; layer_values: string[] }>;
}

interface RuntimeStats {
  loadSuccess: Stat;
  loadError: Stat;
  numKeys: Stat;
  numLayers: Stat;
  adminOverridesActive: Stat;
  overrideDirExists: Stat;
  overrideDirNotExists: Stat;
}

export interface EnvoyRuntimeOptions {
  stats?: Stats;
  /** The node's cluster, for disk layers with append_service_cluster. */
  serviceCluster?: string;
  log?: Logger;
}

export class EnvoyRuntime {
  private readonly configs: readonly RuntimeLayerConfig[];
  private readonly serviceCluster: string;
  private readonly log: Logger;
  private readonly stats: RuntimeStats | undefined;
  /** The admin layer's values (/runtime_modify); undefined when no admin layer is configured. */
  private readonly adminValues: Map<string, RuntimeEntry> | undefined;
  /** RTDS layers' values by resource name, as last accepted. */
  private rtdsValues = new Map<string, ReadonlyMap<string, RuntimeEntry>>();
  private layers: { name: string; values: ReadonlyMap<string, RuntimeEntry> }[] = [];
  private entries = new Map<string, RuntimeEntry>();
  private readonly handles = new Map<string, RuntimeHandle>();
  private readonly watchers: fs.FSWatcher[] = [];

  constructor(configs: readonly RuntimeLayerConfig[] = [], opts: EnvoyRuntimeOptions = {}) {
    this.configs = configs;
    this.serviceCluster = opts.serviceCluster ?? '';
    this.log = opts.log ?? silentLogger;
    const s = opts.stats;
    this.stats = s && {
      loadSuccess: s.counter('runtime.load_success'),
      loadError: s.counter('runtime.load_error'),
      numKeys: s.gauge('runtime.num_keys'),
      numLayers: s.gauge('runtime.num_layers'),
      adminOverridesActive: s.gauge('runtime.admin_overrides_active'),
      overrideDirExists: s.counter('runtime.override_dir_exists'),
      overrideDirNotExists: s.counter('runtime.override_dir_not_exists'),
    };
    this.adminValues = configs.some((c) => c.kind === 'admin') ? new Map() : undefined;
    this.reload();
  }

  /** Watches the directories holding the disk layers' symlinks; a swap of a symlink reloads. */
  watch(): void {
    const byDir = new Map<string, Set<string>>();
    for (const c of this.configs) {
      if (c.kind !== 'disk') continue;
      const root = path.resolve(c.disk.symlinkRoot);
      const names = byDir.get(path.dirname(root)) ?? new Set<string>();
      names.add(path.basename(root));
      byDir.set(path.dirname(root), names);
    }
    for (const [dir, names] of byDir) {
      try {
        const w = fs.watch(dir, { persistent: false }, (_event, file) => {
          if (file === null || names.has(file.toString())) this.reload();
        });
        w.on('error', (e) => this.log.warn({ dir, err: e.message }, 'runtime: watching the disk layer directory failed; it is no longer reloaded'));
        this.watchers.push(w);
      } catch (e) {
        this.log.warn({ dir, err: (e as Error).message }, 'runtime: cannot watch the directory of a disk layer symlink_root; its layer is read once');
      }
    }
  }

  close(): void {
    for (const w of this.watchers.splice(0)) w.close();
  }

  /** Builds a new snapshot from the layers (disk layers read again) and refreshes every handle. */
  reload(): void {
    const layers: { name: string; values: ReadonlyMap<string, RuntimeEntry> }[] = [];
    let errors = 0;
    let diskLayers = 0;
    for (const c of this.configs) {
      if (c.kind === 'static') layers.push({ name: c.name, values: c.values });
      else if (c.kind === 'admin') layers.push({ name: c.name, values: this.adminValues! });
      else if (c.kind === 'rtds') layers.push({ name: c.name, values: this.rtdsValues.get(c.resource) ?? new Map() });
      else {
        // A disk layer whose directory does not exist is left out of the snapshot, as in Envoy.
        const dir = diskLayerDir(c.disk, this.serviceCluster);
        if (!isDirectory(dir)) continue;
        try {
          layers.push({ name: c.name, values: loadDiskLayer(dir) });
          diskLayers++;
        } catch (e) {
          errors++;
          this.log.warn({ layer: c.name, err: (e as Error).message }, 'runtime: cannot load a disk layer; it is left out');
        }
      }
    }
    const entries = new Map<string, RuntimeEntry>();
    for (const l of layers) for (const [k, v] of l.values) entries.set(k, v);
    this.layers = layers;
    this.entries = entries;
    for (const h of this.handles.values()) h.refresh(entries.get(h.key));
    const s = this.stats;
    if (s) {
      s.numLayers.value = layers.length;
      s.numKeys.value = entries.size;
      s.adminOverridesActive.value = this.adminValues?.size ? 1 : 0;
      (errors ? s.loadError : s.loadSuccess).value++;
      (diskLayers > 1 ? s.overrideDirExists : s.overrideDirNotExists).value++;
    }
  }

  /** /runtime_modify: sets (or, with an empty value, removes) admin layer values, then reloads. */
  modify(values: Iterable<[string, string]>): void {
    if (!this.adminValues) throw new NoAdminLayerError();
    for (const [k, v] of values) {
      if (v === '') this.adminValues.delete(k);
      else this.adminValues.set(k, entryFromText(v));
    }
    this.reload();
  }

  /**
   * An RTDS update (Runtime resources by name, Envoy's JSON, from ADS or a file): each must be one
   * an rtds_layer names, and every layer is checked first; returns the problems ([] = ACK), and a
   * rejected update changes nothing. A layer the update does not carry keeps its values (as Envoy's
   * one-resource RTDS subscriptions).
   */
  applyRtds(resources: ReadonlyMap<string, Record<string, unknown>>): string[] {
    const errors: string[] = [];
    const next = new Map(this.rtdsValues);
    for (const [name, r] of resources) {
      if (!this.configs.some((c) => c.kind === 'rtds' && c.resource === name)) {
        errors.push(`runtime "${name}": no rtds_layer names this resource`);
        continue;
      }
      try {
        next.set(name, r.layer === undefined || r.layer === null ? new Map() : flattenStruct(r.layer));
      } catch (e) {
        errors.push(`runtime "${name}": layer.${(e as Error).message}`);
      }
    }
    if (errors.length) return errors;
    this.rtdsValues = next;
    this.reload();
    return [];
  }

  /** The current entry of a key. A string lookup: for keys built per request only (fault's downstream-cluster keys). */
  get(key: string): RuntimeEntry | undefined {
    return this.entries.size ? this.entries.get(key) : undefined;
  }

  /** RuntimeFractionalPercent / featureEnabled(key, FractionalPercent). */
  fraction(key: string, def: { numerator: number; denominator: number }): RuntimeFraction {
    return this.handle(`f|${key}|${def.numerator}/${def.denominator}`, () => new RuntimeFraction(key, def));
  }

  /** getInteger; RuntimeUInt32 with max 2^32-1. */
  uint(key: string, def: number, max?: number): RuntimeUint {
    return this.handle(`u|${key}|${def}|${max}`, () => new RuntimeUint(key, def, max));
  }

  /** RuntimeFeatureFlag / getBoolean. */
  bool(key: string, def: boolean): RuntimeBool {
    return this.handle(`b|${key}|${def}`, () => new RuntimeBool(key, def));
  }

  /** RuntimeDouble / getDouble; with `percent`, RuntimePercent. */
  double(key: string, def: number, percent = false): RuntimeDouble {
    return this.handle(`d|${key}|${def}|${percent}`, () => new RuntimeDouble(key, def, percent));
  }

  /** One handle per key, kind and default, shared by every config that asks (a recompile reuses it). */
  private handle<H extends RuntimeHandle>(id: string, make: () => H): H {
    let h = this.handles.get(id) as H | undefined;
    if (!h) {
      h = make();
      h.refresh(this.entries.get(h.key));
      this.handles.set(id, h);
    }
    return h;
  }

  /** GET /runtime: Envoy's JSON (layers, and per key its final value and each layer's value, '' where unset). */
  dump(): RuntimeDump {
    const entries: RuntimeDump['entries'] = {};
    for (const key of [...this.entries.keys()].sort()) {
      entries[key] = { final_value: this.entries.get(key)!.raw, layer_values: this.layers.map((l) => l.values.get(key)?.raw ?? '') };
    }
    return { layers: this.layers.map((l) => l.name), entries };
  }
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The runtime of compiled configs that have none (unit tests compiling alone): every handle keeps its default. */
export const NO_RUNTIME = new EnvoyRuntime();
