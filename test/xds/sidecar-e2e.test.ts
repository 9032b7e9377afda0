// The Sidecar resource through the real control plane and two real `rig proxy` processes: the
// client's egress listener with captureMode NONE binds 127.0.0.1:<service port> for real and routes
// by Host over its hosts only; the server's ingress listener sends traffic to its defaultEndpoint.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { request, startUpstream } from '../proxy/harness.ts';
import { waitFor } from '../helpers/wait.ts';

const config = (servicePort: number, appPort: number) => `
apiVersion: v1
kind: Service
metadata: { name: httpbin, namespace: foo }
spec: { selector: { app: httpbin }, ports: [{ name: http, port: ${servicePort}, targetPort: 9080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: other, namespace: foo }
spec: { selector: { app: other }, ports: [{ name: http, port: ${servicePort} }] }
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
    hosts: [./httpbin.foo.svc.cluster.local]
  - hosts: ["./*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: httpbin, namespace: foo }
spec:
  workloadSelector: { labels: { app: httpbin } }
  ingress:
  - port: { number: 9080, protocol: HTTP, name: http }
    defaultEndpoint: 127.0.0.1:${appPort}
`;

const get = (port: number, host: string) => request(port, { path: '/hello', headers: { host } });

test('Sidecar egress captureMode NONE binds the service port on 127.0.0.1; ingress defaultEndpoint picks the application', async (t) => {
  const app = await startUpstream('httpbin');
  t.after(() => app.close());
  const servicePort = await freePort();
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-sidecar-', config: config(servicePort, app.port), controlPlane: { debounceMs: 10 } });
  // The server's --app-port points nowhere: only the ingress defaultEndpoint reaches the application.
  await startSidecar(t, mesh, { namespace: 'foo', name: 'httpbin', args: ['--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${await freePort()}`, '--app-port', `9080=${await freePort()}`, '--outbound-port', String(await freePort())] });
  await startSidecar(t, mesh, { namespace: 'foo', name: 'sleep', args: ['--outbound-port', String(await freePort())] });

  const ok = await waitFor('a request through the egress listener', async () => {
    const r = await get(servicePort, 'httpbin.foo.svc.cluster.local');
    return r.status === 200 ? r : undefined;
  });
  assert.equal((JSON.parse(ok.body) as { server: string }).server, 'httpbin');
  // The listener imports only httpbin: another service on the same port falls to the catch-all (passthrough to its name), not to a route.
  const other = await get(servicePort, 'other.foo.svc.cluster.local');
  assert.notEqual(other.status, 200);
});
