// security.istio.io rules: PeerAuthentication, RequestAuthentication, AuthorizationPolicy,
// after Istio's validating webhook and the CRDs' rules.
import { createPublicKey } from 'node:crypto';
import type { JsonWebKey } from 'node:crypto';
import type { AuthorizationPolicySpec, JWTRule, PeerAuthenticationSpec, RequestAuthenticationSpec } from '../types/security.ts';
import type { FieldPath } from '../source-map.ts';
import { checkAttachment, checkDuration, checkSelector } from './common.ts';
import type { Reporter } from './reporter.ts';
import { isHeaderName, isIpOrCidr, isPort } from './rules.ts';

export function validatePeerAuthentication(spec: PeerAuthenticationSpec, r: Reporter): void {
  checkSelector(spec.selector, ['spec', 'selector'], r);
  if (spec.portLevelMtls && !Object.keys(spec.selector?.matchLabels ?? {}).length) {
    r.error(['spec', 'portLevelMtls'], 'portLevelMtls requires a workload selector', 'add selector.matchLabels to say which workloads the port settings apply to', { key: true });
  }
  for (const port of Object.keys(spec.portLevelMtls ?? {})) {
    if (!/^\d+$/.test(port) || !isPort(Number(port))) r.error(['spec', 'portLevelMtls', port], `"${port}" is not a port number`, 'use port numbers from 1 to 65535 as keys', { key: true });
  }
}

export function validateRequestAuthentication(spec: RequestAuthenticationSpec, r: Reporter): void {
  checkAttachment(spec, r);
  const issuers = new Map<string, number>();
  spec.jwtRules?.forEach((rule, i) => {
    const path = ['spec', 'jwtRules', i];
    checkJwtRule(rule, path, r);
    const first = issuers.get(rule.issuer);
    if (first !== undefined) r.warn([...path, 'issuer'], `issuer "${rule.issuer}" is also configured by jwtRules[${first}]`, 'merge the rules for one issuer');
    else issuers.set(rule.issuer, i);
  });
}

function checkJwtRule(rule: JWTRule, path: FieldPath, r: Reporter): void {
  if (!rule.issuer.trim()) r.error([...path, 'issuer'], 'issuer must not be empty', 'write the token issuer (the iss claim), e.g. https://accounts.example.com');
  if (rule.jwks !== undefined && rule.jwksUri !== undefined) r.error([...path, 'jwks'], 'jwks and jwksUri cannot both be set', 'keep one: the inline key set or the URL to fetch it from');
  if (rule.jwksUri !== undefined) {
    let ok = false;
    try {
      const u = new URL(rule.jwksUri);
      ok = u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      ok = false;
    }
    if (!ok) r.error([...path, 'jwksUri'], `"${rule.jwksUri}" is not an http:// or https:// URL`, 'write the URL of the JSON Web Key Set');
  }
  if (rule.jwks !== undefined) {
    const problem = jwksProblem(rule.jwks);
    if (problem) r.error([...path, 'jwks'], `jwks is not a JSON Web Key Set: ${problem}`, 'paste the JWKS JSON: {"keys": [{"kty": "RSA", ...}]}');
  }
  rule.audiences?.forEach((a, j) => {
    if (!a) r.error([...path, 'audiences', j], 'audience must not be empty', 'remove the empty entry');
  });
  rule.fromHeaders?.forEach((h, j) => {
    if (!isHeaderName(h.name)) r.error([...path, 'fromHeaders', j, 'name'], `"${h.name}" is not a header name`, 'use a header name such as authorization');
  });
  rule.outputClaimToHeaders?.forEach((o, j) => {
    if (!isHeaderName(o.header)) r.error([...path, 'outputClaimToHeaders', j, 'header'], `"${o.header}" is not a header name`, 'use a header name such as x-jwt-claim-group');
    if (!o.claim) r.error([...path, 'outputClaimToHeaders', j, 'claim'], 'claim must not be empty', 'name the claim to copy');
  });
  if (rule.outputPayloadToHeader !== undefined && !isHeaderName(rule.outputPayloadToHeader)) r.error([...path, 'outputPayloadToHeader'], `"${rule.outputPayloadToHeader}" is not a header name`, 'use a header name');
  checkDuration(rule.timeout, [...path, 'timeout'], r);
}

function jwksProblem(text: string): string | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  const keys = (v as { keys?: unknown })?.keys;
  if (!Array.isArray(keys)) return 'it has no "keys" list';
  for (const [i, k] of keys.entries()) {
    const kty = (k as { kty?: unknown } | null)?.kty;
    if (typeof kty !== 'string') return `keys[${i}] has no "kty"`;
    if (kty === 'oct') continue;
    try {
      createPublicKey({ key: k as JsonWebKey, format: 'jwk' });
    } catch (err) {
      return `keys[${i}] (${kty}) is not a usable public key: ${(err as Error).message}`;
    }
  }
  return undefined;
}

const CONDITION_KEYS = [
  'source.ip', 'remote.ip', 'source.namespace', 'source.principal', 'request.auth.principal', 'request.auth.audiences',
  'request.auth.presenter', 'destination.ip', 'destination.port', 'connection.sni',
];

export function validateAuthorizationPolicy(spec: AuthorizationPolicySpec, r: Reporter): void {
  checkAttachment(spec, r);
  const action = spec.action ?? 'ALLOW';
  if (action === 'CUSTOM') {
    if (!spec.provider?.name) r.error(spec.provider ? ['spec', 'provider'] : ['spec', 'action'], 'a CUSTOM policy needs provider.name', 'name the extension provider that decides (from the mesh config)');
    if (!spec.rules?.length) r.warn(spec.rules ? ['spec', 'rules'] : ['spec', 'action'], 'a CUSTOM policy without rules never sends a request to the provider', 'add rules saying which requests go to the provider');
  } else if (spec.provider) {
    r.error(['spec', 'provider'], `provider can only be used with action CUSTOM, not ${action}`, 'set action: CUSTOM or remove provider');
  }
  if (action === 'DENY' && spec.rules === undefined) r.warn(['spec'], 'a DENY policy without rules never matches anything', 'add rules saying which requests to deny');
  if (action === 'AUDIT' && spec.rules === undefined) r.warn(['spec'], 'an AUDIT policy without rules never matches anything', 'add rules');
  spec.rules?.forEach((rule, i) => {
    const path = ['spec', 'rules', i];
    rule.from?.forEach((f, j) => {
      const fp = [...path, 'from', j, 'source'];
      const src = f.source;
      if (!src || Object.values(src).every((v) => !v?.length)) return r.error(fp, '`from.source` must not be empty', 'add principals, namespaces, ipBlocks… or remove this from entry');
      const sa = src.serviceAccounts?.length || src.notServiceAccounts?.length;
      if (sa && (src.principals || src.notPrincipals || src.namespaces || src.notNamespaces)) r.error(fp, 'serviceAccounts cannot be combined with principals or namespaces', 'use serviceAccounts alone, or principals/namespaces');
      for (const f2 of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const) {
        src[f2]?.forEach((ip, k) => {
          if (!isIpOrCidr(ip)) r.error([...fp, f2, k], `"${ip}" is not an IP address or CIDR`, 'write 10.0.0.1 or 10.0.0.0/16');
        });
      }
      for (const f2 of ['principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces'] as const) {
        src[f2]?.forEach((v, k) => checkWildcard(v, [...fp, f2, k], r));
      }
    });
    rule.to?.forEach((t, j) => {
      const tp = [...path, 'to', j, 'operation'];
      const op = t.operation;
      if (!op || Object.values(op).every((v) => !v?.length)) return r.error(tp, '`to.operation` must not be empty', 'add hosts, ports, methods or paths, or remove this to entry');
      for (const f2 of ['ports', 'notPorts'] as const) {
        op[f2]?.forEach((p, k) => {
          if (!/^\d+$/.test(p) || !isPort(Number(p))) r.error([...tp, f2, k], `"${p}" is not a port number`, 'write ports as strings of numbers: "8080"');
        });
      }
      for (const f2 of ['paths', 'notPaths'] as const) {
        op[f2]?.forEach((p, k) => {
          if (p.includes('{*}') || p.includes('{**}')) {
            const problem = pathTemplateProblem(p);
            if (problem) r.error([...tp, f2, k], `"${p}" is not a valid path template: ${problem}`, 'use {*} for one whole segment and {**} for the rest (last), e.g. /api/{*}/info or /files/{**}');
          } else checkWildcard(p, [...tp, f2, k], r);
          if (!p.startsWith('/') && !p.startsWith('*')) r.warn([...tp, f2, k], `path "${p}" does not start with "/" and will never match`, 'write the path as it appears in requests: /api/...');
        });
      }
      for (const f2 of ['hosts', 'notHosts', 'methods', 'notMethods'] as const) {
        op[f2]?.forEach((v, k) => checkWildcard(v, [...tp, f2, k], r));
      }
    });
    rule.when?.forEach((c, j) => {
      const cp = [...path, 'when', j];
      const key = c.key;
      const known = CONDITION_KEYS.includes(key) || /^request\.headers\[[^\]]+\]$/.test(key) || /^request\.auth\.claims(\[[^\]]+\])+$/.test(key) || key.startsWith('experimental.envoy.filters.');
      if (!known) r.error([...cp, 'key'], `unknown condition key "${key}"`, `use one of ${CONDITION_KEYS.join(', ')}, request.headers[NAME] or request.auth.claims[NAME]`);
      if (!c.values?.length && !c.notValues?.length) r.error(cp, 'a condition needs values or notValues', 'add the values to compare the key with');
      if (key === 'source.ip' || key === 'remote.ip' || key === 'destination.ip') {
        [...(c.values ?? []), ...(c.notValues ?? [])].forEach((v) => {
          if (!isIpOrCidr(v)) r.error(cp, `"${v}" is not an IP address or CIDR`, 'write 10.0.0.1 or 10.0.0.0/16');
        });
      }
      if (key === 'destination.port') {
        [...(c.values ?? []), ...(c.notValues ?? [])].forEach((v) => {
          if (!/^\d+$/.test(v) || !isPort(Number(v))) r.error(cp, `"${v}" is not a port number`, 'write ports as "8080"');
        });
      }
    });
  });
}

/**
 * Istio's rules for AuthorizationPolicy path templates: each segment is `{*}`, `{**}` or a literal
 * of URI path characters (no `*`, `{`, `}`), and no operator follows `{**}`.
 */
function pathTemplateProblem(p: string): string | undefined {
  let sawAny = false;
  for (const seg of p.replace(/^\/+|\/+$/g, '').split('/')) {
    if (seg === '{*}' || seg === '{**}') {
      if (sawAny) return '{**} must be the last operator';
      sawAny = seg === '{**}';
    } else if (/[{}]/.test(seg)) return `segment "${seg}" has "{" or "}" beyond {*} or {**}`;
    else if (!/^[a-zA-Z0-9\-._~%!$&'()+,;:@=]*$/.test(seg)) return `segment "${seg}" has characters a path template cannot match (such as "*")`;
  }
  return undefined;
}

/** Istio's string matching: a "*" only as a prefix, a suffix, or the whole value. */
function checkWildcard(v: string, path: FieldPath, r: Reporter): void {
  if (v === '') r.error(path, 'value must not be empty', 'remove the empty entry or use "*"');
  const inner = v.length > 1 ? v.slice(1, -1) : '';
  if (inner.includes('*') || (v.startsWith('*') && v.endsWith('*') && v.length > 1)) r.warn(path, `"${v}": a "*" that is not a prefix, a suffix or the whole value is matched literally`, 'use prefix*, *suffix or *');
}
