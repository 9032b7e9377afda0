// Istio's trust domain migration task under `rig up`: MeshConfig trustDomain new-td with
// trustDomainAliases [old-td]. The sidecars ask the CA for new-td identities (they asked for
// cluster.local ones, which the CA refused, so every mTLS call failed with 503), and a policy
// naming the old-td principal still admits the client while another workload is denied.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startMesh } from './mesh-harness.ts';
import { waitFor } from '../helpers/wait.ts';

const ECHO = ['node', '-e', "require('node:http').createServer((q, s) => s.end(process.env.POD_NAME)).listen(+process.env.PORT, process.env.HOST)"];

const workload = (name: string, port: number) => `apiVersion: local.rigging.dev/v1alpha1
kind: Workload
metadata: { name: ${name}, labels: { app: ${name} } }
spec:
  serviceAccount: ${name}
  command: ${JSON.stringify(ECHO)}
  ports: [{ name: http, port: ${port} }]
---
apiVersion: v1
kind: Service
metadata: { name: ${name} }
spec:
  selector: { app: ${name} }
  ports: [{ name: http, port: ${port} }]
---
`;

const POLICY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: httpbin }
spec:
  selector: { matchLabels: { app: httpbin } }
  rules:
  - from: [{ source: { principals: [old-td/ns/default/sa/sleep] } }]
`;

/** GET http://httpbin:8000/ through a sidecar's outbound HTTP proxy port: the status code. */
function viaSidecar(outbound: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: outbound, path: 'http://httpbin:8000/', headers: { host: 'httpbin:8000' }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

test('rig up with trustDomain new-td and alias old-td: mTLS works and an old-td principal still matches', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-trust-domain-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'mesh.yaml'), 'trustDomain: new-td\ntrustDomainAliases: [old-td]\n');
  const config = path.join(dir, 'config');
  mkdirSync(config);
  writeFileSync(path.join(config, 'apps.yaml'), workload('httpbin', 8000) + workload('sleep', 8001) + workload('other', 8002) + POLICY);
  const mesh = await startMesh('up', ['-f', config, '--mesh-config', path.join(dir, 'mesh.yaml'), '--no-ingress'], { gatewayPorts: [] });
  t.after(() => mesh.stop());
  await mesh.waitFor((s) => !!s.readyAt, 'every replica ready', 60_000);

  const sleep = mesh.process('sleep-0')!.ports.outbound!;
  const other = mesh.process('other-0')!.ports.outbound!;
  let last = 0;
  await waitFor(() => `sleep → httpbin answering 200 (last ${last})\n${mesh.output().slice(-2000)}`, async () => ((last = await viaSidecar(sleep).catch(() => 0)) === 200 ? true : undefined), 30_000);
  assert.equal(await viaSidecar(other), 403, 'a principal the policy does not name is denied');
});
