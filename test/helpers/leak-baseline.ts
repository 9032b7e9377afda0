// Leak checks of the abuse tests: open file descriptors and the heap after garbage collection,
// taken before a burst and compared after it, so sockets, streams or buffers left behind show.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

export function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** The heap in use once three rounds of garbage collection have run (timers in between let closes finish). */
export async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 20));
    gc();
  }
  return process.memoryUsage().heapUsed;
}

export interface LeakBaseline {
  fds: number;
  heap: number;
}

export async function leakBaseline(): Promise<LeakBaseline> {
  const heap = await settledHeap();
  return { fds: openFds(), heap };
}

/**
 * Asserts the open fds came back to within 2 of the baseline (closes may take up to `fdWaitMs`)
 * and the settled heap grew by less than `maxHeapGrowth` bytes; `after` names the burst in the message.
 */
export async function assertBackToBaseline(base: LeakBaseline, opts: { maxHeapGrowth: number; after?: string; fdWaitMs?: number }): Promise<void> {
  const deadline = Date.now() + (opts.fdWaitMs ?? 2000);
  let now = openFds();
  while (now > base.fds + 2 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    now = openFds();
  }
  assert.ok(now <= base.fds + 2, `open fds ${now}, baseline ${base.fds}`);
  const grown = (await settledHeap()) - base.heap;
  assert.ok(grown < opts.maxHeapGrowth, `heap grew by ${Math.round(grown / 1024)} KiB${opts.after ? ` after ${opts.after}` : ''}`);
}
