// `rig x describe service`: istioctl's `experimental describe service` from the control plane's
// debug data. The Service is the served one (/debug/configz); its pods are the connected sidecars
// its selector picks (/debug/adsz) and its endpoints without a sidecar (/debug/endpointz); the
// DestinationRule and VirtualService are read, as istioctl reads them, from the config of its
// first pod's proxy, their subsets matched against every pod. Beyond istioctl, it names the pods
// and the mTLS mode PeerAuthentication gives them.
import { RigError } from '../../core/errors.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import type { ConfigzEntry } from './resource-table.ts';
import { getJson } from './controlplane-client.ts';
import { SEPARATOR, type AdszEntry, type EffectiveMtls, type Labels, type MeshView, type RegistryEndpoint, effectivePeerAuthentication, isReady, isSidecar, kname, labelsOf, namespaceOf, notReadyWarning, podName, printEffectiveMtls, printIngress, printServiceConfig, readMeshView, selects, serviceHost, workloadPortsOf } from './describe-common.ts';

export interface DescribeServiceInput extends MeshView {
  service: ConfigzEntry;
  /** Its endpoints by service port (/debug/endpointz). */
  endpoints: Record<string, RegistryEndpoint[]>;
  /** The config dump of its first ready pod's proxy (undefined when it has none). */
  dump: EnvoyJson | undefined;
}

/** The connected sidecars the Service's selector picks, by name. */
export function podsOf(service: ConfigzEntry, proxies: AdszEntry[]): AdszEntry[] {
  const selector = (service.spec?.selector ?? {}) as Labels;
  if (!Object.keys(selector).length) return [];
  const ns = service.metadata.namespace ?? 'default';
  return proxies.filter((p) => isSidecar(p) && namespaceOf(p) === ns && selects(selector, labelsOf(p))).sort((a, b) => podName(a.node).localeCompare(podName(b.node)));
}

/** Its endpoints whose workload runs no Istio sidecar (tlsMode disabled: a WorkloadEntry without a proxy, say), one per workload address. */
function withoutSidecar(endpoints: Record<string, RegistryEndpoint[]>): string[] {
  const names = Object.values(endpoints).flat().filter((e) => e.tlsMode !== 'istio').map((e) => (e.workloadName ? `${e.workloadName} (${e.address})` : e.address));
  return [...new Set(names)].sort();
}

const podRef = (p: AdszEntry, namespace: string) => kname({ metadata: { name: podName(p.node).split('.')[0]!, namespace: namespaceOf(p) } }, namespace);

/** The pods grouped by the mTLS mode in effect for them, so that one line serves when all agree. */
function mtlsGroups(v: MeshView, pods: AdszEntry[]): { pods: string[]; pa: EffectiveMtls }[] {
  const groups = new Map<string, { pods: string[]; pa: EffectiveMtls }>();
  for (const p of pods) {
    const pa = effectivePeerAuthentication(v.configz, namespaceOf(p), v.rootNamespace, labelsOf(p));
    const key = JSON.stringify([pa.mode, pa.perPort]);
    const g = groups.get(key) ?? { pods: [], pa };
    g.pods.push(podRef(p, v.namespace));
    groups.set(key, g);
  }
  return [...groups.values()];
}

/** The text istioctl x describe svc prints (with its pods and their mTLS mode), for the Service in `i`. */
export function describeService(i: DescribeServiceInput): string {
  const name = kname(i.service, i.namespace);
  const selected = podsOf(i.service, i.proxies);
  // As istioctl, a pod that is not ready is named and left out.
  const out = selected.filter((p) => !isReady(p)).map((p) => notReadyWarning(p, i.namespace));
  const pods = selected.filter(isReady);
  const bare = withoutSidecar(i.endpoints);
  if (!pods.length || !i.dump) {
    if (selected.length) out.push(`Service "${name}" has no ready Istio pods.  (${selected.length + bare.length} pods in service).`);
    else if (!bare.length) out.push(`Service "${name}" has no pods.`);
    else out.push(`Service "${name}" has no Istio pods.  (${bare.length} pods in service).`, "Give its workloads a sidecar (rig up runs one for each replica of a Workload; run rig proxy beside a WorkloadEntry's workload).");
    return out.join('\n') + '\n';
  }
  const podLabels = pods.map(labelsOf);
  const drs = printServiceConfig(out, i, i.service, workloadPortsOf(pods[0]!), podLabels, i.dump);

  out.push(SEPARATOR);
  out.push(`Pods: ${pods.map((p) => podRef(p, i.namespace)).join(', ')}`);
  for (const w of bare) out.push(`WARNING: ${w} is not part of mesh; no Istio sidecar`);
  const groups = mtlsGroups(i, pods);
  for (const g of groups) printEffectiveMtls(out, g.pa, groups.length === 1 ? undefined : `Effective PeerAuthentication (${g.pods.join(', ')}):`);

  printIngress(out, i, serviceHost(i.service), podLabels, drs[0]);
  return out.join('\n') + '\n';
}

/** Finds the Service named `<svc>[.<namespace>]` (istioctl's InferPodInfo: the last dot splits off the namespace). */
export function findService(configz: ConfigzEntry[], name: string, namespace: string | undefined): ConfigzEntry {
  const dot = name.lastIndexOf('.');
  const [svc, ns] = dot > 0 ? [name.slice(0, dot), name.slice(dot + 1)] : [name, namespace ?? 'default'];
  const services = configz.filter((r) => r.kind === 'Service');
  const found = services.find((r) => r.metadata.name === svc && (r.metadata.namespace ?? 'default') === ns);
  if (found) return found;
  const known = services.filter((r) => (r.metadata.namespace ?? 'default') === ns).map((r) => r.metadata.name).sort();
  throw new RigError('MESH_ERR_NOT_FOUND', `services "${svc}" not found in namespace ${ns} (${known.length ? `its Services: ${known.join(', ')}` : 'it has no Services'}; -n or <service>.<namespace> picks another namespace)`);
}

/** Gathers the debug data and describes the Service. */
export async function describeServiceFromControlPlane(base: string, name: string, o: { namespace?: string; rootNamespace?: string }): Promise<string> {
  const [view, endpointz] = await Promise.all([readMeshView(base, o), getJson(base, 'debug/endpointz') as Promise<Record<string, Record<string, RegistryEndpoint[]>>>]);
  const service = findService(view.configz, name, o.namespace);
  const first = podsOf(service, view.proxies).find(isReady);
  const dump = first ? ((await getJson(base, `debug/config_dump?proxyID=${encodeURIComponent(first.node)}`)) as EnvoyJson) : undefined;
  return describeService({ ...view, service, endpoints: endpointz[serviceHost(service)] ?? {}, dump });
}
