// The proxy's workload identity against a real CA over gRPC/TLS: SDS secrets, rotation before
// expiry, retries while the CA is away, renewal on a root change, refusal of a foreign identity.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { checkMessage, SECRET_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { BootstrapTokens, createCertificateAuthority, type CertificateAuthority } from '../../src/ca/index.ts';
import { IdentityManager, type IdentityManagerOptions } from '../../src/proxy/identity/index.ts';
import type { XdsSink } from '../../src/proxy/xds-client/index.ts';
import { serveCa } from './ca-test-helpers.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { freePort } from '../../src/local/ports.ts';

class SecretSink implements XdsSink {
  readonly updates: Array<ReadonlyMap<string, EnvoyJson>> = [];
  apply(typeUrl: string, resources: ReadonlyMap<string, EnvoyJson>): string[] {
    assert.equal(typeUrl, SECRET_TYPE);
    for (const r of resources.values()) assert.deepEqual(checkMessage('envoy.extensions.transport_sockets.tls.v3.Secret', r), []);
    this.updates.push(resources);
    return [];
  }
  latest(name: string): EnvoyJson {
    return this.updates.at(-1)!.get(name)!;
  }
}

async function setup(t: TestContext, caOpts: { workloadCertTtlSeconds?: number } = {}) {
  const stateDir = tempDir(t, 'rig-ca-');
  const ca = await createCertificateAuthority({ stateDir, ...caOpts });
  t.after(() => ca.close());
  const rootFile = path.join(stateDir, 'root-cert.pem');
  fs.writeFileSync(rootFile, ca.trustBundlePem());
  const tokenFile = path.join(stateDir, 'token');
  fs.writeFileSync(tokenFile, (await new BootstrapTokens(stateDir).issue({ namespace: 'default', serviceAccount: 'reviews' })).token);
  return { stateDir, ca, rootFile, tokenFile };
}

function manager(t: TestContext, ca: CertificateAuthority, port: number, rootFile: string, tokenFile: string, extra: Partial<IdentityManagerOptions> = {}) {
  const sink = new SecretSink();
  const m = new IdentityManager({
    caAddress: `127.0.0.1:${port}`,
    caRootFile: rootFile,
    tokenFile,
    trustDomain: ca.trustDomain,
    namespace: 'default',
    serviceAccount: 'reviews',
    sink,
    backoff: { initialMs: 50, maxMs: 200 },
    rootCheckIntervalMs: 50,
    ...extra,
  });
  t.after(() => m.stop());
  return { m, sink };
}

test('pushes SDS secrets default and ROOTCA, and rotates at 80% of the lifetime, before expiry', async (t) => {
  const { stateDir, ca, rootFile, tokenFile } = await setup(t, { workloadCertTtlSeconds: 2 });
  const { port } = await serveCa(t, ca, stateDir);
  const { m, sink } = manager(t, ca, port, rootFile, tokenFile);
  await m.start();
  const first = m.certificate()!;
  const def = sink.latest('default').tls_certificate as { certificate_chain: { inline_string: string }; private_key: { inline_string: string } };
  const leaf = new crypto.X509Certificate(def.certificate_chain.inline_string);
  assert.ok(leaf.checkPrivateKey(crypto.createPrivateKey(def.private_key.inline_string)), 'the key in the secret belongs to the certificate');
  assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/reviews');
  assert.equal(((sink.latest('ROOTCA').validation_context as EnvoyJson).trusted_ca as EnvoyJson).inline_string, ca.trustBundlePem());
  const state = m.state();
  assert.equal(state.issued, 1);
  const lifetime = first.notAfter.getTime() - first.notBefore.getTime();
  assert.equal(Date.parse(state.nextRenewal!), first.notBefore.getTime() + lifetime * 0.8);

  const [second] = (await once(m, 'issued')) as [{ serialNumber: string; notBefore: Date; notAfter: Date }];
  assert.notEqual(second.serialNumber, first.serialNumber);
  assert.ok(second.notAfter > first.notAfter);
  assert.ok(Date.now() < first.notAfter.getTime(), 'renewed before the old certificate expired');
  const newKey = (sink.latest('default').tls_certificate as { private_key: { inline_string: string } }).private_key.inline_string;
  assert.notEqual(newKey, def.private_key.inline_string, 'a new key for each certificate');
});

test('keeps retrying with backoff while the CA is away, and gets its certificate once it is back', async (t) => {
  const { stateDir, ca, rootFile, tokenFile } = await setup(t);
  const port = await freePort();
  const { m } = manager(t, ca, port, rootFile, tokenFile);
  const ready = m.start();
  await once(m, 'error');
  await once(m, 'error');
  assert.match(m.state().lastError!.message, /UNAVAILABLE|No connection/);
  assert.equal(m.certificate(), undefined);
  await serveCa(t, ca, stateDir, port);
  await ready;
  assert.equal(m.state().lastError, undefined);
  assert.ok(m.certificate());
});

test('renews at once when the CA root file changes, and trusts both roots during the overlap', async (t) => {
  const { stateDir, ca, rootFile, tokenFile } = await setup(t);
  const { port } = await serveCa(t, ca, stateDir);
  const { m, sink } = manager(t, ca, port, rootFile, tokenFile);
  await m.start();
  const first = m.certificate()!;
  await ca.rotateRoot({ switchNow: true });
  fs.writeFileSync(rootFile, ca.trustBundlePem());
  const [second] = (await once(m, 'issued')) as [{ serialNumber: string }];
  assert.notEqual(second.serialNumber, first.serialNumber);
  const roots = ((sink.latest('ROOTCA').validation_context as EnvoyJson).trusted_ca as EnvoyJson).inline_string as string;
  assert.equal(roots.match(/BEGIN CERTIFICATE/g)?.length, 2);
  const newRoot = new crypto.X509Certificate(ca.roots()[0]!.toString());
  const leaf = new crypto.X509Certificate(m.certificate()!.certChainPem);
  assert.ok(leaf.verify(newRoot.publicKey), 'the new certificate is signed by the new root');
});

test('a proxy asking for an identity its token does not prove gets no certificate', async (t) => {
  const { stateDir, ca, rootFile, tokenFile } = await setup(t);
  const { port } = await serveCa(t, ca, stateDir);
  const { m, sink } = manager(t, ca, port, rootFile, tokenFile, { serviceAccount: 'ratings' });
  void m.start();
  await once(m, 'error');
  assert.match(m.state().lastError!.message, /PERMISSION_DENIED: .*ratings.* authenticated as .*reviews/);
  assert.equal(sink.updates.length, 0);
});

test('renews over mutual TLS with the current certificate once the token is gone, but not after the token is revoked', async (t) => {
  const { stateDir, ca, rootFile, tokenFile } = await setup(t, { workloadCertTtlSeconds: 2 });
  const { port } = await serveCa(t, ca, stateDir);
  const { m } = manager(t, ca, port, rootFile, tokenFile);
  await m.start();
  const token = fs.readFileSync(tokenFile, 'utf8');
  fs.writeFileSync(tokenFile, 'not-a-token');
  const [renewed] = (await once(m, 'issued')) as [{ serialNumber: string }];
  assert.ok(renewed.serialNumber, 'renewed with the client certificate alone');
  // Revoking the token cuts off renewals by certificates issued before the revocation.
  fs.writeFileSync(tokenFile, token);
  new BootstrapTokens(stateDir).revoke(token);
  const [err] = (await once(m, 'error')) as [Error];
  assert.match(m.state().lastError!.message, /UNAUTHENTICATED: bootstrap token .* has been revoked/, err.message);
});
