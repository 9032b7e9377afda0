// DestinationRule workloadSelector, as istiod applies it (generated config): the rule applies to
// the outbound traffic of the workloads it selects in its own namespace only (sidecars and
// gateways); it is merged with an unselected rule of the same host only when their exportTo sets
// allow it (ENABLE_ENHANCED_DESTINATIONRULE_MERGE); a host found in the client's namespace with
// selected rules only leaves the clients they do not select without any rule.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import type { Proxy } from '../../src/model/proxy.ts';
import type { PushContext } from '../../src/model/push-context.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { assertEnvoyResource, buildPush, explicitSidecar, gatewayProxy, parseYaml, podSidecar } from './fixtures.ts';

const WEB = 'outbound|80||web.default.svc.cluster.local';
const WEB_V1 = 'outbound|80|v1|web.default.svc.cluster.local';

const SERVICES = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { selector: { app: web }, ports: [{ name: http, port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { name: api, namespace: other }
spec: { selector: { app: api }, ports: [{ name: http, port: 80 }] }
`;

function dr(name: string, body: string, ns = 'default', created = '2026-01-01T00:00:00Z'): string {
  return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: ${ns}, creationTimestamp: "${created}" }
spec:
${body}`;
}

const a = podSidecar('a-0', 'default', { app: 'a' }, 'a', [], '198.18.1.1');
const b = podSidecar('b-0', 'default', { app: 'b' }, 'b', [], '198.18.1.2');
const webPod = podSidecar('web-0', 'default', { app: 'web', version: 'v1' }, 'web', [{ port: 80, name: 'http' }], '198.18.1.3');

function push(yaml: string, proxies: Proxy[] = []): PushContext {
  return buildPush(parseYaml(SERVICES + yaml), [webPod, ...proxies]);
}

function clusters(p: PushContext, proxy: Proxy): Map<string, EnvoyJson> {
  const out = GENERATORS[CLUSTER_TYPE].generate(p, proxy, undefined);
  for (const c of out) assertEnvoyResource(CLUSTER_TYPE, c);
  return new Map(out.map((c) => [c.name as string, c]));
}

/** The cluster's max_connections (connectionPool.tcp.maxConnections), undefined for istiod's default. */
function maxConnections(c: EnvoyJson | undefined): unknown {
  const t = (c?.circuit_breakers as EnvoyJson | undefined)?.thresholds as EnvoyJson[] | undefined;
  const n = t?.[0]?.max_connections;
  return n === 4294967295 ? undefined : n;
}

test('a rule with workloadSelector shapes the clusters of the workloads it selects only', () => {
  const p = push(dr('web-a', `  host: web
  workloadSelector: { matchLabels: { app: a } }
  trafficPolicy:
    connectionPool: { tcp: { maxConnections: 7 } }
    outlierDetection: { consecutive5xxErrors: 3 }
  subsets: [{ name: v1, labels: { version: v1 } }]
`));
  const ca = clusters(p, a);
  const cb = clusters(p, b);
  assert.equal(maxConnections(ca.get(WEB)), 7);
  assert.equal((ca.get(WEB)!.outlier_detection as EnvoyJson).consecutive_5xx, 3);
  assert.ok(ca.has(WEB_V1));
  assert.equal(((ca.get(WEB)!.metadata as EnvoyJson).filter_metadata as EnvoyJson & { istio: EnvoyJson }).istio.config, '/apis/networking.istio.io/v1/namespaces/default/destination-rule/web-a');
  // b: as without the rule (generated in the same push, after a: nothing of a's is shared with it).
  assert.equal(maxConnections(cb.get(WEB)), undefined);
  assert.equal(cb.get(WEB)!.outlier_detection, undefined);
  assert.equal(cb.has(WEB_V1), false);
  // EDS: a's subset has the v1 endpoint; b has no such subset (a cluster no rule defines is empty).
  const eds = (proxy: Proxy) => GENERATORS[ENDPOINT_TYPE].generate(p, proxy, [WEB_V1])[0];
  assert.equal(((eds(a).endpoints as EnvoyJson[])[0].lb_endpoints as EnvoyJson[]).length, 1);
  assert.equal(eds(b).endpoints, undefined);
});

test('a selected rule and an unselected one for the same host: merged only when their exportTo allows it', () => {
  const selected = dr('web-a', `  host: web
  workloadSelector: { matchLabels: { app: a } }
  trafficPolicy: { connectionPool: { tcp: { maxConnections: 7 } } }
`, 'default', '2026-01-02T00:00:00Z');
  const unselected = (exportTo: string) => dr('web', `  host: web
${exportTo}  trafficPolicy: { connectionPool: { tcp: { maxConnections: 3 } } }
  subsets: [{ name: v1, labels: { version: v1 } }]
`);
  // No exportTo: {} is not {"."} (the selected rule's), so the rules stay apart (istiod ≥ 1.24).
  let p = push(selected + unselected(''));
  assert.equal(maxConnections(clusters(p, a).get(WEB)), 7);
  assert.equal(clusters(p, a).has(WEB_V1), false);
  assert.equal(maxConnections(clusters(p, b).get(WEB)), 3);
  assert.ok(clusters(p, b).has(WEB_V1));
  // exportTo ["."]: the unselected rule (older, but the selected one comes first) adds its subset
  // to the selected rule, whose own traffic policy stays; b gets the unselected rule alone.
  p = push(selected + unselected('  exportTo: ["."]\n'));
  assert.equal(maxConnections(clusters(p, a).get(WEB)), 7);
  assert.ok(clusters(p, a).has(WEB_V1));
  assert.equal(maxConnections(clusters(p, b).get(WEB)), 3);
  // A selected rule without a traffic policy takes the unselected rule's.
  p = push(dr('web-a', `  host: web
  workloadSelector: { matchLabels: { app: a } }
  subsets: [{ name: v2, labels: { version: v2 } }]
`) + unselected('  exportTo: ["."]\n'));
  const ca = clusters(p, a);
  assert.equal(maxConnections(ca.get(WEB)), 3);
  assert.ok(ca.has('outbound|80|v2|web.default.svc.cluster.local') && ca.has(WEB_V1));
  assert.equal(clusters(p, b).has('outbound|80|v2|web.default.svc.cluster.local'), false);
});

test('two unselected rules of one namespace for one host merge: the older one\'s traffic policy, both subsets', () => {
  const p = push(
    dr('web-old', `  host: web
  trafficPolicy: { connectionPool: { tcp: { maxConnections: 3 } } }
  subsets: [{ name: v1, labels: { version: v1 } }]
`) +
      dr('web-new', `  host: web
  trafficPolicy: { connectionPool: { tcp: { maxConnections: 9 } } }
  subsets: [{ name: v2, labels: { version: v2 } }, { name: v1, labels: { version: other } }]
`, 'default', '2026-01-03T00:00:00Z'),
  );
  const cb = clusters(p, b);
  assert.equal(maxConnections(cb.get(WEB)), 3);
  assert.ok(cb.has(WEB_V1) && cb.has('outbound|80|v2|web.default.svc.cluster.local'));
  // The duplicate v1 keeps the older rule's labels: the v1 endpoint is in it.
  const [la] = GENERATORS[ENDPOINT_TYPE].generate(p, b, [WEB_V1]);
  assert.equal(((la.endpoints as EnvoyJson[])[0].lb_endpoints as EnvoyJson[]).length, 1);
});

test('workload selectors do not apply across namespaces; a selected rule in the client namespace hides the service namespace\'s rule', () => {
  const API = 'outbound|80||api.other.svc.cluster.local';
  const p = push(
    dr('api', `  host: api.other.svc.cluster.local
  trafficPolicy: { connectionPool: { tcp: { maxConnections: 5 } } }
`, 'other') +
      dr('api-a', `  host: api.other.svc.cluster.local
  workloadSelector: { matchLabels: { app: a } }
  trafficPolicy: { connectionPool: { tcp: { maxConnections: 7 } } }
`),
  );
  const elsewhere = podSidecar('a-0', 'third', { app: 'a' }, 'a', [], '198.18.1.4');
  assert.equal(maxConnections(clusters(p, a).get(API)), 7);
  // Another namespace's workload with the same labels: the service namespace's rule.
  assert.equal(maxConnections(clusters(p, elsewhere).get(API)), 5);
  // b, in the selected rule's namespace: istiod finds the host there and picks nothing (istio/istio#52691).
  assert.equal(maxConnections(clusters(p, b).get(API)), undefined);
});

test('a selected rule in the root namespace applies to the gateways it selects there, not mesh-wide', () => {
  const p = push(dr('web-gw', `  host: web.default.svc.cluster.local
  workloadSelector: { matchLabels: { istio: ingressgateway } }
  trafficPolicy: { connectionPool: { tcp: { maxConnections: 11 } } }
`, 'istio-system') + dr('web-all', `  host: web.default.svc.cluster.local
  trafficPolicy: { connectionPool: { tcp: { maxConnections: 2 } } }
`, 'istio-system'));
  assert.equal(maxConnections(clusters(p, gatewayProxy()).get(WEB)), 11);
  // Another gateway of the root namespace: the host is found among the root namespace's private
  // rules (the selected one only), so it gets none, as istiod (the exported rule is looked up after).
  assert.equal(maxConnections(clusters(p, gatewayProxy({ istio: 'egressgateway' })).get(WEB)), undefined);
  // A sidecar elsewhere with the gateway's labels gets the root namespace's exported rule.
  assert.equal(maxConnections(clusters(p, podSidecar('x-0', 'default', { istio: 'ingressgateway' }, 'x', [], '198.18.1.5')).get(WEB)), 2);
});

test('a selected rule\'s consistentHash gives the hash policy to the selected proxy\'s routes only', () => {
  const p = push(dr('web-a', `  host: web
  workloadSelector: { matchLabels: { app: a } }
  trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: x-user } } }
`));
  const hashOf = (proxy: Proxy): unknown => {
    const [rc] = GENERATORS[ROUTE_TYPE].generate(p, proxy, ['http_proxy']);
    let found: unknown;
    JSON.stringify(rc, (k, v) => {
      if (k === 'route' && (v as EnvoyJson).cluster === WEB) found = (v as EnvoyJson).hash_policy;
      return v;
    });
    return found;
  };
  const xa = explicitSidecar('a-1', 'default', { app: 'a' }, 'a', []);
  const xb = explicitSidecar('b-1', 'default', { app: 'b' }, 'b', []);
  assert.deepEqual(hashOf(xa), [{ header: { header_name: 'x-user' } }]);
  assert.equal(hashOf(xb), undefined);
});
