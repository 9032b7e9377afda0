// VirtualService http routes → Envoy routes (Istio's route translation): matches, weighted
// destinations, rewrite, redirect, direct response, headers, mirrors, retries, timeouts,
// fault and CORS per route, delegation; plus the default route of a service.
import type { Resource } from '../../api/index.ts';
import type { CorsPolicy, Destination, HTTPFaultInjection, HTTPMatchRequest, HTTPRedirect, HTTPRetry, HTTPRoute, Headers, HeaderOperations, StringMatch, VirtualServiceSpec } from '../../api/index.ts';
import { CORS_TYPE, FAULT_TYPE, PREVIOUS_HOSTS_TYPE, PREVIOUS_PRIORITIES_TYPE } from '../../envoy/index.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import { PREFIX_REDIRECT_MARKER, ROUTE_SEMANTICS_ANNOTATION, prefixReplacement } from '../../model/gateway-api/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import { qualifyGateway } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { labelsMatch, resolveShortName } from '../../model/service.ts';
import { envoyDuration } from './duration.ts';
import { outboundClusterName } from './names.ts';

export interface RouteContext {
  push: PushContext;
  proxy: Proxy;
  /** `mesh` for sidecars, `namespace/name` of the Gateway for routers. */
  gateway: string;
  /** The listener / service port the routes serve. */
  port: number;
  /** Proxyless gRPC gets what grpc-js-xds understands (no default retry policy). */
  grpc: boolean;
  /** A Gateway server with tls (istiod's RouteOptions.IsTLS): a redirect without a scheme is https. */
  tls?: boolean;
}

const PREVIOUS_HOSTS: EnvoyJson = { name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': PREVIOUS_HOSTS_TYPE } };

/** Istio's default retry policy for HTTP routes (a retry avoids the hosts already tried). */
export const DEFAULT_RETRY: EnvoyJson = {
  retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
  num_retries: 2,
  retry_host_predicate: [PREVIOUS_HOSTS],
  retriable_status_codes: [503],
  host_selection_retry_max_attempts: 5,
};

/** Envoy routes for the VirtualServices of a host, then nothing else (a VS takes over the host). */
export function virtualServiceRoutes(ctx: RouteContext, vsList: readonly Resource<VirtualServiceSpec>[]): EnvoyJson[] {
  const out: EnvoyJson[] = [];
  for (const vs of vsList) {
    const gateways = vs.spec.gateways?.length ? vs.spec.gateways : ['mesh'];
    for (const r of vs.spec.http ?? []) out.push(...translateHttpRoute(ctx, vs, r, r.match, gateways, `${vs.metadata.namespace}/${vs.metadata.name}`, 0));
  }
  return out;
}

/** The route Istio generates for a service port without a VirtualService. */
export function defaultRoute(ctx: RouteContext, cluster: string, hashPolicy?: EnvoyJson[]): EnvoyJson {
  const action: EnvoyJson = { cluster };
  if (!ctx.grpc) {
    action.timeout = '0s';
    action.retry_policy = DEFAULT_RETRY;
    action.max_stream_duration = { max_stream_duration: '0s', grpc_timeout_header_max: '0s' };
  }
  if (hashPolicy?.length) action.hash_policy = hashPolicy;
  return { name: 'default', match: { prefix: '/' }, route: action };
}

function matchApplies(ctx: RouteContext, m: HTTPMatchRequest | undefined, vsGateways: string[], vsNs: string): boolean {
  const gws = (m?.gateways?.length ? m.gateways : vsGateways).map((g) => qualifyGateway(g, vsNs));
  if (!gws.includes(ctx.gateway)) return false;
  if (m?.port !== undefined && m.port !== ctx.port) return false;
  if (m?.sourceLabels && !labelsMatch(m.sourceLabels, ctx.proxy.labels)) return false;
  if (m?.sourceNamespace && m.sourceNamespace !== ctx.proxy.namespace) return false;
  return true;
}

const MAX_DELEGATION = 1;

function translateHttpRoute(ctx: RouteContext, vs: Resource<VirtualServiceSpec>, r: HTTPRoute, matches: HTTPMatchRequest[] | undefined, gateways: string[], vsKey: string, depth: number): EnvoyJson[] {
  const ns = vs.metadata.namespace;
  const applicable = matches?.length ? matches.filter((m) => matchApplies(ctx, m, gateways, ns)) : matchApplies(ctx, undefined, gateways, ns) ? [undefined] : [];
  if (!applicable.length) return [];
  if (r.delegate?.name && depth < MAX_DELEGATION) {
    const child = ctx.push.delegate(r.delegate.name, r.delegate.namespace ?? ns);
    if (!child) return [];
    const out: EnvoyJson[] = [];
    for (const cr of child.spec.http ?? []) {
      const merged: (HTTPMatchRequest | undefined)[] = [];
      for (const pm of applicable) for (const cm of cr.match?.length ? cr.match : [undefined]) merged.push(mergeMatch(pm, cm));
      // The child's gateway binding is its parent's.
      out.push(...translateHttpRoute(ctx, child, cr, merged.filter((m): m is HTTPMatchRequest => !!m).length ? (merged as HTTPMatchRequest[]) : undefined, gateways, `${child.metadata.namespace}/${child.metadata.name}`, depth + 1));
    }
    return out;
  }
  return applicable.map((m) => buildRoute(ctx, vs, r, m, vsKey));
}

function mergeMatch(parent: HTTPMatchRequest | undefined, child: HTTPMatchRequest | undefined): HTTPMatchRequest | undefined {
  if (!parent) return child;
  if (!child) return parent;
  return {
    ...parent,
    ...child,
    uri: child.uri ?? parent.uri,
    headers: { ...parent.headers, ...child.headers },
    queryParams: { ...parent.queryParams, ...child.queryParams },
    withoutHeaders: { ...parent.withoutHeaders, ...child.withoutHeaders },
    gateways: parent.gateways,
  };
}

function stringMatcher(m: StringMatch, ignoreCase = false): EnvoyJson {
  const out: EnvoyJson = m.exact !== undefined ? { exact: m.exact } : m.prefix !== undefined ? { prefix: m.prefix } : m.regex !== undefined ? { safe_regex: { regex: m.regex } } : {};
  if (ignoreCase && m.regex === undefined) out.ignore_case = true;
  return out;
}

function headerMatcher(name: string, m: StringMatch, invert: boolean): EnvoyJson {
  const hm: EnvoyJson = { name };
  if (m.exact === undefined && m.prefix === undefined && m.regex === undefined) hm.present_match = true;
  else hm.string_match = stringMatcher(m);
  if (invert) hm.invert_match = true;
  return hm;
}

/** Istio's gateway route semantics (VirtualServices generated from the Gateway API). */
function usesGatewaySemantics(vs: Resource<VirtualServiceSpec>): boolean {
  return vs.metadata.annotations?.[ROUTE_SEMANTICS_ANNOTATION] === 'gateway';
}

function routeMatch(m: HTTPMatchRequest | undefined, gatewaySemantics: boolean): EnvoyJson {
  const out: EnvoyJson = {};
  const uri = m?.uri;
  if (uri?.exact !== undefined) out.path = uri.exact;
  else if (uri?.regex !== undefined) out.safe_regex = { regex: uri.regex };
  else {
    // A Gateway API PathPrefix matches whole path elements: /foo matches /foo and /foo/bar, not /foobar.
    const prefix = uri?.prefix ?? '/';
    const separated = gatewaySemantics ? prefix.replace(/\/+$/, '') : '';
    if (separated) out.path_separated_prefix = separated;
    else out.prefix = prefix;
  }
  if (m?.ignoreUriCase) out.case_sensitive = false;
  const headers: EnvoyJson[] = [];
  for (const [name, hm] of Object.entries(m?.headers ?? {})) headers.push(headerMatcher(name.toLowerCase(), hm, false));
  for (const [name, hm] of Object.entries(m?.withoutHeaders ?? {})) headers.push(headerMatcher(name.toLowerCase(), hm, true));
  if (m?.method) headers.push(headerMatcher(':method', m.method, false));
  if (m?.authority) headers.push(headerMatcher(':authority', m.authority, false));
  if (m?.scheme) headers.push(headerMatcher(':scheme', m.scheme, false));
  if (headers.length) out.headers = headers;
  const qp = Object.entries(m?.queryParams ?? {}).map(([name, q]) => (q.exact === undefined && q.prefix === undefined && q.regex === undefined ? { name, present_match: true } : { name, string_match: stringMatcher(q) }));
  if (qp.length) out.query_parameters = qp;
  return out;
}

export function clusterFor(ctx: RouteContext, d: Destination, vsNamespace: string): string {
  const host = resolveShortName(d.host, vsNamespace);
  let port = d.port?.number;
  if (port === undefined) {
    const svc = ctx.push.serviceByHost.get(host);
    port = svc?.ports.length === 1 ? svc.ports[0].port : ctx.port;
  }
  return outboundClusterName(port, d.subset ?? '', host);
}

function headerOps(ops: HeaderOperations | undefined): { add: EnvoyJson[]; remove: string[] } {
  const add: EnvoyJson[] = [];
  for (const [key, value] of Object.entries(ops?.set ?? {})) add.push({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
  for (const [key, value] of Object.entries(ops?.add ?? {})) add.push({ header: { key, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' });
  return { add, remove: ops?.remove ?? [] };
}

function applyHeaders(target: EnvoyJson, h: Headers | undefined): void {
  const req = headerOps(h?.request);
  const res = headerOps(h?.response);
  if (req.add.length) target.request_headers_to_add = req.add;
  if (req.remove.length) target.request_headers_to_remove = req.remove;
  if (res.add.length) target.response_headers_to_add = res.add;
  if (res.remove.length) target.response_headers_to_remove = res.remove;
}

function percent(value: number | undefined): EnvoyJson {
  return { numerator: Math.round((value ?? 100) * 10000), denominator: 'MILLION' };
}

const REDIRECT_CODES: Record<number, string> = { 301: 'MOVED_PERMANENTLY', 302: 'FOUND', 303: 'SEE_OTHER', 307: 'TEMPORARY_REDIRECT', 308: 'PERMANENT_REDIRECT' };
const GRPC_CODES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

/** `grpc`: proxyless clients get only what grpc-js-xds implements (no host predicates or retry priorities). */
function retryPolicy(r: HTTPRetry | undefined, grpc: boolean): EnvoyJson | undefined {
  if (!r) return DEFAULT_RETRY;
  if (!r.attempts) return undefined;
  const codes: number[] = [];
  const on: string[] = [];
  for (const part of (r.retryOn ?? 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes').split(',').map((s) => s.trim()).filter(Boolean)) {
    if (/^\d+$/.test(part)) codes.push(Number(part));
    else on.push(part);
  }
  if (codes.length && !on.includes('retriable-status-codes')) on.push('retriable-status-codes');
  const p: EnvoyJson = { retry_on: on.join(','), num_retries: r.attempts, host_selection_retry_max_attempts: 5 };
  if (codes.length) p.retriable_status_codes = codes;
  else if (on.includes('retriable-status-codes')) p.retriable_status_codes = [503];
  if (r.perTryTimeout) p.per_try_timeout = envoyDuration(r.perTryTimeout);
  if (r.backoff) p.retry_back_off = { base_interval: envoyDuration(r.backoff) };
  if (grpc) return p;
  if (r.retryIgnorePreviousHosts !== false) p.retry_host_predicate = [PREVIOUS_HOSTS];
  // Istio: retries go to other localities (lower priorities) once the first has been tried.
  if (r.retryRemoteLocalities) p.retry_priority = { name: 'envoy.retry_priorities.previous_priorities', typed_config: { '@type': PREVIOUS_PRIORITIES_TYPE, update_frequency: 2 } };
  return p;
}

function faultConfig(f: HTTPFaultInjection): EnvoyJson {
  const out: EnvoyJson = { '@type': FAULT_TYPE };
  if (f.delay?.fixedDelay) out.delay = { fixed_delay: envoyDuration(f.delay.fixedDelay), percentage: percent(f.delay.percentage?.value ?? f.delay.percent) };
  if (f.abort) {
    const abort: EnvoyJson = { percentage: percent(f.abort.percentage?.value) };
    if (f.abort.grpcStatus !== undefined) abort.grpc_status = /^\d+$/.test(f.abort.grpcStatus) ? Number(f.abort.grpcStatus) : Math.max(0, GRPC_CODES.indexOf(f.abort.grpcStatus));
    else abort.http_status = f.abort.httpStatus ?? 503;
    out.abort = abort;
  }
  return out;
}

function corsConfig(c: CorsPolicy): EnvoyJson {
  const out: EnvoyJson = { '@type': CORS_TYPE.replace('.Cors', '.CorsPolicy') };
  if (c.allowOrigins?.length) out.allow_origin_string_match = c.allowOrigins.map((o) => stringMatcher(o));
  if (c.allowMethods?.length) out.allow_methods = c.allowMethods.join(',');
  if (c.allowHeaders?.length) out.allow_headers = c.allowHeaders.join(',');
  if (c.exposeHeaders?.length) out.expose_headers = c.exposeHeaders.join(',');
  if (c.maxAge) out.max_age = String(Math.round(Number(envoyDuration(c.maxAge).slice(0, -1))));
  if (c.allowCredentials !== undefined) out.allow_credentials = c.allowCredentials;
  if (c.unmatchedPreflights === 'IGNORE') out.forward_not_matching_preflights = false;
  return out;
}

/** Route hash policy from the destination's DestinationRule consistentHash. */
export function hashPolicyFor(ctx: RouteContext, host: string): EnvoyJson[] | undefined {
  const svc = ctx.push.serviceByHost.get(host);
  if (!svc) return undefined;
  const ch = ctx.push.destinationRuleFor(ctx.proxy, svc)?.spec.trafficPolicy?.loadBalancer?.consistentHash;
  if (!ch) return undefined;
  if (ch.httpHeaderName) return [{ header: { header_name: ch.httpHeaderName } }];
  if (ch.httpCookie) {
    const cookie: EnvoyJson = { name: ch.httpCookie.name };
    if (ch.httpCookie.path) cookie.path = ch.httpCookie.path;
    if (ch.httpCookie.ttl) cookie.ttl = envoyDuration(ch.httpCookie.ttl);
    // Envoy writes them into the cookie it generates, after Max-Age and Path: `; name=value`, or `; name` without a value.
    if (ch.httpCookie.attributes?.length) cookie.attributes = ch.httpCookie.attributes.map((a) => (a.value === undefined ? { name: a.name } : { name: a.name, value: a.value }));
    return [{ cookie }];
  }
  if (ch.useSourceIp) return [{ connection_properties: { source_ip: true } }];
  if (ch.httpQueryParameterName) return [{ query_parameter: { name: ch.httpQueryParameterName } }];
  return undefined;
}

function buildRoute(ctx: RouteContext, vs: Resource<VirtualServiceSpec>, r: HTTPRoute, m: HTTPMatchRequest | undefined, vsKey: string): EnvoyJson {
  const ns = vs.metadata.namespace;
  const gatewaySemantics = usesGatewaySemantics(vs);
  const route: EnvoyJson = { match: routeMatch(m, gatewaySemantics) };
  if (r.name || m?.name) route.name = [r.name, m?.name].filter(Boolean).join('.');
  const [vsNs, vsName] = vsKey.split('/');
  route.metadata = { filter_metadata: { istio: { config: `/apis/networking.istio.io/v1/namespaces/${vsNs}/virtual-service/${vsName}` } } };
  // istiod's translateRoute: the match's statPrefix is the route's (per-route stats in the proxy).
  if (m?.statPrefix) route.stat_prefix = m.statPrefix;
  if (r.directResponse) {
    route.direct_response = { status: r.directResponse.status };
    const body = r.directResponse.body;
    if (body?.string !== undefined) (route.direct_response as EnvoyJson).body = { inline_string: body.string };
    else if (body?.bytes !== undefined) (route.direct_response as EnvoyJson).body = { inline_bytes: body.bytes };
  } else if (r.redirect) {
    const rd: EnvoyJson = {};
    if (r.redirect.uri?.startsWith(PREFIX_REDIRECT_MARKER) && gatewaySemantics) {
      const x = prefixReplacement(m?.uri?.prefix ?? '/', r.redirect.uri.slice(PREFIX_REDIRECT_MARKER.length));
      if ('prefix' in x) rd.prefix_rewrite = x.prefix;
      else rd.regex_rewrite = { pattern: { regex: x.regex }, substitution: x.substitution };
    } else if (r.redirect.uri) rd.path_redirect = r.redirect.uri;
    if (r.redirect.authority) rd.host_redirect = r.redirect.authority;
    const port = redirectPort(ctx, r.redirect);
    if (port) rd.port_redirect = port;
    if (r.redirect.scheme) rd.scheme_redirect = r.redirect.scheme;
    if (r.redirect.redirectCode && r.redirect.redirectCode !== 301) rd.response_code = REDIRECT_CODES[r.redirect.redirectCode] ?? 'MOVED_PERMANENTLY';
    route.redirect = rd;
  } else {
    const action: EnvoyJson = {};
    const dests = r.route ?? [];
    if (dests.length === 1) action.cluster = clusterFor(ctx, dests[0].destination, ns);
    else {
      action.weighted_clusters = {
        clusters: dests
          .filter((d) => (d.weight ?? 0) > 0)
          .map((d) => {
            const wc: EnvoyJson = { name: clusterFor(ctx, d.destination, ns), weight: d.weight ?? 0 };
            applyHeaders(wc, d.headers);
            return wc;
          }),
      };
    }
    if (dests.length === 1 && dests[0].headers) applyHeaders(route, dests[0].headers);
    if (r.rewrite?.uri !== undefined) {
      if (m?.uri?.exact !== undefined) action.regex_rewrite = { pattern: { regex: `^${escapeRegex(m.uri.exact)}$` }, substitution: r.rewrite.uri };
      else action.prefix_rewrite = r.rewrite.uri;
    }
    if (r.rewrite?.uriRegexRewrite) action.regex_rewrite = { pattern: { regex: r.rewrite.uriRegexRewrite.match ?? '' }, substitution: r.rewrite.uriRegexRewrite.rewrite ?? '' };
    if (r.rewrite?.authority) action.host_rewrite_literal = r.rewrite.authority;
    if (!ctx.grpc || r.timeout) action.timeout = r.timeout ? envoyDuration(r.timeout) : '0s';
    const retry = ctx.grpc && !r.retries ? undefined : retryPolicy(r.retries, ctx.grpc);
    if (retry) action.retry_policy = retry;
    const mirrors: EnvoyJson[] = [];
    if (r.mirror) mirrors.push({ cluster: clusterFor(ctx, r.mirror, ns), runtime_fraction: { default_value: percent(r.mirrorPercentage?.value ?? r.mirrorPercent ?? r.mirror_percent) } });
    for (const mp of r.mirrors ?? []) mirrors.push({ cluster: clusterFor(ctx, mp.destination, ns), runtime_fraction: { default_value: percent(mp.percentage?.value) } });
    if (mirrors.length) action.request_mirror_policies = mirrors;
    if (dests.length === 1) {
      const hp = hashPolicyFor(ctx, resolveShortName(dests[0].destination.host, ns));
      if (hp) action.hash_policy = hp;
    }
    if (!ctx.grpc) action.max_stream_duration = { max_stream_duration: '0s', grpc_timeout_header_max: '0s' };
    // The Gateway API answers 500 for a backend that does not resolve (Envoy's default is 503).
    if (gatewaySemantics) action.cluster_not_found_response_code = 'INTERNAL_SERVER_ERROR';
    route.route = action;
  }
  applyHeaders(route, r.headers);
  const perFilter: EnvoyJson = {};
  if (r.fault && (r.fault.delay || r.fault.abort)) perFilter['envoy.filters.http.fault'] = faultConfig(r.fault);
  if (r.corsPolicy) perFilter['envoy.filters.http.cors'] = corsConfig(r.corsPolicy);
  if (Object.keys(perFilter).length) route.typed_per_filter_config = perFilter;
  route.decorator = { operation: routeOperation(route, vsName, ctx.port) };
  return route;
}

/**
 * The port_redirect of istiod's ApplyRedirect (pilot/pkg/networking/core/route/route.go): port, or
 * derivePort FROM_REQUEST_PORT as the port the routes serve (Envoy cannot take the request's; the
 * routes are built per port), FROM_PROTOCOL_DEFAULT none; 80 for http and 443 for https left out.
 */
function redirectPort(ctx: RouteContext, rd: HTTPRedirect): number {
  if (rd.port === undefined && rd.derivePort === undefined) return 0;
  const port = rd.port ?? (rd.derivePort === 'FROM_REQUEST_PORT' ? ctx.port : 0);
  const scheme = rd.scheme || (ctx.tls ? 'https' : 'http');
  return (port === 80 && scheme === 'http') || (port === 443 && scheme === 'https') ? 0 : port;
}

/**
 * Istio's route operation, the name of the spans it traces: `<host>:<port><path>` when the route
 * has one destination cluster, else `<VirtualService name>:<port><path>`.
 */
function routeOperation(route: EnvoyJson, vsName: string, port: number): string {
  const m = route.match as EnvoyJson;
  const path = m.prefix !== undefined ? `${String(m.prefix)}*` : m.path !== undefined ? String(m.path) : m.safe_regex ? String((m.safe_regex as EnvoyJson).regex) : '/*';
  const cluster = (route.route as EnvoyJson | undefined)?.cluster;
  const parts = typeof cluster === 'string' ? cluster.split('|') : [];
  return `${parts.length === 4 ? parts[3] : vsName}:${port}${path}`;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
