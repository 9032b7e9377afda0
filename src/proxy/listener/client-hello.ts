// Reads SNI and ALPN from a TLS ClientHello (the tls_inspector listener filter). Hand-written
// because it is ~50 lines of fixed-layout parsing and must not pull a TLS stack onto the accept path.

export interface ClientHello {
  serverName?: string;
  alpn: string[];
}

/** 'tls' when the bytes start a TLS handshake record, 'more' when too few bytes to tell, else 'raw'. */
export function looksLikeTls(b: Buffer): 'tls' | 'raw' | 'more' {
  if (b.length < 1) return 'more';
  if (b[0] !== 0x16) return 'raw';
  if (b.length < 3) return 'more';
  return b[1] === 3 ? 'tls' : 'raw';
}

/** Parses a ClientHello from the first TLS record(s); undefined when incomplete or malformed. */
export function parseClientHello(b: Buffer): ClientHello | undefined {
  if (b.length < 5 || b[0] !== 0x16) return undefined;
  const recLen = b.readUInt16BE(3);
  if (b.length < 5 + recLen) return undefined;
  let p = 5;
  if (b[p] !== 1) return undefined;
  const end = Math.min(p + 4 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]), 5 + recLen);
  p += 4 + 2 + 32;
  if (p >= end) return undefined;
  p += 1 + b[p];
  if (p + 2 > end) return undefined;
  p += 2 + b.readUInt16BE(p);
  if (p + 1 > end) return undefined;
  p += 1 + b[p];
  const out: ClientHello = { alpn: [] };
  if (p + 2 > end) return out;
  const extEnd = Math.min(p + 2 + b.readUInt16BE(p), end);
  p += 2;
  while (p + 4 <= extEnd) {
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    const body = p + 4;
    if (body + len > extEnd) break;
    if (type === 0 && len >= 5) {
      const nameLen = b.readUInt16BE(body + 3);
      if (b[body + 2] === 0 && body + 5 + nameLen <= body + len) out.serverName = b.toString('latin1', body + 5, body + 5 + nameLen).toLowerCase();
    } else if (type === 16 && len >= 2) {
      let q = body + 2;
      const listEnd = body + 2 + b.readUInt16BE(body);
      while (q < listEnd && q < body + len) {
        const l = b[q];
        out.alpn.push(b.toString('latin1', q + 1, q + 1 + l));
        q += 1 + l;
      }
    }
    p = body + len;
  }
  return out;
}

const H2_PREFACE = 'PRI * HTTP/2.0';
const METHODS = /^(GET|HEAD|POST|PUT|DELETE|CONNECT|OPTIONS|TRACE|PATCH) \S+ HTTP\/1\.([01])\r?$/;

/** The http_inspector's verdict on plaintext bytes: 'h2c', 'http/1.1', 'http/1.0', '' (not HTTP) or 'more'. */
export function inspectHttp(b: Buffer): string {
  const s = b.toString('latin1', 0, Math.min(b.length, 2048));
  if (H2_PREFACE.startsWith(s.slice(0, H2_PREFACE.length)) && s.length < H2_PREFACE.length) return 'more';
  if (s.startsWith(H2_PREFACE)) return 'h2c';
  const nl = s.indexOf('\n');
  if (nl < 0) return s.length >= 2048 ? '' : /^[A-Z]{0,8}( \S*)?( H?T?T?P?\/?1?\.?)?$/.test(s) ? 'more' : '';
  const m = METHODS.exec(s.slice(0, nl));
  return m ? (m[2] === '0' ? 'http/1.0' : 'http/1.1') : '';
}
