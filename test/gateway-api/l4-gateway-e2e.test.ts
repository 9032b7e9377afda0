// TCPRoute and TLSRoute through real processes: `rig controlplane` watching a config directory and
// a `rig proxy --mode router` labelled gateway.networking.k8s.io/gateway-name, as Istio's automated
// deployment labels its gateway pods. Istio's TCP Traffic Shifting task (Gateway API tab): bytes
// are echoed back through a TCP listener whose TCPRoute splits connections between two echo
// servers. Ingress Gateway without TLS Termination (Gateway API tab): a TLS listener in Passthrough
// mode hands the connection to the backend its TLSRoute names for the SNI name, so the client
// sees the backend's own certificate.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import { makeTaskCertificates } from '../helpers/istio-task-certs.ts';
import { freePort } from '../../src/local/ports.ts';
import { serviceEntry, startGatewayApiGateway } from '../helpers/edge-gateway.ts';
import { startControlPlaneProcess } from '../helpers/mesh-control-plane.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';

const ROUTES = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: tcp-echo-gateway }
spec:
  gatewayClassName: istio
  listeners:
  - { name: tcp-31400, protocol: TCP, port: 31400, allowedRoutes: { kinds: [{ kind: TCPRoute }] } }
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: { name: tcp-echo }
spec:
  parentRefs: [{ name: tcp-echo-gateway, sectionName: tcp-31400 }]
  rules:
  - backendRefs:
    - { name: tcp-echo-v1, port: 9000, weight: 50 }
    - { name: tcp-echo-v2, port: 9000, weight: 50 }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: mygateway }
spec:
  gatewayClassName: istio
  listeners:
  - { name: tls, hostname: nginx.example.com, port: 443, protocol: TLS, tls: { mode: Passthrough }, allowedRoutes: { namespaces: { from: All } } }
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: { name: nginx }
spec:
  parentRefs: [{ name: mygateway }]
  hostnames: [nginx.example.com]
  rules:
  - backendRefs: [{ name: my-nginx, port: 443 }]
`;

/** samples/tcp-echo: answers each line with `<prefix> <line>`. */
async function tcpEcho(prefix: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.on('data', (b: Buffer) => s.write(`${prefix} ${b.toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** One connection: send `line`, return the first reply (undefined if the connection fails or closes first). */
function echoOnce(port: number, line: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(line));
    s.setTimeout(5000, () => s.destroy());
    s.once('data', (b: Buffer) => {
      resolve(b.toString());
      s.end();
    });
    s.on('error', () => resolve(undefined));
    s.on('close', () => resolve(undefined));
  });
}

/** A TLS handshake with SNI `servername`, trusting `ca`: the peer certificate's subject and what the server answered. */
function tlsHello(port: number, servername: string, ca: string): Promise<{ subject: tls.PeerCertificate['subject']; reply: string } | undefined> {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername, ca }, () => {
      const subject = s.getPeerCertificate().subject;
      s.once('data', (b: Buffer) => {
        resolve({ subject, reply: b.toString() });
        s.end();
      });
      s.write('hello\n');
    });
    s.setTimeout(5000, () => s.destroy());
    s.on('error', () => resolve(undefined));
    s.on('close', () => resolve(undefined));
  });
}

test('rig controlplane + rig proxy --mode router: a TCPRoute splits TCP connections, a TLSRoute passes TLS through by SNI', async (t) => {
  const [v1, v2] = await Promise.all([tcpEcho('one'), tcpEcho('two')]);
  t.after(() => Promise.all([v1.close(), v2.close()]));
  const dir = tempDir(t, 'rig-gwapi-l4-');
  // The backend's own certificate (Istio's task: nginx.example.com, O=some organization), served by the backend only.
  const nginxCerts = path.join(dir, 'nginx-certs');
  const caPem = makeTaskCertificates(dir, nginxCerts, 'nginx.example.com', 'some organization');
  const nginx = tls.createServer({ cert: fs.readFileSync(path.join(nginxCerts, 'tls.crt')), key: fs.readFileSync(path.join(nginxCerts, 'tls.key')) }, (s) => {
    s.on('error', () => {});
    s.on('data', () => s.write('nginx says hi\n'));
  });
  await new Promise<void>((resolve) => nginx.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => nginx.close(() => resolve())));

  const nginxPort = (nginx.address() as net.AddressInfo).port;
  const tcp = (name: string, target: number) => serviceEntry(name, target, { port: 9000, protocol: 'TCP' });
  const cp = await startControlPlaneProcess(t, dir, tcp('tcp-echo-v1', v1.port) + tcp('tcp-echo-v2', v2.port) + serviceEntry('my-nginx', nginxPort, { port: 443, protocol: 'TLS' }) + ROUTES);

  const [tcpPort, tlsPort] = [await freePort(), await freePort()];
  const [tcpGateway, tlsGateway] = await Promise.all([startGatewayApiGateway(t, cp.xds, 'tcp-echo-gateway', { 31400: tcpPort }), startGatewayApiGateway(t, cp.xds, 'mygateway', { 443: tlsPort })]);

  // TCP: bytes echoed by a backend, connections split between both.
  const first = await waitFor(() => `the TCP listener echoing\n${tcpGateway.log()}\n${cp.log()}`, () => echoOnce(tcpPort, 'hello\n'), 60_000);
  assert.match(first, /^(one|two) hello\n$/);
  const seen = new Set<string>();
  // 50/50: 40 connections reach both (all 40 on one side has a probability of 2^-39).
  for (let i = 0; i < 40; i++) seen.add((await echoOnce(tcpPort, `n${i}\n`))?.split(' ')[0] ?? 'none');
  assert.deepEqual([...seen].sort(), ['one', 'two']);

  // TLS passthrough: the handshake is the backend's, verified against its own CA by the client.
  const hello = await waitFor(() => `the TLS listener passing through\n${tlsGateway.log()}\n${cp.log()}`, () => tlsHello(tlsPort, 'nginx.example.com', caPem), 60_000);
  assert.equal(hello.subject.CN, 'nginx.example.com');
  assert.equal(hello.subject.O, 'some organization');
  assert.equal(hello.reply, 'nginx says hi\n');
  // Another SNI name has no route: the gateway closes the connection.
  assert.equal(await tlsHello(tlsPort, 'other.example.com', caPem), undefined);
});
