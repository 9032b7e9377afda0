// Sidecar outboundTrafficPolicy.egressProxy in the translation: unknown destinations (the
// virtualOutbound catch-all chain, the `allow_any` virtual host of port routes and of the
// explicit proxy, CONNECT included) go to the egress proxy's cluster instead of
// PassthroughCluster, as istiod's buildOutboundCatchAllNetworkFiltersOnly / buildCatchAllVirtualHost.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { loadDocuments } from '../../src/api/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { buildPush, explicitSidecar, parseYaml, podSidecar } from './fixtures.ts';

const EGRESS_CLUSTER = 'outbound|3128|squid|egress-proxy.example.com';
const CONFIG = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { selector: { app: web }, ports: [{ name: http, port: 8000 }] }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: egress-proxy, namespace: default }
spec:
  hosts: [egress-proxy.example.com]
  ports: [{ number: 3128, name: tcp, protocol: TCP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, labels: { proxy: squid } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: egress-proxy, namespace: default }
spec:
  host: egress-proxy.example.com
  subsets: [{ name: squid, labels: { proxy: squid } }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: default }
spec:
  outboundTrafficPolicy:
    mode: ALLOW_ANY
    egressProxy: { host: egress-proxy.example.com, subset: squid, port: { number: 3128 } }
`;

const vhost = (routes: EnvoyJson[], name: string) => ((routes[0].virtual_hosts as EnvoyJson[]).find((v) => v.name === name) ?? assert.fail(`no vhost ${name}`)) as EnvoyJson;
const clusterOf = (r: EnvoyJson) => (r.route as EnvoyJson).cluster;

test('egressProxy: the virtualOutbound catch-all and the allow_any routes go to the egress proxy cluster', () => {
  const pod = podSidecar('client-0', 'default', { app: 'client' }, 'client', [], '198.18.0.10');
  const push = buildPush(parseYaml(CONFIG), [pod]);
  const listeners = GENERATORS[LISTENER_TYPE].generate(push, pod, undefined);
  const outbound = listeners.find((l) => l.name === 'virtualOutbound')!;
  const tcp = ((outbound.filter_chains as EnvoyJson[])[0].filters as EnvoyJson[]).find((f) => f.name === 'envoy.filters.network.tcp_proxy')!;
  assert.equal((tcp.typed_config as EnvoyJson).cluster, EGRESS_CLUSTER);
  assert.equal((tcp.typed_config as EnvoyJson).stat_prefix, EGRESS_CLUSTER);
  const routes = GENERATORS[ROUTE_TYPE].generate(push, pod, ['8000']);
  assert.deepEqual((vhost(routes, 'allow_any').routes as EnvoyJson[]).map(clusterOf), [EGRESS_CLUSTER]);
  assert.ok(GENERATORS[CLUSTER_TYPE].generate(push, pod, undefined).some((c) => c.name === EGRESS_CLUSTER));

  const client = explicitSidecar('client-1', 'default', { app: 'client' }, 'client', []);
  const explicit = buildPush(parseYaml(CONFIG), [client]);
  const proxyRoutes = vhost(GENERATORS[ROUTE_TYPE].generate(explicit, client, ['http_proxy']), 'allow_any').routes as EnvoyJson[];
  assert.deepEqual(proxyRoutes.map((r) => [r.name, clusterOf(r)]), [['connect', EGRESS_CLUSTER], ['allow_any', EGRESS_CLUSTER]]);
});

test('without egressProxy, PassthroughCluster; under REGISTRY_ONLY, BlackHoleCluster', () => {
  const pod = podSidecar('client-0', 'default', { app: 'client' }, 'client', [], '198.18.0.11');
  const chainCluster = (yaml: string) => {
    const push = buildPush(parseYaml(yaml), [pod]);
    const outbound = GENERATORS[LISTENER_TYPE].generate(push, pod, undefined).find((l) => l.name === 'virtualOutbound')!;
    const tcp = ((outbound.filter_chains as EnvoyJson[])[0].filters as EnvoyJson[]).find((f) => f.name === 'envoy.filters.network.tcp_proxy')!;
    return (tcp.typed_config as EnvoyJson).cluster;
  };
  assert.equal(chainCluster(CONFIG.replace(/\n {4}egressProxy:.*/, '')), 'PassthroughCluster');
  assert.equal(chainCluster(CONFIG.replace('mode: ALLOW_ANY', 'mode: REGISTRY_ONLY').replace(/\n {4}egressProxy:.*/, '')), 'BlackHoleCluster');
});

test('egressProxy is an error without mode ALLOW_ANY or without a port, and no longer a warning', () => {
  const sidecar = (otp: string) => loadDocuments(`apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: { name: default, namespace: default }\nspec:\n  outboundTrafficPolicy: ${otp}\n`, 'sidecar.yaml').diagnostics.map((d) => `${d.severity} ${d.path}`);
  assert.deepEqual(sidecar('{ mode: ALLOW_ANY, egressProxy: { host: egress.example.com, port: { number: 3128 } } }'), []);
  assert.deepEqual(sidecar('{ mode: ALLOW_ANY, egressProxy: { host: egress.example.com } }'), ['Error spec.outboundTrafficPolicy.egressProxy.port']);
  assert.deepEqual(sidecar('{ mode: REGISTRY_ONLY, egressProxy: { host: egress.example.com, port: { number: 3128 } } }'), ['Error spec.outboundTrafficPolicy.egressProxy']);
});
