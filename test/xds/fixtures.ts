// Test fixtures: push contexts built from YAML through the real loader, and proxies as the
// local runtime starts them (explicit mode), as pods (REDIRECT), gateways and proxyless gRPC.
import { isDeepStrictEqual } from 'node:util';
import { loadDocuments, loadPaths } from '../../src/api/index.ts';
import { checkMessage, packAny, unpackAny } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import type { Resource } from '../../src/api/index.ts';
import { DEFAULT_MESH_CONFIG } from '../../src/model/mesh-config.ts';
import type { MeshConfig } from '../../src/model/mesh-config.ts';
import { PushContext } from '../../src/model/push-context.ts';
import type { CredentialSource } from '../../src/model/push-context.ts';
import { parseNode } from '../../src/model/proxy.ts';
import type { Proxy } from '../../src/model/proxy.ts';
import { workloadFromProxy } from '../../src/registry/auto-registration.ts';
import { ServiceRegistry } from '../../src/registry/service-registry.ts';
import { VipAllocator } from '../../src/registry/vip-allocator.ts';

export function parseYaml(text: string): Resource[] {
  const r = loadDocuments(text, 'test.yaml');
  const errors = r.diagnostics.filter((d) => d.severity === 'Error');
  if (errors.length) throw new Error(errors.map((d) => d.message).join('\n'));
  return r.resources;
}

export async function loadFiles(paths: string[]): Promise<Resource[]> {
  const r = await loadPaths(paths);
  const errors = r.diagnostics.filter((d) => d.severity === 'Error');
  if (errors.length) throw new Error(errors.map((d) => `${d.source?.file}:${d.source?.line} ${d.message}`).join('\n'));
  return r.resources;
}

export function buildPush(resources: Resource[], proxies: Proxy[] = [], opts: { mesh?: Partial<MeshConfig>; credentials?: CredentialSource } = {}): PushContext {
  const registry = new ServiceRegistry(new VipAllocator());
  for (const p of proxies) {
    const w = workloadFromProxy(p);
    if (w) registry.upsertWorkload(w);
  }
  return new PushContext({ version: 'test/1', mesh: { ...DEFAULT_MESH_CONFIG, ...opts.mesh }, resources, registry: registry.snapshot(resources), credentials: opts.credentials });
}

let ipCounter = 10;

/** A sidecar in explicit mode, as `rig up` starts one per workload replica. */
/** The route configuration names the listeners ask for over RDS (what a proxy would subscribe to). */
export function rdsNames(listeners: EnvoyJson[]): string[] {
  const names = new Set<string>();
  JSON.stringify(listeners, (k, v) => {
    if (k === 'route_config_name') names.add(v as string);
    return v;
  });
  return [...names];
}

export function explicitSidecar(name: string, ns: string, labels: Record<string, string>, sa: string, ports: { port: number; name?: string }[], opts: { ip?: string; bind?: string; outbound?: number; base?: number; upstreamPorts?: Record<string, number> } = {}): Proxy {
  const ip = opts.ip ?? '127.0.0.1';
  const base = opts.base ?? 20000 + ipCounter++ * 10;
  const inboundPorts: Record<string, number> = {};
  const appPorts: Record<string, number> = {};
  ports.forEach((p, i) => {
    inboundPorts[String(p.port)] = base + 1 + i;
    appPorts[String(p.port)] = base + 5 + i;
  });
  return parseNode({
    id: `sidecar~${ip}~${name}.${ns}~${ns}.svc.cluster.local`,
    metadata: {
      NAMESPACE: ns,
      LABELS: labels,
      SERVICE_ACCOUNT: sa,
      INSTANCE_IPS: ip,
      WORKLOAD_NAME: name.replace(/-\d+$/, ''),
      INTERCEPTION_MODE: 'NONE',
      RIG_WORKLOAD_PORTS: ports,
      RIG_EXPLICIT: { bind: opts.bind ?? ip, outboundPort: opts.outbound ?? base, inboundPorts, appPorts, upstreamPorts: opts.upstreamPorts },
    },
  });
}

/** A sidecar in a network-namespace pod (REDIRECT). */
export function podSidecar(name: string, ns: string, labels: Record<string, string>, sa: string, ports: { port: number; name?: string }[], ip: string): Proxy {
  return parseNode({
    id: `sidecar~${ip}~${name}.${ns}~${ns}.svc.cluster.local`,
    metadata: { NAMESPACE: ns, LABELS: labels, SERVICE_ACCOUNT: sa, INSTANCE_IPS: ip, WORKLOAD_NAME: name, INTERCEPTION_MODE: 'REDIRECT', RIG_WORKLOAD_PORTS: ports },
  });
}

export function gatewayProxy(labels: Record<string, string> = { istio: 'ingressgateway' }, ns = 'istio-system'): Proxy {
  return parseNode({ id: `router~127.0.0.1~istio-ingressgateway-0.${ns}~${ns}.svc.cluster.local`, metadata: { NAMESPACE: ns, LABELS: labels, SERVICE_ACCOUNT: 'istio-ingressgateway', INSTANCE_IPS: '127.0.0.1' } });
}

export function grpcProxy(ns = 'default'): Proxy {
  return parseNode({ id: `sidecar~127.0.0.1~grpc-client-0.${ns}~${ns}.svc.cluster.local`, metadata: { NAMESPACE: ns, GENERATOR: 'grpc', LABELS: { app: 'client' } } });
}

/** Asserts that a generated resource fits its Envoy type and survives a protobuf round trip unchanged. */
export function assertEnvoyResource(typeUrl: string, r: EnvoyJson): void {
  const issues = checkMessage(typeUrl.slice(typeUrl.lastIndexOf('/') + 1), r);
  if (issues.length) throw new Error(`${String(r.name ?? r.cluster_name)} does not fit ${typeUrl}: ${issues.join('; ')}`);
  if (!isDeepStrictEqual(unpackAny(packAny(typeUrl, r)), r)) throw new Error(`${String(r.name ?? r.cluster_name)} changes in a protobuf round trip`);
}
