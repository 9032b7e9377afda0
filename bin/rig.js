#!/usr/bin/env node
const [major] = process.versions.node.split('.').map(Number);
if (major < 22) {
  process.stderr.write(
    `rig: Node.js ${process.versions.node} is too old (past its end of life); Rigging needs Node.js >= 22.\n` +
      `Run it through npm (npx rig ...), which uses the Node.js 24 that the package installs, or install Node.js 24.\n`,
  );
  process.exit(1);
}
await import('../dist/cli/main.js');
