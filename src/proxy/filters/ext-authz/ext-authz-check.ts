// What one authorization check sends and what it decides, shared by the HTTP and gRPC services:
// the original request's attributes in, and ok (with header mutations), denied (the service's
// response for the client) or error (no usable answer) out.
import type { ConnectionInfo, HeaderMap, RequestHead } from '../filter.ts';
import type { ExtAuthzConfig } from './ext-authz-config.ts';

export interface CheckInput {
  /** The HTTP request; absent for a connection (network ext_authz). */
  readonly head?: RequestHead;
  readonly conn: ConnectionInfo;
  readonly requestId?: string;
  readonly protocol?: string;
  /** The buffered body (with_request_body), possibly cut at max_request_bytes; absent when none was buffered. */
  readonly body?: Buffer;
  readonly partialBody: boolean;
  /** The request's size in bytes (Content-Length, else the whole body's length), -1 when unknown. */
  readonly size?: number;
  /** Dynamic metadata so far (filter name → values). */
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly contextExtensions: Readonly<Record<string, string>>;
}

export type HeaderPair = readonly [string, string];

/** HeaderValueOption.append_action as ext_authz applies it (unset, or append: false, is Set). */
export const HeaderAction = { Set: 0, Append: 1, AddIfAbsent: 2, OverwriteIfExists: 3 } as const;
export type HeaderAction = (typeof HeaderAction)[keyof typeof HeaderAction];

export interface HeaderMutation {
  readonly key: string;
  readonly value: string;
  readonly action: HeaderAction;
}

export interface CheckOk {
  readonly kind: 'ok';
  /** Upstream request header mutations, in the service's order. */
  readonly headers: readonly HeaderMutation[];
  readonly remove: readonly string[];
  /** query_parameters_to_set (replacing every value of the name) and query_parameters_to_remove. */
  readonly querySet?: readonly HeaderPair[];
  readonly queryRemove?: readonly string[];
  /** Mutations of the client's response. */
  readonly response: readonly HeaderMutation[];
  /** An append_action this proxy does not know was seen (refused with validate_mutations, else Set). */
  readonly invalidAction?: boolean;
  readonly dynamicMetadata?: Record<string, unknown>;
}

/** Applies one mutation to a header map (repeated values as arrays). */
export function mutateHeaders(h: HeaderMap, m: HeaderMutation): void {
  const prev = h[m.key];
  if (m.action === HeaderAction.Append) h[m.key] = prev === undefined ? m.value : [...(Array.isArray(prev) ? prev : [prev]), m.value];
  else if (m.action === HeaderAction.Set || (m.action === HeaderAction.AddIfAbsent ? prev === undefined : prev !== undefined)) h[m.key] = m.value;
}

export interface CheckDenied {
  readonly kind: 'denied';
  readonly status: number;
  readonly headers: HeaderMap;
  readonly body: string;
  readonly dynamicMetadata?: Record<string, unknown>;
}

export interface CheckError {
  readonly kind: 'error';
  readonly message: string;
}

export type CheckResult = CheckOk | CheckDenied | CheckError;

export interface AuthzService {
  check(input: CheckInput, signal: AbortSignal): Promise<CheckResult>;
}

/**
 * The request headers a check carries, with the pseudo headers (`:authority`, `:method`, `:path`)
 * first, as Envoy's CheckRequest: filtered by allowed_headers (plus `defaults` when given),
 * minus disallowed_headers. Unset allowed_headers with no defaults means every header (gRPC).
 * Repeated headers are joined with "," unless encode_raw_headers keeps them apart.
 */
export function checkHeaders(c: ExtAuthzConfig, head: RequestHead, defaults: ReadonlySet<string> | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const all: [string, string | string[] | undefined][] = [[':authority', head.authority], [':method', head.method], [':path', head.path], [':scheme', head.scheme]];
  // Host is :authority here, as in Envoy's CheckRequest.
  for (const [k, v] of Object.entries(head.headers)) if (k !== 'host') all.push([k, Array.isArray(v) && !c.rawHeaders ? v.join(',') : v]);
  for (const [k, v] of all) {
    if (v === undefined) continue;
    const allowed = defaults ? defaults.has(k) || c.allowedHeaders.match(k) : !c.allowedHeaders.set || c.allowedHeaders.match(k);
    if (allowed && !c.disallowedHeaders.match(k)) out[k] = v;
  }
  return out;
}
