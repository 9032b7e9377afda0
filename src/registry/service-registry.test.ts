import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadDocuments } from '../api/index.ts';
import { ServiceRegistry } from './service-registry.ts';
import { VipAllocator } from './vip-allocator.ts';

function load(text: string) {
  const r = loadDocuments(text, 'test.yaml');
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'Error'), []);
  return r.resources;
}

const CONFIG = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop, annotations: { networking.istio.io/exportTo: "." } }
spec:
  selector: { app: web }
  ports:
  - { name: http-web, port: 80, targetPort: web }
  - { name: metrics, port: 9090, targetPort: 9091, appProtocol: http }
  - { name: dns, port: 53, protocol: UDP }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: vm-1, namespace: shop }
spec: { address: 10.1.0.5, ports: { web: 8080 }, labels: { app: web, security.istio.io/tlsMode: istio }, serviceAccount: vm-sa, locality: eu/west-1/a }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: shop }
spec:
  hosts: [api.example.com]
  ports: [{ number: 443, name: tls, protocol: TLS }]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: static, namespace: shop }
spec:
  hosts: [db.internal]
  addresses: [192.0.2.10]
  ports: [{ number: 5432, name: tcp-pg, protocol: TCP }]
  resolution: STATIC
  location: MESH_INTERNAL
  endpoints: [{ address: 192.0.2.11, ports: { tcp-pg: 6432 } }]
`;

test('Kubernetes Services, WorkloadEntries, ServiceEntries and auto-registered workloads', () => {
  const reg = new ServiceRegistry(new VipAllocator());
  reg.upsertWorkload({ key: 'sidecar~127.0.0.1~web-0.shop~shop.svc.cluster.local', name: 'web', namespace: 'shop', labels: { app: 'web' }, serviceAccount: 'web', address: '127.0.0.1', namedPorts: { web: 8080 }, ports: [8080, 9091], meshPorts: { '8080': 21001 }, tlsMode: 'istio', locality: '', weight: 1 });
  const snap = reg.snapshot(load(CONFIG));
  const web = snap.services.find((s) => s.hostname === 'web.shop.svc.cluster.local')!;
  assert.deepEqual(web.ports.map((p) => [p.port, p.protocol]), [[80, 'HTTP'], [9090, 'HTTP']]);
  assert.match(web.address, /^240\.240\.\d+\.\d+$/);
  assert.deepEqual(web.exportTo, ['.']);
  const eps80 = snap.endpoints.get(web.hostname)!.get(80)!;
  // Explicit mode: the mesh reaches the workload through its sidecar's inbound port.
  assert.deepEqual(eps80.map((e) => [e.address, e.port, e.tlsMode]), [['127.0.0.1', 21001, 'istio'], ['10.1.0.5', 8080, 'istio']]);
  // 9091 has no sidecar inbound port: not reachable through the mesh; the VM declares no 9091.
  assert.deepEqual(snap.endpoints.get(web.hostname)!.get(9090), []);
  const ext = snap.services.find((s) => s.hostname === 'api.example.com')!;
  assert.equal(ext.resolution, 'DNS');
  assert.equal(ext.meshExternal, true);
  assert.deepEqual(snap.endpoints.get('api.example.com')!.get(443)!.map((e) => `${e.address}:${e.port}`), ['api.example.com:443']);
  const db = snap.services.find((s) => s.hostname === 'db.internal')!;
  assert.equal(db.address, '192.0.2.10');
  assert.deepEqual(snap.endpoints.get('db.internal')!.get(5432)!.map((e) => `${e.address}:${e.port}`), ['192.0.2.11:6432']);
  assert.equal(reg.removeWorkload('sidecar~127.0.0.1~web-0.shop~shop.svc.cluster.local'), true);
  assert.deepEqual(reg.snapshot(load(CONFIG)).endpoints.get(web.hostname)!.get(80)!.map((e) => e.address), ['10.1.0.5']);
});

test('VIPs are stable for the same host across restarts (state directory)', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-vip-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const a = new VipAllocator(dir);
  const x = a.allocate('default/x');
  const y = a.allocate('default/y');
  assert.notEqual(x, y);
  const b = new VipAllocator(dir);
  assert.equal(b.allocate('default/y'), y);
  assert.equal(b.allocate('default/x'), x);
  const z = b.allocate('default/z');
  assert.ok(![x, y].includes(z));
  fs.writeFileSync(path.join(dir, 'vips.json'), '{not json');
  assert.throws(() => new VipAllocator(dir), /cannot read allocated VIPs/);
});

test('auto-registration: sidecars are mTLS endpoints unless labelled security.istio.io/tlsMode: disabled', async () => {
  const { workloadFromProxy } = await import('./auto-registration.ts');
  const { parseNode } = await import('../model/proxy.ts');
  const node = (labels: Record<string, string>) => parseNode({ id: 'sidecar~127.0.0.1~a-0.ns~ns.svc.cluster.local', metadata: { NAMESPACE: 'ns', LABELS: labels, INSTANCE_IPS: '127.0.0.1' } });
  assert.equal(workloadFromProxy(node({ app: 'a' }))?.tlsMode, 'istio');
  assert.equal(workloadFromProxy(node({ app: 'a', 'security.istio.io/tlsMode': 'disabled' }))?.tlsMode, 'disabled');
  assert.equal(workloadFromProxy(parseNode({ id: 'x', metadata: { NAMESPACE: 'ns' } })), undefined);
});
