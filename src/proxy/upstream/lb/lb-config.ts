// The cluster-level load-balancing settings every policy shares (Envoy's common_lb_config and the
// load assignment's policy), compiled once per cluster config.
//
// Locality weights and the overprovisioning factor come from a ClusterLoadAssignment
// (endpoints[].{locality, priority, load_balancing_weight}, policy): a STATIC/STRICT_DNS cluster
// carries it as `load_assignment`; for an EDS cluster the caller passes the current assignment
// (createLoadBalancer's `options.loadAssignment`).
import type { Locality } from '../host.ts';
import { bool, list, object, percent, uint, warnUnsupported, type ConfigIssues, type Json } from './config-fields.ts';

export interface CommonLbConfig {
  /** healthy_panic_threshold in percent (default 50; 0 disables panic mode). */
  readonly panicThreshold: number;
  /** common_lb_config.locality_weighted_lb_config is set. */
  readonly localityWeighted: boolean;
  /** load_assignment.policy.overprovisioning_factor in percent (default 140). */
  readonly overprovisioningFactor: number;
  /** load_assignment.policy.weighted_priority_health: priority health by host weight, not count. */
  readonly weightedPriorityHealth: boolean;
  /** Locality weight by localityKey(priority, locality). */
  readonly localityWeights: ReadonlyMap<string, number>;
  /** consistent_hashing_lb_config.use_hostname_for_hashing (ring hash / maglev). */
  readonly useHostnameForHashing: boolean;
  /** consistent_hashing_lb_config.hash_balance_factor in percent (0: unbounded). */
  readonly hashBalanceFactor: number;
}

export function localityKey(priority: number, l: Locality): string {
  return `${priority}|${l.region ?? ''}|${l.zone ?? ''}|${l.sub_zone ?? ''}`;
}

const COMMON_FIELDS = ['healthy_panic_threshold', 'locality_weighted_lb_config', 'consistent_hashing_lb_config'];

export type ClusterLbSettings = Pick<CommonLbConfig, 'panicThreshold' | 'localityWeighted' | 'useHostnameForHashing' | 'hashBalanceFactor'>;
export type AssignmentLbSettings = Pick<CommonLbConfig, 'overprovisioningFactor' | 'weightedPriorityHealth' | 'localityWeights'>;

/** The cluster's own settings (common_lb_config). */
export function compileClusterLbSettings(cluster: Json, issues: ConfigIssues): ClusterLbSettings {
  const common = object(cluster.common_lb_config, 'common_lb_config', issues);
  warnUnsupported(common, COMMON_FIELDS, 'common_lb_config', issues);
  const panicThreshold = percent(common, 'healthy_panic_threshold', 'common_lb_config', issues, 50);
  const localityWeighted = object(common?.locality_weighted_lb_config, 'common_lb_config.locality_weighted_lb_config', issues) !== undefined;
  const ch = object(common?.consistent_hashing_lb_config, 'common_lb_config.consistent_hashing_lb_config', issues);
  warnUnsupported(ch, ['use_hostname_for_hashing', 'hash_balance_factor'], 'common_lb_config.consistent_hashing_lb_config', issues);
  const useHostnameForHashing = bool(ch, 'use_hostname_for_hashing', 'common_lb_config.consistent_hashing_lb_config', issues, false);
  const hashBalanceFactor = uint(ch, 'hash_balance_factor', 'common_lb_config.consistent_hashing_lb_config', issues, 0);
  if (hashBalanceFactor > 0 && hashBalanceFactor < 100) {
    issues.errors.push(`common_lb_config.consistent_hashing_lb_config.hash_balance_factor: must be at least 100 (percent of the average load), got ${hashBalanceFactor}`);
  }
  return { panicThreshold, localityWeighted, useHostnameForHashing, hashBalanceFactor: hashBalanceFactor >= 100 ? hashBalanceFactor : 0 };
}

/** Settings from a ClusterLoadAssignment (policy, locality weights); `path` names it in errors. */
export function compileAssignmentLbSettings(la: Json | undefined, path: string, issues: ConfigIssues): AssignmentLbSettings {
  const policy = object(la?.policy, `${path}.policy`, issues);
  const overprovisioningFactor = uint(policy, 'overprovisioning_factor', `${path}.policy`, issues, 140);
  if (overprovisioningFactor === 0) issues.errors.push(`${path}.policy.overprovisioning_factor: must be greater than 0`);
  const weightedPriorityHealth = bool(policy, 'weighted_priority_health', `${path}.policy`, issues, false);
  const localityWeights = new Map<string, number>();
  list(la?.endpoints, `${path}.endpoints`, issues).forEach((e, i) => {
    const ep = `${path}.endpoints[${i}]`;
    const lle = object(e, ep, issues);
    if (!lle) return;
    const locality = (object(lle.locality, `${ep}.locality`, issues) ?? {}) as Locality;
    const priority = uint(lle, 'priority', ep, issues, 0);
    const weight = uint(lle, 'load_balancing_weight', ep, issues, 0);
    if (weight > 0) localityWeights.set(localityKey(priority, locality), weight);
  });
  return { overprovisioningFactor: overprovisioningFactor || 140, weightedPriorityHealth, localityWeights };
}

export function compileCommonLbConfig(cluster: Json, issues: ConfigIssues): CommonLbConfig {
  const la = object(cluster.load_assignment, 'load_assignment', issues);
  return { ...compileClusterLbSettings(cluster, issues), ...compileAssignmentLbSettings(la, 'load_assignment', issues) };
}
