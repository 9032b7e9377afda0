// Cluster.load_balancing_policy (the typed-extension form Envoy now prefers over the lb_policy
// enum) translated into the enum form the balancers compile: the first policy in the list that
// Rigging implements wins, as in Envoy. E.g.
//   load_balancing_policy: { policies: [{ typed_extension_config: { name: envoy.load_balancing_policies.maglev,
//     typed_config: { '@type': type.googleapis.com/envoy.extensions.load_balancing_policies.maglev.v3.Maglev, table_size: 131 } } }] }
// becomes lb_policy: MAGLEV, maglev_lb_config: { table_size: 131 }.
import { list, object, warnUnsupported, type ConfigIssues, type Json } from './config-fields.ts';

const PREFIX = 'type.googleapis.com/envoy.extensions.load_balancing_policies.';

const TYPES: Record<string, string> = {
  [`${PREFIX}round_robin.v3.RoundRobin`]: 'ROUND_ROBIN',
  [`${PREFIX}least_request.v3.LeastRequest`]: 'LEAST_REQUEST',
  [`${PREFIX}random.v3.Random`]: 'RANDOM',
  [`${PREFIX}ring_hash.v3.RingHash`]: 'RING_HASH',
  [`${PREFIX}maglev.v3.Maglev`]: 'MAGLEV',
  [`${PREFIX}cluster_provided.v3.ClusterProvided`]: 'CLUSTER_PROVIDED',
};

export interface ResolvedLbPolicy {
  policy: string;
  /** The cluster with the policy's settings moved into the enum-form fields. */
  cluster: Json;
}

function localityFields(tc: Json, path: string, issues: ConfigIssues, common: Json): void {
  const llc = object(tc.locality_lb_config, `${path}.locality_lb_config`, issues);
  warnUnsupported(llc, ['locality_weighted_lb_config'], `${path}.locality_lb_config`, issues);
  if (llc?.locality_weighted_lb_config) common.locality_weighted_lb_config = llc.locality_weighted_lb_config;
}

function translate(policy: string, tc: Json, path: string, issues: ConfigIssues, cluster: Json): Json {
  const out: Json = { ...cluster, lb_policy: policy };
  delete out.load_balancing_policy;
  const common: Json = { ...(object(cluster.common_lb_config, 'common_lb_config', issues) ?? {}) };
  const rest = { ...tc };
  delete rest['@type'];
  switch (policy) {
    case 'ROUND_ROBIN':
    case 'RANDOM':
      localityFields(rest, path, issues, common);
      delete rest.locality_lb_config;
      if (policy === 'ROUND_ROBIN') out.round_robin_lb_config = rest;
      else warnUnsupported(rest, [], path, issues);
      break;
    case 'LEAST_REQUEST':
      localityFields(rest, path, issues, common);
      delete rest.locality_lb_config;
      out.least_request_lb_config = rest;
      break;
    case 'RING_HASH':
    case 'MAGLEV': {
      if (rest.locality_weighted_lb_config) common.locality_weighted_lb_config = rest.locality_weighted_lb_config;
      const ch: Json = { ...(object(rest.consistent_hashing_lb_config, `${path}.consistent_hashing_lb_config`, issues) ?? {}) };
      if (rest.use_hostname_for_hashing !== undefined) ch.use_hostname_for_hashing = rest.use_hostname_for_hashing;
      if (rest.hash_balance_factor !== undefined) ch.hash_balance_factor = rest.hash_balance_factor;
      if (Object.keys(ch).length > 0) common.consistent_hashing_lb_config = ch;
      for (const k of ['locality_weighted_lb_config', 'consistent_hashing_lb_config', 'use_hostname_for_hashing', 'hash_balance_factor']) delete rest[k];
      if (policy === 'RING_HASH') out.ring_hash_lb_config = rest;
      else out.maglev_lb_config = rest;
      break;
    }
  }
  if (Object.keys(common).length > 0) out.common_lb_config = common;
  return out;
}

const cache = new WeakMap<Json, { resolved?: ResolvedLbPolicy; issues: ConfigIssues }>();

/**
 * The effective policy of a cluster: from load_balancing_policy when present (it takes precedence,
 * as in Envoy), else lb_policy (ROUND_ROBIN when unset). Issues go to `issues`; undefined when no
 * listed policy is supported.
 */
export function resolveLbPolicy(cluster: Json, issues: ConfigIssues): ResolvedLbPolicy | undefined {
  const lbp = object(cluster.load_balancing_policy, 'load_balancing_policy', issues);
  if (!lbp) return { policy: typeof cluster.lb_policy === 'string' ? cluster.lb_policy : 'ROUND_ROBIN', cluster };
  const hit = cache.get(cluster);
  if (hit) {
    issues.errors.push(...hit.issues.errors);
    issues.warnings.push(...hit.issues.warnings);
    return hit.resolved;
  }
  const own: ConfigIssues = { errors: [], warnings: [] };
  let resolved: ResolvedLbPolicy | undefined;
  const names: string[] = [];
  const policies = list(lbp.policies, 'load_balancing_policy.policies', own);
  for (let i = 0; i < policies.length && !resolved; i++) {
    const path = `load_balancing_policy.policies[${i}].typed_extension_config`;
    const tec = object(object(policies[i], `load_balancing_policy.policies[${i}]`, own)?.typed_extension_config, path, own);
    const tc = object(tec?.typed_config, `${path}.typed_config`, own);
    const type = String(tc?.['@type'] ?? '');
    names.push(type || String(tec?.name ?? '?'));
    const policy = TYPES[type];
    if (policy && tc) resolved = { policy, cluster: translate(policy, tc, `${path}.typed_config`, own, cluster) };
  }
  if (!resolved) own.errors.push(`load_balancing_policy.policies: none of [${names.join(', ')}] is supported; use one of ${Object.keys(TYPES).join(', ')}`);
  cache.set(cluster, { resolved, issues: own });
  issues.errors.push(...own.errors);
  issues.warnings.push(...own.warnings);
  return resolved;
}
