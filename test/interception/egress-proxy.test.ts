// Sidecar outboundTrafficPolicy.egressProxy through transparent interception: what a redirect-mode
// sidecar passes through under ALLOW_ANY (a TCP connection to an address outside the mesh, an
// HTTP request on a mesh HTTP port to an unknown address) goes to the egress proxy's service
// instead of the original destination. The "egress proxy" is an HTTP app outside the mesh that
// answers with the address it was reached on, so the answer says which way the traffic went.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { leftovers, rootSkipReason, testPrefix } from './helpers.ts';
import { FIXTURES, startMesh } from './mesh.ts';
import { waitFor } from '../helpers/wait.ts';

const TCP_APPS = path.join(FIXTURES, 'tcp-apps.ts');
const ECHO_APP = path.join(FIXTURES, 'echo-app.ts');
const config = (egressAddress: string) => `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { clusterIP: 10.96.0.80, selector: { app: web }, ports: [{ name: http, port: 8080 }] }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: egress-proxy, namespace: default }
spec:
  hosts: [egress-proxy.example.com]
  location: MESH_EXTERNAL
  ports: [{ number: 9080, name: tcp, protocol: TCP }]
  resolution: STATIC
  endpoints: [{ address: ${egressAddress} }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: default }
spec:
  outboundTrafficPolicy:
    mode: ALLOW_ANY
    egressProxy: { host: egress-proxy.example.com, port: { number: 9080 } }
`;

const stat = (m: Map<string, string>, name: string) => Number(m.get(name) ?? 0);

test('egressProxy: unknown destinations go to the egress proxy service, TCP and HTTP', { skip: rootSkipReason() }, async (t) => {
  const mesh = await startMesh(t, 'egp', {});
  const client = await mesh.createPod('client');
  const outside = await mesh.createPod('outside', { iptables: false });
  const proxyPod = await mesh.createPod('egress', { iptables: false });
  await mesh.startApp(outside, [TCP_APPS, 'echo', '8000']);
  await mesh.startApp(proxyPod, [ECHO_APP, '9080']);
  writeFileSync(path.join(mesh.configDir, 'egress.yaml'), config(proxyPod.address));
  await mesh.startSidecar(client, { labels: 'app=client' });
  const cluster = 'cluster.outbound|9080||egress-proxy.example.com.upstream_cx_total';

  await t.test('a TCP connection to an address outside the mesh reaches the egress proxy', async () => {
    const r = await waitFor(() => `no answer from the egress proxy\n${mesh.log('client')}`, async () => {
      const sent = await mesh.exec(client, process.execPath, [TCP_APPS, 'send', outside.address, '8000', 'GET /tcp HTTP/1.0\r\n\r\n']);
      const data = (JSON.parse(sent.stdout || '{}') as { data?: string }).data ?? '';
      return data.includes('HTTP/1.') ? data : undefined;
    }, { timeoutMs: 20_000, intervalMs: 250 });
    // The egress proxy answered (the echo at outside:8000 would have sent the request back).
    assert.match(r, new RegExp(`"local":"${proxyPod.address.replaceAll('.', '\\.')}:9080"`));
    assert.ok(stat(await mesh.stats(client), cluster) >= 1);
    assert.equal(stat(await mesh.stats(client), 'cluster.PassthroughCluster.upstream_cx_total'), 0);
  });

  await t.test('an HTTP request on a mesh HTTP port to an unknown address reaches the egress proxy', async () => {
    const r = await mesh.exec(client, 'curl', ['-sS', '-m', '5', `http://${outside.address}:8080/http`]);
    const seen = JSON.parse(r.stdout) as { local: string; headers: Record<string, string> };
    assert.equal(seen.local, `${proxyPod.address}:9080`);
    assert.equal(seen.headers.host, `${outside.address}:8080`);
  });

  await mesh.stop();
  await mesh.net.destroy();
  assert.deepEqual(leftovers(testPrefix('egp'), mesh.net.bridge), []);
});
