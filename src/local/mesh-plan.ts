// From the configuration to the processes of a local mesh: every Workload replica (its app and
// its sidecar, with the loopback ports they use), the gateways that Istio Gateway resources select
// and one gateway per Gateway API Gateway of class istio.
import { parse as parseYaml } from 'yaml';
import { GATEWAY_NAME_LABEL, workloadCwd, type GatewayApi, type Resource, type WorkloadSpec } from '../api/index.ts';
import { deployedListeners, namespaceLabelsOf } from '../model/gateway-api/gateways.ts';
import type { ProxyDefaults } from '../model/mesh-config.ts';

export const INGRESS_LABELS = { istio: 'ingressgateway', app: 'istio-ingressgateway' } as const;
export const EGRESS_LABELS = { istio: 'egressgateway', app: 'istio-egressgateway' } as const;
export const GATEWAY_NAMESPACE = 'istio-system';

/**
 * Upstreams reached through a local port of the sidecar instead of HTTP_PROXY, for clients that
 * do not honour proxies: `sidecar.rigging.dev/upstreams: "ratings:9080, details.default:9080"`.
 */
export const UPSTREAMS_ANNOTATION = 'sidecar.rigging.dev/upstreams';

/** The `host:port` entries of the annotation; throws naming the bad entry. */
export function parseUpstreams(value: string | undefined): string[] {
  const out: string[] = [];
  for (const item of (value ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?):(\d{1,5})$/i.exec(item);
    if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) throw new Error(`annotation ${UPSTREAMS_ANNOTATION}: "${item}" is not HOST:PORT (e.g. ratings:9080)`);
    out.push(item);
  }
  return out;
}

/**
 * Istio's pod annotation with the sidecar's ProxyConfig (YAML or JSON). rig up applies its
 * proxyMetadata, the sidecar's extra environment (e.g. ISTIO_META_HTTP10: "1", node metadata; merged
 * with the ProxyConfig resources' environmentVariables, see effective-proxy-config.ts), its
 * concurrency (merged the same way; rig proxy runs one event loop, which is said) and its
 * proxyStatsMatcher (over MeshConfig defaultConfig's, see proxy-stats-env.ts); any other
 * ProxyConfig field is refused by name rather than ignored.
 */
export const PROXY_CONFIG_ANNOTATION = 'proxy.istio.io/config';

/** The pod annotations that replace proxyStatsMatcher's lists (comma-separated), as Istio's agent reads them. */
export const STATS_INCLUSION_ANNOTATIONS = ['sidecar.istio.io/statsInclusionPrefixes', 'sidecar.istio.io/statsInclusionSuffixes', 'sidecar.istio.io/statsInclusionRegexps'];

export type ProxyStatsMatcher = NonNullable<ProxyDefaults['proxyStatsMatcher']>;

export interface ProxyConfigAnnotation {
  proxyMetadata: Record<string, string>;
  concurrency?: number;
  proxyStatsMatcher?: ProxyStatsMatcher;
}

const STATS_MATCHER_LISTS = ['inclusionPrefixes', 'inclusionSuffixes', 'inclusionRegexps'];

/** The proxyMetadata and proxyStatsMatcher of the annotation; throws naming what is wrong. */
export function parseProxyConfigAnnotation(value: string | undefined): ProxyConfigAnnotation {
  if (value === undefined || value.trim() === '') return { proxyMetadata: {} };
  let doc: unknown;
  try {
    doc = parseYaml(value);
  } catch (err) {
    throw new Error(`annotation ${PROXY_CONFIG_ANNOTATION}: not YAML or JSON (${(err as Error).message.split('\n')[0]})`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`annotation ${PROXY_CONFIG_ANNOTATION}: must be a ProxyConfig object, e.g. {"proxyMetadata": {"ISTIO_META_HTTP10": "1"}}`);
  const other = Object.keys(doc).filter((k) => !['proxyMetadata', 'proxyStatsMatcher', 'concurrency'].includes(k));
  if (other.length) throw new Error(`annotation ${PROXY_CONFIG_ANNOTATION}: ${other.map((k) => `"${k}"`).join(', ')} not supported by rig up (only proxyMetadata, proxyStatsMatcher and concurrency)`);
  const concurrency = (doc as { concurrency?: unknown }).concurrency;
  if (concurrency !== undefined && !(Number.isInteger(concurrency) && (concurrency as number) >= 0)) throw new Error(`annotation ${PROXY_CONFIG_ANNOTATION}: concurrency must be a whole number >= 0 (worker threads, 0: one per core)`);
  const sm = (doc as { proxyStatsMatcher?: unknown }).proxyStatsMatcher;
  if (sm !== undefined) {
    if (sm === null || typeof sm !== 'object' || Array.isArray(sm)) throw new Error(`annotation ${PROXY_CONFIG_ANNOTATION}: proxyStatsMatcher must be an object with ${STATS_MATCHER_LISTS.join(', ')}`);
    for (const [k, v] of Object.entries(sm)) {
      if (!STATS_MATCHER_LISTS.includes(k)) throw new Error(`annotation ${PROXY_CONFIG_ANNOTATION}: proxyStatsMatcher.${k} is not a field of Istio's ProxyStatsMatcher (${STATS_MATCHER_LISTS.join(', ')})`);
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`annotation ${PROXY_CONFIG_ANNOTATION}: proxyStatsMatcher.${k} must be a list of strings`);
    }
  }
  const md = (doc as { proxyMetadata?: unknown }).proxyMetadata ?? {};
  if (md === null || typeof md !== 'object' || Array.isArray(md)) throw new Error(`annotation ${PROXY_CONFIG_ANNOTATION}: proxyMetadata must be a map of strings`);
  for (const [k, v] of Object.entries(md)) {
    if (typeof v !== 'string') throw new Error(`annotation ${PROXY_CONFIG_ANNOTATION}: proxyMetadata.${k} must be a string (quote it: "${String(v)}")`);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`annotation ${PROXY_CONFIG_ANNOTATION}: proxyMetadata "${k}" is not an environment variable name`);
  }
  return { proxyMetadata: md as Record<string, string>, concurrency: concurrency as number | undefined, proxyStatsMatcher: sm as ProxyStatsMatcher | undefined };
}

export interface ReplicaPlan {
  /** `reviews-v1-0`: the workload name and the replica's index, like a pod name. */
  name: string;
  workload: string;
  namespace: string;
  index: number;
  /** How many replicas the Workload has. */
  replicas: number;
  labels: Record<string, string>;
  serviceAccount: string;
  spec: WorkloadSpec;
  /** The annotation's upstreams, `host:port` (see UPSTREAMS_ANNOTATION). */
  upstreams: string[];
  /** PROXY_CONFIG_ANNOTATION proxyMetadata: one level of the sidecar's environment (effective-proxy-config.ts). */
  proxyMetadata: Record<string, string>;
  /** PROXY_CONFIG_ANNOTATION concurrency, one level of the sidecar's (effective-proxy-config.ts). */
  proxyConcurrency?: number;
  /** PROXY_CONFIG_ANNOTATION proxyStatsMatcher and the STATS_INCLUSION_ANNOTATIONS set on the Workload. */
  proxyStats?: { matcher?: ProxyStatsMatcher; annotations: Record<string, string> };
  /** Why this replica cannot start (reported as its state), if anything. */
  problem?: string;
  /** The directory the app runs in (spec.cwd relative to the file that declared the Workload). */
  cwd: string;
  source?: string;
  /** A fingerprint of everything that, when changed, requires restarting this replica. */
  fingerprint: string;
}

export interface GatewayPlan {
  /** istio-ingressgateway, istio-egressgateway, or `<name>-istio` for a Gateway API Gateway. */
  name: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount: string;
  /** Gateway server (or listener) ports declared for this gateway. */
  ports: number[];
  /** The protocol of each port (HTTP, HTTPS, TLS, TCP...), as the Gateway declares it first. */
  protocols: Record<number, string>;
}

/** The GatewayClass whose Gateways Istio (and `rig up`) deploys. */
export const ISTIO_GATEWAY_CLASS = 'istio';

export function workloadReplicas(resources: readonly Resource[]): ReplicaPlan[] {
  const out: ReplicaPlan[] = [];
  for (const r of resources) {
    if (r.kind !== 'Workload') continue;
    const spec = r.spec as unknown as WorkloadSpec;
    const cwd = workloadCwd({ spec, source: r.source });
    const labels = { ...(r.metadata.labels ?? {}) };
    let upstreams: string[] = [];
    let proxyMetadata: Record<string, string> = {};
    let proxyConcurrency: number | undefined;
    let matcher: ProxyStatsMatcher | undefined;
    let problem: string | undefined;
    try {
      upstreams = parseUpstreams(r.metadata.annotations?.[UPSTREAMS_ANNOTATION]);
      ({ proxyMetadata, concurrency: proxyConcurrency, proxyStatsMatcher: matcher } = parseProxyConfigAnnotation(r.metadata.annotations?.[PROXY_CONFIG_ANNOTATION]));
    } catch (err) {
      problem = (err as Error).message;
    }
    const annotations = Object.fromEntries(STATS_INCLUSION_ANNOTATIONS.flatMap((a) => (r.metadata.annotations?.[a] !== undefined ? [[a, r.metadata.annotations[a]]] : [])));
    const proxyStats = { matcher, annotations };
    const fingerprint = JSON.stringify({ spec: { ...spec, replicas: undefined }, labels, cwd, ns: r.metadata.namespace, upstreams, proxyMetadata, proxyConcurrency, proxyStats });
    for (let i = 0; i < (spec.replicas ?? 1); i++) {
      out.push({
        name: `${r.metadata.name}-${i}`,
        workload: r.metadata.name,
        namespace: r.metadata.namespace,
        index: i,
        replicas: spec.replicas ?? 1,
        labels,
        serviceAccount: spec.serviceAccount ?? 'default',
        spec,
        upstreams,
        proxyMetadata,
        proxyConcurrency,
        proxyStats,
        problem,
        cwd,
        source: r.source ? `${r.source.file}:${r.source.line}` : undefined,
        fingerprint,
      });
    }
  }
  return out;
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/**
 * The gateways to run: ingress always (when `ingress` is set), egress when a Gateway selects it,
 * and one per Gateway API Gateway of class istio, named and labelled as Istio's automated
 * deployment does (`<name>-istio`, `gateway.networking.k8s.io/gateway-name: <name>`), with the
 * ports of its listeners and of the ListenerSets it allows.
 */
export function gatewayPlans(resources: readonly Resource[], opts: { ingress: boolean }): GatewayPlan[] {
  const plans: GatewayPlan[] = [];
  for (const [name, labels] of [
    ['istio-ingressgateway', INGRESS_LABELS],
    ['istio-egressgateway', EGRESS_LABELS],
  ] as const) {
    const protocols: Record<number, string> = {};
    let selected = false;
    for (const r of resources) {
      if (r.kind !== 'Gateway') continue;
      const spec = r.spec as { selector?: Record<string, string>; servers?: { port?: { number?: number; protocol?: string } }[] };
      if (!selects(spec.selector, labels)) continue;
      selected = true;
      for (const s of spec.servers ?? []) if (s.port?.number) protocols[s.port.number] ??= s.port.protocol ?? 'TCP';
    }
    if (selected || (name === 'istio-ingressgateway' && opts.ingress)) {
      plans.push({ name, namespace: GATEWAY_NAMESPACE, labels: { ...labels }, serviceAccount: `${name}-service-account`, ports: sortedPorts(protocols), protocols });
    }
  }
  const namespaceLabels = namespaceLabelsOf(resources);
  for (const r of resources) {
    if (r.kind !== 'KubernetesGateway') continue;
    const gw = r as unknown as Resource<GatewayApi.KubernetesGatewaySpec>;
    if (gw.spec.gatewayClassName !== ISTIO_GATEWAY_CLASS) continue;
    const protocols: Record<number, string> = {};
    for (const l of deployedListeners(gw, resources, namespaceLabels)) if (l.port) protocols[l.port] ??= l.protocol;
    const name = `${r.metadata.name}-${ISTIO_GATEWAY_CLASS}`;
    plans.push({
      name,
      namespace: r.metadata.namespace ?? 'default',
      labels: { [GATEWAY_NAME_LABEL]: r.metadata.name, 'istio.io/gateway-name': r.metadata.name, 'service.istio.io/canonical-name': name },
      serviceAccount: name,
      ports: sortedPorts(protocols),
      protocols,
    });
  }
  return plans;
}

function sortedPorts(protocols: Record<number, string>): number[] {
  return Object.keys(protocols).map(Number).sort((a, b) => a - b);
}
