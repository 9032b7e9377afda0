// RequestAuthentication → envoy.filters.http.jwt_authn, as Istio generates it: one provider per
// jwtRule (`origins-<i>`, payload_in_metadata = issuer) and one rule for every path requiring any
// provider or no token at all (allow_missing): an invalid token is refused with 401, a request
// without a token passes and is left to AuthorizationPolicy (requestPrincipals).
import type { JWTRule, RequestAuthenticationSpec, Resource } from '../../../api/index.ts';
import { JWT_AUTHN_TYPE } from '../../../envoy/index.ts';
import type { EnvoyJson } from '../../../envoy/index.ts';

const JWKS_TIMEOUT = '5s';
const JWKS_CACHE = '300s';

/** The outbound cluster a JWKS URI would be fetched through (Istio's naming). */
function jwksCluster(uri: string): string {
  try {
    const u = new URL(uri);
    const port = u.port || (u.protocol === 'https:' ? '443' : '80');
    return `outbound|${port}||${u.hostname}`;
  } catch {
    return '';
  }
}

function provider(rule: JWTRule): EnvoyJson {
  const p: EnvoyJson = { issuer: rule.issuer };
  if (rule.audiences?.length) p.audiences = rule.audiences;
  if (rule.jwks) p.local_jwks = { inline_string: rule.jwks };
  else if (rule.jwksUri) p.remote_jwks = { http_uri: { uri: rule.jwksUri, cluster: jwksCluster(rule.jwksUri), timeout: rule.timeout ?? JWKS_TIMEOUT }, cache_duration: JWKS_CACHE };
  else p.local_jwks = { inline_string: '{"keys":[]}' };
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

export function buildJwtAuthn(policies: readonly Resource<RequestAuthenticationSpec>[]): JwtBuild | undefined {
  const providers: Record<string, EnvoyJson> = {};
  const notes: string[] = [];
  let i = 0;
  for (const ra of policies) {
    (ra.spec?.jwtRules ?? []).forEach((rule, j) => {
      if (!rule.issuer) {
        notes.push(`${ra.metadata.namespace}/${ra.metadata.name} jwtRules[${j}]: no issuer; rule ignored`);
        return;
      }
      if (!rule.jwks && !rule.jwksUri) {
        // Istio would discover the JWKS through OpenID discovery of the issuer; not supported yet.
        notes.push(`${ra.metadata.namespace}/${ra.metadata.name} jwtRules[${j}]: needs jwksUri or jwks (OpenID discovery is not supported); every token of issuer ${rule.issuer} is refused`);
      }
      providers[`origins-${i++}`] = provider(rule);
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
