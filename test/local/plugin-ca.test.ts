// Istio's "Plug in CA Certificates" task on the local mesh: the `cacerts` secret (ca-cert.pem,
// ca-key.pem, root-cert.pem, cert-chain.pem) in the credentials directory makes `rig up`'s CA sign
// with the user's intermediate; `rig proxy-config secret` shows a workload certificate under the
// user's root. Real openssl, real processes.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { makePluginCaFiles } from '../helpers/istio-task-certs.ts';
import { waitFor } from '../helpers/wait.ts';
import { startMesh } from './mesh-harness.ts';

const APP = "require('node:http').createServer((q, s) => s.end('ok')).listen(+process.env.PORT, process.env.HOST)";

/** The cacerts secret as Istio's task makes it: the four files only. */
function makeCacerts(dir: string): void {
  makePluginCaFiles(dir, { root: '/O=Istio/CN=Root CA', intermediate: '/O=Istio/CN=Intermediate CA/L=cluster1' });
  for (const f of ['root-key.pem', 'ca.csr', 'ext.cnf', 'root-cert.srl']) fs.rmSync(path.join(dir, f), { force: true });
}

test('rig up signs workload certificates with the cacerts plug-in CA of the credentials directory', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-plugin-ca-'));
  const credentials = path.join(dir, 'credentials');
  makeCacerts(path.join(credentials, 'cacerts'));
  fs.mkdirSync(path.join(dir, 'config'));
  fs.writeFileSync(
    path.join(dir, 'config', 'echo.yaml'),
    `apiVersion: local.rigging.dev/v1alpha1\nkind: Workload\nmetadata: { name: echo, labels: { app: echo } }\nspec:\n  command: [node, -e, ${JSON.stringify(APP)}]\n  ports: [{ name: http, port: 9080 }]\n`,
  );
  let stopMesh = async (): Promise<void> => undefined;
  t.after(async () => {
    await stopMesh();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const mesh = await startMesh('up', ['-f', path.join(dir, 'config'), '--no-ingress', '--credentials-dir', credentials]);
  stopMesh = () => mesh.stop();
  await mesh.waitFor((s) => !!s.readyAt, 'echo ready', 60_000);
  assert.match(mesh.output(), /\(plug-in CA .*cacerts\)/);

  const root = new X509Certificate(fs.readFileSync(path.join(credentials, 'cacerts', 'root-cert.pem')));
  const intermediate = new X509Certificate(fs.readFileSync(path.join(credentials, 'cacerts', 'ca-cert.pem')));
  const secrets = await waitFor('the sidecar has its certificate', async () => {
    const r = await mesh.rig(['proxy-config', 'secret', 'echo-0', '-o', 'json']);
    return r.code === 0 && r.stdout.includes('"default"') ? (JSON.parse(r.stdout) as { name: string; tls_certificate?: { certificate_chain: { inline_bytes?: string; inline_string?: string } }; validation_context?: { trusted_ca: { inline_bytes?: string; inline_string?: string } } }[]) : undefined;
  });
  const pem = (src: { inline_bytes?: string; inline_string?: string } | undefined) => src?.inline_string ?? Buffer.from(src?.inline_bytes ?? '', 'base64').toString();
  const leaf = new X509Certificate(pem(secrets.find((s) => s.name === 'default')?.tls_certificate?.certificate_chain));
  assert.ok(leaf.verify(intermediate.publicKey), 'the workload certificate is signed by the plug-in intermediate');
  assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/default');
  const trusted = new X509Certificate(pem(secrets.find((s) => s.name === 'ROOTCA')?.validation_context?.trusted_ca));
  assert.equal(trusted.fingerprint256, root.fingerprint256, 'the sidecar trusts the plug-in root');
});
