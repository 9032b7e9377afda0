// Gives back the node executable's start-up pages. RSS counts every page of a mapped file the
// process has touched, and start-up (compiling modules, parsing the Envoy protos, resolving the
// executable's dynamic symbols) touches about 48 MB of the ~120 MB node binary, of which a
// serving proxy uses about half. Dropping the executable's read-only mappings from the page
// tables once the proxy is live leaves them in the page cache (shared with every other node
// process, nothing is re-read from disk), and the pages the proxy does use fault back in
// (minor faults, once). Measured on the benchmark's one-hop proxy: the executable's resident
// pages 48 → ~20 MB idle, ~27 MB at 1000 requests/s. The same native addon also trims glibc's
// free malloc memory (releaseFreeMallocEvery).
import { readFileSync, realpathSync } from 'node:fs';
import { nativeAddon } from './native-addon.ts';

interface Mapping {
  start: number;
  end: number;
  perms: string;
  path: string;
  rssKb: number;
  /** Pages the process wrote (copy-on-write); dropping them would lose their contents. */
  privateDirtyKb: number;
  anonymousKb: number;
}

/** The process's mappings with their residency, from /proc/self/smaps. */
function mappings(): Mapping[] {
  const out: Mapping[] = [];
  let cur: Mapping | undefined;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      cur = { start: parseInt(head[1]!, 16), end: parseInt(head[2]!, 16), perms: head[3]!, path: head[4]!, rssKb: 0, privateDirtyKb: 0, anonymousKb: 0 };
      out.push(cur);
      continue;
    }
    const field = /^(Rss|Private_Dirty|Anonymous):\s+(\d+) kB/.exec(line);
    if (!field || !cur) continue;
    const kb = Number(field[2]);
    if (field[1] === 'Rss') cur.rssKb = kb;
    else if (field[1] === 'Private_Dirty') cur.privateDirtyKb = kb;
    else cur.anonymousKb = kb;
  }
  return out;
}

/**
 * The executable's mappings whose pages can be dropped without loss: read-only, private, never
 * written. The executable itself cannot change on disk while it runs (ETXTBSY), so what faults
 * back in is what was there; the RELRO mapping, written during relocation, is excluded by its
 * dirty pages, as is code remapped onto huge pages (--use-largepages, anonymous).
 */
function droppable(all: Mapping[], executable: string): Mapping[] {
  return all.filter((m) => m.path === executable && m.perms[1] === '-' && m.perms[3] === 'p' && m.privateDirtyKb === 0 && m.anonymousKb === 0 && m.rssKb > 0);
}

export interface ResidentTrim {
  /** Resident kB of the executable's droppable mappings before and right after. */
  beforeKb: number;
  afterKb: number;
}

/**
 * Drops the node executable's clean read-only pages from this process's page tables. Returns
 * undefined (and does nothing) without the native addon or off Linux.
 */
export function trimExecutableResidency(): ResidentTrim | undefined {
  const addon = nativeAddon();
  if (!addon) return undefined;
  const executable = realpathSync(process.execPath);
  const targets = droppable(mappings(), executable);
  const beforeKb = targets.reduce((s, m) => s + m.rssKb, 0);
  for (const m of targets) addon.dropResidentPages(m.start, m.end - m.start);
  const afterKb = droppable(mappings(), executable).reduce((s, m) => s + m.rssKb, 0);
  return { beforeKb, afterKb };
}

/** How often the proxy returns glibc's free malloc memory; one trim costs ~0.3–1.4 ms. */
export const MALLOC_TRIM_INTERVAL_MS = 10_000;

/**
 * Returns glibc's free malloc memory to the OS now and every `intervalMs`: V8's compiler threads
 * and libuv's threads each have a malloc arena, and what they free stays resident, fragmented.
 * Measured on the benchmark's one-hop proxy at 1000 requests/s: 71 → 64 MB RSS at one trim.
 * Returns a function that stops it; does nothing without the native addon.
 */
export function releaseFreeMallocEvery(intervalMs = MALLOC_TRIM_INTERVAL_MS): () => void {
  const addon = nativeAddon();
  if (!addon) return () => {};
  addon.releaseFreeMalloc();
  const t = setInterval(() => addon.releaseFreeMalloc(), intervalMs);
  t.unref();
  return () => clearInterval(t);
}
