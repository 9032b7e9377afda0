// A route's hash_policy list (Envoy RouteAction.HashPolicy) compiled into a function that computes
// LoadBalancerContext.hash for ring hash / maglev clusters.
//
//   const hashOf = compileHashPolicy(route.hash_policy, (msg) => log.warn(msg));   // once per RDS update
//   const { hash, setCookie } = hashOf({ headers, remoteAddress, remotePort, query });
//   lb.pick({ hash });  if (setCookie) response.setHeader('set-cookie', setCookie.header)
//
// Each policy yields xxHash64 of: the header's value(s) (several values: sorted, chained), the
// cookie's value, the downstream source IP, or the first value of a query parameter. Results are
// combined as hash = rotl1(hash) ^ next. A policy marked terminal stops the evaluation once a hash
// exists. A cookie policy with a ttl whose cookie is absent generates the cookie (value derived
// from the downstream address) and returns it in setCookie: the router must add that Set-Cookie to
// the response so that the client sticks to the host from then on.
import { RigError } from '../../../core/errors.ts';
import { re2 } from '../../routing/re2.ts';
import { UINT64_MASK, xxHash64, xxHash64List } from './xxhash.ts';
import { bool, durationMs, list, newIssues, object, string, warnUnsupported, type ConfigIssues, type Json } from './config-fields.ts';

export interface HashPolicyRequest {
  /** Request headers, lower-case names (node:http shape). ':authority' falls back to 'host'. */
  headers: Record<string, string | string[] | undefined>;
  remoteAddress?: string;
  remotePort?: number;
  /** The query string (with or without '?') or parsed parameters. */
  query?: URLSearchParams | string;
}

export interface SetCookie {
  name: string;
  value: string;
  /** Ready-made Set-Cookie header value. */
  header: string;
}

export interface HashPolicyResult {
  hash?: bigint;
  setCookie?: SetCookie;
}

export type HashPolicyFn = (req: HashPolicyRequest) => HashPolicyResult;

type Evaluate = (req: HashPolicyRequest, out: HashPolicyResult) => bigint | undefined;

interface CompiledPolicy {
  evaluate: Evaluate;
  terminal: boolean;
}

const NONE: HashPolicyResult = Object.freeze({});

function headerValues(req: HashPolicyRequest, name: string): string[] | undefined {
  let v = req.headers[name];
  if (v === undefined && name === ':authority') v = req.headers.host;
  if (v === undefined) return undefined;
  return Array.isArray(v) ? (v.length === 0 ? undefined : v) : [v];
}

function compileHeader(h: Json, path: string, issues: ConfigIssues): Evaluate | undefined {
  warnUnsupported(h, ['header_name', 'regex_rewrite'], path, issues);
  const name = string(h, 'header_name', path, issues);
  if (!name) {
    issues.errors.push(`${path}.header_name: required`);
    return undefined;
  }
  const lower = name.toLowerCase();
  let rewrite: ((s: string) => string) | undefined;
  const rr = object(h.regex_rewrite, `${path}.regex_rewrite`, issues);
  if (rr) {
    const pattern = string(object(rr.pattern, `${path}.regex_rewrite.pattern`, issues), 'regex', `${path}.regex_rewrite.pattern`, issues);
    const substitution = string(rr, 'substitution', `${path}.regex_rewrite`, issues) ?? '';
    try {
      const re = re2().compile(pattern ?? '');
      // Envoy writes capture groups as \1; re2js's JS-mode replacement uses $1.
      const repl = substitution.replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1');
      rewrite = (s) => re.matcher(s).replaceAll(repl);
    } catch (err) {
      issues.errors.push(`${path}.regex_rewrite.pattern.regex: invalid RE2 regex: ${(err as Error).message}`);
    }
  }
  return (req) => {
    let values = headerValues(req, lower);
    if (!values) return undefined;
    if (rewrite) values = values.map(rewrite);
    if (values.length === 1) return xxHash64(values[0]);
    return xxHash64List([...values].sort());
  };
}

export function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const all = Array.isArray(header) ? header : [header];
  for (const line of all) {
    for (const part of line.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
      let v = part.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      return v;
    }
  }
  return undefined;
}

function compileCookie(c: Json, path: string, issues: ConfigIssues): Evaluate | undefined {
  warnUnsupported(c, ['name', 'ttl', 'path', 'attributes'], path, issues);
  const name = string(c, 'name', path, issues);
  if (!name) {
    issues.errors.push(`${path}.name: required`);
    return undefined;
  }
  const hasTtl = c.ttl !== undefined && c.ttl !== null;
  const maxAge = Math.floor(durationMs(c, 'ttl', path, issues, 0) / 1000);
  const cookiePath = string(c, 'path', path, issues);
  let suffix = '';
  if (maxAge > 0) suffix += `; Max-Age=${maxAge}`;
  if (cookiePath) suffix += `; Path=${cookiePath}`;
  list(c.attributes, `${path}.attributes`, issues).forEach((a, i) => {
    const attr = object(a, `${path}.attributes[${i}]`, issues);
    const an = string(attr, 'name', `${path}.attributes[${i}]`, issues);
    const av = string(attr, 'value', `${path}.attributes[${i}]`, issues);
    if (an) suffix += av ? `; ${an}=${av}` : `; ${an}`;
  });
  suffix += '; HttpOnly';
  return (req, out) => {
    const v = cookieValue(req.headers.cookie, name);
    if (v !== undefined) return xxHash64(v);
    if (!hasTtl) return undefined;
    const address = req.remoteAddress === undefined ? '' : `${req.remoteAddress}:${req.remotePort ?? 0}`;
    const value = xxHash64(address).toString(16).padStart(16, '0');
    out.setCookie = { name, value, header: `${name}="${value}"${suffix}` };
    return xxHash64(value);
  };
}

function compileSourceIp(cp: Json, path: string, issues: ConfigIssues): Evaluate | undefined {
  warnUnsupported(cp, ['source_ip'], path, issues);
  if (!bool(cp, 'source_ip', path, issues, false)) return undefined;
  return (req) => {
    const ip = req.remoteAddress;
    if (!ip) return undefined;
    return xxHash64(ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip);
  };
}

function compileQueryParameter(q: Json, path: string, issues: ConfigIssues): Evaluate | undefined {
  warnUnsupported(q, ['name'], path, issues);
  const name = string(q, 'name', path, issues);
  if (!name) {
    issues.errors.push(`${path}.name: required`);
    return undefined;
  }
  return (req) => {
    if (req.query === undefined) return undefined;
    const params = typeof req.query === 'string' ? new URLSearchParams(req.query.startsWith('?') ? req.query.slice(1) : req.query) : req.query;
    const v = params.get(name);
    return v === null ? undefined : xxHash64(v);
  };
}

function compileOne(p: Json, path: string, issues: ConfigIssues): CompiledPolicy | undefined {
  warnUnsupported(p, ['header', 'cookie', 'connection_properties', 'query_parameter', 'terminal'], path, issues);
  const terminal = bool(p, 'terminal', path, issues, false);
  const header = object(p.header, `${path}.header`, issues);
  const cookie = object(p.cookie, `${path}.cookie`, issues);
  const cp = object(p.connection_properties, `${path}.connection_properties`, issues);
  const qp = object(p.query_parameter, `${path}.query_parameter`, issues);
  const evaluate = header
    ? compileHeader(header, `${path}.header`, issues)
    : cookie
      ? compileCookie(cookie, `${path}.cookie`, issues)
      : cp
        ? compileSourceIp(cp, `${path}.connection_properties`, issues)
        : qp
          ? compileQueryParameter(qp, `${path}.query_parameter`, issues)
          : undefined;
  return evaluate ? { evaluate, terminal } : undefined;
}

/**
 * Compiles a route's hash_policy list. Invalid entries throw a RigError naming every problem
 * (field paths under `path`); fields we do not implement (e.g. filter_state) go to `warn`.
 */
export function compileHashPolicy(hashPolicies: unknown, warn?: (message: string) => void, path = 'hash_policy'): HashPolicyFn {
  const issues = newIssues();
  const compiled: CompiledPolicy[] = [];
  list(hashPolicies, path, issues).forEach((p, i) => {
    const o = object(p, `${path}[${i}]`, issues);
    const c = o && compileOne(o, `${path}[${i}]`, issues);
    if (c) compiled.push(c);
  });
  if (issues.errors.length > 0) throw new RigError('MESH_ERR_INVALID_CONFIG', issues.errors.join('; '));
  if (warn) for (const w of issues.warnings) warn(w);
  if (compiled.length === 0) return () => NONE;
  return (req) => {
    const out: HashPolicyResult = {};
    let hash: bigint | undefined;
    for (const p of compiled) {
      const h = p.evaluate(req, out);
      if (h !== undefined) hash = hash === undefined ? h : (((hash << 1n) | (hash >> 63n)) & UINT64_MASK) ^ h;
      if (p.terminal && hash !== undefined) break;
    }
    out.hash = hash;
    return out;
  };
}
