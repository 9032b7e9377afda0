// Locality load balancing (DestinationRule / MeshConfig localityLbSetting) in EDS, relative to the
// proxy's locality: default failover priorities (needs outlierDetection), failover regions,
// failoverPriority labels, distribute weights, enabled: false; endpoint locality from WorkloadEntry
// `locality` or topology labels; the proxy's from node.locality or its labels.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_TYPE, ENDPOINT_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { parseMeshConfig } from '../../src/model/mesh-config.ts';
import { parseNode } from '../../src/model/proxy.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { assertEnvoyResource, buildPush, parseYaml } from './fixtures.ts';

const ENDPOINTS: [string, string, Record<string, string>][] = [
  ['10.0.0.1', 'locality: us-east/zone1/sub1', { net: 'n1' }],
  ['10.0.0.2', 'locality: us-east/zone1/sub2', { net: 'n2' }],
  ['10.0.0.3', 'locality: us-east/zone2', { net: 'n1' }],
  ['10.0.0.4', 'locality: us-west/zone1', { net: 'n1' }],
  ['10.0.0.5', 'locality: eu-west/zone1', { net: 'n2' }],
  // No `locality`: from Kubernetes topology labels.
  ['10.0.0.6', 'labels: { topology.kubernetes.io/region: eu-west, topology.kubernetes.io/zone: zone1 }', { net: 'n1' }],
];

function config(trafficPolicy: string): string {
  const wes = ENDPOINTS.map(
    ([ip, loc, labels], i) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: web-${i}, namespace: default, labels: { app: web, net: ${labels.net} } }
spec: { address: ${ip}, ${loc} }`,
  ).join('\n---\n');
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: default }
spec:
  hosts: [web.example.internal]
  location: MESH_INTERNAL
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  workloadSelector: { labels: { app: web } }
---
${wes}
${trafficPolicy ? `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: default }
spec:
  host: web.example.internal
  trafficPolicy:
${trafficPolicy.replace(/^/gm, '    ')}` : ''}`;
}

const CLUSTER = 'outbound|80||web.example.internal';

function client(locality: Record<string, string> | undefined, labels: Record<string, string> = { app: 'client', net: 'n1' }) {
  return parseNode({ id: 'sidecar~198.18.0.9~client-0.default~default.svc.cluster.local', locality, metadata: { NAMESPACE: 'default', LABELS: labels, INSTANCE_IPS: '198.18.0.9', INTERCEPTION_MODE: 'REDIRECT' } });
}

/** address → priority; and locality → weight. */
function eds(trafficPolicy: string, proxy = client({ region: 'us-east', zone: 'zone1', sub_zone: 'sub1' }), mesh?: unknown) {
  const push = buildPush(parseYaml(config(trafficPolicy)), [proxy], mesh ? { mesh: parseMeshConfig(mesh) } : {});
  const [la] = GENERATORS[ENDPOINT_TYPE].generate(push, proxy, [CLUSTER]);
  assertEnvoyResource(ENDPOINT_TYPE, la);
  const priority: Record<string, number> = {};
  const weight: Record<string, number> = {};
  for (const g of la.endpoints as EnvoyJson[]) {
    const loc = Object.values(g.locality as Record<string, string>).join('/');
    weight[loc] = g.load_balancing_weight as number;
    for (const e of g.lb_endpoints as EnvoyJson[]) priority[(((e.endpoint as EnvoyJson).address as EnvoyJson).socket_address as EnvoyJson).address as string] = (g.priority as number | undefined) ?? 0;
  }
  const cluster = GENERATORS[CLUSTER_TYPE].generate(push, proxy, undefined).find((c) => c.name === CLUSTER)!;
  return { priority, weight, cluster };
}

const OUTLIER = 'outlierDetection: { consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s }';

test('with outlier detection, endpoints get priorities by locality distance from the proxy (mesh default: enabled)', () => {
  const { priority } = eds(OUTLIER);
  assert.deepEqual(priority, { '10.0.0.1': 0, '10.0.0.2': 1, '10.0.0.3': 2, '10.0.0.4': 3, '10.0.0.5': 3, '10.0.0.6': 3 });
  // Another proxy locality, another assignment (the proxy's locality from its istio-locality label).
  const west = eds(OUTLIER, client(undefined, { app: 'client', 'istio-locality': 'us-west.zone1' }));
  assert.deepEqual(west.priority, { '10.0.0.1': 1, '10.0.0.2': 1, '10.0.0.3': 1, '10.0.0.4': 0, '10.0.0.5': 1, '10.0.0.6': 1 });
});

test('without outlier detection, or with enabled: false, there are no priorities', () => {
  assert.deepEqual(Object.values(eds('').priority), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Object.values(eds(`${OUTLIER}\nloadBalancer: { localityLbSetting: { enabled: false } }`).priority), [0, 0, 0, 0, 0, 0]);
  // The mesh can turn it off too.
  assert.deepEqual(Object.values(eds(OUTLIER, undefined, { localityLbSetting: { enabled: false } }).priority), [0, 0, 0, 0, 0, 0]);
});

test('failover sends traffic to the named region before any other', () => {
  const { priority } = eds(`${OUTLIER}\nloadBalancer: { localityLbSetting: { enabled: true, failover: [{ from: us-east, to: eu-west }] } }`);
  assert.deepEqual(priority, { '10.0.0.1': 0, '10.0.0.2': 1, '10.0.0.3': 2, '10.0.0.4': 4, '10.0.0.5': 3, '10.0.0.6': 3 });
  // The mesh-wide setting applies when the DestinationRule has none.
  const mesh = eds(OUTLIER, undefined, { localityLbSetting: { failover: [{ from: 'us-east', to: 'eu-west' }] } });
  assert.deepEqual(mesh.priority, priority);
});

test('failoverPriority orders endpoints by the proxy labels they share, then failover by locality', () => {
  const byLabel = eds(`${OUTLIER}\nloadBalancer: { localityLbSetting: { failoverPriority: [net] } }`);
  assert.deepEqual(byLabel.priority, { '10.0.0.1': 0, '10.0.0.2': 1, '10.0.0.3': 0, '10.0.0.4': 0, '10.0.0.5': 1, '10.0.0.6': 0 });
  const override = eds(`${OUTLIER}\nloadBalancer: { localityLbSetting: { failoverPriority: [net=n2] } }`);
  assert.deepEqual(override.priority, { '10.0.0.1': 1, '10.0.0.2': 0, '10.0.0.3': 1, '10.0.0.4': 1, '10.0.0.5': 0, '10.0.0.6': 1 });
  const both = eds(`${OUTLIER}\nloadBalancer: { localityLbSetting: { failoverPriority: [net], failover: [{ from: us-east, to: eu-west }] } }`);
  // net=n1 first (by locality: sub1, zone2, eu-west, us-west), then net=n2 (sub2, eu-west).
  assert.deepEqual(both.priority, { '10.0.0.1': 0, '10.0.0.3': 1, '10.0.0.6': 2, '10.0.0.4': 3, '10.0.0.2': 4, '10.0.0.5': 5 });
});

test('distribute re-weights localities, drops those it sends nothing to, and turns on locality weighted LB', () => {
  const { weight, priority, cluster } = eds(`loadBalancer: { localityLbSetting: { distribute: [{ from: us-east/zone1/*, to: { "us-east/zone1/*": 80, "eu-west/*": 20 } }] } }`);
  assert.deepEqual(weight, { 'us-east/zone1/sub1': 40, 'us-east/zone1/sub2': 40, 'eu-west/zone1': 20 });
  assert.deepEqual(Object.keys(priority).sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.5', '10.0.0.6']);
  assert.deepEqual((cluster.common_lb_config as EnvoyJson).locality_weighted_lb_config, {});
  assertEnvoyResource(CLUSTER_TYPE, cluster);
  // A proxy no rule's `from` matches keeps the plain assignment.
  const other = eds(`loadBalancer: { localityLbSetting: { distribute: [{ from: us-east/zone1/*, to: { "us-east/zone1/*": 100 } }] } }`, client({ region: 'eu-west', zone: 'zone1' }));
  assert.equal(Object.keys(other.weight).length, 5);
});

test('mesh config: a bad localityLbSetting is refused with its path', () => {
  assert.throws(() => parseMeshConfig({ localityLbSetting: { distribute: [{ from: 'a/*', to: { 'b/*': 60 } }] } }), /localityLbSetting.distribute\[0\].to: the weights must be numbers adding up to 100/);
  assert.throws(() => parseMeshConfig({ localityLbSetting: { failover: [{ from: 'a' }] } }), /localityLbSetting.failover\[0\]: needs from and to/);
  assert.throws(() => parseMeshConfig({ localityLbSetting: { enabeld: true } }), /localityLbSetting.enabeld: unknown field/);
});

test('DNS clusters carry their endpoints with the same locality priorities (per proxy locality), and subsets filter them', () => {
  const yaml = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: default }
spec:
  hosts: [api.example.com]
  ports: [{ number: 443, name: tls, protocol: TLS }]
  resolution: DNS
  endpoints:
  - { address: east.api.example.com, locality: us-east/zone1, labels: { pool: a } }
  - { address: west.api.example.com, locality: us-west/zone1, labels: { pool: b } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: default }
spec:
  host: api.example.com
  trafficPolicy: { ${OUTLIER} }
  subsets: [{ name: a, labels: { pool: a } }]
`;
  const priorities = (proxy: ReturnType<typeof client>, name: string) => {
    const push = buildPush(parseYaml(yaml), [proxy]);
    const c = GENERATORS[CLUSTER_TYPE].generate(push, proxy, undefined).find((x) => x.name === name)!;
    assertEnvoyResource(CLUSTER_TYPE, c);
    return Object.fromEntries(((c.load_assignment as EnvoyJson).endpoints as EnvoyJson[]).flatMap((g) => (g.lb_endpoints as EnvoyJson[]).map((e) => [(((e.endpoint as EnvoyJson).address as EnvoyJson).socket_address as EnvoyJson).address, (g.priority as number | undefined) ?? 0])));
  };
  assert.deepEqual(priorities(client({ region: 'us-east', zone: 'zone1' }), 'outbound|443||api.example.com'), { 'east.api.example.com': 0, 'west.api.example.com': 1 });
  assert.deepEqual(priorities(client({ region: 'us-west', zone: 'zone1' }), 'outbound|443||api.example.com'), { 'east.api.example.com': 1, 'west.api.example.com': 0 });
  assert.deepEqual(priorities(client({ region: 'us-west', zone: 'zone1' }), 'outbound|443|a|api.example.com'), { 'east.api.example.com': 0 });
});
