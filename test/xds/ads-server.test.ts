// ADS over real gRPC: subscriptions, ACK/NACK and status, resource names, auto-registration,
// debounced pushes of only what changed, reconnects, and hostile clients.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { MemoryConfigStore } from '../../src/config/index.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { AdsClient } from '../../src/xds/ads-client.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import type { ControlPlane } from '../../src/xds/controlplane.ts';
import { parseYaml } from './fixtures.ts';
import { until, waitFor } from '../helpers/wait.ts';

const BOOKINFO = `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: productpage, namespace: default }
spec: { selector: { app: productpage }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`;

const VS_V2 = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: reviews, subset: v2 } }]
`;

function node(name: string, app: string, version: string, inbound: number): EnvoyJson {
  return {
    id: `sidecar~127.0.0.1~${name}.default~default.svc.cluster.local`,
    metadata: {
      NAMESPACE: 'default',
      LABELS: { app, version },
      SERVICE_ACCOUNT: `bookinfo-${app}`,
      INSTANCE_IPS: '127.0.0.1',
      WORKLOAD_NAME: `${app}-${version}`,
      INTERCEPTION_MODE: 'NONE',
      ISTIO_VERSION: '1.24.0',
      RIG_WORKLOAD_PORTS: [{ port: 9080, name: 'http' }],
      RIG_EXPLICIT: { bind: '127.0.0.1', outboundPort: inbound - 1, inboundPorts: { '9080': inbound }, appPorts: { '9080': inbound + 1 } },
    },
  };
}

async function start(t: { after(fn: () => unknown): void }, yaml = BOOKINFO, maxInflightBytes?: number): Promise<{ cp: ControlPlane; store: MemoryConfigStore; addr: string; clients: AdsClient[]; client(n: EnvoyJson): AdsClient }> {
  const store = new MemoryConfigStore();
  store.apply(parseYaml(yaml));
  const cp = await startControlPlane({ store, xdsPort: 0, monitoringPort: 0, debounceMs: 10, debounceMaxMs: 100, workloadGraceMs: 50, maxInflightBytes });
  const clients: AdsClient[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    await cp.stop();
  });
  const addr = `127.0.0.1:${cp.ports.xds}`;
  return { cp, store, addr, clients, client: (n) => {
    const c = new AdsClient(addr, n);
    clients.push(c);
    return c;
  } };
}

async function syncz(cp: ControlPlane): Promise<EnvoyJson[]> {
  const res = await fetch(`http://127.0.0.1:${cp.ports.monitoring}/debug/syncz`);
  return (await res.json()) as EnvoyJson[];
}

async function metric(cp: ControlPlane, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${cp.ports.monitoring}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

test('an explicit-mode sidecar gets CDS, LDS, RDS, EDS; ACKs show as SYNCED', async (t) => {
  const { cp, client } = await start(t);
  const c = client(node('reviews-v1-0', 'reviews', 'v1', 21001));
  // Behave like Envoy: ACK every response with the names currently watched.
  const watched = new Map<string, string[] | undefined>();
  c.onResponse = (r) => c.ack(r, watched.get(r.type_url));
  c.subscribe(CLUSTER_TYPE);
  const cds = await c.next(CLUSTER_TYPE);
  const names = cds.resources.map((r) => r.name).sort();
  assert.deepEqual(names, ['BlackHoleCluster', 'PassthroughCluster', 'inbound|9080||', 'outbound|9080|v1|reviews.default.svc.cluster.local', 'outbound|9080|v2|reviews.default.svc.cluster.local', 'outbound|9080||productpage.default.svc.cluster.local', 'outbound|9080||reviews.default.svc.cluster.local']);
  const inbound = cds.resources.find((r) => r.name === 'inbound|9080||') as EnvoyJson;
  assert.deepEqual(inbound.load_assignment, { cluster_name: 'inbound|9080||', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 21002 } } } }] }] });
  c.subscribe(LISTENER_TYPE);
  const lds = await c.next(LISTENER_TYPE);
  // With the unbound outbound listener of port 9080, where the inside of a CONNECT to reviews:9080 goes.
  assert.deepEqual(lds.resources.map((l) => l.name).sort(), ['0.0.0.0_9080', '127.0.0.1_21001', 'http_proxy']);
  watched.set(ROUTE_TYPE, ['http_proxy']);
  c.subscribe(ROUTE_TYPE, ['http_proxy']);
  const rds = await c.next(ROUTE_TYPE);
  assert.equal(rds.resources.length, 1);
  const vhost = ((rds.resources[0].virtual_hosts as EnvoyJson[]).find((v) => v.name === 'reviews.default.svc.cluster.local:9080')) as EnvoyJson;
  assert.ok((vhost.domains as string[]).includes('reviews:9080'));
  const edsNames = cds.resources.filter((r) => r.type === 'EDS').map((r) => r.name as string);
  watched.set(ENDPOINT_TYPE, edsNames);
  c.subscribe(ENDPOINT_TYPE, edsNames);
  const eds = await c.next(ENDPOINT_TYPE, (r) => r.resources.some((e) => e.cluster_name === 'outbound|9080|v1|reviews.default.svc.cluster.local' && e.endpoints !== undefined));
  const v1 = eds.resources.find((r) => r.cluster_name === 'outbound|9080|v1|reviews.default.svc.cluster.local') as EnvoyJson;
  // The sidecar registered itself: its inbound port is the endpoint, marked as having a sidecar.
  const ep = ((v1.endpoints as EnvoyJson[])[0].lb_endpoints as EnvoyJson[])[0];
  assert.deepEqual((ep.endpoint as EnvoyJson).address, { socket_address: { address: '127.0.0.1', port_value: 21001 } });
  assert.deepEqual(((ep.metadata as EnvoyJson).filter_metadata as EnvoyJson)['envoy.transport_socket_match'], { tlsMode: 'istio' });
  const row = await waitFor('SYNCED', async () => (await syncz(cp)).find((r) => r.endpoint_status === 'SYNCED' && r.route_status === 'SYNCED' && r.cluster_status === 'SYNCED' && r.listener_status === 'SYNCED'), { timeoutMs: 5000, intervalMs: 20 });
  assert.equal(row.proxy, 'reviews-v1-0.default');
  assert.equal(row.cluster_status, 'SYNCED');
  assert.equal(row.listener_status, 'SYNCED');
});

test('a NACK keeps status and is reported; a later good config clears it; only changed types are pushed', async (t) => {
  const { cp, store, client } = await start(t);
  const c = client(node('productpage-v1-0', 'productpage', 'v1', 21011));
  // Its own registration changes the clusters (server identities): ACK every CDS response.
  c.onResponse = (r) => {
    if (r.type_url === CLUSTER_TYPE) c.ack(r);
  };
  c.subscribe(CLUSTER_TYPE);
  await c.next(CLUSTER_TYPE);
  c.subscribe(ROUTE_TYPE, ['http_proxy']);
  const first = await c.next(ROUTE_TYPE);
  const before = await metric(cp, 'pilot_total_xds_rejects');
  c.nack(first, 'route rejected by test', '', ['http_proxy']);
  const row = await waitFor('NACK status', async () => (await syncz(cp)).find((r) => r.route_status === 'NACK' && r.cluster_status === 'SYNCED'), { timeoutMs: 5000, intervalMs: 20 });
  assert.equal((row.route_nack as EnvoyJson).message, 'route rejected by test');
  assert.equal(row.cluster_status, 'SYNCED');
  assert.equal(await metric(cp, 'pilot_total_xds_rejects'), before + 1);
  // Let the pushes caused by the proxy's own registration settle (the debounce waits at most 1 s),
  // so that whatever comes next is caused by the VirtualService alone.
  for (let n = -1; n !== c.responses.length; ) {
    n = c.responses.length;
    await new Promise((r) => setTimeout(r, 1200));
  }
  const seen = c.responses.length;
  store.apply(parseYaml(VS_V2));
  const second = await c.next(ROUTE_TYPE, (r) => r.nonce !== first.nonce && JSON.stringify(r.resources).includes('outbound|9080|v2|reviews'));
  const vhost = ((second.resources[0].virtual_hosts as EnvoyJson[]).find((v) => v.name === 'reviews.default.svc.cluster.local:9080')) as EnvoyJson;
  assert.equal(((vhost.routes as EnvoyJson[]).at(-1)!.route as EnvoyJson).cluster, 'outbound|9080|v2|reviews.default.svc.cluster.local');
  c.ack(second, ['http_proxy']);
  const fixed = await waitFor('SYNCED after a good config', async () => (await syncz(cp)).find((r) => r.route_status === 'SYNCED'), { timeoutMs: 5000, intervalMs: 20 });
  assert.equal(fixed.route_nack, undefined);
  // The VirtualService changed routes only: no new CDS response was sent.
  assert.equal(c.responses.slice(seen).filter((r) => r.type_url === CLUSTER_TYPE).length, 0);
});

test('RDS and EDS honour resource_names; a reconnect gets the full state again', async (t) => {
  const { client } = await start(t);
  const n = node('productpage-v1-0', 'productpage', 'v1', 21021);
  const c = client(n);
  c.subscribe(ENDPOINT_TYPE, ['outbound|9080||productpage.default.svc.cluster.local']);
  const eds = await c.next(ENDPOINT_TYPE);
  assert.deepEqual(eds.resources.map((r) => r.cluster_name), ['outbound|9080||productpage.default.svc.cluster.local']);
  c.ack(eds, ['outbound|9080||productpage.default.svc.cluster.local', 'outbound|9080||reviews.default.svc.cluster.local']);
  const added = await c.next(ENDPOINT_TYPE, (r) => r.nonce !== eds.nonce);
  // The newly requested cluster comes (with productpage's, if its own registration changed it meanwhile).
  assert.ok(added.resources.some((r) => r.cluster_name === 'outbound|9080||reviews.default.svc.cluster.local'));
  assert.ok(added.resources.every((r) => ['outbound|9080||productpage.default.svc.cluster.local', 'outbound|9080||reviews.default.svc.cluster.local'].includes(r.cluster_name as string)));
  c.subscribe(ROUTE_TYPE, ['no-such-route', 'http_proxy']);
  const rds = await c.next(ROUTE_TYPE);
  // A name that means nothing gets an empty configuration (a listener naming it would wait for good otherwise).
  assert.deepEqual(rds.resources.map((r) => r.name), ['no-such-route', 'http_proxy']);
  assert.equal(rds.resources[0].virtual_hosts, undefined, 'no virtual hosts');
  c.close();
  const again = client(n);
  again.send({ type_url: ENDPOINT_TYPE, version_info: eds.version_info, resource_names: ['outbound|9080||productpage.default.svc.cluster.local'] });
  const re = await again.next(ENDPOINT_TYPE);
  assert.deepEqual(re.resources.map((r) => r.cluster_name), ['outbound|9080||productpage.default.svc.cluster.local']);
});

test('auto-registered endpoints follow their proxies and leave a grace period after the stream ends', async (t) => {
  const { client } = await start(t);
  const watcher = client(node('productpage-v1-0', 'productpage', 'v1', 21031));
  const cluster = 'outbound|9080|v2|reviews.default.svc.cluster.local';
  watcher.subscribe(ENDPOINT_TYPE, [cluster]);
  const empty = await watcher.next(ENDPOINT_TYPE);
  assert.equal(empty.resources[0].endpoints, undefined);
  watcher.ack(empty, [cluster]);
  const reviews = client(node('reviews-v2-0', 'reviews', 'v2', 21041));
  reviews.subscribe(CLUSTER_TYPE);
  const withEp = await watcher.next(ENDPOINT_TYPE, (r) => r.resources[0]?.endpoints !== undefined);
  const lb = ((withEp.resources[0].endpoints as EnvoyJson[])[0].lb_endpoints as EnvoyJson[])[0];
  assert.equal((((lb.endpoint as EnvoyJson).address as EnvoyJson).socket_address as EnvoyJson).port_value, 21041);
  watcher.ack(withEp, [cluster]);
  reviews.close();
  const gone = await watcher.next(ENDPOINT_TYPE, (r) => r.nonce !== withEp.nonce && r.resources[0]?.endpoints === undefined);
  assert.equal(gone.resources[0].cluster_name, cluster);
});

test('bad clients: malformed node, unknown type URL, garbage bytes, never-ACKing and churning clients leave the server serving others', async (t) => {
  const { cp, store, addr, client } = await start(t);
  const bad = client({ id: 'not-a-node-id' });
  bad.subscribe(CLUSTER_TYPE);
  const status = await bad.closed();
  assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
  assert.match(status.details, /node\.id "not-a-node-id"/);

  const badMeta = client({ id: 'sidecar~127.0.0.1~x.default~default.svc.cluster.local', metadata: { RIG_EXPLICIT: { bind: '127.0.0.1', inboundPorts: { '80': 'many' } } } });
  badMeta.subscribe(CLUSTER_TYPE);
  assert.match((await badMeta.closed()).details, /RIG_EXPLICIT\.inboundPorts\.80/);

  const odd = client(node('odd-0', 'odd', 'v1', 21051));
  odd.subscribe('type.googleapis.com/envoy.config.unknown.v3.Thing');
  odd.subscribe(CLUSTER_TYPE);
  assert.ok((await odd.next(CLUSTER_TYPE)).resources.length > 0);

  // Raw garbage on the wire: the call fails, the server does not.
  const raw = new grpc.Client(addr, grpc.credentials.createInsecure());
  const call = raw.makeBidiStreamRequest('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', (b: Buffer) => b, (b: Buffer) => b);
  const rawDone = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  call.on('error', () => {});
  call.write(Buffer.from([0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]));
  assert.notEqual((await rawDone).code, grpc.status.OK);
  raw.close();

  // A client that does not ACK gets nothing more of that type (flow control) and holds back no
  // one; once it answers, it gets the latest state.
  const silent = client(node('silent-0', 'silent', 'v1', 21061));
  silent.subscribe(CLUSTER_TYPE);
  const firstCds = await silent.next(CLUSTER_TYPE);
  const watcher = client(node('watcher-0', 'watcher', 'v1', 21081));
  watcher.onResponse = (r) => watcher.ack(r);
  watcher.subscribe(CLUSTER_TYPE);
  await watcher.next(CLUSTER_TYPE);
  store.apply(parseYaml('apiVersion: v1\nkind: Service\nmetadata: { name: extra, namespace: default }\nspec: { ports: [{ name: http, port: 80 }] }'));
  const hasExtra = (r: { resources: EnvoyJson[] }) => r.resources.some((c) => c.name === 'outbound|80||extra.default.svc.cluster.local');
  await watcher.next(CLUSTER_TYPE, hasExtra);
  assert.equal(silent.responses.filter((r) => r.type_url === CLUSTER_TYPE).length, 1);
  silent.ack(firstCds);
  await silent.next(CLUSTER_TYPE, hasExtra);

  for (let i = 0; i < 100; i++) {
    const churn = new AdsClient(addr, node(`churn-${i}`, 'churn', 'v1', 22000 + i * 3));
    churn.subscribe(CLUSTER_TYPE);
    if (i % 10 === 0) await churn.next(CLUSTER_TYPE);
    churn.close();
  }
  const good = client(node('good-0', 'productpage', 'v1', 21071));
  good.subscribe(CLUSTER_TYPE);
  assert.ok((await good.next(CLUSTER_TYPE)).resources.some((r) => r.name === 'outbound|9080||reviews.default.svc.cluster.local'));
  await until('churned connections to be gone', () => cp.discovery.connections.size === 4, { timeoutMs: 5000, intervalMs: 20 });
});

test('pushes beyond the in-flight byte budget wait for ACKs (push throttle)', async (t) => {
  const { client } = await start(t, BOOKINFO, 1);
  const a = client(node('a-0', 'a', 'v1', 21091));
  a.subscribe(CLUSTER_TYPE);
  const first = await a.next(CLUSTER_TYPE);
  const b = client(node('b-0', 'b', 'v1', 21095));
  b.subscribe(CLUSTER_TYPE);
  await assert.rejects(b.next(CLUSTER_TYPE, () => true, 300), /no .* response within 300 ms/);
  a.ack(first);
  assert.ok((await b.next(CLUSTER_TYPE)).resources.length > 0);
});

test('a VirtualService-only change pushes routes; a change batched with a DestinationRule still pushes clusters', async (t) => {
  const { store, client } = await start(t);
  const c = client(node('productpage-v1-0', 'productpage', 'v1', 21061));
  c.onResponse = (r) => c.ack(r, r.type_url === ROUTE_TYPE ? ['http_proxy'] : undefined);
  c.subscribe(CLUSTER_TYPE);
  await c.next(CLUSTER_TYPE);
  c.subscribe(ROUTE_TYPE, ['http_proxy']);
  const first = await c.next(ROUTE_TYPE);
  // Let the proxy's own registration push settle.
  await new Promise((r) => setTimeout(r, 300));
  // Let the pushes caused by the proxy's own registration settle (the debounce waits at most 1 s),
  // so that whatever comes next is caused by the VirtualService alone.
  for (let n = -1; n !== c.responses.length; ) {
    n = c.responses.length;
    await new Promise((r) => setTimeout(r, 1200));
  }
  const seen = c.responses.length;
  store.apply(parseYaml(VS_V2));
  await c.next(ROUTE_TYPE, (r) => r.nonce !== first.nonce && r.version_info !== first.version_info);
  assert.equal(c.responses.slice(seen).filter((r) => r.type_url === CLUSTER_TYPE).length, 0);
  const v3 = BOOKINFO.slice(BOOKINFO.indexOf('apiVersion: networking.istio.io/v1\nkind: DestinationRule')) + '  - { name: v3, labels: { version: v3 } }\n';
  store.apply(parseYaml(VS_V2.replace('subset: v2', 'subset: v1') + '---\n' + v3));
  const cds = await c.next(CLUSTER_TYPE, (r) => r.resources.some((x) => x.name === 'outbound|9080|v3|reviews.default.svc.cluster.local'));
  assert.ok(cds.resources.some((x) => x.name === 'outbound|9080|v1|reviews.default.svc.cluster.local'));
});
