// An east-west gateway's AUTO_PASSTHROUGH server, as istiod builds it: SNI-DNAT clusters
// `outbound_.<port>_.<subset>_.<host>` (no TLS of their own, the client's mTLS passes through) and a
// listener with one chain per mesh service port and subset the server's hosts cover, matched on
// that SNI and an Istio mTLS ALPN; no VirtualService involved, and no DestinationRule tunnel.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { parseNode } from '../../src/model/proxy.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { assertEnvoyResource, buildPush, gatewayProxy, parseYaml } from './fixtures.ts';

const CONFIG = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { selector: { app: web }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: web-1, namespace: default, labels: { app: web, version: v1, security.istio.io/tlsMode: istio } }
spec: { address: 10.2.0.1, network: network2 }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: external, namespace: default }
spec: { hosts: [api.example.com], ports: [{ number: 443, name: tls, protocol: TLS }], resolution: DNS, location: MESH_EXTERNAL }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: default }
spec:
  host: web.default.svc.cluster.local
  trafficPolicy:
    connectionPool: { tcp: { idleTimeout: 30s } }
    tunnel: { targetHost: proxy.example.com, targetPort: 8080 }
  subsets: [{ name: v1, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: cross-network-gateway, namespace: istio-system }
spec:
  selector: { istio: eastwestgateway }
  servers:
  - port: { number: 15443, name: tls, protocol: TLS }
    tls: { mode: AUTO_PASSTHROUGH }
    hosts: ["*.local"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: tls-route, namespace: default }
spec:
  hosts: [web.default.svc.cluster.local]
  gateways: [istio-system/cross-network-gateway]
  tls: [{ match: [{ sniHosts: [web.default.svc.cluster.local] }], route: [{ destination: { host: web.default.svc.cluster.local } }] }]`;

function eastWest() {
  return parseNode({ id: 'router~10.2.0.100~eastwest-0.istio-system~istio-system.svc.cluster.local', metadata: { NAMESPACE: 'istio-system', LABELS: { istio: 'eastwestgateway' }, INSTANCE_IPS: '10.2.0.100', NETWORK: 'network2' } });
}

const SNI = 'outbound_.80_._.web.default.svc.cluster.local';
const SNI_V1 = 'outbound_.80_.v1_.web.default.svc.cluster.local';

test('the gateway gets an SNI-DNAT cluster per mesh service port and subset, without TLS of its own', () => {
  const gw = eastWest();
  const push = buildPush(parseYaml(CONFIG), [gw]);
  const clusters = GENERATORS[CLUSTER_TYPE].generate(push, gw, undefined);
  const dnat = clusters.filter((c) => (c.name as string).startsWith('outbound_.'));
  assert.deepEqual(dnat.map((c) => c.name), [SNI, SNI_V1]);
  for (const c of dnat) {
    assertEnvoyResource(CLUSTER_TYPE, c);
    assert.equal(c.type, 'EDS');
    assert.equal((c.eds_cluster_config as EnvoyJson).service_name, c.name);
    assert.equal(c.transport_socket, undefined);
    assert.equal(c.transport_socket_matches, undefined);
  }
  // The mesh-external ServiceEntry has none; the ordinary outbound clusters stay.
  assert.ok(!clusters.some((c) => (c.name as string).includes('api.example.com') && (c.name as string).startsWith('outbound_.')));
  assert.ok(clusters.some((c) => c.name === 'outbound|80||web.default.svc.cluster.local'));
  // Its EDS: the service's endpoints (the gateway is in network2, where they are).
  const [la] = GENERATORS[ENDPOINT_TYPE].generate(push, gw, [SNI_V1]);
  assertEnvoyResource(ENDPOINT_TYPE, la);
  const addr = ((((la.endpoints as EnvoyJson[])[0]!.lb_endpoints as EnvoyJson[])[0]!.endpoint as EnvoyJson).address as EnvoyJson).socket_address as EnvoyJson;
  assert.deepEqual([addr.address, addr.port_value], ['10.2.0.1', 8080]);
});

test('the AUTO_PASSTHROUGH listener routes each mesh SNI with an Istio mTLS ALPN to its SNI-DNAT cluster, ignoring VirtualServices, with the DestinationRule idle timeout and no tunnel', () => {
  const gw = eastWest();
  const push = buildPush(parseYaml(CONFIG), [gw]);
  const [l] = GENERATORS[LISTENER_TYPE].generate(push, gw, undefined).filter((x) => x.name === '0.0.0.0_15443');
  assert.ok(l);
  assertEnvoyResource(LISTENER_TYPE, l);
  assert.deepEqual((l.listener_filters as EnvoyJson[]).map((f) => f.name), ['envoy.filters.listener.tls_inspector']);
  const chains = l.filter_chains as EnvoyJson[];
  assert.deepEqual(chains.map((c) => (c.filter_chain_match as EnvoyJson).server_names), [[SNI], [SNI_V1]]);
  for (const c of chains) {
    assert.deepEqual((c.filter_chain_match as EnvoyJson).application_protocols, ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2']);
    const tcp = (c.filters as EnvoyJson[]).find((f) => f.name === 'envoy.filters.network.tcp_proxy')!.typed_config as EnvoyJson;
    assert.deepEqual([tcp.cluster], (c.filter_chain_match as EnvoyJson).server_names);
    assert.equal(tcp.stat_prefix, tcp.cluster);
    assert.equal(tcp.idle_timeout, '30s');
    assert.equal(tcp.tunneling_config, undefined);
  }
});

test('a gateway without an AUTO_PASSTHROUGH server gets no SNI-DNAT cluster', () => {
  const gw = gatewayProxy();
  const push = buildPush(parseYaml(CONFIG), [gw]);
  assert.ok(!GENERATORS[CLUSTER_TYPE].generate(push, gw, undefined).some((c) => (c.name as string).startsWith('outbound_.')));
});
