// DestinationRules as istiod indexes and picks them (pilot/pkg/model: push_context.go
// setDestinationRules and destinationRule, destination_rule.go mergeDestinationRule, sidecar.go
// SidecarScope.DestinationRule), built once per push context:
// - rules with a workloadSelector come first, then oldest first; a rule with a workloadSelector is
//   private to its namespace whatever its exportTo (validation refuses another exportTo);
// - rules of one namespace for one host are merged into the first when their exportTo sets are
//   equal (or the newer's is a superset) and their selectors are both absent or equal: the newer
//   adds the subsets the first lacks and, when the first has none, its top-level trafficPolicy.
//   An unselected rule so also fills in the selected rules of its host (when exportTo allows);
// - a proxy looks in its own namespace (the root namespace's private rules for a proxy there),
//   then in the service's namespace, then in the root namespace (rules exported to it). In the
//   list found, the first rule whose selector matches the proxy's labels wins, else the last
//   unselected one. As in istiod, a host found in the proxy's namespace with selected rules only
//   leaves the proxies they do not select without any rule (istio/istio#52691, #57719).
import type { DestinationRuleSpec, Resource } from '../api/index.ts';
import { hostMatches, labelsMatch, resolveShortName } from './service.ts';

/** What picks a rule: the proxy's namespace and labels. */
export interface DestinationRuleClient {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** An index entry: a rule, or several of one namespace and host merged into the first. */
export interface ConsolidatedDestinationRule {
  /** The first rule of `from`, with what the others added (a copy when they added anything). */
  readonly rule: Resource<DestinationRuleSpec>;
  /** workloadSelector.matchLabels (empty: every workload of the namespace); undefined without workloadSelector. */
  readonly selector: Readonly<Record<string, string>> | undefined;
  readonly exportTo: ReadonlySet<string>;
  /** `namespace/name` of the rules it is made of, the first one first: its identity. */
  readonly from: readonly string[];
}

interface Entry {
  rule: Resource<DestinationRuleSpec>;
  readonly selector: Readonly<Record<string, string>> | undefined;
  readonly exportTo: ReadonlySet<string>;
  readonly from: string[];
}

/** Entries by resolved host (exact or wildcard). */
type ByHost = Map<string, Entry[]>;

const NONE: readonly ConsolidatedDestinationRule[] = [];

export class DestinationRuleIndex {
  readonly #root: string;
  /** Per namespace: its rules visible in it (exportTo empty, `*`, `.` or itself). */
  readonly #namespaceLocal = new Map<string, ByHost>();
  /** Per namespace: its rules exported beyond it. */
  readonly #exported = new Map<string, ByHost>();
  /** The root namespace's rules private to it (what its own proxies look up first). */
  readonly #rootLocal: ByHost = new Map();
  /** Per namespace: the selected entries its proxies may match. */
  readonly #selected = new Map<string, readonly Entry[]>();

  constructor(rules: readonly Resource<DestinationRuleSpec>[], rootNamespace: string) {
    this.#root = rootNamespace;
    // istiod's sortConfigBySelectorAndCreationTime: selected first, then creation time, name, namespace.
    const ordered = [...rules].sort(bySelectorAndCreation);
    for (const dr of ordered) {
      const ns = dr.metadata.namespace;
      const host = resolveShortName(dr.spec.host, ns);
      const exportTo: ReadonlySet<string> = new Set(dr.spec.workloadSelector ? ['.'] : (dr.spec.exportTo ?? []));
      if (exportTo.size === 0 || exportTo.has('*') || exportTo.has('.') || exportTo.has(ns)) merge(byNamespace(this.#namespaceLocal, ns), host, dr, exportTo);
      // The mesh's default exportTo for DestinationRules is `*` (no defaultDestinationRuleExportTo here).
      const privateOnly = exportTo.size === 1 && (exportTo.has('.') || exportTo.has(ns));
      if (!privateOnly) merge(byNamespace(this.#exported, ns), host, dr, exportTo);
      else if (ns === rootNamespace) merge(this.#rootLocal, host, dr, exportTo);
    }
    for (const [ns, byHost] of this.#namespaceLocal) this.#selected.set(ns, selectedOf(ns === rootNamespace ? this.#rootLocal : byHost));
    if (!this.#namespaceLocal.has(rootNamespace)) this.#selected.set(rootNamespace, selectedOf(this.#rootLocal));
  }

  /** The entries a proxy of `proxyNamespace` chooses among for `hostname` (a service of `serviceNamespace`). */
  rulesFor(proxyNamespace: string, hostname: string, serviceNamespace: string): readonly ConsolidatedDestinationRule[] {
    const own = mostSpecific(proxyNamespace === this.#root ? this.#rootLocal : this.#namespaceLocal.get(proxyNamespace), hostname);
    if (own) return own;
    return this.#exportedFrom(serviceNamespace, hostname, proxyNamespace) ?? this.#exportedFrom(this.#root, hostname, proxyNamespace) ?? NONE;
  }

  /**
   * Which selected rules a proxy matches, as a key ('' when none): proxies of one namespace with
   * the same key pick the same rule for every host.
   */
  selectionKey(client: DestinationRuleClient): string {
    const selected = this.#selected.get(client.namespace);
    if (!selected?.length) return '';
    let key = '';
    for (const e of selected) if (labelsMatch(e.selector, client.labels)) key += `${e.from[0]}|`;
    return key;
  }

  #exportedFrom(owner: string, hostname: string, client: string): readonly ConsolidatedDestinationRule[] | undefined {
    const found = mostSpecific(this.#exported.get(owner), hostname);
    const visible = found?.filter((e) => e.exportTo.size === 0 || e.exportTo.has('*') || e.exportTo.has(client));
    return visible?.length ? visible : undefined;
  }
}

/** The rule a proxy applies from `rules`: the first whose selector matches it, else the last without selector. */
export function pickDestinationRule(rules: readonly ConsolidatedDestinationRule[], client: DestinationRuleClient): ConsolidatedDestinationRule | undefined {
  let catchAll: ConsolidatedDestinationRule | undefined;
  for (const e of rules) {
    if (!e.selector) catchAll = e;
    else if (e.rule.metadata.namespace === client.namespace && labelsMatch(e.selector, client.labels)) return e;
  }
  return catchAll;
}

function bySelectorAndCreation(a: Resource<DestinationRuleSpec>, b: Resource<DestinationRuleSpec>): number {
  if (!a.spec.workloadSelector !== !b.spec.workloadSelector) return a.spec.workloadSelector ? -1 : 1;
  return compare(a.metadata.creationTimestamp ?? '', b.metadata.creationTimestamp ?? '') || compare(a.metadata.name, b.metadata.name) || compare(a.metadata.namespace, b.metadata.namespace);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byNamespace(m: Map<string, ByHost>, ns: string): ByHost {
  let byHost = m.get(ns);
  if (!byHost) m.set(ns, (byHost = new Map()));
  return byHost;
}

function selectedOf(byHost: ByHost): Entry[] {
  const out: Entry[] = [];
  for (const list of byHost.values()) for (const e of list) if (e.selector) out.push(e);
  return out;
}

/** istiod's mergeDestinationRule (with ENABLE_ENHANCED_DESTINATIONRULE_MERGE, on by default since 1.24). */
function merge(byHost: ByHost, host: string, dr: Resource<DestinationRuleSpec>, exportTo: ReadonlySet<string>): void {
  const selector = dr.spec.workloadSelector ? (dr.spec.workloadSelector.matchLabels ?? {}) : undefined;
  const entry: Entry = { rule: dr, selector, exportTo, from: [`${dr.metadata.namespace}/${dr.metadata.name}`] };
  const list = byHost.get(host);
  if (!list) {
    byHost.set(host, [entry]);
    return;
  }
  let appendSeparately = true;
  for (const existing of list) {
    const bothWithout = !selector && !existing.selector;
    const bothWith = !!selector && !!existing.selector;
    const sameSelector = bothWith && sameLabels(selector, existing.selector!);
    if (sameSet(exportTo, existing.exportTo)) appendSeparately = !(bothWithout || sameSelector);
    else if (existing.exportTo.size > 0 && isSuperset(exportTo, existing.exportTo)) appendSeparately = true;
    else {
      appendSeparately = true;
      continue;
    }
    if (bothWith && !sameSelector) {
      appendSeparately = true;
      continue;
    }
    if (bothWithout || sameSelector) appendSeparately = false;
    mergeInto(existing, dr);
  }
  if (appendSeparately) list.push(entry);
}

/** Adds `dr`'s subsets the entry lacks (a duplicate name keeps the first) and its trafficPolicy when the entry has none. */
function mergeInto(e: Entry, dr: Resource<DestinationRuleSpec>): void {
  const spec = e.rule.spec;
  const names = new Set(spec.subsets?.map((s) => s.name));
  const added = dr.spec.subsets?.filter((s) => !names.has(s.name)) ?? [];
  const subsets = added.length ? [...(spec.subsets ?? []), ...added] : spec.subsets;
  const trafficPolicy = spec.trafficPolicy ?? dr.spec.trafficPolicy;
  e.rule = { ...e.rule, spec: { ...spec, ...(subsets && { subsets }), ...(trafficPolicy && { trafficPolicy }) } };
  e.from.push(`${dr.metadata.namespace}/${dr.metadata.name}`);
}

/** istiod's MostSpecificHostMatch: the exact host, else the longest wildcard matching it. */
function mostSpecific(byHost: ByHost | undefined, hostname: string): Entry[] | undefined {
  if (!byHost) return undefined;
  const exact = byHost.get(hostname);
  if (exact) return exact;
  let best: string | undefined;
  for (const h of byHost.keys()) {
    if (h.startsWith('*') && hostMatches(h, hostname) && (best === undefined || h.length > best.length)) best = h;
  }
  return best === undefined ? undefined : byHost.get(best);
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && isSuperset(a, b);
}

function isSuperset(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const x of b) if (!a.has(x)) return false;
  return true;
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}
