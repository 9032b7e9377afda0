// Valid Istio fields that Rigging does not apply are warnings with their position, never ignored
// silently; supported fields give none.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadDocuments } from '../../src/api/index.ts';

const YAML = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [web]
  http:
  - match: [{ uri: { prefix: /a }, statPrefix: a }]
    redirect: { uri: /b, derivePort: FROM_REQUEST_PORT }
  - route: [{ destination: { host: web } }]
    retries: { attempts: 2, retryRemoteLocalities: true }
  tcp:
  - match: [{ port: 5000, sourceSubnet: 10.0.0.0/8 }]
    route: [{ destination: { host: web } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: default }
spec:
  host: web
  workloadSelector: { matchLabels: { app: client } }
  trafficPolicy:
    proxyProtocol: { version: V1 }
    connectionPool: { tcp: { idleTimeout: 1h } }
    retryBudget: { percent: 20 }
    loadBalancer: { localityLbSetting: { enabled: true } }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: default }
spec:
  outboundTrafficPolicy: { mode: ALLOW_ANY, egressProxy: { host: egress.example.com, port: { number: 3128 } } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: vm, namespace: default }
spec:
  template: { network: net-2 }
  probe: { exec: { command: [cat, /tmp/healthy] } }
`;

test('unsupported fields are warnings with their path and position; supported ones are not', () => {
  const r = loadDocuments(YAML, 'mesh.yaml');
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'Error'), []);
  const warnings = r.diagnostics.filter((d) => d.severity === 'Warning').map((d) => `${d.source?.line} ${d.path}`);
  // WorkloadGroup template.network: applied (multi-network split-horizon EDS).
  assert.deepEqual(warnings, ['12 spec.tcp[0].match[0].sourceSubnet']);
  assert.ok(r.diagnostics.every((d) => d.severity !== 'Warning' || /not supported by Rigging and has no effect/.test(d.message)));
  // istiod ignores it too (its matchTCP/matchTLS read gateways, port, sourceLabels, sourceNamespace only).
  assert.match(r.diagnostics.find((d) => d.path === 'spec.tcp[0].match[0].sourceSubnet')!.message, /not implemented by Istio either/);
});

test('Sidecar listener fields Istio applies give no warning: bind on a captured ingress listener, protocol on a captured egress one', () => {
  const r = loadDocuments(
    `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: default }
spec:
  ingress:
  - port: { number: 9080, protocol: HTTP, name: http }
    bind: 10.0.0.1
    defaultEndpoint: unix:///var/run/app.sock
  egress:
  - port: { number: 9080, protocol: HTTP, name: http }
    hosts: ["./*"]
  - port: { number: 9090, protocol: HTTP, name: http-b }
    bind: 127.0.0.1
    captureMode: NONE
    hosts: ["./*"]
`,
    'sidecar.yaml',
  );
  // As istiod: a captured ingress listener's bind names its chain's stat prefix; a captured egress
  // listener's protocol is its port's listeners' protocol (test/xds/sidecar-scope.test.ts).
  assert.deepEqual(r.diagnostics.map((d) => `${d.severity} ${d.path}`), []);
});

test("what istiod's validation rejects is an error: fault.abort.http2Error, a Gateway or Sidecar port's targetPort", () => {
  const r = loadDocuments(
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [web]
  http:
  - fault: { abort: { http2Error: CANCEL, percentage: { value: 50 } } }
    route: [{ destination: { host: web } }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 80, name: http, protocol: HTTP, targetPort: 8080 }
    hosts: ["*"]
    defaultEndpoint: 127.0.0.1:8080
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: default }
spec:
  ingress:
  - port: { number: 9080, protocol: HTTP, name: http, targetPort: 9081 }
    defaultEndpoint: 127.0.0.1:9080
  egress:
  - port: { number: 9080, protocol: HTTP, name: http, targetPort: 9081 }
    hosts: ["./*"]
`,
    'mesh.yaml',
  );
  const shown = r.diagnostics.map((d) => `${d.severity} ${d.path}: ${d.message}`);
  assert.deepEqual(shown.filter((d) => d.startsWith('Error')).map((d) => d.slice(0, d.indexOf(':'))), [
    'Error spec.http[0].fault.abort.http2Error',
    'Error spec.servers[0].port.targetPort',
    'Error spec.ingress[0].port.targetPort',
    'Error spec.egress[0].port.targetPort',
  ]);
  assert.match(shown.join('\n'), /http2Error: HTTP\/2 abort fault injection \(http2Error\) is not supported, as in Istio/);
  assert.match(shown.join('\n'), /targetPort: targetPort has no impact on Gateways/);
  assert.match(shown.join('\n'), /targetPort: targetPort has no impact on Sidecars/);
  // Gateway server.defaultEndpoint: valid in Istio's API, marked NOT IMPLEMENTED there.
  assert.ok(shown.includes('Warning spec.servers[0].defaultEndpoint: server.defaultEndpoint (not implemented by Istio either) is not supported by Rigging and has no effect'), shown.join('\n'));
});
