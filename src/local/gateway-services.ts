// The Services Istio's installation defines for its gateways (istio-ingressgateway and
// istio-egressgateway in istio-system, selecting the gateway's labels), so that sidecars can
// route to a gateway as Istio's tasks do (`host: istio-egressgateway.istio-system.svc.cluster.local`).
// Their ports are the Gateway server ports the gateway serves, named after each server's protocol;
// a Service of the same name the user declares wins.
import type { Resource } from '../api/index.ts';
import { resourceKey } from '../api/index.ts';
import { gatewayPlans } from './mesh-plan.ts';

interface GatewayServer {
  port?: { number?: number; protocol?: string };
}

export function gatewayServices(resources: readonly Resource[]): Resource[] {
  const declared = new Set(resources.map(resourceKey));
  const out: Resource[] = [];
  for (const plan of gatewayPlans(resources, { ingress: false })) {
    const meta = { name: plan.name, namespace: plan.namespace, labels: { ...plan.labels } };
    if (declared.has(resourceKey({ kind: 'Service', metadata: meta }))) continue;
    const names = new Map<number, string>();
    for (const r of resources) {
      if (r.kind !== 'Gateway') continue;
      const spec = r.spec as { selector?: Record<string, string>; servers?: GatewayServer[] };
      if (!spec.selector || !Object.entries(spec.selector).every(([k, v]) => plan.labels[k] === v)) continue;
      for (const s of spec.servers ?? []) {
        const n = s.port?.number;
        if (n && !names.has(n)) names.set(n, (s.port?.protocol ?? 'TCP').toLowerCase());
      }
    }
    out.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta,
      spec: { selector: { ...plan.labels }, ports: plan.ports.map((port) => ({ name: `${names.get(port) ?? 'tcp'}-${port}`, port })) },
    });
  }
  return out;
}
