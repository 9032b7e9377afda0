// A listener version's init targets wait at once (a gateway listener: an RDS wait per connection
// manager): each gets its own signal, so their listeners do not pile up on one (no
// MaxListenersExceededWarning, and no raised limit that would hide a leak); cancelling the version
// still aborts every one of them.
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { test } from 'node:test';
import { ListenerInit } from '../../src/proxy/listener/listener-init.ts';

test('many init targets waiting at once: one signal each, no listener-leak warning; cancel aborts them all', async (t) => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));

  const init = new ListenerInit();
  const signals: AbortSignal[] = [];
  for (let i = 0; i < 25; i++) {
    init.add(`RDS route configuration r${i}`, (signal) => {
      signals.push(signal);
      return new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    });
  }
  const done = init.start();
  assert.equal(signals.length, 25);
  assert.ok(signals.every((s) => getEventListeners(s, 'abort').length === 1), 'each target listens on a signal of its own');
  init.cancel();
  await done;
  assert.ok(signals.every((s) => s.aborted), 'cancel aborts every target');
  await new Promise((r) => setImmediate(r)); // process warnings are emitted on a later tick
  assert.deepEqual(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message), []);
});
