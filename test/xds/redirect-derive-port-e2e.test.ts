// VirtualService redirect.derivePort through the control plane and a real gateway, as istiod's
// ApplyRedirect translates it: FROM_REQUEST_PORT is the port the routes serve (the Gateway server's,
// 8080 here, whatever local port the test reaches it on), FROM_PROTOCOL_DEFAULT sets no port (Envoy
// then drops the request's with a new authority, or with a scheme change from its default port),
// and a port that is the scheme's default is left out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { edgeGatewayYaml, startEdgeGateway } from '../helpers/edge-gateway.ts';
import { waitFor } from '../helpers/wait.ts';
import { request } from '../proxy/harness.ts';

const routes = [
  '{ match: [{ uri: { prefix: /request } }], redirect: { uri: /moved, derivePort: FROM_REQUEST_PORT } }',
  '{ match: [{ uri: { prefix: /default } }], redirect: { authority: other.example.com, derivePort: FROM_PROTOCOL_DEFAULT } }',
  '{ match: [{ uri: { prefix: /secure } }], redirect: { scheme: https, derivePort: FROM_PROTOCOL_DEFAULT } }',
  '{ match: [{ uri: { prefix: /to-80 } }], redirect: { authority: other.example.com, port: 80 } }',
].join(', ');

test('redirect.derivePort: FROM_REQUEST_PORT gives the Location the served port, FROM_PROTOCOL_DEFAULT none', async (t) => {
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-derive-port-', config: edgeGatewayYaml(routes), controlPlane: { debounceMs: 10 } });
  const gw = await startEdgeGateway(t, mesh, { name: 'gw-redirect' });
  const location = async (path: string, host: string) => {
    const r = await request(gw.port, { path, headers: { host } });
    return r.status === 301 ? r.headers.location : `${r.status}`;
  };
  await waitFor(
    () => `the gateway's redirect routes\n${gw.proxy.log()}`,
    async () => ((await location('/request', 'shop.example.com').catch(() => undefined)) === 'http://shop.example.com:8080/moved' ? true : undefined),
    30_000,
  );
  assert.equal(await location('/request', `shop.example.com:${gw.port}`), 'http://shop.example.com:8080/moved', "the request's port is replaced by the served one");
  assert.equal(await location('/default/x', 'shop.example.com:8080'), 'http://other.example.com/default/x');
  assert.equal(await location('/secure', 'shop.example.com:80'), 'https://shop.example.com/secure', "http's default port goes with the scheme");
  assert.equal(await location('/secure', 'shop.example.com:8080'), 'https://shop.example.com:8080/secure', 'another port stays, as Envoy keeps it');
  assert.equal(await location('/to-80', 'shop.example.com:8080'), 'http://other.example.com/to-80', 'port 80 on http is left out');
});
