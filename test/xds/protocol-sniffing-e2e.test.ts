// Protocol sniffing through the real control plane and two real `rig proxy` processes: a Service
// port without a name (no declared protocol) is served by listeners with the http_inspector, so
// HTTP takes the connection manager (VirtualService routes apply, the proxy adds x-request-id) and
// anything else goes through tcp_proxy byte for byte — outbound on the client sidecar, inbound on
// the server sidecar in plaintext, and over mesh mTLS between the two. Over mTLS the client marks
// HTTP with Istio's ALPN (istio.alpn: istio-http/1.1), so the server takes its HTTP chain there too
// (an HTTP AuthorizationPolicy applies).
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { FIRST_CONFIG_TIMEOUT_MS, startSidecar } from '../helpers/rig-proxy.ts';
import { parseYaml } from './fixtures.ts';
import { waitFor } from '../helpers/wait.ts';
import { request } from '../proxy/harness.ts';

const CONFIG = `
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: foo }
spec: { selector: { app: echo }, ports: [{ port: 7000 }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: foo }
spec:
  hosts: [echo]
  http:
  - headers: { request: { set: { x-sniffed: http } } }
    route: [{ destination: { host: echo } }]
`;

/** Only GET /hello reaches echo: HTTP-only fields, so on a TCP chain nothing would be allowed. */
const ALLOW_HELLO = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: hello-only, namespace: foo }
spec:
  selector: { matchLabels: { app: echo } }
  action: ALLOW
  rules: [{ to: [{ operation: { methods: [GET], paths: [/hello] } }] }]
`;

/** An app that speaks HTTP (answers with the request headers) and a line echo protocol on one port. */
async function startDualApp(t: TestContext): Promise<number> {
  const httpServer = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.headers));
  });
  const server = net.createServer((socket) => {
    socket.once('data', (first: Buffer) => {
      if (/^[A-Z]+ \S+ HTTP\/1\.[01]\r\n/.test(first.toString('latin1'))) {
        socket.pause();
        socket.unshift(first);
        httpServer.emit('connection', socket);
        socket.resume();
        return;
      }
      socket.write(`tcp:${first.toString()}`);
      socket.on('data', (d: Buffer) => socket.write(`tcp:${d.toString()}`));
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  t.after(() => server.unref());
  return (server.address() as net.AddressInfo).port;
}

async function httpGet(port: number, host: string, path = '/hello'): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const { status, body } = await request(port, { path, headers: { host } });
  return { status, headers: status === 200 ? (JSON.parse(body) as Record<string, string>) : {}, body };
}

function tcpExchange(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(line));
    let got = '';
    s.on('data', (d: Buffer) => {
          got += d.toString();
      if (got.endsWith('\n')) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`connection closed without an echo for ${JSON.stringify(line)} (got ${JSON.stringify(got)})`)));
    s.setTimeout(5000, () => {
      s.destroy();
      reject(new Error(`no echo for ${JSON.stringify(line)} (got ${JSON.stringify(got)})`));
    });
  });
}

/** An HTTP/1.0 request as raw bytes; resolves with the whole response once the server closes. */
function http10Exchange(port: number, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET /hello HTTP/1.0\r\nHost: ${host}\r\n\r\n`));
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('end', () => resolve(got));
    s.on('error', reject);
    s.setTimeout(5000, () => {
      s.destroy();
      reject(new Error(`no complete HTTP/1.0 response (got ${JSON.stringify(got)})`));
    });
  });
}

test('a port without a declared protocol: HTTP through the connection manager, other bytes through tcp_proxy', async (t) => {
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-sniff-', config: CONFIG, controlPlane: { debounceMs: 10 } });
  const { store } = mesh;
  const appPort = await startDualApp(t);
  const [inbound, upstream] = [await freePort(), await freePort()];
  await Promise.all([
    startSidecar(t, mesh, { namespace: 'foo', name: 'echo', args: ['--workload-port', '7000', '--inbound-port', `7000=${inbound}`, '--app-port', `7000=${appPort}`, '--outbound-port', String(await freePort())] }),
    startSidecar(t, mesh, { namespace: 'foo', name: 'sleep', args: ['--outbound-port', String(await freePort()), '--upstream-port', `echo.foo.svc.cluster.local:7000=${upstream}`] }),
  ]);

  // Client sidecar, outbound: HTTP is routed (the VirtualService's header) and carried over mTLS.
  const viaClient = await waitFor('HTTP through the client sidecar', async () => {
    const r = await httpGet(upstream, 'echo.foo.svc.cluster.local:7000');
    return r.status === 200 ? r : undefined;
  }, FIRST_CONFIG_TIMEOUT_MS);
  assert.equal(viaClient.headers['x-sniffed'], 'http');
  assert.ok(viaClient.headers['x-request-id'], 'the connection manager handled the request');
  // ...and a non-HTTP protocol on the same port is relayed as bytes.
  assert.equal(await tcpExchange(upstream, 'ping\n'), 'tcp:ping\n');
  assert.equal(await tcpExchange(upstream, '\x00\x01binary\n'), 'tcp:\x00\x01binary\n');

  // Server sidecar, inbound plaintext (PERMISSIVE): the same split.
  const direct = await httpGet(inbound, 'echo');
  assert.equal(direct.status, 200);
  assert.ok(direct.headers['x-request-id'], 'the inbound connection manager handled the request');
  assert.equal(direct.headers['x-sniffed'], undefined);
  assert.equal(await tcpExchange(inbound, 'pong\n'), 'tcp:pong\n');
  // HTTP/1.0 is not sniffed as HTTP (Istio without PILOT_HTTP10): relayed as TCP it reaches the app
  // untouched, where the connection manager would have answered 426.
  for (const port of [inbound, upstream]) {
    const reply = await http10Exchange(port, 'echo.foo.svc.cluster.local:7000');
    assert.match(reply, /^HTTP\/1\.[01] 200 /, reply);
    assert.doesNotMatch(reply, /x-request-id|x-sniffed/, 'no connection manager touched it');
  }

  // Client → server over mTLS: the server's HTTP chain answers (its RBAC denies another path with
  // 403; on the TCP chain this policy would let nothing through).
  store.apply(parseYaml(ALLOW_HELLO));
  const denied = await waitFor('the server sidecar to deny /other', async () => {
    const r = await httpGet(upstream, 'echo.foo.svc.cluster.local:7000', '/other');
    return r.status === 403 ? r : undefined;
  });
  assert.equal(denied.body, 'RBAC: access denied');
  const allowed = await httpGet(upstream, 'echo.foo.svc.cluster.local:7000');
  assert.equal(allowed.status, 200);
  assert.equal(allowed.headers['x-sniffed'], 'http');
  assert.ok(allowed.headers['x-forwarded-client-cert']?.includes('spiffe://cluster.local/ns/foo/sa/sleep'), 'the server sidecar saw the client identity over mTLS');
});
