// The Sidecar resource through the real control plane and two real `rig proxy` processes: the
// client's egress listener with captureMode NONE binds 127.0.0.1:<service port> for real and routes
// by Host over its hosts only; the server's ingress listener sends traffic to its defaultEndpoint.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { attachCertificateAuthority } from '../../src/ca/index.ts';
import { MemoryConfigStore } from '../../src/config/memory-store.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { freePort, tempDir } from '../ca/ca-test-helpers.ts';
import { spawnRig, stopProcess } from '../helpers/cli.ts';
import { startUpstream } from '../proxy/harness.ts';
import { parseYaml } from './fixtures.ts';
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

function get(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/hello', headers: { host }, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

test('Sidecar egress captureMode NONE binds the service port on 127.0.0.1; ingress defaultEndpoint picks the application', async (t) => {
  const dir = tempDir(t, 'rig-sidecar-');
  const app = await startUpstream('httpbin');
  t.after(() => app.close());
  const servicePort = await freePort();
  const store = new MemoryConfigStore();
  store.apply(parseYaml(config(servicePort, app.port)));
  const cp = await startControlPlane({ store, stateDir: dir, xdsPort: 0, monitoringPort: 0, debounceMs: 10 });
  t.after(() => cp.stop());
  const { ca, tokens, tlsPort } = await attachCertificateAuthority(cp, { stateDir: dir, tlsPort: 0 });
  t.after(() => ca.close());
  const root = path.join(dir, 'ca', 'root-cert.pem');
  const startProxy = async (name: string, args: string[]) => {
    const tokenFile = path.join(dir, `${name}.token`);
    fs.writeFileSync(tokenFile, (await tokens.issue({ namespace: 'foo', serviceAccount: name })).token, { mode: 0o600 });
    const p = spawnRig(['proxy', '--xds-address', `127.0.0.1:${cp.ports.xds}`, '--ca-address', `127.0.0.1:${tlsPort}`, '--ca-root-file', root, '--token-file', tokenFile, '--admin-port', '0', '--ready-port', '0', '--stats-port', '0', '--log-format', 'text', '--namespace', 'foo', '--service-account', name, '--workload-name', `${name}-0`, '--labels', `app=${name}`, ...args]);
    t.after(() => stopProcess(p));
  };
  // The server's --app-port points nowhere: only the ingress defaultEndpoint reaches the application.
  await startProxy('httpbin', ['--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${await freePort()}`, '--app-port', `9080=${await freePort()}`, '--outbound-port', String(await freePort())]);
  await startProxy('sleep', ['--outbound-port', String(await freePort())]);

  const ok = await waitFor('a request through the egress listener', async () => {
    const r = await get(servicePort, 'httpbin.foo.svc.cluster.local');
    return r.status === 200 ? r : undefined;
  });
  assert.equal((JSON.parse(ok.body) as { server: string }).server, 'httpbin');
  // The listener imports only httpbin: another service on the same port falls to the catch-all (passthrough to its name), not to a route.
  const other = await get(servicePort, 'other.foo.svc.cluster.local');
  assert.notEqual(other.status, 200);
});
