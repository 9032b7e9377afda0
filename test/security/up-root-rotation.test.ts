// Root rotation reaches the proxies of `rig up`: with istiod's rotator settings (a 40 s
// self-signed root renewed once half its lifetime is left, checked every second), the control
// plane renews its root while the mesh runs; rig up rewrites the root file its proxies read,
// and the sidecar renews at once and trusts both roots (ROOTCA in its own config_dump).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startMesh } from '../local/mesh-harness.ts';
import { secretList } from '../../src/xds/debug/tables.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';

const ECHO = ['node', '-e', "require('node:http').createServer((q, s) => s.end('ok')).listen(+process.env.PORT, process.env.HOST)"];

function countCerts(pem: string): number {
  return pem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
}

interface Secrets {
  roots: number;
  serial: string;
}

/** The sidecar's own SDS secrets, from its admin config_dump. */
async function sidecarSecrets(admin: number): Promise<Secrets | undefined> {
  const res = await fetch(`http://127.0.0.1:${admin}/config_dump`).catch(() => undefined);
  if (!res?.ok) return undefined;
  const secrets = secretList((await res.json()) as EnvoyJson);
  const pem = (name: string, field: 'trusted_ca' | 'certificate_chain') => {
    const sec = secrets.find((x) => x.name === name) as { validation_context?: Record<string, { inline_string?: string }>; tls_certificate?: Record<string, { inline_string?: string }> } | undefined;
    return (field === 'trusted_ca' ? sec?.validation_context?.trusted_ca : sec?.tls_certificate?.certificate_chain)?.inline_string;
  };
  const roots = pem('ROOTCA', 'trusted_ca');
  const chain = pem('default', 'certificate_chain');
  if (!roots || !chain) return undefined;
  return { roots: countCerts(roots), serial: new X509Certificate(chain).serialNumber };
}

test('rig up: a root renewed by the control plane reaches the running sidecars (root file rewritten, both roots trusted)', async (t) => {
  const config = mkdtempSync(path.join(os.tmpdir(), 'rig-up-rotation-'));
  writeFileSync(
    path.join(config, 'echo.yaml'),
    `apiVersion: local.rigging.dev/v1alpha1
kind: Workload
metadata: { name: echo, labels: { app: echo } }
spec:
  command: ${JSON.stringify(ECHO)}
  ports: [{ name: http, port: 9080 }]
`,
  );
  const saved = { ...process.env };
  Object.assign(process.env, { CITADEL_SELF_SIGNED_CA_CERT_TTL: '40s', CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE: '50', CITADEL_SELF_SIGNED_ROOT_CERT_CHECK_INTERVAL: '1s' });
  const mesh = await startMesh('up', ['-f', config, '--no-ingress']);
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  t.after(async () => {
    await mesh.stop();
    rmSync(config, { recursive: true, force: true });
  });
  const rootFile = path.join(mesh.stateDir, 'run', 'root-cert.pem');
  const caFile = path.join(mesh.stateDir, 'controlplane', 'ca', 'root-cert.pem');
  const s = await mesh.waitFor((st) => st.processes.some((p) => p.name === 'echo-0' && p.state === 'ready' && !!p.ports.admin), 'echo-0 ready');
  const admin = s.processes.find((p) => p.name === 'echo-0')!.ports.admin!;
  let before: Secrets | undefined;
  for (let i = 0; i < 200 && !before; i++) {
    before = await sidecarSecrets(admin);
    if (!before) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(before, 'the sidecar got its certificate');
  assert.equal(before.roots, 1, 'one root before the rotation');
  assert.equal(countCerts(readFileSync(rootFile, 'utf8')), 1);

  // The control plane renews its root (about 16 s after it was made): the file and the sidecar follow.
  let after: Secrets | undefined;
  const deadline = Date.now() + 40_000;
  while (!(after && after.roots === 2)) {
    assert.ok(Date.now() < deadline, `the sidecar did not get both roots (root file has ${countCerts(readFileSync(rootFile, 'utf8'))})\n${mesh.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 250));
    after = await sidecarSecrets(admin);
  }
  assert.equal(readFileSync(rootFile, 'utf8'), readFileSync(caFile, 'utf8'), 'run/root-cert.pem is the CA bundle');
  assert.equal(countCerts(readFileSync(rootFile, 'utf8')), 2);
  assert.notEqual(after.serial, before.serial, 'the sidecar renewed its certificate on the root change');
});
