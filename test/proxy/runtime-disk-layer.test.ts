// Envoy's fault-injection sandbox (test/proxy/envoy-examples/fault-injection.yaml) run by `rig proxy
// -c`: its disk layer is switched by swapping the symlink, with the sandbox's own steps (write
// fault/http/abort/abort_percent and http_status under v1/envoy, then `ln -s v1 new && mv -Tf new
// current`) and with `ln -sfn`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { request, startUpstream } from './harness.ts';
import type { RuntimeDump } from '../../src/proxy/envoy-runtime/index.ts';

const SANDBOX = path.join(import.meta.dirname, 'envoy-examples', 'fault-injection.yaml');

/** Sends requests until one answers `status` (the reload follows the symlink swap's inotify event); then 20 more must too. */
async function settlesOn(port: number, status: number): Promise<void> {
  let last = 0;
  for (let i = 0; i < 2000 && last !== status; i++) {
    last = (await request(port)).status;
    if (last !== status) await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(last, status, `requests never answered ${status}`);
  for (let i = 0; i < 20; i++) assert.equal((await request(port)).status, status);
}

test('fault-injection sandbox: swapping the disk layer symlink to a tree with fault.http.abort.abort_percent=100 aborts every request with 503; swapping back serves again', async (t) => {
  const backend = await startUpstream('backend');
  t.after(() => backend.close());
  const dir = tempDir(t, 'fault-injection-');
  const runtime = path.join(dir, 'srv-runtime');
  fs.mkdirSync(path.join(runtime, 'v1'), { recursive: true });
  fs.symlinkSync(path.join(runtime, 'v1'), path.join(runtime, 'current'));
  const yaml = fs
    .readFileSync(SANDBOX, 'utf8')
    .replace('port_value: 9211', 'port_value: 0')
    .replace('address: 0.0.0.0', 'address: 127.0.0.1')
    .replace('address: backend\n                port_value: 80', `address: 127.0.0.1\n                port_value: ${backend.port}`)
    .replaceAll('/srv/runtime', runtime);
  const file = path.join(dir, 'envoy.yaml');
  fs.writeFileSync(file, yaml);
  const proxy = await startRigProxyFromFile(t, file);
  const [port] = Object.values(proxy.ports.listeners);
  assert.equal((await request(port!)).status, 200);
  assert.doesNotMatch(proxy.log(), /layered_runtime/, 'the disk layer is read, not warned about');

  // enable_abort_fault_injection.sh
  const abortDir = path.join(runtime, 'v1', 'envoy', 'fault', 'http', 'abort');
  fs.mkdirSync(abortDir, { recursive: true });
  fs.writeFileSync(path.join(abortDir, 'abort_percent'), '100\n');
  fs.writeFileSync(path.join(abortDir, 'http_status'), '503\n');
  assert.equal((await request(port!)).status, 200, 'files written under the tree take effect only when the symlink is swapped');
  execFileSync('ln', ['-s', path.join(runtime, 'v1'), 'new'], { cwd: runtime });
  execFileSync('mv', ['-Tf', 'new', 'current'], { cwd: runtime });
  await settlesOn(port!, 503);
  const admin = `http://127.0.0.1:${proxy.ports.admin}`;
  const dump = (await (await fetch(`${admin}/runtime`)).json()) as RuntimeDump;
  assert.deepEqual(dump.layers, ['disk_layer_0']);
  assert.deepEqual(dump.entries['fault.http.abort.abort_percent'], { final_value: '100', layer_values: ['100'] });

  // disable_abort_fault_injection.sh
  fs.rmSync(path.join(abortDir, 'abort_percent'));
  fs.rmSync(path.join(abortDir, 'http_status'));
  execFileSync('ln', ['-s', path.join(runtime, 'v1'), 'new'], { cwd: runtime });
  execFileSync('mv', ['-Tf', 'new', 'current'], { cwd: runtime });
  await settlesOn(port!, 200);

  // The same with `ln -sfn` to another tree and back; a runtime http_status replaces the configured one.
  const v2 = path.join(runtime, 'v2', 'envoy', 'fault', 'http', 'abort');
  fs.mkdirSync(v2, { recursive: true });
  fs.writeFileSync(path.join(v2, 'abort_percent'), '100');
  fs.writeFileSync(path.join(v2, 'http_status'), '# the status for the drill\n429\n');
  execFileSync('ln', ['-sfn', path.join(runtime, 'v2'), path.join(runtime, 'current')]);
  await settlesOn(port!, 429);
  execFileSync('ln', ['-sfn', path.join(runtime, 'v1'), path.join(runtime, 'current')]);
  await settlesOn(port!, 200);

  const stats = await (await fetch(`${admin}/stats?filter=^runtime\\.`)).text();
  assert.match(stats, /runtime\.num_layers: 1\n/);
  assert.ok(Number(/runtime\.load_success: (\d+)/.exec(stats)?.[1]) >= 5, `one load at start and one per swap: ${stats}`);
  assert.match(stats, /runtime\.override_dir_not_exists: \d+\n/);
  assert.match(proxy.stdout(), /" 503 FI /, 'the aborted requests are logged with the FI flag');
});
