// Reading the ports file a `rig proxy` or `rig controlplane` writes once it listens
// (docs/CONTRACTS.md §4): JSON such as {"admin":n,"stats":n,"ready":n}.
import { readFileSync, rmSync } from 'node:fs';

export function readPortsFile(file: string): Record<string, number> | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>;
  } catch {
    return undefined;
  }
}

export function removePortsFile(file: string): void {
  rmSync(file, { force: true });
}

/** Waits until the ports file exists (the process listens) or `isDead()` says it never will. */
export async function waitForPortsFile(file: string, timeoutMs: number, isDead: () => boolean): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ports = readPortsFile(file);
    if (ports) return ports;
    if (isDead()) throw new Error('the process exited before it was listening');
    if (Date.now() > deadline) throw new Error(`not listening after ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
