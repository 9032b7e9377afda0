// The file store against a real directory and real filesystem events.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdtemp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import type { ConfigEvent, FileDiagnostics } from '../../src/config/index.ts';
import { FileConfigStore } from '../../src/config/index.ts';

const vsYaml = (name: string, subset: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${name}
spec:
  hosts: [${name}]
  http:
  - route:
    - destination: {host: ${name}, subset: ${subset}}
`;

async function setup(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'rig-file-store-'));
  const store = new FileConfigStore({ dir, debounceMs: 30 });
  const events: ConfigEvent[] = [];
  const reports: FileDiagnostics[] = [];
  store.onChange((b) => events.push(...b));
  store.onDiagnostics((r) => reports.push(...r));
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, store, events, reports };
}

/** Resolves when `check` holds after a change or report; fails after 10 s with `what`. */
function until(store: FileConfigStore, check: () => boolean, what: string): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = () => {
      if (!check()) return;
      clearTimeout(timer);
      offChange();
      offDiag();
      resolve();
    };
    const timer = setTimeout(() => {
      offChange();
      offDiag();
      reject(new Error(`timed out waiting for: ${what}`));
    }, 10_000);
    const offChange = store.onChange(done);
    const offDiag = store.onDiagnostics(done);
  });
}

const subsetOf = (store: FileConfigStore, name: string) =>
  (store.get('VirtualService', 'default', name)?.spec as { http: { route: { destination: { subset: string } }[] }[] } | undefined)?.http[0].route[0].destination.subset;

test('loads a directory recursively at start, with positions', async (t) => {
  const { dir, store } = await setup(t);
  await mkdir(join(dir, 'nested/deeper'), { recursive: true });
  await writeFile(join(dir, 'a.yaml'), vsYaml('reviews', 'v1'));
  await writeFile(join(dir, 'nested/deeper/b.yml'), '# ratings\n' + vsYaml('ratings', 'v1'));
  await writeFile(join(dir, 'nested/notes.txt'), 'not configuration');
  await store.start();
  assert.deepEqual(store.list().map((r) => r.metadata.name).sort(), ['ratings', 'reviews']);
  const ratings = store.get('VirtualService', 'default', 'ratings')!;
  assert.deepEqual(ratings.source, { file: join(dir, 'nested/deeper/b.yml'), line: 2, column: 1 });
  assert.equal(store.diagnostics().length, 0);
});

test('rapid edits are coalesced and end in the last content, versions only increase', async (t) => {
  const { dir, store, events } = await setup(t);
  await store.start();
  const file = join(dir, 'reviews.yaml');
  // Synchronous writes: the whole burst lands before the store's debounce timer can run.
  for (let i = 1; i <= 20; i++) writeFileSync(file, vsYaml('reviews', `v${i}`));
  await until(store, () => subsetOf(store, 'reviews') === 'v20', 'the last edit applied');
  assert.deepEqual(events.map((e) => e.type), ['add'], 'one event for the burst of 20 writes');
  for (let i = 21; i <= 25; i++) {
    await writeFile(file, vsYaml('reviews', `v${i}`));
    await until(store, () => subsetOf(store, 'reviews') === `v${i}`, `edit ${i} applied`);
  }
  const versions = events.map((e) => e.version);
  assert.ok(versions.every((v, i) => i === 0 || v > versions[i - 1]), 'strictly increasing versions');
  assert.equal(store.version, versions[versions.length - 1]);
});

test('an invalid save is reported and the last valid config stays; the fix applies and clears the report', async (t) => {
  const { dir, store, reports } = await setup(t);
  const file = join(dir, 'reviews.yaml');
  await writeFile(file, vsYaml('reviews', 'v1'));
  await store.start();
  const version = store.version;
  await writeFile(file, vsYaml('reviews', 'v2').replace('subset: v2', 'subset: v2, weigth: 3'));
  await until(store, () => reports.some((r) => r.diagnostics.length > 0), 'the invalid file reported');
  const bad = reports.find((r) => r.diagnostics.length > 0)!;
  assert.equal(bad.file, file);
  assert.equal(bad.keptLastValid, true);
  assert.match(bad.diagnostics[0].message, /unknown field "weigth"/);
  assert.deepEqual({ line: bad.diagnostics[0].source?.line, column: bad.diagnostics[0].source?.column }, { line: 9, column: 48 });
  assert.equal(subsetOf(store, 'reviews'), 'v1', 'the last valid version stays in force');
  assert.equal(store.version, version, 'no event for the invalid save');
  await writeFile(file, vsYaml('reviews', 'v3'));
  await until(store, () => subsetOf(store, 'reviews') === 'v3', 'the fix applied');
  await until(store, () => reports.at(-1)?.diagnostics.length === 0, 'the report cleared');
  assert.equal(store.diagnostics().length, 0);
});

test('delete removes the resources, re-create adds them back', async (t) => {
  const { dir, store, events } = await setup(t);
  const file = join(dir, 'reviews.yaml');
  await writeFile(file, vsYaml('reviews', 'v1'));
  await store.start();
  await rm(file);
  await until(store, () => store.list().length === 0, 'the resource deleted');
  assert.equal(events.at(-1)?.type, 'delete');
  await writeFile(file, vsYaml('reviews', 'v2'));
  await until(store, () => subsetOf(store, 'reviews') === 'v2', 'the resource re-created');
  assert.equal(events.at(-1)?.type, 'add');
});

test("an editor's save-by-rename and a file renamed keep the resources without spurious deletes", async (t) => {
  const { dir, store, events } = await setup(t);
  const file = join(dir, 'reviews.yaml');
  await writeFile(file, vsYaml('reviews', 'v1'));
  await store.start();
  const tmp = join(dir, '.reviews.yaml.swp');
  await writeFile(tmp, vsYaml('reviews', 'v2'));
  await rename(tmp, file);
  await until(store, () => subsetOf(store, 'reviews') === 'v2', 'the renamed-over file applied');
  assert.deepEqual(events.map((e) => e.type), ['add', 'update']);
  await rename(file, join(dir, 'renamed.yaml'));
  await writeFile(join(dir, 'ratings.yaml'), vsYaml('ratings', 'v1'));
  await until(store, () => store.get('VirtualService', 'default', 'ratings') !== undefined, 'the next change seen');
  assert.equal(subsetOf(store, 'reviews'), 'v2');
  assert.deepEqual(events.map((e) => e.type), ['add', 'update', 'add'], 'moving a file is not a delete');
  assert.equal(store.get('VirtualService', 'default', 'reviews')?.source?.file, join(dir, 'renamed.yaml'));
});

test('a file replaced by rename again and again (rig apply, sed -i, atomic saves) is read each time, in a subdirectory too', async (t) => {
  const { dir, store } = await setup(t);
  await mkdir(join(dir, 'team'));
  await store.start();
  // Node's recursive fs.watch on Linux saw the first such replacement of a file and none after.
  for (const file of [join(dir, 'reviews.yaml'), join(dir, 'team', 'reviews.yaml')]) {
    if (file !== join(dir, 'reviews.yaml')) await rm(join(dir, 'reviews.yaml'));
    for (const subset of ['v1', 'v2', 'v3']) {
      const tmp = join(tmpdir(), `rig-file-store-${process.pid}-${subset}.tmp`);
      await writeFile(tmp, vsYaml('reviews', subset));
      await rename(tmp, file);
      await until(store, () => subsetOf(store, 'reviews') === subset, `${subset} of ${file} applied`);
    }
  }
});

test('the same resource in two files is an error naming both; the first stays in force', async (t) => {
  const { dir, store, reports } = await setup(t);
  await writeFile(join(dir, 'a.yaml'), vsYaml('reviews', 'v1'));
  await store.start();
  await writeFile(join(dir, 'b.yaml'), vsYaml('reviews', 'v2'));
  await until(store, () => reports.some((r) => r.file === join(dir, 'b.yaml')), 'the duplicate reported');
  const dup = reports.find((r) => r.file === join(dir, 'b.yaml'))!.diagnostics[0];
  assert.match(dup.message, /defined in two files/);
  assert.ok(dup.message.includes(join(dir, 'a.yaml')) && dup.source?.file === join(dir, 'b.yaml'), 'names both places');
  assert.equal(subsetOf(store, 'reviews'), 'v1');
  await rm(join(dir, 'a.yaml'));
  await until(store, () => subsetOf(store, 'reviews') === 'v2', 'the other definition takes over once the first is gone');
});

test('writeFile applies atomically and returns the problems; removeFile deletes', async (t) => {
  const { store } = await setup(t);
  await store.start();
  assert.deepEqual(await store.writeFile('apps/reviews.yaml', vsYaml('reviews', 'v1')), []);
  assert.equal(subsetOf(store, 'reviews'), 'v1');
  const problems = await store.writeFile('apps/reviews.yaml', 'kind: [');
  assert.equal(problems[0].severity, 'Error');
  assert.equal(subsetOf(store, 'reviews'), 'v1', 'kept');
  await assert.rejects(store.writeFile('../escape.yaml', ''), /outside/);
  await store.removeFile('apps/reviews.yaml');
  assert.equal(store.list().length, 0);
});

test('when the whole directory disappears the configuration stays, and comes back with it', async (t) => {
  const { dir, store, reports } = await setup(t);
  await writeFile(join(dir, 'reviews.yaml'), vsYaml('reviews', 'v1'));
  await store.start();
  await rm(dir, { recursive: true });
  await until(store, () => reports.some((r) => r.file === dir && r.diagnostics.length > 0), 'the missing directory reported');
  assert.equal(subsetOf(store, 'reviews'), 'v1', 'kept');
  await mkdir(dir);
  await writeFile(join(dir, 'reviews.yaml'), vsYaml('reviews', 'v2'));
  await until(store, () => subsetOf(store, 'reviews') === 'v2', 'the new directory watched again');
});

test('start() fails clearly on a missing directory or a file, unless asked to create it', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'rig-file-store-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  await assert.rejects(new FileConfigStore({ dir: join(base, 'missing'), watch: false }).start(), /configuration directory .*missing does not exist/);
  await writeFile(join(base, 'one.yaml'), vsYaml('reviews', 'v1'));
  await assert.rejects(new FileConfigStore({ dir: join(base, 'one.yaml'), watch: false }).start(), /is a file/);
  const created = new FileConfigStore({ dir: join(base, 'new/dir'), create: true, watch: false });
  await created.start();
  assert.equal(created.list().length, 0);
  await created.close();
});

test('a file rewritten without pause is still applied while the writes go on', async (t) => {
  const { dir, store } = await setup(t);
  const file = join(dir, 'reviews.yaml');
  await writeFile(file, vsYaml('reviews', 'v0'));
  await store.start();
  let stop = false;
  let n = 0;
  const writer = (async () => {
    while (!stop) {
      await writeFile(file, vsYaml('reviews', `v${++n}`));
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  t.after(async () => {
    stop = true;
    await writer;
  });
  await until(store, () => subsetOf(store, 'reviews') !== 'v0', 'an update applied during the stream of writes');
  assert.equal(stop, false, 'applied while the writer was still running');
  stop = true;
  await writer;
  await until(store, () => subsetOf(store, 'reviews') === `v${n}`, 'the last write applied');
});

test('with its reads deferred, the store announces changes and reads them only when asked', async (t) => {
  const { dir, store, events } = await setup(t);
  const file = join(dir, 'reviews.yaml');
  await writeFile(file, vsYaml('reviews', 'v1'));
  await store.start();
  let announced = 0;
  const deferred = store.deferReads(() => announced++);
  await writeFile(file, vsYaml('reviews', 'v2'));
  await writeFile(join(dir, 'ratings.yaml'), vsYaml('ratings', 'v1'));
  const deadline = Date.now() + 10_000;
  while (announced === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.ok(announced > 0, 'the changes announced');
  // Well past the store's own quiet period (30 ms): nothing read without read().
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(subsetOf(store, 'reviews'), 'v1');
  assert.deepEqual(events.map((e) => e.type), ['add']);
  await deferred.read();
  assert.equal(subsetOf(store, 'reviews'), 'v2');
  assert.deepEqual(events.slice(1).map((e) => `${e.type} ${e.resource.metadata.name}`).sort(), ['add ratings', 'update reviews'], 'one read, both files');
  // Released, the store waits for its own quiet period again.
  deferred.release();
  await writeFile(file, vsYaml('reviews', 'v3'));
  await until(store, () => subsetOf(store, 'reviews') === 'v3', 'applied by the store itself');
});

test("a resource defined in several files: the errors and the definition in force follow each file's changes", async (t) => {
  const { dir, store } = await setup(t);
  const [a, b, c] = ['a.yaml', 'b.yaml', 'c.yaml'].map((f) => join(dir, f));
  await writeFile(a, vsYaml('reviews', 'v1'));
  await store.start();
  const duplicates = () =>
    store
      .diagnostics()
      .filter((d) => d.code === 'RIG0004')
      .map((d) => `${d.source?.file === b ? 'b' : d.source?.file === c ? 'c' : 'a'} -> ${d.message.includes(a) ? 'a' : d.message.includes(b) ? 'b' : 'c'}`)
      .sort();
  await store.writeFile('c.yaml', vsYaml('reviews', 'v3'));
  await store.writeFile('b.yaml', vsYaml('reviews', 'v2'));
  assert.equal(subsetOf(store, 'reviews'), 'v1', 'the first definition stays in force');
  assert.deepEqual(duplicates(), ['b -> a', 'c -> a']);
  await store.writeFile('a.yaml', vsYaml('ratings', 'v1'));
  assert.equal(subsetOf(store, 'reviews'), 'v2', 'the next file in path order takes over');
  assert.equal(subsetOf(store, 'ratings'), 'v1');
  assert.deepEqual(duplicates(), ['c -> b']);
  await store.removeFile('b.yaml');
  assert.equal(subsetOf(store, 'reviews'), 'v3');
  assert.deepEqual(duplicates(), []);
  await store.removeFile('c.yaml');
  assert.equal(store.get('VirtualService', 'default', 'reviews'), undefined);
  assert.deepEqual(store.list().map((r) => r.metadata.name), ['ratings']);
});
