// WasmPlugins of type NETWORK: envoy.filters.network.wasm filters in the listeners' chains, as istiod
// places them. In a TCP chain after the metadata exchange, AUTHN and AUTHZ before the network RBAC
// filter, STATS and unphased ones after it, before istio.stats and tcp_proxy; in an HTTP chain all
// before the connection manager; mode and ports as for HTTP plugins; HTTP plugins stay in the HCM.
// As istiod: each filter names its config (config_discovery, network Wasm and RBAC type URLs), served over ECDS.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EXTENSION_CONFIG_TYPE, LISTENER_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { assertEnvoyResource, buildPush, explicitSidecar, parseYaml } from './fixtures.ts';

const plugin = (name: string, spec: string) => `---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: ${name}, namespace: default }
spec: ${spec}
`;

const CONFIG = parseYaml(
  `apiVersion: v1
kind: Service
metadata: { name: db, namespace: default }
spec: { selector: { app: db }, ports: [{ port: 3306, name: tcp-mysql }, { port: 9080, name: http }] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow, namespace: default }
spec: { selector: { matchLabels: { app: db } }, rules: [{}] }
` +
    plugin('n-last', `{ url: 'file:///p/last.wasm', type: NETWORK }`) +
    plugin('n-stats', `{ url: 'file:///p/stats.wasm', type: NETWORK, phase: STATS }`) +
    plugin('n-authz', `{ url: 'file:///p/authz.wasm', type: NETWORK, phase: AUTHZ }`) +
    plugin('n-authn', `{ url: 'file:///p/authn.wasm', type: NETWORK, phase: AUTHN, failStrategy: FAIL_OPEN }`) +
    plugin('n-server-3306', `{ url: 'file:///p/s.wasm', type: NETWORK, phase: AUTHN, priority: 5, match: [{ mode: SERVER, ports: [{ number: 3306 }] }] }`) +
    plugin('http-plugin', `{ url: 'file:///p/h.wasm' }`),
);

const PREFIX = 'extensions.istio.io/wasmplugin/';
const WANTED = new Set(['istio.metadata_exchange', 'envoy.filters.network.rbac', 'istio.stats', 'envoy.filters.network.tcp_proxy', 'envoy.filters.network.http_connection_manager']);

test('WasmPlugins of type NETWORK go in the TCP and HTTP chains by phase, mode and port', () => {
  const proxy = explicitSidecar('db-0', 'default', { app: 'db' }, 'db', [
    { port: 3306, name: 'tcp-mysql' },
    { port: 9080, name: 'http' },
  ]);
  const push = buildPush(CONFIG, [proxy]);
  const listeners = GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined);
  const chains: { listener: string; dir: unknown; filters: EnvoyJson[] }[] = [];
  for (const l of listeners) {
    assertEnvoyResource(LISTENER_TYPE, l);
    for (const c of l.filter_chains as EnvoyJson[]) chains.push({ listener: l.name as string, dir: l.traffic_direction, filters: c.filters as EnvoyJson[] });
  }
  const names = (fs: EnvoyJson[]) => fs.map((f) => (f.name as string).replace(PREFIX, '')).filter((n) => n.startsWith('default.') || WANTED.has(n));
  const inboundTcp = chains.find((c) => c.dir === 'INBOUND' && c.filters.some((f) => f.name === 'istio.metadata_exchange'));
  assert.ok(inboundTcp, 'an inbound mTLS TCP chain (port 3306)');
  assert.deepEqual(names(inboundTcp.filters), [
    'istio.metadata_exchange',
    'default.n-server-3306',
    'default.n-authn',
    'default.n-authz',
    'envoy.filters.network.rbac',
    'default.n-stats',
    'default.n-last',
    'istio.stats',
    'envoy.filters.network.tcp_proxy',
  ]);
  const filter = inboundTcp.filters.find((f) => f.name === `${PREFIX}default.n-authn`)!;
  assert.deepEqual(filter.config_discovery, {
    config_source: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' },
    type_urls: ['type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm', 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC'],
  });
  const [ecds] = GENERATORS[EXTENSION_CONFIG_TYPE].generate(push, proxy, [`${PREFIX}default.n-authn`]);
  assertEnvoyResource(EXTENSION_CONFIG_TYPE, ecds);
  const wasm = ecds.typed_config as EnvoyJson;
  assert.equal(wasm['@type'], 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm');
  assert.deepEqual(wasm.config, { name: 'default.n-authn', vm_config: { runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: '/p/authn.wasm' } } }, failure_policy: 'FAIL_OPEN' });

  const inboundHttp = chains.find((c) => c.dir === 'INBOUND' && c.filters.at(-1)?.name === 'envoy.filters.network.http_connection_manager');
  assert.ok(inboundHttp);
  assert.deepEqual(names(inboundHttp.filters), ['default.n-authn', 'default.n-authz', 'default.n-stats', 'default.n-last', 'envoy.filters.network.http_connection_manager'], 'the SERVER 3306 plugin is not on 9080');
  const hcm = inboundHttp.filters.at(-1)!.typed_config as EnvoyJson;
  const httpFilters = (hcm.http_filters as EnvoyJson[]).map((f) => f.name);
  assert.ok(httpFilters.includes(`${PREFIX}default.http-plugin`) && !httpFilters.some((n) => String(n).startsWith(`${PREFIX}default.n-`)), 'HTTP plugins in the HCM, NETWORK ones not');

  const outboundTcp = chains.filter((c) => c.dir === 'OUTBOUND' && c.filters.at(-1)?.name === 'envoy.filters.network.tcp_proxy');
  assert.ok(outboundTcp.length > 0);
  for (const c of outboundTcp) assert.deepEqual(names(c.filters).filter((n) => n.startsWith('default.')), ['default.n-authn', 'default.n-authz', 'default.n-stats', 'default.n-last'], `${c.listener}: no SERVER-mode plugin on outbound`);
});
