import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
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
