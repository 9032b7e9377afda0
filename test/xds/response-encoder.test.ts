// The hand-assembled DiscoveryResponse is byte-identical to protobufjs's encoding and decodes back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_TYPE, ROUTE_TYPE, decodeMessage, messageType, packAny } from '../../src/envoy/index.ts';
import { encodeDiscoveryResponse, encodeDiscoveryResponseTransient } from '../../src/xds/server/response-encoder.ts';

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
    // The transient encoding (into a reused buffer) gives the same bytes too.
    assert.deepEqual(Buffer.from(encodeDiscoveryResponseTransient(msg)), ours);
    const back = decodeMessage('envoy.service.discovery.v3.DiscoveryResponse', ours) as { version_info?: string; resources?: { '@type': string }[] };
    assert.equal(back.version_info ?? '', msg.version_info);
    assert.equal((back.resources ?? []).length, msg.resources.length);
  }
});
