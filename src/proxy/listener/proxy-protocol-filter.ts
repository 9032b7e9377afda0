// Envoy's proxy_protocol listener filter (envoy.filters.listener.proxy_protocol): the connection
// starts with a PROXY header (v1 or v2, told apart per connection); its source becomes the
// connection's remote address and its destination the local one, as if the proxy in front were
// not there. A malformed header, a version in disallowed_versions, or no header without
// allow_requests_without_proxy_protocol closes the connection. Stats as Envoy's, in the server's
// scope: proxy_proto.[<stat_prefix>.]{not_found_disallowed,not_found_allowed},
// proxy_proto.[<stat_prefix>.]versions.v<N>.{found,disallowed,error} and the legacy
// downstream_cx_proxy_proto_error.
import type { Reader } from '../config/reader.ts';
import type { Stat, Stats } from '../stats/stats.ts';
import { parseProxyHeader, type ProxyAddresses } from '../network/proxy-protocol-header.ts';

export interface ProxyProtocolFilterConfig {
  readonly allowWithoutHeader: boolean;
  readonly disallowedVersions: ReadonlySet<1 | 2>;
  readonly statPrefix: string;
}

/** A v2 header may carry 64 KiB of TLVs after its 16 fixed bytes. */
export const PROXY_HEADER_MAX_BYTES = 16 + 0xffff;

export function readProxyProtocolFilter(tc: Reader): ProxyProtocolFilterConfig {
  const allowWithoutHeader = tc.bool('allow_requests_without_proxy_protocol', false);
  const disallowedVersions = new Set<1 | 2>();
  tc.list('disallowed_versions').forEach((v, i) => {
    if (v === 'V1' || v === 0) disallowedVersions.add(1);
    else if (v === 'V2' || v === 1) disallowedVersions.add(2);
    else tc.issues.error(`${tc.at('disallowed_versions')}[${i}]`, `unknown PROXY protocol version ${JSON.stringify(v)}; expected V1 or V2`);
  });
  const statPrefix = tc.str('stat_prefix');
  // TLVs are skipped: neither emitted as metadata (rules) nor kept for the upstream (pass_through_tlvs).
  if (tc.has('rules')) tc.issues.warn(tc.at('rules'), 'TLV rules are not supported: no dynamic metadata is set from PROXY v2 TLVs');
  if (tc.has('pass_through_tlvs')) tc.issues.warn(tc.at('pass_through_tlvs'), 'not supported: PROXY v2 TLVs are not kept for the upstream');
  if (tc.has('tlv_location')) tc.issues.warn(tc.at('tlv_location'), 'not supported: PROXY v2 TLVs are not stored');
  tc.done();
  return { allowWithoutHeader, disallowedVersions, statPrefix };
}

interface VersionStats {
  found: Stat;
  disallowed: Stat;
  error: Stat;
}

export interface ProxyProtocolStats {
  notFoundDisallowed: Stat;
  notFoundAllowed: Stat;
  versions: Record<1 | 2, VersionStats>;
  legacyError: Stat;
}

export function proxyProtocolStats(stats: Stats, config: ProxyProtocolFilterConfig): ProxyProtocolStats {
  const p = `proxy_proto.${config.statPrefix ? config.statPrefix + '.' : ''}`;
  const version = (v: number): VersionStats => ({ found: stats.counter(`${p}versions.v${v}.found`), disallowed: stats.counter(`${p}versions.v${v}.disallowed`), error: stats.counter(`${p}versions.v${v}.error`) });
  return { notFoundDisallowed: stats.counter(p + 'not_found_disallowed'), notFoundAllowed: stats.counter(p + 'not_found_allowed'), versions: { 1: version(1), 2: version(2) }, legacyError: stats.counter('downstream_cx_proxy_proto_error') };
}

/** Whether the filter has seen enough bytes to decide. */
export function proxyHeaderDecided(b: Buffer): boolean {
  return parseProxyHeader(b).kind !== 'more';
}

export type ProxyProtocolVerdict =
  | { readonly accept: false }
  /** `consumed` header bytes to drop; `addresses` replace the connection's when set. */
  | { readonly accept: true; readonly consumed: number; readonly addresses: ProxyAddresses | undefined };

/** The filter's decision on the first bytes of a connection (all of them when it ended early), counting its stats. */
export function proxyProtocolVerdict(b: Buffer, config: ProxyProtocolFilterConfig, stats: ProxyProtocolStats): ProxyProtocolVerdict {
  const parsed = parseProxyHeader(b);
  switch (parsed.kind) {
    case 'header':
      stats.versions[parsed.version].found.value++;
      if (config.disallowedVersions.has(parsed.version)) {
        stats.versions[parsed.version].disallowed.value++;
        return { accept: false };
      }
      return { accept: true, consumed: parsed.length, addresses: parsed.addresses };
    case 'error':
      stats.versions[parsed.version].error.value++;
      stats.legacyError.value++;
      return { accept: false };
    case 'absent':
      if (config.allowWithoutHeader) {
        stats.notFoundAllowed.value++;
        return { accept: true, consumed: 0, addresses: undefined };
      }
      stats.notFoundDisallowed.value++;
      stats.legacyError.value++;
      return { accept: false };
    case 'more':
      // The peer closed before a whole header: no stat, as in Envoy (the listener's remote close).
      return { accept: false };
  }
}
