// Envoy's RBAC engine (envoy.config.rbac.v3.RBAC): named policies, each matching when any of its
// permissions and any of its principals match. ALLOW allows on a match and denies otherwise; DENY
// denies on a match; LOG always allows and only records the match (the access-log hint).
import type { Reader } from '../../config/reader.ts';
import { readPermission, readPrincipal, type Predicate, type RbacInput } from './rbac-matchers.ts';

export const RbacAction = { Allow: 'ALLOW', Deny: 'DENY', Log: 'LOG' } as const;
export type RbacAction = (typeof RbacAction)[keyof typeof RbacAction];

interface Policy {
  readonly name: string;
  readonly permission: Predicate;
  readonly principal: Predicate;
}

export interface RbacDecision {
  readonly allowed: boolean;
  /** Name of the first matching policy, undefined when none matched. */
  readonly policy?: string;
}

export interface RbacEngine {
  readonly action: RbacAction;
  evaluate(x: RbacInput): RbacDecision;
}

function readPolicy(name: string, r: Reader): Policy {
  const perms = r.objs('permissions').map(readPermission);
  const princ = r.objs('principals').map(readPrincipal);
  if (!perms.length) r.issues.error(r.at('permissions'), 'a policy needs at least one permission');
  if (!princ.length) r.issues.error(r.at('principals'), 'a policy needs at least one principal');
  if (r.has('condition') || r.has('checked_condition')) r.issues.error(r.at('condition'), 'CEL conditions are not supported by rig proxy');
  r.accept('condition', 'checked_condition');
  r.done();
  return { name, permission: (x) => perms.some((p) => p(x)), principal: (x) => princ.some((p) => p(x)) };
}

/** Compiles an RBAC message (the filter's `rules` or `shadow_rules`). */
export function readRbac(r: Reader): RbacEngine {
  const action = r.str('action', 'ALLOW') as RbacAction;
  if (!Object.values(RbacAction).includes(action)) r.issues.error(r.at('action'), `unknown RBAC action "${action}" (ALLOW, DENY or LOG)`);
  const pr = r.obj('policies');
  // Envoy evaluates policies in name order (a map); keep that so the matched name is stable.
  const policies = pr ? Object.keys(pr.raw).sort().map((n) => readPolicy(n, pr.obj(n)!)) : [];
  pr?.done();
  if (r.has('audit_logging_options')) r.issues.warn(r.at('audit_logging_options'), 'RBAC audit loggers are not supported by rig proxy; ignored');
  r.accept('audit_logging_options');
  r.done();
  return {
    action,
    evaluate(x) {
      const hit = policies.find((p) => p.permission(x) && p.principal(x));
      if (action === RbacAction.Allow) return { allowed: hit !== undefined, policy: hit?.name };
      if (action === RbacAction.Deny) return { allowed: hit === undefined, policy: hit?.name };
      return { allowed: true, policy: hit?.name };
    },
  };
}
