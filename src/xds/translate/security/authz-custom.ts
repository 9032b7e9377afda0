// AuthorizationPolicy action CUSTOM → Envoy, as istiod generates it: the CUSTOM policies' rules go
// into a shadow RBAC filter (action DENY, policy names `istio-ext-authz-ns[<ns>]-policy[<name>]-rule[<i>]`,
// shadow_rules_stat_prefix `istio_ext_authz_`), whose shadow_effective_policy_id metadata enables
// the following ext_authz filter only for the requests those rules match. The provider comes from
// MeshConfig.extensionProviders (envoyExtAuthzHttp / envoyExtAuthzGrpc). As in Istio, one provider
// per workload; a missing or broken provider denies the matched requests instead (enforced DENY
// rules named `...-deny-due-to-bad-CUSTOM-action`). On TCP chains a gRPC provider becomes a shadow
// network rbac + envoy.filters.network.ext_authz (stat_prefix `tcp.`); an HTTP provider does not
// apply to TCP (as in Istio), with a warning.
import type { AuthorizationPolicySpec, Resource } from '../../../api/index.ts';
import { envoyEnum, HTTP_EXT_AUTHZ_TYPE, HTTP_RBAC_TYPE, NETWORK_EXT_AUTHZ_TYPE, NETWORK_RBAC_TYPE } from '../../../envoy/index.ts';
import type { EnvoyJson } from '../../../envoy/index.ts';
import type { PushContext } from '../../../model/push-context.ts';
import type { ExtensionProvider } from '../../../telemetry/extension-providers.ts';
import type { ExtAuthzGrpcProvider, ExtAuthzHttpProvider, ExtAuthzRequestBody } from '../../../telemetry/extension-providers-authz.ts';
import { DRY_RUN_ANNOTATION, rbacMessage, type RbacOptions } from './authz-rbac.ts';

export const EXT_AUTHZ_PREFIX = 'istio-ext-authz';
const SHADOW_STAT_PREFIX = 'istio_ext_authz_';
const BAD_CUSTOM_SUFFIX = '-deny-due-to-bad-CUSTOM-action';
/** Istio's default when the provider sets no timeout. */
const DEFAULT_TIMEOUT = '600s';

const ENABLED_METADATA = (filter: string): EnvoyJson => ({
  filter,
  path: [{ key: `${SHADOW_STAT_PREFIX}shadow_effective_policy_id` }],
  value: { string_match: { prefix: EXT_AUTHZ_PREFIX } },
});

export interface CustomBuild {
  filters: EnvoyJson[];
  /** Warnings for the log, naming the policies. */
  notes: string[];
}

interface Resolved {
  http?: ExtAuthzHttpProvider;
  grpc?: ExtAuthzGrpcProvider;
  cluster: string;
  host: string;
}

const UNITS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** An Istio duration ("500ms", "1m") as a proto3 JSON Duration ("0.5s"). */
function protoDuration(d: string | undefined): string {
  const m = d ? /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$/.exec(d) : null;
  if (!m) return DEFAULT_TIMEOUT;
  return `${Number((Number(m[1]) * UNITS[m[2]]).toFixed(9))}s`;
}

/** `ns/host` or `host` → the registry's host name, or undefined when the registry has no such service. */
function lookupHost(push: PushContext, service: string): string | undefined {
  const slash = service.indexOf('/');
  const ns = slash > 0 ? service.slice(0, slash) : undefined;
  const host = slash > 0 ? service.slice(slash + 1) : service;
  const candidates = [host, ...(ns && !host.includes('.') ? [`${host}.${ns}.svc.cluster.local`] : [])];
  return candidates.find((h) => push.serviceByHost.has(h));
}

function resolveProvider(push: PushContext, names: string[]): Resolved | string {
  const distinct = [...new Set(names)];
  if (distinct.length > 1) return `only 1 provider can be used per workload, found multiple providers: ${distinct.join(', ')}`;
  const name = distinct[0];
  const all = push.mesh.extensionProviders as unknown as ExtensionProvider[];
  const p = all.find((x) => x.name === name && (x.envoyExtAuthzHttp || x.envoyExtAuthzGrpc));
  if (!p) {
    const available = all.filter((x) => x.envoyExtAuthzHttp || x.envoyExtAuthzGrpc).map((x) => x.name);
    return `provider "${name}" is not an envoyExtAuthzHttp/envoyExtAuthzGrpc extension provider of the mesh config (available: ${available.join(', ') || 'none'})`;
  }
  const cfg = (p.envoyExtAuthzHttp ?? p.envoyExtAuthzGrpc)!;
  const host = lookupHost(push, cfg.service);
  if (!host) return `provider "${name}": service "${cfg.service}" is not in the service registry`;
  return { http: p.envoyExtAuthzHttp, grpc: p.envoyExtAuthzGrpc, cluster: `outbound|${cfg.port}||${host}`, host };
}

/** Istio's header patterns: `x-*` prefix, `*-id` suffix, else exact; case-insensitive. */
function headerList(headers: string[] | undefined): EnvoyJson | undefined {
  if (!headers?.length) return undefined;
  const patterns = headers.map((h) => {
    if (h.startsWith('*')) return { suffix: h.slice(1), ignore_case: true };
    if (h.endsWith('*')) return { prefix: h.slice(0, -1), ignore_case: true };
    return { exact: h, ignore_case: true };
  });
  return { patterns };
}

function bodySettings(b: ExtAuthzRequestBody | undefined): EnvoyJson | undefined {
  if (!b) return undefined;
  return { max_request_bytes: b.maxRequestBytes, ...(b.allowPartialMessage ? { allow_partial_message: true } : {}), ...(b.packAsBytes ? { pack_as_bytes: true } : {}) };
}

function common(p: ExtAuthzHttpProvider | ExtAuthzGrpcProvider): EnvoyJson {
  const out: EnvoyJson = { transport_api_version: 'V3', filter_enabled_metadata: ENABLED_METADATA('envoy.filters.http.rbac') };
  // envoy.type.v3.StatusCode by name, as proto3 JSON writes an enum (the mesh config check allows only named codes).
  if (p.statusOnError) out.status_on_error = { code: envoyEnum('envoy.type.v3.StatusCode').valuesById[Number(p.statusOnError)] };
  if (p.failOpen) out.failure_mode_allow = true;
  if (p.clearRouteCache) out.clear_route_cache = true;
  const body = bodySettings(p.includeRequestBodyInCheck);
  if (body) out.with_request_body = body;
  return out;
}

function httpExtAuthz(p: ExtAuthzHttpProvider, r: Resolved): EnvoyJson {
  const service: EnvoyJson = {
    server_uri: { uri: `http://${r.host}${p.pathPrefix ?? ''}`, cluster: r.cluster, timeout: protoDuration(p.timeout) },
  };
  if (p.pathPrefix) service.path_prefix = p.pathPrefix;
  const extra = Object.entries(p.includeAdditionalHeadersInCheck ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (extra.length) service.authorization_request = { headers_to_add: extra.map(([key, value]) => ({ key, value })) };
  const response: EnvoyJson = {};
  const up = headerList(p.headersToUpstreamOnAllow);
  const deny = headerList(p.headersToDownstreamOnDeny);
  const allow = headerList(p.headersToDownstreamOnAllow);
  if (up) response.allowed_upstream_headers = up;
  if (deny) response.allowed_client_headers = deny;
  if (allow) response.allowed_client_headers_on_success = allow;
  if (Object.keys(response).length) service.authorization_response = response;
  const out: EnvoyJson = { ...common(p), http_service: service };
  // includeHeadersInCheck is Istio's deprecated name, used only when the new one is unset.
  const allowed = headerList(p.includeRequestHeadersInCheck ?? p.includeHeadersInCheck);
  if (allowed) out.allowed_headers = allowed;
  return out;
}

function grpcService(p: ExtAuthzGrpcProvider, r: Resolved): EnvoyJson {
  // `|` is not valid in an authority: Istio writes the cluster name with `_.` instead.
  return { envoy_grpc: { cluster_name: r.cluster, authority: r.cluster.replaceAll('|', '_.') }, timeout: protoDuration(p.timeout) };
}

function grpcExtAuthz(p: ExtAuthzGrpcProvider, r: Resolved): EnvoyJson {
  return { ...common(p), grpc_service: grpcService(p, r) };
}

/** Istio's network ext_authz for a gRPC provider on TCP chains. */
function networkExtAuthz(p: ExtAuthzGrpcProvider, r: Resolved): EnvoyJson {
  return {
    stat_prefix: 'tcp.',
    ...(p.failOpen ? { failure_mode_allow: true } : {}),
    transport_api_version: 'V3',
    grpc_service: grpcService(p, r),
    filter_enabled_metadata: ENABLED_METADATA('envoy.filters.network.rbac'),
  };
}

function renamed(rules: EnvoyJson): EnvoyJson {
  const policies = (rules.policies ?? {}) as Record<string, EnvoyJson>;
  return { action: 'DENY', policies: Object.fromEntries(Object.entries(policies).map(([n, p]) => [n + BAD_CUSTOM_SUFFIX, p])) };
}

function denyFilter(rules: EnvoyJson, tcp: boolean): EnvoyJson {
  return tcp
    ? { name: 'envoy.filters.network.rbac', typed_config: { '@type': NETWORK_RBAC_TYPE, rules: renamed(rules), stat_prefix: 'tcp.' } }
    : { name: 'envoy.filters.http.rbac', typed_config: { '@type': HTTP_RBAC_TYPE, rules: renamed(rules) } };
}

function ids(policies: readonly Resource<AuthorizationPolicySpec>[]): string {
  return policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).join(', ');
}

/** The filters for the CUSTOM policies that apply to a proxy (first in the authz stage); undefined when none match anything. */
export function buildCustomAuthz(push: PushContext, applying: readonly Resource<AuthorizationPolicySpec>[], opts: RbacOptions): CustomBuild | undefined {
  const notes: string[] = [];
  const all = applying.filter((p) => p.spec?.action === 'CUSTOM');
  const dryRun = all.filter((p) => p.metadata.annotations?.[DRY_RUN_ANNOTATION] === 'true');
  for (const p of dryRun) notes.push(`AuthorizationPolicy ${p.metadata.namespace}/${p.metadata.name}: dry-run is not supported for action CUSTOM; policy not applied`);
  const custom = all.filter((p) => !dryRun.includes(p));
  if (!custom.length) return notes.length ? { filters: [], notes } : undefined;
  const rules = rbacMessage(custom, 'DENY', opts, notes, `${EXT_AUTHZ_PREFIX}-`);
  if (!rules) return { filters: [], notes };
  const resolved = resolveProvider(push, custom.map((p) => p.spec?.provider?.name ?? ''));
  if (typeof resolved === 'string') {
    notes.push(`AuthorizationPolicy ${ids(custom)}: action CUSTOM: ${resolved}; requests matching their rules are denied`);
    return { filters: [denyFilter(rules, opts.tcp)], notes };
  }
  if (opts.tcp) {
    if (resolved.http) {
      notes.push(`AuthorizationPolicy ${ids(custom)}: action CUSTOM with an HTTP provider does not apply to TCP traffic (as in Istio)`);
      return { filters: [], notes };
    }
    return {
      filters: [
        { name: 'envoy.filters.network.rbac', typed_config: { '@type': NETWORK_RBAC_TYPE, shadow_rules: rules, stat_prefix: 'tcp.', shadow_rules_stat_prefix: SHADOW_STAT_PREFIX } },
        { name: 'envoy.filters.network.ext_authz', typed_config: { '@type': NETWORK_EXT_AUTHZ_TYPE, ...networkExtAuthz(resolved.grpc!, resolved) } },
      ],
      notes,
    };
  }
  const extAuthz = resolved.http ? httpExtAuthz(resolved.http, resolved) : grpcExtAuthz(resolved.grpc!, resolved);
  return {
    filters: [
      { name: 'envoy.filters.http.rbac', typed_config: { '@type': HTTP_RBAC_TYPE, shadow_rules: rules, shadow_rules_stat_prefix: SHADOW_STAT_PREFIX } },
      { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': HTTP_EXT_AUTHZ_TYPE, ...extAuthz } },
    ],
    notes,
  };
}
