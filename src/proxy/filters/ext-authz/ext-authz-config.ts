// Compiles envoy.extensions.filters.http.ext_authz.v3.ExtAuthz (once per LDS update): the HTTP or
// gRPC authorization service, which request headers go into the check, which response headers go
// where, body buffering, failure handling, and when the filter is enabled (filter_enabled_metadata,
// filter_enabled). Fields that would change who is allowed but are not implemented are errors.
import { envoyEnum } from '../../../envoy/index.ts';
import type { Reader } from '../../config/reader.ts';
import { ALWAYS, readRuntimeFractionalPercent, type FractionalPercent } from '../../config/fractional-percent.ts';
import type { EnvoyRuntime } from '../../envoy-runtime/index.ts';
import { readStringMatcher, type StringMatcher } from '../../routing/string-matcher.ts';
import { readMetadataMatcher } from '../rbac/rbac-metadata.ts';
import { readHeaderMutationRules, type HeaderMutationRules } from './ext-authz-mutation-rules.ts';
import { headerValues, readGrpcService, type GrpcServiceConfig } from '../../config/grpc-service.ts';

/** Envoy's ext_authz timeout when grpc_service.timeout is unset (Istio always sets one). */
export const GRPC_CHECK_TIMEOUT_MS = 200;

/** A ListStringMatcher over header names (lower case); `none` matches nothing. */
export interface NameList {
  readonly set: boolean;
  match(name: string): boolean;
}

export const NO_NAMES: NameList = { set: false, match: () => false };

export interface HttpServiceConfig {
  readonly kind: 'http';
  readonly cluster: string;
  readonly timeoutMs: number;
  readonly pathPrefix: string;
  /** authorization_request.headers_to_add, set on the check request. */
  readonly headersToAdd: readonly (readonly [string, string])[];
  readonly allowedUpstream: NameList;
  readonly allowedUpstreamAppend: NameList;
  /** allowed_client_headers: unset = every header of the denial goes to the client. */
  readonly allowedClient: NameList;
  readonly allowedClientOnSuccess: NameList;
}

export interface BodySettings {
  readonly maxBytes: number;
  readonly allowPartial: boolean;
  readonly packAsBytes: boolean;
}

export interface ExtAuthzConfig {
  readonly service: HttpServiceConfig | GrpcServiceConfig;
  readonly failureModeAllow: boolean;
  readonly failureModeAllowHeaderAdd: boolean;
  readonly statusOnError: number;
  readonly clearRouteCache: boolean;
  readonly body?: BodySettings;
  /** decoder_header_mutation_rules: unset = every header mutation except `:` headers and host. */
  readonly mutationRules?: HeaderMutationRules;
  /** validate_mutations: an invalid header name or value in an OK answer fails the request (500). */
  readonly validateMutations: boolean;
  /** deny_at_disable: a request the filter is disabled for is refused with status_on_error. */
  /** deny_at_disable (a RuntimeFeatureFlag). */
  readonly denyAtDisable: { readonly value: boolean };
  /** allowed_headers (or the deprecated authorization_request.allowed_headers); unset: see the service kind. */
  readonly allowedHeaders: NameList;
  readonly disallowedHeaders: NameList;
  readonly enabledByMetadata?: (md: Readonly<Record<string, unknown>>) => boolean;
  /** filter_enabled's default_value as a fraction (1 = always). */
  /** filter_enabled (a RuntimeFractionalPercent). */
  readonly enabled: FractionalPercent;
  /** metadata_context_namespaces: dynamic metadata sent to a gRPC service. */
  readonly metadataNamespaces: readonly string[];
  /** enable_dynamic_metadata_ingestion: a gRPC service's dynamic_metadata is stored. */
  readonly ingestMetadata: boolean;
  readonly statPrefix: string;
  /** charge_cluster_response_stats: a denial counts in the route cluster's upstream_rq_<code>. */
  readonly chargeClusterStats: boolean;
  /** encode_raw_headers: repeated headers stay apart (gRPC: header_map with raw_value). */
  readonly rawHeaders: boolean;
  /** include_peer_certificate: the client certificate goes into a gRPC check's attributes.source.certificate. */
  readonly includePeerCertificate: boolean;
  /** include_tls_session: a gRPC check of a TLS connection carries attributes.tls_session (its SNI). */
  readonly includeTlsSession: boolean;
}

export interface ExtAuthzPerRoute {
  readonly disabled: boolean;
  readonly contextExtensions: Readonly<Record<string, string>>;
  /** check_settings.disable_request_body_buffering. */
  readonly noBody: boolean;
  /** check_settings.with_request_body: replaces max_request_bytes and allow_partial_message on the route. */
  readonly body?: { readonly maxBytes: number; readonly allowPartial: boolean };
}

export function readNameList(r: Reader | undefined): NameList {
  if (!r) return NO_NAMES;
  const ms: StringMatcher[] = r.objs('patterns').map(readStringMatcher);
  r.done();
  return { set: true, match: (n) => ms.some((m) => m.match(n)) };
}

/** An envoy.type.v3.HttpStatus: the enum name (proto JSON) or number → the HTTP status. */
export function httpStatus(r: Reader | undefined, def: number): number {
  if (!r) return def;
  const v = r.get('code');
  r.done();
  if (typeof v === 'number') return v || def;
  const n = typeof v === 'string' ? envoyEnum('envoy.type.v3.StatusCode').values[v] : undefined;
  if (n === undefined) r.issues.error(r.at('code'), `unknown HTTP status ${JSON.stringify(v)}`);
  return n || def;
}

function readHttpService(r: Reader, legacyAllowed: { list?: NameList }): HttpServiceConfig {
  const uri = r.obj('server_uri');
  const cluster = uri?.str('cluster') ?? '';
  const timeoutMs = uri?.durationMs('timeout', 0) ?? 0;
  const u = uri?.str('uri') ?? '';
  uri?.done();
  if (!uri) r.issues.error(r.at('server_uri'), 'http_service needs server_uri (uri, cluster, timeout)');
  else {
    if (!cluster) r.issues.error(r.at('server_uri.cluster'), 'the authorization requests need a cluster to go through');
    // Envoy requires a uri but does not use it: the check goes through the cluster with the
    // request's own authority (its docs write "ext_authz" or "127.0.0.1:10003" here).
    if (!u) r.issues.error(r.at('server_uri.uri'), 'a uri is required (Envoy does not use it: the cluster is where the check goes)');
    if (timeoutMs <= 0) r.issues.error(r.at('server_uri.timeout'), 'a timeout is required (e.g. "0.5s")');
  }
  const pathPrefix = r.str('path_prefix');
  if (pathPrefix && !pathPrefix.startsWith('/')) r.issues.error(r.at('path_prefix'), `must begin with "/", got "${pathPrefix}"`);
  const req = r.obj('authorization_request');
  let headersToAdd: [string, string][] = [];
  if (req) {
    if (req.has('allowed_headers')) legacyAllowed.list = readNameList(req.obj('allowed_headers'));
    headersToAdd = headerValues(req.objs('headers_to_add'));
    req.done();
  }
  const res = r.obj('authorization_response');
  const allowedUpstream = readNameList(res?.obj('allowed_upstream_headers'));
  const allowedUpstreamAppend = readNameList(res?.obj('allowed_upstream_headers_to_append'));
  const allowedClient = readNameList(res?.obj('allowed_client_headers'));
  const allowedClientOnSuccess = readNameList(res?.obj('allowed_client_headers_on_success'));
  if (res?.has('dynamic_metadata_from_headers')) res.issues.error(res.at('dynamic_metadata_from_headers'), 'not supported by rig proxy');
  res?.accept('dynamic_metadata_from_headers');
  res?.done();
  for (const k of ['retry_policy']) {
    if (r.has(k)) r.issues.warn(r.at(k), 'authorization requests are not retried by rig proxy; ignored');
    r.accept(k);
  }
  r.done();
  return { kind: 'http', cluster, timeoutMs, pathPrefix, headersToAdd, allowedUpstream, allowedUpstreamAppend, allowedClient, allowedClientOnSuccess };
}

function readBufferSettings(r: Reader): BodySettings {
  const body = { maxBytes: r.num('max_request_bytes', 0), allowPartial: r.bool('allow_partial_message', false), packAsBytes: r.bool('pack_as_bytes', false) };
  r.done();
  if (body.maxBytes <= 0) r.issues.error(r.at('max_request_bytes'), 'must be greater than 0');
  return body;
}

/**
 * include_peer_certificate and include_tls_session (HTTP and network filters). Envoy puts them in
 * the CheckRequest attributes, which only the gRPC service receives: its raw HTTP client sends the
 * request's method, path, headers and body, so for an HTTP service they have no effect.
 */
export function readPeerDetails(r: Reader, kind: 'http' | 'grpc'): { includePeerCertificate: boolean; includeTlsSession: boolean } {
  const out = { includePeerCertificate: r.bool('include_peer_certificate', false), includeTlsSession: r.bool('include_tls_session', false) };
  if (kind === 'http') {
    for (const [k, on] of [['include_peer_certificate', out.includePeerCertificate], ['include_tls_session', out.includeTlsSession]] as const) {
      if (on) r.issues.warn(r.at(k), 'an http_service check request carries no certificate or TLS session (Envoy sends them in the gRPC CheckRequest only); no effect');
    }
  }
  return out;
}

export function readExtAuthzConfig(r: Reader, runtime: EnvoyRuntime): ExtAuthzConfig {
  const legacy: { list?: NameList } = {};
  const hs = r.obj('http_service');
  const gs = r.obj('grpc_service');
  let service: HttpServiceConfig | GrpcServiceConfig;
  if (hs && gs) r.issues.error(r.path, 'ext_authz needs one of http_service and grpc_service, not both');
  if (hs) service = readHttpService(hs, legacy);
  else if (gs) service = readGrpcService(gs, 'authorization', GRPC_CHECK_TIMEOUT_MS);
  else {
    r.issues.error(r.path, 'ext_authz needs http_service or grpc_service');
    service = { kind: 'grpc', cluster: '', authority: '', timeoutMs: 0, initialMetadata: [], maxReceiveBytes: 0, skipEnvoyHeaders: false };
  }
  const api = r.str('transport_api_version', 'V3');
  if (api !== 'V3' && api !== 'AUTO') r.issues.error(r.at('transport_api_version'), `only V3 is supported, got ${api}`);
  const br = r.obj('with_request_body');
  const body = br ? readBufferSettings(br) : undefined;
  const fem = r.obj('filter_enabled_metadata');
  const enabledByMetadata = fem ? readMetadataMatcher(fem) : undefined;
  const mr = r.obj('decoder_header_mutation_rules');
  const dad = r.obj('deny_at_disable');
  const denyDefault = dad?.bool('default_value', false) ?? false;
  const denyKey = dad?.str('runtime_key') ?? '';
  dad?.done();
  const denyAtDisable = denyKey ? runtime.bool(denyKey, denyDefault) : { value: denyDefault };
  const c: ExtAuthzConfig = {
    service,
    failureModeAllow: r.bool('failure_mode_allow', false),
    failureModeAllowHeaderAdd: r.bool('failure_mode_allow_header_add', false),
    statusOnError: httpStatus(r.obj('status_on_error'), 403),
    clearRouteCache: r.bool('clear_route_cache', false),
    body,
    mutationRules: mr ? readHeaderMutationRules(mr) : undefined,
    validateMutations: r.bool('validate_mutations', false),
    denyAtDisable,
    allowedHeaders: r.has('allowed_headers') ? readNameList(r.obj('allowed_headers')) : (legacy.list ?? NO_NAMES),
    disallowedHeaders: readNameList(r.obj('disallowed_headers')),
    enabledByMetadata,
    enabled: readRuntimeFractionalPercent(r.obj('filter_enabled'), ALWAYS, runtime),
    metadataNamespaces: r.strs('metadata_context_namespaces'),
    ingestMetadata: r.bool('enable_dynamic_metadata_ingestion', true),
    statPrefix: r.str('stat_prefix'),
    chargeClusterStats: r.bool('charge_cluster_response_stats', true),
    rawHeaders: r.bool('encode_raw_headers', false),
    ...readPeerDetails(r, service.kind),
  };
  return c;
}

export function readExtAuthzPerRoute(r: Reader): ExtAuthzPerRoute {
  const disabled = r.bool('disabled', false);
  const cs = r.obj('check_settings');
  let contextExtensions: Record<string, string> = {};
  let noBody = false;
  let body: BodySettings | undefined;
  if (cs) {
    const ce = cs.get('context_extensions');
    if (ce && typeof ce === 'object') contextExtensions = Object.fromEntries(Object.entries(ce as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
    noBody = cs.bool('disable_request_body_buffering', false);
    const br = cs.obj('with_request_body');
    if (br?.has('pack_as_bytes')) br.issues.warn(br.at('pack_as_bytes'), "not used per route (as in Envoy): the filter's with_request_body.pack_as_bytes applies");
    if (br) body = readBufferSettings(br);
    if (noBody && br) cs.issues.error(cs.path, 'only one of disable_request_body_buffering and with_request_body can be set');
    cs.done();
  }
  if (!disabled && !cs) r.issues.error(r.path, 'ExtAuthzPerRoute needs disabled: true or check_settings');
  r.done();
  return { disabled, contextExtensions, noBody, body };
}
