// RFC 9110 syntax the HTTP/1.1 writers check before anything reaches the wire (the response writer
// downstream, the request head upstream): a CR or LF in a value from a filter must never split a
// message. The parser (h1-parser.ts) checks the same rules byte by byte on its input.

/** token: a method or a header name. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** tchar (RFC 9110 §5.6.2) by byte: 1 where allowed. */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

/** TOKEN.test by table: a regex test per header name cost ~430 instructions, this loop ~60 (callgrind). */
export function isToken(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f || TCHAR[c] !== 1) return false;
  }
  return true;
}

/** ASCII letters lower-cased (a header name, a token list), the same string when none is upper case (most are sent so). */
export function lowerAscii(name: string): string {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return name.toLowerCase();
  }
  return name;
}

/**
 * The last two long values found good. A filter sets the same long value on every request
 * (x-envoy-peer-metadata: the proxy's own metadata, 644 characters for a bookinfo sidecar), which
 * the writers would check a character at a time on each; the same string again is one identity
 * comparison. Not counted: the benchmark's telemetry-on proxy exchanges no peer metadata.
 */
const LONG_VALUE = 64;
let goodLong1: string | undefined;
let goodLong2: string | undefined;

/** Whether a field value holds a character outside HTAB, SP, VCHAR and obs-text. */
export function badFieldValue(v: string): boolean {
  if (v.length < LONG_VALUE) return badChars(v);
  if (v === goodLong1 || v === goodLong2) return false;
  if (badChars(v)) return true;
  goodLong2 = goodLong1;
  goodLong1 = v;
  return false;
}

function badChars(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 ? c !== 0x09 : c === 0x7f || c > 0xff) return true;
  }
  return false;
}
