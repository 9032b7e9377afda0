// `rig x describe pod`: istioctl's `experimental describe pod` from the control plane's debug data.
// The pod is a connected proxy (/debug/adsz: its labels, namespace, ports); its Services, the
// resources that shape its traffic and the ingress gateways are the served configuration
// (/debug/configz, /debug/registryz); which DestinationRule and VirtualService apply is read, as
// istioctl reads it, from the proxy's config (/debug/config_dump: the istio config metadata of the
// outbound cluster and route of each service port).
import { RigError } from '../../core/errors.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import type { ConfigzEntry } from './resource-table.ts';
import { getJson } from './controlplane-client.ts';
import { L1, SEPARATOR, type AdszEntry, type Labels, type MeshView, effectivePeerAuthentication, isReady, kname, labelsOf, notReadyWarning, ofKind, podName, printEffectiveMtls, printIngress, printServiceConfig, readMeshView, selects, serviceHost, workloadPortsOf } from './describe-common.ts';

export interface DescribeInput extends MeshView {
  /** The proxy, as /debug/adsz lists it. */
  proxy: AdszEntry;
  /** The proxy's config dump from the control plane. */
  dump: EnvoyJson;
}

/** AuthorizationPolicies that apply to the workload: its namespace's and the root namespace's, by selector. */
function authorizationPolicies(c: ConfigzEntry[], namespace: string, root: string, labels: Labels): ConfigzEntry[] {
  return ofKind(c, 'AuthorizationPolicy').filter((ap) => (ap.metadata.namespace === namespace || ap.metadata.namespace === root) && selects(((ap.spec?.selector as Record<string, unknown> | undefined)?.matchLabels ?? {}) as Labels, labels));
}

function printApplied(out: string[], kind: string, list: ConfigzEntry[]): void {
  if (!list.length) return;
  out.push(`Applied ${kind}:`);
  out.push(`${L1}${list.map((r) => `${r.metadata.name}.${r.metadata.namespace ?? 'default'}`).join(', ')}`);
}

/** The text istioctl x describe pod prints, for the proxy in `i`. */
export function describePod(i: DescribeInput): string {
  const out: string[] = [];
  const md = i.proxy.metadata;
  const name = podName(i.proxy.node);
  const [pod, ns = String(md.NAMESPACE ?? 'default')] = name.split('.');
  const labels = labelsOf(i.proxy);
  const ports = workloadPortsOf(i.proxy).map((p) => `${p.port}${p.protocol && p.protocol !== 'TCP' ? `/${p.protocol}` : ''} (${String(md.WORKLOAD_NAME ?? pod)})`);
  const podMeta = { metadata: { name: pod!, namespace: ns } };
  out.push(`Pod: ${kname(podMeta, i.namespace)}`);
  out.push(`${L1}Pod Revision: ${String(md.ISTIO_REVISION ?? 'default')}`);
  out.push(ports.length ? `${L1}Pod Ports: ${ports.join(', ')}` : `${L1}Pod does not expose ports`);
  if (!isReady(i.proxy)) out.push(notReadyWarning(i.proxy, i.namespace));
  if (!labels.app && !labels['app.kubernetes.io/name'] && !labels['service.istio.io/canonical-name']) out.push('Suggestion: add required service name label for Istio telemetry. See https://istio.io/latest/docs/ops/deployment/application-requirements/.');
  if (!labels.version && !labels['app.kubernetes.io/version'] && !labels['service.istio.io/canonical-revision']) out.push('Suggestion: add required service revision label for Istio telemetry. See https://istio.io/latest/docs/ops/deployment/application-requirements/.');

  const services = servicesSelecting(i.configz, ns, labels);
  if (!services.length) out.push(`Warning: No Kubernetes Services select pod ${kname(podMeta, i.namespace)} (see https://istio.io/docs/setup/kubernetes/additional-setup/requirements/ )`);
  out.push(SEPARATOR);
  const drs = services.map((svc, row) => {
    if (row) out.push(SEPARATOR);
    return printServiceConfig(out, i, svc, workloadPortsOf(i.proxy), [labels], i.dump);
  });

  out.push(SEPARATOR);
  const pa = effectivePeerAuthentication(i.configz, ns, i.rootNamespace, labels);
  printEffectiveMtls(out, pa);
  printApplied(out, 'PeerAuthentication', pa.applied);
  printApplied(out, 'AuthorizationPolicy', authorizationPolicies(i.configz, ns, i.rootNamespace, labels));

  services.forEach((svc, row) => printIngress(out, i, serviceHost(svc), [labels], drs[row]![0]));
  return out.join('\n') + '\n';
}

/** The Services of `namespace` whose selector picks these labels. */
function servicesSelecting(configz: ConfigzEntry[], namespace: string, labels: Labels): ConfigzEntry[] {
  return configz.filter((r) => r.kind === 'Service' && (r.metadata.namespace ?? 'default') === namespace && Object.keys((r.spec?.selector ?? {}) as Labels).length > 0 && selects(r.spec?.selector as Labels, labels));
}

/** Finds the proxy named `<pod>[.<namespace>]` (or by node id) among the connected ones. */
export function findProxy(proxies: AdszEntry[], name: string, namespace: string | undefined): AdszEntry {
  const wanted = name.includes('.') || namespace === undefined ? name : `${name}.${namespace}`;
  const exact = proxies.filter((p) => p.node === name || podName(p.node) === wanted || (!name.includes('.') && namespace === undefined && podName(p.node).split('.')[0] === name));
  if (exact.length === 1) return exact[0]!;
  const known = proxies.map((p) => podName(p.node)).sort();
  if (exact.length > 1) throw new RigError('MESH_ERR_USAGE', `"${name}" names several pods (${exact.map((p) => podName(p.node)).join(', ')}); add the namespace (<pod>.<namespace>)`);
  throw new RigError('MESH_ERR_NOT_FOUND', `pods "${name}" not found among the proxies connected to the control plane (${known.join(', ') || 'none'})`);
}

/** Gathers the debug data and describes the pod. */
export async function describePodFromControlPlane(base: string, name: string, o: { namespace?: string; rootNamespace?: string }): Promise<string> {
  const view = await readMeshView(base, o);
  const proxy = findProxy(view.proxies, name, o.namespace);
  const dump = (await getJson(base, `debug/config_dump?proxyID=${encodeURIComponent(proxy.node)}`)) as EnvoyJson;
  return describePod({ ...view, proxy, dump });
}
