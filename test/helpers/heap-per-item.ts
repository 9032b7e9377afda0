// What a structure keeps on V8's heap per item, measured in a node process of its own: the script
// (an ES module, with gc() exposed) fills it, and the heap used after full GCs before and after,
// over the items kept, is the answer. For tests of what a long-lived structure retains.
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';

/** An import specifier for a module, for the script's imports. */
export const moduleUrl = (file: string): string => JSON.stringify(pathToFileURL(file).href);

/**
 * Heap bytes per item. `prelude` (the imports, and whatever loads or warms up before the first
 * measurement) runs first; `fill` runs between the two measurements, an async function body that
 * returns the structure it filled (kept reachable) and its item count: `return { kept, items }`.
 */
export function heapBytesPerItem(prelude: string, fill: string): number {
  const script = `
    ${prelude}
    const run = async () => { ${fill} };
    gc();
    const before = process.memoryUsage().heapUsed;
    const { kept, items } = await run();
    gc();
    console.log((process.memoryUsage().heapUsed - before) / items);
    globalThis.kept = kept;
    process.exit(0);
  `;
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: import.meta.dirname });
  return Number(out.trim().split('\n').at(-1));
}
