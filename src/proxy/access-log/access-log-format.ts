// Envoy's access log format strings (%COMMAND(arg)?:maxlen%), compiled once into parts. Missing
// values print "-" as Envoy does. The default format is Envoy's.
import type { RequestHead, ResponseHead } from '../filters/filter.ts';
import type { StreamInfo } from '../stream-info.ts';
import { formatResponseFlags } from '../response-flags.ts';
import { headerValue } from '../routing/header-matcher.ts';
import { extraLogOperator } from '../telemetry/access-log-operators.ts';

export const DEFAULT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

type Getter = (i: StreamInfo, q: RequestHead | undefined, r: ResponseHead | undefined) => string | number | undefined;

function header(h: Record<string, string | string[] | undefined> | undefined, name: string): string | undefined {
  const v = h?.[name];
  return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v;
}

function reqHeader(q: RequestHead | undefined, name: string): string | undefined {
  return q ? headerValue(q, name) : undefined;
}

const SIMPLE: Record<string, Getter> = {
  START_TIME: (i) => new Date(i.startTime).toISOString(),
  PROTOCOL: (i) => i.protocol || undefined,
  RESPONSE_CODE: (i) => i.responseCode,
  RESPONSE_FLAGS: (i) => formatResponseFlags(i.responseFlags),
  RESPONSE_CODE_DETAILS: (i) => i.responseCodeDetails,
  BYTES_RECEIVED: (i) => i.bytesReceived,
  BYTES_SENT: (i) => i.bytesSent,
  DURATION: (i) => (i.durationMs === undefined ? undefined : Math.round(i.durationMs)),
  UPSTREAM_HOST: (i) => i.upstreamHost,
  UPSTREAM_CLUSTER: (i) => i.upstreamCluster,
  UPSTREAM_LOCAL_ADDRESS: (i) => i.upstreamLocalAddress,
  UPSTREAM_TRANSPORT_FAILURE_REASON: (i) => i.upstreamTransportFailureReason,
  DOWNSTREAM_REMOTE_ADDRESS: (i) => i.downstreamRemoteAddress,
  DOWNSTREAM_TRANSPORT_FAILURE_REASON: (i) => i.downstreamTransportFailureReason,
  DOWNSTREAM_LOCAL_ADDRESS: (i) => i.downstreamLocalAddress,
  DOWNSTREAM_PEER_URI_SAN: (i) => i.downstreamPeer?.principal,
  REQUESTED_SERVER_NAME: (i) => i.requestedServerName,
  ROUTE_NAME: (i) => i.routeName || undefined,
  GRPC_STATUS_NUMBER: (i) => i.grpcStatus,
  TRACE_ID: (i) => i.traceId,
  HOSTNAME: () => process.env.HOSTNAME,
};

export interface LogFormatter {
  format(i: StreamInfo, q: RequestHead | undefined, r: ResponseHead | undefined): string;
  /** A format that is a single command: its raw value (undefined when missing), for JSON. */
  value?: Getter;
}

/**
 * Compiles one format string; unknown commands are reported through `error`. A command without a
 * value prints `-`, or nothing with `omitEmpty` (SubstitutionFormatString.omit_empty_values).
 */
export function compileLogFormat(text: string, error: (msg: string) => void, omitEmpty = false): LogFormatter {
  const empty = omitEmpty ? '' : '-';
  const parts: (string | Getter)[] = [];
  const re = /%([A-Z_0-9]+)(?:\(([^)]*)\))?(?::(\d+))?%/g;
  let last = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > last) parts.push(text.slice(last, m.index).replace(/%%/g, '%'));
    last = m.index + m[0].length;
    const [, cmd, arg, max] = m;
    let g: Getter | undefined = SIMPLE[cmd];
    if (cmd === 'REQ' || cmd === 'RESP' || cmd === 'TRAILER') {
      const [main, alt] = (arg ?? '').toLowerCase().split('?');
      if (cmd === 'REQ') g = (_i, q) => reqHeader(q, main) ?? (alt ? reqHeader(q, alt) : undefined);
      else g = (_i, _q, r) => header(r?.headers, main) ?? (alt ? header(r?.headers, alt) : undefined);
    } else if (cmd === 'ENVIRONMENT') g = () => process.env[arg ?? ''];
    else if (!g || arg) {
      // Istio's and Envoy's other commands (CONNECTION_TERMINATION_DETAILS, START_TIME(fmt), CEL(expr), ...).
      try {
        g = extraLogOperator(cmd, arg) ?? g;
      } catch (e) {
        error((e as Error).message);
        continue;
      }
    }
    if (!g) {
      error(`unsupported access log command %${cmd}%`);
      continue;
    }
    if (max) {
      const inner = g;
      const n = Number(max);
      g = (i, q, r) => {
        const v = inner(i, q, r);
        return v === undefined ? undefined : String(v).slice(0, n);
      };
    }
    parts.push(g);
  }
  if (last < text.length) parts.push(text.slice(last).replace(/%%/g, '%'));
  return {
    value: parts.length === 1 && typeof parts[0] !== 'string' ? parts[0] : undefined,
    format(i, q, r) {
      let s = '';
      for (const p of parts) {
        if (typeof p === 'string') s += p;
        else {
          const v = p(i, q, r);
          s += v === undefined || v === '' ? empty : v;
        }
      }
      return s;
    },
  };
}

/**
 * json_format: each value a format string (or nested object); values keep their JSON types where
 * numeric. A single command without a value is null, or with `omitEmpty` its key is left out.
 */
export function compileJsonFormat(obj: Record<string, unknown>, error: (msg: string) => void, omitEmpty = false): LogFormatter {
  const entries = Object.entries(obj).map(([k, v]) => [k, typeof v === 'string' ? compileLogFormat(v, error, omitEmpty) : compileJsonFormat((v ?? {}) as Record<string, unknown>, error, omitEmpty)] as const);
  const build = (i: StreamInfo, q: RequestHead | undefined, r: ResponseHead | undefined): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [k, f] of entries) {
      // A single command keeps its type (numbers stay numbers) and a missing value is null, as in Envoy.
      if ('value' in f && f.value) {
        const v = f.value(i, q, r);
        if (v !== undefined || !omitEmpty) out[k] = v ?? null;
      }
      else if ('value' in f) out[k] = f.format(i, q, r);
      else out[k] = JSON.parse(f.format(i, q, r));
    }
    return out;
  };
  return { format: (i, q, r) => JSON.stringify(build(i, q, r)) };
}
