// The scale benchmark's simulated sidecar stream (bench/controlplane/sim-ads-stream.ts): it keeps
// only version, type and nonce of each DiscoveryResponse, read as the bytes arrive, and its ACKs
// must be what the control plane takes for ACKs, or the benchmark would measure nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EnvelopeReader, SimAdsStream, encodeNames } from '../../bench/controlplane/sim-ads-stream.ts';
import type { Envelope } from '../../bench/controlplane/sim-ads-stream.ts';
import { MemoryConfigStore } from '../../src/config/index.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { encodeFramedDiscoveryResponse } from '../../src/xds/server/response-encoder.ts';
import { parseYaml } from '../xds/fixtures.ts';

test('EnvelopeReader reads version, type URL and nonce of responses split anywhere, and counts their resources', () => {
  const shapes = [
    { version_info: 'v1/é', nonce: 'a', resources: 0 },
    { version_info: '', nonce: 'b', resources: 1 },
    { version_info: '2026-11-27T08:00:00Z/3', nonce: 'c-3', resources: 300 },
  ];
  const typeUrl = ROUTE_TYPE;
  const bytes = Buffer.concat(shapes.map((s) => encodeFramedDiscoveryResponse({ version_info: s.version_info, type_url: typeUrl, nonce: s.nonce, resources: Array.from({ length: s.resources }, (_, i) => ({ type_url: typeUrl, value: Buffer.alloc((i * 37) % 300, 1) })) })));
  const want = shapes.map((s) => ({ version_info: s.version_info, type_url: typeUrl, nonce: s.nonce, resourceCount: s.resources }));
  for (const size of [1, 2, 5, 7, 16384, bytes.length]) {
    const got: Envelope[] = [];
    const reader = new EnvelopeReader((e) => got.push(e));
    for (let at = 0; at < bytes.length; at += size) reader.push(bytes.subarray(at, at + size));
    assert.deepEqual(got, want, `chunks of ${size} bytes`);
  }
  assert.throws(() => new EnvelopeReader(() => {}).push(Buffer.from([1, 0, 0, 0, 0])), /compressed/);
  assert.throws(() => new EnvelopeReader(() => {}).push(Buffer.from([0, 0, 0, 0, 2, 0x0a, 5])), /past the message/);
});

test('a simulated sidecar gets every subscribed type from rig controlplane and its ACKs leave it SYNCED, also after a route change', async (t) => {
  const store = new MemoryConfigStore();
  const service = (name: string) => `apiVersion: v1\nkind: Service\nmetadata: { name: ${name}, namespace: ns-0 }\nspec: { selector: { app: ${name} }, ports: [{ name: http, port: 8080 }] }`;
  const vs = (timeout: string) => `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: svc-0, namespace: ns-0 }\nspec:\n  hosts: [svc-0]\n  http: [{ route: [{ destination: { host: svc-0 } }], timeout: ${timeout} }]`;
  store.apply(parseYaml([service('svc-0'), service('svc-1'), vs('10s')].join('\n---\n')));
  const cp = await startControlPlane({ store, xdsPort: 0, monitoringPort: 0, debounceMs: 10, debounceMaxMs: 100 });
  const node = { id: 'sidecar~10.0.0.1~svc-0-0.ns-0~ns-0.svc.cluster.local', metadata: { NAMESPACE: 'ns-0', LABELS: { app: 'svc-0' }, SERVICE_ACCOUNT: 'default', INSTANCE_IPS: '10.0.0.1', INTERCEPTION_MODE: 'REDIRECT', RIG_WORKLOAD_PORTS: [{ port: 8080, name: 'http' }] } };
  const stream = new SimAdsStream(`127.0.0.1:${cp.ports.xds}`, node, { window: 256 << 20, connectTimeoutMs: 5000 });
  t.after(async () => {
    stream.close();
    await cp.stop();
  });
  const edsNames = ['svc-0', 'svc-1'].map((s) => `outbound|8080||${s}.ns-0.svc.cluster.local`);
  const got: Envelope[] = [];
  let waiter: (() => void) | undefined;
  stream.onResponse = (e) => {
    got.push(e);
    stream.ack(e, e.type_url === ENDPOINT_TYPE ? encodeNames(edsNames) : e.type_url === ROUTE_TYPE ? encodeNames(['8080']) : undefined);
    waiter?.();
  };
  const until = async (what: string, pred: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(got)}`);
      await new Promise<void>((r) => {
        waiter = r;
        setTimeout(r, 100);
      });
    }
  };
  const routeStatus = async () => {
    const rows = (await (await fetch(`http://127.0.0.1:${cp.ports.monitoring}/debug/syncz`)).json()) as { cluster_status: string; listener_status: string; endpoint_status: string; route_status: string; route_version_sent: string }[];
    assert.equal(rows.length, 1);
    return rows[0];
  };
  stream.subscribe(CLUSTER_TYPE);
  stream.subscribe(ENDPOINT_TYPE, edsNames);
  stream.subscribe(LISTENER_TYPE);
  stream.subscribe(ROUTE_TYPE, ['8080']);
  await until('all four types', () => [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE].every((type) => got.some((e) => e.type_url === type)));
  const eds = got.find((e) => e.type_url === ENDPOINT_TYPE)!;
  assert.equal(eds.resourceCount, 2);
  assert.equal(got.find((e) => e.type_url === ROUTE_TYPE)!.resourceCount, 1);
  assert.ok(got.every((e) => e.version_info && e.nonce), JSON.stringify(got));
  let row = await routeStatus();
  for (let i = 0; i < 50 && [row.cluster_status, row.listener_status, row.endpoint_status, row.route_status].some((s) => s !== 'SYNCED'); i++) {
    await new Promise((r) => setTimeout(r, 100));
    row = await routeStatus();
  }
  assert.deepEqual([row.cluster_status, row.listener_status, row.endpoint_status, row.route_status], ['SYNCED', 'SYNCED', 'SYNCED', 'SYNCED']);

  const before = got.filter((e) => e.type_url === ROUTE_TYPE).at(-1)!.version_info;
  store.apply(parseYaml(vs('5s')));
  await until('new routes', () => got.some((e) => e.type_url === ROUTE_TYPE && e.version_info !== before));
  const after = got.filter((e) => e.type_url === ROUTE_TYPE).at(-1)!;
  for (let i = 0; i < 50 && ((row = await routeStatus()).route_status !== 'SYNCED' || row.route_version_sent !== after.version_info); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(row.route_status, 'SYNCED');
  assert.equal(row.route_version_sent, after.version_info);
});
