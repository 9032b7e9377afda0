// Applies EnvoyFilter patches to the listeners, clusters and route configurations generated for
// one proxy, with Istio's matching (match.context, listener / listener filter / filter chain / filter / sub-filter,
// route configuration / virtual host / route, cluster) and operations (MERGE, ADD, REMOVE,
// INSERT_BEFORE, INSERT_AFTER, INSERT_FIRST, REPLACE). Generated resources are shared between
// proxies (memoized per snapshot): a patch copies the objects on the path it changes, never
// changing a generated one in place.
// Order, as Istio: LISTENER, then per listener LISTENER_FILTER, FILTER_CHAIN, NETWORK_FILTER, HTTP_FILTER (and the
// route patches of inline route configurations); listeners and clusters ADDed are not patched further.
import type { EnvoyFilterContext } from '../../../api/types/networking.ts';
import { HCM_TYPE, type EnvoyJson } from '../../../envoy/index.ts';
import { HTTP_PROXY_ROUTE } from '../names.ts';
import { warnOnce } from '../../../model/config-warnings.ts';
import type { Proxy } from '../../../model/proxy.ts';
import type { CompiledPatch, PatchesByTarget } from './envoy-filter-select.ts';
import { protoMerge } from './proto-merge.ts';

export type PatchContext = Exclude<EnvoyFilterContext, 'ANY'>;

const VIRTUAL_LISTENERS = new Set(['virtualInbound', 'virtualOutbound']);

function contextMatches(p: CompiledPatch, ctx: PatchContext): boolean {
  return p.context === 'ANY' || p.context === ctx;
}

/**
 * Applies one list operation. `matches` selects the elements a relative operation refers to;
 * undefined means the patch names none: MERGE and REMOVE then act on every element, and, as in
 * Istio, INSERT_BEFORE inserts first and INSERT_AFTER last.
 */
export function applyListOperation(list: EnvoyJson[], p: CompiledPatch, matches: ((x: EnvoyJson) => boolean) | undefined): EnvoyJson[] {
  const value = () => structuredClone(p.value as EnvoyJson);
  const selected = matches ?? (() => true);
  switch (p.operation) {
    case 'ADD':
      return [...list, value()];
    case 'INSERT_FIRST':
      return [value(), ...list];
    case 'INSERT_BEFORE':
    case 'INSERT_AFTER': {
      if (!matches) return p.operation === 'INSERT_BEFORE' ? [value(), ...list] : [...list, value()];
      const i = list.findIndex(matches);
      if (i < 0) return list;
      const at = p.operation === 'INSERT_BEFORE' ? i : i + 1;
      return [...list.slice(0, at), value(), ...list.slice(at)];
    }
    case 'REPLACE': {
      const i = list.findIndex(selected);
      return i < 0 ? list : list.map((x, j) => (j === i ? value() : x));
    }
    case 'REMOVE':
      return list.filter((x) => !selected(x));
    case 'MERGE':
      return list.map((x) => (selected(x) ? protoMerge(x, p.value as EnvoyJson, p.origin) : x));
    default:
      return list;
  }
}

/**
 * Istio's order of operations on a list: filters (HTTP, network) take the insertions, REPLACE and
 * REMOVE first and MERGE last; filter chains, virtual hosts and routes take MERGE and REMOVE on
 * the generated elements first and the additions last (so added elements are not merged).
 */
const FILTER_PHASES: readonly (readonly string[])[] = [['ADD', 'INSERT_FIRST', 'INSERT_BEFORE', 'INSERT_AFTER', 'REPLACE', 'REMOVE'], ['MERGE']];
const ELEMENT_PHASES: readonly (readonly string[])[] = [['MERGE', 'REMOVE', 'REPLACE'], ['ADD', 'INSERT_FIRST', 'INSERT_BEFORE', 'INSERT_AFTER']];

function applyInPhases(list: EnvoyJson[], patches: readonly CompiledPatch[], phases: readonly (readonly string[])[], matcherFor: (p: CompiledPatch) => ((x: EnvoyJson) => boolean) | undefined): EnvoyJson[] {
  let out = list;
  for (const phase of phases) for (const p of patches) if (phase.includes(p.operation)) out = applyListOperation(out, p, matcherFor(p));
  return out;
}

/** A filter patch naming no filter: Istio's REMOVE and REPLACE then do nothing (validation refuses them). */
function filterMatcher(name: string | undefined): ((x: EnvoyJson) => boolean) | undefined {
  return name ? (f) => f.name === name : undefined;
}

function withoutUnnamedRemovals(patches: readonly CompiledPatch[], nameOf: (p: CompiledPatch) => string | undefined): CompiledPatch[] {
  return patches.filter((p) => !((p.operation === 'REMOVE' || p.operation === 'REPLACE') && !nameOf(p)));
}

// ---- listeners ----

export function listenerContext(proxy: Proxy, l: EnvoyJson): PatchContext {
  if (proxy.type === 'router') return 'GATEWAY';
  return l.traffic_direction === 'INBOUND' ? 'SIDECAR_INBOUND' : 'SIDECAR_OUTBOUND';
}

/**
 * The ports a listener stands for: its own, and in explicit mode (listeners on local ports of
 * their own) the workload or gateway server port it serves.
 */
function listenerPorts(proxy: Proxy, l: EnvoyJson): number[] {
  const port = ((l.address as EnvoyJson | undefined)?.socket_address as EnvoyJson | undefined)?.port_value;
  if (typeof port !== 'number') return [];
  const out = [port];
  if (proxy.explicit && (l.traffic_direction === 'INBOUND' || proxy.type === 'router')) {
    for (const [workloadPort, local] of Object.entries(proxy.explicit.inboundPorts)) if (local === port) out.push(Number(workloadPort));
  }
  return out;
}

function listenerMatches(proxy: Proxy, l: EnvoyJson, p: CompiledPatch, ctx: PatchContext): boolean {
  if (!contextMatches(p, ctx)) return false;
  const m = p.match.listener;
  if (!m) return true;
  if (m.name && m.name !== l.name) return false;
  // The virtual listeners carry the port in each filter chain's destination_port instead.
  if (m.portNumber && !VIRTUAL_LISTENERS.has(String(l.name)) && !listenerPorts(proxy, l).includes(m.portNumber)) return false;
  return true;
}

function chainMatches(l: EnvoyJson, fc: EnvoyJson, p: CompiledPatch): boolean {
  const m = p.match.listener;
  if (!m) return true;
  const fm = (fc.filter_chain_match ?? {}) as EnvoyJson;
  const want = m.filterChain;
  if (want?.name && want.name !== fc.name) return false;
  if (want?.sni && !((fm.server_names as string[] | undefined) ?? []).includes(want.sni)) return false;
  if (want?.transportProtocol && want.transportProtocol !== fm.transport_protocol) return false;
  // istiod: a comma-separated list, every protocol among the chain's application_protocols (no trimming).
  if (want?.applicationProtocols && !want.applicationProtocols.split(',').every((ap) => ((fm.application_protocols as string[] | undefined) ?? []).includes(ap))) return false;
  if (want?.destinationPort && want.destinationPort !== fm.destination_port) return false;
  if (m.portNumber && VIRTUAL_LISTENERS.has(String(l.name)) && fm.destination_port !== m.portNumber) return false;
  // FILTER_CHAIN patches select chains holding the named filter; filter patches select the filter itself.
  if (p.applyTo === 'FILTER_CHAIN' && want?.filter?.name && !((fc.filters as EnvoyJson[] | undefined) ?? []).some((f) => f.name === want.filter?.name)) return false;
  return true;
}

const subFilterName = (p: CompiledPatch) => p.match.listener?.filterChain?.filter?.subFilter?.name;
const filterName = (p: CompiledPatch) => p.match.listener?.filterChain?.filter?.name;

function patchHttpFilters(hcm: EnvoyJson, patches: readonly CompiledPatch[]): EnvoyJson {
  const filters = applyInPhases((hcm.http_filters as EnvoyJson[] | undefined) ?? [], withoutUnnamedRemovals(patches, subFilterName), FILTER_PHASES, (p) => filterMatcher(subFilterName(p)));
  return { ...hcm, http_filters: filters };
}

/** The same array when every element is the same object (nothing was patched). */
function sameElements(a: readonly EnvoyJson[], b: readonly EnvoyJson[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function patchChain(proxy: Proxy, l: EnvoyJson, fc: EnvoyJson, ctx: PatchContext, t: PatchesByTarget): EnvoyJson {
  const applies = (p: CompiledPatch) => listenerMatches(proxy, l, p, ctx) && chainMatches(l, fc, p);
  const before = (fc.filters as EnvoyJson[] | undefined) ?? [];
  const network = withoutUnnamedRemovals((t.get('NETWORK_FILTER') ?? []).filter(applies), filterName);
  let filters = applyInPhases(before, network, FILTER_PHASES, (p) => filterMatcher(filterName(p)));
  const http = (t.get('HTTP_FILTER') ?? []).filter(applies);
  const routes = t.has('ROUTE_CONFIGURATION') || t.has('VIRTUAL_HOST') || t.has('HTTP_ROUTE');
  if (http.length || routes) {
    filters = filters.map((f) => {
      const tc = f.typed_config as EnvoyJson | undefined;
      if (tc?.['@type'] !== HCM_TYPE) return f;
      const mine = http.filter((p) => !filterName(p) || filterName(p) === f.name);
      let hcm = mine.length ? patchHttpFilters(tc, mine) : tc;
      if (routes && hcm.route_config) {
        const rc = patchRouteConfig(t, ctx, hcm.route_config as EnvoyJson);
        if (rc !== hcm.route_config) hcm = { ...hcm, route_config: rc };
      }
      return hcm === tc ? f : { ...f, typed_config: hcm };
    });
  }
  return sameElements(filters, before) ? fc : { ...fc, filters };
}

/** Istio applies listener filter patches one by one in patch order (no phases). */
const LISTENER_FILTER_PHASES: readonly (readonly string[])[] = [['ADD', 'INSERT_FIRST', 'INSERT_BEFORE', 'INSERT_AFTER', 'REPLACE', 'REMOVE', 'MERGE']];

const listenerFilterName = (p: CompiledPatch) => p.match.listener?.listenerFilter;

/**
 * LISTENER_FILTER, as istiod's patchListenerFilters: after the LISTENER patches, before the
 * chains; match.listener.listenerFilter names the filter a relative operation acts on or next to
 * (INSERT_BEFORE without it inserts first, INSERT_AFTER last; REPLACE, REMOVE and MERGE without it
 * do nothing).
 */
function patchListenerFilters(proxy: Proxy, l: EnvoyJson, ctx: PatchContext, t: PatchesByTarget): EnvoyJson {
  const patches = (t.get('LISTENER_FILTER') ?? []).filter((p) => listenerMatches(proxy, l, p, ctx) && !(p.operation === 'MERGE' && !listenerFilterName(p)));
  if (!patches.length) return l;
  const before = (l.listener_filters as EnvoyJson[] | undefined) ?? [];
  const filters = applyInPhases(before, withoutUnnamedRemovals(patches, listenerFilterName), LISTENER_FILTER_PHASES, (p) => filterMatcher(listenerFilterName(p)));
  return sameElements(filters, before) ? l : { ...l, listener_filters: filters };
}

function patchListener(proxy: Proxy, generated: EnvoyJson, ctx: PatchContext, t: PatchesByTarget): EnvoyJson {
  const l = patchListenerFilters(proxy, generated, ctx, t);
  const before = (l.filter_chains as EnvoyJson[] | undefined) ?? [];
  const patches = (t.get('FILTER_CHAIN') ?? []).filter((p) => listenerMatches(proxy, l, p, ctx));
  // The generated chains are merged, removed and patched; chains ADDed come after, as given.
  const [edits, additions] = ELEMENT_PHASES;
  let chains = applyInPhases(before, patches, [edits], (p) => (fc) => chainMatches(l, fc, p));
  chains = chains.map((fc) => patchChain(proxy, l, fc, ctx, t));
  chains = applyInPhases(chains, patches, [additions], () => undefined);
  return sameElements(chains, before) ? l : { ...l, filter_chains: chains };
}

/** The contexts a proxy's own configuration has (where a patch that ADDs a whole resource lands). */
function proxyContexts(proxy: Proxy): PatchContext[] {
  return proxy.type === 'router' ? ['GATEWAY'] : ['SIDECAR_INBOUND', 'SIDECAR_OUTBOUND'];
}

function adds(p: CompiledPatch, proxy: Proxy): boolean {
  return p.operation === 'ADD' && (p.context === 'ANY' || proxyContexts(proxy).includes(p.context));
}

const LISTENER_TARGETS = ['LISTENER', 'LISTENER_FILTER', 'FILTER_CHAIN', 'NETWORK_FILTER', 'HTTP_FILTER'] as const;

/** Explicit mode's plain proxied requests share one outbound listener: said once per patch, not skipped silently. */
function warnExplicitOutboundPorts(t: PatchesByTarget, proxy: Proxy): void {
  if (!proxy.explicit) return;
  for (const k of LISTENER_TARGETS) {
    for (const p of t.get(k) ?? []) {
      if (!p.match.listener?.portNumber || p.operation === 'ADD' || (p.context !== 'ANY' && p.context !== 'SIDECAR_OUTBOUND')) continue;
      warnOnce('envoyfilter', `EnvoyFilter ${p.origin}: explicit-mode sidecars (${proxy.namespace}/${proxy.workloadName}) send plain HTTP_PROXY requests for every outbound port through one listener (${HTTP_PROXY_ROUTE}), so a SIDECAR_OUTBOUND listener.portNumber matches only the per-port listeners that CONNECT tunnels go through and dedicated egress listeners; to patch all outbound HTTP, leave portNumber out`);
    }
  }
}

export function patchListeners(t: PatchesByTarget, proxy: Proxy, listeners: readonly EnvoyJson[]): EnvoyJson[] {
  warnExplicitOutboundPorts(t, proxy);
  const out: EnvoyJson[] = [];
  for (const generated of listeners) {
    const ctx = listenerContext(proxy, generated);
    let l: EnvoyJson | undefined = generated;
    for (const p of t.get('LISTENER') ?? []) {
      if (p.operation === 'ADD' || !listenerMatches(proxy, l, p, ctx)) continue;
      l = p.operation === 'REMOVE' ? undefined : protoMerge(l, p.value as EnvoyJson, p.origin);
      if (!l) break;
    }
    if (l) out.push(patchListener(proxy, l, ctx, t));
  }
  for (const p of t.get('LISTENER') ?? []) if (adds(p, proxy)) out.push(structuredClone(p.value as EnvoyJson));
  return out;
}

// ---- route configurations ----

/** The port a route configuration serves, from its name: `9080`, `host:9080`, `http.8080`, `https.443.…`, `inbound|9080||`, `inbound|http|9080`. */
function routePort(name: string): number | undefined {
  const gw = /^https?\.(\d+)(\.|$)/.exec(name) ?? /^inbound\|(\d+)\|/.exec(name);
  if (gw) return Number(gw[1]);
  const tail = /(\d+)$/.exec(name);
  return tail ? Number(tail[1]) : undefined;
}

/** `https.<port>.<portName>.<gateway>.<namespace>` → port name and `namespace/gateway` (Istio's ParseGatewayRDSRouteName). */
function gatewayOfRoute(name: string): { portName?: string; gateway?: string } {
  const parts = name.split('.');
  if (parts[0] !== 'https' || parts.length < 5) return {};
  return { portName: parts[2], gateway: `${parts[parts.length - 1]}/${parts.slice(3, -1).join('.')}` };
}

function routeConfigMatches(rc: EnvoyJson, p: CompiledPatch, ctx: PatchContext): boolean {
  if (!contextMatches(p, ctx)) return false;
  const m = p.match.routeConfiguration;
  if (!m) return true;
  const name = String(rc.name ?? '');
  if (m.name && m.name !== name) return false;
  if (m.portNumber && routePort(name) !== m.portNumber && !(name === HTTP_PROXY_ROUTE && p.applyTo !== 'ROUTE_CONFIGURATION')) return false;
  if (m.portName || m.gateway) {
    const gw = ctx === 'GATEWAY' ? gatewayOfRoute(name) : {};
    if (m.portName && m.portName !== gw.portName) return false;
    if (m.gateway && m.gateway !== gw.gateway) return false;
  }
  return true;
}

/**
 * An explicit-mode sidecar routes every outbound port through one route configuration
 * (http_proxy) whose virtual hosts are named `host:port`: there a portNumber selects the virtual
 * hosts of that port, as the per-port route configuration would under Istio.
 */
function vhostMatches(rc: EnvoyJson, vh: EnvoyJson, p: CompiledPatch): boolean {
  const port = p.match.routeConfiguration?.portNumber;
  if (port && rc.name === HTTP_PROXY_ROUTE && !String(vh.name ?? '').endsWith(`:${port}`)) return false;
  const m = p.match.routeConfiguration?.vhost;
  if (!m) return true;
  if (m.name && m.name !== vh.name) return false;
  if (m.domainName && !((vh.domains as string[] | undefined) ?? []).includes(m.domainName)) return false;
  return true;
}

function routeMatches(r: EnvoyJson, p: CompiledPatch): boolean {
  const m = p.match.routeConfiguration?.vhost?.route;
  if (!m) return true;
  if (m.name && m.name !== r.name) return false;
  switch (m.action) {
    case 'ROUTE':
      return r.route !== undefined;
    case 'REDIRECT':
      return r.redirect !== undefined;
    case 'DIRECT_RESPONSE':
      return r.direct_response !== undefined;
    default:
      return true;
  }
}

/** A route configuration with the ROUTE_CONFIGURATION, VIRTUAL_HOST and HTTP_ROUTE patches that match it (the same object when none does). */
export function patchRouteConfig(t: PatchesByTarget, ctx: PatchContext, generated: EnvoyJson): EnvoyJson {
  let rc = generated;
  for (const p of t.get('ROUTE_CONFIGURATION') ?? []) if (routeConfigMatches(rc, p, ctx)) rc = protoMerge(rc, p.value as EnvoyJson, p.origin);
  const at = rc;
  const vhostPatches = (t.get('VIRTUAL_HOST') ?? []).filter((p) => routeConfigMatches(at, p, ctx));
  if (vhostPatches.length) rc = { ...rc, virtual_hosts: applyInPhases((rc.virtual_hosts as EnvoyJson[] | undefined) ?? [], vhostPatches, ELEMENT_PHASES, (p) => (vh) => vhostMatches(at, vh, p)) };
  const routePatches = (t.get('HTTP_ROUTE') ?? []).filter((p) => routeConfigMatches(at, p, ctx));
  if (routePatches.length) {
    const vhosts = ((rc.virtual_hosts as EnvoyJson[] | undefined) ?? []).map((vh) => {
      const mine = routePatches.filter((p) => vhostMatches(at, vh, p));
      if (!mine.length) return vh;
      return { ...vh, routes: applyInPhases((vh.routes as EnvoyJson[] | undefined) ?? [], mine, ELEMENT_PHASES, (p) => (p.match.routeConfiguration?.vhost?.route ? (r) => routeMatches(r, p) : undefined)) };
    });
    rc = { ...rc, virtual_hosts: vhosts };
  }
  return rc;
}

export function routeContext(proxy: Proxy): PatchContext {
  return proxy.type === 'router' ? 'GATEWAY' : 'SIDECAR_OUTBOUND';
}

// ---- clusters ----

export function clusterContext(proxy: Proxy, c: EnvoyJson): PatchContext {
  if (proxy.type === 'router') return 'GATEWAY';
  return String(c.name ?? '').startsWith('inbound|') ? 'SIDECAR_INBOUND' : 'SIDECAR_OUTBOUND';
}

function clusterMatches(c: EnvoyJson, p: CompiledPatch, ctx: PatchContext): boolean {
  if (!contextMatches(p, ctx)) return false;
  const m = p.match.cluster;
  if (!m) return true;
  const name = String(c.name ?? '');
  if (m.name) return m.name === name;
  // outbound|<port>|<subset>|<host> (inbound|<port>||)
  const [, port, subset, host] = name.split('|');
  if (m.portNumber && Number(port) !== m.portNumber) return false;
  if (m.subset && m.subset !== subset) return false;
  if (m.service && m.service !== host) return false;
  return true;
}

export function patchClusters(t: PatchesByTarget, proxy: Proxy, clusters: readonly EnvoyJson[]): EnvoyJson[] {
  const patches = t.get('CLUSTER') ?? [];
  const out: EnvoyJson[] = [];
  for (const generated of clusters) {
    const ctx = clusterContext(proxy, generated);
    let c: EnvoyJson | undefined = generated;
    for (const p of patches) {
      if (p.operation === 'ADD' || !clusterMatches(c, p, ctx)) continue;
      c = p.operation === 'REMOVE' ? undefined : protoMerge(c, p.value as EnvoyJson, p.origin);
      if (!c) break;
    }
    if (c) out.push(c);
  }
  for (const p of patches) if (adds(p, proxy)) out.push(structuredClone(p.value as EnvoyJson));
  return out;
}
