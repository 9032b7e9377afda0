// `rig apply` storage: one file per resource in the applied directory; a Workload keeps its
// working directory relative to the file it was written in; delete removes exactly that file.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadPaths } from '../../src/api/index.ts';
import { appliedResources, applyResource, deleteResource } from '../../src/local/applied-config.ts';
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

test("the applied resources are listed with the kind as kubectl shows it: the Gateway API's Gateway by its group", async (t) => {
  const dir = tempDir(t, 'rig-applied-');
  writeFileSync(
    path.join(dir, 'gw.yaml'),
    'apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: web }\nspec:\n  gatewayClassName: istio\n  listeners: [{ name: http, port: 80, protocol: HTTP }]\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: { name: web }\nspec:\n  selector: { istio: ingressgateway }\n  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }]\n',
  );
  const { resources } = await loadPaths([path.join(dir, 'gw.yaml')]);
  const applied = path.join(dir, 'applied');
  for (const r of resources) applyResource(applied, r);
  assert.deepEqual(appliedResources(applied), ['Gateway default/web', 'Gateway.gateway.networking.k8s.io default/web']);
});
