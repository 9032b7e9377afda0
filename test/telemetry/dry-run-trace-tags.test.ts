// Istio's authorization dry-run task, tracing step: a DENY policy annotated istio.io/dry-run lets
// the request through, and the server span carries istio.authorization.dry_run.deny_policy.name
// (ns[foo]-policy[deny-path-headers]-rule[0]) and .result (denied), read by the control plane's
// metadata custom tags from the RBAC filter's dynamic metadata. Real control plane, real sidecar,
// real OTLP collector.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { parseMeshConfig } from '../../src/model/mesh-config.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { SPAN_KIND, startOtlpCollector } from '../helpers/otlp-collector.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from '../proxy/harness.ts';

const config = (collectorPort: number) => `
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
apiVersion: v1
kind: Service
metadata: { name: httpbin, namespace: foo }
spec:
  selector: { app: httpbin }
  ports: [{ name: http, port: 8000 }]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: istio-system }
spec:
  tracing: [{ providers: [{ name: otel }], randomSamplingPercentage: 100 }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-path-headers
  namespace: foo
  annotations:
    "istio.io/dry-run": "true"
spec:
  selector:
    matchLabels:
      app: httpbin
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/headers"]
`;

test('a dry-run DENY policy lets /headers through and tags the server span with the policy and its verdict', async (t) => {
  const collector = await startOtlpCollector(t, '/v1/traces');
  const app = await startUpstream('httpbin');
  t.after(() => app.close());
  const mesh = parseMeshConfig({ extensionProviders: [{ name: 'otel', opentelemetry: { service: 'otel.example.com', port: 4318, http: { path: '/v1/traces' } } }] });
  const cp = await startMeshControlPlane(t, { dirPrefix: 'rig-dry-run-trace-', config: config(collector.port), controlPlane: { mesh, debounceMs: 10 } });
  const inbound = await freePort();
  const httpbin = await startSidecar(t, cp, { namespace: 'foo', name: 'httpbin', args: ['--workload-port', '8000/http/HTTP', '--inbound-port', `8000=${inbound}`, '--app-port', `8000=${app.port}`, '--outbound-port', String(await freePort())] });

  const get = (path: string) => request(inbound, { path, headers: { host: 'httpbin.foo:8000' } });
  await waitFor(() => `the inbound listener\n${httpbin.log()}`, async () => ((await get('/ip').catch(() => undefined))?.status === 200 ? true : undefined));
  assert.equal((await get('/headers')).status, 200, 'a dry-run policy does not deny');

  const serverSpan = (path: string) => collector.spans().find((s) => s.kind === SPAN_KIND.SERVER && String(s.attributes['http.url']).endsWith(path));
  const denied = await waitFor(() => `the server span of /headers at the collector\n${httpbin.log()}`, () => serverSpan('/headers'), 20_000);
  assert.equal(denied.attributes['istio.authorization.dry_run.deny_policy.name'], 'ns[foo]-policy[deny-path-headers]-rule[0]');
  assert.equal(denied.attributes['istio.authorization.dry_run.deny_policy.result'], 'denied');
  assert.equal(denied.attributes['istio.authorization.dry_run.allow_policy.result'], undefined, 'no dry-run ALLOW policy: no tag');

  const allowed = await waitFor(() => 'the server span of /ip at the collector', () => serverSpan('/ip'), 20_000);
  assert.equal(allowed.attributes['istio.authorization.dry_run.deny_policy.result'], 'allowed');
  assert.equal(allowed.attributes['istio.authorization.dry_run.deny_policy.name'], undefined, 'no policy matched /ip');
});
