// `rig get`'s tables: the columns kubectl prints for each kind (the CRDs' additionalPrinterColumns
// for Istio's and the Gateway API's kinds), from the control plane's /debug/configz.
import type { Kind } from '../../api/index.ts';
import { table } from './tables.ts';

export interface ConfigzEntry {
  apiVersion?: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string; creationTimestamp?: string };
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
  ConfigMap: [['DATA', (r) => str(Object.keys((at(r, 'data') ?? {}) as object).length + Object.keys((at(r, 'binaryData') ?? {}) as object).length)]],
  GatewayClass: [
    ['CONTROLLER', (r) => str(at(r, 'controllerName'))],
    ['ACCEPTED', (r) => condition(r, 'Accepted')],
  ],
  KubernetesGateway: [
    ['CLASS', (r) => str(at(r, 'gatewayClassName'))],
    ['ADDRESS', (r) => ((r.status?.addresses ?? []) as { value: string }[]).map((a) => a.value).join(',')],
    ['PROGRAMMED', (r) => condition(r, 'Programmed')],
  ],
  ListenerSet: [
    ['ACCEPTED', (r) => condition(r, 'Accepted')],
    ['PROGRAMMED', (r) => condition(r, 'Programmed')],
  ],
  HTTPRoute: [['HOSTNAMES', (r) => list(at(r, 'hostnames'))]],
  GRPCRoute: [['HOSTNAMES', (r) => list(at(r, 'hostnames'))]],
};

/** kubectl's table for one kind; with `allNamespaces` a NAMESPACE column first, AGE last. */
export function resourceTable(kind: Kind, rows: readonly ConfigzEntry[], allNamespaces: boolean, now = Date.now()): string {
  const age: Column = ['AGE', (r) => (r.metadata.creationTimestamp ? humanDuration(now - Date.parse(r.metadata.creationTimestamp)) : '<unknown>')];
  const cols: Column[] = [...(allNamespaces ? [['NAMESPACE', (r: ConfigzEntry) => r.metadata.namespace ?? ''] as Column] : []), ['NAME', (r) => r.metadata.name], ...(COLUMNS[kind] ?? []), age];
  return table(
    cols.map(([h]) => h),
    rows.map((r) => cols.map(([, cell]) => cell(r))),
  );
}

/** kubectl's AGE: Kubernetes' HumanDuration (apimachinery util/duration), precise while young, coarser with age. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  const both = (a: number, unitA: string, b: number, unitB: string) => (b === 0 ? `${a}${unitA}` : `${a}${unitA}${b}${unitB}`);
  if (minutes < 10) return both(minutes, 'm', seconds % 60, 's');
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) return both(hours, 'h', minutes % 60, 'm');
  if (hours < 48) return `${hours}h`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 8) return both(days, 'd', hours % 24, 'h');
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.trunc(days / 365);
  if (hours < 24 * 365 * 8) return both(years, 'y', days % 365, 'd');
  return `${years}y`;
}
