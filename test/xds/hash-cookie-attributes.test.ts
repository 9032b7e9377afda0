// DestinationRule consistentHash.httpCookie.attributes: the route's hash_policy cookie carries them
// (name, and value when given), and the proxy writes them into the cookie it generates as Envoy's
// makeSetCookieValue does: `name="value"; Max-Age=<ttl>; Path=<path>; <attributes>; HttpOnly`,
// an attribute as `; name=value`, or `; name` without a value. Checked through the translation,
// then through the control plane and a real `rig proxy` gateway.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ROUTE_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { edgeToBackend, startEdgeGateway } from '../helpers/edge-gateway.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from '../proxy/harness.ts';
import { assertEnvoyResource, buildPush, parseYaml, podSidecar } from './fixtures.ts';

const stickyRule = (host: string, ns: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: sticky, namespace: ${ns} }
spec:
  host: ${host}
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie:
          name: sticky
          path: /
          ttl: 60s
          attributes: [{ name: SameSite, value: None }, { name: Secure }]
`;

test('httpCookie.attributes become the route hash_policy cookie attributes', () => {
  const client = podSidecar('client-0', 'default', { app: 'client' }, 'client', [], '198.18.0.81');
  const push = buildPush(
    parseYaml(`apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { selector: { app: web }, ports: [{ name: http, port: 80 }] }
---${stickyRule('web', 'default')}`),
    [client],
  );
  const rc = GENERATORS[ROUTE_TYPE].generate(push, client, ['80'])[0];
  assertEnvoyResource(ROUTE_TYPE, rc);
  const vh = (rc.virtual_hosts as EnvoyJson[]).find((v) => (v.domains as string[]).includes('web.default.svc.cluster.local'))!;
  const route = ((vh.routes as EnvoyJson[])[0].route as EnvoyJson);
  assert.deepEqual(route.hash_policy, [{ cookie: { name: 'sticky', path: '/', ttl: '60s', attributes: [{ name: 'SameSite', value: 'None' }, { name: 'Secure' }] } }]);
});

test('through the control plane and a rig gateway: the generated Set-Cookie carries the attributes as Envoy writes them', async (t) => {
  const backend = await startUpstream('backend');
  t.after(() => backend.close());
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-cookie-attrs-', config: `${edgeToBackend(backend.port)}\n---${stickyRule('backend.example.com', 'istio-system')}` });
  const gw = await startEdgeGateway(t, mesh, { name: 'gw-cookie' });
  const reply = await waitFor(() => `a 200 with a Set-Cookie from the gateway\n${gw.proxy.log()}`, async () => {
    const r = await request(gw.port, { headers: { host: 'shop.example.com' } });
    return r.status === 200 && r.headers['set-cookie'] ? r : undefined;
  }, 60_000);
  const cookies = reply.headers['set-cookie']!;
  assert.equal(cookies.length, 1);
  assert.match(cookies[0], /^sticky="[0-9a-f]{16}"; Max-Age=60; Path=\/; SameSite=None; Secure; HttpOnly$/);
  // With the cookie the client sticks: no new one is generated.
  const again = await request(gw.port, { headers: { host: 'shop.example.com', cookie: cookies[0].split(';')[0] } });
  assert.equal(again.status, 200);
  assert.equal(again.headers['set-cookie'], undefined);
});
