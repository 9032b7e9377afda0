// process.nextTick's object literal keeps its fast path across full GCs once a tick object is
// kept (tick-object-maps.ts). Checked on V8's own feedback for node's nextTick, printed by
// %DebugPrint in a node process of its own: GCs with no tick alive, then the stores of the
// literal's computed keys are monomorphic with the tick kept, megamorphic without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const MODULE = pathToFileURL(path.join(import.meta.dirname, 'tick-object-maps.ts')).href;

/** The states of nextTick's DefineKeyedOwnPropertyInLiteral feedback slots after six rounds of ticks and full GCs. */
function literalStoreStates(keep: boolean): string[] {
  const script = `
    import { keepTickObjectMaps } from ${JSON.stringify(MODULE)};
    ${keep ? 'keepTickObjectMaps();' : ''}
    const noop = () => {};
    await new Promise((r) => setImmediate(r));
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 50; i++) process.nextTick(noop);
      await new Promise((r) => setImmediate(r));
      for (let g = 0; g < 4; g++) gc();
    }
    %DebugPrint(process.nextTick);
  `;
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--expose-gc', '--single-threaded', '--input-type=module', '-e', script], { encoding: 'utf8' });
  return [...out.matchAll(/slot #\d+ DefineKeyedOwnPropertyInLiteral (\w+)/g)].map((m) => m[1]);
}

test('with a tick object kept, the tick literal stays monomorphic through full GCs', () => {
  const states = literalStoreStates(true);
  assert.equal(states.length, 5, 'five keyed stores in the literal (three symbols, callback, args)');
  assert.deepEqual(states, Array(5).fill('MONOMORPHIC'));
});

test('without it, the same GCs leave the stores after the first megamorphic (what the keep prevents)', () => {
  const states = literalStoreStates(false);
  assert.equal(states.length, 5);
  assert.equal(states[0], 'MONOMORPHIC', 'the first store starts from the literal map cache, which stays alive');
  assert.deepEqual(states.slice(1), Array(4).fill('MEGAMORPHIC'), "node or V8 no longer loses the maps: tick-object-maps.ts may not be needed with this node");
});
