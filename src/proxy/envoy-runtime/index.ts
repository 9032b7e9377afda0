// Envoy's runtime (layered_runtime) for rig proxy: layers, snapshots, handles, the bootstrap reader.
export { EnvoyRuntime, NoAdminLayerError, NO_RUNTIME, DEFAULT_RUNTIME_LAYERS, type RuntimeLayerConfig, type RuntimeDump, type RtdsFile } from './envoy-runtime.ts';
export { RuntimeBool, RuntimeDouble, RuntimeFraction, RuntimeUint, RuntimeHandle, fractionOf } from './handles.ts';
export { flattenStruct, entryFromText, type RuntimeEntry } from './entry.ts';
export { readLayeredRuntime } from './layered-runtime-config.ts';
