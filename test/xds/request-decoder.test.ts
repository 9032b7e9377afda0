// DiscoveryRequests decode as protobufjs decodes them, with the resource names interned by their
// bytes (an unchanged ACK gives the very same array); odd encodings fall back to protobufjs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ENDPOINT_TYPE, decodeMessage, encodeMessage } from '../../src/envoy/index.ts';
import { decodeDiscoveryRequest } from '../../src/xds/server/request-decoder.ts';

const REQ = 'envoy.service.discovery.v3.DiscoveryRequest';
const names = Array.from({ length: 1000 }, (_, i) => `outbound|8080||svc-${i}.ns-${i % 10}.svc.cluster.local`);

function encode(req: Record<string, unknown>): Buffer {
  return Buffer.from(encodeMessage(REQ, req));
}

test('requests decode as protobufjs decodes them; the same names bytes give the same array', () => {
  const first = { node: { id: 'sidecar~10.0.0.1~a-0.ns-0~ns-0.svc.cluster.local', metadata: { NAMESPACE: 'ns-0' } }, type_url: ENDPOINT_TYPE, resource_names: names };
  const ack = { version_info: '2026-11-26T00:00:00Z/3', type_url: ENDPOINT_TYPE, response_nonce: '1f-3', resource_names: names };
  const nack = { ...ack, error_detail: { code: 3, message: 'rejected: ünïcode' }, resource_names: ['ä|80||x', 'b'] };
  for (const req of [first, ack, nack, { type_url: ENDPOINT_TYPE }, { resource_names: ['only'] }]) {
    const bytes = encode(req);
    assert.deepEqual(decodeDiscoveryRequest(bytes), decodeMessage(REQ, bytes));
  }
  const a = decodeDiscoveryRequest(encode(ack)).resource_names;
  const b = decodeDiscoveryRequest(encode({ ...ack, response_nonce: '20-3' })).resource_names;
  const c = decodeDiscoveryRequest(encode(first)).resource_names;
  assert.equal(a, b);
  assert.equal(a, c);
  assert.notEqual(decodeDiscoveryRequest(encode({ ...ack, resource_names: names.slice(1) })).resource_names, a);
});

test('names split by another field, and malformed bytes, go to protobufjs', () => {
  const part1 = encode({ resource_names: ['a', 'b'] });
  const type = encode({ type_url: ENDPOINT_TYPE });
  const part2 = encode({ resource_names: ['c'] });
  const split = Buffer.concat([part1, type, part2]);
  assert.deepEqual(decodeDiscoveryRequest(split), decodeMessage(REQ, split));
  assert.deepEqual(decodeDiscoveryRequest(split).resource_names, ['a', 'b', 'c']);
  const truncated = encode({ type_url: ENDPOINT_TYPE, resource_names: names }).subarray(0, 500);
  assert.throws(() => decodeDiscoveryRequest(truncated));
  assert.throws(() => decodeDiscoveryRequest(Buffer.from([0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f])));
});
