// VirtualService rules, after Istio's validating webhook (pkg/config/validation/virtualservice.go).
import type { FieldPath } from '../source-map.ts';
import type { HTTPMatchRequest, HTTPRoute, RouteDestination, StringMatch, VirtualServiceSpec } from '../types/networking.ts';
import { checkDestination, checkDuration, checkExportTo, checkLabels, checkPercent, checkRegex } from './common.ts';
import type { Reporter } from './reporter.ts';
import { HOST_HINT, hostProblem, isDns1123Label, isDns1123Subdomain, isHeaderName, isIpOrCidr, isPort } from './rules.ts';

const REDIRECT_CODES = [301, 302, 303, 307, 308];
const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx', 'refused-stream',
  'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure', 'cancelled', 'deadline-exceeded', 'internal',
  'resource-exhausted', 'unavailable',
]);

export function validateVirtualService(spec: VirtualServiceSpec, r: Reporter): void {
  const hosts = spec.hosts ?? [];
  const gateways = spec.gateways ?? [];
  const delegate = hosts.length === 0;
  if (delegate && gateways.length > 0) r.error(['spec', 'gateways'], 'a VirtualService without hosts is a delegate and cannot name gateways', 'add hosts, or remove gateways and reference this VirtualService from a root VirtualService with `delegate`');
  const boundToMesh = gateways.length === 0 || gateways.includes('mesh');
  const seen = new Set<string>();
  hosts.forEach((h, i) => {
    const path = ['spec', 'hosts', i];
    if (seen.has(h)) r.error(path, `duplicate host "${h}"`, 'list each host once');
    seen.add(h);
    if (h === '*' && boundToMesh) {
      r.error(path, 'wildcard host "*" is not allowed for a VirtualService bound to the mesh', 'name the hosts, or bind the VirtualService to a gateway only');
      return;
    }
    const p = hostProblem(h, { allowIP: true });
    if (p) r.error(path, p, HOST_HINT);
  });
  gateways.forEach((g, i) => checkGatewayRef(g, ['spec', 'gateways', i], r));
  checkExportTo(spec.exportTo, r);
  if (!spec.http?.length && !spec.tcp?.length && !spec.tls?.length) {
    r.error(['spec'], 'no routes: http, tcp or tls must be provided', 'add an http (or tcp/tls) route');
  }
  spec.http?.forEach((route, i) => checkHttpRoute(route, ['spec', 'http', i], delegate, r));
  spec.tcp?.forEach((route, i) => {
    const path = ['spec', 'tcp', i];
    route.match?.forEach((m, j) => checkL4Match(m, [...path, 'match', j], r));
    checkRouteDestinations(route.route ?? [], [...path, 'route'], r);
  });
  spec.tls?.forEach((route, i) => {
    const path = ['spec', 'tls', i];
    route.match.forEach((m, j) => {
      checkL4Match(m, [...path, 'match', j], r);
      m.sniHosts.forEach((sni, k) => {
        const p = hostProblem(sni);
        if (p) r.error([...path, 'match', j, 'sniHosts', k], p, HOST_HINT);
        else if (hosts.length && !hosts.some((h) => hostCovers(h, sni) || hostCovers(sni, h))) {
          r.error([...path, 'match', j, 'sniHosts', k], `SNI host "${sni}" is not covered by any of the VirtualService's hosts`, `use one of ${hosts.join(', ')} (or a host they match)`);
        }
      });
    });
    checkRouteDestinations(route.route ?? [], [...path, 'route'], r);
  });
}

function checkGatewayRef(g: string, path: FieldPath, r: Reporter): void {
  if (g === 'mesh') return;
  const parts = g.split('/');
  const ok = parts.length === 1 ? isDns1123Subdomain(parts[0]) : parts.length === 2 && isDns1123Label(parts[0]) && isDns1123Subdomain(parts[1]);
  if (!ok) r.error(path, `"${g}" is not a gateway reference`, 'write "mesh", "name" or "namespace/name"');
}

/** Whether host pattern `a` matches host `b` (wildcards on the left). */
export function hostCovers(a: string, b: string): boolean {
  if (a === b || a === '*') return true;
  if (a.startsWith('*')) return b.endsWith(a.slice(1));
  return false;
}

function checkHttpRoute(route: HTTPRoute, path: FieldPath, delegateVs: boolean, r: Reporter): void {
  const kinds = (['route', 'redirect', 'directResponse', 'delegate'] as const).filter((k) => route[k] !== undefined && !(k === 'route' && route.route?.length === 0));
  if (kinds.length === 0) r.error(path, 'an HTTP route needs one of route, redirect, directResponse or delegate', 'add route with at least one destination');
  else if (kinds.length > 1) r.error([...path, kinds[1]], `${kinds.join(' and ')} cannot be combined in one HTTP route`, `keep only one of ${kinds.join(', ')}`, { key: true });
  if (route.delegate && delegateVs) r.error([...path, 'delegate'], 'a delegate VirtualService cannot delegate again', 'route to destinations directly');
  if (route.rewrite && (route.redirect || route.directResponse)) r.error([...path, 'rewrite'], `rewrite cannot be used with ${route.redirect ? 'redirect' : 'directResponse'}`, 'remove rewrite');
  if (route.mirror && route.mirrors) r.error([...path, 'mirrors'], 'mirror and mirrors cannot both be set', 'move the mirror into mirrors');
  if (route.name !== undefined && route.name === '') r.error([...path, 'name'], 'route name must not be empty', 'remove name or give one');
  route.match?.forEach((m, i) => checkHttpMatch(m, [...path, 'match', i], r));
  checkRouteDestinations(route.route ?? [], [...path, 'route'], r);
  route.route?.forEach((d, i) => checkHeaderOps(d.headers, [...path, 'route', i, 'headers'], r));
  checkHeaderOps(route.headers, [...path, 'headers'], r);
  if (route.redirect) {
    const rd = route.redirect;
    const rp = [...path, 'redirect'];
    if (rd.redirectCode !== undefined && !REDIRECT_CODES.includes(rd.redirectCode)) r.error([...rp, 'redirectCode'], `${rd.redirectCode} is not a redirect status code`, `use one of ${REDIRECT_CODES.join(', ')}`);
    if (rd.uri === undefined && rd.authority === undefined && rd.scheme === undefined && rd.port === undefined && rd.derivePort === undefined) r.error(rp, 'redirect must set uri, authority, scheme, port or derivePort', 'say where to redirect');
    if (rd.port !== undefined && !isPort(rd.port)) r.error([...rp, 'port'], `port ${rd.port} is out of range`, 'use a port from 1 to 65535');
    if (rd.uri !== undefined && rd.uri === '') r.error([...rp, 'uri'], 'redirect uri must not be empty', 'write a path such as /v2/login');
  }
  if (route.directResponse) {
    const s = route.directResponse.status;
    if (s < 200 || s > 599) r.error([...path, 'directResponse', 'status'], `${s} is not a valid HTTP status`, 'use a status from 200 to 599');
  }
  if (route.rewrite) {
    const rw = route.rewrite;
    if (rw.uri === undefined && rw.authority === undefined && rw.uriRegexRewrite === undefined) r.error([...path, 'rewrite'], 'rewrite must set uri, authority or uriRegexRewrite', 'say what to rewrite, or remove rewrite');
    if (rw.uri !== undefined && rw.uriRegexRewrite !== undefined) r.error([...path, 'rewrite', 'uriRegexRewrite'], 'uri and uriRegexRewrite cannot both be set', 'keep one of them');
    if (rw.uriRegexRewrite) {
      checkRegex(rw.uriRegexRewrite.match, [...path, 'rewrite', 'uriRegexRewrite', 'match'], r);
      if (rw.uriRegexRewrite.match === undefined || rw.uriRegexRewrite.rewrite === undefined) r.error([...path, 'rewrite', 'uriRegexRewrite'], 'uriRegexRewrite needs both match and rewrite', 'add the missing field');
    }
  }
  checkDuration(route.timeout, [...path, 'timeout'], r, 0);
  if (route.retries) {
    const rt = route.retries;
    const rp = [...path, 'retries'];
    checkDuration(rt.perTryTimeout, [...rp, 'perTryTimeout'], r);
    checkDuration(rt.backoff, [...rp, 'backoff'], r);
    if (rt.retryOn !== undefined) {
      rt.retryOn.split(',').forEach((p) => {
        const policy = p.trim();
        if (!RETRY_ON.has(policy) && !/^[1-5]\d\d$/.test(policy)) r.error([...rp, 'retryOn'], `"${policy}" is not a retry condition`, `use Envoy retry policies (${[...RETRY_ON].slice(0, 6).join(', ')}, …) or HTTP status codes, comma-separated`);
      });
    }
  }
  if (route.fault) {
    const f = route.fault;
    const fp = [...path, 'fault'];
    if (!f.delay && !f.abort) r.error(fp, 'fault must set delay or abort', 'add delay or abort');
    if (f.delay) {
      if (f.delay.fixedDelay === undefined && f.delay.exponentialDelay === undefined) r.error([...fp, 'delay'], 'delay needs fixedDelay', 'add fixedDelay: 5s');
      checkDuration(f.delay.fixedDelay, [...fp, 'delay', 'fixedDelay'], r);
      checkPercent(f.delay.percentage?.value, [...fp, 'delay', 'percentage', 'value'], r);
      checkPercent(f.delay.percent, [...fp, 'delay', 'percent'], r);
    }
    if (f.abort) {
      if (f.abort.httpStatus === undefined && f.abort.grpcStatus === undefined && f.abort.http2Error === undefined) r.error([...fp, 'abort'], 'abort needs httpStatus (or grpcStatus)', 'add httpStatus: 500');
      // istiod's validateHTTPFaultInjectionAbort (pkg/config/validation/validation.go) rejects it: "HTTP/2 abort fault injection not supported yet".
      if (f.abort.http2Error !== undefined) r.error([...fp, 'abort', 'http2Error'], 'HTTP/2 abort fault injection (http2Error) is not supported, as in Istio (istiod rejects it)', 'use httpStatus or grpcStatus');
      if (f.abort.httpStatus !== undefined && (f.abort.httpStatus < 200 || f.abort.httpStatus > 599)) r.error([...fp, 'abort', 'httpStatus'], `${f.abort.httpStatus} is not a valid HTTP status for an abort`, 'use a status from 200 to 599');
      checkPercent(f.abort.percentage?.value, [...fp, 'abort', 'percentage', 'value'], r);
    }
  }
  if (route.mirror) checkDestination(route.mirror, [...path, 'mirror'], r);
  route.mirrors?.forEach((m, i) => {
    checkDestination(m.destination, [...path, 'mirrors', i, 'destination'], r);
    checkPercent(m.percentage?.value, [...path, 'mirrors', i, 'percentage', 'value'], r);
  });
  checkPercent(route.mirrorPercentage?.value, [...path, 'mirrorPercentage', 'value'], r);
  if (route.corsPolicy) {
    const c = route.corsPolicy;
    c.allowOrigins?.forEach((o, i) => checkStringMatch(o, [...path, 'corsPolicy', 'allowOrigins', i], r));
    checkDuration(c.maxAge, [...path, 'corsPolicy', 'maxAge'], r, 0);
    c.allowMethods?.forEach((m, i) => {
      if (!/^[A-Z]+$/.test(m)) r.error([...path, 'corsPolicy', 'allowMethods', i], `"${m}" is not an HTTP method`, 'use upper-case methods such as GET, POST');
    });
    [...(c.allowHeaders ?? []).map((h, i) => ['allowHeaders', h, i] as const), ...(c.exposeHeaders ?? []).map((h, i) => ['exposeHeaders', h, i] as const)].forEach(([field, h, i]) => {
      if (h !== '*' && !isHeaderName(h)) r.error([...path, 'corsPolicy', field, i], `"${h}" is not a header name`, 'use a header name such as x-custom-header');
    });
  }
}

function checkStringMatch(m: StringMatch, path: FieldPath, r: Reporter, allowEmpty = false): void {
  const set = (['exact', 'prefix', 'regex'] as const).filter((k) => m[k] !== undefined);
  if (set.length === 0 && !allowEmpty) r.error(path, 'a string match needs exact, prefix or regex', 'add one of them');
  if (m.regex !== undefined) checkRegex(m.regex, [...path, 'regex'], r);
}

function checkHttpMatch(m: HTTPMatchRequest, path: FieldPath, r: Reporter): void {
  for (const f of ['uri', 'scheme', 'method', 'authority'] as const) {
    if (m[f]) checkStringMatch(m[f], [...path, f], r);
  }
  for (const f of ['headers', 'withoutHeaders', 'queryParams'] as const) {
    for (const [name, sm] of Object.entries(m[f] ?? {})) {
      if (f !== 'queryParams' && !isHeaderName(name)) r.error([...path, f, name], `"${name}" is not a header name`, 'use a header name such as end-user', { key: true });
      if (f !== 'queryParams' && name !== name.toLowerCase()) r.warn([...path, f, name], `header names are matched case-insensitively; Istio documents them in lower case`, `write "${name.toLowerCase()}"`, { key: true });
      if (f === 'headers' && ['uri', 'scheme', 'method', 'authority'].includes(name)) r.warn([...path, f, name], `a header match on "${name}" is ignored`, `use the ${name} match instead`, { key: true });
      checkStringMatch(sm ?? {}, [...path, f, name], r, true);
    }
  }
  if (m.port !== undefined && !isPort(m.port)) r.error([...path, 'port'], `port ${m.port} is out of range`, 'use a port from 1 to 65535');
  checkLabels(m.sourceLabels, [...path, 'sourceLabels'], r);
  m.gateways?.forEach((g, i) => checkGatewayRef(g, [...path, 'gateways', i], r));
  if (m.sourceNamespace !== undefined && !isDns1123Label(m.sourceNamespace)) r.error([...path, 'sourceNamespace'], `"${m.sourceNamespace}" is not a namespace name`, 'use a namespace name');
}

function checkL4Match(m: { destinationSubnets?: string[]; port?: number; sourceLabels?: Record<string, string>; gateways?: string[]; sourceSubnet?: string }, path: FieldPath, r: Reporter): void {
  m.destinationSubnets?.forEach((s, i) => {
    if (!isIpOrCidr(s)) r.error([...path, 'destinationSubnets', i], `"${s}" is not an IP address or CIDR`, 'write 10.0.0.0/16 or 10.1.2.3');
  });
  if (m.sourceSubnet !== undefined && !isIpOrCidr(m.sourceSubnet)) r.error([...path, 'sourceSubnet'], `"${m.sourceSubnet}" is not an IP address or CIDR`, 'write 10.0.0.0/16');
  if (m.port !== undefined && !isPort(m.port)) r.error([...path, 'port'], `port ${m.port} is out of range`, 'use a port from 1 to 65535');
  checkLabels(m.sourceLabels, [...path, 'sourceLabels'], r);
  m.gateways?.forEach((g, i) => checkGatewayRef(g, [...path, 'gateways', i], r));
}

function checkRouteDestinations(dests: RouteDestination[], path: FieldPath, r: Reporter): void {
  let total = 0;
  dests.forEach((d, i) => {
    checkDestination(d.destination, [...path, i, 'destination'], r);
    if (d.weight !== undefined && (d.weight < 0 || !Number.isInteger(d.weight))) r.error([...path, i, 'weight'], `weight ${d.weight} must be a whole number >= 0`, 'use weights such as 80 and 20');
    total += d.weight ?? (dests.length === 1 ? 100 : 0);
  });
  if (dests.length > 1) {
    if (total === 0) r.error(path, 'the destinations\' weights add up to 0: no traffic would be sent', 'give the destinations weights that add up to 100');
    else if (total !== 100) r.warn(path, `the destinations' weights add up to ${total}, not 100; they are applied in proportion`, 'make the weights add up to 100');
  }
}

function checkHeaderOps(h: HTTPRoute['headers'], path: FieldPath, r: Reporter): void {
  for (const dir of ['request', 'response'] as const) {
    const ops = h?.[dir];
    if (!ops) continue;
    for (const op of ['set', 'add'] as const) {
      for (const name of Object.keys(ops[op] ?? {})) {
        if (!isHeaderName(name) || name.startsWith(':')) r.error([...path, dir, op, name], `"${name}" is not a header name that can be ${op === 'set' ? 'set' : 'added'}`, 'use a regular header name (no pseudo-headers)', { key: true });
      }
    }
    ops.remove?.forEach((name, i) => {
      if (!isHeaderName(name) || name.startsWith(':')) r.error([...path, dir, 'remove', i], `"${name}" is not a header name that can be removed`, 'use a regular header name');
    });
  }
}
