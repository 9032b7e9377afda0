// envoy.filters.http.ext_authz: asks an external authorization service (HTTP or gRPC, through a
// cluster) whether a request may proceed. Skipped when filter_enabled_metadata does not match
// (Istio: only requests an AuthorizationPolicy CUSTOM rule selected, by the shadow RBAC filter's
// `istio_ext_authz_shadow_effective_policy_id`) or filter_enabled samples it out (then refused
// with deny_at_disable). with_request_body holds the chain (StopIterationAndBuffer) until the check
// on the body allowed the request. Denials answer with the service's status/headers/body (flag
// UAEX, details ext_authz_denied); errors with status_on_error (default 403, details
// ext_authz_error) unless failure_mode_allow; an OK answer decoder_header_mutation_rules or
// validate_mutations refuse with 500 (ext_authz_invalid). Stats
// `http.<hcm prefix>.ext_authz.[<stat_prefix>.]ok|denied|error|invalid|disabled|failure_mode_allowed`.
import { HTTP_EXT_AUTHZ_TYPE } from '../../../envoy/index.ts';
import { ResponseFlag } from '../../response-flags.ts';
import { sample } from '../../config/fractional-percent.ts';
import type { Stat, Stats } from '../../stats/stats.ts';
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import type { Cluster } from '../../upstream/cluster.ts';
import { registerHttpFilter } from '../registry.ts';
import { FilterStatus, type HttpFilter, type HttpFilterFactory, type RequestHead, type ResponseHead, type StreamCallbacks } from '../filter.ts';
import { readExtAuthzConfig, readExtAuthzPerRoute, type ExtAuthzConfig, type ExtAuthzPerRoute } from './ext-authz-config.ts';
import { mutateHeaders, type AuthzService, type CheckOk, type CheckResult, type HeaderMutation } from './ext-authz-check.ts';
import { applyOkAnswer } from './ext-authz-request-mutations.ts';
import { HttpAuthzService } from './ext-authz-http.ts';
import { GrpcAuthzService } from './ext-authz-grpc.ts';

export const EXT_AUTHZ_FILTER_NAME = 'envoy.filters.http.ext_authz';
const PER_ROUTE_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute';
const NO_EXTENSIONS: Readonly<Record<string, string>> = Object.freeze({});

interface ExtAuthzStats {
  ok: Stat;
  denied: Stat;
  error: Stat;
  invalid: Stat;
  disabled: Stat;
  failureModeAllowed: Stat;
}

interface Compiled {
  readonly c: ExtAuthzConfig;
  readonly service: AuthzService;
  readonly stats: ExtAuthzStats;
  readonly allStats: Stats;
  readonly clusters: ClusterManager;
  /** `ext_authz.[<stat_prefix>.]`: the route cluster's counters are `cluster.<name>.` + this + outcome. */
  readonly clusterStatPrefix: string;
}

/** AttributeContext.HttpRequest.size: Content-Length, else the body's length when known, else -1. */
function requestSize(head: RequestHead, bodySize: number): number {
  const cl = head.headers['content-length'];
  const n = typeof cl === 'string' && /^\d+$/.test(cl) ? Number(cl) : NaN;
  return Number.isSafeInteger(n) ? n : bodySize;
}

class ExtAuthzFilter implements HttpFilter {
  private readonly x: Compiled;
  private readonly cb: StreamCallbacks;
  private head: RequestHead | undefined;
  private abort: AbortController | undefined;
  private responseOps: readonly HeaderMutation[] | undefined;
  /** Set in decodeHeaders for a request checked with its body (with_request_body). */
  decodeData?: (body: Buffer, endStream: boolean) => FilterStatus;
  /**
   * allow_partial_message: the check starts once max_request_bytes arrived; otherwise one byte
   * more is already too much (413).
   */
  decodeDataEarlyBytes?: number;

  constructor(x: Compiled, cb: StreamCallbacks) {
    this.x = x;
    this.cb = cb;
  }

  /** Whether this request is checked at all (metadata, sampling). */
  private enabled(): boolean {
    const c = this.x.c;
    const md = this.cb.streamInfo.filterState ?? {};
    if (c.enabledByMetadata && !c.enabledByMetadata(md)) return false;
    return sample(c.enabled);
  }

  decodeHeaders(head: RequestHead, endStream: boolean): FilterStatus {
    // As Envoy: no route, no check (the router answers 404).
    if (!this.cb.matchedRoute()) return FilterStatus.Continue;
    const perRoute = this.cb.perRouteConfig<ExtAuthzPerRoute>(EXT_AUTHZ_FILTER_NAME);
    if (perRoute?.disabled) return FilterStatus.Continue;
    const c = this.x.c;
    if (!this.enabled()) {
      this.x.stats.disabled.value++;
      if (!c.denyAtDisable.value) return FilterStatus.Continue;
      this.cb.sendLocalReply({ status: c.statusOnError, flags: ResponseFlag.UnauthorizedExternalService, details: 'ext_authz_error' });
      return FilterStatus.StopIteration;
    }
    this.head = head;
    // With body buffering the check waits for the body (no later filter sees the request before
    // the check allowed it), unless there is none.
    const b = perRoute?.noBody ? undefined : (perRoute?.body ?? c.body);
    if (b && !endStream) {
      this.decodeData = (body, end) => this.onBody(body, end, b.maxBytes, b.allowPartial);
      this.decodeDataEarlyBytes = b.allowPartial ? b.maxBytes : b.maxBytes + 1;
      return FilterStatus.StopIterationAndBuffer;
    }
    this.start(undefined, false, endStream ? 0 : -1);
    return FilterStatus.StopIteration;
  }

  private onBody(body: Buffer, endStream: boolean, max: number, allowPartial: boolean): FilterStatus {
    if (body.length > max && !allowPartial) {
      // As Envoy's decoder buffer limit set to max_request_bytes.
      this.cb.sendLocalReply({ status: 413, body: 'Payload Too Large', details: 'request_payload_too_large' });
      return FilterStatus.StopIteration;
    }
    this.start(body.length > max ? body.subarray(0, max) : body, body.length > max, endStream ? body.length : -1);
    return FilterStatus.StopIteration;
  }

  /** `bodySize`: the whole body's length when known, else -1. */
  private start(body: Buffer | undefined, partialBody: boolean, bodySize: number): void {
    const info = this.cb.streamInfo;
    const ac = (this.abort = new AbortController());
    const perRoute = this.cb.perRouteConfig<ExtAuthzPerRoute>(EXT_AUTHZ_FILTER_NAME);
    const input = {
      head: this.head!,
      conn: this.cb.connection,
      requestId: info.requestId,
      protocol: info.protocol,
      body,
      partialBody,
      size: requestSize(this.head!, bodySize),
      metadata: info.filterState ?? {},
      contextExtensions: perRoute?.contextExtensions ?? NO_EXTENSIONS,
    };
    this.x.service.check(input, ac.signal).then(
      (r) => this.onResult(r),
      (e: unknown) => this.onResult({ kind: 'error', message: (e as Error).message }),
    );
  }

  private onResult(r: CheckResult): void {
    if (this.abort?.signal.aborted) return;
    const { c, stats } = this.x;
    const info = this.cb.streamInfo;
    if (r.kind !== 'error' && r.dynamicMetadata) {
      const state = (info.filterState ??= {});
      state[EXT_AUTHZ_FILTER_NAME] = { ...(state[EXT_AUTHZ_FILTER_NAME] as object | undefined), ...r.dynamicMetadata };
    }
    if (r.kind === 'ok') {
      this.allow(r);
      return;
    }
    if (r.kind === 'denied') {
      stats.denied.value++;
      const cluster = this.countInCluster('denied');
      // As a response of the cluster (charge_cluster_response_stats).
      if (cluster && c.chargeClusterStats) {
        cluster.s.rqCompleted.value++;
        cluster.s.codes.record(r.status);
      }
      this.cb.sendLocalReply({ status: r.status, headers: r.headers, body: r.body, flags: ResponseFlag.UnauthorizedExternalService, details: 'ext_authz_denied' });
      return;
    }
    stats.error.value++;
    this.countInCluster('error');
    if (c.failureModeAllow) {
      stats.failureModeAllowed.value++;
      this.countInCluster('failure_mode_allowed');
      if (c.failureModeAllowHeaderAdd) this.head!.headers['x-envoy-auth-failure-mode-allowed'] = 'true';
      this.cb.continueDecoding();
      return;
    }
    this.cb.sendLocalReply({ status: c.statusOnError, flags: ResponseFlag.UnauthorizedExternalService, details: 'ext_authz_error' });
  }

  private allow(r: CheckOk): void {
    const c = this.x.c;
    if (!applyOkAnswer(this.head!, r, c.mutationRules, c.validateMutations)) return this.reject();
    if (r.response.length) this.responseOps = r.response;
    this.x.stats.ok.value++;
    this.countInCluster('ok');
    if (c.clearRouteCache && (r.remove.length || r.headers.length || r.querySet?.length || r.queryRemove?.length)) this.cb.clearRouteCache();
    this.cb.continueDecoding();
  }

  /** Counts the outcome in the route cluster's scope too (`cluster.<name>.ext_authz.*`), as Envoy does; returns the cluster. */
  private countInCluster(outcome: string): Cluster | undefined {
    const name = this.cb.streamInfo.upstreamCluster;
    const cluster = name ? this.x.clusters.get(name) : undefined;
    if (cluster) this.x.allStats.counter(`cluster.${name}.${this.x.clusterStatPrefix}${outcome}`).value++;
    return cluster;
  }

  /** An OK answer the mutation rules refuse (Envoy's ext_authz_invalid). */
  private reject(): void {
    this.x.stats.invalid.value++;
    this.countInCluster('invalid');
    this.cb.sendLocalReply({ status: 500, flags: ResponseFlag.UnauthorizedExternalService, details: 'ext_authz_invalid' });
  }

  encodeHeaders(head: ResponseHead): void {
    const r = this.responseOps;
    if (!r) return;
    for (const m of r) if (m.key[0] !== ':') mutateHeaders(head.headers, m);
  }

  onDestroy(): void {
    this.abort?.abort();
  }
}

export const extAuthzFilterFactory: HttpFilterFactory<Compiled, ExtAuthzPerRoute> = {
  name: EXT_AUTHZ_FILTER_NAME,
  typeUrls: [HTTP_EXT_AUTHZ_TYPE],
  perRouteTypeUrls: [PER_ROUTE_TYPE],
  compile(r, ctx) {
    const c = readExtAuthzConfig(r, ctx.runtime);
    r.done();
    const p = `http.${ctx.statPrefix}.ext_authz.${c.statPrefix ? c.statPrefix + '.' : ''}`;
    const stats: ExtAuthzStats = {
      ok: ctx.stats.counter(p + 'ok'),
      denied: ctx.stats.counter(p + 'denied'),
      error: ctx.stats.counter(p + 'error'),
      invalid: ctx.stats.counter(p + 'invalid'),
      disabled: ctx.stats.counter(p + 'disabled'),
      failureModeAllowed: ctx.stats.counter(p + 'failure_mode_allowed'),
    };
    const service = c.service.kind === 'http' ? new HttpAuthzService(c, c.service, ctx.clusters) : new GrpcAuthzService(c, c.service, ctx.clusters);
    return { c, service, stats, allStats: ctx.stats, clusters: ctx.clusters, clusterStatPrefix: `ext_authz.${c.statPrefix ? c.statPrefix + '.' : ''}` };
  },
  compilePerRoute: (r) => readExtAuthzPerRoute(r),
  create: (x, cb) => new ExtAuthzFilter(x, cb),
};

export function setup(): void {
  registerHttpFilter(extAuthzFilterFactory);
}
