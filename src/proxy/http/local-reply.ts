// Envoy's local replies: plain text bodies, or for gRPC requests a trailers-only response
// (HTTP 200, grpc-status mapped from the HTTP status, grpc-message), rewritten by the HCM's
// local_reply_config (mappers and body format) when it has one.
import type { Reader } from '../config/reader.ts';
import { readDataSource } from '../config/data-source.ts';
import type { HeaderMap, RequestHead, ResponseHead } from '../filters/filter.ts';
import type { StreamInfo } from '../stream-info.ts';
import { compileLogFormat } from '../access-log/access-log-format.ts';
import { compileLogFilter, type LogPredicate } from '../telemetry/access-log-filter.ts';
import { readHeadersToAdd, type HeaderOps } from '../routing/header-ops.ts';

/** Envoy's HTTP → gRPC status mapping for local replies. */
export function grpcStatusFor(http: number): number {
  switch (http) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}

/** Envoy's hasGrpcContentType: application/grpc or application/grpc+<subtype>; application/grpc-web is not gRPC. */
export function isGrpcContentType(ct: string | string[] | undefined): boolean {
  return typeof ct === 'string' && ct.startsWith('application/grpc') && (ct.length === 16 || ct.charCodeAt(16) === 43);
}

/** A local reply on its way out: mappers may change each part. */
export interface LocalReplyParts {
  status: number;
  headers: HeaderMap;
  body: string;
}

interface BodyFormat {
  readonly contentType: string;
  render(info: StreamInfo, head: RequestHead | undefined, body: string): string;
}

interface Mapper {
  readonly filter: LogPredicate;
  readonly status?: number;
  readonly headers: HeaderOps;
  readonly body?: string;
  readonly format?: BodyFormat;
}

/** HCM local_reply_config compiled: mappers in order (first match wins), then the body format. */
export interface LocalReplyConfig {
  readonly mappers: readonly Mapper[];
  readonly format?: BodyFormat;
}

const BODY = '%LOCAL_REPLY_BODY%';

/** A format string in which %LOCAL_REPLY_BODY% stands for the reply's body text. */
function compileText(text: string, error: (m: string) => void, omitEmpty: boolean): (info: StreamInfo, head: RequestHead | undefined, body: string) => string {
  const parts = text.split(BODY).map((p) => compileLogFormat(p, error, omitEmpty));
  if (parts.length === 1) return (i, q) => parts[0].format(i, q, undefined);
  return (i, q, body) => parts.map((p) => p.format(i, q, undefined)).join(body);
}

type JsonBuilder = (info: StreamInfo, head: RequestHead | undefined, body: string) => unknown;

/** JSON body format; with `omitEmpty` (omit_empty_values) a key whose single command has no value is left out. */
function compileJson(v: unknown, error: (m: string) => void, omitEmpty: boolean): JsonBuilder {
  if (typeof v === 'string') {
    if (v === BODY) return (_i, _q, body) => body;
    // A value that is one command keeps its type (numbers stay numbers), as in access logs.
    const f = compileLogFormat(v, error, omitEmpty);
    if (f.value && !v.includes(BODY)) {
      const get = f.value;
      return (i, q) => get(i, q, undefined) ?? null;
    }
    return compileText(v, error, omitEmpty);
  }
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const entries = Object.entries(v).map(([k, x]) => [k, compileJson(x, error, omitEmpty)] as const);
    return (i, q, body) => {
      const out: Record<string, unknown> = {};
      for (const [k, b] of entries) {
        const x = b(i, q, body);
        if (x !== null || !omitEmpty) out[k] = x;
      }
      return out;
    };
  }
  return () => v;
}

function readBodyFormat(r: Reader | undefined): BodyFormat | undefined {
  if (!r) return undefined;
  const error = (m: string): void => r.issues.error(r.path, m);
  const kinds = ['text_format', 'json_format', 'text_format_source'].filter((k) => r.has(k));
  if (kinds.length !== 1) r.issues.error(r.path, `a body format needs exactly one of text_format, json_format, text_format_source (got ${kinds.join(', ') || 'none'})`);
  const contentType = r.str('content_type');
  const omitEmpty = r.bool('omit_empty_values', false);
  if (r.has('formatters')) r.issues.warn(r.at('formatters'), 'formatter extensions are not supported; the built-in commands are used');
  let out: BodyFormat | undefined;
  if (r.has('json_format')) {
    const build = compileJson(r.get('json_format'), error, omitEmpty);
    out = { contentType: contentType || 'application/json', render: (i, q, body) => JSON.stringify(build(i, q, body)) };
  } else {
    let text = r.str('text_format');
    const src = r.obj('text_format_source');
    if (src) {
      text = readDataSource(src) ?? '';
    }
    out = { contentType: contentType || 'text/plain', render: compileText(text, error, omitEmpty) };
  }
  r.done();
  return out;
}

function readMapper(m: Reader): Mapper {
  const f = m.obj('filter');
  if (!f) m.issues.error(m.at('filter'), 'a local reply mapper needs a filter');
  const filter = f ? compileLogFilter(f) : () => false;
  let status: number | undefined;
  if (m.has('status_code')) {
    status = m.num('status_code', 0);
    if (!(status >= 200 && status <= 599)) m.issues.error(m.at('status_code'), 'status_code must be between 200 and 599');
  }
  let body: string | undefined;
  const b = m.obj('body');
  if (b) {
    body = readDataSource(b, 'a mapper body');
  }
  const mapper = { filter, status, headers: readHeadersToAdd(m, 'headers_to_add'), body, format: readBodyFormat(m.obj('body_format_override')) };
  m.done();
  return mapper;
}

export function compileLocalReplyConfig(r: Reader | undefined): LocalReplyConfig | undefined {
  if (!r) return undefined;
  const mappers = r.objs('mappers').map(readMapper);
  const format = readBodyFormat(r.obj('body_format'));
  r.done();
  return mappers.length || format ? { mappers, format } : undefined;
}

/**
 * Envoy's local reply rewrite: the first mapper whose filter matches (filters see the reply's
 * status and response flags) may replace the body, add headers, change the status and pick its
 * own body format; the body is then rendered by that format, else body_format, else left as is.
 */
export function rewriteLocalReply(cfg: LocalReplyConfig, info: StreamInfo, head: RequestHead | undefined, reply: LocalReplyParts): void {
  info.responseCode = reply.status;
  const res: ResponseHead = { status: reply.status, headers: reply.headers };
  let format = cfg.format;
  for (const m of cfg.mappers) {
    if (!m.filter(info, head, res)) continue;
    if (m.body !== undefined) reply.body = m.body;
    if (!m.headers.empty) m.headers.apply(reply.headers, info, head);
    if (m.status !== undefined) info.responseCode = reply.status = m.status;
    if (m.format) format = m.format;
    break;
  }
  if (format) {
    reply.body = format.render(info, head, reply.body);
    reply.headers['content-type'] = format.contentType;
  }
}
