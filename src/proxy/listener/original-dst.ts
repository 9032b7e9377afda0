// The destination a connection had before iptables REDIRECT rewrote it (SO_ORIGINAL_DST /
// IP6T_SO_ORIGINAL_DST). Node has no API for it, so this reads it through Rigging's Node-API
// addon (native-addon.ts). Without the addon the proxy still runs in explicit mode; listeners
// that need the original destination check originalDstAvailable() and report why it is missing
// (originalDstUnavailableReason()).
import type net from 'node:net';
import { nativeAddon, nativeAddonUnavailableReason } from '../native-addon.ts';

export interface OriginalDst {
  address: string;
  port: number;
}

export function originalDstAvailable(): boolean {
  return nativeAddon() !== undefined;
}

/** Why originalDstAvailable() is false (for error messages), or undefined when it is true. */
export function originalDstUnavailableReason(): string | undefined {
  return nativeAddonUnavailableReason();
}

/**
 * The pre-REDIRECT destination of an accepted TCP connection (for a connection conntrack saw but
 * no rule rewrote, that is its own local address, as with Envoy's original_dst), or undefined
 * when conntrack does not track it, the socket has no file descriptor (closed, or not a TCP
 * socket), or the addon is unavailable.
 */
export function getOriginalDst(socket: net.Socket): OriginalDst | undefined {
  const a = nativeAddon();
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (!a || typeof fd !== 'number' || fd < 0) return undefined;
  const dst = a.originalDst(fd);
  if (!dst) return undefined;
  // An IPv4 connection on a dual-stack socket: report it as IPv4, as the kernel tracked it.
  return dst.address.startsWith('::ffff:') && dst.address.includes('.') ? { address: dst.address.slice(7), port: dst.port } : dst;
}
