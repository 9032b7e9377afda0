// Istio's multi-network model (pilot/pkg/model/network.go and the kube registry's network lookup):
// every endpoint and proxy is in a network ('' when none is known), and a network is reached from
// another one through its gateways. The networks come from MeshNetworks (Istio's `meshNetworks`:
// endpoints `fromCidr` / `fromRegistry`, gateways by `address` or `registryServiceName`), the
// `topology.istio.io/network` label (on workloads, on the root namespace for the whole cluster,
// on gateway Services and Gateway API Gateways) and WorkloadEntry / ServiceEntry endpoint `network`.
import { BlockList, isIP } from 'node:net';
import type { GatewayApi, Resource, ServiceSpec } from '../api/index.ts';
import { LISTENER_PROTOCOL_OPTION } from '../api/index.ts';
import { warnOnce } from './config-warnings.ts';
import type { GatewayNameLookup } from './gateway-names.ts';
import type { Endpoint, Service } from './service.ts';

export const NETWORK_LABEL = 'topology.istio.io/network';
/** A gateway Service's label overriding the default gateway port (istiod reads it as a label). */
export const GATEWAY_PORT_LABEL = 'networking.istio.io/gatewayPort';
export const DEFAULT_GATEWAY_PORT = 15443;
/** Istio's GatewayClass of Gateways that only declare another network's gateway address (nothing is deployed for them). */
export const REMOTE_GATEWAY_CLASS = 'istio-remote';
/** The control plane's cluster (istiod's CLUSTER_ID default): what `fromRegistry` names. */
export const LOCAL_CLUSTER_ID = 'Kubernetes';

export interface MeshNetworkEndpoints {
  fromCidr?: string;
  fromRegistry?: string;
}

export interface MeshNetworkGateway {
  address?: string;
  registryServiceName?: string;
  port: number;
  locality?: string;
}

/** Istio's MeshNetworks (`networks: { <name>: { endpoints, gateways } }`). */
export interface MeshNetworks {
  networks: Record<string, { endpoints?: MeshNetworkEndpoints[]; gateways?: MeshNetworkGateway[] }>;
}

export interface NetworkGateway {
  network: string;
  /** '' for MeshNetworks gateways given by address (as istiod: the API has no cluster). */
  cluster: string;
  address: string;
  port: number;
}

/**
 * istiod's IsAutoPassthrough for a Gateway API listener: a TLS listener whose listener-protocol option
 * is `auto-passthrough`, or, on a Gateway labelled with a network, one on the gateway port (15443,
 * or the Gateway's gatewayPort label).
 */
export function isAutoPassthroughListener(gatewayLabels: Record<string, string> | undefined, l: GatewayApi.Listener): boolean {
  if (!l.tls) return false;
  if (l.tls.options?.[LISTENER_PROTOCOL_OPTION] === 'auto-passthrough') return true;
  if (gatewayLabels?.[NETWORK_LABEL] === undefined) return false;
  return String(l.port) === (gatewayLabels[GATEWAY_PORT_LABEL] ?? String(DEFAULT_GATEWAY_PORT));
}

/**
 * The network gateways a Gateway API Gateway labelled with a network declares (istiod's
 * handleGatewayResource, any class): each of its IPAddress or Hostname addresses (the CRD's default
 * type is IPAddress) on each auto-passthrough listener's port.
 */
export function gatewayResourceGateways(gw: Resource<GatewayApi.KubernetesGatewaySpec>): NetworkGateway[] {
  const network = gw.metadata.labels?.[NETWORK_LABEL];
  if (!network) return [];
  const ports = gw.spec.listeners.filter((l) => isAutoPassthroughListener(gw.metadata.labels, l)).map((l) => l.port);
  const addresses = (gw.spec.addresses ?? []).filter((a) => (a.type ?? 'IPAddress') === 'IPAddress' || a.type === 'Hostname');
  return addresses.flatMap((a) => ports.map((port) => ({ network, cluster: LOCAL_CLUSTER_ID, address: a.value, port })));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates Istio's MeshNetworks; every problem is pushed on `errors` with its field path. */
export function parseMeshNetworks(input: unknown, errors: string[]): MeshNetworks | undefined {
  if (input === undefined || input === null) return undefined;
  if (!isObject(input)) {
    errors.push('meshNetworks: expected a mapping { networks: { <name>: { endpoints, gateways } } }');
    return undefined;
  }
  for (const k of Object.keys(input)) if (k !== 'networks') errors.push(`meshNetworks.${k}: unknown field (known: networks)`);
  const nets = input.networks ?? {};
  if (!isObject(nets)) {
    errors.push('meshNetworks.networks: expected a mapping of network name → { endpoints, gateways }');
    return undefined;
  }
  for (const [name, n] of Object.entries(nets)) {
    const at = `meshNetworks.networks.${name}`;
    if (!isObject(n)) {
      errors.push(`${at}: expected { endpoints, gateways }`);
      continue;
    }
    for (const k of Object.keys(n)) if (k !== 'endpoints' && k !== 'gateways') errors.push(`${at}.${k}: unknown field (known: endpoints, gateways)`);
    const eps = n.endpoints ?? [];
    if (!Array.isArray(eps)) errors.push(`${at}.endpoints: expected a list`);
    else
      eps.forEach((e: unknown, i) => {
        const o = isObject(e) ? e : {};
        const set = ['fromCidr', 'fromRegistry'].filter((k) => typeof o[k] === 'string' && o[k] !== '');
        if (set.length !== 1 || Object.keys(o).length !== 1) errors.push(`${at}.endpoints[${i}]: needs exactly one of fromCidr or fromRegistry`);
        else if (typeof o.fromCidr === 'string' && !cidrOk(o.fromCidr)) errors.push(`${at}.endpoints[${i}].fromCidr: ${JSON.stringify(o.fromCidr)} is not a CIDR (e.g. 10.1.0.0/16)`);
      });
    const gws = n.gateways ?? [];
    if (!Array.isArray(gws)) errors.push(`${at}.gateways: expected a list`);
    else
      gws.forEach((g: unknown, i) => {
        const o = isObject(g) ? g : {};
        for (const k of Object.keys(o)) if (!['address', 'registryServiceName', 'port', 'locality'].includes(k)) errors.push(`${at}.gateways[${i}].${k}: unknown field (known: address, registryServiceName, port, locality)`);
        if ((typeof o.address === 'string' && o.address !== '') === (typeof o.registryServiceName === 'string' && o.registryServiceName !== '')) errors.push(`${at}.gateways[${i}]: needs exactly one of address or registryServiceName`);
        if (typeof o.port !== 'number' || !Number.isInteger(o.port) || o.port < 1 || o.port > 65535) errors.push(`${at}.gateways[${i}].port: must be a port number (1-65535), got ${JSON.stringify(o.port)}`);
      });
  }
  return input as unknown as MeshNetworks;
}

function cidrOk(c: string): boolean {
  const [addr, bits, ...rest] = c.split('/');
  const family = isIP(addr ?? '');
  return rest.length === 0 && family !== 0 && /^\d+$/.test(bits ?? '') && Number(bits) <= (family === 4 ? 32 : 128);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * The networks of one push: gateways by network, the network of an endpoint, and istiod's weight
 * scale factor (the least common multiple of the gateway counts per network and per
 * network+cluster, so that an endpoint's weight splits evenly over its network's gateways).
 */
export class MeshNetworkView {
  readonly gateways: readonly NetworkGateway[];
  /** The root namespace's `topology.istio.io/network` label: the whole cluster's network. */
  readonly systemNetwork: string;
  /** The network whose MeshNetworks endpoints say `fromRegistry: Kubernetes`. */
  readonly registryNetwork: string;
  readonly scaleFactor: number;
  /** Why configured gateways are not used (also logged once). */
  readonly unusable: string[] = [];
  readonly #byNetwork = new Map<string, NetworkGateway[]>();
  readonly #cidrs: { network: string; list: BlockList }[] = [];

  /** `names`: the control plane's DNS answers for gateways given by hostname; without it they are not used. */
  constructor(meshNetworks: MeshNetworks | undefined, services: readonly Service[], resources: readonly Resource[], rootNamespace: string, names?: GatewayNameLookup) {
    const nets = Object.entries(meshNetworks?.networks ?? {});
    const rootNs = resources.find((r) => r.kind === 'Namespace' && r.metadata.name === rootNamespace);
    this.systemNetwork = rootNs?.metadata.labels?.[NETWORK_LABEL] ?? '';
    this.registryNetwork = nets.find(([, n]) => n.endpoints?.some((e) => e.fromRegistry === LOCAL_CLUSTER_ID))?.[0] ?? '';
    for (const [network, n] of nets) {
      for (const e of n.endpoints ?? []) {
        if (!e.fromCidr) continue;
        const [addr, bits] = e.fromCidr.split('/');
        const list = new BlockList();
        list.addSubnet(addr!, Number(bits), isIP(addr!) === 6 ? 'ipv6' : 'ipv4');
        this.#cidrs.push({ network, list });
      }
    }
    const specs = new Map(resources.filter((r) => r.kind === 'Service').map((r) => [`${r.metadata.namespace}/${r.metadata.name}`, r as Resource<ServiceSpec>]));
    const externalAddresses = (s: Service) => (s.source === 'Service' ? specs.get(`${s.namespace}/${s.name}`)?.spec?.externalIPs ?? [] : []);
    const found = new Map<string, NetworkGateway>();
    const add = (g: NetworkGateway) => found.set(`${g.network}|${g.cluster}|${g.address}|${g.port}`, g);
    for (const [network, n] of nets) {
      for (const g of n.gateways ?? []) {
        if (g.address) add({ network, cluster: '', address: g.address, port: g.port });
        else {
          const svc = services.find((s) => s.hostname === g.registryServiceName);
          if (svc) for (const address of externalAddresses(svc)) add({ network, cluster: LOCAL_CLUSTER_ID, address, port: g.port });
        }
      }
    }
    // Gateway Services: labelled with the network they front, reached at their external addresses.
    for (const s of services) {
      const network = s.labels[NETWORK_LABEL];
      if (!network) continue;
      const portText = s.labels[GATEWAY_PORT_LABEL];
      const port = portText && /^\d+$/.test(portText) ? Number(portText) : DEFAULT_GATEWAY_PORT;
      if (portText && port === DEFAULT_GATEWAY_PORT && portText !== String(port)) warnOnce('networks', `Service ${s.namespace}/${s.name}: label ${GATEWAY_PORT_LABEL}: "${portText}" is not a port number; the gateway port is ${DEFAULT_GATEWAY_PORT} (as istiod)`);
      for (const address of externalAddresses(s)) add({ network, cluster: LOCAL_CLUSTER_ID, address, port });
    }
    for (const r of resources) if (r.kind === 'KubernetesGateway') gatewayResourceGateways(r as unknown as Resource<GatewayApi.KubernetesGatewaySpec>).forEach(add);
    // Hostnames: one gateway per address they resolve to, as istiod (RESOLVE_HOSTNAME_GATEWAYS).
    const resolved = new Map<string, NetworkGateway>();
    const hostnames = new Set<string>();
    for (const g of found.values()) {
      if (isIP(g.address) !== 0) {
        resolved.set(`${g.network}|${g.cluster}|${g.address}|${g.port}`, g);
        continue;
      }
      hostnames.add(g.address);
      const answer = names?.lookup(g.address);
      const why = !names ? 'the control plane does not resolve gateway hostnames here' : !answer ? 'its DNS answer is awaited' : answer.addresses.length ? undefined : answer.error;
      if (why) {
        this.unusable.push(`network ${g.network}: gateway address ${g.address} is not used: ${why}`);
        if (!names || answer) warnOnce('networks', this.unusable.at(-1)!);
      }
      for (const address of answer?.addresses ?? []) resolved.set(`${g.network}|${g.cluster}|${address}|${g.port}`, { ...g, address });
    }
    names?.retain(hostnames);
    this.gateways = [...resolved.values()].sort((a, b) => (a.address === b.address ? a.port - b.port : a.address < b.address ? -1 : 1));
    const byCluster = new Map<string, number>();
    for (const g of this.gateways) {
      const list = this.#byNetwork.get(g.network);
      if (list) list.push(g);
      else this.#byNetwork.set(g.network, [g]);
      byCluster.set(`${g.network}|${g.cluster}`, (byCluster.get(`${g.network}|${g.cluster}`) ?? 0) + 1);
    }
    let lcm = 1;
    for (const n of [...[...this.#byNetwork.values()].map((l) => l.length), ...byCluster.values()]) lcm = (lcm * n) / gcd(lcm, n);
    this.scaleFactor = lcm;
  }

  /** istiod's IsMultiNetworkEnabled: some network has a gateway. */
  get multiNetwork(): boolean {
    return this.gateways.length > 0;
  }

  /**
   * istiod's selectNetworkGateways for an endpoint of this cluster: the network's gateways in this
   * cluster (gateway Services, registryServiceName) when it has some, else all of the network's.
   */
  gatewaysFor(network: string): readonly NetworkGateway[] {
    const all = this.#byNetwork.get(network) ?? [];
    const local = all.filter((g) => g.cluster === LOCAL_CLUSTER_ID);
    return local.length ? local : all;
  }

  /**
   * An endpoint's network, in istiod's order: its own (WorkloadEntry `network`, workload label),
   * the root namespace's label, MeshNetworks `fromCidr`, then `fromRegistry`.
   */
  networkOf(e: Pick<Endpoint, 'network' | 'address'>): string {
    if (e.network) return e.network;
    if (this.systemNetwork) return this.systemNetwork;
    const family = isIP(e.address);
    if (family) for (const c of this.#cidrs) if (c.list.check(e.address, family === 6 ? 'ipv6' : 'ipv4')) return c.network;
    return this.registryNetwork;
  }
}

/** istiod's InNetwork: the same network, or either unknown. */
export function sameNetwork(a: string, b: string): boolean {
  return a === '' || b === '' || a === b;
}
