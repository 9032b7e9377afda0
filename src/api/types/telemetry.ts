// telemetry.istio.io (v1; v1alpha1 shares the same schema). Field names mirror Istio's YAML.
import type { WorkloadSelector } from './networking.ts';
import type { PolicyTargetReference } from './security.ts';

export interface ProviderRef {
  name: string;
}

export type WorkloadMode = 'CLIENT_AND_SERVER' | 'CLIENT' | 'SERVER';

export interface Tracing {
  match?: { mode?: WorkloadMode };
  providers?: ProviderRef[];
  randomSamplingPercentage?: number;
  disableSpanReporting?: boolean;
  customTags?: Record<string, { literal?: { value?: string }; environment?: { name: string; defaultValue?: string }; header?: { name: string; defaultValue?: string } }>;
  useRequestIdForTraceSampling?: boolean;
  enableIstioTags?: boolean;
}

export interface MetricsOverrides {
  match?: { metric?: string; customMetric?: string; mode?: WorkloadMode };
  disabled?: boolean;
  tagOverrides?: Record<string, { operation?: 'UPSERT' | 'REMOVE'; value?: string }>;
}

export interface Metrics {
  providers?: ProviderRef[];
  overrides?: MetricsOverrides[];
  reportingInterval?: string;
}

export interface AccessLogging {
  match?: { mode?: WorkloadMode };
  providers?: ProviderRef[];
  disabled?: boolean;
  filter?: { expression?: string };
}

export interface TelemetrySpec {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  tracing?: Tracing[];
  metrics?: Metrics[];
  accessLogging?: AccessLogging[];
}
