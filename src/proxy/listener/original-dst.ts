// The destination a connection had before iptables REDIRECT rewrote it (SO_ORIGINAL_DST /
// IP6T_SO_ORIGINAL_DST). Node has no API for it, so this reads it through Rigging's Node-API
// addon (native/, built at install time by scripts/build-native.mjs). Without the addon the
// proxy still runs in explicit mode; listeners that need the original destination check
// originalDstAvailable() and report why it is missing (originalDstUnavailableReason()).
import { createRequire } from 'node:module';
import type net from 'node:net';

export interface OriginalDst {
  address: string;
  port: number;
}

interface Addon {
  originalDst(fd: number): OriginalDst | undefined;
}

const ADDON_PATH = new URL('../../../native/build/Release/rig_native.node', import.meta.url);

let addon: Addon | undefined;
let loadError: string | undefined;
let loaded = false;

function load(): Addon | undefined {
  if (loaded) return addon;
  loaded = true;
  if (process.platform !== 'linux') {
    loadError = `original destination (SO_ORIGINAL_DST) is Linux-only; this is ${process.platform}`;
    return undefined;
  }
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH.pathname) as Addon;
  } catch (err) {
    loadError = `the native addon ${ADDON_PATH.pathname} is not available (${(err as Error).message.split('\n')[0]}); build it with \`npm run build:native\``;
  }
  return addon;
}

export function originalDstAvailable(): boolean {
  return load() !== undefined;
}

/** Why originalDstAvailable() is false (for error messages), or undefined when it is true. */
export function originalDstUnavailableReason(): string | undefined {
  load();
  return loadError;
}

/**
 * The pre-REDIRECT destination of an accepted TCP connection (for a connection conntrack saw but
 * no rule rewrote, that is its own local address, as with Envoy's original_dst), or undefined
 * when conntrack does not track it, the socket has no file descriptor (closed, or not a TCP
 * socket), or the addon is unavailable.
 */
export function getOriginalDst(socket: net.Socket): OriginalDst | undefined {
  const a = load();
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (!a || typeof fd !== 'number' || fd < 0) return undefined;
  const dst = a.originalDst(fd);
  if (!dst) return undefined;
  // An IPv4 connection on a dual-stack socket: report it as IPv4, as the kernel tracked it.
  return dst.address.startsWith('::ffff:') && dst.address.includes('.') ? { address: dst.address.slice(7), port: dst.port } : dst;
}
