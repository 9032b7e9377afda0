// Envoy's route/virtual host `rate_limits` (config.route.v3.RateLimit): each entry's actions build
// one descriptor (a list of key/value entries) for a request; the local rate limit filter matches
// them against its configured descriptors, the rate limit filter sends them to its service.
// Compiled with the route configuration.
import type { Reader } from '../config/reader.ts';
import { ALWAYS, sample, type FractionalPercent } from '../config/fractional-percent.ts';
import type { EnvoyRuntime } from '../envoy-runtime/index.ts';
import type { RequestHead } from '../filters/filter.ts';
import { headerValue, readHeaderMatcher, type HeaderMatcher } from './header-matcher.ts';
import { maskAddress } from './masked-address.ts';

export interface DescriptorEntry {
  readonly key: string;
  readonly value: string;
}

export interface RateLimitInput {
  readonly head: RequestHead;
  /** The stream's downstream remote address (the trusted client address after x-forwarded-for processing). */
  readonly remoteIp: string;
  /** The route's target cluster (destination_cluster). */
  readonly cluster: string;
}

/** One action: the entry it contributes, null to drop the whole descriptor, undefined to add nothing. */
type Action = (x: RateLimitInput) => DescriptorEntry | null | undefined;

export interface RateLimitPolicy {
  readonly stage: number;
  readonly actions: readonly Action[];
  /** disable_key: the policy applies while this runtime feature is enabled (default 100 %). */
  readonly enabled?: FractionalPercent;
}

function readAction(r: Reader): Action | undefined {
  const kinds = Object.keys(r.raw).filter((k) => r.raw[k] !== undefined && r.raw[k] !== null);
  if (kinds.length !== 1) {
    r.issues.error(r.path, `a rate limit action needs exactly one kind (got ${kinds.join(', ') || 'none'})`);
    return undefined;
  }
  const kind = kinds[0];
  const a = r.obj(kind)!;
  let act: Action | undefined;
  switch (kind) {
    case 'destination_cluster':
      act = (x) => ({ key: 'destination_cluster', value: x.cluster });
      break;
    case 'remote_address':
      act = (x) => ({ key: 'remote_address', value: x.remoteIp });
      break;
    case 'masked_remote_address': {
      const v4 = a.num('v4_prefix_mask_len', 32);
      const v6 = a.num('v6_prefix_mask_len', 128);
      if (!(v4 >= 0 && v4 <= 32)) a.issues.error(a.at('v4_prefix_mask_len'), 'must be in [0, 32]');
      if (!(v6 >= 0 && v6 <= 128)) a.issues.error(a.at('v6_prefix_mask_len'), 'must be in [0, 128]');
      act = (x) => ({ key: 'masked_remote_address', value: maskAddress(x.remoteIp, v4, v6) });
      break;
    }
    case 'generic_key': {
      const key = a.str('descriptor_key', 'generic_key');
      const value = a.str('descriptor_value');
      if (!value) a.issues.error(a.at('descriptor_value'), 'generic_key needs a descriptor_value');
      act = () => ({ key, value });
      break;
    }
    case 'request_headers': {
      const name = a.str('header_name').toLowerCase();
      const key = a.str('descriptor_key');
      const skip = a.bool('skip_if_absent', false);
      if (!name) a.issues.error(a.at('header_name'), 'request_headers needs a header_name');
      if (!key) a.issues.error(a.at('descriptor_key'), 'request_headers needs a descriptor_key');
      act = (x) => {
        const v = headerValue(x.head, name);
        if (v === undefined) return skip ? undefined : null;
        return { key, value: v };
      };
      break;
    }
    case 'header_value_match': {
      const key = a.str('descriptor_key', 'header_match');
      const value = a.str('descriptor_value');
      const expect = a.bool('expect_match', true);
      const ms: HeaderMatcher[] = a.objs('headers').map((h) => readHeaderMatcher(h));
      if (!value) a.issues.error(a.at('descriptor_value'), 'header_value_match needs a descriptor_value');
      act = (x) => (ms.every((m) => m.match(x.head)) === expect ? { key, value } : null);
      break;
    }
    default:
      a.issues.error(r.at(kind), `rate limit action "${kind}" is not supported by rig proxy (destination_cluster, remote_address, masked_remote_address, generic_key, request_headers, header_value_match)`);
      a.accept(...Object.keys(a.raw));
  }
  a.done();
  r.done();
  return act;
}

/** Reads a `rate_limits` list; a disable_key becomes a handle on `runtime`. */
export function readRateLimits(r: Reader, runtime: EnvoyRuntime, key = 'rate_limits'): readonly RateLimitPolicy[] | undefined {
  if (!r.has(key)) return undefined;
  return r.objs(key).map((p) => {
    const stage = p.num('stage', 0);
    const actions = p.objs('actions').flatMap((a) => readAction(a) ?? []);
    if (!actions.length) p.issues.error(p.at('actions'), 'a rate limit needs at least one action');
    if (p.has('limit')) p.issues.error(p.at('limit'), 'rate limit overrides (limit) are not supported by rig proxy');
    p.accept('limit');
    // As Envoy's featureEnabled(disable_key, 100): the runtime key's percentage of requests keeps the policy.
    const disableKey = p.str('disable_key');
    p.done();
    return disableKey ? { stage, actions, enabled: runtime.fraction(disableKey, ALWAYS) } : { stage, actions };
  });
}

/** RateLimitPerRoute / LocalRateLimit vh_rate_limits: whether the virtual host's rate_limits apply too. */
export const VhRateLimits = { Override: 0, Include: 1, Ignore: 2 } as const;
export type VhRateLimits = (typeof VhRateLimits)[keyof typeof VhRateLimits];

/** Reads a vh_rate_limits enum field (OVERRIDE, INCLUDE or IGNORE). */
export function readVhRateLimits(r: Reader, key = 'vh_rate_limits'): VhRateLimits {
  const vh = r.str(key, 'OVERRIDE');
  if (vh === 'INCLUDE') return VhRateLimits.Include;
  if (vh === 'IGNORE') return VhRateLimits.Ignore;
  if (vh !== 'OVERRIDE') r.issues.error(r.at(key), `unknown value "${vh}" (OVERRIDE, INCLUDE or IGNORE)`);
  return VhRateLimits.Override;
}

const NONE: readonly RateLimitPolicy[] = [];

/**
 * The policies a route's request is limited by, as Envoy's rate limit filters pick them: the
 * route's own, plus (Include) or, when the route has none, instead (Override) the virtual host's.
 * A route with include_vh_rate_limits already lists the virtual host's (route-config.ts).
 */
export function routePolicies(own: readonly RateLimitPolicy[] | undefined, vh: readonly RateLimitPolicy[] | undefined, option: VhRateLimits): readonly RateLimitPolicy[] {
  own ??= NONE;
  if (!vh?.length || option === VhRateLimits.Ignore) return own;
  if (option === VhRateLimits.Override) return own.length ? own : vh;
  return own.includes(vh[0]) ? own : [...own, ...vh];
}

/** The descriptors a request produces for a stage (one per policy whose actions all apply). */
export function descriptorsFor(policies: readonly RateLimitPolicy[], stage: number, x: RateLimitInput): DescriptorEntry[][] {
  const out: DescriptorEntry[][] = [];
  outer: for (const p of policies) {
    if (p.stage !== stage || (p.enabled && !sample(p.enabled))) continue;
    const d: DescriptorEntry[] = [];
    for (const a of p.actions) {
      const e = a(x);
      if (e === null) continue outer;
      if (e) d.push(e);
    }
    if (d.length) out.push(d);
  }
  return out;
}
