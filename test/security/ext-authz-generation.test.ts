// AuthorizationPolicy CUSTOM → Envoy as istiod generates it: shadow RBAC (istio-ext-authz-* policy
// names, istio_ext_authz_ stat prefix) then ext_authz enabled by its metadata, before DENY/ALLOW;
// provider fields mapped from MeshConfig; bad providers fail closed; TCP handling.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { LISTENER_TYPE, checkMessage, packAny, unpackAny } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import type { MeshConfig } from '../../src/model/mesh-config.ts';
import type { Proxy } from '../../src/model/proxy.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { buildPush, explicitSidecar, gatewayProxy, parseYaml } from '../xds/fixtures.ts';

const AUTHZ_SERVICE = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext-authz, namespace: foo }
spec:
  hosts: [ext-authz.foo.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP }, { number: 9000, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.1 }]
`;

function policies(provider: string, extra = ''): string {
  return `${AUTHZ_SERVICE}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: CUSTOM
  provider: { name: ${provider} }
  rules: [{ to: [{ operation: { paths: ["/headers*"] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-delete, namespace: foo }
spec: { action: DENY, rules: [{ to: [{ operation: { methods: ["DELETE"] } }] }] }
${extra}`;
}

const PROVIDERS = [
  {
    name: 'authz-http',
    envoyExtAuthzHttp: {
      service: 'ext-authz.foo.svc.cluster.local',
      port: 8000,
      pathPrefix: '/check',
      timeout: '500ms',
      failOpen: true,
      statusOnError: '503',
      clearRouteCache: true,
      includeRequestHeadersInCheck: ['x-ext-authz'],
      includeAdditionalHeadersInCheck: { 'x-b': '2', 'x-a': '1' },
      includeRequestBodyInCheck: { maxRequestBytes: 1024, allowPartialMessage: true },
      headersToUpstreamOnAllow: ['x-user*'],
      headersToDownstreamOnDeny: ['*-reason'],
      headersToDownstreamOnAllow: ['set-cookie'],
    },
  },
  { name: 'authz-grpc', envoyExtAuthzGrpc: { service: 'foo/ext-authz.foo.svc.cluster.local', port: 9000, timeout: '2s' } },
  { name: 'authz-missing', envoyExtAuthzHttp: { service: 'nowhere.foo.svc.cluster.local', port: 80 } },
];

function generate(yaml: string, proxy: Proxy, others: Proxy[] = []): EnvoyJson[] {
  const push = buildPush(parseYaml(yaml), [proxy, ...others], { mesh: { extensionProviders: PROVIDERS } as Partial<MeshConfig> });
  const listeners = GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined);
  for (const l of listeners) {
    assert.deepEqual(checkMessage('envoy.config.listener.v3.Listener', l), [], String(l.name));
    assert.ok(isDeepStrictEqual(unpackAny(packAny(LISTENER_TYPE, l)), l), `${l.name} changes in a protobuf round trip`);
  }
  return listeners;
}

function sidecar(): Proxy {
  return explicitSidecar('httpbin-0', 'foo', { app: 'httpbin' }, 'httpbin', [{ port: 8080, name: 'http' }, { port: 9090, name: 'tcp' }]);
}

function chainFilters(listeners: EnvoyJson[], name: string): EnvoyJson[] {
  const l = listeners.find((x) => x.name === name);
  assert.ok(l, `listener ${name} (have ${listeners.map((x) => x.name).join(', ')})`);
  return ((l.filter_chains as EnvoyJson[])[0].filters as EnvoyJson[]);
}

function httpFilters(listeners: EnvoyJson[], name: string): EnvoyJson[] {
  const hcm = chainFilters(listeners, name).find((f) => f.name === 'envoy.filters.network.http_connection_manager')!;
  return (hcm.typed_config as EnvoyJson).http_filters as EnvoyJson[];
}

const RULE = 'istio-ext-authz-ns[foo]-policy[ext]-rule[0]';

test('CUSTOM with an HTTP provider: shadow RBAC then ext_authz before DENY, provider fields as Istio maps them', () => {
  const p = sidecar();
  const listeners = generate(policies('authz-http'), p);
  const filters = httpFilters(listeners, `127.0.0.1_${p.explicit!.inboundPorts['8080']}`);
  const authz = filters.filter((f) => ['envoy.filters.http.rbac', 'envoy.filters.http.ext_authz'].includes(String(f.name)));
  assert.deepEqual(authz.map((f) => f.name), ['envoy.filters.http.rbac', 'envoy.filters.http.ext_authz', 'envoy.filters.http.rbac']);
  const shadow = authz[0].typed_config as EnvoyJson;
  assert.equal(shadow.rules, undefined, 'CUSTOM rules are never enforced by RBAC');
  assert.equal(shadow.shadow_rules_stat_prefix, 'istio_ext_authz_');
  assert.equal((shadow.shadow_rules as EnvoyJson).action, 'DENY');
  assert.deepEqual(Object.keys((shadow.shadow_rules as { policies: EnvoyJson }).policies), [RULE]);
  const { '@type': type, ...ext } = authz[1].typed_config as EnvoyJson;
  assert.equal(type, 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz');
  assert.deepEqual(ext, {
    transport_api_version: 'V3',
    filter_enabled_metadata: { filter: 'envoy.filters.http.rbac', path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }], value: { string_match: { prefix: 'istio-ext-authz' } } },
    status_on_error: { code: 'ServiceUnavailable' },
    failure_mode_allow: true,
    clear_route_cache: true,
    with_request_body: { max_request_bytes: 1024, allow_partial_message: true },
    http_service: {
      server_uri: { uri: 'http://ext-authz.foo.svc.cluster.local/check', cluster: 'outbound|8000||ext-authz.foo.svc.cluster.local', timeout: '0.5s' },
      path_prefix: '/check',
      authorization_request: { headers_to_add: [{ key: 'x-a', value: '1' }, { key: 'x-b', value: '2' }] },
      authorization_response: {
        allowed_upstream_headers: { patterns: [{ prefix: 'x-user', ignore_case: true }] },
        allowed_client_headers: { patterns: [{ suffix: '-reason', ignore_case: true }] },
        allowed_client_headers_on_success: { patterns: [{ exact: 'set-cookie', ignore_case: true }] },
      },
    },
    allowed_headers: { patterns: [{ exact: 'x-ext-authz', ignore_case: true }] },
  });
  assert.equal(((authz[2].typed_config as EnvoyJson).rules as EnvoyJson).action, 'DENY');

  // An HTTP provider does not apply to TCP (as in Istio): only the DENY policy's network RBAC.
  const tcp = chainFilters(listeners, `127.0.0.1_${p.explicit!.inboundPorts['9090']}`);
  const rbac = tcp.filter((f) => f.name === 'envoy.filters.network.rbac');
  assert.equal(rbac.length, 1);
  assert.equal(JSON.stringify(rbac[0]).includes('istio-ext-authz'), false);
});

test('CUSTOM with a gRPC provider: envoy_grpc with Istio authority; TCP chains get shadow network rbac + network ext_authz', () => {
  const p = sidecar();
  const listeners = generate(policies('authz-grpc'), p);
  const ext = httpFilters(listeners, `127.0.0.1_${p.explicit!.inboundPorts['8080']}`).find((f) => f.name === 'envoy.filters.http.ext_authz')!.typed_config as EnvoyJson;
  const grpcService = { envoy_grpc: { cluster_name: 'outbound|9000||ext-authz.foo.svc.cluster.local', authority: 'outbound_.9000_._.ext-authz.foo.svc.cluster.local' }, timeout: '2s' };
  assert.deepEqual(ext.grpc_service, grpcService);
  assert.equal(ext.http_service, undefined);
  const tcp = chainFilters(listeners, `127.0.0.1_${p.explicit!.inboundPorts['9090']}`);
  const authz = tcp.filter((f) => ['envoy.filters.network.rbac', 'envoy.filters.network.ext_authz'].includes(String(f.name)));
  assert.deepEqual(authz.map((f) => f.name), ['envoy.filters.network.rbac', 'envoy.filters.network.ext_authz', 'envoy.filters.network.rbac']);
  const shadow = authz[0].typed_config as EnvoyJson;
  assert.equal(shadow.rules, undefined);
  assert.equal(shadow.stat_prefix, 'tcp.');
  assert.equal(shadow.shadow_rules_stat_prefix, 'istio_ext_authz_');
  const shadowPolicies = (shadow.shadow_rules as { policies: Record<string, EnvoyJson> }).policies;
  // The path is HTTP-only: dropped from a DENY-shaped rule on TCP, so the rule matches every connection.
  assert.deepEqual(shadowPolicies[RULE].permissions, [{ and_rules: { rules: [{ any: true }] } }]);
  const { '@type': _t, ...net } = authz[1].typed_config as EnvoyJson;
  assert.deepEqual(net, {
    stat_prefix: 'tcp.',
    transport_api_version: 'V3',
    grpc_service: grpcService,
    filter_enabled_metadata: { filter: 'envoy.filters.network.rbac', path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }], value: { string_match: { prefix: 'istio-ext-authz' } } },
  });
});

test('a CUSTOM provider that is unknown, unresolvable or one of several denies the matched requests', () => {
  const second = `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext2, namespace: foo }
spec:
  action: CUSTOM
  provider: { name: authz-grpc }
  rules: [{ to: [{ operation: { paths: ["/admin"] } }] }]
`;
  for (const [yaml, names] of [
    [policies('no-such-provider'), [RULE]],
    [policies('authz-missing'), [RULE]],
    [policies('authz-http', second), [RULE, 'istio-ext-authz-ns[foo]-policy[ext2]-rule[0]']],
  ] as const) {
    const p = sidecar();
    const filters = httpFilters(generate(yaml, p), `127.0.0.1_${p.explicit!.inboundPorts['8080']}`);
    assert.equal(filters.some((f) => f.name === 'envoy.filters.http.ext_authz'), false);
    const rules = (filters.find((f) => f.name === 'envoy.filters.http.rbac')!.typed_config as EnvoyJson).rules as { action: string; policies: EnvoyJson };
    assert.equal(rules.action, 'DENY');
    assert.deepEqual(Object.keys(rules.policies).sort(), names.map((n) => `${n}-deny-due-to-bad-CUSTOM-action`).sort());
  }
});

test('a CUSTOM policy selecting the ingress gateway puts ext_authz on its HTTP listeners', () => {
  const gw = gatewayProxy();
  const yaml = `${AUTHZ_SERVICE}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 8080, name: http, protocol: HTTP }, hosts: ["*"] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: CUSTOM
  provider: { name: authz-http }
  rules: [{ to: [{ operation: { hosts: ["secure.example.com"] } }] }]
`;
  const listeners = generate(yaml, gw);
  const filters = httpFilters(listeners, '0.0.0.0_8080');
  assert.deepEqual(filters.filter((f) => String(f.name).includes('rbac') || String(f.name).includes('ext_authz')).map((f) => f.name), ['envoy.filters.http.rbac', 'envoy.filters.http.ext_authz']);
  const shadow = filters.find((f) => f.name === 'envoy.filters.http.rbac')!.typed_config as EnvoyJson;
  assert.deepEqual(Object.keys((shadow.shadow_rules as { policies: EnvoyJson }).policies), ['istio-ext-authz-ns[istio-system]-policy[ext]-rule[0]']);
});
