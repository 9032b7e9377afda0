// EnvoyFilter: what Rigging's control plane applies, and an error for every part it does not
// (Istio ignores some combinations silently; here the user hears about them at apply time).
// Patch values are checked against Envoy's protos, and filters `rig proxy` lacks are refused.
import { normalizePatchValue, unknownFilterReason, unwrapTypedStructs } from '../../envoy/index.ts';
import type { FieldPath } from '../source-map.ts';
import type { EnvoyFilterApplyTo, EnvoyFilterConfigPatch, EnvoyFilterOperation, EnvoyFilterSpec } from '../types/networking.ts';
import type { Reporter } from './reporter.ts';
import { GATEWAY_NAME_LABEL } from '../kinds.ts';

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
  // Istio accepts targetRefs here but istiod applies such an EnvoyFilter to no proxy (it skips them).
  if (spec.targetRefs?.length) r.error(['spec', 'targetRefs'], 'an EnvoyFilter with targetRefs applies to no proxy (istiod does not implement targetRefs for EnvoyFilter and skips it)', `select the proxies with workloadSelector.labels (a Gateway API gateway's proxies carry ${GATEWAY_NAME_LABEL}: <gateway name>)`);
  spec.configPatches?.forEach((p, i) => validatePatch(p, ['spec', 'configPatches', i], r));
}

function validatePatch(p: EnvoyFilterConfigPatch, at: FieldPath, r: Reporter): void {
  const applyTo = p.applyTo ?? 'INVALID';
  const target = ENVOY_FILTER_TARGETS[applyTo];
  if (!target) {
    const what = p.applyTo === undefined ? 'applyTo is missing' : `applyTo ${applyTo} is not supported by Rigging`;
    r.error(p.applyTo === undefined ? at : [...at, 'applyTo'], what, `use one of ${Object.keys(ENVOY_FILTER_TARGETS).join(', ')}`);
    return;
  }
  const m = p.match ?? {};
  const mat = [...at, 'match'];
  if (m.proxy?.proxyVersion !== undefined) r.error([...mat, 'proxy', 'proxyVersion'], 'match.proxy.proxyVersion is not supported (rig proxy reports its own version, not an Istio one, so an Istio version pattern would never match it)', 'remove it; select proxies with workloadSelector or match.proxy.metadata');
  for (const k of ['listener', 'routeConfiguration', 'cluster'] as const) {
    if (m[k] === undefined || k === target.match) continue;
    if (target.match) r.error([...mat, k], `match.${k} does not apply to applyTo ${applyTo} (it takes match.${target.match})`, `use match.${target.match}`);
    else r.error([...mat, k], `match.${k} does not apply to applyTo ${applyTo} (Istio serves the config by its name to every proxy the EnvoyFilter selects)`, 'remove it; select proxies with workloadSelector');
  }
  const l = m.listener;
  // Istio's API marks ListenerMatch.port_name "Not implemented" and istiod's listenerMatch never reads
  // it: under Istio the patch applies to every port. Refused rather than widened silently.
  if (l?.portName !== undefined) r.error([...mat, 'listener', 'portName'], 'match.listener.portName is not implemented by Istio (istiod ignores it, so the patch would apply to listeners of every port)', 'use portNumber, or remove it to patch every port as Istio would');
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
  const res = normalizePatchValue(target.message, p.patch.value);
  for (const issue of res.issues) r.error(valueAt, `patch.value${issue.path ? '.' + issue.path.replace(/^\./, '') : ''}: ${issue.message} (checked as ${target.message})`, 'fix the value; use Envoy v3 field names');
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
