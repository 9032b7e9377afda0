// AuthorizationPolicy → Envoy RBAC, as Istio generates it: one RBAC filter per action (AUDIT as LOG,
// then DENY, then ALLOW), one policy per rule named `ns[<ns>]-policy[<name>]-rule[<i>]`; each `to`
// operation is a permission and each `from` source a principal (OR-ed), the fields inside one are
// AND-ed, `not*` fields are not_rule/not_id, `when` conditions are AND-ed into every permission
// (destination/connection keys) or principal (source/request keys). An ALLOW policy without rules
// allows nothing; `rules: [{}]` allows all. For TCP only L4 fields exist: a rule using an HTTP-only
// field is dropped from an ALLOW policy (never matches) and loses that field in a DENY or AUDIT
// policy (matches more), as Istio documents.
import type { AuthorizationPolicySpec, Condition, Operation, Rule, Source } from '../../../api/index.ts';
import type { Resource } from '../../../api/index.ts';
import type { EnvoyJson } from '../../../envoy/index.ts';
import { AUTHN_METADATA, bracketNames, cidrRange, headerMatcher, isPathTemplate, metadataList, metadataString, pathTemplate, stringMatcher } from './authz-matchers.ts';

export type AuthzAction = 'ALLOW' | 'DENY' | 'AUDIT';

interface BuildCtx {
  trustDomain: string;
  trustDomainAliases: readonly string[];
  /** Workload port → the port the proxy's listener really sees (explicit mode binds other ports). */
  listenerPort: (port: number) => number;
  policyNamespace: string;
  tcp: boolean;
  /** Set when the rule uses a field that cannot be generated (HTTP-only on TCP, or invalid). */
  skipped: string[];
  /** How many of `skipped` are HTTP-only fields on TCP: expected (Istio documents it), not logged. */
  httpOnTcp: number;
}

type Gen = (v: string, c: BuildCtx) => EnvoyJson | undefined;

const SPIFFE = 'spiffe://';

function authenticated(m: EnvoyJson): EnvoyJson {
  return { authenticated: { principal_name: m } };
}

function nsRegex(ns: string): EnvoyJson {
  return { safe_regex: { regex: `.*/ns/${ns.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}/.*` } };
}

function ip(kind: string): Gen {
  return (v, c) => {
    const r = cidrRange(v);
    if (!r) c.skipped.push(`"${v}" is not an IP address or CIDR`);
    return r && { [kind]: r };
  };
}

function httpOnly(gen: Gen, what: string): Gen {
  return (v, c) => {
    if (c.tcp) {
      c.skipped.push(`${what} applies to HTTP only`);
      c.httpOnTcp++;
      return undefined;
    }
    return gen(v, c);
  };
}

/**
 * A peer principal (`<td>/ns/<ns>/sa/<sa>` or a pattern). As in Istio, a principal in the local
 * trust domain or one of its aliases matches that identity in all of them.
 */
function principal(v: string, c: BuildCtx): EnvoyJson {
  if (v === '*') return authenticated(stringMatcher(v));
  const slash = v.indexOf('/');
  const td = slash > 0 ? v.slice(0, slash) : '';
  const domains = [c.trustDomain, ...c.trustDomainAliases];
  if (!c.trustDomainAliases.length || !domains.includes(td) || v.startsWith('*')) return authenticated(stringMatcher(v, SPIFFE));
  const rest = v.slice(slash);
  return { or_ids: { ids: domains.map((d) => authenticated(stringMatcher(d + rest, SPIFFE))) } };
}

function serviceAccount(v: string, c: BuildCtx): EnvoyJson {
  const [ns, sa] = v.includes('/') ? v.split('/', 2) : [c.policyNamespace, v];
  return authenticated({ exact: `${SPIFFE}${c.trustDomain}/ns/${ns}/sa/${sa}` });
}

const PRINCIPAL_FIELDS: [keyof Source, keyof Source | undefined, Gen][] = [
  ['principals', 'notPrincipals', principal],
  ['serviceAccounts', 'notServiceAccounts', serviceAccount],
  ['requestPrincipals', 'notRequestPrincipals', httpOnly((v) => ({ metadata: metadataString(['request.auth.principal'], v) }), 'requestPrincipals')],
  ['namespaces', 'notNamespaces', (v) => authenticated(nsRegex(v))],
  ['ipBlocks', 'notIpBlocks', ip('direct_remote_ip')],
  ['remoteIpBlocks', 'notRemoteIpBlocks', ip('remote_ip')],
];

const PERMISSION_FIELDS: [keyof Operation, keyof Operation, Gen][] = [
  ['hosts', 'notHosts', httpOnly((v) => ({ header: headerMatcher(':authority', v, true) }), 'hosts')],
  [
    'ports',
    'notPorts',
    (v, c) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 65535) c.skipped.push(`port "${v}" is not a port number`);
      else return { destination_port: c.listenerPort(n) };
      return undefined;
    },
  ],
  ['methods', 'notMethods', httpOnly((v) => ({ header: headerMatcher(':method', v) }), 'methods')],
  ['paths', 'notPaths', httpOnly((v) => (isPathTemplate(v) ? { uri_template: pathTemplate(v) } : { url_path: { path: stringMatcher(v) } }), 'paths')],
];

/** `when` keys: whether they are permissions (destination side) or principals, and their matcher. */
function conditionGen(key: string): { permission: boolean; gen: Gen } | undefined {
  if (key === 'source.ip') return { permission: false, gen: ip('direct_remote_ip') };
  if (key === 'remote.ip') return { permission: false, gen: ip('remote_ip') };
  if (key === 'source.namespace') return { permission: false, gen: (v) => authenticated(nsRegex(v)) };
  if (key === 'source.principal') return { permission: false, gen: principal };
  if (key === 'source.serviceAccount') return { permission: false, gen: serviceAccount };
  if (key === 'destination.ip') return { permission: true, gen: ip('destination_ip') };
  if (key === 'destination.port') return { permission: true, gen: PERMISSION_FIELDS[1][2] };
  if (key === 'connection.sni') return { permission: true, gen: (v) => ({ requested_server_name: stringMatcher(v) }) };
  if (key === 'request.auth.principal' || key === 'request.auth.presenter') {
    return { permission: false, gen: httpOnly((v) => ({ metadata: metadataString([key], v) }), key) };
  }
  if (key === 'request.auth.audiences') return { permission: false, gen: httpOnly((v) => ({ metadata: metadataList(AUTHN_METADATA, [key], v) }), key) };
  if (key.startsWith('request.auth.claims')) {
    const names = bracketNames(key.slice('request.auth.claims'.length));
    if (!names) return undefined;
    return { permission: false, gen: httpOnly((v) => ({ metadata: metadataList(AUTHN_METADATA, ['request.auth.claims', ...names], v) }), key) };
  }
  if (key.startsWith('request.headers')) {
    const names = bracketNames(key.slice('request.headers'.length));
    if (!names || names.length !== 1) return undefined;
    return { permission: false, gen: httpOnly((v) => ({ header: headerMatcher(names[0].toLowerCase(), v) }), key) };
  }
  if (key.startsWith('experimental.envoy.filters.')) {
    // experimental.envoy.filters.a.b[c]: metadata of filter envoy.filters.a.b at key c; a value
    // in brackets ([v]) matches a list element.
    const m = /^experimental\.(envoy\.filters\.[^[\]]+)((?:\[[^\]]+\])+)$/.exec(key);
    const names = m && bracketNames(m[2]);
    if (!m || !names) return undefined;
    return {
      permission: true,
      gen: httpOnly((v) => {
        if (v.startsWith('[') && v.endsWith(']')) return { metadata: metadataList(m[1], names, v.slice(1, -1)) };
        return { metadata: { filter: m[1], path: names.map((key) => ({ key })), value: { string_match: stringMatcher(v) } } };
      }, key),
    };
  }
  return undefined;
}

/** One field: OR of its values, and for its not-form a negated OR. */
function field(values: string[] | undefined, notValues: string[] | undefined, gen: Gen, c: BuildCtx, permission: boolean): EnvoyJson[] {
  const orKey = permission ? 'or_rules' : 'or_ids';
  const listKey = permission ? 'rules' : 'ids';
  const notKey = permission ? 'not_rule' : 'not_id';
  const out: EnvoyJson[] = [];
  const build = (vs: string[]) => vs.map((v) => gen(v, c)).filter((x): x is EnvoyJson => x !== undefined);
  if (values?.length) {
    const ms = build(values);
    if (ms.length) out.push({ [orKey]: { [listKey]: ms } });
  }
  if (notValues?.length) {
    const ms = build(notValues);
    if (ms.length) out.push({ [notKey]: { [orKey]: { [listKey]: ms } } });
  }
  return out;
}

function whenParts(when: Condition[] | undefined, c: BuildCtx, permission: boolean): EnvoyJson[] {
  const out: EnvoyJson[] = [];
  for (const cond of when ?? []) {
    const g = conditionGen(cond.key);
    if (!g) {
      c.skipped.push(`unknown condition key "${cond.key}"`);
      continue;
    }
    if (g.permission === permission) out.push(...field(cond.values, cond.notValues, g.gen, c, permission));
  }
  return out;
}

function and(parts: EnvoyJson[], permission: boolean): EnvoyJson {
  const list = parts.length ? parts : [{ any: true }];
  return permission ? { and_rules: { rules: list } } : { and_ids: { ids: list } };
}

/** The Envoy policy of one rule, or undefined when the rule cannot match (ALLOW with skipped fields). */
function rulePolicy(rule: Rule, action: AuthzAction, c: BuildCtx): EnvoyJson | undefined {
  const perm = whenParts(rule.when, c, true);
  const princ = whenParts(rule.when, c, false);
  const tos = rule.to?.length ? rule.to : [{ operation: {} }];
  const froms = rule.from?.length ? rule.from : [{ source: {} }];
  const permissions = tos.map((t) => {
    const op = t.operation ?? {};
    return and([...PERMISSION_FIELDS.flatMap(([k, nk, g]) => field(op[k] as string[] | undefined, op[nk] as string[] | undefined, g, c, true)), ...perm], true);
  });
  const principals = froms.map((f) => {
    const s = f.source ?? {};
    return and([...PRINCIPAL_FIELDS.flatMap(([k, nk, g]) => field(s[k], nk ? s[nk] : undefined, g, c, false)), ...princ], false);
  });
  if (c.skipped.length && action === 'ALLOW') return undefined;
  return { permissions, principals };
}

export interface RbacBuild {
  action: AuthzAction;
  /**
   * The RBAC filter's fields: `rules` (enforced policies) and, for policies annotated
   * `istio.io/dry-run: "true"`, `shadow_rules` with Istio's `istio_dry_run_<action>_` stat prefix.
   */
  config: EnvoyJson;
  /** Why rules were dropped or narrowed, for logs: `ns/name rule[i]: reason`. */
  notes: string[];
}

export interface RbacOptions {
  trustDomain: string;
  trustDomainAliases?: readonly string[];
  tcp: boolean;
  /** Workload port → listener port (explicit mode). */
  listenerPort?: (port: number) => number;
}

export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

/**
 * The RBAC message (action + policies) for `policies` as `action`; undefined when nothing can match.
 * `namePrefix` marks the policy names (Istio's `istio-ext-authz-` for CUSTOM policies).
 */
export function rbacMessage(policies: readonly Resource<AuthorizationPolicySpec>[], action: AuthzAction, opts: RbacOptions, notes: string[], namePrefix = ''): EnvoyJson | undefined {
  if (!policies.length) return undefined;
  const policiesOut: Record<string, EnvoyJson> = {};
  for (const p of policies) {
    (p.spec?.rules ?? []).forEach((rule, i) => {
      const c: BuildCtx = { trustDomain: opts.trustDomain, trustDomainAliases: opts.trustDomainAliases ?? [], listenerPort: opts.listenerPort ?? ((n) => n), policyNamespace: p.metadata.namespace, tcp: opts.tcp, skipped: [], httpOnTcp: 0 };
      const out = rulePolicy(rule ?? {}, action, c);
      const name = `${namePrefix}ns[${p.metadata.namespace}]-policy[${p.metadata.name}]-rule[${i}]`;
      if (c.skipped.length > c.httpOnTcp) for (const s of c.skipped) notes.push(`${p.metadata.namespace}/${p.metadata.name} rule[${i}]: ${s}; ${out ? 'field ignored' : 'rule ignored'}`);
      if (out) policiesOut[name] = out;
    });
  }
  // DENY/AUDIT policies without rules match nothing: no engine needed. ALLOW keeps an empty policy set (allow nothing).
  if (action !== 'ALLOW' && Object.keys(policiesOut).length === 0) return undefined;
  const envoyAction = action === 'AUDIT' ? 'LOG' : action;
  // No policies (allow nothing) is `{}`: an empty map does not survive protobuf encoding.
  const hasPolicies = Object.keys(policiesOut).length > 0;
  return { ...(envoyAction === 'ALLOW' ? {} : { action: envoyAction }), ...(hasPolicies ? { policies: policiesOut } : {}) };
}

/** Builds the RBAC filter config for one action from the policies that apply to a proxy; undefined when none. */
export function buildRbac(policies: readonly Resource<AuthorizationPolicySpec>[], action: AuthzAction, opts: RbacOptions): RbacBuild | undefined {
  const mine = policies.filter((p) => (p.spec?.action ?? 'ALLOW') === action);
  const dryRun = (p: Resource<AuthorizationPolicySpec>) => p.metadata.annotations?.[DRY_RUN_ANNOTATION] === 'true';
  const notes: string[] = [];
  const rules = rbacMessage(mine.filter((p) => !dryRun(p)), action, opts, notes);
  const shadow = rbacMessage(mine.filter(dryRun), action, opts, notes);
  if (!rules && !shadow) return undefined;
  const config: EnvoyJson = {};
  if (rules) config.rules = rules;
  if (shadow) Object.assign(config, { shadow_rules: shadow, shadow_rules_stat_prefix: `istio_dry_run_${action.toLowerCase()}_` });
  return { action, config, notes };
}
