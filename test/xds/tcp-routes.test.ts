// VirtualService tcp routes (Istio's L4 match semantics): a match applies only to the gateways it
// names (else the VirtualService's), to its port, source labels and namespace; destinationSubnets
// become filter chains of their own. Retries: retryRemoteLocalities and retryIgnorePreviousHosts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LISTENER_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { assertEnvoyResource, buildPush, gatewayProxy, parseYaml, podSidecar } from './fixtures.ts';

const CONFIG = `apiVersion: v1
kind: Service
metadata: { name: db, namespace: default }
spec: { selector: { app: db }, ports: [{ name: tcp, port: 27017 }] }
---
apiVersion: v1
kind: Service
metadata: { name: db-replica, namespace: default }
spec: { selector: { app: db-replica }, ports: [{ name: tcp, port: 27017 }] }
---
apiVersion: v1
kind: Service
metadata: { name: db-archive, namespace: default }
spec: { selector: { app: db-archive }, ports: [{ name: tcp, port: 27017 }] }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: tcp-gw, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 31400, name: tcp, protocol: TCP }, hosts: ["*"] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: default }
spec:
  hosts: [db]
  gateways: [mesh, tcp-gw]
  tcp:
  - match: [{ gateways: [tcp-gw], port: 31400 }]
    route: [{ destination: { host: db-replica, port: { number: 27017 } } }]
  - match: [{ gateways: [mesh], destinationSubnets: [10.9.0.0/16] }]
    route: [{ destination: { host: db-archive, port: { number: 27017 } } }]
  - match: [{ gateways: [mesh], sourceLabels: { app: batch } }]
    route: [{ destination: { host: db-archive, port: { number: 27017 } } }]
  - match: [{ gateways: [mesh] }]
    route: [{ destination: { host: db, port: { number: 27017 } } }]
`;

function tcpChains(listener: EnvoyJson): { match: unknown; cluster: string }[] {
  return (listener.filter_chains as EnvoyJson[]).map((c) => ({
    match: c.filter_chain_match,
    cluster: ((c.filters as EnvoyJson[]).find((f) => f.name === 'envoy.filters.network.tcp_proxy')!.typed_config as EnvoyJson).cluster as string,
  }));
}

test('tcp routes at a gateway take only the matches naming that gateway; the sidecar takes the mesh ones', () => {
  const gw = gatewayProxy();
  const web = podSidecar('web-0', 'default', { app: 'web' }, 'web', [], '198.18.0.40');
  const batch = podSidecar('batch-0', 'default', { app: 'batch' }, 'batch', [], '198.18.0.41');
  const push = buildPush(parseYaml(CONFIG), [gw, web, batch]);

  const gwListener = GENERATORS[LISTENER_TYPE].generate(push, gw, undefined).find((l) => l.name === '0.0.0.0_31400')!;
  assert.deepEqual(tcpChains(gwListener), [{ match: undefined, cluster: 'outbound|27017||db-replica.default.svc.cluster.local' }]);

  const vip = push.serviceByHost.get('db.default.svc.cluster.local')!.address;
  const webListener = GENERATORS[LISTENER_TYPE].generate(push, web, undefined).find((l) => l.name === `${vip}_27017`)!;
  assertEnvoyResource(LISTENER_TYPE, webListener);
  assert.deepEqual(tcpChains(webListener), [
    { match: { prefix_ranges: [{ address_prefix: '10.9.0.0', prefix_len: 16 }] }, cluster: 'outbound|27017||db-archive.default.svc.cluster.local' },
    { match: undefined, cluster: 'outbound|27017||db.default.svc.cluster.local' },
  ]);
  // sourceLabels: the batch workload's default chain goes to the archive.
  const batchListener = GENERATORS[LISTENER_TYPE].generate(push, batch, undefined).find((l) => l.name === `${vip}_27017`)!;
  assert.equal(tcpChains(batchListener).at(-1)!.cluster, 'outbound|27017||db-archive.default.svc.cluster.local');
});

test('a gateway whose VirtualService names only another gateway in its tcp matches gets no tcp chain', () => {
  const gw = gatewayProxy();
  const other = CONFIG.replace('gateways: [tcp-gw], port: 31400', 'gateways: [some-other-gw], port: 31400').replace('gateways: [mesh, tcp-gw]', 'gateways: [mesh, tcp-gw, some-other-gw]');
  const push = buildPush(parseYaml(other), [gw]);
  assert.equal(GENERATORS[LISTENER_TYPE].generate(push, gw, undefined).find((l) => l.name === '0.0.0.0_31400'), undefined);
});

test('retries: retryRemoteLocalities adds the previous_priorities retry priority; retryIgnorePreviousHosts: false drops the host predicate', () => {
  const client = podSidecar('client-0', 'default', { app: 'client' }, 'client', [], '198.18.0.42');
  const push = buildPush(
    parseYaml(`apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { selector: { app: web }, ports: [{ name: http, port: 8000 }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [web]
  http:
  - match: [{ uri: { prefix: /remote } }]
    retries: { attempts: 3, retryOn: 5xx, retryRemoteLocalities: true }
    route: [{ destination: { host: web } }]
  - retries: { attempts: 2, retryIgnorePreviousHosts: false }
    route: [{ destination: { host: web } }]
`),
    [client],
  );
  const [rc] = GENERATORS[ROUTE_TYPE].generate(push, client, ['8000']);
  assertEnvoyResource(ROUTE_TYPE, rc);
  const routes = ((rc.virtual_hosts as EnvoyJson[]).find((v) => v.name === 'web.default.svc.cluster.local:8000')!.routes as EnvoyJson[]).map((r) => (r.route as EnvoyJson).retry_policy as EnvoyJson);
  assert.deepEqual(routes[0].retry_priority, { name: 'envoy.retry_priorities.previous_priorities', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig', update_frequency: 2 } });
  assert.equal((routes[0].retry_host_predicate as EnvoyJson[])[0].name, 'envoy.retry_host_predicates.previous_hosts');
  assert.equal(routes[1].retry_priority, undefined);
  assert.equal(routes[1].retry_host_predicate, undefined);
});
