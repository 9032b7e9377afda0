// Opens the config store the control plane serves from: a watched directory (the foundation's
// FileConfigStore) or, with no directory, an empty in-memory store.
import type { ConfigStore } from '../config/store.ts';
import * as config from '../config/index.ts';
import { RigError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';

export interface OpenedStore {
  store: ConfigStore;
  close(): Promise<void>;
}

export async function openConfigStore(dir: string | undefined, log: Logger): Promise<OpenedStore> {
  if (!dir) return { store: new config.MemoryConfigStore({ logger: log }), close: async () => {} };
  const FileStore = (config as Record<string, unknown>).FileConfigStore as
    | (new (opts: { paths: string[]; logger?: Logger }) => ConfigStore & { start?(): Promise<unknown>; close?(): Promise<void> | void })
    | undefined;
  if (!FileStore) throw new RigError('MESH_ERR_UNAVAILABLE', 'the file config store is not available in this build');
  const store = new FileStore({ paths: [dir], logger: log });
  await store.start?.();
  return { store, close: async () => void (await store.close?.()) };
}
