// Route translation details and scoping, on small configs: delegation, rewrites, mirrors, CORS,
// sourceLabels, Sidecar egress scoping with REGISTRY_ONLY, DestinationRule lookup order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { Issues } from '../../src/proxy/config/reader.ts';
import { compileRouteConfig } from '../../src/proxy/routing/route-config.ts';
import { buildPush, explicitSidecar, grpcProxy, parseYaml, podSidecar } from './fixtures.ts';

const SVCS = ['a', 'b', 'c']
  .map((n) => `apiVersion: v1\nkind: Service\nmetadata: { name: ${n}, namespace: default }\nspec: { selector: { app: ${n} }, ports: [{ name: http, port: 8000 }] }`)
  .join('\n---\n');

function vhost(routes: EnvoyJson[], name: string): EnvoyJson {
  return ((routes[0].virtual_hosts as EnvoyJson[]).find((v) => v.name === name) ?? assert.fail(`no vhost ${name}`)) as EnvoyJson;
}

const client = explicitSidecar('client-0', 'default', { app: 'client', version: 'v9' }, 'client', [], { base: 40000 });

test('delegate VirtualServices, rewrites, mirrors, CORS and sourceLabels', () => {
  const push = buildPush(
    parseYaml(`${SVCS}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: a, namespace: default }
spec:
  hosts: [a]
  http:
  - match: [{ uri: { prefix: /api }, sourceLabels: { version: v9 } }]
    delegate: { name: a-api, namespace: default }
  - match: [{ uri: { prefix: /other }, sourceLabels: { version: v1 } }]
    route: [{ destination: { host: c } }]
  - match: [{ uri: { exact: /old } }]
    rewrite: { uri: /new, authority: b.example }
    route: [{ destination: { host: b } }]
  - match: [{ uri: { regex: "/users/[0-9]+" }, ignoreUriCase: true, queryParams: { debug: {} }, withoutHeaders: { x-skip: { exact: "1" } } }]
    rewrite: { uriRegexRewrite: { match: "^/users/(.*)$", rewrite: "/u/\\\\1" } }
    route: [{ destination: { host: b } }]
  - route: [{ destination: { host: a } }]
    mirrors: [{ destination: { host: c }, percentage: { value: 12.5 } }]
    corsPolicy: { allowOrigins: [{ exact: "https://shop.example" }], allowMethods: [GET, POST], maxAge: 24h, allowCredentials: true }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: a-api, namespace: default }
spec:
  http:
  - match: [{ headers: { x-v: { exact: "2" } } }]
    route: [{ destination: { host: b } }]
  - route: [{ destination: { host: c } }]
`),
    [client],
  );
  const routes = GENERATORS[ROUTE_TYPE].generate(push, client, ['http_proxy']);
  const rs = vhost(routes, 'a.default.svc.cluster.local:8000').routes as EnvoyJson[];
  // CONNECT first, then the delegate's two routes under the parent's prefix; the v1-only route is dropped.
  assert.deepEqual(rs.map((r) => r.match), [
    { connect_matcher: {} },
    { prefix: '/api', headers: [{ name: 'x-v', string_match: { exact: '2' } }] },
    { prefix: '/api' },
    { path: '/old' },
    { safe_regex: { regex: '/users/[0-9]+' }, case_sensitive: false, headers: [{ name: 'x-skip', string_match: { exact: '1' }, invert_match: true }], query_parameters: [{ name: 'debug', present_match: true }] },
    { prefix: '/' },
  ]);
  assert.equal((rs[1].route as EnvoyJson).cluster, 'outbound|8000||b.default.svc.cluster.local');
  assert.equal((rs[2].route as EnvoyJson).cluster, 'outbound|8000||c.default.svc.cluster.local');
  assert.deepEqual([(rs[3].route as EnvoyJson).regex_rewrite, (rs[3].route as EnvoyJson).host_rewrite_literal], [{ pattern: { regex: '^/old$' }, substitution: '/new' }, 'b.example']);
  assert.deepEqual((rs[4].route as EnvoyJson).regex_rewrite, { pattern: { regex: '^/users/(.*)$' }, substitution: '/u/\\1' });
  const last = rs[5];
  assert.deepEqual((last.route as EnvoyJson).request_mirror_policies, [{ cluster: 'outbound|8000||c.default.svc.cluster.local', runtime_fraction: { default_value: { numerator: 125000, denominator: 'MILLION' } } }]);
  const cors = (last.typed_per_filter_config as EnvoyJson)['envoy.filters.http.cors'] as EnvoyJson;
  assert.deepEqual(cors, { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy', allow_origin_string_match: [{ exact: 'https://shop.example' }], allow_methods: 'GET,POST', max_age: '86400', allow_credentials: true });
});

test('a Sidecar scopes egress hosts and REGISTRY_ONLY blocks the rest with a 502', () => {
  const ns2 = `apiVersion: v1\nkind: Service\nmetadata: { name: far, namespace: other }\nspec: { selector: { app: far }, ports: [{ name: http, port: 8000 }] }`;
  const push = buildPush(
    parseYaml(`${SVCS}
---
${ns2}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: default }
spec:
  egress: [{ hosts: ["./a.default.svc.cluster.local", "istio-system/*"] }]
  outboundTrafficPolicy: { mode: REGISTRY_ONLY }
`),
    [client],
  );
  const clusters = GENERATORS[CLUSTER_TYPE].generate(push, client, undefined).map((c) => c.name);
  assert.ok(clusters.includes('outbound|8000||a.default.svc.cluster.local'));
  assert.ok(!clusters.includes('outbound|8000||b.default.svc.cluster.local'));
  assert.ok(!clusters.includes('outbound|8000||far.other.svc.cluster.local'));
  const routes = GENERATORS[ROUTE_TYPE].generate(push, client, ['http_proxy']);
  const block = vhost(routes, 'block_all');
  assert.deepEqual(block.routes, [{ name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } }]);
  // Without the Sidecar, the other namespace is visible and unknown hosts pass through.
  const open = buildPush(parseYaml(`${SVCS}\n---\n${ns2}`), [client]);
  const all = GENERATORS[ROUTE_TYPE].generate(open, client, ['http_proxy']);
  assert.ok(vhost(all, 'far.other.svc.cluster.local:8000'));
  assert.equal(((vhost(all, 'allow_any').routes as EnvoyJson[])[1].route as EnvoyJson).cluster, 'PassthroughCluster');
});

test('DestinationRule lookup: the proxy namespace, then the service namespace, then the root namespace', () => {
  const dr = (ns: string, lb: string) => `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: dr-${ns}, namespace: ${ns} }\nspec: { host: a.default.svc.cluster.local, trafficPolicy: { loadBalancer: { simple: ${lb} } } }`;
  const pod = podSidecar('client-0', 'team', { app: 'client' }, 'client', [], '198.18.0.40');
  const lbOf = (yaml: string) => {
    const push = buildPush(parseYaml(`${SVCS}\n---\n${yaml}`), [pod]);
    return GENERATORS[CLUSTER_TYPE].generate(push, pod, undefined).find((c) => c.name === 'outbound|8000||a.default.svc.cluster.local')!.lb_policy ?? 'ROUND_ROBIN';
  };
  assert.equal(lbOf(`${dr('istio-system', 'RANDOM')}\n---\n${dr('default', 'ROUND_ROBIN')}\n---\n${dr('team', 'LEAST_REQUEST')}`), 'LEAST_REQUEST');
  assert.equal(lbOf(`${dr('istio-system', 'RANDOM')}\n---\n${dr('default', 'ROUND_ROBIN')}`), 'ROUND_ROBIN');
  assert.equal(lbOf(dr('istio-system', 'RANDOM')), 'RANDOM');
});

test('a gateway backs its own Service (egress through a gateway): plaintext endpoint unless labelled for mTLS', async () => {
  const { parseNode } = await import('../../src/model/proxy.ts');
  const gw = parseNode({
    id: 'router~127.0.0.1~istio-egressgateway-0.istio-system~istio-system.svc.cluster.local',
    metadata: { NAMESPACE: 'istio-system', LABELS: { istio: 'egressgateway' }, INSTANCE_IPS: '127.0.0.1', INTERCEPTION_MODE: 'NONE', RIG_WORKLOAD_PORTS: [{ port: 8443, name: 'https' }, { port: 8080, name: 'http' }], RIG_EXPLICIT: { bind: '127.0.0.1', inboundPorts: { '8080': 18080 } } },
  });
  const push = buildPush(parseYaml(`apiVersion: v1\nkind: Service\nmetadata: { name: istio-egressgateway, namespace: istio-system }\nspec: { selector: { istio: egressgateway }, ports: [{ name: https, port: 443, targetPort: 8443 }, { name: http, port: 80, targetPort: 8080 }] }`), [gw]);
  const eds = GENERATORS['type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment'].generate(push, client, ['outbound|443||istio-egressgateway.istio-system.svc.cluster.local']);
  const lb = (((eds[0].endpoints as EnvoyJson[])[0].lb_endpoints as EnvoyJson[])[0]) as EnvoyJson;
  assert.deepEqual((lb.endpoint as EnvoyJson).address, { socket_address: { address: '127.0.0.1', port_value: 8443 } });
  assert.deepEqual(((lb.metadata as EnvoyJson).filter_metadata as EnvoyJson)['envoy.transport_socket_match'], { tlsMode: 'disabled' });
  // A gateway port moved to another host port (rig up --gateway-port) is reached there.
  const moved = GENERATORS['type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment'].generate(push, client, ['outbound|80||istio-egressgateway.istio-system.svc.cluster.local']);
  assert.equal(JSON.stringify(moved).includes('"port_value":18080'), true);
});

test('a sidecar port route lists each name once and ignores the Host port (as Istio); the proxy finds the service by name:port', () => {
  const push = buildPush(parseYaml(SVCS));
  const pod = podSidecar('a-0', 'default', { app: 'a' }, 'a', [{ port: 8000, name: 'http' }], '10.1.0.1');
  const [rc] = GENERATORS[ROUTE_TYPE].generate(push, pod, ['8000']);
  assert.equal(rc.ignore_port_in_host_matching, true);
  const b = vhost([rc], 'b.default.svc.cluster.local:8000');
  assert.ok((b.domains as string[]).includes('b.default.svc.cluster.local'));
  assert.ok(!(b.domains as string[]).some((d) => d.endsWith(':8000')), 'no name:port domains');
  const issues = new Issues();
  const table = compileRouteConfig(rc, 'rds', issues);
  assert.deepEqual(issues.errors, []);
  for (const host of ['b', 'b:8000', 'b.default:8000', 'b.default.svc.cluster.local:8000', 'B.default.svc']) assert.equal(table.findVirtualHost(host)?.name, 'b.default.svc.cluster.local:8000', host);
  // Proxyless gRPC matches the target authority as written: both forms, port kept.
  const [grpcRc] = GENERATORS[ROUTE_TYPE].generate(push, grpcProxy(), ['8000']);
  assert.equal(grpcRc.ignore_port_in_host_matching, undefined);
  assert.ok((vhost([grpcRc], 'b.default.svc.cluster.local:8000').domains as string[]).includes('b:8000'));
});
