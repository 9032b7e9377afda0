import assert from 'node:assert/strict';
import { test } from 'node:test';
import { maskAddress } from './masked-address.ts';

test('masked_remote_address values are CIDR strings with canonical IPv6 text', () => {
  assert.equal(maskAddress('10.1.2.3', 24, 128), '10.1.2.0/24');
  assert.equal(maskAddress('::ffff:127.0.0.1', 8, 128), '127.0.0.0/8');
  assert.equal(maskAddress('192.168.1.255', 0, 0), '0.0.0.0/0');
  assert.equal(maskAddress('192.168.1.255', 32, 0), '192.168.1.255/32');
  assert.equal(maskAddress('2001:db8:1:2:3:4:5:6', 32, 64), '2001:db8:1:2::/64');
  assert.equal(maskAddress('2001:db8::1', 32, 128), '2001:db8::1/128');
  assert.equal(maskAddress('2001:db8:ffff::1', 32, 36), '2001:db8:f000::/36');
  assert.equal(maskAddress('fe80::1:2', 32, 0), '::/0');
});
