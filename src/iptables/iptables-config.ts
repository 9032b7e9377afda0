// The settings of `rig iptables` (Istio's istio-iptables flags) and their validation.
import net from 'node:net';
import { RigError } from '../core/errors.ts';

export interface IptablesConfig {
  /** Outbound capture port (Istio -p/--envoy-port). */
  proxyPort: number;
  /** Inbound capture port (-z/--inbound-capture-port). */
  inboundCapturePort: number;
  /** Traffic of these UIDs/GIDs (the proxy's) is never captured (-u/--proxy-uid, -g/--proxy-gid). */
  proxyUids: number[];
  proxyGids: number[];
  /** '*' captures all inbound ports; a list captures only those; [] disables inbound capture (-b). */
  inboundPorts: '*' | number[];
  /** Inbound ports never captured when inboundPorts is '*' (-d). */
  excludeInboundPorts: number[];
  /** Outbound ports always captured, whatever the CIDR lists say (-q). */
  includeOutboundPorts: number[];
  /** Outbound ports never captured (-o). */
  excludeOutboundPorts: number[];
  /** '*' captures every outbound destination; a list captures only those CIDRs; [] none (-i). */
  includeOutboundCidrs: '*' | string[];
  /** CIDRs never captured (-x). */
  excludeOutboundCidrs: string[];
  /** Capture DNS (UDP and TCP port 53) to dnsPort. */
  redirectDns: boolean;
  /** Capture DNS to any server; otherwise only queries to dnsServers (Istio's default). */
  captureAllDns: boolean;
  dnsServers: string[];
  dnsPort: number;
  /** Also program ip6tables (::1 and ::6 take the place of 127.0.0.1 and 127.0.0.6). */
  ipv6: boolean;
}

export const DEFAULT_CONFIG: IptablesConfig = {
  proxyPort: 15001,
  inboundCapturePort: 15006,
  proxyUids: [1337],
  proxyGids: [1337],
  inboundPorts: '*',
  excludeInboundPorts: [],
  includeOutboundPorts: [],
  excludeOutboundPorts: [],
  includeOutboundCidrs: '*',
  excludeOutboundCidrs: [],
  redirectDns: false,
  captureAllDns: false,
  dnsServers: [],
  dnsPort: 15053,
  ipv6: false,
};

function usage(flag: string, msg: string): RigError {
  return new RigError('MESH_ERR_USAGE', `${flag}: ${msg}`);
}

export function parsePort(flag: string, value: string): number {
  const n = Number(value.trim());
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 65535) throw usage(flag, `"${value}" is not a port (1-65535)`);
  return n;
}

/** The trimmed, non-empty items of a comma-separated flag value. */
function commaItems(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** A comma-separated port list; '' is the empty list. */
export function parsePortList(flag: string, value: string): number[] {
  return commaItems(value).map((s) => parsePort(flag, s));
}

export function parseIdList(flag: string, value: string): number[] {
  const ids = commaItems(value);
  for (const id of ids) if (!/^\d+$/.test(id) || Number(id) > 0xfffffffe) throw usage(flag, `"${id}" is not a numeric user/group id`);
  if (ids.length === 0) throw usage(flag, 'needs at least one id');
  return ids.map(Number);
}

/** A CIDR (or bare address, taken as a host route), normalised to address/prefix. */
export function parseCidr(flag: string, value: string): string {
  const [addr, prefix, extra] = value.trim().split('/');
  const family = net.isIP(addr ?? '');
  const max = family === 4 ? 32 : 128;
  if (!family || extra !== undefined) throw usage(flag, `"${value}" is not a CIDR (e.g. 10.0.0.0/8)`);
  if (prefix === undefined) return `${addr}/${max}`;
  if (!/^\d+$/.test(prefix) || Number(prefix) > max) throw usage(flag, `"${value}" has an invalid prefix length (0-${max})`);
  return `${addr}/${Number(prefix)}`;
}

export function parseCidrList(flag: string, value: string): string[] {
  return commaItems(value).map((s) => parseCidr(flag, s));
}

export function parseAddressList(flag: string, value: string): string[] {
  const out = commaItems(value);
  for (const a of out) if (!net.isIP(a)) throw usage(flag, `"${a}" is not an IP address`);
  return out;
}

/** Nameservers from a resolv.conf text (the DNS servers whose queries are captured). */
export function nameserversFromResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && net.isIP(m[1].split('%')[0])) out.push(m[1].split('%')[0]);
  }
  return out;
}
