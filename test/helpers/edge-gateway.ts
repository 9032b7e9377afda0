// An ingress gateway in front of one backend, as the gateway e2e tests (gatewayTopology,
// proxyHeaders, PROXY protocol) use it: the Istio config, and a `rig proxy` in router mode that
// serves the Gateway's port on a free local port with its own PROXY_CONFIG.
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

/** ServiceEntry backend.example.com → 127.0.0.1:`backendPort`, and the edge gateway routing everything there. */
export const edgeToBackend = (backendPort: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: backend, namespace: istio-system }
spec:
  hosts: [backend.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${backendPort} } }]
---${edgeGatewayYaml('{ route: [{ destination: { host: backend.example.com, port: { number: 80 } } }] }')}`;

/** `rig proxy` flags of an ingress gateway named `name` serving the Gateway's `serverPort` on local `port`. */
export function edgeGatewayArgs(name: string, port: number, serverPort = 8080, labels = 'istio=ingressgateway'): string[] {
  const args = ['--mode', 'router', '--namespace', 'istio-system', '--workload-name', name, '--service-account', 'istio-ingressgateway', '--labels', labels];
  return [...args, '--instance-ip', '127.0.0.1', '--interception', 'explicit', '--bind', '127.0.0.1', '--inbound-port', `${serverPort}=${port}`];
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
