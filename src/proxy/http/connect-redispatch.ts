// CONNECT termination then re-dispatch: a CONNECT whose route carries, in its metadata, the
// original destination the tunnel stands for is answered 200 by the proxy itself, and the bytes
// inside the tunnel are taken as a new downstream connection to that destination: handed to its
// bind_to_port: false listener (listener/internal-dispatch.ts) as a redirected connection would
// be, so an HTTP request inside goes through that listener's HTTP connection manager (routes,
// filters, retries, stats, access logs, spans) and TLS or TCP through its TCP/TLS chains.
//
// Why route metadata and not Envoy's own means (a CONNECT route to an internal-listener cluster,
// the destination set by set_filter_state from :authority): the authority of an explicit proxy's
// CONNECT is a name (`reviews:9080`) and the captured listeners are keyed by address; the control
// plane knows the service's address, and the route the CONNECT matched is the one place that
// already resolved the name (its virtual host lists every alias). The control plane sets it on
// the CONNECT routes of an explicit-mode sidecar's `http_proxy` route configuration
// (src/xds/translate/route-config.ts). An Envoy ignores the metadata and tunnels as before; a
// CONNECT route without it (plain CONNECT proxying, `rig proxy -c`), or whose destination has no
// listener here (e.g. an external host passed through), is tunnelled to its cluster as before.
// A CONNECT on an HTTP/2 stream is handled alike, the stream standing for the inner connection's
// socket (tunnel-stream-socket.ts); an extended CONNECT (RFC 8441) is an upgrade request, routed
// as a GET, and like an HTTP/1.1 upgrade is not re-dispatched.
import type http2 from 'node:http2';
import net from 'node:net';
import type { Logger } from '../../core/log.ts';
import type { Route } from '../routing/route-config.ts';
import type { RequestHead } from '../filters/filter.ts';
import type { StreamInfo } from '../stream-info.ts';
import type { ConnState } from './http-stream.ts';
import type { OriginalDst } from '../listener/original-dst.ts';
import { internalDispatch } from '../listener/internal-dispatch.ts';
import { finish } from './tunnel.ts';
import { TunnelStreamSocket } from './tunnel-stream-socket.ts';

/** The route metadata namespace (filter_metadata key) the control plane writes. */
export const CONNECT_REDISPATCH_METADATA = 'rigging.connect_redispatch';

/** Per compiled route: the original destination its metadata names, or null. */
const destinations = new WeakMap<Route, OriginalDst | null>();

function originalDstOf(route: Route, log: Logger): OriginalDst | undefined {
  let dst = destinations.get(route);
  if (dst === undefined) {
    dst = readOriginalDst(route, log);
    destinations.set(route, dst);
  }
  return dst ?? undefined;
}

/**
 * `metadata.filter_metadata["rigging.connect_redispatch"].original_dst: { address, port_value }`;
 * null when absent, or malformed (said once per route: the tunnel then goes to the route's cluster).
 */
function readOriginalDst(route: Route, log: Logger): OriginalDst | null {
  const md = (route.raw.metadata as { filter_metadata?: Record<string, unknown> } | undefined)?.filter_metadata?.[CONNECT_REDISPATCH_METADATA] as { original_dst?: { address?: unknown; port_value?: unknown } } | undefined;
  if (md === undefined) return null;
  const a = md?.original_dst;
  const port = Number(a?.port_value);
  if (a && typeof a.address === 'string' && net.isIP(a.address) && Number.isInteger(port) && port > 0 && port < 65536) return { address: a.address, port };
  log.warn({ route: route.name, vhost: route.vhost.name, metadata: md }, `route metadata ${CONNECT_REDISPATCH_METADATA}: expected { original_dst: { address: <IP>, port_value: <1-65535> } }; CONNECT tunnels of this route go to its cluster`);
  return null;
}

/**
 * The listener this CONNECT's inside goes to: its route names an original destination that has a
 * listener here (recorded in `info` as the upstream); undefined otherwise.
 */
function redispatchTarget(conn: ConnState, route: Route, info: StreamInfo): ((socket: net.Socket, source: { address: string; port: number }) => void) | undefined {
  const dst = originalDstOf(route, conn.ctx.log);
  const dispatch = dst && internalDispatch(conn.ctx)?.target(dst);
  if (!dispatch) return undefined;
  info.responseCode = 200;
  info.responseCodeDetails = 'via_upstream';
  info.upstreamHost = `${dst.address}:${dst.port}`;
  return dispatch;
}

/**
 * Terminates an HTTP/1.1 CONNECT and dispatches its inside when its route names an original
 * destination that has a listener here; false (nothing done) otherwise. The CONNECT stream itself
 * is logged when the tunnel closes, with the bytes that went through it.
 */
export function redispatchConnect(conn: ConnState, route: Route, socket: net.Socket, early: Buffer, head: RequestHead, info: StreamInfo): boolean {
  const dispatch = redispatchTarget(conn, route, info);
  if (!dispatch) return false;
  socket.pause();
  // The bytes the client sent after the CONNECT head belong to the inner connection.
  const readBefore = socket.bytesRead - early.length;
  if (early.length) socket.unshift(early);
  socket.write('HTTP/1.1 200 OK\r\n\r\n');
  const writtenBefore = socket.bytesWritten;
  socket.once('close', () => {
    info.bytesReceived = socket.bytesRead - readBefore;
    info.bytesSent = socket.bytesWritten - writtenBefore;
    finish(info, conn, head);
  });
  dispatch(socket, { address: conn.info.remoteAddress, port: conn.info.remotePort });
  return true;
}

/** The same for a CONNECT on an HTTP/2 stream: answered 200, the stream's DATA is the inner connection. */
export function redispatchH2Connect(conn: ConnState, route: Route, stream: http2.ServerHttp2Stream, head: RequestHead, info: StreamInfo): boolean {
  const dispatch = redispatchTarget(conn, route, info);
  if (!dispatch) return false;
  stream.respond({ ':status': 200 });
  const inner = new TunnelStreamSocket(stream);
  inner.once('close', () => {
    info.bytesReceived = inner.bytesRead;
    info.bytesSent = inner.bytesWritten;
    finish(info, conn, head);
  });
  dispatch(inner.asSocket(), { address: conn.info.remoteAddress, port: conn.info.remotePort });
  return true;
}
