// Locality load balancing through the real control plane and a real `rig proxy`: a client in
// us-east (its istio-locality label) sends everything to the us-east endpoint (priority 0); when
// that endpoint fails, retryRemoteLocalities retries in us-west at once and outlier detection keeps
// traffic there.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryConfigStore } from '../../src/config/memory-store.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { freePort } from '../../src/local/ports.ts';
import { startRigProxy } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from '../proxy/harness.ts';
import { parseYaml } from './fixtures.ts';

const config = (east: number, west: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: foo }
spec:
  hosts: [web.mesh.internal]
  location: MESH_INTERNAL
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  workloadSelector: { labels: { app: web } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: web-east, namespace: foo }
spec: { address: 127.0.0.1, ports: { http: ${east} }, labels: { app: web }, locality: us-east/zone1 }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: web-west, namespace: foo }
spec: { address: 127.0.0.1, ports: { http: ${west} }, labels: { app: web }, locality: us-west/zone1 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: foo }
spec:
  host: web.mesh.internal
  trafficPolicy:
    tls: { mode: DISABLE }
    outlierDetection: { consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100 }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: foo }
spec:
  hosts: [web.mesh.internal]
  http:
  - retries: { attempts: 2, retryOn: 5xx, retryRemoteLocalities: true }
    route: [{ destination: { host: web.mesh.internal } }]
`;

async function viaProxy(port: number): Promise<{ status: number; server: string }> {
  const r = await request(port, { path: 'http://web.mesh.internal/hello' });
  return { status: r.status, server: r.headers['x-upstream'] as string };
}

test('a us-east client prefers us-east and fails over to us-west on errors', async (t) => {
  let eastDown = false;
  const east = await startUpstream('east', (_req, res) => {
    if (!eastDown) return false;
    res.writeHead(503, { 'x-upstream': 'east' });
    res.end();
    return true;
  });
  t.after(() => east.close());
  const west = await startUpstream('west');
  t.after(() => west.close());
  const store = new MemoryConfigStore();
  store.apply(parseYaml(config(east.port, west.port)));
  const cp = await startControlPlane({ store, xdsPort: 0, monitoringPort: 0, debounceMs: 10 });
  t.after(() => cp.stop());
  const outbound = await freePort();
  await startRigProxy(t, ['--namespace', 'foo', '--workload-name', 'sleep-0', '--labels', 'app=sleep,istio-locality=us-east.zone1,security.istio.io/tlsMode=disabled', '--outbound-port', String(outbound)], { xdsPort: cp.ports.xds }).started();

  await waitFor('the client sidecar to answer 200', async () => ((await viaProxy(outbound)).status === 200 ? true : undefined));
  const before: string[] = [];
  for (let i = 0; i < 20; i++) before.push((await viaProxy(outbound)).server);
  assert.deepEqual(new Set(before), new Set(['east']), 'all traffic stays in the local locality');

  eastDown = true;
  const after: { status: number; server: string }[] = [];
  for (let i = 0; i < 10; i++) after.push(await viaProxy(outbound));
  assert.deepEqual(after.map((r) => r.status), Array(10).fill(200), 'the retry in the remote locality succeeds');
  assert.deepEqual(new Set(after.map((r) => r.server)), new Set(['west']));
});
