// Istio's "Ingress Gateway without TLS Termination" task through the real processes of `rig up`:
// my-nginx (a local HTTPS server with its own certificate for nginx.example.com) behind its
// sidecar, and the ingress gateway routing TLS by SNI to it without terminating it: the client
// sees my-nginx's certificate, signed by the task's example.com CA.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { REPO_ROOT } from '../helpers/cli.ts';
import { startMesh, type Mesh } from '../local/mesh-harness.ts';
import { eventually } from './bookinfo-mesh.ts';

const TASK = path.join(REPO_ROOT, 'examples/bookinfo/tasks/tls-passthrough');
const HOST = 'nginx.example.com';

function httpsGet(port: number, ca: string, servername: string): Promise<{ status: number; body: string; peerCN: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/', servername, headers: { host: servername }, ca, agent: false, timeout: 5000 }, (res) => {
      const peerCN = String((res.socket as TLSSocket).getPeerCertificate().subject?.CN ?? '');
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, peerCN }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

describe('Istio task: ingress gateway without TLS termination (PASSTHROUGH)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-passthrough-'));
  let mesh: Mesh;
  let ca = '';
  let port = 0;

  before(async () => {
    const certs = path.join(dir, 'certs');
    mkdirSync(certs);
    const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    openssl(['req', '-x509', '-sha256', '-nodes', '-days', '1', '-newkey', 'rsa:2048', '-subj', '/O=example Inc./CN=example.com', '-keyout', 'example.com.key', '-out', 'example.com.crt']);
    openssl(['req', '-out', 'nginx.csr', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(certs, 'tls.key'), '-subj', `/CN=${HOST}/O=some organization`]);
    writeFileSync(path.join(dir, 'san.ext'), `subjectAltName=DNS:${HOST}\n`);
    openssl(['x509', '-req', '-sha256', '-days', '1', '-CA', 'example.com.crt', '-CAkey', 'example.com.key', '-set_serial', '0', '-in', 'nginx.csr', '-out', path.join(certs, 'tls.crt'), '-extfile', 'san.ext']);
    ca = readFileSync(path.join(dir, 'example.com.crt'), 'utf8');
    // The task's workload, run from its directory with this test's certificates.
    const workload = readFileSync(path.join(TASK, 'my-nginx.yaml'), 'utf8').replace('cwd: .', `cwd: ${TASK}`).replace('TLS_CERT_DIR: certs', `TLS_CERT_DIR: ${certs}`);
    writeFileSync(path.join(dir, 'my-nginx.yaml'), workload);
    mesh = await startMesh('up', ['-f', path.join(dir, 'my-nginx.yaml'), path.join(TASK, 'gateway-passthrough.yaml')], { gatewayPorts: [443] });
    const s = await mesh.waitFor((s) => !!s.readyAt, 'every process ready', 60_000);
    port = s.processes.find((p) => p.name === 'istio-ingressgateway')!.ports.gateway!['443'];
  });
  after(async () => {
    await mesh?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the client reaches my-nginx over TLS end to end and sees its certificate', async () => {
    const res = await eventually('my-nginx through the gateway', async () => {
      const r = await httpsGet(port, ca, HOST);
      return r.status === 200 ? r : undefined;
    }, 20_000);
    assert.equal(res.peerCN, HOST);
    assert.match(res.body, /Welcome to nginx!/);
    // Another SNI matches no route: the gateway closes the connection.
    await assert.rejects(httpsGet(port, ca, 'other.example.com'));

  });
});
