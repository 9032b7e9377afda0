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

type Labels = Record<string, string>;
type Spec = Record<string, unknown>;

interface AdszEntry {
  node: string;
  metadata: Record<string, unknown>;
}

interface RegistryService {
  hostname: string;
  name: string;
  namespace: string;
  ports: { name?: string; port: number; protocol: string }[];
}

export interface DescribeInput {
  /** The proxy, as /debug/adsz lists it. */
  proxy: AdszEntry;
  /** Every connected proxy (the ingress gateways among them). */
  proxies: AdszEntry[];
  configz: ConfigzEntry[];
  registry: RegistryService[];
  /** The proxy's config dump from the control plane. */
  dump: EnvoyJson;
  /** The namespace names are printed relative to (istioctl's -n); Istio's root namespace for mesh-wide policies. */
  namespace: string;
  rootNamespace: string;
}

const L0 = '';
const L1 = '   ';
const L2 = '      ';

const podName = (node: string) => node.split('~')[2] ?? node;

function selects(selector: Labels | undefined, labels: Labels): boolean {
  return Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);
}

function fqdn(host: string, namespace: string): string {
  if (host.startsWith('*') || host.includes('.svc.') || host.split('.').length > 2) return host;
  return host.includes('.') ? `${host}.svc.cluster.local` : `${host}.${namespace}.svc.cluster.local`;
}

/** Resources of a kind, oldest first (Istio's tie-break among policies). */
function ofKind(c: ConfigzEntry[], kind: string): ConfigzEntry[] {
  return c.filter((r) => r.kind === kind).sort((a, b) => String(a.metadata.creationTimestamp ?? '').localeCompare(String(b.metadata.creationTimestamp ?? '')) || a.metadata.name.localeCompare(b.metadata.name));
}

function configRef(path: unknown): { namespace: string; name: string } | undefined {
  const m = typeof path === 'string' ? /\/namespaces\/([^/]+)\/[^/]+\/([^/]+)$/.exec(path) : null;
  return m ? { namespace: m[1]!, name: m[2]! } : undefined;
}

function istioConfig(md: unknown): string | undefined {
  return (((md as EnvoyJson | undefined)?.filter_metadata as EnvoyJson | undefined)?.istio as EnvoyJson | undefined)?.config as string | undefined;
}

function section(dump: EnvoyJson, type: string): EnvoyJson {
  return ((dump.configs as EnvoyJson[] | undefined) ?? []).find((c) => String(c['@type']).endsWith(`.${type}`)) ?? {};
}

/** The DestinationRule of the proxy's outbound cluster for host:port (istioctl's getIstioDestinationRulePathForSvc). */
function destinationRuleOf(dump: EnvoyJson, host: string, port: number): string | undefined {
  const s = section(dump, 'ClustersConfigDump');
  for (const w of [...((s.static_clusters as EnvoyJson[]) ?? []), ...((s.dynamic_active_clusters as EnvoyJson[]) ?? [])]) {
    const c = w.cluster as EnvoyJson;
    if (c.name === `outbound|${port}||${host}`) return istioConfig(c.metadata);
  }
  return undefined;
}

/** The VirtualService of the first route for host:port in the proxy's route configs (istioctl's getIstioVirtualServicePathForSvcFromRoute). */
function virtualServiceOf(dump: EnvoyJson, host: string, port: number): string | undefined {
  const s = section(dump, 'RoutesConfigDump');
  const configs = [...((s.static_route_configs as EnvoyJson[]) ?? []), ...((s.dynamic_route_configs as EnvoyJson[]) ?? [])].map((w) => w.route_config as EnvoyJson);
  // The port's own route config first (then http_proxy and the like).
  configs.sort((a, b) => Number(b.name !== String(port)) - Number(a.name !== String(port)));
  const clusterRe = new RegExp(`^outbound\\|${port}\\|[^|]*\\|${host.replace(/\./g, '\\.')}$`);
  for (const rc of configs) {
    for (const vh of (rc.virtual_hosts as EnvoyJson[] | undefined) ?? []) {
      const domains = (vh.domains as string[] | undefined) ?? [];
      const byDomain = domains.some((d) => d === host || d === `${host}:${port}`);
      for (const r of (vh.routes as EnvoyJson[] | undefined) ?? []) {
        const action = (r.route ?? {}) as EnvoyJson;
        const cluster = (action.cluster ?? ((action.weighted_clusters as EnvoyJson | undefined)?.clusters as EnvoyJson[] | undefined)?.[0]?.name) as string | undefined;
        if (!byDomain && !(cluster && clusterRe.test(cluster))) continue;
        const config = istioConfig(r.metadata);
        if (config) return config;
      }
    }
  }
  return undefined;
}

function kname(r: { metadata: { name: string; namespace?: string } }, namespace: string): string {
  return r.metadata.namespace === namespace || !r.metadata.namespace ? r.metadata.name : `${r.metadata.name}.${r.metadata.namespace}`;
}

function find(c: ConfigzEntry[], kind: string, ref: { namespace: string; name: string } | undefined): ConfigzEntry | undefined {
  return ref && c.find((r) => r.kind === kind && r.metadata.name === ref.name && (r.metadata.namespace ?? 'default') === ref.namespace);
}

function subsetsOf(dr: ConfigzEntry, labels: Labels): { matching: string[]; nonMatching: string[] } {
  const matching: string[] = [];
  const nonMatching: string[] = [];
  for (const s of ((dr.spec?.subsets ?? []) as { name: string; labels?: Labels }[])) (selects(s.labels, labels) ? matching : nonMatching).push(s.name);
  return { matching, nonMatching };
}

function shortPolicies(tp: Spec): string | undefined {
  const lb = tp.loadBalancer as Spec | undefined;
  const extra: string[] = [];
  if (lb) {
    const kind = lb.simple ?? (lb.consistentHash ? 'consistent hash' : undefined);
    extra.push(kind ? `load balancer (${String(kind)})` : 'load balancer');
  }
  if (tp.connectionPool) extra.push('connection pool');
  if (tp.outlierDetection) extra.push('outlier detection');
  return extra.length ? `Policies: ${extra.join('/')}` : undefined;
}

function printDestinationRule(out: string[], indent: string, dr: ConfigzEntry, labels: Labels, namespace: string): void {
  out.push(`${indent}DestinationRule: ${kname(dr, namespace)} for "${String(dr.spec?.host)}"`);
  const { matching, nonMatching } = subsetsOf(dr, labels);
  if (matching.length || nonMatching.length) {
    if (!matching.length) out.push(`${indent}${L1}WARNING POD DOES NOT MATCH ANY SUBSETS.  (Non matching subsets ${nonMatching.join(',')})`);
    out.push(`${indent}${L1}Matching subsets: ${matching.join(',')}`);
    if (nonMatching.length) out.push(`${indent}${L2}(Non-matching subsets ${nonMatching.join(',')})`);
  }
  const tp = dr.spec?.trafficPolicy as Spec | undefined;
  if (!tp) {
    out.push(`${indent}${L1}No Traffic Policy`);
    return;
  }
  const tls = tp.tls as Spec | undefined;
  if (tls) out.push(`${indent}${L1}Traffic Policy TLS Mode: ${String(tls.mode ?? 'DISABLE')}`);
  const short = shortPolicies(tp);
  if (short) out.push(`${indent}${L1}${short}`);
  const ports = tp.portLevelSettings as Spec[] | undefined;
  if (ports?.length) {
    out.push(`${indent}${L1}Port Level Settings:`);
    for (const ps of ports) {
      out.push(`    ${String((ps.port as Spec | undefined)?.number ?? '')}:`);
      if (ps.tls) out.push(`${indent}${L2}TLS Mode: ${String((ps.tls as Spec).mode ?? 'DISABLE')}`);
      const sp = shortPolicies(ps);
      if (sp) out.push(`${indent}${L2}${sp}`);
    }
  }
}

/** A proto-text-like rendering of a fault (istioctl prints the HTTPFaultInjection message). */
function protoText(v: unknown): string {
  if (v && typeof v === 'object' && !Array.isArray(v)) return Object.entries(v).map(([k, x]) => (x && typeof x === 'object' ? `${k}:{${protoText(x)}}` : `${k}:${typeof x === 'string' ? JSON.stringify(x) : String(x)}`)).join(' ');
  return String(v);
}

function renderStringMatch(sm: Spec | undefined): string {
  if (!sm) return '';
  if (typeof sm.exact === 'string') return sm.exact;
  if (typeof sm.prefix === 'string') return `${sm.prefix}*`;
  if (typeof sm.regex === 'string') return `regex ${sm.regex}`;
  return JSON.stringify(sm);
}

function renderMatch(m: Spec): string {
  let s = 'Match: ';
  if (m.uri) s += renderStringMatch(m.uri as Spec) + (m.ignoreUriCase ? ' uncased' : '');
  const headers = Object.entries((m.headers ?? {}) as Record<string, Spec>);
  if (headers.length) s += ' when headers are ' + headers.map(([k, v]) => `${k}=${renderStringMatch(v)}`).join('; ');
  return s.trim();
}

interface HttpRoute {
  match?: Spec[];
  route?: { destination: { host: string; subset?: string }; weight?: number }[];
  fault?: Spec;
}

/** istioctl's httpRouteMatchSvc: does the route reach this service (and these subsets), and what to say about it. */
function httpRouteFacts(vs: ConfigzEntry, route: HttpRoute, host: string, matching: string[], nonMatching: string[], dr: ConfigzEntry | undefined, namespace: string): { match: boolean; facts: string[] } {
  const facts: string[] = [];
  const mismatch: string[] = [];
  let match = false;
  const dests = route.route ?? [];
  for (const d of dests) {
    const subset = d.destination.subset;
    // One destination takes all the traffic, weight or not.
    const weight = d.weight ?? (dests.length === 1 ? 100 : 0);
    if (fqdn(d.destination.host, vs.metadata.namespace ?? 'default') !== host) {
      facts.push(subset ? `Route to ${d.destination.host} with invalid config` : `Route to host "${d.destination.host}" with weight ${weight}%`);
      continue;
    }
    if (subset) {
      if (nonMatching.includes(subset)) {
        mismatch.push(`Route to non-matching subset ${subset} for (${route.match?.length ? route.match.map(renderMatch).join(', ') : 'everything'})`);
        continue;
      }
      if (!matching.includes(subset)) {
        mismatch.push(dr ? `Warning: Route to UNKNOWN subset ${subset}; check DestinationRule ${kname(dr, namespace)}` : `Warning: Route to subset ${subset} but NO DESTINATION RULE defining subsets!`);
        continue;
      }
    }
    match = true;
    if (weight > 0) facts.push(`Route to host "${d.destination.host}"${subset ? ` subset "${subset}"` : ''} with weight ${weight}%`);
  }
  if (match) {
    const req: string[] = [];
    if (route.fault) req.push(`Fault injection ${protoText(route.fault)}`);
    for (const m of route.match ?? []) req.push(renderMatch(m));
    if (req.length) facts.push(req.join(', '));
  }
  if (!match) facts.push(...mismatch);
  return { match, facts };
}

function printVirtualService(out: string[], indent: string, vs: ConfigzEntry, host: string, matching: string[], nonMatching: string[], dr: ConfigzEntry | undefined, namespace: string): void {
  out.push(`${indent}VirtualService: ${kname(vs, namespace)}`);
  const http = (vs.spec?.http ?? []) as HttpRoute[];
  const tcp = (vs.spec?.tcp ?? []) as { match?: Spec[]; route?: { destination: { host: string } }[] }[];
  const tlsRoutes = (vs.spec?.tls ?? []) as unknown[];
  let matches = 0;
  let facts = 0;
  const notes: string[] = [];
  for (const r of http) {
    const res = httpRouteFacts(vs, r, host, matching, nonMatching, dr, namespace);
    if (res.match) {
      matches++;
      for (const f of res.facts) out.push(`${indent}${L1}${f}`);
      facts += res.facts.length;
    } else notes.push(...res.facts);
  }
  for (const r of tcp) {
    if (!(r.route ?? []).some((d) => fqdn(d.destination.host, vs.metadata.namespace ?? 'default') === host)) continue;
    matches++;
    for (const m of r.match ?? []) {
      out.push(`${indent}${L1}${protoText(m)}`);
      facts++;
    }
  }
  if (matches === 0) {
    if (http.length) out.push(`${indent}${L1}WARNING: No destinations match pod subsets (checked ${http.length} HTTP routes)`);
    if (tcp.length) out.push(`${indent}${L1}WARNING: No destinations match pod subsets (checked ${tcp.length} TCP routes)`);
    for (const n of notes) out.push(`${indent}${L2}${n}`);
    return;
  }
  const possible = http.length + tcp.length + tlsRoutes.length;
  if (matches < possible) {
    out.push(`${indent}${L1}${possible - matches} additional destination(s) that will not reach this pod`);
    if (facts === 0) for (const n of notes) out.push(`${indent}${L2}${n}`);
    return;
  }
  if (facts === 0) {
    if (http.length) out.push(`${indent}${L1}${http.length} HTTP route(s)`);
    if (tcp.length) out.push(`${indent}${L1}${tcp.length} TCP route(s)`);
  }
}

function protocolOf(registry: RegistryService[], host: string, port: { name?: string; port: number }): string {
  if (!port.name) return 'auto-detect';
  return registry.find((s) => s.hostname === host)?.ports.find((p) => p.port === port.port)?.protocol ?? 'auto-detect';
}

interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
}

/** Istio's ComposePeerAuthentication: workload (selector), then namespace, then mesh (root namespace), PERMISSIVE by default. */
function effectivePeerAuthentication(c: ConfigzEntry[], namespace: string, root: string, labels: Labels): { mode: string; perPort: [string, string][]; applied: ConfigzEntry[] } {
  const pas = ofKind(c, 'PeerAuthentication');
  const hasSelector = (pa: ConfigzEntry) => Object.keys(((pa.spec?.selector as Spec | undefined)?.matchLabels ?? {}) as Labels).length > 0;
  const matchesPod = (pa: ConfigzEntry) => selects(((pa.spec?.selector as Spec | undefined)?.matchLabels ?? {}) as Labels, labels);
  const applied = pas.filter((pa) => (pa.metadata.namespace === namespace || pa.metadata.namespace === root) && matchesPod(pa));
  const mesh = pas.find((pa) => pa.metadata.namespace === root && !hasSelector(pa));
  const ns = pas.find((pa) => pa.metadata.namespace === namespace && !hasSelector(pa));
  const workload = pas.find((pa) => pa.metadata.namespace === namespace && hasSelector(pa) && matchesPod(pa));
  const modeOf = (pa: ConfigzEntry | undefined) => {
    const m = (pa?.spec?.mtls as Spec | undefined)?.mode;
    return typeof m === 'string' && m !== 'UNSET' ? m : undefined;
  };
  const meshMode = modeOf(mesh) ?? 'PERMISSIVE';
  const nsMode = modeOf(ns) ?? meshMode;
  const mode = modeOf(workload) ?? nsMode;
  const perPort = Object.entries(((workload?.spec?.portLevelMtls ?? {}) as Record<string, Spec>)).map(([p, m]): [string, string] => [p, typeof m.mode === 'string' && m.mode !== 'UNSET' ? m.mode : mode]);
  return { mode, perPort, applied };
}

/** AuthorizationPolicies that apply to the workload: its namespace's and the root namespace's, by selector. */
function authorizationPolicies(c: ConfigzEntry[], namespace: string, root: string, labels: Labels): ConfigzEntry[] {
  return ofKind(c, 'AuthorizationPolicy').filter((ap) => (ap.metadata.namespace === namespace || ap.metadata.namespace === root) && selects(((ap.spec?.selector as Spec | undefined)?.matchLabels ?? {}) as Labels, labels));
}

function printApplied(out: string[], kind: string, list: ConfigzEntry[]): void {
  if (!list.length) return;
  out.push(`Applied ${kind}:`);
  out.push(`${L1}${list.map((r) => `${r.metadata.name}.${r.metadata.namespace ?? 'default'}`).join(', ')}`);
}

/** Where a gateway proxy accepts a Gateway server port from this host: its explicit-mode host port, or its address. */
function gatewayAddress(proxy: AdszEntry, port: number): string {
  const explicit = proxy.metadata.RIG_EXPLICIT as { bind?: string; inboundPorts?: Record<string, number> } | undefined;
  const ip = explicit?.bind ?? String(proxy.metadata.INSTANCE_IPS ?? 'unknown').split(',')[0];
  const hostPort = explicit?.inboundPorts?.[String(port)] ?? port;
  return hostPort === 80 ? ip! : `${ip}:${hostPort}`;
}

/** istioctl's printIngressInfo: the Gateways (bound by a VirtualService routing to the service) whose selector picks an ingress gateway proxy. */
function printIngress(out: string[], i: DescribeInput, host: string, labels: Labels, dr: ConfigzEntry | undefined): void {
  const gateways = i.proxies.filter((p) => p.node.startsWith('router~'));
  if (!gateways.length) return;
  const { matching, nonMatching } = dr ? subsetsOf(dr, labels) : { matching: [], nonMatching: [] };
  for (const vs of ofKind(i.configz, 'VirtualService')) {
    const vsNs = vs.metadata.namespace ?? 'default';
    const http = (vs.spec?.http ?? []) as HttpRoute[];
    if (!http.some((r) => (r.route ?? []).some((d) => fqdn(d.destination.host, vsNs) === host))) continue;
    for (const ref of (vs.spec?.gateways ?? []) as string[]) {
      if (ref === 'mesh') continue;
      const [gwNs, gwName] = ref.includes('/') ? ref.split('/', 2) : [vsNs, ref];
      const gw = i.configz.find((r) => r.kind === 'Gateway' && r.metadata.name === gwName && (r.metadata.namespace ?? 'default') === gwNs);
      if (!gw) {
        out.push(`WARNING: VirtualService ${kname(vs, i.namespace)} names gateway ${gwNs}/${gwName}, which does not exist`);
        continue;
      }
      const selector = (gw.spec?.selector ?? {}) as Labels;
      const picked = gateways.filter((p) => selects(selector, (p.metadata.LABELS ?? {}) as Labels));
      if (!picked.length) continue;
      const servers = ((gw.spec?.servers ?? []) as { port?: { number: number; protocol?: string } }[]).filter((s) => ['HTTP', 'HTTP2'].includes(String(s.port?.protocol ?? '').toUpperCase()));
      const urls = [...new Set(picked.flatMap((p) => servers.map((s) => `http://${gatewayAddress(p, s.port!.number)}`)))].sort();
      if (!urls.length) continue;
      out.push('--------------------');
      for (const u of urls) out.push(`Exposed on Ingress Gateway ${u}`);
      printVirtualService(out, L0, vs, host, matching, nonMatching, dr, i.namespace);
    }
  }
}

/** The text istioctl x describe pod prints, for the proxy in `i`. */
export function describePod(i: DescribeInput): string {
  const out: string[] = [];
  const md = i.proxy.metadata;
  const name = podName(i.proxy.node);
  const [pod, ns = String(md.NAMESPACE ?? 'default')] = name.split('.');
  const labels = (md.LABELS ?? {}) as Labels;
  const ports = ((md.RIG_WORKLOAD_PORTS ?? []) as { port: number; name?: string; protocol?: string }[]).map((p) => `${p.port}${p.protocol && p.protocol !== 'TCP' ? `/${p.protocol}` : ''} (${String(md.WORKLOAD_NAME ?? pod)})`);
  const podMeta = { metadata: { name: pod!, namespace: ns } };
  out.push(`Pod: ${kname(podMeta, i.namespace)}`);
  out.push(`${L1}Pod Revision: ${String(md.ISTIO_REVISION ?? 'default')}`);
  out.push(ports.length ? `${L1}Pod Ports: ${ports.join(', ')}` : `${L1}Pod does not expose ports`);
  if (!labels.app && !labels['app.kubernetes.io/name'] && !labels['service.istio.io/canonical-name']) out.push('Suggestion: add required service name label for Istio telemetry. See https://istio.io/latest/docs/ops/deployment/application-requirements/.');
  if (!labels.version && !labels['app.kubernetes.io/version'] && !labels['service.istio.io/canonical-revision']) out.push('Suggestion: add required service revision label for Istio telemetry. See https://istio.io/latest/docs/ops/deployment/application-requirements/.');

  const services = i.configz.filter((r) => r.kind === 'Service' && (r.metadata.namespace ?? 'default') === ns && Object.keys((r.spec?.selector ?? {}) as Labels).length > 0 && selects(r.spec?.selector as Labels, labels));
  if (!services.length) out.push(`Warning: No Kubernetes Services select pod ${kname(podMeta, i.namespace)} (see https://istio.io/docs/setup/kubernetes/additional-setup/requirements/ )`);
  out.push('--------------------');
  const workloadPorts = (md.RIG_WORKLOAD_PORTS ?? []) as { port: number; name?: string }[];
  const drs: (ConfigzEntry | undefined)[] = [];
  services.forEach((svc, row) => {
    if (row) out.push('--------------------');
    const host = `${svc.metadata.name}.${ns}.svc.cluster.local`;
    out.push(`Service: ${kname(svc, i.namespace)}`);
    const svcPorts = (svc.spec?.ports ?? []) as ServicePort[];
    for (const p of svcPorts) {
      if (p.protocol && p.protocol !== 'TCP') continue;
      const target = typeof p.targetPort === 'string' ? workloadPorts.find((w) => w.name === p.targetPort)?.port : (p.targetPort ?? p.port);
      out.push(target === undefined ? `${L1}Error: no pod port named "${String(p.targetPort)}" for service port ${p.port}` : `${L1}Port: ${p.name ?? ''} ${p.port}/${protocolOf(i.registry, host, p)} targets pod port ${target}`);
    }
    const indent = svcPorts.length > 1 ? L1 : L0;
    for (const p of svcPorts) {
      if (svcPorts.length > 1) out.push(`${p.port}:`);
      const dr = find(i.configz, 'DestinationRule', configRef(destinationRuleOf(i.dump, host, p.port)));
      drs.push(dr);
      const { matching, nonMatching } = dr ? subsetsOf(dr, labels) : { matching: [], nonMatching: [] };
      if (dr) printDestinationRule(out, indent, dr, labels, i.namespace);
      const vsRef = configRef(virtualServiceOf(i.dump, host, p.port));
      const vs = find(i.configz, 'VirtualService', vsRef);
      if (vs) printVirtualService(out, indent, vs, host, matching, nonMatching, dr, i.namespace);
      else if (vsRef) out.push(`WARNING: Proxy is stale; it references to non-existent virtual service ${vsRef.name}.${vsRef.namespace}`);
    }
  });

  out.push('--------------------');
  const pa = effectivePeerAuthentication(i.configz, ns, i.rootNamespace, labels);
  out.push('Effective PeerAuthentication:');
  out.push(`${L1}Workload mTLS mode: ${pa.mode}`);
  if (pa.perPort.length) {
    out.push(`${L1}Port Level mTLS mode:`);
    for (const [port, mode] of pa.perPort) out.push(`${L2}${port}: ${mode}`);
  }
  printApplied(out, 'PeerAuthentication', pa.applied);
  printApplied(out, 'AuthorizationPolicy', authorizationPolicies(i.configz, ns, i.rootNamespace, labels));

  services.forEach((svc, row) => printIngress(out, i, `${svc.metadata.name}.${ns}.svc.cluster.local`, labels, drs[row]));
  return out.join('\n') + '\n';
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
export async function describePodFromControlPlane(base: string, name: string, o: { namespace?: string; rootNamespace: string }): Promise<string> {
  const [proxies, configz, registry] = await Promise.all([getJson(base, 'debug/adsz') as Promise<AdszEntry[]>, getJson(base, 'debug/configz') as Promise<ConfigzEntry[]>, getJson(base, 'debug/registryz') as Promise<RegistryService[]>]);
  const proxy = findProxy(proxies, name, o.namespace);
  const dump = (await getJson(base, `debug/config_dump?proxyID=${encodeURIComponent(proxy.node)}`)) as EnvoyJson;
  return describePod({ proxy, proxies, configz, registry, dump, namespace: o.namespace ?? 'default', rootNamespace: o.rootNamespace });
}
