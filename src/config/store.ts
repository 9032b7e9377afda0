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
}
