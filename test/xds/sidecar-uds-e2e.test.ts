// Unix domain sockets in the Sidecar resource, through the real control plane and two real
// `rig proxy` processes: the client's egress listener (port 0, bind unix://<dir>/egress.sock)
// takes HTTP on a socket file and routes it by Host to httpbin; the server's ingress
// defaultEndpoint unix://<dir>/app.sock hands it to an application that listens only on a socket.
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';

const config = (servicePort: number, dir: string) => `
apiVersion: v1
kind: Service
metadata: { name: httpbin, namespace: foo }
spec: { selector: { app: httpbin }, ports: [{ name: http, port: ${servicePort}, targetPort: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: sleep, namespace: foo }
spec:
  workloadSelector: { labels: { app: sleep } }
  egress:
  - port: { number: 0, protocol: HTTP, name: http-uds }
    bind: unix://${dir}/egress.sock
    hosts: [./httpbin.foo.svc.cluster.local]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: httpbin, namespace: foo }
spec:
  workloadSelector: { labels: { app: httpbin } }
  ingress:
  - port: { number: 9080, protocol: HTTP, name: http }
    defaultEndpoint: unix://${dir}/app.sock
`;

function getOverSocket(socketPath: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath, path: '/hello', headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

test('Sidecar egress bind unix:// and ingress defaultEndpoint unix:// carry a request from socket to socket', async (t) => {
  const dir = tempDir(t, 'rig-uds-');
  const app = http.createServer((req, res) => res.end(JSON.stringify({ app: 'httpbin', path: req.url, host: req.headers.host })));
  await new Promise<void>((resolve) => app.listen(path.join(dir, 'app.sock'), resolve));
  t.after(() => app.close());
  const servicePort = await freePort();
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-sidecar-uds-', config: config(servicePort, dir), controlPlane: { debounceMs: 10 } });
  // The server's --app-port points nowhere: only the ingress defaultEndpoint (the socket) reaches the application.
  await startSidecar(t, mesh, { namespace: 'foo', name: 'httpbin', args: ['--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${await freePort()}`, '--app-port', `9080=${await freePort()}`, '--outbound-port', String(await freePort())] });
  await startSidecar(t, mesh, { namespace: 'foo', name: 'sleep', args: ['--outbound-port', String(await freePort())] });

  const egress = path.join(dir, 'egress.sock');
  const ok = await waitFor('a request through the Unix socket egress listener', async () => {
    const r = await getOverSocket(egress, 'httpbin.foo.svc.cluster.local').catch(() => undefined);
    return r?.status === 200 ? r : undefined;
  });
  assert.deepEqual(JSON.parse(ok.body), { app: 'httpbin', path: '/hello', host: 'httpbin.foo.svc.cluster.local' });
  // With the port, as the route lists the service under host:port too.
  assert.equal((await getOverSocket(egress, `httpbin.foo.svc.cluster.local:${servicePort}`)).status, 200);
});
