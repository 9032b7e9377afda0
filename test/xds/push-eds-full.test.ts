// PILOT_ENABLE_EDS_DEBOUNCE off: istiod pushes an endpoint change at once only when it is not a full
// push. A change of a service's service accounts (the SANs its clients verify, in CDS) is one: it
// waits for the debounced push, while other services' endpoint changes, of the same turn or later,
// still go at once. Real gRPC streams, an in-process control plane.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryConfigStore } from '../../src/config/index.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { AdsClient, type AdsResponse } from '../../src/xds/ads-client.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { until } from '../helpers/wait.ts';
import { parseYaml } from './fixtures.ts';

/** Long enough for the endpoint pushes at once to arrive before the debounced one. */
const DEBOUNCE_MS = 2000;
const cluster = (app: number) => `outbound|8080||svc-${app}.ns-0.svc.cluster.local`;
const EDS = [cluster(0), cluster(1)];
// Each service's first endpoint is a WorkloadEntry of service account `default`, as the sidecars below.
const CONFIG = [0, 1]
  .map(
    (i) => `apiVersion: v1\nkind: Service\nmetadata: { name: svc-${i}, namespace: ns-0 }\nspec: { selector: { app: svc-${i} }, ports: [{ name: http, port: 8080 }] }
---
apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: { name: svc-${i}-vm, namespace: ns-0 }\nspec: { address: 10.0.${i}.1, serviceAccount: default, labels: { app: svc-${i}, security.istio.io/tlsMode: istio } }`,
  )
  .join('\n---\n');

const sidecar = (app: number, ip: string, sa: string): EnvoyJson => ({
  id: `sidecar~${ip}~svc-${app}-${ip}.ns-0~ns-0.svc.cluster.local`,
  metadata: { NAMESPACE: 'ns-0', LABELS: { app: `svc-${app}` }, SERVICE_ACCOUNT: sa, INSTANCE_IPS: ip, INTERCEPTION_MODE: 'REDIRECT', RIG_WORKLOAD_PORTS: [{ port: 8080, name: 'http' }] },
});

const last = (c: AdsClient, type: string): AdsResponse | undefined => c.responses.filter((r) => r.type_url === type).at(-1);
const endpointsOf = (c: AdsClient, app: number) => JSON.stringify(c.responses.filter((r) => r.type_url === ENDPOINT_TYPE && r.resources.some((e) => e.cluster_name === cluster(app))).at(-1)?.resources.find((e) => e.cluster_name === cluster(app))?.endpoints ?? []);
const clusterOf = (c: AdsClient, app: number) => JSON.stringify(last(c, CLUSTER_TYPE)?.resources.find((r) => r.name === cluster(app)) ?? {});

test('EDS debounce off: an endpoint change of service accounts waits for the debounced push (with CDS); other endpoint changes go at once', async (t) => {
  const store = new MemoryConfigStore();
  store.apply(parseYaml(CONFIG));
  const cp = await startControlPlane({ store, xdsPort: 0, monitoringPort: 0, debounceMs: DEBOUNCE_MS, debounceMaxMs: 10 * DEBOUNCE_MS, edsDebounce: false, workloadGraceMs: 60_000 });
  const addr = `127.0.0.1:${cp.ports.xds}`;
  const clients: AdsClient[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    await cp.stop();
  });
  /** A proxy's stream opens (and registers it) with its first request. */
  const connect = (n: EnvoyJson) => {
    const c = new AdsClient(addr, n);
    clients.push(c);
    c.subscribe(CLUSTER_TYPE);
    return c;
  };
  const watcher = connect({ id: 'sidecar~10.9.0.1~w.ns-0~ns-0.svc.cluster.local', metadata: { NAMESPACE: 'ns-0', LABELS: { app: 'w' }, INTERCEPTION_MODE: 'REDIRECT' } });
  watcher.onResponse = (r) => watcher.ack(r, r.type_url === ENDPOINT_TYPE ? EDS : undefined);
  watcher.subscribe(ENDPOINT_TYPE, EDS);
  await until('the watcher has both clusters and their first endpoints', () => endpointsOf(watcher, 0).includes('10.0.0.1') && endpointsOf(watcher, 1).includes('10.0.1.1') && clusterOf(watcher, 1).includes('/sa/default'));
  assert.ok(!clusterOf(watcher, 1).includes('/sa/other'));

  // In one turn: svc-1 gets a replica of another service account (its SANs change: a full push),
  // svc-0 a replica of the same one (its endpoints only).
  const mark = watcher.responses.length;
  connect(sidecar(1, '10.0.1.2', 'other'));
  connect(sidecar(0, '10.0.0.2', 'default'));
  await until('the svc-0 replica pushed', () => endpointsOf(watcher, 0).includes('10.0.0.2'));
  assert.ok(!endpointsOf(watcher, 1).includes('10.0.1.2') && !clusterOf(watcher, 1).includes('/sa/other'), 'the svc-1 replica waits for the debounced push');
  const atOnce = watcher.responses.slice(mark);
  assert.deepEqual(
    atOnce.map((r) => [r.type_url, r.resources.map((e) => e.cluster_name)]),
    [[ENDPOINT_TYPE, [cluster(0)]]],
    'the push at once is the EDS of svc-0 alone',
  );

  // While it waits, another change of endpoints only still goes at once.
  cp.discovery.forgetWorkload(sidecar(0, '10.0.0.2', 'default').id as string);
  await until('the svc-0 replica removed', () => !endpointsOf(watcher, 0).includes('10.0.0.2'));
  assert.ok(!endpointsOf(watcher, 1).includes('10.0.1.2'), 'the svc-1 replica still waits');

  await until('the debounced push', () => endpointsOf(watcher, 1).includes('10.0.1.2') && clusterOf(watcher, 1).includes('/sa/other'), 4 * DEBOUNCE_MS);
  const cds = last(watcher, CLUSTER_TYPE)!;
  const eds = watcher.responses.filter((r) => r.type_url === ENDPOINT_TYPE && r.resources.some((e) => e.cluster_name === cluster(1))).at(-1)!;
  assert.equal(cds.version_info, eds.version_info, 'one push brings svc-1 its new SANs and its endpoint');
  assert.deepEqual(cp.discovery.lastPush?.types, ['cds', 'eds']);
  assert.equal(cp.discovery.lastPush?.edsHosts, 1, 'EDS of svc-1 only');
});
