// `rig apply` storage: one file per resource in the applied directory; a Workload keeps its
// working directory relative to the file it was written in; delete removes exactly that file.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadPaths } from '../../src/api/index.ts';
import { applyResource, deleteResource } from '../../src/local/applied-config.ts';
import { tempDir } from '../helpers/temp-dir.ts';

test('apply writes one file per resource; a Workload cwd stays relative to its own file', async (t) => {
  const dir = tempDir(t, 'rig-applied-');
  mkdirSync(path.join(dir, 'app'));
  writeFileSync(
    path.join(dir, 'app', 'w.yaml'),
    'apiVersion: local.rigging.dev/v1alpha1\nkind: Workload\nmetadata: { name: web }\nspec:\n  command: [node, web.ts]\n  cwd: ../src\n',
  );
  const { resources } = await loadPaths([path.join(dir, 'app', 'w.yaml')]);
  const applied = path.join(dir, 'applied');
  assert.equal(applyResource(applied, resources[0]), 'created');
  assert.equal(applyResource(applied, resources[0]), 'configured');
  assert.deepEqual(readdirSync(applied), ['workload.default.web.yaml']);
  const back = await loadPaths([applied]);
  assert.equal((back.resources[0].spec as { cwd: string }).cwd, path.join(dir, 'src'));
  assert.equal(deleteResource(applied, resources[0]), true);
  assert.equal(deleteResource(applied, resources[0]), false);
  assert.deepEqual(readdirSync(applied), []);
});
