// Protobuf base-128 varints, for the encoders that assemble ADS messages from pre-encoded pieces
// (response-encoder.ts, route-encoder.ts): writing into one preallocated buffer is what they are
// for, which protobufjs's Writer (a chain of copied parts) does not offer.

export function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    len++;
  }
  return len;
}

export function writeVarint(buf: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[at++] = n;
  return at;
}
