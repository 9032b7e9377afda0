// Cross-resource analysis like `istioctl analyze`: references that resolve to nothing,
// conflicting VirtualServices, selectors that select nothing, ports without a protocol.
import { isDeepStrictEqual } from 'node:util';
import type { Diagnostic } from '../diagnostic.ts';
import { formatPath } from '../diagnostic.ts';
import { describeResource } from '../kinds.ts';
import type { Resource } from '../resource.ts';
import type { FieldPath } from '../source-map.ts';
import { locatorOf } from '../source-map.ts';
import type * as T from '../index.ts';
import { missingGatewayTargets, type AttachableSpec } from '../policy-targets.ts';
import { portProtocol } from '../validation/rules.ts';
import { hostCovers } from '../validation/virtual-service.ts';
import type { MessageName } from './messages.ts';
import { MESSAGES } from './messages.ts';

export interface AnalyzeOptions {
  /** Istio's root namespace: policies there apply mesh-wide (default istio-system). */
  rootNamespace?: string;
  /** The cluster's DNS domain (default cluster.local). */
  domain?: string;
  /**
   * Running workloads beside those the resources declare (Workload, WorkloadEntry, WorkloadGroup):
   * the proxies connected to a live control plane, so selectors that match one select something.
   */
  workloads?: readonly RunningWorkload[];
}

export interface RunningWorkload {
  namespace: string;
  labels: Record<string, string>;
}

export function analyze(resources: readonly Resource[], opts: AnalyzeOptions = {}): Diagnostic[] {
  return new Analysis(resources, opts).run();
}

class Analysis {
  readonly out: Diagnostic[] = [];
  readonly resources: readonly Resource[];
  readonly root: string;
  readonly domain: string;
  /** FQDN → Service, for Kubernetes Services. */
  readonly services = new Map<string, Resource<T.ServiceSpec>>();
  readonly entries: Resource<T.ServiceEntrySpec>[];
  readonly workloads: RunningWorkload[];

  constructor(resources: readonly Resource[], opts: AnalyzeOptions) {
    this.resources = resources;
    this.root = opts.rootNamespace ?? 'istio-system';
    this.domain = opts.domain ?? 'cluster.local';
    for (const s of this.of<T.ServiceSpec>('Service')) this.services.set(`${s.metadata.name}.${s.metadata.namespace}.svc.${this.domain}`, s);
    this.entries = this.of<T.ServiceEntrySpec>('ServiceEntry');
    this.workloads = [
      ...this.of('Workload').map((w) => ({ namespace: w.metadata.namespace, labels: w.metadata.labels ?? {} })),
      ...this.of<T.WorkloadEntrySpec>('WorkloadEntry').map((w) => ({ namespace: w.metadata.namespace, labels: { ...(w.metadata.labels ?? {}), ...(w.spec.labels ?? {}) } })),
      ...this.of<T.WorkloadGroupSpec>('WorkloadGroup').map((w) => ({ namespace: w.metadata.namespace, labels: { ...(w.spec.metadata?.labels ?? {}), ...(w.spec.template.labels ?? {}) } })),
      ...(opts.workloads ?? []),
    ];
  }

  of<S>(kind: Resource['kind']): Resource<S>[] {
    return this.resources.filter((r) => r.kind === kind) as unknown as Resource<S>[];
  }

  report(name: MessageName, r: Resource<unknown>, path: FieldPath, message: string, hint?: string, level = MESSAGES[name].level as Diagnostic['severity']): void {
    this.out.push({ severity: level, code: MESSAGES[name].code, message, hint, source: locatorOf(r)?.locate(path) ?? r.source, resource: describeResource(r), path: path.length ? formatPath(path) : undefined });
  }

  run(): Diagnostic[] {
    this.virtualServices();
    this.destinationRules();
    this.gateways();
    this.gatewayPorts();
    this.serviceEntries();
    this.selectors();
    this.servicePorts();
    this.singletons('Sidecar', 'workloadSelector', 'MultipleSidecarsWithoutWorkloadSelectors');
    this.singletons('Telemetry', 'selector', 'MultipleTelemetriesWithoutWorkloadSelectors');
    this.envoyFilterOrder();
    this.policyTargets();
    return this.out;
  }

  /** A targetRef to a Gateway API Gateway that is not in the policy's namespace attaches the policy to nothing. */
  policyTargets(): void {
    const gateways = new Set(this.of('KubernetesGateway').map((g) => `${g.metadata.namespace}/${g.metadata.name}`));
    for (const kind of ['AuthorizationPolicy', 'RequestAuthentication', 'Telemetry', 'WasmPlugin'] as const) {
      for (const p of this.of<AttachableSpec>(kind)) {
        for (const n of missingGatewayTargets(kind, p.metadata.namespace, p.spec ?? {}, (ns, name) => gateways.has(`${ns}/${name}`))) this.report('ReferencedResourceNotFound', p, n.path, n.message, n.hint, 'Warning');
      }
    }
  }

  /** Istio's IST0151: a patch relative to config another EnvoyFilter may add needs a priority to apply in a known order. */
  envoyFilterOrder(): void {
    const relative = new Set(['MERGE', 'REMOVE', 'INSERT_BEFORE', 'INSERT_AFTER', 'REPLACE']);
    for (const f of this.of<T.EnvoyFilterSpec>('EnvoyFilter')) {
      if (f.spec.priority) continue;
      const i = (f.spec.configPatches ?? []).findIndex((p) => relative.has(p.patch?.operation ?? ''));
      if (i >= 0) this.report('EnvoyFilterUsesRelativeOperation', f, ['spec', 'configPatches', i, 'patch', 'operation'], 'This EnvoyFilter does not have a priority and has a relative patch operation set which can cause the EnvoyFilter not to be applied', 'set spec.priority, or use ADD or INSERT_FIRST');
    }
  }

  /** `reviews` → reviews.<ns>.svc.cluster.local; `reviews.other` → reviews.other.svc.cluster.local. */
  fqdn(host: string, namespace: string): string {
    if (host.includes('*')) return host;
    const parts = host.split('.');
    if (parts.length === 1) return `${host}.${namespace}.svc.${this.domain}`;
    if (parts.length === 2) return `${host}.svc.${this.domain}`;
    return host;
  }

  /** The service a host names: a Kubernetes Service, a ServiceEntry, or nothing. */
  lookup(host: string, namespace: string): { service?: Resource<T.ServiceSpec>; entry?: Resource<T.ServiceEntrySpec> } | undefined {
    const fq = this.fqdn(host, namespace);
    const service = this.services.get(fq);
    if (service) return { service };
    const entry = this.entries.find((e) => e.spec.hosts.some((h) => hostCovers(h, host) || hostCovers(h, fq) || this.fqdn(h, e.metadata.namespace) === fq));
    if (entry) return { entry };
    return undefined;
  }

  virtualServices(): void {
    const vss = this.of<T.VirtualServiceSpec>('VirtualService');
    const gateways = this.of<T.GatewaySpec>('Gateway');
    const rules = this.of<T.DestinationRuleSpec>('DestinationRule');
    const meshHosts = new Map<string, Resource<T.VirtualServiceSpec>>();
    const gatewayHosts = new Map<string, Resource<T.VirtualServiceSpec>>();
    for (const vs of vss) {
      const ns = vs.metadata.namespace;
      const gws = vs.spec.gateways ?? [];
      const mesh = gws.length === 0 || gws.includes('mesh');
      for (const [i, host] of (vs.spec.hosts ?? []).entries()) {
        const fq = this.fqdn(host, ns);
        if (mesh && !host.includes('*') && !this.lookup(host, ns)) {
          this.report('ReferencedResourceNotFound', vs, ['spec', 'hosts', i], `Referenced host not found: "${host}" (no Service or ServiceEntry defines it, so the mesh has no traffic to route for it)`, 'define a Service or ServiceEntry for this host, fix the name, or bind the VirtualService to a gateway', 'Warning');
        }
        if (mesh) {
          const other = meshHosts.get(fq);
          if (other) this.report('ConflictingMeshGatewayVirtualServiceHosts', vs, ['spec', 'hosts', i], `The VirtualServices ${describe(other)} and ${describe(vs)} associated with mesh gateway define the same host ${fq}, which leads to undefined behavior`, 'merge the conflicting VirtualServices into a single resource');
          else meshHosts.set(fq, vs);
        }
        for (const g of gws.filter((g) => g !== 'mesh')) {
          const key = `${this.gatewayKey(g, ns)}|${fq}`;
          const other = gatewayHosts.get(key);
          if (other) this.report('ConflictingMeshGatewayVirtualServiceHosts', vs, ['spec', 'hosts', i], `The VirtualServices ${describe(other)} and ${describe(vs)} bound to gateway ${this.gatewayKey(g, ns)} define the same host ${host}; their routes are merged in an undefined order`, 'merge them into one VirtualService', 'Warning');
          else gatewayHosts.set(key, vs);
        }
      }
      gws.forEach((g, i) => {
        if (g === 'mesh') return;
        const key = this.gatewayKey(g, ns);
        const gw = gateways.find((x) => `${x.metadata.namespace}/${x.metadata.name}` === key);
        if (!gw) return this.report('ReferencedResourceNotFound', vs, ['spec', 'gateways', i], `Referenced gateway not found: "${g}"`, `define Gateway ${key}, or fix the name`);
        const unmatched = (vs.spec.hosts ?? []).filter((h) => !gw.spec.servers?.some((s) => s.hosts.some((sh) => this.gatewayHostCovers(sh, h, gw.metadata.namespace, ns))));
        if (unmatched.length) this.report('VirtualServiceHostNotFoundInGateway', vs, ['spec', 'hosts'], `one or more host [${unmatched.join(', ')}] defined in VirtualService ${describe(vs)} not found in Gateway ${key}`, 'add the host to one of the gateway\'s servers, or remove it from the VirtualService');
      });
      const checkDest = (d: T.Destination, path: FieldPath) => {
        const found = this.lookup(d.host, ns);
        if (!found) {
          this.report('ReferencedResourceNotFound', vs, [...path, 'host'], `Referenced host not found: "${d.host}"`, this.elsewhere(d.host, ns) ?? 'define a Service or ServiceEntry for this host, or fix the name');
          return;
        }
        if (d.subset !== undefined) {
          const fq = this.fqdn(d.host, ns);
          const defined = rules.some((dr) => this.fqdn(dr.spec.host, dr.metadata.namespace) === fq && dr.spec.subsets?.some((s) => s.name === d.subset));
          if (!defined) this.report('ReferencedResourceNotFound', vs, [...path, 'subset'], `Referenced host+subset in destinationrule not found: "${d.host}+${d.subset}"`, `define subset ${d.subset} in a DestinationRule for ${d.host}`);
        }
        const ports = found.service?.spec.ports ?? [];
        if (!d.port && ports.length > 1) this.report('VirtualServiceDestinationPortSelectorRequired', vs, path, `This VirtualService routes to a service "${d.host}" that exposes multiple ports [${ports.map((p) => p.port).join(' ')}]; specifying a port in the destination is required to disambiguate`, 'add port: { number: N } to the destination');
        if (d.port?.number !== undefined && found.service && !ports.some((p) => p.port === d.port?.number)) this.report('ReferencedResourceNotFound', vs, [...path, 'port'], `Referenced port ${d.port.number} not found on service "${d.host}"`, `use one of its ports: ${ports.map((p) => p.port).join(', ')}`);
      };
      vs.spec.http?.forEach((h, i) => {
        h.route?.forEach((rd, j) => checkDest(rd.destination, ['spec', 'http', i, 'route', j, 'destination']));
        if (h.mirror) checkDest(h.mirror, ['spec', 'http', i, 'mirror']);
        h.mirrors?.forEach((m, j) => checkDest(m.destination, ['spec', 'http', i, 'mirrors', j, 'destination']));
      });
      for (const proto of ['tcp', 'tls'] as const) {
        vs.spec[proto]?.forEach((t, i) => t.route?.forEach((rd, j) => checkDest(rd.destination, ['spec', proto, i, 'route', j, 'destination'])));
      }
      this.ineffectiveMatches(vs);
    }
  }

  destinationRules(): void {
    for (const dr of this.of<T.DestinationRuleSpec>('DestinationRule')) {
      if (dr.spec.host.includes('*') || this.lookup(dr.spec.host, dr.metadata.namespace)) continue;
      this.report('ReferencedResourceNotFound', dr, ['spec', 'host'], `Referenced host not found: "${dr.spec.host}"; this DestinationRule applies to nothing`, 'define a Service or ServiceEntry for this host, or fix the name', 'Warning');
    }
  }

  /** Two Gateways on the same workloads (same selector) serving one host on one port: Envoy gets conflicting listeners. */
  gateways(): void {
    const gws = this.of<T.GatewaySpec>('Gateway');
    const hostOf = (h: string) => (h.includes('/') ? h.slice(h.indexOf('/') + 1) : h);
    gws.forEach((gw, i) => {
      for (const earlier of gws.slice(0, i)) {
        if (!isDeepStrictEqual(gw.spec.selector ?? {}, earlier.spec.selector ?? {})) continue;
        gw.spec.servers?.forEach((s, j) => {
          const clash = earlier.spec.servers?.find((o) => o.port.number === s.port.number && o.hosts.some((oh) => s.hosts.some((h) => hostCovers(hostOf(oh), hostOf(h)) || hostCovers(hostOf(h), hostOf(oh)))));
          if (!clash) return;
          const selector = Object.entries(gw.spec.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
          this.report('ConflictingGateways', gw, ['spec', 'servers', j], `Conflict with gateways ${describe(earlier)} (workload selector ${selector}, port ${s.port.number}, hosts ${s.hosts.join(',')})`, 'serve each host and port from one Gateway, or use distinct hosts');
        });
      }
    });
  }

  /**
   * Istio's IST0162: a Gateway server port that no Service of the gateway's workloads leads to
   * (a Service's targetPort, else its port, reaches the workload), so it cannot be reached through
   * the gateway's Service. Only for gateways whose workloads the analysis knows (Workloads,
   * WorkloadEntries, connected proxies); those it does not are the selectors check's concern.
   */
  gatewayPorts(): void {
    const services = this.of<T.ServiceSpec>('Service').filter((s) => s.spec.selector && Object.keys(s.spec.selector).length);
    for (const gw of this.of<T.GatewaySpec>('Gateway')) {
      const selector = gw.spec.selector ?? {};
      if (!Object.keys(selector).length) continue;
      const pods = this.workloads.filter((w) => matches(selector, w.labels));
      if (!pods.length) continue;
      const reached = new Set<number>();
      for (const s of services) {
        if (!pods.some((p) => p.namespace === s.metadata.namespace && matches(s.spec.selector!, p.labels))) continue;
        for (const p of s.spec.ports ?? []) if ((p.protocol ?? 'TCP') === 'TCP') reached.add(typeof p.targetPort === 'number' ? p.targetPort : p.port);
      }
      const shown = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
      gw.spec.servers?.forEach((s, j) => {
        if (reached.has(s.port.number)) return;
        this.report('GatewayPortNotDefinedOnService', gw, ['spec', 'servers', j, 'port', 'number'], `The gateway is listening on a target port (port ${s.port.number}) that is not defined in the Service associated with its workload instances (Pod selector ${shown}). If you need to access the gateway port through the gateway Service, it will not be available.`, `add port ${s.port.number} (or a targetPort ${s.port.number}) to the Service selecting ${shown}, or serve a port it has`);
      });
    }
  }

  /** A TCP port without addresses captures that port for every destination (Istio's IST0134). */
  serviceEntries(): void {
    for (const se of this.entries) {
      if (se.spec.addresses?.length) continue;
      se.spec.ports?.forEach((p, i) => {
        if (p.protocol && p.protocol.toUpperCase() !== 'TCP') return;
        this.report('ServiceEntryAddressesRequired', se, ['spec', 'ports', i], `ServiceEntry addresses are required for this protocol (port ${p.number}, ${p.protocol ?? 'no protocol'})`, 'add spec.addresses with the service\'s IP addresses, or declare an application protocol (HTTP, TLS…)');
      });
    }
  }

  /** A hint when a short name misses because the Service lives in another namespace. */
  elsewhere(host: string, ns: string): string | undefined {
    if (host.includes('.') || host.includes('*')) return undefined;
    const found = [...this.services.values()].filter((s) => s.metadata.name === host && s.metadata.namespace !== ns);
    if (!found.length) return undefined;
    return `a short name means ${host}.${ns}.svc.${this.domain}; a Service ${host} exists in ${found.map((s) => `namespace ${s.metadata.namespace} (${host}.${s.metadata.namespace}.svc.${this.domain})`).join(', ')}: use its full name`;
  }

  gatewayKey(ref: string, ns: string): string {
    return ref.includes('/') ? ref : `${ns}/${ref}`;
  }

  gatewayHostCovers(serverHost: string, vsHost: string, gwNs: string, vsNs: string): boolean {
    const slash = serverHost.indexOf('/');
    const ns = slash >= 0 ? serverHost.slice(0, slash) : '*';
    const host = slash >= 0 ? serverHost.slice(slash + 1) : serverHost;
    if (ns !== '*' && (ns === '.' ? gwNs : ns) !== vsNs) return false;
    return hostCovers(host, vsHost) || hostCovers(vsHost, host);
  }

  ineffectiveMatches(vs: Resource<T.VirtualServiceSpec>): void {
    const seen: { match: T.HTTPMatchRequest; rule: number }[] = [];
    let catchAll: number | undefined;
    vs.spec.http?.forEach((h, i) => {
      const matches = h.match ?? [];
      if (catchAll !== undefined) {
        this.report('VirtualServiceIneffectiveMatch', vs, ['spec', 'http', i], `VirtualService rule #${i} is not used (rule #${catchAll} before it matches every request)`, 'move the catch-all rule last, or remove this rule');
        return;
      }
      matches.forEach((m, j) => {
        const earlier = seen.find((s) => isDeepStrictEqual(withoutName(s.match), withoutName(m)));
        if (earlier) this.report('VirtualServiceIneffectiveMatch', vs, ['spec', 'http', i, 'match', j], `VirtualService rule #${i} match #${j} is not used (duplicate match in rule #${earlier.rule})`, 'remove the duplicate match');
        seen.push({ match: m, rule: i });
      });
      if (matches.length === 0 || matches.some((m) => Object.keys(withoutName(m)).length === 0 || isDeepStrictEqual(withoutName(m), { uri: { prefix: '/' } }))) catchAll = i;
    });
  }

  selectors(): void {
    const check = (r: Resource<unknown>, labels: Record<string, string> | undefined, path: FieldPath, anyNamespace = false, ownNamespaceOnly = false) => {
      if (!labels || Object.keys(labels).length === 0) return;
      const ns = r.metadata.namespace;
      // Only where the workloads are part of the analyzed configuration; elsewhere they run outside it.
      if (!this.workloads.some((w) => w.namespace === ns)) return;
      const everywhere = anyNamespace || (ns === this.root && !ownNamespaceOnly);
      const matched = this.workloads.some((w) => (everywhere || w.namespace === ns) && Object.entries(labels).every(([k, v]) => w.labels[k] === v));
      if (!matched) this.report('NoMatchingWorkloadsFound', r, path, `No matching workloads for this resource with the following labels: ${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',')}`, 'fix the labels, or start a workload that has them');
    };
    for (const dr of this.of<T.DestinationRuleSpec>('DestinationRule')) check(dr, dr.spec.workloadSelector?.matchLabels, ['spec', 'workloadSelector', 'matchLabels']);
    for (const kind of ['PeerAuthentication', 'RequestAuthentication', 'AuthorizationPolicy', 'Telemetry', 'WasmPlugin'] as const) {
      for (const p of this.of<{ selector?: T.WorkloadSelector }>(kind)) check(p, p.spec.selector?.matchLabels, ['spec', 'selector', 'matchLabels']);
    }
    // istiod matches a ProxyConfig's selector in its own namespace only, the root namespace's as well.
    for (const p of this.of<T.ProxyConfigSpec>('ProxyConfig')) check(p, p.spec.selector?.matchLabels, ['spec', 'selector', 'matchLabels'], false, true);
    for (const s of this.of<T.SidecarSpec>('Sidecar')) check(s, s.spec.workloadSelector?.labels, ['spec', 'workloadSelector', 'labels']);
    for (const f of this.of<T.EnvoyFilterSpec>('EnvoyFilter')) check(f, f.spec.workloadSelector?.labels, ['spec', 'workloadSelector', 'labels']);
    // The built-in gateways (istio: ingressgateway / egressgateway) are started by the mesh itself.
    const builtIn = (sel?: Record<string, string>) => sel?.istio === 'ingressgateway' || sel?.istio === 'egressgateway';
    for (const g of this.of<T.GatewaySpec>('Gateway')) if (!builtIn(g.spec.selector)) check(g, g.spec.selector, ['spec', 'selector'], true);
  }

  servicePorts(): void {
    for (const s of this.of<T.ServiceSpec>('Service')) {
      s.spec.ports?.forEach((p, i) => {
        if (portProtocol(p.name, p.appProtocol)) return;
        this.report('PortNameIsNotUnderNamingConvention', s, ['spec', 'ports', i], `Port name ${p.name ?? '(unnamed)'} (port: ${p.port}, targetPort: ${p.targetPort ?? p.port}) doesn't follow the naming convention of Istio port`, 'name the port <protocol>[-<suffix>] (http, http2, grpc, tcp, tls, ...) or set appProtocol');
      });
    }
  }

  singletons(kind: 'Sidecar' | 'Telemetry', field: string, name: MessageName): void {
    const byNs = new Map<string, Resource<Record<string, unknown>>[]>();
    for (const r of this.of<Record<string, unknown>>(kind)) {
      if (r.spec[field] !== undefined || (kind === 'Telemetry' && (r.spec.targetRef !== undefined || r.spec.targetRefs !== undefined))) continue;
      byNs.set(r.metadata.namespace, [...(byNs.get(r.metadata.namespace) ?? []), r]);
    }
    for (const [ns, list] of byNs) {
      if (list.length < 2) continue;
      for (const r of list) this.report(name, r, [], `The ${kind}s ${list.map((x) => x.metadata.name).join(', ')} in namespace ${ns} have no workload selector; only one may be the namespace default`, 'keep one without a selector, give the others selectors');
    }
  }
}

function describe(r: Resource<unknown>): string {
  return `${r.metadata.namespace}/${r.metadata.name}`;
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function withoutName(m: T.HTTPMatchRequest): Omit<T.HTTPMatchRequest, 'name'> {
  const { name: _name, ...rest } = m;
  return rest;
}
