import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeProxyHeader, parseProxyHeader, V2_LOCAL_HEADER, type ProxyAddresses } from './proxy-protocol-header.ts';

const V4: ProxyAddresses = { sourceAddress: '192.0.2.1', sourcePort: 56324, destinationAddress: '198.51.100.2', destinationPort: 443 };
const V6: ProxyAddresses = { sourceAddress: '2001:db8::1', sourcePort: 1, destinationAddress: '2001:db8:0:1::ff', destinationPort: 65535 };

test('v1 and v2 headers round-trip, IPv4 and IPv6, with the bytes after them left alone', () => {
  assert.equal(encodeProxyHeader(1, V4).toString('latin1'), 'PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n');
  assert.equal(encodeProxyHeader(1, V6).toString('latin1'), 'PROXY TCP6 2001:db8::1 2001:db8:0:1::ff 1 65535\r\n');
  for (const version of [1, 2] as const) {
    for (const a of [V4, V6]) {
      const header = encodeProxyHeader(version, a);
      assert.deepEqual(parseProxyHeader(Buffer.concat([header, Buffer.from('GET / HTTP/1.1\r\n')])), { kind: 'header', version, length: header.length, addresses: a, tlvs: [] });
    }
  }
  // The spec's v2 layout: signature, PROXY over STREAM, AF_INET, 12 address bytes.
  assert.equal(encodeProxyHeader(2, V4).toString('hex'), '0d0a0d0a000d0a515549540a' + '2111000c' + 'c0000201c6336402' + 'dc0401bb');
});

test('mixed families are written IPv4-mapped; IPv4-mapped addresses read back dotted', () => {
  const mixed = { ...V4, destinationAddress: '2001:db8::2' };
  assert.equal(encodeProxyHeader(1, mixed).toString('latin1'), 'PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 56324 443\r\n');
  const parsed = parseProxyHeader(encodeProxyHeader(2, mixed));
  assert.equal(parsed.kind === 'header' && parsed.addresses?.sourceAddress, '::ffff:192.0.2.1');
  // A socket's IPv4-mapped view of an IPv4 peer stays IPv4.
  assert.equal(encodeProxyHeader(1, { ...V4, sourceAddress: '::ffff:192.0.2.1' }).toString('latin1'), 'PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n');
});

test('too few bytes ask for more; other bytes are no header; UNKNOWN and LOCAL carry no addresses; TLVs are read', () => {
  const v2 = encodeProxyHeader(2, V4);
  for (const n of [1, 5, 11, 12, 15, v2.length - 1]) assert.equal(parseProxyHeader(v2.subarray(0, n)).kind, 'more', `v2, ${n} bytes`);
  assert.equal(parseProxyHeader(Buffer.from('PROX')).kind, 'more');
  assert.equal(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4')).kind, 'more');
  assert.equal(parseProxyHeader(Buffer.from('PROFIND / HTTP/1.1')).kind, 'absent');
  assert.equal(parseProxyHeader(Buffer.from([0x16, 3, 1])).kind, 'absent');
  assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nrest')), { kind: 'header', version: 1, length: 35, addresses: undefined, tlvs: [] });
  const local = Buffer.concat([v2.subarray(0, 12), Buffer.from([0x20, 0, 0, 0])]);
  assert.deepEqual(parseProxyHeader(local), { kind: 'header', version: 2, length: 16, addresses: undefined, tlvs: [] });
  const withTlv = Buffer.concat([v2.subarray(0, 14), Buffer.from([0, 12 + 6]), v2.subarray(16), Buffer.from([0x02, 0, 3, 0x61, 0x62, 0x63])]);
  const parsed = parseProxyHeader(withTlv);
  assert.deepEqual(parsed, { kind: 'header', version: 2, length: withTlv.length, addresses: V4, tlvs: [{ type: 0x02, value: Buffer.from('abc') }] });
});

test('malformed headers are errors of their version', () => {
  const bad = (s: string | Buffer) => {
    const r = parseProxyHeader(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
    return r.kind === 'error' ? `v${r.version}: ${r.reason}` : r.kind;
  };
  assert.match(bad('PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n'), /^v1: unknown protocol "TCP5"/);
  assert.match(bad('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), /^v1: expected "PROXY TCP4\|TCP6/);
  assert.match(bad('PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n'), /^v1: addresses 1\.2\.3\.4 5\.6\.7\.8 are not IPv6/);
  assert.match(bad('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n'), /^v1: invalid ports/);
  assert.match(bad(`PROXY TCP4 ${'9'.repeat(110)}`), /^v1: no CRLF within 107 bytes/);
  const v2 = encodeProxyHeader(2, V4);
  const patched = (i: number, v: number) => Buffer.from(v2.map((x, j) => (j === i ? v : x)));
  assert.match(bad(patched(12, 0x22)), /^v2: unsupported version\/command byte 0x22/);
  assert.match(bad(patched(12, 0x11)), /^v2: unsupported version\/command byte 0x11/);
  assert.match(bad(patched(13, 0x31)), /^v2: unsupported address family 3/);
  assert.match(bad(patched(13, 0x13)), /^v2: unsupported transport protocol 3/);
  assert.match(bad(Buffer.concat([v2.subarray(0, 14), Buffer.from([0, 4]), Buffer.alloc(4)])), /^v2: AF_INET address block shorter than 12 bytes/);
  const tlvArea = (tlvs: number[]) => Buffer.concat([v2.subarray(0, 14), Buffer.from([0, 12 + tlvs.length]), v2.subarray(16), Buffer.from(tlvs)]);
  assert.match(bad(tlvArea([0x05, 0])), /^v2: TLV of type 0x5 at byte 28 has no complete length/);
  assert.match(bad(tlvArea([0x05, 0, 4, 0x61])), /^v2: TLV of type 0x5 at byte 28 claims 4 bytes, past the header's end/);
});

test('v2 headers carry TLVs in order; the LOCAL header is 16 bytes', () => {
  const tlvs = [{ type: 0xe0, value: Buffer.from('tenant-a') }, { type: 0x05, value: Buffer.from([0, 1, 2]) }];
  for (const a of [V4, V6]) {
    const header = encodeProxyHeader(2, a, tlvs);
    assert.deepEqual(parseProxyHeader(header), { kind: 'header', version: 2, length: header.length, addresses: a, tlvs });
  }
  assert.equal(V2_LOCAL_HEADER.toString('hex'), '0d0a0d0a000d0a515549540a' + '20000000');
});
