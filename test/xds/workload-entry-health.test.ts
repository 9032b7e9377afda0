// Health-checked WorkloadEntries over real ADS, as Istio: a proxy started with WORKLOAD_ENTRY stands
// for an existing entry (it is not registered a second time from its own metadata); when the entry
// is annotated proxy.istio.io/health-checks-enabled: "true" it is an endpoint only while that
// proxy's last istio.io/health report said healthy, and it loses that health a grace period after
// the proxy is gone. Without the annotation the reports have no effect. These proxies connect in
// plaintext (no verified identity), so the control plane runs as Istio's with
// ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY=false; workload-entry-identity.test.ts checks ownership.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { MemoryConfigStore } from '../../src/config/index.ts';
import { ENDPOINT_TYPE, HEALTH_INFO_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { AdsClient, type AdsResponse } from '../../src/xds/ads-client.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { until } from '../helpers/wait.ts';
import { parseYaml } from './fixtures.ts';

const CLUSTER = 'outbound|80||vm-app.vms.svc.cluster.local';

const config = (annotation: string) => `apiVersion: v1
kind: Service
metadata: { name: vm-app, namespace: vms }
spec: { selector: { app: vm-app }, ports: [{ name: http, port: 80, targetPort: http }] }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: vm-1, namespace: vms${annotation} }
spec: { address: 10.30.0.5, labels: { app: vm-app }, ports: { http: 8080 }, serviceAccount: vm-app }
`;

async function start(t: TestContext, yaml: string) {
  const store = new MemoryConfigStore();
  store.apply(parseYaml(yaml));
  const cp = await startControlPlane({ store, xdsPort: 0, monitoringPort: 0, debounceMs: 10, debounceMaxMs: 100, workloadGraceMs: 100, validateWorkloadEntryIdentity: false });
  t.after(() => cp.stop());
  const client = (node: EnvoyJson) => {
    const c = new AdsClient(`127.0.0.1:${cp.ports.xds}`, node);
    t.after(() => c.close());
    return c;
  };
  const watcher = client({ id: 'sidecar~198.18.0.2~watcher-0.vms~vms.svc.cluster.local', metadata: { NAMESPACE: 'vms', INTERCEPTION_MODE: 'REDIRECT' } });
  watcher.onResponse = (r) => watcher.ack(r, [CLUSTER]);
  watcher.subscribe(ENDPOINT_TYPE, [CLUSTER]);
  let seen = 0;
  /** Addresses of the first EDS response since the last one returned that has `want` endpoints. */
  const endpoints = async (want: number) => {
    const r = await watcher.next(ENDPOINT_TYPE, (x) => addresses(x).length === want, 5000, seen);
    seen = watcher.responses.indexOf(r) + 1;
    return addresses(r);
  };
  // The VM's proxy: same address and labels as its entry, which it names.
  const vm = () => client({ id: 'sidecar~10.30.0.5~vm-1.vms~vms.svc.cluster.local', metadata: { NAMESPACE: 'vms', LABELS: { app: 'vm-app' }, INSTANCE_IPS: '10.30.0.5', INTERCEPTION_MODE: 'REDIRECT', RIG_WORKLOAD_PORTS: [{ port: 8080, name: 'http' }], WORKLOAD_ENTRY: 'vm-1' } });
  return { cp, endpoints, vm };
}

function addresses(r: AdsResponse): string[] {
  return ((r.resources[0]?.endpoints as EnvoyJson[] | undefined) ?? []).flatMap((g) => (g.lb_endpoints as EnvoyJson[]).map((e) => {
    const a = ((e.endpoint as EnvoyJson).address as EnvoyJson).socket_address as EnvoyJson;
    return `${String(a.address)}:${String(a.port_value)}`;
  }));
}

test('an annotated WorkloadEntry follows its proxy\'s reports and loses its health when the proxy is gone', async (t) => {
  const { endpoints, vm } = await start(t, config(', annotations: { proxy.istio.io/health-checks-enabled: "true" }'));
  // No report yet: unhealthy, not an endpoint.
  assert.deepEqual(await endpoints(0), []);
  const proxy = vm();
  proxy.send({ type_url: HEALTH_INFO_TYPE });
  // One endpoint, the entry's: the proxy is not registered again from its metadata.
  assert.deepEqual(await endpoints(1), ['10.30.0.5:8080']);
  proxy.send({ type_url: HEALTH_INFO_TYPE, error_detail: { code: 13, message: 'status 503' } });
  assert.deepEqual(await endpoints(0), []);
  proxy.send({ type_url: HEALTH_INFO_TYPE });
  assert.deepEqual(await endpoints(1), ['10.30.0.5:8080']);
  proxy.close();
  assert.deepEqual(await endpoints(0), []);
});

test('without the annotation the entry is always an endpoint and its proxy\'s reports are ignored', async (t) => {
  const { cp, endpoints, vm } = await start(t, config(''));
  assert.deepEqual(await endpoints(1), ['10.30.0.5:8080']);
  const proxy = vm();
  proxy.send({ type_url: HEALTH_INFO_TYPE, error_detail: { code: 13, message: 'down' } });
  await until('the report handled', () => [...cp.discovery.connections.values()].some((c) => c.healthIgnored));
  const before = cp.discovery.push.version;
  cp.discovery.requestPush('test', 'endpoints');
  await until('a new push context', () => cp.discovery.push.version !== before);
  assert.deepEqual(cp.discovery.push.endpointsOf('vm-app.vms.svc.cluster.local', 80).map((e) => `${e.address}:${e.port}/${e.healthy}`), ['10.30.0.5:8080/true']);
});
