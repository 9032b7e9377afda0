// HAProxy's PROXY protocol header (v1 text, v2 binary; haproxy.org/download/2.1/doc/proxy-protocol.txt):
// parsed by the proxy_protocol listener filter, written by the upstream_proxy_protocol transport
// socket. Hand-written: the format is a few fixed fields, and the npm parsers (proxy-protocol-js)
// take a complete header, while the accept path must also tell "incomplete, read more" from
// "malformed" and find where the header ends in the stream, which is most of the work.
import net from 'node:net';

export interface ProxyAddresses {
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly destinationAddress: string;
  readonly destinationPort: number;
}

/** A v2 header's type-length-value extension (PP2_TYPE_*). */
export interface ProxyTlv {
  readonly type: number;
  readonly value: Buffer;
}

const NO_TLVS: readonly ProxyTlv[] = Object.freeze([]);

export type ProxyHeaderParse =
  /** Too few bytes to decide. */
  | { readonly kind: 'more' }
  /** The bytes do not start with either version's signature. */
  | { readonly kind: 'absent' }
  | { readonly kind: 'error'; readonly version: 1 | 2; readonly reason: string }
  /**
   * A complete header of `length` bytes. `addresses` is undefined when the header carries none
   * to use (v1 UNKNOWN, v2 LOCAL): the connection keeps its own. `tlvs`: a v2 PROXY header's
   * extensions in header order (a LOCAL header's are ignored, as Envoy does).
   */
  | { readonly kind: 'header'; readonly version: 1 | 2; readonly length: number; readonly addresses: ProxyAddresses | undefined; readonly tlvs: readonly ProxyTlv[] };

const V1_SIGNATURE = Buffer.from('PROXY ', 'latin1');
const V2_SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1');
/** The longest v1 line, CRLF included (the spec's 107 bytes). */
const V1_MAX_LENGTH = 107;
const V2_FIXED_LENGTH = 16;
/** A TLV's type and length bytes. */
const TLV_HEAD_LENGTH = 3;
const V2_COMMAND_LOCAL = 0x20;
const V2_COMMAND_PROXY = 0x21;
const V2_AF_INET = 0x1;
const V2_AF_INET6 = 0x2;
const V2_TRANSPORT_STREAM = 0x1;
const V2_TRANSPORT_DGRAM = 0x2;

/** Whether `b` (possibly short) agrees with `signature` on their common length. */
function startsLike(b: Buffer, signature: Buffer): boolean {
  const n = Math.min(b.length, signature.length);
  return b.subarray(0, n).equals(signature.subarray(0, n));
}

/** Looks for a PROXY header at the start of `b`. */
export function parseProxyHeader(b: Buffer): ProxyHeaderParse {
  if (b.length === 0) return { kind: 'more' };
  if (startsLike(b, V2_SIGNATURE)) return b.length < V2_SIGNATURE.length ? { kind: 'more' } : parseV2(b);
  if (startsLike(b, V1_SIGNATURE)) return b.length < V1_SIGNATURE.length ? { kind: 'more' } : parseV1(b);
  return { kind: 'absent' };
}

function v1Error(reason: string): ProxyHeaderParse {
  return { kind: 'error', version: 1, reason };
}

function parsePort(s: string): number | undefined {
  if (!/^\d{1,5}$/.test(s) || (s.length > 1 && s.startsWith('0'))) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

function parseV1(b: Buffer): ProxyHeaderParse {
  const end = b.indexOf('\r\n', 0, 'latin1');
  if (end < 0) return b.length >= V1_MAX_LENGTH ? v1Error(`no CRLF within ${V1_MAX_LENGTH} bytes`) : { kind: 'more' };
  const length = end + 2;
  if (length > V1_MAX_LENGTH) return v1Error(`header longer than ${V1_MAX_LENGTH} bytes`);
  const fields = b.toString('latin1', 0, end).split(' ');
  if (fields[1] === 'UNKNOWN') return { kind: 'header', version: 1, length, addresses: undefined, tlvs: NO_TLVS };
  if (fields.length !== 6) return v1Error(`expected "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>", got ${fields.length} fields`);
  const [, proto, src, dst, sport, dport] = fields;
  const family = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0;
  if (!family) return v1Error(`unknown protocol ${JSON.stringify(proto)} (expected TCP4, TCP6 or UNKNOWN)`);
  if (net.isIP(src) !== family || net.isIP(dst) !== family) return v1Error(`addresses ${src} ${dst} are not IPv${family}`);
  const sourcePort = parsePort(sport);
  const destinationPort = parsePort(dport);
  if (sourcePort === undefined || destinationPort === undefined) return v1Error(`invalid ports ${sport} ${dport}`);
  return { kind: 'header', version: 1, length, addresses: { sourceAddress: src, sourcePort, destinationAddress: dst, destinationPort }, tlvs: NO_TLVS };
}

function v2Error(reason: string): ProxyHeaderParse {
  return { kind: 'error', version: 2, reason };
}

function ipv6At(b: Buffer, at: number): string {
  // IPv4-mapped in the dotted form node reports for sockets ("::ffff:10.0.0.1").
  if (b.subarray(at, at + 10).every((x) => x === 0) && b.readUInt16BE(at + 10) === 0xffff) return `::ffff:${b[at + 12]}.${b[at + 13]}.${b[at + 14]}.${b[at + 15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(at + 2 * i).toString(16));
  // Through URL parsing for the canonical (compressed) form.
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

function parseV2(b: Buffer): ProxyHeaderParse {
  if (b.length < V2_FIXED_LENGTH) return { kind: 'more' };
  const command = b[12];
  const length = V2_FIXED_LENGTH + b.readUInt16BE(14);
  if (command !== V2_COMMAND_LOCAL && command !== V2_COMMAND_PROXY) return v2Error(`unsupported version/command byte 0x${command.toString(16)}`);
  if (b.length < length) return { kind: 'more' };
  if (command === V2_COMMAND_LOCAL) return { kind: 'header', version: 2, length, addresses: undefined, tlvs: NO_TLVS };
  const family = b[13] >> 4;
  const transport = b[13] & 0xf;
  if (transport !== V2_TRANSPORT_STREAM && transport !== V2_TRANSPORT_DGRAM) return v2Error(`unsupported transport protocol ${transport}`);
  const at = V2_FIXED_LENGTH;
  if (family === V2_AF_INET) {
    if (length < at + 12) return v2Error('AF_INET address block shorter than 12 bytes');
    const tlvs = parseTlvs(b, at + 12, length);
    if (typeof tlvs === 'string') return v2Error(tlvs);
    const ip = (o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
    return { kind: 'header', version: 2, length, addresses: { sourceAddress: ip(at), destinationAddress: ip(at + 4), sourcePort: b.readUInt16BE(at + 8), destinationPort: b.readUInt16BE(at + 10) }, tlvs };
  }
  if (family === V2_AF_INET6) {
    if (length < at + 36) return v2Error('AF_INET6 address block shorter than 36 bytes');
    const tlvs = parseTlvs(b, at + 36, length);
    if (typeof tlvs === 'string') return v2Error(tlvs);
    return { kind: 'header', version: 2, length, addresses: { sourceAddress: ipv6At(b, at), destinationAddress: ipv6At(b, at + 16), sourcePort: b.readUInt16BE(at + 32), destinationPort: b.readUInt16BE(at + 34) }, tlvs };
  }
  return v2Error(`unsupported address family ${family} (only AF_INET and AF_INET6)`);
}

/** The TLVs in b[from, end), copied out of the read buffer; a reason when one overruns the header. */
function parseTlvs(b: Buffer, from: number, end: number): readonly ProxyTlv[] | string {
  if (from === end) return NO_TLVS;
  const out: ProxyTlv[] = [];
  for (let i = from; i < end; ) {
    if (i + TLV_HEAD_LENGTH > end) return `TLV of type 0x${b[i].toString(16)} at byte ${i} has no complete length`;
    const n = b.readUInt16BE(i + 1);
    if (i + TLV_HEAD_LENGTH + n > end) return `TLV of type 0x${b[i].toString(16)} at byte ${i} claims ${n} bytes, past the header's end`;
    out.push({ type: b[i], value: Buffer.from(b.subarray(i + TLV_HEAD_LENGTH, i + TLV_HEAD_LENGTH + n)) });
    i += TLV_HEAD_LENGTH + n;
  }
  return out;
}

/** An IPv4 address as IPv4 even when the socket reports it IPv4-mapped ("::ffff:10.0.0.1"). */
function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

function ipv6Bytes(ip: string): Buffer {
  // A trailing dotted quad ("::ffff:1.2.3.4") is the last two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  if (quad) {
    const [o1, o2, o3, o4] = quad.slice(1).map(Number);
    ip = `${ip.slice(0, quad.index)}${((o1 << 8) | o2).toString(16)}:${((o3 << 8) | o4).toString(16)}`;
  }
  const [head, tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail !== undefined ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g || '0', 16), 2 * i));
  return out;
}

/** Bytes of a v2 header's address block for `a` (AF_INET: 12, AF_INET6: 36). */
export function v2AddressLength(a: ProxyAddresses): number {
  return net.isIPv6(unmapped(a.sourceAddress)) || net.isIPv6(unmapped(a.destinationAddress)) ? 36 : 12;
}

/**
 * The header announcing a connection from `a.source*` to `a.destination*`, as Envoy's upstream
 * proxy protocol socket writes it: both addresses of one family (an IPv4 address paired with an
 * IPv6 one is written IPv4-mapped), v1 TCP4/TCP6, v2 PROXY over STREAM followed by `tlvs` (v2
 * only; the caller keeps them within the 16-bit length).
 */
export function encodeProxyHeader(version: 1 | 2, a: ProxyAddresses, tlvs: readonly ProxyTlv[] = NO_TLVS): Buffer {
  let src = unmapped(a.sourceAddress);
  let dst = unmapped(a.destinationAddress);
  const v6 = net.isIPv6(src) || net.isIPv6(dst);
  if (v6) {
    if (net.isIPv4(src)) src = `::ffff:${src}`;
    if (net.isIPv4(dst)) dst = `::ffff:${dst}`;
  }
  if (version === 1) return Buffer.from(`PROXY ${v6 ? 'TCP6' : 'TCP4'} ${src} ${dst} ${a.sourcePort} ${a.destinationPort}\r\n`, 'latin1');
  const addresses = v6 ? Buffer.concat([ipv6Bytes(src), ipv6Bytes(dst), Buffer.alloc(4)]) : Buffer.from([...src.split('.'), ...dst.split('.')].map(Number).concat([0, 0, 0, 0]));
  addresses.writeUInt16BE(a.sourcePort, addresses.length - 4);
  addresses.writeUInt16BE(a.destinationPort, addresses.length - 2);
  const fixed = Buffer.alloc(4);
  fixed[0] = V2_COMMAND_PROXY;
  fixed[1] = ((v6 ? V2_AF_INET6 : V2_AF_INET) << 4) | V2_TRANSPORT_STREAM;
  const parts: Buffer[] = [V2_SIGNATURE, fixed, addresses];
  let length = addresses.length;
  for (const t of tlvs) {
    const head = Buffer.from([t.type, t.value.length >> 8, t.value.length & 0xff]);
    parts.push(head, t.value);
    length += TLV_HEAD_LENGTH + t.value.length;
  }
  fixed.writeUInt16BE(length, 2);
  return Buffer.concat(parts);
}

/** Room for TLVs in a v2 header whose address block is `addressLength` bytes (its length field is 16 bits). */
export function v2TlvRoom(addressLength: number): number {
  return 0xffff - addressLength;
}

/** The bytes a TLV takes in a header. */
export function tlvSize(t: ProxyTlv): number {
  return TLV_HEAD_LENGTH + t.value.length;
}

/** A v2 LOCAL header (no addresses, no TLVs): what Envoy sends when no downstream connection is proxied (health checks). */
export const V2_LOCAL_HEADER: Buffer = Buffer.concat([V2_SIGNATURE, Buffer.from([V2_COMMAND_LOCAL, 0, 0, 0])]);
