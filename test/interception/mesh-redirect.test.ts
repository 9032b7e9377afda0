// The whole of transparent interception: a control plane on the host, two pods with their
// sidecars (`rig proxy --interception redirect`, UID 1337) and unchanged apps; a plain curl in
// the client pod to a service VIP goes through both sidecars.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { leftovers, rootSkipReason, testPrefix } from './helpers.ts';
import { FIXTURES, startMesh } from './mesh.ts';
import { waitFor } from '../helpers/wait.ts';

const VIP = '10.96.0.50';
const SERVICE = `apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec:
  clusterIP: ${VIP}
  selector: { app: echo }
  ports: [{ name: http, port: 9080, targetPort: 9080 }]
`;

test('a plain curl to a service VIP goes through both sidecars', { skip: rootSkipReason() }, async (t) => {
  const mesh = await startMesh(t, 'mesh', { 'echo.yaml': SERVICE });
  const echo = await mesh.createPod('echo');
  const client = await mesh.createPod('client');
  await mesh.startApp(echo, [path.join(FIXTURES, 'echo-app.ts'), '9080']);
  await mesh.startSidecar(echo, { labels: 'app=echo', ports: ['9080/http/HTTP'] });
  await mesh.startSidecar(client, { labels: 'app=client' });

  const seen = await waitFor(() => `curl http://${VIP}:9080/hello in the client pod\n${mesh.log('client')}\n${mesh.log('echo')}`, async () => {
    const r = await mesh.exec(client, 'curl', ['-sS', '-m', '3', `http://${VIP}:9080/hello`]);
    if (r.code !== 0 || !r.stdout.startsWith('{')) throw new Error(`curl: ${r.stdout}${r.stderr}`);
    return JSON.parse(r.stdout) as { remote: string; local: string; headers: Record<string, string> };
  }, { timeoutMs: 15_000, intervalMs: 250 });
  assert.ok(seen.headers['x-request-id'], 'the client sidecar added x-request-id');
  // Mutual TLS between the sidecars: the server side saw the client's SPIFFE certificate.
  assert.match(seen.headers['x-forwarded-client-cert'] ?? '', /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/client(;|$)/);
  assert.equal(seen.headers['x-envoy-peer-metadata-id'], undefined, 'the server sidecar stripped the peer metadata headers');
  // The server sidecar reaches the app from Istio's inbound passthrough source, on the pod address.
  assert.equal(seen.remote, '127.0.0.6');
  assert.match(seen.local, /:9080$/);

  const out = await mesh.stats(client);
  assert.ok(Number(out.get('cluster.outbound|9080||echo.default.svc.cluster.local.upstream_rq_200')) >= 1, `client sidecar counted the request: ${[...out].filter(([k]) => k.includes('echo')).join('\n')}`);
  const inb = await mesh.stats(echo);
  assert.ok(Number(inb.get('cluster.inbound|9080||.upstream_rq_200')) >= 1, `server sidecar counted the request: ${[...inb].filter(([k]) => k.includes('inbound')).join('\n')}`);

  await mesh.stop();
  await mesh.net.destroy();
  assert.deepEqual(leftovers(testPrefix('mesh'), mesh.net.bridge), []);
});
