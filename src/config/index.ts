// Config stores: where resources live once loaded, with typed change events.
export type { ConfigEvent, ConfigEventType, ConfigHandler, ConfigStore, DeferredReads } from './store.ts';
export type { MemoryConfigStoreOptions } from './memory-store.ts';
export { MemoryConfigStore } from './memory-store.ts';
export type { DiagnosticsHandler, FileConfigStoreOptions, FileDiagnostics } from './file-store.ts';
export { FileConfigStore } from './file-store.ts';
