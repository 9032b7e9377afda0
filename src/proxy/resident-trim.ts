// Gives back the node executable's start-up pages. RSS counts every page of a mapped file the
// process has touched, and start-up (compiling modules, parsing the Envoy protos, resolving the
// executable's dynamic symbols) touches about 48 MB of the ~120 MB node binary, of which a
// serving proxy uses about half. Dropping the executable's read-only mappings from the page
// tables once the proxy is live leaves them in the page cache (shared with every other node
// process, nothing is re-read from disk), and the pages the proxy does use fault back in
// (minor faults, once). Measured on the benchmark's one-hop proxy: the executable's resident
// pages 48 → ~20 MB idle, ~27 MB at 1000 requests/s. The shared libraries' read-only pages
// (libc, libstdc++, libm) go the same way. The same native addon also trims glibc's
// free malloc memory (releaseFreeMallocEvery).
import { realpathSync } from 'node:fs';
import { nativeAddon } from './native-addon.ts';
import { processMappings, type Mapping } from './process-mappings.ts';

/** A shared library: libc.so.6, libstdc++.so.6, rig_native.node … */
const SHARED_OBJECT = /\.(so(\.[\d.]+)?|node)$/;

/**
 * The mappings whose pages can be dropped without loss: the node executable's and the shared
 * libraries', read-only, private, never written. The executable cannot change on disk while it
 * runs (ETXTBSY); a library is replaced by a new file (dpkg, npm), never rewritten in place, so
 * what faults back in is what was there. The RELRO mappings, written during relocation, are
 * excluded by their dirty pages, as is code remapped onto huge pages (--use-largepages, anonymous).
 */
function droppable(all: Mapping[], executable: string, residentOnly = true): Mapping[] {
  return all.filter(
    (m) =>
      (m.path === executable || SHARED_OBJECT.test(m.path)) && m.perms[1] === '-' && m.perms[3] === 'p' && m.privateDirtyKb === 0 && m.anonymousKb === 0 && (!residentOnly || m.rssKb > 0),
  );
}

export interface ResidentTrim {
  /** Resident kB of the droppable mappings before and right after. */
  beforeKb: number;
  afterKb: number;
}

/**
 * Drops the clean read-only pages of the node executable and the shared libraries from this
 * process's page tables. Returns undefined (and does nothing) without the native addon or off Linux.
 */
export function trimCodeResidency(): ResidentTrim | undefined {
  const addon = nativeAddon();
  if (!addon) return undefined;
  const executable = realpathSync(process.execPath);
  const all = processMappings();
  if (!all) return undefined;
  const targets = droppable(all, executable);
  const beforeKb = targets.reduce((s, m) => s + m.rssKb, 0);
  for (const m of targets) addon.dropResidentPages(m.start, m.end - m.start);
  const afterKb = droppable(processMappings() ?? [], executable).reduce((s, m) => s + m.rssKb, 0);
  return { beforeKb, afterKb };
}

/** How often a serving proxy drops the executable's and libraries' pages again (trimCodeResidencyEvery). */
export const CODE_TRIM_INTERVAL_MS = 10_000;

/**
 * Drops the same pages again every `intervalMs`, so that what stays resident is the code used
 * within the last interval. V8 keeps compiling a proxy's hot path for ~100 s under load, and its
 * compilers (~7 MB of the executable's text) then fall idle; the start-up trim cannot know that,
 * and fault-around maps up to 16 neighbouring pages with each page the proxy does touch. The
 * mappings are chosen once (from smaps: read-only, never written); each trim is one madvise per
 * mapping. Returns a function that stops it; does nothing without the native addon.
 */
export function trimCodeResidencyEvery(intervalMs = CODE_TRIM_INTERVAL_MS): () => void {
  const addon = nativeAddon();
  const all = addon && processMappings();
  if (!addon || !all) return () => {};
  const ranges = droppable(all, realpathSync(process.execPath), false).map((m) => [m.start, m.end - m.start] as const);
  const t = setInterval(() => {
    for (const [start, length] of ranges) addon.dropResidentPages(start, length);
  }, intervalMs);
  t.unref();
  return () => clearInterval(t);
}

/** How often the proxy returns glibc's free malloc memory; one trim costs ~0.3–1.4 ms. */
export const MALLOC_TRIM_INTERVAL_MS = 10_000;

/** Returns glibc's free malloc memory to the OS now; false when nothing was released or without the addon. */
export function releaseFreeMalloc(): boolean {
  return nativeAddon()?.releaseFreeMalloc() ?? false;
}

/**
 * Returns glibc's free malloc memory to the OS now and every `intervalMs`: V8's compiler threads
 * and libuv's threads each have a malloc arena, and what they free stays resident, fragmented.
 * Measured on the benchmark's one-hop proxy at 1000 requests/s: 71 → 64 MB RSS at one trim.
 * Returns a function that stops it; does nothing without the native addon.
 */
export function releaseFreeMallocEvery(intervalMs = MALLOC_TRIM_INTERVAL_MS): () => void {
  if (!nativeAddon()) return () => {};
  releaseFreeMalloc();
  const t = setInterval(releaseFreeMalloc, intervalMs);
  t.unref();
  return () => clearInterval(t);
}
