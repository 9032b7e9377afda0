// The config store contract (Istio's ConfigStore): typed add/update/delete events with a
// monotonically increasing resource version. Objects handed out are read-only.
import type { Kind, Resource } from '../api/resource.ts';

export type ConfigEventType = 'add' | 'update' | 'delete';

export interface ConfigEvent {
  type: ConfigEventType;
  /** The new object (for delete: the object that was removed). */
  resource: Resource;
  /** For update: the object it replaced. */
  previous?: Resource;
  /** The store version after this event. */
  version: number;
}

export type ConfigHandler = (events: readonly ConfigEvent[]) => void;

export interface ConfigStore {
  /** The store version: increases with every change. */
  readonly version: number;
  list(kind?: Kind, namespace?: string): Resource[];
  get(kind: Kind, namespace: string, name: string): Resource | undefined;
  /** Subscribes to batches of events; returns the unsubscribe function. */
  onChange(handler: ConfigHandler): () => void;
  /**
   * For a store whose changes come in bursts that must be read once over (files being written):
   * from now on it does not wait for a quiet period of its own but calls `onPending` at each change
   * it has not read yet, and the caller reads them with `read()` once it judges the burst over (the
   * discovery server, at the end of its push debounce: a change waits for one quiet period, not
   * the store's and then the push's). `release()` hands the waiting back to the store.
   */
  deferReads?(onPending: () => void): DeferredReads;
}

export interface DeferredReads {
  /** Reads the pending changes now; resolves once their events are emitted. */
  read(): Promise<void>;
  release(): void;
}
