// The load-balancer contract (Envoy's LoadBalancer::chooseHost). A load balancer is built once per
// host-set change from a compiled config and must make `pick` cheap: no allocation per pick where
// avoidable, no config parsing.
import type { Host } from '../host.ts';

export interface LoadBalancerContext {
  /** Hash computed from the route's hash_policy (header, cookie, source IP, query parameter); undefined when none applies. */
  hash?: bigint;
  /** Hosts already tried by this request (retry host predicate previous_hosts): avoid them when possible. */
  attempted?: ReadonlySet<Host>;
  /**
   * Retry priority envoy.retry_priorities.previous_priorities: priorities already attempted, whose
   * share of the load goes to the others (ignored when it would leave no available priority).
   */
  excludedPriorities?: ReadonlySet<number>;
}

export interface LoadBalancer {
  /** A host for this request, or undefined when the cluster has no usable host (→ 503 UH). */
  pick(ctx?: LoadBalancerContext): Host | undefined;
}

/**
 * A factory per lb_policy (ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV, CLUSTER_PROVIDED),
 * compiled from the cluster's config once. `hosts` are all hosts of the cluster across priorities;
 * the balancer applies health, priority/locality and panic-threshold rules.
 */
export interface LoadBalancerFactory {
  readonly policy: string;
  create(hosts: readonly Host[], clusterConfig: Record<string, unknown>): LoadBalancer;
}
