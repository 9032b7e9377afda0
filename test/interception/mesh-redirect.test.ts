// The whole of transparent interception: a control plane on the host, two pods with their
// sidecars (`rig proxy --interception redirect`, UID 1337) and unchanged apps; a plain curl in
// the client pod to a service VIP goes through both sidecars.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PROXY_UID } from '../../src/local/netns/index.ts';
import { waitForPortsFile } from '../../src/local/ports-file.ts';
import { RIG_MAIN } from '../helpers/cli.ts';
import { leftovers, podNetwork, rootSkipReason, testPrefix } from './helpers.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const VIP = '10.96.0.50';
const SERVICE = `apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec:
  clusterIP: ${VIP}
  selector: { app: echo }
  ports: [{ name: http, port: 9080, targetPort: 9080 }]
`;

// Known gap (see the interception report): rig proxy NACKs the REDIRECT-mode config the control
// plane sends (ORIGINAL_DST clusters with lb_policy CLUSTER_PROVIDED, upstream_bind_config,
// the fault and cors HTTP filters), so no listener binds 15001/15006 yet. This test runs as a
// todo until then and passes on its own once they are supported.
test('a plain curl to a service VIP goes through both sidecars', { skip: rootSkipReason(), todo: 'rig proxy does not accept the REDIRECT-mode config yet' }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-mesh-redirect-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'echo.yaml'), SERVICE);
  // The sidecars run as the proxy user and write their ports files here.
  const proxyDir = path.join(dir, 'proxies');
  mkdirSync(proxyDir);
  chmodSync(dir, 0o755);
  chownSync(proxyDir, PROXY_UID, PROXY_UID);
  const net = await podNetwork(t, 'mesh');
  const procs: ChildProcess[] = [];
  t.after(() => procs.forEach((p) => p.kill('SIGKILL')));

  // The control plane listens on the bridge address: the only host address pods can reach.
  const cp = spawn(process.execPath, [RIG_MAIN, 'controlplane', '--config', dir, '--state-dir', path.join(dir, 'state'), '--host', net.gateway, '--xds-port', '0', '--monitoring-port', '0', '--ports-file', path.join(dir, 'cp.json')], { stdio: 'ignore' });
  procs.push(cp);
  const { xds } = await waitForPortsFile(path.join(dir, 'cp.json'), 15_000, () => cp.exitCode !== null);

  const echo = await net.createPod('echo');
  const client = await net.createPod('client');
  const app = net.spawnInPod(echo, process.execPath, [path.join(FIXTURES, 'echo-app.ts'), '9080']);
  procs.push(app);
  assert.equal((await readline.createInterface({ input: app.stdout! })[Symbol.asyncIterator]().next()).value, 'ready');
  for (const [pod, labels, ports] of [
    [echo, 'app=echo', ['--workload-port', '9080/http/HTTP']],
    [client, 'app=client', []],
  ] as const) {
    const portsFile = path.join(proxyDir, `${pod.workload}.json`);
    const args = [RIG_MAIN, 'proxy', '--xds-address', `${net.gateway}:${xds}`, '--interception', 'redirect', '--instance-ip', pod.address, '--labels', labels, '--workload-name', `${pod.workload}-0`, '--ports-file', portsFile, ...ports];
    const proxy = net.spawnInPod(pod, process.execPath, args, { uid: PROXY_UID, stdio: 'ignore' });
    procs.push(proxy);
    await waitForPortsFile(portsFile, 15_000, () => proxy.exitCode !== null);
  }

  // Poll until the sidecars have their listeners (config arrives asynchronously).
  let last = '';
  for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
    const r = await net.execInPod(client, 'curl', ['-sS', '-m', '2', `http://${VIP}:9080/hello`]);
    last = r.stdout + r.stderr;
    if (r.code === 0) break;
  }
  const seen = JSON.parse(last) as { remote: string; headers: Record<string, string> };
  assert.ok(seen.headers['x-request-id'], 'the client sidecar added x-request-id');
  assert.notEqual(seen.remote, client.address, 'the app was called by its sidecar, not by the client');

  await net.destroy();
  assert.deepEqual(leftovers(testPrefix('mesh'), net.bridge), []);
});
