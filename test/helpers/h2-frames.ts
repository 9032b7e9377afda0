// Raw HTTP/2 bytes for tests that must send what no well-behaved client library would (floods,
// frames past a limit): the client connection preface and single frames (RFC 9113 §3.4, §4.1).

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** One frame: 9-byte header (length, type, flags, stream id) and the payload as given. */
export function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(9 + payload.length);
  b.writeUIntBE(payload.length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(stream, 5);
  payload.copy(b, 9);
  return b;
}
