// Envoy's RBAC permission and principal trees (envoy.config.rbac.v3), compiled once into
// predicates over one request (HTTP) or one connection (network filter: head is undefined).
// Header, path and SNI matchers on a connection never match, as in Envoy's network RBAC.
import net from 'node:net';
import type { Reader } from '../../config/reader.ts';
import type { ConnectionInfo, RequestHead } from '../filter.ts';
import { readHeaderMatcher } from '../../routing/header-matcher.ts';
import { readStringMatcher, type StringMatcher } from '../../routing/string-matcher.ts';
import { readMetadataMatcher } from './rbac-metadata.ts';
import { compileUriTemplate, URI_TEMPLATE_MATCH_TYPE } from './rbac-uri-template.ts';

/** What a policy is evaluated against. */
export interface RbacInput {
  readonly conn: ConnectionInfo;
  /** Undefined for the network filter (L4 only). */
  readonly head?: RequestHead;
  /**
   * remote_ip: the stream's downstream remote address after the HCM's x-forwarded-for processing
   * (StreamInfo.downstreamRemoteIp); the connection's remote address for the network filter.
   * source_ip reads the connection's remote address (a PROXY header's source), direct_remote_ip
   * the physical peer, as in Envoy.
   */
  readonly remoteIp: string;
  /** Dynamic metadata by filter name (jwt_authn payloads, istio_authn attributes). */
  readonly metadata: Readonly<Record<string, unknown>>;
}

export type Predicate = (x: RbacInput) => boolean;

const ANY: Predicate = () => true;
const NONE: Predicate = () => false;

function and(ps: Predicate[]): Predicate {
  return (x) => ps.every((p) => p(x));
}
function or(ps: Predicate[]): Predicate {
  return (x) => ps.some((p) => p(x));
}

function readCidr(r: Reader): (ip: string) => boolean {
  const address = r.str('address_prefix');
  const len = r.num('prefix_len', -1);
  r.done();
  const family = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) ? 'ipv6' : undefined;
  if (!family) {
    r.issues.error(r.at('address_prefix'), `"${address}" is not an IP address`);
    return () => false;
  }
  const max = family === 'ipv4' ? 32 : 128;
  const bits = len < 0 ? max : len;
  if (bits > max) r.issues.error(r.at('prefix_len'), `prefix_len ${bits} is longer than ${max}`);
  const list = new net.BlockList();
  list.addSubnet(address, Math.min(bits, max), family);
  return (ip) => {
    const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    const a = v4mapped ? v4mapped[1] : ip;
    if (net.isIPv4(a)) return list.check(a, 'ipv4');
    return net.isIPv6(a) ? list.check(a, 'ipv6') : false;
  };
}

function readPathMatcher(r: Reader): StringMatcher {
  const p = r.obj('path');
  r.done();
  if (!p) {
    r.issues.error(r.path, 'a path matcher needs "path"');
    return { match: () => false };
  }
  return readStringMatcher(p);
}

/** The path without query string and fragment, as Envoy's url_path matches it. */
function pathOnly(path: string): string {
  const q = path.search(/[?#]/);
  return q < 0 ? path : path.slice(0, q);
}

function headerPredicate(r: Reader): Predicate {
  const m = readHeaderMatcher(r);
  return (x) => (x.head ? m.match(x.head) : false);
}

function urlPathPredicate(r: Reader): Predicate {
  const m = readPathMatcher(r);
  return (x) => (x.head ? m.match(pathOnly(x.head.path)) : false);
}

/** A uri_template permission: a TypedExtensionConfig holding a UriTemplateMatchConfig. */
function uriTemplatePredicate(r: Reader): Predicate {
  r.accept('name'); // the extension's label; the typed_config decides
  const tc = r.obj('typed_config');
  r.done();
  const type = tc?.str('@type');
  if (!tc || type !== URI_TEMPLATE_MATCH_TYPE) {
    r.issues.error(r.at('typed_config'), `uri_template needs a typed_config of type ${URI_TEMPLATE_MATCH_TYPE}, got ${type ?? 'none'}`);
    return NONE;
  }
  const template = tc.str('path_template');
  tc.done();
  let re: RegExp;
  try {
    re = compileUriTemplate(template);
  } catch (e) {
    r.issues.error(r.at('typed_config.path_template'), (e as Error).message);
    return NONE;
  }
  return (x) => (x.head ? re.test(pathOnly(x.head.path)) : false);
}

/** Rules Permission and Principal both have, with the same meaning. */
type SharedRuleKind = 'any' | 'header' | 'url_path' | 'urlPath' | 'metadata';

function readSharedRule(r: Reader, kind: SharedRuleKind): Predicate {
  switch (kind) {
    case 'any':
      return r.bool('any', false) ? ANY : NONE;
    case 'header':
      return headerPredicate(r.obj('header')!);
    case 'url_path':
    case 'urlPath':
      return urlPathPredicate(r.obj(kind)!);
    case 'metadata': {
      const m = readMetadataMatcher(r.obj('metadata')!);
      return (x) => m(x.metadata);
    }
  }
}

/** and_rules/or_rules (`rules`) of a Permission, and_ids/or_ids (`ids`) of a Principal. */
function readRuleSet(r: Reader, kind: string, field: string, read: (r: Reader) => Predicate): Predicate {
  const set = r.obj(kind)!;
  const ps = set.objs(field).map(read);
  set.done();
  return kind.startsWith('and') ? and(ps) : or(ps);
}

function oneOf(r: Reader): string | undefined {
  const present = Object.keys(r.raw).filter((k) => k !== '@type' && r.raw[k] !== undefined && r.raw[k] !== null);
  if (present.length !== 1) {
    r.issues.error(r.path, `expected exactly one rule kind, got ${present.join(', ') || 'none'}`);
    return undefined;
  }
  return present[0];
}

/** Compiles an envoy.config.rbac.v3.Permission. */
export function readPermission(r: Reader): Predicate {
  const kind = oneOf(r);
  let p: Predicate = NONE;
  switch (kind) {
    case 'and_rules':
    case 'andRules':
    case 'or_rules':
    case 'orRules':
      p = readRuleSet(r, kind, 'rules', readPermission);
      break;
    case 'any':
    case 'header':
    case 'url_path':
    case 'urlPath':
    case 'metadata':
      p = readSharedRule(r, kind);
      break;
    case 'destination_ip':
    case 'destinationIp': {
      const m = readCidr(r.obj(kind)!);
      p = (x) => m(x.conn.localAddress);
      break;
    }
    case 'destination_port':
    case 'destinationPort': {
      const port = r.num(kind, 0);
      p = (x) => x.conn.localPort === port;
      break;
    }
    case 'destination_port_range':
    case 'destinationPortRange': {
      const range = r.obj(kind)!;
      const start = range.num('start', 0);
      const end = range.num('end', 0);
      range.done();
      p = (x) => x.conn.localPort >= start && x.conn.localPort < end;
      break;
    }
    case 'not_rule':
    case 'notRule': {
      const inner = readPermission(r.obj(kind)!);
      p = (x) => !inner(x);
      break;
    }
    case 'uri_template':
    case 'uriTemplate':
      p = uriTemplatePredicate(r.obj(kind)!);
      break;
    case 'requested_server_name':
    case 'requestedServerName': {
      const m = readStringMatcher(r.obj(kind)!);
      p = (x) => m.match(x.conn.sni ?? '');
      break;
    }
    case undefined:
      break;
    default:
      r.issues.error(r.at(kind), `RBAC permission "${kind}" is not supported by rig proxy`);
      r.get(kind);
  }
  r.done();
  return p;
}

/** Compiles an envoy.config.rbac.v3.Principal. */
export function readPrincipal(r: Reader): Predicate {
  const kind = oneOf(r);
  let p: Predicate = NONE;
  switch (kind) {
    case 'and_ids':
    case 'andIds':
    case 'or_ids':
    case 'orIds':
      p = readRuleSet(r, kind, 'ids', readPrincipal);
      break;
    case 'any':
    case 'header':
    case 'url_path':
    case 'urlPath':
    case 'metadata':
      p = readSharedRule(r, kind);
      break;
    case 'authenticated': {
      const a = r.obj('authenticated')!;
      const pn = a.obj('principal_name');
      const m = pn ? readStringMatcher(pn) : undefined;
      a.done();
      // Envoy: URI SANs, then DNS SANs; no principal_name = any authenticated (mTLS) peer.
      p = (x) => {
        if (!x.conn.tls || (x.conn.peerPrincipal === undefined && !x.conn.peerSans?.length)) return false;
        if (!m) return true;
        const names = x.conn.peerSans?.length ? x.conn.peerSans : x.conn.peerPrincipal ? [x.conn.peerPrincipal] : [];
        return names.some((n) => m.match(n));
      };
      break;
    }
    case 'source_ip':
    case 'sourceIp': {
      const m = readCidr(r.obj(kind)!);
      p = (x) => m(x.conn.remoteAddress);
      break;
    }
    case 'direct_remote_ip':
    case 'directRemoteIp': {
      const m = readCidr(r.obj(kind)!);
      p = (x) => m(x.conn.directRemoteAddress ?? x.conn.remoteAddress);
      break;
    }
    case 'remote_ip':
    case 'remoteIp': {
      const m = readCidr(r.obj(kind)!);
      p = (x) => m(x.remoteIp);
      break;
    }
    case 'not_id':
    case 'notId': {
      const inner = readPrincipal(r.obj(kind)!);
      p = (x) => !inner(x);
      break;
    }
    case undefined:
      break;
    default:
      r.issues.error(r.at(kind), `RBAC principal "${kind}" is not supported by rig proxy`);
      r.get(kind);
  }
  r.done();
  return p;
}
