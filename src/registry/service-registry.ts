// The service registry: turns Kubernetes Services, ServiceEntries, WorkloadEntries and the
// workloads of connected proxies (auto-registration) into services and endpoints. It knows
// nothing about files: config arrives as Resources, workloads through upsert/remove, so a
// Kubernetes registry can feed the same model later.
import { sortedByCreation, type Resource } from '../api/index.ts';
import type { ServiceSpec } from '../api/index.ts';
import type { ServiceEntrySpec, WorkloadEntrySpec, WorkloadGroupSpec } from '../api/index.ts';
import { warnOnce } from '../model/config-warnings.ts';
import type { Endpoint, Resolution, Service, ServicePort } from '../model/service.ts';
import { localityFromLabels, normalizeProtocol, protocolOf, selectorMatches } from '../model/service.ts';
import { NETWORK_LABEL } from '../model/network.ts';
import type { VipAllocator } from './vip-allocator.ts';

/** A running workload instance that may back services. */
export interface WorkloadInstance {
  /** Unique key (proxy id, or `WorkloadEntry/ns/name`). */
  key: string;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount: string;
  address: string;
  /** Declared ports: name → number (for named targetPorts / ServiceEntry port names). */
  namedPorts: Record<string, number>;
  /** Declared port numbers (empty: unknown, every targetPort is accepted). */
  ports: number[];
  /** Explicit mode: workload port → the sidecar's inbound port (what the mesh connects to); other ports are unreachable. */
  meshPorts?: Record<string, number>;
  /** A gateway moved to other host ports (explicit mode): port → host port; unlisted ports stay. */
  hostPorts?: Record<string, number>;
  tlsMode: 'istio' | 'disabled';
  locality: string;
  weight: number;
  /** WorkloadEntry `network`, or its proxy's NETWORK; the `topology.istio.io/network` label otherwise. */
  network?: string;
  /** Auto-registration under a WorkloadGroup of the same namespace: its template completes the instance. */
  group?: string;
  /**
   * The service account its proxy proved (set when the control plane validates WorkloadEntry
   * identity): a group whose template names another one does not take it (Istio's
   * ensureProxyCanControlEntry, also when the group is created after the proxy connected).
   */
  provenServiceAccount?: string;
  /**
   * Its agent probes it and reports its health (setHealth); until the first healthy report it is
   * unhealthy. With or without a WorkloadGroup: a local replica of `rig up` is health-checked as a
   * Kubernetes pod is ready (CONTRACTS §3).
   */
  healthChecked?: boolean;
  /** Absent: healthy. */
  healthy?: boolean;
}

export interface RegistrySnapshot {
  services: Service[];
  /** hostname → service port → endpoints. */
  endpoints: Map<string, Map<number, Endpoint[]>>;
  workloads: WorkloadInstance[];
}

export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';
/** Istio's annotation: a WorkloadEntry's health comes from its proxy's reports (true: unhealthy until reported healthy). */
export const HEALTH_CHECKS_ANNOTATION = 'proxy.istio.io/health-checks-enabled';
const EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';

export class ServiceRegistry {
  readonly #vips: VipAllocator;
  readonly #domainSuffix: string;
  readonly #workloads = new Map<string, WorkloadInstance>();
  /** Health reported by the agents of auto-registered workloads, by key. */
  readonly #health = new Map<string, boolean>();
  #version = 0;

  constructor(vips: VipAllocator, domainSuffix = 'cluster.local') {
    this.#vips = vips;
    this.#domainSuffix = domainSuffix;
  }

  /** Increases whenever the set of auto-registered workloads changes. */
  get version(): number {
    return this.#version;
  }

  upsertWorkload(w: WorkloadInstance): void {
    const prev = this.#workloads.get(w.key);
    if (prev && JSON.stringify(prev) === JSON.stringify(w)) return;
    this.#workloads.set(w.key, w);
    this.#version++;
  }

  /** The auto-registered workloads (as their proxies declared them). */
  registeredWorkloads(): WorkloadInstance[] {
    return [...this.#workloads.values()];
  }

  /**
   * Records the health a workload's agent reported (`key`: the auto-registered workload's, or
   * `workloadEntryKey()` of the WorkloadEntry its proxy stands for); true when it changed.
   */
  setHealth(key: string, healthy: boolean): boolean {
    if (this.#health.get(key) === healthy) return false;
    this.#health.set(key, healthy);
    this.#version++;
    return true;
  }

  /** Forgets a reported health (its proxy is gone: Istio removes the entry's Healthy condition); true when there was one. */
  clearHealth(key: string): boolean {
    if (!this.#health.delete(key)) return false;
    this.#version++;
    return true;
  }

  removeWorkload(key: string): boolean {
    this.#health.delete(key);
    const had = this.#workloads.delete(key);
    if (had) this.#version++;
    return had;
  }

  hasWorkload(key: string): boolean {
    return this.#workloads.has(key);
  }

  /** Builds services and endpoints from the given config resources and the registered workloads. */
  snapshot(resources: readonly Resource[]): RegistrySnapshot {
    const services: Service[] = [];
    const byHost = new Map<string, Service>();
    const groups = new Map<string, Resource<WorkloadGroupSpec>>();
    for (const r of resources) if (r.kind === 'WorkloadGroup') groups.set(`${r.metadata.namespace}/${r.metadata.name}`, r as unknown as Resource<WorkloadGroupSpec>);
    const workloads: WorkloadInstance[] = [];
    for (const w of this.#workloads.values()) {
      if (!w.group) workloads.push(w.healthChecked ? { ...w, healthy: this.#health.get(w.key) ?? false } : w);
      else {
        const g = groups.get(`${w.namespace}/${w.group}`);
        const templateSa = g?.spec.template?.serviceAccount;
        if (g && w.provenServiceAccount !== undefined && templateSa && templateSa !== w.provenServiceAccount) {
          warnOnce('registry', `workload ${w.key} is not registered under WorkloadGroup ${w.namespace}/${w.group}: its proxy proved service account ${w.provenServiceAccount}, the group's template runs as ${templateSa}`);
        } else if (g) {
          if (g.spec.probe && !w.healthChecked) warnOnce('registry', `WorkloadGroup ${w.namespace}/${w.group} has a probe, but the proxy of ${w.key} runs none (the probe runs in the workload's proxy: start it with --readiness-probe); it counts as healthy`);
          workloads.push({ ...fromWorkloadGroup(w, g), healthy: !w.healthChecked || (this.#health.get(w.key) ?? false) });
        } else warnOnce('registry', `workload ${w.key} names WorkloadGroup ${w.namespace}/${w.group}, which does not exist: not registered as an endpoint until the group is created`);
      }
    }
    for (const r of resources) {
      if (r.kind !== 'WorkloadEntry') continue;
      const we = fromWorkloadEntry(r as Resource<WorkloadEntrySpec>);
      // Health-checked by its proxy (Istio's annotation): unhealthy until a report says otherwise.
      if (healthChecksEnabled(r as Resource<WorkloadEntrySpec>)) we.healthy = this.#health.get(we.key) ?? false;
      workloads.push(we);
    }
    const index = new WorkloadIndex(workloads);
    const endpoints = new Map<string, Map<number, Endpoint[]>>();
    const add = (svc: Service, eps: Endpoint[]) => {
      if (byHost.has(svc.hostname)) return; // first (oldest) definition of a host wins, as in Istio
      byHost.set(svc.hostname, svc);
      services.push(svc);
      const perPort = new Map<number, Endpoint[]>();
      for (const p of svc.ports) perPort.set(p.port, []);
      for (const e of eps) perPort.get(e.servicePort)?.push(e);
      endpoints.set(svc.hostname, perPort);
    };
    // Ties between a Service and a ServiceEntry of one host go by namespace/name, whatever the kind.
    const sorted = sortedByCreation(resources, (r) => `${r.metadata.namespace}/${r.metadata.name}`);
    for (const r of sorted) {
      if (r.kind === 'Service') {
        const svc = this.#fromKubeService(r as Resource<ServiceSpec>);
        if (svc) add(svc, svc.selector ? instancesFor(svc, index) : []);
      } else if (r.kind === 'ServiceEntry') {
        for (const [svc, eps] of this.#fromServiceEntry(r as unknown as Resource<ServiceEntrySpec>, index)) add(svc, eps);
      }
    }
    return { services, endpoints, workloads };
  }

  #fromKubeService(r: Resource<ServiceSpec>): Service | undefined {
    const spec = r.spec ?? {};
    if (spec.type === 'ExternalName') return undefined;
    const ns = r.metadata.namespace;
    const hostname = `${r.metadata.name}.${ns}.svc.${this.#domainSuffix}`;
    const ports: ServicePort[] = (spec.ports ?? [])
      .filter((p) => (p.protocol ?? 'TCP') !== 'UDP')
      .map((p) => ({ name: p.name ?? '', port: p.port, protocol: protocolOf(p.name, p.appProtocol), targetPort: p.targetPort }));
    const headless = spec.clusterIP === 'None';
    const address = headless ? '0.0.0.0' : spec.clusterIP && spec.clusterIP !== '' ? spec.clusterIP : this.#vips.allocate(`${ns}/${hostname}`);
    const exportTo = r.metadata.annotations?.[EXPORT_TO_ANNOTATION]?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
    return {
      source: 'Service',
      hostname,
      name: r.metadata.name,
      namespace: ns,
      address,
      ports,
      resolution: headless ? 'Passthrough' : 'ClientSideLB',
      meshExternal: false,
      exportTo,
      selector: spec.selector && Object.keys(spec.selector).length ? spec.selector : undefined,
      labels: r.metadata.labels ?? {},
      subjectAltNames: [],
    };
  }

  #fromServiceEntry(r: Resource<ServiceEntrySpec>, index: WorkloadIndex): [Service, Endpoint[]][] {
    const spec = r.spec;
    const ns = r.metadata.namespace;
    const resolution = seResolution(spec.resolution);
    const ports: ServicePort[] = (spec.ports ?? []).map((p) => ({ name: p.name, port: p.number, protocol: p.protocol ? normalizeProtocol(p.protocol) : protocolOf(p.name), targetPort: p.targetPort }));
    const out: [Service, Endpoint[]][] = [];
    const hosts = spec.hosts ?? [];
    for (const [i, host] of hosts.entries()) {
      const declared = spec.addresses?.[0];
      const address = declared ?? (host.startsWith('*') || resolution === 'Passthrough' ? '0.0.0.0' : this.#vips.allocate(`${ns}/${host}`));
      const svc: Service = {
        source: 'ServiceEntry',
        hostname: host,
        name: host,
        namespace: ns,
        address: declared && hosts.length > 1 ? spec.addresses?.[i] ?? declared : address,
        ports,
        resolution,
        meshExternal: spec.location !== 'MESH_INTERNAL',
        exportTo: spec.exportTo ?? [],
        selector: spec.workloadSelector?.labels,
        labels: r.metadata.labels ?? {},
        subjectAltNames: spec.subjectAltNames ?? [],
      };
      const eps: Endpoint[] = [];
      if (spec.workloadSelector) eps.push(...instancesFor(svc, index));
      else if (spec.endpoints?.length) {
        for (const e of spec.endpoints) {
          const w = fromWorkloadEntrySpec(e, `ServiceEntry/${ns}/${r.metadata.name}`, r.metadata.name, ns);
          for (const p of ports) eps.push(endpointFor(svc, p, w, e.ports?.[p.name] ?? p.targetPort as number ?? p.port));
        }
      } else if (resolution === 'DNS' || resolution === 'DNSRoundRobin') {
        // No endpoints: the host itself is resolved by DNS.
        for (const p of ports) eps.push({ address: host, port: (p.targetPort as number | undefined) ?? p.port, workloadPort: (p.targetPort as number | undefined) ?? p.port, servicePort: p.port, hostname: host, labels: {}, namespace: ns, serviceAccount: '', workloadName: '', tlsMode: 'disabled', locality: '', weight: 1, healthy: true });
      }
      out.push([svc, eps]);
    }
    return out;
  }
}


function seResolution(r: ServiceEntrySpec['resolution']): Resolution {
  switch (r) {
    case 'STATIC':
      return 'ClientSideLB';
    case 'DNS':
    case 'DYNAMIC_DNS':
      return 'DNS';
    case 'DNS_ROUND_ROBIN':
      return 'DNSRoundRobin';
    default:
      return 'Passthrough';
  }
}

/** Registry key of a WorkloadEntry (also its health key). */
export function workloadEntryKey(namespace: string, name: string): string {
  return `WorkloadEntry/${namespace}/${name}`;
}

/** Whether the entry's reported health decides whether it is an endpoint: the annotation parses as true (Go's strconv.ParseBool, as Istio). */
export function healthChecksEnabled(r: Resource<WorkloadEntrySpec>): boolean {
  return ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(r.metadata.annotations?.[HEALTH_CHECKS_ANNOTATION] ?? '');
}

function fromWorkloadEntry(r: Resource<WorkloadEntrySpec>): WorkloadInstance {
  return fromWorkloadEntrySpec(r.spec, workloadEntryKey(r.metadata.namespace, r.metadata.name), r.metadata.name, r.metadata.namespace, r.metadata.labels);
}

function fromWorkloadEntrySpec(spec: WorkloadEntrySpec, key: string, name: string, namespace: string, metaLabels?: Record<string, string>): WorkloadInstance {
  const labels = { ...metaLabels, ...spec.labels };
  return {
    key,
    name,
    namespace,
    labels,
    serviceAccount: spec.serviceAccount ?? 'default',
    address: spec.address ?? '',
    namedPorts: spec.ports ?? {},
    ports: Object.values(spec.ports ?? {}),
    tlsMode: labels[TLS_MODE_LABEL] === 'istio' ? 'istio' : 'disabled',
    locality: spec.locality || localityFromLabels(labels),
    weight: spec.weight ?? 1,
    network: spec.network || undefined,
  };
}

/**
 * An auto-registered workload completed by its WorkloadGroup (Istio's WorkloadEntry from the group):
 * labels from the template, then the group's metadata, then the proxy's own; the template's service
 * account, ports, weight and locality where the proxy gives none.
 */
function fromWorkloadGroup(w: WorkloadInstance, g: Resource<WorkloadGroupSpec>): WorkloadInstance {
  const t = g.spec.template ?? {};
  const labels = { ...t.labels, ...g.spec.metadata?.labels, ...w.labels };
  delete labels['istio-locality'];
  const templatePorts = Object.values(t.ports ?? {});
  return {
    ...w,
    name: g.metadata.name,
    labels,
    serviceAccount: t.serviceAccount ?? w.serviceAccount,
    namedPorts: { ...t.ports, ...w.namedPorts },
    ports: w.ports.length ? [...new Set([...w.ports, ...templatePorts])] : [],
    locality: w.locality || t.locality || localityFromLabels(labels),
    weight: t.weight ?? w.weight,
    network: w.network || t.network || undefined,
    tlsMode: labels[TLS_MODE_LABEL] === 'disabled' ? 'disabled' : w.tlsMode,
  };
}

/**
 * Workloads by namespace and `key=value` label, in registration order, so that a selector looks
 * only at the workloads carrying one of its labels (a snapshot was O(services × workloads)).
 */
class WorkloadIndex {
  readonly #byLabel = new Map<string, WorkloadInstance[]>();

  constructor(workloads: readonly WorkloadInstance[]) {
    for (const w of workloads) {
      for (const [k, v] of Object.entries(w.labels)) {
        const key = `${w.namespace}\0${k}\0${v}`;
        const list = this.#byLabel.get(key);
        if (list) list.push(w);
        else this.#byLabel.set(key, [w]);
      }
    }
  }

  /** The workloads of `namespace` that `selector` matches (none for an absent or empty selector). */
  selected(namespace: string, selector: Record<string, string> | undefined): WorkloadInstance[] {
    let smallest: WorkloadInstance[] | undefined;
    for (const [k, v] of Object.entries(selector ?? {})) {
      const list = this.#byLabel.get(`${namespace}\0${k}\0${v}`) ?? [];
      if (!smallest || list.length < smallest.length) smallest = list;
    }
    return (smallest ?? []).filter((w) => selectorMatches(selector, w.labels));
  }
}

/** The endpoints of `svc` on the workloads of its namespace its selector matches. */
function instancesFor(svc: Service, index: WorkloadIndex): Endpoint[] {
  const out: Endpoint[] = [];
  for (const w of index.selected(svc.namespace, svc.selector)) {
    if (!w.address) continue;
    for (const p of svc.ports) {
      const target = resolveTargetPort(p, w);
      if (target !== undefined) out.push(endpointFor(svc, p, w, target));
    }
  }
  return out;
}

function resolveTargetPort(p: ServicePort, w: WorkloadInstance): number | undefined {
  let target: number | undefined;
  if (typeof p.targetPort === 'string') target = /^\d+$/.test(p.targetPort) ? Number(p.targetPort) : w.namedPorts[p.targetPort];
  else if (typeof p.targetPort === 'number') target = p.targetPort;
  else target = w.namedPorts[p.name] ?? p.port;
  if (target === undefined) return undefined;
  if (w.ports.length && !w.ports.includes(target)) return undefined;
  // Explicit mode: only ports the sidecar serves are reachable.
  if (w.meshPorts && w.meshPorts[String(target)] === undefined) return undefined;
  return target;
}

function endpointFor(svc: Service, p: ServicePort, w: WorkloadInstance, workloadPort: number): Endpoint {
  const meshPort = w.meshPorts?.[String(workloadPort)] ?? w.hostPorts?.[String(workloadPort)];
  return {
    address: w.address,
    port: meshPort ?? workloadPort,
    workloadPort,
    servicePort: p.port,
    hostname: svc.hostname,
    labels: w.labels,
    namespace: w.namespace,
    serviceAccount: w.serviceAccount,
    workloadName: w.name,
    tlsMode: w.tlsMode,
    locality: w.locality,
    weight: w.weight,
    healthy: w.healthy ?? true,
    network: w.network || w.labels[NETWORK_LABEL] || undefined,
  };
}
