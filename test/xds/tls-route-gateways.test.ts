// VirtualService tls routes bound to both the mesh and a Gateway (Istio's egress-gateway pattern):
// each side takes only the matches whose `gateways` name it, and an explicit-mode CONNECT to the
// host follows the mesh's tls route.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LISTENER_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { buildPush, explicitSidecar, gatewayProxy, parseYaml } from './fixtures.ts';

const CONFIG = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: cnn, namespace: default }
spec:
  hosts: [edition.cnn.com]
  ports: [{ number: 443, name: tls, protocol: TLS }]
  resolution: DNS
---
apiVersion: v1
kind: Service
metadata: { name: istio-egressgateway, namespace: istio-system }
spec: { selector: { istio: egressgateway }, ports: [{ name: tls, port: 443 }] }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: istio-egressgateway, namespace: default }
spec:
  selector: { istio: egressgateway }
  servers: [{ port: { number: 443, name: tls, protocol: TLS }, hosts: [edition.cnn.com], tls: { mode: PASSTHROUGH } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: direct-cnn-through-egress-gateway, namespace: default }
spec:
  hosts: [edition.cnn.com]
  gateways: [mesh, istio-egressgateway]
  tls:
  - match: [{ gateways: [mesh], port: 443, sniHosts: [edition.cnn.com] }]
    route: [{ destination: { host: istio-egressgateway.istio-system.svc.cluster.local, subset: cnn, port: { number: 443 } } }]
  - match: [{ gateways: [istio-egressgateway], port: 443, sniHosts: [edition.cnn.com] }]
    route: [{ destination: { host: edition.cnn.com, port: { number: 443 } } }]
`;

const TO_GATEWAY = 'outbound|443|cnn|istio-egressgateway.istio-system.svc.cluster.local';
const TO_HOST = 'outbound|443||edition.cnn.com';

function tcpClusters(listener: EnvoyJson): string[] {
  return (listener.filter_chains as EnvoyJson[]).flatMap((c) => (c.filters as EnvoyJson[]).filter((f) => f.name === 'envoy.filters.network.tcp_proxy').map((f) => (f.typed_config as EnvoyJson).cluster as string));
}

test('the egress gateway takes the gateway match, the sidecar the mesh match', () => {
  const gw = gatewayProxy({ istio: 'egressgateway' });
  const sidecar = explicitSidecar('client-0', 'default', { app: 'client' }, 'client', [], { base: 41000 });
  const push = buildPush(parseYaml(CONFIG), [gw, sidecar]);
  const gwListener = GENERATORS[LISTENER_TYPE].generate(push, gw, undefined).find((l) => l.name === '0.0.0.0_443')!;
  assert.deepEqual(tcpClusters(gwListener), [TO_HOST]);

  const routes = GENERATORS[ROUTE_TYPE].generate(push, sidecar, ['http_proxy']);
  const vhost = (routes[0].virtual_hosts as EnvoyJson[]).find((v) => v.name === 'edition.cnn.com:443')!;
  const connect = (vhost.routes as EnvoyJson[]).find((r) => r.name === 'connect')!;
  assert.equal((connect.route as EnvoyJson).cluster, TO_GATEWAY);
});
