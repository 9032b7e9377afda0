// Auto-registration (WorkloadGroup semantics): a connected proxy with Istio node metadata is a
// workload instance; it is removed a grace period after its last stream ends.
import type { Proxy } from '../model/proxy.ts';
import type { WorkloadInstance } from './service-registry.ts';

/** The workload instance a proxy stands for, or undefined when it cannot back services (gateway, proxyless, no IP). */
export function workloadFromProxy(proxy: Proxy): WorkloadInstance | undefined {
  if (proxy.type !== 'sidecar' || proxy.ipAddresses.length === 0) return undefined;
  const namedPorts: Record<string, number> = {};
  for (const p of proxy.workloadPorts) if (p.name) namedPorts[p.name] = p.port;
  const locality = proxy.labels['topology.istio.io/locality'] ?? '';
  return {
    key: proxy.id,
    name: proxy.workloadName,
    namespace: proxy.namespace,
    labels: proxy.labels,
    serviceAccount: proxy.serviceAccount,
    address: proxy.ipAddresses[0],
    namedPorts,
    ports: proxy.workloadPorts.map((p) => p.port),
    meshPorts: proxy.explicit ? proxy.explicit.inboundPorts : undefined,
    // A proxyless gRPC client has no sidecar; every other auto-registered proxy terminates mesh mTLS.
    tlsMode: proxy.generator === 'grpc' ? 'disabled' : 'istio',
    locality: locality.replaceAll('.', '/'),
    weight: 1,
  };
}
