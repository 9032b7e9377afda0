// Load balancers by lb_policy name (Envoy's cluster load balancers), behind a registry.
//
//   setup()                                    registers the built-in policies (idempotent; called by createLoadBalancer)
//   createLoadBalancer(policy, hosts, cluster, { loadAssignment })
//                                              a LoadBalancer for the current host set; pass the
//                                              EDS ClusterLoadAssignment JSON for locality weights
//   resolveLbPolicy(cluster, issues)           the effective policy (load_balancing_policy or lb_policy)
//   checkLbConfig(policy, cluster)             { errors, warnings } with field paths: call when a
//                                              Cluster is accepted (errors → NACK, warnings → log)
//   registerLoadBalancer(factory)              adds a policy (LoadBalancerFactory)
//   compileHashPolicy(route.hash_policy)       → request → { hash, setCookie } (see hash-policy.ts)
//
// A LoadBalancer is immutable with respect to the host set: rebuild it when hosts are added or
// removed, or when a host's healthFlags change (health checker / outlier detector "change"
// events). Config is compiled once per cluster object (cached), so rebuilding is cheap.
// Built-in policies: ROUND_ROBIN and LEAST_REQUEST (both with slow_start_config), RANDOM,
// RING_HASH, MAGLEV. All honour health
// flags, priorities (overprovisioning factor), locality weights, the panic threshold and
// LoadBalancerContext.attempted; RING_HASH and MAGLEV use LoadBalancerContext.hash.
import type { Host } from '../host.ts';
import type { LoadBalancer, LoadBalancerFactory } from './load-balancer.ts';
import { RigError } from '../../../core/errors.ts';
import { double, newIssues, object, string, uint, warnUnsupported, type ConfigIssues, type Json } from './config-fields.ts';
import { compileAssignmentLbSettings, compileClusterLbSettings, compileCommonLbConfig, type AssignmentLbSettings, type ClusterLbSettings, type CommonLbConfig } from './lb-config.ts';
import { PriorityLoadBalancer, type PickerFactory } from './priority-lb.ts';
import { roundRobinPicker } from './round-robin.ts';
import { leastRequestPicker } from './least-request.ts';
import { randomPicker } from './random.ts';
import { RING_HASH_DEFAULTS, ringHashPicker } from './ring-hash.ts';
import { resolveLbPolicy } from './lb-policy-config.ts';
import { compileSlowStart, resolveSlowStart, runtimeKey, trackJoins, type SlowStartConfig } from './slow-start.ts';
import type { EnvoyRuntime } from '../../envoy-runtime/index.ts';
import { MAGLEV_DEFAULT_TABLE_SIZE, MAGLEV_MAX_TABLE_SIZE, isPrime, maglevPicker } from './maglev.ts';

export type { LoadBalancer, LoadBalancerContext, LoadBalancerFactory } from './load-balancer.ts';
export { compileHashPolicy } from './hash-policy.ts';
export type { HashPolicyFn, HashPolicyRequest, HashPolicyResult, SetCookie } from './hash-policy.ts';
export { computePriorityLoad, groupByPriority } from './priority-lb.ts';
export { resolveLbPolicy } from './lb-policy-config.ts';
export type { PriorityLoad } from './priority-lb.ts';

export interface LoadBalancerOptions {
  /** Monotonic milliseconds (slow start; tests inject a clock); default performance.now. */
  now?: () => number;
  /**
   * The cluster's current ClusterLoadAssignment (EDS, Envoy JSON) for locality weights and the
   * overprovisioning factor; default: clusterConfig.load_assignment (STATIC / STRICT_DNS clusters).
   */
  loadAssignment?: Record<string, unknown>;
  /** Uniform random in [0, 1) (tests inject a seeded one); default Math.random. */
  random?: () => number;
  /**
   * Envoy's runtime: upstream.healthy_panic_threshold (capped at 100) replaces common_lb_config's,
   * and the policy's runtime keys (slow start aggression, active_request_bias) their defaults.
   */
  runtime?: EnvoyRuntime;
}

const assignmentCache = new WeakMap<object, AssignmentLbSettings>();

/** Compiled once per assignment object (a load balancer is rebuilt on every health change). */
function assignmentSettings(la: Json | undefined): AssignmentLbSettings {
  if (!la) return compileAssignmentLbSettings(undefined, 'load_assignment', newIssues());
  let s = assignmentCache.get(la);
  if (!s) {
    const issues = newIssues();
    s = compileAssignmentLbSettings(la, 'load_assignment', issues);
    if (issues.errors.length > 0) throw new RigError('MESH_ERR_INVALID_CONFIG', `load assignment ${String(la.cluster_name ?? '')}: ${issues.errors.join('; ')}`);
    assignmentCache.set(la, s);
  }
  return s;
}

const registry = new Map<string, LoadBalancerFactory>();

export function registerLoadBalancer(factory: LoadBalancerFactory): void {
  registry.set(factory.policy, factory);
}

export function registeredPolicies(): string[] {
  return [...registry.keys()];
}

/** A policy built on the shared priority/locality/panic logic, with its own per-host-list picker. */
interface PolicyDefinition<C> {
  readonly policy: string;
  readonly hashBased: boolean;
  compile(cluster: Json, issues: ConfigIssues): C;
  picker(config: C, common: CommonLbConfig, random: () => number, now: () => number): PickerFactory;
  /** The policy's slow_start_config, if any: host join times are tracked at every build. */
  slowStart?(config: C): SlowStartConfig | undefined;
  /** The config with its runtime keys' current values (read at every build, as Envoy reads them at refresh). */
  resolve?(config: C, runtime: EnvoyRuntime): C;
}

interface Compiled<C> {
  cluster: ClusterLbSettings;
  config: C;
}

function policyFactory<C>(def: PolicyDefinition<C>): LoadBalancerFactory & {
  check(cluster: Json): ConfigIssues;
  createWith(hosts: readonly Host[], cluster: Json, options: LoadBalancerOptions): LoadBalancer;
} {
  const cache = new WeakMap<object, Compiled<C>>();
  const compile = (cluster: Json): Compiled<C> => {
    let c = cache.get(cluster);
    if (c) return c;
    const issues = newIssues();
    c = { cluster: compileClusterLbSettings(cluster, issues), config: def.compile(cluster, issues) };
    if (issues.errors.length > 0) {
      throw new RigError('MESH_ERR_INVALID_CONFIG', `cluster ${String(cluster.name ?? '')} (${def.policy}): ${issues.errors.join('; ')}`);
    }
    cache.set(cluster, c);
    return c;
  };
  const createWith = (hosts: readonly Host[], cluster: Json, options: LoadBalancerOptions): LoadBalancer => {
    const compiled = compile(cluster);
    const runtime = options.runtime;
    const config = runtime && def.resolve ? def.resolve(compiled.config, runtime) : compiled.config;
    const la = options.loadAssignment ?? (cluster.load_assignment as Json | undefined);
    const panicOverride = runtime?.uint('upstream.healthy_panic_threshold', Number.NaN).override;
    const panic = panicOverride === undefined ? {} : { panicThreshold: Math.min(100, panicOverride) };
    const common: CommonLbConfig = { ...compiled.cluster, ...assignmentSettings(la), ...panic };
    const random = options.random ?? Math.random;
    const now = options.now ?? (() => performance.now());
    if (def.slowStart?.(config)) trackJoins(hosts, now());
    return new PriorityLoadBalancer(hosts, common, def.picker(config, common, random, now), { hashBased: def.hashBased, random });
  };
  return {
    policy: def.policy,
    create: (hosts, cluster) => createWith(hosts, cluster, {}),
    createWith,
    check(cluster) {
      const issues = newIssues();
      compileCommonLbConfig(cluster, issues);
      def.compile(cluster, issues);
      return issues;
    },
  };
}

const builtins = [
  policyFactory({
    policy: 'ROUND_ROBIN',
    hashBased: false,
    compile(cluster, issues) {
      const rr = object(cluster.round_robin_lb_config, 'round_robin_lb_config', issues);
      warnUnsupported(rr, ['slow_start_config'], 'round_robin_lb_config', issues);
      return { slowStart: compileSlowStart(rr, 'round_robin_lb_config', issues) };
    },
    picker: (c, _common, random, now) => roundRobinPicker(random, c.slowStart, now),
    slowStart: (c) => c.slowStart,
    resolve: (c, runtime) => (c.slowStart?.aggressionKey ? { slowStart: resolveSlowStart(c.slowStart, runtime) } : c),
  }),
  policyFactory({
    policy: 'LEAST_REQUEST',
    hashBased: false,
    compile(cluster, issues) {
      const path = 'least_request_lb_config';
      const lr = object(cluster.least_request_lb_config, path, issues);
      warnUnsupported(lr, ['choice_count', 'active_request_bias', 'slow_start_config'], path, issues);
      const choiceCount = uint(lr, 'choice_count', path, issues, 2);
      if (choiceCount < 2) issues.errors.push(`${path}.choice_count: must be at least 2, got ${choiceCount}`);
      const bias = object(lr?.active_request_bias, `${path}.active_request_bias`, issues);
      const activeRequestBias = double(bias, 'default_value', `${path}.active_request_bias`, issues, 1);
      if (activeRequestBias < 0) issues.errors.push(`${path}.active_request_bias.default_value: must not be negative`);
      const activeRequestBiasKey = runtimeKey(bias);
      return { choiceCount: Math.max(2, choiceCount), activeRequestBias: Math.max(0, activeRequestBias), ...(activeRequestBiasKey && { activeRequestBiasKey }), slowStart: compileSlowStart(lr, path, issues) };
    },
    picker: (c, _common, random, now) => leastRequestPicker(c, random, now),
    slowStart: (c) => c.slowStart,
    resolve(c, runtime) {
      if (!c.activeRequestBiasKey && !c.slowStart?.aggressionKey) return c;
      // A negative bias is 1, as Envoy.
      const bias = c.activeRequestBiasKey ? runtime.double(c.activeRequestBiasKey, c.activeRequestBias).value : c.activeRequestBias;
      return { ...c, activeRequestBias: bias >= 0 ? bias : 1, slowStart: resolveSlowStart(c.slowStart, runtime) };
    },
  }),
  policyFactory({
    policy: 'RANDOM',
    hashBased: false,
    compile: () => undefined,
    picker: (_c, _common, random) => randomPicker(random),
  }),
  policyFactory({
    policy: 'RING_HASH',
    hashBased: true,
    compile(cluster, issues) {
      const path = 'ring_hash_lb_config';
      const rh = object(cluster.ring_hash_lb_config, path, issues);
      warnUnsupported(rh, ['minimum_ring_size', 'maximum_ring_size', 'hash_function'], path, issues);
      const max = RING_HASH_DEFAULTS.maximumRingSize;
      const minimumRingSize = uint(rh, 'minimum_ring_size', path, issues, RING_HASH_DEFAULTS.minimumRingSize);
      const maximumRingSize = uint(rh, 'maximum_ring_size', path, issues, max);
      if (minimumRingSize < 1 || minimumRingSize > max) issues.errors.push(`${path}.minimum_ring_size: must be between 1 and ${max}, got ${minimumRingSize}`);
      if (maximumRingSize < 1 || maximumRingSize > max) issues.errors.push(`${path}.maximum_ring_size: must be between 1 and ${max}, got ${maximumRingSize}`);
      if (minimumRingSize > maximumRingSize) issues.errors.push(`${path}: minimum_ring_size (${minimumRingSize}) must not exceed maximum_ring_size (${maximumRingSize})`);
      const fn = string(rh, 'hash_function', path, issues) ?? 'XX_HASH';
      if (fn !== 'XX_HASH') issues.errors.push(`${path}.hash_function: ${fn} is not supported, use XX_HASH (the default)`);
      return { minimumRingSize, maximumRingSize };
    },
    picker: (c, common, random) => ringHashPicker({ ...c, useHostnameForHashing: common.useHostnameForHashing, hashBalanceFactor: common.hashBalanceFactor }, random),
  }),
  policyFactory({
    policy: 'MAGLEV',
    hashBased: true,
    compile(cluster, issues) {
      const path = 'maglev_lb_config';
      const mg = object(cluster.maglev_lb_config, path, issues);
      warnUnsupported(mg, ['table_size'], path, issues);
      const tableSize = uint(mg, 'table_size', path, issues, MAGLEV_DEFAULT_TABLE_SIZE);
      if (!isPrime(tableSize) || tableSize > MAGLEV_MAX_TABLE_SIZE) {
        issues.errors.push(`${path}.table_size: must be a prime number no larger than ${MAGLEV_MAX_TABLE_SIZE}, got ${tableSize}`);
      }
      return { tableSize: isPrime(tableSize) ? tableSize : MAGLEV_DEFAULT_TABLE_SIZE };
    },
    picker: (c, common, random) => maglevPicker({ ...c, useHostnameForHashing: common.useHostnameForHashing, hashBalanceFactor: common.hashBalanceFactor }, random),
  }),
];

let isSetUp = false;

export function setup(): void {
  if (isSetUp) return;
  isSetUp = true;
  for (const f of builtins) registerLoadBalancer(f);
}

function factoryFor(policy: string): LoadBalancerFactory {
  setup();
  const f = registry.get(policy);
  if (!f) {
    throw new RigError('MESH_ERR_INVALID_CONFIG', `lb_policy ${policy} is not supported: use one of ${registeredPolicies().join(', ')}`);
  }
  return f;
}

/**
 * A load balancer for `hosts`. `policy` is the cluster's lb_policy; a cluster with
 * load_balancing_policy (typed extensions) uses that instead, as in Envoy. Throws RigError
 * (MESH_ERR_INVALID_CONFIG) on bad config: run checkLbConfig when the cluster is accepted.
 */
export function createLoadBalancer(policy: string, hosts: readonly Host[], clusterConfig: Record<string, unknown>, options: LoadBalancerOptions = {}): LoadBalancer {
  if (clusterConfig.load_balancing_policy !== undefined) {
    const issues = newIssues();
    const resolved = resolveLbPolicy(clusterConfig, issues);
    if (!resolved) throw new RigError('MESH_ERR_INVALID_CONFIG', `cluster ${String(clusterConfig.name ?? '')}: ${issues.errors.join('; ')}`);
    policy = resolved.policy;
    clusterConfig = resolved.cluster;
  }
  const f = factoryFor(policy);
  const builtin = builtins.find((b) => b === f);
  return builtin ? builtin.createWith(hosts, clusterConfig, options) : f.create(hosts, clusterConfig);
}

/** Problems in the cluster's load-balancing config (errors reject the cluster; warnings name ignored fields). */
export function checkLbConfig(policy: string, clusterConfig: Record<string, unknown>): ConfigIssues {
  const issues = newIssues();
  if (clusterConfig.load_balancing_policy !== undefined) {
    const resolved = resolveLbPolicy(clusterConfig, issues);
    if (!resolved) return issues;
    policy = resolved.policy;
    clusterConfig = resolved.cluster;
  }
  let f: LoadBalancerFactory;
  try {
    f = factoryFor(policy);
  } catch (err) {
    issues.errors.push(`lb_policy: ${(err as Error).message}`);
    return issues;
  }
  const builtin = builtins.find((b) => b === f);
  if (!builtin) return issues;
  const own = builtin.check(clusterConfig);
  return { errors: [...issues.errors, ...own.errors], warnings: [...issues.warnings, ...own.warnings] };
}
