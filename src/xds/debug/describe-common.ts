// The pieces `rig x describe pod` and `rig x describe service` share, as istioctl's describe.go
// shares them: the control plane's debug data they read (/debug/adsz, /debug/configz,
// /debug/registryz, /debug/endpointz, /debug/mesh), which DestinationRule and VirtualService a
// proxy's config (/debug/config_dump) says apply to a service port, and how they, a Service's
// ports, the effective mTLS mode and the ingress gateways exposing a service are printed.
import type { EnvoyJson } from '../../envoy/index.ts';
import type { ConfigzEntry } from './resource-table.ts';
import { getJson, rootNamespace } from './controlplane-client.ts';

export type Labels = Record<string, string>;
type Spec = Record<string, unknown>;

export interface AdszEntry {
  node: string;
  metadata: Record<string, unknown>;
  /** The proxy's last report of its workload's readiness probe (istio.io/health). */
  workload_health?: { healthy: boolean; message?: string };
}

export interface RegistryService {
  hostname: string;
  name: string;
  namespace: string;
  ports: { name?: string; port: number; protocol: string }[];
}

/** One endpoint of /debug/endpointz (host → service port → endpoints). */
export interface RegistryEndpoint {
  address: string;
  port: number;
  labels?: Labels;
  namespace?: string;
  workloadName?: string;
  tlsMode?: string;
}

/** What the control plane serves, as describe reads it. */
export interface MeshView {
  /** Every connected proxy (the ingress gateways among them). */
  proxies: AdszEntry[];
  configz: ConfigzEntry[];
  registry: RegistryService[];
  /** The namespace names are printed relative to (istioctl's -n); Istio's root namespace for mesh-wide policies. */
  namespace: string;
  rootNamespace: string;
}

export interface WorkloadPort {
  port: number;
  name?: string;
  protocol?: string;
}

export const L0 = '';
export const L1 = '   ';
export const L2 = '      ';
export const SEPARATOR = '--------------------';

export const podName = (node: string) => node.split('~')[2] ?? node;
export const labelsOf = (p: AdszEntry) => (p.metadata.LABELS ?? {}) as Labels;
export const workloadPortsOf = (p: AdszEntry) => (p.metadata.RIG_WORKLOAD_PORTS ?? []) as WorkloadPort[];
export const namespaceOf = (p: AdszEntry) => podName(p.node).split('.')[1] ?? String(p.metadata.NAMESPACE ?? 'default');
export const isSidecar = (p: AdszEntry) => p.node.startsWith('sidecar~');
export const isReady = (p: AdszEntry) => p.workload_health?.healthy !== false;

/** istioctl's "WARNING: Pod … NOT READY", with why its readiness probe fails. */
export function notReadyWarning(p: AdszEntry, namespace: string): string {
  const why = p.workload_health?.message;
  return `WARNING: Pod ${kname({ metadata: { name: podName(p.node).split('.')[0]!, namespace: namespaceOf(p) } }, namespace)} NOT READY${why ? ` (${why})` : ''}`;
}

/** Reads the control plane's view; the root namespace is the mesh config's unless given. */
export async function readMeshView(base: string, o: { namespace?: string; rootNamespace?: string }): Promise<MeshView> {
  const [proxies, configz, registry, root] = await Promise.all([
    getJson(base, 'debug/adsz') as Promise<AdszEntry[]>,
    getJson(base, 'debug/configz') as Promise<ConfigzEntry[]>,
    getJson(base, 'debug/registryz') as Promise<RegistryService[]>,
    o.rootNamespace ?? rootNamespace(base),
  ]);
  return { proxies, configz, registry, namespace: o.namespace ?? 'default', rootNamespace: root };
}

export function selects(selector: Labels | undefined, labels: Labels): boolean {
  return Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);
}

export function fqdn(host: string, namespace: string): string {
  if (host.startsWith('*') || host.includes('.svc.') || host.split('.').length > 2) return host;
  return host.includes('.') ? `${host}.svc.cluster.local` : `${host}.${namespace}.svc.cluster.local`;
}

/** Resources of a kind, oldest first (Istio's tie-break among policies). */
export function ofKind(c: ConfigzEntry[], kind: string): ConfigzEntry[] {
  return c.filter((r) => r.kind === kind).sort((a, b) => String(a.metadata.creationTimestamp ?? '').localeCompare(String(b.metadata.creationTimestamp ?? '')) || a.metadata.name.localeCompare(b.metadata.name));
}

export function kname(r: { metadata: { name: string; namespace?: string } }, namespace: string): string {
  return r.metadata.namespace === namespace || !r.metadata.namespace ? r.metadata.name : `${r.metadata.name}.${r.metadata.namespace}`;
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

function find(c: ConfigzEntry[], kind: string, ref: { namespace: string; name: string } | undefined): ConfigzEntry | undefined {
  return ref && c.find((r) => r.kind === kind && r.metadata.name === ref.name && (r.metadata.namespace ?? 'default') === ref.namespace);
}

/** istioctl's getDestRuleSubsets: subsets matching any of the pods' labels, and the others. */
export function subsetsOf(dr: ConfigzEntry | undefined, pods: Labels[]): { matching: string[]; nonMatching: string[] } {
  const matching: string[] = [];
  const nonMatching: string[] = [];
  for (const s of ((dr?.spec?.subsets ?? []) as { name: string; labels?: Labels }[])) (pods.some((l) => selects(s.labels, l)) ? matching : nonMatching).push(s.name);
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

function printDestinationRule(out: string[], indent: string, dr: ConfigzEntry, pods: Labels[], namespace: string): void {
  out.push(`${indent}DestinationRule: ${kname(dr, namespace)} for "${String(dr.spec?.host)}"`);
  const { matching, nonMatching } = subsetsOf(dr, pods);
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

type Destination = { host: string; subset?: string; port?: { number?: number } };

interface HttpRoute {
  match?: Spec[];
  route?: { destination: Destination; weight?: number }[];
  fault?: Spec;
  mirror?: Destination;
  mirrorPercentage?: { value?: number };
  mirrors?: { destination: Destination; percentage?: { value?: number } }[];
}

/** The route's mirrors (mirror/mirrorPercentage and mirrors[]), a fact istioctl leaves out. */
function mirrorFacts(route: HttpRoute): string[] {
  const all = [...(route.mirror ? [{ destination: route.mirror, percentage: route.mirrorPercentage }] : []), ...(route.mirrors ?? [])];
  return all.map(({ destination: d, percentage }) => `Mirror to host "${d.host}"${d.subset ? ` subset "${d.subset}"` : ''} (${percentage?.value ?? 100}% of requests)`);
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
    facts.push(...mirrorFacts(route));
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

export const serviceHost = (svc: ConfigzEntry) => `${svc.metadata.name}.${svc.metadata.namespace ?? 'default'}.svc.cluster.local`;

/**
 * istioctl's describePodServices for one Service: its ports (targeting `workloadPorts`, the ports
 * of the pod whose config is read), then for each port the DestinationRule and VirtualService the
 * proxy's config `dump` says apply, subsets matched against every pod of `pods`. Returns the
 * DestinationRule of each port (for printIngress).
 */
export function printServiceConfig(out: string[], v: MeshView, svc: ConfigzEntry, workloadPorts: WorkloadPort[], pods: Labels[], dump: EnvoyJson): (ConfigzEntry | undefined)[] {
  const host = serviceHost(svc);
  out.push(`Service: ${kname(svc, v.namespace)}`);
  const svcPorts = (svc.spec?.ports ?? []) as ServicePort[];
  for (const p of svcPorts) {
    if (p.protocol && p.protocol !== 'TCP') continue;
    const target = typeof p.targetPort === 'string' ? workloadPorts.find((w) => w.name === p.targetPort)?.port : (p.targetPort ?? p.port);
    out.push(target === undefined ? `${L1}Error: no pod port named "${String(p.targetPort)}" for service port ${p.port}` : `${L1}Port: ${p.name ?? ''} ${p.port}/${protocolOf(v.registry, host, p)} targets pod port ${target}`);
  }
  const indent = svcPorts.length > 1 ? L1 : L0;
  return svcPorts.map((p) => {
    if (svcPorts.length > 1) out.push(`${p.port}:`);
    const dr = find(v.configz, 'DestinationRule', configRef(destinationRuleOf(dump, host, p.port)));
    const { matching, nonMatching } = subsetsOf(dr, pods);
    if (dr) printDestinationRule(out, indent, dr, pods, v.namespace);
    const vsRef = configRef(virtualServiceOf(dump, host, p.port));
    const vs = find(v.configz, 'VirtualService', vsRef);
    if (vs) printVirtualService(out, indent, vs, host, matching, nonMatching, dr, v.namespace);
    else if (vsRef) out.push(`WARNING: Proxy is stale; it references to non-existent virtual service ${vsRef.name}.${vsRef.namespace}`);
    return dr;
  });
}

export interface EffectiveMtls {
  mode: string;
  perPort: [string, string][];
  applied: ConfigzEntry[];
}

/** Istio's ComposePeerAuthentication: workload (selector), then namespace, then mesh (root namespace), PERMISSIVE by default. */
export function effectivePeerAuthentication(c: ConfigzEntry[], namespace: string, root: string, labels: Labels): EffectiveMtls {
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

/** describe pod's "Effective PeerAuthentication:" block (the workload mode, then port level modes). */
export function printEffectiveMtls(out: string[], pa: EffectiveMtls, title = 'Effective PeerAuthentication:'): void {
  out.push(title);
  out.push(`${L1}Workload mTLS mode: ${pa.mode}`);
  if (pa.perPort.length) {
    out.push(`${L1}Port Level mTLS mode:`);
    for (const [port, mode] of pa.perPort) out.push(`${L2}${port}: ${mode}`);
  }
}

/** Where a gateway proxy accepts a Gateway server port from this host: its explicit-mode host port, or its address. */
function gatewayAddress(proxy: AdszEntry, port: number): string {
  const explicit = proxy.metadata.RIG_EXPLICIT as { bind?: string; inboundPorts?: Record<string, number> } | undefined;
  const ip = explicit?.bind ?? String(proxy.metadata.INSTANCE_IPS ?? 'unknown').split(',')[0];
  const hostPort = explicit?.inboundPorts?.[String(port)] ?? port;
  return hostPort === 80 ? ip! : `${ip}:${hostPort}`;
}

/** istioctl's printIngressInfo: the Gateways (bound by a VirtualService routing to the service) whose selector picks an ingress gateway proxy. */
export function printIngress(out: string[], v: MeshView, host: string, pods: Labels[], dr: ConfigzEntry | undefined): void {
  const gateways = v.proxies.filter((p) => p.node.startsWith('router~'));
  if (!gateways.length) return;
  const { matching, nonMatching } = subsetsOf(dr, pods);
  for (const vs of ofKind(v.configz, 'VirtualService')) {
    const vsNs = vs.metadata.namespace ?? 'default';
    const http = (vs.spec?.http ?? []) as HttpRoute[];
    if (!http.some((r) => (r.route ?? []).some((d) => fqdn(d.destination.host, vsNs) === host))) continue;
    for (const ref of (vs.spec?.gateways ?? []) as string[]) {
      if (ref === 'mesh') continue;
      const [gwNs, gwName] = ref.includes('/') ? ref.split('/', 2) : [vsNs, ref];
      const gw = v.configz.find((r) => r.kind === 'Gateway' && r.metadata.name === gwName && (r.metadata.namespace ?? 'default') === gwNs);
      if (!gw) {
        out.push(`WARNING: VirtualService ${kname(vs, v.namespace)} names gateway ${gwNs}/${gwName}, which does not exist`);
        continue;
      }
      const selector = (gw.spec?.selector ?? {}) as Labels;
      const picked = gateways.filter((p) => selects(selector, labelsOf(p)));
      if (!picked.length) continue;
      const servers = ((gw.spec?.servers ?? []) as { port?: { number: number; protocol?: string } }[]).filter((s) => ['HTTP', 'HTTP2'].includes(String(s.port?.protocol ?? '').toUpperCase()));
      const urls = [...new Set(picked.flatMap((p) => servers.map((s) => `http://${gatewayAddress(p, s.port!.number)}`)))].sort();
      if (!urls.length) continue;
      out.push(SEPARATOR);
      for (const u of urls) out.push(`Exposed on Ingress Gateway ${u}`);
      printVirtualService(out, L0, vs, host, matching, nonMatching, dr, v.namespace);
    }
  }
}
