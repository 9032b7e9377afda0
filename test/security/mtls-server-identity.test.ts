// Auto mTLS: the client sidecar verifies the server's SPIFFE identity against the service
// accounts that may serve the destination (issue 6 §3), end to end: the real control plane with
// its CA, a real `rig proxy` client sidecar, and a server endpoint (a WorkloadEntry with
// tlsMode istio, service account httpbin) that presents a mesh certificate. A certificate of the
// same mesh CA for another identity is refused (503); the right identity is served.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { attachCertificateAuthority, type CertificateAuthority } from '../../src/ca/index.ts';
import { MemoryConfigStore } from '../../src/config/memory-store.ts';
import { createKeyAndCsr } from '../../src/proxy/identity/index.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { freePort, tempDir } from '../ca/ca-test-helpers.ts';
import { spawnRig, stopProcess } from '../helpers/cli.ts';
import { parseYaml } from '../xds/fixtures.ts';

async function meshIdentity(ca: CertificateAuthority, spiffe: string): Promise<tls.SecureContext> {
  const { csrPem, privateKeyPem } = await createKeyAndCsr(spiffe);
  const chain = await ca.sign({ csrPem, identity: spiffe });
  return tls.createSecureContext({ cert: chain.slice(0, -1).join(''), key: privateKeyPem, ca: chain.at(-1) });
}

function viaClientSidecar(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: 'http://httpbin.foo.svc.cluster.local:9080/', agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

test('auto mTLS: the client sidecar refuses a server whose SPIFFE identity may not serve the service', async (t) => {
  const dir = tempDir(t, 'rig-server-id-');
  const store = new MemoryConfigStore();
  const cp = await startControlPlane({ store, stateDir: dir, xdsPort: 0, monitoringPort: 0 });
  t.after(() => cp.stop());
  const { ca, tokens, tlsPort } = await attachCertificateAuthority(cp, { stateDir: dir, tlsPort: 0 });
  t.after(() => ca.close());

  // The "server sidecar": requires a mesh client certificate and echoes the client's identity.
  const imposter = await meshIdentity(ca, 'spiffe://cluster.local/ns/foo/sa/imposter');
  const genuine = await meshIdentity(ca, 'spiffe://cluster.local/ns/foo/sa/httpbin');
  let presented = imposter;
  const server = tls.createServer({ secureContext: imposter, SNICallback: (_name, cb) => cb(null, presented), requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['http/1.1'] }, (s) => {
    const peer = s.getPeerCertificate().subjectaltname ?? '';
    s.once('data', () => s.end(`HTTP/1.1 200 OK\r\ncontent-length: ${peer.length}\r\nconnection: close\r\n\r\n${peer}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  store.apply(
    parseYaml(`
apiVersion: v1
kind: Service
metadata: { name: httpbin, namespace: foo }
spec: { selector: { app: httpbin }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: httpbin-0, namespace: foo }
spec:
  address: 127.0.0.1
  ports: { http: ${(server.address() as AddressInfo).port} }
  labels: { app: httpbin, security.istio.io/tlsMode: istio }
  serviceAccount: httpbin
`),
  );

  const tokenFile = path.join(dir, 'sleep.token');
  fs.writeFileSync(tokenFile, (await tokens.issue({ namespace: 'foo', serviceAccount: 'sleep' })).token, { mode: 0o600 });
  const outbound = await freePort();
  const p = spawnRig(['proxy', '--xds-address', `127.0.0.1:${cp.ports.xds}`, '--ca-address', `127.0.0.1:${tlsPort}`, '--ca-root-file', path.join(dir, 'ca', 'root-cert.pem'), '--token-file', tokenFile,
    '--namespace', 'foo', '--service-account', 'sleep', '--workload-name', 'sleep-0', '--labels', 'app=sleep', '--outbound-port', String(outbound), '--admin-port', '0', '--ready-port', '0', '--stats-port', '0', '--log-format', 'text']);
  t.after(() => stopProcess(p));

  // The imposter is refused once the sidecar is configured (the connection fails its SAN check).
  const deadline = Date.now() + 20_000;
  let r = await viaClientSidecar(outbound).catch(() => undefined);
  while (!(r?.status === 503 && /connection failure/.test(r.body))) {
    assert.ok(Date.now() < deadline, `expected a refused upstream, got ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 100));
    r = await viaClientSidecar(outbound).catch(() => undefined);
  }
  assert.match(r.body, /do not match any of the configured subject alt names|certificate/i);

  // The same endpoint with the identity the service runs as: served, over mTLS with the client's identity.
  presented = genuine;
  const ok = await viaClientSidecar(outbound);
  assert.deepEqual(ok, { status: 200, body: 'URI:spiffe://cluster.local/ns/foo/sa/sleep' });
});
