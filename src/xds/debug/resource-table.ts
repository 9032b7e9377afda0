// `rig get`'s tables: the columns kubectl prints for each kind (the CRDs' additionalPrinterColumns
// for Istio's and the Gateway API's kinds), from the control plane's /debug/configz.
import type { Kind } from '../../api/index.ts';
import { table } from './tables.ts';

export interface ConfigzEntry {
  apiVersion?: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string };
  spec?: Record<string, unknown>;
  source?: unknown;
  status?: Record<string, unknown>;
}

type Column = [header: string, cell: (r: ConfigzEntry) => string];

const list = (v: unknown) => (Array.isArray(v) && v.length ? v.map(String).join(',') : '');
const at = (r: ConfigzEntry, ...path: string[]) => path.reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), r.spec);
const str = (v: unknown) => (v === undefined || v === null ? '' : String(v));

function condition(r: ConfigzEntry, type: string): string {
  const conditions = (r.status?.conditions ?? []) as { type: string; status: string }[];
  return conditions.find((c) => c.type === type)?.status ?? 'Unknown';
}

const COLUMNS: Partial<Record<Kind, Column[]>> = {
  VirtualService: [
    ['GATEWAYS', (r) => list(at(r, 'gateways'))],
    ['HOSTS', (r) => list(at(r, 'hosts'))],
  ],
  DestinationRule: [['HOST', (r) => str(at(r, 'host'))]],
  ServiceEntry: [
    ['HOSTS', (r) => list(at(r, 'hosts'))],
    ['LOCATION', (r) => str(at(r, 'location'))],
    ['RESOLUTION', (r) => str(at(r, 'resolution'))],
  ],
  PeerAuthentication: [['MODE', (r) => str(at(r, 'mtls', 'mode'))]],
  AuthorizationPolicy: [['ACTION', (r) => str(at(r, 'action') ?? 'ALLOW')]],
  WorkloadEntry: [['ADDRESS', (r) => str(at(r, 'address'))]],
  Service: [['PORT(S)', (r) => ((at(r, 'ports') ?? []) as { port: number; protocol?: string }[]).map((p) => `${p.port}/${p.protocol ?? 'TCP'}`).join(',')]],
  Workload: [['REPLICAS', (r) => str(at(r, 'replicas') ?? 1)]],
  GatewayClass: [
    ['CONTROLLER', (r) => str(at(r, 'controllerName'))],
    ['ACCEPTED', (r) => condition(r, 'Accepted')],
  ],
  KubernetesGateway: [
    ['CLASS', (r) => str(at(r, 'gatewayClassName'))],
    ['ADDRESS', (r) => ((r.status?.addresses ?? []) as { value: string }[]).map((a) => a.value).join(',')],
    ['PROGRAMMED', (r) => condition(r, 'Programmed')],
  ],
  HTTPRoute: [['HOSTNAMES', (r) => list(at(r, 'hostnames'))]],
  GRPCRoute: [['HOSTNAMES', (r) => list(at(r, 'hostnames'))]],
};

/** kubectl's table for one kind; with `allNamespaces` a NAMESPACE column first. */
export function resourceTable(kind: Kind, rows: readonly ConfigzEntry[], allNamespaces: boolean): string {
  const cols: Column[] = [...(allNamespaces ? [['NAMESPACE', (r: ConfigzEntry) => r.metadata.namespace ?? ''] as Column] : []), ['NAME', (r) => r.metadata.name], ...(COLUMNS[kind] ?? [])];
  return table(
    cols.map(([h]) => h),
    rows.map((r) => cols.map(([, cell]) => cell(r))),
  );
}
