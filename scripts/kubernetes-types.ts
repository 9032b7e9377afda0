// The Kubernetes types scripts/generate-api-schemas.ts turns into JSON schemas.
import type { IServiceSpec } from 'kubernetes-models/v1/ServiceSpec';
import type { INamespaceSpec } from 'kubernetes-models/v1/NamespaceSpec';

export type ServiceSpec = IServiceSpec;
export type NamespaceSpec = INamespaceSpec;
