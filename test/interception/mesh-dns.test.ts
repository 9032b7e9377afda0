// DNS in REDIRECT mode: the control plane pushes the name table (NDS) to the sidecar, which answers
// the pod's captured DNS queries: service FQDNs, short names, name.namespace, ServiceEntry hosts
// (with their addresses or auto-allocated VIPs); unknown names fail cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { leftovers, rootSkipReason, testPrefix } from './helpers.ts';
import { FIXTURES, startMesh } from './mesh.ts';
import { waitFor } from '../helpers/wait.ts';

const CONFIG = `apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec:
  clusterIP: 10.96.0.60
  selector: { app: reviews }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: other }
spec:
  clusterIP: 10.96.0.61
  selector: { app: ratings }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: default }
spec:
  hosts: [db.example.internal]
  addresses: [192.0.2.10]
  ports: [{ number: 5432, name: tcp, protocol: TCP }]
  resolution: STATIC
  endpoints: [{ address: 192.0.2.11 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: default }
spec:
  hosts: [api.example.internal]
  ports: [{ number: 443, name: tls, protocol: TLS }]
  resolution: DNS
`;

test('the sidecar answers the pod DNS from the control plane name table', { skip: rootSkipReason() }, async (t) => {
  const mesh = await startMesh(t, 'dns', { 'mesh.yaml': CONFIG });
  const pod = await mesh.createPod('client');
  await mesh.startSidecar(pod, { labels: 'app=client' });
  const getent = (name: string) => mesh.exec(pod, 'getent', ['ahostsv4', name]);
  const first = (out: string) => out.split(/\s+/)[0];

  // The first push may still be on its way.
  const fqdn = await waitFor(() => `reviews.default.svc.cluster.local\n${mesh.log('client')}`, async () => {
    const r = await getent('reviews.default.svc.cluster.local');
    if (r.code !== 0) throw new Error(`getent exit ${r.code}`);
    return first(r.stdout);
  }, { timeoutMs: 15_000, intervalMs: 250 });
  assert.equal(fqdn, '10.96.0.60');
  // Through the pod's search path (default.svc.cluster.local, svc.cluster.local, cluster.local).
  assert.equal(first((await getent('reviews')).stdout), '10.96.0.60');
  assert.equal(first((await getent('reviews.default')).stdout), '10.96.0.60');
  assert.equal(first((await getent('ratings.other')).stdout), '10.96.0.61');
  assert.equal(first((await getent('db.example.internal.')).stdout), '192.0.2.10');
  // A ServiceEntry without addresses gets an auto-allocated VIP (Istio: class E, 240.240.0.0/16).
  assert.match(first((await getent('api.example.internal.')).stdout), /^240\.240\.\d+\.\d+$/);
  // Unknown names: forwarded upstream (nothing answers here), a clean failure, no crash. (A trailing
  // dot skips the search path: each miss there is one forward that times out on this machine.)
  assert.equal((await getent('nothing.invalid.')).code, 2);
  // A raw query over TCP to the resolv.conf nameserver (captured to the sidecar) gets the same answer.
  const tcp = await mesh.exec(pod, process.execPath, [path.join(FIXTURES, 'dns-ask.ts'), mesh.net.gateway, 'reviews.default.svc.cluster.local']);
  assert.deepEqual(JSON.parse(tcp.stdout), { rcode: 'NOERROR', answers: ['10.96.0.60'] });
  assert.equal((await getent('reviews')).code, 0, 'the sidecar still answers after the failed forward');

  // A new service reaches the sidecar's table with the next push.
  writeFileSync(path.join(mesh.configDir, 'details.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: { name: details, namespace: default }\nspec:\n  clusterIP: 10.96.0.62\n  selector: { app: details }\n  ports: [{ name: http, port: 9080 }]\n');
  const added = await waitFor(() => `details never resolved\n${mesh.log('client')}`, async () => {
    const r = await getent('details.default.svc.cluster.local.');
    return r.code === 0 ? first(r.stdout) : undefined;
  }, { timeoutMs: 15_000, intervalMs: 250 });
  assert.equal(added, '10.96.0.62');

  await mesh.stop();
  await mesh.net.destroy();
  assert.deepEqual(leftovers(testPrefix('dns'), mesh.net.bridge), []);
});
