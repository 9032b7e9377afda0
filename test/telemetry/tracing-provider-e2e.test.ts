// MeshConfig's opentelemetry provider through the real control plane and a real `rig proxy`: the
// provider's http.headers — a literal value and an envName read in the control plane's
// environment (as Istio reads istiod's) — arrive on the sidecar's OTLP/HTTP span exports at the
// collector, with the provider's path, and the exported span is the request's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { parseMeshConfig } from '../../src/model/mesh-config.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { SPAN_KIND, startOtlpCollector } from '../helpers/otlp-collector.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from '../proxy/harness.ts';

const config = (servicePort: number, appPort: number, collectorPort: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: otel, namespace: istio-system }
spec:
  hosts: [otel.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 4318, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${collectorPort} } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: app, namespace: foo }
spec:
  hosts: [app.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: ${servicePort}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${appPort} } }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: sleep, namespace: foo }
spec:
  workloadSelector: { labels: { app: sleep } }
  egress:
  - port: { number: ${servicePort}, protocol: HTTP, name: http }
    bind: 127.0.0.1
    captureMode: NONE
    hosts: [./app.example.com]
  - hosts: ["*/*"]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: istio-system }
spec:
  tracing: [{ providers: [{ name: otel }], randomSamplingPercentage: 100 }]
`;

test('opentelemetry.http.headers (value and envName) arrive on the sidecar\'s span exports at the collector', async (t) => {
  // In the control plane's environment only as far as the test goes: the control plane runs in this process.
  process.env.RIG_TEST_E2E_OTLP_TOKEN = 'Bearer s3cr%t';
  t.after(() => delete process.env.RIG_TEST_E2E_OTLP_TOKEN);
  const collector = await startOtlpCollector(t, '/otlp/v1/traces');
  const app = await startUpstream('app');
  t.after(() => app.close());
  const servicePort = await freePort();
  const mesh = parseMeshConfig({
    extensionProviders: [
      {
        name: 'otel',
        opentelemetry: {
          service: 'otel.example.com',
          port: 4318,
          http: { path: '/otlp/v1/traces', timeout: '5s', headers: [{ name: 'X-Scope-OrgID', value: 'team-a' }, { name: 'Authorization', envName: 'RIG_TEST_E2E_OTLP_TOKEN' }] },
        },
      },
    ],
  });
  const cp = await startMeshControlPlane(t, { dirPrefix: 'rig-otlp-e2e-', config: config(servicePort, app.port, collector.port), controlPlane: { mesh, debounceMs: 10 } });
  const sleep = await startSidecar(t, cp, { namespace: 'foo', name: 'sleep', args: ['--outbound-port', String(await freePort())] });

  await waitFor(() => `a request through the egress listener\n${sleep.log()}`, async () => {
    const r = await request(servicePort, { path: '/checkout', headers: { host: 'app.example.com' } });
    return r.status === 200 ? r : undefined;
  });
  const exp = await waitFor(() => `a span export at the collector\n${sleep.log()}`, () => collector.requests.find((r) => r.spans.some((s) => s.kind === SPAN_KIND.CLIENT)), 20_000);

  assert.equal(exp.path, '/otlp/v1/traces');
  assert.equal(exp.headers['x-scope-orgid'], 'team-a');
  // The variable's value as it is: its % is not taken for a proxy format string.
  assert.equal(exp.headers.authorization, 'Bearer s3cr%t');
  assert.equal(exp.headers.host, 'otel.example.com:4318');
  assert.equal(exp.encoding, 'protobuf');
  const span = exp.spans.find((s) => s.kind === SPAN_KIND.CLIENT)!;
  assert.equal(span.resource['service.name'], 'sleep.foo');
  assert.match(String(span.attributes['http.url']), /^http:\/\/app\.example\.com(:\d+)?\/checkout$/);
  assert.equal(span.attributes['http.status_code'], '200');
});
