// `rig up --isolation netns`: every replica in its own network namespace with a redirect-mode
// sidecar; an unchanged curl in one pod reaches another workload by its service name through both
// sidecars, `rig status` names the pods, and `rig down` leaves no namespace, link or rule behind.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cleanupNetnsLeftovers } from '../../src/local/netns/index.ts';
import { bridgeName, hostVethName, listReservations } from '../../src/local/netns/netns-addresses.ts';
import type { MeshStatus } from '../../src/local/status.ts';
import { RIG_MAIN, runRig } from '../helpers/cli.ts';
import { rootSkipReason } from '../interception/helpers.ts';
import { FIXTURES } from '../interception/mesh.ts';
import { waitFor } from '../helpers/wait.ts';
import { startMesh } from './mesh-harness.ts';

const ECHO_APP = path.join(FIXTURES, 'echo-app.ts');

function workload(name: string): string {
  return `apiVersion: local.rigging.dev/v1alpha1
kind: Workload
metadata:
  name: ${name}
  labels: { app: ${name} }
  # The cluster stats this test reads: Istio's sidecars keep none unless the pod asks.
  annotations: { sidecar.istio.io/statsInclusionPrefixes: "cluster.outbound,cluster.inbound" }
spec:
  command: [node, ${JSON.stringify(ECHO_APP)}, "9080"]
  ports: [{ name: http, port: 9080 }]
  readinessProbe: { tcpSocket: { port: 9080 } }
---
apiVersion: v1
kind: Service
metadata: { name: ${name} }
spec:
  selector: { app: ${name} }
  ports: [{ name: http, port: 9080 }]
`;
}

function stats(prefix: string, pod: string): Map<string, string> {
  const out = execFileSync('ip', ['netns', 'exec', `${prefix}-${pod}-0`, 'curl', '-sS', '-m', '5', 'http://127.0.0.1:15000/stats'], { encoding: 'utf8' });
  return new Map(out.split('\n').map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)] as [string, string]));
}

test('rig up --isolation netns: pods with transparent sidecars, torn down by rig down', { skip: rootSkipReason() }, async (t) => {
  const prefix = `rigu${process.pid.toString(36)}`;
  const config = mkdtempSync(path.join(os.tmpdir(), 'rig-netns-up-'));
  chmodSync(config, 0o755);
  const broken = workload('broken').replace(/command: .*/, 'command: [rig-test-no-such-binary]');
  // STRICT mTLS: readiness probes still reach the apps (the sidecars' agents probe inside the pods), plaintext from the host does not.
  const strict = 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: istio-system }\nspec: { mtls: { mode: STRICT } }\n';
  writeFileSync(path.join(config, 'mesh.yaml'), [workload('echo'), workload('client'), broken, strict].join('---\n'));
  const mesh = await startMesh('up', ['-f', config, '--no-ingress', '--isolation', 'netns', '--netns-prefix', prefix]);
  t.after(async () => {
    await mesh.stop();
    await cleanupNetnsLeftovers({ nsPrefix: prefix, force: true });
    rmSync(config, { recursive: true, force: true });
  });

  const ready = (st: MeshStatus, name: string) => st.processes.some((p) => p.name === name && p.state === 'ready');
  const s: MeshStatus = await mesh.waitFor((st) => ready(st, 'echo-0') && ready(st, 'client-0') && st.processes.some((p) => p.name === 'broken-0' && p.appState === 'failed'), 'echo and client ready, broken failed');
  assert.match(s.processes.find((p) => p.name === 'broken-0')?.message ?? '', /command "rig-test-no-such-binary" not found/);
  const echo = s.processes.find((p) => p.name === 'echo-0')!;
  const client = s.processes.find((p) => p.name === 'client-0')!;
  assert.equal(echo.netns, `${prefix}-echo-0`);
  assert.equal(client.netns, `${prefix}-client-0`);
  assert.match(echo.address ?? '', /^\d+\.\d+\.\d+\.\d+$/);
  assert.notEqual(echo.address, client.address);
  const json = JSON.parse((await mesh.rig(['status', '-o', 'json'])).stdout) as MeshStatus;
  assert.equal(json.processes.find((p) => p.name === 'echo-0')?.address, echo.address);

  // Service name → the sidecar's DNS → VIP → captured by the client pod's sidecar → mTLS → echo's sidecar → app.
  const seen = await waitFor(() => `curl http://echo:9080/hello in the client pod\n${mesh.output().slice(-3000)}`, async () => {
    const r = await runRig(['exec', '--prefix', prefix, 'client', '--', 'curl', '-sS', '-m', '3', 'http://echo:9080/hello']);
    if (r.code !== 0 || !r.stdout.startsWith('{')) throw new Error(`curl: ${r.stdout}${r.stderr}`);
    return JSON.parse(r.stdout) as { remote: string; local: string; headers: Record<string, string> };
  }, { timeoutMs: 15_000, intervalMs: 250 });
  assert.match(seen.headers['x-forwarded-client-cert'] ?? '', /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/default(;|$)/, 'mutual TLS between the sidecars (the Workloads run as the default service account)');
  assert.match(seen.local, /:9080$/, 'the app serves on its own port (no remapping)');
  assert.ok(seen.headers['x-request-id'], 'the client sidecar added x-request-id');
  assert.ok(Number(stats(prefix, 'client').get('cluster.outbound|9080||echo.default.svc.cluster.local.upstream_rq_200')) >= 1, 'client sidecar counted the request');
  assert.ok(Number(stats(prefix, 'echo').get('cluster.inbound|9080||.upstream_rq_200')) >= 1, 'echo sidecar counted the request');

  const plain = spawnSync('curl', ['-sS', '-m', '3', `http://${echo.address}:9080/`], { encoding: 'utf8' });
  assert.notEqual(plain.status, 0, `plaintext from the host is refused under STRICT: ${plain.stdout}`);

  const res = listReservations().find((r) => r.nsPrefix === prefix);
  assert.ok(res, 'rig up reserved a pod subnet');
  const ourLinks = [bridgeName(res.index), ...s.processes.map((p) => hostVethName(res.index, Number(p.address!.split('.')[3])))];
  assert.ok(ourLinks.every((l) => execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).includes(`: ${l}`)), `bridge and veths exist while up: ${ourLinks.join(', ')}`);

  const down = await mesh.rig(['down']);
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith(`${prefix}-`)), []);
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  for (const l of ourLinks) assert.ok(!links.includes(`: ${l}`), `link ${l} removed`);
  assert.ok(!listReservations().some((r) => r.nsPrefix === prefix), 'subnet reservation released');
  const rules = execFileSync('sh', ['-c', 'iptables-save 2>/dev/null || true'], { encoding: 'utf8' });
  assert.ok(!rules.includes(s.processes[0].address!), 'no host iptables rule names a pod address');
});

test('rig up --isolation netns without root: a clear error naming the explicit mode', { skip: rootSkipReason() }, () => {
  // Run as nobody: the check happens before anything is started or written.
  let out = '';
  try {
    execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, RIG_MAIN, 'up', '-f', os.tmpdir(), '--isolation', 'netns'], { cwd: os.tmpdir(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.fail('rig up --isolation netns succeeded without root');
  } catch (err) {
    out = String((err as { stderr?: string }).stderr ?? err);
  }
  assert.match(out, /need root/);
  assert.match(out, /run without --isolation netns: the explicit proxy mode/);
});

test('rig up --isolation: an unknown mode is a usage error', async () => {
  const r = await runRig(['up', '-f', os.tmpdir(), '--isolation', 'vm']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--isolation "vm": use explicit .* or netns/);
});

test('rig down --force removes the pods of a rig up --isolation netns that was killed', { skip: rootSkipReason() }, async (t) => {
  const prefix = `rigk${process.pid.toString(36)}`;
  const config = mkdtempSync(path.join(os.tmpdir(), 'rig-netns-kill-'));
  chmodSync(config, 0o755);
  writeFileSync(path.join(config, 'mesh.yaml'), workload('echo'));
  const mesh = await startMesh('up', ['-f', config, '--no-ingress', '--isolation', 'netns', '--netns-prefix', prefix]);
  t.after(async () => {
    await mesh.stop();
    await cleanupNetnsLeftovers({ nsPrefix: prefix, force: true });
    rmSync(config, { recursive: true, force: true });
  });
  await mesh.waitFor((st) => st.processes.some((p) => p.name === 'echo-0' && p.netns !== undefined), 'the echo pod');
  mesh.child.kill('SIGKILL');
  await new Promise((r) => mesh.child.once('exit', r));
  assert.deepEqual(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith(`${prefix}-`)).map((l) => l.split(' ')[0]), [`${prefix}-echo-0`], 'the killed rig up left its pod');

  const down = await mesh.rig(['down', '--force', '--netns-prefix', prefix]);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, new RegExp(`removed leftover pods and links: .*${prefix}-echo-0`));
  assert.deepEqual(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith(`${prefix}-`)), []);
  assert.ok(!listReservations().some((r) => r.nsPrefix === prefix), 'subnet reservation and bridge removed');
});
