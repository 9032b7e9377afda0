// `rig controlplane` as a real process on a watched directory, read by `rig proxy-status` and
// `rig proxy-config`; live edits, an invalid file, VIPs stable across restarts, bad mesh config.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { AdsClient } from '../../src/xds/ads-client.ts';
import { runRig, spawnRig, stopProcess } from '../helpers/cli.ts';
import { until, waitFor } from '../helpers/wait.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const SERVICES = `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec: { host: reviews, subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }] }
`;

const VS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews, subset: v2 } }] }]
`;

const NODE = {
  id: 'sidecar~127.0.0.1~reviews-v1-0.default~default.svc.cluster.local',
  metadata: {
    NAMESPACE: 'default',
    LABELS: { app: 'reviews', version: 'v1' },
    SERVICE_ACCOUNT: 'bookinfo-reviews',
    INSTANCE_IPS: '127.0.0.1',
    ISTIO_VERSION: '1.24.0',
    INTERCEPTION_MODE: 'NONE',
    RIG_WORKLOAD_PORTS: [{ port: 9080, name: 'http' }],
    RIG_EXPLICIT: { bind: '127.0.0.1', outboundPort: 31000, inboundPorts: { '9080': 31001 }, appPorts: { '9080': 31002 } },
  },
};

async function startCp(dir: string, stateDir: string, children: ChildProcess[]): Promise<{ xds: number; monitoring: number; xdsTls: number; child: ChildProcess; stderr: () => string }> {
  const portsFile = path.join(stateDir, `ports-${children.length}.json`);
  const child = spawnRig(['controlplane', '--config', dir, '--state-dir', stateDir, '--xds-port', '0', '--monitoring-port', '0', '--tls-port', '0', '--ports-file', portsFile]);
  children.push(child);
  let err = '';
  child.stderr?.on('data', (b: Buffer) => (err += b));
  // The ports file is written when xDS listens and again once the CA's TLS port is bound.
  const ports = await waitFor(() => `ports file (stderr: ${err})`, () => {
    const p = fs.existsSync(portsFile) ? (JSON.parse(fs.readFileSync(portsFile, 'utf8')) as { xds: number; monitoring: number; xdsTls?: number }) : undefined;
    return p?.xdsTls ? (p as { xds: number; monitoring: number; xdsTls: number }) : undefined;
  }, { timeoutMs: 30_000, intervalMs: 50 });
  return { ...ports, child, stderr: () => err };
}

test('rig controlplane serves a watched directory; proxy-status and proxy-config show the proxy', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-cp-'));
  const dir = path.join(tmp, 'config');
  const state = path.join(tmp, 'state');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'services.yaml'), SERVICES);
  const children: ChildProcess[] = [];
  const clients: AdsClient[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    for (const c of children) await stopProcess(c);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const cp = await startCp(dir, state, children);
  const cpUrl = `http://127.0.0.1:${cp.monitoring}`;
  const c = new AdsClient(`127.0.0.1:${cp.xds}`, NODE);
  clients.push(c);
  const names = new Map<string, string[] | undefined>([[ROUTE_TYPE, ['http_proxy']]]);
  c.onResponse = (r) => c.ack(r, names.get(r.type_url));
  c.subscribe(CLUSTER_TYPE);
  c.subscribe(LISTENER_TYPE);
  c.subscribe(ROUTE_TYPE, ['http_proxy']);
  const firstRds = await c.next(ROUTE_TYPE);

  const status = await waitFor('SYNCED in proxy-status', async () => {
    const r = await runRig(['proxy-status', '--controlplane', cpUrl]);
    return r.stdout.includes('SYNCED') && !r.stdout.includes('STALE') ? r : undefined;
  }, { timeoutMs: 30_000, intervalMs: 50 });
  assert.equal(status.code, 0);
  assert.match(status.stdout, /^NAME\s+CLUSTER\s+CDS\s+LDS\s+EDS\s+RDS\s+ECDS\s+ISTIOD\s+VERSION/);
  assert.match(status.stdout, /reviews-v1-0\.default\s+Kubernetes\s+SYNCED\s+SYNCED\s+NOT SENT\s+SYNCED\s+NOT SENT\s+\S+\s+1\.24\.0/);

  const clusters = await runRig(['proxy-config', 'clusters', 'reviews-v1-0.default', '--controlplane', cpUrl]);
  assert.equal(clusters.code, 0, clusters.stderr);
  assert.match(clusters.stdout, /reviews\.default\.svc\.cluster\.local\s+9080\s+v1\s+outbound\s+EDS\s+reviews\.default/);
  assert.match(clusters.stdout, /-\s+9080\s+-\s+inbound\s+STATIC\s+-/);
  const listeners = await runRig(['proxy-config', 'listeners', 'reviews-v1-0.default', '--controlplane', cpUrl]);
  assert.match(listeners.stdout, /127\.0\.0\.1\s+31000\s+ALL\s+Route: http_proxy/);
  const json = await runRig(['proxy-config', 'routes', 'reviews-v1-0.default', '--controlplane', cpUrl, '-o', 'json']);
  assert.equal((JSON.parse(json.stdout) as EnvoyJson[])[0].name, 'http_proxy');

  // A live edit reaches the proxy; an invalid file is refused and the last good config stays.
  fs.writeFileSync(path.join(dir, 'vs.yaml'), VS);
  const rds = await c.next(ROUTE_TYPE, (r) => r.nonce !== firstRds.nonce, 30_000);
  assert.ok(JSON.stringify(rds.resources).includes('outbound|9080|v2|reviews.default.svc.cluster.local'));
  const seen = c.responses.length;
  fs.writeFileSync(path.join(dir, 'vs.yaml'), VS.replace('hosts: [reviews]', 'hosts: 42'));
  await until('the config error metric', async () => (await (await fetch(`${cpUrl}/metrics`)).text()).includes('pilot_total_rejected_configs 1'), { timeoutMs: 30_000, intervalMs: 50 });
  // The log line travels through a pipe and may arrive after the metric changed.
  await until('the config error logged', () => /vs\.yaml/.test(cp.stderr()), { timeoutMs: 10_000, intervalMs: 50 });
  assert.equal(c.responses.slice(seen).filter((r) => r.type_url === ROUTE_TYPE).length, 0);
  const routes = await runRig(['proxy-config', 'routes', 'reviews-v1-0.default', '--controlplane', cpUrl]);
  assert.match(routes.stdout, /http_proxy\s+reviews\.default\.svc\.cluster\.local:9080\s+.*\s\/\*\s+reviews\.default/);

  // VIPs are kept in the state directory across restarts.
  const before = (await (await fetch(`${cpUrl}/debug/registryz`)).json()) as { hostname: string; address: string }[];
  c.close();
  await stopProcess(cp.child);
  const cp2 = await startCp(dir, state, children);
  const after = (await (await fetch(`http://127.0.0.1:${cp2.monitoring}/debug/registryz`)).json()) as { hostname: string; address: string }[];
  assert.equal(after.find((s) => s.hostname === 'reviews.default.svc.cluster.local')?.address, before.find((s) => s.hostname === 'reviews.default.svc.cluster.local')?.address);
  assert.match(before[0].address, /^240\.240\./);

  const missing = await runRig(['proxy-config', 'clusters', 'nobody.default', '--controlplane', `http://127.0.0.1:${cp2.monitoring}`]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no connected proxy matches "nobody\.default"/);
});

test('a mesh config with an unknown field is refused with its path; an unreachable control plane is reported', async (t) => {
  const tmp = tempDir(t, 'rig-mesh-');
  const mesh = path.join(tmp, 'mesh.yaml');
  fs.writeFileSync(mesh, 'rootNamespace: istio-system\noutboundTrafficPolicy: { mode: REGISTRY_ONLY }\ntrustDomian: example.org\n');
  const r = await runRig(['controlplane', '--mesh-config', mesh, '--xds-port', '0', '--monitoring-port', '0']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /trustDomian: unknown field/);
  const ps = await runRig(['proxy-status', '--controlplane', 'http://127.0.0.1:1']);
  assert.equal(ps.code, 1);
  assert.match(ps.stderr, /cannot reach http:\/\/127\.0\.0\.1:1\/debug\/syncz/);
});

test('rig controlplane serves the CA on its TLS port with a certificate from the root it keeps in the state directory', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-cp-ca-'));
  const dir = path.join(tmp, 'config');
  const state = path.join(tmp, 'state');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'services.yaml'), SERVICES);
  const children: ChildProcess[] = [];
  t.after(async () => {
    for (const c of children) await stopProcess(c);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const cp = await startCp(dir, state, children);
  const root = path.join(state, 'ca', 'root-cert.pem');
  assert.ok(fs.existsSync(root), 'the root is kept in <state-dir>/ca');
  const { spawnSync } = await import('node:child_process');
  // The exit status is not checked: the gRPC server may close first (no HTTP/2 preface), which
  // openssl reports as an unexpected EOF after a successful, verified handshake.
  const out = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${cp.xdsTls}`, '-CAfile', root, '-servername', 'istiod.istio-system.svc'], { input: '', timeout: 20_000 }).stdout.toString();
  assert.match(out, /Verify return code: 0 \(ok\)/);
  // A restart keeps the same root.
  const before = fs.readFileSync(root, 'utf8');
  await stopProcess(cp.child);
  await startCp(dir, state, children);
  assert.equal(fs.readFileSync(root, 'utf8'), before);
});
