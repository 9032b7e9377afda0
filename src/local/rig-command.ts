// How `rig up` starts `rig controlplane` and `rig proxy`: the same Node.js that runs this
// process, on the same entry point (src/cli/main.ts from source, dist/cli/main.js when built).
import { fileURLToPath } from 'node:url';

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
export const RIG_ENTRY = fileURLToPath(new URL(`../cli/main${ext}`, import.meta.url));

export function rigCommand(args: string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: [...process.execArgv.filter((a) => !a.startsWith('--inspect')), RIG_ENTRY, ...args] };
}
