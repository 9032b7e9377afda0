// DestinationRule trafficPolicy.tunnel end to end: the control plane, a real `rig proxy` sidecar
// (explicit mode: the app's CONNECT to db.example.com:5432 is handled as a connection captured to
// that service) and a forward proxy written here (HTTP/1.1 CONNECT and POST, node:http). The
// VirtualService sends db's TCP traffic to the forward proxy's host, whose rule tunnels it to
// echo.internal:7000; the bytes reach the echo server through the forward proxy and come back.
// A forward proxy on a port declared HTTP2 gets the tunnel as an HTTP/2 CONNECT stream.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { listenLocal, startTcpEcho } from '../helpers/listen.ts';
import { waitFor } from '../helpers/wait.ts';
import { parseYaml } from './fixtures.ts';

const tunnelRule = (protocol: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: forward-proxy, namespace: foo }
spec:
  host: proxy.example.com
  trafficPolicy: { tunnel: { protocol: ${protocol}, targetHost: echo.internal, targetPort: 7000 } }
`;

const config = (proxyPort: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: forward-proxy, namespace: foo }
spec:
  hosts: [proxy.example.com]
  addresses: [240.240.10.1]
  location: MESH_EXTERNAL
  ports: [{ number: 3128, name: tcp, protocol: TCP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { tcp: ${proxyPort} } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: foo }
spec:
  hosts: [db.example.com]
  addresses: [240.240.10.2]
  location: MESH_EXTERNAL
  ports: [{ number: 5432, name: tcp, protocol: TCP }]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: foo }
spec:
  hosts: [db.example.com]
  tcp: [{ route: [{ destination: { host: proxy.example.com, port: { number: 3128 } } }] }]
---
${tunnelRule('CONNECT')}`;

/** A forward proxy that knows one target, echo.internal:7000 (CONNECT to it, or a POST whose body is the stream). */
async function forwardProxy(t: { after(fn: () => unknown): void }, echoPort: number, seen: string[]): Promise<number> {
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.host}`);
    if (req.headers.host !== 'echo.internal:7000') return res.writeHead(403).end();
    const up = net.connect(echoPort, '127.0.0.1', () => {
      res.writeHead(200);
      res.flushHeaders();
      req.pipe(up).pipe(res);
    });
    up.on('error', () => res.destroy());
  });
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    seen.push(`${req.method} ${req.url} ${req.headers.host}`);
    socket.on('error', () => undefined);
    if (req.url !== 'echo.internal:7000') return socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
    const up = net.connect(echoPort, '127.0.0.1', () => {
      socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
      if (head.length) up.write(head);
      socket.pipe(up).pipe(socket);
    });
    up.on('error', () => socket.destroy());
  });
  t.after(() => server.closeAllConnections());
  return listenLocal(server, t);
}

/** An HTTP/2 forward proxy: CONNECT streams to echo.internal:7000 only. */
async function h2ForwardProxy(t: { after(fn: () => unknown): void }, echoPort: number, seen: string[]): Promise<number> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    seen.push(`h2 ${headers[':method']} ${headers[':authority']}`);
    stream.on('error', () => undefined);
    if (headers[':method'] !== 'CONNECT' || headers[':authority'] !== 'echo.internal:7000') return stream.respond({ ':status': 403 }, { endStream: true });
    const up = net.connect(echoPort, '127.0.0.1', () => {
      stream.respond({ ':status': 200 });
      stream.pipe(up).pipe(stream);
    });
    up.on('error', () => stream.destroy());
  });
  t.after(() => {
    for (const s of sessions) s.destroy();
  });
  return listenLocal(server as unknown as net.Server, t);
}

const h2Proxy = (port: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: forward-proxy-h2, namespace: foo }
spec:
  hosts: [proxy-h2.example.com]
  addresses: [240.240.10.3]
  location: MESH_EXTERNAL
  ports: [{ number: 3129, name: http2, protocol: HTTP2 }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { http2: ${port} } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: forward-proxy-h2, namespace: foo }
spec:
  host: proxy-h2.example.com
  trafficPolicy: { tunnel: { targetHost: echo.internal, targetPort: 7000 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: foo }
spec:
  hosts: [db.example.com]
  tcp: [{ route: [{ destination: { host: proxy-h2.example.com, port: { number: 3129 } } }] }]
`;

/** CONNECT db.example.com:5432 through the sidecar, send `text`, half-close; what comes back ('' when refused). */
function throughSidecar(outbound: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(outbound, '127.0.0.1', () => s.write('CONNECT db.example.com:5432 HTTP/1.1\r\nhost: db.example.com:5432\r\n\r\n'));
    let head = '';
    let body = '';
    let open = false;
    s.on('data', (c: Buffer) => {
      if (open) return void (body += c.toString('latin1'));
      head += c.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!head.startsWith('HTTP/1.1 200')) return s.destroy();
      open = true;
      body = head.slice(end + 4);
      s.end(text);
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(body));
  });
}

test('DestinationRule tunnel: TCP bytes reach the target through the forward proxy (CONNECT, POST, HTTP/2 CONNECT)', async (t) => {
  const echo = await startTcpEcho(t);
  const seen: string[] = [];
  const proxyPort = await forwardProxy(t, echo, seen);
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-tunnel-cp-', config: config(proxyPort), controlPlane: { debounceMs: 10 } });
  const out = await freePort();
  const sidecar = await startSidecar(t, mesh, { namespace: 'foo', name: 'app', args: ['--outbound-port', String(out)] });

  const echoed = await waitFor(
    () => `the echo through the tunnel\nforward proxy saw: ${seen.join('; ')}\n${sidecar.log()}`,
    async () => ((await throughSidecar(out, 'ping over CONNECT')) === 'ping over CONNECT' ? true : undefined),
    60_000,
  );
  assert.equal(echoed, true);
  assert.ok(seen.includes('CONNECT echo.internal:7000 echo.internal:7000'), seen.join('\n'));

  mesh.store.apply(parseYaml(tunnelRule('POST')));
  await waitFor(
    () => `a POST tunnel\nforward proxy saw: ${seen.join('; ')}\n${sidecar.log()}`,
    async () => ((await throughSidecar(out, 'ping over POST')) === 'ping over POST' && seen.includes('POST / echo.internal:7000') ? true : undefined),
    30_000,
  );

  const h2Port = await h2ForwardProxy(t, echo, seen);
  mesh.store.apply(parseYaml(h2Proxy(h2Port)));
  await waitFor(
    () => `an HTTP/2 tunnel\nforward proxy saw: ${seen.join('; ')}\n${sidecar.log()}`,
    async () => ((await throughSidecar(out, 'ping over h2')) === 'ping over h2' && seen.includes('h2 CONNECT echo.internal:7000') ? true : undefined),
    30_000,
  );
});
