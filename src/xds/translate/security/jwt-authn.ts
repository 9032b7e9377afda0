// RequestAuthentication → envoy.filters.http.jwt_authn, as Istio generates it: one provider per
// jwtRule (`origins-<i>`, payload_in_metadata = issuer) and one rule for every path requiring any
// provider or no token at all (allow_missing): an invalid token is refused with 401, a request
// without a token passes and is left to AuthorizationPolicy (requestPrincipals).
// JWKS as Istio's default "hybrid" mode: a jwksUri served by a mesh service (Service or
// ServiceEntry with that port) is fetched by the proxy through the service's outbound cluster
// (remote_jwks); any other jwksUri, or the issuer's OpenID discovery when there is none, is
// fetched by the control plane and inlined (local_jwks).
import type { JWTRule, RequestAuthenticationSpec, Resource } from '../../../api/index.ts';
import { JWT_AUTHN_TYPE } from '../../../envoy/index.ts';
import type { EnvoyJson } from '../../../envoy/index.ts';
import type { PushContext } from '../../../model/push-context.ts';
import { envoyDuration, toSeconds } from '../duration.ts';
import { outboundClusterName } from '../names.ts';
import { jwksResolver } from './jwks-resolver.ts';

const JWKS_TIMEOUT = '5s';
const JWKS_CACHE = '300s';
/** What a provider whose keys are not known gets: no key, so every token is refused (401). */
const NO_KEYS = '{"keys":[]}';

/** The outbound cluster of the mesh service serving `uri`, if any. */
function jwksCluster(uri: string, push: PushContext): string | undefined {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return undefined;
  }
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  const svc = push.serviceByHost.get(u.hostname);
  return svc?.ports.some((p) => p.port === port) ? outboundClusterName(port, '', u.hostname) : undefined;
}

function jwks(rule: JWTRule, push: PushContext, where: string, notes: string[]): EnvoyJson {
  if (rule.jwks) return { local_jwks: { inline_string: rule.jwks } };
  let timeout = JWKS_TIMEOUT;
  try {
    if (rule.timeout) timeout = envoyDuration(rule.timeout);
  } catch {
    notes.push(`${where}: timeout "${rule.timeout}" is not a duration; ${JWKS_TIMEOUT} used`);
  }
  const cluster = rule.jwksUri ? jwksCluster(rule.jwksUri, push) : undefined;
  if (cluster) return { remote_jwks: { http_uri: { uri: rule.jwksUri, cluster, timeout }, cache_duration: JWKS_CACHE } };
  // No jwksUri: OpenID discovery of the issuer.
  const got = jwksResolver.get(rule.jwksUri ?? rule.issuer, toSeconds(timeout) * 1000, !rule.jwksUri);
  if (!got.jwks) notes.push(`${where}: JWKS of issuer ${rule.issuer} not available (${got.error}); its tokens are refused until it is`);
  return { local_jwks: { inline_string: got.jwks ?? NO_KEYS } };
}

function provider(rule: JWTRule, push: PushContext, where: string, notes: string[]): EnvoyJson {
  const p: EnvoyJson = { issuer: rule.issuer };
  if (rule.audiences?.length) p.audiences = rule.audiences;
  Object.assign(p, jwks(rule, push, where, notes));
  if (rule.fromHeaders?.length) p.from_headers = rule.fromHeaders.map((h) => ({ name: h.name, ...(h.prefix ? { value_prefix: h.prefix } : {}) }));
  if (rule.fromParams?.length) p.from_params = rule.fromParams;
  if (rule.fromCookies?.length) p.from_cookies = rule.fromCookies;
  if (rule.forwardOriginalToken) p.forward = true;
  if (rule.outputPayloadToHeader) p.forward_payload_header = rule.outputPayloadToHeader;
  if (rule.outputClaimToHeaders?.length) p.claim_to_headers = rule.outputClaimToHeaders.map((c) => ({ header_name: c.header, claim_name: c.claim }));
  p.payload_in_metadata = rule.issuer;
  return p;
}

export interface JwtBuild {
  filter: EnvoyJson;
  /** Rules left out, for logs: `ns/name jwtRules[i]: reason`. */
  notes: string[];
}

export function buildJwtAuthn(policies: readonly Resource<RequestAuthenticationSpec>[], push: PushContext): JwtBuild | undefined {
  const providers: Record<string, EnvoyJson> = {};
  const notes: string[] = [];
  let i = 0;
  for (const ra of policies) {
    (ra.spec?.jwtRules ?? []).forEach((rule, j) => {
      if (!rule.issuer) {
        notes.push(`${ra.metadata.namespace}/${ra.metadata.name} jwtRules[${j}]: no issuer; rule ignored`);
        return;
      }
      providers[`origins-${i++}`] = provider(rule, push, `${ra.metadata.namespace}/${ra.metadata.name} jwtRules[${j}]`, notes);
    });
  }
  const names = Object.keys(providers);
  if (!names.length) return undefined;
  return {
    filter: {
      name: 'envoy.filters.http.jwt_authn',
      typed_config: {
        '@type': JWT_AUTHN_TYPE,
        providers,
        rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [...names.map((n) => ({ provider_name: n })), { allow_missing: {} }] } } }],
        bypass_cors_preflight: true,
      },
    },
    notes,
  };
}
