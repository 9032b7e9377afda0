// Envoy's RouteConfiguration compiled once per RDS update (or inline route_config) into an
// immutable table: virtual hosts indexed by domain (exact map, then longest suffix/prefix
// wildcard, then "*"), routes in order with precompiled matchers, header ops and actions.
import type { Issues} from '../config/reader.ts';
import { Reader } from '../config/reader.ts';
import { readDataSource } from '../config/data-source.ts';
import type { RequestHead } from '../filters/filter.ts';
import { compilePerFilterConfigs } from '../filters/registry.ts';
import { readHeaderMatcher, readQueryMatcher, type HeaderMatcher, type QueryMatcher } from './header-matcher.ts';
import type { HeaderOps} from './header-ops.ts';
import { readHeaderOps } from './header-ops.ts';
import { readRetryPolicy, type RetryPolicy } from './retry-policy.ts';
import { compileHashPolicy, type HashPolicyFn } from '../upstream/lb/index.ts';
import { compileRegex, type Regex } from './string-matcher.ts';
import { detachedString } from '../../core/detached-string.ts';
import { readRateLimits, type RateLimitPolicy } from './rate-limit-actions.ts';
import { ALWAYS, readRuntimeFractionalPercent, sample, type FractionalPercent } from '../config/fractional-percent.ts';
import { NO_RUNTIME, type EnvoyRuntime, type RuntimeUint } from '../envoy-runtime/index.ts';
import type { Stats } from '../stats/stats.ts';
import { RouteStats } from './route-stats.ts';

export const PathKind = { Prefix: 0, Exact: 1, Regex: 2, SeparatedPrefix: 3, Connect: 4 } as const;
export const ActionKind = { Cluster: 0, Weighted: 1, ClusterHeader: 2, Redirect: 3, Direct: 4, NonForwarding: 5 } as const;

export interface WeightedCluster {
  readonly name: string;
  readonly weight: number;
  readonly requestOps: HeaderOps;
  readonly responseOps: HeaderOps;
  readonly perFilter?: ReadonlyMap<string, unknown>;
  readonly hostRewrite?: string;
}

export interface Mirror {
  readonly cluster: string;
  /** Share of requests mirrored, 0..1 (runtime_fraction: its runtime key's value, else default_value; 1 when absent). */
  readonly fraction: number;
  readonly shadowSuffix: boolean;
}

function readMirror(m: Reader, runtime: EnvoyRuntime): Mirror {
  const cluster = m.str('cluster');
  if (!cluster) m.issues.error(m.at('cluster'), 'a mirror policy needs a cluster');
  const share = readRuntimeFractionalPercent(m.obj('runtime_fraction'), ALWAYS, runtime);
  const shadowSuffix = !m.bool('disable_shadow_host_suffix_append', false);
  if (m.has('trace_sampled')) m.issues.warn(m.at('trace_sampled'), 'trace_sampled is not supported on mirrors and is ignored (a mirrored request is traced as the original)');
  m.done();
  return {
    cluster,
    get fraction() {
      return share.numerator / share.denominator;
    },
    shadowSuffix,
  };
}

export interface Redirect {
  readonly scheme?: string;
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  readonly prefixRewrite?: string;
  readonly regexRewrite?: { re: Regex; sub: string };
  readonly status: number;
  readonly stripQuery: boolean;
}

export interface Route {
  readonly name: string;
  readonly vhost: VirtualHost;
  readonly pathKind: number;
  readonly pathValue: string;
  readonly pathRegex?: Regex;
  readonly caseSensitive: boolean;
  readonly headers: readonly HeaderMatcher[];
  readonly query: readonly QueryMatcher[];
  readonly grpcOnly: boolean;
  /** match.runtime_fraction: the route matches this share of the requests it otherwise matches. */
  readonly runtimeFraction?: FractionalPercent;

  readonly action: number;
  readonly cluster: string;
  readonly clusterHeader: string;
  readonly weighted: readonly WeightedCluster[];
  readonly totalWeight: number;
  /** weighted_clusters.runtime_key_prefix: each cluster's weight from <prefix>.<name>, in the order of `weighted`. */
  readonly runtimeWeights?: readonly RuntimeUint[];
  readonly clusterNotFoundCode: number;
  readonly prefixRewrite?: string;
  readonly regexRewrite?: { re: Regex; sub: string };
  readonly hostRewrite?: string;
  readonly autoHostRewrite: boolean;
  readonly hostRewriteHeader?: string;
  /** 0 = no timeout. */
  readonly timeoutMs: number;
  /** Route idle_timeout: overrides the HCM stream_idle_timeout (0 disables it); undefined when unset. */
  readonly idleTimeoutMs?: number;
  /** max_stream_duration.max_stream_duration when set: replaces the HCM's downstream stream duration (0: none). */
  readonly maxStreamDurationMs?: number;
  /** per_request_buffer_limit_bytes of the route, else of its virtual host: the request's buffer limit. */
  readonly bufferLimitBytes?: number;
  /** grpc-timeout honoured, capped at this (0 = uncapped); undefined = header ignored. */
  readonly grpcTimeoutMaxMs?: number;
  readonly grpcTimeoutOffsetMs: number;
  readonly retry?: RetryPolicy;
  /** RouteAction priority HIGH: the request uses the cluster's high-priority circuit breakers. */
  readonly highPriority: boolean;
  /** decorator: the operation (span name) of requests this route serves. */
  readonly decorator?: RouteDecorator;
  /** request_mirror_policies: shadow copies, fire and forget. */
  readonly mirrors: readonly Mirror[];
  /** Compiled hash_policy (route, else virtual host); undefined when none. */
  readonly hashPolicy?: HashPolicyFn;
  readonly upgrades: ReadonlyMap<string, boolean>;
  /**
   * The CONNECT upgrade's connect_config is set: the proxy terminates a CONNECT and sends its bytes
   * over a TCP connection. Without it Envoy forwards the CONNECT upstream, which rig proxy does to
   * an HTTP/2 cluster (a stream of its pool) and not yet to an HTTP/1.1 one (terminated there too,
   * with a warning: tunnel.ts pooledTunnel).
   */
  readonly connectConfig: boolean;
  readonly redirect?: Redirect;
  readonly directStatus: number;
  readonly directBody?: string;
  /** Route, then virtual host, then route config header ops, combined. */
  readonly requestOps: HeaderOps;
  readonly responseOps: HeaderOps;
  /** typed_per_filter_config of the route over that of its virtual host. */
  readonly perFilter?: ReadonlyMap<string, unknown>;
  /** RouteAction rate_limits, and the virtual host's (for the rate limit filters). */
  readonly rateLimits?: readonly RateLimitPolicy[];
  readonly vhostRateLimits?: readonly RateLimitPolicy[];
  /** stat_prefix: the route's own stats (vhost.<virtual host>.route.<stat_prefix>.*); undefined without one. */
  readonly stats?: RouteStats;
  readonly raw: Record<string, unknown>;
}

export interface RouteDecorator {
  readonly operation: string;
  /** Sent upstream as x-envoy-decorator-operation so the server side names its span alike (default true). */
  readonly propagate: boolean;
}

export interface VirtualHost {
  readonly name: string;
  readonly domains: readonly string[];
  readonly routes: readonly Route[];
  readonly requireTls: number;
  /** x-envoy-attempt-count on upstream requests / downstream responses. */
  readonly attemptCountToUpstream: boolean;
  readonly attemptCountToDownstream: boolean;
}

export interface RouteTable {
  readonly name: string;
  readonly virtualHosts: readonly VirtualHost[];
  /** internal_only_headers: removed from external requests (lower case). */
  readonly internalOnlyHeaders: readonly string[];
  readonly raw: Record<string, unknown>;
  findVirtualHost(authority: string): VirtualHost | undefined;
}

const REDIRECT_CODES: Record<string, number> = { MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308 };

function readRewrite(r: Reader | undefined): { re: Regex; sub: string } | undefined {
  if (!r) return undefined;
  const p = r.obj('pattern');
  const re = p ? compileRegex(p.str('regex'), p.at('regex'), r.issues) : undefined;
  p?.accept('google_re2'); // deprecated, no effect (string-matcher.ts)
  p?.done();
  const sub = r.str('substitution');
  r.done();
  if (!re) {
    if (!p) r.issues.error(r.at('pattern'), 'missing pattern');
    return undefined;
  }
  return { re, sub };
}

function readMatch(m: Reader, issues: Issues, runtime: EnvoyRuntime): Pick<Route, 'pathKind' | 'pathValue' | 'pathRegex' | 'caseSensitive' | 'headers' | 'query' | 'grpcOnly' | 'runtimeFraction'> {
  const caseSensitive = m.bool('case_sensitive', true);
  let pathKind: number = PathKind.Prefix;
  let pathValue = '';
  let pathRegex: Regex | undefined;
  const kinds = ['prefix', 'path', 'safe_regex', 'path_separated_prefix', 'connect_matcher'].filter((k) => m.has(k));
  if (kinds.length !== 1) issues.error(m.path, `a route match needs exactly one of prefix, path, safe_regex, path_separated_prefix, connect_matcher (got ${kinds.join(', ') || 'none'})`);
  if (m.has('prefix')) pathValue = m.str('prefix');
  else if (m.has('path')) {
    pathKind = PathKind.Exact;
    pathValue = m.str('path');
  } else if (m.has('safe_regex')) {
    pathKind = PathKind.Regex;
    const sr = m.obj('safe_regex')!;
    pathRegex = compileRegex(sr.str('regex'), sr.at('regex'), issues, !caseSensitive);
    sr.accept('google_re2'); // deprecated, no effect (string-matcher.ts)
    sr.done();
  } else if (m.has('path_separated_prefix')) {
    pathKind = PathKind.SeparatedPrefix;
    pathValue = m.str('path_separated_prefix');
    if (!/^\/[^?#]*[^?#/]$/.test(pathValue)) issues.error(m.at('path_separated_prefix'), 'must start with "/", not end with "/" (so "/" alone is invalid) and contain no "?" or "#"');
  } else if (m.has('connect_matcher')) {
    pathKind = PathKind.Connect;
    m.obj('connect_matcher')?.done();
  }
  if (!caseSensitive && pathKind !== PathKind.Regex) pathValue = pathValue.toLowerCase();
  const headers = m.objs('headers').map(readHeaderMatcher);
  const query = m.objs('query_parameters').map(readQueryMatcher);
  const g = m.obj('grpc');
  g?.done();
  const rf = m.obj('runtime_fraction');
  const runtimeFraction = rf ? readRuntimeFractionalPercent(rf, ALWAYS, runtime) : undefined;
  m.done();
  return { pathKind, pathValue, pathRegex, caseSensitive, headers, query, grpcOnly: g !== undefined, runtimeFraction };
}

function readDirectBody(r: Reader | undefined, maxBytes: number): string | undefined {
  const body = readDataSource(r);
  const size = body === undefined ? 0 : Buffer.byteLength(body);
  if (r && size > maxBytes) r.issues.error(r.path, `response body size is ${size} bytes; maximum is ${maxBytes}`);
  return body;
}

function readHashPolicies(r: Reader): HashPolicyFn | undefined {
  try {
    return compileHashPolicy(r.get('hash_policy'), (w) => r.issues.warn(r.path, w), r.at('hash_policy'));
  } catch (e) {
    r.issues.error(r.at('hash_policy'), (e as Error).message);
    return undefined;
  }
}

function mergeMaps(outer: ReadonlyMap<string, unknown> | undefined, inner: ReadonlyMap<string, unknown> | undefined): ReadonlyMap<string, unknown> | undefined {
  if (!outer) return inner;
  if (!inner) return outer;
  return new Map([...outer, ...inner]);
}

function bufferLimit(r: Reader): number {
  const n = r.num('per_request_buffer_limit_bytes', 0);
  if (Number.isInteger(n) && n >= 0) return n;
  r.issues.error(r.at('per_request_buffer_limit_bytes'), 'must be a non-negative integer (bytes)');
  return 0;
}

interface Shared {
  vhostRequestOps: HeaderOps;
  vhostResponseOps: HeaderOps;
  vhostRetry?: RetryPolicy;
  vhostPerFilter?: ReadonlyMap<string, unknown>;
  vhostHash?: HashPolicyFn;
  vhostRateLimits?: readonly RateLimitPolicy[];
  vhostBufferLimit?: number;
  /** max_direct_response_body_size_bytes (Envoy's default 4096). */
  maxDirectBodyBytes: number;
  runtime: EnvoyRuntime;
  /** Where a route's stat_prefix stats go (none given: the prefix is read and keeps no stats). */
  stats?: Stats;
}

function readRoute(r: Reader, vhost: VirtualHost, shared: Shared, issues: Issues): Route {
  // Unnamed is unnamed, as in Envoy: %ROUTE_NAME% prints -, xds.route_name is empty.
  const name = r.str('name', '');
  const match = r.obj('match');
  if (!match) issues.error(r.at('match'), 'a route needs a match');
  const m = readMatch(match ?? new Reader({ prefix: '/' }, r.at('match'), issues), issues, shared.runtime);
  const routeReqOps = readHeaderOps(r, 'request');
  const routeResOps = readHeaderOps(r, 'response');
  const perFilter = mergeMaps(shared.vhostPerFilter, compilePerFilterConfigs(r, 'typed_per_filter_config', shared.runtime));
  // Route metadata is for filters and logs that look it up; it changes nothing in routing.
  r.accept('metadata');
  const dec = r.obj('decorator');
  let decorator: RouteDecorator | undefined;
  if (dec) {
    decorator = Object.freeze({ operation: dec.str('operation'), propagate: dec.bool('propagate', true) });
    if (!decorator.operation) issues.error(dec.at('operation'), 'a decorator needs an operation');
    dec.done();
  }
  const base = {
    name,
    vhost,
    ...m,
    action: ActionKind.Cluster as number,
    cluster: '',
    clusterHeader: '',
    weighted: [] as WeightedCluster[],
    totalWeight: 0,
    clusterNotFoundCode: 503,
    autoHostRewrite: false,
    timeoutMs: 15000,
    idleTimeoutMs: undefined as number | undefined,
    maxStreamDurationMs: undefined as number | undefined,
    bufferLimitBytes: r.has('per_request_buffer_limit_bytes') ? bufferLimit(r) : shared.vhostBufferLimit,
    grpcTimeoutOffsetMs: 0,
    grpcTimeoutMaxMs: undefined as number | undefined,
    retry: shared.vhostRetry,
    highPriority: false,
    decorator,
    mirrors: [] as Mirror[],
    hashPolicy: shared.vhostHash,
    upgrades: new Map<string, boolean>() as ReadonlyMap<string, boolean>,
    connectConfig: false,
    directStatus: 0,
    requestOps: routeReqOps.then(shared.vhostRequestOps),
    responseOps: routeResOps.then(shared.vhostResponseOps),
    perFilter,
    vhostRateLimits: shared.vhostRateLimits,
    raw: r.raw,
  } as {
    -readonly [K in keyof Route]: Route[K];
  };
  const statPrefix = r.str('stat_prefix');
  if (statPrefix && shared.stats) base.stats = new RouteStats(shared.stats, vhost.name, statPrefix);
  const actions = ['route', 'redirect', 'direct_response', 'non_forwarding_action'].filter((k) => r.has(k));
  if (actions.length !== 1) issues.error(r.path, `a route needs exactly one of route, redirect, direct_response (got ${actions.join(', ') || 'none'})`);
  const ra = r.obj('route');
  if (ra) {
    if (ra.has('cluster')) base.cluster = ra.str('cluster');
    else if (ra.has('cluster_header')) {
      base.action = ActionKind.ClusterHeader;
      base.clusterHeader = ra.str('cluster_header').toLowerCase();
    } else if (ra.has('weighted_clusters')) {
      base.action = ActionKind.Weighted;
      const wr = ra.obj('weighted_clusters')!;
      const list: WeightedCluster[] = [];
      for (const c of wr.objs('clusters')) {
        const w = {
          name: c.str('name'),
          weight: c.num('weight', 0),
          requestOps: readHeaderOps(c, 'request'),
          responseOps: readHeaderOps(c, 'response'),
          perFilter: compilePerFilterConfigs(c, 'typed_per_filter_config', shared.runtime),
          hostRewrite: c.str('host_rewrite_literal') || undefined,
        };
        if (!w.name) issues.error(c.at('name'), 'a weighted cluster needs a name');
        c.done();
        list.push(w);
      }
      const sum = list.reduce((a, c) => a + c.weight, 0);
      const total = wr.num('total_weight', sum);
      if (total !== sum) issues.error(wr.at('total_weight'), `weights sum to ${sum}, not total_weight ${total}`);
      if (sum <= 0) issues.error(wr.at('clusters'), 'weighted clusters need a positive total weight');
      const prefix = wr.str('runtime_key_prefix');
      wr.done();
      base.weighted = list;
      base.totalWeight = sum;
      if (prefix) base.runtimeWeights = list.map((w) => shared.runtime.uint(`${prefix}.${w.name}`, w.weight));
    } else issues.error(ra.path, 'a route action needs one of cluster, cluster_header, weighted_clusters');
    const nf = ra.str('cluster_not_found_response_code', 'SERVICE_UNAVAILABLE');
    base.clusterNotFoundCode = nf === 'NOT_FOUND' ? 404 : nf === 'INTERNAL_SERVER_ERROR' ? 500 : 503;
    if (ra.has('prefix_rewrite')) base.prefixRewrite = ra.str('prefix_rewrite');
    base.regexRewrite = readRewrite(ra.obj('regex_rewrite'));
    if (base.prefixRewrite !== undefined && base.regexRewrite) issues.error(ra.path, 'prefix_rewrite and regex_rewrite are alternatives; set only one');
    if (ra.has('host_rewrite_literal')) base.hostRewrite = ra.str('host_rewrite_literal');
    base.autoHostRewrite = ra.bool('auto_host_rewrite', false);
    if (ra.has('host_rewrite_header')) base.hostRewriteHeader = ra.str('host_rewrite_header').toLowerCase();
    base.timeoutMs = ra.durationMs('timeout', 15000);
    if (ra.has('idle_timeout')) base.idleTimeoutMs = ra.durationMs('idle_timeout', 0);
    const msd = ra.obj('max_stream_duration');
    if (msd) {
      if (msd.has('grpc_timeout_header_max')) base.grpcTimeoutMaxMs = msd.durationMs('grpc_timeout_header_max', 0);
      base.grpcTimeoutOffsetMs = msd.durationMs('grpc_timeout_header_offset', 0);
      // max_stream_duration (0: no limit; Istio always emits it) replaces the HCM's stream duration
      // limit for this route (http-stream.ts). It also caps the route timeout: Envoy ignores
      // route.timeout once max_stream_duration is set, but our generator sets both on routes with a
      // VirtualService timeout, which must keep applying.
      if (msd.has('max_stream_duration')) {
        const maxMs = msd.durationMs('max_stream_duration', 0);
        base.maxStreamDurationMs = maxMs;
        if (maxMs > 0) base.timeoutMs = Math.min(base.timeoutMs || Infinity, maxMs);
      }
      msd.done();
    }
    if (ra.has('max_grpc_timeout')) base.grpcTimeoutMaxMs = ra.durationMs('max_grpc_timeout', 0);
    if (ra.has('grpc_timeout_offset')) base.grpcTimeoutOffsetMs = ra.durationMs('grpc_timeout_offset', 0);
    base.mirrors = ra.objs('request_mirror_policies').map((mp) => readMirror(mp, shared.runtime));
    base.highPriority = ra.str('priority', 'DEFAULT') === 'HIGH';
    const rp = ra.obj('retry_policy');
    if (rp) base.retry = readRetryPolicy(rp);
    if (ra.has('hash_policy')) base.hashPolicy = readHashPolicies(ra);
    base.rateLimits = readRateLimits(ra, shared.runtime);
    // include_vh_rate_limits (deprecated in Envoy, still honoured): the rate limit filters then use
    // the virtual host's rate_limits too, whatever their vh_rate_limits setting says.
    if (ra.bool('include_vh_rate_limits', false) && shared.vhostRateLimits?.length) base.rateLimits = [...(base.rateLimits ?? []), ...shared.vhostRateLimits];
    const upgrades = new Map<string, boolean>();
    base.upgrades = upgrades;
    for (const u of ra.objs('upgrade_configs')) {
      const type = u.str('upgrade_type').toLowerCase();
      upgrades.set(type, u.bool('enabled', true));
      const cc = u.obj('connect_config');
      if (cc) {
        if (type !== 'connect') cc.issues.error(cc.path, `Non-CONNECT upgrade type ${type} has ConnectConfig (Envoy refuses it: connect_config belongs to the CONNECT upgrade_config)`);
        base.connectConfig = true;
        if (cc.bool('allow_post', false)) cc.issues.warn(cc.at('allow_post'), 'POST tunnelling is not supported; only CONNECT is tunnelled');
        cc.done();
      }
      u.done();
    }
    ra.done();
  }
  const rd = r.obj('redirect');
  if (rd) {
    base.action = ActionKind.Redirect;
    const https = rd.bool('https_redirect', false);
    base.redirect = {
      scheme: https ? 'https' : rd.str('scheme_redirect') || undefined,
      host: rd.str('host_redirect') || undefined,
      port: rd.has('port_redirect') ? rd.num('port_redirect', 0) : undefined,
      path: rd.str('path_redirect') || undefined,
      prefixRewrite: rd.has('prefix_rewrite') ? rd.str('prefix_rewrite') : undefined,
      regexRewrite: readRewrite(rd.obj('regex_rewrite')),
      status: REDIRECT_CODES[rd.str('response_code', 'MOVED_PERMANENTLY')] ?? 301,
      stripQuery: rd.bool('strip_query', false),
    };
    rd.done();
  }
  const dr = r.obj('direct_response');
  if (dr) {
    base.action = ActionKind.Direct;
    base.directStatus = dr.num('status', 0);
    if (base.directStatus < 200 || base.directStatus > 599) issues.error(dr.at('status'), 'status must be between 200 and 599');
    base.directBody = readDirectBody(dr.obj('body'), shared.maxDirectBodyBytes);
    dr.done();
  }
  if (r.has('non_forwarding_action')) {
    base.action = ActionKind.NonForwarding;
    r.obj('non_forwarding_action')?.done();
  }
  r.done();
  return base;
}

function validDomain(d: string): boolean {
  if (d === '*') return true;
  const stars = d.split('*').length - 1;
  return stars === 0 || (stars === 1 && (d.startsWith('*') || d.endsWith('*')));
}

/** Compiles a RouteConfiguration; errors and warnings go to `issues`. */
export function compileRouteConfig(raw: Record<string, unknown>, path: string, issues: Issues, runtime: EnvoyRuntime = NO_RUNTIME, stats?: Stats): RouteTable {
  const r = new Reader(raw, path, issues);
  const name = r.str('name');
  const cfgReqOps = readHeaderOps(r, 'request');
  const cfgResOps = readHeaderOps(r, 'response');
  // Envoy rejects a route table naming an unknown cluster only when asked (true; also its default
  // for an inline route_config); rig answers such a route 503 NC at request time instead.
  if (r.bool('validate_clusters', false)) issues.warn(r.at('validate_clusters'), 'validate_clusters is not supported: a route to an unknown cluster is answered with cluster_not_found_response_code (503) instead of rejecting the route configuration');
  // Envoy's default; Istio's control plane (and ours) sends 1 MiB.
  const maxDirectBodyBytes = r.num('max_direct_response_body_size_bytes', 4096);
  const internalOnlyHeaders = r.strs('internal_only_headers').map((h) => h.toLowerCase());
  const ignorePort = r.bool('ignore_port_in_host_matching', false);
  const exact = new Map<string, VirtualHost>();
  const suffixes: [string, VirtualHost][] = [];
  const prefixes: [string, VirtualHost][] = [];
  let star: VirtualHost | undefined;
  const vhosts: VirtualHost[] = [];
  const seen = new Map<string, string>();
  for (const v of r.objs('virtual_hosts')) {
    const vname = v.str('name');
    if (!vname) issues.error(v.at('name'), 'a virtual host needs a name');
    const domains = v.strs('domains').map((d) => d.toLowerCase());
    if (!domains.length) issues.error(v.at('domains'), 'a virtual host needs at least one domain');
    const rtls = v.str('require_tls', 'NONE');
    const vhost: { -readonly [K in keyof VirtualHost]: VirtualHost[K] } = { name: vname, domains, routes: [], requireTls: rtls === 'ALL' ? 2 : rtls === 'EXTERNAL_ONLY' ? 1 : 0, attemptCountToUpstream: false, attemptCountToDownstream: false };
    const vr = v.obj('retry_policy');
    const shared: Shared = {
      vhostRequestOps: readHeaderOps(v, 'request').then(cfgReqOps),
      vhostResponseOps: readHeaderOps(v, 'response').then(cfgResOps),
      vhostRetry: vr ? readRetryPolicy(vr) : undefined,
      vhostPerFilter: compilePerFilterConfigs(v, 'typed_per_filter_config', runtime),
      vhostHash: v.has('hash_policy') ? readHashPolicies(v) : undefined,
      vhostRateLimits: readRateLimits(v, runtime),
      vhostBufferLimit: v.has('per_request_buffer_limit_bytes') ? bufferLimit(v) : undefined,
      maxDirectBodyBytes,
      runtime,
      stats,
    };
    vhost.attemptCountToUpstream = v.bool('include_request_attempt_count', false);
    vhost.attemptCountToDownstream = v.bool('include_attempt_count_in_response', false);
    v.accept('metadata'); // as route metadata: no routing effect
    vhost.routes = v.objs('routes').map((rr) => readRoute(rr, vhost, shared, issues));
    v.done();
    for (const d of domains) {
      if (!validDomain(d)) {
        issues.error(v.at('domains'), `invalid domain "${d}": "*" may only appear alone, first or last`);
        continue;
      }
      const other = seen.get(d);
      if (other !== undefined) issues.error(v.at('domains'), `domain "${d}" is also in virtual host "${other}"; domains must be unique across virtual hosts`);
      seen.set(d, vname);
      if (d === '*') star = vhost;
      else if (d.startsWith('*')) suffixes.push([d.slice(1), vhost]);
      else if (d.endsWith('*')) prefixes.push([d.slice(0, -1), vhost]);
      else exact.set(d, vhost);
    }
    vhosts.push(vhost);
  }
  r.done();
  suffixes.sort((a, b) => b[0].length - a[0].length);
  prefixes.sort((a, b) => b[0].length - a[0].length);
  const lookup = (host: string): VirtualHost | undefined => {
    const e = exact.get(host);
    if (e) return e;
    for (const [s, vh] of suffixes) if (host.length > s.length && host.endsWith(s)) return vh;
    for (const [p, vh] of prefixes) if (host.length > p.length && host.startsWith(p)) return vh;
    return star;
  };
  const cache = new Map<string, VirtualHost | undefined>();
  // The last authority looked up: a request's is a fresh string, which a Map hashes anew each time
  // (~390 instructions a request, callgrind); comparing it with the last one costs a fraction.
  let lastAuthority: string | undefined;
  let lastVh: VirtualHost | undefined;
  return {
    name,
    virtualHosts: vhosts,
    internalOnlyHeaders,
    raw,
    findVirtualHost(authority) {
      if (authority === lastAuthority) return lastVh;
      let vh = cache.get(authority);
      if (vh !== undefined || cache.has(authority)) {
        lastAuthority = authority;
        return (lastVh = vh);
      }
      let host = authority.toLowerCase();
      if (ignorePort) {
        const i = host.lastIndexOf(':');
        if (i > 0 && !host.endsWith(']')) host = host.slice(0, i);
      }
      vh = lookup(host);
      // The key is the client's Host: a copy, not a view of the request's head (a 60 KB one at most).
      if (cache.size < 1024) cache.set(detachedString(authority), vh);
      lastAuthority = authority;
      return (lastVh = vh);
    },
  };
}

/** The first route of the virtual host matching the request, or undefined (→ 404 NR). */
export function matchRoute(vh: VirtualHost, head: RequestHead, isGrpc: boolean): Route | undefined {
  const full = head.path;
  const qi = full.indexOf('?');
  const path = qi >= 0 ? full.slice(0, qi) : full;
  let lower: string | undefined;
  let query: URLSearchParams | undefined;
  const isConnect = head.method === 'CONNECT';
  for (const route of vh.routes) {
    if (route.pathKind === PathKind.Connect) {
      if (!isConnect) continue;
    } else {
      if (isConnect) continue;
      const p = route.caseSensitive || route.pathKind === PathKind.Regex ? path : (lower ??= path.toLowerCase());
      switch (route.pathKind) {
        case PathKind.Prefix:
          if (!p.startsWith(route.pathValue)) continue;
          break;
        case PathKind.Exact:
          if (p !== route.pathValue) continue;
          break;
        case PathKind.Regex:
          if (!route.pathRegex?.full(p)) continue;
          break;
        case PathKind.SeparatedPrefix:
          if (!p.startsWith(route.pathValue) || (p.length > route.pathValue.length && p.charCodeAt(route.pathValue.length) !== 47)) continue;
          break;
      }
    }
    if (route.grpcOnly && !isGrpc) continue;
    if (route.headers.length) {
      let ok = true;
      for (const h of route.headers) if (!h.match(head)) { ok = false; break; }
      if (!ok) continue;
    }
    if (route.query.length) {
      query ??= new URLSearchParams(qi >= 0 ? full.slice(qi + 1) : '');
      let ok = true;
      for (const q of route.query) if (!q.match(query)) { ok = false; break; }
      if (!ok) continue;
    }
    if (route.runtimeFraction && !sample(route.runtimeFraction)) continue;
    return route;
  }
  return undefined;
}

/** A weighted_clusters pick, in proportion to the weights. */
export function pickWeighted(route: Route): WeightedCluster {
  const rw = route.runtimeWeights;
  if (rw) return pickRuntimeWeighted(route.weighted, rw);
  let pick = Math.random() * route.totalWeight;
  for (const w of route.weighted) {
    pick -= w.weight;
    if (pick < 0) return w;
  }
  return route.weighted[route.weighted.length - 1];
}

/** A pick by the runtime's weights (runtime_key_prefix); all zero picks the last, as an empty draw would. */
function pickRuntimeWeighted(list: readonly WeightedCluster[], weights: readonly RuntimeUint[]): WeightedCluster {
  let total = 0;
  for (const w of weights) total += w.value;
  let pick = Math.random() * total;
  for (let i = 0; i < list.length; i++) {
    pick -= weights[i].value;
    if (pick < 0) return list[i];
  }
  return list[list.length - 1];
}

/** The request path after the route's prefix_rewrite / regex_rewrite (query string kept). */
export function rewritePath(route: Route, path: string): string {
  if (route.prefixRewrite === undefined && !route.regexRewrite) return path;
  const qi = path.indexOf('?');
  const p = qi >= 0 ? path.slice(0, qi) : path;
  const q = qi >= 0 ? path.slice(qi) : '';
  if (route.prefixRewrite !== undefined) {
    if (route.pathKind === PathKind.Prefix || route.pathKind === PathKind.SeparatedPrefix) return route.prefixRewrite + p.slice(route.pathValue.length) + q;
    if (route.pathKind === PathKind.Exact) return route.prefixRewrite + q;
    return path;
  }
  return route.regexRewrite!.re.replaceAll(p, route.regexRewrite!.sub) + q;
}

/**
 * The Location of a redirect route, as Envoy's Http::Utility::newUri: the scheme is scheme_redirect
 * (https_redirect), else the request's; the port is port_redirect's, else none; the host is
 * host_redirect whole (the request's port does not follow it), else the request's host, whose port
 * goes when port_redirect replaces it, or when the scheme changes and the port was the default one
 * of the request's x-forwarded-proto (http://h:80 → https://h; https://h:8080 keeps :8080).
 */
export function redirectLocation(route: Route, head: RequestHead): string {
  const rd = route.redirect!;
  const scheme = rd.scheme ?? head.scheme;
  const port = rd.port ? `:${rd.port}` : '';
  const host = rd.host ?? requestHost(head, scheme, port);
  let path = head.path;
  if (rd.path) path = rd.path.includes('?') || rd.stripQuery ? rd.path : rd.path + (path.includes('?') ? path.slice(path.indexOf('?')) : '');
  else if (rd.prefixRewrite !== undefined && route.pathKind !== PathKind.Regex) path = rd.prefixRewrite + path.slice(route.pathValue.length);
  else if (rd.regexRewrite) {
    const qi = path.indexOf('?');
    path = rd.regexRewrite.re.replaceAll(qi >= 0 ? path.slice(0, qi) : path, rd.regexRewrite.sub) + (qi >= 0 ? path.slice(qi) : '');
  }
  if (rd.stripQuery) {
    const qi = path.indexOf('?');
    if (qi >= 0) path = path.slice(0, qi);
  }
  return `${scheme}://${host}${port}${path}`;
}

/** Envoy's processRequestHost: the request's authority, without its port when `newPort` replaces it or the scheme change makes it a default to drop. */
function requestHost(head: RequestHead, newScheme: string, newPort: string): string {
  const authority = head.authority;
  const end = authority.startsWith('[') ? authority.lastIndexOf(']:') + 1 : authority.lastIndexOf(':');
  if (end <= 0) return authority;
  const xfp = head.headers['x-forwarded-proto'];
  const proto = (Array.isArray(xfp) ? xfp[0] : xfp) ?? '';
  const requestPort = authority.slice(end);
  let removePort = newPort !== '';
  if (newScheme !== proto) removePort ||= (proto.toLowerCase() === 'https' && requestPort === ':443') || (proto.toLowerCase() === 'http' && requestPort === ':80');
  return removePort ? authority.slice(0, end) : authority;
}
