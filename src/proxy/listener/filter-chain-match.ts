// Envoy's filter chain selection: criteria are applied in Envoy's order (destination port,
// destination IP, server name, transport protocol, application protocols, direct source IP,
// source type, source IP, source port); at each step the chains that match the connection specifically win over the chains that
// leave the criterion unset, and only when none match specifically do the unset ones go on.
import net from 'node:net';
import type { CidrRange, FilterChain, ListenerConfig } from './listener-config.ts';
import type { ProxyTlvState } from './proxy-protocol-filter.ts';

export interface ConnectionFacts {
  destinationPort: number;
  destinationIp: string;
  serverName?: string;
  transportProtocol: string;
  applicationProtocols: readonly string[];
  /** The downstream remote address: the PROXY header's source when the proxy_protocol filter read one. */
  sourceIp: string;
  sourcePort: number;
  /** The socket's peer, whatever a PROXY header said. */
  directSourceIp: string;
  directSourcePort: number;
  /** performance.now() when the listener accepted the connection (its access log's start). */
  acceptedAt: number;
  /** What the proxy_protocol filter made of a v2 header's TLVs. */
  proxyTlvs?: ProxyTlvState;
}

function ipToBig(ip: string): { v: bigint; bits: number } | undefined {
  if (ip.startsWith('::ffff:') && ip.includes('.')) ip = ip.slice(7);
  if (net.isIPv4(ip)) return { v: ip.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n), bits: 32 };
  if (!net.isIPv6(ip)) return undefined;
  const [head, tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return { v: groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g || '0', 16)), 0n), bits: 128 };
}

/** Length of the longest range containing ip, or -1. */
function cidrMatch(ranges: readonly CidrRange[], ip: string): number {
  const a = ipToBig(ip);
  if (!a) return -1;
  let best = -1;
  for (const r of ranges) {
    const b = ipToBig(r.address);
    if (!b || b.bits !== a.bits) continue;
    const len = r.prefixLen < 0 ? b.bits : r.prefixLen;
    const shift = BigInt(b.bits - len);
    if (a.v >> shift === b.v >> shift && len > best) best = len;
  }
  return best;
}

/** How specifically a chain's server_names match: exact > longer wildcard; -1 no match. */
function serverNameScore(names: readonly string[], sni: string | undefined): number {
  if (!sni) return -1;
  let best = -1;
  for (const n of names) {
    if (n === sni) return 1e6;
    if (n.startsWith('*.') && sni.endsWith(n.slice(1)) && n.length > best) best = n.length;
  }
  return best;
}

/**
 * Envoy walks the client's ALPN list in the client's order and takes the chains listing the first
 * protocol any chain lists: the earlier the client's protocol a chain lists, the higher; -1 none.
 */
function alpnScore(listed: readonly string[], offered: readonly string[]): number {
  for (let i = 0; i < offered.length; i++) if (listed.includes(offered[i])) return offered.length - i;
  return -1;
}

type Step = (c: FilterChain) => number | undefined;

/** Narrows to the chains with the best specific score; falls back to those without the criterion. */
function narrow(chains: FilterChain[], step: Step): FilterChain[] {
  let best = -1;
  let specific: FilterChain[] = [];
  const generic: FilterChain[] = [];
  for (const c of chains) {
    const s = step(c);
    if (s === undefined) generic.push(c);
    else if (s >= 0) {
      if (s > best) {
        best = s;
        specific = [c];
      } else if (s === best) specific.push(c);
    }
  }
  return specific.length ? specific : generic;
}

/** SAME_IP_OR_LOOPBACK: a loopback peer, or one with the connection's own destination address. */
function isLocalSource(f: ConnectionFacts): boolean {
  const src = f.sourceIp.startsWith('::ffff:') ? f.sourceIp.slice(7) : f.sourceIp;
  const dst = f.destinationIp.startsWith('::ffff:') ? f.destinationIp.slice(7) : f.destinationIp;
  return src === dst || src === '::1' || (net.isIPv4(src) && src.startsWith('127.'));
}

export function selectFilterChain(l: ListenerConfig, f: ConnectionFacts): FilterChain | undefined {
  let cs = l.filterChains as FilterChain[];
  cs = narrow(cs, (c) => (c.match.destinationPort === undefined ? undefined : c.match.destinationPort === f.destinationPort ? 0 : -1));
  cs = narrow(cs, (c) => (c.match.prefixRanges.length ? cidrMatch(c.match.prefixRanges, f.destinationIp) : undefined));
  cs = narrow(cs, (c) => (c.match.serverNames.length ? serverNameScore(c.match.serverNames, f.serverName) : undefined));
  cs = narrow(cs, (c) => (c.match.transportProtocol === undefined ? undefined : c.match.transportProtocol === f.transportProtocol ? 0 : -1));
  cs = narrow(cs, (c) => (c.match.applicationProtocols.length ? alpnScore(c.match.applicationProtocols, f.applicationProtocols) : undefined));
  cs = narrow(cs, (c) => (c.match.directSourcePrefixRanges.length ? cidrMatch(c.match.directSourcePrefixRanges, f.directSourceIp) : undefined));
  cs = narrow(cs, (c) => (c.match.sourceType === 0 ? undefined : (c.match.sourceType === 1) === isLocalSource(f) ? 0 : -1));
  cs = narrow(cs, (c) => (c.match.sourcePrefixRanges.length ? cidrMatch(c.match.sourcePrefixRanges, f.sourceIp) : undefined));
  cs = narrow(cs, (c) => (c.match.sourcePorts.length ? (c.match.sourcePorts.includes(f.sourcePort) ? 0 : -1) : undefined));
  return cs[0] ?? l.defaultChain;
}
