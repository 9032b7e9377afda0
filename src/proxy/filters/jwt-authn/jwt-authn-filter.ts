// envoy.filters.http.jwt_authn: picks the first rule whose match fits the request, extracts and
// verifies the tokens of the providers its requirement names (JWKS fetches pause the stream), and
// either continues (verified tokens' payloads go to dynamic metadata) or answers 401 (403 for a
// disallowed audience) with Envoy's message and `www-authenticate: Bearer realm=..., error="invalid_token"`
// (without the error when the token is missing).
// Verified tokens also fill `istio_authn` metadata (request.auth.principal/audiences/presenter/claims),
// the attributes Istio's authorization policies match on.
import { JWT_AUTHN_TYPE } from '../../../envoy/index.ts';
import type { JWTPayload } from 'jose';
import type { Stat } from '../../stats/stats.ts';
import { registerHttpFilter } from '../registry.ts';
import { FilterStatus, type HttpFilter, type HttpFilterFactory, type RequestHead, type StreamCallbacks } from '../filter.ts';
import { JwtStatus, readProvider, type ExtractedToken, type JwtProvider } from './jwt-provider.ts';
import { evaluateRequirement, providersOf, readRequirement, readRule, type JwtRule, type Requirement } from './jwt-requirement.ts';

export const JWT_AUTHN_FILTER_NAME = 'envoy.filters.http.jwt_authn';
export const ISTIO_AUTHN_METADATA = 'istio_authn';

interface JwtAuthnConfig {
  providers: ReadonlyMap<string, JwtProvider>;
  rules: JwtRule[];
  bypassCorsPreflight: boolean;
  allowed: Stat;
  denied: Stat;
}

/** Istio's claim attributes: every leaf as a list of strings (the RBAC list matchers expect lists). */
function listify(v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' && x !== null ? x : String(x)));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, listify(x)]));
  return [String(v)];
}

function istioAuthn(payload: JWTPayload): Record<string, unknown> {
  const out: Record<string, unknown> = {
    'request.auth.principal': `${payload.iss ?? ''}/${payload.sub ?? ''}`,
    'request.auth.claims': listify(payload),
  };
  if (payload.aud !== undefined) out['request.auth.audiences'] = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (typeof payload.azp === 'string') out['request.auth.presenter'] = payload.azp;
  return out;
}

class JwtAuthnFilter implements HttpFilter {
  private readonly c: JwtAuthnConfig;
  private readonly cb: StreamCallbacks;
  private destroyed = false;
  constructor(c: JwtAuthnConfig, cb: StreamCallbacks) {
    this.c = c;
    this.cb = cb;
  }

  decodeHeaders(head: RequestHead): FilterStatus {
    if (this.c.bypassCorsPreflight && head.method === 'OPTIONS' && head.headers.origin !== undefined && head.headers['access-control-request-method'] !== undefined) return FilterStatus.Continue;
    const rule = this.c.rules.find((r) => r.matches(head));
    if (!rule) return FilterStatus.Continue;
    // Always asynchronous: continueDecoding must come after this StopIteration.
    void Promise.resolve().then(() => this.check(head, rule.requirement));
    return FilterStatus.StopIteration;
  }

  private async check(head: RequestHead, req: Requirement): Promise<void> {
    const statuses = new Map<string, JwtStatus>();
    const verified: { p: JwtProvider; t: ExtractedToken; payload: JWTPayload }[] = [];
    let anyToken = false;
    for (const name of providersOf(req)) {
      const p = this.c.providers.get(name);
      if (!p) continue;
      const tokens = p.extract(head);
      if (!tokens.length) {
        statuses.set(name, JwtStatus.Missed);
        continue;
      }
      anyToken = true;
      let status: JwtStatus = JwtStatus.Missed;
      for (const t of tokens) {
        const res = await p.verify(t.token);
        status = res.status;
        if (res.payload) {
          verified.push({ p, t, payload: res.payload });
          break;
        }
      }
      statuses.set(name, status);
    }
    if (this.destroyed) return;
    const verdict = evaluateRequirement(req, { anyToken, status: (n) => statuses.get(n) ?? JwtStatus.Missed });
    if (verdict !== JwtStatus.Ok) {
      this.c.denied.value++;
      const status = verdict === JwtStatus.AudienceNotAllowed ? 403 : 401;
      // Envoy's original URI: the path with its query, cut at 256 characters; no error for a missing token.
      const realm = `Bearer realm="${head.scheme}://${head.authority}${head.path.slice(0, 256)}"`;
      this.cb.sendLocalReply({
        status,
        body: verdict,
        headers: { 'www-authenticate': verdict === JwtStatus.Missed ? realm : `${realm}, error="invalid_token"` },
        details: `jwt_authn_access_denied{${verdict.replace(/ /g, '_')}}`,
      });
      return;
    }
    this.c.allowed.value++;
    const state = (this.cb.streamInfo.filterState ??= {});
    const md = (state[JWT_AUTHN_FILTER_NAME] ??= {}) as Record<string, unknown>;
    for (const v of verified) v.p.onVerified(head, v.t, v.payload, md);
    if (verified.length) state[ISTIO_AUTHN_METADATA] = istioAuthn(verified[0].payload);
    this.cb.continueDecoding();
  }

  onDestroy(): void {
    this.destroyed = true;
  }
}

export const jwtAuthnFilterFactory: HttpFilterFactory<JwtAuthnConfig> = {
  name: JWT_AUTHN_FILTER_NAME,
  typeUrls: [JWT_AUTHN_TYPE],
  compile(r, ctx) {
    const p = `http.${ctx.statPrefix}.jwt_authn.${r.str('stat_prefix')}`;
    const jwksCtx = { clusters: ctx.clusters, initManager: ctx.initManager, statPrefix: p, stats: { success: ctx.stats.counter(p + 'jwks_fetch_success'), failed: ctx.stats.counter(p + 'jwks_fetch_failed') } };
    const providers = new Map<string, JwtProvider>();
    const pr = r.obj('providers');
    for (const name of Object.keys(pr?.raw ?? {})) providers.set(name, readProvider(name, pr!.obj(name)!, jwksCtx));
    pr?.done();
    const named = new Map<string, Requirement>();
    const rm = r.obj('requirement_map');
    for (const name of Object.keys(rm?.raw ?? {})) named.set(name, readRequirement(rm!.obj(name)!, providers));
    rm?.done();
    const rules = r.objs('rules').map((x) => readRule(x, providers, named));
    const bypassCorsPreflight = r.bool('bypass_cors_preflight', false);
    for (const k of ['filter_state_rules', 'strip_failure_response']) {
      if (r.has(k)) r.issues.error(r.at(k), `jwt_authn "${k}" is not supported by rig proxy`);
      r.accept(k);
    }
    r.done();
    return { providers, rules, bypassCorsPreflight, allowed: ctx.stats.counter(p + 'allowed'), denied: ctx.stats.counter(p + 'denied') };
  },
  create: (c, cb) => new JwtAuthnFilter(c, cb),
};

export function setup(): void {
  registerHttpFilter(jwtAuthnFilterFactory);
}
