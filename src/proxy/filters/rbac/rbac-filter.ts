// envoy.filters.http.rbac: enforces `rules` (403 "RBAC: access denied", details
// rbac_access_denied_matched_policy[<policy>|none]) and evaluates `shadow_rules` for stats and
// dynamic metadata only. (RBACPerRoute is not supported: Istio does not generate it; it is refused.)
import { HTTP_RBAC_TYPE } from '../../../envoy/index.ts';
import type { Reader } from '../../config/reader.ts';
import type { Stat, Stats } from '../../stats/stats.ts';
import { registerHttpFilter } from '../registry.ts';
import { FilterStatus, type HttpFilter, type HttpFilterFactory, type RequestHead, type StreamCallbacks } from '../filter.ts';
import { readRbac, RbacAction, type RbacEngine } from './rbac-engine.ts';
import type { RbacInput } from './rbac-matchers.ts';

export const RBAC_FILTER_NAME = 'envoy.filters.http.rbac';

interface RbacStats {
  allowed: Stat;
  denied: Stat;
  shadowAllowed: Stat;
  shadowDenied: Stat;
  logged: Stat;
  notLogged: Stat;
}

export interface RbacFilterConfig {
  readonly rules?: RbacEngine;
  readonly shadow?: RbacEngine;
  readonly stats: RbacStats;
  /** Dynamic metadata keys, prefixed with the stat prefixes as Envoy does (ext_authz matches `istio_ext_authz_shadow_effective_policy_id`). */
  readonly keys: { readonly shadowPolicy: string; readonly shadowResult: string; readonly enforcedPolicy: string; readonly enforcedResult: string };
}

/** Envoy's namespaces: `<prefix>rbac.` and, with a rules stat prefix, `<prefix>rbac.<rules prefix>.` (a dot is added as Envoy joins stat names). */
function rbacStats(stats: Stats, prefix: string, rulesPrefix: string, shadowPrefix: string): RbacStats {
  const scope = (rules: string) => `${prefix}rbac.${rules && !rules.endsWith('.') ? `${rules}.` : rules}`;
  const p = scope(rulesPrefix);
  const s = scope(shadowPrefix);
  return {
    allowed: stats.counter(`${p}allowed`),
    denied: stats.counter(`${p}denied`),
    shadowAllowed: stats.counter(`${s}shadow_allowed`),
    shadowDenied: stats.counter(`${s}shadow_denied`),
    logged: stats.counter(`${p}logged`),
    notLogged: stats.counter(`${p}not_logged`),
  };
}

/** Reads the fields the HTTP and network RBAC configs share. */
export function readRbacConfig(r: Reader, stats: Stats, statPrefix: string): RbacFilterConfig {
  const rr = r.obj('rules');
  const rules = rr ? readRbac(rr) : undefined;
  const sr = r.obj('shadow_rules');
  const shadow = sr ? readRbac(sr) : undefined;
  for (const k of ['matcher', 'shadow_matcher']) {
    if (r.has(k)) r.issues.error(r.at(k), `RBAC "${k}" (the matcher API) is not supported by rig proxy; use rules`);
    r.accept(k);
  }
  if (r.bool('track_per_rule_stats', false)) r.issues.warn(r.at('track_per_rule_stats'), 'per-rule counters are not supported by rig proxy; the filter-wide ones are kept');
  const rulesPrefix = r.str('rules_stat_prefix');
  const shadowPrefix = r.str('shadow_rules_stat_prefix');
  const keys = {
    shadowPolicy: `${shadowPrefix}shadow_effective_policy_id`,
    shadowResult: `${shadowPrefix}shadow_engine_result`,
    enforcedPolicy: `${rulesPrefix}enforced_effective_policy_id`,
    enforcedResult: `${rulesPrefix}enforced_engine_result`,
  };
  return { rules, shadow, stats: rbacStats(stats, statPrefix, rulesPrefix, shadowPrefix), keys };
}

export interface RbacOutcome {
  readonly allowed: boolean;
  readonly details?: string;
  readonly metadata: Record<string, string>;
}

/** Runs shadow then enforced rules, bumping stats; returns the verdict and the dynamic metadata. */
export function evaluateRbac(c: RbacFilterConfig, x: RbacInput): RbacOutcome {
  const metadata: Record<string, string> = {};
  if (c.shadow) {
    const d = c.shadow.evaluate(x);
    (d.allowed ? c.stats.shadowAllowed : c.stats.shadowDenied).value++;
    if (d.policy) metadata[c.keys.shadowPolicy] = d.policy;
    metadata[c.keys.shadowResult] = d.allowed ? 'allowed' : 'denied';
  }
  if (!c.rules) return { allowed: true, metadata };
  const d = c.rules.evaluate(x);
  if (c.rules.action === RbacAction.Log) {
    (d.policy ? c.stats.logged : c.stats.notLogged).value++;
    if (d.policy) metadata.access_log_hint = 'true';
    return { allowed: true, metadata };
  }
  (d.allowed ? c.stats.allowed : c.stats.denied).value++;
  if (d.policy) metadata[c.keys.enforcedPolicy] = d.policy;
  metadata[c.keys.enforcedResult] = d.allowed ? 'allowed' : 'denied';
  return { allowed: d.allowed, metadata, details: d.allowed ? undefined : `rbac_access_denied_matched_policy[${d.policy ?? 'none'}]` };
}

class RbacFilter implements HttpFilter {
  private readonly c: RbacFilterConfig;
  private readonly cb: StreamCallbacks;
  constructor(c: RbacFilterConfig, cb: StreamCallbacks) {
    this.c = c;
    this.cb = cb;
  }

  decodeHeaders(head: RequestHead): FilterStatus {
    const c = this.c;
    const info = this.cb.streamInfo;
    const state = (info.filterState ??= {});
    const out = evaluateRbac(c, { conn: this.cb.connection, head, remoteIp: info.downstreamRemoteIp ?? this.cb.connection.remoteAddress, metadata: state });
    if (Object.keys(out.metadata).length) state[RBAC_FILTER_NAME] = { ...(state[RBAC_FILTER_NAME] as object | undefined), ...out.metadata };
    if (out.allowed) return FilterStatus.Continue;
    this.cb.sendLocalReply({ status: 403, body: 'RBAC: access denied', details: out.details });
    return FilterStatus.StopIteration;
  }
}

export const rbacFilterFactory: HttpFilterFactory<RbacFilterConfig> = {
  name: RBAC_FILTER_NAME,
  typeUrls: [HTTP_RBAC_TYPE],
  compile(r, ctx) {
    const c = readRbacConfig(r, ctx.stats, `http.${ctx.statPrefix}.`);
    r.done();
    return c;
  },
  create: (c, cb) => new RbacFilter(c, cb),
};

export function setup(): void {
  registerHttpFilter(rbacFilterFactory);
}
