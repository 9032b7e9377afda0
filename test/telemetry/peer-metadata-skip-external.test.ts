// peer_metadata upstream_propagation istio_headers.skip_external_clusters (istiod's
// metadataExchangeHeaders IN_MESH): x-envoy-peer-metadata(-id) still reach a mesh cluster's upstream
// but not one whose cluster metadata says istio.external, nor PassthroughCluster; without the flag
// every upstream gets them. Real sockets through a rig proxy runtime.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { PEER_METADATA_TYPE } from '../../src/proxy/telemetry/peer-metadata-filter.ts';
import { PEER_ID_HEADER, PEER_METADATA_HEADER } from '../../src/proxy/telemetry/peer-metadata.ts';
import { configure, httpListener, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster, type Upstream } from '../proxy/harness.ts';

const TYPED_STRUCT = 'type.googleapis.com/udpa.type.v1.TypedStruct';
const EXTERNAL = { metadata: { filter_metadata: { istio: { external: true } } } };

function outbound(name: string, istioHeaders: EnvoyJson): EnvoyJson {
  const routes = ['mesh', 'external', 'PassthroughCluster'].map((c) => ({ match: { prefix: `/${c}` }, route: { cluster: c } }));
  return httpListener(name, routeConfig(name, routes), {
    http_filters: [
      { name: 'envoy.filters.http.peer_metadata', typed_config: { '@type': TYPED_STRUCT, type_url: PEER_METADATA_TYPE, value: { upstream_discovery: [{ istio_headers: {} }], upstream_propagation: [{ istio_headers: istioHeaders }] } } },
      ROUTER,
    ],
  });
}

/** Whether the request through `port` to `path` reached `up` with both peer headers (false: with neither). */
async function sentPeerHeaders(port: number, path: string, up: Upstream): Promise<boolean> {
  const seen = up.requests.length;
  const r = await request(port, { path });
  assert.equal(r.status, 200, r.body);
  assert.equal(up.requests.length, seen + 1);
  const h = up.requests[seen].headers;
  assert.equal(h[PEER_ID_HEADER] !== undefined, h[PEER_METADATA_HEADER] !== undefined, `${path}: both peer headers or neither`);
  return h[PEER_METADATA_HEADER] !== undefined;
}

test('skip_external_clusters: the peer metadata headers go to mesh clusters only; without it to every cluster', async (t) => {
  const mesh = await startUpstream('mesh');
  const external = await startUpstream('external');
  const passthrough = await startUpstream('passthrough');
  const h = await startTestRuntime(t, [mesh, external, passthrough]);
  await configure(h, {
    clusters: [staticCluster('mesh', [mesh.port]), staticCluster('external', [external.port], EXTERNAL), staticCluster('PassthroughCluster', [passthrough.port])],
    listeners: [outbound('in_mesh', { skip_external_clusters: true }), outbound('always', {})],
  });
  assert.deepEqual([...h.rt.warnings.values()].flat(), [], 'skip_external_clusters is implemented, not warned');

  const inMesh = h.port('in_mesh');
  assert.equal(await sentPeerHeaders(inMesh, '/mesh', mesh), true, 'mesh cluster');
  assert.equal(await sentPeerHeaders(inMesh, '/external', external), false, 'cluster with istio.external');
  assert.equal(await sentPeerHeaders(inMesh, '/PassthroughCluster', passthrough), false, 'PassthroughCluster');

  const always = h.port('always');
  assert.equal(await sentPeerHeaders(always, '/mesh', mesh), true);
  assert.equal(await sentPeerHeaders(always, '/external', external), true);
  assert.equal(await sentPeerHeaders(always, '/PassthroughCluster', passthrough), true);
});
