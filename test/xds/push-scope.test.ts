// Incremental pushes over real gRPC: a change of endpoints alone sends EDS for the changed
// clusters only; CDS follows only when a cluster reads the endpoints (a new service account
// changes the SANs of auto mTLS); listeners and routes are not resent.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryConfigStore } from '../../src/config/index.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { AdsClient } from '../../src/xds/ads-client.ts';
import type { AdsResponse } from '../../src/xds/ads-client.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { parseYaml } from './fixtures.ts';

const SERVICES = ['productpage', 'reviews', 'ratings']
  .map((app) => `apiVersion: v1\nkind: Service\nmetadata: { name: ${app}, namespace: default }\nspec: { selector: { app: ${app} }, ports: [{ name: http, port: 9080 }] }`)
  .join('\n---\n');

function node(app: string, version: string, sa: string, inbound: number): EnvoyJson {
  return {
    id: `sidecar~127.0.0.1~${app}-${version}-0.default~default.svc.cluster.local`,
    metadata: {
      NAMESPACE: 'default',
      LABELS: { app, version },
      SERVICE_ACCOUNT: sa,
      INSTANCE_IPS: '127.0.0.1',
      WORKLOAD_NAME: `${app}-${version}`,
      INTERCEPTION_MODE: 'NONE',
      RIG_WORKLOAD_PORTS: [{ port: 9080, name: 'http' }],
      RIG_EXPLICIT: { bind: '127.0.0.1', outboundPort: inbound - 1, inboundPorts: { '9080': inbound }, appPorts: { '9080': inbound + 1 } },
    },
  };
}

const cluster = (app: string) => `outbound|9080||${app}.default.svc.cluster.local`;
const EDS_NAMES = ['productpage', 'reviews', 'ratings'].map(cluster);

/** What the control plane's last push regenerated (/debug/push_status). */
async function lastPush(port: number): Promise<{ types: string[]; edsHosts?: number }> {
  const status = (await (await fetch(`http://127.0.0.1:${port}/debug/push_status`)).json()) as { last: { types: string[]; edsHosts?: number } };
  return { types: status.last.types, edsHosts: status.last.edsHosts };
}

/** Waits until no response arrived for `quietMs` (the pushes of earlier changes are over). */
async function settle(c: AdsClient, quietMs = 400): Promise<void> {
  for (let n = -1; n !== c.responses.length; ) {
    n = c.responses.length;
    await new Promise((r) => setTimeout(r, quietMs));
  }
}

test('an endpoint change pushes EDS of the changed cluster only; a new service account adds CDS; LDS and RDS are not resent', async (t) => {
  const store = new MemoryConfigStore();
  store.apply(parseYaml(SERVICES));
  const cp = await startControlPlane({ store, xdsPort: 0, monitoringPort: 0, debounceMs: 10, debounceMaxMs: 100, workloadGraceMs: 50 });
  const addr = `127.0.0.1:${cp.ports.xds}`;
  const clients: AdsClient[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    await cp.stop();
  });
  const connect = (n: EnvoyJson) => {
    const c = new AdsClient(addr, n);
    clients.push(c);
    return c;
  };
  const watcher = connect(node('productpage', 'v1', 'bookinfo-productpage', 21101));
  watcher.onResponse = (r: AdsResponse) => watcher.ack(r, r.type_url === ENDPOINT_TYPE ? EDS_NAMES : r.type_url === ROUTE_TYPE ? ['http_proxy'] : undefined);
  watcher.subscribe(CLUSTER_TYPE);
  watcher.subscribe(LISTENER_TYPE);
  watcher.subscribe(ROUTE_TYPE, ['http_proxy']);
  watcher.subscribe(ENDPOINT_TYPE, EDS_NAMES);
  await watcher.next(ROUTE_TYPE);
  await settle(watcher);

  // First reviews endpoint: a new service account for the reviews cluster (its SANs change).
  let seen = watcher.responses.length;
  const v1 = connect(node('reviews', 'v1', 'bookinfo-reviews', 21111));
  v1.subscribe(CLUSTER_TYPE);
  await watcher.next(ENDPOINT_TYPE, (r) => r.resources.some((e) => e.cluster_name === cluster('reviews') && e.endpoints !== undefined), 5000, seen);
  await settle(watcher);
  let pushed = watcher.responses.slice(seen);
  assert.deepEqual([...new Set(pushed.map((r) => r.type_url))].sort(), [CLUSTER_TYPE, ENDPOINT_TYPE].sort());
  const cds = pushed.find((r) => r.type_url === CLUSTER_TYPE)!;
  const reviews = cds.resources.find((c) => c.name === cluster('reviews'))!;
  assert.match(JSON.stringify(reviews), /spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-reviews/);
  assert.deepEqual(await lastPush(cp.ports.monitoring), { types: ['cds', 'eds'], edsHosts: 1 });

  // A second reviews endpoint with the same service account: EDS for reviews alone.
  seen = watcher.responses.length;
  const v2 = connect(node('reviews', 'v2', 'bookinfo-reviews', 21121));
  v2.subscribe(CLUSTER_TYPE);
  const two = await watcher.next(ENDPOINT_TYPE, (r) => JSON.stringify(r.resources).includes('21121'), 5000, seen);
  await settle(watcher);
  pushed = watcher.responses.slice(seen);
  assert.deepEqual(pushed.map((r) => r.type_url), [ENDPOINT_TYPE]);
  assert.deepEqual(two.resources.map((r) => r.cluster_name), [cluster('reviews')]);
  const ports = (((two.resources[0].endpoints as EnvoyJson[])[0].lb_endpoints as EnvoyJson[]).map((e) => (((e.endpoint as EnvoyJson).address as EnvoyJson).socket_address as EnvoyJson).port_value)).sort();
  assert.deepEqual(ports, [21111, 21121]);
  // Nothing but the reviews assignments was regenerated for any proxy.
  assert.deepEqual(await lastPush(cp.ports.monitoring), { types: ['eds'], edsHosts: 1 });

  // It leaves (after the grace period): EDS for reviews alone again, with one endpoint left.
  seen = watcher.responses.length;
  v2.close();
  const one = await watcher.next(ENDPOINT_TYPE, (r) => !JSON.stringify(r.resources).includes('21121'), 5000, seen);
  await settle(watcher);
  assert.deepEqual(watcher.responses.slice(seen).map((r) => r.type_url), [ENDPOINT_TYPE]);
  assert.deepEqual(one.resources.map((r) => r.cluster_name), [cluster('reviews')]);
  assert.match(JSON.stringify(one.resources), /21111/);
  assert.deepEqual(await lastPush(cp.ports.monitoring), { types: ['eds'], edsHosts: 1 });
});

test('a VirtualService http change regenerates routes only; one with tcp routes regenerates listeners too', async (t) => {
  const store = new MemoryConfigStore();
  store.apply(parseYaml(`${SERVICES}\n---\napiVersion: v1\nkind: Service\nmetadata: { name: db, namespace: default }\nspec: { selector: { app: db }, ports: [{ name: tcp, port: 5432 }] }`));
  const cp = await startControlPlane({ store, xdsPort: 0, monitoringPort: 0, debounceMs: 10, debounceMaxMs: 100 });
  const c = new AdsClient(`127.0.0.1:${cp.ports.xds}`, node('productpage', 'v1', 'bookinfo-productpage', 21201));
  t.after(async () => {
    c.close();
    await cp.stop();
  });
  c.onResponse = (r: AdsResponse) => c.ack(r, r.type_url === ROUTE_TYPE ? ['http_proxy'] : undefined);
  c.subscribe(LISTENER_TYPE);
  c.subscribe(ROUTE_TYPE, ['http_proxy']);
  await c.next(ROUTE_TYPE);
  await settle(c);
  const status = () => fetch(`http://127.0.0.1:${cp.ports.monitoring}/debug/push_status`).then(async (r) => ((await r.json()) as { last?: { version: string; reason: string; types: string[] } }).last);
  /** The next config push after the one with version `after`. */
  const waitPush = async (after: string | undefined) => {
    for (let i = 0; i < 100; i++) {
      const last = await status();
      if (last?.reason === 'config' && last.version !== after) return last;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('no config push');
  };
  const seen = c.responses.length;
  let before = (await status())?.version;
  store.apply(parseYaml(`apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: reviews, namespace: default }\nspec: { hosts: [reviews], http: [{ route: [{ destination: { host: reviews } }], timeout: 3s }] }`));
  const routed = await c.next(ROUTE_TYPE, (r) => JSON.stringify(r.resources).includes('"3s"'), 5000, seen);
  assert.ok(routed);
  assert.deepEqual((await waitPush(before)).types, ['rds']);
  await settle(c);
  assert.deepEqual([...new Set(c.responses.slice(seen).map((r) => r.type_url))], [ROUTE_TYPE]);

  before = (await status())?.version;
  store.apply(parseYaml(`apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: db, namespace: default }\nspec: { hosts: [db], tcp: [{ match: [{ port: 5432, destinationSubnets: [10.9.0.0/16] }], route: [{ destination: { host: reviews, port: { number: 9080 } } }] }] }`));
  assert.deepEqual((await waitPush(before)).types, ['lds', 'rds']);
});
