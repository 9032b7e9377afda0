// Gateways in front of local backends, as the gateway e2e tests (gatewayTopology, proxyHeaders,
// PROXY protocol, Gateway API) use them: the Istio config (a backend's ServiceEntry, an ingress
// Gateway and VirtualService), and a `rig proxy` in router mode serving the Gateway's ports on free
// local ports: the Istio ingress gateway, or the one Istio deploys for a Gateway API Gateway.
import type { TestContext } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import type { MeshControlPlane } from './mesh-control-plane.ts';
import { startRigProxy, type RigProxy } from './rig-proxy.ts';

/** Gateway gw on 8080 for istio=ingressgateway, and VirtualService edge sending everything to `httpRoute` (one HTTPRoute, flow YAML). */
export const edgeGatewayYaml = (httpRoute: string) => `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 8080, name: http, protocol: HTTP }, hosts: ['*'] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: edge, namespace: istio-system }
spec:
  hosts: ['*']
  gateways: [gw]
  http: [${httpRoute}]
`;

/**
 * A mesh service `name` served by 127.0.0.1:`target`: a ServiceEntry of host `<name>.<namespace>.svc.cluster.local`
 * (or `host`), port `port` (80) of `protocol` (HTTP), then a document separator.
 */
export function serviceEntry(name: string, target: number, o: { namespace?: string; host?: string; port?: number; protocol?: string } = {}): string {
  const { namespace = 'default', port = 80, protocol = 'HTTP' } = o;
  const portName = protocol.toLowerCase();
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  hosts: [${o.host ?? `${name}.${namespace}.svc.cluster.local`}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: ${portName}, protocol: ${protocol} }]
  endpoints: [{ address: 127.0.0.1, ports: { ${portName}: ${target} } }]
---
`;
}

/** ServiceEntry backend.example.com → 127.0.0.1:`backendPort`, and the edge gateway routing everything there. */
export const edgeToBackend = (backendPort: number) =>
  serviceEntry('backend', backendPort, { namespace: 'istio-system', host: 'backend.example.com' }) + edgeGatewayYaml('{ route: [{ destination: { host: backend.example.com, port: { number: 80 } } }] }');

/** `rig proxy` flags of a router in explicit mode on 127.0.0.1 with `identity` (namespace, workload, labels…), serving each Gateway port of `ports` on its local port. */
function routerArgs(identity: string[], ports: Record<number, number>): string[] {
  const bindings = Object.entries(ports).flatMap(([server, local]) => ['--inbound-port', `${server}=${local}`]);
  return ['--mode', 'router', ...identity, '--instance-ip', '127.0.0.1', '--interception', 'explicit', '--bind', '127.0.0.1', ...bindings];
}

/** `rig proxy` flags of an ingress gateway named `name` serving the Gateway's `serverPort` on local `port`. */
export function edgeGatewayArgs(name: string, port: number, serverPort = 8080, labels = 'istio=ingressgateway'): string[] {
  return routerArgs(['--namespace', 'istio-system', '--workload-name', name, '--service-account', 'istio-ingressgateway', '--labels', labels], { [serverPort]: port });
}

export interface EdgeGateway {
  port: number;
  proxy: RigProxy;
}

export interface EdgeGatewayOptions {
  name: string;
  labels?: string;
  /** The gateway's PROXY_CONFIG, as Istio's injector puts the proxy.istio.io/config annotation there. */
  proxyConfig?: string;
  /** The Gateway server port this proxy serves (on a free local port). */
  serverPort?: number;
}

export async function startEdgeGateway(t: TestContext, mesh: MeshControlPlane, o: EdgeGatewayOptions): Promise<EdgeGateway> {
  const port = await freePort();
  const proxy = startRigProxy(t, edgeGatewayArgs(o.name, port, o.serverPort, o.labels), { xdsPort: mesh.cp.ports.xds, env: { PROXY_CONFIG: o.proxyConfig ?? '' } });
  await proxy.started();
  return { port, proxy };
}

/**
 * The gateway Istio deploys for Gateway API Gateway `gateway` in namespace default (workload
 * `<gateway>-istio-0`, service account `<gateway>-istio`, labelled gateway.networking.k8s.io/gateway-name),
 * serving each Gateway port of `ports` on its local port. Resolves once it listens; its config comes after.
 */
export async function startGatewayApiGateway(t: TestContext, xdsPort: number, gateway: string, ports: Record<number, number>, env?: NodeJS.ProcessEnv): Promise<RigProxy> {
  const identity = ['--namespace', 'default', '--workload-name', `${gateway}-istio-0`, '--service-account', `${gateway}-istio`, '--labels', `gateway.networking.k8s.io/gateway-name=${gateway}`];
  const proxy = startRigProxy(t, routerArgs(identity, ports), { xdsPort, env });
  await proxy.started();
  return proxy;
}
