// Auto-registration (WorkloadGroup semantics): a connected proxy with Istio node metadata is a
// workload instance; it is removed a grace period after its last stream ends.
import type { Proxy } from '../model/proxy.ts';
import type { WorkloadInstance } from './service-registry.ts';
import { TLS_MODE_LABEL } from './service-registry.ts';

/**
 * The workload instance a proxy stands for, or undefined when it has no address. Gateways
 * (routers) back their own Service (e.g. istio-egressgateway) on the ports they declare; like
 * Istio's uninjected gateway pods they are plaintext endpoints unless labelled
 * `security.istio.io/tlsMode: istio`.
 */
export function workloadFromProxy(proxy: Proxy): WorkloadInstance | undefined {
  // A proxy standing for an existing WorkloadEntry (WORKLOAD_ENTRY) is that entry's endpoint only.
  if (proxy.ipAddresses.length === 0 || proxy.workloadEntry) return undefined;
  const router = proxy.type === 'router';
  const namedPorts: Record<string, number> = {};
  for (const p of proxy.workloadPorts) if (p.name) namedPorts[p.name] = p.port;
  return {
    key: proxy.id,
    name: proxy.workloadName,
    namespace: proxy.namespace,
    labels: proxy.labels,
    serviceAccount: proxy.serviceAccount,
    address: proxy.ipAddresses[0],
    namedPorts,
    ports: proxy.workloadPorts.map((p) => p.port),
    // A gateway serves its ports itself; a sidecar in explicit mode serves them on its inbound ports.
    meshPorts: proxy.explicit && !router ? proxy.explicit.inboundPorts : undefined,
    // ...and may have been moved to other host ports (CONTRACTS §3: bind:(inboundPorts[P] ?? P)).
    hostPorts: proxy.explicit && router ? proxy.explicit.inboundPorts : undefined,
    // A proxyless gRPC client has no sidecar; a sidecar terminates mesh mTLS unless its workload
    // is labelled `security.istio.io/tlsMode: disabled` (e.g. a runtime without a CA).
    tlsMode: router ? (proxy.labels[TLS_MODE_LABEL] === 'istio' ? 'istio' : 'disabled') : proxy.generator === 'grpc' || proxy.labels[TLS_MODE_LABEL] === 'disabled' ? 'disabled' : 'istio',
    locality: proxy.locality,
    network: proxy.network || undefined,
    group: proxy.workloadGroup,
    healthChecked: proxy.healthChecked || undefined,
    weight: 1,
  };
}
