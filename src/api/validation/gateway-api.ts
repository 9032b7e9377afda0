// Gateway API (gateway.networking.k8s.io) semantic rules: the CRDs' CEL rules and patterns that
// the structural schema (generated from the @kubernetes-models/gateway-api types) cannot carry,
// and warnings for the fields Rigging does not apply. What depends on other resources (parents,
// backends, grants) is checked when the resources are translated (src/model/gateway-api/).
import type * as G from '../types/gateway-api.ts';
import { LISTENER_PROTOCOL_OPTION, TLS_TERMINATE_MODE_OPTION } from '../types/gateway-api.ts';
import { GATEWAY_API_GROUP } from '../kinds.ts';
import type { FieldPath } from '../source-map.ts';
import { validateGatewayTls } from './gateway-tls.ts';
import type { Reporter } from './reporter.ts';
import { isHeaderName, isPort, regexProblem } from './rules.ts';

const HOSTNAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const PRECISE_HOSTNAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** GEP-2257 durations: up to four number+unit pairs, units h, m, s, ms. */
const GATEWAY_DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const CONTROLLER_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$/;
const GRPC_SERVICE = /^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$/i;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

function unsupported(r: Reporter, path: FieldPath, what: string, effect: string): void {
  r.warn(path, `${what} is not supported by Rigging and has no effect`, effect);
}

function checkHostname(h: string, path: FieldPath, r: Reporter): void {
  if (!HOSTNAME.test(h) || h.length > 253) r.error(path, `"${h}" is not a hostname`, 'write a lower-case DNS name, optionally starting with "*." (no IP address, no port)');
}

function checkDuration(v: string | undefined, path: FieldPath, r: Reporter): number | undefined {
  if (v === undefined) return undefined;
  if (!GATEWAY_DURATION.test(v)) {
    r.error(path, `"${v}" is not a Gateway API duration`, 'write numbers with units h, m, s or ms, such as 10s, 500ms or 1m30s');
    return undefined;
  }
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let ms = 0;
  for (const m of v.matchAll(/([0-9]+)(ms|h|m|s)/g)) ms += Number(m[1]) * units[m[2]];
  return ms;
}

export function validateGatewayClass(spec: G.GatewayClassSpec, r: Reporter): void {
  if (!CONTROLLER_NAME.test(spec.controllerName)) r.error(['spec', 'controllerName'], `"${spec.controllerName}" is not a controller name`, 'write domain/path, e.g. istio.io/gateway-controller');
  if (spec.parametersRef) unsupported(r, ['spec', 'parametersRef'], 'parametersRef (class-wide deployment parameters)', 'gateways of this class are configured by their own spec only');
}

const TLS_FORBIDDEN = new Set(['HTTP', 'TCP', 'UDP']);
const HOSTNAME_FORBIDDEN = new Set(['TCP', 'UDP']);
const TLS_TERMINATE_MODES = new Set(['SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']);
/** What makes a Gateway a network (east-west) gateway, its spec.addresses being where other networks reach it. */
const NETWORK_LABEL = 'topology.istio.io/network';
const AUTO_PASSTHROUGH_HINT = `an east-west gateway's AUTO_PASSTHROUGH listener is a TLS listener in mode Passthrough with option ${LISTENER_PROTOCOL_OPTION}: auto-passthrough (or on port 15443 of a Gateway labelled ${NETWORK_LABEL})`;

export function validateKubernetesGateway(spec: G.KubernetesGatewaySpec, r: Reporter): void {
  const names = new Set<string>();
  const combos = new Set<string>();
  spec.listeners.forEach((l, i) => {
    const at = ['spec', 'listeners', i];
    if (names.has(l.name)) r.error([...at, 'name'], `listener name "${l.name}" is used twice`, 'give every listener of a Gateway its own name');
    names.add(l.name);
    const combo = `${l.port}|${l.protocol}|${l.hostname ?? ''}`;
    if (combos.has(combo)) r.error(at, 'another listener has the same port, protocol and hostname', 'change the port or hostname of one of them');
    combos.add(combo);
    if (!isPort(l.port)) r.error([...at, 'port'], `${l.port} is not a port number`, 'use 1-65535');
    if (l.hostname !== undefined) {
      checkHostname(l.hostname, [...at, 'hostname'], r);
      if (HOSTNAME_FORBIDDEN.has(l.protocol)) r.error([...at, 'hostname'], `hostname must not be set for protocol ${l.protocol}`, 'remove hostname: a TCP listener matches every connection to its port');
    }
    if (l.tls && TLS_FORBIDDEN.has(l.protocol)) r.error([...at, 'tls'], `tls must not be set for protocol ${l.protocol}`, 'use protocol HTTPS (or TLS) for a TLS listener');
    if (!l.tls && (l.protocol === 'HTTPS' || l.protocol === 'TLS')) r.error(at, `tls must be set for protocol ${l.protocol}`, 'add tls with mode Terminate and certificateRefs (or mode Passthrough for TLS)');
    if (l.tls) {
      const mode = l.tls.mode ?? 'Terminate';
      const terminateMode = l.tls.options?.[TLS_TERMINATE_MODE_OPTION];
      if (mode === 'Terminate' && !l.tls.certificateRefs?.length && terminateMode !== 'ISTIO_MUTUAL') r.error([...at, 'tls'], 'certificateRefs must be set when mode is Terminate', 'name the TLS secret (credential) that holds the certificate and key');
      if (mode === 'Passthrough' && l.protocol === 'HTTPS') r.error([...at, 'tls', 'mode'], 'an HTTPS listener cannot pass TLS through', 'use protocol TLS for Passthrough, or mode Terminate');
      for (const key of Object.keys(l.tls.options ?? {})) {
        const keyAt = [...at, 'tls', 'options', key];
        const value = String(l.tls.options?.[key]);
        if (key === LISTENER_PROTOCOL_OPTION) {
          if (value !== 'auto-passthrough') r.warn(keyAt, `${key}: ${value} has no effect (Istio reads the value auto-passthrough only)`, AUTO_PASSTHROUGH_HINT);
          else if (mode !== 'Passthrough') r.warn(keyAt, `${key}: auto-passthrough makes this listener a network gateway port, but in mode ${mode} it terminates TLS (as istiod: AUTO_PASSTHROUGH needs mode Passthrough)`, AUTO_PASSTHROUGH_HINT);
        } else if (key !== TLS_TERMINATE_MODE_OPTION) unsupported(r, keyAt, `tls option ${key}`, `Rigging reads ${TLS_TERMINATE_MODE_OPTION} and ${LISTENER_PROTOCOL_OPTION} only`);
        else if (mode !== 'Terminate') r.warn(keyAt, `${key} has no effect in mode ${mode}`, value === 'AUTO_PASSTHROUGH' ? AUTO_PASSTHROUGH_HINT : 'remove it, or use mode Terminate');
        else if (!TLS_TERMINATE_MODES.has(value)) r.error(keyAt, `${key} must be SIMPLE, MUTUAL or ISTIO_MUTUAL, not ${value}`, value === 'AUTO_PASSTHROUGH' ? AUTO_PASSTHROUGH_HINT : 'MUTUAL verifies client certificates against the secret\'s ca.crt');
      }
      if ((l.tls.certificateRefs?.length ?? 0) > 1) unsupported(r, [...at, 'tls', 'certificateRefs', 1], 'a second certificateRef', 'the first certificate is served');
    }
    l.allowedRoutes?.kinds?.forEach((k, j) => {
      if ((k.group ?? 'gateway.networking.k8s.io') !== 'gateway.networking.k8s.io') r.warn([...at, 'allowedRoutes', 'kinds', j], `route kind ${k.group}/${k.kind} is not a Gateway API route`, 'Rigging attaches HTTPRoute, GRPCRoute, TCPRoute and TLSRoute');
    });
  });
  if (spec.addresses && r.resource.metadata.labels?.[NETWORK_LABEL] === undefined) unsupported(r, ['spec', 'addresses'], 'addresses', `the gateway listens on every address of its host; addresses are read on a Gateway labelled ${NETWORK_LABEL}, as its network gateway's`);
  spec.addresses?.forEach((a, i) => {
    if (a.type !== undefined && a.type !== 'IPAddress' && a.type !== 'Hostname') r.warn(['spec', 'addresses', i, 'type'], `address type ${a.type} is not used as a network gateway address (as istiod)`, 'use type IPAddress or Hostname');
  });
  if (spec.infrastructure) unsupported(r, ['spec', 'infrastructure'], 'infrastructure', 'the gateway deployment gets no extra labels, annotations or parameters');
  if (spec.tls) validateGatewayTls(spec.tls, r);
  const from = spec.allowedListeners?.namespaces?.from;
  if (from === 'Selector' && !spec.allowedListeners?.namespaces?.selector) r.error(['spec', 'allowedListeners', 'namespaces'], 'from: Selector needs a selector', 'add selector (matchLabels / matchExpressions over Namespace labels)');
  if (spec.defaultScope) unsupported(r, ['spec', 'defaultScope'], 'defaultScope', 'routes attach through parentRefs only');
}

/** A ListenerSet's listeners follow a Gateway's listener rules (names, port, protocol, hostname and TLS). */
export function validateListenerSet(spec: G.ListenerSetSpec, r: Reporter): void {
  validateKubernetesGateway({ gatewayClassName: '', listeners: spec.listeners }, r);
  const p = spec.parentRef;
  if ((p.group ?? GATEWAY_API_GROUP) !== GATEWAY_API_GROUP || (p.kind ?? 'Gateway') !== 'Gateway') r.warn(['spec', 'parentRef'], `parentRef ${p.group ?? ''}/${p.kind ?? ''} is not a Gateway API Gateway`, 'a ListenerSet attaches to a Gateway (gateway.networking.k8s.io); this one is left to other controllers');
}

const FILTER_FIELD: Record<string, keyof G.HTTPRouteFilter> = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestMirror: 'requestMirror',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  ExtensionRef: 'extensionRef',
  CORS: 'cors',
  ExternalAuth: 'externalAuth',
};

function checkHeaderFilter(f: G.HTTPHeaderFilter | undefined, path: FieldPath, r: Reporter): void {
  const seen = new Set<string>();
  for (const op of ['set', 'add'] as const) {
    f?.[op]?.forEach((h, i) => {
      if (!isHeaderName(h.name)) r.error([...path, op, i, 'name'], `"${h.name}" is not a header name`, 'use letters, digits and - only');
      const key = h.name.toLowerCase();
      if (seen.has(key)) r.error([...path, op, i, 'name'], `header "${h.name}" is named twice`, 'each header appears once across set and add');
      seen.add(key);
    });
  }
}

function checkPathModifier(p: G.HTTPPathModifier | undefined, path: FieldPath, r: Reporter, matches: G.HTTPRouteMatch[] | undefined): void {
  if (!p) return;
  if (p.type === 'ReplaceFullPath' && (p.replaceFullPath === undefined || p.replacePrefixMatch !== undefined)) r.error(path, 'type ReplaceFullPath needs replaceFullPath (and no replacePrefixMatch)', 'set replaceFullPath');
  if (p.type === 'ReplacePrefixMatch') {
    if (p.replacePrefixMatch === undefined || p.replaceFullPath !== undefined) r.error(path, 'type ReplacePrefixMatch needs replacePrefixMatch (and no replaceFullPath)', 'set replacePrefixMatch');
    if (matches !== undefined && (matches.length !== 1 || (matches[0].path?.type ?? 'PathPrefix') !== 'PathPrefix')) {
      r.error(path, 'replacePrefixMatch needs exactly one match, of path type PathPrefix', 'give this rule a single PathPrefix match');
    }
  }
}

function checkFilters(filters: G.HTTPRouteFilter[] | undefined, path: FieldPath, r: Reporter, matches: G.HTTPRouteMatch[] | undefined, grpc: boolean): void {
  const once = new Set<string>();
  filters?.forEach((f, i) => {
    const at = [...path, i];
    const field = FILTER_FIELD[f.type];
    if (!field) return;
    if (f[field] === undefined) r.error(at, `filter type ${f.type} needs ${field}`, `add ${field}`);
    for (const other of Object.values(FILTER_FIELD)) if (other !== field && f[other] !== undefined) r.error([...at, other], `${other} must not be set when the filter type is ${f.type}`, `remove ${other} or change type`);
    if (f.type !== 'RequestMirror' && f.type !== 'ExtensionRef') {
      if (once.has(f.type)) r.error(at, `filter ${f.type} appears twice`, 'merge them into one');
      once.add(f.type);
    }
    if (f.type === 'RequestHeaderModifier') checkHeaderFilter(f.requestHeaderModifier, [...at, 'requestHeaderModifier'], r);
    if (f.type === 'ResponseHeaderModifier') checkHeaderFilter(f.responseHeaderModifier, [...at, 'responseHeaderModifier'], r);
    if (f.type === 'RequestRedirect') {
      checkPathModifier(f.requestRedirect?.path, [...at, 'requestRedirect', 'path'], r, matches);
      if (f.requestRedirect?.hostname && !PRECISE_HOSTNAME.test(f.requestRedirect.hostname)) r.error([...at, 'requestRedirect', 'hostname'], `"${f.requestRedirect.hostname}" is not a precise hostname`, 'write a DNS name without wildcard');
    }
    if (f.type === 'URLRewrite') {
      checkPathModifier(f.urlRewrite?.path, [...at, 'urlRewrite', 'path'], r, matches);
      if (f.urlRewrite?.hostname && !PRECISE_HOSTNAME.test(f.urlRewrite.hostname)) r.error([...at, 'urlRewrite', 'hostname'], `"${f.urlRewrite.hostname}" is not a precise hostname`, 'write a DNS name without wildcard');
    }
    if (f.type === 'RequestMirror') {
      const m = f.requestMirror;
      if (m?.percent !== undefined && m.fraction !== undefined) r.error([...at, 'requestMirror'], 'percent and fraction cannot both be set', 'keep one');
      if (m?.fraction && m.fraction.numerator > (m.fraction.denominator ?? 100)) r.error([...at, 'requestMirror', 'fraction'], 'numerator must not exceed denominator', 'write a fraction of at most 1');
    }
    if (f.type === 'ExtensionRef') unsupported(r, at, 'filter type ExtensionRef', 'requests this rule matches get HTTP 500, as the Gateway API requires for a filter that cannot be applied');
    if (f.type === 'CORS') checkCors(f.cors, [...at, 'cors'], r);
    if (f.type === 'ExternalAuth') unsupported(r, at, 'filter type ExternalAuth', 'requests this rule matches get HTTP 500, as the Gateway API requires for a filter that cannot be applied');
    if (grpc && (f.type === 'RequestRedirect' || f.type === 'URLRewrite')) r.error([...at, 'type'], `filter type ${f.type} is not allowed in a GRPCRoute`, 'use RequestHeaderModifier, ResponseHeaderModifier or RequestMirror');
  });
  if (once.has('RequestRedirect') && once.has('URLRewrite')) r.error(path, 'a rule cannot have both RequestRedirect and URLRewrite', 'keep one of them');
}

/** The CRD's patterns: an origin is `*`, or http(s)://host[:port] whose host may hold `*`. */
const CORS_ORIGIN = /^(\*|https?:\/\/(\*|(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*)(:[0-9]{1,5})?)$/;

function checkCors(c: G.HTTPCORSFilter | undefined, path: FieldPath, r: Reporter): void {
  c?.allowOrigins?.forEach((o, i) => {
    if (!CORS_ORIGIN.test(o)) r.error([...path, 'allowOrigins', i], `"${o}" is not a CORS origin`, 'write *, or scheme://host[:port] with scheme http or https (the host may start with *.)');
  });
  if (c?.maxAge !== undefined && (!Number.isInteger(c.maxAge) || c.maxAge < 1)) r.error([...path, 'maxAge'], `maxAge ${c.maxAge} must be a whole number of seconds, at least 1`, 'omit it for the default of 5 seconds');
  for (const k of ['allowHeaders', 'exposeHeaders'] as const) {
    c?.[k]?.forEach((h, i) => {
      if (h !== '*' && !isHeaderName(h)) r.error([...path, k, i], `"${h}" is not a header name`, 'use letters, digits and - only, or *');
    });
  }
}

function checkBackendRefs(refs: G.HTTPBackendRef[] | undefined, path: FieldPath, r: Reporter, grpc: boolean): void {
  refs?.forEach((b, i) => {
    const at = [...path, i];
    if ((b.group ?? '') === '' && (b.kind ?? 'Service') === 'Service' && b.port === undefined) r.error(at, `backendRef ${b.name} needs a port`, 'add the Service port to send to');
    if (b.weight !== undefined && (b.weight < 0 || b.weight > 1_000_000 || !Number.isInteger(b.weight))) r.error([...at, 'weight'], `weight ${b.weight} is out of range`, 'use an integer from 0 to 1000000');
    if (b.port !== undefined && !isPort(b.port)) r.error([...at, 'port'], `${b.port} is not a port number`, 'use 1-65535');
    b.filters?.forEach((f, j) => {
      if (f.type !== 'RequestHeaderModifier' && f.type !== 'ResponseHeaderModifier') unsupported(r, [...at, 'filters', j], `backendRef filter type ${f.type}`, 'backendRef filters may modify headers only; put the filter on the rule');
    });
    checkFilters(b.filters, [...at, 'filters'], r, undefined, grpc);
  });
}

function checkParentRefs(refs: G.ParentReference[] | undefined, r: Reporter): void {
  refs?.forEach((p, i) => {
    if (p.port !== undefined && !isPort(p.port)) r.error(['spec', 'parentRefs', i, 'port'], `${p.port} is not a port number`, 'use 1-65535');
  });
}

function checkHeaderMatches(list: { name: string; value: string; type?: string }[] | undefined, path: FieldPath, r: Reporter, what: string): void {
  list?.forEach((h, i) => {
    if (what === 'header' && !isHeaderName(h.name)) r.error([...path, i, 'name'], `"${h.name}" is not a header name`, 'use letters, digits and - only');
    if (h.type === 'RegularExpression') {
      const p = regexProblem(h.value);
      if (p) r.error([...path, i, 'value'], `invalid regular expression: ${p}`, 'write an RE2 regular expression');
    }
  });
}

function checkPathMatch(m: G.HTTPRouteMatch['path'], path: FieldPath, r: Reporter): void {
  if (!m) return;
  const type = m.type ?? 'PathPrefix';
  const v = m.value ?? '/';
  if (type === 'RegularExpression') {
    const p = regexProblem(v);
    if (p) r.error([...path, 'value'], `invalid regular expression: ${p}`, 'write an RE2 regular expression');
    return;
  }
  if (!v.startsWith('/')) r.error([...path, 'value'], 'value must be an absolute path', 'start the path with /');
  else if (/\/\/|\/\.\/|\/\.\.\/|%2f|%2F|#/.test(v) || v.endsWith('/..') || v.endsWith('/.')) r.error([...path, 'value'], `"${v}" is not a normalized path`, 'remove //, /./, /../, %2f and # from the path');
}

function checkHostnames(hostnames: string[] | undefined, r: Reporter): void {
  hostnames?.forEach((h, i) => checkHostname(h, ['spec', 'hostnames', i], r));
}

export function validateHTTPRoute(spec: G.HTTPRouteSpec, r: Reporter): void {
  checkParentRefs(spec.parentRefs, r);
  checkHostnames(spec.hostnames, r);
  if (spec.useDefaultGateways) unsupported(r, ['spec', 'useDefaultGateways'], 'useDefaultGateways', 'the route attaches through its parentRefs only');
  spec.rules?.forEach((rule, i) => {
    const at = ['spec', 'rules', i];
    rule.matches?.forEach((m, j) => {
      checkPathMatch(m.path, [...at, 'matches', j, 'path'], r);
      checkHeaderMatches(m.headers, [...at, 'matches', j, 'headers'], r, 'header');
      checkHeaderMatches(m.queryParams, [...at, 'matches', j, 'queryParams'], r, 'query parameter');
    });
    checkFilters(rule.filters, [...at, 'filters'], r, rule.matches, false);
    checkBackendRefs(rule.backendRefs, [...at, 'backendRefs'], r, false);
    const request = checkDuration(rule.timeouts?.request, [...at, 'timeouts', 'request'], r);
    const backend = checkDuration(rule.timeouts?.backendRequest, [...at, 'timeouts', 'backendRequest'], r);
    if (request !== undefined && backend !== undefined && request !== 0 && (backend === 0 || backend > request)) {
      r.error([...at, 'timeouts', 'backendRequest'], 'backendRequest must not be longer than request', 'lower backendRequest or raise request');
    }
    checkDuration(rule.retry?.backoff, [...at, 'retry', 'backoff'], r);
    rule.retry?.codes?.forEach((c, j) => {
      if (!Number.isInteger(c) || c < 400 || c > 599) r.error([...at, 'retry', 'codes', j], `${c} is not a retriable status code`, 'use 400-599');
    });
    if (rule.sessionPersistence) unsupported(r, [...at, 'sessionPersistence'], 'sessionPersistence (not implemented by Istio either: istio/istio#55839)', 'requests are balanced without affinity; a DestinationRule consistentHash (httpCookie) on the backend gives it');
  });
}

export function validateGRPCRoute(spec: G.GRPCRouteSpec, r: Reporter): void {
  checkParentRefs(spec.parentRefs, r);
  checkHostnames(spec.hostnames, r);
  if (spec.useDefaultGateways) unsupported(r, ['spec', 'useDefaultGateways'], 'useDefaultGateways', 'the route attaches through its parentRefs only');
  spec.rules?.forEach((rule, i) => {
    const at = ['spec', 'rules', i];
    rule.matches?.forEach((m, j) => {
      const mm = m.method;
      const mp = [...at, 'matches', j, 'method'];
      if (mm) {
        if (mm.service === undefined && mm.method === undefined) r.error(mp, "one or both of 'service' or 'method' must be specified", 'name the gRPC service (package.Service) and/or method');
        if ((mm.type ?? 'Exact') === 'Exact') {
          if (mm.service !== undefined && !GRPC_SERVICE.test(mm.service)) r.error([...mp, 'service'], `"${mm.service}" is not a gRPC service name`, 'write package.Service');
          if (mm.method !== undefined && !GRPC_METHOD.test(mm.method)) r.error([...mp, 'method'], `"${mm.method}" is not a gRPC method name`, 'write the method name without slashes');
        } else {
          for (const k of ['service', 'method'] as const) {
            const v = mm[k];
            const p = v === undefined ? undefined : regexProblem(v);
            if (p) r.error([...mp, k], `invalid regular expression: ${p}`, 'write an RE2 regular expression');
          }
        }
      }
      checkHeaderMatches(m.headers, [...at, 'matches', j, 'headers'], r, 'header');
    });
    checkFilters(rule.filters, [...at, 'filters'], r, undefined, true);
    checkBackendRefs(rule.backendRefs, [...at, 'backendRefs'], r, true);
    if (rule.sessionPersistence) unsupported(r, [...at, 'sessionPersistence'], 'sessionPersistence (not implemented by Istio either: istio/istio#55839)', 'requests are balanced without affinity; a DestinationRule consistentHash (httpCookie) on the backend gives it');
  });
}

/** TCPRoute and TLSRoute: rules of backendRefs only (no matches, no filters). */
function checkL4Route(spec: G.TCPRouteSpec | G.TLSRouteSpec, kind: string, r: Reporter): void {
  checkParentRefs(spec.parentRefs, r);
  if (spec.useDefaultGateways) unsupported(r, ['spec', 'useDefaultGateways'], 'useDefaultGateways', 'the route attaches through its parentRefs only');
  if (!spec.rules.length) r.error(['spec', 'rules'], `a ${kind} needs a rule`, 'add a rule with backendRefs');
  spec.rules.forEach((rule, i) => {
    const at = ['spec', 'rules', i];
    if (!rule.backendRefs.length) r.error([...at, 'backendRefs'], 'a rule needs at least one backendRef', 'name the Service (and port) to send connections to');
    checkBackendRefs(rule.backendRefs, [...at, 'backendRefs'], r, false);
    if (i > 0) r.warn(at, `only the first rule of a ${kind} is used: a rule has no matches, so the first takes every connection`, 'put all backendRefs in one rule');
  });
}

export function validateTCPRoute(spec: G.TCPRouteSpec, r: Reporter): void {
  checkL4Route(spec, 'TCPRoute', r);
}

export function validateTLSRoute(spec: G.TLSRouteSpec, r: Reporter, apiVersion: string): void {
  checkL4Route(spec, 'TLSRoute', r);
  checkHostnames(spec.hostnames, r);
  if (!spec.hostnames?.length && !apiVersion.endsWith('/v1alpha2')) r.error(['spec', 'hostnames'], `hostnames is required in ${apiVersion}`, 'list the SNI names this route takes (or use v1alpha2, where a route without hostnames takes every name of its listener)');
}

export function validateReferenceGrant(spec: G.ReferenceGrantSpec, r: Reporter): void {
  spec.from.forEach((f, i) => {
    if (f.group !== 'gateway.networking.k8s.io') r.warn(['spec', 'from', i, 'group'], `references from group "${f.group}" are not made by any kind Rigging reads`, 'grant to gateway.networking.k8s.io HTTPRoute, GRPCRoute, TCPRoute, TLSRoute or Gateway');
  });
}
