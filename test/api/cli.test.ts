// `rig validate` and `rig analyze` as users run them.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runRig } from '../helpers/cli.ts';

test('rig validate -f examples/: every example is valid, one-line summary, exit 0', async () => {
  const r = await runRig(['validate', '-f', 'examples/']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /^✔ \d+ valid resources in \d+ files: no errors( \(\d+ documents of other kinds not read: [A-Za-z, ]+\))?\n$/);
  assert.equal(r.stderr, '');
});

test('rig validate lists every error with file:line:column and exits 1', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rig-validate-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'bad.yaml');
  await writeFile(file, `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1}, {name: v1}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}], timeout: soon}]
`);
  const r = await runRig(['validate', '-f', file, '-n', 'shop']);
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 3, r.stderr);
  assert.ok(lines[0].startsWith(`${file}:6:32: Error [IST0106] DestinationRule shop/reviews spec.subsets[1].name: duplicate subset name "v1"`), lines[0]);
  assert.ok(lines[1].startsWith(`${file}:13:61: Error [IST0106] VirtualService shop/reviews spec.http[0].timeout: "soon" is not a duration`), lines[1]);
  assert.equal(lines[2], '✘ 2 errors (0 valid resources in 1 file)');
});

test('rig validate -f - reads standard input; json output', async () => {
  const r = await runRig(['validate', '-f', '-', '-o', 'json'], { input: 'apiVersion: v1\nkind: Namespace\nmetadata: {name: Shop}\n' });
  assert.equal(r.code, 1);
  const out = JSON.parse(r.stdout) as { valid: boolean; diagnostics: { message: string; source: { file: string; line: number } }[] };
  assert.equal(out.valid, false);
  assert.match(out.diagnostics[0].message, /"Shop" is not a valid namespace name/);
  assert.deepEqual([out.diagnostics[0].source.file, out.diagnostics[0].source.line], ['<stdin>', 3]);
});

test('rig validate without -f is a usage error', async () => {
  const r = await runRig(['validate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /needs -f PATH/);
});

test('rig analyze: Istio codes, json/yaml output, failure threshold and exit status', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rig-analyze-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'mesh.yaml'), `apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  ports: [{name: web, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}}]}]
`);
  const text = await runRig(['analyze', '--use-live=false', '-f', dir]);
  assert.equal(text.code, 79, text.stdout + text.stderr);
  assert.ok(text.stdout.startsWith(`Error [IST0101] (VirtualService default/reviews ${join(dir, 'mesh.yaml')}:12:57) spec.http[0].route[0].destination.subset: Referenced host+subset in destinationrule not found: "reviews+v1"`), text.stdout);
  assert.match(text.stdout, /Info \[IST0118\] \(Service default\/reviews/);
  assert.match(text.stderr, /Analyzers found issues/);
  const json = await runRig(['analyze', '--use-live=false', '-f', dir, '-o', 'json', '--output-threshold', 'Warning']);
  const records = JSON.parse(json.stdout) as { code: string; level: string; documentationUrl: string }[];
  assert.deepEqual(records.map((m) => [m.code, m.level]), [['IST0101', 'Error']]);
  assert.equal(records[0].documentationUrl, 'https://istio.io/latest/docs/reference/config/analysis/ist0101/');
  const yaml = await runRig(['analyze', '--use-live=false', '-f', dir, '-o', 'yaml']);
  assert.match(yaml.stdout, /- code: IST0101\n {2}level: Error/);
  const clean = await runRig(['analyze', '--use-live=false', '-f', 'examples/istio', '--failure-threshold', 'Info']);
  assert.equal(clean.code, 0, clean.stdout);
  assert.equal(clean.stdout, '');
  assert.match(clean.stderr, /^✔ No validation issues found/);
  const bad = await runRig(['analyze', '--use-live=false', '-f', dir, '--failure-threshold', 'Severe']);
  assert.equal(bad.code, 2);
});

test('a reader that leaves early (rig … | head) ends the output quietly: no EPIPE stack trace', async () => {
  const { spawn } = await import('node:child_process');
  const { RIG_MAIN } = await import('../helpers/cli.ts');
  const child = spawn(process.execPath, [RIG_MAIN, 'validate', '-f', 'examples/'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy(); // the pipe's read end closes before rig writes
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  assert.equal(stderr, '');
  assert.equal(code, 0);
});
