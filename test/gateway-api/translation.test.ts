// Gateway API → xDS through the real loader, push context and generators (as istiod: Gateways and
// HTTPRoutes become Istio Gateways and VirtualServices, then the usual builders run): listeners
// and routes of a gateway proxy labelled gateway.networking.k8s.io/gateway-name, route precedence,
// filters, hostnames, references and the status Istio would report.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE, checkMessage, type EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { Issues } from '../../src/proxy/config/reader.ts';
import { setupExtensions } from '../../src/proxy/extensions.ts';
import { compileRouteConfig, matchRoute, redirectLocation, rewritePath } from '../../src/proxy/routing/route-config.ts';
import type { PushContext } from '../../src/model/push-context.ts';
import { assertEnvoyResource, buildPush, explicitSidecar, gatewayProxy, parseYaml, rdsNames } from '../xds/fixtures.ts';
import { gatewayApiResourceStatus } from '../../src/model/gateway-api/resource-status.ts';

const svc = (name: string, ns = 'default', port = 9080, portName = 'http') => `apiVersion: v1\nkind: Service\nmetadata: { name: ${name}, namespace: ${ns} }\nspec: { selector: { app: ${name} }, ports: [{ name: ${portName}, port: ${port} }] }\n---\n`;
const gw = (name: string, listeners: string, ns = 'default', cls = 'istio') => `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n  gatewayClassName: ${cls}\n  listeners:\n${listeners}\n---\n`;
const HTTP80 = '  - { name: http, port: 80, protocol: HTTP }';

function router(name: string, ns = 'default') {
  return gatewayProxy({ 'gateway.networking.k8s.io/gateway-name': name }, ns);
}

function routeConfig(push: PushContext, proxy = router('gw'), name = 'http.80'): EnvoyJson {
  const [rc] = GENERATORS[ROUTE_TYPE].generate(push, proxy, [name]);
  assert.ok(rc, `no route configuration ${name}`);
  assert.deepEqual(checkMessage('envoy.config.route.v3.RouteConfiguration', rc), []);
  const issues = new Issues();
  compileRouteConfig(rc, 'rds', issues);
  assert.deepEqual(issues.errors, [], 'rig proxy accepts the route configuration');
  return rc;
}

function vhost(rc: EnvoyJson, name: string): EnvoyJson {
  const vhs = rc.virtual_hosts as EnvoyJson[];
  return vhs.find((v) => v.name === name) ?? assert.fail(`no vhost ${name} in ${vhs.map((v) => v.name).join(', ')}`);
}

function conditions(push: PushContext): string[] {
  return push.gatewayApiDiagnostics.map((d) => `${d.severity} ${d.resource} ${d.path ?? ''}: ${d.message}`);
}

test("Istio's bookinfo-gateway.yaml: a listener on port 80 and the routes of the HTTPRoute, exact before prefix", () => {
  const push = buildPush(
    parseYaml(`${svc('productpage')}${gw('bookinfo-gateway', '  - { name: http, port: 80, protocol: HTTP, allowedRoutes: { namespaces: { from: Same } } }')}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: bookinfo }
spec:
  parentRefs: [{ name: bookinfo-gateway }]
  rules:
  - matches:
    - path: { type: PathPrefix, value: /static }
    - path: { type: Exact, value: /login }
    - path: { type: PathPrefix, value: /api/v1/products }
    - path: { type: Exact, value: /productpage }
    backendRefs: [{ name: productpage, port: 9080 }]
`),
  );
  assert.deepEqual(conditions(push), []);
  const proxy = router('bookinfo-gateway');
  const listeners = GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined);
  for (const l of listeners) assertEnvoyResource(LISTENER_TYPE, l);
  assert.deepEqual(listeners.map((l) => (l.address as EnvoyJson).socket_address), [{ address: '0.0.0.0', port_value: 80 }]);
  assert.deepEqual(rdsNames(listeners), ['http.80']);
  const rc = routeConfig(push, proxy);
  const routes = vhost(rc, '*:80').routes as EnvoyJson[];
  assert.deepEqual(
    routes.map((r) => r.match),
    [{ path: '/productpage' }, { path: '/login' }, { path_separated_prefix: '/api/v1/products' }, { path_separated_prefix: '/static' }],
  );
  for (const r of routes) assert.equal((r.route as EnvoyJson).cluster, 'outbound|9080||productpage.default.svc.cluster.local');
  assert.equal((routes[0].route as EnvoyJson).cluster_not_found_response_code, 'INTERNAL_SERVER_ERROR');
  const clusters = GENERATORS[CLUSTER_TYPE].generate(push, proxy, undefined).map((c) => c.name);
  assert.ok(clusters.includes('outbound|9080||productpage.default.svc.cluster.local'));
  // Another gateway proxy, or Istio's own ingress gateway, gets nothing from it.
  assert.deepEqual(GENERATORS[LISTENER_TYPE].generate(push, router('other'), undefined), []);
  assert.deepEqual(GENERATORS[LISTENER_TYPE].generate(push, gatewayProxy(), undefined), []);
});

test('precedence across rules and routes: exact, longest prefix, method, headers, query parameters, then the oldest route', () => {
  const push = buildPush(
    parseYaml(`${svc('a')}${svc('b')}${gw('gw', HTTP80)}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: old, creationTimestamp: "2024-01-01T00:00:00Z" }
spec:
  parentRefs: [{ name: gw }]
  rules:
  - backendRefs: [{ name: a, port: 9080 }]
  - matches: [{ path: { value: /api/ } }]
    backendRefs: [{ name: a, port: 9080 }]
  - matches: [{ path: { value: /api }, headers: [{ name: X-Version, value: "2" }] }]
    backendRefs: [{ name: a, port: 9080 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: young, creationTimestamp: "2025-01-01T00:00:00Z" }
spec:
  parentRefs: [{ name: gw }]
  rules:
  - matches: [{ path: { value: /api }, queryParams: [{ name: debug, value: "1" }] }]
    backendRefs: [{ name: b, port: 9080 }]
  - matches: [{ path: { value: /api }, method: POST }]
    backendRefs: [{ name: b, port: 9080 }]
  - matches: [{ path: { type: Exact, value: /a } }]
    backendRefs: [{ name: b, port: 9080 }]
  - matches: [{ path: { value: /api }, headers: [{ name: x-version, type: RegularExpression, value: "[0-9]" }] }]
    backendRefs: [{ name: b, port: 9080 }]
`),
  );
  assert.deepEqual(conditions(push), []);
  const routes = vhost(routeConfig(push), '*:80').routes as EnvoyJson[];
  assert.deepEqual(
    routes.map((r) => [r.name, r.match]),
    [
      ['default.young.2.0', { path: '/a' }],
      ['default.young.1.0', { path_separated_prefix: '/api', headers: [{ name: ':method', string_match: { exact: 'POST' } }] }],
      ['default.old.2.0', { path_separated_prefix: '/api', headers: [{ name: 'x-version', string_match: { exact: '2' } }] }],
      ['default.young.3.0', { path_separated_prefix: '/api', headers: [{ name: 'x-version', string_match: { safe_regex: { regex: '[0-9]' } } }] }],
      ['default.young.0.0', { path_separated_prefix: '/api', query_parameters: [{ name: 'debug', string_match: { exact: '1' } }] }],
      ['default.old.1.0', { path_separated_prefix: '/api' }],
      ['default.old.0.0', { prefix: '/' }],
    ],
  );
});

test('filters: header modifiers, redirects, rewrites, mirrors, weights and timeouts', () => {
  const push = buildPush(
    parseYaml(`${svc('a')}${svc('b')}${svc('mirror')}${gw('gw', HTTP80)}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r }
spec:
  parentRefs: [{ name: gw }]
  rules:
  - matches: [{ path: { type: Exact, value: /headers } }]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: { set: [{ name: x-set, value: s }], add: [{ name: x-add, value: a }], remove: [x-gone] }
    - type: ResponseHeaderModifier
      responseHeaderModifier: { set: [{ name: x-resp, value: r }] }
    backendRefs:
    - { name: a, port: 9080, weight: 90 }
    - name: b
      port: 9080
      weight: 10
      filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: x-backend, value: b }] } }]
    timeouts: { request: 10s, backendRequest: 2s }
  - matches: [{ path: { value: /old } }]
    filters: [{ type: RequestRedirect, requestRedirect: { scheme: https, hostname: new.example.com, statusCode: 301, path: { type: ReplacePrefixMatch, replacePrefixMatch: /new } } }]
  - matches: [{ path: { value: /full } }]
    filters: [{ type: RequestRedirect, requestRedirect: { path: { type: ReplaceFullPath, replaceFullPath: /elsewhere } } }]
  - matches: [{ path: { value: /v1 } }]
    filters: [{ type: URLRewrite, urlRewrite: { hostname: a.internal, path: { type: ReplacePrefixMatch, replacePrefixMatch: /v2 } } }]
    backendRefs: [{ name: a, port: 9080 }]
  - matches: [{ path: { value: /strip } }]
    filters: [{ type: URLRewrite, urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: / } } }]
    backendRefs: [{ name: a, port: 9080 }]
  - matches: [{ path: { value: /whole } }]
    filters:
    - { type: URLRewrite, urlRewrite: { path: { type: ReplaceFullPath, replaceFullPath: /index.html } } }
    - { type: RequestMirror, requestMirror: { backendRef: { name: mirror, port: 9080 }, percent: 25 } }
    backendRefs: [{ name: a, port: 9080 }]
  - matches: [{ path: { value: /nothing } }]
  - matches: [{ path: { value: /retry } }]
    backendRefs: [{ name: a, port: 9080 }]
    retry: { codes: [500, 502], attempts: 3, backoff: 100ms }
`),
  );
  assert.deepEqual(conditions(push), []);
  const routes = vhost(routeConfig(push), '*:80').routes as EnvoyJson[];
  const byName = Object.fromEntries(routes.map((r) => [r.name, r]));
  const headers = byName['default.r.0.0'];
  assert.deepEqual(headers.request_headers_to_add, [
    { header: { key: 'x-set', value: 's' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    { header: { key: 'x-add', value: 'a' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
  ]);
  assert.deepEqual(headers.request_headers_to_remove, ['x-gone']);
  assert.deepEqual(headers.response_headers_to_add, [{ header: { key: 'x-resp', value: 'r' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }]);
  const action = headers.route as EnvoyJson;
  assert.deepEqual(action.weighted_clusters, {
    clusters: [
      { name: 'outbound|9080||a.default.svc.cluster.local', weight: 90 },
      { name: 'outbound|9080||b.default.svc.cluster.local', weight: 10, request_headers_to_add: [{ header: { key: 'x-backend', value: 'b' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }] },
    ],
  });
  assert.equal(action.timeout, '10s');
  assert.equal((action.retry_policy as EnvoyJson).per_try_timeout, '2s');
  assert.deepEqual(byName['default.r.1.0'].redirect, { prefix_rewrite: '/new', host_redirect: 'new.example.com', scheme_redirect: 'https' });
  assert.deepEqual(byName['default.r.2.0'].redirect, { path_redirect: '/elsewhere', response_code: 'FOUND' });
  assert.equal((byName['default.r.3.0'].route as EnvoyJson).prefix_rewrite, '/v2');
  assert.equal((byName['default.r.3.0'].route as EnvoyJson).host_rewrite_literal, 'a.internal');
  assert.deepEqual((byName['default.r.4.0'].route as EnvoyJson).regex_rewrite, { pattern: { regex: '^/strip/*' }, substitution: '/' });
  const whole = byName['default.r.5.0'].route as EnvoyJson;
  assert.deepEqual(whole.regex_rewrite, { pattern: { regex: '/.*' }, substitution: '/index.html' });
  assert.deepEqual(whole.request_mirror_policies, [{ cluster: 'outbound|9080||mirror.default.svc.cluster.local', runtime_fraction: { default_value: { numerator: 250000, denominator: 'MILLION' } } }]);
  // A rule with neither backends nor a redirect: 500, as the Gateway API requires.
  assert.deepEqual(byName['default.r.6.0'].direct_response, { status: 500 });
  const retry = (byName['default.r.7.0'].route as EnvoyJson).retry_policy as EnvoyJson;
  assert.equal(retry.retry_on, 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes');
  assert.deepEqual([retry.num_retries, retry.retriable_status_codes, retry.retry_back_off], [3, [500, 502], { base_interval: '0.1s' }]);
});

test("CORS filter: the route's CorsPolicy as istiod converts it (wildcard origins as regexes, maxAge 5 s by default, unmatched preflights answered)", () => {
  const push = buildPush(
    parseYaml(`${svc('a')}${gw('gw', HTTP80)}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r }
spec:
  parentRefs: [{ name: gw }]
  rules:
  - filters: [{ type: CORS, cors: { allowOrigins: ["*", "https://*.example.com", "http://a.example:8080"], allowMethods: ["*"], exposeHeaders: [x-a] } }]
    backendRefs: [{ name: a, port: 9080 }]
`),
  );
  assert.deepEqual(conditions(push), []);
  setupExtensions(); // rig proxy's HTTP filters, the CORS filter's per-route config among them
  const [route] = vhost(routeConfig(push), '*:80').routes as EnvoyJson[];
  assert.deepEqual((route.typed_per_filter_config as EnvoyJson)['envoy.filters.http.cors'], {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
    allow_origin_string_match: [{ safe_regex: { regex: '.*' } }, { safe_regex: { regex: 'https://.*\\.example\\.com' } }, { exact: 'http://a.example:8080' }],
    allow_methods: '*',
    expose_headers: 'x-a',
    max_age: '5',
    forward_not_matching_preflights: false,
  });
});

test("a RequestRedirect without a port takes the scheme's well-known port, else the listener's, as the Gateway API says (istiod: derivePort FROM_PROTOCOL_DEFAULT / FROM_REQUEST_PORT)", () => {
  const push = buildPush(
    parseYaml(`${gw('gw', '  - { name: http, port: 8080, protocol: HTTP }')}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r }
spec:
  parentRefs: [{ name: gw }]
  rules:
  - matches: [{ path: { value: /host } }]
    filters: [{ type: RequestRedirect, requestRedirect: { hostname: example.org } }]
  - matches: [{ path: { value: /scheme } }]
    filters: [{ type: RequestRedirect, requestRedirect: { hostname: example.org, scheme: https } }]
  - matches: [{ path: { value: /port } }]
    filters: [{ type: RequestRedirect, requestRedirect: { hostname: example.org, port: 9443 } }]
`),
  );
  assert.deepEqual(conditions(push), []);
  const table = compileRouteConfig(routeConfig(push, router('gw'), 'http.8080'), 'rds', new Issues());
  const vh = table.findVirtualHost('example.com:8080')!;
  const location = (path: string) => {
    const head = { method: 'GET', path, authority: 'example.com:8080', scheme: 'http', headers: {} };
    return redirectLocation(matchRoute(vh, head, false)!, head);
  };
  assert.deepEqual(
    ['/host', '/scheme', '/port'].map(location),
    ['http://example.org:8080/host', 'https://example.org/scheme', 'http://example.org:9443/port'],
    "the listener's port with the hostname alone; https's own (443, left out) with the scheme; the port given",
  );
});

test("ReplacePrefixMatch rewrites and redirects give the Gateway API's paths (no // when the prefix goes entirely), through rig proxy's route table", () => {
  const rule = (prefix: string, filter: string, replacement: string) =>
    `  - matches: [{ path: { value: "${prefix}" } }]\n    filters: [{ type: ${filter}, ${filter === 'URLRewrite' ? 'urlRewrite' : 'requestRedirect'}: { path: { type: ReplacePrefixMatch, replacePrefixMatch: "${replacement}" } } }]\n${filter === 'URLRewrite' ? '    backendRefs: [{ name: a, port: 9080 }]\n' : ''}`;
  const push = buildPush(
    parseYaml(`${svc('a')}${gw('gw', HTTP80)}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r }
spec:
  parentRefs: [{ name: gw }]
  rules:
${rule('/a', 'URLRewrite', '/xyz')}${rule('/b/', 'URLRewrite', '/xyz/')}${rule('/c', 'URLRewrite', '/')}${rule('/d', 'URLRewrite', '')}${rule('/r', 'RequestRedirect', '/')}${rule('/s/', 'RequestRedirect', '/new/')}${rule('/t', 'RequestRedirect', '/xyz')}${rule('/', 'URLRewrite', '/root')}`),
  );
  assert.deepEqual(conditions(push), []);
  const table = compileRouteConfig(routeConfig(push), 'rds', new Issues());
  const vh = table.findVirtualHost('example.com')!;
  const outcome = (path: string) => {
    const head = { method: 'GET', path, authority: 'example.com', scheme: 'http', headers: {} };
    const route = matchRoute(vh, head, false)!;
    return route.redirect ? `redirect ${redirectLocation(route, head)}` : `upstream ${rewritePath(route, path)}`;
  };
  // The Gateway API's table (HTTPPathModifier), and redirects alike.
  assert.deepEqual(
    ['/a/bar', '/a', '/a/', '/b/bar', '/b', '/c/bar', '/c', '/c/', '/d/bar', '/d', '/r/rest', '/r', '/s/rest?q=1', '/t/rest', '/other'].map((p) => `${p} ${outcome(p)}`),
    [
      '/a/bar upstream /xyz/bar',
      '/a upstream /xyz',
      '/a/ upstream /xyz/',
      '/b/bar upstream /xyz/bar',
      '/b upstream /xyz',
      '/c/bar upstream /bar',
      '/c upstream /',
      '/c/ upstream /',
      '/d/bar upstream /bar',
      '/d upstream /',
      '/r/rest redirect http://example.com/rest',
      '/r redirect http://example.com/',
      '/s/rest?q=1 redirect http://example.com/new/rest?q=1',
      '/t/rest redirect http://example.com/xyz/rest',
      '/other upstream /root/other',
    ],
  );
});

test('hostnames are intersected with listener hostnames; listeners select by sectionName and port', () => {
  const push = buildPush(
    parseYaml(`${svc('a')}${gw('gw', `  - { name: wild, port: 80, protocol: HTTP, hostname: "*.example.com" }\n  - { name: other, port: 8080, protocol: HTTP }`)}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r }
spec:
  parentRefs: [{ name: gw, sectionName: wild }]
  hostnames: [foo.example.com, "*.example.com", bar.other.org]
  rules: [{ backendRefs: [{ name: a, port: 9080 }] }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: nohost }
spec:
  parentRefs: [{ name: gw, sectionName: wild }]
  hostnames: [bar.other.org]
  rules: [{ backendRefs: [{ name: a, port: 9080 }] }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: byport }
spec:
  parentRefs: [{ name: gw, port: 8080 }, { name: gw, sectionName: missing }]
  rules: [{ backendRefs: [{ name: a, port: 9080 }] }]
`),
  );
  assert.deepEqual(conditions(push), [
    'Error HTTPRoute default/byport spec.parentRefs[1]: Accepted=False (NoMatchingParent): Gateway default/gw has no listener with sectionName missing',
    'Error HTTPRoute default/nohost spec.parentRefs[0]: Accepted=False (NoMatchingListenerHostname): none of the route\'s hostnames matches a listener hostname of Gateway default/gw',
  ]);
  const rc80 = routeConfig(push);
  assert.deepEqual((rc80.virtual_hosts as EnvoyJson[]).map((v) => [v.name, v.domains]), [
    ['foo.example.com:80', ['foo.example.com', 'foo.example.com:80']],
    ['*.example.com:80', ['*.example.com', '*.example.com:80']],
  ]);
  const rc8080 = routeConfig(push, router('gw'), 'http.8080');
  assert.deepEqual((rc8080.virtual_hosts as EnvoyJson[]).map((v) => v.name), ['*:8080']);
  assert.deepEqual(((rc8080.virtual_hosts as EnvoyJson[])[0].routes as EnvoyJson[]).map((r) => r.name), ['default.byport.0.0']);
});

test('listener isolation: a name belongs to the most specific listener on its port, not to a wildcard one beside it', () => {
  const push = buildPush(
    parseYaml(`${svc('a')}${svc('b')}${gw('gw', `  - { name: wild, port: 80, protocol: HTTP, hostname: "*.example.com" }\n  - { name: foo, port: 80, protocol: HTTP, hostname: foo.example.com }\n  - { name: any, port: 80, protocol: HTTP }`)}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: on-wild }
spec:
  parentRefs: [{ name: gw, sectionName: wild }]
  hostnames: [foo.example.com, bar.example.com]
  rules: [{ backendRefs: [{ name: a, port: 9080 }] }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: on-foo }
spec:
  parentRefs: [{ name: gw, sectionName: foo }]
  rules: [{ backendRefs: [{ name: b, port: 9080 }] }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: on-any }
spec:
  parentRefs: [{ name: gw, sectionName: any }]
  hostnames: [foo.example.com, bar.example.com, other.org]
  rules: [{ backendRefs: [{ name: a, port: 9080 }] }]
`),
  );
  assert.deepEqual(conditions(push), [
    'Info HTTPRoute default/on-any spec.parentRefs[0]: hostname foo.example.com is served by listener wild of Gateway default/gw, not by listener any (listener isolation: the most specific listener on a port takes a name)',
    'Info HTTPRoute default/on-any spec.parentRefs[0]: hostname bar.example.com is served by listener wild of Gateway default/gw, not by listener any (listener isolation: the most specific listener on a port takes a name)',
    'Info HTTPRoute default/on-wild spec.parentRefs[0]: hostname foo.example.com is served by listener foo of Gateway default/gw, not by listener wild (listener isolation: the most specific listener on a port takes a name)',
  ]);
  const rc = routeConfig(push);
  const names = (v: string) => (vhost(rc, v).routes as EnvoyJson[]).map((r) => r.name);
  // foo.example.com: the foo listener's route only (on-wild's foo.example.com does not share it).
  assert.deepEqual(names('foo.example.com:80'), ['default.on-foo.0.0']);
  assert.deepEqual(names('bar.example.com:80'), ['default.on-wild.0.0']);
  assert.deepEqual(names('other.org:80'), ['default.on-any.0.0']);
});

test('backendRefs that do not resolve get 500 with a ResolvedRefs diagnostic; a ReferenceGrant permits another namespace', () => {
  const base = `${svc('a')}${svc('remote', 'other')}${gw('gw', HTTP80)}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r }
spec:
  parentRefs: [{ name: gw }]
  rules:
  - matches: [{ path: { value: /split } }]
    backendRefs: [{ name: a, port: 9080, weight: 1 }, { name: missing, port: 9080, weight: 1 }]
  - matches: [{ path: { value: /remote } }]
    backendRefs: [{ name: remote, namespace: other, port: 9080 }]
`;
  const without = buildPush(parseYaml(base));
  assert.deepEqual(conditions(without), [
    'Error HTTPRoute default/r spec.rules[0].backendRefs[1]: ResolvedRefs=False (BackendNotFound): backend Service default/missing does not exist',
    'Error HTTPRoute default/r spec.rules[1].backendRefs[0]: ResolvedRefs=False (RefNotPermitted): backendRef to Service other/remote is not permitted',
  ]);
  const routes = vhost(routeConfig(without), '*:80').routes as EnvoyJson[];
  const split = routes.find((r) => r.name === 'default.r.0.0')!.route as EnvoyJson;
  // Half the requests go to a cluster that does not exist: rig proxy (like Envoy) answers them 500.
  assert.deepEqual((split.weighted_clusters as EnvoyJson).clusters, [
    { name: 'outbound|9080||a.default.svc.cluster.local', weight: 1 },
    { name: 'outbound|9080||unresolved-backend.rigging.invalid', weight: 1 },
  ]);
  assert.equal(split.cluster_not_found_response_code, 'INTERNAL_SERVER_ERROR');
  assert.equal((routes.find((r) => r.name === 'default.r.1.0')!.route as EnvoyJson).cluster, 'outbound|9080||unresolved-backend.rigging.invalid');

  const granted = buildPush(
    parseYaml(`${base}---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: { name: allow-default, namespace: other }
spec:
  from: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default }]
  to: [{ group: "", kind: Service, name: remote }]
`),
  );
  assert.equal(conditions(granted).length, 1);
  const remote = (vhost(routeConfig(granted), '*:80').routes as EnvoyJson[]).find((r) => r.name === 'default.r.1.0')!;
  assert.equal((remote.route as EnvoyJson).cluster, 'outbound|9080||remote.other.svc.cluster.local');
});

test('allowedRoutes: Same namespace by default, All, and a Selector over Namespace labels', () => {
  const route = (name: string, ns: string, gwName: string) => `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n  parentRefs: [{ name: ${gwName}, namespace: infra }]\n  rules: [{ matches: [{ path: { value: /${name} } }], backendRefs: [{ name: a, namespace: ${ns}, port: 9080 }] }]\n---\n`;
  const push = buildPush(
    parseYaml(`${svc('a', 'team-a')}${svc('a', 'team-b')}
apiVersion: v1
kind: Namespace
metadata: { name: team-a, labels: { shared-gateway-access: "true" } }
---
${gw('same', HTTP80, 'infra')}${gw('selected', '  - { name: http, port: 81, protocol: HTTP, allowedRoutes: { namespaces: { from: Selector, selector: { matchLabels: { shared-gateway-access: "true" } } } } }', 'infra')}${gw('all', '  - { name: http, port: 82, protocol: HTTP, allowedRoutes: { namespaces: { from: All } } }', 'infra')}${route('to-same', 'team-a', 'same')}${route('sel-a', 'team-a', 'selected')}${route('sel-b', 'team-b', 'selected')}${route('all-b', 'team-b', 'all')}`),
  );
  assert.deepEqual(conditions(push), [
    'Error HTTPRoute team-a/to-same spec.parentRefs[0]: Accepted=False (NotAllowedByListeners): no listener of Gateway infra/same allows HTTPRoutes from namespace team-a',
    'Error HTTPRoute team-b/sel-b spec.parentRefs[0]: Accepted=False (NotAllowedByListeners): no listener of Gateway infra/selected allows HTTPRoutes from namespace team-b',
  ]);
  const names = (gwName: string, port: number) => ((routeConfig(push, router(gwName, 'infra'), `http.${port}`).virtual_hosts as EnvoyJson[])[0].routes as EnvoyJson[]).map((r) => r.name);
  assert.deepEqual(names('selected', 81), ['team-a.sel-a.0.0']);
  assert.deepEqual(names('all', 82), ['team-b.all-b.0.0']);
  assert.deepEqual(names('same', 80), ['default']);
});

test('gateway classes: istio is built in, a GatewayClass of the Istio controller adds one, others are skipped, waypoints are refused', () => {
  const push = buildPush(
    parseYaml(`${gw('mine', HTTP80, 'default', 'custom')}${gw('theirs', HTTP80, 'default', 'nginx')}${gw('waypoint', '  - { name: mesh, port: 15008, protocol: HBONE }', 'default', 'istio-waypoint')}
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: custom }
spec: { controllerName: istio.io/gateway-controller }
`),
  );
  assert.deepEqual(conditions(push), [
    'Info Gateway.gateway.networking.k8s.io default/theirs spec.gatewayClassName: gatewayClassName nginx is not handled by Rigging (its built-in class is istio, or a GatewayClass with controllerName istio.io/gateway-controller); skipped',
    'Error Gateway.gateway.networking.k8s.io default/waypoint spec.gatewayClassName: Accepted=False (Unsupported): gatewayClassName istio-waypoint: waypoints (ambient mode) are not supported by Rigging',
  ]);
  assert.deepEqual(push.gateways.map((g) => `${g.metadata.name} ${JSON.stringify(g.spec.selector)}`), ['mine-istio-autogenerated-k8s-gateway-http {"gateway.networking.k8s.io/gateway-name":"mine"}']);
});

test('HTTPS listeners terminate TLS with certificateRefs as credentialName; another namespace needs a ReferenceGrant', () => {
  const push = buildPush(
    parseYaml(`${svc('a')}${gw('gw', `  - { name: https, port: 443, protocol: HTTPS, hostname: a.example.com, tls: { mode: Terminate, certificateRefs: [{ name: a-cert }] } }\n  - { name: other, port: 8443, protocol: HTTPS, tls: { certificateRefs: [{ name: b-cert, namespace: certs }] } }\n  - { name: pass, port: 9443, protocol: TLS, tls: { mode: Passthrough } }`)}`),
  );
  assert.deepEqual(conditions(push), [
    'Error Gateway.gateway.networking.k8s.io default/gw spec.listeners[1].tls.certificateRefs[0]: ResolvedRefs=False (RefNotPermitted): listener other: certificateRef to Secret certs/b-cert is not permitted',
  ]);
  assert.deepEqual(
    push.gateways.map((g) => g.spec.servers![0]),
    [
      { port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['*/a.example.com'], tls: { mode: 'SIMPLE', credentialName: 'a-cert' } },
      { port: { number: 9443, name: 'pass', protocol: 'TLS' }, hosts: ['*/*'], tls: { mode: 'PASSTHROUGH' } },
    ],
  );
});

test('GAMMA: an HTTPRoute whose parent is a Service routes the sidecars that call it', () => {
  const push = buildPush(
    parseYaml(`${svc('reviews')}${svc('reviews-v2')}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: reviews }
spec:
  parentRefs: [{ group: "", kind: Service, name: reviews, port: 9080 }]
  rules:
  - matches: [{ headers: [{ name: end-user, value: jason }] }]
    backendRefs: [{ name: reviews-v2, port: 9080 }]
  - backendRefs: [{ name: reviews, port: 9080 }]
`),
  );
  assert.deepEqual(conditions(push), []);
  const client = explicitSidecar('productpage-0', 'default', { app: 'productpage' }, 'productpage', []);
  const [rc] = GENERATORS[ROUTE_TYPE].generate(push, client, ['http_proxy']);
  const routes = vhost(rc, 'reviews.default.svc.cluster.local:9080').routes as EnvoyJson[];
  const ours = routes.filter((r) => String(r.name ?? '').startsWith('default.reviews'));
  assert.deepEqual(
    ours.map((r) => [r.match, (r.route as EnvoyJson).cluster]),
    [
      [{ prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] }, 'outbound|9080||reviews-v2.default.svc.cluster.local'],
      [{ prefix: '/' }, 'outbound|9080||reviews.default.svc.cluster.local'],
    ],
  );
});

test("GAMMA: an HTTPRoute whose parent is a ServiceEntry routes the sidecars calling its hosts (Istio's egress gateway task, Gateway API tab)", () => {
  const push = buildPush(
    parseYaml(`${svc('cnn-egress-gateway-istio', 'default', 80)}${gw('cnn-egress-gateway', '  - { name: http, hostname: edition.cnn.com, port: 80, protocol: HTTP, allowedRoutes: { namespaces: { from: Same } } }')}
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: cnn }
spec:
  hosts: [edition.cnn.com]
  ports: [{ number: 80, name: http-port, protocol: HTTP }, { number: 443, name: https, protocol: HTTPS }]
  resolution: DNS
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: direct-cnn-to-egress-gateway }
spec:
  parentRefs: [{ kind: ServiceEntry, group: networking.istio.io, name: cnn }]
  rules:
  - backendRefs: [{ name: cnn-egress-gateway-istio, port: 80 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: forward-cnn-from-egress-gateway }
spec:
  parentRefs: [{ name: cnn-egress-gateway }]
  hostnames: [edition.cnn.com]
  rules:
  - backendRefs: [{ kind: Hostname, group: networking.istio.io, name: edition.cnn.com, port: 80 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: nowhere }
spec:
  parentRefs: [{ kind: ServiceEntry, group: networking.istio.io, name: missing }]
  rules:
  - backendRefs: [{ name: cnn-egress-gateway-istio, port: 80 }]
`),
  );
  assert.deepEqual(conditions(push), ['Error HTTPRoute default/nowhere spec.parentRefs[0]: Accepted=False (BackendNotFound): parent ServiceEntry default/missing does not exist']);
  const client = explicitSidecar('curl-0', 'default', { app: 'curl' }, 'curl', []);
  const [rc] = GENERATORS[ROUTE_TYPE].generate(push, client, ['http_proxy']);
  const ours = (vhost(rc, 'edition.cnn.com:80').routes as EnvoyJson[]).filter((r) => String(r.name ?? '').startsWith('default.direct-cnn'));
  assert.deepEqual(ours.map((r) => (r.route as EnvoyJson).cluster), ['outbound|80||cnn-egress-gateway-istio.default.svc.cluster.local']);
  const forward = vhost(routeConfig(push, router('cnn-egress-gateway')), 'edition.cnn.com:80').routes as EnvoyJson[];
  assert.deepEqual(forward.map((r) => (r.route as EnvoyJson).cluster), ['outbound|80||edition.cnn.com']);
});

test("tls-terminate-mode: MUTUAL keeps the credential and verifies clients, ISTIO_MUTUAL serves the mesh identity (Istio's egress TLS origination task, Gateway API tab)", () => {
  const push = buildPush(
    parseYaml(gw('egress', `  - { name: mesh, hostname: edition.cnn.com, port: 80, protocol: HTTPS, tls: { mode: Terminate, options: { gateway.istio.io/tls-terminate-mode: ISTIO_MUTUAL } } }
  - { name: mutual, hostname: httpbin.example.com, port: 443, protocol: HTTPS, tls: { mode: Terminate, certificateRefs: [{ name: httpbin-credential }], options: { gateway.istio.io/tls-terminate-mode: MUTUAL } } }`)),
  );
  assert.deepEqual(conditions(push), []);
  assert.deepEqual(
    push.gateways.map((g) => g.spec.servers![0].tls),
    [{ mode: 'ISTIO_MUTUAL' }, { mode: 'MUTUAL', credentialName: 'httpbin-credential' }],
  );
});

test('GRPCRoute: service and method matches become paths', () => {
  const push = buildPush(
    parseYaml(`${svc('greeter', 'default', 50051, 'grpc')}${gw('gw', HTTP80)}
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: g }
spec:
  parentRefs: [{ name: gw }]
  rules:
  - matches: [{ method: { service: helloworld.Greeter } }]
    backendRefs: [{ name: greeter, port: 50051 }]
  - matches: [{ method: { service: helloworld.Greeter, method: SayHello } }, { method: { method: Check } }, { method: { type: RegularExpression, service: "helloworld\\\\..*" } }]
    backendRefs: [{ name: greeter, port: 50051 }]
`),
  );
  assert.deepEqual(conditions(push), []);
  const routes = vhost(routeConfig(push), '*:80').routes as EnvoyJson[];
  assert.deepEqual(
    routes.map((r) => r.match),
    // Longest service first, then longest method (a regular expression counts its characters).
    [{ path: '/helloworld.Greeter/SayHello' }, { path_separated_prefix: '/helloworld.Greeter' }, { safe_regex: { regex: '/helloworld\\..*/.+' } }, { safe_regex: { regex: '/[^/]+/Check' } }],
  );
});

test("GRPCRoute backends get HTTP/2 when their port declares it, as Istio's gateways do; a port declared HTTP is HTTP/1.1 and warned about", () => {
  const push = buildPush(
    parseYaml(`${svc('declared', 'default', 50051, 'grpc')}${svc('plain', 'default', 50051, 'http')}${svc('unnamed', 'default', 50051, 'web')}${gw('gw', HTTP80)}
apiVersion: v1
kind: Service
metadata: { name: h2c }
spec: { selector: { app: h2c }, ports: [{ name: web, port: 50051, appProtocol: kubernetes.io/h2c }] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: g }
spec:
  parentRefs: [{ name: gw }]
  rules:
  - backendRefs: [{ name: declared, port: 50051 }, { name: h2c, port: 50051 }, { name: plain, port: 50051 }, { name: unnamed, port: 50051 }]
`),
  );
  assert.deepEqual(conditions(push), [
    'Warning GRPCRoute default/g spec.rules[0].backendRefs[2]: port 50051 of plain.default.svc.cluster.local is declared HTTP: the gateway sends it HTTP/1.1, as Istio\'s does, and gRPC needs HTTP/2',
  ]);
  const clusters = new Map(GENERATORS[CLUSTER_TYPE].generate(push, router('gw'), undefined).map((c) => [c.name, c]));
  const upstream = (name: string) => {
    const c = clusters.get(`outbound|50051||${name}.default.svc.cluster.local`) ?? assert.fail(`no cluster for ${name}`);
    const opts = (c.typed_extension_protocol_options as EnvoyJson)['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'] as EnvoyJson;
    return opts.use_downstream_protocol_config ? 'client' : (opts.explicit_http_config as EnvoyJson).http2_protocol_options ? 'h2' : 'http/1.1';
  };
  // Istio's gateways would send the unnamed port HTTP/1.1; Rigging's follow the client's protocol there.
  assert.deepEqual(['declared', 'h2c', 'plain', 'unnamed'].map(upstream), ['h2', 'h2', 'http/1.1', 'client']);
});

test('a generated Gateway programs the gateway proxies of its own namespace only', () => {
  const push = buildPush(parseYaml(`${svc('a', 'team-a')}${gw('gw', HTTP80, 'team-a')}${gw('gw', '  - { name: http, port: 8080, protocol: HTTP }', 'team-b')}`));
  const ports = (ns: string) => GENERATORS[LISTENER_TYPE].generate(push, router('gw', ns), undefined).map((l) => ((l.address as EnvoyJson).socket_address as EnvoyJson).port_value);
  assert.deepEqual(ports('team-a'), [80]);
  assert.deepEqual(ports('team-b'), [8080]);
  assert.deepEqual(ports('default'), []);
});

test('ListenerSets: allowedListeners None by default, Same, conflicts by port and protocol, routes attaching by sectionName and port', () => {
  const ls = (name: string, ns: string, parent: string, listeners: string) => `apiVersion: gateway.networking.k8s.io/v1\nkind: ListenerSet\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n  parentRef: { name: ${parent}, namespace: default }\n  listeners:\n${listeners}\n---\n`;
  const push = buildPush(
    parseYaml(`${svc('a')}${gw('closed', HTTP80)}apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: gw, namespace: default }
spec:
  gatewayClassName: istio
  allowedListeners: { namespaces: { from: Same } }
  listeners:
  - { name: http, port: 80, protocol: HTTP }
  - { name: tcp, port: 9000, protocol: TCP }
---
${ls('to-closed', 'default', 'closed', '  - { name: web, port: 81, protocol: HTTP }')}${ls('web', 'default', 'gw', '  - { name: web, port: 81, protocol: HTTP, hostname: web.example.com }\n  - { name: same-host, port: 80, protocol: HTTP }\n  - { name: on-tcp, port: 9000, protocol: HTTP }')}${ls('elsewhere', 'team', 'gw', '  - { name: x, port: 82, protocol: HTTP }')}${ls('orphan', 'default', 'nogw', '  - { name: x, port: 83, protocol: HTTP }')}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r }
spec:
  parentRefs:
  - { kind: ListenerSet, name: web, port: 81 }
  - { kind: ListenerSet, name: web, sectionName: same-host }
  - { kind: ListenerSet, name: to-closed }
  - { kind: ListenerSet, name: missing }
  rules: [{ backendRefs: [{ name: a, port: 9080 }] }]
`),
  );
  assert.deepEqual(conditions(push), [
    'Error ListenerSet default/to-closed spec.parentRef: Accepted=False (NotAllowed): Gateway default/closed does not allow ListenerSets from namespace default (allowedListeners.namespaces.from: None)',
    'Error ListenerSet team/elsewhere spec.parentRef: Accepted=False (NotAllowed): Gateway default/gw does not allow ListenerSets from namespace team (allowedListeners.namespaces.from: Same)',
    'Error ListenerSet default/web spec.listeners[1]: Accepted=False (HostnameConflict): listener same-host conflicts with listener http of Gateway default/gw (port 80, HTTP, hostname *)',
    'Error ListenerSet default/web spec.listeners[2]: Accepted=False (ProtocolConflict): listener on-tcp conflicts with listener tcp of Gateway default/gw (port 9000, TCP, hostname *)',
    'Warning ListenerSet default/orphan spec.parentRef: parent Gateway default/nogw does not exist: the ListenerSet\'s listeners are not served',
    'Error HTTPRoute default/r spec.parentRefs[1]: Accepted=False (NoMatchingParent): ListenerSet default/web has no listener with sectionName same-host',
    'Error HTTPRoute default/r spec.parentRefs[2]: Accepted=False (NoMatchingParent): ListenerSet default/to-closed serves no listener: Gateway default/closed does not allow ListenerSets from namespace default',
    'Error HTTPRoute default/r spec.parentRefs[3]: Accepted=False (NoMatchingParent): ListenerSet default/missing does not exist',
  ]);
  // The ListenerSet's listener is served by the parent Gateway's proxies, the route bound to it.
  const ports = GENERATORS[LISTENER_TYPE].generate(push, router('gw'), undefined).map((l) => ((l.address as EnvoyJson).socket_address as EnvoyJson).port_value);
  assert.deepEqual(ports.sort(), [80, 81]);
  assert.deepEqual(vhost(routeConfig(push, router('gw'), 'http.81'), 'web.example.com:81').domains, ['web.example.com', 'web.example.com:81']);
});

test("ListenerSet HTTPS listeners: certificateRefs from the ListenerSet's namespace (a ReferenceGrant from ListenerSets), the parent Gateway's spec.tls.frontend applies", () => {
  const push = buildPush(
    parseYaml(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: gw, namespace: default }
spec:
  gatewayClassName: istio
  allowedListeners: { namespaces: { from: All } }
  tls: { frontend: { default: { validation: { caCertificateRefs: [{ group: "", kind: Secret, name: client-ca }] } } } }
  listeners: [{ name: http, port: 80, protocol: HTTP }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: { name: tls, namespace: team }
spec:
  parentRef: { name: gw, namespace: default }
  listeners:
  - { name: own, port: 443, protocol: HTTPS, hostname: a.example.com, tls: { certificateRefs: [{ name: team-cert }] } }
  - { name: granted, port: 443, protocol: HTTPS, hostname: b.example.com, tls: { certificateRefs: [{ name: shared, namespace: certs }] } }
  - { name: refused, port: 443, protocol: HTTPS, hostname: c.example.com, tls: { certificateRefs: [{ name: other, namespace: certs }] } }
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: { name: ls, namespace: certs }
spec:
  from: [{ group: gateway.networking.k8s.io, kind: ListenerSet, namespace: team }]
  to: [{ group: "", kind: Secret, name: shared }]
`),
  );
  assert.deepEqual(conditions(push), [
    'Error ListenerSet team/tls spec.listeners[2].tls.certificateRefs[0]: ResolvedRefs=False (RefNotPermitted): listener refused: certificateRef to Secret certs/other is not permitted',
  ]);
  const tls = (name: string) => push.gateways.find((g) => g.metadata.name === `tls-istio-autogenerated-k8s-gateway-${name}`)?.spec.servers?.[0].tls;
  assert.deepEqual([tls('own')?.credentialName, tls('own')?.mode, tls('own')?.caCertCredentialName], ['team-cert', 'MUTUAL', 'client-ca']);
  assert.equal(tls('granted')?.credentialName, 'shared');
  assert.equal(tls('refused'), undefined);
});

test("a Gateway's own listeners conflict as a ListenerSet's do: the first keeps the port, a later one is refused (ProtocolConflict), and a refused listener blocks no later one", () => {
  const push = buildPush(
    parseYaml(`${svc('a')}apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: gw, namespace: default }
spec:
  gatewayClassName: istio
  allowedListeners: { namespaces: { from: Same } }
  listeners:
  - { name: web, port: 80, protocol: HTTP, hostname: a.example.com }
  - { name: raw, port: 80, protocol: TCP }
  - { name: tls, port: 443, protocol: TLS, hostname: a.example.com, tls: { mode: Passthrough } }
  - { name: https, port: 443, protocol: HTTPS, hostname: a.example.com, tls: { certificateRefs: [{ name: cert }] } }
  - { name: plain, port: 9000, protocol: TCP }
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: { name: more, namespace: default }
spec:
  parentRef: { name: gw }
  listeners:
  - { name: b, port: 80, protocol: HTTP, hostname: b.example.com }
  - { name: a, port: 80, protocol: HTTP, hostname: a.example.com }
---
`),
  );
  assert.deepEqual(conditions(push), [
    'Error Gateway.gateway.networking.k8s.io default/gw spec.listeners[1]: Accepted=False (ProtocolConflict): listener raw conflicts with listener web of Gateway default/gw (port 80, HTTP, hostname a.example.com)',
    'Error Gateway.gateway.networking.k8s.io default/gw spec.listeners[3]: Accepted=False (ProtocolConflict): listener https conflicts with listener tls of Gateway default/gw (port 443, TLS, hostname a.example.com)',
    'Error ListenerSet default/more spec.listeners[1]: Accepted=False (HostnameConflict): listener a conflicts with listener web of Gateway default/gw (port 80, HTTP, hostname a.example.com)',
  ]);
  const servers = push.gateways.flatMap((g) => g.spec.servers!.map((s) => `${s.port.name}:${s.port.number}/${s.port.protocol}`)).sort();
  assert.deepEqual(servers, ['b:80/HTTP', 'plain:9000/TCP', 'tls:443/TLS', 'web:80/HTTP']);
  const status = gatewayApiResourceStatus(push.resources, push.gatewayApiDiagnostics, [], push).get('Gateway.gateway.networking.k8s.io default/gw') as { conditions: { type: string; status: string; reason: string }[]; listeners: { name: string; conditions: { type: string; status: string; reason: string }[] }[] };
  assert.deepEqual(status.conditions[0], { type: 'Accepted', status: 'True', reason: 'ListenersNotValid', message: 'invalid listeners: raw, https' });
  const raw = status.listeners.find((l) => l.name === 'raw');
  assert.deepEqual(raw?.conditions.map((c) => `${c.type}=${c.status} ${c.reason}`), ['Accepted=False ProtocolConflict', 'Conflicted=True ProtocolConflict', 'Programmed=False ProtocolConflict']);
  assert.deepEqual(status.listeners.find((l) => l.name === 'web')?.conditions.map((c) => `${c.type}=${c.status} ${c.reason}`), ['Accepted=True Accepted', 'Conflicted=False NoConflicts', 'Programmed=True Programmed', 'ResolvedRefs=True ResolvedRefs']);
});
