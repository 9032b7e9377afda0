// The Services Istio defines for its gateways (istio-ingressgateway and istio-egressgateway in
// istio-system from its installation, `<name>-istio` beside a Gateway API Gateway from its automated
// deployment), selecting the gateway's labels, so that sidecars can route to a gateway as Istio's
// tasks do (`host: istio-egressgateway.istio-system.svc.cluster.local`). Their ports are the ports
// the gateway serves, named after each one's protocol; a Service of the same name the user declares wins.
import type { Resource } from '../api/index.ts';
import { resourceKey } from '../api/index.ts';
import { gatewayPlans } from './mesh-plan.ts';

export function gatewayServices(resources: readonly Resource[]): Resource[] {
  const declared = new Set(resources.map(resourceKey));
  const out: Resource[] = [];
  for (const plan of gatewayPlans(resources, { ingress: false })) {
    const meta = { name: plan.name, namespace: plan.namespace, labels: { ...plan.labels } };
    if (declared.has(resourceKey({ kind: 'Service', metadata: meta }))) continue;
    out.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta,
      spec: { selector: { ...plan.labels }, ports: plan.ports.map((port) => ({ name: `${(plan.protocols[port] ?? 'TCP').toLowerCase()}-${port}`, port })) },
    });
  }
  return out;
}
