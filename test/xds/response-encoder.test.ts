// The hand-assembled DiscoveryResponse is byte-identical to protobufjs's encoding and decodes back;
// identical responses are encoded once and their gRPC frame goes out through grpc-js as is.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_TYPE, ROUTE_TYPE, decodeMessage, messageType, packAny } from '../../src/envoy/index.ts';
import { encodedResponse } from '../../src/xds/server/encoded-response.ts';
import { framesSentAsIs } from '../../src/xds/server/grpc-server.ts';
import { pack } from '../../src/xds/server/resource-cache.ts';
import { encodeDiscoveryResponse, encodeFramedDiscoveryResponse } from '../../src/xds/server/response-encoder.ts';

const Response = messageType('envoy.service.discovery.v3.DiscoveryResponse');

function route(vhosts: number) {
  return packAny(ROUTE_TYPE, {
    name: '8080',
    virtual_hosts: Array.from({ length: vhosts }, (_, i) => ({ name: `svc-${i}.ns.svc.cluster.local:8080`, domains: [`svc-${i}`, `svc-${i}.ns`], routes: [{ match: { prefix: '/' }, route: { cluster: `outbound|8080||svc-${i}.ns.svc.cluster.local`, timeout: '0s' } }] })),
  });
}

test('DiscoveryResponse bytes equal protobufjs encoding (small, multi-byte lengths, empty fields, shared resources)', () => {
  const big = route(2000);
  assert.ok(big.value.length > 1 << 17, 'a resource longer than two varint bytes');
  const cluster = packAny(CLUSTER_TYPE, { name: 'outbound|80||a', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } });
  const cases = [
    { version_info: '2026-11-25T00:00:00Z/7', type_url: ROUTE_TYPE, nonce: 'a1-7', resources: [big, route(1)] },
    { version_info: 'v', type_url: CLUSTER_TYPE, nonce: 'n', resources: [cluster, cluster] },
    { version_info: '', type_url: CLUSTER_TYPE, nonce: 'x', resources: [] },
    { version_info: 'é-versión', type_url: ROUTE_TYPE, nonce: '', resources: [big] },
  ];
  for (const msg of cases) {
    const ours = encodeDiscoveryResponse(msg);
    assert.deepEqual(ours, Buffer.from(Response.encode(msg as never).finish()));
    // Encoding again reuses the cached pieces and gives the same bytes.
    assert.deepEqual(encodeDiscoveryResponse(msg), ours);
    // The gRPC frame: uncompressed flag, big-endian length, the same bytes.
    const framed = encodeFramedDiscoveryResponse(msg);
    assert.equal(framed[0], 0);
    assert.equal(framed.readUInt32BE(1), ours.length);
    assert.deepEqual(framed.subarray(5), ours);
    const back = decodeMessage('envoy.service.discovery.v3.DiscoveryResponse', ours) as { version_info?: string; resources?: { '@type': string }[] };
    assert.equal(back.version_info ?? '', msg.version_info);
    assert.equal((back.resources ?? []).length, msg.resources.length);
  }
});

test('identical responses share one encoding and nonce; another version or content gets its own', () => {
  const vh = (host: string) => ({ name: '8080', virtual_hosts: [{ name: host, domains: [host], routes: [{ match: { prefix: '/' }, route: { cluster: `outbound|8080||${host}` } }] }] });
  // Packing equal JSON built twice gives the interned resource, as for two proxies' memoized tables.
  const a = [pack(ROUTE_TYPE, vh('a.ns.svc.cluster.local'))];
  const a2 = [pack(ROUTE_TYPE, vh('a.ns.svc.cluster.local'))];
  const b = [pack(ROUTE_TYPE, vh('b.ns.svc.cluster.local'))];
  const first = encodedResponse('2026-11-26T00:00:00Z/3', ROUTE_TYPE, a);
  assert.equal(encodedResponse('2026-11-26T00:00:00Z/3', ROUTE_TYPE, a2), first);
  const other = encodedResponse('2026-11-26T00:00:00Z/3', ROUTE_TYPE, b);
  const next = encodedResponse('2026-11-26T00:00:01Z/4', ROUTE_TYPE, a);
  assert.notEqual(other.nonce, first.nonce);
  assert.notEqual(next.nonce, first.nonce);
  assert.match(next.nonce, /-4$/);
  const back = decodeMessage('envoy.service.discovery.v3.DiscoveryResponse', first.body) as { version_info: string; nonce: string; type_url: string; resources: { name: string }[] };
  assert.deepEqual([back.version_info, back.nonce, back.type_url, back.resources[0].name], ['2026-11-26T00:00:00Z/3', first.nonce, ROUTE_TYPE, '8080']);
  assert.equal(first.frame.readUInt32BE(1), first.body.length);
});

test('grpc-js writes the pre-encoded frame as is (its internal serializeMessage hook is in place)', () => {
  // If a grpc-js upgrade renames the internal, responses still go out (framed by grpc-js, copied
  // per stream); this test says the 2000-proxy push lost its shared buffers.
  assert.equal(framesSentAsIs, true);
});
