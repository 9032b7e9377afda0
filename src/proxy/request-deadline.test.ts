// requestDeadline on real timers: fires once with its argument, cancel and refresh, the order of
// one duration's deadlines, many durations at once, a deadline armed from a firing one, durations
// past node's longest timer, and unref'd timers. No timing is asserted beyond fired / not fired,
// with margins of hundreds of milliseconds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { requestDeadline } from './request-deadline.ts';

/** Resolves with the labels of the deadlines in the order they fire, once `n` have. */
function firings(n: number): { fired: string[]; done: Promise<string[]>; on: (label: string) => void } {
  const fired: string[] = [];
  let resolve!: (v: string[]) => void;
  const done = new Promise<string[]>((r) => (resolve = r));
  return {
    fired,
    done,
    on: (label) => {
      fired.push(label);
      if (fired.length === n) resolve(fired);
    },
  };
}

test('a deadline fires once, with its argument; refresh and cancel do nothing once it fired', async () => {
  const f = firings(1);
  const d = requestDeadline(f.on, 20, 'a');
  assert.deepEqual(await f.done, ['a']);
  d.refresh();
  d.cancel();
  await sleep(300);
  assert.deepEqual(f.fired, ['a']);
});

test('a cancelled deadline never fires, and the others of its duration still do', async () => {
  const f = firings(2);
  const a = requestDeadline(f.on, 30, 'a');
  requestDeadline(f.on, 30, 'b');
  const c = requestDeadline(f.on, 30, 'c');
  requestDeadline(f.on, 30, 'd');
  a.cancel();
  c.cancel();
  assert.deepEqual(await f.done, ['b', 'd']);
  await sleep(300);
  assert.deepEqual(f.fired, ['b', 'd']);
});

test('deadlines of one duration fire in the order they were armed or last refreshed', async () => {
  const f = firings(4);
  const a = requestDeadline(f.on, 40, 'a');
  requestDeadline(f.on, 40, 'b');
  const c = requestDeadline(f.on, 40, 'c');
  requestDeadline(f.on, 40, 'd');
  a.refresh();
  c.refresh();
  assert.deepEqual(await f.done, ['b', 'd', 'a', 'c']);
});

test('a deadline kept refreshed does not fire; it fires its full duration after the last refresh', async () => {
  const f = firings(1);
  const d = requestDeadline(f.on, 600, 'a');
  for (let i = 0; i < 20; i++) {
    await sleep(50);
    d.refresh();
  }
  assert.deepEqual(f.fired, [], 'refreshed every 50 ms for 1 s: a 600 ms deadline has not fired');
  assert.deepEqual(await f.done, ['a']);
});

test('many durations at once: each deadline fires, the shorter first', async () => {
  const f = firings(5);
  for (const ms of [250, 50, 150, 100, 200]) requestDeadline(f.on, ms, String(ms));
  assert.deepEqual(await f.done, ['50', '100', '150', '200', '250']);
});

test('the head of a list cancelled: the next deadline of that duration still fires, on its own time', async () => {
  const f = firings(1);
  const a = requestDeadline(f.on, 200, 'a');
  await sleep(100);
  requestDeadline(f.on, 200, 'b');
  a.cancel();
  assert.deepEqual(await f.done, ['b']);
});

test('a deadline armed by a firing one, of the same duration, fires in turn; so does one armed after its list emptied', async () => {
  const f = firings(3);
  const again = (label: string): void => {
    f.on(label);
    if (label === 'a') requestDeadline(again, 30, 'b');
  };
  requestDeadline(again, 30, 'a');
  await sleep(300);
  assert.deepEqual(f.fired, ['a', 'b']);
  requestDeadline(f.on, 30, 'c');
  assert.deepEqual(await f.done, ['a', 'b', 'c']);
});

test('a duration past node\'s longest timer (2^31-1 ms) does not fire early, nor warn of an overflow', async () => {
  const f = firings(1);
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.name);
  process.on('warning', onWarning);
  const d = requestDeadline(f.on, 2 ** 31 + 1000, 'long');
  await sleep(300);
  process.off('warning', onWarning);
  assert.deepEqual(f.fired, []);
  assert.deepEqual(warnings, []);
  d.cancel();
});

test('a pending deadline does not keep the process alive', () => {
  const url = new URL('./request-deadline.ts', import.meta.url).href;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { requestDeadline } from ${JSON.stringify(url)}; requestDeadline(() => process.exit(3), 120000, 0);`], { timeout: 60_000, encoding: 'utf8' });
  assert.equal(r.signal, null, 'the process exited by itself');
  assert.equal(r.status, 0, r.stderr);
});
