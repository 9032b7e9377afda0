// Envoy's internal / external request determination and the header sanitizing that follows it
// (HCM use_remote_address, xff_num_trusted_hops, internal_address_config; route config
// internal_only_headers). A request is internal when the trusted client address is internal and,
// without use_remote_address, when x-forwarded-for holds exactly that one address (no XFF, or a
// longer chain, means external). External requests lose the x-envoy-* headers that steer a proxy
// (retries, timeouts, tracing...), so that a client outside the mesh cannot steer a gateway or the
// sidecars behind it; internal ones get x-envoy-internal: true; an edge request (external, with
// use_remote_address) also gets x-envoy-external-address.
import net from 'node:net';
import type { Reader } from '../config/reader.ts';
import type { HeaderMap } from '../filters/filter.ts';

/** Removed from every external request (Envoy's cleanInternalHeaders). */
const EXTERNAL_STRIPPED = [
  'x-envoy-internal',
  'x-envoy-retriable-status-codes',
  'x-envoy-retriable-header-names',
  'x-envoy-retry-on',
  'x-envoy-retry-grpc-on',
  'x-envoy-max-retries',
  'x-envoy-upstream-alt-stat-name',
  'x-envoy-upstream-rq-timeout-ms',
  'x-envoy-upstream-rq-per-try-timeout-ms',
  'x-envoy-upstream-rq-timeout-alt-response',
  'x-envoy-upstream-stream-duration-ms',
  'x-envoy-expected-rq-timeout-ms',
  'x-envoy-force-trace',
  'x-envoy-ip-tags',
  'x-envoy-original-url',
  'x-envoy-hedge-on-per-try-timeout',
];

/** Also removed from edge requests: only the first proxy of the mesh may set these. */
const EDGE_STRIPPED = ['x-envoy-decorator-operation', 'x-envoy-downstream-service-cluster', 'x-envoy-downstream-service-node', 'x-envoy-external-address'];

/** Which client addresses count as internal: Envoy's defaults (RFC 1918, loopback, RFC 4193) or internal_address_config.cidr_ranges. */
export interface InternalAddresses {
  readonly ranges: net.BlockList;
  readonly unixSockets: boolean;
}

function defaultRanges(): net.BlockList {
  const b = new net.BlockList();
  b.addSubnet('10.0.0.0', 8, 'ipv4');
  b.addSubnet('172.16.0.0', 12, 'ipv4');
  b.addSubnet('192.168.0.0', 16, 'ipv4');
  b.addSubnet('127.0.0.0', 8, 'ipv4');
  b.addSubnet('fc00::', 7, 'ipv6');
  b.addSubnet('::1', 128, 'ipv6');
  return b;
}

export const DEFAULT_INTERNAL: InternalAddresses = { ranges: defaultRanges(), unixSockets: false };

/** Reads internal_address_config (unix_sockets, cidr_ranges); without it, Envoy's default ranges. */
export function compileInternalAddresses(r: Reader | undefined): InternalAddresses {
  if (!r) return DEFAULT_INTERNAL;
  const unixSockets = r.bool('unix_sockets', false);
  const cidrs = r.objs('cidr_ranges');
  if (!cidrs.length) {
    r.done();
    return { ranges: unixSockets ? DEFAULT_INTERNAL.ranges : new net.BlockList(), unixSockets };
  }
  const ranges = new net.BlockList();
  for (const c of cidrs) {
    const prefix = c.str('address_prefix');
    const family = net.isIPv4(prefix) ? 'ipv4' : net.isIPv6(prefix) ? 'ipv6' : undefined;
    const max = family === 'ipv4' ? 32 : 128;
    const len = c.num('prefix_len', max);
    if (!family) c.issues.error(c.at('address_prefix'), `"${prefix}" is not an IPv4 or IPv6 address`);
    else if (len < 0 || len > max || !Number.isInteger(len)) c.issues.error(c.at('prefix_len'), `prefix_len must be an integer from 0 to ${max}`);
    else ranges.addSubnet(prefix, len, family);
    c.done();
  }
  r.done();
  return { ranges, unixSockets };
}

function unmapped(ip: string): string {
  return ip.length > 7 && ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

export function isInternalAddress(cfg: InternalAddresses, ip: string): boolean {
  const a = unmapped(ip.trim());
  if (net.isIPv4(a)) return cfg.ranges.check(a, 'ipv4');
  if (net.isIPv6(a)) return cfg.ranges.check(a, 'ipv6');
  // A unix socket peer has no IP address.
  return cfg.unixSockets && a === '';
}

function xffList(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  const s = Array.isArray(v) ? v.join(',') : v;
  return s.split(',').map((x) => x.trim()).filter((x) => x !== '');
}

/**
 * Applies Envoy's internal/external rules to request headers whose XFF was already appended (with
 * use_remote_address). Returns whether the request is internal.
 */
export function sanitizeRequestHeaders(h: HeaderMap, o: { useRemoteAddress: boolean; xffTrustedHops: number; remoteIp: string; internal: InternalAddresses; internalOnly: readonly string[] }): boolean {
  let internal: boolean;
  let client: string | undefined;
  if (o.useRemoteAddress) {
    client = o.remoteIp;
    // Internal only when nobody before us claimed another origin: XFF is our own append alone.
    internal = xffList(h['x-forwarded-for']).length <= 1 && isInternalAddress(o.internal, client);
  } else {
    const xff = xffList(h['x-forwarded-for']);
    const i = xff.length - 1 - o.xffTrustedHops;
    client = i >= 0 ? xff[i] : undefined;
    internal = xff.length === 1 + o.xffTrustedHops && client !== undefined && net.isIP(unmapped(client)) !== 0 && isInternalAddress(o.internal, client);
  }
  if (internal) {
    h['x-envoy-internal'] = 'true';
    return true;
  }
  for (const k of EXTERNAL_STRIPPED) if (h[k] !== undefined) delete h[k];
  for (const k of o.internalOnly) if (h[k] !== undefined) delete h[k];
  if (o.useRemoteAddress) {
    for (const k of EDGE_STRIPPED) if (h[k] !== undefined) delete h[k];
    if (net.isIP(unmapped(client!))) h['x-envoy-external-address'] = unmapped(client!);
  }
  return false;
}
