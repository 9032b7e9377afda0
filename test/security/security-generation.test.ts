// The generated security config is valid Envoy config (proto check and a protobuf round trip, as
// the ADS server packs it) and has Istio's shape: filter order, policy names, TCP handling.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { LISTENER_TYPE, checkMessage, packAny, unpackAny } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import type { AuthorizationPolicySpec, Resource } from '../../src/api/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { buildRbac } from '../../src/xds/translate/security/authz-rbac.ts';
import { buildPush, explicitSidecar, gatewayProxy, parseYaml } from '../xds/fixtures.ts';

const YAML = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: issuer, namespace: istio-system }
spec:
  hosts: [issuer.test]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: 8443, name: https, protocol: TLS }]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: istio-system }
spec:
  jwtRules:
  - issuer: https://issuer.test
    jwksUri: https://issuer.test:8443/jwks.json
    audiences: [a]
    fromHeaders: [{ name: x-jwt, prefix: "Bearer " }]
    fromParams: [tok]
    fromCookies: [c]
    forwardOriginalToken: true
    outputPayloadToHeader: x-payload
    outputClaimToHeaders: [{ header: x-sub, claim: sub }]
  - issuer: https://inline.test
    jwks: '{"keys":[]}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: everything, namespace: foo }
spec:
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/a/sa/b", "*"]
        notPrincipals: ["x*"]
        requestPrincipals: ["https://issuer.test/*"]
        notRequestPrincipals: ["*/bad"]
        namespaces: ["a"]
        notNamespaces: ["b*"]
        ipBlocks: ["10.0.0.0/8", "::1"]
        notIpBlocks: ["10.1.0.0/16"]
        remoteIpBlocks: ["192.168.0.1"]
        notRemoteIpBlocks: ["192.168.0.2/32"]
    to:
    - operation: { hosts: ["a.com", "*.b.com"], notHosts: ["c.com"], ports: ["9080"], notPorts: ["9090"], methods: ["GET"], notMethods: ["PUT"], paths: ["/a", "/b*", "*.c", "*", "/t/{*}/x/{**}"], notPaths: ["/x"] }
    when:
    - { key: "request.auth.claims[groups]", values: ["g"] }
    - { key: "request.auth.claims[a][b]", notValues: ["n"] }
    - { key: request.auth.principal, values: ["p"] }
    - { key: request.auth.audiences, values: ["aud"] }
    - { key: request.auth.presenter, values: ["pr"] }
    - { key: "request.headers[x-h]", values: ["v*", "*"] }
    - { key: source.ip, values: ["1.2.3.4"] }
    - { key: remote.ip, values: ["1.2.3.5"] }
    - { key: source.namespace, values: ["ns"] }
    - { key: source.principal, values: ["cluster.local/ns/a/sa/b"] }
    - { key: destination.ip, values: ["127.0.0.1"] }
    - { key: destination.port, values: ["9080"] }
    - { key: connection.sni, values: ["sni.test"] }
    - { key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[update]"] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny, namespace: foo }
spec: { action: DENY, rules: [{ to: [{ operation: { methods: ["DELETE"], ports: ["9090"] } }] }] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: audit, namespace: istio-system }
spec: { action: AUDIT, rules: [{}] }
`;

function filtersOf(l: EnvoyJson): EnvoyJson[][] {
  return (l.filter_chains as EnvoyJson[]).map((c) => c.filters as EnvoyJson[]);
}

test('generated RBAC and jwt_authn listeners fit Envoy types and survive a protobuf round trip', () => {
  const sidecar = explicitSidecar('httpbin-0', 'foo', { app: 'httpbin' }, 'httpbin', [{ port: 9080, name: 'http' }, { port: 9090, name: 'tcp' }]);
  const gw = gatewayProxy();
  const push = buildPush(parseYaml(YAML), [sidecar, gw]);
  for (const proxy of [sidecar, gw]) {
    for (const l of GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined)) {
      assert.deepEqual(checkMessage('envoy.config.listener.v3.Listener', l), [], String(l.name));
      assert.ok(isDeepStrictEqual(unpackAny(packAny(LISTENER_TYPE, l)), l), `${l.name} changes in a protobuf round trip`);
    }
  }
  const listeners = GENERATORS[LISTENER_TYPE].generate(push, sidecar, undefined);
  const httpIn = listeners.find((l) => l.name === `127.0.0.1_${sidecar.explicit!.inboundPorts['9080']}`)!;
  const hcm = filtersOf(httpIn)[0][0].typed_config as EnvoyJson;
  const security = (hcm.http_filters as EnvoyJson[]).filter((f) => f.name === 'envoy.filters.http.jwt_authn' || f.name === 'envoy.filters.http.rbac');
  const names = security.map((f) => [f.name, ((f.typed_config as EnvoyJson).rules as EnvoyJson | undefined)?.action ?? '']);
  assert.deepEqual(names, [
    ['envoy.filters.http.jwt_authn', ''],
    ['envoy.filters.http.rbac', 'LOG'],
    ['envoy.filters.http.rbac', 'DENY'],
    ['envoy.filters.http.rbac', ''],
  ]);
  const allow = (security[3].typed_config as EnvoyJson).rules as { policies: Record<string, EnvoyJson> };
  assert.deepEqual(Object.keys(allow.policies), ['ns[foo]-policy[everything]-rule[0]']);
  assert.ok(JSON.stringify(allow.policies).includes('{"uri_template":{"name":"uri-template","typed_config":{"@type":"type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig","path_template":"/t/*/x/**"}}}'), 'path template as Envoy uri_template');
  const jwt = security[0].typed_config as EnvoyJson;
  assert.deepEqual(jwt.rules, [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: 'origins-0' }, { provider_name: 'origins-1' }, { allow_missing: {} }] } } }]);
  const origins0 = (jwt.providers as Record<string, EnvoyJson>)['origins-0'];
  assert.deepEqual(origins0.remote_jwks, { http_uri: { uri: 'https://issuer.test:8443/jwks.json', cluster: 'outbound|8443||issuer.test', timeout: '5s' }, cache_duration: '300s' });
  assert.equal(origins0.payload_in_metadata, 'https://issuer.test');

  // TCP: the ALLOW rule uses HTTP-only fields → dropped (allow nothing); the DENY rule keeps its port.
  const tcpIn = listeners.find((l) => l.name === `127.0.0.1_${sidecar.explicit!.inboundPorts['9090']}`)!;
  const tcpFilters = filtersOf(tcpIn)[0];
  // Three RBAC filters (AUDIT, DENY, ALLOW) in a row before tcp_proxy (metadata exchange may come first, stats between).
  const tcpNames = tcpFilters.map((f) => f.name);
  const firstRbac = tcpNames.indexOf('envoy.filters.network.rbac');
  assert.deepEqual(tcpNames.slice(firstRbac, firstRbac + 3), ['envoy.filters.network.rbac', 'envoy.filters.network.rbac', 'envoy.filters.network.rbac']);
  assert.equal(tcpNames.filter((n) => n === 'envoy.filters.network.rbac').length, 3);
  assert.ok(firstRbac <= 1, tcpNames.join());
  assert.equal(tcpFilters.at(-1)?.name, 'envoy.filters.network.tcp_proxy');
  const tcpRules = tcpFilters.slice(firstRbac, firstRbac + 3).map((f) => (f.typed_config as EnvoyJson).rules as EnvoyJson);
  assert.deepEqual(tcpRules[2], {});
  assert.deepEqual(JSON.stringify(tcpRules[1]).includes(`"destination_port":${sidecar.explicit!.inboundPorts['9090']}`), true);
  assert.equal(JSON.stringify(tcpRules[1]).includes(':method'), false);
});

test('principals in the trust domain or an alias match the identity in every one of them (Istio)', () => {
  const [policy] = parseYaml(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: foo }
spec:
  rules: [{ from: [{ source: { principals: ["old.td/ns/a/sa/b", "other.td/ns/a/sa/b", "*/sa/c"] } }] }]
`) as Resource<AuthorizationPolicySpec>[];
  const b = buildRbac([policy], 'ALLOW', { trustDomain: 'new.td', trustDomainAliases: ['old.td'], tcp: false })!;
  const ids = JSON.stringify((b.config.rules as { policies: Record<string, EnvoyJson> }).policies['ns[foo]-policy[p]-rule[0]'].principals);
  assert.ok(ids.includes('"exact":"spiffe://new.td/ns/a/sa/b"') && ids.includes('"exact":"spiffe://old.td/ns/a/sa/b"'), ids);
  // A foreign trust domain is not expanded: three exact identities in all.
  assert.deepEqual(ids.match(/"exact":"spiffe:\/\/[^"]+"/g), ['"exact":"spiffe://new.td/ns/a/sa/b"', '"exact":"spiffe://old.td/ns/a/sa/b"', '"exact":"spiffe://other.td/ns/a/sa/b"']);
  assert.ok(ids.includes('"suffix":"/sa/c"'), ids);
});
