// Envoy's ProxyProtocolPassThroughTLVs (config.core.v3): which PROXY v2 TLV types pass, read the
// same way by the proxy_protocol listener filter (TLVs kept for the upstream) and the
// upstream_proxy_protocol socket (TLVs sent on).
import type { Issues, Reader } from '../config/reader.ts';

/** Which TLV types pass: all (INCLUDE_ALL), the listed ones (INCLUDE), or none (field unset). */
export type TlvSelection = 'all' | ReadonlySet<number> | undefined;

/** A TLV type (uint8 in the protocol, uint32 in the config). */
export function readTlvType(v: unknown, path: string, issues: Issues): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 256) return v;
  issues.error(path, `TLV type must be an integer from 0 to 255 (got ${JSON.stringify(v)})`);
  return undefined;
}

/** A ProxyProtocolPassThroughTLVs (listener filter or upstream socket): undefined when unset. */
export function readTlvSelection(r: Reader | undefined): TlvSelection {
  if (!r) return undefined;
  const match = r.get('match_type') ?? 'INCLUDE_ALL';
  const types = r.list('tlv_type').flatMap((v, i) => readTlvType(v, `${r.at('tlv_type')}[${i}]`, r.issues) ?? []);
  r.done();
  if (match === 'INCLUDE_ALL' || match === 0) return 'all';
  if (match === 'INCLUDE' || match === 1) return new Set(types);
  r.issues.error(r.at('match_type'), `unknown match_type ${JSON.stringify(match)}; expected INCLUDE_ALL or INCLUDE`);
  return undefined;
}

export function tlvSelected(selection: TlvSelection, type: number): boolean {
  return selection === 'all' || (selection !== undefined && selection.has(type));
}
