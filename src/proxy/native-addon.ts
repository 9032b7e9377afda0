// Rigging's Node-API addon (native/, built at install time by scripts/build-native.mjs): the few
// things Node has no API for. Everything that uses it has a way to run without it, so the addon
// is loaded on first use and a missing one is a reason to report, not an error.
import { createRequire } from 'node:module';

export interface NativeAddon {
  originalDst(fd: number): { address: string; port: number } | undefined;
  dropResidentPages(start: number, length: number): void;
  releaseFreeMalloc(): boolean;
  /** SO_KEEPALIVE on, with TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT (0 = unchanged); the values in effect. */
  tcpKeepalive(fd: number, time: number, interval: number, probes: number): { time: number; interval: number; probes: number };
  /** glibc's malloc totals over every arena; undefined with another C library. */
  mallocStats(): MallocStats | undefined;
}

export interface MallocStats {
  /** Bytes of the arenas (obtained with brk or mmap for the arenas). */
  arenaBytes: number;
  inUseBytes: number;
  /** Free bytes inside the arenas (resident until trimmed). */
  freeBytes: number;
  /** Bytes of large chunks mmapped on their own. */
  mmappedBytes: number;
}

const ADDON_PATH = new URL('../../native/build/Release/rig_native.node', import.meta.url);

let addon: NativeAddon | undefined;
let loadError: string | undefined;
let loaded = false;

/** The addon, or undefined when it is not available (see nativeAddonUnavailableReason()). */
export function nativeAddon(): NativeAddon | undefined {
  if (loaded) return addon;
  loaded = true;
  if (process.platform !== 'linux') {
    loadError = `Rigging's native addon is Linux-only; this is ${process.platform}`;
    return undefined;
  }
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH.pathname) as NativeAddon;
  } catch (err) {
    loadError = `the native addon ${ADDON_PATH.pathname} is not available (${(err as Error).message.split('\n')[0]}); build it with \`npm run build:native\``;
  }
  return addon;
}

/** Why nativeAddon() is undefined, or undefined when it loads. */
export function nativeAddonUnavailableReason(): string | undefined {
  nativeAddon();
  return loadError;
}
