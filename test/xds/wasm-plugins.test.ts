// WasmPlugin translation: which plugins reach which HCM chain (namespace and root namespace,
// selector, match mode and ports, type) and where (AUTHN before jwt_authn, AUTHZ before rbac, STATS
// before istio.stats, none last before the router; higher priority first), as istiod writes them: a
// filter named extensions.istio.io/wasmplugin/<ns>.<name> with config_discovery (ADS, 0s, Wasm and
// RBAC type URLs), its config served over ECDS (name, root_id, configuration JSON, local filename,
// env, failure_policy as istiod sends it to 1.25+ proxies: FAIL_CLOSED by default, FAIL_OPEN,
// FAIL_RELOAD), and remote urls as istiod sends them for its agent (code.remote with cluster "_",
// sha256, the pull policy, resource version and the imagePullSecret's docker config in the vm env).
// Each listener and extension config is checked against Envoy's protos.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EXTENSION_CONFIG_TYPE, LISTENER_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import type { Proxy } from '../../src/model/proxy.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { assertEnvoyResource, buildPush, explicitSidecar, parseYaml } from './fixtures.ts';

const plugin = (name: string, ns: string, spec: string) => `---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: ${name}, namespace: ${ns} }
spec: ${spec}
`;

const CONFIG = parseYaml(
  `apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ port: 9080, name: http }] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow, namespace: default }
spec: { selector: { matchLabels: { app: reviews } }, rules: [{}] }
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: default }
spec: { selector: { matchLabels: { app: reviews } }, jwtRules: [{ issuer: https://issuer, jwks: '{"keys":[]}' }] }
` +
    plugin('authn-low', 'default', `{ selector: { matchLabels: { app: reviews } }, url: 'file:///p/low.wasm', phase: AUTHN, priority: 10 }`) +
    plugin('authn-high', 'default', `{ selector: { matchLabels: { app: reviews } }, url: /p/high.wasm, phase: AUTHN, priority: 20, pluginName: high_root, pluginConfig: { a: [1, "x"] }, failStrategy: FAIL_OPEN, vmConfig: { env: [{ name: K, value: v }, { name: HOME, valueFrom: HOST }] } }`) +
    plugin('authz', 'default', `{ url: 'file:///p/authz.wasm', phase: AUTHZ, failStrategy: FAIL_RELOAD }`) +
    plugin('stats-client', 'default', `{ url: 'file:///p/stats.wasm', phase: STATS, match: [{ mode: CLIENT }] }`) +
    plugin('last-server-9080', 'default', `{ url: 'file:///p/last.wasm', match: [{ mode: SERVER, ports: [{ number: 9080 }] }] }`) +
    plugin('oci-closed', 'default', `{ url: 'ghcr.io/x/y:1', sha256: '${'ab'.repeat(32)}', imagePullPolicy: Always, imagePullSecret: ghcr-pull }`) +
    plugin('https-open', 'default', `{ url: 'https://example.com/y.wasm', failStrategy: FAIL_OPEN, imagePullSecret: none }`) +
    plugin('network', 'default', `{ url: 'file:///p/net.wasm', type: NETWORK }`) +
    plugin('ratings-only', 'default', `{ selector: { matchLabels: { app: ratings } }, url: 'file:///p/r.wasm' }`) +
    plugin('other-ns', 'other', `{ url: 'file:///p/o.wasm' }`) +
    plugin('mesh-wide', 'istio-system', `{ url: 'file:///p/mesh.wasm', phase: STATS, priority: -1 }`),
);

const PREFIX = 'extensions.istio.io/wasmplugin/';

function pushFor(proxy: Proxy) {
  return buildPush(CONFIG, [proxy], { credentials: (name) => (name === 'ghcr-pull' ? { dockerConfigJson: Buffer.from('{"auths":{"ghcr.io":{"auth":"dTpw"}}}') } : undefined) });
}

/** The HTTP filter names of each HCM by stat_prefix. */
function chains(proxy: Proxy): Map<string, EnvoyJson[]> {
  const push = pushFor(proxy);
  const out = new Map<string, EnvoyJson[]>();
  for (const l of GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined)) {
    assertEnvoyResource(LISTENER_TYPE, l);
    for (const c of (l.filter_chains as EnvoyJson[] | undefined) ?? [])
      for (const f of c.filters as EnvoyJson[]) {
        const tc = f.typed_config as EnvoyJson;
        if (f.name === 'envoy.filters.network.http_connection_manager') out.set(tc.stat_prefix as string, tc.http_filters as EnvoyJson[]);
      }
  }
  return out;
}

const names = (fs: EnvoyJson[]) => fs.map((f) => (f.name as string).replace(PREFIX, ''));

test('WasmPlugins are placed by phase and priority, per mode and port, in the chains of the proxies they attach to', () => {
  const proxy = explicitSidecar('reviews-0', 'default', { app: 'reviews' }, 'reviews', [{ port: 9080, name: 'http' }]);
  const all = chains(proxy);
  const inbound = [...all].find(([k]) => k.startsWith('inbound_'))![1];
  const outbound = [...all].find(([k]) => k.startsWith('outbound_'))![1];
  const core = (fs: EnvoyJson[]) => names(fs).filter((n) => n.startsWith('default.') || n.startsWith('istio-system.') || ['envoy.filters.http.jwt_authn', 'envoy.filters.http.rbac', 'istio.stats', 'envoy.filters.http.router'].includes(n));
  assert.deepEqual(core(inbound), [
    'default.authn-high',
    'default.authn-low',
    'envoy.filters.http.jwt_authn',
    'default.authz',
    'envoy.filters.http.rbac',
    'istio-system.mesh-wide',
    'istio.stats',
    'default.https-open',
    'default.last-server-9080',
    'default.oci-closed',
    'envoy.filters.http.router',
  ]);
  const out = core(outbound);
  assert.ok(out.indexOf('default.stats-client') < out.indexOf('istio-system.mesh-wide') && out.indexOf('istio-system.mesh-wide') < out.indexOf('istio.stats'), out.join());
  assert.ok(!out.includes('default.last-server-9080'), 'SERVER-mode plugin not on outbound');
  assert.ok(!names(inbound).includes('default.stats-client'), 'CLIENT-mode plugin not on inbound');
  for (const n of ['default.network', 'default.ratings-only', 'other.other-ns']) assert.ok(![...names(inbound), ...out].includes(n), n);

  const high = inbound.find((f) => f.name === `${PREFIX}default.authn-high`)!;
  assert.deepEqual(high, {
    name: `${PREFIX}default.authn-high`,
    config_discovery: {
      config_source: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' },
      type_urls: ['type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm', 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC'],
    },
  });

  // The configs, over ECDS, for the names the proxy asks for (an unknown one gets nothing).
  const wanted = ['authn-high', 'authn-low', 'authz', 'oci-closed', 'https-open', 'network', 'other-ns', 'nothing'].map((n) => `${PREFIX}default.${n}`);
  const ecds = GENERATORS[EXTENSION_CONFIG_TYPE].generate(pushFor(proxy), proxy, wanted);
  for (const e of ecds) assertEnvoyResource(EXTENSION_CONFIG_TYPE, e);
  assert.deepEqual(ecds.map((e) => e.name), wanted.filter((n) => !n.endsWith('.other-ns') && !n.endsWith('.nothing')));
  const typed = (name: string) => ecds.find((e) => e.name === `${PREFIX}default.${name}`)!.typed_config as EnvoyJson;
  assert.deepEqual(typed('authn-high'), {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
    config: {
      name: 'default.authn-high',
      root_id: 'high_root',
      vm_config: { runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: '/p/high.wasm' } }, environment_variables: { key_values: { K: 'v' }, host_env_keys: ['HOME'] } },
      configuration: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: '{"a":[1,"x"]}' },
      failure_policy: 'FAIL_OPEN',
    },
  });
  assert.equal(typed('network')['@type'], 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm');
  const config = (name: string) => typed(name).config as EnvoyJson;
  assert.equal(config('authz').failure_policy, 'FAIL_RELOAD', 'FAIL_RELOAD: the VM is reloaded after a failure, as istiod asks');
  assert.equal(config('authn-low').failure_policy, 'FAIL_CLOSED', 'no failStrategy: FAIL_CLOSED, as istiod sends it');
  assert.equal(config('authz').fail_open, undefined);
  const vm = (name: string) => config(name).vm_config;
  assert.deepEqual(vm('oci-closed'), {
    runtime: 'envoy.wasm.runtime.v8',
    code: { remote: { http_uri: { uri: 'oci://ghcr.io/x/y:1', cluster: '_', timeout: '30s' }, sha256: 'ab'.repeat(32) } },
    environment_variables: { key_values: { ISTIO_META_WASM_IMAGE_PULL_SECRET: '{"auths":{"ghcr.io":{"auth":"dTpw"}}}', ISTIO_META_WASM_IMAGE_PULL_POLICY: 'Always', ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION: '' } },
  });
  // A secret that is not there goes as '' (the proxy then fails the fetch: fail closed, or left out with FAIL_OPEN).
  assert.deepEqual(vm('https-open'), {
    runtime: 'envoy.wasm.runtime.v8',
    code: { remote: { http_uri: { uri: 'https://example.com/y.wasm', cluster: '_', timeout: '30s' } } },
    environment_variables: { key_values: { ISTIO_META_WASM_IMAGE_PULL_SECRET: '', ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION: '' } },
  });
  assert.doesNotMatch(JSON.stringify(chains(proxy).get([...all.keys()].find((k) => k.startsWith('inbound_'))!)), /ISTIO_META_WASM/, 'the agent env (pull secret, resource version) is in the extension configs only, not the listeners');
});
