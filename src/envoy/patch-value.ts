// Envoy configuration fragments written by users (Istio's EnvoyFilter patch values): checked
// against Envoy's protos and put into the canonical JSON shape the generators produce
// (snake_case, canonical durations, defaults dropped), so a patch merges into generated config
// field by field. TypedStructs of a known type become that type, as Envoy reads them.
import { messageType } from './protos.ts';
import { checkMessage, normalize, type EnvoyJson } from './codec.ts';
import { HTTP_INSPECTOR_TYPE, ORIGINAL_DST_TYPE, PROXY_PROTOCOL_TYPE, TLS_INSPECTOR_TYPE, TYPE_URL_PREFIX } from './type-urls.ts';

const TYPED_STRUCT_TYPES = new Set(['type.googleapis.com/udpa.type.v1.TypedStruct', 'type.googleapis.com/xds.type.v3.TypedStruct']);

/**
 * The filters `rig proxy` implements (names and typed_config types), kept in step with its
 * registries by src/envoy/patch-value.test.ts. A filter outside these lists makes the proxy
 * reject (NACK) the listener.
 */
export const PROXY_HTTP_FILTERS = {
  names: ['envoy.filters.http.compressor', 'envoy.filters.http.cors', 'envoy.filters.http.csrf', 'envoy.filters.http.decompressor', 'envoy.filters.http.ext_authz', 'envoy.filters.http.fault', 'envoy.filters.http.grpc_web', 'envoy.filters.http.health_check', 'envoy.filters.http.jwt_authn', 'envoy.filters.http.local_ratelimit', 'envoy.filters.http.lua', 'envoy.filters.http.peer_metadata', 'envoy.filters.http.ratelimit', 'envoy.filters.http.rbac', 'envoy.filters.http.router', 'envoy.filters.http.wasm', 'istio.alpn', 'istio.metadata_exchange', 'istio.stats'],
  typeUrls: [
    'type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor',
    'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors',
    'type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy',
    'type.googleapis.com/envoy.extensions.filters.http.decompressor.v3.Decompressor',
    'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
    'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
    'type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb',
    'type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck',
    'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
    'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
    'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua',
    'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit',
    'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
    'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
    'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
    'type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig',
  ],
} as const;

export const PROXY_NETWORK_FILTERS = {
  names: ['envoy.filters.network.ext_authz', 'envoy.filters.network.http_connection_manager', 'envoy.filters.network.local_ratelimit', 'envoy.filters.network.rbac', 'envoy.filters.network.tcp_proxy', 'envoy.filters.network.wasm', 'istio.metadata_exchange', 'istio.stats'],
  typeUrls: [
    'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz',
    'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    'type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit',
    'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
    'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
    'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm',
  ],
} as const;

/** The listener filters `rig proxy` reads (src/proxy/listener/listener-config.ts); any other makes it reject the listener. */
export const PROXY_LISTENER_FILTERS = {
  names: ['envoy.filters.listener.http_inspector', 'envoy.filters.listener.original_dst', 'envoy.filters.listener.proxy_protocol', 'envoy.filters.listener.tls_inspector'],
  typeUrls: [HTTP_INSPECTOR_TYPE, ORIGINAL_DST_TYPE, PROXY_PROTOCOL_TYPE, TLS_INSPECTOR_TYPE],
} as const;

function knownType(typeUrl: string): boolean {
  if (!typeUrl.startsWith(TYPE_URL_PREFIX)) return false;
  try {
    messageType(typeUrl.slice(TYPE_URL_PREFIX.length));
    return true;
  } catch {
    return false;
  }
}

/** Replaces every TypedStruct whose type_url is a known message by that message (`{"@type": type_url, ...value}`). */
export function unwrapTypedStructs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(unwrapTypedStructs);
  if (v === null || typeof v !== 'object') return v;
  const o = v as Record<string, unknown>;
  if (TYPED_STRUCT_TYPES.has(o['@type'] as string) && typeof o.type_url === 'string' && knownType(o.type_url)) {
    return { '@type': o.type_url, ...(unwrapTypedStructs(o.value ?? {}) as Record<string, unknown>) };
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) out[k] = unwrapTypedStructs(x);
  return out;
}

export interface PatchValueResult {
  value?: EnvoyJson;
  /** Problems with their field paths inside the value (empty when value is set). */
  issues: { path: string; message: string }[];
}

/** Checks `value` as a message of `typeName` and returns it in canonical JSON shape. */
export function normalizePatchValue(typeName: string, value: unknown): PatchValueResult {
  const unwrapped = unwrapTypedStructs(value);
  const issues = checkMessage(typeName, unwrapped);
  if (issues.length) return { issues };
  try {
    return { value: normalize(typeName, unwrapped as EnvoyJson), issues: [] };
  } catch (err) {
    return { issues: [{ path: '', message: (err as Error).message }] };
  }
}

/** Why `rig proxy` would reject this filter (HTTP, network or listener), or undefined when it implements it. */
export function unknownFilterReason(kind: 'HTTP' | 'network' | 'listener', filter: EnvoyJson): string | undefined {
  const known = kind === 'HTTP' ? PROXY_HTTP_FILTERS : kind === 'network' ? PROXY_NETWORK_FILTERS : PROXY_LISTENER_FILTERS;
  if (filter.is_optional === true) return undefined;
  const name = String(filter.name ?? '');
  // A filter taking its config over ECDS: the types it accepts (the served config is checked where it is given).
  const discovery = filter.config_discovery as EnvoyJson | undefined;
  if (discovery) {
    const types = (discovery.type_urls as string[] | undefined) ?? [];
    if (types.some((u) => (known.typeUrls as readonly string[]).includes(u))) return undefined;
    return `rig proxy has no ${kind} filter of the types ${name || 'the filter'} takes over ECDS (${types.join(', ') || 'none given'}); it would reject (NACK) the listener`;
  }
  const tc = filter.typed_config as EnvoyJson | undefined;
  const typeUrl = tc?.['@type'] as string | undefined;
  if (typeUrl && (known.typeUrls as readonly string[]).includes(typeUrl)) return undefined;
  if ((known.names as readonly string[]).includes(name) && (!typeUrl || TYPED_STRUCT_TYPES.has(typeUrl))) return undefined;
  return `rig proxy has no ${kind} filter ${typeUrl ?? name}${typeUrl ? ` (named ${name || 'without a name'})` : ''}; it would reject (NACK) the listener. Known ${kind} filters: ${known.names.join(', ')}`;
}
