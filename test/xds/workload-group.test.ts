// WorkloadGroup auto-registration over real ADS: a proxy that connects with AUTO_REGISTER_GROUP
// (Istio's metadata; WORKLOAD_GROUP is accepted too) becomes an endpoint built from the group's
// template (labels, service account, ports, locality), leaves after the grace period, and waits
// for its group when the group does not exist yet; a proxy whose agent runs a readiness probe is
// an endpoint only while its last health report (istio.io/health) said healthy. The proxies connect
// in plaintext (no verified identity): the control plane runs as Istio's with
// ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY=false.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryConfigStore } from '../../src/config/index.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, HEALTH_INFO_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { AdsClient } from '../../src/xds/ads-client.ts';
import type { AdsResponse } from '../../src/xds/ads-client.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { until } from '../helpers/wait.ts';
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
const PLAIN_ID = 'sidecar~198.18.0.9~other-0.vms~vms.svc.cluster.local';

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
  const cp = await startControlPlane({ store, xdsPort: 0, monitoringPort: 0, debounceMs: 10, debounceMaxMs: 100, workloadGraceMs: 100, validateWorkloadEntryIdentity: false });
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
  return { store, cp, client, watcher, first };
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

test('a health-checked workload is an endpoint only while its agent last reported it healthy (istio.io/health)', async (t) => {
  const group = GROUP + '  probe: { periodSeconds: 1, exec: { command: [test, -f, /tmp/ready] } }\n';
  const { client, watcher } = await start(t, `${SERVICE}---\n${group}`);
  const node = vmNode('10.20.0.7');
  // The agent runs the probe: its ProxyConfig carries it (Istio's health-checks-enabled WorkloadEntry).
  (node.metadata as EnvoyJson).PROXY_CONFIG = { readinessProbe: { exec: { command: ['test', '-f', '/tmp/ready'] } } };
  const vm = client(node);
  vm.subscribe(CLUSTER_TYPE);
  await vm.next(CLUSTER_TYPE);
  // Registered, not yet reported healthy: not an endpoint.
  await assert.rejects(watcher.next(ENDPOINT_TYPE, (r) => endpointsOf(r).length > 0, 400), /no .* response within/);
  vm.send({ type_url: HEALTH_INFO_TYPE });
  const up = await watcher.next(ENDPOINT_TYPE, (r) => endpointsOf(r).length > 0);
  assert.deepEqual(endpointsOf(up).map((e) => [((e.endpoint as EnvoyJson).address as EnvoyJson).socket_address, e.health_status]), [[{ address: '10.20.0.7', port_value: 8080 }, 'HEALTHY']]);
  watcher.ack(up, [CLUSTER]);
  vm.send({ type_url: HEALTH_INFO_TYPE, error_detail: { code: 13, message: 'command "test -f /tmp/ready" exited with status 1' } });
  const down = await watcher.next(ENDPOINT_TYPE, (r) => endpointsOf(r).length === 0);
  assert.equal(down.resources[0].cluster_name, CLUSTER);
});

test('a proxy that runs no probe counts as healthy even when its group has one; a plain auto-registered proxy with a probe follows its reports', async (t) => {
  const group = GROUP + '  probe: { httpGet: { port: 8080, path: /ready } }\n';
  const { cp, client, watcher } = await start(t, `${SERVICE}---\n${group}`);
  const vm = client(vmNode('10.20.0.8'));
  vm.subscribe(CLUSTER_TYPE);
  const up = await watcher.next(ENDPOINT_TYPE, (r) => endpointsOf(r).length > 0);
  watcher.ack(up, [CLUSTER]);
  // Health reports only count for workloads whose agent declared a probe.
  vm.send({ type_url: HEALTH_INFO_TYPE, error_detail: { code: 13, message: 'down' } });
  const plain = client({ id: PLAIN_ID, metadata: { NAMESPACE: 'vms', LABELS: { app: 'vm-app' }, INSTANCE_IPS: '198.18.0.9', INTERCEPTION_MODE: 'REDIRECT', RIG_WORKLOAD_PORTS: [{ port: 8080, name: 'http' }], PROXY_CONFIG: { readinessProbe: { tcpSocket: { port: 80 } } } } });
  plain.subscribe(CLUSTER_TYPE);
  await plain.next(CLUSTER_TYPE);
  // Auto-registered without a group, with a probe (a `rig up` replica): unhealthy until it reports healthy.
  await until('the plain proxy registered', () => cp.discovery.push.endpointsOf('vm-app.vms.svc.cluster.local', 80).some((e) => e.address === '198.18.0.9'));
  assert.equal(cp.discovery.push.endpointsOf('vm-app.vms.svc.cluster.local', 80).find((e) => e.address === '198.18.0.9')!.healthy, false);
  plain.send({ type_url: HEALTH_INFO_TYPE });
  const both = await watcher.next(ENDPOINT_TYPE, (r) => endpointsOf(r).length === 2);
  assert.deepEqual(endpointsOf(both).map((e) => (((e.endpoint as EnvoyJson).address as EnvoyJson).socket_address as EnvoyJson).address).sort(), ['10.20.0.8', '198.18.0.9']);
  assert.deepEqual([cp.discovery.workloadHealth(PLAIN_ID)?.healthy, cp.discovery.workloadHealth(PLAIN_ID)?.message], [true, '']);
  // The VM's report was received without effect, and a push after it still has both endpoints.
  const cons = () => [...cp.discovery.connections.values()];
  await until('the report received', () => cons().some((c) => c.health?.healthy === false));
  const before = cp.discovery.push.version;
  cp.discovery.requestPush('test', 'endpoints');
  await until('a new push context', () => cp.discovery.push.version !== before);
  assert.deepEqual(cp.discovery.push.endpointsOf('vm-app.vms.svc.cluster.local', 80).map((e) => [e.address, e.healthy]).sort(), [['10.20.0.8', true], ['198.18.0.9', true]]);
  watcher.ack(both, [CLUSTER]);
  // Its runtime forgets it (stopping it): out at once, no grace period.
  cp.discovery.forgetWorkload(PLAIN_ID);
  const gone = await watcher.next(ENDPOINT_TYPE, (r) => endpointsOf(r).length === 1);
  assert.equal((((endpointsOf(gone)[0].endpoint as EnvoyJson).address as EnvoyJson).socket_address as EnvoyJson).address, '10.20.0.8');
});
