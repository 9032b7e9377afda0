// The API model: Istio and Kubernetes resource types, loading with positions, validation.
export type { Kind, ObjectMeta, Resource, SourcePosition } from './resource.ts';
export { KINDS, resourceKey } from './resource.ts';
export type { KindInfo } from './kinds.ts';
export { KIND_INFO, apiVersionsOf, isKind } from './kinds.ts';
export type { Diagnostic, Severity } from './diagnostic.ts';
export { SEVERITIES, formatDiagnostic, formatPath, hasErrors } from './diagnostic.ts';
export type { LoadOptions, LoadResult } from './loader.ts';
export { describeResource, filesOf, isConfigFile, loadDocuments, loadPaths } from './loader.ts';
export type { FieldPath, Locator } from './source-map.ts';
export type { ValidateOptions } from './validation/index.ts';
export { validateResource } from './validation/index.ts';
export type * from './types/networking.ts';
export type * from './types/security.ts';
export type * from './types/telemetry.ts';
export type * from './types/kubernetes.ts';
export type { WorkloadPort, WorkloadProbe, WorkloadSpec } from './types/workload.ts';
export { WORKLOAD_API_VERSION } from './types/workload.ts';
