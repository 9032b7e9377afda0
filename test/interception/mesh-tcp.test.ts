// Issue 9 §5 through transparent interception: a raw TCP protocol and a server-first protocol
// through both sidecars, passthrough to an address outside the mesh under ALLOW_ANY and refused
// under REGISTRY_ONLY, and an app calling its own pod address (not captured, as in Istio).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { leftovers, rootSkipReason, testPrefix } from './helpers.ts';
import { FIXTURES, startMesh, type Mesh } from './mesh.ts';
import type { Pod } from '../../src/local/netns/index.ts';
import { waitFor } from '../helpers/wait.ts';

const APPS = path.join(FIXTURES, 'tcp-apps.ts');
const VIP = '10.96.0.70';
const CONFIG = `apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec:
  clusterIP: ${VIP}
  selector: { app: echo }
  ports: [{ name: tcp-echo, port: 7000 }, { name: tcp-banner, port: 7001 }]
`;
const REGISTRY_ONLY = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: default }
spec:
  outboundTrafficPolicy: { mode: REGISTRY_ONLY }
`;

interface Sent {
  data?: string;
  error?: string;
}

async function send(mesh: Mesh, pod: Pod, host: string, port: number, text: string): Promise<Sent> {
  const r = await mesh.exec(pod, process.execPath, [APPS, 'send', host, String(port), text]);
  return JSON.parse(r.stdout || '{"error":"no output"}') as Sent;
}

const stat = (m: Map<string, string>, name: string) => Number(m.get(name) ?? 0);

test('raw TCP, server-first and passthrough through redirect-mode sidecars', { skip: rootSkipReason() }, async (t) => {
  const mesh = await startMesh(t, 'tcp', { 'echo.yaml': CONFIG });
  const echo = await mesh.createPod('echo');
  const client = await mesh.createPod('client');
  // Outside the mesh: no sidecar, no capture rules.
  const outside = await mesh.createPod('outside', { iptables: false });
  await mesh.startApp(echo, [APPS, 'echo', '7000']);
  await mesh.startApp(echo, [APPS, 'banner', '7001']);
  await mesh.startApp(outside, [APPS, 'echo', '8000']);
  await mesh.startSidecar(echo, { labels: 'app=echo', ports: ['7000/tcp-echo/TCP', '7001/tcp-banner/TCP'] });
  await mesh.startSidecar(client, { labels: 'app=client' });

  await t.test('a raw TCP echo through both sidecars', async () => {
    const r = await waitFor(() => `echo via ${VIP}:7000\n${mesh.log('client')}\n${mesh.log('echo')}`, async () => {
      const s = await send(mesh, client, VIP, 7000, 'ping over tcp');
      if (s.data !== 'ping over tcp') throw new Error(JSON.stringify(s));
      return s;
    }, { timeoutMs: 15_000, intervalMs: 250 });
    assert.equal(r.data, 'ping over tcp');
    assert.ok(stat(await mesh.stats(client), 'cluster.outbound|7000||echo.default.svc.cluster.local.upstream_cx_total') >= 1);
    assert.ok(stat(await mesh.stats(echo), 'cluster.inbound|7000||.upstream_cx_total') >= 1);
  });

  await t.test('a server-first protocol (the server speaks before the client)', async () => {
    const r = await send(mesh, client, VIP, 7001, 'after the banner');
    assert.match(r.data ?? JSON.stringify(r), /^banner .+\nafter the banner$/);
    assert.ok(stat(await mesh.stats(echo), 'cluster.inbound|7001||.upstream_cx_total') >= 1);
  });

  await t.test('an app calling its own pod address is not captured (Istio)', async () => {
    const before = stat(await mesh.stats(echo), 'cluster.inbound|7000||.upstream_cx_total');
    const r = await send(mesh, echo, echo.address, 7000, 'to myself');
    assert.equal(r.data, 'to myself');
    assert.equal(stat(await mesh.stats(echo), 'cluster.inbound|7000||.upstream_cx_total'), before, 'not through the sidecar');
  });

  await t.test('passthrough outside the mesh under ALLOW_ANY, no loop', async () => {
    const r = await send(mesh, client, outside.address, 8000, 'out of the mesh');
    assert.equal(r.data, 'out of the mesh');
    // It went through the sidecar's PassthroughCluster, whose own connection was not captured again.
    assert.ok(stat(await mesh.stats(client), 'cluster.PassthroughCluster.upstream_cx_total') >= 1);
  });

  await t.test('refused under REGISTRY_ONLY', async () => {
    writeFileSync(path.join(mesh.configDir, 'sidecar.yaml'), REGISTRY_ONLY);
    const refused = await waitFor(() => `REGISTRY_ONLY never applied\n${mesh.log('client')}`, async () => {
      const s = await send(mesh, client, outside.address, 8000, 'blocked?');
      return s.data === 'blocked?' ? undefined : s;
    }, { timeoutMs: 15_000, intervalMs: 250 });
    // The sidecar closed the connection without a byte from outside (Envoy: BlackHoleCluster has no hosts).
    assert.equal(refused.data, '');
    assert.ok(stat(await mesh.stats(client), 'cluster.BlackHoleCluster.upstream_cx_none_healthy') >= 1);
    // Mesh services still work.
    assert.equal((await send(mesh, client, VIP, 7000, 'still in')).data, 'still in');
  });

  await mesh.stop();
  await mesh.net.destroy();
  assert.deepEqual(leftovers(testPrefix('tcp'), mesh.net.bridge), []);
});
