import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runRig } from './cli.ts';

test('rig version prints the package version and an unknown command fails with usage help', async () => {
  const ok = await runRig(['version', '-o', 'json']);
  assert.equal(ok.code, 0);
  assert.match(JSON.parse(ok.stdout).version, /^\d+\.\d+\.\d+/);
  const bad = await runRig(['no-such-command']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /unknown command/);
});
