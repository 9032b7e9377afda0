// The configuration `rig up` follows: applied files win over -f files, and a file deleted and
// written again is still seen (Node's recursive fs.watch on Linux loses such files).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadDocuments } from '../../src/api/index.ts';
import { applyResource, deleteResource } from '../../src/local/applied-config.ts';
import { ConfigSources } from '../../src/local/config-sources.ts';
import { until } from '../helpers/wait.ts';

const vs = (subset: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: { host: reviews, subset: ${subset} }
`;

function subsetOf(cfg: ConfigSources): string | undefined {
  const r = cfg.store.get('VirtualService', 'default', 'reviews');
  return (r?.spec as { http: { route: { destination: { subset: string } }[] }[] } | undefined)?.http[0].route[0].destination.subset;
}

test('applied resources replace -f ones, and a deleted then re-applied file is followed', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-sources-'));
  const applied = path.join(dir, 'applied');
  writeFileSync(path.join(dir, 'vs.yaml'), vs('v1'));
  const cfg = await ConfigSources.open([path.join(dir, 'vs.yaml')], applied);
  t.after(async () => {
    await cfg.close();
    rmSync(dir, { recursive: true, force: true });
  });
  assert.equal(subsetOf(cfg), 'v1');
  const res = (subset: string) => loadDocuments(vs(subset), 'stdin').resources[0];
  applyResource(applied, res('v2'));
  await until('v2 applied', () => subsetOf(cfg) === 'v2', { timeoutMs: 3000, intervalMs: 30 });
  applyResource(applied, res('v3'));
  await until('v3 replaces v2', () => subsetOf(cfg) === 'v3', { timeoutMs: 3000, intervalMs: 30 });
  deleteResource(applied, res('v3'));
  await until('back to the -f file', () => subsetOf(cfg) === 'v1', { timeoutMs: 3000, intervalMs: 30 });
  applyResource(applied, res('v2'));
  await until('v2 applied after a delete', () => subsetOf(cfg) === 'v2', { timeoutMs: 3000, intervalMs: 30 });
  applyResource(applied, res('v3'));
  await until('v3 applied again', () => subsetOf(cfg) === 'v3', { timeoutMs: 3000, intervalMs: 30 });
});

test('the reader of the merged store may take over when the watched directories are read (one debounce for `rig apply`, the push\'s)', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-sources-'));
  const applied = path.join(dir, 'applied');
  const cfg = await ConfigSources.open([], applied);
  t.after(async () => {
    await cfg.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let pending = 0;
  const deferred = cfg.store.deferReads(() => pending++);
  t.after(() => deferred.release());
  applyResource(applied, loadDocuments(vs('v2'), 'stdin').resources[0]);
  await until('the change announced to the reader', () => pending > 0, { timeoutMs: 3000, intervalMs: 10 });
  await deferred.read();
  assert.equal(subsetOf(cfg), 'v2', 'read() brings the change into the merged store');
});
