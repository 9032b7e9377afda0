// Mutual TLS through the real control plane (with its CA) and real `rig proxy` processes:
// openssl s_client sees the sidecar's SPIFFE certificate, STRICT refuses plaintext (curl),
// PERMISSIVE serves both, certificates from another CA or expired ones are refused, and a
// client sidecar reaches the server sidecar over auto mTLS with its identity, on which an
// AuthorizationPolicy pushed by the control plane decides.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import { signingKeyFrom, x509 } from '../../src/ca/ca-crypto.ts';
import { openssl } from '../ca/ca-test-helpers.ts';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { parseYaml } from '../xds/fixtures.ts';
import { request, startUpstream } from '../proxy/harness.ts';
import { makePki } from '../proxy/certs.ts';
import { waitFor } from '../helpers/wait.ts';

function sh(cmd: string, args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    p.stdin?.on('error', () => {}); // openssl refused inside the handshake may exit before reading its input (EPIPE)
    p.stdin?.end(input);
  });
}

interface Cert {
  cert: string;
  key: string;
}

/** A certificate for `spiffe` signed by the mesh CA's key files, valid in [from, to]. */
async function meshCert(caDir: string, spiffe: string, from: Date, to: Date): Promise<Cert> {
  const caKey = crypto.createPrivateKey(fs.readFileSync(path.join(caDir, 'ca-key.pem')));
  const caCert = new x509.X509Certificate(fs.readFileSync(path.join(caDir, 'ca-cert.pem'), 'utf8'));
  const signer = await signingKeyFrom(caKey, 'test CA key');
  const leafKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = new x509.PublicKey(new Uint8Array(leafKey.publicKey.export({ type: 'spki', format: 'der' })));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: crypto.randomBytes(8).toString('hex'),
    subject: '',
    issuer: caCert.subjectName,
    notBefore: from,
    notAfter: to,
    publicKey: pub,
    signingKey: signer.cryptoKey,
    signingAlgorithm: signer.algorithm,
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth]), new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffe }], true)],
  });
  return { cert: cert.toString('pem'), key: leafKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/** GET over mTLS with a client certificate and the ALPN of Istio's client sidecars: the status, or 'refused' when the handshake/connection fails. */
function mtlsGet(port: number, ca: string, c: Cert | undefined): Promise<number | 'refused'> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, cert: c?.cert, key: c?.key, ALPNProtocols: ['istio-http/1.1', 'istio', 'http/1.1'], checkServerIdentity: () => undefined });
    let got = '';
    s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nhost: httpbin.foo\r\nconnection: close\r\n\r\n'));
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => {
      const m = /^HTTP\/1\.1 (\d+)/.exec(got);
      resolve(m ? Number(m[1]) : 'refused');
    });
  });
}

function plainGet(port: number): Promise<number | 'refused'> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host: 'httpbin.foo' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve('refused'));
  });
}

const BASE = `
apiVersion: v1
kind: Namespace
metadata: { name: foo }
---
apiVersion: v1
kind: Service
metadata: { name: httpbin, namespace: foo }
spec:
  selector: { app: httpbin }
  ports: [{ name: http, port: 9080 }]
`;

function peerAuth(mode: string): string {
  return `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: foo }
spec: { mtls: { mode: ${mode} } }
`;
}

test('mTLS between sidecars: SPIFFE certificate, STRICT, PERMISSIVE, foreign CA, expired certificate, auto mTLS + authorization', async (t) => {
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-mtls-', config: BASE + peerAuth('STRICT') });
  const { dir, store, rootFile: root } = mesh;
  const caDir = path.join(dir, 'ca');
  const rootPem = fs.readFileSync(root, 'utf8');
  const app = await startUpstream('httpbin');
  t.after(() => app.close());
  const inbound = await freePort();
  const outbound = await freePort();
  await startSidecar(t, mesh, { namespace: 'foo', name: 'httpbin', args: ['--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${inbound}`, '--app-port', `9080=${app.port}`, '--outbound-port', String(await freePort())] });
  await startSidecar(t, mesh, { namespace: 'foo', name: 'sleep', args: ['--outbound-port', String(outbound)] });

  const sleepId = 'spiffe://cluster.local/ns/foo/sa/sleep';
  const now = Date.now();
  const good = await meshCert(caDir, sleepId, new Date(now - 60_000), new Date(now + 3600_000));
  let lastStatus: number | 'refused' | undefined;
  await waitFor(
    () => `the inbound mTLS listener (last status ${lastStatus})`,
    async () => ((lastStatus = await mtlsGet(inbound, rootPem, good)) === 200 ? true : undefined),
  );

  // openssl s_client shows the workload's SPIFFE identity, issued by the mesh root.
  fs.writeFileSync(path.join(dir, 'c.crt'), good.cert);
  fs.writeFileSync(path.join(dir, 'c.key'), good.key);
  const sc = await sh('openssl', ['s_client', '-connect', `127.0.0.1:${inbound}`, '-CAfile', root, '-cert', path.join(dir, 'c.crt'), '-key', path.join(dir, 'c.key'), '-alpn', 'istio-peer-exchange,http/1.1'], 'Q\n');
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(sc.stdout)?.[0];
  assert.ok(pem, sc.stdout + sc.stderr);
  fs.writeFileSync(path.join(dir, 'server.crt'), pem);
  assert.match(openssl(['x509', '-in', path.join(dir, 'server.crt'), '-noout', '-ext', 'subjectAltName']), /URI:spiffe:\/\/cluster\.local\/ns\/foo\/sa\/httpbin/);
  assert.match(sc.stdout, /Verify return code: 0 \(ok\)/);

  // STRICT: plaintext refused (curl), no client certificate refused.
  const curlPlain = () => sh('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'host: httpbin.foo', `http://127.0.0.1:${inbound}/`]);
  const strict = await curlPlain();
  assert.notEqual(strict.code, 0, `curl over plaintext must fail on STRICT: ${strict.stdout}`);
  assert.equal(await mtlsGet(inbound, rootPem, undefined), 'refused');

  // A certificate from another CA and an expired mesh certificate are refused.
  const other = makePki('Other CA');
  t.after(() => other.cleanup());
  assert.equal(await mtlsGet(inbound, rootPem, other.leaf('sleep', [`URI:${sleepId}`])), 'refused');
  assert.equal(await mtlsGet(inbound, rootPem, await meshCert(caDir, sleepId, new Date(now - 7200_000), new Date(now - 3600_000))), 'refused');

  // Auto mTLS from the client sidecar: the server sees the client's identity.
  const viaSleep = () => request(outbound, { path: 'http://httpbin.foo.svc.cluster.local:9080/hello' });
  const first = await waitFor('a request through the client sidecar', async () => {
    const r = await viaSleep();
    return r.status === 200 ? r : undefined;
  });
  assert.match(JSON.parse(first.body).headers['x-forwarded-client-cert'], /URI=spiffe:\/\/cluster\.local\/ns\/foo\/sa\/sleep/);

  // PERMISSIVE: plaintext and mTLS both served.
  store.apply(parseYaml(peerAuth('PERMISSIVE')));
  await waitFor('PERMISSIVE to reach the sidecar', async () => ((await curlPlain()).stdout === '200' ? true : undefined));
  assert.equal(await mtlsGet(inbound, rootPem, good), 200);

  // An AuthorizationPolicy pushed by the control plane: only sleep may call; plaintext has no identity.
  store.apply(
    parseYaml(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: only-sleep, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/foo/sa/sleep"] } }] }]
`),
  );
  await waitFor('the policy to reach the sidecar', async () => ((await curlPlain()).stdout === '403' ? true : undefined));
  assert.equal((await viaSleep()).status, 200);
  assert.equal(await mtlsGet(inbound, rootPem, await meshCert(caDir, 'spiffe://cluster.local/ns/foo/sa/other', new Date(now - 60_000), new Date(now + 3600_000))), 403);
  assert.equal(await plainGet(inbound), 403);

  // DISABLE: the sidecar serves plaintext only.
  store.delete('AuthorizationPolicy', 'foo', 'only-sleep');
  store.apply(parseYaml(peerAuth('DISABLE')));
  await waitFor('DISABLE to reach the sidecar', async () => ((await mtlsGet(inbound, rootPem, good)) === 'refused' ? true : undefined));
  assert.equal(await plainGet(inbound), 200);
});

