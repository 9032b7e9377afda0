// Istio's WasmPlugin (extensions.istio.io/v1alpha1) as istiod sends it: in the chains, a filter that
// names its config by config_discovery (ECDS), its config served as a TypedExtensionConfig of that
// name (type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig), so that a changed plugin
// updates the filter in place without a new listener (no drain). As istiod: the filter and the
// resource are named extensions.istio.io/wasmplugin/<namespace>.<name>; config_source ads with
// initial_fetch_timeout 0s (the listener waits for the config) and resource_api_version V3;
// type_urls the Wasm filter's and RBAC's (HTTP or network: Istio's agent may put an allow or deny
// RBAC filter in the Wasm filter's place when its module cannot be fetched). Type HTTP goes in the HCM
// chains as envoy.filters.http.wasm, type NETWORK in the listeners' chains as envoy.filters.network.wasm
// (withWasmNetworkPlugins). Which plugins apply: those of the proxy's namespace and of the root
// namespace that attach to it (selector or targetRefs, as the other policies), whose match (mode,
// ports) fits the chain. Where: AUTHN before Istio's authentication filters, AUTHZ before
// authorization, STATS before stats, UNSPECIFIED_PHASE last before the router; within a phase, higher
// priority first, then the oldest. The Wasm config is named namespace.name; root_id is pluginName,
// configuration the JSON of pluginConfig in a StringValue, failStrategy the failure_policy as
// istiod sends it to 1.25+ proxies (FAIL_CLOSE, the default: FAIL_CLOSED; FAIL_OPEN; FAIL_RELOAD).
// Code: file:///path (or an absolute path) is a local file the proxy reads. Any other url (http://,
// https://, oci://, or a reference without a scheme, oci as in Istio) goes as istiod sends it for
// its agent: code.remote with the url, the sha256 if given, a 30 s timeout and the placeholder
// cluster "_"; the vm's env carries the pull policy, the WasmPlugin's resource version and the pull
// secret (the docker config of the imagePullSecret credential): in the extension config only, so
// that neither a new resource version nor a new secret changes the listeners. rig proxy then fetches
// the module as Istio's agent does (src/proxy/filters/wasm/wasm-fetch.ts).
import type { EnvoyJson } from '../../envoy/index.ts';
import type { Resource, WasmPluginSpec } from '../../api/index.ts';
import { warnOnce } from '../../model/config-warnings.ts';
import type { HttpFilterContext } from './http-filters.ts';
import { policiesFor } from './security/security-scope.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';

const WASM_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';
const WASM_NETWORK_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm';
const STRING_VALUE = 'type.googleapis.com/google.protobuf.StringValue';
const HTTP_RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const NETWORK_RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';

/** istiod's prefix of a WasmPlugin's ECDS resource name (model.WasmPluginResourceNamePrefix). */
export const WASM_PLUGIN_RESOURCE_PREFIX = 'extensions.istio.io/wasmplugin/';

/** The wasm filters of a chain by where they go: before a filter stage, or last before the router. */
export type WasmPhaseFilters = Partial<Record<'authn' | 'authz' | 'stats' | 'end', EnvoyJson[]>>;

/** istiod's PluginConfig.failure_policy per failStrategy (it sets fail_open instead only for proxies older than 1.25). */
const FAILURE_POLICY = { FAIL_CLOSE: 'FAIL_CLOSED', FAIL_OPEN: 'FAIL_OPEN', FAIL_RELOAD: 'FAIL_RELOAD' } as const;

const PHASE_SLOT = { AUTHN: 'authn', AUTHZ: 'authz', STATS: 'stats', UNSPECIFIED_PHASE: 'end' } as const;

/** The local file a plugin URL names, or undefined when it is remote (fetched by the proxy). */
export function localWasmFile(url: string): string | undefined {
  if (url.startsWith('file://')) return url.slice('file://'.length);
  if (url.startsWith('/')) return url;
  return undefined;
}

function describe(r: Resource<WasmPluginSpec>): string {
  return `WasmPlugin ${r.metadata.namespace}/${r.metadata.name}`;
}

function modeMatches(spec: WasmPluginSpec, ctx: HttpFilterContext): boolean {
  if (!spec.match?.length) return true;
  return spec.match.some((m) => {
    const mode = m.mode ?? 'UNDEFINED';
    const modeOk = mode === 'UNDEFINED' || mode === 'CLIENT_AND_SERVER' || ctx.kind === 'gateway' || (mode === 'CLIENT' ? ctx.kind === 'outbound' : ctx.kind === 'inbound');
    return modeOk && (!m.ports?.length || m.ports.some((p) => p.number === ctx.port));
  });
}

// What istiod puts in the vm's env for its agent (which strips them before the VM starts).
const PULL_SECRET_ENV = 'ISTIO_META_WASM_IMAGE_PULL_SECRET';
const PULL_POLICY_ENV = 'ISTIO_META_WASM_IMAGE_PULL_POLICY';
const RESOURCE_VERSION_ENV = 'ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION';

/** istiod's remote code for the agent: the url (oci:// when it has no scheme), sha256, 30 s, no cluster. */
function remoteCode(url: string, sha256: string | undefined): EnvoyJson {
  const uri = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `oci://${url}`;
  return { remote: { http_uri: { uri, cluster: '_', timeout: '30s' }, ...(sha256 ? { sha256 } : {}) } };
}

/** The agent's pull settings as istiod sends them; the secret is the credential's docker config ('' when missing: the fetch fails). */
function pullEnv(r: Resource<WasmPluginSpec>, push: PushContext): Record<string, string> {
  const s = r.spec;
  const env: Record<string, string> = {};
  if (s.imagePullSecret) {
    const name = s.imagePullSecret.replace(/^kubernetes:\/\//, '');
    const config = push.credentials(name)?.dockerConfigJson;
    if (!config) warnOnce('wasm', `${describe(r)}: imagePullSecret ${s.imagePullSecret} has no docker config (<credentials-dir>/${name}/.dockerconfigjson); the plugin is not fetched`);
    env[PULL_SECRET_ENV] = config?.toString('utf8') ?? '';
  }
  if (s.imagePullPolicy && s.imagePullPolicy !== 'UNSPECIFIED_POLICY') env[PULL_POLICY_ENV] = s.imagePullPolicy;
  env[RESOURCE_VERSION_ENV] = r.metadata.resourceVersion ?? '';
  return env;
}

function resourceName(r: Resource<WasmPluginSpec>): string {
  return `${WASM_PLUGIN_RESOURCE_PREFIX}${r.metadata.namespace}.${r.metadata.name}`;
}

/** The filter in a chain: it names its config, served over ECDS (wasmExtensionConfigs), as istiod writes it. */
function wasmFilter(r: Resource<WasmPluginSpec>, network = false): EnvoyJson {
  return {
    name: resourceName(r),
    config_discovery: {
      config_source: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' },
      type_urls: network ? [WASM_NETWORK_TYPE, NETWORK_RBAC_TYPE] : [WASM_TYPE, HTTP_RBAC_TYPE],
    },
  };
}

/** The plugin's Wasm config, served over ECDS as a TypedExtensionConfig named as its filter. */
function wasmExtensionConfig(r: Resource<WasmPluginSpec>, push: PushContext): EnvoyJson {
  const s = r.spec;
  const file = localWasmFile(s.url);
  const env: Record<string, string> = file === undefined ? pullEnv(r, push) : {};
  const hostKeys: string[] = [];
  for (const e of s.vmConfig?.env ?? []) {
    if (e.valueFrom === 'HOST') hostKeys.push(e.name);
    else env[e.name] = e.value ?? '';
  }
  const config: EnvoyJson = {
    name: `${r.metadata.namespace}.${r.metadata.name}`,
    ...(s.pluginName ? { root_id: s.pluginName } : {}),
    vm_config: {
      runtime: 'envoy.wasm.runtime.v8',
      code: file === undefined ? remoteCode(s.url, s.sha256) : { local: { filename: file } },
      ...(Object.keys(env).length || hostKeys.length ? { environment_variables: { ...(Object.keys(env).length ? { key_values: env } : {}), ...(hostKeys.length ? { host_env_keys: hostKeys } : {}) } } : {}),
    },
    ...(s.pluginConfig && Object.keys(s.pluginConfig).length ? { configuration: { '@type': STRING_VALUE, value: JSON.stringify(s.pluginConfig) } } : {}),
    failure_policy: FAILURE_POLICY[s.failStrategy ?? 'FAIL_CLOSE'],
  };
  return { name: resourceName(r), typed_config: { '@type': s.type === 'NETWORK' ? WASM_NETWORK_TYPE : WASM_TYPE, config } };
}

/**
 * ECDS: the extension configs of the WasmPlugins attached to the proxy, of those `names` it asks for
 * (istiod's EcdsGenerator); a name that is no such plugin gets nothing, as from istiod.
 */
export function wasmExtensionConfigs(push: PushContext, proxy: Proxy, names: readonly string[]): EnvoyJson[] {
  if (!names.length) return [];
  const plugins = new Map(policiesFor<WasmPluginSpec>(push, 'WasmPlugin', proxy).map((r) => [resourceName(r), r]));
  const out: EnvoyJson[] = [];
  for (const n of names) {
    const r = plugins.get(n);
    if (r) out.push(wasmExtensionConfig(r, push));
  }
  return out;
}

/** The filter for one plugin in this chain, undefined when it has none here. */
function pluginFilter(r: Resource<WasmPluginSpec>, ctx: HttpFilterContext): EnvoyJson | undefined {
  const s = r.spec;
  if (s.type === 'NETWORK' || !modeMatches(s, ctx)) return undefined;
  return wasmFilter(r);
}

export function wasmPluginFilters(ctx: HttpFilterContext): WasmPhaseFilters | undefined {
  const plugins = policiesFor<WasmPluginSpec>(ctx.push, 'WasmPlugin', ctx.proxy);
  if (plugins.length === 0) return undefined;
  // Higher priority first; a stable sort keeps the push context's creation order for ties.
  const sorted = [...plugins].sort((a, b) => (b.spec.priority ?? 0) - (a.spec.priority ?? 0));
  const out: WasmPhaseFilters = {};
  for (const r of sorted) {
    const f = pluginFilter(r, ctx);
    if (f) (out[PHASE_SLOT[r.spec.phase ?? 'UNSPECIFIED_PHASE']] ??= []).push(f);
  }
  return out;
}

const TCP_PROXY = 'envoy.filters.network.tcp_proxy';
const HCM = 'envoy.filters.network.http_connection_manager';
const NETWORK_RBAC = 'envoy.filters.network.rbac';
const TCP_STATS = 'istio.stats';

/**
 * Istio's WasmPlugins of type NETWORK as envoy.filters.network.wasm filters in the proxy's TCP and
 * HTTP filter chains, as istiod places them: after the metadata exchange; AUTHN and AUTHZ before the
 * network RBAC filter, STATS and UNSPECIFIED_PHASE after it, before the stats filter and tcp_proxy
 * (before the connection manager in an HTTP chain, all four phases in order). Mode and ports match
 * as for HTTP plugins (the chain's destination port, else the listener's).
 */
export function withWasmNetworkPlugins(push: HttpFilterContext['push'], proxy: HttpFilterContext['proxy'], listeners: EnvoyJson[]): EnvoyJson[] {
  const plugins = policiesFor<WasmPluginSpec>(push, 'WasmPlugin', proxy).filter((r) => r.spec.type === 'NETWORK');
  if (plugins.length === 0) return listeners;
  const sorted = [...plugins].sort((a, b) => (b.spec.priority ?? 0) - (a.spec.priority ?? 0));
  return listeners.map((l) => {
    const chains = l.filter_chains as EnvoyJson[] | undefined;
    if (!chains) return l;
    const kind: HttpFilterContext['kind'] = proxy.type === 'router' ? 'gateway' : l.traffic_direction === 'INBOUND' ? 'inbound' : 'outbound';
    const listenerPort = Number(((l.address as EnvoyJson | undefined)?.socket_address as EnvoyJson | undefined)?.port_value ?? 0);
    return { ...l, filter_chains: chains.map((c) => withPlugins(c, sorted, { push, proxy, kind, port: chainPort(c, listenerPort) })) };
  });
}

/** The port a chain serves: an inbound chain's workload port (its inbound|<port>|| cluster or route), else its destination_port, else the listener's. */
function chainPort(chain: EnvoyJson, listenerPort: number): number {
  const terminal = (chain.filters as EnvoyJson[] | undefined)?.at(-1)?.typed_config as EnvoyJson | undefined;
  const target = (terminal?.cluster ?? (terminal?.route_config as EnvoyJson | undefined)?.name) as string | undefined;
  const inbound = target === undefined ? null : /^inbound\|(\d+)\|/.exec(target);
  if (inbound) return Number(inbound[1]);
  return Number((chain.filter_chain_match as EnvoyJson | undefined)?.destination_port ?? listenerPort);
}

function withPlugins(chain: EnvoyJson, plugins: Resource<WasmPluginSpec>[], ctx: HttpFilterContext): EnvoyJson {
  const filters = chain.filters as EnvoyJson[] | undefined;
  const last = filters?.[filters.length - 1]?.name;
  if (!filters || (last !== TCP_PROXY && last !== HCM)) return chain;
  const phases: WasmPhaseFilters = {};
  for (const r of plugins) if (modeMatches(r.spec, ctx)) (phases[PHASE_SLOT[r.spec.phase ?? 'UNSPECIFIED_PHASE']] ??= []).push(wasmFilter(r, true));
  const early = [...(phases.authn ?? []), ...(phases.authz ?? [])];
  const late = [...(phases.stats ?? []), ...(phases.end ?? [])];
  if (!early.length && !late.length) return chain;
  const body = filters.slice(0, -1);
  const lateAt = last === HCM ? body.length : indexOr(body, TCP_STATS, body.length);
  let earlyAt = 0;
  while (earlyAt < body.length && body[earlyAt].name === 'istio.metadata_exchange') earlyAt++;
  const rbacAt = indexOr(body, NETWORK_RBAC, lateAt);
  const at = Math.min(Math.max(rbacAt, earlyAt), lateAt);
  return { ...chain, filters: [...body.slice(0, at), ...early, ...body.slice(at, lateAt), ...late, ...body.slice(lateAt), filters[filters.length - 1]] };
}

function indexOr(filters: EnvoyJson[], name: string, otherwise: number): number {
  const i = filters.findIndex((f) => f.name === name);
  return i < 0 ? otherwise : i;
}
