// Istio's gatewayTopology: MeshConfig defaultConfig.gatewayTopology and a gateway's own proxy config
// (the proxy.istio.io/config annotation, node metadata PROXY_CONFIG) on the gateway HCMs; sidecars keep
// Istio's inbound XFCC settings. Validation errors name the field's path.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { LISTENER_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { parseMeshConfig } from '../../src/model/mesh-config.ts';
import { NodeError, parseNode, type Proxy } from '../../src/model/proxy.ts';
import { addXdsOptions, bootstrapFromOptions, type XdsCliOptions } from '../../src/proxy/bootstrap/flags.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { assertEnvoyResource, buildPush, explicitSidecar, parseYaml } from './fixtures.ts';

const CONFIG = parseYaml(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - { port: { number: 8080, name: http, protocol: HTTP }, hosts: ['*'] }
  - { port: { number: 8443, name: https, protocol: HTTPS }, hosts: ['*'], tls: { mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem } }
---
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ port: 9080, name: http }] }
`);

function gateway(proxyConfig?: unknown): Proxy {
  const md: Record<string, unknown> = { NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway' }, SERVICE_ACCOUNT: 'istio-ingressgateway', INSTANCE_IPS: '127.0.0.1' };
  if (proxyConfig !== undefined) md.PROXY_CONFIG = proxyConfig;
  return parseNode({ id: 'router~127.0.0.1~istio-ingressgateway-0.istio-system~istio-system.svc.cluster.local', metadata: md });
}

/** Every HTTP connection manager the proxy gets, checked against Envoy's protos. */
function hcms(proxy: Proxy, meshYaml?: unknown): EnvoyJson[] {
  const mesh = parseMeshConfig(meshYaml);
  const push = buildPush(CONFIG, [proxy], { mesh });
  const listeners = GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined);
  const out: EnvoyJson[] = [];
  for (const l of listeners) {
    assertEnvoyResource(LISTENER_TYPE, l);
    for (const c of (l.filter_chains as EnvoyJson[] | undefined) ?? []) for (const f of c.filters as EnvoyJson[]) if (f.name === 'envoy.filters.network.http_connection_manager') out.push(f.typed_config as EnvoyJson);
  }
  return out;
}

const topology = (h: EnvoyJson) => ({ hops: h.xff_num_trusted_hops, xfcc: h.forward_client_cert_details, set: h.set_current_client_cert_details });
const ALL_DETAILS = { subject: true, cert: true, uri: true, dns: true };

test('gateway HCMs without gatewayTopology: Istio gateway default SANITIZE_SET, no trusted hops', () => {
  const got = hcms(gateway());
  assert.equal(got.length, 2, 'the HTTP and the HTTPS server each have an HCM');
  for (const h of got) {
    assert.equal(h.use_remote_address, true);
    assert.deepEqual(topology(h), { hops: undefined, xfcc: 'SANITIZE_SET', set: ALL_DETAILS });
  }
});

test('MeshConfig defaultConfig.gatewayTopology applies to every gateway HCM; the proxy config overrides it field by field', () => {
  const mesh = { defaultConfig: { gatewayTopology: { numTrustedProxies: 2, forwardClientCertDetails: 'APPEND_FORWARD' } } };
  for (const h of hcms(gateway(), mesh)) assert.deepEqual(topology(h), { hops: 2, xfcc: 'APPEND_FORWARD', set: ALL_DETAILS });
  // The annotation reaches the control plane as PROXY_CONFIG, a JSON string from some agents.
  for (const h of hcms(gateway('{"gatewayTopology":{"forwardClientCertDetails":"FORWARD_ONLY"}}'), mesh)) assert.deepEqual(topology(h), { hops: 2, xfcc: 'FORWARD_ONLY', set: ALL_DETAILS });
  for (const h of hcms(gateway({ gatewayTopology: { numTrustedProxies: 0 } }), mesh)) assert.equal(h.xff_num_trusted_hops, undefined, 'an explicit 0 overrides the mesh default');
  for (const h of hcms(gateway({ gatewayTopology: { numTrustedProxies: '1', forwardClientCertDetails: 'UNDEFINED' } }))) assert.deepEqual(topology(h), { hops: 1, xfcc: 'SANITIZE_SET', set: ALL_DETAILS });
  // Proto JSON's enum numbers: 5 is ALWAYS_FORWARD_ONLY.
  for (const h of hcms(gateway({ gatewayTopology: { forwardClientCertDetails: 5 } }))) assert.equal(h.forward_client_cert_details, 'ALWAYS_FORWARD_ONLY');
});

test('sidecars ignore gatewayTopology: inbound keeps APPEND_FORWARD (subject, dns, uri), no trusted hops', () => {
  const sidecar = explicitSidecar('reviews-0', 'default', { app: 'reviews' }, 'reviews', [{ port: 9080, name: 'http' }]);
  const got = hcms(sidecar, { defaultConfig: { gatewayTopology: { numTrustedProxies: 3, forwardClientCertDetails: 'ALWAYS_FORWARD_ONLY' } } });
  assert.ok(got.length > 0);
  for (const h of got) {
    assert.equal(h.xff_num_trusted_hops, undefined);
    assert.notEqual(h.forward_client_cert_details, 'ALWAYS_FORWARD_ONLY');
  }
  assert.ok(got.some((h) => h.forward_client_cert_details === 'APPEND_FORWARD' && JSON.stringify(h.set_current_client_cert_details) === JSON.stringify({ subject: true, dns: true, uri: true })));
});

test('MeshConfig gatewayTopology validation names the path of each problem', () => {
  const bad = (gatewayTopology: unknown) => () => parseMeshConfig({ defaultConfig: { gatewayTopology } });
  assert.throws(bad({ forwardClientCertDetails: 'SANITISE' }), /defaultConfig\.gatewayTopology\.forwardClientCertDetails: expected one of UNDEFINED, SANITIZE, FORWARD_ONLY, APPEND_FORWARD, SANITIZE_SET, ALWAYS_FORWARD_ONLY, got "SANITISE"/);
  assert.throws(bad({ forwardClientCertDetails: 9 }), /forwardClientCertDetails: expected one of/);
  assert.throws(bad({ numTrustedProxies: -1 }), /defaultConfig\.gatewayTopology\.numTrustedProxies: expected a whole number from 0 to 4294967295/);
  assert.throws(bad({ numTrustedProxies: 1.5 }), /numTrustedProxies: expected a whole number/);
  assert.throws(bad({ numTrustedProxys: 1 }), /defaultConfig\.gatewayTopology\.numTrustedProxys: unknown field \(known: numTrustedProxies, forwardClientCertDetails, proxyProtocol\)/);
  assert.throws(bad({ proxyProtocol: { version: 'V2' } }), /defaultConfig\.gatewayTopology\.proxyProtocol: expected \{\} \(Istio's ProxyProtocol has no fields\), got \{"version":"V2"\}/);
  assert.deepEqual(parseMeshConfig({ defaultConfig: { gatewayTopology: { proxyProtocol: {} } } }).defaultConfig.gatewayTopology, { proxyProtocol: {} });
  assert.throws(bad([1]), /defaultConfig\.gatewayTopology: expected object/);
  // Every problem at once.
  assert.throws(bad({ numTrustedProxies: -1, forwardClientCertDetails: 'X' }), (err: Error) => /numTrustedProxies/.test(err.message) && /forwardClientCertDetails/.test(err.message));
  assert.deepEqual(parseMeshConfig({ defaultConfig: { gatewayTopology: { numTrustedProxies: '3', forwardClientCertDetails: 2 } } }).defaultConfig.gatewayTopology, { numTrustedProxies: 3, forwardClientCertDetails: 'FORWARD_ONLY' });
});

test('a proxy whose PROXY_CONFIG.gatewayTopology is invalid is refused, naming the field', () => {
  assert.throws(() => gateway({ gatewayTopology: { forwardClientCertDetails: 'sanitize' } }), (err: Error) => err instanceof NodeError && /node metadata PROXY_CONFIG\.gatewayTopology\.forwardClientCertDetails: expected one of/.test(err.message));
  assert.throws(() => gateway({ gatewayTopology: { numTrustedProxies: -2 } }), /PROXY_CONFIG\.gatewayTopology\.numTrustedProxies: expected a whole number/);
  assert.throws(() => gateway({ gatewayTopology: { trusted: 1 } }), /PROXY_CONFIG\.gatewayTopology\.trusted: unknown field/);
  assert.throws(() => gateway({ gatewayTopology: 'x' }), /PROXY_CONFIG\.gatewayTopology: expected an object/);
});

test('rig proxy: the PROXY_CONFIG environment variable (YAML or JSON, as Istio agent) becomes node metadata PROXY_CONFIG', () => {
  const parse = (args: string[]): XdsCliOptions => addXdsOptions(new Command('proxy').exitOverride()).parse(args, { from: 'user' }).opts<XdsCliOptions>();
  const opts = parse(['--xds-address', '127.0.0.1:15010', '--mode', 'router', '--namespace', 'istio-system', '--workload-name', 'gw']);
  const meta = (env: NodeJS.ProcessEnv) => ((bootstrapFromOptions(opts, env).node as EnvoyJson).metadata as EnvoyJson).PROXY_CONFIG;
  assert.deepEqual(meta({ PROXY_CONFIG: 'gatewayTopology:\n  numTrustedProxies: 1\n' }), { gatewayTopology: { numTrustedProxies: 1 } });
  assert.deepEqual(meta({ ISTIO_METAJSON_PROXY_CONFIG: '{"gatewayTopology":{"forwardClientCertDetails":"FORWARD_ONLY"}}' }), { gatewayTopology: { forwardClientCertDetails: 'FORWARD_ONLY' } });
  assert.equal(meta({}), undefined);
  assert.throws(() => meta({ PROXY_CONFIG: '[1]' }), /PROXY_CONFIG: must be a ProxyConfig object/);
  assert.throws(() => meta({ PROXY_CONFIG: '{a: [' }), /PROXY_CONFIG: not YAML or JSON/);
});
