// `rig proxy --xds-address … --ca-root-file … --token-file …` as a real process: it gets its
// config from the control plane and its workload certificate from the CA, and shows both in
// /config_dump.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startRigProxy } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { freePort } from '../../src/local/ports.ts';

test('rig proxy gets its SPIFFE certificate from the control plane CA and serves it as SDS secrets default and ROOTCA', async (t) => {
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-ca-' });
  const { ca } = mesh;
  const tokenFile = await mesh.tokenFile('bookinfo', 'bookinfo-ratings', 'proxy.token');
  const proxy = startRigProxy(t, ['--namespace', 'bookinfo', '--service-account', 'bookinfo-ratings', '--workload-name', 'ratings-v1', '--outbound-port', String(await freePort())], {
    xdsPort: mesh.cp.ports.xds,
    ca: { port: mesh.caPort, rootFile: mesh.rootFile, tokenFile },
  });
  const ports = await proxy.started();
  const dump = await waitFor('the secrets in /config_dump', async () => {
    const body = (await (await fetch(`http://127.0.0.1:${ports.admin}/config_dump`)).json()) as { configs: Array<Record<string, unknown>> };
    const secrets = body.configs.find((c) => String(c['@type']).endsWith('SecretsConfigDump')) as { dynamic_active_secrets?: Array<{ name: string; secret: Record<string, unknown> }> } | undefined;
    const names = (secrets?.dynamic_active_secrets ?? []).map((s) => s.name).sort();
    return names.includes('default') && names.includes('ROOTCA') ? secrets! : undefined;
  }, 15_000).catch((e: Error) => {
    throw new Error(`${e.message}\n${proxy.log()}`);
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
