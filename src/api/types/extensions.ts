// extensions.istio.io v1alpha1 WasmPlugin. Field names mirror Istio's YAML.
import type { WorkloadSelector } from './networking.ts';
import type { PolicyTargetReference } from './security.ts';

export type PluginPhase = 'UNSPECIFIED_PHASE' | 'AUTHN' | 'AUTHZ' | 'STATS';
export type WasmPluginTrafficMode = 'UNDEFINED' | 'CLIENT' | 'SERVER' | 'CLIENT_AND_SERVER';

export interface WasmPluginSpec {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  url: string;
  sha256?: string;
  imagePullPolicy?: 'UNSPECIFIED_POLICY' | 'IfNotPresent' | 'Always';
  imagePullSecret?: string;
  pluginConfig?: Record<string, unknown>;
  pluginName?: string;
  phase?: PluginPhase;
  priority?: number | null;
  failStrategy?: 'FAIL_CLOSE' | 'FAIL_OPEN' | 'FAIL_RELOAD';
  vmConfig?: { env?: { name: string; value?: string; valueFrom?: 'INLINE' | 'HOST' }[] };
  match?: { mode?: WasmPluginTrafficMode; ports?: { number: number }[] }[];
  type?: 'UNSPECIFIED_PLUGIN_TYPE' | 'HTTP' | 'NETWORK';
  verificationKey?: string;
}
