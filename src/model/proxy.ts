// A connected proxy as the control plane sees it: parsed from the xDS node (id + Istio metadata,
// plus Rigging's explicit-mode keys; see docs/CONTRACTS.md §3). Bad metadata is an error naming
// the key, so a misconfigured proxy is told why it was refused.
import { parseGatewayTopology, type GatewayTopology } from './gateway-topology.ts';
import { parseProxyHeaders, type ProxyHeaders } from './proxy-headers.ts';
import { NETWORK_LABEL } from './network.ts';
import { localityFromLabels } from './service.ts';

export type ProxyType = 'sidecar' | 'router';

export interface WorkloadPortDecl {
  port: number;
  name?: string;
  protocol?: string;
}

export interface ExplicitConfig {
  bind: string;
  outboundPort: number;
  inboundPorts: Record<string, number>;
  appPorts: Record<string, number>;
  upstreamPorts: Record<string, number>;
}

export interface Proxy {
  /** The full node id, e.g. `sidecar~10.0.0.1~reviews-v1-0.default~default.svc.cluster.local`. */
  id: string;
  type: ProxyType;
  ipAddresses: string[];
  /** `<pod>.<namespace>`: what proxy-status prints. */
  name: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount: string;
  workloadName: string;
  clusterId: string;
  istioVersion: string;
  interceptionMode: 'REDIRECT' | 'TPROXY' | 'NONE';
  /** `region/zone/subzone`: node.locality, else from the labels (istio-locality, topology.kubernetes.io/region|zone, topology.istio.io/subzone). */
  locality: string;
  /** Its network (Istio's NETWORK metadata, ISTIO_META_NETWORK; else its `topology.istio.io/network` label); '' when unknown. */
  network: string;
  /** Istio's REQUESTED_NETWORK_VIEW: the only networks whose endpoints it gets (with those of no network) in a multi-network mesh; empty: all. */
  networkView: string[];
  /** The WorkloadGroup (in the proxy's namespace) it registers under: Istio's AUTO_REGISTER_GROUP (alias WORKLOAD_GROUP). */
  workloadGroup?: string;
  /**
   * The existing WorkloadEntry (in the proxy's namespace) it stands for: Istio's WORKLOAD_ENTRY. That
   * entry is its endpoint (the proxy is not registered from its metadata), and its health reports
   * apply to the entry when it is annotated `proxy.istio.io/health-checks-enabled`.
   */
  workloadEntry?: string;
  /**
   * Its agent runs a readiness probe (PROXY_CONFIG.readinessProbe) and reports the workload's
   * health over ADS: the workload is an endpoint only while its last report said healthy (Istio's
   * `proxy.istio.io/health-checks-enabled` WorkloadEntry).
   */
  healthChecked: boolean;
  /** Its own PROXY_CONFIG.gatewayTopology (Istio's `proxy.istio.io/config` annotation); used for routers only. */
  gatewayTopology?: GatewayTopology;
  /** Its own PROXY_CONFIG.proxyHeaders, over the mesh default's (see proxy-headers.ts). */
  proxyHeaders?: ProxyHeaders;
  /** `grpc` for proxyless gRPC clients. */
  generator?: string;
  workloadPorts: WorkloadPortDecl[];
  explicit?: ExplicitConfig;
  metadata: Record<string, unknown>;
}

export class NodeError extends Error {}

function str(v: unknown, key: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new NodeError(`node metadata ${key} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function portNumber(v: unknown, key: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) throw new NodeError(`node metadata ${key} must be a port number (0-65535), got ${JSON.stringify(v)}`);
  return n;
}

function portMap(v: unknown, key: string): Record<string, number> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new NodeError(`node metadata ${key} must be an object of port → port`);
  const out: Record<string, number> = {};
  for (const [k, p] of Object.entries(v)) out[k] = portNumber(p, `${key}.${k}`);
  return out;
}

function stringMap(v: unknown, key: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new NodeError(`node metadata ${key} must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, s] of Object.entries(v)) out[k] = String(s);
  return out;
}

/** Metadata values may arrive as JSON strings (Istio's agent flattens some); accept both. */
function maybeJson(v: unknown): unknown {
  if (typeof v === 'string' && (v.startsWith('{') || v.startsWith('['))) {
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  }
  return v;
}

function parseWorkloadPorts(v: unknown): WorkloadPortDecl[] {
  v = maybeJson(v);
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new NodeError('node metadata RIG_WORKLOAD_PORTS must be a list of { port, name?, protocol? }');
  return v.map((p, i) => {
    if (typeof p !== 'object' || p === null) throw new NodeError(`node metadata RIG_WORKLOAD_PORTS[${i}] must be an object`);
    const o = p as Record<string, unknown>;
    return { port: portNumber(o.port, `RIG_WORKLOAD_PORTS[${i}].port`), name: str(o.name, `RIG_WORKLOAD_PORTS[${i}].name`), protocol: str(o.protocol, `RIG_WORKLOAD_PORTS[${i}].protocol`) };
  });
}

function parseExplicit(v: unknown): ExplicitConfig | undefined {
  v = maybeJson(v);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new NodeError('node metadata RIG_EXPLICIT must be an object { bind, outboundPort, inboundPorts, appPorts, upstreamPorts? }');
  const o = v as Record<string, unknown>;
  return {
    bind: str(o.bind, 'RIG_EXPLICIT.bind') ?? '127.0.0.1',
    outboundPort: o.outboundPort === undefined ? 0 : portNumber(o.outboundPort, 'RIG_EXPLICIT.outboundPort'),
    inboundPorts: portMap(o.inboundPorts, 'RIG_EXPLICIT.inboundPorts'),
    appPorts: portMap(o.appPorts, 'RIG_EXPLICIT.appPorts'),
    upstreamPorts: portMap(o.upstreamPorts, 'RIG_EXPLICIT.upstreamPorts'),
  };
}

function nodeLocality(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'object' || Array.isArray(v)) throw new NodeError('node.locality must be an object { region, zone, sub_zone }');
  const l = v as Record<string, unknown>;
  const parts = [str(l.region, 'locality.region') ?? '', str(l.zone, 'locality.zone') ?? '', str(l.sub_zone ?? l.subZone, 'locality.sub_zone') ?? ''];
  while (parts.length && parts[parts.length - 1] === '') parts.pop();
  return parts.join('/');
}

/** Parses an xDS node (JSON shape: `{ id, cluster, metadata }`) into a Proxy; throws NodeError on bad input. */
export function parseNode(node: unknown): Proxy {
  if (!node || typeof node !== 'object') throw new NodeError('the first DiscoveryRequest must carry a node');
  const n = node as { id?: unknown; metadata?: unknown; locality?: unknown };
  if (typeof n.id !== 'string' || n.id === '') throw new NodeError('node.id is missing');
  const md = (n.metadata && typeof n.metadata === 'object' ? n.metadata : {}) as Record<string, unknown>;
  const parts = n.id.split('~');
  let type: ProxyType = 'sidecar';
  let ip: string | undefined;
  let podDotNs: string | undefined;
  if (parts.length === 4) {
    if (parts[0] !== 'sidecar' && parts[0] !== 'router') throw new NodeError(`node.id "${n.id}": type must be sidecar or router`);
    type = parts[0];
    ip = parts[1] || undefined;
    podDotNs = parts[2];
  } else if (md.NAMESPACE === undefined) {
    throw new NodeError(`node.id "${n.id}" is not of the form sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local and metadata has no NAMESPACE`);
  }
  const namespace = str(md.NAMESPACE, 'NAMESPACE') ?? podDotNs?.slice(podDotNs.indexOf('.') + 1) ?? 'default';
  const ipsText = str(md.INSTANCE_IPS, 'INSTANCE_IPS');
  const ipAddresses = ipsText ? ipsText.split(',').map((s) => s.trim()).filter(Boolean) : ip ? [ip] : [];
  const labels = stringMap(maybeJson(md.LABELS), 'LABELS');
  const mode = str(md.INTERCEPTION_MODE, 'INTERCEPTION_MODE') ?? (md.RIG_EXPLICIT ? 'NONE' : 'REDIRECT');
  if (mode !== 'REDIRECT' && mode !== 'TPROXY' && mode !== 'NONE') throw new NodeError(`node metadata INTERCEPTION_MODE must be REDIRECT, TPROXY or NONE, got "${mode}"`);
  const explicit = parseExplicit(md.RIG_EXPLICIT);
  if (explicit && mode !== 'NONE') throw new NodeError('node metadata RIG_EXPLICIT requires INTERCEPTION_MODE NONE');
  const workloadName = str(md.WORKLOAD_NAME, 'WORKLOAD_NAME') ?? labels.app ?? podDotNs?.split('.')[0] ?? n.id;
  const podName = podDotNs ? podDotNs.slice(0, podDotNs.lastIndexOf('.') > 0 ? podDotNs.lastIndexOf('.') : undefined) : workloadName;
  const generator = str(md.GENERATOR, 'GENERATOR');
  const proxyConfig = maybeJson(md.PROXY_CONFIG);
  if (proxyConfig !== undefined && proxyConfig !== null && (typeof proxyConfig !== 'object' || Array.isArray(proxyConfig))) throw new NodeError('node metadata PROXY_CONFIG must be an object (Istio\'s ProxyConfig)');
  const configErrors: string[] = [];
  const pc = proxyConfig as { gatewayTopology?: unknown; proxyHeaders?: unknown } | undefined;
  const gatewayTopology = parseGatewayTopology(pc?.gatewayTopology, 'node metadata PROXY_CONFIG.gatewayTopology', configErrors);
  const proxyHeaders = parseProxyHeaders(pc?.proxyHeaders, 'node metadata PROXY_CONFIG.proxyHeaders', configErrors);
  if (configErrors.length) throw new NodeError(configErrors.join('; '));
  return {
    id: n.id,
    type,
    ipAddresses,
    name: `${podName}.${namespace}`,
    namespace,
    labels,
    serviceAccount: str(md.SERVICE_ACCOUNT, 'SERVICE_ACCOUNT') ?? 'default',
    workloadName,
    clusterId: str(md.CLUSTER_ID, 'CLUSTER_ID') ?? 'Kubernetes',
    // Sent by Istio's agent and by rig proxy (the Istio release Rigging follows); without it, none (istiod's
    // proxyVersion match then fails), not the node's user_agent_version (Envoy's or grpc's own version).
    istioVersion: str(md.ISTIO_VERSION, 'ISTIO_VERSION') ?? '',
    interceptionMode: mode,
    locality: nodeLocality(n.locality) || localityFromLabels(labels),
    network: str(md.NETWORK, 'NETWORK') ?? labels[NETWORK_LABEL] ?? '',
    networkView: (str(md.REQUESTED_NETWORK_VIEW, 'REQUESTED_NETWORK_VIEW') ?? '').split(',').map((n) => n.trim()).filter(Boolean),
    generator,
    healthChecked: ((proxyConfig ?? {}) as { readinessProbe?: unknown }).readinessProbe != null,
    gatewayTopology,
    proxyHeaders,
    workloadGroup: str(md.AUTO_REGISTER_GROUP, 'AUTO_REGISTER_GROUP') ?? str(md.WORKLOAD_GROUP, 'WORKLOAD_GROUP'),
    workloadEntry: str(md.WORKLOAD_ENTRY, 'WORKLOAD_ENTRY'),
    workloadPorts: parseWorkloadPorts(md.RIG_WORKLOAD_PORTS),
    explicit,
    metadata: md,
  };
}

/** The SPIFFE identity of a workload. */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
