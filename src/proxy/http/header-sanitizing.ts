// Envoy's x-forwarded-for processing (HCM use_remote_address, xff_num_trusted_hops,
// skip_xff_append): the trusted client address, which becomes the stream's downstream remote
// address, the XFF append, then the internal / external request determination and the header
// sanitizing that follows it (internal_address_config; route config internal_only_headers). A
// request is internal when the trusted client address is internal and, with use_remote_address,
// no XFF came in; without it, XFF holds exactly that one address and no hop is trusted (no XFF, or
// a longer chain, means external). External requests lose the x-envoy-* headers that steer a proxy
// (retries, timeouts, tracing...), so that a client outside the mesh cannot steer a gateway or the
// sidecars behind it; internal ones get x-envoy-internal: true; an edge request (external, with
// use_remote_address) also gets x-envoy-external-address.
import net from 'node:net';
import type { Reader } from '../config/reader.ts';
import type { HeaderMap } from '../filters/filter.ts';
import { localAddress } from '../local-address.ts';
import { formatIpPort } from '../network/ip-port.ts';
import { hasEnvoyHeader } from './router-headers.ts';
import type { StreamInfo } from '../stream-info.ts';

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

/**
 * Envoy's getLastAddressFromXFF: the entry `skip` places from the right end of x-forwarded-for,
 * trimmed; undefined when there are fewer entries or it is not an IP address.
 */
export function xffAddress(xff: string, skip: number): string | undefined {
  let end = xff.length;
  for (let i = 0; i < skip; i++) {
    end = end === 0 ? -1 : xff.lastIndexOf(',', end - 1);
    if (end < 0) return undefined;
  }
  const start = end === 0 ? 0 : xff.lastIndexOf(',', end - 1) + 1;
  const ip = xff.slice(start, end).trim();
  return net.isIP(ip) !== 0 ? ip : undefined;
}

/** The HCM settings x-forwarded-for processing reads. */
export interface XffSettings {
  readonly useRemoteAddress: boolean;
  readonly skipXffAppend: boolean;
  readonly xffTrustedHops: number;
  readonly internalAddresses: InternalAddresses;
}

/**
 * Envoy's x-forwarded-for processing, once per request: the trusted client address becomes the
 * stream's downstream remote address (with use_remote_address the peer, or with
 * xff_num_trusted_hops N the Nth XFF address from the right; without it the (N+1)th; the peer when
 * XFF has too few entries or no address there), then with use_remote_address the peer is appended
 * to XFF (the proxy's own address for a loopback peer, as Envoy's LocalInfo), then the
 * internal/external rules apply. Returns whether the request is internal.
 */
export function processForwardedFor(h: HeaderMap, c: XffSettings, peerIp: string, info: StreamInfo, internalOnly: readonly string[]): boolean {
  const raw = h['x-forwarded-for'];
  const xff = raw === undefined || typeof raw === 'string' ? raw : raw.join(',');
  let ip: string | undefined;
  // Envoy's allow_trusted_address_checks: with use_remote_address, no XFF came in; without it,
  // XFF is exactly one address and no hop is trusted.
  let trusted = false;
  if (c.useRemoteAddress) {
    trusted = xff === undefined;
    if (c.xffTrustedHops > 0 && xff !== undefined) ip = xffAddress(xff, c.xffTrustedHops - 1);
    if (!c.skipXffAppend && peerIp !== '') {
      const peer = unmapped(peerIp);
      const own = peer === '127.0.0.1' || peer === '::1' ? localAddress() : peer;
      // As Envoy's Utility::appendXff: "," without a space, nothing before the address of an empty header.
      h['x-forwarded-for'] = xff ? `${xff},${own}` : own;
    }
  } else if (xff !== undefined) {
    ip = xffAddress(xff, c.xffTrustedHops);
    trusted = ip !== undefined && c.xffTrustedHops === 0 && xff.indexOf(',') < 0;
  }
  if (ip !== undefined) {
    info.downstreamRemoteIp = ip;
    info.downstreamRemoteAddress = formatIpPort(ip, 0);
  }
  return sanitizeRequestHeaders(h, c, ip ?? peerIp, trusted, internalOnly);
}

/** Applies Envoy's internal/external rules for the trusted client address. Returns whether the request is internal. */
function sanitizeRequestHeaders(h: HeaderMap, c: XffSettings, client: string, trusted: boolean, internalOnly: readonly string[]): boolean {
  if (trusted && isInternalAddress(c.internalAddresses, client)) {
    h['x-envoy-internal'] = 'true';
    return true;
  }
  // Every stripped name starts with x-envoy-: one look at the request's few names instead of 20 lookups.
  const envoy = hasEnvoyHeader(h);
  if (envoy) for (const k of EXTERNAL_STRIPPED) if (h[k] !== undefined) delete h[k];
  for (const k of internalOnly) if (h[k] !== undefined) delete h[k];
  if (c.useRemoteAddress) {
    if (envoy) for (const k of EDGE_STRIPPED) if (h[k] !== undefined) delete h[k];
    const a = unmapped(client);
    if (net.isIP(a)) h['x-envoy-external-address'] = a;
  }
  return false;
}
