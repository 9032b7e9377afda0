// Leftovers of a `rig up` that was killed without a chance to stop its children (SIGKILL, power
// loss of the terminal...): every child carries RIG_STATE_DIR in its environment, so the next
// `rig up` or `rig down` from the same state directory can find and stop exactly those.
import { readdirSync, readFileSync } from 'node:fs';
import { killGroup } from './supervised-process.ts';

/** The pids of live processes (of this user) whose environment names this state directory. */
export function findLeftovers(stateRoot: string): number[] {
  const marker = `RIG_STATE_DIR=${stateRoot}\0`;
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if ((readFileSync(`/proc/${e}/environ`, 'latin1') + '\0').includes(marker)) out.push(Number(e));
    } catch {
      // gone, or another user's process
    }
  }
  return out;
}

/** Kills leftover processes (and their process groups) and waits until they are gone; returns how many there were. */
export async function reapLeftovers(stateRoot: string): Promise<number> {
  const pids = findLeftovers(stateRoot);
  for (const pid of pids) {
    if (!killGroup(pid, 'SIGKILL')) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  // SIGKILL is delivered asynchronously: wait (a little) until none of them runs any more.
  for (let i = 0; i < 100 && findLeftovers(stateRoot).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  return pids.length;
}
