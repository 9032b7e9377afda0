// Multi-network meshes, as istiod: the network of endpoints (WorkloadEntry `network`, the
// topology.istio.io/network label, the root namespace's label, MeshNetworks fromCidr/fromRegistry)
// and of proxies (NETWORK metadata, the label); network gateways from MeshNetworks and from gateway
// Services labelled topology.istio.io/network; split-horizon EDS (other networks' endpoints replaced
// by their gateway with the summed weight, networks without a gateway reached directly, endpoints
// that would not get ISTIO_MUTUAL dropped).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ENDPOINT_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { loadMeshConfig } from '../../src/model/mesh-config.ts';
import type { MeshNetworks } from '../../src/model/network.ts';
import { parseNode } from '../../src/model/proxy.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { networkDrops } from '../../src/xds/translate/split-horizon.ts';
import { assertEnvoyResource, buildPush, parseYaml } from './fixtures.ts';

const CLUSTER = 'outbound|80||web.example.internal';

function entry(name: string, ip: string, extra: string, labels = 'security.istio.io/tlsMode: istio'): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${name}, namespace: default, labels: { app: web, ${labels} } }
spec: { address: ${ip}${extra} }`;
}

const SERVICE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: default }
spec:
  hosts: [web.example.internal]
  location: MESH_INTERNAL
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  workloadSelector: { labels: { app: web } }`;

function gatewayService(network: string, ips: string[], port?: number): string {
  return `apiVersion: v1
kind: Service
metadata: { name: eastwest-${network}, namespace: istio-system, labels: { topology.istio.io/network: ${network}${port ? `, networking.istio.io/gatewayPort: "${port}"` : ''} } }
spec: { selector: { app: eastwest }, ports: [{ name: tls, port: 15443 }], externalIPs: [${ips.join(', ')}] }`;
}

const ENDPOINTS = [
  entry('a1', '10.1.0.1', ', network: network1'),
  entry('a2', '10.1.0.2', ', network: network1'),
  entry('b1', '10.2.0.1', ', network: network2'),
  // Its label gives the network.
  entry('b2', '10.2.0.2', '', 'security.istio.io/tlsMode: istio, topology.istio.io/network: network2'),
  // No sidecar: plaintext under auto mTLS, so not routable through network2's gateway.
  entry('b3', '10.2.0.3', ', network: network2', 'security.istio.io/tlsMode: disabled'),
  // A network without a gateway: reached directly, as istiod does.
  entry('c1', '10.3.0.1', ', network: network3'),
  // No network of its own: MeshNetworks fromCidr puts it in network4.
  entry('d1', '10.4.0.1', ''),
];

const MESH_NETWORKS: MeshNetworks = {
  networks: {
    network1: { endpoints: [{ fromRegistry: 'Kubernetes' }] },
    network4: { endpoints: [{ fromCidr: '10.4.0.0/16' }], gateways: [{ address: '203.0.113.4', port: 15443 }] },
  },
};

function client(metadata: Record<string, unknown>, labels: Record<string, string> = { app: 'client' }) {
  return parseNode({ id: 'sidecar~198.18.0.9~client-0.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: labels, INSTANCE_IPS: '198.18.0.9', INTERCEPTION_MODE: 'REDIRECT', ...metadata } });
}

/** `address:port` → weight, per locality group in order, as the proxy gets them. */
function eds(yaml: string[], proxy = client({ NETWORK: 'network1' }), meshNetworks: MeshNetworks | undefined = MESH_NETWORKS) {
  const push = buildPush(parseYaml(yaml.join('\n---\n')), [proxy], { mesh: meshNetworks ? { meshNetworks } : {} });
  const [la] = GENERATORS[ENDPOINT_TYPE].generate(push, proxy, [CLUSTER]);
  assertEnvoyResource(ENDPOINT_TYPE, la);
  const weights: Record<string, number> = {};
  const tlsMode: Record<string, string> = {};
  for (const g of (la.endpoints ?? []) as EnvoyJson[]) {
    for (const e of g.lb_endpoints as EnvoyJson[]) {
      const a = ((e.endpoint as EnvoyJson).address as EnvoyJson).socket_address as EnvoyJson;
      const key = `${a.address as string}:${a.port_value as number}`;
      weights[key] = e.load_balancing_weight as number;
      tlsMode[key] = ((((e.metadata as EnvoyJson).filter_metadata as EnvoyJson)['envoy.transport_socket_match'] as EnvoyJson).tlsMode as string);
    }
  }
  return { weights, tlsMode, push };
}

test('a proxy in network1: its network direct, network2 and network4 through their gateways, network3 (no gateway) direct, no-mTLS endpoints dropped', () => {
  const { weights, tlsMode, push } = eds([SERVICE, ...ENDPOINTS, gatewayService('network2', ['203.0.113.2'])]);
  assert.deepEqual(weights, {
    '10.1.0.1:80': 1,
    '10.1.0.2:80': 1,
    '10.3.0.1:80': 1,
    // network2's two mTLS endpoints (b1 by `network`, b2 by label) behind its gateway Service's external IP.
    '203.0.113.2:15443': 2,
    // d1, in network4 by MeshNetworks fromCidr.
    '203.0.113.4:15443': 1,
  });
  assert.equal(tlsMode['203.0.113.2:15443'], 'istio');
  const drops = [...networkDrops(push).values()];
  assert.equal(drops.length, 1);
  assert.match(drops[0]!, /10\.2\.0\.3:80 .* network network2, .* not be ISTIO_MUTUAL/);
});

test('a proxy in network2 (by its topology.istio.io/network label) reaches its own endpoints, also without mTLS, and network1 directly (no gateway)', () => {
  const { weights } = eds([SERVICE, ...ENDPOINTS, gatewayService('network2', ['203.0.113.2'])], client({}, { app: 'client', 'topology.istio.io/network': 'network2' }));
  assert.deepEqual(weights, { '10.1.0.1:80': 1, '10.1.0.2:80': 1, '10.2.0.1:80': 1, '10.2.0.2:80': 1, '10.2.0.3:80': 1, '10.3.0.1:80': 1, '203.0.113.4:15443': 1 });
});

test('weights are scaled by the LCM of gateways per network and split evenly over a network\'s gateways; the gateway port label is honoured', () => {
  const { weights } = eds([SERVICE, ...ENDPOINTS, gatewayService('network2', ['203.0.113.2', '203.0.113.3'], 16443)]);
  // Two gateways for network2: every weight doubles; each gateway gets half of 2+2.
  assert.deepEqual(weights, { '10.1.0.1:80': 2, '10.1.0.2:80': 2, '10.3.0.1:80': 2, '203.0.113.2:16443': 2, '203.0.113.3:16443': 2, '203.0.113.4:15443': 2 });
});

test('the DestinationRule decides mTLS when it sets a mode: ISTIO_MUTUAL lets the sidecar-less endpoint through, DISABLE drops the whole remote network', () => {
  const dr = (mode: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: default }
spec: { host: web.example.internal, trafficPolicy: { tls: { mode: ${mode} } } }`;
  const mutual = eds([SERVICE, ...ENDPOINTS, gatewayService('network2', ['203.0.113.2']), dr('ISTIO_MUTUAL')]);
  assert.equal(mutual.weights['203.0.113.2:15443'], 3);
  const disabled = eds([SERVICE, ...ENDPOINTS, gatewayService('network2', ['203.0.113.2']), dr('DISABLE')]);
  assert.equal(disabled.weights['203.0.113.2:15443'], undefined);
  assert.equal(disabled.weights['203.0.113.4:15443'], undefined);
  assert.equal(disabled.weights['10.1.0.1:80'], 1);
});

test('without any network gateway every endpoint is reached directly, as before', () => {
  const { weights } = eds([SERVICE, ...ENDPOINTS], client({ NETWORK: 'network1' }), { networks: { network4: { endpoints: [{ fromCidr: '10.4.0.0/16' }] } } });
  assert.deepEqual(Object.keys(weights).sort(), ['10.1.0.1:80', '10.1.0.2:80', '10.2.0.1:80', '10.2.0.2:80', '10.2.0.3:80', '10.3.0.1:80', '10.4.0.1:80']);
});

test('the root namespace\'s topology.istio.io/network label is the network of endpoints without their own, before MeshNetworks', () => {
  const ns = `apiVersion: v1
kind: Namespace
metadata: { name: istio-system, labels: { topology.istio.io/network: network2 } }`;
  // d1 (no network of its own) is now in network2 (not network4 by fromCidr), behind network2's gateway.
  const { weights } = eds([SERVICE, ...ENDPOINTS, gatewayService('network2', ['203.0.113.2']), ns]);
  assert.equal(weights['203.0.113.2:15443'], 3);
  assert.equal(weights['203.0.113.4:15443'], undefined);
});

test('meshNetworks is read beside the MeshConfig (the istio ConfigMap\'s data.meshNetworks), with its mistakes reported by path', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-meshnet-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'istio.yaml');
  fs.writeFileSync(file, `apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data:
  mesh: |
    trustDomain: example.org
  meshNetworks: |
    networks:
      network2:
        endpoints: [{ fromRegistry: remote }]
        gateways: [{ registryServiceName: eastwest.istio-system.svc.cluster.local, port: 15443 }]
`);
  const m = await loadMeshConfig(file);
  assert.equal(m.trustDomain, 'example.org');
  assert.deepEqual(m.meshNetworks?.networks.network2?.gateways, [{ registryServiceName: 'eastwest.istio-system.svc.cluster.local', port: 15443 }]);
  fs.writeFileSync(file, 'meshConfig: { trustDomain: example.org }\nmeshNetworks:\n  networks:\n    n1:\n      endpoints: [{ fromCidr: 10.0.0.0/33 }]\n      gateways: [{ address: 1.2.3.4, registryServiceName: x, port: 0 }]\n');
  await assert.rejects(loadMeshConfig(file), (err: Error) => {
    for (const p of ['meshNetworks.networks.n1.endpoints[0].fromCidr', 'meshNetworks.networks.n1.gateways[0]: needs exactly one of address or registryServiceName', 'meshNetworks.networks.n1.gateways[0].port']) assert.ok(err.message.includes(p), `missing "${p}" in ${err.message}`);
    return true;
  });
});

test('a MeshNetworks gateway named by registryServiceName is reached at that Service\'s external addresses', () => {
  const meshNetworks: MeshNetworks = { networks: { network2: { gateways: [{ registryServiceName: 'eastwest.istio-system.svc.cluster.local', port: 15443 }] } } };
  const svc = `apiVersion: v1
kind: Service
metadata: { name: eastwest, namespace: istio-system }
spec: { selector: { app: eastwest }, ports: [{ name: tls, port: 15443 }], externalIPs: [203.0.113.9] }`;
  const { weights } = eds([SERVICE, ...ENDPOINTS, svc], client({ NETWORK: 'network1' }), meshNetworks);
  assert.equal(weights['203.0.113.9:15443'], 2);
});

test('REQUESTED_NETWORK_VIEW limits a proxy to the networks it names (and endpoints of no network), as istiod\'s ProxyView', () => {
  const { weights } = eds([SERVICE, ...ENDPOINTS, gatewayService('network2', ['203.0.113.2'])], client({ NETWORK: 'network1', REQUESTED_NETWORK_VIEW: 'network1,network2' }));
  // network3 (direct) and network4 (its gateway) are out of view.
  assert.deepEqual(weights, { '10.1.0.1:80': 1, '10.1.0.2:80': 1, '203.0.113.2:15443': 2 });
});

test('a ServiceEntry endpoint\'s own network counts like a WorkloadEntry\'s', () => {
  const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: default }
spec:
  hosts: [web.example.internal]
  location: MESH_INTERNAL
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints:
  - { address: 10.1.0.9, network: network1, labels: { security.istio.io/tlsMode: istio } }
  - { address: 10.2.0.9, network: network2, labels: { security.istio.io/tlsMode: istio } }`;
  const { weights } = eds([se, gatewayService('network2', ['203.0.113.2'])]);
  assert.deepEqual(weights, { '10.1.0.9:80': 1, '203.0.113.2:15443': 1 });
});

test('a MeshNetworks gateway given by hostname is not used without the control plane\'s resolver, and says why', () => {
  const { weights, push } = eds([SERVICE, ...ENDPOINTS], client({ NETWORK: 'network1' }), { networks: { network2: { gateways: [{ address: 'eastwest.example.com', port: 15443 }] } } });
  assert.equal(push.networks.multiNetwork, false);
  assert.equal(weights['10.2.0.1:80'], 1);
  assert.deepEqual(push.networks.unusable.map((m) => /gateway address eastwest\.example\.com is not used: the control plane does not resolve/.test(m)), [true]);
});

test('a network with gateways of this cluster (a gateway Service) and MeshNetworks address gateways uses the cluster\'s, as istiod\'s selectNetworkGateways', () => {
  const meshNetworks: MeshNetworks = { networks: { network2: { gateways: [{ address: '203.0.113.99', port: 15443 }] } } };
  const { weights } = eds([SERVICE, ...ENDPOINTS, gatewayService('network2', ['203.0.113.2'])], client({ NETWORK: 'network1' }), meshNetworks);
  // Two gateways in network2 scale every weight by 2; both endpoints' weight goes to the cluster's gateway.
  assert.equal(weights['203.0.113.2:15443'], 4);
  assert.equal(weights['203.0.113.99:15443'], undefined);
});
