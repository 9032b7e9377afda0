// The mesh's view of services and their endpoints, independent of where they came from
// (Kubernetes Service, ServiceEntry, WorkloadEntry, auto-registered proxies).

export type Protocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'GRPC-Web' | 'HTTPS' | 'TLS' | 'TCP' | 'MONGO' | 'REDIS' | 'MYSQL' | 'UDP' | 'UNKNOWN';

export type Resolution = 'ClientSideLB' | 'DNS' | 'DNSRoundRobin' | 'Passthrough';

export interface ServicePort {
  name: string;
  port: number;
  protocol: Protocol;
  /** Kubernetes targetPort (number or container port name) / ServiceEntry targetPort. */
  targetPort?: number | string;
}

export interface Service {
  /** `Service` or `ServiceEntry`. */
  source: 'Service' | 'ServiceEntry';
  hostname: string;
  /** Kubernetes name (for a ServiceEntry: the host). */
  name: string;
  namespace: string;
  /** The VIP (configured or allocated); `0.0.0.0` for wildcard hosts and headless services. */
  address: string;
  ports: ServicePort[];
  resolution: Resolution;
  meshExternal: boolean;
  /** Namespaces the service is visible in (`*` for all, `~` for none). */
  exportTo: string[];
  selector?: Record<string, string>;
  labels: Record<string, string>;
  subjectAltNames: string[];
}

export interface Endpoint {
  address: string;
  /** The port the endpoint is reached at for this service port. */
  port: number;
  /** The workload's own port behind `port` (differs in explicit mode); PeerAuthentication portLevelMtls keys on it. */
  workloadPort: number;
  servicePort: number;
  hostname: string;
  labels: Record<string, string>;
  namespace: string;
  serviceAccount: string;
  workloadName: string;
  /** `istio` when the endpoint has a sidecar that speaks Istio mTLS. */
  tlsMode: 'istio' | 'disabled';
  locality: string;
  weight: number;
  healthy: boolean;
  /** Its own network (WorkloadEntry/ServiceEntry endpoint `network`, its proxy's, its `topology.istio.io/network` label); see MeshNetworkView.networkOf for the rest. */
  network?: string;
  /** Stands for a network's gateway in a split-horizon assignment (always reached with Istio mTLS). */
  networkGateway?: boolean;
}

/** Istio's `istio-locality` label (`region.zone.subzone`), else the Kubernetes topology labels (region, zone) and Istio's subzone label; `region/zone/subzone`. */
export function localityFromLabels(labels: Record<string, string>): string {
  const own = labels['istio-locality'] ?? labels['topology.istio.io/locality'];
  if (own) return own.replaceAll('.', '/');
  const parts = [labels['topology.kubernetes.io/region'] ?? '', labels['topology.kubernetes.io/zone'] ?? '', labels['topology.istio.io/subzone'] ?? ''];
  while (parts.length && parts[parts.length - 1] === '') parts.pop();
  return parts.join('/');
}

/** Istio's protocol selection: appProtocol first, then the port name prefix (`http-web`, `grpc`…). */
export function protocolOf(name: string | undefined, appProtocol?: string, explicit?: string): Protocol {
  if (explicit) return normalizeProtocol(explicit);
  if (appProtocol) {
    const a = appProtocol.toLowerCase();
    if (a === 'kubernetes.io/h2c') return 'HTTP2';
    if (a === 'kubernetes.io/ws' || a === 'kubernetes.io/wss') return 'HTTP';
    const p = normalizeProtocol(a);
    if (p !== 'UNKNOWN') return p;
  }
  if (!name) return 'UNKNOWN';
  const prefix = name.toLowerCase().split('-')[0];
  return normalizeProtocol(prefix);
}

export function normalizeProtocol(p: string): Protocol {
  switch (p.toLowerCase()) {
    case 'http':
      return 'HTTP';
    case 'http2':
      return 'HTTP2';
    case 'grpc':
      return 'GRPC';
    case 'grpc-web':
      return 'GRPC-Web';
    case 'https':
      return 'HTTPS';
    case 'tls':
      return 'TLS';
    case 'tcp':
      return 'TCP';
    case 'mongo':
      return 'MONGO';
    case 'redis':
      return 'REDIS';
    case 'mysql':
      return 'MYSQL';
    case 'udp':
      return 'UDP';
    default:
      return 'UNKNOWN';
  }
}

export function isHttpProtocol(p: Protocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-Web';
}

export function isHttp2Protocol(p: Protocol): boolean {
  return p === 'HTTP2' || p === 'GRPC';
}

/** True when every selector label is present with the same value (an empty selector selects nothing). */
export function selectorMatches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  const keys = Object.keys(selector);
  if (keys.length === 0) return false;
  return keys.every((k) => labels[k] === selector[k]);
}

/** Labels match for subsets and policies: an empty/absent set matches everything. */
export function labelsMatch(want: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!want) return true;
  for (const k in want) if (labels[k] !== want[k]) return false;
  return true;
}

/** Istio host matching: `*.example.com` matches `a.example.com`; `*` matches everything. */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*' || pattern === host) return true;
  if (pattern.startsWith('*')) return host.endsWith(pattern.slice(1));
  return false;
}

/** Two host patterns intersect (either may be a wildcard). */
export function hostsIntersect(a: string, b: string): boolean {
  return hostMatches(a, b) || hostMatches(b, a);
}

/** Resolves a config host as Istio does: a name without dots (`reviews`) means `reviews.<namespace>.svc.<suffix>`. */
export function resolveShortName(host: string, namespace: string, domainSuffix = 'cluster.local'): string {
  if (host === '*' || host.includes('.')) return host;
  return `${host}.${namespace}.svc.${domainSuffix}`;
}

/** Visibility under exportTo, from the point of view of a proxy in `namespace`. */
export function isExportedTo(exportTo: readonly string[] | undefined, ownNamespace: string, namespace: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  for (const e of exportTo) {
    if (e === '*' || e === namespace) return true;
    if (e === '.' && ownNamespace === namespace) return true;
  }
  return false;
}
