// Hands a byte stream the proxy itself terminated (the inside of an accepted CONNECT tunnel) to
// the listener a connection with that original destination would have been handed to, as if it
// had just been accepted and redirected there (Envoy's use_original_dst handoff to a
// bind_to_port: false listener): listener filters, filter chain match, network filters. The
// listener manager registers itself here; the HTTP connection manager's tunnels look it up, so
// that neither imports the other.
import type net from 'node:net';
import type { ProxyContext } from '../context.ts';
import type { OriginalDst } from './original-dst.ts';

export interface InternalDispatch {
  /**
   * The bind_to_port: false listener for `dst` (its address, else a wildcard one on its port);
   * undefined when there is none. The returned function runs `socket` through that listener's
   * accept path, `source` being the downstream peer to report.
   */
  target(dst: OriginalDst): ((socket: net.Socket, source: { address: string; port: number }) => void) | undefined;
}

const byContext = new WeakMap<ProxyContext, InternalDispatch>();

export function registerInternalDispatch(ctx: ProxyContext, dispatch: InternalDispatch): void {
  byContext.set(ctx, dispatch);
}

export function internalDispatch(ctx: ProxyContext): InternalDispatch | undefined {
  return byContext.get(ctx);
}
