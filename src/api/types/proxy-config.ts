// networking.istio.io v1beta1 ProxyConfig: settings of the proxies a namespace (or, with a selector,
// some of its workloads) starts with. Field names mirror Istio's YAML.
import type { WorkloadSelector } from './networking.ts';

export interface ProxyConfigSpec {
  selector?: WorkloadSelector;
  /** Worker threads of the proxy (0: one per core); null or absent: not set at this level. */
  concurrency?: number | null;
  /** Extra environment of the proxy; ISTIO_META_* become its node metadata. */
  environmentVariables?: Record<string, string>;
  image?: { imageType?: string };
}
