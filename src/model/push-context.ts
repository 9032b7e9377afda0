// The push context (Istio's PushContext): an immutable, versioned snapshot of config and
// registry, with the indices generators need. Built once per debounced change; generators read
// only from it. `memo` caches derived values for this snapshot (same inputs, same outputs).
import { sortedByCreation, type Resource } from '../api/index.ts';
import type { DestinationRuleSpec, GatewaySpec, IstioEgressListener, SidecarSpec, VirtualServiceSpec } from '../api/index.ts';
import type { PeerAuthenticationSpec } from '../api/index.ts';
import type { RegistrySnapshot } from '../registry/service-registry.ts';
import type { MeshConfig } from './mesh-config.ts';
import { MeshNetworkView } from './network.ts';
import type { GatewayNameLookup } from './gateway-names.ts';
import type { Endpoint, Service } from './service.ts';
import { hostMatches, isExportedTo, resolveShortName, selectorMatches } from './service.ts';
import type { Proxy } from './proxy.ts';
import { DestinationRuleIndex, pickDestinationRule } from './destination-rule-index.ts';
import type { ConsolidatedDestinationRule, DestinationRuleClient } from './destination-rule-index.ts';
import { hasGatewayApiResources, translateGatewayApi } from './gateway-api/index.ts';
import type { Diagnostic } from '../api/index.ts';

export interface Credential {
  certificateChain?: Buffer;
  privateKey?: Buffer;
  caCertificate?: Buffer;
  /** A kubernetes.io/dockerconfigjson secret's `.dockerconfigjson` (a WasmPlugin's imagePullSecret). */
  dockerConfigJson?: Buffer;
}

/** Looks up a `credentialName` (a Kubernetes TLS secret's stand-in); undefined when absent. */
export type CredentialSource = (name: string) => Credential | undefined;

export interface PushContextInput {
  version: string;
  mesh: MeshConfig;
  resources: readonly Resource[];
  registry: RegistrySnapshot;
  credentials?: CredentialSource;
  /** DNS answers for network gateways given by hostname (see gateway-names.ts). */
  gatewayNames?: GatewayNameLookup;
}

export class PushContext {
  readonly version: string;
  readonly mesh: MeshConfig;
  readonly resources: readonly Resource[];
  readonly services: readonly Service[];
  readonly serviceByHost: ReadonlyMap<string, Service>;
  readonly endpoints: ReadonlyMap<string, ReadonlyMap<number, readonly Endpoint[]>>;
  readonly virtualServices: readonly Resource<VirtualServiceSpec>[];
  readonly destinationRules: readonly Resource<DestinationRuleSpec>[];
  readonly gateways: readonly Resource<GatewaySpec>[];
  readonly sidecars: readonly Resource<SidecarSpec>[];
  readonly peerAuthentications: readonly Resource<PeerAuthenticationSpec>[];
  /** What Istio would report in the status of the snapshot's Gateway API resources (they are translated into `gateways` and `virtualServices`). */
  readonly gatewayApiDiagnostics: readonly Diagnostic[];
  readonly credentials: CredentialSource;
  readonly #gatewayNames: GatewayNameLookup | undefined;
  /** True when some VirtualService matches on sourceLabels (route tables then depend on proxy labels). */
  readonly usesSourceLabels: boolean;
  readonly createdAt = Date.now();
  readonly #memo = new Map<string, unknown>();
  #drIndex: DestinationRuleIndex | undefined;
  readonly #drSelection = new WeakMap<DestinationRuleClient, string>();

  constructor(input: PushContextInput) {
    this.version = input.version;
    this.mesh = input.mesh;
    const sorted = sortedByCreation(input.resources);
    this.resources = sorted;
    this.services = input.registry.services;
    this.serviceByHost = new Map(this.services.map((s) => [s.hostname, s]));
    this.endpoints = input.registry.endpoints;
    const ofKind = <S>(k: string) => sorted.filter((r) => r.kind === k) as Resource<S>[];
    const gatewayApi = hasGatewayApiResources(sorted)
      ? translateGatewayApi({
          resources: sorted,
          hasService: (host) => this.serviceByHost.has(host),
          portProtocol: (host, port) => this.serviceByHost.get(host)?.ports.find((p) => p.port === port)?.protocol,
          servicePortNamed: (host, name) => this.serviceByHost.get(host)?.ports.find((p) => p.name === name)?.port,
          credential: input.credentials,
        })
      : undefined;
    this.virtualServices = [...ofKind<VirtualServiceSpec>('VirtualService'), ...(gatewayApi?.virtualServices ?? [])];
    this.destinationRules = [...ofKind<DestinationRuleSpec>('DestinationRule'), ...(gatewayApi?.destinationRules ?? [])];
    this.gateways = [...ofKind<GatewaySpec>('Gateway'), ...(gatewayApi?.gateways ?? [])];
    this.gatewayApiDiagnostics = gatewayApi?.diagnostics ?? [];
    this.sidecars = ofKind<SidecarSpec>('Sidecar');
    this.peerAuthentications = ofKind<PeerAuthenticationSpec>('PeerAuthentication');
    this.credentials = input.credentials ?? (() => undefined);
    this.#gatewayNames = input.gatewayNames;
    this.usesSourceLabels = this.virtualServices.some((vs) => JSON.stringify(vs.spec).includes('"sourceLabels"'));
  }

  /** Memoizes a derived value for this snapshot. */
  memo<T>(key: string, build: () => T): T {
    const hit = this.#memo.get(key);
    if (hit !== undefined || this.#memo.has(key)) return hit as T;
    const v = build();
    this.#memo.set(key, v);
    return v;
  }

  /** The mesh's networks and their gateways (see network.ts). */
  get networks(): MeshNetworkView {
    return this.memo('networks', () => new MeshNetworkView(this.mesh.meshNetworks, this.services, this.resources, this.mesh.rootNamespace, this.#gatewayNames));
  }

  /** The services defined in `namespace`, in registry order. */
  servicesIn(namespace: string): readonly Service[] {
    const byNs = this.memo('services-by-ns', () => {
      const m = new Map<string, Service[]>();
      for (const s of this.services) {
        const list = m.get(s.namespace);
        if (list) list.push(s);
        else m.set(s.namespace, [s]);
      }
      return m;
    });
    return byNs.get(namespace) ?? [];
  }

  endpointsOf(hostname: string, port: number): readonly Endpoint[] {
    return this.endpoints.get(hostname)?.get(port) ?? [];
  }

  /** The Sidecar resource that applies to a proxy: workload-selecting first, then the namespace default, then the root namespace's. */
  sidecarFor(proxy: Proxy): Resource<SidecarSpec> | undefined {
    const inNs = this.sidecars.filter((s) => s.metadata.namespace === proxy.namespace);
    return (
      inNs.find((s) => s.spec.workloadSelector?.labels && selectorMatches(s.spec.workloadSelector.labels, proxy.labels)) ??
      inNs.find((s) => !s.spec.workloadSelector) ??
      this.sidecars.find((s) => s.metadata.namespace === this.mesh.rootNamespace && !s.spec.workloadSelector)
    );
  }

  outboundMode(proxy: Proxy): 'ALLOW_ANY' | 'REGISTRY_ONLY' {
    return this.sidecarFor(proxy)?.spec.outboundTrafficPolicy?.mode ?? this.mesh.outboundTrafficPolicy.mode;
  }

  /** The services a proxy may see (its clusters): exportTo, then the hosts of any of the Sidecar's egress listeners (`ns/host`, `./*`, `*\/*`). */
  visibleServices(proxy: Proxy): readonly Service[] {
    const sidecar = this.sidecarFor(proxy);
    const key = `visible|${proxy.namespace}|${sidecar ? `${sidecar.metadata.namespace}/${sidecar.metadata.name}` : ''}`;
    return this.memo(key, () => {
      const egress = sidecar?.spec.egress;
      return this.services.filter((s) => {
        if (!isExportedTo(s.exportTo, s.namespace, proxy.namespace)) return false;
        if (!egress?.length) return true;
        // Port 0: a Unix domain socket listener, which reaches every port of its hosts.
        return egress.some((e) => (!e.port?.number || s.ports.some((p) => p.port === e.port!.number)) && egressHostsMatch(e.hosts, s, proxy.namespace));
      });
    });
  }

  /** The Sidecar egress listener that covers `port`: the one for that port, else the catch-all (none: no Sidecar egress, or the port is not covered). */
  egressListenerFor(proxy: Proxy, port: number): IstioEgressListener | undefined {
    const egress = this.sidecarFor(proxy)?.spec.egress;
    return egress?.find((e) => e.port?.number === port) ?? egress?.find((e) => e.port?.number === undefined);
  }

  /** The services whose `port` a proxy reaches (its listeners and routes for that port): the hosts of the egress listener covering the port. */
  servicesForPort(proxy: Proxy, port: number): readonly Service[] {
    const sidecar = this.sidecarFor(proxy);
    if (!sidecar?.spec.egress?.length) return this.visibleServices(proxy);
    return this.memo(`visible-port|${proxy.namespace}|${sidecar.metadata.namespace}/${sidecar.metadata.name}|${port}`, () => {
      const el = this.egressListenerFor(proxy, port);
      return el ? this.visibleServices(proxy).filter((s) => s.ports.some((p) => p.port === port) && egressHostsMatch(el.hosts, s, proxy.namespace)) : [];
    });
  }

  /** The DestinationRule a proxy applies to a host's outbound traffic (see destination-rule-index.ts for istiod's choice). */
  destinationRuleFor(proxy: DestinationRuleClient, service: Service): Resource<DestinationRuleSpec> | undefined {
    return this.destinationRuleEntryFor(proxy, service)?.rule;
  }

  /** The same with the rules it is made of (`from`: an identity for caches). */
  destinationRuleEntryFor(proxy: DestinationRuleClient, service: Service): ConsolidatedDestinationRule | undefined {
    const rules = this.memo(`dr|${proxy.namespace}|${service.hostname}`, () => this.#destinationRuleIndex().rulesFor(proxy.namespace, service.hostname, service.namespace));
    return rules.length ? pickDestinationRule(rules, proxy) : undefined;
  }

  /**
   * Which workload-selecting DestinationRules select a proxy ('' for none, the common case): the
   * proxies of a namespace with the same key get the same rules, so their config can be shared.
   */
  destinationRuleSelection(proxy: DestinationRuleClient): string {
    let key = this.#drSelection.get(proxy);
    if (key === undefined) this.#drSelection.set(proxy, (key = this.#destinationRuleIndex().selectionKey(proxy)));
    return key;
  }

  #destinationRuleIndex(): DestinationRuleIndex {
    return (this.#drIndex ??= new DestinationRuleIndex(this.destinationRules, this.mesh.rootNamespace));
  }

  /** VirtualServices bound to `gateway` (`mesh` for sidecars), exported to the namespace, whose hosts match `host`. */
  virtualServicesFor(namespace: string, gateway: string, host: string): Resource<VirtualServiceSpec>[] {
    return this.virtualServices.filter((vs) => {
      if (!vs.spec.hosts?.length) return false; // delegates are reached only through their parent
      if (!isExportedTo(vs.spec.exportTo, vs.metadata.namespace, namespace)) return false;
      if (!bindsTo(vs, gateway)) return false;
      return vs.spec.hosts.some((h) => hostMatches(resolveShortName(h, vs.metadata.namespace), host));
    });
  }

  delegate(name: string, namespace: string): Resource<VirtualServiceSpec> | undefined {
    return this.virtualServices.find((vs) => vs.metadata.name === name && vs.metadata.namespace === namespace);
  }
}

/** Sidecar egress hosts (`ns/host`: `.` the proxy's namespace, `*` any, `~` none) matching a service. */
export function egressHostsMatch(hosts: readonly string[], s: Service, proxyNamespace: string): boolean {
  return hosts.some((h) => {
    const slash = h.indexOf('/');
    const ns = h.slice(0, slash);
    const host = h.slice(slash + 1);
    const nsOk = ns === '*' || ns === '~' ? ns === '*' : ns === '.' ? s.namespace === proxyNamespace : s.namespace === ns;
    return nsOk && hostMatches(host, s.hostname);
  });
}

/** Whether a VirtualService applies to `gateway` (`mesh`, or `namespace/name` of a Gateway). */
export function bindsTo(vs: Resource<VirtualServiceSpec>, gateway: string): boolean {
  const gws = vs.spec.gateways?.length ? vs.spec.gateways : ['mesh'];
  return gws.some((g) => qualifyGateway(g, vs.metadata.namespace) === gateway);
}

export function qualifyGateway(g: string, namespace: string): string {
  return g === 'mesh' || g.includes('/') ? g : `${namespace}/${g}`;
}
