// A `rig up` replica's sidecar is named by its replica (pod), as in Istio, while Istio's metrics
// name its workload: with two replicas, `rig proxy-status` lists echo-0.default and echo-1.default
// (the NAMEs of `rig status`), and istio_requests_total says destination_workload="echo" on both
// sides, not the replica's name. Real processes throughout.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../helpers/wait.ts';
import { startMesh } from './mesh-harness.ts';

const APP = "require('node:http').createServer((q, s) => s.end(process.env.POD_NAME)).listen(+process.env.PORT, process.env.HOST)";

const workload = (name: string, replicas: number) => `apiVersion: local.rigging.dev/v1alpha1
kind: Workload
metadata: { name: ${name}, labels: { app: ${name} } }
spec:
  replicas: ${replicas}
  command: [node, -e, ${JSON.stringify(APP)}]
  ports: [{ name: http, port: 9080 }]
`;

function get(port: number, p: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p, headers, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

const workloadsIn = (stats: string, reporter: string) =>
  [...stats.matchAll(/^istio_requests_total\{([^}]*)\}/gm)]
    .map((m) => m[1])
    .filter((labels) => labels.includes(`reporter="${reporter}"`))
    .map((labels) => /destination_workload="([^"]*)"/.exec(labels)?.[1]);

test('rig up: proxies are named by replica, metrics by workload', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-replica-identity-'));
  writeFileSync(
    path.join(dir, 'mesh.yaml'),
    [workload('echo', 2), 'apiVersion: v1\nkind: Service\nmetadata: { name: echo }\nspec: { selector: { app: echo }, ports: [{ name: http, port: 9080 }] }\n', workload('client', 1)].join('---\n'),
  );
  let stopMesh = async (): Promise<void> => undefined;
  t.after(async () => {
    await stopMesh();
    rmSync(dir, { recursive: true, force: true });
  });
  const mesh = await startMesh('up', ['-f', dir, '--no-ingress']);
  stopMesh = () => mesh.stop();
  const s = await mesh.waitFor((st) => !!st.readyAt, 'every replica ready', 60_000);
  const port = (name: string, kind: 'outbound' | 'stats') => s.processes.find((p) => p.name === name)!.ports[kind]!;

  await waitFor('both replicas answer through the client sidecar', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add((await get(port('client-0', 'outbound'), 'http://echo:9080/', { host: 'echo:9080' })).body);
    return seen.has('echo-0') && seen.has('echo-1') ? true : undefined;
  });

  const source = workloadsIn((await get(port('client-0', 'stats'), '/stats/prometheus')).body, 'source');
  assert.ok(source.length > 0, 'the client sidecar reports its requests');
  assert.deepEqual([...new Set(source)], ['echo']);
  for (const replica of ['echo-0', 'echo-1']) {
    const destination = workloadsIn((await get(port(replica, 'stats'), '/stats/prometheus')).body, 'destination');
    assert.ok(destination.length > 0, `${replica}'s sidecar reports its requests`);
    assert.deepEqual([...new Set(destination)], ['echo'], replica);
  }

  const ps = await mesh.rig(['proxy-status']);
  assert.equal(ps.code, 0, ps.stderr);
  for (const name of ['client-0', 'echo-0', 'echo-1']) assert.match(ps.stdout, new RegExp(`^${name}\\.default\\s+Kubernetes\\s`, 'm'));
  const clusters = await mesh.rig(['proxy-config', 'clusters', 'echo-1']);
  assert.equal(clusters.code, 0, clusters.stderr);
});
