// DestinationRule workloadSelector through the real control plane and two real `rig proxy`
// clients of one namespace: the same VirtualService route to subset v1 reaches the endpoint the
// selected rule's v1 names from the client it selects, and the unselected rule's v1 from the other.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryConfigStore } from '../../src/config/memory-store.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { freePort } from '../../src/local/ports.ts';
import { FIRST_CONFIG_TIMEOUT_MS, startRigProxy } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from '../proxy/harness.ts';
import { parseYaml } from './fixtures.ts';

const config = (one: number, two: number) => `
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
metadata: { name: web-one, namespace: foo }
spec: { address: 127.0.0.1, ports: { http: ${one} }, labels: { app: web, version: one } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: web-two, namespace: foo }
spec: { address: 127.0.0.1, ports: { http: ${two} }, labels: { app: web, version: two } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: foo }
spec:
  host: web.mesh.internal
  trafficPolicy: { tls: { mode: DISABLE } }
  subsets: [{ name: v1, labels: { version: two } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web-for-a, namespace: foo }
spec:
  host: web.mesh.internal
  workloadSelector: { matchLabels: { app: a } }
  trafficPolicy: { tls: { mode: DISABLE } }
  subsets: [{ name: v1, labels: { version: one } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: foo }
spec:
  hosts: [web.mesh.internal]
  http: [{ route: [{ destination: { host: web.mesh.internal, subset: v1 } }] }]
`;

async function upstreamVia(port: number): Promise<string | undefined> {
  const r = await request(port, { path: 'http://web.mesh.internal/hello' });
  return r.status === 200 ? (r.headers['x-upstream'] as string) : undefined;
}

test('subset v1 is the selected rule\'s for the client it selects, the namespace rule\'s for another', async (t) => {
  const one = await startUpstream('one');
  t.after(() => one.close());
  const two = await startUpstream('two');
  t.after(() => two.close());
  const store = new MemoryConfigStore();
  store.apply(parseYaml(config(one.port, two.port)));
  const cp = await startControlPlane({ store, xdsPort: 0, monitoringPort: 0, debounceMs: 10 });
  t.after(() => cp.stop());
  const client = async (app: string) => {
    const outbound = await freePort();
    const proxy = startRigProxy(t, ['--namespace', 'foo', '--workload-name', `${app}-0`, '--labels', `app=${app},security.istio.io/tlsMode=disabled`, '--outbound-port', String(outbound)], { xdsPort: cp.ports.xds });
    return { outbound, started: proxy.started() };
  };
  const a = await client('a');
  const b = await client('b');
  await Promise.all([a.started, b.started]);

  assert.equal(await waitFor('client a to reach web', () => upstreamVia(a.outbound), FIRST_CONFIG_TIMEOUT_MS), 'one');
  assert.equal(await waitFor('client b to reach web', () => upstreamVia(b.outbound), FIRST_CONFIG_TIMEOUT_MS), 'two');
  for (let i = 0; i < 5; i++) {
    assert.equal(await upstreamVia(a.outbound), 'one');
    assert.equal(await upstreamVia(b.outbound), 'two');
  }
});
