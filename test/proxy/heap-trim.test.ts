import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import { execFileSync } from 'node:child_process';
import { capYoungGeneration, trimHeap, trimHeapWhenReady } from '../../src/proxy/heap-trim.ts';

const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;

/** Start-up-like allocation: many objects that survive a few scavenges, so V8 grows the young generation. */
function grow(): void {
  let keep: object[] = [];
  for (let i = 0; i < 400_000; i++) {
    keep.push({ i, s: `k${i}` });
    if (keep.length > 50_000) keep = [];
  }
}

test('trimHeap shrinks the young generation that start-up grew', () => {
  grow();
  const before = newSpace();
  trimHeap();
  const after = newSpace();
  assert.ok(after < before, `new space ${after} bytes after the trim, ${before} before`);
  assert.equal((globalThis as { gc?: unknown }).gc, undefined, 'gc must not leak into the global scope');
});

/**
 * Bytecode freed by one trimHeap(flush) in a fresh process (whether V8 flushes on its own depends on
 * the GCs before) after a function of ~20k statements (about 700 kB of bytecode) ran once.
 */
function bytecodeFreedByOneTrim(flush: boolean): number {
  const script = `
    import v8 from 'node:v8';
    import { trimHeap } from ${JSON.stringify(new URL('../../src/proxy/heap-trim.ts', import.meta.url).href)};
    const bytecode = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'trusted_space').space_used_size;
    const body = Array.from({ length: 20000 }, (_, i) => 'x = (x * 31 + ' + i + ') | 0;').join('\\n');
    const f = new Function('let x = 0;\\n' + body + '\\nreturn x;');
    f();
    const before = bytecode();
    trimHeap(${flush});
    if (typeof f() !== 'number') throw new Error('the function no longer runs');
    console.log(before - bytecode());`;
  return Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
}

test('trimHeap(true) drops the bytecode of a function that ran once; a plain trimHeap() keeps it', () => {
  const plain = bytecodeFreedByOneTrim(false);
  const flushing = bytecodeFreedByOneTrim(true);
  assert.ok(plain < 200_000, `a plain trim freed ${plain} bytes of bytecode`);
  assert.ok(flushing > 500_000, `the flushing trim freed ${flushing} bytes of bytecode`);
});

test('trimHeapWhenReady waits for readiness, then trims once', async () => {
  let ready = false;
  const trimmed: number[] = [];
  const cancel = trimHeapWhenReady(() => ready, (ms) => trimmed.push(ms), { pollMs: 10 });
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(trimmed.length, 0);
  ready = true;
  await new Promise((r) => setTimeout(r, 40));
  cancel();
  assert.equal(trimmed.length, 1);
  assert.ok(trimmed[0] >= 0);
});

/** Proxy-like allocation across event-loop turns (the cap acts after each GC, between turns). */
async function churn(turns: number): Promise<void> {
  let keep: object[] = [];
  for (let t = 0; t < turns; t++) {
    for (let i = 0; i < 2_000; i++) {
      keep.push({ i, s: `k${i}` });
      if (keep.length > 30_000) keep = [];
    }
    await new Promise((r) => setImmediate(r));
  }
}

test('capYoungGeneration keeps the young generation small under churn, and undoes it', async () => {
  trimHeap();
  const cap = 2 * 1024 * 1024;
  const uncap = capYoungGeneration(cap);
  try {
    await churn(1500);
    assert.ok(newSpace() <= 2 * cap, `new space ${newSpace()} bytes with a ${cap}-byte cap`);
  } finally {
    uncap();
  }
  await churn(1500);
  assert.ok(newSpace() > 2 * cap, `new space ${newSpace()} bytes once uncapped: it grows again`);
});

test('capYoungGeneration lets a young generation that V8 shrank grow back to the cap', async () => {
  trimHeap();
  // Above the 2 MB that V8's initial semi-spaces (1 MB each) take: frozen at that size, it would stay there.
  const cap = 8 * 1024 * 1024;
  const uncap = capYoungGeneration(cap, 20);
  try {
    await churn(1500);
    assert.ok(newSpace() >= cap, `new space ${newSpace()} bytes: at the cap under churn`);
    trimHeap(); // shrinks the young generation, as V8 does when a proxy idles
    const shrunk = newSpace();
    assert.ok(shrunk < cap, `new space ${shrunk} bytes after a memory-reducing GC`);
    await new Promise((r) => setTimeout(r, 60));
    await churn(1500);
    assert.ok(newSpace() >= cap, `new space ${newSpace()} bytes: grown back from ${shrunk} to the cap`);
    assert.ok(newSpace() <= 2 * cap, `new space ${newSpace()} bytes with a ${cap}-byte cap`);
  } finally {
    uncap();
  }
});
