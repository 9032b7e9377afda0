// VirtualService match.statPrefix through the control plane and a real gateway: istiod's
// translateRoute gives the route Envoy's stat_prefix, and the proxy keeps that route's stats
// (vhost.<virtual host>.route.<statPrefix>.upstream_rq_*; Istio's stats matcher keeps vhost.*.route.*).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { edgeGatewayYaml, startEdgeGateway } from '../helpers/edge-gateway.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from '../proxy/harness.ts';

test('match.statPrefix: the matched route keeps its own upstream_rq stats in the gateway; a match without one keeps none', async (t) => {
  const backend = await startUpstream('backend');
  t.after(() => backend.close());
  const config = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: backend, namespace: istio-system }
spec:
  hosts: [backend.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${backend.port} } }]
---${edgeGatewayYaml('{ match: [{ uri: { prefix: /cart }, statPrefix: cart }, { uri: { prefix: /shop } }], route: [{ destination: { host: backend.example.com, port: { number: 80 } } }] }')}`;
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-stat-prefix-', config, controlPlane: { debounceMs: 10 } });
  const gw = await startEdgeGateway(t, mesh, { name: 'gw-stats' });
  const { admin } = await gw.proxy.started();
  await waitFor(
    () => `the gateway serving /cart\n${gw.proxy.log()}`,
    async () => ((await request(gw.port, { path: '/cart/1', headers: { host: 'shop.example.com' } }).catch(() => undefined))?.status === 200 ? true : undefined),
    30_000,
  );
  assert.equal((await request(gw.port, { path: '/cart/2', headers: { host: 'shop.example.com' } })).status, 200);
  assert.equal((await request(gw.port, { path: '/shop', headers: { host: 'shop.example.com' } })).status, 200);

  const body = JSON.parse(await (await fetch(`http://127.0.0.1:${admin}/stats?format=json&filter=${encodeURIComponent('^vhost\\.')}`)).text()) as { stats: { name?: string; value?: number }[] };
  const stats = Object.fromEntries(body.stats.filter((s) => s.name !== undefined).map((s) => [s.name!, s.value!]));
  const total = Object.entries(stats).find(([k]) => /^vhost\..+\.route\.cart\.upstream_rq_total$/.test(k));
  assert.ok(total, `vhost.*.route.cart.upstream_rq_total in ${JSON.stringify(stats)}`);
  // The first request may have come before the route did (a 404 then): at least the two after it.
  assert.ok(total[1] >= 2, `${total[0]} = ${total[1]}`);
  const prefix = total[0].slice(0, -'upstream_rq_total'.length);
  assert.equal(stats[`${prefix}upstream_rq_200`], total[1]);
  assert.deepEqual([...new Set(Object.keys(stats).map((k) => /\.route\.([^.]+)\./.exec(k)?.[1]))], ['cart'], 'the /shop match has no stat_prefix');
});
