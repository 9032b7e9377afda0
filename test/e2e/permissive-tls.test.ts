// PeerAuthentication PERMISSIVE with an application that serves TLS itself, through the real
// control plane (with its CA) and real `rig proxy` processes, as Istio behaves: the server sidecar
// terminates Istio mTLS only for clients offering Istio's ALPN; a client outside the mesh speaking
// its own TLS is relayed untouched to the application (it sees the application's certificate), and
// plaintext still reaches the application. Under STRICT every TLS connection must be Istio mTLS, so
// the client outside the mesh meets the sidecar's mesh certificate and is refused.
import assert from 'node:assert/strict';
import http from 'node:http';
import https, { type RequestOptions } from 'node:https';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import tls from 'node:tls';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { makePki, type Leaf } from '../proxy/certs.ts';
import { parseYaml } from '../xds/fixtures.ts';

const HOST = 'secure-app.foo.svc.cluster.local';

const SERVICE = `
apiVersion: v1
kind: Service
metadata: { name: secure-app, namespace: foo }
spec: { selector: { app: secure-app }, ports: [{ name: https, port: 8443 }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: secure-app, namespace: foo }
spec: { host: ${HOST}, trafficPolicy: { tls: { mode: ISTIO_MUTUAL } } }
`;
const PEER_AUTHN = (mode: string) => `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: secure-app, namespace: foo }
spec: { selector: { matchLabels: { app: secure-app } }, mtls: { mode: ${mode} } }
`;
const DENY_SLEEP = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-sleep, namespace: foo }
spec:
  selector: { matchLabels: { app: secure-app } }
  action: DENY
  rules: [{ from: [{ source: { principals: [cluster.local/ns/foo/sa/sleep] } }] }]
`;

interface Reply {
  status: number;
  /** What the application saw: whether its own server terminated TLS. */
  appTls: boolean;
  /** CN of the certificate the client was shown (TLS clients only). */
  peerCN?: string;
}

/**
 * The workload: HTTPS with its own certificate, or plaintext HTTP, on one port (told by the first
 * byte), answering whether it was TLS. The plaintext side answers by hand: http.Server reads a
 * socket handed to it from the native handle, which would miss the first bytes read here.
 */
async function startDualApp(t: TestContext, leaf: Leaf): Promise<number> {
  const secure = https.createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ tls: (req.socket as tls.TLSSocket).encrypted === true }));
  });
  const answerPlain = (socket: net.Socket, first: Buffer) => {
    let head = first.toString('latin1');
    const done = () => {
      const body = JSON.stringify({ tls: false });
      socket.end(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
    };
    if (head.includes('\r\n\r\n')) return done();
    socket.on('data', (c: Buffer) => {
      head += c.toString('latin1');
      if (head.includes('\r\n\r\n')) done();
    });
  };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.once('data', (first) => {
      if (first[0] !== 0x16) return answerPlain(socket, first);
      socket.pause();
      socket.unshift(first);
      secure.emit('connection', socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.close();
    for (const s of sockets) s.destroy();
  });
  return (server.address() as net.AddressInfo).port;
}

function collect(res: http.IncomingMessage, peerCN: string | undefined): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let body = '';
    res.on('data', (c: Buffer) => (body += c.toString()));
    res.on('end', () => resolve({ status: res.statusCode ?? 0, appTls: (JSON.parse(body) as { tls: boolean }).tls, peerCN }));
    res.on('error', reject);
  });
}

/** HTTPS from a client with its own TLS (trusting only the application's CA) to 127.0.0.1:port. */
function httpsGet(port: number, ca: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // As curl or a browser: ALPN that is not Istio's.
    const opts: RequestOptions & tls.ConnectionOptions = { host: '127.0.0.1', port, path: '/', servername: HOST, headers: { host: HOST }, ca, ALPNProtocols: ['http/1.1'], agent: false, timeout: 5000 };
    const req = https.get(opts, (res) => {
      const cert = (res.socket as tls.TLSSocket).getPeerCertificate();
      collect(res, String(cert.subject?.CN ?? '')).then(resolve, reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function httpGet(port: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host: HOST }, agent: false, timeout: 5000 }, (res) => collect(res, undefined).then(resolve, reject));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** The certificate a TLS server on port shows a client that trusts anything (and offers no client certificate). */
function certificateShown(port: number): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      const cert = s.getPeerCertificate();
      s.destroy();
      resolve(cert);
    });
    s.on('error', reject);
  });
}

/** Resolves with the error once `fn` fails (a request the mesh now refuses). */
function failing(what: string, fn: () => Promise<unknown>): Promise<Error> {
  return waitFor(what, () => fn().then(() => undefined, (err: Error) => err));
}

test('PERMISSIVE passes a non-mesh client\'s own TLS through to the application, keeps mTLS for mesh clients and plaintext; STRICT refuses that TLS', async (t) => {
  const pki = makePki('Secure App CA');
  t.after(() => pki.cleanup());
  const appPort = await startDualApp(t, pki.leaf('secure-app', [`DNS:${HOST}`]));
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-permissive-tls-', config: SERVICE + '---' + PEER_AUTHN('PERMISSIVE'), controlPlane: { debounceMs: 10 } });
  const inbound = await freePort();
  const upstream = await freePort();
  const server = await startSidecar(t, mesh, { namespace: 'foo', name: 'secure-app', args: ['--workload-port', '8443/https/HTTPS', '--inbound-port', `8443=${inbound}`, '--app-port', `8443=${appPort}`, '--outbound-port', String(await freePort())] });
  const client = await startSidecar(t, mesh, { namespace: 'foo', name: 'sleep', args: ['--outbound-port', String(await freePort()), '--upstream-port', `${HOST}:8443=${upstream}`] });
  const logs = () => `\n--- server sidecar ---\n${server.log().slice(-3000)}\n--- client sidecar ---\n${client.log().slice(-3000)}`;
  // The mesh client's application speaks its own TLS too; its sidecar wraps it in Istio mTLS.
  const viaMesh = () => httpsGet(upstream, pki.ca);
  const ok = (what: string, fn: () => Promise<Reply>) =>
    waitFor(() => what + logs(), async () => {
      const r = await fn();
      return r.status === 200 ? r : undefined;
    });

  // PERMISSIVE: the outside client's handshake is with the application itself.
  const outside = await ok('HTTPS from outside the mesh', () => httpsGet(inbound, pki.ca));
  assert.deepEqual(outside, { status: 200, appTls: true, peerCN: 'secure-app' });
  assert.deepEqual(await ok('plaintext from outside the mesh', () => httpGet(inbound)), { status: 200, appTls: false, peerCN: undefined });
  assert.deepEqual(await ok('HTTPS through the client sidecar', viaMesh), { status: 200, appTls: true, peerCN: 'secure-app' });

  // The server sidecar knows the mesh client by its SPIFFE identity (it terminated mTLS): denying
  // that principal stops the mesh client, while the outside client (no identity) still gets through.
  mesh.store.apply(parseYaml(DENY_SLEEP));
  await failing('the mesh client denied by principal' + logs(), viaMesh);
  assert.deepEqual(await httpsGet(inbound, pki.ca), { status: 200, appTls: true, peerCN: 'secure-app' });
  mesh.store.delete('AuthorizationPolicy', 'foo', 'deny-sleep');
  await ok('the mesh client allowed again', viaMesh);

  // STRICT: TLS without a mesh certificate is refused; the sidecar shows its mesh identity, not the app's certificate.
  mesh.store.apply(parseYaml(PEER_AUTHN('STRICT')));
  const refused = await failing('HTTPS from outside the mesh refused under STRICT' + logs(), () => httpsGet(inbound, pki.ca));
  assert.doesNotMatch(refused.message, /ECONNREFUSED/);
  const shown = await certificateShown(inbound);
  assert.match(shown.subjectaltname ?? '', /URI:spiffe:\/\/cluster\.local\/ns\/foo\/sa\/secure-app/);
  await assert.rejects(httpGet(inbound));
  assert.deepEqual(await ok('HTTPS through the client sidecar under STRICT', viaMesh), { status: 200, appTls: true, peerCN: 'secure-app' });
});
