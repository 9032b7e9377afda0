// `rig proxy --xds-address … --ca-root-file … --token-file …` as a real process: it gets its
// config from the control plane and its workload certificate from the CA, and shows both in
// /config_dump.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { MemoryConfigStore } from '../../src/config/memory-store.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { attachCertificateAuthority } from '../../src/ca/index.ts';
import { spawnRig, stopProcess } from '../helpers/cli.ts';
import { freePort, tempDir } from './ca-test-helpers.ts';

async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('rig proxy gets its SPIFFE certificate from the control plane CA and serves it as SDS secrets default and ROOTCA', async (t) => {
  const stateDir = tempDir(t);
  const cp = await startControlPlane({ store: new MemoryConfigStore(), stateDir, xdsPort: 0, monitoringPort: 0 });
  t.after(() => cp.stop());
  const { ca, tokens, tlsPort } = await attachCertificateAuthority(cp, { stateDir, tlsPort: 0 });
  t.after(() => ca.close());
  const tokenFile = path.join(stateDir, 'proxy.token');
  fs.writeFileSync(tokenFile, (await tokens.issue({ namespace: 'bookinfo', serviceAccount: 'bookinfo-ratings' })).token, { mode: 0o600 });
  const portsFile = path.join(stateDir, 'proxy-ports.json');
  let stderr = '';
  const proxy = spawnRig([
    'proxy', '--xds-address', `127.0.0.1:${cp.ports.xds}`, '--ca-address', `127.0.0.1:${tlsPort}`, '--ca-root-file', path.join(stateDir, 'ca', 'root-cert.pem'),
    '--token-file', tokenFile, '--namespace', 'bookinfo', '--service-account', 'bookinfo-ratings', '--workload-name', 'ratings-v1',
    '--outbound-port', String(await freePort()), '--admin-port', '0', '--ready-port', '0', '--stats-port', '0', '--ports-file', portsFile, '--log-format', 'text',
  ]);
  proxy.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  t.after(() => stopProcess(proxy));
  const ports = await waitFor('the proxy ports file', () => (fs.existsSync(portsFile) ? (JSON.parse(fs.readFileSync(portsFile, 'utf8')) as { admin: number }) : undefined)).catch((e: Error) => {
    throw new Error(`${e.message}\n${stderr}`);
  });
  const dump = await waitFor('the secrets in /config_dump', async () => {
    const body = (await (await fetch(`http://127.0.0.1:${ports.admin}/config_dump`)).json()) as { configs: Array<Record<string, unknown>> };
    const secrets = body.configs.find((c) => String(c['@type']).endsWith('SecretsConfigDump')) as { dynamic_active_secrets?: Array<{ name: string; secret: Record<string, unknown> }> } | undefined;
    const names = (secrets?.dynamic_active_secrets ?? []).map((s) => s.name).sort();
    return names.includes('default') && names.includes('ROOTCA') ? secrets! : undefined;
  }).catch((e: Error) => {
    throw new Error(`${e.message}\n${stderr}`);
  });
  const def = dump.dynamic_active_secrets!.find((s) => s.name === 'default')!;
  const text = JSON.stringify(def.secret);
  assert.doesNotMatch(text, /PRIVATE KEY/, 'the admin never shows the private key');
  const chain = /-----BEGIN CERTIFICATE-----[^"]+-----END CERTIFICATE-----/.exec(text.replace(/\\n/g, '\n'))?.[0];
  assert.ok(chain, `the certificate chain is in the dump: ${text.slice(0, 300)}`);
  const leaf = new (await import('node:crypto')).X509Certificate(chain);
  assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/bookinfo/sa/bookinfo-ratings');
  assert.ok(leaf.verify(ca.roots()[0]!.publicKey));
});
