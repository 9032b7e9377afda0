// Envoy's extension config discovery (ECDS) on the proxy's side: a filter named in a listener with
// `config_discovery` instead of `typed_config` takes its config from a TypedExtensionConfig of the
// same name, sent over ADS (type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig).
//
//   subscription = ctx.extensionConfig('http_filter' | 'network_filter', name)   // one per kind and name
//   provider = new ExtensionConfigProvider(subscription, typeUrls, compile)      // one per filter in a chain
//   provider.current                                                             // per stream/connection: one field read
//
// As Envoy's FilterConfigSubscription / DynamicFilterConfigProvider: every filter naming the config
// compiles it with its own context (its stat prefix), so an update is validated by each of them
// first: an inner type not in a filter's type_urls, or a config one of them refuses, is NACKed
// (config_fail) and every filter keeps what it had. An accepted config (config_reload) is swapped in
// for new streams and connections; streams in flight keep the filter they were built with. A config
// equal to the one in force is not applied again (Envoy compares their hashes). Nothing of the
// listener changes: no listener version, no drain. A config whose filters must fetch something first
// (a Wasm module fetched as Istio's agent does) is swapped in once those fetches settled, as Istio's
// agent forwards an ECDS update only once its module is fetched (wasm-config.ts denies streams,
// or lets them through with fail_open, when the fetch gave up: the agent's stand-in RBAC filters,
// which is why a failed fetch is no NACK, as with the agent). As behind the agent, such an update is
// ACKed only once its fetches settled (the agent forwards it to Envoy then, and Envoy ACKs it): the
// commit's promise (runtime.ts's ackAfter).
// Stats: extension_config_discovery.<http_filter|network_filter>.<name>.config_reload / config_fail
// / config_conflict (a filter that cannot take the config in force, its type not in its type_urls).
import { Issues, Reader } from '../config/reader.ts';
import type { Stat, Stats } from '../stats/stats.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import type { InitManager } from './filter.ts';
import { ListenerInit } from '../listener/listener-init.ts';
import { ResourceArrival } from '../listener/resource-arrival.ts';

export type ExtensionKind = 'http_filter' | 'network_filter';

const TYPED_STRUCT_TYPES = new Set(['type.googleapis.com/udpa.type.v1.TypedStruct', 'type.googleapis.com/xds.type.v3.TypedStruct']);

/** The type a typed_config stands for: a TypedStruct's inner type_url, else its @type (Envoy's rule for extension configs). */
export function effectiveTypeUrl(typedConfig: EnvoyJson | undefined): string {
  const t = typeof typedConfig?.['@type'] === 'string' ? (typedConfig['@type'] as string) : '';
  if (TYPED_STRUCT_TYPES.has(t) && typeof typedConfig?.type_url === 'string') return typedConfig.type_url;
  return t;
}

/** Compiles a typed_config for one filter (issues name problems; init gets what must be fetched first). */
export type ExtensionCompile<T> = (typedConfig: Reader, issues: Issues, init: InitManager) => T;

interface Entry {
  raw: EnvoyJson;
  /** Its fields rig proxy does not implement. */
  warnings: string[];
  version: string;
  lastUpdated: string;
}

export class ExtensionConfigSubscription {
  readonly kind: ExtensionKind;
  readonly name: string;
  /** The TypedExtensionConfig in force (undefined: none received yet). */
  entry: Entry | undefined = undefined;
  private readonly providers = new Set<WeakRef<ExtensionConfigProvider<unknown>>>();
  private readonly arrivals = new ResourceArrival();
  /** Bumped by every accepted update: an update still fetching is dropped when a newer one came. */
  private generation = 0;
  readonly stats: { reload: Stat; fail: Stat; conflict: Stat };

  constructor(kind: ExtensionKind, name: string, stats: Stats) {
    this.kind = kind;
    this.name = name;
    const p = `extension_config_discovery.${kind}.${name}.`;
    this.stats = { reload: stats.counter(p + 'config_reload'), fail: stats.counter(p + 'config_fail'), conflict: stats.counter(p + 'config_conflict') };
  }

  add(p: ExtensionConfigProvider<unknown>): void {
    this.providers.add(new WeakRef(p));
  }

  /** The filters naming this config that are still alive (a dropped listener version's go with it). */
  private live(): ExtensionConfigProvider<unknown>[] {
    const out: ExtensionConfigProvider<unknown>[] = [];
    for (const ref of this.providers) {
      const p = ref.deref();
      if (p) out.push(p);
      else this.providers.delete(ref);
    }
    return out;
  }

  /**
   * Checks and compiles a received config for every filter naming it: the problems (→ NACK), or a
   * commit that swaps it in (after what it must fetch: then it returns a promise of that). `undefined`
   * commit: the same config again.
   * `warnings`: the fields it has that rig proxy does not implement (logged, as for every resource).
   */
  prepare(raw: EnvoyJson, version: string): { errors: string[]; warnings: string[]; commit?: () => void | Promise<void> } {
    if (this.entry && JSON.stringify(this.entry.raw) === JSON.stringify(raw)) {
      this.entry.version = version;
      this.generation++; // the config in force again: an update still fetching does not replace it
      return { errors: [], warnings: this.entry.warnings };
    }
    const tc = raw.typed_config as EnvoyJson | undefined;
    const type = effectiveTypeUrl(tc);
    const errors: string[] = [];
    const warnings = new Set<string>();
    const providers = this.live();
    const init = new ListenerInit();
    const compiled: [ExtensionConfigProvider<unknown>, unknown][] = [];
    if (!tc) errors.push(`extension config "${this.name}": typed_config is missing`);
    for (const p of tc ? providers : []) {
      if (!p.typeUrls.has(type)) {
        errors.push(`extension config "${this.name}": type ${type || '(none)'} is not one of the filter's config_discovery.type_urls (${[...p.typeUrls].join(', ')}); keeping the previous config`);
        continue;
      }
      const issues = new Issues();
      const c = p.compile(new Reader(tc, 'typed_config', issues), issues, init);
      for (const e of issues.errors) errors.push(`extension config "${this.name}": ${e}`);
      for (const w of issues.warnings) warnings.add(`extension config "${this.name}": ${w}`);
      if (!issues.errors.length) compiled.push([p, c]);
    }
    if (errors.length) {
      this.stats.fail.value++;
      return { errors, warnings: [...warnings] };
    }
    const generation = ++this.generation;
    const commit = () => {
      if (generation !== this.generation) return; // a newer config came while this one fetched
      for (const [p, c] of compiled) p.current = c;
      // Filters of listener versions compiled while this config was fetched took the previous one.
      const done = new Set(compiled.map(([p]) => p));
      for (const p of this.live()) if (!done.has(p)) this.adopt(p, tc!);
      this.entry = { raw, warnings: [...warnings], version, lastUpdated: new Date().toISOString() };
      this.stats.reload.value++;
      this.arrivals.wake();
    };
    return {
      errors: [],
      warnings: [...warnings],
      commit: init.empty ? commit : () => init.start().then(commit),
    };
  }

  /** Gives a filter that missed an update the config now in force; one it cannot take counts config_conflict. */
  private adopt(p: ExtensionConfigProvider<unknown>, tc: EnvoyJson): void {
    const issues = new Issues();
    const init = new ListenerInit();
    const c = p.typeUrls.has(effectiveTypeUrl(tc)) ? p.compile(new Reader(tc, 'typed_config', issues), issues, init) : undefined;
    if (c === undefined || issues.errors.length) {
      this.stats.conflict.value++;
      return;
    }
    p.current = c;
    void init.start(); // what it fetches was just fetched for the others: found in the module caches
  }

  /** A refused update ends the listeners' wait, as Envoy's subscription readies its init target on a NACK. */
  refused(): void {
    this.arrivals.wake();
  }

  /** A listener version's init target: a config's arrival (ResourceArrival.wait). */
  arrival(timeoutMs: number, onTimeout: () => void, signal: AbortSignal): Promise<void> {
    return this.arrivals.wait(this.entry !== undefined, timeoutMs, onTimeout, signal);
  }
}

/**
 * One filter's slot for a discovered config: `current` is what a new stream or connection uses
 * (undefined: no config, the filter refuses them: HTTP 500 NFCF, connection closed).
 */
export class ExtensionConfigProvider<T> {
  current: T | undefined = undefined;
  readonly typeUrls: ReadonlySet<string>;
  readonly compile: ExtensionCompile<T>;

  constructor(typeUrls: ReadonlySet<string>, compile: ExtensionCompile<T>) {
    this.typeUrls = typeUrls;
    this.compile = compile;
  }
}
