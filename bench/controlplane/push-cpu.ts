// In-process profile of one push (generate + pack every watched type for every proxy), without
// sockets: `node --cpu-prof bench/controlplane/push-cpu.ts [--services 1000] [--proxies 2000]`.
// Prints the CPU time (ms, user + system: robust on a shared machine) of the initial full push and
// of the pushes after a VirtualService change.
import { loadDocuments } from '../../src/api/index.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import { DEFAULT_MESH_CONFIG } from '../../src/model/mesh-config.ts';
import { parseNode } from '../../src/model/proxy.ts';
import { PushContext } from '../../src/model/push-context.ts';
import { workloadFromProxy } from '../../src/registry/auto-registration.ts';
import { ServiceRegistry } from '../../src/registry/service-registry.ts';
import { VipAllocator } from '../../src/registry/vip-allocator.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { pack } from '../../src/xds/server/resource-cache.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const services = arg('--services', 1000);
const proxies = arg('--proxies', 2000);
const namespaces = 10;
const PORT = 8080;
const svcYaml = Array.from({ length: services }, (_, i) => `apiVersion: v1\nkind: Service\nmetadata: { name: svc-${i}, namespace: ns-${i % namespaces} }\nspec: { selector: { app: svc-${i} }, ports: [{ name: http, port: ${PORT} }] }`).join('\n---\n');
const vs = (t: string) => `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: svc-0, namespace: ns-0 }\nspec:\n  hosts: [svc-0]\n  http: [{ route: [{ destination: { host: svc-0 } }], timeout: ${t} }]\n`;

const nodes = Array.from({ length: proxies }, (_, k) => {
  const svc = k % services;
  const ns = `ns-${svc % namespaces}`;
  const ip = `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
  return parseNode({ id: `sidecar~${ip}~svc-${svc}-${k}.${ns}~${ns}.svc.cluster.local`, metadata: { NAMESPACE: ns, LABELS: { app: `svc-${svc}` }, SERVICE_ACCOUNT: 'default', INSTANCE_IPS: ip, INTERCEPTION_MODE: 'REDIRECT', RIG_WORKLOAD_PORTS: [{ port: PORT, name: 'http' }] } });
});
const registry = new ServiceRegistry(new VipAllocator());
for (const p of nodes) registry.upsertWorkload(workloadFromProxy(p)!);
const edsNames = Array.from({ length: services }, (_, i) => `outbound|${PORT}||svc-${i}.ns-${i % namespaces}.svc.cluster.local`);
let n = 0;

function push(timeout: string): void {
  const resources = loadDocuments(svcYaml + '\n---\n' + vs(timeout), 'bench.yaml').resources;
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const t0 = cpuMs();
  const ctx = new PushContext({ version: `v${++n}`, mesh: DEFAULT_MESH_CONFIG, resources, registry: registry.snapshot(resources) });
  const times: Record<string, number> = {};
  for (const [typeUrl, names] of [[CLUSTER_TYPE, undefined], [LISTENER_TYPE, undefined], [ROUTE_TYPE, [String(PORT)]], [ENDPOINT_TYPE, edsNames]] as const) {
    const t = cpuMs();
    for (const p of nodes) for (const r of GENERATORS[typeUrl].generate(ctx, p, names)) pack(typeUrl, r);
    times[GENERATORS[typeUrl].short] = Math.round(cpuMs() - t);
  }
  console.log(JSON.stringify({ push: n, totalMs: Math.round(cpuMs() - t0), ...times }));
}

push('10s');
push('5s');
push('3s');
