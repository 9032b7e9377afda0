import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadDocuments, loadPaths, workloadCwd } from '../../src/api/index.ts';

const SERVICE = `apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
  ports: [{name: http, port: 9080}]
  selector: {app: reviews}
`;

test('multi-document YAML keeps each resource position and defaults the namespace', () => {
  const text = `# leading comment\n${SERVICE}---\n${SERVICE.replace('reviews\n', 'ratings\n  namespace: shop\n')}`;
  const { resources, diagnostics } = loadDocuments(text, 'svc.yaml');
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(resources.map((r) => [r.metadata.namespace, r.metadata.name, r.source?.line, r.source?.column]), [
    ['default', 'reviews', 2, 1],
    ['shop', 'ratings', 10, 1],
  ]);
  const other = loadDocuments(SERVICE, 'svc.yaml', { defaultNamespace: 'bookinfo' });
  assert.equal(other.resources[0].metadata.namespace, 'bookinfo');
});

test('one bad document does not stop the others', () => {
  const bad = SERVICE.replace('port: 9080', 'port: "9080"').replace('reviews\n', 'bad\n');
  const { resources, diagnostics } = loadDocuments(`${SERVICE}---\n${bad}---\n${SERVICE.replace('reviews\n', 'details\n')}`, 'x.yaml');
  assert.deepEqual(resources.map((r) => r.metadata.name), ['reviews', 'details']);
  assert.equal(diagnostics.length, 1);
  assert.equal(diagnostics[0].resource, 'Service default/bad');
  assert.equal(diagnostics[0].path, 'spec.ports[0].port');
  assert.match(diagnostics[0].message, /must be a number, not a string/);
});

test('JSON, a kind: List and a top-level sequence are read; a Namespace has no namespace', () => {
  const json = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'istio-injection': 'enabled' } } }] });
  const a = loadDocuments(json, 'ns.json');
  assert.deepEqual(a.diagnostics, []);
  assert.equal(a.resources[0].kind, 'Namespace');
  assert.equal(a.resources[0].metadata.namespace, '');
  const b = loadDocuments(`- ${SERVICE.trim().replace(/\n/g, '\n  ')}\n`, 'seq.yaml');
  assert.deepEqual(b.diagnostics, []);
  assert.equal(b.resources[0].metadata.name, 'reviews');
});

test('older served versions are accepted; kinds of other APIs are noted (Info) and not read', () => {
  const vs = `apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews}
`;
  const { resources, diagnostics } = loadDocuments(vs, 'x.yaml');
  assert.equal(resources.length, 1);
  assert.equal(diagnostics.length, 1);
  assert.equal(diagnostics[0].severity, 'Info');
  assert.match(diagnostics[0].message, /apps\/v1 Deployment is not a kind Rigging reads/);
});

test('the Workload kind: valid spec accepted, bad fields rejected with positions', () => {
  const ok = `apiVersion: local.rigging.dev/v1alpha1
kind: Workload
metadata: {name: reviews-v1, labels: {app: reviews, version: v1}}
spec:
  command: [node, reviews.ts]
  replicas: 2
  env: {PORT: "9080"}
  ports: [{name: http, port: 9080}]
  readinessProbe: {httpGet: {path: /health, port: 9080}, periodSeconds: 1}
`;
  const a = loadDocuments(ok, 'w.yaml');
  assert.deepEqual(a.diagnostics, []);
  const b = loadDocuments(ok.replace('PORT: "9080"', 'PORT: 9080').replace('periodSeconds: 1', 'periodSecond: 1'), 'w.yaml');
  assert.deepEqual(b.diagnostics.map((d) => [d.path, d.source?.line]), [
    ['spec.env.PORT', 7],
    ['spec.readinessProbe.periodSecond', 9],
  ]);
  assert.match(b.diagnostics[1].hint ?? '', /did you mean "periodSeconds"/);
});

test('loadPaths reads directories recursively and reports missing paths and duplicates', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rig-loader-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'a.yaml'), SERVICE);
  await writeFile(join(dir, 'sub/b.yml'), SERVICE);
  await writeFile(join(dir, 'sub/readme.md'), '# not config');
  const r = await loadPaths([dir, join(dir, 'missing.yaml')]);
  assert.deepEqual(r.files, [join(dir, 'a.yaml'), join(dir, 'sub/b.yml')]);
  assert.equal(r.resources.length, 1);
  assert.deepEqual(r.diagnostics.map((d) => d.code).sort(), ['RIG0004', 'RIG0005']);
  const dup = r.diagnostics.find((d) => d.code === 'RIG0004')!;
  assert.ok(dup.message.includes(`${join(dir, 'a.yaml')}:1:1`) && dup.source?.file === join(dir, 'sub/b.yml'));
  const kept = await loadPaths([dir], { duplicates: 'keep' });
  assert.equal(kept.resources.length, 2);
});

test('workloadCwd resolves spec.cwd against the directory of the defining file', () => {
  const spec = { command: ['node'], cwd: './apps' };
  assert.equal(workloadCwd({ spec, source: { file: 'examples/bookinfo/workloads.yaml' } }, '/repo'), '/repo/examples/bookinfo/apps');
  assert.equal(workloadCwd({ spec: { command: ['node'] }, source: { file: '/etc/rig/w.yaml' } }, '/repo'), '/etc/rig');
  assert.equal(workloadCwd({ spec: { command: ['node'], cwd: '/srv/app' } }, '/repo'), '/srv/app');
});

test('metadata: creationTimestamp is kept, server-set fields are noted, unknown fields are errors', () => {
  const withMeta = (extra: string) => SERVICE.replace('  name: reviews\n', `  name: reviews\n${extra}`);
  const kept = loadDocuments(withMeta('  creationTimestamp: "2024-01-31T12:00:00+01:00"\n  uid: 1f0c\n  resourceVersion: "42"\n'), 'svc.yaml');
  assert.equal(kept.resources[0].metadata.creationTimestamp, '2024-01-31T11:00:00.000Z');
  assert.equal(kept.resources[0].metadata.resourceVersion, undefined);
  assert.deepEqual(kept.diagnostics.map((d) => [d.severity, d.code, d.path, d.source?.line]), [
    ['Info', 'RIG0006', 'metadata.uid', 6],
    ['Info', 'RIG0006', 'metadata.resourceVersion', 7],
  ]);

  const badTime = loadDocuments(withMeta('  creationTimestamp: yesterday\n'), 'svc.yaml');
  assert.equal(badTime.resources.length, 0);
  assert.match(badTime.diagnostics[0].message, /creationTimestamp must be an RFC 3339 time/);

  const typo = loadDocuments(withMeta('  lables: {app: reviews}\n'), 'svc.yaml');
  assert.equal(typo.resources.length, 0);
  assert.deepEqual([typo.diagnostics[0].path, typo.diagnostics[0].hint], ['metadata.lables', 'did you mean "labels"?']);
});
