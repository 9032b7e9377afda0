// GET /memory: Envoy's memory report (strings of bytes: allocated, heap_size, pageheap_free,
// total_physical_bytes), where the allocator is V8's heap plus glibc's malloc, with what a Node
// process needs to explain its RSS: V8's heap by space, malloc's totals, and the resident pages
// by kind of mapping.
import { realpathSync } from 'node:fs';
import v8 from 'node:v8';
import { processMappings } from '../process-mappings.ts';
import { nativeAddon } from '../native-addon.ts';

export interface ResidentByKind {
  /** The node executable's code and data (its read-only pages are shared with other node processes). */
  executable: number;
  /** Anonymous memory: V8's heap, malloc's thread arenas, thread stacks. */
  anonymous: number;
  /** malloc's main arena (brk). */
  brkHeap: number;
  /** Shared libraries and other mapped files. */
  files: number;
}

/** Resident bytes of this process by kind of mapping (Linux only). */
export function residentByKind(): ResidentByKind | undefined {
  const all = processMappings();
  if (!all) return undefined;
  const executable = realpathSync(process.execPath);
  const out: ResidentByKind = { executable: 0, anonymous: 0, brkHeap: 0, files: 0 };
  for (const m of all) {
    const kind = m.path === executable ? 'executable' : m.path === '' ? 'anonymous' : m.path === '[heap]' ? 'brkHeap' : m.path.startsWith('[') ? undefined : 'files';
    if (kind) out[kind] += m.rssKb * 1024;
  }
  return out;
}

export function memoryReport(): object {
  const usage = process.memoryUsage();
  const heap = v8.getHeapStatistics();
  const malloc = nativeAddon()?.mallocStats();
  return {
    allocated: String(heap.used_heap_size + (malloc?.inUseBytes ?? 0)),
    heap_size: String(heap.total_heap_size + (malloc ? malloc.arenaBytes + malloc.mmappedBytes : 0)),
    pageheap_free: String(malloc?.freeBytes ?? 0),
    total_physical_bytes: String(usage.rss),
    external: String(usage.external),
    array_buffers: String(usage.arrayBuffers),
    v8_malloced_memory: String(heap.malloced_memory),
    malloc,
    resident_by_kind: residentByKind(),
    heap_spaces: Object.fromEntries(
      v8.getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size }]),
    ),
  };
}
