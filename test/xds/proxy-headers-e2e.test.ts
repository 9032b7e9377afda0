// proxyHeaders through real processes: the control plane with a MeshConfig defaultConfig.proxyHeaders
// and `rig proxy --mode router` gateways, one of which overrides it with its own proxy config
// (PROXY_CONFIG, Istio's proxy.istio.io/config annotation). Observed on the wire: the server header
// the client gets, x-envoy-attempt-count and x-request-id on the request the backend gets, and the
// router's x-envoy-upstream-service-time on the response; with preserveHttp1HeaderCase, the case of
// HTTP/1 header names both ways (raw sockets on both sides).
import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { parseMeshConfig } from '../../src/model/mesh-config.ts';
import { startMeshControlPlane, type MeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { edgeToBackend, startEdgeGateway, type EdgeGateway } from '../helpers/edge-gateway.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from '../proxy/harness.ts';
import { listenLocal } from '../helpers/listen.ts';

const startGateway = (t: TestContext, mesh: MeshControlPlane, name: string, proxyConfig?: string) => startEdgeGateway(t, mesh, { name, proxyConfig });

/** The gateway's answer once its listener and routes reach the backend. */
function served(gw: EdgeGateway) {
  return waitFor(
    () => `the gateway serving the backend\n${gw.proxy.log()}`,
    async () => {
      const r = await request(gw.port, { headers: { host: 'shop.example.com' } }).catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    },
    30_000,
  );
}

test('proxyHeaders from MeshConfig and from a gateway proxy config: server header, attempt count, request id and debug headers on the wire', async (t) => {
  const backend = await startUpstream('backend', (_req, res) => {
    res.writeHead(200, { server: 'backend-app' });
    res.end('ok');
    return true;
  });
  t.after(() => backend.close());
  const mesh = await startMeshControlPlane(t, {
    dirPrefix: 'rig-proxy-headers-',
    config: edgeToBackend(backend.port),
    controlPlane: { mesh: parseMeshConfig({ defaultConfig: { proxyHeaders: { server: { value: 'mesh-edge' } } } }) },
  });
  const [meshDefault, own] = await Promise.all([
    startGateway(t, mesh, 'gw-mesh-default'),
    startGateway(t, mesh, 'gw-own', 'proxyHeaders:\n  server: { disabled: true }\n  attemptCount: { disabled: true }\n  requestId: { disabled: true }\n  envoyDebugHeaders: { disabled: true }\n'),
  ]);

  const r1 = await served(meshDefault);
  assert.equal(r1.headers.server, 'mesh-edge', "the mesh default's server.value replaces the backend's");
  assert.ok(r1.headers['x-envoy-upstream-service-time'] !== undefined, 'the router adds its x-envoy-* headers');
  const seen1 = backend.requests.at(-1)!.headers;
  assert.equal(seen1['x-envoy-attempt-count'], '1', "istiod's gateway routes include the attempt count");
  assert.match(String(seen1['x-request-id']), /^[0-9a-f-]{36}$/, 'the gateway generates a request id');

  const r2 = await served(own);
  assert.equal(r2.headers.server, 'backend-app', "server.disabled: the backend's server header passes through");
  assert.equal(r2.headers['x-envoy-upstream-service-time'], undefined, 'envoyDebugHeaders.disabled');
  const seen2 = backend.requests.at(-1)!.headers;
  assert.equal(seen2['x-envoy-attempt-count'], undefined, 'attemptCount.disabled');
  assert.equal(seen2['x-request-id'], undefined, 'requestId.disabled: no request id generated');
  assert.equal((await request(own.port, { headers: { host: 'shop.example.com', 'x-request-id': 'client-id' } })).status, 200);
  assert.equal(backend.requests.at(-1)!.headers['x-request-id'], 'client-id', "a client's request id still goes through");
});

/** One raw HTTP/1.1 exchange (closed by the gateway after it: Connection: close). */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    let out = '';
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

test('preserveHttp1HeaderCase in a gateway proxy config: HTTP/1 header names keep their case to the backend and back', async (t) => {
  const heads: string[] = [];
  const sockets = new Set<net.Socket>();
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  const backend = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      heads.push(buf.slice(0, end));
      buf = buf.slice(end + 4);
      s.write('HTTP/1.1 200 OK\r\nX-Backend-Header: B\r\nContent-Length: 2\r\n\r\nok');
    });
  });
  const backendPort = await listenLocal(backend, t);
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-proxy-headers-case-', config: edgeToBackend(backendPort) });
  const gw = await startGateway(t, mesh, 'gw-case', 'proxyHeaders:\n  preserveHttp1HeaderCase: true\n');
  const res = await waitFor(
    () => `the gateway serving the backend\n${gw.proxy.log()}`,
    async () => {
      const r = await rawExchange(gw.port, 'GET / HTTP/1.1\r\nHost: shop.example.com\r\nX-Custom-Header: CustomValue\r\nConnection: close\r\n\r\n').catch(() => '');
      return r.startsWith('HTTP/1.1 200') ? r : undefined;
    },
    30_000,
  );
  assert.match(res, /\r\nX-Backend-Header: B\r\n/, "the backend's case reaches the client");
  const head = heads.at(-1)!;
  assert.match(head, /\r\nX-Custom-Header: CustomValue\r\n/, "the client's case reaches the backend");
  assert.match(head, /\r\nHost: shop\.example\.com(\r\n|$)/);
});
