// RFC 9110 syntax the HTTP/1.1 writers check before anything reaches the wire (the response writer
// downstream, the request head upstream): a CR or LF in a value from a filter must never split a
// message. The parser (h1-parser.ts) checks the same rules byte by byte on its input.

/** token: a method or a header name. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Whether a field value holds a character outside HTAB, SP, VCHAR and obs-text. */
export function badFieldValue(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 ? c !== 0x09 : c === 0x7f || c > 0xff) return true;
  }
  return false;
}
