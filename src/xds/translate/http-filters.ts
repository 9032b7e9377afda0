// The one place that builds HTTP connection managers' filter lists (inbound, outbound, gateway)
// and decorates HCMs. Later features append to the tables below, in Istio's order:
// authn (jwt_authn) → authz (rbac) → fault → cors → stats → router.
//   - authz/jwt translation: add a stage `{ name: 'authn' | 'authz', build }` returning filters;
//   - observability: add a stage `stats` and/or an HCM decorator (access_log, tracing).
import { CORS_TYPE, FAULT_TYPE, ISTIO_ALPN_TYPE, ROUTER_TYPE } from '../../envoy/index.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { pilotFeatures } from '../features.ts';
import { gatewayTopologyHcmFields } from './gateway-topology.ts';
import { http1Options, preservesHeaderCase, proxyHeadersHcmFields, routerFields } from './proxy-headers.ts';
import { authnStage, authzStage } from './security/security-filters.ts';
import { statsStage, telemetryDecorator } from '../telemetry/index.ts';
import { wasmPluginFilters } from './wasm-plugins.ts';

export type HcmKind = 'inbound' | 'outbound' | 'gateway';

export interface HttpFilterContext {
  push: PushContext;
  proxy: Proxy;
  kind: HcmKind;
  /** The workload port (inbound) or listener port (outbound/gateway). */
  port: number;
}

export interface HttpFilterStage {
  name: 'authn' | 'authz' | 'fault' | 'cors' | 'stats';
  build(ctx: HttpFilterContext): EnvoyJson[];
}

export type HcmDecorator = (ctx: HttpFilterContext, hcm: EnvoyJson) => void;

/** Fault and CORS act on per-route config only (typed_per_filter_config), as in Istio. */
const HTTP_FILTER_STAGES: HttpFilterStage[] = [
  authnStage,
  authzStage,
  { name: 'fault', build: (ctx) => (ctx.kind === 'inbound' ? [] : [{ name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT_TYPE } }]) },
  { name: 'cors', build: (ctx) => (ctx.kind === 'inbound' ? [] : [{ name: 'envoy.filters.http.cors', typed_config: { '@type': CORS_TYPE } }]) },
  statsStage,
];

/**
 * Istio's ALPN override for HTTP sent over mesh mTLS (not on inbound HCMs, as Istio): the server's
 * sniffing chains tell HTTP from TCP by it. Clusters with TLS of their own opt out by metadata.
 */
const ALPN_FILTER: EnvoyJson = {
  name: 'istio.alpn',
  typed_config: {
    '@type': ISTIO_ALPN_TYPE,
    alpn_override: [
      // upstream_protocol HTTP10 is the enum's zero value, left out as in proto3 JSON.
      { alpn_override: ['istio-http/1.0', 'istio', 'http/1.0'] },
      { upstream_protocol: 'HTTP11', alpn_override: ['istio-http/1.1', 'istio', 'http/1.1'] },
      { upstream_protocol: 'HTTP2', alpn_override: ['istio-h2', 'istio', 'h2'] },
    ],
  },
};

const HCM_DECORATORS: HcmDecorator[] = [telemetryDecorator];

const STAGE_ORDER = ['authn', 'authz', 'fault', 'cors', 'stats'] as const;

/** Registers an additional filter stage (called once from the feature's setup). */
export function addHttpFilterStage(stage: HttpFilterStage): void {
  HTTP_FILTER_STAGES.push(stage);
  HTTP_FILTER_STAGES.sort((a, b) => STAGE_ORDER.indexOf(a.name) - STAGE_ORDER.indexOf(b.name));
}

/** Registers an HCM decorator (access logs, tracing…), called once from the feature's setup. */
export function addHcmDecorator(d: HcmDecorator): void {
  HCM_DECORATORS.push(d);
}

export function httpFilters(ctx: HttpFilterContext): EnvoyJson[] {
  const out: EnvoyJson[] = [];
  // WasmPlugins go before the stage of their phase (AUTHN, AUTHZ, STATS), or last (UNSPECIFIED_PHASE).
  const wasm = wasmPluginFilters(ctx);
  for (const stage of HTTP_FILTER_STAGES) {
    const before = wasm?.[stage.name as 'authn' | 'authz' | 'stats'];
    if (before) out.push(...before);
    out.push(...stage.build(ctx));
  }
  if (wasm?.end) out.push(...wasm.end);
  if (ctx.kind !== 'inbound') out.push(ALPN_FILTER);
  out.push({ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE, ...routerFields(ctx.push, ctx.proxy) } });
  return out;
}

/**
 * Every HCM takes HTTP/1.0: for all proxies with istiod's PILOT_HTTP10, for one with Istio's node
 * metadata HTTP10 (agent env ISTIO_META_HTTP10=1, "1" only).
 */
export function acceptsHttp10(proxy: Proxy): boolean {
  return pilotFeatures().http10 || proxy.metadata.HTTP10 === '1';
}

/** Builds an HTTP connection manager with the filter list and decorators for its context. */
export function buildHcm(ctx: HttpFilterContext, opts: { statPrefix: string; routes: EnvoyJson; extra?: EnvoyJson }): EnvoyJson {
  const hcm: EnvoyJson = {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    stat_prefix: opts.statPrefix,
    ...opts.routes,
    http_filters: httpFilters(ctx),
    ...(ctx.kind === 'gateway' ? { use_remote_address: true, ...gatewayTopologyHcmFields(ctx.push, ctx.proxy) } : {}),
    ...proxyHeadersHcmFields(ctx.push, ctx.proxy, ctx.kind),
    normalize_path: true,
    path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
    upgrade_configs: [{ upgrade_type: 'websocket' }],
    stream_idle_timeout: '0s',
    ...opts.extra,
  };
  if (acceptsHttp10(ctx.proxy)) hcm.http_protocol_options = { ...((hcm.http_protocol_options as EnvoyJson | undefined) ?? {}), accept_http_10: true };
  if (preservesHeaderCase(ctx.push, ctx.proxy)) hcm.http_protocol_options = { ...((hcm.http_protocol_options as EnvoyJson | undefined) ?? {}), ...http1Options(true) };
  for (const d of HCM_DECORATORS) d(ctx, hcm);
  return hcm;
}
