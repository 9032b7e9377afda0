// MeshConfig.extensionProviders for external authorization (AuthorizationPolicy action CUSTOM):
// envoyExtAuthzHttp and envoyExtAuthzGrpc, Istio's shapes and Istio's checks (port, pathPrefix,
// statusOnError a known HTTP status, no lone "*" in header lists, durations).
import { envoyEnum } from '../envoy/index.ts';

export interface ExtAuthzRequestBody {
  maxRequestBytes?: number;
  allowPartialMessage?: boolean;
  packAsBytes?: boolean;
}

export interface ExtAuthzHttpProvider {
  service: string;
  port: number | string;
  timeout?: string;
  pathPrefix?: string;
  failOpen?: boolean;
  clearRouteCache?: boolean;
  statusOnError?: string;
  includeRequestHeadersInCheck?: string[];
  /** Deprecated by Istio in favour of includeRequestHeadersInCheck (used only when that is unset). */
  includeHeadersInCheck?: string[];
  includeAdditionalHeadersInCheck?: Record<string, string>;
  includeRequestBodyInCheck?: ExtAuthzRequestBody;
  headersToUpstreamOnAllow?: string[];
  headersToDownstreamOnDeny?: string[];
  headersToDownstreamOnAllow?: string[];
}

export interface ExtAuthzGrpcProvider {
  service: string;
  port: number | string;
  timeout?: string;
  failOpen?: boolean;
  clearRouteCache?: boolean;
  statusOnError?: string;
  includeRequestBodyInCheck?: ExtAuthzRequestBody;
}

const HEADER_LISTS = ['includeRequestHeadersInCheck', 'includeHeadersInCheck', 'headersToUpstreamOnAllow', 'headersToDownstreamOnDeny', 'headersToDownstreamOnAllow'];
const COMMON = ['service', 'port', 'timeout', 'failOpen', 'clearRouteCache', 'statusOnError', 'includeRequestBodyInCheck'];

export const EXT_AUTHZ_FIELDS: Record<'envoyExtAuthzHttp' | 'envoyExtAuthzGrpc', string[]> = {
  envoyExtAuthzHttp: [...COMMON, 'pathPrefix', 'includeAdditionalHeadersInCheck', ...HEADER_LISTS],
  envoyExtAuthzGrpc: COMMON,
};

const DURATION = /^\d+(\.\d+)?(ns|us|µs|ms|s|m|h)$/;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Envoy's envoy.type.v3.StatusCode: the statuses an ext_authz filter can answer with. */
export function knownHttpStatus(code: number): boolean {
  return code > 0 && envoyEnum('envoy.type.v3.StatusCode').valuesById[code] !== undefined;
}

/** Problems in one envoyExtAuthzHttp / envoyExtAuthzGrpc provider (field names known to be valid already). */
export function checkExtAuthzProvider(kind: 'envoyExtAuthzHttp' | 'envoyExtAuthzGrpc', cfg: Record<string, unknown>, at: string): string[] {
  const errors: string[] = [];
  const p = `${at}.${kind}`;
  if (typeof cfg.service !== 'string' || !cfg.service) errors.push(`${p}.service: required (the authorization service's host, e.g. ext-authz.foo.svc.cluster.local or foo/ext-authz.foo.svc.cluster.local)`);
  // Istio's own task writes the port as a string ("9000"): proto JSON accepts both.
  const port = typeof cfg.port === 'string' && /^\d+$/.test(cfg.port) ? Number(cfg.port) : cfg.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) errors.push(`${p}.port: required, a port number (1-65535)`);
  if (cfg.timeout !== undefined && (typeof cfg.timeout !== 'string' || !DURATION.test(cfg.timeout))) errors.push(`${p}.timeout: invalid duration ${JSON.stringify(cfg.timeout)} (e.g. "0.5s")`);
  for (const f of ['failOpen', 'clearRouteCache']) if (cfg[f] !== undefined && typeof cfg[f] !== 'boolean') errors.push(`${p}.${f}: expected true or false`);
  if (cfg.statusOnError !== undefined) {
    const n = Number(cfg.statusOnError);
    if (typeof cfg.statusOnError !== 'string' || !Number.isInteger(n) || !knownHttpStatus(n)) errors.push(`${p}.statusOnError: ${JSON.stringify(cfg.statusOnError)} is not a supported HTTP status (a string such as "403" or "503")`);
  }
  if (cfg.pathPrefix !== undefined && (typeof cfg.pathPrefix !== 'string' || !cfg.pathPrefix.startsWith('/'))) errors.push(`${p}.pathPrefix: must begin with "/", got ${JSON.stringify(cfg.pathPrefix)}`);
  for (const f of HEADER_LISTS) {
    const v = cfg[f];
    if (v === undefined) continue;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !x)) errors.push(`${p}.${f}: expected a list of header names`);
    else if (v.includes('*')) errors.push(`${p}.${f}: a single wildcard ("*") is not supported; use a prefix ("x-*") or suffix ("*-id") match`);
  }
  const extra = cfg.includeAdditionalHeadersInCheck;
  if (extra !== undefined && (!isObj(extra) || Object.values(extra).some((x) => typeof x !== 'string'))) errors.push(`${p}.includeAdditionalHeadersInCheck: expected a map of header name to value`);
  const body = cfg.includeRequestBodyInCheck;
  if (body !== undefined) {
    if (!isObj(body)) errors.push(`${p}.includeRequestBodyInCheck: expected a mapping (maxRequestBytes, allowPartialMessage, packAsBytes)`);
    else {
      for (const k of Object.keys(body)) if (!['maxRequestBytes', 'allowPartialMessage', 'packAsBytes'].includes(k)) errors.push(`${p}.includeRequestBodyInCheck.${k}: unknown field (known: maxRequestBytes, allowPartialMessage, packAsBytes)`);
      const m = body.maxRequestBytes;
      if (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > 0xffffffff) errors.push(`${p}.includeRequestBodyInCheck.maxRequestBytes: required, the most body bytes sent to the authorization service (e.g. 8192)`);
      for (const k of ['allowPartialMessage', 'packAsBytes']) if (body[k] !== undefined && typeof body[k] !== 'boolean') errors.push(`${p}.includeRequestBodyInCheck.${k}: expected true or false`);
    }
  }
  return errors;
}
