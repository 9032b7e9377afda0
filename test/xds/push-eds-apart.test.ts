// PILOT_ENABLE_EDS_DEBOUNCE off: an endpoint push goes on its own, on the configuration in force.
// A config push that starts while it is still being written (more proxies than one write turn
// reaches) takes over: the proxies the endpoint push had not reached yet get both changes in one
// push, those it had reached get the config change after it. Real gRPC streams, an in-process
// control plane.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryConfigStore } from '../../src/config/index.ts';
import { ENDPOINT_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { AdsClient, type AdsResponse } from '../../src/xds/ads-client.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { until } from '../helpers/wait.ts';
import { parseYaml } from './fixtures.ts';

/** A push reaches them in several write turns (CHUNK in discovery-server.ts), so another can start mid-write. */
const WATCHERS = 200;
const SVC1 = 'outbound|8080||svc-1.ns-0.svc.cluster.local';
const SERVICES = [0, 1].map((i) => `apiVersion: v1\nkind: Service\nmetadata: { name: svc-${i}, namespace: ns-0 }\nspec: { selector: { app: svc-${i} }, ports: [{ name: http, port: 8080 }] }`).join('\n---\n');
const vs = (timeout: string) => parseYaml(`apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: svc-0, namespace: ns-0 }\nspec:\n  hosts: [svc-0]\n  http: [{ route: [{ destination: { host: svc-0 } }], timeout: ${timeout} }]\n`);

const node = (id: string, app: number, ip?: string): EnvoyJson => ({
  id,
  metadata: { NAMESPACE: 'ns-0', LABELS: { app: `svc-${app}` }, INTERCEPTION_MODE: 'REDIRECT', ...(ip ? { INSTANCE_IPS: ip, RIG_WORKLOAD_PORTS: [{ port: 8080, name: 'http' }] } : {}) },
});

const last = (c: AdsClient, type: string): AdsResponse | undefined => c.responses.filter((r) => r.type_url === type).at(-1);
const timeoutOf = (c: AdsClient) => ((last(c, ROUTE_TYPE)?.resources[0]?.virtual_hosts as EnvoyJson[] | undefined)?.find((v) => v.name === 'svc-0.ns-0.svc.cluster.local:8080')?.routes as EnvoyJson[] | undefined)?.[0]?.route as EnvoyJson | undefined;
const svc1Endpoints = (c: AdsClient) => JSON.stringify(last(c, ENDPOINT_TYPE)?.resources.find((e) => e.cluster_name === SVC1)?.endpoints ?? []);

test('a config push that takes over an endpoint push being written also covers what the endpoint push had not reached', async (t) => {
  const store = new MemoryConfigStore();
  store.apply([...parseYaml(SERVICES), ...vs('10s')]);
  const cp = await startControlPlane({ store, xdsPort: 0, monitoringPort: 0, debounceMs: 0, debounceMaxMs: 0, edsDebounce: false, workloadGraceMs: 60_000 });
  const addr = `127.0.0.1:${cp.ports.xds}`;
  const clients: AdsClient[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    await cp.stop();
  });
  const connect = (n: EnvoyJson, subscribe: boolean) => {
    const c = new AdsClient(addr, n);
    clients.push(c);
    c.onResponse = (r) => c.ack(r, r.type_url === ROUTE_TYPE ? ['8080'] : r.type_url === ENDPOINT_TYPE ? [SVC1] : undefined);
    if (subscribe) {
      c.subscribe(ROUTE_TYPE, ['8080']);
      c.subscribe(ENDPOINT_TYPE, [SVC1]);
    } else c.subscribe(ROUTE_TYPE, ['8080']);
    return c;
  };
  // Two replicas of svc-1 (the same service account: removing one changes EDS only).
  connect(node('sidecar~10.0.0.7~svc-1-a.ns-0~ns-0.svc.cluster.local', 1, '10.0.0.7'), false);
  connect(node('sidecar~10.0.0.8~svc-1-b.ns-0~ns-0.svc.cluster.local', 1, '10.0.0.8'), false);
  const watchers = Array.from({ length: WATCHERS }, (_, i) => connect(node(`sidecar~10.1.0.${i}~w-${i}.ns-0~ns-0.svc.cluster.local`, 0), true));
  await until('every watcher has the routes and both svc-1 endpoints', () => watchers.every((w) => timeoutOf(w)?.timeout === '10s' && svc1Endpoints(w).includes('10.0.0.7') && svc1Endpoints(w).includes('10.0.0.8')));

  // A replica leaving (pushed at once, on its own), then a route change (pushed after a zero
  // debounce): the route push starts while the endpoint push is still being written. Both are due
  // after one timer tick; real timers could put the second a millisecond later, after the endpoint
  // push's last write turn, so the tick is driven here: both fire in it, in order.
  t.mock.timers.enable({ apis: ['setTimeout'] });
  cp.discovery.forgetWorkload('sidecar~10.0.0.8~svc-1-b.ns-0~ns-0.svc.cluster.local');
  store.apply(vs('3s'));
  t.mock.timers.tick(1);
  t.mock.timers.reset();

  await until('every watcher has the new routes and the replica gone', () => watchers.every((w) => timeoutOf(w)?.timeout === '3s' && !svc1Endpoints(w).includes('10.0.0.8')), 15_000);
  const sameVersion = watchers.filter((w) => last(w, ROUTE_TYPE)!.version_info === last(w, ENDPOINT_TYPE)!.version_info).length;
  assert.ok(sameVersion > 0 && sameVersion < WATCHERS, `the endpoint push reached some watchers, the config push that took over brought the rest both (${sameVersion} of ${WATCHERS} got both in one push)`);
  assert.deepEqual(cp.discovery.lastPush?.types, ['eds', 'rds']);
});
