// Retry host predicate previous_hosts: hosts a request already tried are avoided when another
// host of the chosen set is available.
import type { Host } from '../host.ts';

/** The first host from `start` (wrapping) not in `attempted`, or undefined when all were tried. */
export function firstNotAttempted(hosts: readonly Host[], start: number, attempted: ReadonlySet<Host>): Host | undefined {
  for (let k = 1; k <= hosts.length; k++) {
    const h = hosts[(start + k) % hosts.length];
    if (!attempted.has(h)) return h;
  }
  return undefined;
}

export function allAttempted(hosts: readonly Host[], attempted: ReadonlySet<Host>): boolean {
  if (attempted.size < hosts.length) return false;
  for (const h of hosts) if (!attempted.has(h)) return false;
  return true;
}
