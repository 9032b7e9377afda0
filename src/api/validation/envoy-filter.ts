// EnvoyFilter: what Rigging's control plane applies, and an error for every part it does not
// (Istio ignores some combinations silently; here the user hears about them at apply time); a
// warning for the fields istiod accepts and gives no effect (targetRefs, portName, BOOTSTRAP…), as Rigging does.
// Patch values are checked against Envoy's protos, and filters `rig proxy` lacks are refused.
import { normalizePatchValue, unknownFilterReason, unwrapTypedStructs } from '../../envoy/index.ts';
import type { FieldPath } from '../source-map.ts';
import type { EnvoyFilterApplyTo, EnvoyFilterConfigPatch, EnvoyFilterOperation, EnvoyFilterSpec } from '../types/networking.ts';
import type { Reporter } from './reporter.ts';
import { GATEWAY_NAME_LABEL } from '../kinds.ts';
import { ISTIO_VERSION } from '../../core/version.ts';
import { RE2JS } from 're2js';
import { regexProblem } from './rules.ts';

/** The Envoy message each supported applyTo patches, and the operations Istio applies to it. */
export const ENVOY_FILTER_TARGETS: Partial<Record<EnvoyFilterApplyTo, { message: string; operations: readonly EnvoyFilterOperation[]; match?: 'listener' | 'routeConfiguration' | 'cluster' }>> = {
  LISTENER: { message: 'envoy.config.listener.v3.Listener', operations: ['MERGE', 'ADD', 'REMOVE'], match: 'listener' },
  FILTER_CHAIN: { message: 'envoy.config.listener.v3.FilterChain', operations: ['MERGE', 'ADD', 'REMOVE'], match: 'listener' },
  NETWORK_FILTER: { message: 'envoy.config.listener.v3.Filter', operations: ['MERGE', 'ADD', 'REMOVE', 'INSERT_BEFORE', 'INSERT_AFTER', 'INSERT_FIRST', 'REPLACE'], match: 'listener' },
  HTTP_FILTER: { message: 'envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter', operations: ['MERGE', 'ADD', 'REMOVE', 'INSERT_BEFORE', 'INSERT_AFTER', 'INSERT_FIRST', 'REPLACE'], match: 'listener' },
  ROUTE_CONFIGURATION: { message: 'envoy.config.route.v3.RouteConfiguration', operations: ['MERGE'], match: 'routeConfiguration' },
  VIRTUAL_HOST: { message: 'envoy.config.route.v3.VirtualHost', operations: ['MERGE', 'ADD', 'REMOVE'], match: 'routeConfiguration' },
  HTTP_ROUTE: { message: 'envoy.config.route.v3.Route', operations: ['MERGE', 'REMOVE', 'INSERT_BEFORE', 'INSERT_AFTER', 'INSERT_FIRST'], match: 'routeConfiguration' },
  CLUSTER: { message: 'envoy.config.cluster.v3.Cluster', operations: ['MERGE', 'ADD', 'REMOVE'], match: 'cluster' },
  // Served over ECDS by name to the proxies the EnvoyFilter selects (istiod's InsertedExtensionConfigurations: ADD only, no object match).
  EXTENSION_CONFIG: { message: 'envoy.config.core.v3.TypedExtensionConfig', operations: ['ADD'] },
  LISTENER_FILTER: { message: 'envoy.config.listener.v3.ListenerFilter', operations: ['MERGE', 'ADD', 'REMOVE', 'INSERT_BEFORE', 'INSERT_AFTER', 'INSERT_FIRST', 'REPLACE'], match: 'listener' },
};

const FILTER_KINDS: Partial<Record<EnvoyFilterApplyTo, 'HTTP' | 'network' | 'listener'>> = { HTTP_FILTER: 'HTTP', NETWORK_FILTER: 'network', LISTENER_FILTER: 'listener' };

export function validateEnvoyFilter(spec: EnvoyFilterSpec, r: Reporter): void {
  // Istio accepts targetRefs, but istiod's getMatchedEnvoyFilters (pilot/pkg/model/push_context.go) skips every
  // EnvoyFilter that has them ("currently these would never match"), for gateways and waypoints alike; so does Rigging.
  if (spec.targetRefs?.length) r.warn(['spec', 'targetRefs'], 'an EnvoyFilter with targetRefs applies to no proxy, as in Istio (istiod does not implement targetRefs for EnvoyFilter and skips it)', `select the proxies with workloadSelector.labels (a Gateway API gateway's proxies carry ${GATEWAY_NAME_LABEL}: <gateway name>)`);
  spec.configPatches?.forEach((p, i) => validatePatch(p, ['spec', 'configPatches', i], r));
}

function validatePatch(p: EnvoyFilterConfigPatch, at: FieldPath, r: Reporter): void {
  const applyTo = p.applyTo ?? 'INVALID';
  const target = ENVOY_FILTER_TARGETS[applyTo];
  if (applyTo === 'BOOTSTRAP') return validateBootstrapPatch(p, at, r);
  if (!target) {
    const what = p.applyTo === undefined ? 'applyTo is missing' : `applyTo ${applyTo} is not supported by Rigging`;
    r.error(p.applyTo === undefined ? at : [...at, 'applyTo'], what, `use one of ${Object.keys(ENVOY_FILTER_TARGETS).join(', ')}`);
    return;
  }
  const m = p.match ?? {};
  const mat = [...at, 'match'];
  validateProxyVersion(m.proxy?.proxyVersion, [...mat, 'proxy', 'proxyVersion'], r);
  for (const k of ['listener', 'routeConfiguration', 'cluster'] as const) {
    if (m[k] === undefined || k === target.match) continue;
    if (target.match) r.error([...mat, k], `match.${k} does not apply to applyTo ${applyTo} (it takes match.${target.match})`, `use match.${target.match}`);
    else r.error([...mat, k], `match.${k} does not apply to applyTo ${applyTo} (Istio serves the config by its name to every proxy the EnvoyFilter selects)`, 'remove it; select proxies with workloadSelector');
  }
  const l = m.listener;
  // Istio's API marks ListenerMatch.port_name "Not implemented" and istiod's listenerMatch
  // (pilot/pkg/networking/core/envoyfilter/listener_patch.go) never reads it: the patch applies to every port, here too.
  if (l?.portName !== undefined) r.warn([...mat, 'listener', 'portName'], 'match.listener.portName has no effect (not implemented by Istio either): the patch applies to listeners of every port', 'use portNumber to patch one port');
  // istiod reads listenerFilter for listener filter patches only, and no filter chain match for them.
  if (l?.listenerFilter !== undefined && applyTo !== 'LISTENER_FILTER') r.error([...mat, 'listener', 'listenerFilter'], 'listenerFilter only applies to applyTo LISTENER_FILTER (Istio ignores it here)', 'remove it');
  if (l?.filterChain !== undefined && applyTo === 'LISTENER_FILTER') r.error([...mat, 'listener', 'filterChain'], 'a filter chain match does not apply to applyTo LISTENER_FILTER (listener filters belong to the listener; Istio ignores it)', 'remove it; select the listener with portNumber or name');
  if (l?.filterChain?.filter?.subFilter !== undefined && applyTo !== 'HTTP_FILTER') r.error([...mat, 'listener', 'filterChain', 'filter', 'subFilter'], 'subFilter only applies to applyTo HTTP_FILTER', 'remove it');
  if (m.routeConfiguration?.portName !== undefined && m.context !== 'GATEWAY') r.error([...mat, 'routeConfiguration', 'portName'], 'match.routeConfiguration.portName only matches gateway route configurations', 'set match.context: GATEWAY, or use portNumber');
  const op = p.patch?.operation ?? 'INVALID';
  const opAt = [...at, 'patch', 'operation'];
  if (!target.operations.includes(op)) {
    const what = p.patch?.operation === undefined ? 'patch.operation is missing' : `operation ${op} does not apply to applyTo ${applyTo} (Istio ignores it)`;
    r.error(p.patch?.operation === undefined ? at : opAt, what, `use one of ${target.operations.join(', ')}`);
    return;
  }
  validateFilterClass(p, at, r);
  // Istio's REPLACE and REMOVE without the filter they act on do nothing.
  if ((op === 'REPLACE' || op === 'REMOVE') && applyTo === 'HTTP_FILTER' && !l?.filterChain?.filter?.subFilter?.name) r.error([...mat, 'listener', 'filterChain', 'filter', 'subFilter', 'name'], `${op} of an HTTP filter needs the filter in match.listener.filterChain.filter.subFilter.name (Istio does nothing without it)`, 'name the HTTP filter');
  if ((op === 'REPLACE' || op === 'REMOVE') && applyTo === 'NETWORK_FILTER' && !l?.filterChain?.filter?.name) r.error([...mat, 'listener', 'filterChain', 'filter', 'name'], `${op} of a network filter needs the filter in match.listener.filterChain.filter.name (Istio does nothing without it)`, 'name the network filter');
  if ((op === 'REPLACE' || op === 'REMOVE' || op === 'MERGE') && applyTo === 'LISTENER_FILTER' && !l?.listenerFilter) r.error([...mat, 'listener', 'listenerFilter'], `${op} of a listener filter needs the filter in match.listener.listenerFilter (Istio does nothing without it)`, 'name the listener filter');
  if (applyTo === 'HTTP_FILTER' && (op === 'ADD' || (op === 'INSERT_AFTER' && !l?.filterChain?.filter?.subFilter?.name))) {
    r.warn(opAt, `${op}${op === 'ADD' ? '' : ' without a subFilter'} puts the HTTP filter after envoy.filters.http.router, as in Istio; rig proxy, like Envoy, rejects (NACKs) a filter after the router`, 'use INSERT_BEFORE with subFilter.name: envoy.filters.http.router');
  }
  if (op === 'REMOVE') return;
  const valueAt = [...at, 'patch', 'value'];
  if (p.patch?.value === undefined) {
    r.error(valueAt, `operation ${op} needs a patch.value (a ${target.message})`, 'add the value');
    return;
  }
  const filterKind = FILTER_KINDS[applyTo];
  if (filterKind && op !== 'MERGE') {
    const why = unknownFilterReason(filterKind, unwrapTypedStructs(p.patch.value) as Record<string, unknown>);
    if (why) {
      r.error(valueAt, why, 'use a filter rig proxy implements');
      return;
    }
  }
  if (applyTo === 'EXTENSION_CONFIG') validateExtensionConfig(p.patch.value, valueAt, r);
  checkPatchValue(target.message, p.patch.value, valueAt, r);
}

/** A patch value against the Envoy message its applyTo patches. */
function checkPatchValue(message: string, value: Record<string, unknown>, at: FieldPath, r: Reporter): void {
  for (const issue of normalizePatchValue(message, value).issues) r.error(at, `patch.value${issue.path ? '.' + issue.path.replace(/^\./, '') : ''}: ${issue.message} (checked as ${message})`, 'fix the value; use Envoy v3 field names');
}

/**
 * match.proxy.proxyVersion: an RE2 pattern istiod matches (unanchored) against the proxy's ISTIO_VERSION node
 * metadata, a proxy without one never matching (proxyMatch, pilot/pkg/model/envoyfilter.go). rig proxy reports
 * ISTIO_VERSION (core/version.ts); a pattern that misses it is valid but patches no rig proxy, which is said here.
 */
function validateProxyVersion(pattern: string | undefined, at: FieldPath, r: Reporter): void {
  if (pattern === undefined || pattern === '') return;
  const problem = regexProblem(pattern);
  if (problem) return r.error(at, `invalid regex for proxy version: ${problem}`, 'write an RE2 regular expression such as ^1\\.31.*');
  if (!proxyVersionMatches(pattern, ISTIO_VERSION)) {
    r.warn(at, `proxyVersion "${pattern}" does not match ${ISTIO_VERSION}, the ISTIO_VERSION rig proxy reports (the Istio release Rigging follows): the patch applies to no rig proxy, as it applies to no Istio ${ISTIO_VERSION} proxy`, `match ${ISTIO_VERSION} (e.g. ^1\\.31.*) or remove proxyVersion; other proxies are matched by the ISTIO_VERSION they report`);
  }
}

/** istiod's proxyVersion test: the pattern found anywhere in the version (Go's MatchString); no version, no match. */
export function proxyVersionMatches(pattern: string, version: string): boolean {
  return version !== '' && RE2JS.compile(pattern).matcher(version).find();
}

/**
 * applyTo BOOTSTRAP: istiod merges such patches only into the bootstrap it serves over xDS to an istio-agent that
 * asks for one (BootstrapGenerator, pilot/pkg/xds/bootstrapds.go), which the agent does with BOOTSTRAP_XDS_AGENT=true,
 * off by default (pilot/cmd/pilot-agent/options). rig proxy starts from its own bootstrap, as a default
 * istio-agent does: the patch has no effect. The value is still checked as an Envoy Bootstrap, as istiod does.
 */
function validateBootstrapPatch(p: EnvoyFilterConfigPatch, at: FieldPath, r: Reporter): void {
  r.warn([...at, 'applyTo'], 'applyTo BOOTSTRAP is not supported by Rigging and has no effect, as in Istio by default (istiod patches the bootstrap only for an istio-agent started with BOOTSTRAP_XDS_AGENT=true; rig proxy starts from its own bootstrap)', 'set bootstrap fields with rig proxy flags (or its own bootstrap, rig proxy -c), or remove the patch');
  if (p.patch?.operation === undefined) return r.error(at, 'patch.operation is missing', 'use MERGE');
  // istiod's bootstrap generator applies MERGE only.
  if (p.patch.operation !== 'MERGE') r.error([...at, 'patch', 'operation'], `operation ${p.patch.operation} does not apply to applyTo BOOTSTRAP (Istio ignores it)`, 'use MERGE');
  if (p.patch.value === undefined) return r.error([...at, 'patch', 'value'], 'operation MERGE needs a patch.value (a envoy.config.bootstrap.v3.Bootstrap)', 'add the value');
  checkPatchValue('envoy.config.bootstrap.v3.Bootstrap', p.patch.value, [...at, 'patch', 'value'], r);
}

/**
 * patch.filterClass is in Istio's API but istiod never reads it (its convertToEnvoyFilterWrapper
 * keeps applyTo, match, operation and value only; istio/istio#51177, "Not implemented"): the filter
 * goes where the operation puts it. Rigging applies it the same way and says so.
 */
function validateFilterClass(p: EnvoyFilterConfigPatch, at: FieldPath, r: Reporter): void {
  const fc = p.patch?.filterClass;
  if (fc === undefined || fc === 'UNSPECIFIED') return;
  r.warn(
    [...at, 'patch', 'filterClass'],
    `filterClass ${fc} has no effect, as in Istio: istiod does not implement patch.filterClass (istio/istio#51177), so the filter goes where operation ${p.patch?.operation ?? 'INVALID'} puts it`,
    "to place an HTTP filter before Istio's authentication, authorization or stats filter, use INSERT_BEFORE with subFilter.name envoy.filters.http.jwt_authn, envoy.filters.http.rbac or istio.stats",
  );
}

/** An EXTENSION_CONFIG value: a named config of a filter type rig proxy implements (HTTP or network: the filter naming it decides). */
function validateExtensionConfig(value: Record<string, unknown>, at: FieldPath, r: Reporter): void {
  const v = unwrapTypedStructs(value) as Record<string, unknown>;
  if (typeof v.name !== 'string' || !v.name) r.error(at, 'an extension config needs a name (the name a filter gives in config_discovery)', 'add name');
  const tc = v.typed_config as Record<string, unknown> | undefined;
  const type = tc?.['@type'];
  if (typeof type !== 'string') {
    r.error(at, 'an extension config needs typed_config with an @type', 'add typed_config');
    return;
  }
  const asFilter = { name: '', typed_config: tc };
  if (unknownFilterReason('HTTP', asFilter) && unknownFilterReason('network', asFilter)) r.error([...at, 'typed_config'], `rig proxy has no HTTP or network filter of type ${type}; it would reject (NACK) the extension config`, 'use a filter type rig proxy implements');
}
