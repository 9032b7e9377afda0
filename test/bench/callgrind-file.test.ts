// The reading of callgrind's output behind `npm run bench:instructions` (bench/profile/): checked
// on a real dump (valgrind --tool=callgrind of a short program) against the totals callgrind
// writes and the inclusive costs callgrind_annotate computes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inclusive, nameJitCode, parseCallgrind } from '../../bench/profile/callgrind-file.ts';
import { perRequest } from '../../bench/profile/instruction-figures.ts';

const noValgrind = spawnSync('valgrind', ['--version']).status !== 0 && 'valgrind is not installed (apt-get install valgrind)';

test('a real dump: every instruction counted once, inclusive costs as callgrind_annotate counts them', { skip: noValgrind }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-callgrind-test-'));
  let text: string;
  let annotated: string;
  try {
    const file = path.join(dir, 'callgrind.out');
    execFileSync('valgrind', ['--tool=callgrind', `--callgrind-out-file=${file}`, '/bin/ls', '/'], { stdio: 'ignore' });
    text = readFileSync(file, 'utf8');
    annotated = execFileSync('callgrind_annotate', ['--threshold=100', '--inclusive=yes', file], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const dump = parseCallgrind(text);
  let self = 0;
  for (const f of dump.functions.values()) self += f.self;
  assert.equal(self, Number(/^totals: (\d+)$/m.exec(text)![1]));
  assert.equal(dump.total, Number(/^summary: (\d+)$/m.exec(text)![1]));

  // "  1,234 (12.34%)  file:function [object]"; compared where a name appears once (no file:name split).
  const theirs = new Map<string, number[]>();
  for (const m of annotated.matchAll(/^ *([\d,]+) \( *[\d.]+%\) {2}[^:]*:(.*) \[.*\]$/gm)) {
    theirs.set(m[2], [...(theirs.get(m[2]) ?? []), Number(m[1].replaceAll(',', ''))]);
  }
  let compared = 0;
  for (const [name, costs] of theirs) {
    const f = dump.functions.get(name);
    if (costs.length !== 1 || !f) continue;
    assert.equal(inclusive(f), costs[0], name);
    compared++;
  }
  assert.ok(compared > 50, `compared ${compared} functions`);
});

// The shape of a dump of `rig proxy` (names as callgrind writes them), with round numbers.
const PROXY_DUMP = `events: Ir
summary: 1000000
fl=(1) ???
ob=(1) /usr/bin/node
fn=(1) uv_run
0 100000
cfn=(2) v8::internal::Compiler::CompileOptimized(v8::internal::Isolate*)
calls=2 0
0 300000
cfn=(3) v8::internal::Heap::CollectGarbage(v8::internal::AllocationSpace)
calls=3 0
0 150000
cfn=(5) Builtins_CompileLazy
calls=1 0
0 20000
cfn=(7) Builtins_LoadICBaseline
calls=40 0
0 4000
fn=(7)
0 4000
fn=(3)
0 10000
cfn=(4) v8::internal::ScavengerCollector::CollectGarbage()
calls=3 0
0 120000
fn=(2)
0 300000
fn=(4)
0 120000
fn=(5)
0 20000
ob=(2) /usr/lib/x86_64-linux-gnu/libc.so.6
fl=(2) ./nptl/./nptl/pthread_create.c
fn=(6) start_thread
0 10000
`;

test('per request: compiles, old-generation GC (without scavenges) and other threads left out; baseline-tier builtins counted in and reported', () => {
  const r = perRequest(parseCallgrind(PROXY_DUMP), 100);
  assert.deepEqual(r, { requests: 100, all: 10000, background: 100, compiles: 3200, oldGenerationGc: 300, instructions: 6400, scavenges: 3, baselineTier: 40 });
});

test('JIT code named from the perf map, the source tree taken out of its file names', () => {
  const map = '1000 20 JS:*onHead file:///snap/dist/h1.js:3:5\n2000 10 Builtins_Foo\n';
  const text = 'fn=(1) 0x0000000000001010\n0 5\ncfn=(2) 0x0000000000001fff\ncalls=1 0\n0 1\nfn=(3) 0x0000000000002004\n';
  assert.equal(
    nameJitCode(text, map, 'file:///snap/'),
    'fn=(1) JIT JS:*onHead dist/h1.js:3:5\n0 5\ncfn=(2) 0x0000000000001fff\ncalls=1 0\n0 1\nfn=(3) JIT Builtins_Foo\n',
  );
});
