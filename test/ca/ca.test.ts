// The certificate authority over real gRPC + TLS, its files on disk, and what openssl says of
// the certificates it issues.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { BootstrapTokens, createCertificateAuthority } from '../../src/ca/index.ts';
import { x509 } from '../../src/ca/ca-crypto.ts';
import { CaClient, createKeyAndCsr } from '../../src/proxy/identity/index.ts';
import { runRig } from '../helpers/cli.ts';
import { openssl, serveCa } from './ca-test-helpers.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { makePluginCaFiles } from '../helpers/istio-task-certs.ts';

const REVIEWS = 'spiffe://cluster.local/ns/default/sa/reviews';

async function request(port: number, rootPem: string, tokenFile: string | undefined, spiffeId: string, ttlSeconds = 0): Promise<string[]> {
  const client = new CaClient({ address: `127.0.0.1:${port}`, rootPem: Buffer.from(rootPem), tokenFile });
  try {
    const { csrPem } = await createKeyAndCsr(spiffeId);
    return await client.createCertificate(csrPem, ttlSeconds, { WorkloadName: 'reviews-v1' });
  } finally {
    client.close();
  }
}

function writeToken(dir: string, token: string): string {
  const file = path.join(dir, `token-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(file, token);
  return file;
}

test('issues a 24 h ECDSA P-256 certificate with the SPIFFE URI SAN that openssl verifies against the root', async (t) => {
  const stateDir = tempDir(t, 'rig-ca-');
  const ca = await createCertificateAuthority({ stateDir });
  t.after(() => ca.close());
  // Root generated on first start, persisted, key private.
  const caDir = path.join(stateDir, 'ca');
  assert.equal(fs.statSync(path.join(caDir, 'ca-key.pem')).mode & 0o777, 0o600);
  assert.match(openssl(['x509', '-in', path.join(caDir, 'root-cert.pem'), '-noout', '-text']), /CA:TRUE/);
  const { port } = await serveCa(t, ca, stateDir);
  const token = await new BootstrapTokens(stateDir).issue({ namespace: 'default', serviceAccount: 'reviews' });
  const chain = await request(port, ca.trustBundlePem(), writeToken(stateDir, token.token), REVIEWS);
  assert.equal(chain.length, 2);
  const dir = tempDir(t, 'rig-ca-');
  fs.writeFileSync(path.join(dir, 'leaf.pem'), chain[0]!);
  fs.writeFileSync(path.join(dir, 'root.pem'), chain[1]!);
  const text = openssl(['x509', '-in', 'leaf.pem', '-noout', '-text'], dir);
  assert.match(text, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews/);
  assert.match(text, /ASN1 OID: prime256v1/);
  assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
  assert.match(text, /CA:FALSE/);
  const notBefore = Date.parse(/Not Before: (.+)/.exec(text)![1]!);
  const notAfter = Date.parse(/Not After : (.+)/.exec(text)![1]!);
  assert.equal((notAfter - notBefore) / 1000, 86_400);
  assert.equal(openssl(['verify', '-CAfile', 'root.pem', 'leaf.pem'], dir).trim(), 'leaf.pem: OK');
  // A requested lifetime is honoured.
  const short = await request(port, ca.trustBundlePem(), writeToken(stateDir, token.token), REVIEWS, 600);
  fs.writeFileSync(path.join(dir, 'short.pem'), short[0]!);
  const shortText = openssl(['x509', '-in', 'short.pem', '-noout', '-dates'], dir);
  assert.equal((Date.parse(/notAfter=(.+)/.exec(shortText)![1]!) - Date.parse(/notBefore=(.+)/.exec(shortText)![1]!)) / 1000, 600);
  // The control plane's serving certificate is signed by the same root and names istiod.
  const serving = ca.currentServingCert()!;
  assert.match(serving.subjectAltName ?? '', /DNS:istiod\.istio-system\.svc/);
  assert.match(serving.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
  // A restart loads the same root.
  const again = await createCertificateAuthority({ stateDir });
  t.after(() => again.close());
  assert.equal(again.trustBundlePem(), ca.trustBundlePem());
});

test('refuses a CSR for another identity, a missing token, a revoked token and a token from another CA', async (t) => {
  const stateDir = tempDir(t, 'rig-ca-');
  const ca = await createCertificateAuthority({ stateDir });
  t.after(() => ca.close());
  const { port } = await serveCa(t, ca, stateDir);
  const root = ca.trustBundlePem();
  const tokens = new BootstrapTokens(stateDir);
  const reviewsToken = writeToken(stateDir, (await tokens.issue({ namespace: 'default', serviceAccount: 'reviews' })).token);

  await assert.rejects(request(port, root, reviewsToken, 'spiffe://cluster.local/ns/default/sa/ratings'), (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.PERMISSION_DENIED);
    assert.match(err.details, /asks for url "spiffe:\/\/cluster\.local\/ns\/default\/sa\/ratings" but the caller is authenticated as "spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews"/);
    return true;
  });
  await assert.rejects(request(port, root, undefined, REVIEWS), (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED && /no credential/.test(err.details));

  // Revoked with the CLI, in another process: refused from then on.
  const revoked = await tokens.issue({ namespace: 'default', serviceAccount: 'reviews' });
  const revokedFile = writeToken(stateDir, revoked.token);
  await request(port, root, revokedFile, REVIEWS);
  const res = await runRig(['token', 'revoke', '--token-file', revokedFile, '--state-dir', stateDir]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, new RegExp(`token ${revoked.jti} revoked`));
  await assert.rejects(request(port, root, revokedFile, REVIEWS), (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED && /revoked/.test(err.details));
  // Other tokens still work.
  await request(port, root, reviewsToken, REVIEWS);

  // A token signed by another control plane's key.
  const otherDir = tempDir(t, 'rig-ca-');
  const foreign = writeToken(stateDir, (await new BootstrapTokens(otherDir).issue({ namespace: 'default', serviceAccount: 'reviews' })).token);
  await assert.rejects(request(port, root, foreign, REVIEWS), (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED && /signature verification failed/.test(err.details));
  // An expired token.
  const expired = await tokens.issue({ namespace: 'default', serviceAccount: 'reviews', ttlSeconds: 1 });
  await new Promise((r) => setTimeout(r, 1100));
  await assert.rejects(request(port, root, writeToken(stateDir, expired.token), REVIEWS), (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED && /"exp"/.test(err.details));
});

test('rig token issue prints a token the CA accepts for exactly that identity', async (t) => {
  const stateDir = tempDir(t, 'rig-ca-');
  const res = await runRig(['token', 'issue', '--namespace', 'bookinfo', '--service-account', 'bookinfo-ratings', '--state-dir', stateDir, '--ttl', '1h', '-o', 'json']);
  assert.equal(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout) as { token: string; identity: string; expiresAt: string };
  assert.equal(out.identity, 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-ratings');
  const v = await new BootstrapTokens(stateDir).verify(out.token);
  assert.equal(v.identity, out.identity);
  assert.ok(Math.abs(v.expiresAt.getTime() - Date.now() - 3_600_000) < 60_000);
  const bad = await runRig(['token', 'issue', '--namespace', 'default', '--service-account', 'x', '--state-dir', stateDir, '--ttl', 'forever']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--ttl: "forever" is not a lifetime/);
});

test('uses plug-in CA files (root → intermediate) and rejects mismatched ones', async (t) => {
  const dir = tempDir(t, 'rig-ca-');
  const ossl = (...args: string[]) => openssl(args, dir);
  makePluginCaFiles(dir, { root: '/O=Example Corp/CN=Example Root CA', intermediate: '/O=Example Corp/CN=Intermediate CA cluster1' });
  const stateDir = tempDir(t, 'rig-ca-');
  const ca = await createCertificateAuthority({ stateDir, pluginCaDir: dir });
  t.after(() => ca.close());
  assert.equal(ca.source, 'plugin');
  assert.equal(fs.existsSync(path.join(stateDir, 'ca', 'ca-key.pem')), false, 'no self-signed root is made');
  const { port } = await serveCa(t, ca, stateDir);
  const token = writeToken(stateDir, (await new BootstrapTokens(stateDir).issue({ namespace: 'default', serviceAccount: 'reviews' })).token);
  const chain = await request(port, fs.readFileSync(path.join(dir, 'root-cert.pem'), 'utf8'), token, REVIEWS);
  assert.equal(chain.length, 3, 'leaf, intermediate, root');
  fs.writeFileSync(path.join(dir, 'leaf.pem'), chain[0]!);
  fs.writeFileSync(path.join(dir, 'inter.pem'), chain[1]!);
  assert.match(ossl('x509', '-in', 'leaf.pem', '-noout', '-issuer'), /Intermediate CA cluster1/);
  assert.equal(ossl('verify', '-CAfile', 'root-cert.pem', '-untrusted', 'inter.pem', 'leaf.pem').trim(), 'leaf.pem: OK');

  // A key that does not belong to ca-cert.pem is refused with a clear message.
  ossl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'other-key.pem');
  const bad = tempDir(t, 'rig-ca-');
  for (const f of ['ca-cert.pem', 'root-cert.pem', 'cert-chain.pem']) fs.copyFileSync(path.join(dir, f), path.join(bad, f));
  fs.copyFileSync(path.join(dir, 'other-key.pem'), path.join(bad, 'ca-key.pem'));
  await assert.rejects(createCertificateAuthority({ stateDir, pluginCaDir: bad }), /ca-key\.pem does not match the public key of .*ca-cert\.pem/);
  // An intermediate not signed by the given root is refused.
  const stranger = tempDir(t, 'rig-ca-');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'k.pem', '-out', 'root-cert.pem', '-days', '30', '-subj', '/CN=Stranger'], stranger);
  for (const f of ['ca-cert.pem', 'ca-key.pem']) fs.copyFileSync(path.join(dir, f), path.join(stranger, f));
  await assert.rejects(createCertificateAuthority({ stateDir, pluginCaDir: stranger }), /is not signed by any root in root-cert\.pem/);
});

test('plug-in CA files are reloaded when they change: both roots first, then the new intermediate signs; an unusable set is ignored', async (t) => {
  const dir = tempDir(t, 'rig-ca-');
  const ossl = (...args: string[]) => openssl(args, dir);
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  fs.writeFileSync(path.join(dir, 'ext.cnf'), '[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n');
  const makeChain = (n: number) => {
    ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `root${n}-key.pem`, '-out', `root${n}.pem`, '-days', '30', '-subj', `/O=Example Corp/CN=Root ${n}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `inter${n}-key.pem`, '-out', `inter${n}.csr`, '-subj', `/O=Example Corp/CN=Intermediate ${n}`);
    ossl('x509', '-req', '-in', `inter${n}.csr`, '-CA', `root${n}.pem`, '-CAkey', `root${n}-key.pem`, '-CAcreateserial', '-out', `inter${n}.pem`, '-days', '10', '-extfile', 'ext.cnf', '-extensions', 'ca');
  };
  makeChain(1);
  makeChain(2);
  const plugin = tempDir(t, 'rig-ca-');
  const install = (files: Record<string, string>) => {
    for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(plugin, name), content, { mode: 0o600 });
  };
  install({ 'ca-cert.pem': read('inter1.pem'), 'ca-key.pem': read('inter1-key.pem'), 'cert-chain.pem': read('inter1.pem') + read('root1.pem'), 'root-cert.pem': read('root1.pem') });
  const stateDir = tempDir(t, 'rig-ca-');
  const ca = await createCertificateAuthority({ stateDir, pluginCaDir: plugin, pluginCheckIntervalSeconds: 0.1 });
  t.after(() => ca.close());
  const { port } = await serveCa(t, ca, stateDir);
  const token = writeToken(stateDir, (await new BootstrapTokens(stateDir).issue({ namespace: 'default', serviceAccount: 'reviews' })).token);
  const bundles: string[] = [];
  ca.onRootsChanged((pem) => bundles.push(pem));
  const waitFor = async (what: string, ok: () => boolean) => {
    const end = Date.now() + 10_000;
    while (!ok()) {
      assert.ok(Date.now() < end, `timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  // Step 1: both roots in root-cert.pem; the old intermediate still signs.
  install({ 'root-cert.pem': read('root2.pem') + read('root1.pem') });
  await waitFor('the two-root bundle', () => bundles.length === 1);
  assert.equal(bundles[0], ca.trustBundlePem());
  assert.equal(ca.roots().length, 2);
  const during = await request(port, ca.trustBundlePem(), token, REVIEWS);
  assert.match(during[1]!, /BEGIN CERTIFICATE/);
  assert.equal(new crypto.X509Certificate(during[1]!).subject.includes('Intermediate 1'), true);

  // An unusable set (a key that is not the intermediate's) is ignored: the CA keeps signing.
  install({ 'ca-key.pem': read('inter2-key.pem') });
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(new crypto.X509Certificate((await request(port, ca.trustBundlePem(), token, REVIEWS))[1]!).subject.includes('Intermediate 1'), true);

  // Step 2: the new intermediate signs; the bundle is unchanged, so listeners hear nothing new.
  install({ 'ca-cert.pem': read('inter2.pem'), 'cert-chain.pem': read('inter2.pem') + read('root2.pem') });
  await waitFor('the new intermediate', () => ca.currentServingCert()?.issuer.includes('Intermediate 2') ?? false);
  const after = await request(port, ca.trustBundlePem(), token, REVIEWS);
  fs.writeFileSync(path.join(dir, 'leaf.pem'), after[0]!);
  fs.writeFileSync(path.join(dir, 'chain2.pem'), after[1]!);
  assert.equal(ossl('verify', '-CAfile', 'root2.pem', '-untrusted', 'chain2.pem', 'leaf.pem').trim(), 'leaf.pem: OK');
  assert.equal(bundles.length, 1);
});

test('root rotation to a new key: the new root is distributed first, signs after the delay, both are trusted during the overlap, then only the new one', async (t) => {
  const stateDir = tempDir(t, 'rig-ca-');
  const ca = await createCertificateAuthority({ stateDir, keySwitchDelaySeconds: 0.5 });
  t.after(() => ca.close());
  const { port } = await serveCa(t, ca, stateDir);
  const token = writeToken(stateDir, (await new BootstrapTokens(stateDir).issue({ namespace: 'default', serviceAccount: 'reviews' })).token);
  const oldRoot = ca.trustBundlePem();
  const before = await request(port, oldRoot, token, REVIEWS);
  const notified: string[] = [];
  ca.onRootsChanged((pem) => notified.push(pem));
  await ca.rotateRoot();
  const bundle = ca.trustBundlePem();
  assert.equal(bundle.match(/BEGIN CERTIFICATE/g)?.length, 2);
  assert.deepEqual(notified, [bundle]);
  assert.ok(bundle.endsWith(oldRoot), 'the old root stays, after the new one');
  assert.equal(fs.readFileSync(path.join(stateDir, 'ca', 'root-cert.pem'), 'utf8'), bundle);
  const dir = tempDir(t, 'rig-ca-');
  fs.writeFileSync(path.join(dir, 'bundle.pem'), bundle);
  fs.writeFileSync(path.join(dir, 'old-root.pem'), oldRoot);
  fs.writeFileSync(path.join(dir, 'new-root.pem'), bundle.slice(0, bundle.length - oldRoot.length));
  // Distributed, not signing yet: a certificate issued now still chains to the old root, and comes with both roots.
  const during = await request(port, bundle, token, REVIEWS);
  assert.equal(during.at(-1), bundle, 'workloads receive both roots');
  fs.writeFileSync(path.join(dir, 'during.pem'), during[0]!);
  assert.equal(openssl(['verify', '-CAfile', 'old-root.pem', 'during.pem'], dir).trim(), 'during.pem: OK');
  // After the delay the new root signs (and the serving certificate chains to it).
  while (notified.length < 2) await new Promise((r) => setTimeout(r, 50));
  const after = await request(port, bundle, token, REVIEWS);
  fs.writeFileSync(path.join(dir, 'old.pem'), before[0]!);
  fs.writeFileSync(path.join(dir, 'new.pem'), after[0]!);
  // Old and new workload certificates are both valid against the overlap bundle.
  assert.equal(openssl(['verify', '-CAfile', 'bundle.pem', 'old.pem'], dir).trim(), 'old.pem: OK');
  assert.equal(openssl(['verify', '-CAfile', 'bundle.pem', 'new.pem'], dir).trim(), 'new.pem: OK');
  assert.equal(openssl(['verify', '-CAfile', 'new-root.pem', 'new.pem'], dir).trim(), 'new.pem: OK');
  assert.throws(() => openssl(['verify', '-CAfile', 'new-root.pem', 'old.pem'], dir));
  // End of the overlap; a restart keeps the state.
  ca.endRootOverlap();
  assert.equal(ca.trustBundlePem().match(/BEGIN CERTIFICATE/g)?.length, 1);
  assert.equal(notified.at(-1), ca.trustBundlePem());
  const restarted = await createCertificateAuthority({ stateDir });
  t.after(() => restarted.close());
  assert.equal(restarted.trustBundlePem(), ca.trustBundlePem());
});

test("the self-signed root renews itself in its grace period (same key: old and new certificates verify against either root), and expired roots leave the bundle", async (t) => {
  const stateDir = tempDir(t, 'rig-ca-');
  // A 6 s root (backdated 0.6 s): renewed once less than 3 s are left, expired 5.4 s after it was made.
  const ca = await createCertificateAuthority({ stateDir, rootCertTtlSeconds: 6, rootGracePercent: 50, rootCheckIntervalSeconds: 0.1 });
  t.after(() => ca.close());
  const first = ca.roots()[0]!;
  const bundles: string[] = [];
  ca.onRootsChanged((pem) => bundles.push(pem));
  const { port } = await serveCa(t, ca, stateDir);
  const token = writeToken(stateDir, (await new BootstrapTokens(stateDir).issue({ namespace: 'default', serviceAccount: 'reviews' })).token);
  const issued = await request(port, ca.trustBundlePem(), token, REVIEWS);
  while (!bundles.length) await new Promise((r) => setTimeout(r, 50));
  const [renewed, old] = ca.roots();
  assert.equal(old!.fingerprint256, first.fingerprint256, 'the old root stays in the bundle');
  assert.notEqual(renewed!.fingerprint256, first.fingerprint256);
  assert.equal(renewed!.subject, first.subject);
  assert.ok(renewed!.publicKey.equals(first.publicKey), 'same key');
  assert.ok(Date.parse(renewed!.validTo) > Date.parse(first.validTo));
  assert.equal(fs.readFileSync(path.join(stateDir, 'ca', 'root-cert.pem'), 'utf8'), ca.trustBundlePem());
  const dir = tempDir(t, 'rig-ca-');
  fs.writeFileSync(path.join(dir, 'renewed.pem'), renewed!.toString());
  fs.writeFileSync(path.join(dir, 'old-root.pem'), first.toString());
  fs.writeFileSync(path.join(dir, 'before.pem'), issued[0]!);
  fs.writeFileSync(path.join(dir, 'after.pem'), (await request(port, ca.trustBundlePem(), token, REVIEWS))[0]!);
  assert.equal(openssl(['verify', '-CAfile', 'renewed.pem', 'before.pem'], dir).trim(), 'before.pem: OK');
  assert.equal(openssl(['verify', '-CAfile', 'old-root.pem', 'after.pem'], dir).trim(), 'after.pem: OK');
  // The first root expires: it leaves the bundle.
  while (ca.roots().some((r) => r.fingerprint256 === first.fingerprint256)) await new Promise((r) => setTimeout(r, 100));
  assert.ok(!bundles.at(-1)!.includes(first.toString().split('\n')[1]!), 'listeners got the bundle without it');
});

test('an expired self-signed root is replaced on start; an expired plug-in CA is refused', async (t) => {
  const stateDir = tempDir(t, 'rig-ca-');
  const first = await createCertificateAuthority({ stateDir, rootCertTtlSeconds: 1, rootGracePercent: 1 });
  first.close();
  const oldRoot = first.trustBundlePem();
  await new Promise((r) => setTimeout(r, 1200));
  const ca = await createCertificateAuthority({ stateDir });
  t.after(() => ca.close());
  assert.notEqual(ca.trustBundlePem(), oldRoot);
  assert.equal(ca.roots().length, 1, 'the expired root is not kept');
  assert.ok(Date.parse(ca.roots()[0]!.validTo) > Date.now() + 365 * 86_400_000);

  const plugin = tempDir(t, 'rig-ca-');
  const key = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keys = { privateKey: key.privateKey.toCryptoKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']), publicKey: key.publicKey.toCryptoKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']) };
  const expired = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=Old', keys: keys as never, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2021-01-01T00:00:00Z'), extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  fs.writeFileSync(path.join(plugin, 'ca-cert.pem'), expired.toString('pem'));
  fs.writeFileSync(path.join(plugin, 'ca-key.pem'), key.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  fs.copyFileSync(path.join(plugin, 'ca-cert.pem'), path.join(plugin, 'root-cert.pem'));
  await assert.rejects(createCertificateAuthority({ stateDir, pluginCaDir: plugin }), /ca-cert\.pem expired on .*2021/);
});
