// Envoy's ConnectionManagerUtility::mutateRequestHeaders: what the connection manager does to every
// request's headers before routing, ordinary requests, upgrades (WebSocket...) and CONNECT alike:
// x-forwarded-for processing and the internal/external sanitizing (header-sanitizing.ts), which
// also sets the stream's downstream remote address, x-forwarded-proto, x-request-id, via and
// x-forwarded-client-cert. Envoy runs it for CONNECT too; a terminated CONNECT (the only kind here)
// sends no headers upstream, so there it shows in the StreamInfo and the access log.
import type { RequestHead } from '../filters/filter.ts';
import type { StreamInfo } from '../stream-info.ts';
import type { ConnState } from './http-stream.ts';
import { processForwardedFor } from './header-sanitizing.ts';
import { clearTraceReason, newRequestId } from './request-id.ts';
import { applyXfcc } from './xfcc.ts';
import { firstHeaderValue } from './first-header-value.ts';

const NONE: readonly string[] = [];

/** Mutates `head.headers` for the connection's HCM and fills `info` (requestId, trusted client address). Returns whether the request is internal. */
export function mutateRequestHeaders(conn: ConnState, head: RequestHead, info: StreamInfo): boolean {
  const hcm = conn.hcm;
  const h = head.headers;
  const internal = processForwardedFor(h, hcm, conn.info.remoteAddress, info, hcm.routes.table?.internalOnlyHeaders ?? NONE);
  // With use_remote_address, a downstream x-forwarded-proto is trusted only behind trusted hops.
  if ((hcm.useRemoteAddress && hcm.xffTrustedHops === 0) || h['x-forwarded-proto'] === undefined) h['x-forwarded-proto'] = head.scheme;
  let rid = firstHeaderValue(h['x-request-id']);
  if (hcm.generateRequestId && (rid === undefined || (hcm.useRemoteAddress && !hcm.preserveExternalRequestId))) {
    rid = newRequestId();
    h['x-request-id'] = rid;
  } else if (hcm.generateRequestId && hcm.useRemoteAddress && rid !== undefined) {
    const cleared = clearTraceReason(rid, hcm.requestId);
    if (cleared !== rid) h['x-request-id'] = rid = cleared;
  }
  info.requestId = rid;
  if (hcm.via) h.via = h.via === undefined ? hcm.via : `${firstHeaderValue(h.via)}, ${hcm.via}`;
  applyXfcc(h, hcm.xfcc.mode, conn.clientCert, conn.xfccElement);
  return internal;
}
