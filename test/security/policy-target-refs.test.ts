// Policies attached with targetRefs to a Gateway API Gateway (Istio's policy attachment): an
// AuthorizationPolicy, RequestAuthentication or Telemetry naming Gateway `shop` lands on the
// listeners of shop's gateway proxies (labelled gateway.networking.k8s.io/gateway-name: shop) and
// on no sidecar, no other gateway, no gateway of another namespace; targets Rigging has no proxy
// for (Service, ServiceEntry, GatewayClass: ambient waypoints) and Gateways that do not exist are
// warnings, the CRD's and Istio's validation rules are errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyze, loadDocuments } from '../../src/api/index.ts';
import { LISTENER_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import type { Proxy } from '../../src/model/proxy.ts';
import { telemetryLevels } from '../../src/xds/telemetry/telemetry-policy.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { buildPush, explicitSidecar, gatewayProxy, parseYaml } from '../xds/fixtures.ts';

const GATEWAY_NAME = 'gateway.networking.k8s.io/gateway-name';

const gateway = (name: string, ns = 'default') => `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: ${name}, namespace: ${ns} }
spec:
  gatewayClassName: istio
  listeners: [{ name: http, port: 8080, protocol: HTTP }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${name}, namespace: ${ns} }
spec:
  parentRefs: [{ name: ${name} }]
  rules: [{ backendRefs: [{ name: reviews, namespace: default, port: 9080 }] }]
---`;

const targetRef = (name: string) => `targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: ${name} }]`;

const YAML = `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ name: http, port: 9080 }] }
---
${gateway('shop')}
${gateway('other')}
${gateway('shop', 'team')}
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: shop-deny-admin, namespace: default }
spec:
  ${targetRef('shop')}
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin"] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: root-targets-shop, namespace: istio-system }
spec:
  ${targetRef('shop')}
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/root"] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: waypoint-only, namespace: default }
spec:
  targetRefs: [{ kind: Service, group: "", name: reviews }]
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/svc"] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: by-selector, namespace: default }
spec:
  selector: { matchLabels: { ${GATEWAY_NAME}: shop } }
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/selector"] } }] }]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: shop-jwt, namespace: default }
spec:
  ${targetRef('shop')}
  jwtRules: [{ issuer: https://issuer.test, jwks: '{"keys":[]}' }]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: shop-logs, namespace: default }
spec:
  ${targetRef('shop')}
  accessLogging: [{ providers: [{ name: envoy }] }]
`;

const shop = () => gatewayProxy({ [GATEWAY_NAME]: 'shop' }, 'default');
const proxies = {
  shop,
  other: () => gatewayProxy({ [GATEWAY_NAME]: 'other' }, 'default'),
  teamShop: () => gatewayProxy({ [GATEWAY_NAME]: 'shop' }, 'team'),
  sidecar: () => explicitSidecar('reviews-0', 'default', { app: 'reviews' }, 'reviews', [{ port: 9080, name: 'http' }]),
};

/** The policy names in the RBAC filters and the issuers in the jwt_authn filters of a proxy's listeners. */
function security(proxy: Proxy): { policies: string[]; issuers: string[] } {
  const push = buildPush(parseYaml(YAML), [proxy]);
  const policies = new Set<string>();
  const issuers = new Set<string>();
  JSON.stringify(GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined), (_k, v: unknown) => {
    const f = v as EnvoyJson | undefined;
    if (f?.name === 'envoy.filters.http.rbac') for (const p of Object.keys(((f.typed_config as EnvoyJson).rules as EnvoyJson | undefined)?.policies ?? {})) policies.add(p);
    if (f?.name === 'envoy.filters.http.jwt_authn') for (const p of Object.values(((f.typed_config as EnvoyJson).providers ?? {}) as Record<string, EnvoyJson>)) issuers.add(String(p.issuer));
    return v;
  });
  return { policies: [...policies].sort(), issuers: [...issuers] };
}

test("targetRefs attach AuthorizationPolicy and RequestAuthentication to the Gateway's proxies only", () => {
  const gw = security(proxies.shop());
  assert.deepEqual(gw.policies, ['ns[default]-policy[by-selector]-rule[0]', 'ns[default]-policy[shop-deny-admin]-rule[0]']);
  assert.deepEqual(gw.issuers, ['https://issuer.test']);
  // Another Gateway's proxies, the same Gateway name in another namespace, a sidecar: nothing
  // (a root-namespace policy with targetRefs reaches only gateways of the root namespace).
  for (const p of [proxies.other(), proxies.teamShop(), proxies.sidecar()]) assert.deepEqual(security(p), { policies: [], issuers: [] }, p.id);
});

test('a root-namespace policy with targetRefs attaches to a Gateway of the root namespace', () => {
  const rootShop = gatewayProxy({ [GATEWAY_NAME]: 'shop' }, 'istio-system');
  const push = buildPush(parseYaml(YAML + '---' + gateway('shop', 'istio-system')), [rootShop]);
  const text = JSON.stringify(GENERATORS[LISTENER_TYPE].generate(push, rootShop, undefined));
  assert.match(text, /ns\[istio-system\]-policy\[root-targets-shop\]-rule\[0\]/);
  assert.doesNotMatch(text, /shop-deny-admin/);
});

test("targetRefs attach a Telemetry to the Gateway's proxies as their workload-level Telemetry", () => {
  const names = (p: Proxy) => telemetryLevels(buildPush(parseYaml(YAML), [p]), p).map((r) => r.metadata.name);
  assert.deepEqual(names(proxies.shop()), ['shop-logs']);
  for (const p of [proxies.other(), proxies.teamShop(), proxies.sidecar()]) assert.deepEqual(names(p), [], p.id);
  // The access log it turns on is on shop's listeners and on no one else's.
  const accessLogged = (p: Proxy) => JSON.stringify(GENERATORS[LISTENER_TYPE].generate(buildPush(parseYaml(YAML), [p]), p, undefined)).includes('envoy.access_loggers.file');
  assert.equal(accessLogged(proxies.shop()), true);
  assert.equal(accessLogged(proxies.other()), false);
});

test("validation: the CRD's and Istio's rules are errors, ambient-only targets are warnings naming the field", () => {
  const diags = (spec: string, kind = 'AuthorizationPolicy', api = 'security.istio.io/v1') =>
    loadDocuments(`apiVersion: ${api}\nkind: ${kind}\nmetadata: { name: p, namespace: default }\nspec:\n${spec}`, 'p.yaml').diagnostics.map((d) => `${d.severity} ${d.path}: ${d.message}`);
  const rules = '  action: DENY\n  rules: [{ to: [{ operation: { paths: ["/x"] } }] }]\n';
  assert.deepEqual(diags(`  ${targetRef('shop')}\n${rules}`), []);
  assert.deepEqual(diags(`  selector: { matchLabels: { app: a } }\n  ${targetRef('shop')}\n${rules}`), ['Error spec.targetRefs: only one of targetRefs or selector can be set']);
  assert.deepEqual(diags(`  targetRefs: [{ kind: Gateway, name: shop }]\n${rules}`), ['Error spec.targetRefs[0].kind: targetRef must be to a Service, ServiceEntry, Gateway (gateway.networking.k8s.io) or GatewayClass, but was core/Gateway']);
  assert.deepEqual(diags(`  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: shop, namespace: team }]\n${rules}`), ['Error spec.targetRefs[0].namespace: cross namespace referencing is not currently supported']);
  for (const [kind, group, what] of [['Service', '""', 'the waypoint of Service "x"'], ['ServiceEntry', 'networking.istio.io', 'the waypoint of ServiceEntry "x"'], ['GatewayClass', 'gateway.networking.k8s.io', 'the waypoints of GatewayClass "x"']]) {
    assert.deepEqual(diags(`  targetRefs: [{ kind: ${kind}, group: ${group}, name: x }]\n${rules}`), [`Warning spec.targetRefs[0].kind: a ${kind} target attaches the policy to ${what} (ambient mode); in sidecar mode this AuthorizationPolicy applies to no proxy`]);
  }
  assert.deepEqual(diags(`  targetRef: { kind: Service, name: x }\n  jwtRules: [{ issuer: i, jwks: '{"keys":[]}' }]\n`, 'RequestAuthentication'), ['Warning spec.targetRef.kind: a Service target attaches the policy to the waypoint of Service "x" (ambient mode); in sidecar mode this RequestAuthentication applies to no proxy']);
  assert.deepEqual(diags(`  ${targetRef('shop')}\n  accessLogging: [{ providers: [{ name: envoy }] }]\n`, 'Telemetry', 'telemetry.istio.io/v1'), []);
  // EnvoyFilter: istiod accepts one with targetRefs and applies it to no proxy; Rigging says so (5546008).
  assert.match(diags(`  ${targetRef('shop')}\n  configPatches: []\n`, 'EnvoyFilter', 'networking.istio.io/v1alpha3').join(), /^Warning spec\.targetRefs: an EnvoyFilter with targetRefs applies to no proxy, as in Istio/);
});

test('rig analyze: a targetRef to a Gateway that is not in the policy namespace is a warning', () => {
  const found = analyze(parseYaml(YAML)).filter((d) => d.code === 'IST0101');
  assert.deepEqual(
    found.map((d) => `${d.severity} ${d.resource} ${d.path}: ${d.message}`),
    ['Warning AuthorizationPolicy istio-system/root-targets-shop spec.targetRefs[0].name: Gateway "shop" (gateway.networking.k8s.io) not found in namespace istio-system: this target attaches the AuthorizationPolicy to no proxy'],
  );
});
