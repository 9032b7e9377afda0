// Golden files for the generators over Bookinfo with routing, subsets, gateway, ServiceEntry and
// mTLS; every resource fits its Envoy type and survives packAny/unpackAny unchanged.
// Regenerate after an intended change with RIG_UPDATE_GOLDEN=1 and review the diff.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE, checkMessage, packAny, unpackAny } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import type { PushContext } from '../../src/model/push-context.ts';
import type { Proxy } from '../../src/model/proxy.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { buildPush, explicitSidecar, gatewayProxy, grpcProxy, loadFiles, podSidecar, rdsNames } from './fixtures.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const UPDATE = process.env.RIG_UPDATE_GOLDEN === '1';

function sdsNames(resources: EnvoyJson[]): string[] {
  const names = new Set<string>();
  JSON.stringify(resources, (k, v) => {
    if ((k === 'tls_certificate_sds_secret_configs' || k === 'validation_context_sds_secret_config') && v) for (const s of [v].flat() as { name: string }[]) names.add(s.name);
    return v;
  });
  return [...names].sort();
}

function generateAll(push: PushContext, proxy: Proxy): Record<string, EnvoyJson[]> {
  const clusters = GENERATORS[CLUSTER_TYPE].generate(push, proxy, undefined);
  const listeners = GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined);
  const routes = GENERATORS[ROUTE_TYPE].generate(push, proxy, rdsNames(listeners));
  const endpoints = GENERATORS[ENDPOINT_TYPE].generate(push, proxy, clusters.filter((c) => c.type === 'EDS').map((c) => c.name as string));
  const secrets = GENERATORS[SECRET_TYPE].generate(push, proxy, sdsNames([...clusters, ...listeners]));
  return { clusters, listeners, routes, endpoints, secrets };
}

const TYPES: Record<string, string> = { clusters: CLUSTER_TYPE, listeners: LISTENER_TYPE, routes: ROUTE_TYPE, endpoints: ENDPOINT_TYPE, secrets: SECRET_TYPE };

async function scenario() {
  const resources = await loadFiles([path.join(HERE, 'testdata/bookinfo-mesh.yaml')]);
  const proxies = {
    'productpage-explicit': explicitSidecar('productpage-v1-0', 'default', { app: 'productpage', version: 'v1' }, 'bookinfo-productpage', [{ port: 9080, name: 'http' }], { base: 30000, upstreamPorts: { 'reviews:9080': 30100, 'mysql:3306': 30101 } }),
    'reviews-v2-pod': podSidecar('reviews-v2-0', 'default', { app: 'reviews', version: 'v2' }, 'bookinfo-reviews', [{ port: 9080, name: 'http' }], '198.18.0.12'),
    'ratings-explicit': explicitSidecar('ratings-v1-0', 'default', { app: 'ratings', version: 'v1' }, 'bookinfo-ratings', [{ port: 9080, name: 'http' }, { port: 9081, name: 'tcp-admin' }], { base: 30200 }),
    'ingressgateway': gatewayProxy(),
    'grpc-client': grpcProxy(),
  };
  const credentials = (name: string) => (name === 'bookinfo-cert' || name === 'secure-cert' ? { certificateChain: Buffer.from(`CERT ${name}`), privateKey: Buffer.from(`KEY ${name}`), caCertificate: Buffer.from(`CA ${name}`) } : undefined);
  const push = buildPush(resources, Object.values(proxies), { credentials });
  return { push, proxies };
}

test('generated resources match the golden files', async () => {
  const { push, proxies } = await scenario();
  for (const [name, proxy] of Object.entries(proxies)) {
    const got = generateAll(push, proxy);
    const file = path.join(HERE, 'golden', `${name}.json`);
    const text = JSON.stringify(got, null, 1) + '\n';
    if (UPDATE || !fs.existsSync(file)) fs.writeFileSync(file, text);
    assert.deepEqual(got, JSON.parse(fs.readFileSync(file, 'utf8')), `${name}: output differs from ${file} (RIG_UPDATE_GOLDEN=1 to accept an intended change)`);
  }
});

test('no filter chain carries a network filter twice (istio.stats counted each TCP connection twice on explicit sidecars)', async () => {
  const { push, proxies } = await scenario();
  for (const [name, proxy] of Object.entries(proxies)) {
    for (const l of generateAll(push, proxy).listeners as EnvoyJson[]) {
      for (const c of (l.filter_chains as EnvoyJson[] | undefined) ?? []) {
        const names = ((c.filters as EnvoyJson[] | undefined) ?? []).map((f) => f.name as string);
        assert.equal(new Set(names).size, names.length, `${name} ${l.name as string}: ${names.join(', ')}`);
      }
    }
  }
});

test('every generated resource fits its Envoy type and round-trips through packAny/unpackAny unchanged', async () => {
  const { push, proxies } = await scenario();
  let count = 0;
  for (const [name, proxy] of Object.entries(proxies)) {
    for (const [kind, list] of Object.entries(generateAll(push, proxy))) {
      const typeUrl = TYPES[kind];
      for (const r of list) {
        const issues = checkMessage(typeUrl.slice(typeUrl.lastIndexOf('/') + 1), r);
        assert.deepEqual(issues, [], `${name} ${kind} ${r.name ?? r.cluster_name}`);
        assert.ok(isDeepStrictEqual(unpackAny(packAny(typeUrl, r)), r), `${name} ${kind} ${r.name ?? r.cluster_name} changes in a protobuf round trip`);
        count++;
      }
    }
  }
  assert.ok(count > 100, `only ${count} resources generated`);
});

test('explicit mode: names and ports follow the contract', async () => {
  const { push, proxies } = await scenario();
  const all = generateAll(push, proxies['productpage-explicit']);
  const vip = (host: string) => push.serviceByHost.get(host)!.address;
  // Bound: http_proxy, the inbound port, the upstream ports; not bound: REDIRECT mode's outbound
  // listeners, where the inside of a CONNECT to a service goes (connect-redispatch).
  assert.deepEqual(all.listeners.map((l) => l.name), ['http_proxy', '127.0.0.1_30001', '0.0.0.0_9080', '0.0.0.0_80', `${vip('httpbin.org')}_443`, `${vip('mysql.default.svc.cluster.local')}_3306`, '127.0.0.1_30100', '127.0.0.1_30101']);
  assert.deepEqual(all.listeners.filter((l) => l.bind_to_port !== false).map((l) => l.name), ['http_proxy', '127.0.0.1_30001', '127.0.0.1_30100', '127.0.0.1_30101']);
  const httpProxy = all.routes.find((r) => r.name === 'http_proxy') as EnvoyJson;
  const reviews = (httpProxy.virtual_hosts as EnvoyJson[]).find((v) => v.name === 'reviews.default.svc.cluster.local:9080') as EnvoyJson;
  assert.deepEqual(reviews.domains, ['reviews.default.svc.cluster.local:9080', 'reviews:9080', 'reviews.default:9080', 'reviews.default.svc:9080', `${push.serviceByHost.get('reviews.default.svc.cluster.local')!.address}:9080`]);
  const routes = reviews.routes as EnvoyJson[];
  assert.deepEqual(routes[0].match, { connect_matcher: {} });
  assert.deepEqual(routes[0].metadata, { filter_metadata: { 'rigging.connect_redispatch': { original_dst: { address: vip('reviews.default.svc.cluster.local'), port_value: 9080 } } } });
  assert.deepEqual((routes[1].match as EnvoyJson).headers, [{ name: 'end-user', string_match: { exact: 'jason' } }]);
  assert.equal((routes[1].route as EnvoyJson).cluster, 'outbound|9080|v2|reviews.default.svc.cluster.local');
  const split = routes[2].route as EnvoyJson;
  assert.deepEqual(split.weighted_clusters, { clusters: [{ name: 'outbound|9080|v1|reviews.default.svc.cluster.local', weight: 50 }, { name: 'outbound|9080|v3|reviews.default.svc.cluster.local', weight: 50 }] });
  assert.equal(split.timeout, '3s');
  assert.deepEqual(split.retry_policy, { retry_on: '5xx,gateway-error,retriable-status-codes', num_retries: 3, host_selection_retry_max_attempts: 5, retriable_status_codes: [503], per_try_timeout: '1s', retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' } }] });
  // Inbound: STRICT from the mesh-wide policy, the app behind 127.0.0.1:appPort.
  const inbound = all.listeners.find((l) => l.name === '127.0.0.1_30001') as EnvoyJson;
  assert.deepEqual((inbound.filter_chains as EnvoyJson[]).map((c) => c.filter_chain_match), [{ transport_protocol: 'tls' }]);
  const inboundCluster = all.clusters.find((c) => c.name === 'inbound|9080||') as EnvoyJson;
  assert.equal(JSON.stringify(inboundCluster.load_assignment).includes('"port_value":30005'), true);
});

test('explicit mode bound on the IPv6 wildcard: listeners take IPv4 too (ipv4_compat), as node binds ::', async () => {
  const { push } = await scenario();
  const sidecar = explicitSidecar('details-v1-0', 'default', { app: 'details', version: 'v1' }, 'bookinfo-details', [{ port: 9080, name: 'http' }], { bind: '::', base: 30300, upstreamPorts: { 'reviews:9080': 30310 } });
  const bound = generateAll(push, sidecar).listeners.filter((l) => l.bind_to_port !== false);
  assert.deepEqual(bound.map((l) => (l.address as EnvoyJson).socket_address), [
    { address: '::', port_value: 30300, ipv4_compat: true },
    { address: '::', port_value: 30301, ipv4_compat: true },
    { address: '::', port_value: 30310, ipv4_compat: true },
  ]);
  const v4 = generateAll(push, explicitSidecar('details-v1-1', 'default', { app: 'details', version: 'v1' }, 'bookinfo-details', [{ port: 9080, name: 'http' }], { base: 30400 })).listeners;
  assert.ok(v4.every((l) => !('ipv4_compat' in ((l.address as EnvoyJson).socket_address as EnvoyJson))));
});

test('PeerAuthentication precedence: workload PERMISSIVE over mesh STRICT, portLevelMtls DISABLE', async () => {
  const { push, proxies } = await scenario();
  const listeners = generateAll(push, proxies['ratings-explicit']).listeners;
  const matches = (name: string) => ((listeners.find((l) => l.name === name) as EnvoyJson).filter_chains as EnvoyJson[]).map((c) => c.filter_chain_match ?? null);
  // PERMISSIVE on an HTTP port: mesh mTLS told by Istio's ALPN, plaintext; no chain for other TLS (as Istio).
  assert.deepEqual(matches('127.0.0.1_30201'), [{ transport_protocol: 'tls', application_protocols: ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'] }, { transport_protocol: 'raw_buffer' }]);
  assert.deepEqual(matches('127.0.0.1_30202'), [null]);
});

test('auto mTLS and TLS origination on clusters', async () => {
  const { push, proxies } = await scenario();
  const clusters = generateAll(push, proxies['productpage-explicit']).clusters;
  const reviews = clusters.find((c) => c.name === 'outbound|9080|v1|reviews.default.svc.cluster.local') as EnvoyJson;
  const matches = reviews.transport_socket_matches as EnvoyJson[];
  assert.deepEqual(matches.map((m) => m.match), [{ tlsMode: 'istio' }, {}]);
  const ctx = (matches[0].transport_socket as EnvoyJson).typed_config as EnvoyJson;
  assert.equal(ctx.sni, 'outbound_.9080_.v1_.reviews.default.svc.cluster.local');
  const common = ctx.common_tls_context as EnvoyJson;
  assert.deepEqual(common.alpn_protocols, ['istio-peer-exchange', 'istio']);
  assert.deepEqual((common.combined_validation_context as EnvoyJson).default_validation_context, { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' } }] });
  const ext = clusters.find((c) => c.name === 'outbound|80||httpbin.org') as EnvoyJson;
  assert.equal(ext.type, 'STRICT_DNS');
  assert.equal(((ext.transport_socket as EnvoyJson).typed_config as EnvoyJson).sni, 'httpbin.org');
  assert.equal(ext.transport_socket_matches, undefined);
});

test('gateway: listeners per server port, credentialName over SDS, httpsRedirect, passthrough by SNI', async () => {
  const { push, proxies } = await scenario();
  const all = generateAll(push, proxies.ingressgateway);
  assert.deepEqual(all.listeners.map((l) => l.name), ['0.0.0.0_8080', '0.0.0.0_8081', '0.0.0.0_8443', '0.0.0.0_8444', '0.0.0.0_8445']);
  assert.deepEqual(all.routes.map((r) => r.name).sort(), ['http.8080', 'http.8081', 'https.8443.https.bookinfo-gateway.default', 'https.8444.mtls.bookinfo-gateway.default']);
  const redirect = all.routes.find((r) => r.name === 'http.8081') as EnvoyJson;
  assert.equal((redirect.virtual_hosts as EnvoyJson[])[0].require_tls, 'ALL');
  assert.deepEqual(all.secrets.map((s) => s.name), ['kubernetes://bookinfo-cert', 'kubernetes://secure-cert', 'kubernetes://secure-cert-cacert']);
  const pass = all.listeners.find((l) => l.name === '0.0.0.0_8445') as EnvoyJson;
  assert.deepEqual((pass.filter_chains as EnvoyJson[])[0].filter_chain_match, { server_names: ['passthrough.example.com'] });
});
