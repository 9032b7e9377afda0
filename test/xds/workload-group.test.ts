// WorkloadGroup auto-registration over real ADS: a proxy that connects with AUTO_REGISTER_GROUP
// (Istio's metadata; WORKLOAD_GROUP is accepted too) becomes an endpoint built from the group's
// template (labels, service account, ports, locality), leaves after the grace period, and waits
// for its group when the group does not exist yet; the group's probe (run by the control plane)
// decides its health.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { MemoryConfigStore } from '../../src/config/index.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { AdsClient } from '../../src/xds/ads-client.ts';
import type { AdsResponse } from '../../src/xds/ads-client.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { parseYaml } from './fixtures.ts';

const SERVICE = `apiVersion: v1
kind: Service
metadata: { name: vm-app, namespace: vms }
spec: { selector: { app: vm-app }, ports: [{ name: http, port: 80, targetPort: http }] }
`;

const GROUP = `apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: vm-app, namespace: vms }
spec:
  metadata: { labels: { app: vm-app, version: v1 } }
  template: { serviceAccount: vm-sa, ports: { http: 8080 }, locality: us-east/zone1, labels: { version: v0, tier: backend } }
`;

const CLUSTER = 'outbound|80||vm-app.vms.svc.cluster.local';

function vmNode(ip: string, groupKey = 'AUTO_REGISTER_GROUP'): EnvoyJson {
  return { id: `sidecar~${ip}~vm-1.vms~vms.svc.cluster.local`, metadata: { NAMESPACE: 'vms', INSTANCE_IPS: ip, INTERCEPTION_MODE: 'REDIRECT', [groupKey]: 'vm-app' } };
}

const watcherNode: EnvoyJson = { id: 'sidecar~198.18.0.2~client-0.vms~vms.svc.cluster.local', metadata: { NAMESPACE: 'vms', LABELS: { app: 'client' }, INSTANCE_IPS: '198.18.0.2', INTERCEPTION_MODE: 'REDIRECT' } };

function endpointsOf(r: AdsResponse): EnvoyJson[] {
  return ((r.resources[0]?.endpoints as EnvoyJson[] | undefined) ?? []).flatMap((g) => (g.lb_endpoints as EnvoyJson[]).map((e) => ({ ...e, locality: g.locality })));
}

async function start(t: { after(fn: () => unknown): void }, yaml: string) {
  const store = new MemoryConfigStore();
  store.apply(parseYaml(yaml));
  const cp = await startControlPlane({ store, xdsPort: 0, monitoringPort: 0, debounceMs: 10, debounceMaxMs: 100, workloadGraceMs: 100 });
  const clients: AdsClient[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    await cp.stop();
  });
  const client = (n: EnvoyJson) => {
    const c = new AdsClient(`127.0.0.1:${cp.ports.xds}`, n);
    clients.push(c);
    return c;
  };
  const watcher = client(watcherNode);
  watcher.subscribe(ENDPOINT_TYPE, [CLUSTER]);
  const first = await watcher.next(ENDPOINT_TYPE);
  watcher.ack(first, [CLUSTER]);
  return { store, client, watcher, first };
}

test('a proxy naming its WorkloadGroup registers from the template and leaves after the grace period', async (t) => {
  const { client, watcher, first } = await start(t, `${SERVICE}---\n${GROUP}`);
  assert.deepEqual(endpointsOf(first), []);
  const vm = client(vmNode('10.20.0.5'));
  vm.subscribe(CLUSTER_TYPE);
  const withEp = await watcher.next(ENDPOINT_TYPE, (r) => endpointsOf(r).length > 0);
  const [ep] = endpointsOf(withEp);
  assert.deepEqual((((ep.endpoint as EnvoyJson).address as EnvoyJson).socket_address as EnvoyJson), { address: '10.20.0.5', port_value: 8080 });
  assert.deepEqual(ep.locality, { region: 'us-east', zone: 'zone1' });
  // Labels: the group's metadata beats the template (version v1, not v0); the workload is named after the group.
  assert.equal(((ep.metadata as EnvoyJson).filter_metadata as EnvoyJson).istio && (((ep.metadata as EnvoyJson).filter_metadata as EnvoyJson).istio as EnvoyJson).workload, 'vm-app;vms;vm-app;v1;');
  watcher.ack(withEp, [CLUSTER]);
  // The template's service account is the identity clients verify.
  watcher.subscribe(CLUSTER_TYPE);
  const cds = await watcher.next(CLUSTER_TYPE);
  const cluster = cds.resources.find((c) => c.name === CLUSTER)!;
  assert.match(JSON.stringify(cluster.transport_socket_matches), /spiffe:\/\/cluster\.local\/ns\/vms\/sa\/vm-sa/);
  watcher.ack(cds);
  vm.close();
  const gone = await watcher.next(ENDPOINT_TYPE, (r) => r.nonce !== withEp.nonce && endpointsOf(r).length === 0);
  assert.equal(gone.resources[0].cluster_name, CLUSTER);
});

test('a proxy whose WorkloadGroup does not exist yet is registered once the group is created (WORKLOAD_GROUP alias)', async (t) => {
  const { store, client, watcher } = await start(t, SERVICE);
  const vm = client(vmNode('10.20.0.6', 'WORKLOAD_GROUP'));
  vm.subscribe(CLUSTER_TYPE);
  await vm.next(CLUSTER_TYPE);
  await assert.rejects(watcher.next(ENDPOINT_TYPE, (r) => endpointsOf(r).length > 0, 400), /no .* response within/);
  store.apply(parseYaml(GROUP));
  const withEp = await watcher.next(ENDPOINT_TYPE, (r) => endpointsOf(r).length > 0);
  assert.equal((((endpointsOf(withEp)[0].endpoint as EnvoyJson).address as EnvoyJson).socket_address as EnvoyJson).address, '10.20.0.6');
});

test('the WorkloadGroup probe decides the health of registered workloads', async (t) => {
  let status = 200;
  const app = http.createServer((req, res) => {
    res.writeHead(req.url === '/ready' && req.headers['x-probe'] === 'yes' ? status : 404);
    res.end();
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => app.close(() => r())));
  const port = (app.address() as { port: number }).port;
  const group = GROUP.replace('ports: { http: 8080 }', `ports: { http: ${port} }`) + `  probe: { periodSeconds: 1, failureThreshold: 1, httpGet: { path: /ready, port: ${port}, httpHeaders: [{ name: x-probe, value: "yes" }] } }\n`;
  const { client, watcher } = await start(t, `${SERVICE}---\n${group}`);
  const vm = client(vmNode('127.0.0.1'));
  vm.subscribe(CLUSTER_TYPE);
  const health = (r: AdsResponse) => endpointsOf(r).map((e) => e.health_status)[0];
  // Registered but not yet probed: unhealthy; then the probe passes.
  const first = await watcher.next(ENDPOINT_TYPE, (r) => endpointsOf(r).length > 0);
  watcher.ack(first, [CLUSTER]);
  const healthy = health(first) === 'HEALTHY' ? first : await watcher.next(ENDPOINT_TYPE, (r) => health(r) === 'HEALTHY');
  assert.equal(health(healthy), 'HEALTHY');
  watcher.ack(healthy, [CLUSTER]);
  status = 503;
  const down = await watcher.next(ENDPOINT_TYPE, (r) => health(r) === 'UNHEALTHY');
  assert.equal(health(down), 'UNHEALTHY');
});
