// Telemetry fields Rigging does not implement are never silently ignored: validation warns with
// the field's position, and the generated config leaves them out instead of being rejected by the
// proxy (a custom metric override used to NACK the listener).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadDocuments, formatDiagnostic } from '../../src/api/index.ts';
import { LISTENER_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { buildPush, explicitSidecar, parseYaml } from '../xds/fixtures.ts';
import { SERVICES_YAML } from './mesh.ts';

const YAML = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: everything, namespace: default }
spec:
  selector: { matchLabels: { app: reviews } }
  tracing:
  - randomSamplingPercentage: 10
    useRequestIdForTraceSampling: true
    enableIstioTags: false
  metrics:
  - reportingInterval: 15s
    overrides:
    - match: { customMetric: my_metric }
      disabled: true
    - match: { metric: REQUEST_COUNT }
      disabled: true
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: gw, namespace: default }
spec:
  targetRefs: [{ group: "", kind: Service, name: reviews }]
  accessLogging: [{ providers: [{ name: envoy }] }]
`;

test('validation warns about every unimplemented Telemetry field, with its line', () => {
  const { diagnostics } = loadDocuments(YAML, 'telemetry.yaml');
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'Error').map(formatDiagnostic), []);
  const warnings = diagnostics.filter((d) => d.severity === 'Warning');
  const byPath = Object.fromEntries(warnings.map((d) => [d.path, d]));
  assert.equal(byPath['spec.tracing[0].useRequestIdForTraceSampling'], undefined, 'implemented: the HCM request_id_extension');
  assert.equal(byPath['spec.tracing[0].enableIstioTags'], undefined, 'implemented: the istio.* span tags');
  assert.equal(byPath['spec.metrics[0].reportingInterval'], undefined, 'implemented: tcp_reporting_duration');
  assert.match(byPath['spec.metrics[0].overrides[0].match.customMetric'].message, /custom metrics are not supported/);
  assert.match(byPath['spec.targetRefs[0].kind'].message, /ambient mode.*applies to no proxy/);
  assert.equal(warnings.length, 2, warnings.map(formatDiagnostic).join('\n'));
});

test('the generated config leaves the custom metric out and a proxy accepts it; the standard override applies', async (t) => {
  const rv = explicitSidecar('reviews-v1-0', 'default', { app: 'reviews' }, 'bookinfo-reviews', [{ port: 9080, name: 'http' }]);
  const push = buildPush(parseYaml(SERVICES_YAML(['reviews']) + '---\n' + YAML), [rv]);
  const listeners = GENERATORS[LISTENER_TYPE].generate(push, rv, undefined);
  const stats: EnvoyJson[] = [];
  JSON.stringify(listeners, (_k, v: unknown) => {
    if ((v as EnvoyJson | undefined)?.name === 'istio.stats') stats.push(((v as EnvoyJson).typed_config as EnvoyJson).value as EnvoyJson);
    return v;
  });
  assert.ok(stats.length > 0);
  for (const s of stats) {
    assert.deepEqual(s.metrics, [{ name: 'requests_total', drop: true }]);
    assert.equal(s.tcp_reporting_duration, '15s');
  }
  const rt = new ProxyRuntime({ node: { id: rv.id, cluster: 'reviews.default', metadata: {} } });
  t.after(() => rt.stop());
  const errors = rt.apply(LISTENER_TYPE, new Map(listeners.map((l) => [String(l.name), l])));
  assert.deepEqual(errors.filter((e) => /istio\.stats|metric/.test(e)), []);
});
