// Istio's ProxyConfig proxyHeaders (MeshConfig defaultConfig.proxyHeaders, a proxy's own PROXY_CONFIG
// overriding it field by field) in the generated config, as istiod's GetProxyHeaders applies it:
// HCM server_name / server_header_transformation / generate_request_id / XFCC (sidecar inbound),
// the router's suppress_envoy_headers, the virtual hosts' include_request_attempt_count (sidecar
// outbound and gateway routes) and the outbound peer metadata filter. Bad values name their path.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { parseMeshConfig } from '../../src/model/mesh-config.ts';
import { NodeError, parseNode, type Proxy } from '../../src/model/proxy.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { startTestRuntime } from '../proxy/harness.ts';
import { assertEnvoyResource, buildPush, explicitSidecar, gatewayProxy, parseYaml, rdsNames } from './fixtures.ts';

const CONFIG = parseYaml(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 8080, name: http, protocol: HTTP }, hosts: ['*'] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: edge, namespace: istio-system }
spec:
  hosts: ['*']
  gateways: [gw]
  http: [{ route: [{ destination: { host: reviews.default.svc.cluster.local } }] }]
---
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ port: 9080, name: http }] }
`);

/** The proxy with `proxyConfig` as its node metadata PROXY_CONFIG (what `rig proxy` sends from PROXY_CONFIG). */
function withProxyConfig(p: Proxy, proxyConfig: unknown): Proxy {
  return parseNode({ id: p.id, metadata: { ...p.metadata, PROXY_CONFIG: proxyConfig } });
}

const sidecar = () => explicitSidecar('reviews-0', 'default', { app: 'reviews' }, 'reviews', [{ port: 9080, name: 'http' }], { upstreamPorts: { 'reviews.default.svc.cluster.local:9080': 29999 } });

interface Generated {
  hcms: { stat: string; hcm: EnvoyJson }[];
  routes: EnvoyJson[];
}

/** Every HTTP connection manager and route configuration the proxy gets, checked against Envoy's protos. */
function generate(proxy: Proxy, meshYaml?: unknown): Generated {
  const push = buildPush(CONFIG, [proxy], { mesh: parseMeshConfig(meshYaml) });
  const listeners = GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined);
  const hcms: Generated['hcms'] = [];
  for (const l of listeners) {
    assertEnvoyResource(LISTENER_TYPE, l);
    for (const c of (l.filter_chains as EnvoyJson[] | undefined) ?? []) {
      for (const f of c.filters as EnvoyJson[]) if (f.name === 'envoy.filters.network.http_connection_manager') hcms.push({ stat: (f.typed_config as EnvoyJson).stat_prefix as string, hcm: f.typed_config as EnvoyJson });
    }
  }
  const routes = GENERATORS[ROUTE_TYPE].generate(push, proxy, rdsNames(listeners));
  for (const r of routes) assertEnvoyResource(ROUTE_TYPE, r);
  return { hcms, routes };
}

const inbound = (g: Generated) => g.hcms.filter((h) => h.stat.startsWith('inbound_')).map((h) => h.hcm);
const outbound = (g: Generated) => g.hcms.filter((h) => h.stat.startsWith('outbound_')).map((h) => h.hcm);
const router = (hcm: EnvoyJson) => ((hcm.http_filters as EnvoyJson[]).at(-1)!.typed_config as EnvoyJson).suppress_envoy_headers;
const peerMetadata = (hcm: EnvoyJson) => ((hcm.http_filters as EnvoyJson[]).find((f) => f.name === 'envoy.filters.http.peer_metadata')!.typed_config as EnvoyJson).value as EnvoyJson;
const vhosts = (g: Generated) => g.routes.flatMap((r) => r.virtual_hosts as EnvoyJson[]);
const headerFields = (h: EnvoyJson) => ({ server: h.server_name, transform: h.server_header_transformation, requestId: h.generate_request_id });

test("istiod's defaults: istio-envoy on inbound and gateway HCMs, Envoy's name outbound; inbound APPEND_FORWARD; attempt count on outbound and gateway routes", () => {
  const s = generate(sidecar());
  assert.ok(inbound(s).length > 0);
  assert.equal(outbound(s).length, 3, 'the http_proxy listener, the per-upstream one and the unbound one of the HTTP port (for CONNECT tunnels)');
  for (const h of inbound(s)) {
    assert.deepEqual(headerFields(h), { server: 'istio-envoy', transform: undefined, requestId: undefined });
    assert.equal(h.forward_client_cert_details, 'APPEND_FORWARD');
    assert.deepEqual(h.set_current_client_cert_details, { subject: true, dns: true, uri: true });
    assert.equal((h.route_config as EnvoyJson).virtual_hosts && ((h.route_config as EnvoyJson).virtual_hosts as EnvoyJson[])[0].include_request_attempt_count, undefined, 'not on the inbound route, as istiod');
  }
  for (const h of outbound(s)) {
    assert.deepEqual(headerFields(h), { server: undefined, transform: undefined, requestId: undefined });
    assert.equal(h.forward_client_cert_details, undefined, "Envoy's SANITIZE");
    assert.equal(router(h), undefined);
    assert.deepEqual(peerMetadata(h).upstream_propagation, [{ istio_headers: {} }]);
  }
  assert.ok(vhosts(s).length > 1);
  for (const vh of vhosts(s)) assert.equal(vh.include_request_attempt_count, true, String(vh.name));

  const gw = generate(gatewayProxy());
  assert.equal(gw.hcms.length, 1);
  assert.deepEqual(headerFields(gw.hcms[0].hcm), { server: 'istio-envoy', transform: undefined, requestId: undefined });
  for (const vh of vhosts(gw)) assert.equal(vh.include_request_attempt_count, true);
});

const MESH_HEADERS = {
  defaultConfig: {
    proxyHeaders: {
      forwardedClientCert: 'SANITIZE_SET',
      setCurrentClientCertDetails: { cert: true, dns: false },
      requestId: { disabled: true },
      server: { value: 'edge' },
      attemptCount: { disabled: true },
      envoyDebugHeaders: { disabled: true },
      metadataExchangeHeaders: { mode: 'IN_MESH' },
      preserveHttp1HeaderCase: true,
    },
  },
};

test('MeshConfig defaultConfig.proxyHeaders on every sidecar and gateway', () => {
  const s = generate(sidecar(), MESH_HEADERS);
  for (const h of [...inbound(s), ...outbound(s)]) {
    assert.deepEqual(headerFields(h), { server: 'edge', transform: undefined, requestId: false });
    assert.equal(router(h), true, 'envoyDebugHeaders.disabled: the router adds no x-envoy-* headers');
  }
  for (const h of inbound(s)) {
    assert.equal(h.forward_client_cert_details, 'SANITIZE_SET');
    assert.deepEqual(h.set_current_client_cert_details, { subject: true, uri: true, cert: true });
  }
  for (const h of outbound(s)) {
    assert.equal(h.forward_client_cert_details, undefined, 'forwardedClientCert is for inbound HCMs only');
    assert.deepEqual(peerMetadata(h).upstream_propagation, [{ istio_headers: { skip_external_clusters: true } }], 'IN_MESH');
  }
  for (const vh of vhosts(s)) assert.equal(vh.include_request_attempt_count, undefined);

  // Gateways: server, request id, debug headers and attempt count; XFCC stays gatewayTopology's.
  const gw = generate(gatewayProxy(), MESH_HEADERS);
  const h = gw.hcms[0].hcm;
  assert.deepEqual(headerFields(h), { server: 'edge', transform: undefined, requestId: false });
  assert.equal(router(h), true);
  assert.equal(h.forward_client_cert_details, 'SANITIZE_SET');
  assert.deepEqual(h.set_current_client_cert_details, { subject: true, cert: true, uri: true, dns: true });
  for (const vh of vhosts(gw)) assert.equal(vh.include_request_attempt_count, undefined);
});

test("a proxy's own PROXY_CONFIG.proxyHeaders overrides the mesh default field by field; shared outbound listeners and routes are not mixed up", () => {
  const mesh = { defaultConfig: { proxyHeaders: { server: { value: 'edge' }, requestId: { disabled: true } } } };
  const own = withProxyConfig(sidecar(), '{"proxyHeaders":{"server":{"disabled":true},"attemptCount":{"disabled":true},"forwardedClientCert":3}}');
  const push = buildPush(CONFIG, [own, sidecar()], { mesh: parseMeshConfig(mesh) });
  const hcmsOf = (p: Proxy) => GENERATORS[LISTENER_TYPE].generate(push, p, undefined).flatMap((l) => (l.filter_chains as EnvoyJson[]).flatMap((c) => (c.filters as EnvoyJson[]).map((f) => f.typed_config as EnvoyJson)));
  for (const h of hcmsOf(own)) {
    // server.disabled: Envoy passes the upstream's server header through and sets none of its own.
    assert.deepEqual(headerFields(h), { server: undefined, transform: 'PASS_THROUGH', requestId: false });
    if (String(h.stat_prefix).startsWith('inbound_')) assert.equal(h.forward_client_cert_details, 'APPEND_FORWARD', 'proto enum number 3');
  }
  for (const h of hcmsOf(sidecar())) if (h.http_filters) assert.equal(h.server_name, 'edge');
  const routesOf = (p: Proxy) => GENERATORS[ROUTE_TYPE].generate(push, p, ['http_proxy']).flatMap((r) => r.virtual_hosts as EnvoyJson[]);
  for (const vh of routesOf(own)) assert.equal(vh.include_request_attempt_count, undefined);
  for (const vh of routesOf(sidecar())) assert.equal(vh.include_request_attempt_count, true);
});

const PRESERVE_CASE = { stateful_formatter: { name: 'preserve_case', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.http.header_formatters.preserve_case.v3.PreserveCaseFormatterConfig' } } };

/** The Http1ProtocolOptions of each cluster the proxy gets (undefined: none), by name. */
function clusterH1Options(proxy: Proxy, meshYaml?: unknown): Map<string, EnvoyJson | undefined> {
  const push = buildPush(CONFIG, [proxy], { mesh: parseMeshConfig(meshYaml) });
  const out = new Map<string, EnvoyJson | undefined>();
  for (const c of GENERATORS[CLUSTER_TYPE].generate(push, proxy, undefined)) {
    assertEnvoyResource(CLUSTER_TYPE, c);
    const o = (c.typed_extension_protocol_options as Record<string, EnvoyJson> | undefined)?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
    const cfg = (o?.explicit_http_config ?? o?.use_downstream_protocol_config) as EnvoyJson | undefined;
    out.set(c.name as string, cfg?.http_protocol_options as EnvoyJson | undefined);
  }
  return out;
}

test('preserveHttp1HeaderCase: the preserve_case formatter on every HCM, and on the HTTP/1 options of HTTP clusters (inbound, outbound, PassthroughCluster)', () => {
  const on = { defaultConfig: { proxyHeaders: { preserveHttp1HeaderCase: true } } };
  for (const [proxy, mesh] of [
    [sidecar(), on],
    [withProxyConfig(sidecar(), { proxyHeaders: { preserveHttp1HeaderCase: true } }), undefined],
  ] as const) {
    const g = generate(proxy, mesh);
    assert.ok(g.hcms.length > 2);
    for (const { stat, hcm } of g.hcms) assert.deepEqual((hcm.http_protocol_options as EnvoyJson | undefined)?.header_key_format, PRESERVE_CASE, stat);
    const clusters = clusterH1Options(proxy, mesh);
    for (const name of ['outbound|9080||reviews.default.svc.cluster.local', 'inbound|9080||', 'PassthroughCluster']) assert.deepEqual(clusters.get(name)?.header_key_format, PRESERVE_CASE, name);
  }
  // A gateway's HCMs too.
  for (const { stat, hcm } of generate(gatewayProxy(), on).hcms) assert.deepEqual((hcm.http_protocol_options as EnvoyJson | undefined)?.header_key_format, PRESERVE_CASE, stat);
  // Off (the default, or false): no formatter anywhere.
  for (const mesh of [undefined, { defaultConfig: { proxyHeaders: { preserveHttp1HeaderCase: false } } }]) {
    for (const { stat, hcm } of generate(sidecar(), mesh).hcms) assert.equal((hcm.http_protocol_options as EnvoyJson | undefined)?.header_key_format, undefined, stat);
    for (const [name, h1] of clusterH1Options(sidecar(), mesh)) assert.equal(h1?.header_key_format, undefined, name);
  }
});

test('proxyHeaders validation names the path of each problem; what rig proxy cannot do is refused', () => {
  const bad = (proxyHeaders: unknown) => () => parseMeshConfig({ defaultConfig: { proxyHeaders } });
  const at = 'defaultConfig\\.proxyHeaders';
  assert.throws(bad({ forwardedClientCert: 'SANITISE' }), new RegExp(`${at}\\.forwardedClientCert: expected one of UNDEFINED, SANITIZE, FORWARD_ONLY, APPEND_FORWARD, SANITIZE_SET, ALWAYS_FORWARD_ONLY, got "SANITISE"`));
  assert.throws(bad({ server: { value: 7 } }), new RegExp(`${at}\\.server\\.value: expected a string, got 7`));
  assert.throws(bad({ requestId: { disabled: 'yes' } }), new RegExp(`${at}\\.requestId\\.disabled: expected true or false, got "yes"`));
  assert.throws(bad({ attemptCount: true }), new RegExp(`${at}\\.attemptCount: expected an object \\{ disabled \\}`));
  assert.throws(bad({ metadataExchangeHeaders: { mode: 'MESH' } }), new RegExp(`${at}\\.metadataExchangeHeaders\\.mode: expected one of UNDEFINED, IN_MESH`));
  assert.throws(bad({ setCurrentClientCertDetails: { subjects: true } }), new RegExp(`${at}\\.setCurrentClientCertDetails\\.subjects: unknown field \\(known: subject, cert, chain, dns, uri\\)`));
  assert.throws(bad({ serverName: 'x' }), new RegExp(`${at}\\.serverName: unknown field \\(known: forwardedClientCert,`));
  assert.throws(bad({ preserveHttp1HeaderCase: 'yes' }), new RegExp(`${at}\\.preserveHttp1HeaderCase: expected true or false, got "yes"`));
  assert.throws(bad({ xForwardedPort: { enabled: true } }), new RegExp(`${at}\\.xForwardedPort: not supported`));
  assert.throws(bad('x'), new RegExp(`${at}: expected object`));
  // Every problem at once.
  assert.throws(bad({ server: { disabled: 1 }, envoyDebugHeaders: { disabled: 'no' } }), (err: Error) => /server\.disabled/.test(err.message) && /envoyDebugHeaders\.disabled/.test(err.message));
  // Proto JSON: enum numbers and BoolValue objects.
  assert.deepEqual(parseMeshConfig({ defaultConfig: { proxyHeaders: { forwardedClientCert: 4, requestId: { disabled: { value: true } }, metadataExchangeHeaders: { mode: 1 } } } }).defaultConfig.proxyHeaders, { forwardedClientCert: 'SANITIZE_SET', requestId: { disabled: true }, metadataExchangeHeaders: { mode: 'IN_MESH' } });

  // A proxy's own config: the proxy is refused with the path.
  assert.throws(() => withProxyConfig(sidecar(), { proxyHeaders: { server: { value: ['a'] } } }), (err: Error) => err instanceof NodeError && /node metadata PROXY_CONFIG\.proxyHeaders\.server\.value: expected a string/.test(err.message));
  assert.equal(withProxyConfig(sidecar(), { proxyHeaders: { preserveHttp1HeaderCase: true } }).proxyHeaders?.preserveHttp1HeaderCase, true);
});

test('rig proxy takes every field generated from proxyHeaders without a warning', async (t) => {
  const warnings: string[] = [];
  for (const proxy of [sidecar(), gatewayProxy()]) {
    const push = buildPush(CONFIG, [proxy], { mesh: parseMeshConfig(MESH_HEADERS) });
    const listeners = GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined);
    const h = await startTestRuntime(t);
    assert.deepEqual(h.apply(CLUSTER_TYPE, GENERATORS[CLUSTER_TYPE].generate(push, proxy, undefined)), []);
    assert.deepEqual(h.apply(ROUTE_TYPE, GENERATORS[ROUTE_TYPE].generate(push, proxy, rdsNames(listeners))), []);
    // Bound on ports the OS picks.
    assert.deepEqual(h.apply(LISTENER_TYPE, listeners.map((l) => ({ ...l, address: { socket_address: { address: '127.0.0.1', port_value: 0 } } }))), []);
    for (const w of h.rt.warnings.values()) warnings.push(...w);
  }
  assert.deepEqual(warnings, []);
});

test("a gateway's own proxyHeaders fields that istiod applies to sidecars only are warned about once in the control plane log", async () => {
  // The warning goes to the log of the process generating the config: a child process generates twice.
  const fixtures = fileURLToPath(new URL('./fixtures.ts', import.meta.url));
  const src = (rel: string) => fileURLToPath(new URL(`../../src/${rel}`, import.meta.url));
  const code = `
    import { LISTENER_TYPE } from '${src('envoy/index.ts')}';
    import { parseNode } from '${src('model/proxy.ts')}';
    import { GENERATORS } from '${src('xds/server/generators.ts')}';
    import { buildPush, gatewayProxy } from '${fixtures}';
    const g = gatewayProxy();
    const gw = parseNode({ id: g.id, metadata: { ...g.metadata, PROXY_CONFIG: { proxyHeaders: { forwardedClientCert: 'SANITIZE', server: { value: 'x' } } } } });
    const push = buildPush(${JSON.stringify(CONFIG)}, [gw]);
    GENERATORS[LISTENER_TYPE].generate(push, gw, undefined);
    GENERATORS[LISTENER_TYPE].generate(push, gw, undefined);
  `;
  const { stderr } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', code]);
  const warned = stderr.split('\n').filter((l) => l.includes('proxyHeaders'));
  assert.equal(warned.length, 1, stderr);
  assert.match(warned[0], /gateway istio-ingressgateway-0\.istio-system: PROXY_CONFIG\.proxyHeaders\.forwardedClientCert has no effect on gateways, as in Istio \(set gatewayTopology\.forwardClientCertDetails\); ignored/);
});

test('MESH_EXTERNAL services get istio.external cluster metadata, which IN_MESH skips the peer metadata headers for; mesh services do not', () => {
  const config = parseYaml(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: payments, namespace: default }
spec:
  hosts: [api.payments.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: 443, name: tls, protocol: TLS }]
---
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ port: 9080, name: http }] }
`);
  const proxy = sidecar();
  const clusters = GENERATORS[CLUSTER_TYPE].generate(buildPush(config, [proxy]), proxy, undefined);
  const external = (name: string) => {
    const c = clusters.find((x) => x.name === name);
    assert.ok(c, `cluster ${name}`);
    return ((c.metadata as EnvoyJson).filter_metadata as { istio: EnvoyJson }).istio.external;
  };
  assert.equal(external('outbound|443||api.payments.example'), true);
  assert.equal(external('outbound|9080||reviews.default.svc.cluster.local'), undefined);
});
