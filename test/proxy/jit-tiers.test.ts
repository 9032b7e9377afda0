// skipMaglev: a function that gets hot is compiled by Maglev in a plain Node process and not after
// skipMaglev(). Each case runs in a fresh process with V8's natives syntax to read the function's tier.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

function maglevCompiledAHotFunction(skip: boolean): boolean {
  const script = `
    import { skipMaglev } from ${JSON.stringify(new URL('../../src/proxy/jit-tiers.ts', import.meta.url).href)};
    if (${skip}) skipMaglev();
    function hot(x) { return (x * 31 + 7) % 1009; }
    let s = 0;
    for (let round = 0; round < 100; round++) {
      for (let i = 0; i < 100; i++) s += hot(i + round);
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 50)); // a concurrent compile job lands
    const MAGLEVVED = 1 << 5; // V8's OptimizationStatus::kMaglevved
    console.log(JSON.stringify((%GetOptimizationStatus(hot) & MAGLEVVED) !== 0 && s > 0));`;
  return JSON.parse(execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { encoding: 'utf8' })) as boolean;
}

test('a hot function is compiled by Maglev in plain Node, and not after skipMaglev()', () => {
  assert.equal(maglevCompiledAHotFunction(false), true, 'plain Node (if this fails, V8 changed its tiers: revisit jit-tiers.ts)');
  assert.equal(maglevCompiledAHotFunction(true), false, 'after skipMaglev()');
});
