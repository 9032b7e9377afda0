// ext_authz decoder_header_mutation_rules (envoy.config.common.mutation_rules.v3.HeaderMutationRules):
// which request headers an authorization service's OK answer may set, append or remove. In order:
// disallow_expression refuses, allow_expression allows, disallow_all refuses, the routing headers
// (host, :authority, :method, :scheme) need allow_all_routing, `:` headers are refused with
// disallow_system, x-envoy-* need allow_envoy; anything else is allowed. A refused mutation is
// ignored, or fails the request (500) with disallow_is_error. With rules, `:` headers can never be
// appended to, and neither they nor host can ever be removed.
import type { Reader } from '../../config/reader.ts';
import { readRegexMatcher, type Regex } from '../../routing/string-matcher.ts';

export const MutationCheck = { Ok: 0, Ignore: 1, Fail: 2 } as const;
export type MutationCheck = (typeof MutationCheck)[keyof typeof MutationCheck];

export type MutationOp = 'set' | 'append' | 'remove';

export interface HeaderMutationRules {
  check(op: MutationOp, name: string): MutationCheck;
}

const ROUTING: ReadonlySet<string> = new Set(['host', ':authority', ':method', ':scheme']);

export function readHeaderMutationRules(r: Reader): HeaderMutationRules {
  const allowAllRouting = r.bool('allow_all_routing', false);
  const allowEnvoy = r.bool('allow_envoy', false);
  const disallowSystem = r.bool('disallow_system', false);
  const disallowAll = r.bool('disallow_all', false);
  const ar = r.obj('allow_expression');
  const dr = r.obj('disallow_expression');
  const allowExpression: Regex | undefined = ar ? readRegexMatcher(ar) : undefined;
  const disallowExpression: Regex | undefined = dr ? readRegexMatcher(dr) : undefined;
  const refused = r.bool('disallow_is_error', false) ? MutationCheck.Fail : MutationCheck.Ignore;
  r.done();

  const allowed = (name: string): boolean => {
    if (disallowExpression?.full(name)) return false;
    if (allowExpression?.full(name)) return true;
    if (disallowAll) return false;
    if (!allowAllRouting && ROUTING.has(name)) return false;
    if (disallowSystem && name[0] === ':') return false;
    if (!allowEnvoy && name.startsWith('x-envoy')) return false;
    return true;
  };
  return {
    check(op, name) {
      if (op === 'remove' && (name[0] === ':' || name === 'host')) return MutationCheck.Ignore;
      if (op === 'append' && name[0] === ':') return refused;
      return allowed(name) ? MutationCheck.Ok : refused;
    },
  };
}
