// CEL expressions over Istio's/Envoy's attribute vocabulary (request.*, response.*, source.*,
// destination.*, connection.*, upstream.*, xds.*, filter_state), as used by Telemetry access log filters
// (`response.code >= 400`) and metric tag overrides. Compiled once with @marcbachmann/cel-js,
// which loads with the first expression (a proxy without one does not carry it: 0.8 MB heap);
// the activation is built only when an expression runs.
import { createRequire } from 'node:module';
import type { Environment } from '@marcbachmann/cel-js';
import type * as CelJs from '@marcbachmann/cel-js';
import { parseCel, withRe2Matches } from '../../core/cel-re2.ts';
import type { RequestHead, ResponseHead, HeaderMap } from '../filters/filter.ts';
import type { StreamInfo } from '../stream-info.ts';
import { formatResponseFlags } from '../response-flags.ts';

export type CelProgram = (info: StreamInfo, request: RequestHead | undefined, response: ResponseHead | undefined) => unknown;

let env: Environment | undefined;

function environment(): Environment {
  if (env) return env;
  const cel = createRequire(import.meta.url)('@marcbachmann/cel-js') as typeof CelJs;
  return (env = withRe2Matches(new cel.Environment({ unlistedVariablesAreDyn: true, homogeneousAggregateLiterals: false })));
}

function headers(h: HeaderMap | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (h) for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(',') : v;
  return out;
}

function splitAddress(a: string | undefined): { address: string; port: number } {
  if (!a) return { address: '', port: 0 };
  const i = a.lastIndexOf(':');
  return i > 0 ? { address: a.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(a.slice(i + 1)) || 0 } : { address: a, port: 0 };
}

/** A filter state object as CEL sees it: strings, numbers, booleans and bytes (what plugins set); other objects are left out. */
function filterStateMap(fs: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (fs) for (const k in fs) if (isCelScalar(fs[k])) out[k] = fs[k];
  return out;
}

function isCelScalar(v: unknown): boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v instanceof Uint8Array;
}

/**
 * Envoy's attributes for one finished stream, then, as Istio's stats filter resolves a name no
 * attribute has, the filter state a Wasm plugin set under that name (`wasm.<name>`): Istio's
 * attributegen sets `istio_operationId`, which a Telemetry tag override names bare. Such a value is
 * bytes (an undeclared property); Istio prints it into the label as text, so the bare name is its text.
 */
export function attributes(info: StreamInfo, request: RequestHead | undefined, response: ResponseHead | undefined): Record<string, unknown> {
  const out = envoyAttributes(info, request, response);
  const fs = info.filterState;
  if (fs)
    for (const k in fs) {
      const v = fs[k];
      if (k.startsWith('wasm.') && isCelScalar(v) && !(k.slice(5) in out)) out[k.slice(5)] = v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8') : v;
    }
  return out;
}

function envoyAttributes(info: StreamInfo, request: RequestHead | undefined, response: ResponseHead | undefined): Record<string, unknown> {
  const path = request?.path ?? info.path ?? '';
  const q = path.indexOf('?');
  const src = splitAddress(info.downstreamRemoteAddress);
  const dst = splitAddress(info.downstreamLocalAddress);
  const up = splitAddress(info.upstreamHost);
  return {
    request: {
      path,
      url_path: q >= 0 ? path.slice(0, q) : path,
      host: request?.authority ?? info.authority ?? '',
      scheme: request?.scheme ?? info.scheme ?? '',
      method: request?.method ?? info.method ?? '',
      headers: headers(request?.headers),
      referer: String(request?.headers.referer ?? ''),
      useragent: info.userAgent ?? '',
      time: new Date(info.startTime),
      id: info.requestId ?? '',
      protocol: info.protocol,
      duration: (info.durationMs ?? 0) / 1000,
      size: info.bytesReceived,
      total_size: info.bytesReceived,
    },
    response: {
      code: info.responseCode,
      code_details: info.responseCodeDetails ?? '',
      flags: info.responseFlags,
      flags_string: formatResponseFlags(info.responseFlags),
      grpc_status: info.grpcStatus ?? 0,
      headers: headers(response?.headers),
      size: info.bytesSent,
      total_size: info.bytesSent,
    },
    source: { ...src, principal: info.downstreamPeer?.principal ?? '' },
    destination: dst,
    connection: {
      mtls: info.mtls,
      requested_server_name: info.requestedServerName ?? '',
      uri_san_peer_certificate: info.downstreamPeer?.principal ?? '',
      transport_failure_reason: info.downstreamTransportFailureReason ?? '',
    },
    upstream: { ...up, transport_failure_reason: info.upstreamTransportFailureReason ?? '' },
    xds: { cluster_name: info.upstreamCluster ?? '', route_name: info.routeName ?? '' },
    filter_state: filterStateMap(info.filterState),
  };
}

/** Compiles an expression; throws with the parser's message when it is not valid CEL. */
export function compileCel(expression: string): CelProgram {
  const fn = parseCel(environment(), expression) as unknown as (ctx: Record<string, unknown>) => unknown;
  return (info, request, response) => fn(attributes(info, request, response));
}
