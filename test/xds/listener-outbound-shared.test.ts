// Outbound per-port listeners are built once per namespace (and Telemetry that applies) and shared
// by its sidecars; only the OpenTelemetry tracer's service name is each workload's own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LISTENER_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import type { Proxy } from '../../src/model/proxy.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { buildPush, parseYaml, podSidecar } from './fixtures.ts';

const YAML = ['productpage', 'ratings']
  .map((n) => `apiVersion: v1\nkind: Service\nmetadata: { name: ${n}, namespace: default }\nspec: { selector: { app: ${n} }, ports: [{ name: http, port: 9080 }] }\n`)
  .concat(`apiVersion: v1\nkind: Service\nmetadata: { name: mysql, namespace: default }\nspec: { selector: { app: mysql }, clusterIP: 10.96.0.50, ports: [{ name: tcp, port: 3306 }] }\n`)
  .join('---\n');

const OTEL = [{ name: 'otel', opentelemetry: { service: 'otel.istio-system.svc.cluster.local', port: 4317 } }];

function outbound(push: ReturnType<typeof buildPush>, p: Proxy): { http: EnvoyJson; tcp: EnvoyJson } {
  const ls = GENERATORS[LISTENER_TYPE].generate(push, p, undefined);
  const http = ls.find((l) => l.name === '0.0.0.0_9080');
  const tcp = ls.find((l) => l.name === '10.96.0.50_3306');
  assert.ok(http && tcp, 'the per-port outbound listeners');
  return { http, tcp };
}

function tracerServiceName(listener: EnvoyJson): unknown {
  const hcm = ((listener.filter_chains as EnvoyJson[])[0].filters as EnvoyJson[])[0].typed_config as EnvoyJson;
  return (((hcm.tracing as EnvoyJson).provider as EnvoyJson).typed_config as EnvoyJson).service_name;
}

test('each sidecar of a namespace gets its own OpenTelemetry service name on the shared outbound listeners', () => {
  const a = podSidecar('productpage-v1-0', 'default', { app: 'productpage' }, 'bookinfo-productpage', [{ port: 9080, name: 'http' }], '10.9.0.11');
  const b = podSidecar('ratings-v1-0', 'default', { app: 'ratings' }, 'bookinfo-ratings', [{ port: 9080, name: 'http' }], '10.9.0.12');
  const push = buildPush(parseYaml(YAML), [a, b], { mesh: { extensionProviders: OTEL, defaultProviders: { tracing: ['otel'] } } });
  const la = outbound(push, a);
  const lb = outbound(push, b);
  const la2 = outbound(push, a);
  assert.equal(tracerServiceName(la.http), 'productpage.default');
  assert.equal(tracerServiceName(lb.http), 'ratings.default');
  assert.equal(tracerServiceName(la2.http), 'productpage.default');
  // Apart from the service name the HTTP listeners are equal, and the TCP listener is one shared object.
  const named = (l: EnvoyJson, n: string) => JSON.parse(JSON.stringify(l).replaceAll(String(tracerServiceName(l)), n)) as EnvoyJson;
  assert.deepEqual(named(la.http, 'x'), named(lb.http, 'x'));
  assert.equal(la.tcp, lb.tcp);
});

test('without a workload-specific tracer the sidecars of a namespace share the outbound listener objects', () => {
  const a = podSidecar('productpage-v1-0', 'default', { app: 'productpage' }, 'bookinfo-productpage', [{ port: 9080, name: 'http' }], '10.9.0.11');
  const b = podSidecar('ratings-v1-0', 'default', { app: 'ratings' }, 'bookinfo-ratings', [{ port: 9080, name: 'http' }], '10.9.0.12');
  const push = buildPush(parseYaml(YAML), [a, b], { mesh: { enableTracing: true } });
  const la = outbound(push, a);
  const lb = outbound(push, b);
  assert.ok((((la.http.filter_chains as EnvoyJson[])[0].filters as EnvoyJson[])[0].typed_config as EnvoyJson).tracing, 'zipkin tracing configured');
  assert.equal(la.http, lb.http);
  assert.equal(la.tcp, lb.tcp);
});
