// A `rig up` replica is an endpoint only while it is ready, as a Kubernetes pod: two replicas of a
// Service behind a client's sidecar; one replica's readiness probe (httpGet on a path its app
// answers 503 while a file exists) fails → it leaves EDS and every request reaches the other one,
// `rig status` says why; it recovers → both serve again. An exec probe runs in the workload's
// directory. Real processes throughout.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { waitFor } from '../helpers/wait.ts';
import type { MeshStatus } from '../../src/local/status.ts';
import { startMesh } from './mesh-harness.ts';

// Answers its POD_NAME; /ready is 503 while $FLAGS/unready-$POD_NAME exists.
const APP = `const fs = require('node:fs');
require('node:http').createServer((q, s) => {
  if (q.url === '/ready') s.statusCode = fs.existsSync(process.env.FLAGS + '/unready-' + process.env.POD_NAME) ? 503 : 200;
  s.end(process.env.POD_NAME);
}).listen(+process.env.PORT, process.env.HOST);`;

function config(flags: string): string {
  const workload = (name: string, replicas: number, probe: string) => `apiVersion: local.rigging.dev/v1alpha1
kind: Workload
metadata: { name: ${name}, labels: { app: ${name} } }
spec:
  replicas: ${replicas}
  command: [node, -e, ${JSON.stringify(APP)}]
  env: { FLAGS: ${JSON.stringify(flags)} }
  ports: [{ name: http, port: 9080 }]
${probe}`;
  return [
    workload('echo', 2, '  readinessProbe: { httpGet: { path: /ready, port: http }, periodSeconds: 1, failureThreshold: 1 }\n'),
    'apiVersion: v1\nkind: Service\nmetadata: { name: echo }\nspec: { selector: { app: echo }, ports: [{ name: http, port: 9080 }] }\n',
    // No probe declared: ready once its app accepts connections.
    workload('client', 1, ''),
    // A relative path: exec probes run in the workload's directory (cwd).
    workload('gated', 1, `  cwd: ${JSON.stringify(flags)}\n  readinessProbe: { exec: { command: [test, -f, gate] }, periodSeconds: 1, failureThreshold: 1 }\n`),
  ].join('---\n');
}

/** GET http://echo:9080/ through the client's sidecar (as its HTTP_PROXY); the body names the replica. */
function viaClient(outbound: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: outbound, path: 'http://echo:9080/', headers: { host: 'echo:9080' }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

async function answers(outbound: number, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await viaClient(outbound);
    out.push(r.status === 200 ? r.body : `status ${r.status}: ${r.body.slice(0, 100)}`);
  }
  return out;
}

/** `rig up -f dir` with every replica ready (removed with dir when the test ends); the client sidecar's outbound port. */
async function upReady(t: TestContext, dir: string) {
  let stopMesh = async (): Promise<void> => undefined;
  t.after(async () => {
    await stopMesh();
    rmSync(dir, { recursive: true, force: true });
  });
  const mesh = await startMesh('up', ['-f', dir, '--no-ingress']);
  stopMesh = () => mesh.stop();
  const s = await mesh.waitFor((st) => !!st.readyAt, 'every replica ready', 60_000);
  return { mesh, s, outbound: s.processes.find((p) => p.name === 'client-0')!.ports.outbound! };
}

const tally = (xs: string[]) => Object.fromEntries([...new Set(xs)].sort().map((x) => [x, xs.filter((y) => y === x).length]));

test('rig up: an unready replica leaves its Service\'s endpoints and comes back when ready again', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-readiness-'));
  writeFileSync(path.join(dir, 'mesh.yaml'), config(dir));
  writeFileSync(path.join(dir, 'gate'), '');
  const { mesh, outbound } = await upReady(t, dir);

  await waitFor(() => 'both replicas answering', async () => {
    const seen = tally(await answers(outbound, 10));
    assert.deepEqual(Object.keys(seen), ['echo-0', 'echo-1'], JSON.stringify(seen));
    return true;
  }, { timeoutMs: 20_000, intervalMs: 200 });

  const flag = path.join(dir, 'unready-echo-1');
  writeFileSync(flag, '');
  unlinkSync(path.join(dir, 'gate'));
  const unready = (st: MeshStatus, name: string) => st.processes.find((p) => p.name === name)?.appState === 'starting';
  const out = await mesh.waitFor((st) => unready(st, 'echo-1') && unready(st, 'gated-0'), 'echo-1 and gated-0 unready in rig status', 20_000);
  assert.equal(out.processes.find((p) => p.name === 'gated-0')!.message, 'not ready: command "test -f gate" exited with status 1');
  const echo1 = out.processes.find((p) => p.name === 'echo-1')!;
  assert.equal(echo1.state, 'starting');
  assert.match(echo1.message ?? '', /^not ready: GET http:\/\/127\.0\.0\.1:\d+\/ready: status 503, not 200-399$/);
  assert.equal(out.processes.find((p) => p.name === 'echo-0')!.state, 'ready');
  // Out of EDS: every request reaches echo-0 (once the client's sidecar has the push).
  await waitFor(() => 'every request to echo-0', async () => {
    const seen = tally(await answers(outbound, 20));
    assert.deepEqual(seen, { 'echo-0': 20 });
    return true;
  }, { timeoutMs: 20_000, intervalMs: 200 });
  const text = await mesh.rig(['status']);
  assert.match(text.stdout, /echo-1: not ready: GET .*\/ready: status 503/);

  unlinkSync(flag);
  writeFileSync(path.join(dir, 'gate'), '');
  await mesh.waitFor((st) => ['echo-1', 'gated-0'].every((n) => st.processes.find((p) => p.name === n)?.state === 'ready'), 'echo-1 and gated-0 ready again', 20_000);
  await waitFor(() => 'both replicas answering again', async () => {
    const seen = tally(await answers(outbound, 10));
    assert.deepEqual(Object.keys(seen), ['echo-0', 'echo-1'], JSON.stringify(seen));
    return true;
  }, { timeoutMs: 20_000, intervalMs: 200 });
});

// Exits while $FLAGS/exit-$POD_NAME exists (at start too: it then crash-loops), else answers its POD_NAME.
const CRASHY = `const fs = require('node:fs');
const flag = process.env.FLAGS + '/exit-' + process.env.POD_NAME;
if (fs.existsSync(flag)) process.exit(1);
setInterval(() => fs.existsSync(flag) && process.exit(1), 100);
require('node:http').createServer((q, s) => s.end(process.env.POD_NAME)).listen(+process.env.PORT, process.env.HOST);`;

test('rig up: a replica whose app exits leaves the endpoints at once, not after its probe fails', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-app-exit-'));
  const workload = (name: string, replicas: number, probe: string) => `apiVersion: local.rigging.dev/v1alpha1
kind: Workload
metadata: { name: ${name}, labels: { app: ${name} } }
spec:
  replicas: ${replicas}
  command: [node, -e, ${JSON.stringify(CRASHY)}]
  env: { FLAGS: ${JSON.stringify(dir)} }
  ports: [{ name: http, port: 9080 }]
${probe}`;
  writeFileSync(path.join(dir, 'mesh.yaml'), [
    // 1000 failures in a row before the probe alone would take a replica out.
    workload('echo', 2, '  readinessProbe: { httpGet: { path: /, port: http }, periodSeconds: 1, failureThreshold: 1000 }\n'),
    'apiVersion: v1\nkind: Service\nmetadata: { name: echo }\nspec: { selector: { app: echo }, ports: [{ name: http, port: 9080 }] }\n',
    workload('client', 1, ''),
  ].join('---\n'));
  const { mesh, s, outbound } = await upReady(t, dir);
  await waitFor(() => 'both replicas answering', async () => {
    assert.deepEqual(Object.keys(tally(await answers(outbound, 10))), ['echo-0', 'echo-1']);
    return true;
  }, { timeoutMs: 20_000, intervalMs: 200 });

  // The client sidecar's endpoints of echo (its admin /clusters: what EDS gave it), by inbound port.
  const inbound = (name: string) => Object.values(s.processes.find((p) => p.name === name)!.ports.inbound ?? {})[0];
  const admin = s.processes.find((p) => p.name === 'client-0')!.ports.admin!;
  const echoHosts = async () => {
    const text = await (await fetch(`http://127.0.0.1:${admin}/clusters`)).text();
    const hosts = text.split('\n').filter((l) => l.startsWith('outbound|9080||echo.')).map((l) => l.split('::')[1]).filter((h) => /:\d+$/.test(h));
    return [...new Set(hosts)].map((h) => Number(h.split(':').at(-1))).sort();
  };
  assert.deepEqual(await echoHosts(), [inbound('echo-0'), inbound('echo-1')].sort());

  // echo-1's app exits and crash-loops: out of EDS by its exit alone (the probe would need 1000
  // failures; requests alone would not show it, the client's retries reach echo-0).
  const flag = path.join(dir, 'exit-echo-1');
  writeFileSync(flag, '');
  await waitFor(() => 'echo-1 out of the client\'s endpoints', async () => {
    assert.deepEqual(await echoHosts(), [inbound('echo-0')]);
    return true;
  }, { timeoutMs: 20_000, intervalMs: 200 });
  const st = await mesh.waitFor((x) => (x.processes.find((p) => p.name === 'echo-1')?.restarts ?? 0) > 0, 'echo-1 restarted', 20_000);
  assert.notEqual(st.processes.find((p) => p.name === 'echo-1')!.appState, 'ready');

  // It runs again and passes its probe: back in EDS.
  unlinkSync(flag);
  await waitFor(() => 'both replicas answering again', async () => {
    assert.deepEqual(Object.keys(tally(await answers(outbound, 10))), ['echo-0', 'echo-1']);
    return true;
  }, { timeoutMs: 30_000, intervalMs: 200 });
  assert.equal((await echoHosts()).length, 2);
});
