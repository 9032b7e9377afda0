// PROXY protocol through the control plane and real `rig proxy --mode router` processes:
// gatewayTopology.proxyProtocol (the gateway's PROXY_CONFIG) puts istiod's proxy_protocol listener
// filter on the gateway's listeners, so the client a load balancer names in its PROXY header is
// the one an AuthorizationPolicy's remoteIpBlocks and x-forwarded-for see; a DestinationRule's
// trafficPolicy.proxyProtocol V2 wraps the cluster's transport socket, so the backend gets a v2
// header naming the gateway's downstream connection (the header's client, the header's destination).
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { edgeToBackend, startEdgeGateway } from '../helpers/edge-gateway.ts';
import { startHeaderServer } from '../helpers/proxy-protocol-server.ts';
import { waitFor } from '../helpers/wait.ts';

const config = (backendPort: number) => `${edgeToBackend(backendPort)}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: backend, namespace: istio-system }
spec:
  host: backend.example.com
  trafficPolicy: { proxyProtocol: { version: V2 } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: lb-clients, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: ALLOW
  rules: [{ from: [{ source: { remoteIpBlocks: [203.0.113.0/24] } }] }]
`;

/** One request over a raw connection that starts with `prefix`; resolves with the status line, '' when closed without a reply. */
function send(port: number, prefix: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (c) => (out += c.toString('latin1')));
    s.on('close', () => resolve(out.split('\r\n')[0]));
    s.on('error', () => undefined);
    s.write(`${prefix}GET / HTTP/1.1\r\nhost: shop.example.com\r\nconnection: close\r\n\r\n`);
  });
}

test('gatewayTopology.proxyProtocol and DestinationRule proxyProtocol through the control plane and a rig gateway', async (t) => {
  const seen: http.IncomingHttpHeaders[] = [];
  const httpServer = http.createServer((req, res) => {
    seen.push(req.headers);
    res.end('ok');
  });
  const backend = await startHeaderServer(t, (s) => httpServer.emit('connection', s));
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-proxy-protocol-', config: config(backend.port) });
  const gw = await startEdgeGateway(t, mesh, { name: 'gw-pp', proxyConfig: '{"gatewayTopology": {"proxyProtocol": {}}}' });
  const header = 'PROXY TCP4 203.0.113.7 198.51.100.20 5555 443\r\n';
  await waitFor(() => `the gateway answering 200 behind a PROXY header\n${gw.proxy.log()}`, async () => ((await send(gw.port, header)) === 'HTTP/1.1 200 OK' ? true : undefined), 30_000);

  // The client named by the PROXY header passed remoteIpBlocks and is the x-forwarded-for entry.
  assert.match(String(seen.at(-1)!['x-forwarded-for']), /^203\.0\.113\.7$/);
  // DestinationRule V2: the backend's header names the gateway's downstream connection as the PROXY header gave it.
  const v2 = backend.headers.at(-1)!;
  assert.equal(v2.subarray(0, 12).toString('latin1'), '\r\n\r\n\0\r\nQUIT\n');
  assert.deepEqual([...v2.subarray(12, 16)], [0x21, 0x11, 0, 12], 'PROXY, AF_INET over STREAM, 12 address bytes');
  assert.deepEqual([...v2.subarray(16, 24)], [203, 0, 113, 7, 198, 51, 100, 20]);
  assert.deepEqual([v2.readUInt16BE(24), v2.readUInt16BE(26)], [5555, 443]);

  assert.equal(await send(gw.port, 'PROXY TCP4 198.51.100.1 198.51.100.20 5555 443\r\n'), 'HTTP/1.1 403 Forbidden', 'a client outside remoteIpBlocks');
  assert.equal(await send(gw.port, ''), '', 'no PROXY header: the gateway closes the connection');
});
