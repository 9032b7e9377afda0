// JwtRequirement trees (provider_name, provider_and_audiences, requires_any, requires_all,
// allow_missing, allow_missing_or_failed) and the rules that pick one per request.
import type { Reader } from '../../config/reader.ts';
import type { RequestHead } from '../filter.ts';
import { readHeaderMatcher, type HeaderMatcher } from '../../routing/header-matcher.ts';
import { readRegexMatcher } from '../../routing/string-matcher.ts';
import { JwtStatus, type JwtProvider } from './jwt-provider.ts';

/** Verification outcome of every provider the request was checked against. */
export interface TokenResults {
  /** Status per provider name (Missed when the provider's locations held no token). */
  status(provider: string): JwtStatus;
  /** Whether any token was found in any location of the providers involved. */
  readonly anyToken: boolean;
}

export type Requirement =
  | { kind: 'provider'; name: string }
  | { kind: 'any' | 'all'; of: Requirement[] }
  | { kind: 'allow_missing' | 'allow_missing_or_failed' };

export function readRequirement(r: Reader, providers: ReadonlyMap<string, JwtProvider>, named?: ReadonlyMap<string, Requirement>): Requirement {
  let req: Requirement = { kind: 'allow_missing_or_failed' };
  const checkName = (n: string, at: string) => {
    if (!providers.has(n)) r.issues.error(at, `unknown provider "${n}"`);
  };
  if (r.has('provider_name')) {
    req = { kind: 'provider', name: r.str('provider_name') };
    checkName(req.name, r.at('provider_name'));
  } else if (r.has('provider_and_audiences')) {
    const pa = r.obj('provider_and_audiences')!;
    req = { kind: 'provider', name: pa.str('provider_name') };
    checkName(req.name, pa.at('provider_name'));
    if (pa.has('audiences')) pa.issues.error(pa.at('audiences'), 'per-requirement audiences are not supported by rig proxy; set them on the provider');
    pa.accept('audiences');
    pa.done();
  } else if (r.has('requires_any') || r.has('requires_all')) {
    const key = r.has('requires_any') ? 'requires_any' : 'requires_all';
    const l = r.obj(key)!;
    req = { kind: key === 'requires_any' ? 'any' : 'all', of: l.objs('requirements').map((x) => readRequirement(x, providers, named)) };
    l.done();
  } else if (r.has('allow_missing')) {
    r.get('allow_missing');
    req = { kind: 'allow_missing' };
  } else if (r.has('allow_missing_or_failed')) {
    r.get('allow_missing_or_failed');
  } else r.issues.error(r.path, 'a requirement needs provider_name, provider_and_audiences, requires_any, requires_all, allow_missing or allow_missing_or_failed');
  r.done();
  return req;
}

/** Providers a requirement involves (their tokens are extracted and verified). */
export function providersOf(req: Requirement): string[] {
  if (req.kind === 'provider') return [req.name];
  if (req.kind === 'any' || req.kind === 'all') return [...new Set(req.of.flatMap(providersOf))];
  return [];
}

/** Envoy's verdict: Ok, or the failure to report (a real failure outranks a missing token). */
export function evaluateRequirement(req: Requirement, t: TokenResults): JwtStatus {
  switch (req.kind) {
    case 'provider':
      return t.status(req.name);
    case 'allow_missing_or_failed':
      return JwtStatus.Ok;
    case 'allow_missing':
      return t.anyToken ? JwtStatus.Missed : JwtStatus.Ok;
    case 'all': {
      for (const r of req.of) {
        const s = evaluateRequirement(r, t);
        if (s !== JwtStatus.Ok) return s;
      }
      return JwtStatus.Ok;
    }
    case 'any': {
      const fails = req.of.map((r) => evaluateRequirement(r, t));
      if (fails.includes(JwtStatus.Ok)) return JwtStatus.Ok;
      return fails.find((s) => s !== JwtStatus.Missed) ?? JwtStatus.Missed;
    }
  }
}

export interface JwtRule {
  matches(head: RequestHead): boolean;
  readonly requirement: Requirement;
}

function pathOnly(path: string): string {
  const q = path.search(/[?#]/);
  return q < 0 ? path : path.slice(0, q);
}

/** A RequirementRule: a RouteMatch (prefix, path, safe_regex, headers) and its requirement. */
export function readRule(r: Reader, providers: ReadonlyMap<string, JwtProvider>, named: ReadonlyMap<string, Requirement>): JwtRule {
  const m = r.obj('match');
  let pathTest: (p: string) => boolean = () => true;
  let headers: HeaderMatcher[] = [];
  if (m) {
    const caseSensitive = m.bool('case_sensitive', true);
    const norm = (s: string) => (caseSensitive ? s : s.toLowerCase());
    if (m.has('prefix')) {
      const p = norm(m.str('prefix'));
      pathTest = (x) => norm(x).startsWith(p);
    } else if (m.has('path')) {
      const p = norm(m.str('path'));
      pathTest = (x) => norm(x) === p;
    } else if (m.has('safe_regex')) {
      const re = readRegexMatcher(m.obj('safe_regex')!);
      pathTest = (x) => re?.full(x) ?? false;
    } else m.issues.error(m.path, 'a jwt_authn rule match needs prefix, path or safe_regex');
    headers = m.objs('headers').map(readHeaderMatcher);
    m.done();
  } else r.issues.error(r.at('match'), 'a jwt_authn rule needs a match');
  let requirement: Requirement = { kind: 'allow_missing_or_failed' };
  if (r.has('requires')) requirement = readRequirement(r.obj('requires')!, providers, named);
  else if (r.has('requirement_name')) {
    const n = r.str('requirement_name');
    const found = named.get(n);
    if (!found) r.issues.error(r.at('requirement_name'), `no requirement named "${n}" in requirement_map`);
    else requirement = found;
  }
  r.done();
  return { requirement, matches: (head) => pathTest(pathOnly(head.path)) && headers.every((h) => h.match(head)) };
}
