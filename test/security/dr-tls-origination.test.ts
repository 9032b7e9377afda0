// DestinationRule TLS origination to external hosts declared by ServiceEntries (issue 6 §3), through
// the real control plane and a real `rig proxy`: the application speaks plaintext HTTP; the sidecar
// originates TLS with the DestinationRule's sni, subjectAltNames and caCertificates (SIMPLE), a
// client certificate from files (MUTUAL), or from a credentialName secret in the control plane's
// credentials directory. A wrong subjectAltName or CA is a connection failure (503); without
// caCertificates the operating system's CAs decide, unless insecureSkipVerify.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { MemoryConfigStore } from '../../src/config/memory-store.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { startRigProxy } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { freePort } from '../../src/local/ports.ts';
import { parseYaml } from '../xds/fixtures.ts';
import { makePki } from '../proxy/certs.ts';
import { request } from '../proxy/harness.ts';

interface Seen {
  sni: string;
  client: string;
}

async function get(outbound: number, host: string): Promise<{ status: number; body: string }> {
  const { status, body } = await request(outbound, { path: `http://${host}/` });
  return { status, body };
}

function external(name: string, port: number, tlsSettings: string): string {
  return `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: foo }
spec:
  hosts: [${name}.example]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${port} } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: foo }
spec:
  host: ${name}.example
  trafficPolicy:
    portLevelSettings:
    - port: { number: 80 }
      tls: ${tlsSettings}
`;
}

test('DestinationRule TLS origination to ServiceEntry hosts: SIMPLE (sni, subjectAltNames, caCertificates or the OS CAs, insecureSkipVerify), MUTUAL from files and from credentialName', async (t) => {
  const dir = tempDir(t, 'rig-origination-');
  const pki = makePki('External CA');
  const other = makePki('Other CA');
  t.after(() => {
    pki.cleanup();
    other.cleanup();
  });
  const serverCert = pki.leaf('api', ['DNS:api.external.test']);
  const fromFiles = pki.leaf('client-files', ['URI:spiffe://external.test/client-files']);
  const fromSecret = pki.leaf('client-secret', ['URI:spiffe://external.test/client-secret']);
  const seen: Seen[] = [];
  const backend = tls.createServer({ cert: serverCert.cert, key: serverCert.key, ca: pki.ca, requestCert: true, rejectUnauthorized: false }, (s) => {
    const peer = s.getPeerCertificate();
    seen.push({ sni: (s as tls.TLSSocket & { servername?: string }).servername ?? '', client: String(peer?.subject?.CN ?? '') });
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nexternal'));
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.after(() => backend.close());
  const port = (backend.address() as AddressInfo).port;
  const file = (name: string, content: string) => {
    fs.writeFileSync(path.join(dir, name), content, { mode: 0o600 });
    return path.join(dir, name);
  };
  const ca = file('external-ca.pem', pki.ca);
  const otherCa = file('other-ca.pem', other.ca);
  const cert = file('client.pem', fromFiles.cert);
  const key = file('client-key.pem', fromFiles.key);
  const creds = path.join(dir, 'credentials', 'api-client');
  fs.mkdirSync(creds, { recursive: true });
  fs.writeFileSync(path.join(creds, 'tls.crt'), fromSecret.cert);
  fs.writeFileSync(path.join(creds, 'tls.key'), fromSecret.key, { mode: 0o600 });
  fs.writeFileSync(path.join(creds, 'ca.crt'), pki.ca);

  const store = new MemoryConfigStore();
  store.apply(
    parseYaml(
      'apiVersion: v1\nkind: Namespace\nmetadata: { name: foo }\n' +
        external('simple', port, `{ mode: SIMPLE, sni: api.external.test, subjectAltNames: [api.external.test], caCertificates: ${ca} }`) +
        external('mutual', port, `{ mode: MUTUAL, sni: api.external.test, caCertificates: ${ca}, clientCertificate: ${cert}, privateKey: ${key} }`) +
        external('secret', port, '{ mode: MUTUAL, sni: api.external.test, credentialName: api-client }') +
        external('badsan', port, `{ mode: SIMPLE, sni: api.external.test, subjectAltNames: [someone-else.test], caCertificates: ${ca} }`) +
        external('badca', port, `{ mode: SIMPLE, sni: api.external.test, caCertificates: ${otherCa} }`) +
        // Without caCertificates the server is checked against the OS's CAs (Istio >= 1.20), which do not know this CA.
        external('osca', port, '{ mode: SIMPLE, sni: api.external.test }') +
        external('skipverify', port, '{ mode: SIMPLE, sni: api.external.test, insecureSkipVerify: true }'),
    ),
  );
  const cp = await startControlPlane({ store, stateDir: dir, credentialsDir: path.join(dir, 'credentials'), xdsPort: 0, monitoringPort: 0 });
  t.after(() => cp.stop());
  const outbound = await freePort();
  await startRigProxy(t, ['--namespace', 'foo', '--service-account', 'sleep', '--workload-name', 'sleep-0', '--labels', 'app=sleep', '--outbound-port', String(outbound)], { xdsPort: cp.ports.xds }).started();

  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await get(outbound, 'simple.example').catch(() => undefined);
    if (r?.status === 200) break;
    assert.ok(Date.now() < deadline, `the sidecar never reached simple.example: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  seen.length = 0;
  assert.deepEqual(await get(outbound, 'simple.example'), { status: 200, body: 'external' });
  assert.deepEqual(await get(outbound, 'mutual.example'), { status: 200, body: 'external' });
  assert.deepEqual(await get(outbound, 'secret.example'), { status: 200, body: 'external' });
  assert.deepEqual(await get(outbound, 'skipverify.example'), { status: 200, body: 'external' });
  assert.deepEqual(seen, [
    { sni: 'api.external.test', client: '' },
    { sni: 'api.external.test', client: 'client-files' },
    { sni: 'api.external.test', client: 'client-secret' },
    { sni: 'api.external.test', client: '' },
  ]);
  for (const host of ['badsan.example', 'badca.example', 'osca.example']) {
    const r = await get(outbound, host);
    assert.equal(r.status, 503, host);
    assert.match(r.body, /connection failure/, host);
  }
});
