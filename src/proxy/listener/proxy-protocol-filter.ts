// Envoy's proxy_protocol listener filter (envoy.filters.listener.proxy_protocol): the connection
// starts with a PROXY header (v1 or v2, told apart per connection); its source becomes the
// connection's remote address and its destination the local one, as if the proxy in front were
// not there. A malformed header, a version in disallowed_versions, or no header without
// allow_requests_without_proxy_protocol closes the connection. Stats as Envoy's, in the server's
// scope: proxy_proto.[<stat_prefix>.]{not_found_disallowed,not_found_allowed},
// proxy_proto.[<stat_prefix>.]versions.v<N>.{found,disallowed,error} and the legacy
// downstream_cx_proxy_proto_error.
// A v2 header's TLVs: `rules` put a TLV's value (a string) under on_tlv_present's key, in dynamic
// metadata (namespace metadata_namespace, else envoy.filters.listener.proxy_protocol) or, with
// tlv_location FILTER_STATE, in the filter state object envoy.network.proxy_protocol.tlv;
// `pass_through_tlvs` picks those kept for an upstream_proxy_protocol socket (none without it).
import type { Reader } from '../config/reader.ts';
import type { Stat, Stats } from '../stats/stats.ts';
import { parseProxyHeader, type ProxyAddresses, type ProxyTlv } from '../network/proxy-protocol-header.ts';
import { readTlvSelection, readTlvType, tlvSelected, type TlvSelection } from '../network/proxy-protocol-tlv-selection.ts';

interface TlvRule {
  readonly namespace: string;
  readonly key: string;
}

export interface ProxyProtocolFilterConfig {
  readonly allowWithoutHeader: boolean;
  readonly disallowedVersions: ReadonlySet<1 | 2>;
  readonly statPrefix: string;
  /** rules by TLV type (a later rule for a type replaces an earlier one, as Envoy's map). */
  readonly rules: ReadonlyMap<number, TlvRule>;
  readonly passThrough: TlvSelection;
  readonly tlvLocation: 'DYNAMIC_METADATA' | 'FILTER_STATE';
}

export const PROXY_PROTOCOL_FILTER_NAME = 'envoy.filters.listener.proxy_protocol';
/** Envoy's filter state key for the TLVs rules store under tlv_location FILTER_STATE. */
export const PROXY_PROTOCOL_TLV_FILTER_STATE = 'envoy.network.proxy_protocol.tlv';

/** What a connection's TLVs leave behind for the rest of the proxy. */
export interface ProxyTlvState {
  /** The TLVs pass_through_tlvs kept, in header order, for upstream_proxy_protocol. */
  readonly passThrough: readonly ProxyTlv[];
  /** Connection dynamic metadata set by rules: namespace → key → value. */
  readonly dynamicMetadata: Record<string, Record<string, string>> | undefined;
  /** Connection filter state set by rules (tlv_location FILTER_STATE). */
  readonly filterState: Record<string, Record<string, string>> | undefined;
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
  const rules = new Map<number, TlvRule>();
  for (const r of tc.objs('rules')) {
    const type = readTlvType(r.get('tlv_type') ?? 0, r.at('tlv_type'), r.issues);
    const kv = r.obj('on_tlv_present');
    const key = kv?.str('key') ?? '';
    if (!key) r.issues.error(kv ? kv.at('key') : r.at('on_tlv_present'), 'a rule needs on_tlv_present.key (the metadata key the TLV value is stored under)');
    const namespace = kv?.str('metadata_namespace') || PROXY_PROTOCOL_FILTER_NAME;
    kv?.done();
    r.done();
    if (type !== undefined && key) rules.set(type, { namespace, key });
  }
  const passThrough = readTlvSelection(tc.obj('pass_through_tlvs'));
  const location = tc.get('tlv_location') ?? 'DYNAMIC_METADATA';
  const tlvLocation = location === 'FILTER_STATE' || location === 1 ? 'FILTER_STATE' : 'DYNAMIC_METADATA';
  if (tlvLocation === 'DYNAMIC_METADATA' && location !== 'DYNAMIC_METADATA' && location !== 0) tc.issues.error(tc.at('tlv_location'), `unknown tlv_location ${JSON.stringify(location)}; expected DYNAMIC_METADATA or FILTER_STATE`);
  tc.done();
  return { allowWithoutHeader, disallowedVersions, statPrefix, rules, passThrough, tlvLocation };
}

/** The connection state a header's TLVs produce; undefined when they produce none. */
function tlvState(tlvs: readonly ProxyTlv[], config: ProxyProtocolFilterConfig): ProxyTlvState | undefined {
  if (tlvs.length === 0) return undefined;
  let passThrough: ProxyTlv[] | undefined;
  let stored: Record<string, Record<string, string>> | undefined;
  for (const t of tlvs) {
    const rule = config.rules.get(t.type);
    if (rule) {
      stored ??= {};
      const into = (stored[config.tlvLocation === 'FILTER_STATE' ? PROXY_PROTOCOL_TLV_FILTER_STATE : rule.namespace] ??= {});
      // The first TLV of a type wins (Envoy inserts into the Struct without replacing); the bytes
      // become a string value.
      if (!Object.hasOwn(into, rule.key)) into[rule.key] = t.value.toString('utf8');
    }
    if (tlvSelected(config.passThrough, t.type)) (passThrough ??= []).push(t);
  }
  if (!passThrough && !stored) return undefined;
  const fs = config.tlvLocation === 'FILTER_STATE';
  return { passThrough: passThrough ?? [], dynamicMetadata: fs ? undefined : stored, filterState: fs ? stored : undefined };
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
  /** `consumed` header bytes to drop; `addresses` replace the connection's when set; `tlvs`: what rules and pass_through_tlvs made of the TLVs. */
  | { readonly accept: true; readonly consumed: number; readonly addresses: ProxyAddresses | undefined; readonly tlvs: ProxyTlvState | undefined };

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
      return { accept: true, consumed: parsed.length, addresses: parsed.addresses, tlvs: tlvState(parsed.tlvs, config) };
    case 'error':
      stats.versions[parsed.version].error.value++;
      stats.legacyError.value++;
      return { accept: false };
    case 'absent':
      if (config.allowWithoutHeader) {
        stats.notFoundAllowed.value++;
        return { accept: true, consumed: 0, addresses: undefined, tlvs: undefined };
      }
      stats.notFoundDisallowed.value++;
      stats.legacyError.value++;
      return { accept: false };
    case 'more':
      // The peer closed before a whole header: no stat, as in Envoy (the listener's remote close).
      return { accept: false };
  }
}
