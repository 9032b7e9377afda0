// `npm run bench:micro [-- name-filter]`: runs every bench/micro/*.ts, each in its own process
// pinned to one core, and passes their output through. A micro-benchmark is a script that
// prints its figures in ns/op (see bench/micro/*.ts; mitata's bench()/run() or a timed loop).
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { startPinned } from './lib/process-group.ts';

const MICRO = path.join(import.meta.dirname, 'micro');
const filter = process.argv[2];
const files = readdirSync(MICRO)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && (!filter || f.includes(filter)))
  .sort();
if (files.length === 0) {
  process.stderr.write(`bench:micro: no bench/micro/*.ts${filter ? ` matching "${filter}"` : ''}\n`);
  process.exit(1);
}
const failed: string[] = [];
for (const f of files) {
  process.stdout.write(`\n## ${f}\n`);
  const p = startPinned({ name: f, core: 1, command: process.execPath, args: [path.join(MICRO, f)], stdio: ['ignore', 'inherit', 'inherit'], kind: 'load' });
  const why = await p.exited;
  if (p.child.exitCode !== 0) failed.push(`${f}: ${why}`);
}
if (failed.length) {
  process.stderr.write(`bench:micro: failed:\n  ${failed.join('\n  ')}\n`);
  process.exitCode = 1;
}
