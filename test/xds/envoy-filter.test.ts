// EnvoyFilter (generated config): selection (workloadSelector, namespace / root namespace,
// priority then creation order), match.context, the listener / filter chain / filter / sub-filter,
// route configuration / virtual host / route and cluster matches, and every operation; plus the
// apply-time errors for what Rigging does not apply.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadDocuments } from '../../src/api/loader.ts';
import { CLUSTER_TYPE, EXTENSION_CONFIG_TYPE, LISTENER_TYPE, LOCAL_RATELIMIT_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import type { Proxy } from '../../src/model/proxy.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { ISTIO_VERSION } from '../../src/core/version.ts';
import { parseNode } from '../../src/model/proxy.ts';
import { addXdsOptions, bootstrapFromOptions, type XdsCliOptions } from '../../src/proxy/bootstrap/flags.ts';
import { Command } from 'commander';
import { assertEnvoyResource, buildPush, explicitSidecar, gatewayProxy, parseYaml, podSidecar } from './fixtures.ts';

const SERVICES = `apiVersion: v1
kind: Service
metadata: { name: productpage, namespace: default }
spec: { selector: { app: productpage }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec: { host: reviews, subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }] }
`;

/** Istio's local rate limit task, with a bucket of 2. */
const RATE_LIMIT = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: filter-local-ratelimit-svc, namespace: istio-system }
spec:
  workloadSelector: { labels: { app: productpage } }
  configPatches:
    - applyTo: HTTP_FILTER
      match:
        context: SIDECAR_INBOUND
        listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager } } }
      patch:
        operation: INSERT_BEFORE
        value:
          name: envoy.filters.http.local_ratelimit
          typed_config:
            "@type": type.googleapis.com/udpa.type.v1.TypedStruct
            type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            value:
              stat_prefix: http_local_rate_limiter
              token_bucket: { max_tokens: 2, tokens_per_fill: 2, fill_interval: 60s }
              filter_enabled: { runtime_key: local_rate_limit_enabled, default_value: { numerator: 100, denominator: HUNDRED } }
              filter_enforced: { runtime_key: local_rate_limit_enforced, default_value: { numerator: 100, denominator: HUNDRED } }
              response_headers_to_add: [{ append: false, header: { key: x-local-rate-limit, value: 'true' } }]
`;

const productpage = () => podSidecar('productpage-0', 'default', { app: 'productpage' }, 'productpage', [{ port: 9080, name: 'http' }], '198.18.0.61');
const reviews = () => podSidecar('reviews-0', 'default', { app: 'reviews', version: 'v1' }, 'reviews', [{ port: 9080, name: 'http' }], '198.18.0.62');

function generate(yaml: string, proxy: Proxy) {
  const push = buildPush(parseYaml(`${SERVICES}---\n${yaml}`), [proxy]);
  const listeners = GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined);
  for (const l of listeners) assertEnvoyResource(LISTENER_TYPE, l);
  const clusters = GENERATORS[CLUSTER_TYPE].generate(push, proxy, undefined);
  for (const c of clusters) assertEnvoyResource(CLUSTER_TYPE, c);
  const route = (name: string) => {
    const rc = GENERATORS[ROUTE_TYPE].generate(push, proxy, [name])[0];
    assertEnvoyResource(ROUTE_TYPE, rc);
    return rc;
  };
  return { listeners, clusters, route };
}

type Hcm = { http_filters: EnvoyJson[]; route_config?: EnvoyJson };
/** HTTP filter names of each HCM, by `listener/chain`. */
function httpFilterNames(listeners: EnvoyJson[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const l of listeners) {
    for (const [i, fc] of ((l.filter_chains as EnvoyJson[]) ?? []).entries()) {
      for (const f of (fc.filters as EnvoyJson[]) ?? []) {
        const hcm = f.typed_config as Hcm;
        if (hcm.http_filters) out[`${l.name}/${fc.name ?? i}`] = hcm.http_filters.map((h) => h.name as string);
      }
    }
  }
  return out;
}

function hcmOf(listeners: EnvoyJson[], listener: string, chain: string | number): Hcm {
  const l = listeners.find((x) => x.name === listener)!;
  const fc = (l.filter_chains as EnvoyJson[]).find((c, i) => c.name === chain || i === chain)!;
  return (fc.filters as EnvoyJson[]).find((f) => (f.typed_config as Hcm).http_filters)!.typed_config as Hcm;
}

test('the local rate limit task: the TypedStruct becomes a LocalRateLimit first in the inbound HCMs of the selected workload only', () => {
  const { listeners } = generate(RATE_LIMIT, productpage());
  const names = httpFilterNames(listeners);
  assert.deepEqual(names['virtualInbound/inbound|9080||'], ['envoy.filters.http.local_ratelimit', 'envoy.filters.http.peer_metadata', 'istio.stats', 'envoy.filters.http.router']);
  assert.equal(names['0.0.0.0_9080/0'][0], 'envoy.filters.http.peer_metadata', 'outbound HCMs are SIDECAR_OUTBOUND');
  const rl = hcmOf(listeners, 'virtualInbound', 'inbound|9080||').http_filters[0].typed_config as EnvoyJson;
  assert.equal(rl['@type'], LOCAL_RATELIMIT_TYPE);
  assert.deepEqual(rl.token_bucket, { max_tokens: 2, tokens_per_fill: 2, fill_interval: '60s' });
  assert.deepEqual(rl.response_headers_to_add, [{ append: false, header: { key: 'x-local-rate-limit', value: 'true' } }]);

  const other = generate(RATE_LIMIT, reviews());
  assert.equal(httpFilterNames(other.listeners)['virtualInbound/inbound|9080||'][0], 'envoy.filters.http.peer_metadata', 'reviews is not selected');
  const baseline = generate('', productpage());
  assert.deepEqual(httpFilterNames(baseline.listeners)['virtualInbound/inbound|9080||'][0], 'envoy.filters.http.peer_metadata');
});

test('generated config shared between proxies of one snapshot is patched on a copy, never in place', () => {
  const pp = productpage();
  const rv = reviews();
  const yaml = RATE_LIMIT.replace('context: SIDECAR_INBOUND', 'context: ANY');
  const push = buildPush(parseYaml(`${SERVICES}---\n${yaml}`), [pp, rv]);
  const before = structuredClone(GENERATORS[LISTENER_TYPE].generate(push, rv, undefined));
  const patched = httpFilterNames(GENERATORS[LISTENER_TYPE].generate(push, pp, undefined));
  assert.equal(patched['0.0.0.0_9080/0'][0], 'envoy.filters.http.local_ratelimit');
  assert.deepEqual(GENERATORS[LISTENER_TYPE].generate(push, rv, undefined), before);
});

test('namespace scope: a filter in another namespace does not apply; the root namespace applies to all; without selector to every workload', () => {
  const filter = (ns: string, selector = '') => `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: f, namespace: ${ns} }
spec:
  ${selector}
  configPatches:
    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_OUTBOUND, listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: envoy.filters.http.cors } } } } }
      patch: { operation: REMOVE }
`;
  const hasCors = (yaml: string, p: Proxy) => httpFilterNames(generate(yaml, p).listeners)['0.0.0.0_9080/0'].includes('envoy.filters.http.cors');
  assert.equal(hasCors(filter('other'), reviews()), true);
  assert.equal(hasCors(filter('default'), reviews()), false);
  assert.equal(hasCors(filter('istio-system'), reviews()), false);
  assert.equal(hasCors(filter('istio-system', 'workloadSelector: { labels: { app: productpage } }'), reviews()), true);
  assert.equal(hasCors(filter('default', 'workloadSelector: { labels: { version: v1 } }'), reviews()), false);
});

test('match.proxy.metadata: only proxies whose node metadata has every value', () => {
  const yaml = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: m, namespace: default }
spec:
  configPatches:
    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_OUTBOUND, proxy: { metadata: { CANARY: "yes" } } }
      patch: { operation: INSERT_FIRST, value: { name: canary-only, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors } } }
`;
  const canary = reviews();
  canary.metadata = { ...canary.metadata, CANARY: 'yes' };
  assert.equal(httpFilterNames(generate(yaml, canary).listeners)['0.0.0.0_9080/0'][0], 'canary-only');
  assert.notEqual(httpFilterNames(generate(yaml, reviews()).listeners)['0.0.0.0_9080/0'][0], 'canary-only');
});

/** A sidecar as `rig proxy` describes itself (its bootstrap node, built from its flags). */
function rigProxy(): Proxy {
  const cmd = addXdsOptions(new Command('proxy').exitOverride());
  cmd.parse(['--xds-address', '127.0.0.1:15010', '--namespace', 'default', '--workload-name', 'reviews-0', '--labels', 'app=reviews', '--instance-ip', '198.18.0.62'], { from: 'user' });
  return parseNode(bootstrapFromOptions(cmd.opts<XdsCliOptions>(), {}).node);
}

test("match.proxy.proxyVersion, as istiod's proxyMatch: an RE2 pattern found in the proxy's ISTIO_VERSION; rig proxy reports the Istio release Rigging follows", () => {
  const yaml = (pattern: string) => `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: v, namespace: default }
spec:
  configPatches:
    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_OUTBOUND, proxy: { proxyVersion: '${pattern}' } }
      patch: { operation: INSERT_FIRST, value: { name: versioned, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors } } }
`;
  const first = (pattern: string, proxy: Proxy) => httpFilterNames(generate(yaml(pattern), proxy).listeners)['0.0.0.0_9080/0'][0];
  const rig = rigProxy();
  assert.equal(rig.istioVersion, ISTIO_VERSION);
  assert.equal(first(String.raw`^1\.31.*`, rig), 'versioned');
  assert.notEqual(first(String.raw`^1\.2.*`, rig), 'versioned', 'a pattern for Istio 1.2x proxies skips a 1.31 one, as on Istio 1.31');
  // An Envoy istio-proxy 1.24 (its agent reports ISTIO_VERSION 1.24.0) takes the 1.2x patch; a proxy reporting no version takes none.
  const envoy = reviews();
  envoy.istioVersion = '1.24.0';
  assert.equal(first(String.raw`^1\.2.*`, envoy), 'versioned');
  const unversioned = reviews();
  unversioned.istioVersion = '';
  assert.notEqual(first('.*', unversioned), 'versioned');

  const diagnostics = (pattern: string) => loadDocuments(yaml(pattern), 'v.yaml').diagnostics.map((d) => `${d.severity} ${d.path}: ${d.message}`);
  assert.deepEqual(diagnostics(String.raw`^1\.31.*`), []);
  assert.match(diagnostics(String.raw`^1\.2.*`).join(), /^Warning spec\.configPatches\[0\]\.match\.proxy\.proxyVersion: proxyVersion "\^1\\\.2\.\*" does not match 1\.31\.0, the ISTIO_VERSION rig proxy reports/);
  assert.match(diagnostics('^1.(2').join(), /^Error spec\.configPatches\[0\]\.match\.proxy\.proxyVersion: invalid regex for proxy version/);
});

test("targetRefs, BOOTSTRAP and listener.portName as istiod has them: an EnvoyFilter with targetRefs patches no proxy; a BOOTSTRAP patch does nothing; portName matches every port; each a warning", () => {
  const cors = (name: string) => `{ name: ${name}, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors } }`;
  const yaml = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: targeted, namespace: default }
spec:
  targetRefs: [{ kind: Service, group: "", name: reviews }]
  configPatches:
    - { applyTo: HTTP_FILTER, match: { context: SIDECAR_OUTBOUND }, patch: { operation: INSERT_FIRST, value: ${cors('targeted')} } }
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: mixed, namespace: default }
spec:
  configPatches:
    - { applyTo: BOOTSTRAP, patch: { operation: MERGE, value: { stats_flush_interval: 10s } } }
    - { applyTo: HTTP_FILTER, match: { context: SIDECAR_OUTBOUND, listener: { portName: grpc } }, patch: { operation: INSERT_FIRST, value: ${cors('by-port-name')} } }
`;
  const diagnostics = loadDocuments(yaml, 'x.yaml').diagnostics.map((d) => `${d.severity} ${d.path}`);
  assert.deepEqual(diagnostics, ['Warning spec.targetRefs', 'Warning spec.configPatches[0].applyTo', 'Warning spec.configPatches[1].match.listener.portName']);
  const names = httpFilterNames(generate(yaml, reviews()).listeners)['0.0.0.0_9080/0'];
  assert.equal(names[0], 'by-port-name', 'port 9080 (named http) is patched: istiod never reads portName');
  assert.ok(!names.includes('targeted'));
  assert.match(loadDocuments(yaml.replace('stats_flush_interval', 'stats_flush_intervall'), 'x.yaml').diagnostics.map((d) => d.message).join(), /unknown field.*envoy\.config\.bootstrap\.v3\.Bootstrap/);
});

test('order: priority first, then the root namespace before the workload namespace, then creation', () => {
  const first = (name: string, ns: string, priority: number, created: string) => `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: ${name}, namespace: ${ns}, creationTimestamp: "${created}" }
spec:
  priority: ${priority}
  configPatches:
    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_OUTBOUND }
      patch: { operation: INSERT_FIRST, value: { name: ${name}, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault } } }
`;
  const yaml = [first('a-ns-old', 'default', 0, '2026-01-01T00:00:00Z'), first('b-root-new', 'istio-system', 0, '2026-01-03T00:00:00Z'), first('c-ns-new', 'default', 0, '2026-01-02T00:00:00Z'), first('d-late', 'default', 5, '2025-01-01T00:00:00Z')].join('---\n');
  const names = httpFilterNames(generate(yaml, reviews()).listeners)['0.0.0.0_9080/0'];
  // INSERT_FIRST: the last applied is first.
  assert.deepEqual(names.slice(0, 4), ['d-late', 'c-ns-new', 'a-ns-old', 'b-root-new']);
});

test('HTTP_FILTER operations relative to a sub-filter: INSERT_AFTER, REPLACE, MERGE (typed_config field by field; another type is left alone), INSERT_AFTER without one appends; GATEWAY context leaves sidecars alone', () => {
  const patch = (op: string, sub: string, value: string, ctx = 'SIDECAR_OUTBOUND') => `    - applyTo: HTTP_FILTER
      match: { context: ${ctx}, listener: { portNumber: 9080, filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: ${sub} } } } } }
      patch: { operation: ${op}${value ? `, value: ${value}` : ''} }
`;
  const yaml = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: ops, namespace: default }
spec:
  configPatches:
${patch('INSERT_AFTER', 'envoy.filters.http.fault', '{ name: after-fault, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault } }')}${patch('REPLACE', 'envoy.filters.http.cors', '{ name: cors2, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors } }')}${patch('MERGE', 'envoy.filters.http.router', '{ typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router, suppress_envoy_headers: true } }')}${patch('INSERT_FIRST', 'x', '{ name: gw-only, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors } }', 'GATEWAY')}`;
  const after = `    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_INBOUND }
      patch: { operation: INSERT_AFTER, value: { name: last, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors } } }
    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_INBOUND, listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: istio.stats } } } } }
      patch: { operation: MERGE, value: { typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors } } }
`;
  const { listeners } = generate(yaml + after, reviews());
  const inbound = hcmOf(listeners, 'virtualInbound', 'inbound|9080||').http_filters;
  assert.equal(inbound.at(-1)!.name, 'last', 'INSERT_AFTER without a subFilter appends, as in Istio');
  const stats = inbound.find((f) => f.name === 'istio.stats')!;
  const generatedStats = hcmOf(generate('', reviews()).listeners, 'virtualInbound', 'inbound|9080||').http_filters.find((f) => f.name === 'istio.stats')!;
  assert.deepEqual(stats, generatedStats, 'a MERGE of another type leaves the filter as generated, as Istio does');
  const hcm = hcmOf(listeners, '0.0.0.0_9080', 0);
  assert.deepEqual(hcm.http_filters.map((f) => f.name), ['envoy.filters.http.peer_metadata', 'envoy.filters.http.fault', 'after-fault', 'cors2', 'istio.stats', 'istio.alpn', 'envoy.filters.http.router']);
  const router = hcm.http_filters.at(-1)!.typed_config as EnvoyJson;
  assert.equal(router.suppress_envoy_headers, true);
  const base = hcmOf(generate('', reviews()).listeners, '0.0.0.0_9080', 0).http_filters.at(-1)!.typed_config as EnvoyJson;
  for (const [k, v] of Object.entries(base)) if (k !== 'suppress_envoy_headers') assert.deepEqual(router[k], v, `MERGE keeps ${k}`);
  // A port that does not match leaves the inbound side alone; the shared baseline is not changed.
  assert.equal(base.suppress_envoy_headers, undefined);
});

test("Istio's order within a list: filter insertions before MERGE (whatever the patch order); chains ADDed after the others are patched", () => {
  const yaml = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: order, namespace: default }
spec:
  configPatches:
    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_OUTBOUND, listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: added } } } } }
      patch: { operation: MERGE, value: { typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit, stat_prefix: merged } } }
    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_OUTBOUND }
      patch: { operation: INSERT_FIRST, value: { name: added, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit, stat_prefix: inserted } } }
    - applyTo: FILTER_CHAIN
      match: { context: SIDECAR_OUTBOUND, listener: { portNumber: 9080 } }
      patch: { operation: ADD, value: { name: extra-chain, filter_chain_match: { server_names: [x.example] }, filters: [{ name: envoy.filters.network.tcp_proxy, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: x, cluster: BlackHoleCluster } }] } }
    - applyTo: NETWORK_FILTER
      match: { context: SIDECAR_OUTBOUND, listener: { portNumber: 9080 } }
      patch: { operation: INSERT_FIRST, value: { name: envoy.filters.network.rbac, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC, stat_prefix: r } } }
`;
  const { listeners } = generate(yaml, reviews());
  const first = hcmOf(listeners, '0.0.0.0_9080', 0).http_filters[0];
  assert.equal((first.typed_config as EnvoyJson).stat_prefix, 'merged');
  const chains = listeners.find((l) => l.name === '0.0.0.0_9080')!.filter_chains as EnvoyJson[];
  assert.equal(chains.at(-1)!.name, 'extra-chain');
  assert.deepEqual((chains.at(-1)!.filters as EnvoyJson[]).map((f) => f.name), ['envoy.filters.network.tcp_proxy'], 'the added chain is not patched');
  assert.equal((chains[0].filters as EnvoyJson[])[0].name, 'envoy.filters.network.rbac');
});

test('LISTENER, FILTER_CHAIN and NETWORK_FILTER: MERGE, ADD, REMOVE, INSERT_BEFORE by name and port', () => {
  const yaml = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: l, namespace: default }
spec:
  configPatches:
    - applyTo: LISTENER
      match: { context: SIDECAR_OUTBOUND, listener: { portNumber: 9080 } }
      patch: { operation: MERGE, value: { per_connection_buffer_limit_bytes: 32768 } }
    - applyTo: LISTENER
      match: { context: SIDECAR_OUTBOUND }
      patch: { operation: ADD, value: { name: extra, address: { socket_address: { address: 127.0.0.1, port_value: 19999 } }, filter_chains: [{ filters: [{ name: envoy.filters.network.tcp_proxy, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: x, cluster: BlackHoleCluster } }] }] } }
    - applyTo: FILTER_CHAIN
      match: { context: SIDECAR_INBOUND, listener: { name: virtualInbound, filterChain: { name: virtualInbound-catchall-tls-passthrough } } }
      patch: { operation: REMOVE }
    - applyTo: NETWORK_FILTER
      match: { context: SIDECAR_INBOUND, listener: { portNumber: 9080, filterChain: { filter: { name: envoy.filters.network.http_connection_manager } } } }
      patch: { operation: INSERT_BEFORE, value: { name: envoy.filters.network.local_ratelimit, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit, stat_prefix: tcp_rl, token_bucket: { max_tokens: 5, fill_interval: 1s } } } }
    - applyTo: LISTENER
      match: { context: SIDECAR_OUTBOUND, listener: { name: virtualOutbound } }
      patch: { operation: REMOVE }
`;
  const { listeners } = generate(yaml, reviews());
  assert.deepEqual(listeners.map((l) => l.name), ['0.0.0.0_9080', 'virtualInbound', 'extra']);
  assert.equal(listeners[0].per_connection_buffer_limit_bytes, 32768);
  const inbound = listeners[1].filter_chains as EnvoyJson[];
  assert.ok(!inbound.some((c) => c.name === 'virtualInbound-catchall-tls-passthrough'));
  const http = inbound.find((c) => c.name === 'inbound|9080||')!;
  assert.deepEqual((http.filters as EnvoyJson[]).map((f) => f.name), ['envoy.filters.network.local_ratelimit', 'envoy.filters.network.http_connection_manager']);
  const catchall = inbound.find((c) => c.name === 'virtualInbound-catchall')!;
  assert.ok(!(catchall.filters as EnvoyJson[]).some((f) => f.name === 'envoy.filters.network.local_ratelimit'), 'the chain for port 9080 only (destination_port)');
});

test("NETWORK_FILTER MERGE into every HTTP connection manager (Istio's reference example): the HCM keeps its fields and filters", () => {
  const yaml = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: hcm-tweaks, namespace: istio-system }
spec:
  configPatches:
  - applyTo: NETWORK_FILTER
    match: { listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager } } } }
    patch:
      operation: MERGE
      value:
        name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          common_http_protocol_options: { idle_timeout: 30s }
`;
  const patched = generate(yaml, reviews()).listeners;
  const generated = generate('', reviews()).listeners;
  for (const [listener, chain] of [['0.0.0.0_9080', 0], ['virtualInbound', 'inbound|9080||']] as const) {
    const hcm = hcmOf(patched, listener, chain) as unknown as EnvoyJson;
    const base = hcmOf(generated, listener, chain) as unknown as EnvoyJson;
    assert.deepEqual(hcm.common_http_protocol_options, { ...(base.common_http_protocol_options as EnvoyJson), idle_timeout: '30s' });
    assert.deepEqual({ ...hcm, common_http_protocol_options: undefined }, { ...base, common_http_protocol_options: undefined });
  }
});

test('explicit mode: listener portNumber is the workload port, whatever local port the inbound listener binds', () => {
  const yaml = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: f, namespace: default }
spec:
  configPatches:
    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_INBOUND, listener: { portNumber: 9080 } }
      patch: { operation: INSERT_FIRST, value: { name: first, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors } } }
`;
  const proxy = explicitSidecar('reviews-0', 'default', { app: 'reviews' }, 'reviews', [{ port: 9080, name: 'http' }]);
  const inbound = generate(yaml, proxy).listeners.filter((l) => l.traffic_direction === 'INBOUND');
  assert.equal(inbound.length, 1);
  assert.notEqual((inbound[0].address as { socket_address: { port_value: number } }).socket_address.port_value, 9080);
  for (const names of Object.values(httpFilterNames(inbound))) assert.equal(names[0], 'first');
});

test('ROUTE_CONFIGURATION, VIRTUAL_HOST and HTTP_ROUTE: by port, vhost name and route name; inline inbound route configurations too', () => {
  const yaml = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: r, namespace: default }
spec:
  configPatches:
    - applyTo: ROUTE_CONFIGURATION
      match: { context: SIDECAR_OUTBOUND, routeConfiguration: { portNumber: 9080 } }
      patch: { operation: MERGE, value: { response_headers_to_add: [{ header: { key: x-rc, value: '1' } }] } }
    - applyTo: VIRTUAL_HOST
      match: { context: SIDECAR_OUTBOUND, routeConfiguration: { name: '9080' } }
      patch: { operation: ADD, value: { name: added, domains: [added.example], routes: [{ match: { prefix: / }, direct_response: { status: 418 } }] } }
    - applyTo: VIRTUAL_HOST
      match: { context: SIDECAR_OUTBOUND, routeConfiguration: { vhost: { name: allow_any } } }
      patch: { operation: REMOVE }
    - applyTo: HTTP_ROUTE
      match: { context: SIDECAR_OUTBOUND, routeConfiguration: { vhost: { name: reviews.default.svc.cluster.local:9080, route: { name: default } } } }
      patch: { operation: MERGE, value: { route: { timeout: 7s } } }
    - applyTo: HTTP_ROUTE
      match: { context: SIDECAR_OUTBOUND, routeConfiguration: { vhost: { name: reviews.default.svc.cluster.local:9080 } } }
      patch: { operation: INSERT_FIRST, value: { name: first, match: { prefix: /first }, direct_response: { status: 204 } } }
    - applyTo: HTTP_ROUTE
      match: { context: SIDECAR_INBOUND, routeConfiguration: { portNumber: 9080 } }
      patch: { operation: MERGE, value: { route: { timeout: 3s } } }
`;
  const { route, listeners } = generate(yaml, reviews());
  const rc = route('9080');
  assert.deepEqual(rc.response_headers_to_add, [{ header: { key: 'x-rc', value: '1' } }]);
  const vhosts = rc.virtual_hosts as EnvoyJson[];
  assert.deepEqual(vhosts.map((v) => v.name), ['productpage.default.svc.cluster.local:9080', 'reviews.default.svc.cluster.local:9080', 'added']);
  const routes = vhosts[1].routes as EnvoyJson[];
  assert.equal(routes[0].name, 'first');
  assert.equal((routes[1].route as EnvoyJson).timeout, '7s');
  assert.notEqual(((vhosts[0].routes as EnvoyJson[])[0].route as EnvoyJson).timeout, '7s', 'other virtual hosts keep theirs');
  const inline = hcmOf(listeners, 'virtualInbound', 'inbound|9080||').route_config!;
  assert.equal((((inline.virtual_hosts as EnvoyJson[])[0].routes as EnvoyJson[])[0].route as EnvoyJson).timeout, '3s');
});

test('explicit mode: routeConfiguration portNumber selects the virtual hosts of that port in the http_proxy route configuration', () => {
  const yaml = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: r, namespace: default }
spec:
  configPatches:
    - applyTo: HTTP_ROUTE
      match: { context: SIDECAR_OUTBOUND, routeConfiguration: { portNumber: 9080, vhost: { route: { name: default } } } }
      patch: { operation: MERGE, value: { route: { timeout: 7s } } }
---
apiVersion: v1
kind: Service
metadata: { name: db, namespace: default }
spec: { selector: { app: db }, ports: [{ name: http, port: 8080 }] }
`;
  const proxy = explicitSidecar('sleep-0', 'default', { app: 'sleep' }, 'sleep', []);
  const rc = generate(yaml, proxy).route('http_proxy');
  const timeouts = Object.fromEntries((rc.virtual_hosts as EnvoyJson[]).map((vh) => [vh.name, ((vh.routes as EnvoyJson[]).find((r) => r.name === 'default')?.route as EnvoyJson | undefined)?.timeout]));
  assert.equal(timeouts['reviews.default.svc.cluster.local:9080'], '7s');
  assert.equal(timeouts['productpage.default.svc.cluster.local:9080'], '7s');
  assert.notEqual(timeouts['db.default.svc.cluster.local:8080'], '7s');
});

test('CLUSTER: MERGE by service and port, REMOVE by subset, ADD; inbound clusters are SIDECAR_INBOUND', () => {
  const yaml = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: c, namespace: default }
spec:
  configPatches:
    - applyTo: CLUSTER
      match: { context: SIDECAR_OUTBOUND, cluster: { service: reviews.default.svc.cluster.local, portNumber: 9080 } }
      patch: { operation: MERGE, value: { connect_timeout: 3s } }
    - applyTo: CLUSTER
      match: { cluster: { subset: v2 } }
      patch: { operation: REMOVE }
    - applyTo: CLUSTER
      match: { context: SIDECAR_INBOUND, cluster: { portNumber: 9080 } }
      patch: { operation: MERGE, value: { per_connection_buffer_limit_bytes: 1024 } }
    - applyTo: CLUSTER
      match: { context: SIDECAR_OUTBOUND }
      patch: { operation: ADD, value: { name: ratelimit-svc, type: STRICT_DNS, connect_timeout: 1s, load_assignment: { cluster_name: ratelimit-svc, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: localhost, port_value: 8081 } } } }] }] } } }
`;
  const { clusters } = generate(yaml, reviews());
  const byName = new Map(clusters.map((c) => [c.name as string, c]));
  assert.equal(byName.get('outbound|9080||reviews.default.svc.cluster.local')?.connect_timeout, '3s');
  assert.equal(byName.get('outbound|9080|v1|reviews.default.svc.cluster.local')?.connect_timeout, '3s');
  assert.notEqual(byName.get('outbound|9080||productpage.default.svc.cluster.local')?.connect_timeout, '3s');
  assert.ok(!byName.has('outbound|9080|v2|reviews.default.svc.cluster.local'));
  assert.equal(byName.get('inbound|9080||')?.per_connection_buffer_limit_bytes, 1024);
  assert.ok(byName.has('ratelimit-svc'));
});

test('GATEWAY context: patches the gateway, not sidecars', () => {
  const yaml = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec: { selector: { istio: ingressgateway }, servers: [{ port: { number: 8080, name: http, protocol: HTTP }, hosts: ['*'] }] }
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: g, namespace: istio-system }
spec:
  workloadSelector: { labels: { istio: ingressgateway } }
  configPatches:
    - applyTo: HTTP_FILTER
      match: { context: GATEWAY, listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: envoy.filters.http.router } } } } }
      patch: { operation: INSERT_BEFORE, value: { name: envoy.filters.http.local_ratelimit, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit, stat_prefix: gw } } }
`;
  const names = Object.values(httpFilterNames(generate(yaml, gatewayProxy()).listeners));
  assert.ok(names.length > 0);
  for (const n of names) assert.equal(n.at(-2), 'envoy.filters.http.local_ratelimit');
});

test('apply time: what Rigging does not apply is an error naming the field', () => {
  const errors = (spec: string) => {
    const r = loadDocuments(`apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: { name: x, namespace: default }\nspec:\n${spec}`, 'x.yaml');
    return r.diagnostics.filter((d) => d.severity === 'Error').map((d) => `${d.path}: ${d.message}`);
  };
  assert.deepEqual(errors(RATE_LIMIT.split('spec:\n')[1]), []);
  const one = (patch: string) => errors(`  configPatches:\n    - ${patch}\n`);
  assert.match(one('{ applyTo: BOOTSTRAP, patch: { operation: REPLACE, value: {} } }').join(), /patch\.operation: operation REPLACE does not apply to applyTo BOOTSTRAP/);
  assert.match(one('{ applyTo: HTTP_ROUTE, patch: { operation: ADD, value: {} } }').join(), /patch\.operation: operation ADD does not apply to applyTo HTTP_ROUTE/);
  assert.match(one('{ applyTo: HTTP_FILTER, patch: { operation: REMOVE } }').join(), /subFilter\.name: REMOVE of an HTTP filter needs the filter/);
  const warnings = loadDocuments(`apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: { name: x, namespace: default }\nspec:\n  configPatches:\n    - { applyTo: HTTP_FILTER, patch: { operation: ADD, value: { name: envoy.filters.http.cors } } }\n`, 'x.yaml').diagnostics;
  assert.match(warnings.map((d) => `${d.severity} ${d.path}: ${d.message}`).join(), /Warning spec\.configPatches\[0\]\.patch\.operation: ADD puts the HTTP filter after envoy\.filters\.http\.router/);
  assert.match(one('{ applyTo: CLUSTER, match: { listener: { portNumber: 80 } }, patch: { operation: MERGE, value: {} } }').join(), /match\.listener: match\.listener does not apply to applyTo CLUSTER/);
  assert.match(one('{ applyTo: CLUSTER, patch: { operation: MERGE, value: { connect_timeoutt: 1s } } }').join(), /patch\.value: patch\.value\.connect_timeoutt: unknown field/);
  assert.match(
    one('{ applyTo: HTTP_FILTER, patch: { operation: INSERT_FIRST, value: { name: envoy.filters.http.oauth2 } } }').join(),
    /rig proxy has no HTTP filter envoy\.filters\.http\.oauth2; .*NACK/,
  );
});

test('patch.filterClass is applied as istiod applies it: no effect on placement (istiod never reads it), with a warning naming the field', () => {
  const yaml = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: default }
spec:
  selector: { matchLabels: { app: reviews } }
  action: DENY
  rules: [{ to: [{ operation: { paths: [/admin] } }] }]
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: ext, namespace: default }
spec:
  configPatches:
    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_INBOUND, listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: envoy.filters.http.router } } } } }
      patch:
        operation: INSERT_BEFORE
        filterClass: AUTHZ
        value: { name: envoy.filters.http.local_ratelimit, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit, stat_prefix: rl } }
`;
  const names = httpFilterNames(generate(yaml, reviews()).listeners)['virtualInbound/inbound|9080||'];
  assert.ok(names.indexOf('envoy.filters.http.rbac') >= 0);
  assert.equal(names.at(-2), 'envoy.filters.http.local_ratelimit', 'before the router, where INSERT_BEFORE puts it; not next to the RBAC filter');
  const diagnostics = loadDocuments(yaml, 'x.yaml').diagnostics.map((d) => `${d.severity} ${d.path}: ${d.message}`);
  assert.ok(!diagnostics.some((d) => d.startsWith('Error')), diagnostics.join('\n'));
  assert.match(diagnostics.join('\n'), /Warning spec\.configPatches\[0\]\.patch\.filterClass: filterClass AUTHZ has no effect, as in Istio: istiod does not implement/);
});

test("LISTENER_FILTER, as istiod's patchListenerFilters: listenerFilter names the filter to act on or next to; patches apply in order; rig proxy's listener filters only", () => {
  const lf = (op: string, name: string | undefined, value?: string, ctx = 'SIDECAR_INBOUND') => `    - applyTo: LISTENER_FILTER
      match: { context: ${ctx}, listener: { portNumber: 9080${name ? `, listenerFilter: ${name}` : ''} } }
      patch: { operation: ${op}${value ? `, value: ${value}` : ''} }
`;
  const yaml = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: lf, namespace: default }
spec:
  configPatches:
${lf('INSERT_BEFORE', 'envoy.filters.listener.tls_inspector', '{ name: envoy.filters.listener.http_inspector, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector } }')}${lf('INSERT_FIRST', undefined, '{ name: envoy.filters.listener.proxy_protocol, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol } }')}${lf('REMOVE', 'envoy.filters.listener.original_dst')}${lf('MERGE', 'envoy.filters.listener.tls_inspector', '{ typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector, enable_ja3_fingerprinting: true } }')}${lf('INSERT_AFTER', 'envoy.filters.listener.none', '{ name: envoy.filters.listener.original_dst }')}${lf('ADD', undefined, '{ name: envoy.filters.listener.tls_inspector }', 'GATEWAY')}`;
  const { listeners } = generate(yaml, reviews());
  const inbound = listeners.find((l) => l.name === 'virtualInbound')!;
  const filters = inbound.listener_filters as EnvoyJson[];
  assert.deepEqual(filters.map((f) => f.name), ['envoy.filters.listener.proxy_protocol', 'envoy.filters.listener.http_inspector', 'envoy.filters.listener.tls_inspector']);
  assert.equal((filters[2].typed_config as EnvoyJson).enable_ja3_fingerprinting, true, 'MERGE into the named filter');
  for (const l of listeners.filter((x) => x.traffic_direction !== 'INBOUND')) assert.equal(l.listener_filters, undefined, `${String(l.name)} (outbound) is left alone`);
  const baseline = generate('', reviews()).listeners.find((l) => l.name === 'virtualInbound')!;
  assert.deepEqual((baseline.listener_filters as EnvoyJson[]).map((f) => f.name), ['envoy.filters.listener.original_dst', 'envoy.filters.listener.tls_inspector']);
  // Another context: the inbound listener is left alone (a portNumber would not be: istiod's listenerMatch skips the port of the virtual listeners for all but LISTENER patches).
  assert.deepEqual(generate(yaml.replaceAll('SIDECAR_INBOUND', 'SIDECAR_OUTBOUND'), reviews()).listeners.find((l) => l.name === 'virtualInbound')!.listener_filters, baseline.listener_filters);

  const errors = (patch: string) =>
    loadDocuments(`apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: { name: x, namespace: default }\nspec:\n  configPatches:\n${patch}`, 'x.yaml')
      .diagnostics.filter((d) => d.severity === 'Error')
      .map((d) => `${d.path}: ${d.message}`)
      .join('\n');
  assert.equal(errors(yaml.split('configPatches:\n')[1]), '');
  assert.match(errors(lf('REPLACE', undefined, '{ name: envoy.filters.listener.tls_inspector }')), /listenerFilter: REPLACE of a listener filter needs the filter in match\.listener\.listenerFilter/);
  assert.match(errors(lf('ADD', undefined, '{ name: envoy.filters.listener.local_ratelimit, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.listener.local_ratelimit.v3.LocalRateLimit, stat_prefix: x, token_bucket: { max_tokens: 1, fill_interval: 1s } } }')), /rig proxy has no listener filter .*local_ratelimit.*NACK/);
  assert.match(errors(`    - { applyTo: HTTP_FILTER, match: { listener: { listenerFilter: envoy.filters.listener.tls_inspector } }, patch: { operation: INSERT_FIRST, value: { name: envoy.filters.http.cors } } }\n`), /listenerFilter: listenerFilter only applies to applyTo LISTENER_FILTER/);
});

test('match.listener.filterChain.applicationProtocols, as istiod: comma-separated, every one among the chain application_protocols', () => {
  const patch = (protocols: string) => `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: alpn, namespace: default }
spec:
  configPatches:
    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_INBOUND, listener: { filterChain: { applicationProtocols: "${protocols}", filter: { name: envoy.filters.network.http_connection_manager } } } }
      patch: { operation: INSERT_FIRST, value: { name: envoy.filters.http.cors, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors } } }
`;
  const firsts = (protocols: string) => {
    const names = httpFilterNames(generate(patch(protocols), reviews()).listeners);
    return Object.entries(names).filter(([, f]) => f[0] === 'envoy.filters.http.cors').map(([k]) => k);
  };
  assert.deepEqual(firsts('istio-http/1.1,istio'), ['virtualInbound/inbound|9080||'], 'the mTLS chain only; not the plaintext one');
  assert.deepEqual(firsts('istio,h2'), [], 'h2 is not among them');
  assert.deepEqual(firsts('istio, istio-h2'), [], 'no trimming, as istiod');
  assert.deepEqual(loadDocuments(patch('istio'), 'x.yaml').diagnostics.filter((d) => d.severity === 'Error'), []);
});

test('EXTENSION_CONFIG, as istiod serves it: ADD patches of the EnvoyFilters selecting the proxy, by the names the proxy asks over ECDS, before the WasmPlugins', () => {
  const yaml = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: ecds-rl, namespace: default }
spec:
  workloadSelector: { labels: { app: reviews } }
  configPatches:
    - applyTo: HTTP_FILTER
      match: { context: SIDECAR_INBOUND, listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: envoy.filters.http.router } } } } }
      patch:
        operation: INSERT_BEFORE
        value: { name: reviews-rl, config_discovery: { config_source: { ads: {} }, type_urls: [type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit] } }
    - applyTo: EXTENSION_CONFIG
      patch:
        operation: ADD
        value:
          name: reviews-rl
          typed_config:
            "@type": type.googleapis.com/udpa.type.v1.TypedStruct
            type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            value: { stat_prefix: rl, token_bucket: { max_tokens: 1, fill_interval: 60s } }
`;
  const ecds = (proxy: Proxy, names: string[]) => {
    const push = buildPush(parseYaml(`${SERVICES}---\n${yaml}`), [proxy]);
    return GENERATORS[EXTENSION_CONFIG_TYPE].generate(push, proxy, names);
  };
  const served = ecds(reviews(), ['reviews-rl', 'unknown']);
  assert.deepEqual(served, [{ name: 'reviews-rl', typed_config: { '@type': LOCAL_RATELIMIT_TYPE, stat_prefix: 'rl', token_bucket: { max_tokens: 1, fill_interval: '60s' } } }]);
  for (const r of served) assertEnvoyResource(EXTENSION_CONFIG_TYPE, r);
  assert.deepEqual(ecds(productpage(), ['reviews-rl']), [], 'a proxy the EnvoyFilter does not select gets nothing');
  assert.deepEqual(ecds(reviews(), []), []);
  const inbound = hcmOf(generate(yaml, reviews()).listeners, 'virtualInbound', 'inbound|9080||').http_filters;
  assert.deepEqual(inbound.at(-2), { name: 'reviews-rl', config_discovery: { config_source: { ads: {} }, type_urls: [LOCAL_RATELIMIT_TYPE] } });

  const errors = (patch: string) =>
    loadDocuments(`apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: { name: x, namespace: default }\nspec:\n  configPatches:\n${patch}`, 'x.yaml')
      .diagnostics.filter((d) => d.severity === 'Error')
      .map((d) => `${d.path}: ${d.message}`)
      .join('\n');
  assert.equal(errors(yaml.split('configPatches:\n')[1]), '');
  assert.match(errors('    - { applyTo: EXTENSION_CONFIG, patch: { operation: MERGE, value: { name: a } } }\n'), /operation MERGE does not apply to applyTo EXTENSION_CONFIG/);
  assert.match(errors('    - { applyTo: EXTENSION_CONFIG, patch: { operation: ADD, value: { name: a, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.oauth2.v3.OAuth2 } } } }\n'), /typed_config: rig proxy has no HTTP or network filter of type .*OAuth2/);
  assert.match(errors('    - { applyTo: EXTENSION_CONFIG, match: { listener: { portNumber: 80 } }, patch: { operation: ADD, value: { name: a, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors } } } }\n'), /match\.listener: match\.listener does not apply to applyTo EXTENSION_CONFIG/);
  assert.match(errors('    - { applyTo: HTTP_FILTER, patch: { operation: INSERT_FIRST, value: { name: a, config_discovery: { config_source: { ads: {} }, type_urls: [type.googleapis.com/envoy.extensions.filters.http.oauth2.v3.OAuth2] } } } }\n'), /rig proxy has no HTTP filter of the types a takes over ECDS/);
});
