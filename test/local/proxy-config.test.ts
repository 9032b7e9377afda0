// A `rig up` replica's sidecar is named by its replica (pod), as in Istio, while Istio's metrics
// name its workload: with two replicas, `rig proxy-status` lists echo-0.default and echo-1.default
// (the NAMEs of `rig status`), and istio_requests_total says destination_workload="echo" on both
// sides, not the replica's name. `rig proxy-config` reads a local proxy's own certificates and
// endpoints (as istioctl reads the pod's Envoy), filtered with istioctl's flags. Real processes throughout.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/wait.ts';
import { startMesh, type Mesh } from './mesh-harness.ts';
import type { MeshStatus } from '../../src/local/status.ts';

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
    // Requests sent before the client sidecar had endpoints failed with no destination to name.
    .filter((labels) => labels.includes(`reporter="${reporter}"`) && labels.includes('response_code="200"'))
    .map((labels) => /destination_workload="([^"]*)"/.exec(labels)?.[1]);

describe('rig up: proxies named by replica', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-replica-identity-'));
  let mesh: Mesh;
  let s: MeshStatus;
  const port = (name: string, kind: 'outbound' | 'stats' | 'admin') => s.processes.find((p) => p.name === name)!.ports[kind]!;
  before(async () => {
    writeFileSync(
      path.join(dir, 'mesh.yaml'),
      [workload('echo', 2), 'apiVersion: v1\nkind: Service\nmetadata: { name: echo }\nspec: { selector: { app: echo }, ports: [{ name: http, port: 9080 }] }\n', workload('client', 1)].join('---\n'),
    );
    mesh = await startMesh('up', ['-f', dir, '--no-ingress']);
    s = await mesh.waitFor((st) => !!st.readyAt, 'every replica ready', 60_000);
    await waitFor('both replicas answer through the client sidecar', async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 10; i++) seen.add((await get(port('client-0', 'outbound'), 'http://echo:9080/', { host: 'echo:9080' })).body);
      return seen.has('echo-0') && seen.has('echo-1') ? true : undefined;
    });
  });
  after(async () => {
    await mesh?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('metrics name the workload, proxy-status the replica', async () => {
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

  it("rig proxy-config reads a local proxy's certificates and, from its admin, its endpoints", async () => {
    for (const name of ['echo-1', 'echo-1.default']) {
      const secret = await mesh.rig(['proxy-config', 'secret', name]);
      assert.equal(secret.code, 0, secret.stderr);
      assert.match(secret.stdout, /^default\s+Cert Chain\s+ACTIVE\s+true\s/m);
      assert.match(secret.stdout, /^ROOTCA\s+CA\s+ACTIVE\s+true\s/m);
    }
    const unknown = await mesh.rig(['proxy-config', 'secret', 'nope']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /the control plane does not hold nope's certificates/);
    const endpoints = await mesh.rig(['proxy-config', 'endpoints', '--admin', `http://127.0.0.1:${port('client-0', 'admin')}`]);
    assert.equal(endpoints.code, 0, endpoints.stderr);
    const echo = endpoints.stdout.split('\n').filter((l) => l.endsWith(' outbound|9080||echo.default.svc.cluster.local'));
    assert.equal(echo.length, 2, endpoints.stdout);
  });

  it("rig proxy-config filters as istioctl's: --fqdn, --direction, --cluster, --port", async () => {
    const rows = async (args: string[]) => {
      const r = await mesh.rig(['proxy-config', ...args]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trimEnd().split('\n').slice(1);
    };
    assert.deepEqual((await rows(['clusters', 'client-0', '--fqdn', 'echo.default.svc.cluster.local'])).map((l) => l.split(/\s+/).slice(0, 4)), [['echo.default.svc.cluster.local', '9080', '-', 'outbound']]);
    assert.deepEqual((await rows(['clusters', 'echo-0', '--direction', 'inbound'])).map((l) => l.split(/\s+/).slice(1, 4)), [['9080', '-', 'inbound']]);
    const admin = `http://127.0.0.1:${port('client-0', 'admin')}`;
    const echo = await rows(['endpoints', '--admin', admin, '--cluster', 'outbound|9080||echo.default.svc.cluster.local']);
    assert.equal(echo.length, 2, echo.join('\n'));
    const one = Number(echo[0].split(/\s+/)[0].split(':')[1]);
    assert.equal((await rows(['endpoints', '--admin', admin, '--port', String(one)])).length, 1);
    const wrong = await mesh.rig(['proxy-config', 'routes', 'client-0', '--fqdn', 'echo']);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /--fqdn filters clusters, not routes/);
  });
});
