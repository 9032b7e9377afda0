// From the configuration to the processes of a local mesh: every Workload replica (its app and
// its sidecar, with the loopback ports they use) and the gateways that Gateway resources select.
import { workloadCwd, type Resource, type WorkloadSpec } from '../api/index.ts';

export const INGRESS_LABELS = { istio: 'ingressgateway', app: 'istio-ingressgateway' } as const;
export const EGRESS_LABELS = { istio: 'egressgateway', app: 'istio-egressgateway' } as const;
export const GATEWAY_NAMESPACE = 'istio-system';

export interface ReplicaPlan {
  /** `reviews-v1-0`: the workload name and the replica's index, like a pod name. */
  name: string;
  workload: string;
  namespace: string;
  index: number;
  /** How many replicas the Workload has. */
  replicas: number;
  labels: Record<string, string>;
  serviceAccount: string;
  spec: WorkloadSpec;
  /** The directory the app runs in (spec.cwd relative to the file that declared the Workload). */
  cwd: string;
  source?: string;
  /** A fingerprint of everything that, when changed, requires restarting this replica. */
  fingerprint: string;
}

export interface GatewayPlan {
  name: 'istio-ingressgateway' | 'istio-egressgateway';
  namespace: string;
  labels: Record<string, string>;
  serviceAccount: string;
  /** Gateway server ports declared by the Gateways that select this gateway. */
  ports: number[];
}

export function workloadReplicas(resources: readonly Resource[]): ReplicaPlan[] {
  const out: ReplicaPlan[] = [];
  for (const r of resources) {
    if (r.kind !== 'Workload') continue;
    const spec = r.spec as unknown as WorkloadSpec;
    const cwd = workloadCwd({ spec, source: r.source });
    const labels = { ...(r.metadata.labels ?? {}) };
    const fingerprint = JSON.stringify({ spec: { ...spec, replicas: undefined }, labels, cwd, ns: r.metadata.namespace });
    for (let i = 0; i < (spec.replicas ?? 1); i++) {
      out.push({
        name: `${r.metadata.name}-${i}`,
        workload: r.metadata.name,
        namespace: r.metadata.namespace,
        index: i,
        replicas: spec.replicas ?? 1,
        labels,
        serviceAccount: spec.serviceAccount ?? 'default',
        spec,
        cwd,
        source: r.source ? `${r.source.file}:${r.source.line}` : undefined,
        fingerprint,
      });
    }
  }
  return out;
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** The gateways to run: ingress always (when `ingress` is set), egress when a Gateway selects it. */
export function gatewayPlans(resources: readonly Resource[], opts: { ingress: boolean }): GatewayPlan[] {
  const plans: GatewayPlan[] = [];
  for (const [name, labels] of [
    ['istio-ingressgateway', INGRESS_LABELS],
    ['istio-egressgateway', EGRESS_LABELS],
  ] as const) {
    const ports = new Set<number>();
    let selected = false;
    for (const r of resources) {
      if (r.kind !== 'Gateway') continue;
      const spec = r.spec as { selector?: Record<string, string>; servers?: { port?: { number?: number } }[] };
      if (!selects(spec.selector, labels)) continue;
      selected = true;
      for (const s of spec.servers ?? []) if (s.port?.number) ports.add(s.port.number);
    }
    if (selected || (name === 'istio-ingressgateway' && opts.ingress)) {
      plans.push({ name, namespace: GATEWAY_NAMESPACE, labels: { ...labels }, serviceAccount: `${name}-service-account`, ports: [...ports].sort((a, b) => a - b) });
    }
  }
  return plans;
}
