// HTTP/1.1 requests that never became a stream (the codec refused them: malformed request line or
// headers, headers too large, headers not received in time) still show in telemetry, as in Envoy:
// one StreamInfo with the status sent, response flag DPE for protocol errors and the details
// Envoy reports, through the access logs and observers (Istio metrics, spans).
import type { ConnState } from './http-stream.ts';
import { newStreamInfo } from '../stream-info.ts';
import { ResponseFlag } from '../response-flags.ts';

export function recordCodecError(conn: ConnState | undefined, status: number, code: string | undefined): void {
  if (!conn) return;
  const info = newStreamInfo(conn.hcm.direction, 'HTTP/1.1');
  info.downstreamRemoteAddress = conn.remoteAddr;
  info.downstreamDirectRemoteAddress = conn.directRemoteAddr;
  info.downstreamRemoteIp = conn.info.remoteAddress;
  info.downstreamLocalAddress = conn.localAddr;
  info.requestedServerName = conn.info.sni;
  info.responseCode = status;
  if (status === 408) info.responseCodeDetails = 'request_header_timeout';
  else {
    info.responseFlags = ResponseFlag.DownstreamProtocolError;
    info.responseCodeDetails = status === 431 ? 'http1.headers_too_large' : `http1.codec_error{${code ?? 'invalid'}}`;
  }
  info.durationMs = 0;
  const hcm = conn.hcm;
  hcm.stats.codes.record(status);
  for (const l of hcm.accessLogs) l.log(info, undefined, undefined);
  const obs = conn.ctx.observers;
  for (let i = 0; i < obs.length; i++) obs[i](info, undefined, undefined);
}
