// rig controlplane reads ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY as istiod reads its boolean
// features: a value that is not one is refused before anything listens, naming the variable;
// without the CA (no proxy can prove an identity) it warns that VM registration is refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runRig, spawnRig, stopProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { until } from '../helpers/wait.ts';

test('a bad ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY is refused; --no-ca with validation warns', async (t) => {
  const dir = tempDir(t, 'rig-cp-env-');
  const args = ['controlplane', '--config', dir, '--xds-port', '0', '--monitoring-port', '0', '--no-ca', '--log-format', 'text'];
  const bad = await runRig(args, { env: { ...process.env, ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY: 'maybe' } });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /environment variable ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY="maybe" is not a boolean: use true or false/);
  let log = '';
  const cp = spawnRig(args, { env: { ...process.env, ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY: '' } });
  t.after(() => stopProcess(cp));
  cp.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await until(() => `the warning\n${log}`, () => /without the CA no proxy proves an identity/.test(log));
});
