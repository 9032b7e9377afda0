// Istio's "Secure Gateways" task (SIMPLE TLS with credentialName) on Bookinfo through the real
// processes of `rig up`: the secret bookinfo-credential is a directory of files created with
// openssl as the task does (a CA for example.com, a certificate for bookinfo.example.com), the
// Gateway of examples/bookinfo/tasks/secure-ingress terminates TLS on its port 443 (remapped to a
// free port) and the client checks the gateway's certificate against that CA.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { REPO_ROOT } from '../helpers/cli.ts';
import { DEMO_PATHS } from '../../src/local/demo.ts';
import { startMesh, type Mesh } from '../local/mesh-harness.ts';
import { eventually, request } from './bookinfo-mesh.ts';

const TASK = path.join(REPO_ROOT, 'examples/bookinfo/tasks/secure-ingress');
const HOST = 'bookinfo.example.com';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore' });
}

function httpsGet(port: number, p: string, ca: string, servername = HOST): Promise<{ status: number; body: string; peerCN: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: p, servername, headers: { host: servername }, ca, agent: false, timeout: 5000 }, (res) => {
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

describe('Istio task: secure gateway (SIMPLE TLS, credentialName)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-secure-ingress-'));
  let mesh: Mesh;
  let ca = '';
  let port = 0;

  before(async () => {
    const cred = path.join(dir, 'credentials', 'bookinfo-credential');
    mkdirSync(cred, { recursive: true });
    openssl(['req', '-x509', '-sha256', '-nodes', '-days', '1', '-newkey', 'rsa:2048', '-subj', '/O=example Inc./CN=example.com', '-keyout', 'example.com.key', '-out', 'example.com.crt'], dir);
    openssl(['req', '-out', 'bookinfo.csr', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(cred, 'tls.key'), '-subj', `/CN=${HOST}/O=bookinfo organization`], dir);
    writeFileSync(path.join(dir, 'san.ext'), `subjectAltName=DNS:${HOST}\n`);
    openssl(['x509', '-req', '-sha256', '-days', '1', '-CA', 'example.com.crt', '-CAkey', 'example.com.key', '-set_serial', '0', '-in', 'bookinfo.csr', '-out', path.join(cred, 'tls.crt'), '-extfile', 'san.ext'], dir);
    ca = readFileSync(path.join(dir, 'example.com.crt'), 'utf8');
    mesh = await startMesh('up', ['-f', ...DEMO_PATHS, path.join(TASK, 'gateway-https.yaml'), '--credentials-dir', path.join(dir, 'credentials')], { gatewayPorts: [8080, 443] });
    const s = await mesh.waitFor((s) => !!s.readyAt, 'every process ready', 60_000);
    port = s.processes.find((p) => p.name === 'istio-ingressgateway')!.ports.gateway!['443'];
  });
  after(async () => {
    await mesh?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the product page over TLS with the credential’s certificate', async () => {
    const res = await eventually('the product page over HTTPS', async () => {
      const r = await httpsGet(port, '/productpage', ca);
      return r.status === 200 ? r : undefined;
    }, 20_000);
    assert.equal(res.peerCN, HOST);
    assert.match(res.body, /Book Details/);
    // Only the VirtualService's paths are routed.
    assert.equal((await httpsGet(port, '/nothing-here', ca)).status, 404);
    // Plain text on the TLS port gets no HTTP answer.
    const plain = await request(port, '/productpage', { timeoutMs: 3000 }).catch(() => undefined);
    assert.ok(plain === undefined || plain.status >= 400, `plain HTTP on the TLS port answered ${plain?.status}`);
    // A client that does not trust example.com's CA refuses the certificate.
    await assert.rejects(httpsGet(port, '/productpage', ''), /self[- ]signed|unable to (get|verify)/i);
  });
});
