// Istio's locality load balancing applied to a load assignment, relative to the proxy asking for it:
// `distribute` re-weights localities (and drops those no rule sends traffic to); `failover` and
// `failoverPriority` assign Envoy priorities (0 = same locality or labels, then further away). As in
// Istio, failover applies only when the cluster has outlier detection (otherwise Envoy would never
// move to a lower priority) and `enabled: false` turns the setting off.
import type { LoadBalancerSettings } from '../../api/index.ts';
import type { Endpoint } from '../../model/service.ts';

export type LocalityLbSetting = NonNullable<LoadBalancerSettings['localityLbSetting']>;

export interface LocalityGroup {
  /** `region/zone/subzone` (parts may be empty). */
  locality: string;
  endpoints: Endpoint[];
  /** The locality's load_balancing_weight. */
  weight: number;
  priority: number;
}

/** The setting in force: the DestinationRule's, else the mesh's; none when absent or `enabled: false`. */
export function effectiveLocalitySetting(fromRule: LocalityLbSetting | undefined, fromMesh: LocalityLbSetting | undefined): LocalityLbSetting | undefined {
  const s = fromRule ?? fromMesh;
  if (!s || s.enabled === false) return undefined;
  return s;
}

/** Whether the setting changes anything for a cluster (failover needs outlier detection). */
export function localityLbActive(s: LocalityLbSetting | undefined, outlierDetection: boolean): s is LocalityLbSetting {
  if (!s) return false;
  if (s.distribute?.length) return true;
  return outlierDetection;
}

function split(l: string): [string, string, string] {
  const [region = '', zone = '', subzone = ''] = l.split('/');
  return [region, zone, subzone];
}

/** Istio's LocalityMatch: `region/zone/subzone` with `*` (or an omitted tail) matching anything. */
export function localityMatches(locality: string, rule: string): boolean {
  const [r, z, s] = split(locality);
  const [rr, rz, rs] = split(rule);
  return (rr === '*' || rr === r) && (rz === '*' || rz === '' || rz === z) && (rs === '*' || rs === '' || rs === s);
}

/** 0: same region/zone/subzone, 1: same region/zone, 2: same region, 3: elsewhere. */
function localityPriority(proxy: string, ep: string): number {
  const [pr, pz, ps] = split(proxy);
  const [er, ez, es] = split(ep);
  if (pr !== er) return 3;
  if (pz !== ez) return 2;
  return ps === es ? 0 : 1;
}

/** Applies the setting to the groups (one per locality, priority 0) for a proxy at `proxyLocality` with `proxyLabels`. */
export function applyLocalityLb(groups: LocalityGroup[], proxyLocality: string, proxyLabels: Record<string, string>, s: LocalityLbSetting, outlierDetection: boolean): LocalityGroup[] {
  if (s.distribute?.length) return distribute(groups, proxyLocality, s.distribute);
  if (!outlierDetection) return groups;
  let out = groups;
  if (s.failoverPriority?.length) {
    out = failoverByLabels(out, proxyLabels, s.failoverPriority);
    if (!s.failover?.length) return out;
  }
  return failoverByLocality(out, proxyLocality, s.failover ?? []);
}

function distribute(groups: LocalityGroup[], proxyLocality: string, rules: NonNullable<LocalityLbSetting['distribute']>): LocalityGroup[] {
  const rule = rules.find((r) => localityMatches(proxyLocality, r.from ?? ''));
  if (!rule) return groups;
  const weights = new Map<LocalityGroup, number>();
  const unmatched = new Set(groups);
  for (const [to, share] of Object.entries(rule.to ?? {})) {
    // A wildcard may match several localities: the share is divided in proportion to their weights.
    const hit = [...unmatched].filter((g) => localityMatches(g.locality, to));
    const total = hit.reduce((n, g) => n + g.weight, 0);
    for (const g of hit) {
      unmatched.delete(g);
      const w = Math.ceil((g.weight * share) / total);
      if (w > 0) weights.set(g, w);
    }
  }
  return groups.filter((g) => weights.has(g)).map((g) => ({ ...g, weight: weights.get(g)! }));
}

/** `failoverPriority` labels (`key` or `key=value`): an endpoint's priority is the number of labels left when the first one differs. */
function failoverByLabels(groups: LocalityGroup[], proxyLabels: Record<string, string>, labels: string[]): LocalityGroup[] {
  if (!Object.keys(proxyLabels).length) return groups;
  const wanted = labels.map((l) => {
    const eq = l.indexOf('=');
    return eq < 0 ? { key: l, value: proxyLabels[l] ?? '' } : { key: l.slice(0, eq), value: l.slice(eq + 1) };
  });
  const out: LocalityGroup[] = [];
  for (const g of groups) {
    const byPriority = new Map<number, Endpoint[]>();
    for (const e of g.endpoints) {
      const miss = wanted.findIndex((w) => (e.labels[w.key] ?? '') !== w.value);
      const p = miss < 0 ? 0 : wanted.length - miss;
      byPriority.set(p, [...(byPriority.get(p) ?? []), e]);
    }
    for (const [p, eps] of byPriority) out.push({ locality: g.locality, endpoints: eps, weight: eps.reduce((n, e) => n + (e.weight || 1), 0), priority: p });
  }
  return renumber(out);
}

function failoverByLocality(groups: LocalityGroup[], proxyLocality: string, failover: NonNullable<LocalityLbSetting['failover']>): LocalityGroup[] {
  const [proxyRegion] = split(proxyLocality);
  const rule = failover.find((f) => f.from === proxyRegion);
  return renumber(
    groups.map((g) => {
      let p = localityPriority(proxyLocality, g.locality);
      // Another region: the failover target region comes first, every other region after it.
      if (p === 3 && rule && split(g.locality)[0] !== rule.to) p = 4;
      return { ...g, priority: g.priority * 5 + p };
    }),
  );
}

/** Envoy wants priorities 0..N without gaps. */
function renumber(groups: LocalityGroup[]): LocalityGroup[] {
  const used = [...new Set(groups.map((g) => g.priority))].sort((a, b) => a - b);
  return groups.map((g) => ({ ...g, priority: used.indexOf(g.priority) })).sort((a, b) => a.priority - b.priority);
}
