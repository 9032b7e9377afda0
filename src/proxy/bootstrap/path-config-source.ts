// Envoy's filesystem config sources: dynamic_resources.lds_config / cds_config given as
// `path` or `path_config_source` (Envoy's "dynamic configuration from the filesystem" quick start).
// The file holds a DiscoveryResponse (YAML or JSON, `resources` with their @type); it is applied
// like an xDS update (state of the world: listeners or clusters missing from it are removed) at
// start and again whenever the file changes (editors and `mv` into place both count; the
// directory is watched, as Envoy does with watched_directory). A file that does not parse or
// holds invalid resources is rejected as a NACK would be: logged, the previous config kept.
import fs from 'node:fs';
import path from 'node:path';
import { parseYaml } from './yaml-file.ts';
import { prepareHttpFilters } from '../filters/registry.ts';
import { checkMessage, CLUSTER_TYPE, LISTENER_TYPE, type EnvoyJson } from '../../envoy/index.ts';

export interface PathSource {
  /** "lds_config" or "cds_config". */
  readonly key: string;
  readonly typeUrl: string;
  readonly file: string;
  readonly dir: string;
}

const KEYS: [string, string][] = [
  ['cds_config', CLUSTER_TYPE],
  ['lds_config', LISTENER_TYPE],
];

function obj(v: unknown): Record<string, unknown> | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** The filesystem sources of a bootstrap's dynamic_resources (CDS first, as Envoy applies them). */
export function pathSources(bootstrap: EnvoyJson, base = process.cwd()): PathSource[] {
  const dyn = obj(bootstrap.dynamic_resources);
  const out: PathSource[] = [];
  for (const [key, typeUrl] of KEYS) {
    const src = obj(dyn?.[key]);
    const pcs = obj(src?.path_config_source);
    const p = typeof pcs?.path === 'string' ? pcs.path : typeof src?.path === 'string' ? src.path : undefined;
    if (!p) continue;
    const file = path.resolve(base, p);
    const wd = obj(pcs?.watched_directory);
    out.push({ key, typeUrl, file, dir: typeof wd?.path === 'string' ? path.resolve(base, wd.path) : path.dirname(file) });
  }
  return out;
}

/** Parses a DiscoveryResponse file's text into resources by name; throws with the reason. */
export function parseDiscoveryFile(text: string, src: PathSource): Map<string, EnvoyJson> {
  const doc = obj(src.file.endsWith('.json') ? JSON.parse(text) : parseYaml(text));
  if (!doc) throw new Error('expected a DiscoveryResponse mapping with "resources"');
  const list = doc.resources;
  if (!Array.isArray(list)) throw new Error('"resources" must be a list');
  const out = new Map<string, EnvoyJson>();
  list.forEach((r, i) => {
    const res = obj(r);
    const type = res?.['@type'];
    if (!res || type !== src.typeUrl) throw new Error(`resources[${i}]: expected "@type": ${src.typeUrl}, got ${JSON.stringify(type)}`);
    const name = res.name;
    if (typeof name !== 'string' || !name) throw new Error(`resources[${i}]: missing name`);
    if (out.has(name)) throw new Error(`resources[${i}]: duplicate name "${name}"`);
    const { ['@type']: _type, ...rest } = res;
    // The forms Envoy also reads in its files (a single value for a list, a lower-case enum) are made canonical; the
    // runtime reports the remaining problems when it applies the resources.
    checkMessage(src.typeUrl.slice(src.typeUrl.lastIndexOf('/') + 1), rest, { envoyFileForms: true });
    out.set(name, rest as EnvoyJson);
  });
  return out;
}

export interface PathSink {
  /** Applies a full set of resources of one type; returns the errors (empty when accepted). */
  apply(typeUrl: string, resources: ReadonlyMap<string, EnvoyJson>, version: string): string[];
}

export interface PathLog {
  info(o: object, msg: string): void;
  error(o: object, msg: string): void;
}

/** Loads each source now, then reloads it when its file changes; stop() ends the watches. */
export class PathSubscriptions {
  private readonly sources: readonly PathSource[];
  private readonly sink: PathSink;
  private readonly log: PathLog;
  private readonly watchers: fs.FSWatcher[] = [];
  private readonly timers = new Map<PathSource, NodeJS.Timeout>();
  private readonly last = new Map<PathSource, string>();
  private version = 0;

  constructor(sources: readonly PathSource[], sink: PathSink, log: PathLog) {
    this.sources = sources;
    this.sink = sink;
    this.log = log;
  }

  start(): void {
    for (const s of this.sources) this.load(s);
    for (const dir of new Set(this.sources.map((s) => s.dir))) {
      try {
        const w = fs.watch(dir, () => this.changed(dir));
        w.on('error', (e) => this.log.error({ dir, err: e.message }, 'config directory watch failed'));
        this.watchers.push(w);
      } catch (e) {
        this.log.error({ dir, err: (e as Error).message }, 'cannot watch the config directory; changes will not be picked up');
      }
    }
  }

  stop(): void {
    for (const w of this.watchers) w.close();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** Coalesces the burst of events one write or rename makes. */
  private changed(dir: string): void {
    for (const s of this.sources) {
      if (s.dir !== dir) continue;
      clearTimeout(this.timers.get(s));
      this.timers.set(
        s,
        setTimeout(() => {
          this.timers.delete(s);
          this.load(s);
        }, 50),
      );
    }
  }

  private load(s: PathSource): void {
    let text: string;
    try {
      text = fs.readFileSync(s.file, 'utf8');
    } catch (e) {
      if (this.last.has(s)) this.log.error({ file: s.file, err: (e as Error).message }, `${s.key}: cannot read; previous config kept`);
      else this.log.error({ file: s.file, err: (e as Error).message }, `${s.key}: cannot read; waiting for the file`);
      return;
    }
    if (this.last.get(s) === text) return;
    // Filters whose engine loads on first use (Lua): this file is read again once it is there.
    const preparing = prepareHttpFilters((typeUrl) => text.includes(typeUrl));
    if (preparing) {
      preparing.then(
        () => this.load(s),
        (e: Error) => this.log.error({ file: s.file, err: e.message }, `${s.key}: a filter engine did not load; previous config kept`),
      );
      return;
    }
    let resources: Map<string, EnvoyJson>;
    try {
      resources = parseDiscoveryFile(text, s);
    } catch (e) {
      this.log.error({ file: s.file, err: (e as Error).message }, `${s.key}: rejected; previous config kept`);
      this.last.set(s, text);
      return;
    }
    const errors = this.sink.apply(s.typeUrl, resources, String(++this.version));
    this.last.set(s, text);
    if (errors.length) this.log.error({ file: s.file, errors }, `${s.key}: rejected; previous config kept`);
    else this.log.info({ file: s.file, resources: resources.size }, `${s.key}: applied`);
  }
}
