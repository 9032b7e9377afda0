// The rest of the VirtualService match attributes (method, port, sourceNamespace, scheme) and of the
// DestinationRule load balancer (warmup), and exportTo of VirtualServices and DestinationRules.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { assertEnvoyResource, buildPush, parseYaml, podSidecar } from './fixtures.ts';

const CONFIG = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { selector: { app: web }, ports: [{ name: http, port: 80 }, { name: http-admin, port: 8080 }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: shop }
spec:
  hosts: [web.shop.svc.cluster.local]
  http:
  - name: posts
    match: [{ method: { exact: POST }, port: 80, scheme: { exact: http } }]
    route: [{ destination: { host: web.shop.svc.cluster.local, port: { number: 80 } } }]
  - name: from-ops
    match: [{ sourceNamespace: ops }]
    route: [{ destination: { host: web.shop.svc.cluster.local, port: { number: 8080 } } }]
  - name: rest
    route: [{ destination: { host: web.shop.svc.cluster.local } }]
    mirror: { host: web.shop.svc.cluster.local, port: { number: 8080 } }
    mirror_percent: 25
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web-private, namespace: shop }
spec:
  hosts: [web.shop.svc.cluster.local]
  exportTo: ["."]
  http: [{ name: private, route: [{ destination: { host: web.shop.svc.cluster.local } }] }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: shop }
spec:
  host: web.shop.svc.cluster.local
  exportTo: ["."]
  trafficPolicy: { loadBalancer: { simple: LEAST_REQUEST, warmup: { duration: 60s, minimumPercent: 10, aggression: 2 } } }
`;

function routesFor(ns: string, port: number): { names: string[]; routes: EnvoyJson[] } {
  const proxy = podSidecar(`client-${ns}`, ns, { app: 'client' }, 'client', [], ns === 'ops' ? '198.18.0.80' : '198.18.0.81');
  const push = buildPush(parseYaml(CONFIG), [proxy]);
  const [rc] = GENERATORS[ROUTE_TYPE].generate(push, proxy, [String(port)]);
  assertEnvoyResource(ROUTE_TYPE, rc);
  const routes = ((rc.virtual_hosts as EnvoyJson[]).find((v) => v.name === `web.shop.svc.cluster.local:${port}`)!.routes as EnvoyJson[]);
  return { names: routes.map((r) => r.name as string), routes };
}

test('method, port and scheme become header/port matches; sourceNamespace picks the calling proxies', () => {
  const ops = routesFor('ops', 80);
  assert.deepEqual(ops.names, ['posts', 'from-ops', 'rest']);
  assert.deepEqual((ops.routes[0].match as EnvoyJson).headers, [
    { name: ':method', string_match: { exact: 'POST' } },
    { name: ':scheme', string_match: { exact: 'http' } },
  ]);
  // Port 8080: the `port: 80` match does not apply; another namespace does not get from-ops.
  assert.deepEqual(routesFor('ops', 8080).names, ['from-ops', 'rest']);
  assert.deepEqual(routesFor('web', 80).names, ['posts', 'rest']);
  // The deprecated mirror_percent still sets the mirrored share.
  const rest = ops.routes[2].route as EnvoyJson;
  assert.deepEqual((rest.request_mirror_policies as EnvoyJson[])[0], { cluster: 'outbound|8080||web.shop.svc.cluster.local', runtime_fraction: { default_value: { numerator: 250000, denominator: 'MILLION' } } });
});

test('exportTo ".": the VirtualService and DestinationRule apply in their own namespace only', () => {
  // In shop, web-private follows web's routes (same host, later); elsewhere it is invisible.
  assert.deepEqual(routesFor('shop', 8080).names, ['rest', 'private']);
  assert.ok(!routesFor('ops', 8080).names.includes('private'));
  const cluster = (ns: string) => {
    const proxy = podSidecar(`c-${ns}`, ns, { app: 'c' }, 'c', [], '198.18.0.82');
    const push = buildPush(parseYaml(CONFIG), [proxy]);
    const c = GENERATORS[CLUSTER_TYPE].generate(push, proxy, undefined).find((x) => x.name === 'outbound|80||web.shop.svc.cluster.local')!;
    assertEnvoyResource(CLUSTER_TYPE, c);
    return c;
  };
  assert.deepEqual(cluster('shop').least_request_lb_config, { slow_start_config: { slow_start_window: '60s', aggression: { default_value: 2, runtime_key: 'upstream.warmup.aggression' }, min_weight_percent: { value: 10 } } });
  assert.equal(cluster('ops').least_request_lb_config, undefined);
});
