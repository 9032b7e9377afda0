// The ProxyConfig a sidecar starts with, merged as istiod does for its injector
// (pilot/pkg/model/proxy_config.go, EffectiveProxyConfig), lowest precedence first:
//   MeshConfig defaultConfig < the root namespace's ProxyConfig without selector (mesh-wide)
//   < the workload namespace's ProxyConfig without selector < the pod's proxy.istio.io/config
//   annotation < the namespace's first ProxyConfig whose selector matches the workload.
// At each level only the oldest matching ProxyConfig counts (creation time, then name). Each level
// replaces concurrency when it sets it; environment variables (Istio's proxyMetadata) merge name by
// name. A selector without matchLabels matches nothing, and is not namespace-wide either.
// As in Istio, the result applies when a proxy starts: a running sidecar keeps what it started with.
import { describeResource, sortedByCreation, type ProxyConfigSpec, type Resource } from '../api/index.ts';
import type { ProxyDefaults } from '../model/mesh-config.ts';

export interface ProxyConfigTarget {
  namespace: string;
  labels: Record<string, string>;
  /** The pod's proxy.istio.io/config annotation: its proxyMetadata and concurrency. */
  annotation?: { proxyMetadata: Record<string, string>; concurrency?: number };
}

export interface EffectiveProxyConfig {
  /** The proxy's extra environment; ISTIO_META_* become its node metadata (rig proxy, as Istio's agent). */
  environmentVariables: Record<string, string>;
  concurrency?: number;
  /** Where concurrency came from (`ProxyConfig ns/name`, `MeshConfig defaultConfig`), for messages. */
  concurrencyFrom?: string;
  /** The ProxyConfig resources that applied, lowest precedence first. */
  applied: string[];
}

interface Level {
  from: string;
  concurrency?: number | null;
  environmentVariables?: Record<string, string>;
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

export function effectiveProxyConfig(resources: readonly Resource[], target: ProxyConfigTarget, mesh: { rootNamespace: string; defaultConfig?: ProxyDefaults }): EffectiveProxyConfig {
  const configs = sortedByCreation(resources.filter((r) => r.kind === 'ProxyConfig')) as unknown as Resource<ProxyConfigSpec>[];
  const namespaceWide = (ns: string) => configs.find((r) => r.metadata.namespace === ns && r.spec.selector === undefined);
  const level = (r: Resource<ProxyConfigSpec> | undefined): Level | undefined => r && { from: describeResource(r), ...r.spec };
  const forWorkload = configs.find((r) => {
    const labels = r.spec.selector?.matchLabels ?? {};
    return r.metadata.namespace === target.namespace && Object.keys(labels).length > 0 && matches(labels, target.labels);
  });
  const levels: (Level | undefined)[] = [
    mesh.defaultConfig && { from: 'MeshConfig defaultConfig', concurrency: mesh.defaultConfig.concurrency, environmentVariables: mesh.defaultConfig.proxyMetadata },
    level(namespaceWide(mesh.rootNamespace)),
    target.namespace !== mesh.rootNamespace ? level(namespaceWide(target.namespace)) : undefined,
    target.annotation && { from: 'annotation proxy.istio.io/config', environmentVariables: target.annotation.proxyMetadata, concurrency: target.annotation.concurrency },
    level(forWorkload),
  ];
  const out: EffectiveProxyConfig = { environmentVariables: {}, applied: [] };
  for (const l of levels) {
    if (!l) continue;
    if (l.from.startsWith('ProxyConfig ')) out.applied.push(l.from);
    Object.assign(out.environmentVariables, l.environmentVariables);
    if (l.concurrency !== undefined && l.concurrency !== null) {
      out.concurrency = l.concurrency;
      out.concurrencyFrom = l.from;
    }
  }
  return out;
}

/** Kubernetes' rule for a container's environment variable names: others would make the injected pod invalid. */
const ENV_VAR_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/**
 * The environment a local proxy starts with from its effective ProxyConfig, as Istio's injector
 * puts environmentVariables into the istio-proxy container. What rig cannot apply is said once per
 * source: a name Kubernetes refuses (left out), a concurrency other than 1 (rig proxy runs one event loop).
 */
export function proxyConfigEnv(pc: EffectiveProxyConfig, proxy: string, noticeOnce: (key: string, line: string) => void): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(pc.environmentVariables)) {
    if (ENV_VAR_NAME.test(name)) env[name] = value;
    else noticeOnce(`proxy-config-env:${name}`, `${proxy}: ProxyConfig environment variable "${name}" is left out: not a name Kubernetes accepts (letters, digits, _ - ., no leading digit)`);
  }
  if (pc.concurrency !== undefined && pc.concurrency !== 1) {
    noticeOnce(`proxy-config-concurrency:${pc.concurrencyFrom}:${pc.concurrency}`, `${proxy}: concurrency ${pc.concurrency} (${pc.concurrencyFrom}) is not applied: rig proxy runs one event loop (one worker thread)`);
  }
  return env;
}
