// An in-memory ConfigStore (Istio's pilot/pkg/config/memory): the base of the file store and the
// store that tests and `rig apply` feed directly. Objects handed out are frozen.
import { isDeepStrictEqual } from 'node:util';
import type { Kind, Resource } from '../api/resource.ts';
import { resourceKey } from '../api/resource.ts';
import type { Logger } from '../core/log.ts';
import { silentLogger } from '../core/log.ts';
import type { ConfigEvent, ConfigHandler, ConfigStore } from './store.ts';

export interface MemoryConfigStoreOptions {
  logger?: Logger;
}

export class MemoryConfigStore implements ConfigStore {
  #version = 0;
  readonly #items = new Map<string, Resource>();
  readonly #handlers = new Set<ConfigHandler>();
  readonly #log: Logger;

  constructor(opts: MemoryConfigStoreOptions = {}) {
    this.#log = opts.logger ?? silentLogger;
  }

  get version(): number {
    return this.#version;
  }

  list(kind?: Kind, namespace?: string): Resource[] {
    const out: Resource[] = [];
    for (const r of this.#items.values()) {
      if (kind !== undefined && r.kind !== kind) continue;
      if (namespace !== undefined && r.metadata.namespace !== namespace) continue;
      out.push(r);
    }
    return out;
  }

  get(kind: Kind, namespace: string, name: string): Resource | undefined {
    return this.#items.get(`${kind}/${namespace}/${name}`);
  }

  onChange(handler: ConfigHandler): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  /** Adds or updates resources; unchanged ones produce no event. Returns the events emitted (one batch). */
  apply(resources: readonly Resource[]): ConfigEvent[] {
    const events: ConfigEvent[] = [];
    const now = new Date().toISOString();
    for (const r of resources) {
      const e = this.#put(r, now);
      if (e) events.push(e);
    }
    this.#emit(events);
    return events;
  }

  /** Removes one resource; returns its delete event, or undefined if it was not there. */
  delete(kind: Kind, namespace: string, name: string): ConfigEvent | undefined {
    const e = this.#remove(`${kind}/${namespace}/${name}`);
    if (e) this.#emit([e]);
    return e;
  }

  /** Makes the store hold exactly `resources`: deletes what is missing, adds and updates the rest, in one batch. */
  replaceAll(resources: readonly Resource[]): ConfigEvent[] {
    const keep = new Set(resources.map((r) => resourceKey(r)));
    return this.change(resources, [...this.#items.keys()].filter((key) => !keep.has(key)));
  }

  /** Removes the resources of the keys `removed` (`Kind/namespace/name`) and adds or updates `put`, in one batch. */
  change(put: readonly Resource[], removed: readonly string[]): ConfigEvent[] {
    const events: ConfigEvent[] = [];
    for (const key of removed) {
      const e = this.#remove(key);
      if (e) events.push(e);
    }
    const now = new Date().toISOString();
    for (const r of put) {
      const e = this.#put(r, now);
      if (e) events.push(e);
    }
    this.#emit(events);
    return events;
  }

  /**
   * Stamps creationTimestamp as Kubernetes' API server does: when an object is first stored (`now`,
   * one instant per batch, so files read together are equally old and ties fall to the name), kept
   * across updates; a timestamp the resource was written with is kept. Istio breaks ties between
   * competing resources by age, so a later `rig apply` loses to what was there before.
   */
  #put(r: Resource, now: string): ConfigEvent | undefined {
    const key = resourceKey(r);
    const previous = this.#items.get(key);
    const creationTimestamp = r.metadata.creationTimestamp ?? previous?.metadata.creationTimestamp ?? now;
    if (previous && sameContent(previous, r)) {
      // Same configuration, maybe read from another line: keep positions current, tell no one.
      if (!isDeepStrictEqual(previous.source, r.source)) this.#items.set(key, freeze({ ...r, metadata: { ...r.metadata, creationTimestamp, resourceVersion: previous.metadata.resourceVersion } }));
      return undefined;
    }
    const version = ++this.#version;
    const stored = freeze({ ...structuredClone(r), metadata: { ...structuredClone(r.metadata), creationTimestamp, resourceVersion: String(version) } });
    this.#items.set(key, stored);
    return previous ? { type: 'update', resource: stored, previous, version } : { type: 'add', resource: stored, version };
  }

  #remove(key: string): ConfigEvent | undefined {
    const previous = this.#items.get(key);
    if (!previous) return undefined;
    this.#items.delete(key);
    return { type: 'delete', resource: previous, version: ++this.#version };
  }

  #emit(events: ConfigEvent[]): void {
    if (events.length === 0) return;
    const batch = Object.freeze(events.slice());
    for (const h of [...this.#handlers]) {
      try {
        h(batch);
      } catch (err) {
        this.#log.error({ err }, 'config handler failed');
      }
    }
  }
}

function sameContent(a: Resource, b: Resource): boolean {
  return (
    a.apiVersion === b.apiVersion &&
    (b.metadata.creationTimestamp === undefined || b.metadata.creationTimestamp === a.metadata.creationTimestamp) &&
    isDeepStrictEqual(a.metadata.labels, b.metadata.labels) &&
    isDeepStrictEqual(a.metadata.annotations, b.metadata.annotations) &&
    isDeepStrictEqual(a.spec, b.spec)
  );
}

function freeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) freeze(v);
  }
  return o;
}
