// Telemetry API and MeshConfig -> per-proxy HCM config: Istio's inheritance (root namespace,
// namespace, workload), CLIENT/SERVER modes, metric overrides into istio.stats, access log
// enable/disable/filter, tracing providers and sampling; bad providers are clear errors; the
// overrides take effect in a running sidecar's Prometheus output.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { LISTENER_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { parseMeshConfig } from '../../src/model/mesh-config.ts';
import type { Proxy } from '../../src/model/proxy.ts';
import type { PushContext } from '../../src/model/push-context.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { buildPush, explicitSidecar, parseYaml, podSidecar } from '../xds/fixtures.ts';
import { SERVICES_YAML, scrape, startMesh, viaProxy } from './mesh.ts';

/** The custom tags a user configured: without Istio's four istio.authorization.dry_run.* tags, always there (test/telemetry/dry-run-trace-tags.test.ts). */
/** The tags beside Istio's own (istio.*: the proxy's identity, the dry-run verdicts). */
const userTags = (tags: unknown) => (tags as EnvoyJson[]).filter((t) => !String(t.tag).startsWith('istio.'));

function hcms(push: PushContext, proxy: Proxy): { inbound: EnvoyJson; outbound: EnvoyJson } {
  const out: EnvoyJson[] = [];
  JSON.stringify(GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined), (_k, v: unknown) => {
    if (v && typeof v === 'object' && String((v as EnvoyJson)['@type']).endsWith('HttpConnectionManager')) out.push(v as EnvoyJson);
    return v;
  });
  const inbound = out.find((h) => String(h.stat_prefix).startsWith('inbound'));
  const outbound = out.find((h) => !String(h.stat_prefix).startsWith('inbound'));
  assert.ok(inbound && outbound, 'an inbound and an outbound connection manager');
  return { inbound, outbound };
}

function filter(hcm: EnvoyJson, name: string): EnvoyJson | undefined {
  return (hcm.http_filters as EnvoyJson[]).find((f) => f.name === name);
}

function statsValue(hcm: EnvoyJson): EnvoyJson {
  return ((filter(hcm, 'istio.stats')!.typed_config as EnvoyJson).value as EnvoyJson) ?? {};
}

const PROVIDERS = [
  { name: 'zipkin', zipkin: { service: 'zipkin.istio-system.svc.cluster.local', port: 9411 } },
  { name: 'otel', opentelemetry: { service: 'otel.istio-system.svc.cluster.local', port: 4318, http: { path: '/v1/traces' } } },
  { name: 'json-log', envoyFileAccessLog: { path: '/tmp/json.log', logFormat: { labels: { code: '%RESPONSE_CODE%' } } } },
];

const TELEMETRY = `---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: istio-system }
spec:
  tracing: [{ providers: [{ name: zipkin }], randomSamplingPercentage: 10 }]
  metrics: [{ overrides: [{ match: { metric: REQUEST_SIZE }, disabled: true }] }]
  accessLogging: [{ providers: [{ name: json-log }] }]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: ns-default, namespace: default }
spec:
  tracing: [{ randomSamplingPercentage: 50, customTags: { team: { literal: { value: bookinfo } } } }]
  metrics:
  - overrides:
    - match: { metric: ALL_METRICS, mode: CLIENT }
      tagOverrides: { request_protocol: { operation: REMOVE } }
    - match: { metric: REQUEST_COUNT, mode: SERVER }
      tagOverrides: { request_host: { value: request.host } }
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: reviews, namespace: default }
spec:
  selector: { matchLabels: { app: reviews } }
  tracing: [{ providers: [{ name: otel }] }]
  accessLogging: [{ match: { mode: SERVER }, disabled: true }]
`;

test('Telemetry inheritance and modes become access_log, tracing and istio.stats config', () => {
  const pp = explicitSidecar('productpage-v1-0', 'default', { app: 'productpage', version: 'v1' }, 'bookinfo-productpage', [{ port: 9080, name: 'http' }]);
  const rv = explicitSidecar('reviews-v1-0', 'default', { app: 'reviews', version: 'v1' }, 'bookinfo-reviews', [{ port: 9080, name: 'http' }]);
  const push = buildPush(parseYaml(SERVICES_YAML(['productpage', 'reviews']) + TELEMETRY), [pp, rv], { mesh: { extensionProviders: PROVIDERS } });
  const p = hcms(push, pp);
  const r = hcms(push, rv);

  // Tracing: provider from the mesh, sampling from the namespace, provider overridden for reviews.
  const pt = p.outbound.tracing as EnvoyJson;
  assert.deepEqual(pt.random_sampling, { value: 50 });
  assert.deepEqual(((pt.provider as EnvoyJson).typed_config as EnvoyJson).collector_service, {
    http_uri: { uri: 'http://zipkin.istio-system.svc.cluster.local/api/v2/spans', cluster: 'outbound|9411||zipkin.istio-system.svc.cluster.local', timeout: '5s' },
  });
  assert.deepEqual(userTags(pt.custom_tags), [{ tag: 'team', literal: { value: 'bookinfo' } }]);
  assert.deepEqual(
    (pt.custom_tags as EnvoyJson[]).filter((t) => t.literal && String(t.tag).startsWith('istio.')),
    [
      { tag: 'istio.canonical_revision', literal: { value: 'v1' } },
      { tag: 'istio.canonical_service', literal: { value: 'productpage' } },
      { tag: 'istio.cluster_id', literal: { value: 'Kubernetes' } },
      { tag: 'istio.mesh_id', literal: { value: 'unknown' } },
      { tag: 'istio.namespace', literal: { value: 'default' } },
    ],
  );
  const rt = (r.inbound.tracing as EnvoyJson).provider as EnvoyJson;
  assert.equal(rt.name, 'envoy.tracers.opentelemetry');
  assert.deepEqual(((rt.typed_config as EnvoyJson).http_service as EnvoyJson).http_uri, { uri: 'http://otel.istio-system.svc.cluster.local:4318/v1/traces', cluster: 'outbound|4318||otel.istio-system.svc.cluster.local', timeout: '3s' });
  assert.equal((rt.typed_config as EnvoyJson).service_name, 'reviews.default');

  // Metrics: REQUEST_SIZE dropped everywhere; request_protocol removed on CLIENT only; a CEL dimension on SERVER only.
  const ps = statsValue(p.outbound);
  assert.equal(ps.reporter, 'CLIENT');
  assert.deepEqual(ps.metrics, [{ name: 'request_bytes', drop: true }, { tags_to_remove: ['request_protocol'] }]);
  const ss = statsValue(r.inbound);
  assert.equal(ss.reporter, 'SERVER');
  assert.deepEqual(ss.metrics, [{ name: 'request_bytes', drop: true }, { name: 'requests_total', dimensions: { request_host: 'request.host' } }]);
  // The metadata exchange runs first in the chain, the router last.
  assert.equal((r.inbound.http_filters as EnvoyJson[])[0].name, 'envoy.filters.http.peer_metadata');

  // Access logs: the mesh provider everywhere, except reviews' server side (disabled there).
  assert.equal(((p.outbound.access_log as EnvoyJson[])[0].typed_config as EnvoyJson).path, '/tmp/json.log');
  assert.equal(((r.outbound.access_log as EnvoyJson[])[0].typed_config as EnvoyJson).path, '/tmp/json.log');
  assert.equal(r.inbound.access_log, undefined);
  assert.equal(p.inbound.access_log !== undefined, true);
});

test('mesh config defaults: accessLogFile/Encoding/Format, enableTracing with defaultConfig.tracing, no stats without Prometheus', () => {
  const pp = explicitSidecar('productpage-v1-0', 'default', { app: 'productpage' }, 'bookinfo-productpage', [{ port: 9080, name: 'http' }]);
  const mesh = parseMeshConfig({ accessLogFile: '/dev/stdout', accessLogEncoding: 'TEXT', accessLogFormat: '%RESPONSE_CODE% %REQ(:PATH)%', defaultConfig: { tracing: { sampling: 100, zipkin: { address: 'zipkin.obs:9411' } } }, defaultProviders: { metrics: [] } });
  const h = hcms(buildPush(parseYaml(SERVICES_YAML(['productpage'])), [pp], { mesh }), pp).outbound;
  const log = (h.access_log as EnvoyJson[])[0].typed_config as EnvoyJson;
  assert.deepEqual(log.log_format, { text_format_source: { inline_string: '%RESPONSE_CODE% %REQ(:PATH)%\n' } });
  assert.deepEqual((h.tracing as EnvoyJson).random_sampling, { value: 100 });
  assert.equal(((((h.tracing as EnvoyJson).provider as EnvoyJson).typed_config as EnvoyJson).collector_service as { http_uri: EnvoyJson }).http_uri.cluster, 'outbound|9411||zipkin.obs');
  assert.equal(filter(h, 'istio.stats'), undefined, 'defaultProviders.metrics: [] turns metrics off');

  const off = parseMeshConfig({ enableTracing: false });
  const h2 = hcms(buildPush(parseYaml(SERVICES_YAML(['productpage'])), [pp], { mesh: off }), pp).outbound;
  assert.equal(h2.tracing, undefined);
  assert.equal(h2.access_log, undefined);
  assert.ok(filter(h2, 'istio.stats'), "Istio's default: Prometheus metrics on");
});

test('bad extension providers are errors naming the entry', () => {
  assert.throws(() => parseMeshConfig({ extensionProviders: [{ name: 'sky', skywalking: { service: 'x', port: 1 } }] }), /extensionProviders\[0\]\.skywalking: this provider kind is not supported/);
  assert.throws(() => parseMeshConfig({ extensionProviders: [{ name: 'z', zipkin: { port: 9411 } }] }), /extensionProviders\[0\]\.zipkin\.service: required/);
  assert.throws(() => parseMeshConfig({ extensionProviders: [{ name: 'o', opentelemetry: { service: 'otel', port: 4317, gprc: {} } }] }), /opentelemetry\.gprc: unknown field/);
  assert.throws(() => parseMeshConfig({ extensionProviders: [{ name: 'a', prometheus: {} }, { name: 'a', prometheus: {} }] }), /"a" is used by another provider/);
  assert.throws(() => parseMeshConfig({ defaultProviders: { metrics: 'prometheus' } }), /defaultProviders\.metrics: expected stringArray/);
});

/** The error message parseMeshConfig gives for one provider entry. */
function providerError(provider: Record<string, unknown>): string {
  try {
    parseMeshConfig({ extensionProviders: [{ name: 'p', ...provider }] });
  } catch (e) {
    return (e as Error).message;
  }
  return '';
}

test('tracing providers: every Istio field is checked where it is, and the ones Rigging cannot honour say what to use', () => {
  const otel = (o: Record<string, unknown>) => providerError({ opentelemetry: { service: 'otel.obs.svc.cluster.local', port: 4318, ...o } });
  const zipkin = (o: Record<string, unknown>) => providerError({ zipkin: { service: 'zipkin.obs.svc.cluster.local', port: 9411, ...o } });
  // Valid: all of Istio's supported fields.
  assert.equal(otel({ http: { path: '/v1/traces', timeout: '2s', headers: [{ name: 'authorization', envName: 'OTLP_TOKEN' }, { name: 'x-tenant', value: 'a %ENVIRONMENT(TENANT)% 100%%' }] }, resourceDetectors: { environment: {} }, maxTagLength: 99 }), '');
  assert.equal(otel({ grpc: { timeout: '500ms', initialMetadata: [{ name: 'authentication', value: 'token-x' }] } }), '');
  assert.equal(zipkin({ path: '/api/v2/spans', enable64bitTraceId: true, traceContextOption: 'USE_B3_WITH_W3C_PROPAGATION', timeout: '1m', headers: [{ name: 'x-api-key', value: 'k' }] }), '');

  // http: its sub-fields, typos included.
  assert.match(otel({ http: { path: '/v1/traces', timout: '2s' } }), /extensionProviders\[0\]\.opentelemetry\.http\.timout: unknown field \(known: path, timeout, headers\)/);
  assert.match(otel({ http: { timeout: '2s' } }), /opentelemetry\.http\.path: required/);
  assert.match(otel({ http: { path: '/v1/traces', timeout: 'soon' } }), /opentelemetry\.http\.timeout: expected a positive duration such as "10s" or "500ms", got "soon"/);
  assert.match(otel({ http: { path: '/v1/traces', headers: { authorization: 'x' } } }), /opentelemetry\.http\.headers: expected a list/);
  assert.match(otel({ http: { path: '/v1/traces', headers: [{ name: 'x-a', value: 'v', envName: 'E' }] } }), /opentelemetry\.http\.headers\[0\]: set exactly one of value or envName/);
  assert.match(otel({ http: { path: '/v1/traces', headers: [{ value: 'v' }] } }), /opentelemetry\.http\.headers\[0\]\.name: required/);
  assert.match(otel({ http: { path: '/v1/traces', headers: [{ name: 'x-a', valeu: 'v' }] } }), /opentelemetry\.http\.headers\[0\]\.valeu: unknown field/);
  assert.match(otel({ http: { path: '/v1/traces', headers: [{ name: 'Host', value: 'v' }] } }), /opentelemetry\.http\.headers\[0\]\.name: host is set by the proxy on every export/);
  assert.match(otel({ http: { path: '/v1/traces', headers: [{ name: 'x-a', value: '50%' }] } }), /opentelemetry\.http\.headers\[0\]\.value: a value is a format string .*write %% for a literal %/);
  assert.match(otel({ http: { path: '/v1/traces', headers: [{ name: 'x-a', envName: 'NOT-A-NAME' }] } }), /opentelemetry\.http\.headers\[0\]\.envName: expected an environment variable name/);
  assert.match(otel({ http: { path: '/v1/traces', headers: [{ name: 'x-a', value: '1' }, { name: 'X-A', value: '2' }] } }), /opentelemetry\.http\.headers\[1\]\.name: x-a is set twice/);
  // grpc: known now, and checked.
  assert.match(otel({ grpc: { initialMetadata: [{ name: 'grpc-timeout', value: '1S' }] } }), /opentelemetry\.grpc\.initialMetadata\[0\]\.name: grpc-timeout is set by the proxy/);
  assert.match(otel({ grpc: { timeout: 0 } }), /opentelemetry\.grpc\.timeout: expected a positive duration/);
  assert.match(otel({ grpc: { retries: 3 } }), /opentelemetry\.grpc\.retries: unknown field \(known: timeout, initialMetadata\)/);
  assert.match(otel({ http: { path: '/v1/traces' }, grpc: {} }), /extensionProviders\[0\]\.opentelemetry: set http \(OTLP\/HTTP\) or grpc \(OTLP\/gRPC\), not both/);
  // Resource detectors and the sampler.
  assert.equal(otel({ resourceDetectors: { dynatrace: {}, environment: {} } }), '');
  assert.match(otel({ resourceDetectors: { dynatrace: { tenant: 'x' } } }), /opentelemetry\.resourceDetectors\.dynatrace: expected \{\}/);
  assert.match(otel({ resourceDetectors: { host: {} } }), /opentelemetry\.resourceDetectors\.host: unknown resource detector \(known: environment, dynatrace\)/);
  assert.match(otel({ resourceDetectors: { environment: { vars: 'X' } } }), /opentelemetry\.resourceDetectors\.environment: expected \{\}/);
  assert.match(otel({ dynatraceSampler: { tenant: 't', clusterId: 1 } }), /opentelemetry\.dynatraceSampler: the Dynatrace sampler is not supported by Rigging; set the sampling rate with a Telemetry resource's tracing\.randomSamplingPercentage/);
  // Zipkin.
  assert.match(zipkin({ enable64bitTraceId: 'yes' }), /zipkin\.enable64bitTraceId: expected true or false/);
  assert.match(zipkin({ traceContextOption: 'W3C' }), /zipkin\.traceContextOption: must be USE_B3 or USE_B3_WITH_W3C_PROPAGATION, got "W3C"/);
  assert.match(zipkin({ path: 'api/v2/spans' }), /zipkin\.path: expected a path such as "\/api\/v2\/spans"/);
  assert.match(zipkin({ headers: [{ name: 'content-length', value: '1' }] }), /zipkin\.headers\[0\]\.name: content-length is set by the proxy/);
  assert.match(zipkin({ maxTagLength: -1 }), /zipkin\.maxTagLength: expected a non-negative integer/);
});

test('tracing provider fields become the tracer config Istio generates: headers, timeouts, gRPC metadata, 64-bit ids, W3C with B3, resource detectors', (t) => {
  process.env.RIG_TEST_OTLP_SECRET = 'tok%en';
  t.after(() => delete process.env.RIG_TEST_OTLP_SECRET);
  const pp = explicitSidecar('productpage-v1-0', 'default', { app: 'productpage' }, 'bookinfo-productpage', [{ port: 9080, name: 'http' }]);
  const tracerOf = (provider: Record<string, unknown>) => {
    const mesh = parseMeshConfig({ extensionProviders: [{ name: 'p', ...provider }], defaultProviders: { tracing: ['p'] } });
    const h = hcms(buildPush(parseYaml(SERVICES_YAML(['productpage'])), [pp], { mesh }), pp).outbound;
    return ((h.tracing as EnvoyJson).provider as EnvoyJson).typed_config as EnvoyJson;
  };
  const headers = [{ name: 'authorization', envName: 'RIG_TEST_OTLP_SECRET' }, { name: 'x-tenant', value: '%ENVIRONMENT(TENANT)%' }, { name: 'x-missing', envName: 'RIG_TEST_UNSET_VARIABLE' }];
  const added = [
    { header: { key: 'authorization', value: 'tok%%en' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    { header: { key: 'x-tenant', value: '%ENVIRONMENT(TENANT)%' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    { header: { key: 'x-missing', value: '' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
  ];

  const http = tracerOf({ opentelemetry: { service: 'otel.obs', port: 4318, http: { path: 'v1/traces', timeout: '1m30s', headers }, resourceDetectors: { dynatrace: {}, environment: {} } } });
  assert.deepEqual(http.http_service, { http_uri: { uri: 'http://otel.obs:4318/v1/traces', cluster: 'outbound|4318||otel.obs', timeout: '90s' }, request_headers_to_add: added });
  assert.deepEqual(http.resource_detectors, [
    { name: 'envoy.tracers.opentelemetry.resource_detectors.environment', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.tracers.opentelemetry.resource_detectors.v3.EnvironmentResourceDetectorConfig' } },
    { name: 'envoy.tracers.opentelemetry.resource_detectors.dynatrace', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.tracers.opentelemetry.resource_detectors.v3.DynatraceResourceDetectorConfig' } },
  ]);

  const grpc = tracerOf({ opentelemetry: { service: 'otel.obs', port: 4317, grpc: { timeout: '250ms', initialMetadata: headers.slice(0, 2) } } });
  assert.deepEqual(grpc.grpc_service, { envoy_grpc: { cluster_name: 'outbound|4317||otel.obs', authority: 'otel.obs' }, timeout: '0.25s', initial_metadata: [{ key: 'authorization', value: 'tok%%en' }, { key: 'x-tenant', value: '%ENVIRONMENT(TENANT)%' }] });
  assert.equal(grpc.resource_detectors, undefined);
  assert.deepEqual(tracerOf({ opentelemetry: { service: 'otel.obs', port: 4317 } }).grpc_service, { envoy_grpc: { cluster_name: 'outbound|4317||otel.obs', authority: 'otel.obs' } }, 'no grpc: OTLP/gRPC without a timeout');

  const z = tracerOf({ zipkin: { service: 'zipkin.obs', port: 9411, path: '/spans', enable64bitTraceId: true, traceContextOption: 'USE_B3_WITH_W3C_PROPAGATION', timeout: '2s', headers: headers.slice(1, 2) } });
  assert.deepEqual(z, {
    '@type': 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig',
    collector_service: { http_uri: { uri: 'http://zipkin.obs/spans', cluster: 'outbound|9411||zipkin.obs', timeout: '2s' }, request_headers_to_add: [added[1]] },
    collector_endpoint_version: 'HTTP_JSON',
    trace_id_128bit: false,
    shared_span_context: false,
    trace_context_option: 'USE_B3_WITH_W3C_PROPAGATION',
  });
  assert.equal(tracerOf({ zipkin: { service: 'zipkin.obs', port: 9411 } }).trace_id_128bit, true, "Istio's default: 128-bit trace ids");
});

test('defaultConfig.tracing: sampling, customTags and maxPathTagLength are used as Istio does; tracers Rigging lacks are errors', () => {
  const pp = explicitSidecar('productpage-v1-0', 'default', { app: 'productpage' }, 'bookinfo-productpage', [{ port: 9080, name: 'http' }]);
  const tracing = { sampling: 20, maxPathTagLength: 99, customTags: { env: { environment: { name: 'STAGE', defaultValue: 'dev' } }, team: { literal: { value: 'shop' } }, user: { header: { name: 'x-user' } } } };
  const hcmOf = (mesh: Record<string, unknown>, yaml = '') => hcms(buildPush(parseYaml(SERVICES_YAML(['productpage']) + yaml), [pp], { mesh: parseMeshConfig(mesh) }), pp).outbound.tracing as EnvoyJson;
  const legacy = hcmOf({ enableTracing: true, defaultConfig: { tracing: { ...tracing, zipkin: { address: 'zipkin.obs:9411' } } } });
  assert.deepEqual(legacy.random_sampling, { value: 20 });
  assert.equal(legacy.max_path_tag_length, 99);
  assert.deepEqual(userTags(legacy.custom_tags), [
    { tag: 'env', environment: { name: 'STAGE', default_value: 'dev' } },
    { tag: 'team', literal: { value: 'shop' } },
    { tag: 'user', request_header: { name: 'x-user', default_value: '' } },
  ]);
  // With a Telemetry provider: its own tags and the provider's maxTagLength win; defaultConfig's fill in.
  const providers = [{ name: 'z', zipkin: { service: 'zipkin.obs', port: 9411 } }, { name: 'z2', zipkin: { service: 'zipkin.obs', port: 9411, maxTagLength: 64 } }];
  const telemetry = (provider: string, tags = '') => `---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: { name: t, namespace: istio-system }\nspec:\n  tracing: [{ providers: [{ name: ${provider} }]${tags} }]\n`;
  const viaTelemetry = hcmOf({ extensionProviders: providers, defaultConfig: { tracing } }, telemetry('z'));
  assert.equal(viaTelemetry.max_path_tag_length, 99);
  assert.equal(userTags(viaTelemetry.custom_tags).length, 3);
  const own = hcmOf({ extensionProviders: providers, defaultConfig: { tracing } }, telemetry('z2', ', customTags: { mine: { literal: { value: x } } }'));
  assert.equal(own.max_path_tag_length, 64);
  assert.deepEqual(userTags(own.custom_tags), [{ tag: 'mine', literal: { value: 'x' } }]);

  const err = (t: Record<string, unknown>) => {
    try {
      parseMeshConfig({ defaultConfig: { tracing: t } });
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };
  assert.match(err({ datadog: { address: 'dd:8126' } }), /defaultConfig\.tracing\.datadog: this tracer is not supported by Rigging; use an extensionProviders zipkin or opentelemetry provider/);
  assert.match(err({ tlsSettings: { mode: 'ISTIO_MUTUAL' } }), /defaultConfig\.tracing\.tlsSettings: not supported here; .*with a DestinationRule for the collector's host setting its TLS/);
  assert.match(err({ sampling: 150 }), /defaultConfig\.tracing\.sampling: expected a percentage between 0 and 100, got 150/);
  assert.match(err({ zipkin: { adress: 'z:9411' } }), /defaultConfig\.tracing\.zipkin\.adress: unknown field/);
  assert.match(err({ zipkin: { address: 'http://zipkin:9411' } }), /defaultConfig\.tracing\.zipkin\.address: expected host:port/);
  assert.match(err({ customTags: { a: { literal: { value: 'x' }, header: { name: 'h' } } } }), /defaultConfig\.tracing\.customTags\.a: set exactly one of literal, environment or header/);
  assert.match(err({ customTags: { a: { environment: { defaultValue: 'x' } } } }), /defaultConfig\.tracing\.customTags\.a\.environment\.name: required/);
  assert.match(err({ enableIstioTags: 'no' }), /defaultConfig\.tracing\.enableIstioTags: expected true or false/);
  // Without Telemetry tracing, defaultConfig.tracing.enableIstioTags false drops the istio.* tags (istiod's legacy path); a Telemetry's setting wins.
  const istioTagsOf = (t: EnvoyJson) => (t.custom_tags as EnvoyJson[]).filter((c) => String(c.tag).startsWith('istio.')).length;
  assert.equal(istioTagsOf(hcmOf({ enableTracing: true, defaultConfig: { tracing: { enableIstioTags: false } } })), 0);
  assert.ok(istioTagsOf(hcmOf({ extensionProviders: providers, defaultConfig: { tracing: { enableIstioTags: false } } }, telemetry('z'))) > 0);
  assert.match(err({ openTelemetry: { address: 'otel:4317' } }), /defaultConfig\.tracing\.openTelemetry: unknown field/);
  assert.equal(err({ ...tracing, zipkin: { address: '[::1]:9411' }, enableIstioTags: true }), '');
});

test('metric overrides take effect in a running sidecar: dropped metric, removed tag, CEL dimension', async (t) => {
  const mesh = await startMesh({
    yaml:
      SERVICES_YAML(['productpage', 'reviews']) +
      `---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: { name: m, namespace: istio-system }\nspec:\n  metrics:\n  - overrides:\n    - { match: { metric: REQUEST_SIZE }, disabled: true }\n    - { match: { metric: ALL_METRICS, mode: CLIENT }, tagOverrides: { request_protocol: { operation: REMOVE } } }\n    - { match: { metric: REQUEST_COUNT, mode: SERVER }, tagOverrides: { request_method: { value: request.method } } }\n`,
    workloads: [
      { name: 'productpage-v1', labels: { app: 'productpage' }, sa: 'bookinfo-productpage' },
      { name: 'reviews-v1', labels: { app: 'reviews' }, sa: 'bookinfo-reviews' },
    ],
  });
  t.after(() => mesh.close());
  assert.equal((await viaProxy(mesh.sidecars['productpage-v1'].outbound, 'http://reviews:9080/')).status, 200);
  const client = await scrape(mesh.sidecars['productpage-v1'].stats);
  const server = await scrape(mesh.sidecars['reviews-v1'].stats);
  assert.doesNotMatch(client + server, /^istio_request_bytes_count\{/m);
  assert.match(client, /^istio_requests_total\{reporter="source",.*destination_cluster="Kubernetes",connection_security_policy="unknown",response_code="200".*\} 1$/m, 'request_protocol removed on the client');
  assert.match(server, /^istio_requests_total\{reporter="destination",.*request_protocol="http",.*request_method="GET"\} 1$/m);
  assert.match(server, /^istio_response_bytes_count\{reporter="destination",.*request_protocol="http",.*\} 1$/m);
  assert.doesNotMatch(server, /^istio_response_bytes_count\{.*request_method=/m, 'the dimension is only on requests_total');
});

test('inbound TCP chains get istio.stats before tcp_proxy and the access logs on tcp_proxy', () => {
  const db = explicitSidecar('mysql-v1-0', 'default', { app: 'mysql' }, 'mysql', [{ port: 3306, name: 'tcp' }]);
  const yaml = `apiVersion: v1\nkind: Service\nmetadata: { name: mysql, namespace: default }\nspec: { selector: { app: mysql }, ports: [{ name: tcp, port: 3306 }] }\n`;
  const push = buildPush(parseYaml(yaml), [db], { mesh: parseMeshConfig({ accessLogFile: '/dev/stdout' }) });
  const chains: EnvoyJson[][] = [];
  JSON.stringify(GENERATORS[LISTENER_TYPE].generate(push, db, undefined), (_k, v: unknown) => {
    const f = (v as EnvoyJson | undefined)?.filters as EnvoyJson[] | undefined;
    if (Array.isArray(f) && f.some((x) => x.name === 'envoy.filters.network.tcp_proxy' && String((x.typed_config as EnvoyJson).stat_prefix) === 'inbound|3306||')) chains.push(f);
    return v;
  });
  assert.ok(chains.length >= 1);
  for (const f of chains) {
    const names = f.map((x) => x.name);
    assert.equal(names.indexOf('istio.stats'), names.length - 2, names.join(','));
    const tp = f[f.length - 1].typed_config as EnvoyJson;
    assert.equal(((tp.access_log as EnvoyJson[])[0].typed_config as EnvoyJson).path, '/dev/stdout');
  }
});

test('Host headers chosen by clients cannot grow the label sets without bound', async (t) => {
  const mesh = await startMesh({
    yaml: SERVICES_YAML(['productpage', 'reviews']),
    workloads: [
      { name: 'productpage-v1', labels: { app: 'productpage' }, sa: 'bookinfo-productpage' },
      { name: 'reviews-v1', labels: { app: 'reviews' }, sa: 'bookinfo-reviews' },
    ],
  });
  t.after(() => mesh.close());
  const rv = mesh.sidecars['reviews-v1'];
  // Straight to the inbound port (plaintext is PERMISSIVE's), each request with another Host.
  for (let i = 0; i < 300; i++) {
    const status = await new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: rv.inbound, path: '/', headers: { host: `h${i}.example` }, agent: false }, (res) => resolve(res.resume().statusCode ?? 0)).on('error', reject);
    });
    assert.equal(status, 200);
  }
  const series = (await scrape(rv.stats)).split('\n').filter((l) => l.startsWith('istio_requests_total{'));
  assert.equal(series.length, 257, '256 hosts, then one series for the rest');
  const total = series.reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  assert.equal(total, 300);
  assert.ok(series.some((l) => l.includes('destination_service="unknown"') && l.endsWith(' 44')));
});

test('outbound listeners (shared per namespace) carry each workload’s Telemetry: TCP chains get istio.stats CLIENT and access logs', () => {
  const a = podSidecar('productpage-v1-0', 'default', { app: 'productpage' }, 'bookinfo-productpage', [{ port: 9080, name: 'http' }], '10.9.0.11');
  const b = podSidecar('ratings-v1-0', 'default', { app: 'ratings' }, 'bookinfo-ratings', [{ port: 9080, name: 'http' }], '10.9.0.12');
  const yaml =
    SERVICES_YAML(['productpage', 'ratings']) +
    `---\napiVersion: v1\nkind: Service\nmetadata: { name: mysql, namespace: default }\nspec: { selector: { app: mysql }, clusterIP: 10.96.0.50, ports: [{ name: tcp, port: 3306 }] }\n` +
    `---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: { name: pp, namespace: default }\nspec:\n  selector: { matchLabels: { app: productpage } }\n  metrics: [{ overrides: [{ match: { metric: ALL_METRICS, mode: CLIENT }, tagOverrides: { source_version: { operation: REMOVE } } }] }]\n  accessLogging: [{ providers: [{ name: envoy }] }]\n`;
  const push = buildPush(parseYaml(yaml), [a, b]);
  const outbound = (p: Proxy) => {
    const ls = GENERATORS[LISTENER_TYPE].generate(push, p, undefined);
    const tcp = ls.find((l) => l.name === '10.96.0.50_3306');
    const http = ls.find((l) => l.name === '0.0.0.0_9080');
    assert.ok(tcp && http, 'the per-port outbound listeners');
    const filters = (tcp.filter_chains as EnvoyJson[]).at(-1)!.filters as EnvoyJson[];
    let hcm: EnvoyJson | undefined;
    JSON.stringify(http, (_k, v: unknown) => {
      if (v && typeof v === 'object' && String((v as EnvoyJson)['@type']).endsWith('HttpConnectionManager')) hcm = v as EnvoyJson;
      return v;
    });
    return { filters, hcm: hcm! };
  };
  const pa = outbound(a);
  assert.deepEqual(pa.filters.map((f) => f.name), ['istio.stats', 'envoy.filters.network.tcp_proxy']);
  const tcpStats = (pa.filters[0].typed_config as EnvoyJson).value as EnvoyJson;
  assert.equal(tcpStats.reporter, 'CLIENT');
  assert.deepEqual(tcpStats.metrics, [{ tags_to_remove: ['source_version'] }]);
  assert.equal(((pa.filters[1].typed_config as EnvoyJson).access_log as EnvoyJson[]).length, 1);
  assert.deepEqual(statsValue(pa.hcm).metrics, [{ tags_to_remove: ['source_version'] }]);

  // The other workload of the namespace: plain stats, no access log, on both kinds of listeners.
  const pb = outbound(b);
  assert.equal(((pb.filters[0].typed_config as EnvoyJson).value as EnvoyJson).metrics, undefined);
  assert.equal((pb.filters[1].typed_config as EnvoyJson).access_log, undefined);
  assert.equal(statsValue(pb.hcm).metrics, undefined);
  assert.equal(pb.hcm.access_log, undefined);
});
