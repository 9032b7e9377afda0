// Envoy's TcpKeepalive (Cluster upstream_connection_options.tcp_keepalive, which Istio's
// DestinationRule connectionPool.tcp.tcpKeepalive becomes): SO_KEEPALIVE on every upstream
// connection of the cluster, with keepalive_time (idle seconds before the first probe),
// keepalive_interval (seconds between probes) and keepalive_probes (unanswered probes before the
// connection is dropped); a field left out keeps the kernel's default. Node's setKeepAlive sets the
// idle time only and, when given one, forces libuv's 1 s interval and 10 probes, so the socket
// options are set through the native addon; without it, Node's call is the fallback.
import type net from 'node:net';
import type { Reader } from '../config/reader.ts';
import { nativeAddon, nativeAddonUnavailableReason } from '../native-addon.ts';

export interface TcpKeepalive {
  /** Seconds; 0 = the kernel's default. */
  readonly time: number;
  readonly interval: number;
  readonly probes: number;
}

const FIELDS = [
  ['keepalive_time', 'time'],
  ['keepalive_interval', 'interval'],
  ['keepalive_probes', 'probes'],
] as const;

/** Reads a TcpKeepalive message (UInt32Value fields, Envoy requires each > 0 when set). */
export function readTcpKeepalive(r: Reader): TcpKeepalive {
  const out = { time: 0, interval: 0, probes: 0 };
  for (const [field, key] of FIELDS) {
    if (!r.has(field)) continue;
    const n = r.num(field, 0);
    // Linux caps TCP_KEEPIDLE and TCP_KEEPINTVL at 32767 s and TCP_KEEPCNT at 127.
    const max = key === 'probes' ? 127 : 32767;
    if (Number.isInteger(n) && n >= 1 && n <= max) out[key] = n;
    else r.issues.error(r.at(field), `must be a whole number from 1 to ${max} (got ${String(n)}); leave it out for the kernel's default`);
  }
  if ((out.interval || out.probes) && !nativeAddon()) {
    r.issues.warn(r.path, `keepalive_interval and keepalive_probes need rig's native addon, which is not available (${nativeAddonUnavailableReason()}); libuv's 1 s interval and 10 probes apply`);
  }
  r.done();
  return out;
}

function fdOf(socket: net.Socket): number | undefined {
  // A TLS socket's handle wraps the TCP handle (_parent) that owns the descriptor.
  const h = (socket as unknown as { _handle?: { fd?: number; _parent?: { fd?: number } } })._handle;
  const fd = h?._parent?.fd ?? h?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * Turns keepalive on for a connected socket with `ka`'s settings. Returns the settings in effect
 * (read back from the socket), or undefined when they cannot be read (no addon, or the socket has
 * no descriptor any more).
 */
export function setTcpKeepalive(socket: net.Socket, ka: TcpKeepalive): TcpKeepalive | undefined {
  const addon = nativeAddon();
  const fd = fdOf(socket);
  if (addon && fd !== undefined) {
    try {
      return addon.tcpKeepalive(fd, ka.time, ka.interval, ka.probes);
    } catch {
      // The connection closed under us (EBADF, EINVAL): nothing left to keep alive.
      return undefined;
    }
  }
  socket.setKeepAlive(true, ka.time * 1000);
  return undefined;
}

/** Applies `ka` (when set) once a new upstream socket connects. */
export function keepaliveOnConnect<S extends net.Socket>(socket: S, ka: TcpKeepalive | undefined): S {
  if (ka) socket.once('connect', () => setTcpKeepalive(socket, ka));
  return socket;
}
