#!/usr/bin/env node
import { existsSync, readdirSync, statSync } from 'node:fs';

const [major] = process.versions.node.split('.').map(Number);
if (major < 22) {
  process.stderr.write(
    `rig: Node.js ${process.versions.node} is too old (past its end of life); Rigging needs Node.js >= 22.\n` +
      `Run it through npm (npx rig ...), which uses the Node.js 24 that the package installs, or install Node.js 24.\n`,
  );
  process.exit(1);
}

// In a source checkout, dist/ is built by `npm install` (prepare): after a pull or an edit it
// would run yesterday's code without a word.
const src = new URL('../src/', import.meta.url);
const built = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(new URL('../.git', import.meta.url)) && existsSync(src) && existsSync(built)) {
  const builtAt = statSync(built).mtimeMs;
  const newer = (dir) =>
    readdirSync(dir, { withFileTypes: true }).some((e) =>
      e.isDirectory() ? newer(new URL(`${e.name}/`, dir)) : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && statSync(new URL(e.name, dir)).mtimeMs > builtAt,
    );
  if (newer(src)) process.stderr.write('rig: warning: src/ has changed since dist/ was built; run `npm run build` to run the current code.\n');
}
await import('../dist/cli/main.js');
