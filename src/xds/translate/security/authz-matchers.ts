// Istio's value matching for AuthorizationPolicy fields, as Envoy matchers: `*` is presence,
// `abc*` a prefix, `*abc` a suffix, anything else exact.
import type { EnvoyJson } from '../../../envoy/index.ts';

export const AUTHN_METADATA = 'istio_authn';

export function stringMatcher(v: string, prefix = ''): EnvoyJson {
  if (v === '*') return { safe_regex: { regex: '.+' } };
  if (v.endsWith('*')) return { prefix: prefix + v.slice(0, -1) };
  if (v.startsWith('*')) return { suffix: v.slice(1) };
  return { exact: prefix + v };
}

export function headerMatcher(name: string, v: string, ignoreCase = false): EnvoyJson {
  if (v === '*') return { name, present_match: true };
  return { name, string_match: { ...stringMatcher(v), ...(ignoreCase ? { ignore_case: true } : {}) } };
}

const URI_TEMPLATE_MATCH_TYPE = 'type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig';

/** Istio's path templates: `{*}` (one segment) or `{**}` (the rest) in a path. */
export function isPathTemplate(v: string): boolean {
  return v.includes('{*}') || v.includes('{**}');
}

/** A path template as Envoy's URI template matcher ({*} → *, {**} → **), as Istio generates it. */
export function pathTemplate(v: string): EnvoyJson {
  return { name: 'uri-template', typed_config: { '@type': URI_TEMPLATE_MATCH_TYPE, path_template: v.replaceAll('{**}', '**').replaceAll('{*}', '*') } };
}

/** An IP or CIDR as an Envoy CidrRange; undefined when it is neither. */
export function cidrRange(v: string): EnvoyJson | undefined {
  const [address, len] = v.split('/');
  const isV4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(address);
  const isV6 = address.includes(':');
  if (!isV4 && !isV6) return undefined;
  const max = isV4 ? 32 : 128;
  const n = len === undefined ? max : Number(len);
  if (!Number.isInteger(n) || n < 0 || n > max) return undefined;
  return { address_prefix: address, prefix_len: n };
}

export function metadataString(path: string[], v: string): EnvoyJson {
  return { filter: AUTHN_METADATA, path: path.map((key) => ({ key })), value: { string_match: stringMatcher(v) } };
}

export function metadataList(filter: string, path: string[], v: string): EnvoyJson {
  return { filter, path: path.map((key) => ({ key })), value: { list_match: { one_of: { string_match: stringMatcher(v) } } } };
}

/** `request.auth.claims[a][b]` → ["a", "b"]; undefined when malformed. */
export function bracketNames(s: string): string[] | undefined {
  const names: string[] = [];
  const re = /\[([^\]]+)\]/gy;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(s))) {
    names.push(m[1]);
    end = re.lastIndex;
  }
  return names.length && end === s.length ? names : undefined;
}
